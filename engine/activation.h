/* activation.h: bias + activation epilogues shared by Conv2D and Dense, and their
 * backward passes. Rows are samples (Dense) or output pixels (Conv2D); n is the channel
 * count, fastest-varying. */
#ifndef PSTRAIN_ENGINE_ACTIVATION_H
#define PSTRAIN_ENGINE_ACTIVATION_H

#include "engine/layer.h"

#include <stddef.h>

/* y[r, j] = act(y[r, j] + bias[j]) for r < rows, j < n. SOFTMAX is left to the loss. */
void eng_bias_act_forward(float *y, const float *bias, size_t rows, int n, eng_act act);

/* dy[i] = 0 where the activation's derivative is 0 (ReLU: y <= 0), for i < count. */
void eng_act_backward(float *dy, const float *y, size_t count, eng_act act);

/* db[j] = sum over rows of dy[r, j], added to db when accumulate, else written. */
void eng_bias_backward(float *db, const float *dy, size_t rows, int n, int accumulate);

#endif
