/*
 * br_select.h - member selection of a SubmitBatch: a MemberIdList checked
 * field by field, or a MemberQuery answered from the member directory.
 *
 * A MemberQuery goes through libcommon's member_query (every filter
 * family and the expression language, docs/member-query.md); a field it
 * cannot answer is refused naming it (INVALID_ARGUMENT at the caller).
 *
 * Errors: -1 with err naming the field ("member_ids.member_ids[3]: ...").
 * Thread safety: pure functions; any thread.
 */
#ifndef BR_SELECT_H
#define BR_SELECT_H

#include <stddef.h>

#include "batch_eligibility.pb-c.h"
#include "rte/member_dir.h"

/* br_select_ids - 0 when the n ids (1..max, each 1..128 bytes, no duplicate) are acceptable */
int br_select_ids(const char *const *ids, size_t n, int max, char *err, size_t errlen);

/* br_select_check_query - 0 when q compiles (every field answerable, sane values) */
int br_select_check_query(const Rte__V1__MemberQuery *q, int max, char *err, size_t errlen);

/*
 * br_select_query - the ids of the members of snap that q selects (at most
 * q->limit, or max) into *ids (malloc'd array, caller frees; the strings
 * are borrowed from snap) and *n. -1 + err when more than max match
 * without a limit, or out of memory.
 */
int br_select_query(const rte_member_snapshot *snap, const Rte__V1__MemberQuery *q, int max,
                    const char ***ids, size_t *n, char *err, size_t errlen);

#endif
