/* conv2d_direct.h: Conv2D without im2col, for layers with few input taps (a first layer:
 * one or three channels). Stride 1, 'valid', the top-left OH x OW outputs, the shapes and
 * semantics of conv2d.h's _part functions: x (B, H, W, C) NHWC; kernel (KH, KW, C, F) as
 * Keras stores it; y (B, OH, OW, F); OH <= H-KH+1, OW <= W-KW+1.
 *
 * Why: with KH*KW*C = 9 the im2col GEMMs are all packing (K = 9, or a 9 x F result), while
 * a direct loop keeps the kernel (or the kernel gradient) in vector registers and streams
 * the pixels past it. Correct for any shape; fast where eng_conv2d_direct_suits. No
 * allocation; a fixed summation order (the same bits every run on one build and machine). */
#ifndef PSTRAIN_ENGINE_CONV2D_DIRECT_H
#define PSTRAIN_ENGINE_CONV2D_DIRECT_H

#include "engine/layer.h"

/* Whether the direct loops suit this layer: 1 when the kernel's taps KH*KW*C are at most
 * ENG_CONV2D_DIRECT_MAX_TAPS, else 0 (im2col + sgemm is the better choice). Any F: the
 * loops take the filters 32 at a time. */
#define ENG_CONV2D_DIRECT_MAX_TAPS 9
int eng_conv2d_direct_suits(int KH, int KW, int C, int F);

/* y = act(conv(x, kernel) + bias): bias may be NULL (no bias). */
void eng_conv2d_direct_forward(float *y, const float *x, const float *kernel, const float *bias,
                               int B, int H, int W, int C, int KH, int KW, int F, int OH, int OW,
                               eng_act act);

/* dkernel (and dbias, may be NULL) written, or added to when accumulate; dx (may be NULL:
 * a first layer) written, zeros where no computed output reads; dy overwritten with the
 * pre-activation gradient. x is the forward's input, y its output. */
void eng_conv2d_direct_backward(float *dx, float *dkernel, float *dbias, float *dy, const float *y,
                                const float *x, const float *kernel, int B, int H, int W, int C,
                                int KH, int KW, int F, int OH, int OW, eng_act act, int accumulate);

#endif
