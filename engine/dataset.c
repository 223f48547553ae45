/* dataset.c: loading MNIST-style IDX pairs into memory, in shares, with Keras's split. */
#include "engine/dataset.h"

#include "engine/base/base.h"
#include "engine/idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* DIR/name/file, or with .gz appended when only that exists. */
static int find_file(char *path, size_t len, const char *dir, const char *name, const char *file,
                     char *err, size_t errlen) {
    for (int gz = 0; gz < 2; gz++) {
        snprintf(path, len, "%s/%s/%s%s", dir, name, file, gz ? ".gz" : "");
        if (access(path, R_OK) == 0)
            return PST_OK;
        if (errno != ENOENT) /* there, but not for us: say why, not "not found" */
            return pst_err(err, errlen, PST_EIO, "%s: cannot read: %s", path, strerror(errno));
    }
    snprintf(path, len, "%s/%s/%s", dir, name, file);
    return pst_err(err, errlen, PST_EIO,
                   "%s/%s/%s: not found (nor .gz): run launch/fetch-data or pass --data DIR", dir,
                   name, file);
}

static void share_range(int64_t n, int rank, int world, int64_t *lo, int64_t *hi) {
    *lo = n * rank / world;
    *hi = n * (rank + 1) / world;
}

/* Reads items [lo, hi) of one images/labels pair into d. */
static int load_part(eng_dataset *d, const char *img_path, const char *lab_path, int64_t lo,
                     int64_t hi, char *err, size_t errlen) {
    static const uint32_t img_dims[3] = {0, 28, 28};
    eng_idx img = {0}, lab = {0};
    int rc = eng_idx_read(&img, img_path, 3, img_dims, (size_t)lo, (size_t)(hi - lo), err, errlen);
    if (rc == PST_OK)
        rc = eng_idx_read(&lab, lab_path, 1, NULL, (size_t)lo, (size_t)(hi - lo), err, errlen);
    if (rc != PST_OK)
        goto fail;
    for (int64_t i = 0; i < hi - lo; i++)
        if (lab.data[i] >= 10) {
            rc = pst_err(err, errlen, PST_EFORMAT, "%s: label %u at item %lld, expected 0..9",
                         lab_path, lab.data[i], (long long)(lo + i));
            goto fail;
        }
    d->n = hi - lo;
    d->shape = (eng_shape){28, 28, 1};
    d->nclasses = 10;
    d->images = img.data;
    d->labels = lab.data;
    return PST_OK;
fail:
    eng_idx_deinit(&img);
    eng_idx_deinit(&lab);
    return rc;
}

/* Checks that an images file and its labels file agree on the sample count. */
static int peek_pair(int64_t *n, const char *img_path, const char *lab_path, char *err,
                     size_t errlen) {
    static const uint32_t img_dims[3] = {0, 28, 28};
    eng_idx img, lab;
    int rc = eng_idx_peek(&img, img_path, 3, img_dims, err, errlen);
    if (rc == PST_OK)
        rc = eng_idx_peek(&lab, lab_path, 1, NULL, err, errlen);
    if (rc != PST_OK)
        return rc;
    if (img.dims[0] != lab.dims[0])
        return pst_err(err, errlen, PST_EFORMAT, "%s: %u labels, but %s has %u images", lab_path,
                       lab.dims[0], img_path, img.dims[0]);
    *n = img.dims[0];
    return PST_OK;
}

int eng_split_load_idx(eng_split *s, const char *dir, const char *name, double val_split, int rank,
                       int world, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    PST_ASSERT(world >= 1 && rank >= 0 && rank < world, "rank %d of %d", rank, world);
    if (!(val_split >= 0.0 && val_split < 1.0))
        return pst_err(err, errlen, PST_EARG, "validation split %g outside [0, 1)", val_split);
    char ti[4096], tl[4096], vi[4096], vl[4096];
    int rc;
    if ((rc = find_file(ti, sizeof ti, dir, name, "train-images-idx3-ubyte", err, errlen)) ||
        (rc = find_file(tl, sizeof tl, dir, name, "train-labels-idx1-ubyte", err, errlen)) ||
        (rc = find_file(vi, sizeof vi, dir, name, "t10k-images-idx3-ubyte", err, errlen)) ||
        (rc = find_file(vl, sizeof vl, dir, name, "t10k-labels-idx1-ubyte", err, errlen)))
        return rc;
    int64_t ntrain = 0, ntest = 0, lo, hi;
    if ((rc = peek_pair(&ntrain, ti, tl, err, errlen)) ||
        (rc = peek_pair(&ntest, vi, vl, err, errlen)))
        return rc;
    /* Keras: split_at = int(len(x) * (1 - validation_split)). */
    const int64_t split_at = (int64_t)((double)ntrain * (1.0 - val_split));
    share_range(split_at, rank, world, &lo, &hi);
    if ((rc = load_part(&s->train, ti, tl, lo, hi, err, errlen)))
        goto fail;
    share_range(ntrain - split_at, rank, world, &lo, &hi);
    if ((rc = load_part(&s->val, ti, tl, split_at + lo, split_at + hi, err, errlen)))
        goto fail;
    share_range(ntest, rank, world, &lo, &hi);
    if ((rc = load_part(&s->test, vi, vl, lo, hi, err, errlen)))
        goto fail;
    return PST_OK;
fail:
    eng_split_deinit(s);
    return rc;
}

static void dataset_deinit(eng_dataset *d) {
    free(d->images);
    free(d->tokens);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

void eng_split_deinit(eng_split *s) {
    dataset_deinit(&s->train);
    dataset_deinit(&s->val);
    dataset_deinit(&s->test);
}

static void convert(float *x, const uint8_t *px, size_t n) {
    for (size_t j = 0; j < n; j++)
        x[j] = (float)px[j] / 255.0f; /* as Keras: astype(float32) / 255 */
}

/* Token ids go in as they are: an Embedding layer reads them back as integers. */
static void convert_tokens(float *x, const uint16_t *tok, size_t n) {
    for (size_t j = 0; j < n; j++)
        x[j] = (float)tok[j];
}

void eng_dataset_gather(const eng_dataset *d, const uint32_t *idx, int B, float *x,
                        uint8_t *labels) {
    const size_t n = eng_shape_size(d->shape);
    for (int i = 0; i < B; i++) {
        PST_ASSERT(idx[i] < d->n, "sample %u of %lld", idx[i], (long long)d->n);
        if (d->tokens)
            convert_tokens(x + (size_t)i * n, d->tokens + (size_t)idx[i] * n, n);
        else
            convert(x + (size_t)i * n, d->images + (size_t)idx[i] * n, n);
        labels[i] = d->labels[idx[i]];
    }
}

void eng_dataset_slice(const eng_dataset *d, int64_t first, int B, float *x, uint8_t *labels) {
    PST_ASSERT(first >= 0 && first + B <= d->n, "samples %lld+%d of %lld", (long long)first, B,
               (long long)d->n);
    const size_t n = eng_shape_size(d->shape);
    if (d->tokens)
        convert_tokens(x, d->tokens + (size_t)first * n, (size_t)B * n);
    else
        convert(x, d->images + (size_t)first * n, (size_t)B * n);
    memcpy(labels, d->labels + first, (size_t)B);
}
