/*
 * grpc-probe - a tiny server on rte_grpc_server for tests/integration.
 *
 * Serves two methods, reusing the health messages as payloads so no test
 * proto is needed:
 *   /rte.test.Echo/Echo  (unary) HealthCheckRequest{service} ->
 *       "ok"          SERVING
 *       "sleep:N"     prints "sleeping N", sleeps N ms, then SERVING
 *       "md:KEY"      FAILED_PRECONDITION "md KEY=<value or (absent)>"
 *       "deadline"    FAILED_PRECONDITION "deadline in N ms" (-1 if none)
 *       anything else INVALID_ARGUMENT "field 'service': must be 'ok'"
 *   /rte.test.Echo/Count (server streaming) 5 x SERVING, 100 ms apart.
 * Readiness (grpc.health.v1) is "the --ready-file exists" (always ready
 * without one). Prints "port N" once listening. SIGTERM/SIGINT: shut down
 * with a 5 s deadline, print "cancelled N" and the metrics, exit 0.
 *
 * Usage: grpc-probe [--port N] [--workers N] [--ready-file PATH]
 */
#include "health.pb-c.h"
#include "rte/clock.h"
#include "rte/grpc_server.h"
#include "rte/log.h"
#include "rte/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef Grpc__Health__V1__HealthCheckRequest Req;
typedef Grpc__Health__V1__HealthCheckResponse Resp;

static const char *ready_file;

/* a non-negative decimal, or -1 */
static long parse_count(const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    return errno || end == s || *end || v < 0 ? -1 : v;
}

static long option_value(const char *name, const char *s)
{
    long v = parse_count(s);

    if (v < 0)
        rte_fatal("%s: '%s' is not a non-negative number", name, s);
    return v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void reply_serving(rte_grpc_call *call)
{
    Resp resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rte_grpc_reply(call, &resp.base);
}

static void echo(rte_grpc_call *call, const ProtobufCMessage *req, void *arg)
{
    const char *in = ((const Req *)(const void *)req)->service;
    int64_t deadline = rte_grpc_deadline_ms(call);
    const char *v;

    (void)arg;
    if (strcmp(in, "ok") == 0) {
        reply_serving(call);
    } else if (strncmp(in, "sleep:", 6) == 0 && parse_count(in + 6) >= 0) {
        printf("sleeping %ld\n", parse_count(in + 6)); /* tests wait for this line */
        fflush(stdout);
        sleep_ms(parse_count(in + 6));
        reply_serving(call);
    } else if (strncmp(in, "md:", 3) == 0) {
        v = rte_grpc_metadata(call, in + 3);
        rte_grpc_status(call, RTE_GRPC_FAILED_PRECONDITION, "md %s=%s", in + 3, v ? v : "(absent)");
    } else if (strcmp(in, "deadline") == 0) {
        rte_grpc_status(call, RTE_GRPC_FAILED_PRECONDITION, "deadline in %lld ms",
                        deadline == INT64_MAX ? -1LL : (long long)(deadline - rte_clock_mono_ms()));
    } else {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "field 'service': must be 'ok'");
    }
}

static void count(rte_grpc_call *call, const ProtobufCMessage *req, void *arg)
{
    Resp resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    (void)req;
    (void)arg;
    resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    for (int i = 0; i < 5; i++) {
        if (i > 0 && !rte_grpc_stream_wait(call, 100))
            return;
        if (rte_grpc_stream_send(call, &resp.base) < 0)
            return;
    }
}

static int ready(void *arg)
{
    (void)arg;
    return !ready_file || access(ready_file, F_OK) == 0;
}

static const rte_grpc_method methods[] = {
    {"/rte.test.Echo/Echo", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, echo, NULL, NULL},
    {"/rte.test.Echo/Count", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, NULL, count, NULL},
    {NULL},
};

static void print_metrics(void)
{
    size_t len;
    char *text = rte_metrics_render(&len);

    if (text)
        fwrite(text, 1, len, stdout);
    free(text);
}

int main(int argc, char **argv)
{
    long port = 0, workers = 8;
    char addr[64], err[256];
    rte_grpc_server *s;
    sigset_t sigs;
    int sig;

    rte_log_init("grpc-probe", RTE_LOG_INFO);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = option_value("--port", argv[i + 1]);
        else if (strcmp(argv[i], "--workers") == 0)
            workers = option_value("--workers", argv[i + 1]);
        else if (strcmp(argv[i], "--ready-file") == 0)
            ready_file = argv[i + 1];
        else
            rte_fatal("unknown option %s (use --port, --workers, --ready-file)", argv[i]);
    }
    /* block before any thread exists so only sigwait below sees them */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    snprintf(addr, sizeof addr, "127.0.0.1:%ld", port);
    s = rte_grpc_server_new(addr, methods, (int)workers, ready, NULL, err, sizeof err);
    if (!s)
        rte_fatal("grpc-probe: %s", err);
    printf("port %d\n", rte_grpc_server_port(s));
    fflush(stdout);

    sigwait(&sigs, &sig);
    printf("cancelled %d\n", rte_grpc_server_shutdown(s, 5000));
    rte_grpc_server_free(s);
    print_metrics();
    fflush(stdout);
    return 0;
}
