/* init_from.h: `pstrain train --init-from FILE.h5[,FILE.h5...]`: the weights a fresh run
 * starts from, read from Keras files (weights files, full-model files, our own checkpoints)
 * instead of drawn by the initialisers. Only the weights: every optimizer starts fresh. */
#ifndef PSTRAIN_WORKER_INIT_FROM_H
#define PSTRAIN_WORKER_INIT_FROM_H

#include "engine/model.h"
#include "worker/opts.h"

#include <stddef.h>

/* The files of o->init_from (comma-separated, read in turn: a GAN's generator file, then its
 * discriminator's) into *weights (m->layout.total floats, pst_alloc'ed: pst_free them),
 * matched to m's layers with weights in order (eng_keras_load_weights). Returns PST_OK, or
 * PST_EIO / PST_EFORMAT (*weights NULL) with one line naming the file and the first layer,
 * weight or shape that differs, or the layers missing. */
int wk_init_from_load(const wk_opts *o, const eng_model *m, float **weights, char *err,
                      size_t errlen);

#endif
