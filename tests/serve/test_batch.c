/* test_batch.c: `pstrain serve`'s batcher, served models and metrics (launch/serve/batch.h,
 * models.h, metrics.h) without HTTP, on the mnist_cnn fixture checkpoint:
 *   - requests from several threads that are all on their way are merged into one forward
 *     pass, and each gets its own rows back (as a pass of its samples alone gives them);
 *   - a lone request runs at once, however long the timeout;
 *   - a request waits for one on its way, but no longer than the timeout;
 *   - a directory's latest is followed: a corrupt file is refused (the old version serves on
 *     and a request holding it still runs on it), a good one swapped in;
 *   - the metrics text counts what happened. */
#include "engine/base/base.h"
#include "launch/serve/batch.h"
#include "launch/serve/metrics.h"
#include "launch/serve/models.h"
#include "tests/support/testutil.h"
#include "worker/infer.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef PSTRAIN_FIXTURES
#define PSTRAIN_FIXTURES "tests/fixtures"
#endif
#define FIXTURE PSTRAIN_FIXTURES "/mnist_cnn-step20.h5"

/* Sleeps ms milliseconds (usleep is not POSIX 2008's). */
static void sleep_ms(long ms) {
    const struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

#define THREADS 8
#define PER 3 /* samples per request */
#define IN 784
#define OUT 10

/* Prepared inputs (THREADS * PER, IN) and their outputs run one sample at a time. */
static float xs[THREADS * PER * IN], want[THREADS * PER * OUT];

static wk_infer *load_fixture(int max_batch) {
    char err[512] = "";
    int rc = 0;
    wk_infer *m = wk_infer_load(FIXTURE, max_batch, 1, 0, &rc, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    return m;
}

static void make_inputs(wk_infer *m) {
    float *img = tu_random_floats(IN, 0.0f, 1.0f, 7);
    for (int s = 0; s < THREADS * PER; s++) {
        char err[256];
        for (int i = 0; i < IN; i++) /* a different image per sample */
            img[i] = fmodf(img[i] + 0.37f * (float)(s + 1), 1.0f);
        assert_int_equal(wk_infer_prepare(m, 0, img, IN, xs + (size_t)s * IN, err, sizeof err),
                         PST_OK);
        wk_infer_run(m, xs + (size_t)s * IN, 1, want + (size_t)s * OUT);
    }
    free(img);
}

/* The first value of y (n, OUT) that is not near the single-sample outputs from sample
 * `first` on, or -1: a batch may compute a row with other kernels, so not bit for bit
 * (infer.h), but it is the same row of the same image. */
static int rows_differ(const float *y, int first, int n) {
    for (int i = 0; i < n * OUT; i++)
        if (fabsf(y[i] - want[(size_t)first * OUT + (size_t)i]) > 1e-5f)
            return i;
    return -1;
}

static void assert_rows(const float *y, int first, int n) {
    const int i = rows_differ(y, first, n);
    if (i >= 0)
        fail_msg("sample %d output %d: %g, alone %g", first + i / OUT, i % OUT, (double)y[i],
                 (double)want[(size_t)first * OUT + (size_t)i]);
}

/* The value of an unlabelled metric line "name value" in the text. */
static double metric(sv_metrics *mt, const char *name) {
    size_t len;
    char *t = sv_metrics_text(mt, &len);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(t, key);
    const double v = p ? atof(p + strlen(key)) : -1;
    free(t);
    return v;
}

/* The metrics text, kept until the next call (a test's convenience). */
static const char *text(sv_metrics *mt) {
    static char *t;
    size_t len;
    free(t);
    t = sv_metrics_text(mt, &len);
    return t;
}

typedef struct worker_arg {
    sv_batcher *b;
    wk_infer *m;
    int t;
    pthread_barrier_t *go;
    float y[PER * OUT]; /* the answer, checked by the main thread (cmocka's is) */
} worker_arg;

static void *submit(void *p) {
    worker_arg *a = p;
    sv_batcher_arriving(a->b, +1); /* as the HTTP layer does with the headers */
    pthread_barrier_wait(a->go);
    sv_batcher_run(a->b, a->m, xs + (size_t)a->t * PER * IN, PER, a->y, 1);
    return NULL;
}

static void test_concurrent_requests_share_one_pass(void **state) {
    (void)state;
    wk_infer *m = load_fixture(64);
    make_inputs(m);
    sv_metrics *mt = sv_metrics_new(64);
    char err[256];
    sv_batcher *b = sv_batcher_new(64, IN, OUT, 2000000, mt, err, sizeof err); /* 2 s */
    assert_non_null(b);
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, THREADS + 1);
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg){.b = b, .m = m, .t = t, .go = &go};
        pthread_create(&th[t], NULL, submit, &args[t]);
    }
    pthread_barrier_wait(&go); /* all THREADS are counted arriving before any is queued */
    const double t0 = pst_now();
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++)
        assert_rows(args[t].y, t * PER, PER);
    /* the last one queued made the batch run: no arriving request left to wait for */
    assert_true(pst_now() - t0 < 1.0);
    assert_int_equal((int)metric(mt, "pstrain_serve_batch_size_count"), 1);
    assert_int_equal((int)metric(mt, "pstrain_serve_batch_size_sum"), THREADS * PER);
    pthread_barrier_destroy(&go);
    sv_batcher_free(&b);
    assert_null(b);
    sv_metrics_free(&mt);
    wk_infer_free(&m);
}

static void test_lone_request_runs_at_once(void **state) {
    (void)state;
    wk_infer *m = load_fixture(64);
    make_inputs(m);
    sv_metrics *mt = sv_metrics_new(64);
    char err[256];
    sv_batcher *b = sv_batcher_new(64, IN, OUT, 5000000, mt, err, sizeof err); /* 5 s */
    float y[OUT];
    const double t0 = pst_now();
    sv_batcher_run(b, m, xs, 1, y, 0);
    assert_true(pst_now() - t0 < 0.5);
    assert_rows(y, 0, 1);
    sv_batcher_free(&b);
    sv_metrics_free(&mt);
    wk_infer_free(&m);
}

static void test_wait_is_bounded_by_the_timeout(void **state) {
    (void)state;
    wk_infer *m = load_fixture(64);
    make_inputs(m);
    sv_metrics *mt = sv_metrics_new(64);
    char err[256];
    sv_batcher *b = sv_batcher_new(64, IN, OUT, 100000, mt, err, sizeof err); /* 100 ms */
    sv_batcher_arriving(b, +1); /* one that never comes */
    float y[2 * OUT];
    const double t0 = pst_now();
    sv_batcher_run(b, m, xs + IN, 2, y, 0);
    const double took = pst_now() - t0;
    assert_true(took >= 0.09 && took < 1.0);
    assert_rows(y, 1, 2);
    sv_batcher_arriving(b, -1);
    sv_batcher_free(&b);
    sv_metrics_free(&mt);
    wk_infer_free(&m);
}

/* Copies the fixture to dir/name. */
static void put_fixture(const char *dir, const char *name) {
    size_t len;
    char *bytes = tu_read_file(FIXTURE, &len), path[512];
    assert_non_null(bytes);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(tu_write_file(path, bytes, len), 0);
    free(bytes);
}

/* latest := name, atomically as eng_ckpt_save does. */
static void set_latest(const char *dir, const char *name) {
    char tmp[512], path[512], line[128];
    snprintf(tmp, sizeof tmp, "%s/.latest.tmp", dir);
    snprintf(path, sizeof path, "%s/latest", dir);
    snprintf(line, sizeof line, "%s\n", name);
    assert_int_equal(tu_write_file(tmp, line, strlen(line)), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void test_reload_follows_latest(void **state) {
    (void)state;
    char dir[256];
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "serve"), 0);
    put_fixture(dir, "ckpt-20.h5");
    set_latest(dir, "ckpt-20.h5");
    sv_metrics *mt = sv_metrics_new(64);
    char err[1024] = "";
    int rc = 0;
    sv_models *s = sv_models_new(dir, 64, 1, 0, mt, &rc, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    sv_model *old = sv_models_acquire(s);
    assert_int_equal((int)old->version, 20);
    assert_int_equal((int)metric(mt, "pstrain_serve_model_version"), 20);
    make_inputs(old->infer);

    /* a corrupt file: refused, the old version serves on */
    char path[512];
    snprintf(path, sizeof path, "%s/ckpt-30.h5", dir);
    assert_int_equal(tu_write_file(path, "not a checkpoint", 16), 0);
    set_latest(dir, "ckpt-30.h5");
    for (int i = 0; i < 100 && !strstr(text(mt), "{result=\"failed\"} 1\n"); i++)
        sleep_ms(50); /* the watcher looks every 200 ms; a loaded machine may take longer */
    sv_model *m = sv_models_acquire(s);
    assert_ptr_equal(m, old);
    sv_models_release(s, &m);
    assert_null(m);

    /* a good file under a new name: swapped in; the request holding the old one runs on */
    put_fixture(dir, "ckpt-31.h5");
    set_latest(dir, "ckpt-31.h5");
    for (int i = 0; i < 50; i++) {
        m = sv_models_acquire(s);
        const int swapped = m != old;
        sv_models_release(s, &m);
        if (swapped)
            break;
        sleep_ms(100);
    }
    m = sv_models_acquire(s);
    assert_ptr_not_equal(m, old);
    assert_non_null(strstr(m->path, "ckpt-31.h5"));
    float y[OUT];
    wk_infer_run(old->infer, xs, 1, y); /* still alive: this request's reference */
    assert_rows(y, 0, 1);
    sv_models_release(s, &old);
    sv_models_release(s, &m);
    sv_models_free(&s);
    assert_null(s);

    size_t len;
    char *t = sv_metrics_text(mt, &len);
    assert_non_null(strstr(t, "pstrain_serve_reloads_total{result=\"ok\"} 1\n"));
    assert_non_null(strstr(t, "pstrain_serve_reloads_total{result=\"failed\"} 1\n"));
    free(t);
    sv_metrics_free(&mt);
    tu_rmtree(dir);
}

static void test_metrics_text(void **state) {
    (void)state;
    sv_metrics *mt = sv_metrics_new(64);
    sv_metrics_request(mt, SV_EP_TFS_PREDICT, 200, 0.0007);
    sv_metrics_request(mt, SV_EP_TFS_PREDICT, 200, 0.003);
    sv_metrics_request(mt, SV_EP_V2_INFER, 400, 0.0001);
    sv_metrics_request(mt, SV_EP_UNKNOWN, 418, 0.0);
    sv_metrics_batch(mt, 1);
    sv_metrics_batch(mt, 40);
    sv_metrics_version(mt, 400);
    size_t len;
    char *t = sv_metrics_text(mt, &len);
    assert_int_equal(strlen(t), len);
    static const char *const lines[] = {
        "pstrain_serve_requests_total{endpoint=\"tfs_predict\",code=\"200\"} 2\n",
        "pstrain_serve_requests_total{endpoint=\"v2_infer\",code=\"400\"} 1\n",
        "pstrain_serve_requests_total{endpoint=\"unknown\",code=\"other\"} 1\n",
        "pstrain_serve_request_duration_seconds_bucket{endpoint=\"tfs_predict\",le=\"0.0005\"} 0\n",
        "pstrain_serve_request_duration_seconds_bucket{endpoint=\"tfs_predict\",le=\"0.001\"} 1\n",
        "pstrain_serve_request_duration_seconds_bucket{endpoint=\"tfs_predict\",le=\"+Inf\"} 2\n",
        "pstrain_serve_request_duration_seconds_count{endpoint=\"tfs_predict\"} 2\n",
        "pstrain_serve_batch_size_bucket{le=\"1\"} 1\n",
        "pstrain_serve_batch_size_bucket{le=\"32\"} 1\n",
        "pstrain_serve_batch_size_bucket{le=\"64\"} 2\n",
        "pstrain_serve_batch_size_bucket{le=\"+Inf\"} 2\n",
        "pstrain_serve_batch_size_sum 41\n",
        "# TYPE pstrain_serve_model_version gauge\npstrain_serve_model_version 400\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(t, lines[i]))
            fail_msg("missing: %s in\n%s", lines[i], t);
    assert_null(strstr(t, "le=\"128\"")); /* buckets stop at max_batch */
    free(t);
    sv_metrics_free(&mt);
    assert_null(mt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_requests_share_one_pass),
        cmocka_unit_test(test_lone_request_runs_at_once),
        cmocka_unit_test(test_wait_is_bounded_by_the_timeout),
        cmocka_unit_test(test_reload_follows_latest),
        cmocka_unit_test(test_metrics_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
