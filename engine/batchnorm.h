/* batchnorm.h: Keras BatchNormalization over the last axis (channels): per channel, over
 * every other axis of the batch (a Dense output (1, 1, n): per feature over B; a conv map
 * (h, w, c): per channel over B*h*w). Keras defaults: momentum 0.99, epsilon 1e-3.
 *
 * Tensors, in Keras's order: batch_normalization/gamma (C, ones), beta (C, zeros),
 * moving_mean (C, zeros), moving_variance (C, ones). gamma and beta are parameters with
 * gradients. moving_mean and moving_variance are STATE: they sit in the layout (so
 * checkpoints, the layout checksum and Keras's weight lists see them) but their gradient is
 * always written as 0 and optimizers must never move them (with a zero gradient Adam
 * and RMSprop leave them as they are, but weight decay or a server that replaces params
 * would not); a training forward updates them in place,
 *   moving = momentum * moving + (1 - momentum) * batch statistic,
 * with the biased batch variance (Keras 3; TF's fused kernel used the unbiased one).
 * Inference normalises with them.
 *
 * WHOLE BATCH. The statistics must be the whole step's. The layer sees only what the net
 * hands one forward call, so a model using BatchNormalization must run the step's whole
 * batch in one pass on one thread: eng_model_def.chunk >= the batch and a net of one
 * thread (eng_layer_ops.whole_batch marks the kind for the net to check). Anything else
 * silently computes per-chunk statistics, and several threads would race on the moving
 * statistics; net.c does not check it yet. Inference uses no batch statistics: any chunks
 * and threads.
 *
 * Parameter servers: the moving statistics change on the worker that ran the forward, so a
 * worker that pulls parameters from servers overwrites them; a distributed job must carry
 * them separately (not done). */
#ifndef PSTRAIN_ENGINE_BATCHNORM_H
#define PSTRAIN_ENGINE_BATCHNORM_H

#include <stddef.h>

#define ENG_BN_MOMENTUM 0.99f
#define ENG_BN_EPSILON 1e-3f

/* x, y (rows, C) with rows = B*h*w; y may not alias x. xhat (rows, C) and inv_std (C) are
 * kept for backward. training: batch mean and biased variance, moving_mean and moving_var
 * (C) updated in place; else the moving statistics normalise and are left alone.
 * y = gamma * (x - mean) * inv_std + beta, inv_std = 1 / sqrt(var + eps). */
void eng_batchnorm_forward(float *y, float *xhat, float *inv_std, float *moving_mean,
                           float *moving_var, const float *x, const float *gamma, const float *beta,
                           size_t rows, int C, float momentum, float eps, int training);

/* Backward of that forward. dgamma, dbeta (C) written, or added to when accumulate; dx
 * (rows, C; may be NULL) written. training: through the batch statistics,
 *   dx = inv_std / N * (N * g - sum(g) - xhat * sum(g * xhat)),  g = dy * gamma, N = rows;
 * else dx = dy * gamma * inv_std. */
void eng_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                            const float *xhat, const float *inv_std, const float *gamma,
                            size_t rows, int C, int training, int accumulate);

#endif
