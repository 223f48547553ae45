/* lstm.c: LSTM forward and backward through time.
 *
 * Inside the layer everything is time-major: row (t, n) of a (T, B, .) array is sample n at
 * step t, so a step's rows are contiguous for its sgemm, and the rows of all steps form one
 * matrix for the sgemm over the whole sequence. The chunk's saved memory holds
 *
 *   xh (T + 1, B, in + u)  row (t, n) = [x_t, h_{t-1}] of sample n; h_T-1 in row (T, n)
 *   g  (T, B, 4u)          z_t, then the gates' outputs i, f, g, o; backward: dz_t
 *   c  (T + 1, B, u)       c_{t-1} in row t (c_{-1} = 0)
 *   tc (T, B, u)           tanh(c_t)
 *   dxh (B, in + u)        backward's [dx_t, dh_{t-1}]
 *   dc (B, u)              backward's carry dc_t
 *
 * Because xh pairs each step's input with the h it is combined with, a step's z is one
 * sgemm, [x_t, h_{t-1}] w, and the gradients of both kernels are one sgemm over all steps,
 * xh^T dz, into the (in + u, 4u) matrix the two tensors form in the flat vector; backward's
 * per-step sgemm dz_t w^T gives dx_t and dh_{t-1} together. Measured on Zen 4 at
 * imdb_lstm's sizes, the step's product over [x_t, h_{t-1}] beats an sgemm of x W over all
 * steps followed by h U per step by 5-12% of the forward (z_t goes from the product to the
 * gates while in cache instead of a (T, B, 4u) pass through memory first), and the wider
 * per-step product in backward beats a separate dx = dz kernel^T over all steps by ~7% of
 * the backward.
 *
 * Per-step sgemms are cut into blocks of rows small enough for OpenBLAS to multiply them
 * without packing (see block_rows). */
#include "engine/lstm.h"

#include "engine/base/base.h"
#include "engine/layer.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* --- the nonlinearities: branch-free, so that the gate loops vectorise --- */

/* e^x for x in [-87, 88] (clamped outside), ~1 ulp: Cephes's expf. x = n ln 2 + r with
 * |r| <= ln 2 / 2 (n rounded with the 1.5 * 2^23 trick, which vectorises where floorf
 * does not), a degree-7 polynomial for e^r and n added to the exponent bits. */
static inline float exp_fast(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f; /* ln 2 in two parts: the first exact in float */
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

static inline float sigmoid_fast(float x) { return 1.0f / (1.0f + exp_fast(-x)); }

/* Cephes's tanhf: an odd polynomial below 0.625, where 1 - 2 / (e^2|x| + 1) would cancel,
 * that form above. Both are computed and one is chosen, for the vectoriser. */
static inline float tanh_fast(float x) {
    const float a = x < 0.0f ? -x : x, z = x * x;
    float s = -5.70498872745e-3f;
    s = s * z + 2.06390887954e-2f;
    s = s * z - 5.37397155531e-2f;
    s = s * z + 1.33314422036e-1f;
    s = s * z - 3.33332819422e-1f;
    s = s * z * x + x;
    float l = 1.0f - 2.0f / (exp_fast(2.0f * a) + 1.0f);
    l = x < 0.0f ? -l : l;
    return a < 0.625f ? s : l;
}

void eng_sigmoid_vec(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = sigmoid_fast(x[i]);
}

void eng_tanh_vec(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = tanh_fast(x[i]);
}

/* --- the saved memory --- */

typedef struct lstm_mem {
    float *xh, *g, *c, *tc, *dxh, *dc;
} lstm_mem;

/* n floats rounded up to a cache line. */
static size_t lines(size_t n) { return (n + 15) & ~(size_t)15; }

static size_t carve(lstm_mem *m, float *base, int B, int T, int in, int u) {
    const size_t b = (size_t)B, t = (size_t)T;
    const size_t sizes[6] = {(t + 1) * b * (size_t)(in + u), t * b * 4 * (size_t)u,
                             (t + 1) * b * (size_t)u,        t * b * (size_t)u,
                             b * (size_t)(in + u),           b * (size_t)u};
    float **parts[6] = {&m->xh, &m->g, &m->c, &m->tc, &m->dxh, &m->dc};
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        if (base)
            *parts[i] = base + off;
        off += lines(sizes[i]);
    }
    return off;
}

size_t eng_lstm_saved_floats(int B, int T, int in, int u) {
    lstm_mem m;
    return carve(&m, NULL, B, T, in, u);
}

/* Rows per call of a per-step sgemm over B rows, (rows, n) = (rows, k) . (k, n), or
 * . (n, k)^T when transposed. OpenBLAS 0.3.21's small-matrix kernels (SkylakeX and Cooper Lake,
 * which Zen 4 gets) skip packing when M*N*K <= 10^6 and, for A.B^T, M*N <= 1200 as well; they then
 * run at ~100 GFLOP/s on Zen 4 where the packing path reaches 40-70 at these sizes (a (16, 128) by
 * (128, 512) product: 70; 8 rows twice: 105). */
static int block_rows(int B, int n, int k, int transposed) {
    int most = (int)(1000000 / ((long)n * k));
    if (transposed && most > 1200 / n)
        most = 1200 / n;
    if (most < 1)
        most = 1;
    const int blocks = (B + most - 1) / most; /* as few as may be, of even sizes */
    return (B + blocks - 1) / blocks;
}

/* --- forward --- */

/* One sample's step: the pre-activations zi, zf, zg, zo (u each, bias not yet added)
 * become the gates; c, tanh(c) and h follow from cp = c_{t-1}. */
static void gates_forward(float *restrict zi, float *restrict zf, float *restrict zg,
                          float *restrict zo, float *restrict c, float *restrict tc,
                          float *restrict h, const float *restrict cp, const float *restrict bias,
                          int u) {
    const float *restrict bi = bias, *restrict bf = bias + u, *restrict bg = bias + 2 * u,
                          *restrict bo = bias + 3 * u;
    for (int j = 0; j < u; j++) {
        const float i = sigmoid_fast(zi[j] + bi[j]), f = sigmoid_fast(zf[j] + bf[j]);
        const float g = tanh_fast(zg[j] + bg[j]), o = sigmoid_fast(zo[j] + bo[j]);
        const float cj = f * cp[j] + i * g, t = tanh_fast(cj);
        zi[j] = i, zf[j] = f, zg[j] = g, zo[j] = o;
        c[j] = cj;
        tc[j] = t;
        h[j] = o * t;
    }
}

void eng_lstm_forward(float *y, float *saved, const float *x, const float *w, const float *bias,
                      int B, int T, int in, int u) {
    lstm_mem m;
    carve(&m, saved, B, T, in, u);
    const int ld = in + u, G = 4 * u;
    /* xh rows (t, n) = [x_t of sample n, h_{t-1}]; h_{-1} = c_{-1} = 0. */
    for (int n = 0; n < B; n++) {
        for (int t = 0; t < T; t++)
            memcpy(m.xh + ((size_t)t * B + n) * ld, x + ((size_t)n * T + t) * in,
                   sizeof(float) * (size_t)in);
        memset(m.xh + (size_t)n * ld + in, 0, sizeof(float) * (size_t)u);
    }
    memset(m.c, 0, sizeof(float) * (size_t)B * u);
    const int step = block_rows(B, G, ld, 0);
    for (int t = 0; t < T; t++) {
        /* z_t (B, 4u) = [x_t, h_{t-1}] (B, in + u) . w (in + u, 4u); h_{-1} = 0 */
        float *z = m.g + (size_t)t * B * G;
        const float *xh = m.xh + (size_t)t * B * ld;
        for (int n0 = 0; n0 < B; n0 += step) {
            const int rows = B - n0 < step ? B - n0 : step;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, G, t ? ld : in, 1.0f,
                        xh + (size_t)n0 * ld, ld, w, G, 0.0f, z + (size_t)n0 * G, G);
        }
        for (int n = 0; n < B; n++) {
            float *zn = z + (size_t)n * G;
            const size_t r = (size_t)t * B + n;
            gates_forward(zn, zn + u, zn + 2 * u, zn + 3 * u, m.c + (r + B) * u, m.tc + r * u,
                          m.xh + (r + B) * ld + in, m.c + r * u, bias, u);
        }
    }
    for (int n = 0; n < B; n++)
        memcpy(y + (size_t)n * u, m.xh + ((size_t)T * B + n) * ld + in, sizeof(float) * (size_t)u);
}

/* --- backward --- */

/* One sample's step backward: the gates i, f, g, o (u each) become dz; dc carries dc_t in
 * and dc_{t-1} out; dh is dh_t; db (4u) gets dz added. */
static void gates_backward(float *restrict zi, float *restrict zf, float *restrict zg,
                           float *restrict zo, float *restrict dc, float *restrict db,
                           const float *restrict dh, const float *restrict tc,
                           const float *restrict cp, int u) {
    float *restrict dbi = db, *restrict dbf = db + u, *restrict dbg = db + 2 * u,
                    *restrict dbo = db + 3 * u;
    for (int j = 0; j < u; j++) {
        const float i = zi[j], f = zf[j], g = zg[j], o = zo[j], t = tc[j];
        const float dcj = dc[j] + dh[j] * o * (1.0f - t * t);
        const float di = dcj * g * i * (1.0f - i), df = dcj * cp[j] * f * (1.0f - f);
        const float dg = dcj * i * (1.0f - g * g), dob = dh[j] * t * o * (1.0f - o);
        zi[j] = di, zf[j] = df, zg[j] = dg, zo[j] = dob;
        dbi[j] += di, dbf[j] += df, dbg[j] += dg, dbo[j] += dob;
        dc[j] = dcj * f;
    }
}

void eng_lstm_backward(float *dx, float *dw, float *dbias, const float *dy, float *saved,
                       const float *w, int B, int T, int in, int u, int accumulate) {
    lstm_mem m;
    carve(&m, saved, B, T, in, u);
    const int ld = in + u, G = 4 * u;
    if (!accumulate)
        memset(dbias, 0, sizeof(float) * (size_t)G);
    /* dxh rows (n) = [dx_t, dh_{t-1}] of sample n: one sgemm per step gives both. */
    for (int n = 0; n < B; n++)
        memcpy(m.dxh + (size_t)n * ld + in, dy + (size_t)n * u, sizeof(float) * (size_t)u);
    memset(m.dc, 0, sizeof(float) * (size_t)B * u);
    for (int t = T - 1; t >= 0; t--) {
        float *z = m.g + (size_t)t * B * G;
        for (int n = 0; n < B; n++) {
            float *zn = z + (size_t)n * G;
            const size_t r = (size_t)t * B + n;
            gates_backward(zn, zn + u, zn + 2 * u, zn + 3 * u, m.dc + (size_t)n * u, dbias,
                           m.dxh + (size_t)n * ld + in, m.tc + r * u, m.c + r * u, u);
        }
        /* [dx_t, dh_{t-1}] (B, in + u) = dz_t (B, 4u) . w^T (4u, in + u); at t = 0 only dx's
         * columns (h_{-1} is a constant), and nothing without dx. Without dx the product still
         * covers dx's columns: a narrower one, dz_t . recurrent_kernel^T, may order its sums
         * otherwise (OpenBLAS 0.3.21's Haswell, Zen and SSE kernels do), and dh, and with it
         * dw, would then differ in the last bits from the gradients with dx. */
        const int cols = t == 0 ? in : ld;
        const int step = block_rows(B, cols, G, 1);
        if (t > 0 || dx)
            for (int n0 = 0; n0 < B; n0 += step) {
                const int rows = B - n0 < step ? B - n0 : step;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, G, 1.0f,
                            z + (size_t)n0 * G, G, w, G, 0.0f, m.dxh + (size_t)n0 * ld, ld);
            }
        if (dx)
            for (int n = 0; n < B; n++)
                memcpy(dx + ((size_t)n * T + t) * in, m.dxh + (size_t)n * ld,
                       sizeof(float) * (size_t)in);
    }
    /* [dkernel; drecurrent] (in + u, 4u) (+)= xh^T (in + u, T*B) . dz (T*B, 4u) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ld, G, T * B, 1.0f, m.xh, ld, m.g, G,
                accumulate ? 1.0f : 0.0f, dw, G);
}

/* --- the layer table entry --- */

static int lstm_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    const int u = l->spec.units;
    if (l->in.h != 1)
        return pst_err(err, errlen, PST_EARG,
                       "%s: expects a sequence of shape (1, T, features), got (%d, %d, %d)",
                       l->name, l->in.h, l->in.w, l->in.c);
    if (u < 1)
        return pst_err(err, errlen, PST_EARG, "%s: units must be >= 1, got %d", l->name, u);
    l->out = (eng_shape){1, 1, u};
    l->saved_bytes = sizeof(float) * eng_lstm_saved_floats(1, l->in.w, l->in.c, u);
    /* TF 2 Keras names the weights through the layer's cell. */
    char name[2 * ENG_NAME_MAX];
    snprintf(name, sizeof name, "%s/lstm_cell/kernel", l->name);
    const int k = eng_layout_add(lay, name, 2, (int[]){l->in.c, 4 * u});
    snprintf(name, sizeof name, "%s/lstm_cell/recurrent_kernel", l->name);
    const int r = eng_layout_add(lay, name, 2, (int[]){u, 4 * u});
    snprintf(name, sizeof name, "%s/lstm_cell/bias", l->name);
    const int b = eng_layout_add(lay, name, 1, (int[]){4 * u});
    l->kernel = lay->tensors[k].offset;
    l->recurrent = lay->tensors[r].offset;
    l->bias = lay->tensors[b].offset;
    PST_ASSERT(l->recurrent == l->kernel + (size_t)l->in.c * 4 * u,
               "%s: recurrent kernel at %zu, not after the kernel at %zu", l->name, l->recurrent,
               l->kernel);
    l->init[1] = ENG_INIT_ORTHOGONAL;
    l->init[2] = ENG_INIT_UNIT_FORGET_BIAS;
    return PST_OK;
}

static void lstm_fwd(const eng_layer *l, const eng_fwd_args *a) {
    eng_lstm_forward(a->y, a->saved, a->x, a->params + l->kernel, a->params + l->bias, a->batch,
                     l->in.w, l->in.c, l->spec.units);
}

static void lstm_bwd(const eng_layer *l, const eng_bwd_args *a) {
    eng_lstm_backward(a->dx, a->grads + l->kernel, a->grads + l->bias, a->dy, a->saved,
                      a->params + l->kernel, a->batch, l->in.w, l->in.c, l->spec.units,
                      a->accumulate);
}

const eng_layer_ops eng_lstm_ops = {
    .keras_class = "LSTM",
    .keras_prefix = "lstm",
    .build = lstm_build,
    .forward = lstm_fwd,
    .backward = lstm_bwd,
};
