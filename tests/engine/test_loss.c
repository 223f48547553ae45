/* test_loss.c: softmax cross-entropy from logits. The backward against central differences
 * of the forward's summed loss (divided by scale), the probabilities against a direct
 * softmax in double, stability at logits of +-1000, and the arg-max hit count (first
 * class on ties). Sigmoid binary cross-entropy from one logit: hand-computed values, finite
 * and exact at logits of +-1000 and beyond, its gradient against central differences, the
 * hit count ((z > 0) == label), and labels other than 0 and 1 refused. */
#include "engine/loss.h"

#include "engine/base/base.h"
#include "tests/support/testutil.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define GARBAGE_F 777.0f

typedef struct xent_ctx {
    int B, C;
    float *logits, *probs;
    const uint8_t *labels;
    float scale;
} xent_ctx;

static double xent_loss(void *arg) {
    xent_ctx *k = arg;
    return eng_softmax_xent_forward(k->probs, k->logits, k->labels, k->B, k->C, NULL) /
           (double)k->scale;
}

static void check_gradient(int B, int C, float scale, float spread, uint64_t seed) {
    printf("softmax xent: B=%d C=%d scale=%g logits in +-%g\n", B, C, (double)scale,
           (double)spread);
    const size_t n = (size_t)B * C;
    float *logits = pst_alloc(sizeof(float) * n), *probs = pst_alloc(sizeof(float) * n);
    float *dlogits = pst_alloc(sizeof(float) * n);
    uint8_t *labels = pst_alloc((size_t)B);
    assert_true(logits && probs && dlogits && labels);
    eng_rng r;
    eng_rng_seed(&r, seed);
    tu_fill_uniform(logits, n, -spread, spread, &r);
    for (int i = 0; i < B; i++)
        labels[i] = (uint8_t)eng_rng_below(&r, (uint64_t)C);

    int hits = -1;
    const double loss = eng_softmax_xent_forward(probs, logits, labels, B, C, &hits);
    /* Probabilities and loss against a direct computation in double. */
    double want_loss = 0.0, max_loss = 0.0;
    int want_hits = 0;
    for (int i = 0; i < B; i++) {
        const float *z = logits + (size_t)i * C;
        double zmax = z[0], sum = 0.0;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (z[c] > z[best])
                best = c, zmax = z[c];
        for (int c = 0; c < C; c++)
            sum += exp((double)z[c] - zmax);
        for (int c = 0; c < C; c++) {
            double p = exp((double)z[c] - zmax) / sum;
            if (fabs(probs[(size_t)i * C + c] - p) > 1e-6 + 1e-5 * p)
                fail_msg("probs[%d,%d] = %.7g, expected %.7g", i, c, probs[(size_t)i * C + c], p);
        }
        const double li = log(sum) - ((double)z[labels[i]] - zmax);
        want_loss += li;
        max_loss = fmax(max_loss, li);
        want_hits += best == labels[i];
    }
    if (fabs(loss - want_loss) > 1e-5 * (1.0 + want_loss))
        fail_msg("summed loss %.9g, expected %.9g", loss, want_loss);
    assert_int_equal(hits, want_hits);

    eng_softmax_xent_backward(dlogits, probs, labels, B, C, scale);
    xent_ctx k = {B, C, logits, probs, labels, scale};
    /* Smooth: the error is O(eps^2) truncation plus float rounding of one sample's loss
     * (a few ulps of it) over 2 eps. */
    const double eps = 1e-2;
    tu_gradcheck gc = {.what = "dlogits",
                       .eps = eps,
                       .rtol = 2e-3,
                       .atol = (1e-6 + 8 * 1.2e-7 * max_loss) / (2 * eps) / scale};
    tu_gradcheck_result res;
    if (tu_gradcheck_run(&gc, logits, n, dlogits, xent_loss, &k, &res))
        fail_msg("%zu gradient mismatches", res.failed);

    /* In place (dlogits == probs, as the net calls it): the same values. */
    float *inplace = pst_alloc(sizeof(float) * n);
    assert_non_null(inplace);
    eng_softmax_xent_forward(inplace, logits, labels, B, C, NULL);
    eng_softmax_xent_backward(inplace, inplace, labels, B, C, scale);
    assert_memory_equal(inplace, dlogits, sizeof(float) * n);
    /* probs == logits in the forward too (probs was last written by a probe: redo it). */
    eng_softmax_xent_forward(probs, logits, labels, B, C, NULL);
    memcpy(inplace, logits, sizeof(float) * n);
    eng_softmax_xent_forward(inplace, inplace, labels, B, C, NULL);
    assert_memory_equal(inplace, probs, sizeof(float) * n);
    pst_free(inplace);
    pst_free(logits);
    pst_free(probs);
    pst_free(dlogits);
    pst_free(labels);
}

static void gradient_mean_over_batch(void **state) {
    (void)state;
    check_gradient(4, 10, 4.0f, 2.0f, 1);
}

/* A thread's share of a larger step: the scale is the whole step's batch. */
static void gradient_share_of_a_step(void **state) {
    (void)state;
    check_gradient(3, 10, 32.0f, 3.0f, 2);
}

static void gradient_one_sample_two_classes(void **state) {
    (void)state;
    check_gradient(1, 2, 1.0f, 1.0f, 3);
}

static void gradient_confident_logits(void **state) {
    (void)state;
    check_gradient(5, 10, 5.0f, 8.0f, 4);
}

/* Logits of +-1000 overflow a naive exp: the fused form stays finite and exact. */
static void stable_at_large_logits(void **state) {
    (void)state;
    const float logits[3 * 3] = {
        1000.0f, -1000.0f, 0.0f,     /* label 0: right and certain -> loss 0 */
        1000.0f, -1000.0f, 0.0f,     /* label 1: wrong and certain -> loss 2000 */
        1000.0f, 1000.0f,  -1000.0f, /* label 1: a tie at 1000 -> loss ln 2, arg-max 0 */
    };
    const uint8_t labels[3] = {0, 1, 1};
    float probs[9], d[9];
    int hits = -1;
    const double loss = eng_softmax_xent_forward(probs, logits, labels, 3, 3, &hits);
    assert_true(isfinite(loss));
    for (int i = 0; i < 9; i++)
        if (!isfinite(probs[i]) || probs[i] < 0.0f || probs[i] > 1.0f)
            fail_msg("probs[%d] = %g", i, probs[i]);
    if (fabs(loss - (0.0 + 2000.0 + log(2.0))) > 1e-3)
        fail_msg("loss %.9g, expected 2000 + ln 2 = %.9g", loss, 2000.0 + log(2.0));
    assert_true(fabsf(probs[0] - 1.0f) < 1e-7f && probs[1] == 0.0f);
    assert_true(fabsf(probs[6] - 0.5f) < 1e-7f && fabsf(probs[7] - 0.5f) < 1e-7f);
    assert_int_equal(hits, 1); /* sample 0 only: sample 2's tie goes to class 0 */
    eng_softmax_xent_backward(d, probs, labels, 3, 3, 3.0f);
    for (int i = 0; i < 9; i++)
        assert_true(isfinite(d[i]));
    /* (p - onehot) / 3 */
    assert_true(fabsf(d[3] - 1.0f / 3.0f) < 1e-6f && fabsf(d[4] + 1.0f / 3.0f) < 1e-6f);
    assert_true(fabsf(d[0]) < 1e-6f);
}

/* Counting hits: arg-max against the label, the first class on ties. */
static void correct_count(void **state) {
    (void)state;
    const float logits[4 * 4] = {
        0.1f, 0.9f, 0.3f, 0.2f,  /* arg-max 1 */
        2.0f, 2.0f, 1.0f, 0.0f,  /* tie: 0 */
        -1.f, -2.f, -3.f, -0.5f, /* arg-max 3 */
        5.0f, 5.0f, 5.0f, 5.0f,  /* all equal: 0 */
    };
    float probs[16];
    const uint8_t right[4] = {1, 0, 3, 0}, wrong[4] = {0, 1, 2, 3}, half[4] = {1, 1, 3, 3};
    int hits = -1;
    eng_softmax_xent_forward(probs, logits, right, 4, 4, &hits);
    assert_int_equal(hits, 4);
    eng_softmax_xent_forward(probs, logits, wrong, 4, 4, &hits);
    assert_int_equal(hits, 0);
    eng_softmax_xent_forward(probs, logits, half, 4, 4, &hits);
    assert_int_equal(hits, 2);
    /* All equal: each probability 1/4, loss ln 4. */
    const double l = eng_softmax_xent_forward(probs, logits + 12, right + 3, 1, 4, NULL);
    assert_true(fabs(l - log(4.0)) < 1e-6);
}

/* --- sigmoid + binary cross-entropy --- */

/* Values worked out by hand: loss = -y log s(z) - (1 - y) log(1 - s(z)),
 * d loss / dz = s(z) - y. */
static void bce_values(void **state) {
    (void)state;
    static const struct {
        float z;
        uint8_t y;
        double loss, grad;
    } cases[] = {
        {0.0f, 1, 0.69314718055994531, -0.5},           /* ln 2 */
        {0.0f, 0, 0.69314718055994531, 0.5},            /* ln 2 */
        {2.0f, 1, 0.12692801104297263, -0.11920292202}, /* ln(1 + e^-2) */
        {2.0f, 0, 2.12692801104297263, 0.88079707798},  /* 2 + ln(1 + e^-2) */
        {-3.0f, 1, 3.04858735157374206, -0.95257412682},
        {-3.0f, 0, 0.04858735157374206, 0.04742587318},
        {1000.0f, 1, 0.0, 0.0}, /* right and certain */
        {1000.0f, 0, 1000.0, 1.0},
        {-1000.0f, 1, 1000.0, -1.0},
        {-1000.0f, 0, 0.0, 0.0},
        {FLT_MAX, 0, FLT_MAX, 1.0},
        {-FLT_MAX, 1, FLT_MAX, -1.0},
        {1e-8f, 1, 0.69314717555994531, -0.4999999975},
    };
    const int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        int hits = -1;
        const double loss = eng_sigmoid_bce_forward(&cases[i].z, &cases[i].y, 1, &hits);
        float d = GARBAGE_F;
        eng_sigmoid_bce_backward(&d, &cases[i].z, &cases[i].y, 1, 1.0f);
        printf("  z = %g, y = %d: loss %.17g (expected %.17g), dz %.9g (expected %.9g)\n",
               (double)cases[i].z, cases[i].y, loss, cases[i].loss, (double)d, cases[i].grad);
        if (!isfinite(loss) || !isfinite(d))
            fail_msg("z = %g, y = %d: loss %g, gradient %g", (double)cases[i].z, cases[i].y, loss,
                     (double)d);
        if (fabs(loss - cases[i].loss) > 1e-12 * (1.0 + cases[i].loss))
            fail_msg("z = %g, y = %d: loss %.17g, expected %.17g", (double)cases[i].z, cases[i].y,
                     loss, cases[i].loss);
        if (fabs(d - cases[i].grad) > 1e-7)
            fail_msg("z = %g, y = %d: gradient %.9g, expected %.9g", (double)cases[i].z, cases[i].y,
                     (double)d, cases[i].grad);
        assert_int_equal(hits, (cases[i].z > 0.0f) == (cases[i].y == 1));
    }
}

typedef struct bce_ctx {
    int B;
    float *z;
    const uint8_t *labels;
    float scale;
} bce_ctx;

static double bce_loss(void *arg) {
    bce_ctx *k = arg;
    return eng_sigmoid_bce_forward(k->z, k->labels, k->B, NULL) / (double)k->scale;
}

/* The gradient of the summed loss over scale, against central differences (the forward sums
 * in double: the differences are as exact as the logits' steps). */
static void bce_gradient(void **state) {
    (void)state;
    enum { B = 64 };
    float z[B], d[B], inplace[B];
    uint8_t labels[B];
    eng_rng r;
    eng_rng_seed(&r, 17);
    tu_fill_uniform(z, B, -12.0f, 12.0f, &r);
    z[0] = 0.0f, z[1] = 40.0f, z[2] = -40.0f;
    for (int i = 0; i < B; i++)
        labels[i] = (uint8_t)eng_rng_below(&r, 2);
    const float scale = 32.0f;
    eng_sigmoid_bce_backward(d, z, labels, B, scale);
    bce_ctx k = {B, z, labels, scale};
    tu_gradcheck gc = {.what = "dz", .eps = 1e-3, .rtol = 1e-4, .atol = 1e-8};
    tu_gradcheck_result res;
    if (tu_gradcheck_run(&gc, z, B, d, bce_loss, &k, &res))
        fail_msg("%zu gradient mismatches", res.failed);
    /* Negative control: labels flipped give another gradient, which the check rejects. */
    float wrong[B];
    uint8_t flipped[B];
    for (int i = 0; i < B; i++)
        flipped[i] = (uint8_t)(1 - labels[i]);
    eng_sigmoid_bce_backward(wrong, z, flipped, B, scale);
    gc.what = "  dz for flipped labels (must fail)";
    tu_gradcheck_run(&gc, z, B, wrong, bce_loss, &k, &res);
    assert_true(res.failed > B / 2);
    /* In place (dlogits == logits): the same values. */
    memcpy(inplace, z, sizeof z);
    eng_sigmoid_bce_backward(inplace, inplace, labels, B, scale);
    assert_memory_equal(inplace, d, sizeof d);
}

/* Hits: (z > 0) == (label == 1); z = 0 counts as a prediction of 0. */
static void bce_correct_count(void **state) {
    (void)state;
    const float z[6] = {0.5f, -0.5f, 0.0f, 0.0f, 7.0f, -7.0f};
    const uint8_t y[6] = {1, 0, 0, 1, 0, 1};
    int hits = -1;
    const double loss = eng_sigmoid_bce_forward(z, y, 6, &hits);
    assert_int_equal(hits, 3);
    assert_true(loss > 0.0 && isfinite(loss));
    eng_sigmoid_bce_forward(z, y, 2, &hits);
    assert_int_equal(hits, 2);
}

/* A label of 2 is a data set bug: the loss aborts with a message instead of training on it. */
static void bce_refuses_other_labels(void **state) {
    (void)state;
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        const float z[2] = {1.0f, 2.0f};
        const uint8_t y[2] = {1, 2};
        eng_sigmoid_bce_forward(z, y, 2, NULL);
        _exit(0);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradient_mean_over_batch),
        cmocka_unit_test(gradient_share_of_a_step),
        cmocka_unit_test(gradient_one_sample_two_classes),
        cmocka_unit_test(gradient_confident_logits),
        cmocka_unit_test(stable_at_large_logits),
        cmocka_unit_test(correct_count),
        cmocka_unit_test(bce_values),
        cmocka_unit_test(bce_gradient),
        cmocka_unit_test(bce_correct_count),
        cmocka_unit_test(bce_refuses_other_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
