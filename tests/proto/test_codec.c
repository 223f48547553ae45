/* test_codec.c: the payload codec (proto/codec.c). Dense bf16 and fp16 against values worked
 * out by hand (each comment says how); F16C against the portable fp16 path, bit for bit, on
 * all 2^16 halves and on floats chosen to hit every rounding case; round trips at odd
 * alignments and lengths; error feedback's invariant (what was sent plus the residual is the
 * input, exactly); top-k against a sorted reference, its count, ties, zeros, NaNs and
 * determinism, many steps of a constant gradient arriving in full, and the decoder's
 * refusals naming the index at fault. */
#include "proto/codec.h"

#include "engine/base/base.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const pb_wire all_wires[] = {PB_WIRE_FP32, PB_WIRE_BF16, PB_WIRE_FP16};

static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* splitmix64: a deterministic stream for inputs. */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1) times 2^e, e uniform in [-8, 8]: magnitudes over several octaves. */
static float next_float(uint64_t *s) {
    const uint64_t r = next_u64(s);
    const float u = (float)((double)(r >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
    return ldexpf(u, (int)((r >> 8) % 17) - 8);
}

static float *random_floats(size_t n, uint64_t seed) {
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = next_float(&seed);
    return x;
}

/* One value through the dense codec: its wire bits and what decodes from them. */
static uint32_t enc1(pb_wire w, float x) {
    unsigned char b[4] = {0};
    pb_wire_encode(w, &x, 1, b);
    return w == PB_WIRE_FP32
               ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24
               : (uint32_t)b[0] | (uint32_t)b[1] << 8;
}

static float dec1(pb_wire w, uint32_t h) {
    const unsigned char b[4] = {(unsigned char)h, (unsigned char)(h >> 8), (unsigned char)(h >> 16),
                                (unsigned char)(h >> 24)};
    float y;
    pb_wire_decode(w, b, 1, &y);
    return y;
}

static void expect_enc(pb_wire w, float x, uint32_t want, const char *why) {
    const uint32_t got = enc1(w, x);
    if (got != want)
        fail_msg("%s of %.9g (0x%08x): got 0x%04x, expected 0x%04x (%s)", pb_wire_name(w),
                 (double)x, bits(x), got, want, why);
}

static void expect_dec(pb_wire w, uint32_t h, float want) {
    const float got = dec1(w, h);
    if (bits(got) != bits(want))
        fail_msg("%s 0x%04x decoded to %.9g (0x%08x), expected %.9g (0x%08x)", pb_wire_name(w), h,
                 (double)got, bits(got), (double)want, bits(want));
}

static void names_sizes_parse(void **state) {
    (void)state;
    const char *names[] = {"fp32", "bf16", "fp16"};
    const size_t sizes[] = {4, 2, 2};
    for (int i = 0; i < 3; i++) {
        pb_wire w = PB_WIRE_END;
        assert_string_equal(pb_wire_name(all_wires[i]), names[i]);
        assert_int_equal(pb_wire_size(all_wires[i]), sizes[i]);
        assert_int_equal(pb_wire_parse(names[i], &w), PST_OK);
        assert_int_equal(w, all_wires[i]);
    }
    pb_wire w = PB_WIRE_BF16;
    assert_int_equal(pb_wire_parse("FP16", &w), PST_EARG);
    assert_int_equal(pb_wire_parse("", &w), PST_EARG);
    assert_int_equal(pb_wire_parse("fp8", &w), PST_EARG);
    assert_int_equal(w, PB_WIRE_BF16); /* untouched on refusal */
    assert_int_equal(pb_topk_bytes(PB_WIRE_BF16, 3), 18);
    assert_int_equal(pb_topk_bytes(PB_WIRE_FP32, 3), 24);
    /* k = ceil(frac n), cap = k + ceil(k / 4), at most n */
    assert_int_equal(pb_topk_cap(1000, 0.1), 125);
    assert_int_equal(pb_topk_cap(1000000, 0.001), 1250);
    assert_int_equal(pb_topk_cap(10, 1.0), 10);
    assert_int_equal(pb_topk_cap(10, 0.95), 10);
    assert_int_equal(pb_topk_cap(7, 1e-9), 2); /* k = 1 */
    assert_int_equal(pb_topk_cap(0, 0.5), 0);
}

/* bf16 keeps a float's upper 16 bits, rounded to nearest even. */
static void bf16_by_hand(void **state) {
    (void)state;
    const pb_wire w = PB_WIRE_BF16;
    expect_enc(w, 1.0f, 0x3f80, "exact");
    /* 1 + 2^-8 = 0x3f808000: exactly half way between 0x3f80 and 0x3f81: to the even 0x3f80 */
    expect_enc(w, 1.00390625f, 0x3f80, "tie to even, down");
    /* 1 + 3 * 2^-8 = 0x3f818000: half way between 0x3f81 and 0x3f82: to the even 0x3f82,
     * 1 + 2^-6 = 1.015625 */
    expect_enc(w, 1.01171875f, 0x3f82, "tie to even, up");
    expect_dec(w, 0x3f82, 1.015625f);
    expect_enc(w, -1.01171875f, 0xbf82, "the sign rides along");
    /* 0x3f808001: just above the tie: up */
    expect_enc(w, from_bits(0x3f808001), 0x3f81, "above half");
    expect_enc(w, from_bits(0x3f807fff), 0x3f80, "below half");
    /* FLT_MAX 0x7f7fffff is above half way between bf16's largest 0x7f7f and 0x7f80: inf */
    expect_enc(w, from_bits(0x7f7fffff), 0x7f80, "overflow to inf");
    expect_enc(w, from_bits(0x7f7f8000), 0x7f80, "tie at the top goes to even: inf");
    expect_enc(w, from_bits(0x7f7f7fff), 0x7f7f, "just below the tie: the largest bf16");
    expect_enc(w, -INFINITY, 0xff80, "inf");
    expect_enc(w, -0.0f, 0x8000, "negative zero");
    /* float subnormals: 0x00008000 ties to 0; 0x00008001 rounds up to bf16's smallest, 2^-133 */
    expect_enc(w, from_bits(0x00008000), 0x0000, "subnormal tie to 0");
    expect_enc(w, from_bits(0x00008001), 0x0001, "subnormal up");
    expect_dec(w, 0x0001, 0x1p-133f);
    /* NaNs keep sign and top bits with the quiet bit (0x0040) set. 0xff800001 truncated
     * would be -inf: it must stay a NaN. */
    expect_enc(w, from_bits(0x7fa00001), 0x7fe0, "signalling NaN made quiet");
    expect_enc(w, from_bits(0xff800001), 0xffc0, "NaN whose top bits read -inf");
    expect_enc(w, from_bits(0x7fffffff), 0x7fff, "NaN: no carry into the sign");
    expect_dec(w, 0xc0a0, -5.0f);
}

/* fp16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals are m * 2^-24. */
static void fp16_by_hand(void **state) {
    (void)state;
    const pb_wire w = PB_WIRE_FP16;
    expect_enc(w, 1.0f, 0x3c00, "exact");
    expect_enc(w, -2.5f, 0xc100, "exact: -1.25 * 2^1");
    /* 1 + 2^-11: half way between 1 and 1 + 2^-10: to the even 1.0 */
    expect_enc(w, 1.00048828125f, 0x3c00, "tie to even, down");
    /* 1 + 3 * 2^-11: half way between 1 + 2^-10 (odd) and 1 + 2^-9: to 0x3c02 = 1.001953125 */
    expect_enc(w, 1.00146484375f, 0x3c02, "tie to even, up");
    expect_dec(w, 0x3c02, 1.001953125f);
    expect_enc(w, 65504.0f, 0x7bff, "the largest half");
    /* 65520 is half way between 65504 and 65536 (which would be 0x7c00): even is 0x7c00, inf */
    expect_enc(w, 65520.0f, 0x7c00, "overflow tie to inf");
    expect_enc(w, nextafterf(65520.0f, 0.0f), 0x7bff, "just below: the largest half");
    expect_enc(w, -1e6f, 0xfc00, "overflow to -inf");
    expect_enc(w, INFINITY, 0x7c00, "inf");
    /* 1e-7 / 2^-24 = 1.6777216: rounds to 2, the subnormal 0x0002 = 2^-23 = 1.1920929e-07 */
    expect_enc(w, 1e-7f, 0x0002, "subnormal");
    expect_dec(w, 0x0002, 1.1920929e-07f);
    assert_true(1.1920929e-07f == 0x1p-23f);
    /* 2^-25 is half the smallest subnormal: ties to 0; just above it rounds to 0x0001 */
    expect_enc(w, 0x1p-25f, 0x0000, "tie to 0");
    expect_enc(w, -0x1p-25f, 0x8000, "tie to -0");
    expect_enc(w, nextafterf(0x1p-25f, 1.0f), 0x0001, "above half the smallest subnormal");
    /* 3 * 2^-25 = 1.5 subnormal units: tie between 1 and 2: to 2 */
    expect_enc(w, 3.0f * 0x1p-25f, 0x0002, "subnormal tie to even");
    /* 2^-14 - 2^-25 = 1023.5 units: tie between 0x3ff and 0x400 (the smallest normal): 0x400 */
    expect_enc(w, 0x1p-14f - 0x1p-25f, 0x0400, "subnormal rounding up into the normals");
    expect_enc(w, 1023.0f * 0x1p-24f, 0x03ff, "the largest subnormal");
    expect_enc(w, from_bits(0x00000001), 0x0000, "a float subnormal");
    /* NaN: sign, quiet bit 0x0200 and the mantissa's top 10 bits */
    expect_enc(w, from_bits(0x7f800001), 0x7e00, "signalling NaN, payload below 10 bits");
    expect_enc(w, from_bits(0xffc00000), 0xfe00, "quiet NaN");
    expect_enc(w, from_bits(0x7fbfe000), 0x7fff, "NaN payload's top bits kept");
    expect_dec(w, 0x0001, 0x1p-24f); /* 5.9604645e-08 */
    expect_dec(w, 0x03ff, 1023.0f * 0x1p-24f);
    expect_dec(w, 0x0400, 0x1p-14f);
    expect_dec(w, 0x3555, 0.333251953125f); /* (1 + 0x155 / 1024) / 4 */
    expect_dec(w, 0x7bff, 65504.0f);
    expect_dec(w, 0xfc00, -INFINITY);
    expect_dec(w, 0x8000, -0.0f);
    assert_true(isnan(dec1(w, 0x7c01)));
    assert_true(isnan(dec1(w, 0xfe00)) && signbit(dec1(w, 0xfe00)));
}

/* The portable path and F16C: the same bits for every half (decode) and for floats that hit
 * every case of the rounding (encode). */
static void f16c_matches_portable(void **state) {
    (void)state;
    if (!pb_fp16_f16c()) {
        print_message("no F16C on this CPU: pb_wire_* use the portable path itself\n");
        skip();
    }
    enum { H = 65536 };
    unsigned char *in = malloc(2 * H);
    float *y = malloc(H * sizeof *y);
    assert_non_null(in);
    assert_non_null(y);
    for (uint32_t h = 0; h < H; h++) {
        in[2 * h] = (unsigned char)h;
        in[2 * h + 1] = (unsigned char)(h >> 8);
    }
    pb_wire_decode(PB_WIRE_FP16, in, H, y);
    for (uint32_t h = 0; h < H; h++) {
        const float p = pb_fp16_to_float((uint16_t)h);
        if (bits(y[h]) != bits(p))
            fail_msg("fp16 0x%04x: F16C 0x%08x, portable 0x%08x", h, bits(y[h]), bits(p));
        /* and back: every half but a signalling NaN (made quiet) comes back as it was */
        const uint16_t back = pb_fp16_from_float(p);
        const int snan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) && !(h & 0x200);
        if (back != (snan ? (h | 0x200) : h))
            fail_msg("fp16 0x%04x -> %.9g -> 0x%04x", h, (double)p, back);
    }
    free(in);
    free(y);

    /* Floats: every exponent (all 2^9 sign-exponent patterns) with mantissas that are ties,
     * just above and below ties, and random; the subnormal band in small steps; random bits. */
    enum { N = 1 << 21 };
    float *x = malloc(N * sizeof *x);
    unsigned char *out = malloc(2 * N);
    assert_non_null(x);
    assert_non_null(out);
    uint64_t seed = 7;
    size_t n = 0;
    for (uint32_t se = 0; se < 512; se++) {
        const uint32_t mants[] = {0,        1,        0xfff,    0x1000,   0x1001,   0x2fff,
                                  0x3000,   0x3001,   0x7fe000, 0x7ff000, 0x7fffff, 0x400000,
                                  0x401000, 0x7fefff, 0x7ff001, 0x3ff000};
        for (size_t j = 0; j < sizeof mants / sizeof mants[0]; j++)
            x[n++] = from_bits(se << 23 | mants[j]);
        for (int j = 0; j < 64; j++)
            x[n++] = from_bits(se << 23 | ((uint32_t)next_u64(&seed) & 0x7fffff));
        /* subnormal-band ties: for shift s, mantissa bits that land exactly half way */
        for (uint32_t s = 14; s <= 24; s++)
            for (uint32_t q = 0; q < 4; q++) {
                const uint32_t m = (q << s) | (1u << (s - 1));
                x[n++] = from_bits(se << 23 | ((m & 0x7fffff)));
            }
    }
    for (uint32_t u = 0x33000000u - 64; u < 0x38800000u + 64 && n < N / 2; u += 97)
        x[n++] = from_bits(u);
    while (n < N)
        x[n++] = from_bits((uint32_t)next_u64(&seed));
    pb_wire_encode(PB_WIRE_FP16, x, N, out);
    for (size_t i = 0; i < N; i++) {
        const uint16_t f16c = (uint16_t)(out[2 * i] | out[2 * i + 1] << 8);
        const uint16_t port = pb_fp16_from_float(x[i]);
        if (f16c != port)
            fail_msg("float %.9g (0x%08x): F16C 0x%04x, portable 0x%04x", (double)x[i], bits(x[i]),
                     f16c, port);
    }
    free(x);
    free(out);
}

/* Dense round trips at every alignment and at lengths that leave tails: decode(encode(x)) is
 * x rounded (within half a unit in the last place kept), and decode_add adds it. */
static void dense_round_trips(void **state) {
    (void)state;
    const size_t lens[] = {0, 1, 7, 8, 9, 31, 1000, 4099};
    float *x = random_floats(4099, 11);
    float *y = malloc(4099 * sizeof *y), *z = malloc(4099 * sizeof *z);
    unsigned char *buf = malloc(4 * 4099 + 8);
    assert_non_null(y);
    assert_non_null(z);
    assert_non_null(buf);
    for (size_t wi = 0; wi < 3; wi++) {
        const pb_wire w = all_wires[wi];
        /* half an ulp: 2^-8 |x| for bf16 (7 mantissa bits), 2^-11 |x| for fp16 (10), and
         * 2^-25 (half its smallest subnormal) for fp16's tiny values */
        const double tol = w == PB_WIRE_FP32 ? 0 : w == PB_WIRE_BF16 ? 0x1p-8 : 0x1p-11;
        const double atol = w == PB_WIRE_FP16 ? 0x1p-25 : 0;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t off = 0; off < 4; off++) {
                const size_t n = lens[li];
                unsigned char *p = buf + off;
                memset(buf, 0xa5, 4 * 4099 + 8);
                pb_wire_encode(w, x, n, p);
                for (size_t b = off + n * pb_wire_size(w); b < 4 * 4099 + 8; b++)
                    if (buf[b] != 0xa5)
                        fail_msg("%s encode of %zu wrote byte %zu", pb_wire_name(w), n, b);
                for (size_t i = 0; i < n; i++)
                    z[i] = (float)i;
                pb_wire_decode(w, p, n, y);
                pb_wire_decode_add(w, p, n, z);
                for (size_t i = 0; i < n; i++) {
                    if (fabs((double)y[i] - (double)x[i]) > tol * fabs((double)x[i]) + atol)
                        fail_msg("%s, n %zu, offset %zu: x[%zu] = %.9g came back %.9g",
                                 pb_wire_name(w), n, off, i, (double)x[i], (double)y[i]);
                    if (bits(z[i]) != bits((float)i + y[i]))
                        fail_msg("%s decode_add: %zu + %.9g gave %.9g", pb_wire_name(w), i,
                                 (double)y[i], (double)z[i]);
                    if (bits(y[i]) != bits(dec1(w, enc1(w, x[i]))))
                        fail_msg("%s: vector and one-value paths differ at %zu", pb_wire_name(w),
                                 i);
                }
            }
    }
    free(x);
    free(y);
    free(z);
    free(buf);
}

/* Error feedback, dense: decoded + residual == the input exactly, in float, where the decoded
 * value is finite (the residual is then representable: see codec.c); 0 residual where not. */
static void dense_error_feedback(void **state) {
    (void)state;
    enum { N = 5000 };
    float *x = random_floats(N, 21);
    /* the awkward ones: beyond fp16's range, fp16 subnormals, float subnormals, inf, NaN */
    const float odd[] = {7e4f,         -1e6f,    3e-6f, -2e-7f,   1e-30f,
                         from_bits(1), 1e-40f,   3e38f, FLT_MAX,  0.0f,
                         -0.0f,        INFINITY, NAN,   65519.0f, 1.00048828125f};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        x[i * 7] = odd[i];
    float *acc = malloc(N * sizeof *acc), *d = malloc(N * sizeof *d);
    unsigned char *out = malloc(4 * N + 1);
    assert_non_null(acc);
    assert_non_null(d);
    assert_non_null(out);
    for (size_t wi = 0; wi < 3; wi++) {
        const pb_wire w = all_wires[wi];
        memcpy(acc, x, N * sizeof *acc);
        pb_wire_encode_ef(w, acc, N, out + 1);
        /* the same bytes as a plain encode */
        unsigned char *plain = malloc(4 * N);
        assert_non_null(plain);
        pb_wire_encode(w, x, N, plain);
        assert_memory_equal(plain, out + 1, N * pb_wire_size(w));
        free(plain);
        pb_wire_decode(w, out + 1, N, d);
        for (size_t i = 0; i < N; i++) {
            if (w == PB_WIRE_FP32 && bits(acc[i]) != 0)
                fail_msg("fp32: residual %zu is %.9g, not 0", i, (double)acc[i]);
            if (!isfinite(d[i])) {
                if (bits(acc[i]) != 0)
                    fail_msg("%s: x %.9g sent as %.9g left %.9g, expected 0", pb_wire_name(w),
                             (double)x[i], (double)d[i], (double)acc[i]);
            } else if (bits(d[i] + acc[i]) != bits(x[i]) && !(x[i] == 0 && d[i] + acc[i] == 0)) {
                fail_msg("%s: x[%zu] %.9g != sent %.9g + residual %.9g", pb_wire_name(w), i,
                         (double)x[i], (double)d[i], (double)acc[i]);
            }
        }
    }
    free(x);
    free(acc);
    free(d);
    free(out);
}

/* --- top-k --- */

typedef struct topk_run {
    size_t nnz;
    uint32_t *idx;
    float *sent; /* the decoded values, dense (n) */
} topk_run;

/* Encodes acc (modified: the residual) and decodes what was sent, checking the payload's
 * shape on the way. */
static topk_run run_topk(pb_wire w, double frac, float *acc, size_t n) {
    const size_t cap = pb_topk_cap(n, frac);
    unsigned char *out = malloc(pb_topk_bytes(w, cap) + 3);
    assert_non_null(out);
    topk_run r = {0};
    r.nnz = pb_topk_encode(w, frac, acc, n, out + 3); /* unaligned */
    if (r.nnz > cap)
        fail_msg("top-k chose %zu of %zu, over the cap %zu", r.nnz, n, cap);
    r.idx = malloc((r.nnz + 1) * sizeof *r.idx);
    r.sent = malloc((n + 1) * sizeof *r.sent);
    assert_non_null(r.idx);
    assert_non_null(r.sent);
    for (size_t j = 0; j < r.nnz; j++) {
        const unsigned char *p = out + 3 + 4 * j;
        r.idx[j] =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        if (r.idx[j] >= n || (j > 0 && r.idx[j] <= r.idx[j - 1]))
            fail_msg("top-k index %zu: %u (previous %u, n %zu)", j, r.idx[j], j ? r.idx[j - 1] : 0,
                     n);
    }
    for (size_t i = 0; i < n; i++)
        r.sent[i] = -1.0f;
    char why[128] = "";
    assert_int_equal(pb_topk_decode(w, out + 3, r.nnz, n, r.sent, 0, why, sizeof why), PST_OK);
    free(out);
    return r;
}

static void topk_run_free(topk_run *r) {
    free(r->idx);
    free(r->sent);
}

/* What must hold of any top-k: chosen entries are sent as their encoding and leave the exact
 * residual; unchosen ones are untouched and no larger than any chosen one. */
static void check_topk(pb_wire w, const float *x, const float *acc, size_t n, const topk_run *r) {
    char *chosen = calloc(n, 1);
    assert_non_null(chosen);
    float min_chosen = INFINITY;
    for (size_t j = 0; j < r->nnz; j++) {
        const size_t i = r->idx[j];
        chosen[i] = 1;
        const float want = dec1(w, enc1(w, x[i]));
        if (bits(r->sent[i]) != bits(want))
            fail_msg("%s: entry %zu = %.9g sent as %.9g", pb_wire_name(w), i, (double)x[i],
                     (double)r->sent[i]);
        if (isfinite(want) ? bits(want + acc[i]) != bits(x[i]) : acc[i] != 0.0f)
            fail_msg("%s: entry %zu: %.9g sent %.9g + residual %.9g", pb_wire_name(w), i,
                     (double)x[i], (double)want, (double)acc[i]);
        if (!isnan(x[i]) && fabsf(x[i]) < min_chosen)
            min_chosen = fabsf(x[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (chosen[i])
            continue;
        if (r->sent[i] != 0.0f || bits(acc[i]) != bits(x[i]))
            fail_msg("unchosen entry %zu: sent %.9g, residual %.9g of %.9g", i, (double)r->sent[i],
                     (double)acc[i], (double)x[i]);
        if (isnan(x[i]) || fabsf(x[i]) > min_chosen)
            fail_msg("unchosen entry %zu = %.9g beats a chosen one of magnitude %.9g", i,
                     (double)x[i], (double)min_chosen);
    }
    free(chosen);
}

/* Random data: the largest magnitudes (no ties in practice), about k of them. */
static void topk_chooses_the_largest(void **state) {
    (void)state;
    const size_t ns[] = {1000, 100000, 1000003};
    const double fracs[] = {0.1, 0.01, 0.001};
    for (size_t ni = 0; ni < 3; ni++)
        for (size_t fi = 0; fi < 3; fi++)
            for (size_t wi = 0; wi < 3; wi++) {
                const size_t n = ns[ni];
                const double frac = fracs[fi];
                const pb_wire w = all_wires[wi];
                float *x = random_floats(n, 100 + ni * 10 + fi);
                float *acc = malloc(n * sizeof *acc);
                assert_non_null(acc);
                memcpy(acc, x, n * sizeof *acc);
                topk_run r = run_topk(w, frac, acc, n);
                check_topk(w, x, acc, n, &r);
                const size_t k = (size_t)ceil(frac * (double)n);
                print_message("top-k %s n %zu frac %g: nnz %zu (k %zu, cap %zu)\n", pb_wire_name(w),
                              n, frac, r.nnz, k, pb_topk_cap(n, frac));
                if (n <= 4096 * 2 && r.nnz != k) /* all of acc is the sample: exact */
                    fail_msg("n %zu frac %g: nnz %zu, expected exactly %zu", n, frac, r.nnz, k);
                if (r.nnz < k / 2)
                    fail_msg("n %zu frac %g: nnz %zu, under half of k %zu", n, frac, r.nnz, k);
                topk_run_free(&r);
                free(x);
                free(acc);
            }
}

/* A sample that misleads: large distinct values at odd indices, tiny ones at even indices,
 * where the sample (at an even stride for this n) sees only tiny ones. Its threshold lets
 * every large value through, far over the cap: exactly k, the largest, are kept. */
static void topk_cut_when_the_sample_misleads(void **state) {
    (void)state;
    enum { N = 100000 };
    float *x = random_floats(N, 51), *acc = malloc(N * sizeof *acc);
    assert_non_null(acc);
    for (size_t i = 0; i < N; i++)
        x[i] = i % 2 ? 1.0f + fabsf(x[i]) : x[i] * 1e-6f;
    for (size_t wi = 0; wi < 3; wi++) {
        memcpy(acc, x, sizeof(float) * N);
        topk_run r = run_topk(all_wires[wi], 0.01, acc, N);
        assert_int_equal(r.nnz, 1000);
        check_topk(all_wires[wi], x, acc, N, &r);
        topk_run_free(&r);
    }
    free(x);
    free(acc);
}

/* Ties: all equal magnitudes, too many over any threshold: exactly k, the lowest indices. */
static void topk_ties_go_to_the_lowest_index(void **state) {
    (void)state;
    enum { N = 200000 };
    float *x = malloc(N * sizeof *x), *acc = malloc(N * sizeof *acc);
    assert_non_null(x);
    assert_non_null(acc);
    for (size_t i = 0; i < N; i++)
        x[i] = i % 2 ? 0.5f : -0.5f;
    memcpy(acc, x, sizeof(float) * N);
    topk_run r = run_topk(PB_WIRE_BF16, 0.01, acc, N);
    assert_int_equal(r.nnz, 2000);
    for (size_t j = 0; j < r.nnz; j++)
        assert_int_equal(r.idx[j], j);
    check_topk(PB_WIRE_BF16, x, acc, N, &r);
    topk_run_free(&r);
    /* a few large entries among the ties: those, then the lowest of the ties */
    x[150000] = 3.0f;
    x[7] = -2.0f;
    memcpy(acc, x, sizeof(float) * N);
    r = run_topk(PB_WIRE_FP32, 0.01, acc, N);
    assert_int_equal(r.nnz, 2000);
    assert_int_equal(r.idx[1999], 150000);
    assert_int_equal(r.idx[1998], 1998);
    check_topk(PB_WIRE_FP32, x, acc, N, &r);
    topk_run_free(&r);
    free(x);
    free(acc);
}

/* Zeros are never sent: all-zero input gives nothing, frac 1 gives every nonzero entry. */
static void topk_zeros_and_frac_one(void **state) {
    (void)state;
    enum { N = 50000 };
    float *acc = calloc(N, sizeof *acc);
    assert_non_null(acc);
    for (size_t i = 0; i < N; i += 3)
        acc[i] = -0.0f;
    unsigned char *out = malloc(pb_topk_bytes(PB_WIRE_FP16, N));
    assert_non_null(out);
    assert_int_equal(pb_topk_encode(PB_WIRE_FP16, 0.01, acc, N, out), 0);
    assert_int_equal(pb_topk_encode(PB_WIRE_FP16, 1.0, acc, N, out), 0);
    free(out);

    float *x = random_floats(N, 5);
    size_t nonzero = 0;
    for (size_t i = 0; i < N; i++) {
        if (i % 5 == 0)
            x[i] = i % 2 ? 0.0f : -0.0f;
        nonzero += x[i] != 0.0f;
    }
    for (size_t wi = 0; wi < 3; wi++) {
        memcpy(acc, x, sizeof(float) * N);
        topk_run r = run_topk(all_wires[wi], 1.0, acc, N);
        assert_int_equal(r.nnz, nonzero);
        check_topk(all_wires[wi], x, acc, N, &r);
        topk_run_free(&r);
    }
    /* only a few nonzero entries, none of them in the sample: all of them, nothing else */
    memset(acc, 0, sizeof(float) * N);
    acc[1] = 1e-3f;
    acc[N - 2] = -4.0f;
    memcpy(x, acc, sizeof(float) * N);
    topk_run r = run_topk(PB_WIRE_FP32, 0.01, acc, N);
    assert_int_equal(r.nnz, 2);
    assert_int_equal(r.idx[0], 1);
    assert_int_equal(r.idx[1], N - 2);
    check_topk(PB_WIRE_FP32, x, acc, N, &r);
    topk_run_free(&r);
    free(x);
    free(acc);
}

/* NaNs count as the largest: always sent (their residual 0), within the cap; an entry that
 * overflows fp16 is sent as inf with residual 0. */
static void topk_sends_nans(void **state) {
    (void)state;
    enum { N = 300000 };
    float *x = random_floats(N, 9), *acc = malloc(N * sizeof *acc);
    assert_non_null(acc);
    x[12345] = NAN;
    x[299999] = -NAN;
    x[0] = from_bits(0x7f800001); /* a signalling NaN */
    x[77] = 1e5f;                 /* beyond fp16 */
    for (size_t wi = 0; wi < 3; wi++) {
        const pb_wire w = all_wires[wi];
        memcpy(acc, x, sizeof(float) * N);
        topk_run r = run_topk(w, 0.001, acc, N);
        check_topk(w, x, acc, N, &r);
        assert_true(isnan(r.sent[0]) && isnan(r.sent[12345]) && isnan(r.sent[299999]));
        assert_true(acc[0] == 0.0f && acc[12345] == 0.0f && acc[299999] == 0.0f);
        if (w == PB_WIRE_FP16)
            assert_true(r.sent[77] == INFINITY && acc[77] == 0.0f);
        topk_run_free(&r);
    }
    /* more NaNs than the cap: k of them, the lowest indices, whatever their payloads */
    const uint32_t nans[] = {0x7f800001, 0xffc00000, 0x7fffffff, 0x7fc00000};
    for (size_t i = 0; i < N; i += 2)
        x[i] = from_bits(nans[(i / 2) % 4]);
    memcpy(acc, x, sizeof(float) * N);
    topk_run r = run_topk(PB_WIRE_BF16, 0.001, acc, N);
    assert_int_equal(r.nnz, 300);
    for (size_t j = 0; j < r.nnz; j++)
        assert_int_equal(r.idx[j], 2 * j);
    topk_run_free(&r);
    free(x);
    free(acc);
}

/* The same input gives the same bytes and the same residual. */
static void topk_is_deterministic(void **state) {
    (void)state;
    enum { N = 400000 };
    float *x = random_floats(N, 31), *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t wi = 0; wi < 3; wi++) {
        const pb_wire w = all_wires[wi];
        const size_t bytes = pb_topk_bytes(w, pb_topk_cap(N, 0.01));
        unsigned char *oa = malloc(bytes), *ob = malloc(bytes);
        assert_non_null(oa);
        assert_non_null(ob);
        memset(oa, 1, bytes);
        memset(ob, 2, bytes);
        memcpy(a, x, sizeof(float) * N);
        memcpy(b, x, sizeof(float) * N);
        const size_t na = pb_topk_encode(w, 0.01, a, N, oa);
        const size_t nb = pb_topk_encode(w, 0.01, b, N, ob);
        assert_int_equal(na, nb);
        assert_memory_equal(oa, ob, pb_topk_bytes(w, na));
        assert_memory_equal(a, b, sizeof(float) * N);
        free(oa);
        free(ob);
    }
    free(x);
    free(a);
    free(b);
}

/* Many steps of one constant gradient, top-k with error feedback: what arrives plus the
 * residual is the sum of the gradients (to float rounding), and the residual stays bounded:
 * each entry waits until it is among the k largest, so it grows to about the threshold
 * theta = sum |g| / k (k sends a step balance the sum |g| that arrives), plus one |g_i|. */
static void topk_error_feedback_sends_everything(void **state) {
    (void)state;
    enum { N = 20000, STEPS = 400 };
    const double frac = 0.01;
    float *g = random_floats(N, 41), *acc = calloc(N, sizeof *acc), *y = calloc(N, sizeof *y);
    assert_non_null(acc);
    assert_non_null(y);
    double sum_g = 0, max_g = 0;
    for (size_t i = 0; i < N; i++) {
        sum_g += fabs((double)g[i]);
        max_g = fmax(max_g, fabs((double)g[i]));
    }
    const size_t k = (size_t)ceil(frac * N);
    const double bound = 2.0 * (sum_g / (double)(k / 2) + max_g);
    for (size_t wi = 0; wi < 3; wi++) {
        const pb_wire w = all_wires[wi];
        memset(acc, 0, sizeof(float) * N);
        memset(y, 0, sizeof(float) * N);
        unsigned char *out = malloc(pb_topk_bytes(w, pb_topk_cap(N, frac)));
        assert_non_null(out);
        double max_res = 0;
        for (int s = 1; s <= STEPS; s++) {
            for (size_t i = 0; i < N; i++)
                acc[i] += g[i];
            const size_t nnz = pb_topk_encode(w, frac, acc, N, out);
            char why[128];
            assert_int_equal(pb_topk_decode(w, out, nnz, N, y, 1, why, sizeof why), PST_OK);
            for (size_t i = 0; i < N; i++)
                max_res = fmax(max_res, fabs((double)acc[i]));
        }
        if (max_res > bound)
            fail_msg("%s: the residual reached %.6g, over %.6g", pb_wire_name(w), max_res, bound);
        for (size_t i = 0; i < N; i++) {
            const double want = (double)STEPS * g[i], got = (double)y[i] + acc[i];
            /* y sums up to STEPS floats: a few hundred roundings of 2^-24 each */
            if (fabs(got - want) > 1e-4 * fabs(want) + 1e-6)
                fail_msg("%s: entry %zu: arrived %.9g + residual %.9g, expected %.9g",
                         pb_wire_name(w), i, (double)y[i], (double)acc[i], want);
        }
        print_message("top-k %s, %d steps: largest residual %.4g (bound %.4g)\n", pb_wire_name(w),
                      STEPS, max_res, bound);
        free(out);
    }
    free(g);
    free(acc);
    free(y);
}

/* Little-endian uint32 indices, then fp32 values, by hand. */
static size_t forge(unsigned char *p, const uint32_t *idx, const float *v, size_t nnz) {
    for (size_t j = 0; j < nnz; j++)
        for (int b = 0; b < 4; b++)
            p[4 * j + (size_t)b] = (unsigned char)(idx[j] >> (8 * b));
    for (size_t j = 0; j < nnz; j++) {
        const uint32_t u = bits(v[j]);
        for (int b = 0; b < 4; b++)
            p[4 * (nnz + j) + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
    return 8 * nnz;
}

static void expect_refused(const uint32_t *idx, size_t nnz, size_t n, const char *want) {
    unsigned char buf[1 + 8 * 8];
    const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    forge(buf + 1, idx, v, nnz);
    float y[16];
    for (int i = 0; i < 16; i++)
        y[i] = 9.0f;
    char why[160] = "";
    assert_int_equal(pb_topk_decode(PB_WIRE_FP32, buf + 1, nnz, n, y, 0, why, sizeof why),
                     PST_EMALFORMED);
    if (!strstr(why, want))
        fail_msg("refusal says \"%s\", expected it to contain \"%s\"", why, want);
    for (int i = 0; i < 16; i++)
        assert_true(y[i] == 9.0f); /* nothing written */
}

static void topk_decode_checks(void **state) {
    (void)state;
    /* accepted: set, then add */
    const uint32_t good[] = {0, 3, 9};
    const float v[] = {1.5f, -2.0f, 0.25f};
    unsigned char buf[1 + 24];
    forge(buf + 1, good, v, 3);
    float y[10];
    for (int i = 0; i < 10; i++)
        y[i] = 7.0f;
    char why[160] = "";
    assert_int_equal(pb_topk_decode(PB_WIRE_FP32, buf + 1, 3, 10, y, 0, why, sizeof why), PST_OK);
    const float want_set[10] = {1.5f, 0, 0, -2.0f, 0, 0, 0, 0, 0, 0.25f};
    assert_memory_equal(y, want_set, sizeof y);
    assert_int_equal(pb_topk_decode(PB_WIRE_FP32, buf + 1, 3, 10, y, 1, why, sizeof why), PST_OK);
    const float want_add[10] = {3.0f, 0, 0, -4.0f, 0, 0, 0, 0, 0, 0.5f};
    assert_memory_equal(y, want_add, sizeof y);
    /* nothing sent: zeros, or nothing added */
    assert_int_equal(pb_topk_decode(PB_WIRE_FP32, buf + 1, 0, 10, y, 1, why, sizeof why), PST_OK);
    assert_memory_equal(y, want_add, sizeof y);
    assert_int_equal(pb_topk_decode(PB_WIRE_FP32, buf + 1, 0, 10, y, 0, why, sizeof why), PST_OK);
    for (int i = 0; i < 10; i++)
        assert_true(y[i] == 0.0f);

    const uint32_t down[] = {1, 41, 40, 50};
    expect_refused(down, 4, 100, "top-k index 2 of 4: 40 after 41: expected ascending");
    const uint32_t dup[] = {1, 5, 5};
    expect_refused(dup, 3, 100, "top-k index 2 of 3: 5 after 5: expected ascending");
    const uint32_t out_of_range[] = {0, 3, 12};
    expect_refused(out_of_range, 3, 12, "top-k index 2 of 3: 12");
    const uint32_t huge[] = {0xffffffffu};
    expect_refused(huge, 1, 12, "top-k index 0 of 1: 4294967295");
    const uint32_t many[] = {0, 1, 2, 3, 4};
    expect_refused(many, 5, 4, "5 entries for a slice of 4");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_sizes_parse),
        cmocka_unit_test(bf16_by_hand),
        cmocka_unit_test(fp16_by_hand),
        cmocka_unit_test(f16c_matches_portable),
        cmocka_unit_test(dense_round_trips),
        cmocka_unit_test(dense_error_feedback),
        cmocka_unit_test(topk_chooses_the_largest),
        cmocka_unit_test(topk_cut_when_the_sample_misleads),
        cmocka_unit_test(topk_ties_go_to_the_lowest_index),
        cmocka_unit_test(topk_zeros_and_frac_one),
        cmocka_unit_test(topk_sends_nans),
        cmocka_unit_test(topk_is_deterministic),
        cmocka_unit_test(topk_error_feedback_sends_everything),
        cmocka_unit_test(topk_decode_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
