/* shard.c: equal contiguous ranges of the flat vector, and the placement map. */
#include "engine/shard.h"

#include "engine/base/base.h"

#include <stdlib.h>

void eng_shard_range(size_t total, int P, int s, size_t *lo, size_t *n) {
    PST_ASSERT(P >= 1 && s >= 0 && s < P, "server %d of %d", s, P);
    *lo = total * (size_t)s / (size_t)P;
    *n = total * (size_t)(s + 1) / (size_t)P - *lo;
}

int eng_shard_owner(size_t total, int P, size_t i) {
    PST_ASSERT(i < total, "element %zu of %zu", i, total);
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

void eng_chunks_plan(eng_chunks *c, size_t lo, size_t n, const size_t *cuts, int ncuts,
                     size_t max) {
    /* Pass 0 counts the chunks, pass 1 writes their starts. */
    c->start = NULL;
    c->n = 0;
    for (int pass = 0; pass < 2; pass++) {
        int k = 0;
        size_t at = lo;
        do {
            /* The chunk from `at` ends at the next cut, the shard's end or max floats on. */
            size_t end = lo + n;
            for (int i = 0; i < ncuts; i++)
                if (cuts[i] > at && cuts[i] < end)
                    end = cuts[i];
            if (max && end - at > max)
                end = at + max;
            if (pass)
                c->start[k] = at;
            k++;
            at = end;
        } while (at < lo + n);
        if (pass) {
            c->start[k] = lo + n;
        } else {
            c->n = k;
            c->start = pst_malloc(sizeof(size_t) * (size_t)(k + 1));
        }
    }
}

void eng_chunks_free(eng_chunks *c) {
    free(c->start);
    c->start = NULL;
    c->n = 0;
}

int eng_chunks_find(const eng_chunks *c, size_t off) {
    if (c->n < 1 || off < c->start[0] || off >= c->start[c->n])
        return -1;
    int a = 0, b = c->n - 1; /* start[a] <= off < start[b + 1] */
    while (a < b) {
        const int m = (a + b + 1) / 2;
        if (c->start[m] <= off)
            a = m;
        else
            b = m - 1;
    }
    return a;
}
