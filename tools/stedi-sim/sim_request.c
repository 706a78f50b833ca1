/*
 * sim_request.c - stedi-sim's check of eligibility requests against Stedi's
 * published request schema.
 *
 * The tables below transcribe EligibilityCheckRequestContent and the
 * objects it refers to from Stedi's OpenAPI (healthcare.json; the batch
 * item of manager.json has the same properties and also requires
 * submitterTransactionIdentifier): every property with its JSON type,
 * length limits (in characters, as JSON Schema counts them), pattern and
 * allowed codes, and each object's required properties. A request is
 * walked against them and every violation is kept with its JSON pointer,
 * so the 400 answer has Stedi's ValidationException shape:
 * {"message", "fieldList": [{"path", "message"}]}. The message names the
 * field the way a person reads it ("subscriber.memberId: ...").
 *
 * Beyond the schema, the rules the schema's descriptions state are
 * enforced too: the provider needs organizationName (or firstName and
 * lastName) and an identifier (npi, else taxId or ssn); the subscriber
 * needs at least one of memberId, dateOfBirth, lastName.
 *
 * Properties the schema does not list are ignored, as the schema allows.
 * It does not check what only the payer can judge (whether a member id
 * exists, whether a date of birth is a real calendar day): those come back
 * in the payer's answer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

enum ftype { T_STR, T_OBJ, T_ARR };

/* the schema's patterns */
enum fpat {
    P_ANY,
    P_DIGITS, /* ^[0-9]+$, or exactly .digits of them (^\d{10}$) */
    P_ALNUM,  /* ^[A-Za-z0-9]+$ */
    P_MEMBER, /* ^[A-Za-z0-9- ]+$ */
    P_DATE,   /* ^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$ */
};

typedef struct spec_obj spec_obj;

typedef struct spec_field {
    const char *name;
    enum ftype type;
    enum fpat pat;
    int digits;               /* P_DIGITS: exactly this many; 0 = one or more */
    int min, max;             /* characters of a string, or items of an array; max 0 = no limit */
    const char *const *enumv; /* NULL-terminated codes allowed (the string, or each item) */
    const spec_obj *obj;      /* the object, or each item of an array of objects */
} spec_field;

struct spec_obj {
    const spec_field *fields;
    size_t n;
    const char *required[5];
};

/* --- the schema (Stedi OpenAPI, healthcare.json, 2026-08-20) ------------- */

static const spec_field additional_identification_fields[] = {
    {"agencyClaimNumber", T_STR, .min = 1, .max = 50},
    {"contractNumber", T_STR, .min = 1, .max = 50},
    {"healthInsuranceClaimNumber", T_STR, .min = 1, .max = 50},
    {"identificationCardSerialNumber", T_STR, .min = 1, .max = 50},
    {"insurancePolicyNumber", T_STR, .min = 1, .max = 50},
    {"medicalRecordIdentificationNumber", T_STR, .min = 1, .max = 50},
    {"memberIdentificationNumber", T_STR, .min = 1, .max = 50},
    {"patientAccountNumber", T_STR, .min = 1, .max = 50},
    {"planNetworkIdentificationNumber", T_STR, .min = 1, .max = 50},
    {"planNumber", T_STR, .min = 1, .max = 50},
    {"policyNumber", T_STR, .min = 1, .max = 50},
};
/* AdditionalIdentificationDependent and ...Subscriber: the spec gives both the same fields */
static const spec_obj additional_identification = {
    additional_identification_fields, N_OF(additional_identification_fields), {NULL}};
static const char *const request_state_or_province_code[] = {
    "NL", "PE", "NS", "NB", "QC", "ON", "MB", "SK", "AB", "BC", "YT", "NT", "NU", "DC", "AS",
    "GU", "MP", "PR", "UM", "VI", "AA", "AE", "AP", "AK", "AL", "AR", "AZ", "CA", "CO", "CT",
    "DE", "FL", "GA", "HI", "IA", "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI",
    "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR",
    "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY", NULL};
static const spec_field request_dependent_address_fields[] = {
    {"address1", T_STR, .min = 1, .max = 55},
    {"address2", T_STR, .min = 1, .max = 55},
    {"city", T_STR, .min = 2, .max = 30},
    {"countryCode", T_STR, .min = 2, .max = 2},
    {"countrySubDivisionCode", T_STR, .min = 1, .max = 3},
    {"postalCode", T_STR, .min = 5, .max = 9},
    {"state", T_STR, .enumv = request_state_or_province_code},
};
static const spec_obj request_dependent_address = {request_dependent_address_fields,
                                                   N_OF(request_dependent_address_fields),
                                                   {"address1", "city", NULL}};
static const char *const gender[] = {"M", "F", NULL};
static const char *const diagnosis_type_code[] = {"BK", "ABK", "BF", "ABF", NULL};
static const spec_field health_care_information_fields[] = {
    {"diagnosisCode", T_STR, .pat = P_ALNUM, .min = 1, .max = 30},
    {"diagnosisTypeCode", T_STR, .enumv = diagnosis_type_code},
};
static const spec_obj health_care_information = {health_care_information_fields,
                                                 N_OF(health_care_information_fields),
                                                 {"diagnosisCode", "diagnosisTypeCode", NULL}};
static const char *const individual_relationship_code[] = {"01", "19", "34", NULL};
static const char *const request_dependent_provider_code[] = {"AD", "AT", "BI", "CO", "CV", "H",
                                                              "HH", "LA", "OT", "P1", "P2", "PC",
                                                              "PE", "R",  "RF", "SK", "SU", NULL};
static const char *const request_dependent_reference_identification_qualifier[] = {
    "9K", "D3", "EI", "HPI", "PXC", "SY", "TJ", NULL};
static const spec_field request_dependent_fields[] = {
    {"additionalIdentification", T_OBJ, .obj = &additional_identification},
    {"address", T_OBJ, .obj = &request_dependent_address},
    {"beginningCardIssueDate", T_STR, .pat = P_DATE},
    {"beginningPlanIssueDate", T_STR, .pat = P_DATE},
    {"birthSequenceNumber", T_STR, .pat = P_DIGITS, .min = 1, .max = 9},
    {"dateOfBirth", T_STR, .pat = P_DATE},
    {"eligibilityCategory", T_STR, .min = 1, .max = 50},
    {"endCardIssueDate", T_STR, .pat = P_DATE},
    {"endPlanIssueDate", T_STR, .pat = P_DATE},
    {"firstName", T_STR, .min = 1, .max = 35},
    {"gender", T_STR, .enumv = gender},
    {"groupNumber", T_STR, .min = 1, .max = 50},
    {"healthCareCodeInformation", T_ARR, .min = 1, .max = 8, .obj = &health_care_information},
    {"idCard", T_STR, .min = 1, .max = 50},
    {"idCardIssueDate", T_STR, .pat = P_DATE},
    {"individualRelationshipCode", T_STR, .enumv = individual_relationship_code},
    {"issueNumber", T_STR, .min = 1, .max = 50},
    {"lastName", T_STR, .min = 1, .max = 60},
    {"memberId", T_STR, .pat = P_MEMBER, .min = 2, .max = 80},
    {"middleName", T_STR, .min = 1, .max = 25},
    {"planIssueDate", T_STR, .pat = P_DATE},
    {"providerCode", T_STR, .enumv = request_dependent_provider_code},
    {"providerIdentifier", T_STR, .pat = P_ALNUM, .min = 1, .max = 50},
    {"referenceIdentificationQualifier", T_STR,
     .enumv = request_dependent_reference_identification_qualifier},
    {"ssn", T_STR, .pat = P_DIGITS, .digits = 9},
    {"suffix", T_STR, .min = 1, .max = 10},
};
static const spec_obj request_dependent = {
    request_dependent_fields, N_OF(request_dependent_fields), {NULL}};
static const char *const industry_code[] = {
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13",
    "14", "15", "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26",
    "31", "32", "33", "34", "41", "42", "49", "50", "51", "52", "53", "54", "55",
    "56", "57", "58", "60", "61", "62", "65", "71", "72", "81", "99", NULL};
static const char *const medical_procedure_product_or_service_i_d_qualifier[] = {
    "AD", "CJ", "HC", "ID", "IV", "N4", "ZZ", NULL};
static const spec_field medical_procedure_fields[] = {
    {"diagnosisCodePointer", T_ARR, .min = 1, .max = 4},
    {"procedureCode", T_STR, .min = 1, .max = 48},
    {"procedureModifiers", T_ARR, .min = 1, .max = 4},
    {"productOrServiceIDQualifier", T_STR,
     .enumv = medical_procedure_product_or_service_i_d_qualifier},
};
static const spec_obj medical_procedure = {medical_procedure_fields,
                                           N_OF(medical_procedure_fields),
                                           {"procedureCode", "productOrServiceIDQualifier", NULL}};
static const char *const encounter_product_or_service_i_d_qualifier[] = {"AD", "CJ", "HC", "ID",
                                                                         "IV", "N4", "ZZ", NULL};
static const char *const encounter_reference_identification_qualifier[] = {"9F", "G1", NULL};
static const char *const request_eligibility_service_type_code[] = {
    "1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",  "9",  "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "30", "32", "33", "34",
    "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48", "49", "50",
    "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63", "64", "65", "66",
    "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80", "81", "82",
    "83", "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96", "97", "98",
    "99", "A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "AA", "AB", "AC", "AD", "AE",
    "AF", "AG", "AH", "AI", "AJ", "AK", "AL", "AM", "AN", "AO", "AQ", "AR", "B1", "B2", "B3", "BA",
    "BB", "BC", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BK", "BL", "BM", "BN", "BP", "BQ", "BR",
    "BS", "BT", "BU", "BV", "BW", "BX", "BY", "BZ", "C1", "CA", "CB", "CC", "CD", "CE", "CF", "CG",
    "CH", "CI", "CJ", "CK", "CL", "CM", "CN", "CO", "CP", "CQ", "DG", "DM", "DS", "GF", "GN", "GY",
    "IC", "MH", "NI", "ON", "PT", "PU", "RN", "RT", "TC", "TN", "UC", NULL};
static const spec_field encounter_fields[] = {
    {"beginningDateOfService", T_STR, .pat = P_DATE},
    {"dateOfService", T_STR, .pat = P_DATE},
    {"diagnosisCodePointer", T_ARR, .min = 1, .max = 4},
    {"endDateOfService", T_STR, .pat = P_DATE},
    {"industryCode", T_STR, .enumv = industry_code},
    {"medicalProcedures", T_ARR, .min = 1, .max = 98, .obj = &medical_procedure},
    {"priorAuthorizationOrReferralNumber", T_STR},
    {"procedureCode", T_STR, .min = 1, .max = 48},
    {"procedureModifiers", T_ARR, .min = 1, .max = 4},
    {"productOrServiceIDQualifier", T_STR, .enumv = encounter_product_or_service_i_d_qualifier},
    {"referenceIdentificationQualifier", T_STR,
     .enumv = encounter_reference_identification_qualifier},
    {"serviceTypeCodes", T_ARR, .min = 1, .max = 99,
     .enumv = request_eligibility_service_type_code},
};
static const spec_obj encounter = {encounter_fields, N_OF(encounter_fields), {NULL}};
static const spec_field request_provider_address_fields[] = {
    {"address1", T_STR, .min = 1, .max = 55},
    {"address2", T_STR, .min = 1, .max = 55},
    {"city", T_STR, .min = 2, .max = 30},
    {"countryCode", T_STR, .min = 2, .max = 2},
    {"countrySubDivisionCode", T_STR, .min = 1, .max = 3},
    {"postalCode", T_STR, .min = 5, .max = 9},
    {"state", T_STR, .enumv = request_state_or_province_code},
};
static const spec_obj request_provider_address = {request_provider_address_fields,
                                                  N_OF(request_provider_address_fields),
                                                  {"address1", "city", NULL}};
static const spec_field information_receiver_name_fields[] = {
    {"address", T_OBJ, .obj = &request_provider_address},
    {"contactNumber", T_STR, .min = 1, .max = 50},
    {"contractNumber", T_STR, .min = 1, .max = 50},
    {"devicePinNumber", T_STR, .min = 1, .max = 50},
    {"facilityIdNumber", T_STR, .min = 1, .max = 50},
    {"facilityNetworkIdNumber", T_STR, .min = 1, .max = 50},
    {"federalTaxpayerIdentificationNumber", T_STR, .min = 1, .max = 50},
    {"informationReceiverAdditionalIdentifierState", T_STR, .min = 1, .max = 80},
    {"medicaidProviderNumber", T_STR, .min = 1, .max = 50},
    {"medicareProviderNumber", T_STR, .min = 1, .max = 50},
    {"nationalProviderIdentifier", T_STR, .min = 1, .max = 50},
    {"priorIdentifierNumber", T_STR, .min = 1, .max = 50},
    {"providerPlanNetworkIdNumber", T_STR, .min = 1, .max = 50},
    {"socialSecurityNumber", T_STR, .min = 1, .max = 50},
    {"stateLicenceNumber", T_STR, .min = 1, .max = 50},
    {"submitterIdNumber", T_STR, .min = 1, .max = 50},
};
static const spec_obj information_receiver_name = {
    information_receiver_name_fields, N_OF(information_receiver_name_fields), {NULL}};
static const char *const request_provider_code[] = {"AD", "AT", "BI", "CO", "CV", "H",  "HH",
                                                    "LA", "OT", "P1", "P2", "PC", "PE", "R",
                                                    "RF", "SB", "SK", "SU", NULL};
static const char *const provider_type[] = {
    "payer",    "third-party administrator", "employer",     "hospital",
    "facility", "gateway provider",          "plan sponsor", "provider",
    NULL};
static const spec_field provider_fields[] = {
    {"address", T_OBJ, .obj = &request_provider_address},
    {"contactNumber", T_STR, .min = 1, .max = 50},
    {"contractNumber", T_STR, .min = 1, .max = 50},
    {"devicePinNumber", T_STR, .min = 1, .max = 50},
    {"employersId", T_STR, .min = 2, .max = 80},
    {"facilityIdNumber", T_STR, .min = 1, .max = 50},
    {"facilityNetworkIdNumber", T_STR, .min = 1, .max = 50},
    {"firstName", T_STR, .min = 1, .max = 35},
    {"informationReceiverAdditionalIdentifierState", T_STR, .min = 1, .max = 80},
    {"lastName", T_STR, .min = 1, .max = 60},
    {"medicaidProviderNumber", T_STR, .min = 1, .max = 50},
    {"medicareProviderNumber", T_STR, .min = 1, .max = 50},
    {"npi", T_STR, .pat = P_DIGITS, .digits = 10},
    {"organizationName", T_STR, .min = 1, .max = 60},
    {"payorId", T_STR, .min = 2, .max = 80},
    {"pharmacyProcessorNumber", T_STR, .min = 2, .max = 80},
    {"priorIdentifierNumber", T_STR, .min = 1, .max = 50},
    {"providerCode", T_STR, .enumv = request_provider_code},
    {"providerPlanNetworkIdNumber", T_STR, .min = 1, .max = 50},
    {"providerType", T_STR, .enumv = provider_type},
    {"referenceIdentification", T_STR},
    {"serviceProviderNumber", T_STR, .min = 2, .max = 80},
    {"servicesPlanID", T_STR, .min = 2, .max = 80},
    {"ssn", T_STR, .pat = P_DIGITS, .digits = 9},
    {"stateLicenceNumber", T_STR, .min = 1, .max = 50},
    {"submitterIdNumber", T_STR, .min = 1, .max = 50},
    {"taxId", T_STR, .pat = P_DIGITS, .digits = 9},
};
static const spec_obj provider = {provider_fields, N_OF(provider_fields), {NULL}};
static const spec_field request_subscriber_address_fields[] = {
    {"address1", T_STR, .min = 1, .max = 55},
    {"address2", T_STR, .min = 1, .max = 55},
    {"city", T_STR, .min = 2, .max = 30},
    {"countryCode", T_STR, .min = 2, .max = 2},
    {"countrySubDivisionCode", T_STR, .min = 1, .max = 3},
    {"postalCode", T_STR, .min = 5, .max = 9},
    {"state", T_STR, .enumv = request_state_or_province_code},
};
static const spec_obj request_subscriber_address = {
    request_subscriber_address_fields, N_OF(request_subscriber_address_fields), {NULL}};
static const char *const request_subscriber_provider_code[] = {"AD", "AT", "BI", "CO", "CV", "H",
                                                               "HH", "LA", "OT", "P1", "P2", "PC",
                                                               "PE", "R",  "RF", "SK", "SU", NULL};
static const char *const request_subscriber_reference_identification_qualifier[] = {
    "9K", "D3", "EI", "HPI", "PXC", "SY", "TJ", NULL};
static const spec_field request_subscriber_fields[] = {
    {"additionalIdentification", T_OBJ, .obj = &additional_identification},
    {"address", T_OBJ, .obj = &request_subscriber_address},
    {"beginningCardIssueDate", T_STR, .pat = P_DATE},
    {"beginningPlanIssueDate", T_STR, .pat = P_DATE},
    {"birthSequenceNumber", T_STR, .pat = P_DIGITS, .digits = 1, .min = 1, .max = 9},
    {"caseNumber", T_STR, .pat = P_ALNUM, .min = 1, .max = 50},
    {"coverageLevelCode", T_STR},
    {"dateOfBirth", T_STR, .pat = P_DATE},
    {"endCardIssueDate", T_STR, .pat = P_DATE},
    {"endPlanIssueDate", T_STR, .pat = P_DATE},
    {"firstName", T_STR, .min = 1, .max = 35},
    {"gender", T_STR, .enumv = gender},
    {"groupNumber", T_STR, .min = 1, .max = 50},
    {"healthCareCodeInformation", T_ARR, .min = 1, .max = 8, .obj = &health_care_information},
    {"idCard", T_STR, .min = 1, .max = 50},
    {"idCardIssueDate", T_STR, .pat = P_DATE},
    {"lastName", T_STR, .min = 1, .max = 60},
    {"medicaidRecipientIdentificationNumber", T_STR, .pat = P_ALNUM, .min = 1, .max = 50},
    {"memberId", T_STR, .pat = P_MEMBER, .min = 2, .max = 80},
    {"middleName", T_STR, .min = 1, .max = 25},
    {"planIssueDate", T_STR, .pat = P_DATE},
    {"providerCode", T_STR, .enumv = request_subscriber_provider_code},
    {"providerIdentifier", T_STR, .pat = P_ALNUM, .min = 1, .max = 50},
    {"referenceIdentificationQualifier", T_STR,
     .enumv = request_subscriber_reference_identification_qualifier},
    {"spendDownAmount", T_STR, .min = 1, .max = 15},
    {"spendDownTotalBilledAmount", T_STR, .min = 1, .max = 15},
    {"ssn", T_STR, .pat = P_DIGITS, .digits = 9},
    {"suffix", T_STR, .min = 1, .max = 10},
};
static const spec_obj request_subscriber = {
    request_subscriber_fields, N_OF(request_subscriber_fields), {NULL}};
static const spec_field request_fields[] = {
    {"controlNumber", T_STR, .min = 9, .max = 9},
    {"dependents", T_ARR, .min = 1, .max = 1, .obj = &request_dependent},
    {"eligibilitySearchId", T_STR},
    {"encounter", T_OBJ, .obj = &encounter},
    {"externalPatientId", T_STR, .max = 36},
    {"informationReceiverName", T_OBJ, .obj = &information_receiver_name},
    {"portalPassword", T_STR, .min = 1, .max = 50},
    {"portalUsername", T_STR, .min = 1, .max = 50},
    {"provider", T_OBJ, .obj = &provider},
    {"submitterTransactionIdentifier", T_STR},
    {"subscriber", T_OBJ, .obj = &request_subscriber},
    {"tradingPartnerName", T_STR, .min = 1, .max = 60},
    {"tradingPartnerServiceId", T_STR, .min = 1, .max = 80},
};
static const spec_obj request = {request_fields,
                                 N_OF(request_fields),
                                 {"provider", "subscriber", "tradingPartnerServiceId", NULL}};

/* a batch item: the same properties, submitterTransactionIdentifier required too */
static const spec_obj batch_item = {
    request_fields,
    N_OF(request_fields),
    {"provider", "submitterTransactionIdentifier", "subscriber", "tradingPartnerServiceId", NULL}};

/* --- the walk ------------------------------------------------------------ */

/* where the walk is: a JSON pointer and the dotted name people read */
typedef struct where {
    char ptr[160], dot[160];
} where;

/* descend into name (or index when name is NULL); the caller restores *w afterwards */
static void descend(where *w, const char *name, int index)
{
    size_t lp = strlen(w->ptr), ld = strlen(w->dot);
    if (name != NULL) {
        snprintf(w->ptr + lp, sizeof w->ptr - lp, "/%s", name);
        snprintf(w->dot + ld, sizeof w->dot - ld, "%s%s", ld > 0 ? "." : "", name);
    } else {
        snprintf(w->ptr + lp, sizeof w->ptr - lp, "/%d", index);
        snprintf(w->dot + ld, sizeof w->dot - ld, "[%d]", index);
    }
}

/* sim_invalid_add - add one error (pointer path, then printf text); pure */
void sim_invalid_add(sim_invalid *v, const char *path, const char *fmt, ...)
{
    v->total++;
    if (v->n == SIM_MAX_FIELD_ERRORS)
        return;
    snprintf(v->e[v->n].path, sizeof v->e[v->n].path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->e[v->n].text, sizeof v->e[v->n].text, fmt, ap);
    va_end(ap);
    v->n++;
}

/* characters (code points) of UTF-8 text, as JSON Schema's length limits count them */
static int chars(const char *s)
{
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int all_of(const char *s, int (*ok)(int))
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!ok((unsigned char)*s))
            return 0;
    return 1;
}

static int member_char(int c)
{
    return is_alnum(c) || c == '-' || c == ' ';
}

/* the schema's date pattern: 8 digits, month 01-12, day 01-31 (not a calendar check) */
static int date_ok(const char *s)
{
    if (strlen(s) != 8 || !all_of(s, is_digit))
        return 0;
    int m = (s[4] - '0') * 10 + (s[5] - '0'), d = (s[6] - '0') * 10 + (s[7] - '0');
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* 1 if s matches f's pattern, else 0 with what it must look like in why */
static int pattern_ok(const spec_field *f, const char *s, char *why, size_t len)
{
    switch (f->pat) {
    case P_ANY:
        return 1;
    case P_DIGITS:
        if (f->digits > 0 && (strlen(s) != (size_t)f->digits || !all_of(s, is_digit))) {
            snprintf(why, len, "must be exactly %d digit%s", f->digits, f->digits > 1 ? "s" : "");
            return 0;
        }
        snprintf(why, len, "must hold digits only");
        return all_of(s, is_digit);
    case P_ALNUM:
        snprintf(why, len, "must hold only letters A-Z, a-z and digits");
        return all_of(s, is_alnum);
    case P_MEMBER:
        snprintf(why, len, "must hold only letters A-Z, a-z, digits, '-' and spaces");
        return all_of(s, member_char);
    case P_DATE:
        snprintf(why, len, "must be a date as YYYYMMDD");
        return date_ok(s);
    }
    return 1;
}

static int in_enum(const char *const *codes, const char *s)
{
    for (; *codes != NULL; codes++)
        if (strcmp(*codes, s) == 0)
            return 1;
    return 0;
}

static void check_obj(const cJSON *o, const spec_obj *s, where *w, sim_invalid *v);

/* one string value x of field f (or an item of its array) at w */
static void check_string(const cJSON *x, const spec_field *f, const where *w, sim_invalid *v)
{
    if (!cJSON_IsString(x)) {
        sim_invalid_add(v, w->ptr, "%s: must be a string", w->dot);
        return;
    }
    const char *s = x->valuestring;
    int n = chars(s);
    if (f->type == T_STR && (n < f->min || (f->max > 0 && n > f->max))) {
        if (f->max == 0)
            sim_invalid_add(v, w->ptr, "%s: must be at least %d characters (got %d)", w->dot,
                            f->min, n);
        else if (f->min == f->max)
            sim_invalid_add(v, w->ptr, "%s: must be %d characters (got %d)", w->dot, f->min, n);
        else
            sim_invalid_add(v, w->ptr, "%s: must be %d..%d characters (got %d)", w->dot, f->min,
                            f->max, n);
        return;
    }
    char why[80];
    if (!pattern_ok(f, s, why, sizeof why)) {
        sim_invalid_add(v, w->ptr, "%s: %s", w->dot, why);
        return;
    }
    char shown[41];
    if (f->enumv != NULL && !in_enum(f->enumv, s))
        sim_invalid_add(v, w->ptr, "%s: '%s' is not one of the codes Stedi accepts here", w->dot,
                        sim_excerpt(s, shown, sizeof shown));
}

static void check_field(const cJSON *x, const spec_field *f, where *w, sim_invalid *v)
{
    switch (f->type) {
    case T_STR:
        check_string(x, f, w, v);
        return;
    case T_OBJ:
        if (!cJSON_IsObject(x))
            sim_invalid_add(v, w->ptr, "%s: must be an object", w->dot);
        else
            check_obj(x, f->obj, w, v);
        return;
    case T_ARR:
        break;
    }
    if (!cJSON_IsArray(x)) {
        sim_invalid_add(v, w->ptr, "%s: must be an array", w->dot);
        return;
    }
    int n = cJSON_GetArraySize(x);
    if (n < f->min || (f->max > 0 && n > f->max)) {
        sim_invalid_add(v, w->ptr, "%s: must hold %d..%d items (got %d)", w->dot, f->min, f->max,
                        n);
        return;
    }
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, x)
    {
        where in = *w;
        descend(&in, NULL, i++);
        if (f->obj == NULL)
            check_string(it, f, &in, v);
        else if (!cJSON_IsObject(it))
            sim_invalid_add(v, in.ptr, "%s: must be an object", in.dot);
        else
            check_obj(it, f->obj, &in, v);
    }
}

static void check_obj(const cJSON *o, const spec_obj *s, where *w, sim_invalid *v)
{
    for (const char *const *r = s->required; *r != NULL; r++) {
        if (cJSON_GetObjectItemCaseSensitive(o, *r) == NULL) {
            where in = *w;
            descend(&in, *r, 0);
            sim_invalid_add(v, in.ptr, "%s: missing", in.dot);
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, s->fields[i].name);
        if (x == NULL)
            continue;
        where in = *w;
        descend(&in, s->fields[i].name, 0);
        check_field(x, &s->fields[i], &in, v);
    }
}

static int has(const cJSON *o, const char *name)
{
    return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* the rules the schema states in words rather than keywords */
static void check_rules(const cJSON *req, const where *w, sim_invalid *v)
{
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(req, "provider");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(req, "subscriber");
    where in;
    if (cJSON_IsObject(prov)) {
        if (!has(prov, "organizationName") && !(has(prov, "firstName") && has(prov, "lastName"))) {
            in = *w;
            descend(&in, "provider", 0);
            descend(&in, "organizationName", 0);
            sim_invalid_add(v, in.ptr,
                            "%s: missing (an individual provider gives firstName and lastName "
                            "instead)",
                            in.dot);
        }
        if (!has(prov, "npi") && !has(prov, "taxId") && !has(prov, "ssn")) {
            in = *w;
            descend(&in, "provider", 0);
            descend(&in, "npi", 0);
            sim_invalid_add(v, in.ptr,
                            "%s: missing (a provider without an NPI gives taxId or ssn instead)",
                            in.dot);
        }
    }
    if (cJSON_IsObject(sub) && !has(sub, "memberId") && !has(sub, "dateOfBirth") &&
        !has(sub, "lastName")) {
        in = *w;
        descend(&in, "subscriber", 0);
        sim_invalid_add(v, in.ptr, "%s: needs at least one of memberId, dateOfBirth, lastName",
                        in.dot);
    }
}

/* sim_check_request - check one eligibility check (items[item] of a batch when item >= 0) */
void sim_check_request(const cJSON *req, int item, sim_invalid *v)
{
    where w = {"", ""};
    if (item >= 0) {
        descend(&w, "items", 0);
        descend(&w, NULL, item);
    }
    if (!cJSON_IsObject(req)) {
        sim_invalid_add(v, w.ptr[0] ? w.ptr : "/", "%s: must be a JSON object",
                        w.dot[0] ? w.dot : "(request)");
        return;
    }
    int before = v->total;
    check_obj(req, item >= 0 ? &batch_item : &request, &w, v);
    if (v->total == before)
        check_rules(req, &w, v);
}

/* sim_utf8_ok - 1 if the n bytes at s are valid UTF-8 (no overlong forms, no surrogates) */
int sim_utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p++, min;
        int more;
        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            min = 0x10000;
        } else {
            return 0;
        }
        unsigned cp = c & (0x3Fu >> more);
        for (int i = 0; i < more; i++, p++) {
            if (p >= end || (*p & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (*p & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    return 1;
}

/* sim_excerpt - printable ASCII of s (else '?'), at most len - 1 bytes; returns out */
const char *sim_excerpt(const char *s, char *out, size_t len)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < len; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
    out[i] = '\0';
    return out;
}

/* sim_respond_invalid - 400 {"message","fieldList":[{"path","message"}]}; loop thread */
void sim_respond_invalid(rte_http_req *req, const sim_invalid *v)
{
    char msg[320];
    if (v->total > 1)
        snprintf(msg, sizeof msg, "%s (and %d more)", v->e[0].text, v->total - 1);
    else
        snprintf(msg, sizeof msg, "%s", v->n > 0 ? v->e[0].text : "invalid request");
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "message", msg);
    cJSON *list = cJSON_AddArrayToObject(d, "fieldList");
    for (int i = 0; i < v->n; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", v->e[i].path);
        cJSON_AddStringToObject(f, "message", v->e[i].text);
        cJSON_AddItemToArray(list, f);
    }
    rte_http_respond_json(req, 400, d);
    cJSON_Delete(d);
}
