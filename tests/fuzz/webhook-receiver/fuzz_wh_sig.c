/*
 * fuzz_wh_sig.c - libFuzzer target: the signature headers of a batch
 * callback (wh_sig_verify).
 *
 * Input, one header per line ("-" alone = absent): X-Webhook-Signature,
 * webhook-id, webhook-timestamp, webhook-signature, then the body (the
 * rest). A signature header of exactly "SIGN" is replaced by the right
 * signature for the input under the first secret, so the fuzzer reaches
 * the paths after a match too (timestamp window, replay id). Invariants:
 * a request with neither signature header is MISSING; a correctly signed
 * one is never MISMATCH or MALFORMED for want of a readable signature, is
 * OK exactly when its timestamp is within the tolerance, and then names
 * its replay id.
 */
#include "fuzz.h"
#include "rte/crypto.h"
#include "wh_sig.h"

#define NOW_S 1790000000LL
#define TOLERANCE_S 300

static const char *absent(const char *s)
{
    return s != NULL && strcmp(s, "-") == 0 ? NULL : s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static wh_buf scratch; /* kept between inputs, as the service keeps one per worker */
    static const char secret0[] = "whsec-fuzz-one", secret1[] = "whsec-fuzz-two";
    static wh_secrets secrets; /* keys as the service derives them (no whsec_ prefix: the text) */
    if (secrets.n == 0) {
        memcpy(secrets.key[0], secret0, sizeof secret0 - 1);
        memcpy(secrets.key[1], secret1, sizeof secret1 - 1);
        secrets.len[0] = sizeof secret0 - 1;
        secrets.len[1] = sizeof secret1 - 1;
        secrets.n = 2;
    }
    char *f[5], xsig[2 * RTE_SHA256_LEN + 1], stdsig[80], replay[300];
    uint8_t mac[RTE_SHA256_LEN];
    const char *scheme = NULL, *why = NULL;
    int signed_x = 0, signed_std = 0;
    char *buf = fuzz_fields(data, size, f, 5);

    if (f[4] == NULL) {
        free(buf);
        return 0;
    }
    wh_sig_input in = {f[4], strlen(f[4]), absent(f[0]), absent(f[1]), absent(f[2]), absent(f[3])};
    if (in.x_signature != NULL && strcmp(in.x_signature, "SIGN") == 0) {
        rte_hmac_sha256(secret0, sizeof secret0 - 1, in.body, in.body_len, mac);
        rte_hex_encode(mac, sizeof mac, xsig);
        in.x_signature = xsig;
        signed_x = 1;
    }
    if (in.wh_signature != NULL && strcmp(in.wh_signature, "SIGN") == 0 && in.wh_id != NULL &&
        in.wh_timestamp != NULL) {
        size_t n = strlen(in.wh_id) + strlen(in.wh_timestamp) + in.body_len + 3;
        char *msg = malloc(n);
        FUZZ_ASSERT(msg != NULL);
        int k = snprintf(msg, n, "%s.%s.", in.wh_id, in.wh_timestamp);
        memcpy(msg + k, in.body, in.body_len);
        rte_hmac_sha256(secret0, sizeof secret0 - 1, msg, (size_t)k + in.body_len, mac);
        free(msg);
        memcpy(stdsig, "v1,", 3);
        rte_base64_encode(mac, sizeof mac, stdsig + 3, sizeof stdsig - 3);
        in.wh_signature = stdsig;
        signed_std = 1;
    }

    replay[0] = '\0';
    enum wh_sig_result r = wh_sig_verify(&in, &secrets, NOW_S, TOLERANCE_S, &scratch, &scheme,
                                         replay, sizeof replay, &why);
    FUZZ_ASSERT(scheme != NULL && wh_sig_reason(r) != NULL);
    if (in.wh_signature == NULL && in.x_signature == NULL)
        FUZZ_ASSERT(r == WH_SIG_MISSING);
    if (signed_x && in.wh_signature == NULL)
        FUZZ_ASSERT(r == WH_SIG_OK && strncmp(replay, "xs:", 3) == 0);
    if (signed_std && r != WH_SIG_MALFORMED) {
        char *end;
        long long ts = strtoll(in.wh_timestamp, &end, 10);
        FUZZ_ASSERT(r != WH_SIG_MISMATCH);
        FUZZ_ASSERT((r == WH_SIG_OK) == (ts >= NOW_S - TOLERANCE_S && ts <= NOW_S + TOLERANCE_S));
    }
    if (r == WH_SIG_OK)
        FUZZ_ASSERT(strncmp(replay, "wh:", 3) == 0 || strncmp(replay, "xs:", 3) == 0);
    free(buf);
    return 0;
}
