/*
 * grpc_client.c - unary and server-streaming gRPC calls (grpc_client.h).
 *
 * Each call runs on its own pluck completion queue: start a batch, pluck
 * its tag, so the calling thread blocks exactly as long as the call.
 */
#include "rte/grpc_client.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rte_grpc_client {
    grpc_channel *ch;
    char *auth; /* "Bearer <token>" or NULL */
};

/* rte_grpc_client_new - caller's thread */
rte_grpc_client *rte_grpc_client_new(const char *target, const char *token, char *err,
                                     size_t errlen)
{
    rte_grpc_client *c = calloc(1, sizeof *c);
    grpc_channel_credentials *creds;

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    grpc_init();
    creds = grpc_insecure_credentials_create();
    c->ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    if (token && token[0]) {
        size_t n = strlen(token) + 8;
        c->auth = malloc(n);
        if (c->auth)
            snprintf(c->auth, n, "Bearer %s", token);
    }
    if (c->ch == NULL || (token && token[0] && c->auth == NULL)) {
        snprintf(err, errlen, "cannot open a channel to %s", target);
        rte_grpc_client_free(c);
        return NULL;
    }
    return c;
}

/* rte_grpc_client_free - caller's thread */
void rte_grpc_client_free(rte_grpc_client *c)
{
    if (c == NULL)
        return;
    if (c->ch)
        grpc_channel_destroy(c->ch);
    free(c->auth);
    free(c);
    grpc_shutdown();
}

/* one exchange: the call, its queue and what its batches fill */
struct exch {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata md;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *out;
};

static int run(struct exch *x, grpc_op *ops, size_t n, void *tag)
{
    if (grpc_call_start_batch(x->call, ops, n, tag, NULL) != GRPC_CALL_OK)
        return -1;
    grpc_event ev =
        grpc_completion_queue_pluck(x->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success ? 0 : -1;
}

/* start: the call with its request sent; 0 or -1 + err */
static int start(rte_grpc_client *c, struct exch *x, const char *path, const ProtobufCMessage *req,
                 int timeout_ms, char *err, size_t errlen)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    grpc_slice s = grpc_slice_malloc(len);
    grpc_op ops[4];
    size_t n = 0;

    memset(x, 0, sizeof *x);
    protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(s));
    x->out = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    x->cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_copied_string(path);
    x->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, x->cq, method, NULL,
                                       deadline, NULL);
    grpc_slice_unref(method);
    grpc_metadata_array_init(&x->initial);
    grpc_metadata_array_init(&x->trailing);
    memset(ops, 0, sizeof ops);
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->auth) {
        x->md.key = grpc_slice_from_static_string("authorization");
        x->md.value = grpc_slice_from_copied_string(c->auth);
        ops[n].data.send_initial_metadata.count = 1;
        ops[n].data.send_initial_metadata.metadata = &x->md;
    }
    n++;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = x->out;
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &x->initial;
    if (x->call == NULL || run(x, ops, n, (void *)1) != 0) {
        snprintf(err, errlen, "could not start %s", path);
        return -1;
    }
    return 0;
}

/* the next message into *msg (NULL at the end of the stream); 0 or -1 */
static int recv_msg(struct exch *x, const ProtobufCMessageDescriptor *d, ProtobufCMessage **msg)
{
    grpc_byte_buffer *in = NULL;
    grpc_op op;
    grpc_byte_buffer_reader rd;

    *msg = NULL;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &in;
    if (run(x, &op, 1, (void *)2) != 0)
        return -1;
    if (in == NULL)
        return 0;
    if (!grpc_byte_buffer_reader_init(&rd, in)) {
        grpc_byte_buffer_destroy(in);
        return -1;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(in);
    *msg = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    return *msg ? 0 : -1;
}

/* the final status; its message into err */
static int finish(struct exch *x, int cancel, char *err, size_t errlen)
{
    grpc_op op;

    if (cancel)
        grpc_call_cancel(x->call, NULL);
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &x->trailing;
    op.data.recv_status_on_client.status = &x->status;
    op.data.recv_status_on_client.status_details = &x->details;
    if (run(x, &op, 1, (void *)3) != 0) {
        snprintf(err, errlen, "the call did not finish");
        return GRPC_STATUS_UNKNOWN;
    }
    snprintf(err, errlen, "%.*s", (int)GRPC_SLICE_LENGTH(x->details),
             (const char *)GRPC_SLICE_START_PTR(x->details));
    return (int)x->status;
}

static void cleanup(struct exch *x)
{
    if (x->call)
        grpc_call_unref(x->call);
    if (x->out)
        grpc_byte_buffer_destroy(x->out);
    grpc_metadata_array_destroy(&x->initial);
    grpc_metadata_array_destroy(&x->trailing);
    grpc_slice_unref(x->details);
    grpc_slice_unref(x->md.value);
    if (x->cq) {
        grpc_completion_queue_shutdown(x->cq);
        while (grpc_completion_queue_pluck(x->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(x->cq);
    }
}

/* rte_grpc_client_unary - caller's thread */
int rte_grpc_client_unary(rte_grpc_client *c, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                          int timeout_ms, char *err, size_t errlen)
{
    struct exch x;
    int code;

    *resp = NULL;
    if (start(c, &x, path, req, timeout_ms, err, errlen) != 0) {
        code = x.call ? finish(&x, 0, err, errlen) : GRPC_STATUS_UNAVAILABLE;
        cleanup(&x);
        return code ? code : GRPC_STATUS_UNAVAILABLE;
    }
    int got = recv_msg(&x, resp_desc, resp);
    code = finish(&x, 0, err, errlen);
    if (code == 0 && (got != 0 || *resp == NULL)) {
        snprintf(err, errlen, "the reply could not be read");
        code = GRPC_STATUS_INTERNAL;
    }
    if (code != 0 && *resp) {
        protobuf_c_message_free_unpacked(*resp, NULL);
        *resp = NULL;
    }
    cleanup(&x);
    return code;
}

/* rte_grpc_client_stream - caller's thread */
int rte_grpc_client_stream(rte_grpc_client *c, const char *path, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *msg_desc, rte_grpc_client_msg_fn fn,
                           void *arg, int timeout_ms, char *err, size_t errlen)
{
    struct exch x;
    int stopped = 0, code;

    int started = start(c, &x, path, req, timeout_ms, err, errlen) == 0;
    if (!started && x.call == NULL) {
        cleanup(&x);
        return GRPC_STATUS_UNAVAILABLE;
    }
    while (started && !stopped) {
        ProtobufCMessage *m;
        if (recv_msg(&x, msg_desc, &m) != 0 || m == NULL)
            break;
        stopped = fn(arg, m) != 0;
        protobuf_c_message_free_unpacked(m, NULL);
    }
    code = finish(&x, stopped, err, errlen);
    cleanup(&x);
    return stopped && code == GRPC_STATUS_CANCELLED ? 0 : code;
}
