/* test_score.c: the Inception Score on one-hot rows spread over 10 classes (10), identical
 * rows (1) and a hand-computed 2-class example. The Fréchet distance of a set with itself
 * (0), of a set and its shift by d in every coordinate (dim d^2), of 1-D samples against
 * (mu1 - mu2)^2 + (s1 - s2)^2, of 2-D samples against a closed-form 2 x 2 square root; its
 * symmetry, its refusals (fewer than 2 samples, no features, a NaN), and its time at
 * 10,000 samples of 128 features. */
#include "engine/score.h"

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
#include <time.h>

#include <cmocka.h>

static void check_close(const char *what, double got, double want, double tol) {
    printf("%s: %.12g (expected %.12g)\n", what, got, want);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s: %.15g, expected %.15g within %g", what, got, want, tol);
}

/* FD of a and b, which must succeed. */
static double frechet(const float *a, size_t na, const float *b, size_t nb, int dim) {
    char err[256] = "";
    double fd = -1.0;
    const int rc = eng_score_frechet(a, na, b, nb, dim, &fd, err, sizeof err);
    if (rc != 0)
        fail_msg("eng_score_frechet: %d: %s", rc, err);
    return fd;
}

/* A standard normal from two uniforms (Box-Muller; 1 - u keeps log away from 0). */
static double normal(eng_rng *r) {
    const double u1 = 1.0 - (double)eng_rng_uniform(r), u2 = eng_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Sample mean and unbiased covariance of x (n, 2), in double, written out by hand. */
static void stats2(const float *x, size_t n, double mu[2], double c[2][2]) {
    mu[0] = mu[1] = 0.0;
    for (size_t i = 0; i < n; i++)
        mu[0] += x[2 * i], mu[1] += x[2 * i + 1];
    mu[0] /= (double)n, mu[1] /= (double)n;
    memset(c, 0, sizeof(double) * 4);
    for (size_t i = 0; i < n; i++) {
        const double u = x[2 * i] - mu[0], v = x[2 * i + 1] - mu[1];
        c[0][0] += u * u, c[0][1] += u * v, c[1][1] += v * v;
    }
    c[0][0] /= (double)(n - 1), c[0][1] /= (double)(n - 1), c[1][1] /= (double)(n - 1);
    c[1][0] = c[0][1];
}

static void inception_one_hot_even(void **state) {
    (void)state;
    enum { N = 100, C = 10 };
    float probs[N * C] = {0};
    for (int i = 0; i < N; i++)
        probs[i * C + i % C] = 1.0f;
    check_close("IS of one-hot rows over 10 classes", eng_score_inception(probs, N, C), 10.0, 1e-9);
}

static void inception_identical_rows(void **state) {
    (void)state;
    enum { N = 7, C = 5 };
    const float row[C] = {0.1f, 0.2f, 0.3f, 0.15f, 0.25f};
    float probs[N * C];
    for (int i = 0; i < N; i++)
        memcpy(probs + i * C, row, sizeof row);
    check_close("IS of identical rows", eng_score_inception(probs, N, C), 1.0, 1e-12);
}

/* Rows (1, 0) and (0.5, 0.5): p(y) = (0.75, 0.25), KL = log(4/3) and
 * 0.5 log(2/3) + 0.5 log 2 = 0.5 log(4/3), their mean 0.75 log(4/3): IS = (4/3)^0.75. */
static void inception_two_classes_by_hand(void **state) {
    (void)state;
    const float probs[] = {1.0f, 0.0f, 0.5f, 0.5f};
    check_close("IS of (1, 0), (0.5, 0.5)", eng_score_inception(probs, 2, 2), pow(4.0 / 3.0, 0.75),
                1e-12);
}

static void frechet_of_itself_is_zero(void **state) {
    (void)state;
    enum { N = 500, D = 16 };
    float *a = tu_random_floats((size_t)N * D, -1.0f, 3.0f, 11);
    assert_non_null(a);
    /* tr(C) of uniform features of width 4: D * 16 / 12 */
    const double trace = D * 16.0 / 12.0;
    check_close("FD(a, a)", frechet(a, N, a, N, D), 0.0, 1e-6 * trace);
    free(a);
}

/* b = a + d exactly (a on a grid of 1/256 in [-4, 4], d = 0.5): the same covariance, and FD
 * is the squared shift of the mean, D d^2. */
static void frechet_of_a_shift(void **state) {
    (void)state;
    enum { N = 300, D = 8 };
    const float shift = 0.5f;
    float *a = pst_alloc(sizeof(float) * N * D), *b = pst_alloc(sizeof(float) * N * D);
    assert_true(a && b);
    eng_rng r;
    eng_rng_seed(&r, 5);
    for (size_t i = 0; i < (size_t)N * D; i++) {
        a[i] = (float)((double)eng_rng_below(&r, 2048) / 256.0 - 4.0);
        b[i] = a[i] + shift;
    }
    const double want = D * (double)shift * shift;
    check_close("FD(a, a + 0.5)", frechet(a, N, b, N, D), want, 1e-6 * want);
    pst_free(a);
    pst_free(b);
}

/* In 1-D, FD = (mu1 - mu2)^2 + (s1 - s2)^2 with the sample means and standard deviations. */
static void frechet_one_dimension(void **state) {
    (void)state;
    enum { NA = 1000, NB = 700 };
    float a[NA], b[NB];
    eng_rng r;
    eng_rng_seed(&r, 3);
    for (int i = 0; i < NA; i++)
        a[i] = (float)(1.0 + 2.0 * normal(&r));
    for (int i = 0; i < NB; i++)
        b[i] = (float)(-0.5 + 0.7 * normal(&r));
    double m[2] = {0, 0}, v[2] = {0, 0};
    for (int i = 0; i < NA; i++)
        m[0] += a[i];
    for (int i = 0; i < NB; i++)
        m[1] += b[i];
    m[0] /= NA, m[1] /= NB;
    for (int i = 0; i < NA; i++)
        v[0] += (a[i] - m[0]) * (a[i] - m[0]);
    for (int i = 0; i < NB; i++)
        v[1] += (b[i] - m[1]) * (b[i] - m[1]);
    const double s1 = sqrt(v[0] / (NA - 1)), s2 = sqrt(v[1] / (NB - 1));
    const double want = (m[0] - m[1]) * (m[0] - m[1]) + (s1 - s2) * (s1 - s2);
    check_close("FD of 1-D normals", frechet(a, NA, b, NB, 1), want, 1e-10 * (1.0 + want));
}

/* 2-D correlated samples; the reference takes its own covariances and, since Ca Cb has two
 * eigenvalues l1, l2 >= 0, tr(sqrtm(Ca Cb)) = sqrt(l1) + sqrt(l2) =
 * sqrt(tr(Ca Cb) + 2 sqrt(det(Ca Cb))): no eigensolver. */
static void frechet_two_dimensions(void **state) {
    (void)state;
    enum { NA = 400, NB = 600 };
    float a[2 * NA], b[2 * NB];
    eng_rng r;
    eng_rng_seed(&r, 9);
    for (int i = 0; i < NA; i++) {
        const double z1 = normal(&r), z2 = normal(&r);
        a[2 * i] = (float)(2.0 + 1.5 * z1);
        a[2 * i + 1] = (float)(-1.0 + 0.8 * z1 + 0.6 * z2);
    }
    for (int i = 0; i < NB; i++) {
        const double z1 = normal(&r), z2 = normal(&r);
        b[2 * i] = (float)(0.5 + 0.3 * z1 - 0.9 * z2);
        b[2 * i + 1] = (float)(1.0 + 2.0 * z2);
    }
    double ma[2], mb[2], ca[2][2], cb[2][2];
    stats2(a, NA, ma, ca);
    stats2(b, NB, mb, cb);
    double p[2][2]; /* Ca Cb */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            p[i][j] = ca[i][0] * cb[0][j] + ca[i][1] * cb[1][j];
    const double det = p[0][0] * p[1][1] - p[0][1] * p[1][0];
    const double tr_sqrt = sqrt(p[0][0] + p[1][1] + 2.0 * sqrt(det));
    const double want = (ma[0] - mb[0]) * (ma[0] - mb[0]) + (ma[1] - mb[1]) * (ma[1] - mb[1]) +
                        ca[0][0] + ca[1][1] + cb[0][0] + cb[1][1] - 2.0 * tr_sqrt;
    check_close("FD of 2-D normals", frechet(a, NA, b, NB, 2), want, 1e-10 * (1.0 + want));
}

static void frechet_is_symmetric(void **state) {
    (void)state;
    enum { NA = 200, NB = 350, D = 12 };
    float *a = tu_random_floats((size_t)NA * D, -1.0f, 1.0f, 21);
    float *b = tu_random_floats((size_t)NB * D, -0.5f, 2.0f, 22);
    assert_true(a && b);
    const double ab = frechet(a, NA, b, NB, D), ba = frechet(b, NB, a, NA, D);
    assert_true(ab > 0.1);
    check_close("FD(b, a) against FD(a, b)", ba, ab, 1e-10 * ab);
    free(a);
    free(b);
}

static void frechet_refusals(void **state) {
    (void)state;
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    char err[256];
    double fd = 42.0;
    err[0] = '\0';
    assert_int_equal(eng_score_frechet(x, 1, x, 4, 2, &fd, err, sizeof err), PST_EARG);
    printf("na = 1: %s\n", err);
    assert_non_null(strstr(err, "at least 2 samples"));
    err[0] = '\0';
    assert_int_equal(eng_score_frechet(x, 4, x, 0, 2, &fd, err, sizeof err), PST_EARG);
    printf("nb = 0: %s\n", err);
    assert_non_null(strstr(err, "got 4 and 0"));
    err[0] = '\0';
    assert_int_equal(eng_score_frechet(x, 4, x, 4, 0, &fd, err, sizeof err), PST_EARG);
    printf("dim = 0: %s\n", err);
    assert_non_null(strstr(err, "at least 1 feature"));
    x[5] = NAN;
    err[0] = '\0';
    assert_int_equal(eng_score_frechet(x, 4, x, 4, 2, &fd, err, sizeof err), PST_EARG);
    printf("NaN: %s\n", err);
    assert_non_null(strstr(err, "row 2, feature 1"));
    assert_true(fd == 42.0); /* left alone */
    /* No error buffer: still refused. */
    assert_int_equal(eng_score_frechet(x, 1, x, 4, 2, &fd, NULL, 0), PST_EARG);
}

/* The size a GAN's evaluation uses: 10,000 samples of 128 features a side. Two samples of
 * the same distribution: FD is only the sampling noise, small against tr(C) = 128 / 3. */
static void frechet_timing(void **state) {
    (void)state;
    enum { N = 10000, D = 128 };
    float *a = tu_random_floats((size_t)N * D, -1.0f, 1.0f, 31);
    float *b = tu_random_floats((size_t)N * D, -1.0f, 1.0f, 32);
    assert_true(a && b);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const double fd = frechet(a, N, b, N, D);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
    printf("FD of 10000 x 128 against 10000 x 128: %.6g in %.1f ms\n", fd, ms);
    assert_true(fd >= 0.0 && fd < 0.01 * D / 3.0);
    free(a);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inception_one_hot_even),
        cmocka_unit_test(inception_identical_rows),
        cmocka_unit_test(inception_two_classes_by_hand),
        cmocka_unit_test(frechet_of_itself_is_zero),
        cmocka_unit_test(frechet_of_a_shift),
        cmocka_unit_test(frechet_one_dimension),
        cmocka_unit_test(frechet_two_dimensions),
        cmocka_unit_test(frechet_is_symmetric),
        cmocka_unit_test(frechet_refusals),
        cmocka_unit_test(frechet_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
