/* judge.c: mnist_cnn's first six layers (to Dense(128, relu)) as a net of their own for the
 * features, then its last Dense layer and a softmax by hand for the class probabilities.
 * Dropout sits between the two and is the identity in inference, so the split changes
 * nothing. */
#include "engine/judge.h"

#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/score.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JUDGE_MODEL "mnist_cnn"
#define JUDGE_FEATURE_LAYERS 6 /* Conv, Pool, Conv, Pool, Flatten, Dense(128, relu) */

struct eng_judge {
    /* mnist_cnn cut after its Dense(128): a layout that is a prefix of mnist_cnn's, so its
     * parameters are the checkpoint's first floats. The net borrows the model, the model the
     * definition: both live here. */
    eng_model_def def;
    eng_model features;
    eng_net *net;
    int max_batch;
    float *kernel; /* (128, 10): dense_1/kernel */
    float *bias;   /* (10): dense_1/bias */
    float *x;      /* (max_batch, 28, 28, 1): a batch mapped onto [0, 1] */
    float *f;      /* (max_batch, 128): features when the caller wants none */
};

eng_judge *eng_judge_new(const char *path, int max_batch, int threads, char *err, size_t errlen) {
    char file[4096];
    eng_ckpt c = {0};
    eng_judge *j = NULL;
    if (eng_ckpt_resolve(path, file, sizeof file, err, errlen) != PST_OK ||
        eng_ckpt_read(file, &c, err, errlen) != PST_OK)
        return NULL;
    if (strcmp(c.model, JUDGE_MODEL) != 0) {
        pst_err(err, errlen, PST_EARG, "%s: a checkpoint of %s; a judge needs %s", file, c.model,
                JUDGE_MODEL);
        goto fail;
    }
    /* The checkpoint was validated against mnist_cnn's layout: building it cannot fail. */
    eng_model full;
    const eng_model_def *def = eng_model_find(JUDGE_MODEL);
    PST_ASSERT(eng_model_build(&full, def, NULL, 0) == PST_OK, "%s does not build", def->name);
    const int tk = eng_layout_find(&full.layout, "dense_1/kernel");
    const int tb = eng_layout_find(&full.layout, "dense_1/bias");
    PST_ASSERT(tk >= 0 && tb >= 0 &&
                   full.layout.tensors[tk].count == ENG_JUDGE_FEATURES * ENG_JUDGE_CLASSES &&
                   full.layout.tensors[tb].count == ENG_JUDGE_CLASSES,
               "%s: dense_1 kernel %d, bias %d: expected (%d, %d) and (%d)", def->name, tk, tb,
               ENG_JUDGE_FEATURES, ENG_JUDGE_CLASSES, ENG_JUDGE_CLASSES);

    j = pst_calloc(1, sizeof *j);
    j->def = (eng_model_def){.name = "mnist_cnn.features",
                             .dataset = def->dataset,
                             .about = "mnist_cnn up to its Dense(128)",
                             .nclasses = ENG_JUDGE_FEATURES,
                             .nlayers = JUDGE_FEATURE_LAYERS,
                             .layers = def->layers,
                             /* passes of 4 samples, at the same places for any batch
                              * size the judge is made for that is a multiple of 4 (64,
                              * 100): the same products, the same features */
                             .chunk = 4,
                             .parts = NULL};
    PST_ASSERT(eng_model_build(&j->features, &j->def, NULL, 0) == PST_OK, "%s does not build",
               j->def.name);
    for (int t = 0; t < j->features.layout.n; t++) {
        const eng_tensor_info *a = &j->features.layout.tensors[t], *b = &full.layout.tensors[t];
        PST_ASSERT(strcmp(a->name, b->name) == 0 && a->offset == b->offset,
                   "features tensor %d: %s at %zu, mnist_cnn's %s at %zu", t, a->name, a->offset,
                   b->name, b->offset);
    }
    if (!(j->net = eng_net_new(&j->features, max_batch, threads, err, errlen)))
        goto fail;
    j->max_batch = max_batch;
    j->kernel = pst_alloc(sizeof(float) * ENG_JUDGE_FEATURES * ENG_JUDGE_CLASSES);
    j->bias = pst_alloc(sizeof(float) * ENG_JUDGE_CLASSES);
    j->x = pst_alloc(sizeof(float) * (size_t)max_batch * ENG_JUDGE_PIXELS);
    j->f = pst_alloc(sizeof(float) * (size_t)max_batch * ENG_JUDGE_FEATURES);
    memcpy(eng_net_params(j->net), c.weights, sizeof(float) * j->features.layout.total);
    memcpy(j->kernel, c.weights + full.layout.tensors[tk].offset,
           sizeof(float) * full.layout.tensors[tk].count);
    memcpy(j->bias, c.weights + full.layout.tensors[tb].offset,
           sizeof(float) * full.layout.tensors[tb].count);
    eng_ckpt_free(&c);
    return j;
fail:
    eng_ckpt_free(&c);
    eng_judge_free(&j);
    return NULL;
}

void eng_judge_free(eng_judge **pj) {
    if (!pj || !*pj)
        return;
    eng_judge *j = *pj;
    eng_net_free(&j->net);
    pst_free(j->kernel);
    pst_free(j->bias);
    pst_free(j->x);
    pst_free(j->f);
    free(j);
    *pj = NULL;
}

/* probs (B, 10) <- softmax(f (B, 128) kernel + bias), each row shifted by its largest logit
 * so that exp cannot overflow. */
static void classify(const eng_judge *j, const float *f, int B, float *probs) {
    const int C = ENG_JUDGE_CLASSES;
    for (int i = 0; i < B; i++)
        memcpy(probs + (size_t)i * C, j->bias, sizeof(float) * C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, C, ENG_JUDGE_FEATURES, 1.0f, f,
                ENG_JUDGE_FEATURES, j->kernel, C, 1.0f, probs, C);
    for (int i = 0; i < B; i++) {
        float *p = probs + (size_t)i * C, top = p[0], sum = 0.0f;
        for (int k = 1; k < C; k++)
            top = p[k] > top ? p[k] : top;
        for (int k = 0; k < C; k++) {
            p[k] = expf(p[k] - top);
            sum += p[k];
        }
        for (int k = 0; k < C; k++)
            p[k] /= sum;
    }
}

void eng_judge_run(eng_judge *j, const float *images, size_t n, float lo, float hi, float *probs,
                   float *feats) {
    PST_ASSERT(hi > lo, "judge: image range [%g, %g] is empty", lo, hi);
    const float scale = 1.0f / (hi - lo);
    for (size_t done = 0; done < n && (probs || feats);) {
        const int B = n - done < (size_t)j->max_batch ? (int)(n - done) : j->max_batch;
        const float *in = images + done * ENG_JUDGE_PIXELS;
        for (size_t i = 0; i < (size_t)B * ENG_JUDGE_PIXELS; i++)
            j->x[i] = (in[i] - lo) * scale;
        float *f = feats ? feats + done * ENG_JUDGE_FEATURES : j->f;
        eng_net_predict(j->net, j->x, B, f);
        if (probs)
            classify(j, f, B, probs + done * ENG_JUDGE_CLASSES);
        done += (size_t)B;
    }
}

int eng_judge_scores(eng_judge *j, const float *images, size_t n, float lo, float hi,
                     const float *real_feats, size_t nr, double *inception, double *frechet,
                     char *err, size_t errlen) {
    if (n < 1 || (frechet && (n < 2 || nr < 2)))
        return pst_err(err, errlen, PST_EARG,
                       "judge: %zu images and %zu rows of real features, expected at least 1 "
                       "image, and 2 of each for a Fréchet distance",
                       n, nr);
    float *probs = pst_alloc(sizeof(float) * n * ENG_JUDGE_CLASSES);
    float *feats = frechet ? pst_alloc(sizeof(float) * n * ENG_JUDGE_FEATURES) : NULL;
    int rc = PST_OK;
    eng_judge_run(j, images, n, lo, hi, probs, feats);
    double fd = 0.0;
    if (frechet && (rc = eng_score_frechet(feats, n, real_feats, nr, ENG_JUDGE_FEATURES, &fd, err,
                                           errlen)) != PST_OK)
        goto done;
    *inception = eng_score_inception(probs, n, ENG_JUDGE_CLASSES);
    if (frechet)
        *frechet = fd;
done:
    pst_free(probs);
    pst_free(feats);
    return rc;
}
