/* test_lstm.c: the LSTM layer. Forward against a direct implementation in double (plain
 * loops over steps, samples and units), from one step of one unit up to imdb_lstm's
 * shape; backward against central differences of L = sum(y * R) for every weight, bias and
 * input element (dx), with sequences that start with padding (the same input vector for
 * the first steps, as token 0's embedding gives) and batches that do not fill a block of
 * per-step rows; the same gradient with and without dx; accumulate (parameter gradients
 * added to, dx written); saved memory used within its stated size; the gate
 * nonlinearities' accuracy; and the Keras initialisers the layer asks for: an orthogonal
 * recurrent kernel (orthonormal rows) and a forget-gate bias of one. */
#include "engine/lstm.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "tests/support/testutil.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define GARBAGE 777.0f
#define CANARY 4242.0f
#define NCANARY 64

typedef struct lstm_case {
    const char *name;
    int B, T, in, u;
    int pad;           /* sample n starts with min(n * pad, T) steps of one padding vector */
    size_t max_checks; /* per tensor; 0 = all */
} lstm_case;

typedef struct lstm_ctx {
    const lstm_case *c;
    size_t nx, nw, ny, nsaved;
    float *x, *w, *bias, *y, *r, *saved;
} lstm_ctx;

static void ctx_init(lstm_ctx *k, const lstm_case *c, uint64_t seed) {
    memset(k, 0, sizeof *k);
    k->c = c;
    k->nx = (size_t)c->B * c->T * c->in;
    k->nw = (size_t)(c->in + c->u) * 4 * c->u;
    k->ny = (size_t)c->B * c->u;
    k->nsaved = eng_lstm_saved_floats(c->B, c->T, c->in, c->u);
    assert_true(k->nsaved <= (size_t)c->B * eng_lstm_saved_floats(1, c->T, c->in, c->u));
    k->x = pst_alloc(sizeof(float) * k->nx);
    k->w = pst_alloc(sizeof(float) * k->nw);
    k->bias = pst_alloc(sizeof(float) * 4 * (size_t)c->u);
    k->y = pst_alloc(sizeof(float) * k->ny);
    k->r = pst_alloc(sizeof(float) * k->ny);
    k->saved = pst_alloc(sizeof(float) * (k->nsaved + NCANARY));
    assert_true(k->x && k->w && k->bias && k->y && k->r && k->saved);
    for (size_t i = 0; i < NCANARY; i++)
        k->saved[k->nsaved + i] = CANARY;
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    tu_fill_uniform(k->x, k->nx, -1.0f, 1.0f, &rng);
    /* Padding: the first steps of later samples repeat one vector. */
    float pad[64];
    assert_true(c->in <= 64);
    tu_fill_uniform(pad, (size_t)c->in, -0.5f, 0.5f, &rng);
    for (int n = 0; n < c->B; n++)
        for (int t = 0; t < c->T && t < n * c->pad; t++)
            memcpy(k->x + ((size_t)n * c->T + t) * c->in, pad, sizeof(float) * (size_t)c->in);
    /* Weights of Keras's scale keep the gates away from saturation for every size. */
    const float lim = sqrtf(6.0f / (float)(c->in + 5 * c->u));
    tu_fill_uniform(k->w, k->nw, -lim, lim, &rng);
    tu_fill_uniform(k->bias, 4 * (size_t)c->u, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k->r, k->ny, -1.0f, 1.0f, &rng);
}

static void ctx_deinit(lstm_ctx *k) {
    for (size_t i = 0; i < NCANARY; i++)
        if (k->saved[k->nsaved + i] != CANARY)
            fail_msg("%s: saved memory written past its %zu floats", k->c->name, k->nsaved);
    pst_free(k->x);
    pst_free(k->w);
    pst_free(k->bias);
    pst_free(k->y);
    pst_free(k->r);
    pst_free(k->saved);
}

static void forward(lstm_ctx *k) {
    const lstm_case *c = k->c;
    eng_lstm_forward(k->y, k->saved, k->x, k->w, k->bias, c->B, c->T, c->in, c->u);
}

static double lstm_loss(void *arg) {
    lstm_ctx *k = arg;
    forward(k);
    return tu_dot(k->y, k->r, k->ny);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* The layer as Keras's LSTMCell writes it, in double: y (B, u) from x (B, T, in). */
static void reference_forward(double *y, const float *x, const float *w, const float *bias, int B,
                              int T, int in, int u) {
    double *h = calloc((size_t)u, sizeof *h), *c = calloc((size_t)u, sizeof *c);
    double *z = malloc(sizeof *z * 4 * (size_t)u);
    assert_true(h && c && z);
    const float *kernel = w, *recurrent = w + (size_t)in * 4 * u;
    for (int n = 0; n < B; n++) {
        for (int j = 0; j < u; j++)
            h[j] = c[j] = 0.0;
        for (int t = 0; t < T; t++) {
            const float *xt = x + ((size_t)n * T + t) * in;
            for (int q = 0; q < 4 * u; q++) {
                double s = bias[q];
                for (int i = 0; i < in; i++)
                    s += (double)xt[i] * kernel[(size_t)i * 4 * u + q];
                for (int i = 0; i < u; i++)
                    s += h[i] * recurrent[(size_t)i * 4 * u + q];
                z[q] = s;
            }
            for (int j = 0; j < u; j++) {
                const double ig = sigmoid(z[j]), fg = sigmoid(z[u + j]);
                const double gg = tanh(z[2 * u + j]), og = sigmoid(z[3 * u + j]);
                c[j] = fg * c[j] + ig * gg;
                h[j] = og * tanh(c[j]);
            }
        }
        for (int j = 0; j < u; j++)
            y[(size_t)n * u + j] = h[j];
    }
    free(h);
    free(c);
    free(z);
}

static void check_forward(lstm_ctx *k) {
    const lstm_case *c = k->c;
    double *want = malloc(sizeof *want * k->ny);
    assert_non_null(want);
    reference_forward(want, k->x, k->w, k->bias, c->B, c->T, c->in, c->u);
    forward(k);
    double worst = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < k->ny; i++) {
        const double err = fabs(k->y[i] - want[i]);
        worst = fmax(worst, err);
        /* float rounding through T steps (~5e-8 at T = 200): |h| < 1, an absolute bound */
        if (!(err <= 5e-7) && bad++ < 5)
            printf("  %s: y[%zu] = %.8g, reference %.8g\n", c->name, i, k->y[i], want[i]);
    }
    printf("  forward: largest |y - reference| %.3g over %zu outputs\n", worst, k->ny);
    if (bad)
        fail_msg("%s: %zu of %zu outputs differ from the reference", c->name, bad, k->ny);
    free(want);
}

static void run_case(const lstm_case *c) {
    printf("lstm %s: B=%d T=%d in=%d u=%d pad=%d\n", c->name, c->B, c->T, c->in, c->u, c->pad);
    lstm_ctx k;
    ctx_init(&k, c, 0x157Bu + (uint64_t)c->T * 31 + (uint64_t)c->u);
    check_forward(&k);

    const size_t nb = 4 * (size_t)c->u;
    float *dx = pst_alloc(sizeof(float) * k.nx), *dw = pst_alloc(sizeof(float) * k.nw);
    float *db = pst_alloc(sizeof(float) * nb), *dw2 = pst_alloc(sizeof(float) * k.nw);
    float *db2 = pst_alloc(sizeof(float) * nb), *dx2 = pst_alloc(sizeof(float) * k.nx);
    assert_true(dx && dw && db && dw2 && db2 && dx2);
    for (size_t i = 0; i < k.nx; i++)
        dx[i] = dx2[i] = GARBAGE;
    for (size_t i = 0; i < k.nw; i++)
        dw[i] = dw2[i] = GARBAGE;
    for (size_t i = 0; i < nb; i++)
        db[i] = db2[i] = GARBAGE;
    forward(&k);
    eng_lstm_backward(dx, dw, db, k.r, k.saved, k.w, c->B, c->T, c->in, c->u, 0);

    /* Smooth everywhere: eps is limited by the curvature (truncation ~eps^2) and the float
     * forward's rounding (~1e-7 of the loss, over 2 eps). */
    tu_gradcheck gc = {.eps = 1e-2, .rtol = 2e-3, .atol = 1e-4, .max_checks = c->max_checks};
    tu_gradcheck_result res;
    gc.what = "dkernel and drecurrent_kernel";
    const size_t fw = tu_gradcheck_run(&gc, k.w, k.nw, dw, lstm_loss, &k, &res);
    gc.what = "dbias";
    const size_t fb = tu_gradcheck_run(&gc, k.bias, nb, db, lstm_loss, &k, &res);
    gc.what = "dx";
    const size_t fx = tu_gradcheck_run(&gc, k.x, k.nx, dx, lstm_loss, &k, &res);
    if (fw || fb || fx)
        fail_msg("%s: gradient mismatches: dw %zu, dbias %zu, dx %zu", c->name, fw, fb, fx);

    /* Negative control: the same check rejects the kernels' gradient scaled by 1.05, in
     * every element above 0.01 when all are checked (some are 0: with T = 1, h_{-1} and
     * c_{-1} leave the recurrent kernel and the forget gate without gradient). */
    float *wrong = malloc(sizeof(float) * k.nw);
    assert_non_null(wrong);
    size_t strong = 0;
    for (size_t i = 0; i < k.nw; i++) {
        wrong[i] = dw[i] * 1.05f;
        strong += fabsf(dw[i]) > 0.01f;
    }
    assert_true(strong > 0);
    gc.what = "  dw scaled by 1.05 (must fail)";
    tu_gradcheck_run(&gc, k.w, k.nw, wrong, lstm_loss, &k, &res);
    if (res.failed == 0 || (c->max_checks == 0 && res.failed < strong))
        fail_msg("%s: a gradient scaled by 1.05 failed in %zu of %zu elements (%zu above 0.01)",
                 c->name, res.failed, res.checked, strong);
    free(wrong);

    /* Without dx: the same parameter gradients, bit for bit, on every BLAS kernel: backward
     * runs the same per-step products either way and leaves dx's columns unread. */
    forward(&k);
    eng_lstm_backward(NULL, dw2, db2, k.r, k.saved, k.w, c->B, c->T, c->in, c->u, 0);
    assert_memory_equal(dw2, dw, sizeof(float) * k.nw);
    assert_memory_equal(db2, db, sizeof(float) * nb);

    /* accumulate: dw and dbias are added to what is there; dx is still written. */
    for (size_t i = 0; i < k.nw; i++)
        dw2[i] = 0.25f * (float)(i % 7) - 0.5f;
    for (size_t i = 0; i < nb; i++)
        db2[i] = 0.5f - 0.125f * (float)(i % 5);
    forward(&k);
    eng_lstm_backward(dx2, dw2, db2, k.r, k.saved, k.w, c->B, c->T, c->in, c->u, 1);
    for (size_t i = 0; i < k.nw; i++) {
        const float want = 0.25f * (float)(i % 7) - 0.5f + dw[i];
        if (fabsf(dw2[i] - want) > 1e-6f * (1.0f + fabsf(dw[i])))
            fail_msg("%s: accumulate: dw[%zu] = %g, expected %g", c->name, i, dw2[i], want);
    }
    for (size_t i = 0; i < nb; i++) {
        const float want = 0.5f - 0.125f * (float)(i % 5) + db[i];
        if (fabsf(db2[i] - want) > 1e-6f * (1.0f + fabsf(db[i])))
            fail_msg("%s: accumulate: dbias[%zu] = %g, expected %g", c->name, i, db2[i], want);
    }
    assert_memory_equal(dx2, dx, sizeof(float) * k.nx);

    pst_free(dx);
    pst_free(dw);
    pst_free(db);
    pst_free(dw2);
    pst_free(db2);
    pst_free(dx2);
    ctx_deinit(&k);
}

#define CASE(fn, ...)                                                                              \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        static const lstm_case c = {#fn, __VA_ARGS__};                                             \
        run_case(&c);                                                                              \
    }

/* clang-format off */
/*    name                    B   T   in  u   pad max_checks */
CASE(small,                   3,  5,  3,  4,  0,  0)
CASE(small_padded,            3,  6,  3,  4,  2,  0)
CASE(one_step_one_unit,       1,  1,  1,  1,  0,  0)
CASE(rows_past_a_block,       11, 4,  5,  6,  1,  0)
CASE(wide_units,              2,  3,  8,  33, 0,  400)
CASE(long_sequence,           2,  40, 2,  3,  10, 0)
/* clang-format on */

/* imdb_lstm's shape (T = 200, in = 32, u = 128), forward only: the vectorised gates over
 * whole registers and 200 steps of rounding. */
static void imdb_shape_forward(void **state) {
    (void)state;
    static const lstm_case c = {"imdb_shape_forward", 9, 200, 32, 128, 30, 0};
    printf("lstm %s: B=%d T=%d in=%d u=%d\n", c.name, c.B, c.T, c.in, c.u);
    lstm_ctx k;
    ctx_init(&k, &c, 99);
    check_forward(&k);
    ctx_deinit(&k);
}

/* The nonlinearities against libm in double, over the range gates see and beyond. */
static void gate_functions(void **state) {
    (void)state;
    const size_t n = 400001;
    float *x = malloc(sizeof(float) * n), *s = malloc(sizeof(float) * n);
    float *t = malloc(sizeof(float) * n);
    assert_true(x && s && t);
    for (size_t i = 0; i < n; i++)
        x[i] = -100.0f + 200.0f * (float)i / (float)(n - 1);
    eng_sigmoid_vec(s, x, n);
    eng_tanh_vec(t, x, n);
    double worst_s = 0.0, worst_t = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double xs = x[i], ws = 1.0 / (1.0 + exp(-xs)), wt = tanh(xs);
        if (xs > -87.0)
            worst_s = fmax(worst_s, fabs(s[i] - ws) / ws);
        else if (!(fabs(s[i] - ws) < 1e-37))
            fail_msg("sigmoid(%g) = %g, expected %g", xs, s[i], ws);
        if (wt != 0.0)
            worst_t = fmax(worst_t, fabs(t[i] - wt) / fabs(wt));
    }
    /* Near zero, where tanh switches between its two forms, and tiny arguments. */
    const float near[] = {0.0f,   1e-30f, 1e-7f,    1e-3f,    0.1f,    0.5f,   0.6249f,
                          0.625f, 0.626f, -0.6249f, -0.625f,  -0.626f, -1e-3f, -1e-30f,
                          20.0f,  -20.0f, FLT_MAX,  -FLT_MAX, 1e30f,   -1e30f};
    const size_t nn = sizeof near / sizeof near[0];
    float sn[sizeof near / sizeof near[0]], tn[sizeof near / sizeof near[0]];
    eng_sigmoid_vec(sn, near, nn);
    eng_tanh_vec(tn, near, nn);
    for (size_t i = 0; i < nn; i++) {
        const double xs = near[i], wt = tanh(xs), ws = 1.0 / (1.0 + exp(-xs));
        if (!isfinite(sn[i]) || !isfinite(tn[i]))
            fail_msg("x = %g: sigmoid %g, tanh %g", xs, sn[i], tn[i]);
        if (wt != 0.0)
            worst_t = fmax(worst_t, fabs(tn[i] - wt) / fabs(wt));
        else if (tn[i] != 0.0f)
            fail_msg("tanh(0) = %g", tn[i]);
        if (xs > -87.0)
            worst_s = fmax(worst_s, fabs(sn[i] - ws) / ws);
    }
    printf("  largest relative error: sigmoid %.3g, tanh %.3g\n", worst_s, worst_t);
    assert_true(worst_s < 3e-7);
    assert_true(worst_t < 3e-7);
    /* In place. */
    memcpy(s, x, sizeof(float) * n);
    eng_tanh_vec(s, s, n);
    assert_memory_equal(s, t, sizeof(float) * n);
    free(x);
    free(s);
    free(t);
}

/* LSTM(u) over (1, T, in) sequences, then Dense(1, sigmoid): the initialisers. */
static void check_init(int T, int in, int u) {
    printf("LSTM(%d) on (%d, %d):\n", u, T, in);
    const eng_layer_spec spec[] = {
        {.kind = ENG_LSTM, .units = u, .input = {1, T, in}},
        {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
    };
    const eng_model_def def = {"lstm_init", "none", "", 2, 2, spec, 0, NULL, 0, 0};
    eng_model m;
    char err[256] = "";
    if (eng_model_build(&m, &def, err, sizeof err) != PST_OK)
        fail_msg("eng_model_build: %s", err);
    assert_int_equal(m.layout.n, 5);
    assert_string_equal(m.layout.tensors[0].name, "lstm/lstm_cell/kernel");
    assert_string_equal(m.layout.tensors[1].name, "lstm/lstm_cell/recurrent_kernel");
    assert_string_equal(m.layout.tensors[2].name, "lstm/lstm_cell/bias");
    assert_int_equal(m.layout.total, (size_t)4 * u * (in + u + 1) + u + 1);
    float *p = malloc(sizeof(float) * m.layout.total), *q = malloc(sizeof(float) * m.layout.total);
    assert_true(p && q);
    eng_model_init_params(&m, p, 5);

    /* kernel: glorot_uniform over (in, 4u) */
    const float lim = (float)sqrt(6.0 / (in + 4.0 * u));
    const eng_tensor_info *kt = &m.layout.tensors[0];
    float kmax = 0.0f;
    for (size_t i = 0; i < kt->count; i++) {
        if (!(fabsf(p[kt->offset + i]) <= lim))
            fail_msg("kernel[%zu] = %g outside +-%g", i, p[kt->offset + i], lim);
        kmax = fmaxf(kmax, fabsf(p[kt->offset + i]));
    }
    assert_true(kmax > 0.5f * lim);

    /* recurrent kernel (u, 4u): orthonormal rows, R R^T = I, and not a trivial [I 0 0 0]. */
    const float *rk = p + m.layout.tensors[1].offset;
    double worst = 0.0, colmax = 0.0;
    for (int a = 0; a < u; a++)
        for (int b = 0; b < u; b++) {
            double dot = 0.0;
            for (int j = 0; j < 4 * u; j++)
                dot += (double)rk[(size_t)a * 4 * u + j] * rk[(size_t)b * 4 * u + j];
            worst = fmax(worst, fabs(dot - (a == b ? 1.0 : 0.0)));
        }
    for (int j = 0; j < 4 * u; j++) {
        double sq = 0.0;
        for (int a = 0; a < u; a++)
            sq += (double)rk[(size_t)a * 4 * u + j] * rk[(size_t)a * 4 * u + j];
        colmax = fmax(colmax, sq);
    }
    printf("  recurrent kernel: largest |R R^T - I| %.3g, largest column norm^2 %.3g\n", worst,
           colmax);
    if (worst > 1e-5)
        fail_msg("recurrent kernel: R R^T differs from I by %g", worst);
    if (u > 1 && colmax > 0.9)
        fail_msg("recurrent kernel: a column of norm^2 %g: not a random orthogonal matrix", colmax);

    /* bias: unit_forget_bias, gates i, f, c, o */
    const float *bias = p + m.layout.tensors[2].offset;
    for (int j = 0; j < 4 * u; j++)
        if (bias[j] != (j >= u && j < 2 * u ? 1.0f : 0.0f))
            fail_msg("bias[%d] = %g: expected 1 in the forget gate's [%d, %d), else 0", j, bias[j],
                     u, 2 * u);

    /* Same seed, same bits; another seed, another recurrent kernel. */
    eng_model_init_params(&m, q, 5);
    assert_memory_equal(p, q, sizeof(float) * m.layout.total);
    eng_model_init_params(&m, q, 6);
    assert_memory_not_equal(rk, q + m.layout.tensors[1].offset,
                            sizeof(float) * m.layout.tensors[1].count);
    free(p);
    free(q);
}

static void keras_initialisers(void **state) {
    (void)state;
    check_init(5, 3, 4);
    check_init(200, 32, 128);
    check_init(2, 1, 1);
}

/* Bad shapes are refused with the layer's name. */
static void build_errors(void **state) {
    (void)state;
    const eng_layer_spec image[] = {
        {.kind = ENG_LSTM, .units = 4, .input = {3, 5, 2}},
        {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
    };
    const eng_layer_spec no_units[] = {
        {.kind = ENG_LSTM, .units = 0, .input = {1, 5, 2}},
        {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
    };
    const eng_layer_spec *specs[] = {image, no_units};
    for (int i = 0; i < 2; i++) {
        const eng_model_def def = {"bad", "none", "", 2, 2, specs[i], 0, NULL, 0, 0};
        eng_model m;
        char err[256] = "";
        assert_int_equal(eng_model_build(&m, &def, err, sizeof err), PST_EARG);
        printf("  %s\n", err);
        assert_non_null(strstr(err, "lstm"));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small),
        cmocka_unit_test(small_padded),
        cmocka_unit_test(one_step_one_unit),
        cmocka_unit_test(rows_past_a_block),
        cmocka_unit_test(wide_units),
        cmocka_unit_test(long_sequence),
        cmocka_unit_test(imdb_shape_forward),
        cmocka_unit_test(gate_functions),
        cmocka_unit_test(keras_initialisers),
        cmocka_unit_test(build_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
