/* test_judge.c: eng_net_predict and the mnist_cnn judge (engine/judge.h).
 *
 * eng_net_predict gives the same bits on 1 and 2 threads, for batches that the threads share
 * unevenly, and the logits of eng_net_forward run by hand over the same passes (mnist_cnn,
 * with its dropout off, and imdb_lstm's sigmoid output). eng_judge_new refuses a missing
 * file, a directory without checkpoints and another model's checkpoint with one line naming
 * the path. On the real MNIST data (the test fails when it is missing), an mnist_cnn trained
 * here for 1,200 Adam steps of 32 and saved as a checkpoint judges: the test digits score an
 * Inception Score near 10 and uniform noise a low one; the Fréchet distance between two
 * halves of the test digits is small and that to noise over ten times larger; probability
 * rows sum to 1; a generator's [-1, 1] range, thread counts, a checkpoint directory and
 * eng_judge_scores agree with the plain run, and another batch size to rounding. */
#include "engine/judge.h"

#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/dataset.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "engine/score.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void build(eng_model *m, const char *name) {
    char err[256];
    if (eng_model_build(m, eng_model_find(name), err, sizeof err) != PST_OK)
        fail_msg("%s: %s", name, err);
}

static eng_net *net_new(const eng_model *m, int max_batch, int threads, uint64_t seed) {
    char err[256];
    eng_net *net = eng_net_new(m, max_batch, threads, err, sizeof err);
    if (!net)
        fail_msg("eng_net_new: %s", err);
    eng_model_init_params(m, eng_net_params(net), seed);
    return net;
}

/* --- eng_net_predict --- */

/* Inputs as the model reads them: pixels in [0, 1), or token ids below the vocabulary. */
static float *inputs(const eng_model *m, int B, uint64_t seed) {
    const size_t n = (size_t)B * eng_shape_size(m->input);
    float *x = malloc(sizeof(float) * n);
    assert_non_null(x);
    eng_rng r;
    eng_rng_seed(&r, seed);
    const int vocab = m->layers[0].spec.input_dim;
    for (size_t i = 0; i < n; i++)
        x[i] = vocab > 0 ? (float)(eng_rng_u64(&r) % (uint64_t)vocab) : eng_rng_uniform(&r);
    return x;
}

/* Batches of these sizes on nets of max_batch 32, whose passes hold the model's chunk on
 * either thread count (mnist_cnn 4, imdb_lstm 8): one sample, less than a pass, passes and a
 * partial one (7, 13: the threads' shares are unequal), whole passes, the most. Before
 * passes started at fixed places, 2 threads cut 7 samples as 3 + 4 and imdb_lstm's logits
 * differed from 1 thread's in the last bits. By hand the passes are eng_net_predict's too:
 * the same bits need the same products, and OpenBLAS's Haswell and Zen kernels round a
 * sample's logits otherwise in a pass of 4 than in one of 8. */
static void predict_agrees_on(const char *name) {
    eng_model m;
    build(&m, name);
    const size_t in = eng_shape_size(m.input), out = eng_shape_size(m.output);
    const int sizes[] = {1, 3, 7, 8, 13, 32};
    eng_net *one = net_new(&m, 32, 1, 11), *two = net_new(&m, 32, 2, 11);
    /* eng_net_forward by hand: 1 thread, the batch in passes of the model's chunk (4, net.c's
     * default, when the model names none), as eng_net_predict's nets of 32 run it */
    const int pass = m.def->chunk > 0 ? m.def->chunk : 4;
    eng_net *hand = net_new(&m, pass, 1, 11);
    float *y1 = malloc(sizeof(float) * 32 * out), *y2 = malloc(sizeof(float) * 32 * out),
          *yh = malloc(sizeof(float) * 32 * out);
    assert_true(y1 && y2 && yh);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int B = sizes[k];
        float *x = inputs(&m, B, 100 + (uint64_t)B);
        eng_net_predict(one, x, B, y1);
        eng_net_predict(two, x, B, y2);
        for (int s = 0; s < B; s += pass) {
            const int n = B - s < pass ? B - s : pass;
            eng_net_forward(hand, x + (size_t)s * in, n, 0, 0, yh + (size_t)s * out);
        }
        int finite = 1;
        for (size_t i = 0; i < (size_t)B * out; i++)
            finite &= isfinite(y1[i]);
        assert_true(finite);
        if (memcmp(y1, y2, sizeof(float) * (size_t)B * out) != 0)
            fail_msg("%s, batch %d: eng_net_predict on 2 threads differs from 1 thread", name, B);
        if (memcmp(y1, yh, sizeof(float) * (size_t)B * out) != 0)
            fail_msg("%s, batch %d: eng_net_predict differs from eng_net_forward by hand", name, B);
        printf("%s, batch %d: 1 thread, 2 threads and eng_net_forward agree bit for bit "
               "(y[0] = %.9g)\n",
               name, B, y1[0]);
        free(x);
    }
    free(y1);
    free(y2);
    free(yh);
    eng_net_free(&one);
    eng_net_free(&two);
    eng_net_free(&hand);
}

static void predict_agrees_cnn(void **state) {
    (void)state;
    predict_agrees_on("mnist_cnn");
}

static void predict_agrees_lstm(void **state) {
    (void)state;
    predict_agrees_on("imdb_lstm");
}

/* --- refusals --- */

static char tmp[1024];

static int setup(void **state) {
    (void)state;
    return tu_mkdtemp(tmp, sizeof tmp, "judge");
}

/* A judge must not come from path; err names it on one line. */
static void expect_refused(const char *path, const char *expect) {
    char err[1024] = "";
    eng_judge *j = eng_judge_new(path, 16, 1, err, sizeof err);
    printf("%s: %s\n", path, err);
    if (j)
        fail_msg("a judge from %s", path);
    if (!strstr(err, path) || (expect && !strstr(err, expect)) || strchr(err, '\n'))
        fail_msg("'%s': expected one line naming %s%s%s", err, path, expect ? " and saying " : "",
                 expect ? expect : "");
}

/* A checkpoint of imdb_lstm (random weights, Adam slots) at path. */
static void write_foreign(const char *path) {
    eng_model m;
    build(&m, "imdb_lstm");
    eng_ckpt c;
    eng_ckpt_init(&c, &m);
    eng_ckpt_part *p = &c.parts[0];
    c.weights = tu_random_floats(c.total, -0.1f, 0.1f, 5);
    p->optim = eng_optim_defaults(ENG_OPT_ADAM);
    p->nslots = 2;
    p->slots[0] = tu_random_floats(c.total, 0.0f, 0.01f, 6);
    p->slots[1] = tu_random_floats(c.total, 0.0f, 0.01f, 7);
    p->nruns = 1;
    p->runs = malloc(sizeof *p->runs);
    assert_true(c.weights && p->slots[0] && p->slots[1] && p->runs);
    p->runs[0] = (eng_ckpt_iters){0, c.total, 10};
    char err[512] = "";
    if (eng_ckpt_write(path, &c, &m, err, sizeof err) != PST_OK)
        fail_msg("eng_ckpt_write: %s", err);
    eng_ckpt_free(&c);
}

static void refuses_what_is_not_a_judge(void **state) {
    (void)state;
    char path[1200];
    snprintf(path, sizeof path, "%s/missing.h5", tmp);
    expect_refused(path, NULL);
    snprintf(path, sizeof path, "%s/empty", tmp);
    assert_int_equal(mkdir(path, 0700), 0);
    expect_refused(path, "no checkpoint");
    snprintf(path, sizeof path, "%s/imdb.h5", tmp);
    write_foreign(path);
    expect_refused(path, "a checkpoint of imdb_lstm; a judge needs mnist_cnn");
}

/* --- a trained judge on the real data --- */

#define STEPS 1200
#define BATCH 32
#define SEED 3
#define NTEST 5000

static eng_split data;
static int loaded;
static char ckpt_file[1200], ckpt_dir[1200];
static eng_judge *judge;
static float *test_x;   /* (NTEST, 28, 28, 1) in [0, 1] */
static uint8_t *test_y; /* (NTEST) */
static float *test_f;   /* (NTEST, 128): the judge's features */
static float *test_p;   /* (NTEST, 10) */
static float *noise;    /* (NTEST, 28, 28, 1) uniform in [0, 1) */

/* Trains mnist_cnn for STEPS steps and saves it both as ckpt_file and into ckpt_dir. */
static void train_and_save(void) {
    eng_model m;
    build(&m, "mnist_cnn");
    const size_t in = eng_shape_size(m.input);
    eng_net *net = net_new(&m, BATCH, 2, SEED);
    eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    eng_optim *opt = eng_optim_new(&cfg, m.layout.total);
    float *x = malloc(sizeof(float) * BATCH * in);
    uint8_t labels[BATCH];
    uint32_t idx[BATCH];
    assert_true(opt && x);
    eng_rng r;
    eng_rng_seed(&r, SEED);
    eng_batch_stats st = {0};
    const double t0 = now();
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < BATCH; i++)
            idx[i] = (uint32_t)(eng_rng_u64(&r) % (uint64_t)data.train.n);
        eng_dataset_gather(&data.train, idx, BATCH, x, labels);
        eng_net_train_step(net, x, labels, BATCH, (uint64_t)step, &st);
        eng_net_apply(net, opt);
    }
    printf("trained mnist_cnn: %d steps of %d in %.1f s, mean loss %.3f, accuracy %.3f\n", STEPS,
           BATCH, now() - t0, st.loss_sum / (double)st.count,
           (double)st.correct / (double)st.count);

    eng_ckpt c; /* borrows the net's and optimizer's arrays: nothing to free */
    eng_ckpt_init(&c, &m);
    c.weights = eng_net_params(net);
    c.parts[0].optim = cfg;
    c.parts[0].nslots = 2;
    c.parts[0].slots[0] = eng_optim_slot(opt, 0);
    c.parts[0].slots[1] = eng_optim_slot(opt, 1);
    eng_ckpt_iters run = {0, c.total, eng_optim_iterations(opt)};
    c.parts[0].nruns = 1;
    c.parts[0].runs = &run;
    char err[512] = "";
    snprintf(ckpt_file, sizeof ckpt_file, "%s/cnn.h5", tmp);
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/run", tmp);
    if (eng_ckpt_write(ckpt_file, &c, &m, err, sizeof err) != PST_OK ||
        eng_ckpt_save(ckpt_dir, STEPS, &c, &m, 0, NULL, 0, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    free(x);
    eng_optim_free(&opt);
    eng_net_free(&net);
}

/* The data, a trained judge and its outputs on the first NTEST test digits: made by the
 * first test that needs them. */
static void need_judge(void) {
    if (judge)
        return;
    char msg[1024];
    if (tu_check_dataset("mnist", msg, sizeof msg) != 0)
        fail_msg("%s", msg);
    if (!loaded &&
        eng_split_load_idx(&data, tu_data_dir(), "mnist", 0.0, 0, 1, msg, sizeof msg) != PST_OK)
        fail_msg("%s", msg);
    loaded = 1;
    assert_true(data.test.n >= NTEST);
    train_and_save();
    judge = eng_judge_new(ckpt_file, 100, 2, msg, sizeof msg);
    if (!judge)
        fail_msg("eng_judge_new: %s", msg);
    test_x = malloc(sizeof(float) * NTEST * ENG_JUDGE_PIXELS);
    test_y = malloc(NTEST);
    test_f = malloc(sizeof(float) * NTEST * ENG_JUDGE_FEATURES);
    test_p = malloc(sizeof(float) * NTEST * ENG_JUDGE_CLASSES);
    noise = malloc(sizeof(float) * NTEST * ENG_JUDGE_PIXELS);
    assert_true(test_x && test_y && test_f && test_p && noise);
    eng_dataset_slice(&data.test, 0, NTEST, test_x, test_y);
    eng_rng r;
    eng_rng_seed(&r, 77);
    tu_fill_uniform(noise, (size_t)NTEST * ENG_JUDGE_PIXELS, 0.0f, 1.0f, &r);
    const double t0 = now();
    eng_judge_run(judge, test_x, NTEST, 0.0f, 1.0f, test_p, test_f);
    printf("judged %d test digits in %.2f s\n", NTEST, now() - t0);
}

static int teardown(void **state) {
    (void)state;
    eng_judge_free(&judge);
    if (loaded)
        eng_split_deinit(&data);
    free(test_x);
    free(test_y);
    free(test_f);
    free(test_p);
    free(noise);
    tu_rmtree(tmp);
    return 0;
}

static double frechet(const float *a, size_t na, const float *b, size_t nb) {
    char err[256] = "";
    double fd = -1.0;
    if (eng_score_frechet(a, na, b, nb, ENG_JUDGE_FEATURES, &fd, err, sizeof err) != PST_OK)
        fail_msg("eng_score_frechet: %s", err);
    return fd;
}

/* The test digits: rows that sum to 1, the labels mostly the argmax, a high score. */
static void real_digits_score_high(void **state) {
    (void)state;
    need_judge();
    int hits = 0;
    double worst = 0.0;
    for (int i = 0; i < NTEST; i++) {
        const float *p = test_p + (size_t)i * ENG_JUDGE_CLASSES;
        double sum = 0.0;
        int top = 0;
        for (int k = 0; k < ENG_JUDGE_CLASSES; k++) {
            assert_true(p[k] >= 0.0f && p[k] <= 1.0f);
            sum += p[k];
            top = p[k] > p[top] ? k : top;
        }
        worst = fabs(sum - 1.0) > worst ? fabs(sum - 1.0) : worst;
        hits += top == test_y[i];
    }
    const double is = eng_score_inception(test_p, NTEST, ENG_JUDGE_CLASSES);
    printf("test digits: accuracy %.4f, IS %.4f, rows sum to 1 within %.2g\n", (double)hits / NTEST,
           is, worst);
    assert_true(worst < 1e-5);
    assert_true(hits > NTEST * 95 / 100);
    if (!(is > 8.5))
        fail_msg("IS of %d test digits %.4f, expected > 8.5", NTEST, is);
}

/* Uniform noise: no digit, a low score. */
static void noise_scores_low(void **state) {
    (void)state;
    need_judge();
    float *p = malloc(sizeof(float) * NTEST * ENG_JUDGE_CLASSES);
    assert_non_null(p);
    eng_judge_run(judge, noise, NTEST, 0.0f, 1.0f, p, NULL);
    const double is = eng_score_inception(p, NTEST, ENG_JUDGE_CLASSES);
    printf("uniform noise: IS %.4f\n", is);
    if (!(is < 3.0))
        fail_msg("IS of %d noise images %.4f, expected < 3", NTEST, is);
    free(p);
}

/* Two halves of the test digits are close; noise is far from both. */
static void frechet_separates_noise(void **state) {
    (void)state;
    need_judge();
    const size_t half = NTEST / 2;
    float *f = malloc(sizeof(float) * NTEST * ENG_JUDGE_FEATURES);
    assert_non_null(f);
    eng_judge_run(judge, noise, NTEST, 0.0f, 1.0f, NULL, f);
    const double rr = frechet(test_f, half, test_f + half * ENG_JUDGE_FEATURES, half);
    const double rn = frechet(test_f, half, f, half);
    printf("FD: test [0, %zu) vs [%zu, %d): %.4f; vs noise: %.4f (%.0fx)\n", half, half, NTEST, rr,
           rn, rn / rr);
    if (!(rr < 5.0))
        fail_msg("FD between two halves of the test digits %.4f, expected < 5", rr);
    if (!(rn > 10.0 * rr))
        fail_msg("FD to noise %.4f, expected over 10 times that between digits (%.4f)", rn, rr);
    free(f);
}

/* Rounding's unit for float: 2^-24. gamma(n) = n u / (1 - n u) bounds the relative error of
 * a sum of n products in any order (Higham, Accuracy and Stability of Numerical Algorithms,
 * 2nd ed., 3.1). */
#define UNIT_ROUNDOFF 0x1p-24
static double gamma_n(int n) { return n * UNIT_ROUNDOFF / (1.0 - n * UNIT_ROUNDOFF); }

/* Rows of p (n, 10) outside what rounding allows them to differ from pr, where both are the
 * judge's probabilities from the same features f (n, 128), with the rows of its last Dense
 * layer grouped into other products. Logit j of a row is a sum of 129 terms (the bias and
 * 128 products f_k kernel_kj) that any order rounds by at most gamma(129) S_j, where S_j =
 * |bias_j| + sum_k |f_k kernel_kj|, so two orders differ by at most D = 2 gamma(129) max_j
 * S_j. Logits moved by at most D each move the exact softmax's p_j by a factor within
 * e^(+-2D). The softmax's own rounding in each run adds at most u (2 R + 12) relative to p_j
 * (R: the row's largest logit minus its smallest; u for l_j - top times up to R, for expf,
 * 9 for the sum, 1 for the division), so |p_j - pr_j| <= pr_j (e^(2D) - 1 + u (4 R + 24)),
 * taken with the larger of p_j and pr_j. *ratio gets the largest |p_j - pr_j| / bound. */
static size_t probs_outside(const float *p, const float *pr, const float *f, size_t n,
                            const float *kernel, const float *bias, double *ratio) {
    const int F = ENG_JUDGE_FEATURES, C = ENG_JUDGE_CLASSES;
    size_t bad = 0;
    *ratio = 0.0;
    for (size_t i = 0; i < n; i++) {
        double S = 0.0, hi = -INFINITY, lo = INFINITY;
        for (int j = 0; j < C; j++) {
            double s = fabs(bias[j]), l = bias[j];
            for (int k = 0; k < F; k++) {
                s += fabs((double)f[i * F + k] * kernel[k * C + j]);
                l += (double)f[i * F + k] * kernel[k * C + j];
            }
            S = fmax(S, s);
            hi = fmax(hi, l);
            lo = fmin(lo, l);
        }
        const double D = 2.0 * gamma_n(F + 1) * S;
        const double rel = expm1(2.0 * D) + UNIT_ROUNDOFF * (4.0 * (hi - lo) + 24.0);
        int row_bad = 0;
        for (int j = 0; j < C; j++) {
            const double a = p[i * C + j], b = pr[i * C + j], bound = fmax(a, b) * rel;
            const double d = fabs(a - b);
            if (d > 0.0)
                *ratio = fmax(*ratio, bound > 0.0 ? d / bound : INFINITY);
            row_bad |= !(d <= bound);
        }
        bad += (size_t)row_bad;
    }
    return bad;
}

/* The same images in a generator's [-1, 1] give the same outputs to rounding. Other thread
 * counts and the judge read from the checkpoint directory give the same bits: the features
 * run in passes of 4 at the same places whatever the threads, and batches of the same size
 * make the same products. Batches of another size still run the same passes (64 and 100 are
 * multiples of 4), so the same features; the last Dense layer then multiplies 64 rows at a
 * time instead of 100, which OpenBLAS's Haswell and Zen kernels round otherwise: those
 * probabilities agree to the rounding probs_outside allows. */
static void ranges_batches_and_directories_agree(void **state) {
    (void)state;
    need_judge();
    const size_t n = 1001; /* batches of 100 and a remainder of 1; of 64 and one of 41 */
    const size_t C = ENG_JUDGE_CLASSES, F = ENG_JUDGE_FEATURES;
    float *img = malloc(sizeof(float) * n * ENG_JUDGE_PIXELS);
    float *p = malloc(sizeof(float) * n * C), *pr = malloc(sizeof(float) * n * C);
    float *f = malloc(sizeof(float) * n * F), *fr = malloc(sizeof(float) * n * F);
    assert_true(img && p && pr && f && fr);
    for (size_t i = 0; i < n * ENG_JUDGE_PIXELS; i++)
        img[i] = 2.0f * test_x[i] - 1.0f;
    eng_judge_run(judge, img, n, -1.0f, 1.0f, p, f);
    double dp = 0.0, df = 0.0;
    for (size_t i = 0; i < n * C; i++)
        dp = fmax(dp, fabs(p[i] - test_p[i]));
    for (size_t i = 0; i < n * F; i++)
        df = fmax(df, fabs(f[i] - test_f[i]));
    printf("[-1, 1] against [0, 1]: probabilities within %.2g, features within %.2g\n", dp, df);
    assert_true(dp < 1e-5 && df < 1e-4);

    /* The reference: this judge (batches of 100, 2 threads) over the n images; the first 1000
     * are the batches that made test_p and test_f. */
    eng_judge_run(judge, test_x, n, 0.0f, 1.0f, pr, fr);
    assert_memory_equal(pr, test_p, sizeof(float) * 1000 * C);
    assert_memory_equal(fr, test_f, sizeof(float) * 1000 * F);

    char err[512] = "";
    eng_judge *other = eng_judge_new(ckpt_dir, 100, 1, err, sizeof err);
    if (!other)
        fail_msg("eng_judge_new(%s): %s", ckpt_dir, err);
    eng_judge_run(other, test_x, n, 0.0f, 1.0f, p, f);
    assert_memory_equal(p, pr, sizeof(float) * n * C);
    assert_memory_equal(f, fr, sizeof(float) * n * F);
    memset(p, 0, sizeof(float) * n * C);
    eng_judge_run(other, test_x, n, 0.0f, 1.0f, p, NULL); /* probabilities alone */
    assert_memory_equal(p, pr, sizeof(float) * n * C);
    eng_judge_run(other, test_x, 0, 0.0f, 1.0f, p, f); /* nothing to do */
    eng_judge_free(&other);
    eng_judge_free(&other); /* a second free is harmless */

    eng_judge *b64 = eng_judge_new(ckpt_file, 64, 1, err, sizeof err);
    if (!b64)
        fail_msg("eng_judge_new(%s): %s", ckpt_file, err);
    eng_judge_run(b64, test_x, n, 0.0f, 1.0f, p, f);
    eng_judge_free(&b64);
    assert_memory_equal(f, fr, sizeof(float) * n * F);
    eng_ckpt c = {0};
    if (eng_ckpt_read(ckpt_file, &c, err, sizeof err) != PST_OK)
        fail_msg("eng_ckpt_read: %s", err);
    eng_model m;
    build(&m, "mnist_cnn");
    const int tk = eng_layout_find(&m.layout, "dense_1/kernel"),
              tb = eng_layout_find(&m.layout, "dense_1/bias");
    assert_true(tk >= 0 && tb >= 0);
    const float *kernel = c.weights + m.layout.tensors[tk].offset,
                *bias = c.weights + m.layout.tensors[tb].offset;
    double ratio = 0.0, shifted_ratio = 0.0;
    const size_t bad = probs_outside(p, pr, fr, n, kernel, bias, &ratio);
    size_t diff = 0;
    for (size_t i = 0; i < n * C; i++)
        diff += p[i] != pr[i];
    printf("batches of 64 against 100: the same features; %zu of %zu probabilities differ, by "
           "at most %.3g of what rounding allows\n",
           diff, n * C, ratio);
    if (bad)
        fail_msg("batches of 64: %zu of %zu rows of probabilities outside rounding of those of "
                 "batches of 100",
                 bad, n);
    /* Negative control: each row against the next image's rows fails nearly everywhere. */
    const size_t wrong = probs_outside(pr + C, pr, fr, n - 1, kernel, bias, &shifted_ratio);
    printf("  the next image's probabilities (must fail): %zu of %zu rows outside\n", wrong, n - 1);
    if (wrong < (n - 1) * 9 / 10)
        fail_msg("the next image's probabilities pass for %zu of %zu rows", n - 1 - wrong, n - 1);
    eng_ckpt_free(&c);
    free(img);
    free(p);
    free(pr);
    free(f);
    free(fr);
}

/* eng_judge_scores: what the run and score.h give, and its refusals. */
static void scores_agree_with_run(void **state) {
    (void)state;
    need_judge();
    const size_t half = NTEST / 2;
    double is = 0.0, fd = 0.0;
    char err[256] = "";
    if (eng_judge_scores(judge, test_x, half, 0.0f, 1.0f, test_f + half * ENG_JUDGE_FEATURES, half,
                         &is, &fd, err, sizeof err) != PST_OK)
        fail_msg("eng_judge_scores: %s", err);
    assert_true(is == eng_score_inception(test_p, half, ENG_JUDGE_CLASSES));
    assert_true(fd == frechet(test_f, half, test_f + half * ENG_JUDGE_FEATURES, half));
    double is2 = 0.0;
    assert_int_equal(
        eng_judge_scores(judge, test_x, 1, 0.0f, 1.0f, NULL, 0, &is2, NULL, err, sizeof err),
        PST_OK);
    assert_true(fabs(is2 - 1.0) < 1e-6); /* one image: p(y|x) = p(y) */
    fd = -1.0;
    assert_int_equal(
        eng_judge_scores(judge, test_x, 1, 0.0f, 1.0f, test_f, half, &is, &fd, err, sizeof err),
        PST_EARG);
    printf("one image for a distance: %s\n", err);
    assert_true(fd == -1.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(predict_agrees_cnn),
        cmocka_unit_test(predict_agrees_lstm),
        cmocka_unit_test(refuses_what_is_not_a_judge),
        cmocka_unit_test(real_digits_score_high),
        cmocka_unit_test(noise_scores_low),
        cmocka_unit_test(frechet_separates_noise),
        cmocka_unit_test(ranges_batches_and_directories_agree),
        cmocka_unit_test(scores_agree_with_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
