/* test_optim.c: Adam and RMSprop against values computed here in double from the formulas
 * written out (Keras's), and against literal numbers computed independently (Python, see
 * each comment); RMSprop's clipping and legacy decay, the iteration counter, and updates
 * of a slice of a larger vector touching nothing outside it, and ranges of a slice updated
 * apart (as threads do) adding up to one update. */
#include "engine/optim.h"

#include "engine/base/base.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define N 3
#define STEPS 3

/* w (float, from the engine) against want (double): within 1e-5 of the total update
 * want - w0 (float rounding of the update's terms) plus 2 ulps of w (its storage). */
static void expect_close(const char *what, int step, const float *w, const double *want,
                         const double *w0) {
    for (int i = 0; i < N; i++) {
        const double tol = 1e-5 * fabs(want[i] - w0[i]) + 2.0 * FLT_EPSILON * fabs(want[i]);
        if (fabs((double)w[i] - want[i]) > tol)
            fail_msg("%s, step %d, w[%d] = %.9g, expected %.9g (|diff| %.3g > %.3g)", what, step, i,
                     (double)w[i], want[i], fabs((double)w[i] - want[i]), tol);
    }
}

/* --- Adam --- */

static const double adam_w0[N] = {0.02, -0.01, 0.005};
/* The middle element's gradient is tiny, so that epsilon's place (outside the square root,
 * added to sqrt(v)) changes its update by ~14%. */
static const double adam_g[STEPS][N] = {
    {0.1, -2e-5, 3.0},
    {0.05, 1e-5, -1.0},
    {-0.2, -3e-5, 2.0},
};

/* Keras's Adam, literally: t = 1, 2, 3. */
static void adam_reference(double want[STEPS][N]) {
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-7;
    double w[N], m[N] = {0}, v[N] = {0};
    memcpy(w, adam_w0, sizeof w);
    for (int t = 1; t <= STEPS; t++) {
        const double lr_t = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
        for (int i = 0; i < N; i++) {
            const double g = adam_g[t - 1][i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            w[i] -= lr_t * m[i] / (sqrt(v[i]) + eps);
        }
        memcpy(want[t - 1], w, sizeof w);
    }
}

static void adam_three_steps(void **state) {
    (void)state;
    const eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    assert_true(cfg.kind == ENG_OPT_ADAM);
    assert_true(cfg.lr == 1e-3f && cfg.beta1 == 0.9f && cfg.beta2 == 0.999f &&
                cfg.epsilon == 1e-7f);
    eng_optim *opt = eng_optim_new(&cfg, N);
    assert_non_null(opt);
    assert_int_equal(eng_optim_iterations(opt), 0);

    double want[STEPS][N];
    adam_reference(want);
    /* Step 1 by hand: m = 0.1 g, v = 0.001 g^2, lr_t = 1e-3 sqrt(0.001) / 0.1, so
     * w1 = w0 - 1e-3 g / (|g| + 1e-7 / sqrt(0.001)). Evaluated in Python 3 (float64):
     *   [w - 1e-3*g/(abs(g) + 1e-7/math.sqrt(0.001)) for w, g in
     *    zip([0.02, -0.01, 0.005], [0.1, -2e-5, 3.0])] */
    const double step1_literal[N] = {0.019000031621776634, -0.0091365270594958147,
                                     0.0040000010540914427};
    for (int i = 0; i < N; i++)
        assert_true(fabs(want[0][i] - step1_literal[i]) < 1e-15);

    float w[N], g[N];
    for (int i = 0; i < N; i++)
        w[i] = (float)adam_w0[i];
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++)
            g[i] = (float)adam_g[t][i];
        eng_optim_step(opt, w, g);
        assert_int_equal(eng_optim_iterations(opt), t + 1);
        expect_close("adam", t + 1, w, want[t], adam_w0);
        if (t == 0)
            expect_close("adam (literal)", 1, w, step1_literal, adam_w0);
    }
    eng_optim_free(&opt);
    assert_null(opt);
    eng_optim_free(&opt); /* NULL is fine */
    eng_optim_free(NULL);
}

/* The kernel with caller-held state gives what eng_optim_step gives. */
static void adam_kernel_matches_step(void **state) {
    (void)state;
    const eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    eng_optim *opt = eng_optim_new(&cfg, N);
    assert_non_null(opt);
    float w1[N], w2[N], m[N] = {0}, v[N] = {0}, g[N];
    for (int i = 0; i < N; i++)
        w1[i] = w2[i] = (float)adam_w0[i];
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++)
            g[i] = (float)adam_g[t][i];
        eng_optim_step(opt, w1, g);
        eng_adam_update(w2, m, v, g, N, t + 1, &cfg);
        assert_memory_equal(w1, w2, sizeof w1);
    }
    eng_optim_free(&opt);
}

/* --- RMSprop --- */

static const double rms_w0[N] = {0.3, -0.1, 0.05};
/* Elements 0 and 1 exceed clipvalue 1 on both sides. */
static const double rms_g[STEPS][N] = {
    {2.5, -0.3, 0.05},
    {0.5, -1.7, 0.05},
    {-3.0, 0.2, -0.02},
};

/* Keras's RMSprop with clipvalue and legacy decay, literally: iterations = 0, 1, 2. */
static void rms_reference(double want[STEPS][N], double lr, double clip, double decay) {
    const double rho = 0.9, eps = 1e-7;
    double w[N], a[N] = {0};
    memcpy(w, rms_w0, sizeof w);
    for (int it = 0; it < STEPS; it++) {
        const double lr_t = lr / (1.0 + decay * it);
        for (int i = 0; i < N; i++) {
            double g = rms_g[it][i];
            if (clip > 0)
                g = g > clip ? clip : (g < -clip ? -clip : g);
            a[i] = rho * a[i] + (1.0 - rho) * g * g;
            w[i] -= lr_t * g / (sqrt(a[i]) + eps);
        }
        memcpy(want[it], w, sizeof w);
    }
}

static void run_rmsprop(const eng_optim_cfg *cfg, float w[STEPS][N]) {
    eng_optim *opt = eng_optim_new(cfg, N);
    assert_non_null(opt);
    float cur[N], g[N];
    for (int i = 0; i < N; i++)
        cur[i] = (float)rms_w0[i];
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++)
            g[i] = (float)rms_g[t][i];
        eng_optim_step(opt, cur, g);
        assert_int_equal(eng_optim_iterations(opt), t + 1);
        memcpy(w[t], cur, sizeof cur);
    }
    eng_optim_free(&opt);
}

/* The DCGAN seed's settings: RMSprop(lr=0.0008, clipvalue=1.0, decay=1e-8). */
static void rmsprop_dcgan_three_steps(void **state) {
    (void)state;
    eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_RMSPROP);
    assert_true(cfg.kind == ENG_OPT_RMSPROP);
    assert_true(cfg.lr == 1e-3f && cfg.rho == 0.9f && cfg.epsilon == 1e-7f &&
                cfg.clipvalue == 0.0f && cfg.decay == 0.0f);
    cfg.lr = 0.0008f;
    cfg.clipvalue = 1.0f;
    cfg.decay = 1e-8f;
    double want[STEPS][N], unclipped[STEPS][N];
    rms_reference(want, 0.0008, 1.0, 1e-8);
    rms_reference(unclipped, 0.0008, 0.0, 1e-8);
    /* Step 1 by hand: a = 0.1 g^2, so w1 = w0 - 0.0008 g / (sqrt(0.1) |g| + 1e-7) with g
     * clipped to 1 (element 0: 2.5 -> 1). In Python 3 (float64):
     *   [w - 0.0008*g/(math.sqrt(0.1)*abs(g) + 1e-7) for w, g in
     *    zip([0.3, -0.1, 0.05], [1.0, -0.3, 0.05])] */
    const double step1_literal[N] = {0.29747017867186504, -0.097470180538529155,
                                     0.047470193871764106};
    for (int i = 0; i < N; i++)
        assert_true(fabs(want[0][i] - step1_literal[i]) < 1e-15);
    /* Clipping must matter from step 2 on, by far more than the tolerance. */
    assert_true(fabs(want[1][0] - unclipped[1][0]) > 1e-4);
    assert_true(fabs(want[2][1] - unclipped[2][1]) > 1e-4);

    float w[STEPS][N];
    run_rmsprop(&cfg, w);
    expect_close("rmsprop (literal)", 1, w[0], step1_literal, rms_w0);
    for (int t = 0; t < STEPS; t++)
        expect_close("rmsprop", t + 1, w[t], want[t], rms_w0);
}

/* Legacy decay at a size that shows: lr / (1 + decay * iterations), iterations counting
 * the updates before this one (the first update uses lr itself). */
static void rmsprop_decay_uses_previous_iterations(void **state) {
    (void)state;
    eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_RMSPROP);
    cfg.lr = 0.0008f;
    cfg.clipvalue = 1.0f;
    cfg.decay = 0.5f;
    double want[STEPS][N];
    rms_reference(want, 0.0008, 1.0, 0.5);
    float w[STEPS][N];
    run_rmsprop(&cfg, w);
    for (int t = 0; t < STEPS; t++)
        expect_close("rmsprop decay 0.5", t + 1, w[t], want[t], rms_w0);
}

/* Without clipvalue, gradients above 1 are used as they are. */
static void rmsprop_without_clipping(void **state) {
    (void)state;
    eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_RMSPROP);
    cfg.lr = 0.0008f;
    double want[STEPS][N];
    rms_reference(want, 0.0008, 0.0, 0.0);
    float w[STEPS][N];
    run_rmsprop(&cfg, w);
    for (int t = 0; t < STEPS; t++)
        expect_close("rmsprop unclipped", t + 1, w[t], want[t], rms_w0);
}

/* A parameter server owns a slice: stepping w + 5 with n = 3 touches w[5..8) only, and
 * gives what a 3-element vector on its own gets. */
static void step_on_a_slice_touches_only_the_slice(void **state) {
    (void)state;
    for (int kind = ENG_OPT_ADAM; kind <= ENG_OPT_RMSPROP; kind++) {
        eng_optim_cfg cfg = eng_optim_defaults((eng_optim_kind)kind);
        cfg.clipvalue = kind == ENG_OPT_RMSPROP ? 1.0f : 0.0f;
        enum { TOTAL = 12, OFF = 5 };
        float big[TOTAL], before[TOTAL], gbig[TOTAL], alone[N], g[N];
        for (int i = 0; i < TOTAL; i++) {
            big[i] = before[i] = 0.1f * (float)(i + 1);
            gbig[i] = i % 2 ? 0.5f : -2.0f;
        }
        for (int i = 0; i < N; i++)
            alone[i] = big[OFF + i];
        eng_optim *a = eng_optim_new(&cfg, N), *b = eng_optim_new(&cfg, N);
        assert_true(a && b);
        for (int t = 0; t < STEPS; t++) {
            eng_optim_step(a, big + OFF, gbig + OFF);
            memcpy(g, gbig + OFF, sizeof g);
            eng_optim_step(b, alone, g);
        }
        assert_memory_equal(big, before, sizeof(float) * OFF);
        assert_memory_equal(big + OFF + N, before + OFF + N, sizeof(float) * (TOTAL - OFF - N));
        assert_memory_equal(big + OFF, alone, sizeof alone);
        for (int i = 0; i < N; i++)
            assert_true(big[OFF + i] != before[OFF + i]);
        eng_optim_free(&a);
        eng_optim_free(&b);
    }
}

/* Threads update disjoint ranges of one optimizer's slice as the same update, then one
 * advances the counter: the same as one eng_optim_step. */
static void ranges_then_advance_equal_a_step(void **state) {
    (void)state;
    for (int kind = ENG_OPT_ADAM; kind <= ENG_OPT_RMSPROP; kind++) {
        eng_optim_cfg cfg = eng_optim_defaults((eng_optim_kind)kind);
        if (kind == ENG_OPT_RMSPROP) {
            cfg.clipvalue = 1.0f;
            cfg.decay = 0.25f;
        }
        enum { LEN = 10 };
        float w1[LEN], w2[LEN], g[LEN];
        eng_optim *a = eng_optim_new(&cfg, LEN), *b = eng_optim_new(&cfg, LEN);
        assert_true(a && b);
        assert_int_equal(eng_optim_size(a), LEN);
        for (int i = 0; i < LEN; i++)
            w1[i] = w2[i] = 0.05f * (float)(i - 4);
        for (int t = 0; t < STEPS; t++) {
            for (int i = 0; i < LEN; i++)
                g[i] = (float)((i * 7 + t * 3) % 11) * 0.3f - 1.5f;
            eng_optim_step(a, w1, g);
            /* Uneven ranges, in reverse order. */
            eng_optim_step_range(b, w2, g, 7, 3);
            eng_optim_step_range(b, w2, g, 2, 5);
            eng_optim_step_range(b, w2, g, 0, 2);
            assert_int_equal(eng_optim_iterations(b), t);
            eng_optim_advance(b);
            assert_int_equal(eng_optim_iterations(b), t + 1);
            assert_memory_equal(w1, w2, sizeof w1);
        }
        eng_optim_free(&a);
        eng_optim_free(&b);
    }
}

static void kind_names(void **state) {
    (void)state;
    assert_int_equal(eng_optim_kind_parse("adam"), ENG_OPT_ADAM);
    assert_int_equal(eng_optim_kind_parse("rmsprop"), ENG_OPT_RMSPROP);
    assert_int_equal(eng_optim_kind_parse("sgd"), -1);
    assert_int_equal(eng_optim_kind_parse("Adam"), -1);
    assert_int_equal(eng_optim_kind_parse(""), -1);
    assert_string_equal(eng_optim_kind_name(ENG_OPT_ADAM), "adam");
    assert_string_equal(eng_optim_kind_name(ENG_OPT_RMSPROP), "rmsprop");
}

/* TF's ExponentialMovingAverage with num_updates, by hand: d = min(decay, (1 + u) / (10 + u)),
 * avg = d * avg + (1 - d) * w. */
static void ema_follows_tf_warmup(void **state) {
    (void)state;
    assert_true(fabs(eng_ema_decay(0.999, 0) - 0.1) < 1e-15);
    assert_true(fabs(eng_ema_decay(0.999, 1) - 2.0 / 11.0) < 1e-15);
    assert_true(fabs(eng_ema_decay(0.999, 100) - 101.0 / 110.0) < 1e-15);
    assert_true(fabs(eng_ema_decay(0.999, 100000) - 0.999) < 1e-15);
    assert_true(fabs(eng_ema_decay(0.5, 2) - 0.25) < 1e-15);
    assert_true(fabs(eng_ema_decay(0.5, 7) - 8.0 / 17.0) < 1e-15);
    assert_true(fabs(eng_ema_decay(0.5, 8) - 0.5) < 1e-15); /* 9/18: where the two meet */

    /* avg 1, then w = 2, 4, -1 under decay 0.5: 1.9, 3.618181..., 0.154545... */
    float avg[2] = {1.0f, -3.0f};
    const float ws[3][2] = {{2.0f, 0.5f}, {4.0f, 0.25f}, {-1.0f, 8.0f}};
    double want[2] = {1.0, -3.0};
    for (int u = 0; u < 3; u++) {
        eng_ema_update(avg, ws[u], 2, 0.5, u);
        const double d = fmin(0.5, (1.0 + u) / (10.0 + u));
        for (int i = 0; i < 2; i++) {
            want[i] = d * want[i] + (1.0 - d) * ws[u][i];
            assert_float_equal(avg[i], want[i], 1e-6);
        }
    }
    assert_float_equal(avg[0], 0.1545455, 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(adam_three_steps),
        cmocka_unit_test(adam_kernel_matches_step),
        cmocka_unit_test(rmsprop_dcgan_three_steps),
        cmocka_unit_test(rmsprop_decay_uses_previous_iterations),
        cmocka_unit_test(rmsprop_without_clipping),
        cmocka_unit_test(step_on_a_slice_touches_only_the_slice),
        cmocka_unit_test(ranges_then_advance_equal_a_step),
        cmocka_unit_test(kind_names),
        cmocka_unit_test(ema_follows_tf_warmup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
