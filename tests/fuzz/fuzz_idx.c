/* fuzz_idx.c: libFuzzer harness for the IDX reader (engine/idx.h).
 *
 * Input: the bytes of one IDX file, raw or gzip (gzread reads both). They are written to a
 * fixed per-process file and read as the loaders read MNIST: images with the expected shape
 * (n, 28, 28), labels (n), a share of items 1..2 of a file of any row shape, the rank the
 * file's own header names (1..4, no expected shape: no check stops large dimensions early),
 * and a peek. Each call must return PST_OK with exactly count * item_bytes bytes (every one
 * is read back, for ASan), or a negative code with one line naming the file.
 *
 * Seeds: tests/fuzz/corpus/idx (cut from the real MNIST files by make_corpus). */
#include "engine/base/base.h"
#include "engine/idx.h"
#include "tests/fuzz/fuzzutil.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char path[1100];

/* One read; checks what it returned. */
static void read_one(int ndim, const uint32_t *dims, size_t first, size_t count, const char *what) {
    eng_idx idx;
    char err[512] = "";
    const int rc = eng_idx_read(&idx, path, ndim, dims, first, count, err, sizeof err);
    if (rc != PST_OK) {
        fz_check_error(rc, err, path, what);
        fz_check(idx.data == NULL, "%s: failed but left data", what);
        return;
    }
    fz_check(idx.ndim == ndim, "%s: ndim %d, asked for %d", what, idx.ndim, ndim);
    size_t item = 1;
    for (int d = 1; d < ndim; d++) {
        item *= idx.dims[d];
        if (dims && dims[d])
            fz_check(idx.dims[d] == dims[d], "%s: dimension %d is %u", what, d, idx.dims[d]);
    }
    fz_check(idx.item_bytes == item, "%s: item_bytes %zu, dims say %zu", what, idx.item_bytes,
             item);
    fz_check(idx.first == first && idx.first + idx.count <= idx.dims[0],
             "%s: items [%zu, +%zu) of %u", what, idx.first, idx.count, idx.dims[0]);
    if (count != SIZE_MAX)
        fz_check(idx.count == count, "%s: %zu items, asked for %zu", what, idx.count, count);
    if (idx.count && idx.item_bytes)
        fz_touch(idx.data, idx.count * idx.item_bytes);
    eng_idx_deinit(&idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0])
        snprintf(path, sizeof path, "%s/input-idx3-ubyte", fz_dir("idx"));
    fz_write(path, data, size);
    static const uint32_t images[3] = {0, 28, 28};
    read_one(3, images, 0, SIZE_MAX, "images (n, 28, 28)");
    read_one(1, NULL, 0, SIZE_MAX, "labels (n)");
    read_one(3, NULL, 1, 2, "items 1..2 of (n, h, w)");
    if (size >= 4 && data[3] >= 1 && data[3] <= ENG_IDX_MAX_DIMS)
        read_one(data[3], NULL, 0, SIZE_MAX, "the header's own rank");
    eng_idx idx;
    char err[512] = "";
    const int rc = eng_idx_peek(&idx, path, 3, images, err, sizeof err);
    if (rc != PST_OK)
        fz_check_error(rc, err, path, "peek");
    else
        fz_check(idx.data == NULL && idx.count == 0, "peek returned %zu items", idx.count);
    return 0;
}
