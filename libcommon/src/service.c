/*
 * service.c - the service skeleton: start-up, serving, readiness, draining.
 *
 * Contract in rte/service.h. Threads the skeleton owns:
 *
 *   main      parses arguments, builds everything, then waits in sigwait()
 *             for SIGTERM/SIGINT (drain) and SIGHUP (reload). All signals we
 *             handle are blocked before any thread starts, so only this
 *             thread ever sees them and no handler runs in signal context.
 *   http      runs the h2o loop serving the admin port and the public port.
 *   probe     checks declared dependencies every health.interval and
 *             publishes readiness (an atomic flag read by /readyz and gRPC
 *             health). It also asks the consumers whether one has been out
 *             of its group, or behind without progress, for longer than
 *             health.consumer_stuck_after: librdkafka rejoins by itself when
 *             it can, but a member whose JoinGroup is never answered holds
 *             nothing while callbacks wait in Kafka, and only readiness (and
 *             rte_kafka_consumer_stuck_seconds) can say so.
 *   consumer  one per declared topic, inside rte_kafka_consumer_run.
 *   timer     one per declared timer.
 *   watchdog  started by a drain; exits 1 if the drain outlives the deadline.
 *   gRPC workers belong to grpc_server.c.
 *
 * Drain order matters: readiness first (so load balancers stop sending),
 * then the public listener and gRPC stop accepting and finish what they
 * hold, then consumers finish and commit, then timers, then the service's
 * own shutdown, then the producer flush (after everyone who produces has
 * stopped), and the admin port last so /metrics stays scrapeable to the end.
 * Each step has its share of shutdown.deadline, so a Kafka that is gone
 * cannot hold the drain: calls until 80 %, consumers leave their groups by
 * 80 % (a coordinator that does not answer is left to the session timeout,
 * their uncommitted offsets redelivered), the producer flushes until 90 %
 * and what it still holds is dropped, counted and logged once (exit 1). The
 * watchdog is the backstop for anything else and names the step it ended.
 *
 * Process-wide state lives in one static struct: one service per process.
 */
#include "rte/service.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "rte/metrics.h"

#define MAX_CONSUMERS 16
#define MAX_HTTP_LOOPS 63 /* http.threads - 1 at most */
#define MAX_TIMERS 16
#define MAX_OLD_CONFIGS 64
#define MAX_EXTRA_PORTS 4 /* rte_service_publish_port */

struct timer_rt {
    const rte_timer_decl *decl;
    pthread_t thread;
};

static struct {
    const rte_service_def *def;
    const char *config_path;
    _Atomic(const rte_config *) cfg;
    rte_config *old_cfgs[MAX_OLD_CONFIGS]; /* kept alive: readers hold borrowed strings */
    int nold;
    char redis_url[256];
    int redis_timeout_ms;
    rte_kafka_producer *producer;
    rte_http_server *http; /* admin port and the public port */
    pthread_t http_thread;
    rte_http_server *more_http[MAX_HTTP_LOOPS]; /* http.threads - 1 more loops on the public port */
    pthread_t more_threads[MAX_HTTP_LOOPS];
    int nmore;
    int public_port, admin_port, grpc_port;
    struct {
        char name[32];
        int port;
    } extra_ports[MAX_EXTRA_PORTS]; /* rte_service_publish_port */
    int nextra;
    rte_grpc_server *grpc;
    rte_auth *grpc_auth; /* grpc.auth.*: NULL = tokens not checked */
    rte_kafka_consumer *consumers[MAX_CONSUMERS];
    pthread_t consumer_threads[MAX_CONSUMERS];
    int nconsumers;
    pthread_mutex_t consumers_mu; /* the probe's view of the consumers vs their freeing */
    int probed_consumers;         /* under consumers_mu: how many the probe may read */
    char stuck_why[256];          /* under consumers_mu: "" or why a consumer is stuck */
    atomic_int consumers_ok;
    int64_t stuck_after_ms; /* health.consumer_stuck_after; 0 = readiness ignores it */
    struct timer_rt timers[MAX_TIMERS];
    int ntimers;
    pthread_t probe_thread;
    pthread_mutex_t lock; /* with wake: sleeping timers and the probe */
    pthread_cond_t wake;
    atomic_int stopping; /* timers and probe should return */
    atomic_int draining;
    _Atomic int64_t handlers_by; /* mono ms by which consumer handlers' waits end (drain); 0 */
    atomic_int ready;
    atomic_int redis_up, kafka_up;
    int64_t health_interval_ms;
    int64_t shutdown_deadline_ms;
    int http_threads, steer, grpc_workers; /* settings read (and checked) at start-up */
    int grpc_max_receive;                  /* grpc.max_receive_bytes */
    int retries, backoff_ms, backoff_max_ms;
    const char *tls_cert, *tls_key;
    rte_metric *m_ready, *m_dep_up, *m_info, *m_timer_runs;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .consumers_mu = PTHREAD_MUTEX_INITIALIZER,
       .consumers_ok = 1};

/* rte_service_config - current configuration; borrowed; any thread */
const rte_config *rte_service_config(void)
{
    return atomic_load(&S.cfg);
}

/* rte_service_producer - the shared producer or NULL; any thread */
rte_kafka_producer *rte_service_producer(void)
{
    return S.producer;
}

/* rte_service_redis - this thread's Redis connection; any thread */
rte_redis *rte_service_redis(void)
{
    return rte_redis_thread(S.redis_url, S.redis_timeout_ms);
}

/* rte_service_publish_port - add "name":port to the ports file; init only */
void rte_service_publish_port(const char *name, int port)
{
    if (S.nextra == MAX_EXTRA_PORTS || strlen(name) >= sizeof S.extra_ports[0].name ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz_") != strlen(name))
        rte_panic("rte_service_publish_port: bad or one too many port name '%s'", name);
    snprintf(S.extra_ports[S.nextra].name, sizeof S.extra_ports[0].name, "%s", name);
    S.extra_ports[S.nextra++].port = port;
}

/* rte_service_name - the service's name; any thread */
const char *rte_service_name(void)
{
    return S.def ? S.def->name : "unknown";
}

static char instance_id[64];
static pthread_once_t instance_once = PTHREAD_ONCE_INIT;

static void instance_make(void)
{
    char host[64] = "host", rnd[17];
    uint8_t b[4];

    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    rte_random_bytes(b, sizeof b);
    rte_hex_encode(b, sizeof b, rnd);
    snprintf(instance_id, sizeof instance_id, "%.40s:%d:%s", host, (int)getpid(), rnd);
}

/* rte_service_instance_id - any thread (made once) */
const char *rte_service_instance_id(void)
{
    pthread_once(&instance_once, instance_make);
    return instance_id;
}

/* rte_service_draining - 1 once draining began; any thread */
int rte_service_draining(void)
{
    return atomic_load(&S.draining);
}

/* rte_service_wait_until - the end of a wait begun at t0 for up to ms; any thread */
int64_t rte_service_wait_until(int64_t t0, int64_t ms)
{
    int64_t by = atomic_load(&S.handlers_by);
    return by != 0 && by < t0 + ms ? by : t0 + ms;
}

/* rte_service_ready - current readiness; any thread */
int rte_service_ready(void)
{
    return atomic_load(&S.ready);
}

static int ready_cb(void *arg)
{
    (void)arg;
    return rte_service_ready();
}

/* sleep on the shared condvar for real ms, or until stopping; 0 if stopping */
static int nap(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&S.lock);
    while (!atomic_load(&S.stopping)) {
        if (pthread_cond_timedwait(&S.wake, &S.lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&S.lock);
    return !atomic_load(&S.stopping);
}

/* ------------------------------------------------------------------ */
/* readiness                                                           */

static void set_dep(const char *name, atomic_int *flag, int up)
{
    const char *lv[] = {name, NULL};
    rte_gauge_set(S.m_dep_up, lv, up);
    int was = atomic_exchange(flag, up);
    if (was != up)
        rte_log(up ? RTE_LOG_INFO : RTE_LOG_WARN, "dependency %s is %s%s", name,
                up ? "reachable" : "unreachable",
                up ? "" : "; reporting not ready until it returns");
}

static void evaluate_readiness(void)
{
    unsigned needs = S.def->needs;
    int ok = !atomic_load(&S.draining);
    if ((needs & RTE_NEEDS_REDIS) && !atomic_load(&S.redis_up))
        ok = 0;
    if ((needs & RTE_NEEDS_KAFKA) && !atomic_load(&S.kafka_up))
        ok = 0;
    if (!atomic_load(&S.consumers_ok))
        ok = 0;
    int was = atomic_exchange(&S.ready, ok);
    rte_series_set(rte_metric_series0(S.m_ready), ok);
    if (was != ok && S.grpc != NULL)
        rte_grpc_server_health_changed(S.grpc);
}

/* consumers stuck beyond health.consumer_stuck_after make the service not ready; probe thread */
static void probe_consumers(void)
{
    char why[sizeof S.stuck_why];

    pthread_mutex_lock(&S.consumers_mu);
    int stuck =
        S.probed_consumers > 0 && rte_kafka_consumers_stuck(S.consumers, S.probed_consumers,
                                                            S.stuck_after_ms, why, sizeof why) > 0;
    snprintf(S.stuck_why, sizeof S.stuck_why, "%s", stuck ? why : "");
    pthread_mutex_unlock(&S.consumers_mu);
    int ok = !stuck;
    int was = atomic_exchange(&S.consumers_ok, ok);
    if (was && !ok)
        rte_log_warn("%s; reporting not ready until it consumes again (no restart needed)", why);
    else if (!was && ok)
        rte_log_info("kafka consumers consume again; ready as far as they are concerned");
}

static void probe_once(void)
{
    if (S.def->needs & RTE_NEEDS_REDIS)
        set_dep("redis", &S.redis_up, rte_redis_ping(rte_service_redis()) == 0);
    if (S.def->needs & RTE_NEEDS_KAFKA)
        set_dep("kafka", &S.kafka_up, rte_kafka_producer_connected(S.producer));
    probe_consumers();
    evaluate_readiness();
}

static void *probe_main(void *arg)
{
    (void)arg;
    do
        probe_once();
    while (nap(S.health_interval_ms));
    return NULL;
}

/* ------------------------------------------------------------------ */
/* admin endpoints                                                     */

static void h_metrics(rte_http_req *req, void *arg)
{
    (void)arg;
    size_t len;
    char *text = rte_metrics_render(&len);
    rte_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void h_healthz(rte_http_req *req, void *arg)
{
    (void)arg;
    static const char body[] = "{\"status\":\"alive\"}";
    rte_http_respond(req, 200, "application/json", body, sizeof body - 1);
}

static void h_readyz(rte_http_req *req, void *arg)
{
    (void)arg;
    int ready = rte_service_ready();
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "status", ready ? "ready" : "not_ready");
    cJSON_AddStringToObject(doc, "service", S.def->name);
    cJSON_AddBoolToObject(doc, "draining", rte_service_draining());
    cJSON *checks = cJSON_AddObjectToObject(doc, "checks");
    if (S.def->needs & RTE_NEEDS_REDIS)
        cJSON_AddStringToObject(checks, "redis", atomic_load(&S.redis_up) ? "ok" : "unreachable");
    if (S.def->needs & RTE_NEEDS_KAFKA)
        cJSON_AddStringToObject(checks, "kafka", atomic_load(&S.kafka_up) ? "ok" : "unreachable");
    if (S.nconsumers > 0) {
        char why[sizeof S.stuck_why];
        pthread_mutex_lock(&S.consumers_mu);
        snprintf(why, sizeof why, "%s", S.stuck_why);
        pthread_mutex_unlock(&S.consumers_mu);
        cJSON_AddStringToObject(checks, "kafka_consumers", why[0] ? why : "ok");
    }
    rte_http_respond_json(req, ready ? 200 : 503, doc);
    cJSON_Delete(doc);
}

static rte_http_route *admin_table(void)
{
    static const rte_http_route builtin[] = {
        {"GET", "/metrics", h_metrics, NULL, 0, NULL},
        {"GET", "/healthz", h_healthz, NULL, 0, NULL},
        {"GET", "/readyz", h_readyz, NULL, 0, NULL},
    };
    int nb = (int)(sizeof builtin / sizeof builtin[0]);
    int ne = 0;
    while (S.def->admin_routes != NULL && S.def->admin_routes[ne].path != NULL)
        ne++;
    rte_http_route *t = calloc((size_t)(nb + ne + 1), sizeof *t);
    if (t == NULL)
        rte_panic("out of memory");
    memcpy(t, builtin, sizeof builtin);
    for (int i = 0; i < ne; i++)
        t[nb + i] = S.def->admin_routes[i];
    return t;
}

/* end of each loop turn: what the turn's handlers produced goes to Kafka in one call */
static void flush_batched(void *arg)
{
    (void)arg;
    rte_kafka_batch_flush();
}

/* each HTTP loop thread; it batches Kafka messages per turn (rte_kafka_produce_batched) */
static void *http_main(void *arg)
{
    rte_http_server *h = arg;
    if (S.producer != NULL) {
        rte_kafka_batch_begin();
        rte_http_server_on_turn(h, flush_batched, NULL);
    }
    rte_http_server_run(h);
    rte_kafka_batch_end();
    return NULL;
}

/* Every HTTP server of the process: the main one, then the extra loops. */
static int all_http(rte_http_server **out)
{
    int n = 0;
    out[n++] = S.http;
    for (int i = 0; i < S.nmore; i++)
        out[n++] = S.more_http[i];
    return n;
}

/* ------------------------------------------------------------------ */
/* consumers and timers                                                */

static void *consumer_main(void *arg)
{
    rte_kafka_consumer_run(arg);
    return NULL;
}

static void start_consumers(const rte_config *cfg, const char *brokers)
{
    const rte_consumer_decl *d = S.def->consumers;
    for (; d != NULL && d->topic != NULL; d++) {
        if (S.nconsumers == MAX_CONSUMERS)
            rte_panic("service %s declares more than %d consumers", S.def->name, MAX_CONSUMERS);
        char group[256], err[512];
        if (d->group != NULL)
            snprintf(group, sizeof group, "%s", d->group);
        else
            snprintf(group, sizeof group, "%s.%s", S.def->name, d->topic);
        const char *topics[] = {d->topic, NULL};
        rte_kafka_consumer_opts o = {
            .group_id = group,
            .topics = topics,
            .handler = d->handler,
            .batch_handler = d->batch_handler,
            .batch_max = d->batch_max,
            .arg = d->arg,
            .max_retries = S.retries,
            .retry_backoff_ms = S.backoff_ms,
            .retry_backoff_max_ms = S.backoff_max_ms,
            .dlq = S.producer,
        };
        rte_kafka_consumer *c = rte_kafka_consumer_new(cfg, brokers, &o, err, sizeof err);
        if (c == NULL)
            rte_fatal("kafka consumer for topic %s: %s", d->topic, err);
        pthread_mutex_lock(&S.consumers_mu);
        S.consumers[S.nconsumers] = c;
        pthread_create(&S.consumer_threads[S.nconsumers], NULL, consumer_main, c);
        S.nconsumers++;
        S.probed_consumers = S.nconsumers;
        pthread_mutex_unlock(&S.consumers_mu);
        rte_log_info("consuming %s as group %s", d->topic, group);
    }
}

static void *timer_main(void *arg)
{
    struct timer_rt *t = arg;
    const char *lv[] = {t->decl->name, NULL};
    rte_series *runs = rte_metric_labels(S.m_timer_runs, lv);
    int64_t real = rte_clock_real_ms(t->decl->interval_ms);
    if (real < 1)
        real = 1;
    while (nap(real)) {
        t->decl->fn(t->decl->arg);
        rte_series_inc(runs);
    }
    return NULL;
}

static void start_timers(void)
{
    const rte_timer_decl *d = S.def->timers;
    for (; d != NULL && d->name != NULL; d++) {
        if (S.ntimers == MAX_TIMERS)
            rte_panic("service %s declares more than %d timers", S.def->name, MAX_TIMERS);
        S.timers[S.ntimers].decl = d;
        pthread_create(&S.timers[S.ntimers].thread, NULL, timer_main, &S.timers[S.ntimers]);
        S.ntimers++;
    }
}

/* ------------------------------------------------------------------ */
/* start-up                                                            */

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--config FILE] [--check-config]\n"
            "  --config FILE    YAML configuration (default: $RTE_CONFIG, else none)\n"
            "  --check-config   load and validate the configuration, then exit\n"
            "Every key can be overridden by an RTE_* environment variable; see\n"
            "docs/configuration.md.\n",
            prog);
}

static int parse_args(int argc, char **argv, int *check_only)
{
    S.config_path = getenv("RTE_CONFIG");
    *check_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            S.config_path = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0) {
            *check_only = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(argv[0]);
            exit(0);
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
            usage(argv[0]);
            return -1;
        }
    }
    return 0;
}

/* exit naming the configuration as the cause (once: a message may already say "config: ") */
__attribute__((noreturn)) static void config_fatal(const char *err)
{
    if (strncmp(err, "config: ", 8) == 0)
        err += 8;
    rte_fatal("config: %s", err);
}

static rte_config *load_config_or_die(void)
{
    char err[512];
    rte_config *cfg = rte_config_load(S.config_path, err, sizeof err);
    if (cfg == NULL)
        config_fatal(err);
    return cfg;
}

static void read_settings(const rte_config *cfg)
{
    const char *lvl = rte_config_str(cfg, "log.level", "info");
    int level = rte_log_level_parse(lvl);
    if (level < 0)
        rte_fatal("config: key 'log.level' (RTE_LOG_LEVEL) = '%s': expected debug, info, warn "
                  "or error",
                  lvl);
    rte_log_init(S.def->name, (enum rte_log_level)level);
    const char *url = rte_config_str(cfg, "redis.url", rte_redis_default_url());
    char err[256];
    rte_redis *probe = rte_redis_new(url, 100, err, sizeof err);
    if (probe == NULL)
        rte_fatal("config: key 'redis.url' (RTE_REDIS_URL): %s", err);
    rte_redis_free(probe);
    snprintf(S.redis_url, sizeof S.redis_url, "%s", url);
    S.redis_timeout_ms = (int)rte_config_duration_ms(cfg, "redis.timeout", 1000, 10, 60000);
    S.health_interval_ms = rte_config_duration_ms(cfg, "health.interval", 1000, 50, 60000);
    S.shutdown_deadline_ms = rte_config_duration_ms(cfg, "shutdown.deadline", 25000, 100, 600000);
    S.stuck_after_ms =
        rte_config_duration_ms(cfg, "health.consumer_stuck_after", 120000, 0, 3600000);
    S.http_threads = (int)rte_config_int(cfg, "http.threads", 1, 1, MAX_HTTP_LOOPS + 1);
    S.steer = rte_config_bool(cfg, "http.steer_by_cpu", 0);
    S.tls_cert = rte_config_str(cfg, "http.tls_cert", NULL);
    S.tls_key = rte_config_str(cfg, "http.tls_key", NULL);
    if ((S.tls_cert == NULL) != (S.tls_key == NULL))
        rte_fatal("config: keys 'http.tls_cert' (RTE_HTTP_TLS_CERT) and 'http.tls_key' "
                  "(RTE_HTTP_TLS_KEY) must be set together");
    S.grpc_workers = (int)rte_config_int(
        cfg, "grpc.workers", S.def->grpc_workers > 0 ? S.def->grpc_workers : 16, 1, 1024);
    S.grpc_max_receive =
        (int)rte_config_int(cfg, "grpc.max_receive_bytes", RTE_GRPC_MAX_RECEIVE, 65536, 1073741824);
    S.retries =
        (int)rte_config_int(cfg, "kafka.handler_max_retries", RTE_KAFKA_MAX_RETRIES, 0, 1000);
    S.backoff_ms = (int)rte_config_duration_ms(cfg, "kafka.handler_retry_backoff", 200, 1, 60000);
    S.backoff_max_ms =
        (int)rte_config_duration_ms(cfg, "kafka.handler_retry_backoff_max", 10000, 1, 600000);
}

static void write_ports_file(void)
{
    const char *path = getenv("RTE_PORTS_FILE");
    if (path == NULL || path[0] == '\0')
        return;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        rte_fatal("RTE_PORTS_FILE '%s': %s", path, strerror(errno));
    fprintf(f, "{\"admin\":%d,\"http\":%d,\"grpc\":%d,\"pid\":%d", S.admin_port, S.public_port,
            S.grpc_port, (int)getpid());
    for (int i = 0; i < S.nextra; i++)
        fprintf(f, ",\"%s\":%d", S.extra_ports[i].name, S.extra_ports[i].port);
    fputs("}\n", f);
    fclose(f);
    if (rename(tmp, path) != 0)
        rte_fatal("RTE_PORTS_FILE '%s': %s", path, strerror(errno));
}

/* Listen on the public address with TLS when configured; the port or -1 + err. */
static int listen_public(rte_http_server *h, const char *addr, const char *cert, const char *key,
                         char *err, size_t errlen)
{
    if (cert != NULL)
        return rte_http_server_listen_tls(h, addr, S.def->routes, cert, key, err, errlen);
    return rte_http_server_listen(h, addr, S.def->routes, err, errlen);
}

static pthread_t loop_thread(int i)
{
    return i == 0 ? S.http_thread : S.more_threads[i - 1];
}

/* the CPUs this process may run on, in order; their number */
static int allowed_cpus(int *cpus, int max)
{
    cpu_set_t set;
    int n = 0;

    if (sched_getaffinity(0, sizeof set, &set) != 0)
        rte_fatal("http.steer_by_cpu: sched_getaffinity: %s", strerror(errno));
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    return n;
}

/*
 * http.steer_by_cpu, before the loops start: the public port's group hands
 * a connection that arrives on cpus[k] (the k-th allowed CPU) to loop k mod threads
 */
static void steer_by_cpu(int threads, const int *cpus, int ncpus)
{
    char err[512];

    if (S.public_port <= 0)
        rte_fatal("config: key 'http.steer_by_cpu' (RTE_HTTP_STEER_BY_CPU): this service serves "
                  "no public port");
    if (threads < 2 || threads > ncpus)
        rte_fatal("config: key 'http.steer_by_cpu' (RTE_HTTP_STEER_BY_CPU) needs 'http.threads' "
                  "(RTE_HTTP_THREADS) between 2 and the %d CPUs this process may use; it is %d",
                  ncpus, threads);
    if (rte_http_server_steer_by_cpu(S.http, cpus, ncpus, threads, err, sizeof err) != 0)
        rte_fatal("config: key 'http.steer_by_cpu' (RTE_HTTP_STEER_BY_CPU): %s", err);
}

/* http.steer_by_cpu, once the loops run: loop i on the allowed CPUs steered to it */
static void pin_loops(int threads, const int *cpus, int ncpus)
{
    for (int i = 0; i < threads; i++) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int k = i; k < ncpus; k += threads)
            CPU_SET(cpus[k], &set);
        int rc = pthread_setaffinity_np(loop_thread(i), sizeof set, &set);
        if (rc != 0)
            rte_fatal("http.steer_by_cpu: cannot keep loop %d on its CPUs: %s", i, strerror(rc));
    }
    rte_log_info("http: %d loops, each on its own CPUs; connections steered by CPU", threads);
}

static void start_http(const rte_config *cfg)
{
    char err[512];
    int threads = S.http_threads;
    S.http = rte_http_server_new(err, sizeof err);
    if (S.http == NULL)
        rte_fatal("http: %s", err);
    const char *admin = rte_config_str(cfg, "admin.addr", "0.0.0.0:9090");
    rte_http_route *table = admin_table();
    S.admin_port = rte_http_server_listen(S.http, admin, table, err, sizeof err);
    free(table); /* the server copies route tables */
    if (S.admin_port < 0)
        rte_fatal("config: key 'admin.addr' (RTE_ADMIN_ADDR) = '%s': %s", admin, err);
    S.public_port = 0;
    if (S.def->routes != NULL) {
        const char *pub = rte_config_str(cfg, "http.addr", "0.0.0.0:8080");
        const char *cert = S.tls_cert, *key = S.tls_key;
        rte_http_server_set_reuseport(S.http, threads > 1);
        S.public_port = listen_public(S.http, pub, cert, key, err, sizeof err);
        if (S.public_port < 0)
            rte_fatal("config: key 'http.addr' (RTE_HTTP_ADDR) = '%s'%s: %s", pub,
                      cert ? " with http.tls_cert/http.tls_key" : "", err);
        /* more loops share the bound port (SO_REUSEPORT; the kernel spreads connections) */
        char same[300];
        const char *colon = strrchr(pub, ':');
        snprintf(same, sizeof same, "%.*s:%d", (int)(colon - pub), pub, S.public_port);
        for (int i = 0; i < threads - 1; i++) {
            rte_http_server *h = rte_http_server_new(err, sizeof err);
            if (h == NULL)
                rte_fatal("http: %s", err);
            rte_http_server_set_reuseport(h, 1);
            if (listen_public(h, same, cert, key, err, sizeof err) < 0)
                rte_fatal("config: key 'http.threads' (RTE_HTTP_THREADS) = %d: loop %d cannot "
                          "share %s: %s",
                          threads, i + 2, same, err);
            S.more_http[S.nmore++] = h;
        }
        if (cert != NULL)
            rte_log_info("public port %d serves TLS (HTTP/2 and HTTP/1.1 by ALPN)", S.public_port);
    }
    int steer = S.steer;
    int cpus[RTE_HTTP_STEER_MAX_CPUS], ncpus = 0;
    if (steer) {
        ncpus = allowed_cpus(cpus, RTE_HTTP_STEER_MAX_CPUS);
        steer_by_cpu(threads, cpus, ncpus);
    }
    pthread_create(&S.http_thread, NULL, http_main, S.http);
    for (int i = 0; i < S.nmore; i++)
        pthread_create(&S.more_threads[i], NULL, http_main, S.more_http[i]);
    for (int i = 0; i <= S.nmore; i++) {
        char name[32];
        snprintf(name, sizeof name, "http-loop-%d", i);
        name[15] = '\0'; /* the kernel's limit */
        pthread_setname_np(loop_thread(i), name);
    }
    if (steer)
        pin_loops(threads, cpus, ncpus);
}

/*
 * with no JWKS configured: fatal if the service has methods to protect and
 * grpc.auth.required is on (the default); loud when it is off
 */
static void auth_off(const rte_config *cfg)
{
    if (S.def->grpc == NULL || S.def->grpc[0].path == NULL)
        return;
    if (rte_config_bool(cfg, "grpc.auth.required", 1))
        rte_fatal(
            "config: key 'grpc.auth.required' (RTE_GRPC_AUTH_REQUIRED) is true but no JWKS is "
            "configured: set grpc.auth.jwks_file or grpc.auth.jwks_url with "
            "grpc.auth.issuer and grpc.auth.audience (docs/auth.md), or set "
            "grpc.auth.required=false for development only");
    rte_log_warn("INSECURE: gRPC token checks are OFF (grpc.auth.required=false, no JWKS): any "
                 "caller that reaches the gRPC port may call every %s method; never run so in "
                 "production",
                 S.def->name);
}

/* grpc.auth.*: the token verifier, or NULL when tokens are not checked */
static rte_auth *grpc_auth(const rte_config *cfg)
{
    char err[640];
    rte_auth *auth = NULL;

    if (rte_auth_from_config(cfg, &auth, err, sizeof err) < 0)
        config_fatal(err);
    if (auth == NULL)
        auth_off(cfg);
    return auth;
}

/* --check-config: grpc.auth.* validated without fetching a JWKS URL */
static void check_grpc_auth(const rte_config *cfg)
{
    char err[640];
    int configured;

    if (rte_auth_check_config(cfg, &configured, err, sizeof err) < 0)
        config_fatal(err);
    if (!configured)
        auth_off(cfg);
}

static void start_grpc(const rte_config *cfg)
{
    static const rte_grpc_method none[] = {{NULL}};
    char err[512];
    const char *addr = rte_config_str(cfg, "grpc.addr", "0.0.0.0:50051");
    rte_grpc_server_opts o = {.nworkers = S.grpc_workers, .ready = ready_cb};
    o.max_receive_bytes = S.grpc_max_receive;

    o.tls_cert_file = rte_config_str(cfg, "grpc.tls_cert", NULL);
    o.tls_key_file = rte_config_str(cfg, "grpc.tls_key", NULL);
    if (o.tls_cert_file && !o.tls_cert_file[0])
        o.tls_cert_file = NULL;
    if (o.tls_key_file && !o.tls_key_file[0])
        o.tls_key_file = NULL;
    if (!o.tls_cert_file != !o.tls_key_file)
        rte_fatal("config: keys 'grpc.tls_cert' (RTE_GRPC_TLS_CERT) and 'grpc.tls_key' "
                  "(RTE_GRPC_TLS_KEY) must be set together");
    S.grpc_auth = grpc_auth(cfg);
    o.auth = S.grpc_auth;
    S.grpc = rte_grpc_server_start(addr, S.def->grpc ? S.def->grpc : none, &o, err, sizeof err);
    if (S.grpc == NULL)
        rte_fatal("config: key '%s' (%s) = '%s': %s",
                  o.tls_cert_file ? "grpc.tls_cert" : "grpc.addr",
                  o.tls_cert_file ? "RTE_GRPC_TLS_CERT" : "RTE_GRPC_ADDR",
                  o.tls_cert_file ? o.tls_cert_file : addr, err);
    S.grpc_port = rte_grpc_server_port(S.grpc);
    if (o.tls_cert_file)
        rte_log_info("gRPC port %d serves TLS", S.grpc_port);
    if (S.grpc_auth)
        rte_log_info("gRPC token checks on: %d keys loaded", rte_auth_nkeys(S.grpc_auth));
}

static void register_metrics(void)
{
    static const char *const dep[] = {"dependency", NULL};
    static const char *const svc[] = {"service", NULL};
    static const char *const tl[] = {"timer", NULL};
    S.m_ready = rte_gauge_new("rte_ready", "1 when every dependency is reachable", NULL);
    S.m_dep_up = rte_gauge_new("rte_dependency_up", "1 when the dependency is reachable", dep);
    S.m_info = rte_gauge_new("rte_service_info", "constant 1, labelled with the service", svc);
    S.m_timer_runs = rte_counter_new("rte_timer_runs_total", "periodic timer runs", tl);
    const char *lv[] = {S.def->name, NULL};
    rte_gauge_set(S.m_info, lv, 1);
}

/* ------------------------------------------------------------------ */
/* reload and drain                                                    */

static void reload(void)
{
    char err[512];
    rte_config *cfg = rte_config_load(S.config_path, err, sizeof err);
    if (cfg == NULL) {
        rte_log_error("SIGHUP: %s; keeping the previous configuration", err);
        return;
    }
    if (S.def->reload != NULL && S.def->reload(cfg, err, sizeof err) != 0) {
        rte_log_error("SIGHUP: %s; keeping the previous configuration", err);
        rte_config_free(cfg);
        return;
    }
    int level = rte_log_level_parse(rte_config_str(cfg, "log.level", "info"));
    if (level >= 0)
        rte_log_init(S.def->name, (enum rte_log_level)level);
    const rte_config *old = atomic_exchange(&S.cfg, cfg);
    if (S.nold < MAX_OLD_CONFIGS)
        S.old_cfgs[S.nold++] = (rte_config *)old;
    rte_log_info("SIGHUP: configuration reloaded from %s", S.config_path ? S.config_path : "(env)");
}

/* what the drain is doing now, for the watchdog's last word */
static _Atomic(const char *) drain_step = "starting";

static void *watchdog_main(void *arg)
{
    (void)arg;
    int64_t until = rte_clock_mono_ms() + S.shutdown_deadline_ms;
    while (rte_clock_mono_ms() < until)
        usleep(50000);
    rte_log_error("drain did not finish within shutdown.deadline (%lld ms), still at: %s; "
                  "exiting 1",
                  (long long)S.shutdown_deadline_ms, atomic_load(&drain_step));
    _exit(1);
    return NULL;
}

/* ms from now until the drain's point at permille of shutdown.deadline after t0, at least 0 */
static int drain_left(int64_t t0, int permille)
{
    int64_t left = t0 + S.shutdown_deadline_ms * permille / 1000 - rte_clock_mono_ms();
    return left > 0 ? (int)left : 0;
}

static int drain(int signo)
{
    int64_t t0 = rte_clock_mono_ms();
    rte_log_info("%s received: draining (deadline %lld ms)", strsignal(signo),
                 (long long)S.shutdown_deadline_ms);
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog_main, NULL);
    pthread_detach(wd);

    atomic_store(&drain_step, "in-flight HTTP and gRPC calls");
    atomic_store(&S.draining, 1);
    evaluate_readiness();
    int budget = (int)(S.shutdown_deadline_ms * 8 / 10);
    rte_http_server *hs[MAX_HTTP_LOOPS + 1];
    int nh = all_http(hs);
    if (S.public_port > 0)
        for (int i = 0; i < nh; i++)
            rte_http_server_stop_listener(hs[i], S.public_port);
    int cancelled = rte_grpc_server_shutdown(S.grpc, budget);
    if (cancelled > 0)
        rte_log_warn("drain: %d gRPC calls were cancelled at the deadline", cancelled);
    /* in-flight HTTP requests finish while the service's threads (workers that
     * answer deferred requests) still run; only then does its shutdown hook go */
    int waiting = 0;
    for (int i = 0; i < nh; i++)
        waiting += rte_http_server_wait_idle(hs[i], budget - (int)(rte_clock_mono_ms() - t0));
    if (waiting > 0)
        rte_log_warn("drain: %d HTTP requests still in flight; the service's shutdown answers or "
                     "drops them",
                     waiting);
    /* consumers leave their groups by 80 % of the deadline (at least 5 % from now, at most
     * 85 %): a coordinator that does not answer (the broker is gone) is left by session
     * timeout, its uncommitted offsets redelivered, instead of holding the drain */
    atomic_store(&drain_step, "kafka consumers finishing and leaving their groups");
    int close_ms = drain_left(t0, 800);
    if (close_ms < S.shutdown_deadline_ms / 20)
        close_ms = (int)(S.shutdown_deadline_ms / 20);
    if (close_ms > drain_left(t0, 850))
        close_ms = drain_left(t0, 850);
    /* a handler waiting (for acks, for Redis) gives up by half of that, so the commit and the
     * close still have their time: its message is redelivered, not lost */
    atomic_store(&S.handlers_by, rte_clock_mono_ms() + close_ms / 2);
    for (int i = 0; i < S.nconsumers; i++)
        rte_kafka_consumer_stop_within(S.consumers[i], close_ms);
    pthread_mutex_lock(&S.consumers_mu);
    S.probed_consumers = 0; /* the probe leaves them alone from now on */
    pthread_mutex_unlock(&S.consumers_mu);
    for (int i = 0; i < S.nconsumers; i++) {
        pthread_join(S.consumer_threads[i], NULL);
        rte_kafka_consumer_free(S.consumers[i]);
    }
    atomic_store(&drain_step, "timers and the service's shutdown");
    pthread_mutex_lock(&S.lock);
    atomic_store(&S.stopping, 1);
    pthread_cond_broadcast(&S.wake);
    pthread_mutex_unlock(&S.lock);
    for (int i = 0; i < S.ntimers; i++)
        pthread_join(S.timers[i].thread, NULL);
    pthread_join(S.probe_thread, NULL);
    if (S.def->shutdown != NULL)
        S.def->shutdown();
    /* the loops stop before the producer goes: each hands over its last batch on the way out */
    atomic_store(&drain_step, "HTTP loops stopping");
    for (int i = 0; i < nh; i++)
        rte_http_server_stop(hs[i], drain_left(t0, 900));
    pthread_join(S.http_thread, NULL);
    for (int i = 0; i < S.nmore; i++)
        pthread_join(S.more_threads[i], NULL);
    /* the producer flushes until 90 % of the deadline (the rest is for dropping and freeing);
     * what Kafka has not acknowledged by then
     * (the broker is gone) is dropped, counted and said once: nothing a client was told is
     * stored went this way (each service keeps that promise: docs/operations.md) */
    atomic_store(&drain_step, "kafka producer flushing");
    int undelivered = 0;
    if (S.producer != NULL)
        undelivered = rte_kafka_producer_free(S.producer, drain_left(t0, 900));
    S.producer = NULL;
    if (undelivered > 0)
        rte_log_error("drain: %d Kafka message(s) not delivered within shutdown.deadline were "
                      "dropped (lost at shutdown: rte_kafka_produced_total{result="
                      "\"lost_at_shutdown\"}); none had been acknowledged to a client; exiting 1",
                      undelivered);
    atomic_store(&drain_step, "freeing");
    for (int i = 0; i < nh; i++)
        rte_http_server_free(hs[i]);
    rte_grpc_server_free(S.grpc);
    rte_auth_free(S.grpc_auth);
    rte_log_info("drained in %lld ms; exiting", (long long)(rte_clock_mono_ms() - t0));
    return undelivered > 0 ? 1 : 0;
}

static void free_configs(void)
{
    for (int i = 0; i < S.nold; i++)
        rte_config_free(S.old_cfgs[i]);
    rte_config_free((rte_config *)atomic_load(&S.cfg));
}

/* rte_service_main - run the service until drained; main thread */
int rte_service_main(const rte_service_def *def, int argc, char **argv)
{
    int check_only;
    S.def = def;
    rte_log_init(def->name, RTE_LOG_INFO);
    if (parse_args(argc, argv, &check_only) != 0)
        return 2;
    rte_clock_init_env();
    rte_config *cfg = load_config_or_die();
    atomic_store(&S.cfg, cfg);
    read_settings(cfg);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    register_metrics();

    char brokers[1024] = "";
    char err[512];
    if (def->needs & RTE_NEEDS_KAFKA) {
        if (rte_kafka_brokers(cfg, brokers, sizeof brokers) != 0)
            rte_fatal("config: no Kafka brokers: set kafka.brokers (RTE_KAFKA_BROKERS) or start "
                      "the dev broker (make dev-up)");
        if (rte_kafka_check_config(cfg, brokers, err, sizeof err) != 0)
            config_fatal(err);
    }
    if (check_only) { /* at a real start, init validates the same keys as it reads them */
        check_grpc_auth(cfg);
        if (def->check != NULL && def->check(cfg, err, sizeof err) != 0)
            config_fatal(err);
        printf("%s: configuration OK\n", def->name);
        free_configs();
        return 0;
    }
    if (def->needs & RTE_NEEDS_KAFKA) {
        S.producer = rte_kafka_producer_new(cfg, brokers, err, sizeof err);
        if (S.producer == NULL)
            rte_fatal("kafka producer: %s", err);
    }
    if (def->init != NULL && def->init(cfg, err, sizeof err) != 0)
        rte_fatal("%s: start-up failed: %s", def->name, err);

    start_http(cfg);
    start_grpc(cfg);
    if (def->needs & RTE_NEEDS_KAFKA)
        start_consumers(cfg, brokers);
    start_timers();
    probe_once();
    pthread_create(&S.probe_thread, NULL, probe_main, NULL);
    write_ports_file();
    rte_log_info("%s serving: admin port %d, http port %d, grpc port %d, %s", def->name,
                 S.admin_port, S.public_port, S.grpc_port,
                 rte_service_ready() ? "ready" : "not ready yet");

    for (;;) {
        int signo;
        if (sigwait(&set, &signo) != 0)
            continue;
        if (signo == SIGHUP) {
            reload();
            continue;
        }
        int rc = drain(signo);
        free_configs();
        return rc;
    }
}
