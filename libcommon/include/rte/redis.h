/*
 * redis.h - Redis connections: blocking with reconnect, and non-blocking.
 *
 * rte_redis is one blocking hiredis connection with connect and command
 * timeouts. When the connection breaks, the next command reconnects; while
 * Redis stays unreachable, reconnect attempts back off exponentially
 * (100 ms doubling to 5 s) and commands in between fail at once with
 * "redis unreachable" instead of stalling callers. Error replies and I/O
 * errors are both returned as NULL with a message; callers never see a
 * REDIS_REPLY_ERROR. Pipelining sends many commands in one round trip.
 *
 * rte_redis_async is the non-blocking path for event-loop code: commands are
 * queued from any thread and run on the connection's own I/O thread
 * (hiredis async API over poll(2)); the callback runs on that I/O thread.
 * It reconnects with the same backoff; commands issued while disconnected
 * complete at once with an error.
 *
 * URLs: redis://host:port[/db] (default 127.0.0.1:6379) or unix:/path.
 * When url is NULL, RTE_REDIS_URL is used.
 *
 * Thread safety: an rte_redis belongs to one thread at a time (use
 * rte_redis_thread for a per-thread connection). rte_redis_async_* may be
 * called from any thread.
 */
#ifndef RTE_REDIS_H
#define RTE_REDIS_H

#include <hiredis.h>
#include <stddef.h>

typedef struct rte_redis rte_redis;
typedef struct rte_redis_async rte_redis_async;

/* rte_redis_new - a connection to url (connects lazily on first use); NULL + err if url is
 * malformed */
rte_redis *rte_redis_new(const char *url, int timeout_ms, char *err, size_t errlen);

/* rte_redis_free - close and free */
void rte_redis_free(rte_redis *r);

/*
 * rte_redis_cmd - run one command (printf-style as redisCommand); the reply
 * (caller frees with freeReplyObject), or NULL with err on I/O error or an
 * error reply
 */
redisReply *rte_redis_cmd(rte_redis *r, char *err, size_t errlen, const char *fmt, ...);

/* rte_redis_cmdargv - run one command given as argv/argvlen (binary safe) */
redisReply *rte_redis_cmdargv(rte_redis *r, int argc, const char **argv, const size_t *argvlen,
                              char *err, size_t errlen);

/*
 * rte_redis_pipeline - send n commands (each as argc/argv/argvlen) in one
 * round trip and read n replies into replies[] (caller frees each). Returns 0;
 * -1 with err on I/O error (replies all NULL). Error replies are left in
 * replies[] as REDIS_REPLY_ERROR for the caller to inspect.
 */
typedef struct rte_redis_argv {
    int argc;
    const char **argv;
    const size_t *argvlen;
} rte_redis_argv;
int rte_redis_pipeline(rte_redis *r, int n, const rte_redis_argv *cmds, redisReply **replies,
                       char *err, size_t errlen);

/* rte_redis_ping - 0 if PING answered PONG within the timeout, else -1 */
int rte_redis_ping(rte_redis *r);

/* rte_redis_url - the URL this connection uses; borrowed */
const char *rte_redis_url(const rte_redis *r);

/*
 * rte_redis_thread - this thread's connection to url (created on first use,
 * freed when the thread exits); borrowed. url NULL = RTE_REDIS_URL or the
 * default. All threads must use the same url per process.
 */
rte_redis *rte_redis_thread(const char *url, int timeout_ms);

/* rte_redis_default_url - RTE_REDIS_URL or redis://127.0.0.1:6379; borrowed */
const char *rte_redis_default_url(void);

typedef void (*rte_redis_cb)(redisReply *reply, const char *err, void *arg);

/* rte_redis_async_new - start the I/O thread for url; NULL + err if url is malformed */
rte_redis_async *rte_redis_async_new(const char *url, int timeout_ms, char *err, size_t errlen);

/*
 * rte_redis_async_cmd - queue a command (argv copied); cb runs once on the
 * I/O thread with the reply (borrowed, valid during cb; error replies have
 * reply NULL and err set). Returns 0, or -1 if the client is shutting down
 * (cb not called).
 */
int rte_redis_async_cmd(rte_redis_async *a, rte_redis_cb cb, void *arg, int argc, const char **argv,
                        const size_t *argvlen);

/* rte_redis_async_free - stop the I/O thread; pending callbacks get an error first */
void rte_redis_async_free(rte_redis_async *a);

/*
 * Subscriber: one thread holds a SUBSCRIBE on one channel, reconnecting with
 * backoff. on_msg runs on that thread for every message (payload borrowed,
 * valid during the call). on_state(arg, 1) runs after each (re)subscribe and
 * on_state(arg, 0) after each loss: messages published in between are lost,
 * so a cache invalidated by them must be flushed then.
 */
typedef struct rte_redis_sub rte_redis_sub;
typedef void (*rte_redis_msg_fn)(void *arg, const char *channel, const char *msg, size_t len);
typedef void (*rte_redis_sub_state_fn)(void *arg, int subscribed);

/* rte_redis_subscribe - start a subscriber thread on channel; NULL + err on a bad url/channel */
rte_redis_sub *rte_redis_subscribe(const char *url, int timeout_ms, const char *channel,
                                   rte_redis_msg_fn on_msg, rte_redis_sub_state_fn on_state,
                                   void *arg, char *err, size_t errlen);

/* rte_redis_sub_free - stop and join the thread (within ~200 ms); never from a callback */
void rte_redis_sub_free(rte_redis_sub *s);

#endif
