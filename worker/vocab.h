/* vocab.h: what a text model needs beyond an image model: its data's shape, the tokenizer's
 * vocabulary as a checkpoint keeps it, and the embedding rows a batch touches (whose
 * gradient alone a push then carries). Internal to worker/. */
#ifndef PSTRAIN_WORKER_VOCAB_H
#define PSTRAIN_WORKER_VOCAB_H

#include "engine/model.h"
#include "engine/text.h"
#include "worker/client.h"
#include "worker/stream.h"

#include <stddef.h>
#include <stdint.h>

/* The text side of model m's data: its embedding's vocabulary size and its sequence length
 * into t. Returns 0 for image models, 1 for text models. */
int wk_text_of(const eng_model *m, wk_text *t);

/* The words a checkpoint keeps, each followed by '\n' (all of them: the ones past num_words
 * still decide between oov_char, a known word, and nothing, an unknown one); *bytes its
 * length. Release with free. */
char *wk_vocab_blob(const eng_vocab *v, uint64_t *bytes);

/* The vocabulary a checkpoint kept (wk_vocab_blob's form). NULL with err on a bad one. */
eng_vocab *wk_vocab_from_blob(const char *blob, uint64_t bytes, char *err, size_t errlen);

/* The rows of a model's embedding a batch uses, ascending. */
typedef struct wk_touched {
    wk_sparse_rows sp;
    uint32_t *rows;
    uint8_t *seen; /* (nrows) */
} wk_touched;

/* Returns 1 when m has an embedding (t ready), 0 otherwise (t zeroed). */
int wk_touched_init(wk_touched *t, const eng_model *m);
void wk_touched_free(wk_touched *t);
/* x: samples of token ids (floats holding exact integers), len of them in all. */
void wk_touched_collect(wk_touched *t, const float *x, size_t len);

#endif
