/*
 * test_config.c - YAML flattening, RTE_* overrides, typed getters, errors.
 *
 * Every test unsets the RTE_* variables it sets. Fatal paths run in forked
 * children whose exit status and stderr are checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rte/config.h"

static const char *sample_yaml = "service: cache-gateway\n"
                                 "redis:\n"
                                 "  url: redis://127.0.0.1:6379\n"
                                 "  timeout: 250\n"
                                 "  pool-size: 8\n"
                                 "kafka:\n"
                                 "  brokers: [a:9092, b:9092]\n"
                                 "  topics:\n"
                                 "    - alpha\n"
                                 "    - beta\n"
                                 "features:\n"
                                 "  warm: yes\n"
                                 "  fast: Off\n"
                                 "  one: 1\n"
                                 "  upper: TRUE\n"
                                 "ratio: 0.75\n"
                                 "durations:\n"
                                 "  a: 250ms\n"
                                 "  b: 5s\n"
                                 "  c: 2m\n"
                                 "  d: 1h\n"
                                 "  e: 1d\n"
                                 "  f: 1500\n"
                                 "  g: 1.5s\n"
                                 "empty:\n"
                                 "tilde: ~\n"
                                 "quoted: \"\"\n"
                                 "items:\n"
                                 "  - name: x\n"
                                 "    n: 1\n"
                                 "  - name: y\n";

static int load_sample(void **state)
{
    char err[256] = "";

    *state = rte_config_from_string(sample_yaml, err, sizeof(err));
    if (!*state)
        fprintf(stderr, "load failed: %s\n", err);
    return *state ? 0 : -1;
}

static int free_sample(void **state)
{
    rte_config_free(*state);
    return 0;
}

static void test_defaults_when_absent(void **state)
{
    char err[256];
    rte_config *cfg = rte_config_from_string("", err, sizeof(err));
    rte_config *nofile = rte_config_load(NULL, err, sizeof(err));

    (void)state;
    assert_non_null(cfg);
    assert_non_null(nofile);
    assert_string_equal(rte_config_str(cfg, "redis.url", "redis://def"), "redis://def");
    assert_null(rte_config_raw(cfg, "redis.url"));
    assert_int_equal(rte_config_int(cfg, "redis.timeout", 42, 1, 100), 42);
    assert_true(rte_config_double(cfg, "ratio", 0.5, 0, 1) == 0.5);
    assert_int_equal(rte_config_bool(nofile, "features.warm", 1), 1);
    assert_int_equal(rte_config_bool(nofile, "features.warm", 0), 0);
    assert_int_equal(rte_config_duration_ms(nofile, "d", 777, 0, 1000), 777);
    rte_config_free(cfg);
    rte_config_free(nofile);
}

static void test_file_values(void **state)
{
    rte_config *cfg = *state;

    assert_string_equal(rte_config_str(cfg, "service", NULL), "cache-gateway");
    assert_string_equal(rte_config_str(cfg, "redis.url", NULL), "redis://127.0.0.1:6379");
    assert_int_equal(rte_config_int(cfg, "redis.timeout", 1, 1, 60000), 250);
    assert_int_equal(rte_config_int(cfg, "redis.pool-size", 1, 1, 64), 8);
    assert_string_equal(rte_config_str(cfg, "kafka.brokers", NULL), "a:9092,b:9092");
    assert_string_equal(rte_config_str(cfg, "kafka.topics", NULL), "alpha,beta");
    assert_true(rte_config_double(cfg, "ratio", 0, 0, 1) == 0.75);
    assert_string_equal(rte_config_str(cfg, "items.0.name", NULL), "x");
    assert_string_equal(rte_config_str(cfg, "items.0.n", NULL), "1");
    assert_string_equal(rte_config_str(cfg, "items.1.name", NULL), "y");
    /* null scalars are absent; an explicitly quoted empty string is a value */
    assert_string_equal(rte_config_str(cfg, "empty", "def"), "def");
    assert_string_equal(rte_config_str(cfg, "tilde", "def"), "def");
    assert_string_equal(rte_config_str(cfg, "quoted", "def"), "");
    /* a mapping is not itself a value */
    assert_null(rte_config_raw(cfg, "redis"));
}

static void test_env_override(void **state)
{
    rte_config *cfg = *state;
    char name[64];

    rte_config_env_name("redis.pool-size", name, sizeof(name));
    assert_string_equal(name, "RTE_REDIS_POOL_SIZE");
    rte_config_env_name("kafka.brokers", name, 8);
    assert_string_equal(name, "RTE_KAF");

    setenv("RTE_REDIS_URL", "redis://env:1", 1);
    setenv("RTE_REDIS_POOL_SIZE", "16", 1);
    setenv("RTE_ONLY_ENV_KEY", "42", 1);
    setenv("RTE_SERVICE", "", 1); /* empty counts as unset */
    assert_string_equal(rte_config_str(cfg, "redis.url", NULL), "redis://env:1");
    assert_string_equal(rte_config_raw(cfg, "redis.url"), "redis://env:1");
    assert_int_equal(rte_config_int(cfg, "redis.pool-size", 1, 1, 64), 16);
    assert_int_equal(rte_config_int(cfg, "only.env.key", 1, 1, 64), 42);
    assert_int_equal(rte_config_int(NULL, "only.env.key", 1, 1, 64), 42);
    assert_string_equal(rte_config_str(cfg, "service", NULL), "cache-gateway");
    unsetenv("RTE_REDIS_URL");
    unsetenv("RTE_REDIS_POOL_SIZE");
    unsetenv("RTE_ONLY_ENV_KEY");
    unsetenv("RTE_SERVICE");
    assert_string_equal(rte_config_str(cfg, "redis.url", NULL), "redis://127.0.0.1:6379");
}

static void test_durations(void **state)
{
    rte_config *cfg = *state;
    const struct {
        const char *key;
        int64_t ms;
    } cases[] = {{"durations.a", 250},     {"durations.b", 5000},     {"durations.c", 120000},
                 {"durations.d", 3600000}, {"durations.e", 86400000}, {"durations.f", 1500},
                 {"durations.g", 1500}};
    const char *bad[] = {"5x", "-5s", "s", "1.s", "5 s", "1e3", "5S", ".5s"};
    char err[256];
    int64_t v;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(rte_config_duration_ms(cfg, cases[i].key, 0, 0, INT64_MAX), cases[i].ms);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("RTE_DURATIONS_A", bad[i], 1);
        v = -7;
        if (rte_config_duration_try(cfg, "durations.a", 0, 0, INT64_MAX, &v, err, sizeof(err)) !=
            -1)
            fail_msg("accepted duration '%s' as %lld", bad[i], (long long)v);
        assert_non_null(strstr(err, "RTE_DURATIONS_A"));
        assert_non_null(strstr(err, bad[i]));
    }
    unsetenv("RTE_DURATIONS_A");
    /* out of range */
    assert_int_equal(rte_config_duration_try(cfg, "durations.b", 0, 0, 1000, &v, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "durations.b"));
    assert_int_equal(rte_config_duration_try(cfg, "absent", 33, 0, 1000, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 33);
}

static void test_bools(void **state)
{
    rte_config *cfg = *state;
    const char *yes[] = {"true", "YES", "On", "1"}, *no[] = {"false", "No", "OFF", "0"};

    assert_int_equal(rte_config_bool(cfg, "features.warm", 0), 1);
    assert_int_equal(rte_config_bool(cfg, "features.fast", 1), 0);
    assert_int_equal(rte_config_bool(cfg, "features.one", 0), 1);
    assert_int_equal(rte_config_bool(cfg, "features.upper", 0), 1);
    for (int i = 0; i < 4; i++) {
        setenv("RTE_FEATURES_X", yes[i], 1);
        assert_int_equal(rte_config_bool(cfg, "features.x", 0), 1);
        setenv("RTE_FEATURES_X", no[i], 1);
        assert_int_equal(rte_config_bool(cfg, "features.x", 1), 0);
    }
    unsetenv("RTE_FEATURES_X");
}

static void test_bad_int_try(void **state)
{
    rte_config *cfg = rte_config_from_string("redis:\n  timeout: abc\n", NULL, 0);
    char err[256];
    int64_t v = 5;

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(rte_config_int_try(cfg, "redis.timeout", 100, 1, 60000, &v, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "config: key 'redis.timeout' (RTE_REDIS_TIMEOUT) = 'abc': expected "
                             "an integer in [1, 60000]");
    assert_int_equal(v, 5);

    setenv("RTE_REDIS_TIMEOUT", "99999", 1);
    assert_int_equal(rte_config_int_try(cfg, "redis.timeout", 100, 1, 60000, &v, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "'99999'"));
    setenv("RTE_REDIS_TIMEOUT", "12x", 1);
    assert_int_equal(rte_config_int_try(cfg, "redis.timeout", 100, 1, 60000, &v, err, sizeof(err)),
                     -1);
    setenv("RTE_REDIS_TIMEOUT", "99999999999999999999", 1);
    assert_int_equal(
        rte_config_int_try(cfg, "redis.timeout", 100, 1, INT64_MAX, &v, err, sizeof(err)), -1);
    setenv("RTE_REDIS_TIMEOUT", "-7", 1);
    assert_int_equal(rte_config_int_try(cfg, "redis.timeout", 100, -10, 10, &v, err, sizeof(err)),
                     0);
    assert_int_equal(v, -7);
    unsetenv("RTE_REDIS_TIMEOUT");
    rte_config_free(cfg);
}

struct each_acc {
    char text[1024];
    int n;
};

static void collect(const char *key, const char *value, void *arg)
{
    struct each_acc *a = arg;
    size_t len = strlen(a->text);

    snprintf(a->text + len, sizeof(a->text) - len, "%s=%s;", key, value);
    a->n++;
}

static void test_each(void **state)
{
    rte_config *cfg = *state;
    struct each_acc acc = {"", 0};

    setenv("RTE_REDIS_TIMEOUT", "300", 1);
    rte_config_each(cfg, "redis", collect, &acc);
    unsetenv("RTE_REDIS_TIMEOUT");
    assert_string_equal(acc.text,
                        "redis.pool-size=8;redis.timeout=300;redis.url=redis://127.0.0.1:6379;");

    memset(&acc, 0, sizeof(acc));
    rte_config_each(cfg, "", collect, &acc);
    assert_int_equal(acc.n, 22);
    assert_non_null(strstr(acc.text, "kafka.brokers=a:9092,b:9092;"));

    memset(&acc, 0, sizeof(acc));
    rte_config_each(cfg, "red", collect, &acc); /* not a whole component */
    assert_int_equal(acc.n, 0);
}

static void test_syntax_error_names_line(void **state)
{
    char path[] = "/tmp/test_config_XXXXXX", err[512];
    const char *text = "redis:\n  url: x\n  timeout: [1, 2\nkafka: y\n";
    rte_config *cfg;
    int fd;

    (void)state;
    cfg = rte_config_from_string("a: b\n  c: d\n", err, sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "<string>"));
    assert_non_null(strstr(err, "line 2"));

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cfg = rte_config_load(path, err, sizeof(err));
    unlink(path);
    assert_null(cfg);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 4"));
    assert_non_null(strstr(err, "started at line 3"));

    cfg = rte_config_load("/nonexistent/rte.yaml", err, sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "/nonexistent/rte.yaml"));
}

static void test_structure_errors(void **state)
{
    char err[512];

    (void)state;
    assert_null(rte_config_from_string("- a\n- b\n", err, sizeof(err)));
    assert_non_null(strstr(err, "top level"));
    assert_null(rte_config_from_string("a:\n  b: 1\na.b: 2\n", err, sizeof(err)));
    assert_non_null(strstr(err, "duplicate key 'a.b'"));
    assert_non_null(strstr(err, "line 3"));
    assert_null(rte_config_from_string("a: 1\n---\nb: 2\n", err, sizeof(err)));
    assert_non_null(strstr(err, "one YAML document"));
    assert_null(rte_config_from_string("a: &x [*x]\n", err, sizeof(err)));
}

/* Run fn(cfg) in a child with stderr captured; returns the exit status. */
static int child_status(rte_config *cfg, void (*fn)(rte_config *), char *out, size_t outlen)
{
    int fds[2], status;
    size_t got = 0;
    ssize_t n;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        fn(cfg);
        _exit(0);
    }
    close(fds[1]);
    while (got < outlen - 1 && (n = read(fds[0], out + got, outlen - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void bad_int(rte_config *cfg)
{
    rte_config_int(cfg, "redis.timeout", 100, 1, 60000);
}

static void bad_bool(rte_config *cfg)
{
    rte_config_bool(cfg, "features.fast", 0);
}

static void bad_double(rte_config *cfg)
{
    rte_config_double(cfg, "ratio", 0.5, 0, 0.5);
}

static void bad_duration(rte_config *cfg)
{
    rte_config_duration_ms(cfg, "durations.a", 1, 1, 100);
}

static void good_int(rte_config *cfg)
{
    rte_config_int(cfg, "redis.timeout", 100, 1, 60000);
}

static void test_fatal_in_child(void **state)
{
    rte_config *cfg = *state;
    char out[2048];

    setenv("RTE_REDIS_TIMEOUT", "abc", 1);
    assert_int_equal(child_status(cfg, bad_int, out, sizeof(out)), 1);
    unsetenv("RTE_REDIS_TIMEOUT");
    assert_non_null(strstr(out, "\"level\":\"fatal\""));
    assert_non_null(strstr(out, "config: key 'redis.timeout' (RTE_REDIS_TIMEOUT) = 'abc': "
                                "expected an integer in [1, 60000]"));

    setenv("RTE_FEATURES_FAST", "maybe", 1);
    assert_int_equal(child_status(cfg, bad_bool, out, sizeof(out)), 1);
    unsetenv("RTE_FEATURES_FAST");
    assert_non_null(strstr(out, "RTE_FEATURES_FAST"));
    assert_non_null(strstr(out, "maybe"));

    assert_int_equal(child_status(cfg, bad_double, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "'0.75'"));
    assert_int_equal(child_status(cfg, bad_duration, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "RTE_DURATIONS_A"));
    assert_int_equal(child_status(cfg, good_int, out, sizeof(out)), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* a file's identity changes with an edit or a rename over it, not with a read */
static void test_file_id(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_file_id.XXXXXX", path[64], other[64];
    rte_file_id a, b;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/f.yaml", dir);
    snprintf(other, sizeof other, "%s/g.yaml", dir);
    assert_int_equal(rte_file_id_of(path, &a), -1);
    write_text(path, "a: 1\n");
    assert_int_equal(rte_file_id_of(path, &a), 0);
    assert_int_equal(rte_file_id_of(path, &b), 0);
    assert_true(rte_file_id_same(&a, &b));

    write_text(path, "a: 12\n"); /* an edit (size changes) */
    assert_int_equal(rte_file_id_of(path, &b), 0);
    assert_false(rte_file_id_same(&a, &b));

    a = b;
    write_text(other, "a: 34\n"); /* same size, renamed over it: another inode */
    assert_int_equal(rename(other, path), 0);
    assert_int_equal(rte_file_id_of(path, &b), 0);
    assert_false(rte_file_id_same(&a, &b));

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_when_absent),
        cmocka_unit_test(test_file_id),
        cmocka_unit_test_setup_teardown(test_file_values, load_sample, free_sample),
        cmocka_unit_test_setup_teardown(test_env_override, load_sample, free_sample),
        cmocka_unit_test_setup_teardown(test_durations, load_sample, free_sample),
        cmocka_unit_test_setup_teardown(test_bools, load_sample, free_sample),
        cmocka_unit_test(test_bad_int_try),
        cmocka_unit_test_setup_teardown(test_each, load_sample, free_sample),
        cmocka_unit_test(test_syntax_error_names_line),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test_setup_teardown(test_fatal_in_child, load_sample, free_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
