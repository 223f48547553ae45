/* activation.c: bias, ReLU and their gradients; plain loops the compiler vectorises. */
#include "engine/activation.h"

#include <string.h>

void eng_bias_act_forward(float *y, const float *bias, size_t rows, int n, eng_act act) {
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * (size_t)n;
        if (act == ENG_ACT_RELU) {
            for (int j = 0; j < n; j++) {
                float v = row[j] + bias[j];
                row[j] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (int j = 0; j < n; j++)
                row[j] += bias[j];
        }
    }
}

void eng_act_backward(float *dy, const float *y, size_t count, eng_act act) {
    if (act != ENG_ACT_RELU)
        return;
    for (size_t i = 0; i < count; i++)
        dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void eng_bias_backward(float *db, const float *dy, size_t rows, int n, int accumulate) {
    if (!accumulate)
        memset(db, 0, sizeof(float) * (size_t)n);
    for (size_t r = 0; r < rows; r++) {
        const float *row = dy + r * (size_t)n;
        for (int j = 0; j < n; j++)
            db[j] += row[j];
    }
}
