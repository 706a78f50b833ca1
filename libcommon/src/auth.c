/*
 * auth.c - verify M2M bearer tokens (JWT, RS256/ES256) against a JWKS.
 *
 * Contract in auth.h. How it reads a token: the three base64url parts are
 * decoded strictly (RFC 7515 2: no padding, no whitespace, unused bits
 * zero) into stack buffers, the header is parsed as strict JSON and its alg
 * checked against the allow-list before any key is looked at, the
 * signature is verified over the ASCII "header.payload" exactly as sent,
 * and only then is the payload parsed and its claims read. So a token whose
 * signature is bad never has its claims parsed, and an alg the verifier
 * does not accept never reaches OpenSSL.
 *
 * Keys: a key set is an immutable array of (kid, type, alg, EVP_PKEY). A
 * verify takes the read lock, finds its key, takes a reference
 * (EVP_PKEY_up_ref) and lets go of the lock before the signature check, so
 * a re-read replaces the set under the write lock without waiting for
 * OpenSSL work. Re-reads are serialised by refresh_mu; the periodic one is
 * skipped by a verify that finds another re-read in progress (it keeps the
 * current keys), the unknown-kid one waits for it and then looks again.
 *
 * Errors: rte_auth_verify returns the reason code and a message for the
 * client; key-set problems at start-up are returned to the caller (who
 * makes them fatal), at run time they are logged and the old keys kept.
 *
 * Deliberately not here: HS*, "none", JWE, x5c/x5u, jku from the token
 * (a token never chooses where its key comes from).
 */
#include "rte/auth.h"

#include "rte/clock.h"
#include "rte/http_client.h"
#include "rte/input.h"
#include "rte/json.h"
#include "rte/log.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KID_MAX 256       /* bytes of a kid */
#define PART_MAX 12288    /* decoded header or payload: RTE_AUTH_TOKEN_MAX * 3 / 4 */
#define SIG_MAX 1024      /* decoded signature: RSA up to 8192 bits */
#define RSA_MIN_BITS 2048 /* RFC 7518 3.3 */
#define RSA_MAX_BYTES 1024
#define EC_COORD 32 /* P-256 coordinate */
#define ISSUER_MAX 512
#define MEMO_SLOTS 256 /* tokens remembered as verified (direct-mapped by their hash) */

enum kty { KTY_RSA = 1, KTY_EC = 2 };

struct key {
    char kid[KID_MAX];
    int has_kid;
    enum kty kty;
    char alg[8]; /* "" when the JWK does not say */
    EVP_PKEY *pk;
};

struct keyset {
    struct key *keys;
    int n;
};

/* a token verified under key set generation gen: its SHA-256 and what it said */
struct memo {
    unsigned char hash[32];
    unsigned gen; /* 0 = empty */
    rte_auth_token tok;
};

struct rte_auth {
    char *jwks_file;
    char *jwks_url;
    char *issuer;
    char *audience;
    int64_t skew_s;
    int64_t refresh_ms;
    int64_t min_refresh_ms;
    int fetch_timeout_ms;
    rte_http_client *http; /* only with a URL */
    pthread_rwlock_t lock; /* guards keys */
    struct keyset *keys;
    pthread_mutex_t refresh_mu;  /* one re-read at a time */
    _Atomic int64_t loaded_mono; /* last successful (or attempted) load, mono ms */
    atomic_uint loads;           /* re-reads finished (successful or not) */
    atomic_uint gen;             /* key set generation: a new set forgets every memo */
    pthread_mutex_t memo_mu;
    struct memo *memo;           /* MEMO_SLOTS; NULL if it could not be allocated */
    _Atomic int64_t forced_mono; /* last unknown-kid re-read, mono ms */
};

static const char *const reasons[RTE_AUTH_NREASONS] = {
    "ok",      "missing",       "malformed", "alg",      "unknown_key", "signature",
    "expired", "not_yet_valid", "issuer",    "audience", "claims",
};

/* rte_auth_reason - metric label; pure */
const char *rte_auth_reason(int rc)
{
    if (rc > 0 || -rc >= RTE_AUTH_NREASONS)
        return "unknown";
    return reasons[-rc];
}

/* --- base64url (RFC 4648 5, unpadded as JWS requires) ------------------ */

static int b64url_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* decode len chars; byte count, or -1 (bad char, impossible length, bits left over, too long) */
static long b64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
    size_t o = 0, i = 0;
    uint32_t bits = 0;
    int nbits = 0;

    if (len % 4 == 1)
        return -1;
    for (i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        bits = (bits << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            if (o >= outlen)
                return -1;
            out[o++] = (unsigned char)(bits >> nbits);
            bits &= (1u << nbits) - 1;
        }
    }
    if (bits != 0) /* non-zero unused bits: not the canonical encoding */
        return -1;
    return (long)o;
}

/* --- key set ------------------------------------------------------------ */

static void keyset_free(struct keyset *ks)
{
    if (!ks)
        return;
    for (int i = 0; i < ks->n; i++)
        EVP_PKEY_free(ks->keys[i].pk);
    free(ks->keys);
    free(ks);
}

/* a base64url JWK member into out (exactly want bytes when want > 0); length or -1 + err */
static long jwk_bytes(const cJSON *jwk, const char *name, unsigned char *out, size_t outlen,
                      size_t want, char *err, size_t errlen)
{
    const char *s;
    long n;

    if (rte_json_string(jwk, name, 0, &s, err, errlen) < 0)
        return -1;
    n = b64url_decode(s, strlen(s), out, outlen);
    if (n <= 0 || (want && (size_t)n != want)) {
        snprintf(err, errlen, "field '%s': not base64url of %s", name,
                 want ? "the expected length" : "an acceptable length");
        return -1;
    }
    return n;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *rsa_key(const cJSON *jwk, char *err, size_t errlen)
{
    unsigned char n[RSA_MAX_BYTES], e[16];
    long nlen, elen;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pk = NULL;

    nlen = jwk_bytes(jwk, "n", n, sizeof n, 0, err, errlen);
    elen = nlen < 0 ? -1 : jwk_bytes(jwk, "e", e, sizeof e, 0, err, errlen);
    if (elen < 0)
        goto out;
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_bin2bn(e, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)) {
        snprintf(err, errlen, "out of memory building an RSA key");
        goto out;
    }
    if (BN_num_bits(bn) < RSA_MIN_BITS) {
        snprintf(err, errlen, "RSA key of %d bits is shorter than %d", BN_num_bits(bn),
                 RSA_MIN_BITS);
        goto out;
    }
    if (!BN_is_odd(be) || BN_is_one(be)) {
        snprintf(err, errlen, "field 'e': not a valid RSA public exponent");
        goto out;
    }
    pk = pkey_fromdata("RSA", bld);
    if (!pk)
        snprintf(err, errlen, "OpenSSL refused the RSA key");
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pk;
}

static EVP_PKEY *ec_key(const cJSON *jwk, char *err, size_t errlen)
{
    unsigned char pub[1 + 2 * EC_COORD];
    const char *crv;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *pk = NULL;

    if (rte_json_string(jwk, "crv", 32, &crv, err, errlen) < 0)
        return NULL;
    if (strcmp(crv, "P-256") != 0) {
        snprintf(err, errlen, "field 'crv': curve is not P-256 (ES256)");
        return NULL;
    }
    pub[0] = 0x04; /* uncompressed point */
    if (jwk_bytes(jwk, "x", pub + 1, EC_COORD, EC_COORD, err, errlen) < 0 ||
        jwk_bytes(jwk, "y", pub + 1 + EC_COORD, EC_COORD, EC_COORD, err, errlen) < 0)
        return NULL;
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub)) {
        snprintf(err, errlen, "out of memory building an EC key");
        goto out;
    }
    pk = pkey_fromdata("EC", bld);
    check = pk ? EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL) : NULL;
    if (!pk || !check || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(pk);
        pk = NULL;
        snprintf(err, errlen, "EC point is not on P-256");
    }
out:
    EVP_PKEY_CTX_free(check);
    OSSL_PARAM_BLD_free(bld);
    return pk;
}

/* one JWK into k; 0, or -1 + err (the key is then skipped) */
static int read_jwk(const cJSON *jwk, struct key *k, char *err, size_t errlen)
{
    const char *kty, *kid = NULL, *use = NULL, *alg = NULL;

    if (!cJSON_IsObject(jwk)) {
        snprintf(err, errlen, "not an object");
        return -1;
    }
    if (rte_json_string(jwk, "kty", 16, &kty, err, errlen) < 0 ||
        rte_json_string_opt(jwk, "kid", KID_MAX - 1, &kid, err, errlen) < 0 ||
        rte_json_string_opt(jwk, "use", 16, &use, err, errlen) < 0 ||
        rte_json_string_opt(jwk, "alg", 16, &alg, err, errlen) < 0)
        return -1;
    if (use && strcmp(use, "sig") != 0) {
        snprintf(err, errlen, "use '%s' is not 'sig'", use);
        return -1;
    }
    memset(k, 0, sizeof *k);
    if (strcmp(kty, "RSA") == 0 && (!alg || strcmp(alg, "RS256") == 0)) {
        k->kty = KTY_RSA;
        k->pk = rsa_key(jwk, err, errlen);
    } else if (strcmp(kty, "EC") == 0 && (!alg || strcmp(alg, "ES256") == 0)) {
        k->kty = KTY_EC;
        k->pk = ec_key(jwk, err, errlen);
    } else {
        snprintf(err, errlen, "kty '%s' alg '%s' is not RSA/RS256 or EC/ES256", kty,
                 alg ? alg : "");
        return -1;
    }
    if (!k->pk)
        return -1;
    if (kid) {
        k->has_kid = 1;
        snprintf(k->kid, sizeof k->kid, "%s", kid);
    }
    if (alg)
        snprintf(k->alg, sizeof k->alg, "%s", alg);
    return 0;
}

/* the usable keys of a JWKS document; NULL + err when it does not parse or has none */
static struct keyset *parse_jwks(const char *json, size_t len, const char *source, char *err,
                                 size_t errlen)
{
    char why[256];
    cJSON *doc = rte_json_parse(json, len, why, sizeof why);
    const cJSON *arr = NULL, *jwk;
    struct keyset *ks = NULL;
    int i = 0;

    if (!doc) {
        snprintf(err, errlen, "JWKS from %s: %s", source, why);
        goto out;
    }
    if (!cJSON_IsObject(doc) || rte_json_array(doc, "keys", 1, 1000, &arr, why, sizeof why) < 0) {
        snprintf(err, errlen, "JWKS from %s: %s", source,
                 cJSON_IsObject(doc) ? why : "not a JSON object");
        goto out;
    }
    ks = calloc(1, sizeof *ks);
    if (ks)
        ks->keys = calloc((size_t)cJSON_GetArraySize(arr), sizeof *ks->keys);
    if (!ks || !ks->keys) {
        snprintf(err, errlen, "JWKS from %s: out of memory", source);
        goto fail;
    }
    cJSON_ArrayForEach(jwk, arr)
    {
        if (read_jwk(jwk, &ks->keys[ks->n], why, sizeof why) == 0)
            ks->n++;
        else
            rte_log_debug("JWKS from %s: keys[%d] skipped: %s", source, i, why);
        i++;
    }
    if (ks->n == 0) {
        snprintf(err, errlen,
                 "JWKS from %s: none of its %d keys is usable (RSA >= 2048 bits for RS256 or EC "
                 "P-256 for ES256, use 'sig')",
                 source, i);
        goto fail;
    }
    goto out;
fail:
    keyset_free(ks);
    ks = NULL;
out:
    cJSON_Delete(doc);
    return ks;
}

/* a set holding a's keys followed by b's; frees both (either may be NULL) */
static struct keyset *keyset_join(struct keyset *a, struct keyset *b)
{
    struct key *all;

    if (!a || !b)
        return a ? a : b;
    all = realloc(a->keys, (size_t)(a->n + b->n) * sizeof *all);
    if (!all) {
        keyset_free(b);
        return a;
    }
    memcpy(all + a->n, b->keys, (size_t)b->n * sizeof *all);
    a->keys = all;
    a->n += b->n;
    free(b->keys);
    free(b);
    return a;
}

static void install(rte_auth *a, struct keyset *ks)
{
    struct keyset *old;

    pthread_rwlock_wrlock(&a->lock);
    old = a->keys;
    a->keys = ks;
    atomic_fetch_add(&a->gen, 1);
    pthread_rwlock_unlock(&a->lock);
    keyset_free(old);
}

/* rte_auth_load_jwks - replace the keys from a document; key count or -1 + err; write lock */
int rte_auth_load_jwks(rte_auth *a, const char *json, size_t len, char *err, size_t errlen)
{
    struct keyset *ks = parse_jwks(json, len, "the caller", err, errlen);
    int n;

    if (!ks)
        return -1;
    n = ks->n;
    install(a, ks);
    return n;
}

static struct keyset *load_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;
    struct keyset *ks = NULL;

    if (!f) {
        snprintf(err, errlen, "cannot read JWKS file %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(RTE_AUTH_JWKS_MAX + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading %s", path);
        goto out;
    }
    n = fread(buf, 1, RTE_AUTH_JWKS_MAX + 1, f);
    if (ferror(f) || n > RTE_AUTH_JWKS_MAX) {
        snprintf(err, errlen, "JWKS file %s: %s", path,
                 ferror(f) ? "read error" : "larger than 1 MiB");
        goto out;
    }
    ks = parse_jwks(buf, n, path, err, errlen);
out:
    free(buf);
    fclose(f);
    return ks;
}

static struct keyset *load_url(rte_auth *a, char *err, size_t errlen)
{
    const char *const headers[] = {"Accept: application/json", NULL};
    rte_http_request req = {.method = "GET",
                            .url = a->jwks_url,
                            .headers = headers,
                            .timeout_ms = a->fetch_timeout_ms,
                            .max_attempts = 2,
                            .name = "jwks"};
    rte_http_response resp = {0};
    struct keyset *ks = NULL;

    if (rte_http_do(a->http, &req, &resp) < 0)
        snprintf(err, errlen, "cannot fetch JWKS %s: %s", a->jwks_url, resp.error);
    else if (resp.status != 200)
        snprintf(err, errlen, "JWKS %s answered HTTP %ld", a->jwks_url, resp.status);
    else if (resp.body_len > RTE_AUTH_JWKS_MAX)
        snprintf(err, errlen, "JWKS %s is larger than 1 MiB", a->jwks_url);
    else
        ks = parse_jwks(resp.body, resp.body_len, a->jwks_url, err, errlen);
    rte_http_response_free(&resp);
    return ks;
}

/* read every configured source; the joined set, or NULL + err if any source failed */
static struct keyset *load_all(rte_auth *a, char *err, size_t errlen)
{
    struct keyset *file = NULL, *url = NULL;

    if (a->jwks_file && !(file = load_file(a->jwks_file, err, errlen)))
        return NULL;
    if (a->jwks_url && !(url = load_url(a, err, errlen))) {
        keyset_free(file);
        return NULL;
    }
    return keyset_join(file, url);
}

/* re-read the keys; caller holds refresh_mu */
static void reload(rte_auth *a, const char *why)
{
    char err[512];
    struct keyset *ks = load_all(a, err, sizeof err);

    atomic_store(&a->loaded_mono, rte_clock_mono_ms());
    atomic_fetch_add(&a->loads, 1);
    if (!ks) {
        rte_log_warn("auth: re-reading the JWKS (%s) failed: %s; keeping the keys loaded before",
                     why, err);
        return;
    }
    rte_log_debug("auth: JWKS re-read (%s): %d keys", why, ks->n);
    install(a, ks);
}

static void maybe_refresh(rte_auth *a)
{
    int64_t now = rte_clock_mono_ms();

    if (a->refresh_ms <= 0 || now - atomic_load(&a->loaded_mono) < a->refresh_ms)
        return;
    if (pthread_mutex_trylock(&a->refresh_mu) != 0)
        return; /* someone else is at it; use the current keys */
    if (now - atomic_load(&a->loaded_mono) >= a->refresh_ms)
        reload(a, "periodic");
    pthread_mutex_unlock(&a->refresh_mu);
}

/* unknown kid: one re-read, at most once per min_refresh_ms; 1 if keys were re-read */
static int refresh_for_kid(rte_auth *a)
{
    int64_t asked = rte_clock_mono_ms();
    unsigned seen = atomic_load(&a->loads);
    int done = 0;

    pthread_mutex_lock(&a->refresh_mu);
    if (atomic_load(&a->loads) != seen) {
        done = 1; /* a re-read finished while we waited for the lock */
    } else if (asked - atomic_load(&a->forced_mono) >= a->min_refresh_ms ||
               atomic_load(&a->forced_mono) == 0) {
        atomic_store(&a->forced_mono, asked);
        reload(a, "unknown kid");
        done = 1;
    }
    pthread_mutex_unlock(&a->refresh_mu);
    return done;
}

/* the key for kid (NULL: the only key of that type) with a reference, or NULL; read lock */
static EVP_PKEY *find_key(rte_auth *a, const char *kid, enum kty kty, const char *alg)
{
    EVP_PKEY *pk = NULL;
    int matches = 0;

    pthread_rwlock_rdlock(&a->lock);
    for (int i = 0; a->keys && i < a->keys->n; i++) {
        const struct key *k = &a->keys->keys[i];
        if (k->kty != kty || (k->alg[0] && strcmp(k->alg, alg) != 0))
            continue;
        if (kid ? k->has_kid && strcmp(k->kid, kid) == 0 : 1) {
            pk = k->pk;
            matches++;
            if (kid)
                break;
        }
    }
    if (matches != 1)
        pk = NULL; /* without a kid, more than one candidate is ambiguous */
    if (pk)
        EVP_PKEY_up_ref(pk);
    pthread_rwlock_unlock(&a->lock);
    return pk;
}

/* rte_auth_nkeys - keys loaded; read lock */
int rte_auth_nkeys(rte_auth *a)
{
    int n;

    pthread_rwlock_rdlock(&a->lock);
    n = a->keys ? a->keys->n : 0;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

/* --- signature -------------------------------------------------------- */

/* raw r||s (RFC 7518 3.4) to DER ECDSA-Sig-Value; DER length or -1 */
static int es256_der(const unsigned char *raw, unsigned char *der, size_t derlen)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, EC_COORD, NULL);
    BIGNUM *s = BN_bin2bn(raw + EC_COORD, EC_COORD, NULL);
    unsigned char *p = der;
    int n = -1;

    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    if (i2d_ECDSA_SIG(sig, NULL) > (int)derlen)
        goto out;
    n = i2d_ECDSA_SIG(sig, &p);
out:
    ECDSA_SIG_free(sig);
    return n;
}

static int verify_sig(EVP_PKEY *pk, enum kty kty, const char *msg, size_t msglen,
                      const unsigned char *sig, size_t siglen)
{
    unsigned char der[80]; /* 2 * (2 + 33) + 3 at most */
    EVP_MD_CTX *ctx;
    int ok = 0;

    if (kty == KTY_EC) {
        int n = siglen == 2 * EC_COORD ? es256_der(sig, der, sizeof der) : -1;
        if (n < 0)
            return 0;
        sig = der;
        siglen = (size_t)n;
    } else if ((int)siglen != EVP_PKEY_get_size(pk)) {
        return 0;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk) == 1)
        ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)msg, msglen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* --- claims ----------------------------------------------------------- */

static void fmt_time(int64_t s, char *buf, int len)
{
    rte_clock_format(s * 1000, buf, len);
}

/* an optional NumericDate claim into *out (epoch s); 0 absent, 1 present, -1 bad */
static int numeric_date(const cJSON *claims, const char *name, int64_t *out, char *err,
                        size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    double d;

    if (!v)
        return 0;
    if (rte_json_number(claims, name, 0, 253402300799.0, &d, err, errlen) < 0)
        return -1; /* not a number, or before 1970 / after 9999 */
    *out = (int64_t)d;
    return 1;
}

static int check_times(const rte_auth *a, const cJSON *claims, int64_t now, rte_auth_token *tok,
                       char *err, size_t errlen)
{
    char t1[40], t2[40];
    int64_t exp = 0, nbf = 0, iat = 0;
    int has;

    has = numeric_date(claims, "exp", &exp, err, errlen);
    if (has <= 0) {
        if (has == 0)
            snprintf(err, errlen, "token has no exp claim");
        return RTE_AUTH_CLAIMS;
    }
    if (now >= exp + a->skew_s) {
        fmt_time(exp, t1, sizeof t1);
        fmt_time(now, t2, sizeof t2);
        snprintf(err, errlen, "token expired at %s (now %s, clock skew allowed %lld s)", t1, t2,
                 (long long)a->skew_s);
        return RTE_AUTH_EXPIRED;
    }
    if ((has = numeric_date(claims, "nbf", &nbf, err, errlen)) < 0 ||
        numeric_date(claims, "iat", &iat, err, errlen) < 0)
        return RTE_AUTH_CLAIMS;
    if (has && nbf > now + a->skew_s) {
        fmt_time(nbf, t1, sizeof t1);
        fmt_time(now, t2, sizeof t2);
        snprintf(err, errlen, "token not valid before %s (now %s, clock skew allowed %lld s)", t1,
                 t2, (long long)a->skew_s);
        return RTE_AUTH_NOT_YET;
    }
    if (iat > now + a->skew_s) {
        fmt_time(iat, t1, sizeof t1);
        fmt_time(now, t2, sizeof t2);
        snprintf(err, errlen,
                 "token issued in the future at %s (now %s, clock skew allowed %lld s)", t1, t2,
                 (long long)a->skew_s);
        return RTE_AUTH_NOT_YET;
    }
    tok->exp = exp;
    return RTE_AUTH_OK;
}

static int check_issuer(const rte_auth *a, const cJSON *claims, char *err, size_t errlen)
{
    char q[4 * RTE_INPUT_QUOTE_MAX];
    const char *iss;

    if (!cJSON_GetObjectItemCaseSensitive(claims, "iss")) {
        snprintf(err, errlen, "token has no iss claim (expected '%s')", a->issuer);
        return RTE_AUTH_ISSUER;
    }
    if (rte_json_string(claims, "iss", ISSUER_MAX, &iss, err, errlen) < 0)
        return RTE_AUTH_CLAIMS;
    if (strcmp(iss, a->issuer) != 0) {
        rte_input_quote(iss, strlen(iss), q, sizeof q);
        snprintf(err, errlen, "token issuer '%s' is not the expected '%s'", q, a->issuer);
        return RTE_AUTH_ISSUER;
    }
    return RTE_AUTH_OK;
}

static int check_audience(const rte_auth *a, const cJSON *claims, char *err, size_t errlen)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud"), *v;

    if (!aud) {
        snprintf(err, errlen, "token has no aud claim (expected '%s')", a->audience);
        return RTE_AUTH_AUDIENCE;
    }
    if (cJSON_IsString(aud)) {
        if (strcmp(aud->valuestring, a->audience) == 0)
            return RTE_AUTH_OK;
    } else if (cJSON_IsArray(aud)) {
        int found = 0;
        cJSON_ArrayForEach(v, aud)
        {
            if (!cJSON_IsString(v)) { /* every member is checked, not only those before ours */
                snprintf(err, errlen, "field 'aud': expected a string or an array of strings");
                return RTE_AUTH_CLAIMS;
            }
            found |= strcmp(v->valuestring, a->audience) == 0;
        }
        if (found)
            return RTE_AUTH_OK;
    } else {
        snprintf(err, errlen, "field 'aud': expected a string or an array of strings");
        return RTE_AUTH_CLAIMS;
    }
    snprintf(err, errlen, "token audience does not include '%s'", a->audience);
    return RTE_AUTH_AUDIENCE;
}

/* RFC 6749 3.3 scope-token characters */
static int scope_char(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

/* append the scope-token s[0..n) to the space-separated out; 0 or -1 + err */
static int add_scope(char *out, size_t *used, const char *s, size_t n, const char *field, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!scope_char((unsigned char)s[i])) {
            snprintf(err, errlen, "field '%s': byte 0x%02x is not allowed in a scope", field,
                     (unsigned char)s[i]);
            return -1;
        }
    }
    if (*used + (*used > 0) + n + 1 > RTE_AUTH_SCOPES_MAX) {
        snprintf(err, errlen, "field '%s': scopes longer than %d bytes", field,
                 RTE_AUTH_SCOPES_MAX - 1);
        return -1;
    }
    if (*used > 0)
        out[(*used)++] = ' ';
    memcpy(out + *used, s, n);
    *used += n;
    out[*used] = '\0';
    return 0;
}

/* scopes of a space-separated string (empty tokens from repeated spaces skipped) */
static int split_scopes(const char *s, const char *field, char *out, size_t *used, char *err,
                        size_t errlen)
{
    while (*s) {
        size_t n = strcspn(s, " ");
        if (n > 0 && add_scope(out, used, s, n, field, err, errlen) < 0)
            return -1;
        s += n;
        while (*s == ' ')
            s++;
    }
    return 0;
}

static int read_scopes(const cJSON *claims, rte_auth_token *tok, char *err, size_t errlen)
{
    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(claims, "scope");
    const cJSON *scp = cJSON_GetObjectItemCaseSensitive(claims, "scp"), *v;
    size_t used = 0;

    tok->scopes[0] = '\0';
    if (scope && scp) {
        snprintf(err, errlen, "token has both 'scope' and 'scp'; send one");
        return -1;
    }
    if (scope) {
        if (!cJSON_IsString(scope)) {
            snprintf(err, errlen, "field 'scope': expected a space-separated string");
            return -1;
        }
        return split_scopes(scope->valuestring, "scope", tok->scopes, &used, err, errlen);
    }
    if (!scp)
        return 0;
    if (cJSON_IsString(scp))
        return split_scopes(scp->valuestring, "scp", tok->scopes, &used, err, errlen);
    if (!cJSON_IsArray(scp)) {
        snprintf(err, errlen, "field 'scp': expected an array of strings");
        return -1;
    }
    cJSON_ArrayForEach(v, scp)
    {
        if (!cJSON_IsString(v) || !v->valuestring[0]) {
            snprintf(err, errlen, "field 'scp': expected an array of non-empty strings");
            return -1;
        }
        if (add_scope(tok->scopes, &used, v->valuestring, strlen(v->valuestring), "scp", err,
                      errlen) < 0)
            return -1;
    }
    return 0;
}

static int read_principal(const cJSON *claims, rte_auth_token *tok, char *err, size_t errlen)
{
    static const char *const names[] = {"client_id", "azp", "sub"};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = NULL;
        if (rte_json_string_opt(claims, names[i], 0, &v, err, errlen) < 0)
            return -1;
        if (!v)
            continue;
        if (rte_input_id(v, strlen(v), RTE_AUTH_PRINCIPAL_MAX - 1, names[i], err, errlen) < 0)
            return -1;
        snprintf(tok->principal, sizeof tok->principal, "%s", v);
        return 0;
    }
    snprintf(err, errlen, "token names no client (client_id, azp or sub)");
    return -1;
}

static int check_claims(const rte_auth *a, const char *json, size_t len, int64_t now,
                        rte_auth_token *tok, char *err, size_t errlen)
{
    char why[256];
    cJSON *claims = rte_json_parse(json, len, why, sizeof why);
    int rc;

    if (!claims || !cJSON_IsObject(claims)) {
        snprintf(err, errlen, "token claims are not a JSON object%s%s", claims ? "" : ": ",
                 claims ? "" : why);
        rc = RTE_AUTH_MALFORMED;
        goto out;
    }
    rc = check_times(a, claims, now, tok, err, errlen);
    if (rc == RTE_AUTH_OK)
        rc = check_issuer(a, claims, err, errlen);
    if (rc == RTE_AUTH_OK)
        rc = check_audience(a, claims, err, errlen);
    if (rc == RTE_AUTH_OK &&
        (read_principal(claims, tok, err, errlen) < 0 || read_scopes(claims, tok, err, errlen) < 0))
        rc = RTE_AUTH_CLAIMS;
out:
    cJSON_Delete(claims);
    return rc;
}

/* --- header ----------------------------------------------------------- */

struct header {
    enum kty kty;
    char alg[8];
    char kid[KID_MAX];
    int has_kid;
};

static int check_alg(const char *alg, struct header *h, char *err, size_t errlen)
{
    char q[4 * RTE_INPUT_QUOTE_MAX];

    if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
        h->kty = alg[0] == 'R' ? KTY_RSA : KTY_EC;
        snprintf(h->alg, sizeof h->alg, "%s", alg);
        return RTE_AUTH_OK;
    }
    rte_input_quote(alg, strlen(alg), q, sizeof q);
    if (strcasecmp(alg, "none") == 0)
        snprintf(err, errlen, "token alg '%s' is not allowed: unsigned tokens are refused", q);
    else if (strncasecmp(alg, "HS", 2) == 0)
        snprintf(err, errlen,
                 "token alg '%s' is not allowed: shared-secret (HMAC) tokens are refused; use "
                 "RS256 or ES256",
                 q);
    else
        snprintf(err, errlen, "token alg '%s' is not allowed; use RS256 or ES256", q);
    return RTE_AUTH_ALG;
}

static int read_header(const char *json, size_t len, struct header *h, char *err, size_t errlen)
{
    char why[256];
    cJSON *hdr = rte_json_parse(json, len, why, sizeof why);
    const char *alg = NULL, *kid = NULL;
    int rc = RTE_AUTH_MALFORMED;

    memset(h, 0, sizeof *h);
    if (!hdr || !cJSON_IsObject(hdr)) {
        snprintf(err, errlen, "token header is not a JSON object%s%s", hdr ? "" : ": ",
                 hdr ? "" : why);
        goto out;
    }
    if (!cJSON_GetObjectItemCaseSensitive(hdr, "alg")) {
        snprintf(err, errlen, "token header has no alg");
        goto out;
    }
    if (rte_json_string(hdr, "alg", 64, &alg, why, sizeof why) < 0) {
        snprintf(err, errlen, "token header: %s", why);
        goto out;
    }
    rc = check_alg(alg, h, err, errlen);
    if (rc != RTE_AUTH_OK)
        goto out;
    rc = RTE_AUTH_MALFORMED;
    if (cJSON_GetObjectItemCaseSensitive(hdr, "crit")) {
        snprintf(err, errlen, "token header has 'crit': no extension is understood here");
        goto out;
    }
    if (rte_json_string_opt(hdr, "kid", KID_MAX - 1, &kid, why, sizeof why) < 0) {
        snprintf(err, errlen, "token header: %s", why);
        goto out;
    }
    if (kid) {
        h->has_kid = 1;
        snprintf(h->kid, sizeof h->kid, "%s", kid);
    }
    rc = RTE_AUTH_OK;
out:
    cJSON_Delete(hdr);
    return rc;
}

/* --- memo of verified tokens --------------------------------------------- */

/*
 * A service's callers send the same token for its whole life (minutes to an
 * hour), and a signature check costs 50-200 us (auth-bench). So a verified
 * token is remembered by its SHA-256 with what it said; the same bytes
 * again within its exp are answered from the memo. A new key set (re-read,
 * rotation, a key withdrawn) forgets every memo, so a token is never
 * accepted on a key that is no longer published.
 */
static int memo_get(rte_auth *a, const unsigned char hash[32], int64_t now, rte_auth_token *tok)
{
    struct memo *m;
    int hit = 0;

    if (!a->memo)
        return 0;
    m = &a->memo[(hash[0] | hash[1] << 8) % MEMO_SLOTS];
    pthread_mutex_lock(&a->memo_mu);
    if (m->gen != 0 && m->gen == atomic_load(&a->gen) && memcmp(m->hash, hash, 32) == 0 &&
        now < m->tok.exp + a->skew_s) {
        *tok = m->tok;
        hit = 1;
    }
    pthread_mutex_unlock(&a->memo_mu);
    return hit;
}

static void memo_put(rte_auth *a, const unsigned char hash[32], unsigned gen,
                     const rte_auth_token *tok)
{
    struct memo *m;

    if (!a->memo || gen == 0)
        return;
    m = &a->memo[(hash[0] | hash[1] << 8) % MEMO_SLOTS];
    pthread_mutex_lock(&a->memo_mu);
    memcpy(m->hash, hash, 32);
    m->gen = gen;
    m->tok = *tok;
    pthread_mutex_unlock(&a->memo_mu);
}

/* --- verify ----------------------------------------------------------- */

/* split into the three parts; 0 or -1 */
static int split_token(const char *t, size_t len, size_t off[3], size_t n[3])
{
    const char *d1 = memchr(t, '.', len), *d2;

    if (!d1)
        return -1;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t)))
        return -1;
    off[0] = 0;
    n[0] = (size_t)(d1 - t);
    off[1] = n[0] + 1;
    n[1] = (size_t)(d2 - d1 - 1);
    off[2] = (size_t)(d2 + 1 - t);
    n[2] = len - off[2];
    return n[0] && n[1] && n[2] ? 0 : -1;
}

/* rte_auth_verify - check a compact JWT; RTE_AUTH_OK or a reason + err; any thread */
int rte_auth_verify(rte_auth *a, const char *token, size_t len, int64_t now_s, rte_auth_token *tok,
                    char *err, size_t errlen)
{
    static const char *const part[] = {"header", "claims", "signature"};
    unsigned char hdr[PART_MAX], body[PART_MAX], sig[SIG_MAX];
    unsigned char *dst[3] = {hdr, body, sig};
    size_t cap[3] = {sizeof hdr, sizeof body, sizeof sig}, off[3], n[3];
    long got[3];
    struct header h;
    char q[4 * RTE_INPUT_QUOTE_MAX];
    unsigned char hash[32];
    unsigned gen;
    EVP_PKEY *pk;
    int rc, ok;

    memset(tok, 0, sizeof *tok);
    if (!token || len == 0) {
        snprintf(err, errlen, "no bearer token");
        return RTE_AUTH_MISSING;
    }
    if (len > RTE_AUTH_TOKEN_MAX) {
        snprintf(err, errlen, "token of %zu bytes is longer than %d", len, RTE_AUTH_TOKEN_MAX);
        return RTE_AUTH_MALFORMED;
    }
    maybe_refresh(a);
    gen = atomic_load(&a->gen); /* before the key is looked up: a newer set may not use the memo */
    if (EVP_Digest(token, len, hash, NULL, EVP_sha256(), NULL) == 1 &&
        memo_get(a, hash, now_s, tok))
        return RTE_AUTH_OK;
    if (split_token(token, len, off, n) < 0) {
        snprintf(err, errlen, "token is not a compact JWS (three non-empty parts joined by '.')");
        return RTE_AUTH_MALFORMED;
    }
    for (int i = 0; i < 3; i++) {
        got[i] = b64url_decode(token + off[i], n[i], dst[i], cap[i]);
        if (got[i] <= 0) {
            snprintf(err, errlen, "token %s is not unpadded base64url", part[i]);
            return RTE_AUTH_MALFORMED;
        }
    }
    rc = read_header((const char *)hdr, (size_t)got[0], &h, err, errlen);
    if (rc != RTE_AUTH_OK)
        return rc;
    pk = find_key(a, h.has_kid ? h.kid : NULL, h.kty, h.alg);
    if (!pk && h.has_kid && refresh_for_kid(a))
        pk = find_key(a, h.kid, h.kty, h.alg);
    if (!pk) {
        rte_input_quote(h.kid, strlen(h.kid), q, sizeof q);
        if (h.has_kid)
            snprintf(err, errlen, "no %s key with kid '%s' in the JWKS", h.alg, q);
        else
            snprintf(err, errlen, "token has no kid and the JWKS does not hold exactly one %s key",
                     h.alg);
        return RTE_AUTH_KEY;
    }
    ok = verify_sig(pk, h.kty, token, off[2] - 1, sig, (size_t)got[2]);
    EVP_PKEY_free(pk);
    if (!ok) {
        snprintf(err, errlen, "token signature does not verify (%s)", h.alg);
        return RTE_AUTH_SIGNATURE;
    }
    rc = check_claims(a, (const char *)body, (size_t)got[1], now_s, tok, err, errlen);
    if (rc == RTE_AUTH_OK)
        memo_put(a, hash, gen, tok);
    return rc;
}

/* --- helpers ------------------------------------------------------------ */

/* rte_auth_bearer - the token of "Bearer <token>"; pure */
const char *rte_auth_bearer(const char *header, size_t *len)
{
    size_t n;

    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    header += 7;
    while (*header == ' ')
        header++;
    n = strlen(header);
    while (n > 0 && (header[n - 1] == ' ' || header[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    *len = n;
    return header;
}

/* rte_auth_has_scope - whole-token match in a space-separated list; pure */
int rte_auth_has_scope(const char *scopes, const char *scope)
{
    size_t want = strlen(scope);

    if (!scopes || want == 0)
        return 0;
    while (*scopes) {
        size_t n = strcspn(scopes, " ");
        if (n == want && memcmp(scopes, scope, n) == 0)
            return 1;
        scopes += n;
        while (*scopes == ' ')
            scopes++;
    }
    return 0;
}

/* --- construction ------------------------------------------------------- */

static char *dup_opt(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

/* rte_auth_free - release the verifier; owning thread */
void rte_auth_free(rte_auth *a)
{
    if (!a)
        return;
    rte_http_client_free(a->http);
    keyset_free(a->keys);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->refresh_mu);
    pthread_mutex_destroy(&a->memo_mu);
    free(a->memo);
    free(a->jwks_file);
    free(a->jwks_url);
    free(a->issuer);
    free(a->audience);
    free(a);
}

/* rte_auth_new - verifier with keys loaded; NULL + err; owning thread */
rte_auth *rte_auth_new(const rte_auth_opts *o, char *err, size_t errlen)
{
    rte_auth *a;
    struct keyset *ks;

    if (!o->jwks_file && !o->jwks_url) {
        snprintf(err, errlen, "no JWKS file or URL");
        return NULL;
    }
    if (!o->issuer || !o->issuer[0] || !o->audience || !o->audience[0]) {
        snprintf(err, errlen, "the issuer and the audience are required");
        return NULL;
    }
    if (o->clock_skew_s < 0 || o->clock_skew_s > 600) {
        snprintf(err, errlen, "clock skew %lld s is outside 0..600", (long long)o->clock_skew_s);
        return NULL;
    }
    a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->refresh_mu, NULL);
    pthread_mutex_init(&a->memo_mu, NULL);
    a->memo = calloc(MEMO_SLOTS, sizeof *a->memo); /* without it every token is checked in full */
    a->jwks_file = dup_opt(o->jwks_file);
    a->jwks_url = dup_opt(o->jwks_url);
    a->issuer = strdup(o->issuer);
    a->audience = strdup(o->audience);
    a->skew_s = o->clock_skew_s;
    a->refresh_ms = o->refresh_ms;
    a->min_refresh_ms = o->min_refresh_ms;
    a->fetch_timeout_ms = o->fetch_timeout_ms > 0 ? o->fetch_timeout_ms : 5000;
    if (!a->issuer || !a->audience) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (a->jwks_url && !(a->http = rte_http_client_new(NULL, err, errlen)))
        goto fail;
    ks = load_all(a, err, errlen);
    if (!ks)
        goto fail;
    install(a, ks);
    atomic_store(&a->loaded_mono, rte_clock_mono_ms());
    return a;
fail:
    rte_auth_free(a);
    return NULL;
}

/* grpc.auth.* into o: 1 configured, 0 no JWKS (auth off), -1 + err naming the key */
static int read_opts(const rte_config *cfg, rte_auth_opts *o_out, char *err, size_t errlen)
{
    rte_auth_opts o = {0};
    int64_t skew, refresh, min_refresh;

    o.jwks_file = rte_config_str(cfg, "grpc.auth.jwks_file", NULL);
    o.jwks_url = rte_config_str(cfg, "grpc.auth.jwks_url", NULL);
    if ((!o.jwks_file || !o.jwks_file[0]) && (!o.jwks_url || !o.jwks_url[0]))
        return 0;
    o.issuer = rte_config_str(cfg, "grpc.auth.issuer", NULL);
    o.audience = rte_config_str(cfg, "grpc.auth.audience", NULL);
    if (!o.issuer || !o.issuer[0]) {
        snprintf(err, errlen,
                 "key 'grpc.auth.issuer' (RTE_GRPC_AUTH_ISSUER) must be set when a JWKS is "
                 "configured");
        return -1;
    }
    if (!o.audience || !o.audience[0]) {
        snprintf(err, errlen,
                 "key 'grpc.auth.audience' (RTE_GRPC_AUTH_AUDIENCE) must be set when a JWKS is "
                 "configured");
        return -1;
    }
    if (rte_config_duration_try(cfg, "grpc.auth.clock_skew", 60000, 0, 600000, &skew, err, errlen) <
            0 ||
        rte_config_duration_try(cfg, "grpc.auth.jwks_refresh", 300000, 0, 86400000, &refresh, err,
                                errlen) < 0 ||
        rte_config_duration_try(cfg, "grpc.auth.jwks_min_refresh", 30000, 0, 3600000, &min_refresh,
                                err, errlen) < 0)
        return -1;
    o.clock_skew_s = skew / 1000;
    o.refresh_ms = refresh;
    o.min_refresh_ms = min_refresh;
    *o_out = o;
    return 1;
}

/* rte_auth_from_config - grpc.auth.* into a verifier or NULL (off); -1 + err; owning thread */
int rte_auth_from_config(const rte_config *cfg, rte_auth **out, char *err, size_t errlen)
{
    rte_auth_opts o;
    char why[512];
    int rc;

    *out = NULL;
    rc = read_opts(cfg, &o, err, errlen);
    if (rc <= 0)
        return rc;
    *out = rte_auth_new(&o, why, sizeof why);
    if (!*out) {
        snprintf(err, errlen, "key '%s' (%s): %s",
                 o.jwks_file && o.jwks_file[0] ? "grpc.auth.jwks_file" : "grpc.auth.jwks_url",
                 o.jwks_file && o.jwks_file[0] ? "RTE_GRPC_AUTH_JWKS_FILE"
                                               : "RTE_GRPC_AUTH_JWKS_URL",
                 why);
        return -1;
    }
    return 0;
}

/* rte_auth_check_config - as rte_auth_from_config, a JWKS URL not fetched; owning thread */
int rte_auth_check_config(const rte_config *cfg, int *configured, char *err, size_t errlen)
{
    rte_auth_opts o;
    rte_auth *a;
    int rc = read_opts(cfg, &o, err, errlen);

    *configured = rc > 0;
    if (rc <= 0)
        return rc;
    if (o.jwks_file && o.jwks_file[0])
        return rte_auth_from_config(cfg, &a, err, errlen) < 0 ? -1 : (rte_auth_free(a), 0);
    if (strncmp(o.jwks_url, "https://", 8) != 0 && strncmp(o.jwks_url, "http://", 7) != 0) {
        snprintf(err, errlen,
                 "key 'grpc.auth.jwks_url' (RTE_GRPC_AUTH_JWKS_URL) = '%.200s': expected an "
                 "http:// or https:// URL",
                 o.jwks_url);
        return -1;
    }
    return 0;
}
