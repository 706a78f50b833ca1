/*
 * auth.h - machine-to-machine bearer tokens: JWT (RFC 7519) signed with
 * RS256 or ES256, checked against keys from a JWKS (RFC 7517).
 *
 * A verifier (rte_auth) holds the key set and the expected issuer and
 * audience. rte_auth_verify takes the compact token from an
 * "authorization: Bearer <jwt>" header and either fills an rte_auth_token
 * (principal and scopes) or returns a negative RTE_AUTH_* reason with a
 * message saying what is wrong with the token ("token expired at
 * 2026-12-07T10:00:00Z (now 10:05:00Z, skew 60 s)"). Messages never quote
 * the signature and quote other token text only after rte_input_quote.
 *
 * What is checked, in this order: the shape (three base64url parts, no
 * padding, at most RTE_AUTH_TOKEN_MAX bytes), the header (strict JSON,
 * alg RS256 or ES256 only - never "none", never HS*, no "crit"), the key
 * (by kid; without a kid the one key of the alg's type), the signature
 * (OpenSSL EVP; an ES256 signature is the raw 64-byte r||s of RFC 7518
 * 3.4, turned into DER for EVP), then the claims (strict JSON): iss equals
 * the issuer, aud (a string or an array of strings) contains the audience,
 * exp is required and not past, nbf (optional) is not in the future, iat
 * (optional) is not in the future, each with clock_skew_s of tolerance.
 * Scopes come from "scope" (space-separated string, RFC 8693) or "scp" (an
 * array of strings, or a string); both at once is refused as ambiguous.
 * The principal is "client_id" (RFC 9068), else "azp", else "sub".
 *
 * Keys: a JWKS file, or a JWKS URL fetched with libcommon's http_client,
 * or both (the file first, the URL's keys added). RSA keys must be at
 * least 2048 bits; EC keys must be P-256. A key with "use" other than
 * "sig" or an "alg" other than the token's is not used. Keys are re-read
 * every refresh_ms (by the first verify that finds them old; other calls
 * keep using the current set meanwhile), and a token whose kid is unknown
 * makes one re-read at once, no more often than min_refresh_ms, so a flood
 * of made-up kids cannot hammer the JWKS endpoint. A failed re-read keeps
 * the keys already loaded and is logged.
 *
 * A verified token is remembered by its SHA-256 (a few hundred slots) and
 * the same bytes are accepted again without the signature check until its
 * exp; a new key set forgets them all, so withdrawing a key takes effect
 * at the next re-read.
 *
 * Not here: token issuance, HS* shared secrets (a verifier holding the
 * signing secret could mint tokens), JWE, x5c certificate chains,
 * revocation lists. The gRPC server (grpc_server.h) calls this module;
 * docs/auth.md is the operator's guide.
 *
 * Thread safety: rte_auth_verify may be called from any thread at once;
 * the key set is read under a read lock and replaced under a write lock.
 * new/free from the owning thread.
 */
#ifndef RTE_AUTH_H
#define RTE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "rte/config.h"

#define RTE_AUTH_TOKEN_MAX 16384     /* bytes of a compact token */
#define RTE_AUTH_PRINCIPAL_MAX 256   /* bytes of a principal, with the NUL */
#define RTE_AUTH_SCOPES_MAX 2048     /* bytes of the space-separated scopes, with the NUL */
#define RTE_AUTH_JWKS_MAX (1u << 20) /* bytes of a JWKS document */

/* why a token was refused (rte_auth_reason gives the metric label) */
enum {
    RTE_AUTH_OK = 0,
    RTE_AUTH_MISSING = -1,   /* no token at all, or not "Bearer <token>" */
    RTE_AUTH_MALFORMED = -2, /* not three base64url parts of strict JSON */
    RTE_AUTH_ALG = -3,       /* alg not allowed (none, HS*, anything but RS256/ES256) */
    RTE_AUTH_KEY = -4,       /* no key for the kid (after one refresh) */
    RTE_AUTH_SIGNATURE = -5, /* signature does not verify */
    RTE_AUTH_EXPIRED = -6,   /* exp passed */
    RTE_AUTH_NOT_YET = -7,   /* nbf or iat in the future */
    RTE_AUTH_ISSUER = -8,    /* iss missing or not ours */
    RTE_AUTH_AUDIENCE = -9,  /* aud missing or not ours */
    RTE_AUTH_CLAIMS = -10,   /* a claim of the wrong type, no principal, bad scope text */
};
#define RTE_AUTH_NREASONS 11

typedef struct rte_auth rte_auth;

typedef struct rte_auth_opts {
    const char *jwks_file;  /* path, or NULL */
    const char *jwks_url;   /* http(s) URL, or NULL; at least one of file/url */
    const char *issuer;     /* required */
    const char *audience;   /* required */
    int64_t clock_skew_s;   /* tolerance on exp/nbf/iat; 0..600 */
    int64_t refresh_ms;     /* re-read the keys this often; 0 = never */
    int64_t min_refresh_ms; /* at most one unknown-kid re-read per this; 0 = no limit */
    int fetch_timeout_ms;   /* JWKS URL; default 5000 */
} rte_auth_opts;

typedef struct rte_auth_token {
    char principal[RTE_AUTH_PRINCIPAL_MAX];
    char scopes[RTE_AUTH_SCOPES_MAX]; /* space-separated, as given */
    int64_t exp;                      /* epoch seconds */
} rte_auth_token;

/*
 * rte_auth_new - a verifier with the keys loaded now; NULL + err when the
 * options are incomplete or the JWKS cannot be read or has no usable key.
 * Owning thread.
 */
rte_auth *rte_auth_new(const rte_auth_opts *opts, char *err, size_t errlen);

/*
 * rte_auth_from_config - read grpc.auth.* (docs/configuration.md) into a
 * verifier. *out is NULL when no JWKS is configured (auth off). Returns -1
 * + err naming the key on a bad value or unreadable JWKS. Owning thread.
 */
int rte_auth_from_config(const rte_config *cfg, rte_auth **out, char *err, size_t errlen);

/*
 * rte_auth_check_config - validate grpc.auth.* as rte_auth_from_config
 * does (a JWKS file is read and its keys checked) without fetching a JWKS
 * URL: --check-config needs no network. *configured = 1 when a JWKS is
 * set. 0, or -1 + err naming the key. Owning thread.
 */
int rte_auth_check_config(const rte_config *cfg, int *configured, char *err, size_t errlen);

/* rte_auth_free - release; owning thread, after every verify returned */
void rte_auth_free(rte_auth *a);

/*
 * rte_auth_verify - check the compact token (len bytes) at epoch second
 * now_s; RTE_AUTH_OK with *tok filled, or a negative RTE_AUTH_* with err.
 * Any thread; takes the key set's read lock (the write lock for a re-read).
 */
int rte_auth_verify(rte_auth *a, const char *token, size_t len, int64_t now_s, rte_auth_token *tok,
                    char *err, size_t errlen);

/*
 * rte_auth_bearer - the token in an authorization header value ("Bearer
 * <jwt>", scheme case-insensitive, RFC 6750); *len its length. NULL when
 * the value is not a bearer credential. Pure.
 */
const char *rte_auth_bearer(const char *header, size_t *len);

/* rte_auth_has_scope - 1 when the space-separated scopes contain scope exactly; pure */
int rte_auth_has_scope(const char *scopes, const char *scope);

/* rte_auth_reason - metric label of an RTE_AUTH_* code ("expired"); pure */
const char *rte_auth_reason(int rc);

/*
 * rte_auth_load_jwks - replace the key set with the keys of a JWKS
 * document (len bytes); the number of usable keys, or -1 + err. Keys that
 * cannot be used (other kty, too short, other curve) are skipped, and the
 * document is refused if none is left. Any thread (write lock).
 */
int rte_auth_load_jwks(rte_auth *a, const char *json, size_t len, char *err, size_t errlen);

/* rte_auth_nkeys - the number of keys loaded; any thread (read lock) */
int rte_auth_nkeys(rte_auth *a);

#endif
