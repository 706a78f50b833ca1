/*
 * br_webhook.h - signed progress callbacks of batch jobs (Standard Webhooks).
 *
 * A job whose resolved notifications carry a callback URL gets a POST per
 * lifecycle event its event_types let through (STARTED, PROGRESS,
 * COMPLETED, FAILED, CANCELLED), body JSON
 *   {"type": "batch.<event lowercased>", "timestamp": RFC 3339,
 *    "data": {"batch_id", "event_type", "status", "client_service_name",
 *             "client_job_id", "total_members", "completed", "failed",
 *             "cache_hits", "cache_misses", "error_code"?, "error_message"?}}
 * signed as the Standard Webhooks specification says: headers webhook-id
 * (stable across retries of one message, so receivers drop duplicates),
 * webhook-timestamp (seconds, at each attempt) and webhook-signature
 * "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", the key being
 * batchrpc.webhook_secret ("whsec_" + base64 decoded, as the
 * specification serializes it; any other text is its own key).
 *
 * Delivery: every message is first stored in Redis (an outbox shared by the
 * replicas), so a message survives the replica that made it. Any replica's
 * webhook timer claims due messages (a claim is a lease: the message is due
 * again after batchrpc.webhook_lease if its claimant dies), POSTs them, and
 * on a 2xx deletes them. DELIVERY_AT_LEAST_ONCE retries any other answer or
 * transport failure with exponential backoff (batchrpc.webhook_backoff
 * doubling, capped at 10 min) up to batchrpc.webhook_attempts, then drops
 * the message (counted, logged); DELIVERY_BEST_EFFORT makes one attempt.
 * Member ids are never in a webhook.
 *
 * Thread safety: br_webhook_enqueue from any thread (the caller's Redis
 * connection); br_webhook_tick on its timer thread.
 */
#ifndef BR_WEBHOOK_H
#define BR_WEBHOOK_H

#include "br.h"

/*
 * br_webhook_enqueue - store j's event type ("COMPLETED", ...) for delivery,
 * if j wants it. STARTED and the final events get the message id
 * "msg_" + br_events_event_id, the same when the event is stored again.
 * 0 stored or nothing to store, -1 Redis refused it (logged).
 */
int br_webhook_enqueue(rte_redis *r, const br_job *j, const char *type);

/* br_webhook_tick - the webhook timer: deliver due messages (arg unused) */
void br_webhook_tick(void *arg);

#endif
