/*
 * gw_l1.c - the gateway's bounded in-process cache (contract in gw_l1.h).
 *
 * Sets of WAYS slots; a key hashes (FNV-1a) to one set; STRIPES mutexes
 * cover the sets (set i uses mutex i % STRIPES), so readers of different
 * keys rarely meet. A slot holds the key text, the decoded entry and the
 * monotonic time it was loaded. Expired slots are reused first, then the
 * oldest.
 */
#include "gw_l1.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4
#define STRIPES 64

struct slot {
    char key[RTE_CACHE_KEY_MAX];
    int64_t loaded_ms; /* 0 = empty */
    rte_cache_entry e;
};

struct gw_l1 {
    size_t nsets;
    int64_t ttl_ms;
    struct slot *slots; /* nsets * WAYS */
    pthread_mutex_t mu[STRIPES];
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* gw_l1_new - start-up thread */
gw_l1 *gw_l1_new(size_t capacity, int64_t ttl_ms)
{
    gw_l1 *c;

    if (capacity == 0)
        return NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->nsets = (capacity + WAYS - 1) / WAYS;
    c->ttl_ms = ttl_ms;
    c->slots = calloc(c->nsets * WAYS, sizeof *c->slots);
    if (c->slots == NULL) {
        free(c);
        return NULL;
    }
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&c->mu[i], NULL);
    return c;
}

/* gw_l1_free - shutdown thread */
void gw_l1_free(gw_l1 *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&c->mu[i]);
    free(c->slots);
    free(c);
}

/* gw_l1_capacity - any thread */
size_t gw_l1_capacity(const gw_l1 *c)
{
    return c ? c->nsets * WAYS : 0;
}

static struct slot *set_of(gw_l1 *c, const char *key, pthread_mutex_t **mu)
{
    uint64_t h = fnv1a(key);
    size_t set = (size_t)(h % c->nsets);
    *mu = &c->mu[set % STRIPES];
    return &c->slots[set * WAYS];
}

/* gw_l1_get - any thread; stripe mutex */
int gw_l1_get(gw_l1 *c, const char *key, int64_t now_mono_ms, rte_cache_entry *out)
{
    pthread_mutex_t *mu;
    struct slot *s;
    int found = 0;

    if (c == NULL)
        return 0;
    s = set_of(c, key, &mu);
    pthread_mutex_lock(mu);
    for (int i = 0; i < WAYS; i++) {
        if (s[i].loaded_ms != 0 && strcmp(s[i].key, key) == 0) {
            if (now_mono_ms - s[i].loaded_ms < c->ttl_ms) {
                *out = s[i].e;
                found = 1;
            } else {
                s[i].loaded_ms = 0;
            }
            break;
        }
    }
    pthread_mutex_unlock(mu);
    return found;
}

/* gw_l1_put - any thread; stripe mutex */
void gw_l1_put(gw_l1 *c, const char *key, const rte_cache_entry *e, int64_t now_mono_ms)
{
    pthread_mutex_t *mu;
    struct slot *s, *victim = NULL;
    size_t klen = strlen(key);

    if (c == NULL || klen >= RTE_CACHE_KEY_MAX)
        return;
    s = set_of(c, key, &mu);
    pthread_mutex_lock(mu);
    for (int i = 0; i < WAYS; i++) {
        if (s[i].loaded_ms != 0 && strcmp(s[i].key, key) == 0) {
            victim = &s[i];
            if (now_mono_ms - s[i].loaded_ms < c->ttl_ms && s[i].e.cached_at_ms > e->cached_at_ms)
                victim = NULL; /* keep the newer entry */
            goto write;
        }
    }
    for (int i = 0; i < WAYS; i++) {
        if (s[i].loaded_ms == 0 || now_mono_ms - s[i].loaded_ms >= c->ttl_ms) {
            victim = &s[i];
            goto write;
        }
        if (victim == NULL || s[i].loaded_ms < victim->loaded_ms)
            victim = &s[i];
    }
write:
    if (victim != NULL) {
        memcpy(victim->key, key, klen + 1);
        victim->e = *e;
        victim->loaded_ms = now_mono_ms != 0 ? now_mono_ms : 1;
    }
    pthread_mutex_unlock(mu);
}

/* gw_l1_drop - any thread; stripe mutex */
void gw_l1_drop(gw_l1 *c, const char *key)
{
    pthread_mutex_t *mu;
    struct slot *s;

    if (c == NULL)
        return;
    s = set_of(c, key, &mu);
    pthread_mutex_lock(mu);
    for (int i = 0; i < WAYS; i++)
        if (s[i].loaded_ms != 0 && strcmp(s[i].key, key) == 0)
            s[i].loaded_ms = 0;
    pthread_mutex_unlock(mu);
}
