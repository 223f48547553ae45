/* test_winograd.c: the Winograd 3x3 convolution (engine/winograd.h), F(2x2), F(4x4), F(5x5),
 * against a direct convolution in double (forward, dx, dkernel, dbias) within a derived
 * rounding bound, against central differences, with a negative control: transforms
 * perturbed by 1% in one entry must break the bound.
 *
 * The bound. u = 2^-24. Each float operation adds a relative error of at most u to its
 * result, so a computed sum of products has an error of at most about n*u times the same
 * sum taken over absolute values, n the longest chain of roundings. For the direct float
 * path (im2col + sgemm) that sum is S_o = sum over the 9C terms of |x||k| and n = 9C.
 * Winograd computes y = A^T [ sum_c (G g G^T) . (B^T d B) ] A, and its sum over absolute
 * values is |A^T| [ sum_c (|G||g||G^T|) . (|B^T||d||B|) ] |A|, which reaches terms of |x||k|
 * far outside the output's window, weighted by the transforms. With gm_i = max_a |G[i][a]|,
 * b_i = sum_l |B^T[i][l]|, a_i = sum_r |A^T[r][i]|, and per tile and channel the largest
 * |x| (xm) and per tile and filter the largest |dy| (dm):
 *   forward  |err| <= (C + 4 alpha + 8) u k_y  sum_c xm_c ||k_cf||_1 (+ |bias|),
 *            k_y  = max_r (sum_i |A^T[r][i]| gm_i b_i)^2;
 *   dx       |err| <= (F + 4 alpha + 12) u k_dx sum_{tiles over p} sum_f dm_f ||k_cf||_1,
 *            k_dx = max_p (sum_i |B^T[i][p]| gm_i a_i)^2 (+4: up to 4 overlapping tiles);
 *   dkernel  |err| <= (T + 4 alpha + 8) u k_dk sum_tiles xm_c dm_f,
 *            k_dk = max_a (sum_i |G[i][a]| b_i a_i)^2;
 * the 4 alpha for the two 2-D transforms of alpha-term sums, the 8 for the kernel transform
 * and the rounding of the stored entries (1/3, 1/15). The k are computed below from the
 * transforms themselves: 16, 9, 36 for F(2x2); 307, 182, 1248 for F(4x4) (its points
 * 0, 1, -1, 1/2, -2: k_y would be 860 with Lavin's 0, +-1, +-2); 1620, 796, 6637 for F(5x5)
 * (0, 1, -1, 1/2, -1/2, 2). So F(4x4) is allowed about 20x the error of F(2x2), F(5x5) 100x,
 * and all far more than the direct path. The bound is a worst case:
 * the measured errors (printed, as max |err| / S, the direct path's beside them) sit
 * 300-1000x below it, and a transform entry 1% off breaks it only 2-5x (F(5x5): G 1-2x, A^T
 * not at all). So a second,
 * tighter check in the brief's form, per element, |err| <= 32 sqrt(k) u S (S the sum of the
 * element's |terms|): not a proven bound but a regression alarm, set about 10x above the
 * largest error measured over these shapes (4 u sqrt(k) typical: rounding errors add like a
 * random walk, and k is the transforms' squared growth), which an entry 0.1% off breaks. */
#include "engine/conv2d.h"
#include "engine/winograd.h"

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

#define U_FLOAT 5.9604644775390625e-8 /* 2^-24 */
#define GARBAGE 777.0f
#define ALARM 32.0 /* the regression alarm: |err| <= ALARM sqrt(k) u S (header comment) */

typedef struct wcase {
    const char *name;
    int m, B, H, W, C, F, OH, OW; /* OH, OW 0: the full H-2, W-2 */
    eng_act act;
} wcase;

/* The growth constants of the header comment, from the transforms. */
typedef struct wkappa {
    double y, dx, dk;
} wkappa;

static wkappa kappas(const eng_winograd_tf *t) {
    const int a = t->alpha, m = t->m;
    double gm[ENG_WINOGRAD_MAX_ALPHA], bs[ENG_WINOGRAD_MAX_ALPHA], as[ENG_WINOGRAD_MAX_ALPHA];
    for (int i = 0; i < a; i++) {
        gm[i] = bs[i] = as[i] = 0;
        for (int k = 0; k < 3; k++)
            gm[i] = fmax(gm[i], fabs(t->g[i][k]));
        for (int l = 0; l < a; l++)
            bs[i] += fabs(t->bt[i][l]);
        for (int r = 0; r < m; r++)
            as[i] += fabs(t->at[r][i]);
    }
    wkappa k = {0, 0, 0};
    for (int r = 0; r < m; r++) {
        double s = 0;
        for (int i = 0; i < a; i++)
            s += fabs(t->at[r][i]) * gm[i] * bs[i];
        k.y = fmax(k.y, s * s);
    }
    for (int p = 0; p < a; p++) {
        double s = 0;
        for (int i = 0; i < a; i++)
            s += fabs(t->bt[i][p]) * gm[i] * as[i];
        k.dx = fmax(k.dx, s * s);
    }
    for (int c = 0; c < 3; c++) {
        double s = 0;
        for (int i = 0; i < a; i++)
            s += fabs(t->g[i][c]) * bs[i] * as[i];
        k.dk = fmax(k.dk, s * s);
    }
    return k;
}

typedef struct wctx {
    const wcase *c;
    const eng_winograd_tf *tf;
    int OH, OW, tH, tW, T;
    size_t nx, nk, ny;
    float *x, *kernel, *bias, *y, *r, *w, *saved, *scratch, *U;
} wctx;

static void ctx_init(wctx *k, const wcase *c, const eng_winograd_tf *tf, uint64_t seed) {
    memset(k, 0, sizeof *k);
    k->c = c;
    k->tf = tf;
    k->OH = c->OH ? c->OH : c->H - 2;
    k->OW = c->OW ? c->OW : c->W - 2;
    k->tH = (k->OH + c->m - 1) / c->m;
    k->tW = (k->OW + c->m - 1) / c->m;
    k->T = c->B * k->tH * k->tW;
    k->nx = (size_t)c->B * c->H * c->W * c->C;
    k->nk = (size_t)9 * c->C * c->F;
    k->ny = (size_t)c->B * k->OH * k->OW * c->F;
    k->x = pst_alloc(sizeof(float) * k->nx);
    k->kernel = pst_alloc(sizeof(float) * k->nk);
    k->bias = pst_alloc(sizeof(float) * (size_t)c->F);
    k->y = pst_alloc(sizeof(float) * k->ny);
    k->r = pst_alloc(sizeof(float) * k->ny);
    k->w = pst_alloc(sizeof(float) * k->ny);
    k->saved = pst_alloc(sizeof(float) * eng_winograd_saved_floats(tf, c->B, k->OH, k->OW, c->C));
    k->U = pst_alloc(sizeof(float) * eng_winograd_kernel_floats(tf, c->C, c->F));
    k->scratch =
        pst_alloc(sizeof(float) * eng_winograd_scratch_floats(tf, c->B, k->OH, k->OW, c->C, c->F));
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    tu_fill_uniform(k->x, k->nx, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k->kernel, k->nk, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k->bias, (size_t)c->F, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k->r, k->ny, -1.0f, 1.0f, &rng);
}

static void ctx_deinit(wctx *k) {
    void *all[] = {k->x, k->kernel, k->bias, k->y, k->r, k->w, k->saved, k->scratch, k->U};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
}

/* The kernel's transform, then the forward (the differences move the kernel). */
static void forward_act(wctx *k, eng_act act) {
    const wcase *c = k->c;
    eng_winograd_kernel_transform(k->U, k->kernel, c->C, c->F, k->tf);
    eng_winograd_forward(k->y, k->saved, k->scratch, k->x, k->U, k->bias, c->B, c->H, c->W, c->C,
                         c->F, k->OH, k->OW, k->tf, act);
}

static size_t xi_(const wctx *k, int n, int h, int w, int ch) {
    return (((size_t)n * k->c->H + h) * k->c->W + w) * k->c->C + ch;
}
static size_t ki_(const wctx *k, int i, int j, int ch, int f) {
    return (((size_t)i * 3 + j) * k->c->C + ch) * k->c->F + f;
}
static size_t yi_(const wctx *k, int n, int oh, int ow, int f) {
    return (((size_t)n * k->OH + oh) * k->OW + ow) * k->c->F + f;
}

/* Per tile: the largest |x| of each channel over its alpha x alpha inputs (xm, (T, C)) and
 * the largest |g| of each filter over its computed outputs (dm, (T, F)). */
static void tile_maxima(const wctx *k, const float *g, double *xm, double *dm) {
    const wcase *c = k->c;
    const int m = c->m, a = m + 2;
    for (int n = 0; n < c->B; n++)
        for (int th = 0; th < k->tH; th++)
            for (int tw = 0; tw < k->tW; tw++) {
                const size_t t = ((size_t)n * k->tH + th) * k->tW + tw;
                for (int ch = 0; ch < c->C; ch++) {
                    double mx = 0;
                    for (int p = 0; p < a && th * m + p < c->H; p++)
                        for (int q = 0; q < a && tw * m + q < c->W; q++)
                            mx = fmax(mx, fabs(k->x[xi_(k, n, th * m + p, tw * m + q, ch)]));
                    xm[t * c->C + ch] = mx;
                }
                for (int f = 0; f < c->F; f++) {
                    double mx = 0;
                    for (int r = 0; r < m && th * m + r < k->OH; r++)
                        for (int s = 0; s < m && tw * m + s < k->OW; s++)
                            mx = fmax(mx, fabs(g[yi_(k, n, th * m + r, tw * m + s, f)]));
                    dm[t * c->F + f] = mx;
                }
            }
}

/* The measured errors of one tensor: max |err| / S (S the sum of |terms|), max |err| /
 * bound, and how many elements exceed the bound. */
typedef struct werr {
    double rel, of_bound;
    size_t over, alarms;
} werr;

static void err_add(werr *e, double got, double ref, double mag, double bound, double alarm_c) {
    const double d = fabs(got - ref);
    if (mag > 0)
        e->rel = fmax(e->rel, d / mag);
    e->of_bound = fmax(e->of_bound, d / bound);
    e->over += d > bound;
    e->alarms += alarm_c > 0 && d > alarm_c * U_FLOAT * mag + 1e-30;
}

typedef struct wresult {
    werr y, y_direct, dx, dk, db;
} wresult;

/* Forward and backward (dy = r, through the activation) against double references; y and
 * the gradients are the engine's at the current point. kp: the constants of the correct
 * transforms (a perturbed tf keeps the correct bound). */
static wresult measure(wctx *k, const wkappa *kp) {
    const wcase *c = k->c;
    const int a = c->m + 2;
    wresult res;
    memset(&res, 0, sizeof res);
    double *xm = pst_alloc(sizeof(double) * (size_t)k->T * c->C);
    double *dm = pst_alloc(sizeof(double) * (size_t)k->T * c->F);
    double *kn1 = pst_alloc(sizeof(double) * (size_t)c->C * c->F);
    double *dxr = pst_alloc(sizeof(double) * k->nx), *dxm = pst_alloc(sizeof(double) * k->nx);
    double *dxb = pst_alloc(sizeof(double) * k->nx);
    float *ydir = pst_alloc(sizeof(float) * k->ny);
    float *col = pst_alloc(sizeof(float) * (size_t)c->B * k->OH * k->OW * 9 * c->C);
    float *dy = pst_alloc(sizeof(float) * k->ny), *dx = pst_alloc(sizeof(float) * k->nx);
    float *dk = pst_alloc(sizeof(float) * k->nk), *db = pst_alloc(sizeof(float) * (size_t)c->F);
    for (int ch = 0; ch < c->C; ch++)
        for (int f = 0; f < c->F; f++) {
            double s = 0;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    s += fabs(k->kernel[ki_(k, i, j, ch, f)]);
            kn1[(size_t)ch * c->F + f] = s;
        }

    /* forward: the engine's Winograd and the direct float path against double */
    forward_act(k, c->act);
    eng_conv2d_forward_part(ydir, col, k->x, k->kernel, k->bias, c->B, c->H, c->W, c->C, 3, 3, c->F,
                            k->OH, k->OW, c->act);
    /* dy: r through the activation, as the engine's backward will see it */
    for (size_t i = 0; i < k->ny; i++)
        dy[i] = c->act == ENG_ACT_RELU && k->y[i] <= 0.0f ? 0.0f : k->r[i];
    tile_maxima(k, dy, xm, dm);
    const double ny_steps = c->C + 4.0 * a + 8, ndx_steps = c->F + 4.0 * a + 12,
                 ndk_steps = k->T + 4.0 * a + 8, ndir_steps = 9.0 * c->C + 2;
    for (int n = 0; n < c->B; n++)
        for (int oh = 0; oh < k->OH; oh++)
            for (int ow = 0; ow < k->OW; ow++) {
                const size_t t = ((size_t)n * k->tH + oh / c->m) * k->tW + ow / c->m;
                for (int f = 0; f < c->F; f++) {
                    double s = k->bias[f], mag = fabs(s), dsum = fabs(s);
                    for (int ch = 0; ch < c->C; ch++) {
                        dsum += xm[t * c->C + ch] * kn1[(size_t)ch * c->F + f];
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                double p = (double)k->x[xi_(k, n, oh + i, ow + j, ch)] *
                                           k->kernel[ki_(k, i, j, ch, f)];
                                s += p;
                                mag += fabs(p);
                            }
                    }
                    /* ReLU: |relu(a) - relu(b)| <= |a - b|, the bound carries over */
                    if (c->act == ENG_ACT_RELU && s < 0)
                        s = 0;
                    const size_t o = yi_(k, n, oh, ow, f);
                    err_add(&res.y, k->y[o], s, mag, ny_steps * U_FLOAT * kp->y * dsum + 1e-30,
                            ALARM * sqrt(kp->y));
                    err_add(&res.y_direct, ydir[o], s, mag, ndir_steps * U_FLOAT * mag + 1e-30, 0);
                }
            }

    /* backward */
    for (size_t i = 0; i < k->nx; i++)
        dx[i] = GARBAGE;
    for (size_t i = 0; i < k->nk; i++)
        dk[i] = GARBAGE;
    for (int i = 0; i < c->F; i++)
        db[i] = GARBAGE;
    float *dy_engine = pst_alloc(sizeof(float) * k->ny);
    memcpy(dy_engine, k->r, sizeof(float) * k->ny);
    eng_winograd_backward(dx, dk, db, dy_engine, k->saved, k->scratch, k->y, k->U, c->B, c->H, c->W,
                          c->C, c->F, k->OH, k->OW, k->tf, c->act, 0);
    pst_free(dy_engine);
    memset(dxr, 0, sizeof(double) * k->nx);
    memset(dxm, 0, sizeof(double) * k->nx);
    memset(dxb, 0, sizeof(double) * k->nx);
    for (int n = 0; n < c->B; n++)
        for (int oh = 0; oh < k->OH; oh++)
            for (int ow = 0; ow < k->OW; ow++)
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        for (int ch = 0; ch < c->C; ch++) {
                            const size_t p = xi_(k, n, oh + i, ow + j, ch);
                            for (int f = 0; f < c->F; f++) {
                                double v = (double)dy[yi_(k, n, oh, ow, f)] *
                                           k->kernel[ki_(k, i, j, ch, f)];
                                dxr[p] += v;
                                dxm[p] += fabs(v);
                            }
                        }
    /* dx's bound: over the tiles whose inputs cover p */
    for (int n = 0; n < c->B; n++)
        for (int th = 0; th < k->tH; th++)
            for (int tw = 0; tw < k->tW; tw++) {
                const size_t t = ((size_t)n * k->tH + th) * k->tW + tw;
                for (int p = 0; p < a && th * c->m + p < c->H; p++)
                    for (int q = 0; q < a && tw * c->m + q < c->W; q++)
                        for (int ch = 0; ch < c->C; ch++) {
                            double s = 0;
                            for (int f = 0; f < c->F; f++)
                                s += dm[t * c->F + f] * kn1[(size_t)ch * c->F + f];
                            dxb[xi_(k, n, th * c->m + p, tw * c->m + q, ch)] += s;
                        }
            }
    for (size_t p = 0; p < k->nx; p++)
        err_add(&res.dx, dx[p], dxr[p], dxm[p], ndx_steps * U_FLOAT * kp->dx * dxb[p] + 1e-30,
                ALARM * sqrt(kp->dx));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int ch = 0; ch < c->C; ch++)
                for (int f = 0; f < c->F; f++) {
                    double s = 0, mag = 0, bsum = 0;
                    for (int n = 0; n < c->B; n++)
                        for (int oh = 0; oh < k->OH; oh++)
                            for (int ow = 0; ow < k->OW; ow++) {
                                double v = (double)k->x[xi_(k, n, oh + i, ow + j, ch)] *
                                           dy[yi_(k, n, oh, ow, f)];
                                s += v;
                                mag += fabs(v);
                            }
                    for (int t = 0; t < k->T; t++)
                        bsum += xm[(size_t)t * c->C + ch] * dm[(size_t)t * c->F + f];
                    err_add(&res.dk, dk[ki_(k, i, j, ch, f)], s, mag,
                            ndk_steps * U_FLOAT * kp->dk * bsum + 1e-30, ALARM * sqrt(kp->dk));
                }
    const double rows = (double)c->B * k->OH * k->OW;
    for (int f = 0; f < c->F; f++) {
        double s = 0, mag = 0;
        for (size_t o = (size_t)f; o < k->ny; o += (size_t)c->F) {
            s += dy[o];
            mag += fabs(dy[o]);
        }
        err_add(&res.db, db[f], s, mag, rows * U_FLOAT * mag + 1e-30, 0);
    }
    void *all[] = {xm, dm, kn1, dxr, dxm, dxb, ydir, col, dy, dx, dk, db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
    return res;
}

static void print_result(const wcase *c, const wresult *r) {
    printf("  %-22s max|err|/S: y %.2e (direct float %.2e), dx %.2e, dkernel %.2e, dbias %.2e;"
           " of the bound: y %.3f, dx %.3f, dkernel %.3f\n",
           c->name, r->y.rel, r->y_direct.rel, r->dx.rel, r->dk.rel, r->db.rel, r->y.of_bound,
           r->dx.of_bound, r->dk.of_bound);
}

static double loss_none(void *arg) {
    wctx *k = arg;
    forward_act(k, ENG_ACT_NONE);
    return tu_dot(k->y, k->w, k->ny);
}

/* Central differences of L = sum(w * z), z the pre-activation outputs and w = r masked by
 * the ReLU at this point (affine, so differences are exact up to rounding; see
 * test_conv2d.c). */
static void gradcheck(wctx *k) {
    const wcase *c = k->c;
    forward_act(k, c->act);
    for (size_t i = 0; i < k->ny; i++)
        k->w[i] = c->act == ENG_ACT_RELU && k->y[i] <= 0.0f ? 0.0f : k->r[i];
    float *dy = pst_alloc(sizeof(float) * k->ny), *dx = pst_alloc(sizeof(float) * k->nx);
    float *dk = pst_alloc(sizeof(float) * k->nk), *db = pst_alloc(sizeof(float) * (size_t)c->F);
    memcpy(dy, k->r, sizeof(float) * k->ny);
    eng_winograd_backward(dx, dk, db, dy, k->saved, k->scratch, k->y, k->U, c->B, c->H, c->W, c->C,
                          c->F, k->OH, k->OW, k->tf, c->act, 0);
    tu_gradcheck gc = {.eps = 5e-2, .rtol = 1e-3, .atol = 1e-4, .max_checks = 300};
    tu_gradcheck_result res;
    gc.what = "winograd dx";
    size_t fx = tu_gradcheck_run(&gc, k->x, k->nx, dx, loss_none, k, &res);
    gc.what = "winograd dkernel";
    size_t fk = tu_gradcheck_run(&gc, k->kernel, k->nk, dk, loss_none, k, &res);
    gc.what = "winograd dbias";
    size_t fb = tu_gradcheck_run(&gc, k->bias, (size_t)c->F, db, loss_none, k, &res);
    if (fx || fk || fb)
        fail_msg("%s: gradient mismatches: dx %zu, dkernel %zu, dbias %zu", c->name, fx, fk, fb);

    /* accumulate adds dkernel and dbias to what is there; dx is written */
    float *dk2 = pst_alloc(sizeof(float) * k->nk), *db2 = pst_alloc(sizeof(float) * (size_t)c->F);
    float *dx2 = pst_alloc(sizeof(float) * k->nx);
    for (size_t i = 0; i < k->nk; i++)
        dk2[i] = 1.0f;
    for (int i = 0; i < c->F; i++)
        db2[i] = -1.0f;
    for (size_t i = 0; i < k->nx; i++)
        dx2[i] = GARBAGE;
    forward_act(k, c->act);
    memcpy(dy, k->r, sizeof(float) * k->ny);
    eng_winograd_backward(dx2, dk2, db2, dy, k->saved, k->scratch, k->y, k->U, c->B, c->H, c->W,
                          c->C, c->F, k->OH, k->OW, k->tf, c->act, 1);
    for (size_t i = 0; i < k->nk; i++)
        if (fabsf(dk2[i] - (1.0f + dk[i])) > 1e-5f * (1.0f + fabsf(dk[i])))
            fail_msg("%s: accumulate: dkernel[%zu] = %g, expected 1 + %g", c->name, i, dk2[i],
                     dk[i]);
    for (int i = 0; i < c->F; i++)
        if (fabsf(db2[i] - (db[i] - 1.0f)) > 1e-5f * (1.0f + fabsf(db[i])))
            fail_msg("%s: accumulate: dbias[%d] = %g, expected %g - 1", c->name, i, db2[i], db[i]);
    for (size_t i = 0; i < k->nx; i++)
        if (dx2[i] != dx[i])
            fail_msg("%s: accumulate: dx[%zu] = %g, expected %g (written)", c->name, i, dx2[i],
                     dx[i]);
    /* without dx (a first layer): the same parameter gradients, bit for bit */
    forward_act(k, c->act);
    memcpy(dy, k->r, sizeof(float) * k->ny);
    eng_winograd_backward(NULL, dk2, db2, dy, k->saved, k->scratch, k->y, k->U, c->B, c->H, c->W,
                          c->C, c->F, k->OH, k->OW, k->tf, c->act, 0);
    for (size_t i = 0; i < k->nk; i++)
        if (dk2[i] != dk[i])
            fail_msg("%s: dkernel[%zu] = %g without dx, %g with", c->name, i, dk2[i], dk[i]);
    for (int i = 0; i < c->F; i++)
        if (db2[i] != db[i])
            fail_msg("%s: dbias[%d] = %g without dx, %g with", c->name, i, db2[i], db[i]);
    void *all[] = {dy, dx, dk, db, dk2, db2, dx2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
}

static void run_case(const wcase *c, int with_gradcheck) {
    const eng_winograd_tf *tf = eng_winograd_tf_for(c->m);
    assert_non_null(tf);
    const wkappa kp = kappas(tf);
    wctx k;
    ctx_init(&k, c, tf, 0x3160000u + (uint64_t)c->H * 131 + (uint64_t)c->C * 7 + (uint64_t)c->F);
    printf("winograd F(%dx%d) %s: B=%d %dx%dx%d -> %dx%d of %dx%d x%d, %s; k_y %.0f k_dx %.0f "
           "k_dk %.0f\n",
           c->m, c->m, c->name, c->B, c->H, c->W, c->C, k.OH, k.OW, c->H - 2, c->W - 2, c->F,
           c->act == ENG_ACT_RELU ? "relu" : "none", kp.y, kp.dx, kp.dk);
    wresult r = measure(&k, &kp);
    print_result(c, &r);
    if (r.y.over || r.dx.over || r.dk.over || r.db.over)
        fail_msg("%s: outside the rounding bound: y %zu, dx %zu, dkernel %zu, dbias %zu", c->name,
                 r.y.over, r.dx.over, r.dk.over, r.db.over);
    if (r.y.alarms || r.dx.alarms || r.dk.alarms)
        fail_msg("%s: past the regression alarm (32 sqrt(k) u S): y %zu, dx %zu, dkernel %zu",
                 c->name, r.y.alarms, r.dx.alarms, r.dk.alarms);
    if (r.y_direct.over)
        fail_msg("%s: the direct float path is outside its own bound (%zu): the reference is off",
                 c->name, r.y_direct.over);
    if (with_gradcheck)
        gradcheck(&k);
    ctx_deinit(&k);
}

#define CASE(fn, gc, ...)                                                                          \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        static const wcase c = {#fn, __VA_ARGS__};                                                 \
        run_case(&c, gc);                                                                          \
    }

/* clang-format off */
/*   name                     gc m  B  H   W   C   F   OH  OW  act */
CASE(f2_odd_7x9_c1_f1,        1, 2, 1, 7,  9,  1,  1,  0,  0,  ENG_ACT_NONE)
CASE(f4_odd_7x9_c1_f1,        1, 4, 1, 7,  9,  1,  1,  0,  0,  ENG_ACT_NONE)
CASE(f2_odd_13x11_c3_f5,      1, 2, 3, 13, 11, 3,  5,  0,  0,  ENG_ACT_RELU)
CASE(f4_odd_13x11_c3_f5,      1, 4, 3, 13, 11, 3,  5,  0,  0,  ENG_ACT_RELU)
CASE(f2_c32_f64_b3,           0, 2, 3, 9,  7,  32, 64, 0,  0,  ENG_ACT_NONE)
CASE(f4_c32_f64_b3,           0, 4, 3, 9,  7,  32, 64, 0,  0,  ENG_ACT_NONE)
CASE(f2_c32_f5_b1_13x13,      0, 2, 1, 13, 13, 32, 5,  0,  0,  ENG_ACT_RELU)
CASE(f4_c3_f64_b1_11x13,      0, 4, 1, 11, 13, 3,  64, 0,  0,  ENG_ACT_RELU)
/* the partial output: 24x24 of a 26x26 input (all of it), an odd cut, conv2 of mnist_cnn
 * (10x10 of 11x11 from 13x13: the floor pool's skipped last row and column) */
CASE(f2_26x26_full_24,        0, 2, 1, 26, 26, 3,  5,  24, 24, ENG_ACT_NONE)
CASE(f4_26x26_full_24,        0, 4, 1, 26, 26, 3,  5,  24, 24, ENG_ACT_NONE)
CASE(f2_odd_cut_9x7_of_11,    1, 2, 2, 13, 13, 3,  5,  9,  7,  ENG_ACT_NONE)
CASE(f4_odd_cut_9x7_of_11,    1, 4, 2, 13, 13, 3,  5,  9,  7,  ENG_ACT_NONE)
CASE(f2_mnist_conv2_part,     0, 2, 3, 13, 13, 32, 64, 10, 10, ENG_ACT_RELU)
CASE(f4_mnist_conv2_part,     0, 4, 3, 13, 13, 32, 64, 10, 10, ENG_ACT_RELU)
/* F(5x5): odd sizes, a cut, full outputs, and conv2 of mnist_cnn (10x10: two tiles a side) */
CASE(f5_odd_7x9_c1_f1,        1, 5, 1, 7,  9,  1,  1,  0,  0,  ENG_ACT_NONE)
CASE(f5_odd_13x11_c3_f5,      1, 5, 3, 13, 11, 3,  5,  0,  0,  ENG_ACT_RELU)
CASE(f5_c32_f64_b3,           0, 5, 3, 9,  7,  32, 64, 0,  0,  ENG_ACT_NONE)
CASE(f5_26x26_full_24,        0, 5, 1, 26, 26, 3,  5,  24, 24, ENG_ACT_NONE)
CASE(f5_odd_cut_9x7_of_11,    1, 5, 2, 13, 13, 3,  5,  9,  7,  ENG_ACT_NONE)
CASE(f5_mnist_conv2_part,     0, 5, 3, 13, 13, 32, 64, 10, 10, ENG_ACT_RELU)
/* clang-format on */

/* Negative control: F(4x4) or F(5x5) with one entry of G (the kernel transform) or of A^T
 * (the output transform) off by 1% must break the bound that the correct transforms meet
 * (F(5x5)'s A^T: the alarm), and B^T 0.1% off the alarm. */
static void perturbed_transform_fails_m(int m) {
    const wcase c = {"perturbed", m, 2, 13, 11, 8, 6, 0, 0, ENG_ACT_NONE};
    const eng_winograd_tf *good = eng_winograd_tf_for(m);
    const wkappa kp = kappas(good);
    for (int which = 0; which < 3; which++) {
        eng_winograd_tf bad = *good;
        if (which == 0)
            bad.g[3][1] *= 1.01f;
        else if (which == 1)
            bad.at[2][3] *= 1.01f;
        else
            bad.bt[1][2] *= 1.001f; /* 0.1%: within the bound, past the alarm */
        wctx k;
        ctx_init(&k, &c, &bad, 77);
        wresult r = measure(&k, &kp);
        printf("negative control, F(%dx%d) (%s): outside the bound: y %zu, dx %zu, dkernel %zu; "
               "past the "
               "alarm: y %zu, dx %zu, dkernel %zu\n",
               m, m,
               which == 0   ? "G[3][1] 1% off"
               : which == 1 ? "A^T[2][3] 1% off"
                            : "B^T[1][2] 0.1% off",
               r.y.over, r.dx.over, r.dk.over, r.y.alarms, r.dx.alarms, r.dk.alarms);
        print_result(&c, &r);
        if (which == 2) {
            if (r.y.alarms == 0 || r.dx.alarms == 0)
                fail_msg("B^T 0.1%% off passed the alarm: y %zu, dx %zu", r.y.alarms, r.dx.alarms);
            ctx_deinit(&k);
            continue;
        }
        if (m == 5 && which == 1) {
            /* F(5x5)'s worst case (k_y 1620) is loose enough that A^T 1% off stays inside it
             * (0.7 of it here); the alarm catches it */
            if (r.y.alarms == 0 || r.dx.alarms == 0)
                fail_msg("F(5x5): A^T 1%% off passed the alarm: y %zu, dx %zu", r.y.alarms,
                         r.dx.alarms);
            ctx_deinit(&k);
            continue;
        }
        if (r.y.over == 0)
            fail_msg("a perturbed transform (%d) passed the forward bound", which);
        if (which == 0 && (r.dx.over == 0 || r.dk.over == 0))
            fail_msg("a perturbed G passed the gradient bounds: dx %zu, dkernel %zu over",
                     r.dx.over, r.dk.over);
        ctx_deinit(&k);
    }
}

static void perturbed_transform_fails(void **state) {
    (void)state;
    perturbed_transform_fails_m(4);
    perturbed_transform_fails_m(5);
}

/* The shapes the transforms refuse to handle are the caller's bug: only the tables. */
static void tables(void **state) {
    (void)state;
    assert_null(eng_winograd_tf_for(3));
    assert_null(eng_winograd_tf_for(6));
    assert_int_equal(eng_winograd_tf_for(2)->alpha, 4);
    assert_int_equal(eng_winograd_tf_for(4)->alpha, 6);
    assert_int_equal(eng_winograd_tf_for(5)->alpha, 7);
    const eng_winograd_tf *t = eng_winograd_tf_for(4);
    /* 13x13 -> 10x10 in 3x3 tiles of 6x6 inputs, 32 channels, B 4 */
    /* each of the 36 planes padded by 16 floats */
    assert_int_equal(eng_winograd_saved_floats(t, 4, 10, 10, 32), 36 * (36 * 32 + 16));
    /* U and its transpose */
    assert_int_equal(eng_winograd_kernel_floats(t, 32, 64), 2 * 36 * (32 * 64 + 16));
    assert_int_equal(eng_winograd_scratch_floats(t, 4, 10, 10, 32, 64),
                     36 * (32 * 64 + 16) + 36 * (36 * 64 + 16));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tables),
        cmocka_unit_test(f2_odd_7x9_c1_f1),
        cmocka_unit_test(f4_odd_7x9_c1_f1),
        cmocka_unit_test(f2_odd_13x11_c3_f5),
        cmocka_unit_test(f4_odd_13x11_c3_f5),
        cmocka_unit_test(f2_c32_f64_b3),
        cmocka_unit_test(f4_c32_f64_b3),
        cmocka_unit_test(f2_c32_f5_b1_13x13),
        cmocka_unit_test(f4_c3_f64_b1_11x13),
        cmocka_unit_test(f2_26x26_full_24),
        cmocka_unit_test(f4_26x26_full_24),
        cmocka_unit_test(f2_odd_cut_9x7_of_11),
        cmocka_unit_test(f4_odd_cut_9x7_of_11),
        cmocka_unit_test(f2_mnist_conv2_part),
        cmocka_unit_test(f4_mnist_conv2_part),
        cmocka_unit_test(f5_odd_7x9_c1_f1),
        cmocka_unit_test(f5_odd_13x11_c3_f5),
        cmocka_unit_test(f5_c32_f64_b3),
        cmocka_unit_test(f5_26x26_full_24),
        cmocka_unit_test(f5_odd_cut_9x7_of_11),
        cmocka_unit_test(f5_mnist_conv2_part),
        cmocka_unit_test(perturbed_transform_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
