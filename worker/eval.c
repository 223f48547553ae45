/* eval.c: evaluating and drawing from a checkpoint in one process. */
#include "worker/eval.h"

#include "engine/base/base.h"
#include "engine/gan.h"
#include "engine/judge.h"
#include "engine/net.h"
#include "engine/pool.h"
#include "engine/rng.h"
#include "engine/score.h"
#include "worker/ckpt/record.h"
#include "worker/gan_outputs.h"
#include "worker/report/grid.h"
#include "worker/stream.h"
#include "worker/task.h"
#include "worker/vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int threads_of(const wk_opts *o) {
    return o->threads > 0 ? (int)o->threads : eng_pool_cpus();
}

static int eval_classifier(const wk_opts *o, const char *path, const eng_ckpt *c, char *err,
                           size_t errlen) {
    if (o->judge[0])
        return pst_err(err, errlen, PST_EARG,
                       "--judge: %s is a checkpoint of %s; a judge scores a GAN's digits", path,
                       c->model);
    eng_model model;
    wk_stream data = {0};
    int rc = eng_model_build(&model, eng_model_find(c->model), err, errlen);
    if (rc == PST_OK)
        rc = wk_opts_conv(o, &model, err, errlen);
    if (rc != PST_OK)
        return rc;
    const int chunk = 128;
    wk_text text;
    const int is_text = wk_text_of(&model, &text);
    eng_vocab *vocab_in = NULL;
    if (is_text && c->vocab &&
        !(vocab_in = wk_vocab_from_blob(c->vocab, c->vocab_bytes, err, errlen)))
        return PST_EFORMAT;
    text.vocab_in = vocab_in;
    text.vocab_out = NULL;
    const wk_run_record rec = wk_record_of(c);
    rc = wk_stream_open(&data, o->data, model.def->dataset, is_text ? &text : NULL, rec.val_split,
                        0, 1, (uint64_t)rec.seed, chunk, err, errlen);
    eng_vocab_free(&vocab_in);
    if (rc != PST_OK)
        return rc;
    eng_net *net = eng_net_new(&model, chunk, threads_of(o), err, errlen);
    if (!net) {
        wk_stream_close(&data);
        return PST_EARG;
    }
    float *x = pst_alloc(sizeof(float) * (size_t)chunk * eng_shape_size(model.input));
    uint8_t *labels = pst_alloc((size_t)chunk);
    memcpy(eng_net_params(net), c->weights, sizeof(float) * model.layout.total);
    double loss = 0.0, accuracy = 0.0;
    const double t0 = pst_now();
    wk_evaluate(net, NULL, &data.data.test, chunk, x, labels, &loss, &accuracy, err, errlen);
    const double secs = pst_now() - t0;
    /* The forward pass's speed, loading aside: what `pstrain serve` is measured against. */
    printf(
        "%s at step %lld: test_loss: %.4f - test_accuracy: %.4f (%lld samples, %.0f samples/s)\n",
        c->model, (long long)rec.step, loss, accuracy, (long long)data.data.test.n,
        secs > 0.0 ? (double)data.data.test.n / secs : 0.0);
    pst_free(x);
    pst_free(labels);
    eng_net_free(&net);
    wk_stream_close(&data);
    return PST_OK;
}

int wk_sample(const wk_opts *o, const eng_ckpt *c, int n, int live, const char *out, char *err,
              size_t errlen) {
    const eng_model_def *def = eng_model_find(c->model);
    if (!def->parts)
        return pst_err(err, errlen, PST_EARG, "%s: a checkpoint of %s; sample needs a GAN's", out,
                       c->model);
    eng_model part[2];
    int rc;
    char what[96];
    eng_gan *gan = wk_gan_of(c, live, part, n < 64 ? n : 64, eng_pool_cpus(), what, sizeof what,
                             &rc, err, errlen);
    if (!gan)
        return rc;
    float *z = pst_malloc(sizeof(float) * (size_t)n * ENG_GAN_NOISE);
    float *images = pst_malloc(sizeof(float) * (size_t)n * eng_shape_size(part[0].output));
    eng_gan_noise(z, n, 0, eng_hash3((uint64_t)o->seed, WK_GAN_KEY_GRID, 0));
    eng_gan_generate(gan, z, (size_t)n, images);
    rc = wk_grid_png("out", out, images, n, part[0].output.h, part[0].output.w, 0, -1.0f, 1.0f, err,
                     errlen);
    if (rc == PST_OK)
        printf("%s: %d digits from %s at step %lld (noise seed %lld), %s\n", out, n, c->model,
               (long long)wk_record_of(c).step, (long long)o->seed, what);
    free(z);
    free(images);
    eng_gan_free(&gan);
    return rc;
}

/* What makes up an Inception Score of probs (n, 10): the entropy of p(y) (ln 10 when the
 * digits are spread evenly) less the mean entropy of p(y|x) (0 when the judge is sure of
 * every digit), and the share of each class among the judge's answers, so that a low score
 * says whether digits are missing or unclear. */
static void print_classes(const float *probs, size_t n) {
    double py[ENG_JUDGE_CLASSES] = {0}, share[ENG_JUDGE_CLASSES] = {0}, h_cond = 0.0, h_marg = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * ENG_JUDGE_CLASSES;
        int best = 0;
        for (int k = 0; k < ENG_JUDGE_CLASSES; k++) {
            py[k] += p[k];
            if (p[k] > 0.0f)
                h_cond -= p[k] * log(p[k]);
            if (p[k] > p[best])
                best = k;
        }
        share[best] += 1.0;
    }
    for (int k = 0; k < ENG_JUDGE_CLASSES; k++)
        if (py[k] > 0.0)
            h_marg -= py[k] / (double)n * log(py[k] / (double)n);
    printf("  entropy of p(y) %.4f nats (ln 10 = 2.3026), mean entropy of p(y|x) %.4f\n  "
           "the judge's answers:",
           h_marg, h_cond / (double)n);
    for (int k = 0; k < ENG_JUDGE_CLASSES; k++)
        printf(" %d: %.1f%%", k, 100.0 * share[k] / (double)n);
    printf("\n");
}

static int eval_gan(const wk_opts *o, const char *path, const eng_ckpt *c, int live, char *err,
                    size_t errlen) {
    if (!o->judge[0])
        return pst_err(err, errlen, PST_EARG,
                       "%s: a checkpoint of %s, which has no test accuracy: score it with "
                       "--judge FILE|DIR (an mnist_cnn checkpoint), or draw it with pstrain sample",
                       path, c->model);
    const int threads = threads_of(o);
    eng_model part[2];
    wk_gan_outputs out = {0};
    int rc;
    char what[96];
    eng_gan *gan = wk_gan_of(c, live, part, 256, threads, what, sizeof what, &rc, err, errlen);
    if (!gan)
        return rc;
    if ((rc = wk_gan_outputs_init(&out, o, threads, err, errlen)) == PST_OK) {
        float *probs = pst_malloc(sizeof(float) * out.judge_n * ENG_JUDGE_CLASSES);
        float *feats = pst_malloc(sizeof(float) * out.judge_n * ENG_JUDGE_FEATURES);
        eng_gan_generate(gan, out.judge_z, out.judge_n, out.judged);
        eng_judge_run(out.judge, out.judged, out.judge_n, -1.0f, 1.0f, probs, feats);
        double frechet;
        if ((rc = eng_score_frechet(feats, out.judge_n, out.real_feats, out.real_n,
                                    ENG_JUDGE_FEATURES, &frechet, err, errlen)) == PST_OK) {
            printf("%s at step %lld, %s\n", c->model, (long long)wk_record_of(c).step, what);
            printf("%zu digits (noise seed %lld): inception_score %.3f, frechet %.3f\n",
                   out.judge_n, (long long)o->seed,
                   eng_score_inception(probs, out.judge_n, ENG_JUDGE_CLASSES), frechet);
            print_classes(probs, out.judge_n);
        }
        free(probs);
        free(feats);
    }
    eng_gan_free(&gan);
    wk_gan_outputs_free(&out);
    return rc;
}

int wk_eval(const wk_opts *o, const char *path, const eng_ckpt *c, int live, char *err,
            size_t errlen) {
    return eng_model_find(c->model)->parts ? eval_gan(o, path, c, live, err, errlen)
                                           : eval_classifier(o, path, c, err, errlen);
}
