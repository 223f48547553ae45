/* test_text.c: the tokenizer, the vocabulary and the sequences on hand-made strings (no
 * data files): every filter byte and every kind of whitespace separates words, the
 * apostrophe and non-ASCII bytes do not, "<br />" (exactly) is a separator, A-Z alone are
 * lower-cased; ranks by count with ties in byte order; index_from, num_words and oov_char;
 * pre-truncation and pre-padding against hand-computed sequences and a naive reference; a
 * vocabulary rebuilt from its words (a checkpoint's) encodes identically, and bad word
 * lists are refused by rank. Then token data sets through eng_dataset_gather/slice. */
#include "engine/text.h"

#include "engine/base/base.h"
#include "engine/dataset.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The words of text[0, len), lower-cased, joined with '|' into out. */
static void words_n(char *out, size_t outlen, const char *text, size_t len) {
    size_t pos = 0, b, n, o = 0;
    out[0] = '\0';
    while (eng_text_next(text, len, &pos, &b, &n)) {
        assert_true(o + n + 2 < outlen);
        if (o)
            out[o++] = '|';
        eng_text_lower(out + o, text + b, n);
        o += n;
        out[o] = '\0';
    }
    assert_int_equal(pos, len);
}

/* text's words must be `expect` ('|'-joined). */
static void expect_words(const char *text, const char *expect) {
    char got[1024];
    words_n(got, sizeof got, text, strlen(text));
    if (strcmp(got, expect) != 0)
        fail_msg("words of \"%s\": got \"%s\", expected \"%s\"", text, got, expect);
}

/* Keras's filters '!"#$%&()*+,-./:;<=>?@[\]^_`{|}~\t\n', plus the other ASCII whitespace
 * and NUL: each alone between two words splits them, and a run of them is one split. */
static void every_separator(void **state) {
    (void)state;
    static const char seps[] = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n\v\f\r ";
    const size_t nseps = sizeof seps - 1;
    assert_int_equal(nseps, 31 + 2 + 4);
    char text[16];
    for (size_t i = 0; i < nseps; i++) {
        snprintf(text, sizeof text, "ab%ccd", seps[i]);
        char got[64];
        words_n(got, sizeof got, text, 5);
        if (strcmp(got, "ab|cd") != 0)
            fail_msg("byte 0x%02x: got \"%s\", expected \"ab|cd\"", seps[i], got);
    }
    /* NUL, which strlen cannot see. */
    char got[64];
    words_n(got, sizeof got, "ab\0cd", 5);
    assert_string_equal(got, "ab|cd");
    /* All of them at once, around and between words. */
    char all[128];
    snprintf(all, sizeof all, "%sx%sy%s", seps, seps, seps);
    expect_words(all, "x|y");
    expect_words(seps, "");
}

/* The bytes that are not separators: ASCII letters, digits, the apostrophe, and every byte
 * from 0x80 (UTF-8's letters and punctuation alike). */
static void what_stays_in_words(void **state) {
    (void)state;
    expect_words("don't", "don't");
    expect_words("'quoted' rock'n'roll", "'quoted'|rock'n'roll");
    expect_words("80's 1950s 7/10", "80's|1950s|7|10");
    expect_words("caf\xc3\xa9 na\xc3\xafve", "caf\xc3\xa9|na\xc3\xafve");
    /* Curly quotes and dashes (UTF-8) are not Keras filters either. */
    expect_words("\xe2\x80\x9cyes\xe2\x80\x9d \xe2\x80\x93 no",
                 "\xe2\x80\x9cyes\xe2\x80\x9d|\xe2\x80\x93|no");
    /* cp1252 leftovers as U+0085 / U+0096: no whitespace to us (Python's str.split() would
     * split at U+0085; Keras splits on ' ' only). */
    expect_words("a\xc2\x85"
                 "b c\xc2\x96"
                 "d",
                 "a\xc2\x85"
                 "b|c\xc2\x96"
                 "d");
    for (int c = 0x80; c < 0x100; c++) {
        char text[4] = {'a', (char)c, 'b', '\0'}, got[16];
        words_n(got, sizeof got, text, 3);
        if (strcmp(got, text) != 0)
            fail_msg("byte 0x%02x split or changed a word: \"%s\"", c, got);
    }
}

/* Only A-Z change; the rest, ASCII or not, stays as it is. */
static void lower_case(void **state) {
    (void)state;
    expect_words("Hello WORLD MiXeD", "hello|world|mixed");
    expect_words("\xc3\x89"
                 "COLE",
                 "\xc3\x89"
                 "cole");              /* "ÉCOLE": É is not ASCII */
    expect_words("@AZ[`az{", "az|az"); /* the neighbours of A-Z / a-z */
    char s[] = "ABC xyz 09 @[";
    eng_text_lower(s, s, strlen(s));
    assert_string_equal(s, "abc xyz 09 @[");
}

/* "<br />" is replaced by a space before lower-casing: exactly that string. */
static void line_breaks(void **state) {
    (void)state;
    expect_words("one<br />two", "one|two");
    expect_words("one.<br /><br />Two", "one|two");
    expect_words("<br />", "");
    expect_words("<br /><br /><br />", "");
    expect_words("end<br />", "end");
    expect_words("<<br />>", "");
    /* Not "<br />": its letters are a word like any other. */
    expect_words("a<br/>b", "a|br|b");
    expect_words("a<BR />b", "a|br|b");
    expect_words("a<br  />b", "a|br|b");
    expect_words("a<br /", "a|br");
    expect_words("a<br", "a|br");
    expect_words("<br>brown", "br|brown");
    expect_words("br bread", "br|bread");
}

static void empty_and_runs(void **state) {
    (void)state;
    expect_words("", "");
    expect_words("   ", "");
    expect_words("...!?", "");
    expect_words("  ,,a...b  --c", "a|b|c");
    expect_words("a\t\t\n\n b", "a|b");
    /* A word at the very end, and *start / *wlen into the text as written. */
    const char *t = "  Hi, YOU";
    size_t pos = 0, b, n;
    assert_int_equal(eng_text_next(t, strlen(t), &pos, &b, &n), 1);
    assert_int_equal(b, 2);
    assert_int_equal(n, 2);
    assert_int_equal(pos, 4);
    assert_int_equal(eng_text_next(t, strlen(t), &pos, &b, &n), 1);
    assert_int_equal(b, 6);
    assert_int_equal(n, 3);
    assert_memory_equal(t + b, "YOU", 3);
    assert_int_equal(eng_text_next(t, strlen(t), &pos, &b, &n), 0);
    assert_int_equal(eng_text_next(t, strlen(t), &pos, &b, &n), 0);
    /* Only len bytes count. */
    expect_words("", "");
    char got[64];
    words_n(got, sizeof got, "abc def", 5);
    assert_string_equal(got, "abc|d");
}

static eng_vocab *build(const char *const *texts, size_t n) {
    size_t lens[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(texts[i]);
    return eng_vocab_build(texts, lens, n);
}

/* v's words in rank order must be expect[0..n) with those counts. */
static void expect_vocab(const eng_vocab *v, const char *const *expect, const int64_t *counts,
                         int n) {
    if (eng_vocab_size(v) != n)
        fail_msg("%d words, expected %d", eng_vocab_size(v), n);
    for (int r = 0; r < n; r++) {
        if (strcmp(eng_vocab_word(v, r), expect[r]) != 0)
            fail_msg("rank %d is '%s', expected '%s'", r, eng_vocab_word(v, r), expect[r]);
        if (counts && eng_vocab_count(v, r) != counts[r])
            fail_msg("'%s' counted %lld times, expected %lld", expect[r],
                     (long long)eng_vocab_count(v, r), (long long)counts[r]);
        assert_int_equal(eng_vocab_rank(v, expect[r], strlen(expect[r])), r);
    }
}

/* Count descending; ties in byte order: a prefix first, then by unsigned bytes (so UTF-8
 * after ASCII), whatever order the words first appeared in. */
static void vocabulary_order(void **state) {
    (void)state;
    const char *texts[] = {
        "The cat. the dog, THE end!",        /* the x3 */
        "dog cat cat<br />dog",              /* cat 3, dog 3 */
        "zz \xc3\xa9t\xc3\xa9 zebra z zz-z", /* zz 2, z 2, été 1, zebra 1 */
        "end \xc3\xa9t\xc3\xa9 zebra",       /* end 2, été 2, zebra 2 */
        "",
    };
    eng_vocab *v = build(texts, 5);
    const char *expect[] = {"cat", "dog", "the", "end", "z", "zebra", "zz", "\xc3\xa9t\xc3\xa9"};
    const int64_t counts[] = {3, 3, 3, 2, 2, 2, 2, 2};
    expect_vocab(v, expect, counts, 8);
    /* Lookups read words as the tokenizer does; unknown words have no rank. */
    assert_int_equal(eng_vocab_rank(v, "DOG", 3), 1);
    assert_int_equal(eng_vocab_rank(v, "Zebra", 5), 5);
    assert_int_equal(eng_vocab_rank(v, "zebras", 6), -1);
    assert_int_equal(eng_vocab_rank(v, "ze", 2), -1);
    assert_int_equal(eng_vocab_rank(v, "", 0), -1);
    assert_int_equal(eng_vocab_rank(v, "br", 2), -1);
    eng_vocab_free(&v);
    assert_null(v);
    eng_vocab_free(&v); /* NULL is fine */
    eng_vocab_free(NULL);

    /* No words at all. */
    const char *none[] = {"", "<br />...", "  "};
    v = build(none, 3);
    assert_int_equal(eng_vocab_size(v), 0);
    uint16_t seq[3];
    assert_int_equal(eng_vocab_encode(v, "a b", 3, 10, 3, seq), 1);
    assert_true(seq[0] == 0 && seq[1] == 0 && seq[2] == ENG_TEXT_START);
    eng_vocab_free(&v);
}

/* More distinct words than the table's first size: it grows, and every word keeps its
 * rank and count. */
static void vocabulary_grows(void **state) {
    (void)state;
    enum { N = 150000 };
    char *text = malloc((size_t)N * 8 + 16);
    assert_non_null(text);
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)sprintf(text + len, "w%d ", i);
    const char *texts[1] = {text};
    eng_vocab *v = eng_vocab_build(texts, &len, 1);
    assert_non_null(v);
    assert_int_equal(eng_vocab_size(v), N);
    /* All counts are 1: byte order, so "w0" < "w1" < "w10" < "w100". */
    assert_string_equal(eng_vocab_word(v, 0), "w0");
    assert_string_equal(eng_vocab_word(v, 1), "w1");
    assert_string_equal(eng_vocab_word(v, 2), "w10");
    assert_string_equal(eng_vocab_word(v, 3), "w100");
    for (int r = 1; r < N; r++)
        if (strcmp(eng_vocab_word(v, r - 1), eng_vocab_word(v, r)) >= 0)
            fail_msg("ranks %d, %d out of order: '%s', '%s'", r - 1, r, eng_vocab_word(v, r - 1),
                     eng_vocab_word(v, r));
    char w[16];
    for (int i = 0; i < N; i += 997) {
        snprintf(w, sizeof w, "w%d", i);
        const int r = eng_vocab_rank(v, w, strlen(w));
        assert_true(r >= 0);
        assert_string_equal(eng_vocab_word(v, r), w);
        assert_int_equal(eng_vocab_count(v, r), 1);
    }
    eng_vocab_free(&v);
    free(text);
}

/* The vocabulary "a b c d" (ranks 0..3, indices 4..7). */
static eng_vocab *abcd(void) {
    const char *texts[] = {"a a a a b b b c c d"};
    eng_vocab *v = build(texts, 1);
    const char *expect[] = {"a", "b", "c", "d"};
    expect_vocab(v, expect, NULL, 4);
    return v;
}

static void expect_seq(const eng_vocab *v, const char *text, int num_words, int maxlen,
                       const uint16_t *expect, int64_t expect_len) {
    uint16_t got[64];
    assert_true(maxlen <= 64);
    const int64_t n = eng_vocab_encode(v, text, strlen(text), num_words, maxlen, got);
    if (n != expect_len)
        fail_msg("\"%s\" (num_words %d, maxlen %d): length %lld, expected %lld", text, num_words,
                 maxlen, (long long)n, (long long)expect_len);
    for (int t = 0; t < maxlen; t++)
        if (got[t] != expect[t])
            fail_msg("\"%s\" (num_words %d, maxlen %d): entry %d is %u, expected %u", text,
                     num_words, maxlen, t, got[t], expect[t]);
}

/* index_from = 3 over word_index from 1: rank r -> r + 4; num_words keeps indices below
 * it, the others are oov_char 2; words never seen are left out. */
static void indices_and_oov(void **state) {
    (void)state;
    eng_vocab *v = abcd();
    const uint16_t all[] = {1, 4, 5, 6, 7, 4};
    expect_seq(v, "a b c d a", 10000, 6, all, 6);
    const uint16_t cut6[] = {1, 4, 5, 2, 2, 4}; /* indices 6, 7 >= 6 */
    expect_seq(v, "a b c d a", 6, 6, cut6, 6);
    const uint16_t cut8[] = {1, 4, 5, 6, 7, 4}; /* 7 < 8: all kept */
    expect_seq(v, "a b c d a", 8, 6, cut8, 6);
    const uint16_t cut4[] = {1, 2, 2, 2, 2, 2}; /* num_words 4: every word is oov_char */
    expect_seq(v, "a b c d a", 4, 6, cut4, 6);
    const uint16_t unseen[] = {0, 0, 1, 4, 7, 5}; /* "x" and "yy" are left out */
    expect_seq(v, "x a yy D b", 10000, 6, unseen, 4);
    expect_seq(v, "A, D! B?", 10000, 6, unseen, 4);
    eng_vocab_free(&v);
}

/* pad_sequences(maxlen): padding='pre', truncating='pre'. */
static void padding_and_truncation(void **state) {
    (void)state;
    eng_vocab *v = abcd();
    const char *text = "a b c d a"; /* [1, 4, 5, 6, 7, 4] */
    const uint16_t m10[] = {0, 0, 0, 0, 1, 4, 5, 6, 7, 4};
    expect_seq(v, text, 10000, 10, m10, 6);
    const uint16_t m7[] = {0, 1, 4, 5, 6, 7, 4};
    expect_seq(v, text, 10000, 7, m7, 6);
    const uint16_t m5[] = {4, 5, 6, 7, 4}; /* the start mark is the first cut */
    expect_seq(v, text, 10000, 5, m5, 6);
    const uint16_t m4[] = {5, 6, 7, 4};
    expect_seq(v, text, 10000, 4, m4, 6);
    const uint16_t m3[] = {6, 7, 4};
    expect_seq(v, text, 10000, 3, m3, 6);
    const uint16_t m1[] = {4};
    expect_seq(v, text, 10000, 1, m1, 6);
    const uint16_t empty4[] = {0, 0, 0, 1};
    expect_seq(v, "", 10000, 4, empty4, 1);
    expect_seq(v, "?? <br /> zz", 10000, 4, empty4, 1);
    const uint16_t empty1[] = {1};
    expect_seq(v, "", 10000, 1, empty1, 1);

    /* Against a naive reference (the whole sequence, then cut or padded), for every
     * maxlen around the length, where the ring buffer wraps 0 to 5 times. */
    char text2[256] = "";
    for (int i = 0; i < 12; i++)
        strcat(text2, i % 3 ? "b c d a, " : "A x d ");
    uint16_t full[64], got[64], want[64];
    int64_t k = 0;
    full[k++] = ENG_TEXT_START;
    size_t pos = 0, b, n;
    while (eng_text_next(text2, strlen(text2), &pos, &b, &n)) {
        const int r = eng_vocab_rank(v, text2 + b, n);
        if (r >= 0)
            full[k++] = (uint16_t)(r + 4 < 7 ? r + 4 : ENG_TEXT_OOV);
    }
    assert_int_equal(k, 1 + 4 * 2 + 8 * 4); /* "x" is left out */
    for (int m = 1; m <= 64; m++) {
        for (int t = 0; t < m; t++)
            want[t] = m - t > k ? 0 : full[k - (m - t)];
        assert_int_equal(eng_vocab_encode(v, text2, strlen(text2), 7, m, got), k);
        for (int t = 0; t < m; t++)
            if (got[t] != want[t])
                fail_msg("maxlen %d: entry %d is %u, expected %u", m, t, got[t], want[t]);
    }
    eng_vocab_free(&v);
}

/* A checkpoint keeps the words in rank order; the rebuilt vocabulary (and a copy) encode
 * every text the same. */
static void rebuild_from_words(void **state) {
    (void)state;
    const char *texts[] = {
        "It was the best of times, it was the worst of times; it was the age of wisdom...",
        "Don't panic.<br /><br />DON'T PANIC! caf\xc3\xa9 Caf\xc3\xa9 80's",
        "the the the a an and of",
    };
    eng_vocab *v = build(texts, 3);
    const int n = eng_vocab_size(v);
    const char **words = malloc(sizeof *words * (size_t)n);
    assert_non_null(words);
    for (int r = 0; r < n; r++)
        words[r] = eng_vocab_word(v, r);
    char err[256] = "";
    eng_vocab *w = eng_vocab_from_words(words, n, err, sizeof err);
    if (!w)
        fail_msg("eng_vocab_from_words: %s", err);
    eng_vocab *c = eng_vocab_copy(v);
    assert_non_null(c);
    expect_vocab(w, words, NULL, n);
    expect_vocab(c, words, NULL, n);
    for (int r = 0; r < n; r++) {
        assert_int_equal(eng_vocab_count(w, r), 0);
        assert_int_equal(eng_vocab_count(c, r), eng_vocab_count(v, r));
    }
    const char *probe[] = {texts[0], texts[1], texts[2], "worst age of the unknown DON'T"};
    for (int i = 0; i < 4; i++)
        for (int num_words = 5; num_words <= 30; num_words += 5)
            for (int maxlen = 1; maxlen <= 40; maxlen += 3) {
                uint16_t a[40], b[40], d[40];
                const size_t len = strlen(probe[i]);
                const int64_t na = eng_vocab_encode(v, probe[i], len, num_words, maxlen, a);
                assert_int_equal(eng_vocab_encode(w, probe[i], len, num_words, maxlen, b), na);
                assert_int_equal(eng_vocab_encode(c, probe[i], len, num_words, maxlen, d), na);
                assert_memory_equal(a, b, sizeof *a * (size_t)maxlen);
                assert_memory_equal(a, d, sizeof *a * (size_t)maxlen);
            }
    eng_vocab_free(&w);
    eng_vocab_free(&c);
    free(words);
    eng_vocab_free(&v);

    /* An empty list is an empty vocabulary. */
    w = eng_vocab_from_words(NULL, 0, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(eng_vocab_size(w), 0);
    eng_vocab_free(&w);
}

/* A saved list the tokenizer could not have made is refused, naming the rank. */
static void rebuild_refusals(void **state) {
    (void)state;
    static const struct {
        const char *words[3];
        const char *say;
    } bad[] = {
        {{"the", "and", "the"}, "word 2 ('the') repeats word 0"},
        {{"the", "", "a"}, "word 1 is empty"},
        {{"the", "And", "a"}, "word 1 ('And')"},
        {{"the", "a", "two words"}, "word 2 ('two words')"},
        {{"the", "a", "dot."}, "word 2 ('dot.')"},
        {{"<br", "a", "b"}, "word 0 ('<br')"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        eng_vocab *v = eng_vocab_from_words(bad[i].words, 3, err, sizeof err);
        printf("  -> %s\n", err);
        assert_null(v);
        if (!strstr(err, "vocabulary") || !strstr(err, bad[i].say))
            fail_msg("message '%s' does not say '%s'", err, bad[i].say);
        assert_null(strchr(err, '\n'));
    }
}

/* Token data sets: x gets the ids as floats, not / 255. */
static void token_dataset_gather_and_slice(void **state) {
    (void)state;
    enum { N = 5, T = 4 };
    eng_split s;
    memset(&s, 0, sizeof s);
    eng_dataset *d = &s.train;
    d->n = N;
    d->shape = (eng_shape){1, T, 1};
    d->nclasses = 2;
    d->tokens = malloc(sizeof *d->tokens * N * T);
    d->labels = malloc(N);
    assert_true(d->tokens && d->labels);
    for (int i = 0; i < N; i++) {
        for (int t = 0; t < T; t++)
            d->tokens[i * T + t] = (uint16_t)(i * 1000 + t * 17 + (i == 4 ? 60000 : 0));
        d->labels[i] = (uint8_t)(i % 2);
    }
    float x[3 * T];
    uint8_t y[3];
    const uint32_t idx[3] = {4, 0, 2};
    eng_dataset_gather(d, idx, 3, x, y);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(y[i], idx[i] % 2);
        for (int t = 0; t < T; t++)
            assert_true(x[i * T + t] == (float)d->tokens[idx[i] * T + t]);
    }
    assert_true(x[0] == 64000.0f); /* above 2^15: the ids are unsigned */
    eng_dataset_slice(d, 1, 3, x, y);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(y[i], (1 + i) % 2);
        for (int t = 0; t < T; t++)
            assert_true(x[i * T + t] == (float)((1 + i) * 1000 + t * 17));
    }
    eng_split_deinit(&s);
    assert_null(s.train.tokens);
    assert_null(s.train.labels);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_separator),
        cmocka_unit_test(what_stays_in_words),
        cmocka_unit_test(lower_case),
        cmocka_unit_test(line_breaks),
        cmocka_unit_test(empty_and_runs),
        cmocka_unit_test(vocabulary_order),
        cmocka_unit_test(vocabulary_grows),
        cmocka_unit_test(indices_and_oov),
        cmocka_unit_test(padding_and_truncation),
        cmocka_unit_test(rebuild_from_words),
        cmocka_unit_test(rebuild_refusals),
        cmocka_unit_test(token_dataset_gather_and_slice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
