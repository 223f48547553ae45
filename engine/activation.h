/* activation.h: bias + activation epilogues shared by Conv2D, Conv2DTranspose and Dense,
 * their backward passes, and the standalone LeakyReLU layer. Rows are samples (Dense) or
 * output pixels (convolutions); n is the channel count, fastest-varying. */
#ifndef PSTRAIN_ENGINE_ACTIVATION_H
#define PSTRAIN_ENGINE_ACTIVATION_H

#include "engine/layer.h"

#include <stddef.h>

/* y[r, j] = act(y[r, j] + bias[j]) for r < rows, j < n; bias may be NULL (use_bias=False).
 * SOFTMAX and SIGMOID are left to the loss; LEAKY_RELU uses ENG_LEAKY_ALPHA. */
void eng_bias_act_forward(float *y, const float *bias, size_t rows, int n, eng_act act);

/* dy[i] *= act'(z[i]) from the activation's output y, for i < count: ReLU 0 where y <= 0,
 * LeakyReLU ENG_LEAKY_ALPHA where y <= 0, tanh 1 - y^2; the others leave dy. */
void eng_act_backward(float *dy, const float *y, size_t count, eng_act act);

/* db[j] = sum over rows of dy[r, j], added to db when accumulate, else written. db NULL:
 * no bias, nothing to do. */
void eng_bias_backward(float *db, const float *dy, size_t rows, int n, int accumulate);

/* The LeakyReLU layer: y = x > 0 ? x : alpha * x over count floats (y may be x). */
void eng_leaky_relu_forward(float *y, const float *x, size_t count, float alpha);
/* dx = dy * (x > 0 ? 1 : alpha) over count floats (dx may be dy). */
void eng_leaky_relu_backward(float *dx, const float *dy, const float *x, size_t count, float alpha);

#endif
