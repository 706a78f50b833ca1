/*
 * test_member_dir_compiled.c - the compiled member directory
 * (rte_member_snapshot_write, member-gen --compile): loading it gives the
 * same snapshot as the JSONL it came from (every member field, column,
 * list name, event, value code, flag and the id order), over tests/data's
 * directories and 5,000 generated members; compiling is deterministic; a
 * damaged file (truncated, a flipped bit, another format version, offsets,
 * codes, counts or order that break the bounds under a valid checksum) is
 * refused with a message naming the problem, and a reload onto it keeps the
 * previous snapshot; reload_if_changed sees a rewritten compiled file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "rte/member_dir.h"

static const char *data_dir(void)
{
    const char *d = getenv("RTE_DATA_DIR");
    return d && d[0] ? d : "tests/data";
}

static rte_member_dir *load(const char *path)
{
    char err[512];
    rte_member_dir *d = rte_member_dir_new(path, err, sizeof err);
    if (!d)
        fail_msg("%s", err);
    return d;
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/tmp/test_member_dir_compiled_%d_%s", (int)getpid(), name);
}

/* every member, column, value and event of a and b are equal */
static void assert_same(const rte_member_snapshot *a, const rte_member_snapshot *b)
{
    size_t n = rte_member_snapshot_count(a);
    assert_int_equal(rte_member_snapshot_count(b), n);

    const char *const *fa, *const *fb;
    size_t nf = rte_member_snapshot_flags(a, &fa);
    assert_int_equal(rte_member_snapshot_flags(b, &fb), nf);
    for (size_t k = 0; k < nf; k++)
        assert_string_equal(fa[k], fb[k]);

    size_t nv = rte_member_snapshot_value_count(a);
    assert_int_equal(rte_member_snapshot_value_count(b), nv);
    for (uint32_t v = 0; v <= nv; v++)
        assert_string_equal(rte_member_snapshot_value(a, v), rte_member_snapshot_value(b, v));

    for (size_t i = 0; i < n; i++) {
        const rte_member *x = rte_member_snapshot_at(a, i), *y = rte_member_snapshot_at(b, i);
        const char *sx[10] = {x->member_id,  x->first_name,        x->last_name, x->date_of_birth,
                              x->sponsor_id, x->population_id,     x->state,     x->language,
                              x->plan_type,  x->trading_partner_id};
        const char *sy[10] = {y->member_id,  y->first_name,        y->last_name, y->date_of_birth,
                              y->sponsor_id, y->population_id,     y->state,     y->language,
                              y->plan_type,  y->trading_partner_id};
        for (int k = 0; k < 10; k++)
            assert_string_equal(sx[k], sy[k]);
        /* interned fields are interned in b too: equal values share a pointer */
        for (int k = 4; k < 10; k++)
            assert_ptr_equal(sy[k], sy[k][0] ? rte_member_snapshot_value(
                                                   b, rte_member_snapshot_value_id(b, sy[k]))
                                             : sy[k]);
        assert_int_equal(x->has_rte_enabled, y->has_rte_enabled);
        assert_int_equal(x->is_mock, y->is_mock);
        assert_int_equal(x->account_status, y->account_status);
        assert_int_equal(x->feature_flags, y->feature_flags);
        assert_int_equal(x->last_login_ms, y->last_login_ms);
        assert_int_equal(x->last_check_ms, y->last_check_ms);
        assert_int_equal(x->appointment_ms, y->appointment_ms);
        assert_int_equal(x->enrollment_ms, y->enrollment_ms);
        assert_memory_equal(x->usage_by_hour, y->usage_by_hour, sizeof x->usage_by_hour);
        assert_memory_equal(x->weekday_factor, y->weekday_factor, sizeof x->weekday_factor);
        assert_ptr_equal(rte_member_snapshot_find(b, y->member_id), y);

        const rte_member_event *ea, *eb;
        size_t ne = rte_member_snapshot_events(a, i, &ea);
        assert_int_equal(rte_member_snapshot_events(b, i, &eb), ne);
        for (size_t e = 0; e < ne; e++) {
            assert_int_equal(ea[e].at_s, eb[e].at_s);
            assert_int_equal(ea[e].type, eb[e].type);
            assert_int_equal(ea[e].source, eb[e].source);
            assert_int_equal(ea[e].feature, eb[e].feature);
            assert_int_equal(ea[e].category, eb[e].category);
        }
    }
    if (n) {
        assert_memory_equal(rte_member_snapshot_id_order(a), rte_member_snapshot_id_order(b),
                            n * sizeof(uint32_t));
        assert_memory_equal(rte_member_snapshot_id_rank(a), rte_member_snapshot_id_rank(b),
                            n * sizeof(uint32_t));
    }

    size_t ncols = 0;
    for (const char *name; (name = rte_member_attr_name(ncols)) != NULL; ncols++) {
        const rte_member_column *ca = rte_member_snapshot_column(a, name);
        const rte_member_column *cb = rte_member_snapshot_column(b, name);
        assert_non_null(ca);
        assert_non_null(cb);
        assert_int_equal(ca->type, cb->type);
        assert_int_equal(ca->nset, cb->nset);
        for (int k = 0; k < ca->nset; k++)
            assert_string_equal(ca->set_names[k], cb->set_names[k]);
        for (size_t i = 0; i < n; i++) {
            switch (ca->type) {
            case RTE_ATTR_BOOL:
                assert_int_equal((ca->bits[i / 64] >> (i % 64)) & 1,
                                 (cb->bits[i / 64] >> (i % 64)) & 1);
                break;
            case RTE_ATTR_NUM:
                assert_int_equal(ca->num[i], cb->num[i]);
                break;
            case RTE_ATTR_TIME:
                assert_int_equal(ca->time[i], cb->time[i]);
                break;
            case RTE_ATTR_ENUM:
                assert_int_equal(ca->code[i], cb->code[i]);
                break;
            case RTE_ATTR_SET:
                assert_int_equal(ca->set[i], cb->set[i]);
                break;
            default:
                assert_string_equal(ca->str[i], cb->str[i]);
                break;
            }
        }
    }
    assert_true(ncols > 100);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0); /* a new inode, as a publisher would */
}

/* JSONL src compiled and loaded again equals the JSONL load; compiling again is byte-identical */
static void roundtrip(const char *src)
{
    char out[256], out2[256], err[512];
    tmp_path(out, sizeof out, "a.mdir");
    tmp_path(out2, sizeof out2, "b.mdir");
    if (rte_member_dir_compile(src, out, err, sizeof err) != 0)
        fail_msg("%s", err);
    rte_member_dir *dj = load(src), *dc = load(out);
    rte_member_snapshot *sj = rte_member_dir_acquire(dj), *sc = rte_member_dir_acquire(dc);
    assert_same(sj, sc);
    rte_member_snapshot_release(sj);
    rte_member_snapshot_release(sc);
    rte_member_dir_free(dj);
    rte_member_dir_free(dc);

    /* compiled -> compiled is the same bytes */
    if (rte_member_dir_compile(out, out2, err, sizeof err) != 0)
        fail_msg("%s", err);
    size_t la, lb;
    char *a = slurp(out, &la), *b = slurp(out2, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_memory_equal(a, "RTE-MDIR", 8);
    free(a);
    free(b);
    unlink(out);
    unlink(out2);
}

static void test_same_as_jsonl_data(void **state)
{
    char path[512];
    (void)state;
    snprintf(path, sizeof path, "%s/member_dir/five.jsonl", data_dir());
    roundtrip(path);
    snprintf(path, sizeof path, "%s/member_query/members.jsonl", data_dir());
    roundtrip(path);
}

static void test_same_as_jsonl_generated(void **state)
{
    char path[256], cmd[512];
    (void)state;
    if (access("build/bin/member-gen", X_OK) != 0)
        skip();
    tmp_path(path, sizeof path, "gen.jsonl");
    snprintf(cmd, sizeof cmd, "build/bin/member-gen --count 5000 --seed 7 --out %s", path);
    assert_int_equal(system(cmd), 0);
    roundtrip(path);
    unlink(path);
}

static void test_empty_directory(void **state)
{
    char src[256], out[256], err[512];
    (void)state;
    tmp_path(src, sizeof src, "empty.jsonl");
    tmp_path(out, sizeof out, "empty.mdir");
    spit(src, "", 0);
    assert_int_equal(rte_member_dir_compile(src, out, err, sizeof err), 0);
    rte_member_dir *d = load(out);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    assert_int_equal(rte_member_snapshot_count(s), 0);
    assert_null(rte_member_snapshot_find(s, "A"));
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    unlink(src);
    unlink(out);
}

/* --- damaged files ------------------------------------------------------------ */

static uint32_t rd32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t rd64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static void wr32(char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void wr64(char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* the offset of section id (1..10) in a compiled file */
static size_t sec_off(const char *buf, int id)
{
    return (size_t)rd64(buf + 64 + 24 * (id - 1) + 8);
}

/* the header's SHA-256 recomputed over the body, as a forger would */
static void reseal(char *buf, size_t len)
{
    unsigned int n = 0;
    assert_int_equal(
        EVP_Digest(buf + 64, len - 64, (unsigned char *)buf + 32, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
}

/* buf (len bytes) written to path fails the load with an error containing each of needles */
static void expect_refused(const char *path, const char *buf, size_t len, const char *needle,
                           const char *needle2)
{
    char err[512];
    spit(path, buf, len);
    rte_member_dir *d = rte_member_dir_new(path, err, sizeof err);
    if (d)
        fail_msg("loaded a damaged file, expected '%s'", needle);
    if (!strstr(err, needle) || !strstr(err, "compiled directory") ||
        (needle2 && !strstr(err, needle2)))
        fail_msg("error '%s' does not name '%s'", err, needle);
}

static void test_damaged(void **state)
{
    char src[512], good[256], bad[256], err[512];
    (void)state;
    snprintf(src, sizeof src, "%s/member_query/members.jsonl", data_dir());
    tmp_path(good, sizeof good, "good.mdir");
    tmp_path(bad, sizeof bad, "bad.mdir");
    assert_int_equal(rte_member_dir_compile(src, good, err, sizeof err), 0);
    size_t len;
    char *orig = slurp(good, &len), *b = malloc(len + 16);
    assert_non_null(b);
    uint64_t count = rd64(orig + 16);
    assert_true(count > 10);

    /* truncated anywhere */
    size_t cuts[] = {8, 63, 64 + 100, len / 2, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++)
        expect_refused(bad, orig, cuts[k], "truncated", NULL);

    /* one flipped bit anywhere in the body */
    size_t flips[] = {64, 64 + 240 + 3, sec_off(orig, 5) + 17, sec_off(orig, 7) + 1000, len - 1};
    for (size_t k = 0; k < sizeof flips / sizeof flips[0]; k++) {
        memcpy(b, orig, len);
        b[flips[k]] ^= 0x10;
        expect_refused(bad, b, len, "checksum mismatch", NULL);
    }

    /* another format version */
    memcpy(b, orig, len);
    wr32(b + 8, 2);
    expect_refused(bad, b, len, "format version 2", "reads version 1");

    /* an extended file */
    memcpy(b, orig, len);
    memset(b + len, 0, 16);
    expect_refused(bad, b, len + 16, "the header says", NULL);

    /* damage under a valid checksum: each bound named by its section */
    memcpy(b, orig, len); /* a section moved */
    wr64(b + 64 + 24 * 4 + 8, rd64(b + 64 + 24 * 4 + 8) + 4);
    reseal(b, len);
    expect_refused(bad, b, len, "section table", "members");

    memcpy(b, orig, len); /* a section's length beyond the file */
    wr64(b + 64 + 24 * 9 + 16, (uint64_t)1 << 40);
    reseal(b, len);
    expect_refused(bad, b, len, "section table", "beyond the end");

    memcpy(b, orig, len); /* meta's member count disagrees with the header */
    wr64(b + sec_off(b, 1), count + 1);
    reseal(b, len);
    expect_refused(bad, b, len, "section 'meta'", NULL);

    memcpy(b, orig, len); /* a member id's string offset beyond the strings */
    wr32(b + sec_off(b, 5) + 208 * 3, 0x7fffffff);
    reseal(b, len);
    expect_refused(bad, b, len, "section 'members': member 3", "string offset");

    memcpy(b, orig, len); /* a sponsor code beyond the values */
    wr32(b + sec_off(b, 5) + 208 * 2 + 16, 60000);
    reseal(b, len);
    expect_refused(bad, b, len, "section 'members': member 2", "code 60000");

    memcpy(b, orig, len); /* an account status out of range */
    b[sec_off(b, 5) + 42] = 9;
    reseal(b, len);
    expect_refused(bad, b, len, "section 'members': member 0", "out of range");

    memcpy(b, orig, len); /* an empty member id */
    wr32(b + sec_off(b, 5) + 208 * 4, 0);
    reseal(b, len);
    expect_refused(bad, b, len, "section 'members': member 4", "member_id");

    memcpy(b, orig,
           len); /* an enum code beyond the values in the first column (benefit_contract_id) */
    {
        size_t c0 = sec_off(b, 7);
        assert_int_equal(rd32(b + sec_off(b, 6) + 4), RTE_ATTR_ENUM);
        b[c0] = (char)0xff;
        b[c0 + 1] = (char)0xff;
    }
    reseal(b, len);
    expect_refused(bad, b, len, "section 'column data'", "benefit_contract_id");

    memcpy(b, orig, len); /* a column name that is no attribute */
    wr32(b + sec_off(b, 6), 0);
    reseal(b, len);
    expect_refused(bad, b, len, "section 'columns'", "not an attribute");

    memcpy(b, orig, len); /* event offsets going backwards */
    wr32(b + sec_off(b, 8) + 4, 0xffffff);
    reseal(b, len);
    expect_refused(bad, b, len, "section 'event offsets'", NULL);

    memcpy(b, orig, len); /* two ranks swapped: not in id order */
    {
        char *o = b + sec_off(b, 10), t[4];
        memcpy(t, o, 4);
        memcpy(o, o + 4, 4);
        memcpy(o + 4, t, 4);
    }
    reseal(b, len);
    expect_refused(bad, b, len, "section 'id order'", "not in member id order");

    memcpy(b, orig, len); /* a member repeated in the id order */
    wr32(b + sec_off(b, 10) + 4, rd32(b + sec_off(b, 10)));
    reseal(b, len);
    expect_refused(bad, b, len, "section 'id order'", "repeated");

    memcpy(b, orig, len); /* a repeated member id */
    wr32(b + sec_off(b, 5) + 208 * 1, rd32(b + sec_off(b, 5)));
    reseal(b, len);
    expect_refused(bad, b, len, "member 1: member_id", "repeats member 0");

    memcpy(b, orig, len); /* a duplicate in the value dictionary */
    wr32(b + sec_off(b, 3) + 4, rd32(b + sec_off(b, 3)));
    reseal(b, len);
    expect_refused(bad, b, len, "section 'values'", "repeats value 1");

    /* the untouched bytes still load */
    spit(bad, orig, len);
    rte_member_dir *d = load(bad);
    rte_member_dir_free(d);
    free(b);
    free(orig);
    unlink(good);
    unlink(bad);
}

/* reload_if_changed on a compiled source: unchanged, rewritten, damaged (old kept), JSONL again */
static void test_reload(void **state)
{
    char src[256], path[256], err[512];
    (void)state;
    tmp_path(src, sizeof src, "r.jsonl");
    tmp_path(path, sizeof path, "r.mdir");
    const char *v1 = "{\"member_id\":\"A\",\"first_name\":\"Old\"}\n{\"member_id\":\"B\"}\n";
    spit(src, v1, strlen(v1));
    assert_int_equal(rte_member_dir_compile(src, path, err, sizeof err), 0);
    rte_member_dir *d = load(path);
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof err), 0);
    rte_member_snapshot *old = rte_member_dir_acquire(d);

    const char *v2 = "{\"member_id\":\"A\",\"first_name\":\"New\"}\n{\"member_id\":\"C\"}\n";
    spit(src, v2, strlen(v2));
    assert_int_equal(rte_member_dir_compile(src, path, err, sizeof err), 0);
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof err), 1);
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof err), 0);
    rte_member_snapshot *cur = rte_member_dir_acquire(d);
    assert_string_equal(rte_member_snapshot_find(cur, "A")->first_name, "New");
    assert_null(rte_member_snapshot_find(cur, "B"));
    assert_string_equal(rte_member_snapshot_find(old, "A")->first_name, "Old");
    rte_member_snapshot_release(old);

    /* a damaged rewrite: refused, the current snapshot stays */
    size_t len;
    char *buf = slurp(path, &len);
    buf[len - 2] ^= 1;
    spit(path, buf, len);
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof err), -1);
    assert_non_null(strstr(err, "checksum mismatch"));
    rte_member_snapshot *again = rte_member_dir_acquire(d);
    assert_ptr_equal(again, cur);
    rte_member_snapshot_release(again);

    /* the same source may turn back into JSONL */
    const char *v3 = "{\"member_id\":\"Z\"}\n";
    spit(path, v3, strlen(v3));
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof err), 1);
    again = rte_member_dir_acquire(d);
    assert_int_equal(rte_member_snapshot_count(again), 1);
    assert_non_null(rte_member_snapshot_find(again, "Z"));
    rte_member_snapshot_release(again);
    rte_member_snapshot_release(cur);
    rte_member_dir_free(d);
    free(buf);
    unlink(src);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_jsonl_data),
        cmocka_unit_test(test_same_as_jsonl_generated),
        cmocka_unit_test(test_empty_directory),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
