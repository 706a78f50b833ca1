/*
 * cache_entry.h - the one owner of the shared eligibility cache format.
 *
 * Key:   rte:eligibility:{member_key}:{trading_partner_id}, where member_key
 *        is rte_crypto_member_key(secret, member_id): no raw member id ever
 *        appears in Redis.
 * Value: JSON {eligible, copay_amount, network_status, coverage_start,
 *        coverage_end, cached_at, fresh_until, source} plus, for error
 *        entries, error{code, message} and, when the error replaced a
 *        success, last_success{...that success entry...}. cached_at/
 *        fresh_until are RFC 3339 UTC with milliseconds, so they also
 *        compare as strings.
 *
 * Freshness is logical: fresh_until = cached_at + 22 h for a success, + 5 min
 * for an error (configurable). The physical Redis TTL is longer (default
 * 72 h) so PREFER_CACHED and STALE_WHILE_REVALIDATE can still serve stale
 * entries. Writes never replace a newer entry with an older one: the
 * compare-and-set runs in Redis (Lua) on cached_at.
 *
 * Every write is announced on RTE_CACHE_WRITTEN_CHANNEL (Redis pub/sub) so
 * in-process copies (the gateway's L1) are invalidated within milliseconds.
 *
 * Nobody else builds keys or parses values; services call these functions.
 *
 * Thread safety: pure functions, except rte_cache_put/get which use the
 * caller's Redis connection (owned by the calling thread).
 */
#ifndef RTE_CACHE_ENTRY_H
#define RTE_CACHE_ENTRY_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "rte/config.h"
#include "rte/redis.h"

#define RTE_CACHE_KEY_MAX 128

/* Every successful rte_cache_put publishes the key it wrote on this channel
 * (in the same script), so in-process caches in front of Redis can drop
 * their copy at once (see redis.h rte_redis_subscribe). */
#define RTE_CACHE_WRITTEN_CHANNEL "rte:cache:written"

typedef struct rte_cache_freshness {
    int64_t success_ms;  /* default 22 h */
    int64_t error_ms;    /* default 5 min */
    int64_t physical_ms; /* Redis TTL, default 72 h; must exceed both */
} rte_cache_freshness;

/* What a success entry says; an error entry keeps the success it replaced in one. */
typedef struct rte_cache_success {
    int eligible;
    double copay_amount;
    int has_copay;
    char network_status[20];
    char coverage_start[11];
    char coverage_end[11];
    int64_t cached_at_ms;
    int64_t fresh_until_ms;
    char source[20];
} rte_cache_success;

typedef struct rte_cache_entry {
    int eligible;
    double copay_amount; /* valid when has_copay */
    int has_copay;
    char network_status[20]; /* in_network | out_of_network | unknown */
    char coverage_start[11]; /* YYYY-MM-DD or "" */
    char coverage_end[11];
    int64_t cached_at_ms;
    int64_t fresh_until_ms;
    char source[20]; /* stedi_realtime | stedi_batch */
    int is_error;
    char error_code[16];
    char error_message[128];
    /* an error entry: the success entry it replaced, when there was one no
     * older than the Redis TTL (the put script carries it over, from error
     * to error too), so stale-if-error still has an answer while a payer is
     * down. Encoded and decoded like the rest; an entry put with one keeps
     * its own instead of the stored one. */
    int has_last_success;
    rte_cache_success last_success;
} rte_cache_entry;

/* What every reader and writer of the cache must agree on. */
typedef struct rte_cache_settings {
    char member_key_secret[128]; /* keyed hash of member ids; same on every service */
    rte_cache_freshness freshness;
} rte_cache_settings;

/*
 * rte_cache_settings_from_config - cache.member_key_secret,
 * cache.fresh_success, cache.fresh_error, cache.ttl; -1 + err naming the key
 * on a bad value (a ttl not above both freshness windows is refused). The
 * development default secret is accepted with a warning. Start-up thread.
 */
int rte_cache_settings_from_config(const rte_config *cfg, rte_cache_settings *out, char *err,
                                   size_t errlen);

/* rte_cache_freshness_default - 22 h / 5 min / 72 h */
rte_cache_freshness rte_cache_freshness_default(void);

/* rte_cache_key - the Redis key for a member and trading partner into out; -1 if too long */
int rte_cache_key(const char *secret, const char *member_id, const char *trading_partner_id,
                  char *out, size_t len);

/* rte_cache_key_for - the same key from a member key already computed (rte_crypto_member_key) */
int rte_cache_key_for(const char *member_key, const char *trading_partner_id, char *out,
                      size_t len);

/*
 * rte_cache_entry_from_stedi - map a Stedi eligibility response (real-time
 * body, or the response of one polled batch item) into an entry cached at
 * now_ms. Payer errors (errors[]) become error entries. -1 + err if the
 * document is not a Stedi eligibility response.
 */
int rte_cache_entry_from_stedi(const cJSON *resp, const char *source, int64_t now_ms,
                               const rte_cache_freshness *f, rte_cache_entry *out, char *err,
                               size_t errlen);

/*
 * rte_cache_entry_from_callback - map the eligibility{} object of one
 * batch-callback result ({eligible, copay_amount?, network_status?,
 * coverage_start?, coverage_end?}, dates YYYY-MM-DD or null, network_status
 * in_network | out_of_network | unknown) into a success entry cached at
 * now_ms with source "stedi_batch". -1 + err naming the field
 * ("eligibility.copay_amount: expected a number >= 0 or null") when the
 * object is malformed. Pure; any thread.
 */
int rte_cache_entry_from_callback(const cJSON *eligibility, int64_t now_ms,
                                  const rte_cache_freshness *f, rte_cache_entry *out, char *err,
                                  size_t errlen);

/* rte_cache_entry_encode - the JSON value (malloc'd, caller frees) */
char *rte_cache_entry_encode(const rte_cache_entry *e);

/* rte_cache_entry_decode - parse a JSON value; -1 + err naming the field if malformed */
int rte_cache_entry_decode(const char *json, size_t len, rte_cache_entry *out, char *err,
                           size_t errlen);

/* rte_cache_entry_is_fresh - 1 if now_ms is before fresh_until */
int rte_cache_entry_is_fresh(const rte_cache_entry *e, int64_t now_ms);

/* rte_cache_entry_age_s - whole seconds since cached_at (0 if in the future) */
int64_t rte_cache_entry_age_s(const rte_cache_entry *e, int64_t now_ms);

/*
 * rte_cache_entry_last_success - 1 and out = the success entry an error
 * entry e replaced (see has_last_success); 0 when e carries none
 */
int rte_cache_entry_last_success(const rte_cache_entry *e, rte_cache_entry *out);

/*
 * rte_cache_put - write e under key with the physical TTL, unless Redis
 * holds an entry with a later cached_at. When e is an error and the entry
 * it replaces is a success (or an error carrying one) cached within the
 * physical TTL, the stored value keeps that success as last_success.
 * Returns 1 written, 0 kept the newer one, -1 + err on a Redis error.
 */
int rte_cache_put(rte_redis *r, const char *key, const rte_cache_entry *e,
                  const rte_cache_freshness *f, char *err, size_t errlen);

/* One write of rte_cache_put_many. */
typedef struct rte_cache_write {
    const char *key;
    const rte_cache_entry *entry;
    int rc; /* out: 1 written, 0 kept the newer one */
} rte_cache_write;

/*
 * rte_cache_put_many - rte_cache_put for n writes (1..1000) in one round
 * trip (pipelined EVALSHA, the script loaded once per connection when
 * Redis asks). Fills each w[i].rc; returns 0, or -1 + err on a Redis error
 * (then some writes may have happened: they are idempotent, retry them all).
 */
int rte_cache_put_many(rte_redis *r, rte_cache_write *w, int n, const rte_cache_freshness *f,
                       char *err, size_t errlen);

/* rte_cache_get - 1 found (out filled), 0 absent, -1 + err (Redis error or corrupt value) */
int rte_cache_get(rte_redis *r, const char *key, rte_cache_entry *out, char *err, size_t errlen);

#endif
