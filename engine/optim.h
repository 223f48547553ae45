/* optim.h: optimizers over any slice of the flat parameter vector, with Keras's defaults
 * and formulas, so that a parameter server can own a slice and its state.
 *
 * Adam (Kingma & Ba, in Keras's form):
 *   t += 1; lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= lr_t m / (sqrt(v) + eps)
 * RMSprop (Keras, with clipvalue and legacy time-based decay):
 *   g = clip(g, -clipvalue, clipvalue) when clipvalue > 0
 *   lr_t = lr / (1 + decay * iterations)   (iterations = updates done before this one)
 *   a = rho a + (1 - rho) g^2;  w -= lr_t g / (sqrt(a) + eps) */
#ifndef PSTRAIN_ENGINE_OPTIM_H
#define PSTRAIN_ENGINE_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef enum eng_optim_kind { ENG_OPT_ADAM, ENG_OPT_RMSPROP } eng_optim_kind;

typedef struct eng_optim_cfg {
    eng_optim_kind kind;
    float lr;
    float beta1, beta2; /* Adam */
    float rho;          /* RMSprop */
    float epsilon;
    float clipvalue; /* RMSprop; 0 = off */
    float decay;     /* RMSprop legacy decay; 0 = off */
} eng_optim_cfg;

/* Keras defaults for kind: Adam(lr 1e-3, 0.9, 0.999, 1e-7); RMSprop(lr 1e-3, rho 0.9, 1e-7). */
eng_optim_cfg eng_optim_defaults(eng_optim_kind kind);

/* Parses "adam" or "rmsprop"; returns -1 otherwise. */
int eng_optim_kind_parse(const char *name);
const char *eng_optim_kind_name(eng_optim_kind kind);

/* A configuration from "KIND[:KEY=VALUE,...]": KIND adam or rmsprop, then any of lr, beta1,
 * beta2 (Adam), rho, clipvalue, decay (RMSprop), epsilon over KIND's Keras defaults, e.g.
 * "rmsprop:lr=8e-4,clipvalue=1,decay=1e-8". Returns PST_OK, or PST_EARG with one line in err
 * naming the part that is wrong (the caller adds the flag). */
int eng_optim_parse(const char *spec, eng_optim_cfg *out, char *err, size_t errlen);
/* The same form back, every key of the kind written out: for logs. */
void eng_optim_format(const eng_optim_cfg *c, char *buf, size_t len);

typedef struct eng_optim eng_optim;

/* An optimizer owning zeroed state for n parameters (owned: eng_optim_free). Never NULL. */
eng_optim *eng_optim_new(const eng_optim_cfg *cfg, size_t n);
void eng_optim_free(eng_optim **opt);

/* One update of w[0..n) with gradient g[0..n). */
void eng_optim_step(eng_optim *opt, float *w, const float *g);

/* The same update for elements [lo, lo + n) only, as update number iterations + 1, without
 * counting it: threads may update disjoint ranges at once, then one calls
 * eng_optim_advance. w and g point at element 0 of the optimizer's slice. */
void eng_optim_step_range(eng_optim *opt, float *w, const float *g, size_t lo, size_t n);
void eng_optim_advance(eng_optim *opt);

/* Updates elements [lo, lo + n) as update number iterations + 1 of those elements, for
 * callers that update parts of the slice at different paces (a server's chunks). Unlike
 * eng_optim_step_range, w_lo and g_lo point at element lo itself. */
void eng_optim_update(eng_optim *opt, float *w_lo, const float *g_lo, size_t lo, size_t n,
                      int64_t iterations);
size_t eng_optim_size(const eng_optim *opt);

/* Updates applied so far (Keras's `iterations`). */
int64_t eng_optim_iterations(const eng_optim *opt);
void eng_optim_set_iterations(eng_optim *opt, int64_t iterations);

/* The configuration, and the state arrays (eng_optim_size floats each, owned by opt): Adam
 * has 2 (m, v), RMSprop 1 (its accumulator). For checkpoints. */
const eng_optim_cfg *eng_optim_config(const eng_optim *opt);
int eng_optim_nslots(eng_optim_kind kind);
float *eng_optim_slot(eng_optim *opt, int i);

/* The kernels themselves, for callers that keep their own state. t is 1-based. */
void eng_adam_update(float *w, float *m, float *v, const float *g, size_t n, int64_t t,
                     const eng_optim_cfg *cfg);
void eng_rmsprop_update(float *w, float *a, const float *g, size_t n, int64_t iterations,
                        const eng_optim_cfg *cfg);

/* An exponential moving average of weights, as TF's tf.train.ExponentialMovingAverage with
 * num_updates keeps it: update number updates + 1 moves avg towards w by 1 - d, with
 * d = min(decay, (1 + updates) / (10 + updates)), so that an average started from the first
 * weights follows them closely at first and settles into its decay later. */
double eng_ema_decay(double decay, int64_t updates);
void eng_ema_update(float *avg, const float *w, size_t n, double decay, int64_t updates);

#endif
