/* winograd.c: Conv2D 3x3 by F(2x2, 3x3), F(4x4, 3x3) and F(5x5, 3x3) (see winograd.h). The
 * transforms run on vectors of VW channels (or filters) at once, contiguous in NHWC, with the sums
 * in registers; the GEMMs are OpenBLAS's.
 *
 * Layouts: V (alpha^2, T, C), U and dU (alpha^2, C, F), M and dM (alpha^2, T, F), each
 * plane padded (plane_of); xi = i*alpha + j the position in the tile, t = (n*tH + th)*tW + tw
 * the tile. GNU C vectors (vector_size) are the one extension used. */
#include "engine/winograd.h"

#include "engine/activation.h"
#include "engine/base/base.h"

#include <cblas.h>
#include <string.h>

#define VW 16 /* channels (or filters) per transform vector: one AVX-512 register */
#define MA ENG_WINOGRAD_MAX_ALPHA

/* F(2x2, 3x3): Lavin and Gray's, points 0, 1, -1 and infinity. */
static const eng_winograd_tf tf2 = {
    .m = 2,
    .alpha = 4,
    .at = {{1, 1, 1, 0}, {0, 1, -1, -1}},
    .g = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}},
    .bt = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
};

/* F(4x4, 3x3), points 0, 1, -1, 1/2, -2 and infinity (why: winograd.h). Derived by
 * Toom-Cook: A^T[i][j] = p_j^i, G[j][k] = p_j^k / prod_{l != j} (p_j - p_l), and B^T the
 * unique matrix that makes y = A^T [(G g) . (B^T d)] the 1-D correlation. */
static const eng_winograd_tf tf4 = {
    .m = 4,
    .alpha = 6,
    .at = {{1, 1, 1, 1, 1, 0},
           {0, 1, -1, 0.5f, -2, 0},
           {0, 1, 1, 0.25f, 4, 0},
           {0, 1, -1, 0.125f, -8, 1}},
    .g = {{1, 0, 0},
          {(float)(1.0 / 3), (float)(1.0 / 3), (float)(1.0 / 3)},
          {(float)(-1.0 / 3), (float)(1.0 / 3), (float)(-1.0 / 3)},
          {(float)(-16.0 / 15), (float)(-8.0 / 15), (float)(-4.0 / 15)},
          {(float)(1.0 / 15), (float)(-2.0 / 15), (float)(4.0 / 15)},
          {0, 0, 1}},
    .bt = {{1, -1.5f, -2, 1.5f, 1, 0},
           {0, -1, 0.5f, 2.5f, 1, 0},
           {0, 1, -2.5f, 0.5f, 1, 0},
           {0, -2, -1, 2, 1, 0},
           {0, 0.5f, -1, -0.5f, 1, 0},
           {0, 1, -1.5f, -2, 1.5f, 1}},
};

/* F(5x5, 3x3), points 0, 1, -1, 1/2, -1/2, 2 and infinity, derived as tf4 (with them the
 * growth constants of tests/engine/test_winograd.c are 1620, 796, 6637; with 0, 1, -1, 1/2,
 * -2, 1/4 they would be 12971, 2510, 30589). Its 7x7 input tiles give 5x5 outputs: the
 * 10x10 that mnist_cnn's conv2 computes in 2x2 tiles, with 4 x 49 products per sample
 * against F(2x2)'s 25 x 16 and F(4x4)'s 9 x 36. */
static const eng_winograd_tf tf5 = {
    .m = 5,
    .alpha = 7,
    .at = {{1, 1, 1, 1, 1, 1, 0},
           {0, 1, -1, 0.5f, -0.5f, 2, 0},
           {0, 1, 1, 0.25f, 0.25f, 4, 0},
           {0, 1, -1, 0.125f, -0.125f, 8, 0},
           {0, 1, 1, 0.0625f, 0.0625f, 16, 1}},
    .g = {{-2, 0, 0},
          {(float)(-2.0 / 3), (float)(-2.0 / 3), (float)(-2.0 / 3)},
          {(float)(-2.0 / 9), (float)(2.0 / 9), (float)(-2.0 / 9)},
          {(float)(16.0 / 9), (float)(8.0 / 9), (float)(4.0 / 9)},
          {(float)(16.0 / 15), (float)(-8.0 / 15), (float)(4.0 / 15)},
          {(float)(2.0 / 45), (float)(4.0 / 45), (float)(8.0 / 45)},
          {0, 0, 1}},
    .bt = {{-0.5f, 0.25f, 2.5f, -1.25f, -2, 1, 0},
           {0, 0.5f, 0.25f, -2.25f, -1, 1, 0},
           {0, -0.5f, 0.75f, 1.75f, -3, 1, 0},
           {0, 1, 1.5f, -2, -1.5f, 1, 0},
           {0, -1, 2.5f, 0, -2.5f, 1, 0},
           {0, 0.25f, 0, -1.25f, 0, 1, 0},
           {0, -0.5f, 0.25f, 2.5f, -1.25f, -2, 1}},
};

/* fn(..., table) with t's static table as a constant, so that the inlined transforms fold
 * its zeros and ones away; a table that is none of them (a test's modified copy) as data. */
#define WITH_TABLE(t, fn, ...)                                                                     \
    do {                                                                                           \
        if ((t) == &tf5)                                                                           \
            fn(__VA_ARGS__, &tf5);                                                                 \
        else if ((t) == &tf4)                                                                      \
            fn(__VA_ARGS__, &tf4);                                                                 \
        else if ((t) == &tf2)                                                                      \
            fn(__VA_ARGS__, &tf2);                                                                 \
        else                                                                                       \
            fn(__VA_ARGS__, (t));                                                                  \
    } while (0)

const eng_winograd_tf *eng_winograd_tf_for(int m) {
    return m == 2 ? &tf2 : m == 4 ? &tf4 : m == 5 ? &tf5 : NULL;
}

static int tiles(int n, int m) { return (n + m - 1) / m; }

/* The stride between the alpha^2 planes of U, V, M: a plane's floats plus 16. Planes of a
 * power-of-two size (C * F = 2048 floats) would put the alpha^2 vectors a transform reads or
 * writes at once into the same L1 set and evict each other. */
static size_t plane_of(size_t floats) { return floats + 16; }

size_t eng_winograd_saved_floats(const eng_winograd_tf *t, int B, int OH, int OW, int C) {
    const size_t a2 = (size_t)t->alpha * t->alpha;
    return a2 * plane_of((size_t)B * tiles(OH, t->m) * tiles(OW, t->m) * C);
}

size_t eng_winograd_scratch_floats(const eng_winograd_tf *t, int B, int OH, int OW, int C, int F) {
    const size_t a2 = (size_t)t->alpha * t->alpha;
    return a2 * plane_of((size_t)C * F) +
           a2 * plane_of((size_t)B * tiles(OH, t->m) * tiles(OW, t->m) * F);
}

/* U's planes (C, F), then the same transposed (F, C): dV = dM U^T as a plain product runs on
 * OpenBLAS's small-matrix kernel (SkylakeX, T 100, C 32, F 64: 2.3 us against 4.1 us with
 * the transposed operand; the same on Haswell). */
size_t eng_winograd_kernel_floats(const eng_winograd_tf *t, int C, int F) {
    return 2 * (size_t)t->alpha * t->alpha * plane_of((size_t)C * F);
}

/* VW floats, one AVX-512 register (two AVX2 ones): a GNU C vector, so that the sums below
 * stay in registers whatever the compiler's auto-vectorizer makes of the loops around.
 * vec_u is the same at any alignment, and may alias floats: the tensors' loads and stores,
 * each one wide move (a memcpy became two narrower ones, and a wide load of them stalls). */
typedef float vec __attribute__((vector_size(VW * sizeof(float))));
typedef float vec_u __attribute__((vector_size(VW * sizeof(float)), aligned(4), may_alias));

/* Entry (i, j) of a row-major matrix with ld columns, or of its transpose when tr. */
#define MAT(M, ld, tr, i, j) ((tr) ? (M)[(j) * (ld) + (i)] : (M)[(i) * (ld) + (j)])

/* out[i][j] = sum_p L[i][p] sum_q in[p][q] Rt[j][q] for i < R, j < S (p < P, q < Q), on
 * vectors of VW floats read from src[p * MA + q] and written to dst[i * MA + j] (any
 * alignment): every transform and adjoint here is one of these. L and Rt are a transform's
 * matrix (ld columns) or its transpose (tr). Read straight from the tensors, not through
 * a staging copy, whose narrower stores would stall the wide loads. Zero entries are
 * skipped; inlined with the static tables (below) they are folded away, as are the
 * multiplications by 1. */
static inline __attribute__((always_inline)) void tf2d_n(float *const *dst, const float *const *src,
                                                         const float *L, int lld, int ltr,
                                                         const float *Rt, int rld, int rtr, int R,
                                                         int S, int P, int Q) {
    vec mid[MA * MA];
    for (int p = 0; p < P; p++) {
        vec row[MA];
        for (int q = 0; q < Q; q++)
            row[q] = *(const vec_u *)src[p * MA + q];
        for (int j = 0; j < S; j++) {
            vec acc = {0};
            for (int q = 0; q < Q; q++) {
                const float c = MAT(Rt, rld, rtr, j, q);
                if (c != 0.0f)
                    acc += c * row[q];
            }
            mid[p * MA + j] = acc;
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < S; j++) {
            vec acc = {0};
            for (int p = 0; p < P; p++) {
                const float c = MAT(L, lld, ltr, i, p);
                if (c != 0.0f)
                    acc += c * mid[p * MA + j];
            }
            *(vec_u *)dst[i * MA + j] = acc;
        }
}

/* Where a transform reads and writes one block of n <= VW channels: whole blocks inside the
 * tensor in place; partial ones (n < VW), and positions outside it (zero inputs, cut
 * outputs), through the staging vectors, which the caller copies out afterwards. */
typedef struct stage {
    vec in[MA * MA], out[MA * MA];
    const float *src[MA * MA];
    float *dst[MA * MA];
} stage;

static const vec zeros;

/* src[k] = p (NULL: zeros) when a whole block, else a zero-padded copy of its n floats. */
static inline void stage_src(stage *st, int k, const float *p, int n) {
    if (p && n == VW) {
        st->src[k] = p;
        return;
    }
    if (!p) {
        st->src[k] = (const float *)&zeros;
        return;
    }
    memset(&st->in[k], 0, sizeof st->in[k]);
    memcpy(&st->in[k], p, sizeof(float) * n);
    st->src[k] = (const float *)&st->in[k];
}

/* dst[k] = p when a whole block, else the staging vector (NULL p: dropped). */
static inline void stage_dst(stage *st, int k, float *p, int n) {
    st->dst[k] = p && n == VW ? p : (float *)&st->out[k];
}

/* After tf2d: the partial blocks' n floats to p (NULL: dropped). */
static inline void stage_flush(const stage *st, int k, float *p, int n) {
    if (p && n < VW)
        memcpy(p, &st->out[k], sizeof(float) * n);
}

/* U[xi] (C, F) = G g G^T for every (c, f), g the kernel's 3x3 of (c, f). */
static inline __attribute__((always_inline)) void
kernel_transform_impl(float *restrict U, const float *restrict kernel, int C, int F,
                      const eng_winograd_tf *t) {
    const int a = t->alpha;
    const size_t plane = plane_of((size_t)C * F);
    stage st;
    for (int c = 0; c < C; c++)
        for (int f0 = 0; f0 < F; f0 += VW) {
            const int n = F - f0 < VW ? F - f0 : VW;
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++)
                    stage_src(&st, r * MA + s, kernel + ((size_t)(r * 3 + s) * C + c) * F + f0, n);
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    stage_dst(&st, i * MA + j, U + (size_t)(i * a + j) * plane + (size_t)c * F + f0,
                              n);
            tf2d_n(st.dst, st.src, &t->g[0][0], 3, 0, &t->g[0][0], 3, 0, a, a, 3, 3);
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    stage_flush(&st, i * MA + j,
                                U + (size_t)(i * a + j) * plane + (size_t)c * F + f0, n);
        }
}

static void kernel_transform(float *restrict U, const float *restrict kernel, int C, int F,
                             const eng_winograd_tf *t) {
    WITH_TABLE(t, kernel_transform_impl, U, kernel, C, F);
}

/* dkernel (+)= G^T dU G: the adjoint of kernel_transform. */
static inline __attribute__((always_inline)) void
kernel_transform_adjoint_impl(float *restrict dkernel, const float *restrict dU, int C, int F,
                              int accumulate, const eng_winograd_tf *t) {
    const int a = t->alpha;
    const size_t plane = plane_of((size_t)C * F);
    stage st;
    for (int c = 0; c < C; c++)
        for (int f0 = 0; f0 < F; f0 += VW) {
            const int n = F - f0 < VW ? F - f0 : VW;
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    stage_src(&st, i * MA + j,
                              dU + (size_t)(i * a + j) * plane + (size_t)c * F + f0, n);
            for (int k = 0; k < 9; k++) /* always staged: added to or copied */
                st.dst[(k / 3) * MA + k % 3] = (float *)&st.out[(k / 3) * MA + k % 3];
            tf2d_n(st.dst, st.src, &t->g[0][0], 3, 1, &t->g[0][0], 3, 1, 3, 3, a, a);
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) {
                    float *o = dkernel + ((size_t)(r * 3 + s) * C + c) * F + f0;
                    const float *d = (const float *)&st.out[r * MA + s];
                    if (accumulate)
                        for (int v = 0; v < n; v++)
                            o[v] += d[v];
                    else
                        memcpy(o, d, sizeof(float) * n);
                }
        }
}

static void kernel_transform_adjoint(float *restrict dkernel, const float *restrict dU, int C,
                                     int F, const eng_winograd_tf *t, int accumulate) {
    WITH_TABLE(t, kernel_transform_adjoint_impl, dkernel, dU, C, F, accumulate);
}

/* V[xi][t] (C) = B^T d B for every tile, d the alpha x alpha inputs (zeros past the edge). */
static inline __attribute__((always_inline)) void
input_transform_impl(float *restrict V, const float *restrict x, int B, int H, int W, int C, int tH,
                     int tW, const eng_winograd_tf *t) {
    const int a = t->alpha, m = t->m;
    const size_t T = (size_t)B * tH * tW, plane = plane_of(T * C);
    stage st;
    for (int n = 0; n < B; n++)
        for (int th = 0; th < tH; th++)
            for (int tw = 0; tw < tW; tw++) {
                const size_t tile = ((size_t)n * tH + th) * tW + tw;
                const int h0 = th * m, w0 = tw * m;
                for (int c0 = 0; c0 < C; c0 += VW) {
                    const int nc = C - c0 < VW ? C - c0 : VW;
                    for (int p = 0; p < a; p++)
                        for (int q = 0; q < a; q++)
                            stage_src(&st, p * MA + q,
                                      h0 + p < H && w0 + q < W
                                          ? x + (((size_t)n * H + h0 + p) * W + w0 + q) * C + c0
                                          : NULL,
                                      nc);
                    for (int i = 0; i < a; i++)
                        for (int j = 0; j < a; j++)
                            stage_dst(&st, i * MA + j,
                                      V + (size_t)(i * a + j) * plane + tile * C + c0, nc);
                    tf2d_n(st.dst, st.src, &t->bt[0][0], MA, 0, &t->bt[0][0], MA, 0, a, a, a, a);
                    for (int i = 0; i < a; i++)
                        for (int j = 0; j < a; j++)
                            stage_flush(&st, i * MA + j,
                                        V + (size_t)(i * a + j) * plane + tile * C + c0, nc);
                }
            }
}

static void input_transform(float *restrict V, const float *restrict x, int B, int H, int W, int C,
                            int tH, int tW, const eng_winograd_tf *t) {
    WITH_TABLE(t, input_transform_impl, V, x, B, H, W, C, tH, tW);
}

/* dx = sum over tiles of B dV B^T, placed where the tile read its inputs; those past the
 * edge drop. dx is zeroed first. The adjoint of input_transform. Only rows < HR and
 * columns < WR (OH + 2, OW + 2: the inputs that feed a computed output) are added to: the
 * others' sums are zero but for rounding, and stay exactly 0 as conv2d's do. */
static inline __attribute__((always_inline)) void
input_transform_adjoint_impl(float *restrict dx, const float *restrict dV, int B, int H, int W,
                             int C, int tH, int tW, int HR, int WR, const eng_winograd_tf *t) {
    const int a = t->alpha, m = t->m;
    const size_t T = (size_t)B * tH * tW, plane = plane_of(T * C);
    stage st;
    memset(dx, 0, sizeof(float) * (size_t)B * H * W * C);
    for (int n = 0; n < B; n++)
        for (int th = 0; th < tH; th++)
            for (int tw = 0; tw < tW; tw++) {
                const size_t tile = ((size_t)n * tH + th) * tW + tw;
                const int h0 = th * m, w0 = tw * m;
                for (int c0 = 0; c0 < C; c0 += VW) {
                    const int nc = C - c0 < VW ? C - c0 : VW;
                    for (int i = 0; i < a; i++)
                        for (int j = 0; j < a; j++)
                            stage_src(&st, i * MA + j,
                                      dV + (size_t)(i * a + j) * plane + tile * C + c0, nc);
                    for (int k = 0; k < MA * MA; k++) /* added, not written: always staged */
                        st.dst[k] = (float *)&st.out[k];
                    tf2d_n(st.dst, st.src, &t->bt[0][0], MA, 1, &t->bt[0][0], MA, 1, a, a, a, a);
                    for (int p = 0; p < a && h0 + p < HR; p++)
                        for (int q = 0; q < a && w0 + q < WR; q++) {
                            float *o = dx + (((size_t)n * H + h0 + p) * W + w0 + q) * C + c0;
                            const float *d = (const float *)&st.out[p * MA + q];
                            for (int v = 0; v < nc; v++)
                                o[v] += d[v];
                        }
                }
            }
}

static void input_transform_adjoint(float *restrict dx, const float *restrict dV, int B, int H,
                                    int W, int C, int tH, int tW, int HR, int WR,
                                    const eng_winograd_tf *t) {
    WITH_TABLE(t, input_transform_adjoint_impl, dx, dV, B, H, W, C, tH, tW, HR, WR);
}

/* y tile = A^T M A, the outputs inside OH x OW written. */
static inline __attribute__((always_inline)) void
output_transform_impl(float *restrict y, const float *restrict M, int B, int OH, int OW, int F,
                      int tH, int tW, const eng_winograd_tf *t) {
    const int a = t->alpha, m = t->m;
    const size_t T = (size_t)B * tH * tW, plane = plane_of(T * F);
    stage st;
    for (int n = 0; n < B; n++)
        for (int th = 0; th < tH; th++)
            for (int tw = 0; tw < tW; tw++) {
                const size_t tile = ((size_t)n * tH + th) * tW + tw;
                const int h0 = th * m, w0 = tw * m;
                for (int f0 = 0; f0 < F; f0 += VW) {
                    const int nf = F - f0 < VW ? F - f0 : VW;
                    float *out[MA * MA];
                    for (int i = 0; i < a; i++)
                        for (int j = 0; j < a; j++)
                            stage_src(&st, i * MA + j,
                                      M + (size_t)(i * a + j) * plane + tile * F + f0, nf);
                    for (int r = 0; r < m; r++)
                        for (int s = 0; s < m; s++) {
                            out[r * MA + s] =
                                h0 + r < OH && w0 + s < OW
                                    ? y + (((size_t)n * OH + h0 + r) * OW + w0 + s) * F + f0
                                    : NULL;
                            stage_dst(&st, r * MA + s, out[r * MA + s], nf);
                        }
                    tf2d_n(st.dst, st.src, &t->at[0][0], MA, 0, &t->at[0][0], MA, 0, m, m, a, a);
                    for (int r = 0; r < m; r++)
                        for (int s = 0; s < m; s++)
                            stage_flush(&st, r * MA + s, out[r * MA + s], nf);
                }
            }
}

static void output_transform(float *restrict y, const float *restrict M, int B, int OH, int OW,
                             int F, int tH, int tW, const eng_winograd_tf *t) {
    WITH_TABLE(t, output_transform_impl, y, M, B, OH, OW, F, tH, tW);
}

/* dM = A dY A^T per tile, dY the tile's output gradients (zeros for the cut outputs): the
 * adjoint of output_transform. */
static inline __attribute__((always_inline)) void
output_transform_adjoint_impl(float *restrict dM, const float *restrict dy, int B, int OH, int OW,
                              int F, int tH, int tW, const eng_winograd_tf *t) {
    const int a = t->alpha, m = t->m;
    const size_t T = (size_t)B * tH * tW, plane = plane_of(T * F);
    stage st;
    for (int n = 0; n < B; n++)
        for (int th = 0; th < tH; th++)
            for (int tw = 0; tw < tW; tw++) {
                const size_t tile = ((size_t)n * tH + th) * tW + tw;
                const int h0 = th * m, w0 = tw * m;
                for (int f0 = 0; f0 < F; f0 += VW) {
                    const int nf = F - f0 < VW ? F - f0 : VW;
                    for (int r = 0; r < m; r++)
                        for (int s = 0; s < m; s++)
                            stage_src(&st, r * MA + s,
                                      h0 + r < OH && w0 + s < OW
                                          ? dy + (((size_t)n * OH + h0 + r) * OW + w0 + s) * F + f0
                                          : NULL,
                                      nf);
                    for (int i = 0; i < a; i++)
                        for (int j = 0; j < a; j++)
                            stage_dst(&st, i * MA + j,
                                      dM + (size_t)(i * a + j) * plane + tile * F + f0, nf);
                    tf2d_n(st.dst, st.src, &t->at[0][0], MA, 1, &t->at[0][0], MA, 1, a, a, m, m);
                    for (int i = 0; i < a; i++)
                        for (int j = 0; j < a; j++)
                            stage_flush(&st, i * MA + j,
                                        dM + (size_t)(i * a + j) * plane + tile * F + f0, nf);
                }
            }
}

static void output_transform_adjoint(float *restrict dM, const float *restrict dy, int B, int OH,
                                     int OW, int F, int tH, int tW, const eng_winograd_tf *t) {
    WITH_TABLE(t, output_transform_adjoint_impl, dM, dy, B, OH, OW, F, tH, tW);
}

static void check_shape(const eng_winograd_tf *t, int B, int H, int W, int C, int F, int OH,
                        int OW) {
    PST_ASSERT(t && (t->m == 2 || t->m == 4 || t->m == 5) && t->alpha == t->m + 2, "tile size %d",
               t ? t->m : -1);
    PST_ASSERT(B >= 1 && C >= 1 && F >= 1 && OH >= 1 && OH <= H - 2 && OW >= 1 && OW <= W - 2,
               "B %d, C %d, F %d: output %dx%d from input %dx%d, kernel 3x3", B, C, F, OH, OW, H,
               W);
}

void eng_winograd_kernel_transform(float *U, const float *kernel, int C, int F,
                                   const eng_winograd_tf *t) {
    PST_ASSERT(t && C >= 1 && F >= 1, "C %d, F %d", C, F);
    kernel_transform(U, kernel, C, F, t);
    const size_t a2 = (size_t)t->alpha * t->alpha, pu = plane_of((size_t)C * F);
    float *Ut = U + a2 * pu;
    for (size_t xi = 0; xi < a2; xi++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < F; f++)
                Ut[xi * pu + (size_t)f * C + c] = U[xi * pu + (size_t)c * F + f];
}

void eng_winograd_forward(float *y, float *saved, float *scratch, const float *x, const float *U,
                          const float *bias, int B, int H, int W, int C, int F, int OH, int OW,
                          const eng_winograd_tf *t, eng_act act) {
    check_shape(t, B, H, W, C, F, OH, OW);
    const int tH = tiles(OH, t->m), tW = tiles(OW, t->m), a2 = t->alpha * t->alpha;
    const int T = B * tH * tW;
    const size_t pu = plane_of((size_t)C * F), pv = plane_of((size_t)T * C),
                 pm = plane_of((size_t)T * F);
    float *M = scratch;
    input_transform(saved, x, B, H, W, C, tH, tW, t);
    for (int xi = 0; xi < a2; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, F, C, 1.0f, saved + xi * pv, C,
                    U + xi * pu, F, 0.0f, M + xi * pm, F);
    output_transform(y, M, B, OH, OW, F, tH, tW, t);
    eng_bias_act_forward(y, bias, (size_t)B * OH * OW, F, act);
}

void eng_winograd_backward(float *dx, float *dkernel, float *dbias, float *dy, float *saved,
                           float *scratch, const float *y, const float *U, int B, int H, int W,
                           int C, int F, int OH, int OW, const eng_winograd_tf *t, eng_act act,
                           int accumulate) {
    check_shape(t, B, H, W, C, F, OH, OW);
    const int tH = tiles(OH, t->m), tW = tiles(OW, t->m), a2 = t->alpha * t->alpha;
    const int T = B * tH * tW;
    const size_t M_rows = (size_t)B * OH * OW;
    const size_t pu = plane_of((size_t)C * F), pv = plane_of((size_t)T * C),
                 pm = plane_of((size_t)T * F);
    float *dU = scratch, *dM = scratch + (size_t)a2 * pu;
    eng_act_backward(dy, y, M_rows * F, act);
    eng_bias_backward(dbias, dy, M_rows, F, accumulate);
    output_transform_adjoint(dM, dy, B, OH, OW, F, tH, tW, t);
    /* dU[xi] (C, F) = V[xi]^T (C, T) . dM[xi] (T, F) */
    for (int xi = 0; xi < a2; xi++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, F, T, 1.0f, saved + xi * pv, C,
                    dM + xi * pm, F, 0.0f, dU + xi * pu, F);
    kernel_transform_adjoint(dkernel, dU, C, F, t, accumulate);
    if (!dx)
        return;
    /* dV[xi] (T, C) = dM[xi] (T, F) . U[xi]^T (F, C), into saved: V is no longer needed. */
    const float *Ut = U + (size_t)a2 * pu;
    for (int xi = 0; xi < a2; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, C, F, 1.0f, dM + xi * pm, F,
                    Ut + xi * pu, C, 0.0f, saved + xi * pv, C);
    input_transform_adjoint(dx, saved, B, H, W, C, tH, tW, OH + 2, OW + 2, t);
}
