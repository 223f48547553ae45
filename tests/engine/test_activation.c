/* test_activation.c: the fused activations LEAKY_RELU (Keras's alpha 0.3) and TANH in
 * eng_bias_act_forward / eng_act_backward (with and without a bias), the standalone
 * LeakyReLU layer (values, spec alpha, gradients by differences away from the kink), the
 * Reshape view (shapes, no tensors, a wrong size refused), and a whole net through every new
 * layer kind (Conv2D stride 2 'same', BatchNormalization, LeakyReLU, Reshape,
 * Conv2DTranspose without bias, tanh) whose parameter gradients are checked by differences
 * of the step's loss: the layers agree with each other and with net.c's views and chunks
 * (one thread, chunk = batch, as BatchNormalization requires). */
#include "engine/activation.h"

#include "engine/base/base.h"
#include "engine/layer.h"
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

static void fused_forward_backward(void **state) {
    (void)state;
    const float z[6] = {-2.0f, -0.5f, 0.0f, 0.25f, 1.0f, 3.0f};
    const float bias[3] = {0.5f, -0.25f, 0.0f};
    float y[6], dy[6];
    /* LeakyReLU, no bias */
    memcpy(y, z, sizeof y);
    eng_bias_act_forward(y, NULL, 2, 3, ENG_ACT_LEAKY_RELU);
    for (int i = 0; i < 6; i++) {
        const float want = z[i] > 0.0f ? z[i] : 0.3f * z[i];
        if (fabsf(y[i] - want) > 1e-7f)
            fail_msg("leaky y[%d] = %g, expected %g", i, y[i], want);
    }
    for (int i = 0; i < 6; i++)
        dy[i] = 2.0f;
    eng_act_backward(dy, y, 6, ENG_ACT_LEAKY_RELU);
    for (int i = 0; i < 6; i++)
        if (fabsf(dy[i] - (z[i] > 0.0f ? 2.0f : 0.6f)) > 1e-7f)
            fail_msg("leaky dy[%d] = %g", i, dy[i]);
    /* tanh with a bias: y = tanh(z + b), dy = 1 - y^2 */
    memcpy(y, z, sizeof y);
    eng_bias_act_forward(y, bias, 2, 3, ENG_ACT_TANH);
    for (int i = 0; i < 6; i++) {
        const double want = tanh((double)z[i] + bias[i % 3]);
        if (fabs(y[i] - want) > 1e-6)
            fail_msg("tanh y[%d] = %g, expected %g", i, y[i], want);
        const double h = 1e-3, zb = (double)z[i] + bias[i % 3];
        const double num = (tanh(zb + h) - tanh(zb - h)) / (2 * h);
        dy[i] = 1.0f;
        eng_act_backward(&dy[i], &y[i], 1, ENG_ACT_TANH);
        if (fabs(dy[i] - num) > 1e-5)
            fail_msg("tanh dy[%d] = %g, differences %g", i, dy[i], num);
    }
    /* no bias: nothing to reduce, nothing written */
    eng_bias_backward(NULL, dy, 2, 3, 0);
}

typedef struct leaky_ctx {
    const float *x;
    float *xp, *y, *r;
    size_t n;
    float alpha;
} leaky_ctx;

static double leaky_loss(void *arg) {
    leaky_ctx *k = arg;
    eng_leaky_relu_forward(k->y, k->xp, k->n, k->alpha);
    return tu_dot(k->y, k->r, k->n);
}

static void leaky_layer(void **state) {
    (void)state;
    enum { N = 64 };
    float x[N], y[N], r[N], dx[N];
    eng_rng rng;
    eng_rng_seed(&rng, 3);
    tu_fill_uniform(x, N, -1.0f, 1.0f, &rng);
    for (int i = 0; i < N; i++) /* away from the kink: probes of 1e-2 never cross it */
        x[i] += x[i] > 0.0f ? 0.05f : -0.05f;
    tu_fill_uniform(r, N, -1.0f, 1.0f, &rng);
    leaky_ctx k = {.xp = x, .y = y, .r = r, .n = N, .alpha = 0.2f};
    eng_leaky_relu_backward(dx, r, x, N, 0.2f);
    tu_gradcheck gc = {.what = "leaky_re_lu dx", .eps = 1e-2, .rtol = 1e-3, .atol = 1e-4};
    tu_gradcheck_result res;
    assert_int_equal(tu_gradcheck_run(&gc, x, N, dx, leaky_loss, &k, &res), 0);

    /* the layer entry: spec alpha, else Keras's 0.3; out = in; no tensors */
    static const eng_layer_spec s1[] = {{.kind = ENG_LEAKY_RELU, .input = {2, 2, 2}}};
    static const eng_layer_spec s2[] = {
        {.kind = ENG_LEAKY_RELU, .alpha = 0.1f, .input = {1, 1, 8}}};
    static const eng_layer_spec s3[] = {
        {.kind = ENG_LEAKY_RELU, .alpha = 1.5f, .input = {1, 1, 8}}};
    static const eng_model_def d1 = {"l1", "mnist", "t", 8, 1, s1, 0, NULL, 0, 0},
                               d2 = {"l2", "mnist", "t", 8, 1, s2, 0, NULL, 0, 0},
                               d3 = {"l3", "mnist", "t", 8, 1, s3, 0, NULL, 0, 0};
    static eng_model m;
    char err[256];
    const float in[8] = {-1, 2, -3, 4, -5, 6, -7, 8};
    float out[8];
    for (int v = 0; v < 2; v++) {
        assert_int_equal(eng_model_build(&m, v ? &d2 : &d1, err, sizeof err), PST_OK);
        const eng_layer *l = &m.layers[0];
        assert_string_equal(l->name, "leaky_re_lu");
        assert_string_equal(l->ops->keras_class, "LeakyReLU");
        assert_int_equal(m.layout.total, 0);
        eng_fwd_args a = {.y = out, .x = in, .batch = 1};
        l->ops->forward(l, &a);
        const float alpha = v ? 0.1f : 0.3f;
        for (int i = 0; i < 8; i++)
            if (out[i] != (in[i] > 0 ? in[i] : alpha * in[i]))
                fail_msg("alpha %g: y[%d] = %g", alpha, i, out[i]);
    }
    assert_int_equal(eng_model_build(&m, &d3, err, sizeof err), PST_EARG);
    printf("expected error: %s\n", err);
}

static void reshape_view(void **state) {
    (void)state;
    static const eng_layer_spec ok[] = {
        {.kind = ENG_DENSE, .units = 12, .input = {1, 1, 5}},
        {.kind = ENG_RESHAPE, .target = {2, 3, 2}},
        {.kind = ENG_FLATTEN},
    };
    static const eng_layer_spec bad[] = {
        {.kind = ENG_RESHAPE, .target = {2, 3, 3}, .input = {1, 1, 12}}};
    static const eng_model_def dok = {"r", "mnist", "t", 12, 3, ok, 0, NULL, 0, 0},
                               dbad = {"rb", "mnist", "t", 18, 1, bad, 0, NULL, 0, 0};
    static eng_model m;
    char err[256];
    assert_int_equal(eng_model_build(&m, &dok, err, sizeof err), PST_OK);
    const eng_layer *l = &m.layers[1];
    assert_true(l->ops->is_view);
    assert_string_equal(l->name, "reshape");
    assert_int_equal(l->out.h, 2);
    assert_int_equal(l->out.w, 3);
    assert_int_equal(l->out.c, 2);
    assert_int_equal(l->nparams, 0);
    assert_int_equal(m.layers[2].out.c, 12);
    assert_int_equal(eng_model_build(&m, &dbad, err, sizeof err), PST_EARG);
    printf("expected error: %s\n", err);
}

/* --- a whole net through the new layers --- */

enum { NB = 6, NCLS = 4 };

typedef struct net_ctx {
    eng_net *net;
    const float *x;
    const uint8_t *labels;
} net_ctx;

static double net_loss(void *arg) {
    net_ctx *k = arg;
    eng_batch_stats st = {0};
    eng_net_train_step(k->net, k->x, k->labels, NB, 1, &st);
    return st.loss_sum / (double)st.count;
}

static void net_through_new_layers(void **state) {
    (void)state;
    static const eng_layer_spec specs[] = {
        {.kind = ENG_CONV2D,
         .units = 3,
         .kh = 3,
         .kw = 3,
         .stride = 2,
         .padding = ENG_PAD_SAME,
         .no_bias = 1,
         .input = {5, 6, 2}},                                 /* (3, 3, 3) */
        {.kind = ENG_BATCHNORM},                              /* per channel */
        {.kind = ENG_LEAKY_RELU},                             /* kinks: see kink_tol */
        {.kind = ENG_FLATTEN},                                /* (1, 1, 27) */
        {.kind = ENG_DENSE, .units = 8, .act = ENG_ACT_TANH}, /* (1, 1, 8) */
        {.kind = ENG_BATCHNORM},                              /* per feature */
        {.kind = ENG_RESHAPE, .target = {2, 2, 2}},           /* (2, 2, 2) */
        {.kind = ENG_CONV2D_TRANSPOSE,
         .units = 2,
         .kh = 3,
         .kw = 3,
         .stride = 2,
         .padding = ENG_PAD_SAME,
         .act = ENG_ACT_TANH}, /* (4, 4, 2) */
        {.kind = ENG_FLATTEN},
        {.kind = ENG_DENSE, .units = NCLS, .act = ENG_ACT_SOFTMAX},
    };
    /* chunk = batch on one thread: BatchNormalization sees the whole batch */
    static const eng_model_def def = {"new_layers", "mnist", "t", NCLS, 10, specs, NB, NULL, 0, 0};
    static eng_model m;
    char err[256] = "";
    assert_int_equal(eng_model_build(&m, &def, err, sizeof err), PST_OK);
    eng_net *net = eng_net_new(&m, NB, 1, err, sizeof err);
    assert_non_null(net);
    float *p = eng_net_params(net);
    eng_model_init_params(&m, p, 11);
    /* gamma and beta away from 1 and 0, so their gradients mean something */
    for (int i = 0; i < m.layout.n; i++) {
        const eng_tensor_info *t = &m.layout.tensors[i];
        const int gamma = strstr(t->name, "/gamma") != NULL,
                  beta = strstr(t->name, "/beta") != NULL;
        for (size_t j = 0; j < t->count && (gamma || beta); j++)
            p[t->offset + j] = (gamma ? 1.0f : 0.0f) + 0.1f * (float)((j * 5) % 7) - 0.3f;
    }
    enum { NX = NB * 5 * 6 * 2 };
    float x[NX];
    eng_rng rng;
    eng_rng_seed(&rng, 21);
    tu_fill_uniform(x, NX, -1.0f, 1.0f, &rng);
    const uint8_t labels[NB] = {0, 1, 2, 3, 1, 2};
    net_ctx k = {net, x, labels};
    net_loss(&k);
    const size_t total = m.layout.total;
    float *g = malloc(sizeof(float) * total);
    assert_non_null(g);
    memcpy(g, eng_net_grads(net), sizeof(float) * total);
    size_t failed = 0;
    for (int i = 0; i < m.layout.n; i++) {
        const eng_tensor_info *t = &m.layout.tensors[i];
        const int is_state = strstr(t->name, "moving_") != NULL;
        if (is_state) { /* state: zero gradient */
            for (size_t j = 0; j < t->count; j++)
                if (g[t->offset + j] != 0.0f)
                    fail_msg("%s[%zu]: gradient %g, expected 0", t->name, j, g[t->offset + j]);
            continue;
        }
        tu_gradcheck gc = {
            .what = t->name, .eps = 1e-2, .rtol = 2e-2, .atol = 2e-4, .kink_tol = 1e-2};
        tu_gradcheck_result res;
        failed += tu_gradcheck_run(&gc, p + t->offset, t->count, g + t->offset, net_loss, &k, &res);
    }
    if (failed)
        fail_msg("%zu gradient elements differ from the differences of the loss", failed);
    free(g);
    eng_net_free(&net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fused_forward_backward),
        cmocka_unit_test(leaky_layer),
        cmocka_unit_test(reshape_view),
        cmocka_unit_test(net_through_new_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
