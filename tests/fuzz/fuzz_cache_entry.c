/*
 * fuzz_cache_entry.c - libFuzzer target: a cache value read from Redis.
 *
 * Redis is shared by every replica and service (and anyone with access can
 * write to it), so a stored value is input like any other:
 * rte_cache_entry_decode must refuse what it cannot read, and what it
 * accepts must encode and decode to the same entry again.
 */
#include "fuzz.h"
#include "rte/cache_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rte_cache_entry e, back, ok;
    char err[256];

    if (rte_cache_entry_decode((const char *)data, size, &e, err, sizeof err) != 0)
        return 0;
    (void)rte_cache_entry_is_fresh(&e, 0);
    (void)rte_cache_entry_age_s(&e, INT64_MAX / 2);
    (void)rte_cache_entry_last_success(&e, &ok);
    char *text = rte_cache_entry_encode(&e);
    FUZZ_ASSERT(text != NULL);
    if (rte_cache_entry_decode(text, strlen(text), &back, err, sizeof err) != 0) {
        fprintf(stderr, "re-encoded entry does not decode: %s\n%s\n", err, text);
        abort();
    }
    FUZZ_ASSERT(back.eligible == e.eligible && back.has_copay == e.has_copay);
    FUZZ_ASSERT(back.cached_at_ms == e.cached_at_ms && back.fresh_until_ms == e.fresh_until_ms);
    FUZZ_ASSERT(back.is_error == e.is_error && back.has_last_success == e.has_last_success);
    free(text);
    return 0;
}
