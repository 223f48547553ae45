/* test_imdb.c: eng_split_load_imdb on the real reviews (PSTRAIN_DATA, else the build's data
 * dir): 88,584 distinct words in the 25,000 training reviews (the size of Keras's
 * imdb_word_index.json), 25,000 + 25,000 reviews with 12,500 of each label, a validation
 * part that holds both labels, review 12,500's sequence word by word and where the seeded
 * shuffle puts it, shares that partition the data, and a vocabulary passed back in.
 * Then small made-up data sets in a temporary directory: reviews.json and the aclImdb
 * folders load to the same thing, and each malformed file is one line of error naming the
 * file and the position or element. Prints the load time. */
#include "engine/imdb.h"

#include "engine/base/base.h"
#include "engine/rng.h"
#include "tests/support/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

enum { NUM_WORDS = 10000, MAXLEN = 200, NTRAIN = 25000, NVAL = 5000 };

/* The split every real-data test compares with: val_split 0.2, one process. */
static eng_split full;
static eng_vocab *vocab;
static int loaded;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void need_data(void) {
    char json[4096], folder[4096];
    snprintf(json, sizeof json, "%s/imdb/reviews.json", tu_data_dir());
    snprintf(folder, sizeof folder, "%s/aclImdb", tu_data_dir());
    if (access(json, R_OK) != 0 && access(folder, R_OK) != 0)
        fail_msg("data missing: %s (nor %s/) is not readable; this test needs the real IMDB "
                 "reviews: run launch/fetch-data, or set PSTRAIN_DATA to the data directory "
                 "(now '%s')",
                 json, folder, tu_data_dir());
}

static void load_full(void) {
    if (loaded)
        return;
    need_data();
    char err[512] = "";
    const double t0 = now();
    const int rc = eng_split_load_imdb(&full, tu_data_dir(), NUM_WORDS, MAXLEN, 0.2, 0, 1, &vocab,
                                       NULL, err, sizeof err);
    if (rc != PST_OK)
        fail_msg("eng_split_load_imdb: %s", err);
    printf("  loaded %s in %.2f s: train %lld, validation %lld, test %lld; %d words\n",
           tu_data_dir(), now() - t0, (long long)full.train.n, (long long)full.val.n,
           (long long)full.test.n, eng_vocab_size(vocab));
    loaded = 1;
}

static int teardown_group(void **state) {
    (void)state;
    eng_split_deinit(&full);
    eng_vocab_free(&vocab);
    return 0;
}

static int64_t positives(const eng_dataset *d) {
    int64_t n = 0;
    for (int64_t i = 0; i < d->n; i++)
        n += d->labels[i];
    return n;
}

/* Every row: pre-padding then the start mark, or a row cut at the front; ids < num_words. */
static void check_rows(const eng_dataset *d, int num_words, const char *what) {
    assert_true(d->shape.h == 1 && d->shape.w == MAXLEN && d->shape.c == 1);
    assert_int_equal(d->nclasses, 2);
    assert_null(d->images);
    assert_non_null(d->tokens);
    int64_t cut = 0;
    for (int64_t i = 0; i < d->n; i++) {
        const uint16_t *row = d->tokens + i * MAXLEN;
        int t = 0;
        while (t < MAXLEN && row[t] == ENG_TEXT_PAD)
            t++;
        if (t == 0 && row[0] != ENG_TEXT_START)
            cut++;
        else if (t == MAXLEN || row[t] != ENG_TEXT_START)
            fail_msg("%s row %lld: %d pads, then %u, not the start mark", what, (long long)i, t,
                     t < MAXLEN ? row[t] : 0);
        for (t++; t < MAXLEN; t++)
            if (row[t] < ENG_TEXT_OOV || row[t] >= num_words)
                fail_msg("%s row %lld: entry %d is %u", what, (long long)i, t, row[t]);
        assert_true(d->labels[i] <= 1);
    }
    printf("  %s: %lld rows, %lld cut to the last %d\n", what, (long long)d->n, (long long)cut,
           MAXLEN);
}

/* Keras's imdb_word_index.json has 88,584 words; the most frequent come first. */
static void vocabulary_size(void **state) {
    (void)state;
    load_full();
    printf("  distinct words in the training reviews: %d\n", eng_vocab_size(vocab));
    assert_int_equal(eng_vocab_size(vocab), 88584);
    static const char *const top[] = {"the", "and", "a", "of", "to", "is", "in", "it"};
    for (int r = 0; r < 8; r++)
        if (strcmp(eng_vocab_word(vocab, r), top[r]) != 0)
            fail_msg("rank %d is '%s', expected '%s'", r, eng_vocab_word(vocab, r), top[r]);
    assert_int_equal(eng_vocab_count(vocab, 0), 336148);
    for (int r = 1; r < eng_vocab_size(vocab); r++)
        assert_true(eng_vocab_count(vocab, r) <= eng_vocab_count(vocab, r - 1));
    assert_int_equal(eng_vocab_count(vocab, eng_vocab_size(vocab) - 1), 1);
}

static void sizes_and_labels(void **state) {
    (void)state;
    need_data();
    eng_split s;
    char err[512] = "";
    if (eng_split_load_imdb(&s, tu_data_dir(), NUM_WORDS, MAXLEN, 0.0, 0, 1, NULL, NULL, err,
                            sizeof err) != PST_OK)
        fail_msg("eng_split_load_imdb: %s", err);
    assert_int_equal(s.train.n, NTRAIN);
    assert_int_equal(s.val.n, 0);
    assert_null(s.val.tokens);
    assert_int_equal(s.test.n, 25000);
    assert_int_equal(positives(&s.train), 12500);
    assert_int_equal(positives(&s.test), 12500);
    check_rows(&s.train, NUM_WORDS, "train");
    check_rows(&s.test, NUM_WORDS, "test");
    eng_split_deinit(&s);
}

/* validation_split takes the last 20%: the shuffle puts both labels there. */
static void validation_balanced(void **state) {
    (void)state;
    load_full();
    assert_int_equal(full.train.n, NTRAIN - NVAL);
    assert_int_equal(full.val.n, NVAL);
    const int64_t pos = positives(&full.val);
    printf("  validation: %lld of %d positive\n", (long long)pos, NVAL);
    assert_true(pos >= NVAL * 4 / 10 && pos <= NVAL * 6 / 10);
    assert_int_equal(positives(&full.train) + pos, 12500);
    check_rows(&full.val, NUM_WORDS, "validation");
}

/* Review 12,500, the first of train/neg ("Story of a man who has unnatural feelings for a
 * pig. Starts out with a opening scene ..."): its words looked up in the vocabulary, at
 * the place the seeded shuffle gives training review 0. */
static void known_review(void **state) {
    (void)state;
    load_full();
    static const char *const words[] = {
        "story", "of",  "a",        "man",     "who",  "has",    "unnatural", "feelings", "for",
        "a",     "pig", "starts",   "out",     "with", "a",      "opening",   "scene",    "that",
        "is",    "a",   "terrific", "example", "of",   "absurd", "comedy"};
    enum { NW = sizeof words / sizeof words[0] };
    uint16_t expect[NW + 1] = {ENG_TEXT_START};
    for (int i = 0; i < NW; i++) {
        const int r = eng_vocab_rank(vocab, words[i], strlen(words[i]));
        if (r < 0)
            fail_msg("'%s' is not in the vocabulary", words[i]);
        expect[i + 1] = (uint16_t)(r + 4 < NUM_WORDS ? r + 4 : ENG_TEXT_OOV);
    }
    /* The commonest: "a" rank 2 -> 6, "of" rank 3 -> 7, "is" rank 5 -> 9. */
    assert_int_equal(expect[3], 6);
    assert_int_equal(expect[2], 7);
    assert_int_equal(expect[19], 9);

    /* Where it lands: training review 0 after the shuffle of 25,000 with seed 113. */
    uint32_t *perm = malloc(sizeof *perm * NTRAIN);
    assert_non_null(perm);
    for (uint32_t i = 0; i < NTRAIN; i++)
        perm[i] = i;
    eng_rng rng;
    eng_rng_seed(&rng, ENG_IMDB_SEED);
    eng_rng_shuffle(&rng, perm, NTRAIN);
    int64_t at = -1;
    for (int64_t i = 0; i < NTRAIN; i++)
        if (perm[i] == 0)
            at = i;
    free(perm);
    const eng_dataset *d = at < NTRAIN - NVAL ? &full.train : &full.val;
    const int64_t row = at < NTRAIN - NVAL ? at : at - (NTRAIN - NVAL);
    printf("  review 12500 is %s row %lld\n", d == &full.train ? "train" : "validation",
           (long long)row);
    const uint16_t *seq = d->tokens + row * MAXLEN;
    int t = 0;
    while (t < MAXLEN && seq[t] == ENG_TEXT_PAD)
        t++;
    assert_true(t > 0); /* ~112 words: padded, not cut */
    assert_true(t + NW + 1 <= MAXLEN);
    for (int i = 0; i <= NW; i++)
        if (seq[t + i] != expect[i])
            fail_msg("entry %d after the padding is %u, expected %u ('%s')", i, seq[t + i],
                     expect[i], i ? words[i - 1] : "start");
    assert_int_equal(d->labels[row], 0);
}

/* Ranks 0..2 of 3 hold, in order, exactly what one process holds. */
static void shares_partition(void **state) {
    (void)state;
    load_full();
    const eng_dataset *whole[3] = {&full.train, &full.val, &full.test};
    int64_t next[3] = {0, 0, 0};
    for (int r = 0; r < 3; r++) {
        eng_split s;
        char err[512] = "";
        if (eng_split_load_imdb(&s, tu_data_dir(), NUM_WORDS, MAXLEN, 0.2, r, 3, NULL, NULL, err,
                                sizeof err) != PST_OK)
            fail_msg("rank %d of 3: %s", r, err);
        const eng_dataset *part[3] = {&s.train, &s.val, &s.test};
        for (int p = 0; p < 3; p++) {
            const int64_t n = part[p]->n;
            assert_true(n >= whole[p]->n / 3 && n <= whole[p]->n / 3 + 1);
            assert_memory_equal(part[p]->tokens, whole[p]->tokens + next[p] * MAXLEN,
                                sizeof(uint16_t) * (size_t)(n * MAXLEN));
            assert_memory_equal(part[p]->labels, whole[p]->labels + next[p], (size_t)n);
            next[p] += n;
        }
        eng_split_deinit(&s);
    }
    for (int p = 0; p < 3; p++)
        assert_int_equal(next[p], whole[p]->n);
}

/* A resumed job's vocabulary (rebuilt from its saved words) gives the same sequences, and
 * vocab_out gets a copy of it. */
static void vocabulary_passed_in(void **state) {
    (void)state;
    load_full();
    const int n = eng_vocab_size(vocab);
    const char **words = malloc(sizeof *words * (size_t)n);
    assert_non_null(words);
    for (int r = 0; r < n; r++)
        words[r] = eng_vocab_word(vocab, r);
    char err[512] = "";
    eng_vocab *saved = eng_vocab_from_words(words, n, err, sizeof err);
    free(words);
    if (!saved)
        fail_msg("eng_vocab_from_words: %s", err);
    eng_split s;
    eng_vocab *out = NULL;
    const double t0 = now();
    if (eng_split_load_imdb(&s, tu_data_dir(), NUM_WORDS, MAXLEN, 0.2, 0, 1, &out, saved, err,
                            sizeof err) != PST_OK)
        fail_msg("eng_split_load_imdb with a vocabulary: %s", err);
    printf("  loaded with a given vocabulary in %.2f s\n", now() - t0);
    assert_non_null(out);
    assert_true(out != saved);
    assert_int_equal(eng_vocab_size(out), n);
    assert_string_equal(eng_vocab_word(out, n - 1), eng_vocab_word(vocab, n - 1));
    const eng_dataset *a[3] = {&full.train, &full.val, &full.test};
    const eng_dataset *b[3] = {&s.train, &s.val, &s.test};
    for (int p = 0; p < 3; p++) {
        assert_int_equal(a[p]->n, b[p]->n);
        assert_memory_equal(a[p]->tokens, b[p]->tokens,
                            sizeof(uint16_t) * (size_t)(a[p]->n * MAXLEN));
        assert_memory_equal(a[p]->labels, b[p]->labels, (size_t)a[p]->n);
    }
    eng_split_deinit(&s);
    eng_vocab_free(&out);
    eng_vocab_free(&saved);
}

/* --- made-up data sets in a temporary directory --- */

enum { PER_BLOCK = 12, NFAKE = 4 * PER_BLOCK };
static const char *const BLOCKS[4] = {"test/neg", "train/neg", "test/pos", "train/pos"};
static char tmp[1024];

/* Review i's text, in JSON (é escaped) or as the file holds it (UTF-8). */
static void fake_text(char *buf, size_t len, int i, int json) {
    const int b = i / PER_BLOCK, k = i % PER_BLOCK;
    snprintf(buf, len, "Film B%dK%d: %s<br /><br />Don't miss caf%s w%d.", b, k,
             b >= 2 ? "great, GREAT fun" : "bad and boring", json ? "\\u00e9" : "\xc3\xa9", i % 5);
}

/* The JSON text of NFAKE reviews into buf; element `bad` (if >= 0) replaced by bad_elem. */
static void fake_json(char *buf, size_t len, int bad, const char *bad_elem) {
    size_t o = (size_t)snprintf(buf, len, "[\n");
    for (int i = 0; i < NFAKE; i++) {
        char text[256];
        fake_text(text, sizeof text, i, 1);
        if (i == bad)
            o += (size_t)snprintf(buf + o, len - o, "  %s", bad_elem);
        else
            o += (size_t)snprintf(buf + o, len - o, "  {\"t\": \"%s\", \"s\": %d}", text,
                                  i / PER_BLOCK >= 2);
        o += (size_t)snprintf(buf + o, len - o, "%s\n", i + 1 < NFAKE ? "," : "");
    }
    snprintf(buf + o, len - o, "]\n");
    assert_true(o + 3 < len);
}

/* tmp/sub/imdb/reviews.json with the given text; returns its path in path. */
static void write_json(const char *sub, const char *text, size_t len, char *path, size_t pathlen) {
    char d[1200];
    snprintf(d, sizeof d, "%s/%s", tmp, sub);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/%s/imdb", tmp, sub);
    mkdir(d, 0700);
    snprintf(path, pathlen, "%s/reviews.json", d);
    if (tu_write_file(path, text, len) != 0)
        fail_msg("cannot write %s", path);
}

/* tmp/sub/aclImdb/<block>/<k>_<rating>.txt for the same reviews. */
static void write_folders(const char *sub) {
    char d[1200], f[1300];
    snprintf(d, sizeof d, "%s/%s", tmp, sub);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/%s/aclImdb", tmp, sub);
    mkdir(d, 0700);
    static const char *const top[2] = {"test", "train"};
    for (int t = 0; t < 2; t++) {
        snprintf(d, sizeof d, "%s/%s/aclImdb/%s", tmp, sub, top[t]);
        mkdir(d, 0700);
    }
    for (int b = 0; b < 4; b++) {
        snprintf(d, sizeof d, "%s/%s/aclImdb/%s", tmp, sub, BLOCKS[b]);
        if (mkdir(d, 0700) != 0)
            fail_msg("mkdir %s failed", d);
        for (int k = 0; k < PER_BLOCK; k++) {
            char text[256];
            fake_text(text, sizeof text, b * PER_BLOCK + k, 0);
            snprintf(f, sizeof f, "%s/%d_%d.txt", d, k, b >= 2 ? 8 : 3);
            if (tu_write_file(f, text, strlen(text)) != 0)
                fail_msg("cannot write %s", f);
        }
    }
}

/* Removes tmp/sub (deeper than tu_rmtree goes when it holds aclImdb). */
static void remove_sub(const char *sub) {
    char d[1200];
    for (int b = 0; b < 4; b++) {
        snprintf(d, sizeof d, "%s/%s/aclImdb/%s", tmp, sub, BLOCKS[b]);
        tu_rmtree(d);
    }
    snprintf(d, sizeof d, "%s/%s/aclImdb", tmp, sub);
    tu_rmtree(d);
    snprintf(d, sizeof d, "%s/%s", tmp, sub);
    tu_rmtree(d);
}

static int setup_tmp(void **state) {
    (void)state;
    return tu_mkdtemp(tmp, sizeof tmp, "imdb");
}

static int teardown_tmp(void **state) {
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

static void expect_same_split(const eng_split *a, const eng_split *b) {
    const eng_dataset *x[3] = {&a->train, &a->val, &a->test};
    const eng_dataset *y[3] = {&b->train, &b->val, &b->test};
    for (int p = 0; p < 3; p++) {
        assert_int_equal(x[p]->n, y[p]->n);
        assert_memory_equal(x[p]->tokens, y[p]->tokens,
                            sizeof(uint16_t) * (size_t)x[p]->n * (size_t)x[p]->shape.w);
        assert_memory_equal(x[p]->labels, y[p]->labels, (size_t)x[p]->n);
    }
}

/* The same reviews as reviews.json and as aclImdb folders (numbered 0..11, so that file
 * order is number order, not name order: 2_3.txt before 10_3.txt) load alike. */
static void json_and_folders_agree(void **state) {
    (void)state;
    char buf[16384], path[1300], err[512] = "";
    fake_json(buf, sizeof buf, -1, NULL);
    write_json("json", buf, strlen(buf), path, sizeof path);
    write_folders("folders");
    char dj[1200], df[1200];
    snprintf(dj, sizeof dj, "%s/json", tmp);
    snprintf(df, sizeof df, "%s/folders", tmp);
    eng_split a, b;
    eng_vocab *va = NULL, *vb = NULL;
    if (eng_split_load_imdb(&a, dj, 20, 16, 0.25, 0, 1, &va, NULL, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    if (eng_split_load_imdb(&b, df, 20, 16, 0.25, 0, 1, &vb, NULL, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    assert_int_equal(a.train.n, 18);
    assert_int_equal(a.val.n, 6);
    assert_int_equal(a.test.n, 24);
    assert_int_equal(positives(&a.train) + positives(&a.val), 12);
    assert_int_equal(positives(&a.test), 12);
    expect_same_split(&a, &b);
    /* Only the 24 training reviews count: café, don't, film, great and miss 24 times each,
     * ties in byte order; no "br" from "<br />"; no word of the test reviews. */
    assert_int_equal(eng_vocab_size(va), eng_vocab_size(vb));
    for (int r = 0; r < eng_vocab_size(va); r++)
        assert_string_equal(eng_vocab_word(va, r), eng_vocab_word(vb, r));
    assert_string_equal(eng_vocab_word(va, 0), "caf\xc3\xa9");
    assert_int_equal(eng_vocab_count(va, 0), 24);
    assert_int_equal(eng_vocab_rank(va, "br", 2), -1);
    assert_true(eng_vocab_rank(va, "b1k10", 5) >= 0);     /* a training review's word */
    assert_int_equal(eng_vocab_rank(va, "b0k10", 5), -1); /* a test review's word */
    eng_split_deinit(&a);
    eng_split_deinit(&b);
    eng_vocab_free(&va);
    eng_vocab_free(&vb);
    remove_sub("json");
    remove_sub("folders");
}

/* rc must be code and err one line naming the file (or folder) and holding each of says. */
static void expect_error(int rc, int code, const char *err, const char *path, const char *say1,
                         const char *say2) {
    printf("  -> rc %d: %s\n", rc, err);
    if (rc != code)
        fail_msg("rc %d, expected %d; message: %s", rc, code, err);
    if (!strstr(err, path))
        fail_msg("message '%s' does not name %s", err, path);
    if (say1 && !strstr(err, say1))
        fail_msg("message '%s' does not say '%s'", err, say1);
    if (say2 && !strstr(err, say2))
        fail_msg("message '%s' does not say '%s'", err, say2);
    if (strchr(err, '\n'))
        fail_msg("message '%s' is more than one line", err);
}

/* Loads tmp/sub, which must fail with code and a message naming path and saying say1 and
 * say2; the split is left empty. */
static void expect_refused(const char *sub, int code, const char *path, const char *say1,
                           const char *say2) {
    char d[1200], err[512] = "";
    snprintf(d, sizeof d, "%s/%s", tmp, sub);
    eng_split s;
    eng_vocab *v = NULL;
    const int rc = eng_split_load_imdb(&s, d, 20, 16, 0.1, 0, 1, &v, NULL, err, sizeof err);
    expect_error(rc, code, err, path, say1, say2);
    assert_null(v);
    assert_null(s.train.tokens);
    assert_null(s.test.tokens);
}

static void bad_json(const char *sub, int bad, const char *elem, const char *say1,
                     const char *say2) {
    char buf[16384], path[1300];
    fake_json(buf, sizeof buf, bad, elem);
    write_json(sub, buf, strlen(buf), path, sizeof path);
    expect_refused(sub, PST_EFORMAT, path, say1, say2);
    remove_sub(sub);
}

static void refusals(void **state) {
    (void)state;
    char buf[16384], path[1300];
    /* Cut in the middle of element 20 (line 22): jansson's line and column. */
    fake_json(buf, sizeof buf, -1, NULL);
    const char *cut = strstr(buf, "B1K8");
    assert_non_null(cut);
    write_json("truncated", buf, (size_t)(cut - buf), path, sizeof path);
    expect_refused("truncated", PST_EFORMAT, path, "line 22, column", "invalid JSON");
    remove_sub("truncated");
    /* Not JSON at all, and a syntax error. */
    write_json("garbage", "PK\3\4", 4, path, sizeof path);
    expect_refused("garbage", PST_EFORMAT, path, "line 1", "invalid JSON");
    remove_sub("garbage");
    bad_json("syntax", 2, "{\"t\": \"x\", \"s\": 0,}", "line 4", "column");

    bad_json("no_t", 5, "{\"text\": \"x\", \"s\": 0}", "element 5", "\"t\"");
    bad_json("t_number", 7, "{\"t\": 7, \"s\": 0}", "element 7", "\"t\" is an integer");
    bad_json("no_s", 9, "{\"t\": \"x\"}", "element 9", "\"s\"");
    bad_json("label2", 3, "{\"t\": \"x\", \"s\": 2}", "element 3", "label \"s\" is 2");
    bad_json("label_str", 4, "{\"t\": \"x\", \"s\": \"0\"}", "element 4", "\"s\" is a string");
    bad_json("not_object", 11, "[\"x\", 0]", "element 11", "is an array");
    /* A positive review in the test/neg block: the file is not in aclImdb's order. */
    bad_json("wrong_block", 30, "{\"t\": \"x\", \"s\": 0}", "element 30", "test/pos");

    write_json("object", "{\"t\": \"x\", \"s\": 0}", 18, path, sizeof path);
    expect_refused("object", PST_EFORMAT, path, "expected a JSON array", "an object");
    remove_sub("object");
    fake_json(buf, sizeof buf, -1, NULL);
    char *last = strrchr(buf, '{');
    strcpy(last - 4, "\n]\n"); /* drop the last element: 47 */
    write_json("odd", buf, strlen(buf), path, sizeof path);
    expect_refused("odd", PST_EFORMAT, path, "47 reviews", "four equal blocks");
    remove_sub("odd");

    /* Nothing there; a folder missing. */
    char d[1200];
    snprintf(d, sizeof d, "%s/empty", tmp);
    mkdir(d, 0700);
    snprintf(path, sizeof path, "%s/empty/imdb/reviews.json", tmp);
    expect_refused("empty", PST_EIO, path, "not found", "aclImdb");
    rmdir(d);
    write_folders("three");
    snprintf(d, sizeof d, "%s/three/aclImdb/train/pos", tmp);
    tu_rmtree(d);
    expect_refused("three", PST_EIO, d, "cannot open", NULL);
    remove_sub("three");
}

/* Arguments outside their ranges. */
static void bad_arguments(void **state) {
    (void)state;
    eng_split s;
    char err[512] = "";
    const char *dir = tmp; /* never read: the arguments are checked first */
    assert_int_equal(eng_split_load_imdb(&s, dir, 3, 16, 0.1, 0, 1, NULL, NULL, err, sizeof err),
                     PST_EARG);
    printf("  -> %s\n", err);
    assert_int_equal(
        eng_split_load_imdb(&s, dir, 65537, 16, 0.1, 0, 1, NULL, NULL, err, sizeof err), PST_EARG);
    assert_int_equal(eng_split_load_imdb(&s, dir, 20, 0, 0.1, 0, 1, NULL, NULL, err, sizeof err),
                     PST_EARG);
    printf("  -> %s\n", err);
    assert_int_equal(eng_split_load_imdb(&s, dir, 20, 16, 1.0, 0, 1, NULL, NULL, err, sizeof err),
                     PST_EARG);
    printf("  -> %s\n", err);
}

int main(void) {
    const struct CMUnitTest real[] = {
        cmocka_unit_test(vocabulary_size),     cmocka_unit_test(sizes_and_labels),
        cmocka_unit_test(validation_balanced), cmocka_unit_test(known_review),
        cmocka_unit_test(shares_partition),    cmocka_unit_test(vocabulary_passed_in),
    };
    const struct CMUnitTest fake[] = {
        cmocka_unit_test(json_and_folders_agree),
        cmocka_unit_test(refusals),
        cmocka_unit_test(bad_arguments),
    };
    const int failed = cmocka_run_group_tests_name("fake", fake, setup_tmp, teardown_tmp);
    return failed + cmocka_run_group_tests_name("real", real, NULL, teardown_group);
}
