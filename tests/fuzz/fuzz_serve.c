/* fuzz_serve.c: libFuzzer harness for `pstrain serve`'s request decoder and response encoder
 * (launch/serve/codec.h), the part of the server that reads a stranger's bytes.
 *
 * Input: byte 0 picks the protocol (bit 0: TF Serving's predict or KServe v2's infer) and the
 * model ((byte 0 >> 1) % 3: mnist_cnn, imdb_lstm, mnist_gan, blank: wk_infer_blank); byte 1
 * the v2 binary tail: 0 none (json_len 0, the body all JSON), else the body's last
 * (byte 1 - 1) * 16 bytes follow the JSON (json_len the rest; past the body when the tail is
 * longer than the body); the rest is the body. At most MAX_SAMPLES samples a request.
 *
 * Checks besides the sanitizers: a refusal is 400 or 413 with one non-empty printable line
 * naming a field (its path, "body" or the header) and an empty request, and its error body
 * parses back to that line; an accepted request holds 1..MAX_SAMPLES samples of finite
 * prepared inputs, and its answer (made from outputs in the model's range) parses back with
 * jansson: the JSON part (all but sv_response_binary_len bytes) an object holding one answer
 * per sample.
 *
 * Seeds: tests/fuzz/corpus/serve (valid and refused requests of each protocol and model, by
 * make_corpus). */
#include "engine/base/base.h"
#include "launch/serve/codec.h"
#include "tests/fuzz/fuzzutil.h"
#include "worker/infer.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SAMPLES = 4 };

static wk_infer *models[3];
static float *y; /* MAX_SAMPLES answers of the largest output */

static void init(void) {
    static const char *const names[3] = {"mnist_cnn", "imdb_lstm", "mnist_gan"};
    char err[256];
    size_t most = 0;
    for (int i = 0; i < 3; i++) {
        models[i] = wk_infer_blank(names[i], MAX_SAMPLES, 1, err, sizeof err);
        fz_check(models[i] != NULL, "wk_infer_blank(%s): %s", names[i], err);
        const size_t out = wk_infer_signature(models[i])->out_floats;
        most = out > most ? out : most;
    }
    y = malloc(sizeof(float) * MAX_SAMPLES * most);
    fz_check(y != NULL, "out of memory");
    for (size_t k = 0; k < MAX_SAMPLES * most; k++) /* in [-1, 1]: a GAN's image, a probability */
        y[k] = (float)((k * 37) % 201) / 100.0f - 1.0f;
}

static void check_refusal(int rc, const char *err, const sv_request *r) {
    fz_check(rc == 400 || rc == 413, "a refusal with status %d: '%s'", rc, err);
    fz_check(err[0] != '\0', "a refusal (%d) with an empty message", rc);
    for (const char *c = err; *c; c++)
        fz_check((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f,
                 "a refusal's message holds byte 0x%02x: '%s'", (unsigned char)*c, err);
    fz_check(strchr(err, ':') != NULL, "a refusal names no field: '%s'", err);
    fz_check(r->n == 0 && r->x == NULL, "a refused request holds %d samples", r->n);
    size_t len;
    char *body = sv_error_body(err, &len);
    json_t *j = json_loadb(body, len, 0, NULL);
    fz_check(j && json_is_string(json_object_get(j, "error")) &&
                 strcmp(json_string_value(json_object_get(j, "error")), err) == 0,
             "the error body does not parse back: %s", body);
    json_decref(j);
    free(body);
}

static void check_answer(const sv_request *r, const wk_infer *m) {
    const wk_infer_sig *sig = wk_infer_signature(m);
    fz_check(r->n >= 1 && r->n <= MAX_SAMPLES, "%d samples accepted", r->n);
    fz_check(r->input >= 0 && r->input < sig->ninputs, "input %d", r->input);
    for (size_t k = 0; k < (size_t)r->n * sig->in_floats; k++)
        fz_check(isfinite(r->x[k]), "prepared input %zu is %g", k, (double)r->x[k]);
    char *body = NULL, err[256] = "";
    size_t len = 0;
    const int rc = sv_response_encode(r, m, "fuzz", 7, y, &body, &len, err, sizeof err);
    fz_check(rc == 0 && body, "the answer failed (%d): %s", rc, err);
    const size_t bin = sv_response_binary_len(r, m);
    fz_check(bin < len, "binary part of %zu bytes in a body of %zu", bin, len);
    json_error_t je;
    json_t *j = json_loadb(body, len - bin, 0, &je);
    fz_check(j != NULL, "the answer does not parse: %s: %.200s", je.text, body);
    const json_t *a = r->proto == SV_V2  ? json_object_get(j, "outputs")
                      : r->columnar == 0 ? json_object_get(j, "predictions")
                                         : json_object_get(j, "outputs");
    fz_check(json_is_array(a), "the answer has no list of outputs: %.200s", body);
    if (r->proto == SV_TFS)
        fz_check(json_array_size(a) == (size_t)r->n, "%zu answers to %d samples",
                 json_array_size(a), r->n);
    else
        for (size_t i = 0; i < json_array_size(a); i++) {
            const json_t *shape = json_object_get(json_array_get(a, i), "shape");
            fz_check(json_integer_value(json_array_get(shape, 0)) == r->n,
                     "output %zu of shape[0] %lld for %d samples", i,
                     (long long)json_integer_value(json_array_get(shape, 0)), r->n);
        }
    json_decref(j);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!models[0])
        init();
    if (size < 2)
        return 0;
    const sv_proto proto = data[0] & 1 ? SV_V2 : SV_TFS;
    const wk_infer *m = models[(data[0] >> 1) % 3];
    const size_t len = size - 2, tail = data[1] ? (size_t)(data[1] - 1) * 16 : 0;
    const size_t json_len = !data[1] ? 0 : tail < len ? len - tail : len + 1;
    /* a copy of its own size, so that ASan sees a read past the body */
    char *body = malloc(len ? len : 1);
    fz_check(body != NULL, "out of memory");
    memcpy(body, data + 2, len);
    sv_request r;
    char err[512] = "";
    const int rc =
        sv_request_decode(&r, proto, body, len, json_len, m, MAX_SAMPLES, err, sizeof err);
    if (rc)
        check_refusal(rc, err, &r);
    else
        check_answer(&r, m);
    sv_request_free(&r);
    free(body);
    return 0;
}
