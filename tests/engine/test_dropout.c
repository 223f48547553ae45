/* test_dropout.c: inverted dropout. Training: y = x * mask with mask in {0, 1/(1-rate)},
 * the gradient is the mask (exactly, and by central differences), the dropped fraction is
 * near rate; evaluation: the identity. Masks are a function of (key, sample index within
 * the step) only: the same key and sample give the same mask, and a sample's mask does not
 * depend on the sub-batch (thread) that computes it. */
#include "engine/dropout.h"

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

#define GARBAGE 777.0f
#define KEY 0x5EED0123456789ull

typedef struct bufs {
    size_t len;
    float *x, *y, *mask, *dx, *dy;
} bufs;

static bufs bufs_new(int B, size_t n, uint64_t seed) {
    bufs b = {.len = (size_t)B * n};
    b.x = pst_alloc(sizeof(float) * b.len);
    b.y = pst_alloc(sizeof(float) * b.len);
    b.mask = pst_alloc(sizeof(float) * b.len);
    b.dx = pst_alloc(sizeof(float) * b.len);
    b.dy = pst_alloc(sizeof(float) * b.len);
    assert_true(b.x && b.y && b.mask && b.dx && b.dy);
    eng_rng r;
    eng_rng_seed(&r, seed);
    tu_fill_uniform(b.x, b.len, -1.0f, 1.0f, &r);
    tu_fill_uniform(b.dy, b.len, -1.0f, 1.0f, &r);
    for (size_t i = 0; i < b.len; i++)
        b.y[i] = b.mask[i] = b.dx[i] = GARBAGE;
    return b;
}

static void bufs_free(bufs *b) {
    pst_free(b->x);
    pst_free(b->y);
    pst_free(b->mask);
    pst_free(b->dx);
    pst_free(b->dy);
}

static void training_forward_and_gradient_are_the_mask(void **state) {
    (void)state;
    const int B = 3;
    const size_t n = 500;
    const float rate = 0.5f, keep = 1.0f / (1.0f - rate);
    bufs b = bufs_new(B, n, 1);
    eng_dropout_forward(b.y, b.mask, b.x, B, n, rate, 1, KEY, 0);
    size_t dropped = 0;
    for (size_t i = 0; i < b.len; i++) {
        if (b.mask[i] != 0.0f && b.mask[i] != keep)
            fail_msg("mask[%zu] = %g, expected 0 or %g", i, b.mask[i], keep);
        if (b.y[i] != b.x[i] * b.mask[i])
            fail_msg("y[%zu] = %g, expected x * mask = %g * %g", i, b.y[i], b.x[i], b.mask[i]);
        dropped += b.mask[i] == 0.0f;
    }
    assert_true(dropped > 0 && dropped < b.len);
    eng_dropout_backward(b.dx, b.dy, b.mask, B, n, 1);
    for (size_t i = 0; i < b.len; i++)
        if (b.dx[i] != b.dy[i] * b.mask[i])
            fail_msg("dx[%zu] = %g, expected dy * mask = %g * %g", i, b.dx[i], b.dy[i], b.mask[i]);
    bufs_free(&b);
}

typedef struct fd_ctx {
    bufs *b;
    int B;
    size_t n;
    float rate;
} fd_ctx;

static double dropout_loss(void *arg) {
    fd_ctx *c = arg;
    eng_dropout_forward(c->b->y, c->b->mask, c->b->x, c->B, c->n, c->rate, 1, KEY, 7);
    return tu_dot(c->b->y, c->b->dy, c->b->len);
}

/* The same through central differences of L = sum(y * R): the forward recomputes the same
 * mask for the same key, so L is linear in x. */
static void training_gradient_by_differences(void **state) {
    (void)state;
    bufs b = bufs_new(2, 300, 2);
    fd_ctx c = {&b, 2, 300, 0.3f};
    dropout_loss(&c);
    eng_dropout_backward(b.dx, b.dy, b.mask, 2, 300, 1);
    tu_gradcheck gc = {.what = "dx", .eps = 1e-2, .rtol = 1e-4, .atol = 1e-5};
    tu_gradcheck_result res;
    assert_int_equal(tu_gradcheck_run(&gc, b.x, b.len, b.dx, dropout_loss, &c, &res), 0);
    bufs_free(&b);
}

static void evaluation_is_the_identity(void **state) {
    (void)state;
    const int B = 4;
    const size_t n = 257;
    bufs b = bufs_new(B, n, 3);
    eng_dropout_forward(b.y, b.mask, b.x, B, n, 0.5f, 0, KEY, 0);
    assert_memory_equal(b.y, b.x, sizeof(float) * b.len);
    eng_dropout_backward(b.dx, b.dy, b.mask, B, n, 0);
    assert_memory_equal(b.dx, b.dy, sizeof(float) * b.len);
    /* In place too. */
    memcpy(b.y, b.x, sizeof(float) * b.len);
    eng_dropout_forward(b.y, b.mask, b.y, B, n, 0.5f, 0, KEY, 0);
    assert_memory_equal(b.y, b.x, sizeof(float) * b.len);
    bufs_free(&b);
}

/* Dropout(0) in training is the identity too, and so is its backward: Keras's
 * Dropout(0.0) passes gradients through. */
static void rate_zero_in_training_passes_gradients(void **state) {
    (void)state;
    const int B = 2;
    const size_t n = 64;
    bufs b = bufs_new(B, n, 4);
    eng_dropout_forward(b.y, b.mask, b.x, B, n, 0.0f, 1, KEY, 0);
    assert_memory_equal(b.y, b.x, sizeof(float) * b.len);
    /* The layer table's backward always passes training = 1 after a training forward. */
    eng_dropout_backward(b.dx, b.dy, b.mask, B, n, 1);
    for (size_t i = 0; i < b.len; i++)
        if (b.dx[i] != b.dy[i])
            fail_msg("rate 0, training: dx[%zu] = %g, expected dy = %g (mask[%zu] = %g: the "
                     "forward did not write the mask that backward reads)",
                     i, b.dx[i], b.dy[i], i, b.mask[i]);
    bufs_free(&b);
}

/* The dropped fraction over many elements is within 5 standard deviations of rate. */
static void dropped_fraction_is_near_rate(void **state) {
    (void)state;
    const int B = 16;
    const size_t n = 25000;
    const float rates[] = {0.1f, 0.25f, 0.5f, 0.75f};
    bufs b = bufs_new(B, n, 5);
    for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
        const double p = rates[k];
        eng_dropout_forward(b.y, b.mask, b.x, B, n, rates[k], 1, KEY + k, 100);
        size_t dropped = 0;
        for (size_t i = 0; i < b.len; i++)
            dropped += b.mask[i] == 0.0f;
        const double frac = (double)dropped / (double)b.len;
        const double sigma = sqrt(p * (1 - p) / (double)b.len);
        printf("  rate %.2f: dropped %.5f of %zu (sigma %.5f)\n", p, frac, b.len, sigma);
        if (fabs(frac - p) > 5 * sigma)
            fail_msg("rate %g: dropped fraction %g, more than 5 sigma (%g) away", p, frac, sigma);
        /* Each sample on its own is near rate as well (no sample is all kept/dropped). */
        for (int s = 0; s < B; s++) {
            size_t d = 0;
            for (size_t i = 0; i < n; i++)
                d += b.mask[(size_t)s * n + i] == 0.0f;
            const double fs = (double)d / (double)n, ss = sqrt(p * (1 - p) / (double)n);
            if (fabs(fs - p) > 6 * ss)
                fail_msg("rate %g: sample %d dropped %g", p, s, fs);
        }
    }
    bufs_free(&b);
}

static void same_key_same_mask_other_key_other_mask(void **state) {
    (void)state;
    const int B = 4;
    const size_t n = 300;
    bufs a = bufs_new(B, n, 6), b = bufs_new(B, n, 6);
    eng_dropout_forward(a.y, a.mask, a.x, B, n, 0.5f, 1, KEY, 10);
    eng_dropout_forward(b.y, b.mask, b.x, B, n, 0.5f, 1, KEY, 10);
    assert_memory_equal(a.mask, b.mask, sizeof(float) * a.len);
    assert_memory_equal(a.y, b.y, sizeof(float) * a.len);
    eng_dropout_forward(b.y, b.mask, b.x, B, n, 0.5f, 1, KEY + 1, 10);
    assert_memory_not_equal(a.mask, b.mask, sizeof(float) * a.len);
    eng_dropout_forward(b.y, b.mask, b.x, B, n, 0.5f, 1, KEY, 11);
    assert_memory_not_equal(a.mask, b.mask, sizeof(float) * a.len);
    /* Samples of one call get different masks. */
    assert_memory_not_equal(a.mask, a.mask + n, sizeof(float) * n);
    bufs_free(&a);
    bufs_free(&b);
}

/* Samples 0..3 at once equal 0..1 (sample0 = 0) and 2..3 (sample0 = 2) apart, and a sample
 * computed alone at its index: masks follow the sample, not the sub-batch. */
static void mask_does_not_depend_on_sub_batch(void **state) {
    (void)state;
    const int B = 4;
    const size_t n = 1000;
    bufs all = bufs_new(B, n, 7), part = bufs_new(B, n, 7);
    eng_dropout_forward(all.y, all.mask, all.x, B, n, 0.5f, 1, KEY, 0);
    eng_dropout_forward(part.y, part.mask, part.x, 2, n, 0.5f, 1, KEY, 0);
    eng_dropout_forward(part.y + 2 * n, part.mask + 2 * n, part.x + 2 * n, 2, n, 0.5f, 1, KEY, 2);
    assert_memory_equal(all.mask, part.mask, sizeof(float) * all.len);
    assert_memory_equal(all.y, part.y, sizeof(float) * all.len);
    eng_dropout_forward(part.y, part.mask, part.x + 3 * n, 1, n, 0.5f, 1, KEY, 3);
    assert_memory_equal(all.mask + 3 * n, part.mask, sizeof(float) * n);
    bufs_free(&all);
    bufs_free(&part);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(training_forward_and_gradient_are_the_mask),
        cmocka_unit_test(training_gradient_by_differences),
        cmocka_unit_test(evaluation_is_the_identity),
        cmocka_unit_test(rate_zero_in_training_passes_gradients),
        cmocka_unit_test(dropped_fraction_is_near_rate),
        cmocka_unit_test(same_key_same_mask_other_key_other_mask),
        cmocka_unit_test(mask_does_not_depend_on_sub_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
