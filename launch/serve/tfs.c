/* tfs.c: TensorFlow Serving's REST bodies (codec.h; https://www.tensorflow.org/tfx/serving/
 * api_rest): a predict request in row ("instances") or columnar ("inputs") format and its
 * answer ("predictions" or "outputs"), the model status and the metadata (signature_def). */
#include "launch/serve/codec_impl.h"

#include "engine/base/base.h"
#include "engine/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"b64": "..."}: TFS's binary value (an object of that one string field). */
static int is_b64(const json_t *v) {
    return json_is_object(v) && json_object_size(v) == 1 &&
           json_is_string(json_object_get(v, "b64"));
}

/* The input a sample v is for when the request does not name it, judged by its form
 * (codec.h): a string is the BYTES input, a number the scalar one, a list the first other
 * with a shape. -1 when none fits. */
static int pick_input(const wk_infer_sig *sig, const json_t *v) {
    const int str = json_is_string(v) || is_b64(v) ||
                    (json_is_array(v) && json_array_size(v) == 1 &&
                     (json_is_string(json_array_get(v, 0)) || is_b64(json_array_get(v, 0))));
    for (int i = 0; i < sig->ninputs; i++) {
        const wk_infer_io *io = &sig->inputs[i];
        if (str || io->dtype == WK_BYTES) {
            if (str && io->dtype == WK_BYTES)
                return i;
            continue;
        }
        if (json_is_number(v) ? io->rank == 0 : json_is_array(v) && io->rank >= 1)
            return i;
    }
    return -1;
}

/* "a string (\"text\") or a list (\"tokens\")": the forms pick_input tells apart. */
static const char *forms(const wk_infer_sig *sig, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < sig->ninputs && o < len; i++) {
        const wk_infer_io *io = &sig->inputs[i];
        const int form = io->dtype == WK_BYTES ? 0 : io->rank == 0 ? 1 : 2;
        if (seen[form]++)
            continue;
        static const char *const what[] = {"a string or {\"b64\": ...}", "a number", "a list"};
        o += (size_t)snprintf(buf + o, len - o, "%s%s (\"%s\")", o ? " or " : "", what[form],
                              io->name);
    }
    return buf;
}

/* Sample i of input `input` from the JSON value v, named path in messages. */
static int sample(sv_dec *d, int input, const json_t *v, int i, const char *path) {
    const wk_infer_io *io = &d->sig->inputs[input];
    char p[300];
    if (io->dtype == WK_BYTES) {
        const json_t *s = v;
        if (json_is_array(v) && json_array_size(v) == 1) { /* shape (1) */
            s = json_array_get(v, 0);
            snprintf(p, sizeof p, "%s[0]", path);
            path = p;
        }
        if (json_is_string(s))
            return sv_dec_prepare(d, input, i, json_string_value(s), json_string_length(s), path);
        if (is_b64(s)) {
            const json_t *b = json_object_get(s, "b64");
            const size_t n = json_string_length(b);
            unsigned char *raw = sv_dec_scratch(d, WK_UINT8, n / 4 * 3 + 3);
            const long k = sv_b64_decode(json_string_value(b), n, raw);
            if (k < 0)
                return sv_fail(d, 400,
                               "%s.b64: expected base64 (RFC 4648, padded), got %zu bytes "
                               "that are not",
                               path, n);
            return sv_dec_prepare(d, input, i, raw, (size_t)k, path);
        }
        return sv_fail(d, 400, "%s: expected a string or {\"b64\": ...} for \"%s\", got %s", path,
                       io->name, eng_json_kind(s));
    }
    int64_t dims[SV_MAX_RANK + 1];
    const int rank = sv_json_shape(v, dims);
    if (!sv_shape_ok(io, dims, rank)) {
        char want[128], got[128];
        if (rank == 0)
            snprintf(got, sizeof got, "%s", eng_json_kind(v));
        else
            sv_shape_str(dims, rank, 1, got, sizeof got);
        return sv_fail(d, 400, "%s: expected a sample of \"%s\" of shape %s, got %s", path,
                       io->name, sv_shape_expect(io, want, sizeof want), got);
    }
    size_t count = 1;
    for (int k = 0; k < rank; k++)
        count *= (size_t)dims[k];
    void *values = sv_dec_scratch(d, io->dtype, count);
    const int rc = sv_json_numbers(d, v, io->dtype, dims, rank, values, path);
    return rc ? rc : sv_dec_prepare(d, input, i, values, count, path);
}

/* {"instances": [...]}: samples as values, or as objects of one named input each. */
static int rows(sv_dec *d, const json_t *a) {
    const wk_infer_sig *sig = d->sig;
    char p[300], names[128];
    if (!json_is_array(a))
        return sv_fail(d, 400, "instances: expected a list of instances, got %s", eng_json_kind(a));
    int rc = sv_dec_batch(d, (long long)json_array_size(a), "instances");
    if (rc)
        return rc;
    const json_t *first = json_array_get(a, 0);
    const char *key = NULL;
    int input;
    if (json_is_object(first) && !is_b64(first)) {
        d->r->named = 1;
        if (json_object_size(first) != 1)
            return sv_fail(d, 400,
                           "instances[0]: expected an object of one named input (%s), got %zu "
                           "fields",
                           sv_input_names(sig, names, sizeof names), json_object_size(first));
        key = json_object_iter_key(json_object_iter((json_t *)first));
        input = sv_sig_find(sig, 0, key);
        if (input < 0)
            return sv_fail(d, 400, "instances[0]: unknown input \"%s\" (expected %s)",
                           sv_quote(key, strlen(key), p, sizeof p),
                           sv_input_names(sig, names, sizeof names));
    } else {
        input = pick_input(sig, first);
        if (input < 0)
            return sv_fail(d, 400, "instances[0]: expected %s, got %s",
                           forms(sig, names, sizeof names), eng_json_kind(first));
    }
    d->r->input = input;
    for (int i = 0; i < d->r->n; i++) {
        const json_t *v = json_array_get(a, (size_t)i);
        if (key) {
            if (!json_is_object(v) || json_object_size(v) != 1 || !json_object_get(v, key))
                return sv_fail(d, 400,
                               "instances[%d]: expected an object with the one field \"%s\", as "
                               "instances[0], got %s",
                               i, key, json_is_object(v) ? "other fields" : eng_json_kind(v));
            v = json_object_get(v, key);
            snprintf(p, sizeof p, "instances[%d].%s", i, key);
        } else {
            if (json_is_object(v) && !is_b64(v))
                return sv_fail(
                    d, 400, "instances[%d]: expected a value, as instances[0], got an object", i);
            snprintf(p, sizeof p, "instances[%d]", i);
        }
        rc = sample(d, input, v, i, p);
        if (rc)
            return rc;
    }
    return 0;
}

/* {"inputs": tensor} or {"inputs": {"name": tensor}}: the batch dimension first. */
static int columns(sv_dec *d, const json_t *inputs) {
    const wk_infer_sig *sig = d->sig;
    char base[128], p[300], names[128];
    const json_t *t = inputs;
    int input = -1;
    snprintf(base, sizeof base, "inputs");
    if (json_is_object(inputs) && !is_b64(inputs)) {
        d->r->named = 1;
        if (json_object_size(inputs) != 1)
            return sv_fail(d, 400, "inputs: expected one named input (%s), got %zu fields",
                           sv_input_names(sig, names, sizeof names), json_object_size(inputs));
        const char *key = json_object_iter_key(json_object_iter((json_t *)inputs));
        input = sv_sig_find(sig, 0, key);
        if (input < 0)
            return sv_fail(d, 400, "inputs: unknown input \"%s\" (expected %s)",
                           sv_quote(key, strlen(key), p, sizeof p),
                           sv_input_names(sig, names, sizeof names));
        t = json_object_get(inputs, key);
        snprintf(base, sizeof base, "inputs.%s", key);
    }
    if (!json_is_array(t))
        return sv_fail(d, 400, "%s: expected a list of samples (the batch dimension first), got %s",
                       base, eng_json_kind(t));
    int rc = sv_dec_batch(d, (long long)json_array_size(t), base);
    if (rc)
        return rc;
    if (input < 0) {
        input = pick_input(sig, json_array_get(t, 0));
        if (input < 0)
            return sv_fail(d, 400, "inputs[0]: expected %s, got %s",
                           forms(sig, names, sizeof names), eng_json_kind(json_array_get(t, 0)));
    }
    d->r->input = input;
    for (int i = 0; i < d->r->n; i++) {
        snprintf(p, sizeof p, "%s[%d]", base, i);
        rc = sample(d, input, json_array_get(t, (size_t)i), i, p);
        if (rc)
            return rc;
    }
    return 0;
}

int sv_tfs_decode(sv_dec *d, json_t *root) {
    const wk_infer_sig *sig = d->sig;
    const json_t *instances = NULL, *inputs = NULL;
    const char *key;
    json_t *v;
    char q[200];
    json_object_foreach(root, key, v) {
        if (strcmp(key, "signature_name") == 0) {
            if (!json_is_string(v))
                return sv_fail(d, 400, "signature_name: expected a string, got %s",
                               eng_json_kind(v));
            const char *s = json_string_value(v);
            if (strcmp(s, "serving_default") == 0 || s[0] == '\0')
                d->r->output = 0;
            else if (strcmp(s, "png") == 0 && sig->noutputs > 1)
                d->r->output = 1;
            else
                return sv_fail(d, 400, "signature_name: expected \"serving_default\"%s, got \"%s\"",
                               sig->noutputs > 1 ? " or \"png\"" : "",
                               sv_quote(s, json_string_length(v), q, sizeof q));
        } else if (strcmp(key, "instances") == 0) {
            instances = v;
        } else if (strcmp(key, "inputs") == 0) {
            inputs = v;
        } else {
            return sv_fail(d, 400,
                           "body: unknown field \"%s\" (a predict request has \"signature_name\" "
                           "and \"instances\" or \"inputs\")",
                           sv_quote(key, strlen(key), q, sizeof q));
        }
    }
    if (instances && inputs)
        return sv_fail(d, 400, "body: expected \"instances\" or \"inputs\", not both");
    if (!instances && !inputs)
        return sv_fail(d, 400,
                       "body: expected \"instances\" (row format) or \"inputs\" (columnar)");
    if (instances)
        return rows(d, instances);
    d->r->columnar = 1;
    return columns(d, inputs);
}

/* y (one sample of output o) nested as o's shape: [a, b] for (2), [[a], [b]] for (2, 1). */
static void nested(sv_buf *b, const float *y, const int64_t *dims, int rank) {
    if (rank == 0) {
        sv_buf_float(b, y[0]);
        return;
    }
    size_t inner = 1;
    for (int k = 1; k < rank; k++)
        inner *= (size_t)dims[k];
    sv_buf_put(b, "[", 1);
    for (int64_t i = 0; i < dims[0]; i++) {
        if (i)
            sv_buf_put(b, ",", 1);
        if (rank == 1)
            sv_buf_float(b, y[i]);
        else
            nested(b, y + (size_t)i * inner, dims + 1, rank - 1);
    }
    sv_buf_put(b, "]", 1);
}

int sv_tfs_encode(const sv_request *r, const wk_infer *m, const float *y, sv_buf *b, char *err,
                  size_t errlen) {
    const wk_infer_sig *sig = wk_infer_signature(m);
    const wk_infer_io *o = &sig->outputs[0];
    sv_buf_puts(b, r->columnar ? "{\"outputs\": [" : "{\"predictions\": [");
    for (int i = 0; i < r->n; i++) {
        if (i)
            sv_buf_put(b, ",", 1);
        if (r->output == 1) {
            sv_buf_puts(b, "{\"b64\": \"");
            const int rc = sv_png_b64(m, y, i, b, err, errlen);
            if (rc)
                return rc;
            sv_buf_puts(b, "\"}");
        } else {
            nested(b, y + (size_t)i * sig->out_floats, o->dims, o->rank);
        }
    }
    sv_buf_puts(b, "]}");
    return 0;
}

char *sv_tfs_status(int64_t version, size_t *len) {
    sv_buf b = {0};
    sv_buf_printf(&b,
                  "{\"model_version_status\": [{\"version\": \"%" PRId64
                  "\", \"state\": \"AVAILABLE\", \"status\": {\"error_code\": \"OK\", "
                  "\"error_message\": \"\"}}]}",
                  version);
    if (len)
        *len = b.len;
    return b.p;
}

static const char *tf_dtype(wk_dtype t) {
    switch (t) {
    case WK_FP32:
        return "DT_FLOAT";
    case WK_UINT8:
        return "DT_UINT8";
    case WK_INT64:
        return "DT_INT64";
    case WK_BYTES:
        return "DT_STRING";
    }
    return "DT_INVALID";
}

/* A TensorInfo: {"dtype", "tensor_shape": {"dim": [{"size": "-1", "name": ""}, ...],
 * "unknown_rank": false}, "name"}; sizes are strings (proto3's JSON for int64). A variable
 * length (tokens) is -1 as the batch is. */
static json_t *tensor_info(const char *sig_name, const wk_infer_io *io) {
    json_t *dim = json_array();
    char s[32];
    json_array_append_new(dim, json_pack("{s:s, s:s}", "size", "-1", "name", ""));
    const int variable = io->dtype == WK_INT64 && io->rank == 1;
    for (int k = 0; k < io->rank; k++) {
        snprintf(s, sizeof s, "%" PRId64, variable ? (int64_t)-1 : io->dims[k]);
        json_array_append_new(dim, json_pack("{s:s, s:s}", "size", s, "name", ""));
    }
    char name[128];
    snprintf(name, sizeof name, "%s_%s:0", sig_name, io->name);
    return json_pack("{s:s, s:{s:o, s:b}, s:s}", "dtype", tf_dtype(io->dtype), "tensor_shape",
                     "dim", dim, "unknown_rank", 0, "name", name);
}

static json_t *signature_def(const wk_infer_sig *sig, const char *sig_name, int output) {
    json_t *in = json_object(), *out = json_object();
    for (int i = 0; i < sig->ninputs; i++)
        json_object_set_new(in, sig->inputs[i].name, tensor_info(sig_name, &sig->inputs[i]));
    json_object_set_new(out, sig->outputs[output].name,
                        tensor_info(sig_name, &sig->outputs[output]));
    return json_pack("{s:o, s:o, s:s}", "inputs", in, "outputs", out, "method_name",
                     "tensorflow/serving/predict");
}

char *sv_tfs_metadata(const wk_infer *m, const char *name, size_t *len) {
    const wk_infer_sig *sig = wk_infer_signature(m);
    char version[32];
    snprintf(version, sizeof version, "%" PRId64, sig->version);
    json_t *defs = json_object();
    json_object_set_new(defs, "serving_default", signature_def(sig, "serving_default", 0));
    if (sig->noutputs > 1)
        json_object_set_new(defs, "png", signature_def(sig, "png", 1));
    json_t *root = json_pack("{s:{s:s, s:s, s:s}, s:{s:{s:o, s:s}}}", "model_spec", "name", name,
                             "signature_name", "", "version", version, "metadata", "signature_def",
                             "signature_def", defs, "@type",
                             "type.googleapis.com/tensorflow.serving.SignatureDefMap");
    return sv_json_dump(root, len);
}
