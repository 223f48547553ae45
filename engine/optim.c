/* optim.c: Adam and RMSprop, element-wise over a slice. */
#include "engine/optim.h"

#include "engine/base.h"

#include <math.h>
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

const char *eng_optim_kind_name(eng_optim_kind kind) {
    return kind == ENG_OPT_ADAM ? "adam" : "rmsprop";
}

eng_optim *eng_optim_new(const eng_optim_cfg *cfg, size_t n) {
    eng_optim *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->cfg = *cfg;
    o->n = n;
    o->m = eng_alloc(sizeof(float) * n);
    o->v = cfg->kind == ENG_OPT_ADAM ? eng_alloc(sizeof(float) * n) : NULL;
    if (!o->m || (cfg->kind == ENG_OPT_ADAM && !o->v)) {
        eng_optim_free(&o);
        return NULL;
    }
    return o;
}

void eng_optim_free(eng_optim **opt) {
    if (!opt || !*opt)
        return;
    eng_free((*opt)->m);
    eng_free((*opt)->v);
    free(*opt);
    *opt = NULL;
}

int64_t eng_optim_iterations(const eng_optim *opt) { return opt->iterations; }
void eng_optim_set_iterations(eng_optim *opt, int64_t iterations) { opt->iterations = iterations; }
const eng_optim_cfg *eng_optim_config(const eng_optim *opt) { return &opt->cfg; }
int eng_optim_nslots(eng_optim_kind kind) { return kind == ENG_OPT_ADAM ? 2 : 1; }

float *eng_optim_slot(eng_optim *opt, int i) {
    ENG_ASSERT(i >= 0 && i < eng_optim_nslots(opt->cfg.kind), "slot %d of %s", i,
               eng_optim_kind_name(opt->cfg.kind));
    return i == 0 ? opt->m : opt->v;
}

void eng_adam_update(float *w, float *m, float *v, const float *g, size_t n, int64_t t,
                     const eng_optim_cfg *cfg) {
    ENG_ASSERT(t >= 1, "adam step t=%lld must be >= 1", (long long)t);
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
    ENG_ASSERT(lo + n <= opt->n, "range %zu+%zu of %zu", lo, n, opt->n);
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
