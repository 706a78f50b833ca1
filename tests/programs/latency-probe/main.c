/*
 * latency-probe - open-loop HTTP/1.1 latency at a fixed request rate.
 *
 * wrk keeps every connection busy, so at 32 connections it measures a
 * saturated machine: its latency is mostly queueing (32 / throughput). This
 * probe sends GETs on C keep-alive connections at a fixed total rate and
 * measures each response from the moment its request was due, not from
 * when it was sent, so a stalled server cannot hide its stall by delaying
 * the next request (coordinated omission). One thread, epoll, at most one
 * request in flight per connection; a request that falls due while its
 * connection is still waiting is sent as soon as the answer arrives and is
 * still timed from its due time. A request whose connection was free when
 * it fell due is timed from when it was actually sent: the probe's own
 * wake-up delay (a shared machine's scheduler, timer slack) is not the
 * server's, and is reported apart as send-lag.
 *
 * Usage: latency-probe PORT PATH [connections=32] [rate=10000] [seconds=5]
 * (127.0.0.1 only). Prints one line:
 *   sent N ok N bad N reconnects N rate R/s p50 Xus p90 Xus p99 Xus p99.9 Xus max Xus
 *   send-lag-p99 Xus
 * (a connection the server closes is reopened; a request lost with it is bad)
 * and exits 1 if no request got a 2xx answer. Responses must carry a
 * Content-Length (chunked bodies are not supported).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define BUF 65536

struct conn {
    int fd;
    int busy;         /* a request is in flight */
    int64_t due_ns;   /* when the in-flight (or next) request was due */
    int64_t free_ns;  /* when the last answer arrived (or the connection opened) */
    int64_t start_ns; /* what the in-flight request is timed from */
    size_t have;      /* bytes of the current response read */
    char buf[BUF];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int connect_to(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        return -1;
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* a whole response in c->buf: its total length and status, else 0 */
static size_t response_complete(const struct conn *c, int *status)
{
    const char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    const char *cl;
    size_t head, body;

    if (end == NULL)
        return 0;
    head = (size_t)(end - c->buf) + 4;
    cl = memmem(c->buf, head, "\r\ncontent-length:", 17);
    if (cl == NULL)
        cl = memmem(c->buf, head, "\r\nContent-Length:", 17);
    if (cl == NULL)
        return (size_t)-1;
    body = (size_t)strtoul(cl + 17, NULL, 10);
    if (c->have < head + body)
        return 0;
    *status = (int)strtol(c->buf + 9, NULL, 10);
    return head + body;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT PATH [connections=32] [rate=10000] [seconds=5]\n", argv[0]);
        return 2;
    }
    int port = (int)strtol(argv[1], NULL, 10);
    const char *path = argv[2];
    int nconn = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 32;
    double rate = argc > 4 ? strtod(argv[4], NULL) : 10000;
    double secs = argc > 5 ? strtod(argv[5], NULL) : 5;
    if (port <= 0 || nconn < 1 || nconn > MAX_CONNS || rate <= 0 || secs <= 0) {
        fprintf(stderr, "latency-probe: bad arguments\n");
        return 2;
    }

    char req[1024];
    int reqlen = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    int64_t interval = (int64_t)(1e9 * nconn / rate); /* per connection */
    size_t cap = (size_t)(rate * secs) + (size_t)nconn + 16;
    int64_t *lat = malloc(cap * sizeof *lat), *lag = malloc(cap * sizeof *lag);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t nlat = 0, nlag = 0, sent = 0, bad = 0, reconnects = 0;

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake at the due time, not up to 50 us after */
    if (lat == NULL || lag == NULL || conns == NULL || ep < 0) {
        fprintf(stderr, "latency-probe: out of memory\n");
        return 2;
    }
    int64_t t0 = now_ns() + 20000000LL, t_end = t0 + (int64_t)(secs * 1e9);
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        c->fd = connect_to(port);
        if (c->fd < 0) {
            fprintf(stderr, "latency-probe: cannot connect to 127.0.0.1:%d: %s\n", port,
                    strerror(errno));
            return 1;
        }
        c->due_ns = t0 + interval * i / nconn; /* spread the connections over one interval */
        c->free_ns = now_ns();
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }

    for (;;) {
        int64_t now = now_ns(), next = INT64_MAX;
        int live = 0;
        for (int i = 0; i < nconn; i++) {
            struct conn *c = &conns[i];
            if (c->due_ns >= t_end && !c->busy)
                continue;
            live = 1;
            if (c->busy || c->due_ns >= t_end)
                continue;
            if (c->due_ns <= now) {
                if (write(c->fd, req, (size_t)reqlen) != reqlen) {
                    fprintf(stderr, "latency-probe: write: %s\n", strerror(errno));
                    return 1;
                }
                c->busy = 1;
                c->have = 0;
                sent++;
                /* busy past its due time: the server's delay, timed from due; else from now */
                c->start_ns = c->free_ns > c->due_ns ? c->due_ns : now;
                if (nlag < cap)
                    lag[nlag++] = now - (c->free_ns > c->due_ns ? c->free_ns : c->due_ns);
            } else if (c->due_ns < next) {
                next = c->due_ns;
            }
        }
        if (!live)
            break;
        /* sleep to the next due time with ns resolution (a ms timeout would spin) */
        int64_t wait = next == INT64_MAX ? 100000000LL : next - now;
        struct timespec ts = {(time_t)(wait / 1000000000LL), (long)(wait % 1000000000LL)};
        struct epoll_event evs[64];
        int n = epoll_pwait2(ep, evs, 64, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "latency-probe: epoll: %s\n", strerror(errno));
            return 1;
        }
        for (int e = 0; e < n; e++) {
            struct conn *c = &conns[evs[e].data.u32];
            ssize_t got = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
            if (got <= 0) { /* the server closed it (keep-alive limit): a lost request, reconnect */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = connect_to(port);
                if (c->fd < 0) {
                    fprintf(stderr, "latency-probe: reconnect: %s\n", strerror(errno));
                    return 1;
                }
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[e].data.u32};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                reconnects++;
                if (c->busy) {
                    bad++;
                    c->busy = 0;
                    c->due_ns += interval;
                }
                c->free_ns = now_ns();
                continue;
            }
            c->have += (size_t)got;
            int status = 0;
            size_t len = response_complete(c, &status);
            if (len == (size_t)-1) {
                fprintf(stderr, "latency-probe: response without Content-Length\n");
                return 1;
            }
            if (len == 0)
                continue;
            int64_t done = now_ns();
            if (status >= 200 && status < 300)
                lat[nlat++] = done - c->start_ns;
            else
                bad++;
            c->busy = 0;
            c->free_ns = done;
            c->due_ns += interval;
        }
    }

    if (nlat == 0) {
        fprintf(stderr, "latency-probe: no 2xx answers (%zu bad)\n", bad);
        return 1;
    }
    qsort(lat, nlat, sizeof *lat, cmp_i64);
    qsort(lag, nlag, sizeof *lag, cmp_i64);
#define PCT(p) (lat[(size_t)((double)(nlat - 1) * (p))] / 1000)
    printf("sent %zu ok %zu bad %zu reconnects %zu rate %.0f/s p50 %lldus p90 %lldus p99 %lldus "
           "p99.9 %lldus max %lldus send-lag-p99 %lldus\n",
           sent, nlat, bad, reconnects, (double)(nlat + bad) / secs, (long long)PCT(0.50),
           (long long)PCT(0.90), (long long)PCT(0.99), (long long)PCT(0.999),
           (long long)(lat[nlat - 1] / 1000),
           (long long)(lag[(size_t)((double)(nlag - 1) * 0.99)] / 1000));
    for (int i = 0; i < nconn; i++)
        close(conns[i].fd);
    close(ep);
    free(conns);
    free(lat);
    free(lag);
    return 0;
}
