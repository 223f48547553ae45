/* bench_gan.c: DCGAN training steps per second in one process (mnist_gan), against which
 * tests/bench/torch_dcgan.py is the PyTorch reference.
 *
 *   build/tests/bench/bench_gan [--batch 32] [--threads 1,2] [--steps 200] [--warmup 20]
 *                               [--json]
 *
 * A step is what `pstrain train --model mnist_gan` does per batch in one process: noise,
 * the generator's forward, the discriminator on the real and the generated batch, both
 * networks' backward passes, then RMSprop on the discriminator and Adam on the generator.
 * Inputs are random images in [-1, 1]: speed does not depend on the data. */
#include "engine/base/base.h"
#include "engine/gan.h"
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

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Steps per second at `batch` on `threads` threads; the mean losses over the timed steps. */
static double step_rate(const eng_model *gm, const eng_model *dm, int batch, int threads,
                        int warmup, int steps, eng_gan_stats *st) {
    char err[256];
    eng_gan *g = eng_gan_new(gm, dm, batch, threads, err, sizeof err);
    PST_ASSERT(g, "%s", err);
    eng_net *gen = eng_gan_generator(g), *disc = eng_gan_discriminator(g);
    eng_model_init_params(gm, eng_net_params(gen), 1);
    eng_model_init_params(dm, eng_net_params(disc), 2);
    eng_optim_cfg gcfg = eng_optim_defaults(ENG_OPT_ADAM),
                  dcfg = eng_optim_defaults(ENG_OPT_RMSPROP);
    gcfg.lr = 1e-4f;
    dcfg.lr = 8e-4f;
    dcfg.clipvalue = 1.0f;
    dcfg.decay = 1e-8f;
    eng_optim *gopt = eng_optim_new(&gcfg, gm->layout.total);
    eng_optim *dopt = eng_optim_new(&dcfg, dm->layout.total);
    const size_t in = eng_shape_size(dm->input);
    float *x = pst_alloc(sizeof(float) * batch * in);
    PST_ASSERT(gopt && dopt && x, "out of memory");
    eng_rng r;
    eng_rng_seed(&r, 3);
    for (size_t i = 0; i < batch * in; i++)
        x[i] = 2.0f * eng_rng_uniform(&r) - 1.0f;
    double t0 = 0.0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            t0 = now();
            *st = (eng_gan_stats){0};
        }
        eng_gan_step(g, x, batch, (uint64_t)s, st);
        eng_net_apply(disc, dopt);
        eng_net_apply(gen, gopt);
    }
    const double rate = steps / (now() - t0);
    pst_free(x);
    eng_optim_free(&gopt);
    eng_optim_free(&dopt);
    eng_gan_free(&g);
    return rate;
}

int main(int argc, char **argv) {
    pst_flush_denormals(); /* as pstrain runs */
    const char *threads_list = "1,2";
    int batch = 32, steps = 200, warmup = 20, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_gan: %s: unknown flag or missing value\n", a);
            return 2;
        }
        if (strcmp(a, "--threads") == 0)
            threads_list = v;
        else if (strcmp(a, "--batch") == 0)
            batch = atoi(v);
        else if (strcmp(a, "--steps") == 0)
            steps = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atoi(v);
        else {
            fprintf(stderr, "bench_gan: %s: unknown flag\n", a);
            return 2;
        }
        i++;
    }
    if (batch < 1 || steps < 1 || warmup < 0) {
        fprintf(stderr, "bench_gan: --batch and --steps must be >= 1, --warmup >= 0\n");
        return 2;
    }
    const eng_model_def *def = eng_model_find("mnist_gan");
    eng_model gm, dm;
    char err[256];
    PST_ASSERT(eng_model_build(&gm, &def->parts[0], err, sizeof err) == PST_OK, "%s", err);
    PST_ASSERT(eng_model_build(&dm, &def->parts[1], err, sizeof err) == PST_OK, "%s", err);
    /* per real image: G forward and backward, D forward and backward on real and fake, and
     * the extra D pass that carries g_loss to the generator */
    const double flops = eng_model_flops_train(&gm) + 3.0 * eng_model_flops_train(&dm) +
                         2.0 * eng_model_flops_forward(&dm);
    char list[64];
    snprintf(list, sizeof list, "%s", threads_list);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        const int t = atoi(tok);
        if (t < 1) {
            fprintf(stderr, "bench_gan: --threads: expected a list like 1,2\n");
            return 2;
        }
        eng_gan_stats st;
        const double rate = step_rate(&gm, &dm, batch, t, warmup, steps, &st);
        const double gf = rate * batch * flops * 1e-9;
        const double dl = st.d_loss_sum / st.count, gl = st.g_loss_sum / st.count;
        if (json)
            printf("{\"impl\":\"pstrain\",\"model\":\"mnist_gan\",\"threads\":%d,\"batch\":%d,"
                   "\"steps\":%d,\"steps_per_sec\":%.2f,\"samples_per_sec\":%.1f,"
                   "\"gflops\":%.1f,\"d_loss\":%.4f,\"g_loss\":%.4f,\"openblas_core\":\"%s\"}\n",
                   t, batch, steps, rate, rate * batch, gf, dl, gl, openblas_get_corename());
        else
            printf("pstrain mnist_gan: %d threads, batch %d: %.2f steps/s (%.0f images/s), "
                   "%.1f GFLOP/s (%.0f MFLOP per image); d_loss %.4f, g_loss %.4f; OpenBLAS %s\n",
                   t, batch, rate, rate * batch, gf, flops * 1e-6, dl, gl, openblas_get_corename());
        fflush(stdout);
    }
    return 0;
}
