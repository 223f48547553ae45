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

/* A shard of n floats in chunks of `chunk` floats (0: one chunk): how many, and chunk k's
 * range [*lo, *lo + *count) relative to the shard's start (the last may be shorter). */
size_t eng_chunk_count(size_t n, size_t chunk);
void eng_chunk_range(size_t n, size_t chunk, size_t k, size_t *lo, size_t *count);

/* Prints the placement map: for each server its range, its share of the bytes, and the
 * pieces of tensors it holds. */
void eng_shard_print(const eng_layout *lay, int P, FILE *out);

#endif
