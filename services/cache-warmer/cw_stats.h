/*
 * cw_stats.h - warming statistics for GetWarmingStats and the accuracy gauge.
 *
 * Kept in Redis (prefix warm.prefix + ":stats"), one hash per clock hour so
 * every replica adds to the same figures and a range query sums hours:
 *   warmed:<source>  members submitted in a batch or warmed in real time
 *   used:<source>    of those, members whose warmed entry the gateway later
 *                    served (an rte.access hit on an entry cached at or
 *                    after the warming) - counted once per warming
 *   warm_ms, warm_n  sum and count of "time to warm": from the first member
 *                    of a batch's window to the batch being done (polled
 *                    into the cache by webhook-receiver), per member
 *   acc_w, hit_w     rte.access requests (counts) and hits for members with
 *   acc_u, hit_u     a warming marker (w) and without (u): the hit rate
 *                    improvement is hit_w/acc_w - hit_u/acc_u
 * A warming marker <prefix>:w:<member key>:<trading partner> = "<source>
 * <warmed ms>" lives as long as a success entry stays fresh.
 */
#ifndef CW_STATS_H
#define CW_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "rte/kafka.h"
#include "rte/redis.h"
#include "rte/warm.h"

#define CW_STATS_MAX_SOURCES 64

typedef struct cw_stats {
    long warmed, used;
    int nsources;
    char source[CW_STATS_MAX_SOURCES][64];
    long by_source[CW_STATS_MAX_SOURCES];
    double accuracy;    /* used / warmed, 0 when nothing was warmed */
    double avg_warm_ms; /* 0 when no batch completed */
    double hit_improvement;
} cw_stats;

/* cw_stats_submitted - rte_warm_submitted_fn: markers and counts of a submitted batch */
void cw_stats_submitted(void *arg, const rte_warm_submitted *s, const rte_stedi_check *items,
                        const char *const *sources, int n);

/* cw_stats_warmed - markers and counts of members warmed in real time; any thread */
void cw_stats_warmed(rte_redis *r, const char *source, const char *const *member_ids,
                     const char *const *tps, int n);

/* cw_stats_track - complete the batches webhook-receiver finished; timer thread */
void cw_stats_track(rte_redis *r);

/* cw_stats_access - batch handler of rte.events (rte.access hits); consumer thread */
int cw_stats_access(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, void *arg, char *reason,
                    size_t reasonlen);

/*
 * cw_stats_query - figures for [start_ms, end_ms) (clock ms, hour
 * granularity), only the sources listed (n == 0: all). 0 or -1 + err.
 */
int cw_stats_query(rte_redis *r, int64_t start_ms, int64_t end_ms, const char *const *sources,
                   int nsources, cw_stats *out, char *err, size_t errlen);

#endif
