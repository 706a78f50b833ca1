/*
 * grpc_client.h - a small gRPC client over the C core with protobuf-c
 * messages: unary and server-streaming calls, an optional bearer token,
 * a deadline. For tools (rtectl) and tests; services talk to each other
 * through Kafka and Redis, not through this.
 *
 * A call returns the gRPC status code (0 = OK) and, when not OK, the
 * server's message in err. Transport failures come back as the status the
 * core reports (UNAVAILABLE, DEADLINE_EXCEEDED). Plaintext only (the
 * services' TLS is for production; tools run beside them).
 *
 * Thread safety: one rte_grpc_client per thread.
 */
#ifndef RTE_GRPC_CLIENT_H
#define RTE_GRPC_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct rte_grpc_client rte_grpc_client;

/* rte_grpc_client_new - a channel to target ("127.0.0.1:50051"); token may be NULL; NULL + err */
rte_grpc_client *rte_grpc_client_new(const char *target, const char *token, char *err,
                                     size_t errlen);

/* rte_grpc_client_free - close the channel */
void rte_grpc_client_free(rte_grpc_client *c);

/*
 * rte_grpc_client_unary - call path with req; on OK *resp is the unpacked
 * reply (free with protobuf_c_message_free_unpacked). Returns the status
 * code; err holds the message when it is not 0.
 */
int rte_grpc_client_unary(rte_grpc_client *c, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                          int timeout_ms, char *err, size_t errlen);

/* called for each streamed message (borrowed during the call); non-zero stops the stream */
typedef int (*rte_grpc_client_msg_fn)(void *arg, const ProtobufCMessage *msg);

/*
 * rte_grpc_client_stream - a server-streaming call: fn for each message
 * until the stream ends, fn stops it (then CANCELLED is returned as 0), or
 * the deadline passes. Returns the status code; err as above.
 */
int rte_grpc_client_stream(rte_grpc_client *c, const char *path, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *msg_desc, rte_grpc_client_msg_fn fn,
                           void *arg, int timeout_ms, char *err, size_t errlen);

#endif
