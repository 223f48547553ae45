/* conv2d.h: Keras Conv2D with 'valid' padding and stride 1, as im2col + one sgemm.
 *
 * x (B, H, W, C) NHWC; kernel (KH, KW, C, F) as Keras stores it, which read row-major is
 * exactly the (KH*KW*C, F) matrix the im2col rows multiply; y (B, OH, OW, F) with
 * OH = H-KH+1, OW = W-KW+1. col is (B*OH*OW, KH*KW*C): forward fills it and backward reads
 * it for the kernel gradient, then reuses it for the input gradient. */
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

#endif
