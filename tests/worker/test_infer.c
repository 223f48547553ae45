/* test_infer.c: a checkpoint made callable (worker/infer.h): the signatures; each input
 * converted as training converts its data (pixels / 255, IMDB text through the checkpoint's
 * vocabulary, tokens padded and cut in front, a seed's noise as `pstrain sample` draws it);
 * bad values refused with the contract's messages; the outputs the engine's forward pass and
 * activation give, bit for bit; the PNG decoded by cairo; and a checkpoint file's round trip. */
#include "worker/infer.h"

#include "engine/base/base.h"
#include "engine/gan.h"
#include "engine/loss.h"
#include "engine/net.h"
#include "engine/rng.h"
#include "engine/text.h"
#include "tests/support/testutil.h"
#include "worker/ckpt/record.h"
#include "worker/gan_outputs.h"
#include "worker/vocab.h"

#include <cairo.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void build(eng_model *m, const char *name) {
    char err[256] = "";
    if (eng_model_build(m, eng_model_find(name), err, sizeof err) != PST_OK)
        fail_msg("%s: %s", name, err);
}

static wk_infer *blank(const char *name, int max_batch, int threads) {
    char err[256] = "";
    wk_infer *m = wk_infer_blank(name, max_batch, threads, err, sizeof err);
    if (!m)
        fail_msg("blank %s: %s", name, err);
    return m;
}

/* A checkpoint of model m at step, weights drawn from seed (a GAN's generator average the
 * weights plus 0.01 when ema), Adam slots zero; arrays malloc'ed: eng_ckpt_free frees them. */
static void make_ckpt(eng_ckpt *c, const eng_model *m, uint64_t seed, int64_t step, int ema) {
    eng_ckpt_init(c, m);
    c->weights = malloc(sizeof(float) * c->total);
    assert_non_null(c->weights);
    eng_model_init_params(m, c->weights, seed);
    for (int p = 0; p < c->nparts; p++) {
        eng_ckpt_part *part = &c->parts[p];
        part->optim = eng_optim_defaults(ENG_OPT_ADAM);
        part->nslots = 2;
        for (int s = 0; s < 2; s++)
            assert_non_null(part->slots[s] = calloc(part->total, sizeof(float)));
        part->nruns = 1;
        assert_non_null(part->runs = malloc(sizeof *part->runs));
        part->runs[0] = (eng_ckpt_iters){0, part->total, step};
    }
    if (ema) {
        eng_ckpt_part *g = &c->parts[0];
        assert_non_null(g->ema = malloc(sizeof(float) * g->total));
        for (size_t i = 0; i < g->total; i++)
            g->ema[i] = c->weights[g->offset + i] + 0.01f;
        g->ema_decay = 0.999;
    }
    int64_t steps[1] = {step};
    const wk_run_record rec = {.step = step,
                               .epoch = 1,
                               .epoch_step = step,
                               .mode = "local",
                               .batch = 32,
                               .seed = 1,
                               .workers = 1,
                               .val_split = 0.1,
                               .epochs = 1,
                               .worker_steps = steps};
    wk_record_put(c, &rec);
}

static wk_infer *from_ckpt(const eng_ckpt *c, int max_batch, int threads, int live) {
    char err[256] = "";
    wk_infer *m = wk_infer_new(c, max_batch, threads, live, err, sizeof err);
    if (!m)
        fail_msg("wk_infer_new: %s", err);
    return m;
}

/* prepare must refuse value with exactly want. */
static void refused(const wk_infer *m, int input, const void *value, size_t n, const char *want) {
    char err[256] = "";
    float x[1024];
    assert_int_equal(wk_infer_prepare(m, input, value, n, x, err, sizeof err), PST_EARG);
    assert_string_equal(err, want);
}

static void signatures(void **state) {
    (void)state;
    assert_string_equal(wk_dtype_name(WK_FP32), "FP32");
    assert_string_equal(wk_dtype_name(WK_UINT8), "UINT8");
    assert_string_equal(wk_dtype_name(WK_INT64), "INT64");
    assert_string_equal(wk_dtype_name(WK_BYTES), "BYTES");
    wk_infer *m = blank("mnist_cnn", 16, 1);
    const wk_infer_sig *s = wk_infer_signature(m);
    assert_string_equal(s->model, "mnist_cnn");
    assert_int_equal(s->version, 0);
    assert_int_equal(wk_infer_max_batch(m), 16);
    assert_int_equal(s->ninputs, 2);
    assert_string_equal(s->inputs[0].name, "images");
    assert_int_equal(s->inputs[0].dtype, WK_FP32);
    assert_int_equal(s->inputs[0].rank, 3);
    assert_int_equal(s->inputs[0].dims[0], 28);
    assert_int_equal(s->inputs[0].dims[1], 28);
    assert_int_equal(s->inputs[0].dims[2], 1);
    assert_string_equal(s->inputs[1].name, "pixels");
    assert_int_equal(s->inputs[1].dtype, WK_UINT8);
    assert_int_equal(s->noutputs, 1);
    assert_string_equal(s->outputs[0].name, "probabilities");
    assert_int_equal(s->outputs[0].rank, 1);
    assert_int_equal(s->outputs[0].dims[0], 10);
    assert_int_equal(s->in_floats, 784);
    assert_int_equal(s->out_floats, 10);
    wk_infer_free(&m);
    assert_null(m);
    wk_infer_free(&m); /* NULL is fine */

    m = blank("imdb_lstm", 4, 1);
    s = wk_infer_signature(m);
    assert_string_equal(s->inputs[0].name, "text");
    assert_int_equal(s->inputs[0].dtype, WK_BYTES);
    assert_int_equal(s->inputs[0].rank, 0);
    assert_string_equal(s->inputs[1].name, "tokens");
    assert_int_equal(s->inputs[1].dtype, WK_INT64);
    assert_int_equal(s->inputs[1].rank, 1);
    assert_int_equal(s->inputs[1].dims[0], 200);
    assert_string_equal(s->outputs[0].name, "probability");
    assert_int_equal(s->outputs[0].dims[0], 1);
    assert_int_equal(s->in_floats, 200);
    assert_int_equal(s->out_floats, 1);
    wk_infer_free(&m);

    m = blank("mnist_gan", 4, 1);
    s = wk_infer_signature(m);
    assert_string_equal(s->inputs[0].name, "seed");
    assert_int_equal(s->inputs[0].dtype, WK_INT64);
    assert_int_equal(s->inputs[0].rank, 0);
    assert_string_equal(s->inputs[1].name, "z");
    assert_int_equal(s->inputs[1].dims[0], ENG_GAN_NOISE);
    assert_int_equal(s->noutputs, 2);
    assert_string_equal(s->outputs[0].name, "images");
    assert_int_equal(s->outputs[0].rank, 3);
    assert_string_equal(s->outputs[1].name, "png");
    assert_int_equal(s->outputs[1].dtype, WK_BYTES);
    assert_int_equal(s->in_floats, ENG_GAN_NOISE);
    assert_int_equal(s->out_floats, 784);
    wk_infer_free(&m);

    char err[256] = "";
    assert_null(wk_infer_blank("no_such_model", 4, 1, err, sizeof err));
    assert_non_null(strstr(err, "no_such_model"));
    assert_null(wk_infer_blank("mnist_cnn", 0, 1, err, sizeof err));
    assert_string_equal(err, "max-batch: expected 1 to 4096 samples, got 0");
    assert_null(wk_infer_blank("mnist_cnn", 4097, 1, err, sizeof err));
    assert_null(wk_infer_blank("mnist_cnn", 4, 0, err, sizeof err));
    assert_string_equal(err, "threads: expected at least 1, got 0");
}

/* "pixels" is the data set's conversion (engine/dataset.c: (float)px / 255.0f); "images"
 * the values themselves; bad values refused with the contract's messages. */
static void images(void **state) {
    (void)state;
    wk_infer *m = blank("fashion_cnn", 4, 1);
    uint8_t px[784];
    float v[784], x[784];
    for (int i = 0; i < 784; i++) {
        px[i] = (uint8_t)(i * 37 % 256);
        v[i] = (float)px[i] / 255.0f;
    }
    char err[256] = "";
    assert_int_equal(wk_infer_prepare(m, 1, px, 784, x, err, sizeof err), PST_OK);
    for (int i = 0; i < 784; i++)
        assert_true(x[i] == (float)px[i] / 255.0f);
    memset(x, 0, sizeof x);
    assert_int_equal(wk_infer_prepare(m, 0, v, 784, x, err, sizeof err), PST_OK);
    assert_memory_equal(x, v, sizeof v);
    refused(m, 1, px, 783, "expected 784 values, got 783");
    refused(m, 0, v, 783, "expected 784 values, got 783");
    refused(m, 0, v, 785, "expected 784 values, got 785");
    v[17] = 1.5f;
    refused(m, 0, v, 784, "value 17 is 1.5: expected a number in [0, 1]");
    v[17] = -0.25f;
    refused(m, 0, v, 784, "value 17 is -0.25: expected a number in [0, 1]");
    v[17] = NAN;
    refused(m, 0, v, 784, "value 17 is nan: expected a finite number");
    v[17] = -INFINITY;
    refused(m, 0, v, 784, "value 17 is -inf: expected a finite number");
    wk_infer_free(&m);
}

/* wk_infer_run is eng_net_predict then the engine's training softmax (the probabilities of
 * eng_softmax_xent_forward), bit for bit, for the same batch, max_batch and threads. */
static void run_classifier(void **state) {
    (void)state;
    enum { MAXB = 8, B = 5, THREADS = 2 };
    eng_model model;
    build(&model, "mnist_cnn");
    eng_ckpt c = {0};
    make_ckpt(&c, &model, 7, 42, 0);
    wk_infer *m = from_ckpt(&c, MAXB, THREADS, 0);
    assert_int_equal(wk_infer_signature(m)->version, 42);
    float *x = tu_random_floats((size_t)B * 784, 0.0f, 1.0f, 3);
    float y[B * 10], logits[B * 10], probs[B * 10];
    wk_infer_run(m, x, B, y);

    char err[256] = "";
    eng_net *net = eng_net_new(&model, MAXB, THREADS, err, sizeof err);
    assert_non_null(net);
    memcpy(eng_net_params(net), c.weights, sizeof(float) * model.layout.total);
    eng_net_predict(net, x, B, logits);
    const uint8_t labels[B] = {0};
    eng_softmax_xent_forward(probs, logits, labels, B, 10, NULL);
    assert_memory_equal(y, probs, sizeof y);
    for (int i = 0; i < B; i++) {
        double sum = 0.0;
        for (int k = 0; k < 10; k++)
            sum += y[i * 10 + k];
        assert_true(fabs(sum - 1.0) < 1e-5);
    }
    eng_net_free(&net);
    free(x);
    wk_infer_free(&m);
    eng_ckpt_free(&c);
}

/* IMDB: text tokenised with the checkpoint's vocabulary as eng_vocab_encode does it;
 * tokens padded and cut in front; the output P(positive) the sigmoid of the logit. */
static void text(void **state) {
    (void)state;
    eng_model model;
    build(&model, "imdb_lstm");
    const char *texts[] = {"the film was good, the film was great.", "a bad film<br />the end"};
    const size_t lens[] = {strlen(texts[0]), strlen(texts[1])};
    eng_vocab *v = eng_vocab_build(texts, lens, 2);
    eng_ckpt c = {0};
    make_ckpt(&c, &model, 11, 3, 0);
    c.vocab = wk_vocab_blob(v, &c.vocab_bytes);
    wk_infer *m = from_ckpt(&c, 4, 1, 0);

    const char *review = "The FILM was bad... Unknown words, <br />great end!";
    uint16_t seq[200];
    eng_vocab_encode(v, review, strlen(review), 10000, 200, seq);
    float x[200], y[2];
    char err[256] = "";
    assert_int_equal(wk_infer_prepare(m, 0, review, strlen(review), x, err, sizeof err), PST_OK);
    for (int j = 0; j < 200; j++)
        assert_true(x[j] == (float)seq[j]);
    assert_true(x[193] == (float)ENG_TEXT_START && x[192] == 0.0f); /* 6 known words */

    /* tokens: padded in front (pad_sequences' 'pre') */
    const int64_t few[] = {1, 14, 22, 9999};
    assert_int_equal(wk_infer_prepare(m, 1, few, 4, x, err, sizeof err), PST_OK);
    for (int j = 0; j < 196; j++)
        assert_true(x[j] == 0.0f);
    assert_true(x[196] == 1.0f && x[197] == 14.0f && x[198] == 22.0f && x[199] == 9999.0f);
    /* longer than maxlen: cut in front, the last 200 kept */
    int64_t many[250];
    for (int j = 0; j < 250; j++)
        many[j] = j;
    assert_int_equal(wk_infer_prepare(m, 1, many, 250, x, err, sizeof err), PST_OK);
    for (int j = 0; j < 200; j++)
        assert_true(x[j] == (float)(50 + j));
    const int64_t high[] = {1, 10000}, low[] = {-1};
    refused(m, 1, high, 2, "value 1 is 10000: expected a token id in [0, 10000)");
    refused(m, 1, low, 1, "value 0 is -1: expected a token id in [0, 10000)");
    refused(m, 1, few, 0, "expected at least 1 token id, got 0");

    /* the output: sigmoid(logit), as eng_sigmoid_bce_backward's s for a label 0 */
    float xs[2 * 200], logits[2];
    assert_int_equal(wk_infer_prepare(m, 0, review, strlen(review), xs, err, sizeof err), PST_OK);
    assert_int_equal(wk_infer_prepare(m, 1, few, 4, xs + 200, err, sizeof err), PST_OK);
    wk_infer_run(m, xs, 2, y);
    eng_net *net = eng_net_new(&model, 4, 1, err, sizeof err);
    assert_non_null(net);
    memcpy(eng_net_params(net), c.weights, sizeof(float) * model.layout.total);
    eng_net_predict(net, xs, 2, logits);
    const uint8_t zeros[2] = {0};
    float s[2];
    eng_sigmoid_bce_backward(s, logits, zeros, 2, 1.0f);
    assert_memory_equal(y, s, sizeof y);
    for (int i = 0; i < 2; i++)
        assert_true(fabs(y[i] - 1.0 / (1.0 + exp(-(double)logits[i]))) < 1e-6);
    eng_net_free(&net);
    wk_infer_free(&m);
    eng_ckpt_free(&c);
    eng_vocab_free(&v);

    /* a blank model knows no words: a review is its start mark alone */
    m = blank("imdb_lstm", 1, 1);
    assert_int_equal(wk_infer_prepare(m, 0, review, strlen(review), x, err, sizeof err), PST_OK);
    assert_true(x[199] == (float)ENG_TEXT_START && x[198] == 0.0f);
    wk_infer_free(&m);
}

/* The GAN: a seed's z is sample 0 of `pstrain sample --seed S`'s noise; the images are
 * eng_gan_generate's from the moving average (the weights themselves when live). */
static void gan(void **state) {
    (void)state;
    eng_model model;
    build(&model, "mnist_gan");
    eng_ckpt c = {0};
    make_ckpt(&c, &model, 5, 9, 1);
    wk_infer *m = from_ckpt(&c, 4, 1, 0);
    wk_infer *live = from_ckpt(&c, 4, 1, 1);
    const int64_t seeds[3] = {7, 0, -123456789012345};
    float z[3 * ENG_GAN_NOISE], grid[64 * ENG_GAN_NOISE];
    char err[256] = "";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            wk_infer_prepare(m, 0, &seeds[i], 1, z + i * ENG_GAN_NOISE, err, sizeof err), PST_OK);
        /* wk_sample's draw for n digits: its first row */
        eng_gan_noise(grid, 64, 0, eng_hash3((uint64_t)seeds[i], WK_GAN_KEY_GRID, 0));
        assert_memory_equal(z + i * ENG_GAN_NOISE, grid, sizeof(float) * ENG_GAN_NOISE);
    }
    refused(m, 0, seeds, 2, "expected 1 value (a seed), got 2");
    float bad[ENG_GAN_NOISE] = {0};
    bad[3] = NAN;
    refused(m, 1, bad, ENG_GAN_NOISE, "value 3 is nan: expected a finite number");
    refused(m, 1, bad, 99, "expected 100 values, got 99");
    bad[3] = 5.0f; /* z is any finite value */
    assert_int_equal(wk_infer_prepare(m, 1, bad, ENG_GAN_NOISE, grid, err, sizeof err), PST_OK);

    float y[3 * 784], ref[3 * 784];
    eng_model part[2];
    char what[96];
    int rc;
    for (int l = 0; l < 2; l++) {
        wk_infer_run(l ? live : m, z, 3, y);
        eng_gan *g = wk_gan_of(&c, l, part, 64, 1, what, sizeof what, &rc, err, sizeof err);
        assert_non_null(g);
        eng_gan_generate(g, z, 3, ref);
        assert_memory_equal(y, ref, sizeof y);
        /* and not the other generator's */
        const float *other = l ? c.parts[0].ema : c.weights;
        memcpy(eng_net_params(eng_gan_generator(g)), other, sizeof(float) * c.parts[0].total);
        eng_gan_generate(g, z, 3, ref);
        assert_true(memcmp(y, ref, sizeof y) != 0);
        eng_gan_free(&g);
    }
    for (int i = 0; i < 784; i++)
        assert_true(y[i] >= -1.0f && y[i] <= 1.0f);
    wk_infer_free(&m);
    wk_infer_free(&live);
    eng_ckpt_free(&c);
}

typedef struct png_reader {
    const unsigned char *p;
    size_t left;
} png_reader;

static cairo_status_t png_read(void *closure, unsigned char *data, unsigned int len) {
    png_reader *r = closure;
    if (len > r->left)
        return CAIRO_STATUS_READ_ERROR;
    memcpy(data, r->p, len);
    r->p += len;
    r->left -= len;
    return CAIRO_STATUS_SUCCESS;
}

/* The PNG: 8-bit grey (its header), decoded by cairo to lrintf(255 (v - lo) / (hi - lo)),
 * clamped. */
static void png(void **state) {
    (void)state;
    enum { H = 28, W = 28 };
    float img[H * W];
    for (int i = 0; i < H * W; i++)
        img[i] = -1.0f + 2.0f * (float)(i % 97) / 96.0f;
    img[0] = -3.0f;
    img[1] = 2.0f;
    img[2] = 0.0f;
    void *b = NULL;
    size_t len = 0;
    char err[256] = "";
    assert_int_equal(wk_infer_png(img, H, W, -1.0f, 1.0f, &b, &len, err, sizeof err), PST_OK);
    const unsigned char *p = b;
    assert_true(len > 26);
    assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
    assert_int_equal(p[24], 8); /* bits per sample */
    assert_int_equal(p[25], 0); /* grey */
    png_reader r = {p, len};
    cairo_surface_t *s = cairo_image_surface_create_from_png_stream(png_read, &r);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(s), W);
    assert_int_equal(cairo_image_surface_get_height(s), H);
    const unsigned char *data = cairo_image_surface_get_data(s);
    const size_t stride = (size_t)cairo_image_surface_get_stride(s);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint32_t px;
            memcpy(&px, data + (size_t)y * stride + 4 * (size_t)x, 4); /* RGB24: r = g = b */
            float v = (img[y * W + x] + 1.0f) * (255.0f / 2.0f);
            v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
            assert_int_equal(px & 0xff, lrintf(v));
            assert_int_equal(px >> 8 & 0xff, px & 0xff);
        }
    assert_int_equal(data[0], 0);   /* -3: clamped to black */
    assert_int_equal(data[4], 255); /* 2: clamped to white */
    assert_int_equal(data[8], 128); /* 0: 127.5, rounded to even */
    cairo_surface_destroy(s);
    free(b);
    assert_int_equal(wk_infer_png(img, 0, W, -1.0f, 1.0f, &b, &len, err, sizeof err), PST_EARG);
    assert_null(b);
}

/* A checkpoint written by eng_ckpt_write and loaded by wk_infer_load answers as the one in
 * memory (its vocabulary too); a missing file is refused with its name. */
static void round_trip(void **state) {
    (void)state;
    char dir[1024], path[1100], err[512] = "";
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "infer"), 0);
    const char *names[] = {"mnist_cnn", "imdb_lstm", "mnist_gan"};
    for (int k = 0; k < 3; k++) {
        eng_model model;
        build(&model, names[k]);
        eng_ckpt c = {0};
        make_ckpt(&c, &model, 100 + (uint64_t)k, 17 + k, k == 2);
        eng_vocab *v = NULL;
        if (k == 1) {
            const char *t[] = {"good good bad"};
            const size_t l[] = {strlen(t[0])};
            v = eng_vocab_build(t, l, 1);
            c.vocab = wk_vocab_blob(v, &c.vocab_bytes);
        }
        snprintf(path, sizeof path, "%s/%s.h5", dir, names[k]);
        if (eng_ckpt_write(path, &c, &model, err, sizeof err) != PST_OK)
            fail_msg("eng_ckpt_write: %s", err);
        int rc = 1;
        wk_infer *a = from_ckpt(&c, 4, 2, 0);
        wk_infer *b = wk_infer_load(path, 4, 2, 0, &rc, err, sizeof err);
        if (!b)
            fail_msg("wk_infer_load: %s", err);
        assert_int_equal(rc, PST_OK);
        assert_int_equal(wk_infer_signature(b)->version, 17 + k);
        assert_string_equal(wk_infer_signature(b)->model, names[k]);
        const size_t in = wk_infer_signature(a)->in_floats, out = wk_infer_signature(a)->out_floats;
        float *x = tu_random_floats(3 * in, 0.0f, 1.0f, 9);
        if (k == 1) {
            const char *review = "good, bad: good!";
            for (int i = 0; i < 3; i++)
                assert_int_equal(
                    wk_infer_prepare(b, 0, review, strlen(review), x + i * in, err, sizeof err),
                    PST_OK);
            assert_true(x[199] == (float)(1 + 0 + ENG_TEXT_INDEX_FROM)); /* "good": rank 0 */
        }
        float *ya = malloc(sizeof(float) * 3 * out), *yb = malloc(sizeof(float) * 3 * out);
        wk_infer_run(a, x, 3, ya);
        wk_infer_run(b, x, 3, yb);
        assert_memory_equal(ya, yb, sizeof(float) * 3 * out);
        free(x);
        free(ya);
        free(yb);
        wk_infer_free(&a);
        wk_infer_free(&b);
        eng_vocab_free(&v);
        eng_ckpt_free(&c);
    }
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    int rc = PST_OK;
    assert_null(wk_infer_load(path, 4, 1, 0, &rc, err, sizeof err));
    assert_int_equal(rc, PST_EIO);
    assert_non_null(strstr(err, "missing.h5"));
    tu_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signatures), cmocka_unit_test(images), cmocka_unit_test(run_classifier),
        cmocka_unit_test(text),       cmocka_unit_test(gan),    cmocka_unit_test(png),
        cmocka_unit_test(round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
