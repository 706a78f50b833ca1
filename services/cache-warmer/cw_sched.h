/*
 * cw_sched.h - ScheduleWarming: named cron schedules that warm the members
 * a MemberQuery selects, fired once cluster-wide.
 *
 * A schedule (name, cron expression in a time zone, member query,
 * strategy, priority, enabled) is validated here (INVALID_ARGUMENT naming
 * the field), then stored in Redis as the request itself; any replica's
 * flush timer fires it. The query is the subset of MemberQuery the member
 * directory answers today: sponsor_ids, population_ids,
 * required_feature_flags, has_rte_enabled, eligibility_checked_after/
 * before, last_active_after/before, account_statuses,
 * exclude_mock_accounts, limit. Any other field that is set is refused,
 * named ("member_query.demographics_filter: not answered by the member
 * directory"), rather than ignored.
 *
 * Once per fire, cluster-wide: a schedule's hash holds its horizon (the
 * newest fire instant taken). A replica that finds the next fire after the
 * horizon due takes it with a compare-and-set of the horizon (one Lua
 * script; only one replica's read of the horizon can still be current) and
 * holds a lease on the fire (Redis time, warm.lease, renewed after each
 * chunk of 1,000; a runner whose lease was taken over stops) while it resolves the
 * members in the directory and sends them through cw_decide, the path of
 * WarmCache and the Kafka consumers, in chunks of 1,000, with event ids
 * "sched/<name>/<fire ms>/<member>". A runner that dies leaves the lease to
 * expire; the next replica to look resumes the same fire from the start,
 * and the warm queue's event-id dedupe drops what was already queued, so
 * no member is queued twice for one fire. When several fires are due (the
 * cluster was down), only the newest runs; the older ones are counted as
 * missed. Schedules never go to the real-time API: URGENT is refused.
 *
 * Redis (P = warm.prefix): P:sched:names (set of names),
 * P:sched:<name> (hash: req, horizon, fire, owner, lease_until, created_ms,
 * updated_ms, last_fire, last_members), P:sched:<name>:fires (list of the
 * newest 100 fires done: "<fire ms> <owner> <members>").
 *
 * Thread safety: cw_sched_tick runs on the flush timer's thread, the gRPC
 * handler on gRPC worker threads; both use their thread's Redis connection.
 */
#ifndef CW_SCHED_H
#define CW_SCHED_H

#include "rte/grpc_server.h"

/* cw_sched_schedule_warming - the ScheduleWarming handler; gRPC worker threads */
void cw_sched_schedule_warming(rte_grpc_call *call, const ProtobufCMessage *m, void *arg);

/* cw_sched_tick - fire every due schedule this replica can take; the flush timer's thread */
void cw_sched_tick(void);

#endif
