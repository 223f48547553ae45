/* gan.h: a GAN's training step, as TF's DCGAN tutorial trains it: one generator forward per
 * step, the discriminator on the real and the generated batch, and both networks' gradients
 * from that one pass (each network's own loss, each applied by its own optimizer):
 *
 *   fake = G(z), z ~ N(0, 1)        d_loss = BCE(1, D(x)) + BCE(0, D(fake))
 *                                    g_loss = BCE(1, D(fake))
 *
 * with binary cross-entropy from logits, each a mean over the batch. The generator learns
 * through the discriminator: D's input gradient of g_loss, on the same dropout masks as
 * d_loss's fake half, is G's output gradient.
 *
 * The two networks are models of their own (eng_model_def.parts) with flat vectors of their
 * own. The generator normalises over the whole batch, so it runs as one pass on one thread
 * whose sgemms use `threads` BLAS threads; the discriminator splits the batch over its
 * net's threads. Nothing is allocated after eng_gan_new. */
#ifndef PSTRAIN_ENGINE_GAN_H
#define PSTRAIN_ENGINE_GAN_H

#include "engine/model.h"
#include "engine/net.h"

#include <stddef.h>
#include <stdint.h>

#define ENG_GAN_NOISE 100 /* values of z per sample (the generator's input) */
/* Samples per pass of eng_gan_generate. Every pass has this many rows, the last padded, so a
 * sample's image is computed at the same row of the same product shapes however many are
 * asked for and whatever the training batch: a run's grid and scores and `pstrain sample`'s
 * and `eval`'s agree bit for bit on every OpenBLAS kernel, not just on those whose results do
 * not depend on the grouping of rows. */
#define ENG_GAN_PASS 64

typedef struct eng_gan eng_gan;

/* Sums over steps: divide by count for means. */
typedef struct eng_gan_stats {
    double d_loss_sum, g_loss_sum; /* per sample */
    int64_t d_correct;             /* of 2 * count: D(x) > 0.5 for real, < 0.5 for fake */
    int64_t count;                 /* real samples */
} eng_gan_stats;

/* A step on batches of up to max_batch real images, for generator and discriminator models
 * (borrowed; they must outlive it). Parameters start at zero, as eng_net_new's. Returns NULL
 * with a message in err only for bad arguments (the models' shapes do not fit together, or
 * eng_net_new's). */
eng_gan *eng_gan_new(const eng_model *gen, const eng_model *disc, int max_batch, int threads,
                     char *err, size_t errlen);
void eng_gan_free(eng_gan **g);

/* The networks (owned by g): their params and grads are the two parameter vectors. */
eng_net *eng_gan_generator(eng_gan *g);
eng_net *eng_gan_discriminator(eng_gan *g);

/* Where this process's batch sits in a job's combined batch (worker w passes w * batch):
 * noise and dropout masks are those of the combined batch's samples. Default 0. */
void eng_gan_set_sample_base(eng_gan *g, int64_t base);

/* z (B, ENG_GAN_NOISE): standard normal noise for samples [sample0, sample0 + B) of the step
 * keyed key; the same on every machine. */
void eng_gan_noise(float *z, int B, int64_t sample0, uint64_t key);

/* One step over real (B, 28, 28, 1) images in [-1, 1]: writes the generator's gradient of
 * g_loss into eng_net_grads(generator) and the discriminator's gradient of d_loss into
 * eng_net_grads(discriminator); the generator's BatchNormalization moving statistics move
 * once. key draws the noise and the dropout masks. */
void eng_gan_step(eng_gan *g, const float *real, int B, uint64_t key, eng_gan_stats *st);

/* Inference: n images (n, 28, 28, 1) in [-1, 1] from z (n, ENG_GAN_NOISE), on the moving
 * statistics; any n >= 0, in passes of ENG_GAN_PASS: image i's bits depend on z's row i and
 * the weights only. */
void eng_gan_generate(eng_gan *g, const float *z, size_t n, float *images);

#endif
