/* rng.h: small deterministic random numbers (splitmix64), the same on every machine.
 *
 * Two uses: a stream (eng_rng) for initialisers and shuffles, and a stateless hash
 * (eng_hash3) for dropout masks, so a mask depends only on (seed, step, sample) and not on
 * which thread or process happens to compute it. */
#ifndef PSTRAIN_ENGINE_RNG_H
#define PSTRAIN_ENGINE_RNG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eng_rng {
    uint64_t state;
} eng_rng;

static inline uint64_t eng_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Mixes three words into one well-distributed 64-bit value. */
static inline uint64_t eng_hash3(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t s = a;
    uint64_t h = eng_splitmix64(&s);
    s = h ^ b;
    h = eng_splitmix64(&s);
    s = h ^ c;
    return eng_splitmix64(&s);
}

static inline void eng_rng_seed(eng_rng *r, uint64_t seed) { r->state = seed; }
static inline uint64_t eng_rng_u64(eng_rng *r) { return eng_splitmix64(&r->state); }

/* Uniform float in [0, 1) with 24 random bits. */
static inline float eng_rng_uniform(eng_rng *r) {
    return (float)(eng_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

/* A standard normal from two uniforms (Box-Muller; 1 - u keeps log away from 0). */
static inline double eng_rng_normal(eng_rng *r) {
    const double u1 = 1.0 - (double)eng_rng_uniform(r), u2 = eng_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Uniform integer in [0, n), n > 0, without modulo bias worth noticing (n << 2^64). */
static inline uint64_t eng_rng_below(eng_rng *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)eng_rng_u64(r) * n) >> 64);
}

/* Fisher-Yates shuffle of idx[0..n). */
void eng_rng_shuffle(eng_rng *r, uint32_t *idx, size_t n);

#endif
