/*
 * test_wh_sig.c - signature verification of batch callbacks (wh_sig.c):
 * both schemes, several secrets, several signatures, malformed headers,
 * the timestamp tolerance and the replay ids.
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

static wh_secrets secrets(const char *a, const char *b)
{
    wh_secrets s = {0};
    s.key[s.n] = a;
    s.len[s.n++] = strlen(a);
    if (b != NULL) {
        s.key[s.n] = b;
        s.len[s.n++] = strlen(b);
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

static enum wh_sig_result verify(const wh_sig_input *in, const wh_secrets *s, const char **scheme,
                                 char *rid)
{
    wh_buf scratch = {0};
    enum wh_sig_result r = wh_sig_verify(in, s, now, 300, &scratch, scheme, rid, 128);
    wh_buf_free(&scratch);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_scheme),
        cmocka_unit_test(test_standard_scheme),
        cmocka_unit_test(test_standard_malformed_and_expired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
