/* bench_imdb_lstm.c: training throughput of imdb_lstm (Keras's Embedding + LSTM(128) on
 * IMDB reviews of 200 tokens) in one process, and where a thread's time goes.
 *
 *   build/tests/bench/bench_imdb_lstm [--batch 32] [--threads 1,2] [--chunk 0]
 *                                     [--steps 100] [--warmup 10] [--phases] [--json]
 *
 * A step is what `pstrain train` does per batch: forward + backward + gradient reduction
 * (eng_net_train_step), then Adam (eng_net_apply). Two rates: the whole step
 * (samples_per_sec, as bench_mnist_cnn counts it) and the step without Adam
 * (samples_per_sec_no_adam). Inputs are random token ids below 10,000 and random labels:
 * speed does not depend on the data. --chunk overrides the model's samples per pass (0: the
 * registry's). --phases times the layers' own functions on one thread, per chunk of the
 * model's size (the best of 7 calls in the thread's CPU time, so that others' work on the
 * machine counts less). GFLOP/s counts the model's nominal 98.3 MFLOP per training sample
 * (eng_model_flops_train) over the step without Adam. */
#include "engine/base/base.h"
#include "engine/embedding.h"
#include "engine/lstm.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "engine/rng.h"

/* cblas.h: openblas_get_corename(), the kernel OpenBLAS picked (OPENBLAS_CORETYPE overrides) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Random ids below 10,000 and labels 0/1 for `batch` samples of model m. */
static void random_batch(const eng_model *m, float *x, uint8_t *labels, int batch) {
    const size_t in = eng_shape_size(m->input);
    eng_rng r;
    eng_rng_seed(&r, 3);
    for (size_t i = 0; i < (size_t)batch * in; i++)
        x[i] = (float)eng_rng_below(&r, (uint64_t)m->layers[0].spec.input_dim);
    for (int i = 0; i < batch; i++)
        labels[i] = (uint8_t)eng_rng_below(&r, 2);
}

/* Training samples per second at `batch` on `threads` threads: *with_apply counts Adam too,
 * the return value does not. */
static double train_rate(const eng_model *m, int batch, int threads, int warmup, int steps,
                         double *with_apply) {
    char err[256];
    eng_net *net = eng_net_new(m, batch, threads, err, sizeof err);
    PST_ASSERT(net, "%s", err);
    eng_model_init_params(m, eng_net_params(net), 1);
    eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    eng_optim *opt = eng_optim_new(&cfg, m->layout.total);
    float *x = pst_alloc(sizeof(float) * batch * eng_shape_size(m->input));
    uint8_t *labels = pst_alloc((size_t)batch);
    PST_ASSERT(opt && x && labels, "out of memory");
    random_batch(m, x, labels, batch);
    double t_step = 0.0, t_all = 0.0;
    eng_batch_stats st = {0};
    for (int s = 0; s < warmup + steps; s++) {
        const double t0 = now();
        eng_net_train_step(net, x, labels, batch, (uint64_t)s, &st);
        const double t1 = now();
        eng_net_apply(net, opt);
        if (s >= warmup) {
            t_step += t1 - t0;
            t_all += now() - t0;
        }
    }
    *with_apply = (double)batch * steps / t_all;
    pst_free(x);
    pst_free(labels);
    eng_optim_free(&opt);
    eng_net_free(&net);
    return (double)batch * steps / t_step;
}

/* This thread's CPU time: phases are timed on a machine that others may share. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* out = the fastest of `reps` calls in milliseconds of CPU time, after one to warm up. */
#define TIME_MS(out, reps, call)                                                                   \
    do {                                                                                           \
        call;                                                                                      \
        out = 1e30;                                                                                \
        for (int r_ = 0; r_ < (reps); r_++) {                                                      \
            const double t0_ = cpu_now();                                                          \
            call;                                                                                  \
            const double t_ = (cpu_now() - t0_) * 1e3;                                             \
            out = t_ < out ? t_ : out;                                                             \
        }                                                                                          \
    } while (0)

/* The layers' own functions on one chunk of B samples, one thread. */
static void phases(const eng_model *m, int B, int reps) {
    openblas_set_num_threads(1); /* as eng_net_new sets it */
    const eng_layer *emb = &m->layers[0], *lstm = &m->layers[1];
    const int T = lstm->in.w, in = lstm->in.c, u = lstm->spec.units, V = emb->spec.input_dim;
    float *params = pst_alloc(sizeof(float) * m->layout.total);
    float *grads = pst_alloc(sizeof(float) * m->layout.total);
    float *x = pst_alloc(sizeof(float) * (size_t)B * T);
    float *e = pst_alloc(sizeof(float) * (size_t)B * T * in);
    float *dx = pst_alloc(sizeof(float) * (size_t)B * T * in);
    float *y = pst_alloc(sizeof(float) * (size_t)B * u), *dy = pst_alloc(sizeof(float) * B * u);
    float *saved = pst_alloc(lstm->saved_bytes * (size_t)B);
    uint8_t *labels = pst_alloc((size_t)B);
    PST_ASSERT(params && grads && x && e && dx && y && dy && saved && labels, "out of memory");
    eng_model_init_params(m, params, 1);
    random_batch(m, x, labels, B);
    for (int i = 0; i < B * u; i++)
        dy[i] = 1e-3f * (float)(i % 7);
    const float *w = params + lstm->kernel, *bias = params + lstm->bias;
    float *dw = grads + lstm->kernel, *db = grads + lstm->bias;
    double f_emb, f_lstm, fb_dx, fb, b_emb;
    TIME_MS(f_emb, reps, eng_embedding_forward(e, x, params, B, T, V, in));
    TIME_MS(f_lstm, reps, eng_lstm_forward(y, saved, e, w, bias, B, T, in, u));
    /* backward overwrites saved: each timed backward follows its own forward */
    TIME_MS(fb_dx, reps,
            (eng_lstm_forward(y, saved, e, w, bias, B, T, in, u),
             eng_lstm_backward(dx, dw, db, dy, saved, w, B, T, in, u, 0)));
    TIME_MS(fb, reps,
            (eng_lstm_forward(y, saved, e, w, bias, B, T, in, u),
             eng_lstm_backward(NULL, dw, db, dy, saved, w, B, T, in, u, 0)));
    TIME_MS(b_emb, reps, eng_embedding_backward(grads, dx, x, B, T, V, in, 0));
    const double flop = 2.0 * T * (in + u) * 4.0 * u * B; /* one forward's sgemm work */
    printf("phases, one thread, chunk of %d, best of %d in CPU time:\n"
           "  embedding forward %.3f ms, LSTM forward %.3f ms (%.1f GFLOP/s),\n"
           "  LSTM backward %.3f ms (%.1f GFLOP/s; %.3f ms of it for dx),\n"
           "  embedding backward %.3f ms; per sample %.3f ms\n",
           B, reps, f_emb, f_lstm, flop / f_lstm * 1e-6, fb_dx - f_lstm,
           2.0 * flop / (fb_dx - f_lstm) * 1e-6, fb_dx - fb, b_emb, (f_emb + fb_dx + b_emb) / B);
    pst_free(params);
    pst_free(grads);
    pst_free(x);
    pst_free(e);
    pst_free(dx);
    pst_free(y);
    pst_free(dy);
    pst_free(saved);
    pst_free(labels);
}

int main(int argc, char **argv) {
    pst_flush_denormals(); /* as pstrain runs */
    const char *threads_list = "1,2";
    int batch = 32, steps = 100, warmup = 10, chunk = 0, json = 0, want_phases = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0 || strcmp(a, "--phases") == 0) {
            *(a[2] == 'j' ? &json : &want_phases) = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_imdb_lstm: %s: unknown flag or missing value\n", a);
            return 2;
        }
        if (strcmp(a, "--threads") == 0)
            threads_list = v;
        else if (strcmp(a, "--batch") == 0)
            batch = atoi(v);
        else if (strcmp(a, "--chunk") == 0)
            chunk = atoi(v);
        else if (strcmp(a, "--steps") == 0)
            steps = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atoi(v);
        else {
            fprintf(stderr, "bench_imdb_lstm: %s: unknown flag\n", a);
            return 2;
        }
        i++;
    }
    if (batch < 1 || steps < 1 || warmup < 0 || chunk < 0) {
        fprintf(stderr, "bench_imdb_lstm: bad --batch, --steps, --warmup or --chunk\n");
        return 2;
    }
    eng_model_def def = *eng_model_find("imdb_lstm");
    if (chunk > 0)
        def.chunk = chunk;
    eng_model m;
    char err[256];
    PST_ASSERT(eng_model_build(&m, &def, err, sizeof err) == PST_OK, "%s", err);
    if (want_phases)
        phases(&m, def.chunk, 7);
    const double flops = eng_model_flops_train(&m);
    char list[64];
    snprintf(list, sizeof list, "%s", threads_list);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        const int t = atoi(tok);
        if (t < 1) {
            fprintf(stderr, "bench_imdb_lstm: --threads: expected a list like 1,2\n");
            return 2;
        }
        double whole = 0.0;
        const double rate = train_rate(&m, batch, t, warmup, steps, &whole);
        if (json)
            printf("{\"impl\":\"pstrain\",\"model\":\"imdb_lstm\",\"threads\":%d,\"batch\":%d,"
                   "\"chunk\":%d,\"steps\":%d,\"samples_per_sec\":%.1f,"
                   "\"samples_per_sec_no_adam\":%.1f,\"gflops\":%.1f,\"openblas_core\":\"%s\"}\n",
                   t, batch, def.chunk, steps, whole, rate, rate * flops * 1e-9,
                   openblas_get_corename());
        else
            printf("pstrain imdb_lstm: %d threads, batch %d, chunk %d: %.0f samples/s with Adam, "
                   "%.0f without (%.1f GFLOP/s at %.1f MFLOP per sample), OpenBLAS %s\n",
                   t, batch, def.chunk, whole, rate, rate * flops * 1e-9, flops * 1e-6,
                   openblas_get_corename());
        fflush(stdout);
    }
    return 0;
}
