/* maxpool2d.h: Keras MaxPooling2D, pool (PH, PW), strides = pool, 'valid' padding.
 *
 * x (B, H, W, C) -> y (B, H/PH, W/PW, C) (floor division: trailing rows and columns are
 * dropped, as Keras does). argmax (B, OH, OW, C) bytes records which window position won,
 * the first one on ties, so backward routes each gradient to exactly one input. */
#ifndef PSTRAIN_ENGINE_MAXPOOL2D_H
#define PSTRAIN_ENGINE_MAXPOOL2D_H

#include "engine/layer.h"

#include <stdint.h>

void eng_maxpool2d_forward(float *y, uint8_t *argmax, const float *x, int B, int H, int W, int C,
                           int PH, int PW);

/* dx (B, H, W, C) written in full: zero except at each window's winner. */
void eng_maxpool2d_backward(float *dx, const float *dy, const uint8_t *argmax, int B, int H, int W,
                            int C, int PH, int PW);

#endif
