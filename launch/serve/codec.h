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

/* A decoded predict or infer request, its samples prepared as the model's input. */
typedef struct sv_request {
    sv_proto proto;
    int input;    /* the signature's input the request gave */
    int output;   /* the signature's output it asked for (0 unless a GAN's "png") */
    int columnar; /* TFS: "inputs" given, so "outputs" answered */
    int named;    /* TFS: instances were objects {"images": ...}, so answers are objects too */
    char id[256]; /* v2: the request's "id", echoed; "" none */
    int n;        /* samples, >= 1 */
    float *x;     /* (n, signature in_floats), pst_malloc'ed, owned */
} sv_request;

/* Decodes a predict (SV_TFS) or infer (SV_V2) body of len bytes against m's signature,
 * preparing each sample with wk_infer_prepare into r->x. json_len: v2's
 * Inference-Header-Content-Length (the JSON's bytes; tensor bytes follow), or 0 when the
 * header was absent (the body is all JSON). At most max_samples samples. Returns 0, or the
 * HTTP status to answer (400; 413 for more samples than max_samples) with one line in err
 * that names the field, what was expected and what came: "instances[3]: expected 784
 * numbers in [0, 1], got 783". r is then empty (nothing to free, though freeing is fine). */
int sv_request_decode(sv_request *r, sv_proto proto, const char *body, size_t len, size_t json_len,
                      const wk_infer *m, int max_samples, char *err, size_t errlen);

void sv_request_free(sv_request *r);

/* The answer to r from y (r->n, signature out_floats), served by model `name` at version.
 * *body is malloc'ed (the caller frees it), *len its bytes. Returns 0, or 500 with err (out
 * of memory, a PNG that could not be made). Floats are written with 9 significant digits
 * (%.9g): parsed back as float32 they are the same bits. */
int sv_response_encode(const sv_request *r, const wk_infer *m, const char *name, int64_t version,
                       const float *y, char **body, size_t *len, char *err, size_t errlen);

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
