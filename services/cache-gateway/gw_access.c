/*
 * gw_access.c - access tallies per CPU shard (contract in gw_access.h).
 *
 * A shard's table is an array of tallies in the order they were opened
 * plus an open-addressing index over them (linear probing, at most half
 * full): slot[i] holds a tally's position + 1 (0 = empty) and hash[i] its
 * hash, so a probe compares strings only on a full hash match. pos[] says
 * which slot each tally took, so emptying a drained table touches only
 * the slots in use. The drainer keeps one spare table and swaps it in.
 */
#include "gw_access.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rte/cpu.h"

struct table {
    gw_access_tally *tallies; /* cap */
    int32_t *pos;             /* cap: the slot of each tally */
    int32_t *slot;            /* nslots: tally position + 1, 0 = empty */
    uint32_t *hash;           /* nslots */
    int used;
};

struct shard {
    pthread_mutex_t mu;
    struct table *cur;
} __attribute__((aligned(64)));

struct gw_access_table {
    int nshards, cap;
    uint32_t mask; /* nslots - 1 */
    pthread_mutex_t drain_mu;
    struct table *spare; /* drain_mu */
    struct shard *shards;
};

static void table_free(struct table *tb)
{
    if (tb == NULL)
        return;
    free(tb->tallies);
    free(tb->pos);
    free(tb->slot);
    free(tb->hash);
    free(tb);
}

static struct table *table_new(int cap, uint32_t nslots)
{
    struct table *tb = calloc(1, sizeof *tb);

    if (tb == NULL)
        return NULL;
    tb->tallies = malloc((size_t)cap * sizeof *tb->tallies);
    tb->pos = malloc((size_t)cap * sizeof *tb->pos);
    tb->slot = calloc(nslots, sizeof *tb->slot);
    tb->hash = calloc(nslots, sizeof *tb->hash);
    if (tb->tallies == NULL || tb->pos == NULL || tb->slot == NULL || tb->hash == NULL) {
        table_free(tb);
        return NULL;
    }
    return tb;
}

/* gw_access_new - start-up thread */
gw_access_table *gw_access_new(int nshards, int cap)
{
    gw_access_table *t;
    uint32_t nslots = 2;

    if (nshards < 1 || nshards > 64 || cap < 1 || cap > (1 << 24))
        return NULL;
    while (nslots < 2u * (uint32_t)cap)
        nslots <<= 1;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->cap = cap;
    t->mask = nslots - 1;
    pthread_mutex_init(&t->drain_mu, NULL);
    t->shards = aligned_alloc(64, (size_t)nshards * sizeof *t->shards);
    if (t->shards != NULL)
        memset(t->shards, 0, (size_t)nshards * sizeof *t->shards);
    t->nshards = 0; /* shards initialised so far, for gw_access_free */
    t->spare = table_new(cap, nslots);
    if (t->shards == NULL || t->spare == NULL)
        goto fail;
    for (int i = 0; i < nshards; i++) {
        pthread_mutex_init(&t->shards[i].mu, NULL);
        t->shards[i].cur = table_new(cap, nslots);
        t->nshards = i + 1;
        if (t->shards[i].cur == NULL)
            goto fail;
    }
    return t;
fail:
    gw_access_free(t);
    return NULL;
}

/* gw_access_free - shutdown thread */
void gw_access_free(gw_access_table *t)
{
    if (t == NULL)
        return;
    for (int i = 0; t->shards != NULL && i < t->nshards; i++) {
        table_free(t->shards[i].cur);
        pthread_mutex_destroy(&t->shards[i].mu);
    }
    free(t->shards);
    table_free(t->spare);
    pthread_mutex_destroy(&t->drain_mu);
    free(t);
}

/* FNV-1a over s and its terminating NUL, continuing from h */
static uint32_t fnv1a(uint32_t h, const char *s)
{
    do {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    } while (*s++ != '\0');
    return h;
}

/* copy src into dst of size n, cut short if it does not fit */
static void copy(char *dst, size_t n, const char *src)
{
    size_t len = strnlen(src, n - 1);

    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int same(const gw_access_tally *y, const gw_access *a)
{
    return y->result == (uint8_t)a->result && y->mode == (uint8_t)a->mode &&
           strncmp(y->member_key, a->member_key, sizeof y->member_key) == 0 &&
           strncmp(y->tp, a->tp, sizeof y->tp) == 0;
}

/* the last access's fields of y */
static void note_last(gw_access_tally *y, const gw_access *a)
{
    y->last_ms = a->now_ms;
    if (a->latency_ms > y->latency_max_ms)
        y->latency_max_ms = a->latency_ms;
    y->latency_sum_ms += a->latency_ms;
    copy(y->request_id, sizeof y->request_id, a->request_id);
    copy(y->entry_source, sizeof y->entry_source, a->entry_source ? a->entry_source : "");
    y->age_s = a->entry_source ? a->age_s : 0;
}

/* gw_access_tally_one - pure; any thread */
void gw_access_tally_one(const gw_access *a, gw_access_tally *out)
{
    copy(out->member_key, sizeof out->member_key, a->member_key);
    copy(out->tp, sizeof out->tp, a->tp);
    out->result = (uint8_t)a->result;
    out->mode = (uint8_t)a->mode;
    out->count = 1;
    out->first_ms = a->now_ms;
    out->latency_max_ms = a->latency_ms;
    out->latency_sum_ms = 0;
    note_last(out, a);
}

/* gw_access_add - any thread; the shard's mutex */
int gw_access_add(gw_access_table *t, const gw_access *a)
{
    uint32_t h = fnv1a(fnv1a(2166136261u, a->member_key), a->tp);
    struct shard *sh;
    struct table *tb;
    gw_access_tally *y;
    uint32_t i;

    h = (h ^ ((uint32_t)a->result << 8 | (uint32_t)a->mode)) * 16777619u;
    h |= 1; /* 0 never names a tally */
    sh = &t->shards[rte_cpu_shard(t->nshards)];
    pthread_mutex_lock(&sh->mu);
    tb = sh->cur;
    for (i = h & t->mask; tb->slot[i] != 0; i = (i + 1) & t->mask) {
        y = &tb->tallies[tb->slot[i] - 1];
        if (tb->hash[i] == h && same(y, a)) {
            y->count++;
            note_last(y, a);
            pthread_mutex_unlock(&sh->mu);
            return 1;
        }
    }
    if (tb->used == t->cap) {
        pthread_mutex_unlock(&sh->mu);
        return 0;
    }
    tb->pos[tb->used] = (int32_t)i;
    tb->hash[i] = h;
    gw_access_tally_one(a, &tb->tallies[tb->used]);
    tb->slot[i] = ++tb->used;
    pthread_mutex_unlock(&sh->mu);
    return 1;
}

/* gw_access_drain - any thread; drain_mu, and each shard's mutex for a swap */
int gw_access_drain(gw_access_table *t, void (*fn)(const gw_access_tally *tally, void *arg),
                    void *arg)
{
    int n = 0;

    pthread_mutex_lock(&t->drain_mu);
    for (int s = 0; s < t->nshards; s++) {
        struct table *old;

        pthread_mutex_lock(&t->shards[s].mu);
        old = t->shards[s].cur;
        t->shards[s].cur = t->spare;
        pthread_mutex_unlock(&t->shards[s].mu);
        for (int i = 0; i < old->used; i++) {
            fn(&old->tallies[i], arg);
            old->slot[old->pos[i]] = 0;
        }
        n += old->used;
        old->used = 0;
        t->spare = old;
    }
    pthread_mutex_unlock(&t->drain_mu);
    return n;
}
