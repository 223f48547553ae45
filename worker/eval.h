/* eval.h: one process, one checkpoint: `pstrain eval` and `pstrain sample`. */
#ifndef PSTRAIN_WORKER_EVAL_H
#define PSTRAIN_WORKER_EVAL_H

#include "engine/ckpt/ckpt.h"
#include "worker/opts.h"

#include <stddef.h>

/* The checkpoint c (read from path) evaluated, one process, lines to stdout:
 *   a classifier: its weights on the test set (the split c was trained with);
 *   a GAN: the Inception Score and Fréchet distance under --judge of --judge-n digits, from
 *     the noise a run with the same --seed scores at each epoch's end (so it reproduces the
 *     run's figures), then what makes up the score: the entropies and the share of each
 *     digit among the judge's answers; of the generator's moving average when c keeps one,
 *     unless live.
 * Returns PST_OK, or a code with one line in err (PST_EARG: --judge given for a classifier,
 * or missing for a GAN). */
int wk_eval(const wk_opts *o, const char *path, const eng_ckpt *c, int live, char *err,
            size_t errlen);

/* `pstrain sample`: a grid of n digits from the generator of GAN checkpoint c (its moving
 * average unless live), noise drawn from --seed, written to the PNG out. Returns PST_OK or a
 * code with one line in err. */
int wk_sample(const wk_opts *o, const eng_ckpt *c, int n, int live, const char *out, char *err,
              size_t errlen);

#endif
