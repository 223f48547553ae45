/* loss.c: numerically stable softmax cross-entropy (log-sum-exp with the max subtracted) and
 * sigmoid binary cross-entropy (exp only of -|z|). */
#include "engine/loss.h"

#include "engine/base/base.h"

#include <math.h>
#include <stddef.h>

/* p (C) <- softmax(z (C)) shifted by its largest logit *zmax = z[*best] (first on ties); p
 * may equal z. Returns the sum of exp(z - zmax) the row was divided by. */
static float softmax_row(float *p, const float *z, int C, int *best, float *zmax_out) {
    int b = 0;
    for (int c = 1; c < C; c++)
        if (z[c] > z[b])
            b = c;
    const float zmax = z[b];
    *zmax_out = zmax;
    float sum = 0.0f;
    for (int c = 0; c < C; c++) {
        p[c] = expf(z[c] - zmax);
        sum += p[c];
    }
    const float inv = 1.0f / sum;
    for (int c = 0; c < C; c++)
        p[c] *= inv;
    *best = b;
    return sum;
}

double eng_softmax_xent_forward(float *probs, const float *logits, const uint8_t *labels, int B,
                                int C, int *correct) {
    double total = 0.0;
    int hits = 0;
    for (int n = 0; n < B; n++) {
        const float *z = logits + (size_t)n * C;
        float *p = probs + (size_t)n * C;
        const float zlabel = z[labels[n]]; /* before p, which may be z, overwrites it */
        int best;
        float zmax;
        const float sum = softmax_row(p, z, C, &best, &zmax);
        total += (double)(logf(sum) - (zlabel - zmax));
        hits += best == labels[n];
    }
    if (correct)
        *correct = hits;
    return total;
}

void eng_softmax(float *probs, const float *logits, int B, int C) {
    for (int n = 0; n < B; n++) {
        int best;
        float zmax;
        softmax_row(probs + (size_t)n * C, logits + (size_t)n * C, C, &best, &zmax);
    }
}

void eng_softmax_xent_backward(float *dlogits, const float *probs, const uint8_t *labels, int B,
                               int C, float scale) {
    const float inv = 1.0f / scale;
    for (int n = 0; n < B; n++) {
        const float *p = probs + (size_t)n * C;
        float *d = dlogits + (size_t)n * C;
        for (int c = 0; c < C; c++)
            d[c] = (p[c] - (c == labels[n] ? 1.0f : 0.0f)) * inv;
    }
}

/* The label as 0 or 1; anything else is a data set bug. */
static inline int binary_label(const uint8_t *labels, int n) {
    PST_ASSERT(labels[n] <= 1, "label %d of sample %d: expected 0 or 1", labels[n], n);
    return labels[n];
}

double eng_sigmoid_bce_forward(const float *logits, const uint8_t *labels, int B, int *correct) {
    double total = 0.0;
    int hits = 0;
    for (int n = 0; n < B; n++) {
        const double z = logits[n];
        const int y = binary_label(labels, n);
        /* -y log s(z) - (1 - y) log(1 - s(z)), rewritten so exp never overflows */
        total += fmax(z, 0.0) - z * y + log1p(exp(-fabs(z)));
        hits += (z > 0.0) == (y == 1);
    }
    if (correct)
        *correct = hits;
    return total;
}

/* sigmoid(z) with exp only of -|z| (e <= 1: never overflows) */
static inline float sigmoid(float z) {
    const float e = expf(-fabsf(z));
    return z >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

void eng_sigmoid_bce_backward(float *dlogits, const float *logits, const uint8_t *labels, int B,
                              float scale) {
    const float inv = 1.0f / scale;
    for (int n = 0; n < B; n++)
        dlogits[n] = (sigmoid(logits[n]) - (float)binary_label(labels, n)) * inv;
}

void eng_sigmoid(float *probs, const float *logits, int B) {
    for (int n = 0; n < B; n++)
        probs[n] = sigmoid(logits[n]);
}
