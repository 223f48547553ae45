/* rng.c: the one non-inline piece of rng.h. */
#include "engine/rng.h"

void eng_rng_shuffle(eng_rng *r, uint32_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)eng_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
