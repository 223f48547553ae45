/* test_grid.c: a GAN's sample grid: an 8-bit grey PNG (its header says so) read back with
 * cairo, every pixel where the images put it, and a few pinned. */
#include "worker/report/grid.h"

#include "engine/base/base.h"
#include "tests/support/testutil.h"

#include <cairo.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* Reads path, an 8-bit grey PNG (IHDR: bit depth 8, colour type 0), into a malloc'ed buffer
 * of its grey levels. */
static uint8_t *read_png(const char *path, int *width, int *height) {
    size_t len = 0;
    unsigned char *b = (unsigned char *)tu_read_file(path, &len);
    if (!b)
        fail_msg("%s: not written", path);
    assert_true(len > 26);
    assert_memory_equal(b, "\x89PNG\r\n\x1a\n", 8);
    assert_memory_equal(b + 12, "IHDR", 4);
    assert_int_equal(b[24], 8); /* bits per sample */
    assert_int_equal(b[25], 0); /* grey */
    free(b);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
        fail_msg("%s: %s", path, cairo_status_to_string(cairo_surface_status(s)));
    *width = cairo_image_surface_get_width(s);
    *height = cairo_image_surface_get_height(s);
    const int stride = cairo_image_surface_get_stride(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    uint8_t *buf = malloc((size_t)*width * (size_t)*height);
    assert_non_null(buf);
    for (int y = 0; y < *height; y++)
        for (int x = 0; x < *width; x++) { /* grey comes back as RGB24: r = g = b */
            uint32_t px;
            memcpy(&px, data + (size_t)y * (size_t)stride + 4 * (size_t)x, 4);
            assert_int_equal(px >> 16 & 0xff, px & 0xff);
            assert_int_equal(px >> 8 & 0xff, px & 0xff);
            buf[(size_t)y * (size_t)*width + (size_t)x] = (uint8_t)(px & 0xff);
        }
    cairo_surface_destroy(s);
    return buf;
}

/* 5 images of 3x4 in the default columns (3: the smallest square holding 5): sizes, the
 * mapping of [-1, 1] to 0..255 with clamping, black borders and an empty sixth cell. */
static void grid_round_trip(void **state) {
    (void)state;
    enum { N = 5, H = 3, W = 4 };
    float img[N * H * W];
    for (int i = 0; i < N * H * W; i++)
        img[i] = -1.0f + 2.0f * (float)(i % 12) / 11.0f;
    img[0] = -7.0f; /* clamped to black */
    img[1] = 3.0f;  /* clamped to white */
    img[2] = 0.0f;  /* the middle: 127.5, rounded to even */
    char path[] = "/tmp/pstrain-test-image-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char err[256] = "";
    if (wk_grid_png("out", path, img, N, H, W, 0, -1.0f, 1.0f, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    int width, height, ew, eh;
    uint8_t *px = read_png(path, &width, &height);
    wk_grid_size(N, H, W, 0, &ew, &eh);
    assert_int_equal(width, ew);
    assert_int_equal(height, eh);
    assert_int_equal(width, 2 + 3 * (W + 2));
    assert_int_equal(height, 2 + 2 * (H + 2));
    for (int i = 0; i < N; i++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const int gx = 2 + (i % 3) * (W + 2) + x, gy = 2 + (i / 3) * (H + 2) + y;
                float v = (img[(i * H + y) * W + x] + 1.0f) * 127.5f;
                v = v < 0 ? 0 : (v > 255 ? 255 : v);
                const int want = (int)lrintf(v), got = px[gy * width + gx];
                if (got != want)
                    fail_msg("image %d (%d, %d): %d, expected %d", i, x, y, got, want);
            }
    assert_int_equal(px[2 * width + 2], 0);
    assert_int_equal(px[2 * width + 3], 255);
    assert_int_equal(px[2 * width + 4], 128);
    for (int x = 0; x < width; x++) /* the top border and the empty sixth cell are black */
        assert_int_equal(px[x], 0);
    const int sx = 2 + 2 * (W + 2), sy = 2 + 1 * (H + 2);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            assert_int_equal(px[(sy + y) * width + sx + x], 0);
    free(px);
    unlink(path);
}

/* Bad arguments and an unwritable path: one line naming the path, no file. */
static void refusals(void **state) {
    (void)state;
    float img[4] = {0};
    char err[256] = "";
    assert_int_equal(wk_grid_png("out", "/tmp/x.png", img, 0, 2, 2, 0, -1, 1, err, sizeof err),
                     PST_EARG);
    assert_non_null(strstr(err, "/tmp/x.png"));
    assert_int_equal(
        wk_grid_png("out", "/nonexistent-dir/g.png", img, 1, 2, 2, 0, -1, 1, err, sizeof err),
        PST_EIO);
    assert_non_null(strstr(err, "/nonexistent-dir/g.png"));
    assert_null(strchr(err, '\n'));
    assert_int_equal(access("/nonexistent-dir/g.png", F_OK), -1);
    /* Larger than a picture can be (cairo's 32767 pixels a side). */
    assert_int_equal(
        wk_grid_png("out", "/tmp/x.png", img, 4096, 28, 28, 4096, -1, 1, err, sizeof err),
        PST_EARG);
    assert_non_null(strstr(err, "at most 32767"));
}

/* A disk that fills up mid-file (RLIMIT_FSIZE: the kernel refuses writes past it, as a full
 * file system does): PST_EIO naming the path and the reason, no partial file left, and the
 * grid an earlier epoch wrote there still whole. */
static void full_disk_leaves_no_file(void **state) {
    (void)state;
    enum { N = 256, SIDE = 28 };
    float *img = tu_random_floats((size_t)N * SIDE * SIDE, -1.0f, 1.0f, 7); /* noise: big */
    char dir[1024], path[1100], err[512] = "";
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "grid"), 0);
    snprintf(path, sizeof path, "%s/g.png", dir);
    assert_int_equal(wk_grid_png("out", path, img, 4, SIDE, SIDE, 0, -1, 1, err, sizeof err),
                     PST_OK);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    struct rlimit was, full = {.rlim_cur = 16 * 1024};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    full.rlim_max = was.rlim_max;
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
    const int rc = wk_grid_png("out", path, img, N, SIDE, SIDE, 0, -1, 1, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, old);
    printf("%s\n", err);
    assert_int_equal(rc, PST_EIO);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "File too large"));
    assert_int_equal(stat(path, &after), 0); /* the earlier grid, as it was */
    assert_true(after.st_size == before.st_size && after.st_ino == before.st_ino);
    /* and with room, the whole grid */
    assert_int_equal(wk_grid_png("out", path, img, N, SIDE, SIDE, 0, -1, 1, err, sizeof err),
                     PST_OK);
    assert_int_equal(access(path, F_OK), 0);
    free(img);
    tu_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grid_round_trip),
        cmocka_unit_test(refusals),
        cmocka_unit_test(full_disk_leaves_no_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
