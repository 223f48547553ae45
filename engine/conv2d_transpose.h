/* conv2d_transpose.h: Keras Conv2DTranspose ("deconvolution"), stride S >= 1, 'same' or
 * 'valid' padding, bias optional, fused activation.
 *
 * x (B, H, W, Cin) NHWC; kernel (KH, KW, F, Cin) as Keras stores it (output channels
 * before input channels: it is the kernel of the Conv2D F -> Cin whose input gradient this
 * layer computes); y (B, OH, OW, F). TF semantics: the forward is the transpose (input
 * gradient) of conv2d with the same kernel, stride and padding on an input of OH x OW:
 * 'same': OH = H*S, leading pad as eng_conv_same(OH, KH, S) ('same' conv2d of OH gives H);
 * 'valid': OH = (H-1)*S + KH, no pad. (Keras output_padding is not supported.)
 *
 * Forward: col (B*H*W, KH*KW*F) = x (B*H*W, Cin) . kernel^T, y = col2im(col) + bias, act.
 * Backward: dcol = im2col(dy), dx = dcol . kernel (a strided conv), dkernel = dcol^T . x.
 * col is the caller's scratch of (B*H*W, KH*KW*F) floats for both. */
#ifndef PSTRAIN_ENGINE_CONV2D_TRANSPOSE_H
#define PSTRAIN_ENGINE_CONV2D_TRANSPOSE_H

#include "engine/layer.h"

/* Output size and leading pad of one axis for input size in (see above). */
void eng_conv2d_transpose_size(int in, int k, int s, eng_padding pad, int *out, int *pad_lo);

/* y (B, OH, OW, F) written; bias (F) may be NULL. PT, PL, OH, OW from
 * eng_conv2d_transpose_size. */
void eng_conv2d_transpose_forward(float *y, float *col, const float *x, const float *kernel,
                                  const float *bias, int B, int H, int W, int Cin, int KH, int KW,
                                  int F, int S, int PT, int PL, int OH, int OW, eng_act act);

/* dkernel (KH, KW, F, Cin) and dbias (F; may be NULL) written, or added to when accumulate;
 * dx (B, H, W, Cin; may be NULL) written; dy is overwritten with the pre-activation
 * gradient and col with the im2col of dy. y is forward's output (for the activation). */
void eng_conv2d_transpose_backward(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                                   const float *x, const float *y, const float *kernel, int B,
                                   int H, int W, int Cin, int KH, int KW, int F, int S, int PT,
                                   int PL, int OH, int OW, eng_act act, int accumulate);

#endif
