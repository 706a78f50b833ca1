/*
 * fuzz_cron_model.c - libFuzzer target: member-cron's model file
 * (cron_model_load) and a prediction with what it loaded.
 *
 * The input is the whole file. A model that loads has a version and a
 * window of 1..1440 minutes, and its prediction for a member is a
 * probability and a confidence in [0, 1] (or the file is refused: a
 * coefficient that makes them NaN is a bad model, not a bad member).
 */
#include "cron_model.h"
#include "fuzz.h"

#define NOW_MS 1767571200000LL /* 2026-01-05T00:00:00Z */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    cron_model m;
    cron_prediction p;

    if (cron_model_load(fuzz_file(data, size), &m, err, sizeof err) != 0) {
        FUZZ_ASSERT(err[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(m.version[0] != '\0' && m.window_minutes >= 1 && m.window_minutes <= 1440);
    rte_member mem = {.member_id = "M1",
                      .account_status = RTE_MEMBER_ACTIVE,
                      .last_login_ms = NOW_MS - 3 * 86400000LL,
                      .last_check_ms = -1,
                      .appointment_ms = NOW_MS + 3600000,
                      .enrollment_ms = NOW_MS - 10 * 86400000LL};
    for (int h = 0; h < 24; h++)
        mem.usage_by_hour[h] = h == 9 ? 0.5f : 0.02f;
    for (int d = 0; d < 7; d++)
        mem.weekday_factor[d] = 1.0f;
    cron_model_predict(&m, &mem, NOW_MS, &p);
    FUZZ_ASSERT(p.probability >= 0 && p.probability <= 1);
    FUZZ_ASSERT(p.confidence >= 0 && p.confidence <= 1);
    (void)cron_confidence_label(p.confidence);
    return 0;
}
