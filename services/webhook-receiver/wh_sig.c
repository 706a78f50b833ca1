/*
 * wh_sig.c - verification of signed batch callbacks (wh_sig.h).
 *
 * The standard scheme signs "id.timestamp.body"; HMAC over the three parts
 * needs them contiguous, so they are copied into the caller's scratch
 * buffer, which grows to the largest callback seen and is then reused.
 * The signature is checked before the timestamp so that an unsigned request
 * learns nothing, not even whether its timestamp would have passed.
 */
#include "wh_sig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rte/crypto.h"

/* wh_sig_reason - static names for metrics and logs */
const char *wh_sig_reason(enum wh_sig_result r)
{
    switch (r) {
    case WH_SIG_OK:
        return "ok";
    case WH_SIG_MISSING:
        return "missing";
    case WH_SIG_MALFORMED:
        return "malformed";
    case WH_SIG_MISMATCH:
        return "mismatch";
    case WH_SIG_EXPIRED:
        return "expired";
    }
    return "unknown";
}

/* wh_buf_free - release */
void wh_buf_free(wh_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

static int buf_reserve(wh_buf *b, size_t n)
{
    if (b->cap >= n)
        return 0;
    char *p = realloc(b->p, n);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = n;
    return 0;
}

/* 1 if mac equals HMAC(key, msg) for any key; every key is always tried */
static int any_secret_matches(const wh_secrets *s, const void *msg, size_t len, const uint8_t *mac)
{
    int match = 0;
    for (int i = 0; i < s->n; i++) {
        uint8_t want[RTE_SHA256_LEN];
        rte_hmac_sha256(s->key[i], s->len[i], msg, len, want);
        match |= rte_ct_equal(want, mac, RTE_SHA256_LEN);
    }
    return match;
}

static enum wh_sig_result verify_hex(const wh_sig_input *in, const wh_secrets *s, char *replay_id,
                                     size_t idlen, const char **why)
{
    const char *h = in->x_signature;
    char lower[2 * RTE_SHA256_LEN + 1];
    uint8_t mac[RTE_SHA256_LEN];

    *why = "X-Webhook-Signature: expected 64 hex digits of HMAC-SHA256, optionally after sha256=";
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "sha256=", 7) == 0)
        h += 7;
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    if (n != 2 * RTE_SHA256_LEN)
        return WH_SIG_MALFORMED;
    for (size_t i = 0; i < n; i++)
        lower[i] = (h[i] >= 'A' && h[i] <= 'F') ? (char)(h[i] - 'A' + 'a') : h[i];
    lower[n] = '\0';
    if (rte_hex_decode(lower, mac, sizeof mac) != RTE_SHA256_LEN)
        return WH_SIG_MALFORMED;
    *why = "invalid signature";
    if (!any_secret_matches(s, in->body, in->body_len, mac))
        return WH_SIG_MISMATCH;
    *why = NULL;
    snprintf(replay_id, idlen, "xs:%s", lower);
    return WH_SIG_OK;
}

/*
 * the next "v1,<base64 of 32 bytes>" entry of the space-separated list at
 * *p into mac, advancing *p; entries of other versions (v1a, v2 ...) and
 * unreadable ones are passed over; 0 when the list is done
 */
static int next_v1(const char **p, uint8_t mac[RTE_SHA256_LEN])
{
    while (**p != '\0') {
        while (**p == ' ')
            (*p)++;
        size_t len = strcspn(*p, " ");
        const char *e = *p;
        *p += len;
        /* 32 bytes are 44 base64 characters with their one '=' */
        if (len != 3 + 44 || strncmp(e, "v1,", 3) != 0)
            continue;
        char b64[45];
        uint8_t tmp[RTE_SHA256_LEN + 1];
        memcpy(b64, e + 3, 44);
        b64[44] = '\0';
        if (rte_base64_decode(b64, tmp, sizeof tmp) == RTE_SHA256_LEN) {
            memcpy(mac, tmp, RTE_SHA256_LEN);
            return 1;
        }
    }
    return 0;
}

/* 0 if s is 1 to 12 digits (Unix seconds, up to the year 33658), else -1 */
static int parse_ts(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 12 || strspn(s, "0123456789") != n)
        return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

static enum wh_sig_result verify_standard(const wh_sig_input *in, const wh_secrets *s,
                                          int64_t now_s, int64_t tolerance_s, wh_buf *scratch,
                                          char *replay_id, size_t idlen, const char **why)
{
    uint8_t want[WH_MAX_SECRETS][RTE_SHA256_LEN], mac[RTE_SHA256_LEN];
    int64_t ts;
    if (in->wh_id == NULL || in->wh_id[0] == '\0') {
        *why = "webhook-id: missing (Standard Webhooks needs webhook-id, webhook-timestamp and "
               "webhook-signature)";
        return WH_SIG_MALFORMED;
    }
    size_t idl = strlen(in->wh_id);
    if (idl > 256) {
        *why = "webhook-id: longer than 256 characters";
        return WH_SIG_MALFORMED;
    }
    if (in->wh_timestamp == NULL) {
        *why = "webhook-timestamp: missing";
        return WH_SIG_MALFORMED;
    }
    size_t tsl = strlen(in->wh_timestamp);
    if (parse_ts(in->wh_timestamp, &ts) != 0) {
        *why = "webhook-timestamp: expected integer Unix seconds";
        return WH_SIG_MALFORMED;
    }
    const char *list = in->wh_signature;
    if (!next_v1(&list, mac)) {
        *why = "webhook-signature: no v1,<base64 of a 32-byte HMAC-SHA256> entry";
        return WH_SIG_MALFORMED;
    }
    size_t len = idl + 1 + tsl + 1 + in->body_len;
    if (buf_reserve(scratch, len) != 0) {
        *why = "out of memory";
        return WH_SIG_MALFORMED;
    }
    char *p = scratch->p;
    memcpy(p, in->wh_id, idl);
    p[idl] = '.';
    memcpy(p + idl + 1, in->wh_timestamp, tsl);
    p[idl + 1 + tsl] = '.';
    if (in->body_len > 0)
        memcpy(p + idl + tsl + 2, in->body, in->body_len);

    /* one HMAC per key, then every v1 entry against every key */
    for (int i = 0; i < s->n; i++)
        rte_hmac_sha256(s->key[i], s->len[i], scratch->p, len, want[i]);
    int match = 0;
    list = in->wh_signature;
    while (next_v1(&list, mac))
        for (int i = 0; i < s->n; i++)
            match |= rte_ct_equal(want[i], mac, RTE_SHA256_LEN);
    if (!match) {
        *why = "invalid signature";
        return WH_SIG_MISMATCH;
    }
    if (ts < now_s - tolerance_s || ts > now_s + tolerance_s) {
        *why = "webhook-timestamp is outside the accepted window";
        return WH_SIG_EXPIRED;
    }
    *why = NULL;
    snprintf(replay_id, idlen, "wh:%s", in->wh_id);
    return WH_SIG_OK;
}

/* wh_sig_verify - pure; any thread with its own scratch */
enum wh_sig_result wh_sig_verify(const wh_sig_input *in, const wh_secrets *secrets, int64_t now_s,
                                 int64_t tolerance_s, wh_buf *scratch, const char **scheme,
                                 char *replay_id, size_t idlen, const char **why)
{
    if (in->wh_signature != NULL) {
        *scheme = "standard_webhooks";
        return verify_standard(in, secrets, now_s, tolerance_s, scratch, replay_id, idlen, why);
    }
    if (in->x_signature != NULL) {
        *scheme = "x_webhook_signature";
        return verify_hex(in, secrets, replay_id, idlen, why);
    }
    *scheme = in->wh_id != NULL ? "standard_webhooks" : "none";
    *why = "no signature: send webhook-id, webhook-timestamp and webhook-signature (Standard "
           "Webhooks) or X-Webhook-Signature";
    return WH_SIG_MISSING;
}
