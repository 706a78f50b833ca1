/*
 * test_log.c - rte_log_scrub's PII masking and the JSON lines rte_log writes.
 *
 * Log lines are captured by pointing fd 2 at a temporary file with dup2,
 * then parsed with cJSON. rte_fatal runs in a forked child so its exit(1)
 * can be checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rte/log.h"

static void assert_scrub(const char *in, const char *want)
{
    char out[1024];
    size_t n = rte_log_scrub(in, out, sizeof(out));

    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

/* ---- scrub ------------------------------------------------------------ */

static void test_scrub_json(void **state)
{
    (void)state;
    assert_scrub("{\"firstName\":\"John\",\"lastName\":\"Doe\",\"dateOfBirth\":\"1980-01-02\","
                 "\"memberId\":\"M123\"}",
                 "{\"firstName\":\"***\",\"lastName\":\"***\",\"dateOfBirth\":\"***\","
                 "\"memberId\":\"M123\"}");
    assert_scrub("{\"first_name\": \"Ann\", \"last_name\" : \"Lee\", \"dob\": \"19800102\"}",
                 "{\"first_name\": \"***\", \"last_name\" : \"***\", \"dob\": \"***\"}");
    assert_scrub("{\"name\":\"Jo\\\"hn\",\"plan\":\"gold\"}",
                 "{\"name\":\"***\",\"plan\":\"gold\"}");
    assert_scrub("{\"birthDate\":19800102,\"n\":5}", "{\"birthDate\":***,\"n\":5}");
    assert_scrub("{\"name\":{\"first\":\"A\",\"last\":\"B\"},\"x\":1}", "{\"name\":***,\"x\":1}");
    assert_scrub("{\"NAME\":\"Bob\",\"date_of_birth\":\"2001-02-03\"}",
                 "{\"NAME\":\"***\",\"date_of_birth\":\"***\"}");
    /* a JSON body already escaped inside another JSON string */
    assert_scrub("body={\\\"firstName\\\":\\\"John\\\",\\\"plan\\\":\\\"gold\\\"}",
                 "body={\\\"firstName\\\":\\\"***\\\",\\\"plan\\\":\\\"gold\\\"}");
    /* null is not personal data */
    assert_scrub("{\"dob\":null}", "{\"dob\":null}");
}

static void test_scrub_key_value(void **state)
{
    (void)state;
    assert_scrub("lookup first_name=John last_name='Doe Smith' dob=19800102 member=M1",
                 "lookup first_name=*** last_name='***' dob=*** member=M1");
    assert_scrub("NAME=Bob, FirstName: Alice; birthDate=\"1990-05-06\"",
                 "NAME=***, FirstName: ***; birthDate=\"***\"");
    assert_scrub("GET /v1/x?firstName=Ann&lastName=Lee&plan=ppo",
                 "GET /v1/x?firstName=***&lastName=***&plan=ppo");
}

static void test_scrub_dates(void **state)
{
    (void)state;
    assert_scrub("born 1980-01-02 and 19800102, seen 01/02/1980.", "born *** and ***, seen ***.");
    assert_scrub("scheduled 2026-01-05T06:00:00Z", "scheduled ***T06:00:00Z");
    assert_scrub("DMG*D8*19800102~", "DMG*D8****~");
}

static void test_scrub_leaves_other_text(void **state)
{
    (void)state;
    const char *keep[] = {
        "username=bob hostname=h1 name_server=ns1 nickname: x",
        "order 12345678 of 123456789 items; id 2026010512",
        "memberId=M123456 trading_partner=62308 status=200 latency_ms=42",
        "v1980-01-02 x19800102 12026-01-05",
        "\"name\" is required",
        "plain text without any pii",
        "",
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        assert_scrub(keep[i], keep[i]);
}

static void test_scrub_truncates_safely(void **state)
{
    char out[12];
    size_t n;

    (void)state;
    n = rte_log_scrub("{\"name\":\"Johnathan\"}", out, sizeof(out));
    assert_int_equal(n, strlen(out));
    assert_true(n <= sizeof(out) - 1);
    assert_null(strstr(out, "Joh"));
    assert_int_equal(rte_log_scrub("abc", out, 0), 0);
    n = rte_log_scrub("abcdefghijklmnopqrstuvwxyz", out, sizeof(out));
    assert_int_equal(n, 11);
    assert_string_equal(out, "abcdefghijk");
}

static void test_level_parse(void **state)
{
    (void)state;
    assert_int_equal(rte_log_level_parse("debug"), RTE_LOG_DEBUG);
    assert_int_equal(rte_log_level_parse("INFO"), RTE_LOG_INFO);
    assert_int_equal(rte_log_level_parse("warn"), RTE_LOG_WARN);
    assert_int_equal(rte_log_level_parse("error"), RTE_LOG_ERROR);
    assert_int_equal(rte_log_level_parse("loud"), -1);
    assert_int_equal(rte_log_level_parse(NULL), -1);
}

/* ---- captured lines --------------------------------------------------- */

struct capture {
    int saved;
    FILE *f;
};

static void capture_start(struct capture *c)
{
    fflush(stderr);
    c->f = tmpfile();
    assert_non_null(c->f);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->f), STDERR_FILENO) >= 0);
}

/* Stop capturing; returns the malloc'd text written meanwhile. */
static char *capture_end(struct capture *c)
{
    long len;
    char *text;

    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    fseek(c->f, 0, SEEK_END);
    len = ftell(c->f);
    rewind(c->f);
    text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, c->f), (size_t)len);
    fclose(c->f);
    return text;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void assert_ts_shape(const char *ts)
{
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[4], '-');
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
}

static void test_line_is_json(void **state)
{
    struct capture c;
    cJSON *o;
    char *text;

    (void)state;
    unsetenv("RTE_LOG_LEVEL");
    rte_log_init("test-svc", RTE_LOG_INFO);
    rte_log_set_request_id("req-42");
    capture_start(&c);
    rte_log_info("member \"x\"\\ {\"firstName\":\"John\",\"dob\":\"1980-01-02\"} tab\there\nnext "
                 "\x01 bad\xff end");
    text = capture_end(&c);
    rte_log_set_request_id(NULL);

    assert_int_equal(count_lines(text), 1);
    assert_int_equal(text[strlen(text) - 1], '\n');
    assert_null(strstr(text, "1980"));
    assert_null(strstr(text, "John"));
    o = cJSON_Parse(text);
    assert_non_null(o);
    assert_ts_shape(str_field(o, "ts"));
    assert_string_equal(str_field(o, "level"), "info");
    assert_string_equal(str_field(o, "service"), "test-svc");
    assert_string_equal(str_field(o, "request_id"), "req-42");
    assert_string_equal(str_field(o, "msg"),
                        "member \"x\"\\ {\"firstName\":\"***\",\"dob\":\"***\"} tab\there\nnext "
                        "\x01 bad\xef\xbf\xbd end");
    cJSON_Delete(o);
    free(text);
}

static void test_levels_and_request_id(void **state)
{
    struct capture c;
    cJSON *o;
    char *text;

    (void)state;
    unsetenv("RTE_LOG_LEVEL");
    rte_log_init("svc2", RTE_LOG_WARN);
    capture_start(&c);
    rte_log_debug("hidden debug");
    rte_log_info("hidden info");
    rte_log_warn("shown warn %d", 7);
    text = capture_end(&c);
    assert_int_equal(count_lines(text), 1);
    o = cJSON_Parse(text);
    assert_non_null(o);
    assert_string_equal(str_field(o, "level"), "warn");
    assert_string_equal(str_field(o, "msg"), "shown warn 7");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "request_id"));
    cJSON_Delete(o);
    free(text);

    /* the environment wins over the level passed in */
    setenv("RTE_LOG_LEVEL", "error", 1);
    rte_log_init("svc3", RTE_LOG_DEBUG);
    unsetenv("RTE_LOG_LEVEL");
    capture_start(&c);
    rte_log_warn("hidden warn");
    rte_log_error("shown error");
    text = capture_end(&c);
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, "\"level\":\"error\""));
    assert_non_null(strstr(text, "\"service\":\"svc3\""));
    free(text);
    rte_log_init("test-svc", RTE_LOG_INFO);
}

static void test_long_message_truncated(void **state)
{
    struct capture c;
    char *big = malloc(20000), *text;
    cJSON *o;

    (void)state;
    assert_non_null(big);
    memset(big, '"', 19999);
    big[19999] = '\0';
    rte_log_init("test-svc", RTE_LOG_INFO);
    rte_log_set_request_id("r1");
    capture_start(&c);
    rte_log_info("%s", big);
    text = capture_end(&c);
    rte_log_set_request_id(NULL);
    assert_int_equal(count_lines(text), 1);
    o = cJSON_Parse(text);
    assert_non_null(o);
    assert_string_equal(str_field(o, "request_id"), "r1");
    assert_true(strlen(str_field(o, "msg")) < 20000);
    cJSON_Delete(o);
    free(text);
    free(big);
}

/* a request id longer than the 127 bytes kept is cut there, not overrun */
static void test_long_request_id_truncated(void **state)
{
    struct capture c;
    char id[300], *text;
    cJSON *o;

    (void)state;
    for (size_t i = 0; i < sizeof id - 1; i++)
        id[i] = (char)('a' + i % 26);
    id[sizeof id - 1] = '\0';
    rte_log_init("test-svc", RTE_LOG_INFO);
    rte_log_set_request_id(id);
    capture_start(&c);
    rte_log_info("x");
    text = capture_end(&c);
    rte_log_set_request_id(NULL);
    o = cJSON_Parse(text);
    assert_non_null(o);
    id[127] = '\0';
    assert_string_equal(str_field(o, "request_id"), id);
    cJSON_Delete(o);
    free(text);
}

static void test_fatal_exits_1(void **state)
{
    int fds[2], status;
    char buf[1024] = {0};
    ssize_t n;
    pid_t pid;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        rte_log_init("fatal-svc", RTE_LOG_ERROR);
        rte_fatal("config: key 'x' (RTE_X) = '%s': bad", "dob=1980-01-02");
    }
    close(fds[1]);
    n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(strstr(buf, "\"level\":\"fatal\""));
    assert_non_null(strstr(buf, "RTE_X"));
    assert_null(strstr(buf, "1980"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrub_json),
        cmocka_unit_test(test_scrub_key_value),
        cmocka_unit_test(test_scrub_dates),
        cmocka_unit_test(test_scrub_leaves_other_text),
        cmocka_unit_test(test_scrub_truncates_safely),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_line_is_json),
        cmocka_unit_test(test_levels_and_request_id),
        cmocka_unit_test(test_long_message_truncated),
        cmocka_unit_test(test_long_request_id_truncated),
        cmocka_unit_test(test_fatal_exits_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
