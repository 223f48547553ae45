/* infer.h: a checkpoint made callable: one model's forward pass for requests that arrive one
 * sample at a time (`pstrain serve`) and the same pass over a file of inputs (`pstrain eval
 * --inputs`), so that the two answer with the same bits.
 *
 * Each model has a signature: the inputs a request may give (alternatives: a request uses
 * one) and the outputs it gets, with names, dtypes and per-sample shapes, in Keras's NHWC
 * order:
 *
 *   mnist_cnn, fashion_cnn  in  "images"  FP32  (28, 28, 1)  values in [0, 1]
 *                               "pixels"  UINT8 (28, 28, 1)  0..255, divided by 255 as training
 * does out "probabilities" FP32 (10)    softmax of the logits imdb_lstm               in  "text"
 * BYTES ()           a review, tokenised with the checkpoint's own vocabulary as training tokenised
 * (eng_vocab_encode) "tokens"  INT64 (maxlen)     sequence ids in [0, num_words); a shorter list is
 * padded in front, a longer cut in front (pad_sequences) out "probability" FP32 (1)       sigmoid
 * of the logit: P(positive) mnist_gan               in  "seed"    INT64 ()           noise drawn as
 * `pstrain sample
 *                                                            --seed S` draws its first digit:
 *                                                            seed S's image is that digit
 *                               "z"       FP32  (100)        the generator's input itself
 *                           out "images"  FP32  (28, 28, 1)  in [-1, 1] (tanh), from the
 *                                                            generator's moving average when the
 *                                                            checkpoint keeps one
 *                               "png"     BYTES ()           the image as an 8-bit grey PNG
 *
 * A batch's answers are the bits eng_net_predict (eng_gan_generate for the GAN) gives for the
 * same batch on the same pass size, which depends on max_batch and threads: a caller that
 * wants eval's bits runs the same batch with the same max_batch and threads. Whether a
 * sample's bits also stay the same in another batch depends on the OpenBLAS kernel (some
 * compute a row of a product differently at another row position).
 *
 * Not thread-safe: one thread at a time calls wk_infer_run on one wk_infer; the signature and
 * wk_infer_prepare (read-only) may be used from any thread meanwhile. */
#ifndef PSTRAIN_WORKER_INFER_H
#define PSTRAIN_WORKER_INFER_H

#include "engine/ckpt/ckpt.h"

#include <stddef.h>
#include <stdint.h>

typedef enum wk_dtype { WK_FP32, WK_UINT8, WK_INT64, WK_BYTES } wk_dtype;

/* "FP32", "UINT8", "INT64", "BYTES" (KServe v2's names). */
const char *wk_dtype_name(wk_dtype t);

#define WK_INFER_MAX_IO 2

typedef struct wk_infer_io {
    const char *name; /* static: "images", "pixels", "text", ... */
    wk_dtype dtype;
    int rank;        /* dimensions per sample, without the batch's; 0 for a scalar */
    int64_t dims[3]; /* (rank) */
} wk_infer_io;

typedef struct wk_infer_sig {
    char model[64];  /* registry name: "mnist_cnn" */
    int64_t version; /* the checkpoint's step */
    int ninputs;     /* alternatives: a request gives exactly one of them */
    wk_infer_io inputs[WK_INFER_MAX_IO];
    int noutputs; /* outputs[0] is what the model computes; a GAN's outputs[1] is its PNG */
    wk_infer_io outputs[WK_INFER_MAX_IO];
    size_t in_floats;  /* floats per sample the model takes (wk_infer_prepare writes them) */
    size_t out_floats; /* floats per sample wk_infer_run writes */
} wk_infer_sig;

typedef struct wk_infer wk_infer;

/* The model of checkpoint c (borrowed: copied from, not kept), for batches of up to max_batch
 * samples on `threads` threads (eng_net_new's meaning); version is c's step. A GAN draws with
 * its moving average unless live (as `pstrain sample`). Returns an owned model, or NULL with
 * one line in err (PST_EARG's: a bad max_batch or threads). */
wk_infer *wk_infer_new(const eng_ckpt *c, int max_batch, int threads, int live, char *err,
                       size_t errlen);

/* wk_infer_new of the checkpoint at path (a file, or a directory's latest: eng_ckpt_resolve),
 * read and validated by eng_ckpt_read. NULL with one line in err naming the file, and the
 * code in *rc when rc is non-NULL. Uses HDF5: one thread at a time in the process. */
wk_infer *wk_infer_load(const char *path, int max_batch, int threads, int live, int *rc, char *err,
                        size_t errlen);

/* A model with untrained (zero) weights and an empty vocabulary, for the decoder's fuzz
 * harness and tests that need a signature but no checkpoint; NULL for an unknown name. */
wk_infer *wk_infer_blank(const char *model, int max_batch, int threads, char *err, size_t errlen);

void wk_infer_free(wk_infer **m);

const wk_infer_sig *wk_infer_signature(const wk_infer *m);
int wk_infer_max_batch(const wk_infer *m);

/* One sample of input `input` (an index into the signature's inputs) into x (in_floats):
 *   FP32:  value is const float[n], n the input's per-sample element count, all finite (and
 *          images in [0, 1]);
 *   UINT8: const uint8_t[n], as FP32's count;
 *   INT64: const int64_t[n]: a seed (n 1, any value) or tokens (1 <= n; each in
 *          [0, num_words); padded or cut in front to maxlen);
 *   BYTES: const char[n]: a review's text, UTF-8 or not (bytes, as training read them).
 * Returns PST_OK, or PST_EARG with one line in err saying what was expected and found,
 * without naming the field (the caller knows it): "expected 784 values, got 783",
 * "value 17 is 1.5: expected a number in [0, 1]". Safe from any thread. */
int wk_infer_prepare(const wk_infer *m, int input, const void *value, size_t n, float *x, char *err,
                     size_t errlen);

/* The outputs of B samples: x (B, in_floats) -> y (B, out_floats), 1 <= B <= max_batch:
 * probabilities for a classifier, images for the GAN. Allocates nothing. */
void wk_infer_run(wk_infer *m, const float *x, int B, float *y);

/* An image (h, w, 1) in [lo, hi] as an 8-bit grey PNG (grey lrintf(255 (v - lo) / (hi - lo)),
 * clamped), into *png (malloc'ed: free it), *len bytes. Returns PST_OK, or PST_EIO with one
 * line in err (cairo failed). Safe from any thread. */
int wk_infer_png(const float *image, int h, int w, float lo, float hi, void **png, size_t *len,
                 char *err, size_t errlen);

#endif
