/*
 * fuzz_proto.c - libFuzzer target: the protobuf messages the services
 * consume, unpacked as they unpack them (protobuf_c_message_unpack, as
 * grpc_server does with a method's input descriptor).
 *
 * The first byte picks the message, the rest is its wire bytes. Messages:
 * grpc.health.v1 HealthCheckRequest (every service's gRPC port),
 * MemberCronEvent (member-cron-events, for cache-warmer), the requests of
 * CacheWarmingService and BatchEligibilityService (cache-warmer, batch-rpc)
 * and CheckEligibilityRequest. A message that unpacks passes
 * protobuf_c_message_check and packs to exactly get_packed_size bytes; when
 * it holds only fields the schema knows, those bytes unpack and pack again
 * to the same bytes (what a consumer reads is what the next hop is sent).
 * Unknown fields are exempt: protobuf-c keeps them as they came and writes
 * them back in canonical form, and it accepts some on read (a tag of field
 * number 0) that it refuses once written canonically - a leniency of the
 * library (protoc refuses those inputs), not of the services. When batch-rpc and cache-warmer
 * grow their own validation of these requests (MemberQuery predicates),
 * it belongs here after the unpack.
 */
#include <protobuf-c/protobuf-c.h>

#include "batch_eligibility.pb-c.h"
#include "cache_warming.pb-c.h"
#include "eligibility.pb-c.h"
#include "fuzz.h"
#include "health.pb-c.h"
#include "member_cron.pb-c.h"

static const ProtobufCMessageDescriptor *const consumed[] = {
    &grpc__health__v1__health_check_request__descriptor,
    &rte__v1__member_cron_event__descriptor,
    &rte__v1__warm_cache_request__descriptor,
    &rte__v1__schedule_warming_request__descriptor,
    &rte__v1__get_warming_stats_request__descriptor,
    &rte__v1__submit_batch_request__descriptor,
    &rte__v1__get_batch_status_request__descriptor,
    &rte__v1__list_batches_request__descriptor,
    &rte__v1__cancel_batch_request__descriptor,
    &rte__v1__watch_batch_request__descriptor,
    &rte__v1__check_eligibility_request__descriptor,
};
#define NCONSUMED (sizeof consumed / sizeof consumed[0])

/* 1 when m or a message inside it holds fields the schema does not know */
static int has_unknown(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (m->n_unknown_fields > 0)
        return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (has_unknown(v[k]))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
            if (sub != NULL && has_unknown(sub))
                return 1;
        }
    }
    return 0;
}

/* pack m; malloc'd bytes, *len set */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *out = malloc(n + 1);
    FUZZ_ASSERT(out != NULL);
    FUZZ_ASSERT(protobuf_c_message_pack(m, out) == n);
    *len = n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ProtobufCMessageDescriptor *d = consumed[data[0] % NCONSUMED];
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
    if (m == NULL)
        return 0;
    FUZZ_ASSERT(protobuf_c_message_check(m));
    size_t n1, n2;
    uint8_t *b1 = pack(m, &n1);
    if (!has_unknown(m)) {
        ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, n1, b1);
        FUZZ_ASSERT(m2 != NULL);
        uint8_t *b2 = pack(m2, &n2);
        FUZZ_ASSERT(n1 == n2 && memcmp(b1, b2, n1) == 0);
        free(b2);
        protobuf_c_message_free_unpacked(m2, NULL);
    }
    free(b1);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
