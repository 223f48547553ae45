/* testutil.h: what the test executables share: a finite-difference gradient checker, the
 * data directory, temporary directories and files, and running the `pstrain` program.
 *
 * Only tests link this (pstrain_testsupport). It never asserts: each function reports
 * (return values, lines on stdout) and the test decides. */
#ifndef PSTRAIN_TESTS_TESTUTIL_H
#define PSTRAIN_TESTS_TESTUTIL_H

#include "engine/rng.h"

#include <stddef.h>
#include <stdint.h>

/* --- random inputs --- */

/* p[i] uniform in [lo, hi), from r. */
void tu_fill_uniform(float *p, size_t n, float lo, float hi, eng_rng *r);

/* n floats uniform in [lo, hi) from a stream seeded with seed, malloc'ed (NULL when out of
 * memory): a gradient or weights to send. */
float *tu_random_floats(size_t n, float lo, float hi, uint64_t seed);

/* p[0..n) = lo + step * (a random permutation of 0..n-1): distinct values at least step
 * apart, so that no max-pooling window has a tie or a near-tie. */
void tu_fill_distinct(float *p, size_t n, float lo, float step, eng_rng *r);

/* --- the gradient checker --- */

/* The scalar function whose gradient is checked, evaluated at the current parameter
 * values. */
typedef double (*tu_loss_fn)(void *ctx);

/* Kinks (ReLU, max pooling) make central differences wrong where a probe crosses one.
 * Layer tests avoid them by construction (a frozen ReLU mask, distinct pooling inputs);
 * kink_tol is for whole models, where only the loss is visible. */
typedef struct tu_gradcheck {
    const char *what;  /* "conv2d dkernel": messages */
    double eps;        /* central difference step, in the parameter's units */
    double rtol, atol; /* pass when |num - ana| <= atol + rtol * max(|num|, |ana|) */
    /* 0: off. Else: a kink crossed between the probes shows as curvature c = |L(+h) +
     * L(-h) - 2 L(0)| / 2h and bends the quotient by about c: elements with c > kink_tol
     * are skipped, the others get c added to their tolerance. */
    double kink_tol;
    size_t max_checks; /* 0: every element; else this many, chosen at random (seeded) */
} tu_gradcheck;

typedef struct tu_gradcheck_result {
    size_t checked; /* elements compared */
    size_t skipped; /* elements whose probes crossed a kink */
    size_t failed;  /* elements outside the tolerance */
    double max_abs_err, max_rel_err;
} tu_gradcheck_result;

/* Compares analytic[i] with (f(p + h e_i) - f(p - h e_i)) / 2h for elements of p[0..n),
 * restoring p afterwards. Prints the first few failures and a one-line summary. Returns
 * res->failed. */
size_t tu_gradcheck_run(const tu_gradcheck *gc, float *p, size_t n, const float *analytic,
                        tu_loss_fn f, void *ctx, tu_gradcheck_result *res);

/* sum_i y[i] * r[i] in double: the loss whose gradient with respect to y is r. */
double tu_dot(const float *y, const float *r, size_t n);

/* --- files and directories --- */

/* The data directory: $PSTRAIN_DATA when set and non-empty, else the build's
 * PSTRAIN_TEST_DATA_DIR. */
const char *tu_data_dir(void);

/* Checks that DIR/name holds the four IDX files (raw or .gz); on failure writes a message
 * that says what is missing and how to get it into msg and returns -1. */
int tu_check_dataset(const char *name, char *msg, size_t msglen);

/* Creates a fresh directory under $TMPDIR (or /tmp) into buf; returns 0 or -1. */
int tu_mkdtemp(char *buf, size_t len, const char *tag);
/* Removes dir and everything under it (two levels at most). */
void tu_rmtree(const char *dir);

/* Writes len bytes to path (created or truncated); returns 0 or -1. */
int tu_write_file(const char *path, const void *data, size_t len);
/* Reads the whole file into a NUL-terminated malloc'ed buffer (*len bytes, not counting
 * the NUL); returns NULL when it cannot. */
char *tu_read_file(const char *path, size_t *len);

/* An IDX header for unsigned bytes with ndim dimensions into out (4 + 4 * ndim bytes);
 * returns its length. */
size_t tu_idx_header(uint8_t *out, int ndim, const uint32_t *dims);

/* --- running programs --- */

typedef struct tu_proc {
    int exited;      /* exited normally (not killed by a signal) */
    int status;      /* exit status when exited */
    int signal;      /* the signal that killed it, else 0 */
    int core_dumped; /* it left a core */
    char *out, *err; /* captured stdout and stderr, NUL-terminated, owned */
    size_t out_len, err_len;
} tu_proc;

/* Runs argv (argv[0] a path, argv NULL-terminated) with stdin from /dev/null, capturing
 * stdout and stderr; extra_env (may be NULL) are "NAME=value" strings set in the child
 * (a "NAME" alone unsets NAME). Returns 0, or -1 when it could not run at all. */
int tu_run(tu_proc *p, char *const argv[], const char *const *extra_env);
void tu_proc_deinit(tu_proc *p);

/* Lines in s: the number of '\n', plus one for an unterminated last line. */
int tu_count_lines(const char *s);

#endif
