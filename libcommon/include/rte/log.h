/*
 * log.h - structured JSON-lines logging to stderr, with a PII guard.
 *
 * Every line is one JSON object: {"ts","level","service","msg", and the
 * thread's request/trace id when one is set}. Before a message is written
 * it passes the PII guard (rte_log_scrub): values of name and date-of-birth
 * fields and anything shaped like a date are masked, so member names and
 * dates of birth never reach logs even when a caller formats a whole request
 * into a message.
 *
 * Severities follow Postfix: rte_log_warn/rte_log_error for what happened
 * and what happens next; rte_fatal for a bad environment or configuration at
 * start-up (logs and exits 1); rte_panic for an internal bug (logs and
 * aborts).
 *
 * Thread safety: every function may be called from any thread; one line is
 * written with a single write(2), so lines never interleave.
 */
#ifndef RTE_LOG_H
#define RTE_LOG_H

#include <stddef.h>

enum rte_log_level { RTE_LOG_DEBUG = 0, RTE_LOG_INFO, RTE_LOG_WARN, RTE_LOG_ERROR };

/* rte_log_init - set the service name and minimum level; call once at start-up */
void rte_log_init(const char *service, enum rte_log_level min_level);

/* rte_log_level_parse - "debug"|"info"|"warn"|"error" to a level; -1 if unknown */
int rte_log_level_parse(const char *s);

/* rte_log_set_request_id - set (or clear with NULL) this thread's request id */
void rte_log_set_request_id(const char *id);

/* rte_log - write one line at the given level (printf-style, PII-scrubbed) */
void rte_log(enum rte_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rte_log_debug(...) rte_log(RTE_LOG_DEBUG, __VA_ARGS__)
#define rte_log_info(...) rte_log(RTE_LOG_INFO, __VA_ARGS__)
#define rte_log_warn(...) rte_log(RTE_LOG_WARN, __VA_ARGS__)
#define rte_log_error(...) rte_log(RTE_LOG_ERROR, __VA_ARGS__)

/* rte_fatal - log a start-up/config error naming its cause and exit(1) */
void rte_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* rte_panic - log an internal bug and abort() */
void rte_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * rte_log_scrub - mask PII in text: copies src into dst (size dstlen, always
 * NUL-terminated) with values of name/date-of-birth fields and date-shaped
 * tokens replaced by "***". Returns the length written.
 */
size_t rte_log_scrub(const char *src, char *dst, size_t dstlen);

#endif
