/* gan.c: a GAN's training step over two nets. */
#include "engine/gan.h"

#include "engine/base/base.h"
#include "engine/rng.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int num_threads); /* as net.c declares it */

struct eng_gan {
    eng_net *gen, *disc;
    int max_batch, threads;
    int64_t sample_base;
    size_t image; /* floats per image: the generator's output, the discriminator's input */
    float *z;     /* (max_batch, ENG_GAN_NOISE) */
    float *fake;  /* (max_batch, image) */
    float *dfake; /* (max_batch, image): g_loss's gradient with respect to fake */
    float *dreal; /* (discriminator floats): d_loss's real half, while the fake half runs */
    float *pass_z, *pass_img; /* (ENG_GAN_PASS, ...): eng_gan_generate's padded last pass */
    uint8_t *ones, *zeros;
};

eng_gan *eng_gan_new(const eng_model *gen, const eng_model *disc, int max_batch, int threads,
                     char *err, size_t errlen) {
    const size_t image = eng_shape_size(gen->output);
    if (image != eng_shape_size(disc->input) || eng_shape_size(gen->input) != ENG_GAN_NOISE) {
        pst_err(err, errlen, PST_EARG,
                "gan: %s maps %zu values to %zu, but %s takes %zu: expected %d noise values "
                "and equal image sizes",
                gen->def->name, eng_shape_size(gen->input), image, disc->def->name,
                eng_shape_size(disc->input), ENG_GAN_NOISE);
        return NULL;
    }
    eng_gan *g = pst_calloc(1, sizeof *g);
    g->max_batch = max_batch;
    g->threads = threads;
    g->image = image;
    /* Training passes max_batch rows at most, generation ENG_GAN_PASS: a whole-batch net's
     * passes are the batch it is given, so the larger size leaves training's shapes as they
     * are. */
    const int gen_batch = max_batch > ENG_GAN_PASS ? max_batch : ENG_GAN_PASS;
    if (!(g->gen = eng_net_new(gen, gen_batch, 1, err, errlen)) ||
        !(g->disc = eng_net_new(disc, max_batch, threads, err, errlen))) {
        eng_gan_free(&g);
        return NULL;
    }
    const size_t B = (size_t)(max_batch > 0 ? max_batch : 1);
    g->z = pst_alloc(sizeof(float) * B * ENG_GAN_NOISE);
    g->fake = pst_alloc(sizeof(float) * B * image);
    g->dfake = pst_alloc(sizeof(float) * B * image);
    g->dreal = pst_alloc(sizeof(float) * disc->layout.total);
    g->ones = pst_malloc(B);
    g->zeros = pst_calloc(B, 1);
    g->pass_z = pst_alloc(sizeof(float) * ENG_GAN_PASS * ENG_GAN_NOISE);
    g->pass_img = pst_alloc(sizeof(float) * ENG_GAN_PASS * image);
    memset(g->ones, 1, B);
    return g;
}

void eng_gan_free(eng_gan **pg) {
    if (!pg || !*pg)
        return;
    eng_gan *g = *pg;
    eng_net_free(&g->gen);
    eng_net_free(&g->disc);
    pst_free(g->z);
    pst_free(g->fake);
    pst_free(g->dfake);
    pst_free(g->dreal);
    pst_free(g->pass_z);
    pst_free(g->pass_img);
    free(g->ones);
    free(g->zeros);
    free(g);
    *pg = NULL;
}

eng_net *eng_gan_generator(eng_gan *g) { return g->gen; }
eng_net *eng_gan_discriminator(eng_gan *g) { return g->disc; }

void eng_gan_set_sample_base(eng_gan *g, int64_t base) {
    g->sample_base = base;
    eng_net_set_sample_base(g->disc, base);
}

void eng_gan_noise(float *z, int B, int64_t sample0, uint64_t key) {
    for (int i = 0; i < B; i++) {
        eng_rng r;
        eng_rng_seed(&r, eng_hash3(key, (uint64_t)(sample0 + i), 0x4E4F495345ull));
        for (int j = 0; j < ENG_GAN_NOISE; j++)
            z[(size_t)i * ENG_GAN_NOISE + j] = (float)eng_rng_normal(&r);
    }
}

/* The generator is one pass on one thread: its sgemms get the cores. The discriminator's
 * net threads each call single-threaded sgemms. */
static void blas_for_generator(const eng_gan *g, int on) {
    openblas_set_num_threads(on ? g->threads : 1);
}

void eng_gan_step(eng_gan *g, const float *real, int B, uint64_t key, eng_gan_stats *st) {
    PST_ASSERT(B >= 1 && B <= g->max_batch, "gan: batch %d outside 1..%d", B, g->max_batch);
    const uint64_t key_real = eng_hash3(key, 1, 0x47414E), key_fake = eng_hash3(key, 2, 0x47414E);
    eng_gan_noise(g->z, B, g->sample_base, key);
    blas_for_generator(g, 1);
    eng_net_forward(g->gen, g->z, B, 1, key, g->fake);
    blas_for_generator(g, 0);

    /* g_loss's gradient at fake, through D on the masks d_loss's fake half uses; D's own
     * gradient of it is dropped (overwritten below). */
    eng_batch_stats sg = {0}, sr = {0}, sf = {0};
    eng_net_train_step_dx(g->disc, g->fake, g->ones, B, key_fake, &sg, g->dfake);
    /* d_loss = BCE(1, D(x)) + BCE(0, D(fake)): the two halves' gradients added */
    const size_t nd = eng_net_model(g->disc)->layout.total;
    float *dgrads = eng_net_grads(g->disc);
    eng_net_train_step(g->disc, real, g->ones, B, key_real, &sr);
    memcpy(g->dreal, dgrads, sizeof(float) * nd);
    eng_net_train_step(g->disc, g->fake, g->zeros, B, key_fake, &sf);
    cblas_saxpy((int)nd, 1.0f, g->dreal, 1, dgrads, 1);

    blas_for_generator(g, 1);
    eng_net_backward(g->gen, g->dfake, NULL);
    blas_for_generator(g, 0);

    st->d_loss_sum += sr.loss_sum + sf.loss_sum;
    st->g_loss_sum += sg.loss_sum;
    st->d_correct += sr.correct + sf.correct;
    st->count += B;
}

void eng_gan_generate(eng_gan *g, const float *z, size_t n, float *images) {
    blas_for_generator(g, 1);
    for (size_t done = 0; done < n; done += ENG_GAN_PASS) {
        const size_t b = n - done < ENG_GAN_PASS ? n - done : ENG_GAN_PASS;
        if (b == ENG_GAN_PASS) {
            eng_net_forward(g->gen, z + done * ENG_GAN_NOISE, ENG_GAN_PASS, 0, 0,
                            images + done * g->image);
            continue;
        }
        /* the last pass: b samples, then rows of zeros (inference treats rows alone) */
        memcpy(g->pass_z, z + done * ENG_GAN_NOISE, sizeof(float) * b * ENG_GAN_NOISE);
        memset(g->pass_z + b * ENG_GAN_NOISE, 0,
               sizeof(float) * (ENG_GAN_PASS - b) * ENG_GAN_NOISE);
        eng_net_forward(g->gen, g->pass_z, ENG_GAN_PASS, 0, 0, g->pass_img);
        memcpy(images + done * g->image, g->pass_img, sizeof(float) * b * g->image);
    }
    blas_for_generator(g, 0);
}
