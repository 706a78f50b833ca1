/*
 * fuzz.h - helpers the libFuzzer targets in tests/fuzz/ share.
 *
 * A target is one LLVMFuzzerTestOneInput over one parser of outside input
 * (docs/fuzzing.md). These helpers turn the fuzzer's bytes into what the
 * parsers take: a NUL-terminated copy, fields cut at newlines (for inputs
 * made of several header values, which cannot hold a newline themselves),
 * or a file path for parsers that read files (a memfd, rewritten for each
 * input, opened through /proc/self/fd).
 *
 * FUZZ_ASSERT aborts with the condition and the line, so an invariant a
 * harness checks becomes a crash libFuzzer reports and saves.
 *
 * Header-only (static functions): every target is one translation unit.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rte/log.h"

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* the parsers log their complaints as warnings; a fuzzer run wants only errors */
static inline void fuzz_quiet(void)
{
    rte_log_init("fuzz", RTE_LOG_ERROR);
}

/* data as a NUL-terminated malloc'd string (stops at an embedded NUL, as C callers do) */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/*
 * cut data at the first n-1 newlines into n NUL-terminated fields (the
 * last one takes the rest, newlines included; missing fields are NULL).
 * Returns the buffer the fields point into (free it).
 */
static inline char *fuzz_fields(const uint8_t *data, size_t size, char **field, int n)
{
    char *buf = fuzz_str(data, size), *p = buf;
    for (int i = 0; i < n; i++) {
        field[i] = p;
        if (p == NULL || i == n - 1)
            continue;
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        p = nl != NULL ? nl + 1 : NULL;
    }
    return buf;
}

/*
 * a path whose file holds exactly data: one memfd per process, rewritten
 * for each input; the path is /proc/self/fd/<n>, so fopen reads from the
 * start every time
 */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-input", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    return path;
}

#endif
