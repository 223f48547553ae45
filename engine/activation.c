/* activation.c: bias, ReLU, LeakyReLU, tanh and their gradients; plain loops the compiler
 * vectorises. Also the standalone LeakyReLU layer (Keras puts one after a
 * BatchNormalization, where no fused activation can go). */
#include "engine/activation.h"

#include "engine/base/base.h"

#include <math.h>
#include <string.h>

void eng_bias_act_forward(float *y, const float *bias, size_t rows, int n, eng_act act) {
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * (size_t)n;
        if (bias)
            for (int j = 0; j < n; j++)
                row[j] += bias[j];
        switch (act) {
        case ENG_ACT_RELU:
            for (int j = 0; j < n; j++)
                row[j] = row[j] > 0.0f ? row[j] : 0.0f;
            break;
        case ENG_ACT_LEAKY_RELU:
            for (int j = 0; j < n; j++)
                row[j] = row[j] > 0.0f ? row[j] : ENG_LEAKY_ALPHA * row[j];
            break;
        case ENG_ACT_TANH:
            for (int j = 0; j < n; j++)
                row[j] = tanhf(row[j]);
            break;
        default: /* NONE; SOFTMAX and SIGMOID are the loss's */
            break;
        }
    }
}

void eng_act_backward(float *dy, const float *y, size_t count, eng_act act) {
    switch (act) {
    case ENG_ACT_RELU:
        for (size_t i = 0; i < count; i++)
            dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case ENG_ACT_LEAKY_RELU: /* alpha > 0: y > 0 exactly where z > 0 */
        for (size_t i = 0; i < count; i++)
            dy[i] = y[i] > 0.0f ? dy[i] : ENG_LEAKY_ALPHA * dy[i];
        break;
    case ENG_ACT_TANH:
        for (size_t i = 0; i < count; i++)
            dy[i] *= 1.0f - y[i] * y[i];
        break;
    default:
        break;
    }
}

void eng_bias_backward(float *db, const float *dy, size_t rows, int n, int accumulate) {
    if (!db)
        return;
    if (!accumulate)
        memset(db, 0, sizeof(float) * (size_t)n);
    for (size_t r = 0; r < rows; r++) {
        const float *row = dy + r * (size_t)n;
        for (int j = 0; j < n; j++)
            db[j] += row[j];
    }
}

void eng_leaky_relu_forward(float *y, const float *x, size_t count, float alpha) {
    for (size_t i = 0; i < count; i++)
        y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
}

void eng_leaky_relu_backward(float *dx, const float *dy, const float *x, size_t count,
                             float alpha) {
    for (size_t i = 0; i < count; i++)
        dx[i] = x[i] > 0.0f ? dy[i] : alpha * dy[i];
}

/* --- the LeakyReLU layer's table entry --- */

static float leaky_alpha(const eng_layer_spec *s) {
    return s->alpha != 0.0f ? s->alpha : ENG_LEAKY_ALPHA;
}

static int leaky_relu_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    (void)lay;
    const float alpha = leaky_alpha(&l->spec);
    if (!(alpha > 0.0f && alpha < 1.0f))
        return pst_err(err, errlen, PST_EARG, "%s: alpha must be in (0, 1), got %g", l->name,
                       (double)alpha);
    l->out = l->in;
    return PST_OK;
}

static void leaky_relu_fwd(const eng_layer *l, const eng_fwd_args *a) {
    eng_leaky_relu_forward(a->y, a->x, (size_t)a->batch * eng_shape_size(l->in),
                           leaky_alpha(&l->spec));
}

static void leaky_relu_bwd(const eng_layer *l, const eng_bwd_args *a) {
    if (a->dx)
        eng_leaky_relu_backward(a->dx, a->dy, a->x, (size_t)a->batch * eng_shape_size(l->in),
                                leaky_alpha(&l->spec));
}

const eng_layer_ops eng_leaky_relu_ops = {
    .keras_class = "LeakyReLU",
    .keras_prefix = "leaky_re_lu",
    .build = leaky_relu_build,
    .forward = leaky_relu_fwd,
    .backward = leaky_relu_bwd,
};
