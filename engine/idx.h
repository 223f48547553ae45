/* idx.h: reading IDX files (the MNIST format), raw or gzip-compressed.
 *
 * Header: two zero bytes, a type byte (0x08 = unsigned byte, the only type MNIST uses), the
 * number of dimensions, then each dimension as a big-endian uint32. Items follow, row-major.
 * zlib's gzread reads both raw and gzip files, so "file" and "file.gz" are the same to us. */
#ifndef PSTRAIN_ENGINE_IDX_H
#define PSTRAIN_ENGINE_IDX_H

#include <stddef.h>
#include <stdint.h>

#define ENG_IDX_MAX_DIMS 4

typedef struct eng_idx {
    int ndim;
    uint32_t dims[ENG_IDX_MAX_DIMS];
    size_t item_bytes;   /* product of dims[1..] */
    size_t first, count; /* the items held: [first, first + count) of dims[0] */
    uint8_t *data;       /* count * item_bytes bytes, owned */
} eng_idx;

/* Reads items [first, first + count) of the unsigned-byte IDX file at path (count =
 * SIZE_MAX: to the end), checking the header against expect_ndim and, where non-zero,
 * expect_dims[1..] (a row's shape). Reading a share of a raw file seeks past the rest.
 * Returns PST_OK, or PST_EIO / PST_EFORMAT with a message naming the file, what was
 * expected and what was found. On success the caller owns idx->data (eng_idx_deinit). */
int eng_idx_read(eng_idx *idx, const char *path, int expect_ndim, const uint32_t *expect_dims,
                 size_t first, size_t count, char *err, size_t errlen);
void eng_idx_deinit(eng_idx *idx);

/* Reads and checks only the header (idx->data stays NULL, count 0). */
int eng_idx_peek(eng_idx *idx, const char *path, int expect_ndim, const uint32_t *expect_dims,
                 char *err, size_t errlen);

#endif
