/* gan.h: training a GAN (a model in two parts, eng_model_def.parts), in one process or as one
 * worker of a parameter-server job, and drawing digits from its checkpoints.
 *
 * Each part is a parameter vector of its own with its own optimizer: as a worker, one
 * client per part, each sharded over all the servers (every server runs one table per
 * part). A step is engine/gan.h's; both vectors are pushed and pulled every step, in sync,
 * ssp or async mode as for any model. BatchNormalization's moving statistics travel as the
 * change the worker's forward made to them (see ps/server.h). Checkpoints hold both parts
 * in one file under Keras's names (engine/ckpt/ckpt.h, @split). */
#ifndef PSTRAIN_WORKER_GAN_H
#define PSTRAIN_WORKER_GAN_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "worker/cli.h"
#include "worker/train.h"

#include <signal.h>
#include <stddef.h>

/* wk_train for a GAN (same contract): per epoch it reports both losses, writes
 * --samples DIR/epoch-E.png and, with --judge, the Inception Score and Fréchet distance of
 * --judge-n generated digits. */
int wk_train_gan(const wk_opts *o, const wk_job *job, const eng_ckpt *resume,
                 volatile sig_atomic_t *stop, char *err, size_t errlen);

/* `pstrain sample`: a grid of --n digits from the generator of checkpoint c, noise drawn
 * from --seed, written to --out. Returns 0, 2 on bad input, 1 on other failures. */
int wk_sample(const wk_opts *o, const eng_ckpt *c, char *err, size_t errlen);

/* `pstrain eval` of a GAN checkpoint c: the Inception Score and Fréchet distance under
 * --judge of --judge-n digits, from the noise a run with the same --seed scores at each
 * epoch's end (so it reproduces the run's figures), then what makes up the score: the
 * entropies and the share of each digit among the judge's answers. Returns 0, 2 on bad
 * input (no --judge; a judge that is not an mnist_cnn checkpoint), 1 on other failures. */
int wk_gan_eval(const wk_opts *o, const eng_ckpt *c, char *err, size_t errlen);

/* The optimizer configurations of a GAN run: the checkpoint's when resuming, else
 * --gen-optim and --disc-optim. */
void wk_gan_optims(const wk_opts *o, const eng_ckpt *resume, eng_optim_cfg cfg[2]);

#endif
