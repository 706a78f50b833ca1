/*
 * fuzz_stedi_poll.c - libFuzzer target: a Stedi poll-batch page and its
 * items.
 *
 * The input is the body of a 200 from the poll-batch endpoint, read as
 * rte_stedi_poll_page reads it (rte_json_parse, rte_stedi_page_read), and
 * then each item as webhook-receiver maps it for the cache
 * (rte_stedi_item_map). A mapped item names its submitter, member and
 * payer, and its entry comes from the batch.
 */
#include "fuzz.h"
#include "rte/json.h"
#include "rte/stedi.h"

#define NOW_MS 1767571200000LL /* 2026-01-05T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rte_stedi_page page;
    rte_stedi_item it;
    const cJSON *x;
    char err[256];
    int n = 0;

    memset(&page, 0, sizeof page);
    page.doc = rte_json_parse((const char *)data, size, err, sizeof err);
    if (page.doc == NULL)
        return 0;
    if (rte_stedi_page_read(&page, err, sizeof err) == 0) {
        FUZZ_ASSERT(memchr(page.next_token, '\0', sizeof page.next_token) != NULL);
        cJSON_ArrayForEach(x, page.items)
        {
            n++;
            if (rte_stedi_item_map(x, NULL, NOW_MS, NULL, &it, err, sizeof err) != 0)
                continue;
            FUZZ_ASSERT(it.submitter_id != NULL);
            FUZZ_ASSERT(strcmp(it.entry.source, "stedi_batch") == 0);
            FUZZ_ASSERT(it.entry.cached_at_ms == NOW_MS);
        }
        FUZZ_ASSERT(n == page.count);
    }
    rte_stedi_page_free(&page);
    return 0;
}
