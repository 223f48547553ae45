/* test_image.c: the PNG grid, read back with libpng. */
#include "engine/image.h"

#include "engine/base/base.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Reads path as 8-bit grey into a malloc'ed buffer. */
static uint8_t *read_png(const char *path, int *width, int *height) {
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&png, path))
        fail_msg("%s: %s", path, png.message);
    png.format = PNG_FORMAT_GRAY;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(png));
    assert_non_null(buf);
    if (!png_image_finish_read(&png, NULL, buf, 0, NULL))
        fail_msg("%s: %s", path, png.message);
    *width = (int)png.width;
    *height = (int)png.height;
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
    if (eng_image_grid_png(path, img, N, H, W, 0, -1.0f, 1.0f, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    int width, height, ew, eh;
    uint8_t *px = read_png(path, &width, &height);
    eng_image_grid_size(N, H, W, 0, &ew, &eh);
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
    assert_int_equal(eng_image_grid_png("/tmp/x.png", img, 0, 2, 2, 0, -1, 1, err, sizeof err),
                     PST_EARG);
    assert_non_null(strstr(err, "/tmp/x.png"));
    assert_int_equal(
        eng_image_grid_png("/nonexistent-dir/g.png", img, 1, 2, 2, 0, -1, 1, err, sizeof err),
        PST_EIO);
    assert_non_null(strstr(err, "/nonexistent-dir/g.png"));
    assert_null(strchr(err, '\n'));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grid_round_trip),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
