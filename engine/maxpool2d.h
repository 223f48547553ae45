/* maxpool2d.h: Keras MaxPooling2D, pool (PH, PW), strides = pool, 'valid' padding.
 *
 * x (B, H, W, C) -> y (B, H/PH, W/PW, C) (floor division: trailing rows and columns are
 * dropped, as Keras does). Each window's gradient goes to exactly one input: the first
 * position (row-major in the window) holding the maximum, which the backward finds again
 * from x and y rather than from indices kept by the forward (float compares vectorise; a
 * byte per output mixed into them did not: mnist_cnn's pools took 12% of a step). */
#ifndef PSTRAIN_ENGINE_MAXPOOL2D_H
#define PSTRAIN_ENGINE_MAXPOOL2D_H

#include "engine/layer.h"

#include <stdint.h>

void eng_maxpool2d_forward(float *y, const float *x, int B, int H, int W, int C, int PH, int PW);

/* dx (B, H, W, C) written in full: zero except at each window's winner; x and y are the
 * forward's; dy is overwritten (with zeros where routed). A window whose maximum is NaN
 * routes nothing. */
void eng_maxpool2d_backward(float *dx, float *dy, const float *x, const float *y, int B, int H,
                            int W, int C, int PH, int PW);

#endif
