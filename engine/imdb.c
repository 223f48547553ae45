/* imdb.c: reading the IMDB reviews (one JSON file through jansson, or the original
 * folders), the vocabulary of the training reviews, and the shuffled, split, tokenized
 * shares. */
#include "engine/imdb.h"

#include "engine/base/base.h"
#include "engine/base/file.h"
#include "engine/json.h"
#include "engine/rng.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* aclImdb's four folders, in the order the JSON file lists them. */
enum { NBLOCKS = 4 };
static const char *const BLOCK_NAME[NBLOCKS] = {"test/neg", "train/neg", "test/pos", "train/pos"};
static const int BLOCK_LABEL[NBLOCKS] = {0, 0, 1, 1};
static const int BLOCK_TRAIN[NBLOCKS] = {0, 1, 0, 1};

/* Every review, whichever layout it came from. */
typedef struct reviews {
    int64_t n;
    const char **text;      /* (n) borrowed from root or owned[i] */
    size_t *len;            /* (n) bytes */
    uint8_t *label;         /* (n) 0 or 1 */
    uint32_t *train, *test; /* indices of the training and test reviews, in file order */
    int64_t ntrain, ntest;
    json_t *root; /* owns the texts read from JSON */
    char **owned; /* (n) or these, read from files */
} reviews;

static void reviews_deinit(reviews *r) {
    if (r->owned)
        for (int64_t i = 0; i < r->n; i++)
            free(r->owned[i]);
    free(r->owned);
    free((void *)r->text);
    free(r->len);
    free(r->label);
    free(r->train);
    free(r->test);
    json_decref(r->root);
    memset(r, 0, sizeof *r);
}

/* Arrays for n reviews. */
static void reviews_alloc(reviews *r, int64_t n) {
    r->n = n;
    r->text = pst_calloc((size_t)n, sizeof *r->text);
    r->len = pst_calloc((size_t)n, sizeof *r->len);
    r->label = pst_calloc((size_t)n, 1);
    r->train = pst_calloc((size_t)n, sizeof *r->train);
    r->test = pst_calloc((size_t)n, sizeof *r->test);
}

/* path: a JSON array of {"t": text, "s": 0 or 1} in four equal blocks (BLOCK_NAME), each
 * element's label the block's. */
static int read_json(reviews *r, const char *path, char *err, size_t errlen) {
    json_error_t jerr;
    int rc;
    FILE *f = pst_fopen_regular(path, &rc, err, errlen); /* a FIFO would block json_load_file */
    if (!f)
        return rc;
    r->root = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!r->root)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: invalid JSON at line %d, column %d (byte %d): %s", path, jerr.line,
                       jerr.column, jerr.position, jerr.text);
    if (!json_is_array(r->root))
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: expected a JSON array of {\"t\": text, \"s\": label}, found %s", path,
                       eng_json_kind(r->root));
    const size_t n = json_array_size(r->root);
    if (n == 0 || n % NBLOCKS != 0 || n > UINT32_MAX)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: %zu reviews, expected four equal blocks (test/neg, train/neg, "
                       "test/pos, train/pos; 12500 each in aclImdb)",
                       path, n);
    reviews_alloc(r, (int64_t)n);
    const size_t q = n / NBLOCKS;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(r->root, i);
        if (!json_is_object(e))
            return pst_err(err, errlen, PST_EFORMAT,
                           "%s: element %zu is %s, expected an object {\"t\": text, \"s\": label}",
                           path, i, eng_json_kind(e));
        const json_t *t = json_object_get(e, "t"), *s = json_object_get(e, "s");
        if (!t)
            return pst_err(err, errlen, PST_EFORMAT, "%s: element %zu has no \"t\" (the text)",
                           path, i);
        if (!json_is_string(t))
            return pst_err(err, errlen, PST_EFORMAT,
                           "%s: element %zu: \"t\" is %s, expected a string", path, i,
                           eng_json_kind(t));
        if (!s)
            return pst_err(err, errlen, PST_EFORMAT,
                           "%s: element %zu has no \"s\" (the label, 0 or 1)", path, i);
        if (!json_is_integer(s))
            return pst_err(err, errlen, PST_EFORMAT,
                           "%s: element %zu: \"s\" is %s, expected the integer 0 or 1", path, i,
                           eng_json_kind(s));
        const json_int_t label = json_integer_value(s);
        if (label != 0 && label != 1)
            return pst_err(err, errlen, PST_EFORMAT,
                           "%s: element %zu: label \"s\" is %" JSON_INTEGER_FORMAT
                           ", expected 0 or 1",
                           path, i, label);
        const size_t b = i / q;
        if (label != BLOCK_LABEL[b])
            return pst_err(err, errlen, PST_EFORMAT,
                           "%s: element %zu has label %d but lies in the %s block (elements "
                           "%zu..%zu), whose label is %d: not aclImdb in folder order",
                           path, i, (int)label, BLOCK_NAME[b], b * q, (b + 1) * q - 1,
                           BLOCK_LABEL[b]);
        r->text[i] = json_string_value(t);
        r->len[i] = json_string_length(t);
        r->label[i] = (uint8_t)label;
        if (BLOCK_TRAIN[b])
            r->train[r->ntrain++] = (uint32_t)i;
        else
            r->test[r->ntest++] = (uint32_t)i;
    }
    return PST_OK;
}

/* A folder's review files, named <number>_<rating>.txt. */
typedef struct file_list {
    char **names;
    size_t n, cap;
} file_list;

static void file_list_deinit(file_list *f) {
    for (size_t i = 0; i < f->n; i++)
        free(f->names[i]);
    free(f->names);
    memset(f, 0, sizeof *f);
}

/* Number order (1_3.txt before 10_2.txt), as the JSON file lists them; then by name. */
static int name_cmp(const void *pa, const void *pb) {
    const char *a = *(char *const *)pa, *b = *(char *const *)pb;
    const unsigned long long x = strtoull(a, NULL, 10), y = strtoull(b, NULL, 10);
    if (x != y)
        return x < y ? -1 : 1;
    return strcmp(a, b);
}

/* The *.txt names in folder, sorted. */
static int list_folder(file_list *f, const char *folder, char *err, size_t errlen) {
    DIR *d = opendir(folder);
    if (!d)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", folder, strerror(errno));
    const struct dirent *de;
    while ((de = readdir(d))) {
        const size_t len = strlen(de->d_name);
        if (len <= 4 || strcmp(de->d_name + len - 4, ".txt") != 0)
            continue;
        if (f->n == f->cap) {
            const size_t cap = f->cap ? 2 * f->cap : 16384;
            f->names = pst_realloc(f->names, sizeof *f->names * cap);
            f->cap = cap;
        }
        f->names[f->n++] = pst_strdup(de->d_name);
    }
    closedir(d);
    if (f->n == 0)
        return pst_err(err, errlen, PST_EFORMAT, "%s: no review files (*.txt)", folder);
    qsort(f->names, f->n, sizeof *f->names, name_cmp);
    return PST_OK;
}

/* The whole file at path, NUL-terminated, into *text (*len bytes). */
static int read_text(char **text, size_t *len, const char *path, char *err, size_t errlen) {
    int rc;
    FILE *f = pst_fopen_regular(path, &rc, err, errlen);
    if (!f)
        return rc;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rc = pst_err(err, errlen, PST_EIO, "%s: cannot stat: %s", path, strerror(errno));
    } else {
        *text = pst_malloc((size_t)st.st_size + 1);
        *len = fread(*text, 1, (size_t)st.st_size, f);
        (*text)[*len] = '\0';
        if (ferror(f))
            rc = pst_err(err, errlen, PST_EIO, "%s: read error: %s", path, strerror(errno));
    }
    fclose(f);
    return rc;
}

/* The reviews in root/<block>/ for the four blocks; labels from the folder names. */
static int read_folders(reviews *r, const char *root, char *err, size_t errlen) {
    file_list lists[NBLOCKS] = {{0}};
    char folder[NBLOCKS][4200], path[4500]; /* root is at most 4096 bytes */
    int64_t n = 0;
    int rc = PST_OK;
    for (int b = 0; b < NBLOCKS && rc == PST_OK; b++) {
        snprintf(folder[b], sizeof folder[b], "%s/%s", root, BLOCK_NAME[b]);
        rc = list_folder(&lists[b], folder[b], err, errlen);
        n += (int64_t)lists[b].n;
    }
    if (rc == PST_OK && n > UINT32_MAX)
        rc = pst_err(err, errlen, PST_EFORMAT, "%s: %lld reviews, too many", root, (long long)n);
    if (rc == PST_OK) {
        reviews_alloc(r, n);
        r->owned = pst_calloc((size_t)n, sizeof *r->owned);
    }
    int64_t i = 0;
    for (int b = 0; b < NBLOCKS && rc == PST_OK; b++)
        for (size_t k = 0; k < lists[b].n && rc == PST_OK; k++, i++) {
            if (snprintf(path, sizeof path, "%s/%s", folder[b], lists[b].names[k]) >=
                (int)sizeof path) {
                rc = pst_err(err, errlen, PST_EARG, "%s/%s: path too long", folder[b],
                             lists[b].names[k]);
                break;
            }
            rc = read_text(&r->owned[i], &r->len[i], path, err, errlen);
            r->text[i] = r->owned[i];
            r->label[i] = (uint8_t)BLOCK_LABEL[b];
            if (BLOCK_TRAIN[b])
                r->train[r->ntrain++] = (uint32_t)i;
            else
                r->test[r->ntest++] = (uint32_t)i;
        }
    for (int b = 0; b < NBLOCKS; b++)
        file_list_deinit(&lists[b]);
    return rc;
}

/* DIR/imdb/reviews.json, else DIR/aclImdb/. */
static int read_reviews(reviews *r, const char *dir, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/imdb/reviews.json", dir);
    if (access(path, F_OK) == 0)
        return read_json(r, path, err, errlen);
    char folder[4096];
    struct stat st;
    snprintf(folder, sizeof folder, "%s/aclImdb", dir);
    if (stat(folder, &st) == 0 && S_ISDIR(st.st_mode))
        return read_folders(r, folder, err, errlen);
    return pst_err(err, errlen, PST_EIO,
                   "%s: not found (nor the folder %s/): run launch/fetch-data or pass --data DIR",
                   path, folder);
}

static void share_range(int64_t n, int rank, int world, int64_t *lo, int64_t *hi) {
    *lo = n * rank / world;
    *hi = n * (rank + 1) / world;
}

/* d <- the reviews idx[0, n), tokenized. */
static void encode_part(eng_dataset *d, const reviews *r, const uint32_t *idx, int64_t n,
                        const eng_vocab *v, int num_words, int maxlen) {
    d->n = n;
    d->shape = (eng_shape){1, maxlen, 1};
    d->nclasses = 2;
    if (n == 0)
        return; /* an empty part holds no arrays, as eng_split_load_idx's */
    d->tokens = pst_malloc(sizeof *d->tokens * (size_t)n * (size_t)maxlen);
    d->labels = pst_malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        eng_vocab_encode(v, r->text[idx[i]], r->len[idx[i]], num_words, maxlen,
                         d->tokens + (size_t)i * (size_t)maxlen);
        d->labels[i] = r->label[idx[i]];
    }
}

/* Every rank counts all the training reviews: the same vocabulary everywhere, without a
 * message between processes. */
static eng_vocab *build_vocab(const reviews *r) {
    const size_t n = (size_t)r->ntrain;
    const char **texts = pst_malloc(sizeof *texts * (n ? n : 1));
    size_t *lens = pst_malloc(sizeof *lens * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        texts[i] = r->text[r->train[i]];
        lens[i] = r->len[r->train[i]];
    }
    eng_vocab *v = eng_vocab_build(texts, lens, n);
    free(texts);
    free(lens);
    return v;
}

int eng_split_load_imdb(eng_split *s, const char *dir, int num_words, int maxlen, double val_split,
                        int rank, int world, eng_vocab **vocab_out, const eng_vocab *vocab_in,
                        char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (vocab_out)
        *vocab_out = NULL;
    PST_ASSERT(world >= 1 && rank >= 0 && rank < world, "rank %d of %d", rank, world);
    if (!(val_split >= 0.0 && val_split < 1.0))
        return pst_err(err, errlen, PST_EARG, "validation split %g outside [0, 1)", val_split);
    if (num_words <= ENG_TEXT_INDEX_FROM || num_words > ENG_TEXT_MAX_NUM_WORDS)
        return pst_err(err, errlen, PST_EARG, "imdb: num_words %d outside %d..%d", num_words,
                       ENG_TEXT_INDEX_FROM + 1, ENG_TEXT_MAX_NUM_WORDS);
    if (maxlen < 1)
        return pst_err(err, errlen, PST_EARG, "imdb: maxlen %d, expected at least 1", maxlen);
    reviews r = {0};
    eng_vocab *built = NULL;
    int rc = read_reviews(&r, dir, err, errlen);
    if (rc != PST_OK)
        goto out;
    if (vocab_in) {
        if (vocab_out)
            built = eng_vocab_copy(vocab_in);
    } else {
        built = build_vocab(&r);
    }
    const eng_vocab *v = vocab_in ? vocab_in : built;
    /* One stream for both, as Keras's RandomState(113) shuffles train then test. */
    eng_rng rng;
    eng_rng_seed(&rng, ENG_IMDB_SEED);
    eng_rng_shuffle(&rng, r.train, (size_t)r.ntrain);
    eng_rng_shuffle(&rng, r.test, (size_t)r.ntest);
    /* Keras: split_at = int(len(x) * (1 - validation_split)). */
    const int64_t split_at = (int64_t)((double)r.ntrain * (1.0 - val_split));
    int64_t lo, hi;
    share_range(split_at, rank, world, &lo, &hi);
    encode_part(&s->train, &r, r.train + lo, hi - lo, v, num_words, maxlen);
    share_range(r.ntrain - split_at, rank, world, &lo, &hi);
    encode_part(&s->val, &r, r.train + split_at + lo, hi - lo, v, num_words, maxlen);
    share_range(r.ntest, rank, world, &lo, &hi);
    encode_part(&s->test, &r, r.test + lo, hi - lo, v, num_words, maxlen);
out:
    reviews_deinit(&r);
    if (rc != PST_OK) {
        eng_split_deinit(s);
        eng_vocab_free(&built);
    } else if (vocab_out) {
        *vocab_out = built;
    } else {
        eng_vocab_free(&built);
    }
    return rc;
}
