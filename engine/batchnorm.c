/* batchnorm.c: BatchNormalization forward/backward, per-channel sums in double (a conv map
 * sums B*h*w values per channel). See batchnorm.h for the state tensors and the
 * whole-batch requirement. */
#include "engine/batchnorm.h"

#include "engine/base/base.h"
#include "engine/layer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void eng_batchnorm_forward(float *y, float *xhat, float *inv_std, float *moving_mean,
                           float *moving_var, const float *x, const float *gamma, const float *beta,
                           size_t rows, int C, float momentum, float eps, int training) {
    PST_ASSERT(rows >= 1 && C >= 1 && eps > 0.0f, "rows %zu, channels %d, epsilon %g", rows, C,
               (double)eps);
    double *acc = pst_calloc(2 * (size_t)C, sizeof(double));
    double *mean = acc, *var = acc + C;
    if (training) {
        for (size_t r = 0; r < rows; r++)
            for (int c = 0; c < C; c++)
                mean[c] += x[r * C + c];
        for (int c = 0; c < C; c++)
            mean[c] /= (double)rows;
        for (size_t r = 0; r < rows; r++)
            for (int c = 0; c < C; c++) {
                const double d = x[r * C + c] - mean[c];
                var[c] += d * d;
            }
        for (int c = 0; c < C; c++) {
            var[c] /= (double)rows;
            moving_mean[c] = momentum * moving_mean[c] + (1.0f - momentum) * (float)mean[c];
            moving_var[c] = momentum * moving_var[c] + (1.0f - momentum) * (float)var[c];
        }
    } else {
        for (int c = 0; c < C; c++) {
            mean[c] = moving_mean[c];
            var[c] = moving_var[c];
        }
    }
    for (int c = 0; c < C; c++)
        inv_std[c] = (float)(1.0 / sqrt(var[c] + (double)eps));
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) {
            const float h = (float)(x[r * C + c] - mean[c]) * inv_std[c];
            xhat[r * C + c] = h;
            y[r * C + c] = gamma[c] * h + beta[c];
        }
    free(acc);
}

void eng_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                            const float *xhat, const float *inv_std, const float *gamma,
                            size_t rows, int C, int training, int accumulate) {
    double *acc = pst_calloc(2 * (size_t)C, sizeof(double));
    double *sdy = acc, *sdyx = acc + C; /* sum(dy), sum(dy * xhat) per channel */
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) {
            sdy[c] += dy[r * C + c];
            sdyx[c] += (double)dy[r * C + c] * xhat[r * C + c];
        }
    for (int c = 0; c < C; c++) {
        dgamma[c] = (accumulate ? dgamma[c] : 0.0f) + (float)sdyx[c];
        dbeta[c] = (accumulate ? dbeta[c] : 0.0f) + (float)sdy[c];
    }
    if (dx) {
        const double n = (double)rows;
        for (size_t r = 0; r < rows; r++)
            for (int c = 0; c < C; c++) {
                const size_t i = r * C + c;
                /* with g = dy * gamma: sum(g) = gamma * sdy, sum(g * xhat) = gamma * sdyx */
                dx[i] = training ? (float)(gamma[c] * inv_std[c] *
                                           (dy[i] - sdy[c] / n - xhat[i] * sdyx[c] / n))
                                 : dy[i] * gamma[c] * inv_std[c];
            }
    }
    free(acc);
}

/* --- the layer table entry --- */

static float momentum_of(const eng_layer_spec *s) {
    return s->momentum != 0.0f ? s->momentum : ENG_BN_MOMENTUM;
}

static float epsilon_of(const eng_layer_spec *s) {
    return s->epsilon != 0.0f ? s->epsilon : ENG_BN_EPSILON;
}

static int batchnorm_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    const float m = momentum_of(&l->spec), e = epsilon_of(&l->spec);
    if (!(m >= 0.0f && m < 1.0f) || !(e > 0.0f))
        return pst_err(err, errlen, PST_EARG,
                       "%s: momentum must be in [0, 1) and epsilon > 0, got %g and %g", l->name,
                       (double)m, (double)e);
    const int C = l->in.c;
    l->out = l->in;
    /* per sample: xhat; then inv_std (C) after the batch's xhat (B >= 1, so it fits) */
    l->saved_bytes = sizeof(float) * (eng_shape_size(l->in) + (size_t)C);
    static const char *const names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    static const eng_init inits[4] = {ENG_INIT_ONES, ENG_INIT_DEFAULT, ENG_INIT_DEFAULT,
                                      ENG_INIT_ONES};
    char name[2 * ENG_NAME_MAX];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s/%s", l->name, names[i]);
        int t = eng_layout_add(lay, name, 1, (int[]){C});
        if (i == 0)
            l->kernel = lay->tensors[t].offset; /* gamma, beta, moving_mean, moving_var */
        lay->tensors[t].state = i >= 2;
        l->init[i] = inits[i];
    }
    l->nparams = 4;
    return PST_OK;
}

/* The four tensors are contiguous from l->kernel: gamma, beta, moving_mean, moving_var. */
static void batchnorm_fwd(const eng_layer *l, const eng_fwd_args *a) {
    const int C = l->in.c;
    const size_t rows = (size_t)a->batch * l->in.h * l->in.w;
    float *xhat = a->saved, *inv_std = xhat + rows * C;
    /* The state tensors are written through params: the net's vector is writable memory. */
    float *state = (float *)a->params + l->kernel + 2 * (size_t)C;
    eng_batchnorm_forward(a->y, xhat, inv_std, state, state + C, a->x, a->params + l->kernel,
                          a->params + l->kernel + C, rows, C, momentum_of(&l->spec),
                          epsilon_of(&l->spec), a->training);
}

/* Backward only follows a training forward: through the batch statistics. */
static void batchnorm_bwd(const eng_layer *l, const eng_bwd_args *a) {
    const int C = l->in.c;
    const size_t rows = (size_t)a->batch * l->in.h * l->in.w;
    const float *xhat = a->saved, *inv_std = xhat + rows * C;
    float *g = a->grads + l->kernel;
    eng_batchnorm_backward(a->dx, g, g + C, a->dy, xhat, inv_std, a->params + l->kernel, rows, C, 1,
                           a->accumulate);
    memset(g + 2 * (size_t)C, 0, sizeof(float) * 2 * (size_t)C); /* state: no gradient */
}

const eng_layer_ops eng_batchnorm_ops = {
    .keras_class = "BatchNormalization",
    .keras_prefix = "batch_normalization",
    .whole_batch = 1,
    .build = batchnorm_build,
    .forward = batchnorm_fwd,
    .backward = batchnorm_bwd,
};
