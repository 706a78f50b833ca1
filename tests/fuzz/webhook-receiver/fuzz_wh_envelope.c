/*
 * fuzz_wh_envelope.c - libFuzzer target: a message on
 * rte.stedi.batch-results as the webhook-receiver consumer reads it.
 *
 * The input is one Kafka message value. wh_consume does Redis work between
 * reading the envelope and writing the cache, so this target compiles
 * wh_consume.c in (its archive copy is then not linked) and runs the part
 * before Redis, as wh_consume and handle() do: rte_json_parse, the kind,
 * batch_id, id and the part/parts/total/items numbers, then map_all, which
 * maps every callback result or polled item into a cache entry. A result
 * mapped without a failure reason names its member and payer and carries
 * a success entry or, for polled items, a payer error marked as such.
 */
#include "fuzz.h"

#include "wh_consume.c"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    WH.cache.freshness = rte_cache_freshness_default();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], part_id[128];
    cJSON *env = rte_json_parse((const char *)data, size, err, sizeof err);

    if (env == NULL)
        return 0;
    const char *kind = sfield(env, "kind");
    const char *batch_id = sfield(env, "batch_id"), *cid = sfield(env, "id");
    if (kind == NULL || batch_id == NULL || cid == NULL ||
        (strcmp(kind, WH_KIND_CALLBACK) != 0 && strcmp(kind, WH_KIND_POLL_PAGE) != 0 &&
         strcmp(kind, WH_KIND_BATCH_DONE) != 0))
        goto out;
    if (strcmp(kind, WH_KIND_BATCH_DONE) == 0) {
        (void)(long)nfield(env, "items");
        goto out;
    }
    snprintf(part_id, sizeof part_id, "%s:%lld", cid, (long long)nfield(env, "part"));
    wh_item *items = NULL;
    char why[256];
    int n = wh_consume_map(env, kind, &items, why, sizeof why);
    for (int i = 0; i < n; i++) {
        wh_item *it = &items[i];
        FUZZ_ASSERT(it->id != NULL);
        if (it->fail != NULL)
            continue;
        FUZZ_ASSERT(it->member != NULL && it->partner != NULL);
        FUZZ_ASSERT(!it->entry.is_error && it->entry.fresh_until_ms > it->entry.cached_at_ms);
    }
    free(items);
    if (strcmp(kind, WH_KIND_CALLBACK) == 0) {
        (void)(int)nfield(env, "parts");
        (void)(long)nfield(env, "total");
    }
out:
    cJSON_Delete(env);
    return 0;
}
