/*
 * fuzz_stedi_status.c - libFuzzer target: a Stedi batch status answer.
 *
 * The input is the body of a 200 from GET .../eligibility-manager/batch/
 * {batchId}, read as rte_stedi_batch_status reads it: rte_json_parse, then
 * rte_stedi_batch_info_read. Whatever Stedi sends, the counts it yields
 * are never negative and the status is a NUL-terminated string.
 */
#include "fuzz.h"
#include "rte/json.h"
#include "rte/stedi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rte_stedi_batch_info info;
    char err[256];
    cJSON *doc = rte_json_parse((const char *)data, size, err, sizeof err);

    if (doc == NULL)
        return 0;
    if (rte_stedi_batch_info_read(doc, &info, err, sizeof err) == 0) {
        FUZZ_ASSERT(memchr(info.status, '\0', sizeof info.status) != NULL);
        FUZZ_ASSERT(info.total >= 0 && info.success >= 0 && info.error >= 0 &&
                    info.in_progress >= 0);
        FUZZ_ASSERT(info.complete == (strcmp(info.status, "COMPLETED") == 0 ||
                                      strcmp(info.status, "COMPLETED_WITH_ERRORS") == 0));
    }
    cJSON_Delete(doc);
    return 0;
}
