/* dropout.c: inverted dropout with stateless, per-sample masks. */
#include "engine/dropout.h"

#include "engine/base/base.h"
#include "engine/layer.h"
#include "engine/rng.h"

#include <string.h>

void eng_dropout_forward(float *y, float *mask, const float *x, int B, size_t n, float rate,
                         int training, uint64_t key, int64_t sample0) {
    if (!training || rate <= 0.0f) {
        if (y != x)
            memcpy(y, x, sizeof(float) * (size_t)B * n);
        if (training) /* rate 0: backward still multiplies by the mask */
            for (size_t i = 0; i < (size_t)B * n; i++)
                mask[i] = 1.0f;
        return;
    }
    const float scale = 1.0f / (1.0f - rate);
    /* Compare 24-bit integers so the threshold is exact and portable. */
    const uint32_t drop_below = (uint32_t)((double)rate * 16777216.0);
    for (int s = 0; s < B; s++) {
        uint64_t state = eng_hash3(key, (uint64_t)(sample0 + s), 0x44524F50ull);
        float *ms = mask + (size_t)s * n;
        for (size_t i = 0; i < n; i++) {
            uint32_t r = (uint32_t)(eng_splitmix64(&state) >> 40);
            ms[i] = r < drop_below ? 0.0f : scale;
        }
    }
    for (size_t i = 0; i < (size_t)B * n; i++)
        y[i] = x[i] * mask[i];
}

void eng_dropout_backward(float *dx, const float *dy, const float *mask, int B, size_t n,
                          int training) {
    if (!training) {
        memcpy(dx, dy, sizeof(float) * (size_t)B * n);
        return;
    }
    for (size_t i = 0; i < (size_t)B * n; i++)
        dx[i] = dy[i] * mask[i];
}

static int dropout_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    (void)lay;
    if (!(l->spec.rate >= 0.0f && l->spec.rate < 1.0f))
        return pst_err(err, errlen, PST_EARG, "%s: rate must be in [0, 1), got %g", l->name,
                       (double)l->spec.rate);
    l->out = l->in;
    l->saved_bytes = sizeof(float) * eng_shape_size(l->in);
    return PST_OK;
}

static void dropout_fwd(const eng_layer *l, const eng_fwd_args *a) {
    eng_dropout_forward(a->y, a->saved, a->x, a->batch, eng_shape_size(l->in), l->spec.rate,
                        a->training, eng_hash3(a->key, (uint64_t)l->index, 0), a->sample0);
}

static void dropout_bwd(const eng_layer *l, const eng_bwd_args *a) {
    /* Backward only follows a training forward. */
    if (a->dx)
        eng_dropout_backward(a->dx, a->dy, a->saved, a->batch, eng_shape_size(l->in), 1);
}

const eng_layer_ops eng_dropout_ops = {
    .keras_class = "Dropout",
    .keras_prefix = "dropout",
    .build = dropout_build,
    .forward = dropout_fwd,
    .backward = dropout_bwd,
};
