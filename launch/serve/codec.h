/* codec.h: the bodies of `pstrain serve`'s two REST protocols, decoded and encoded, apart from
 * any socket (so that a fuzzer and unit tests reach all of it):
 *
 *   TensorFlow Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest):
 *     POST /v1/models/NAME[/versions/V]:predict  {"signature_name"?, "instances": [...]} (row
 *       format: answered {"predictions": [...]}) or {"inputs": ...} (columnar: answered
 *       {"outputs": ...}); a GAN's PNG is asked for with "signature_name": "png" and answered
 *       as {"b64": "..."} values.
 *     GET /v1/models/NAME (status), GET /v1/models/NAME/metadata (the signature_def).
 *   KServe's Open Inference Protocol v2 (https://kserve.github.io/website/ ... /v2 REST):
 *     POST /v2/models/NAME[/versions/V]/infer  {"id"?, "inputs": [{"name", "shape",
 *       "datatype", "data"}], "outputs"?: [{"name"}]}, with the binary tensor data extension
 *       (Inference-Header-Content-Length: the JSON's length; raw tensor bytes after it);
 *       answered {"model_name", "model_version", "id"?, "outputs": [...]}.
 *     GET /v2/models/NAME (metadata), the health and ready endpoints need no body.
 *   Errors in both: {"error": "<one line naming the field>"}.
 *
 * The signature is the model's (worker/infer.h): which inputs, outputs, dtypes and shapes. */
#ifndef PSTRAIN_SERVE_CODEC_H
#define PSTRAIN_SERVE_CODEC_H

#include "worker/infer.h"

#include <stddef.h>
#include <stdint.h>

typedef enum sv_proto { SV_TFS, SV_V2 } sv_proto;

/* A decoded predict or infer request, its samples prepared as the model's input.
 *
 * Which input: a request gives one of the signature's inputs (they are alternatives). TFS
 * names it in objects ({"instances": [{"pixels": ...}]}, {"inputs": {"pixels": ...}}) or
 * leaves it to the form of its first sample: a string (or {"b64": ...}) is the BYTES input
 * (text), a bare number the scalar one (seed), a list the first non-BYTES input with a shape
 * (images, tokens, z): UINT8 pixels are always named. v2 names it in "name".
 * Sample shapes: the signature's ((28, 28, 1)), the same without trailing 1s ((28, 28)) or
 * flat ((784)); a scalar as () or (1); tokens as a list of any length >= 1. TFS reads a
 * sample's shape from its nesting; v2 from "shape" ([N, ...]), whose element count "data"
 * must hold, flat (row-major) or nested as "shape" says.
 * Values: FP32 takes JSON numbers (finite, in FP32's range); UINT8 and INT64 integers only;
 * NaN and Infinity (tokens or strings) are refused, as wk_infer_prepare's ranges are. */
typedef struct sv_request {
    sv_proto proto;
    int input;           /* the signature's input the request gave */
    int output;          /* the signature's output asked for: 0, or 1 for a GAN's "png" (TFS's
                            signature_name "png"; v2's outputs [{"name": "png"}]); -1 for both of a
                            GAN's (v2 without "outputs", or both named) */
    int columnar;        /* TFS: "inputs" given, so "outputs" answered */
    int named;           /* TFS: instances were objects {"images": ...}; answers still omit the
                            name, as TFS does for a signature of one output */
    unsigned binary_out; /* v2: bit o set: output o is answered as raw bytes after the JSON
                            (binary tensor data extension: "binary_data": true on the output,
                            or "binary_data_output": true on the request); FP32 outputs only */
    char id[256];        /* v2: the request's "id", echoed; "" none */
    int n;               /* samples, >= 1 */
    float *x;            /* (n, signature in_floats), pst_malloc'ed, owned */
} sv_request;

/* Decodes a predict (SV_TFS) or infer (SV_V2) body of len bytes against m's signature,
 * preparing each sample with wk_infer_prepare into r->x. json_len: v2's
 * Inference-Header-Content-Length (the JSON's bytes; tensor bytes follow), or 0 when the
 * header was absent (the body is all JSON). At most max_samples samples. Returns 0, or the
 * HTTP status to answer (400; 413 for more samples than max_samples) with one line in err
 * that names the field, what was expected and what came: "instances[3]: expected 784
 * numbers in [0, 1], got 783". r is then empty (nothing to free, though freeing is fine).
 * len is the caller's to bound (the body limit); the JSON's depth is bounded by jansson and
 * walked only as deep as the signature's shapes. Refusals of the JSON text itself (a bad
 * token, NaN, 1e999, an integer past int64, a duplicate key) name the field they were in,
 * found by a scan of the text up to jansson's error position. */
int sv_request_decode(sv_request *r, sv_proto proto, const char *body, size_t len, size_t json_len,
                      const wk_infer *m, int max_samples, char *err, size_t errlen);

void sv_request_free(sv_request *r);

/* The answer to r from y (r->n, signature out_floats), served by model `name` at version.
 * *body is malloc'ed (the caller frees it), *len its bytes. Returns 0, or 500 with err (an
 * output that is not finite, a PNG that could not be made). Floats are written with 9
 * significant digits (%.9g): parsed back as float32 they are the same bits.
 *   TFS: {"predictions": [...]} (row) or {"outputs": [...]} (columnar), one value per sample
 *     nested as the output's shape ([p0, ..., p9]; a GAN's [[[v], ...], ...] (28, 28, 1)),
 *     or {"b64": "<PNG>"} for signature "png".
 *   v2: {"model_name", "model_version", "id" (when the request gave one), "outputs": [{"name",
 *     "datatype", "shape": [n, ...], "data": [flat, row-major]}]}. A GAN's "png" is a BYTES
 *     tensor of shape [n] whose data are the PNGs in base64 (JSON strings cannot hold raw
 *     bytes). An output in r->binary_out has "parameters": {"binary_data_size": B} instead of
 *     "data", its B bytes (float32, little-endian) after the JSON: the body is then the JSON
 *     followed by sv_response_binary_len bytes. */
int sv_response_encode(const sv_request *r, const wk_infer *m, const char *name, int64_t version,
                       const float *y, char **body, size_t *len, char *err, size_t errlen);

/* The bytes of raw tensor data at the end of sv_response_encode's body for r: 0 when the body
 * is all JSON. Otherwise the caller sends "Inference-Header-Content-Length: len - this" (the
 * JSON's length) and Content-Type application/octet-stream. */
size_t sv_response_binary_len(const sv_request *r, const wk_infer *m);

/* GET bodies, malloc'ed (NULL when out of memory):
 * TFS's model status: {"model_version_status": [{"version": "V", "state": "AVAILABLE",
 * "status": {"error_code": "OK", "error_message": ""}}]}. */
char *sv_tfs_status(int64_t version, size_t *len);
/* TFS's metadata: {"model_spec": {...}, "metadata": {"signature_def": {...}}}: a
 * "serving_default" signature (and a GAN's "png"), inputs and outputs with dtype (DT_FLOAT,
 * DT_UINT8, DT_INT64, DT_STRING) and tensor_shape (-1 for the batch). */
char *sv_tfs_metadata(const wk_infer *m, const char *name, size_t *len);
/* v2's model metadata: {"name", "versions": ["V"], "platform": "pstrain", "inputs": [{"name",
 * "datatype", "shape": [-1, ...]}], "outputs": [...]}. */
char *sv_v2_metadata(const wk_infer *m, const char *name, size_t *len);
/* {"error": "msg"} with msg JSON-escaped. */
char *sv_error_body(const char *msg, size_t *len);

#endif
