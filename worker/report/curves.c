/* curves.c: a metrics file read line by line (getline, then jansson per line, so that an
 * error names its line). */
#include "worker/report/curves.h"

#include "engine/base/base.h"
#include "engine/base/file.h"
#include "engine/json.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char *const names[WK_CURVES] = {
    "epoch",       "seconds", "loss",       "val_loss",        "accuracy", "val_accuracy",
    "d_loss",      "g_loss",  "d_accuracy", "inception_score", "frechet",  "live_inception_score",
    "live_frechet"};

const char *wk_curve_name(wk_curve k) {
    PST_ASSERT(k >= 0 && k < WK_CURVES, "curve %d of %d", (int)k, WK_CURVES);
    return names[k];
}

void wk_curves_deinit(wk_curves *c) {
    for (int k = 0; k < WK_CURVES; k++)
        free(c->v[k]);
    memset(c, 0, sizeof *c);
}

static void grow(wk_curves *c) {
    if (c->n < c->cap)
        return;
    c->cap = c->cap ? 2 * c->cap : 64;
    for (int k = 0; k < WK_CURVES; k++)
        c->v[k] = pst_realloc(c->v[k], sizeof *c->v[k] * (size_t)c->cap);
}

/* *out <- obj[key] as a number; NAN when absent or null (a writer's "no value"). Returns
 * PST_OK, or PST_EFORMAT naming the line when it is something else. */
static int number(const json_t *obj, const char *key, double *out, const char *path, long line,
                  char *err, size_t errlen) {
    const json_t *j = json_object_get(obj, key);
    *out = NAN;
    if (!j || json_is_null(j))
        return PST_OK;
    if (!json_is_number(j))
        return pst_err(err, errlen, PST_EFORMAT, "%s: line %ld: \"%s\": expected a number, got %s",
                       path, line, key, eng_json_kind(j));
    *out = json_number_value(j);
    return PST_OK;
}

/* One line of the file into c. */
static int read_line(wk_curves *c, const char *text, size_t len, const char *path, long line,
                     char *err, size_t errlen) {
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: line %ld: expected a JSON object, got text that is not JSON (%s)", path,
                       line, je.text);
    if (!json_is_object(j)) {
        pst_err(err, errlen, PST_EFORMAT, "%s: line %ld: expected a JSON object, got %s", path,
                line, eng_json_kind(j));
        json_decref(j);
        return PST_EFORMAT;
    }
    const char *event = json_string_value(json_object_get(j, "event"));
    int rc = PST_OK;
    if (event && strcmp(event, "epoch") == 0) {
        grow(c);
        for (int k = 0; k < WK_CURVES && rc == PST_OK; k++) {
            rc = number(j, names[k], &c->v[k][c->n], path, line, err, errlen);
            c->seen[k] += isfinite(c->v[k][c->n]) ? 1 : 0;
        }
        if (isnan(c->v[WK_CURVE_EPOCH][c->n])) /* an epoch line without its number */
            c->v[WK_CURVE_EPOCH][c->n] = c->n + 1;
        c->n++;
    } else if (event && strcmp(event, "final") == 0) {
        c->final = 1;
        rc = number(j, "test_loss", &c->test_loss, path, line, err, errlen);
        if (rc == PST_OK)
            rc = number(j, "test_accuracy", &c->test_accuracy, path, line, err, errlen);
        if (rc == PST_OK)
            rc = number(j, "wall_s", &c->wall_s, path, line, err, errlen);
    } /* other events: not curves */
    json_decref(j);
    return rc;
}

int wk_curves_read(wk_curves *c, const char *path, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->test_loss = c->test_accuracy = c->wall_s = NAN;
    int rc0;
    char why[512];
    FILE *f = pst_fopen_regular(path, &rc0, why, sizeof why); /* a FIFO would block */
    if (!f)
        return pst_err(err, errlen, PST_EIO, "%s (the metrics file)", why);
    char *text = NULL;
    size_t cap = 0;
    ssize_t len;
    long line = 0;
    int rc = PST_OK;
    errno = 0;
    while (rc == PST_OK && (len = getline(&text, &cap, f)) >= 0) {
        line++;
        if (strspn(text, " \t\r\n") == (size_t)len)
            continue; /* blank */
        rc = read_line(c, text, (size_t)len, path, line, err, errlen);
    }
    if (rc == PST_OK && ferror(f))
        rc = pst_err(err, errlen, PST_EIO, "%s: cannot read the metrics file: %s", path,
                     strerror(errno));
    free(text);
    fclose(f);
    if (rc == PST_OK && c->n == 0)
        rc = pst_err(err, errlen, PST_EFORMAT,
                     "%s: no \"epoch\" lines: expected the JSON lines of pstrain train --metrics",
                     path);
    return rc;
}
