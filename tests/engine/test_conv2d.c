/* test_conv2d.c: Conv2D against a direct convolution in double (forward) and against
 * central differences of L = sum(y * R) for a fixed random R (backward: dx, dkernel,
 * dbias), over shapes that reach the edge cases: 1x1 kernels, a kernel as large as the
 * input, one input channel or one filter, one sample, non-square kernels and inputs, and
 * the two layers of mnist_cnn; the _part variants that skip the outputs a floor pool never
 * reads; accumulate. Also checks that the checker itself can fail.
 *
 * ReLU: a parameter of a conv layer feeds hundreds of outputs, and a probe of any size
 * crosses some output's kink, so skipping such elements would skip nearly all of them.
 * Instead the ReLU mask is frozen at the point of the check: with M = [y > 0] from the
 * engine's own ReLU forward, the loss sum(R * relu(z)) equals sum((R * M) * z) near that
 * point (no z there is exactly 0), so its gradient is checked by differencing the act=NONE
 * forward with weights R * M. The ReLU forward itself is checked against the direct
 * convolution. Differences of an affine function are exact, so eps is large (rounding
 * shrinks with it).
 *
 * Strides and 'same' padding (the s*_ cases): the output size and leading pads against
 * Keras's rule, the forward against the definition with zero padding, and the gradients by
 * differences, with NONE, RELU, LEAKY_RELU (mask frozen the same way) and TANH (smooth: the
 * loss runs it, eps 1e-2) fused. */
#include "engine/conv2d.h"

#include "engine/base/base.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define EPS 5e-2
#define GARBAGE 777.0f /* prefilled into outputs that must be written, not accumulated */

typedef struct conv_case {
    const char *name;
    int B, H, W, C, KH, KW, F;
    eng_act act;
    size_t max_checks; /* per tensor; 0 = all */
    int OH, OW;        /* the _part variants' output size; 0: the full H-KH+1, W-KW+1 */
} conv_case;

typedef struct conv_ctx {
    const conv_case *c;
    int OH, OW;
    size_t nx, nk, ny, ncol;
    float *x, *kernel, *bias, *y, *col, *r;
    float *w; /* R * M: the weights of the act=NONE loss that the differences use */
} conv_ctx;

static void ctx_init(conv_ctx *k, const conv_case *c, uint64_t seed) {
    memset(k, 0, sizeof *k);
    k->c = c;
    k->OH = c->OH ? c->OH : c->H - c->KH + 1;
    k->OW = c->OW ? c->OW : c->W - c->KW + 1;
    k->nx = (size_t)c->B * c->H * c->W * c->C;
    k->nk = (size_t)c->KH * c->KW * c->C * c->F;
    k->ny = (size_t)c->B * k->OH * k->OW * c->F;
    k->ncol = (size_t)c->B * k->OH * k->OW * c->KH * c->KW * c->C;
    k->x = pst_alloc(sizeof(float) * k->nx);
    k->kernel = pst_alloc(sizeof(float) * k->nk);
    k->bias = pst_alloc(sizeof(float) * (size_t)c->F);
    k->y = pst_alloc(sizeof(float) * k->ny);
    k->col = pst_alloc(sizeof(float) * k->ncol);
    k->r = pst_alloc(sizeof(float) * k->ny);
    k->w = pst_alloc(sizeof(float) * k->ny);
    assert_non_null(k->w);
    assert_non_null(k->x);
    assert_non_null(k->kernel);
    assert_non_null(k->bias);
    assert_non_null(k->y);
    assert_non_null(k->col);
    assert_non_null(k->r);
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    tu_fill_uniform(k->x, k->nx, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k->kernel, k->nk, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k->bias, (size_t)c->F, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k->r, k->ny, -1.0f, 1.0f, &rng);
}

static void ctx_deinit(conv_ctx *k) {
    pst_free(k->x);
    pst_free(k->kernel);
    pst_free(k->bias);
    pst_free(k->y);
    pst_free(k->col);
    pst_free(k->r);
    pst_free(k->w);
}

static void forward_act(conv_ctx *k, eng_act act) {
    const conv_case *c = k->c;
    if (c->OH)
        eng_conv2d_forward_part(k->y, k->col, k->x, k->kernel, k->bias, c->B, c->H, c->W, c->C,
                                c->KH, c->KW, c->F, k->OH, k->OW, act);
    else
        eng_conv2d_forward(k->y, k->col, k->x, k->kernel, k->bias, c->B, c->H, c->W, c->C, c->KH,
                           c->KW, c->F, act);
}

static void forward(conv_ctx *k) { forward_act(k, k->c->act); }

/* Freezes the ReLU mask at the current point into w; returns the fraction of outputs
 * active (1 without ReLU). */
static double freeze_mask(conv_ctx *k) {
    forward(k);
    size_t active = 0;
    for (size_t i = 0; i < k->ny; i++) {
        int on = k->c->act != ENG_ACT_RELU || k->y[i] > 0.0f;
        k->w[i] = on ? k->r[i] : 0.0f;
        active += (size_t)on;
    }
    return (double)active / (double)k->ny;
}

static double conv_loss(void *arg) {
    conv_ctx *k = arg;
    forward_act(k, ENG_ACT_NONE);
    return tu_dot(k->y, k->w, k->ny);
}

/* The analytic gradients of L at the current point; caller frees. */
typedef struct conv_grads {
    float *dx, *dk, *db;
} conv_grads;

static void backward_into(conv_ctx *k, conv_grads *g, float *dx, int accumulate) {
    const conv_case *c = k->c;
    float *dy = pst_alloc(sizeof(float) * k->ny);
    assert_non_null(dy);
    forward(k); /* fills col and y for backward */
    memcpy(dy, k->r, sizeof(float) * k->ny);
    if (c->OH)
        eng_conv2d_backward_part(dx, g->dk, g->db, dy, k->col, k->y, k->kernel, c->B, c->H, c->W,
                                 c->C, c->KH, c->KW, c->F, k->OH, k->OW, c->act, accumulate);
    else
        eng_conv2d_backward(dx, g->dk, g->db, dy, k->col, k->y, k->kernel, c->B, c->H, c->W, c->C,
                            c->KH, c->KW, c->F, c->act, accumulate);
    pst_free(dy);
}

static conv_grads backward(conv_ctx *k, int with_dx) {
    const conv_case *c = k->c;
    conv_grads g = {pst_alloc(sizeof(float) * k->nx), pst_alloc(sizeof(float) * k->nk),
                    pst_alloc(sizeof(float) * (size_t)c->F)};
    assert_true(g.dx && g.dk && g.db);
    for (size_t i = 0; i < k->nx; i++)
        g.dx[i] = GARBAGE;
    for (size_t i = 0; i < k->nk; i++)
        g.dk[i] = GARBAGE;
    for (int i = 0; i < c->F; i++)
        g.db[i] = GARBAGE;
    backward_into(k, &g, with_dx ? g.dx : NULL, 0);
    return g;
}

static void grads_free(conv_grads *g) {
    pst_free(g->dx);
    pst_free(g->dk);
    pst_free(g->db);
}

/* y against a direct convolution in double: |y - ref| within float rounding of the sum. */
static void check_forward(conv_ctx *k) {
    const conv_case *c = k->c;
    forward(k);
    size_t bad = 0;
    for (int n = 0; n < c->B; n++)
        for (int oh = 0; oh < k->OH; oh++)
            for (int ow = 0; ow < k->OW; ow++)
                for (int f = 0; f < c->F; f++) {
                    double s = k->bias[f], mag = fabs(s);
                    for (int i = 0; i < c->KH; i++)
                        for (int j = 0; j < c->KW; j++)
                            for (int ch = 0; ch < c->C; ch++) {
                                double xv =
                                    k->x[(((size_t)n * c->H + oh + i) * c->W + ow + j) * c->C + ch];
                                double kv =
                                    k->kernel[(((size_t)i * c->KW + j) * c->C + ch) * c->F + f];
                                s += xv * kv;
                                mag += fabs(xv * kv);
                            }
                    if (c->act == ENG_ACT_RELU && s < 0)
                        s = 0;
                    double got = k->y[(((size_t)n * k->OH + oh) * k->OW + ow) * c->F + f];
                    if (fabs(got - s) > 1e-5 * mag + 1e-6) {
                        if (bad++ < 5)
                            printf("  %s: y[%d,%d,%d,%d] = %.7g, direct convolution %.7g\n",
                                   c->name, n, oh, ow, f, got, s);
                    }
                }
    if (bad)
        fail_msg("%s: %zu of %zu outputs differ from the direct convolution", c->name, bad, k->ny);
}

static void run_case(const conv_case *c) {
    printf("conv2d %s: B=%d H=%d W=%d C=%d K=%dx%d F=%d act=%s%s\n", c->name, c->B, c->H, c->W,
           c->C, c->KH, c->KW, c->F, c->act == ENG_ACT_RELU ? "relu" : "none",
           c->OH ? " (part)" : "");
    conv_ctx k;
    ctx_init(&k, c, 0xC0DE0000u + (uint64_t)c->B * 131 + (uint64_t)c->F * 7 + (uint64_t)c->C);
    check_forward(&k);
    const double active = freeze_mask(&k);
    if (c->act == ENG_ACT_RELU && (active < 0.1 || active > 0.9))
        fail_msg("%s: %.0f%% of ReLUs active: the case does not exercise the mask", c->name,
                 100 * active);

    conv_grads g = backward(&k, 1);
    /* L is affine in each element, so the only error is float rounding in y over 2 eps. */
    tu_gradcheck gc = {.eps = EPS, .rtol = 1e-3, .atol = 1e-4, .max_checks = c->max_checks};
    tu_gradcheck_result rx, rk, rb;
    gc.what = "dx";
    size_t fx = tu_gradcheck_run(&gc, k.x, k.nx, g.dx, conv_loss, &k, &rx);
    gc.what = "dkernel";
    size_t fk = tu_gradcheck_run(&gc, k.kernel, k.nk, g.dk, conv_loss, &k, &rk);
    gc.what = "dbias";
    size_t fb = tu_gradcheck_run(&gc, k.bias, (size_t)c->F, g.db, conv_loss, &k, &rb);
    if (fx || fk || fb)
        fail_msg("%s: gradient mismatches: dx %zu, dkernel %zu, dbias %zu", c->name, fx, fk, fb);

    /* Without dx (the first layer of a model): the same parameter gradients. */
    conv_grads g2 = backward(&k, 0);
    for (size_t i = 0; i < k.nk; i++)
        if (fabsf(g2.dk[i] - g.dk[i]) > 1e-6f * (1.0f + fabsf(g.dk[i])))
            fail_msg("%s: dkernel[%zu] is %g with dx, %g without", c->name, i, g.dk[i], g2.dk[i]);
    for (int i = 0; i < c->F; i++)
        if (fabsf(g2.db[i] - g.db[i]) > 1e-6f * (1.0f + fabsf(g.db[i])))
            fail_msg("%s: dbias[%d] is %g with dx, %g without", c->name, i, g.db[i], g2.db[i]);

    /* accumulate: dkernel and dbias are added to what is there; dx is still written. */
    eng_rng rng;
    eng_rng_seed(&rng, 5);
    tu_fill_uniform(g2.dk, k.nk, -1.0f, 1.0f, &rng);
    tu_fill_uniform(g2.db, (size_t)c->F, -1.0f, 1.0f, &rng);
    float *dk0 = malloc(sizeof(float) * k.nk), *db0 = malloc(sizeof(float) * (size_t)c->F);
    assert_true(dk0 && db0);
    memcpy(dk0, g2.dk, sizeof(float) * k.nk);
    memcpy(db0, g2.db, sizeof(float) * (size_t)c->F);
    for (size_t i = 0; i < k.nx; i++)
        g2.dx[i] = GARBAGE;
    backward_into(&k, &g2, g2.dx, 1);
    for (size_t i = 0; i < k.nk; i++)
        if (fabsf(g2.dk[i] - (dk0[i] + g.dk[i])) > 1e-5f * (1.0f + fabsf(g.dk[i])))
            fail_msg("%s: accumulate: dkernel[%zu] = %g, expected %g + %g", c->name, i, g2.dk[i],
                     dk0[i], g.dk[i]);
    for (int i = 0; i < c->F; i++)
        if (fabsf(g2.db[i] - (db0[i] + g.db[i])) > 1e-5f * (1.0f + fabsf(g.db[i])))
            fail_msg("%s: accumulate: dbias[%d] = %g, expected %g + %g", c->name, i, g2.db[i],
                     db0[i], g.db[i]);
    for (size_t i = 0; i < k.nx; i++)
        if (fabsf(g2.dx[i] - g.dx[i]) > 1e-6f * (1.0f + fabsf(g.dx[i])))
            fail_msg("%s: accumulate: dx[%zu] = %g, expected %g (dx is written)", c->name, i,
                     g2.dx[i], g.dx[i]);
    free(dk0);
    free(db0);
    grads_free(&g2);
    grads_free(&g);
    ctx_deinit(&k);
}

#define CASE(fn, ...)                                                                              \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        static const conv_case c = {#fn, __VA_ARGS__};                                             \
        run_case(&c);                                                                              \
    }

/* clang-format off */
/*   name                       B  H   W   C   KH KW  F   act           max  OH  OW */
CASE(single_sample_c1_none,     1, 5,  5,  1,  3,  3, 2,  ENG_ACT_NONE, 0,   0,  0)
CASE(single_sample_c1_relu,     1, 5,  5,  1,  3,  3, 2,  ENG_ACT_RELU, 0,   0,  0)
CASE(batch3_c3_relu,            3, 6,  6,  3,  3,  3, 4,  ENG_ACT_RELU, 0,   0,  0)
CASE(batch3_c3_none,            3, 6,  6,  3,  3,  3, 4,  ENG_ACT_NONE, 0,   0,  0)
CASE(kernel_1x1_relu,           2, 4,  5,  3,  1,  1, 5,  ENG_ACT_RELU, 0,   0,  0)
CASE(kernel_1x1_none,           1, 3,  3,  1,  1,  1, 1,  ENG_ACT_NONE, 0,   0,  0)
CASE(kernel_equals_input_none,  2, 3,  4,  2,  3,  4, 3,  ENG_ACT_NONE, 0,   0,  0)
CASE(kernel_equals_input_relu,  3, 4,  4,  3,  4,  4, 6,  ENG_ACT_RELU, 0,   0,  0)
CASE(one_filter_relu,           3, 7,  6,  1,  3,  2, 1,  ENG_ACT_RELU, 0,   0,  0)
CASE(one_filter_none,           1, 5,  7,  3,  2,  3, 1,  ENG_ACT_NONE, 0,   0,  0)
CASE(nonsquare_input_kernel,    3, 6,  9,  3,  2,  4, 4,  ENG_ACT_RELU, 0,   0,  0)
CASE(tall_kernel,               2, 8,  5,  2,  5,  1, 3,  ENG_ACT_NONE, 0,   0,  0)
CASE(mnist_conv2d_shape,        2, 28, 28, 1,  3,  3, 32, ENG_ACT_RELU, 400, 0,  0)
CASE(mnist_conv2d_1_shape,      2, 13, 13, 32, 3,  3, 64, ENG_ACT_RELU, 400, 0,  0)
/* The _part variants: only the top-left OH x OW outputs (what a floor pool reads). Inputs
 * that feed only the skipped outputs must get a zero gradient, which the differences see. */
CASE(part_drops_last_row_col,   2, 6,  6,  2,  2,  2, 3,  ENG_ACT_RELU, 0,   4,  4)
CASE(part_nonsquare_none,       3, 8,  6,  3,  3,  2, 4,  ENG_ACT_NONE, 0,   4,  3)
CASE(part_mnist_conv2d_1,       2, 13, 13, 32, 3,  3, 64, ENG_ACT_RELU, 400, 10, 10)
/* clang-format on */

/* The checker must catch wrong gradients: a copy scaled by 1.02, and one wrong element. */
static void checker_detects_wrong_gradient(void **state) {
    (void)state;
    static const conv_case c = {"negative_control", 2, 6, 6, 3, 3, 3, 4, ENG_ACT_RELU, 0, 0, 0};
    conv_ctx k;
    ctx_init(&k, &c, 99);
    freeze_mask(&k);
    conv_grads g = backward(&k, 1);
    float *wrong = pst_alloc(sizeof(float) * k.nk);
    assert_non_null(wrong);
    tu_gradcheck gc = {
        .what = "dkernel (scaled by 1.02, must fail)", .eps = EPS, .rtol = 1e-3, .atol = 1e-4};
    tu_gradcheck_result res;

    for (size_t i = 0; i < k.nk; i++)
        wrong[i] = g.dk[i] * 1.02f;
    tu_gradcheck_run(&gc, k.kernel, k.nk, wrong, conv_loss, &k, &res);
    assert_int_equal(res.checked, k.nk);
    if (res.failed < res.checked * 9 / 10)
        fail_msg("the checker passed %zu of %zu elements of a gradient scaled by 1.02",
                 res.checked - res.failed, res.checked);

    memcpy(wrong, g.dk, sizeof(float) * k.nk);
    wrong[k.nk / 2] += 0.01f * (1.0f + fabsf(wrong[k.nk / 2]));
    gc.what = "dkernel (one element off by 1%, must fail once)";
    tu_gradcheck_run(&gc, k.kernel, k.nk, wrong, conv_loss, &k, &res);
    assert_int_equal(res.failed, 1);

    gc.what = "dkernel (correct)";
    assert_int_equal(tu_gradcheck_run(&gc, k.kernel, k.nk, g.dk, conv_loss, &k, &res), 0);
    pst_free(wrong);
    grads_free(&g);
    ctx_deinit(&k);
}

/* --- strides and 'same' padding (eng_conv2d_forward_strided), fused activations --- */

typedef struct strided_case {
    const char *name;
    int B, H, W, C, KH, KW, F, S;
    eng_padding pad;
    int no_bias;
    eng_act act;
} strided_case;

typedef struct strided_ctx {
    const strided_case *c;
    int PT, PL, OH, OW;
    size_t nx, nk, ny;
    float *x, *kernel, *bias, *y, *col, *r, *w;
} strided_ctx;

static const float *sbias(const strided_ctx *k) { return k->c->no_bias ? NULL : k->bias; }

static void strided_forward(strided_ctx *k, eng_act act) {
    const strided_case *c = k->c;
    eng_conv2d_forward_strided(k->y, k->col, k->x, k->kernel, sbias(k), c->B, c->H, c->W, c->C,
                               c->KH, c->KW, c->F, c->S, k->PT, k->PL, k->OH, k->OW, act);
}

/* Piecewise-linear activations: L = sum(R * act(z)) is sum((R * act'(z)) * z) near the
 * point, so w = R * slope and the act=NONE forward is differenced (as for ReLU above).
 * tanh is smooth: the loss runs it, with a smaller step. */
static double strided_loss(void *arg) {
    strided_ctx *k = arg;
    const int tanh_act = k->c->act == ENG_ACT_TANH;
    strided_forward(k, tanh_act ? ENG_ACT_TANH : ENG_ACT_NONE);
    return tu_dot(k->y, k->w, k->ny);
}

/* y by the definition, in double: output (oh, ow) reads input (oh*S - PT + i, ow*S - PL + j)
 * and zeros outside. */
static void strided_check_forward(strided_ctx *k) {
    const strided_case *c = k->c;
    strided_forward(k, c->act);
    size_t bad = 0;
    for (int n = 0; n < c->B; n++)
        for (int oh = 0; oh < k->OH; oh++)
            for (int ow = 0; ow < k->OW; ow++)
                for (int f = 0; f < c->F; f++) {
                    double s = c->no_bias ? 0.0 : k->bias[f], mag = fabs(s);
                    for (int i = 0; i < c->KH; i++)
                        for (int j = 0; j < c->KW; j++) {
                            const int ih = oh * c->S - k->PT + i, iw = ow * c->S - k->PL + j;
                            if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
                                continue;
                            for (int ch = 0; ch < c->C; ch++) {
                                double xv = k->x[(((size_t)n * c->H + ih) * c->W + iw) * c->C + ch];
                                double kv =
                                    k->kernel[(((size_t)i * c->KW + j) * c->C + ch) * c->F + f];
                                s += xv * kv;
                                mag += fabs(xv * kv);
                            }
                        }
                    if (c->act == ENG_ACT_RELU && s < 0)
                        s = 0;
                    if (c->act == ENG_ACT_LEAKY_RELU && s < 0)
                        s *= 0.3;
                    if (c->act == ENG_ACT_TANH)
                        s = tanh(s);
                    double got = k->y[(((size_t)n * k->OH + oh) * k->OW + ow) * c->F + f];
                    if (fabs(got - s) > 1e-5 * mag + 1e-6 && bad++ < 5)
                        printf("  %s: y[%d,%d,%d,%d] = %.7g, direct convolution %.7g\n", c->name, n,
                               oh, ow, f, got, s);
                }
    if (bad)
        fail_msg("%s: %zu of %zu outputs differ from the direct convolution", c->name, bad, k->ny);
}

static void run_strided(const strided_case *c, int expect_oh, int expect_ow, int expect_pt,
                        int expect_pl) {
    strided_ctx k = {.c = c};
    if (c->pad == ENG_PAD_SAME) {
        eng_conv_same(c->H, c->KH, c->S, &k.OH, &k.PT);
        eng_conv_same(c->W, c->KW, c->S, &k.OW, &k.PL);
    } else {
        k.OH = (c->H - c->KH) / c->S + 1;
        k.OW = (c->W - c->KW) / c->S + 1;
    }
    printf("conv2d %s: B=%d %dx%dx%d K=%dx%d F=%d stride %d %s -> %dx%d pad %d,%d\n", c->name, c->B,
           c->H, c->W, c->C, c->KH, c->KW, c->F, c->S, c->pad == ENG_PAD_SAME ? "same" : "valid",
           k.OH, k.OW, k.PT, k.PL);
    assert_int_equal(k.OH, expect_oh);
    assert_int_equal(k.OW, expect_ow);
    assert_int_equal(k.PT, expect_pt);
    assert_int_equal(k.PL, expect_pl);
    k.nx = (size_t)c->B * c->H * c->W * c->C;
    k.nk = (size_t)c->KH * c->KW * c->C * c->F;
    k.ny = (size_t)c->B * k.OH * k.OW * c->F;
    k.x = pst_alloc(sizeof(float) * k.nx);
    k.kernel = pst_alloc(sizeof(float) * k.nk);
    k.bias = pst_alloc(sizeof(float) * (size_t)c->F);
    k.y = pst_alloc(sizeof(float) * k.ny);
    k.col = pst_alloc(sizeof(float) * (size_t)c->B * k.OH * k.OW * c->KH * c->KW * c->C);
    k.r = pst_alloc(sizeof(float) * k.ny);
    k.w = pst_alloc(sizeof(float) * k.ny);
    float *dy = pst_alloc(sizeof(float) * k.ny), *dx = pst_alloc(sizeof(float) * k.nx),
          *dk = pst_alloc(sizeof(float) * k.nk), *db = pst_alloc(sizeof(float) * (size_t)c->F);
    assert_true(k.x && k.kernel && k.bias && k.y && k.col && k.r && k.w && dy && dx && dk && db);
    eng_rng rng;
    eng_rng_seed(&rng, 0x57A1DEull + (uint64_t)c->H * 31 + (uint64_t)c->S);
    tu_fill_uniform(k.x, k.nx, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k.kernel, k.nk, -0.3f, 0.3f, &rng);
    tu_fill_uniform(k.bias, (size_t)c->F, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k.r, k.ny, -1.0f, 1.0f, &rng);
    strided_check_forward(&k);

    /* the loss's weights at this point (y holds act(z) from the forward check) */
    for (size_t i = 0; i < k.ny; i++) {
        float slope = 1.0f;
        if (c->act == ENG_ACT_RELU)
            slope = k.y[i] > 0.0f ? 1.0f : 0.0f;
        else if (c->act == ENG_ACT_LEAKY_RELU)
            slope = k.y[i] > 0.0f ? 1.0f : 0.3f;
        k.w[i] = c->act == ENG_ACT_TANH ? k.r[i] : k.r[i] * slope;
    }
    memcpy(dy, k.r, sizeof(float) * k.ny);
    for (size_t i = 0; i < k.nx; i++)
        dx[i] = GARBAGE;
    for (size_t i = 0; i < k.nk; i++)
        dk[i] = GARBAGE;
    for (int i = 0; i < c->F; i++)
        db[i] = GARBAGE;
    strided_forward(&k, c->act);
    eng_conv2d_backward_strided(dx, dk, c->no_bias ? NULL : db, dy, k.col, k.y, k.kernel, c->B,
                                c->H, c->W, c->C, c->KH, c->KW, c->F, c->S, k.PT, k.PL, k.OH, k.OW,
                                c->act, 0);
    const int smooth = c->act == ENG_ACT_TANH;
    tu_gradcheck gc = {
        .eps = smooth ? 1e-2 : EPS, .rtol = smooth ? 1e-2 : 1e-3, .atol = smooth ? 1e-3 : 1e-4};
    tu_gradcheck_result res;
    gc.what = "dx";
    size_t fx = tu_gradcheck_run(&gc, k.x, k.nx, dx, strided_loss, &k, &res);
    gc.what = "dkernel";
    size_t fk = tu_gradcheck_run(&gc, k.kernel, k.nk, dk, strided_loss, &k, &res);
    size_t fb = 0;
    if (!c->no_bias) {
        gc.what = "dbias";
        fb = tu_gradcheck_run(&gc, k.bias, (size_t)c->F, db, strided_loss, &k, &res);
    } else {
        for (int i = 0; i < c->F; i++)
            if (db[i] != GARBAGE)
                fail_msg("%s: no bias, but dbias[%d] was written", c->name, i);
    }
    if (fx || fk || fb)
        fail_msg("%s: gradient mismatches: dx %zu, dkernel %zu, dbias %zu", c->name, fx, fk, fb);
    void *all[] = {k.x, k.kernel, k.bias, k.y, k.col, k.r, k.w, dy, dx, dk, db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
}

#define SCASE(fn, oh, ow, pt, pl, ...)                                                             \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        static const strided_case c = {#fn, __VA_ARGS__};                                          \
        run_strided(&c, oh, ow, pt, pl);                                                           \
    }

/* clang-format off */
/* Keras 'same', stride 2, kernel 5: 28 -> 14 (pad 3: 1 top, 2 bottom), 14 -> 7 (pad 3: 1, 2),
 * odd 7 -> 4 (pad 4: 2, 2), 9 -> 5; stride 1 'same' keeps the size (pad 2, 2).
 *     name                       OH OW PT PL  B  H   W   C  KH KW F  S  pad           nobias act */
SCASE(s2_same_k5_even_28,         14, 14, 1, 1, 2, 28, 28, 1, 5, 5, 3, 2, ENG_PAD_SAME,  0, ENG_ACT_NONE)
SCASE(s2_same_k5_even_14,         7,  7,  1, 1, 2, 14, 14, 3, 5, 5, 4, 2, ENG_PAD_SAME,  0, ENG_ACT_LEAKY_RELU)
SCASE(s2_same_k5_odd_7,           4,  4,  2, 2, 3, 7,  7,  2, 5, 5, 3, 2, ENG_PAD_SAME,  0, ENG_ACT_NONE)
SCASE(s2_same_k5_odd_even_9x6,    5,  3,  2, 1, 2, 9,  6,  2, 5, 5, 2, 2, ENG_PAD_SAME,  1, ENG_ACT_RELU)
SCASE(s2_same_k5_input_smaller,   2,  2,  2, 2, 1, 3,  3,  2, 5, 5, 2, 2, ENG_PAD_SAME,  0, ENG_ACT_NONE)
SCASE(s1_same_k5,                 6,  6,  2, 2, 2, 6,  6,  2, 5, 5, 3, 1, ENG_PAD_SAME,  0, ENG_ACT_TANH)
SCASE(s1_same_k4_even_kernel,     5,  5,  1, 1, 2, 5,  5,  2, 4, 4, 2, 1, ENG_PAD_SAME,  0, ENG_ACT_NONE)
SCASE(s3_same_k3,                 3,  3,  0, 1, 2, 8,  7,  2, 3, 3, 2, 3, ENG_PAD_SAME,  0, ENG_ACT_NONE)
SCASE(s2_valid_k3_odd,            3,  3,  0, 0, 2, 7,  7,  2, 3, 3, 3, 2, ENG_PAD_VALID, 0, ENG_ACT_NONE)
SCASE(s2_valid_k3_even_drops,     2,  3,  0, 0, 2, 6,  8,  2, 3, 3, 3, 2, ENG_PAD_VALID, 1, ENG_ACT_LEAKY_RELU)
SCASE(s1_valid_tanh,              4,  4,  0, 0, 2, 6,  6,  3, 3, 3, 2, 1, ENG_PAD_VALID, 0, ENG_ACT_TANH)
/* clang-format on */

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_sample_c1_none),
        cmocka_unit_test(single_sample_c1_relu),
        cmocka_unit_test(batch3_c3_relu),
        cmocka_unit_test(batch3_c3_none),
        cmocka_unit_test(kernel_1x1_relu),
        cmocka_unit_test(kernel_1x1_none),
        cmocka_unit_test(kernel_equals_input_none),
        cmocka_unit_test(kernel_equals_input_relu),
        cmocka_unit_test(one_filter_relu),
        cmocka_unit_test(one_filter_none),
        cmocka_unit_test(nonsquare_input_kernel),
        cmocka_unit_test(tall_kernel),
        cmocka_unit_test(mnist_conv2d_shape),
        cmocka_unit_test(mnist_conv2d_1_shape),
        cmocka_unit_test(part_drops_last_row_col),
        cmocka_unit_test(part_nonsquare_none),
        cmocka_unit_test(part_mnist_conv2d_1),
        cmocka_unit_test(checker_detects_wrong_gradient),
        cmocka_unit_test(s2_same_k5_even_28),
        cmocka_unit_test(s2_same_k5_even_14),
        cmocka_unit_test(s2_same_k5_odd_7),
        cmocka_unit_test(s2_same_k5_odd_even_9x6),
        cmocka_unit_test(s2_same_k5_input_smaller),
        cmocka_unit_test(s1_same_k5),
        cmocka_unit_test(s1_same_k4_even_kernel),
        cmocka_unit_test(s3_same_k3),
        cmocka_unit_test(s2_valid_k3_odd),
        cmocka_unit_test(s2_valid_k3_even_drops),
        cmocka_unit_test(s1_valid_tanh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
