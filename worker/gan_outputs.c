/* gan_outputs.c: a GAN run's grids and scores. */
#include "worker/gan_outputs.h"

#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/dataset.h"
#include "engine/rng.h"
#include "engine/score.h"
#include "worker/paths.h"
#include "worker/report/grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wk_gan_outputs_free(wk_gan_outputs *out) {
    eng_judge_free(&out->judge);
    free(out->grid_z);
    free(out->grid);
    free(out->judge_z);
    free(out->judged);
    free(out->real_feats);
    free(out->live);
}

int wk_gan_outputs_init(wk_gan_outputs *out, const wk_opts *o, int threads, char *err,
                        size_t errlen) {
    memset(out, 0, sizeof *out);
    out->samples_dir = o->samples;
    if (o->samples[0]) {
        int rc = wk_mkdirs("samples", o->samples, err, errlen);
        if (rc != PST_OK)
            return rc;
        out->grid_z = pst_malloc(sizeof(float) * WK_GAN_GRID_N * ENG_GAN_NOISE);
        out->grid = pst_malloc(sizeof(float) * WK_GAN_GRID_N * 28 * 28);
        eng_gan_noise(out->grid_z, WK_GAN_GRID_N, 0,
                      eng_hash3((uint64_t)o->seed, WK_GAN_KEY_GRID, 0));
    }
    if (!o->judge[0])
        return PST_OK;
    char why[1024];
    if (!(out->judge = eng_judge_new(o->judge, 256, threads, why, sizeof why)))
        return pst_err(err, errlen, PST_EFORMAT, "--judge: %s", why);
    eng_split real;
    int rc = eng_split_load_idx(&real, o->data, "mnist", 0.0, 0, 1, why, sizeof why);
    if (rc != PST_OK)
        return pst_err(err, errlen, rc, "--judge: the real test images: %s", why);
    const eng_dataset *test = &real.test;
    out->real_n = (size_t)test->n;
    out->judge_n = (size_t)o->judge_n;
    float *images = pst_malloc(sizeof(float) * out->real_n * 28 * 28);
    float *probs = pst_malloc(sizeof(float) * out->real_n * 10);
    out->real_feats = pst_malloc(sizeof(float) * out->real_n * ENG_JUDGE_FEATURES);
    out->judge_z = pst_malloc(sizeof(float) * out->judge_n * ENG_GAN_NOISE);
    out->judged = pst_malloc(sizeof(float) * out->judge_n * 28 * 28);
    uint8_t *labels = pst_malloc(out->real_n);
    eng_dataset_slice(test, 0, (int)test->n, images, labels);
    eng_judge_run(out->judge, images, out->real_n, 0.0f, 1.0f, probs, out->real_feats);
    printf("judge %s: the %zu MNIST test images score inception_score %.3f\n", o->judge,
           out->real_n, eng_score_inception(probs, out->real_n, 10));
    eng_gan_noise(out->judge_z, (int)out->judge_n, 0,
                  eng_hash3((uint64_t)o->seed, WK_GAN_KEY_JUDGE, 0));
    free(labels);
    free(probs);
    free(images);
    eng_split_deinit(&real);
    return rc;
}

int wk_gan_outputs_score(wk_gan_outputs *out, eng_gan *gan, double *inception, double *frechet,
                         char *err, size_t errlen) {
    eng_gan_generate(gan, out->judge_z, out->judge_n, out->judged);
    return eng_judge_scores(out->judge, out->judged, out->judge_n, -1.0f, 1.0f, out->real_feats,
                            out->real_n, inception, frechet, err, errlen);
}

int wk_gan_outputs_epoch(wk_gan_outputs *out, eng_gan *gan, const float *ema, size_t gen_total,
                         int64_t epoch, wk_gan_report *r, char *err, size_t errlen) {
    const double t0 = pst_now();
    float *params = eng_net_params(eng_gan_generator(gan));
    int rc = PST_OK;
    if (ema && out->judge)
        rc = wk_gan_outputs_score(out, gan, &r->live_inception, &r->live_frechet, err, errlen);
    const int swap = ema && rc == PST_OK;
    if (swap) {
        if (!out->live)
            out->live = pst_malloc(sizeof(float) * gen_total);
        memcpy(out->live, params, sizeof(float) * gen_total);
        memcpy(params, ema, sizeof(float) * gen_total);
    }
    if (rc == PST_OK && out->samples_dir[0]) {
        char path[WK_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/epoch-%lld.png", out->samples_dir, (long long)epoch);
        eng_gan_generate(gan, out->grid_z, WK_GAN_GRID_N, out->grid);
        rc = wk_grid_png("samples", path, out->grid, WK_GAN_GRID_N, 28, 28, 0, -1.0f, 1.0f, err,
                         errlen);
    }
    if (rc == PST_OK && out->judge)
        rc = wk_gan_outputs_score(out, gan, &r->inception, &r->frechet, err, errlen);
    if (swap)
        memcpy(params, out->live, sizeof(float) * gen_total);
    r->score_seconds = pst_now() - t0;
    return rc;
}

/* Which of checkpoint c's generators to draw with: the moving average, when c keeps one and
 * not live, or the generator's own weights; *what says which, for a person. */
const float *wk_generator_of(const eng_ckpt *c, int live, char *what, size_t len) {
    const eng_ckpt_part *gen = &c->parts[0];
    if (gen->ema && !live) {
        snprintf(what, len, "the moving average of the generator (decay %g)", gen->ema_decay);
        return gen->ema;
    }
    snprintf(what, len, "the generator's own weights%s",
             gen->ema ? "" : " (the checkpoint keeps no moving average)");
    return c->weights + gen->offset;
}

/* The GAN of checkpoint c with the generator asked for (*what says which), for up to
 * max_batch images a call on `threads` threads; part receives the two networks' models and
 * must outlive it. NULL with err and *rc when it cannot be built. */
eng_gan *wk_gan_of(const eng_ckpt *c, int live, eng_model part[2], int max_batch, int threads,
                   char *what, size_t whatlen, int *rc, char *err, size_t errlen) {
    eng_model model;
    if ((*rc = eng_model_build(&model, eng_model_find(c->model), err, errlen)) != PST_OK)
        return NULL;
    eng_model_part(&model, 0, &part[0]);
    eng_model_part(&model, 1, &part[1]);
    eng_gan *gan = eng_gan_new(&part[0], &part[1], max_batch, threads, err, errlen);
    if (!gan) {
        *rc = PST_EARG;
        return NULL;
    }
    memcpy(eng_net_params(eng_gan_generator(gan)), wk_generator_of(c, live, what, whatlen),
           sizeof(float) * part[0].layout.total);
    return gan;
}
