/* image.c: a grid of images as one PNG, through libpng's simplified API. */
#include "engine/image.h"

#include "engine/base/base.h"

#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BORDER 2 /* pixels of black around and between cells */

static int grid_cols(int n, int cols) {
    if (cols > 0)
        return cols;
    int c = 1;
    while (c * c < n)
        c++;
    return c;
}

void eng_image_grid_size(int n, int h, int w, int cols, int *width, int *height) {
    const int c = grid_cols(n, cols), r = (n + c - 1) / c;
    *width = BORDER + c * (w + BORDER);
    *height = BORDER + r * (h + BORDER);
}

int eng_image_grid_png(const char *path, const float *images, int n, int h, int w, int cols,
                       float lo, float hi, char *err, size_t errlen) {
    if (n < 1 || h < 1 || w < 1 || cols < 0 || !(hi > lo))
        return pst_err(err, errlen, PST_EARG,
                       "%s: a grid of %d images of %dx%d in %d columns, values in [%g, %g]", path,
                       n, h, w, cols, (double)lo, (double)hi);
    const int c = grid_cols(n, cols);
    int width, height;
    eng_image_grid_size(n, h, w, cols, &width, &height);
    uint8_t *pixels = calloc((size_t)width * (size_t)height, 1); /* black */
    if (!pixels)
        return pst_err(err, errlen, PST_ENOMEM, "%s: out of memory for %dx%d pixels", path, width,
                       height);
    const float scale = 255.0f / (hi - lo);
    for (int i = 0; i < n; i++) {
        const int x0 = BORDER + (i % c) * (w + BORDER), y0 = BORDER + (i / c) * (h + BORDER);
        const float *img = images + (size_t)i * (size_t)h * (size_t)w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = (img[y * w + x] - lo) * scale;
                v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
                pixels[(size_t)(y0 + y) * (size_t)width + (size_t)(x0 + x)] = (uint8_t)lrintf(v);
            }
    }
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    png.width = (png_uint_32)width;
    png.height = (png_uint_32)height;
    png.format = PNG_FORMAT_GRAY;
    const int ok = png_image_write_to_file(&png, path, 0, pixels, width, NULL);
    free(pixels);
    if (!ok)
        return pst_err(err, errlen, PST_EIO, "%s: cannot write the PNG: %s", path, png.message);
    return PST_OK;
}
