/*
 * kafka-dev-broker - a local Kafka for development and tests.
 *
 * Usage: kafka-dev-broker [--bootstrap-file PATH] [--topic NAME:PARTITIONS]...
 *        kafka-dev-broker --list-topics
 *
 * --list-topics prints the suite's topics (rte/topics.h), one NAME:PARTITIONS
 * a line, and exits 0: tools/kafka/kafka_cluster.py creates the same topics
 * on a real Apache Kafka from that list.
 *
 * Runs librdkafka's protocol-level mock cluster (3 brokers on 127.0.0.1,
 * ephemeral ports) with the suite's topics (rte/topics.h) plus every
 * --topic; a --topic naming a suite topic sets its partition count (a
 * benchmark that needs more than one partition's 5 MiB per 1/N of the
 * topic: bench/cache-warmer.sh). Once a separate client sees every topic, it writes the bootstrap
 * list atomically to PATH (default $RTE_RUN_DIR/kafka.bootstrap, RTE_RUN_DIR
 * defaulting to ./run), where rte_kafka_brokers() finds it, and prints it
 * on stdout as one line. Runs until SIGTERM or SIGINT, then removes PATH and
 * exits 0.
 *
 * Errors: bad arguments, or a cluster that is not ready within 15 s, exit 1
 * with a message naming the cause.
 *
 * Not a Kafka: everything is in memory and gone on exit; each partition keeps
 * at most 100,000 message sets or 5 MiB (older ones are dropped); a topic a
 * producer names that does not exist is auto-created with 4 partitions; no
 * TLS or SASL. Consumer groups, committed offsets and idempotent producers
 * work across processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "rte/clock.h"
#include "rte/log.h"
#include "rte/topics.h"

#define BROKERS 3
#define MAX_EXTRA 64
#define MAX_SUITE 64
#define READY_TIMEOUT_MS 15000

struct opts {
    char path[4096];
    rte_topic extra[MAX_EXTRA + 1]; /* NULL-name terminated, like rte_topics_all() */
    char names[MAX_EXTRA][256];     /* extra[i].name points here */
    int nextra;
    /* what is created: the suite's topics (partitions as --topic overrides), then the extras */
    rte_topic all[MAX_SUITE + MAX_EXTRA + 1];
};

static void usage(void)
{
    rte_fatal("usage: kafka-dev-broker [--bootstrap-file PATH] [--topic NAME:PARTITIONS]... | "
              "--list-topics");
}

static void add_topic(struct opts *o, const char *spec)
{
    const char *colon = strrchr(spec, ':');
    char *end;
    long n;

    if (!colon || colon == spec || colon - spec >= (long)sizeof o->names[0])
        rte_fatal("--topic %s: expected NAME:PARTITIONS", spec);
    errno = 0;
    n = strtol(colon + 1, &end, 10);
    if (errno || *end || n < 1 || n > 1000)
        rte_fatal("--topic %s: partitions must be 1..1000", spec);
    if (o->nextra == MAX_EXTRA)
        rte_fatal("--topic %s: at most %d extra topics", spec, MAX_EXTRA);
    memcpy(o->names[o->nextra], spec, (size_t)(colon - spec));
    o->names[o->nextra][colon - spec] = '\0';
    o->extra[o->nextra] = (rte_topic){o->names[o->nextra], (int)n};
    o->nextra++;
}

static void default_path(struct opts *o)
{
    const char *dir = getenv("RTE_RUN_DIR");

    if (!dir || !*dir)
        dir = "run";
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        rte_fatal("cannot create run directory %s (RTE_RUN_DIR): %s", dir, strerror(errno));
    if ((size_t)snprintf(o->path, sizeof o->path, "%s/kafka.bootstrap", dir) >= sizeof o->path)
        rte_fatal("RTE_RUN_DIR is too long");
}

/* --list-topics: the suite's topic table on stdout, then exit 0 */
static void list_topics(void)
{
    const rte_topic *t;

    for (t = rte_topics_all(); t->name; t++)
        printf("%s:%d\n", t->name, t->partitions);
    exit(fflush(stdout) == 0 ? 0 : 1);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    int i;

    memset(o, 0, sizeof *o);
    if (argc == 2 && strcmp(argv[1], "--list-topics") == 0)
        list_topics();
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
            add_topic(o, argv[++i]);
        else if (strcmp(argv[i], "--bootstrap-file") == 0 && i + 1 < argc)
            snprintf(o->path, sizeof o->path, "%s", argv[++i]);
        else
            usage();
    }
    if (!o->path[0])
        default_path(o);
}

/* o->all: every suite topic, a --topic of the same name setting its partitions, then the rest */
static void merge_topics(struct opts *o)
{
    const rte_topic *suite = rte_topics_all();
    int n = 0, used[MAX_EXTRA] = {0};

    for (const rte_topic *t = suite; t->name; t++) {
        if (n == MAX_SUITE)
            rte_fatal("more than %d suite topics", MAX_SUITE);
        o->all[n] = *t;
        for (int i = 0; i < o->nextra; i++)
            if (strcmp(o->extra[i].name, t->name) == 0) {
                o->all[n].partitions = o->extra[i].partitions;
                used[i] = 1;
            }
        n++;
    }
    for (int i = 0; i < o->nextra; i++)
        if (!used[i])
            o->all[n++] = o->extra[i];
    o->all[n] = (rte_topic){NULL, 0};
}

static void create_topics(rd_kafka_mock_cluster_t *mc, const rte_topic *t)
{
    rd_kafka_resp_err_t e;

    for (; t->name; t++) {
        e = rd_kafka_mock_topic_create(mc, t->name, t->partitions, BROKERS);
        if (e)
            rte_fatal("cannot create topic %s: %s", t->name, rd_kafka_err2str(e));
    }
}

/* 1 if every topic in t is in md with its partition count */
static int all_present(const struct rd_kafka_metadata *md, const rte_topic *t)
{
    int i;

    for (; t->name; t++) {
        for (i = 0; i < md->topic_cnt; i++)
            if (strcmp(md->topics[i].topic, t->name) == 0 && !md->topics[i].err &&
                md->topics[i].partition_cnt == t->partitions)
                break;
        if (i == md->topic_cnt)
            return 0;
    }
    return 1;
}

/* ready = a separate client, through the bootstrap list, sees every topic */
static void wait_ready(const char *bootstraps, const struct opts *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const struct rd_kafka_metadata *md;
    int64_t deadline = rte_clock_mono_ms() + READY_TIMEOUT_MS;
    char why[512];
    rd_kafka_t *rk;
    int ready = 0;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, why, sizeof why))
        rte_fatal("bad bootstrap list %s: %s", bootstraps, why);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk)
        rte_fatal("cannot create the readiness client: %s", why);
    while (!ready && rte_clock_mono_ms() < deadline) {
        if (rd_kafka_metadata(rk, 1, NULL, &md, 2000))
            continue;
        ready = all_present(md, o->all);
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    if (!ready)
        rte_fatal("mock cluster at %s not ready within %d ms", bootstraps, READY_TIMEOUT_MS);
}

/* write "bootstraps\n" to path via a temporary file and rename */
static void publish(const char *bootstraps, const char *path)
{
    char tmp[4200];
    size_t len = strlen(bootstraps);
    int fd;

    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        rte_fatal("cannot write %s: %s", tmp, strerror(errno));
    if (write(fd, bootstraps, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0 ||
        close(fd) < 0 || rename(tmp, path) < 0)
        rte_fatal("cannot publish the bootstrap list to %s: %s", path, strerror(errno));
    printf("%s\n", bootstraps);
    fflush(stdout);
}

/*
 * The client handle that hosts the cluster. It never connects anywhere, so
 * its notice about having no bootstrap.servers is noise: log warnings and up.
 */
static rd_kafka_t *mock_handle(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "log_level", "4", why, sizeof why))
        rte_fatal("log_level: %s", why);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk)
        rte_fatal("cannot create the mock cluster's handle: %s", why);
    return rk;
}

int main(int argc, char **argv)
{
    struct opts o;
    sigset_t sigs;
    int sig;
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps;

    rte_log_init("kafka-dev-broker", RTE_LOG_INFO);
    parse_args(argc, argv, &o);
    merge_topics(&o);

    /* blocked before librdkafka starts threads, so they inherit the mask */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    rk = mock_handle();
    mc = rd_kafka_mock_cluster_new(rk, BROKERS);
    if (!mc)
        rte_fatal("cannot start the mock cluster (no free loopback ports?)");
    create_topics(mc, o.all);
    bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    wait_ready(bootstraps, &o);
    publish(bootstraps, o.path);
    rte_log_info("kafka mock cluster ready at %s (%s)", bootstraps, o.path);

    sigwait(&sigs, &sig);
    rte_log_info("signal %d: stopping; topics and offsets are discarded", sig);
    unlink(o.path);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
