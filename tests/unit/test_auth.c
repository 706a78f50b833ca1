/*
 * test_auth.c - JWT verification against a JWKS with tokens signed here
 * with OpenSSL: good RS256 and ES256, wrong key, tampering, expiry, nbf,
 * iat and the clock skew, issuer and audience, alg none / HS256 / others,
 * scopes (string and array), principal fallbacks, malformed base64 and
 * JSON, unknown kid with one re-read of the JWKS file, key selection
 * without kid, unusable JWKS keys, the bearer header parser.
 *
 * Keys are generated at start (RSA 2048, two P-256); the JWKS file lives in
 * a temporary directory and is rewritten by the re-read tests. The JWKS URL
 * is served by a small HTTP/1.0 server thread in the test (loopback,
 * ephemeral port), which answers every request with the current document
 * (or a status of the test's choosing) and counts the requests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rte/auth.h"
#include "rte/crypto.h"

#define ISS "https://idp.test/"
#define AUD "rte-cache-warmer"
#define NOW 1796000000 /* 2026-11-30 */

static EVP_PKEY *rsa1, *rsa2, *rsa_small, *ec1, *ec2;
static char dir[64], jwks_path[128];

/* --- helpers ---------------------------------------------------------- */

/* unpadded base64url of n bytes; out has room for 4*ceil(n/3)+1 bytes */
static void b64url(const unsigned char *in, size_t n, char *out)
{
    rte_base64url_encode(in, n, out, (n + 2) / 3 * 4 + 1);
}

static void b64url_bn(EVP_PKEY *pk, const char *param, size_t pad, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;

    assert_int_equal(EVP_PKEY_get_bn_param(pk, param, &bn), 1);
    n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
    b64url(buf, (size_t)n, out);
    BN_free(bn);
}

/* the JWK of a public key, as a JSON object text */
static void jwk(EVP_PKEY *pk, const char *kid, char *out, size_t len)
{
    char a[1500], b[1500], kidm[128] = "";

    if (kid)
        snprintf(kidm, sizeof kidm, "\"kid\":\"%s\",", kid);
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        b64url_bn(pk, OSSL_PKEY_PARAM_RSA_N, 0, a);
        b64url_bn(pk, OSSL_PKEY_PARAM_RSA_E, 0, b);
        snprintf(out, len, "{\"kty\":\"RSA\",%s\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}", kidm, a,
                 b);
    } else {
        b64url_bn(pk, OSSL_PKEY_PARAM_EC_PUB_X, 32, a);
        b64url_bn(pk, OSSL_PKEY_PARAM_EC_PUB_Y, 32, b);
        snprintf(out, len, "{\"kty\":\"EC\",%s\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", kidm,
                 a, b);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* JWKS {"keys":[...]} with up to three keys (NULL ends) */
static void write_jwks(EVP_PKEY *k1, const char *kid1, EVP_PKEY *k2, const char *kid2, EVP_PKEY *k3,
                       const char *kid3)
{
    char j1[4096] = "", j2[4096] = "", j3[4096] = "", doc[12400];

    jwk(k1, kid1, j1, sizeof j1);
    if (k2)
        jwk(k2, kid2, j2, sizeof j2);
    if (k3)
        jwk(k3, kid3, j3, sizeof j3);
    snprintf(doc, sizeof doc, "{\"keys\":[%s%s%s%s%s]}", j1, k2 ? "," : "", j2, k3 ? "," : "", j3);
    write_file(jwks_path, doc);
}

/* sign header.claims with pk (alg from the key type); der = leave ES256 signatures in DER */
static char *mint_sig(EVP_PKEY *pk, const char *header, const char *claims, int der)
{
    char *tok = malloc(16384);
    unsigned char sig[600], raw[64];
    size_t siglen = sizeof sig, n;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    assert_non_null(tok);
    b64url((const unsigned char *)header, strlen(header), tok);
    n = strlen(tok);
    tok[n++] = '.';
    b64url((const unsigned char *)claims, strlen(claims), tok + n);
    n = strlen(tok);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)tok, n), 1);
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC && !der) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        assert_non_null(es);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        memcpy(sig, raw, 64);
        siglen = 64;
    }
    tok[n++] = '.';
    b64url(sig, siglen, tok + n);
    return tok;
}

static char *mint(EVP_PKEY *pk, const char *header, const char *claims)
{
    return mint_sig(pk, header, claims, 0);
}

/* the standard claims with exp/nbf/iat relative to NOW and extra members appended */
static const char *claims(int64_t exp_rel, const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%lld,\"iat\":%lld,"
             "\"client_id\":\"batch-client-1\",\"scope\":\"rte:warm:read rte:warm:write\"%s%s}",
             (long long)(NOW + exp_rel), (long long)(NOW - 10), extra ? "," : "",
             extra ? extra : "");
    return buf;
}

static rte_auth *new_auth(int64_t min_refresh_ms)
{
    char err[512];
    rte_auth_opts o = {.jwks_file = jwks_path,
                       .issuer = ISS,
                       .audience = AUD,
                       .clock_skew_s = 60,
                       .min_refresh_ms = min_refresh_ms};
    rte_auth *a = rte_auth_new(&o, err, sizeof err);

    if (!a)
        fail_msg("rte_auth_new: %s", err);
    return a;
}

static int verify(rte_auth *a, const char *tok, rte_auth_token *t, char *err, size_t errlen)
{
    return rte_auth_verify(a, tok, strlen(tok), NOW, t, err, errlen);
}

/* verify and expect rc, with want (when not NULL) inside the message */
static void expect(rte_auth *a, char *tok, int rc, const char *want)
{
    rte_auth_token t;
    char err[512] = "";
    int got = verify(a, tok, &t, err, sizeof err);

    if (got != rc)
        fail_msg("rc %d (%s), wanted %d; err: %s", got, rte_auth_reason(got), rc, err);
    if (want && !strstr(err, want))
        fail_msg("message '%s' does not contain '%s'", err, want);
    free(tok);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_auth.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", dir);
    rsa1 = EVP_RSA_gen(2048);
    rsa2 = EVP_RSA_gen(2048);
    rsa_small = EVP_RSA_gen(1024);
    ec1 = EVP_EC_gen("P-256");
    ec2 = EVP_EC_gen("P-256");
    assert_true(rsa1 && rsa2 && rsa_small && ec1 && ec2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(jwks_path);
    rmdir(dir);
    EVP_PKEY_free(rsa1);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(rsa_small);
    EVP_PKEY_free(ec1);
    EVP_PKEY_free(ec2);
    return 0;
}

static int std_jwks(void **state)
{
    (void)state;
    write_jwks(rsa1, "r1", ec1, "e1", NULL, NULL);
    return 0;
}

#define RS "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"r1\"}"
#define ES "{\"alg\":\"ES256\",\"kid\":\"e1\"}"

/* --- tests ------------------------------------------------------------ */

static void test_good_rs256(void **state)
{
    rte_auth *a = new_auth(0);
    rte_auth_token t;
    char err[512] = "";
    char *tok = mint(rsa1, RS, claims(300, NULL));

    (void)state;
    assert_int_equal(rte_auth_nkeys(a), 2);
    assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_OK);
    assert_string_equal(t.principal, "batch-client-1");
    assert_string_equal(t.scopes, "rte:warm:read rte:warm:write");
    assert_int_equal(t.exp, NOW + 300);
    assert_true(rte_auth_has_scope(t.scopes, "rte:warm:write"));
    assert_true(rte_auth_has_scope(t.scopes, "rte:warm:read"));
    assert_false(rte_auth_has_scope(t.scopes, "rte:warm"));
    assert_false(rte_auth_has_scope(t.scopes, "rte:batch:submit"));
    free(tok);
    rte_auth_free(a);
}

static void test_good_es256_array_claims(void **state)
{
    rte_auth *a = new_auth(0);
    rte_auth_token t;
    char err[512] = "";
    char *tok = mint(ec1, ES,
                     "{\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"exp\":1796000300.5,"
                     "\"azp\":\"svc-azp\",\"sub\":\"ignored-sub\",\"scp\":[\"rte:batch:submit\","
                     "\"rte:warm:read\"]}");

    (void)state;
    assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_OK);
    assert_string_equal(t.principal, "svc-azp");
    assert_string_equal(t.scopes, "rte:batch:submit rte:warm:read");
    free(tok);
    /* sub is the last resort */
    tok = mint(ec1, ES,
               "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1796000300,\"sub\":\"only-sub\"}");
    assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_OK);
    assert_string_equal(t.principal, "only-sub");
    assert_string_equal(t.scopes, "");
    assert_false(rte_auth_has_scope(t.scopes, "rte:warm:read"));
    free(tok);
    rte_auth_free(a);
}

static void test_wrong_key_and_tampering(void **state)
{
    rte_auth *a = new_auth(0);
    char *tok;
    size_t dot;

    (void)state;
    /* signed by another key under a known kid */
    expect(a, mint(rsa2, RS, claims(300, NULL)), RTE_AUTH_SIGNATURE, "signature does not verify");
    expect(a, mint(ec2, ES, claims(300, NULL)), RTE_AUTH_SIGNATURE, "ES256");
    /* ES256 must be raw r||s, not DER */
    expect(a, mint_sig(ec1, ES, claims(300, NULL), 1), RTE_AUTH_SIGNATURE, NULL);
    /* RS256 header on an EC kid: no RS256 key named e1 */
    expect(a, mint(rsa1, "{\"alg\":\"RS256\",\"kid\":\"e1\"}", claims(300, NULL)), RTE_AUTH_KEY,
           "kid 'e1'");
    /* claims swapped for others after signing */
    tok = mint(rsa1, RS, claims(300, NULL));
    {
        char other[4096], *t2 = mint(rsa1, RS, claims(300, "\"admin\":true"));
        size_t d1 = strcspn(tok, "."), d2 = strcspn(t2, ".");
        size_t e2 = d2 + 1 + strcspn(t2 + d2 + 1, ".");
        dot = d1 + 1 + strcspn(tok + d1 + 1, ".");
        snprintf(other, sizeof other, "%.*s%.*s%s", (int)d1, tok, (int)(e2 - d2), t2 + d2,
                 tok + dot);
        free(t2);
        expect(a, strdup(other), RTE_AUTH_SIGNATURE, NULL);
    }
    free(tok);
    rte_auth_free(a);
}

static void test_times_and_skew(void **state)
{
    rte_auth *a = new_auth(0);
    char extra[128];

    (void)state;
    expect(a, mint(rsa1, RS, claims(-61, NULL)), RTE_AUTH_EXPIRED, "token expired at");
    expect(a, mint(rsa1, RS, claims(-60, NULL)), RTE_AUTH_EXPIRED, "skew allowed 60 s");
    expect(a, mint(rsa1, RS, claims(-30, NULL)), RTE_AUTH_OK, NULL); /* within the skew */
    snprintf(extra, sizeof extra, "\"nbf\":%d", NOW + 120);
    expect(a, mint(rsa1, RS, claims(300, extra)), RTE_AUTH_NOT_YET, "not valid before");
    snprintf(extra, sizeof extra, "\"nbf\":%d", NOW + 30);
    expect(a, mint(rsa1, RS, claims(300, extra)), RTE_AUTH_OK, NULL);
    expect(a,
           mint(rsa1, RS,
                "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1796000300,\"iat\":1796000500,"
                "\"sub\":\"s\"}"),
           RTE_AUTH_NOT_YET, "issued in the future");
    expect(a, mint(rsa1, RS, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"s\"}"),
           RTE_AUTH_CLAIMS, "no exp claim");
    expect(
        a,
        mint(rsa1, RS, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":\"soon\",\"sub\":\"s\"}"),
        RTE_AUTH_CLAIMS, "field 'exp'");
    rte_auth_free(a);
}

static void test_issuer_audience(void **state)
{
    rte_auth *a = new_auth(0);
    const char *base = "\"exp\":1796000300,\"sub\":\"s\"";
    char c[512];

    (void)state;
    snprintf(c, sizeof c, "{\"iss\":\"https://evil.test/\",\"aud\":\"" AUD "\",%s}", base);
    expect(a, mint(rsa1, RS, c), RTE_AUTH_ISSUER, "issuer 'https://evil.test/' is not");
    snprintf(c, sizeof c, "{\"aud\":\"" AUD "\",%s}", base);
    expect(a, mint(rsa1, RS, c), RTE_AUTH_ISSUER, "no iss claim");
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",\"aud\":\"rte-other\",%s}", base);
    expect(a, mint(rsa1, RS, c), RTE_AUTH_AUDIENCE, "does not include 'rte-cache-warmer'");
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"],%s}", base);
    expect(a, mint(rsa1, RS, c), RTE_AUTH_AUDIENCE, NULL);
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",%s}", base);
    expect(a, mint(rsa1, RS, c), RTE_AUTH_AUDIENCE, "no aud claim");
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\",7],%s}", base);
    expect(a, mint(rsa1, RS, c), RTE_AUTH_CLAIMS, "field 'aud'");
    rte_auth_free(a);
}

/* an HMAC token keyed with the public key's PEM: the classic alg confusion */
static char *hs256_token(void)
{
    char *tok = malloc(8192);
    const char *h = "{\"alg\":\"HS256\",\"kid\":\"r1\"}";
    unsigned char mac[32];
    unsigned int maclen = 0;
    size_t n;

    b64url((const unsigned char *)h, strlen(h), tok);
    n = strlen(tok);
    tok[n++] = '.';
    b64url((const unsigned char *)claims(300, NULL), strlen(claims(300, NULL)), tok + n);
    n = strlen(tok);
    HMAC(EVP_sha256(), "public-key-pem", 14, (unsigned char *)tok, n, mac, &maclen);
    tok[n++] = '.';
    b64url(mac, maclen, tok + n);
    return tok;
}

static void test_alg_allow_list(void **state)
{
    rte_auth *a = new_auth(0);
    char buf[4096], h[64], c[2048];

    (void)state;
    expect(a, hs256_token(), RTE_AUTH_ALG, "shared-secret");
    /* alg none with a non-empty "signature" part, and with the usual empty one */
    b64url((const unsigned char *)"{\"alg\":\"none\"}", 14, h);
    b64url((const unsigned char *)claims(300, NULL), strlen(claims(300, NULL)), c);
    snprintf(buf, sizeof buf, "%s.%s.AAAA", h, c);
    expect(a, strdup(buf), RTE_AUTH_ALG, "unsigned tokens are refused");
    snprintf(buf, sizeof buf, "%s.%s.", h, c);
    expect(a, strdup(buf), RTE_AUTH_MALFORMED, NULL);
    expect(a, mint(rsa1, "{\"alg\":\"RS512\",\"kid\":\"r1\"}", claims(300, NULL)), RTE_AUTH_ALG,
           "'RS512' is not allowed");
    expect(a, mint(rsa1, "{\"alg\":\"PS256\",\"kid\":\"r1\"}", claims(300, NULL)), RTE_AUTH_ALG,
           NULL);
    expect(a, mint(rsa1, "{\"kid\":\"r1\"}", claims(300, NULL)), RTE_AUTH_MALFORMED, "no alg");
    expect(a,
           mint(rsa1, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"]}", claims(300, NULL)),
           RTE_AUTH_MALFORMED, "crit");
    rte_auth_free(a);
}

static void test_scopes(void **state)
{
    rte_auth *a = new_auth(0);
    rte_auth_token t;
    char err[512];
    char *tok;

    (void)state;
    tok = mint(rsa1, RS,
               "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1796000300,\"sub\":\"s\","
               "\"scope\":\"  a:b   c:d \"}");
    assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_OK);
    assert_string_equal(t.scopes, "a:b c:d");
    free(tok);
    expect(a, mint(rsa1, RS, claims(300, "\"scp\":[\"x\"]")), RTE_AUTH_CLAIMS, "both 'scope' and");
    expect(a,
           mint(rsa1, RS,
                "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1796000300,\"sub\":\"s\","
                "\"scope\":\"a\\\"b\"}"),
           RTE_AUTH_CLAIMS, "not allowed in a scope");
    expect(a,
           mint(rsa1, RS,
                "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1796000300,\"sub\":\"s\","
                "\"scp\":[\"a\",3]}"),
           RTE_AUTH_CLAIMS, "field 'scp'");
    expect(a, mint(rsa1, RS, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1796000300}"),
           RTE_AUTH_CLAIMS, "names no client");
    expect(a,
           mint(rsa1, RS,
                "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                "\",\"exp\":1796000300,\"sub\":\"a\\u0001\"}"),
           RTE_AUTH_CLAIMS, "control character");
    assert_false(rte_auth_has_scope("", "x"));
    assert_false(rte_auth_has_scope(NULL, "x"));
    assert_false(rte_auth_has_scope("x", ""));
    assert_true(rte_auth_has_scope("ab x", "x"));
    assert_false(rte_auth_has_scope("xy", "x"));
    rte_auth_free(a);
}

static void test_malformed(void **state)
{
    rte_auth *a = new_auth(0);
    char *good = mint(rsa1, RS, claims(300, NULL)), buf[8192];
    size_t d1 = strcspn(good, ".");
    char h[256], c[2048];

    (void)state;
    expect(a, strdup(""), RTE_AUTH_MISSING, NULL);
    expect(a, strdup("abc"), RTE_AUTH_MALFORMED, "compact JWS");
    expect(a, strdup("a.b"), RTE_AUTH_MALFORMED, "compact JWS");
    snprintf(buf, sizeof buf, "%s.x", good);
    expect(a, strdup(buf), RTE_AUTH_MALFORMED, "compact JWS"); /* four parts */
    snprintf(buf, sizeof buf, "%s=", good);
    expect(a, strdup(buf), RTE_AUTH_MALFORMED, "base64url"); /* padding */
    snprintf(buf, sizeof buf, "%s", good);
    buf[d1 + 3] = '+';
    expect(a, strdup(buf), RTE_AUTH_MALFORMED, "claims is not unpadded base64url");
    snprintf(buf, sizeof buf, "%s", good);
    buf[1] = '*';
    expect(a, strdup(buf), RTE_AUTH_MALFORMED, "header");
    /* header that is not JSON, header with a duplicate key */
    b64url((const unsigned char *)"{alg:RS256}", 11, h);
    snprintf(buf, sizeof buf, "%s%s", h, good + d1);
    expect(a, strdup(buf), RTE_AUTH_MALFORMED, "not a JSON object");
    expect(a, mint(rsa1, "{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"r1\"}", claims(300, NULL)),
           RTE_AUTH_MALFORMED, "duplicate key 'alg'");
    expect(a, mint(rsa1, "[\"RS256\"]", claims(300, NULL)), RTE_AUTH_MALFORMED, NULL);
    /* claims that are signed but not JSON / duplicated */
    expect(a, mint(rsa1, RS, "not json"), RTE_AUTH_MALFORMED, "claims are not a JSON object");
    expect(a,
           mint(rsa1, RS,
                "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1796000300,\"sub\":\"a\","
                "\"sub\":\"b\"}"),
           RTE_AUTH_MALFORMED, "duplicate key 'sub'");
    /* a long but otherwise plausible token */
    memset(c, 'A', sizeof c - 1);
    c[sizeof c - 1] = '\0';
    {
        char *big = malloc(RTE_AUTH_TOKEN_MAX + 10);
        memset(big, 'A', RTE_AUTH_TOKEN_MAX + 5);
        big[RTE_AUTH_TOKEN_MAX + 5] = '\0';
        expect(a, big, RTE_AUTH_MALFORMED, "longer than");
    }
    free(good);
    rte_auth_free(a);
}

static void test_unknown_kid_rereads_once(void **state)
{
    rte_auth *a = new_auth(3600000); /* at most one unknown-kid re-read per hour */
    rte_auth_token t;
    char err[512] = "";
    char *tok;

    (void)state;
    /* r2 is not in the JWKS yet: one re-read, still unknown */
    expect(a, mint(rsa2, "{\"alg\":\"RS256\",\"kid\":\"r2\"}", claims(300, NULL)), RTE_AUTH_KEY,
           "no RS256 key with kid 'r2'");
    /* the file now has r2, but the re-read budget of this hour is spent */
    write_jwks(rsa1, "r1", ec1, "e1", rsa2, "r2");
    expect(a, mint(rsa2, "{\"alg\":\"RS256\",\"kid\":\"r2\"}", claims(300, NULL)), RTE_AUTH_KEY,
           NULL);
    rte_auth_free(a);

    /* a fresh verifier loaded the old file; the key rotates in; one re-read finds it */
    write_jwks(rsa1, "r1", ec1, "e1", NULL, NULL);
    a = new_auth(3600000);
    assert_int_equal(rte_auth_nkeys(a), 2);
    write_jwks(rsa1, "r1", ec1, "e1", rsa2, "r2");
    tok = mint(rsa2, "{\"alg\":\"RS256\",\"kid\":\"r2\"}", claims(300, NULL));
    assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_OK);
    assert_int_equal(rte_auth_nkeys(a), 3);
    free(tok);
    /* a broken file on a later re-read keeps the keys */
    write_file(jwks_path, "{\"keys\":[");
    rte_auth_free(a);
    write_jwks(rsa1, "r1", ec1, "e1", NULL, NULL);
    a = new_auth(0);
    write_file(jwks_path, "{\"keys\":[");
    expect(a, mint(rsa2, "{\"alg\":\"RS256\",\"kid\":\"r9\"}", claims(300, NULL)), RTE_AUTH_KEY,
           NULL);
    assert_int_equal(rte_auth_nkeys(a), 2);
    expect(a, mint(rsa1, RS, claims(300, NULL)), RTE_AUTH_OK, NULL);
    rte_auth_free(a);
    write_jwks(rsa1, "r1", ec1, "e1", NULL, NULL);
}

static void test_no_kid(void **state)
{
    rte_auth *a;

    (void)state;
    write_jwks(rsa1, NULL, ec1, NULL, NULL, NULL);
    a = new_auth(0);
    expect(a, mint(rsa1, "{\"alg\":\"RS256\"}", claims(300, NULL)), RTE_AUTH_OK, NULL);
    expect(a, mint(ec1, "{\"alg\":\"ES256\"}", claims(300, NULL)), RTE_AUTH_OK, NULL);
    rte_auth_free(a);
    write_jwks(rsa1, "r1", rsa2, "r2", NULL, NULL);
    a = new_auth(0);
    expect(a, mint(rsa1, "{\"alg\":\"RS256\"}", claims(300, NULL)), RTE_AUTH_KEY,
           "exactly one RS256 key");
    rte_auth_free(a);
    write_jwks(rsa1, "r1", ec1, "e1", NULL, NULL);
}

static void test_jwks_documents(void **state)
{
    rte_auth *a = new_auth(0);
    char err[512], j[4096], doc[4200];
    int n;

    (void)state;
    jwk(rsa_small, "small", j, sizeof j);
    snprintf(doc, sizeof doc, "{\"keys\":[%s]}", j);
    assert_int_equal(rte_auth_load_jwks(a, doc, strlen(doc), err, sizeof err), -1);
    assert_non_null(strstr(err, "none of its 1 keys is usable"));
    assert_int_equal(rte_auth_nkeys(a), 2); /* refused: the old set stays */
    n = snprintf(doc, sizeof doc,
                 "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"},"
                 "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}");
    assert_int_equal(rte_auth_load_jwks(a, doc, (size_t)n, err, sizeof err), -1);
    /* an EC point that is not on the curve */
    n = snprintf(doc, sizeof doc,
                 "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
                 "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                 "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(rte_auth_load_jwks(a, doc, (size_t)n, err, sizeof err), -1);
    assert_int_equal(rte_auth_load_jwks(a, "{\"keys\":[]}", 11, err, sizeof err), -1);
    assert_int_equal(rte_auth_load_jwks(a, "[1]", 3, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a JSON object"));
    /* use enc is skipped, the sig key kept */
    jwk(ec2, "e2", j, sizeof j);
    n = snprintf(doc, sizeof doc,
                 "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\","
                 "\"e\":\"AQAB\"},%s]}",
                 j);
    assert_int_equal(rte_auth_load_jwks(a, doc, (size_t)n, err, sizeof err), 1);
    expect(a, mint(ec2, "{\"alg\":\"ES256\",\"kid\":\"e2\"}", claims(300, NULL)), RTE_AUTH_OK,
           NULL);
    rte_auth_free(a);
}

static void test_options_and_config(void **state)
{
    char err[512];
    rte_auth_opts o = {.jwks_file = jwks_path, .issuer = ISS};
    rte_auth *a;
    rte_config *cfg;
    char yaml[512];

    (void)state;
    assert_null(rte_auth_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "audience"));
    o.audience = AUD;
    o.jwks_file = "/nonexistent/jwks.json";
    assert_null(rte_auth_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/jwks.json"));
    /* from config: nothing configured = off; issuer required; skew parsed */
    cfg = rte_config_from_string("grpc:\n  workers: 2\n", err, sizeof err);
    assert_int_equal(rte_auth_from_config(cfg, &a, err, sizeof err), 0);
    assert_null(a);
    rte_config_free(cfg);
    snprintf(yaml, sizeof yaml, "grpc:\n  auth:\n    jwks_file: %s\n    audience: x\n", jwks_path);
    cfg = rte_config_from_string(yaml, err, sizeof err);
    assert_int_equal(rte_auth_from_config(cfg, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "RTE_GRPC_AUTH_ISSUER"));
    rte_config_free(cfg);
    snprintf(yaml, sizeof yaml,
             "grpc:\n  auth:\n    jwks_file: %s\n    issuer: '" ISS "'\n    audience: " AUD
             "\n    clock_skew: 2s\n",
             jwks_path);
    cfg = rte_config_from_string(yaml, err, sizeof err);
    assert_int_equal(rte_auth_from_config(cfg, &a, err, sizeof err), 0);
    assert_non_null(a);
    expect(a, mint(rsa1, RS, claims(-3, NULL)), RTE_AUTH_EXPIRED, "skew allowed 2 s");
    expect(a, mint(rsa1, RS, claims(-1, NULL)), RTE_AUTH_OK, NULL);
    rte_auth_free(a);
    rte_config_free(cfg);
}

static void test_bearer(void **state)
{
    size_t n = 0;
    const char *t;

    (void)state;
    t = rte_auth_bearer("Bearer abc.def.ghi", &n);
    assert_non_null(t);
    assert_int_equal(n, 11);
    assert_memory_equal(t, "abc.def.ghi", 11);
    t = rte_auth_bearer("bearer   x.y.z  ", &n);
    assert_non_null(t);
    assert_int_equal(n, 5);
    assert_null(rte_auth_bearer("Basic dXNlcjpwYXNz", &n));
    assert_null(rte_auth_bearer("Bearer ", &n));
    assert_null(rte_auth_bearer("Bearerx.y.z", &n));
    assert_null(rte_auth_bearer(NULL, &n));
    assert_string_equal(rte_auth_reason(RTE_AUTH_EXPIRED), "expired");
    assert_string_equal(rte_auth_reason(RTE_AUTH_KEY), "unknown_key");
    assert_string_equal(rte_auth_reason(-99), "unknown");
}

static void test_memo_expiry_and_withdrawn_key(void **state)
{
    rte_auth *a = new_auth(0);
    rte_auth_token t;
    char err[512] = "", j[4096], doc[4200];
    char *tok = mint(rsa1, RS, claims(300, NULL));

    (void)state;
    for (int i = 0; i < 3; i++) { /* the second and third are answered from the memo */
        assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_OK);
        assert_string_equal(t.principal, "batch-client-1");
        assert_string_equal(t.scopes, "rte:warm:read rte:warm:write");
    }
    /* remembered, but not past its exp (+ skew) */
    assert_int_equal(rte_auth_verify(a, tok, strlen(tok), NOW + 359, &t, err, sizeof err),
                     RTE_AUTH_OK);
    assert_int_equal(rte_auth_verify(a, tok, strlen(tok), NOW + 361, &t, err, sizeof err),
                     RTE_AUTH_EXPIRED);
    assert_non_null(strstr(err, "token expired at"));
    /* a modified token is not the remembered one */
    tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_SIGNATURE);
    free(tok);
    /* the provider withdraws r1: its remembered tokens go with it */
    tok = mint(rsa1, RS, claims(300, NULL));
    assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_OK);
    write_jwks(ec1, "e1", NULL, NULL, NULL, NULL);
    jwk(ec1, "e1", j, sizeof j);
    snprintf(doc, sizeof doc, "{\"keys\":[%s]}", j);
    assert_int_equal(rte_auth_load_jwks(a, doc, strlen(doc), err, sizeof err), 1);
    assert_int_equal(verify(a, tok, &t, err, sizeof err), RTE_AUTH_KEY);
    free(tok);
    rte_auth_free(a);
    write_jwks(rsa1, "r1", ec1, "e1", NULL, NULL);
}

/* --- a JWKS server ------------------------------------------------------ */

static struct {
    int fd, port, stop, status, requests;
    char body[13000];
    pthread_mutex_t mu;
    pthread_t thread;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *srv_main(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&srv.stop, __ATOMIC_SEQ_CST)) {
        struct pollfd p = {.fd = srv.fd, .events = POLLIN};
        char req[2048], head[256];
        int c, n, hl;

        if (poll(&p, 1, 50) <= 0)
            continue;
        c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            continue;
        n = (int)recv(c, req, sizeof req - 1, 0); /* the whole head fits one read on loopback */
        (void)n;
        pthread_mutex_lock(&srv.mu);
        srv.requests++;
        hl = snprintf(head, sizeof head,
                      "HTTP/1.0 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                      "%zu\r\nConnection: close\r\n\r\n",
                      srv.status, strlen(srv.body));
        if (send(c, head, (size_t)hl, MSG_NOSIGNAL) < 0 ||
            send(c, srv.body, strlen(srv.body), MSG_NOSIGNAL) < 0)
            srv.requests += 0;
        pthread_mutex_unlock(&srv.mu);
        close(c);
    }
    return NULL;
}

static void srv_set(int status, EVP_PKEY *k1, const char *kid1, EVP_PKEY *k2, const char *kid2)
{
    char j1[4096], j2[4096] = "";

    jwk(k1, kid1, j1, sizeof j1);
    if (k2)
        jwk(k2, kid2, j2, sizeof j2);
    pthread_mutex_lock(&srv.mu);
    srv.status = status;
    snprintf(srv.body, sizeof srv.body, "{\"keys\":[%s%s%s]}", j1, k2 ? "," : "", j2);
    pthread_mutex_unlock(&srv.mu);
}

static int srv_requests(void)
{
    int n;
    pthread_mutex_lock(&srv.mu);
    n = srv.requests;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

static void srv_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;

    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(srv.fd >= 0);
    assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(srv.fd, 16), 0);
    assert_int_equal(getsockname(srv.fd, (struct sockaddr *)&a, &len), 0);
    srv.port = ntohs(a.sin_port);
    srv.stop = 0;
    assert_int_equal(pthread_create(&srv.thread, NULL, srv_main, NULL), 0);
}

static void srv_stop(void)
{
    __atomic_store_n(&srv.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(srv.thread, NULL);
    close(srv.fd);
}

static void test_jwks_url(void **state)
{
    char url[64], err[512];
    rte_auth_opts o = {.issuer = ISS,
                       .audience = AUD,
                       .clock_skew_s = 60,
                       .refresh_ms = 3600000,
                       .min_refresh_ms = 0};
    rte_auth *a;

    (void)state;
    srv_start();
    srv_set(200, rsa1, "r1", NULL, NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", srv.port);
    o.jwks_url = url;
    a = rte_auth_new(&o, err, sizeof err);
    if (!a)
        fail_msg("rte_auth_new: %s", err);
    assert_int_equal(srv_requests(), 1);
    expect(a, mint(rsa1, RS, claims(300, NULL)), RTE_AUTH_OK, NULL);
    assert_int_equal(srv_requests(), 1); /* known kid: no fetch */
    /* key rotation: the provider publishes r2; a token with kid r2 fetches once */
    srv_set(200, rsa1, "r1", rsa2, "r2");
    expect(a, mint(rsa2, "{\"alg\":\"RS256\",\"kid\":\"r2\"}", claims(300, NULL)), RTE_AUTH_OK,
           NULL);
    assert_int_equal(srv_requests(), 2);
    /* the provider fails: an unknown kid is refused, the keys loaded stay */
    srv_set(500, rsa1, "r1", NULL, NULL);
    expect(a, mint(ec1, "{\"alg\":\"ES256\",\"kid\":\"e9\"}", claims(300, NULL)), RTE_AUTH_KEY,
           NULL);
    assert_true(srv_requests() >= 3);
    assert_int_equal(rte_auth_nkeys(a), 2);
    expect(a, mint(rsa2, "{\"alg\":\"RS256\",\"kid\":\"r2\"}", claims(300, NULL)), RTE_AUTH_OK,
           NULL);
    rte_auth_free(a);
    /* periodic re-read: refresh_ms 1 re-reads on the next verify */
    srv_set(200, ec1, "e1", NULL, NULL);
    o.refresh_ms = 1;
    a = rte_auth_new(&o, err, sizeof err);
    assert_non_null(a);
    srv_set(200, ec2, "e2", NULL, NULL);
    usleep(5000);
    expect(a, mint(ec2, "{\"alg\":\"ES256\",\"kid\":\"e2\"}", claims(300, NULL)), RTE_AUTH_OK,
           NULL);
    assert_int_equal(rte_auth_nkeys(a), 1); /* e1 is gone: the set was replaced */
    rte_auth_free(a);
    /* a provider down at start is a start-up error naming the URL */
    srv_set(503, ec1, "e1", NULL, NULL);
    assert_null(rte_auth_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "answered HTTP 503"));
    srv_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_good_rs256, std_jwks),
        cmocka_unit_test_setup(test_good_es256_array_claims, std_jwks),
        cmocka_unit_test_setup(test_wrong_key_and_tampering, std_jwks),
        cmocka_unit_test_setup(test_times_and_skew, std_jwks),
        cmocka_unit_test_setup(test_issuer_audience, std_jwks),
        cmocka_unit_test_setup(test_alg_allow_list, std_jwks),
        cmocka_unit_test_setup(test_scopes, std_jwks),
        cmocka_unit_test_setup(test_malformed, std_jwks),
        cmocka_unit_test_setup(test_unknown_kid_rereads_once, std_jwks),
        cmocka_unit_test_setup(test_no_kid, std_jwks),
        cmocka_unit_test_setup(test_jwks_documents, std_jwks),
        cmocka_unit_test_setup(test_options_and_config, std_jwks),
        cmocka_unit_test_setup(test_memo_expiry_and_withdrawn_key, std_jwks),
        cmocka_unit_test_setup(test_jwks_url, std_jwks),
        cmocka_unit_test(test_bearer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
