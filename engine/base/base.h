/* base.h: what every file of pstrain shares, below the engine and the wire: one space of
 * status codes, the error-buffer helper, an assert that stays on in release builds and
 * prints the values, allocation with one out-of-memory policy, and the clock.
 *
 * Recoverable failures (files, arguments, peers) return a negative PST_E* code and fill a
 * caller-supplied buffer with one line; programming errors go through PST_ASSERT and abort.
 * Out of memory is not recoverable here: the pst_ allocators print one line and abort, so no
 * caller checks for NULL (a size read from a file or a peer is checked before it is asked
 * for). */
#ifndef PSTRAIN_BASE_H
#define PSTRAIN_BASE_H

#include <stddef.h>

enum {
    PST_OK = 0,
    PST_EIO = -1,     /* a file could not be opened, read or written */
    PST_EFORMAT = -2, /* a file is not what was expected */
    PST_EARG = -3,    /* a bad argument from the user (flag, model name) */
    /* -4 is unused: out of memory is no code (the pst_ allocators abort) */
    PST_EAGAIN = -5,     /* nothing to receive yet (non-blocking, or timed out) */
    PST_ESOCKET = -6,    /* a socket failed */
    PST_EMALFORMED = -7, /* a message arrived and was refused */
    PST_EVERSION = -8,   /* a message of another protocol version */
    PST_ESTRANGER = -9,  /* a message from outside the job (another job's token, or none) */
    PST_EPEER = -10,     /* a peer refused us, failed, or was lost */
    PST_ESTOPPED = -11,  /* the job stopped on request after a last checkpoint: resumable */
    PST_EWRITE = -12,    /* an output could not be written (a full disk): not the input's fault */
    PST_EDIVERGED = -13, /* training met a NaN or infinite loss or gradient, and stopped */
};

/* The code's name, "PST_EIO", for logs and tests. */
const char *pst_code_name(int code);

/* The process exit status for a code: 0 for PST_OK, 2 for bad input (PST_EARG, PST_EFORMAT,
 * PST_EIO), 75 (EX_TEMPFAIL) for PST_ESTOPPED, 1 for anything else (PST_EWRITE, PST_EPEER,
 * PST_EDIVERGED, the wire's codes). */
int pst_exit_status(int code);
#define PST_EXIT_STOPPED 75

/* Writes a printf-style message into err (of errlen bytes) when err is non-NULL and
 * returns code, so that failure paths read `return pst_err(err, n, PST_EIO, ...)`. */
int pst_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

_Noreturn void pst_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* PST_ASSERT(cond, "fmt", values...): always compiled in; prints the values, then aborts. */
#define PST_ASSERT(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            pst_assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                               \
    } while (0)

/* Allocation. pst_alloc: 64-byte aligned (a cache line, and AVX-512's width) and zeroed,
 * released with pst_free. pst_malloc, pst_calloc, pst_realloc and pst_strdup are the C
 * library's, released with free. None returns NULL: out of memory prints one line naming the
 * size and aborts. */
void *pst_alloc(size_t bytes);
void pst_free(void *p);
void *pst_malloc(size_t bytes);
void *pst_calloc(size_t n, size_t size);
void *pst_realloc(void *p, size_t bytes);
char *pst_strdup(const char *s);

/* Seconds on the monotonic clock (for durations, never for dates). */
double pst_now(void);

/* Flushes denormal floats to zero on the calling thread and the threads it starts later
 * (they inherit the setting), as TensorFlow's CPU threads run. Adam's moments of a weight
 * whose gradient stays 0 (a dead ReLU unit's) decay by beta1 each step into the denormal
 * range after about 800 steps, where each operation on them takes a microcode assist: on a
 * SkylakeX core that made Adam 12% of a mnist_cnn step instead of 2% (bench_mnist_cnn, 1
 * thread, 1,500 steps: 4,716 against 5,392 samples/s). pstrain's main and the benchmarks
 * call it first thing; values that small carry no information a model uses. */
void pst_flush_denormals(void);

#endif
