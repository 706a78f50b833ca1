/*
 * test_wh_sig.c - signature verification of batch callbacks (wh_sig.c):
 * both schemes, several secrets, several signatures, malformed headers,
 * the timestamp tolerance and the replay ids, and signatures made by the
 * official Standard Webhooks library (npm standardwebhooks 1.3.0, through
 * tests/npm/swh.js) with whsec_ secrets, kept here as golden values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rte/crypto.h"
#include "wh_sig.h"

static const char body[] = "{\"batch_id\":\"b1\",\"status\":\"completed\",\"results\":[]}";
static const int64_t now = 1790000000;

/* the keys of one or two configured secrets, made as wh_conf makes them */
static wh_secrets secrets(const char *a, const char *b)
{
    wh_secrets s = {0};
    char err[256];
    const char *list[] = {a, b};
    for (int i = 0; i < 2 && list[i] != NULL; i++) {
        int n = rte_crypto_webhook_key(list[i], s.key[s.n], err, sizeof err);
        assert_true(n > 0);
        s.len[s.n++] = (size_t)n;
    }
    return s;
}

static void hex_sig(const char *secret, char out[65])
{
    uint8_t mac[32];
    rte_hmac_sha256(secret, strlen(secret), body, strlen(body), mac);
    rte_hex_encode(mac, 32, out);
}

static void std_sig(const char *secret, const char *id, const char *ts, char *out, size_t len)
{
    char msg[512], b64[64];
    uint8_t mac[32];
    snprintf(msg, sizeof msg, "%s.%s.%s", id, ts, body);
    rte_hmac_sha256(secret, strlen(secret), msg, strlen(msg), mac);
    rte_base64_encode(mac, 32, b64, sizeof b64);
    snprintf(out, len, "v1,%s", b64);
}

static const char *last_why;

static enum wh_sig_result verify(const wh_sig_input *in, const wh_secrets *s, const char **scheme,
                                 char *rid)
{
    wh_buf scratch = {0};
    enum wh_sig_result r = wh_sig_verify(in, s, now, 300, &scratch, scheme, rid, 128, &last_why);
    wh_buf_free(&scratch);
    assert_true((r == WH_SIG_OK) == (last_why == NULL));
    return r;
}

static void test_hex_scheme(void **state)
{
    (void)state;
    char sig[80], rid[128];
    const char *scheme;
    wh_secrets s = secrets("new-secret-123", "old-secret-456");
    wh_sig_input in = {body, strlen(body), sig, NULL, NULL, NULL};

    hex_sig("old-secret-456", sig);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);
    assert_string_equal(scheme, "x_webhook_signature");
    assert_int_equal(strncmp(rid, "xs:", 3), 0);
    assert_string_equal(rid + 3, sig);

    char upper[90] = "sha256=";
    for (int i = 0; i < 64; i++)
        upper[7 + i] = (char)(sig[i] >= 'a' ? sig[i] - 32 : sig[i]);
    upper[71] = '\0';
    in.x_signature = upper;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);

    hex_sig("a-third-secret", sig);
    in.x_signature = sig;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MISMATCH);
    in.x_signature = "zz";
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    in.x_signature = NULL;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MISSING);
    assert_string_equal(scheme, "none");
}

static void test_standard_scheme(void **state)
{
    (void)state;
    char sig[128], two[512], ts[24], rid[128];
    const char *scheme;
    wh_secrets s = secrets("new-secret-123", "old-secret-456");
    snprintf(ts, sizeof ts, "%lld", (long long)now - 10);
    std_sig("new-secret-123", "msg_1", ts, sig, sizeof sig);
    wh_sig_input in = {body, strlen(body), NULL, "msg_1", ts, sig};

    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);
    assert_string_equal(scheme, "standard_webhooks");
    assert_string_equal(rid, "wh:msg_1");

    /* several signatures, space separated; one good one is enough */
    char other[128];
    std_sig("unknown-secret", "msg_1", ts, other, sizeof other);
    snprintf(two, sizeof two, "v2,abcd %s %s", other, sig);
    in.wh_signature = two;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);
    snprintf(two, sizeof two, "%s", other);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MISMATCH);

    /* the id is signed: another id fails */
    in.wh_signature = sig;
    in.wh_id = "msg_2";
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MISMATCH);
    in.wh_id = "msg_1";

    /* standard wins over a (valid) X-Webhook-Signature when both are present */
    char hex[80];
    hex_sig("new-secret-123", hex);
    in.x_signature = hex;
    in.wh_signature = other;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MISMATCH);
    assert_string_equal(scheme, "standard_webhooks");
}

static void test_standard_malformed_and_expired(void **state)
{
    (void)state;
    char sig[256], ts[24], rid[128];
    const char *scheme;
    wh_secrets s = secrets("new-secret-123", NULL);
    wh_sig_input in = {body, strlen(body), NULL, "id", "12x", "v1,abc"};
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    in.wh_timestamp = NULL;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    in.wh_timestamp = ts;
    in.wh_signature = "v1,not base64";
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    in.wh_signature = "";
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);

    /* outside +-300 s: expired, but only once the signature is good */
    snprintf(ts, sizeof ts, "%lld", (long long)now - 301);
    std_sig("new-secret-123", "id", ts, sig, sizeof sig);
    in.wh_signature = sig;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_EXPIRED);
    snprintf(ts, sizeof ts, "%lld", (long long)now + 301);
    std_sig("new-secret-123", "id", ts, sig, sizeof sig);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_EXPIRED);
    std_sig("wrong-secret-xx", "id", ts, sig, sizeof sig);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MISMATCH);
    snprintf(ts, sizeof ts, "%lld", (long long)now + 299);
    std_sig("new-secret-123", "id", ts, sig, sizeof sig);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);
    assert_string_equal(wh_sig_reason(WH_SIG_EXPIRED), "expired");
}

/*
 * Golden values from the official library: body above, webhook-id
 * "msg_golden", webhook-timestamp 1790000000 (now - 0), made with
 *   printf '%s' "$body" | node tests/npm/swh.js sign --id msg_golden --ts 1790000000 SECRET
 */
#define WHSEC_32 "whsec_t0g5LdcGzB16cjEvPAuOA4UwMHJCgQIX5YRZ8nFivN4="
#define SIG_32 "v1,OcirbZBQcQTkm6oq3Ys/jbu3osb/yqCBxkaKDZZTUo8="
#define WHSEC_24 "whsec_/ZqXXGa+ZOb/8ty773qQuJqfKn6IkFyL"
#define SIG_24 "v1,qHTNciIOKS35/lloRYm9fRGEdeflNgWFi46LCIBiPUw="

static void test_official_library_signatures_with_whsec_secrets(void **state)
{
    (void)state;
    char rid[128];
    const char *scheme;
    wh_sig_input in = {body, strlen(body), NULL, "msg_golden", "1790000000", SIG_32};

    /* the key is the base64 after whsec_, decoded (the old code used the text: mismatch) */
    wh_secrets s = secrets(WHSEC_32, NULL);
    assert_int_equal(s.len[0], 32);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);
    assert_string_equal(rid, "wh:msg_golden");

    /* the same secret without its padding, as the library also accepts */
    s = secrets("whsec_t0g5LdcGzB16cjEvPAuOA4UwMHJCgQIX5YRZ8nFivN4", NULL);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);

    /* a 24-byte secret (the specification's minimum), second in the list */
    s = secrets("some-text-secret", WHSEC_24);
    in.wh_signature = SIG_24;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);

    /* HMAC keyed with the secret's text is not what the library signs */
    wh_secrets text = {0};
    text.n = 1;
    text.len[0] = strlen(WHSEC_32);
    memcpy(text.key[0], WHSEC_32, text.len[0]);
    in.wh_signature = SIG_32;
    assert_int_equal(verify(&in, &text, &scheme, rid), WH_SIG_MISMATCH);
    assert_string_equal(last_why, "invalid signature");

    /* a rotating sender's header: both signatures, either key is enough */
    in.wh_signature = SIG_24 " " SIG_32;
    s = secrets(WHSEC_32, NULL);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);
    s = secrets(WHSEC_24, NULL);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);

    /* the library's +-5 minutes, both ways */
    wh_buf scratch = {0};
    assert_int_equal(
        wh_sig_verify(&in, &s, 1790000000 + 300, 300, &scratch, &scheme, rid, 128, &last_why),
        WH_SIG_OK);
    assert_int_equal(
        wh_sig_verify(&in, &s, 1790000000 + 301, 300, &scratch, &scheme, rid, 128, &last_why),
        WH_SIG_EXPIRED);
    assert_int_equal(
        wh_sig_verify(&in, &s, 1790000000 - 301, 300, &scratch, &scheme, rid, 128, &last_why),
        WH_SIG_EXPIRED);
    assert_string_equal(last_why, "webhook-timestamp is outside the accepted window");
    wh_buf_free(&scratch);
}

static void test_sha256_prefix_in_any_case(void **state)
{
    (void)state;
    char sig[80], pref[96], rid[128];
    const char *scheme;
    wh_secrets s = secrets("new-secret-123", NULL);
    hex_sig("new-secret-123", sig);
    wh_sig_input in = {body, strlen(body), pref, NULL, NULL, NULL};
    const char *prefixes[] = {"sha256=", "SHA256=", "Sha256=", "sHA256="};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        snprintf(pref, sizeof pref, "%s%s", prefixes[i], sig);
        assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);
        assert_string_equal(rid + 3, sig); /* one replay id whatever the spelling */
    }
    /* another algorithm's name is not a prefix we know: the value is not 64 hex digits */
    snprintf(pref, sizeof pref, "sha512=%s", sig);
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    assert_non_null(strstr(last_why, "X-Webhook-Signature"));
}

static void test_many_signatures_and_other_versions(void **state)
{
    (void)state;
    char good[128], bad[128], list[2048], rid[128];
    const char *scheme;
    wh_secrets s = secrets("new-secret-123", NULL);
    std_sig("new-secret-123", "msg_9", "1790000000", good, sizeof good);
    std_sig("retired-secret", "msg_9", "1790000000", bad, sizeof bad);
    /* twelve stale signatures and an asymmetric one before the good one */
    size_t o = 0;
    for (int i = 0; i < 12; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s ", bad);
    snprintf(list + o, sizeof list - o, "v1a,aGVsbG8= %s", good);
    wh_sig_input in = {body, strlen(body), NULL, "msg_9", "1790000000", list};
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_OK);
    list[o] = '\0';
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MISMATCH);
    /* only other versions: nothing this receiver can check */
    in.wh_signature = "v1a,aGVsbG8= v2,abc";
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    assert_non_null(strstr(last_why, "webhook-signature"));
    /* the base64 of a signature is exact: unpadded is not what the library sends */
    snprintf(list, sizeof list, "%.*s", (int)strlen(good) - 1, good);
    in.wh_signature = list;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
}

static void test_reasons_name_the_header(void **state)
{
    (void)state;
    char rid[128];
    const char *scheme;
    wh_secrets s = secrets("new-secret-123", NULL);
    wh_sig_input in = {body, strlen(body), NULL, NULL, "1790000000", "v1,abc"};
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    assert_non_null(strstr(last_why, "webhook-id: missing"));
    in.wh_id = "msg";
    in.wh_timestamp = "1790000000000"; /* milliseconds */
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    assert_string_equal(last_why, "webhook-timestamp: expected integer Unix seconds");
    in.wh_timestamp = NULL;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MALFORMED);
    assert_string_equal(last_why, "webhook-timestamp: missing");
    in.wh_signature = NULL;
    in.wh_id = NULL;
    assert_int_equal(verify(&in, &s, &scheme, rid), WH_SIG_MISSING);
    assert_non_null(strstr(last_why, "X-Webhook-Signature"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_scheme),
        cmocka_unit_test(test_standard_scheme),
        cmocka_unit_test(test_standard_malformed_and_expired),
        cmocka_unit_test(test_official_library_signatures_with_whsec_secrets),
        cmocka_unit_test(test_sha256_prefix_in_any_case),
        cmocka_unit_test(test_many_signatures_and_other_versions),
        cmocka_unit_test(test_reasons_name_the_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
