/* test_maxpool2d.c: MaxPooling2D against a direct loop (values and winners), its gradient
 * against central differences of L = sum(y * R), and the edges: sizes that drop trailing
 * rows and columns (their gradient is exactly 0), non-square pools, ties (the first
 * position wins and alone gets the gradient, also -0 against +0), all-negative windows.
 *
 * Inputs for the difference checks are distinct values 0.05 apart, so a probe of 0.01 can
 * never change a window's winner: the loss is exactly linear in every element. */
#include "engine/maxpool2d.h"

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

typedef struct pool_case {
    const char *name;
    int B, H, W, C, PH, PW;
    size_t max_checks; /* 0 = all */
} pool_case;

typedef struct pool_ctx {
    const pool_case *c;
    int OH, OW;
    size_t nx, ny;
    float *x, *y, *r, *dx, *dy;
} pool_ctx;

static void ctx_init(pool_ctx *k, const pool_case *c, uint64_t seed) {
    memset(k, 0, sizeof *k);
    k->c = c;
    k->OH = c->H / c->PH;
    k->OW = c->W / c->PW;
    k->nx = (size_t)c->B * c->H * c->W * c->C;
    k->ny = (size_t)c->B * k->OH * k->OW * c->C;
    k->x = pst_alloc(sizeof(float) * k->nx);
    k->dx = pst_alloc(sizeof(float) * k->nx);
    k->y = pst_alloc(sizeof(float) * k->ny);
    k->r = pst_alloc(sizeof(float) * k->ny);
    k->dy = pst_alloc(sizeof(float) * k->ny);
    assert_true(k->x && k->dx && k->y && k->r && k->dy);
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    tu_fill_distinct(k->x, k->nx, -0.05f * (float)(k->nx / 2), 0.05f, &rng);
    tu_fill_uniform(k->r, k->ny, -1.0f, 1.0f, &rng);
}

static void ctx_deinit(pool_ctx *k) {
    pst_free(k->x);
    pst_free(k->dx);
    pst_free(k->y);
    pst_free(k->r);
    pst_free(k->dy);
}

static void forward(pool_ctx *k) {
    const pool_case *c = k->c;
    eng_maxpool2d_forward(k->y, k->x, c->B, c->H, c->W, c->C, c->PH, c->PW);
}

static void backward(pool_ctx *k, const float *dy) {
    const pool_case *c = k->c;
    for (size_t i = 0; i < k->nx; i++)
        k->dx[i] = GARBAGE;                   /* "written in full" */
    memcpy(k->dy, dy, sizeof(float) * k->ny); /* the backward may overwrite it */
    eng_maxpool2d_backward(k->dx, k->dy, k->x, k->y, c->B, c->H, c->W, c->C, c->PH, c->PW);
}

static double pool_loss(void *arg) {
    pool_ctx *k = arg;
    forward(k);
    return tu_dot(k->y, k->r, k->ny);
}

static size_t xi(const pool_case *c, int n, int h, int w, int ch) {
    return (((size_t)n * c->H + h) * c->W + w) * c->C + ch;
}

/* y against a direct loop (first maximum wins), bit for bit; then dx: each
 * window's winner holds dy, every other input (dropped rows and columns included) 0. */
static void check_exact(pool_ctx *k) {
    const pool_case *c = k->c;
    forward(k);
    backward(k, k->r);
    float *want_dx = calloc(k->nx, sizeof(float));
    assert_non_null(want_dx);
    for (int n = 0; n < c->B; n++)
        for (int oh = 0; oh < k->OH; oh++)
            for (int ow = 0; ow < k->OW; ow++)
                for (int ch = 0; ch < c->C; ch++) {
                    int best = 0;
                    float m = k->x[xi(c, n, oh * c->PH, ow * c->PW, ch)];
                    for (int i = 0; i < c->PH; i++)
                        for (int j = 0; j < c->PW; j++) {
                            float v = k->x[xi(c, n, oh * c->PH + i, ow * c->PW + j, ch)];
                            if (v > m) {
                                m = v;
                                best = i * c->PW + j;
                            }
                        }
                    size_t o = (((size_t)n * k->OH + oh) * k->OW + ow) * c->C + ch;
                    if (k->y[o] != m)
                        fail_msg("%s: output (%d,%d,%d,%d): y %g, expected %g", c->name, n, oh, ow,
                                 ch, k->y[o], m);
                    want_dx[xi(c, n, oh * c->PH + best / c->PW, ow * c->PW + best % c->PW, ch)] =
                        k->r[o];
                }
    for (int n = 0; n < c->B; n++)
        for (int h = 0; h < c->H; h++)
            for (int w = 0; w < c->W; w++)
                for (int ch = 0; ch < c->C; ch++) {
                    size_t i = xi(c, n, h, w, ch);
                    if (k->dx[i] != want_dx[i])
                        fail_msg("%s: dx(%d,%d,%d,%d) = %g, expected %g%s", c->name, n, h, w, ch,
                                 k->dx[i], want_dx[i],
                                 h >= k->OH * c->PH || w >= k->OW * c->PW
                                     ? " (a dropped row or column)"
                                     : "");
                }
    free(want_dx);
}

static void run_case(const pool_case *c) {
    printf("maxpool2d %s: B=%d H=%d W=%d C=%d pool %dx%d -> %dx%d\n", c->name, c->B, c->H, c->W,
           c->C, c->PH, c->PW, c->H / c->PH, c->W / c->PW);
    pool_ctx k;
    ctx_init(&k, c, 0x900Lu + (uint64_t)c->H * 31 + (uint64_t)c->W);
    check_exact(&k);
    forward(&k);
    backward(&k, k.r);
    tu_gradcheck gc = {
        .what = "dx", .eps = 1e-2, .rtol = 1e-5, .atol = 1e-6, .max_checks = c->max_checks};
    tu_gradcheck_result res;
    if (tu_gradcheck_run(&gc, k.x, k.nx, k.dx, pool_loss, &k, &res))
        fail_msg("%s: %zu gradient mismatches", c->name, res.failed);
    ctx_deinit(&k);
}

#define CASE(fn, ...)                                                                              \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        static const pool_case c = {#fn, __VA_ARGS__};                                             \
        run_case(&c);                                                                              \
    }

/* clang-format off */
/*    name                         B  H   W   C   PH PW max_checks */
CASE(pool2x2_exact,                1, 4,  4,  1,  2, 2, 0)
CASE(pool2x2_odd_drops_row_col,    2, 5,  7,  3,  2, 2, 0)
CASE(pool3x2_drops_row_col,        3, 7,  5,  2,  3, 2, 0)
CASE(pool3x2_exact,                2, 6,  6,  4,  3, 2, 0)
CASE(pool2x3_drops_two_cols,       2, 5,  5,  2,  2, 3, 0)
CASE(pool_whole_input,             1, 3,  3,  2,  3, 3, 0)
CASE(pool1x1_identity,             2, 3,  2,  3,  1, 1, 0)
CASE(mnist_max_pooling2d_shape,    2, 26, 26, 32, 2, 2, 2000)
CASE(mnist_max_pooling2d_1_shape,  2, 11, 11, 64, 2, 2, 2000)
/* clang-format on */

/* Ties: the first window position wins and alone receives the gradient. */
static void ties_go_to_the_first(void **state) {
    (void)state;
    /* One sample, 2x4, two channels; pool 2x2 -> 1x2. Channel 0 is all equal; in channel
     * 1 the second window holds its maximum twice, at positions 0 and 1. */
    const float x[2 * 4 * 2] = {
        /* row 0 */ 3, 1, 3, 4, 3, 9, 3, 9,
        /* row 1 */ 3, 9, 3, 2, 3, 0, 3, -1,
    };
    float dx[16], y2[4];
    eng_maxpool2d_forward(y2, x, 1, 2, 4, 2, 2, 2);
    /* window 0 (cols 0-1): ch0 all 3 -> pos 0; ch1 {1, 4, 9, 2} -> 9 at pos 2 (row 1, col 0)
     * window 1 (cols 2-3): ch0 all 3 -> pos 0; ch1 {9, 9, 0, -1} -> first 9 at pos 0 */
    assert_true(y2[0] == 3 && y2[1] == 9 && y2[2] == 3 && y2[3] == 9);
    float dy[4] = {10, 20, 30, 40};
    for (int i = 0; i < 16; i++)
        dx[i] = GARBAGE;
    eng_maxpool2d_backward(dx, dy, x, y2, 1, 2, 4, 2, 2, 2);
    const float want[16] = {
        10, 0,  0, 0, 30, 40, 0, 0, /* row 0 */
        0,  20, 0, 0, 0,  0,  0, 0, /* row 1 */
    };
    for (int i = 0; i < 16; i++)
        if (dx[i] != want[i])
            fail_msg("dx[%d] = %g, expected %g", i, dx[i], want[i]);
}

/* All-negative windows: the maximum is the largest negative value, not 0. */
static void negative_windows(void **state) {
    (void)state;
    const float x[4] = {-5, -2, -7, -3};
    float y, dy = 1.0f, dx[4];
    eng_maxpool2d_forward(&y, x, 1, 2, 2, 1, 2, 2);
    assert_true(y == -2.0f);
    eng_maxpool2d_backward(dx, &dy, x, &y, 1, 2, 2, 1, 2, 2);
    assert_true(dx[0] == 0.0f && dx[1] == 1.0f && dx[2] == 0.0f && dx[3] == 0.0f);
}

/* -0 and +0 compare equal: the first of them is the window's maximum (its bits stay in y)
 * and alone gets the gradient, as a ReLU's zeros do. */
static void signed_zeros_tie(void **state) {
    (void)state;
    const float x[4] = {-0.0f, 0.0f, -1.0f, 0.0f};
    float y, dy = 5.0f, dx[4];
    eng_maxpool2d_forward(&y, x, 1, 2, 2, 1, 2, 2);
    assert_true(y == 0.0f && signbit(y));
    eng_maxpool2d_backward(dx, &dy, x, &y, 1, 2, 2, 1, 2, 2);
    assert_true(dx[0] == 5.0f && dx[1] == 0.0f && dx[2] == 0.0f && dx[3] == 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool2x2_exact),
        cmocka_unit_test(pool2x2_odd_drops_row_col),
        cmocka_unit_test(pool3x2_drops_row_col),
        cmocka_unit_test(pool3x2_exact),
        cmocka_unit_test(pool2x3_drops_two_cols),
        cmocka_unit_test(pool_whole_input),
        cmocka_unit_test(pool1x1_identity),
        cmocka_unit_test(mnist_max_pooling2d_shape),
        cmocka_unit_test(mnist_max_pooling2d_1_shape),
        cmocka_unit_test(ties_go_to_the_first),
        cmocka_unit_test(negative_windows),
        cmocka_unit_test(signed_zeros_tie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
