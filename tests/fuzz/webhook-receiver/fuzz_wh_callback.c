/*
 * fuzz_wh_callback.c - libFuzzer target: a batch-callback body, from the
 * HTTP handler to what the consumer reads.
 *
 * The input is the body of POST /api/v1/batch-callback. It is validated
 * as the handler does (wh_callback_parse); a body that passes is cut into
 * envelopes (wh_callback_envelopes, small parts so that callbacks with a
 * few results already span several) and each envelope is read back as
 * wh_consume reads it. Invariants: every envelope is JSON with the right
 * part numbers; the results the envelopes carry, in order, are exactly the
 * results that were validated (the envelopes copy each result's raw bytes,
 * found by a scanner of their own, so this is where the two could
 * disagree); and every completed result maps into a cache entry
 * (rte_cache_entry_from_callback), as validation promised.
 */
#include "fuzz.h"
#include "rte/cache_entry.h"
#include "rte/json.h"
#include "wh_callback.h"

#define NOW_MS 1767571200000LL /* 2026-01-05T00:00:00Z */

static int int_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    FUZZ_ASSERT(cJSON_IsNumber(v));
    return v->valueint;
}

/* the envelopes carry the validated results, in order, and the consumer can map them */
static void check_envelopes(const wh_callback *cb, const wh_envelopes *env)
{
    rte_cache_freshness f = rte_cache_freshness_default();
    const cJSON *want = cb->results ? cb->results->child : NULL;
    char err[256];

    FUZZ_ASSERT(env->n >= 1);
    for (int p = 0; p < env->n; p++) {
        cJSON *e = rte_json_parse(env->msg[p], env->len[p], err, sizeof err);
        if (e == NULL) {
            fprintf(stderr, "envelope %d is not JSON (%s):\n%.*s\n", p, err, (int)env->len[p],
                    env->msg[p]);
            abort();
        }
        FUZZ_ASSERT(int_member(e, "part") == p && int_member(e, "parts") == env->n);
        FUZZ_ASSERT(int_member(e, "total") == cb->nresults);
        const cJSON *got, *res = cJSON_GetObjectItemCaseSensitive(e, "results");
        FUZZ_ASSERT(cJSON_IsArray(res));
        cJSON_ArrayForEach(got, res)
        {
            FUZZ_ASSERT(want != NULL);
            /* printed, not cJSON_Compare: that looks members up by name, so an
             * object with a repeated key never equals even itself */
            char *a = cJSON_PrintUnformatted(want), *b = cJSON_PrintUnformatted(got);
            FUZZ_ASSERT(a != NULL && b != NULL);
            if (strcmp(a, b) != 0) {
                fprintf(stderr,
                        "envelope %d carries a result that was not validated:\n"
                        "validated: %s\ncarried:   %s\n",
                        p, a, b);
                abort();
            }
            free(a);
            free(b);
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(got, "status");
            if (cJSON_IsString(st) && strcmp(st->valuestring, "completed") == 0) {
                rte_cache_entry ent;
                FUZZ_ASSERT(rte_cache_entry_from_callback(
                                cJSON_GetObjectItemCaseSensitive(got, "eligibility"), NOW_MS, &f,
                                &ent, err, sizeof err) == 0);
                FUZZ_ASSERT(strcmp(ent.source, "stedi_batch") == 0 && !ent.is_error);
            }
            want = want->next;
        }
        cJSON_Delete(e);
    }
    FUZZ_ASSERT(want == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_callback cb;
    wh_envelopes env;
    char err[300], id[WH_CONTENT_ID_LEN + 1];

    if (wh_callback_parse((const char *)data, size, 10000, &cb, err, sizeof err) != 0) {
        FUZZ_ASSERT(err[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(cb.batch_id != NULL && cb.status != NULL && cb.nresults >= 0);
    wh_content_id(cb.body, cb.body_len, id);
    FUZZ_ASSERT(strlen(id) == WH_CONTENT_ID_LEN);
    FUZZ_ASSERT(wh_callback_envelopes(&cb, id, NOW_MS, 200, &env) == 0);
    check_envelopes(&cb, &env);
    wh_envelopes_free(&env);
    wh_callback_free(&cb);
    return 0;
}
