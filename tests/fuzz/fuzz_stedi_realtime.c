/*
 * fuzz_stedi_realtime.c - libFuzzer target: a Stedi real-time eligibility
 * answer into a cache entry.
 *
 * The input is the body of a 200 from POST .../eligibility/v3, read as
 * rte_stedi_realtime reads it: rte_json_parse, then
 * rte_cache_entry_from_stedi. An entry it accepts must survive the cache:
 * rte_cache_entry_encode then rte_cache_entry_decode must give back the
 * same entry (what the gateway serves is what was mapped).
 */
#include "fuzz.h"
#include "rte/cache_entry.h"
#include "rte/json.h"
#include "rte/stedi_reply.h"

#define NOW_MS 1767571200000LL /* 2026-01-05T00:00:00Z */

/* the entry a cache write then read gives back must be the one written */
static void check_round_trip(const rte_cache_entry *e)
{
    rte_cache_entry back;
    char err[256];
    char *text = rte_cache_entry_encode(e);

    FUZZ_ASSERT(text != NULL);
    if (rte_cache_entry_decode(text, strlen(text), &back, err, sizeof err) != 0) {
        fprintf(stderr, "encoded entry does not decode: %s\n%s\n", err, text);
        abort();
    }
    FUZZ_ASSERT(back.eligible == e->eligible);
    FUZZ_ASSERT(back.has_copay == e->has_copay);
    FUZZ_ASSERT(!e->has_copay || back.copay_amount == e->copay_amount);
    FUZZ_ASSERT(strcmp(back.network_status, e->network_status) == 0);
    FUZZ_ASSERT(strcmp(back.coverage_start, e->coverage_start) == 0);
    FUZZ_ASSERT(strcmp(back.coverage_end, e->coverage_end) == 0);
    FUZZ_ASSERT(back.cached_at_ms == e->cached_at_ms);
    FUZZ_ASSERT(back.fresh_until_ms == e->fresh_until_ms);
    FUZZ_ASSERT(strcmp(back.source, e->source) == 0);
    FUZZ_ASSERT(back.is_error == e->is_error);
    FUZZ_ASSERT(strcmp(back.error_code, e->error_code) == 0);
    FUZZ_ASSERT(strcmp(back.error_message, e->error_message) == 0);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rte_cache_freshness f = rte_cache_freshness_default();
    rte_cache_entry e;
    char err[256];
    cJSON *doc = rte_json_parse((const char *)data, size, err, sizeof err);

    if (doc == NULL)
        return 0;
    if (rte_stedi_reply_read(doc, NULL, "stedi_realtime", NOW_MS, &f, &e, err, sizeof err) == 0)
        check_round_trip(&e);
    else
        FUZZ_ASSERT(err[0] != '\0');
    cJSON_Delete(doc);
    return 0;
}
