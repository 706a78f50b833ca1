/*
 * fuzz_config.c - libFuzzer target: a service's YAML configuration file
 * (rte_config_from_string, the text rte_config_load reads).
 *
 * The input is the file. One that loads is read back key by key as the
 * services read it: every key's RTE_* variable name, its raw value, the
 * _try integer and duration getters (the fatal getters exit by design on a
 * bad value, so they are not called), and the shared sections' own
 * validation (rte_stedi_check_config covers stedi.*, slots.* and cache.*;
 * rte_cache_settings_from_config). Environment values go through the same
 * value parsers as file values.
 */
#include "fuzz.h"
#include "rte/cache_entry.h"
#include "rte/config.h"
#include "rte/stedi.h"

static void each_key(const char *key, const char *value, void *arg)
{
    const rte_config *cfg = arg;
    char env[300], err[512];
    int64_t v;

    FUZZ_ASSERT(key != NULL && value != NULL);
    rte_config_env_name(key, env, sizeof env);
    FUZZ_ASSERT(strncmp(env, "RTE_", 4) == 0);
    FUZZ_ASSERT(rte_config_raw(cfg, key) != NULL);
    (void)rte_config_str(cfg, key, "default");
    if (rte_config_int_try(cfg, key, 0, INT64_MIN, INT64_MAX, &v, err, sizeof err) != 0)
        FUZZ_ASSERT(strstr(err, key) != NULL);
    if (rte_config_int_try(cfg, key, 0, -10, 10, &v, err, sizeof err) == 0)
        FUZZ_ASSERT(v >= -10 && v <= 10);
    if (rte_config_duration_try(cfg, key, 0, 0, INT64_MAX, &v, err, sizeof err) == 0)
        FUZZ_ASSERT(v >= 0);
    if (rte_config_duration_try(cfg, key, 0, 1, 86400000, &v, err, sizeof err) == 0)
        FUZZ_ASSERT(v >= 1 && v <= 86400000);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512], *text = fuzz_str(data, size);
    rte_config *cfg = rte_config_from_string(text, err, sizeof err);
    rte_cache_settings cs;

    if (cfg == NULL) {
        FUZZ_ASSERT(err[0] != '\0');
        free(text);
        return 0;
    }
    rte_config_each(cfg, "", each_key, cfg);
    (void)rte_stedi_check_config(cfg, err, sizeof err);
    (void)rte_cache_settings_from_config(cfg, &cs, err, sizeof err);
    rte_config_free(cfg);
    free(text);
    return 0;
}
