/*
 * sim_answer.c - what stedi-sim's payers answer, in Stedi's published shapes.
 *
 * A member's answer is a pure function of the member id and the simulated
 * date: n = the trailing decimal digits of subscriber.memberId (the last
 * 18 of them; an id without trailing digits, or a check without a member
 * id, uses a hash of it or of the subscriber's names instead), and
 * n mod SIM_CLASSES picks a class from the table below. A class fixes the
 * benefit structure (which benefitsInformation rows: service types,
 * in-network "Y" / out-of-network "N" / not applicable "W" / unknown "U"
 * rows), the form of planDateInformation (a `plan` range, a `planBegin`
 * range, planBegin + planEnd, eligibilityBegin/eligibilityEnd only, ...),
 * whether the deprecated planStatus is sent, or a payer rejection: AAA 75
 * (subscriber not found) answered with HTTP 200, AAA 44 (provider name)
 * answered with HTTP 400 as Stedi's OpenAPI documents it. Amounts vary with
 * v = n / SIM_CLASSES: the office co-payment is {0,10,20,25,30,40,50}[v mod 7],
 * the individual deductible {250,500,1000,2000,3000}[(v / 7) mod 5].
 * docs/stedi-sim.md lists the classes for people picking test members.
 *
 * Dates follow the simulated year of the answer, so an active member is
 * active whenever the simulation runs. Ids (id, eligibilitySearchId,
 * traces, a generated controlNumber) derive from a caller's seed: random
 * per real-time call, fixed per batch item so every poll returns the same
 * bytes for it.
 *
 * Also here: the payer-side failures that are not a member's class -
 * a payer in a sim.downtime window (AAA 42), a payer Stedi does not know
 * (its own 400 with code 33, or a batch item that fails with AAA 79).
 *
 * It does not build the raw X12 (`x12`) nor answer for dependents: the
 * answer is always about the subscriber.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/log.h"
#include "sim.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define DAY_MS 86400000LL

/* --- code lists: the names Stedi prints beside each X12 code ------------- */

typedef struct code_name {
    const char *code, *name;
} code_name;

static const code_name benefit_names[] = {
    {"1", "Active Coverage"},
    {"6", "Inactive"},
    {"A", "Co-Insurance"},
    {"B", "Co-Payment"},
    {"C", "Deductible"},
    {"F", "Limitations"},
    {"G", "Out of Pocket (Stop Loss)"},
    {"I", "Non-Covered"},
    {"X", "Health Care Facility"},
};
static const code_name level_names[] = {{"IND", "Individual"}, {"FAM", "Family"}};
static const code_name network_names[] = {
    {"Y", "Yes"}, {"N", "No"}, {"U", "Unknown"}, {"W", "Not Applicable"}};
static const code_name time_names[] = {
    {"23", "Calendar Year"}, {"24", "Year to Date"}, {"27", "Visit"}, {"29", "Remaining"}};
static const code_name service_names[] = {
    {"30", "Health Benefit Plan Coverage"},
    {"86", "Emergency Services"},
    {"88", "Pharmacy"},
    {"98", "Professional (Physician) Visit - Office"},
    {"A6", "Psychotherapy"},
    {"AL", "Vision (Optometry)"},
    {"BZ", "Physician Visit - Office: Well"},
    {"MH", "Mental Health"},
    {"UC", "Urgent Care"},
};

static const char *name_of(const code_name *t, size_t n, const char *code)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].code, code) == 0)
            return t[i].name;
    rte_panic("stedi-sim: no name for code '%s'", code);
}

/* --- benefit structures -------------------------------------------------- */

enum amount {
    A_NONE,
    A_ZERO,      /* benefitAmount "0" */
    A_COPAY,     /* the member's office co-payment */
    A_COPAY_OON, /* out of network: 2 x copay + 20 */
    A_COPAY_UC,  /* urgent care: copay + 25 */
    A_COPAY_ER,  /* emergency: 150, or 250 when the copay is over 20 */
    A_DED,       /* individual deductible */
    A_DED_FAM,   /* 2 x deductible */
    A_DED_OON,   /* 3 x deductible */
    A_DED_LEFT,  /* half the deductible (met so far / remaining) */
    A_OOP,       /* individual out-of-pocket maximum */
    A_OOP_FAM,   /* 2 x out of pocket */
    A_OOP_OON,   /* 2 x out of pocket */
    A_PCT_ZERO,  /* benefitPercent "0" */
    A_PCT_IN,    /* benefitPercent "0.2" */
    A_PCT_OON,   /* benefitPercent "0.4" */
};

#define R_PLAN 1u     /* the coverage row: planCoverage and insuranceType */
#define R_OON_NOTE 2u /* the payer's note that the provider is out of network */

/* one benefitsInformation row */
typedef struct row {
    const char *code;  /* benefit code (EB01) */
    const char *level; /* coverageLevelCode, or NULL */
    const char *net;   /* inPlanNetworkIndicatorCode, or NULL */
    const char *stc;   /* service type codes, space-separated, or NULL */
    const char *tq;    /* timeQualifierCode, or NULL */
    enum amount amt;
    unsigned flags;
} row;

typedef struct structure {
    const char *name;
    const row *rows;
    size_t n;
    const char *status_stcs[3]; /* planStatus entries (service types of each) */
} structure;

/* the classic: coverage, deductible, out of pocket, in-network office co-payment */
static const row basic_rows[] = {
    {"1", NULL, "W", "30", NULL, A_NONE, R_PLAN}, {"C", "IND", "Y", "30", "23", A_DED, 0},
    {"C", "FAM", "Y", "30", "23", A_DED_FAM, 0},  {"G", "IND", "Y", "30", "23", A_OOP, 0},
    {"B", "IND", "Y", "98", "27", A_COPAY, 0},    {"A", "IND", "Y", "98", "27", A_PCT_ZERO, 0},
};

/* in- and out-of-network rows side by side */
static const row networks_rows[] = {
    {"1", NULL, "W", "30", NULL, A_NONE, R_PLAN},  {"C", "IND", "Y", "30", "23", A_DED, 0},
    {"C", "IND", "N", "30", "23", A_DED_OON, 0},   {"C", "FAM", "Y", "30", "23", A_DED_FAM, 0},
    {"C", "IND", "Y", "30", "29", A_DED_LEFT, 0},  {"G", "IND", "Y", "30", "23", A_OOP, 0},
    {"G", "IND", "N", "30", "23", A_OOP_OON, 0},   {"A", "IND", "Y", "30", NULL, A_PCT_IN, 0},
    {"A", "IND", "N", "30", NULL, A_PCT_OON, 0},   {"B", "IND", "Y", "98", "27", A_COPAY, 0},
    {"B", "IND", "N", "98", "27", A_COPAY_OON, 0},
};

/* several service types, each with its own co-payment; vision not covered */
static const row services_rows[] = {
    {"1", NULL, "W", "30", NULL, A_NONE, R_PLAN},
    {"1", NULL, "Y", "98 UC 86 MH 88", NULL, A_NONE, 0},
    {"C", "IND", "Y", "30", "23", A_DED, 0},
    {"G", "IND", "Y", "30", "23", A_OOP, 0},
    {"B", "IND", "Y", "98", "27", A_COPAY, 0},
    {"B", "IND", "Y", "BZ", "27", A_ZERO, 0},
    {"B", "IND", "Y", "UC", "27", A_COPAY_UC, 0},
    {"B", "IND", "Y", "86", "27", A_COPAY_ER, 0},
    {"A", "IND", "Y", "86", NULL, A_PCT_IN, 0},
    {"B", "IND", "Y", "MH", "27", A_COPAY, 0},
    {"B", "IND", "Y", "88", "27", A_COPAY, 0},
    {"I", NULL, NULL, "AL", NULL, A_NONE, 0},
};

/* no co-payment at all: deductible then co-insurance, in and out of network */
static const row coinsurance_rows[] = {
    {"1", NULL, "W", "30", NULL, A_NONE, R_PLAN}, {"C", "IND", "Y", "30", "23", A_DED, 0},
    {"C", "IND", "N", "30", "23", A_DED_OON, 0},  {"G", "IND", "Y", "30", "23", A_OOP, 0},
    {"G", "IND", "N", "30", "23", A_OOP_OON, 0},  {"A", "IND", "Y", "30", NULL, A_PCT_IN, 0},
    {"A", "IND", "N", "30", NULL, A_PCT_OON, 0},
};

/* the provider is out of the member's network: only "N" rows */
static const row out_of_network_rows[] = {
    {"1", NULL, "W", "30", NULL, A_NONE, R_PLAN | R_OON_NOTE},
    {"C", "IND", "N", "30", "23", A_DED_OON, 0},
    {"G", "IND", "N", "30", "23", A_OOP_OON, 0},
    {"B", "IND", "N", "98", "27", A_COPAY_OON, 0},
    {"A", "IND", "N", "98", NULL, A_PCT_OON, 0},
};

/* the payer does not say: "W" (not applicable) and "U" (unknown) rows */
static const row not_applicable_rows[] = {
    {"1", NULL, "W", "30", NULL, A_NONE, R_PLAN}, {"C", "IND", "W", "30", "23", A_DED, 0},
    {"G", "IND", "W", "30", "23", A_OOP, 0},      {"B", "IND", "W", "98", "27", A_COPAY, 0},
    {"A", "IND", "U", "98", NULL, A_PCT_IN, 0},
};

/* shaped like Stedi's own example answer: family accumulators, psychotherapy, a facility row */
static const row rich_rows[] = {
    {"1", NULL, "W", "30", NULL, A_NONE, R_PLAN}, {"C", "FAM", "Y", "30", "23", A_DED_FAM, 0},
    {"C", "FAM", "Y", "30", "24", A_DED_LEFT, 0}, {"C", "FAM", "Y", "30", "29", A_DED_LEFT, 0},
    {"C", "FAM", "N", "30", "23", A_DED_OON, 0},  {"G", "FAM", "Y", "30", "23", A_OOP_FAM, 0},
    {"G", "FAM", "N", "30", "23", A_OOP_OON, 0},  {"G", "FAM", "Y", "30", "29", A_OOP, 0},
    {"1", NULL, "Y", "A6", NULL, A_NONE, 0},      {"A", "IND", "Y", "A6", "27", A_PCT_IN, 0},
    {"A", "IND", "N", "A6", "27", A_PCT_OON, 0},  {"B", "IND", "Y", "A6", "27", A_COPAY, 0},
    {"C", "IND", "Y", "A6", "27", A_ZERO, 0},     {"F", "IND", "Y", "A6", "27", A_ZERO, 0},
    {"X", NULL, "W", NULL, NULL, A_NONE, 0},
};

static const row inactive_rows[] = {
    {"6", NULL, NULL, "30", NULL, A_NONE, R_PLAN},
};

#define STRUCTURE(id, rows, ...)                                                                   \
    {                                                                                              \
        id, rows, N_OF(rows),                                                                      \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
static const structure basic = STRUCTURE("basic", basic_rows, "30");
static const structure networks = STRUCTURE("in+out of network", networks_rows, "30");
static const structure services =
    STRUCTURE("several service types", services_rows, "30", "98 UC 86 MH 88");
static const structure coinsurance = STRUCTURE("co-insurance only", coinsurance_rows, "30");
static const structure out_of_network = STRUCTURE("out of network only", out_of_network_rows, "30");
static const structure not_applicable =
    STRUCTURE("network not applicable", not_applicable_rows, "30");
static const structure rich = STRUCTURE("rich (like Stedi's example)", rich_rows, "30", "A6");
static const structure inactive = STRUCTURE("inactive", inactive_rows, "30");

/* planDateInformation forms */
enum dates {
    D_PLAN,               /* plan: "Y0101-Y1231" */
    D_PLAN_BEGIN_RANGE,   /* planBegin: "Y0101-Y1231" */
    D_BEGIN_END,          /* planBegin: Y0101, planEnd: Y1231 */
    D_ELIGIBILITY,        /* eligibilityBegin/eligibilityEnd only, spanning two years */
    D_BEGIN_AND_PLAN,     /* planBegin: Y0101 and plan: "Y0101-Y1231" */
    D_ELIG_AND_BEGIN_END, /* eligibilityBegin two years back, planBegin, planEnd */
    D_PAST_BEGIN_END,     /* last year's planBegin/planEnd */
    D_ELIGIBILITY_ENDED,  /* eligibilityEnd: the last day of the previous month */
    D_PAST_PLAN,          /* plan: last year's range */
    D_REQUEST_DAY,        /* plan: the day of the check (as rejections carry it) */
};

enum kind { K_ACTIVE, K_INACTIVE, K_NOT_FOUND, K_PROVIDER };

typedef struct member_class {
    enum kind kind;
    const structure *s;
    enum dates dates;
    int plan_status; /* sends the deprecated planStatus */
} member_class;

/* member number mod SIM_CLASSES -> class; docs/stedi-sim.md has this table */
static const member_class classes[SIM_CLASSES] = {
    /* 0 */ {K_INACTIVE, &inactive, D_PAST_BEGIN_END, 1},
    /* 1 */ {K_ACTIVE, &basic, D_PLAN, 1},
    /* 2 */ {K_ACTIVE, &networks, D_PLAN, 0},
    /* 3 */ {K_ACTIVE, &services, D_PLAN_BEGIN_RANGE, 1},
    /* 4 */ {K_ACTIVE, &basic, D_ELIGIBILITY, 0},
    /* 5 */ {K_NOT_FOUND, NULL, D_REQUEST_DAY, 0},
    /* 6 */ {K_ACTIVE, &coinsurance, D_BEGIN_AND_PLAN, 1},
    /* 7 */ {K_ACTIVE, &out_of_network, D_BEGIN_END, 0},
    /* 8 */ {K_ACTIVE, &networks, D_ELIG_AND_BEGIN_END, 1},
    /* 9 */ {K_INACTIVE, &inactive, D_ELIGIBILITY_ENDED, 0},
    /* 10 */ {K_ACTIVE, &rich, D_PLAN, 1},
    /* 11 */ {K_ACTIVE, &services, D_PLAN, 0},
    /* 12 */ {K_ACTIVE, &not_applicable, D_PLAN_BEGIN_RANGE, 0},
    /* 13 */ {K_ACTIVE, &basic, D_BEGIN_END, 1},
    /* 14 */ {K_ACTIVE, &networks, D_PLAN_BEGIN_RANGE, 1},
    /* 15 */ {K_PROVIDER, NULL, D_REQUEST_DAY, 0},
    /* 16 */ {K_ACTIVE, &coinsurance, D_ELIGIBILITY, 0},
    /* 17 */ {K_ACTIVE, &services, D_ELIG_AND_BEGIN_END, 0},
    /* 18 */ {K_ACTIVE, &out_of_network, D_PLAN, 1},
    /* 19 */ {K_INACTIVE, &inactive, D_PAST_PLAN, 0},
};

static const int copays[] = {0, 10, 20, 25, 30, 40, 50};
static const int deductibles[] = {250, 500, 1000, 2000, 3000};
static const int out_of_pockets[] = {3000, 4000, 6000, 7500, 9000};
static const char *const plans[] = {"CHOICE PLUS", "OPEN ACCESS PLUS", "OPEN CHOICE PPO",
                                    "SELECT HMO", "GOLD EPO"};

/* --- small helpers ------------------------------------------------------- */

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* splitmix64: well-spread bits from any seed */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* sim_format_uuid - a UUID-shaped id (version 4 layout) drawn from (seed, k); pure */
void sim_format_uuid(uint64_t seed, uint64_t k, char out[37])
{
    uint64_t a = mix(seed ^ mix(k)), b = mix(a ^ 0x5bd1e995ULL);
    snprintf(out, 37, "%08llx-%04llx-4%03llx-%04llx-%012llx", (unsigned long long)(a >> 32),
             (unsigned long long)((a >> 16) & 0xffff), (unsigned long long)(a & 0xfff),
             (unsigned long long)(0x8000 | ((b >> 48) & 0x3fff)),
             (unsigned long long)(b & 0xffffffffffffULL));
}

/* a 26-character trace id in Crockford base32, like Stedi's outboundTraceId */
static void trace_id(uint64_t seed, char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t a = mix(seed ^ 0x7f4a7c15ULL), b = mix(a);
    for (int i = 0; i < 26; i++) {
        uint64_t *src = i < 13 ? &a : &b;
        out[i] = b32[*src & 31];
        *src >>= 5;
    }
    out[26] = '\0';
}

/* "YYYYMMDD" of a day number (days since 1970-01-01) */
static void ymd(int64_t days, char out[9])
{
    int64_t y;
    int m, d;
    rte_civil_from_days(days, &y, &m, &d);
    snprintf(out, 9, "%04d%02d%02d", (int)y, m, d);
}

static int64_t day_of(int y, int m, int d)
{
    return rte_days_from_civil(y, m, d);
}

static void upper_into(cJSON *o, const char *key, const char *s)
{
    char buf[512]; /* 60 characters of up to 4 bytes: never truncated */
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < sizeof buf; i++)
        buf[i] = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
    buf[i] = '\0';
    cJSON_AddStringToObject(o, key, buf);
}

/* sim_member_number - the trailing digits of subscriber.memberId (else a hash); pure */
uint64_t sim_member_number(const cJSON *req)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(req, "subscriber");
    const char *id = str_of(sub, "memberId");
    if (id != NULL) {
        size_t end = strlen(id), start = end;
        while (start > 0 && end - start < 18 && id[start - 1] >= '0' && id[start - 1] <= '9')
            start--;
        if (start < end) {
            uint64_t n = 0;
            for (size_t i = start; i < end; i++)
                n = n * 10 + (uint64_t)(id[i] - '0');
            return n;
        }
        return sim_hash(0, id);
    }
    /* found by demographics: the same person hashes the same way every time */
    uint64_t h = 0;
    static const char *const keys[] = {"firstName", "lastName", "dateOfBirth"};
    for (size_t i = 0; i < N_OF(keys); i++) {
        const char *v = str_of(sub, keys[i]);
        h = sim_hash(h, v != NULL ? v : "");
        h = sim_hash(h, "|");
    }
    return h;
}

/* --- the answer ---------------------------------------------------------- */

static const char *payer_name(const char *id, char *buf, size_t len)
{
    static const code_name known[] = {
        {"60054", "AETNA"}, {"61101", "HUMANA"}, {"62308", "CIGNA"}, {"87726", "UNITEDHEALTHCARE"}};
    for (size_t i = 0; i < N_OF(known); i++)
        if (strcmp(known[i].code, id) == 0)
            return known[i].name;
    snprintf(buf, len, "PAYER %s", id);
    return buf;
}

#define CN_MAX 40 /* a controlNumber is 9 characters, up to 4 bytes each */

/* controlNumber: the request's, else one Stedi would generate (9 digits) */
static void control_number(const cJSON *req, uint64_t seed, char out[CN_MAX])
{
    const char *cn = str_of(req, "controlNumber");
    if (cn != NULL)
        snprintf(out, CN_MAX, "%s", cn);
    else
        snprintf(out, CN_MAX, "%09llu",
                 (unsigned long long)(mix(seed ^ 0xc0ffeeULL) % 1000000000ULL));
}

/* what every answer about a check carries: ids, meta, payer, provider, subscriber */
static cJSON *envelope(const cJSON *req, uint64_t seed)
{
    cJSON *d = cJSON_CreateObject();
    char cn[CN_MAX], id[40], uuid[37], trace[27], pbuf[400];
    control_number(req, seed, cn);
    cJSON_AddStringToObject(d, "controlNumber", cn);
    cJSON_AddStringToObject(d, "reassociationKey", cn);
    const char *payer = str_of(req, "tradingPartnerServiceId");
    cJSON_AddStringToObject(d, "tradingPartnerServiceId", payer);
    sim_format_uuid(seed, 1, uuid);
    snprintf(id, sizeof id, "ec_%s", uuid);
    cJSON_AddStringToObject(d, "id", id);
    sim_format_uuid(seed, 2, uuid);
    cJSON_AddStringToObject(d, "eligibilitySearchId", uuid);

    cJSON *meta = cJSON_AddObjectToObject(d, "meta");
    trace_id(seed, trace);
    cJSON_AddStringToObject(meta, "applicationMode", "production");
    cJSON_AddStringToObject(meta, "outboundTraceId", trace);
    cJSON_AddStringToObject(meta, "senderId", "STEDI");
    cJSON_AddStringToObject(meta, "submitterId", "117151744");
    cJSON_AddStringToObject(meta, "traceId", trace);

    cJSON *p = cJSON_AddObjectToObject(d, "payer");
    cJSON_AddStringToObject(p, "entityIdentifier", "Payer");
    cJSON_AddStringToObject(p, "entityType", "Non-Person Entity");
    cJSON_AddStringToObject(p, "name", payer_name(payer, pbuf, sizeof pbuf));
    cJSON_AddStringToObject(p, "payorIdentification", payer);

    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(req, "provider");
    cJSON *prov = cJSON_AddObjectToObject(d, "provider");
    cJSON_AddStringToObject(prov, "entityIdentifier", "Provider");
    const char *org = str_of(rp, "organizationName");
    cJSON_AddStringToObject(prov, "entityType", org != NULL ? "Non-Person Entity" : "Person");
    if (str_of(rp, "npi") != NULL)
        cJSON_AddStringToObject(prov, "npi", str_of(rp, "npi"));
    if (org != NULL) {
        upper_into(prov, "providerName", org);
    } else {
        if (str_of(rp, "lastName") != NULL)
            upper_into(prov, "providerName", str_of(rp, "lastName"));
        if (str_of(rp, "firstName") != NULL)
            upper_into(prov, "providerFirstName", str_of(rp, "firstName"));
    }

    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(req, "subscriber");
    cJSON *sub = cJSON_AddObjectToObject(d, "subscriber");
    if (str_of(rs, "memberId") != NULL)
        cJSON_AddStringToObject(sub, "memberId", str_of(rs, "memberId"));
    if (str_of(rs, "firstName") != NULL)
        upper_into(sub, "firstName", str_of(rs, "firstName"));
    if (str_of(rs, "lastName") != NULL)
        upper_into(sub, "lastName", str_of(rs, "lastName"));
    if (str_of(rs, "dateOfBirth") != NULL)
        cJSON_AddStringToObject(sub, "dateOfBirth", str_of(rs, "dateOfBirth"));
    cJSON_AddStringToObject(sub, "entityIdentifier", "Insured or Subscriber");
    cJSON_AddStringToObject(sub, "entityType", "Person");
    return d;
}

/* one AAA error, added to errors[] and to the aaaErrors of the loop it belongs to */
static void add_aaa(cJSON *d, const char *loop_owner, const char *code, const char *desc,
                    const char *followup, const char *location, const char *resolution)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "description", desc);
    cJSON_AddStringToObject(e, "field", "AAA");
    cJSON_AddStringToObject(e, "followupAction", followup);
    cJSON_AddStringToObject(e, "location", location);
    cJSON_AddStringToObject(e, "possibleResolutions", resolution);
    cJSON *owner = cJSON_GetObjectItemCaseSensitive(d, loop_owner);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(owner, "aaaErrors");
    if (list == NULL)
        list = cJSON_AddArrayToObject(owner, "aaaErrors");
    cJSON_AddItemToArray(list, cJSON_Duplicate(e, 1));
    cJSON *errors = cJSON_GetObjectItemCaseSensitive(d, "errors");
    if (errors == NULL)
        errors = cJSON_AddArrayToObject(d, "errors");
    cJSON_AddItemToArray(errors, e);
}

/* the member's amounts */
typedef struct money {
    int copay, deductible, oop;
} money;

static void amount_text(enum amount a, const money *m, char *out, size_t len)
{
    int v = 0;
    switch (a) {
    case A_NONE:
    case A_ZERO:
    case A_PCT_ZERO:
        v = 0;
        break;
    case A_COPAY:
        v = m->copay;
        break;
    case A_COPAY_OON:
        v = 2 * m->copay + 20;
        break;
    case A_COPAY_UC:
        v = m->copay + 25;
        break;
    case A_COPAY_ER:
        v = m->copay > 20 ? 250 : 150;
        break;
    case A_DED:
        v = m->deductible;
        break;
    case A_DED_FAM:
        v = 2 * m->deductible;
        break;
    case A_DED_OON:
        v = 3 * m->deductible;
        break;
    case A_DED_LEFT:
        v = m->deductible / 2;
        break;
    case A_OOP:
        v = m->oop;
        break;
    case A_OOP_FAM:
    case A_OOP_OON:
        v = 2 * m->oop;
        break;
    case A_PCT_IN:
        snprintf(out, len, "0.2");
        return;
    case A_PCT_OON:
        snprintf(out, len, "0.4");
        return;
    }
    snprintf(out, len, "%d", v);
}

static cJSON *stc_array(const char *stcs, int names)
{
    cJSON *a = cJSON_CreateArray();
    char code[8];
    for (const char *p = stcs; *p != '\0';) {
        size_t n = strcspn(p, " ");
        snprintf(code, sizeof code, "%.*s", (int)n, p);
        cJSON_AddItemToArray(
            a,
            cJSON_CreateString(names ? name_of(service_names, N_OF(service_names), code) : code));
        p += n;
        while (*p == ' ')
            p++;
    }
    return a;
}

static cJSON *row_json(const row *r, const money *m, const char *plan)
{
    cJSON *o = cJSON_CreateObject();
    char amt[16];
    cJSON_AddStringToObject(o, "code", r->code);
    cJSON_AddStringToObject(o, "name", name_of(benefit_names, N_OF(benefit_names), r->code));
    if (r->level != NULL) {
        cJSON_AddStringToObject(o, "coverageLevelCode", r->level);
        cJSON_AddStringToObject(o, "coverageLevel",
                                name_of(level_names, N_OF(level_names), r->level));
    }
    if (r->stc != NULL) {
        cJSON_AddItemToObject(o, "serviceTypeCodes", stc_array(r->stc, 0));
        cJSON_AddItemToObject(o, "serviceTypes", stc_array(r->stc, 1));
    }
    if (r->tq != NULL) {
        cJSON_AddStringToObject(o, "timeQualifierCode", r->tq);
        cJSON_AddStringToObject(o, "timeQualifier", name_of(time_names, N_OF(time_names), r->tq));
    }
    if (r->amt != A_NONE) {
        amount_text(r->amt, m, amt, sizeof amt);
        int pct = r->amt == A_PCT_ZERO || r->amt == A_PCT_IN || r->amt == A_PCT_OON;
        cJSON_AddStringToObject(o, pct ? "benefitPercent" : "benefitAmount", amt);
    }
    if (r->net != NULL) {
        cJSON_AddStringToObject(o, "inPlanNetworkIndicatorCode", r->net);
        cJSON_AddStringToObject(o, "inPlanNetworkIndicator",
                                name_of(network_names, N_OF(network_names), r->net));
    }
    if (r->flags & R_PLAN) {
        cJSON_AddStringToObject(o, "planCoverage", plan);
        cJSON_AddStringToObject(o, "insuranceTypeCode", "C1");
        cJSON_AddStringToObject(o, "insuranceType", "Commercial");
    }
    if (r->flags & R_OON_NOTE) {
        cJSON *ai = cJSON_AddArrayToObject(o, "additionalInformation");
        cJSON *note = cJSON_CreateObject();
        cJSON_AddStringToObject(note, "description",
                                "Provider is out of network based on NPI ID provided in request.");
        cJSON_AddItemToArray(ai, note);
    }
    return o;
}

/* planDateInformation in the class's form; the coverage span into f */
static void add_dates(cJSON *d, enum dates form, uint64_t v, int64_t at_ms, sim_facts *f)
{
    int64_t today = at_ms >= 0 ? at_ms / DAY_MS : (at_ms - DAY_MS + 1) / DAY_MS, yy;
    int mm, dd;
    rte_civil_from_days(today, &yy, &mm, &dd);
    int y = (int)yy, month = (int)(v % 12) + 1;
    char a[9], b[9], c[9], range[20];
    cJSON *p = cJSON_AddObjectToObject(d, "planDateInformation");
    ymd(day_of(y, 1, 1), a);
    ymd(day_of(y, 12, 31), b);
    snprintf(range, sizeof range, "%s-%s", a, b);
    switch (form) {
    case D_PLAN:
        cJSON_AddStringToObject(p, "plan", range);
        break;
    case D_PLAN_BEGIN_RANGE:
        cJSON_AddStringToObject(p, "planBegin", range);
        break;
    case D_BEGIN_END:
        cJSON_AddStringToObject(p, "planBegin", a);
        cJSON_AddStringToObject(p, "planEnd", b);
        break;
    case D_BEGIN_AND_PLAN:
        cJSON_AddStringToObject(p, "planBegin", a);
        cJSON_AddStringToObject(p, "plan", range);
        break;
    case D_ELIGIBILITY:
        ymd(day_of(y - 1, month, 1), a);
        ymd(day_of(y + 1, month, 1) - 1, b);
        cJSON_AddStringToObject(p, "eligibilityBegin", a);
        cJSON_AddStringToObject(p, "eligibilityEnd", b);
        break;
    case D_ELIG_AND_BEGIN_END:
        ymd(day_of(y - 2, month, 1), c);
        cJSON_AddStringToObject(p, "eligibilityBegin", c);
        cJSON_AddStringToObject(p, "planBegin", a);
        cJSON_AddStringToObject(p, "planEnd", b);
        break;
    case D_PAST_BEGIN_END:
        ymd(day_of(y - 1, 1, 1), a);
        ymd(day_of(y - 1, 12, 31), b);
        cJSON_AddStringToObject(p, "planBegin", a);
        cJSON_AddStringToObject(p, "planEnd", b);
        break;
    case D_ELIGIBILITY_ENDED:
        ymd(day_of(y - 2, month, 1), a);
        ymd(day_of(y, mm, 1) - 1, b);
        cJSON_AddStringToObject(p, "eligibilityBegin", a);
        cJSON_AddStringToObject(p, "eligibilityEnd", b);
        break;
    case D_PAST_PLAN:
        ymd(day_of(y - 1, 1, 1), a);
        ymd(day_of(y - 1, 12, 31), b);
        snprintf(range, sizeof range, "%s-%s", a, b);
        cJSON_AddStringToObject(p, "plan", range);
        break;
    case D_REQUEST_DAY:
        ymd(today, a);
        b[0] = '\0';
        cJSON_AddStringToObject(p, "plan", a);
        break;
    }
    memcpy(f->begin, a, sizeof f->begin);
    memcpy(f->end, b, sizeof f->end);
}

static void add_structure(cJSON *d, const member_class *c, const money *m, const char *plan,
                          sim_facts *f)
{
    int active = c->kind == K_ACTIVE;
    if (c->plan_status) {
        cJSON *ps = cJSON_AddArrayToObject(d, "planStatus");
        for (size_t i = 0; i < N_OF(c->s->status_stcs) && c->s->status_stcs[i]; i++) {
            cJSON *e = cJSON_CreateObject();
            if (i == 0)
                cJSON_AddStringToObject(e, "planDetails", plan);
            cJSON_AddItemToObject(e, "serviceTypeCodes", stc_array(c->s->status_stcs[i], 0));
            cJSON_AddStringToObject(e, "status", active ? "Active Coverage" : "Inactive");
            cJSON_AddStringToObject(e, "statusCode", active ? "1" : "6");
            cJSON_AddItemToArray(ps, e);
        }
    }
    cJSON *bi = cJSON_AddArrayToObject(d, "benefitsInformation");
    const row *copay = NULL;
    for (size_t i = 0; i < c->s->n; i++) {
        const row *r = &c->s->rows[i];
        cJSON_AddItemToArray(bi, row_json(r, m, plan));
        if (strcmp(r->code, "B") == 0 &&
            (copay == NULL || (strcmp(copay->net, "Y") != 0 && strcmp(r->net, "Y") == 0)))
            copay = r;
    }
    if (copay != NULL) {
        char amt[16];
        amount_text(copay->amt, m, amt, sizeof amt);
        f->copay = (int)strtol(amt, NULL, 10);
        f->network = copay->net[0];
    } else if (active) {
        f->network = 'Y'; /* co-insurance only: the in-network rows come first */
    }
}

/* sim_answer - the payer's 271 for a valid check, from the member's class; caller frees */
cJSON *sim_answer(const cJSON *req, int64_t at_ms, uint64_t seed, sim_facts *facts)
{
    uint64_t n = sim_member_number(req), v = n / SIM_CLASSES;
    const member_class *c = &classes[n % SIM_CLASSES];
    sim_facts f = {.result = SIM_ACTIVE, .http_status = 200, .copay = -1};
    money m = {copays[v % N_OF(copays)], deductibles[(v / 7) % N_OF(deductibles)],
               out_of_pockets[(v / 7) % N_OF(out_of_pockets)]};
    const char *plan = plans[(v / 35) % N_OF(plans)];
    char group[16];
    cJSON *d = envelope(req, seed);

    switch (c->kind) {
    case K_NOT_FOUND:
        f.result = SIM_REJECTED;
        f.aaa = "75";
        add_aaa(d, "subscriber", "75", "Subscriber/Insured Not Found",
                "Please Correct and Resubmit", "Loop 2100C",
                "The payer has no member matching the subscriber's details. Check the member ID, "
                "name and date of birth against the member's insurance card.");
        break;
    case K_PROVIDER:
        f.result = SIM_REJECTED;
        f.http_status = 400;
        f.aaa = "44";
        add_aaa(d, "provider", "44", "Invalid/Missing Provider Name", "Please Correct and Resubmit",
                "Loop 2100B",
                "Provider's NPI is registered with incorrect name at the payer. Contact the payer "
                "directly to resolve the issue.");
        break;
    case K_ACTIVE:
    case K_INACTIVE:
        f.result = c->kind == K_ACTIVE ? SIM_ACTIVE : SIM_INACTIVE;
        snprintf(group, sizeof group, "G%06llu", (unsigned long long)((n * 7919) % 1000000));
        cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "planInformation"), "groupNumber",
                                group);
        cJSON_AddArrayToObject(d, "errors");
        add_structure(d, c, &m, plan, &f);
        break;
    }
    add_dates(d, c->dates, v, at_ms, &f);
    if (c->kind != K_ACTIVE && c->kind != K_INACTIVE)
        f.begin[0] = f.end[0] = '\0';
    if (facts != NULL)
        *facts = f;
    return d;
}

/* sim_answer_payer_down - the 271 of a payer that cannot answer (AAA 42); caller frees */
cJSON *sim_answer_payer_down(const cJSON *req, int64_t at_ms, uint64_t seed)
{
    (void)at_ms;
    cJSON *d = envelope(req, seed);
    add_aaa(d, "payer", "42", "Unable to Respond at Current Time", "Resubmission Allowed",
            "Loop 2100A",
            "The payer is temporarily unable to respond. Retry the eligibility check later.");
    return d;
}

/* sim_answer_unknown_payer - Stedi's 400 body for a payer it does not know; caller frees */
cJSON *sim_answer_unknown_payer(const cJSON *req)
{
    char cn[CN_MAX], text[512];
    const char *payer = str_of(req, "tradingPartnerServiceId");
    control_number(req, sim_hash(0, payer), cn);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "controlNumber", cn);
    cJSON_AddStringToObject(d, "tradingPartnerServiceId", payer);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "code", "33");
    snprintf(text, sizeof text,
             "Payer %s is not configured. Please check our published payer list or contact "
             "Stedi support to resolve.",
             payer);
    cJSON_AddStringToObject(e, "description", text);
    /* the docs page prints the raw X12 letter "C"; the OpenAPI enum allows only the words */
    cJSON_AddStringToObject(e, "followupAction", "Please Correct and Resubmit");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "errors"), e);
    cJSON_AddStringToObject(d, "status", "ERROR");
    return d;
}

/* sim_answer_failed_item - a batch check Stedi gave up on (status "ERROR"); caller frees */
cJSON *sim_answer_failed_item(const cJSON *req, uint64_t seed, int unknown_payer, int retry_hours)
{
    char cn[CN_MAX], uuid[37], id[40], trace[27], text[512];
    const char *payer = str_of(req, "tradingPartnerServiceId");
    cJSON *d = cJSON_CreateObject();
    control_number(req, seed, cn);
    cJSON_AddStringToObject(d, "controlNumber", cn);
    sim_format_uuid(seed, 2, uuid);
    cJSON_AddStringToObject(d, "eligibilitySearchId", uuid);
    cJSON *e = cJSON_CreateObject();
    if (unknown_payer) {
        cJSON_AddStringToObject(e, "code", "79");
        cJSON_AddStringToObject(e, "description", "Invalid Participant Identification");
        cJSON_AddStringToObject(e, "followupAction", "Please Correct and Resubmit");
        cJSON_AddStringToObject(e, "location", "2100A");
        snprintf(text, sizeof text,
                 "Payer %s is not configured. Please check our published payer list or "
                 "contact Stedi support to resolve.",
                 payer);
    } else {
        cJSON_AddStringToObject(e, "code", "42");
        cJSON_AddStringToObject(e, "description", "Unable to Respond at Current Time");
        cJSON_AddStringToObject(e, "followupAction", "Resubmission Allowed");
        cJSON_AddStringToObject(e, "location", "Loop 2100A");
        snprintf(text, sizeof text,
                 "The payer did not respond during %d hours of retries. Submit the check again "
                 "later.",
                 retry_hours);
    }
    cJSON_AddStringToObject(e, "possibleResolutions", text);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "errors"), e);
    sim_format_uuid(seed, 1, uuid);
    snprintf(id, sizeof id, "ec_%s", uuid);
    cJSON_AddStringToObject(d, "id", id);
    trace_id(seed, trace);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "meta"), "outboundTraceId", trace);
    cJSON_AddStringToObject(d, "status", "ERROR");
    cJSON_AddStringToObject(d, "tradingPartnerServiceId", payer);
    return d;
}

/* --- payers -------------------------------------------------------------- */

/* sim_payer_unknown - 1 if payer is in sim.unknown_payers; pure */
int sim_payer_unknown(const char *payer)
{
    size_t n = strlen(payer);
    for (const char *p = sim_conf.unknown_payers; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && p[trimmed - 1] == ' ')
            trimmed--;
        if (trimmed == n && trimmed > 0 && memcmp(p, payer, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

static int in_window(const char *payer, int64_t at_ms)
{
    int64_t minute = (at_ms / 60000) % 1440;
    int m = (int)(minute < 0 ? minute + 1440 : minute);
    for (int i = 0; i < sim_conf.ndowntime; i++) {
        const sim_downtime *w = &sim_conf.downtime[i];
        if (strcmp(w->payer, payer) != 0)
            continue;
        if (w->start_min <= w->end_min ? (m >= w->start_min && m < w->end_min)
                                       : (m >= w->start_min || m < w->end_min))
            return 1;
    }
    return 0;
}

/* sim_downtime_end - when the downtime covering at_ms ends, or -1 when the payer is up */
int64_t sim_downtime_end(const char *payer, int64_t at_ms)
{
    if (!in_window(payer, at_ms))
        return -1;
    int64_t t = (at_ms / 60000 + 1) * 60000;
    for (int i = 0; i < 1441 && in_window(payer, t); i++)
        t += 60000;
    return t;
}
