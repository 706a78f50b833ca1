/*
 * slot-probe - drive rte/slots.h from integration tests.
 *
 *   slot-probe --redis URL --class interactive|warming|batch [--n 200]
 *              [--hold-ms 5] [--hold-min-ms H] [--limit 15] [--lease-ms 2000]
 *              [--prefix P] [--warming-cap N] [--batch-cap N] [--reserve N]
 *              [--timeout-ms 30000] [--tag T] [--hold-forever]
 *
 * Loop mode acquires n times; while holding it INCRs "<prefix>:test:inflight",
 * RPUSHes the value INCR returned to "<prefix>:test:observed" (so a test can
 * take the maximum over all processes), sleeps a hold time drawn uniformly
 * from [hold-min-ms, hold-ms], DECRs and releases. With --tag, each grant
 * also RPUSHes the tag to "<prefix>:test:order" (grant order across
 * processes).
 *
 * --hold-forever acquires one slot, does the same bookkeeping, prints
 * "slot-probe: holding <token>" and holds it, renewing every lease/3, until
 * SIGTERM/SIGINT; then it releases the slot and exits 0. kill -9 leaves the
 * lease to expire.
 *
 * Every run ends with one summary line on stdout:
 *   slot-probe: class=C ok=N timeout=N error=N max_inflight=N max_wait_ms=N
 * Exit: 0 when every acquisition succeeded (or SIGTERM ended the run), 2 when
 * some timed out or failed, 1 on bad arguments or URL (rte_fatal).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/clock.h"
#include "rte/log.h"
#include "rte/redis.h"
#include "rte/slots.h"

struct args {
    const char *redis, *tag;
    int cls, hold_forever;
    long n, hold_ms, hold_min_ms, timeout_ms;
    rte_slots_opts o;
};

struct stats {
    long ok, timeout, error, max_inflight;
    int64_t max_wait_ms;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
        ;
}

static long number(const char *opt, const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000000L)
        rte_fatal("%s %s: expected a number >= 0", opt, s);
    return v;
}

static void parse(int argc, char **argv, struct args *a)
{
    int i;

    rte_slots_opts_init(&a->o);
    a->o.lease_ms = 2000;
    a->cls = -1;
    a->n = 200;
    a->hold_ms = 5;
    a->hold_min_ms = -1;
    a->timeout_ms = 30000;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(o, "--hold-forever") == 0) {
            a->hold_forever = 1;
            continue;
        }
        if (!v)
            rte_fatal("%s: missing value (usage in tests/programs/slot-probe/main.c)", o);
        i++;
        if (strcmp(o, "--redis") == 0)
            a->redis = v;
        else if (strcmp(o, "--class") == 0) {
            a->cls = rte_slot_class_parse(v);
            if (a->cls < 0)
                rte_fatal("--class %s: expected interactive, warming or batch", v);
        } else if (strcmp(o, "--n") == 0)
            a->n = number(o, v);
        else if (strcmp(o, "--hold-ms") == 0)
            a->hold_ms = number(o, v);
        else if (strcmp(o, "--hold-min-ms") == 0)
            a->hold_min_ms = number(o, v);
        else if (strcmp(o, "--timeout-ms") == 0)
            a->timeout_ms = number(o, v);
        else if (strcmp(o, "--limit") == 0)
            a->o.limit = (int)number(o, v);
        else if (strcmp(o, "--lease-ms") == 0)
            a->o.lease_ms = (int)number(o, v);
        else if (strcmp(o, "--warming-cap") == 0)
            a->o.warming_cap = (int)number(o, v);
        else if (strcmp(o, "--batch-cap") == 0)
            a->o.batch_cap = (int)number(o, v);
        else if (strcmp(o, "--reserve") == 0)
            a->o.reserve_interactive = (int)number(o, v);
        else if (strcmp(o, "--prefix") == 0)
            a->o.prefix = v;
        else if (strcmp(o, "--tag") == 0)
            a->tag = v;
        else
            rte_fatal("unknown option %s", o);
    }
    if (a->cls < 0)
        rte_fatal("--class is required");
    if (a->hold_min_ms < 0 || a->hold_min_ms > a->hold_ms)
        a->hold_min_ms = a->hold_ms;
}

/* counter - run one test-bookkeeping command on key "<prefix>:test:<name>" */
static long long counter(rte_redis *r, const char *cmd, const char *prefix, const char *name,
                         const char *value)
{
    char key[256], err[256];
    const char *argv[3];
    redisReply *rep;
    long long v = -1;

    snprintf(key, sizeof key, "%s:test:%s", prefix, name);
    argv[0] = cmd;
    argv[1] = key;
    argv[2] = value;
    rep = rte_redis_cmdargv(r, value ? 3 : 2, argv, NULL, err, sizeof err);
    if (rep == NULL)
        rte_fatal("slot-probe: %s %s: %s", cmd, key, err);
    if (rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* on_grant - the bookkeeping a test reads: inflight, observed, order */
static void on_grant(rte_redis *r, const struct args *a, struct stats *st)
{
    char buf[32];
    long long v = counter(r, "INCR", a->o.prefix, "inflight", NULL);

    if (v > st->max_inflight)
        st->max_inflight = (long)v;
    snprintf(buf, sizeof buf, "%lld", v);
    counter(r, "RPUSH", a->o.prefix, "observed", buf);
    if (a->tag)
        counter(r, "RPUSH", a->o.prefix, "order", a->tag);
}

static int acquire(rte_slots *s, const struct args *a, struct stats *st, rte_slot_lease *l)
{
    char err[256];
    int64_t t0 = rte_clock_mono_ms();
    int rc =
        rte_slots_acquire(s, (enum rte_slot_class)a->cls, t0 + a->timeout_ms, l, err, sizeof err);
    int64_t waited = rte_clock_mono_ms() - t0;

    if (waited > st->max_wait_ms)
        st->max_wait_ms = waited;
    if (rc == 0) {
        st->ok++;
        return 0;
    }
    if (rc == RTE_SLOTS_TIMEOUT)
        st->timeout++;
    else
        st->error++;
    fprintf(stderr, "slot-probe: acquire failed: %s\n", err);
    return -1;
}

static void hold_forever(rte_slots *s, rte_redis *r, const struct args *a, struct stats *st)
{
    rte_slot_lease l;
    int64_t renew_at;

    if (acquire(s, a, st, &l) < 0)
        return;
    on_grant(r, a, st);
    printf("slot-probe: holding %s\n", l.token);
    fflush(stdout);
    renew_at = rte_clock_mono_ms() + a->o.lease_ms / 3;
    while (!stop) {
        sleep_ms(20);
        if (!stop && rte_clock_mono_ms() >= renew_at) {
            if (rte_slots_renew(s, &l) != 0)
                fprintf(stderr, "slot-probe: renew failed\n");
            renew_at = rte_clock_mono_ms() + a->o.lease_ms / 3;
        }
    }
    counter(r, "DECR", a->o.prefix, "inflight", NULL);
    if (rte_slots_release(s, &l) != 0)
        st->error++;
}

static void loop(rte_slots *s, rte_redis *r, const struct args *a, struct stats *st)
{
    unsigned int seed = (unsigned int)rte_clock_mono_ms();
    rte_slot_lease l;
    long i;

    for (i = 0; i < a->n && !stop; i++) {
        long hold = a->hold_min_ms;

        if (acquire(s, a, st, &l) < 0)
            continue;
        on_grant(r, a, st);
        if (a->hold_ms > a->hold_min_ms)
            hold += (long)(rand_r(&seed) % (unsigned int)(a->hold_ms - a->hold_min_ms + 1));
        sleep_ms(hold);
        counter(r, "DECR", a->o.prefix, "inflight", NULL);
        if (rte_slots_release(s, &l) != 0)
            st->error++;
    }
}

int main(int argc, char **argv)
{
    struct args a = {0};
    struct stats st = {0};
    struct sigaction sa;
    rte_slots *s;
    rte_redis *r;
    char err[256];

    rte_log_init("slot-probe", RTE_LOG_WARN);
    parse(argc, argv, &a);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    s = rte_slots_new(a.redis, &a.o, err, sizeof err);
    if (s == NULL)
        rte_fatal("slot-probe: %s", err);
    r = rte_redis_new(a.redis ? a.redis : rte_redis_default_url(), 2000, err, sizeof err);
    if (r == NULL)
        rte_fatal("slot-probe: %s", err);
    if (a.hold_forever)
        hold_forever(s, r, &a, &st);
    else
        loop(s, r, &a, &st);
    printf("slot-probe: class=%s ok=%ld timeout=%ld error=%ld max_inflight=%ld "
           "max_wait_ms=%lld\n",
           rte_slot_class_name((enum rte_slot_class)a.cls), st.ok, st.timeout, st.error,
           st.max_inflight, (long long)st.max_wait_ms);
    fflush(stdout);
    rte_redis_free(r);
    rte_slots_free(s);
    return st.timeout || st.error ? 2 : 0;
}
