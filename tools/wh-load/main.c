/*
 * wh-load - load client for webhook-receiver's batch callbacks, used by
 * bench/webhook.sh so that the client's own CPU stays small next to the
 * receiver's (the Python client took 1.6-2.1 ms per callback).
 *
 *   wh-load --url http://HOST:PORT/PATH --secret SECRET [--redis URL]
 *           [--conns 16] [--secs 10] [--results 100]
 *           [--big 0] [--big-results 10000] [--prefix load]
 *
 * Every callback is signed as tools/stedi-sim signs it (Standard Webhooks:
 * webhook-id, webhook-timestamp, webhook-signature "v1,<base64 HMAC-SHA256
 * over id.timestamp.body>", key = rte_crypto_webhook_key of the secret)
 * and carries the body the Python bench sends: {batch_id, status,
 * completed_at, results:[{check_id, member_id, trading_partner_id, status
 * completed, eligibility{...}}]}, each callback with a batch id of its own.
 *
 * In order:
 *   1. with --redis: one 10-result warm-up callback, waited for in the cache;
 *   2. --big runs, one after the other: a --big-results callback, the time
 *      to its 202 and until rte:wh:batch:{id}:written holds every result;
 *   3. --secs seconds of --results callbacks over --conns keep-alive
 *      connections (one epoll loop, one request in flight per connection):
 *      accepted (202) and refused per second, 202 latency, the client's own
 *      CPU; with --redis, then the time until every accepted callback is
 *      fully in the cache.
 * Prints one JSON object a line on stdout as each phase ends ("phase":
 * big, start - printed as sending begins -, sustained, caught_up); exit 0,
 * 1 on bad usage, 2 when the receiver could not be reached or a callback
 * was not accepted or cached in time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/redis.h"

/* a growable byte buffer */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wh-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void buf_reserve(buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        die("out of memory");
    b->p = p;
    b->cap = cap;
}

static void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("format error");
    if (b->p == NULL || (size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

static struct {
    char host[256], port[8], path[512];
    uint8_t key[RTE_WEBHOOK_KEY_MAX];
    int keylen;
    const char *redis_url, *prefix;
    int conns, secs, results, big, big_results;
    struct sockaddr_storage addr;
    socklen_t addrlen;
} O = {.conns = 16, .secs = 10, .results = 100, .big_results = 10000, .prefix = "load"};

static size_t last_body_len; /* of the last request built */

/* the request (headers and body) of a callback for batch with n results, into out */
static void build_request(buf *out, const char *batch, int n)
{
    buf s = {0};
    char wid[37], ts[24], b64[64];
    uint8_t mac[RTE_SHA256_LEN];

    rte_uuid4(wid);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    /* the signed text is id.ts.body: build it whole, the body is its tail */
    buf_printf(&s, "%s.%s.", wid, ts);
    size_t body0 = s.len;
    buf_printf(&s,
               "{\"batch_id\":\"%s\",\"status\":\"completed\","
               "\"completed_at\":\"2026-11-01T00:00:00.000Z\",\"results\":[",
               batch);
    for (int i = 0; i < n; i++)
        buf_printf(&s,
                   "%s{\"check_id\":\"%s-%d\",\"member_id\":\"%sM%d\","
                   "\"trading_partner_id\":\"62308\",\"status\":\"completed\","
                   "\"eligibility\":{\"eligible\":true,\"copay_amount\":25,"
                   "\"network_status\":\"in_network\",\"coverage_start\":\"2026-01-01\","
                   "\"coverage_end\":\"2026-12-31\"}}",
                   i ? "," : "", batch, i, batch, i);
    buf_printf(&s, "]}");
    rte_hmac_sha256(O.key, (size_t)O.keylen, s.p, s.len, mac);
    rte_base64_encode(mac, sizeof mac, b64, sizeof b64);
    out->len = 0;
    buf_printf(out,
               "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
               "Content-Length: %zu\r\nwebhook-id: %s\r\nwebhook-timestamp: %s\r\n"
               "webhook-signature: v1,%s\r\n\r\n",
               O.path, O.host, O.port, s.len - body0, wid, ts, b64);
    last_body_len = s.len - body0;
    buf_reserve(out, s.len - body0);
    memcpy(out->p + out->len, s.p + body0, s.len - body0);
    out->len += s.len - body0;
    free(s.p);
}

/* http://host:port/path into O; 0 or -1 */
static int parse_url(const char *url)
{
    const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    if (p == NULL)
        return -1;
    const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
    if (colon == NULL || slash == NULL || colon > slash || (size_t)(colon - p) >= sizeof O.host ||
        (size_t)(slash - colon - 1) >= sizeof O.port || strlen(slash) >= sizeof O.path)
        return -1;
    snprintf(O.host, sizeof O.host, "%.*s", (int)(colon - p), p);
    snprintf(O.port, sizeof O.port, "%.*s", (int)(slash - colon - 1), colon + 1);
    snprintf(O.path, sizeof O.path, "%s", slash);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(O.host, O.port, &hints, &ai) != 0 || ai == NULL)
        return -1;
    memcpy(&O.addr, ai->ai_addr, ai->ai_addrlen);
    O.addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int dial(void)
{
    int fd = socket(O.addr.ss_family, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&O.addr, O.addrlen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * how far in (bytes) the response in b is complete, its status in *status;
 * 0 while incomplete, -1 when it is not HTTP/1.1 we can read
 */
static long response_end(const char *b, size_t len, int *status)
{
    const char *end = memmem(b, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    if (len < 12 || strncmp(b, "HTTP/1.", 7) != 0)
        return -1;
    char code[4] = {b[9], b[10], b[11], 0};
    *status = (int)strtol(code, NULL, 10);
    size_t hdr = (size_t)(end - b) + 4;
    long clen = -1;
    for (const char *p = b; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (strncasecmp(p, "content-length:", 15) == 0)
            clen = strtol(p + 15, NULL, 10);
        else if (strncasecmp(p, "transfer-encoding:", 18) == 0)
            clen = -2;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (clen == -2) { /* chunked: complete at the last chunk */
        const char *z = memmem(b + hdr, len - hdr, "0\r\n\r\n", 5);
        return z ? (long)(z + 5 - b) : 0;
    }
    if (clen < 0)
        clen = 0;
    return hdr + (size_t)clen <= len ? (long)(hdr + (size_t)clen) : 0;
}

/* one request on a blocking connection (*fd, dialled when -1); its status, or -1 */
static int one_request(int *fd, const buf *req)
{
    char in[8192];
    size_t len = 0;
    int status = -1;

    if (*fd < 0 && (*fd = dial()) < 0)
        return -1;
    for (size_t off = 0; off < req->len;) {
        ssize_t w = send(*fd, req->p + off, req->len - off, MSG_NOSIGNAL);
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    for (;;) {
        ssize_t r = recv(*fd, in + len, sizeof in - len, 0);
        if (r <= 0)
            goto fail;
        len += (size_t)r;
        long end = response_end(in, len, &status);
        if (end > 0)
            return status;
        if (end < 0 || len == sizeof in)
            goto fail;
    }
fail:
    close(*fd);
    *fd = -1;
    return -1;
}

/* results written for batch so far (SCARD of its written set), -1 on a Redis error */
static long written(rte_redis *r, const char *batch)
{
    char err[256];
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "SCARD rte:wh:batch:%s:written", batch);
    long n = rep && rep->type == REDIS_REPLY_INTEGER ? (long)rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    return n;
}

/* wait until batch has n results in the cache, up to 30 s; 0 or -1 */
static int wait_written(rte_redis *r, const char *batch, long n)
{
    int64_t t0 = rte_clock_mono_ms();
    while (written(r, batch) < n) {
        if (rte_clock_mono_ms() - t0 > 30000)
            return -1;
        usleep(2000);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the p-th percentile of xs (sorted in place), as the Python bench takes it */
static double pct(double *xs, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(xs, n, sizeof *xs, cmp_double);
    size_t i = (size_t)(p / 100 * (double)(n - 1) + 0.5);
    return xs[i < n ? i : n - 1];
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* one keep-alive connection of the sustained phase */
typedef struct conn {
    int fd;
    buf out;
    size_t off;
    char in[8192];
    size_t inlen;
    double sent_at;
    long seq; /* the callback in flight */
} conn;

static struct {
    long sent, accepted, refused, errors;
    double *lat;
    size_t nlat, caplat;
    long *ok_seq; /* the accepted callbacks' numbers, for the catch-up */
    size_t nok, capok;
} S;

/* room for one more element of elem bytes in *arr (n used of *cap), doubling; dies on OOM */
static void grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return;
    *cap = *cap ? *cap * 2 : 4096;
    *arr = realloc(*arr, *cap * elem);
    if (*arr == NULL)
        die("out of memory");
}

static void push_double(double v)
{
    grow((void **)&S.lat, &S.caplat, S.nlat, sizeof *S.lat);
    S.lat[S.nlat++] = v;
}

static void push_ok(long seq)
{
    grow((void **)&S.ok_seq, &S.capok, S.nok, sizeof *S.ok_seq);
    S.ok_seq[S.nok++] = seq;
}

static long next_seq;

static void batch_name(char *out, size_t len, long seq)
{
    snprintf(out, len, "%s-sus-%ld", O.prefix, seq);
}

/* start the next callback on c (dialling if needed); 0, or -1 when it cannot connect */
static int conn_start(int ep, conn *c)
{
    char batch[96];
    if (c->fd < 0) {
        if ((c->fd = dial()) < 0)
            return -1;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    c->seq = next_seq++;
    batch_name(batch, sizeof batch, c->seq);
    build_request(&c->out, batch, O.results);
    c->off = 0;
    c->inlen = 0;
    c->sent_at = mono_s();
    S.sent++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

static void conn_drop(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

/* the sustained phase; fills S, *elapsed and *cpu */
static void sustained(double *elapsed, double *cpu)
{
    int ep = epoll_create1(0), active = 0;
    conn *cs = calloc((size_t)O.conns, sizeof *cs);
    if (ep < 0 || cs == NULL)
        die("cannot set up the event loop");
    double cpu0 = cpu_now(), t0 = mono_s(), stop = t0 + O.secs;
    for (int i = 0; i < O.conns; i++) {
        cs[i].fd = -1;
        if (conn_start(ep, &cs[i]) != 0)
            die("cannot connect to %s:%s", O.host, O.port);
        active++;
    }
    struct epoll_event evs[64];
    while (active > 0) {
        int n = epoll_wait(ep, evs, 64, 1000);
        for (int k = 0; k < n; k++) {
            conn *c = evs[k].data.ptr;
            if (c->off < c->out.len && (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                ssize_t w = send(c->fd, c->out.p + c->off, c->out.len - c->off, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) {
                    S.errors++;
                    conn_drop(ep, c);
                    if (mono_s() >= stop || conn_start(ep, c) != 0)
                        active--;
                    continue;
                }
                if (w > 0)
                    c->off += (size_t)w;
                if (c->off == c->out.len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!(evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            ssize_t r = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, MSG_DONTWAIT);
            if (r < 0 && errno == EAGAIN)
                continue;
            int status = 0;
            long end = r > 0 ? (c->inlen += (size_t)r, response_end(c->in, c->inlen, &status)) : -1;
            if (end == 0 && c->inlen < sizeof c->in)
                continue;
            if (end <= 0) { /* closed, or a reply we cannot read: a fresh connection */
                S.errors++;
                conn_drop(ep, c);
            } else {
                push_double(mono_s() - c->sent_at);
                if (status == 202) {
                    S.accepted++;
                    push_ok(c->seq);
                } else {
                    S.refused++;
                }
            }
            if (mono_s() >= stop || conn_start(ep, c) != 0) {
                if (c->fd >= 0)
                    conn_drop(ep, c);
                active--;
            }
        }
    }
    *elapsed = mono_s() - t0;
    *cpu = cpu_now() - cpu0;
    for (int i = 0; i < O.conns; i++)
        free(cs[i].out.p);
    free(cs);
    close(ep);
}

/* seconds until every accepted callback of the sustained phase is in the cache; -1 after 60 s */
static double catch_up(rte_redis *r)
{
    char err[256], (*keys)[128] = calloc(S.nok ? S.nok : 1, sizeof *keys);
    const char *(*argv)[2] = calloc(S.nok ? S.nok : 1, sizeof *argv);
    rte_redis_argv *cmds = calloc(S.nok ? S.nok : 1, sizeof *cmds);
    redisReply **reps = calloc(S.nok ? S.nok : 1, sizeof *reps);
    double t0 = mono_s(), took = -1;
    size_t pending = S.nok;
    long *left = S.ok_seq;

    if (keys == NULL || argv == NULL || cmds == NULL || reps == NULL)
        die("out of memory");
    while (pending > 0 && mono_s() - t0 < 60) {
        size_t still = 0;
        for (size_t i0 = 0; i0 < pending; i0 += 1000) {
            int n = pending - i0 < 1000 ? (int)(pending - i0) : 1000;
            for (int i = 0; i < n; i++) {
                char batch[96];
                batch_name(batch, sizeof batch, left[i0 + i]);
                snprintf(keys[i0 + i], sizeof keys[0], "rte:wh:batch:%s:written", batch);
                argv[i0 + i][0] = "SCARD";
                argv[i0 + i][1] = keys[i0 + i];
                cmds[i0 + i] = (rte_redis_argv){2, argv[i0 + i], NULL};
            }
            if (rte_redis_pipeline(r, n, cmds + i0, reps + i0, err, sizeof err) != 0)
                die("redis: %s", err);
        }
        for (size_t i = 0; i < pending; i++) {
            if (!(reps[i]->type == REDIS_REPLY_INTEGER && reps[i]->integer >= O.results))
                left[still++] = left[i];
            freeReplyObject(reps[i]);
        }
        pending = still;
        if (pending > 0)
            usleep(20000);
    }
    if (pending == 0)
        took = mono_s() - t0;
    free(keys);
    free(argv);
    free(cmds);
    free(reps);
    return took;
}

static int int_arg(const char *name, const char *v, int lo, int hi)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "wh-load: %s: expected an integer %d..%d\n", name, lo, hi);
        exit(1);
    }
    return (int)n;
}

static void usage(void)
{
    fputs("usage: wh-load --url http://HOST:PORT/PATH --secret SECRET [--redis URL]\n"
          "               [--conns 16] [--secs 10] [--results 100] [--big 0]\n"
          "               [--big-results 10000] [--prefix load]\n",
          stderr);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *secret = NULL;
    char err[256];
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--url") == 0)
            url = v;
        else if (strcmp(a, "--secret") == 0)
            secret = v;
        else if (strcmp(a, "--redis") == 0)
            O.redis_url = v;
        else if (strcmp(a, "--prefix") == 0)
            O.prefix = v;
        else if (strcmp(a, "--conns") == 0)
            O.conns = int_arg(a, v, 1, 1024);
        else if (strcmp(a, "--secs") == 0)
            O.secs = int_arg(a, v, 0, 3600);
        else if (strcmp(a, "--results") == 0)
            O.results = int_arg(a, v, 1, 100000);
        else if (strcmp(a, "--big") == 0)
            O.big = int_arg(a, v, 0, 1000);
        else if (strcmp(a, "--big-results") == 0)
            O.big_results = int_arg(a, v, 1, 100000);
        else
            usage();
    }
    if (url == NULL || secret == NULL)
        usage();
    if (parse_url(url) != 0 || strlen(O.prefix) > 40) {
        fprintf(stderr, "wh-load: --url: expected http://HOST:PORT/PATH that resolves\n");
        return 1;
    }
    O.keylen = rte_crypto_webhook_key(secret, O.key, err, sizeof err);
    if (O.keylen < 0) {
        fprintf(stderr, "wh-load: --secret: %s\n", err);
        return 1;
    }
    rte_redis *r = NULL;
    if (O.redis_url != NULL && (r = rte_redis_new(O.redis_url, 5000, err, sizeof err)) == NULL) {
        fprintf(stderr, "wh-load: --redis: %s\n", err);
        return 1;
    }
    buf req = {0};
    char batch[96];
    int fd = -1;
    if (r != NULL) { /* warm-up: the consumer has joined, the connection is open */
        snprintf(batch, sizeof batch, "%s-warmup", O.prefix);
        build_request(&req, batch, 10);
        if (one_request(&fd, &req) != 202 || wait_written(r, batch, 10) != 0)
            die("warm-up callback not accepted and cached within 30 s");
    }
    double *cached = calloc((size_t)O.big + 1, sizeof *cached),
           *acks = calloc((size_t)O.big + 1, sizeof *acks);
    size_t big_bytes = 0;
    if (cached == NULL || acks == NULL)
        die("out of memory");
    for (int k = 0; k < O.big; k++) {
        snprintf(batch, sizeof batch, "%s-big-%d", O.prefix, k);
        build_request(&req, batch, O.big_results);
        big_bytes = last_body_len;
        double t0 = mono_s();
        int st = one_request(&fd, &req);
        acks[k] = mono_s() - t0;
        if (st != 202)
            die("%d-result callback answered %d", O.big_results, st);
        if (r != NULL && wait_written(r, batch, O.big_results) != 0)
            die("%s not in the cache after 30 s", batch);
        cached[k] = r != NULL ? mono_s() - t0 : -1;
    }
    if (O.big > 0) {
        printf("{\"phase\":\"big\",\"runs\":%d,\"results\":%d,\"bytes\":%zu,\"ack_ms\":[", O.big,
               O.big_results, big_bytes);
        for (int k = 0; k < O.big; k++)
            printf("%s%.1f", k ? "," : "", acks[k] * 1000);
        printf("],\"cached_ms\":[");
        for (int k = 0; k < O.big; k++)
            printf("%s%.1f", k ? "," : "", cached[k] * 1000);
        printf("]}\n");
    }
    free(cached);
    free(acks);
    if (fd >= 0)
        close(fd);
    free(req.p);
    if (O.secs == 0)
        goto out;

    /* the caller may sample other processes' CPU between these two lines */
    printf("{\"phase\":\"start\"}\n");
    fflush(stdout);
    double elapsed = 0, cpu = 0;
    sustained(&elapsed, &cpu);
    printf("{\"phase\":\"sustained\",\"secs\":%.3f,\"conns\":%d,\"results\":%d,\"sent\":%ld,"
           "\"accepted\":%ld,\"refused\":%ld,\"errors\":%ld,\"p50_ms\":%.1f,\"p99_ms\":%.1f,"
           "\"client_cpu_s\":%.3f}\n",
           elapsed, O.conns, O.results, S.sent, S.accepted, S.refused, S.errors,
           pct(S.lat, S.nlat, 50) * 1000, pct(S.lat, S.nlat, 99) * 1000, cpu);
    fflush(stdout);
    if (r != NULL && S.nok > 0) {
        double took = catch_up(r);
        printf("{\"phase\":\"caught_up\",\"secs\":%.3f}\n", took);
        if (took < 0)
            rc = 2;
    }
out:
    free(S.lat);
    free(S.ok_seq);
    rte_redis_free(r);
    return rc;
}
