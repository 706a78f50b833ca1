/*
 * topics.h - the suite's Kafka topics and their partition counts.
 *
 * One table names every topic the services exchange (see docs/ARCHITECTURE.md)
 * and its dead-letter companion "<topic>.dlq" (RTE_TOPIC_DLQ_SUFFIX, one
 * partition: dead letters are rare and read by people, in order). Code uses
 * the RTE_TOPIC_* macros rather than spelling names; tools/kafka-dev-broker
 * creates exactly this table with these counts (a topic the mock broker
 * auto-creates instead gets 4 partitions, whatever the table says).
 *
 * This is a project-layer module: generic libcommon pieces do not include it.
 * It does not create topics on a real cluster; production topics are
 * provisioned by the platform with the same names and counts.
 *
 * Thread safety: the table is immutable; any thread.
 */
#ifndef RTE_TOPICS_H
#define RTE_TOPICS_H

#define RTE_TOPIC_MEMBER_CRON_EVENTS "member-cron-events"
#define RTE_TOPIC_APP_USAGE_LIKELY "digital-twin.prediction.app_usage_likely"
#define RTE_TOPIC_CACHE_WARMING_EVENTS "domain.rte.v1.cache_warming_events"
#define RTE_TOPIC_BATCH_JOB_EVENTS "domain.rte.v1.batch_job_events"
#define RTE_TOPIC_RTE_EVENTS "rte.events"
#define RTE_TOPIC_STEDI_BATCH_RESULTS "rte.stedi.batch-results"

/* Suffix of the dead-letter topic every consumed topic has */
#define RTE_TOPIC_DLQ_SUFFIX ".dlq"

typedef struct rte_topic {
    const char *name;
    int partitions;
} rte_topic;

/*
 * rte_topics_all - every topic of the suite, DLQs included, ending with an
 * entry whose name is NULL; static storage, any thread
 */
const rte_topic *rte_topics_all(void);

#endif
