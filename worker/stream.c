/* stream.c: shares, per-epoch shuffles and batches. */
#include "worker/stream.h"

#include "engine/base/base.h"
#include "engine/imdb.h"
#include "engine/rng.h"

#include <string.h>

/* Keys that separate the random streams drawn from one seed. */
enum { KEY_SHUFFLE = 0x53485546, KEY_DROPOUT = 0x44524F50 };

int wk_stream_open(wk_stream *s, const char *dir, const char *dataset, const wk_text *text,
                   double val_split, int rank, int world, uint64_t seed, int batch, char *err,
                   size_t errlen) {
    memset(s, 0, sizeof *s);
    int rc = text ? eng_split_load_imdb(&s->data, dir, text->num_words, text->maxlen, val_split,
                                        rank, world, text->vocab_out, text->vocab_in, err, errlen)
                  : eng_split_load_idx(&s->data, dir, dataset, val_split, rank, world, err, errlen);
    if (rc != PST_OK)
        return rc;
    if (s->data.train.n < 1) {
        wk_stream_close(s);
        return pst_err(err, errlen, PST_EARG,
                       "--val-split %g leaves worker %d of %d no training samples", val_split, rank,
                       world);
    }
    s->order = pst_malloc(sizeof(uint32_t) * (size_t)s->data.train.n);
    s->rank = rank;
    s->world = world;
    s->batch = batch;
    s->seed = seed;
    wk_stream_limit(s, s->data.train.n);
    wk_stream_epoch(s, 1);
    return PST_OK;
}

void wk_stream_close(wk_stream *s) {
    eng_split_deinit(&s->data);
    pst_free(s->order);
    s->order = NULL;
}

void wk_stream_limit(wk_stream *s, int64_t usable) {
    PST_ASSERT(usable >= 1 && usable <= s->data.train.n, "usable %lld of %lld", (long long)usable,
               (long long)s->data.train.n);
    s->usable = usable;
    s->steps_per_epoch = (usable + s->batch - 1) / s->batch;
}

void wk_stream_epoch(wk_stream *s, int64_t epoch) {
    for (int64_t i = 0; i < s->data.train.n; i++)
        s->order[i] = (uint32_t)i;
    /* Rank 0's stream is the one-process stream of the same seed. */
    eng_rng rng;
    eng_rng_seed(
        &rng, eng_hash3(s->seed + (uint64_t)s->rank * 0x9E3779B9u, (uint64_t)epoch, KEY_SHUFFLE));
    eng_rng_shuffle(&rng, s->order, (size_t)s->data.train.n);
}

int wk_stream_batch(const wk_stream *s, int64_t step, float *x, uint8_t *labels) {
    const int64_t first = step * s->batch;
    PST_ASSERT(step >= 0 && first < s->usable, "step %lld of %lld", (long long)step,
               (long long)s->steps_per_epoch);
    const int B = (int)(s->usable - first < s->batch ? s->usable - first : s->batch);
    eng_dataset_gather(&s->data.train, s->order + first, B, x, labels);
    return B;
}

uint64_t wk_step_key(uint64_t seed, int64_t step) {
    return eng_hash3(seed, (uint64_t)step, KEY_DROPOUT);
}
