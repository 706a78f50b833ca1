/*
 * http_server.h - h2o (evloop) HTTP server: routes, JSON, limits, ids.
 *
 * One rte_http_server owns one h2o event loop, run by the thread that calls
 * rte_http_server_run. Any number of listeners (the admin port, a service's
 * public port) share that loop; each has its own route table. Routes match
 * on method and path: an exact path, or a prefix ending in '*'
 * ("/v1/eligibility/" followed by a star), first match wins. No match answers 404, a path
 * that matches with another method 405.
 *
 * Every request gets a request id (the caller's X-Request-Id when it is sane,
 * else a new one), echoed in the X-Request-Id response header and set as the
 * log request id while the handler runs. Bodies over the route's max_body are
 * refused with 413 before the handler runs. Each route counts
 * rte_http_requests_total{route,status} and times
 * rte_http_request_duration_seconds{route}.
 *
 * A handler that takes JSON calls rte_http_require_json first: anything
 * but a JSON Content-Type (RFC 9110 8.3, RFC 6839 +json, UTF-8 only) or a
 * body with a content coding is answered 415 naming the header.
 *
 * A handler either responds before returning, or calls rte_http_defer and
 * responds later from any thread; a deferred response to a client that has
 * gone away is dropped silently (and counted as status 499).
 *
 * Stopping: rte_http_server_stop closes the listeners, lets in-flight
 * requests finish (up to a deadline), closes idle connections and makes
 * rte_http_server_run return.
 *
 * Thread safety: route handlers run on the loop thread and must not block
 * for long: hand slow work to another thread and defer. rte_http_respond*
 * may be called from any thread for a deferred request, and only from the
 * loop thread otherwise. rte_http_server_stop may be called from any thread.
 */
#ifndef RTE_HTTP_SERVER_H
#define RTE_HTTP_SERVER_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rte_http_server rte_http_server;
typedef struct rte_http_req rte_http_req;

typedef void (*rte_http_handler)(rte_http_req *req, void *arg);

typedef struct rte_http_route {
    const char *method; /* "GET", "POST", ...; NULL = any */
    const char *path;   /* exact, or prefix ending in '*' */
    rte_http_handler handler;
    void *arg;
    size_t max_body;  /* bytes; 0 = 1 MiB */
    const char *name; /* metrics label; NULL = path */
} rte_http_route;

/* rte_http_server_new - create the loop; NULL + err on failure; any thread */
rte_http_server *rte_http_server_new(char *err, size_t errlen);

/*
 * rte_http_server_listen - bind addr ("0.0.0.0:8080", "127.0.0.1:0") and
 * serve routes (terminated by a route with NULL path) on it. Returns the
 * bound port, or -1 with err. Call before rte_http_server_run, on the thread
 * that created the server.
 */
int rte_http_server_listen(rte_http_server *s, const char *addr, const rte_http_route *routes,
                           char *err, size_t errlen);

/*
 * rte_http_server_listen_tls - like rte_http_server_listen, over TLS (1.2+)
 * with the PEM certificate chain and key given; clients that offer h2 by
 * ALPN get HTTP/2, others HTTP/1.1. -1 + err naming the file on a bad
 * certificate or key.
 */
int rte_http_server_listen_tls(rte_http_server *s, const char *addr, const rte_http_route *routes,
                               const char *cert_file, const char *key_file, char *err,
                               size_t errlen);

/*
 * rte_http_server_set_reuseport - listeners opened after this set
 * SO_REUSEPORT, so several servers (each its own loop thread) can listen on
 * one port and the kernel spreads connections among them. Call before
 * listening, on the thread that created the server.
 */
void rte_http_server_set_reuseport(rte_http_server *s, int on);

/*
 * rte_http_server_steer_by_cpu - the kernel hands each new connection on
 * this server's shared ports (rte_http_server_set_reuseport) to a loop by
 * the CPU that processed its first packet, instead of by hash: a connection
 * processed on cpus[k] goes to loop k mod nloops, one processed on any other
 * CPU c to loop c mod nloops. Loop i is the i-th server that listened on the
 * port. With loop i kept on the CPUs that map to it, a connection is served
 * on the CPU its packets arrive on (over loopback: the client's CPU), with
 * no cross-CPU wake-up per request. The cost: a loop gets only the
 * connections that arrive on its CPUs, so clients or NIC queues concentrated
 * on one CPU leave the other loops idle. The program is the port group's,
 * so calling this on any one server of the group is enough; call it after
 * every server listened. ncpus at most RTE_HTTP_STEER_MAX_CPUS. -1 + err if the
 * kernel refuses it or no listener of s shares its port.
 */
#define RTE_HTTP_STEER_MAX_CPUS 1024
int rte_http_server_steer_by_cpu(rte_http_server *s, const int *cpus, int ncpus, int nloops,
                                 char *err, size_t errlen);

/*
 * rte_http_server_on_turn - call fn(arg) on the loop thread after every turn
 * of the loop (one poll for events and the handlers it ran), the last one
 * included, so work a handler left for the end of its turn (batched Kafka
 * messages, say) is done before run returns. Set before run.
 */
void rte_http_server_on_turn(rte_http_server *s, void (*fn)(void *arg), void *arg);

/*
 * rte_http_server_run - run the loop until stopped; returns 0. Creates every
 * socket the loop owns on the calling thread and closes them before it
 * returns (h2o recycles socket buffers per thread).
 */
int rte_http_server_run(rte_http_server *s);

/*
 * rte_http_server_stop_listener - stop accepting on the listener bound to
 * port and close its idle connections, leaving other listeners serving;
 * in-flight requests still finish; any thread
 */
void rte_http_server_stop_listener(rte_http_server *s, int port);

/* rte_http_server_stop - stop everything; run returns once in-flight requests finish or deadline_ms
 * passed; any thread */
void rte_http_server_stop(rte_http_server *s, int deadline_ms);

/* rte_http_server_inflight - requests accepted and not yet answered; any thread */
int rte_http_server_inflight(const rte_http_server *s);

/*
 * rte_http_server_wait_idle - wait until no request is in flight (answered
 * or abandoned by its client) or timeout_ms passed; the loop keeps serving
 * meanwhile. Returns the requests still in flight. Any thread but the loop's.
 */
int rte_http_server_wait_idle(const rte_http_server *s, int timeout_ms);

/* rte_http_server_free - release (after run returned) */
void rte_http_server_free(rte_http_server *s);

/* --- request accessors (loop thread, or the deferring thread before responding) --- */

/* rte_http_req_method - the method, NUL-terminated; borrowed */
const char *rte_http_req_method(const rte_http_req *req);
/* rte_http_req_path - the path without query string, NUL-terminated; borrowed */
const char *rte_http_req_path(const rte_http_req *req);
/* rte_http_req_tail - for '*' routes, the part of the path after the prefix; borrowed */
const char *rte_http_req_tail(const rte_http_req *req);
/* rte_http_req_id - the request id; borrowed */
const char *rte_http_req_id(const rte_http_req *req);

/*
 * What rte_http_req_query and rte_http_req_query_only answer instead of a
 * length. Only ABSENT means "not given"; every other code is the client's
 * mistake, to be answered with 400 and the message left in err (which names
 * the parameter). Parameter names are compared after percent-decoding, so
 * "trading%5Fpartner%5Fid" is trading_partner_id.
 */
enum rte_http_query_rc {
    RTE_HTTP_QUERY_ABSENT = -1,    /* not in the query */
    RTE_HTTP_QUERY_MALFORMED = -2, /* a '%' without two hex digits after it, or a
                                      character RFC 3986 does not allow unencoded */
    RTE_HTTP_QUERY_TOO_LONG = -3,  /* the decoded value does not fit the caller's buffer */
    RTE_HTTP_QUERY_REPEATED = -4,  /* given more than once (even with equal values) */
    RTE_HTTP_QUERY_CONTROL = -5,   /* decodes to NUL or another control character */
    RTE_HTTP_QUERY_UNKNOWN = -6,   /* rte_http_req_query_only: a name the route does not read */
};

/*
 * rte_http_req_query - the query parameter name, percent-decoded ('+' is a
 * space, as in HTML forms) into buf (NUL-terminated; "" when given without
 * a value). Returns its length, or an rte_http_query_rc with err saying
 * what is wrong ("query parameter 'x': ..."); buf is "" then.
 */
int rte_http_req_query(const rte_http_req *req, const char *name, char *buf, size_t len, char *err,
                       size_t errlen);

/*
 * rte_http_req_query_at - for a parameter that may repeat ("state=A&state=B"):
 * the index-th one (from 0), decoded as strictly as rte_http_req_query;
 * its length, or RTE_HTTP_QUERY_ABSENT past the last one, or another
 * rte_http_query_rc with err naming the parameter
 */
int rte_http_req_query_at(const rte_http_req *req, const char *name, int index, char *buf,
                          size_t len, char *err, size_t errlen);

/*
 * rte_http_req_query_only - 0 if every parameter of the query is one of
 * names (NULL-terminated; NULL = none), else RTE_HTTP_QUERY_UNKNOWN or
 * RTE_HTTP_QUERY_MALFORMED (a name that does not decode) with err naming the
 * first offender. For routes that must not let a misspelt parameter pass
 * unnoticed.
 */
int rte_http_req_query_only(const rte_http_req *req, const char *const *names, char *err,
                            size_t errlen);

/* What rte_http_req_tail_decoded answers for a tail it cannot decode. */
#define RTE_HTTP_MALFORMED (-2)

/*
 * rte_http_req_tail_decoded - rte_http_req_tail percent-decoded (RFC 3986
 * section 2.1; '+' stays '+' in a path) into buf: its length, or
 * RTE_HTTP_MALFORMED for a bad %XX, an encoded NUL or more than len - 1
 * bytes. The bytes are not otherwise checked: callers check ids with
 * rte_input_id.
 */
int rte_http_req_tail_decoded(const rte_http_req *req, char *buf, size_t len);
/* rte_http_req_header - request header value (first of that name) into buf; length or -1 */
int rte_http_req_header(const rte_http_req *req, const char *name, char *buf, size_t len);

/* What rte_http_req_header_list answers instead of a length. */
enum rte_http_header_rc {
    RTE_HTTP_HEADER_ABSENT = -1,   /* no field line of that name */
    RTE_HTTP_HEADER_TOO_LONG = -2, /* the combined value does not fit the caller's buffer */
};

/*
 * rte_http_req_header_list - every field line of a list-based header
 * (Cache-Control, Prefer, ...) joined with ", " into buf, as RFC 9110 5.3
 * says a recipient may combine them; length, or an rte_http_header_rc.
 * A value that does not fit is TOO_LONG, never cut: RFC 9110 5.4 wants a
 * 4xx for a field larger than the server will process.
 */
int rte_http_req_header_list(const rte_http_req *req, const char *name, char *buf, size_t len);
/* rte_http_req_body - the request body (may be empty) and its length; borrowed */
const char *rte_http_req_body(const rte_http_req *req, size_t *len);

/* --- responding --- */

/* rte_http_add_header - add a response header (copied) before responding */
void rte_http_add_header(rte_http_req *req, const char *name, const char *value);

/* rte_http_respond - send status, content type and body (copied); exactly once per request */
void rte_http_respond(rte_http_req *req, int status, const char *content_type, const char *body,
                      size_t len);

/* rte_http_respond_json - send a cJSON document (printed compactly) */
void rte_http_respond_json(rte_http_req *req, int status, const cJSON *doc);

/*
 * rte_http_error - send {"error":{"status":N,"message":"..."},"request_id":"..."}
 * with the given status
 */
void rte_http_error(rte_http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * rte_http_json_content_type - 1 if the Content-Type value v (n bytes) names
 * JSON: application/json or application/<name>+json (RFC 6839), type and
 * subtype in any case, with parameters (RFC 9110 8.3.1) of which charset,
 * if given, must be utf-8 (RFC 8259: JSON is UTF-8). Otherwise 0 and why
 * says what is wrong, naming the header. Pure; any thread.
 */
int rte_http_json_content_type(const char *v, size_t n, char *why, size_t whylen);

/*
 * rte_http_require_json - 0 if the request's content is JSON
 * (rte_http_json_content_type) without a content coding. Otherwise answers
 * 415 naming the header — Content-Type missing or not JSON (with
 * Accept-Post: application/json on a POST), or a Content-Encoding other
 * than identity (with Accept-Encoding: identity) — and returns -1. Loop
 * thread, before responding or deferring.
 */
int rte_http_require_json(rte_http_req *req);

/*
 * rte_http_defer - the handler will respond later, from any thread. The
 * request's accessors stay valid until the response is sent.
 */
void rte_http_defer(rte_http_req *req);

#endif
