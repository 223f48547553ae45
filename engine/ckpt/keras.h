/* keras.h: Keras 2 HDF5 files beside our checkpoints: full-model files (what Keras 2.13's
 * `model.save('model.h5')` writes, legacy HDF5 format: keras/saving/legacy/hdf5_format.py's
 * save_model_to_hdf5 and saving_utils.model_metadata), and reading the weights of a Keras
 * weights file or full-model file into a model's flat vector (load_weights_from_hdf5_group's
 * topological matching).
 *
 * A full-model file (format of save_model_to_hdf5):
 *
 *   /  @keras_version "2.13.1", @backend "tensorflow"   variable-length UTF-8 strings (str)
 *      @model_config                                     JSON, fixed-length bytes (bytes)
 *      @training_config                                  JSON, fixed-length bytes
 *   /model_weights/                 save_weights_to_hdf5_group: what our checkpoints hold at
 *      @layer_names, @backend, @keras_version            their root (ckpt.h), for the
 *      <layer>/@weight_names, <layer>/<layer>/kernel:0   Sequential's layers
 *      top_level_model_weights/@weight_names             empty: a Sequential has none
 *
 * No optimizer_weights/: Keras's load_model then compiles the model with a fresh optimizer of
 * the training_config's hyperparameters (it sets optimizer weights only when the group is
 * there), which is what `pstrain train --init-from` does too. Our optimizer state does not
 * map onto Keras's variables one to one (update counts per range of elements, not one
 * `iteration`; a GAN's parts each with its own). Files are built in memory and written as one
 * image (write.c), without timestamps: the same checkpoint exports to the same bytes. */
#ifndef PSTRAIN_ENGINE_CKPT_KERAS_H
#define PSTRAIN_ENGINE_CKPT_KERAS_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/optim.h"

#include <stddef.h>

#define ENG_KERAS_VERSION "2.13.1"
#define ENG_KERAS_BACKEND "tensorflow"

/* Writes part p of checkpoint c (m: the model c names) as a Keras full-model file at path: a
 * Sequential of the part's layers, under the names the checkpoint gives them, with the part's
 * optimizer in the training config. A model of one part is its whole self. ema: write a GAN
 * generator's moving average of its weights instead of the weights themselves (c must keep one).
 * Returns PST_OK, or PST_EARG (a layer without a Keras config, no moving average kept) or PST_EIO
 * (cannot write path; nothing left there) with one line in err naming path. */
int eng_keras_save(const char *path, const eng_ckpt *c, const eng_model *m, int p, int ema,
                   char *err, size_t errlen);

/* Reads the weights of the Keras file at path (a weights file: root @layer_names, as our
 * checkpoints and model.save_weights write; or a full-model file: model_weights/) into params
 * (m->layout.total floats), as Keras's topological load_weights matches them: the file's layers
 * that have weights, in order, against m's that do, from m's (*next)-th such layer on (0: the
 * first). Each layer must have as many weights, each of m's shape, finite. A file with more
 * layers than m has left is refused; one with fewer leaves *next short of the count, for the
 * caller to read more files or refuse (eng_keras_weighted_layers). Returns PST_OK with *next
 * advanced, or PST_EIO (cannot open) or PST_EFORMAT with one line naming path and the first
 * layer, weight or shape that differs:
 * "f.h5: layer conv2d_1: kernel shape (3, 3, 32, 64) expected, found (3, 3, 16, 64)". */
int eng_keras_load_weights(const char *path, const eng_model *m, int *next, float *params,
                           char *err, size_t errlen);

/* The number of m's layers that have weights, and the name of the i-th of them (i below it). */
int eng_keras_weighted_layers(const eng_model *m);
const char *eng_keras_weighted_layer(const eng_model *m, int i);

/* --- keras_config.c: the JSON (for tests too) ------------------------------------------- */

/* The model_config of the Sequential model of m's layers [l0, l0 + nl) called name
 * ("sequential"): an InputLayer, then each layer's Keras 2.13 get_config. logits: the last
 * layer's sigmoid is the loss's, not the layer's (a GAN's discriminator ends in Dense(1) as
 * TF's DCGAN tutorial has it, "linear"). Returns a malloc'ed string (free it), or NULL with
 * err naming a layer Keras has no config for. */
char *eng_keras_model_config(const eng_model *m, int l0, int nl, const char *name, int logits,
                             char *err, size_t errlen);
/* The training_config: a classifier's loss (categorical or binary cross-entropy, by the last
 * layer's activation) and accuracy metric, or with gan the tutorial's
 * BinaryCrossentropy(from_logits=True) and no metrics; then the optimizer o as Keras 2.13
 * configures it. malloc'ed (free it). */
char *eng_keras_training_config(const eng_model *m, int l0, int nl, const eng_optim_cfg *o,
                                int gan);
/* v as Python's repr writes a float ("0.001", "1e-07", "1.0"), into out. */
void eng_keras_repr(char *out, size_t len, double v);

#endif
