/* test_net.c: a whole model through eng_net. The training step's gradient against central
 * differences of eng_net_eval's mean loss, on small models without dropout (dropout makes
 * training differ from evaluation), also where a floor pool makes the model skip conv
 * outputs, and for Embedding + LSTM + Dense(sigmoid) with binary cross-entropy on token
 * sequences that start with padding; a step's gradient is its batch's mean however it is
 * cut into chunks and threads, and whatever chunk size the model asks for; thread counts:
 * 1, 2 and 3 threads agree to float rounding, the same count twice agrees bit for bit
 * (mnist_cnn and imdb_lstm, dropout included); the early gradient calls (both models);
 * eng_net_apply against eng_optim_step; the statistics (softmax and sigmoid outputs);
 * Dropout(0) behaving as no layer at all; and an LSTM model learning a task that needs
 * memory of earlier steps. */
#include "engine/loss.h"
#include "engine/net.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Conv2D(4, 3x3, relu) -> MaxPooling2D(2) -> Flatten -> Dense(10, softmax) on 8x8x1:
 * 40 + 370 = 410 parameters, every one checked. */
static const eng_layer_spec tiny_layers[] = {
    {.kind = ENG_CONV2D, .units = 4, .kh = 3, .kw = 3, .act = ENG_ACT_RELU, .input = {8, 8, 1}},
    {.kind = ENG_MAXPOOL2D, .kh = 2, .kw = 2},
    {.kind = ENG_FLATTEN},
    {.kind = ENG_DENSE, .units = 10, .act = ENG_ACT_SOFTMAX},
};
static const eng_model_def tiny_def = {
    "tiny", "none", "gradient check model", 10, 4, tiny_layers, 0, NULL, 0, 0};

/* Conv2D(3, 3x2) on 9x8x2 gives 7x7, which MaxPooling2D(2) floors to 3x3: the model
 * skips the conv outputs the pool never reads. */
static const eng_layer_spec odd_layers[] = {
    {.kind = ENG_CONV2D, .units = 3, .kh = 3, .kw = 2, .act = ENG_ACT_RELU, .input = {9, 8, 2}},
    {.kind = ENG_MAXPOOL2D, .kh = 2, .kw = 2},
    {.kind = ENG_FLATTEN},
    {.kind = ENG_DENSE, .units = 10, .act = ENG_ACT_SOFTMAX},
};
static const eng_model_def odd_def = {
    "odd", "none", "floor pooling model", 10, 4, odd_layers, 0, NULL, 0, 0};

/* Flatten first (a view at index 0), then two Dense layers. */
static const eng_layer_spec dense_layers[] = {
    {.kind = ENG_FLATTEN, .input = {5, 5, 1}},
    {.kind = ENG_DENSE, .units = 8, .act = ENG_ACT_RELU},
    {.kind = ENG_DENSE, .units = 10, .act = ENG_ACT_SOFTMAX},
};
static const eng_model_def dense_def = {"dense_only", "none", "",   10, 3,
                                        dense_layers, 0,      NULL, 0,  0};

/* The same with Dropout(0) before the output layer: Keras's identity. */
static const eng_layer_spec tiny_dropout0_layers[] = {
    {.kind = ENG_CONV2D, .units = 4, .kh = 3, .kw = 3, .act = ENG_ACT_RELU, .input = {8, 8, 1}},
    {.kind = ENG_MAXPOOL2D, .kh = 2, .kw = 2},
    {.kind = ENG_FLATTEN},
    {.kind = ENG_DROPOUT, .rate = 0.0f},
    {.kind = ENG_DENSE, .units = 10, .act = ENG_ACT_SOFTMAX},
};
static const eng_model_def tiny_dropout0_def = {"tiny_dropout0",      "none", "",   10, 5,
                                                tiny_dropout0_layers, 0,      NULL, 0,  0};

/* Embedding(12, 3) -> LSTM(4) -> Dense(1, sigmoid) over 6 tokens, binary cross-entropy:
 * 36 + 4 * 4 * (3 + 4 + 1) + 5 = 169 parameters, every one checked. */
static const eng_layer_spec seq_layers[] = {
    {.kind = ENG_EMBEDDING, .input_dim = 12, .units = 3, .input = {1, 6, 1}},
    {.kind = ENG_LSTM, .units = 4},
    {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
};
static const eng_model_def seq_def = {
    "seq", "none", "LSTM gradient check model", 2, 3, seq_layers, 0, NULL, 0, 0};

typedef struct batch {
    int B;
    float *x;
    uint8_t *labels;
} batch;

/* Pixels in [0, 1), or for a model that starts with an Embedding token ids, sample i
 * starting with i % T padding tokens (0) as Keras's pad_sequences leaves short reviews. */
static batch batch_new(const eng_model *m, int B, uint64_t seed) {
    const size_t in = eng_shape_size(m->input);
    batch b = {B, pst_alloc(sizeof(float) * (size_t)B * in), pst_alloc((size_t)B)};
    assert_true(b.x && b.labels);
    eng_rng r;
    eng_rng_seed(&r, seed);
    if (m->layers[0].spec.kind == ENG_EMBEDDING) {
        for (size_t i = 0; i < (size_t)B * in; i++)
            b.x[i] = i % in < (i / in) % in
                         ? 0.0f
                         : (float)eng_rng_below(&r, (uint64_t)m->layers[0].spec.input_dim);
    } else {
        tu_fill_uniform(b.x, (size_t)B * in, 0.0f, 1.0f, &r);
    }
    for (int i = 0; i < B; i++)
        b.labels[i] = (uint8_t)eng_rng_below(&r, (uint64_t)m->def->nclasses);
    return b;
}

static void batch_free(batch *b) {
    pst_free(b->x);
    pst_free(b->labels);
}

static eng_net *net_new(const eng_model *m, int max_batch, int threads, uint64_t seed) {
    char err[256] = "";
    eng_net *net = eng_net_new(m, max_batch, threads, err, sizeof err);
    if (!net)
        fail_msg("eng_net_new: %s", err);
    eng_model_init_params(m, eng_net_params(net), seed);
    return net;
}

static void build(eng_model *m, const eng_model_def *def) {
    char err[256] = "";
    if (eng_model_build(m, def, err, sizeof err) != PST_OK)
        fail_msg("eng_model_build(%s): %s", def->name, err);
}

typedef struct eval_ctx {
    eng_net *net;
    const batch *b;
} eval_ctx;

static double mean_eval_loss(void *arg) {
    eval_ctx *e = arg;
    eng_batch_stats st = {0};
    eng_net_eval(e->net, e->b->x, e->b->labels, e->b->B, &st);
    return st.loss_sum / (double)st.count;
}

/* Biases start at zero, which puts every ReLU and the softmax at a special point; random
 * biases make the check general. */
static void randomize_biases(const eng_model *m, float *params, uint64_t seed) {
    eng_rng r;
    eng_rng_seed(&r, seed);
    for (int i = 0; i < m->layout.n; i++) {
        const eng_tensor_info *t = &m->layout.tensors[i];
        if (t->ndim == 1)
            tu_fill_uniform(params + t->offset, t->count, -0.2f, 0.2f, &r);
    }
}

/* Thread counts change only the order of the sums: per tensor, the largest difference
 * must be within 1e-5 of the largest gradient. (Element by element, small gradients that
 * are differences of large terms legitimately move by more than 1e-5 of themselves.) */
static void compare_close(const eng_model *m, const float *g1, const float *g2, const char *what) {
    double worst = 0.0;
    for (int t = 0; t < m->layout.n; t++) {
        const eng_tensor_info *ti = &m->layout.tensors[t];
        double gmax = 0.0, dmax = 0.0;
        size_t at = 0;
        for (size_t i = 0; i < ti->count; i++) {
            const double a = g1[ti->offset + i], b = g2[ti->offset + i];
            gmax = fmax(gmax, fabs(a));
            if (fabs(a - b) > dmax) {
                dmax = fabs(a - b);
                at = i;
            }
        }
        assert_true(gmax > 0.0);
        worst = fmax(worst, dmax / gmax);
        if (dmax > 1e-5 * gmax)
            fail_msg("%s: %s[%zu] is %.9g vs %.9g, more than 1e-5 of the tensor's largest "
                     "gradient %.9g",
                     what, ti->name, at, g1[ti->offset + at], g2[ti->offset + at], gmax);
    }
    printf("  %s: worst |difference| %.3g of a tensor's largest gradient\n", what, worst);
}

/* Embeddings start within +-0.05, where the gradients behind them are too small for the
 * check to tell a wrong one from rounding: give them the spread of trained ones. */
static void widen_embeddings(const eng_model *m, float *params, uint64_t seed) {
    if (m->layers[0].spec.kind != ENG_EMBEDDING)
        return;
    eng_rng r;
    eng_rng_seed(&r, seed);
    const eng_tensor_info *t = &m->layout.tensors[m->layers[0].tensor0];
    tu_fill_uniform(params + t->offset, t->count, -1.0f, 1.0f, &r);
}

/* The check with tolerances rtol and atol (see below). */
static void check_model_gradient_tol(const eng_model_def *def, int threads, int B, double rtol,
                                     double atol) {
    printf("%s model: %d threads, batch %d\n", def->name, threads, B);
    eng_model m;
    build(&m, def);
    eng_net *net = net_new(&m, B, threads, 11);
    randomize_biases(&m, eng_net_params(net), 12);
    widen_embeddings(&m, eng_net_params(net), 14);
    batch b = batch_new(&m, B, 13);
    eng_batch_stats st = {0};
    eng_net_train_step(net, b.x, b.labels, B, 0, &st);
    const size_t n = m.layout.total;
    float *grads = malloc(sizeof(float) * n);
    assert_non_null(grads);
    memcpy(grads, eng_net_grads(net), sizeof(float) * n);

    eval_ctx e = {net, &b};
    /* The loss is a float sum: ~1e-7 of ~2.3 per probe, ~1e-4 in a quotient over 2e-3, so
     * the tolerance is 1% + 1e-4 (a layer's own check is far tighter; this one is about the
     * wiring). A conv weight moves 4 x 36 pre-activations: larger probes cross ReLU and
     * pooling kinks too often, and the softmax's own curvature grows with the probe.
     * Tensor by tensor, so that each one is seen to be checked. */
    for (int t = 0; t < m.layout.n; t++) {
        const eng_tensor_info *ti = &m.layout.tensors[t];
        float *p = eng_net_params(net) + ti->offset, *g = grads + ti->offset;
        tu_gradcheck gc = {
            .what = ti->name, .eps = 1e-3, .rtol = rtol, .atol = atol, .kink_tol = 3e-4};
        tu_gradcheck_result res;
        tu_gradcheck_run(&gc, p, ti->count, g, mean_eval_loss, &e, &res);
        if (res.failed)
            fail_msg("%s: %zu of %zu elements disagree with differences of the loss", ti->name,
                     res.failed, res.checked);
        if (res.checked < ti->count * 2 / 3)
            fail_msg("%s: only %zu of %zu elements checked (%zu skipped at kinks)", ti->name,
                     res.checked, ti->count, res.skipped);

        /* Negative control: the same check rejects this tensor's gradient scaled by 1.05. */
        float *wrong = malloc(sizeof(float) * ti->count);
        assert_non_null(wrong);
        for (size_t i = 0; i < ti->count; i++)
            wrong[i] = g[i] * 1.05f;
        gc.what = "  the same scaled by 1.05 (must fail)";
        tu_gradcheck_run(&gc, p, ti->count, wrong, mean_eval_loss, &e, &res);
        if (res.failed < res.checked * 2 / 3)
            fail_msg("%s: the check accepted %zu of %zu elements of a gradient scaled by 1.05",
                     ti->name, res.checked - res.failed, res.checked);
        free(wrong);
    }
    free(grads);
    batch_free(&b);
    eng_net_free(&net);
    assert_null(net);
}

static void check_model_gradient(const eng_model_def *def, int threads, int B) {
    check_model_gradient_tol(def, threads, B, 1e-2, 1e-4);
}

static void model_gradient_one_thread(void **state) {
    (void)state;
    check_model_gradient(&tiny_def, 1, 4);
}

static void model_gradient_two_threads(void **state) {
    (void)state;
    check_model_gradient(&tiny_def, 2, 5);
}

static void model_gradient_floor_pooling(void **state) {
    (void)state;
    eng_model m;
    build(&m, &odd_def);
    assert_int_equal(m.layout.total, 3 * 2 * 2 * 3 + 3 + 27 * 10 + 10);
    check_model_gradient(&odd_def, 2, 3);
}

static void model_gradient_dense_only(void **state) {
    (void)state;
    check_model_gradient(&dense_def, 1, 6);
}

/* Embedding + LSTM + Dense(sigmoid): 7 samples run as chunks of 4 and 3 on one thread, and
 * shares of 2 and 3 on two. Without kinks the differences are good to ~3e-6 (the mean loss's
 * float rounding over 2 eps), and the gradients behind the LSTM are ~1e-3: a tenth of the
 * tolerance that suits the CNN, so that a gradient 5% off still fails. */
static void model_gradient_lstm_one_thread(void **state) {
    (void)state;
    eng_model m;
    build(&m, &seq_def);
    assert_int_equal(m.layout.total, 169);
    check_model_gradient_tol(&seq_def, 1, 7, 1e-3, 1e-5);
}

static void model_gradient_lstm_two_threads(void **state) {
    (void)state;
    check_model_gradient_tol(&seq_def, 2, 5, 1e-3, 1e-5);
}

/* Gradients of a step are of its mean loss, whatever the chunks and threads it runs in:
 * 30 samples at once equal the sample-weighted mean of 12 and 18 run apart. */
static void step_gradient_is_the_batch_mean(void **state) {
    (void)state;
    eng_model m;
    build(&m, &tiny_def);
    const size_t n = m.layout.total;
    batch b = batch_new(&m, 30, 60);
    float *whole[2], *part = malloc(sizeof(float) * n);
    assert_non_null(part);
    for (int threads = 1; threads <= 2; threads++) {
        eng_net *net = net_new(&m, 30, threads, 61);
        randomize_biases(&m, eng_net_params(net), 62);
        eng_batch_stats st = {0};
        eng_net_train_step(net, b.x, b.labels, 30, 0, &st);
        whole[threads - 1] = malloc(sizeof(float) * n);
        assert_non_null(whole[threads - 1]);
        memcpy(whole[threads - 1], eng_net_grads(net), sizeof(float) * n);
        eng_batch_stats sa = {0}, sb = {0};
        eng_net_train_step(net, b.x, b.labels, 12, 0, &sa);
        memcpy(part, eng_net_grads(net), sizeof(float) * n);
        eng_net_train_step(net, b.x + 12 * eng_shape_size(m.input), b.labels + 12, 18, 0, &sb);
        for (size_t i = 0; i < n; i++)
            part[i] = (12.0f * part[i] + 18.0f * eng_net_grads(net)[i]) / 30.0f;
        assert_true(fabs(st.loss_sum - (sa.loss_sum + sb.loss_sum)) < 1e-5 * st.loss_sum);
        assert_int_equal(st.correct, sa.correct + sb.correct);
        char what[64];
        snprintf(what, sizeof what, "%d threads: batch 30 vs 12 + 18", threads);
        compare_close(&m, whole[threads - 1], part, what);
        eng_net_free(&net);
    }
    compare_close(&m, whole[0], whole[1], "batch 30: 1 vs 2 threads");
    free(whole[0]);
    free(whole[1]);
    free(part);
    batch_free(&b);
}

/* eng_net_apply splits the update across the net's threads: the same bits as one
 * eng_optim_step over the whole vector, and one iteration counted per call. */
static void apply_equals_optim_step(void **state) {
    (void)state;
    eng_model m;
    build(&m, eng_model_find("mnist_cnn"));
    const size_t n = m.layout.total;
    batch b = batch_new(&m, 8, 70);
    for (int threads = 1; threads <= 3; threads++) {
        for (int kind = ENG_OPT_ADAM; kind <= ENG_OPT_RMSPROP; kind++) {
            eng_optim_cfg cfg = eng_optim_defaults((eng_optim_kind)kind);
            if (kind == ENG_OPT_RMSPROP)
                cfg.clipvalue = 1.0f, cfg.decay = 1e-3f;
            eng_optim *o1 = eng_optim_new(&cfg, n), *o2 = eng_optim_new(&cfg, n);
            assert_true(o1 && o2);
            eng_net *net = net_new(&m, 8, threads, 71);
            float *w = malloc(sizeof(float) * n);
            assert_non_null(w);
            memcpy(w, eng_net_params(net), sizeof(float) * n);
            for (int step = 0; step < 3; step++) {
                eng_batch_stats st = {0};
                eng_net_train_step(net, b.x, b.labels, b.B, (uint64_t)step, &st);
                eng_optim_step(o2, w, eng_net_grads(net));
                eng_net_apply(net, o1);
                assert_int_equal(eng_optim_iterations(o1), step + 1);
                if (memcmp(w, eng_net_params(net), sizeof(float) * n) != 0)
                    fail_msg("%s, %d threads, step %d: eng_net_apply differs from "
                             "eng_optim_step",
                             eng_optim_kind_name((eng_optim_kind)kind), threads, step + 1);
            }
            free(w);
            eng_net_free(&net);
            eng_optim_free(&o1);
            eng_optim_free(&o2);
        }
    }
    batch_free(&b);
}

/* With no dropout, a training step's statistics are evaluation's, and both add to *st. */
static void train_step_statistics_match_eval(void **state) {
    (void)state;
    eng_model m;
    build(&m, &tiny_def);
    eng_net *net = net_new(&m, 16, 2, 21);
    batch b = batch_new(&m, 16, 22);
    eng_batch_stats tr = {0}, ev = {0};
    eng_net_train_step(net, b.x, b.labels, 16, 5, &tr);
    eng_net_eval(net, b.x, b.labels, 16, &ev);
    assert_int_equal(tr.count, 16);
    assert_int_equal(ev.count, 16);
    assert_int_equal(tr.correct, ev.correct);
    assert_true(fabs(tr.loss_sum - ev.loss_sum) <= 1e-6 * fabs(ev.loss_sum));
    /* Near ln 10 per sample for a fresh model. */
    assert_true(ev.loss_sum / 16 > 1.0 && ev.loss_sum / 16 < 4.0);
    eng_net_eval(net, b.x, b.labels, 7, &ev);
    assert_int_equal(ev.count, 23);
    batch_free(&b);
    eng_net_free(&net);
}

/* Gradients of model m (dropout included) on `threads` threads. */
static float *model_grads(const eng_model *m, const batch *b, int threads, uint64_t key) {
    eng_net *net = net_new(m, b->B > 32 ? b->B : 32, threads, 7);
    eng_batch_stats st = {0};
    eng_net_train_step(net, b->x, b->labels, b->B, key, &st);
    assert_int_equal(st.count, b->B);
    float *g = malloc(sizeof(float) * m->layout.total);
    assert_non_null(g);
    memcpy(g, eng_net_grads(net), sizeof(float) * m->layout.total);
    eng_net_free(&net);
    return g;
}

/* 1, 2 and 3 threads over batches of sizes[0..n). */
static void thread_counts_agree_on(const char *model, const int *sizes, int n) {
    eng_model m;
    build(&m, eng_model_find(model));
    for (int s = 0; s < n; s++) {
        batch b = batch_new(&m, sizes[s], 30 + (uint64_t)s);
        float *g1 = model_grads(&m, &b, 1, 99);
        float *g2 = model_grads(&m, &b, 2, 99);
        float *g3 = model_grads(&m, &b, 3, 99);
        char what[64];
        snprintf(what, sizeof what, "%s, batch %d, 1 vs 2 threads", model, sizes[s]);
        compare_close(&m, g1, g2, what);
        snprintf(what, sizeof what, "%s, batch %d, 1 vs 3 threads", model, sizes[s]);
        compare_close(&m, g1, g3, what);
        free(g1);
        free(g2);
        free(g3);
        batch_free(&b);
    }
}

static void thread_counts_agree(void **state) {
    (void)state;
    /* 30 runs in chunks on each thread; 1 leaves a thread without samples; 70 on one thread
     * is three windows of passes (32, 32, 6 samples), over which the dense layer's kernel
     * gradient is made at each window's end (eng_bwd_args). */
    const int sizes[] = {8, 7, 1, 30, 70};
    thread_counts_agree_on("mnist_cnn", sizes, 5);
}

/* The step's gradient is the same, to rounding, whichever algorithm the convolutions run
 * on: mnist_cnn's conv1 on im2col or the direct loops, conv2 on im2col, Winograd F(2x2),
 * F(4x4) and F(5x5). */
static void conv_algorithms_agree(void **state) {
    (void)state;
    eng_model m;
    build(&m, eng_model_find("mnist_cnn"));
    eng_model_set_conv(&m, ENG_CONV_IM2COL);
    batch b = batch_new(&m, 13, 77);
    float *want = model_grads(&m, &b, 2, 5);
    const eng_conv_algo algos[] = {ENG_CONV_AUTO, ENG_CONV_WINOGRAD2, ENG_CONV_WINOGRAD4,
                                   ENG_CONV_WINOGRAD5};
    const int tiles[] = {5, 2, 4, 5}; /* auto: F(5x5) for conv2's 10x10 */
    for (int i = 0; i < 4; i++) {
        eng_model_set_conv(&m, algos[i]);
        assert_int_equal(m.layers[2].wino, tiles[i]);
        assert_true(m.layers[0].direct && !m.layers[0].wino);
        float *g = model_grads(&m, &b, 2, 5);
        char what[64];
        snprintf(what, sizeof what, "mnist_cnn --conv %s vs im2col", eng_conv_algo_name(algos[i]));
        compare_close(&m, want, g, what);
        free(g);
    }
    free(want);
    batch_free(&b);
}

/* imdb_lstm: 32 is one chunk per thread on 2 threads and two on one. */
static void thread_counts_agree_lstm(void **state) {
    (void)state;
    const int sizes[] = {32, 5, 1};
    thread_counts_agree_on("imdb_lstm", sizes, 3);
}

/* However large the chunks the model asks for (1 sample to the whole share), a step's
 * gradient is the same to rounding: imdb_lstm at 1, 5 and 32 against its own chunk. */
static void chunk_size_keeps_gradients(void **state) {
    (void)state;
    const eng_model_def *def = eng_model_find("imdb_lstm");
    assert_true(def->chunk > 1);
    eng_model m;
    build(&m, def);
    batch b = batch_new(&m, 24, 80);
    float *want = model_grads(&m, &b, 2, 5);
    const int chunks[] = {1, 5, 32};
    for (int i = 0; i < 3; i++) {
        eng_model_def other = *def;
        other.chunk = chunks[i];
        eng_model mc;
        build(&mc, &other);
        assert_int_equal(eng_layout_checksum(&mc.layout), eng_layout_checksum(&m.layout));
        float *g = model_grads(&mc, &b, 2, 5);
        char what[64];
        snprintf(what, sizeof what, "imdb_lstm, chunks of %d vs %d", chunks[i], def->chunk);
        compare_close(&m, want, g, what);
        free(g);
    }
    free(want);
    batch_free(&b);
}

/* The same thread count gives the same bits: on one net twice, and on a new net. */
static void same_bits_on(const char *model) {
    printf("%s:\n", model);
    eng_model m;
    build(&m, eng_model_find(model));
    const size_t bytes = sizeof(float) * m.layout.total;
    batch b = batch_new(&m, 29, 40);
    for (int threads = 1; threads <= 2; threads++) {
        eng_net *net = net_new(&m, 32, threads, 7);
        eng_batch_stats st1 = {0}, st2 = {0};
        eng_net_train_step(net, b.x, b.labels, b.B, 1234, &st1);
        float *first = malloc(bytes);
        assert_non_null(first);
        memcpy(first, eng_net_grads(net), bytes);
        eng_net_train_step(net, b.x, b.labels, b.B, 1234, &st2);
        assert_memory_equal(first, eng_net_grads(net), bytes);
        assert_true(st1.loss_sum == st2.loss_sum && st1.correct == st2.correct);
        float *other = model_grads(&m, &b, threads, 1234);
        assert_memory_equal(first, other, bytes);
        /* A different key draws other dropout masks. */
        eng_net_train_step(net, b.x, b.labels, b.B, 1235, &st2);
        assert_memory_not_equal(first, eng_net_grads(net), bytes);
        free(other);
        free(first);
        eng_net_free(&net);
    }
    batch_free(&b);
}

static void same_threads_same_bits(void **state) {
    (void)state;
    same_bits_on("mnist_cnn");
}

static void same_threads_same_bits_lstm(void **state) {
    (void)state;
    same_bits_on("imdb_lstm");
}

/* What eng_net_on_grads_ready's calls saw: each call's suffix of the gradient then. */
typedef struct ready_log {
    const eng_net *net;
    size_t total;
    int calls;
    size_t lo[8];
    float *seen[8];
} ready_log;

static void log_ready(void *ctx, size_t lo) {
    ready_log *r = ctx;
    assert_true(r->calls < 8);
    r->lo[r->calls] = lo;
    r->seen[r->calls] = malloc(sizeof(float) * (r->total - lo));
    assert_non_null(r->seen[r->calls]);
    memcpy(r->seen[r->calls], eng_net_grads((eng_net *)r->net) + lo,
           sizeof(float) * (r->total - lo));
    r->calls++;
}

/* The calls come after each layer but the first, in backward order, and what a call sees
 * of its suffix is already the step's final gradient, on 1 and 2 threads. The gradient
 * matches a net without calls (its last pass differs in size, so to rounding) and is the
 * same bits in two runs. */
static void grads_ready_on(const char *model) {
    printf("%s:\n", model);
    eng_model m;
    build(&m, eng_model_find(model));
    const size_t total = m.layout.total, bytes = sizeof(float) * total;
    size_t cuts[ENG_MAX_LAYERS];
    const int ncuts = eng_model_cuts(&m, cuts);
    batch b = batch_new(&m, 45, 41);
    for (int threads = 1; threads <= 2; threads++) {
        eng_net *plain = net_new(&m, 64, threads, 8), *net = net_new(&m, 64, threads, 8);
        ready_log r = {.net = net, .total = total};
        eng_net_on_grads_ready(net, log_ready, &r);
        eng_batch_stats st = {0};
        eng_net_train_step(plain, b.x, b.labels, b.B, 99, &st);
        eng_net_train_step(net, b.x, b.labels, b.B, 99, &st);
        assert_int_equal(r.calls, ncuts - 1);
        for (int i = 0; i < r.calls; i++) {
            assert_int_equal(r.lo[i], cuts[ncuts - 1 - i]);
            assert_memory_equal(r.seen[i], eng_net_grads(net) + r.lo[i],
                                sizeof(float) * (total - r.lo[i]));
            free(r.seen[i]);
        }
        compare_close(&m, eng_net_grads(plain), eng_net_grads(net), "with early calls");
        float *first = malloc(bytes);
        assert_non_null(first);
        memcpy(first, eng_net_grads(net), bytes);
        r.calls = 0;
        eng_net_train_step(net, b.x, b.labels, b.B, 99, &st);
        assert_memory_equal(first, eng_net_grads(net), bytes);
        for (int i = 0; i < r.calls; i++)
            free(r.seen[i]);
        /* A batch smaller than the thread count makes no calls, and still a gradient. */
        r.calls = 0;
        eng_net_train_step(net, b.x, b.labels, 1, 99, &st);
        assert_int_equal(r.calls, threads > 1 ? 0 : ncuts - 1);
        for (int i = 0; i < r.calls; i++)
            free(r.seen[i]);
        free(first);
        eng_net_free(&plain);
        eng_net_free(&net);
    }
    batch_free(&b);
}

static void grads_ready_calls_see_final_gradients(void **state) {
    (void)state;
    grads_ready_on("mnist_cnn");
}

/* imdb_lstm: shares of 22 and 23 samples on 2 threads, in the model's larger chunks. */
static void grads_ready_calls_lstm(void **state) {
    (void)state;
    grads_ready_on("imdb_lstm");
}

/* With a sigmoid output the statistics are binary cross-entropy's: training's equal
 * evaluation's without dropout, a fresh model's loss is near ln 2 a sample, and the hits
 * are the samples whose logit's sign matches the label, against the loss's own count. */
static void sigmoid_output_statistics(void **state) {
    (void)state;
    eng_model m;
    build(&m, &seq_def);
    assert_true(m.output.c == 1);
    eng_net *net = net_new(&m, 20, 2, 23);
    batch b = batch_new(&m, 20, 24);
    eng_batch_stats tr = {0}, ev = {0};
    eng_net_train_step(net, b.x, b.labels, 20, 5, &tr);
    eng_net_eval(net, b.x, b.labels, 20, &ev);
    assert_int_equal(tr.count, 20);
    assert_int_equal(ev.count, 20);
    assert_int_equal(tr.correct, ev.correct);
    assert_true(fabs(tr.loss_sum - ev.loss_sum) <= 1e-6 * fabs(ev.loss_sum));
    printf("  mean loss %.4f (ln 2 = 0.6931), %lld of 20 right\n", ev.loss_sum / 20,
           (long long)ev.correct);
    assert_true(fabs(ev.loss_sum / 20 - log(2.0)) < 0.1);
    /* No logit is exactly 0 here: the labels flipped turn every hit into a miss. */
    for (int i = 0; i < 20; i++)
        b.labels[i] = (uint8_t)(1 - b.labels[i]);
    eng_batch_stats fl = {0};
    eng_net_eval(net, b.x, b.labels, 20, &fl);
    assert_int_equal(fl.correct, 20 - ev.correct);
    batch_free(&b);
    eng_net_free(&net);
}

/* Sequences of 20 tokens below 30, label 1 when token 3 is among the first 10: the answer
 * lies 10 or more steps before the LSTM's output. Token 3 stands in the first half of about
 * half the samples and elsewhere in others, so that its presence alone does not decide. */
static void toy_memory_batch(float *x, uint8_t *y, int B, eng_rng *r) {
    for (int n = 0; n < B; n++) {
        float *s = x + (size_t)n * 20;
        for (int t = 0; t < 20; t++) {
            const int v = 1 + (int)eng_rng_below(r, 29);
            s[t] = (float)(v == 3 ? 4 : v);
        }
        if (eng_rng_below(r, 2))
            s[eng_rng_below(r, 10)] = 3.0f;
        else if (eng_rng_below(r, 2))
            s[10 + eng_rng_below(r, 10)] = 3.0f;
        int has = 0;
        for (int t = 0; t < 10; t++)
            has |= s[t] == 3.0f;
        y[n] = (uint8_t)has;
    }
}

/* The whole stack learns: Embedding + LSTM + Dropout + Dense(sigmoid) with Adam on the task
 * above, from chance to nearly every held-out sample right (1.00 at 600 steps here). */
static void lstm_learns_a_memory_task(void **state) {
    (void)state;
    static const eng_layer_spec spec[] = {
        {.kind = ENG_EMBEDDING, .input_dim = 30, .units = 8, .input = {1, 20, 1}},
        {.kind = ENG_LSTM, .units = 16},
        {.kind = ENG_DROPOUT, .rate = 0.2f},
        {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
    };
    const eng_model_def def = {"toy_memory", "none", "", 2, 4, spec, 0, NULL, 0, 0};
    eng_model m;
    build(&m, &def);
    eng_net *net = net_new(&m, 32, 2, 1);
    eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    cfg.lr = 0.01f;
    eng_optim *opt = eng_optim_new(&cfg, m.layout.total);
    assert_non_null(opt);
    float x[32 * 20];
    uint8_t y[32];
    eng_rng r;
    eng_rng_seed(&r, 5);
    eng_batch_stats first = {0}, ev = {0};
    for (int s = 0; s < 600; s++) {
        eng_batch_stats st = {0};
        toy_memory_batch(x, y, 32, &r);
        eng_net_train_step(net, x, y, 32, (uint64_t)s, &st);
        eng_net_apply(net, opt);
        if (s == 0)
            first = st;
    }
    for (int k = 0; k < 20; k++) {
        toy_memory_batch(x, y, 32, &r);
        eng_net_eval(net, x, y, 32, &ev);
    }
    const double acc = (double)ev.correct / (double)ev.count;
    printf("  first step: loss %.3f; held out after 600 steps: loss %.3f, accuracy %.3f\n",
           first.loss_sum / first.count, ev.loss_sum / ev.count, acc);
    assert_true(fabs(first.loss_sum / first.count - log(2.0)) < 0.05);
    if (acc < 0.95)
        fail_msg("accuracy %.3f after 600 steps, expected >= 0.95", acc);
    eng_optim_free(&opt);
    eng_net_free(&net);
}

/* eng_net_train_step_dx's input gradient against central differences of the step's mean
 * loss (the tiny model: no dropout, so the train step's loss is a function of x alone),
 * on 1 and 2 threads; its parameter gradients are train_step's, bit for bit. */
static void input_gradient(void **state) {
    (void)state;
    eng_model m;
    build(&m, &tiny_def);
    const int B = 6;
    const size_t in = eng_shape_size(m.input), total = m.layout.total;
    batch b = batch_new(&m, B, 77);
    for (int threads = 1; threads <= 2; threads++) {
        eng_net *net = net_new(&m, B, threads, 5);
        float *dx = calloc((size_t)B * in, sizeof(float)), *g = malloc(sizeof(float) * total);
        assert_true(dx && g);
        eng_batch_stats st = {0};
        eng_net_train_step(net, b.x, b.labels, B, 9, &st);
        memcpy(g, eng_net_grads(net), sizeof(float) * total);
        eng_net_train_step_dx(net, b.x, b.labels, B, 9, &st, dx);
        assert_memory_equal(g, eng_net_grads(net), sizeof(float) * total);
        int bad = 0;
        for (size_t i = 0; i < (size_t)B * in; i += 7) {
            const float keep = b.x[i], h = 2e-3f;
            double l[2];
            for (int k = 0; k < 2; k++) {
                b.x[i] = keep + (k ? -h : h);
                eng_batch_stats s = {0};
                eng_net_train_step(net, b.x, b.labels, B, 9, &s);
                l[k] = s.loss_sum / B;
            }
            b.x[i] = keep;
            const double fd = (l[0] - l[1]) / (2.0 * h);
            if (fabs(fd - dx[i]) > 2e-3 + 2e-2 * fabs(fd)) {
                printf("  x[%zu]: dx %.6g, central difference %.6g\n", i, (double)dx[i], fd);
                bad++;
            }
        }
        assert_int_equal(bad, 0);
        free(dx);
        free(g);
        eng_net_free(&net);
    }
    batch_free(&b);
}

/* eng_net_forward + eng_net_backward with the loss's gradient computed outside give
 * train_step_dx's gradients and input gradient, bit for bit (1 thread, the batch in one
 * pass); and a batch too big for one pass is refused. */
static void forward_backward_by_hand(void **state) {
    (void)state;
    eng_model m;
    build(&m, &tiny_def);
    const int B = 4, C = 10;
    const size_t in = eng_shape_size(m.input), total = m.layout.total;
    batch b = batch_new(&m, B, 78);
    eng_net *net = net_new(&m, B, 1, 6);
    float *dx1 = malloc(sizeof(float) * (size_t)B * in),
          *dx2 = malloc(sizeof(float) * (size_t)B * in);
    float *g = malloc(sizeof(float) * total), y[4 * 10], dy[4 * 10];
    assert_true(dx1 && dx2 && g);
    eng_batch_stats st = {0};
    eng_net_train_step_dx(net, b.x, b.labels, B, 3, &st, dx1);
    memcpy(g, eng_net_grads(net), sizeof(float) * total);
    eng_net_forward(net, b.x, B, 1, 3, y);
    int hits;
    eng_softmax_xent_forward(dy, y, b.labels, B, C, &hits);
    eng_softmax_xent_backward(dy, dy, b.labels, B, C, (float)B);
    eng_net_backward(net, dy, dx2);
    assert_memory_equal(g, eng_net_grads(net), sizeof(float) * total);
    assert_memory_equal(dx1, dx2, sizeof(float) * (size_t)B * in);
    free(dx1);
    free(dx2);
    free(g);
    eng_net_free(&net);
    batch_free(&b);
}

/* Dropout(0) is the identity: a model with it has the same layout and, for the same
 * parameters and batch, the same gradients as the model without it. */
static void dropout_rate_zero_keeps_gradients(void **state) {
    (void)state;
    eng_model a, d;
    build(&a, &tiny_def);
    build(&d, &tiny_dropout0_def);
    assert_int_equal(eng_layout_checksum(&a.layout), eng_layout_checksum(&d.layout));
    eng_net *na = net_new(&a, 4, 1, 50), *nd = net_new(&d, 4, 1, 50);
    batch b = batch_new(&a, 4, 51);
    eng_batch_stats sa = {0}, sd = {0};
    eng_net_train_step(na, b.x, b.labels, 4, 77, &sa);
    eng_net_train_step(nd, b.x, b.labels, 4, 77, &sd);
    assert_true(sa.loss_sum == sd.loss_sum);
    const float *ga = eng_net_grads(na), *gd = eng_net_grads(nd);
    for (int t = 0; t < a.layout.n; t++) {
        const eng_tensor_info *ti = &a.layout.tensors[t];
        for (size_t i = 0; i < ti->count; i++)
            if (ga[ti->offset + i] != gd[ti->offset + i])
                fail_msg("with Dropout(0) before the output layer, %s[%zu] is %g; without it "
                         "%g: the gradient does not pass through Dropout(0)",
                         ti->name, i, gd[ti->offset + i], ga[ti->offset + i]);
    }
    batch_free(&b);
    eng_net_free(&na);
    eng_net_free(&nd);
}

static void bad_arguments(void **state) {
    (void)state;
    eng_model m;
    build(&m, &tiny_def);
    char err[256] = "";
    assert_null(eng_net_new(&m, 0, 1, err, sizeof err));
    assert_non_null(strstr(err, "batch"));
    err[0] = '\0';
    assert_null(eng_net_new(&m, 8, 0, err, sizeof err));
    assert_non_null(strstr(err, "threads"));
    eng_net_free(NULL);
    eng_net *none = NULL;
    eng_net_free(&none);
    eng_net *net = net_new(&m, 8, 2, 1);
    assert_int_equal(eng_net_threads(net), 2);
    assert_ptr_equal(eng_net_model(net), &m);
    eng_net_free(&net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_gradient_one_thread),
        cmocka_unit_test(model_gradient_two_threads),
        cmocka_unit_test(model_gradient_floor_pooling),
        cmocka_unit_test(model_gradient_dense_only),
        cmocka_unit_test(model_gradient_lstm_one_thread),
        cmocka_unit_test(model_gradient_lstm_two_threads),
        cmocka_unit_test(step_gradient_is_the_batch_mean),
        cmocka_unit_test(apply_equals_optim_step),
        cmocka_unit_test(train_step_statistics_match_eval),
        cmocka_unit_test(thread_counts_agree),
        cmocka_unit_test(thread_counts_agree_lstm),
        cmocka_unit_test(chunk_size_keeps_gradients),
        cmocka_unit_test(conv_algorithms_agree),
        cmocka_unit_test(same_threads_same_bits),
        cmocka_unit_test(same_threads_same_bits_lstm),
        cmocka_unit_test(grads_ready_calls_see_final_gradients),
        cmocka_unit_test(input_gradient),
        cmocka_unit_test(forward_backward_by_hand),
        cmocka_unit_test(grads_ready_calls_lstm),
        cmocka_unit_test(sigmoid_output_statistics),
        cmocka_unit_test(lstm_learns_a_memory_task),
        cmocka_unit_test(dropout_rate_zero_keeps_gradients),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
