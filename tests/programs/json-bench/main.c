/*
 * json-bench - what the strict JSON rules cost on the largest document the
 * suite reads on a hot path: a batch callback of RESULTS results.
 *
 * Usage: json-bench [RESULTS] [RUNS]   (defaults 10,000 and 20)
 *
 * Builds the callback the way tests/integration/webhook_util.py does (about
 * 250 bytes a result, 2.5 MB for 10,000), then times, best of RUNS (the
 * cases take turns within each run):
 *
 *   cjson_only      cJSON_ParseWithLengthOpts + cJSON_Delete: what
 *                   rte_json_parse did before the input policy
 *   input_json      rte_input_json alone: the strict single-pass check
 *   rte_json_parse  the check, then cJSON (what every caller now pays)
 *   many_keys       rte_input_json on one object of 100,000 keys (the
 *                   sorted duplicate check)
 *
 * Prints "name ms_per_parse MB_per_s" lines and the command that
 * reproduces them. Figures are printed, not asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/input.h"
#include "rte/json.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* the callback document, malloc'd; *len its size */
static char *make_callback(int n, size_t *len)
{
    size_t cap = (size_t)n * 400 + 256, o = 0;
    char *b = malloc(cap);

    if (b == NULL)
        return NULL;
    o += (size_t)snprintf(b + o, cap - o,
                          "{\"batch_id\":\"bench-batch\",\"status\":\"completed\","
                          "\"completed_at\":\"2026-01-05T06:00:00.000Z\",\"results\":[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(
            b + o, cap - o,
            "%s{\"check_id\":\"bench-batch-%d\",\"member_id\":\"bench-batchM%d\","
            "\"trading_partner_id\":\"62308\",\"status\":\"completed\",\"eligibility\":"
            "{\"eligible\":true,\"copay_amount\":%d,\"network_status\":\"%s\","
            "\"coverage_start\":\"2026-01-01\",\"coverage_end\":\"2026-12-31\"}}",
            i ? "," : "", i, i, 10 + i % 5 * 5, i % 2 ? "out_of_network" : "in_network");
    o += (size_t)snprintf(b + o, cap - o, "]}");
    *len = o;
    return b;
}

static char *make_many_keys(int n, size_t *len)
{
    size_t cap = (size_t)n * 24 + 16, o = 0;
    char *b = malloc(cap);

    if (b == NULL)
        return NULL;
    b[o++] = '{';
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(b + o, cap - o, "%s\"key%d\":%d", i ? "," : "", i, i);
    b[o++] = '}';
    *len = o;
    return b;
}

enum what { CJSON_ONLY, INPUT_JSON, RTE_JSON_PARSE, NWHAT };

/* seconds for one parse of doc; exits on a failed parse */
static double once(enum what w, const char *doc, size_t len)
{
    char err[256] = "";
    double t0 = now_s();
    int ok;

    if (w == INPUT_JSON) {
        ok = rte_input_json(doc, len, NULL, err, sizeof err) == 0;
    } else {
        cJSON *j = w == CJSON_ONLY ? cJSON_ParseWithLengthOpts(doc, len, NULL, 0)
                                   : rte_json_parse(doc, len, err, sizeof err);
        ok = j != NULL;
        cJSON_Delete(j);
    }
    double t = now_s() - t0;
    if (!ok) {
        fprintf(stderr, "json-bench: parse failed: %s\n", err);
        exit(1);
    }
    return t;
}

static void report(const char *name, double s, size_t len)
{
    printf("%-15s %8.3f ms  %8.1f MB/s\n", name, s * 1e3, (double)len / s / 1e6);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 10000;
    int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20;
    size_t len, klen;
    char *doc, *keys;

    if (n < 1 || runs < 1) {
        fprintf(stderr, "usage: json-bench [RESULTS] [RUNS]\n");
        return 2;
    }
    doc = make_callback(n, &len);
    keys = make_many_keys(100000, &klen);
    if (doc == NULL || keys == NULL) {
        fprintf(stderr, "json-bench: out of memory\n");
        return 1;
    }
    /* the cases take turns, so the machine's noise (it is shared) falls on all alike */
    double b[NWHAT] = {1e9, 1e9, 1e9}, bk = 1e9;
    for (int r = 0; r < runs; r++) {
        for (int w = 0; w < NWHAT; w++) {
            double t = once((enum what)w, doc, len);
            if (t < b[w])
                b[w] = t;
        }
        double t = once(INPUT_JSON, keys, klen);
        if (t < bk)
            bk = t;
    }
    printf("callback of %d results, %zu bytes, best of %d\n", n, len, runs);
    report("cjson_only", b[CJSON_ONLY], len);
    report("input_json", b[INPUT_JSON], len);
    report("rte_json_parse", b[RTE_JSON_PARSE], len);
    report("many_keys", bk, klen);
    printf("reproduce: %s %d %d\n", argv[0], n, runs);
    free(doc);
    free(keys);
    return 0;
}
