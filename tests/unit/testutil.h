/*
 * testutil.h - helpers shared by the cmocka unit tests (header-only: each
 * test is one translation unit linked with libcommon only).
 *
 *   tu_data       read tests/data/<path> (RTE_DATA_DIR overrides the root)
 *   tu_openapi    read a file of Stedi's published OpenAPI beside the
 *                 project (../shared/stedi-openapi; RTE_STEDI_OPENAPI_DIR
 *                 overrides, as for the Python suites): the test is
 *                 skipped, saying why, where it is absent, and fails
 *                 instead under CI (CI=true, 1 or yes)
 *   tu_free_port  a loopback TCP port that was free a moment ago
 *   tu_redis_*    a real redis-server on a given port (no persistence),
 *                 started and waited for, then stopped with SIGTERM
 *
 * Include after <cmocka.h>: failures are cmocka assertions.
 */
#ifndef RTE_TESTUTIL_H
#define RTE_TESTUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rte/redis.h"

/* tu_read_file - the whole file at path, NUL-terminated (free it); fails the test if unreadable */
static inline char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* tu_data - the whole file tests/data/<path>, NUL-terminated (free it); *len its size */
static inline char *tu_data(const char *path, size_t *len)
{
    char full[512];
    const char *dir = getenv("RTE_DATA_DIR");
    snprintf(full, sizeof full, "%s/%s", dir && dir[0] ? dir : "tests/data", path);
    return tu_read_file(full, len);
}

/* tu_openapi_dir - the OpenAPI directory, or NULL (absent and not CI: the caller skips) */
static inline const char *tu_openapi_dir(void)
{
    const char *d = getenv("RTE_STEDI_OPENAPI_DIR"), *ci = getenv("CI");
    if (d == NULL || d[0] == '\0')
        d = "../shared/stedi-openapi";
    if (access(d, R_OK) == 0)
        return d;
    if (ci != NULL &&
        (strcasecmp(ci, "true") == 0 || strcmp(ci, "1") == 0 || strcasecmp(ci, "yes") == 0))
        fail_msg("%s is missing: CI must run the golden cases read from Stedi's published "
                 "OpenAPI (set RTE_STEDI_OPENAPI_DIR or check out ../shared)",
                 d);
    return NULL;
}

/*
 * tu_openapi - the whole file <openapi dir>/<path>, NUL-terminated (free
 * it); skips the calling test, with a message, when the directory is absent
 */
static inline char *tu_openapi(const char *path, size_t *len)
{
    char full[512];
    const char *d = tu_openapi_dir();
    if (d == NULL) {
        print_message("skipped: ../shared/stedi-openapi (Stedi's published OpenAPI) is not "
                      "beside this checkout; set RTE_STEDI_OPENAPI_DIR to run the golden "
                      "cases\n");
        skip();
    }
    snprintf(full, sizeof full, "%s/%s", d, path);
    return tu_read_file(full, len);
}

/* tu_free_port - a loopback port nobody listened on a moment ago */
static inline int tu_free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

/* tu_redis_start - redis-server on port; its pid once it answers PING, -1 if it never does */
static inline pid_t tu_redis_start(int port)
{
    char ports[16], url[64], err[256];
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("redis-server", "redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        rte_redis *r = rte_redis_new(url, 500, err, sizeof err);
        int ok = r != NULL && rte_redis_ping(r) == 0;
        rte_redis_free(r);
        if (ok)
            return pid;
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* tu_redis_stop - SIGTERM and reap */
static inline void tu_redis_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

/* the redis-server of a test group and a client connected to it */
typedef struct {
    pid_t pid;
    char url[64];
    rte_redis *r;
} tu_redis;

/* tu_redis_up - a redis-server on a free port and a client (timeout_ms) to it; 0, or -1 */
static inline int tu_redis_up(tu_redis *t, int timeout_ms)
{
    char err[256];
    int port = tu_free_port();

    snprintf(t->url, sizeof t->url, "redis://127.0.0.1:%d", port);
    t->pid = tu_redis_start(port);
    t->r = t->pid > 0 ? rte_redis_new(t->url, timeout_ms, err, sizeof err) : NULL;
    return t->r ? rte_redis_ping(t->r) : -1;
}

/* tu_redis_down - the client closed, the server stopped */
static inline void tu_redis_down(tu_redis *t)
{
    rte_redis_free(t->r);
    t->r = NULL;
    tu_redis_stop(t->pid);
    t->pid = 0;
}

#endif
