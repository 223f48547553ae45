/* test_batchnorm.c: BatchNormalization's forward against hand-computed values (training:
 * batch mean and biased variance; the moving statistics' update; inference: the moving
 * statistics, left alone), its gradients (dx through the batch statistics, dgamma, dbeta)
 * against central differences of L = sum(y * R) for a Dense-shaped (B, 1, 1, n) and a
 * conv-shaped (B, h, w, c) input, in training and inference mode, accumulate, and the layer
 * entry: Keras's tensors and initialisers, state updated through params, zero state
 * gradients. */
#include "engine/batchnorm.h"

#include "engine/base/base.h"
#include "engine/layer.h"
#include "engine/model.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define GARBAGE 777.0f

static void near(double got, double want, double tol, const char *what, int i) {
    if (fabs(got - want) > tol * (1.0 + fabs(want)))
        fail_msg("%s[%d] = %.9g, expected %.9g", what, i, got, want);
}

/* Two channels over four rows: channel 0 is 1, 2, 3, 4 (mean 2.5, biased variance 1.25),
 * channel 1 is 0, 0, 0, 4 (mean 1, variance 3). */
static void forward_by_hand(void **state) {
    (void)state;
    const float x[8] = {1, 0, 2, 0, 3, 0, 4, 4};
    const float gamma[2] = {2.0f, 0.5f}, beta[2] = {1.0f, -1.0f};
    float y[8], xhat[8], inv_std[2], mm[2] = {0.0f, 0.0f}, mv[2] = {1.0f, 1.0f};
    eng_batchnorm_forward(y, xhat, inv_std, mm, mv, x, gamma, beta, 4, 2, 0.99f, 1e-3f, 1);
    const double mean[2] = {2.5, 1.0}, var[2] = {1.25, 3.0};
    for (int i = 0; i < 8; i++) {
        const int c = i % 2;
        const double want = gamma[c] * (x[i] - mean[c]) / sqrt(var[c] + 1e-3) + beta[c];
        near(y[i], want, 1e-6, "training y", i);
    }
    /* y[0] = 2 * (1 - 2.5) / sqrt(1.251) + 1 */
    near(y[0], -1.68220890, 1e-6, "training y (by hand)", 0);
    near(mm[0], 0.025, 1e-6, "moving_mean", 0);
    near(mm[1], 0.01, 1e-6, "moving_mean", 1);
    near(mv[0], 0.99 + 0.0125, 1e-6, "moving_variance", 0);
    near(mv[1], 0.99 + 0.03, 1e-6, "moving_variance", 1);

    /* a second step moves them again: moving = 0.99 moving + 0.01 batch */
    eng_batchnorm_forward(y, xhat, inv_std, mm, mv, x, gamma, beta, 4, 2, 0.99f, 1e-3f, 1);
    near(mm[0], 0.99 * 0.025 + 0.025, 1e-6, "moving_mean after 2", 0);
    near(mv[1], 0.99 * 1.02 + 0.03, 1e-6, "moving_variance after 2", 1);

    /* inference: the moving statistics normalise and stay */
    const float mm0[2] = {mm[0], mm[1]}, mv0[2] = {mv[0], mv[1]};
    eng_batchnorm_forward(y, xhat, inv_std, mm, mv, x, gamma, beta, 4, 2, 0.99f, 1e-3f, 0);
    for (int i = 0; i < 8; i++) {
        const int c = i % 2;
        const double want = gamma[c] * (x[i] - mm0[c]) / sqrt(mv0[c] + 1e-3) + beta[c];
        near(y[i], want, 1e-6, "inference y", i);
    }
    assert_true(mm[0] == mm0[0] && mm[1] == mm0[1] && mv[0] == mv0[0] && mv[1] == mv0[1]);

    /* one row in training: every output is beta (x - mean = 0) */
    eng_batchnorm_forward(y, xhat, inv_std, mm, mv, x, gamma, beta, 1, 2, 0.99f, 1e-3f, 1);
    near(y[0], 1.0, 0, "one row y", 0);
    near(y[1], -1.0, 0, "one row y", 1);
}

typedef struct bn_ctx {
    size_t rows, n;
    int C, training;
    float *x, *gamma, *beta, *y, *xhat, *inv_std, *mm, *mv, *r;
} bn_ctx;

static double bn_loss(void *arg) {
    bn_ctx *k = arg;
    eng_batchnorm_forward(k->y, k->xhat, k->inv_std, k->mm, k->mv, k->x, k->gamma, k->beta, k->rows,
                          k->C, 0.99f, 1e-3f, k->training);
    return tu_dot(k->y, k->r, k->n);
}

static void gradcheck(size_t rows, int C, int training) {
    printf("batchnorm: %zu rows, %d channels, %s\n", rows, C, training ? "training" : "inference");
    bn_ctx k = {.rows = rows, .n = rows * (size_t)C, .C = C, .training = training};
    k.x = pst_alloc(sizeof(float) * k.n);
    k.y = pst_alloc(sizeof(float) * k.n);
    k.xhat = pst_alloc(sizeof(float) * k.n);
    k.r = pst_alloc(sizeof(float) * k.n);
    k.gamma = pst_alloc(sizeof(float) * (size_t)C);
    k.beta = pst_alloc(sizeof(float) * (size_t)C);
    k.inv_std = pst_alloc(sizeof(float) * (size_t)C);
    k.mm = pst_alloc(sizeof(float) * (size_t)C);
    k.mv = pst_alloc(sizeof(float) * (size_t)C);
    float *dy = pst_alloc(sizeof(float) * k.n), *dx = pst_alloc(sizeof(float) * k.n),
          *dg = pst_alloc(sizeof(float) * (size_t)C), *db = pst_alloc(sizeof(float) * (size_t)C);
    assert_true(k.x && k.y && k.xhat && k.r && k.gamma && k.beta && k.inv_std && k.mm && k.mv &&
                dy && dx && dg && db);
    eng_rng rng;
    eng_rng_seed(&rng, 0xB4ull + rows * 7 + (uint64_t)C);
    tu_fill_uniform(k.x, k.n, -2.0f, 3.0f, &rng);
    tu_fill_uniform(k.r, k.n, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k.gamma, (size_t)C, 0.5f, 1.5f, &rng);
    tu_fill_uniform(k.beta, (size_t)C, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k.mm, (size_t)C, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k.mv, (size_t)C, 0.5f, 2.0f, &rng);
    bn_loss(&k);
    memcpy(dy, k.r, sizeof(float) * k.n);
    for (size_t i = 0; i < k.n; i++)
        dx[i] = GARBAGE;
    for (int i = 0; i < C; i++)
        dg[i] = db[i] = GARBAGE;
    eng_batchnorm_backward(dx, dg, db, dy, k.xhat, k.inv_std, k.gamma, rows, C, training, 0);
    /* Non-linear in x (training): a step of 1e-2 keeps the truncation error ~1e-5 while
     * float rounding of L stays ~1e-4 of the difference. */
    tu_gradcheck gc = {.eps = 1e-2, .rtol = 1e-2, .atol = 2e-3};
    tu_gradcheck_result rx, rg, rb;
    gc.what = "dx";
    size_t fx = tu_gradcheck_run(&gc, k.x, k.n, dx, bn_loss, &k, &rx);
    gc.what = "dgamma";
    size_t fg = tu_gradcheck_run(&gc, k.gamma, (size_t)C, dg, bn_loss, &k, &rg);
    gc.what = "dbeta";
    size_t fb = tu_gradcheck_run(&gc, k.beta, (size_t)C, db, bn_loss, &k, &rb);
    if (fx || fg || fb)
        fail_msg("gradient mismatches: dx %zu, dgamma %zu, dbeta %zu", fx, fg, fb);
    /* Training: each channel's dx sums to 0 (the mean is subtracted). */
    for (int c = 0; c < C && training; c++) {
        double s = 0, mag = 0;
        for (size_t r = 0; r < rows; r++) {
            s += dx[r * C + c];
            mag += fabs(dx[r * C + c]);
        }
        if (fabs(s) > 1e-5 * (mag + 1))
            fail_msg("channel %d: dx sums to %g", c, s);
    }
    /* accumulate: dgamma, dbeta added to; dx may be NULL */
    float *dg2 = malloc(sizeof(float) * (size_t)C), *db2 = malloc(sizeof(float) * (size_t)C);
    assert_true(dg2 && db2);
    for (int i = 0; i < C; i++) {
        dg2[i] = 1.0f;
        db2[i] = -2.0f;
    }
    eng_batchnorm_backward(NULL, dg2, db2, dy, k.xhat, k.inv_std, k.gamma, rows, C, training, 1);
    for (int i = 0; i < C; i++) {
        near(dg2[i], 1.0 + dg[i], 1e-6, "accumulated dgamma", i);
        near(db2[i], -2.0 + db[i], 1e-6, "accumulated dbeta", i);
    }
    free(dg2);
    free(db2);
    void *all[] = {k.x, k.y, k.xhat, k.r, k.gamma, k.beta, k.inv_std, k.mm, k.mv, dy, dx, dg, db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
}

/* A Dense output (B, 1, 1, n): per feature over B samples. */
static void grad_dense_shaped(void **state) {
    (void)state;
    gradcheck(8, 5, 1);
}
/* A conv map (3, 4, 3, 2): per channel over B*h*w = 36 rows. */
static void grad_conv_shaped(void **state) {
    (void)state;
    gradcheck(36, 2, 1);
}
static void grad_two_rows(void **state) {
    (void)state;
    gradcheck(2, 3, 1);
}
static void grad_inference(void **state) {
    (void)state;
    gradcheck(12, 3, 0);
}

/* The layer entry, through a model: tensors, initialisers, state written by a training
 * forward through params, left by inference, zero state gradients. */
static void layer_entry(void **state) {
    (void)state;
    static const eng_layer_spec specs[] = {{.kind = ENG_BATCHNORM, .input = {2, 2, 3}}};
    static const eng_model_def def = {"bn", "mnist", "test", 12, 1, specs, 0, NULL, 0, 0};
    static eng_model m;
    char err[256] = "";
    assert_int_equal(eng_model_build(&m, &def, err, sizeof err), PST_OK);
    const eng_layer *l = &m.layers[0];
    assert_string_equal(l->name, "batch_normalization");
    assert_int_equal(l->nparams, 4);
    assert_int_equal(m.layout.total, 12);
    const char *names[4] = {"batch_normalization/gamma", "batch_normalization/beta",
                            "batch_normalization/moving_mean",
                            "batch_normalization/moving_variance"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(m.layout.tensors[i].name, names[i]);
        assert_int_equal(m.layout.tensors[i].count, 3);
    }
    float params[12], grads[12];
    eng_model_init_params(&m, params, 1);
    const float init[12] = {1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1};
    for (int i = 0; i < 12; i++)
        near(params[i], init[i], 0, "initial params", i);

    enum { B = 2, N = B * 2 * 2 * 3 };
    float x[N], y[N], dy[N], dx[N];
    void *saved = pst_alloc(B * l->saved_bytes);
    assert_non_null(saved);
    for (int i = 0; i < N; i++)
        x[i] = (float)((i * 7) % 11) - 4.0f;
    eng_fwd_args fa = {.y = y, .saved = saved, .x = x, .params = params, .batch = B, .training = 1};
    l->ops->forward(l, &fa);
    /* channel c's 8 values: mean of x over rows */
    for (int c = 0; c < 3; c++) {
        double mean = 0, var = 0;
        for (int r = 0; r < 8; r++)
            mean += x[r * 3 + c] / 8.0;
        for (int r = 0; r < 8; r++)
            var += (x[r * 3 + c] - mean) * (x[r * 3 + c] - mean) / 8.0;
        near(params[6 + c], 0.01 * mean, 1e-6, "moving_mean", c);
        near(params[9 + c], 0.99 + 0.01 * var, 1e-6, "moving_variance", c);
        for (int r = 0; r < 8; r++)
            near(y[r * 3 + c], (x[r * 3 + c] - mean) / sqrt(var + 1e-3), 1e-5, "y", r * 3 + c);
    }
    for (int i = 0; i < N; i++)
        dy[i] = (float)(i % 5) - 2.0f;
    for (int i = 0; i < 12; i++)
        grads[i] = GARBAGE;
    eng_bwd_args ba = {.dx = dx,
                       .grads = grads,
                       .dy = dy,
                       .saved = saved,
                       .x = x,
                       .y = y,
                       .params = params,
                       .batch = B};
    l->ops->backward(l, &ba);
    for (int i = 6; i < 12; i++)
        near(grads[i], 0.0, 0, "state gradient", i);
    for (int i = 0; i < 6; i++)
        assert_true(grads[i] != GARBAGE);

    float before[12];
    memcpy(before, params, sizeof before);
    fa.training = 0;
    l->ops->forward(l, &fa);
    assert_memory_equal(before, params, sizeof before);
    pst_free(saved);

    /* bad arguments are the user's: a message, no abort */
    static const eng_layer_spec bad[] = {
        {.kind = ENG_BATCHNORM, .momentum = 1.5f, .input = {1, 1, 4}}};
    static const eng_model_def baddef = {"bn_bad", "mnist", "test", 4, 1, bad, 0, NULL, 0, 0};
    assert_int_equal(eng_model_build(&m, &baddef, err, sizeof err), PST_EARG);
    printf("expected error: %s\n", err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forward_by_hand),  cmocka_unit_test(grad_dense_shaped),
        cmocka_unit_test(grad_conv_shaped), cmocka_unit_test(grad_two_rows),
        cmocka_unit_test(grad_inference),   cmocka_unit_test(layer_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
