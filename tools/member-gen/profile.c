/*
 * profile.c - member-gen's MemberQuery attributes: benefit contract, feature
 * options, coverage and insurance plan, family, demographics, engagement,
 * care journey, recent events, risk, biometrics, SDOH, provider network,
 * life events and time zone (docs/member-query.md lists every key).
 *
 * Each member's profile is drawn from its own xoshiro stream seeded from
 * (seed, member index), so adding it left the base fields (and --truth)
 * exactly as before, and a profile never depends on other members.
 * Sponsor-level facts (benefit contract, services, customer feature
 * options, self-funding, employer, group) come from a hash of the sponsor
 * number, so all members of a sponsor share them.
 *
 * Correlations drawn on purpose: age drives Medicare / senior plans,
 * chronic conditions, prescriptions, risk, ER visits and cost; plan type
 * drives network type, deductibles, HSA and metal tier; engagement (days
 * since last login, enrollment age) drives the cohort, the events of the
 * last 90 days, unread/sent messages and churn risk; chronic conditions
 * drive programs, care gaps, utilisation and glucose monitors; SDOH
 * barriers exist only where a screening was done.
 */
#include "gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const payer_names[] = {"Aetna",
                                          "Aetna",
                                          "UnitedHealthcare",
                                          "UnitedHealthcare",
                                          "UnitedHealthcare",
                                          "Cigna",
                                          "Blue Cross Blue Shield",
                                          "Kaiser Permanente",
                                          "Humana"};

/* city and its 3-digit ZIP prefix, per state (index = states[] index) */
static const struct {
    const char *city[3];
    const char *zip3[3];
    const char *tz;
} geo[] = {
    {{"San Francisco", "Oakland", "San Jose"}, {"941", "946", "951"}, "America/Los_Angeles"}, /*CA*/
    {{"Houston", "Dallas", "Austin"}, {"770", "752", "787"}, "America/Chicago"},
    {{"Miami", "Orlando", "Tampa"}, {"331", "328", "336"}, "America/New_York"},
    {{"New York", "Buffalo", "Albany"}, {"100", "142", "122"}, "America/New_York"},
    {{"Philadelphia", "Pittsburgh", "Allentown"}, {"191", "152", "181"}, "America/New_York"},
    {{"Chicago", "Springfield", "Peoria"}, {"606", "627", "616"}, "America/Chicago"},
    {{"Columbus", "Cleveland", "Cincinnati"}, {"432", "441", "452"}, "America/New_York"},
    {{"Atlanta", "Savannah", "Augusta"}, {"303", "314", "309"}, "America/New_York"},
    {{"Charlotte", "Raleigh", "Durham"}, {"282", "276", "277"}, "America/New_York"},
    {{"Detroit", "Grand Rapids", "Lansing"}, {"482", "495", "489"}, "America/Detroit"},
    {{"Newark", "Jersey City", "Trenton"}, {"071", "073", "086"}, "America/New_York"},
    {{"Richmond", "Norfolk", "Arlington"}, {"232", "235", "222"}, "America/New_York"},
    {{"Seattle", "Spokane", "Tacoma"}, {"981", "992", "984"}, "America/Los_Angeles"},
    {{"Phoenix", "Tucson", "Mesa"}, {"850", "857", "852"}, "America/Phoenix"},
    {{"Boston", "Worcester", "Springfield"}, {"021", "016", "011"}, "America/New_York"},
    {{"Nashville", "Memphis", "Knoxville"}, {"372", "381", "379"}, "America/Chicago"},
    {{"Indianapolis", "Fort Wayne", "Evansville"},
     {"462", "468", "477"},
     "America/Indiana/Indianapolis"},
    {{"Kansas City", "St. Louis", "Springfield"}, {"641", "631", "658"}, "America/Chicago"},
    {{"Baltimore", "Annapolis", "Rockville"}, {"212", "214", "208"}, "America/New_York"},
    {{"Milwaukee", "Madison", "Green Bay"}, {"532", "537", "543"}, "America/Chicago"},
    {{"Denver", "Boulder", "Aurora"}, {"802", "803", "800"}, "America/Denver"},
    {{"Minneapolis", "St. Paul", "Duluth"}, {"554", "551", "558"}, "America/Chicago"},
    {{"Columbia", "Charleston", "Greenville"}, {"292", "294", "296"}, "America/New_York"},
    {{"Birmingham", "Montgomery", "Mobile"}, {"352", "361", "366"}, "America/Chicago"},
    {{"New Orleans", "Baton Rouge", "Shreveport"}, {"701", "708", "711"}, "America/Chicago"},
    {{"Louisville", "Lexington", "Bowling Green"}, {"402", "405", "421"}, "America/New_York"},
    {{"Portland", "Eugene", "Salem"}, {"972", "974", "973"}, "America/Los_Angeles"},
    {{"Oklahoma City", "Tulsa", "Norman"}, {"731", "741", "730"}, "America/Chicago"},
    {{"Hartford", "New Haven", "Stamford"}, {"061", "065", "069"}, "America/New_York"},
    {{"Salt Lake City", "Provo", "Ogden"}, {"841", "846", "844"}, "America/Denver"},
};

static const char *const services[] = {
    "VPC",        "BH_THERAPY",   "BH_PSYCHIATRY",     "CHRONIC_CARE_MANAGEMENT",
    "PHARMACY",   "LAB_SERVICES", "PRIMARY_CARE",      "SPECIALIST_REFERRAL",
    "SPECIALIST", "EMO",          "MATERNITY_SUPPORT", "MSK_PHYSICAL_THERAPY"};
static const char *const features[] = {"messaging", "appointments", "benefits_lookup", "pharmacy",
                                       "care_team", "wellness",     "billing"};
static const char *const programs[] = {"CHRONIC_CARE_MANAGEMENT", "BEHAVIORAL_HEALTH", "MATERNITY",
                                       "MUSCULOSKELETAL", "PHARMACY_SUPPORT"};
static const char *const deliveries[] = {"EMO", "VPC_VISIT", "LABS", "BH_SESSION", "COACHING"};
static const char *const gaps[] = {
    "HEDIS_COLORECTAL_SCREENING", "A1C_MANAGEMENT",      "PHQ9_FOLLOWUP",
    "MEDICATION_ADHERENCE",       "POST_VISIT_FOLLOWUP", "LAB_ORDER_PENDING",
    "BREAST_CANCER_SCREENING",    "FLU_VACCINE"};
static const char *const conditions[] = {"DIABETES",      "HYPERTENSION", "ASTHMA",  "COPD",
                                         "HEART_DISEASE", "DEPRESSION",   "ANXIETY", "CKD",
                                         "OBESITY",       "ARTHRITIS"};
/* chance of each condition at 30 and at 75 (linear in between, clamped) */
static const double cond_p30[] = {0.04, 0.08, 0.08, 0.01, 0.01, 0.09, 0.10, 0.01, 0.12, 0.04};
static const double cond_p75[] = {0.27, 0.60, 0.07, 0.11, 0.25, 0.10, 0.08, 0.15, 0.15, 0.45};
static const char *const devices[] = {
    "apple_watch",         "fitbit",     "garmin", "continuous_glucose_monitor",
    "blood_pressure_cuff", "smart_scale"};
static const char *const provider_types[] = {"PCP",   "SPECIALIST",   "BH_THERAPIST",
                                             "OBGYN", "CARDIOLOGIST", "ENDOCRINOLOGIST"};
static const char *const life_events[] = {"BIRTH", "MARRIAGE", "JOB_CHANGE",
                                          "MOVE",  "DIVORCE",  "RETIREMENT"};
static const char *const races[] = {"WHITE",
                                    "WHITE",
                                    "WHITE",
                                    "WHITE",
                                    "WHITE",
                                    "HISPANIC_OR_LATINO",
                                    "HISPANIC_OR_LATINO",
                                    "BLACK_OR_AFRICAN_AMERICAN",
                                    "ASIAN",
                                    "AMERICAN_INDIAN_OR_ALASKA_NATIVE",
                                    "NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER",
                                    "TWO_OR_MORE",
                                    "DECLINED"};

/* event types with their source service; weights per engagement level */
static const struct {
    const char *type, *source;
    double weight;
} events[] = {
    {"domain.authentication.v1.SIGNIN", "mx-backend", 10},
    {"domain.authentication.v1.SESSION_REFRESH", "mx-backend", 4},
    {"domain.authentication.v1.LOGOUT", "mx-backend", 2},
    {"domain.accounts.v1.ACCOUNT_UPDATED", "accounts", 0.5},
    {"domain.enrollment.v1.ENROLLED", "member-sponsorship", 0}, /* new members only */
    {"domain.enrollment.v1.COVERAGE_CHANGED", "coverage-server", 0.3},
    {"domain.engagement.v1.APP_SESSION_STARTED", "mx-backend", 8},
    {"domain.engagement.v1.HOMEPAGE_VIEWED", "mx-backend", 6},
    {"domain.engagement.v1.FEATURE_USED", "mx-backend", 5},
    {"domain.scheduling.v1.APPOINTMENT_BOOKED", "scheduling", 1},
    {"domain.scheduling.v1.APPOINTMENT_CANCELLED", "scheduling", 0.3},
    {"domain.messaging.v1.MESSAGE_SENT", "messaging", 1.5},
    {"domain.messaging.v1.MESSAGE_RECEIVED", "messaging", 2},
    {"domain.communications.v1.NOTIFICATION_OPENED", "notifications", 2},
    {"domain.search.v1.PROVIDER_SEARCHED", "search", 1},
    {"domain.care.v1.PROGRAM_ENROLLED", "care-services", 0.1},
    {"domain.care.v1.SERVICE_DELIVERED", "care-services", 0.4},
    {"domain.care.v1.CARE_GAP_UPDATED", "care-gap", 0.3},
    {"domain.clinical.v1.LAB_RESULT", "clinical", 0.4},
    {"domain.clinical.v1.PRESCRIPTION_FILLED", "pharmacy", 0.8},
    {"domain.clinical.v1.CLAIM_PROCESSED", "claims", 0.8},
    {"domain.recommendations.v1.RECOMMENDATION_SHOWN", "recommendations", 1},
    {"domain.payments.v1.PAYMENT_MADE", "payments", 0.3},
    {"domain.rte.v1.ELIGIBILITY_CHECKED", "realtime-eligibility", 1},
    {"domain.rte.v1.ELIGIBILITY_ERROR", "realtime-eligibility", 0.1},
};
enum { EV_ENROLLED = 4, EV_FEATURE = 8, EV_PROGRAM = 15, EV_RX = 19, EV_ERROR = 24 };

typedef struct ev {
    int64_t at;
    int type, feature;
} ev;

static void key(outbuf *o, const char *k)
{
    put_str(o, ",\"");
    put_str(o, k);
    put_str(o, "\":");
}

static void kstr(outbuf *o, const char *k, const char *v)
{
    key(o, k);
    if (!v) {
        put_str(o, "null");
        return;
    }
    *o->p++ = '"';
    put_str(o, v);
    *o->p++ = '"';
}

/* a flag; false ones are left out (an absent flag reads as false) */
static void kbool(outbuf *o, const char *k, int v)
{
    if (!v)
        return;
    key(o, k);
    put_str(o, "true");
}

static void kint(outbuf *o, const char *k, int64_t v)
{
    key(o, k);
    put_uint(o, (uint64_t)v, 1);
}

/* a non-negative amount with two decimals */
static void kmoney(outbuf *o, const char *k, double v)
{
    key(o, k);
    put_fixed(o, (uint64_t)llround(v * 100.0), 2);
}

static void ktime(outbuf *o, const char *k, int64_t ms)
{
    key(o, k);
    put_time(o, ms);
}

static void kdate(outbuf *o, const char *k, int64_t ms)
{
    key(o, k);
    put_date(o, ms);
}

static void kset(outbuf *o, const char *k, const char *const *names, size_t n, unsigned mask)
{
    int first = 1;
    if (!mask)
        return; /* an absent set reads as empty */
    key(o, k);
    *o->p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (!first)
            *o->p++ = ',';
        first = 0;
        *o->p++ = '"';
        put_str(o, names[i]);
        *o->p++ = '"';
    }
    *o->p++ = ']';
}

static int bern(prng *q, double p)
{
    return prng_u01(q) < p;
}

static double clamp01(double v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

/* the sponsor's own stream: the same for all its members */
static uint64_t sponsor_bits(int sponsor, int salt)
{
    uint64_t x = (uint64_t)sponsor * 1000003ULL + (uint64_t)salt;
    return splitmix64(&x);
}

static int cmp_ev(const void *a, const void *b)
{
    const ev *x = a, *y = b;
    return x->at < y->at ? 1 : x->at > y->at ? -1 : x->type - y->type; /* newest first */
}

/* profile_gen - see gen.h */
void profile_gen(uint64_t seed, uint64_t i, const member *m, int64_t now_ms, profile *pf)
{
    prng q;
    uint64_t x = seed ^ 0x5bd1e9955bd1e995ULL;
    x = splitmix64(&x) + i;
    prng_seed(&q, splitmix64(&x));
    outbuf o = {pf->text};
    double age = (double)(now_ms - m->dob_ms) / (365.25 * DAY_MS);
    double ageu = clamp01((age - 30.0) / 45.0);
    double days_login = m->login_ms < 0 ? 9999 : (double)(now_ms - m->login_ms) / DAY_MS;
    double days_enrolled = (double)(now_ms - m->enroll_ms) / DAY_MS;
    const char *plan = NULL;
    static const char *const base_plans[] = {"PPO", "PPO", "HMO", "HMO", "HMO", "EPO", "HDHP"};

    /* --- insurance plan ----------------------------------------------------- */
    plan = base_plans[m->plan];
    if (age >= 65) {
        double r = prng_u01(&q);
        plan = r < 0.50 ? "MEDICARE_ADVANTAGE" : r < 0.85 ? "MEDICARE" : "DUAL_ELIGIBLE";
    } else if (bern(&q, 0.07)) {
        plan = "MEDICAID";
    } else if (bern(&q, 0.05)) {
        plan = "POS";
    }
    pf->plan_type = plan;
    int hmo =
        !strcmp(plan, "HMO") || !strcmp(plan, "MEDICAID") || !strcmp(plan, "MEDICARE_ADVANTAGE");
    int hdhp = !strcmp(plan, "HDHP");
    int medicare = !strncmp(plan, "MEDICARE", 8) || !strcmp(plan, "DUAL_ELIGIBLE");
    int government = medicare || !strcmp(plan, "MEDICAID");
    uint64_t sb = sponsor_bits(m->sponsor, 1);
    int self_funded = !government && (sb & 3) != 0; /* 3 of 4 employers self-fund */
    int marketplace = !government && !self_funded && bern(&q, 0.25);
    const char *payer_name = payer_names[m->payer];
    if (!strcmp(payer_name, "Blue Cross Blue Shield") && m->state == 0 && !strcmp(plan, "HMO"))
        payer_name = "Blue Shield HMO";

    /* --- benefit contract (the sponsor's) ------------------------------------ */
    unsigned svc = (unsigned)(sb >> 8) & 0xfffu;
    svc |= 1u << 6; /* PRIMARY_CARE everywhere */
    if (!government)
        svc |= 1u << 0; /* VPC with every employer contract */
    if (medicare)
        svc |= (1u << 3) | (1u << 4); /* CCM and PHARMACY with Medicare plans */
    unsigned top = svc & (unsigned)(sb >> 24) & 0xfffu;
    int contract_year = 2023 + (int)((sb >> 40) % 3);
    int64_t contract_start = (int64_t)(contract_year - 1970) * 36525 / 100 * DAY_MS;
    contract_start -= contract_start % DAY_MS;
    int64_t contract_end = contract_start + (int64_t)(365 * (2 + (sb >> 44) % 3)) * DAY_MS;
    if (((sb >> 50) & 15) == 0) /* a few sponsors signed a contract that starts next month */
        contract_start = now_ms + 30 * DAY_MS - (now_ms % DAY_MS);

    put_str(&o, ",\"benefit_contract_id\":\"BC-SP");
    put_uint(&o, (uint64_t)m->sponsor, 4);
    *o.p++ = '"';
    kset(&o, "healthcare_services", services, N_OF(services), svc);
    kset(&o, "top_benefits", services, N_OF(services), top);
    kdate(&o, "contract_start", contract_start);
    kdate(&o, "contract_end", contract_end);
    put_str(&o, ",\"insurance_plan_id\":\"PLN-");
    put_str(&o, plan);
    *o.p++ = '-';
    put_uint(&o, (uint64_t)m->payer, 1);
    put_uint(&o, (sb >> 12) % 4, 1);
    *o.p++ = '"';

    /* --- feature options (customer configuration, per sponsor) --------------- */
    static const char *const instr[] = {"standard", "special_network", "call_first"};
    put_str(&o, ",\"feature_options\":{\"chat_available\":");
    put_str(&o, (sb >> 16) % 5 ? "true" : "false");
    put_str(&o, ",\"provider_instructions\":\"");
    put_str(&o, instr[(sb >> 20) % 3]);
    put_str(&o, "\",\"max_visits_per_year\":");
    put_uint(&o, 4 + (sb >> 28) % 17, 1);
    put_str(&o, ",\"video_visits\":");
    put_str(&o, (sb >> 33) % 4 ? "true" : "false");
    put_str(&o, "}");

    /* --- coverage -------------------------------------------------------------- */
    int dual = !strcmp(plan, "DUAL_ELIGIBLE") || bern(&q, medicare ? 0.15 : 0.06);
    kbool(&o, "has_dual_coverage", dual);
    kstr(&o, "coverage_type", dual && bern(&q, 0.5) ? "SECONDARY" : "PRIMARY");
    kstr(&o, "payer_name", payer_name);
    kbool(&o, "is_file_based_enrollment", !m->rte || bern(&q, 0.15));
    static const char *const cov_by_status[] = {"ACTIVE", "INACTIVE", "SUSPENDED", "PENDING"};
    const char *cov = cov_by_status[m->status];
    if (m->status == 0 && bern(&q, 0.02))
        cov = "PENDING";
    kstr(&o, "coverage_status", cov);
    /* plan year: renews on the anniversary month of enrollment */
    int64_t year_ms = 365 * DAY_MS;
    int64_t renew = m->enroll_ms;
    while (renew <= now_ms)
        renew += year_ms;
    int64_t cov_start = renew - year_ms;
    if (cov_start < m->enroll_ms)
        cov_start = m->enroll_ms;
    int64_t cov_end =
        m->status == 1 ? now_ms - (int64_t)prng_below(&q, 200) * DAY_MS : renew - DAY_MS;
    cov_end -= cov_end % DAY_MS;
    if (cov_end < cov_start)
        cov_end = cov_start;
    kdate(&o, "coverage_start", cov_start);
    kdate(&o, "coverage_end", cov_end);

    /* --- plan details ---------------------------------------------------------- */
    kstr(&o, "network_type",
         hmo || !strcmp(plan, "EPO")             ? "IN_NETWORK_ONLY"
         : self_funded && ((sb >> 36) % 10) == 0 ? "REFERENCE_BASED_PRICING"
                                                 : "OUT_OF_NETWORK_ALLOWED");
    kbool(&o, "is_self_funded", self_funded);
    kbool(&o, "has_hsa", hdhp && bern(&q, 0.8));
    kbool(&o, "has_hra", !hdhp && !government && bern(&q, 0.10));
    kbool(&o, "has_fsa", !hdhp && !government && bern(&q, 0.35));
    kbool(&o, "has_mental_health_coverage", bern(&q, 0.93));
    kbool(&o, "has_prescription_coverage",
          !strcmp(plan, "MEDICARE") ? bern(&q, 0.7) : bern(&q, 0.97));
    kbool(&o, "has_dental_coverage", bern(&q, government ? 0.3 : 0.6));
    kbool(&o, "has_vision_coverage", bern(&q, government ? 0.3 : 0.55));
    kbool(&o, "has_telehealth_coverage", bern(&q, 0.85));
    double ded = hdhp         ? 1600 + prng_u01(&q) * 5400
                 : government ? prng_u01(&q) * 300
                              : 250 + prng_u01(&q) * 2750;
    ded = floor(ded / 50) * 50;
    kmoney(&o, "individual_deductible", ded);
    kmoney(&o, "family_deductible", ded * 2);
    kmoney(&o, "individual_oop_max", floor((ded + 2000 + prng_u01(&q) * 5000) / 50) * 50);
    put_str(&o, ",\"group_number\":\"G");
    put_uint(&o, (uint64_t)m->sponsor, 4);
    put_uint(&o, (sb >> 12) % 4, 2);
    put_str(&o, "\",\"policy_number\":\"P");
    put_uint(&o, m->id, 9);
    put_str(&o, "\",\"employer_id\":\"EMP");
    put_uint(&o, (uint64_t)m->sponsor, 4);
    *o.p++ = '"';
    kdate(&o, "plan_effective_date", cov_start);
    kdate(&o, "plan_renewal_date", renew - renew % DAY_MS);
    kbool(&o, "is_marketplace_plan", marketplace);
    kbool(&o, "is_subsidized", marketplace && bern(&q, 0.8));
    static const char *const tiers[] = {"BRONZE", "SILVER",   "SILVER",      "SILVER",
                                        "GOLD",   "PLATINUM", "CATASTROPHIC"};
    kstr(&o, "metal_tier", marketplace ? tiers[prng_below(&q, N_OF(tiers))] : NULL);

    /* --- family ------------------------------------------------------------------ */
    int family_size = 1, dependents = 0;
    const char *role = "SUBSCRIBER", *rel = "SELF";
    double fr = prng_u01(&q);
    if (age < 26 && fr < 0.45) {
        role = "BENEFICIARY";
        rel = "CHILD";
    } else if (fr < 0.18) {
        role = "BENEFICIARY";
        double rr = prng_u01(&q);
        rel = rr < 0.75 ? "SPOUSE" : rr < 0.95 ? "DOMESTIC_PARTNER" : "OTHER_DEPENDENT";
    } else if (fr < 0.20) {
        role = "BOTH"; /* own policy and covered on a spouse's */
    }
    if (strcmp(rel, "SELF") != 0) {
        family_size = 2 + (int)prng_below(&q, 3);
    } else if (age >= 25 && age < 65 && bern(&q, 0.55)) {
        dependents = 1 + (int)prng_below(&q, 4);
        family_size = 1 + dependents;
    } else if (age >= 65 && bern(&q, 0.3)) {
        dependents = 1;
        family_size = 2;
    }
    kstr(&o, "member_role", role);
    kstr(&o, "relationship", rel);
    kint(&o, "dependents_count", dependents);
    kint(&o, "family_size", family_size);
    kbool(&o, "has_family_members_enrolled", family_size > 1 && bern(&q, 0.7));

    /* --- demographics ---------------------------------------------------------- */
    double sx = prng_u01(&q);
    const char *sex = sx < 0.49    ? "MALE"
                      : sx < 0.98  ? "FEMALE"
                      : sx < 0.983 ? "INTERSEX"
                                   : "UNKNOWN";
    kstr(&o, "biological_sex", sex);
    double gi = prng_u01(&q);
    const char *gender = gi < 0.006      ? "TRANSGENDER_MAN"
                         : gi < 0.012    ? "TRANSGENDER_WOMAN"
                         : gi < 0.03     ? "NON_BINARY"
                         : gi < 0.06     ? "UNDISCLOSED"
                         : sex[0] == 'M' ? "MAN"
                         : sex[0] == 'F' ? "WOMAN"
                                         : "UNDISCLOSED";
    kstr(&o, "gender_identity", gender);
    int st = m->state, city = (int)prng_below(&q, 3);
    put_str(&o, ",\"zip_code\":\"");
    put_str(&o, geo[st].zip3[city]);
    put_uint(&o, prng_below(&q, 100), 2);
    *o.p++ = '"';
    kstr(&o, "city", geo[st].city[city]);
    kstr(&o, "time_zone", geo[st].tz);
    const char *spoken = languages[m->language];
    kstr(&o, "written_language", strcmp(spoken, "en") && bern(&q, 0.3) ? "en" : spoken);
    kstr(&o, "race_ethnicity",
         !strcmp(spoken, "es") ? "HISPANIC_OR_LATINO"
         : (!strcmp(spoken, "zh") || !strcmp(spoken, "vi") || !strcmp(spoken, "ko"))
             ? "ASIAN"
             : races[prng_below(&q, N_OF(races))]);
    kbool(&o, "is_vip", bern(&q, 0.005));
    kbool(&o, "is_do_not_contact", bern(&q, 0.03));
    kbool(&o, "is_lgbtq_plus",
          bern(&q, strcmp(gender, "MAN") && strcmp(gender, "WOMAN") ? 0.8 : 0.06));

    /* --- engagement ---------------------------------------------------------------- */
    double trend_r = prng_u01(&q);
    const char *trend = trend_r < 0.2 ? "INCREASING" : trend_r < 0.45 ? "DECREASING" : "STABLE";
    const char *cohort = days_enrolled <= 30                               ? "NEW_MEMBER"
                         : days_login > 180                                ? "DORMANT"
                         : !strcmp(trend, "DECREASING") && days_login > 14 ? "AT_RISK_CHURN"
                         : days_login <= 7                                 ? "HIGHLY_ENGAGED"
                         : days_login <= 30                                ? "REGULARLY_ENGAGED"
                                                                           : "OCCASIONALLY_ENGAGED";
    kstr(&o, "engagement_cohort", cohort);
    kbool(&o, "has_completed_onboarding",
          days_enrolled > 30 ? bern(&q, 0.92) : bern(&q, days_enrolled / 40.0));
    double activity = days_login > 365 ? 0.02 : 1.0 / (1.0 + days_login / 7.0);
    unsigned used = 0;
    for (size_t f = 0; f < N_OF(features); f++)
        if (bern(&q, 0.15 + 0.6 * activity * (f < 3 ? 1.0 : 0.5)))
            used |= 1u << f;
    if (m->login_ms < 0)
        used = 0;
    kset(&o, "used_features", features, N_OF(features), used);
    kbool(&o, "has_unread_messages", bern(&q, 0.1 + 0.3 * (1 - activity)));
    kbool(&o, "has_sent_messages", (used & 1u) && bern(&q, 0.7));
    kbool(&o, "push_notifications_enabled", m->login_ms >= 0 && bern(&q, 0.62));
    kbool(&o, "email_notifications_enabled", bern(&q, 0.8));
    kint(&o, "app_sessions_30d",
         m->login_ms < 0 ? 0 : (int64_t)(activity * 40 * prng_u01(&q) + (days_login <= 30)));
    double pred = clamp01(m->p_open + 0.08 * prng_normal(&q));
    kmoney(&o, "app_usage_probability", floor(pred * 100.0) / 100.0);

    /* --- care journey ------------------------------------------------------------- */
    unsigned cond = 0;
    for (size_t c = 0; c < N_OF(conditions); c++)
        if (bern(&q, cond_p30[c] + (cond_p75[c] - cond_p30[c]) * ageu))
            cond |= 1u << c;
    int ncond = __builtin_popcount(cond);
    kset(&o, "chronic_conditions", conditions, N_OF(conditions), cond);
    unsigned prog = 0;
    if ((cond & 0x1bu) && bern(&q, 0.25))
        prog |= 1u << 0;
    if ((cond & 0x60u) && bern(&q, 0.3))
        prog |= 1u << 1;
    if (!strcmp(sex, "FEMALE") && age < 42 && bern(&q, 0.04))
        prog |= 1u << 2;
    if ((cond & 0x200u) && bern(&q, 0.2))
        prog |= 1u << 3;
    if (ncond >= 2 && bern(&q, 0.15))
        prog |= 1u << 4;
    kset(&o, "enrolled_programs", programs, N_OF(programs), prog);
    unsigned deliv = 0;
    for (size_t d = 0; d < N_OF(deliveries); d++)
        if (bern(&q, prog ? 0.3 : 0.04))
            deliv |= 1u << d;
    kset(&o, "service_delivery_types", deliveries, N_OF(deliveries), deliv);
    unsigned gap = 0;
    if ((cond & 1u) && bern(&q, 0.4))
        gap |= 1u << 1;
    if ((cond & 0x60u) && bern(&q, 0.3))
        gap |= 1u << 2;
    for (size_t g = 0; g < N_OF(gaps); g++)
        if (g != 1 && g != 2 && bern(&q, age > 45 && g == 0 ? 0.2 : 0.05))
            gap |= 1u << g;
    kset(&o, "care_gaps", gaps, N_OF(gaps), gap);
    int rx = ncond > 0 ? bern(&q, 0.85) : bern(&q, 0.25);
    kbool(&o, "has_active_prescriptions", rx);
    int64_t claim = bern(&q, 0.35 + 0.1 * ncond)
                        ? now_ms - (int64_t)(prng_u01(&q) * 180 * DAY_MS) / 1000 * 1000
                        : -1;
    ktime(&o, "last_claim_at", claim);
    int er = (int)(-log(1.0 - prng_u01(&q)) * (0.1 + 0.35 * ncond));
    int high_util = ncond >= 3 || er >= 3;
    kbool(&o, "is_high_utilizer", high_util);

    /* --- risk ------------------------------------------------------------------------- */
    kmoney(&o, "health_risk_score",
           floor(clamp01(0.05 + 0.1 * ncond + 0.25 * ageu + 0.08 * prng_normal(&q)) * 100) / 100);
    kmoney(&o, "churn_risk_score",
           floor(clamp01(0.1 + 0.5 * (1 - activity) + (!strcmp(trend, "DECREASING") ? 0.2 : 0) +
                         0.05 * prng_normal(&q)) *
                 100) /
               100);
    kint(&o, "annual_er_visits", er);
    kmoney(&o, "predicted_annual_cost",
           floor((1200 + 3500 * ncond + 1500 * er + 2500 * ageu) * (0.6 + 0.8 * prng_u01(&q))));

    /* --- recent events (last 90 days, newest first) ------------------------------- */
    ev evs[PROFILE_MAX_EVENTS];
    int nev = 0;
    if (m->login_ms >= 0) {
        double total = 0;
        for (size_t e = 0; e < N_OF(events); e++)
            total += events[e].weight;
        int want = (int)(activity * 14 * prng_u01(&q)) + (days_login <= 90);
        if (want > PROFILE_MAX_EVENTS - 2)
            want = PROFILE_MAX_EVENTS - 2;
        for (int k = 0; k < want; k++) {
            double r = prng_u01(&q) * total;
            int t = 0;
            while (t < (int)N_OF(events) - 1 && r >= events[t].weight) {
                r -= events[t].weight;
                t++;
            }
            /* increasing activity puts events late in the window, decreasing early */
            double u = prng_u01(&q);
            if (!strcmp(trend, "INCREASING"))
                u = u * u;
            else if (!strcmp(trend, "DECREASING"))
                u = sqrt(u);
            int64_t at = now_ms - (int64_t)(u * 90 * DAY_MS);
            if (k == 0) { /* the last login itself, when inside the window */
                t = 0;
                at = m->login_ms;
                if (now_ms - at > 90 * DAY_MS)
                    continue;
            }
            evs[nev].at = at / 1000 * 1000;
            evs[nev].type = t;
            evs[nev].feature = t == EV_FEATURE ? (int)prng_below(&q, N_OF(features)) : -1;
            nev++;
        }
        if (rx && bern(&q, 0.3))
            evs[nev++] =
                (ev){now_ms - (int64_t)(prng_u01(&q) * 60 * DAY_MS) / 1000 * 1000, EV_RX, -1};
    }
    if (days_enrolled <= 30 && nev < PROFILE_MAX_EVENTS)
        evs[nev++] = (ev){m->enroll_ms + 9 * HOUR_MS, EV_ENROLLED, -1};
    if (prog && nev < PROFILE_MAX_EVENTS && bern(&q, 0.1))
        evs[nev++] =
            (ev){now_ms - (int64_t)(prng_u01(&q) * 30 * DAY_MS) / 1000 * 1000, EV_PROGRAM, -1};
    (void)EV_ERROR;
    qsort(evs, (size_t)nev, sizeof(ev), cmp_ev);
    key(&o, "events");
    *o.p++ = '[';
    for (int k = 0; k < nev; k++) {
        if (k)
            *o.p++ = ',';
        *o.p++ = '[';
        put_time(&o, evs[k].at);
        put_str(&o, ",\"");
        put_str(&o, events[evs[k].type].type);
        put_str(&o, "\",\"");
        put_str(&o, events[evs[k].type].source);
        *o.p++ = '"';
        if (evs[k].feature >= 0) {
            put_str(&o, ",\"");
            put_str(&o, features[evs[k].feature]);
            *o.p++ = '"';
        }
        *o.p++ = ']';
    }
    *o.p++ = ']';
    kstr(&o, "activity_trend", trend);
    kbool(&o, "regular_activity", !strcmp(trend, "STABLE") && days_login <= 14 && bern(&q, 0.7));
    kbool(&o, "session_active", m->login_ms >= 0 && now_ms - m->login_ms < HOUR_MS);

    /* --- biometrics ---------------------------------------------------------------------- */
    unsigned dev = 0;
    if (bern(&q, 0.18 + 0.2 * activity))
        dev |= 1u << prng_below(&q, 3);
    if ((cond & 1u) && bern(&q, 0.3))
        dev |= 1u << 3;
    if ((cond & 2u) && bern(&q, 0.15))
        dev |= 1u << 4;
    if (bern(&q, 0.05))
        dev |= 1u << 5;
    kset(&o, "devices", devices, N_OF(devices), dev);
    ktime(&o, "biometric_data_at",
          dev ? now_ms - (int64_t)(prng_u01(&q) * prng_u01(&q) * 60 * DAY_MS) / 1000 * 1000 : -1);
    kbool(&o, "has_step_data", (dev & 7u) != 0);
    kbool(&o, "has_heart_rate_data", (dev & 3u) != 0 || ((dev & 4u) && bern(&q, 0.5)));
    kbool(&o, "has_sleep_data", (dev & 7u) && bern(&q, 0.6));

    /* --- SDOH ------------------------------------------------------------------------------ */
    int screened = bern(&q, government ? 0.6 : 0.2);
    double need = !strcmp(plan, "MEDICAID") || !strcmp(plan, "DUAL_ELIGIBLE") ? 0.3 : 0.06;
    kbool(&o, "has_sdoh_screening", screened);
    kbool(&o, "has_transportation_barrier", screened && bern(&q, need));
    kbool(&o, "has_food_insecurity", screened && bern(&q, need));
    kbool(&o, "has_housing_instability", screened && bern(&q, need * 0.5));
    kbool(&o, "requires_digital_assistance", bern(&q, age > 70 ? 0.25 : 0.03));

    /* --- provider network ----------------------------------------------------------------- */
    kbool(&o, "has_pcp_attributed", bern(&q, hmo ? 0.95 : 0.6));
    put_str(&o, ",\"network_id\":\"NET-");
    put_uint(&o, (uint64_t)m->payer, 1);
    *o.p++ = '-';
    put_str(&o, hmo ? "NARROW" : "BROAD");
    *o.p++ = '"';
    ktime(&o, "last_provider_visit_at",
          bern(&q, 0.55 + 0.1 * ncond)
              ? now_ms - (int64_t)(prng_u01(&q) * 365 * DAY_MS) / 1000 * 1000
              : -1);
    unsigned pt = bern(&q, 0.7) ? 1u : 0u;
    if (ncond && bern(&q, 0.5))
        pt |= 2u;
    if (cond & 0x60u)
        pt |= bern(&q, 0.5) ? 4u : 0u;
    if (!strcmp(sex, "FEMALE") && bern(&q, 0.4))
        pt |= 8u;
    if (cond & 0x10u)
        pt |= 16u;
    if (cond & 1u)
        pt |= bern(&q, 0.5) ? 32u : 0u;
    kset(&o, "provider_types", provider_types, N_OF(provider_types), pt);

    /* --- life events -------------------------------------------------------------------------- */
    unsigned le = 0;
    if (bern(&q, 0.08))
        le |= 1u << prng_below(&q, age >= 60 ? N_OF(life_events) : N_OF(life_events) - 1);
    kset(&o, "life_events", life_events, N_OF(life_events), le);
    ktime(&o, "life_event_at",
          le ? now_ms - (int64_t)(prng_u01(&q) * 120 * DAY_MS) / 1000 * 1000 : -1);

    *o.p = '\0';
    pf->len = (size_t)(o.p - pf->text);
}
