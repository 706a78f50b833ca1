/*
 * redis.c - Redis connections: blocking with reconnect, and non-blocking.
 *
 * Contract in rte/redis.h. Two halves:
 *
 * Blocking (struct rte_redis): a hiredis redisContext created lazily by
 * ensure_connected(). Any I/O error drops the context; the next command
 * reconnects unless we are inside the backoff window after a failed connect,
 * in which case it fails at once. That keeps a Redis outage from turning
 * into thousands of stalled threads each waiting out a connect timeout.
 *
 * Non-blocking (struct rte_redis_async): one I/O thread per client runs a
 * small poll(2) loop over the hiredis async context's socket plus an eventfd
 * that other threads poke after queueing a command. hiredis tells us which
 * events it wants through the ev.addRead/delRead/addWrite/delWrite hooks;
 * we keep those as flags and translate them into poll events. Commands are
 * copied at queue time so callers may free their argv at once.
 *
 * What it does not do: cluster or sentinel discovery, TLS.
 */
#include "rte/redis.h"

#include <errno.h>
#include <hiredis/async.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rte/clock.h"
#include "rte/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct endpoint {
    char url[256];
    char host[128];
    int port;
    int db;
    int is_unix;
};

struct rte_redis {
    struct endpoint ep;
    int timeout_ms;
    redisContext *c;
    int64_t next_attempt_ms; /* monotonic; 0 = may connect now */
    int backoff_ms;
    int was_down;
};

static int parse_url(const char *url, struct endpoint *ep, char *err, size_t errlen)
{
    memset(ep, 0, sizeof *ep);
    if (strlen(url) >= sizeof ep->url) {
        snprintf(err, errlen, "redis url too long");
        return -1;
    }
    memcpy(ep->url, url, strlen(url) + 1);
    if (strncmp(url, "unix:", 5) == 0) {
        const char *path = url + 5;
        while (path[0] == '/' && path[1] == '/')
            path++;
        if (strlen(path) == 0 || strlen(path) >= sizeof ep->host) {
            snprintf(err, errlen, "redis url '%s': bad socket path", url);
            return -1;
        }
        memcpy(ep->host, path, strlen(path) + 1);
        ep->is_unix = 1;
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "redis url '%s': expected redis://host:port[/db] or unix:/path", url);
        return -1;
    }
    const char *h = url + 8;
    const char *at = strchr(h, '@');
    if (at != NULL)
        h = at + 1; /* credentials are not supported; skip them */
    size_t hl = strcspn(h, ":/");
    if (hl == 0 || hl >= sizeof ep->host) {
        snprintf(err, errlen, "redis url '%s': missing host", url);
        return -1;
    }
    memcpy(ep->host, h, hl);
    ep->host[hl] = '\0';
    ep->port = 6379;
    const char *p = h + hl;
    char *end;
    if (*p == ':') {
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port <= 0 || port > 65535 || (*end != '\0' && *end != '/')) {
            snprintf(err, errlen, "redis url '%s': bad port", url);
            return -1;
        }
        ep->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        long db = strtol(p + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 1000) {
            snprintf(err, errlen, "redis url '%s': bad database number", url);
            return -1;
        }
        ep->db = (int)db;
    }
    return 0;
}

/* rte_redis_default_url - RTE_REDIS_URL or the local default; borrowed */
const char *rte_redis_default_url(void)
{
    const char *u = getenv("RTE_REDIS_URL");
    return (u != NULL && u[0] != '\0') ? u : "redis://127.0.0.1:6379";
}

/* rte_redis_new - a lazily connecting connection; any thread */
rte_redis *rte_redis_new(const char *url, int timeout_ms, char *err, size_t errlen)
{
    rte_redis *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_url(url ? url : rte_redis_default_url(), &r->ep, err, errlen) != 0) {
        free(r);
        return NULL;
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    r->backoff_ms = BACKOFF_MIN_MS;
    return r;
}

/* rte_redis_free - close and free; owning thread */
void rte_redis_free(rte_redis *r)
{
    if (r == NULL)
        return;
    if (r->c != NULL)
        redisFree(r->c);
    free(r);
}

/* rte_redis_url - the URL of this connection; borrowed */
const char *rte_redis_url(const rte_redis *r)
{
    return r->ep.url;
}

static void drop(rte_redis *r)
{
    if (r->c != NULL)
        redisFree(r->c);
    r->c = NULL;
}

static int ensure_connected(rte_redis *r, char *err, size_t errlen)
{
    if (r->c != NULL)
        return 0;
    int64_t now = rte_clock_mono_ms();
    if (now < r->next_attempt_ms) {
        snprintf(err, errlen, "redis unreachable at %s (next attempt in %lld ms)", r->ep.url,
                 (long long)(r->next_attempt_ms - now));
        return -1;
    }
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    redisContext *c = r->ep.is_unix ? redisConnectUnixWithTimeout(r->ep.host, tv)
                                    : redisConnectWithTimeout(r->ep.host, r->ep.port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "redis unreachable at %s: %s", r->ep.url,
                 c ? c->errstr : "out of memory");
        if (c != NULL)
            redisFree(c);
        if (!r->was_down)
            rte_log_warn("%s; retrying with backoff", err);
        r->was_down = 1;
        r->next_attempt_ms = now + r->backoff_ms;
        r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
        return -1;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    r->c = c;
    if (r->ep.db != 0) {
        redisReply *rep = redisCommand(c, "SELECT %d", r->ep.db);
        int bad = rep == NULL || rep->type == REDIS_REPLY_ERROR;
        if (rep != NULL)
            freeReplyObject(rep);
        if (bad) {
            snprintf(err, errlen, "redis at %s: SELECT %d failed", r->ep.url, r->ep.db);
            drop(r);
            return -1;
        }
    }
    if (r->was_down)
        rte_log_info("redis reachable again at %s", r->ep.url);
    r->was_down = 0;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->next_attempt_ms = 0;
    return 0;
}

/* turn an I/O failure or error reply into NULL + err */
static redisReply *check_reply(rte_redis *r, redisReply *rep, char *err, size_t errlen)
{
    if (rep == NULL) {
        snprintf(err, errlen, "redis I/O error at %s: %s", r->ep.url,
                 r->c && r->c->err ? r->c->errstr : "connection lost");
        drop(r);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis error: %.*s", (int)rep->len, rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* rte_redis_cmd - run one printf-style command; owning thread */
redisReply *rte_redis_cmd(rte_redis *r, char *err, size_t errlen, const char *fmt, ...)
{
    if (ensure_connected(r, err, errlen) != 0)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r->c, fmt, ap);
    va_end(ap);
    return check_reply(r, rep, err, errlen);
}

/* rte_redis_cmdargv - run one binary-safe command; owning thread */
redisReply *rte_redis_cmdargv(rte_redis *r, int argc, const char **argv, const size_t *argvlen,
                              char *err, size_t errlen)
{
    if (ensure_connected(r, err, errlen) != 0)
        return NULL;
    redisReply *rep = redisCommandArgv(r->c, argc, argv, argvlen);
    return check_reply(r, rep, err, errlen);
}

/* rte_redis_pipeline - n commands in one round trip; owning thread */
int rte_redis_pipeline(rte_redis *r, int n, const rte_redis_argv *cmds, redisReply **replies,
                       char *err, size_t errlen)
{
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    if (ensure_connected(r, err, errlen) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (redisAppendCommandArgv(r->c, cmds[i].argc, cmds[i].argv, cmds[i].argvlen) != REDIS_OK)
            goto io_error;
    }
    for (int i = 0; i < n; i++) {
        void *rep = NULL;
        if (redisGetReply(r->c, &rep) != REDIS_OK)
            goto io_error;
        replies[i] = rep;
    }
    return 0;
io_error:
    snprintf(err, errlen, "redis I/O error at %s: %s", r->ep.url,
             r->c->err ? r->c->errstr : "connection lost");
    for (int i = 0; i < n; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    drop(r);
    return -1;
}

/* rte_redis_ping - 0 if Redis answered PONG; owning thread */
int rte_redis_ping(rte_redis *r)
{
    char err[256];
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "PING");
    int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? 0 : -1;
}

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
    rte_redis_free(p);
}

static void tls_init(void)
{
    pthread_key_create(&tls_key, tls_free);
}

/* rte_redis_thread - this thread's connection, created on first use; borrowed */
rte_redis *rte_redis_thread(const char *url, int timeout_ms)
{
    pthread_once(&tls_once, tls_init);
    rte_redis *r = pthread_getspecific(tls_key);
    if (r != NULL)
        return r;
    char err[256];
    r = rte_redis_new(url, timeout_ms, err, sizeof err);
    if (r == NULL)
        rte_fatal("redis: %s", err);
    pthread_setspecific(tls_key, r);
    return r;
}

/* ------------------------------------------------------------------ */
/* non-blocking client                                                 */

struct acmd {
    struct acmd *next;
    rte_redis_cb cb;
    void *arg;
    int argc;
    char **argv;
    size_t *argvlen;
};

struct rte_redis_async {
    struct endpoint ep;
    int timeout_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    struct acmd *head, *tail; /* queued, not yet handed to hiredis */
    int efd;
    atomic_int stop;
    redisAsyncContext *ac;
    int connected;
    int want_read, want_write;
    int64_t next_attempt_ms;
    int backoff_ms;
};

static void acmd_free(struct acmd *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->argvlen);
    free(c);
}

static void ev_add_read(void *p)
{
    ((rte_redis_async *)p)->want_read = 1;
}
static void ev_del_read(void *p)
{
    ((rte_redis_async *)p)->want_read = 0;
}
static void ev_add_write(void *p)
{
    ((rte_redis_async *)p)->want_write = 1;
}
static void ev_del_write(void *p)
{
    ((rte_redis_async *)p)->want_write = 0;
}
static void ev_cleanup(void *p)
{
    rte_redis_async *a = p;
    a->want_read = a->want_write = 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rte_redis_async *a = ac->data;
    if (status != REDIS_OK) {
        rte_log_warn("redis (async) unreachable at %s: %s; retrying with backoff", a->ep.url,
                     ac->errstr);
        a->ac = NULL; /* hiredis frees it after this callback */
        return;
    }
    a->connected = 1;
    a->backoff_ms = BACKOFF_MIN_MS;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rte_redis_async *a = ac->data;
    if (status != REDIS_OK && !atomic_load(&a->stop))
        rte_log_warn("redis (async) connection to %s lost: %s; reconnecting", a->ep.url,
                     ac->errstr);
    a->connected = 0;
    a->ac = NULL;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct acmd *c = priv;
    redisReply *r = reply;
    if (r == NULL)
        c->cb(NULL, "redis connection lost before the reply", c->arg);
    else if (r->type == REDIS_REPLY_ERROR)
        c->cb(NULL, r->str, c->arg);
    else
        c->cb(r, NULL, c->arg);
    acmd_free(c);
}

static void async_connect(rte_redis_async *a)
{
    int64_t now = rte_clock_mono_ms();
    if (now < a->next_attempt_ms)
        return;
    redisAsyncContext *ac = a->ep.is_unix ? redisAsyncConnectUnix(a->ep.host)
                                          : redisAsyncConnect(a->ep.host, a->ep.port);
    if (ac == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        a->next_attempt_ms = now + a->backoff_ms;
        a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
        return;
    }
    ac->data = a;
    ac->ev.data = a;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    a->ac = ac;
    a->next_attempt_ms = now + a->backoff_ms;
    a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
    if (a->ep.db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", a->ep.db);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, NULL);
    }
}

static struct acmd *take_queue(rte_redis_async *a)
{
    pthread_mutex_lock(&a->lock);
    struct acmd *q = a->head;
    a->head = a->tail = NULL;
    pthread_mutex_unlock(&a->lock);
    return q;
}

static void dispatch_queue(rte_redis_async *a)
{
    struct acmd *q = take_queue(a);
    while (q != NULL) {
        struct acmd *next = q->next;
        if (a->ac == NULL || !a->connected) {
            q->cb(NULL, "redis unreachable", q->arg);
            acmd_free(q);
        } else if (redisAsyncCommandArgv(a->ac, on_reply, q, q->argc, (const char **)q->argv,
                                         q->argvlen) != REDIS_OK) {
            q->cb(NULL, "redis command could not be queued", q->arg);
            acmd_free(q);
        }
        q = next;
    }
}

static void *async_main(void *p)
{
    rte_redis_async *a = p;
    while (!atomic_load(&a->stop)) {
        if (a->ac == NULL)
            async_connect(a);
        struct pollfd fds[2] = {{a->efd, POLLIN, 0}, {-1, 0, 0}};
        if (a->ac != NULL) {
            fds[1].fd = a->ac->c.fd;
            fds[1].events = (short)((a->want_read ? POLLIN : 0) | (a->want_write ? POLLOUT : 0));
        }
        int n = poll(fds, 2, 100);
        if (n < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            ssize_t rd = read(a->efd, &v, sizeof v);
            (void)rd;
        }
        if (a->ac != NULL && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            redisAsyncHandleRead(a->ac);
        if (a->ac != NULL && (fds[1].revents & POLLOUT))
            redisAsyncHandleWrite(a->ac);
        if (a->ac != NULL && !a->connected)
            continue; /* still connecting: keep commands queued */
        dispatch_queue(a);
    }
    if (a->ac != NULL)
        redisAsyncFree(a->ac); /* pending callbacks get reply NULL */
    a->ac = NULL;
    a->connected = 0;
    dispatch_queue(a);
    return NULL;
}

/* rte_redis_async_new - start the I/O thread; any thread */
rte_redis_async *rte_redis_async_new(const char *url, int timeout_ms, char *err, size_t errlen)
{
    rte_redis_async *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_url(url ? url : rte_redis_default_url(), &a->ep, err, errlen) != 0) {
        free(a);
        return NULL;
    }
    a->timeout_ms = timeout_ms;
    a->backoff_ms = BACKOFF_MIN_MS;
    a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&a->lock, NULL);
    atomic_init(&a->stop, 0);
    if (a->efd < 0 || pthread_create(&a->thread, NULL, async_main, a) != 0) {
        snprintf(err, errlen, "cannot start redis I/O thread: %s", strerror(errno));
        if (a->efd >= 0)
            close(a->efd);
        free(a);
        return NULL;
    }
    return a;
}

/* rte_redis_async_cmd - queue a command for the I/O thread; any thread */
int rte_redis_async_cmd(rte_redis_async *a, rte_redis_cb cb, void *arg, int argc, const char **argv,
                        const size_t *argvlen)
{
    if (atomic_load(&a->stop))
        return -1;
    struct acmd *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->cb = cb;
    c->arg = arg;
    c->argc = argc;
    c->argv = calloc((size_t)argc, sizeof *c->argv);
    c->argvlen = calloc((size_t)argc, sizeof *c->argvlen);
    if (c->argv == NULL || c->argvlen == NULL)
        rte_panic("out of memory");
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        c->argv[i] = malloc(len + 1);
        if (c->argv[i] == NULL)
            rte_panic("out of memory");
        memcpy(c->argv[i], argv[i], len);
        c->argv[i][len] = '\0';
        c->argvlen[i] = len;
    }
    pthread_mutex_lock(&a->lock);
    if (a->tail != NULL)
        a->tail->next = c;
    else
        a->head = c;
    a->tail = c;
    pthread_mutex_unlock(&a->lock);
    uint64_t one = 1;
    ssize_t w = write(a->efd, &one, sizeof one);
    (void)w;
    return 0;
}

/* rte_redis_async_free - stop the I/O thread and free; pending callbacks fail first */
void rte_redis_async_free(rte_redis_async *a)
{
    if (a == NULL)
        return;
    atomic_store(&a->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(a->efd, &one, sizeof one);
    (void)w;
    pthread_join(a->thread, NULL);
    close(a->efd);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- subscriber --------------------------------------------------------
 *
 * One thread per subscription: connect, SUBSCRIBE, then poll(2) the socket
 * with a short timeout (so a stop request is noticed within POLL_MS) and
 * hand every message to the callback. Any error closes the connection,
 * reports "not subscribed" and reconnects after a backoff; the caller
 * learns from on_state that it may have missed messages in between.
 */
#define SUB_POLL_MS 200

struct rte_redis_sub {
    struct endpoint ep;
    char channel[128];
    int timeout_ms;
    rte_redis_msg_fn on_msg;
    rte_redis_sub_state_fn on_state;
    void *arg;
    atomic_int stop;
    pthread_t thread;
};

static redisContext *sub_connect(rte_redis_sub *s)
{
    struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
    redisContext *c = s->ep.is_unix ? redisConnectUnixWithTimeout(s->ep.host, tv)
                                    : redisConnectWithTimeout(s->ep.host, s->ep.port, tv);
    redisReply *rep;

    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    rep = redisCommand(c, "SUBSCRIBE %s", s->channel);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(rep);
    return c;
}

/* Deliver every complete reply buffered in c; -1 when the connection broke. */
static int sub_drain(rte_redis_sub *s, redisContext *c)
{
    void *r;

    if (redisBufferRead(c) != REDIS_OK)
        return -1;
    for (;;) {
        redisReply *rep;
        if (redisGetReplyFromReader(c, &r) != REDIS_OK)
            return -1;
        if (r == NULL)
            return 0;
        rep = r;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
            rep->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(rep->element[0]->str, "message") == 0 &&
            rep->element[2]->type == REDIS_REPLY_STRING)
            s->on_msg(s->arg, rep->element[1]->str, rep->element[2]->str, rep->element[2]->len);
        freeReplyObject(rep);
    }
}

static void *sub_main(void *arg)
{
    rte_redis_sub *s = arg;
    int backoff = BACKOFF_MIN_MS, was_down = 0;

    while (!atomic_load(&s->stop)) {
        redisContext *c = sub_connect(s);
        if (c == NULL) {
            if (!was_down)
                rte_log_warn("redis subscriber: cannot subscribe to %s at %s; retrying with "
                             "backoff",
                             s->channel, s->ep.url);
            was_down = 1;
            for (int waited = 0; waited < backoff && !atomic_load(&s->stop); waited += 50)
                usleep(50 * 1000);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        if (was_down)
            rte_log_info("redis subscriber: subscribed to %s again", s->channel);
        was_down = 0;
        backoff = BACKOFF_MIN_MS;
        if (s->on_state)
            s->on_state(s->arg, 1);
        while (!atomic_load(&s->stop)) {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int n = poll(&p, 1, SUB_POLL_MS);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 || (n > 0 && sub_drain(s, c) != 0))
                break;
        }
        redisFree(c);
        if (s->on_state)
            s->on_state(s->arg, 0);
        if (!atomic_load(&s->stop))
            rte_log_warn("redis subscriber: lost the subscription to %s; reconnecting", s->channel);
    }
    return NULL;
}

/* rte_redis_subscribe - start the subscriber thread; any thread */
rte_redis_sub *rte_redis_subscribe(const char *url, int timeout_ms, const char *channel,
                                   rte_redis_msg_fn on_msg, rte_redis_sub_state_fn on_state,
                                   void *arg, char *err, size_t errlen)
{
    rte_redis_sub *s = calloc(1, sizeof *s);

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_url(url ? url : rte_redis_default_url(), &s->ep, err, errlen) != 0) {
        free(s);
        return NULL;
    }
    if (channel == NULL || channel[0] == '\0' || strlen(channel) >= sizeof s->channel ||
        on_msg == NULL) {
        snprintf(err, errlen, "redis subscribe: channel must be 1..%zu characters and on_msg set",
                 sizeof s->channel - 1);
        free(s);
        return NULL;
    }
    snprintf(s->channel, sizeof s->channel, "%s", channel);
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    s->on_msg = on_msg;
    s->on_state = on_state;
    s->arg = arg;
    if (pthread_create(&s->thread, NULL, sub_main, s) != 0) {
        snprintf(err, errlen, "redis subscribe: cannot start the thread");
        free(s);
        return NULL;
    }
    return s;
}

/* rte_redis_sub_free - stop (within about 200 ms) and join; not from a callback */
void rte_redis_sub_free(rte_redis_sub *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    free(s);
}
