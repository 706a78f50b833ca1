/*
 * gen.h - what member-gen's two files share: the PRNG, the hand-written
 * output buffer, one member's base record (main.c) and its profile, the
 * attributes MemberQuery filters on (profile.c).
 */
#ifndef MEMBER_GEN_H
#define MEMBER_GEN_H

#include <stddef.h>
#include <stdint.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL

typedef struct prng {
    uint64_t s[4];
} prng;

uint64_t splitmix64(uint64_t *x);
void prng_seed(prng *p, uint64_t seed);
uint64_t prng_next(prng *p);
double prng_u01(prng *p);
uint64_t prng_below(prng *p, uint64_t n);
double prng_normal(prng *p);

typedef struct outbuf {
    char *p;
} outbuf;

void put_str(outbuf *o, const char *s);
void put_uint(outbuf *o, uint64_t v, int width);
void put_fixed(outbuf *o, uint64_t v, int decimals);
void put_date(outbuf *o, int64_t ms);
void put_time(outbuf *o, int64_t ms);

extern const char *const states[];
extern const size_t n_states;
extern const char *const languages[];

typedef struct member {
    uint64_t id;
    int first, last, state, language, plan, payer;
    int64_t dob_ms, enroll_ms, login_ms, check_ms, appt_ms;
    int sponsor, population;
    int rte, is_mock, status; /* status: index into statuses */
    unsigned flag_bits;
    int usage[24];  /* units of 1e-4, summing to 10000 */
    int weekday[7]; /* units of 1e-2 */
    double p_open;
    int opened;
} member;

#define PROFILE_MAX_EVENTS 24

/* the MemberQuery attributes of one member (profile.c) */
typedef struct profile {
    const char *plan_type; /* replaces the base plan type (Medicare, Medicaid ...) */
    char text[6144];       /* the profile's JSON members, ",\"key\":value..." */
    size_t len;
} profile;

/*
 * profile_gen - draw m's profile from its own stream (seed, member index),
 * so the base fields keep the values they had before profiles existed.
 */
void profile_gen(uint64_t seed, uint64_t i, const member *m, int64_t now_ms, profile *pf);

#endif
