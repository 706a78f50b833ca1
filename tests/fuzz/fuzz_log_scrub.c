/*
 * fuzz_log_scrub.c - libFuzzer target: the PII guard every log line passes
 * (rte_log_scrub).
 *
 * Log messages quote outside input (a bad field's value, a Stedi error
 * text), so the scrubber sees arbitrary bytes. Whatever it is given, it
 * writes a NUL-terminated line within the buffer, returns that line's
 * length, and lets no YYYY-MM-DD date standing alone through (the rule
 * log.c states: not after a letter, digit or '/', not followed by a digit).
 */
#include <ctype.h>

#include "fuzz.h"

static int has_date(const char *s)
{
    for (size_t k = 0; s[k]; k++) {
        if (k > 0 && (isalnum((unsigned char)s[k - 1]) || s[k - 1] == '/'))
            continue;
        int ok = 1;
        for (int i = 0; i < 10 && ok; i++) {
            char c = s[k + i];
            ok = (i == 4 || i == 7) ? c == '-' : (c >= '0' && c <= '9');
        }
        if (ok && !(s[k + 10] >= '0' && s[k + 10] <= '9'))
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = fuzz_str(data, size), out[512], tiny[16];
    size_t n = rte_log_scrub(src, out, sizeof out);

    FUZZ_ASSERT(n < sizeof out && out[n] == '\0' && strlen(out) == n);
    if (strlen(src) * 2 < sizeof out) /* not cut short: a cut can end on a date */
        FUZZ_ASSERT(!has_date(out));
    n = rte_log_scrub(src, tiny, sizeof tiny);
    FUZZ_ASSERT(n < sizeof tiny && tiny[n] == '\0');
    free(src);
    return 0;
}
