/* loss.c: numerically stable softmax cross-entropy (log-sum-exp with the max subtracted). */
#include "engine/loss.h"

#include <math.h>
#include <stddef.h>

double eng_softmax_xent_forward(float *probs, const float *logits, const uint8_t *labels, int B,
                                int C, int *correct) {
    double total = 0.0;
    int hits = 0;
    for (int n = 0; n < B; n++) {
        const float *z = logits + (size_t)n * C;
        float *p = probs + (size_t)n * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (z[c] > z[best])
                best = c;
        const float zmax = z[best];
        const float zlabel = z[labels[n]];
        float sum = 0.0f;
        for (int c = 0; c < C; c++) {
            p[c] = expf(z[c] - zmax);
            sum += p[c];
        }
        const float inv = 1.0f / sum;
        for (int c = 0; c < C; c++)
            p[c] *= inv;
        total += (double)(logf(sum) - (zlabel - zmax));
        hits += best == labels[n];
    }
    if (correct)
        *correct = hits;
    return total;
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
