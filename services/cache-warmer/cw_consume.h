/*
 * cw_consume.h - the Kafka consumers of cache-warmer (batch handlers).
 *
 *   member-cron-events                        protobuf MemberCronEvent
 *   digital-twin.prediction.app_usage_likely  JSON {type, event_id,
 *                                             member_id, timestamp,
 *                                             data{probability, ...}}
 *
 * Each batch is decoded; a message that does not decode, or lacks
 * member_id, event_id or a probability in 0..1, goes to the DLQ with the
 * reason naming the field. The rest go through cw_decide as one batch
 * (strategy INTELLIGENT, priority from the probability). A Redis failure
 * makes the whole batch RETRY: nothing of it is committed until its
 * members are in the persistent queue (or skipped, or warmed).
 */
#ifndef CW_CONSUME_H
#define CW_CONSUME_H

#include <stddef.h>

#include "rte/kafka.h"

#define CW_SOURCE_CRON "member-cron"
#define CW_SOURCE_LIKELY "digital-twin"

/* cw_consume_cron - batch handler of member-cron-events; consumer thread */
int cw_consume_cron(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, void *arg, char *reason,
                    size_t reasonlen);

/* cw_consume_likely - batch handler of app_usage_likely; consumer thread */
int cw_consume_likely(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, void *arg,
                      char *reason, size_t reasonlen);

#endif
