/* guard.c: the non-finite check of losses and gradients (guard.h). */
#include "worker/guard.h"

#include "engine/base/base.h"
#include "worker/ckpt/writer.h"
#include "worker/store_impl.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void wk_guard_snapshot(wk_guard *g, uint64_t step) {
    if (g->pending >= 0) /* wk_save waited for its write, and stops the job when it failed */
        g->checkpoint = g->pending;
    g->pending = (int64_t)step;
}

/* Whether v[0, n) holds a NaN or an infinity: no early exit and an OR of comparisons, so the
 * loop vectorizes (NaN compares false, so !(|x| <= FLT_MAX) is exactly !isfinite(x)). */
static int any_bad(const float *v, size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= !(fabsf(v[i]) <= FLT_MAX);
    return bad;
}

/* Blocks of 16 KiB: the vectorized pass stays in L1 and a bad value is found without
 * reading the rest of a large vector. */
#define BLOCK 4096

size_t wk_guard_scan(const float *v, size_t n) {
    for (size_t lo = 0; lo < n; lo += BLOCK) {
        const size_t m = n - lo < BLOCK ? n - lo : BLOCK;
        if (!any_bad(v + lo, m))
            continue;
        for (size_t i = lo; i < lo + m; i++)
            if (!isfinite(v[i]))
                return i;
    }
    return n;
}

char *wk_guard_name(const eng_layout *lay, size_t at, char *buf, size_t len) {
    for (int t = 0; t < lay->n; t++) {
        const eng_tensor_info *ti = &lay->tensors[t];
        if (at >= ti->offset && at - ti->offset < ti->count) {
            snprintf(buf, len, "%s[%zu]", ti->name, at - ti->offset);
            return buf;
        }
    }
    snprintf(buf, len, "element %zu", at);
    return buf;
}

static const char *value_str(double v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

/* What happens now, after "step S: ...; ". */
static void outcome(const wk_guard *g, const char *what, char *buf, size_t len) {
    if (g->remote)
        snprintf(buf, len,
                 "this worker stops without pushing %s, and the servers drop it as a lost worker",
                 what);
    else
        snprintf(buf, len, "the job stops before applying %s", what);
}

void wk_guard_kept(const struct wk_store *s, struct wk_ckpt_writer *writer, char *err,
                   size_t errlen) {
    const wk_guard *g = &s->guard;
    int64_t kept = g->checkpoint;
    char why[1024] = "";
    /* The newest snapshot is on disk once its write has ended well; a checkpoint refused
     * before its write, or a full disk, leaves the one before it. */
    if (writer && g->pending >= 0) {
        if (wk_ckpt_writer_wait(writer, stdout, why, sizeof why) == 0)
            kept = g->pending;
        fflush(stdout);
    }
    size_t n = strlen(err);
    if (why[0] && n < errlen) {
        snprintf(err + n, errlen - n, "; the checkpoint of step %lld was not written (%s)",
                 (long long)g->pending, why);
        n = strlen(err);
    }
    if (kept >= 0 && n < errlen)
        snprintf(err + n, errlen - n, "; the last checkpoint (step %lld) is kept", (long long)kept);
}

/* The first non-finite element of part p's grads in [lo, hi), named into name as
 * "conv2d_1/kernel[17]", with " of the generator" in a model of several parts, its value into
 * *v; 0 when there is none. */
static int first_bad(const eng_model *m, int p, const float *grads, size_t lo, size_t hi,
                     char *name, size_t len, float *v) {
    const size_t i = lo + wk_guard_scan(grads + lo, hi - lo);
    if (i == hi)
        return 0;
    eng_model part;
    eng_model_part(m, p, &part);
    wk_guard_name(&part.layout, i, name, len);
    const size_t n = strlen(name);
    if (m->nparts > 1)
        snprintf(name + n, len - n, " of the %s", m->parts[p].name);
    *v = grads[i];
    return 1;
}

int wk_guard_grads(const wk_guard *g, const eng_model *m, int p, const float *grads, size_t lo,
                   size_t hi, char *err, size_t errlen) {
    char name[ENG_NAME_MAX + 64], then[200];
    float v;
    if (!first_bad(m, p, grads, lo, hi, name, sizeof name, &v))
        return PST_OK;
    outcome(g, "it", then, sizeof then);
    return pst_err(err, errlen, PST_EDIVERGED, "step %llu: non-finite gradient in %s (%s); %s",
                   (unsigned long long)g->step, name, value_str(v), then);
}

int wk_guard_loss(const struct wk_store *s, const char *what, double loss, char *err,
                  size_t errlen) {
    if (isfinite(loss))
        return PST_OK;
    const wk_guard *g = &s->guard;
    char name[ENG_NAME_MAX + 64], grad[ENG_NAME_MAX + 160] = "", then[200];
    float v;
    for (int p = 0; p < s->model->nparts; p++)
        if (first_bad(s->model, p, eng_net_grads(s->nets[p]), 0, s->model->parts[p].total, name,
                      sizeof name, &v)) {
            snprintf(grad, sizeof grad, " (the first non-finite gradient: %s, %s)", name,
                     value_str(v));
            break;
        }
    outcome(g, g->remote ? "a non-finite value" : "the step", then, sizeof then);
    return pst_err(err, errlen, PST_EDIVERGED, "step %llu: %s is %s%s; %s",
                   (unsigned long long)g->step, what, value_str(loss), grad, then);
}
