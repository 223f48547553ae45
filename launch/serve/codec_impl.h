/* codec_impl.h: what codec.c shares with tfs.c and v2.c, the two protocols' halves: an
 * output buffer that writes JSON, the decoding state with its error helpers, and the walk
 * that turns one sample's JSON value into the values wk_infer_prepare takes. Not for use
 * outside launch/serve/codec*.c, tfs.c and v2.c. */
#ifndef PSTRAIN_SERVE_CODEC_IMPL_H
#define PSTRAIN_SERVE_CODEC_IMPL_H

#include "launch/serve/codec.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* --- an output buffer (malloc'ed; the pst_ allocators abort when out of memory) --- */

typedef struct sv_buf {
    char *p;
    size_t len, cap;
} sv_buf;

/* Room for more bytes after len (grows by doubling). */
void sv_buf_reserve(sv_buf *b, size_t more);
void sv_buf_put(sv_buf *b, const void *s, size_t n);
void sv_buf_puts(sv_buf *b, const char *s);
void sv_buf_printf(sv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0, n) as a quoted JSON string: '"', '\\' and control bytes escaped, the rest as is. */
void sv_buf_str(sv_buf *b, const char *s, size_t n);
/* A finite float as %.9g (9 digits: parsed back as float32, the same bits). */
void sv_buf_float(sv_buf *b, float v);
/* p[0, n) in standard base64 with padding (RFC 4648, section 4). */
void sv_buf_b64(sv_buf *b, const void *p, size_t n);

/* Decodes base64 (standard alphabet, padding required, no whitespace) from s[0, n) into
 * out (room for n / 4 * 3 bytes); returns the bytes written, or -1 when s is not base64. */
long sv_b64_decode(const char *s, size_t n, unsigned char *out);

/* --- decoding --- */

enum { SV_MAX_RANK = 4 }; /* the deepest sample shape a request may give */

typedef struct sv_dec {
    const wk_infer *m;
    const wk_infer_sig *sig;
    sv_request *r;
    int max_samples;
    char *err;
    size_t errlen;
    void *scratch; /* one sample's values, as the input's dtype (malloc'ed) */
    size_t scratch_cap;
} sv_dec;

/* Writes a message into d->err (sanitised to one printable line) and returns status. */
int sv_fail(sv_dec *d, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* s[0, n) quoted for a message: at most 40 bytes, bytes outside printable ASCII as \xHH,
 * "..." when cut. Into buf (of len bytes); returns buf. */
const char *sv_quote(const char *s, size_t n, char *buf, size_t len);

/* The batch of n samples: 1 <= n <= max_samples (else 400 or 413 naming path), r->x
 * allocated. */
int sv_dec_batch(sv_dec *d, long long n, const char *path);

/* An array of room for count elements of type t in d->scratch. */
void *sv_dec_scratch(sv_dec *d, wk_dtype t, size_t count);

/* Sample i of input `input` from values (count of them, as the input's dtype): through
 * wk_infer_prepare into r->x; its refusal is prefixed with path. */
int sv_dec_prepare(sv_dec *d, int input, int i, const void *values, size_t count, const char *path);

/* Whether a sample of io may have shape dims[0, rank) (without the batch's): the signature's
 * shape; the same without its trailing 1s ((28, 28) for (28, 28, 1)); flat ((784)); a
 * scalar's () or (1); and, for an INT64 list (tokens), any length >= 1. */
int sv_shape_ok(const wk_infer_io *io, const int64_t *dims, int rank);
/* "(28, 28, 1), (28, 28) or (784)": the shapes sv_shape_ok accepts, into buf. */
const char *sv_shape_expect(const wk_infer_io *io, char *buf, size_t len);
/* "(28, 27)" (paren) or "[1, 28, 27]" (!paren) into buf. */
const char *sv_shape_str(const int64_t *dims, int rank, int paren, char *buf, size_t len);

/* The shape of a JSON value nested as arrays, read along first elements (up to
 * SV_MAX_RANK + 1 levels, so that a deeper value shows as too deep). Returns the rank. */
int sv_json_shape(const json_t *v, int64_t *dims);

/* One sample's numbers: v nested as dims[0, rank) (rank 0: v is the number), checked at
 * every level and leaf, into out (product of dims elements of type t: FP32, UINT8 or
 * INT64). path names v in messages ("instances[2]"). Returns 0 or 400. */
int sv_json_numbers(sv_dec *d, const json_t *v, wk_dtype t, const int64_t *dims, int rank,
                    void *out, const char *path);
/* Elements [start, start + count) of a flat JSON array of numbers into out; a message
 * names path[k] for element k. */
int sv_json_numbers_flat(sv_dec *d, const json_t *a, size_t start, size_t count, wk_dtype t,
                         void *out, const char *path);

/* "images" or "pixels" ("a" or "b" or "c" for three): the inputs' names, into buf. */
const char *sv_input_names(const wk_infer_sig *sig, char *buf, size_t len);
/* The index of input (or output when outputs) name in sig, or -1. */
int sv_sig_find(const wk_infer_sig *sig, int outputs, const char *name);

/* Elements per sample of io (product of its dims; 1 for a scalar). */
size_t sv_io_count(const wk_infer_io *io);

/* root dumped compact into a malloc'ed string (jansson allocates with malloc), *len its
 * bytes; root is released. NULL (and *len 0) when root is NULL or out of memory. */
char *sv_json_dump(json_t *root, size_t *len);

/* The protocols' halves (tfs.c, v2.c): root is the parsed JSON object. */
int sv_tfs_decode(sv_dec *d, json_t *root);
int sv_v2_decode(sv_dec *d, json_t *root, const char *bin, size_t binlen);
int sv_tfs_encode(const sv_request *r, const wk_infer *m, const float *y, sv_buf *b, char *err,
                  size_t errlen);
int sv_v2_encode(const sv_request *r, const wk_infer *m, const char *name, int64_t version,
                 const float *y, sv_buf *b, char *err, size_t errlen);

/* The PNG of output 0's sample i (a GAN's image, in [-1, 1]), appended as base64 to b.
 * Returns 0, or 500 with err. */
int sv_png_b64(const wk_infer *m, const float *y, int i, sv_buf *b, char *err, size_t errlen);

#endif
