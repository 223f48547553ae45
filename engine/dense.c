/* dense.c: Dense forward/backward as three sgemms. */
#include "engine/dense.h"

#include "engine/activation.h"
#include "engine/base/base.h"

#include <cblas.h>
#include <string.h>

void eng_dense_forward(float *y, const float *x, const float *kernel, const float *bias, int B,
                       int K, int N, eng_act act) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, N, K, 1.0f, x, K, kernel, N, 0.0f, y,
                N);
    eng_bias_act_forward(y, bias, (size_t)B, N, act);
}

void eng_dense_backward(float *dx, float *dkernel, float *dbias, float *dy, const float *x,
                        const float *y, const float *kernel, int B, int K, int N, eng_act act,
                        int accumulate) {
    eng_act_backward(dy, y, (size_t)B * N, act);
    eng_bias_backward(dbias, dy, (size_t)B, N, accumulate);
    /* dkernel (K, N) (+)= x^T (K, B) . dy (B, N) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, B, 1.0f, x, K, dy, N,
                accumulate ? 1.0f : 0.0f, dkernel, N);
    /* dx (B, K) = dy (B, N) . kernel^T (N, K) */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, K, N, 1.0f, dy, N, kernel, N, 0.0f,
                    dx, K);
}

static int dense_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    const int K = (int)eng_shape_size(l->in);
    if (l->in.h != 1 || l->in.w != 1)
        return pst_err(err, errlen, PST_EARG,
                       "%s: expects a flat input, got (%d, %d, %d): add a Flatten before it",
                       l->name, l->in.h, l->in.w, l->in.c);
    if (l->spec.units < 1)
        return pst_err(err, errlen, PST_EARG, "%s: units must be >= 1, got %d", l->name,
                       l->spec.units);
    l->out = (eng_shape){1, 1, l->spec.units};
    /* The kernel gradient from a whole window of passes (eng_bwd_args) keeps each sample's
     * input and output gradient, K + N floats, in saved: worth it when a window of up to 32
     * samples keeps less than the gradient's K * N floats it would otherwise read and write
     * at every pass (1600 -> 128 on SkylakeX: 90 us per 32 samples against 8 x 17 us in
     * passes of 4), and for a layer that narrows (K >= N): one that widens, as a GAN
     * generator's 100 -> 12544, runs the batch in one pass (BatchNormalization follows it)
     * and would only hold the rows. */
    const size_t N = (size_t)l->spec.units;
    if ((size_t)K >= N && ((size_t)K + N) * 32 < (size_t)K * N)
        l->saved_bytes = sizeof(float) * ((size_t)K + N);
    /* use_bias=False (no_bias): no bias tensor at all, as in Keras's layout */
    eng_layer_add_kernel_bias(l, lay, 2, (int[]){K, l->spec.units}, l->spec.units);
    return PST_OK;
}

static void dense_fwd(const eng_layer *l, const eng_fwd_args *a) {
    eng_dense_forward(a->y, a->x, a->params + l->kernel,
                      l->spec.no_bias ? NULL : a->params + l->bias, a->batch, l->in.c,
                      l->spec.units, l->spec.act);
}

/* The backward with the kernel gradient made once per window: sample r of the window keeps
 * its input and output gradient as row r of saved, (K + N) floats, x then dy. */
static void dense_bwd_window(const eng_layer *l, const eng_bwd_args *a) {
    const int K = l->in.c, N = l->spec.units, B = a->batch;
    float *dy = a->dy, *rows = a->saved;
    eng_act_backward(dy, a->y, (size_t)B * N, l->spec.act);
    eng_bias_backward(l->spec.no_bias ? NULL : a->grads + l->bias, dy, (size_t)B, N, a->accumulate);
    if (a->dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, K, N, 1.0f, dy, N,
                    a->params + l->kernel, N, 0.0f, a->dx, K);
    const float *x = a->x, *g = dy;
    int ld_x = K, ld_g = N, n = B;
    if (a->row0 > 0 || !a->flush) { /* keep this pass's rows; a one-pass window needs none */
        const size_t ld = (size_t)K + N;
        for (int r = 0; r < B; r++) {
            memcpy(rows + (a->row0 + r) * ld, a->x + (size_t)r * K, sizeof(float) * K);
            memcpy(rows + (a->row0 + r) * ld + K, dy + (size_t)r * N, sizeof(float) * N);
        }
        x = rows, g = rows + K, ld_x = ld_g = K + N, n = a->row0 + B;
    }
    if (!a->flush)
        return;
    /* dkernel (K, N) (+)= x^T (K, n) . dy (n, N) over the window */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, n, 1.0f, x, ld_x, g, ld_g,
                a->flush_accumulate ? 1.0f : 0.0f, a->grads + l->kernel, N);
}

static void dense_bwd(const eng_layer *l, const eng_bwd_args *a) {
    if (l->saved_bytes) {
        dense_bwd_window(l, a);
        return;
    }
    eng_dense_backward(a->dx, a->grads + l->kernel, l->spec.no_bias ? NULL : a->grads + l->bias,
                       a->dy, a->x, a->y, a->params + l->kernel, a->batch, l->in.c, l->spec.units,
                       l->spec.act, a->accumulate);
}

const eng_layer_ops eng_dense_ops = {
    .keras_class = "Dense",
    .keras_prefix = "dense",
    .build = dense_build,
    .forward = dense_fwd,
    .backward = dense_bwd,
};
