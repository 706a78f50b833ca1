/*
 * member_dir.h - the member directory: a JSONL snapshot indexed in memory.
 *
 * A directory loads one JSONL file (a path, or an http(s) URL fetched with
 * rte_http_do) of members in tools/member-gen's flat schema into an
 * immutable snapshot: an array of rte_member records (column scans walk it
 * with rte_member_snapshot_at), an open-addressing hash index by member id,
 * and one string arena. Low-cardinality strings (sponsor, population, state,
 * language, plan type, trading partner) are interned, so within a snapshot
 * equal values share one pointer and filters may compare pointers.
 * Feature flags (`feature_flags`: an array of the names that are on, or an
 * object of name: bool, as a LaunchDarkly snapshot gives them) are a bit
 * set per member over the snapshot's table of distinct flag names (at most
 * RTE_MEMBER_MAX_FLAGS).
 *
 * A source may also be a compiled directory (rte_member_snapshot_write,
 * member-gen --compile), told from JSONL by its magic bytes "RTE-MDIR":
 * the same snapshot as fixed-size little-endian arrays with a SHA-256 of
 * the body, loaded by a bounded read and validation instead of a parse
 * (1,000,000 members: docs/member-query.md, "Compiled directory"). A
 * damaged, truncated or other-version file fails the load with a message
 * naming the problem and the section; on reload the old snapshot stays.
 *
 * Reload builds a new snapshot off to the side and swaps it in under a short
 * mutex; readers hold a reference (rte_member_dir_acquire) and keep reading
 * their snapshot, never blocked by a load. A snapshot is freed when its last
 * reference is released.
 *
 * Errors: a line that is not a JSON object of the schema, breaks the input
 * policy (rte/input.h, docs/input.md: strict JSON - well-formed UTF-8, no
 * duplicate keys, no \u0000 -, ids without control characters, calendar
 * dates, RFC 3339 times), lacks member_id, or repeats an id fails the
 * whole load with a message naming the line number and the field; on
 * reload the old snapshot stays. Unknown keys are ignored, absent
 * strings read as "", absent or null times as -1, an unknown
 * account_status as RTE_MEMBER_STATUS_UNKNOWN.
 *
 * MemberQuery attributes (docs/member-query.md lists them; all optional, so
 * files without them load as before) are kept beside the records as one
 * column per attribute: flags as bitmaps (absent = false), amounts and
 * counts as int32 hundredths, times as epoch ms, low-cardinality strings
 * as 16-bit codes of the snapshot's intern table, string lists as a 32-bit
 * set over the column's own names, and the `events` of the last days as
 * one array per snapshot with per-member offsets. rte/member_query.h scans
 * them.
 *
 * Metrics: rte_member_dir_members (gauge), rte_member_dir_reloads_total
 * {result="reloaded|unchanged|error"}, rte_member_dir_load_seconds.
 */
#ifndef RTE_MEMBER_DIR_H
#define RTE_MEMBER_DIR_H

#include <stddef.h>
#include <stdint.h>

#define RTE_MEMBER_MAX_FLAGS 64 /* distinct feature flag names per snapshot */

enum rte_member_status {
    RTE_MEMBER_ACTIVE = 0,
    RTE_MEMBER_INACTIVE,
    RTE_MEMBER_SUSPENDED,
    RTE_MEMBER_PENDING,
    RTE_MEMBER_STATUS_UNKNOWN
};

/* One member; every pointer is borrowed from the snapshot that holds it. */
typedef struct rte_member {
    const char *member_id, *first_name, *last_name, *date_of_birth;
    const char *sponsor_id, *population_id, *state, *language, *plan_type;
    const char *trading_partner_id; /* payer_id when trading_partner_id is absent */
    int has_rte_enabled, is_mock;
    int account_status;     /* enum rte_member_status */
    uint64_t feature_flags; /* bit i set: flag i of rte_member_snapshot_flags is on */
    /* epoch ms, -1 when absent or null */
    int64_t last_login_ms, last_check_ms, appointment_ms, enrollment_ms;
    float usage_by_hour[24];
    float weekday_factor[7];
} rte_member;

/* --- attribute columns (MemberQuery) ------------------------------------ */

enum rte_member_attr_type {
    RTE_ATTR_BOOL, /* bits */
    RTE_ATTR_NUM,  /* num: hundredths, RTE_ATTR_NUM_ABSENT when absent */
    RTE_ATTR_TIME, /* time: epoch ms, RTE_ATTR_TIME_ABSENT when absent */
    RTE_ATTR_ENUM, /* code: rte_member_snapshot_value_id of the string, 0 when absent */
    RTE_ATTR_SET,  /* set: bit i = set_names[i] */
    RTE_ATTR_STR   /* str: "" when absent */
};

#define RTE_ATTR_NUM_ABSENT INT32_MIN
#define RTE_ATTR_TIME_ABSENT INT64_MIN
#define RTE_MEMBER_SET_MAX 32 /* distinct names per list attribute and snapshot */

typedef struct rte_member_column {
    const char *name; /* JSON key; a feature option is "feature_options.<name>" */
    int type;         /* enum rte_member_attr_type */
    const uint64_t *bits;
    const int32_t *num;
    const int64_t *time;
    const uint16_t *code;
    const uint32_t *set;
    const char *const *str;
    const char *set_names[RTE_MEMBER_SET_MAX];
    int nset;
} rte_member_column;

/* one event of a member's recent history (the `events` key) */
typedef struct rte_member_event {
    uint32_t at_s;                  /* epoch seconds */
    uint16_t type, source, feature; /* value ids (rte_member_snapshot_value); 0 = none */
    uint8_t category;               /* RecentEventFilter.EventCategory number, 0 unknown */
} rte_member_event;

typedef struct rte_member_snapshot rte_member_snapshot;
typedef struct rte_member_dir rte_member_dir;

/*
 * rte_member_dir_new - load source (file path or http(s) URL) once; NULL +
 * err on failure. Any thread; takes no shared lock.
 */
rte_member_dir *rte_member_dir_new(const char *source, char *err, size_t errlen);

/*
 * rte_member_dir_check_source - 0 when source can be loaded as far as can be
 * told without loading it (a readable file, or an http(s) URL); -1 + err
 * naming it. For --check-config. Any thread.
 */
int rte_member_dir_check_source(const char *source, char *err, size_t errlen);

/*
 * rte_member_dir_source_config - the member directory a service must have,
 * from config key (a JSONL file or http(s) URL) into *source (borrowed
 * from cfg): 0, or -1 + err naming the key and its RTE_* variable when it
 * is empty or cannot be loaded (rte_member_dir_check_source). Any thread.
 */
struct rte_config;
int rte_member_dir_source_config(const struct rte_config *cfg, const char *key, const char **source,
                                 char *err, size_t errlen);

/*
 * rte_member_dir_reload_if_changed - reload when the source changed (file:
 * mtime, size or inode; URL: ETag / Last-Modified, then content hash).
 * Returns 1 reloaded, 0 unchanged, -1 error (err filled, old snapshot kept).
 * Any thread; reloads are serialised by the directory's reload mutex, the
 * swap takes the snapshot mutex for a pointer exchange only.
 */
int rte_member_dir_reload_if_changed(rte_member_dir *d, char *err, size_t errlen);

/*
 * rte_member_dir_acquire - a reference to the current snapshot; release it
 * with rte_member_snapshot_release. Any thread; takes the snapshot mutex
 * briefly.
 */
rte_member_snapshot *rte_member_dir_acquire(rte_member_dir *d);

/* rte_member_snapshot_release - drop a reference (frees on the last); any thread, lock-free */
void rte_member_snapshot_release(rte_member_snapshot *s);

/* rte_member_snapshot_count - number of members; any thread, lock-free */
size_t rte_member_snapshot_count(const rte_member_snapshot *s);

/* rte_member_snapshot_at - member i (< count), borrowed from s; any thread, lock-free */
const rte_member *rte_member_snapshot_at(const rte_member_snapshot *s, size_t i);

/*
 * rte_member_snapshot_flags - the snapshot's distinct feature flag names,
 * in bit order (*names borrowed from s); their number. Any thread, lock-free.
 */
size_t rte_member_snapshot_flags(const rte_member_snapshot *s, const char *const **names);

/* rte_member_snapshot_find - member by id, borrowed from s, or NULL; any thread, lock-free */
const rte_member *rte_member_snapshot_find(const rte_member_snapshot *s, const char *member_id);

/*
 * rte_member_snapshot_find_many - rte_member_snapshot_find for n ids (NULL
 * ids find NULL) into out[0..n): the index and record reads of a group of
 * ids are issued before any is awaited, so a large directory's cache
 * misses overlap (a consumer's batch). Any thread, lock-free.
 */
void rte_member_snapshot_find_many(const rte_member_snapshot *s, const char *const *ids, size_t n,
                                   const rte_member **out);

/*
 * rte_member_snapshot_column - the column of attribute name (borrowed from
 * s), or NULL when the directory has no such attribute. Any thread, lock-free.
 */
const rte_member_column *rte_member_snapshot_column(const rte_member_snapshot *s, const char *name);

/* the members of one enum column grouped by code (rte_member_snapshot_postings) */
typedef struct rte_member_postings {
    const uint32_t *count; /* count[v]: members with code v, for every code */
    const uint32_t *off;   /* code v's members: idx[off[v] .. off[v + 1]), index order */
    const uint32_t *idx;   /* lists only for codes 1.. held by at most rare_max members */
    size_t nvalues;        /* codes 0 .. nvalues - 1 */
    size_t rare_max;       /* count / 16 */
} rte_member_postings;

/*
 * rte_member_snapshot_postings - posting lists of enum column name: for
 * each code held by at most 1/16 of the members, their indexes, so a
 * query on a rare value (state = 'CA') starts from its members instead of
 * reading the whole column. Built on the first call for a column (one pass,
 * 4 bytes a member in rare codes plus 8 a code) and kept in s; NULL when
 * name is not an enum column or out of memory. Any thread, lock-free
 * (racing first calls each build, one result is kept).
 */
const rte_member_postings *rte_member_snapshot_postings(const rte_member_snapshot *s,
                                                        const char *name);

/*
 * the events of a snapshot by (type, time) (rte_member_snapshot_event_index):
 * type code v's events are ent[off[v] .. off[v + 1]), each (at_s << 32) |
 * member index, ascending (time, then member); a member with several events
 * of a type in a window appears once per event
 */
typedef struct rte_member_event_index {
    const uint32_t *off;      /* nvalues + 1 offsets into ent, by type code */
    const uint64_t *ent;      /* nentries: (epoch seconds << 32) | member index */
    size_t nvalues, nentries; /* type codes 0 .. nvalues - 1; every event of the snapshot */
    const uint16_t *types;    /* the ntypes type codes that have events, ascending */
    const uint8_t *category;  /* category[t]: the EventCategory number of types[t] */
    size_t ntypes;
    size_t bytes; /* memory the index holds */
} rte_member_event_index;

/*
 * rte_member_snapshot_event_index - the events of s indexed by (type,
 * time), so a query for a rare type in a recent window starts from the few
 * members that have one instead of reading every candidate's events. Built
 * on the first call (two passes over the events and a radix sort by time
 * per type; 8 bytes an event plus 4 a code) and kept in s; NULL when out of
 * memory. Any thread, lock-free (racing first calls each build, one is kept).
 */
const rte_member_event_index *rte_member_snapshot_event_index(const rte_member_snapshot *s);

/*
 * rte_member_event_index_range - the entries of type code type with a time
 * in [lo_s, hi_s) seconds: ent[*from .. *to) (empty for type 0, unknown
 * codes or an empty window). Any thread, lock-free.
 */
void rte_member_event_index_range(const rte_member_event_index *x, uint32_t type, uint32_t lo_s,
                                  uint32_t hi_s, size_t *from, size_t *to);

/*
 * rte_member_attr_type - the enum rte_member_attr_type of attribute name,
 * -1 when the directory keeps no such attribute. Any thread, lock-free.
 */
int rte_member_attr_type(const char *name);

/*
 * rte_member_attr_name - the name of the directory's attribute i (0, 1, ...
 * in a fixed order), NULL past the last: every column a snapshot has.
 * Any thread, lock-free.
 */
const char *rte_member_attr_name(size_t i);

/*
 * rte_member_snapshot_id_order - member indexes in member id order (strcmp),
 * count entries, borrowed from s. Any thread, lock-free.
 */
const uint32_t *rte_member_snapshot_id_order(const rte_member_snapshot *s);

/* rte_member_snapshot_id_rank - per member index, its position in id order; borrowed, lock-free */
const uint32_t *rte_member_snapshot_id_rank(const rte_member_snapshot *s);

/* rte_member_snapshot_index - the index of m (a record of s); any thread, lock-free */
size_t rte_member_snapshot_index(const rte_member_snapshot *s, const rte_member *m);

/*
 * rte_member_snapshot_value_id - the code of string value in s (enum
 * columns, event types, sources, features, interned rte_member strings),
 * 0 when no member has it. Any thread, lock-free.
 */
uint32_t rte_member_snapshot_value_id(const rte_member_snapshot *s, const char *value);

/* rte_member_snapshot_value_count - the largest code in s; any thread, lock-free */
size_t rte_member_snapshot_value_count(const rte_member_snapshot *s);

/* rte_member_snapshot_value - the string of code id ("" for 0 or unknown), borrowed; lock-free */
const char *rte_member_snapshot_value(const rte_member_snapshot *s, uint32_t id);

/* rte_member_snapshot_events - member i's events in file order (*ev borrowed); their count */
size_t rte_member_snapshot_events(const rte_member_snapshot *s, size_t i,
                                  const rte_member_event **ev);

/* rte_member_event_category - the EventCategory number of an event type name, 0 when unknown */
int rte_member_event_category(const char *type);

/*
 * rte_member_snapshot_write - s in the compiled form (docs/member-query.md,
 * "Compiled directory") to path, through path.tmp renamed into place so a
 * directory polling path never sees half a file: 0, or -1 + err naming the
 * file. Any thread, lock-free (s is immutable).
 */
int rte_member_snapshot_write(const rte_member_snapshot *s, const char *path, char *err,
                              size_t errlen);

/*
 * rte_member_dir_compile - load source (JSONL or compiled, file or URL) and
 * write it compiled to out (member-gen --compile): 0, or -1 + err. Any
 * thread; takes no shared lock.
 */
int rte_member_dir_compile(const char *source, const char *out, char *err, size_t errlen);

/* rte_member_dir_free - drop the directory's reference and free it; readers' snapshots stay valid
 */
void rte_member_dir_free(rte_member_dir *d);

#endif
