/*
 * cache_entry.h - the one owner of the shared eligibility cache format.
 *
 * Key:   rte:eligibility:{member_key}:{trading_partner_id}, where member_key
 *        is rte_crypto_member_key(secret, member_id): no raw member id ever
 *        appears in Redis.
 * Value: JSON {eligible, copay_amount, network_status, coverage_start,
 *        coverage_end, eligibility_start, eligibility_end, benefits{},
 *        cached_at, fresh_until, source} plus, for error entries,
 *        error{code, message, followup_action, retry, origin} and, when the
 *        error replaced a success, last_success{...that success entry...}.
 *        cached_at/fresh_until are RFC 3339 UTC with milliseconds, so they
 *        also compare as strings. benefits is keyed by the service type
 *        codes asked ("30" unless the check named others), each
 *        {status, status_code, copay, coinsurance_percent, deductible,
 *        deductible_family, out_of_pocket, out_of_pocket_family}; every
 *        amount is split by network (in_network, out_of_network,
 *        any_network, network_not_stated) and is a number, or {min, max}
 *        when the payer sent several different ones. docs/stedi.md says
 *        which Stedi fields each comes from.
 *
 * Compatibility: every field added after the first format (eligibility_*,
 * benefits, error.followup_action/retry/origin) is optional when decoding,
 * so entries written by older code still decode (an old error entry counts
 * as retryable, which is what its 5-minute freshness meant); unknown
 * fields are ignored, so older readers decode newer entries.
 *
 * Freshness is logical: fresh_until = cached_at + 22 h for a success, + 5 min
 * for an error worth retrying, + 1 h for an error that retrying the same
 * request cannot fix (all configurable). The physical Redis TTL is longer
 * (default 72 h) so PREFER_CACHED and STALE_WHILE_REVALIDATE can still serve
 * stale entries. Writes never replace a newer entry with an older one: the
 * compare-and-set runs in Redis (Lua) on cached_at.
 *
 * Every write is announced on RTE_CACHE_WRITTEN_CHANNEL (Redis pub/sub) so
 * in-process copies (the gateway's L1) are invalidated within milliseconds.
 *
 * Entries are built from Stedi answers by stedi_reply.h and from signed
 * callbacks by rte_cache_entry_from_callback. Nobody else builds keys or
 * parses values; services call these functions.
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
    int64_t success_ms;     /* default 22 h */
    int64_t error_ms;       /* an error worth retrying; default 5 min */
    int64_t error_final_ms; /* an error retrying cannot fix; default 1 h */
    int64_t physical_ms;    /* Redis TTL, default 72 h; must exceed the three above */
} rte_cache_freshness;

/* Service types one entry summarizes: Stedi recommends one per request. */
#define RTE_CACHE_SERVICE_TYPES_MAX 2

/* The kinds of amount a benefit summary carries (X12 EB01 in parentheses). */
enum rte_benefit_kind {
    RTE_BENEFIT_COPAY,                /* B co-payment, benefitAmount */
    RTE_BENEFIT_COINSURANCE,          /* A co-insurance, benefitPercent */
    RTE_BENEFIT_DEDUCTIBLE,           /* C deductible, individual level */
    RTE_BENEFIT_DEDUCTIBLE_FAMILY,    /* C deductible, family level */
    RTE_BENEFIT_OUT_OF_POCKET,        /* G out of pocket (stop loss), individual */
    RTE_BENEFIT_OUT_OF_POCKET_FAMILY, /* G out of pocket (stop loss), family */
    RTE_BENEFIT_NKINDS
};

/* Which providers an amount applies to (Stedi's inPlanNetworkIndicatorCode). */
enum rte_benefit_network {
    RTE_NET_IN,       /* Y */
    RTE_NET_OUT,      /* N */
    RTE_NET_ANY,      /* W: applies to both in and out-of-network providers */
    RTE_NET_UNSTATED, /* U or absent */
    RTE_NET_N
};

/* An amount: cents, or for co-insurance hundredths of a percent; lo < hi when the payer sent
 * several different values for the same service type, kind and network. */
typedef struct rte_cache_range {
    int32_t lo, hi;
} rte_cache_range;

/* What the answer says for one service type asked. */
typedef struct rte_cache_benefit {
    char service_type[4]; /* X12 service type code, e.g. "30" */
    char status[12];      /* active | inactive | not_current | not_stated */
    char status_code[4];  /* EB01 "1".."8" of the row that decided the status, or "" */
    uint32_t has;         /* bit kind * RTE_NET_N + network: that amount is stated */
    rte_cache_range amount[RTE_BENEFIT_NKINDS][RTE_NET_N];
} rte_cache_benefit;

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
    char eligibility_start[11]; /* YYYY-MM-DD or "" */
    char eligibility_end[11];
    int nbenefits; /* 0..RTE_CACHE_SERVICE_TYPES_MAX, in the order asked */
    rte_cache_benefit benefits[RTE_CACHE_SERVICE_TYPES_MAX];
    int64_t cached_at_ms;
    int64_t fresh_until_ms;
    char source[20]; /* stedi_realtime | stedi_batch */
    int is_error;
    char error_code[16];
    char error_message[128];
    char error_followup[4]; /* X12 AAA04 follow-up action code (C, N, P, R, S, W, X, Y) or "" */
    int error_retry;        /* 1: asking again later may succeed; 0: not without a change */
    char error_origin[8];   /* payer (an AAA rejection) | stedi (Stedi's own, status ERROR) */
    /* an error entry: the success entry it replaced, when there was one no
     * older than the Redis TTL (the put script carries it over, from error
     * to error too), so stale-if-error still has an answer while a payer is
     * down. Encoded and decoded like the rest (without its benefit summary:
     * rte_cache_success keeps the headline facts only); an entry put with
     * one keeps its own instead of the stored one. */
    int has_last_success;
    rte_cache_success last_success;
} rte_cache_entry;

/* rte_cache_benefit_kind_name - "copay", "coinsurance_percent", ...; static string */
const char *rte_cache_benefit_kind_name(enum rte_benefit_kind k);

/* rte_cache_network_name - "in_network", "out_of_network", "any_network", "network_not_stated" */
const char *rte_cache_network_name(enum rte_benefit_network n);

/* rte_cache_benefit_get - 1 and *out when amount (kind, net) of b is stated, else 0; pure */
int rte_cache_benefit_get(const rte_cache_benefit *b, enum rte_benefit_kind kind,
                          enum rte_benefit_network net, rte_cache_range *out);

/* rte_cache_benefit_add - widen amount (kind, net) of b to include v; pure */
void rte_cache_benefit_add(rte_cache_benefit *b, enum rte_benefit_kind kind,
                           enum rte_benefit_network net, int32_t v);

/* What every reader and writer of the cache must agree on. */
typedef struct rte_cache_settings {
    char member_key_secret[128]; /* keyed hash of member ids; same on every service */
    rte_cache_freshness freshness;
} rte_cache_settings;

/*
 * rte_cache_settings_from_config - cache.member_key_secret,
 * cache.fresh_success, cache.fresh_error, cache.fresh_error_final,
 * cache.ttl; -1 + err naming the key on a bad value (a ttl not above every
 * freshness window is refused). The
 * development default secret is accepted with a warning. Start-up thread.
 */
int rte_cache_settings_from_config(const rte_config *cfg, rte_cache_settings *out, char *err,
                                   size_t errlen);

/* rte_cache_freshness_default - 22 h / 5 min / 1 h / 72 h */
rte_cache_freshness rte_cache_freshness_default(void);

/* rte_cache_key - the Redis key for a member and trading partner into out; -1 if too long */
int rte_cache_key(const char *secret, const char *member_id, const char *trading_partner_id,
                  char *out, size_t len);

/* rte_cache_key_for - the same key from a member key already computed (rte_crypto_member_key) */
int rte_cache_key_for(const char *member_key, const char *trading_partner_id, char *out,
                      size_t len);

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
 * trip: one EVALSHA of the compare-and-set script per 64 writes (each
 * write judged on its own, in order, exactly as rte_cache_put: newer
 * wins, a replaced success carried into an error), the calls pipelined,
 * the script loaded when Redis asks. Fills each w[i].rc; returns 0, or
 * -1 + err on a Redis error (then some writes may have happened: they are
 * idempotent, retry them all). One call names up to 64 keys, which Redis
 * Cluster would refuse (CROSSSLOT) unless they shared a hash slot: the
 * suite runs on one Redis primary (docs/deploy.md). Caller's thread owns r.
 */
int rte_cache_put_many(rte_redis *r, rte_cache_write *w, int n, const rte_cache_freshness *f,
                       char *err, size_t errlen);

/* rte_cache_get - 1 found (out filled), 0 absent, -1 + err (Redis error or corrupt value) */
int rte_cache_get(rte_redis *r, const char *key, rte_cache_entry *out, char *err, size_t errlen);

#endif
