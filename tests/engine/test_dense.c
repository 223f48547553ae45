/* test_dense.c: Dense against a direct product in double (forward) and against central
 * differences of L = sum(y * R) (backward: dx, dkernel, dbias), with act NONE and RELU,
 * over shapes from one unit and one input up to mnist_cnn's (1600 -> 128), and with
 * accumulate (parameter gradients added to, dx still written).
 *
 * ReLU: as in test_conv2d.c, the mask M = [y > 0] of the engine's ReLU forward is frozen
 * and the differences of the act=NONE forward are taken with weights R * M: the same loss
 * near the point, and affine in every element, so no element is skipped and eps is large.
 * SOFTMAX leaves y as logits, which the loss consumes: it must behave as NONE here. */
#include "engine/dense.h"
#include "engine/model.h"

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
#define GARBAGE 777.0f

typedef struct dense_case {
    const char *name;
    int B, K, N;
    eng_act act;
    size_t max_checks; /* per tensor; 0 = all */
} dense_case;

typedef struct dense_ctx {
    const dense_case *c;
    size_t nx, nk, ny;
    float *x, *kernel, *bias, *y, *r, *w;
} dense_ctx;

static void ctx_init(dense_ctx *k, const dense_case *c, uint64_t seed) {
    memset(k, 0, sizeof *k);
    k->c = c;
    k->nx = (size_t)c->B * c->K;
    k->nk = (size_t)c->K * c->N;
    k->ny = (size_t)c->B * c->N;
    k->x = pst_alloc(sizeof(float) * k->nx);
    k->kernel = pst_alloc(sizeof(float) * k->nk);
    k->bias = pst_alloc(sizeof(float) * (size_t)c->N);
    k->y = pst_alloc(sizeof(float) * k->ny);
    k->r = pst_alloc(sizeof(float) * k->ny);
    k->w = pst_alloc(sizeof(float) * k->ny);
    assert_true(k->x && k->kernel && k->bias && k->y && k->r && k->w);
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    tu_fill_uniform(k->x, k->nx, -1.0f, 1.0f, &rng);
    /* Glorot-like scale keeps pre-activations O(1) for every K. */
    const float lim = sqrtf(6.0f / (float)(c->K + c->N));
    tu_fill_uniform(k->kernel, k->nk, -lim, lim, &rng);
    tu_fill_uniform(k->bias, (size_t)c->N, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k->r, k->ny, -1.0f, 1.0f, &rng);
}

static void ctx_deinit(dense_ctx *k) {
    pst_free(k->x);
    pst_free(k->kernel);
    pst_free(k->bias);
    pst_free(k->y);
    pst_free(k->r);
    pst_free(k->w);
}

static void forward_act(dense_ctx *k, eng_act act) {
    eng_dense_forward(k->y, k->x, k->kernel, k->bias, k->c->B, k->c->K, k->c->N, act);
}

static double dense_loss(void *arg) {
    dense_ctx *k = arg;
    forward_act(k, ENG_ACT_NONE);
    return tu_dot(k->y, k->w, k->ny);
}

static double freeze_mask(dense_ctx *k) {
    forward_act(k, k->c->act);
    size_t active = 0;
    for (size_t i = 0; i < k->ny; i++) {
        int on = k->c->act != ENG_ACT_RELU || k->y[i] > 0.0f;
        k->w[i] = on ? k->r[i] : 0.0f;
        active += (size_t)on;
    }
    return (double)active / (double)k->ny;
}

static void check_forward(dense_ctx *k) {
    const dense_case *c = k->c;
    forward_act(k, c->act);
    size_t bad = 0;
    for (int n = 0; n < c->B; n++)
        for (int j = 0; j < c->N; j++) {
            double s = k->bias[j], mag = fabs(s);
            for (int i = 0; i < c->K; i++) {
                double t = (double)k->x[(size_t)n * c->K + i] * k->kernel[(size_t)i * c->N + j];
                s += t;
                mag += fabs(t);
            }
            if (c->act == ENG_ACT_RELU && s < 0)
                s = 0;
            double got = k->y[(size_t)n * c->N + j];
            if (fabs(got - s) > 1e-5 * mag + 1e-6 && bad++ < 5)
                printf("  %s: y[%d,%d] = %.7g, direct product %.7g\n", c->name, n, j, got, s);
        }
    if (bad)
        fail_msg("%s: %zu of %zu outputs differ from the direct product", c->name, bad, k->ny);
}

static void run_case(const dense_case *c) {
    static const char *const acts[] = {"none", "relu", "softmax"};
    printf("dense %s: B=%d K=%d N=%d act=%s\n", c->name, c->B, c->K, c->N, acts[c->act]);
    dense_ctx k;
    ctx_init(&k, c, 0xDE45Eu + (uint64_t)c->K * 17 + (uint64_t)c->N);
    check_forward(&k);
    const double active = freeze_mask(&k);
    if (c->act == ENG_ACT_RELU && (active < 0.1 || active > 0.9))
        fail_msg("%s: %.0f%% of ReLUs active: the case does not exercise the mask", c->name,
                 100 * active);

    float *dx = pst_alloc(sizeof(float) * k.nx), *dk = pst_alloc(sizeof(float) * k.nk);
    float *db = pst_alloc(sizeof(float) * (size_t)c->N), *dy = pst_alloc(sizeof(float) * k.ny);
    float *dk2 = pst_alloc(sizeof(float) * k.nk), *db2 = pst_alloc(sizeof(float) * (size_t)c->N);
    assert_true(dx && dk && db && dy && dk2 && db2);
    for (size_t i = 0; i < k.nx; i++)
        dx[i] = GARBAGE;
    for (size_t i = 0; i < k.nk; i++)
        dk[i] = dk2[i] = GARBAGE;
    for (int i = 0; i < c->N; i++)
        db[i] = db2[i] = GARBAGE;
    forward_act(&k, c->act);
    memcpy(dy, k.r, sizeof(float) * k.ny);
    eng_dense_backward(dx, dk, db, dy, k.x, k.y, k.kernel, c->B, c->K, c->N, c->act, 0);

    tu_gradcheck gc = {.eps = EPS, .rtol = 1e-3, .atol = 1e-4, .max_checks = c->max_checks};
    tu_gradcheck_result res;
    gc.what = "dx";
    size_t fx = tu_gradcheck_run(&gc, k.x, k.nx, dx, dense_loss, &k, &res);
    gc.what = "dkernel";
    size_t fk = tu_gradcheck_run(&gc, k.kernel, k.nk, dk, dense_loss, &k, &res);
    gc.what = "dbias";
    size_t fb = tu_gradcheck_run(&gc, k.bias, (size_t)c->N, db, dense_loss, &k, &res);
    if (fx || fk || fb)
        fail_msg("%s: gradient mismatches: dx %zu, dkernel %zu, dbias %zu", c->name, fx, fk, fb);

    /* Without dx: the same parameter gradients. */
    forward_act(&k, c->act);
    memcpy(dy, k.r, sizeof(float) * k.ny);
    eng_dense_backward(NULL, dk2, db2, dy, k.x, k.y, k.kernel, c->B, c->K, c->N, c->act, 0);
    for (size_t i = 0; i < k.nk; i++)
        if (fabsf(dk2[i] - dk[i]) > 1e-6f * (1.0f + fabsf(dk[i])))
            fail_msg("%s: dkernel[%zu] is %g with dx, %g without", c->name, i, dk[i], dk2[i]);
    for (int i = 0; i < c->N; i++)
        if (fabsf(db2[i] - db[i]) > 1e-6f * (1.0f + fabsf(db[i])))
            fail_msg("%s: dbias[%d] is %g with dx, %g without", c->name, i, db[i], db2[i]);

    /* accumulate: dkernel and dbias are added to what is there; dx is still written. */
    for (size_t i = 0; i < k.nk; i++)
        dk2[i] = 0.25f * (float)(i % 7) - 0.5f;
    for (int i = 0; i < c->N; i++)
        db2[i] = 0.5f - 0.125f * (float)(i % 5);
    float *dx2 = pst_alloc(sizeof(float) * k.nx);
    assert_non_null(dx2);
    for (size_t i = 0; i < k.nx; i++)
        dx2[i] = GARBAGE;
    forward_act(&k, c->act);
    memcpy(dy, k.r, sizeof(float) * k.ny);
    eng_dense_backward(dx2, dk2, db2, dy, k.x, k.y, k.kernel, c->B, c->K, c->N, c->act, 1);
    for (size_t i = 0; i < k.nk; i++) {
        const float want = 0.25f * (float)(i % 7) - 0.5f + dk[i];
        if (fabsf(dk2[i] - want) > 1e-5f * (1.0f + fabsf(dk[i])))
            fail_msg("%s: accumulate: dkernel[%zu] = %g, expected %g", c->name, i, dk2[i], want);
    }
    for (int i = 0; i < c->N; i++) {
        const float want = 0.5f - 0.125f * (float)(i % 5) + db[i];
        if (fabsf(db2[i] - want) > 1e-5f * (1.0f + fabsf(db[i])))
            fail_msg("%s: accumulate: dbias[%d] = %g, expected %g", c->name, i, db2[i], want);
    }
    for (size_t i = 0; i < k.nx; i++)
        if (fabsf(dx2[i] - dx[i]) > 1e-6f * (1.0f + fabsf(dx[i])))
            fail_msg("%s: accumulate: dx[%zu] = %g, expected %g (dx is written)", c->name, i,
                     dx2[i], dx[i]);
    pst_free(dx2);
    pst_free(dx);
    pst_free(dk);
    pst_free(db);
    pst_free(dy);
    pst_free(dk2);
    pst_free(db2);
    ctx_deinit(&k);
}

/* use_bias=False: no bias tensor in the layout, and the layer's functions with NULL bias
 * compute what they compute with a zero bias (forward, dx, dkernel). */
static void no_bias(void **state) {
    (void)state;
    static const eng_layer_spec spec[] = {
        {.kind = ENG_DENSE, .units = 6, .no_bias = 1, .act = ENG_ACT_RELU, .input = {1, 1, 5}},
    };
    static const eng_model_def def = {"dense_no_bias", "none", "test", 6, 1, spec, 0, NULL, 0, 0};
    eng_model m;
    char err[256] = "";
    if (eng_model_build(&m, &def, err, sizeof err) != PST_OK)
        fail_msg("build: %s", err);
    assert_int_equal(m.layout.n, 1);
    assert_int_equal(m.layout.total, 30);
    assert_int_equal(eng_layout_find(&m.layout, "dense/bias"), -1);
    const int B = 3, K = 5, N = 6;
    float *x = tu_random_floats((size_t)B * K, -1, 1, 1),
          *w = tu_random_floats((size_t)K * N, -1, 1, 2);
    float zero[6] = {0}, y0[18], y1[18], dy0[18], dy1[18], dx0[15], dx1[15], dk0[30], dk1[30],
          db[6];
    assert_true(x && w);
    eng_dense_forward(y0, x, w, zero, B, K, N, ENG_ACT_RELU);
    eng_dense_forward(y1, x, w, NULL, B, K, N, ENG_ACT_RELU);
    assert_memory_equal(y0, y1, sizeof y0);
    for (int i = 0; i < B * N; i++)
        dy0[i] = dy1[i] = 0.1f * (float)(i % 7) - 0.3f;
    eng_dense_backward(dx0, dk0, db, dy0, x, y0, w, B, K, N, ENG_ACT_RELU, 0);
    eng_dense_backward(dx1, dk1, NULL, dy1, x, y1, w, B, K, N, ENG_ACT_RELU, 0);
    assert_memory_equal(dx0, dx1, sizeof dx0);
    assert_memory_equal(dk0, dk1, sizeof dk0);
    free(x);
    free(w);
}

#define CASE(fn, ...)                                                                              \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        static const dense_case c = {#fn, __VA_ARGS__};                                            \
        run_case(&c);                                                                              \
    }

/* clang-format off */
/*    name                   B  K     N    act              max_checks */
CASE(one_sample_none,        1, 5,    3,   ENG_ACT_NONE,    0)
CASE(one_unit_one_input,     2, 1,    1,   ENG_ACT_NONE,    0)
CASE(batch3_relu,            3, 7,    4,   ENG_ACT_RELU,    0)
CASE(one_sample_relu,        1, 12,   9,   ENG_ACT_RELU,    0)
CASE(softmax_is_logits,      4, 36,   10,  ENG_ACT_SOFTMAX, 0)
CASE(mnist_dense_shape,      3, 1600, 128, ENG_ACT_RELU,    400)
CASE(mnist_dense_1_shape,    5, 128,  10,  ENG_ACT_SOFTMAX, 0)
/* clang-format on */

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_sample_none),     cmocka_unit_test(one_unit_one_input),
        cmocka_unit_test(batch3_relu),         cmocka_unit_test(one_sample_relu),
        cmocka_unit_test(softmax_is_logits),   cmocka_unit_test(mnist_dense_shape),
        cmocka_unit_test(mnist_dense_1_shape), cmocka_unit_test(no_bias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
