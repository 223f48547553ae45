/* text.c: the tokenizer and the vocabulary, an open-addressing hash table over one arena
 * of NUL-terminated words. Words are found in the raw text and lower-cased while hashed
 * and compared, so neither tokenizing nor encoding copies a review. */
#include "engine/text.h"

#include "engine/base/base.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Bytes that end a word: ASCII whitespace, NUL (so every word is a C string) and Keras's
 * filters, which are all of ASCII's punctuation but the apostrophe. */
static const bool SEP[256] = {
    [0] = 1,   ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1, ['!'] = 1,
    ['"'] = 1, ['#'] = 1,  ['$'] = 1,  ['%'] = 1,  ['&'] = 1,  ['('] = 1,  [')'] = 1, ['*'] = 1,
    ['+'] = 1, [','] = 1,  ['-'] = 1,  ['.'] = 1,  ['/'] = 1,  [':'] = 1,  [';'] = 1, ['<'] = 1,
    ['='] = 1, ['>'] = 1,  ['?'] = 1,  ['@'] = 1,  ['['] = 1,  ['\\'] = 1, [']'] = 1, ['^'] = 1,
    ['_'] = 1, ['`'] = 1,  ['{'] = 1,  ['|'] = 1,  ['}'] = 1,  ['~'] = 1,
};

static inline unsigned char lower(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

int eng_text_next(const char *text, size_t len, size_t *pos, size_t *start, size_t *wlen) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = *pos;
    for (;;) {
        if (i >= len) {
            *pos = len;
            return 0;
        }
        /* '<' ends a word, so a "<br />" can only start here, between words. */
        if (s[i] == '<' && len - i >= 6 && memcmp(s + i, "<br />", 6) == 0)
            i += 6;
        else if (SEP[s[i]])
            i++;
        else
            break;
    }
    const size_t b = i;
    while (i < len && !SEP[s[i]])
        i++;
    *start = b;
    *wlen = i - b;
    *pos = i;
    return 1;
}

void eng_text_lower(char *dst, const char *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)lower((unsigned char)src[i]);
}

/* FNV-1a over the lower-cased bytes: cheap, and good enough for ~10^5 short keys. */
static uint64_t word_hash(const char *w, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ lower((unsigned char)w[i])) * 0x100000001b3ull;
    return h;
}

/* One word of the table. */
typedef struct entry {
    size_t off;    /* the word starts at arena + off */
    uint32_t len;  /* its bytes */
    uint32_t hash; /* low bits of its hash: cheaper probes and rehashes */
    int64_t count; /* occurrences */
} entry;

struct eng_vocab {
    int n, cap;        /* words held, room in e */
    entry *e;          /* (cap) by rank */
    char *arena;       /* the words, lower-cased, each followed by a NUL */
    size_t used, room; /* bytes of arena used and allocated */
    int32_t *slot;     /* (mask + 1) a word's rank, or -1 */
    size_t mask;
};

static eng_vocab *vocab_new(int cap) {
    eng_vocab *v = pst_calloc(1, sizeof *v);
    size_t slots = 16;
    while (slots < 2 * (size_t)cap)
        slots *= 2;
    v->cap = cap;
    v->room = (size_t)cap * 8;
    v->e = pst_malloc(sizeof *v->e * (size_t)cap);
    v->arena = pst_malloc(v->room);
    v->slot = pst_malloc(sizeof *v->slot * slots);
    memset(v->slot, 0xff, sizeof *v->slot * slots);
    v->mask = slots - 1;
    return v;
}

void eng_vocab_free(eng_vocab **v) {
    if (!v || !*v)
        return;
    free((*v)->e);
    free((*v)->arena);
    free((*v)->slot);
    free(*v);
    *v = NULL;
}

/* The rank of w[0, len) (hash h), or -1 with *at the empty slot where it would go. */
static int vocab_find(const eng_vocab *v, const char *w, size_t len, uint64_t h, size_t *at) {
    for (size_t i = (size_t)h & v->mask;; i = (i + 1) & v->mask) {
        const int32_t r = v->slot[i];
        if (r < 0) {
            *at = i;
            return -1;
        }
        if (v->e[r].hash != (uint32_t)h || v->e[r].len != len)
            continue;
        const unsigned char *a = (const unsigned char *)v->arena + v->e[r].off;
        size_t k = 0;
        while (k < len && a[k] == lower((unsigned char)w[k]))
            k++;
        if (k == len)
            return r;
    }
}

/* Doubles the slot table once it is half full: probes stay short. */
static void vocab_grow_slots(eng_vocab *v) {
    const size_t slots = 2 * (v->mask + 1);
    int32_t *s = pst_malloc(sizeof *s * slots);
    memset(s, 0xff, sizeof *s * slots);
    for (int r = 0; r < v->n; r++) {
        size_t i = v->e[r].hash & (slots - 1);
        while (s[i] >= 0)
            i = (i + 1) & (slots - 1);
        s[i] = r;
    }
    free(v->slot);
    v->slot = s;
    v->mask = slots - 1;
}

/* Adds w[0, len) (hash h, lower-cased on the way), which vocab_find did not find, at slot
 * `at`, with the next rank and the given count. */
static void vocab_add(eng_vocab *v, const char *w, size_t len, uint64_t h, size_t at,
                      int64_t count) {
    PST_ASSERT(len < UINT32_MAX && v->n < INT32_MAX, "word of %zu bytes, %d words", len, v->n);
    if (v->n == v->cap) {
        const int cap = v->cap < INT32_MAX / 2 ? 2 * v->cap : INT32_MAX;
        v->e = pst_realloc(v->e, sizeof *v->e * (size_t)cap);
        v->cap = cap;
    }
    if (v->used + len + 1 > v->room) {
        size_t room = 2 * v->room;
        while (v->used + len + 1 > room)
            room *= 2;
        v->arena = pst_realloc(v->arena, room);
        v->room = room;
    }
    const int r = v->n++;
    v->e[r] = (entry){v->used, (uint32_t)len, (uint32_t)h, count};
    eng_text_lower(v->arena + v->used, w, len);
    v->arena[v->used + len] = '\0';
    v->used += len + 1;
    v->slot[at] = r;
    if ((size_t)v->n * 2 > v->mask + 1)
        vocab_grow_slots(v);
}

typedef struct ranked {
    int64_t count;
    const char *word; /* NUL-terminated, in the counting table's arena */
} ranked;

/* Count descending, then byte order: words hold no NUL, so strcmp is memcmp with the
 * shorter word first on a common prefix. */
static int ranked_cmp(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->word, b->word);
}

eng_vocab *eng_vocab_build(const char *const *texts, const size_t *lens, size_t n) {
    eng_vocab *counts = vocab_new(1 << 16);
    for (size_t t = 0; t < n; t++) {
        size_t pos = 0, b, len;
        while (eng_text_next(texts[t], lens[t], &pos, &b, &len)) {
            const char *w = texts[t] + b;
            const uint64_t h = word_hash(w, len);
            size_t at;
            const int r = vocab_find(counts, w, len, h, &at);
            if (r >= 0)
                counts->e[r].count++;
            else
                vocab_add(counts, w, len, h, at, 1);
        }
    }
    /* Re-insert in rank order: a word's rank is then its position in the arrays. */
    ranked *order = pst_malloc(sizeof *order * (size_t)(counts->n ? counts->n : 1));
    eng_vocab *v = vocab_new(counts->n ? counts->n : 1);
    for (int r = 0; r < counts->n; r++)
        order[r] = (ranked){counts->e[r].count, counts->arena + counts->e[r].off};
    qsort(order, (size_t)counts->n, sizeof *order, ranked_cmp);
    for (int r = 0; r < counts->n; r++) {
        const size_t len = strlen(order[r].word);
        const uint64_t h = word_hash(order[r].word, len);
        size_t at = 0;
        vocab_find(v, order[r].word, len, h, &at); /* not there: the words are distinct */
        vocab_add(v, order[r].word, len, h, at, order[r].count);
    }
    free(order);
    eng_vocab_free(&counts);
    return v;
}

eng_vocab *eng_vocab_from_words(const char *const *words, int n, char *err, size_t errlen) {
    PST_ASSERT(n >= 0, "%d words", n);
    eng_vocab *v = vocab_new(n ? n : 1);
    for (int r = 0; r < n; r++) {
        const unsigned char *w = (const unsigned char *)words[r];
        const size_t len = strlen(words[r]);
        if (len == 0) {
            pst_err(err, errlen, PST_EFORMAT, "vocabulary: word %d is empty", r);
            goto fail;
        }
        for (size_t k = 0; k < len; k++)
            if (SEP[w[k]] || lower(w[k]) != w[k]) {
                pst_err(err, errlen, PST_EFORMAT,
                        "vocabulary: word %d ('%s') has byte 0x%02x at %zu, which the tokenizer "
                        "never leaves in a word",
                        r, words[r], w[k], k);
                goto fail;
            }
        const uint64_t h = word_hash(words[r], len);
        size_t at;
        const int dup = vocab_find(v, words[r], len, h, &at);
        if (dup >= 0) {
            pst_err(err, errlen, PST_EFORMAT, "vocabulary: word %d ('%s') repeats word %d", r,
                    words[r], dup);
            goto fail;
        }
        vocab_add(v, words[r], len, h, at, 0);
    }
    return v;
fail:
    eng_vocab_free(&v);
    return NULL;
}

eng_vocab *eng_vocab_copy(const eng_vocab *v) {
    eng_vocab *c = pst_calloc(1, sizeof *c);
    *c = *v;
    c->e = pst_malloc(sizeof *c->e * (size_t)v->cap);
    c->arena = pst_malloc(v->room);
    c->slot = pst_malloc(sizeof *c->slot * (v->mask + 1));
    memcpy(c->e, v->e, sizeof *c->e * (size_t)v->n);
    memcpy(c->arena, v->arena, v->used);
    memcpy(c->slot, v->slot, sizeof *c->slot * (v->mask + 1));
    return c;
}

int eng_vocab_size(const eng_vocab *v) { return v->n; }

const char *eng_vocab_word(const eng_vocab *v, int rank) {
    PST_ASSERT(rank >= 0 && rank < v->n, "rank %d of %d words", rank, v->n);
    return v->arena + v->e[rank].off;
}

int64_t eng_vocab_count(const eng_vocab *v, int rank) {
    PST_ASSERT(rank >= 0 && rank < v->n, "rank %d of %d words", rank, v->n);
    return v->e[rank].count;
}

int eng_vocab_rank(const eng_vocab *v, const char *word, size_t len) {
    size_t at;
    return vocab_find(v, word, len, word_hash(word, len), &at);
}

static void reverse(uint16_t *a, size_t n) {
    for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
        const uint16_t t = a[i];
        a[i] = a[j - 1];
        a[j - 1] = t;
    }
}

int64_t eng_vocab_encode(const eng_vocab *v, const char *text, size_t len, int num_words,
                         int maxlen, uint16_t *out) {
    PST_ASSERT(num_words > ENG_TEXT_INDEX_FROM && num_words <= ENG_TEXT_MAX_NUM_WORDS,
               "num_words %d", num_words);
    PST_ASSERT(maxlen >= 1, "maxlen %d", maxlen);
    /* out is a ring: entry k goes to out[k % maxlen], so it ends up holding the last maxlen
     * entries without a second buffer for long reviews. */
    const size_t m = (size_t)maxlen;
    size_t k = 0;
    out[k++ % m] = ENG_TEXT_START;
    size_t pos = 0, b, wlen;
    while (eng_text_next(text, len, &pos, &b, &wlen)) {
        const int r = eng_vocab_rank(v, text + b, wlen);
        if (r < 0)
            continue; /* Keras's data has no index for it, not even oov_char */
        const int64_t idx = (int64_t)r + 1 + ENG_TEXT_INDEX_FROM;
        out[k++ % m] = (uint16_t)(idx < num_words ? idx : ENG_TEXT_OOV);
    }
    if (k < m) {
        /* Pre-padding: move the k entries to the end. */
        memmove(out + (m - k), out, sizeof *out * k);
        memset(out, 0, sizeof *out * (m - k));
    } else {
        /* Pre-truncation: the oldest kept entry is at k % m; rotate it to the front. */
        const size_t s = k % m;
        reverse(out, s);
        reverse(out + s, m - s);
        reverse(out, m);
    }
    return (int64_t)k;
}
