/* optim.c: Adam and RMSprop, element-wise over a slice. */
#include "engine/optim.h"

#include "engine/base/base.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_optim {
    eng_optim_cfg cfg;
    size_t n;
    int64_t iterations;
    float *m, *v; /* Adam moments; RMSprop uses m as its accumulator */
};

eng_optim_cfg eng_optim_defaults(eng_optim_kind kind) {
    eng_optim_cfg c = {.kind = kind, .lr = 1e-3f, .epsilon = 1e-7f};
    if (kind == ENG_OPT_ADAM) {
        c.beta1 = 0.9f;
        c.beta2 = 0.999f;
    } else {
        c.rho = 0.9f;
    }
    return c;
}

int eng_optim_kind_parse(const char *name) {
    if (strcmp(name, "adam") == 0)
        return ENG_OPT_ADAM;
    if (strcmp(name, "rmsprop") == 0)
        return ENG_OPT_RMSPROP;
    return -1;
}

int eng_optim_parse(const char *spec, eng_optim_cfg *out, char *err, size_t errlen) {
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
        return pst_err(err, errlen, PST_EARG, "'%.32s...': longer than %zu characters", spec,
                       sizeof buf - 1);
    char *colon = strchr(buf, ':');
    if (colon)
        *colon = '\0';
    const int kind = eng_optim_kind_parse(buf);
    if (kind < 0)
        return pst_err(err, errlen, PST_EARG, "'%s': expected adam or rmsprop", buf);
    eng_optim_cfg c = eng_optim_defaults((eng_optim_kind)kind);
    static const struct {
        const char *name;
        size_t offset;
        float min, max;
    } keys[] = {
        {"lr", offsetof(eng_optim_cfg, lr), 1e-12f, 10.0f},
        {"beta1", offsetof(eng_optim_cfg, beta1), 0.0f, 0.999999f},
        {"beta2", offsetof(eng_optim_cfg, beta2), 0.0f, 0.999999f},
        {"rho", offsetof(eng_optim_cfg, rho), 0.0f, 0.999999f},
        {"epsilon", offsetof(eng_optim_cfg, epsilon), 1e-12f, 1.0f},
        {"clipvalue", offsetof(eng_optim_cfg, clipvalue), 0.0f, 1e6f},
        {"decay", offsetof(eng_optim_cfg, decay), 0.0f, 1.0f},
    };
    for (char *save = NULL, *kv = colon ? strtok_r(colon + 1, ",", &save) : NULL; kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] &&
               (!eq || strncmp(kv, keys[k].name, (size_t)(eq - kv)) != 0 ||
                keys[k].name[eq - kv] != '\0'))
            k++;
        if (!eq || k == sizeof keys / sizeof keys[0])
            return pst_err(err, errlen, PST_EARG,
                           "'%s': expected KEY=VALUE with KEY one of lr, beta1, beta2, rho, "
                           "epsilon, clipvalue, decay",
                           kv);
        const int wrong = (keys[k].offset == offsetof(eng_optim_cfg, beta1) ||
                           keys[k].offset == offsetof(eng_optim_cfg, beta2))
                              ? kind != ENG_OPT_ADAM
                              : (keys[k].offset == offsetof(eng_optim_cfg, rho) ||
                                 keys[k].offset == offsetof(eng_optim_cfg, clipvalue) ||
                                 keys[k].offset == offsetof(eng_optim_cfg, decay)) &&
                                    kind != ENG_OPT_RMSPROP;
        if (wrong)
            return pst_err(err, errlen, PST_EARG, "%s: %s has no %s", kv, buf, keys[k].name);
        char *end;
        errno = 0;
        const double v = strtod(eq + 1, &end);
        if (errno || end == eq + 1 || *end || !(v >= keys[k].min && v <= keys[k].max))
            return pst_err(err, errlen, PST_EARG, "%s: expected %s in [%g, %g]", kv, keys[k].name,
                           (double)keys[k].min, (double)keys[k].max);
        if (v != 0.0 && v < FLT_MIN) /* pstrain flushes denormals to zero (pst_flush_denormals) */
            return pst_err(err, errlen, PST_EARG,
                           "%s: expected %s 0 or at least %g, the smallest normal float32 "
                           "(smaller ones compute as 0)",
                           kv, keys[k].name, (double)FLT_MIN);
        *(float *)((char *)&c + keys[k].offset) = (float)v;
    }
    *out = c;
    return PST_OK;
}

void eng_optim_format(const eng_optim_cfg *c, char *buf, size_t len) {
    if (c->kind == ENG_OPT_ADAM)
        snprintf(buf, len, "adam:lr=%g,beta1=%g,beta2=%g,epsilon=%g", (double)c->lr,
                 (double)c->beta1, (double)c->beta2, (double)c->epsilon);
    else
        snprintf(buf, len, "rmsprop:lr=%g,rho=%g,epsilon=%g,clipvalue=%g,decay=%g", (double)c->lr,
                 (double)c->rho, (double)c->epsilon, (double)c->clipvalue, (double)c->decay);
}

const char *eng_optim_kind_name(eng_optim_kind kind) {
    return kind == ENG_OPT_ADAM ? "adam" : "rmsprop";
}

eng_optim *eng_optim_new(const eng_optim_cfg *cfg, size_t n) {
    eng_optim *o = pst_calloc(1, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->m = pst_alloc(sizeof(float) * n);
    o->v = cfg->kind == ENG_OPT_ADAM ? pst_alloc(sizeof(float) * n) : NULL;
    return o;
}

void eng_optim_free(eng_optim **opt) {
    if (!opt || !*opt)
        return;
    pst_free((*opt)->m);
    pst_free((*opt)->v);
    free(*opt);
    *opt = NULL;
}

int64_t eng_optim_iterations(const eng_optim *opt) { return opt->iterations; }
void eng_optim_set_iterations(eng_optim *opt, int64_t iterations) { opt->iterations = iterations; }
const eng_optim_cfg *eng_optim_config(const eng_optim *opt) { return &opt->cfg; }
int eng_optim_nslots(eng_optim_kind kind) { return kind == ENG_OPT_ADAM ? 2 : 1; }

float *eng_optim_slot(eng_optim *opt, int i) {
    PST_ASSERT(i >= 0 && i < eng_optim_nslots(opt->cfg.kind), "slot %d of %s", i,
               eng_optim_kind_name(opt->cfg.kind));
    return i == 0 ? opt->m : opt->v;
}

void eng_adam_update(float *w, float *m, float *v, const float *g, size_t n, int64_t t,
                     const eng_optim_cfg *cfg) {
    PST_ASSERT(t >= 1, "adam step t=%lld must be >= 1", (long long)t);
    const double b1 = cfg->beta1, b2 = cfg->beta2;
    const float lr_t =
        (float)(cfg->lr * sqrt(1.0 - pow(b2, (double)t)) / (1.0 - pow(b1, (double)t)));
    const float c1 = 1.0f - cfg->beta1, c2 = 1.0f - cfg->beta2, eps = cfg->epsilon;
    for (size_t i = 0; i < n; i++) {
        const float gi = g[i];
        m[i] += (gi - m[i]) * c1;
        v[i] += (gi * gi - v[i]) * c2;
        w[i] -= lr_t * m[i] / (sqrtf(v[i]) + eps);
    }
}

void eng_rmsprop_update(float *w, float *a, const float *g, size_t n, int64_t iterations,
                        const eng_optim_cfg *cfg) {
    const float lr_t = cfg->decay > 0.0f
                           ? (float)(cfg->lr / (1.0 + (double)cfg->decay * (double)iterations))
                           : cfg->lr;
    const float rho = cfg->rho, c = 1.0f - cfg->rho, eps = cfg->epsilon, clip = cfg->clipvalue;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (clip > 0.0f)
            gi = gi > clip ? clip : (gi < -clip ? -clip : gi);
        a[i] = rho * a[i] + c * gi * gi;
        w[i] -= lr_t * gi / (sqrtf(a[i]) + eps);
    }
}

void eng_optim_update(eng_optim *opt, float *w_lo, const float *g_lo, size_t lo, size_t n,
                      int64_t iterations) {
    PST_ASSERT(lo + n <= opt->n, "range %zu+%zu of %zu", lo, n, opt->n);
    if (opt->cfg.kind == ENG_OPT_ADAM)
        eng_adam_update(w_lo, opt->m + lo, opt->v + lo, g_lo, n, iterations + 1, &opt->cfg);
    else
        eng_rmsprop_update(w_lo, opt->m + lo, g_lo, n, iterations, &opt->cfg);
}

void eng_optim_step_range(eng_optim *opt, float *w, const float *g, size_t lo, size_t n) {
    eng_optim_update(opt, w + lo, g + lo, lo, n, opt->iterations);
}

void eng_optim_advance(eng_optim *opt) { opt->iterations++; }

size_t eng_optim_size(const eng_optim *opt) { return opt->n; }

void eng_optim_step(eng_optim *opt, float *w, const float *g) {
    eng_optim_step_range(opt, w, g, 0, opt->n);
    eng_optim_advance(opt);
}

double eng_ema_decay(double decay, int64_t updates) {
    const double warm = (1.0 + (double)updates) / (10.0 + (double)updates);
    return warm < decay ? warm : decay;
}

void eng_ema_update(float *avg, const float *w, size_t n, double decay, int64_t updates) {
    const float k = (float)(1.0 - eng_ema_decay(decay, updates));
    for (size_t i = 0; i < n; i++)
        avg[i] -= k * (avg[i] - w[i]);
}
