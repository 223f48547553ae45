/* bench_codec.c: the speed of proto/codec.c on one thread: dense encode, decode, decode_add
 * and error-feedback encode of each wire type in floats per second, and top-k encode in
 * milliseconds. Usage: bench_codec [N (floats, default 1048576)] [REPEATS (default 50)].
 * Inputs are random floats of several octaves; each figure is the best of REPEATS runs. */
#include "proto/codec.h"

#include "engine/base/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv) {
    const size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1048576;
    const int reps = argc > 2 ? atoi(argv[2]) : 50;
    float *x = pst_alloc(n * sizeof *x), *acc = pst_alloc(n * sizeof *acc),
          *y = pst_alloc(n * sizeof *y);
    unsigned char *out = pst_alloc(8 * n + 8);
    uint64_t seed = 1;
    for (size_t i = 0; i < n; i++) {
        const uint64_t r = next_u64(&seed);
        x[i] =
            ldexpf((float)((double)(r >> 40) / 16777216.0) * 2.0f - 1.0f, (int)((r >> 8) % 17) - 8);
    }
    printf("n %zu, best of %d, fp16 via %s\n", n, reps, pb_fp16_f16c() ? "F16C" : "portable");
    for (int w = 0; w < PB_WIRE_END; w++) {
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        for (int r = 0; r < reps; r++) {
            double t = pst_now();
            pb_wire_encode((pb_wire)w, x, n, out + 1);
            best[0] = fmin(best[0], pst_now() - t);
            t = pst_now();
            pb_wire_decode((pb_wire)w, out + 1, n, y);
            best[1] = fmin(best[1], pst_now() - t);
            t = pst_now();
            pb_wire_decode_add((pb_wire)w, out + 1, n, y);
            best[2] = fmin(best[2], pst_now() - t);
            memcpy(acc, x, n * sizeof *acc);
            t = pst_now();
            pb_wire_encode_ef((pb_wire)w, acc, n, out + 1);
            best[3] = fmin(best[3], pst_now() - t);
        }
        printf("%s: encode %.2f G/s, decode %.2f G/s, decode_add %.2f G/s, encode_ef %.2f G/s\n",
               pb_wire_name((pb_wire)w), n / best[0] * 1e-9, n / best[1] * 1e-9, n / best[2] * 1e-9,
               n / best[3] * 1e-9);
    }
    const double fracs[] = {0.1, 0.01, 0.001};
    for (int w = 0; w < PB_WIRE_END; w++)
        for (int f = 0; f < 3; f++) {
            double best = 1e9, sum = 0;
            size_t nnz = 0, lo = n, hi = 0;
            for (int r = 0; r < reps; r++) {
                memcpy(acc, x, n * sizeof *acc);
                acc[r % n] += 1e-3f * (float)r; /* a different input each time */
                const double t = pst_now();
                nnz = pb_topk_encode((pb_wire)w, fracs[f], acc, n, out + 1);
                const double dt = pst_now() - t;
                best = fmin(best, dt);
                sum += dt;
                lo = nnz < lo ? nnz : lo;
                hi = nnz > hi ? nnz : hi;
            }
            printf("top-k %s frac %g: best %.3f ms, mean %.3f ms, nnz %zu..%zu (k %.0f, cap "
                   "%zu)\n",
                   pb_wire_name((pb_wire)w), fracs[f], best * 1e3, sum / reps * 1e3, lo, hi,
                   ceil(fracs[f] * (double)n), pb_topk_cap(n, fracs[f]));
        }
    pst_free(x);
    pst_free(acc);
    pst_free(y);
    pst_free(out);
    return 0;
}
