/* winograd.h: a 3x3, stride-1, 'valid' Conv2D by Winograd's minimal filtering, F(m x m, 3x3)
 * for m = 2 (4x4 input tiles), m = 4 (6x6) and m = 5 (7x7): the same results as
 * eng_conv2d_forward_part / _backward_part with KH = KW = 3, up to rounding, with 2.25x
 * (m = 2), 4x (m = 4) or 4.6x (m = 5) fewer multiplications in the GEMMs, and rounding
 * errors that grow with m (tests/engine/test_winograd.c derives the bounds). Conv2D runs on
 * it where eng_conv2d_plan says (conv2d.c).
 *
 * x (B, H, W, C) NHWC; kernel (3, 3, C, F) as Keras stores it; y (B, OH, OW, F), the
 * top-left OH x OW outputs (OH <= H-2, OW <= W-2). The outputs are cut into tiles of m x m
 * (tH = ceil(OH / m) by tW = ceil(OW / m) per sample, T = B * tH * tW in all); tile (th, tw)
 * reads the alpha x alpha inputs (alpha = m + 2) from (th*m, tw*m), zeros past the input's
 * edge, and writes the outputs of it that lie inside OH x OW.
 *
 * With A^T (m, alpha), G (alpha, 3), B^T (alpha, alpha) of the tile size, per tile d and
 * per (c, f): y = A^T [ sum_c (G g G^T) . (B^T d B) ] A. So the work is three transforms and,
 * for each of the alpha^2 positions xi, one GEMM: M[xi] (T, F) = V[xi] (T, C) . U[xi] (C, F).
 * Backward runs the transposes: dM = A dY A^T per tile; dU[xi] = V[xi]^T dM[xi], dkernel =
 * G^T dU G; dV[xi] = dM[xi] U[xi]^T, dx = B dV B^T scattered back (tiles overlap by two).
 *
 * F(4x4) uses the points 0, 1, -1, 1/2, -2 (and infinity) rather than Lavin and Gray's
 * 0, +-1, +-2 (or 0, +-1, +-1/2): with them the transforms' product of absolute values is
 * 307 instead of 860 (the growth factor of the rounding error, see tests/engine/
 * test_winograd.c), and in a float simulation (C = 32, uniform data) the mean and largest
 * errors were 1.7x and 1.85x smaller. F(2x2) is Lavin's.
 *
 * Memory is the caller's: U the kernel's transform (made once per weight update), `saved`
 * V from the forward for the backward (like conv2d's col), `scratch` free between calls
 * (M, dM, dU); no allocation inside. */
#ifndef PSTRAIN_ENGINE_WINOGRAD_H
#define PSTRAIN_ENGINE_WINOGRAD_H

#include "engine/layer.h"

#include <stddef.h>

#define ENG_WINOGRAD_MAX_ALPHA 7

/* One tile size's transforms, row-major, in the corner of the fixed arrays. */
typedef struct eng_winograd_tf {
    int m, alpha;                                             /* output tile side; m + 2 */
    float at[ENG_WINOGRAD_MAX_ALPHA][ENG_WINOGRAD_MAX_ALPHA]; /* A^T (m, alpha) */
    float g[ENG_WINOGRAD_MAX_ALPHA][3];                       /* G (alpha, 3) */
    float bt[ENG_WINOGRAD_MAX_ALPHA][ENG_WINOGRAD_MAX_ALPHA]; /* B^T (alpha, alpha) */
} eng_winograd_tf;

/* The transforms of F(m x m, 3x3) for m = 2, 4 or 5, else NULL. Static: do not free. Tests
 * may run a modified copy. */
const eng_winograd_tf *eng_winograd_tf_for(int m);

/* The transformed kernel U (alpha^2 planes of C x F, each padded by 16 floats, then the same
 * planes transposed, F x C, for the backward: the floats eng_winograd_kernel_floats says) of
 * kernel (3, 3, C, F). It depends on the kernel
 * alone, so a caller makes it once per weight update and every chunk's forward and backward
 * (whatever thread) reads it. */
size_t eng_winograd_kernel_floats(const eng_winograd_tf *t, int C, int F);
void eng_winograd_kernel_transform(float *U, const float *kernel, int C, int F,
                                   const eng_winograd_tf *t);

/* Floats of `saved` (alpha^2 planes of T * C) and of `scratch` (alpha^2 planes of C * F
 * and alpha^2 of T * F; each plane padded by 16 floats) that forward and backward need. */
size_t eng_winograd_saved_floats(const eng_winograd_tf *t, int B, int OH, int OW, int C);
size_t eng_winograd_scratch_floats(const eng_winograd_tf *t, int B, int OH, int OW, int C, int F);

/* y (B, OH, OW, F) = act(conv(x, kernel) + bias), the top-left OH x OW outputs, with U the
 * kernel's transform (above); bias may be NULL. Fills saved with V for the backward. */
void eng_winograd_forward(float *y, float *saved, float *scratch, const float *x, const float *U,
                          const float *bias, int B, int H, int W, int C, int F, int OH, int OW,
                          const eng_winograd_tf *t, eng_act act);

/* As eng_conv2d_backward_part: dkernel (3, 3, C, F) and dbias (F; may be NULL) written, or
 * added to when accumulate; dx (B, H, W, C; may be NULL) written (inputs that feed no
 * computed output get 0); dy is overwritten with the pre-activation gradient. saved must
 * hold what the forward left there; it is overwritten (with dV). y is the forward's output
 * (for the activation), U the same kernel transform as the forward's. */
void eng_winograd_backward(float *dx, float *dkernel, float *dbias, float *dy, float *saved,
                           float *scratch, const float *y, const float *U, int B, int H, int W,
                           int C, int F, int OH, int OW, const eng_winograd_tf *t, eng_act act,
                           int accumulate);

#endif
