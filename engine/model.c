/* model.c: the model registry, building a definition, Keras initialisers, summaries. */
#include "engine/model.h"

#include "engine/base/base.h"
#include "engine/conv2d.h"
#include "engine/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Keras's IMDB sentiment example (imdb_lstm.py, reviews cut or padded to 200 tokens of a
 * 10,000-word vocabulary): 402,561 parameters. */
static const eng_layer_spec keras_imdb_lstm[] = {
    {.kind = ENG_EMBEDDING, .input_dim = 10000, .units = 32, .input = {1, 200, 1}},
    {.kind = ENG_LSTM, .units = 128},
    {.kind = ENG_DROPOUT, .rate = 0.5f},
    {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
};

#define NLAYERS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* TF's DCGAN tutorial on MNIST: the generator (2,330,944 parameters, 100 noise values to a
 * 28x28 image in [-1, 1]) stacked on the discriminator (212,865, an image to one logit). */
#define CONV5(n, s, ...)                                                                           \
    .units = n, .kh = 5, .kw = 5, .stride = s, .padding = ENG_PAD_SAME, __VA_ARGS__
static const eng_layer_spec dcgan[] = {
    /* generator */
    {.kind = ENG_DENSE, .units = 7 * 7 * 256, .no_bias = 1, .input = {1, 1, 100}},
    {.kind = ENG_BATCHNORM},
    {.kind = ENG_LEAKY_RELU},
    {.kind = ENG_RESHAPE, .target = {7, 7, 256}},
    {.kind = ENG_CONV2D_TRANSPOSE, CONV5(128, 1, .no_bias = 1)},
    {.kind = ENG_BATCHNORM},
    {.kind = ENG_LEAKY_RELU},
    {.kind = ENG_CONV2D_TRANSPOSE, CONV5(64, 2, .no_bias = 1)},
    {.kind = ENG_BATCHNORM},
    {.kind = ENG_LEAKY_RELU},
    {.kind = ENG_CONV2D_TRANSPOSE, CONV5(1, 2, .no_bias = 1, .act = ENG_ACT_TANH)},
    /* discriminator */
    {.kind = ENG_CONV2D, CONV5(64, 2, .input = {28, 28, 1})},
    {.kind = ENG_LEAKY_RELU},
    {.kind = ENG_DROPOUT, .rate = 0.3f},
    {.kind = ENG_CONV2D, CONV5(128, 2)},
    {.kind = ENG_LEAKY_RELU},
    {.kind = ENG_DROPOUT, .rate = 0.3f},
    {.kind = ENG_FLATTEN},
    {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
};
#undef CONV5
#define DCGAN_GENERATOR 11 /* layers */

static const eng_model_def dcgan_parts[2] = {
    {"mnist_gan.generator", "mnist", "the DCGAN's generator", 28 * 28, DCGAN_GENERATOR, dcgan, 0,
     NULL, 0, 0},
    {"mnist_gan.discriminator", "mnist", "the DCGAN's discriminator", 2,
     NLAYERS(dcgan) - DCGAN_GENERATOR, dcgan + DCGAN_GENERATOR, 0, NULL, 0, 0},
};

/* Samples per pass of a thread: the CNN's activations stay in cache in chunks of 4 (net.c's
 * default). The LSTM's per-step sgemms want rows: bench_imdb_lstm at batch 32 on 2-core Zen 4
 * (two runs each, samples/s on 2 threads): chunks of 4: 1348, 1158; 8: 1553, 1550; 16: 1424,
 * 1540; 32 (a thread's whole share on 1 thread): 1303, 1541. 1 thread: 750-790 for all. */
#define CHUNK_IMDB_LSTM 8
/* The Keras CNN since its convolutions run on the direct loops (conv1) and Winograd (conv2),
 * whose activations per sample are smaller than im2col's: passes of 16 (a thread's whole
 * share of a batch of 32 on 2 threads) give the dense layer's 1600 x 128 products 16 rows
 * instead of 4, which OpenBLAS's Haswell kernel, without small-matrix paths, needs.
 * bench_mnist_cnn, batch 32, 2-core Xeon, 1 / 2 threads: SkylakeX chunks of 4 9,438 /
 * 14,683, 8 8,207 / 13,899, 16 8,701 / 14,967; Haswell 4 5,830 / 10,580, 8 6,255 / 11,057,
 * 16 6,956 / 12,488. */
#define CHUNK_CNN 16

static const eng_model_def registry[] = {
    {"mnist_cnn", "mnist", "Keras CNN on MNIST digits (225,034 parameters)", 10, NLAYERS(keras_cnn),
     keras_cnn, CHUNK_CNN, NULL, 10, 0},
    {"fashion_cnn", "fashion-mnist", "the same CNN on Fashion-MNIST", 10, NLAYERS(keras_cnn),
     keras_cnn, CHUNK_CNN, NULL, 10, 0},
    {"imdb_lstm", "imdb", "Keras's Embedding + LSTM on IMDB reviews (402,561 parameters)", 2,
     NLAYERS(keras_imdb_lstm), keras_imdb_lstm, CHUNK_IMDB_LSTM, NULL, 10, 0},
    {"mnist_gan", "mnist", "TF's DCGAN on MNIST digits: generator and discriminator (2,543,809)", 2,
     NLAYERS(dcgan), dcgan, 0, dcgan_parts, 50, 2},
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
        [ENG_CONV2D] = &eng_conv2d_ops,       [ENG_MAXPOOL2D] = &eng_maxpool2d_ops,
        [ENG_FLATTEN] = &eng_flatten_ops,     [ENG_DENSE] = &eng_dense_ops,
        [ENG_DROPOUT] = &eng_dropout_ops,     [ENG_EMBEDDING] = &eng_embedding_ops,
        [ENG_LSTM] = &eng_lstm_ops,           [ENG_CONV2D_TRANSPOSE] = &eng_conv2d_transpose_ops,
        [ENG_BATCHNORM] = &eng_batchnorm_ops, [ENG_LEAKY_RELU] = &eng_leaky_relu_ops,
        [ENG_RESHAPE] = &eng_reshape_ops,
    };
    PST_ASSERT(kind >= 0 && kind < ENG_LAYER_KINDS, "layer kind %d", (int)kind);
    return table[kind];
}

void eng_layer_add_kernel_bias(eng_layer *l, eng_layout *lay, int ndim, const int *shape,
                               int units) {
    char name[2 * ENG_NAME_MAX];
    snprintf(name, sizeof name, "%s/kernel", l->name);
    l->kernel = lay->tensors[eng_layout_add(lay, name, ndim, shape)].offset;
    l->nparams = 1;
    if (!l->spec.no_bias) {
        snprintf(name, sizeof name, "%s/bias", l->name);
        l->bias = lay->tensors[eng_layout_add(lay, name, 1, &units)].offset;
        l->nparams = 2;
    }
}

int eng_model_build(eng_model *m, const eng_model_def *def, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (def->nlayers < 1 || def->nlayers > ENG_MAX_LAYERS)
        return pst_err(err, errlen, PST_EARG, "model %s: %d layers, expected 1..%d", def->name,
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
        const int tensors = m->layout.n;
        const size_t lo = m->layout.total;
        int rc = l->ops->build(l, &m->layout, err, errlen);
        if (rc != PST_OK)
            return rc;
        l->tensor0 = tensors;
        l->nparams = m->layout.n - tensors;
        l->param_lo = lo;
        l->param_hi = m->layout.total;
        PST_ASSERT(l->nparams <= ENG_LAYER_TENSORS, "%s: %d tensors", l->name, l->nparams);
        if (l->keras_out.c == 0)
            l->keras_out = l->out;
        shape = l->out;
        m->n = i + 1;
    }
    m->output = shape;
    if (!def->parts) {
        m->nparts = 1;
        m->parts[0] = (eng_part_info){"model", def, 0, m->layout.total};
    } else {
        /* the parts' names follow the dot of their definitions' ("mnist_gan.generator") */
        PST_ASSERT(def->nparts >= 2 && def->nparts <= ENG_MAX_PARTS, "%s: %d parts", def->name,
                   def->nparts);
        m->nparts = def->nparts;
        for (int layer = 0, p = 0; p < def->nparts; p++) {
            const char *dot = strchr(def->parts[p].name, '.');
            const size_t lo = m->layers[layer].param_lo;
            layer += def->parts[p].nlayers;
            const size_t hi = layer < m->n ? m->layers[layer].param_lo : m->layout.total;
            m->parts[p] =
                (eng_part_info){dot ? dot + 1 : def->parts[p].name, &def->parts[p], lo, hi - lo};
        }
        PST_ASSERT(m->parts[def->nparts - 1].offset + m->parts[def->nparts - 1].total ==
                       m->layout.total,
                   "%s: parts do not cover the model", def->name);
    }
    if (m->layers[m->n - 1].spec.act == ENG_ACT_SIGMOID) {
        if (eng_shape_size(shape) != 1 || def->nclasses != 2)
            return pst_err(err, errlen, PST_EARG,
                           "model %s: a sigmoid output needs 1 unit and 2 classes, got %zu "
                           "units and %d classes",
                           def->name, eng_shape_size(shape), def->nclasses);
    } else if (eng_shape_size(shape) != (size_t)def->nclasses) {
        return pst_err(err, errlen, PST_EARG, "model %s: output has %zu units, expected %d",
                       def->name, eng_shape_size(shape), def->nclasses);
    }
    return PST_OK;
}

/* LAPACK's QR (OpenBLAS carries it; Debian's libopenblas-dev installs no header for it):
 * the Fortran symbols, every argument by reference, matrices column-major. */
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda, const float *tau,
             float *work, const int *lwork, int *info);

/* Keras's Orthogonal(gain 1) for a (rows, cols) tensor with rows < cols (rows: the
 * product of all dims but the last), the recurrent kernels' (u, 4u) and the only case the
 * layers ask for: a normal matrix A (cols, rows), A = QR, Q's columns times sign(diag R),
 * transposed: orthonormal rows. */
static void init_orthogonal(float *w, int rows, int cols, eng_rng *r) {
    PST_ASSERT(rows < cols, "orthogonal initialiser for %d x %d: only rows < cols is built", rows,
               cols);
    const size_t n = (size_t)rows * cols;
    float *a = pst_malloc(sizeof(float) * (n + 3 * (size_t)rows));
    float *tau = a + n, *work = tau + rows, *sign = work + rows;
    for (size_t i = 0; i < n; i++) /* A column-major: element (i, j) at a[i + j * cols] */
        a[i] = (float)eng_rng_normal(r);
    int info = 0;
    sgeqrf_(&cols, &rows, a, &cols, tau, work, &rows, &info); /* lwork = n: unblocked */
    PST_ASSERT(info == 0, "sgeqrf: info %d", info);
    for (int j = 0; j < rows; j++)
        sign[j] = a[j + (size_t)j * cols] < 0.0f ? -1.0f : 1.0f;
    sorgqr_(&cols, &rows, &rows, a, &cols, tau, work, &rows, &info);
    PST_ASSERT(info == 0, "sorgqr: info %d", info);
    /* Q (cols, rows) column-major, read row-major, is Q^T (rows, cols): the result, once
     * row j (Q's column j) is multiplied by sign[j]. */
    for (int j = 0; j < rows; j++)
        for (int i = 0; i < cols; i++)
            w[(size_t)j * cols + i] = a[(size_t)j * cols + i] * sign[j];
    free(a);
}

/* Writes tensor i of m into params with initialiser how. */
static void init_tensor(const eng_model *m, int i, eng_init how, float *params, uint64_t seed) {
    const eng_tensor_info *t = &m->layout.tensors[i];
    float *w = params + t->offset;
    eng_rng r;
    eng_rng_seed(&r, eng_hash3(seed, (uint64_t)i, 0x494E4954ull));
    if (how == ENG_INIT_DEFAULT && t->ndim == 1) { /* biases */
        memset(w, 0, sizeof(float) * t->count);
    } else if (how == ENG_INIT_DEFAULT) {
        /* glorot_uniform: limit = sqrt(6 / (fan_in + fan_out)); for conv kernels the
         * receptive field multiplies both fans, as in Keras. */
        double receptive = 1.0;
        for (int d = 0; d < t->ndim - 2; d++)
            receptive *= t->shape[d];
        double fan_in = receptive * t->shape[t->ndim - 2];
        double fan_out = receptive * t->shape[t->ndim - 1];
        float limit = (float)sqrt(6.0 / (fan_in + fan_out));
        for (size_t j = 0; j < t->count; j++)
            w[j] = (2.0f * eng_rng_uniform(&r) - 1.0f) * limit;
    } else if (how == ENG_INIT_UNIFORM) {
        for (size_t j = 0; j < t->count; j++)
            w[j] = (2.0f * eng_rng_uniform(&r) - 1.0f) * 0.05f;
    } else if (how == ENG_INIT_ORTHOGONAL) {
        const int cols = t->shape[t->ndim - 1];
        init_orthogonal(w, (int)(t->count / (size_t)cols), cols, &r);
    } else if (how == ENG_INIT_ONES) {
        for (size_t j = 0; j < t->count; j++)
            w[j] = 1.0f;
    } else {
        PST_ASSERT(how == ENG_INIT_UNIT_FORGET_BIAS && t->ndim == 1 && t->count % 4 == 0,
                   "%s: initialiser %d for shape of %zu", t->name, (int)how, t->count);
        const size_t u = t->count / 4; /* gates i, f, c, o */
        for (size_t j = 0; j < t->count; j++)
            w[j] = j >= u && j < 2 * u ? 1.0f : 0.0f;
    }
}

void eng_model_part(const eng_model *m, int p, eng_model *out) {
    PST_ASSERT(p >= 0 && p < m->nparts, "%s: part %d of %d", m->def->name, p, m->nparts);
    if (m->nparts == 1) {
        *out = *m;
        return;
    }
    char err[256];
    const int rc = eng_model_build(out, m->parts[p].def, err, sizeof err);
    PST_ASSERT(rc == PST_OK, "%s: part %d: %s", m->def->name, p, err);
    eng_model_set_conv(out, m->conv);
    PST_ASSERT(out->layout.total == m->parts[p].total, "%s: part %d: %zu floats, expected %zu",
               m->def->name, p, out->layout.total, m->parts[p].total);
}

void eng_model_set_conv(eng_model *m, eng_conv_algo conv) {
    m->conv = conv;
    for (int i = 0; i < m->n; i++)
        if (m->layers[i].spec.kind == ENG_CONV2D) {
            m->layers[i].conv = conv;
            eng_conv2d_plan(&m->layers[i]);
        }
}

static const char *const conv_names[] = {
    [ENG_CONV_AUTO] = "auto",           [ENG_CONV_IM2COL] = "im2col",
    [ENG_CONV_WINOGRAD] = "winograd",   [ENG_CONV_WINOGRAD2] = "winograd2",
    [ENG_CONV_WINOGRAD4] = "winograd4", [ENG_CONV_WINOGRAD5] = "winograd5",
};

int eng_conv_algo_parse(const char *s, eng_conv_algo *out) {
    for (int i = 0; i < NLAYERS(conv_names); i++)
        if (strcmp(s, conv_names[i]) == 0) {
            *out = (eng_conv_algo)i;
            return PST_OK;
        }
    return PST_EARG;
}

const char *eng_conv_algo_name(eng_conv_algo conv) {
    return conv >= 0 && conv < NLAYERS(conv_names) ? conv_names[conv] : "?";
}

int eng_model_part_find(const eng_model *m, const char *name) {
    for (int p = 0; p < m->nparts; p++)
        if (strcmp(m->parts[p].name, name) == 0)
            return p;
    return -1;
}

uint64_t eng_model_part_seed(uint64_t seed, int part) {
    return part == 0 ? seed : eng_hash3(seed, (uint64_t)part, 0x50415254ull);
}

void eng_model_init_params(const eng_model *m, float *params, uint64_t seed) {
    for (int i = 0; i < m->n; i++) {
        const eng_layer *l = &m->layers[i];
        for (int j = 0; j < l->nparams; j++)
            init_tensor(m, l->tensor0 + j, l->init[j], params, seed);
    }
}

static double layer_flops(const eng_layer *l) {
    switch (l->spec.kind) {
    case ENG_CONV2D:
        /* Keras's nominal count, including outputs the model skips (see crop_h). */
        return 2.0 * eng_shape_size(l->keras_out) * l->spec.kh * l->spec.kw * l->in.c;
    case ENG_DENSE:
        return 2.0 * eng_shape_size(l->in) * l->spec.units;
    case ENG_CONV2D_TRANSPOSE: /* each input pixel scatters a (kh, kw, out) patch */
        return 2.0 * eng_shape_size(l->in) * l->spec.kh * l->spec.kw * l->spec.units;
    case ENG_LSTM: /* per step: [x_t, h_{t-1}] (in + u) times the (in + u, 4u) weights */
        return 2.0 * l->in.w * (l->in.c + l->spec.units) * 4.0 * l->spec.units;
    default: /* Embedding copies, pooling compares: no multiply-adds */
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
        if (!m->layers[i].ops->is_view) /* no input gradient for the first computed layer */
            return f - layer_flops(&m->layers[i]);
    return f;
}

static size_t layer_params(const eng_layer *l) { return l->param_hi - l->param_lo; }

size_t eng_model_state_floats(const eng_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->layout.n; i++)
        if (m->layout.tensors[i].state)
            n += m->layout.tensors[i].count;
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
        /* Keras's ranks: images (conv, pool) 4, sequences (1, T, c) 3, vectors 2. */
        const eng_shape o = l->keras_out;
        const int image = l->spec.kind == ENG_CONV2D || l->spec.kind == ENG_MAXPOOL2D;
        if (o.h == 1 && o.w == 1 && !image)
            snprintf(shape, sizeof shape, "(None, %d)", o.c);
        else if (o.h == 1 && !image)
            snprintf(shape, sizeof shape, "(None, %d, %d)", o.w, o.c);
        else
            snprintf(shape, sizeof shape, "(None, %d, %d, %d)", o.h, o.w, o.c);
        group_digits(count, sizeof count, layer_params(l));
        fprintf(out, " %-32s %-22s %s\n", label, shape, count);
        if (i + 1 < m->n)
            fprintf(out, "\n");
    }
    char trainable[32], fixed[32];
    const size_t state = eng_model_state_floats(m);
    group_digits(count, sizeof count, m->layout.total);
    group_digits(trainable, sizeof trainable, m->layout.total - state);
    group_digits(fixed, sizeof fixed, state);
    fprintf(out, "%s\nTotal params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s\n",
            thick, count, trainable, fixed, rule);
}

int eng_model_cuts(const eng_model *m, size_t *cuts) {
    int n = 0;
    for (int i = 0; i < m->n; i++)
        if (m->layers[i].nparams)
            cuts[n++] = m->layers[i].param_lo;
    return n;
}
