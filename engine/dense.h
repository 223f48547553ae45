/* dense.h: Keras Dense. x (B, K) . kernel (K, N) + bias (N) -> y (B, N), then the fused
 * activation (SOFTMAX is left to the loss: y holds logits). bias and dbias may be NULL: a
 * Dense with use_bias=False (spec no_bias) has no bias tensor. */
#ifndef PSTRAIN_ENGINE_DENSE_H
#define PSTRAIN_ENGINE_DENSE_H

#include "engine/layer.h"

void eng_dense_forward(float *y, const float *x, const float *kernel, const float *bias, int B,
                       int K, int N, eng_act act);

/* dkernel, dbias written, or added to when accumulate; dx (may be NULL) written; dy
 * overwritten with the pre-activation gradient. */
void eng_dense_backward(float *dx, float *dkernel, float *dbias, float *dy, const float *x,
                        const float *y, const float *kernel, int B, int K, int N, eng_act act,
                        int accumulate);

#endif
