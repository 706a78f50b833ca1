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

#include "rte/crypto.h"

#define MAX_SIGS 8

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

/* 1 if mac equals HMAC(secret, msg) for any secret; every secret is always tried */
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
                                     size_t idlen)
{
    const char *h = in->x_signature;
    char lower[2 * RTE_SHA256_LEN + 1];
    uint8_t mac[RTE_SHA256_LEN];

    while (*h == ' ')
        h++;
    if (strncmp(h, "sha256=", 7) == 0)
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
    if (!any_secret_matches(s, in->body, in->body_len, mac))
        return WH_SIG_MISMATCH;
    snprintf(replay_id, idlen, "xs:%s", lower);
    return WH_SIG_OK;
}

/* parse "v1,<b64> v1,<b64> ..." into macs; count of v1 entries, -1 if unreadable */
static int parse_sig_list(const char *list, uint8_t macs[MAX_SIGS][RTE_SHA256_LEN])
{
    int n = 0, seen = 0;
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            break;
        seen++;
        if (len > 3 && strncmp(p, "v1,", 3) == 0 && len - 3 < 64 && n < MAX_SIGS) {
            char b64[64];
            memcpy(b64, p + 3, len - 3);
            b64[len - 3] = '\0';
            uint8_t tmp[48];
            if (rte_base64_decode(b64, tmp, sizeof tmp) == RTE_SHA256_LEN) {
                memcpy(macs[n], tmp, RTE_SHA256_LEN);
                n++;
            }
        }
        p += len;
    }
    return seen > 0 && n == 0 ? -1 : n;
}

static int parse_ts(const char *s, int64_t *out)
{
    char *end;
    if (s == NULL || *s == '\0' || strlen(s) > 12)
        return -1;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    *out = strtoll(s, &end, 10);
    return 0;
}

static enum wh_sig_result verify_standard(const wh_sig_input *in, const wh_secrets *s,
                                          int64_t now_s, int64_t tolerance_s, wh_buf *scratch,
                                          char *replay_id, size_t idlen)
{
    uint8_t macs[MAX_SIGS][RTE_SHA256_LEN];
    int64_t ts;
    if (in->wh_id == NULL || in->wh_timestamp == NULL)
        return WH_SIG_MALFORMED;
    size_t idl = strlen(in->wh_id), tsl = strlen(in->wh_timestamp);
    if (idl == 0 || idl > 256 || parse_ts(in->wh_timestamp, &ts) != 0)
        return WH_SIG_MALFORMED;
    int nsig = parse_sig_list(in->wh_signature, macs);
    if (nsig <= 0)
        return WH_SIG_MALFORMED;
    size_t len = idl + 1 + tsl + 1 + in->body_len;
    if (buf_reserve(scratch, len) != 0)
        return WH_SIG_MALFORMED;
    char *p = scratch->p;
    memcpy(p, in->wh_id, idl);
    p[idl] = '.';
    memcpy(p + idl + 1, in->wh_timestamp, tsl);
    p[idl + 1 + tsl] = '.';
    if (in->body_len > 0)
        memcpy(p + idl + tsl + 2, in->body, in->body_len);

    int match = 0;
    for (int i = 0; i < s->n; i++) {
        uint8_t want[RTE_SHA256_LEN];
        rte_hmac_sha256(s->key[i], s->len[i], scratch->p, len, want);
        for (int k = 0; k < nsig; k++)
            match |= rte_ct_equal(want, macs[k], RTE_SHA256_LEN);
    }
    if (!match)
        return WH_SIG_MISMATCH;
    if (ts < now_s - tolerance_s || ts > now_s + tolerance_s)
        return WH_SIG_EXPIRED;
    snprintf(replay_id, idlen, "wh:%s", in->wh_id);
    return WH_SIG_OK;
}

/* wh_sig_verify - pure; any thread with its own scratch */
enum wh_sig_result wh_sig_verify(const wh_sig_input *in, const wh_secrets *secrets, int64_t now_s,
                                 int64_t tolerance_s, wh_buf *scratch, const char **scheme,
                                 char *replay_id, size_t idlen)
{
    if (in->wh_signature != NULL) {
        *scheme = "standard_webhooks";
        return verify_standard(in, secrets, now_s, tolerance_s, scratch, replay_id, idlen);
    }
    if (in->x_signature != NULL) {
        *scheme = "x_webhook_signature";
        return verify_hex(in, secrets, replay_id, idlen);
    }
    *scheme = in->wh_id != NULL ? "standard_webhooks" : "none";
    return WH_SIG_MISSING;
}
