/* model.c: the model registry, building a definition, Keras initialisers, summaries. */
#include "engine/model.h"

#include "engine/base.h"
#include "engine/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The seed's Keras CNN (mnist_cnn.py): 225,034 parameters. */
static const eng_layer_spec keras_cnn[] = {
    {.kind = ENG_CONV2D, .units = 32, .kh = 3, .kw = 3, .act = ENG_ACT_RELU, .input = {28, 28, 1}},
    {.kind = ENG_MAXPOOL2D, .kh = 2, .kw = 2},
    {.kind = ENG_CONV2D, .units = 64, .kh = 3, .kw = 3, .act = ENG_ACT_RELU},
    {.kind = ENG_MAXPOOL2D, .kh = 2, .kw = 2},
    {.kind = ENG_FLATTEN},
    {.kind = ENG_DENSE, .units = 128, .act = ENG_ACT_RELU},
    {.kind = ENG_DROPOUT, .rate = 0.5f},
    {.kind = ENG_DENSE, .units = 10, .act = ENG_ACT_SOFTMAX},
};

#define NLAYERS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const eng_model_def registry[] = {
    {"mnist_cnn", "mnist", "Keras CNN on MNIST digits (225,034 parameters)", 10, NLAYERS(keras_cnn),
     keras_cnn},
    {"fashion_cnn", "fashion-mnist", "the same CNN on Fashion-MNIST", 10, NLAYERS(keras_cnn),
     keras_cnn},
};

const eng_model_def *eng_model_at(int i) {
    return i >= 0 && i < NLAYERS(registry) ? &registry[i] : NULL;
}

const eng_model_def *eng_model_find(const char *name) {
    for (int i = 0; i < NLAYERS(registry); i++)
        if (strcmp(registry[i].name, name) == 0)
            return &registry[i];
    return NULL;
}

const eng_layer_ops *eng_layer_ops_for(eng_layer_kind kind) {
    static const eng_layer_ops *const table[ENG_LAYER_KINDS] = {
        [ENG_CONV2D] = &eng_conv2d_ops,   [ENG_MAXPOOL2D] = &eng_maxpool2d_ops,
        [ENG_FLATTEN] = &eng_flatten_ops, [ENG_DENSE] = &eng_dense_ops,
        [ENG_DROPOUT] = &eng_dropout_ops,
    };
    ENG_ASSERT(kind >= 0 && kind < ENG_LAYER_KINDS, "layer kind %d", (int)kind);
    return table[kind];
}

int eng_model_build(eng_model *m, const eng_model_def *def, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (def->nlayers < 1 || def->nlayers > ENG_MAX_LAYERS)
        return eng_err(err, errlen, ENG_EARG, "model %s: %d layers, expected 1..%d", def->name,
                       def->nlayers, ENG_MAX_LAYERS);
    m->def = def;
    m->input = def->layers[0].input;
    int seen[ENG_LAYER_KINDS] = {0};
    eng_shape shape = m->input;
    for (int i = 0; i < def->nlayers; i++) {
        eng_layer *l = &m->layers[i];
        l->spec = def->layers[i];
        l->ops = eng_layer_ops_for(l->spec.kind);
        l->index = i;
        l->in = shape;
        /* A floor-pooling layer after a convolution never reads the conv's last rows and
         * columns when the sizes do not divide: let the conv skip computing them. */
        if (i + 1 < def->nlayers && def->layers[i + 1].kind == ENG_MAXPOOL2D) {
            l->crop_h = def->layers[i + 1].kh;
            l->crop_w = def->layers[i + 1].kw;
        }
        /* Keras numbering: the first of a kind is "dense", then "dense_1", ... */
        int k = seen[l->spec.kind]++;
        if (k == 0)
            snprintf(l->name, sizeof l->name, "%s", l->ops->keras_prefix);
        else
            snprintf(l->name, sizeof l->name, "%s_%d", l->ops->keras_prefix, k);
        int rc = l->ops->build(l, &m->layout, err, errlen);
        if (rc != ENG_OK)
            return rc;
        if (l->keras_out.c == 0)
            l->keras_out = l->out;
        shape = l->out;
        m->n = i + 1;
    }
    m->output = shape;
    if (eng_shape_size(shape) != (size_t)def->nclasses)
        return eng_err(err, errlen, ENG_EARG, "model %s: output has %zu units, expected %d",
                       def->name, eng_shape_size(shape), def->nclasses);
    return ENG_OK;
}

void eng_model_init_params(const eng_model *m, float *params, uint64_t seed) {
    for (int i = 0; i < m->layout.n; i++) {
        const eng_tensor_info *t = &m->layout.tensors[i];
        float *w = params + t->offset;
        if (t->ndim == 1) { /* biases */
            memset(w, 0, sizeof(float) * t->count);
            continue;
        }
        /* glorot_uniform: limit = sqrt(6 / (fan_in + fan_out)); for conv kernels the
         * receptive field multiplies both fans, as in Keras. */
        double receptive = 1.0;
        for (int d = 0; d < t->ndim - 2; d++)
            receptive *= t->shape[d];
        double fan_in = receptive * t->shape[t->ndim - 2];
        double fan_out = receptive * t->shape[t->ndim - 1];
        float limit = (float)sqrt(6.0 / (fan_in + fan_out));
        eng_rng r;
        eng_rng_seed(&r, eng_hash3(seed, (uint64_t)i, 0x494E4954ull));
        for (size_t j = 0; j < t->count; j++)
            w[j] = (2.0f * eng_rng_uniform(&r) - 1.0f) * limit;
    }
}

static double layer_flops(const eng_layer *l) {
    switch (l->spec.kind) {
    case ENG_CONV2D:
        /* Keras's nominal count, including outputs the model skips (see crop_h). */
        return 2.0 * eng_shape_size(l->keras_out) * l->spec.kh * l->spec.kw * l->in.c;
    case ENG_DENSE:
        return 2.0 * eng_shape_size(l->in) * l->spec.units;
    default:
        return 0.0;
    }
}

double eng_model_flops_forward(const eng_model *m) {
    double f = 0.0;
    for (int i = 0; i < m->n; i++)
        f += layer_flops(&m->layers[i]);
    return f;
}

double eng_model_flops_train(const eng_model *m) {
    double f = 3.0 * eng_model_flops_forward(m);
    for (int i = 0; i < m->n; i++)
        if (layer_flops(&m->layers[i]) > 0.0)
            return f - layer_flops(&m->layers[i]); /* no input gradient for the first */
    return f;
}

static size_t layer_params(const eng_model *m, const eng_layer *l) {
    size_t n = 0;
    for (int i = 0; i < m->layout.n; i++) {
        const char *name = m->layout.tensors[i].name;
        size_t len = strlen(l->name);
        if (strncmp(name, l->name, len) == 0 && name[len] == '/')
            n += m->layout.tensors[i].count;
    }
    return n;
}

static void group_digits(char *buf, size_t len, size_t v) {
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%zu", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
}

void eng_model_summary(const eng_model *m, FILE *out) {
    static const char rule[] = "_________________________________________________________________";
    static const char thick[] = "=================================================================";
    char label[80], shape[48], count[32];
    fprintf(out, "Model: \"%s\"\n%s\n", m->def->name, rule);
    fprintf(out, " %-32s %-22s %s\n%s\n", "Layer (type)", "Output Shape", "Param #", thick);
    for (int i = 0; i < m->n; i++) {
        const eng_layer *l = &m->layers[i];
        snprintf(label, sizeof label, "%s (%s)", l->name, l->ops->keras_class);
        const eng_shape o = l->keras_out;
        if (o.h == 1 && o.w == 1 && l->spec.kind != ENG_CONV2D)
            snprintf(shape, sizeof shape, "(None, %d)", o.c);
        else
            snprintf(shape, sizeof shape, "(None, %d, %d, %d)", o.h, o.w, o.c);
        group_digits(count, sizeof count, layer_params(m, l));
        fprintf(out, " %-32s %-22s %s\n", label, shape, count);
        if (i + 1 < m->n)
            fprintf(out, "\n");
    }
    group_digits(count, sizeof count, m->layout.total);
    fprintf(out, "%s\nTotal params: %s\nTrainable params: %s\nNon-trainable params: 0\n%s\n", thick,
            count, count, rule);
}

int eng_model_cuts(const eng_model *m, size_t *cuts) {
    int n = 0;
    for (int i = 0; i < m->n; i++) {
        const eng_layer *l = &m->layers[i];
        if (l->nparams)
            cuts[n++] = l->kernel < l->bias ? l->kernel : l->bias;
    }
    return n;
}
