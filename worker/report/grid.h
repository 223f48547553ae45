/* grid.h: pictures a person can look at: a batch of single-channel images laid out as a grid
 * in one 8-bit grey PNG, as a GAN's samples are shown (--samples DIR/epoch-E.png and
 * `pstrain sample`). Drawn on cairo's 8-bit image surface and written by cairo. */
#ifndef PSTRAIN_WORKER_REPORT_GRID_H
#define PSTRAIN_WORKER_REPORT_GRID_H

#include <stddef.h>

/* Writes images (n, h, w, 1), values in [lo, hi] (the generator's tanh: -1, 1; clamped
 * outside), as a grid of `cols` columns (0: the smallest square that holds n) with a 2-pixel
 * black border around and between cells, to path: grey level lrintf(255 (v - lo) / (hi - lo)).
 * The file is written whole or not at all (wk_write_whole: what was at path stays when it
 * cannot be). Returns PST_OK, or PST_EARG (a bad shape) / PST_EIO (path cannot be written)
 * with one line in err naming the path (and flag, the option that named it: "samples"). */
int wk_grid_png(const char *flag, const char *path, const float *images, int n, int h, int w,
                int cols, float lo, float hi, char *err, size_t errlen);

/* The grid's size in pixels, as wk_grid_png lays it out. */
void wk_grid_size(int n, int h, int w, int cols, int *width, int *height);

/* One image (h, w, 1) in [lo, hi] as an 8-bit grey PNG in memory, grey levels as
 * wk_grid_png's, without a border: *png (malloc'ed: free it), *len bytes. Returns PST_OK, or
 * PST_EARG (a bad shape) / PST_EIO (cairo failed) with one line in err. Safe from any thread. */
int wk_image_png(const float *image, int h, int w, float lo, float hi, void **png, size_t *len,
                 char *err, size_t errlen);

#endif
