/* batch.h: dynamic batching for `pstrain serve`: the HTTP threads hand decoded samples to one
 * batcher thread, which merges the requests queued for the same model into one forward pass
 * (wk_infer_run) of up to max_batch samples and answers each.
 *
 * When to run: as soon as max_batch samples are queued, or when no other request is on its
 * way (being received or decoded: sv_batcher_arriving), or timeout_us after the first queued
 * sample, whichever comes first. A lone client therefore never waits for the timeout, while
 * concurrent ones are merged. A request is never split: its samples run in one pass (the
 * HTTP layer refuses more than max_batch), and never merged with another model's (a hot
 * reload's old and new versions run apart). The batch buffers are sized once, at start. */
#ifndef PSTRAIN_SERVE_BATCH_H
#define PSTRAIN_SERVE_BATCH_H

#include "launch/serve/metrics.h"
#include "worker/infer.h"

#include <stddef.h>

typedef struct sv_batcher sv_batcher;

/* A batcher for models that take in_floats and give out_floats per sample, and its thread.
 * metrics (borrowed) gets each batch's size. Returns an owned batcher, or NULL with one line
 * in err (the thread could not start). */
sv_batcher *sv_batcher_new(int max_batch, size_t in_floats, size_t out_floats, long timeout_us,
                           sv_metrics *metrics, char *err, size_t errlen);

/* Lets the queued requests finish, stops the thread and frees. NULL is fine. */
void sv_batcher_free(sv_batcher **b);

/* A request starts (+1) or stops (-1) being on its way to sv_batcher_run: while any is, the
 * batcher waits (up to the timeout) for it before running what is queued. */
void sv_batcher_arriving(sv_batcher *b, int delta);

/* Runs x (n, in_floats) through m in some batch and writes y (n, out_floats); blocks until
 * done. 1 <= n <= max_batch. m (borrowed) must stay alive until this returns. arrived: the
 * caller counted itself with sv_batcher_arriving(+1), and stops being on its way as its job
 * is queued (in one step, so the batcher never runs between the two). Any thread. */
void sv_batcher_run(sv_batcher *b, wk_infer *m, const float *x, int n, float *y, int arrived);

#endif
