/*
 * member_query.h - MemberQuery over the member directory: every filter
 * family of proto/batch_eligibility.proto and the PredicateFilter
 * expression language, resolved by scanning the directory's columns.
 *
 * A query is compiled once (rte_member_query_new from the protobuf-c
 * message, rte_member_query_parse from an expression alone) into a plan
 * that names attributes and values but no snapshot, so one plan runs
 * against any snapshot, before and after a reload. A field the directory
 * cannot answer, a value out of range, an enum value of 0 (UNSPECIFIED)
 * in a list or a bad expression fails compilation with
 * RTE_MEMBER_QUERY_INVALID and a message naming the field
 * ("member_query.demographics_filter.min_age: ...", "...expression: at 9
 * near 'FOO': unknown attribute 'FOO'"): batch-rpc answers
 * INVALID_ARGUMENT with it.
 *
 * Results come in a stable order: sort_order's key, then member id; with
 * no sort_order, member id. The cursor is opaque: the (key, member id) of
 * the last member of a page, so the next page starts strictly after it
 * in any snapshot - a reload never makes a page skip or repeat a member
 * whose sort key did not change. Semantics, grammar and figures:
 * docs/member-query.md.
 */
#ifndef RTE_MEMBER_QUERY_H
#define RTE_MEMBER_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "batch_eligibility.pb-c.h"
#include "rte/member_dir.h"

#define RTE_MEMBER_QUERY_INVALID (-2) /* the query is wrong: INVALID_ARGUMENT */
#define RTE_MEMBER_QUERY_CURSOR_MAX 512

typedef struct rte_member_query rte_member_query;

typedef struct rte_member_query_result {
    size_t total;                                  /* members matching the filters (all pages) */
    size_t returned;                               /* ids handed to the callback in this call */
    char next_cursor[RTE_MEMBER_QUERY_CURSOR_MAX]; /* "" when no member follows */
} rte_member_query_result;

/* one resolved member, in order; return non-zero to stop early */
typedef int (*rte_member_query_fn)(const rte_member *m, size_t index, void *arg);

/*
 * rte_member_query_new - compile q; now_ms is "now" for relative filters
 * (within_last, has_upcoming_appointments, renewal windows, ages) unless
 * the query carries its own time. NULL + *rc (RTE_MEMBER_QUERY_INVALID or
 * -1 out of memory) + err naming the field. Any thread; no shared state.
 */
rte_member_query *rte_member_query_new(const Rte__V1__MemberQuery *q, int64_t now_ms, int *rc,
                                       char *err, size_t errlen);

/*
 * rte_member_query_parse - compile an expression alone (the
 * PredicateFilter language) with no limit, cursor or sort order. NULL +
 * *rc + err ("expression: at N near 'TOKEN': ...") on failure. Any thread.
 */
rte_member_query *rte_member_query_parse(const char *expression, int64_t now_ms, int *rc, char *err,
                                         size_t errlen);

/*
 * rte_member_query_resolve - run q over s: fn gets each matching member
 * in order from the cursor, at most limit of them (0 = all), streamed
 * from one bitmap of matches (ids are never copied); res gets the total
 * and the next page's cursor. 0, RTE_MEMBER_QUERY_INVALID (a cursor made
 * for another sort order) or -1 out of memory, err filled. Any thread;
 * many threads may run one q at once (q is read-only); lock-free.
 */
int rte_member_query_resolve(const rte_member_query *q, const rte_member_snapshot *s,
                             rte_member_query_fn fn, void *arg, rte_member_query_result *res,
                             char *err, size_t errlen);

/*
 * rte_member_query_match - the members q's filters select in s, unordered
 * and whole (limit, cursor and sort order are not applied): a new bitmap
 * *bits (bit i of word i / 64 = member index i, free() it) of
 * ceil(count / 64) words and their number *total. For a caller that walks
 * the directory in its own order (member-cron's fires). 0, or -1 out of
 * memory with err. Any thread; q read-only; lock-free.
 */
int rte_member_query_match(const rte_member_query *q, const rte_member_snapshot *s, uint64_t **bits,
                           size_t *total, char *err, size_t errlen);

/*
 * rte_member_query_ids - rte_member_query_resolve into a new array of
 * member ids (borrowed from s; free the array, not the ids) of *n entries.
 * Any thread.
 */
int rte_member_query_ids(const rte_member_query *q, const rte_member_snapshot *s, const char ***ids,
                         size_t *n, rte_member_query_result *res, char *err, size_t errlen);

/* rte_member_query_free - free a plan; any thread once no resolve uses it */
void rte_member_query_free(rte_member_query *q);

#endif
