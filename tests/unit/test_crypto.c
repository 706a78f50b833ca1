/*
 * test_crypto.c - HMAC-SHA256 against RFC 4231, constant-time compare,
 * hex/base64 (RFC 4648 vectors, malformed input), member keys, UUIDs,
 * webhook signing keys (Standard Webhooks whsec_ secrets and text secrets).
 *
 * HMAC keeps a keyed context per thread: the key-switching and thread tests
 * check it against OpenSSL's one-shot HMAC(), which keeps nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "rte/crypto.h"

static void fill(uint8_t *buf, uint8_t v, size_t n)
{
    memset(buf, v, n);
}

static void assert_hmac(const uint8_t *key, size_t keylen, const void *msg, size_t msglen,
                        const char *want_hex, size_t compare_bytes)
{
    uint8_t mac[RTE_SHA256_LEN];
    char hex[2 * RTE_SHA256_LEN + 1];

    assert_int_equal(rte_hmac_sha256(key, keylen, msg, msglen, mac), 0);
    rte_hex_encode(mac, compare_bytes, hex);
    assert_string_equal(hex, want_hex);
}

static void test_hmac_rfc4231(void **state)
{
    uint8_t key[131], data[50];

    (void)state;
    /* test case 1 */
    fill(key, 0x0b, 20);
    assert_hmac(key, 20, "Hi There", 8,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32);
    /* test case 2 */
    assert_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32);
    /* test case 3 */
    fill(key, 0xaa, 20);
    fill(data, 0xdd, 50);
    assert_hmac(key, 20, data, 50,
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 32);
    /* test case 4 */
    for (int i = 0; i < 25; i++)
        key[i] = (uint8_t)(i + 1);
    fill(data, 0xcd, 50);
    assert_hmac(key, 25, data, 50,
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 32);
    /* test case 5 (truncated to 128 bits) */
    fill(key, 0x0c, 20);
    assert_hmac(key, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b", 16);
    /* test case 6 */
    fill(key, 0xaa, 131);
    assert_hmac(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 32);
    /* test case 7 */
    {
        const char *m = "This is a test using a larger than block-size key and a larger than "
                        "block-size data. The key needs to be hashed before being used by the "
                        "HMAC algorithm.";
        assert_hmac(key, 131, m, strlen(m),
                    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 32);
    }
    /* empty key and message are valid inputs */
    assert_hmac(NULL, 0, NULL, 0,
                "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", 32);
}

static void test_ct_equal(void **state)
{
    uint8_t a[64], b[64];

    (void)state;
    fill(a, 0x5a, sizeof(a));
    fill(b, 0x5a, sizeof(b));
    assert_int_equal(rte_ct_equal(a, b, sizeof(a)), 1);
    b[63] ^= 1;
    assert_int_equal(rte_ct_equal(a, b, sizeof(a)), 0);
    b[63] ^= 1;
    b[0] ^= 0x80;
    assert_int_equal(rte_ct_equal(a, b, sizeof(a)), 0);
    assert_int_equal(rte_ct_equal(a, b, 0), 1);
}

static void test_hex(void **state)
{
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    uint8_t out[8];
    char hex[13];

    (void)state;
    rte_hex_encode(in, sizeof(in), hex);
    assert_string_equal(hex, "00017f80abff");
    assert_int_equal(rte_hex_decode(hex, out, sizeof(out)), 6);
    assert_memory_equal(out, in, sizeof(in));
    assert_int_equal(rte_hex_decode("00017F80ABFF", out, sizeof(out)), 6);
    assert_memory_equal(out, in, sizeof(in));
    assert_int_equal(rte_hex_decode("", out, sizeof(out)), 0);
    rte_hex_encode(in, 0, hex);
    assert_string_equal(hex, "");

    assert_int_equal(rte_hex_decode("abc", out, sizeof(out)), -1); /* odd */
    assert_int_equal(rte_hex_decode("zz", out, sizeof(out)), -1);  /* not hex */
    assert_int_equal(rte_hex_decode("0g", out, sizeof(out)), -1);
    assert_int_equal(rte_hex_decode(" 0a", out, sizeof(out)), -1);
    assert_int_equal(rte_hex_decode("00112233", out, 3), -1); /* too long */
    assert_int_equal(rte_hex_decode("001122", out, 3), 3);
    assert_int_equal(rte_hex_decode(NULL, out, sizeof(out)), -1);
}

static void test_base64_vectors(void **state)
{
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char out[16];
    uint8_t dec[16];

    (void)state;
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(plain[i]);
        assert_int_equal(rte_base64_encode((const uint8_t *)plain[i], n, out, sizeof(out)),
                         strlen(enc[i]));
        assert_string_equal(out, enc[i]);
        assert_int_equal(rte_base64_decode(enc[i], dec, sizeof(dec)), (int)n);
        assert_memory_equal(dec, plain[i], n);
    }
}

static void test_base64_binary_round_trip(void **state)
{
    uint8_t in[256], dec[256];
    char out[4 * 86 + 1];

    (void)state;
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)(255 - i);
    for (size_t n = 0; n <= sizeof(in); n += 37) {
        size_t len = rte_base64_encode(in, n, out, sizeof(out));
        assert_int_equal(len, (n + 2) / 3 * 4);
        assert_int_equal(rte_base64_decode(out, dec, sizeof(dec)), (int)n);
        assert_memory_equal(dec, in, n);
    }
    assert_int_equal(rte_base64_encode(in, 256, out, sizeof(out)), 344);
    assert_int_equal(rte_base64_decode(out, dec, sizeof(dec)), 256);
    assert_memory_equal(dec, in, 256);
}

static void test_base64url_unpadded(void **state)
{
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    const uint8_t url[] = {0xfb, 0xff, 0xbf}; /* "+/+/" in standard base64 */
    char out[16];

    (void)state;
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(plain[i]);
        assert_int_equal(rte_base64url_encode((const uint8_t *)plain[i], n, out, sizeof(out)),
                         strlen(enc[i]));
        assert_string_equal(out, enc[i]);
    }
    assert_int_equal(rte_base64url_encode(url, 3, out, sizeof(out)), 4);
    assert_string_equal(out, "-_-_");
    /* exactly the text plus the NUL fits; one byte less does not */
    assert_int_equal(rte_base64url_encode((const uint8_t *)"fooba", 5, out, 8), 7);
    assert_int_equal(rte_base64url_encode((const uint8_t *)"fooba", 5, out, 7), 0);
    assert_string_equal(out, "");
}

static void test_base64_malformed(void **state)
{
    const char *bad[] = {
        "Zg=",      /* length not a multiple of 4 */
        "Zg",       /* unpadded */
        "Z===",     /* too much padding */
        "====",     /* only padding */
        "Zg=a",     /* padding in the middle */
        "Z=g=",     /* padding in the middle */
        "Zg==Zg==", /* padding before the end */
        "Zm9v!A==", /* not in the alphabet */
        "Zm9 Zg==", /* whitespace */
        "Zm-_",     /* URL-safe alphabet */
        "Zh==",     /* non-zero unused bits */
        "Zm9=",     /* non-zero unused bits */
    };
    uint8_t dec[16];
    char out[8];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rte_base64_decode(bad[i], dec, sizeof(dec)) != -1)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(rte_base64_decode("Zm9vYmFy", dec, 5), -1); /* output too small */
    assert_int_equal(rte_base64_decode("Zm9vYmFy", dec, 6), 6);
    assert_int_equal(rte_base64_decode(NULL, dec, sizeof(dec)), -1);
    /* encode refuses a short buffer: "foobar" needs 8 + 1 */
    assert_int_equal(rte_base64_encode((const uint8_t *)"foobar", 6, out, 8), 0);
    assert_string_equal(out, "");
}

/* key of secret, or -1; err filled */
static int webhook_key(const char *secret, uint8_t key[RTE_WEBHOOK_KEY_MAX], char *err)
{
    err[0] = '\0';
    return rte_crypto_webhook_key(secret, key, err, 256);
}

static void test_webhook_key_whsec_is_decoded(void **state)
{
    uint8_t key[RTE_WEBHOOK_KEY_MAX], want[64];
    char err[256], secret[128];

    (void)state;
    for (int i = 0; i < 64; i++)
        want[i] = (uint8_t)(i * 7 + 1);
    /* 24, 32, 33 and 64 bytes, padded and unpadded (the official libraries accept both) */
    const size_t sizes[] = {24, 32, 33, 64};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        char b64[100];
        size_t n = rte_base64_encode(want, sizes[k], b64, sizeof b64);
        snprintf(secret, sizeof secret, "whsec_%s", b64);
        assert_int_equal(webhook_key(secret, key, err), (int)sizes[k]);
        assert_memory_equal(key, want, sizes[k]);
        while (n > 0 && b64[n - 1] == '=')
            b64[--n] = '\0';
        snprintf(secret, sizeof secret, "whsec_%s", b64);
        assert_int_equal(webhook_key(secret, key, err), (int)sizes[k]);
        assert_memory_equal(key, want, sizes[k]);
    }
    /* the secret of the golden signatures in test_wh_sig.c */
    assert_int_equal(webhook_key("whsec_/ZqXXGa+ZOb/8ty773qQuJqfKn6IkFyL", key, err), 24);
    assert_int_equal(key[0], 0xfd);
    assert_int_equal(key[23], 0x8b);
}

static void test_webhook_key_text_is_its_bytes(void **state)
{
    uint8_t key[RTE_WEBHOOK_KEY_MAX];
    char err[256], longer[RTE_WEBHOOK_KEY_MAX + 2];

    (void)state;
    /* no whsec_ prefix: the text itself, as before (the development default has a hyphen) */
    assert_int_equal(webhook_key("whsec-test", key, err), 10);
    assert_memory_equal(key, "whsec-test", 10);
    assert_int_equal(webhook_key("WHSEC_AAAA", key, err), 10); /* the prefix is lower-case */
    assert_memory_equal(key, "WHSEC_AAAA", 10);
    assert_int_equal(webhook_key("x", key, err), 1);
    memset(longer, 'k', RTE_WEBHOOK_KEY_MAX);
    longer[RTE_WEBHOOK_KEY_MAX] = '\0';
    assert_int_equal(webhook_key(longer, key, err), RTE_WEBHOOK_KEY_MAX);
    longer[RTE_WEBHOOK_KEY_MAX] = 'k';
    longer[RTE_WEBHOOK_KEY_MAX + 1] = '\0';
    assert_int_equal(webhook_key(longer, key, err), -1);
    assert_non_null(strstr(err, "longer than 256 bytes"));
    assert_int_equal(webhook_key("", key, err), -1);
    assert_int_equal(webhook_key(NULL, key, err), -1);
}

static void test_webhook_key_malformed_whsec(void **state)
{
    uint8_t key[RTE_WEBHOOK_KEY_MAX], raw[80];
    char err[256], b64[120], secret[140];

    (void)state;
    const char *not_base64[] = {
        "whsec_not base64 at all!!!!!!!!!!!!!!",     /* space, '!' */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",     /* 37 characters: one too many for a group */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=A",  /* padding inside */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La-_Sw",    /* URL-safe alphabet */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw===", /* too much padding */
    };
    for (size_t i = 0; i < sizeof not_base64 / sizeof *not_base64; i++) {
        if (webhook_key(not_base64[i], key, err) != -1)
            fail_msg("accepted '%s'", not_base64[i]);
        assert_non_null(strstr(err, "not base64"));
        assert_null(strstr(err, not_base64[i] + 6)); /* never quotes the secret */
    }
    /* sizes outside the specification's 24..64 bytes */
    memset(raw, 0x5a, sizeof raw);
    const size_t sizes[] = {0, 16, 23, 65};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        rte_base64_encode(raw, sizes[k], b64, sizeof b64);
        snprintf(secret, sizeof secret, "whsec_%s", b64);
        assert_int_equal(webhook_key(secret, key, err), -1);
        assert_non_null(strstr(err, "24 to 64 bytes"));
    }
    rte_base64_encode(raw, 80, b64, sizeof b64);
    snprintf(secret, sizeof secret, "whsec_%s", b64);
    assert_int_equal(webhook_key(secret, key, err), -1);
    assert_non_null(strstr(err, "at most 88"));
}

static void test_member_key(void **state)
{
    char a[RTE_MEMBER_KEY_LEN + 1], b[RTE_MEMBER_KEY_LEN + 1], c[RTE_MEMBER_KEY_LEN + 1];

    (void)state;
    rte_crypto_member_key("deploy-secret", "M123456789", a);
    /* HMAC-SHA256("deploy-secret", "M123456789"), first 16 bytes, hex */
    assert_string_equal(a, "157de15de059944c41319bd0bb022396");
    rte_crypto_member_key("deploy-secret", "M123456789", b);
    assert_string_equal(a, b);
    rte_crypto_member_key("other-secret", "M123456789", c);
    assert_string_not_equal(a, c);
    rte_crypto_member_key("deploy-secret", "M123456780", c);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(c), RTE_MEMBER_KEY_LEN);
    assert_int_equal(strspn(c, "0123456789abcdef"), RTE_MEMBER_KEY_LEN);
}

/* hex of the first 16 bytes of one-shot HMAC-SHA256: what rte_crypto_member_key must give */
static void oneshot_member_key(const char *secret, const char *id, char out[RTE_MEMBER_KEY_LEN + 1])
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const uint8_t *)id, strlen(id),
                         mac, &len));
    assert_int_equal(len, RTE_SHA256_LEN);
    rte_hex_encode(mac, RTE_MEMBER_KEY_LEN / 2, out);
}

/* 0 if rte_crypto_member_key agrees with one-shot HMAC for secrets taken in turn, on this
 * thread; secrets include the empty one and two longer than any cached key that differ only
 * in their last byte. */
static int member_keys_agree(int rounds)
{
    char long1[300], long2[300];
    const char *secrets[] = {"deploy-secret", "other-secret", "", long1, long2, "deploy-secret2"};
    const int nsecrets = (int)(sizeof(secrets) / sizeof(secrets[0]));

    memset(long1, 'L', sizeof(long1) - 1);
    long1[sizeof(long1) - 1] = '\0';
    memcpy(long2, long1, sizeof(long2));
    long2[sizeof(long2) - 2] = 'M';
    for (int i = 0; i < rounds; i++) {
        char id[16], got[RTE_MEMBER_KEY_LEN + 1], want[RTE_MEMBER_KEY_LEN + 1];
        const char *secret = secrets[i % nsecrets];
        snprintf(id, sizeof(id), "M%09d", i / 3); /* each id under several secrets */
        rte_crypto_member_key(secret, id, got);
        oneshot_member_key(secret, id, want);
        if (strcmp(got, want) != 0)
            return -1;
        rte_crypto_member_key(secret, id, got); /* the same key twice in a row */
        if (strcmp(got, want) != 0)
            return -1;
    }
    return 0;
}

/*
 * member keys are remembered per thread: passes over more ids than the memo
 * has slots (so slots are taken over), of lengths 1-70 (past the longest
 * remembered id), and a pass under another secret in between, all agree
 * with one-shot HMAC every time
 */
static void test_member_key_memo(void **state)
{
    char id[80], got[RTE_MEMBER_KEY_LEN + 1], want[RTE_MEMBER_KEY_LEN + 1];

    (void)state;
    for (int pass = 0; pass < 4; pass++) {
        const char *secret = pass == 2 ? "other-secret" : "deploy-secret";
        for (int i = 0; i < 500; i++) {
            size_t len = 1 + (size_t)i % 70, n = (size_t)snprintf(id, sizeof id, "%d", i);
            if (n < len)
                memset(id + n, 'x', len - n); /* the number, padded to len */
            id[len] = '\0';
            rte_crypto_member_key(secret, id, got);
            oneshot_member_key(secret, id, want);
            assert_string_equal(got, want);
        }
    }
}

static void test_member_key_switching_secrets(void **state)
{
    char a[RTE_MEMBER_KEY_LEN + 1], b[RTE_MEMBER_KEY_LEN + 1], secret[16] = "deploy-secret";

    (void)state;
    assert_int_equal(member_keys_agree(2000), 0);
    /* the cache compares key bytes, not pointers: the same buffer with a new secret re-keys */
    rte_crypto_member_key(secret, "M123456789", a);
    assert_string_equal(a, "157de15de059944c41319bd0bb022396");
    secret[0] = 'D';
    rte_crypto_member_key(secret, "M123456789", b);
    oneshot_member_key(secret, "M123456789", a);
    assert_string_equal(b, a);
    /* rte_hmac_sha256 with arbitrary keys shares the context; the RFC vectors still hold */
    test_hmac_rfc4231(state);
    rte_crypto_member_key("deploy-secret", "M123456789", a);
    assert_string_equal(a, "157de15de059944c41319bd0bb022396");
}

static void *member_keys_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)member_keys_agree(500);
}

/* Other threads get their own context (freed when they exit: ASan's leak check); several at
 * once do not disturb each other or this thread's. */
static void test_member_key_threads(void **state)
{
    pthread_t t[4];
    void *rc;
    char a[RTE_MEMBER_KEY_LEN + 1];

    (void)state;
    rte_crypto_member_key("deploy-secret", "M123456789", a);
    assert_int_equal(pthread_create(&t[0], NULL, member_keys_thread, NULL), 0);
    assert_int_equal(pthread_join(t[0], &rc), 0);
    assert_int_equal((intptr_t)rc, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, member_keys_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &rc), 0);
        assert_int_equal((intptr_t)rc, 0);
    }
    rte_crypto_member_key("deploy-secret", "M123456789", a);
    assert_string_equal(a, "157de15de059944c41319bd0bb022396");
}

static void test_random_and_uuid(void **state)
{
    uint8_t r1[32], r2[32];
    char u1[37], u2[37];

    (void)state;
    assert_int_equal(rte_random_bytes(r1, sizeof(r1)), 0);
    assert_int_equal(rte_random_bytes(r2, sizeof(r2)), 0);
    assert_memory_not_equal(r1, r2, sizeof(r1));
    assert_int_equal(rte_random_bytes(r1, 0), 0);

    rte_uuid4(u1);
    rte_uuid4(u2);
    assert_int_equal(strlen(u1), 36);
    assert_string_not_equal(u1, u2);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u1[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", u1[i]));
    }
    assert_int_equal(u1[14], '4');
    assert_non_null(strchr("89ab", u1[19]));
}

static int cmp_uuid(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* UUIDs come from a per-thread pool: many in a row (several refills) are all
 * distinct, and a forked child does not repeat what its parent draws next. */
static void test_uuid_pool_unique_and_fork_safe(void **state)
{
    enum { N = 5000 };
    static char ids[N][37];
    char parent[37], child[37] = "";
    int fds[2];

    (void)state;
    for (int i = 0; i < N; i++)
        rte_uuid4(ids[i]);
    qsort(ids, N, sizeof ids[0], cmp_uuid);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);

    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char u[37];
        rte_uuid4(u);
        ssize_t w = write(fds[1], u, 37);
        _exit(w == 37 ? 0 : 1);
    }
    rte_uuid4(parent);
    assert_int_equal(read(fds[0], child, 37), 37);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    assert_string_not_equal(parent, child);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_binary_round_trip),
        cmocka_unit_test(test_base64url_unpadded),
        cmocka_unit_test(test_base64_malformed),
        cmocka_unit_test(test_webhook_key_whsec_is_decoded),
        cmocka_unit_test(test_webhook_key_text_is_its_bytes),
        cmocka_unit_test(test_webhook_key_malformed_whsec),
        cmocka_unit_test(test_member_key),
        cmocka_unit_test(test_member_key_switching_secrets),
        cmocka_unit_test(test_member_key_memo),
        cmocka_unit_test(test_member_key_threads),
        cmocka_unit_test(test_random_and_uuid),
        cmocka_unit_test(test_uuid_pool_unique_and_fork_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
