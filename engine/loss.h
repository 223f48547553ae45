/* loss.h: softmax fused with categorical cross-entropy, computed stably from logits.
 *
 * Keras pairs Dense(10, activation='softmax') with categorical_crossentropy; fusing the two
 * avoids log(0) and gives the exact gradient (p - onehot) / scale. */
#ifndef PSTRAIN_ENGINE_LOSS_H
#define PSTRAIN_ENGINE_LOSS_H

#include <stdint.h>

/* probs (B, C) <- softmax(logits (B, C)) (probs may equal logits). Returns the summed
 * loss over the B samples, sum -log p[label]; *correct counts samples whose arg-max
 * (first on ties) equals the label. labels[i] < C. */
double eng_softmax_xent_forward(float *probs, const float *logits, const uint8_t *labels, int B,
                                int C, int *correct);

/* dlogits (B, C) = (probs - onehot(labels)) / scale (dlogits may equal probs); scale is the
 * number of samples the loss is averaged over (the whole step's batch). */
void eng_softmax_xent_backward(float *dlogits, const float *probs, const uint8_t *labels, int B,
                               int C, float scale);

#endif
