/* test_client.c: the worker's client against real parameter servers (child processes,
 * ZeroMQ on loopback, ephemeral ports).
 *
 * A server that does not answer, one that refuses our model or layout, and one that owns
 * another shard each make wk_client_new return NULL within its timeout with a message naming
 * the endpoint and the reason; a pull that is never answered times out the same way. A
 * client that agrees with its servers (one, or two splitting the vector) pulls the initial
 * weights bit for bit, pushes a gradient, pulls exactly one Adam step later, and says
 * goodbye with each server's counters; every server then exits 0. Coded pushes (top-k of
 * bf16 values) lose nothing: what the server applied plus the client's residual is the sum of
 * the gradients; coded pulls (bf16 changes) keep the weights within bf16's rounding of each
 * change of the server's, and a settled pull makes them equal bit for bit. */
#include "worker/client.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "proto/codec.h"
#include "tests/support/psfork.h"
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define CNN_TOTAL 225034
#define TIMEOUT_S 5.0

static tu_psfork servers[2];

static int kill_servers(void **state) {
    (void)state;
    for (int i = 0; i < 2; i++)
        tu_psfork_kill(&servers[i]);
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void build(eng_model *m, const char *name) {
    char err[256] = "";
    const eng_model_def *def = eng_model_find(name);
    assert_non_null(def);
    if (eng_model_build(m, def, err, sizeof err) != PST_OK)
        fail_msg("eng_model_build(%s): %s", name, err);
}

static void start_cfg(tu_psfork *f, const tu_psfork_cfg *cfg) {
    char err[640] = "";
    if (tu_psfork_start(f, cfg, err, sizeof err) != 0)
        fail_msg("%s", err);
}

/* Server id of num_servers, for num_workers, in sync mode, seed 1, Adam. */
static void start(tu_psfork *f, int id, int num_servers, int num_workers) {
    tu_psfork_cfg cfg = tu_psfork_defaults();
    cfg.server_id = id;
    cfg.num_servers = num_servers;
    cfg.num_workers = num_workers;
    start_cfg(f, &cfg);
}

static void expect_exit_0(tu_psfork *f) {
    char err[256] = "";
    const int rc = tu_psfork_wait(f, TIMEOUT_S, err, sizeof err);
    if (rc != 0)
        fail_msg("the server exited with %d %s", rc, err);
}

/* A TCP port on 127.0.0.1 where nothing listens: bound by the kernel, then released. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void expect_in(const char *err, const char *needle, const char *what) {
    if (!strstr(err, needle))
        fail_msg("%s: the message '%s' does not contain '%s'", what, err, needle);
}

/* --- nobody there --- */

static void no_server_times_out(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", free_port());
    const char *eps[] = {ep};
    char err[512] = "";
    const double t0 = now_s();
    wk_client *c = wk_client_new(eps, 1, 0, 1, &m, 0.5, NULL, err, sizeof err);
    const double took = now_s() - t0;
    printf("  %.2f s: %s\n", took, err);
    assert_null(c);
    if (took > 2.0)
        fail_msg("wk_client_new took %.2f s with a timeout of 0.5 s", took);
    if (took < 0.4)
        fail_msg("wk_client_new gave up after %.2f s, before its timeout of 0.5 s", took);
    expect_in(err, ep, "no server");
    expect_in(err, "no answer", "no server");
}

/* Scribbles over the stack below the caller, as earlier calls would have. */
static __attribute__((noinline)) void dirty_stack(void) {
    volatile unsigned char junk[1 << 16];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0xa5;
}

/* The child: exit 0 when wk_client_new returns NULL after the timeout. */
static __attribute__((noinline)) int new_on_dirty_stack(const char *ep, const eng_model *m) {
    const char *eps[] = {ep};
    char err[512] = "";
    dirty_stack();
    wk_client *c = wk_client_new(eps, 1, 0, 1, m, 0.2, NULL, err, sizeof err);
    return c == NULL && strstr(err, "no answer") ? 0 : 3;
}

/* The same timeout with whatever an earlier call left on the stack: a timeout must not
 * touch a message it never received. */
static void no_server_on_dirty_stack(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", free_port());
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        alarm(10);
        _exit(new_on_dirty_stack(ep, &m));
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        assert_int_equal(errno, EINTR);
    if (WIFSIGNALED(ws))
        fail_msg("wk_client_new crashed (signal %d, %s) when the server did not answer; with a "
                 "clean stack it may not",
                 WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        fail_msg("wk_client_new on a dirty stack: child exited %d (3: no NULL or no 'no answer')",
                 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
}

/* --- refusals --- */

/* Another model (same layout), another layout (same size): the server's reason reaches us. */
static void refused_model_and_layout(void **state) {
    (void)state;
    tu_psfork *f = &servers[0];
    start(f, 0, 1, 1);
    const char *eps[] = {f->endpoint};
    char err[512] = "";

    eng_model fashion;
    build(&fashion, "fashion_cnn");
    wk_client *c = wk_client_new(eps, 1, 0, 1, &fashion, TIMEOUT_S, NULL, err, sizeof err);
    printf("  %s\n", err);
    assert_null(c);
    expect_in(err, f->endpoint, "another model");
    expect_in(err, "refused", "another model");
    expect_in(err, "hello.model: expected 'mnist_cnn', got 'fashion_cnn'", "another model");

    eng_model skewed;
    build(&skewed, "mnist_cnn");
    /* Same sizes, one tensor renamed: another meaning for the same floats. */
    skewed.layout.tensors[0].name[0] = 'K';
    err[0] = '\0';
    c = wk_client_new(eps, 1, 0, 1, &skewed, TIMEOUT_S, NULL, err, sizeof err);
    printf("  %s\n", err);
    assert_null(c);
    expect_in(err, f->endpoint, "another layout");
    expect_in(err, "hello.layout", "another layout");

    err[0] = '\0';
    eng_model m;
    build(&m, "mnist_cnn");
    c = wk_client_new(eps, 1, 1, 2, &m, TIMEOUT_S, NULL, err, sizeof err);
    printf("  %s\n", err);
    assert_null(c);
    expect_in(err, "worker_id", "worker 1 of 2 against a one-worker server");

    /* The server still serves a client that agrees; its goodbye ends it. */
    c = wk_client_new(eps, 1, 0, 1, &m, TIMEOUT_S, NULL, err, sizeof err);
    if (!c)
        fail_msg("a matching client after refusals: %s", err);
    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);
    assert_non_null(o);
    if (wk_client_shutdown(c, o, err, sizeof err) != 0)
        fail_msg("shutdown: %s", err);
    fclose(o);
    printf("  %s", out);
    expect_in(out, "server 0: 0 updates, 0 pushes, 0 pulls", "stats");
    expect_in(out, " 3 refused", "stats");
    free(out);
    wk_client_free(&c);
    assert_null(c);
    expect_exit_0(f);
}

/* Server 1 of 2 owns [112517, 225034); a client that thinks there is one server expects
 * [0, 225034) and must not go on. */
static void refused_other_shard(void **state) {
    (void)state;
    tu_psfork *f = &servers[0];
    start(f, 1, 2, 1);
    eng_model m;
    build(&m, "mnist_cnn");
    const char *eps[] = {f->endpoint};
    char err[512] = "";
    wk_client *c = wk_client_new(eps, 1, 0, 1, &m, TIMEOUT_S, NULL, err, sizeof err);
    printf("  %s\n", err);
    assert_null(c);
    expect_in(err, f->endpoint, "another shard");
    expect_in(err, "another shard", "another shard");
    tu_psfork_kill(f);
}

/* --- the work --- */

static float *gradient(size_t n, uint64_t seed) {
    float *g = tu_random_floats(n, -1e-3f, 1e-3f, seed);
    assert_non_null(g);
    return g;
}

static void expect_bits(const float *got, const float *want, size_t n, const char *what) {
    if (memcmp(got, want, sizeof(float) * n) == 0)
        return;
    size_t i = 0;
    while (memcmp(&got[i], &want[i], sizeof(float)) == 0)
        i++;
    fail_msg("%s: element %zu is %.9g, expected %.9g (bit for bit)", what, i, (double)got[i],
             (double)want[i]);
}

/* Init, pull, push, pull, shutdown against P servers that split the vector. */
static void push_and_pull(int P) {
    eng_model m;
    build(&m, "mnist_cnn");
    const size_t n = m.layout.total;
    const char *eps[2];
    for (int s = 0; s < P; s++) {
        start(&servers[s], s, P, 1);
        eps[s] = servers[s].endpoint;
    }
    char err[512] = "";
    wk_client *c = wk_client_new(eps, P, 0, 1, &m, TIMEOUT_S, NULL, err, sizeof err);
    if (!c)
        fail_msg("wk_client_new: %s", err);

    float *w = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
    float *mm = calloc(n, sizeof(float)), *vv = calloc(n, sizeof(float));
    assert_non_null(w);
    assert_non_null(want);
    assert_non_null(mm);
    assert_non_null(vv);
    for (size_t i = 0; i < n; i++)
        w[i] = NAN;
    eng_model_init_params(&m, want, 1);

    uint64_t version = 99;
    if (wk_client_pull_send(c, 0, 0, err, sizeof err) != 0 ||
        wk_client_pull_wait(c, 0, w, &version, err, sizeof err) != 0)
        fail_msg("pull at version 0: %s", err);
    assert_int_equal(version, 0);
    expect_bits(w, want, n, "initial weights");

    float *g = gradient(n, 5);
    const eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    eng_adam_update(want, mm, vv, g, n, 1, &cfg);
    if (wk_client_push(c, 0, g, 0, 0, err, sizeof err) != 0)
        fail_msg("push: %s", err);
    if (wk_client_pull_send(c, 0, 1, err, sizeof err) != 0 ||
        wk_client_pull_wait(c, 0, w, &version, err, sizeof err) != 0)
        fail_msg("pull at version 1: %s", err);
    assert_int_equal(version, 1);
    expect_bits(w, want, n, "weights after one push");

    /* A wait with nothing outstanding returns at once, with the version received last. */
    assert_false(wk_client_pull_pending(c, 0));
    version = 99;
    assert_int_equal(wk_client_pull_wait(c, 0, w, &version, err, sizeof err), 0);
    assert_int_equal(version, 1);
    expect_bits(w, want, n, "weights after a wait for nothing");

    /* The same pull without blocking: pending until every shard is in. */
    assert_int_equal(wk_client_pull_send(c, 0, 1, err, sizeof err), 0);
    assert_true(wk_client_pull_pending(c, 0));
    for (size_t i = 0; i < n; i++)
        w[i] = NAN;
    const double deadline = now_s() + TIMEOUT_S;
    int got;
    while ((got = wk_client_pull_recv(c, 0, w, &version, 0, err, sizeof err)) == 0) {
        if (now_s() > deadline)
            fail_msg("pull_recv without blocking: no answer within %.0f s", TIMEOUT_S);
        const struct timespec ms1 = {0, 1000 * 1000};
        nanosleep(&ms1, NULL);
    }
    if (got != 1)
        fail_msg("pull_recv: %s", err);
    assert_false(wk_client_pull_pending(c, 0));
    assert_int_equal(version, 1);
    expect_bits(w, want, n, "weights from pull_recv");

    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);
    assert_non_null(o);
    if (wk_client_shutdown(c, o, err, sizeof err) != 0)
        fail_msg("shutdown: %s", err);
    fclose(o);
    printf("%s", out);
    for (int s = 0; s < P; s++) {
        char line[128];
        snprintf(line, sizeof line, "server %d: 1 updates, 1 pushes, 3 pulls", s);
        expect_in(out, line, "stats");
    }
    expect_in(out, " 0 refused", "stats");
    expect_in(out, "pushes per worker: 1\n", "stats");
    free(out);
    wk_client_free(&c);
    wk_client_free(&c); /* NULL: nothing */
    for (int s = 0; s < P; s++)
        expect_exit_0(&servers[s]);
    free(w);
    free(want);
    free(mm);
    free(vv);
    free(g);
}

static void one_server(void **state) {
    (void)state;
    push_and_pull(1);
}

static void two_servers(void **state) {
    (void)state;
    push_and_pull(2);
}

/* A sparse push (only some rows of a row-major range) moves the weights exactly as the
 * dense push of the same gradient, zeros elsewhere, and sends fewer bytes. The mnist_cnn
 * layer `dense` stands in for an embedding: [18816, 223744), 1601 rows of 128 floats (its
 * kernel's rows and its bias), a layer of its own and so chunks of its own; on 2 servers the
 * shard boundary cuts row 732 in two, and it is one of the 40 rows pushed. */
static void sparse_equals_dense(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    const size_t n = m.layout.total, from = 18816, row_len = 128, nrows = 1601;
    float *g = gradient(n, 7), *w[2]; /* dense everywhere outside the layer */
    uint32_t rows[40];
    for (uint32_t i = 0; i < 40; i++)
        rows[i] = i * 40 + 12; /* 12, 52, ..., 732, ..., 1572 */
    memset(g + from, 0, sizeof(float) * nrows * row_len);
    float *r = gradient(40 * row_len, 9);
    for (size_t i = 0; i < 40; i++)
        memcpy(g + from + rows[i] * row_len, r + i * row_len, sizeof(float) * row_len);
    const wk_sparse_rows sp = {from, row_len, nrows, rows, 40};
    uint64_t bytes[2];
    for (int sparse = 0; sparse < 2; sparse++) {
        const char *eps[2];
        for (int s = 0; s < 2; s++) {
            start(&servers[s], s, 2, 1);
            eps[s] = servers[s].endpoint;
        }
        char err[512] = "";
        wk_client *c = wk_client_new(eps, 2, 0, 1, &m, TIMEOUT_S, NULL, err, sizeof err);
        if (!c)
            fail_msg("wk_client_new: %s", err);
        w[sparse] = malloc(sizeof(float) * n);
        assert_non_null(w[sparse]);
        uint64_t version;
        assert_int_equal(wk_client_step_begin(c, 0, g, 0, 0, 1, 1, err, sizeof err), 0);
        if (sparse)
            wk_client_step_sparse(c, 0, &sp);
        if (wk_client_step_end(c, 0, err, sizeof err) != 0 ||
            wk_client_pull_wait(c, 0, w[sparse], &version, err, sizeof err) != 0)
            fail_msg("%s push: %s", sparse ? "sparse" : "dense", err);
        assert_int_equal(version, 1);
        bytes[sparse] = wk_client_bytes_pushed(c);
        assert_int_equal(wk_client_shutdown(c, NULL, err, sizeof err), 0);
        wk_client_free(&c);
        for (int s = 0; s < 2; s++)
            expect_exit_0(&servers[s]);
    }
    expect_bits(w[1], w[0], n, "weights after a sparse push");
    printf("  dense push %llu bytes, sparse %llu\n", (unsigned long long)bytes[0],
           (unsigned long long)bytes[1]);
    assert_int_equal(bytes[0], sizeof(float) * n);
    assert_int_equal(bytes[1], sizeof(float) * (n - nrows * row_len + 40 * row_len));
    assert_true(rows[18] == 732 && (112517 - from) / row_len == 732); /* the cut row */
    free(w[0]);
    free(w[1]);
    free(r);
    free(g);
}

/* The server's weights of part 0 once it has applied `version` updates, exactly (fp32,
 * whatever the client's coding): a snapshot, its optimizer arrays (nslots) dropped. */
static void server_weights(wk_client *c, size_t n, int nslots, uint64_t version, float *w) {
    eng_ckpt_part cp;
    memset(&cp, 0, sizeof cp);
    cp.nslots = nslots;
    for (int i = 0; i < nslots; i++) {
        cp.slots[i] = malloc(sizeof(float) * n);
        assert_non_null(cp.slots[i]);
    }
    char err[512] = "";
    if (wk_client_snapshot(c, 0, version, w, &cp, err, sizeof err) != PST_OK)
        fail_msg("snapshot at version %llu: %s", (unsigned long long)version, err);
    for (int i = 0; i < nslots; i++)
        free(cp.slots[i]);
    pst_free(cp.runs);
}

/* Error feedback: pushes of each gradient's largest 1% (top-k, bf16 values) lose nothing,
 * they only delay it: after K pushes, the sum of the decoded gradients the server applied
 * plus the client's residual is the sum of the K gradients. The server runs RMSprop with rho
 * 1, epsilon 1 and lr 1, which is plain SGD: its accumulator stays 0 and each update is
 * w -= g / (sqrt(0) + 1), so w_0 - w_K is the sum of what it received.
 *
 * Rounding, per element, with G = sum |g_k|: the client's acc += g rounds once a push
 * (<= 2^-24 |acc|, |acc| <= G (1 + 2^-8)); taking the sent bf16 value out of acc is exact
 * (pb_topk_encode); the server's w -= r rounds once a push (<= 2^-24 |w_k|, |w_k| <= |w_0| +
 * G (1 + 2^-8)). So |(w_0 - w_K + resid) - sum g| <= K 2^-24 (|w_0| + 3 G), all sums in
 * double. A client that drops or overwrites its residual is off by about |resid| (~1e-3,
 * against a bound of ~1e-8). */
static void coded_pushes_feed_back(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    assert_int_equal(eng_model_state_floats(&m), 0); /* state tensors move by +g, not -g */
    const size_t n = m.layout.total;
    tu_psfork_cfg cfg = tu_psfork_defaults();
    cfg.optim = eng_optim_defaults(ENG_OPT_RMSPROP);
    cfg.optim.lr = 1.0f;
    cfg.optim.rho = 1.0f;
    cfg.optim.epsilon = 1.0f;
    start_cfg(&servers[0], &cfg);
    const char *eps[] = {servers[0].endpoint};
    char err[512] = "";
    wk_client *c = wk_client_new(eps, 1, 0, 1, &m, TIMEOUT_S, NULL, err, sizeof err);
    if (!c)
        fail_msg("wk_client_new: %s", err);
    float *w0 = malloc(sizeof(float) * n), *wk = malloc(sizeof(float) * n);
    assert_non_null(w0);
    assert_non_null(wk);
    server_weights(c, n, 1, 0, w0);

    wk_client_set_coding(c, PB_WIRE_BF16, 0.01);
    assert_null(wk_client_residual(c, 0));
    enum { K = 5 };
    float *g[K];
    for (int k = 0; k < K; k++) {
        g[k] = gradient(n, 20 + (uint64_t)k);
        if (wk_client_push(c, 0, g[k], (uint64_t)k, (uint64_t)k, err, sizeof err) != PST_OK)
            fail_msg("coded push %d: %s", k, err);
    }
    server_weights(c, n, 1, K, wk);
    const float *resid = wk_client_residual(c, 0);
    assert_non_null(resid);

    size_t moved = 0, kept = 0;
    double worst = 0; /* the largest error as a share of its bound */
    for (size_t i = 0; i < n; i++) {
        double sum = 0, mag = 0;
        for (int k = 0; k < K; k++) {
            sum += g[k][i];
            mag += fabs(g[k][i]);
        }
        const double got = (double)w0[i] - (double)wk[i] + (double)resid[i];
        const double bound = K * 0x1p-24 * (fabs(w0[i]) + 3 * mag);
        if (fabs(got - sum) > bound)
            fail_msg("element %zu: server's change %.9g + residual %.9g = %.9g, expected the "
                     "gradients' sum %.9g (within %.3g)",
                     i, (double)w0[i] - wk[i], (double)resid[i], got, sum, bound);
        if (fabs(got - sum) > worst * bound)
            worst = fabs(got - sum) / bound;
        moved += wk[i] != w0[i];
        kept += resid[i] != 0.0f;
    }
    printf("  %d pushes: %zu of %zu weights moved, %zu residuals kept, %llu bytes pushed, worst "
           "error %.2f of its bound\n",
           K, moved, n, kept, (unsigned long long)wk_client_bytes_pushed(c), worst);
    /* top-k sent a few % of the entries and kept the rest */
    assert_true(moved > 0 && moved < n / 10);
    assert_true(kept > n / 2);

    assert_int_equal(wk_client_shutdown(c, NULL, err, sizeof err), 0);
    wk_client_free(&c);
    expect_exit_0(&servers[0]);
    for (int k = 0; k < K; k++)
        free(g[k]);
    free(w0);
    free(wk);
}

/* p, pulled coded, against the server's weights w, which moved from prev (what p held before
 * the pull): the change comes in bf16, so each error is at most bf16's rounding of the change
 * (2^-9 |w - prev|, and 2^-24 of it from the server's float subtraction) plus the client's
 * float addition (2^-24 |p|); bounded here by 2^-8 |w - prev| + 2^-23 |w|. Some must differ:
 * the answers were coded, not fp32. */
static void expect_tracks(const float *p, const float *prev, const float *w, size_t n,
                          const char *what) {
    size_t rounded = 0;
    for (size_t i = 0; i < n; i++) {
        const double change = (double)w[i] - (double)prev[i];
        const double e = fabs((double)p[i] - (double)w[i]);
        if (e > 0x1p-8 * fabs(change) + 0x1p-23 * fabs((double)w[i]))
            fail_msg("%s: element %zu is %.9g, the server's %.9g (it was %.9g): off by more than "
                     "bf16's rounding of the change",
                     what, i, (double)p[i], (double)w[i], (double)prev[i]);
        rounded += p[i] != w[i];
    }
    printf("  %s: %zu of %zu weights rounded\n", what, rounded, n);
    if (rounded == 0)
        fail_msg("%s: every weight exact: the pulls were not coded", what);
}

/* Coded pulls (bf16 changes against the server's view of what this worker has, Adam on the
 * server): after each push and pull the weights are the server's to bf16's rounding of the
 * change, round after round (the client's copy and the server's view move together); a
 * settled pull makes them the server's bit for bit, and coded pulls go on from there. */
static void coded_pulls_track(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    const size_t n = m.layout.total;
    start(&servers[0], 0, 1, 1);
    const char *eps[] = {servers[0].endpoint};
    char err[512] = "";
    wk_client *c = wk_client_new(eps, 1, 0, 1, &m, TIMEOUT_S, NULL, err, sizeof err);
    if (!c)
        fail_msg("wk_client_new: %s", err);
    wk_client_set_coding(c, PB_WIRE_BF16, 0);
    float *p = malloc(sizeof(float) * n), *prev = malloc(sizeof(float) * n);
    float *w = malloc(sizeof(float) * n);
    assert_non_null(p);
    assert_non_null(prev);
    assert_non_null(w);
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    uint64_t version = 99;
    if (wk_client_pull_send(c, 0, 0, err, sizeof err) != PST_OK ||
        wk_client_pull_wait(c, 0, p, &version, err, sizeof err) != PST_OK)
        fail_msg("pull at version 0: %s", err);
    assert_int_equal(version, 0);
    eng_model_init_params(&m, w, 1);
    expect_bits(p, w, n, "first coded pull (the weights as they are)");

    enum { K = 4 };
    float *g[K];
    for (int k = 0; k < K; k++) {
        g[k] = gradient(n, 30 + (uint64_t)k);
        if (k == K - 1) { /* a settled pull before the last round */
            const uint64_t pushes[1] = {K - 1};
            if (wk_client_pull_settled(c, 0, pushes, err, sizeof err) != PST_OK ||
                wk_client_pull_wait(c, 0, p, &version, err, sizeof err) != PST_OK)
                fail_msg("settled pull: %s", err);
            expect_bits(p, w, n, "weights from a settled pull");
        }
        memcpy(prev, p, sizeof(float) * n);
        if (wk_client_push_pull(c, 0, g[k], (uint64_t)k, (uint64_t)k, (uint64_t)k + 1, err,
                                sizeof err) != PST_OK ||
            wk_client_pull_wait(c, 0, p, &version, err, sizeof err) != PST_OK)
            fail_msg("push and coded pull %d: %s", k, err);
        assert_int_equal(version, k + 1);
        server_weights(c, n, 2, (uint64_t)k + 1, w);
        char what[64];
        snprintf(what, sizeof what, "coded pull %d%s", k + 1,
                 k == K - 1 ? " (after the settled one)" : "");
        expect_tracks(p, prev, w, n, what);
    }

    assert_int_equal(wk_client_shutdown(c, NULL, err, sizeof err), 0);
    wk_client_free(&c);
    expect_exit_0(&servers[0]);
    for (int k = 0; k < K; k++)
        free(g[k]);
    free(p);
    free(prev);
    free(w);
}

/* A pull for a version that never comes (the other worker never pushes) times out naming
 * the server. */
static void pull_times_out(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    tu_psfork *f = &servers[0];
    start(f, 0, 1, 2);
    const char *eps[] = {f->endpoint};
    char err[512] = "";
    wk_client *c = wk_client_new(eps, 1, 0, 2, &m, 0.5, NULL, err, sizeof err);
    if (!c)
        fail_msg("wk_client_new: %s", err);
    float *g = gradient(m.layout.total, 9), *w = malloc(sizeof(float) * m.layout.total);
    assert_non_null(w);
    assert_int_equal(wk_client_push(c, 0, g, 0, 0, err, sizeof err), 0);
    assert_int_equal(wk_client_pull_send(c, 0, 1, err, sizeof err), 0);
    const double t0 = now_s();
    uint64_t version;
    const int rc = wk_client_pull_wait(c, 0, w, &version, err, sizeof err);
    const double took = now_s() - t0;
    printf("  %.2f s: %s\n", took, err);
    assert_int_equal(rc, PST_EPEER); /* no answer in time */
    assert_true(took < 2.0);
    expect_in(err, f->endpoint, "pull timeout");
    expect_in(err, "no answer", "pull timeout");
    wk_client_free(&c);
    free(g);
    free(w);
    tu_psfork_kill(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_server_times_out),
        cmocka_unit_test(no_server_on_dirty_stack),
        cmocka_unit_test_teardown(refused_model_and_layout, kill_servers),
        cmocka_unit_test_teardown(refused_other_shard, kill_servers),
        cmocka_unit_test_teardown(one_server, kill_servers),
        cmocka_unit_test_teardown(two_servers, kill_servers),
        cmocka_unit_test_teardown(sparse_equals_dense, kill_servers),
        cmocka_unit_test_teardown(pull_times_out, kill_servers),
        cmocka_unit_test_teardown(coded_pushes_feed_back, kill_servers),
        cmocka_unit_test_teardown(coded_pulls_track, kill_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
