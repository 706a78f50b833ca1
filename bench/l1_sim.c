/*
 * l1_sim.c - the gateway's L1 (services/cache-gateway/gw_l1.c) under
 * Zipf-distributed reads, as bench-gateway's (b) asks for them: how many
 * reads miss.
 *
 * Usage: l1-sim [members] [capacity] [ttl_ms] [requests_per_s]
 *   defaults 100000 members, capacity = members, the gateway's subscribed
 *   ttl (60000 ms) and 40000 req/s. Each read that misses is put, as the
 *   gateway does after its Redis read. Keys are the ranks scattered by a
 *   multiplicative hash, like member keys (a keyed hash) scatter members.
 *   The first 4,000,000 reads warm the table; the next 4,000,000 are
 *   counted. Prints the miss ratio: a property of the table, not of this
 *   machine, so one run is enough.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_l1.h"

#define READS 4000000L

/* the rank (0-based) whose cumulative Zipf(1) weight first reaches u */
static long zipf_rank(const double *cdf, long n, double u)
{
    long lo = 0, hi = n - 1;

    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static long arg(int argc, char **argv, int i, long def)
{
    return argc > i ? strtol(argv[i], NULL, 10) : def;
}

int main(int argc, char **argv)
{
    long n = arg(argc, argv, 1, 100000);
    long cap = arg(argc, argv, 2, n);
    long ttl = arg(argc, argv, 3, 60000);
    long rate = arg(argc, argv, 4, 40000);
    double *cdf, h = 0;
    gw_l1 *c;
    rte_cache_entry e;
    unsigned seed = 1;
    long misses = 0;
    char key[64];

    if (n < 1 || cap < 1 || ttl < 1 || rate < 1) {
        fprintf(stderr, "usage: l1-sim [members] [capacity] [ttl_ms] [requests_per_s]\n");
        return 2;
    }
    cdf = malloc((size_t)n * sizeof *cdf);
    c = gw_l1_new((size_t)cap, ttl);
    if (cdf == NULL || c == NULL) {
        fprintf(stderr, "l1-sim: out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++) {
        h += 1.0 / (double)(i + 1);
        cdf[i] = h;
    }
    for (long i = 0; i < n; i++)
        cdf[i] /= h;
    memset(&e, 0, sizeof e);
    e.cached_at_ms = 1;
    for (long t = 0; t < 2 * READS; t++) {
        long rank = zipf_rank(cdf, n, rand_r(&seed) / (RAND_MAX + 1.0));
        int64_t now = 1 + t * 1000 / rate;
        int hit;

        snprintf(key, sizeof key, "rte:eligibility:%08x:87726",
                 (unsigned)((unsigned long)rank * 2654435761u));
        hit = gw_l1_get(c, key, now, &e);
        if (!hit)
            gw_l1_put(c, key, &e, now);
        if (t >= READS)
            misses += !hit;
    }
    printf("l1 members=%ld capacity=%zu ttl_ms=%ld rate=%ld misses=%.2f%%\n", n, gw_l1_capacity(c),
           ttl, rate, 100.0 * (double)misses / (double)READS);
    gw_l1_free(c);
    free(cdf);
    return 0;
}
