/* keras_config.c: the JSON a Keras 2 full-model file carries at its root (keras.h): the
 * Sequential model's config and its training config, as Keras 2.13's
 * saving_utils.model_metadata writes them (json.dumps: ", " and ": " separators, keys in each
 * get_config's order, floats as Python's repr). Only strings of our own go in: nothing needs
 * escaping but the model names, which are [a-z0-9_]. */
#include "engine/ckpt/keras.h"

#include "engine/base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string. */
typedef struct jbuf {
    char *s;
    size_t len, cap;
} jbuf;

static void put(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(jbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        const int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        PST_ASSERT(n >= 0, "vsnprintf: %d", n);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = 2 * b->cap + (size_t)n + 1;
        b->s = pst_realloc(b->s, b->cap);
    }
}

/* v in the fewest significant digits (up to maxp) that read back as v (as a float32 when f32),
 * formatted as Python's repr: positional from 1e-4 up to 1e16, with ".0" on an integer. */
static void shortest(char *out, size_t len, double v, int maxp, int f32) {
    /* Digits are tried in a buffer of our own, long enough for any double (%.16e is 23
     * bytes; %.17g of 1e16 positional, 24): out gets the result once. */
    char d[64];
    int p = 1;
    for (; p < maxp; p++) {
        snprintf(d, sizeof d, "%.*e", p - 1, v);
        if (f32 ? strtof(d, NULL) == (float)v : strtod(d, NULL) == v)
            break;
    }
    snprintf(d, sizeof d, "%.*e", p - 1, v);
    const char *e = strchr(d, 'e');
    const int x = e ? atoi(e + 1) : 0; /* the decimal exponent */
    /* %g goes positional when -4 <= x < precision: give it the room Python's repr takes */
    snprintf(d, sizeof d, "%.*g", x >= -4 && x < 16 && x + 1 > p ? x + 1 : p, v);
    const char *tail = strpbrk(d, ".en") ? "" : ".0";
    const size_t n = strlen(d), t = strlen(tail);
    PST_ASSERT(n + t < len, "%s%s needs %zu bytes, got %zu", d, tail, n + t + 1, len);
    memcpy(out, d, n);
    memcpy(out + n, tail, t + 1);
}

void eng_keras_repr(char *out, size_t len, double v) { shortest(out, len, v, 17, 0); }

/* A float32 hyperparameter as the Python float a person wrote (0.9, not 0.8999999761581421):
 * the shortest digits that read back as the same float32. */
static void repr32(char *out, size_t len, float v) { shortest(out, len, (double)v, 9, 1); }

static void put_f64(jbuf *b, const char *key, double v) {
    char r[40];
    eng_keras_repr(r, sizeof r, v);
    put(b, ", \"%s\": %s", key, r);
}

static void put_f32(jbuf *b, const char *key, float v) {
    char r[40];
    repr32(r, sizeof r, v);
    put(b, ", \"%s\": %s", key, r);
}

static const char *activation(eng_act a) {
    switch (a) {
    case ENG_ACT_NONE:
        return "linear";
    case ENG_ACT_RELU:
        return "relu";
    case ENG_ACT_SOFTMAX:
        return "softmax";
    case ENG_ACT_SIGMOID:
        return "sigmoid";
    case ENG_ACT_TANH:
        return "tanh";
    default: /* a fused LeakyReLU has no Keras activation string: no model uses one */
        return NULL;
    }
}

#define GLOROT "{\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}}"
#define ZEROS "{\"class_name\": \"Zeros\", \"config\": {}}"
#define ONES "{\"class_name\": \"Ones\", \"config\": {}}"
#define ORTHOGONAL "{\"class_name\": \"Orthogonal\", \"config\": {\"gain\": 1.0, \"seed\": null}}"
#define UNIFORM                                                                                    \
    "{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": -0.05, \"maxval\": 0.05, "       \
    "\"seed\": null}}"

/* The Keras rank of the input of m's layer l0 as the first layer of a Sequential model, and its
 * batch_input_shape (e.g. "[null, 28, 28, 1]") into out. */
static int input_shape(const eng_layer *first, char *out, size_t len) {
    const eng_shape s = first->in;
    if (first->spec.kind == ENG_EMBEDDING) { /* token ids (1, T, 1): (None, T) */
        snprintf(out, len, "[null, %d]", s.w);
        return 2;
    }
    if (s.h == 1 && s.w == 1) { /* a vector (1, 1, n): (None, n) */
        snprintf(out, len, "[null, %d]", s.c);
        return 2;
    }
    snprintf(out, len, "[null, %d, %d, %d]", s.h, s.w, s.c);
    return 4;
}

/* Conv2D's and Conv2DTranspose's keys after the base (Conv.get_config). */
static int put_conv(jbuf *b, const eng_layer *l) {
    const eng_layer_spec *s = &l->spec;
    const int st = s->stride ? s->stride : 1;
    const char *act = activation(s->act);
    if (!act)
        return PST_EARG;
    put(b,
        ", \"filters\": %d, \"kernel_size\": [%d, %d], \"strides\": [%d, %d], \"padding\": \"%s\", "
        "\"data_format\": \"channels_last\", \"dilation_rate\": [1, 1], \"groups\": 1, "
        "\"activation\": \"%s\", \"use_bias\": %s, \"kernel_initializer\": " GLOROT
        ", \"bias_initializer\": " ZEROS ", \"kernel_regularizer\": null, \"bias_regularizer\": "
        "null, \"activity_regularizer\": null, \"kernel_constraint\": null, \"bias_constraint\": "
        "null",
        s->units, s->kh, s->kw, st, st, s->padding == ENG_PAD_SAME ? "same" : "valid", act,
        s->no_bias ? "false" : "true");
    if (s->kind == ENG_CONV2D_TRANSPOSE)
        put(b, ", \"output_padding\": null");
    return PST_OK;
}

/* One layer's {"class_name": ..., "config": {...}}; rank is the Keras rank of its input
 * (BatchNormalization's axis), updated to its output's. */
static int put_layer(jbuf *b, const eng_layer *l, const char *shape, int *rank, int logits) {
    const eng_layer_spec *s = &l->spec;
    put(b,
        "{\"class_name\": \"%s\", \"config\": {\"name\": \"%s\", \"trainable\": true, "
        "\"dtype\": \"float32\"",
        l->ops->keras_class, l->name);
    if (shape)
        put(b, ", \"batch_input_shape\": %s", shape);
    switch (s->kind) {
    case ENG_CONV2D:
    case ENG_CONV2D_TRANSPOSE:
        if (put_conv(b, l) != PST_OK)
            return PST_EARG;
        break;
    case ENG_MAXPOOL2D:
        put(b,
            ", \"pool_size\": [%d, %d], \"padding\": \"valid\", \"strides\": [%d, %d], "
            "\"data_format\": \"channels_last\"",
            s->kh, s->kw, s->kh, s->kw);
        break;
    case ENG_FLATTEN:
        put(b, ", \"data_format\": \"channels_last\"");
        *rank = 2;
        break;
    case ENG_DENSE: {
        const char *act = activation(logits && s->act == ENG_ACT_SIGMOID ? ENG_ACT_NONE : s->act);
        if (!act)
            return PST_EARG;
        put(b,
            ", \"units\": %d, \"activation\": \"%s\", \"use_bias\": %s, "
            "\"kernel_initializer\": " GLOROT ", \"bias_initializer\": " ZEROS
            ", \"kernel_regularizer\": null, "
            "\"bias_regularizer\": null, \"activity_regularizer\": null, \"kernel_constraint\": "
            "null, \"bias_constraint\": null",
            s->units, act, s->no_bias ? "false" : "true");
        break;
    }
    case ENG_DROPOUT:
        put_f32(b, "rate", s->rate);
        put(b, ", \"noise_shape\": null, \"seed\": null");
        break;
    case ENG_EMBEDDING:
        put(b,
            ", \"input_dim\": %d, \"output_dim\": %d, \"embeddings_initializer\": " UNIFORM
            ", \"embeddings_regularizer\": null, \"activity_regularizer\": null, "
            "\"embeddings_constraint\": null, \"mask_zero\": false, \"input_length\": %d",
            s->input_dim, s->units, l->in.w);
        *rank = 3;
        break;
    case ENG_LSTM:
        /* RNN.get_config's keys, then LSTM's (its "cell" removed) */
        put(b,
            ", \"return_sequences\": false, \"return_state\": false, \"go_backwards\": false, "
            "\"stateful\": false, \"unroll\": false, \"time_major\": false, \"units\": %d, "
            "\"activation\": \"tanh\", \"recurrent_activation\": \"sigmoid\", \"use_bias\": true, "
            "\"kernel_initializer\": " GLOROT ", \"recurrent_initializer\": " ORTHOGONAL
            ", \"bias_initializer\": " ZEROS ", \"unit_forget_bias\": true, "
            "\"kernel_regularizer\": null, \"recurrent_regularizer\": null, \"bias_regularizer\": "
            "null, \"activity_regularizer\": null, \"kernel_constraint\": null, "
            "\"recurrent_constraint\": null, \"bias_constraint\": null, \"dropout\": 0.0, "
            "\"recurrent_dropout\": 0.0, \"implementation\": 2",
            s->units);
        *rank = 2;
        break;
    case ENG_BATCHNORM:
        put(b, ", \"axis\": [%d]", *rank - 1);
        put_f32(b, "momentum", s->momentum > 0.0f ? s->momentum : 0.99f);
        put_f32(b, "epsilon", s->epsilon > 0.0f ? s->epsilon : 1e-3f);
        put(b, ", \"center\": true, \"scale\": true, \"beta_initializer\": " ZEROS
               ", \"gamma_initializer\": " ONES ", \"moving_mean_initializer\": " ZEROS
               ", \"moving_variance_initializer\": " ONES
               ", \"beta_regularizer\": null, \"gamma_regularizer\": null, \"beta_constraint\": "
               "null, \"gamma_constraint\": null");
        break;
    case ENG_LEAKY_RELU:
        /* Keras keeps alpha as a float32 (backend.cast_to_floatx): json writes its double */
        put_f64(b, "alpha", (double)(s->alpha > 0.0f ? s->alpha : ENG_LEAKY_ALPHA));
        break;
    case ENG_RESHAPE:
        put(b, ", \"target_shape\": [%d, %d, %d]", s->target.h, s->target.w, s->target.c);
        *rank = 4;
        break;
    default:
        return PST_EARG;
    }
    put(b, "}}");
    return PST_OK;
}

char *eng_keras_model_config(const eng_model *m, int l0, int nl, const char *name, int logits,
                             char *err, size_t errlen) {
    PST_ASSERT(l0 >= 0 && nl >= 1 && l0 + nl <= m->n, "layers [%d, %d) of %d", l0, l0 + nl, m->n);
    jbuf b = {pst_malloc(4096), 0, 4096};
    char shape[64];
    int rank = input_shape(&m->layers[l0], shape, sizeof shape);
    /* Sequential.add makes the InputLayer "<first>_input" from the first layer's shape */
    put(&b,
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"%s\", \"layers\": "
        "[{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": %s, \"dtype\": "
        "\"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"%s_input\"}}",
        name, shape, m->layers[l0].name);
    for (int i = l0; i < l0 + nl; i++) {
        put(&b, ", ");
        if (put_layer(&b, &m->layers[i], i == l0 ? shape : NULL, &rank,
                      logits && i == l0 + nl - 1) != PST_OK) {
            free(b.s);
            pst_err(err, errlen, PST_EARG, "layer %s (%s): no Keras config for it",
                    m->layers[i].name, m->layers[i].ops->keras_class);
            return NULL;
        }
    }
    put(&b, "]}}");
    return b.s;
}

/* The optimizer as Keras 2.13's get_config has it. Adam and RMSprop are the new optimizers
 * (is_legacy_optimizer false); an RMSprop with a legacy decay (lr / (1 + decay * iterations))
 * is the legacy one, which alone knows decay. The legacy config has no is_legacy_optimizer:
 * OptimizerV2.get_config writes none, its __init__ refuses any kwarg outside clipnorm,
 * clipvalue, lr, decay and global_clipnorm, and optimizers.deserialize takes a config without
 * the key for the legacy class. */
static void put_optimizer(jbuf *b, const eng_optim_cfg *o) {
    const int legacy = o->kind == ENG_OPT_RMSPROP && o->decay > 0.0f;
    const char *cls = o->kind == ENG_OPT_ADAM ? "Adam" : "RMSprop";
    put(b, "{\"class_name\": \"%s%s\", \"config\": {\"name\": \"%s\"", legacy ? "" : "Custom>", cls,
        cls);
    if (legacy) {
        if (o->clipvalue > 0.0f)
            put_f32(b, "clipvalue", o->clipvalue);
        /* learning_rate and rho are float32 hyperparameter variables (_set_hyper): json
         * writes their doubles; decay and epsilon stay the Python floats given */
        put_f64(b, "learning_rate", (double)o->lr);
        put_f32(b, "decay", o->decay);
        put_f64(b, "rho", (double)o->rho);
        put(b, ", \"momentum\": 0.0");
        put_f32(b, "epsilon", o->epsilon);
        put(b, ", \"centered\": false}}");
        return;
    }
    put(b, ", \"weight_decay\": null, \"clipnorm\": null, \"global_clipnorm\": null");
    if (o->clipvalue > 0.0f)
        put_f32(b, "clipvalue", o->clipvalue);
    else
        put(b, ", \"clipvalue\": null");
    put(b,
        ", \"use_ema\": false, \"ema_momentum\": 0.99, \"ema_overwrite_frequency\": %s, "
        "\"jit_compile\": false, \"is_legacy_optimizer\": false",
        o->kind == ENG_OPT_ADAM ? "null" : "100");
    /* the learning rate is a float32 variable: json writes its double */
    put_f64(b, "learning_rate", (double)o->lr);
    if (o->kind == ENG_OPT_ADAM) {
        put_f32(b, "beta_1", o->beta1);
        put_f32(b, "beta_2", o->beta2);
        put_f32(b, "epsilon", o->epsilon);
        put(b, ", \"amsgrad\": false}}");
    } else {
        put_f32(b, "rho", o->rho);
        put(b, ", \"momentum\": 0.0");
        put_f32(b, "epsilon", o->epsilon);
        put(b, ", \"centered\": false}}");
    }
}

char *eng_keras_training_config(const eng_model *m, int l0, int nl, const eng_optim_cfg *o,
                                int gan) {
    PST_ASSERT(l0 >= 0 && nl >= 1 && l0 + nl <= m->n, "layers [%d, %d) of %d", l0, l0 + nl, m->n);
    jbuf b = {pst_malloc(1024), 0, 1024};
    const int sigmoid = m->layers[l0 + nl - 1].spec.act == ENG_ACT_SIGMOID;
    if (gan) /* the tutorial's tf.keras.losses.BinaryCrossentropy(from_logits=True) */
        put(&b, "{\"loss\": {\"class_name\": \"BinaryCrossentropy\", \"config\": {\"reduction\": "
                "\"auto\", \"name\": \"binary_crossentropy\", \"from_logits\": true, "
                "\"label_smoothing\": 0.0, \"axis\": -1}}, \"metrics\": ");
    else
        put(&b, "{\"loss\": \"%s\", \"metrics\": ",
            sigmoid ? "binary_crossentropy" : "categorical_crossentropy");
    if (!gan)
        put(&b,
            "[[{\"class_name\": \"MeanMetricWrapper\", \"config\": {\"name\": \"accuracy\", "
            "\"dtype\": \"float32\", \"fn\": \"%s\"}}]]",
            sigmoid ? "binary_accuracy" : "categorical_accuracy");
    else
        put(&b, "null");
    put(&b, ", \"weighted_metrics\": null, \"loss_weights\": null, \"optimizer_config\": ");
    put_optimizer(&b, o);
    put(&b, "}");
    return b.s;
}
