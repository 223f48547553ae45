/* embedding.c: Embedding forward (row copies) and backward (row scatter-adds). Ids arrive
 * as floats: each is checked to be an exact integer in [0, V), which costs nothing next to
 * the copy and turns a data set bug into a message instead of a stray read. */
#include "engine/embedding.h"

#include "engine/base/base.h"
#include "engine/layer.h"

#include <stdio.h>
#include <string.h>

/* The table row of token i of x. */
static inline size_t token_row(const float *x, size_t i, int V) {
    const float v = x[i];
    PST_ASSERT(v >= 0.0f && v < (float)V && v == (float)(int)v,
               "token %zu is %g: expected an integer id in [0, %d)", i, (double)v, V);
    return (size_t)v;
}

void eng_embedding_forward(float *y, const float *x, const float *table, int B, int T, int V,
                           int D) {
    const size_t n = (size_t)B * T;
    for (size_t i = 0; i < n; i++)
        memcpy(y + i * D, table + token_row(x, i, V) * D, sizeof(float) * (size_t)D);
}

void eng_embedding_backward(float *dtable, const float *dy, const float *x, int B, int T, int V,
                            int D, int accumulate) {
    if (!accumulate)
        memset(dtable, 0, sizeof(float) * (size_t)V * D);
    const size_t n = (size_t)B * T;
    for (size_t i = 0; i < n; i++) {
        float *restrict d = dtable + token_row(x, i, V) * D;
        const float *restrict g = dy + i * D;
        for (int j = 0; j < D; j++)
            d[j] += g[j];
    }
}

/* --- the layer table entry --- */

static int embedding_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    const eng_layer_spec *s = &l->spec;
    if (l->index != 0) /* its input has no gradient to pass back */
        return pst_err(err, errlen, PST_EARG, "%s: must be the first layer (it reads token ids)",
                       l->name);
    if (l->in.h != 1 || l->in.c != 1)
        return pst_err(err, errlen, PST_EARG,
                       "%s: expects token ids of shape (1, T, 1), got (%d, %d, %d)", l->name,
                       l->in.h, l->in.w, l->in.c);
    if (s->input_dim < 1 || s->units < 1)
        return pst_err(err, errlen, PST_EARG, "%s: input_dim %d and output_dim %d must be >= 1",
                       l->name, s->input_dim, s->units);
    l->out = (eng_shape){1, l->in.w, s->units};
    char name[2 * ENG_NAME_MAX];
    snprintf(name, sizeof name, "%s/embeddings", l->name);
    const int e = eng_layout_add(lay, name, 2, (int[]){s->input_dim, s->units});
    l->kernel = lay->tensors[e].offset;
    l->init[0] = ENG_INIT_UNIFORM;
    return PST_OK;
}

static void embedding_fwd(const eng_layer *l, const eng_fwd_args *a) {
    eng_embedding_forward(a->y, a->x, a->params + l->kernel, a->batch, l->in.w, l->spec.input_dim,
                          l->spec.units);
}

static void embedding_bwd(const eng_layer *l, const eng_bwd_args *a) {
    eng_embedding_backward(a->grads + l->kernel, a->dy, a->x, a->batch, l->in.w, l->spec.input_dim,
                           l->spec.units, a->accumulate);
}

const eng_layer_ops eng_embedding_ops = {
    .keras_class = "Embedding",
    .keras_prefix = "embedding",
    .build = embedding_build,
    .forward = embedding_fwd,
    .backward = embedding_bwd,
};
