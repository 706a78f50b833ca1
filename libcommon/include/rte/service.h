/*
 * service.h - the service skeleton every executable runs on.
 *
 * A service's main.c fills one rte_service_def - the Kafka topics it
 * consumes with their handlers, its HTTP routes, gRPC methods and periodic
 * timers - and calls rte_service_main. The skeleton owns everything else:
 *
 *   start-up   command line (--config FILE, --check-config), YAML config with
 *              RTE_* overrides, logging, the clock, the Kafka producer, the
 *              service's check and init callbacks; any bad setting is fatal
 *              and named. --check-config stops after check: it validates
 *              the common keys and the service's own (and files they name)
 *              without listening or starting any of its work.
 *   serving    the admin port (GET /metrics, /healthz, /readyz plus the
 *              service's admin routes), the public HTTP port when routes are
 *              declared, the gRPC port with grpc.health.v1.Health, one
 *              consumer thread per declared topic, one thread per timer.
 *   readiness  a probe thread checks every dependency the service declared
 *              (Redis PING, Kafka broker reachable) each health.interval,
 *              and that no consumer has been out of its group or behind
 *              without progress past health.consumer_stuck_after;
 *              /readyz, gRPC health and the rte_ready gauge follow it.
 *   signals    SIGTERM/SIGINT drain: readiness goes false, listeners stop
 *              accepting, in-flight HTTP and gRPC calls finish, consumers
 *              finish their message and commit, timers stop, the service's
 *              shutdown callback runs, the producer is flushed; exit 0. If
 *              draining outlives shutdown.deadline the process exits 1 and
 *              says what was still running. SIGHUP re-reads the config file
 *              and hands it to the service's reload callback.
 *
 * Ports (config keys, RTE_* overrides): admin.addr (default 0.0.0.0:9090),
 * http.addr (0.0.0.0:8080), grpc.addr (0.0.0.0:50051). Port 0 picks a free
 * port; the chosen ports are logged and, when RTE_PORTS_FILE is set, written
 * there as JSON ({"admin":N,"http":N,"grpc":N}) for tests and scripts. A
 * service that opens a listener of its own in init names its port there with
 * rte_service_publish_port.
 *
 * Thread safety: accessors below may be called from any thread once
 * rte_service_main has called init.
 */
#ifndef RTE_SERVICE_H
#define RTE_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "rte/config.h"
#include "rte/grpc_server.h"
#include "rte/http_server.h"
#include "rte/kafka.h"
#include "rte/redis.h"

enum {
    RTE_NEEDS_REDIS = 1 << 0,
    RTE_NEEDS_KAFKA = 1 << 1,
};

typedef struct rte_consumer_decl {
    const char *topic;         /* NULL terminates the array */
    rte_kafka_handler handler; /* runs on this consumer's thread */
    void *arg;
    const char *group; /* default "<service>.<topic>" */
    /* instead of handler: messages in batches of up to batch_max (kafka.h) */
    rte_kafka_batch_handler batch_handler;
    int batch_max;
} rte_consumer_decl;

typedef struct rte_timer_decl {
    const char *name;      /* NULL terminates the array */
    int64_t interval_ms;   /* simulated ms between runs (the clock may be scaled) */
    void (*fn)(void *arg); /* runs on the timer's own thread */
    void *arg;
} rte_timer_decl;

typedef struct rte_service_def {
    const char *name;
    unsigned needs; /* RTE_NEEDS_* */
    /* validate the service's own keys and the files they name, building and
     * starting nothing; --check-config runs it instead of init */
    int (*check)(const rte_config *cfg, char *err, size_t errlen);
    /* after config, logging, Redis and the producer exist; before serving */
    int (*init)(const rte_config *cfg, char *err, size_t errlen);
    /* after draining, before the producer is flushed */
    void (*shutdown)(void);
    /* SIGHUP with the new config; return -1 + err to keep the old one */
    int (*reload)(const rte_config *cfg, char *err, size_t errlen);
    const rte_consumer_decl *consumers;
    const rte_http_route *routes;       /* public port; NULL = no public port */
    const rte_http_route *admin_routes; /* extra admin-port routes */
    const rte_grpc_method *grpc;        /* NULL = gRPC port serves only health */
    const rte_timer_decl *timers;
    int grpc_workers; /* default 16 */
} rte_service_def;

/* rte_service_main - run the service until a signal drains it; returns the exit code */
int rte_service_main(const rte_service_def *def, int argc, char **argv);

/* rte_service_config - the current configuration (replaced on SIGHUP); borrowed */
const rte_config *rte_service_config(void);

/* rte_service_producer - the shared Kafka producer, NULL unless RTE_NEEDS_KAFKA */
rte_kafka_producer *rte_service_producer(void);

/* rte_service_redis - this thread's Redis connection (redis.url); borrowed */
rte_redis *rte_service_redis(void);

/*
 * rte_service_publish_port - the ports file also gets "name":port (name in
 * [a-z_], at most 4 such ports); call from the init callback, main thread
 */
void rte_service_publish_port(const char *name, int port);

/* rte_service_name - the service's name */
const char *rte_service_name(void);

/*
 * rte_service_instance_id - this process's name among the replicas:
 * "host:pid:8 hex digits" (host cut to 40 characters; at most 63 bytes),
 * the same string for every caller in the process (lease owner and claim
 * tokens, logs); any thread
 */
const char *rte_service_instance_id(void);

/* rte_service_draining - 1 once a drain began (long loops should wind down) */
int rte_service_draining(void);

/*
 * rte_service_wait_until - when a wait begun at t0 (rte_clock_mono_ms) for up
 * to ms must end: t0 + ms, or earlier once the drain stops the consumers
 * (half their share of shutdown.deadline), so a handler waiting on a broker
 * or Redis that is gone returns (RETRY: redelivered) instead of holding the
 * drain past its deadline; call it on each turn of the wait; any thread
 */
int64_t rte_service_wait_until(int64_t t0, int64_t ms);

/* rte_service_ready - 1 when every declared dependency is reachable, no consumer is stuck and
 * not draining */
int rte_service_ready(void);

#endif
