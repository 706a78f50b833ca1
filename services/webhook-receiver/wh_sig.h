/*
 * wh_sig.h - verification of signed batch callbacks.
 *
 * Two schemes, each with any of the configured keys (rotation); a key is
 * what rte_crypto_webhook_key made of a wh.secrets entry (a Standard
 * Webhooks "whsec_<base64>" secret decoded, any other secret its text):
 *   standard_webhooks  webhook-id, webhook-timestamp (integer Unix seconds)
 *                      and webhook-signature: space-separated entries, each
 *                      "v1,<base64 of HMAC-SHA256(key, id.timestamp.body)>";
 *                      one matching v1 entry suffices, others (v1a, v2, a
 *                      rotated-out key) are passed over. The timestamp must
 *                      lie within the tolerance of the real wall clock, in
 *                      the past or the future. This is exactly what the
 *                      official Standard Webhooks libraries sign and check.
 *   x_webhook_signature  X-Webhook-Signature: lower- or upper-case hex
 *                      HMAC-SHA256(key, body), optionally after "sha256="
 *                      in either case.
 * When a request carries webhook-signature the standard scheme decides (it
 * is the one with replay protection); otherwise X-Webhook-Signature.
 * Comparisons are constant-time and every key is tried, so timing tells
 * nothing about which key or how much of a signature matched. Results
 * name only the reason and the header, never a secret.
 *
 * Thread safety: pure; the caller owns the scratch buffer.
 */
#ifndef WH_SIG_H
#define WH_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "wh.h"

enum wh_sig_result {
    WH_SIG_OK = 0,
    WH_SIG_MISSING,   /* no signature header at all */
    WH_SIG_MALFORMED, /* headers present but unreadable */
    WH_SIG_MISMATCH,  /* no secret produces the signature */
    WH_SIG_EXPIRED,   /* signature good, timestamp outside the tolerance */
};

typedef struct wh_sig_input {
    const char *body;
    size_t body_len;
    const char *x_signature; /* X-Webhook-Signature or NULL */
    const char *wh_id;       /* webhook-id or NULL */
    const char *wh_timestamp;
    const char *wh_signature;
} wh_sig_input;

/* A growable buffer the caller keeps between calls (no allocation per request). */
typedef struct wh_buf {
    char *p;
    size_t cap;
} wh_buf;

/*
 * wh_sig_verify - check in against secrets at now_s (real Unix seconds).
 * *scheme receives "standard_webhooks", "x_webhook_signature" or "none"
 * (static). replay_id (idlen bytes) receives the delivery's identity for
 * replay detection: "wh:<webhook-id>" or "xs:<signature hex>". Unless the
 * result is WH_SIG_OK, *why receives a static message for the sender that
 * names the header at fault ("webhook-timestamp: expected integer Unix
 * seconds"), never a secret; NULL on success.
 */
enum wh_sig_result wh_sig_verify(const wh_sig_input *in, const wh_secrets *secrets, int64_t now_s,
                                 int64_t tolerance_s, wh_buf *scratch, const char **scheme,
                                 char *replay_id, size_t idlen, const char **why);

/* wh_sig_reason - "missing", "malformed", "mismatch", "expired", "ok" */
const char *wh_sig_reason(enum wh_sig_result r);

/* wh_buf_free - release a scratch buffer */
void wh_buf_free(wh_buf *b);

#endif
