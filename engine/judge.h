/* judge.h: a trained mnist_cnn checkpoint as the judge of generated digits: its class
 * probabilities give the Inception Score of a set of images, and its 128 Dense features
 * (the layer before the classifier, after its ReLU) the Fréchet distance between two sets
 * (engine/score.h).
 *
 * The judge runs the classifier up to those features as a net of its own (eng_net_predict,
 * on its threads) and the last Dense layer and the softmax itself. Nothing is allocated after
 * eng_judge_new but by eng_judge_scores. One call at a time on a judge. */
#ifndef PSTRAIN_ENGINE_JUDGE_H
#define PSTRAIN_ENGINE_JUDGE_H

#include <stddef.h>

#define ENG_JUDGE_FEATURES 128 /* mnist_cnn's Dense(128, relu) */
#define ENG_JUDGE_CLASSES 10
#define ENG_JUDGE_PIXELS (28 * 28) /* one image (28, 28, 1) */

typedef struct eng_judge eng_judge;

/* Reads the checkpoint at path (a file, or a directory's latest) and makes a judge that takes
 * up to max_batch images a call on `threads` threads. NULL with one line in err naming the
 * path when it cannot be read, or is not an mnist_cnn checkpoint ("FILE: a checkpoint of
 * imdb_lstm; a judge needs mnist_cnn"), or when max_batch or threads is < 1. The caller owns
 * the judge: release it with eng_judge_free. */
eng_judge *eng_judge_new(const char *path, int max_batch, int threads, char *err, size_t errlen);
/* Accepts NULL; sets *j to NULL. */
void eng_judge_free(eng_judge **j);

/* For n images (n, 28, 28, 1) with values in [lo, hi] (a generator's tanh: -1, 1; MNIST
 * pixels as loaded: 0, 1), mapped linearly onto the judge's [0, 1]: the class probabilities
 * (n, 10; softmax) into probs and the 128 Dense features (after ReLU) into feats; either may
 * be NULL. Any n >= 0 (in batches of max_batch inside). hi > lo (asserted). */
void eng_judge_run(eng_judge *j, const float *images, size_t n, float lo, float hi, float *probs,
                   float *feats);

/* Convenience: the Inception Score of n images into *inception, and their Fréchet distance
 * to the features of real ones given as real_feats (nr, 128) into *frechet (when frechet is
 * NULL none is computed and real_feats is not read). Workspace for n images' outputs is
 * allocated and freed here. Returns PST_OK, or PST_EARG (n < 1; n or nr < 2 for a
 * distance; features that are not finite), with one line in err; the outputs are then left
 * alone. */
int eng_judge_scores(eng_judge *j, const float *images, size_t n, float lo, float hi,
                     const float *real_feats, size_t nr, double *inception, double *frechet,
                     char *err, size_t errlen);

#endif
