/*
 * clock.h - the suite's one notion of "now", real or scaled.
 *
 * Every module that schedules or expires anything reads this clock, so a
 * simulated day can run in minutes: with RTE_CLOCK_SCALE=k the clock advances
 * k simulated seconds per real second, starting at RTE_CLOCK_START (RFC 3339
 * UTC, e.g. 2026-01-05T06:00:00Z, or epoch seconds) when given, else at the
 * real time of start-up. Scale 1 (the default) is plain wall-clock time.
 * RTE_CLOCK_ANCHOR (same formats) is the real time at which the simulated
 * clock read RTE_CLOCK_START (or, without a start, itself): processes that
 * share scale, start and anchor agree on "now" whenever each started.
 * Without it each process starts its simulated clock at its own start-up.
 *
 * Durations handed to rte_clock_sleep_ms are simulated milliseconds; they are
 * divided by the scale before sleeping for real.
 *
 * Thread safety: initialise once before threads start; reads are lock-free.
 */
#ifndef RTE_CLOCK_H
#define RTE_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* rte_clock_init - set scale (> 0) and start (ms since epoch, or 0 = now) */
int rte_clock_init(double scale, int64_t start_ms);

/*
 * rte_clock_init_anchored - as rte_clock_init, the simulated clock having
 * read start at real time anchor_ms (0 = no anchor: start is now); -1 on a
 * bad value. Before threads start.
 */
int rte_clock_init_anchored(double scale, int64_t start_ms, int64_t anchor_ms);

/* rte_clock_init_env - read RTE_CLOCK_SCALE/START/ANCHOR; fatal on bad values */
void rte_clock_init_env(void);

/* rte_clock_now_ms - simulated wall-clock time in ms since the Unix epoch */
int64_t rte_clock_now_ms(void);

/* rte_clock_now_s - simulated wall-clock time in whole seconds */
int64_t rte_clock_now_s(void);

/* rte_clock_scale - the current scale factor */
double rte_clock_scale(void);

/* rte_clock_mono_ms - real monotonic ms (for latencies and timeouts, never scaled) */
int64_t rte_clock_mono_ms(void);

/* rte_clock_sleep_ms - sleep for a simulated duration (real time = ms / scale) */
void rte_clock_sleep_ms(int64_t ms);

/* rte_clock_real_ms - convert a simulated duration to real milliseconds */
int64_t rte_clock_real_ms(int64_t simulated_ms);

/* rte_clock_format - RFC 3339 UTC text ("2026-01-05T06:00:00.000Z") of ms into buf */
void rte_clock_format(int64_t ms, char *buf, int len);

/* rte_clock_parse - RFC 3339 (Z or +hh:mm) or epoch seconds to ms; -1 if invalid */
int64_t rte_clock_parse(const char *s);

/*
 * rte_clock_cond_init - initialise cv so its timed waits run on
 * CLOCK_MONOTONIC, the clock of rte_clock_mono_ms (immune to wall-clock
 * steps). 0, or -1 if pthread refused. Any thread.
 */
int rte_clock_cond_init(pthread_cond_t *cv);

/* rte_clock_mono_timespec - the absolute timespec of a rte_clock_mono_ms time, for
 * pthread_cond_timedwait on a cv from rte_clock_cond_init; pure */
struct timespec rte_clock_mono_timespec(int64_t mono_ms);

/*
 * Proleptic Gregorian calendar <-> days since 1970-01-01 (Howard Hinnant's
 * algorithms; exact for any year a 64-bit day count holds). Pure; any thread.
 */
/* rte_days_from_civil - day number of y-m-d (m 1..12, d 1..31) */
int64_t rte_days_from_civil(int64_t y, int m, int d);

/* rte_civil_from_days - y-m-d of day number z */
void rte_civil_from_days(int64_t z, int64_t *y, int *m, int *d);

#endif
