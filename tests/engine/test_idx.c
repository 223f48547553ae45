/* test_idx.c: the IDX reader and the data set loader on files the test writes into a
 * fresh temporary directory: raw and gzip files read alike (whole, a share, a peek); every
 * malformed file (truncated, wrong magic, wrong dimensions, trailing bytes, missing) is an
 * error whose message names the file and the problem. Then eng_split_load_idx on a fake
 * MNIST directory: Keras's validation_split (the LAST fraction of the training files),
 * contiguous per-rank shares, and labels outside 0..9. */
#include "engine/idx.h"

#include "engine/base/base.h"
#include "engine/dataset.h"
#include "tests/support/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

static char dir[1024];

static int setup(void **state) {
    (void)state;
    return tu_mkdtemp(dir, sizeof dir, "idx");
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(dir);
    return 0;
}

static void path_of(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", dir, name);
}

/* Writes bytes to dir/name, through gzip when gz. */
static void write_bytes(const char *name, const void *data, size_t len, int gz) {
    char path[4200];
    path_of(path, sizeof path, name);
    if (!gz) {
        if (tu_write_file(path, data, len) != 0)
            fail_msg("cannot write %s", path);
        return;
    }
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

/* An IDX file with the given header dims whose body holds `items` items (which may differ
 * from dims[0]) of pattern bytes, then `extra` trailing bytes. The item bytes are
 * (item * 31 + k) & 0xFF, returned in *body when non-NULL (caller frees). */
static void write_idx(const char *name, int ndim, const uint32_t *dims, size_t items, size_t extra,
                      int gz, uint8_t **body) {
    size_t item_bytes = 1;
    for (int d = 1; d < ndim; d++)
        item_bytes *= dims[d];
    uint8_t header[4 + 4 * ENG_IDX_MAX_DIMS];
    const size_t hl = tu_idx_header(header, ndim, dims);
    const size_t len = hl + items * item_bytes + extra;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, header, hl);
    for (size_t i = 0; i < items; i++)
        for (size_t k = 0; k < item_bytes; k++)
            buf[hl + i * item_bytes + k] = (uint8_t)((i * 31 + k) & 0xFF);
    for (size_t k = 0; k < extra; k++)
        buf[hl + items * item_bytes + k] = 0xEE;
    write_bytes(name, buf, len, gz);
    if (body) {
        *body = malloc(items * item_bytes + 1);
        assert_non_null(*body);
        memcpy(*body, buf + hl, items * item_bytes);
    }
    free(buf);
}

/* rc must be `code` and the message must name the file and contain `word`. */
static void expect_error(int rc, int code, const char *err, const char *path, const char *word) {
    printf("  -> rc %d: %s\n", rc, err);
    if (rc != code)
        fail_msg("rc %d, expected %d; message: %s", rc, code, err);
    if (!strstr(err, path))
        fail_msg("message '%s' does not name the file %s", err, path);
    if (word && !strstr(err, word))
        fail_msg("message '%s' does not say '%s'", err, word);
}

static const uint32_t img_dims[3] = {7, 4, 5}; /* 7 items of 4x5 */

static void check_read_all_share_peek(const char *name, int gz) {
    uint8_t *body;
    write_idx(name, 3, img_dims, 7, 0, gz, &body);
    char path[4200], err[512] = "";
    path_of(path, sizeof path, name);
    const uint32_t expect[3] = {0, 4, 5};
    eng_idx idx;

    assert_int_equal(eng_idx_read(&idx, path, 3, expect, 0, SIZE_MAX, err, sizeof err), PST_OK);
    assert_int_equal(idx.ndim, 3);
    assert_int_equal(idx.dims[0], 7);
    assert_int_equal(idx.dims[1], 4);
    assert_int_equal(idx.dims[2], 5);
    assert_int_equal(idx.item_bytes, 20);
    assert_int_equal(idx.first, 0);
    assert_int_equal(idx.count, 7);
    assert_memory_equal(idx.data, body, 7 * 20);
    eng_idx_deinit(&idx);
    assert_null(idx.data);

    /* A share from the middle, and one to the end. */
    assert_int_equal(eng_idx_read(&idx, path, 3, expect, 2, 3, err, sizeof err), PST_OK);
    assert_int_equal(idx.first, 2);
    assert_int_equal(idx.count, 3);
    assert_memory_equal(idx.data, body + 2 * 20, 3 * 20);
    eng_idx_deinit(&idx);
    assert_int_equal(eng_idx_read(&idx, path, 3, expect, 5, SIZE_MAX, err, sizeof err), PST_OK);
    assert_int_equal(idx.count, 2);
    assert_memory_equal(idx.data, body + 5 * 20, 2 * 20);
    eng_idx_deinit(&idx);
    /* Without expected dimensions. */
    assert_int_equal(eng_idx_read(&idx, path, 3, NULL, 6, 1, err, sizeof err), PST_OK);
    assert_memory_equal(idx.data, body + 6 * 20, 20);
    eng_idx_deinit(&idx);

    /* A peek: the header only. */
    assert_int_equal(eng_idx_peek(&idx, path, 3, expect, err, sizeof err), PST_OK);
    assert_null(idx.data);
    assert_int_equal(idx.count, 0);
    assert_int_equal(idx.dims[0], 7);
    assert_int_equal(idx.item_bytes, 20);
    eng_idx_deinit(&idx);
    free(body);
}

static void raw_file(void **state) {
    (void)state;
    check_read_all_share_peek("raw-idx3-ubyte", 0);
}

static void gzip_file(void **state) {
    (void)state;
    check_read_all_share_peek("gz-idx3-ubyte.gz", 1);
}

/* The same content raw and gzipped reads to the same bytes. */
static void raw_and_gzip_agree(void **state) {
    (void)state;
    write_idx("same", 3, img_dims, 7, 0, 0, NULL);
    write_idx("same.gz", 3, img_dims, 7, 0, 1, NULL);
    char a[4200], b[4200], err[512];
    path_of(a, sizeof a, "same");
    path_of(b, sizeof b, "same.gz");
    eng_idx x, y;
    assert_int_equal(eng_idx_read(&x, a, 3, NULL, 0, SIZE_MAX, err, sizeof err), PST_OK);
    assert_int_equal(eng_idx_read(&y, b, 3, NULL, 0, SIZE_MAX, err, sizeof err), PST_OK);
    assert_int_equal(x.count * x.item_bytes, y.count * y.item_bytes);
    assert_memory_equal(x.data, y.data, x.count * x.item_bytes);
    eng_idx_deinit(&x);
    eng_idx_deinit(&y);
}

/* The header says 100 labels; 50 are there. */
static void truncated(void **state) {
    (void)state;
    const uint32_t dims[1] = {100};
    for (int gz = 0; gz <= 1; gz++) {
        const char *name = gz ? "trunc-labels.gz" : "trunc-labels";
        write_idx(name, 1, dims, 50, 0, gz, NULL);
        char path[4200], err[512] = "";
        path_of(path, sizeof path, name);
        eng_idx idx;
        int rc = eng_idx_read(&idx, path, 1, NULL, 0, SIZE_MAX, err, sizeof err);
        expect_error(rc, PST_EFORMAT, err, path, "truncated");
        assert_null(idx.data);
        /* A share that runs past the end. */
        err[0] = '\0';
        rc = eng_idx_read(&idx, path, 1, NULL, 40, 20, err, sizeof err);
        expect_error(rc, PST_EFORMAT, err, path, "truncated");
    }
    /* Images: the last image is cut in half. */
    const uint32_t idims[3] = {3, 28, 28};
    uint8_t header[16];
    tu_idx_header(header, 3, idims);
    const size_t len = 16 + 2 * 784 + 392;
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    memcpy(buf, header, 16);
    write_bytes("trunc-images", buf, len, 0);
    free(buf);
    char path[4200], err[512] = "";
    path_of(path, sizeof path, "trunc-images");
    eng_idx idx;
    const uint32_t expect[3] = {0, 28, 28};
    int rc = eng_idx_read(&idx, path, 3, expect, 0, SIZE_MAX, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "truncated");
    /* Only part of the header. */
    write_bytes("short-header", header, 9, 0);
    path_of(path, sizeof path, "short-header");
    rc = eng_idx_read(&idx, path, 3, expect, 0, SIZE_MAX, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "truncated");
    /* Empty. */
    write_bytes("empty", "", 0, 0);
    path_of(path, sizeof path, "empty");
    rc = eng_idx_read(&idx, path, 1, NULL, 0, SIZE_MAX, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "truncated");
}

/* Headers that claim more than any file holds (found by tests/fuzz/fuzz_idx): a gzip file's
 * length is known only once read, so it must be refused as truncated after the bytes that
 * are there, not asked for the memory its header claims first (72 PB here: that was an
 * out-of-memory error); and dimensions whose product overflows are refused by name. */
static void header_claims_too_much(void **state) {
    (void)state;
    const uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFu, 0xFFu};
    uint8_t buf[16 + 100] = {0};
    tu_idx_header(buf, 3, huge);
    char path[4200], err[512];
    eng_idx idx;
    for (int gz = 0; gz <= 1; gz++) {
        const char *name = gz ? "claims-72PB.gz" : "claims-72PB";
        write_bytes(name, buf, sizeof buf, gz);
        path_of(path, sizeof path, name);
        err[0] = '\0';
        int rc = eng_idx_read(&idx, path, 3, NULL, 0, SIZE_MAX, err, sizeof err);
        expect_error(rc, PST_EFORMAT, err, path, "truncated");
        assert_null(idx.data);
        err[0] = '\0';
        rc = eng_idx_read(&idx, path, 3, NULL, 5, 10, err, sizeof err); /* a share */
        expect_error(rc, PST_EFORMAT, err, path, "truncated");
    }
    const uint32_t overflow[4] = {2, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    uint8_t head[20];
    tu_idx_header(head, 4, overflow);
    write_bytes("overflow", head, sizeof head, 1);
    path_of(path, sizeof path, "overflow");
    err[0] = '\0';
    int rc = eng_idx_read(&idx, path, 4, NULL, 0, SIZE_MAX, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "dimension 3 is 4294967295");
    const uint32_t too_long[2] = {0xFFFFFFFFu, 0xFFFFFFFFu}; /* items fit, the file does not */
    tu_idx_header(head, 2, too_long);
    write_bytes("overflow-total", head, 12, 1);
    path_of(path, sizeof path, "overflow-total");
    err[0] = '\0';
    rc = eng_idx_read(&idx, path, 2, NULL, 0, SIZE_MAX, err, sizeof err);
    if (sizeof(size_t) == 8)
        expect_error(rc, PST_EFORMAT, err, path, "truncated");
    else
        expect_error(rc, PST_EFORMAT, err, path, "dimension 0");
}

/* A gzip stream cut in the middle: the decompressor's error, naming the file. */
static void corrupt_gzip(void **state) {
    (void)state;
    const uint32_t dims[3] = {50, 28, 28};
    write_idx("cut.gz", 3, dims, 50, 0, 1, NULL);
    char path[4200], err[512] = "";
    path_of(path, sizeof path, "cut.gz");
    size_t len;
    char *gz = tu_read_file(path, &len);
    assert_non_null(gz);
    assert_true(len > 100);
    assert_int_equal(tu_write_file(path, gz, len / 2), 0);
    free(gz);
    eng_idx idx;
    int rc = eng_idx_read(&idx, path, 3, NULL, 0, SIZE_MAX, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, NULL);
    assert_null(idx.data);
}

static void wrong_magic(void **state) {
    (void)state;
    const uint32_t dims[3] = {2, 28, 28};
    char path[4200], err[512];
    eng_idx idx;
    /* An images file where labels (1 dim) are expected. */
    write_idx("images-as-labels", 3, dims, 2, 0, 0, NULL);
    path_of(path, sizeof path, "images-as-labels");
    int rc = eng_idx_read(&idx, path, 1, NULL, 0, SIZE_MAX, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "magic");
    assert_null(idx.data);
    /* Type 0x09 (signed byte), and bytes that are no IDX header at all, raw and gzipped. */
    for (int gz = 0; gz <= 1; gz++) {
        uint8_t buf[16 + 2 * 784] = {0};
        tu_idx_header(buf, 3, dims);
        buf[2] = 0x09;
        const char *name = gz ? "type9.gz" : "type9";
        write_bytes(name, buf, sizeof buf, gz);
        path_of(path, sizeof path, name);
        rc = eng_idx_read(&idx, path, 3, NULL, 0, SIZE_MAX, err, sizeof err);
        expect_error(rc, PST_EFORMAT, err, path, "magic");
        memcpy(buf, "PK\x03\x04", 4);
        name = gz ? "zip.gz" : "zip";
        write_bytes(name, buf, sizeof buf, gz);
        path_of(path, sizeof path, name);
        rc = eng_idx_peek(&idx, path, 3, NULL, err, sizeof err);
        expect_error(rc, PST_EFORMAT, err, path, "magic");
    }
}

static void wrong_dimensions(void **state) {
    (void)state;
    const uint32_t dims[3] = {2, 28, 27};
    write_idx("28x27", 3, dims, 2, 0, 0, NULL);
    char path[4200], err[512];
    path_of(path, sizeof path, "28x27");
    const uint32_t expect[3] = {0, 28, 28};
    eng_idx idx;
    int rc = eng_idx_read(&idx, path, 3, expect, 0, SIZE_MAX, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "dimension");
    if (!strstr(err, "27") || !strstr(err, "28"))
        fail_msg("message '%s' does not give what was found (27) and expected (28)", err);
    rc = eng_idx_peek(&idx, path, 3, expect, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "dimension");
}

static void trailing_bytes(void **state) {
    (void)state;
    const uint32_t dims[1] = {30};
    for (int gz = 0; gz <= 1; gz++) {
        const char *name = gz ? "long-labels.gz" : "long-labels";
        write_idx(name, 1, dims, 30, 3, gz, NULL);
        char path[4200], err[512] = "";
        path_of(path, sizeof path, name);
        eng_idx idx;
        int rc = eng_idx_read(&idx, path, 1, NULL, 0, SIZE_MAX, err, sizeof err);
        expect_error(rc, PST_EFORMAT, err, path, NULL);
        assert_null(idx.data);
    }
}

static void missing_file(void **state) {
    (void)state;
    char path[4200], err[512] = "";
    path_of(path, sizeof path, "no-such-file");
    eng_idx idx;
    int rc = eng_idx_read(&idx, path, 1, NULL, 0, SIZE_MAX, err, sizeof err);
    expect_error(rc, PST_EIO, err, path, NULL);
    rc = eng_idx_peek(&idx, path, 1, NULL, err, sizeof err);
    expect_error(rc, PST_EIO, err, path, NULL);
}

/* Asking for items the file does not have is the caller's error, not the file's. */
static void share_out_of_range(void **state) {
    (void)state;
    const uint32_t dims[1] = {10};
    write_idx("ten", 1, dims, 10, 0, 0, NULL);
    char path[4200], err[512] = "";
    path_of(path, sizeof path, "ten");
    eng_idx idx;
    int rc = eng_idx_read(&idx, path, 1, NULL, 11, 1, err, sizeof err);
    expect_error(rc, PST_EARG, err, path, NULL);
    rc = eng_idx_read(&idx, path, 1, NULL, 8, 3, err, sizeof err);
    expect_error(rc, PST_EARG, err, path, NULL);
}

/* --- eng_split_load_idx on a fake MNIST directory --- */

enum { NTRAIN = 20, NTEST = 10, PIX = 28 * 28 };

/* Image i of a set has every pixel = (set_tag + i * 5 + pixel / 97) & 0xFF; labels as
 * given. */
static uint8_t pixel(int tag, int i, int p) { return (uint8_t)((tag + i * 5 + p / 97) & 0xFF); }

static void write_set(const char *sub, const char *prefix, int n, int tag, const uint8_t *labels,
                      int gz) {
    const uint32_t idims[3] = {(uint32_t)n, 28, 28}, ldims[1] = {(uint32_t)n};
    const size_t ilen = 16 + (size_t)n * PIX, llen = 8 + (size_t)n;
    uint8_t *img = malloc(ilen), *lab = malloc(llen);
    assert_true(img && lab);
    tu_idx_header(img, 3, idims);
    tu_idx_header(lab, 1, ldims);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < PIX; p++)
            img[16 + (size_t)i * PIX + p] = pixel(tag, i, p);
    memcpy(lab + 8, labels, (size_t)n);
    char name[256];
    snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte%s", sub, prefix, gz ? ".gz" : "");
    write_bytes(name, img, ilen, gz);
    snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte%s", sub, prefix, gz ? ".gz" : "");
    write_bytes(name, lab, llen, gz);
    free(img);
    free(lab);
}

static uint8_t train_labels[NTRAIN], test_labels[NTEST];

/* dir/<sub>/ with 20 training and 10 test samples; gz: 0 raw, 1 gzip, 2 train raw and
 * test gzip. */
static void make_fake_mnist(const char *sub, int gz) {
    char path[4200];
    path_of(path, sizeof path, sub);
    if (mkdir(path, 0700) != 0)
        fail_msg("mkdir %s failed", path);
    for (int i = 0; i < NTRAIN; i++)
        train_labels[i] = (uint8_t)(i % 10);
    for (int i = 0; i < NTEST; i++)
        test_labels[i] = (uint8_t)((i * 3) % 10);
    write_set(sub, "train", NTRAIN, 0, train_labels, gz == 1);
    write_set(sub, "t10k", NTEST, 100, test_labels, gz >= 1);
}

/* d holds items [lo, lo + n) of the set tagged tag. */
static void expect_items(const eng_dataset *d, int tag, const uint8_t *labels, int lo, int n,
                         const char *what) {
    if (d->n != n)
        fail_msg("%s: %lld samples, expected %d", what, (long long)d->n, n);
    assert_true(d->shape.h == 28 && d->shape.w == 28 && d->shape.c == 1);
    assert_int_equal(d->nclasses, 10);
    for (int i = 0; i < n; i++) {
        if (d->labels[i] != labels[lo + i])
            fail_msg("%s: label %d is %u, expected item %d's %u", what, i, d->labels[i], lo + i,
                     labels[lo + i]);
        for (int p = 0; p < PIX; p++)
            if (d->images[(size_t)i * PIX + p] != pixel(tag, lo + i, p))
                fail_msg("%s: sample %d is not item %d of the file", what, i, lo + i);
    }
}

static void check_split(const char *sub) {
    eng_split s;
    char err[512] = "";
    if (eng_split_load_idx(&s, dir, sub, 0.1, 0, 1, err, sizeof err) != PST_OK)
        fail_msg("eng_split_load_idx: %s", err);
    /* Keras: split_at = int(20 * (1 - 0.1)) = 18; validation is the last 2. */
    expect_items(&s.train, 0, train_labels, 0, 18, "train");
    expect_items(&s.val, 0, train_labels, 18, 2, "validation");
    expect_items(&s.test, 100, test_labels, 0, 10, "test");
    eng_split_deinit(&s);
    assert_null(s.train.images);

    /* Rank 1 of 3: train [6, 12), validation [0, 1) of 2 -> item 18, test [3, 6). */
    if (eng_split_load_idx(&s, dir, sub, 0.1, 1, 3, err, sizeof err) != PST_OK)
        fail_msg("eng_split_load_idx rank 1 of 3: %s", err);
    expect_items(&s.train, 0, train_labels, 6, 6, "rank 1 of 3 train");
    expect_items(&s.val, 0, train_labels, 18, 1, "rank 1 of 3 validation");
    expect_items(&s.test, 100, test_labels, 3, 3, "rank 1 of 3 test");
    eng_split_deinit(&s);
    /* The ranks together hold every sample once, in order. */
    int64_t next_train = 0, next_val = 18, next_test = 0;
    for (int r = 0; r < 3; r++) {
        if (eng_split_load_idx(&s, dir, sub, 0.1, r, 3, err, sizeof err) != PST_OK)
            fail_msg("rank %d of 3: %s", r, err);
        expect_items(&s.train, 0, train_labels, (int)next_train, (int)s.train.n, "share");
        expect_items(&s.val, 0, train_labels, (int)next_val, (int)s.val.n, "share");
        expect_items(&s.test, 100, test_labels, (int)next_test, (int)s.test.n, "share");
        next_train += s.train.n, next_val += s.val.n, next_test += s.test.n;
        eng_split_deinit(&s);
    }
    assert_int_equal(next_train, 18);
    assert_int_equal(next_val, 20);
    assert_int_equal(next_test, 10);

    /* No validation; half. */
    assert_int_equal(eng_split_load_idx(&s, dir, sub, 0.0, 0, 1, err, sizeof err), PST_OK);
    expect_items(&s.train, 0, train_labels, 0, 20, "val_split 0 train");
    assert_int_equal(s.val.n, 0);
    eng_split_deinit(&s);
    assert_int_equal(eng_split_load_idx(&s, dir, sub, 0.5, 0, 1, err, sizeof err), PST_OK);
    expect_items(&s.train, 0, train_labels, 0, 10, "val_split 0.5 train");
    expect_items(&s.val, 0, train_labels, 10, 10, "val_split 0.5 validation");
    eng_split_deinit(&s);
}

static void split_raw(void **state) {
    (void)state;
    make_fake_mnist("raw", 0);
    check_split("raw");
}

static void split_gzip(void **state) {
    (void)state;
    make_fake_mnist("gz", 1);
    check_split("gz");
}

static void split_mixed(void **state) {
    (void)state;
    make_fake_mnist("mixed", 2);
    check_split("mixed");
}

static void split_bad_val_split(void **state) {
    (void)state;
    make_fake_mnist("vs", 0);
    eng_split s;
    char err[512] = "";
    assert_int_equal(eng_split_load_idx(&s, dir, "vs", 1.0, 0, 1, err, sizeof err), PST_EARG);
    assert_int_equal(eng_split_load_idx(&s, dir, "vs", -0.1, 0, 1, err, sizeof err), PST_EARG);
}

/* A label of 12 in the training file's validation part, then in the test file. */
static void split_label_out_of_range(void **state) {
    (void)state;
    make_fake_mnist("badlabel", 0);
    train_labels[19] = 12;
    write_set("badlabel", "train", NTRAIN, 0, train_labels, 0);
    eng_split s;
    char err[512] = "", path[4200];
    path_of(path, sizeof path, "badlabel/train-labels-idx1-ubyte");
    int rc = eng_split_load_idx(&s, dir, "badlabel", 0.1, 0, 1, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "12");
    assert_null(s.train.images);
    /* Rank 0 of 2 holds item 18 of the validation part, not 19: no error there. */
    rc = eng_split_load_idx(&s, dir, "badlabel", 0.1, 0, 2, err, sizeof err);
    assert_int_equal(rc, PST_OK);
    eng_split_deinit(&s);

    train_labels[19] = 9;
    write_set("badlabel", "train", NTRAIN, 0, train_labels, 0);
    test_labels[0] = 255;
    write_set("badlabel", "t10k", NTEST, 100, test_labels, 0);
    path_of(path, sizeof path, "badlabel/t10k-labels-idx1-ubyte");
    rc = eng_split_load_idx(&s, dir, "badlabel", 0.1, 0, 1, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, "255");
}

static void split_missing_and_mismatched_files(void **state) {
    (void)state;
    eng_split s;
    char err[512] = "", path[4200];
    /* No such data set directory. */
    path_of(path, sizeof path, "nothing/train-images-idx3-ubyte");
    int rc = eng_split_load_idx(&s, dir, "nothing", 0.1, 0, 1, err, sizeof err);
    expect_error(rc, PST_EIO, err, path, NULL);

    /* 20 training images but 19 labels. */
    make_fake_mnist("mismatch", 0);
    write_set("mismatch", "train", NTRAIN - 1, 0, train_labels, 0);
    const uint32_t idims[3] = {NTRAIN, 28, 28};
    uint8_t *img = calloc(1, 16 + (size_t)NTRAIN * PIX);
    assert_non_null(img);
    tu_idx_header(img, 3, idims);
    write_bytes("mismatch/train-images-idx3-ubyte", img, 16 + (size_t)NTRAIN * PIX, 0);
    free(img);
    path_of(path, sizeof path, "mismatch/train-labels-idx1-ubyte");
    rc = eng_split_load_idx(&s, dir, "mismatch", 0.1, 0, 1, err, sizeof err);
    expect_error(rc, PST_EFORMAT, err, path, NULL);

    /* One of the four files missing. */
    make_fake_mnist("three", 0);
    path_of(path, sizeof path, "three/t10k-labels-idx1-ubyte");
    assert_int_equal(unlink(path), 0);
    rc = eng_split_load_idx(&s, dir, "three", 0.1, 0, 1, err, sizeof err);
    expect_error(rc, PST_EIO, err, path, NULL);
}

/* x = pixels / 255 as Keras converts them; gather by index, slice in order. */
static void gather_and_slice(void **state) {
    (void)state;
    make_fake_mnist("gather", 0);
    eng_split s;
    char err[512] = "";
    assert_int_equal(eng_split_load_idx(&s, dir, "gather", 0.1, 0, 1, err, sizeof err), PST_OK);
    float *x = malloc(sizeof(float) * 3 * PIX);
    uint8_t labels[3];
    assert_non_null(x);
    const uint32_t idx[3] = {17, 0, 5};
    eng_dataset_gather(&s.train, idx, 3, x, labels);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(labels[i], train_labels[idx[i]]);
        for (int p = 0; p < PIX; p++)
            if (x[(size_t)i * PIX + p] != (float)pixel(0, (int)idx[i], p) / 255.0f)
                fail_msg("gather: x[%d][%d] = %g", i, p, x[(size_t)i * PIX + p]);
    }
    eng_dataset_slice(&s.test, 7, 3, x, labels);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(labels[i], test_labels[7 + i]);
        for (int p = 0; p < PIX; p++)
            assert_true(x[(size_t)i * PIX + p] == (float)pixel(100, 7 + i, p) / 255.0f);
    }
    free(x);
    eng_split_deinit(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(raw_file),
        cmocka_unit_test(gzip_file),
        cmocka_unit_test(raw_and_gzip_agree),
        cmocka_unit_test(truncated),
        cmocka_unit_test(header_claims_too_much),
        cmocka_unit_test(corrupt_gzip),
        cmocka_unit_test(wrong_magic),
        cmocka_unit_test(wrong_dimensions),
        cmocka_unit_test(trailing_bytes),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(share_out_of_range),
        cmocka_unit_test(split_raw),
        cmocka_unit_test(split_gzip),
        cmocka_unit_test(split_mixed),
        cmocka_unit_test(split_bad_val_split),
        cmocka_unit_test(split_label_out_of_range),
        cmocka_unit_test(split_missing_and_mismatched_files),
        cmocka_unit_test(gather_and_slice),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
