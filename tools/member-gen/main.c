/*
 * member-gen - a deterministic synthetic member population as JSONL.
 *
 * Usage: member-gen --count N --seed S [--out FILE|-] [--truth FILE]
 *                   [--now RFC3339]
 *        member-gen --compile SOURCE --out FILE.mdir
 *
 * Writes N members, one JSON object per line, to FILE (default stdout), in
 * the flat schema rte_member_dir loads (docs/ARCHITECTURE.md, member_dir).
 * The same N, seed and --now give byte-identical output: every random choice
 * comes from one xoshiro256** stream seeded through splitmix64 from the seed,
 * and every timestamp is relative to --now (default 2026-01-05T00:00:00Z),
 * never to the wall clock.
 *
 * --truth FILE writes, per member, the hidden behaviour a predictor is later
 * trained and validated against: {member_id, p_open_24h, opened}. p_open_24h
 * is a logistic function of signals visible in the population file (days
 * since last login, an appointment in the next 48 h, enrollment in the last
 * 30 days, how concentrated usage_by_hour is, account status) plus Gaussian
 * noise in the logit; opened is one Bernoulli draw with that probability.
 *
 * Output is formatted by hand into a large buffer (no cJSON, no printf of
 * floats) so that 1,000,000 members take a few seconds. Names are plain
 * ASCII letters, so nothing needs escaping.
 *
 * --compile loads SOURCE (a JSONL file or URL, as every service would)
 * and writes it in the directory's compiled form (rte_member_dir_compile,
 * docs/member-query.md "Compiled directory"), which every service's member
 * source accepts in place of the JSONL and loads in a fraction of the time.
 * A SOURCE the directory refuses exits 1 with the loader's message.
 *
 * Errors: bad arguments or an unwritable output exit 2 / 1 with a message.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/member_dir.h"

#include "gen.h"

#define DEFAULT_NOW "2026-01-05T00:00:00Z"
#define LINE_MAX_BYTES 10240

/* --- PRNG: splitmix64 seeds xoshiro256** -------------------------------- */

uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void prng_seed(prng *p, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        p->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t prng_next(prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* uniform in [0, 1) */
double prng_u01(prng *p)
{
    return (double)(prng_next(p) >> 11) * 0x1.0p-53;
}

/* uniform integer in [0, n) */
uint64_t prng_below(prng *p, uint64_t n)
{
    return (uint64_t)(prng_u01(p) * (double)n);
}

/* standard normal (Box-Muller, one value per call keeps the stream simple) */
double prng_normal(prng *p)
{
    double u1 = prng_u01(p), u2 = prng_u01(p);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* --- vocabulary ---------------------------------------------------------- */

static const char *const first_names[] = {
    "James",   "Mary",      "Robert",  "Patricia", "John",    "Jennifer", "Michael", "Linda",
    "David",   "Elizabeth", "William", "Barbara",  "Richard", "Susan",    "Joseph",  "Jessica",
    "Thomas",  "Sarah",     "Charles", "Karen",    "Daniel",  "Lisa",     "Matthew", "Nancy",
    "Anthony", "Betty",     "Mark",    "Sandra",   "Steven",  "Ashley",   "Paul",    "Kimberly",
    "Andrew",  "Emily",     "Joshua",  "Donna",    "Kevin",   "Michelle", "Brian",   "Carol",
    "Maria",   "Jose",      "Wei",     "Aisha",    "Omar",    "Priya",    "Hiroshi", "Olga"};
static const char *const last_names[] = {
    "Smith",    "Johnson",   "Williams", "Brown",     "Jones",    "Garcia",   "Miller",
    "Davis",    "Rodriguez", "Martinez", "Hernandez", "Lopez",    "Gonzalez", "Wilson",
    "Anderson", "Thomas",    "Taylor",   "Moore",     "Jackson",  "Martin",   "Lee",
    "Perez",    "Thompson",  "White",    "Harris",    "Sanchez",  "Clark",    "Ramirez",
    "Lewis",    "Robinson",  "Walker",   "Young",     "Allen",    "King",     "Wright",
    "Scott",    "Torres",    "Nguyen",   "Hill",      "Flores",   "Green",    "Adams",
    "Nelson",   "Baker",     "Hall",     "Rivera",    "Campbell", "Mitchell"};
const char *const states[] = {"CA", "TX", "FL", "NY", "PA", "IL", "OH", "GA", "NC", "MI",
                              "NJ", "VA", "WA", "AZ", "MA", "TN", "IN", "MO", "MD", "WI",
                              "CO", "MN", "SC", "AL", "LA", "KY", "OR", "OK", "CT", "UT"};
const char *const languages[] = {"en", "en", "en", "en", "en", "en", "en",
                                 "es", "es", "zh", "vi", "ko", "fr", "ru"};
static const char *const plan_types[] = {"PPO", "PPO", "HMO", "HMO", "HMO", "EPO", "HDHP"};
const size_t n_states = sizeof(states) / sizeof(states[0]);
static const char *const payers[] = {"60054", "60054", "87726", "87726", "87726",
                                     "62308", "00431", "39026", "61101"};
static const char *const flags[] = {"rte_v2", "proactive_warming", "new_dashboard",
                                    "beta_telehealth", "paperless"};

/* --- output buffer --------------------------------------------------------- */

void put_str(outbuf *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o->p, s, n);
    o->p += n;
}

void put_uint(outbuf *o, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *o->p++ = tmp[--n];
}

/* fixed-point value v / 10^decimals, v >= 0 */
void put_fixed(outbuf *o, uint64_t v, int decimals)
{
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    put_uint(o, v / scale, 1);
    *o->p++ = '.';
    put_uint(o, v % scale, decimals);
}

/* civil date from days since 1970-01-01 */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t yy;
    rte_civil_from_days(z, &yy, m, d);
    *y = (int)yy;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

void put_date(outbuf *o, int64_t ms)
{
    int y, m, d;
    civil_from_days(floor_div(ms, DAY_MS), &y, &m, &d);
    *o->p++ = '"';
    put_uint(o, (uint64_t)y, 4);
    *o->p++ = '-';
    put_uint(o, (uint64_t)m, 2);
    *o->p++ = '-';
    put_uint(o, (uint64_t)d, 2);
    *o->p++ = '"';
}

/* RFC 3339 UTC with second precision, or null when ms < 0 */
void put_time(outbuf *o, int64_t ms)
{
    if (ms < 0) {
        put_str(o, "null");
        return;
    }
    int64_t days = floor_div(ms, DAY_MS);
    int64_t sod = (ms - days * DAY_MS) / 1000;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    *o->p++ = '"';
    put_uint(o, (uint64_t)y, 4);
    *o->p++ = '-';
    put_uint(o, (uint64_t)m, 2);
    *o->p++ = '-';
    put_uint(o, (uint64_t)d, 2);
    *o->p++ = 'T';
    put_uint(o, (uint64_t)(sod / 3600), 2);
    *o->p++ = ':';
    put_uint(o, (uint64_t)(sod / 60 % 60), 2);
    *o->p++ = ':';
    put_uint(o, (uint64_t)(sod % 60), 2);
    put_str(o, "Z\"");
}

/* --- one member ------------------------------------------------------------ */

static const char *const statuses[] = {"ACTIVE", "INACTIVE", "SUSPENDED", "PENDING"};

/* usage profile: bumps around peak hours, normalised to integers summing to 10000 */
static void gen_usage(prng *p, member *m, int *concentration_out)
{
    double w[24], sum = 0;
    double kind = prng_u01(p);
    double peak = 0, width = 0;

    if (kind < 0.40) { /* morning person */
        peak = 7.0 + 2.0 * prng_u01(p);
        width = 0.8 + 1.5 * prng_u01(p);
    } else if (kind < 0.80) { /* evening person */
        peak = 18.0 + 4.0 * prng_u01(p);
        width = 0.8 + 2.0 * prng_u01(p);
    }
    for (int h = 0; h < 24; h++) {
        double v = 0.2 + 0.3 * prng_u01(p);
        if (width > 0) {
            double dist = fabs(h - peak);
            if (dist > 12)
                dist = 24 - dist;
            v += 6.0 * exp(-dist * dist / (2 * width * width));
        }
        if (h < 6)
            v *= 0.3;
        w[h] = v;
        sum += v;
    }
    int total = 0, maxi = 0;
    for (int h = 0; h < 24; h++) {
        m->usage[h] = (int)(w[h] / sum * 10000.0);
        total += m->usage[h];
        if (m->usage[h] > m->usage[maxi])
            maxi = h;
    }
    m->usage[maxi] += 10000 - total;
    /* concentration: share of the busiest 3-hour window */
    int best = 0;
    for (int h = 0; h < 24; h++) {
        int s = m->usage[h] + m->usage[(h + 1) % 24] + m->usage[(h + 2) % 24];
        if (s > best)
            best = s;
    }
    *concentration_out = best;
}

/* hour of day drawn from the member's usage profile */
static int draw_hour(prng *p, const member *m)
{
    int r = (int)prng_below(p, 10000), acc = 0;
    for (int h = 0; h < 24; h++) {
        acc += m->usage[h];
        if (r < acc)
            return h;
    }
    return 23;
}

static void gen_member(prng *p, uint64_t i, uint64_t id_offset, int64_t now_ms, member *m)
{
    int conc;

    /* a bijection of i mod 10^9: unique ids that do not look sequential */
    m->id = (i * 738560093ULL + id_offset) % 1000000000ULL;
    m->first = (int)prng_below(p, N_OF(first_names));
    m->last = (int)prng_below(p, N_OF(last_names));
    m->state = (int)prng_below(p, N_OF(states));
    m->language = (int)prng_below(p, N_OF(languages));
    m->plan = (int)prng_below(p, N_OF(plan_types));
    m->payer = (int)prng_below(p, N_OF(payers));
    m->sponsor = (int)prng_below(p, 250);
    m->population = m->sponsor % 40;
    m->dob_ms = now_ms - (int64_t)((18.0 + 62.0 * prng_u01(p)) * 365.25 * DAY_MS);
    m->rte = prng_u01(p) < 0.90;
    m->is_mock = prng_u01(p) < 0.01;
    double st = prng_u01(p);
    m->status = st < 0.85 ? 0 : st < 0.93 ? 1 : st < 0.96 ? 2 : 3;
    m->flag_bits = (unsigned)(prng_next(p) & prng_next(p) & 0x1f);

    gen_usage(p, m, &conc);

    /* enrollment: 6 % in the last 30 days, the rest up to 8 years back */
    if (prng_u01(p) < 0.06)
        m->enroll_ms = now_ms - (int64_t)(prng_u01(p) * 30.0 * DAY_MS);
    else
        m->enroll_ms = now_ms - (int64_t)((30.0 + prng_u01(p) * 2900.0) * DAY_MS);
    m->enroll_ms -= m->enroll_ms % DAY_MS;

    /* engagement drives how recently the member logged in */
    double engagement = prng_u01(p);
    double days_since_login = -1;
    if (prng_u01(p) >= 0.08) {
        double mean_days = 0.5 + 40.0 * engagement * engagement;
        days_since_login = -mean_days * log(1.0 - prng_u01(p));
        if (days_since_login > 730)
            days_since_login = 730;
        int64_t day = now_ms - (int64_t)(days_since_login * DAY_MS);
        day -= ((day % DAY_MS) + DAY_MS) % DAY_MS;
        m->login_ms = day + draw_hour(p, m) * HOUR_MS + (int64_t)prng_below(p, 3600) * 1000;
        if (m->login_ms >= now_ms)
            m->login_ms -= DAY_MS;
        if (m->login_ms < m->enroll_ms)
            m->login_ms = m->enroll_ms + (int64_t)prng_below(p, 86400) * 1000;
        if (m->login_ms >= now_ms)
            m->login_ms = now_ms - 60000;
        days_since_login = (double)(now_ms - m->login_ms) / DAY_MS;
    } else {
        m->login_ms = -1;
    }

    m->check_ms =
        prng_u01(p) < 0.30 ? -1 : now_ms - (int64_t)(prng_u01(p) * 60.0 * DAY_MS) / 1000 * 1000;
    double appt_hours = -1;
    if (prng_u01(p) < 0.10) {
        appt_hours = prng_u01(p) * 14.0 * 24.0;
        m->appt_ms = now_ms + (int64_t)(appt_hours * HOUR_MS) / 60000 * 60000;
    } else {
        m->appt_ms = -1;
    }

    for (int d = 0; d < 7; d++)
        m->weekday[d] = (d < 5 ? 105 : 85) + (int)prng_below(p, 21) - 10;

    /* hidden truth: logistic in observable signals plus noise */
    double recency = days_since_login < 0 ? -5.0 : -log1p(days_since_login);
    double appt_soon = appt_hours >= 0 && appt_hours <= 48.0 ? 1.0 : 0.0;
    double new_enroll = (double)(now_ms - m->enroll_ms) <= 30.0 * DAY_MS ? 1.0 : 0.0;
    double concentration = conc / 10000.0;
    double active = m->status == 0 ? 1.0 : 0.0;
    double z = 0.3 + 1.5 * recency + 2.2 * appt_soon + 1.4 * new_enroll + 1.5 * concentration +
               1.0 * active - 1.0 + 0.35 * prng_normal(p);
    m->p_open = 1.0 / (1.0 + exp(-z));
    m->opened = prng_u01(p) < m->p_open;
}

static void put_member_id(outbuf *o, const member *m)
{
    put_str(o, "\"M");
    put_uint(o, m->id, 9);
    *o->p++ = '"';
}

static size_t format_member(char *buf, const member *m, const profile *pf)
{
    outbuf o = {buf};

    put_str(&o, "{\"member_id\":");
    put_member_id(&o, m);
    put_str(&o, ",\"first_name\":\"");
    put_str(&o, first_names[m->first]);
    put_str(&o, "\",\"last_name\":\"");
    put_str(&o, last_names[m->last]);
    put_str(&o, "\",\"date_of_birth\":");
    put_date(&o, m->dob_ms);
    put_str(&o, ",\"sponsor_id\":\"SP");
    put_uint(&o, (uint64_t)m->sponsor, 4);
    put_str(&o, "\",\"population_id\":\"POP");
    put_uint(&o, (uint64_t)m->population, 3);
    put_str(&o, "\",\"state\":\"");
    put_str(&o, states[m->state]);
    put_str(&o, "\",\"language\":\"");
    put_str(&o, languages[m->language]);
    put_str(&o, "\",\"plan_type\":\"");
    put_str(&o, pf->plan_type);
    put_str(&o, "\",\"payer_id\":\"");
    put_str(&o, payers[m->payer]);
    put_str(&o, "\",\"trading_partner_id\":\"");
    put_str(&o, payers[m->payer]);
    put_str(&o, "\",\"has_rte_enabled\":");
    put_str(&o, m->rte ? "true" : "false");
    put_str(&o, ",\"account_status\":\"");
    put_str(&o, statuses[m->status]);
    put_str(&o, "\",\"is_mock\":");
    put_str(&o, m->is_mock ? "true" : "false");
    put_str(&o, ",\"feature_flags\":[");
    int first = 1;
    for (size_t f = 0; f < N_OF(flags); f++) {
        if (!(m->flag_bits & (1u << f)))
            continue;
        if (!first)
            *o.p++ = ',';
        first = 0;
        *o.p++ = '"';
        put_str(&o, flags[f]);
        *o.p++ = '"';
    }
    put_str(&o, "],\"last_login_at\":");
    put_time(&o, m->login_ms);
    put_str(&o, ",\"last_eligibility_check_at\":");
    put_time(&o, m->check_ms);
    put_str(&o, ",\"upcoming_appointment_at\":");
    put_time(&o, m->appt_ms);
    put_str(&o, ",\"enrollment_date\":");
    put_date(&o, m->enroll_ms);
    put_str(&o, ",\"usage_by_hour\":[");
    for (int h = 0; h < 24; h++) {
        if (h)
            *o.p++ = ',';
        put_fixed(&o, (uint64_t)m->usage[h], 4);
    }
    put_str(&o, "],\"weekday_factor\":[");
    for (int d = 0; d < 7; d++) {
        if (d)
            *o.p++ = ',';
        put_fixed(&o, (uint64_t)m->weekday[d], 2);
    }
    *o.p++ = ']';
    memcpy(o.p, pf->text, pf->len);
    o.p += pf->len;
    put_str(&o, "}\n");
    return (size_t)(o.p - buf);
}

static size_t format_truth(char *buf, const member *m)
{
    outbuf o = {buf};
    double p = m->p_open;

    put_str(&o, "{\"member_id\":");
    put_member_id(&o, m);
    put_str(&o, ",\"p_open_24h\":");
    put_fixed(&o, (uint64_t)(p * 1000000.0 + 0.5), 6);
    put_str(&o, ",\"opened\":");
    put_str(&o, m->opened ? "true" : "false");
    put_str(&o, "}\n");
    return (size_t)(o.p - buf);
}

/* --- main ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: member-gen --count N --seed S [--out FILE|-] [--truth FILE] "
                    "[--now RFC3339]\n"
                    "       member-gen --compile SOURCE --out FILE.mdir\n");
    exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "member-gen: %s '%s': expected a non-negative integer\n", opt, s);
        exit(2);
    }
    return (uint64_t)v;
}

static FILE *open_out(const char *path, char **buf)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        fprintf(stderr, "member-gen: cannot write '%s': %s\n", path, strerror(errno));
        exit(1);
    }
    *buf = malloc(1 << 22);
    if (*buf)
        setvbuf(f, *buf, _IOFBF, 1 << 22);
    return f;
}

static int close_out(FILE *f, const char *path)
{
    if (fflush(f) != 0 || ferror(f) || (f != stdout && fclose(f) != 0)) {
        fprintf(stderr, "member-gen: writing '%s' failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t count = 0, seed = 0;
    int have_count = 0, have_seed = 0;
    const char *out_path = "-", *truth_path = NULL, *now_s = DEFAULT_NOW, *compile = NULL;
    char *out_buf = NULL, *truth_buf = NULL;
    FILE *out = NULL, *truth = NULL;
    char line[LINE_MAX_BYTES];
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        if (strcmp(a, "--count") == 0) {
            count = parse_u64(a, argv[++i]);
            have_count = 1;
        } else if (strcmp(a, "--seed") == 0) {
            seed = parse_u64(a, argv[++i]);
            have_seed = 1;
        } else if (strcmp(a, "--out") == 0) {
            out_path = argv[++i];
        } else if (strcmp(a, "--truth") == 0) {
            truth_path = argv[++i];
        } else if (strcmp(a, "--now") == 0) {
            now_s = argv[++i];
        } else if (strcmp(a, "--compile") == 0) {
            compile = argv[++i];
        } else {
            usage();
        }
    }
    if (compile) {
        char err[1024];
        if (have_count || have_seed || truth_path || strcmp(out_path, "-") == 0)
            usage();
        if (rte_member_dir_compile(compile, out_path, err, sizeof err) < 0) {
            fprintf(stderr, "member-gen: --compile: %s\n", err);
            return 1;
        }
        return 0;
    }
    if (!have_count || !have_seed)
        usage();
    if (count > 1000000000ULL) {
        fprintf(stderr, "member-gen: --count %llu: at most 1000000000 (9-digit ids)\n",
                (unsigned long long)count);
        return 2;
    }
    int64_t now_ms = rte_clock_parse(now_s);
    if (now_ms < 0) {
        fprintf(stderr, "member-gen: --now '%s': expected RFC 3339 (2026-01-05T00:00:00Z)\n",
                now_s);
        return 2;
    }

    prng p;
    prng_seed(&p, seed);
    uint64_t id_offset = prng_below(&p, 1000000000ULL);

    out = open_out(out_path, &out_buf);
    if (truth_path)
        truth = open_out(truth_path, &truth_buf);

    for (uint64_t i = 0; i < count; i++) {
        member m;
        static profile pf; /* 6 KB, reused: static rather than on the stack per member */
        gen_member(&p, i, id_offset, now_ms, &m);
        profile_gen(seed, i, &m, now_ms, &pf);
        size_t n = format_member(line, &m, &pf);
        fwrite(line, 1, n, out);
        if (truth) {
            n = format_truth(line, &m);
            fwrite(line, 1, n, truth);
        }
    }
    rc = 0;
    if (close_out(out, out_path) < 0)
        rc = 1;
    if (truth && close_out(truth, truth_path) < 0)
        rc = 1;
    free(out_buf);
    free(truth_buf);
    return rc;
}
