/*
 * fuzz_member_dir_compiled.c - libFuzzer target: a compiled member
 * directory (member-gen --compile, docs/member-query.md "Compiled
 * directory") as rte_member_dir_new loads it from a file.
 *
 * Input: one control byte, then the file. A mutated file almost never keeps
 * its SHA-256, which would stop every input at the checksum; so control bit
 * 0 sets the header's file size to the real one and bit 1 recomputes the
 * checksum before the load, as a forger would, and the section validators
 * behind the checksum see the mutations. Either the load fails with a
 * member_dir message, or every member can be found by its id, its codes
 * name values of the snapshot, its events are in range and the id order is
 * a sorted permutation.
 */
#include "fuzz.h"
#include "rte/member_dir.h"

#include <openssl/evp.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    static uint8_t buf[1 << 20];

    if (size < 1 || size - 1 > sizeof buf)
        return 0;
    uint8_t ctl = data[0];
    size_t n = size - 1;
    memcpy(buf, data + 1, n);
    if (n >= 64 && (ctl & 1)) {
        uint64_t len = n;
        memcpy(buf + 24, &len, 8);
    }
    if (n >= 64 && (ctl & 2)) {
        unsigned int mdlen = 0;
        FUZZ_ASSERT(EVP_Digest(buf + 64, n - 64, buf + 32, &mdlen, EVP_sha256(), NULL) == 1);
    }
    rte_member_dir *d = rte_member_dir_new(fuzz_file(buf, n), err, sizeof err);
    if (d == NULL) {
        FUZZ_ASSERT(strncmp(err, "member_dir", 10) == 0);
        return 0;
    }
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    const char *const *names;
    size_t nflags = rte_member_snapshot_flags(s, &names);
    size_t count = rte_member_snapshot_count(s), nv = rte_member_snapshot_value_count(s);
    const uint32_t *order = rte_member_snapshot_id_order(s);
    const uint32_t *rank = rte_member_snapshot_id_rank(s);
    FUZZ_ASSERT(nflags <= RTE_MEMBER_MAX_FLAGS);
    for (size_t i = 0; i < count; i++) {
        const rte_member *m = rte_member_snapshot_at(s, i);
        FUZZ_ASSERT(m->member_id[0] != '\0');
        FUZZ_ASSERT(rte_member_snapshot_find(s, m->member_id) == m);
        FUZZ_ASSERT(nflags == 64 || (m->feature_flags >> nflags) == 0);
        FUZZ_ASSERT(m->account_status >= RTE_MEMBER_ACTIVE &&
                    m->account_status <= RTE_MEMBER_STATUS_UNKNOWN);
        FUZZ_ASSERT(order[rank[i]] == i);
        FUZZ_ASSERT(i == 0 || strcmp(rte_member_snapshot_at(s, order[i - 1])->member_id,
                                     rte_member_snapshot_at(s, order[i])->member_id) < 0);
        const rte_member_event *ev;
        size_t ne = rte_member_snapshot_events(s, i, &ev);
        for (size_t e = 0; e < ne; e++)
            FUZZ_ASSERT(ev[e].type >= 1 && ev[e].type <= nv && ev[e].source <= nv &&
                        ev[e].feature <= nv);
    }
    for (size_t k = 0; rte_member_attr_name(k); k++) {
        const rte_member_column *c = rte_member_snapshot_column(s, rte_member_attr_name(k));
        FUZZ_ASSERT(c != NULL);
        for (size_t i = 0; i < count; i++) {
            if (c->type == RTE_ATTR_ENUM)
                FUZZ_ASSERT(c->code[i] <= nv);
            else if (c->type == RTE_ATTR_SET)
                FUZZ_ASSERT(c->nset == 32 || (c->set[i] >> c->nset) == 0);
            else if (c->type == RTE_ATTR_STR)
                FUZZ_ASSERT(strlen(c->str[i]) < (1u << 20));
        }
    }
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    return 0;
}
