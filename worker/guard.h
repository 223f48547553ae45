/* guard.h: training stops at the first non-finite loss or gradient, before the value is pushed
 * to the servers or applied by the local optimizer, with one line that names the step, the
 * tensor and the element (through the part's layout). A diverged run would otherwise train on
 * NaN to status 0, and its later checkpoints would hold garbage.
 *
 * The store checks every gradient range before it leaves (store_local.c, store_remote.c); the
 * tasks check each step's loss (task_classifier.c, task_gan.c). The scan is one pass a step
 * over the gradients that the compiler vectorizes (no -ffast-math here, so a comparison with
 * NaN is honest): about a memory read of the vector, against a step's forward and backward. */
#ifndef PSTRAIN_WORKER_GUARD_H
#define PSTRAIN_WORKER_GUARD_H

#include "engine/layout.h"
#include "engine/model.h"

#include <stddef.h>
#include <stdint.h>

/* What the store knows when the guard speaks (every store has one). */
typedef struct wk_guard {
    uint64_t step;      /* the step in progress (the job's, 0-based) */
    int64_t checkpoint; /* the step of the last checkpoint known to be on disk: resumed from,
                           or taken before the last snapshot (wk_save waits for a write before
                           the next snapshot, and fails when it failed); -1: none known */
    int64_t pending;    /* the step of the last snapshot, its write perhaps not ended; -1 */
    int remote;         /* a worker of a parameter-server job, not the one process */
} wk_guard;

/* A snapshot for the checkpoint of step `step` was taken: the one before it is on disk. */
void wk_guard_snapshot(wk_guard *g, uint64_t step);

/* The index of the first element of v[0, n) that is NaN or infinite; n when all are finite. */
size_t wk_guard_scan(const float *v, size_t n);

/* "conv2d_1/kernel[17]": the tensor of lay holding flat element at, and its index inside the
 * tensor, into buf (of len bytes); returns buf. An element outside every tensor (a layout
 * error) is named "element N". */
char *wk_guard_name(const eng_layout *lay, size_t at, char *buf, size_t len);

/* Checks [lo, hi) of grads, the gradient vector of part p of model m (p's layout: the whole
 * model's for one part), at the step g says. Returns PST_OK, or PST_EDIVERGED with one line in
 * err: "step S: non-finite gradient in conv2d_1/kernel[17] (nan)", then what happens now. A
 * model of several parts names the part: "... in dense/kernel[3] of the generator (inf)".
 * The checkpoint kept is the loop's to add (wk_guard_kept). */
int wk_guard_grads(const wk_guard *g, const eng_model *m, int p, const float *grads, size_t lo,
                   size_t hi, char *err, size_t errlen);

struct wk_store;

/* Checks a step's loss (what: "loss", "discriminator loss"...) at store s's step, after the
 * step's backward. Returns PST_OK, or PST_EDIVERGED with "step S: loss is nan", the first
 * non-finite gradient of s's parts when there is one, and what happens now in err. */
int wk_guard_loss(const struct wk_store *s, const char *what, double loss, char *err,
                  size_t errlen);

struct wk_ckpt_writer;

/* After a step failed with PST_EDIVERGED: waits for the write in progress of writer (this
 * worker's, NULL: it writes none), and appends to err which checkpoint is kept, "; the last
 * checkpoint (step N) is kept", after why the newest one could not be written when it could
 * not. Nothing is appended when none is known (a worker that does not write them). */
void wk_guard_kept(const struct wk_store *s, struct wk_ckpt_writer *writer, char *err,
                   size_t errlen);

#endif
