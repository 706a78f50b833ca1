/*
 * crypto-bench - time the member key and the timestamp text made per request.
 *
 * Usage: crypto-bench [CALLS]
 *
 * Prints one "name ns_per_call" line per case, CALLS (default 1,000,000)
 * calls each on one thread, then the command that reproduces them:
 *
 *   member_key           rte_crypto_member_key under one secret (the gateway),
 *                        1024 ids in turn: more than the per-thread memo holds
 *   member_key_hot       the same over 16 ids: answered from the memo
 *   member_key_2secrets  the same alternating two secrets (re-keys each call)
 *   ref_hmac_oneshot     OpenSSL's one-shot HMAC() + hex, the code member_key
 *                        used before its per-thread context
 *   ref_hmac_dup         EVP_MAC_CTX_dup of a keyed template per call, the
 *                        alternative to re-initing one context
 *   clock_format         rte_clock_format
 *   ref_clock_gmtime     gmtime_r + snprintf, the code clock_format replaced
 *
 * Before timing, every case is checked against its reference on the same
 * inputs; exits 1 if any differs. Figures are printed, not asserted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "rte/clock.h"
#include "rte/crypto.h"

#define IDS 1024 /* distinct member ids, cycled */

static const char secret[] = "bench-deployment-secret-0123456789";
static const char secret2[] = "bench-rotated-secret-abcdefghij";
static char ids[IDS][16];

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void oneshot_key(const char *key, const char *id, char out[RTE_MEMBER_KEY_LEN + 1])
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    HMAC(EVP_sha256(), key, (int)strlen(key), (const uint8_t *)id, strlen(id), mac, &len);
    rte_hex_encode(mac, RTE_MEMBER_KEY_LEN / 2, out);
}

static void dup_key(const EVP_MAC_CTX *tmpl, const char *id, char out[RTE_MEMBER_KEY_LEN + 1])
{
    uint8_t mac[RTE_SHA256_LEN];
    size_t len = 0;
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(tmpl);

    if (!c || !EVP_MAC_update(c, (const uint8_t *)id, strlen(id)) ||
        !EVP_MAC_final(c, mac, &len, sizeof mac))
        memset(mac, 0, sizeof mac);
    EVP_MAC_CTX_free(c);
    rte_hex_encode(mac, RTE_MEMBER_KEY_LEN / 2, out);
}

static void gmtime_format(int64_t ms, char *buf, size_t len)
{
    int64_t secs = ms / 1000 - (ms % 1000 < 0);
    time_t t = (time_t)secs;
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - secs * 1000));
}

/* A keyed HMAC-SHA256 template for ref_hmac_dup; NULL if OpenSSL refused. */
static EVP_MAC_CTX *keyed_template(const char *key)
{
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;

    EVP_MAC_free(mac);
    if (c && !EVP_MAC_init(c, (const uint8_t *)key, strlen(key), params)) {
        EVP_MAC_CTX_free(c);
        c = NULL;
    }
    return c;
}

static int64_t instant(long i)
{
    return 1795444625123LL + (int64_t)i * 7919; /* 2026-11-23 on, ms varying */
}

/* 0 if every case gives what its reference gives on the first n inputs */
static int check(const EVP_MAC_CTX *tmpl, long n)
{
    char a[RTE_MEMBER_KEY_LEN + 1], b[RTE_MEMBER_KEY_LEN + 1], c[RTE_MEMBER_KEY_LEN + 1];
    char ta[40], tb[64]; /* tb has room for any year: snprintf never truncates */

    for (long i = 0; i < n; i++) {
        const char *key = i % 2 ? secret2 : secret;
        rte_crypto_member_key(key, ids[i % IDS], a);
        oneshot_key(key, ids[i % IDS], b);
        dup_key(tmpl, ids[i % IDS], c);
        if (strcmp(a, b) != 0 || (!(i % 2) && strcmp(c, b) != 0)) {
            fprintf(stderr, "crypto-bench: member key of %s differs: %s, want %s\n", ids[i % IDS],
                    a, b);
            return -1;
        }
        rte_clock_format(instant(i), ta, sizeof ta);
        gmtime_format(instant(i), tb, sizeof tb);
        if (strcmp(ta, tb) != 0) {
            fprintf(stderr, "crypto-bench: %s, want %s\n", ta, tb);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    char out[RTE_MEMBER_KEY_LEN + 1], ts[40], tsref[64];
    unsigned sink = 0;
    double t0;

    if (calls <= 0) {
        fprintf(stderr, "usage: crypto-bench [CALLS]\n");
        return 2;
    }
    for (int i = 0; i < IDS; i++)
        snprintf(ids[i], sizeof ids[i], "M%09d", 100000000 + i * 7);
    EVP_MAC_CTX *tmpl = keyed_template(secret);
    if (!tmpl || check(tmpl, 10000) < 0) {
        fprintf(stderr, "crypto-bench: check failed\n");
        EVP_MAC_CTX_free(tmpl);
        return 1;
    }

    t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        rte_crypto_member_key(secret, ids[i % IDS], out);
        sink += (unsigned char)out[0];
    }
    printf("member_key %.0f\n", (now_ns() - t0) / (double)calls);

    t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        rte_crypto_member_key(secret, ids[i % 16], out);
        sink += (unsigned char)out[0];
    }
    printf("member_key_hot %.0f\n", (now_ns() - t0) / (double)calls);

    t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        rte_crypto_member_key(i % 2 ? secret2 : secret, ids[i % IDS], out);
        sink += (unsigned char)out[0];
    }
    printf("member_key_2secrets %.0f\n", (now_ns() - t0) / (double)calls);

    t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        oneshot_key(secret, ids[i % IDS], out);
        sink += (unsigned char)out[0];
    }
    printf("ref_hmac_oneshot %.0f\n", (now_ns() - t0) / (double)calls);

    t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        dup_key(tmpl, ids[i % IDS], out);
        sink += (unsigned char)out[0];
    }
    printf("ref_hmac_dup %.0f\n", (now_ns() - t0) / (double)calls);

    t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        rte_clock_format(instant(i), ts, sizeof ts);
        sink += (unsigned char)ts[22];
    }
    printf("clock_format %.1f\n", (now_ns() - t0) / (double)calls);

    t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        gmtime_format(instant(i), tsref, sizeof tsref);
        sink += (unsigned char)tsref[22];
    }
    printf("ref_clock_gmtime %.1f\n", (now_ns() - t0) / (double)calls);

    printf("reproduce: %s %ld (checksum %u)\n", argv[0], calls, sink);
    EVP_MAC_CTX_free(tmpl);
    return 0;
}
