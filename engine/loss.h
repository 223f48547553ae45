/* loss.h: the output activation fused with its cross-entropy, computed stably from logits.
 *
 * Keras pairs Dense(10, activation='softmax') with categorical_crossentropy, and
 * Dense(1, activation='sigmoid') with binary_crossentropy; fusing each pair avoids log(0)
 * and gives the exact gradients (p - onehot) / scale and (sigmoid(z) - y) / scale. */
#ifndef PSTRAIN_ENGINE_LOSS_H
#define PSTRAIN_ENGINE_LOSS_H

#include <stdint.h>

/* probs (B, C) <- softmax(logits (B, C)) (probs may equal logits). Returns the summed
 * loss over the B samples, sum -log p[label]; *correct counts samples whose arg-max
 * (first on ties) equals the label. labels[i] < C. */
double eng_softmax_xent_forward(float *probs, const float *logits, const uint8_t *labels, int B,
                                int C, int *correct);

/* probs (B, C) <- softmax(logits (B, C)) (probs may equal logits): the same bits as
 * eng_softmax_xent_forward's probabilities, for inference. */
void eng_softmax(float *probs, const float *logits, int B, int C);

/* dlogits (B, C) = (probs - onehot(labels)) / scale (dlogits may equal probs); scale is the
 * number of samples the loss is averaged over (the whole step's batch). */
void eng_softmax_xent_backward(float *dlogits, const float *probs, const uint8_t *labels, int B,
                               int C, float scale);

/* Sigmoid + binary cross-entropy of one logit per sample, labels 0 or 1: returns the summed
 * loss over the B samples, sum max(z, 0) - z y + log(1 + e^-|z|) (finite for any finite z);
 * *correct counts samples with (z > 0) == (label == 1). */
double eng_sigmoid_bce_forward(const float *logits, const uint8_t *labels, int B, int *correct);

/* dlogits (B) = (sigmoid(z) - label) / scale (dlogits may equal logits); scale as above. */
void eng_sigmoid_bce_backward(float *dlogits, const float *logits, const uint8_t *labels, int B,
                              float scale);

/* probs (B) <- sigmoid(logits (B)) (probs may equal logits), as eng_sigmoid_bce_backward
 * computes it: P(label 1), for inference. */
void eng_sigmoid(float *probs, const float *logits, int B);

#endif
