/*
 * crypto.h - HMAC-SHA256, constant-time comparison, keyed member hashing,
 * webhook signing keys.
 *
 * Built on OpenSSL. Member ids never appear raw in Redis keys or events: they
 * are replaced by rte_crypto_member_key, a keyed hash (HMAC-SHA256 under a
 * deployment secret, first 16 bytes, lower-case hex) that is stable across
 * services and replicas sharing the secret and cannot be reversed without it.
 *
 * Thread safety: any thread, no locks; HMAC (so member keys) and UUIDs keep
 * per-thread state, so they are not async-signal-safe.
 */
#ifndef RTE_CRYPTO_H
#define RTE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define RTE_SHA256_LEN 32
#define RTE_MEMBER_KEY_LEN 32   /* hex chars, without the NUL */
#define RTE_WEBHOOK_KEY_MAX 256 /* bytes of a webhook signing key */
#define RTE_WEBHOOK_SECRET_PREFIX "whsec_"

/* rte_hmac_sha256 - out[32] = HMAC-SHA256(key, msg) */
int rte_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                    uint8_t out[RTE_SHA256_LEN]);

/* rte_ct_equal - constant-time equality of two buffers of length n; 1 if equal */
int rte_ct_equal(const void *a, const void *b, size_t n);

/* rte_sha1_hex - lower-case hex SHA-1 of data into out (41 bytes); for Redis script ids */
void rte_sha1_hex(const void *data, size_t n, char out[41]);

/* rte_hex_encode - lower-case hex of n bytes into out (2n+1 bytes) */
void rte_hex_encode(const uint8_t *in, size_t n, char *out);

/* rte_hex_digit - the value of one hex digit (either case), or -1 */
int rte_hex_digit(int c);

/* rte_hex_decode - hex text to bytes; returns byte count or -1 if malformed/too long */
int rte_hex_decode(const char *hex, uint8_t *out, size_t outlen);

/* rte_base64_encode - standard base64 with padding into out (4*ceil(n/3)+1 bytes) */
size_t rte_base64_encode(const uint8_t *in, size_t n, char *out, size_t outlen);

/* rte_base64url_encode - unpadded base64url (RFC 4648 5; JWS/JWK) into out (4*ceil(n/3)+1 bytes) */
size_t rte_base64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen);

/* rte_base64_decode - standard base64 to bytes; returns byte count or -1 if malformed */
int rte_base64_decode(const char *in, uint8_t *out, size_t outlen);

/*
 * rte_crypto_webhook_key - the HMAC-SHA256 key a configured webhook signing
 * secret stands for. "whsec_" followed by base64 (Standard Webhooks: the
 * standard alphabet, padding optional, 24 to 64 bytes once decoded) is
 * decoded; any other secret is its own text, 1 to RTE_WEBHOOK_KEY_MAX bytes.
 * Returns the key length, or -1 with err saying what is wrong (never
 * quoting the secret). Pure; any thread.
 */
int rte_crypto_webhook_key(const char *secret, uint8_t key[RTE_WEBHOOK_KEY_MAX], char *err,
                           size_t errlen);

/* rte_crypto_member_key - keyed hash of a member id into out (33 bytes, hex + NUL) */
void rte_crypto_member_key(const char *secret, const char *member_id,
                           char out[RTE_MEMBER_KEY_LEN + 1]);

/* rte_random_bytes - n cryptographically random bytes; 0 or -1 */
int rte_random_bytes(void *buf, size_t n);

/* rte_uuid4 - random RFC 4122 UUID text into out (37 bytes) */
void rte_uuid4(char out[37]);

#endif
