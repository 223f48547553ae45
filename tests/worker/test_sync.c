/* test_sync.c: sync mode is data parallelism done exactly.
 *
 * A real job (mpirun: 2 parameter servers, 2 workers, ZeroMQ on loopback) trains K steps;
 * in this process the same model trains K steps on the combined batches (worker 0's batch
 * then worker 1's, from the same streams the workers read) with one optimizer over the
 * whole vector. The weights must agree to float rounding, and a second run of the job must
 * give the same bits. */
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "tests/support/testutil.h"
#include "worker/stream.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

enum { WORKERS = 2, BATCH = 16, STEPS = 12, SEED = 7 };

static const char *pstrain;

/* Runs the job and returns its final weights (malloc'ed), or fails the test. */
static float *run_job(const char *dir, const char *tag, size_t n) {
    char out[512], steps[16], batch[16], seed[16];
    snprintf(out, sizeof out, "%s/%s.bin", dir, tag);
    snprintf(steps, sizeof steps, "%d", STEPS);
    snprintf(batch, sizeof batch, "%d", BATCH);
    snprintf(seed, sizeof seed, "%d", SEED);
    /* Under ASan, LeakSanitizer reports Open MPI's own allocations (its dlopen'ed components)
     * at exit; our code's leaks are checked where it runs without MPI (test_server,
     * test_client). */
    char *const argv[] = {"/usr/bin/mpirun",
                          "-np",
                          "4",
                          "--oversubscribe",
                          "-x",
                          "OPENBLAS_NUM_THREADS=1",
                          "-x",
                          "ASAN_OPTIONS=detect_leaks=0",
                          (char *)pstrain,
                          "train",
                          "--model",
                          "mnist_cnn",
                          "--servers",
                          "2",
                          "--mode",
                          "sync",
                          "--epochs",
                          "1",
                          "--max-steps",
                          steps,
                          "--batch",
                          batch,
                          "--seed",
                          seed,
                          "--threads",
                          "1",
                          "--progress",
                          "0",
                          "--data",
                          (char *)tu_data_dir(),
                          "--dump-weights",
                          out,
                          NULL};
    const char *env[] = {"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", NULL};
    tu_proc p;
    assert_int_equal(tu_run(&p, argv, env), 0);
    if (!p.exited || p.status != 0)
        fail_msg("mpirun exited %d (signal %d):\n%s\n%s", p.status, p.signal, p.out, p.err);
    tu_proc_deinit(&p);
    size_t len;
    char *bytes = tu_read_file(out, &len);
    assert_non_null(bytes);
    assert_int_equal(len, n * sizeof(float));
    return (float *)bytes;
}

/* K steps of one process on the combined batches of the job's workers. */
static float *run_reference(const eng_model *m) {
    char err[512];
    wk_stream s[WORKERS];
    int64_t usable = INT64_MAX;
    for (int w = 0; w < WORKERS; w++) {
        if (wk_stream_open(&s[w], tu_data_dir(), "mnist", NULL, 0.1, w, WORKERS, SEED, BATCH, err,
                           sizeof err) != 0)
            fail_msg("%s", err);
        if (s[w].data.train.n < usable)
            usable = s[w].data.train.n;
    }
    eng_net *net = eng_net_new(m, WORKERS * BATCH, 1, err, sizeof err);
    assert_non_null(net);
    eng_model_init_params(m, eng_net_params(net), SEED);
    eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    eng_optim *opt = eng_optim_new(&cfg, m->layout.total);
    const size_t in = eng_shape_size(m->input);
    float *x = malloc(sizeof(float) * WORKERS * BATCH * in);
    uint8_t *labels = malloc(WORKERS * BATCH);
    assert_non_null(opt);
    assert_non_null(x);
    assert_non_null(labels);
    for (int w = 0; w < WORKERS; w++)
        wk_stream_limit(&s[w], usable);
    for (int step = 0; step < STEPS; step++) {
        for (int w = 0; w < WORKERS; w++)
            assert_int_equal(
                wk_stream_batch(&s[w], step, x + (size_t)w * BATCH * in, labels + w * BATCH),
                BATCH);
        eng_batch_stats st = {0};
        eng_net_train_step(net, x, labels, WORKERS * BATCH, wk_step_key(SEED, step), &st);
        eng_net_apply(net, opt);
    }
    float *w = malloc(sizeof(float) * m->layout.total);
    assert_non_null(w);
    memcpy(w, eng_net_params(net), sizeof(float) * m->layout.total);
    for (int i = 0; i < WORKERS; i++)
        wk_stream_close(&s[i]);
    free(x);
    free(labels);
    eng_optim_free(&opt);
    eng_net_free(&net);
    return w;
}

static void sync_job_equals_one_process_on_combined_batches(void **state) {
    (void)state;
    char msg[512], dir[256];
    if (tu_check_dataset("mnist", msg, sizeof msg) != 0)
        fail_msg("%s", msg);
    eng_model m;
    assert_int_equal(eng_model_build(&m, eng_model_find("mnist_cnn"), msg, sizeof msg), 0);
    const size_t n = m.layout.total;
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "sync"), 0);
    float *a = run_job(dir, "a", n), *b = run_job(dir, "b", n);
    float *ref = run_reference(&m);
    float *init = malloc(sizeof(float) * n);
    assert_non_null(init);
    eng_model_init_params(&m, init, SEED);

    /* The same job twice: the same bits, whatever order messages arrived in. */
    assert_memory_equal(a, b, n * sizeof(float));

    /* Against one process only rounding differs (a mean of two means against one mean of
     * 32 gradients). Seen: largest difference 6e-8 against a largest move of 1.2e-2. A wrong
     * batch, mask or order moves weights by about lr (1e-3) per step. */
    double max_move = 0.0, max_diff = 0.0;
    for (size_t i = 0; i < n; i++) {
        double move = fabs((double)ref[i] - init[i]), diff = fabs((double)a[i] - ref[i]);
        if (move > max_move)
            max_move = move;
        if (diff > max_diff)
            max_diff = diff;
    }
    printf("after %d steps: largest move %.3g, largest difference from one process %.3g\n", STEPS,
           max_move, max_diff);
    assert_true(max_move > 1e-3); /* the weights did train */
    assert_true(max_diff <= 1e-3 * max_move);
    free(a);
    free(b);
    free(ref);
    free(init);
    tu_rmtree(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-PSTRAIN\n", argv[0]);
        return 2;
    }
    pstrain = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_job_equals_one_process_on_combined_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
