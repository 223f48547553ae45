/* conv2d_direct.c: Conv2D by direct loops (see conv2d_direct.h). The taps t = (ki, kj, c),
 * in the kernel's own order, are taken TB <= 9 at a time; a block of 32 filters (two
 * vectors) of those taps' kernel rows, or of their gradient, stays in registers while the
 * output pixels stream past. The tap count of a chunk is a compile-time constant in each
 * instantiation (the switches below), so that the compiler unrolls the taps and keeps the
 * arrays in registers. GNU C vectors (vector_size) are the one extension used.
 *
 * Summation orders, fixed: y over the taps in kernel order (across chunks through y
 * itself, exact in float); dkernel over the output pixels in (n, oh, ow) order; dx over
 * the taps that read the input, then the filters in vectors, then the lanes in order. */
#include "engine/conv2d_direct.h"

#include "engine/activation.h"
#include "engine/base/base.h"

#include <string.h>

/* Built with -ffp-contract=fast (engine/CMakeLists.txt): ISO C mode (-std=c11) turns GCC's
 * contraction of a * b + c into one FMA off, and here it halves the instructions of every
 * inner loop. Each build still rounds the same way every run. */

#define VW 16   /* filters per vector: one AVX-512 register (two AVX2, four NEON ones) */
#define NVMAX 2 /* vectors per filter block: 32 filters */
#define TB ENG_CONV2D_DIRECT_MAX_TAPS /* taps per chunk */
#define PX 4                          /* output pixels per forward block */

/* vec_u is the same at any alignment and may alias floats: the tensors' loads and stores.
 * Loads and stores go through macros: a function taking or returning a 64-byte vector
 * draws GCC's ABI warning (-Wpsabi) in a build without AVX-512. */
typedef float vec __attribute__((vector_size(VW * sizeof(float))));
typedef float vec_u __attribute__((vector_size(VW * sizeof(float)), aligned(4), may_alias));
typedef int ivec __attribute__((vector_size(VW * sizeof(int))));
#define LD(p) ((vec)(*(const vec_u *)(p)))
#define ST(p, v) (*(vec_u *)(p) = (v))
/* v > 0 ? v : 0 lane by lane, as eng_bias_act_forward's ReLU (NaN and -0 give +0) */
#define RELU(v) ((vec)((ivec)(v) & (ivec)((v) > (vec){0})))

#define ALWAYS static inline __attribute__((always_inline))

/* The geometry every loop shares. xoff[t]: tap t0 + t's input offset from the input pixel
 * under the kernel's top-left tap, (ki*W + kj)*C + c. */
typedef struct geom {
    int B, H, W, C, F, OH, OW;
    int xoff[TB];
} geom;

static void chunk_offsets(geom *g, int KW, int t0, int nt) {
    const int kwc = KW * g->C;
    for (int t = 0; t < nt; t++) {
        const int ki = (t0 + t) / kwc, j = (t0 + t) % kwc;
        g->xoff[t] = ki * g->W * g->C + j;
    }
}

/* --- forward --- */

/* P output pixels of one row (yp, xp at the first), NV vectors of filters: acc starts at 0
 * (first chunk) or at y's partial sums, adds the chunk's nt taps, and on the last chunk
 * takes the bias and ReLU (epi) or is stored as is. kr: the chunk's kernel rows. */
ALWAYS void fwd_px(float *restrict yp, const float *restrict xp, const vec (*kr)[NVMAX],
                   const vec *bv, const geom *g, int nt, int NV, int P, int first, int epi,
                   int relu) {
    vec acc[PX][NVMAX];
    for (int p = 0; p < P; p++)
        for (int v = 0; v < NV; v++)
            acc[p][v] = first ? (vec){0} : LD(yp + (size_t)p * g->F + v * VW);
    for (int t = 0; t < nt; t++)
        for (int p = 0; p < P; p++) {
            const float s = xp[g->xoff[t] + p * g->C];
            for (int v = 0; v < NV; v++)
                acc[p][v] += s * kr[t][v];
        }
    for (int p = 0; p < P; p++)
        for (int v = 0; v < NV; v++) {
            vec a = acc[p][v];
            if (epi) {
                a += bv[v];
                if (relu)
                    a = RELU(a);
            }
            ST(yp + (size_t)p * g->F + v * VW, a);
        }
}

/* Every output pixel, filters f0 .. f0 + NV*VW, taps t0 .. t0 + nt: the chunk's kernel rows
 * loaded once into registers. The epilogue adds the bias only when there is one (adding 0
 * would turn a -0 into +0, unlike eng_bias_act_forward). */
ALWAYS void fwd_chunk_n(float *y, const float *x, const float *kernel, const float *bias,
                        const geom *g, int f0, int t0, int nt, int NV, int first, int epi,
                        int relu) {
    vec kr[TB][NVMAX], bv[NVMAX];
    for (int t = 0; t < nt; t++)
        for (int v = 0; v < NV; v++)
            kr[t][v] = LD(kernel + (size_t)(t0 + t) * g->F + f0 + v * VW);
    for (int v = 0; v < NV; v++)
        bv[v] = bias ? LD(bias + f0 + v * VW) : (vec){0};
    const int eb = epi && bias, er = epi && relu;
    for (int n = 0; n < g->B; n++)
        for (int oh = 0; oh < g->OH; oh++) {
            const float *xr = x + ((size_t)n * g->H + oh) * g->W * g->C;
            float *yr = y + ((size_t)n * g->OH + oh) * g->OW * g->F + f0;
            int ow = 0;
            for (; ow + PX <= g->OW; ow += PX)
                fwd_px(yr + (size_t)ow * g->F, xr + (size_t)ow * g->C, kr, bv, g, nt, NV, PX, first,
                       eb, er);
            for (; ow < g->OW; ow++)
                fwd_px(yr + (size_t)ow * g->F, xr + (size_t)ow * g->C, kr, bv, g, nt, NV, 1, first,
                       eb, er);
        }
}

/* The instantiations: nt a constant 1..TB, NV 1 or 2. */
#define FWD_CASE(N)                                                                                \
    case N:                                                                                        \
        if (NV == 2)                                                                               \
            fwd_chunk_n(y, x, kernel, bias, g, f0, t0, N, 2, first, epi, relu);                    \
        else                                                                                       \
            fwd_chunk_n(y, x, kernel, bias, g, f0, t0, N, 1, first, epi, relu);                    \
        break;

static void fwd_chunk(float *y, const float *x, const float *kernel, const float *bias,
                      const geom *g, int f0, int t0, int nt, int NV, int first, int epi, int relu) {
    switch (nt) {
        FWD_CASE(1)
        FWD_CASE(2)
        FWD_CASE(3)
        FWD_CASE(4)
        FWD_CASE(5)
        FWD_CASE(6)
        FWD_CASE(7)
        FWD_CASE(8)
        FWD_CASE(9)
    default:
        PST_ASSERT(0, "tap chunk of %d", nt);
    }
}

/* Filters f0 .. F-1 (fewer than VW), one at a time, all taps: the same order of sums. */
static void fwd_tail(float *y, const float *x, const float *kernel, const float *bias,
                     const geom *g, int KH, int KW, int f0, int epi, int relu) {
    const int kwc = KW * g->C;
    for (int n = 0; n < g->B; n++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                const float *xp = x + (((size_t)n * g->H + oh) * g->W + ow) * g->C;
                float *yp = y + (((size_t)n * g->OH + oh) * g->OW + ow) * g->F;
                for (int f = f0; f < g->F; f++) {
                    float s = 0.0f;
                    for (int ki = 0; ki < KH; ki++)
                        for (int j = 0; j < kwc; j++)
                            s += xp[(size_t)ki * g->W * g->C + j] *
                                 kernel[((size_t)ki * kwc + j) * g->F + f];
                    if (epi && bias)
                        s += bias[f];
                    if (epi && relu)
                        s = s > 0.0f ? s : 0.0f;
                    yp[f] = s;
                }
            }
}

int eng_conv2d_direct_suits(int KH, int KW, int C, int F) {
    /* The kernel rows of a 32-filter block take 2 of the 32 AVX-512 registers per tap: 9
     * taps hold 18, and 4 pixels' accumulators 8 more (forward); the kernel gradient's 18
     * accumulators, 2 for dy and the broadcasts (backward). More taps run in chunks of 9,
     * correct but re-reading y or dy once per chunk and not yet measured against im2col
     * (whose packing matters less as K grows): left to im2col. F does not matter: filters
     * go 32 at a time (a tail under 16 runs scalar). */
    (void)F;
    return KH >= 1 && KW >= 1 && C >= 1 && KH * KW * C <= ENG_CONV2D_DIRECT_MAX_TAPS;
}

void eng_conv2d_direct_forward(float *y, const float *x, const float *kernel, const float *bias,
                               int B, int H, int W, int C, int KH, int KW, int F, int OH, int OW,
                               eng_act act) {
    PST_ASSERT(B >= 1 && C >= 1 && F >= 1 && KH >= 1 && KW >= 1 && OH >= 1 && OH <= H - KH + 1 &&
                   OW >= 1 && OW <= W - KW + 1,
               "B %d, C %d, F %d: output %dx%d from input %dx%d, kernel %dx%d", B, C, F, OH, OW, H,
               W, KH, KW);
    geom g = {.B = B, .H = H, .W = W, .C = C, .F = F, .OH = OH, .OW = OW};
    const int T = KH * KW * C;
    /* bias and ReLU in the last chunk's registers; other activations after, as conv2d.c */
    const int fused = act == ENG_ACT_NONE || act == ENG_ACT_RELU;
    const int relu = act == ENG_ACT_RELU;
    const float *fb = fused ? bias : NULL;
    int f0 = 0;
    for (; f0 + VW <= F; f0 += NVMAX * VW) {
        const int NV = f0 + NVMAX * VW <= F ? NVMAX : 1;
        for (int t0 = 0; t0 < T; t0 += TB) {
            const int nt = T - t0 < TB ? T - t0 : TB;
            chunk_offsets(&g, KW, t0, nt);
            fwd_chunk(y, x, kernel, fb, &g, f0, t0, nt, NV, t0 == 0, fused && t0 + nt == T, relu);
        }
        if (NV == 1) {
            f0 += VW;
            break;
        }
    }
    if (f0 < F)
        fwd_tail(y, x, kernel, fb, &g, KH, KW, f0, fused, relu);
    if (!fused)
        eng_bias_act_forward(y, bias, (size_t)B * OH * OW, F, act);
}

/* --- backward --- */

/* dkernel rows t0 .. t0 + nt, filters f0 .. f0 + NV*VW: the sums over every output pixel in
 * registers, then written or added. fuse (the first chunk, when the backward fuses the
 * epilogue's gradient): dy is first masked by the ReLU (relu; stored back) and summed into
 * db (not NULL), from its old value when accumulate: eng_act_backward and eng_bias_backward
 * in the same pass, with their results and order of sums. */
ALWAYS void dk_chunk_n(float *dk, float *db, float *dy, const float *x, const float *y,
                       const geom *g, int f0, int t0, int nt, int NV, int accumulate, int fuse,
                       int relu) {
    vec acc[TB][NVMAX], dbs[NVMAX];
    for (int t = 0; t < nt; t++)
        for (int v = 0; v < NV; v++)
            acc[t][v] = (vec){0};
    for (int v = 0; v < NV; v++)
        dbs[v] = fuse && db && accumulate ? LD(db + f0 + v * VW) : (vec){0};
    for (int n = 0; n < g->B; n++)
        for (int oh = 0; oh < g->OH; oh++) {
            const size_t row = ((size_t)n * g->OH + oh) * g->OW * g->F + f0;
            const float *xr = x + ((size_t)n * g->H + oh) * g->W * g->C;
            for (int ow = 0; ow < g->OW; ow++) {
                const float *xp = xr + (size_t)ow * g->C;
                float *dp = dy + row + (size_t)ow * g->F;
                vec d[NVMAX];
                for (int v = 0; v < NV; v++) {
                    d[v] = LD(dp + v * VW);
                    if (fuse && relu) {
                        const vec yv = LD(y + row + (size_t)ow * g->F + v * VW);
                        d[v] = (vec)((ivec)d[v] & (ivec)(yv > (vec){0}));
                        ST(dp + v * VW, d[v]);
                    }
                    if (fuse && db)
                        dbs[v] += d[v];
                }
                for (int t = 0; t < nt; t++) {
                    const float s = xp[g->xoff[t]];
                    for (int v = 0; v < NV; v++)
                        acc[t][v] += s * d[v];
                }
            }
        }
    for (int t = 0; t < nt; t++)
        for (int v = 0; v < NV; v++) {
            float *p = dk + (size_t)(t0 + t) * g->F + f0 + v * VW;
            ST(p, accumulate ? LD(p) + acc[t][v] : acc[t][v]);
        }
    if (fuse && db)
        for (int v = 0; v < NV; v++)
            ST(db + f0 + v * VW, dbs[v]);
}

#define DK_CASE(N)                                                                                 \
    case N:                                                                                        \
        if (NV == 2 && fuse)                                                                       \
            dk_chunk_n(dk, db, dy, x, y, g, f0, t0, N, 2, accumulate, 1, relu);                    \
        else if (NV == 2)                                                                          \
            dk_chunk_n(dk, db, dy, x, y, g, f0, t0, N, 2, accumulate, 0, 0);                       \
        else if (fuse)                                                                             \
            dk_chunk_n(dk, db, dy, x, y, g, f0, t0, N, 1, accumulate, 1, relu);                    \
        else                                                                                       \
            dk_chunk_n(dk, db, dy, x, y, g, f0, t0, N, 1, accumulate, 0, 0);                       \
        break;

static void dk_chunk(float *dk, float *db, float *dy, const float *x, const float *y, const geom *g,
                     int f0, int t0, int nt, int NV, int accumulate, int fuse, int relu) {
    switch (nt) {
        DK_CASE(1)
        DK_CASE(2)
        DK_CASE(3)
        DK_CASE(4)
        DK_CASE(5)
        DK_CASE(6)
        DK_CASE(7)
        DK_CASE(8)
        DK_CASE(9)
    default:
        PST_ASSERT(0, "tap chunk of %d", nt);
    }
}

/* dkernel's filters f0 .. F-1 (fewer than VW), one at a time: the same order of sums. */
static void dk_tail(float *dk, const float *x, const float *dy, const geom *g, int KH, int KW,
                    int f0, int accumulate) {
    const int kwc = KW * g->C;
    for (int ki = 0; ki < KH; ki++)
        for (int j = 0; j < kwc; j++)
            for (int f = f0; f < g->F; f++) {
                float s = 0.0f;
                for (int n = 0; n < g->B; n++)
                    for (int oh = 0; oh < g->OH; oh++)
                        for (int ow = 0; ow < g->OW; ow++)
                            s += x[(((size_t)n * g->H + oh + ki) * g->W + ow) * g->C + j] *
                                 dy[(((size_t)n * g->OH + oh) * g->OW + ow) * g->F + f];
                float *p = dk + ((size_t)ki * kwc + j) * g->F + f;
                *p = accumulate ? *p + s : s;
            }
}

/* dx[n, ih, iw, c] = sum over the taps (ki, kj) whose output (ih-ki, iw-kj) was computed of
 * dy[that output] . kernel[ki, kj, c]: gathered, so each element is written once, zeros
 * where no output reads it. The filters' products go into one vector, summed across its
 * lanes in order at the end (a tree of halves measured no faster), then the tail filters'
 * sum added. */
static void dx_gather(float *dx, const float *dy, const float *kernel, const geom *g, int KH,
                      int KW) {
    const int F = g->F, C = g->C;
    for (int n = 0; n < g->B; n++)
        for (int ih = 0; ih < g->H; ih++)
            for (int iw = 0; iw < g->W; iw++) {
                float *d = dx + (((size_t)n * g->H + ih) * g->W + iw) * C;
                const int ki0 = ih - g->OH + 1 > 0 ? ih - g->OH + 1 : 0;
                const int ki1 = ih < KH - 1 ? ih : KH - 1;
                const int kj0 = iw - g->OW + 1 > 0 ? iw - g->OW + 1 : 0;
                const int kj1 = iw < KW - 1 ? iw : KW - 1;
                for (int c = 0; c < C; c++) {
                    vec acc = {0};
                    float tail = 0.0f;
                    for (int ki = ki0; ki <= ki1; ki++)
                        for (int kj = kj0; kj <= kj1; kj++) {
                            const float *dp =
                                dy + (((size_t)n * g->OH + ih - ki) * g->OW + iw - kj) * F;
                            const float *kp = kernel + (((size_t)ki * KW + kj) * C + c) * F;
                            int f = 0;
                            for (; f + VW <= F; f += VW)
                                acc += LD(dp + f) * LD(kp + f);
                            for (; f < F; f++)
                                tail += dp[f] * kp[f];
                        }
                    float s = 0.0f;
                    for (int i = 0; i < VW; i++)
                        s += acc[i];
                    d[c] = s + tail;
                }
            }
}

void eng_conv2d_direct_backward(float *dx, float *dkernel, float *dbias, float *dy, const float *y,
                                const float *x, const float *kernel, int B, int H, int W, int C,
                                int KH, int KW, int F, int OH, int OW, eng_act act,
                                int accumulate) {
    PST_ASSERT(B >= 1 && C >= 1 && F >= 1 && KH >= 1 && KW >= 1 && OH >= 1 && OH <= H - KH + 1 &&
                   OW >= 1 && OW <= W - KW + 1,
               "B %d, C %d, F %d: output %dx%d from input %dx%d, kernel %dx%d", B, C, F, OH, OW, H,
               W, KH, KW);
    const size_t M = (size_t)B * OH * OW;
    /* The activation's and the bias's gradients in the first pass over dy, when every
     * filter is in a vector block; else first, as conv2d.c. */
    const int fused = (act == ENG_ACT_NONE || act == ENG_ACT_RELU) && F % VW == 0;
    if (!fused) {
        eng_act_backward(dy, y, M * F, act);
        eng_bias_backward(dbias, dy, M, F, accumulate);
    }
    geom g = {.B = B, .H = H, .W = W, .C = C, .F = F, .OH = OH, .OW = OW};
    const int T = KH * KW * C;
    int f0 = 0;
    for (; f0 + VW <= F; f0 += NVMAX * VW) {
        const int NV = f0 + NVMAX * VW <= F ? NVMAX : 1;
        for (int t0 = 0; t0 < T; t0 += TB) {
            const int nt = T - t0 < TB ? T - t0 : TB;
            chunk_offsets(&g, KW, t0, nt);
            dk_chunk(dkernel, dbias, dy, x, y, &g, f0, t0, nt, NV, accumulate, fused && t0 == 0,
                     act == ENG_ACT_RELU);
        }
        if (NV == 1) {
            f0 += VW;
            break;
        }
    }
    if (f0 < F)
        dk_tail(dkernel, x, dy, &g, KH, KW, f0, accumulate);
    if (dx)
        dx_gather(dx, dy, kernel, &g, KH, KW);
}
