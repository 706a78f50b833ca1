/*
 * input.h - the one definition of valid outside input: ids, calendar dates,
 * RFC 3339 timestamps, UTF-8 text and strict JSON documents.
 *
 * Every byte that enters the suite from outside - HTTP bodies, paths and
 * query strings, Stedi answers, member directory lines, Kafka messages -
 * passes these checks before anything is stored, produced or keyed by it.
 * Two readers of one input (cJSON here, Python or Redis's cjson elsewhere)
 * must never read it differently, so what is ambiguous is refused rather
 * than repaired: a duplicate JSON key, an escaped NUL that C strings would
 * cut, invalid UTF-8, a lone surrogate, a month 13. docs/input.md is the
 * policy in prose.
 *
 * Errors: each function returns 0, or -1 with err filled. With a field
 * name the message reads "<field>: <problem>"
 * ("results[0].member_id: control character U+0000 is not allowed"); with
 * field NULL it is the problem alone, for callers with their own prefix
 * style. Text quoted from the input in a message is made safe first
 * (printable ASCII, other bytes as \xNN), so an error is itself always
 * valid UTF-8 and safe in JSON, logs and Kafka headers.
 *
 * Generic layer: knows nothing of members, Stedi or topics; the Stedi
 * client applies Stedi's stricter character sets on top.
 *
 * Thread safety: pure functions over caller-owned buffers; any thread.
 */
#ifndef RTE_INPUT_H
#define RTE_INPUT_H

#include <stddef.h>
#include <stdint.h>

#define RTE_INPUT_ID_MAX 128  /* member, check and request ids, in bytes */
#define RTE_INPUT_CODE_MAX 64 /* short codes: trading partner / payer ids */

#define RTE_INPUT_JSON_DEPTH 64              /* default nesting bound */
#define RTE_INPUT_JSON_DEPTH_MAX 256         /* the most a caller may ask for */
#define RTE_INPUT_JSON_MAX_BYTES (32u << 20) /* default document size bound */
#define RTE_INPUT_QUOTE_MAX 48               /* bytes of input quoted in a message */

/*
 * rte_input_utf8 - 1 when len bytes are well-formed UTF-8 (RFC 3629: no
 * overlong forms, no encoded surrogates, nothing above U+10FFFF); 0
 * otherwise with *bad (when not NULL) the offset of the first bad byte
 */
int rte_input_utf8(const char *s, size_t len, size_t *bad);

/*
 * rte_input_utf8_char - the length (2..4) of the well-formed UTF-8
 * sequence at s (s[0] >= 0x80, avail bytes readable), or 0 when ill-formed
 */
size_t rte_input_utf8_char(const char *s, size_t avail);

/*
 * rte_input_id - an identifier: 1..maxlen bytes of well-formed UTF-8 with
 * no control character (C0 including NUL, DEL, C1), no line/paragraph
 * separator, no invisible format character (zero-width, bidi controls,
 * BOM), and no leading or trailing space. Callers with a stricter
 * character set (Stedi's member ids, batch ids) check it afterwards.
 */
int rte_input_id(const char *s, size_t len, size_t maxlen, const char *field, char *err,
                 size_t errlen);

#define RTE_INPUT_DATE_ISO 1   /* YYYY-MM-DD (RFC 3339 full-date) */
#define RTE_INPUT_DATE_BASIC 2 /* YYYYMMDD (ISO 8601 basic; X12 CCYYMMDD, as Stedi sends) */

/*
 * rte_input_date - a calendar date in one of formats (RTE_INPUT_DATE_*
 * or'ed): four-digit year, month 01..12, day 01..the month's last day
 * (Gregorian leap years). *days (when not NULL) gets the day number since
 * 1970-01-01.
 */
int rte_input_date(const char *s, size_t len, int formats, int64_t *days, const char *field,
                   char *err, size_t errlen);

/*
 * rte_input_timestamp - an RFC 3339 date-time: full-date "T" hh:mm:ss,
 * optional fraction (any digits, truncated to milliseconds), then "Z" or
 * +hh:mm / -hh:mm; 't' and 'z' are accepted in lower case (section 5.6).
 * A leap second (:60) is accepted in minute 59 only and folds into the
 * next minute. *ms (when not NULL) gets epoch milliseconds (negative before
 * 1970).
 */
int rte_input_timestamp(const char *s, size_t len, int64_t *ms, const char *field, char *err,
                        size_t errlen);

/* Bounds for rte_input_json; a zero member takes the default. */
typedef struct rte_input_json_limits {
    size_t max_bytes; /* RTE_INPUT_JSON_MAX_BYTES */
    int max_depth;    /* RTE_INPUT_JSON_DEPTH; at most RTE_INPUT_JSON_DEPTH_MAX */
} rte_input_json_limits;

/*
 * rte_input_json - one strict JSON text (RFC 8259) in exactly len bytes:
 * the grammar (no trailing commas, comments, leading zeros, bare control
 * characters in strings, byte-order mark; whitespace is space, tab, CR,
 * LF only), well-formed UTF-8, no \u0000 escape, surrogate escapes only
 * as a high-low pair, no object with two equal keys (compared after
 * unescaping), nesting and size within lim (NULL: the defaults). The
 * error names the byte and, where it helps, the path:
 *   invalid JSON at byte 7: expected ',' or '}' (in 'results[0]')
 *   invalid UTF-8 at byte 1042 in a string at 'results[3].member_id'
 *   \u0000 not allowed in a string at 'results[0].member_id'
 *   duplicate key 'member_id' in the object at 'results[3]'
 *   nesting deeper than 64 levels at byte 90
 *   document of 40000000 bytes exceeds the limit of 33554432 bytes
 * One pass over the bytes; allocates only for objects with many keys.
 */
int rte_input_json(const char *buf, size_t len, const rte_input_json_limits *lim, char *err,
                   size_t errlen);

/*
 * rte_input_quote - len bytes of s made safe to quote in a message:
 * printable ASCII as is, every other byte as \xNN, cut to
 * RTE_INPUT_QUOTE_MAX input bytes with "..." after. out is NUL-terminated.
 */
void rte_input_quote(const char *s, size_t len, char *out, size_t outlen);

#endif
