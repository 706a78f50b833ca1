/*
 * test_tz_file.c - zone files rte_tz_load must refuse (RFC 8536), using
 * the inputs fuzz_cron_tz found, kept in tests/fuzz/regressions/cron_tz/.
 * Run from the repository root, as make unit does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rte/tz.h"

#define FOUND "tests/fuzz/regressions/cron_tz"

static void refused(const char *name, const char *why)
{
    char err[512];
    rte_tz *tz = rte_tz_load(FOUND, name, err, sizeof err);
    if (tz != NULL)
        fail_msg("%s/%s loaded", FOUND, name);
    if (strstr(err, why) == NULL)
        fail_msg("error '%s' does not say '%s'", err, why);
}

/* a UTC offset of decades (RFC 8536 3.2: -89999..93599) */
static void test_offset_out_of_range(void **state)
{
    (void)state;
    refused("utoff-out-of-range", "is outside -89999..93599");
}

/* transition times that do not ascend (RFC 8536 3.2: MUST) */
static void test_transitions_not_ascending(void **state)
{
    (void)state;
    refused("transitions-not-ascending", "is not later than the one before");
}

/* the checks keep real zones loading */
static void test_real_zones_still_load(void **state)
{
    (void)state;
    static const char *const zones[] = {"UTC", "America/New_York", "Australia/Lord_Howe",
                                        "Asia/Kolkata", "Pacific/Chatham"};
    char err[512];
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        rte_tz *tz = rte_tz_load(NULL, zones[i], err, sizeof err);
        if (tz == NULL)
            fail_msg("%s: %s", zones[i], err);
        rte_tz_free(tz);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offset_out_of_range),
        cmocka_unit_test(test_transitions_not_ascending),
        cmocka_unit_test(test_real_zones_still_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
