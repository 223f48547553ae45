/* codec.c: see codec.h. What both protocols share: the parse (a refusal of the JSON itself
 * names the field it was in), the walk from a sample's JSON to wk_infer_prepare, the output
 * buffer, base64 and the error body. The protocols' own shapes are in tfs.c and v2.c. */
#include "launch/serve/codec_impl.h"

#include "engine/base/base.h"
#include "engine/json.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "v2's binary tensors are little-endian and are copied as they are");

/* --- the output buffer --- */

void sv_buf_reserve(sv_buf *b, size_t more) {
    if (b->cap - b->len >= more)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    b->p = pst_realloc(b->p, cap);
    b->cap = cap;
}

void sv_buf_put(sv_buf *b, const void *s, size_t n) {
    sv_buf_reserve(b, n + 1);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sv_buf_puts(sv_buf *b, const char *s) { sv_buf_put(b, s, strlen(s)); }

void sv_buf_printf(sv_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    PST_ASSERT(n >= 0, "vsnprintf failed on '%s'", fmt);
    sv_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sv_buf_str(sv_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    sv_buf_reserve(b, 6 * n + 3);
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

void sv_buf_float(sv_buf *b, float v) {
    sv_buf_reserve(b, 32);
    b->len += (size_t)snprintf(b->p + b->len, 32, "%.9g", (double)v);
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void sv_buf_b64(sv_buf *b, const void *p, size_t n) {
    const unsigned char *s = p;
    sv_buf_reserve(b, (n + 2) / 3 * 4 + 1);
    char *o = b->p + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        const unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long sv_b64_decode(const char *s, size_t n, unsigned char *out) {
    if (n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        const int last = i + 4 == n;
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = b64_value((unsigned char)s[i + k]);
        /* '=' only in the last group's last two places, and then with zero bits below. */
        if (v[0] < 0 || v[1] < 0)
            return -1;
        if (v[2] < 0 || v[3] < 0) {
            if (!last || s[i + 3] != '=' || (v[2] < 0 && s[i + 2] != '='))
                return -1;
            if (v[2] < 0) {
                if (v[1] & 15)
                    return -1;
                out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
            } else {
                if (v[2] & 3)
                    return -1;
                out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
                out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
            }
            break;
        }
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return (long)o;
}

/* --- messages --- */

/* Bytes outside printable ASCII become '?': a message is one line whatever came. */
static void sanitise(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

int sv_fail(sv_dec *d, int status, const char *fmt, ...) {
    if (d->err && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
        sanitise(d->err);
    }
    return status;
}

const char *sv_quote(const char *s, size_t n, char *buf, size_t len) {
    size_t o = 0;
    const size_t max = n < 40 ? n : 40;
    for (size_t i = 0; i < max && o + 8 < len; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
    }
    if (max < n && o + 4 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < len ? o : len - 1] = '\0';
    return buf;
}

/* The path of the JSON value at byte pos of s, s[0, pos) read as far as its brackets,
 * commas and strings: "instances[2][0]", "inputs[0].data"; "body" at the root. For the
 * messages of a text jansson refused (1e999, NaN, a bad token), which name no field. */
static void path_at(const char *s, size_t pos, char *out, size_t outlen) {
    enum { DEPTH = 16 };
    struct frame {
        char kind; /* '{' or '[' */
        size_t idx;
        const char *key;
        size_t keylen;
    } f[DEPTH];
    int depth = 0; /* may pass DEPTH: frames beyond it are counted, not kept */
    for (size_t i = 0; i < pos; i++) {
        const char c = s[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < pos && s[j] != '"')
                j += s[j] == '\\' ? 2 : 1;
            if (depth > 0 && depth <= DEPTH && f[depth - 1].kind == '{' && !f[depth - 1].key) {
                f[depth - 1].key = s + i + 1;
                f[depth - 1].keylen = (j < pos ? j : pos) - (i + 1);
            }
            i = j;
        } else if (c == '{' || c == '[') {
            if (depth < DEPTH)
                f[depth] = (struct frame){c, 0, NULL, 0};
            depth++;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        } else if (c == ',' && depth > 0 && depth <= DEPTH) {
            if (f[depth - 1].kind == '[')
                f[depth - 1].idx++;
            else
                f[depth - 1].key = NULL;
        }
    }
    size_t o = 0;
    out[0] = '\0';
    for (int k = 0; k < depth && k < DEPTH && o + 1 < outlen; k++) {
        if (f[k].kind == '[') {
            o += (size_t)snprintf(out + o, outlen - o, "[%zu]", f[k].idx);
        } else if (f[k].key) {
            char q[200];
            o += (size_t)snprintf(out + o, outlen - o, "%s%s", o ? "." : "",
                                  sv_quote(f[k].key, f[k].keylen, q, sizeof q));
        } else {
            break;
        }
    }
    if (depth > DEPTH && o + 1 < outlen)
        snprintf(out + o, outlen - o, "...");
    if (!out[0])
        snprintf(out, outlen, "body");
}

/* --- decoding helpers --- */

size_t sv_io_count(const wk_infer_io *io) {
    size_t n = 1;
    for (int k = 0; k < io->rank; k++)
        n *= (size_t)io->dims[k];
    return n;
}

int sv_dec_batch(sv_dec *d, long long n, const char *path) {
    if (n < 1)
        return sv_fail(d, 400, "%s: expected at least one sample, got none", path);
    if (n > d->max_samples)
        return sv_fail(d, 413, "%s: %lld samples, more than the %d a request may hold", path, n,
                       d->max_samples);
    d->r->n = (int)n;
    d->r->x = pst_malloc((size_t)n * d->sig->in_floats * sizeof(float));
    return 0;
}

void *sv_dec_scratch(sv_dec *d, wk_dtype t, size_t count) {
    const size_t size = t == WK_FP32 ? 4 : t == WK_INT64 ? 8 : 1;
    const size_t bytes = (count ? count : 1) * size;
    if (bytes > d->scratch_cap) {
        free(d->scratch);
        d->scratch = pst_malloc(bytes);
        d->scratch_cap = bytes;
    }
    return d->scratch;
}

int sv_dec_prepare(sv_dec *d, int input, int i, const void *values, size_t count,
                   const char *path) {
    char why[256];
    float *x = d->r->x + (size_t)i * d->sig->in_floats;
    if (wk_infer_prepare(d->m, input, values, count, x, why, sizeof why) != PST_OK)
        return sv_fail(d, 400, "%s: %s", path, why);
    return 0;
}

int sv_shape_ok(const wk_infer_io *io, const int64_t *dims, int rank) {
    if (io->rank == 0)
        return rank == 0 || (rank == 1 && dims[0] == 1);
    if (io->dtype == WK_INT64 && io->rank == 1) /* tokens: padded or cut by prepare */
        return rank == 1 && dims[0] >= 1;
    int exact = rank <= io->rank;
    for (int k = 0; exact && k < rank; k++)
        exact = dims[k] == io->dims[k];
    for (int k = rank; exact && k < io->rank; k++) /* (28, 28) for (28, 28, 1) */
        exact = io->dims[k] == 1;
    if (exact && rank >= 1)
        return 1;
    return rank == 1 && (size_t)dims[0] == sv_io_count(io); /* flat */
}

const char *sv_shape_str(const int64_t *dims, int rank, int paren, char *buf, size_t len) {
    size_t o = (size_t)snprintf(buf, len, "%c", paren ? '(' : '[');
    for (int k = 0; k < rank && o < len; k++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRId64, k ? ", " : "", dims[k]);
    if (o < len)
        snprintf(buf + o, len - o, "%c", paren ? ')' : ']');
    return buf;
}

const char *sv_shape_expect(const wk_infer_io *io, char *buf, size_t len) {
    if (io->rank == 0) {
        snprintf(buf, len, "() or (1)");
        return buf;
    }
    if (io->dtype == WK_INT64 && io->rank == 1) {
        snprintf(buf, len, "(L) for any length L >= 1");
        return buf;
    }
    /* The forms sv_shape_ok accepts, longest first: (28, 28, 1), (28, 28), (784). */
    char forms[SV_MAX_RANK + 2][64];
    int n = 0;
    for (int r = io->rank; r >= 1; r--) {
        if (r < io->rank && io->dims[r] != 1)
            break;
        sv_shape_str(io->dims, r, 1, forms[n++], sizeof forms[0]);
    }
    const int64_t flat = (int64_t)sv_io_count(io);
    if (io->rank > 1)
        sv_shape_str(&flat, 1, 1, forms[n++], sizeof forms[0]);
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s",
                              i == 0       ? ""
                              : i + 1 == n ? " or "
                                           : ", ",
                              forms[i]);
    return buf;
}

int sv_json_shape(const json_t *v, int64_t *dims) {
    int rank = 0;
    while (json_is_array(v) && rank <= SV_MAX_RANK) {
        dims[rank++] = (int64_t)json_array_size(v);
        if (json_array_size(v) == 0)
            break;
        v = json_array_get(v, 0);
    }
    return rank;
}

/* One number v as type t into out[k]; 0, or -1 with why. */
static int number(const json_t *v, wk_dtype t, void *out, size_t k, char *why, size_t wlen) {
    switch (t) {
    case WK_FP32:
        if (json_is_real(v)) {
            const double x = json_real_value(v);
            if (!(fabs(x) <= FLT_MAX)) {
                snprintf(why, wlen, "%.9g is out of FP32's range", x);
                return -1;
            }
            ((float *)out)[k] = (float)x;
            return 0;
        }
        if (json_is_integer(v)) {
            ((float *)out)[k] = (float)json_integer_value(v);
            return 0;
        }
        snprintf(why, wlen, "expected a number, got %s", eng_json_kind(v));
        return -1;
    case WK_UINT8:
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 255) {
            ((uint8_t *)out)[k] = (uint8_t)json_integer_value(v);
            return 0;
        }
        if (json_is_integer(v))
            snprintf(why, wlen, "expected an integer in [0, 255], got %lld",
                     (long long)json_integer_value(v));
        else if (json_is_real(v))
            snprintf(why, wlen, "expected an integer in [0, 255], got %.9g", json_real_value(v));
        else
            snprintf(why, wlen, "expected an integer in [0, 255], got %s", eng_json_kind(v));
        return -1;
    case WK_INT64:
        if (json_is_integer(v)) {
            ((int64_t *)out)[k] = (int64_t)json_integer_value(v);
            return 0;
        }
        if (json_is_real(v))
            snprintf(why, wlen, "expected an integer, got %.9g", json_real_value(v));
        else
            snprintf(why, wlen, "expected an integer, got %s", eng_json_kind(v));
        return -1;
    case WK_BYTES:
        break;
    }
    PST_ASSERT(0, "number() of dtype %d", (int)t);
    return -1;
}

typedef struct walk {
    sv_dec *d;
    wk_dtype t;
    const int64_t *dims;
    int rank;
    const char *path;
    size_t idx[SV_MAX_RANK + 1]; /* the index at each depth (rank <= SV_MAX_RANK) */
    void *out;
    size_t k;
    char why[200]; /* number()'s refusal */
} walk;

/* A refusal at depth: "path[i0]...[i(depth-1)]: " then fmt. Out of the hot loops' way. */
static int walk_fail(walk *w, int depth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noinline));

static int walk_fail(walk *w, int depth, const char *fmt, ...) {
    char p[300], msg[300];
    size_t o = (size_t)snprintf(p, sizeof p, "%s", w->path);
    for (int k = 0; k < depth && o < sizeof p; k++)
        o += (size_t)snprintf(p + o, sizeof p - o, "[%zu]", w->idx[k]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sv_fail(w->d, 400, "%s: %s", p, msg);
}

/* v, at depth (the arrays above it indexed in w->idx), must be an array of dims[depth]. */
static inline int walk_array(walk *w, const json_t *v, int depth) {
    const int64_t want = w->dims[depth];
    const char *what = depth + 1 == w->rank ? "values" : "arrays";
    if (!json_is_array(v))
        return walk_fail(w, depth, "expected an array of %" PRId64 " %s, got %s", want, what,
                         eng_json_kind(v));
    if ((int64_t)json_array_size(v) != want)
        return walk_fail(w, depth, "expected %" PRId64 " %s, got %zu", want, what,
                         json_array_size(v));
    return 0;
}

/* The innermost array v (at depth rank - 1): its numbers. The hot loop. */
static inline int walk_leaves(walk *w, const json_t *v, int depth) {
    const int rc = walk_array(w, v, depth);
    if (rc)
        return rc;
    const size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++, w->k++)
        if (number(json_array_get(v, i), w->t, w->out, w->k, w->why, sizeof w->why) != 0) {
            w->idx[depth] = i;
            return walk_fail(w, depth + 1, "%s", w->why);
        }
    return 0;
}

static int walk_level(walk *w, const json_t *v, int depth) {
    if (depth >= SV_MAX_RANK ||
        depth >= w->rank) { /* a scalar sample (and GCC's bound) */ /* a scalar sample */
        if (number(v, w->t, w->out, w->k++, w->why, sizeof w->why) != 0)
            return walk_fail(w, depth, "%s", w->why);
        return 0;
    }
    if (depth + 1 == w->rank)
        return walk_leaves(w, v, depth);
    int rc = walk_array(w, v, depth);
    const size_t n = json_array_size(v);
    for (size_t i = 0; !rc && i < n; i++) {
        w->idx[depth] = i;
        /* (28, 28, 1): the rows' pixels without a call per pixel */
        rc = depth + 2 == w->rank ? walk_leaves(w, json_array_get(v, i), depth + 1)
                                  : walk_level(w, json_array_get(v, i), depth + 1);
    }
    return rc;
}

int sv_json_numbers(sv_dec *d, const json_t *v, wk_dtype t, const int64_t *dims, int rank,
                    void *out, const char *path) {
    PST_ASSERT(rank >= 0 && rank <= SV_MAX_RANK, "rank %d", rank);
    walk w = {.d = d, .t = t, .dims = dims, .rank = rank, .path = path, .out = out};
    return walk_level(&w, v, 0);
}

int sv_json_numbers_flat(sv_dec *d, const json_t *a, size_t start, size_t count, wk_dtype t,
                         void *out, const char *path) {
    char why[200];
    for (size_t i = 0; i < count; i++)
        if (number(json_array_get(a, start + i), t, out, i, why, sizeof why) != 0)
            return sv_fail(d, 400, "%s[%zu]: %s", path, start + i, why);
    return 0;
}

const char *sv_input_names(const wk_infer_sig *sig, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < sig->ninputs && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s\"%s\"",
                              i == 0                  ? ""
                              : i + 1 == sig->ninputs ? " or "
                                                      : ", ",
                              sig->inputs[i].name);
    return buf;
}

int sv_sig_find(const wk_infer_sig *sig, int outputs, const char *name) {
    const int n = outputs ? sig->noutputs : sig->ninputs;
    const wk_infer_io *io = outputs ? sig->outputs : sig->inputs;
    for (int i = 0; i < n; i++)
        if (strcmp(io[i].name, name) == 0)
            return i;
    return -1;
}

/* --- the public calls --- */

int sv_request_decode(sv_request *r, sv_proto proto, const char *body, size_t len, size_t json_len,
                      const wk_infer *m, int max_samples, char *err, size_t errlen) {
    PST_ASSERT(r && m && (body || len == 0) && max_samples >= 1, "r %p m %p body %p len %zu max %d",
               (void *)r, (const void *)m, (const void *)body, len, max_samples);
    memset(r, 0, sizeof *r);
    r->proto = proto;
    sv_dec d = {.m = m,
                .sig = wk_infer_signature(m),
                .r = r,
                .max_samples = max_samples,
                .err = err,
                .errlen = errlen};
    if (!body)
        body = "";
    size_t jl = len;
    if (json_len) {
        if (proto != SV_V2)
            return sv_fail(&d, 400,
                           "Inference-Header-Content-Length: only a v2 infer request carries "
                           "binary tensor data");
        if (json_len > len)
            return sv_fail(&d, 400,
                           "Inference-Header-Content-Length: %zu is more than the body's %zu "
                           "bytes",
                           json_len, len);
        jl = json_len;
    }
    json_error_t je;
    json_t *root = json_loadb(body, jl, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char path[300];
        const size_t pos = je.position > 0 && (size_t)je.position < jl ? (size_t)je.position : jl;
        path_at(body, pos, path, sizeof path);
        return sv_fail(&d, 400, "%s: malformed JSON: %s (byte %zu)", path, je.text, pos);
    }
    int rc;
    if (!json_is_object(root))
        rc = sv_fail(&d, 400, "body: expected a JSON object, got %s", eng_json_kind(root));
    else if (proto == SV_TFS)
        rc = sv_tfs_decode(&d, root);
    else
        rc = sv_v2_decode(&d, root, body + jl, len - jl);
    json_decref(root);
    free(d.scratch);
    if (rc) {
        sv_request_free(r);
        memset(r, 0, sizeof *r);
        r->proto = proto;
    }
    return rc;
}

void sv_request_free(sv_request *r) {
    if (!r)
        return;
    free(r->x);
    r->x = NULL;
    r->n = 0;
}

int sv_png_b64(const wk_infer *m, const float *y, int i, sv_buf *b, char *err, size_t errlen) {
    const wk_infer_sig *sig = wk_infer_signature(m);
    const wk_infer_io *o = &sig->outputs[0];
    PST_ASSERT(o->rank == 3 && o->dims[2] == 1, "png of output '%s' of rank %d", o->name, o->rank);
    void *png = NULL;
    size_t plen = 0;
    char why[256];
    if (wk_infer_png(y + (size_t)i * sig->out_floats, (int)o->dims[0], (int)o->dims[1], -1.0f, 1.0f,
                     &png, &plen, why, sizeof why) != PST_OK) {
        pst_err(err, errlen, PST_EIO, "png of sample %d: %s", i, why);
        return 500;
    }
    sv_buf_b64(b, png, plen);
    free(png);
    return 0;
}

int sv_response_encode(const sv_request *r, const wk_infer *m, const char *name, int64_t version,
                       const float *y, char **body, size_t *len, char *err, size_t errlen) {
    PST_ASSERT(r && m && y && body && len && r->n >= 1, "r %p m %p y %p n %d", (const void *)r,
               (const void *)m, (const void *)y, r ? r->n : -1);
    const wk_infer_sig *sig = wk_infer_signature(m);
    const size_t total = (size_t)r->n * sig->out_floats;
    for (size_t k = 0; k < total; k++)
        if (!isfinite(y[k])) {
            *body = NULL;
            *len = 0;
            pst_err(err, errlen, PST_EARG, "output %zu of sample %zu is %g: not finite",
                    k % sig->out_floats, k / sig->out_floats, (double)y[k]);
            return 500;
        }
    sv_buf b = {0};
    /* Room for every float at its longest ("-1.17549435e-38,"): one allocation, most often. */
    sv_buf_reserve(&b, total * 17 + 512);
    const int rc = r->proto == SV_TFS ? sv_tfs_encode(r, m, y, &b, err, errlen)
                                      : sv_v2_encode(r, m, name, version, y, &b, err, errlen);
    if (rc) {
        free(b.p);
        *body = NULL;
        *len = 0;
        return rc;
    }
    *body = b.p;
    *len = b.len;
    return 0;
}

size_t sv_response_binary_len(const sv_request *r, const wk_infer *m) {
    if (r->proto != SV_V2 || !(r->binary_out & 1u))
        return 0;
    return (size_t)r->n * wk_infer_signature(m)->out_floats * sizeof(float);
}

char *sv_json_dump(json_t *root, size_t *len) {
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (len)
        *len = s ? strlen(s) : 0;
    return s;
}

char *sv_error_body(const char *msg, size_t *len) {
    sv_buf b = {0};
    sv_buf_puts(&b, "{\"error\": ");
    sv_buf_str(&b, msg, strlen(msg));
    sv_buf_puts(&b, "}");
    if (len)
        *len = b.len;
    return b.p;
}
