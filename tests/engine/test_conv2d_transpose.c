/* test_conv2d_transpose.c: Conv2DTranspose against its definition in double (each input
 * pixel (ih, iw) scatters x * kernel[ki, kj, f, :] to output (ih*S - PT + ki, iw*S - PL +
 * kj), dropped outside) and against central differences of L = sum(y * R) (dx, dkernel,
 * dbias), stride 1 and 2, 'same' and 'valid', with and without bias, kernel 5 and small
 * channel counts, with NONE, LEAKY_RELU (slope mask frozen as in test_conv2d.c) and TANH
 * (smooth: the loss runs it, smaller step) fused; accumulate. A hand-computed case pins
 * TF's 'same' semantics (the extra padding at the end), and the Keras DCGAN models build
 * with TF's tutorial shapes and parameter counts. */
#include "engine/conv2d_transpose.h"

#include "engine/base/base.h"
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

typedef struct ct_case {
    const char *name;
    int B, H, W, Cin, KH, KW, F, S;
    eng_padding pad;
    int no_bias;
    eng_act act;
    int OH, OW; /* expected output size */
} ct_case;

typedef struct ct_ctx {
    const ct_case *c;
    int PT, PL, OH, OW;
    size_t nx, nk, ny, ncol;
    float *x, *kernel, *bias, *y, *col, *r, *w;
} ct_ctx;

static void fwd(ct_ctx *k, eng_act act) {
    const ct_case *c = k->c;
    eng_conv2d_transpose_forward(k->y, k->col, k->x, k->kernel, c->no_bias ? NULL : k->bias, c->B,
                                 c->H, c->W, c->Cin, c->KH, c->KW, c->F, c->S, k->PT, k->PL, k->OH,
                                 k->OW, act);
}

static double ct_loss(void *arg) {
    ct_ctx *k = arg;
    fwd(k, k->c->act == ENG_ACT_TANH ? ENG_ACT_TANH : ENG_ACT_NONE);
    return tu_dot(k->y, k->w, k->ny);
}

static void check_forward(ct_ctx *k) {
    const ct_case *c = k->c;
    double *ref = calloc(k->ny, sizeof(double)), *mag = calloc(k->ny, sizeof(double));
    assert_true(ref && mag);
    for (int n = 0; n < c->B; n++)
        for (int ih = 0; ih < c->H; ih++)
            for (int iw = 0; iw < c->W; iw++)
                for (int i = 0; i < c->KH; i++)
                    for (int j = 0; j < c->KW; j++) {
                        const int oh = ih * c->S - k->PT + i, ow = iw * c->S - k->PL + j;
                        if (oh < 0 || oh >= k->OH || ow < 0 || ow >= k->OW)
                            continue;
                        for (int f = 0; f < c->F; f++)
                            for (int ci = 0; ci < c->Cin; ci++) {
                                double xv =
                                    k->x[(((size_t)n * c->H + ih) * c->W + iw) * c->Cin + ci];
                                double kv =
                                    k->kernel[(((size_t)i * c->KW + j) * c->F + f) * c->Cin + ci];
                                size_t o = (((size_t)n * k->OH + oh) * k->OW + ow) * c->F + f;
                                ref[o] += xv * kv;
                                mag[o] += fabs(xv * kv);
                            }
                    }
    fwd(k, c->act);
    size_t bad = 0;
    for (size_t o = 0; o < k->ny; o++) {
        double s = ref[o] + (c->no_bias ? 0.0 : k->bias[o % (size_t)c->F]);
        if (c->act == ENG_ACT_LEAKY_RELU && s < 0)
            s *= 0.3;
        if (c->act == ENG_ACT_TANH)
            s = tanh(s);
        if (fabs(k->y[o] - s) > 1e-5 * (mag[o] + 1.0) && bad++ < 5)
            printf("  %s: y[%zu] = %.7g, definition %.7g\n", c->name, o, k->y[o], s);
    }
    free(ref);
    free(mag);
    if (bad)
        fail_msg("%s: %zu of %zu outputs differ from the definition", c->name, bad, k->ny);
}

static void run_case(const ct_case *c) {
    ct_ctx k = {.c = c};
    int S = c->S;
    eng_conv2d_transpose_size(c->H, c->KH, S, c->pad, &k.OH, &k.PT);
    eng_conv2d_transpose_size(c->W, c->KW, S, c->pad, &k.OW, &k.PL);
    printf("conv2d_transpose %s: B=%d %dx%dx%d K=%dx%d F=%d stride %d %s%s -> %dx%d pad %d,%d\n",
           c->name, c->B, c->H, c->W, c->Cin, c->KH, c->KW, c->F, S,
           c->pad == ENG_PAD_SAME ? "same" : "valid", c->no_bias ? " no bias" : "", k.OH, k.OW,
           k.PT, k.PL);
    assert_int_equal(k.OH, c->OH);
    assert_int_equal(k.OW, c->OW);
    k.nx = (size_t)c->B * c->H * c->W * c->Cin;
    k.nk = (size_t)c->KH * c->KW * c->F * c->Cin;
    k.ny = (size_t)c->B * k.OH * k.OW * c->F;
    k.ncol = (size_t)c->B * c->H * c->W * c->KH * c->KW * c->F;
    k.x = pst_alloc(sizeof(float) * k.nx);
    k.kernel = pst_alloc(sizeof(float) * k.nk);
    k.bias = pst_alloc(sizeof(float) * (size_t)c->F);
    k.y = pst_alloc(sizeof(float) * k.ny);
    k.col = pst_alloc(sizeof(float) * k.ncol);
    k.r = pst_alloc(sizeof(float) * k.ny);
    k.w = pst_alloc(sizeof(float) * k.ny);
    float *dy = pst_alloc(sizeof(float) * k.ny), *dx = pst_alloc(sizeof(float) * k.nx),
          *dk = pst_alloc(sizeof(float) * k.nk), *db = pst_alloc(sizeof(float) * (size_t)c->F),
          *dk2 = pst_alloc(sizeof(float) * k.nk), *db2 = pst_alloc(sizeof(float) * (size_t)c->F);
    assert_true(k.x && k.kernel && k.bias && k.y && k.col && k.r && k.w && dy && dx && dk && db &&
                dk2 && db2);
    eng_rng rng;
    eng_rng_seed(&rng, 0xDEC0DEull + (uint64_t)c->H * 17 + (uint64_t)c->S * 3 + (uint64_t)c->F);
    tu_fill_uniform(k.x, k.nx, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k.kernel, k.nk, -0.3f, 0.3f, &rng);
    tu_fill_uniform(k.bias, (size_t)c->F, -0.5f, 0.5f, &rng);
    tu_fill_uniform(k.r, k.ny, -1.0f, 1.0f, &rng);
    check_forward(&k);

    fwd(&k, c->act);
    size_t neg = 0;
    for (size_t i = 0; i < k.ny; i++) {
        const float slope = c->act == ENG_ACT_LEAKY_RELU && k.y[i] <= 0.0f ? 0.3f : 1.0f;
        neg += k.y[i] <= 0.0f;
        k.w[i] = c->act == ENG_ACT_TANH ? k.r[i] : k.r[i] * slope;
    }
    if (c->act == ENG_ACT_LEAKY_RELU && (neg < k.ny / 10 || neg > k.ny * 9 / 10))
        fail_msg("%s: %zu of %zu outputs negative: the case does not exercise the slope", c->name,
                 neg, k.ny);
    memcpy(dy, k.r, sizeof(float) * k.ny);
    for (size_t i = 0; i < k.nx; i++)
        dx[i] = GARBAGE;
    for (size_t i = 0; i < k.nk; i++)
        dk[i] = GARBAGE;
    for (int i = 0; i < c->F; i++)
        db[i] = GARBAGE;
    eng_conv2d_transpose_backward(dx, dk, c->no_bias ? NULL : db, dy, k.col, k.x, k.y, k.kernel,
                                  c->B, c->H, c->W, c->Cin, c->KH, c->KW, c->F, S, k.PT, k.PL, k.OH,
                                  k.OW, c->act, 0);
    const int smooth = c->act == ENG_ACT_TANH;
    tu_gradcheck gc = {
        .eps = smooth ? 1e-2 : 5e-2, .rtol = smooth ? 1e-2 : 1e-3, .atol = smooth ? 1e-3 : 1e-4};
    tu_gradcheck_result res;
    gc.what = "dx";
    size_t fx = tu_gradcheck_run(&gc, k.x, k.nx, dx, ct_loss, &k, &res);
    gc.what = "dkernel";
    size_t fk = tu_gradcheck_run(&gc, k.kernel, k.nk, dk, ct_loss, &k, &res);
    size_t fb = 0;
    if (c->no_bias) {
        for (int i = 0; i < c->F; i++)
            if (db[i] != GARBAGE)
                fail_msg("%s: no bias, but dbias[%d] was written", c->name, i);
    } else {
        gc.what = "dbias";
        fb = tu_gradcheck_run(&gc, k.bias, (size_t)c->F, db, ct_loss, &k, &res);
    }
    if (fx || fk || fb)
        fail_msg("%s: gradient mismatches: dx %zu, dkernel %zu, dbias %zu", c->name, fx, fk, fb);

    /* accumulate: kernel and bias gradients added to what is there, dx NULL allowed */
    for (size_t i = 0; i < k.nk; i++)
        dk2[i] = 0.25f;
    for (int i = 0; i < c->F; i++)
        db2[i] = -0.5f;
    fwd(&k, c->act);
    memcpy(dy, k.r, sizeof(float) * k.ny);
    eng_conv2d_transpose_backward(NULL, dk2, c->no_bias ? NULL : db2, dy, k.col, k.x, k.y, k.kernel,
                                  c->B, c->H, c->W, c->Cin, c->KH, c->KW, c->F, S, k.PT, k.PL, k.OH,
                                  k.OW, c->act, 1);
    for (size_t i = 0; i < k.nk; i++)
        if (fabsf(dk2[i] - (0.25f + dk[i])) > 1e-5f * (1.0f + fabsf(dk[i])))
            fail_msg("%s: accumulate: dkernel[%zu] = %g, expected 0.25 + %g", c->name, i, dk2[i],
                     dk[i]);
    for (int i = 0; i < c->F && !c->no_bias; i++)
        if (fabsf(db2[i] - (-0.5f + db[i])) > 1e-5f * (1.0f + fabsf(db[i])))
            fail_msg("%s: accumulate: dbias[%d] = %g, expected -0.5 + %g", c->name, i, db2[i],
                     db[i]);
    void *all[] = {k.x, k.kernel, k.bias, k.y, k.col, k.r, k.w, dy, dx, dk, db, dk2, db2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pst_free(all[i]);
}

#define CASE(fn, ...)                                                                              \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        static const ct_case c = {#fn, __VA_ARGS__};                                               \
        run_case(&c);                                                                              \
    }

/* clang-format off */
/*   name                     B  H  W  Cin KH KW F  S  pad           nobias act                 OH  OW */
CASE(s1_same_k5_bias,         2, 4, 4, 3,  5, 5, 2, 1, ENG_PAD_SAME,  0, ENG_ACT_NONE,       4,  4)
CASE(s1_same_k5_nobias_leaky, 2, 5, 4, 2,  5, 5, 3, 1, ENG_PAD_SAME,  1, ENG_ACT_LEAKY_RELU, 5,  4)
CASE(s2_same_k5_bias,         2, 3, 3, 3,  5, 5, 2, 2, ENG_PAD_SAME,  0, ENG_ACT_NONE,       6,  6)
CASE(s2_same_k5_nobias,       2, 4, 3, 2,  5, 5, 3, 2, ENG_PAD_SAME,  1, ENG_ACT_LEAKY_RELU, 8,  6)
CASE(s2_same_k5_tanh,         2, 3, 4, 2,  5, 5, 1, 2, ENG_PAD_SAME,  0, ENG_ACT_TANH,       6,  8)
CASE(s2_same_k4_even_kernel,  2, 3, 3, 2,  4, 4, 2, 2, ENG_PAD_SAME,  0, ENG_ACT_NONE,       6,  6)
CASE(s2_same_k1,              1, 3, 2, 2,  1, 1, 2, 2, ENG_PAD_SAME,  0, ENG_ACT_NONE,       6,  4)
CASE(s2_same_dcgan_7x7,       1, 7, 7, 4,  5, 5, 2, 2, ENG_PAD_SAME,  1, ENG_ACT_LEAKY_RELU, 14, 14)
CASE(s2_valid_k3,             2, 3, 3, 2,  3, 3, 2, 2, ENG_PAD_VALID, 0, ENG_ACT_NONE,       7,  7)
CASE(s1_valid_k3,             2, 3, 4, 2,  3, 3, 2, 1, ENG_PAD_VALID, 1, ENG_ACT_NONE,       5,  6)
/* clang-format on */

/* TF's conv2d_transpose, 'same', stride 2, kernel 1x3 on a 1x2 input, one channel: the
 * output is 2x4, pad total 1 on the columns, all of it at the end, so output column ow gets
 * x[iw] * k[ow - 2 iw]: [10, 100, 1000 + 20, 200]; row 1 reads no input (bias only). */
static void same_semantics_by_hand(void **state) {
    (void)state;
    const float x[2] = {1.0f, 2.0f}, kernel[3] = {10.0f, 100.0f, 1000.0f}, bias[1] = {0.5f};
    float y[8];
    int OH, OW, PT, PL;
    eng_conv2d_transpose_size(1, 1, 2, ENG_PAD_SAME, &OH, &PT);
    eng_conv2d_transpose_size(2, 3, 2, ENG_PAD_SAME, &OW, &PL);
    assert_int_equal(OH, 2);
    assert_int_equal(OW, 4);
    assert_int_equal(PT, 0);
    assert_int_equal(PL, 0);
    float *colbuf = pst_alloc(sizeof(float) * 6);
    assert_non_null(colbuf);
    eng_conv2d_transpose_forward(y, colbuf, x, kernel, bias, 1, 1, 2, 1, 1, 3, 1, 2, PT, PL, OH, OW,
                                 ENG_ACT_NONE);
    const float want[8] = {10.5f, 100.5f, 1020.5f, 200.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    for (int i = 0; i < 8; i++)
        if (y[i] != want[i])
            fail_msg("y[%d] = %g, expected %g", i, y[i], want[i]);
    /* kernel 5, 7 -> 14: pad total 3 = 1 before, 2 after */
    eng_conv2d_transpose_size(7, 5, 2, ENG_PAD_SAME, &OH, &PT);
    assert_int_equal(OH, 14);
    assert_int_equal(PT, 1);
    pst_free(colbuf);
}

static int build(eng_model *m, const eng_model_def *def) {
    char err[256] = "";
    int rc = eng_model_build(m, def, err, sizeof err);
    if (rc != PST_OK)
        printf("build %s: %s\n", def->name, err);
    return rc;
}

static void expect_tensor(const eng_model *m, const char *name, int ndim, const int *shape) {
    int i = eng_layout_find(&m->layout, name);
    if (i < 0)
        fail_msg("%s: no tensor %s", m->def->name, name);
    const eng_tensor_info *t = &m->layout.tensors[i];
    assert_int_equal(t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d])
            fail_msg("%s: dim %d is %d, expected %d", name, d, t->shape[d], shape[d]);
}

/* TF's DCGAN tutorial (Keras): generator 2,330,944 parameters with Dense(use_bias=False);
 * discriminator 212,865. */
static void dcgan_models_build(void **state) {
    (void)state;
    static const eng_layer_spec gen[] = {
        {.kind = ENG_DENSE, .units = 7 * 7 * 256, .no_bias = 1, .input = {1, 1, 100}},
        {.kind = ENG_BATCHNORM},
        {.kind = ENG_LEAKY_RELU},
        {.kind = ENG_RESHAPE, .target = {7, 7, 256}},
        {.kind = ENG_CONV2D_TRANSPOSE,
         .units = 128,
         .kh = 5,
         .kw = 5,
         .stride = 1,
         .padding = ENG_PAD_SAME,
         .no_bias = 1},
        {.kind = ENG_BATCHNORM},
        {.kind = ENG_LEAKY_RELU},
        {.kind = ENG_CONV2D_TRANSPOSE,
         .units = 64,
         .kh = 5,
         .kw = 5,
         .stride = 2,
         .padding = ENG_PAD_SAME,
         .no_bias = 1},
        {.kind = ENG_BATCHNORM},
        {.kind = ENG_LEAKY_RELU},
        {.kind = ENG_CONV2D_TRANSPOSE,
         .units = 1,
         .kh = 5,
         .kw = 5,
         .stride = 2,
         .padding = ENG_PAD_SAME,
         .no_bias = 1,
         .act = ENG_ACT_TANH},
    };
    static const eng_layer_spec disc[] = {
        {.kind = ENG_CONV2D,
         .units = 64,
         .kh = 5,
         .kw = 5,
         .stride = 2,
         .padding = ENG_PAD_SAME,
         .input = {28, 28, 1}},
        {.kind = ENG_LEAKY_RELU},
        {.kind = ENG_DROPOUT, .rate = 0.3f},
        {.kind = ENG_CONV2D, .units = 128, .kh = 5, .kw = 5, .stride = 2, .padding = ENG_PAD_SAME},
        {.kind = ENG_LEAKY_RELU},
        {.kind = ENG_DROPOUT, .rate = 0.3f},
        {.kind = ENG_FLATTEN},
        {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
    };
    static const eng_model_def gdef = {
        "dcgan_generator", "mnist", "test", 784, 11, gen, 0, NULL, 0, 0};
    static const eng_model_def ddef = {
        "dcgan_discriminator", "mnist", "test", 2, 8, disc, 0, NULL, 0, 0};
    static eng_model m;
    assert_int_equal(build(&m, &gdef), PST_OK);
    eng_model_summary(&m, stdout);
    assert_int_equal(m.layout.total, 2330944); /* the TF DCGAN tutorial's generator */
    assert_int_equal(eng_layout_find(&m.layout, "dense/bias"), -1); /* use_bias=False */
    const int shapes[][3] = {{1, 1, 12544}, {1, 1, 12544}, {1, 1, 12544}, {7, 7, 256},
                             {7, 7, 128},   {7, 7, 128},   {7, 7, 128},   {14, 14, 64},
                             {14, 14, 64},  {14, 14, 64},  {28, 28, 1}};
    for (int i = 0; i < 11; i++) {
        const eng_shape o = m.layers[i].out;
        if (o.h != shapes[i][0] || o.w != shapes[i][1] || o.c != shapes[i][2])
            fail_msg("generator layer %d (%s): (%d, %d, %d), expected (%d, %d, %d)", i,
                     m.layers[i].name, o.h, o.w, o.c, shapes[i][0], shapes[i][1], shapes[i][2]);
    }
    assert_string_equal(m.layers[1].name, "batch_normalization");
    assert_string_equal(m.layers[2].name, "leaky_re_lu");
    assert_string_equal(m.layers[3].name, "reshape");
    assert_string_equal(m.layers[7].name, "conv2d_transpose_1");
    assert_string_equal(m.layers[8].name, "batch_normalization_2");
    expect_tensor(&m, "conv2d_transpose/kernel", 4, (int[]){5, 5, 128, 256});
    expect_tensor(&m, "conv2d_transpose_2/kernel", 4, (int[]){5, 5, 1, 64});
    assert_int_equal(eng_layout_find(&m.layout, "conv2d_transpose/bias"), -1);
    /* Keras's order of the BatchNormalization weights */
    const int g = eng_layout_find(&m.layout, "batch_normalization_1/gamma");
    assert_true(g >= 0);
    assert_string_equal(m.layout.tensors[g + 1].name, "batch_normalization_1/beta");
    assert_string_equal(m.layout.tensors[g + 2].name, "batch_normalization_1/moving_mean");
    assert_string_equal(m.layout.tensors[g + 3].name, "batch_normalization_1/moving_variance");
    assert_true(eng_layer_ops_for(ENG_BATCHNORM)->whole_batch);

    /* Initialisers: gamma and moving_variance ones, beta and moving_mean zeros. */
    float *p = malloc(sizeof(float) * m.layout.total);
    assert_non_null(p);
    eng_model_init_params(&m, p, 7);
    for (int t = g; t < g + 4; t++) {
        const eng_tensor_info *ti = &m.layout.tensors[t];
        const float want = t == g || t == g + 3 ? 1.0f : 0.0f;
        for (size_t j = 0; j < ti->count; j++)
            if (p[ti->offset + j] != want)
                fail_msg("%s[%zu] = %g, expected %g", ti->name, j, p[ti->offset + j], want);
    }
    free(p);

    assert_int_equal(build(&m, &ddef), PST_OK);
    eng_model_summary(&m, stdout);
    assert_int_equal(m.layout.total, 212865);
    assert_int_equal(m.layers[0].out.h, 14);
    assert_int_equal(m.layers[3].out.h, 7);
    assert_int_equal(m.layers[3].out.c, 128);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_semantics_by_hand),
        cmocka_unit_test(s1_same_k5_bias),
        cmocka_unit_test(s1_same_k5_nobias_leaky),
        cmocka_unit_test(s2_same_k5_bias),
        cmocka_unit_test(s2_same_k5_nobias),
        cmocka_unit_test(s2_same_k5_tanh),
        cmocka_unit_test(s2_same_k4_even_kernel),
        cmocka_unit_test(s2_same_k1),
        cmocka_unit_test(s2_same_dcgan_7x7),
        cmocka_unit_test(s2_valid_k3),
        cmocka_unit_test(s1_valid_k3),
        cmocka_unit_test(dcgan_models_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
