/* gan_outputs.h: what a GAN run shows a person: a grid of digits from fixed noise at each
 * epoch's end (--samples DIR), and the judge's Inception Score and Fréchet distance of
 * --judge-n generated digits (--judge, an mnist_cnn checkpoint), of the generator's moving
 * average when the run keeps one (and then of the live generator too). `pstrain eval` of a
 * GAN scores the same noise, so that it reproduces the run's figures. Internal to worker/. */
#ifndef PSTRAIN_WORKER_GAN_OUTPUTS_H
#define PSTRAIN_WORKER_GAN_OUTPUTS_H

#include "engine/ckpt/ckpt.h"
#include "engine/gan.h"
#include "engine/judge.h"
#include "worker/opts.h"
#include "worker/report/progress.h"

#include <stddef.h>

#define WK_GAN_GRID_N 64                  /* digits in a --samples grid */
#define WK_GAN_KEY_GRID 0x53414D504C45ull /* noise of the grids and of `pstrain sample` */
#define WK_GAN_KEY_JUDGE 0x4A55444745ull  /* noise of the judged images */

typedef struct wk_gan_outputs wk_gan_outputs;
struct wk_gan_outputs {
    const char *samples_dir; /* empty: no grids */
    float *grid_z, *grid;    /* (WK_GAN_GRID_N, noise), (WK_GAN_GRID_N, 784) */
    eng_judge *judge;        /* NULL: no scores */
    size_t judge_n;
    float *judge_z, *judged; /* (judge_n, noise), (judge_n, 784) */
    float *real_feats;       /* (real_n, ENG_JUDGE_FEATURES) of the MNIST test images */
    size_t real_n;
    float *live; /* with a moving average: the generator's own weights while it draws */
};

/* Prepares the outputs o asks for: the directory, the noise, and the judge with its
 * features of the real test images, whose own Inception Score it prints for scale. Returns
 * PST_OK or a code with err naming the flag. Release with wk_gan_outputs_free (also after a
 * failure). */
int wk_gan_outputs_init(wk_gan_outputs *out, const wk_opts *o, int threads, char *err,
                        size_t errlen);
void wk_gan_outputs_free(wk_gan_outputs *out);

/* The judge's scores of gan's generator as it stands. */
int wk_gan_outputs_score(wk_gan_outputs *out, eng_gan *gan, double *inception, double *frechet,
                         char *err, size_t errlen);

/* The epoch's grid and scores into r: of the moving average ema of the generator (gen_total
 * floats, the generator part's) when the run keeps one, the live generator then scored too. Returns
 * PST_OK or a code with err. */
int wk_gan_outputs_epoch(wk_gan_outputs *out, eng_gan *gan, const float *ema, size_t gen_total,
                         int64_t epoch, wk_gan_report *r, char *err, size_t errlen);

/* Which of GAN checkpoint c's generators to draw with: the moving average, when c keeps one
 * and not live, or the generator's own weights (borrowed from c); *what says which, for a
 * person. */
const float *wk_generator_of(const eng_ckpt *c, int live, char *what, size_t len);

/* The GAN of checkpoint c with the generator wk_generator_of picks (*what says which), for
 * up to max_batch images a call on `threads` threads; part receives the two networks' models
 * and must outlive it. NULL with err and *rc when it cannot be built. `pstrain sample`,
 * `eval` and wk_infer draw with it, so that they agree. */
eng_gan *wk_gan_of(const eng_ckpt *c, int live, eng_model part[2], int max_batch, int threads,
                   char *what, size_t whatlen, int *rc, char *err, size_t errlen);

#endif
