/* codec.c: fp32/bf16/fp16 values, dense and top-k, with error feedback (codec.h).
 *
 * Speed: these run over every push and pull (~0.2M to ~2.6M floats a step), so the dense
 * loops are branchless integer code that the compiler vectorises, fp16 uses F16C where the
 * CPU has it (chosen at run time; the portable path gives the same bits), and top-k never
 * sorts acc: a threshold from a sample, one pass that collects the entries above it, and an
 * exact selection among those few only when there are too many. */
#include "proto/codec.h"

#include "engine/base/base.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PB_HAVE_X86 1
#include <cpuid.h>
#else
#define PB_HAVE_X86 0
#endif

#define CHUNK 256 /* floats decoded at a time into a stack buffer */

/* --- Bytes: little-endian at any alignment. --- */

static inline uint32_t f2u(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static inline float u2f(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LE16(v) __builtin_bswap16(v)
#define LE32(v) __builtin_bswap32(v)
#else
#define LE16(v) (v)
#define LE32(v) (v)
#endif

static inline void put16(unsigned char *p, uint16_t v) {
    v = LE16(v);
    memcpy(p, &v, 2);
}

static inline uint16_t get16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return LE16(v);
}

static inline void put32(unsigned char *p, uint32_t v) {
    v = LE32(v);
    memcpy(p, &v, 4);
}

static inline uint32_t get32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return LE32(v);
}

/* --- The wire types. --- */

static const char *const wire_names[PB_WIRE_END] = {"fp32", "bf16", "fp16"};

static void check_wire(pb_wire w) {
    PST_ASSERT((unsigned)w < PB_WIRE_END, "bad wire type %d", (int)w);
}

size_t pb_wire_size(pb_wire w) {
    check_wire(w);
    return w == PB_WIRE_FP32 ? 4 : 2;
}

const char *pb_wire_name(pb_wire w) {
    check_wire(w);
    return wire_names[w];
}

int pb_wire_parse(const char *s, pb_wire *w) {
    for (int i = 0; i < PB_WIRE_END; i++)
        if (s && strcmp(s, wire_names[i]) == 0) {
            *w = (pb_wire)i;
            return PST_OK;
        }
    return PST_EARG;
}

/* --- bf16: the upper half of a float. --- */

/* Round to nearest even by adding just under half an ulp plus the kept part's low bit; a NaN
 * keeps its upper bits with the quiet bit set (rounding could carry it into inf). The
 * largest floats round up to inf, as they should. */
static inline uint16_t bf16_from_bits(uint32_t u) {
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

static void bf16_encode(const float *restrict x, size_t n, unsigned char *restrict out) {
    for (size_t i = 0; i < n; i++)
        put16(out + 2 * i, bf16_from_bits(f2u(x[i])));
}

static void bf16_decode(const unsigned char *restrict in, size_t n, float *restrict y) {
    for (size_t i = 0; i < n; i++)
        y[i] = u2f((uint32_t)get16(in + 2 * i) << 16);
}

static void bf16_decode_add(const unsigned char *restrict in, size_t n, float *restrict y) {
    for (size_t i = 0; i < n; i++)
        y[i] += u2f((uint32_t)get16(in + 2 * i) << 16);
}

/* --- fp16: portable, bit for bit what F16C's vcvtps2ph (round to nearest even) and
 * vcvtph2ps give. --- */

uint16_t pb_fp16_from_float(float x) {
    const uint32_t u = f2u(x);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: its top 10 mantissa bits, quiet */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x47800000u) /* >= 65536 (and inf): inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* >= 2^-14: normal, or rounds up to inf from [65520, 65536) */
        const uint32_t r = a - 0x38000000u + 0xfffu + ((a >> 13) & 1u); /* rebias 127 -> 15 */
        return (uint16_t)(sign | (r >> 13));
    }
    if (a <= 0x33000000u) /* <= 2^-25, half the smallest subnormal: ties to 0 */
        return sign;
    /* Subnormal: a's 24-bit significand m times 2^(e - 150) in units of 2^-24 is m >> (126 -
     * e), rounded to nearest even; 2^-14 itself comes out as 0x400, the smallest normal. */
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, s = 126 - e;
    const uint32_t q = m >> s, rem = m & ((1u << s) - 1), half = 1u << (s - 1);
    return (uint16_t)(sign | (q + (rem > half || (rem == half && (q & 1u)))));
}

float pb_fp16_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) /* inf, or NaN made quiet */
        return u2f(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact */
        const float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

static void fp16_encode_portable(const float *restrict x, size_t n, unsigned char *restrict out) {
    for (size_t i = 0; i < n; i++)
        put16(out + 2 * i, pb_fp16_from_float(x[i]));
}

static void fp16_decode_portable(const unsigned char *restrict in, size_t n, float *restrict y,
                                 int add) {
    for (size_t i = 0; i < n; i++) {
        const float v = pb_fp16_to_float(get16(in + 2 * i));
        y[i] = add ? y[i] + v : v;
    }
}

#if PB_HAVE_X86
/* F16C, 8 values at a time; the tail through an 8-value buffer. x86 is little-endian, so the
 * halves' bytes are the wire's. */
__attribute__((target("f16c,avx"))) static void fp16_encode_f16c(const float *x, size_t n,
                                                                 unsigned char *out) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * i), h);
    }
    if (i < n) {
        float buf[8] = {0};
        uint16_t h[8];
        memcpy(buf, x + i, (n - i) * sizeof(float));
        _mm_storeu_si128((__m128i *)(void *)h,
                         _mm256_cvtps_ph(_mm256_loadu_ps(buf), _MM_FROUND_TO_NEAREST_INT));
        memcpy(out + 2 * i, h, (n - i) * 2);
    }
}

__attribute__((target("f16c,avx"))) static void fp16_decode_f16c(const unsigned char *in, size_t n,
                                                                 float *y, int add) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(in + 2 * i)));
        if (add)
            v = _mm256_add_ps(v, _mm256_loadu_ps(y + i));
        _mm256_storeu_ps(y + i, v);
    }
    if (i < n) {
        uint16_t h[8] = {0};
        float v[8];
        memcpy(h, in + 2 * i, (n - i) * 2);
        _mm256_storeu_ps(v, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h)));
        for (size_t j = 0; j < n - i; j++)
            y[i + j] = add ? y[i + j] + v[j] : v[j];
    }
}
#endif

/* CPUID leaf 1's ECX says F16C (bit 29) and AVX (28), and OSXSAVE (27) that XGETBV tells
 * whether the OS saves the YMM registers (XCR0 bits 1 and 2). By hand, not through
 * __builtin_cpu_supports: clang 14 (Debian 12's, the fuzz build's) knows no "f16c" there. */
static int detect_f16c(void) {
#if PB_HAVE_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const unsigned need = (1u << 29) | (1u << 28) | (1u << 27);
    if ((c & need) != need)
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 6u) == 6u;
#else
    return 0;
#endif
}

int pb_fp16_f16c(void) {
    /* CPUID traps to the hypervisor on a VM (tens of microseconds): ask once. -1: not yet. */
    static _Atomic int known = -1;
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k < 0) {
        k = detect_f16c();
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k;
}

static void fp16_encode(const float *x, size_t n, unsigned char *out) {
#if PB_HAVE_X86
    if (pb_fp16_f16c()) {
        fp16_encode_f16c(x, n, out);
        return;
    }
#endif
    fp16_encode_portable(x, n, out);
}

static void fp16_decode(const unsigned char *in, size_t n, float *y, int add) {
#if PB_HAVE_X86
    if (pb_fp16_f16c()) {
        fp16_decode_f16c(in, n, y, add);
        return;
    }
#endif
    fp16_decode_portable(in, n, y, add);
}

/* --- Dense. The payload never overlaps the floats (restrict: the compiler need not check
 * for overlap before it vectorises). Release builds (-O3) vectorise every loop here; GCC 12's
 * -O2 leaves the bf16 encode and the residuals scalar, still over 1 G floats/s. --- */

static void fp32_encode(const float *restrict x, size_t n, unsigned char *restrict out) {
    for (size_t i = 0; i < n; i++)
        put32(out + 4 * i, f2u(x[i]));
}

static void fp32_decode(const unsigned char *restrict in, size_t n, float *restrict y, int add) {
    if (add)
        for (size_t i = 0; i < n; i++)
            y[i] += u2f(get32(in + 4 * i));
    else
        for (size_t i = 0; i < n; i++)
            y[i] = u2f(get32(in + 4 * i));
}

void pb_wire_encode(pb_wire w, const float *x, size_t n, void *out) {
    check_wire(w);
    unsigned char *o = out;
    switch (w) {
    case PB_WIRE_FP32:
        fp32_encode(x, n, o);
        break;
    case PB_WIRE_BF16:
        bf16_encode(x, n, o);
        break;
    default:
        fp16_encode(x, n, o);
        break;
    }
}

/* n values of w at in into y: y[i] = value i, or y[i] += value i (add). */
static void decode(pb_wire w, const void *in, size_t n, float *y, int add) {
    check_wire(w);
    const unsigned char *p = in;
    switch (w) {
    case PB_WIRE_FP32:
        fp32_decode(p, n, y, add);
        break;
    case PB_WIRE_BF16:
        if (add)
            bf16_decode_add(p, n, y);
        else
            bf16_decode(p, n, y);
        break;
    default:
        fp16_decode(p, n, y, add);
        break;
    }
}

void pb_wire_decode(pb_wire w, const void *in, size_t n, float *y) { decode(w, in, n, y, 0); }

void pb_wire_decode_add(pb_wire w, const void *in, size_t n, float *y) { decode(w, in, n, y, 1); }

/* acc[i] -= d[i], or 0 where d[i] is not finite (what was sent is lost there, and a NaN or
 * inf residual would poison every later message). Exact where d[i] is finite: d[i] is acc[i]
 * rounded to fewer bits, so the difference is representable (Sterbenz, or a multiple of
 * acc[i]'s ulp smaller than acc[i]). */
static void residual(float *restrict acc, const float *restrict d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float r = acc[i] - d[i];
        acc[i] = (f2u(d[i]) & 0x7f800000u) != 0x7f800000u ? r : 0.0f;
    }
}

void pb_wire_encode_ef(pb_wire w, float *acc, size_t n, void *out) {
    check_wire(w);
    unsigned char *restrict o = out;
    if (w == PB_WIRE_FP32) {
        pb_wire_encode(w, acc, n, o);
        memset(acc, 0, n * sizeof(float));
        return;
    }
    if (w == PB_WIRE_BF16) { /* fused: one pass */
        float *restrict a = acc;
        for (size_t i = 0; i < n; i++) {
            const uint16_t h = bf16_from_bits(f2u(a[i]));
            const float d = u2f((uint32_t)h << 16);
            const float r = a[i] - d;
            put16(o + 2 * i, h);
            a[i] = (h & 0x7f80u) != 0x7f80u ? r : 0.0f;
        }
        return;
    }
    float d[CHUNK];
    for (size_t i = 0; i < n; i += CHUNK) {
        const size_t m = n - i < CHUNK ? n - i : CHUNK;
        fp16_encode(acc + i, m, o + 2 * i);
        fp16_decode(o + 2 * i, m, d, 0);
        residual(acc + i, d, m);
    }
}

/* --- Top-k. --- */

#define SAMPLE_MIN 4096 /* entries: fewer gives a noisy quantile */
#define SAMPLE_HITS 32  /* sampled entries above the quantile, where n / 8 allows */
#define BLOCK 16        /* entries tested at once for any above the threshold */

/* |x| as an integer that orders like it (non-negative floats order as their bits), with
 * every NaN mapped to the one key above inf, so that NaNs count as the largest and tie. */
static inline uint32_t mag_key(float x) {
    const uint32_t a = f2u(x) & 0x7fffffffu;
    return a < 0x7f800001u ? a : 0x7f800001u;
}

/* ceil(frac * n), at least 1 and at most n (n > 0), without libm. */
static size_t ceil_frac(double frac, size_t n) {
    const double p = frac * (double)n;
    if (p >= (double)n)
        return n;
    size_t k = (size_t)p;
    k += (double)k < p;
    return k < 1 ? 1 : k;
}

static size_t topk_k(size_t n, double frac) {
    PST_ASSERT(frac > 0.0 && frac <= 1.0, "top-k fraction %g outside (0, 1]", frac);
    PST_ASSERT(n <= (size_t)UINT32_MAX + 1, "top-k over %zu floats: indices are 32-bit", n);
    return n == 0 ? 0 : ceil_frac(frac, n);
}

size_t pb_topk_cap(size_t n, double frac) {
    const size_t k = topk_k(n, frac), cap = k + (k + 3) / 4;
    return cap < n ? cap : n;
}

size_t pb_topk_bytes(pb_wire w, size_t nnz) { return nnz * (4 + pb_wire_size(w)); }

static inline void swap_u32(uint32_t *a, uint32_t *b) {
    const uint32_t t = *a;
    *a = *b;
    *b = t;
}

/* The value of rank r (0-based, ascending) of v (n > r), reordering v: quickselect with a
 * median of three and Hoare's partition, which splits runs of equal keys evenly. */
static uint32_t select_rank(uint32_t *v, size_t n, size_t r) {
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1;
    const ptrdiff_t want = (ptrdiff_t)r;
    while (lo < hi) {
        const ptrdiff_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap_u32(&v[mid], &v[lo]);
        if (v[hi] < v[lo])
            swap_u32(&v[hi], &v[lo]);
        if (v[hi] < v[mid])
            swap_u32(&v[hi], &v[mid]);
        const uint32_t pivot = v[mid];
        ptrdiff_t i = lo - 1, j = hi + 1;
        for (;;) {
            do
                i++;
            while (v[i] < pivot);
            do
                j--;
            while (v[j] > pivot);
            if (i >= j)
                break;
            swap_u32(&v[i], &v[j]);
        }
        /* v[lo..j] <= pivot <= v[j+1..hi], lo <= j < hi (v[lo] <= pivot <= v[hi]) */
        if (want <= j)
            hi = j;
        else
            lo = j + 1;
    }
    return v[want];
}

/* Collects, in ascending order, the indices of the entries of acc whose key is >= t, the
 * first `room` of them into idx; returns how many there are in all. Blocks of BLOCK keys are
 * first tested together (vectorised), since nearly all hold none. */
static size_t collect(const float *acc, size_t n, uint32_t t, uint32_t *idx, size_t room) {
    size_t c = 0, b = 0;
    for (; b + BLOCK <= n; b += BLOCK) {
        uint32_t any = 0;
        for (size_t j = 0; j < BLOCK; j++)
            any |= mag_key(acc[b + j]) >= t;
        if (!any)
            continue;
        for (size_t j = 0; j < BLOCK; j++)
            if (mag_key(acc[b + j]) >= t) {
                if (c < room)
                    idx[c] = (uint32_t)(b + j);
                c++;
            }
    }
    for (; b < n; b++)
        if (mag_key(acc[b]) >= t) {
            if (c < room)
                idx[c] = (uint32_t)b;
            c++;
        }
    return c;
}

/* Keeps exactly k of the c candidates idx (ascending): those of largest key, ties to the
 * lowest index, in ascending order. */
static void cut_to_k(const float *acc, uint32_t *idx, size_t c, size_t k) {
    uint32_t *keys = pst_malloc(c * sizeof *keys);
    for (size_t j = 0; j < c; j++)
        keys[j] = mag_key(acc[idx[j]]);
    const uint32_t t = select_rank(keys, c, c - k); /* the k-th largest */
    size_t above = 0;
    for (size_t j = 0; j < c; j++)
        above += mag_key(acc[idx[j]]) > t;
    size_t ties = k - above, m = 0;
    for (size_t j = 0; j < c; j++) {
        const uint32_t key = mag_key(acc[idx[j]]);
        if (key > t || (key == t && ties > 0)) {
            ties -= key == t;
            idx[m++] = idx[j];
        }
    }
    PST_ASSERT(m == k, "top-k cut kept %zu of %zu, wanted %zu", m, c, k);
    free(keys);
}

size_t pb_topk_encode(pb_wire w, double frac, float *acc, size_t n, void *out) {
    check_wire(w);
    const size_t k = topk_k(n, frac), cap = pb_topk_cap(n, frac);
    if (n == 0)
        return 0;

    /* The threshold: the k-th largest key of all of acc when n is small or everything is
     * wanted, else the same quantile of a strided sample. */
    /* 1% of acc, at least SAMPLE_MIN, and enough for SAMPLE_HITS of the sample to be above
     * the quantile (a small frac), unless that is over n / 8: the count's relative error is
     * about 1 / sqrt(hits). */
    size_t want = n / 100 > SAMPLE_MIN ? n / 100 : SAMPLE_MIN;
    const double for_hits = SAMPLE_HITS / frac;
    if (for_hits > (double)want)
        want = for_hits < (double)(n / 8) ? (size_t)for_hits : n / 8 > want ? n / 8 : want;
    const size_t stride = want >= n / 2 ? 1 : n / want;
    const size_t s = n / stride;
    const size_t ks = ceil_frac(frac, s);
    uint32_t *sample = NULL, t = 1;
    if (k < n) {
        sample = pst_malloc(s * sizeof *sample);
        for (size_t j = 0; j < s; j++)
            sample[j] = mag_key(acc[j * stride]);
        t = select_rank(sample, s, s - ks);
    }
    if (t < 1) /* never zeros */
        t = 1;

    size_t room = 2 * cap + 64;
    uint32_t *idx = pst_malloc(room * sizeof *idx);
    size_t c = collect(acc, n, t, idx, room);
    if (c < k / 2 && t > 1 && stride > 1) {
        /* The sample put the threshold too high: lower it to the sample's quantile for
         * (k / c) times as many, at most 8 times. */
        const size_t more = c == 0 || k / c > 8 ? 8 : (k + c - 1) / c;
        const size_t ks2 = ks * more < s ? ks * more : s;
        uint32_t t2 = select_rank(sample, s, s - ks2);
        t2 = t2 < 1 ? 1 : t2;
        if (t2 < t) {
            t = t2;
            c = collect(acc, n, t, idx, room);
        }
    }
    if (c > cap) {
        if (c > room) { /* too many to have kept (ties, or a poor sample): again, all */
            free(idx);
            room = c;
            idx = pst_malloc(room * sizeof *idx);
            collect(acc, n, t, idx, room);
        }
        cut_to_k(acc, idx, c, k);
        c = k;
    }
    free(sample);

    /* Indices, then values; the residual of each chosen entry. */
    unsigned char *o = out;
    for (size_t j = 0; j < c; j++)
        put32(o + 4 * j, idx[j]);
    unsigned char *vals = o + 4 * c;
    const size_t vs = pb_wire_size(w);
    float x[CHUNK], d[CHUNK];
    for (size_t j = 0; j < c; j += CHUNK) {
        const size_t m = c - j < CHUNK ? c - j : CHUNK;
        for (size_t q = 0; q < m; q++)
            x[q] = acc[idx[j + q]];
        pb_wire_encode(w, x, m, vals + vs * j);
        pb_wire_decode(w, vals + vs * j, m, d);
        residual(x, d, m);
        for (size_t q = 0; q < m; q++)
            acc[idx[j + q]] = x[q];
    }
    free(idx);
    return c;
}

int pb_topk_decode(pb_wire w, const void *in, size_t nnz, size_t n, float *y, int add, char *why,
                   size_t whylen) {
    check_wire(w);
    if (nnz > n)
        return pst_err(why, whylen, PST_EMALFORMED, "top-k: %zu entries for a slice of %zu", nnz,
                       n);
    const unsigned char *p = in;
    for (size_t j = 0; j < nnz; j++) {
        const uint32_t i = get32(p + 4 * j);
        if (i >= n)
            return pst_err(why, whylen, PST_EMALFORMED,
                           "top-k index %zu of %zu: %u: expected < %zu (the slice's length)", j,
                           nnz, (unsigned)i, n);
        if (j > 0) {
            const uint32_t prev = get32(p + 4 * (j - 1));
            if (i <= prev)
                return pst_err(why, whylen, PST_EMALFORMED,
                               "top-k index %zu of %zu: %u after %u: expected ascending%s", j, nnz,
                               (unsigned)i, (unsigned)prev, i == prev ? " (a duplicate)" : "");
        }
    }
    if (!add)
        memset(y, 0, n * sizeof(float));
    const unsigned char *vals = p + 4 * nnz;
    const size_t vs = pb_wire_size(w);
    float v[CHUNK];
    for (size_t j = 0; j < nnz; j += CHUNK) {
        const size_t m = nnz - j < CHUNK ? nnz - j : CHUNK;
        pb_wire_decode(w, vals + vs * j, m, v);
        for (size_t q = 0; q < m; q++) {
            float *dst = y + get32(p + 4 * (j + q));
            *dst = add ? *dst + v[q] : v[q];
        }
    }
    return PST_OK;
}
