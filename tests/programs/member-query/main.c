/*
 * member-query - resolve MemberQuery requests over a member directory, one
 * request per stdin line, for the property test and the benchmark.
 *
 * Usage: member-query FILE NOW
 *   FILE  a member JSONL snapshot (rte_member_dir); NOW  RFC 3339 "now"
 *
 * Requests (one line each) and the reply lines:
 *   Q <hex of a serialized rte.v1.MemberQuery>
 *   E <expression>              the PredicateFilter language alone
 *     -> "OK <total> <returned> <next_cursor or ->" then "IDS id id ...",
 *        or "ERR <rc> <message>" (rc -2: INVALID_ARGUMENT)
 *   T <runs> <hex MemberQuery>  resolve it runs times (ids discarded)
 *     -> "TIME <p50 ms> <min ms> <matches>"
 *   R                           reload FILE when it changed -> "RELOADED <0|1>"
 *   I                           build the current snapshot's events index (or
 *                               find it built) -> "INDEX <ms> <bytes> <events> <types>"
 * Replies are flushed after each request. Exits 0 at end of input, 1 when
 * FILE cannot be loaded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/member_dir.h"
#include "rte/member_query.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int print_id(const rte_member *m, size_t index, void *arg)
{
    (void)index;
    fputc(' ', arg);
    fputs(m->member_id, arg);
    return 0;
}

static int count_only(const rte_member *m, size_t index, void *arg)
{
    (void)m;
    (void)index;
    ++*(size_t *)arg;
    return 0;
}

/* the message hex decodes to, or NULL with a reply written */
static Rte__V1__MemberQuery *decode(const char *hex)
{
    size_t n = strlen(hex) / 2;
    uint8_t *buf = malloc(n ? n : 1);
    Rte__V1__MemberQuery *q = NULL;
    if (!buf)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi = rte_hex_digit(hex[2 * i]), lo = rte_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            printf("ERR -2 request: not hex\n");
            free(buf);
            return NULL;
        }
        buf[i] = (uint8_t)(hi * 16 + lo);
    }
    q = rte__v1__member_query__unpack(NULL, n, buf);
    if (!q)
        printf("ERR -2 request: not a MemberQuery\n");
    free(buf);
    return q;
}

/* "I": the events index of the current snapshot, timed (0 ms when already built) */
static void event_index(rte_member_dir *d)
{
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    double t0 = now_ms();
    const rte_member_event_index *x = rte_member_snapshot_event_index(s);
    double ms = now_ms() - t0;
    if (x)
        printf("INDEX %.1f %zu %zu %zu\n", ms, x->bytes, x->nentries, x->ntypes);
    else
        printf("ERR -1 events index: out of memory\n");
    rte_member_snapshot_release(s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run(rte_member_dir *d, char kind, char *arg, int64_t now)
{
    char err[512];
    int rc = 0;
    int runs = 1;
    rte_member_query *q = NULL;
    Rte__V1__MemberQuery *msg = NULL;

    if (kind == 'T') {
        runs = (int)strtol(arg, &arg, 10);
        while (*arg == ' ')
            arg++;
        if (runs < 1 || runs > 100000)
            runs = 1;
    }
    if (kind == 'E') {
        q = rte_member_query_parse(arg, now, &rc, err, sizeof err);
    } else {
        msg = decode(arg);
        if (!msg)
            return;
        q = rte_member_query_new(msg, now, &rc, err, sizeof err);
    }
    if (!q) {
        printf("ERR %d %s\n", rc, err);
        goto out;
    }
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    rte_member_query_result res;
    if (kind == 'T') {
        double *t = malloc((size_t)runs * sizeof(*t));
        size_t n = 0;
        for (int i = 0; t && i < runs; i++) {
            double t0 = now_ms();
            rc = rte_member_query_resolve(q, s, count_only, &n, &res, err, sizeof err);
            t[i] = now_ms() - t0;
        }
        if (t && rc == 0) {
            qsort(t, (size_t)runs, sizeof(*t), cmp_double);
            printf("TIME %.3f %.3f %zu\n", t[runs / 2], t[0], res.returned);
        } else {
            printf("ERR %d %s\n", rc, t ? err : "out of memory");
        }
        free(t);
    } else {
        fputs("IDS", stdout);
        rc = rte_member_query_resolve(q, s, print_id, stdout, &res, err, sizeof err);
        if (rc == 0)
            printf("\nOK %zu %zu %s\n", res.total, res.returned,
                   res.next_cursor[0] ? res.next_cursor : "-");
        else
            printf("\nERR %d %s\n", rc, err);
    }
    rte_member_snapshot_release(s);
out:
    rte_member_query_free(q);
    if (msg)
        rte__v1__member_query__free_unpacked(msg, NULL);
}

int main(int argc, char **argv)
{
    char err[512];
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (argc != 3) {
        fprintf(stderr, "usage: member-query FILE NOW\n");
        return 2;
    }
    int64_t now = rte_clock_parse(argv[2]);
    rte_member_dir *d = rte_member_dir_new(argv[1], err, sizeof err);
    if (!d || now < 0) {
        fprintf(stderr, "member-query: %s\n", d ? "NOW: expected RFC 3339" : err);
        return 1;
    }
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    printf("READY %zu\n", rte_member_snapshot_count(s));
    rte_member_snapshot_release(s);
    fflush(stdout);
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (line[0] == 'R') {
            int r = rte_member_dir_reload_if_changed(d, err, sizeof err);
            if (r < 0)
                printf("ERR -1 %s\n", err);
            else
                printf("RELOADED %d\n", r);
        } else if (line[0] == 'I') {
            event_index(d);
        } else if ((line[0] == 'Q' || line[0] == 'E' || line[0] == 'T') && line[1] == ' ') {
            run(d, line[0], line + 2, now);
        } else {
            printf("ERR -2 request: expected Q, E, T, R or I\n");
        }
        fflush(stdout);
    }
    free(line);
    rte_member_dir_free(d);
    return 0;
}
