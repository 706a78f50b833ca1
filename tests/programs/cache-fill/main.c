/*
 * cache-fill - write fresh cache entries for a share of a member directory.
 *
 *   cache-fill --members FILE [--every K] [--offset O] [--config FILE]
 *
 * Loads the member directory (member-gen JSONL) and, for every member whose
 * position i in the file has i % K == O (K default 3, O default 0), writes a
 * success entry (source stedi_batch, eligible, in network) cached now on
 * the libcommon clock, under the key and in the format of libcommon's
 * cache_entry module (rte_cache_put_many, 1,000 per round trip): the
 * benchmarks and tests that need "a cache where a share of the members are
 * fresh" get exactly what the services would have written. Redis and the
 * cache settings (cache.member_key_secret, freshness) come from the config
 * file and RTE_* variables as a service reads them (RTE_REDIS_URL).
 *
 * Prints "cache-fill: members=M written=W seconds=S" and exits 0; bad
 * arguments, an unreadable directory or a Redis error exit 1 naming it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/cache_entry.h"
#include "rte/clock.h"
#include "rte/config.h"
#include "rte/log.h"
#include "rte/member_dir.h"
#include "rte/redis.h"

#define CHUNK 1000

struct args {
    const char *members, *config;
    long every, offset;
};

static long number(const char *opt, const char *s, long min)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min)
        rte_fatal("%s %s: expected a number >= %ld", opt, s, min);
    return v;
}

static void parse(int argc, char **argv, struct args *a)
{
    a->every = 3;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            rte_fatal("%s: missing value (usage: see tests/programs/cache-fill/main.c)", o);
        i++;
        if (strcmp(o, "--members") == 0)
            a->members = v;
        else if (strcmp(o, "--config") == 0)
            a->config = v;
        else if (strcmp(o, "--every") == 0)
            a->every = number(o, v, 1);
        else if (strcmp(o, "--offset") == 0)
            a->offset = number(o, v, 0);
        else
            rte_fatal("unknown option %s", o);
    }
    if (!a->members)
        rte_fatal("--members FILE is required");
    if (a->offset >= a->every)
        rte_fatal("--offset %ld: expected below --every %ld", a->offset, a->every);
}

/* write the n keyed entries of w; exits on a Redis error */
static long flush(rte_redis *r, rte_cache_write *w, int n, const rte_cache_settings *cs)
{
    char err[512];
    long written = 0;

    if (n == 0)
        return 0;
    if (rte_cache_put_many(r, w, n, &cs->freshness, err, sizeof err) != 0)
        rte_fatal("cache-fill: %s", err);
    for (int i = 0; i < n; i++)
        written += w[i].rc == 1;
    return written;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    rte_cache_settings cs;
    static char keys[CHUNK][RTE_CACHE_KEY_MAX];
    static rte_cache_write w[CHUNK];
    rte_cache_entry e;
    char err[512];
    long written = 0;
    int n = 0;

    rte_log_init("cache-fill", RTE_LOG_INFO);
    parse(argc, argv, &a);
    rte_config *cfg = rte_config_load(a.config, err, sizeof err);
    if (!cfg || rte_cache_settings_from_config(cfg, &cs, err, sizeof err) != 0)
        rte_fatal("%s", err);
    rte_member_dir *d = rte_member_dir_new(a.members, err, sizeof err);
    if (!d)
        rte_fatal("%s", err);
    rte_redis *r = rte_redis_new(rte_redis_default_url(), 5000, err, sizeof err);
    if (!r)
        rte_fatal("%s", err);

    int64_t t0 = rte_clock_mono_ms(), now = rte_clock_now_ms();
    memset(&e, 0, sizeof e);
    e.eligible = 1;
    e.copay_amount = 25.0;
    e.has_copay = 1;
    snprintf(e.network_status, sizeof e.network_status, "in_network");
    snprintf(e.coverage_start, sizeof e.coverage_start, "2026-01-01");
    snprintf(e.coverage_end, sizeof e.coverage_end, "2026-12-31");
    snprintf(e.source, sizeof e.source, "stedi_batch");
    e.cached_at_ms = now;
    e.fresh_until_ms = now + cs.freshness.success_ms;

    rte_member_snapshot *snap = rte_member_dir_acquire(d);
    size_t count = rte_member_snapshot_count(snap);
    for (size_t i = (size_t)a.offset; i < count; i += (size_t)a.every) {
        const rte_member *m = rte_member_snapshot_at(snap, i);
        if (rte_cache_key(cs.member_key_secret, m->member_id, m->trading_partner_id, keys[n],
                          sizeof keys[n]) != 0)
            continue; /* a trading partner no key can hold: the services skip it too */
        w[n] = (rte_cache_write){.key = keys[n], .entry = &e};
        if (++n == CHUNK) {
            written += flush(r, w, n, &cs);
            n = 0;
        }
    }
    written += flush(r, w, n, &cs);
    printf("cache-fill: members=%zu written=%ld seconds=%.2f\n", count, written,
           (double)(rte_clock_mono_ms() - t0) / 1000.0);
    rte_member_snapshot_release(snap);
    rte_redis_free(r);
    rte_member_dir_free(d);
    rte_config_free(cfg);
    return 0;
}
