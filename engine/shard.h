/* shard.h: how the flat parameter vector is split across P parameter servers.
 *
 * Server s owns one contiguous range; ranges differ in size by at most one float, so the
 * servers carry equal bytes and a large tensor may span several of them (dense/kernel,
 * 204,800 floats, lands on both of 2 servers). A pure function of (total, P): every
 * process computes the same map. */
#ifndef PSTRAIN_ENGINE_SHARD_H
#define PSTRAIN_ENGINE_SHARD_H

#include "engine/layout.h"

#include <stddef.h>
#include <stdio.h>

/* Server s of P (0 <= s < P) owns [*lo, *lo + *n) of a vector of total floats. */
void eng_shard_range(size_t total, int P, int s, size_t *lo, size_t *n);

/* The server that owns element i. */
int eng_shard_owner(size_t total, int P, size_t i);

/* The messages a shard travels in. Server s's range [lo, lo + n) is cut at every cut point
 * inside it (mnist_cnn: each layer's first float, so that a worker can send a layer's
 * gradient as soon as backward has finished it) and into pieces of at most max floats
 * (0: no limit). Chunk k is [start[k], start[k + 1]) in absolute offsets; there is always
 * at least one. Worker and server compute the same plan from the same model. */
typedef struct eng_chunks {
    size_t *start; /* (n + 1) */
    int n;
} eng_chunks;

/* Fills c (freed with eng_chunks_free). cuts need not be sorted. */
void eng_chunks_plan(eng_chunks *c, size_t lo, size_t n, const size_t *cuts, int ncuts, size_t max);
void eng_chunks_free(eng_chunks *c);

/* The chunk holding absolute offset off, or -1 when off lies outside the shard. */
int eng_chunks_find(const eng_chunks *c, size_t off);

/* Prints the placement map: for each server its range, its share of the bytes, and the
 * pieces of tensors it holds. */
void eng_shard_print(const eng_layout *lay, int P, FILE *out);

#endif
