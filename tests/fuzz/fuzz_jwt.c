/*
 * fuzz_jwt.c - libFuzzer target: rte_auth_verify and rte_auth_load_jwks.
 *
 * The first byte picks what the rest is:
 *   0  a compact token, verified as it is (shape, base64url, header JSON,
 *      alg allow-list, key lookup, signature)
 *   1  a claims document: the harness signs it (ES256, a key of its own,
 *      kid "f1") so the claims parser and checks are reached at all
 *   2  a JWKS document, loaded; then a token the harness signed verifies
 *      or not, never crashes
 * Invariants: a refusal names its reason (non-empty message, a known
 * label); an accepted token has a non-empty principal of valid id text,
 * scopes of RFC 6749 scope characters separated by single spaces, an
 * expiry not in the past beyond the skew, and rte_auth_has_scope finds
 * every scope it lists.
 */
#include "fuzz.h"
#include "rte/auth.h"
#include "rte/crypto.h"
#include "rte/input.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#define NOW 1796000000
#define SKEW 60

static rte_auth *auth;
static EVP_PKEY *key;

/* unpadded base64url of n bytes; out has room for 4*ceil(n/3)+1 bytes */
static void b64url(const unsigned char *in, size_t n, char *out)
{
    rte_base64url_encode(in, n, out, (n + 2) / 3 * 4 + 1);
}

static void coord(const char *param, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char buf[32];

    FUZZ_ASSERT(EVP_PKEY_get_bn_param(key, param, &bn) == 1);
    BN_bn2binpad(bn, buf, 32);
    BN_free(bn);
    b64url(buf, 32, out);
}

static void jwks(char *out, size_t len)
{
    char x[64], y[64];

    coord(OSSL_PKEY_PARAM_EC_PUB_X, x);
    coord(OSSL_PKEY_PARAM_EC_PUB_Y, y);
    snprintf(
        out, len,
        "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"f1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
        x, y);
}

static void init(void)
{
    char doc[512], err[256];
    const char *path;
    rte_auth_opts o = {.issuer = "https://idp.test/",
                       .audience = "rte",
                       .clock_skew_s = SKEW,
                       .min_refresh_ms = 0};

    fuzz_quiet();
    key = EVP_EC_gen("P-256");
    FUZZ_ASSERT(key != NULL);
    jwks(doc, sizeof doc);
    path = fuzz_file((const uint8_t *)doc, strlen(doc));
    o.jwks_file = path;
    auth = rte_auth_new(&o, err, sizeof err);
    FUZZ_ASSERT(auth != NULL);
}

/* "<b64 header>.<b64 claims>.<b64 raw r||s>" signed with the harness's key; malloc'd */
static char *sign(const char *claims, size_t n)
{
    static const char hdr[] = "{\"alg\":\"ES256\",\"kid\":\"f1\"}";
    char *tok = malloc(2 * (sizeof hdr + n) + 200);
    unsigned char der[80], raw[64];
    size_t derlen = sizeof der, len;
    const unsigned char *p = der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ECDSA_SIG *sig;

    FUZZ_ASSERT(tok && ctx);
    b64url((const unsigned char *)hdr, sizeof hdr - 1, tok);
    len = strlen(tok);
    tok[len++] = '.';
    b64url((const unsigned char *)claims, n, tok + len);
    len = strlen(tok);
    FUZZ_ASSERT(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
    FUZZ_ASSERT(EVP_DigestSign(ctx, der, &derlen, (unsigned char *)tok, len) == 1);
    EVP_MD_CTX_free(ctx);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    FUZZ_ASSERT(sig != NULL);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
    ECDSA_SIG_free(sig);
    tok[len++] = '.';
    b64url(raw, 64, tok + len);
    return tok;
}

static void check_token(const rte_auth_token *t)
{
    const char *s = t->scopes;
    char err[256];

    FUZZ_ASSERT(t->principal[0] != '\0');
    FUZZ_ASSERT(rte_input_id(t->principal, strlen(t->principal), RTE_AUTH_PRINCIPAL_MAX, NULL, err,
                             sizeof err) == 0);
    FUZZ_ASSERT(t->exp + SKEW > NOW);
    FUZZ_ASSERT(s[0] != ' ' && (s[0] == '\0' || s[strlen(s) - 1] != ' '));
    FUZZ_ASSERT(strstr(s, "  ") == NULL);
    while (*s) {
        char one[RTE_AUTH_SCOPES_MAX];
        size_t n = strcspn(s, " ");
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT(s[i] > 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\');
        memcpy(one, s, n);
        one[n] = '\0';
        FUZZ_ASSERT(rte_auth_has_scope(t->scopes, one));
        s += n;
        while (*s == ' ')
            s++;
    }
}

static void verify(const char *tok, size_t n)
{
    rte_auth_token t;
    char err[512] = "";
    int rc = rte_auth_verify(auth, tok, n, NOW, &t, err, sizeof err);

    if (rc == RTE_AUTH_OK) {
        check_token(&t);
        return;
    }
    FUZZ_ASSERT(rc < 0 && rc > -RTE_AUTH_NREASONS);
    FUZZ_ASSERT(err[0] != '\0');
    FUZZ_ASSERT(strcmp(rte_auth_reason(rc), "unknown") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char good[] = "{\"iss\":\"https://idp.test/\",\"aud\":\"rte\",\"exp\":1796000300,"
                               "\"sub\":\"s\",\"scope\":\"a b\"}";
    char err[256], doc[512], *tok;

    if (!auth)
        init();
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        verify((const char *)data + 1, size - 1);
        break;
    case 1:
        if (size - 1 > 8192)
            return 0;
        tok = sign((const char *)data + 1, size - 1);
        verify(tok, strlen(tok));
        free(tok);
        break;
    default:
        if (rte_auth_load_jwks(auth, (const char *)data + 1, size - 1, err, sizeof err) < 0)
            FUZZ_ASSERT(err[0] != '\0');
        else
            FUZZ_ASSERT(rte_auth_nkeys(auth) > 0);
        tok = sign(good, sizeof good - 1);
        verify(tok, strlen(tok));
        free(tok);
        jwks(doc, sizeof doc); /* back to the harness's key for the next input */
        FUZZ_ASSERT(rte_auth_load_jwks(auth, doc, strlen(doc), err, sizeof err) == 1);
        break;
    }
    return 0;
}
