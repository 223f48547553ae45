/* image.h: pictures a person can look at: a batch of single-channel images laid out as a
 * grid in one 8-bit grey PNG (libpng), as a GAN's samples are shown. */
#ifndef PSTRAIN_ENGINE_IMAGE_H
#define PSTRAIN_ENGINE_IMAGE_H

#include <stddef.h>

/* Writes images (n, h, w, 1), values in [lo, hi] (the generator's tanh: -1, 1; clamped
 * outside), as a grid of `cols` columns (0: the smallest square that holds n) with a
 * 2-pixel black border between cells, to path. Returns PST_OK, or PST_EIO / PST_EARG with
 * one line in err naming the path. */
int eng_image_grid_png(const char *path, const float *images, int n, int h, int w, int cols,
                       float lo, float hi, char *err, size_t errlen);

/* The grid's size in pixels, as eng_image_grid_png lays it out. */
void eng_image_grid_size(int n, int h, int w, int cols, int *width, int *height);

#endif
