/* test_model.c: the model registry, building (Keras names, shapes, errors), the parameter
 * layout (the one truth for every process: names, shapes, contiguous offsets, checksum),
 * Keras's initialisers, FLOP counts and the summary table; for mnist_cnn and for
 * imdb_lstm (Embedding + LSTM + Dropout + Dense(sigmoid), Keras's 402,561 parameters). */
#include "engine/model.h"

#include "engine/base/base.h"
#include "engine/layout.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* imdb_lstm's eng_layout_checksum (see checksum_is_stable_and_sensitive). */
#define IMDB_LSTM_CHECKSUM 0x72d44d44a55055a5ull

static void build_ok(eng_model *m, const eng_model_def *def) {
    char err[256] = "";
    assert_non_null(def);
    if (eng_model_build(m, def, err, sizeof err) != PST_OK)
        fail_msg("eng_model_build(%s): %s", def->name, err);
}

/* Keras's weights of the seed CNN, in model.weights order. */
static const struct {
    const char *name;
    int ndim, shape[4];
} keras_weights[] = {
    {"conv2d/kernel", 4, {3, 3, 1, 32}},    {"conv2d/bias", 1, {32}},
    {"conv2d_1/kernel", 4, {3, 3, 32, 64}}, {"conv2d_1/bias", 1, {64}},
    {"dense/kernel", 2, {1600, 128}},       {"dense/bias", 1, {128}},
    {"dense_1/kernel", 2, {128, 10}},       {"dense_1/bias", 1, {10}},
};

static void mnist_cnn_layout(void **state) {
    (void)state;
    eng_model m;
    build_ok(&m, eng_model_find("mnist_cnn"));
    const eng_layout *lay = &m.layout;
    assert_int_equal(lay->total, 225034);
    assert_int_equal(lay->n, 8);
    size_t offset = 0;
    for (int i = 0; i < lay->n; i++) {
        const eng_tensor_info *t = &lay->tensors[i];
        assert_string_equal(t->name, keras_weights[i].name);
        assert_int_equal(t->ndim, keras_weights[i].ndim);
        size_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] != keras_weights[i].shape[d])
                fail_msg("%s: dim %d is %d, Keras has %d", t->name, d, t->shape[d],
                         keras_weights[i].shape[d]);
            count *= (size_t)t->shape[d];
        }
        assert_int_equal(t->count, count);
        if (t->offset != offset)
            fail_msg("%s at offset %zu, expected %zu (contiguous, in order)", t->name, t->offset,
                     offset);
        offset += t->count;
        assert_int_equal(eng_layout_find(lay, t->name), i);
    }
    assert_int_equal(offset, lay->total);
    assert_int_equal(eng_layout_find(lay, "conv2d_2/kernel"), -1);
    assert_int_equal(eng_layout_find(lay, ""), -1);

    /* Layers: Keras names, shapes, parameter offsets. */
    static const char *const names[] = {"conv2d",  "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                                        "flatten", "dense",         "dropout",  "dense_1"};
    assert_int_equal(m.n, 8);
    for (int i = 0; i < m.n; i++)
        assert_string_equal(m.layers[i].name, names[i]);
    assert_true(m.input.h == 28 && m.input.w == 28 && m.input.c == 1);
    assert_true(m.output.h == 1 && m.output.w == 1 && m.output.c == 10);
    assert_int_equal(m.layers[0].nparams, 2);
    assert_int_equal(m.layers[0].kernel, 0);
    assert_int_equal(m.layers[0].bias, 288);
    assert_int_equal(m.layers[1].nparams, 0);
    assert_int_equal(m.layers[7].kernel, lay->tensors[6].offset);
    assert_int_equal(m.layers[7].bias, lay->tensors[7].offset);
    assert_int_equal(m.layers[4].out.c, 1600);

    char buf[64];
    assert_string_equal(eng_shape_str(buf, sizeof buf, 4, lay->tensors[2].shape), "(3, 3, 32, 64)");
    assert_string_equal(eng_shape_str(buf, sizeof buf, 1, lay->tensors[1].shape), "(32,)");
    assert_string_equal(eng_shape_str(buf, sizeof buf, 2, lay->tensors[4].shape), "(1600, 128)");
}

/* Keras's weights of imdb_lstm (TF 2 names an LSTM's weights through its cell). */
static const struct {
    const char *name;
    int ndim, shape[4];
    size_t count;
} imdb_weights[] = {
    {"embedding/embeddings", 2, {10000, 32}, 320000},
    {"lstm/lstm_cell/kernel", 2, {32, 512}, 16384},
    {"lstm/lstm_cell/recurrent_kernel", 2, {128, 512}, 65536},
    {"lstm/lstm_cell/bias", 1, {512}, 512},
    {"dense/kernel", 2, {128, 1}, 128},
    {"dense/bias", 1, {1}, 1},
};

static void imdb_lstm_layout(void **state) {
    (void)state;
    eng_model m;
    build_ok(&m, eng_model_find("imdb_lstm"));
    const eng_layout *lay = &m.layout;
    /* Embedding 320,000 + LSTM 4 * 128 * (32 + 128 + 1) = 82,432 + Dense 129 */
    assert_int_equal(lay->total, 402561);
    assert_int_equal(lay->n, 6);
    size_t offset = 0;
    for (int i = 0; i < lay->n; i++) {
        const eng_tensor_info *t = &lay->tensors[i];
        assert_string_equal(t->name, imdb_weights[i].name);
        assert_int_equal(t->ndim, imdb_weights[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            assert_int_equal(t->shape[d], imdb_weights[i].shape[d]);
        assert_int_equal(t->count, imdb_weights[i].count);
        assert_int_equal(t->offset, offset);
        offset += t->count;
    }
    static const char *const names[] = {"embedding", "lstm", "dropout", "dense"};
    static const int nparams[] = {1, 3, 0, 2};
    static const size_t counts[] = {320000, 82432, 0, 129};
    assert_int_equal(m.n, 4);
    size_t lo = 0;
    for (int i = 0; i < m.n; i++) {
        const eng_layer *l = &m.layers[i];
        assert_string_equal(l->name, names[i]);
        assert_int_equal(l->nparams, nparams[i]);
        assert_int_equal(l->param_lo, lo);
        assert_int_equal(l->param_hi - l->param_lo, counts[i]);
        lo = l->param_hi;
    }
    assert_int_equal(m.layers[0].kernel, 0);
    assert_int_equal(m.layers[1].kernel, lay->tensors[1].offset);
    assert_int_equal(m.layers[1].recurrent, lay->tensors[2].offset);
    assert_int_equal(m.layers[1].bias, lay->tensors[3].offset);
    assert_true(m.input.h == 1 && m.input.w == 200 && m.input.c == 1);
    assert_true(m.layers[0].out.w == 200 && m.layers[0].out.c == 32);
    assert_true(m.output.h == 1 && m.output.w == 1 && m.output.c == 1);
    size_t cuts[ENG_MAX_LAYERS];
    assert_int_equal(eng_model_cuts(&m, cuts), 3);
    assert_int_equal(cuts[0], 0);
    assert_int_equal(cuts[1], 320000);
    assert_int_equal(cuts[2], 402432);
    /* Pinned like mnist_cnn's: a change means old checkpoints and running jobs no longer
     * match. */
    const uint64_t h = eng_layout_checksum(lay);
    printf("  imdb_lstm layout checksum 0x%016llx\n", (unsigned long long)h);
    if (h != IMDB_LSTM_CHECKSUM)
        fail_msg("imdb_lstm layout checksum is 0x%016llx, was 0x%016llx", (unsigned long long)h,
                 (unsigned long long)IMDB_LSTM_CHECKSUM);
}

/* Keras's initialisers for imdb_lstm: RandomUniform(-0.05, 0.05) embeddings, glorot_uniform
 * kernels, an orthogonal recurrent kernel, the forget gate's bias at 1, a zero Dense bias. */
static void imdb_lstm_init(void **state) {
    (void)state;
    eng_model m;
    build_ok(&m, eng_model_find("imdb_lstm"));
    float *p = malloc(sizeof(float) * m.layout.total);
    assert_non_null(p);
    for (size_t i = 0; i < m.layout.total; i++)
        p[i] = 12345.0f; /* every element must be written */
    eng_model_init_params(&m, p, 1);
    static const double limits[] = {
        0.05,                /* RandomUniform(-0.05, 0.05) */
        0.10502100630210074, /* sqrt(6 / (32 + 512)) */
        0.0,                 /* orthogonal */
        0.0,                 /* unit forget bias */
        0.21566554640687682, /* sqrt(6 / (128 + 1)) */
        0.0,                 /* zeros */
    };
    for (int t = 0; t < m.layout.n; t++) {
        const eng_tensor_info *ti = &m.layout.tensors[t];
        const float *w = p + ti->offset;
        if (t == 2) { /* orthogonal (128, 512): orthonormal rows (test_lstm checks them all) */
            double d00 = 0.0, d01 = 0.0;
            for (int j = 0; j < 512; j++)
                d00 += (double)w[j] * w[j], d01 += (double)w[j] * w[512 + j];
            assert_true(fabs(d00 - 1.0) < 1e-5 && fabs(d01) < 1e-5);
            continue;
        }
        if (t == 3 || t == 5) { /* biases: 1 for the forget gate (128..255), else 0 */
            for (size_t i = 0; i < ti->count; i++)
                if (w[i] != (t == 3 && i >= 128 && i < 256 ? 1.0f : 0.0f))
                    fail_msg("%s[%zu] = %g", ti->name, i, w[i]);
            continue;
        }
        const double lim = limits[t];
        double sq = 0.0, mx = 0.0;
        for (size_t i = 0; i < ti->count; i++) {
            if (!(fabsf(w[i]) <= (float)lim))
                fail_msg("%s[%zu] = %g outside +-%g", ti->name, i, w[i], lim);
            sq += (double)w[i] * w[i];
            mx = fmax(mx, fabs(w[i]));
        }
        const double var = sq / (double)ti->count;
        printf("  %s: E[w^2] / (l^2/3) = %.4f, max %.4g (limit %.4g)\n", ti->name,
               var / (lim * lim / 3), mx, lim);
        if (fabs(var - lim * lim / 3) > 5 * lim * lim * sqrt(4.0 / 45.0 / (double)ti->count))
            fail_msg("%s: E[w^2] %g, expected %g", ti->name, var, lim * lim / 3);
        assert_true(mx > 0.9 * lim);
    }
    free(p);
}

static void registry(void **state) {
    (void)state;
    const eng_model_def *mn = eng_model_find("mnist_cnn"), *fa = eng_model_find("fashion_cnn");
    const eng_model_def *im = eng_model_find("imdb_lstm");
    assert_non_null(im);
    assert_string_equal(im->dataset, "imdb");
    assert_int_equal(im->nclasses, 2);
    assert_non_null(strstr(im->about, "402,561"));
    assert_true(im->chunk > 0);
    assert_int_equal(mn->chunk, 16); /* passes of 16: engine/model.c, CHUNK_CNN */
    assert_non_null(mn);
    assert_non_null(fa);
    assert_string_equal(mn->dataset, "mnist");
    assert_string_equal(fa->dataset, "fashion-mnist");
    assert_int_equal(mn->nclasses, 10);
    assert_null(eng_model_find("nope"));
    assert_null(eng_model_find(""));
    assert_null(eng_model_find("MNIST_CNN"));
    int n = 0;
    while (eng_model_at(n))
        n++;
    assert_true(n >= 3);
    assert_null(eng_model_at(-1));
    for (int i = 0; i < n; i++)
        assert_ptr_equal(eng_model_find(eng_model_at(i)->name), eng_model_at(i));
}

static void checksum_is_stable_and_sensitive(void **state) {
    (void)state;
    eng_model a, b;
    build_ok(&a, eng_model_find("mnist_cnn"));
    build_ok(&b, eng_model_find("mnist_cnn"));
    const uint64_t h = eng_layout_checksum(&a.layout);
    assert_true(h == eng_layout_checksum(&a.layout));
    assert_true(h == eng_layout_checksum(&b.layout));
    /* The value every process and checkpoint of mnist_cnn agrees on (FNV-1a over names,
     * shapes and offsets, as built today). A change here means the layout changed: old
     * checkpoints and running jobs no longer match, so update it only on purpose. */
    if (h != 0x02c7d0c43862d46dull)
        fail_msg("mnist_cnn layout checksum is 0x%016llx, was 0x02c7d0c43862d46d",
                 (unsigned long long)h);
    /* The same architecture on another data set has the same layout. */
    eng_model f;
    build_ok(&f, eng_model_find("fashion_cnn"));
    assert_true(eng_layout_checksum(&f.layout) == h);

    eng_layout l = a.layout;
    l.tensors[4].shape[1] = 129; /* dense/kernel (1600, 129) */
    assert_true(eng_layout_checksum(&l) != h);
    l = a.layout;
    l.tensors[0].shape[3] = 31;
    assert_true(eng_layout_checksum(&l) != h);
    l = a.layout;
    l.tensors[7].name[6] = '2'; /* dense_2/bias */
    assert_true(eng_layout_checksum(&l) != h);
    l = a.layout;
    l.tensors[3].offset += 1;
    assert_true(eng_layout_checksum(&l) != h);
    /* Two shapes swapped keep the total but not the meaning of the floats. */
    l = a.layout;
    l.tensors[6].shape[0] = 10, l.tensors[6].shape[1] = 128;
    assert_true(eng_layout_checksum(&l) != h);

    /* A model built from a changed definition: Dense(129) instead of Dense(128). */
    eng_layer_spec spec[8];
    memcpy(spec, eng_model_find("mnist_cnn")->layers, sizeof spec);
    assert_int_equal(spec[5].kind, ENG_DENSE);
    spec[5].units = 129;
    const eng_model_def def = {"changed", "mnist", "", 10, 8, spec, 0, NULL, 0, 0};
    eng_model c;
    build_ok(&c, &def);
    assert_true(eng_layout_checksum(&c.layout) != h);
}

/* glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)) with conv fans
 * multiplied by the receptive field; biases zero; each tensor from the seed alone. */
static void glorot_init(void **state) {
    (void)state;
    eng_model m;
    build_ok(&m, eng_model_find("mnist_cnn"));
    const size_t n = m.layout.total;
    float *p = malloc(sizeof(float) * n), *q = malloc(sizeof(float) * n);
    assert_true(p && q);
    for (size_t i = 0; i < n; i++)
        p[i] = q[i] = 12345.0f; /* every element must be written */
    eng_model_init_params(&m, p, 1);
    static const double limits[] = {
        0.14213381090374028, /* sqrt(6 / (9*1 + 9*32)) */
        0.0,
        0.08333333333333333, /* sqrt(6 / (9*32 + 9*64)) */
        0.0,
        0.058925565098878960, /* sqrt(6 / (1600 + 128)) */
        0.0,
        0.20851441405707477, /* sqrt(6 / (128 + 10)) */
        0.0,
    };
    for (int t = 0; t < m.layout.n; t++) {
        const eng_tensor_info *ti = &m.layout.tensors[t];
        const float *w = p + ti->offset;
        if (ti->ndim == 1) {
            for (size_t i = 0; i < ti->count; i++)
                if (w[i] != 0.0f)
                    fail_msg("%s[%zu] = %g, expected 0", ti->name, i, w[i]);
            continue;
        }
        const double lim = limits[t];
        double sum = 0.0, sq = 0.0, mx = 0.0;
        for (size_t i = 0; i < ti->count; i++) {
            if (!(fabsf(w[i]) <= (float)lim))
                fail_msg("%s[%zu] = %g outside +-%g", ti->name, i, w[i], lim);
            sum += w[i];
            sq += (double)w[i] * w[i];
            mx = fmax(mx, fabs(w[i]));
        }
        const double cnt = (double)ti->count, mean = sum / cnt, var = sq / cnt;
        /* U(-l, l): mean 0 with sd l / sqrt(3 cnt); E[w^2] = l^2 / 3 with sd
         * l^2 sqrt(4 / 45 / cnt). Five standard deviations either way. */
        printf("  %s: mean %.3g (limit %.4g), E[w^2] / (l^2/3) = %.4f, max %.4g\n", ti->name, mean,
               lim, var / (lim * lim / 3), mx);
        if (fabs(mean) > 5 * lim / sqrt(3 * cnt))
            fail_msg("%s: mean %g, expected 0 +- %g", ti->name, mean, 5 * lim / sqrt(3 * cnt));
        if (fabs(var - lim * lim / 3) > 5 * lim * lim * sqrt(4.0 / 45.0 / cnt))
            fail_msg("%s: E[w^2] %g, expected %g", ti->name, var, lim * lim / 3);
        if (mx < 0.9 * lim)
            fail_msg("%s: largest |w| %g, expected close to the limit %g", ti->name, mx, lim);
    }
    /* Same seed, same bits; another seed, other values (every kernel differs). */
    eng_model_init_params(&m, q, 1);
    assert_memory_equal(p, q, sizeof(float) * n);
    eng_model_init_params(&m, q, 2);
    for (int t = 0; t < m.layout.n; t++) {
        const eng_tensor_info *ti = &m.layout.tensors[t];
        if (ti->ndim > 1)
            assert_memory_not_equal(p + ti->offset, q + ti->offset, sizeof(float) * ti->count);
    }
    /* Different tensors do not repeat each other's stream. */
    assert_memory_not_equal(p + m.layout.tensors[0].offset, p + m.layout.tensors[2].offset,
                            sizeof(float) * 16);
    free(p);
    free(q);
}

static void flops(void **state) {
    (void)state;
    eng_model m;
    build_ok(&m, eng_model_find("mnist_cnn"));
    /* Keras's nominal count: 2 * (26*26*32*9 + 11*11*64*288 + 1600*128 + 128*10). */
    assert_true(eng_model_flops_forward(&m) == 5262080.0);
    /* 3x forward, less the first layer's input gradient (2 * 26*26*32*9). */
    assert_true(eng_model_flops_train(&m) == 3 * 5262080.0 - 389376.0);
    /* imdb_lstm: 200 steps of [x_t, h] (160) by (160, 512), and Dense(1) on 128; the first
     * layer (the Embedding) has no FLOPs to take away: the LSTM does compute its dx. */
    eng_model im;
    build_ok(&im, eng_model_find("imdb_lstm"));
    assert_true(eng_model_flops_forward(&im) == 2.0 * 200 * 160 * 512 + 2.0 * 128);
    assert_true(eng_model_flops_train(&im) == 3 * (2.0 * 200 * 160 * 512 + 2.0 * 128));
}

static char *capture_summary(const eng_model *m) {
    FILE *f = tmpfile();
    assert_non_null(f);
    eng_model_summary(m, f);
    long len = ftell(f);
    assert_true(len > 0);
    char *s = malloc((size_t)len + 1);
    assert_non_null(s);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = '\0';
    fclose(f);
    return s;
}

static void summary(void **state) {
    (void)state;
    eng_model m;
    build_ok(&m, eng_model_find("mnist_cnn"));
    char *s = capture_summary(&m);
    printf("%s", s);
    /* Keras's rows (shapes as Keras reports them, even where the model computes less). */
    static const char *const rows[][3] = {
        {"conv2d (Conv2D)", "(None, 26, 26, 32)", "320"},
        {"max_pooling2d (MaxPooling2D)", "(None, 13, 13, 32)", "0"},
        {"conv2d_1 (Conv2D)", "(None, 11, 11, 64)", "18,496"},
        {"max_pooling2d_1 (MaxPooling2D)", "(None, 5, 5, 64)", "0"},
        {"flatten (Flatten)", "(None, 1600)", "0"},
        {"dense (Dense)", "(None, 128)", "204,928"},
        {"dropout (Dropout)", "(None, 128)", "0"},
        {"dense_1 (Dense)", "(None, 10)", "1,290"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *line = strstr(s, rows[i][0]);
        if (!line)
            fail_msg("summary has no row '%s'", rows[i][0]);
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char row[256];
        snprintf(row, sizeof row, "%.*s", (int)len, line);
        if (!strstr(row, rows[i][1]) || !strstr(row, rows[i][2]))
            fail_msg("summary row '%s': expected %s and %s", row, rows[i][1], rows[i][2]);
    }
    assert_non_null(strstr(s, "Model: \"mnist_cnn\""));
    assert_non_null(strstr(s, "Total params: 225,034\n"));
    assert_non_null(strstr(s, "Trainable params: 225,034\n"));
    assert_non_null(strstr(s, "Non-trainable params: 0\n"));
    free(s);
}

/* Keras's summary of the IMDB model. */
static void summary_imdb_lstm(void **state) {
    (void)state;
    eng_model m;
    build_ok(&m, eng_model_find("imdb_lstm"));
    char *s = capture_summary(&m);
    printf("%s", s);
    static const char *const rows[][3] = {
        {"embedding (Embedding)", "(None, 200, 32)", "320,000"},
        {"lstm (LSTM)", "(None, 128)", "82,432"},
        {"dropout (Dropout)", "(None, 128)", "0"},
        {"dense (Dense)", "(None, 1)", "129"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *line = strstr(s, rows[i][0]);
        if (!line)
            fail_msg("summary has no row '%s'", rows[i][0]);
        const char *end = strchr(line, '\n');
        char row[256];
        snprintf(row, sizeof row, "%.*s", (int)(end ? end - line : (long)strlen(line)), line);
        if (!strstr(row, rows[i][1]) || !strstr(row, rows[i][2]))
            fail_msg("summary row '%s': expected %s and %s", row, rows[i][1], rows[i][2]);
    }
    assert_non_null(strstr(s, "Model: \"imdb_lstm\""));
    assert_non_null(strstr(s, "Total params: 402,561\n"));
    assert_non_null(strstr(s, "Trainable params: 402,561\n"));
    free(s);
}

/* A sigmoid output is one unit for two classes; anything else is refused. */
static void sigmoid_output_errors(void **state) {
    (void)state;
    const eng_layer_spec two_units[] = {
        {.kind = ENG_FLATTEN, .input = {2, 2, 1}},
        {.kind = ENG_DENSE, .units = 2, .act = ENG_ACT_SIGMOID},
    };
    const eng_layer_spec one_unit[] = {
        {.kind = ENG_FLATTEN, .input = {2, 2, 1}},
        {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
    };
    const eng_model_def bad1 = {"bad1", "none", "", 2, 2, two_units, 0, NULL, 0, 0};
    const eng_model_def bad2 = {"bad2", "none", "", 10, 2, one_unit, 0, NULL, 0, 0};
    const eng_model_def good = {"good", "none", "", 2, 2, one_unit, 0, NULL, 0, 0};
    const eng_model_def *bad[] = {&bad1, &bad2};
    eng_model m;
    for (int i = 0; i < 2; i++) {
        char err[256] = "";
        assert_int_equal(eng_model_build(&m, bad[i], err, sizeof err), PST_EARG);
        printf("  %s\n", err);
        assert_non_null(strstr(err, "sigmoid"));
        assert_non_null(strstr(err, bad[i]->name));
    }
    build_ok(&m, &good);
    assert_int_equal(m.layout.total, 5);
}

/* Keras numbering for repeated kinds: conv2d, conv2d_1, conv2d_2. */
static void names_of_repeated_layers(void **state) {
    (void)state;
    static const eng_layer_spec spec[] = {
        {.kind = ENG_CONV2D,
         .units = 2,
         .kh = 3,
         .kw = 3,
         .act = ENG_ACT_RELU,
         .input = {10, 10, 1}},
        {.kind = ENG_CONV2D, .units = 2, .kh = 3, .kw = 3, .act = ENG_ACT_RELU},
        {.kind = ENG_CONV2D, .units = 2, .kh = 3, .kw = 3, .act = ENG_ACT_RELU},
        {.kind = ENG_FLATTEN},
        {.kind = ENG_DENSE, .units = 4, .act = ENG_ACT_RELU},
        {.kind = ENG_DENSE, .units = 10, .act = ENG_ACT_SOFTMAX},
    };
    const eng_model_def def = {"three_convs", "none", "", 10, 6, spec, 0, NULL, 0, 0};
    eng_model m;
    build_ok(&m, &def);
    assert_string_equal(m.layers[2].name, "conv2d_2");
    assert_string_equal(m.layers[5].name, "dense_1");
    assert_int_equal(eng_layout_find(&m.layout, "conv2d_2/kernel"), 4);
    assert_int_equal(m.layers[3].out.c, 4 * 4 * 2);
    assert_int_equal(m.layout.total, (9 * 2 + 2) + (18 * 2 + 2) * 2 + (32 * 4 + 4) + (4 * 10 + 10));
}

/* Bad definitions: PST_EARG and a message naming the layer or model. */
static void build_errors(void **state) {
    (void)state;
    struct {
        eng_layer_spec spec[4];
        int n, nclasses;
        const char *needle;
    } cases[] = {
        {{{.kind = ENG_CONV2D, .units = 2, .kh = 5, .kw = 3, .input = {4, 4, 1}},
          {.kind = ENG_FLATTEN},
          {.kind = ENG_DENSE, .units = 10}},
         3,
         10,
         "conv2d"},
        {{{.kind = ENG_CONV2D, .units = 0, .kh = 3, .kw = 3, .input = {4, 4, 1}},
          {.kind = ENG_FLATTEN},
          {.kind = ENG_DENSE, .units = 10}},
         3,
         10,
         "conv2d"},
        {{{.kind = ENG_CONV2D, .units = 2, .kh = 2, .kw = 2, .input = {4, 4, 1}},
          {.kind = ENG_DENSE, .units = 10}},
         2,
         10,
         "dense"},
        {{{.kind = ENG_FLATTEN, .input = {4, 4, 1}},
          {.kind = ENG_DROPOUT, .rate = 1.0f},
          {.kind = ENG_DENSE, .units = 10}},
         3,
         10,
         "dropout"},
        {{{.kind = ENG_MAXPOOL2D, .kh = 5, .kw = 5, .input = {4, 4, 1}},
          {.kind = ENG_FLATTEN},
          {.kind = ENG_DENSE, .units = 10}},
         3,
         10,
         "max_pooling2d"},
        {{{.kind = ENG_FLATTEN, .input = {4, 4, 1}}, {.kind = ENG_DENSE, .units = 7}},
         2,
         10,
         "bad"},
        {{{.kind = ENG_FLATTEN, .input = {4, 4, 1}}}, 0, 10, "bad"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const eng_model_def def = {
            "bad", "none", "", cases[i].nclasses, cases[i].n, cases[i].spec, 0, NULL, 0, 0};
        eng_model m;
        char err[256] = "";
        int rc = eng_model_build(&m, &def, err, sizeof err);
        printf("  case %zu: rc %d: %s\n", i, rc, err);
        if (rc != PST_EARG)
            fail_msg("case %zu: rc %d, expected PST_EARG (%d)", i, rc, PST_EARG);
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: message '%s' does not name '%s'", i, err, cases[i].needle);
    }
}

/* A pool larger than the conv's output is an error, and the message gives the shape Keras
 * would report, (1, 1, 2): not the (0, 0, 2) left after the model's cropping for the pool
 * (a conv computes only whole multiples of a following pool). */
static void pool_larger_than_conv_output(void **state) {
    (void)state;
    static const eng_layer_spec spec[] = {
        {.kind = ENG_CONV2D, .units = 2, .kh = 3, .kw = 3, .input = {3, 3, 1}},
        {.kind = ENG_MAXPOOL2D, .kh = 2, .kw = 2},
        {.kind = ENG_FLATTEN},
        {.kind = ENG_DENSE, .units = 10},
    };
    const eng_model_def def = {"small", "none", "", 10, 4, spec, 0, NULL, 0, 0};
    eng_model m;
    char err[256] = "";
    const int rc = eng_model_build(&m, &def, err, sizeof err);
    printf("  rc %d: %s\n", rc, err);
    assert_int_equal(rc, PST_EARG);
    assert_non_null(strstr(err, "max_pooling2d"));
    if (!strstr(err, "(1, 1, 2)"))
        fail_msg("message '%s' does not give the pool's input as (1, 1, 2)", err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mnist_cnn_layout),
        cmocka_unit_test(imdb_lstm_layout),
        cmocka_unit_test(imdb_lstm_init),
        cmocka_unit_test(registry),
        cmocka_unit_test(checksum_is_stable_and_sensitive),
        cmocka_unit_test(glorot_init),
        cmocka_unit_test(flops),
        cmocka_unit_test(summary),
        cmocka_unit_test(summary_imdb_lstm),
        cmocka_unit_test(sigmoid_output_errors),
        cmocka_unit_test(names_of_repeated_layers),
        cmocka_unit_test(build_errors),
        cmocka_unit_test(pool_larger_than_conv_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
