/* conv2d.h: Keras Conv2D, as im2col + one sgemm: stride 1 or more (spec.stride), 'valid'
 * or 'same' padding (spec.padding), bias optional (spec.no_bias).
 *
 * x (B, H, W, C) NHWC; kernel (KH, KW, C, F) as Keras stores it, which read row-major is
 * exactly the (KH*KW*C, F) matrix the im2col rows multiply; y (B, OH, OW, F) with
 * OH = H-KH+1, OW = W-KW+1 ('valid', stride 1). col is (B*OH*OW, KH*KW*C): forward fills
 * it and backward reads it for the kernel gradient, then reuses it for the input gradient.
 *
 * Strided, padded: output (oh, ow) reads input rows oh*S - PT .. + KH-1 and columns
 * ow*S - PL .. + KW-1, zeros outside the input. Keras 'same' (eng_conv_same): OH =
 * ceil(H / S), pad total max((OH-1)*S + KH - H, 0), PT = total / 2 (the extra at the bottom;
 * likewise for columns); 'valid': PT = PL = 0, OH = (H-KH) / S + 1. */
#ifndef PSTRAIN_ENGINE_CONV2D_H
#define PSTRAIN_ENGINE_CONV2D_H

#include "engine/layer.h"

void eng_conv2d_forward(float *y, float *col, const float *x, const float *kernel,
                        const float *bias, int B, int H, int W, int C, int KH, int KW, int F,
                        eng_act act);

/* dkernel, dbias written, or added to when accumulate; dx (may be NULL) written; dy is
 * overwritten with the pre-activation gradient and col with the column gradient. */
void eng_conv2d_backward(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                         const float *y, const float *kernel, int B, int H, int W, int C, int KH,
                         int KW, int F, eng_act act, int accumulate);

/* The same, computing only the top-left OH x OW outputs (OH <= H-KH+1, OW <= W-KW+1): y is
 * (B, OH, OW, F) and col (B*OH*OW, KH*KW*C). A MaxPooling2D that floors away the last row
 * and column never reads them, so the model skips them: inputs that feed only those
 * outputs get a zero gradient, as they would anyway. */
void eng_conv2d_forward_part(float *y, float *col, const float *x, const float *kernel,
                             const float *bias, int B, int H, int W, int C, int KH, int KW, int F,
                             int OH, int OW, eng_act act);
void eng_conv2d_backward_part(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                              const float *y, const float *kernel, int B, int H, int W, int C,
                              int KH, int KW, int F, int OH, int OW, eng_act act, int accumulate);

/* The layer's algorithm from l->conv (eng_conv_algo) and its shapes: l->wino and the
 * memory sizes (saved, scratch, shared). ENG_CONV_AUTO's rule, with its figures, is in
 * conv2d.c; a pinned Winograd runs where the layer is 3x3, stride 1, 'valid', im2col
 * elsewhere. Called by build, and again when the model's choice changes. */
void eng_conv2d_plan(eng_layer *l);
/* "im2col", "winograd F(2x2,3x3)" or "winograd F(4x4,3x3)": for summaries and logs. */
const char *eng_conv2d_algo_name(const eng_layer *l);

/* Keras/TF 'same' along one axis: *out = ceil(in / s), *pad_lo = the leading zeros. */
void eng_conv_same(int in, int k, int s, int *out, int *pad_lo);

/* The general forms (stride S, leading pads PT, PL, OH x OW outputs computed). bias and
 * dbias may be NULL (no bias). Shapes and contracts as above. */
void eng_conv2d_forward_strided(float *y, float *col, const float *x, const float *kernel,
                                const float *bias, int B, int H, int W, int C, int KH, int KW,
                                int F, int S, int PT, int PL, int OH, int OW, eng_act act);
void eng_conv2d_backward_strided(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                                 const float *y, const float *kernel, int B, int H, int W, int C,
                                 int KH, int KW, int F, int S, int PT, int PL, int OH, int OW,
                                 eng_act act, int accumulate);

/* im2col and its adjoint for that geometry: col (B*OH*OW, KH*KW*C) from x (B, H, W, C);
 * col2im writes dx (zeroed first) with the sums. Conv2DTranspose runs on these. */
void eng_conv2d_im2col(float *col, const float *x, int B, int H, int W, int C, int KH, int KW,
                       int S, int PT, int PL, int OH, int OW);
void eng_conv2d_col2im(float *dx, const float *col, int B, int H, int W, int C, int KH, int KW,
                       int S, int PT, int PL, int OH, int OW);

#endif
