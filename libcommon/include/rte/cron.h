/*
 * cron.h - five-field cron expressions and their next fire time.
 *
 * Syntax (Vixie cron): "minute hour day-of-month month day-of-week", each a
 * comma list of '*', N, N-M, with an optional /step ("*" + "/15", "1-30/5",
 * "5/10" = 5 through the field's end); months jan..dec and weekdays sun..sat
 * by name (any case). Weekdays run 0..7 with 0 and 7 both Sunday, so a step
 * counts Sunday as 7 at the end: "5/1" is Fri, Sat, Sun, "7/2" Sunday,
 * "1-7/2" Mon, Wed, Fri, Sun; a range may end in Sunday written 0 ("fri-sun"
 * = 5-7). The macros @yearly (@annually),
 * @monthly, @weekly, @daily (@midnight) and @hourly stand for their usual
 * five fields. When both day fields are restricted (neither starts with
 * '*') a day matches if either does (the historical OR rule); otherwise
 * both must.
 *
 * Next fire: rte_cron_next evaluates the expression on the local wall
 * clock of a time zone (rte_tz). Daylight saving follows cron's rules:
 *   - a local time that is skipped (spring forward) fires once, at the first
 *     instant after the gap, however many matching minutes the gap held;
 *   - a local time that happens twice (fall back) fires once, at its first
 *     occurrence;
 *   - an expression whose hour field starts with '*' (hourly, every N
 *     minutes) follows elapsed time instead: it fires in both passes of a
 *     repeated hour and simply has no fires inside a gap.
 *
 * Errors: rte_cron_parse names the field and the problem ("hour: 24 is out
 * of range 0-23"). An expression that can never fire (day 31 in a
 * February-only schedule) is refused at parse time.
 *
 * Thread safety: a parsed rte_cron is a plain value; any thread.
 */
#ifndef RTE_CRON_H
#define RTE_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "rte/tz.h"

typedef struct rte_cron {
    uint64_t minute; /* bits 0..59 */
    uint32_t hour;   /* bits 0..23 */
    uint32_t dom;    /* bits 1..31 */
    uint32_t month;  /* bits 1..12 */
    uint32_t dow;    /* bits 0..6, Sunday = 0 */
    int dom_star, dow_star, hour_star;
} rte_cron;

/* rte_cron_parse - parse text into *out; 0, or -1 with err naming the field */
int rte_cron_parse(const char *text, rte_cron *out, char *err, size_t errlen);

/*
 * rte_cron_next - the first fire strictly after instant after (epoch
 * seconds) in time zone tz, or -1 if none within 50 years
 */
int64_t rte_cron_next(const rte_cron *e, const rte_tz *tz, int64_t after);

#endif
