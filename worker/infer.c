/* infer.c: a checkpoint made callable (worker/infer.h): the model built as eval builds it, its
 * signature, one sample's input checked and converted as training converts its data, and the
 * forward pass with the output's activation. Not here: HTTP, JSON, batching of requests. */
#include "worker/infer.h"

#include "engine/base/base.h"
#include "engine/gan.h"
#include "engine/loss.h"
#include "engine/net.h"
#include "engine/rng.h"
#include "engine/text.h"
#include "worker/ckpt/record.h"
#include "worker/gan_outputs.h"
#include "worker/opts.h"
#include "worker/report/grid.h"
#include "worker/vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH_LIMIT 4096 /* --max-batch's bound: a pass's activations stay in memory */

typedef enum infer_kind { INFER_IMAGES, INFER_TEXT, INFER_GAN } infer_kind;

struct wk_infer {
    wk_infer_sig sig;
    infer_kind kind;
    int max_batch;
    eng_model model;   /* the nets borrow these: the struct is never moved */
    eng_model part[2]; /* a GAN's generator and discriminator */
    eng_net *net;      /* a classifier */
    eng_gan *gan;      /* a GAN */
    int sigmoid;       /* one output unit: P(positive), else a softmax over the units */
    wk_text text;      /* INFER_TEXT: num_words, maxlen */
    eng_vocab *vocab;  /* INFER_TEXT: the checkpoint's (empty for a blank model) */
};

const char *wk_dtype_name(wk_dtype t) {
    switch (t) {
    case WK_FP32:
        return "FP32";
    case WK_UINT8:
        return "UINT8";
    case WK_INT64:
        return "INT64";
    case WK_BYTES:
        return "BYTES";
    }
    return "?";
}

static wk_infer_io io_of(const char *name, wk_dtype dtype, int rank, int64_t d0, int64_t d1,
                         int64_t d2) {
    return (wk_infer_io){.name = name, .dtype = dtype, .rank = rank, .dims = {d0, d1, d2}};
}

static size_t io_count(const wk_infer_io *io) {
    size_t n = 1;
    for (int i = 0; i < io->rank; i++)
        n *= (size_t)io->dims[i];
    return n;
}

/* The signature of infer.h's table for m's kind. */
static void sig_fill(wk_infer *m) {
    wk_infer_sig *s = &m->sig;
    const eng_shape in = m->model.input;
    switch (m->kind) {
    case INFER_IMAGES:
        s->ninputs = 2;
        s->inputs[0] = io_of("images", WK_FP32, 3, in.h, in.w, in.c);
        s->inputs[1] = io_of("pixels", WK_UINT8, 3, in.h, in.w, in.c);
        break;
    case INFER_TEXT:
        s->ninputs = 2;
        s->inputs[0] = io_of("text", WK_BYTES, 0, 0, 0, 0);
        s->inputs[1] = io_of("tokens", WK_INT64, 1, m->text.maxlen, 0, 0);
        break;
    case INFER_GAN: {
        const eng_shape out = m->part[0].output;
        s->ninputs = 2;
        s->inputs[0] = io_of("seed", WK_INT64, 0, 0, 0, 0);
        s->inputs[1] = io_of("z", WK_FP32, 1, ENG_GAN_NOISE, 0, 0);
        s->noutputs = 2;
        s->outputs[0] = io_of("images", WK_FP32, 3, out.h, out.w, out.c);
        s->outputs[1] = io_of("png", WK_BYTES, 0, 0, 0, 0);
        s->in_floats = ENG_GAN_NOISE;
        s->out_floats = eng_shape_size(out);
        return;
    }
    }
    /* a classifier: P(positive) from one unit, else a probability per class */
    const size_t units = eng_shape_size(m->model.output);
    s->noutputs = 1;
    s->outputs[0] = m->sigmoid ? io_of("probability", WK_FP32, 1, 1, 0, 0)
                               : io_of("probabilities", WK_FP32, 1, (int64_t)units, 0, 0);
    s->in_floats = eng_shape_size(in);
    s->out_floats = units;
}

/* The model of checkpoint c (weights and vocabulary; NULL: zero weights, no vocabulary), at
 * version. */
static wk_infer *infer_make(const char *model, const eng_ckpt *c, int64_t version, int max_batch,
                            int threads, int live, char *err, size_t errlen) {
    const eng_model_def *def = eng_model_find(model);
    if (!def) {
        pst_err(err, errlen, PST_EARG, "model %s: not a model this pstrain has", model);
        return NULL;
    }
    if (max_batch < 1 || max_batch > MAX_BATCH_LIMIT) {
        pst_err(err, errlen, PST_EARG, "max-batch: expected 1 to %d samples, got %d",
                MAX_BATCH_LIMIT, max_batch);
        return NULL;
    }
    if (threads < 1) {
        pst_err(err, errlen, PST_EARG, "threads: expected at least 1, got %d", threads);
        return NULL;
    }
    wk_infer *m = pst_calloc(1, sizeof *m);
    m->max_batch = max_batch;
    snprintf(m->sig.model, sizeof m->sig.model, "%s", def->name);
    m->sig.version = version;
    if (eng_model_build(&m->model, def, err, errlen) != PST_OK)
        goto fail;
    if (def->parts) {
        /* Generation runs in passes of ENG_GAN_PASS whatever the batch: a GAN made for batches
         * of 1 holds its generator's pass and no discriminator memory it would never use. */
        m->kind = INFER_GAN;
        char what[96];
        int rc;
        if (c) {
            m->gan = wk_gan_of(c, live, m->part, 1, threads, what, sizeof what, &rc, err, errlen);
        } else {
            eng_model_part(&m->model, 0, &m->part[0]);
            eng_model_part(&m->model, 1, &m->part[1]);
            m->gan = eng_gan_new(&m->part[0], &m->part[1], 1, threads, err, errlen);
        }
        if (!m->gan)
            goto fail;
    } else {
        m->kind = wk_text_of(&m->model, &m->text) ? INFER_TEXT : INFER_IMAGES;
        m->sigmoid = eng_shape_size(m->model.output) == 1;
        if (!(m->net = eng_net_new(&m->model, max_batch, threads, err, errlen)))
            goto fail;
        if (c)
            memcpy(eng_net_params(m->net), c->weights, sizeof(float) * m->model.layout.total);
        if (m->kind == INFER_TEXT) {
            if (c && c->vocab) {
                if (!(m->vocab = wk_vocab_from_blob(c->vocab, c->vocab_bytes, err, errlen)))
                    goto fail;
            } else {
                m->vocab = eng_vocab_build(NULL, NULL, 0);
            }
        }
    }
    sig_fill(m);
    return m;
fail:
    wk_infer_free(&m);
    return NULL;
}

wk_infer *wk_infer_new(const eng_ckpt *c, int max_batch, int threads, int live, char *err,
                       size_t errlen) {
    wk_run_record rec;
    if (wk_record_get(c, &rec, err, errlen) != PST_OK)
        return NULL;
    return infer_make(c->model, c, rec.step, max_batch, threads, live, err, errlen);
}

wk_infer *wk_infer_load(const char *path, int max_batch, int threads, int live, int *rc, char *err,
                        size_t errlen) {
    char file[WK_PATH_MAX];
    eng_ckpt c = {0};
    wk_infer *m = NULL;
    int code = eng_ckpt_resolve(path, file, sizeof file, err, errlen);
    if (code == PST_OK)
        code = wk_record_read(file, &c, NULL, err, errlen);
    if (code == PST_OK) {
        char why[512] = "";
        if (!(m = wk_infer_new(&c, max_batch, threads, live, why, sizeof why)))
            code = pst_err(err, errlen, PST_EARG, "%s: %s", file, why);
    }
    eng_ckpt_free(&c);
    if (rc)
        *rc = code;
    return m;
}

wk_infer *wk_infer_blank(const char *model, int max_batch, int threads, char *err, size_t errlen) {
    return infer_make(model, NULL, 0, max_batch, threads, 0, err, errlen);
}

void wk_infer_free(wk_infer **m) {
    if (!m || !*m)
        return;
    eng_net_free(&(*m)->net);
    eng_gan_free(&(*m)->gan);
    eng_vocab_free(&(*m)->vocab);
    free(*m);
    *m = NULL;
}

const wk_infer_sig *wk_infer_signature(const wk_infer *m) { return &m->sig; }

int wk_infer_max_batch(const wk_infer *m) { return m->max_batch; }

static int prepare_floats(const wk_infer *m, const wk_infer_io *io, const float *v, size_t n,
                          float *x, char *err, size_t errlen) {
    const size_t want = io_count(io);
    if (n != want)
        return pst_err(err, errlen, PST_EARG, "expected %zu values, got %zu", want, n);
    const int unit = m->kind == INFER_IMAGES; /* images are in [0, 1]; z any finite value */
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return pst_err(err, errlen, PST_EARG, "value %zu is %.9g: expected a finite number", i,
                           (double)v[i]);
        if (unit && !(v[i] >= 0.0f && v[i] <= 1.0f))
            return pst_err(err, errlen, PST_EARG, "value %zu is %.9g: expected a number in [0, 1]",
                           i, (double)v[i]);
    }
    memcpy(x, v, sizeof(float) * n);
    return PST_OK;
}

static int prepare_pixels(const wk_infer_io *io, const uint8_t *px, size_t n, float *x, char *err,
                          size_t errlen) {
    const size_t want = io_count(io);
    if (n != want)
        return pst_err(err, errlen, PST_EARG, "expected %zu values, got %zu", want, n);
    for (size_t j = 0; j < n; j++)
        x[j] = (float)px[j] / 255.0f; /* as engine/dataset.c converts the data sets */
    return PST_OK;
}

/* Token ids as given, padded (ENG_TEXT_PAD) or cut in front to maxlen as pad_sequences. */
static int prepare_tokens(const wk_infer *m, const int64_t *t, size_t n, float *x, char *err,
                          size_t errlen) {
    const size_t maxlen = (size_t)m->text.maxlen;
    if (n < 1)
        return pst_err(err, errlen, PST_EARG, "expected at least 1 token id, got 0");
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= m->text.num_words)
            return pst_err(err, errlen, PST_EARG,
                           "value %zu is %lld: expected a token id in [0, %d)", i, (long long)t[i],
                           m->text.num_words);
    const size_t keep = n < maxlen ? n : maxlen, pad = maxlen - keep;
    for (size_t j = 0; j < pad; j++)
        x[j] = (float)ENG_TEXT_PAD;
    for (size_t j = 0; j < keep; j++)
        x[pad + j] = (float)t[n - keep + j];
    return PST_OK;
}

/* The longest sequence a text model may take: its tokens are encoded on the stack (a request's
 * path allocates nothing it can avoid). */
#define INFER_MAX_SEQ 4096

static void prepare_text(const wk_infer *m, const char *text, size_t n, float *x) {
    uint16_t seq[INFER_MAX_SEQ];
    PST_ASSERT(m->text.maxlen <= INFER_MAX_SEQ, "maxlen %d > %d", m->text.maxlen, INFER_MAX_SEQ);
    eng_vocab_encode(m->vocab, text, n, m->text.num_words, m->text.maxlen, seq);
    for (int j = 0; j < m->text.maxlen; j++)
        x[j] = (float)seq[j]; /* as engine/dataset.c feeds token ids to an Embedding */
}

int wk_infer_prepare(const wk_infer *m, int input, const void *value, size_t n, float *x, char *err,
                     size_t errlen) {
    PST_ASSERT(input >= 0 && input < m->sig.ninputs, "input %d of %d", input, m->sig.ninputs);
    const wk_infer_io *io = &m->sig.inputs[input];
    switch (io->dtype) {
    case WK_FP32:
        return prepare_floats(m, io, value, n, x, err, errlen);
    case WK_UINT8:
        return prepare_pixels(io, value, n, x, err, errlen);
    case WK_INT64:
        if (m->kind == INFER_TEXT)
            return prepare_tokens(m, value, n, x, err, errlen);
        if (n != 1)
            return pst_err(err, errlen, PST_EARG, "expected 1 value (a seed), got %zu", n);
        /* sample 0 of `pstrain sample --seed S`'s noise: its first digit */
        eng_gan_noise(x, 1, 0, eng_hash3((uint64_t) * (const int64_t *)value, WK_GAN_KEY_GRID, 0));
        return PST_OK;
    case WK_BYTES:
        prepare_text(m, value, n, x);
        return PST_OK;
    }
    return pst_err(err, errlen, PST_EARG, "input %s: no conversion", io->name);
}

void wk_infer_run(wk_infer *m, const float *x, int B, float *y) {
    PST_ASSERT(B >= 1 && B <= m->max_batch, "a batch of %d samples, max_batch %d", B, m->max_batch);
    if (m->gan) {
        eng_gan_generate(m->gan, x, (size_t)B, y);
        return;
    }
    eng_net_predict(m->net, x, B, y);
    if (m->sigmoid)
        eng_sigmoid(y, y, B);
    else
        eng_softmax(y, y, B, (int)m->sig.out_floats);
}

int wk_infer_png(const float *image, int h, int w, float lo, float hi, void **png, size_t *len,
                 char *err, size_t errlen) {
    return wk_image_png(image, h, w, lo, hi, png, len, err, errlen);
}
