/* test_codec.c: the REST bodies of `pstrain serve` (launch/serve/codec.h) on blank models
 * (wk_infer_blank): a valid request of each form and protocol for each model kind, its
 * samples prepared exactly as wk_infer_prepare prepares the same values; each bad request
 * answered with its status and a one-line message that starts with the field's path; the
 * answers parsed back by jansson with every float the same bits; the binary tensor extension
 * both ways; the status and metadata bodies' JSON shapes; the error body. */
#include "launch/serve/codec.h"
#include "launch/serve/codec_impl.h"

#include "engine/base/base.h"
#include "worker/infer.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

enum { MAXB = 8 };

static wk_infer *cnn, *imdb, *gan;

static int setup(void **state) {
    (void)state;
    char err[256] = "";
    cnn = wk_infer_blank("mnist_cnn", MAXB, 1, err, sizeof err);
    imdb = wk_infer_blank("imdb_lstm", MAXB, 1, err, sizeof err);
    gan = wk_infer_blank("mnist_gan", MAXB, 1, err, sizeof err);
    if (!cnn || !imdb || !gan)
        fail_msg("wk_infer_blank: %s", err);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    wk_infer_free(&cnn);
    wk_infer_free(&imdb);
    wk_infer_free(&gan);
    return 0;
}

/* --- building bodies --- */

/* An image's 784 values in [0, 1], exact as %.9g text. */
static void image(float *v, int seed) {
    for (int k = 0; k < 784; k++)
        v[k] = (float)((k * 7 + seed * 13) % 256) / 255.0f;
}

/* v (784) as JSON nested (28, 28, 1) (form 0), (28, 28) (1) or flat (2); row `short_row`
 * (when >= 0) one value short. */
static void put_image_cut(sv_buf *b, const float *v, int form, int short_row) {
    if (form == 2) {
        sv_buf_puts(b, "[");
        for (int k = 0; k < 784; k++) {
            sv_buf_puts(b, k ? "," : "");
            sv_buf_float(b, v[k]);
        }
        sv_buf_puts(b, "]");
        return;
    }
    sv_buf_puts(b, "[");
    for (int i = 0; i < 28; i++) {
        sv_buf_puts(b, i ? ",[" : "[");
        for (int j = 0; j < (i == short_row ? 27 : 28); j++) {
            sv_buf_puts(b, j ? "," : "");
            sv_buf_puts(b, form == 0 ? "[" : "");
            sv_buf_float(b, v[i * 28 + j]);
            sv_buf_puts(b, form == 0 ? "]" : "");
        }
        sv_buf_puts(b, "]");
    }
    sv_buf_puts(b, "]");
}

static void put_image(sv_buf *b, const float *v, int form) { put_image_cut(b, v, form, -1); }

static int decode(const wk_infer *m, sv_proto p, const char *body, size_t len, size_t jl,
                  sv_request *r, char *err, size_t errlen) {
    err[0] = '\0';
    return sv_request_decode(r, p, body, len, jl, m, MAXB, err, errlen);
}

/* Decodes body, which must succeed with n samples of input `input`. */
static void accept(const wk_infer *m, sv_proto p, const char *body, int n, int input,
                   sv_request *r) {
    char err[512];
    const int rc = decode(m, p, body, strlen(body), 0, r, err, sizeof err);
    if (rc != 0)
        fail_msg("refused (%d): %s\nbody: %.300s", rc, err, body);
    assert_int_equal(r->n, n);
    assert_int_equal(r->input, input);
    assert_non_null(r->x);
}

/* Sample i of r holds what wk_infer_prepare makes of values, bit for bit. */
static void same_as_prepare(const wk_infer *m, const sv_request *r, int i, const void *values,
                            size_t count) {
    const wk_infer_sig *sig = wk_infer_signature(m);
    float *want = malloc(sizeof(float) * sig->in_floats);
    char err[256];
    assert_int_equal(wk_infer_prepare(m, r->input, values, count, want, err, sizeof err), PST_OK);
    assert_memory_equal(r->x + (size_t)i * sig->in_floats, want, sizeof(float) * sig->in_floats);
    free(want);
}

/* Decodes body, which must be refused with status and a one-line message starting with
 * field (its path) and containing also (when not NULL). */
static void refuse(const wk_infer *m, sv_proto p, const char *body, size_t len, size_t jl,
                   int status, const char *field, const char *also) {
    char err[512];
    sv_request r;
    const int rc = decode(m, p, body, len, jl, &r, err, sizeof err);
    if (rc != status || strncmp(err, field, strlen(field)) != 0 || (also && !strstr(err, also)) ||
        strchr(err, '\n'))
        fail_msg("expected %d '%s...' (with '%s'), got %d '%s'\nbody: %.200s", status, field,
                 also ? also : "", rc, err, body);
    assert_null(r.x);
    assert_int_equal(r.n, 0);
    sv_request_free(&r);
}

static void refuse_s(const wk_infer *m, sv_proto p, const char *body, int status, const char *field,
                     const char *also) {
    refuse(m, p, body, strlen(body), 0, status, field, also);
}

/* --- valid requests --- */

static void tfs_images(void **state) {
    (void)state;
    float v[3][784];
    for (int form = 0; form < 3; form++) {
        sv_buf b = {0};
        sv_buf_puts(&b, "{\"signature_name\": \"serving_default\", \"instances\": [");
        for (int i = 0; i < 3; i++) {
            image(v[i], i + form);
            sv_buf_puts(&b, i ? "," : "");
            put_image(&b, v[i], form);
        }
        sv_buf_puts(&b, "]}");
        sv_request r;
        accept(cnn, SV_TFS, b.p, 3, 0, &r);
        assert_int_equal(r.columnar, 0);
        assert_int_equal(r.output, 0);
        for (int i = 0; i < 3; i++)
            same_as_prepare(cnn, &r, i, v[i], 784);
        sv_request_free(&r);
        free(b.p);
    }
    /* named pixels (uint8), row and columnar */
    uint8_t px[784];
    for (int k = 0; k < 784; k++)
        px[k] = (uint8_t)(k * 31);
    for (int columnar = 0; columnar < 2; columnar++) {
        sv_buf b = {0};
        sv_buf_puts(&b,
                    columnar ? "{\"inputs\": {\"pixels\": [[" : "{\"instances\": [{\"pixels\": [");
        for (int k = 0; k < 784; k++)
            sv_buf_printf(&b, "%s%d", k ? "," : "", px[k]);
        sv_buf_puts(&b, columnar ? "]]}}" : "]}]}");
        sv_request r;
        accept(cnn, SV_TFS, b.p, 1, 1, &r);
        assert_int_equal(r.columnar, columnar);
        assert_int_equal(r.named, 1);
        same_as_prepare(cnn, &r, 0, px, 784);
        sv_request_free(&r);
        free(b.p);
    }
    /* columnar, unnamed: the batch first */
    sv_buf b = {0};
    sv_buf_puts(&b, "{\"inputs\": [");
    put_image(&b, v[0], 1);
    sv_buf_puts(&b, ",");
    put_image(&b, v[1], 2);
    sv_buf_puts(&b, "]}");
    sv_request r;
    accept(cnn, SV_TFS, b.p, 2, 0, &r);
    assert_int_equal(r.columnar, 1);
    same_as_prepare(cnn, &r, 1, v[1], 784);
    sv_request_free(&r);
    free(b.p);
}

static void tfs_text_and_gan(void **state) {
    (void)state;
    sv_request r;
    const char *t0 = "a great movie", *t1 = "dull \"plot\"";
    accept(imdb, SV_TFS,
           "{\"instances\": [\"a great movie\", \"dull \\\"plot\\\"\", {\"b64\": "
           "\"YSBncmVhdCBtb3ZpZQ==\"}]}",
           3, 0, &r);
    same_as_prepare(imdb, &r, 0, t0, strlen(t0));
    same_as_prepare(imdb, &r, 1, t1, strlen(t1));
    same_as_prepare(imdb, &r, 2, t0, strlen(t0)); /* base64 of t0 */
    sv_request_free(&r);
    const int64_t tok[3] = {1, 2, 3};
    accept(imdb, SV_TFS, "{\"inputs\": {\"tokens\": [[1, 2, 3]]}}", 1, 1, &r);
    same_as_prepare(imdb, &r, 0, tok, 3);
    sv_request_free(&r);
    accept(imdb, SV_TFS, "{\"instances\": [[1, 2, 3]]}", 1, 1, &r); /* a list: tokens */
    same_as_prepare(imdb, &r, 0, tok, 3);
    sv_request_free(&r);
    /* GAN: seeds, z, and the png signature */
    const int64_t seed = 42;
    accept(gan, SV_TFS, "{\"signature_name\": \"png\", \"instances\": [42, 7]}", 2, 0, &r);
    assert_int_equal(r.output, 1);
    same_as_prepare(gan, &r, 0, &seed, 1);
    sv_request_free(&r);
    float z[100];
    sv_buf b = {0};
    sv_buf_puts(&b, "{\"instances\": [{\"z\": [");
    for (int k = 0; k < 100; k++) {
        z[k] = (float)(k - 50) / 7.0f;
        sv_buf_puts(&b, k ? "," : "");
        sv_buf_float(&b, z[k]);
    }
    sv_buf_puts(&b, "]}]}");
    accept(gan, SV_TFS, b.p, 1, 1, &r);
    assert_int_equal(r.output, 0);
    same_as_prepare(gan, &r, 0, z, 100);
    sv_request_free(&r);
    free(b.p);
}

static void v2_requests(void **state) {
    (void)state;
    float v[2][784];
    image(v[0], 1);
    image(v[1], 2);
    /* flat FP32 [2, 784], nested [1, 28, 28, 1], flat [1, 28, 28] */
    const char *shapes[] = {"[2, 784]", "[2, 28, 28, 1]", "[2, 28, 28]"};
    for (int s = 0; s < 3; s++) {
        for (int nestd = 0; nestd < 2; nestd++) {
            sv_buf b = {0};
            sv_buf_printf(&b,
                          "{\"id\": \"r-%d\", \"inputs\": [{\"name\": \"images\", \"shape\": %s, "
                          "\"datatype\": \"FP32\", \"data\": [",
                          s, shapes[s]);
            for (int i = 0; i < 2; i++) {
                sv_buf_puts(&b, i ? "," : "");
                if (nestd)
                    put_image(&b, v[i], s == 0 ? 2 : s == 1 ? 0 : 1);
                else
                    for (int k = 0; k < 784; k++) {
                        sv_buf_puts(&b, k ? "," : "");
                        sv_buf_float(&b, v[i][k]);
                    }
            }
            sv_buf_puts(&b, "]}]}");
            sv_request r;
            accept(cnn, SV_V2, b.p, 2, 0, &r);
            char id[8];
            snprintf(id, sizeof id, "r-%d", s);
            assert_string_equal(r.id, id);
            same_as_prepare(cnn, &r, 0, v[0], 784);
            same_as_prepare(cnn, &r, 1, v[1], 784);
            sv_request_free(&r);
            free(b.p);
        }
    }
    sv_request r;
    const char *t = "what a film";
    accept(imdb, SV_V2,
           "{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", "
           "\"data\": [\"what a film\"]}]}",
           1, 0, &r);
    same_as_prepare(imdb, &r, 0, t, strlen(t));
    sv_request_free(&r);
    const int64_t tok[5] = {5, 4, 3, 2, 1};
    accept(imdb, SV_V2,
           "{\"inputs\": [{\"name\": \"tokens\", \"shape\": [1, 5], \"datatype\": \"INT64\", "
           "\"data\": [[5, 4, 3, 2, 1]]}]}",
           1, 1, &r);
    same_as_prepare(imdb, &r, 0, tok, 5);
    sv_request_free(&r);
    accept(gan, SV_V2,
           "{\"inputs\": [{\"name\": \"seed\", \"shape\": [2], \"datatype\": \"INT64\", "
           "\"data\": [3, 9]}], \"outputs\": [{\"name\": \"png\"}]}",
           2, 0, &r);
    assert_int_equal(r.output, 1);
    sv_request_free(&r);
    accept(gan, SV_V2,
           "{\"inputs\": [{\"name\": \"seed\", \"shape\": [1, 1], \"datatype\": \"INT64\", "
           "\"data\": [[3]]}], \"parameters\": {\"binary_data_output\": true}}",
           1, 0, &r);
    assert_int_equal(r.output, -1); /* both outputs; the images in binary, the png in JSON */
    assert_int_equal(r.binary_out, 1u);
    sv_request_free(&r);
}

/* v2's binary tensor extension: FP32, UINT8 and BYTES inputs after the JSON. */
static void v2_binary_in(void **state) {
    (void)state;
    float v[2][784];
    image(v[0], 3);
    image(v[1], 4);
    char json[256];
    const int jl =
        snprintf(json, sizeof json,
                 "{\"inputs\": [{\"name\": \"images\", \"shape\": [2, 28, 28, 1], "
                 "\"datatype\": \"FP32\", \"parameters\": {\"binary_data_size\": %zu}}]}",
                 sizeof v);
    char *body = malloc((size_t)jl + sizeof v);
    memcpy(body, json, (size_t)jl);
    memcpy(body + jl, v, sizeof v); /* at any offset: the decoder copies, never casts */
    sv_request r;
    char err[512];
    if (decode(cnn, SV_V2, body, (size_t)jl + sizeof v, (size_t)jl, &r, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(r.n, 2);
    same_as_prepare(cnn, &r, 1, v[1], 784);
    sv_request_free(&r);
    /* a byte too many, a byte too few, no header */
    refuse(cnn, SV_V2, body, (size_t)jl + sizeof v - 1, (size_t)jl, 400,
           "inputs[0].parameters.binary_data_size", "follow the JSON");
    refuse(cnn, SV_V2, body, (size_t)jl + sizeof v, 0, 400, "body", "malformed JSON");
    free(body);

    uint8_t px[784];
    for (int k = 0; k < 784; k++)
        px[k] = (uint8_t)(255 - k % 256);
    const int jl2 = snprintf(json, sizeof json,
                             "{\"inputs\": [{\"name\": \"pixels\", \"shape\": [1, 784], "
                             "\"datatype\": \"UINT8\", \"parameters\": {\"binary_data_size\": "
                             "784}}]}");
    body = malloc((size_t)jl2 + 785);
    memcpy(body, json, (size_t)jl2);
    memcpy(body + jl2, px, 784);
    if (decode(cnn, SV_V2, body, (size_t)jl2 + 784, (size_t)jl2, &r, err, sizeof err) != 0)
        fail_msg("%s", err);
    same_as_prepare(cnn, &r, 0, px, 784);
    sv_request_free(&r);
    body[jl2 + 784] = 'x';
    refuse(cnn, SV_V2, body, (size_t)jl2 + 785, (size_t)jl2, 400, "body", "after the JSON");
    refuse(cnn, SV_V2, body, (size_t)jl2 + 784, (size_t)jl2 + 785, 400,
           "Inference-Header-Content-Length", "more than");
    free(body);

    /* BYTES: a 4-byte little-endian length, then the bytes, per element */
    const char *t = "good";
    const int jl3 = snprintf(json, sizeof json,
                             "{\"inputs\": [{\"name\": \"text\", \"shape\": [2], \"datatype\": "
                             "\"BYTES\", \"parameters\": {\"binary_data_size\": 14}}]}");
    body = malloc((size_t)jl3 + 14);
    memcpy(body, json, (size_t)jl3);
    memcpy(body + jl3, "\x04\0\0\0good\x02\0\0\0ok", 14);
    if (decode(imdb, SV_V2, body, (size_t)jl3 + 14, (size_t)jl3, &r, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(r.n, 2);
    same_as_prepare(imdb, &r, 0, t, 4);
    same_as_prepare(imdb, &r, 1, "ok", 2);
    sv_request_free(&r);
    body[jl3 + 8] = 9; /* the second element claims 9 bytes */
    refuse(imdb, SV_V2, body, (size_t)jl3 + 14, (size_t)jl3, 400,
           "inputs[0].parameters.binary_data_size", "element 1 claims 9");
    free(body);
}

/* --- bad requests --- */

static void bad_json(void **state) {
    (void)state;
    refuse_s(cnn, SV_TFS, "{\"instances\": [[0.5, 0.25", 400, "instances[0]", "malformed JSON");
    refuse_s(cnn, SV_TFS, "{\"instances\": [[0.5, NaN]]}", 400, "instances[0]", "malformed JSON");
    refuse_s(cnn, SV_TFS, "{\"instances\": [[0.5], [1e999]]}", 400, "instances[1]",
             "real number overflow");
    refuse_s(gan, SV_V2,
             "{\"inputs\": [{\"name\": \"seed\", \"shape\": [1], \"datatype\": \"INT64\", "
             "\"data\": [99999999999999999999]}]}",
             400, "inputs[0].data", "too big");
    refuse_s(cnn, SV_TFS, "{\"instances\": [1], \"instances\": [2]}", 400, "instances",
             "duplicate");
    refuse_s(cnn, SV_TFS, "[1, 2]", 400, "body", "expected a JSON object");
    refuse_s(cnn, SV_TFS, "", 400, "body", "malformed JSON");
    refuse_s(cnn, SV_TFS, "{\"instances\": [\"NaN\"]}", 400, "instances[0]", "got a string");
}

static void bad_tfs(void **state) {
    (void)state;
    sv_buf b = {0};
    float v[784];
    image(v, 0);
    /* 783 values; a (28, 28) image with a short row; a value out of [0, 1]; a string */
    sv_buf_puts(&b, "{\"instances\": [");
    put_image(&b, v, 2);
    sv_buf_puts(&b, ",[0.5]]}");
    refuse_s(cnn, SV_TFS, b.p, 400, "instances[1]:", "(28, 28, 1), (28, 28) or (784)");
    b.len = 0;
    sv_buf_puts(&b, "{\"instances\": [");
    put_image_cut(&b, v, 1, 5);
    sv_buf_puts(&b, "]}");
    refuse_s(cnn, SV_TFS, b.p, 400, "instances[0][5]:", "expected 28 values, got 27");
    b.len = 0;
    v[17] = 1.5f;
    sv_buf_puts(&b, "{\"instances\": [");
    put_image(&b, v, 2);
    sv_buf_puts(&b, "]}");
    refuse_s(cnn, SV_TFS, b.p, 400, "instances[0]:", "value 17 is 1.5");
    v[17] = 0.5f;
    b.len = 0;
    sv_buf_puts(&b, "{\"instances\": [{\"pixels\": [");
    for (int k = 0; k < 784; k++)
        sv_buf_printf(&b, "%s%d", k ? "," : "", k == 3 ? 256 : 1);
    sv_buf_puts(&b, "]}]}");
    refuse_s(cnn, SV_TFS, b.p, 400, "instances[0].pixels[3]:", "[0, 255], got 256");
    b.len = 0; /* a z of 100 values, one past FP32's range; another with a string */
    sv_buf_puts(&b, "{\"instances\": [[");
    for (int k = 0; k < 100; k++)
        sv_buf_puts(&b, k == 0 ? "1e39" : ",0.5");
    sv_buf_puts(&b, "]]}");
    refuse_s(gan, SV_TFS, b.p, 400, "instances[0][0]", "out of FP32's range");
    b.len = 0;
    sv_buf_puts(&b, "{\"inputs\": [{\"name\": \"z\", \"shape\": [1, 100], \"datatype\": "
                    "\"FP32\", \"data\": [");
    for (int k = 0; k < 100; k++)
        sv_buf_puts(&b, k == 99 ? "\"Infinity\"" : "0.5,");
    sv_buf_puts(&b, "]}]}");
    refuse_s(gan, SV_V2, b.p, 400, "inputs[0].data[99]", "expected a number, got a string");
    free(b.p);

    refuse_s(cnn, SV_TFS, "{\"instances\": [[0.5]], \"inputs\": [[0.5]]}", 400, "body", "not both");
    refuse_s(cnn, SV_TFS, "{\"signature_name\": \"serving_default\"}", 400, "body",
             "\"instances\"");
    refuse_s(cnn, SV_TFS, "{\"instances\": []}", 400, "instances", "at least one");
    refuse_s(cnn, SV_TFS, "{\"instances\": [1,2,3,4,5,6,7,8,9]}", 413, "instances", "9 samples");
    refuse_s(cnn, SV_TFS, "{\"instances\": [{\"image\": [0.5]}]}", 400, "instances[0]",
             "unknown input \"image\"");
    refuse_s(cnn, SV_TFS, "{\"instances\": [[0.5]], \"extra\": 1}", 400, "body",
             "unknown field \"extra\"");
    refuse_s(cnn, SV_TFS, "{\"signature_name\": \"png\", \"instances\": [[0.5]]}", 400,
             "signature_name", "\"serving_default\", got \"png\"");
    refuse_s(cnn, SV_TFS, "{\"instances\": [3]}", 400, "instances[0]", "a list (\"images\")");
    refuse_s(imdb, SV_TFS, "{\"instances\": [3]}", 400, "instances[0]", "a string");
    refuse_s(imdb, SV_TFS, "{\"instances\": [{\"b64\": \"a=b\"}]}", 400, "instances[0].b64",
             "base64");
    refuse_s(imdb, SV_TFS, "{\"instances\": [\"ok\", [1, 2]]}", 400, "instances[1]",
             "expected a string");
    refuse_s(imdb, SV_TFS, "{\"instances\": [[1, 2.5]]}", 400, "instances[0][1]",
             "expected an integer");
    refuse_s(imdb, SV_TFS, "{\"inputs\": {\"tokens\": [[1, -2]]}}", 400, "inputs.tokens[0]",
             "value 1 is -2");
    refuse_s(gan, SV_TFS, "{\"instances\": [{\"seed\": 1}, {\"z\": [1]}]}", 400, "instances[1]",
             "the one field \"seed\"");
    refuse_s(gan, SV_TFS, "{\"inputs\": 5}", 400, "inputs", "a list of samples");
}

/* One input tensor of these fields. */
#define IN(fields) "{\"inputs\": [{" fields "}]}"

static void bad_v2(void **state) {
    (void)state;
    refuse_s(cnn, SV_V2,
             IN("\"name\": \"images\", \"shape\": [1, 784], \"datatype\": \"FP64\", \"data\": []"),
             400, "inputs[0].datatype", "expected \"FP32\" for \"images\", got \"FP64\"");
    refuse_s(cnn, SV_V2,
             IN("\"name\": \"images\", \"shape\": [1, 783], \"datatype\": \"FP32\", \"data\": []"),
             400, "inputs[0].shape", "got [1, 783]");
    refuse_s(cnn, SV_V2,
             IN("\"name\": \"images\", \"shape\": [1, 784], \"datatype\": \"FP32\", \"data\": "
                "[0.5, 0.5]"),
             400, "inputs[0].data", "expected 784 values (shape [1, 784]), got 2");
    refuse_s(cnn, SV_V2,
             IN("\"name\": \"images\", \"shape\": [9, 784], \"datatype\": \"FP32\", \"data\": []"),
             413, "inputs[0].shape[0]", "9 samples");
    refuse_s(cnn, SV_V2,
             IN("\"name\": \"images\", \"shape\": [0, 784], \"datatype\": \"FP32\", \"data\": []"),
             400, "inputs[0].shape[0]", "at least one");
    refuse_s(cnn, SV_V2,
             IN("\"name\": \"images\", \"shape\": [1, -784], \"datatype\": \"FP32\", \"data\": "
                "[]"),
             400, "inputs[0].shape[1]", ">= 0");
    refuse_s(cnn, SV_V2, IN("\"name\": \"img\", \"shape\": [1], \"datatype\": \"FP32\""), 400,
             "inputs[0].name", "unknown input \"img\"");
    refuse_s(cnn, SV_V2,
             IN("\"name\": \"images\", \"shape\": [1, 784], \"datatype\": \"FP32\", \"dta\": []"),
             400, "inputs[0]", "unknown field \"dta\"");
    refuse_s(cnn, SV_V2, IN("\"name\": \"images\", \"shape\": [1, 784], \"datatype\": \"FP32\""),
             400, "inputs[0].data", "missing");
    refuse_s(cnn, SV_V2, "{\"inputs\": []}", 400, "inputs", "got none");
    refuse_s(cnn, SV_V2, "{\"inputs\": [{}, {}]}", 400, "inputs", "got several");
    refuse_s(cnn, SV_V2, "{\"id\": 5, \"inputs\": []}", 400, "id", "a string");
    refuse_s(cnn, SV_V2, "{}", 400, "body", "\"inputs\"");
    refuse_s(imdb, SV_V2,
             IN("\"name\": \"text\", \"shape\": [2], \"datatype\": \"BYTES\", \"data\": [\"a\", "
                "7]"),
             400, "inputs[0].data[1]", "expected a string, got an integer");
    refuse_s(imdb, SV_V2,
             IN("\"name\": \"tokens\", \"shape\": [1, 3], \"datatype\": \"INT64\", \"data\": [1, "
                "2, 99999]"),
             400, "inputs[0].data (sample 0)", "value 2 is 99999");
    refuse_s(imdb, SV_V2,
             IN("\"name\": \"tokens\", \"shape\": [1, 1000000000000], \"datatype\": \"INT64\", "
                "\"data\": [[1]]"),
             400, "inputs[0].data[0]", "expected 1000000000000 values");
    refuse_s(gan, SV_V2,
             "{\"inputs\": [{\"name\": \"seed\", \"shape\": [1], \"datatype\": \"INT64\", "
             "\"data\": [1]}], \"outputs\": [{\"name\": \"png\"}, {\"name\": \"png\"}]}",
             400, "outputs[1].name", "twice");
    refuse_s(gan, SV_V2,
             "{\"inputs\": [{\"name\": \"seed\", \"shape\": [1], \"datatype\": \"INT64\", "
             "\"data\": [1]}], \"outputs\": [{\"name\": \"png\", \"parameters\": "
             "{\"binary_data\": true}}]}",
             400, "outputs[0].parameters.binary_data", "JSON only");
    refuse_s(gan, SV_V2,
             "{\"inputs\": [{\"name\": \"z\", \"shape\": [1, 100], \"datatype\": \"FP32\", "
             "\"data\": [[0.5]]}]}",
             400, "inputs[0].data[0]", "expected 100 values");
    refuse_s(gan, SV_V2,
             "{\"inputs\": [{\"name\": \"seed\", \"shape\": [1], \"datatype\": \"INT64\", "
             "\"data\": [1]}], \"parameters\": {\"binary_data_output\": 1}}",
             400, "parameters.binary_data_output", "true or false");
    refuse(gan, SV_TFS, "{\"instances\": [1]}", 18, 4, 400, "Inference-Header-Content-Length",
           "v2");
}
#undef IN

/* --- answers --- */

/* The float a JSON number holds, as float32 (the way a client reads FP32 back). */
static float as_float(const json_t *v) {
    assert_true(json_is_number(v));
    return (float)json_number_value(v);
}

static void same_bits(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    if (x != y)
        fail_msg("%.9g (0x%08x) came back as %.9g (0x%08x)", (double)a, x, (double)b, y);
}

/* n samples of out floats: every kind of float (tiny, huge, negative, subnormal), finite. */
static float *outputs(int n, size_t out, uint32_t seed) {
    float *y = malloc(sizeof(float) * (size_t)n * out);
    uint32_t s = seed;
    for (size_t k = 0; k < (size_t)n * out; k++) {
        do {
            s = s * 1664525u + 1013904223u;
            memcpy(&y[k], &s, 4);
        } while (!isfinite(y[k]));
    }
    return y;
}

static json_t *parse(const char *body, size_t len) {
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j)
        fail_msg("the answer does not parse: %s at %d: %.200s", je.text, je.position, body);
    return j;
}

static void encode_tfs(void **state) {
    (void)state;
    enum { N = 500 }; /* 5000 floats of every kind */
    sv_request r = {.proto = SV_TFS, .n = N};
    float *y = outputs(N, 10, 1);
    char *body, err[256];
    size_t len;
    for (int columnar = 0; columnar < 2; columnar++) {
        r.columnar = columnar;
        assert_int_equal(sv_response_encode(&r, cnn, "m", 3, y, &body, &len, err, sizeof err), 0);
        json_t *j = parse(body, len);
        const json_t *p = json_object_get(j, columnar ? "outputs" : "predictions");
        assert_int_equal(json_object_size(j), 1);
        assert_int_equal(json_array_size(p), N);
        for (int i = 0; i < N; i++) {
            const json_t *s = json_array_get(p, (size_t)i);
            assert_int_equal(json_array_size(s), 10);
            for (int k = 0; k < 10; k++)
                same_bits(y[i * 10 + k], as_float(json_array_get(s, (size_t)k)));
        }
        json_decref(j);
        free(body);
    }
    free(y);
    /* imdb: one probability per sample, as [p] */
    y = outputs(2, 1, 2);
    r.n = 2;
    r.columnar = 0;
    assert_int_equal(sv_response_encode(&r, imdb, "m", 3, y, &body, &len, err, sizeof err), 0);
    json_t *j = parse(body, len);
    same_bits(y[1],
              as_float(json_array_get(json_array_get(json_object_get(j, "predictions"), 1), 0)));
    json_decref(j);
    free(body);
    free(y);
    /* GAN: images nested (28, 28, 1); the png signature's {"b64": PNG} */
    y = malloc(sizeof(float) * 784 * 2);
    for (int k = 0; k < 784 * 2; k++)
        y[k] = (float)(k % 200) / 100.0f - 1.0f;
    assert_int_equal(sv_response_encode(&r, gan, "m", 3, y, &body, &len, err, sizeof err), 0);
    j = parse(body, len);
    const json_t *img = json_array_get(json_object_get(j, "predictions"), 1);
    assert_int_equal(json_array_size(img), 28);
    assert_int_equal(json_array_size(json_array_get(img, 27)), 28);
    same_bits(y[784 + 27 * 28 + 5],
              as_float(json_array_get(json_array_get(json_array_get(img, 27), 5), 0)));
    json_decref(j);
    free(body);
    r.output = 1;
    assert_int_equal(sv_response_encode(&r, gan, "m", 3, y, &body, &len, err, sizeof err), 0);
    j = parse(body, len);
    const json_t *b64 =
        json_object_get(json_array_get(json_object_get(j, "predictions"), 0), "b64");
    assert_true(json_is_string(b64));
    unsigned char *png = malloc(json_string_length(b64));
    const long plen = sv_b64_decode(json_string_value(b64), json_string_length(b64), png);
    assert_true(plen > 8);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    free(png);
    json_decref(j);
    free(body);
    /* a NaN output is a 500, not a body */
    y[3] = NAN;
    r.output = 0;
    body = (char *)1;
    assert_int_equal(sv_response_encode(&r, gan, "m", 3, y, &body, &len, err, sizeof err), 500);
    assert_null(body);
    free(y);
}

static void encode_v2(void **state) {
    (void)state;
    enum { N = 300 };
    sv_request r = {.proto = SV_V2, .n = N};
    snprintf(r.id, sizeof r.id, "req \"7\"");
    float *y = outputs(N, 10, 3);
    char *body, err[256];
    size_t len;
    assert_int_equal(sv_response_encode(&r, cnn, "mnist", 12, y, &body, &len, err, sizeof err), 0);
    assert_int_equal(sv_response_binary_len(&r, cnn), 0);
    json_t *j = parse(body, len);
    assert_string_equal(json_string_value(json_object_get(j, "model_name")), "mnist");
    assert_string_equal(json_string_value(json_object_get(j, "model_version")), "12");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "req \"7\"");
    const json_t *o = json_array_get(json_object_get(j, "outputs"), 0);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "probabilities");
    assert_string_equal(json_string_value(json_object_get(o, "datatype")), "FP32");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(o, "shape"), 0)), N);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(o, "shape"), 1)), 10);
    const json_t *data = json_object_get(o, "data");
    assert_int_equal(json_array_size(data), N * 10);
    for (size_t k = 0; k < N * 10; k++)
        same_bits(y[k], as_float(json_array_get(data, k)));
    json_decref(j);
    free(body);
    /* binary: the JSON, then the floats as they are */
    r.binary_out = 1;
    assert_int_equal(sv_response_encode(&r, cnn, "mnist", 12, y, &body, &len, err, sizeof err), 0);
    const size_t bl = sv_response_binary_len(&r, cnn);
    assert_int_equal(bl, N * 10 * 4);
    j = parse(body, len - bl);
    o = json_array_get(json_object_get(j, "outputs"), 0);
    assert_null(json_object_get(o, "data"));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(o, "parameters"), "binary_data_size")),
        N * 10 * 4);
    assert_memory_equal(body + len - bl, y, bl);
    json_decref(j);
    free(body);
    free(y);
    /* GAN, both outputs: images [n, 28, 28, 1] FP32 and png [n] BYTES in base64 */
    y = malloc(sizeof(float) * 784);
    for (int k = 0; k < 784; k++)
        y[k] = (float)(k % 200) / 100.0f - 1.0f;
    sv_request g = {.proto = SV_V2, .n = 1, .output = -1};
    assert_int_equal(sv_response_encode(&g, gan, "gan", 1, y, &body, &len, err, sizeof err), 0);
    j = parse(body, len);
    assert_null(json_object_get(j, "id"));
    const json_t *outs = json_object_get(j, "outputs");
    assert_int_equal(json_array_size(outs), 2);
    o = json_array_get(outs, 0);
    assert_int_equal(json_array_size(json_object_get(o, "shape")), 4);
    assert_int_equal(json_array_size(json_object_get(o, "data")), 784);
    o = json_array_get(outs, 1);
    assert_string_equal(json_string_value(json_object_get(o, "datatype")), "BYTES");
    assert_int_equal(json_array_size(json_object_get(o, "shape")), 1);
    assert_true(json_is_string(json_array_get(json_object_get(o, "data"), 0)));
    json_decref(j);
    free(body);
    free(y);
}

static void get_bodies(void **state) {
    (void)state;
    size_t len;
    char *s = sv_tfs_status(42, &len);
    json_t *j = parse(s, len);
    const json_t *v = json_array_get(json_object_get(j, "model_version_status"), 0);
    assert_string_equal(json_string_value(json_object_get(v, "version")), "42");
    assert_string_equal(json_string_value(json_object_get(v, "state")), "AVAILABLE");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "status"), "error_code")), "OK");
    json_decref(j);
    free(s);

    s = sv_tfs_metadata(gan, "gan", &len);
    j = parse(s, len);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "model_spec"), "name")), "gan");
    const json_t *defs = json_object_get(
        json_object_get(json_object_get(j, "metadata"), "signature_def"), "signature_def");
    const json_t *seed = json_object_get(
        json_object_get(json_object_get(defs, "serving_default"), "inputs"), "seed");
    assert_string_equal(json_string_value(json_object_get(seed, "dtype")), "DT_INT64");
    const json_t *png =
        json_object_get(json_object_get(json_object_get(defs, "png"), "outputs"), "png");
    assert_string_equal(json_string_value(json_object_get(png, "dtype")), "DT_STRING");
    json_decref(j);
    free(s);

    s = sv_tfs_metadata(cnn, "cnn", &len);
    j = parse(s, len);
    defs = json_object_get(json_object_get(json_object_get(j, "metadata"), "signature_def"),
                           "signature_def");
    assert_int_equal(json_object_size(defs), 1);
    const json_t *dims = json_object_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(defs, "serving_default"), "inputs"),
                            "images"),
            "tensor_shape"),
        "dim");
    assert_int_equal(json_array_size(dims), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dims, 0), "size")), "-1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(dims, 1), "size")), "28");
    json_decref(j);
    free(s);

    s = sv_v2_metadata(imdb, "imdb", &len);
    j = parse(s, len);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "imdb");
    assert_string_equal(json_string_value(json_object_get(j, "platform")), "pstrain");
    assert_true(json_is_string(json_array_get(json_object_get(j, "versions"), 0)));
    const json_t *in = json_object_get(j, "inputs");
    assert_int_equal(json_array_size(in), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(in, 0), "datatype")),
                        "BYTES");
    const json_t *shape = json_object_get(json_array_get(in, 1), "shape");
    assert_int_equal(json_array_size(shape), 2);
    assert_int_equal(json_integer_value(json_array_get(shape, 0)), -1);
    const json_t *out = json_array_get(json_object_get(j, "outputs"), 0);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "probability");
    json_decref(j);
    free(s);

    s = sv_error_body("instances[0]: \"x\"\\\n", &len);
    j = parse(s, len);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "instances[0]: \"x\"\\\n");
    json_decref(j);
    free(s);
}

static void base64(void **state) {
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        sv_buf b = {0};
        sv_buf_b64(&b, plain[i], strlen(plain[i]));
        assert_string_equal(b.p, coded[i]);
        unsigned char out[16];
        assert_int_equal(sv_b64_decode(coded[i], strlen(coded[i]), out), strlen(plain[i]));
        assert_memory_equal(out, plain[i], strlen(plain[i]));
        free(b.p);
    }
    unsigned char out[16];
    const char *bad[] = {"Zg=", "Z===", "Zh==", "Zm9=", "Zg==Zg==", "Zm 9", "Zm9v!A=="};
    for (int i = 0; i < 7; i++)
        if (sv_b64_decode(bad[i], strlen(bad[i]), out) != -1)
            fail_msg("'%s' decoded", bad[i]);
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Microseconds per decode of body (json_len jl): jansson's parse alone, and all of it. */
static void time_decode(const char *what, const char *body, size_t len, size_t jl) {
    enum { REPS = 200 };
    char err[256];
    sv_request r;
    double best_parse = 1e9, best_all = 1e9; /* the best of 5 rounds: a loaded machine */
    for (int round = 0; round < 5; round++) {
        const double t0 = now_us();
        for (int i = 0; i < REPS; i++)
            json_decref(json_loadb(body, jl ? jl : len, JSON_REJECT_DUPLICATES, NULL));
        const double t1 = now_us();
        for (int i = 0; i < REPS; i++) {
            assert_int_equal(sv_request_decode(&r, SV_TFS + (what[0] == 'v'), body, len, jl, cnn,
                                               MAXB, err, sizeof err),
                             0);
            sv_request_free(&r);
        }
        const double t2 = now_us();
        best_parse = (t1 - t0) / REPS < best_parse ? (t1 - t0) / REPS : best_parse;
        best_all = (t2 - t1) / REPS < best_all ? (t2 - t1) / REPS : best_all;
    }
    printf("decode of one 28x28 image, %-24s %6zu bytes: jansson %6.1f us, all %6.1f us\n", what,
           len, best_parse, best_all);
}

/* How long a single-image request takes to decode, beyond jansson's parse (printed; the
 * contract asks for a few microseconds per sample). */
static void speed(void **state) {
    (void)state;
    float v[784];
    image(v, 5);
    const char *forms[] = {"tfs (28, 28, 1)", "tfs (28, 28)", "tfs (784)"};
    for (int f = 0; f < 3; f++) {
        sv_buf b = {0};
        sv_buf_puts(&b, "{\"instances\": [");
        put_image(&b, v, f);
        sv_buf_puts(&b, "]}");
        time_decode(forms[f], b.p, b.len, 0);
        free(b.p);
    }
    sv_buf b = {0};
    sv_buf_puts(&b, "{\"inputs\": [{\"name\": \"images\", \"shape\": [1, 784], \"datatype\": "
                    "\"FP32\", \"data\": ");
    put_image(&b, v, 2);
    sv_buf_puts(&b, "}]}");
    time_decode("v2 [1, 784] JSON", b.p, b.len, 0);
    b.len = 0;
    sv_buf_printf(&b,
                  "{\"inputs\": [{\"name\": \"images\", \"shape\": [1, 784], \"datatype\": "
                  "\"FP32\", \"parameters\": {\"binary_data_size\": %zu}}]}",
                  sizeof v);
    const size_t jl = b.len;
    sv_buf_put(&b, v, sizeof v);
    time_decode("v2 [1, 784] binary", b.p, b.len, jl);
    free(b.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tfs_images),  cmocka_unit_test(tfs_text_and_gan),
        cmocka_unit_test(v2_requests), cmocka_unit_test(v2_binary_in),
        cmocka_unit_test(bad_json),    cmocka_unit_test(bad_tfs),
        cmocka_unit_test(bad_v2),      cmocka_unit_test(encode_tfs),
        cmocka_unit_test(encode_v2),   cmocka_unit_test(get_bodies),
        cmocka_unit_test(base64),      cmocka_unit_test(speed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
