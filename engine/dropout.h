/* dropout.h: Keras Dropout (inverted: kept units are scaled by 1/(1-rate) in training, so
 * inference is the identity).
 *
 * The mask of sample s is drawn from eng_hash3(key, sample0 + s, element): it depends on
 * the step's key and the sample's place in the step's batch, never on which thread or
 * process computes it. In training, mask (B, n) holds 0 or 1/(1-rate) (all 1 at rate 0)
 * for backward. */
#ifndef PSTRAIN_ENGINE_DROPOUT_H
#define PSTRAIN_ENGINE_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

void eng_dropout_forward(float *y, float *mask, const float *x, int B, size_t n, float rate,
                         int training, uint64_t key, int64_t sample0);
void eng_dropout_backward(float *dx, const float *dy, const float *mask, int B, size_t n,
                          int training);

#endif
