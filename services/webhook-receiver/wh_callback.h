/*
 * wh_callback.h - the batch-completion callback document and the envelopes
 * it travels in on rte.stedi.batch-results.
 *
 * Callback (the source design's contract, as tools/stedi-sim sends it):
 *   {batch_id, status, completed_at?, results:[{check_id, member_id,
 *    trading_partner_id, status: completed|error,
 *    eligibility{...} (completed) | error{code, description?} (error)}]}
 * Validation goes field by field and reports the first problem as
 * "results[3].member_id: missing" - the text of the HTTP 400.
 *
 * Envelope (one Kafka message, key = batch id, JSON):
 *   {"v":1,"kind":"callback","id":<content id>,"part":i,"parts":n,
 *    "total":N,"batch_id","status","completed_at","received_at_ms",
 *    "results":[...]}
 * Each result travels as the exact bytes the sender signed. A callback is
 * cut into parts of at most chunk_bytes of results so every
 * message stays below Kafka's default 1 MB message limit (a 10,000-result
 * callback is ~3 MB). Parts share the key, so they land on one partition
 * in order and the consumer sees the last part after all the others.
 * The content id is a hash of the body: the same callback delivered twice
 * (a sender retry with a new webhook-id) has the same id, and the consumer
 * applies it once.
 *
 * Thread safety: pure functions over caller-owned objects.
 */
#ifndef WH_CALLBACK_H
#define WH_CALLBACK_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define WH_CONTENT_ID_LEN 32 /* hex chars */

typedef struct wh_callback {
    cJSON *doc;           /* owned */
    const char *batch_id; /* borrowed from doc */
    const char *status;
    const char *completed_at; /* may be NULL */
    const cJSON *results;
    int nresults;
    const char *body; /* the body parsed (borrowed: keep it until the envelopes are built) */
    size_t body_len;
} wh_callback;

/*
 * wh_callback_parse - parse and validate a callback body with at most
 * max_results results. 0 with out filled (free with wh_callback_free), or
 * -1 with err naming the field.
 */
int wh_callback_parse(const char *body, size_t len, int max_results, wh_callback *out, char *err,
                      size_t errlen);

/* wh_callback_free - release (safe on a zeroed struct) */
void wh_callback_free(wh_callback *cb);

/* wh_content_id - hex id (WH_CONTENT_ID_LEN + 1 bytes) of a body */
void wh_content_id(const char *body, size_t len, char out[WH_CONTENT_ID_LEN + 1]);

/* The envelopes of one callback. */
typedef struct wh_envelopes {
    int n;
    char **msg;  /* malloc'd texts */
    size_t *len; /* their lengths */
} wh_envelopes;

/*
 * wh_callback_envelopes - cut cb into envelopes of at most chunk_bytes of
 * results each (a single larger result gets a part of its own). 0 or -1 on
 * out of memory.
 */
int wh_callback_envelopes(const wh_callback *cb, const char *content_id, int64_t received_ms,
                          size_t chunk_bytes, wh_envelopes *out);

/* wh_envelopes_free - release */
void wh_envelopes_free(wh_envelopes *e);

#endif
