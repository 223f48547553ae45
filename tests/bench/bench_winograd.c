/* bench_winograd.c: one 3x3 convolution's forward + backward (with dx) on one thread, im2col
 * + sgemm (eng_conv2d_forward_part / _backward_part) against Winograd F(2x2), F(4x4) and F(5x5)
 * (engine/winograd.h), and against the direct loops (engine/conv2d_direct.h) where
 * eng_conv2d_direct_suits, at mnist_cnn's conv2 shape per thread chunk (B 4, 13x13x32 -> the
 * 10x10 of 11x11 that the floor pool reads, 64 filters) and a larger 26x26x32 -> 24x24x64.
 * "bwd no dx" is the backward without the input gradient, as a first layer runs it.
 *
 *   build/tests/bench/bench_winograd [--rounds 7] [--min-time 0.2] [--chunks 8]
 *
 * Best of the rounds, each as many repetitions as fill min-time seconds. "per chunk" is a
 * chunk's forward + backward plus its share of the kernel transform, which a step makes
 * once for its `chunks` chunks (batch 32 in chunks of 4: 8). The GFLOP/s figure
 * is the direct convolution's FLOPs (3 x 2 B OH OW 9 C F for forward, dkernel and dx) over
 * the time: an effective rate, comparable with sgemm's. Says which OpenBLAS kernel ran. */
#include "engine/base/base.h"
#include "engine/blas.h"
#include "engine/conv2d.h"
#include "engine/conv2d_direct.h"
#include "engine/rng.h"
#include "engine/winograd.h"

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

typedef struct shape {
    const char *name;
    int B, H, W, C, F, OH, OW;
} shape;

typedef struct bufs {
    float *x, *k, *b, *y, *dy, *dx, *dk, *db, *col, *saved, *scratch, *U;
} bufs;

#define DIRECT 1 /* the method number of the direct loops */

/* method 0: im2col; DIRECT; else the tile size m. phase 1 forward, 2 backward, 3 both, 4
 * the kernel transform alone (once per weight update, shared by a step's chunks), 8 the
 * backward without dx (a first layer's). */
static void step(const shape *s, bufs *u, int method, int phase) {
    const eng_winograd_tf *t = method > DIRECT ? eng_winograd_tf_for(method) : NULL;
    if (method == DIRECT) {
        if (phase & 1)
            eng_conv2d_direct_forward(u->y, u->x, u->k, u->b, s->B, s->H, s->W, s->C, 3, 3, s->F,
                                      s->OH, s->OW, ENG_ACT_RELU);
        if (phase & 10)
            eng_conv2d_direct_backward(phase & 8 ? NULL : u->dx, u->dk, u->db, u->dy, u->y, u->x,
                                       u->k, s->B, s->H, s->W, s->C, 3, 3, s->F, s->OH, s->OW,
                                       ENG_ACT_RELU, 1);
        return;
    }
    if (phase & 4) {
        if (t)
            eng_winograd_kernel_transform(u->U, u->k, s->C, s->F, t);
    }
    if (phase & 1) {
        if (t)
            eng_winograd_forward(u->y, u->saved, u->scratch, u->x, u->U, u->b, s->B, s->H, s->W,
                                 s->C, s->F, s->OH, s->OW, t, ENG_ACT_RELU);
        else
            eng_conv2d_forward_part(u->y, u->col, u->x, u->k, u->b, s->B, s->H, s->W, s->C, 3, 3,
                                    s->F, s->OH, s->OW, ENG_ACT_RELU);
    }
    if (phase & 10) {
        float *dx = phase & 8 ? NULL : u->dx;
        if (t)
            eng_winograd_backward(dx, u->dk, u->db, u->dy, u->saved, u->scratch, u->y, u->U, s->B,
                                  s->H, s->W, s->C, s->F, s->OH, s->OW, t, ENG_ACT_RELU, 1);
        else
            eng_conv2d_backward_part(dx, u->dk, u->db, u->dy, u->col, u->y, u->k, s->B, s->H, s->W,
                                     s->C, 3, 3, s->F, s->OH, s->OW, ENG_ACT_RELU, 1);
    }
}

/* A gradient for the backward to consume (it overwrites dy; the ReLU mask from y): set
 * outside the timing, whose 86k-element modulo loop took 50 us, a third of conv1's. */
static void fill_dy(const shape *s, bufs *u) {
    const size_t ny = (size_t)s->B * s->OH * s->OW * s->F;
    for (size_t i = 0; i < ny; i++)
        u->dy[i] = (float)(i % 7) * 0.1f - 0.3f;
}

/* Seconds per call of the phase, best of rounds. Backward alone re-runs the forward first
 * (untimed) since it consumes saved/col and overwrites dy. */
static double time_phase(const shape *s, bufs *u, int method, int phase, int rounds,
                         double min_time) {
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        double spent = 0;
        int reps = 0;
        while (spent < min_time) {
            if (phase == 2 || phase == 8)
                step(s, u, method, 1);
            if (phase & 10)
                fill_dy(s, u);
            double t0 = now();
            step(s, u, method, phase);
            spent += now() - t0;
            reps++;
        }
        if (spent / reps < best)
            best = spent / reps;
    }
    return best;
}

int main(int argc, char **argv) {
    pst_flush_denormals(); /* as pstrain runs */
    int rounds = 7, chunks = 8;
    double min_time = 0.2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--chunks") == 0 && i + 1 < argc)
            chunks = atoi(argv[++i]);
        else if (strcmp(argv[i], "--min-time") == 0 && i + 1 < argc)
            min_time = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--rounds N] [--min-time SECONDS] [--chunks N]\n", argv[0]);
            return 2;
        }
    }
    openblas_set_num_threads(1);
    char desc[160];
    printf("bench_winograd: 1 thread, %s\n", eng_blas_describe(desc, sizeof desc));
    static const shape shapes[] = {
        {"mnist_cnn conv2 (13x13x32 -> 10x10 of 11x11 x64)", 4, 13, 13, 32, 64, 10, 10},
        {"26x26x32 -> 24x24x64", 4, 26, 26, 32, 64, 24, 24},
        {"mnist_cnn conv1 (28x28x1 -> 26x26x32)", 4, 28, 28, 1, 32, 26, 26},
        {"16x16x16 -> 14x14x16", 4, 16, 16, 16, 16, 14, 14},
        {"10x10x64 -> 8x8x64", 4, 10, 10, 64, 64, 8, 8},
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        const size_t nx = (size_t)s->B * s->H * s->W * s->C, nk = (size_t)9 * s->C * s->F;
        const size_t ny = (size_t)s->B * s->OH * s->OW * s->F;
        size_t nsaved = 0, nscratch = 0;
        for (int m = 2; m <= 5; m++) {
            if (m == 3)
                continue;
            const eng_winograd_tf *t = eng_winograd_tf_for(m);
            size_t a = eng_winograd_saved_floats(t, s->B, s->OH, s->OW, s->C);
            size_t b = eng_winograd_scratch_floats(t, s->B, s->OH, s->OW, s->C, s->F);
            nsaved = a > nsaved ? a : nsaved;
            nscratch = b > nscratch ? b : nscratch;
        }
        bufs u = {
            pst_alloc(sizeof(float) * nx),
            pst_alloc(sizeof(float) * nk),
            pst_alloc(sizeof(float) * (size_t)s->F),
            pst_alloc(sizeof(float) * ny),
            pst_alloc(sizeof(float) * ny),
            pst_alloc(sizeof(float) * nx),
            pst_alloc(sizeof(float) * nk),
            pst_alloc(sizeof(float) * (size_t)s->F),
            pst_alloc(sizeof(float) * (size_t)s->B * s->OH * s->OW * 9 * s->C),
            pst_alloc(sizeof(float) * nsaved),
            pst_alloc(sizeof(float) * nscratch),
            pst_alloc(sizeof(float) *
                      eng_winograd_kernel_floats(eng_winograd_tf_for(5), s->C, s->F)),
        };
        eng_rng rng;
        eng_rng_seed(&rng, 11);
        for (size_t i = 0; i < nx; i++)
            u.x[i] = eng_rng_uniform(&rng);
        for (size_t i = 0; i < nk; i++)
            u.k[i] = 0.1f * (eng_rng_uniform(&rng) - 0.5f);
        const double flops = 3.0 * 2 * s->B * s->OH * s->OW * 9.0 * s->C * s->F;
        printf("%s, B %d: direct FLOPs %.1f M (forward + dkernel + dx)\n", s->name, s->B,
               flops * 1e-6);
        double base = 0;
        static const int methods[] = {0, 2, 4, 5, DIRECT};
        for (int mi = 0; mi < 5; mi++) {
            const int m = methods[mi];
            if (m == DIRECT && !eng_conv2d_direct_suits(3, 3, s->C, s->F))
                continue;
            fill_dy(s, &u);
            step(s, &u, m, 7); /* warm up; U for the forward */
            const double tf = time_phase(s, &u, m, 1, rounds, min_time);
            const double tb = time_phase(s, &u, m, 2, rounds, min_time);
            const double tb0 = time_phase(s, &u, m, 8, rounds, min_time);
            const double tk = m > DIRECT ? time_phase(s, &u, m, 4, rounds, min_time) : 0.0;
            /* a step of `chunks` chunks: one kernel transform, then each chunk's passes */
            const double tt = time_phase(s, &u, m, 3, rounds, min_time) + tk / chunks;
            if (m == 0)
                base = tt;
            char name[16] = "im2col";
            if (m == DIRECT)
                snprintf(name, sizeof name, "direct");
            else if (m)
                snprintf(name, sizeof name, "F(%dx%d)", m, m);
            printf("  %-7s forward %7.1f us  backward %7.1f us  bwd no dx %7.1f us  kernel "
                   "transform %6.1f us  per chunk %7.1f us  %6.1f GFLOP/s effective  %.2fx "
                   "im2col\n",
                   name, tf * 1e6, tb * 1e6, tb0 * 1e6, tk * 1e6, tt * 1e6, flops / tt * 1e-9,
                   base / tt);
        }
        void *all[] = {u.x, u.k, u.b, u.y, u.dy, u.dx, u.dk, u.db, u.col, u.saved, u.scratch, u.U};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            pst_free(all[i]);
    }
    return 0;
}
