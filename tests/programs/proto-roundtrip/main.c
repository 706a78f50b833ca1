/*
 * proto-roundtrip - the C half of the cross-language wire-format test.
 *
 *   proto-roundtrip list               print every message full name it knows
 *   proto-roundtrip encode <FullName>  write a packed message, every field set
 *   proto-roundtrip decode <FullName>  unpack stdin, write it packed again
 *
 * tests/integration/test_proto_roundtrip.py drives it: Python (protoc's
 * generated code) parses what "encode" wrote and compares it with the same
 * message built in Python, and feeds Python-built messages to "decode" and
 * compares what comes back. Together that shows protobuf-c and Python agree on
 * every field of every message in proto/.
 *
 * Messages are filled generically by walking the protobuf-c descriptors, so
 * a new field or message needs no code here. The one thing to maintain is
 * roots[] below: protobuf-c has no global registry, so every top-level
 * message is listed by hand; nested messages (map entries) are found through
 * the fields that use them. The Python test fails if this set and the one
 * protoc generated differ, so a forgotten message cannot go unnoticed.
 *
 * The fill rule (identical in the Python test, fill_message there); n is the
 * field number:
 *   integers n*7+1; enums the smallest non-zero value (0 if there is none);
 *   bool true; string "s<n>"; bytes "b<n>"; float and double n+0.5;
 *   a message is filled by the same rule one level deeper; the top message
 *   is depth 1 and messages deeper than MAX_DEPTH are left unset;
 *   repeated fields get the same value twice; map fields get one entry
 *   (the entry message filled by the rule: key = field 1, value = field 2);
 *   of each oneof only the member with the lowest field number is set.
 *
 * Exit status: 0 done; 1 usage error or unknown message name; 2 stdin is not
 * a valid message of that type (reason on stderr); 3 internal error.
 * It does not check that the message is the right type: any bytes that
 * unpack are accepted, as protobuf does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "batch_eligibility.pb-c.h"
#include "batch_events.pb-c.h"
#include "cache_warming.pb-c.h"
#include "eligibility.pb-c.h"
#include "health.pb-c.h"
#include "member_cron.pb-c.h"

/* Messages nested deeper than this are left unset (stops recursive types). */
#define MAX_DEPTH 3

/* Elements written for a repeated (non-map) field. */
#define REPEAT_COUNT 2

/* Every top-level message of the .proto files in proto/, file by file. */
static const ProtobufCMessageDescriptor *const roots[] = {
    /* eligibility.proto */
    &rte__v1__timestamp__descriptor,
    &rte__v1__duration__descriptor,
    &rte__v1__check_eligibility_request__descriptor,
    &rte__v1__check_eligibility_response__descriptor,
    &rte__v1__eligibility_result__descriptor,
    &rte__v1__cache_metadata__descriptor,
    /* member_cron.proto */
    &rte__v1__member_cron_event__descriptor,
    &rte__v1__member_context__descriptor,
    &rte__v1__activity_prediction__descriptor,
    /* batch_eligibility.proto */
    &rte__v1__submit_batch_request__descriptor,
    &rte__v1__member_id_list__descriptor,
    &rte__v1__member_query__descriptor,
    &rte__v1__benefit_contract_filter__descriptor,
    &rte__v1__feature_option_filter__descriptor,
    &rte__v1__predicate_filter__descriptor,
    &rte__v1__coverage_filter__descriptor,
    &rte__v1__insurance_plan_filter__descriptor,
    &rte__v1__family_relationship_filter__descriptor,
    &rte__v1__demographics_filter__descriptor,
    &rte__v1__engagement_filter__descriptor,
    &rte__v1__care_journey_filter__descriptor,
    &rte__v1__recent_event_filter__descriptor,
    &rte__v1__sort_order__descriptor,
    &rte__v1__risk_stratification_filter__descriptor,
    &rte__v1__biometric_filter__descriptor,
    &rte__v1__sdohfilter__descriptor,
    &rte__v1__provider_network_filter__descriptor,
    &rte__v1__temporal_event_filter__descriptor,
    &rte__v1__batch_execution_options__descriptor,
    &rte__v1__retry_config__descriptor,
    &rte__v1__notification_preferences__descriptor,
    &rte__v1__submit_batch_response__descriptor,
    &rte__v1__get_batch_status_request__descriptor,
    &rte__v1__get_batch_status_response__descriptor,
    &rte__v1__batch_progress__descriptor,
    &rte__v1__batch_error__descriptor,
    &rte__v1__list_batches_request__descriptor,
    &rte__v1__list_batches_response__descriptor,
    &rte__v1__batch_summary__descriptor,
    &rte__v1__cancel_batch_request__descriptor,
    &rte__v1__cancel_batch_response__descriptor,
    &rte__v1__watch_batch_request__descriptor,
    &rte__v1__batch_status_update__descriptor,
    &rte__v1__batch_started__descriptor,
    &rte__v1__member_completed__descriptor,
    &rte__v1__batch_completed__descriptor,
    &rte__v1__batch_failed__descriptor,
    /* batch_events.proto */
    &rte__v1__batch_job_event__descriptor,
    &rte__v1__batch_job_details__descriptor,
    &rte__v1__batch_completed_result__descriptor,
    &rte__v1__batch_failed_result__descriptor,
    &rte__v1__batch_progress_update__descriptor,
    /* cache_warming.proto */
    &rte__v1__warm_cache_request__descriptor,
    &rte__v1__warm_cache_response__descriptor,
    &rte__v1__schedule_warming_request__descriptor,
    &rte__v1__schedule_warming_response__descriptor,
    &rte__v1__get_warming_stats_request__descriptor,
    &rte__v1__get_warming_stats_response__descriptor,
    &rte__v1__warming_stats__descriptor,
    /* health.proto */
    &grpc__health__v1__health_check_request__descriptor,
    &grpc__health__v1__health_check_response__descriptor,
};

/* roots[] plus every message reachable from them through fields. */
#define MAX_KNOWN 256
static const ProtobufCMessageDescriptor *known[MAX_KNOWN];
static size_t n_known;

static void fill_message(ProtobufCMessage *msg, int depth);

/* die - report an internal error (a bug here, not bad input) and exit 3 */
static void die(const char *what)
{
    fprintf(stderr, "proto-roundtrip: internal error: %s\n", what);
    exit(3);
}

/* xcalloc - calloc that exits on failure; freed by protobuf_c_message_free_unpacked */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL)
        die("out of memory");
    return p;
}

/* add_known - record desc and, recursively, the messages its fields use */
static void add_known(const ProtobufCMessageDescriptor *desc)
{
    for (size_t i = 0; i < n_known; i++)
        if (known[i] == desc)
            return;
    if (n_known == MAX_KNOWN)
        die("more messages than MAX_KNOWN");
    known[n_known++] = desc;
    for (unsigned i = 0; i < desc->n_fields; i++)
        if (desc->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            add_known(desc->fields[i].descriptor);
}

/* collect_known - fill known[] from roots[] */
static void collect_known(void)
{
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++)
        add_known(roots[i]);
}

/* find_known - the descriptor whose full name is name, or NULL */
static const ProtobufCMessageDescriptor *find_known(const char *name)
{
    for (size_t i = 0; i < n_known; i++)
        if (strcmp(known[i]->name, name) == 0)
            return known[i];
    return NULL;
}

/*
 * is_map_field - does field f of parent hold a map?  protobuf-c keeps no
 * map_entry flag, so recognise what protoc generates for `map<K, V> x`: a
 * repeated field of nested message "<Parent>.XEntry" with exactly the
 * fields key = 1 and value = 2.
 */
static int is_map_field(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *entry = f->descriptor;
    size_t parent_len = strlen(parent->name);
    size_t short_len;

    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    short_len = strlen(entry->short_name);
    if (short_len < 5 || strcmp(entry->short_name + short_len - 5, "Entry") != 0)
        return 0;
    if (strncmp(entry->name, parent->name, parent_len) != 0 || entry->name[parent_len] != '.' ||
        strcmp(entry->name + parent_len + 1, entry->short_name) != 0)
        return 0;
    return entry->n_fields == 2 && entry->fields[0].id == 1 &&
           strcmp(entry->fields[0].name, "key") == 0 && entry->fields[1].id == 2 &&
           strcmp(entry->fields[1].name, "value") == 0;
}

/* is_first_in_oneof - is fields[index] the lowest-numbered member of its oneof? */
static int is_first_in_oneof(const ProtobufCMessageDescriptor *desc, unsigned index)
{
    const ProtobufCFieldDescriptor *f = &desc->fields[index];

    /* fields[] is sorted by number, so an earlier member has a lower one */
    for (unsigned j = 0; j < index; j++)
        if ((desc->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            desc->fields[j].quantifier_offset == f->quantifier_offset)
            return 0;
    return 1;
}

/* enum_value - the smallest non-zero value of the enum, or 0 if it has none */
static int enum_value(const ProtobufCEnumDescriptor *e)
{
    /* values[] is sorted by numeric value */
    for (unsigned i = 0; i < e->n_values; i++)
        if (e->values[i].value != 0)
            return e->values[i].value;
    return 0;
}

/* value_size - bytes one value of field type t takes in a message or array */
static size_t value_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    die("unknown field type");
    return 0;
}

/* new_message - an initialised, filled message of type desc at depth */
static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc, int depth)
{
    ProtobufCMessage *msg = xcalloc(1, desc->sizeof_message);

    protobuf_c_message_init(desc, msg);
    fill_message(msg, depth);
    return msg;
}

/*
 * fill_value - store the rule's value for field f in *slot, one element's
 * storage; depth is that of the message holding f. Returns 0 when the value
 * is a message too deep to set (slot untouched), 1 otherwise.
 */
static int fill_value(const ProtobufCFieldDescriptor *f, void *slot, int depth)
{
    uint32_t n = f->id;
    char text[32];
    size_t len;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)slot = (int32_t)(n * 7 + 1);
        return 1;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)slot = n * 7 + 1;
        return 1;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)slot = (int64_t)n * 7 + 1;
        return 1;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)slot = (uint64_t)n * 7 + 1;
        return 1;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)slot = (float)n + 0.5f;
        return 1;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)slot = (double)n + 0.5;
        return 1;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)slot = 1;
        return 1;
    case PROTOBUF_C_TYPE_ENUM:
        *(int *)slot = enum_value(f->descriptor);
        return 1;
    case PROTOBUF_C_TYPE_STRING:
        len = (size_t)snprintf(text, sizeof text, "s%u", (unsigned)n);
        *(char **)slot = memcpy(xcalloc(1, len + 1), text, len);
        return 1;
    case PROTOBUF_C_TYPE_BYTES:
        len = (size_t)snprintf(text, sizeof text, "b%u", (unsigned)n);
        ((ProtobufCBinaryData *)slot)->data = memcpy(xcalloc(1, len), text, len);
        ((ProtobufCBinaryData *)slot)->len = len;
        return 1;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (depth + 1 > MAX_DEPTH)
            return 0;
        *(ProtobufCMessage **)slot = new_message(f->descriptor, depth + 1);
        return 1;
    }
    die("unknown field type");
    return 0;
}

/* fill_repeated - give repeated field f of msg its elements (2, or 1 for a map) */
static void fill_repeated(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, int depth)
{
    size_t count = is_map_field(msg->descriptor, f) ? 1 : REPEAT_COUNT;
    size_t size = value_size(f->type);
    char *array;

    if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth + 1 > MAX_DEPTH)
        return; /* elements would be too deep: leave the field empty */
    array = xcalloc(count, size);
    for (size_t i = 0; i < count; i++)
        fill_value(f, array + i * size, depth);
    *(size_t *)((char *)msg + f->quantifier_offset) = count;
    *(void **)((char *)msg + f->offset) = array;
}

/* fill_message - set every field of msg (at depth) by the fill rule */
static void fill_message(ProtobufCMessage *msg, int depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;

    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        char *base = (char *)msg;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            fill_repeated(msg, f, depth);
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !is_first_in_oneof(desc, i))
            continue;
        if (!fill_value(f, base + f->offset, depth))
            continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)(base + f->quantifier_offset) = f->id;
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1; /* proto2 has_ flag */
    }
}

/* write_packed - pack msg and write it to stdout; 0 or -1 */
static int write_packed(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = xcalloc(1, len ? len : 1);
    int rc = 0;

    protobuf_c_message_pack(msg, buf);
    if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0) {
        perror("proto-roundtrip: write");
        rc = -1;
    }
    free(buf);
    return rc;
}

/* read_stdin - all of stdin in a malloc'ed buffer, length in *len_out */
static uint8_t *read_stdin(size_t *len_out)
{
    size_t cap = 4096, len = 0, got;
    uint8_t *buf = xcalloc(1, cap);

    while ((got = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);

            if (bigger == NULL)
                die("out of memory");
            buf = bigger;
            cap *= 2;
        }
    }
    if (ferror(stdin)) {
        perror("proto-roundtrip: read");
        exit(3);
    }
    *len_out = len;
    return buf;
}

/* cmd_encode - write a message of type desc with every field set */
static int cmd_encode(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg = new_message(desc, 1);
    int rc;

    if (!protobuf_c_message_check(msg))
        die("filled message fails protobuf_c_message_check");
    rc = write_packed(msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc == 0 ? 0 : 3;
}

/* cmd_decode - unpack stdin as desc and write it packed again */
static int cmd_decode(const ProtobufCMessageDescriptor *desc)
{
    size_t len;
    uint8_t *buf = read_stdin(&len);
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, buf);
    int rc;

    free(buf);
    if (msg == NULL) {
        fprintf(stderr, "proto-roundtrip: %zu bytes on stdin do not unpack as %s\n", len,
                desc->name);
        return 2;
    }
    rc = write_packed(msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc == 0 ? 0 : 3;
}

/* usage - print the command line forms and return exit status 1 */
static int usage(void)
{
    fprintf(stderr, "usage: proto-roundtrip list\n"
                    "       proto-roundtrip encode <MessageFullName> > packed\n"
                    "       proto-roundtrip decode <MessageFullName> < packed > packed\n");
    return 1;
}

/* main - dispatch list / encode / decode */
int main(int argc, char **argv)
{
    const ProtobufCMessageDescriptor *desc;

    collect_known();
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < n_known; i++)
            printf("%s\n", known[i]->name);
        return fflush(stdout) == 0 ? 0 : 3;
    }
    if (argc != 3 || (strcmp(argv[1], "encode") != 0 && strcmp(argv[1], "decode") != 0))
        return usage();
    desc = find_known(argv[2]);
    if (desc == NULL) {
        fprintf(stderr, "proto-roundtrip: unknown message %s (try: proto-roundtrip list)\n",
                argv[2]);
        return 1;
    }
    if (strcmp(argv[1], "encode") == 0)
        return cmd_encode(desc);
    return cmd_decode(desc);
}
