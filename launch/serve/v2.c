/* v2.c: KServe's Open Inference Protocol v2 REST bodies (codec.h; kserve/open-inference-
 * protocol's inference_rest.md): an infer request of named, typed, shaped tensors, with the
 * binary tensor data extension (raw tensor bytes after the JSON, whose length
 * Inference-Header-Content-Length gives), its answer and the model metadata. */
#include "launch/serve/codec_impl.h"

#include "engine/base/base.h"
#include "engine/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t dtype_size(wk_dtype t) { return t == WK_FP32 ? 4 : t == WK_INT64 ? 8 : 1; }

/* A BYTES tensor's n elements from the binary extension's bytes: each a 4-byte little-endian
 * length, then its bytes; exactly len bytes in all. */
static int bytes_binary(sv_dec *d, int input, const unsigned char *p, size_t len, int n) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (len - off < 4)
            return sv_fail(d, 400,
                           "inputs[0].parameters.binary_data_size: element %d's length runs "
                           "past the tensor's %zu bytes",
                           i, len);
        const uint32_t k = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
                           (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
        off += 4;
        if (k > len - off)
            return sv_fail(d, 400,
                           "inputs[0].parameters.binary_data_size: element %d claims %" PRIu32
                           " bytes, %zu remain of the tensor's %zu",
                           i, k, len - off, len);
        char path[64];
        snprintf(path, sizeof path, "inputs[0] (binary element %d)", i);
        const int rc = sv_dec_prepare(d, input, i, p + off, k, path);
        if (rc)
            return rc;
        off += k;
    }
    if (off != len)
        return sv_fail(d, 400,
                       "inputs[0].parameters.binary_data_size: %zu bytes, but its %d elements "
                       "take %zu",
                       len, n, off);
    return 0;
}

/* A BYTES tensor's n elements from "data": strings, flat or each in a list of one (shape
 * [N, 1]). */
static int bytes_json(sv_dec *d, int input, const json_t *data, int n, const char *shape) {
    if (json_array_size(data) != (size_t)n)
        return sv_fail(d, 400, "inputs[0].data: expected %d strings (shape %s), got %zu", n, shape,
                       json_array_size(data));
    for (int i = 0; i < n; i++) {
        const json_t *s = json_array_get(data, (size_t)i);
        char path[64];
        snprintf(path, sizeof path, "inputs[0].data[%d]", i);
        if (json_is_array(s) && json_array_size(s) == 1) {
            s = json_array_get(s, 0);
            snprintf(path, sizeof path, "inputs[0].data[%d][0]", i);
        }
        if (!json_is_string(s))
            return sv_fail(d, 400, "%s: expected a string, got %s", path, eng_json_kind(s));
        const int rc =
            sv_dec_prepare(d, input, i, json_string_value(s), json_string_length(s), path);
        if (rc)
            return rc;
    }
    return 0;
}

/* The one input tensor, inputs[0]; *used: the binary bytes it took. */
static int tensor(sv_dec *d, const json_t *t, const unsigned char *bin, size_t binlen,
                  size_t *used) {
    const wk_infer_sig *sig = d->sig;
    char q[200], names[128], sh[160], want[128];
    *used = 0;
    if (!json_is_object(t))
        return sv_fail(d, 400,
                       "inputs[0]: expected an object {\"name\", \"shape\", \"datatype\", "
                       "\"data\"}, got %s",
                       eng_json_kind(t));
    const json_t *name = NULL, *shape = NULL, *dtype = NULL, *data = NULL, *params = NULL;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)t, key, v) {
        if (strcmp(key, "name") == 0)
            name = v;
        else if (strcmp(key, "shape") == 0)
            shape = v;
        else if (strcmp(key, "datatype") == 0)
            dtype = v;
        else if (strcmp(key, "data") == 0)
            data = v;
        else if (strcmp(key, "parameters") == 0)
            params = v;
        else
            return sv_fail(d, 400,
                           "inputs[0]: unknown field \"%s\" (an input tensor has \"name\", "
                           "\"shape\", \"datatype\", \"parameters\" and \"data\")",
                           sv_quote(key, strlen(key), q, sizeof q));
    }
    /* name */
    if (!json_is_string(name))
        return sv_fail(d, 400, "inputs[0].name: expected a string (%s), got %s",
                       sv_input_names(sig, names, sizeof names),
                       name ? eng_json_kind(name) : "nothing");
    const int input = sv_sig_find(sig, 0, json_string_value(name));
    if (input < 0)
        return sv_fail(d, 400, "inputs[0].name: unknown input \"%s\" (expected %s)",
                       sv_quote(json_string_value(name), json_string_length(name), q, sizeof q),
                       sv_input_names(sig, names, sizeof names));
    d->r->input = input;
    const wk_infer_io *io = &sig->inputs[input];
    /* datatype */
    if (!json_is_string(dtype) || strcmp(json_string_value(dtype), wk_dtype_name(io->dtype)) != 0)
        return sv_fail(d, 400, "inputs[0].datatype: expected \"%s\" for \"%s\", got %s%s%s",
                       wk_dtype_name(io->dtype), io->name, json_is_string(dtype) ? "\"" : "",
                       json_is_string(dtype) ? sv_quote(json_string_value(dtype),
                                                        json_string_length(dtype), q, sizeof q)
                       : dtype               ? eng_json_kind(dtype)
                                             : "nothing",
                       json_is_string(dtype) ? "\"" : "");
    /* shape: [N, sample dims...] */
    if (!json_is_array(shape) || json_array_size(shape) < 1 ||
        json_array_size(shape) > SV_MAX_RANK + 1)
        return sv_fail(d, 400,
                       "inputs[0].shape: expected a list of 1 to %d integers [N, ...], got %s",
                       SV_MAX_RANK + 1,
                       json_is_array(shape) ? "another length"
                       : shape              ? eng_json_kind(shape)
                                            : "nothing");
    int64_t dims[SV_MAX_RANK + 1];
    const int rank = (int)json_array_size(shape);
    for (int k = 0; k < rank; k++) {
        const json_t *e = json_array_get(shape, (size_t)k);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return sv_fail(d, 400, "inputs[0].shape[%d]: expected an integer >= 0, got %s", k,
                           eng_json_kind(e));
        dims[k] = (int64_t)json_integer_value(e);
    }
    sv_shape_str(dims, rank, 0, sh, sizeof sh);
    int rc = sv_dec_batch(d, (long long)dims[0], "inputs[0].shape[0]");
    if (rc)
        return rc;
    const int n = d->r->n;
    if (!sv_shape_ok(io, dims + 1, rank - 1))
        return sv_fail(d, 400,
                       "inputs[0].shape: expected [N] and a sample of \"%s\" of shape %s, got %s",
                       io->name, sv_shape_expect(io, want, sizeof want), sh);
    size_t count = 1; /* elements per sample (sv_shape_ok bounds all but a token list's) */
    for (int k = 1; k < rank; k++)
        count *= (size_t)dims[k];
    /* binary_data_size */
    const json_t *bds = NULL;
    if (params) {
        if (!json_is_object(params))
            return sv_fail(d, 400, "inputs[0].parameters: expected an object, got %s",
                           eng_json_kind(params));
        bds = json_object_get(params, "binary_data_size");
        if (bds && (!json_is_integer(bds) || json_integer_value(bds) < 0))
            return sv_fail(d, 400,
                           "inputs[0].parameters.binary_data_size: expected an integer >= 0, got "
                           "%s",
                           eng_json_kind(bds));
    }
    if (bds) {
        if (data)
            return sv_fail(d, 400,
                           "inputs[0].data: not allowed with parameters.binary_data_size (the "
                           "tensor's bytes follow the JSON)");
        const uint64_t size = (uint64_t)json_integer_value(bds);
        if (size > binlen)
            return sv_fail(d, 400,
                           "inputs[0].parameters.binary_data_size: %" PRIu64
                           " bytes, but %zu follow the JSON (whose length "
                           "Inference-Header-Content-Length gives)",
                           size, binlen);
        *used = (size_t)size;
        if (io->dtype == WK_BYTES)
            return bytes_binary(d, input, bin, (size_t)size, n);
        const size_t es = dtype_size(io->dtype);
        if (count > binlen || size != (uint64_t)n * count * es)
            return sv_fail(d, 400,
                           "inputs[0].parameters.binary_data_size: expected %s of %s: %" PRIu64
                           " bytes, got %" PRIu64,
                           sh, wk_dtype_name(io->dtype), (uint64_t)n * count * es, size);
        void *values = sv_dec_scratch(d, io->dtype, count);
        for (int i = 0; i < n; i++) {
            char path[64];
            memcpy(values, bin + (size_t)i * count * es, count * es); /* aligned, for prepare */
            snprintf(path, sizeof path, "inputs[0] (binary sample %d)", i);
            rc = sv_dec_prepare(d, input, i, values, count, path);
            if (rc)
                return rc;
        }
        return 0;
    }
    /* data */
    if (!data)
        return sv_fail(d, 400,
                       "inputs[0].data: missing (or parameters.binary_data_size with the bytes "
                       "after the JSON)");
    if (!json_is_array(data))
        return sv_fail(d, 400, "inputs[0].data: expected a list, got %s", eng_json_kind(data));
    if (io->dtype == WK_BYTES)
        return bytes_json(d, input, data, n, sh);
    const size_t got = json_array_size(data);
    char path[64];
    if (got > 0 && json_is_array(json_array_get(data, 0))) { /* nested as "shape" says */
        if (got != (size_t)n)
            return sv_fail(d, 400, "inputs[0].data: expected %d samples (shape %s), got %zu", n, sh,
                           got);
        /* A token list's claimed length is bounded by what the JSON can hold. */
        if (count > json_array_size(json_array_get(data, 0)) && rank == 2)
            return sv_fail(d, 400, "inputs[0].data[0]: expected %zu values (shape %s), got %zu",
                           count, sh, json_array_size(json_array_get(data, 0)));
        void *values = sv_dec_scratch(d, io->dtype, count);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "inputs[0].data[%d]", i);
            rc = sv_json_numbers(d, json_array_get(data, (size_t)i), io->dtype, dims + 1, rank - 1,
                                 values, path);
            if (!rc)
                rc = sv_dec_prepare(d, input, i, values, count, path);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (count > got || got != (size_t)n * count) /* flat, row-major */
        return sv_fail(d, 400, "inputs[0].data: expected %zu values (shape %s), got %zu",
                       count > got ? count : (size_t)n * count, sh, got);
    void *values = sv_dec_scratch(d, io->dtype, count);
    for (int i = 0; i < n; i++) {
        rc = sv_json_numbers_flat(d, data, (size_t)i * count, count, io->dtype, values,
                                  "inputs[0].data");
        if (!rc) {
            snprintf(path, sizeof path, "inputs[0].data (sample %d)", i);
            rc = sv_dec_prepare(d, input, i, values, count, path);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* "outputs": [{"name", "parameters"?: {"binary_data"?}}]: which outputs, which in binary. */
static int outputs(sv_dec *d, const json_t *a, int binary_all) {
    const wk_infer_sig *sig = d->sig;
    char q[200];
    unsigned asked = 0, binary = 0;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return sv_fail(d, 400, "outputs: expected a list of at least one {\"name\": ...}, got %s",
                       json_is_array(a) ? "an empty list" : eng_json_kind(a));
    for (size_t j = 0; j < json_array_size(a); j++) {
        const json_t *o = json_array_get(a, j), *name = NULL, *params = NULL;
        if (!json_is_object(o))
            return sv_fail(d, 400, "outputs[%zu]: expected an object {\"name\": ...}, got %s", j,
                           eng_json_kind(o));
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)o, key, v) {
            if (strcmp(key, "name") == 0)
                name = v;
            else if (strcmp(key, "parameters") == 0)
                params = v;
            else
                return sv_fail(d, 400,
                               "outputs[%zu]: unknown field \"%s\" (an output has \"name\" and "
                               "\"parameters\")",
                               j, sv_quote(key, strlen(key), q, sizeof q));
        }
        if (!json_is_string(name))
            return sv_fail(d, 400, "outputs[%zu].name: expected a string, got %s", j,
                           name ? eng_json_kind(name) : "nothing");
        const int k = sv_sig_find(sig, 1, json_string_value(name));
        if (k < 0) {
            char names[128];
            size_t o2 = 0;
            names[0] = '\0';
            for (int i = 0; i < sig->noutputs; i++)
                o2 += (size_t)snprintf(names + o2, sizeof names - o2, "%s\"%s\"", i ? " or " : "",
                                       sig->outputs[i].name);
            return sv_fail(d, 400, "outputs[%zu].name: unknown output \"%s\" (expected %s)", j,
                           sv_quote(json_string_value(name), json_string_length(name), q, sizeof q),
                           names);
        }
        if (asked & (1u << k))
            return sv_fail(d, 400, "outputs[%zu].name: \"%s\" asked for twice", j,
                           sig->outputs[k].name);
        asked |= 1u << k;
        int bin = binary_all && sig->outputs[k].dtype == WK_FP32;
        if (params) {
            if (!json_is_object(params))
                return sv_fail(d, 400, "outputs[%zu].parameters: expected an object, got %s", j,
                               eng_json_kind(params));
            const json_t *bd = json_object_get(params, "binary_data");
            if (bd && !json_is_boolean(bd))
                return sv_fail(d, 400,
                               "outputs[%zu].parameters.binary_data: expected true or false, got "
                               "%s",
                               j, eng_json_kind(bd));
            if (bd && json_is_true(bd) && sig->outputs[k].dtype != WK_FP32)
                return sv_fail(d, 400,
                               "outputs[%zu].parameters.binary_data: \"%s\" is answered in JSON "
                               "only (base64 strings)",
                               j, sig->outputs[k].name);
            if (bd)
                bin = json_is_true(bd);
            if (json_object_get(params, "classification"))
                return sv_fail(d, 400,
                               "outputs[%zu].parameters.classification: not supported (the "
                               "probabilities are answered whole)",
                               j);
        }
        if (bin)
            binary |= 1u << k;
    }
    const unsigned all = (1u << sig->noutputs) - 1;
    d->r->output = asked == all ? (sig->noutputs > 1 ? -1 : 0) : asked == 1u ? 0 : 1;
    d->r->binary_out = binary;
    return 0;
}

int sv_v2_decode(sv_dec *d, json_t *root, const char *bin, size_t binlen) {
    const wk_infer_sig *sig = d->sig;
    const json_t *inputs = NULL, *outs = NULL, *params = NULL;
    const char *key;
    json_t *v;
    char q[200], names[128];
    json_object_foreach(root, key, v) {
        if (strcmp(key, "id") == 0) {
            if (!json_is_string(v) || json_string_length(v) >= sizeof d->r->id)
                return sv_fail(d, 400, "id: expected a string of at most %zu bytes, got %s",
                               sizeof d->r->id - 1,
                               json_is_string(v) ? "a longer one" : eng_json_kind(v));
            memcpy(d->r->id, json_string_value(v), json_string_length(v) + 1);
        } else if (strcmp(key, "parameters") == 0) {
            if (!json_is_object(v))
                return sv_fail(d, 400, "parameters: expected an object, got %s", eng_json_kind(v));
            params = v;
        } else if (strcmp(key, "inputs") == 0) {
            inputs = v;
        } else if (strcmp(key, "outputs") == 0) {
            outs = v;
        } else {
            return sv_fail(d, 400,
                           "body: unknown field \"%s\" (an infer request has \"id\", "
                           "\"parameters\", \"inputs\" and \"outputs\")",
                           sv_quote(key, strlen(key), q, sizeof q));
        }
    }
    int binary_all = 0;
    const json_t *bo = params ? json_object_get(params, "binary_data_output") : NULL;
    if (bo) {
        if (!json_is_boolean(bo))
            return sv_fail(d, 400, "parameters.binary_data_output: expected true or false, got %s",
                           eng_json_kind(bo));
        binary_all = json_is_true(bo);
    }
    if (!inputs)
        return sv_fail(d, 400, "body: expected \"inputs\" (a list of one input tensor: %s)",
                       sv_input_names(sig, names, sizeof names));
    if (!json_is_array(inputs) || json_array_size(inputs) != 1)
        return sv_fail(d, 400, "inputs: expected a list of one input tensor (one of %s), got %s",
                       sv_input_names(sig, names, sizeof names),
                       !json_is_array(inputs)         ? eng_json_kind(inputs)
                       : json_array_size(inputs) == 0 ? "none"
                                                      : "several");
    size_t used = 0;
    int rc = tensor(d, json_array_get(inputs, 0), (const unsigned char *)bin, binlen, &used);
    if (rc)
        return rc;
    if (used != binlen)
        return sv_fail(d, 400,
                       "body: %zu bytes after the JSON that no input's "
                       "parameters.binary_data_size claims",
                       binlen - used);
    if (outs)
        return outputs(d, outs, binary_all);
    d->r->output = sig->noutputs > 1 ? -1 : 0;
    d->r->binary_out = binary_all ? 1u : 0u; /* outputs[0] is FP32; a GAN's png stays JSON */
    return 0;
}

/* Output k's tensor for r: its JSON, its data inline unless binary. */
static int output_json(const sv_request *r, const wk_infer *m, int k, const float *y, sv_buf *b,
                       char *err, size_t errlen) {
    const wk_infer_sig *sig = wk_infer_signature(m);
    const wk_infer_io *o = &sig->outputs[k];
    sv_buf_puts(b, "{\"name\": ");
    sv_buf_str(b, o->name, strlen(o->name));
    sv_buf_printf(b, ", \"datatype\": \"%s\", \"shape\": [%d", wk_dtype_name(o->dtype), r->n);
    for (int j = 0; j < o->rank; j++)
        sv_buf_printf(b, ", %" PRId64, o->dims[j]);
    sv_buf_puts(b, "]");
    const size_t total = (size_t)r->n * sig->out_floats;
    if (r->binary_out & (1u << k)) {
        sv_buf_printf(b, ", \"parameters\": {\"binary_data_size\": %zu}}", total * sizeof(float));
        return 0;
    }
    sv_buf_puts(b, ", \"data\": [");
    if (o->dtype == WK_BYTES) { /* the PNGs of output 0's images, in base64 */
        for (int i = 0; i < r->n; i++) {
            sv_buf_puts(b, i ? ",\"" : "\"");
            const int rc = sv_png_b64(m, y, i, b, err, errlen);
            if (rc)
                return rc;
            sv_buf_put(b, "\"", 1);
        }
    } else {
        for (size_t i = 0; i < total; i++) {
            if (i)
                sv_buf_put(b, ",", 1);
            sv_buf_float(b, y[i]);
        }
    }
    sv_buf_puts(b, "]}");
    return 0;
}

int sv_v2_encode(const sv_request *r, const wk_infer *m, const char *name, int64_t version,
                 const float *y, sv_buf *b, char *err, size_t errlen) {
    const wk_infer_sig *sig = wk_infer_signature(m);
    sv_buf_puts(b, "{\"model_name\": ");
    sv_buf_str(b, name, strlen(name));
    sv_buf_printf(b, ", \"model_version\": \"%" PRId64 "\"", version);
    if (r->id[0]) {
        sv_buf_puts(b, ", \"id\": ");
        sv_buf_str(b, r->id, strlen(r->id));
    }
    sv_buf_puts(b, ", \"outputs\": [");
    int first = 1;
    for (int k = 0; k < sig->noutputs; k++) {
        if (r->output != -1 && r->output != k)
            continue;
        if (!first)
            sv_buf_puts(b, ", ");
        first = 0;
        const int rc = output_json(r, m, k, y, b, err, errlen);
        if (rc)
            return rc;
    }
    sv_buf_puts(b, "]}");
    if (r->binary_out & 1u) /* output 0's floats as they are: little-endian float32 */
        sv_buf_put(b, y, (size_t)r->n * sig->out_floats * sizeof(float));
    return 0;
}

static json_t *metadata_tensor(const wk_infer_io *io) {
    json_t *shape = json_array();
    json_array_append_new(shape, json_integer(-1));
    const int variable = io->dtype == WK_INT64 && io->rank == 1; /* tokens: any length */
    for (int k = 0; k < io->rank; k++)
        json_array_append_new(shape, json_integer(variable ? -1 : (json_int_t)io->dims[k]));
    return json_pack("{s:s, s:s, s:o}", "name", io->name, "datatype", wk_dtype_name(io->dtype),
                     "shape", shape);
}

char *sv_v2_metadata(const wk_infer *m, const char *name, size_t *len) {
    const wk_infer_sig *sig = wk_infer_signature(m);
    char version[32];
    snprintf(version, sizeof version, "%" PRId64, sig->version);
    json_t *in = json_array(), *out = json_array();
    for (int i = 0; i < sig->ninputs; i++)
        json_array_append_new(in, metadata_tensor(&sig->inputs[i]));
    for (int i = 0; i < sig->noutputs; i++)
        json_array_append_new(out, metadata_tensor(&sig->outputs[i]));
    json_t *root = json_pack("{s:s, s:[s], s:s, s:o, s:o}", "name", name, "versions", version,
                             "platform", "pstrain", "inputs", in, "outputs", out);
    return sv_json_dump(root, len);
}
