/* dataset.h: classification data sets held in memory, images as bytes or texts as token
 * ids, and Keras's way of cutting them: validation_split takes the LAST fraction of the
 * training files (before any shuffling), and each process of a job keeps only its
 * contiguous share of every part.
 *
 * MNIST and Fashion-MNIST share the IDX layout: DIR/<name>/{train,t10k}-{images-idx3,
 * labels-idx1}-ubyte, raw or with .gz appended. IMDB's texts: engine/imdb.h. */
#ifndef PSTRAIN_ENGINE_DATASET_H
#define PSTRAIN_ENGINE_DATASET_H

#include "engine/layer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct eng_dataset {
    int64_t n;       /* samples held */
    eng_shape shape; /* one sample */
    int nclasses;
    uint8_t *images;  /* (n, h, w, c) pixels 0..255, owned; NULL for texts */
    uint16_t *tokens; /* (n, shape.w) token ids for text data sets (shape (1, maxlen, 1)),
                         owned; NULL for images */
    uint8_t *labels;  /* (n), each < nclasses, owned */
} eng_dataset;

typedef struct eng_split {
    eng_dataset train, val, test;
} eng_split;

/* Loads DIR/name's training and test files for process `rank` of `world`: the training
 * files are cut at floor(N * (1 - val_split)) into train and validation, and rank keeps
 * samples [N_part * rank / world, N_part * (rank + 1) / world) of each part. Only those bytes
 * are read from raw files. Returns PST_OK or a negative code with a message naming the
 * file. On success release with eng_split_deinit. */
int eng_split_load_idx(eng_split *s, const char *dir, const char *name, double val_split, int rank,
                       int world, char *err, size_t errlen);
void eng_split_deinit(eng_split *s);

/* x (B, h, w, c) <- images[idx[i]] / 255 (or the token ids as floats, for texts) and
 * labels (B) <- labels[idx[i]], for i < B. */
void eng_dataset_gather(const eng_dataset *d, const uint32_t *idx, int B, float *x,
                        uint8_t *labels);

/* The same for samples [first, first + B): evaluation walks a set in order. */
void eng_dataset_slice(const eng_dataset *d, int64_t first, int B, float *x, uint8_t *labels);

#endif
