/* base.h: what every engine file shares: status codes, the error-buffer helper,
 * and an assert that stays on in release builds and prints the values.
 *
 * Recoverable failures (files, arguments) return a negative ENG_E* code and fill a
 * caller-supplied buffer; programming errors go through ENG_ASSERT and abort. */
#ifndef PSTRAIN_ENGINE_BASE_H
#define PSTRAIN_ENGINE_BASE_H

#include <stddef.h>

enum {
    ENG_OK = 0,
    ENG_EIO = -1,     /* a file could not be opened or read */
    ENG_EFORMAT = -2, /* a file or message is not what was expected */
    ENG_EARG = -3,    /* a bad argument from the user (flag, model name) */
    ENG_ENOMEM = -4,  /* an allocation failed */
};

/* Writes a printf-style message into err (of errlen bytes) when err is non-NULL and
 * returns code, so that failure paths read `return eng_err(err, n, ENG_EIO, ...)`. */
int eng_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

_Noreturn void eng_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ENG_ASSERT(cond, "fmt", values...): always compiled in; prints the values, then aborts. */
#define ENG_ASSERT(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            eng_assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                               \
    } while (0)

/* Allocation helpers: 64-byte aligned (a cache line, and AVX-512's width), zeroed.
 * Return NULL on failure; release with eng_free. */
void *eng_alloc(size_t bytes);
void eng_free(void *p);

#endif
