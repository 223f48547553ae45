/* conv2d_transpose.c: Conv2DTranspose as Conv2D's input gradient: one sgemm and a col2im
 * forward, an im2col and two sgemms backward (conv2d.c's im2col/col2im). */
#include "engine/conv2d_transpose.h"

#include "engine/activation.h"
#include "engine/base/base.h"
#include "engine/conv2d.h"

#include <cblas.h>

void eng_conv2d_transpose_size(int in, int k, int s, eng_padding pad, int *out, int *pad_lo) {
    PST_ASSERT(in >= 1 && k >= 1 && s >= 1, "in %d, kernel %d, stride %d", in, k, s);
    if (pad == ENG_PAD_SAME) {
        int conv_out;
        *out = in * s;
        eng_conv_same(*out, k, s, &conv_out, pad_lo);
        PST_ASSERT(conv_out == in, "same conv of %d by stride %d gives %d, not %d", *out, s,
                   conv_out, in);
    } else {
        *out = (in - 1) * s + k;
        *pad_lo = 0;
    }
}

void eng_conv2d_transpose_forward(float *y, float *col, const float *x, const float *kernel,
                                  const float *bias, int B, int H, int W, int Cin, int KH, int KW,
                                  int F, int S, int PT, int PL, int OH, int OW, eng_act act) {
    const int M = B * H * W, K = KH * KW * F;
    /* col (M, K) = x (M, Cin) . kernel^T, kernel read as (K, Cin) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, Cin, 1.0f, x, Cin, kernel, Cin, 0.0f,
                col, K);
    /* The conv F -> Cin runs over OH x OW and gives H x W: scatter its columns back. */
    eng_conv2d_col2im(y, col, B, OH, OW, F, KH, KW, S, PT, PL, H, W);
    eng_bias_act_forward(y, bias, (size_t)B * OH * OW, F, act);
}

void eng_conv2d_transpose_backward(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                                   const float *x, const float *y, const float *kernel, int B,
                                   int H, int W, int Cin, int KH, int KW, int F, int S, int PT,
                                   int PL, int OH, int OW, eng_act act, int accumulate) {
    const int M = B * H * W, K = KH * KW * F;
    eng_act_backward(dy, y, (size_t)B * OH * OW * F, act);
    eng_bias_backward(dbias, dy, (size_t)B * OH * OW, F, accumulate);
    eng_conv2d_im2col(col, dy, B, OH, OW, F, KH, KW, S, PT, PL, H, W);
    /* dkernel (K, Cin) (+)= dcol^T (K, M) . x (M, Cin) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, Cin, M, 1.0f, col, K, x, Cin,
                accumulate ? 1.0f : 0.0f, dkernel, Cin);
    /* dx (M, Cin) = dcol (M, K) . kernel (K, Cin): the strided conv of dy */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, Cin, K, 1.0f, col, K, kernel, Cin,
                    0.0f, dx, Cin);
}

/* --- the layer table entry --- */

static void geom(const eng_layer *l, int *S, int *PT, int *PL) {
    int OH, OW;
    *S = l->spec.stride > 0 ? l->spec.stride : 1;
    eng_conv2d_transpose_size(l->in.h, l->spec.kh, *S, l->spec.padding, &OH, PT);
    eng_conv2d_transpose_size(l->in.w, l->spec.kw, *S, l->spec.padding, &OW, PL);
}

static int conv2d_transpose_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    const eng_layer_spec *s = &l->spec;
    if (s->units < 1 || s->kh < 1 || s->kw < 1 || s->stride < 0 ||
        (s->padding != ENG_PAD_VALID && s->padding != ENG_PAD_SAME))
        return pst_err(err, errlen, PST_EARG,
                       "%s: kernel %dx%d, %d filters, stride %d, padding %d: expected positive "
                       "sizes and padding valid or same",
                       l->name, s->kh, s->kw, s->units, s->stride, (int)s->padding);
    if (l->crop_h > 1 || l->crop_w > 1)
        return pst_err(err, errlen, PST_EARG, "%s: a MaxPooling2D after it is not supported",
                       l->name);
    const int S = s->stride > 0 ? s->stride : 1;
    int OH, OW, PT, PL;
    eng_conv2d_transpose_size(l->in.h, s->kh, S, s->padding, &OH, &PT);
    eng_conv2d_transpose_size(l->in.w, s->kw, S, s->padding, &OW, &PL);
    l->out = (eng_shape){OH, OW, s->units};
    l->saved_bytes = sizeof(float) * (size_t)l->in.h * l->in.w * s->kh * s->kw * s->units;
    /* Keras keeps a transposed conv's kernel as (kh, kw, out, in) */
    eng_layer_add_kernel_bias(l, lay, 4, (int[]){s->kh, s->kw, s->units, l->in.c}, s->units);
    return PST_OK;
}

static void conv2d_transpose_fwd(const eng_layer *l, const eng_fwd_args *a) {
    int S, PT, PL;
    geom(l, &S, &PT, &PL);
    eng_conv2d_transpose_forward(a->y, a->saved, a->x, a->params + l->kernel,
                                 l->spec.no_bias ? NULL : a->params + l->bias, a->batch, l->in.h,
                                 l->in.w, l->in.c, l->spec.kh, l->spec.kw, l->spec.units, S, PT, PL,
                                 l->out.h, l->out.w, l->spec.act);
}

static void conv2d_transpose_bwd(const eng_layer *l, const eng_bwd_args *a) {
    int S, PT, PL;
    geom(l, &S, &PT, &PL);
    eng_conv2d_transpose_backward(
        a->dx, a->grads + l->kernel, l->spec.no_bias ? NULL : a->grads + l->bias, a->dy, a->saved,
        a->x, a->y, a->params + l->kernel, a->batch, l->in.h, l->in.w, l->in.c, l->spec.kh,
        l->spec.kw, l->spec.units, S, PT, PL, l->out.h, l->out.w, l->spec.act, a->accumulate);
}

const eng_layer_ops eng_conv2d_transpose_ops = {
    .keras_class = "Conv2DTranspose",
    .keras_prefix = "conv2d_transpose",
    .build = conv2d_transpose_build,
    .forward = conv2d_transpose_fwd,
    .backward = conv2d_transpose_bwd,
};
