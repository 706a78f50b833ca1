/*
 * grpc_server.c - gRPC C-core server skeleton for protobuf-c methods.
 *
 * How it runs: N worker threads, each owning one completion queue that is
 * registered with the server. A worker asks for the next call
 * (grpc_server_request_call bound to its own queue), then runs that call to
 * the end on its own thread: batch 1 sends initial metadata and receives the
 * request; RECV_CLOSE_ON_SERVER is started at once with its own tag so a
 * client that cancels (or a deadline that passes) is noticed while a stream
 * is running; the request is decoded, the handler called, and the reply and
 * status sent. Every wait is grpc_completion_queue_next on the worker's own
 * queue; the only tags on it belong to the one call in hand (small integers,
 * TAG_*), and the close tag may arrive at any of those waits, so it is
 * recorded wherever it turns up. Nothing here allocates per call except what
 * gRPC itself requires (byte buffers, the unpacked request) and copies of
 * metadata values a handler asks for.
 *
 * Contract (see grpc_server.h): undecodable requests get INVALID_ARGUMENT
 * "request does not decode as <type>", unknown paths UNIMPLEMENTED naming
 * the path, a unary handler that neither replies nor sets a status INTERNAL.
 * Every call is counted in rte_grpc_requests_total{method,code} (code by its
 * canonical name; calls the client cancelled count as CANCELLED, or
 * DEADLINE_EXCEEDED once their deadline had passed; unregistered paths are
 * labelled method="unknown" so a scanner cannot blow up the label set) and
 * timed in rte_grpc_duration_seconds{method}. INTERNAL and UNKNOWN statuses
 * are logged as warnings. grpc.health.v1.Health answers from the readiness
 * callback for "" and for every service that has a registered method;
 * other names get NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch).
 *
 * Waking streams: C core 1.51 has no public alarm (grpc_alarm is C++ only),
 * so nothing can post an event to a worker's queue. A waiting stream
 * therefore sleeps on its queue in slices of POLL_MS and between slices
 * looks at the shutdown flag and the health generation counter that
 * rte_grpc_server_health_changed bumps.
 *
 * Shutdown: the flag makes streams end (stream_send -1, stream_wait 0; a
 * health Watch sends NOT_SERVING first), grpc_server_shutdown_and_notify
 * stops accepting and fails the idle workers' pending requests so they
 * exit; after deadline_ms the remaining calls are cancelled. Calls that
 * arrived but were not yet picked up by a worker are dropped by gRPC at
 * shutdown, not run.
 *
 * gRPC core's own log lines (gpr_log, ERROR and up unless GRPC_VERBOSITY
 * says otherwise) are routed through rte_log so stderr stays JSON lines;
 * the hook is process-wide.
 *
 * Access control: with a verifier (auth.h) a call's "authorization"
 * metadata is checked after its request arrived and before it is decoded:
 * no bearer token or one that does not verify -> UNAUTHENTICATED with the
 * verifier's reason, a method scope the token lacks -> PERMISSION_DENIED
 * naming it; each refusal counted in rte_grpc_auth_failures_total{method,
 * reason} (reason: the auth.h label, or "scope"). Health is always open,
 * so probes need no token. The verified token lives in the call (on the
 * worker's stack) and the accessors below read it. Token time is wall
 * time (time(2)), not the suite's scaled clock: tokens are minted by
 * real identity providers.
 *
 * Message size: requests up to opts.max_receive_bytes (grpc.max_receive_bytes,
 * default RTE_GRPC_MAX_RECEIVE, 64 MiB) are accepted; gRPC itself answers a
 * larger one RESOURCE_EXHAUSTED ("Received message larger than max (N vs.
 * M)") before any handler runs. Replies are not limited.
 *
 * TLS: rte_grpc_server_start with a certificate and key serves TLS only
 * (grpc_ssl_server_credentials, no client certificate requested).
 *
 * Deliberately not here: mutual TLS, client-streaming and bidirectional
 * methods, response metadata, compression settings, reflection.
 */
#include "rte/grpc_server.h"

#include "health.pb-c.h"
#include "rte/auth.h"
#include "rte/clock.h"
#include "rte/log.h"
#include "rte/metrics.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POLL_MS 100       /* how often a waiting stream looks at shutdown / health */
#define WATCH_POLL_MS 250 /* how often a health Watch re-reads readiness */
#define STATUS_MSG_MAX 512
#define PEM_MAX (1 << 20) /* bytes of a TLS certificate chain or key file */

#define HEALTH_CHECK "/grpc.health.v1.Health/Check"
#define HEALTH_WATCH "/grpc.health.v1.Health/Watch"
#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define SERVICE_UNKNOWN GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

/* completion-queue tags: one call per queue at a time, so constants suffice */
enum { TAG_REQUEST = 1, TAG_RECV, TAG_CLOSE, TAG_SEND, TAG_FINISH, TAG_SHUTDOWN };
#define TAG(t) ((void *)(uintptr_t)(t))

struct method {
    rte_grpc_method m;
    rte_series *duration; /* rte_grpc_duration_seconds{method} */
    int open;             /* no token needed (health) */
};

struct worker {
    rte_grpc_server *s;
    grpc_completion_queue *cq;
    pthread_t thread;
    int running;  /* thread created, not yet joined */
    char **mdstr; /* NUL-terminated copies of the current call's metadata values */
    size_t mdcap;
};

struct rte_grpc_server {
    grpc_server *server;
    grpc_completion_queue *shutdown_cq;
    struct method *methods;
    int nmethods;
    struct worker *workers;
    int nworkers;
    rte_grpc_ready_fn ready;
    void *ready_arg;
    int port;
    int started;   /* grpc_server_start done */
    int shut_down; /* rte_grpc_server_shutdown done */
    atomic_int shutting_down;
    atomic_uint health_gen;
    atomic_int inflight;
    rte_metric *requests;
    rte_metric *duration;
    rte_metric *auth_failures;
    rte_series *unknown_duration;
    rte_auth *auth; /* borrowed; NULL = no token checks */
};

struct rte_grpc_call {
    struct worker *w;
    grpc_call *call;
    const struct method *method; /* NULL: path not registered */
    const grpc_call_details *details;
    const grpc_metadata_array *md;
    int64_t deadline_ms;
    int closed;          /* RECV_CLOSE_ON_SERVER completed */
    int cancelled;       /* its verdict: 1 if the call failed or was cancelled */
    unsigned health_gen; /* generation last reported by rte_grpc_stream_wait */
    int code;
    char msg[STATUS_MSG_MAX];
    grpc_byte_buffer *reply;
    int authed; /* tok holds a verified token */
    rte_auth_token tok;
};

static const char *const code_names[] = {
    [GRPC_STATUS_OK] = "OK",
    [GRPC_STATUS_CANCELLED] = "CANCELLED",
    [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
    [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
    [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
    [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
    [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
    [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
    [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
    [GRPC_STATUS_ABORTED] = "ABORTED",
    [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
    [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
    [GRPC_STATUS_INTERNAL] = "INTERNAL",
    [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
    [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
    [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

static const char *code_name(int code)
{
    if (code < 0 || code >= (int)(sizeof code_names / sizeof code_names[0]))
        return "UNKNOWN";
    return code_names[code];
}

static gpr_timespec in_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* the client's deadline on rte_clock_mono_ms's scale (gpr's monotonic clock has another origin) */
static int64_t deadline_to_mono_ms(gpr_timespec d)
{
    gpr_timespec left;

    if (d.tv_sec == INT64_MAX)
        return INT64_MAX;
    left =
        gpr_time_sub(gpr_convert_clock_type(d, GPR_CLOCK_MONOTONIC), gpr_now(GPR_CLOCK_MONOTONIC));
    return rte_clock_mono_ms() + left.tv_sec * 1000 + left.tv_nsec / 1000000;
}

/*
 * Wait on the call's queue for tag, noting the close tag if it shows up
 * first. 1 = tag completed ok, 0 = completed with failure, -1 = deadline.
 */
static int await_tag(rte_grpc_call *c, int tag, gpr_timespec deadline)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(c->w->cq, deadline, NULL);

        if (ev.type == GRPC_QUEUE_TIMEOUT)
            return -1;
        if (ev.type != GRPC_OP_COMPLETE)
            rte_panic("grpc worker queue shut down while a call was running");
        if (ev.tag == TAG(TAG_CLOSE))
            c->closed = 1;
        if (ev.tag == TAG(tag))
            return ev.success ? 1 : 0;
        if (ev.tag != TAG(TAG_CLOSE))
            rte_panic("grpc worker: unexpected tag %p while waiting for %d", ev.tag, tag);
    }
}

/* start a batch on the call and wait for it; 1 ok, 0 failed (call gone) */
static int run_batch(rte_grpc_call *c, const grpc_op *ops, size_t nops, int tag)
{
    grpc_call_error e = grpc_call_start_batch(c->call, ops, nops, TAG(tag), NULL);

    if (e != GRPC_CALL_OK)
        rte_panic("grpc_call_start_batch (tag %d) failed: %d", tag, (int)e);
    return await_tag(c, tag, gpr_inf_future(GPR_CLOCK_MONOTONIC));
}

static void start_close_watch(rte_grpc_call *c)
{
    grpc_op op = {0};
    grpc_call_error e;

    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    e = grpc_call_start_batch(c->call, &op, 1, TAG(TAG_CLOSE), NULL);
    if (e != GRPC_CALL_OK)
        rte_panic("grpc_call_start_batch (close) failed: %d", (int)e);
}

/* send initial metadata and receive the request; *bb is NULL if the client sent none */
static int recv_request(rte_grpc_call *c, grpc_byte_buffer **bb)
{
    grpc_op ops[2] = {{0}};

    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = bb;
    return run_batch(c, ops, 2, TAG_RECV);
}

static ProtobufCMessage *decode(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc)
{
    grpc_byte_buffer_reader reader;
    ProtobufCMessage *msg;
    grpc_slice all;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return NULL;
    all = grpc_byte_buffer_reader_readall(&reader);
    msg = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&reader);
    return msg;
}

static grpc_byte_buffer *encode(const ProtobufCMessage *msg)
{
    grpc_slice slice = grpc_slice_malloc(protobuf_c_message_get_packed_size(msg));
    grpc_byte_buffer *bb;

    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
    bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

/* send one message, whether or not shutdown has begun; 0 or -1 */
static int send_message(rte_grpc_call *c, const ProtobufCMessage *msg)
{
    grpc_op op = {0};
    int ok;

    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = encode(msg);
    ok = run_batch(c, &op, 1, TAG_SEND);
    grpc_byte_buffer_destroy(op.data.send_message.send_message);
    return ok == 1 && !(c->closed && c->cancelled) ? 0 : -1;
}

/* send the unary reply (if any) and the final status; failures mean the client is gone */
static void finish(rte_grpc_call *c)
{
    grpc_op ops[2] = {{0}};
    grpc_slice details = grpc_empty_slice();
    size_t n = 0;

    if (c->reply && c->code == RTE_GRPC_OK) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->reply;
    }
    if (c->msg[0])
        details = grpc_slice_from_copied_string(c->msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)c->code;
    ops[n++].data.send_status_from_server.status_details = c->msg[0] ? &details : NULL;
    run_batch(c, ops, n, TAG_FINISH);
    grpc_slice_unref(details);
}

static const struct method *find_method(const rte_grpc_server *s, grpc_slice path)
{
    size_t len = GRPC_SLICE_LENGTH(path);

    for (int i = 0; i < s->nmethods; i++) {
        const char *p = s->methods[i].m.path;
        if (strlen(p) == len && memcmp(p, GRPC_SLICE_START_PTR(path), len) == 0)
            return &s->methods[i];
    }
    return NULL;
}

/* decode, call the handler, check it left an answer */
static void dispatch(rte_grpc_call *c, grpc_byte_buffer *bb)
{
    const rte_grpc_method *m = &c->method->m;
    ProtobufCMessage *req;

    if (!bb) {
        rte_grpc_status(c, RTE_GRPC_INVALID_ARGUMENT, "no request message for %s", m->path);
        return;
    }
    req = decode(bb, m->request);
    if (!req) {
        rte_grpc_status(c, RTE_GRPC_INVALID_ARGUMENT, "request does not decode as %s",
                        m->request->name);
        return;
    }
    if (m->unary) {
        m->unary(c, req, m->arg);
        if (c->code == RTE_GRPC_OK && !c->reply)
            rte_grpc_status(c, RTE_GRPC_INTERNAL, "handler for %s returned no reply", m->path);
    } else {
        m->stream(c, req, m->arg);
    }
    protobuf_c_message_free_unpacked(req, NULL);
}

static void auth_failed(rte_grpc_call *c, const char *reason)
{
    rte_counter_inc(c->w->s->auth_failures, (const char *const[]){c->method->m.path, reason});
}

/*
 * Check the caller's token against the server's verifier and the method's
 * scope; 0 to run the handler, -1 with the status set.
 */
static int authorize(rte_grpc_call *c)
{
    const rte_grpc_method *m = &c->method->m;
    rte_auth *auth = c->w->s->auth;
    const char *hdr, *token;
    char why[STATUS_MSG_MAX - 64];
    size_t len = 0;
    int rc;

    if (!auth || c->method->open)
        return 0;
    hdr = rte_grpc_metadata(c, "authorization");
    token = hdr ? rte_auth_bearer(hdr, &len) : NULL;
    if (!token) {
        auth_failed(c, rte_auth_reason(RTE_AUTH_MISSING));
        rte_grpc_status(c, RTE_GRPC_UNAUTHENTICATED,
                        "%s: send metadata 'authorization: Bearer <token>'",
                        hdr ? "authorization is not a bearer token" : "no bearer token");
        return -1;
    }
    rc = rte_auth_verify(auth, token, len, (int64_t)time(NULL), &c->tok, why, sizeof why);
    if (rc != RTE_AUTH_OK) {
        auth_failed(c, rte_auth_reason(rc));
        rte_grpc_status(c, RTE_GRPC_UNAUTHENTICATED, "bad bearer token: %s", why);
        return -1;
    }
    c->authed = 1;
    if (m->scope && !rte_auth_has_scope(c->tok.scopes, m->scope)) {
        auth_failed(c, "scope");
        rte_grpc_status(c, RTE_GRPC_PERMISSION_DENIED, "token of client '%s' lacks scope '%s' (%s)",
                        c->tok.principal, m->scope, m->path);
        return -1;
    }
    return 0;
}

/* the code the client actually saw, for metrics */
static int outcome(const rte_grpc_call *c)
{
    if (!c->cancelled)
        return c->code;
    return rte_clock_mono_ms() >= c->deadline_ms ? RTE_GRPC_DEADLINE_EXCEEDED : RTE_GRPC_CANCELLED;
}

static void account(const rte_grpc_call *c, int64_t t0)
{
    const rte_grpc_server *s = c->w->s;
    const char *label = c->method ? c->method->m.path : "unknown";
    rte_series *duration = c->method ? c->method->duration : s->unknown_duration;
    int code = outcome(c);

    rte_counter_inc(s->requests, (const char *const[]){label, code_name(code)});
    rte_series_observe(duration, (double)(rte_clock_mono_ms() - t0) / 1000.0);
    if (c->code == RTE_GRPC_INTERNAL || c->code == RTE_GRPC_UNKNOWN)
        rte_log_warn("grpc %s failed with %s: %s; the client got this error", label,
                     code_name(c->code), c->msg);
}

static void set_request_id(rte_grpc_call *c)
{
    const char *id = rte_grpc_metadata(c, "x-request-id");

    if (id)
        rte_log_set_request_id(id);
}

static void forget_metadata(struct worker *w)
{
    for (size_t i = 0; i < w->mdcap; i++) {
        free(w->mdstr[i]);
        w->mdstr[i] = NULL;
    }
}

/* run one call from receipt to closed, on the worker's thread */
static void run_call(struct worker *w, grpc_call *gc, const grpc_call_details *details,
                     const grpc_metadata_array *md)
{
    rte_grpc_server *s = w->s;
    rte_grpc_call c = {.w = w, .call = gc, .details = details, .md = md};
    grpc_byte_buffer *bb = NULL;
    int64_t t0 = rte_clock_mono_ms();

    atomic_fetch_add(&s->inflight, 1);
    c.method = find_method(s, details->method);
    c.deadline_ms = deadline_to_mono_ms(details->deadline);
    c.health_gen = atomic_load(&s->health_gen);
    set_request_id(&c);
    start_close_watch(&c);
    if (recv_request(&c, &bb) != 1)
        rte_grpc_status(&c, RTE_GRPC_CANCELLED, "call ended before its request arrived");
    else if (!c.method)
        rte_grpc_status(&c, RTE_GRPC_UNIMPLEMENTED, "method %.*s is not implemented by this server",
                        (int)GRPC_SLICE_LENGTH(details->method),
                        (const char *)GRPC_SLICE_START_PTR(details->method));
    else if (authorize(&c) == 0)
        dispatch(&c, bb);
    if (bb)
        grpc_byte_buffer_destroy(bb);
    finish(&c);
    if (!c.closed)
        await_tag(&c, TAG_CLOSE, gpr_inf_future(GPR_CLOCK_MONOTONIC));
    account(&c, t0);
    if (c.reply)
        grpc_byte_buffer_destroy(c.reply);
    forget_metadata(w);
    rte_log_set_request_id(NULL);
    atomic_fetch_sub(&s->inflight, 1);
}

/* ask for the next call and wait for it; 1 = got one, 0 = server shutting down */
static int next_call(struct worker *w, grpc_call **gc, grpc_call_details *details,
                     grpc_metadata_array *md)
{
    grpc_call_error e;
    grpc_event ev;

    e = grpc_server_request_call(w->s->server, gc, details, md, w->cq, w->cq, TAG(TAG_REQUEST));
    if (e != GRPC_CALL_OK) {
        rte_log_error("grpc_server_request_call failed (%d); this worker stops", (int)e);
        return 0;
    }
    ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE || ev.tag != TAG(TAG_REQUEST))
        rte_panic("grpc worker: unexpected event %d tag %p while idle", (int)ev.type, ev.tag);
    return ev.success;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    while (!atomic_load(&w->s->shutting_down)) {
        grpc_call *gc = NULL;
        grpc_call_details details;
        grpc_metadata_array md;
        int got;

        grpc_call_details_init(&details);
        grpc_metadata_array_init(&md);
        got = next_call(w, &gc, &details, &md);
        if (got)
            run_call(w, gc, &details, &md);
        if (gc)
            grpc_call_unref(gc);
        grpc_metadata_array_destroy(&md);
        grpc_call_details_destroy(&details);
        if (!got)
            break;
    }
    return NULL;
}

/* --- built-in grpc.health.v1.Health ----------------------------------- */

static int current_status(const rte_grpc_server *s)
{
    if (!s->ready)
        return SERVING;
    return s->ready(s->ready_arg) ? SERVING : NOT_SERVING;
}

/* "" or the "pkg.Service" part of any registered "/pkg.Service/Method" */
static int known_service(const rte_grpc_server *s, const char *name)
{
    size_t len = strlen(name);

    if (len == 0)
        return 1;
    for (int i = 0; i < s->nmethods; i++) {
        const char *p = s->methods[i].m.path;
        if (strncmp(p + 1, name, len) == 0 && p[1 + len] == '/')
            return 1;
    }
    return 0;
}

static void health_check(rte_grpc_call *call, const ProtobufCMessage *req, void *arg)
{
    const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    const rte_grpc_server *s = arg;

    if (!known_service(s, r->service)) {
        rte_grpc_status(call, RTE_GRPC_NOT_FOUND, "unknown service %s", r->service);
        return;
    }
    resp.status = current_status(s);
    rte_grpc_reply(call, &resp.base);
}

/* send the status now and on every change; NOT_SERVING as the server goes down */
static void health_watch(rte_grpc_call *call, const ProtobufCMessage *req, void *arg)
{
    const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    const rte_grpc_server *s = arg;
    int known = known_service(s, r->service);

    resp.status = known ? current_status(s) : SERVICE_UNKNOWN;
    if (rte_grpc_stream_send(call, &resp.base) < 0)
        return;
    while (rte_grpc_stream_wait(call, WATCH_POLL_MS)) {
        int now = known ? current_status(s) : SERVICE_UNKNOWN;
        if (now == (int)resp.status)
            continue;
        resp.status = now;
        if (rte_grpc_stream_send(call, &resp.base) < 0)
            return;
    }
    if (known && !call->closed && resp.status != NOT_SERVING) {
        resp.status = NOT_SERVING;
        send_message(call, &resp.base);
    }
}

/* --- construction and teardown ----------------------------------------- */

static int check_method(const rte_grpc_method *m, char *err, size_t errlen)
{
    if (m->path[0] != '/' || !strchr(m->path + 1, '/')) {
        snprintf(err, errlen, "gRPC method path '%s' is not /pkg.Service/Method", m->path);
        return -1;
    }
    if (!m->request || !m->response || !m->unary == !m->stream) {
        snprintf(err, errlen,
                 "gRPC method %s needs request and response descriptors and exactly one of "
                 "unary/stream",
                 m->path);
        return -1;
    }
    return 0;
}

static void add_method(rte_grpc_server *s, const rte_grpc_method *m, int open)
{
    struct method *dst = &s->methods[s->nmethods++];

    dst->m = *m;
    dst->open = open;
    dst->duration = rte_metric_labels(s->duration, (const char *const[]){m->path});
}

/* copy the caller's table (strings stay borrowed) and append the health service */
static int copy_methods(rte_grpc_server *s, const rte_grpc_method *methods, char *err,
                        size_t errlen)
{
    const rte_grpc_method health[] = {
        {HEALTH_CHECK, &grpc__health__v1__health_check_request__descriptor,
         &grpc__health__v1__health_check_response__descriptor, health_check, NULL, s},
        {HEALTH_WATCH, &grpc__health__v1__health_check_request__descriptor,
         &grpc__health__v1__health_check_response__descriptor, NULL, health_watch, s},
    };
    int n = 0;

    while (methods && methods[n].path)
        n++;
    s->methods = calloc((size_t)n + 2, sizeof *s->methods);
    if (!s->methods) {
        snprintf(err, errlen, "out of memory for %d gRPC methods", n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (check_method(&methods[i], err, errlen) < 0)
            return -1;
        add_method(s, &methods[i], 0);
    }
    add_method(s, &health[0], 1);
    add_method(s, &health[1], 1);
    return 0;
}

/* a whole PEM file, malloc'd and NUL-terminated; NULL + err */
static char *read_pem(const char *path, const char *what, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;

    if (!f) {
        snprintf(err, errlen, "cannot read the TLS %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    buf = malloc(PEM_MAX + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading the TLS %s %s", what, path);
        goto out;
    }
    n = fread(buf, 1, PEM_MAX + 1, f);
    buf[n > PEM_MAX ? PEM_MAX : n] = '\0';
    if (ferror(f) || n > PEM_MAX || !strstr(buf, "-----BEGIN ")) {
        snprintf(err, errlen, "the TLS %s %s is not a PEM file of at most 1 MiB", what, path);
        OPENSSL_cleanse(buf, n > PEM_MAX ? PEM_MAX : n);
        free(buf);
        buf = NULL;
    }
out:
    fclose(f);
    return buf;
}

/* TLS credentials from the opts' PEM files, or insecure ones; NULL + err */
static grpc_server_credentials *server_credentials(const rte_grpc_server_opts *o, char *err,
                                                   size_t errlen)
{
    grpc_ssl_pem_key_cert_pair pair;
    grpc_server_credentials *creds;
    char *cert, *key;

    if (!o->tls_cert_file && !o->tls_key_file)
        return grpc_insecure_server_credentials_create();
    if (!o->tls_cert_file || !o->tls_key_file) {
        snprintf(err, errlen, "TLS needs both a certificate and a key");
        return NULL;
    }
    cert = read_pem(o->tls_cert_file, "certificate", err, errlen);
    key = cert ? read_pem(o->tls_key_file, "key", err, errlen) : NULL;
    if (!key) {
        free(cert);
        return NULL;
    }
    pair.private_key = key;
    pair.cert_chain = cert;
    creds = grpc_ssl_server_credentials_create_ex(NULL, &pair, 1,
                                                  GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
    OPENSSL_cleanse(key, strlen(key));
    free(key);
    free(cert);
    if (!creds)
        snprintf(err, errlen, "gRPC refused the TLS certificate %s / key %s", o->tls_cert_file,
                 o->tls_key_file);
    return creds;
}

/* create the server and its queues, bind, start */
static int start_server(rte_grpc_server *s, const char *addr, const rte_grpc_server_opts *o,
                        char *err, size_t errlen)
{
    /* gRPC turns SO_REUSEPORT on by default: a second process would share the port silently */
    grpc_arg args[2] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        /* gRPC's own default is 4 MB; a larger request gets RESOURCE_EXHAUSTED from gRPC */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = o->max_receive_bytes > 0 ? o->max_receive_bytes : RTE_GRPC_MAX_RECEIVE},
    };
    grpc_channel_args chargs = {.num_args = 2, .args = args};
    grpc_server_credentials *creds;

    s->server = grpc_server_create(&chargs, NULL);
    for (int i = 0; i < s->nworkers; i++) {
        s->workers[i].s = s;
        s->workers[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, s->workers[i].cq, NULL);
    }
    s->shutdown_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->shutdown_cq, NULL);
    creds = server_credentials(o, err, errlen);
    if (!creds)
        return -1;
    s->port = grpc_server_add_http2_port(s->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        snprintf(err, errlen, "cannot listen for gRPC on %s (bad address or port in use)", addr);
        return -1;
    }
    grpc_server_start(s->server);
    s->started = 1;
    return 0;
}

static int start_workers(rte_grpc_server *s, char *err, size_t errlen)
{
    for (int i = 0; i < s->nworkers; i++) {
        int rc = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start gRPC worker thread %d: %s", i, strerror(rc));
            return -1;
        }
        s->workers[i].running = 1;
    }
    return 0;
}

static void register_metrics(rte_grpc_server *s)
{
    static const char *const req_labels[] = {"method", "code", NULL};
    static const char *const dur_labels[] = {"method", NULL};
    static const char *const auth_labels[] = {"method", "reason", NULL};

    s->requests = rte_counter_new("rte_grpc_requests_total",
                                  "gRPC calls handled, by method and status code", req_labels);
    s->duration = rte_histogram_new("rte_grpc_duration_seconds",
                                    "gRPC call duration from receipt to status sent, by method",
                                    dur_labels, NULL, 0);
    s->unknown_duration = rte_metric_labels(s->duration, (const char *const[]){"unknown"});
    s->auth_failures = rte_counter_new(
        "rte_grpc_auth_failures_total",
        "gRPC calls refused by token checks, by method and reason (auth.h labels, or scope)",
        auth_labels);
}

/* gpr_log hook: any gRPC thread */
static void grpc_core_log(gpr_log_func_args *a)
{
    enum rte_log_level level = a->severity == GPR_LOG_SEVERITY_ERROR  ? RTE_LOG_ERROR
                               : a->severity == GPR_LOG_SEVERITY_INFO ? RTE_LOG_INFO
                                                                      : RTE_LOG_DEBUG;

    rte_log(level, "grpc core: %s (%s:%d)", a->message, a->file, a->line);
}

/* rte_grpc_server_new - plaintext, no token checks; owning thread */
rte_grpc_server *rte_grpc_server_new(const char *addr, const rte_grpc_method *methods, int nworkers,
                                     rte_grpc_ready_fn ready, void *ready_arg, char *err,
                                     size_t errlen)
{
    rte_grpc_server_opts o = {.nworkers = nworkers, .ready = ready, .ready_arg = ready_arg};

    return rte_grpc_server_start(addr, methods, &o, err, errlen);
}

/* rte_grpc_server_start - bind (TLS when configured), register methods and health, start
 * workers; owning thread */
rte_grpc_server *rte_grpc_server_start(const char *addr, const rte_grpc_method *methods,
                                       const rte_grpc_server_opts *o, char *err, size_t errlen)
{
    rte_grpc_server *s;
    int nworkers = o->nworkers;

    if (nworkers < 1) {
        snprintf(err, errlen, "gRPC server needs at least 1 worker (got %d)", nworkers);
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory for the gRPC server");
        return NULL;
    }
    gpr_set_log_function(grpc_core_log);
    grpc_init();
    s->ready = o->ready;
    s->ready_arg = o->ready_arg;
    s->auth = o->auth;
    s->nworkers = nworkers;
    register_metrics(s);
    s->workers = calloc((size_t)nworkers, sizeof *s->workers);
    if (!s->workers) {
        snprintf(err, errlen, "out of memory for %d gRPC workers", nworkers);
        goto fail;
    }
    if (copy_methods(s, methods, err, errlen) < 0 || start_server(s, addr, o, err, errlen) < 0 ||
        start_workers(s, err, errlen) < 0)
        goto fail;
    return s;
fail:
    rte_grpc_server_free(s);
    return NULL;
}

/* rte_grpc_server_port - the bound port; any thread */
int rte_grpc_server_port(const rte_grpc_server *s)
{
    return s->port;
}

/* rte_grpc_server_health_changed - wake Watch streams within POLL_MS; any thread, no lock */
void rte_grpc_server_health_changed(rte_grpc_server *s)
{
    atomic_fetch_add(&s->health_gen, 1);
}

/* wait for the shutdown notification until deadline; 0 notified, -1 deadline */
static int await_shutdown(rte_grpc_server *s, gpr_timespec deadline)
{
    grpc_event ev = grpc_completion_queue_next(s->shutdown_cq, deadline, NULL);

    if (ev.type == GRPC_QUEUE_TIMEOUT)
        return -1;
    if (ev.type != GRPC_OP_COMPLETE || ev.tag != TAG(TAG_SHUTDOWN))
        rte_panic("grpc shutdown queue: unexpected event %d tag %p", (int)ev.type, ev.tag);
    return 0;
}

/* rte_grpc_server_shutdown - stop, drain until deadline_ms, cancel, join; owning thread */
int rte_grpc_server_shutdown(rte_grpc_server *s, int deadline_ms)
{
    int cancelled = 0;

    if (s->shut_down || !s->started)
        return 0;
    atomic_store(&s->shutting_down, 1);
    grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, TAG(TAG_SHUTDOWN));
    if (await_shutdown(s, in_ms(deadline_ms)) < 0) {
        cancelled = atomic_load(&s->inflight);
        rte_log_warn("gRPC shutdown: %d call(s) still running after %d ms; cancelling them",
                     cancelled, deadline_ms);
        grpc_server_cancel_all_calls(s->server);
        await_shutdown(s, gpr_inf_future(GPR_CLOCK_MONOTONIC));
    }
    for (int i = 0; i < s->nworkers; i++) {
        if (s->workers[i].running)
            pthread_join(s->workers[i].thread, NULL);
        s->workers[i].running = 0;
    }
    s->shut_down = 1;
    return cancelled;
}

static void destroy_cq(grpc_completion_queue *cq)
{
    if (!cq)
        return;
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

/* rte_grpc_server_free - release everything (shuts down at once if not done); owning thread */
void rte_grpc_server_free(rte_grpc_server *s)
{
    if (!s)
        return;
    rte_grpc_server_shutdown(s, 0);
    if (s->server)
        grpc_server_destroy(s->server);
    for (int i = 0; s->workers && i < s->nworkers; i++) {
        destroy_cq(s->workers[i].cq);
        free(s->workers[i].mdstr);
    }
    destroy_cq(s->shutdown_cq);
    free(s->workers);
    free(s->methods);
    free(s);
    grpc_shutdown();
}

/* --- called by handlers, on their worker thread ------------------------ */

/* rte_grpc_reply - pack and keep the unary response (a second call replaces it); handler thread */
void rte_grpc_reply(rte_grpc_call *call, const ProtobufCMessage *resp)
{
    if (call->method->m.stream)
        rte_panic("rte_grpc_reply called from streaming method %s", call->method->m.path);
    if (call->reply)
        grpc_byte_buffer_destroy(call->reply);
    call->reply = encode(resp);
}

/* rte_grpc_status - set the final status and message; handler thread */
void rte_grpc_status(rte_grpc_call *call, int code, const char *fmt, ...)
{
    va_list ap;

    if (code < 0 || code > RTE_GRPC_UNAUTHENTICATED)
        rte_panic("rte_grpc_status: %d is not a gRPC status code", code);
    call->code = code;
    va_start(ap, fmt);
    vsnprintf(call->msg, sizeof call->msg, fmt, ap);
    va_end(ap);
}

/* rte_grpc_stream_send - send one message and wait until written; handler thread */
int rte_grpc_stream_send(rte_grpc_call *call, const ProtobufCMessage *msg)
{
    if (call->closed || atomic_load(&call->w->s->shutting_down))
        return -1;
    return send_message(call, msg);
}

/* rte_grpc_stream_wait - sleep up to ms; early on close, shutdown, health change; handler thread */
int rte_grpc_stream_wait(rte_grpc_call *call, int ms)
{
    const rte_grpc_server *s = call->w->s;
    int64_t end = rte_clock_mono_ms() + ms;

    for (;;) {
        unsigned gen = atomic_load(&s->health_gen);
        int64_t left = end - rte_clock_mono_ms();

        if (call->closed || atomic_load(&s->shutting_down))
            return 0;
        if (gen != call->health_gen) {
            call->health_gen = gen;
            return 1;
        }
        if (left <= 0)
            return 1;
        await_tag(call, TAG_CLOSE, in_ms(left < POLL_MS ? left : POLL_MS));
    }
}

/* rte_grpc_call_gone - 1 once the call closed (client cancel, deadline); handler thread */
int rte_grpc_call_gone(rte_grpc_call *call)
{
    if (!call->closed)
        await_tag(call, TAG_CLOSE, gpr_now(GPR_CLOCK_MONOTONIC));
    return call->closed;
}

/* rte_grpc_deadline_ms - client deadline on the rte_clock_mono_ms scale; handler thread */
int64_t rte_grpc_deadline_ms(const rte_grpc_call *call)
{
    return call->deadline_ms;
}

static int key_is(grpc_slice key, const char *want)
{
    size_t len = strlen(want);

    return GRPC_SLICE_LENGTH(key) == len &&
           strncasecmp((const char *)GRPC_SLICE_START_PTR(key), want, len) == 0;
}

/* grow the worker's copy table to hold n entries; -1 if out of memory */
static int reserve_mdstr(struct worker *w, size_t n)
{
    char **grown;

    if (n <= w->mdcap)
        return 0;
    grown = realloc(w->mdstr, n * sizeof *grown);
    if (!grown)
        return -1;
    memset(grown + w->mdcap, 0, (n - w->mdcap) * sizeof *grown);
    w->mdstr = grown;
    w->mdcap = n;
    return 0;
}

/* rte_grpc_metadata - request metadata value, borrowed until the call ends; handler thread */
const char *rte_grpc_metadata(const rte_grpc_call *call, const char *key)
{
    const grpc_metadata_array *md = call->md;
    struct worker *w = call->w;

    for (size_t i = 0; i < md->count; i++) {
        grpc_slice v = md->metadata[i].value;
        if (!key_is(md->metadata[i].key, key))
            continue;
        if (reserve_mdstr(w, md->count) < 0)
            return NULL;
        if (!w->mdstr[i]) {
            w->mdstr[i] = malloc(GRPC_SLICE_LENGTH(v) + 1);
            if (!w->mdstr[i])
                return NULL;
            memcpy(w->mdstr[i], GRPC_SLICE_START_PTR(v), GRPC_SLICE_LENGTH(v));
            w->mdstr[i][GRPC_SLICE_LENGTH(v)] = '\0';
        }
        return w->mdstr[i];
    }
    return NULL;
}

/* rte_grpc_call_principal - verified client id, NULL without token checks; handler thread */
const char *rte_grpc_call_principal(const rte_grpc_call *call)
{
    return call->authed ? call->tok.principal : NULL;
}

/* rte_grpc_call_scopes - verified scopes, NULL without token checks; handler thread */
const char *rte_grpc_call_scopes(const rte_grpc_call *call)
{
    return call->authed ? call->tok.scopes : NULL;
}

/* rte_grpc_call_has_scope - 1 if the token holds scope (or tokens are not checked); handler thread
 */
int rte_grpc_call_has_scope(const rte_grpc_call *call, const char *scope)
{
    if (!call->w->s->auth)
        return 1;
    return call->authed && rte_auth_has_scope(call->tok.scopes, scope);
}
