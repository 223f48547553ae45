/* idx.c: the IDX reader, with every length checked before it is trusted. */
#include "engine/idx.h"

#include "engine/base/base.h"
#include "engine/base/file.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Reads up to len bytes; *got tells how many arrived before the end of the file.
 * PST_EIO / PST_EFORMAT on a read or decompression error. */
static int read_some(gzFile f, void *buf, size_t len, size_t *got, const char *path, char *err,
                     size_t errlen) {
    size_t done = 0;
    while (done < len) {
        unsigned chunk = len - done > (1u << 30) ? (1u << 30) : (unsigned)(len - done);
        int n = gzread(f, (char *)buf + done, chunk);
        if (n < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            return pst_err(err, errlen, zerr == Z_ERRNO ? PST_EIO : PST_EFORMAT, "%s: %s", path,
                           zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return PST_OK;
}

/* Reads exactly len bytes at byte position pos of the (uncompressed) file, whose full
 * length should be total: a short read is a truncated file. */
static int read_exact(gzFile f, void *buf, size_t len, size_t pos, size_t total, const char *path,
                      char *err, size_t errlen) {
    size_t got = 0;
    int rc = read_some(f, buf, len, &got, path, err, errlen);
    if (rc == PST_OK && got < len)
        rc = pst_err(err, errlen, PST_EFORMAT, "%s: truncated: expected %zu bytes, got %zu", path,
                     total, pos + got);
    return rc;
}

/* Reads the len bytes at byte position pos of the (uncompressed) file, whose full length
 * should be total, into a new buffer *out (the caller frees it). A raw file's length has been
 * checked against its header, so its buffer is allocated whole; a compressed file's length
 * is known only once it is read, so its buffer grows as the bytes arrive (from 1 MiB,
 * doubling): a header that claims more than the file holds is refused as truncated before
 * it costs that memory. */
static int read_items(gzFile f, uint8_t **out, size_t len, size_t pos, size_t total,
                      const char *path, char *err, size_t errlen) {
    const size_t start = (size_t)1 << 20;
    size_t cap = gzdirect(f) || len < start ? len : start, done = 0;
    uint8_t *buf = pst_malloc(cap);
    int rc = PST_OK;
    while (rc == PST_OK && done < len) {
        if (done == cap) {
            cap = cap > len / 2 ? len : 2 * cap;
            buf = pst_realloc(buf, cap);
        }
        size_t got = 0;
        rc = read_some(f, buf + done, cap - done, &got, path, err, errlen);
        if (rc == PST_OK && got < cap - done)
            rc = pst_err(err, errlen, PST_EFORMAT, "%s: truncated: expected %zu bytes, got %zu",
                         path, total, pos + done + got);
        done += got;
    }
    if (rc != PST_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    return PST_OK;
}

int eng_idx_read(eng_idx *idx, const char *path, int expect_ndim, const uint32_t *expect_dims,
                 size_t first, size_t count, char *err, size_t errlen) {
    memset(idx, 0, sizeof *idx);
    int fd;
    struct stat st;
    int rc = pst_open_regular(path, &fd, &st, err, errlen); /* a FIFO would block gzopen */
    if (rc != PST_OK)
        return rc;
    gzFile f = gzdopen(fd, "rb"); /* owns fd from here */
    if (!f) {
        close(fd);
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
    }
    gzbuffer(f, 1 << 17);
    unsigned char head[4];
    if ((rc = read_exact(f, head, 4, 0, 4, path, err, errlen)) != PST_OK)
        goto out;
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != expect_ndim) {
        rc = pst_err(err, errlen, PST_EFORMAT,
                     "%s: bad magic: expected 0x000008%02x (unsigned byte, %d dims), got "
                     "0x%02x%02x%02x%02x",
                     path, expect_ndim, expect_ndim, head[0], head[1], head[2], head[3]);
        goto out;
    }
    idx->ndim = expect_ndim;
    unsigned char raw[4 * ENG_IDX_MAX_DIMS];
    const size_t header = 4 + 4 * (size_t)expect_ndim;
    if ((rc = read_exact(f, raw, header - 4, 4, header, path, err, errlen)) != PST_OK)
        goto out;
    idx->item_bytes = 1;
    for (int d = 0; d < expect_ndim; d++) {
        const unsigned char *b = raw + 4 * d;
        idx->dims[d] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (d > 0 && expect_dims && expect_dims[d] && idx->dims[d] != expect_dims[d]) {
            rc = pst_err(err, errlen, PST_EFORMAT, "%s: dimension %d is %u, expected %u", path, d,
                         idx->dims[d], expect_dims[d]);
            goto out;
        }
        if (d > 0 && idx->dims[d] && idx->item_bytes > SIZE_MAX / idx->dims[d]) {
            rc = pst_err(err, errlen, PST_EFORMAT,
                         "%s: dimension %d is %u: an item would be more than %zu bytes", path, d,
                         idx->dims[d], SIZE_MAX);
            goto out;
        }
        if (d > 0)
            idx->item_bytes *= idx->dims[d];
    }
    if (idx->item_bytes && idx->dims[0] > (SIZE_MAX - header) / idx->item_bytes) {
        rc = pst_err(err, errlen, PST_EFORMAT,
                     "%s: dimension 0 is %u: the file would be more than %zu bytes", path,
                     idx->dims[0], SIZE_MAX);
        goto out;
    }
    const size_t total = header + (size_t)idx->dims[0] * idx->item_bytes;
    if (gzdirect(f) && (size_t)st.st_size != total) {
        /* A raw file's length is known up front: check it before seeking into it. */
        rc = pst_err(err, errlen, PST_EFORMAT,
                     "%s: %s: expected %zu bytes (header + %u items), got %lld", path,
                     (size_t)st.st_size < total ? "truncated" : "too long", total, idx->dims[0],
                     (long long)st.st_size);
        goto out;
    }
    if (first > idx->dims[0]) {
        rc = pst_err(err, errlen, PST_EARG, "%s: first item %zu is past its %u items", path, first,
                     idx->dims[0]);
        goto out;
    }
    if (count == SIZE_MAX)
        count = idx->dims[0] - first;
    if (first + count > idx->dims[0]) {
        rc = pst_err(err, errlen, PST_EARG, "%s: items %zu..%zu asked for, file has %u", path,
                     first, first + count, idx->dims[0]);
        goto out;
    }
    const size_t skip = first * idx->item_bytes; /* within total: no overflow */
    if (skip && (skip > LONG_MAX || gzseek(f, (long)skip, SEEK_CUR) < 0)) {
        rc = pst_err(err, errlen, PST_EFORMAT, "%s: truncated: cannot seek to item %zu", path,
                     first);
        goto out;
    }
    idx->first = first;
    idx->count = count;
    if (count == 0)
        goto out; /* a peek */
    rc =
        read_items(f, &idx->data, count * idx->item_bytes, header + skip, total, path, err, errlen);
    if (rc == PST_OK && first + count == idx->dims[0]) {
        /* Reading to the end: the file must end exactly there. */
        unsigned char extra;
        if (gzread(f, &extra, 1) > 0)
            rc = pst_err(err, errlen, PST_EFORMAT,
                         "%s: expected %zu bytes (header + %u items), file is longer", path, total,
                         idx->dims[0]);
    }
out:
    gzclose(f);
    if (rc != PST_OK)
        eng_idx_deinit(idx);
    return rc;
}

void eng_idx_deinit(eng_idx *idx) {
    free(idx->data);
    idx->data = NULL;
    idx->count = 0;
}

int eng_idx_peek(eng_idx *idx, const char *path, int expect_ndim, const uint32_t *expect_dims,
                 char *err, size_t errlen) {
    return eng_idx_read(idx, path, expect_ndim, expect_dims, 0, 0, err, errlen);
}
