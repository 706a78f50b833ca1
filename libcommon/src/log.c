/*
 * log.c - structured JSON-lines logging to stderr, with a PII guard.
 *
 * Each call produces one line
 *   {"ts":"2026-01-05T06:00:00.123Z","level":"info","service":"x","msg":"...","request_id":"..."}
 * and hands it to the kernel with one write(2) (retried only for the rest of
 * a partial write), so lines from different threads never interleave. "ts"
 * is the real wall-clock time, not the scaled rte_clock: logs are correlated
 * with other systems' logs, which run on real time. request_id appears only
 * when the calling thread set one (thread-local).
 *
 * PII guard: the formatted message (never the line's own fields) passes
 * through rte_log_scrub, which masks with "***":
 *   - the value after a name or date-of-birth key (firstName, lastName,
 *     first_name, last_name, name, dateOfBirth, date_of_birth, dob,
 *     birthDate; case-insensitive, whole key only, so "username" is left
 *     alone) in the forms "key":"value", "key": value, "key":{...}, the same
 *     inside an already-escaped JSON string (\"key\":\"value\"), and
 *     key=value / key: value (quoted values up to the closing quote, bare
 *     values up to whitespace or one of , ; & ) ] } ");
 *   - date-shaped tokens standing alone: YYYY-MM-DD, YYYYMMDD (month and
 *     day plausible, year 1800-2199) and MM/DD/YYYY.
 * A bare unquoted value stops at whitespace, so "name=John Smith" leaves
 * "Smith": callers must not format free text after a name key. A JSON null
 * value is kept (it is not personal data).
 *
 * In the line, quotes, backslashes and control characters of the message
 * are JSON-escaped and invalid UTF-8 becomes U+FFFD, so every line parses.
 * Messages longer than MSG_MAX (4096) bytes are truncated to end in "...".
 * rte_fatal logs at level "fatal" and exit(1)s; rte_panic logs at level
 * "panic" and abort()s; both ignore the minimum level. Before rte_log_init
 * the service name is the program name and the level is info.
 *
 * This module does not rotate, buffer or ship logs: stderr is collected by
 * the container runtime.
 */
#include "rte/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 4096
#define LINE_MAX_BYTES 16384
#define SERVICE_MAX 64
#define REQUEST_ID_MAX 128

static char service_name[SERVICE_MAX];
static atomic_int min_level = RTE_LOG_INFO;
static _Thread_local char request_id[REQUEST_ID_MAX];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Keys whose values are personal data; matched case-insensitively. */
static const char *const pii_keys[] = {
    "firstName",   "lastName",      "first_name", "last_name", "name",
    "dateOfBirth", "date_of_birth", "dob",        "birthDate",
};

/*
 * rte_log_init - set the service name and minimum level (RTE_LOG_LEVEL, when
 * set to a valid level, wins); call at start-up before threads, or again on
 * reload with the same service name (only the level changes, atomically)
 */
void rte_log_init(const char *service, enum rte_log_level min)
{
    const char *env = getenv("RTE_LOG_LEVEL");
    int from_env = -1;

    /* a reload (SIGHUP) calls this again while other threads log: write the
     * name only when it changes, so the common case is a pure read */
    if (!service)
        service = "";
    if (strncmp(service_name, service, sizeof(service_name) - 1) != 0)
        snprintf(service_name, sizeof(service_name), "%s", service);
    if (env && *env) {
        from_env = rte_log_level_parse(env);
        if (from_env >= 0)
            min = (enum rte_log_level)from_env;
    }
    atomic_store(&min_level, (int)min);
    if (env && *env && from_env < 0)
        rte_log_warn("log: RTE_LOG_LEVEL='%s' is not debug|info|warn|error; using level %s", env,
                     level_names[min]);
}

/* rte_log_level_parse - "debug"|"info"|"warn"|"error" to a level; -1 if unknown */
int rte_log_level_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return RTE_LOG_WARN;
    return -1;
}

/* rte_log_set_request_id - set (or clear with NULL) this thread's request id */
void rte_log_set_request_id(const char *id)
{
    if (!id) {
        request_id[0] = '\0';
        return;
    }
    /* a copy, truncated to fit: runs twice per HTTP request, so no printf */
    size_t n = strnlen(id, sizeof(request_id) - 1);
    memcpy(request_id, id, n);
    request_id[n] = '\0';
}

/* ---- PII scrubbing ---------------------------------------------------- */

struct out {
    char *buf;
    size_t cap; /* bytes available for text, excluding the NUL */
    size_t len;
};

static void out_putn(struct out *o, const char *s, size_t n)
{
    size_t room = o->cap - o->len;

    if (n > room)
        n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static int is_ident(int c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Length of the PII key at s if one ends at an identifier boundary, else 0. */
static size_t match_key(const char *s)
{
    for (size_t i = 0; i < sizeof(pii_keys) / sizeof(pii_keys[0]); i++) {
        size_t n = strlen(pii_keys[i]);
        if (strncasecmp(s, pii_keys[i], n) == 0 && !is_ident(s[n]))
            return n;
    }
    return 0;
}

static int digits(const char *s, int n, int *val)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *val = v;
    return 1;
}

/* Length of a date-shaped token starting at s (caller checked the left edge), else 0. */
static size_t date_len(const char *s)
{
    int y, m, d;

    /* YYYY-MM-DD (a time part may follow: the date itself is masked) */
    if (digits(s, 4, &y) && s[4] == '-' && digits(s + 5, 2, &m) && s[7] == '-' &&
        digits(s + 8, 2, &d) && !is_digit(s[10]))
        return 10;
    /* YYYYMMDD standing alone, plausible as a date */
    if (digits(s, 8, &d) && !is_ident(s[8])) {
        y = d / 10000;
        m = d / 100 % 100;
        d %= 100;
        if (y >= 1800 && y <= 2199 && m >= 1 && m <= 12 && d >= 1 && d <= 31)
            return 8;
    }
    /* MM/DD/YYYY */
    if (digits(s, 2, &m) && s[2] == '/' && digits(s + 3, 2, &d) && s[5] == '/' &&
        digits(s + 6, 4, &y) && !is_digit(s[10]) && s[10] != '/' && m >= 1 && m <= 12 && d >= 1 &&
        d <= 31)
        return 10;
    return 0;
}

/* End of the quoted string opened at s[0] (quote char q), honouring backslashes. */
static size_t quoted_end(const char *s, char q)
{
    size_t i = 1;

    while (s[i] && s[i] != q) {
        if (s[i] == '\\' && s[i + 1])
            i++;
        i++;
    }
    return s[i] ? i + 1 : i;
}

/* End of the bracketed JSON value opened at s[0], skipping strings. */
static size_t bracket_end(const char *s)
{
    int depth = 0;
    size_t i = 0;

    while (s[i]) {
        char c = s[i];
        if (c == '"') {
            i += quoted_end(s + i, '"');
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return i;
}

/*
 * Mask the JSON value at s, where a key quoted with qlen-byte quotes ('"' or
 * the escaped '\"') was followed by ':'; returns bytes consumed.
 */
static size_t mask_json_value(const char *s, size_t qlen, struct out *o)
{
    size_t i;

    if (qlen == 1 && s[0] == '"') {
        i = quoted_end(s, '"');
        out_putn(o, "\"***", 4);
        if (i > 1 && s[i - 1] == '"')
            out_putn(o, "\"", 1);
        return i;
    }
    if (qlen == 2 && s[0] == '\\' && s[1] == '"') {
        const char *end = strstr(s + 2, "\\\"");
        i = end ? (size_t)(end - s) + 2 : strlen(s);
        out_putn(o, "\\\"***", 5);
        if (end)
            out_putn(o, "\\\"", 2);
        return i;
    }
    if (s[0] == '{' || s[0] == '[') {
        out_putn(o, "***", 3);
        return bracket_end(s);
    }
    if (strncmp(s, "null", 4) == 0 && !is_ident(s[4]))
        return 0; /* copied verbatim by the caller: null is not personal data */
    i = 0;
    while (s[i] && !strchr(",}] \t\r\n\\", s[i]))
        i++;
    if (i)
        out_putn(o, "***", 3);
    return i;
}

/* Mask the value of key=value / key: value at s; returns bytes consumed. */
static size_t mask_bare_value(const char *s, struct out *o)
{
    size_t i = 0;

    if (s[0] == '"' || s[0] == '\'') {
        i = quoted_end(s, s[0]);
        out_putn(o, s, 1);
        out_putn(o, "***", 3);
        if (i > 1 && s[i - 1] == s[0])
            out_putn(o, s, 1);
        return i;
    }
    while (s[i] && !isspace((unsigned char)s[i]) && !strchr(",;&)]}\"", s[i]))
        i++;
    if (i)
        out_putn(o, "***", 3);
    return i;
}

static size_t skip_spaces(const char *s, size_t i)
{
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    return i;
}

/* Try a quoted PII key at s[i]; on a match, emit key and masked value, return new i. */
static size_t try_json_key(const char *s, size_t i, struct out *o)
{
    size_t qlen = s[i] == '"' ? 1 : (s[i] == '\\' && s[i + 1] == '"') ? 2 : 0;
    size_t k, j;

    if (!qlen)
        return i;
    k = match_key(s + i + qlen);
    if (!k || strncmp(s + i + qlen + k, qlen == 1 ? "\"" : "\\\"", qlen) != 0)
        return i;
    j = skip_spaces(s, i + qlen + k + qlen);
    if (s[j] != ':')
        return i;
    j = skip_spaces(s, j + 1);
    out_putn(o, s + i, j - i);
    return j + mask_json_value(s + j, qlen, o);
}

/* Try a bare PII key (key=value, key: value) at s[i]; return new i (i if none). */
static size_t try_bare_key(const char *s, size_t i, struct out *o)
{
    size_t k, j;

    if (i > 0 && (is_ident(s[i - 1]) || s[i - 1] == '"'))
        return i;
    k = match_key(s + i);
    if (!k)
        return i;
    j = skip_spaces(s, i + k);
    if (s[j] != '=' && s[j] != ':')
        return i;
    j = skip_spaces(s, j + 1);
    out_putn(o, s + i, j - i);
    return j + mask_bare_value(s + j, o);
}

/*
 * rte_log_scrub - mask PII in text: copies src into dst (size dstlen, always
 * NUL-terminated) with values of name/date-of-birth fields and date-shaped
 * tokens replaced by "***". Returns the length written.
 * Any thread; no locks.
 */
size_t rte_log_scrub(const char *src, char *dst, size_t dstlen)
{
    struct out o = {dst, dstlen ? dstlen - 1 : 0, 0};
    size_t i = 0, n;

    if (!dst || !dstlen)
        return 0;
    if (!src)
        src = "";
    while (src[i] && o.len < o.cap) {
        n = try_json_key(src, i, &o);
        if (n == i)
            n = try_bare_key(src, i, &o);
        if (n != i) {
            i = n;
            continue;
        }
        if ((i == 0 || (!isalnum((unsigned char)src[i - 1]) && src[i - 1] != '/')) &&
            (n = date_len(src + i)) > 0) {
            out_putn(&o, "***", 3);
            i += n;
            continue;
        }
        out_putn(&o, src + i, 1);
        i++;
    }
    dst[o.len] = '\0';
    return o.len;
}

/* ---- line assembly ---------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned int cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Append s as the contents of a JSON string; never splits an escape or character. */
static void json_escape(struct out *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    char esc[8];

    while (*p) {
        size_t n = utf8_len(p), elen;
        const char *e = esc;

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, elen = 2;
        } else if (*p == '\n') {
            e = "\\n", elen = 2;
        } else if (*p == '\t') {
            e = "\\t", elen = 2;
        } else if (*p == '\r') {
            e = "\\r", elen = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            elen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
        } else if (n == 0) {
            e = "\\ufffd", elen = 6, n = 1;
        } else {
            e = (const char *)p, elen = n;
        }
        if (o->cap - o->len < elen)
            return;
        out_putn(o, e, elen);
        p += n ? n : 1;
    }
}

static void format_ts(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void emit(const char *level, const char *fmt, va_list ap)
{
    char msg[MSG_MAX], clean[MSG_MAX], ts[64], line[LINE_MAX_BYTES];
    struct out o = {line, sizeof(line) - 1, 0};
    const char *svc = service_name[0] ? service_name : program_invocation_short_name;
    int n;

    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n >= (int)sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4);
    rte_log_scrub(msg, clean, sizeof(clean));
    format_ts(ts, sizeof(ts));

    out_putn(&o, "{\"ts\":\"", 7);
    out_putn(&o, ts, strlen(ts));
    out_putn(&o, "\",\"level\":\"", 11);
    out_putn(&o, level, strlen(level));
    out_putn(&o, "\",\"service\":\"", 13);
    json_escape(&o, svc);
    out_putn(&o, "\",\"msg\":\"", 9);
    /* keep room for the request id and the closing text */
    o.cap -= REQUEST_ID_MAX * 6 + 32;
    json_escape(&o, clean);
    o.cap += REQUEST_ID_MAX * 6 + 32;
    out_putn(&o, "\"", 1);
    if (request_id[0]) {
        out_putn(&o, ",\"request_id\":\"", 15);
        json_escape(&o, request_id);
        out_putn(&o, "\"", 1);
    }
    out_putn(&o, "}\n", 2);
    write_all(line, o.len);
}

/* rte_log - write one line at the given level (printf-style, PII-scrubbed); any thread */
void rte_log(enum rte_log_level level, const char *fmt, ...)
{
    va_list ap;

    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;
    if ((int)level < RTE_LOG_DEBUG || (int)level > RTE_LOG_ERROR)
        level = RTE_LOG_ERROR;
    va_start(ap, fmt);
    emit(level_names[level], fmt, ap);
    va_end(ap);
}

/* rte_fatal - log a start-up/config error naming its cause and exit(1) */
void rte_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit("fatal", fmt, ap);
    va_end(ap);
    exit(1);
}

/* rte_panic - log an internal bug and abort() */
void rte_panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit("panic", fmt, ap);
    va_end(ap);
    abort();
}
