/*
 * auth-bench - what a gRPC call's token check costs (libcommon auth).
 *
 * Usage: auth-bench [CALLS]
 *
 * Makes an RSA-2048 and a P-256 key, writes their JWKS to a temporary
 * file, mints RS256 and ES256 tokens (the claims a real M2M token carries,
 * each with its own jti) and times rte_auth_verify CALLS times (default
 * 20,000) on one thread per case:
 *   verify_rs256/es256       1,024 distinct tokens in turn: more than the
 *                            verifier's memo holds, so nearly every call is
 *                            the full check (parse, signature, claims)
 *   verify_rs256/es256_memo  one token again and again: the memo's answer
 *   refuse_alg               an HS256 token, refused after the header
 * Prints
 * one "name us_per_call" line per case and the command that reproduces
 * them. Every timed verify must give the expected answer (exit 1
 * otherwise). Figures are printed, not asserted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "rte/auth.h"
#include "rte/crypto.h"
#include "rte/clock.h"

#define NOW 1796000000
#define NTOK 1024
#define CLAIMS                                                                                     \
    "{\"iss\":\"https://idp.bench/\",\"aud\":\"rte-bench\",\"iat\":1795999000,\"exp\":1796003600," \
    "\"client_id\":\"bench-client\",\"scope\":\"rte:warm:read rte:warm:write "                     \
    "rte:batch:submit\",\"jti\":\"%d\"}"

/* unpadded base64url of n bytes; out has room for 4*ceil(n/3)+1 bytes */
static void b64url(const unsigned char *in, size_t n, char *out)
{
    rte_base64url_encode(in, n, out, (n + 2) / 3 * 4 + 1);
}

static void param(EVP_PKEY *k, const char *name, int pad, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char buf[512];
    int n;

    EVP_PKEY_get_bn_param(k, name, &bn);
    n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    b64url(buf, (size_t)n, out);
}

/* header.claims.signature with jti, signed with k (ES256 as raw r||s) */
static void mint(EVP_PKEY *k, const char *hdr, int jti, char *tok)
{
    char claims[512];
    unsigned char sig[512], raw[64];
    size_t siglen = sizeof sig, n;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    b64url((const unsigned char *)hdr, strlen(hdr), tok);
    n = strlen(tok);
    tok[n++] = '.';
    snprintf(claims, sizeof claims, CLAIMS, jti);
    b64url((const unsigned char *)claims, strlen(claims), tok + n);
    n = strlen(tok);
    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k);
    EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)tok, n);
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        memcpy(sig, raw, 64);
        siglen = 64;
    }
    tok[n++] = '.';
    b64url(sig, siglen, tok + n);
}

/* verify calls times, cycling through ntok tokens */
static int run(rte_auth *a, const char *name, char **tok, int ntok, int want, long calls)
{
    rte_auth_token t;
    char err[512];
    int64_t t0 = rte_clock_mono_ms();

    for (long i = 0; i < calls; i++) {
        const char *one = tok[i % ntok];
        int rc = rte_auth_verify(a, one, strlen(one), NOW, &t, err, sizeof err);
        if (rc != want) {
            fprintf(stderr, "auth-bench: %s: rc %d (%s), wanted %d\n", name, rc, err, want);
            return -1;
        }
    }
    printf("%-17s %.1f\n", name, (double)(rte_clock_mono_ms() - t0) * 1000.0 / (double)calls);
    return 0;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 20000;
    char path[] = "/tmp/auth-bench.XXXXXX", n[600], e[16], x[64], y[64], err[512];
    static char doc[4096], rsbuf[NTOK][1024], esbuf[NTOK][1024];
    char *rs[NTOK], *es[NTOK];
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
    rte_auth_opts o = {.issuer = "https://idp.bench/", .audience = "rte-bench", .clock_skew_s = 60};
    rte_auth *a;
    int fd = mkstemp(path), rc = 0;

    if (calls < 1 || fd < 0 || !rsa || !ec)
        return 2;
    param(rsa, OSSL_PKEY_PARAM_RSA_N, 0, n);
    param(rsa, OSSL_PKEY_PARAM_RSA_E, 0, e);
    param(ec, OSSL_PKEY_PARAM_EC_PUB_X, 32, x);
    param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32, y);
    snprintf(doc, sizeof doc,
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
             n, e, x, y);
    if (write(fd, doc, strlen(doc)) != (ssize_t)strlen(doc))
        return 2;
    close(fd);
    o.jwks_file = path;
    a = rte_auth_new(&o, err, sizeof err);
    unlink(path);
    if (!a) {
        fprintf(stderr, "auth-bench: %s\n", err);
        return 1;
    }
    for (int i = 0; i < NTOK; i++) {
        rs[i] = rsbuf[i];
        es[i] = esbuf[i];
        mint(rsa, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"r\"}", i, rs[i]);
        mint(ec, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"e\"}", i, es[i]);
    }
    printf("case              us_per_call\n");
    if (run(a, "verify_rs256", rs, NTOK, RTE_AUTH_OK, calls) < 0 ||
        run(a, "verify_es256", es, NTOK, RTE_AUTH_OK, calls) < 0 ||
        run(a, "verify_rs256_memo", rs, 1, RTE_AUTH_OK, calls) < 0 ||
        run(a, "verify_es256_memo", es, 1, RTE_AUTH_OK, calls) < 0)
        rc = 1;
    mint(rsa, "{\"alg\":\"HS256\",\"kid\":\"r\"}", 0, rs[0]);
    if (run(a, "refuse_alg", rs, 1, RTE_AUTH_ALG, calls) < 0)
        rc = 1;
    printf("command: %s %ld\n", argv[0], calls);
    rte_auth_free(a);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return rc;
}
