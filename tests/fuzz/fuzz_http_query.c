/*
 * fuzz_http_query.c - libFuzzer target: query string decoding
 * (rte_http_req_query).
 *
 * Input: the parameter name on the first line, the raw query string (what
 * follows '?' in the request target) after it. The decoded value must fit
 * the caller's buffer with its NUL, and the length returned must be the
 * string's; a small buffer is tried too, as the gateway's handlers pass.
 */
#include "fuzz.h"
#include "fuzz_http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[2], small[8], big[300];
    char *buf = fuzz_fields(data, size, f, 2);
    fuzz_http_req q;

    if (f[1] == NULL) {
        free(buf);
        return 0;
    }
    fuzz_http_req_init(&q, "/v1/eligibility/M1", "/v1/eligibility/", f[1], NULL, NULL, 0);
    const char *names[] = {f[0], "trading_partner_id", "cache_control", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int n = rte_http_req_query(q.req, names[i], big, sizeof big, NULL, 0);
        FUZZ_ASSERT(n < (int)sizeof big);
        if (n >= 0)
            FUZZ_ASSERT(big[n] == '\0');
        n = rte_http_req_query(q.req, names[i], small, sizeof small, NULL, 0);
        FUZZ_ASSERT(n < (int)sizeof small);
    }
    fuzz_http_req_fini(&q);
    free(buf);
    return 0;
}
