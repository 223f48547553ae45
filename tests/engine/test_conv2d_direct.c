/* test_conv2d_direct.c: the direct Conv2D (engine/conv2d_direct.h) against a direct
 * convolution in double (forward, dkernel, dbias, dx) within a derived rounding bound,
 * against im2col + sgemm (eng_conv2d_forward_part / _backward_part), against central
 * differences, twice for identical bits, with a negative control: results nudged by 0.1%
 * (of 1 + |value|) must break the bound, and gradients 1% off the central differences.
 *
 * The bound. u = 2^-24, gamma_n = n u / (1 - n u). A float sum of n products, summed in any
 * order (any binary tree: each term meets at most n - 1 additions) with each product
 * rounded once or fused into an FMA, is within gamma_n * S of the exact sum, S the sum of
 * the |terms| (Higham, Accuracy and Stability, 3.1). Each extra rounded addition (the bias,
 * an accumulated old value) adds one to n and its |value| to S. So, T = KH*KW*C taps and
 * M = B*OH*OW output pixels:
 *   y        gamma_{T+1} (|bias| + sum_t |x k|)   (ReLU is 1-Lipschitz: carries over;
 *            LeakyReLU's product by alpha adds u |y|)
 *   dkernel  gamma_{M+1} (|old| + sum_p |x dy|)   (old: the value added to, accumulate)
 *   dbias    gamma_{M+1} (|old| + sum_p |dy|)
 *   dx       gamma_{KH*KW*F} sum |dy k|           (zero, exactly, where no output reads)
 * The direct and im2col results are each within it of the exact value, so within twice it
 * of each other. dy after the backward is the activation's gradient exactly (the same
 * eng_act_backward). */
#include "engine/conv2d.h"
#include "engine/conv2d_direct.h"

#include "engine/activation.h"
#include "engine/base/base.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define U_FLOAT 5.9604644775390625e-8 /* 2^-24 */
#define GARBAGE 777.0f

static double gamma_n(double n) { return n * U_FLOAT / (1.0 - n * U_FLOAT); }

typedef struct dcase {
    const char *name;
    int B, H, W, C, F, KH, KW, OH, OW; /* OH, OW 0: the full H-KH+1, W-KW+1 */
    eng_act act;
} dcase;

typedef struct dctx {
    const dcase *c;
    int OH, OW, T;
    size_t nx, nk, ny;
    float *x, *kernel, *bias, *r, *w;
    /* the engine's: y, dy after the backward, gradients (dk0, db0: the values accumulated
     * onto) */
    float *y, *dy, *dx, *dk, *db, *dk0, *db0;
} dctx;

static void ctx_init(dctx *k, const dcase *c, uint64_t seed) {
    memset(k, 0, sizeof *k);
    k->c = c;
    k->OH = c->OH ? c->OH : c->H - c->KH + 1;
    k->OW = c->OW ? c->OW : c->W - c->KW + 1;
    k->T = c->KH * c->KW * c->C;
    k->nx = (size_t)c->B * c->H * c->W * c->C;
    k->nk = (size_t)k->T * c->F;
    k->ny = (size_t)c->B * k->OH * k->OW * c->F;
    float **bufs[] = {&k->x, &k->dx};
    for (size_t i = 0; i < 2; i++)
        *bufs[i] = pst_alloc(sizeof(float) * k->nx);
    float **kb[] = {&k->kernel, &k->dk, &k->dk0};
    for (size_t i = 0; i < 3; i++)
        *kb[i] = pst_alloc(sizeof(float) * k->nk);
    float **fb[] = {&k->bias, &k->db, &k->db0};
    for (size_t i = 0; i < 3; i++)
        *fb[i] = pst_alloc(sizeof(float) * (size_t)c->F);
    float **yb[] = {&k->y, &k->dy, &k->r, &k->w};
    for (size_t i = 0; i < 4; i++)
        *yb[i] = pst_alloc(sizeof(float) * k->ny);
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    tu_fill_uniform(k->x, k->nx, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k->kernel, k->nk, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k->bias, (size_t)c->F, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k->r, k->ny, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k->dk0, k->nk, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k->db0, (size_t)c->F, -1.0f, 1.0f, &rng);
}

static void ctx_deinit(dctx *k) {
    void *all[] = {k->x,  k->kernel, k->bias, k->r,  k->w,   k->y,
                   k->dy, k->dx,     k->dk,   k->db, k->dk0, k->db0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
}

static size_t xi_(const dctx *k, int n, int h, int w, int ch) {
    return (((size_t)n * k->c->H + h) * k->c->W + w) * k->c->C + ch;
}
static size_t ki_(const dctx *k, int i, int j, int ch, int f) {
    return (((size_t)i * k->c->KW + j) * k->c->C + ch) * k->c->F + f;
}
static size_t yi_(const dctx *k, int n, int oh, int ow, int f) {
    return (((size_t)n * k->OH + oh) * k->OW + ow) * k->c->F + f;
}

static void forward(dctx *k, eng_act act) {
    const dcase *c = k->c;
    eng_conv2d_direct_forward(k->y, k->x, k->kernel, k->bias, c->B, c->H, c->W, c->C, c->KH, c->KW,
                              c->F, k->OH, k->OW, act);
}

/* The engine's backward at the current forward, dy from r; dk and db start at dk0, db0
 * (accumulate) or garbage; dx at garbage, or NULL when !with_dx. */
static void backward(dctx *k, int accumulate, int with_dx) {
    const dcase *c = k->c;
    for (size_t i = 0; i < k->nk; i++)
        k->dk[i] = accumulate ? k->dk0[i] : GARBAGE;
    for (int i = 0; i < c->F; i++)
        k->db[i] = accumulate ? k->db0[i] : GARBAGE;
    for (size_t i = 0; i < k->nx; i++)
        k->dx[i] = GARBAGE;
    memcpy(k->dy, k->r, sizeof(float) * k->ny);
    eng_conv2d_direct_backward(with_dx ? k->dx : NULL, k->dk, k->db, k->dy, k->y, k->x, k->kernel,
                               c->B, c->H, c->W, c->C, c->KH, c->KW, c->F, k->OH, k->OW, c->act,
                               accumulate);
}

/* Elements outside the bound, and the largest |err| / bound. */
typedef struct derr {
    size_t over;
    double worst;
} derr;

static void err_add(derr *e, double got, double ref, double bound) {
    const double d = fabs(got - ref);
    bound += 1e-30;
    e->over += !(d <= bound); /* NaN counts */
    e->worst = fmax(e->worst, d / bound);
}

typedef struct dresult {
    derr y, dk, db, dx, y_im, dk_im, db_im, dx_im;
    size_t dy_wrong;
} dresult;

/* Forward and backward (accumulate or not) against double references and against im2col.
 * perturb: the engine's results are nudged first (the negative control). */
static dresult measure(dctx *k, int accumulate, int perturb) {
    const dcase *c = k->c;
    dresult res;
    memset(&res, 0, sizeof res);
    forward(k, c->act);
    backward(k, accumulate, 1);
    if (perturb) { /* one element each, by 0.1% of 1 + |value| */
        float *v[] = {&k->y[k->ny / 2], &k->dk[k->nk / 3], &k->db[c->F / 2], &k->dx[k->nx / 2]};
        for (size_t i = 0; i < 4; i++)
            *v[i] += 1e-3f * (1.0f + fabsf(*v[i]));
    }
    /* dy: exactly the activation's gradient of r */
    float *dyr = pst_alloc(sizeof(float) * k->ny);
    memcpy(dyr, k->r, sizeof(float) * k->ny);
    eng_act_backward(dyr, k->y, k->ny, c->act);
    for (size_t i = 0; i < k->ny; i++)
        res.dy_wrong += dyr[i] != k->dy[i];

    /* im2col + sgemm on the same inputs */
    const size_t ncol = (size_t)c->B * k->OH * k->OW * k->T;
    float *col = pst_alloc(sizeof(float) * ncol), *yim = pst_alloc(sizeof(float) * k->ny);
    float *dyim = pst_alloc(sizeof(float) * k->ny), *dxim = pst_alloc(sizeof(float) * k->nx);
    float *dkim = pst_alloc(sizeof(float) * k->nk), *dbim = pst_alloc(sizeof(float) * c->F);
    eng_conv2d_forward_part(yim, col, k->x, k->kernel, k->bias, c->B, c->H, c->W, c->C, c->KH,
                            c->KW, c->F, k->OH, k->OW, c->act);
    memcpy(dyim, k->r, sizeof(float) * k->ny);
    memcpy(dkim, k->dk0, sizeof(float) * k->nk);
    memcpy(dbim, k->db0, sizeof(float) * c->F);
    /* im2col's backward masks with its own y; the direct one's y masks the reference */
    eng_conv2d_backward_part(dxim, dkim, dbim, dyim, col, k->y, k->kernel, c->B, c->H, c->W, c->C,
                             c->KH, c->KW, c->F, k->OH, k->OW, c->act, accumulate);

    /* forward */
    for (int n = 0; n < c->B; n++)
        for (int oh = 0; oh < k->OH; oh++)
            for (int ow = 0; ow < k->OW; ow++)
                for (int f = 0; f < c->F; f++) {
                    double s = k->bias[f], mag = fabs(s);
                    for (int i = 0; i < c->KH; i++)
                        for (int j = 0; j < c->KW; j++)
                            for (int ch = 0; ch < c->C; ch++) {
                                const double p = (double)k->x[xi_(k, n, oh + i, ow + j, ch)] *
                                                 k->kernel[ki_(k, i, j, ch, f)];
                                s += p;
                                mag += fabs(p);
                            }
                    double bound = gamma_n(k->T + 1) * mag;
                    if (c->act == ENG_ACT_RELU && s < 0)
                        s = 0;
                    if (c->act == ENG_ACT_LEAKY_RELU && s < 0) {
                        s *= ENG_LEAKY_ALPHA;
                        bound += U_FLOAT * fabs(s);
                    }
                    const size_t o = yi_(k, n, oh, ow, f);
                    err_add(&res.y, k->y[o], s, bound);
                    err_add(&res.y_im, k->y[o], yim[o], 2 * bound);
                }

    /* dkernel and dbias over the M pixels, with the old values when accumulating */
    const double M = (double)c->B * k->OH * k->OW;
    for (int i = 0; i < c->KH; i++)
        for (int j = 0; j < c->KW; j++)
            for (int ch = 0; ch < c->C; ch++)
                for (int f = 0; f < c->F; f++) {
                    const size_t q = ki_(k, i, j, ch, f);
                    double s = accumulate ? k->dk0[q] : 0, mag = fabs(s);
                    for (int n = 0; n < c->B; n++)
                        for (int oh = 0; oh < k->OH; oh++)
                            for (int ow = 0; ow < k->OW; ow++) {
                                const double v = (double)k->x[xi_(k, n, oh + i, ow + j, ch)] *
                                                 dyr[yi_(k, n, oh, ow, f)];
                                s += v;
                                mag += fabs(v);
                            }
                    const double bound = gamma_n(M + 1) * mag;
                    err_add(&res.dk, k->dk[q], s, bound);
                    err_add(&res.dk_im, k->dk[q], dkim[q], 2 * bound);
                }
    for (int f = 0; f < c->F; f++) {
        double s = accumulate ? k->db0[f] : 0, mag = fabs(s);
        for (size_t o = (size_t)f; o < k->ny; o += (size_t)c->F) {
            s += dyr[o];
            mag += fabs(dyr[o]);
        }
        err_add(&res.db, k->db[f], s, gamma_n(M + 1) * mag);
        err_add(&res.db_im, k->db[f], dbim[f], 2 * gamma_n(M + 1) * mag);
    }

    /* dx: scattered in double */
    double *dxr = pst_alloc(sizeof(double) * k->nx), *dxm = pst_alloc(sizeof(double) * k->nx);
    for (int n = 0; n < c->B; n++)
        for (int oh = 0; oh < k->OH; oh++)
            for (int ow = 0; ow < k->OW; ow++)
                for (int i = 0; i < c->KH; i++)
                    for (int j = 0; j < c->KW; j++)
                        for (int ch = 0; ch < c->C; ch++) {
                            const size_t p = xi_(k, n, oh + i, ow + j, ch);
                            for (int f = 0; f < c->F; f++) {
                                const double v = (double)dyr[yi_(k, n, oh, ow, f)] *
                                                 k->kernel[ki_(k, i, j, ch, f)];
                                dxr[p] += v;
                                dxm[p] += fabs(v);
                            }
                        }
    const double gdx = gamma_n((double)c->KH * c->KW * c->F);
    for (size_t p = 0; p < k->nx; p++) {
        err_add(&res.dx, k->dx[p], dxr[p], gdx * dxm[p]);
        err_add(&res.dx_im, k->dx[p], dxim[p], 2 * gdx * dxm[p]);
    }
    void *all[] = {dyr, col, yim, dyim, dxim, dkim, dbim, dxr, dxm};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
    return res;
}

static void print_result(const dcase *c, int accumulate, const dresult *r) {
    printf("  %-26s acc %d  worst |err|/bound: y %.3f dkernel %.3f dbias %.3f dx %.3f; vs im2col "
           "(2x): y %.3f dkernel %.3f dbias %.3f dx %.3f\n",
           c->name, accumulate, r->y.worst, r->dk.worst, r->db.worst, r->dx.worst, r->y_im.worst,
           r->dk_im.worst, r->db_im.worst, r->dx_im.worst);
}

static size_t total_over(const dresult *r) {
    return r->y.over + r->dk.over + r->db.over + r->dx.over;
}

static double loss_none(void *arg) {
    dctx *k = arg;
    forward(k, ENG_ACT_NONE);
    return tu_dot(k->y, k->w, k->ny);
}

/* Central differences of L = sum(w * z), z the pre-activation outputs and w = r through
 * the activation's gradient at this point (L is affine in each of x, kernel, bias, so the
 * differences are exact up to rounding, kinks or not). Returns the mismatches; the
 * engine's gradients are those in k (dk, db, dx), which bad may nudge first. */
static size_t gradcheck(dctx *k, int bad) {
    const dcase *c = k->c;
    forward(k, c->act);
    memcpy(k->w, k->r, sizeof(float) * k->ny);
    eng_act_backward(k->w, k->y, k->ny, c->act);
    backward(k, 0, 1);
    if (bad) {
        k->dk[k->nk / 2] *= 1.01f;
        k->db[0] += 0.01f * fabsf(k->db[0]) + 1e-3f;
        k->dx[k->nx / 2] += 0.01f * fabsf(k->dx[k->nx / 2]) + 1e-3f;
    }
    tu_gradcheck gc = {.eps = 5e-2, .rtol = 1e-3, .atol = 1e-4, .max_checks = bad ? 0 : 300};
    tu_gradcheck_result res;
    gc.what = "direct dx";
    size_t fx = tu_gradcheck_run(&gc, k->x, k->nx, k->dx, loss_none, k, &res);
    gc.what = "direct dkernel";
    size_t fk = tu_gradcheck_run(&gc, k->kernel, k->nk, k->dk, loss_none, k, &res);
    gc.what = "direct dbias";
    size_t fb = tu_gradcheck_run(&gc, k->bias, (size_t)c->F, k->db, loss_none, k, &res);
    if (bad)
        return (fx > 0) + (fk > 0) + (fb > 0) == 3 ? 1 : 0; /* 1: all three caught */
    return fx + fk + fb;
}

/* Two runs, the same bits; without dx, the same dkernel and dbias bits as with it. */
static void check_bits(dctx *k) {
    const dcase *c = k->c;
    float *y1 = pst_alloc(sizeof(float) * k->ny), *dk1 = pst_alloc(sizeof(float) * k->nk);
    float *db1 = pst_alloc(sizeof(float) * c->F), *dx1 = pst_alloc(sizeof(float) * k->nx);
    forward(k, c->act);
    backward(k, 0, 1);
    memcpy(y1, k->y, sizeof(float) * k->ny);
    memcpy(dk1, k->dk, sizeof(float) * k->nk);
    memcpy(db1, k->db, sizeof(float) * c->F);
    memcpy(dx1, k->dx, sizeof(float) * k->nx);
    for (size_t i = 0; i < k->ny; i++)
        k->y[i] = GARBAGE;
    forward(k, c->act);
    assert_memory_equal(y1, k->y, sizeof(float) * k->ny);
    backward(k, 0, 1);
    assert_memory_equal(dk1, k->dk, sizeof(float) * k->nk);
    assert_memory_equal(db1, k->db, sizeof(float) * c->F);
    assert_memory_equal(dx1, k->dx, sizeof(float) * k->nx);
    backward(k, 0, 0);
    assert_memory_equal(dk1, k->dk, sizeof(float) * k->nk);
    assert_memory_equal(db1, k->db, sizeof(float) * c->F);
    void *all[] = {y1, dk1, db1, dx1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
}

static void run_case(const dcase *c, int with_gradcheck) {
    dctx k;
    ctx_init(&k, c, 0x5d1c0000u + (uint64_t)c->H * 131 + (uint64_t)c->C * 7 + (uint64_t)c->F);
    printf("direct %s: B=%d %dx%dx%d, kernel %dx%d, -> %dx%d of %dx%d x%d, %s\n", c->name, c->B,
           c->H, c->W, c->C, c->KH, c->KW, k.OH, k.OW, c->H - c->KH + 1, c->W - c->KW + 1, c->F,
           c->act == ENG_ACT_RELU   ? "relu"
           : c->act == ENG_ACT_NONE ? "none"
                                    : "leaky relu");
    for (int acc = 0; acc <= 1; acc++) {
        const dresult r = measure(&k, acc, 0);
        print_result(c, acc, &r);
        if (r.dy_wrong)
            fail_msg("%s: dy is not the activation's gradient at %zu elements", c->name,
                     r.dy_wrong);
        if (total_over(&r))
            fail_msg("%s (accumulate %d): outside the rounding bound: y %zu, dkernel %zu, "
                     "dbias %zu, dx %zu",
                     c->name, acc, r.y.over, r.dk.over, r.db.over, r.dx.over);
        if (r.y_im.over || r.dk_im.over || r.db_im.over || r.dx_im.over)
            fail_msg("%s (accumulate %d): disagrees with im2col beyond twice the bound: y %zu, "
                     "dkernel %zu, dbias %zu, dx %zu",
                     c->name, acc, r.y_im.over, r.dk_im.over, r.db_im.over, r.dx_im.over);
    }
    check_bits(&k);
    if (with_gradcheck) {
        const size_t bad = gradcheck(&k, 0);
        if (bad)
            fail_msg("%s: %zu gradient mismatches against central differences", c->name, bad);
    }
    ctx_deinit(&k);
}

#define CASE(fn, gc, ...)                                                                          \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        static const dcase c = {#fn, __VA_ARGS__};                                                 \
        run_case(&c, gc);                                                                          \
    }

/* clang-format off */
/*   name                      gc  B   H   W   C  F   KH KW OH  OW  act */
/* mnist_cnn conv1, at a chunk of 4 and a whole batch of 32 */
CASE(conv1_b4,                 1,  4,  28, 28, 1, 32, 3, 3, 0,  0,  ENG_ACT_RELU)
CASE(conv1_b32,                0,  32, 28, 28, 1, 32, 3, 3, 0,  0,  ENG_ACT_RELU)
CASE(conv1_none,               0,  2,  28, 28, 1, 32, 3, 3, 0,  0,  ENG_ACT_NONE)
/* odd shapes: 27 taps in three chunks and only a tail of filters; 2x3 on two channels, 12
 * taps (9 + 3), one vector of filters and a tail of one */
CASE(c3_f5_7x9,                1,  2,  7,  9,  3, 5,  3, 3, 0,  0,  ENG_ACT_RELU)
CASE(c2_f17_k2x3,              1,  3,  8,  7,  2, 17, 2, 3, 0,  0,  ENG_ACT_NONE)
/* partial outputs (the floor pool's cut) */
CASE(conv1_part_24x25,         1,  2,  28, 28, 1, 32, 3, 3, 24, 25, ENG_ACT_RELU)
CASE(c3_f40_part_7x9,          1,  2,  11, 13, 3, 40, 3, 3, 7,  9,  ENG_ACT_NONE)
/* 48 filters (32 + 16), 5x5 (25 taps); 1x1 on 4 channels, 33 filters; a leaky ReLU (the
 * activation applied after the loops) */
CASE(c1_f48_k5x5,              1,  2,  12, 10, 1, 48, 5, 5, 0,  0,  ENG_ACT_RELU)
CASE(c4_f33_k1x1,              1,  2,  5,  6,  4, 33, 1, 1, 0,  0,  ENG_ACT_NONE)
CASE(c1_f32_leaky,             0,  2,  9,  9,  1, 32, 3, 3, 0,  0,  ENG_ACT_LEAKY_RELU)
/* clang-format on */

/* Negative control: results nudged by 0.1% of 1 + |value| (one element each of y, dkernel,
 * dbias, dx) break the rounding bound, and gradients 1% off fail the central differences. */
static void perturbed_fails(void **state) {
    (void)state;
    static const dcase c = {"perturbed", 2, 9, 8, 2, 17, 3, 3, 0, 0, ENG_ACT_NONE};
    dctx k;
    ctx_init(&k, &c, 99);
    const dresult r = measure(&k, 0, 1);
    print_result(&c, 0, &r);
    printf("negative control: outside the bound: y %zu, dkernel %zu, dbias %zu, dx %zu\n", r.y.over,
           r.dk.over, r.db.over, r.dx.over);
    if (!r.y.over || !r.dk.over || !r.db.over || !r.dx.over)
        fail_msg("a perturbed result passed the bound: y %zu, dkernel %zu, dbias %zu, dx %zu",
                 r.y.over, r.dk.over, r.db.over, r.dx.over);
    if (!gradcheck(&k, 1))
        fail_msg("gradients 1%% off passed the central differences");
    ctx_deinit(&k);
}

static void suits(void **state) {
    (void)state;
    assert_true(eng_conv2d_direct_suits(3, 3, 1, 32));
    assert_true(eng_conv2d_direct_suits(3, 3, 1, 5));
    assert_true(eng_conv2d_direct_suits(1, 1, 9, 64));
    assert_false(eng_conv2d_direct_suits(3, 3, 3, 32));
    assert_false(eng_conv2d_direct_suits(3, 3, 32, 64));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(suits),
        cmocka_unit_test(conv1_b4),
        cmocka_unit_test(conv1_b32),
        cmocka_unit_test(conv1_none),
        cmocka_unit_test(c3_f5_7x9),
        cmocka_unit_test(c2_f17_k2x3),
        cmocka_unit_test(conv1_part_24x25),
        cmocka_unit_test(c3_f40_part_7x9),
        cmocka_unit_test(c1_f48_k5x5),
        cmocka_unit_test(c4_f33_k1x1),
        cmocka_unit_test(c1_f32_leaky),
        cmocka_unit_test(perturbed_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
