/*
 * kafka-probe - drive rte/kafka.h from integration tests.
 *
 *   kafka-probe consume --group G --topic T --out FILE [--fail-on S]
 *                       [--poison-on S] [--slow-ms N] [--max-retries N]
 *                       [--fail-while FILE] [--batch N]
 *   kafka-probe consume --group G --topic T --discard --expect N [--batch N]
 *   kafka-probe produce --topic T --count N [--start I] [--sync | --async]
 *                       [--batched N [--oversize-at I]]
 *   kafka-probe connected [--repeat N] [--interval-ms N]
 *   common options: [--config FILE] [--brokers LIST]
 *
 * consume runs one group member whose handler appends
 * "partition offset key payload\n" to FILE (fsync'd) once done; a payload
 * containing the --poison-on text is POISON ("payload contains S"), one
 * containing the --fail-on text is RETRY, and so is every message while the
 * --fail-while FILE exists (a dependency outage); --slow-ms sleeps before finishing
 * (logging "kafka-probe: handling ..." first) so a test can kill -9 mid-message.
 * --batch N uses the batch handler (batches of up to N): poison messages get
 * a POISON verdict, a --fail-on message or --fail-while makes the whole
 * batch RETRY, --slow-ms sleeps once per batch, and each line also carries
 * the size of the batch the message came in ("... payload bN").
 * --discard makes the handler do nothing (no --out): the raw consume rate
 * of the consumer under the same settings, for benchmarks; --expect N then
 * stops once N messages were handled and prints "kafka-probe: consumed=N
 * seconds=S rate=R", S from the start of the first handler call to the end
 * of the one that reached N (bench/cache-warmer.sh).
 * SIGTERM/SIGINT stop it cleanly (commit, leave the group), exit 0.
 * produce sends key k<i>, payload m<i> for i in [start, start+count) and
 * exits 0 only once all are acknowledged; without --sync it waits on the
 * delivery watermark (rte_kafka_delivered_seq) and prints
 * "kafka-probe: produced_seq=N delivered_seq=N failed=0". --batched N makes
 * the thread a batching one (rte_kafka_batch_begin) that sends with
 * rte_kafka_produce_batched and flushes after every N messages, as an HTTP
 * loop does after each turn; --oversize-at I gives message I a 20,000-byte
 * payload (set kafka.producer.message.max.bytes below it to see a batched
 * message refused); it then also prints "kafka-probe: refused=R" and
 * exits 0 if only the oversize message was lost. --async sends each with
 * rte_kafka_produce_async, waits (up to 30 s) for every message's delivery
 * function, prints "kafka-probe: async ok=N failed=F twice=T first_error=E"
 * and exits 0 once each function was called exactly once, acknowledged or
 * not (the test judges ok/failed). connected prints
 * rte_kafka_producer_connected() (1/0), one line per check.
 * Brokers come from --brokers, else rte_kafka_brokers().
 *
 * Errors: bad arguments or a client that cannot be created exit 1
 * (rte_fatal). This is a test driver: no metrics endpoint, no dedupe.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rte/config.h"
#include "rte/kafka.h"
#include "rte/log.h"

struct args {
    const char *cmd, *group, *topic, *out, *fail_on, *fail_while, *poison_on, *config, *brokers;
    long slow_ms, count, start, repeat, interval_ms, max_retries, batched, oversize_at, batch;
    long expect;
    int sync, discard, async;
    int out_fd;
    /* --discard: messages handled, monotonic ns of the first handler call */
    long handled;
    int64_t first_ns;
    rte_kafka_consumer *consumer;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static long number(const char *opt, const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        rte_fatal("%s %s: expected a number >= 0", opt, s);
    return v;
}

static void parse(int argc, char **argv, struct args *a)
{
    int i;

    if (argc < 2)
        rte_fatal("usage: kafka-probe consume|produce|connected [options] (see main.c)");
    a->cmd = argv[1];
    for (i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(o, "--sync") == 0) {
            a->sync = 1;
            continue;
        }
        if (strcmp(o, "--async") == 0) {
            a->async = 1;
            continue;
        }
        if (strcmp(o, "--discard") == 0) {
            a->discard = 1;
            continue;
        }
        if (!v)
            rte_fatal("%s: missing value", o);
        i++;
        if (strcmp(o, "--group") == 0)
            a->group = v;
        else if (strcmp(o, "--topic") == 0)
            a->topic = v;
        else if (strcmp(o, "--out") == 0)
            a->out = v;
        else if (strcmp(o, "--fail-on") == 0)
            a->fail_on = v;
        else if (strcmp(o, "--fail-while") == 0)
            a->fail_while = v;
        else if (strcmp(o, "--poison-on") == 0)
            a->poison_on = v;
        else if (strcmp(o, "--config") == 0)
            a->config = v;
        else if (strcmp(o, "--brokers") == 0)
            a->brokers = v;
        else if (strcmp(o, "--slow-ms") == 0)
            a->slow_ms = number(o, v);
        else if (strcmp(o, "--count") == 0)
            a->count = number(o, v);
        else if (strcmp(o, "--start") == 0)
            a->start = number(o, v);
        else if (strcmp(o, "--repeat") == 0)
            a->repeat = number(o, v);
        else if (strcmp(o, "--interval-ms") == 0)
            a->interval_ms = number(o, v);
        else if (strcmp(o, "--max-retries") == 0)
            a->max_retries = number(o, v);
        else if (strcmp(o, "--batch") == 0)
            a->batch = number(o, v);
        else if (strcmp(o, "--expect") == 0)
            a->expect = number(o, v);
        else if (strcmp(o, "--batched") == 0)
            a->batched = number(o, v);
        else if (strcmp(o, "--oversize-at") == 0)
            a->oversize_at = number(o, v);
        else
            rte_fatal("unknown option %s", o);
    }
}

static int contains(const rte_kafka_msg *m, const char *text)
{
    return text && memmem(m->payload, m->len, text, strlen(text)) != NULL;
}

static int write_all(int fd, const char *buf, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* --discard: count n messages and nothing else; at --expect, report and stop */
static void discarded(struct args *a, int n)
{
    if (a->handled == 0)
        a->first_ns = mono_ns();
    a->handled += n;
    if (a->expect > 0 && a->handled >= a->expect && a->handled - n < a->expect) {
        double s = (double)(mono_ns() - a->first_ns) / 1e9;
        printf("kafka-probe: consumed=%ld seconds=%.3f rate=%.0f\n", a->handled, s,
               s > 0 ? (double)a->handled / s : 0.0);
        fflush(stdout);
        rte_kafka_consumer_stop(a->consumer);
    }
}

/* consumer thread: the handler under test */
static int handler(const rte_kafka_msg *m, void *arg, char *reason, size_t reasonlen)
{
    struct args *a = arg;
    char line[8192];
    int n;

    if (a->discard) {
        discarded(a, 1);
        return RTE_KAFKA_OK;
    }
    if (contains(m, a->poison_on)) {
        snprintf(reason, reasonlen, "payload contains %s", a->poison_on);
        return RTE_KAFKA_POISON;
    }
    if (contains(m, a->fail_on)) {
        snprintf(reason, reasonlen, "payload contains %s (transient)", a->fail_on);
        return RTE_KAFKA_RETRY;
    }
    if (a->fail_while && access(a->fail_while, F_OK) == 0) {
        snprintf(reason, reasonlen, "%s exists (transient)", a->fail_while);
        return RTE_KAFKA_RETRY;
    }
    if (a->slow_ms > 0) {
        rte_log_info("kafka-probe: handling %s [%d] @%lld for %ld ms", m->topic, (int)m->partition,
                     (long long)m->offset, a->slow_ms);
        sleep_ms(a->slow_ms);
    }
    n = snprintf(line, sizeof line, "%d %lld %.*s %.*s\n", (int)m->partition, (long long)m->offset,
                 (int)m->key_len, (const char *)m->key, (int)m->len, (const char *)m->payload);
    if (n < 0 || (size_t)n >= sizeof line || write_all(a->out_fd, line, (size_t)n) < 0 ||
        fsync(a->out_fd) < 0) {
        snprintf(reason, reasonlen, "cannot append to %s: %s", a->out, strerror(errno));
        return RTE_KAFKA_RETRY;
    }
    return RTE_KAFKA_OK;
}

/* consumer thread: the batch handler under test (--batch) */
static int batch_handler(const rte_kafka_msg *ms, rte_kafka_verdict *v, int n, void *arg,
                         char *reason, size_t reasonlen)
{
    struct args *a = arg;
    char line[8192];
    int len;

    if (a->discard) {
        discarded(a, n);
        return RTE_KAFKA_OK;
    }
    for (int i = 0; i < n; i++) {
        if (contains(&ms[i], a->fail_on)) {
            snprintf(reason, reasonlen, "payload contains %s (transient)", a->fail_on);
            return RTE_KAFKA_RETRY;
        }
        if (contains(&ms[i], a->poison_on)) {
            v[i].rc = RTE_KAFKA_POISON;
            snprintf(v[i].reason, sizeof v[i].reason, "payload contains %s", a->poison_on);
        }
    }
    if (a->fail_while && access(a->fail_while, F_OK) == 0) {
        snprintf(reason, reasonlen, "%s exists (transient)", a->fail_while);
        return RTE_KAFKA_RETRY;
    }
    if (a->slow_ms > 0) {
        rte_log_info("kafka-probe: handling a batch of %d from %s for %ld ms", n, ms[0].topic,
                     a->slow_ms);
        sleep_ms(a->slow_ms);
    }
    for (int i = 0; i < n; i++) {
        const rte_kafka_msg *m = &ms[i];
        if (v[i].rc != RTE_KAFKA_OK)
            continue;
        len = snprintf(line, sizeof line, "%d %lld %.*s %.*s b%d\n", (int)m->partition,
                       (long long)m->offset, (int)m->key_len, (const char *)m->key, (int)m->len,
                       (const char *)m->payload, n);
        if (len < 0 || (size_t)len >= sizeof line || write_all(a->out_fd, line, (size_t)len) < 0) {
            snprintf(reason, reasonlen, "cannot append to %s: %s", a->out, strerror(errno));
            return RTE_KAFKA_RETRY;
        }
    }
    if (fsync(a->out_fd) < 0) {
        snprintf(reason, reasonlen, "cannot sync %s: %s", a->out, strerror(errno));
        return RTE_KAFKA_RETRY;
    }
    return RTE_KAFKA_OK;
}

static void *signal_thread(void *arg)
{
    rte_kafka_consumer *c = arg;
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
    rte_kafka_consumer_stop(c);
    return NULL;
}

static int consume(struct args *a, rte_config *cfg)
{
    const char *topics[] = {a->topic, NULL};
    rte_kafka_consumer_opts o = {.group_id = a->group,
                                 .topics = topics,
                                 .handler = a->batch > 0 ? NULL : handler,
                                 .batch_handler = a->batch > 0 ? batch_handler : NULL,
                                 .batch_max = (int)a->batch,
                                 .arg = a,
                                 .max_retries = a->max_retries > 0 ? (int)a->max_retries : 0,
                                 .retry_backoff_ms = 100,
                                 .retry_backoff_max_ms = 1000};
    rte_kafka_consumer *c;
    pthread_t sig_th;
    char err[512];

    if (!a->group || !a->topic || (!a->out && !a->discard))
        rte_fatal("consume needs --group, --topic and --out (or --discard)");
    a->out_fd = a->discard ? -1 : open(a->out, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (a->out_fd < 0 && !a->discard)
        rte_fatal("cannot open %s: %s", a->out, strerror(errno));
    o.dlq = rte_kafka_producer_new(cfg, a->brokers, err, sizeof err);
    if (!o.dlq)
        rte_fatal("%s", err);
    c = rte_kafka_consumer_new(cfg, a->brokers, &o, err, sizeof err);
    if (!c)
        rte_fatal("%s", err);
    a->consumer = c;
    if (pthread_create(&sig_th, NULL, signal_thread, c) != 0)
        rte_fatal("cannot start the signal thread");
    rte_kafka_consumer_run(c);
    pthread_kill(sig_th, SIGTERM); /* in case run stopped on its own */
    pthread_join(sig_th, NULL);
    rte_kafka_consumer_free(c);
    rte_kafka_producer_free(o.dlq, 5000);
    if (a->out_fd >= 0)
        close(a->out_fd);
    rte_log_info("kafka-probe: consumer stopped");
    return 0;
}

/* --batched: like an HTTP loop, produce_batched and a flush every a->batched messages */
static int produce_batched(const struct args *a, rte_kafka_producer *p, long *refused)
{
    static char big[20000];
    char key[32], val[32], err[512];

    memset(big, 'x', sizeof big);
    rte_kafka_batch_begin();
    for (long i = a->start; i < a->start + a->count; i++) {
        int over = a->oversize_at > 0 && i == a->oversize_at;
        snprintf(key, sizeof key, "k%ld", i);
        snprintf(val, sizeof val, "m%ld", i);
        if (rte_kafka_produce_batched(p, a->topic, key, strlen(key), over ? big : val,
                                      over ? sizeof big : strlen(val), err, sizeof err) < 0)
            rte_fatal("%s", err);
        if ((i - a->start + 1) % a->batched == 0)
            *refused += rte_kafka_batch_flush();
    }
    *refused += rte_kafka_batch_flush();
    rte_kafka_batch_end();
    return 0;
}

/* --async: one slot per message, counting its delivery function's calls */
static struct {
    pthread_mutex_t mu;
    int *calls;
    long ok, failed, twice;
    char first_error[256];
} A = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void async_delivered(void *arg, const char *error)
{
    long i = (long)(intptr_t)arg;

    pthread_mutex_lock(&A.mu);
    if (A.calls[i]++ > 0)
        A.twice++;
    else if (error != NULL) {
        if (A.failed++ == 0)
            snprintf(A.first_error, sizeof A.first_error, "%s", error);
    } else
        A.ok++;
    pthread_mutex_unlock(&A.mu);
}

/* --async: produce a->count messages with rte_kafka_produce_async and count their reports */
static int produce_async(const struct args *a, rte_kafka_producer *p)
{
    char key[32], val[32], err[512];
    long i, n = a->count, done = 0;

    A.calls = calloc((size_t)(n > 0 ? n : 1), sizeof *A.calls);
    if (A.calls == NULL)
        rte_fatal("out of memory");
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%ld", a->start + i);
        snprintf(val, sizeof val, "m%ld", a->start + i);
        if (rte_kafka_produce_async(p, a->topic, key, strlen(key), val, strlen(val), NULL, 0,
                                    async_delivered, (void *)(intptr_t)i, err, sizeof err) < 0)
            rte_fatal("%s", err);
    }
    for (int t = 0; t < 3000; t++) {
        pthread_mutex_lock(&A.mu);
        done = A.ok + A.failed;
        pthread_mutex_unlock(&A.mu);
        if (done >= n)
            break;
        sleep_ms(10);
    }
    sleep_ms(200); /* a second call for any message would come now */
    pthread_mutex_lock(&A.mu);
    printf("kafka-probe: async ok=%ld failed=%ld twice=%ld first_error=%s\n", A.ok, A.failed,
           A.twice, A.failed ? A.first_error : "-");
    int rc = A.ok + A.failed == n && A.twice == 0 ? 0 : 1;
    pthread_mutex_unlock(&A.mu);
    fflush(stdout);
    rte_kafka_producer_free(p, 1000);
    free(A.calls);
    return rc;
}

static int produce(const struct args *a, rte_config *cfg)
{
    char key[32], val[32], err[512];
    rte_kafka_producer *p;
    int left, rc;
    long i, refused = 0;

    if (!a->topic)
        rte_fatal("produce needs --topic");
    p = rte_kafka_producer_new(cfg, a->brokers, err, sizeof err);
    if (!p)
        rte_fatal("%s", err);
    if (a->async)
        return produce_async(a, p);
    for (i = a->start; a->batched == 0 && i < a->start + a->count; i++) {
        snprintf(key, sizeof key, "k%ld", i);
        snprintf(val, sizeof val, "m%ld", i);
        if (a->sync)
            rc = rte_kafka_produce_sync(p, a->topic, key, strlen(key), val, strlen(val), NULL, 0,
                                        10000, err, sizeof err);
        else
            while ((rc = rte_kafka_produce(p, a->topic, key, strlen(key), val, strlen(val), NULL, 0,
                                           err, sizeof err)) < 0 &&
                   rte_kafka_flush(p, 100) > 0)
                ; /* queue full: let it drain */
        if (rc < 0)
            rte_fatal("%s", err);
    }
    if (a->batched > 0) {
        produce_batched(a, p, &refused);
        printf("kafka-probe: refused=%ld\n", refused);
        if (refused != (a->oversize_at > 0 ? 1 : 0)) {
            rte_kafka_producer_free(p, 1000);
            return 1;
        }
    }
    if (!a->sync) {
        /* wait on the delivery watermark instead of flushing: it must reach the
         * last number handed out with no failed report */
        uint64_t want = rte_kafka_produced_seq(p), failed = 0, got = 0;
        for (i = 0; i < 3000 && (got = rte_kafka_delivered_seq(p, &failed)) < want; i++)
            sleep_ms(10);
        printf("kafka-probe: produced_seq=%llu delivered_seq=%llu failed=%llu\n",
               (unsigned long long)want, (unsigned long long)got, (unsigned long long)failed);
        fflush(stdout);
        if (got != want || failed != 0) {
            rte_kafka_producer_free(p, 1000);
            return 1;
        }
    }
    left = rte_kafka_flush(p, 30000);
    rte_kafka_producer_free(p, 1000);
    return left == 0 ? 0 : 1;
}

static int connected(const struct args *a, rte_config *cfg)
{
    char err[512];
    rte_kafka_producer *p = rte_kafka_producer_new(cfg, a->brokers, err, sizeof err);
    long i;

    if (!p)
        rte_fatal("%s", err);
    for (i = 0; i < (a->repeat > 0 ? a->repeat : 1); i++) {
        if (i > 0)
            sleep_ms(a->interval_ms > 0 ? a->interval_ms : 500);
        printf("%d\n", rte_kafka_producer_connected(p));
        fflush(stdout);
    }
    rte_kafka_producer_free(p, 1000);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    rte_config *cfg;
    sigset_t set;
    char err[512];
    int rc;

    rte_log_init("kafka-probe", RTE_LOG_INFO);
    parse(argc, argv, &a);
    cfg = rte_config_load(a.config, err, sizeof err);
    if (!cfg)
        rte_fatal("%s", err);
    if (strcmp(a.cmd, "consume") == 0) {
        /* blocked before any thread starts; signal_thread takes them */
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        rc = consume(&a, cfg);
    } else if (strcmp(a.cmd, "produce") == 0) {
        rc = produce(&a, cfg);
    } else if (strcmp(a.cmd, "connected") == 0) {
        rc = connected(&a, cfg);
    } else {
        rte_fatal("unknown command %s", a.cmd);
    }
    rte_config_free(cfg);
    return rc;
}
