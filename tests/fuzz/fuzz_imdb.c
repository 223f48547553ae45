/* fuzz_imdb.c: libFuzzer harness for the IMDB reader (engine/imdb.h) and, through it, the
 * tokenizer and vocabulary (engine/text.h).
 *
 * Input: the bytes of reviews.json (a JSON array of {"t": text, "s": 0 or 1} in four equal
 * blocks). They are written to <scratch>/imdb/reviews.json, where eng_split_load_imdb looks
 * first, and loaded with a small vocabulary (num_words 40, maxlen 12): once building the
 * vocabulary (rank 0 of 1), once with that vocabulary given (rank 1 of 2), as a resumed job
 * does. A load must succeed with sequences that start with ENG_TEXT_START after their padding
 * and hold indices below num_words, or fail with one line naming reviews.json.
 *
 * Seeds: tests/fuzz/corpus/imdb (snippets of the real file in its format, by make_corpus). */
#include "engine/base/base.h"
#include "engine/imdb.h"
#include "tests/fuzz/fuzzutil.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

enum { NUM_WORDS = 40, MAXLEN = 12 };

static char dir[1100], path[1200];

/* Every sequence of d: padding, then ENG_TEXT_START, then word indices below NUM_WORDS. */
static void check_part(const eng_dataset *d, const char *what) {
    fz_check(d->n >= 0, "%s: %lld samples", what, (long long)d->n);
    if (d->n == 0)
        return;
    fz_check(d->tokens && d->labels, "%s: %lld samples without arrays", what, (long long)d->n);
    fz_check(d->shape.w == MAXLEN, "%s: sequences of %d", what, d->shape.w);
    for (int64_t i = 0; i < d->n; i++) {
        const uint16_t *t = d->tokens + (size_t)i * MAXLEN;
        fz_check(d->labels[i] <= 1, "%s: sample %lld has label %d", what, (long long)i,
                 d->labels[i]);
        int j = 0;
        while (j < MAXLEN && t[j] == ENG_TEXT_PAD)
            j++;
        /* A review longer than MAXLEN words loses its start to the cut ('pre'). */
        for (; j < MAXLEN; j++)
            fz_check(t[j] != ENG_TEXT_PAD && t[j] < NUM_WORDS, "%s: sample %lld token %d is %u",
                     what, (long long)i, j, t[j]);
    }
}

static void check_split(const eng_split *s, const char *what) {
    check_part(&s->train, what);
    check_part(&s->val, what);
    check_part(&s->test, what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s", fz_dir("imdb"));
        snprintf(path, sizeof path, "%s/imdb", dir);
        mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/imdb/reviews.json", dir);
    }
    fz_write(path, data, size);
    eng_split s;
    eng_vocab *v = NULL;
    char err[512] = "";
    int rc = eng_split_load_imdb(&s, dir, NUM_WORDS, MAXLEN, 0.25, 0, 1, &v, NULL, err, sizeof err);
    if (rc != PST_OK) {
        fz_check_error(rc, err, "reviews.json", "eng_split_load_imdb");
        fz_check(v == NULL, "a failed load returned a vocabulary");
        return 0;
    }
    fz_check(v != NULL, "a load returned no vocabulary");
    check_split(&s, "rank 0 of 1");
    for (int r = 0; r < eng_vocab_size(v) && r < 64; r++) {
        const char *w = eng_vocab_word(v, r);
        fz_check(w[0] != '\0', "vocabulary word %d is empty", r);
        fz_check(eng_vocab_rank(v, w, strlen(w)) == r, "word %d '%s' ranks %d", r, w,
                 eng_vocab_rank(v, w, strlen(w)));
    }
    eng_split_deinit(&s);
    eng_vocab *again = NULL;
    rc = eng_split_load_imdb(&s, dir, NUM_WORDS, MAXLEN, 0.25, 1, 2, &again, v, err, sizeof err);
    fz_check(rc == PST_OK, "the second load of the same file failed: %s", err);
    fz_check(again && eng_vocab_size(again) == eng_vocab_size(v), "vocabulary copy differs");
    check_split(&s, "rank 1 of 2, vocabulary given");
    eng_split_deinit(&s);
    eng_vocab_free(&again);
    eng_vocab_free(&v);
    return 0;
}
