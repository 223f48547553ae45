/* eval_inputs.c: `pstrain eval CKPT --inputs FILE`: a file of samples through a checkpoint's
 * forward pass (worker/infer.h), in batches of --batch consecutive samples on a model made for
 * --max-batch and --threads, as `pstrain serve` runs them: the reference serve's answers are
 * compared with bit for bit. One JSON line to stdout:
 *
 *   {"model": "mnist_cnn", "version": STEP, "output": "probabilities", "data": [[...], ...]}
 *
 * each sample's output nested as the output's shape, floats as %.9g (float32 round-trips).
 * FILE is {"input": NAME, "data": [sample, ...]}, NAME one of the signature's inputs, a
 * sample nested as that input's shape (or flat), a string for "text", an integer for "seed". */
#include "engine/base/base.h"
#include "engine/base/file.h"
#include "engine/json.h"
#include "engine/pool.h"
#include "launch/cmd/cmd.h"
#include "worker/infer.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One sample's numbers, flattened (borrowed from the document). */
typedef struct flat {
    size_t n, cap;
    const json_t **v;
} flat;

static const char *kind(const json_t *j) { return j ? eng_json_kind(j) : "nothing"; }

/* Appends j's numbers to f, j nested as io's dims from level d on (or flat: an array of
 * numbers as long as the remaining dims' product, left to wk_infer_prepare to count).
 * Integers required (ints) for UINT8 and INT64. Returns PST_OK or PST_EARG with err naming
 * the field (path). */
static int flatten(const json_t *j, const wk_infer_io *io, int d, int ints, flat *f, char *path,
                   size_t pathlen, char *err, size_t errlen) {
    if (json_is_number(j)) {
        if (ints && !json_is_integer(j))
            return pst_err(err, errlen, PST_EARG, "%s: expected an integer, got %.17g", path,
                           json_number_value(j));
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 1024;
            f->v = pst_realloc(f->v, sizeof *f->v * f->cap);
        }
        f->v[f->n++] = j;
        return PST_OK;
    }
    if (!json_is_array(j) || d >= io->rank || d >= 3)
        return pst_err(err, errlen, PST_EARG, "%s: expected %s, got %s", path,
                       d < io->rank ? "a list" : "a number", kind(j));
    const size_t len = strlen(path);
    for (size_t i = 0; i < json_array_size(j); i++) {
        snprintf(path + len, pathlen - len, "[%zu]", i);
        const json_t *e = json_array_get(j, i);
        /* a nested sample's lists have the input's dims; a flat one holds only numbers */
        if (json_is_array(e) && json_array_size(j) != (size_t)io->dims[d])
            return pst_err(err, errlen, PST_EARG, "%.*s: expected %lld lists, got %zu", (int)len,
                           path, (long long)io->dims[d], json_array_size(j));
        const int rc = flatten(e, io, d + 1, ints, f, path, pathlen, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    path[len] = '\0';
    return PST_OK;
}

/* Sample j of input io (index input) into x (in_floats). */
static int prepare_sample(const wk_infer *m, int input, const json_t *j, flat *f, float *x,
                          const char *field, char *err, size_t errlen) {
    const wk_infer_io *io = &wk_infer_signature(m)->inputs[input];
    char why[256] = "", path[128];
    snprintf(path, sizeof path, "%s", field);
    int rc;
    if (io->dtype == WK_BYTES) {
        if (!json_is_string(j))
            return pst_err(err, errlen, PST_EARG, "%s: expected a string, got %s", field, kind(j));
        rc = wk_infer_prepare(m, input, json_string_value(j), json_string_length(j), x, why,
                              sizeof why);
    } else {
        f->n = 0;
        if ((rc = flatten(j, io, 0, io->dtype != WK_FP32, f, path, sizeof path, err, errlen)) !=
            PST_OK)
            return rc;
        void *buf = pst_malloc((f->n ? f->n : 1) * sizeof(int64_t));
        for (size_t i = 0; i < f->n; i++) {
            if (io->dtype == WK_FP32) {
                ((float *)buf)[i] = (float)json_number_value(f->v[i]);
                continue;
            }
            const json_int_t v = json_integer_value(f->v[i]); /* exact: seeds past 2^53 too */
            if (io->dtype == WK_UINT8 && !(v >= 0 && v <= 255)) {
                free(buf);
                return pst_err(err, errlen, PST_EARG,
                               "%s: value %zu is %lld: expected an integer in [0, 255]", field, i,
                               (long long)v);
            }
            if (io->dtype == WK_UINT8)
                ((uint8_t *)buf)[i] = (uint8_t)v;
            else
                ((int64_t *)buf)[i] = (int64_t)v;
        }
        rc = wk_infer_prepare(m, input, buf, f->n, x, why, sizeof why);
        free(buf);
    }
    if (rc != PST_OK)
        return pst_err(err, errlen, rc, "%s: %s", field, why);
    return PST_OK;
}

/* Output sample y (out_floats) nested as io's dims from level d. */
static const float *print_nested(const float *y, const wk_infer_io *io, int d) {
    if (d >= io->rank || d >= 3) {
        printf("%.9g", (double)*y);
        return y + 1;
    }
    putchar('[');
    for (int64_t i = 0; i < io->dims[d]; i++) {
        if (i)
            putchar(',');
        y = print_nested(y, io, d + 1);
    }
    putchar(']');
    return y;
}

/* The file's input name and samples: *input its index in m's signature. */
static int read_inputs(const char *file, const wk_infer *m, json_t **root, int *input,
                       const json_t **data, char *err, size_t errlen) {
    json_error_t je;
    int rc;
    FILE *fp = pst_fopen_regular(file, &rc, err, errlen); /* a FIFO is refused, not waited on */
    if (!fp)
        return rc;
    *root = json_loadf(fp, JSON_REJECT_DUPLICATES, &je);
    fclose(fp);
    if (!*root)
        return pst_err(err, errlen, PST_EFORMAT, "%s: line %d: %s", file, je.line, je.text);
    const wk_infer_sig *s = wk_infer_signature(m);
    const json_t *in = json_object_get(*root, "input");
    char names[128] = "";
    for (int i = 0; i < s->ninputs; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s\"%s\"", i ? " or " : "",
                 s->inputs[i].name);
    if (!json_is_object(*root) || !json_is_string(in))
        return pst_err(err, errlen, PST_EARG, "%s: input: expected %s (%s's inputs), got %s", file,
                       names, s->model, kind(json_is_object(*root) ? in : *root));
    *input = -1;
    for (int i = 0; i < s->ninputs; i++)
        if (strcmp(json_string_value(in), s->inputs[i].name) == 0)
            *input = i;
    if (*input < 0)
        return pst_err(err, errlen, PST_EARG, "%s: input: expected %s (%s's inputs), got \"%s\"",
                       file, names, s->model, json_string_value(in));
    *data = json_object_get(*root, "data");
    if (!json_is_array(*data) || json_array_size(*data) == 0)
        return pst_err(err, errlen, PST_EARG, "%s: data: expected a list of samples, got %s", file,
                       *data && json_is_array(*data) ? "an empty list" : kind(*data));
    return PST_OK;
}

int cmd_eval_inputs(const cmd_config *cfg) {
    const cmd_args *a = &cfg->args;
    const char *file = a->input_file;
    char err[1024] = "";
    if (cfg->worker.judge[0])
        return cmd_said(pst_err(err, sizeof err, PST_EARG,
                                "--judge: scores a GAN's own noise; not with --inputs %s", file),
                        err);
    if (a->infer_batch > a->max_batch)
        return cmd_said(pst_err(err, sizeof err, PST_EARG,
                                "--batch: %lld samples a pass, over --max-batch %lld",
                                (long long)a->infer_batch, (long long)a->max_batch),
                        err);
    const int threads =
        cfg->worker.threads > 0 ? (int)cfg->worker.threads : eng_pool_cpus(); /* serve's too */
    int rc;
    wk_infer *m =
        wk_infer_load(a->checkpoint, (int)a->max_batch, threads, a->live, &rc, err, sizeof err);
    if (!m)
        return cmd_said(rc, err);
    json_t *root = NULL;
    const json_t *data = NULL;
    int input = 0;
    float *x = NULL, *y = NULL;
    flat f = {0};
    if ((rc = read_inputs(file, m, &root, &input, &data, err, sizeof err)) != PST_OK)
        goto done;
    const wk_infer_sig *s = wk_infer_signature(m);
    const size_t n = json_array_size(data), B = (size_t)a->infer_batch;
    x = pst_malloc(sizeof(float) * n * s->in_floats);
    y = pst_malloc(sizeof(float) * n * s->out_floats);
    for (size_t i = 0; i < n; i++) {
        char field[64], why[768];
        snprintf(field, sizeof field, "data[%zu]", i);
        if ((rc = prepare_sample(m, input, json_array_get(data, i), &f, x + i * s->in_floats, field,
                                 why, sizeof why)) != PST_OK) {
            pst_err(err, sizeof err, rc, "%s: %s", file, why);
            goto done;
        }
    }
    for (size_t i = 0; i < n; i += B)
        wk_infer_run(m, x + i * s->in_floats, (int)(n - i < B ? n - i : B), y + i * s->out_floats);
    printf("{\"model\": \"%s\", \"version\": %lld, \"output\": \"%s\", \"data\": [", s->model,
           (long long)s->version, s->outputs[0].name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            putchar(',');
        print_nested(y + i * s->out_floats, &s->outputs[0], 0);
    }
    printf("]}\n");
    rc = fflush(stdout) == 0
             ? PST_OK
             : pst_err(err, sizeof err, PST_EWRITE, "stdout: the outputs: %s", "write failed");
done:
    free(f.v);
    free(x);
    free(y);
    json_decref(root);
    wk_infer_free(&m);
    return cmd_said(rc, err);
}
