/* conv2d.c: Conv2D forward/backward, any stride, 'valid' or 'same' padding. In NHWC the
 * KW*C inputs under one kernel row are contiguous (whatever the stride), so each im2col row
 * is KH copies of at most KW*C floats (zeros where padding) and col2im is KH vector adds. */
#include "engine/conv2d.h"

#include "engine/activation.h"
#include "engine/base/base.h"
#include "engine/conv2d_direct.h"
#include "engine/winograd.h"

#include <cblas.h>
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

/* One im2col row block per output pixel: for each kernel row ki, the KW*C inputs under it
 * starting at input pixel (oh*S - PT + ki, ow*S - PL). A kernel row spans KW neighbouring
 * pixels whatever the stride, so it is one contiguous run, cut where it leaves the input
 * (zeros: 'same' padding). With S = 1 and no padding this is the plain run copy. */
static void im2col(float *restrict col, const float *restrict x, int B, int H, int W, int C, int KH,
                   int KW, int S, int PT, int PL, int OH, int OW) {
    const size_t span = (size_t)KW * C, K = (size_t)KH * span;
    for (int n = 0; n < B; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *row = col + (((size_t)n * OH + oh) * OW + ow) * K;
                const int iw0 = ow * S - PL;
                const int j0 = iw0 < 0 ? -iw0 : 0, j1 = iw0 + KW > W ? W - iw0 : KW;
                for (int ki = 0; ki < KH; ki++) {
                    float *d = row + ki * span;
                    const int ih = oh * S - PT + ki;
                    if (ih < 0 || ih >= H || j1 <= j0) {
                        memset(d, 0, sizeof(float) * span);
                        continue;
                    }
                    if (j0 > 0)
                        memset(d, 0, sizeof(float) * (size_t)j0 * C);
                    copy_run(d + (size_t)j0 * C, x + (((size_t)n * H + ih) * W + iw0 + j0) * C,
                             (size_t)(j1 - j0) * C);
                    if (j1 < KW)
                        memset(d + (size_t)j1 * C, 0, sizeof(float) * (size_t)(KW - j1) * C);
                }
            }
}

/* im2col's adjoint: adds each row block back where im2col read it; padding drops. */
static void col2im(float *restrict dx, const float *restrict col, int B, int H, int W, int C,
                   int KH, int KW, int S, int PT, int PL, int OH, int OW) {
    const size_t span = (size_t)KW * C, K = (size_t)KH * span;
    memset(dx, 0, sizeof(float) * (size_t)B * H * W * C);
    for (int n = 0; n < B; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *row = col + (((size_t)n * OH + oh) * OW + ow) * K;
                const int iw0 = ow * S - PL;
                const int j0 = iw0 < 0 ? -iw0 : 0, j1 = iw0 + KW > W ? W - iw0 : KW;
                if (j1 <= j0)
                    continue;
                for (int ki = 0; ki < KH; ki++) {
                    const int ih = oh * S - PT + ki;
                    if (ih < 0 || ih >= H)
                        continue;
                    float *d = dx + (((size_t)n * H + ih) * W + iw0 + j0) * C;
                    const float *s = row + ki * span + (size_t)j0 * C;
                    const size_t len = (size_t)(j1 - j0) * C;
                    for (size_t j = 0; j < len; j++)
                        d[j] += s[j];
                }
            }
}

void eng_conv_same(int in, int k, int s, int *out, int *pad_lo) {
    PST_ASSERT(in >= 1 && k >= 1 && s >= 1, "in %d, kernel %d, stride %d", in, k, s);
    *out = (in + s - 1) / s;
    const int total = (*out - 1) * s + k - in;
    *pad_lo = total > 0 ? total / 2 : 0;
}

void eng_conv2d_im2col(float *col, const float *x, int B, int H, int W, int C, int KH, int KW,
                       int S, int PT, int PL, int OH, int OW) {
    im2col(col, x, B, H, W, C, KH, KW, S, PT, PL, OH, OW);
}

void eng_conv2d_col2im(float *dx, const float *col, int B, int H, int W, int C, int KH, int KW,
                       int S, int PT, int PL, int OH, int OW) {
    col2im(dx, col, B, H, W, C, KH, KW, S, PT, PL, OH, OW);
}

void eng_conv2d_forward_strided(float *y, float *col, const float *x, const float *kernel,
                                const float *bias, int B, int H, int W, int C, int KH, int KW,
                                int F, int S, int PT, int PL, int OH, int OW, eng_act act) {
    PST_ASSERT(S >= 1 && PT >= 0 && PL >= 0 && PT < KH && PL < KW && OH >= 1 && OW >= 1 &&
                   (OH - 1) * S - PT < H && (OW - 1) * S - PL < W,
               "output %dx%d from input %dx%d, kernel %dx%d, stride %d, pad %d,%d", OH, OW, H, W,
               KH, KW, S, PT, PL);
    const int M = B * OH * OW, K = KH * KW * C;
    im2col(col, x, B, H, W, C, KH, KW, S, PT, PL, OH, OW);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, F, K, 1.0f, col, K, kernel, F, 0.0f,
                y, F);
    eng_bias_act_forward(y, bias, (size_t)M, F, act);
}

void eng_conv2d_backward_strided(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                                 const float *y, const float *kernel, int B, int H, int W, int C,
                                 int KH, int KW, int F, int S, int PT, int PL, int OH, int OW,
                                 eng_act act, int accumulate) {
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
    col2im(dx, col, B, H, W, C, KH, KW, S, PT, PL, OH, OW);
}

void eng_conv2d_forward_part(float *y, float *col, const float *x, const float *kernel,
                             const float *bias, int B, int H, int W, int C, int KH, int KW, int F,
                             int OH, int OW, eng_act act) {
    PST_ASSERT(OH >= 1 && OH <= H - KH + 1 && OW >= 1 && OW <= W - KW + 1,
               "output %dx%d from input %dx%d, kernel %dx%d", OH, OW, H, W, KH, KW);
    eng_conv2d_forward_strided(y, col, x, kernel, bias, B, H, W, C, KH, KW, F, 1, 0, 0, OH, OW,
                               act);
}

void eng_conv2d_backward_part(float *dx, float *dkernel, float *dbias, float *dy, float *col,
                              const float *y, const float *kernel, int B, int H, int W, int C,
                              int KH, int KW, int F, int OH, int OW, eng_act act, int accumulate) {
    eng_conv2d_backward_strided(dx, dkernel, dbias, dy, col, y, kernel, B, H, W, C, KH, KW, F, 1, 0,
                                0, OH, OW, act, accumulate);
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

/* The layer's geometry: stride, leading pads and Keras's output size. */
static void conv2d_geom(const eng_layer *l, int *S, int *PT, int *PL, int *OH, int *OW) {
    const eng_layer_spec *s = &l->spec;
    *S = s->stride > 0 ? s->stride : 1;
    if (s->padding == ENG_PAD_SAME) {
        eng_conv_same(l->in.h, s->kh, *S, OH, PT);
        eng_conv_same(l->in.w, s->kw, *S, OW, PL);
    } else {
        *PT = *PL = 0;
        *OH = (l->in.h - s->kh) / *S + 1;
        *OW = (l->in.w - s->kw) / *S + 1;
    }
}

static int conv2d_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    const eng_layer_spec *s = &l->spec;
    const int same = s->padding == ENG_PAD_SAME;
    if (s->units < 1 || s->kh < 1 || s->kw < 1 || (!same && (s->kh > l->in.h || s->kw > l->in.w)))
        return pst_err(err, errlen, PST_EARG,
                       "%s: kernel %dx%d with %d filters does not fit input (%d, %d, %d)", l->name,
                       s->kh, s->kw, s->units, l->in.h, l->in.w, l->in.c);
    if (s->stride < 0 || (s->padding != ENG_PAD_VALID && !same))
        return pst_err(err, errlen, PST_EARG,
                       "%s: stride %d and padding %d: expected stride >= 1 "
                       "and padding valid or same",
                       l->name, s->stride, (int)s->padding);
    int S, PT, PL, OH, OW;
    conv2d_geom(l, &S, &PT, &PL, &OH, &OW);
    l->keras_out = (eng_shape){OH, OW, s->units};
    /* Computed outputs: the model may ask for whole multiples of a following pool. */
    l->out = l->keras_out;
    if (l->crop_h > 1 && l->out.h >= l->crop_h) /* else the pool reports the misfit */
        l->out.h -= l->out.h % l->crop_h;
    if (l->crop_w > 1 && l->out.w >= l->crop_w)
        l->out.w -= l->out.w % l->crop_w;
    eng_conv2d_plan(l);
    eng_layer_add_kernel_bias(l, lay, 4, (int[]){s->kh, s->kw, l->in.c, s->units}, s->units);
    return PST_OK;
}

/* The output tile side for a layer Winograd runs; ENG_CONV_AUTO runs it from C >= 8 (below),
 * --conv winograd wherever it can. From
 * bench_winograd (tests/bench/README.md; one core, 4 samples, forward + both gradients +
 * the kernel transform once per 8 chunks, speed against im2col on SkylakeX / Haswell):
 *
 *   output x C -> F        F(2x2)       F(4x4)       F(5x5)
 *   10x10 x 32 -> 64       1.90 / 1.52  1.58 / 1.57  2.31 / 1.94   (mnist_cnn's conv2)
 *   24x24 x 32 -> 64       1.34 / 1.72  2.61 / 2.60  2.44 / 2.47
 *   14x14 x 16 -> 16       1.71 / 1.34  1.78 / 1.57  1.91 / 1.55
 *    8x8  x 64 -> 64       1.82 / 1.65  2.07 / 1.99  1.46 / 1.34
 *   26x26 x 1  -> 32       0.41 / 0.38  0.48 / 0.49  0.39 / 0.42   (conv1: the direct loops')
 *
 * With one input channel each tile position's GEMM has an inner dimension of 1 and
 * Winograd loses; from 16 it wins everywhere measured. Between, nothing was measured: the
 * rule takes Winograd from C >= 8. Between tiles: a tile of alpha x alpha inputs costs
 * alpha^2 GEMM rows and transforms of about alpha^3 operations per channel, and the output
 * is padded to whole tiles (10 to 12 for F(4x4)); tiles x alpha^3 picks the fastest tile of
 * every row on both kernels (at 14x14 on Haswell F(5x5)'s 1.55 against F(4x4)'s 1.57 is
 * noise). Ties go to the smaller tile, the more accurate (winograd.h). */
static int best_tile(int OH, int OW) {
    static const int ms[] = {2, 4, 5};
    int best = 0;
    long best_cost = 0;
    for (int i = 0; i < 3; i++) {
        const long m = ms[i], a = m + 2, cost = ((OH + m - 1) / m) * ((OW + m - 1) / m) * a * a * a;
        if (!best || cost < best_cost)
            best = (int)m, best_cost = cost;
    }
    return best;
}

void eng_conv2d_plan(eng_layer *l) {
    const eng_layer_spec *s = &l->spec;
    const int C = l->in.c, F = s->units, OH = l->out.h, OW = l->out.w;
    const int plain = s->stride <= 1 && s->padding == ENG_PAD_VALID;
    const int fits = plain && s->kh == 3 && s->kw == 3;
    /* Few input taps (a first layer, conv1's 9): the direct loops, which ran conv1 (B 4,
     * forward + kernel gradient) at 32 us against im2col's 81 us on SkylakeX and 33 against
     * 134 on Haswell (bench_winograd); Winograd there is slower than im2col. */
    l->direct = l->conv != ENG_CONV_IM2COL && plain && eng_conv2d_direct_suits(s->kh, s->kw, C, F);
    int m = 0;
    if (fits && !l->direct) {
        switch (l->conv) {
        case ENG_CONV_AUTO:
            m = C >= 8 ? best_tile(OH, OW) : 0;
            break;
        case ENG_CONV_WINOGRAD:
            m = best_tile(OH, OW);
            break;
        case ENG_CONV_WINOGRAD2:
            m = 2;
            break;
        case ENG_CONV_WINOGRAD4:
            m = 4;
            break;
        case ENG_CONV_WINOGRAD5:
            m = 5;
            break;
        case ENG_CONV_IM2COL:
            m = 0;
            break;
        }
    }
    l->wino = m;
    l->scratch_bytes = l->scratch_sample_bytes = l->shared_bytes = 0;
    if (l->direct) { /* the backward reads the forward's input, nothing saved */
        l->saved_bytes = 0;
        return;
    }
    if (!m) {
        l->saved_bytes = sizeof(float) * (size_t)OH * OW * s->kh * s->kw * C;
        return;
    }
    /* The sizes are affine in the batch: a fixed part (the C x F planes, pads) and a part
     * per sample. */
    const eng_winograd_tf *t = eng_winograd_tf_for(m);
    const size_t s1 = eng_winograd_scratch_floats(t, 1, OH, OW, C, F),
                 s2 = eng_winograd_scratch_floats(t, 2, OH, OW, C, F);
    l->saved_bytes = sizeof(float) * eng_winograd_saved_floats(t, 1, OH, OW, C);
    l->scratch_sample_bytes = sizeof(float) * (s2 - s1);
    l->scratch_bytes = sizeof(float) * (s1 - (s2 - s1));
    /* U, then the kernel it was made from */
    l->shared_bytes = sizeof(float) * (eng_winograd_kernel_floats(t, C, F) + (size_t)9 * C * F);
}

const char *eng_conv2d_algo_name(const eng_layer *l) {
    return l->wino == 5   ? "winograd F(5x5,3x3)"
           : l->wino == 4 ? "winograd F(4x4,3x3)"
           : l->wino == 2 ? "winograd F(2x2,3x3)"
           : l->direct    ? "direct"
                          : "im2col";
}

/* Winograd's U from the kernel, unless the kernel is the one U was made from (inference
 * over unchanged weights; in training they change every step and the compare stops at
 * once). */
static void conv2d_prepare(const eng_layer *l, const float *params, void *shared) {
    if (!l->wino)
        return;
    const eng_winograd_tf *t = eng_winograd_tf_for(l->wino);
    const int C = l->in.c, F = l->spec.units;
    float *U = shared, *made_from = U + eng_winograd_kernel_floats(t, C, F);
    const float *kernel = params + l->kernel;
    const size_t n = sizeof(float) * 9 * (size_t)C * F;
    if (memcmp(made_from, kernel, n) == 0)
        return; /* (all zeros at first: U of a zero kernel is zeros, as allocated) */
    eng_winograd_kernel_transform(U, kernel, C, F, t);
    memcpy(made_from, kernel, n);
}

static void conv2d_fwd(const eng_layer *l, const eng_fwd_args *a) {
    if (l->direct) {
        eng_conv2d_direct_forward(a->y, a->x, a->params + l->kernel,
                                  l->spec.no_bias ? NULL : a->params + l->bias, a->batch, l->in.h,
                                  l->in.w, l->in.c, l->spec.kh, l->spec.kw, l->spec.units, l->out.h,
                                  l->out.w, l->spec.act);
        return;
    }
    if (l->wino) {
        eng_winograd_forward(a->y, a->saved, a->scratch, a->x, a->shared,
                             l->spec.no_bias ? NULL : a->params + l->bias, a->batch, l->in.h,
                             l->in.w, l->in.c, l->spec.units, l->out.h, l->out.w,
                             eng_winograd_tf_for(l->wino), l->spec.act);
        return;
    }
    int S, PT, PL, OH, OW;
    conv2d_geom(l, &S, &PT, &PL, &OH, &OW);
    eng_conv2d_forward_strided(a->y, a->saved, a->x, a->params + l->kernel,
                               l->spec.no_bias ? NULL : a->params + l->bias, a->batch, l->in.h,
                               l->in.w, l->in.c, l->spec.kh, l->spec.kw, l->spec.units, S, PT, PL,
                               l->out.h, l->out.w, l->spec.act);
}

static void conv2d_bwd(const eng_layer *l, const eng_bwd_args *a) {
    if (l->direct) {
        eng_conv2d_direct_backward(
            a->dx, a->grads + l->kernel, l->spec.no_bias ? NULL : a->grads + l->bias, a->dy, a->y,
            a->x, a->params + l->kernel, a->batch, l->in.h, l->in.w, l->in.c, l->spec.kh,
            l->spec.kw, l->spec.units, l->out.h, l->out.w, l->spec.act, a->accumulate);
        return;
    }
    if (l->wino) {
        eng_winograd_backward(a->dx, a->grads + l->kernel,
                              l->spec.no_bias ? NULL : a->grads + l->bias, a->dy, a->saved,
                              a->scratch, a->y, a->shared, a->batch, l->in.h, l->in.w, l->in.c,
                              l->spec.units, l->out.h, l->out.w, eng_winograd_tf_for(l->wino),
                              l->spec.act, a->accumulate);
        return;
    }
    int S, PT, PL, OH, OW;
    conv2d_geom(l, &S, &PT, &PL, &OH, &OW);
    eng_conv2d_backward_strided(
        a->dx, a->grads + l->kernel, l->spec.no_bias ? NULL : a->grads + l->bias, a->dy, a->saved,
        a->y, a->params + l->kernel, a->batch, l->in.h, l->in.w, l->in.c, l->spec.kh, l->spec.kw,
        l->spec.units, S, PT, PL, l->out.h, l->out.w, l->spec.act, a->accumulate);
}

const eng_layer_ops eng_conv2d_ops = {
    .keras_class = "Conv2D",
    .keras_prefix = "conv2d",
    .build = conv2d_build,
    .prepare = conv2d_prepare,
    .forward = conv2d_fwd,
    .backward = conv2d_bwd,
};
