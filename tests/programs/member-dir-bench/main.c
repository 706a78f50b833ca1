/*
 * member-dir-bench - load a member JSONL snapshot and measure the directory.
 *
 * Usage: member-dir-bench FILE [LOOKUPS]
 *
 * Loads FILE with rte_member_dir_new and prints, one "key value" per line:
 * members, load_seconds, peak_rss_mb (getrusage ru_maxrss after the load),
 * and lookups_per_second for LOOKUPS (default 1,000,000) finds of ids drawn
 * at random (fixed-seed xorshift) from the snapshot, plus a column scan
 * (has_rte_enabled && ACTIVE && checked > 22 h ago) and its time. Exits 1
 * with the loader's message when the load fails. Numbers are printed, not
 * asserted: bench/member_dir.sh compares them by eye.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "rte/member_dir.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char err[512];
    long lookups = 1000000;

    if (argc < 2) {
        fprintf(stderr, "usage: member-dir-bench FILE [LOOKUPS]\n");
        return 2;
    }
    if (argc > 2)
        lookups = strtol(argv[2], NULL, 10);

    double t0 = now_s();
    rte_member_dir *d = rte_member_dir_new(argv[1], err, sizeof(err));
    double load = now_s() - t0;
    if (!d) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    rte_member_snapshot *s = rte_member_dir_acquire(d);
    size_t n = rte_member_snapshot_count(s);
    printf("members %zu\n", n);
    printf("load_seconds %.3f\n", load);
    printf("peak_rss_mb %.1f\n", (double)ru.ru_maxrss / 1024.0);

    uint64_t x = 88172645463325252ULL;
    const char **ids = malloc((size_t)lookups * sizeof(*ids));
    if (!ids || n == 0) {
        rte_member_snapshot_release(s);
        rte_member_dir_free(d);
        free(ids);
        return n == 0 ? 0 : 1;
    }
    for (long i = 0; i < lookups; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = rte_member_snapshot_at(s, x % n)->member_id;
    }
    /* copy the ids so finds hash and compare rather than hit the same pointer */
    char(*keys)[16] = malloc((size_t)lookups * sizeof(*keys));
    for (long i = 0; keys && i < lookups; i++)
        snprintf(keys[i], sizeof(keys[i]), "%s", ids[i]);
    size_t found = 0;
    t0 = now_s();
    for (long i = 0; keys && i < lookups; i++)
        found += rte_member_snapshot_find(s, keys[i]) != NULL;
    double lt = now_s() - t0;
    printf("lookups %ld found %zu\n", lookups, found);
    printf("lookups_per_second %.0f\n", (double)lookups / lt);

    int64_t cutoff = rte_member_snapshot_at(s, 0)->last_login_ms; /* any fixed instant */
    size_t due = 0;
    t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        const rte_member *m = rte_member_snapshot_at(s, i);
        if (m->has_rte_enabled && m->account_status == RTE_MEMBER_ACTIVE &&
            m->last_check_ms < cutoff - 22 * 3600 * 1000LL)
            due++;
    }
    printf("scan_seconds %.4f due %zu\n", now_s() - t0, due);

    free(keys);
    free(ids);
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    return 0;
}
