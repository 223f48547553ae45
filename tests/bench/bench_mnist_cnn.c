/* bench_mnist_cnn.c: training throughput of a registered model in one process, and the
 * sgemm rate OpenBLAS reaches on this machine in the same run, for scale.
 *
 *   build/tests/bench/bench_mnist_cnn [--model mnist_cnn] [--batch 32] [--threads 1,2]
 *                                     [--steps 400] [--warmup 30] [--json]
 *                                     [--conv auto|im2col|winograd|winograd2|winograd4|winograd5]
 *                                     [--chunk N]
 *
 * --conv pins how the convolutions compute (eng_model_set_conv); --chunk overrides the
 * samples a thread runs through the layers at a time (the model definition's chunk).
 * --probe trains nothing: one JSON line per thread count with the sgemm rate, the kernel
 * and the model's nominal MFLOP per training sample (tests/bench/compare.py's figures).
 *
 * A step is what `pstrain train` does per batch: gather + forward + backward + gradient
 * reduction + Adam. Inputs are random pixels: speed does not depend on the data. The
 * GFLOP/s figure counts the model's nominal FLOPs (eng_model_flops_train: Keras's layer
 * sizes, even where the engine skips work), so it compares with sgemm as an effective rate. */
#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "engine/rng.h"

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

/* Best of five ~0.3 s rounds of a 1024^3 sgemm on `threads` OpenBLAS threads. */
static double sgemm_gflops(int threads) {
    const int n = 1024;
    float *a = pst_alloc(sizeof(float) * n * n), *b = pst_alloc(sizeof(float) * n * n),
          *c = pst_alloc(sizeof(float) * n * n);
    PST_ASSERT(a && b && c, "out of memory");
    eng_rng r;
    eng_rng_seed(&r, 7);
    for (int i = 0; i < n * n; i++) {
        a[i] = eng_rng_uniform(&r);
        b[i] = eng_rng_uniform(&r);
    }
    openblas_set_num_threads(threads);
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        int reps = 0;
        double t0 = now(), t;
        do {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                        c, n);
            reps++;
        } while ((t = now() - t0) < 0.3);
        if (t / reps < best)
            best = t / reps;
    }
    pst_free(a);
    pst_free(b);
    pst_free(c);
    return 2.0 * n * n * n / best * 1e-9;
}

/* Training samples per second of model m at `batch` on `threads` threads. */
static double train_rate(const eng_model *m, int batch, int threads, int warmup, int steps) {
    char err[256];
    eng_net *net = eng_net_new(m, batch, threads, err, sizeof err);
    PST_ASSERT(net, "%s", err);
    eng_model_init_params(m, eng_net_params(net), 1);
    eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    eng_optim *opt = eng_optim_new(&cfg, m->layout.total);
    const size_t in = eng_shape_size(m->input);
    float *x = pst_alloc(sizeof(float) * batch * in);
    uint8_t *labels = pst_alloc((size_t)batch);
    PST_ASSERT(opt && x && labels, "out of memory");
    eng_rng r;
    eng_rng_seed(&r, 3);
    for (size_t i = 0; i < batch * in; i++)
        x[i] = (float)(eng_rng_below(&r, 256)) / 255.0f;
    for (int i = 0; i < batch; i++)
        labels[i] = (uint8_t)eng_rng_below(&r, (uint64_t)m->def->nclasses);
    double t0 = 0.0;
    eng_batch_stats st = {0};
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup)
            t0 = now();
        eng_net_train_step(net, x, labels, batch, (uint64_t)s, &st);
        eng_net_apply(net, opt);
    }
    double rate = (double)batch * steps / (now() - t0);
    pst_free(x);
    pst_free(labels);
    eng_optim_free(&opt);
    eng_net_free(&net);
    return rate;
}

int main(int argc, char **argv) {
    pst_flush_denormals(); /* as pstrain runs */
    const char *model = "mnist_cnn", *threads_list = "1,2", *conv = "auto";
    int batch = 32, steps = 400, warmup = 30, json = 0, chunk = -1, probe = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "--probe") == 0) {
            probe = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_mnist_cnn: %s: unknown flag or missing value\n", a);
            return 2;
        }
        if (strcmp(a, "--model") == 0)
            model = v;
        else if (strcmp(a, "--threads") == 0)
            threads_list = v;
        else if (strcmp(a, "--batch") == 0)
            batch = atoi(v);
        else if (strcmp(a, "--steps") == 0)
            steps = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atoi(v);
        else if (strcmp(a, "--conv") == 0)
            conv = v;
        else if (strcmp(a, "--chunk") == 0)
            chunk = atoi(v);
        else {
            fprintf(stderr, "bench_mnist_cnn: %s: unknown flag\n", a);
            return 2;
        }
        i++;
    }
    const eng_model_def *found = eng_model_find(model);
    eng_conv_algo algo;
    if (!found || batch < 1 || steps < 1 || warmup < 0 || (chunk != -1 && chunk < 1) ||
        eng_conv_algo_parse(conv, &algo) != PST_OK) {
        fprintf(stderr,
                "bench_mnist_cnn: bad --model, --batch, --steps, --warmup, --conv or --chunk\n");
        return 2;
    }
    eng_model_def def = *found;
    if (chunk > 0)
        def.chunk = chunk;
    eng_model m;
    char err[256];
    PST_ASSERT(eng_model_build(&m, &def, err, sizeof err) == PST_OK, "%s", err);
    eng_model_set_conv(&m, algo);
    const double flops = eng_model_flops_train(&m);
    char list[64];
    snprintf(list, sizeof list, "%s", threads_list);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        const int t = atoi(tok);
        if (t < 1) {
            fprintf(stderr, "bench_mnist_cnn: --threads: expected a list like 1,2\n");
            return 2;
        }
        const double peak = sgemm_gflops(t);
        if (probe) {
            printf("{\"model\":\"%s\",\"threads\":%d,\"sgemm_gflops\":%.1f,"
                   "\"mflop_per_sample\":%.3f,\"openblas_core\":\"%s\"}\n",
                   model, t, peak, flops * 1e-6, openblas_get_corename());
            continue;
        }
        const double rate = train_rate(&m, batch, t, warmup, steps);
        const double gf = rate * flops * 1e-9;
        if (json)
            printf("{\"impl\":\"pstrain\",\"model\":\"%s\",\"threads\":%d,\"batch\":%d,"
                   "\"steps\":%d,\"samples_per_sec\":%.1f,\"gflops\":%.1f,"
                   "\"sgemm_gflops\":%.1f,\"fraction_of_sgemm\":%.3f,\"openblas_core\":\"%s\"}\n",
                   model, t, batch, steps, rate, gf, peak, gf / peak, openblas_get_corename());
        else
            printf("pstrain %s: %d threads, batch %d: %.0f samples/s, %.1f GFLOP/s "
                   "(%.0f%% of sgemm's %.1f GFLOP/s; %.2f MFLOP per sample), OpenBLAS %s\n",
                   model, t, batch, rate, gf, 100.0 * gf / peak, peak, flops * 1e-6,
                   openblas_get_corename());
        fflush(stdout);
    }
    return 0;
}
