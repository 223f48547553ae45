/* grid.c: a grid of images as one grey PNG: the pixels on cairo's A8 image surface (cairo
 * writes that format as an 8-bit grey PNG, byte for byte what is on the surface). */
#include "worker/report/grid.h"

#include "engine/base/base.h"
#include "worker/paths.h"
#include "worker/report/panel.h"

#include <cairo.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BORDER 2       /* pixels of black around and between cells */
#define SIDE_MAX 32767 /* cairo's largest image surface */

static int grid_cols(int n, int cols) {
    if (cols > 0)
        return cols;
    int c = 1;
    while (c * c < n)
        c++;
    return c;
}

/* s as a PNG at path, written whole (wk_write_whole: a failure leaves what was there). */
static int write_png(cairo_surface_t *s, const char *flag, const char *path, char *err,
                     size_t errlen) {
    wk_bytes b = {0};
    const cairo_status_t st = cairo_surface_write_to_png_stream(s, wk_bytes_append, &b);
    PST_ASSERT(st == CAIRO_STATUS_SUCCESS, "%s: %s", path, cairo_status_to_string(st));
    const void *buf = b.data;
    const int rc = wk_write_whole(flag, path, &buf, &b.len, 1, err, errlen);
    free(b.data);
    return rc;
}

/* One image (h, w) in [lo, hi] onto the A8 pixels at px (stride bytes a row): grey level
 * lrintf(255 (v - lo) / (hi - lo)), clamped. */
static void draw_cell(uint8_t *px, size_t stride, const float *img, int h, int w, float lo,
                      float hi) {
    const float scale = 255.0f / (hi - lo);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = (img[y * w + x] - lo) * scale;
            v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
            px[(size_t)y * stride + (size_t)x] = (uint8_t)lrintf(v);
        }
}

void wk_grid_size(int n, int h, int w, int cols, int *width, int *height) {
    const int c = grid_cols(n, cols), r = (n + c - 1) / c;
    *width = BORDER + c * (w + BORDER);
    *height = BORDER + r * (h + BORDER);
}

int wk_grid_png(const char *flag, const char *path, const float *images, int n, int h, int w,
                int cols, float lo, float hi, char *err, size_t errlen) {
    int width = 0, height = 0;
    if (n >= 1 && h >= 1 && w >= 1 && cols >= 0 && h < SIDE_MAX && w < SIDE_MAX)
        wk_grid_size(n, h, w, cols, &width, &height);
    if (width < 1 || height < 1 || width > SIDE_MAX || height > SIDE_MAX || !(hi > lo))
        return pst_err(err, errlen, PST_EARG,
                       "%s: a grid of %d images of %dx%d in %d columns, values in [%g, %g]: "
                       "expected at most %d pixels a side and lo < hi",
                       path, n, h, w, cols, (double)lo, (double)hi, SIDE_MAX);
    const int c = grid_cols(n, cols);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_A8, width, height);
    PST_ASSERT(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS, "a %dx%d surface: %s", width,
               height, cairo_status_to_string(cairo_surface_status(s)));
    cairo_surface_flush(s);
    uint8_t *pixels = cairo_image_surface_get_data(s);
    const size_t stride = (size_t)cairo_image_surface_get_stride(s);
    memset(pixels, 0, stride * (size_t)height); /* black */
    for (int i = 0; i < n; i++) {
        const int x0 = BORDER + (i % c) * (w + BORDER), y0 = BORDER + (i / c) * (h + BORDER);
        draw_cell(pixels + (size_t)y0 * stride + (size_t)x0, stride,
                  images + (size_t)i * (size_t)h * (size_t)w, h, w, lo, hi);
    }
    cairo_surface_mark_dirty(s);
    const int rc = write_png(s, flag, path, err, errlen);
    cairo_surface_destroy(s);
    return rc;
}

int wk_image_png(const float *image, int h, int w, float lo, float hi, void **png, size_t *len,
                 char *err, size_t errlen) {
    *png = NULL;
    *len = 0;
    if (h < 1 || w < 1 || h > SIDE_MAX || w > SIDE_MAX || !(hi > lo))
        return pst_err(err, errlen, PST_EARG,
                       "png: an image of %dx%d, values in [%g, %g]: expected at most %d pixels a "
                       "side and lo < hi",
                       h, w, (double)lo, (double)hi, SIDE_MAX);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_A8, w, h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        const int rc = pst_err(err, errlen, PST_EIO, "png: a %dx%d surface: %s", w, h,
                               cairo_status_to_string(cairo_surface_status(s)));
        cairo_surface_destroy(s);
        return rc;
    }
    cairo_surface_flush(s);
    draw_cell(cairo_image_surface_get_data(s), (size_t)cairo_image_surface_get_stride(s), image, h,
              w, lo, hi);
    cairo_surface_mark_dirty(s);
    wk_bytes b = {0};
    const cairo_status_t st = cairo_surface_write_to_png_stream(s, wk_bytes_append, &b);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        free(b.data);
        return pst_err(err, errlen, PST_EIO, "png: %s", cairo_status_to_string(st));
    }
    *png = b.data;
    *len = b.len;
    return PST_OK;
}
