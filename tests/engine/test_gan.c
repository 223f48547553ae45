/* test_gan.c: the GAN step (engine/gan.h): each network's gradient against finite
 * differences of its own loss, through the other network; the noise; generation. */
#include "engine/base/base.h"
#include "engine/gan.h"
#include "engine/model.h"
#include "engine/net.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A DCGAN in miniature: every layer kind of mnist_gan, 8x8 images. */
static const eng_layer_spec tiny_gen[] = {
    {.kind = ENG_DENSE, .units = 32, .no_bias = 1, .input = {1, 1, ENG_GAN_NOISE}},
    {.kind = ENG_BATCHNORM},
    {.kind = ENG_LEAKY_RELU},
    {.kind = ENG_RESHAPE, .target = {4, 4, 2}},
    {.kind = ENG_CONV2D_TRANSPOSE,
     .units = 1,
     .kh = 3,
     .kw = 3,
     .stride = 2,
     .padding = ENG_PAD_SAME,
     .no_bias = 1,
     .act = ENG_ACT_TANH},
};
static const eng_layer_spec tiny_disc[] = {
    {.kind = ENG_CONV2D,
     .units = 4,
     .kh = 3,
     .kw = 3,
     .stride = 2,
     .padding = ENG_PAD_SAME,
     .input = {8, 8, 1}},
    {.kind = ENG_LEAKY_RELU},
    {.kind = ENG_DROPOUT, .rate = 0.3f},
    {.kind = ENG_FLATTEN},
    {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
};
static const eng_model_def gen_def = {"tiny_gen", "none", "", 64, 5, tiny_gen, 0, NULL, 0, 0};
static const eng_model_def disc_def = {"tiny_disc", "none", "", 2, 5, tiny_disc, 0, NULL, 0, 0};

typedef struct gan_ctx {
    eng_gan *gan;
    const float *real;
    int B;
    int part; /* 0: g_loss, 1: d_loss */
} gan_ctx;

/* The step's loss for one network, on the step's fixed noise and dropout masks (key 5). */
static double step_loss(void *arg) {
    gan_ctx *c = arg;
    eng_gan_stats st = {0};
    eng_gan_step(c->gan, c->real, c->B, 5, &st);
    return (c->part ? st.d_loss_sum : st.g_loss_sum) / (double)st.count;
}

static void check_gradients(int threads) {
    eng_model gm, dm;
    char err[256] = "";
    assert_int_equal(eng_model_build(&gm, &gen_def, err, sizeof err), PST_OK);
    assert_int_equal(eng_model_build(&dm, &disc_def, err, sizeof err), PST_OK);
    const int B = 6;
    eng_gan *gan = eng_gan_new(&gm, &dm, B, threads, err, sizeof err);
    assert_non_null(gan);
    eng_net *net[2] = {eng_gan_generator(gan), eng_gan_discriminator(gan)};
    const eng_model *m[2] = {&gm, &dm};
    eng_model_init_params(&gm, eng_net_params(net[0]), 3);
    eng_model_init_params(&dm, eng_net_params(net[1]), 4);
    eng_rng r;
    eng_rng_seed(&r, 9);
    float real[6 * 64];
    tu_fill_uniform(real, sizeof real / sizeof real[0], -1.0f, 1.0f, &r);
    /* biases and BatchNorm's beta off zero, so that their gradients are not special */
    for (int p = 0; p < 2; p++)
        for (int t = 0; t < m[p]->layout.n; t++) {
            const eng_tensor_info *ti = &m[p]->layout.tensors[t];
            if (ti->ndim == 1 && !ti->state && strstr(ti->name, "gamma") == NULL)
                tu_fill_uniform(eng_net_params(net[p]) + ti->offset, ti->count, -0.2f, 0.2f, &r);
        }

    gan_ctx ctx = {gan, real, B, 0};
    eng_gan_stats st = {0};
    eng_gan_step(gan, real, B, 5, &st);
    assert_true(st.count == B && st.d_loss_sum > 0 && st.g_loss_sum > 0);
    float *grads[2];
    for (int p = 0; p < 2; p++) {
        grads[p] = malloc(sizeof(float) * m[p]->layout.total);
        assert_non_null(grads[p]);
        memcpy(grads[p], eng_net_grads(net[p]), sizeof(float) * m[p]->layout.total);
    }
    for (int p = 0; p < 2; p++) {
        ctx.part = p;
        for (int t = 0; t < m[p]->layout.n; t++) {
            const eng_tensor_info *ti = &m[p]->layout.tensors[t];
            if (ti->state) { /* moving statistics: no gradient, and the loss ignores them */
                for (size_t i = 0; i < ti->count; i++)
                    assert_true(grads[p][ti->offset + i] == 0.0f);
                continue;
            }
            float *w = eng_net_params(net[p]) + ti->offset, *g = grads[p] + ti->offset;
            tu_gradcheck gc = {.what = ti->name,
                               .eps = 5e-4,
                               .rtol = 1e-2,
                               .atol = 5e-5,
                               .kink_tol = 3e-4,
                               .max_checks = 40};
            tu_gradcheck_result res;
            tu_gradcheck_run(&gc, w, ti->count, g, step_loss, &ctx, &res);
            if (res.failed)
                fail_msg("%s %s: %zu of %zu elements disagree with differences of %s",
                         p ? "discriminator" : "generator", ti->name, res.failed, res.checked,
                         p ? "d_loss" : "g_loss");
            if (res.checked < (ti->count < 40 ? ti->count : 40) * 2 / 3)
                fail_msg("%s: only %zu elements checked (%zu at kinks)", ti->name, res.checked,
                         res.skipped);
            /* negative control: the other network's loss, or a scaled gradient, must fail */
            float *wrong = malloc(sizeof(float) * ti->count);
            assert_non_null(wrong);
            for (size_t i = 0; i < ti->count; i++)
                wrong[i] = g[i] * 1.1f;
            gc.what = "  the same scaled by 1.1 (must fail)";
            tu_gradcheck_run(&gc, w, ti->count, wrong, step_loss, &ctx, &res);
            if (res.failed < res.checked / 2)
                fail_msg("%s: a gradient scaled by 1.1 passed for %zu of %zu elements", ti->name,
                         res.checked - res.failed, res.checked);
            free(wrong);
        }
    }
    free(grads[0]);
    free(grads[1]);
    eng_gan_free(&gan);
    assert_null(gan);
}

static void gradients_one_thread(void **state) {
    (void)state;
    check_gradients(1);
}

static void gradients_two_threads(void **state) {
    (void)state;
    check_gradients(2);
}

/* Sample i's noise depends on (key, i) only: a worker's slice of a combined batch draws
 * what one process drawing the whole batch would. */
static void noise_is_per_sample(void **state) {
    (void)state;
    enum { N = 400 };
    static float all[N * ENG_GAN_NOISE], part[7 * ENG_GAN_NOISE];
    eng_gan_noise(all, N, 0, 77);
    eng_gan_noise(part, 7, 100, 77);
    assert_memory_equal(part, all + 100 * ENG_GAN_NOISE, sizeof part);
    eng_gan_noise(part, 7, 100, 78);
    assert_true(memcmp(part, all + 100 * ENG_GAN_NOISE, sizeof part) != 0);
    double sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < (size_t)N * ENG_GAN_NOISE; i++) {
        sum += all[i];
        sq += (double)all[i] * all[i];
    }
    const double mean = sum / (N * ENG_GAN_NOISE), var = sq / (N * ENG_GAN_NOISE) - mean * mean;
    printf("noise: mean %.4f, variance %.4f over %d values\n", mean, var, N * ENG_GAN_NOISE);
    assert_true(fabs(mean) < 0.02 && fabs(var - 1.0) < 0.03);
}

/* Inference runs on the moving statistics, sample by sample: any batching gives the same
 * images, and a training step moves those statistics. */
static void generate_is_per_sample(void **state) {
    (void)state;
    eng_model gm, dm;
    char err[256] = "";
    assert_int_equal(eng_model_build(&gm, &gen_def, err, sizeof err), PST_OK);
    assert_int_equal(eng_model_build(&dm, &disc_def, err, sizeof err), PST_OK);
    eng_gan *gan = eng_gan_new(&gm, &dm, 3, 1, err, sizeof err);
    assert_non_null(gan);
    eng_model_init_params(&gm, eng_net_params(eng_gan_generator(gan)), 3);
    eng_model_init_params(&dm, eng_net_params(eng_gan_discriminator(gan)), 4);
    float z[5 * ENG_GAN_NOISE], a[5 * 64], b[64], real[3 * 64];
    eng_gan_noise(z, 5, 0, 1);
    eng_gan_generate(gan, z, 5, a);
    for (int i = 0; i < 5; i++) {
        eng_gan_generate(gan, z + i * ENG_GAN_NOISE, 1, b);
        assert_memory_equal(b, a + i * 64, sizeof b);
    }
    for (int i = 0; i < 5 * 64; i++)
        assert_true(a[i] > -1.0f && a[i] < 1.0f); /* tanh */
    const int mm = eng_layout_find(&gm.layout, "batch_normalization/moving_mean");
    assert_true(mm >= 0 && gm.layout.tensors[mm].state);
    const float *moving = eng_net_params(eng_gan_generator(gan)) + gm.layout.tensors[mm].offset;
    assert_true(moving[0] == 0.0f);
    eng_rng r;
    eng_rng_seed(&r, 2);
    tu_fill_uniform(real, 3 * 64, -1.0f, 1.0f, &r);
    eng_gan_stats st = {0};
    eng_gan_step(gan, real, 3, 1, &st);
    assert_true(moving[0] != 0.0f);
    eng_gan_generate(gan, z, 1, b);
    assert_true(memcmp(b, a, sizeof b) != 0);
    eng_gan_free(&gan);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradients_one_thread),
        cmocka_unit_test(gradients_two_threads),
        cmocka_unit_test(noise_is_per_sample),
        cmocka_unit_test(generate_is_per_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
