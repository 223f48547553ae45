/* vocab.c: text models' vocabulary and touched rows. */
#include "worker/vocab.h"

#include "engine/base/base.h"

#include <stdlib.h>
#include <string.h>

int wk_text_of(const eng_model *m, wk_text *t) {
    if (strcmp(m->def->dataset, "imdb") != 0)
        return 0;
    const eng_layer *l = &m->layers[0];
    PST_ASSERT(l->spec.kind == ENG_EMBEDDING, "%s: a text model starts with an Embedding",
               m->def->name);
    *t = (wk_text){.num_words = l->spec.input_dim, .maxlen = m->input.w};
    return 1;
}

char *wk_vocab_blob(const eng_vocab *v, uint64_t *bytes) {
    const int n = eng_vocab_size(v);
    size_t len = 0;
    for (int r = 0; r < n; r++)
        len += strlen(eng_vocab_word(v, r)) + 1;
    char *blob = pst_malloc(len + 1), *p = blob;
    for (int r = 0; r < n; r++) {
        const size_t l = strlen(eng_vocab_word(v, r));
        memcpy(p, eng_vocab_word(v, r), l);
        p[l] = '\n';
        p += l + 1;
    }
    *p = '\0';
    *bytes = len;
    return blob;
}

eng_vocab *wk_vocab_from_blob(const char *blob, uint64_t bytes, char *err, size_t errlen) {
    char *copy = pst_malloc(bytes + 1);
    const char **words = pst_malloc(sizeof *words * (bytes + 1));
    int n = 0;
    memcpy(copy, blob, bytes);
    copy[bytes] = '\0';
    for (char *p = copy, *nl; *p; p = nl + 1) {
        if (!(nl = strchr(p, '\n')))
            break;
        *nl = '\0';
        words[n++] = p;
    }
    eng_vocab *v = eng_vocab_from_words(words, n, err, errlen);
    free(words);
    free(copy);
    return v;
}

int wk_touched_init(wk_touched *t, const eng_model *m) {
    memset(t, 0, sizeof *t);
    const int e = eng_layout_find(&m->layout, "embedding/embeddings");
    if (e < 0)
        return 0;
    const eng_tensor_info *ti = &m->layout.tensors[e];
    t->sp = (wk_sparse_rows){
        .from = ti->offset, .row_len = (size_t)ti->shape[1], .nrows = (size_t)ti->shape[0]};
    t->rows = pst_malloc(sizeof *t->rows * t->sp.nrows);
    t->seen = pst_calloc(t->sp.nrows, 1);
    t->sp.rows = t->rows;
    return 1;
}

void wk_touched_free(wk_touched *t) {
    free(t->rows);
    free(t->seen);
    memset(t, 0, sizeof *t);
}

void wk_touched_collect(wk_touched *t, const float *x, size_t len) {
    for (size_t i = 0; i < len; i++)
        t->seen[(uint32_t)x[i]] = 1;
    t->sp.n = 0;
    for (size_t r = 0; r < t->sp.nrows; r++)
        if (t->seen[r]) {
            t->rows[t->sp.n++] = (uint32_t)r;
            t->seen[r] = 0;
        }
}
