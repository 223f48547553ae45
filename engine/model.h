/* model.h: models as data. A model definition is a Sequential list of layer specs in a
 * registry; eng_model_build turns it into built layers and the parameter layout.
 *
 * The model knows shapes and parameters, not memory: running it is net.h's job. */
#ifndef PSTRAIN_ENGINE_MODEL_H
#define PSTRAIN_ENGINE_MODEL_H

#include "engine/layer.h"
#include "engine/layout.h"

#include <stdint.h>
#include <stdio.h>

#define ENG_MAX_LAYERS 32
#define ENG_MAX_PARTS 4 /* parameter parts of one model */

typedef struct eng_model_def {
    const char *name;    /* registry key: "mnist_cnn" */
    const char *dataset; /* the data set it trains on: "mnist", "fashion-mnist", "imdb" */
    const char *about;   /* one line for --help */
    int nclasses;        /* 2 with a sigmoid output (one unit), else the output's units */
    int nlayers;
    const eng_layer_spec *layers; /* layers[0].input is the model's input shape */
    int chunk; /* samples a net's thread runs through the layers at a time; 0: the default */
    /* A GAN: its two networks, generator then discriminator, each a model of its own that
     * trains with its own optimizer. The definition itself is the two stacked (Keras's
     * `Sequential([generator, discriminator])`): one layout for both, generator first, so a
     * checkpoint holds both under Keras's names. NULL for other models. */
    const struct eng_model_def *parts;
    int epochs; /* pstrain train's default --epochs for it (TF's DCGAN tutorial trains 50) */
    int nparts; /* entries of parts (0 without) */
} eng_model_def;

/* The registered definition called name, or NULL. */
const eng_model_def *eng_model_find(const char *name);
/* The i-th registered definition, or NULL past the end: for listings. */
const eng_model_def *eng_model_at(int i);

/* A parameter part: a range of the model's flat vector that trains as a network of its own,
 * with its own optimizer (and, above the engine, its own servers' tables and checkpoint
 * state). A classifier is one part, the whole model; a GAN two, generator then
 * discriminator. */
typedef struct eng_part_info {
    const char *name;         /* "model", or the part's name: "generator", "discriminator" */
    const eng_model_def *def; /* the part as a model of its own (the model's def for one part) */
    size_t offset, total;     /* its floats: [offset, offset + total) of the flat vector */
} eng_part_info;

typedef struct eng_model {
    const eng_model_def *def;
    int n;
    eng_layer layers[ENG_MAX_LAYERS];
    eng_layout layout;
    eng_shape input, output;
    int nparts; /* >= 1 */
    eng_part_info parts[ENG_MAX_PARTS];
    eng_conv_algo conv; /* how its Conv2D layers compute (eng_model_set_conv) */
} eng_model;

/* Builds def into m (storage provided by the caller; nothing to free). Layers get Keras
 * names (conv2d, conv2d_1, ...). The last layer's activation picks the loss (eng_net): a
 * SIGMOID output has one unit and nclasses 2, any other has nclasses units. Returns PST_OK
 * or PST_EARG with the layer's message. */
int eng_model_build(eng_model *m, const eng_model_def *def, char *err, size_t errlen);

/* How m's Conv2D layers compute: ENG_CONV_AUTO (what eng_model_build gives) lets the
 * engine choose per layer by its rule (conv2d.c), the others pin it (--conv). Changes the
 * layers' memory sizes, not the layout: call it before making a net of m. The results
 * differ between algorithms in the last bits (more for the larger Winograd tiles), within
 * the tolerances tests/engine/test_winograd.c and test_conv2d_direct.c derive. */
void eng_model_set_conv(eng_model *m, eng_conv_algo conv);

/* "auto", "im2col", "winograd", "winograd2", "winograd4", "winograd5" to *out: PST_OK, else
 * PST_EARG (nothing written). eng_conv_algo_name is the reverse. */
int eng_conv_algo_parse(const char *s, eng_conv_algo *out);
const char *eng_conv_algo_name(eng_conv_algo conv);

/* Part p of m as a model of its own into out: m itself for a model of one part. Its flat
 * vector is [m->parts[p].offset, + total) of m's. */
void eng_model_part(const eng_model *m, int p, eng_model *out);

/* The index of m's part called name, or -1. */
int eng_model_part_find(const eng_model *m, const char *name);

/* The seed a GAN's part initialises from: the job's for the generator (part 0), another
 * drawn from it for the discriminator, so that the two never share a stream. */
uint64_t eng_model_part_seed(uint64_t seed, int part);

/* Keras initialisers into params (layout.total floats): each tensor's layer chose (see
 * eng_init): glorot_uniform kernels and zero biases unless it said otherwise. Each tensor
 * draws from its own stream keyed by (seed, tensor index), so a process can initialise any
 * slice and agree with every other process. */
void eng_model_init_params(const eng_model *m, float *params, uint64_t seed);

/* The first float of each layer's tensors in the flat vector, in layer order, into
 * cuts[ENG_MAX_LAYERS]: where a layer's gradient becomes its own message. Returns how many. */
int eng_model_cuts(const eng_model *m, size_t *cuts);

/* The floats of layout tensors marked state (BatchNormalization's moving statistics),
 * which no optimizer may move. */
size_t eng_model_state_floats(const eng_model *m);

/* Forward FLOPs per sample (multiply-add = 2), for throughput reports. */
double eng_model_flops_forward(const eng_model *m);
/* Training FLOPs per sample: forward + both backward gemms, less the first layer's dx. */
double eng_model_flops_train(const eng_model *m);

/* A Keras-style table: layer (type), output shape, params; totals at the bottom. */
void eng_model_summary(const eng_model *m, FILE *out);

#endif
