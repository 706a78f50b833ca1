/*
 * tz.h - IANA time zones read straight from TZif files.
 *
 * glibc has no per-call time zone (localtime_r follows the process-wide TZ,
 * and setenv("TZ") is not thread-safe), so this module reads the zone files
 * itself: a rte_tz holds the 64-bit transition table of a TZif v2+ file
 * (RFC 8536) and the POSIX TZ rule of its footer, which covers every instant
 * after the table ends. Version 1 files (32-bit only) are read too.
 *
 * Contract: all times are seconds since the Unix epoch. "local" times are
 * civil times encoded as if they were UTC (local = utc + offset), so civil
 * arithmetic works on them without any time zone.
 *
 * Errors: rte_tz_load names the zone and the reason (unknown zone, not a
 * TZif file, truncated, bad footer rule). Zone names may not contain ".."
 * nor start with '/'.
 *
 * Thread safety: a loaded rte_tz is immutable; any thread may read it.
 */
#ifndef RTE_TZ_H
#define RTE_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct rte_tz rte_tz;

/* rte_tz_load - read zone name from dir (NULL = /usr/share/zoneinfo); NULL + err */
rte_tz *rte_tz_load(const char *dir, const char *name, char *err, size_t errlen);

/* rte_tz_free - release a zone (NULL is fine) */
void rte_tz_free(rte_tz *tz);

/* rte_tz_name - the zone's name as given to rte_tz_load; borrowed */
const char *rte_tz_name(const rte_tz *tz);

/* rte_tz_offset - UTC offset in seconds in force at instant t */
int32_t rte_tz_offset(const rte_tz *tz, int64_t t);

/*
 * rte_tz_next_transition - the first instant > t at which the offset
 * changes, or INT64_MAX if it never does
 */
int64_t rte_tz_next_transition(const rte_tz *tz, int64_t t);

/*
 * rte_tz_resolve - the instants whose local time is local: 0 (local falls
 * in a gap), 1, or 2 (a repeated hour), ascending in out[]
 */
int rte_tz_resolve(const rte_tz *tz, int64_t local, int64_t out[2]);

#endif
