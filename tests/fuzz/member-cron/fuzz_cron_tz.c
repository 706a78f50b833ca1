/*
 * fuzz_cron_tz.c - libFuzzer target: TZif zone files (RFC 8536) as
 * member-cron reads them (rte_tz_load), with their POSIX TZ footer.
 *
 * The zoneinfo directory is configuration (member_cron.zoneinfo), so its
 * files are input too. The input is one file's bytes, loaded from a memfd
 * through the directory /proc/self/fd. A zone that loads answers every
 * question (offset, next transition, local-time resolution) within the
 * limits a UTC offset has (under 26 hours), and the local time of an
 * instant resolves to at most two instants, among them that instant, each
 * of which maps back to that local time.
 */
#include "rte/tz.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t at[] = {INT64_MIN / 2, -2208988800LL, 0,
                                 1772953140LL,  1767571200LL,  2147483648LL,
                                 4102444800LL,  INT64_MAX / 2};
    char err[512];
    const char *path = fuzz_file(data, size);
    rte_tz *tz = rte_tz_load("/proc/self/fd", path + strlen("/proc/self/fd/"), err, sizeof err);

    if (tz == NULL) {
        FUZZ_ASSERT(err[0] != '\0');
        return 0;
    }
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        int64_t t = at[i], out[2];
        int32_t off = rte_tz_offset(tz, t);
        FUZZ_ASSERT(off > -26 * 3600 && off < 26 * 3600);
        int64_t next = rte_tz_next_transition(tz, t);
        FUZZ_ASSERT(next > t);
        int n = rte_tz_resolve(tz, t + off, out);
        FUZZ_ASSERT(n >= 1 && n <= 2 && (out[0] == t || (n == 2 && out[1] == t)));
        for (int k = 0; k < n; k++)
            FUZZ_ASSERT(out[k] + rte_tz_offset(tz, out[k]) == t + off);
        FUZZ_ASSERT(n < 2 || out[0] < out[1]);
    }
    rte_tz_free(tz);
    return 0;
}
