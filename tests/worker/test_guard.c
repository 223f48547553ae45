/* test_guard.c: the guard against non-finite losses and gradients (worker/guard.h) and its
 * hooks in the stores.
 *
 * The scan finds the first NaN or infinity at every position of vectors around its block
 * size and passes finite extremes (FLT_MAX, denormals, -0); wk_guard_grads names the right
 * tensor and index for NaN, +Inf and -Inf at the first, middle and last element of every
 * tensor of mnist_cnn and of both parts of mnist_gan (with the part's name), and looks only
 * inside its range. The local store refuses to apply a step with a non-finite gradient (the
 * weights stay as they were) and says which step and which checkpoint is kept; a loss check
 * names the first non-finite gradient. The remote store, against a real server, sends the
 * finite ranges of an early send and nothing from the range holding the bad value on, at an
 * early send and at step_end. */
#include "worker/guard.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "tests/support/psfork.h"
#include "tests/support/testutil.h"
#include "worker/ckpt/record.h"
#include "worker/ckpt/writer.h"
#include "worker/store.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const float bad_values[3] = {NAN, INFINITY, -INFINITY};
static const char *const bad_names[3] = {"nan", "inf", "-inf"};

static void build(eng_model *m, const char *name) {
    char err[256] = "";
    const eng_model_def *def = eng_model_find(name);
    assert_non_null(def);
    if (eng_model_build(m, def, err, sizeof err) != PST_OK)
        fail_msg("eng_model_build(%s): %s", name, err);
}

static void assert_contains(const char *s, const char *part) {
    if (!strstr(s, part))
        fail_msg("expected '%s' in: %s", part, s);
}

static void scan_finds_first(void **state) {
    (void)state;
    /* around the scan's block (4096 floats) and its vector width */
    const size_t sizes[] = {1, 7, 8, 9, 31, 4095, 4096, 4097, 8192 + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        const size_t n = sizes[k];
        float *v = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) /* finite, extremes included */
            v[i] = i % 5 == 0   ? FLT_MAX
                   : i % 5 == 1 ? -FLT_MAX
                   : i % 5 == 2 ? FLT_MIN / 8 /* a denormal */
                   : i % 5 == 3 ? -0.0f
                                : (float)i;
        assert_int_equal(wk_guard_scan(v, n), n);
        assert_int_equal(wk_guard_scan(v, 0), 0);
        /* every position of the small ones; the edges, the blocks' and the middle of the rest */
        size_t at[64], nat = 0;
        if (n <= 64)
            for (size_t i = 0; i < n; i++)
                at[nat++] = i;
        else {
            const size_t edges[] = {0, 1, 7, 8, 4095, 4096, 4097, n / 2, n - 2, n - 1};
            for (size_t e = 0; e < sizeof edges / sizeof *edges; e++)
                if (edges[e] < n)
                    at[nat++] = edges[e];
        }
        for (int b = 0; b < 3; b++)
            for (size_t j = 0; j < nat; j++) {
                const size_t i = at[j];
                const float keep = v[i], last = v[n - 1];
                v[i] = bad_values[b];
                assert_int_equal(wk_guard_scan(v, n), i);
                v[n - 1] = i + 1 < n ? NAN : v[n - 1]; /* a second one after it: still the first */
                assert_int_equal(wk_guard_scan(v, n), i);
                v[n - 1] = last;
                v[i] = keep;
            }
        assert_int_equal(wk_guard_scan(v, n), n);
        free(v);
    }
}

/* NaN, +Inf, -Inf at the first, middle and last element of every tensor of part p of m: the
 * tensor and index named, the step, the value; a range that ends before it sees nothing. */
static void every_tensor_of(const eng_model *m, int p) {
    eng_model part;
    eng_model_part(m, p, &part);
    const eng_layout *lay = &part.layout;
    float *g = calloc(lay->total, sizeof(float));
    const wk_guard guard = {.step = 1234, .checkpoint = 1200, .pending = -1};
    char err[512], want[160];
    assert_int_equal(wk_guard_grads(&guard, m, p, g, 0, lay->total, err, sizeof err), PST_OK);
    for (int t = 0; t < lay->n; t++) {
        const eng_tensor_info *ti = &lay->tensors[t];
        const size_t at[3] = {0, ti->count / 2, ti->count - 1};
        for (int k = 0; k < 3; k++)
            for (int b = 0; b < 3; b++) {
                const size_t i = ti->offset + at[k];
                g[i] = bad_values[b];
                err[0] = '\0';
                assert_int_equal(wk_guard_grads(&guard, m, p, g, 0, lay->total, err, sizeof err),
                                 PST_EDIVERGED);
                if (m->nparts > 1)
                    snprintf(want, sizeof want,
                             "step 1234: non-finite gradient in %s[%zu] of the %s (%s)", ti->name,
                             at[k], m->parts[p].name, bad_names[b]);
                else
                    snprintf(want, sizeof want, "step 1234: non-finite gradient in %s[%zu] (%s)",
                             ti->name, at[k], bad_names[b]);
                assert_contains(err, want);
                /* the range: before it, after it, and the element alone */
                assert_int_equal(wk_guard_grads(&guard, m, p, g, 0, i, err, sizeof err), PST_OK);
                assert_int_equal(
                    wk_guard_grads(&guard, m, p, g, i + 1, lay->total, err, sizeof err), PST_OK);
                assert_int_equal(wk_guard_grads(&guard, m, p, g, i, i + 1, err, sizeof err),
                                 PST_EDIVERGED);
                g[i] = 0.0f;
            }
    }
    free(g);
}

static void names_every_tensor(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    every_tensor_of(&m, 0);
    build(&m, "mnist_gan");
    for (int p = 0; p < m.nparts; p++)
        every_tensor_of(&m, p);
}

static void name_outside_layout(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    char buf[64];
    assert_string_equal(wk_guard_name(&m.layout, 0, buf, sizeof buf), "conv2d/kernel[0]");
    assert_string_equal(wk_guard_name(&m.layout, m.layout.total, buf, sizeof buf),
                        "element 225034");
}

static char dir[1024];

/* A checkpoint of step into writer w, as wk_save takes it: the record, then s's state. */
static void snapshot(wk_store *s, wk_ckpt_writer *w, int64_t step) {
    char err[512] = "";
    assert_int_equal(wk_ckpt_writer_wait(w, NULL, err, sizeof err), PST_OK);
    eng_ckpt *c = wk_ckpt_writer_next(w);
    int64_t steps[1] = {step};
    const wk_run_record rec = {.step = step,
                               .epoch = 1,
                               .epoch_step = step,
                               .mode = "local",
                               .batch = 32,
                               .seed = 1,
                               .workers = 1,
                               .val_split = 0.1,
                               .epochs = 1,
                               .worker_steps = steps};
    wk_record_put(c, &rec);
    c->parts[0].optim = eng_optim_defaults(ENG_OPT_ADAM);
    assert_int_equal(wk_store_snapshot(s, (uint64_t)step, c, err, sizeof err), PST_OK);
    assert_int_equal(wk_ckpt_writer_start(w, err, sizeof err), PST_OK);
}

/* A local store of mnist_cnn over net with Adam. */
static wk_store *local_store(const eng_model *m, eng_net **net) {
    char err[256] = "";
    *net = eng_net_new(m, 32, 1, err, sizeof err);
    if (!*net)
        fail_msg("eng_net_new: %s", err);
    eng_model_init_params(m, eng_net_params(*net), 1);
    const eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    eng_net *nets[1] = {*net};
    return wk_store_local_new(m, nets, &cfg, NULL);
}

static void local_store_refuses(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    eng_net *net;
    wk_store *s = local_store(&m, &net);
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "guard"), 0);
    const size_t n = m.layout.total;
    float *before = malloc(sizeof(float) * n);
    memcpy(before, eng_net_params(net), sizeof(float) * n);
    float *g = eng_net_grads(net);
    for (size_t i = 0; i < n; i++)
        g[i] = 1e-3f;
    const int t = eng_layout_find(&m.layout, "dense/kernel");
    assert_true(t >= 0);
    g[m.layout.tensors[t].offset + 17] = NAN;
    wk_time_split times = {0};
    char err[2048] = "";
    assert_int_equal(wk_store_step_begin(s, 42, &times, err, sizeof err), PST_OK);
    assert_int_equal(wk_store_step_end(s, &times, err, sizeof err), PST_EDIVERGED);
    assert_string_equal(err, "step 42: non-finite gradient in dense/kernel[17] (nan); the job "
                             "stops before applying it");
    assert_memory_equal(eng_net_params(net), before, sizeof(float) * n); /* nothing applied */
    /* a loss check names the gradient; a finite loss passes */
    assert_int_equal(wk_guard_loss(s, "loss", NAN, err, sizeof err), PST_EDIVERGED);
    assert_string_equal(err, "step 42: loss is nan (the first non-finite gradient: "
                             "dense/kernel[17], nan); the job stops before applying the step");
    assert_int_equal(wk_guard_loss(s, "loss", 2.3, err, sizeof err), PST_OK);

    /* The checkpoint kept: none yet; a snapshot's is once the next snapshot is taken (wk_save
     * waits for a write before it), or once its write has ended well; not when it failed. */
    wk_guard_kept(s, NULL, err, sizeof err);
    assert_string_equal(err, "step 42: loss is nan (the first non-finite gradient: "
                             "dense/kernel[17], nan); the job stops before applying the step");
    int nslots[1] = {2};
    wk_ckpt_writer *w = wk_ckpt_writer_new(&m, dir, 0, nslots, 0.0, err, sizeof err);
    if (!w)
        fail_msg("wk_ckpt_writer_new: %s", err);
    snapshot(s, w, 40);
    g[m.layout.tensors[t].offset + 17] = 1e-3f;
    assert_int_equal(wk_guard_loss(s, "loss", -INFINITY, err, sizeof err), PST_EDIVERGED);
    wk_guard_kept(s, w, err, sizeof err); /* waits for the write of step 40 */
    assert_string_equal(err, "step 42: loss is -inf; the job stops before applying the step; "
                             "the last checkpoint (step 40) is kept");
    assert_int_equal(wk_ckpt_writer_wait(w, NULL, err, sizeof err), PST_OK);
    tu_rmtree(dir); /* the next write fails: a file where the directory was */
    FILE *f = fopen(dir, "w");
    assert_non_null(f);
    fclose(f);
    snapshot(s, w, 41);
    assert_int_equal(wk_guard_loss(s, "loss", INFINITY, err, sizeof err), PST_EDIVERGED);
    wk_guard_kept(s, w, err, sizeof err);
    assert_contains(err, "step 42: loss is inf; the job stops before applying the step; the "
                         "checkpoint of step 41 was not written (");
    assert_contains(err, "); the last checkpoint (step 40) is kept");
    wk_ckpt_writer_free(&w);
    remove(dir);
    /* the same step with the gradient finite is applied */
    assert_int_equal(wk_store_step_end(s, &times, err, sizeof err), PST_OK);
    assert_true(memcmp(eng_net_params(net), before, sizeof(float) * n) != 0);
    free(before);
    wk_store_free(&s);
    eng_net_free(&net);
}

/* A remote store of mnist_cnn, worker 0 of 1, against a real server in sync mode; the first
 * step (zero gradients) is pushed whole. */
typedef struct remote {
    tu_psfork server;
    eng_model m;
    eng_net *net;
    wk_opts o;
    wk_store *s;
} remote;

static void remote_start(remote *r) {
    char err[640] = "";
    memset(r, 0, sizeof *r);
    tu_psfork_cfg cfg = tu_psfork_defaults();
    if (tu_psfork_start(&r->server, &cfg, err, sizeof err) != 0)
        fail_msg("%s", err);
    build(&r->m, "mnist_cnn");
    if (!(r->net = eng_net_new(&r->m, 32, 1, err, sizeof err)))
        fail_msg("eng_net_new: %s", err);
    snprintf(r->o.mode, sizeof r->o.mode, "sync");
    snprintf(r->o.wire, sizeof r->o.wire, "fp32");
    r->o.timeout = 10;
    const char *endpoints[1] = {r->server.endpoint};
    const wk_job job = {.worker_id = 0, .num_workers = 1, .num_servers = 1, .endpoints = endpoints};
    eng_net *nets[1] = {r->net};
    if (!(r->s = wk_store_remote_new(&r->o, &job, &r->m, nets, err, sizeof err)))
        fail_msg("wk_store_remote_new: %s", err);
    wk_time_split t = {0};
    memset(eng_net_grads(r->net), 0, sizeof(float) * r->m.layout.total);
    assert_int_equal(wk_store_step_begin(r->s, 0, &t, err, sizeof err), PST_OK);
    assert_int_equal(wk_store_step_end(r->s, &t, err, sizeof err), PST_OK);
    assert_int_equal(wk_store_bytes_pushed(r->s), sizeof(float) * r->m.layout.total);
}

static void remote_end(remote *r, const char *why) {
    wk_store_fail(r->s, why);
    wk_store_free(&r->s);
    eng_net_free(&r->net);
    char err[256];
    /* the server ends on the failed worker: not a success */
    assert_true(tu_psfork_wait(&r->server, 10, err, sizeof err) != 0);
}

static size_t offset_of(const eng_model *m, const char *name) {
    const int t = eng_layout_find(&m->layout, name);
    assert_true(t >= 0);
    return m->layout.tensors[t].offset;
}

static void remote_early_send_stops(void **state) {
    (void)state;
    remote r;
    remote_start(&r);
    char err[512] = "";
    wk_time_split t = {0};
    assert_int_equal(wk_store_step_begin(r.s, 1, &t, err, sizeof err), PST_OK);
    float *g = eng_net_grads(r.net);
    const size_t top = offset_of(&r.m, "dense_1/kernel"), below = offset_of(&r.m, "dense/kernel");
    g[offset_of(&r.m, "dense/bias") + 5] = INFINITY;
    const uint64_t bytes0 = wk_store_bytes_pushed(r.s);
    /* the output layer is final and finite: it goes */
    assert_int_equal(wk_store_ready(r.s, 0, top, err, sizeof err), PST_OK);
    const uint64_t bytes1 = wk_store_bytes_pushed(r.s);
    assert_int_equal(bytes1 - bytes0, sizeof(float) * (r.m.layout.total - top));
    /* the layer below holds the infinity: nothing more leaves, now or at step_end */
    assert_int_equal(wk_store_ready(r.s, 0, below, err, sizeof err), PST_EDIVERGED);
    assert_string_equal(err, "step 1: non-finite gradient in dense/bias[5] (inf); this worker "
                             "stops without pushing it, and the servers drop it as a lost worker");
    assert_int_equal(wk_store_step_end(r.s, &t, err, sizeof err), PST_EDIVERGED);
    assert_int_equal(wk_store_bytes_pushed(r.s), bytes1);
    remote_end(&r, err);
}

static void remote_step_end_stops(void **state) {
    (void)state;
    remote r;
    remote_start(&r);
    char err[512] = "";
    wk_time_split t = {0};
    assert_int_equal(wk_store_step_begin(r.s, 1, &t, err, sizeof err), PST_OK);
    eng_net_grads(r.net)[0] = NAN; /* conv2d/kernel[0]: the last a backward finishes */
    const uint64_t bytes0 = wk_store_bytes_pushed(r.s);
    assert_int_equal(wk_store_step_end(r.s, &t, err, sizeof err), PST_EDIVERGED);
    assert_contains(err, "step 1: non-finite gradient in conv2d/kernel[0] (nan)");
    assert_int_equal(wk_store_bytes_pushed(r.s), bytes0);
    remote_end(&r, err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scan_finds_first),        cmocka_unit_test(names_every_tensor),
        cmocka_unit_test(name_outside_layout),     cmocka_unit_test(local_store_refuses),
        cmocka_unit_test(remote_early_send_stops), cmocka_unit_test(remote_step_end_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
