/*
 * wh_writers.c - parallel cache writes for the consumer (wh_writers.h).
 *
 * A generation counter hands each message to the pool: the consumer bumps
 * it and waits until every writer has taken part in that generation, so a
 * writer can never work on a message the consumer has already returned
 * from (the items live on the consumer's stack frame until then).
 */
#include "wh_writers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/service.h"
#include "wh.h"

#define CHUNK 128 /* two compare-and-set calls (rte_cache_put_many: 64 each) */
#define MAX_WRITERS 64

struct job {
    wh_item *items;
    int n;
    atomic_int next;
    atomic_int failed;
    pthread_mutex_t mu; /* guards err */
    char err[256];
};

static struct {
    pthread_mutex_t owner; /* held by the consumer thread using the pool */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    struct job *cur;
    unsigned gen;
    int busy;
    int stopping;
    pthread_t th[MAX_WRITERS];
    int n;
} P = {.owner = PTHREAD_MUTEX_INITIALIZER,
       .mu = PTHREAD_MUTEX_INITIALIZER,
       .go = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER};

/* claim chunks until none are left or a write failed; each chunk is one
 * pipelined round trip (rte_cache_put_many); any pool thread */
static void run(struct job *j)
{
    char err[256], keys[CHUNK][RTE_CACHE_KEY_MAX];
    rte_cache_write w[CHUNK];
    wh_item *owner[CHUNK];
    rte_redis *r = rte_service_redis();
    for (;;) {
        int i0 = atomic_fetch_add(&j->next, CHUNK);
        if (i0 >= j->n || atomic_load(&j->failed))
            return;
        int i1 = i0 + CHUNK < j->n ? i0 + CHUNK : j->n, n = 0;
        for (int i = i0; i < i1; i++) {
            wh_item *it = &j->items[i];
            if (it->fail != NULL)
                continue;
            if (it->key != NULL) {
                if (snprintf(keys[n], sizeof keys[n], "%s", it->key) >= (int)sizeof keys[n]) {
                    it->fail = "invalid";
                    continue;
                }
            } else if (rte_cache_key(WH.cache.member_key_secret, it->member, it->partner, keys[n],
                                     sizeof keys[n]) != 0) {
                it->fail = "invalid";
                continue;
            }
            w[n] = (rte_cache_write){keys[n], &it->entry, -1};
            owner[n++] = it;
        }
        if (rte_cache_put_many(r, w, n, &WH.cache.freshness, err, sizeof err) != 0) {
            for (int k = 0; k < n; k++)
                owner[k]->rc = -1;
            pthread_mutex_lock(&j->mu);
            if (!atomic_exchange(&j->failed, 1))
                snprintf(j->err, sizeof j->err, "%s", err);
            pthread_mutex_unlock(&j->mu);
            return;
        }
        for (int k = 0; k < n; k++)
            owner[k]->rc = w[k].rc;
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    unsigned seen = 0;
    pthread_mutex_lock(&P.mu);
    for (;;) {
        while (!P.stopping && P.gen == seen)
            pthread_cond_wait(&P.go, &P.mu);
        if (P.stopping)
            break;
        seen = P.gen;
        struct job *j = P.cur;
        pthread_mutex_unlock(&P.mu);
        run(j);
        pthread_mutex_lock(&P.mu);
        if (--P.busy == 0)
            pthread_cond_signal(&P.done);
    }
    pthread_mutex_unlock(&P.mu);
    return NULL;
}

/* wh_writers_start - init thread */
int wh_writers_start(int n, char *err, size_t errlen)
{
    if (n > MAX_WRITERS)
        n = MAX_WRITERS;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&P.th[i], NULL, writer_main, NULL) != 0) {
            snprintf(err, errlen, "cannot start cache writer %d", i);
            return -1;
        }
        P.n++;
    }
    return 0;
}

/* wh_writers_stop - shutdown thread */
void wh_writers_stop(void)
{
    pthread_mutex_lock(&P.mu);
    P.stopping = 1;
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < P.n; i++)
        pthread_join(P.th[i], NULL);
    P.n = 0;
}

/* wh_writers_put - consumer thread */
int wh_writers_put(wh_item *items, int n, char *err, size_t errlen)
{
    struct job j = {.items = items, .n = n};
    pthread_mutex_init(&j.mu, NULL);
    /* a small message is not worth waking anyone; a pool busy with another consumer's
     * message is not waited for */
    int helpers = n > CHUNK && P.n > 0 && pthread_mutex_trylock(&P.owner) == 0;
    if (helpers) {
        pthread_mutex_lock(&P.mu);
        P.cur = &j;
        P.gen++;
        P.busy = P.n;
        pthread_cond_broadcast(&P.go);
        pthread_mutex_unlock(&P.mu);
    }
    run(&j);
    if (helpers) {
        pthread_mutex_lock(&P.mu);
        while (P.busy > 0)
            pthread_cond_wait(&P.done, &P.mu);
        P.cur = NULL;
        pthread_mutex_unlock(&P.mu);
        pthread_mutex_unlock(&P.owner);
    }
    pthread_mutex_destroy(&j.mu);
    if (atomic_load(&j.failed)) {
        snprintf(err, errlen, "%s", j.err);
        return -1;
    }
    return 0;
}
