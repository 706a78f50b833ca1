/*
 * wh_http.h - the callback endpoint and the admin routes of webhook-receiver.
 *
 * POST /api/v1/batch-callback (public port): the h2o loop thread only copies
 * the signature headers, defers the request and queues it; one of
 * wh.workers threads verifies the signature (wh_sig.h), validates the body
 * (wh_callback.h), drops a replayed delivery (Redis SET NX on its id, 200),
 * hands the envelopes to the producer for rte.stedi.batch-results and
 * takes the next request; the 202 is sent when the broker has acknowledged
 * every part (acks=all), from the producer's delivery reports. So a slow
 * broker holds neither the loop nor a worker. Answers: 202 accepted, 200
 * duplicate, 400 invalid (names the field), 401 signature (no hint about
 * secrets), 413 too large, 503 Kafka could not take it in time or the queue
 * is full (with Retry-After).
 *
 * If Redis is unreachable the replay check is skipped (logged and counted)
 * rather than refusing the callback: the consumer applies a callback once
 * by its content id, so a replay costs only work, while refusing would
 * delay results the sender already has.
 *
 * Admin port: POST /admin/batches registers a Stedi batch for polling
 * ({batch_id, source, items, submitted_at?}); GET /admin/batches/{id} shows
 * its registry record. Both do one short Redis call on the loop thread.
 */
#ifndef WH_HTTP_H
#define WH_HTTP_H

#include <stddef.h>

#include "rte/http_server.h"

/* wh_http_routes - the public route table (max_body is set by wh_http_start); static */
rte_http_route *wh_http_routes(void);

/* wh_http_admin_routes - the extra admin routes; static */
const rte_http_route *wh_http_admin_routes(void);

/* wh_http_start - size the routes from WH and start the workers; init thread */
int wh_http_start(char *err, size_t errlen);

/* wh_http_stop - answer what is queued, then join the workers; shutdown thread */
void wh_http_stop(void);

#endif
