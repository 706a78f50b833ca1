/*
 * grpc_server.h - gRPC C-core server with protobuf-c messages.
 *
 * Methods are registered by full path ("/pkg.Service/Method") with the
 * protobuf-c descriptors of request and response. The server runs N worker
 * threads, each with its own completion queue: a worker asks the server for
 * the next call, runs it to completion (receive request, call the handler,
 * send reply and status) and asks for the next one. So a handler may block:
 * it holds only its worker. A streaming handler holds its worker for the
 * life of the stream, so size workers for the number of concurrent streams.
 *
 * Requests that do not decode get INVALID_ARGUMENT; unknown methods
 * UNIMPLEMENTED; a handler sets any other status with a message through
 * rte_grpc_status. The client's deadline is available to the handler.
 * Every call is counted in rte_grpc_requests_total{method,code} and timed
 * in rte_grpc_duration_seconds{method}.
 *
 * The standard grpc.health.v1.Health service (Check, Watch) is built in:
 * it reports whatever the readiness callback returns, and Watch streams each
 * change.
 *
 * Shutdown stops accepting calls, lets in-flight calls finish until the
 * deadline, then cancels what is left.
 *
 * Access control (auth.h, docs/auth.md): when the server is given a
 * verifier, every call except grpc.health.v1.Health must carry
 * "authorization: Bearer <jwt>". No token or a token that does not verify
 * gets UNAUTHENTICATED with the reason; a valid token without the method's
 * scope gets PERMISSION_DENIED naming the scope. Both are answered before
 * the request is decoded or the handler runs, and counted in
 * rte_grpc_auth_failures_total{method,reason}. The handler reads who called
 * with rte_grpc_call_principal. Without a verifier nothing is checked and
 * the principal is NULL.
 *
 * TLS: with a certificate and key (PEM files) the port speaks TLS only.
 *
 * Thread safety: handlers run on worker threads; rte_grpc_stream_send only
 * on the handler's own thread; rte_grpc_server_* from the owning thread.
 */
#ifndef RTE_GRPC_SERVER_H
#define RTE_GRPC_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "rte/auth.h"

typedef struct rte_grpc_server rte_grpc_server;
typedef struct rte_grpc_call rte_grpc_call;

/* status codes (values of grpc_status_code) */
enum {
    RTE_GRPC_OK = 0,
    RTE_GRPC_CANCELLED = 1,
    RTE_GRPC_UNKNOWN = 2,
    RTE_GRPC_INVALID_ARGUMENT = 3,
    RTE_GRPC_DEADLINE_EXCEEDED = 4,
    RTE_GRPC_NOT_FOUND = 5,
    RTE_GRPC_ALREADY_EXISTS = 6,
    RTE_GRPC_PERMISSION_DENIED = 7,
    RTE_GRPC_RESOURCE_EXHAUSTED = 8,
    RTE_GRPC_FAILED_PRECONDITION = 9,
    RTE_GRPC_ABORTED = 10,
    RTE_GRPC_UNIMPLEMENTED = 12,
    RTE_GRPC_INTERNAL = 13,
    RTE_GRPC_UNAVAILABLE = 14,
    RTE_GRPC_UNAUTHENTICATED = 16,
};

/*
 * Unary handler: req is the decoded request (borrowed). Build the response
 * (on the stack is fine) and call rte_grpc_reply(call, &resp) before
 * returning, or set a non-OK status with rte_grpc_status and return.
 */
typedef void (*rte_grpc_unary_fn)(rte_grpc_call *call, const ProtobufCMessage *req, void *arg);

/*
 * Server-streaming handler: send any number of messages with
 * rte_grpc_stream_send (returns -1 once the client went away or the server
 * is shutting down: stop then), then return; status defaults to OK.
 */
typedef void (*rte_grpc_stream_fn)(rte_grpc_call *call, const ProtobufCMessage *req, void *arg);

typedef struct rte_grpc_method {
    const char *path; /* "/pkg.Service/Method" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    rte_grpc_unary_fn unary; /* exactly one of unary/stream */
    rte_grpc_stream_fn stream;
    void *arg;
    /* OAuth scope a caller's token must hold ("rte:warm:write"); NULL = any valid token.
     * Only enforced when the server has a verifier (rte_grpc_server_opts.auth). */
    const char *scope;
} rte_grpc_method;

/* readiness callback for the health service: 1 = SERVING, 0 = NOT_SERVING */
typedef int (*rte_grpc_ready_fn)(void *arg);

/*
 * rte_grpc_server_new - bind addr ("0.0.0.0:50051"; port 0 picks one, see
 * rte_grpc_server_port), register methods (NULL path terminates the array)
 * plus grpc.health.v1.Health, start nworkers threads. NULL + err on failure.
 */
rte_grpc_server *rte_grpc_server_new(const char *addr, const rte_grpc_method *methods, int nworkers,
                                     rte_grpc_ready_fn ready, void *ready_arg, char *err,
                                     size_t errlen);

typedef struct rte_grpc_server_opts {
    int nworkers; /* at least 1 */
    rte_grpc_ready_fn ready;
    void *ready_arg;
    rte_auth *auth;            /* borrowed, outlives the server; NULL = no token checks */
    const char *tls_cert_file; /* PEM certificate chain; with tls_key_file, TLS only */
    const char *tls_key_file;  /* PEM private key */
    int max_receive_bytes;     /* largest request message accepted; 0 = RTE_GRPC_MAX_RECEIVE */
} rte_grpc_server_opts;

/* default of max_receive_bytes (grpc.max_receive_bytes): a 1,000,000-id MemberIdList fits */
#define RTE_GRPC_MAX_RECEIVE (64 * 1024 * 1024)

/*
 * rte_grpc_server_start - rte_grpc_server_new with token checks and TLS
 * (opts above). NULL + err on failure (an unreadable certificate or key
 * names the file). Owning thread.
 */
rte_grpc_server *rte_grpc_server_start(const char *addr, const rte_grpc_method *methods,
                                       const rte_grpc_server_opts *opts, char *err, size_t errlen);

/* rte_grpc_server_port - the bound port */
int rte_grpc_server_port(const rte_grpc_server *s);

/* rte_grpc_server_health_changed - wake Watch streams to re-read readiness; any thread */
void rte_grpc_server_health_changed(rte_grpc_server *s);

/*
 * rte_grpc_server_shutdown - stop accepting, wait for in-flight calls up to
 * deadline_ms, cancel the rest, join workers. Returns calls cancelled.
 */
int rte_grpc_server_shutdown(rte_grpc_server *s, int deadline_ms);

/* rte_grpc_server_free - release (after shutdown) */
void rte_grpc_server_free(rte_grpc_server *s);

/* rte_grpc_reply - pack and remember the unary response; call once from the handler */
void rte_grpc_reply(rte_grpc_call *call, const ProtobufCMessage *resp);

/* rte_grpc_status - set the final status code and message (printf-style) */
void rte_grpc_status(rte_grpc_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* rte_grpc_stream_send - send one stream message and wait until written; 0 or -1 (gone) */
int rte_grpc_stream_send(rte_grpc_call *call, const ProtobufCMessage *msg);

/* rte_grpc_stream_wait - sleep up to ms real milliseconds or until the call ends/shutdown; 1 if the
 * call is still live */
int rte_grpc_stream_wait(rte_grpc_call *call, int ms);

/*
 * rte_grpc_call_gone - 1 once the client cancelled the call or its deadline
 * passed (looks at the call's queue without waiting), else 0; for a unary
 * handler that blocks on other work. Handler thread.
 */
int rte_grpc_call_gone(rte_grpc_call *call);

/* rte_grpc_deadline_ms - the client's deadline as monotonic ms (rte_clock_mono_ms), or INT64_MAX */
int64_t rte_grpc_deadline_ms(const rte_grpc_call *call);

/* rte_grpc_metadata - value of request metadata key (borrowed, valid during the call), NULL if
 * absent */
const char *rte_grpc_metadata(const rte_grpc_call *call, const char *key);

/*
 * rte_grpc_call_principal - the client id of the caller's verified token
 * (auth.h: client_id, azp or sub), borrowed for the call; NULL when the
 * server checks no tokens. Handler thread.
 */
const char *rte_grpc_call_principal(const rte_grpc_call *call);

/* rte_grpc_call_scopes - the token's space-separated scopes, NULL without token checks; handler
 * thread */
const char *rte_grpc_call_scopes(const rte_grpc_call *call);

/*
 * rte_grpc_call_has_scope - 1 when the caller's token holds scope; also 1
 * when the server checks no tokens (everything is allowed then). Handler
 * thread.
 */
int rte_grpc_call_has_scope(const rte_grpc_call *call, const char *scope);

#endif
