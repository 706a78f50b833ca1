/*
 * crypto.c - HMAC-SHA256, constant-time comparison, encodings, member keys.
 *
 * HMAC runs on OpenSSL's EVP_MAC, comparison CRYPTO_memcmp, randomness
 * RAND_bytes. Hex and base64 are done here rather than with
 * EVP_EncodeBlock/EVP_DecodeBlock, whose decoder counts '=' padding as
 * output bytes and accepts whitespace.
 *
 * Decoders are strict and return -1 for anything malformed: hex must have
 * an even number of [0-9a-fA-F]; base64 must be the standard alphabet with
 * padding (length a multiple of 4, at most two '=' and only at the end, no
 * whitespace, unused bits of the last group zero). Both return -1 when the
 * output buffer is too small rather than truncating.
 *
 * rte_crypto_member_key = lower-case hex of the first 16 bytes of
 * HMAC-SHA256(secret, member_id). It and rte_uuid4 cannot report errors
 * through their signatures: an OpenSSL failure there is treated as a broken
 * process (rte_panic), never as an empty key or a predictable UUID.
 *
 * HMAC keeps one EVP_MAC_CTX per thread, keyed with the last key that
 * thread used (a copy of up to CACHED_KEY_MAX bytes is kept to recognise
 * it). The gateway hashes every request's member id under the same secret,
 * and OpenSSL's one-shot HMAC() fetched the algorithm and built a context
 * each time (1.2 us a member key); with the same key again the context is
 * only re-inited (EVP_MAC_init with a NULL key restores the keyed state:
 * 0.25 us), which measured faster than duplicating a keyed template
 * (EVP_MAC_CTX_dup allocates: 0.5 us). Another key re-keys the context, so
 * callers that alternate keys (the webhook receiver's signing secrets) stay
 * correct and pay 0.45 us; a longer key is re-keyed on every call. Figures
 * from tests/programs/crypto-bench. The context and key copy are freed by a
 * pthread key destructor when the thread exits; the main thread's live
 * until the process ends.
 *
 * Member keys are also remembered per thread: MEMO_SLOTS direct-mapped
 * slots of (member id, key) computed under the key the context holds,
 * wiped whenever the context is re-keyed. A gateway loop hashes the same
 * hot members again and again (the HMAC was 2.9 % of a loop's time serving
 * one member); a remembered key costs an FNV-1a of the id and a compare.
 * The memo holds member ids and keys in memory, like the secret copy next
 * to it, and is wiped when freed.
 *
 * rte_crypto_webhook_key turns a configured signing secret into the HMAC
 * key, the one rule every sender and receiver of signed callbacks in the
 * suite shares. The Standard Webhooks specification serializes a symmetric
 * secret as "whsec_" + base64 of 24 to 64 random bytes, and its official
 * libraries sign with the decoded bytes: so a "whsec_" secret is decoded
 * (padding optional, as those libraries accept; anything else malformed is
 * an error for the caller to make fatal at start-up). A secret without the
 * prefix keeps the suite's older meaning, its text as the key (the official
 * libraries would base64-decode it too; ours predate them and stay
 * readable).
 *
 * All functions may be called on any thread and take no locks.
 * rte_hmac_sha256 (so rte_crypto_member_key) and rte_uuid4 keep per-thread
 * state: they are thread-safe but not async-signal-safe. This module does
 * not manage secrets (the caller reads them from configuration) and does no
 * encryption.
 */
#include "rte/crypto.h"

#include "rte/log.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

static const char hex_digits[] = "0123456789abcdef";
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define CACHED_KEY_MAX 128 /* longer HMAC keys are re-keyed on every call */

#define MEMO_SLOTS 64  /* member keys remembered per thread */
#define MEMO_ID_MAX 64 /* longer member ids are always hashed */

/* One remembered member key: HMAC of id[0..idlen) under the state's key; idlen 0 = empty. */
struct memo_slot {
    unsigned char idlen;
    char id[MEMO_ID_MAX];
    char key[RTE_MEMBER_KEY_LEN + 1];
};

/*
 * One thread's HMAC-SHA256 context and the key it holds (see the top), and
 * the member keys last computed under that key (allocated on the first
 * rte_crypto_member_key, emptied whenever the context is re-keyed).
 */
struct hmac_state {
    EVP_MAC_CTX *ctx;
    int keyed; /* ctx holds key[0..keylen) */
    size_t keylen;
    unsigned char key[CACHED_KEY_MAX];
    struct memo_slot *memo; /* MEMO_SLOTS, direct-mapped by a hash of the id */
};

static _Thread_local struct hmac_state hmac_tls;
static pthread_key_t hmac_exit_key;
static int hmac_exit_key_ok;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

/* At thread exit (pthread key destructor): free the context, wipe the key copy. */
static void hmac_state_free(void *p)
{
    struct hmac_state *h = p;

    EVP_MAC_CTX_free(h->ctx);
    if (h->memo) {
        OPENSSL_cleanse(h->memo, MEMO_SLOTS * sizeof *h->memo);
        free(h->memo);
    }
    OPENSSL_cleanse(h, sizeof *h);
}

static void hmac_make_exit_key(void)
{
    hmac_exit_key_ok = pthread_key_create(&hmac_exit_key, hmac_state_free) == 0;
}

/* This thread's state with a context, created on first use; NULL if OpenSSL or pthread refused */
static struct hmac_state *hmac_state_get(void)
{
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    struct hmac_state *h = &hmac_tls;
    EVP_MAC *mac;

    if (h->ctx)
        return h;
    pthread_once(&hmac_once, hmac_make_exit_key);
    if (!hmac_exit_key_ok)
        return NULL;
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    h->ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (h->ctx && EVP_MAC_CTX_set_params(h->ctx, params) &&
        pthread_setspecific(hmac_exit_key, h) == 0)
        return h;
    EVP_MAC_CTX_free(h->ctx);
    h->ctx = NULL;
    return NULL;
}

/* Start a MAC under key: re-init if the context already holds it, else re-key. */
static int hmac_start(struct hmac_state *h, const unsigned char *key, size_t keylen)
{
    if (h->keyed && h->keylen == keylen && CRYPTO_memcmp(h->key, key, keylen) == 0)
        return EVP_MAC_init(h->ctx, NULL, 0, NULL) ? 0 : -1;
    h->keyed = 0;
    if (h->memo)
        OPENSSL_cleanse(h->memo, MEMO_SLOTS * sizeof *h->memo); /* keys under the old key */
    if (!EVP_MAC_init(h->ctx, key, keylen, NULL))
        return -1;
    if (keylen <= sizeof h->key) {
        memcpy(h->key, key, keylen);
        h->keylen = keylen;
        h->keyed = 1;
    }
    return 0;
}

/*
 * The memo slot for member id under secret: NULL when the id cannot be
 * remembered (empty or longer than MEMO_ID_MAX), when this thread's context
 * does not hold this secret (its memo holds keys under another), or when
 * the memo cannot be allocated. The caller compares the slot's id.
 */
static struct memo_slot *memo_slot_for(const char *secret, size_t slen, const char *id,
                                       size_t idlen)
{
    struct hmac_state *h = &hmac_tls;
    uint32_t hash = 2166136261u; /* FNV-1a */

    if (idlen == 0 || idlen > MEMO_ID_MAX || !h->keyed || h->keylen != slen ||
        CRYPTO_memcmp(h->key, secret, slen) != 0)
        return NULL;
    if (!h->memo && !(h->memo = calloc(MEMO_SLOTS, sizeof *h->memo)))
        return NULL;
    for (size_t i = 0; i < idlen; i++)
        hash = (hash ^ (unsigned char)id[i]) * 16777619u;
    return &h->memo[hash % MEMO_SLOTS];
}

/* rte_hmac_sha256 - out[32] = HMAC-SHA256(key, msg); 0 or -1; any thread, per-thread context */
int rte_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                    uint8_t out[RTE_SHA256_LEN])
{
    /* a NULL key would mean "keep the current key" to EVP_MAC_init */
    static const unsigned char empty[1];
    struct hmac_state *h;
    size_t outlen = 0;

    if (keylen > INT_MAX || (!key && keylen) || (!msg && msglen) || !out)
        return -1;
    h = hmac_state_get();
    if (!h || hmac_start(h, key ? key : empty, keylen) < 0)
        return -1;
    if (!EVP_MAC_update(h->ctx, msg ? msg : empty, msglen) ||
        !EVP_MAC_final(h->ctx, out, &outlen, RTE_SHA256_LEN) || outlen != RTE_SHA256_LEN)
        return -1;
    return 0;
}

/* rte_ct_equal - constant-time equality of two buffers of length n; 1 if equal */
int rte_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return 1;
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* rte_hex_encode - lower-case hex of n bytes into out (2n+1 bytes) */
void rte_hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* rte_hex_digit - pure */
int rte_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* rte_hex_decode - hex text to bytes; returns byte count or -1 if malformed/too long */
int rte_hex_decode(const char *hex, uint8_t *out, size_t outlen)
{
    size_t len = hex ? strlen(hex) : 0;

    if (!hex || len % 2 || len / 2 > outlen || len / 2 > INT_MAX)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = rte_hex_digit(hex[2 * i]), lo = rte_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(len / 2);
}

/* n bytes as base64 in the given alphabet, '=' padded when pad; 0 and "" when out is too small */
static size_t b64_encode(const char *alphabet, int pad, const uint8_t *in, size_t n, char *out,
                         size_t outlen)
{
    size_t need = pad ? (n + 2) / 3 * 4 : n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0), o = 0;

    if (n > (SIZE_MAX - 1) / 4 * 3 - 2 || outlen < need + 1) {
        if (out && outlen)
            out[0] = '\0';
        return 0;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t rest = n - i;
        if (rest > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rest > 2)
            v |= in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        if (rest > 1)
            out[o++] = alphabet[v >> 6 & 63];
        else if (pad)
            out[o++] = '=';
        if (rest > 2)
            out[o++] = alphabet[v & 63];
        else if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/*
 * rte_base64_encode - standard base64 with padding into out (4*ceil(n/3)+1
 * bytes); returns the text length, or 0 (and "" when outlen > 0) if out is
 * too small
 */
size_t rte_base64_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    return b64_encode(b64_alphabet, 1, in, n, out, outlen);
}

/*
 * rte_base64url_encode - base64url without padding (RFC 4648 section 5, as
 * JWS and JWK use it) into out (4*ceil(n/3)+1 bytes is always enough);
 * returns the text length, or 0 (and "" when outlen > 0) if out is too small
 */
size_t rte_base64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    return b64_encode(url, 0, in, n, out, outlen);
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

/* rte_base64_decode - standard padded base64 to bytes; byte count or -1 if malformed/too long */
int rte_base64_decode(const char *in, uint8_t *out, size_t outlen)
{
    size_t len = in ? strlen(in) : 0, o = 0;

    if (!in || len % 4 || len / 4 * 3 > INT_MAX)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=') : 0;
        int v[4];
        uint32_t bits = 0;

        if (pad == 1 && in[i + 2] == '=')
            return -1; /* "x=y=" style */
        for (int k = 0; k < 4 - pad; k++) {
            v[k] = b64_value(in[i + k]);
            if (v[k] < 0)
                return -1;
            bits |= (uint32_t)v[k] << (18 - 6 * k);
        }
        if ((pad == 2 && (bits & 0xffff)) || (pad == 1 && (bits & 0xff)))
            return -1; /* non-zero unused bits: not canonical */
        if (o + 3 - (size_t)pad > outlen)
            return -1;
        out[o++] = (uint8_t)(bits >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(bits >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)bits;
    }
    return (int)o;
}

#define WEBHOOK_STD_MIN 24 /* Standard Webhooks: at least 192 bits ... */
#define WEBHOOK_STD_MAX 64 /* ... and at most 512 */

/* rte_crypto_webhook_key - the HMAC key of a webhook secret; length or -1 + err; pure */
int rte_crypto_webhook_key(const char *secret, uint8_t key[RTE_WEBHOOK_KEY_MAX], char *err,
                           size_t errlen)
{
    static const char prefix[] = RTE_WEBHOOK_SECRET_PREFIX;
    const size_t plen = sizeof prefix - 1;
    char padded[(WEBHOOK_STD_MAX + 2) / 3 * 4 + 1]; /* 88 characters + NUL */
    uint8_t raw[(sizeof padded - 1) / 4 * 3];       /* room to measure a key too long */
    size_t n = secret ? strlen(secret) : 0;
    int rc = -1;

    if (n == 0) {
        snprintf(err, errlen, "empty secret");
        return -1;
    }
    if (strncmp(secret, prefix, plen) != 0) {
        if (n > RTE_WEBHOOK_KEY_MAX) {
            snprintf(err, errlen, "secret longer than %d bytes", RTE_WEBHOOK_KEY_MAX);
            return -1;
        }
        memcpy(key, secret, n);
        return (int)n;
    }
    const char *b64 = secret + plen;
    size_t blen = n - plen;
    if (blen >= sizeof padded) {
        snprintf(err, errlen,
                 "the base64 after '%s' is %zu characters; a Standard Webhooks secret of 24 to 64 "
                 "bytes has at most %zu",
                 prefix, blen, sizeof padded - 1);
        return -1;
    }
    /* unpadded base64 gets its '=' back; a lone extra character cannot be base64 */
    memcpy(padded, b64, blen);
    while (blen % 4 != 0 && blen % 4 != 1 && memchr(b64, '=', n - plen) == NULL)
        padded[blen++] = '=';
    padded[blen] = '\0';
    int len = blen % 4 == 0 ? rte_base64_decode(padded, raw, sizeof raw) : -1;
    if (len < 0)
        snprintf(err, errlen,
                 "the text after '%s' is not base64 (Standard Webhooks secrets are '%s' + the "
                 "standard base64 of 24 to 64 random bytes)",
                 prefix, prefix);
    else if (len < WEBHOOK_STD_MIN || len > WEBHOOK_STD_MAX)
        snprintf(err, errlen,
                 "the base64 after '%s' decodes to %d bytes; Standard Webhooks secrets are 24 to "
                 "64 bytes",
                 prefix, len);
    else {
        memcpy(key, raw, (size_t)len);
        rc = len;
    }
    OPENSSL_cleanse(padded, sizeof padded);
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

/* rte_crypto_member_key - keyed hash of a member id into out (33 bytes, hex + NUL) */
void rte_crypto_member_key(const char *secret, const char *member_id,
                           char out[RTE_MEMBER_KEY_LEN + 1])
{
    uint8_t mac[RTE_SHA256_LEN];
    struct memo_slot *slot;
    size_t slen, idlen;

    if (!secret)
        secret = "";
    if (!member_id)
        member_id = "";
    slen = strlen(secret);
    idlen = strlen(member_id);
    slot = memo_slot_for(secret, slen, member_id, idlen);
    if (slot && slot->idlen == idlen && memcmp(slot->id, member_id, idlen) == 0) {
        memcpy(out, slot->key, RTE_MEMBER_KEY_LEN + 1);
        return;
    }
    if (rte_hmac_sha256(secret, slen, member_id, idlen, mac) < 0)
        rte_panic("crypto: HMAC-SHA256 failed computing a member key");
    rte_hex_encode(mac, RTE_MEMBER_KEY_LEN / 2, out);
    OPENSSL_cleanse(mac, sizeof(mac));
    /* no slot before: the context may hold this secret only now (unless it is too long to keep) */
    if (!slot)
        slot = memo_slot_for(secret, slen, member_id, idlen);
    if (slot) {
        slot->idlen = (unsigned char)idlen;
        memcpy(slot->id, member_id, idlen);
        memcpy(slot->key, out, RTE_MEMBER_KEY_LEN + 1);
    }
}

/* rte_random_bytes - n cryptographically random bytes; 0 or -1 */
int rte_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1)
            return -1;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* rte_uuid4 - random RFC 4122 UUID text into out (37 bytes) */
/* Fork generation: a child process must not reuse its parent's UUID pool. */
static unsigned fork_gen = 1;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    fork_gen++;
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

void rte_uuid4(char out[37])
{
    /* Random bytes come from OpenSSL in 4 KiB helpings per thread (one
     * RAND_bytes per 256 UUIDs instead of one each: request ids and event ids
     * are made on every request). A fork re-draws, so a child never repeats
     * its parent's ids. */
    static _Thread_local uint8_t pool[4096];
    static _Thread_local size_t used = sizeof pool;
    static _Thread_local unsigned gen;
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    int k = 0;

    pthread_once(&fork_once, watch_forks);
    if (used + sizeof b > sizeof pool || gen != __atomic_load_n(&fork_gen, __ATOMIC_RELAXED)) {
        if (rte_random_bytes(pool, sizeof pool) < 0)
            rte_panic("crypto: RAND_bytes failed generating a UUID");
        used = 0;
        gen = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
    }
    memcpy(b, pool + used, sizeof b);
    memset(pool + used, 0, sizeof b); /* never hand out the same bytes twice */
    used += sizeof b;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10xx */
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[k++] = '-';
        out[k++] = hex[b[i] >> 4];
        out[k++] = hex[b[i] & 15];
    }
    out[k] = '\0';
}

/* rte_sha1_hex - reentrant; an OpenSSL failure is a broken process (rte_panic) */
void rte_sha1_hex(const void *data, size_t n, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!EVP_Digest(data, n, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        rte_panic("crypto: SHA-1 failed");
    rte_hex_encode(md, mdlen, out);
}
