/*
 * br_grpc.h - gRPC rte.v1.BatchEligibilityService (proto/batch_eligibility.proto).
 *
 *   SubmitBatch           validate (INVALID_ARGUMENT naming the field),
 *                         replay a known client_job_id of this caller (same
 *                         batch id, no new job, not rate limited), apply the
 *                         rate limit (RESOURCE_EXHAUSTED with when to
 *                         retry), select the members, plan (br_plan.h) and
 *                         store the job; answers with the resolved options
 *   GetBatchStatus        status, progress and the last 100 member errors
 *   ListBatches           the caller's batches, newest first, paged
 *   CancelBatch           ends the job in Redis: every replica stops at its
 *                         next chunk; a finished batch keeps its state
 *   WatchBatchStatus      the job's updates from the first (or after the
 *                         update whose timestamp the client sends in the
 *                         "rte-resume-after" metadata as <seconds>.<nanos>)
 *                         until COMPLETED or FAILED; keepalives while idle
 *   SubmitBatchStreaming  SubmitBatch, then WatchBatchStatus of that batch
 * A batch of another caller is NOT_FOUND.
 *
 * Access (docs/auth.md, docs/batch-rpc.md): with token checks on, the caller
 * is the token's client id; SubmitBatch, SubmitBatchStreaming and
 * CancelBatch need scope rte:batch:submit (PERMISSION_DENIED otherwise,
 * from the server before the handler), GetBatchStatus, ListBatches and
 * WatchBatchStatus either rte:batch:read or rte:batch:submit.
 */
#ifndef BR_GRPC_H
#define BR_GRPC_H

#include "rte/grpc_server.h"

#define BR_SCOPE_SUBMIT "rte:batch:submit"
#define BR_SCOPE_READ "rte:batch:read"

/* br_grpc_methods - the method table (static storage) */
const rte_grpc_method *br_grpc_methods(void);

/* br_caller - who is calling (the one place that says it); borrowed, valid during the call */
const char *br_caller(const rte_grpc_call *call);

#endif
