/*
 * topics.c - the table behind rte/topics.h.
 *
 * Partition counts bound consumer parallelism per topic: member-cron-events
 * carries one event per member per schedule tick and is the widest; the
 * others are per-batch or per-request events. DLQs have one partition.
 * Changing a count here changes only the local dev broker; a production
 * topic keeps the count it was created with.
 */
#include <stddef.h>

#include "rte/topics.h"

#define DLQ(name)                                                                                  \
    {                                                                                              \
        name RTE_TOPIC_DLQ_SUFFIX, 1                                                               \
    }

static const rte_topic all_topics[] = {
    {RTE_TOPIC_MEMBER_CRON_EVENTS, 12},
    DLQ(RTE_TOPIC_MEMBER_CRON_EVENTS),
    {RTE_TOPIC_APP_USAGE_LIKELY, 6},
    DLQ(RTE_TOPIC_APP_USAGE_LIKELY),
    {RTE_TOPIC_CACHE_WARMING_EVENTS, 6},
    DLQ(RTE_TOPIC_CACHE_WARMING_EVENTS),
    {RTE_TOPIC_BATCH_JOB_EVENTS, 6},
    DLQ(RTE_TOPIC_BATCH_JOB_EVENTS),
    {RTE_TOPIC_RTE_EVENTS, 6},
    DLQ(RTE_TOPIC_RTE_EVENTS),
    {RTE_TOPIC_STEDI_BATCH_RESULTS, 6},
    DLQ(RTE_TOPIC_STEDI_BATCH_RESULTS),
    {NULL, 0},
};

/* rte_topics_all - the table, NULL-name terminated; static, any thread */
const rte_topic *rte_topics_all(void)
{
    return all_topics;
}
