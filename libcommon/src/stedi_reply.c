/*
 * stedi_reply.c - the one reader of Stedi eligibility answers
 * (rte/stedi_reply.h; the rules, with the OpenAPI's words, in
 * docs/stedi.md).
 *
 * The answer mirrors an X12 271: a flat benefitsInformation[] whose rows
 * each carry a benefit code (EB01), the service types they apply to, a
 * network indicator, a coverage level, a time qualifier and an amount or
 * percent. Rows for service types nobody asked about are ignored; rows for
 * the same question that disagree are kept as a range instead of one of
 * them being picked.
 *
 * Dates: Stedi sends X12 dates, a single YYYYMMDD or a range
 * YYYYMMDD-YYYYMMDD, in any of the date fields (the OpenAPI pattern allows
 * both everywhere). They are rewritten as YYYY-MM-DD and compared as
 * strings against the check date (the UTC day of the answer).
 *
 * Deliberately not read: planStatus (deprecated: "Please use
 * benefitsInformation instead"), and inPlanNetworkIndicatorCode as a
 * statement about the provider (it "doesn't indicate whether the provider
 * is in or out-of-network"). Free text is read in one place only: a
 * provider-network statement in additionalInformation[].description, since
 * the 271 has no structured field for it.
 */
#include "rte/stedi_reply.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/input.h"

#define MAX_MONEY_CENTS 2000000000LL /* $20,000,000.00 fits an int32 */

/* A date window; "" = open on that side. */
struct window {
    char begin[11], end[11];
};

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void copy_str(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

static int code_char_ok(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* rte_stedi_asked_parse - pure */
int rte_stedi_asked_parse(const char *list, rte_stedi_asked *out, char *err, size_t errlen)
{
    const char *p = list;

    memset(out, 0, sizeof *out);
    if (list == NULL || list[0] == '\0')
        return 0;
    while (*p) {
        size_t n = strcspn(p, ",");
        char code[3];
        int dup = 0;

        if (n < 1 || n > 2 || !code_char_ok(p[0]) || (n == 2 && !code_char_ok(p[1]))) {
            snprintf(err, errlen,
                     "serviceTypeCodes: '%.*s' is not a service type code (1-2 letters or digits)",
                     (int)(n > 20 ? 20 : n), p);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            code[i] = (char)toupper((unsigned char)p[i]);
        code[n] = '\0';
        for (int i = 0; i < out->n; i++)
            dup |= strcmp(out->code[i], code) == 0;
        if (!dup) {
            if (out->n >= RTE_CACHE_SERVICE_TYPES_MAX) {
                snprintf(err, errlen,
                         "serviceTypeCodes: at most %d service types per check (Stedi recommends "
                         "one)",
                         RTE_CACHE_SERVICE_TYPES_MAX);
                return -1;
            }
            memcpy(out->code[out->n++], code, n + 1);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* rte_stedi_asked_format - pure */
void rte_stedi_asked_format(const rte_stedi_asked *a, char *out, size_t len)
{
    size_t k = 0;

    if (len == 0)
        return;
    out[0] = '\0';
    if (a == NULL || a->n == 0) {
        snprintf(out, len, "30");
        return;
    }
    for (int i = 0; i < a->n; i++) {
        int w = snprintf(out + k, len - k, "%s%s", i ? "," : "", a->code[i]);
        if (w < 0 || (size_t)w >= len - k)
            return;
        k += (size_t)w;
    }
}

/* ---- errors ------------------------------------------------------------ */

/* Stedi's follow-up action names (EligibilityCheckFollowupAction) and their X12 AAA04 codes */
static const struct {
    const char *name, *code;
    int retry;
} followups[] = {
    {"Please Correct and Resubmit", "C", 0},
    {"Resubmission Not Allowed", "N", 1}, /* "wait at least a few minutes before retrying" */
    {"Please Resubmit Original Transaction", "P", 1},
    {"Resubmission Allowed", "R", 1},
    {"Do Not Resubmit; Inquiry Initiated to a Third Party", "S", 0},
    {"Please Wait 30 Days and Resubmit", "W", 0},
    {"Please Wait 10 Days and Resubmit", "X", 0},
    {"Do Not Resubmit; We Will Hold Your Request and Respond Again Shortly", "Y", 1},
};
#define NFOLLOWUPS (sizeof followups / sizeof followups[0])

/* the index of a follow-up action given as a name or an X12 code, or -1 */
static int followup_index(const char *f)
{
    if (f == NULL)
        return -1;
    for (size_t i = 0; i < NFOLLOWUPS; i++)
        if (strcasecmp(f, followups[i].name) == 0 || strcasecmp(f, followups[i].code) == 0)
            return (int)i;
    return -1;
}

/* rte_stedi_reply_retry - pure */
int rte_stedi_reply_retry(const char *code, const char *followup)
{
    int i;

    /* 42 Unable to Respond at Current Time, 80 No Response received: the payer, not the
     * request, is the problem, whatever follow-up it suggests */
    if (code != NULL && (strcmp(code, "42") == 0 || strcmp(code, "80") == 0))
        return 1;
    i = followup_index(followup);
    return i < 0 ? 1 : followups[i].retry;
}

static void read_error(const cJSON *doc, const cJSON *errors, int64_t now_ms,
                       const rte_cache_freshness *f, rte_cache_entry *out)
{
    const cJSON *first = cJSON_GetArrayItem(errors, 0), *e;
    const char *status = str_field(doc, "status");
    int retry = 1, fi;

    out->is_error = 1;
    if (cJSON_IsObject(first)) {
        copy_str(out->error_code, sizeof out->error_code, str_field(first, "code"));
        copy_str(out->error_message, sizeof out->error_message, str_field(first, "description"));
        fi = followup_index(str_field(first, "followupAction"));
        if (fi >= 0)
            copy_str(out->error_followup, sizeof out->error_followup, followups[fi].code);
    } else {
        copy_str(out->error_message, sizeof out->error_message,
                 "Stedi answered status ERROR without errors[]");
    }
    /* any error the same request cannot get past makes the whole answer final */
    cJSON_ArrayForEach(e, errors)
    {
        if (cJSON_IsObject(e) &&
            !rte_stedi_reply_retry(str_field(e, "code"), str_field(e, "followupAction")))
            retry = 0;
    }
    out->error_retry = retry;
    /* status: "Errors Stedi encountered when generating or sending the final X12 EDI
     * transaction to the payer" - Stedi's own; otherwise the payer's AAA */
    copy_str(out->error_origin, sizeof out->error_origin,
             status != NULL && strcmp(status, "ERROR") == 0 ? "stedi" : "payer");
    copy_str(out->network_status, sizeof out->network_status, "unknown");
    out->fresh_until_ms = now_ms + (retry ? f->error_ms : f->error_final_ms);
}

/* ---- dates ------------------------------------------------------------- */

/* "YYYYMMDD" at s into out as YYYY-MM-DD; -1 unless a calendar date (rte_input_date) */
static int x12_day(const char *s, char out[11])
{
    if (strnlen(s, 8) < 8 || rte_input_date(s, 8, RTE_INPUT_DATE_BASIC, NULL, NULL, NULL, 0) != 0)
        return -1;
    snprintf(out, 11, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
    return 0;
}

/* "YYYYMMDD" or "YYYYMMDD-YYYYMMDD" into w (end "" for a single date); 0 if it was one */
static int x12_range(const char *s, struct window *w)
{
    memset(w, 0, sizeof *w);
    if (s == NULL)
        return -1;
    if (strlen(s) == 8 && x12_day(s, w->begin) == 0)
        return 0;
    if (strlen(s) == 17 && s[8] == '-' && x12_day(s, w->begin) == 0 && x12_day(s + 9, w->end) == 0)
        return 0;
    memset(w, 0, sizeof *w);
    return -1;
}

/*
 * a begin/end pair of fields plus the field that may hold either (e.g.
 * planBegin, planEnd, plan) into w: begin from <b> (a date or the start of
 * a range) else <either>; end from <e> (its last date) else the end of a
 * <b> range else the end of an <either> range. 1 when any was there.
 */
static int date_group(const cJSON *o, const char *b, const char *e, const char *either,
                      struct window *w)
{
    struct window wb, we, wx;
    int hb = x12_range(str_field(o, b), &wb) == 0;
    int he = x12_range(str_field(o, e), &we) == 0;
    int hx = x12_range(str_field(o, either), &wx) == 0;

    memset(w, 0, sizeof *w);
    if (hb)
        memcpy(w->begin, wb.begin, sizeof w->begin);
    else if (hx)
        memcpy(w->begin, wx.begin, sizeof w->begin);
    if (he)
        memcpy(w->end, we.end[0] ? we.end : we.begin, sizeof w->end);
    else if (hb && wb.end[0])
        memcpy(w->end, wb.end, sizeof w->end);
    else if (hx && wx.end[0])
        memcpy(w->end, wx.end, sizeof w->end);
    return hb || he || hx;
}

/* a row's own window from benefitsDateInformation; 1 when it states one */
static int row_window(const cJSON *row, struct window *w)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(row, "benefitsDateInformation");

    if (!cJSON_IsObject(d))
        return 0;
    return date_group(d, "benefitBegin", "benefitEnd", "benefit", w) ||
           date_group(d, "planBegin", "planEnd", "plan", w) ||
           date_group(d, "eligibilityBegin", "eligibilityEnd", "eligibility", w);
}

static int in_window(const char *day, const struct window *w)
{
    return (w->begin[0] == '\0' || strcmp(day, w->begin) >= 0) &&
           (w->end[0] == '\0' || strcmp(day, w->end) <= 0);
}

/* ---- benefits ------------------------------------------------------------ */

/* everything a row test needs about the answer and the check */
struct ctx {
    const cJSON *rows;      /* benefitsInformation[] */
    char day[11];           /* the check date, YYYY-MM-DD */
    struct window coverage; /* the answer's coverage dates: a row without its own applies there */
};

static int row_has_stc(const cJSON *row, const char *stc)
{
    const cJSON *v;

    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(row, "serviceTypeCodes"))
    {
        if (cJSON_IsString(v) && strcmp(v->valuestring, stc) == 0)
            return 1;
    }
    return 0;
}

static int row_has_no_stc(const cJSON *row)
{
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(row, "serviceTypeCodes")) == 0;
}

/* the row's own dates, if it has any, include the check date */
static int row_current(const struct ctx *c, const cJSON *row)
{
    struct window w;
    return !row_window(row, &w) || in_window(c->day, &w);
}

/* active | inactive | not_current | not_stated for stc, and the deciding row's code */
static void status_for(const struct ctx *c, const char *stc, rte_cache_benefit *b)
{
    const cJSON *row;
    const char *inactive = NULL, *stale = NULL;

    cJSON_ArrayForEach(row, c->rows)
    {
        const char *code = str_field(row, "code");
        struct window w;

        if (code == NULL || strlen(code) != 1 || code[0] < '1' || code[0] > '8' ||
            !row_has_stc(row, stc))
            continue;
        if (code[0] >= '6') {
            /* inactive whatever its dates: coverage that ended (or has not begun) is not
             * active on the check date either */
            if (inactive == NULL)
                inactive = code;
            continue;
        }
        if (!row_window(row, &w))
            w = c->coverage;
        if (!in_window(c->day, &w)) {
            if (stale == NULL)
                stale = code;
            continue;
        }
        copy_str(b->status, sizeof b->status, "active");
        copy_str(b->status_code, sizeof b->status_code, code);
        return;
    }
    if (inactive != NULL) {
        copy_str(b->status, sizeof b->status, "inactive");
        copy_str(b->status_code, sizeof b->status_code, inactive);
    } else if (stale != NULL) {
        copy_str(b->status, sizeof b->status, "not_current");
        copy_str(b->status_code, sizeof b->status_code, stale);
    } else {
        copy_str(b->status, sizeof b->status, "not_stated");
    }
}

/*
 * a decimal string ("5555.16", "0.2") scaled by 10^scale into *out: at most
 * `scale` significant fraction digits, at most max once scaled; -1 otherwise
 */
static int decimal(const char *s, int scale, long long max, int32_t *out)
{
    long long v = 0;
    int digits = 0, fd = -1; /* fraction digits kept; -1 before the point */

    if (s == NULL)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && fd < 0) {
            fd = 0;
            continue;
        }
        if (*p < '0' || *p > '9')
            return -1;
        digits++;
        if (fd == scale) {
            if (*p != '0') /* more precision than we keep: not a value we can show exactly */
                return -1;
            continue;
        }
        if (fd >= 0)
            fd++;
        v = v * 10 + (*p - '0');
        if (v > max)
            return -1;
    }
    if (digits == 0)
        return -1;
    for (int i = fd < 0 ? 0 : fd; i < scale; i++)
        v *= 10;
    if (v > max)
        return -1;
    *out = (int32_t)v;
    return 0;
}

static enum rte_benefit_network network_of(const cJSON *row)
{
    const char *n = str_field(row, "inPlanNetworkIndicatorCode");

    if (n != NULL && strcmp(n, "Y") == 0)
        return RTE_NET_IN;
    if (n != NULL && strcmp(n, "N") == 0)
        return RTE_NET_OUT;
    if (n != NULL && strcmp(n, "W") == 0)
        return RTE_NET_ANY;
    return RTE_NET_UNSTATED;
}

static int tq_is(const char *tq, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(tq, *set) == 0)
            return 1;
    return 0;
}

/* a row's time qualifier fits an amount of kind k (see docs/stedi.md) */
static int tq_fits(const cJSON *row, enum rte_benefit_kind k)
{
    /* 24 Year to Date, 29 Remaining, 30 Exceeded, 31 Not Exceeded, 33 Lifetime Remaining:
     * progress against an amount, not the amount */
    static const char *const progress[] = {"24", "29", "30", "31", "33", NULL};
    /* 21 Years, 22 Service Year, 23 Calendar Year, 25 Contract: a plan-period amount */
    static const char *const period[] = {"21", "22", "23", "25", NULL};
    const char *tq = str_field(row, "timeQualifierCode");

    if (tq == NULL)
        return 1;
    if (k == RTE_BENEFIT_COPAY || k == RTE_BENEFIT_COINSURANCE)
        return !tq_is(tq, progress);
    return tq_is(tq, period);
}

/* IND / EMP / none -> 0 (individual), FAM -> 1 (family), other levels -> -1 (skip) */
static int family_level(const cJSON *row)
{
    const char *l = str_field(row, "coverageLevelCode");

    if (l == NULL || strcmp(l, "IND") == 0 || strcmp(l, "EMP") == 0)
        return 0;
    if (strcmp(l, "FAM") == 0)
        return 1;
    return -1;
}

/* the amount kind of a row and its value, or -1 when the row carries none we show */
static int row_amount(const cJSON *row, enum rte_benefit_kind *kind, int32_t *v)
{
    const char *code = str_field(row, "code");
    int fam;

    if (code == NULL)
        return -1;
    if (strcmp(code, "B") == 0) {
        *kind = RTE_BENEFIT_COPAY;
    } else if (strcmp(code, "A") == 0) {
        *kind = RTE_BENEFIT_COINSURANCE;
    } else if (strcmp(code, "C") == 0 || strcmp(code, "G") == 0) {
        fam = family_level(row);
        if (fam < 0)
            return -1;
        *kind = code[0] == 'C'
                    ? (fam ? RTE_BENEFIT_DEDUCTIBLE_FAMILY : RTE_BENEFIT_DEDUCTIBLE)
                    : (fam ? RTE_BENEFIT_OUT_OF_POCKET_FAMILY : RTE_BENEFIT_OUT_OF_POCKET);
    } else {
        return -1;
    }
    if (!tq_fits(row, *kind))
        return -1;
    if (*kind == RTE_BENEFIT_COINSURANCE) /* "0.80 represents 80%": keep 1/100 of a percent */
        return decimal(str_field(row, "benefitPercent"), 4, 10000, v);
    return decimal(str_field(row, "benefitAmount"), 2, MAX_MONEY_CENTS, v);
}

static void amounts_for(const struct ctx *c, const char *stc, rte_cache_benefit *b)
{
    const cJSON *row;

    cJSON_ArrayForEach(row, c->rows)
    {
        enum rte_benefit_kind kind;
        int32_t v;

        if (!row_has_stc(row, stc) || !row_current(c, row) || row_amount(row, &kind, &v) != 0)
            continue;
        rte_cache_benefit_add(b, kind, network_of(row), v);
    }
}

/* ---- provider network statement -------------------------------------- */

/* the position of word w in text (letters on neither side), or NULL */
static const char *word(const char *text, const char *w)
{
    size_t n = strlen(w);

    for (const char *p = strstr(text, w); p; p = strstr(p + 1, w)) {
        int before = p == text || !isalpha((unsigned char)p[-1]);
        int after = !isalpha((unsigned char)p[n]);
        if (before && after)
            return p;
    }
    return NULL;
}

/* +1 "provider ... in network", -1 "provider ... out of network", 0 neither */
static int provider_statement(const char *desc)
{
    char t[256];
    size_t k = 0;

    /* lower case, hyphens and runs of blanks as one space */
    for (const char *p = desc; *p && k + 1 < sizeof t; p++) {
        char ch = *p == '-' ? ' ' : (char)tolower((unsigned char)*p);
        if (isspace((unsigned char)ch)) {
            if (k > 0 && t[k - 1] != ' ')
                t[k++] = ' ';
        } else {
            t[k++] = ch;
        }
    }
    t[k] = '\0';
    if (word(t, "provider") == NULL && word(t, "providers") == NULL)
        return 0;
    if (word(t, "out of network") || word(t, "out network") || word(t, "not in network") ||
        word(t, "non network") || word(t, "outside network"))
        return -1;
    if (word(t, "in network"))
        return 1;
    return 0;
}

/* in_network / out_of_network from statements on rows of the asked types, else unknown */
static void network_for(const struct ctx *c, const rte_stedi_asked *asked, rte_cache_entry *out)
{
    const cJSON *row, *info;
    int in = 0, outn = 0;

    cJSON_ArrayForEach(row, c->rows)
    {
        int relevant = row_has_no_stc(row);
        for (int i = 0; i < asked->n && !relevant; i++)
            relevant = row_has_stc(row, asked->code[i]);
        if (!relevant || !row_current(c, row))
            continue;
        cJSON_ArrayForEach(info, cJSON_GetObjectItemCaseSensitive(row, "additionalInformation"))
        {
            const char *d = str_field(info, "description");
            int s = d ? provider_statement(d) : 0;
            in |= s > 0;
            outn |= s < 0;
        }
    }
    copy_str(out->network_status, sizeof out->network_status,
             in && !outn   ? "in_network"
             : outn && !in ? "out_of_network"
                           : "unknown");
}

/* copay_amount: one unambiguous co-pay of b, in-network first */
static void headline_copay(const rte_cache_benefit *b, rte_cache_entry *out)
{
    static const enum rte_benefit_network order[] = {RTE_NET_IN, RTE_NET_ANY, RTE_NET_UNSTATED};
    rte_cache_range r;

    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!rte_cache_benefit_get(b, RTE_BENEFIT_COPAY, order[i], &r))
            continue;
        if (r.lo == r.hi) {
            out->copay_amount = (double)r.lo / 100.0;
            out->has_copay = 1;
        }
        return;
    }
}

/* rte_stedi_reply_read - pure */
int rte_stedi_reply_read(const cJSON *doc, const rte_stedi_asked *asked, const char *source,
                         int64_t now_ms, const rte_cache_freshness *f, rte_cache_entry *out,
                         char *err, size_t errlen)
{
    static const rte_stedi_asked plan = {1, {"30"}};
    const cJSON *errors, *rows, *pd;
    const char *status;
    struct ctx c;
    struct window plan_w, elig_w;
    char ts[40];
    int have_plan = 0;

    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(doc)) {
        snprintf(err, errlen, "Stedi answer is not a JSON object");
        return -1;
    }
    if (asked == NULL || asked->n == 0)
        asked = &plan;
    errors = cJSON_GetObjectItemCaseSensitive(doc, "errors");
    rows = cJSON_GetObjectItemCaseSensitive(doc, "benefitsInformation");
    status = str_field(doc, "status");
    if (!cJSON_IsArray(errors) && !cJSON_IsArray(rows) &&
        !(status != NULL && strcmp(status, "ERROR") == 0)) {
        snprintf(err, errlen,
                 "not an eligibility answer: neither errors[] nor "
                 "benefitsInformation[]");
        return -1;
    }
    copy_str(out->source, sizeof out->source, source);
    out->cached_at_ms = now_ms;
    if (cJSON_GetArraySize(errors) > 0 || (status != NULL && strcmp(status, "ERROR") == 0)) {
        read_error(doc, errors, now_ms, f, out);
        return 0;
    }

    pd = cJSON_GetObjectItemCaseSensitive(doc, "planDateInformation");
    if (cJSON_IsObject(pd)) {
        have_plan = date_group(pd, "planBegin", "planEnd", "plan", &plan_w);
        if (date_group(pd, "eligibilityBegin", "eligibilityEnd", "eligibility", &elig_w)) {
            memcpy(out->eligibility_start, elig_w.begin, sizeof out->eligibility_start);
            memcpy(out->eligibility_end, elig_w.end, sizeof out->eligibility_end);
            if (!have_plan) {
                plan_w = elig_w;
                have_plan = 1;
            }
        }
        if (have_plan) {
            memcpy(out->coverage_start, plan_w.begin, sizeof out->coverage_start);
            memcpy(out->coverage_end, plan_w.end, sizeof out->coverage_end);
        }
    }

    memset(&c, 0, sizeof c);
    c.rows = rows;
    rte_clock_format(now_ms, ts, sizeof ts);
    snprintf(c.day, sizeof c.day, "%.10s", ts);
    memcpy(c.coverage.begin, out->coverage_start, sizeof c.coverage.begin);
    memcpy(c.coverage.end, out->coverage_end, sizeof c.coverage.end);

    for (int i = 0; i < asked->n && i < RTE_CACHE_SERVICE_TYPES_MAX; i++) {
        rte_cache_benefit *b = &out->benefits[out->nbenefits++];
        copy_str(b->service_type, sizeof b->service_type, asked->code[i]);
        status_for(&c, b->service_type, b);
        amounts_for(&c, b->service_type, b);
    }
    if (strcmp(out->benefits[0].status, "not_stated") == 0 &&
        strcmp(out->benefits[0].service_type, "30") != 0) {
        rte_cache_benefit whole;
        memset(&whole, 0, sizeof whole);
        status_for(&c, "30", &whole);
        out->eligible = strcmp(whole.status, "active") == 0;
    } else {
        out->eligible = strcmp(out->benefits[0].status, "active") == 0;
    }
    network_for(&c, asked, out);
    headline_copay(&out->benefits[0], out);
    out->fresh_until_ms = now_ms + f->success_ms;
    return 0;
}
