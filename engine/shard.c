/* shard.c: equal contiguous ranges of the flat vector, and the placement map. */
#include "engine/shard.h"

#include "engine/base.h"

void eng_shard_range(size_t total, int P, int s, size_t *lo, size_t *n) {
    ENG_ASSERT(P >= 1 && s >= 0 && s < P, "server %d of %d", s, P);
    *lo = total * (size_t)s / (size_t)P;
    *n = total * (size_t)(s + 1) / (size_t)P - *lo;
}

int eng_shard_owner(size_t total, int P, size_t i) {
    ENG_ASSERT(i < total, "element %zu of %zu", i, total);
    /* The largest s with lo(s) <= i; lo is monotone, so start from the estimate. */
    int s = (int)((i * (size_t)P) / total);
    while (s + 1 < P && total * (size_t)(s + 1) / (size_t)P <= i)
        s++;
    while (s > 0 && total * (size_t)s / (size_t)P > i)
        s--;
    return s;
}

void eng_shard_print(const eng_layout *lay, int P, FILE *out) {
    for (int s = 0; s < P; s++) {
        size_t lo, n;
        eng_shard_range(lay->total, P, s, &lo, &n);
        fprintf(out, "server %d: [%zu, %zu) %zu floats, %.1f KiB, %.1f%% of the bytes\n", s, lo,
                lo + n, n, (double)n * sizeof(float) / 1024.0,
                lay->total ? 100.0 * (double)n / (double)lay->total : 0.0);
        for (int t = 0; t < lay->n; t++) {
            const eng_tensor_info *ti = &lay->tensors[t];
            size_t a = ti->offset > lo ? ti->offset : lo;
            size_t b = ti->offset + ti->count < lo + n ? ti->offset + ti->count : lo + n;
            if (a >= b)
                continue;
            fprintf(out, "  %-20s [%zu, %zu) of %zu%s\n", ti->name, a - ti->offset, b - ti->offset,
                    ti->count, b - a < ti->count ? " (split)" : "");
        }
    }
}

size_t eng_chunk_count(size_t n, size_t chunk) {
    return chunk == 0 || chunk >= n ? 1 : (n + chunk - 1) / chunk;
}

void eng_chunk_range(size_t n, size_t chunk, size_t k, size_t *lo, size_t *count) {
    const size_t C = eng_chunk_count(n, chunk);
    ENG_ASSERT(k < C, "chunk %zu of %zu", k, C);
    if (C == 1) {
        *lo = 0;
        *count = n;
        return;
    }
    *lo = k * chunk;
    *count = k + 1 < C ? chunk : n - *lo;
}
