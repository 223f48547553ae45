/* fuzzutil.h: what the libFuzzer harnesses of tests/fuzz share: a per-process scratch
 * directory for the bytes under test, and the checks a harness makes on what the code under
 * test returned.
 *
 * A harness that finds a broken promise aborts (fz_check), so that libFuzzer keeps the
 * input as a crash, as it does for a sanitizer's report. */
#ifndef PSTRAIN_TESTS_FUZZ_FUZZUTIL_H
#define PSTRAIN_TESTS_FUZZ_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

/* This process's scratch directory, pstrain-fuzz-<tag>-<pid> under /dev/shm when that
 * exists (no disk writes per input), else under $TMPDIR or /tmp. Made on the first call;
 * removed at exit with what the harness put in it (two levels); leftovers of processes
 * that died (a crash ends with _Exit) are removed when the next one starts. Returns the path
 * (static storage). Aborts when it cannot be made. */
const char *fz_dir(const char *tag);

/* Writes data[0, size) to path (created or truncated); aborts on failure: the harness, not
 * the code under test, is broken then. */
void fz_write(const char *path, const uint8_t *data, size_t size);

/* Aborts with a message unless cond: the code under test broke a contract. */
#define fz_check(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                       \
    } while (0)
void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));

/* A refusal must be a negative code and one non-empty line that names the file (contains
 * name). what names the call, for the report. */
void fz_check_error(int rc, const char *err, const char *name, const char *what);

/* Reads p[0, n) closely enough that ASan reports an allocation shorter than n bytes; returns
 * a sum of what it read, which callers may ignore. */
unsigned fz_touch(const void *p, size_t n);

#endif
