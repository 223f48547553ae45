/* codec.h: how floats travel in push payloads and pull answers: as fp32, bf16 or fp16 values,
 * dense (n values, packed) or top-k (nnz uint32 indices, strictly ascending and relative to
 * the slice's start, then nnz values), all little-endian. Pure functions over caller-owned
 * buffers: no sockets, no protobuf, no state; safe from any number of threads at once.
 *
 * Payloads arrive unaligned (ZeroMQ frames): every function here reads and writes them bytewise
 * (memcpy), at any alignment. Error feedback (pb_wire_encode_ef, pb_topk_encode) leaves in the
 * caller's accumulator what the message did not carry, so that the next message carries it:
 * nothing is lost, only delayed. Where a value sent is not finite (a NaN, an infinity, or a
 * finite value beyond fp16's or bf16's range that became one), the receiver's copy is already
 * lost and no residual can repair it, so the residual there is 0 rather than NaN or inf (which
 * would make that entry non-finite in every later message). */
#ifndef PSTRAIN_PROTO_CODEC_H
#define PSTRAIN_PROTO_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* The value type of a payload. */
typedef enum pb_wire { PB_WIRE_FP32 = 0, PB_WIRE_BF16 = 1, PB_WIRE_FP16 = 2, PB_WIRE_END } pb_wire;

/* Bytes per value: 4, 2, 2. */
size_t pb_wire_size(pb_wire w);
/* "fp32", "bf16", "fp16". */
const char *pb_wire_name(pb_wire w);
/* The wire type named s (as pb_wire_name writes it): PST_OK with *w set, or PST_EARG. */
int pb_wire_parse(const char *s, pb_wire *w);

/* Writes the n floats x (n) as n packed little-endian values of w at out (n *
 * pb_wire_size(w) bytes, any alignment). Rounds to nearest, ties to even; a NaN stays a
 * (quiet) NaN of the same sign; values beyond bf16's or fp16's largest finite value round to
 * +-inf; fp16 subnormals are exact where representable, rounded otherwise. */
void pb_wire_encode(pb_wire w, const float *x, size_t n, void *out);
/* y[i] = value i of the n packed values of w at in (any alignment). y: (n). */
void pb_wire_decode(pb_wire w, const void *in, size_t n, float *y);
/* y[i] += value i. */
void pb_wire_decode_add(pb_wire w, const void *in, size_t n, float *y);

/* Dense error feedback: encodes acc (n) into out as pb_wire_encode does, then acc[i] -=
 * decoded value i, so acc holds what the encoding lost (0 where the decoded value is not
 * finite). Exact: decoded + residual == the acc before, in float, wherever the decoded value
 * is finite. For fp32 acc becomes all 0. */
void pb_wire_encode_ef(pb_wire w, float *acc, size_t n, void *out);

/* Top-k with error feedback. k = ceil(frac * n), at least 1. */

/* The most entries pb_topk_encode may choose: k + ceil(k / 4), at most n. */
size_t pb_topk_cap(size_t n, double frac);
/* The payload's size for nnz entries: nnz * (4 + pb_wire_size(w)). */
size_t pb_topk_bytes(pb_wire w, size_t nnz);

/* acc (n floats) is what is to be sent (a gradient plus the residual, or
 * weights minus what the receiver has). Chooses about k = ceil(frac * n) entries of largest
 * |acc[i]| (never more than pb_topk_cap(n, frac)), writes their nnz uint32 LE indices,
 * strictly ascending, then their nnz values of w, to out (pb_topk_bytes(w, nnz) bytes, any
 * alignment; size it with pb_topk_bytes(w, pb_topk_cap(n, frac))), and subtracts each chosen
 * entry's decoded value from acc (so acc holds the residual; 0 where the decoded value is
 * not finite). Every chosen |acc[i]| is >= every unchosen one; ties go to the lowest index.
 * NaN entries count as the largest, so they are always chosen (within the cap): a diverging
 * run must not look quiet. Zeros (+-0) are never chosen: returns 0 when acc is all zero.
 * frac in (0, 1]; frac 1 sends every nonzero entry. n <= 2^32. Deterministic: the same
 * input gives the same bytes.
 *
 * How many: the threshold is estimated from a strided sample of acc (1%, at least 4096
 * entries, and for a small frac enough for 32 sampled entries above it, up to n/8; all of acc
 * when n <= 8192, which makes the count k but for ties at the threshold), so nnz is k within the
 * sample's error (about 10-15% on random data): a count above the cap is cut to exactly k, and one
 * below k/2 has its threshold lowered once; fewer than k is fine, error feedback carries the rest.
 */
size_t pb_topk_encode(pb_wire w, double frac, float *acc, size_t n, void *out);

/* Checks a received top-k payload of nnz entries for a slice of n floats (at least
 * pb_topk_bytes(w, nnz) bytes at in, any alignment; nothing past them is read) and scatters
 * it into y (n): add 0: y[0..n) = 0, then y[idx] = value; add 1: y[idx] += value. Returns
 * PST_OK, or PST_EMALFORMED with why (whylen bytes) naming what was wrong ("top-k index 7 of
 * 12: 40 after 41: expected ascending"); y is then unchanged (all indices are checked before
 * y is written). */
int pb_topk_decode(pb_wire w, const void *in, size_t nnz, size_t n, float *y, int add, char *why,
                   size_t whylen);

/* The portable fp16 conversions, bit for bit what F16C gives, which pb_wire_* use where the
 * CPU lacks F16C (or is not x86); public so that tests can hold the two to the same bits.
 * pb_fp16_f16c: 1 when pb_wire_* use this CPU's F16C. */
uint16_t pb_fp16_from_float(float x);
float pb_fp16_to_float(uint16_t h);
int pb_fp16_f16c(void);

#endif
