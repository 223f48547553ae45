/* conv2d.c: Conv2D forward/backward. In NHWC with stride 1, the KW*C inputs under one
 * kernel row are contiguous, so each im2col row is KH copies of KW*C floats and col2im is
 * KH vector adds. */
#include "engine/conv2d.h"

#include "engine/activation.h"
#include "engine/base.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

/* Copies n floats; short runs (a first layer's KW*C is 3) inline, long ones via memcpy. */
static inline void copy_run(float *restrict d, const float *restrict s, size_t n) {
    if (n <= 8) {
        for (size_t j = 0; j < n; j++)
            d[j] = s[j];
    } else {
        memcpy(d, s, n * sizeof(float));
    }
}

static void im2col(float *restrict col, const float *restrict x, int B, int H, int W, int C, int KH,
                   int KW, int OH, int OW) {
    const size_t span = (size_t)KW * C, K = (size_t)KH * span;
    for (int n = 0; n < B; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *row = col + (((size_t)n * OH + oh) * OW + ow) * K;
                for (int ki = 0; ki < KH; ki++)
                    copy_run(row + ki * span, x + (((size_t)n * H + oh + ki) * W + ow) * C, span);
            }
}

static void col2im(float *restrict dx, const float *restrict col, int B, int H, int W, int C,
                   int KH, int KW, int OH, int OW) {
    const size_t span = (size_t)KW * C, K = (size_t)KH * span;
    memset(dx, 0, sizeof(float) * (size_t)B * H * W * C);
    for (int n = 0; n < B; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *row = col + (((size_t)n * OH + oh) * OW + ow) * K;
                for (int ki = 0; ki < KH; ki++) {
                    float *d = dx + (((size_t)n * H + oh + ki) * W + ow) * C;
                    const float *s = row + ki * span;
                    for (size_t j = 0; j < span; j++)
                        d[j] += s[j];
                }
            }
}

void eng_conv2d_forward_part(float *y, float *col, const float *x, const float *kernel,
                             const float *bias, int B, int H, int W, int C, int KH, int KW, int F,
                             int OH, int OW, eng_act act) {
    ENG_ASSERT(OH >= 1 && OH <= H - KH + 1 && OW >= 1 && OW <= W - KW + 1,
               "output %dx%d from input %dx%d, kernel %dx%d", OH, OW, H, W, KH, KW);
    const int M = B * OH * OW, K = KH * KW * C;
    im2col(col, x, B, H, W, C, KH, KW, OH, OW);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, F, K, 1.0f, col, K, kernel, F, 0.0f,
                y, F);
    eng_bias_act_forward(y, bias, (size_t)M, F, act);
}

void eng_conv2d_backward_part(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                              const float *y, const float *kernel, int B, int H, int W, int C,
                              int KH, int KW, int F, int OH, int OW, eng_act act, int accumulate) {
    const int M = B * OH * OW, K = KH * KW * C;
    eng_act_backward(dy, y, (size_t)M * F, act);
    eng_bias_backward(dbias, dy, (size_t)M, F, accumulate);
    /* dkernel (K, F) (+)= col^T (K, M) . dy (M, F) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, F, M, 1.0f, col, K, dy, F,
                accumulate ? 1.0f : 0.0f, dkernel, F);
    if (!dx)
        return;
    /* dcol (M, K) = dy (M, F) . kernel^T (F, K), into col's memory, then scattered back. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, F, 1.0f, dy, F, kernel, F, 0.0f, col,
                K);
    col2im(dx, col, B, H, W, C, KH, KW, OH, OW);
}

void eng_conv2d_forward(float *y, float *col, const float *x, const float *kernel,
                        const float *bias, int B, int H, int W, int C, int KH, int KW, int F,
                        eng_act act) {
    eng_conv2d_forward_part(y, col, x, kernel, bias, B, H, W, C, KH, KW, F, H - KH + 1, W - KW + 1,
                            act);
}

void eng_conv2d_backward(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                         const float *y, const float *kernel, int B, int H, int W, int C, int KH,
                         int KW, int F, eng_act act, int accumulate) {
    eng_conv2d_backward_part(dx, dkernel, dbias, dy, col, y, kernel, B, H, W, C, KH, KW, F,
                             H - KH + 1, W - KW + 1, act, accumulate);
}

/* --- the layer table entry --- */

static int conv2d_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    const eng_layer_spec *s = &l->spec;
    if (s->units < 1 || s->kh < 1 || s->kw < 1 || s->kh > l->in.h || s->kw > l->in.w)
        return eng_err(err, errlen, ENG_EARG,
                       "%s: kernel %dx%d with %d filters does not fit input (%d, %d, %d)", l->name,
                       s->kh, s->kw, s->units, l->in.h, l->in.w, l->in.c);
    l->keras_out = (eng_shape){l->in.h - s->kh + 1, l->in.w - s->kw + 1, s->units};
    /* Computed outputs: the model may ask for whole multiples of a following pool. */
    l->out = l->keras_out;
    if (l->crop_h > 1 && l->out.h >= l->crop_h) /* else the pool reports the misfit */
        l->out.h -= l->out.h % l->crop_h;
    if (l->crop_w > 1 && l->out.w >= l->crop_w)
        l->out.w -= l->out.w % l->crop_w;
    l->saved_bytes = sizeof(float) * (size_t)l->out.h * l->out.w * s->kh * s->kw * l->in.c;
    char name[2 * ENG_NAME_MAX];
    snprintf(name, sizeof name, "%s/kernel", l->name);
    int k = eng_layout_add(lay, name, 4, (int[]){s->kh, s->kw, l->in.c, s->units});
    snprintf(name, sizeof name, "%s/bias", l->name);
    int b = eng_layout_add(lay, name, 1, (int[]){s->units});
    l->nparams = 2;
    l->kernel = lay->tensors[k].offset;
    l->bias = lay->tensors[b].offset;
    return ENG_OK;
}

static void conv2d_fwd(const eng_layer *l, const eng_fwd_args *a) {
    eng_conv2d_forward_part(a->y, a->saved, a->x, a->params + l->kernel, a->params + l->bias,
                            a->batch, l->in.h, l->in.w, l->in.c, l->spec.kh, l->spec.kw,
                            l->spec.units, l->out.h, l->out.w, l->spec.act);
}

static void conv2d_bwd(const eng_layer *l, const eng_bwd_args *a) {
    eng_conv2d_backward_part(a->dx, a->grads + l->kernel, a->grads + l->bias, a->dy, a->saved, a->y,
                             a->params + l->kernel, a->batch, l->in.h, l->in.w, l->in.c, l->spec.kh,
                             l->spec.kw, l->spec.units, l->out.h, l->out.w, l->spec.act,
                             a->accumulate);
}

const eng_layer_ops eng_conv2d_ops = {
    .keras_class = "Conv2D",
    .keras_prefix = "conv2d",
    .build = conv2d_build,
    .forward = conv2d_fwd,
    .backward = conv2d_bwd,
};
