/* layer.h: what a layer is to a model: a spec (data), a built instance, and a small
 * function table (darknet-style) that the model walks.
 *
 * Activations are NHWC: a batch of B samples of shape (h, w, c) is B*h*w*c floats with c
 * fastest. Vectors are (1, 1, n); sequences of T steps of n features are (1, T, n), and
 * token ids are (1, T, 1) floats holding exact integers. Each layer kind lives in its own
 * file with explicit `eng_<kind>_forward` / `eng_<kind>_backward` functions (outputs first,
 * dimensions spelled out) that the tests call directly; the table entries adapt those to the
 * model. */
#ifndef PSTRAIN_ENGINE_LAYER_H
#define PSTRAIN_ENGINE_LAYER_H

#include "engine/layout.h"

#include <stddef.h>
#include <stdint.h>

typedef enum eng_layer_kind {
    ENG_CONV2D,
    ENG_MAXPOOL2D,
    ENG_FLATTEN,
    ENG_DENSE,
    ENG_DROPOUT,
    ENG_EMBEDDING,
    ENG_LSTM,
    ENG_CONV2D_TRANSPOSE,
    ENG_BATCHNORM,
    ENG_LEAKY_RELU,
    ENG_RESHAPE,
    ENG_LAYER_KINDS
} eng_layer_kind;

/* Activations fused into Conv2D, Conv2DTranspose and Dense. SOFTMAX and SIGMOID mark the
 * output layer whose logits the loss consumes (softmax + categorical cross-entropy over C
 * classes, sigmoid + binary cross-entropy over one logit); the layer itself emits logits.
 * LEAKY_RELU fused uses Keras's default slope ENG_LEAKY_ALPHA (a standalone LeakyReLU layer
 * takes spec.alpha); TANH is applied by the layer (a generator's image output). */
typedef enum eng_act {
    ENG_ACT_NONE,
    ENG_ACT_RELU,
    ENG_ACT_SOFTMAX,
    ENG_ACT_SIGMOID,
    ENG_ACT_LEAKY_RELU,
    ENG_ACT_TANH,
} eng_act;

#define ENG_LEAKY_ALPHA 0.3f /* keras.layers.LeakyReLU's default alpha */

/* Keras padding of Conv2D and Conv2DTranspose. */
typedef enum eng_padding {
    ENG_PAD_VALID, /* no padding (the default) */
    ENG_PAD_SAME,  /* out = ceil(in / stride) (Conv2D), in * stride (Conv2DTranspose) */
} eng_padding;

/* Keras initialisers a layer asks for its tensors (eng_model_init_params draws them). */
typedef enum eng_init {
    ENG_INIT_DEFAULT,          /* by rank: glorot_uniform kernels, zero biases (rank 1) */
    ENG_INIT_UNIFORM,          /* RandomUniform(-0.05, 0.05): Embedding's default */
    ENG_INIT_ORTHOGONAL,       /* Orthogonal(gain 1): recurrent kernels */
    ENG_INIT_UNIT_FORGET_BIAS, /* LSTM bias (4u): ones in the forget gate's quarter, else 0 */
    ENG_INIT_ONES,             /* BatchNormalization gamma and moving_variance */
} eng_init;

/* How a Conv2D computes (eng_model_set_conv). AUTO is the engine's rule (conv2d.c); IM2COL
 * pins im2col everywhere; the Winograd ones pin it (and its tile) on the 3x3, stride-1,
 * 'valid' layers the direct loops do not take (those of at most 9 input taps). */
typedef enum eng_conv_algo {
    ENG_CONV_AUTO,
    ENG_CONV_IM2COL,    /* im2col + one sgemm: any kernel, stride, padding */
    ENG_CONV_WINOGRAD,  /* Winograd F(m x m, 3x3), m by the rule: 3x3, stride 1, 'valid' */
    ENG_CONV_WINOGRAD2, /* F(2x2, 3x3) */
    ENG_CONV_WINOGRAD4, /* F(4x4, 3x3) */
    ENG_CONV_WINOGRAD5, /* F(5x5, 3x3) */
} eng_conv_algo;

#define ENG_LAYER_TENSORS 4 /* the most tensors one layer owns */

typedef struct eng_shape {
    int h, w, c;
} eng_shape;

static inline size_t eng_shape_size(eng_shape s) { return (size_t)s.h * s.w * s.c; }

/* A layer as a model definition writes it, in Keras terms. */
typedef struct eng_layer_spec {
    eng_layer_kind kind;
    int units;           /* Conv2D filters, Dense and LSTM units, Embedding output_dim */
    int input_dim;       /* Embedding vocabulary: token ids are 0..input_dim-1 */
    int kh, kw;          /* Conv2D kernel size, MaxPooling2D pool size (stride = pool size) */
    float rate;          /* Dropout rate */
    eng_act act;         /* Conv2D, Conv2DTranspose, Dense */
    eng_shape input;     /* the first layer's input shape; ignored elsewhere */
    int stride;          /* Conv2D, Conv2DTranspose strides (both axes); 0 means 1 */
    eng_padding padding; /* Conv2D, Conv2DTranspose */
    int no_bias;         /* Dense, Conv2D, Conv2DTranspose use_bias=False: no bias tensor */
    float alpha;         /* LeakyReLU slope; 0 means Keras's ENG_LEAKY_ALPHA */
    float momentum;      /* BatchNormalization; 0 means Keras's 0.99 */
    float epsilon;       /* BatchNormalization; 0 means Keras's 1e-3 */
    eng_shape target;    /* Reshape's target_shape (h, w, c) */
} eng_layer_spec;

typedef struct eng_layer_ops eng_layer_ops;

/* A layer built for a known input shape. Owned by its model. */
typedef struct eng_layer {
    const eng_layer_ops *ops;
    eng_layer_spec spec;
    char name[ENG_NAME_MAX]; /* Keras name: conv2d, conv2d_1, max_pooling2d, ... */
    int index;               /* position in the model */
    eng_shape in, out;       /* per-sample shapes, as computed */
    eng_shape keras_out;     /* the output shape Keras reports (summaries) */
    int crop_h, crop_w;      /* set by the model before build: compute only whole multiples
                                of these output rows/columns (what a following pool reads) */
    /* Its tensors, as build added them (the model records which): layout entries
     * [tensor0, tensor0 + nparams), filling [param_lo, param_hi) of the flat vector. */
    int tensor0, nparams;
    size_t param_lo, param_hi;
    eng_init init[ENG_LAYER_TENSORS]; /* build's choice per tensor; default by rank */
    /* Offsets in the flat vector: Conv2D, Dense and LSTM kernel and bias, the LSTM's
     * recurrent kernel, Embedding's embeddings (in kernel). */
    size_t kernel, recurrent, bias;
    size_t saved_bytes; /* per sample, kept from forward for backward */
    /* Memory a pass may use and need not keep (per thread: scratch_bytes, plus
     * scratch_sample_bytes per sample of the pass), and memory made from the parameters
     * once per pass over them by ops->prepare and read by every thread (per net). */
    size_t scratch_bytes, scratch_sample_bytes, shared_bytes;
    eng_conv_algo conv; /* Conv2D: asked for (set by the model before build) */
    int wino;           /* Conv2D: Winograd's output tile side (2, 4 or 5), or 0 */
    int direct;         /* Conv2D: the direct loops (conv2d_direct.h); neither: im2col */
} eng_layer;

/* Arguments of one forward call over a (sub-)batch. */
typedef struct eng_fwd_args {
    float *y;            /* (B, out) */
    void *saved;         /* (B, saved_bytes): this layer's private memory */
    const float *x;      /* (B, in) */
    const float *params; /* the flat parameter vector */
    void *scratch;       /* (scratch_bytes + batch * scratch_sample_bytes), free between calls */
    const void *shared;  /* what prepare made from params, or NULL without prepare */
    int batch;
    int training;    /* dropout active */
    uint64_t key;    /* per-step random key (dropout) */
    int64_t sample0; /* index of x's first sample within the step: masks depend on it */
} eng_fwd_args;

/* Arguments of one backward call. Each tensor belongs to one layer; its gradient is
 * written by the first chunk of samples a thread runs and added to by the others. */
typedef struct eng_bwd_args {
    float *dx;          /* (B, in), or NULL when nobody needs it (the first layer) */
    float *grads;       /* the flat gradient vector */
    float *dy;          /* (B, out); the layer may overwrite it */
    void *saved;        /* as forward left it; the layer may overwrite it */
    const float *x, *y; /* forward's input and output */
    const float *params;
    void *scratch;      /* as forward's */
    const void *shared; /* the same as the forward's */
    int batch;
    int accumulate; /* add into grads instead of overwriting them */
    /* A thread's passes over its share come in windows of up to the net's pass rows
     * (saved holds that many samples): this pass's samples are rows [row0, row0 + batch) of
     * its window. A layer may keep rows in saved through the window and make a gradient from
     * all of them at its last pass (flush), written, or added when flush_accumulate: one
     * GEMM over many samples instead of a read-modify-write of the gradient per pass. */
    int row0, flush, flush_accumulate;
} eng_bwd_args;

struct eng_layer_ops {
    const char *keras_class;  /* "Conv2D": summaries */
    const char *keras_prefix; /* "conv2d": default names */
    int is_view;              /* output aliases input (Flatten): no forward/backward */
    /* Training needs the statistics of the whole batch (BatchNormalization): the net must
     * run the step's whole batch as one forward/backward pass on one thread (a model using
     * it sets eng_model_def.chunk >= the batch and runs with one thread; net.c does not
     * check this yet). A training forward writes the layer's state tensors through
     * fwd_args.params (see batchnorm.h). Inference is per sample: any chunks, threads. */
    int whole_batch;
    /* Checks the spec against l->in, sets l->out and l->saved_bytes, adds the layer's
     * tensors to lay (at most ENG_LAYER_TENSORS, in Keras's order) and their initialisers to
     * l->init where not the default. Returns PST_OK or PST_EARG with a message naming the
     * layer. */
    int (*build)(eng_layer *l, eng_layout *lay, char *err, size_t errlen);
    /* Optional: makes the layer's shared memory (shared_bytes, zeroed at first) from the
     * parameters (Winograd's kernel transform), called on one thread before passes over
     * params that may have changed since the last call. */
    void (*prepare)(const eng_layer *l, const float *params, void *shared);
    void (*forward)(const eng_layer *l, const eng_fwd_args *a);
    void (*backward)(const eng_layer *l, const eng_bwd_args *a);
};

extern const eng_layer_ops eng_conv2d_ops, eng_maxpool2d_ops, eng_flatten_ops, eng_dense_ops,
    eng_dropout_ops, eng_embedding_ops, eng_lstm_ops, eng_conv2d_transpose_ops, eng_batchnorm_ops,
    eng_leaky_relu_ops, eng_reshape_ops;

/* The table for a kind. */
const eng_layer_ops *eng_layer_ops_for(eng_layer_kind kind);

/* For a layer's build: adds "<name>/kernel" of the given shape and, unless the spec says
 * no_bias, "<name>/bias" of `units` floats; sets l->kernel, l->bias and l->nparams. */
void eng_layer_add_kernel_bias(eng_layer *l, eng_layout *lay, int ndim, const int *shape,
                               int units);

#endif
