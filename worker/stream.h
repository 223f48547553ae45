/* stream.h: a worker's stream of training batches: its share of the data (rank of world),
 * reshuffled each epoch from the seed, cut into batches. One process is rank 0 of 1.
 *
 * The stream is a pure function of (data, rank, world, seed, batch, epoch, step): the
 * tests rebuild a job's combined batches from it, and a checkpoint can resume it. */
#ifndef PSTRAIN_WORKER_STREAM_H
#define PSTRAIN_WORKER_STREAM_H

#include "engine/dataset.h"
#include "engine/text.h"

#include <stddef.h>
#include <stdint.h>

typedef struct wk_stream {
    eng_split data; /* this rank's share of train, validation and test */
    int rank, world, batch;
    uint64_t seed;
    int64_t usable;          /* training samples used per epoch (<= data.train.n) */
    int64_t steps_per_epoch; /* ceil(usable / batch) */
    uint32_t *order;         /* this epoch's permutation of the share */
} wk_stream;

/* What a text data set ("imdb") needs beyond an image one: the model's vocabulary size and
 * sequence length, and the tokenizer's vocabulary (vocab_in: a checkpoint's, or NULL to
 * build it from the training texts; *vocab_out, when vocab_out is non-NULL: the one used,
 * owned by the caller). */
typedef struct wk_text {
    int num_words, maxlen;
    const eng_vocab *vocab_in;
    eng_vocab **vocab_out;
} wk_text;

/* Loads the share and prepares epoch 1; text (NULL for image data sets) as above. Returns
 * PST_OK or a negative PST code with a message naming the file. Release with
 * wk_stream_close. */
int wk_stream_open(wk_stream *s, const char *dir, const char *dataset, const wk_text *text,
                   double val_split, int rank, int world, uint64_t seed, int batch, char *err,
                   size_t errlen);
void wk_stream_close(wk_stream *s);

/* Uses only the first `usable` samples of each epoch's order (workers of a job agree on
 * the smallest share so that they take the same number of steps). */
void wk_stream_limit(wk_stream *s, int64_t usable);

/* Shuffles the share for epoch (1-based). */
void wk_stream_epoch(wk_stream *s, int64_t epoch);

/* Batch `step` (0-based, within the epoch) into x and labels; returns its size (the last
 * batch of an epoch may be short). */
int wk_stream_batch(const wk_stream *s, int64_t step, float *x, uint8_t *labels);

/* The key of a global step's dropout masks. */
uint64_t wk_step_key(uint64_t seed, int64_t step);

#endif
