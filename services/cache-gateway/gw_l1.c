/*
 * gw_l1.c - the gateway's bounded in-process cache (contract in gw_l1.h).
 *
 * Sets of WAYS slots; a key hashes (FNV-1a) to one set, and a slot keeps
 * the hash so a lookup compares key text only on a hash match; STRIPES mutexes
 * cover the sets (set i uses mutex i % STRIPES), so readers of different
 * keys rarely meet. A slot holds the key text, the decoded entry and the
 * monotonic time it was loaded and last read. Expired slots are reused
 * first, then the least recently used: a hot key shares its set with cold
 * ones and must not be evicted just because it was loaded first.
 *
 * Invalidation races: a reader may fetch the old value from Redis, then a
 * writer replaces it and its invalidation arrives, and only then does the
 * reader put the old value here. So an invalidation leaves a tombstone
 * (the key and the time it arrived) for TOMB_MS, and a put whose Redis
 * read started before that time is refused. gw_l1_clear sets a floor with
 * the same effect for every key (used when invalidations may have been
 * missed).
 */
#include "gw_l1.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 8
#define STRIPES 64
#define TOMB_MS 5000 /* longer than any Redis read the gateway makes */

struct slot {
    char key[RTE_CACHE_KEY_MAX];
    int64_t loaded_ms; /* 0 = empty; for a tombstone, when the invalidation arrived */
    int64_t used_ms;   /* loaded, or last read: eviction takes the least recent */
    uint64_t hash;     /* fnv1a(key) */
    int tomb;
    rte_cache_entry e;
};

struct gw_l1 {
    size_t nsets;
    int64_t ttl_ms;     /* atomic: gw_l1_set_ttl may change it */
    int64_t floor_ms;   /* atomic: puts read before this are refused */
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
    c->floor_ms = 0;
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

static struct slot *set_of(gw_l1 *c, const char *key, uint64_t *hash, pthread_mutex_t **mu)
{
    uint64_t h = fnv1a(key);
    size_t set = (size_t)(h % c->nsets);

    *hash = h;
    *mu = &c->mu[set % STRIPES];
    return &c->slots[set * WAYS];
}

/* 1 if slot sl holds key (an entry or a tombstone) */
static int holds(const struct slot *sl, uint64_t h, const char *key)
{
    return sl->loaded_ms != 0 && sl->hash == h && strcmp(sl->key, key) == 0;
}

/* gw_l1_get - any thread; stripe mutex */
int gw_l1_get(gw_l1 *c, const char *key, int64_t now_mono_ms, rte_cache_entry *out)
{
    pthread_mutex_t *mu;
    uint64_t h;
    struct slot *s;
    int found = 0;

    if (c == NULL)
        return 0;
    int64_t ttl = __atomic_load_n(&c->ttl_ms, __ATOMIC_RELAXED);
    s = set_of(c, key, &h, &mu);
    pthread_mutex_lock(mu);
    for (int i = 0; i < WAYS; i++) {
        if (holds(&s[i], h, key) && !s[i].tomb) {
            if (now_mono_ms - s[i].loaded_ms < ttl) {
                *out = s[i].e;
                s[i].used_ms = now_mono_ms;
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

/* A slot that may be reused: empty, an expired entry or an old tombstone. */
static int reusable(const struct slot *sl, int64_t now, int64_t ttl)
{
    return sl->loaded_ms == 0 || now - sl->loaded_ms >= (sl->tomb ? TOMB_MS : ttl);
}

/* gw_l1_put - any thread; stripe mutex */
void gw_l1_put(gw_l1 *c, const char *key, const rte_cache_entry *e, int64_t read_mono_ms)
{
    pthread_mutex_t *mu;
    uint64_t h;
    struct slot *s, *victim = NULL;
    size_t klen = strlen(key);
    int64_t now, ttl;

    if (c == NULL || klen >= RTE_CACHE_KEY_MAX ||
        read_mono_ms < __atomic_load_n(&c->floor_ms, __ATOMIC_ACQUIRE))
        return;
    ttl = __atomic_load_n(&c->ttl_ms, __ATOMIC_RELAXED);
    s = set_of(c, key, &h, &mu);
    pthread_mutex_lock(mu);
    now = read_mono_ms; /* callers read just before putting: close enough for ages */
    for (int i = 0; i < WAYS; i++) {
        if (holds(&s[i], h, key)) {
            victim = &s[i];
            if (s[i].tomb && read_mono_ms <= s[i].loaded_ms && now - s[i].loaded_ms < TOMB_MS)
                victim = NULL; /* written elsewhere after this value was read */
            else if (!s[i].tomb && now - s[i].loaded_ms < ttl &&
                     s[i].e.cached_at_ms > e->cached_at_ms)
                victim = NULL; /* keep the newer entry */
            goto write;
        }
    }
    for (int i = 0; i < WAYS; i++) {
        if (reusable(&s[i], now, ttl)) {
            victim = &s[i];
            goto write;
        }
        if (victim == NULL || s[i].used_ms < victim->used_ms)
            victim = &s[i];
    }
write:
    if (victim != NULL) {
        memcpy(victim->key, key, klen + 1);
        victim->hash = h;
        victim->e = *e;
        victim->tomb = 0;
        victim->loaded_ms = read_mono_ms > 0 ? read_mono_ms : 1;
        victim->used_ms = victim->loaded_ms;
    }
    pthread_mutex_unlock(mu);
}

/* gw_l1_drop - any thread; stripe mutex; leaves a tombstone */
void gw_l1_drop(gw_l1 *c, const char *key, int64_t now_mono_ms)
{
    pthread_mutex_t *mu;
    uint64_t h;
    struct slot *s, *victim = NULL;
    size_t klen = strlen(key);
    int64_t now, ttl;

    if (c == NULL || klen >= RTE_CACHE_KEY_MAX)
        return;
    ttl = __atomic_load_n(&c->ttl_ms, __ATOMIC_RELAXED);
    s = set_of(c, key, &h, &mu);
    pthread_mutex_lock(mu);
    now = now_mono_ms;
    for (int i = 0; i < WAYS && victim == NULL; i++)
        if (holds(&s[i], h, key))
            victim = &s[i];
    for (int i = 0; i < WAYS && victim == NULL; i++)
        if (reusable(&s[i], now, ttl))
            victim = &s[i];
    if (victim == NULL) { /* evict the least recently used way */
        victim = &s[0];
        for (int i = 1; i < WAYS; i++)
            if (s[i].used_ms < victim->used_ms)
                victim = &s[i];
    }
    memcpy(victim->key, key, klen + 1);
    victim->hash = h;
    victim->tomb = 1;
    victim->loaded_ms = now;
    victim->used_ms = now;
    pthread_mutex_unlock(mu);
}

/* gw_l1_clear - any thread; refuses every put read before now, empties lazily */
void gw_l1_clear(gw_l1 *c, int64_t now_mono_ms)
{
    if (c == NULL)
        return;
    __atomic_store_n(&c->floor_ms, now_mono_ms, __ATOMIC_RELEASE);
    for (size_t i = 0; i < c->nsets * WAYS; i++) {
        pthread_mutex_t *mu = &c->mu[(i / WAYS) % STRIPES];
        pthread_mutex_lock(mu);
        c->slots[i].loaded_ms = 0;
        c->slots[i].tomb = 0;
        pthread_mutex_unlock(mu);
    }
}

/* gw_l1_set_ttl - any thread; lock-free */
void gw_l1_set_ttl(gw_l1 *c, int64_t ttl_ms)
{
    if (c != NULL)
        __atomic_store_n(&c->ttl_ms, ttl_ms, __ATOMIC_RELAXED);
}
