/*
 * fuzz_json.c - libFuzzer target: rte_json_parse and the field getters.
 *
 * Every JSON body the suite reads (callbacks, Stedi answers, gateway
 * requests, Kafka envelopes) goes through rte_json_parse and then the
 * rte_json_* getters. The input is one document; when it parses, its
 * compact print must parse again and print the same text (what the
 * webhook-receiver relies on when it re-embeds results), and each getter
 * is tried on every member of an object, with and without a prefix.
 */
#include "fuzz.h"
#include "rte/json.h"

static void getters(const cJSON *obj)
{
    const cJSON *m, *o;
    const char *s;
    int64_t i;
    double d;
    int b;
    char err[128];

    cJSON_ArrayForEach(m, obj)
    {
        const char *k = m->string;
        if (k == NULL)
            continue;
        (void)rte_json_object(obj, k, &o, err, sizeof err);
        (void)rte_json_string(obj, k, 8, &s, err, sizeof err);
        (void)rte_json_string_opt(obj, k, 0, &s, err, sizeof err);
        (void)rte_json_int(obj, k, INT64_MIN, INT64_MAX, &i, err, sizeof err);
        (void)rte_json_int_opt(obj, k, -5, 5, &i, err, sizeof err);
        (void)rte_json_number(obj, k, -1e308, 1e308, &d, err, sizeof err);
        (void)rte_json_bool(obj, k, &b, err, sizeof err);
        (void)rte_json_bool_opt(obj, k, &b, err, sizeof err);
        (void)rte_json_array(obj, k, 0, 3, &o, err, sizeof err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    cJSON *doc = rte_json_parse((const char *)data, size, err, sizeof err);

    if (doc == NULL) {
        FUZZ_ASSERT(err[0] != '\0'); /* the strict scanner names what it refused */
        return 0;
    }
    getters(doc);
    rte_json_set_prefix("results[3]");
    getters(doc);
    rte_json_set_prefix(NULL);

    char *p1 = rte_json_print(doc);
    if (p1 != NULL) {
        cJSON *again = rte_json_parse(p1, strlen(p1), err, sizeof err);
        FUZZ_ASSERT(again != NULL);
        char *p2 = rte_json_print(again);
        FUZZ_ASSERT(p2 != NULL && strcmp(p1, p2) == 0);
        free(p2);
        cJSON_Delete(again);
        free(p1);
    }
    cJSON_Delete(doc);
    return 0;
}
