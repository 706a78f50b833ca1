/*
 * fuzz_member_dir.c - libFuzzer target: a member directory snapshot
 * (member-gen JSONL) as rte_member_dir_new loads it from a file.
 *
 * The input is the whole file. A load either fails with a message naming a
 * line, or gives a snapshot in which every member can be found by its id
 * and every flag bit names one of the snapshot's flags.
 */
#include "fuzz.h"
#include "rte/member_dir.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    rte_member_dir *d = rte_member_dir_new(fuzz_file(data, size), err, sizeof err);

    if (d == NULL) {
        FUZZ_ASSERT(strncmp(err, "member_dir", 10) == 0);
        return 0;
    }
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    const char *const *names;
    size_t nflags = rte_member_snapshot_flags(s, &names);
    size_t n = rte_member_snapshot_count(s);
    FUZZ_ASSERT(nflags <= RTE_MEMBER_MAX_FLAGS);
    for (size_t i = 0; i < n; i++) {
        const rte_member *m = rte_member_snapshot_at(s, i);
        FUZZ_ASSERT(m->member_id != NULL && m->member_id[0] != '\0');
        FUZZ_ASSERT(rte_member_snapshot_find(s, m->member_id) == m);
        FUZZ_ASSERT(nflags == 64 || (m->feature_flags >> nflags) == 0);
        FUZZ_ASSERT(m->account_status >= RTE_MEMBER_ACTIVE &&
                    m->account_status <= RTE_MEMBER_STATUS_UNKNOWN);
    }
    (void)rte_member_snapshot_find(s, "M000000001");
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    return 0;
}
