/* net.h: a model made runnable: the flat parameter and gradient vectors, per-thread
 * activation memory sized once for the largest batch, and a team of threads that split
 * each batch between them (data parallel inside one process).
 *
 * Nothing is allocated after eng_net_new. Results depend on the seed, the data and the
 * thread count only: each thread computes the gradient of its contiguous share of the
 * batch into its own vector and the shares are added in thread order; dropout masks depend
 * on a sample's place in the batch, not on its thread. */
#ifndef PSTRAIN_ENGINE_NET_H
#define PSTRAIN_ENGINE_NET_H

#include "engine/model.h"
#include "engine/optim.h"

#include <stddef.h>
#include <stdint.h>

typedef struct eng_net eng_net;

typedef struct eng_batch_stats {
    double loss_sum; /* summed over samples: divide by count for the mean */
    int64_t correct;
    int64_t count;
} eng_batch_stats;

/* A net for model m (borrowed; it must outlive the net) taking batches of up to max_batch
 * samples on `threads` threads. Parameters start at zero: call eng_model_init_params on
 * eng_net_params, or copy weights in. Sets OpenBLAS to one thread: the net's own threads
 * are the parallelism. Returns NULL with a message in err (PST_EARG's) only for bad
 * arguments: max_batch or threads < 1, several threads for a model that normalises over the
 * whole batch, or more threads than the system will start. */
eng_net *eng_net_new(const eng_model *m, int max_batch, int threads, char *err, size_t errlen);
void eng_net_free(eng_net **net);

/* The flat vectors (layout.total floats each), owned by the net. */
float *eng_net_params(eng_net *net);
float *eng_net_grads(eng_net *net);
const eng_model *eng_net_model(const eng_net *net);
int eng_net_threads(const eng_net *net);

/* Forward and backward over x (B, H, W, C) with integer labels (B): writes the gradient of
 * the batch's mean loss into eng_net_grads and adds the batch's loss, hits and count to *st.
 * The loss follows the output layer's activation: sigmoid + binary cross-entropy for a
 * SIGMOID output (labels 0 or 1), else softmax + categorical cross-entropy (labels are
 * class indices). key selects the dropout masks (one per step). 1 <= B <= max_batch. */
void eng_net_train_step(eng_net *net, const float *x, const uint8_t *labels, int B, uint64_t key,
                        eng_batch_stats *st);

/* Called on the thread that runs eng_net_train_step, in the middle of the step, each time
 * the gradients of a further suffix [lo, total) of the flat vector are final: at the end of
 * a layer's backward pass over the last samples, layers from the last to the second. lo
 * decreases from call to call; after the step returns every gradient is final. The call may
 * not come at all (a batch smaller than the thread count), so a caller uses it to start
 * sending gradients early, never as the only way to learn they are ready. */
typedef void (*eng_grads_ready_fn)(void *ctx, size_t lo);
void eng_net_on_grads_ready(eng_net *net, eng_grads_ready_fn fn, void *ctx);

/* Where this net's batch sits in a larger one spread over processes: sample i of the
 * next batches gets the dropout mask of sample base + i of the combined batch (worker w of
 * a data-parallel job passes w * batch). Default 0. */
void eng_net_set_sample_base(eng_net *net, int64_t base);

/* One optimizer update of the whole parameter vector from eng_net_grads, split across the
 * net's threads. opt must cover layout.total parameters. */
void eng_net_apply(eng_net *net, eng_optim *opt);

/* eng_net_train_step that also writes the gradient of the step's mean loss with respect to
 * x into dx (B, input): how a GAN's generator learns through its discriminator (whose own
 * gradients the caller then leaves unapplied). The first layer must not be a view. */
void eng_net_train_step_dx(eng_net *net, const float *x, const uint8_t *labels, int B, uint64_t key,
                           eng_batch_stats *st, float *dx);

/* By hand, for a net run on 1 thread with the batch in one pass (B <= the samples a pass
 * holds; a model with BatchNormalization always is): the last layer's output y (B, out)
 * for x (B, input), no loss; key selects dropout masks when training. Then, after a forward
 * with training set, eng_net_backward takes the gradient dy (B, out) of whatever loss the
 * caller computed, writes the parameter gradients into eng_net_grads and, when dx is
 * non-NULL, the gradient with respect to x. A GAN's generator is trained this way. */
void eng_net_forward(eng_net *net, const float *x, int B, int training, uint64_t key, float *y);
void eng_net_backward(eng_net *net, const float *dy, float *dx);

/* Inference (dropout off) over x: adds loss, hits and count to *st. */
void eng_net_eval(eng_net *net, const float *x, const uint8_t *labels, int B, eng_batch_stats *st);

/* Inference over x (B, input) on the net's threads (dropout off, BatchNormalization on its
 * moving statistics): the last layer's outputs (B, out) into y, before any softmax or sigmoid
 * (logits). 1 <= B <= max_batch. The batch runs in passes of the net's pass size
 * (min(the model's chunk, max_batch / threads rounded up)) starting at multiples of it, the
 * threads taking contiguous runs of whole passes, so y is the same bits on any thread count
 * that keeps the pass size, and equals eng_net_forward's without training over the same
 * passes. Allocates nothing. */
void eng_net_predict(eng_net *net, const float *x, int B, float *y);

#endif
