/*
 * cw_consume.c - decode, validate and decide batches of events
 * (contract in cw_consume.h).
 *
 * Decoded events stay alive until cw_decide returned, since requests borrow
 * their strings. Ids are bounded (member ids 128 bytes, event ids 512) so a
 * hostile event cannot blow up keys or logs.
 *
 * Hot path (bench/cache-warmer.sh): protobuf-c unpacks a MemberCronEvent
 * into a dozen small allocations (strings, sub-messages, map entries), and
 * malloc/free of those was a quarter of the consumer's CPU. Events are
 * unpacked into a per-thread arena instead: a bump allocator whose free is
 * a no-op, emptied at the start of each batch, so a batch costs no
 * allocation once the arena has grown to the largest batch seen.
 */
#include "cw_consume.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_decide.h"
#include "member_cron.pb-c.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/topics.h"

#define MEMBER_MAX 128
#define EVENT_MAX 512

/* per-thread: the requests and the decoded events of the batch in hand */
static __thread struct {
    int cap;
    cw_req *q;
    void **docs;
} T;

/*
 * The protobuf arena: one block, bump-allocated; what does not fit goes to
 * overflow blocks (malloc'd, chained), and the next reset grows the block
 * to the whole batch's need so overflow stops after the first large batch.
 */
struct block {
    struct block *next;
    max_align_t data[];
};

static __thread struct {
    char *base;
    size_t cap, used, overflow; /* overflow: bytes that did not fit since the last reset */
    struct block *extra;
} A;

#define ALIGN_UP(n) (((n) + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1))

static void *arena_alloc(void *data, size_t size)
{
    (void)data;
    size = ALIGN_UP(size ? size : 1);
    if (A.used + size <= A.cap) {
        void *p = A.base + A.used;
        A.used += size;
        return p;
    }
    struct block *b = malloc(sizeof *b + size);
    if (b == NULL)
        return NULL; /* protobuf-c then fails the unpack: the event is refused, not lost */
    b->next = A.extra;
    A.extra = b;
    A.overflow += size;
    return b->data;
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p; /* everything goes at the next arena_reset */
}

static ProtobufCAllocator arena = {arena_alloc, arena_free, NULL};

/* forget the previous batch's events; grow the block if they overflowed it */
static void arena_reset(void)
{
    while (A.extra) {
        struct block *b = A.extra;
        A.extra = b->next;
        free(b);
    }
    if (A.overflow > 0) {
        size_t want = A.cap + A.overflow + A.overflow / 2;
        char *nb = malloc(want);
        if (nb) { /* else keep the old block: overflow blocks still work */
            free(A.base);
            A.base = nb;
            A.cap = want;
        }
    }
    A.used = A.overflow = 0;
}

/* the thread's buffers and arena are freed when the thread ends (pthread key destructor) */
static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;

static void thread_free(void *p)
{
    (void)p; /* runs on the ending thread: its own T and A */
    free(T.q);
    free(T.docs);
    T.q = NULL;
    T.docs = NULL;
    T.cap = 0;
    while (A.extra) {
        struct block *b = A.extra;
        A.extra = b->next;
        free(b);
    }
    free(A.base);
    memset(&A, 0, sizeof A);
}

static void thread_key_new(void)
{
    if (pthread_key_create(&thread_key, thread_free) != 0)
        rte_panic("cache-warmer: no pthread key for the consumer buffers");
}

static int grow(int n)
{
    if (n <= T.cap)
        return 0;
    if (T.cap == 0) {
        pthread_once(&thread_once, thread_key_new);
        pthread_setspecific(thread_key, &T);
    }
    free(T.q);
    free(T.docs);
    T.q = calloc((size_t)n, sizeof *T.q);
    T.docs = calloc((size_t)n, sizeof *T.docs);
    T.cap = T.q && T.docs ? n : 0;
    return T.cap ? 0 : -1;
}

static int bad(rte_kafka_verdict *v, const char *topic, const char *fmt, const char *what)
{
    v->rc = RTE_KAFKA_POISON;
    snprintf(v->reason, sizeof v->reason, fmt, what);
    rte_counter_inc(CM.invalid, (const char *const[]){topic});
    return -1;
}

static int id_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

/* one MemberCronEvent into q (borrowing *doc); -1 with v filled when invalid */
static int decode_cron(const rte_kafka_msg *m, rte_kafka_verdict *v, cw_req *q, void **doc)
{
    Rte__V1__MemberCronEvent *ev =
        rte__v1__member_cron_event__unpack(&arena, m->len, (const uint8_t *)m->payload);
    *doc = ev;
    if (ev == NULL)
        return bad(v, m->topic, "%s", "not a protobuf MemberCronEvent");
    if (!id_ok(ev->member_id, MEMBER_MAX))
        return bad(v, m->topic, "field '%s': required, 1..128 bytes", "member_id");
    if (!id_ok(ev->event_id, EVENT_MAX))
        return bad(v, m->topic, "field '%s': required, 1..512 bytes", "event_id");
    if (ev->context == NULL || ev->context->predicted_activity == NULL)
        return bad(v, m->topic, "field '%s': required", "context.predicted_activity");
    double p = ev->context->predicted_activity->app_usage_probability;
    if (!(p >= 0.0 && p <= 1.0))
        return bad(v, m->topic, "field '%s': expected a number in 0..1",
                   "context.predicted_activity.app_usage_probability");
    *q = (cw_req){.member_id = ev->member_id,
                  .event_id = ev->event_id,
                  .probability = p,
                  .strategy = CW_INTELLIGENT};
    return 0;
}

/* one app_usage_likely JSON event into q (borrowing *doc); -1 with v filled when invalid */
static int decode_likely(const rte_kafka_msg *m, rte_kafka_verdict *v, cw_req *q, void **doc)
{
    char err[200];
    const char *type, *member, *event;
    const cJSON *data;
    double p;
    cJSON *j = rte_json_parse(m->payload, m->len, err, sizeof err);

    *doc = j;
    if (j == NULL || !cJSON_IsObject(j))
        return bad(v, m->topic, "not a JSON object: %s", j ? "another JSON value" : err);
    if (rte_json_string(j, "type", 128, &type, err, sizeof err) != 0 ||
        rte_json_string(j, "member_id", MEMBER_MAX, &member, err, sizeof err) != 0 ||
        rte_json_string(j, "event_id", EVENT_MAX, &event, err, sizeof err) != 0 ||
        rte_json_object(j, "data", &data, err, sizeof err) != 0)
        return bad(v, m->topic, "%s", err);
    if (strcmp(type, RTE_TOPIC_APP_USAGE_LIKELY) != 0)
        return bad(v, m->topic, "field 'type': expected \"%s\"", RTE_TOPIC_APP_USAGE_LIKELY);
    rte_json_set_prefix("data");
    int rc = rte_json_number(data, "probability", 0.0, 1.0, &p, err, sizeof err);
    rte_json_set_prefix(NULL);
    if (rc != 0)
        return bad(v, m->topic, "%s", err);
    *q = (cw_req){
        .member_id = member, .event_id = event, .probability = p, .strategy = CW_INTELLIGENT};
    return 0;
}

typedef int (*decode_fn)(const rte_kafka_msg *, rte_kafka_verdict *, cw_req *, void **);

static int handle(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, decode_fn decode,
                  void (*free_doc)(void *), const char *source, char *reason, size_t reasonlen)
{
    int k = 0, rc = RTE_KAFKA_OK;

    if (grow(n) != 0) {
        snprintf(reason, reasonlen, "out of memory for a batch of %d", n);
        return RTE_KAFKA_RETRY;
    }
    for (int i = 0; i < n; i++) {
        T.docs[i] = NULL;
        if (decode(&msgs[i], &v[i], &T.q[k], &T.docs[i]) == 0)
            k++;
    }
    if (cw_decide(T.q, k, source, reason, reasonlen) != 0)
        rc = RTE_KAFKA_RETRY;
    for (int i = 0; i < n; i++)
        if (T.docs[i])
            free_doc(T.docs[i]);
    return rc;
}

static void free_cron(void *d)
{
    (void)d; /* in the arena: emptied by the next batch's arena_reset */
}

static void free_json(void *d)
{
    cJSON_Delete(d);
}

/* cw_consume_cron - consumer thread */
int cw_consume_cron(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, void *arg, char *reason,
                    size_t reasonlen)
{
    (void)arg;
    arena_reset();
    return handle(msgs, v, n, decode_cron, free_cron, CW_SOURCE_CRON, reason, reasonlen);
}

/* cw_consume_likely - consumer thread */
int cw_consume_likely(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, void *arg,
                      char *reason, size_t reasonlen)
{
    (void)arg;
    return handle(msgs, v, n, decode_likely, free_json, CW_SOURCE_LIKELY, reason, reasonlen);
}
