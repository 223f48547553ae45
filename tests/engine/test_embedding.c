/* test_embedding.c: the Embedding layer. Forward copies each token's row (ids 0, padding,
 * and V - 1 included); backward against central differences of L = sum(y * R) over the
 * whole table, with repeated tokens and sequences that start with padding; the rows of
 * tokens not seen untouched under accumulate and zero without it; ids that are not exact
 * integers in [0, V) abort with a message; the layer in a model (first only, its shapes,
 * Keras's RandomUniform(-0.05, 0.05) initialiser). */
#include "engine/embedding.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define GARBAGE 777.0f

typedef struct emb_ctx {
    int B, T, V, D;
    float *x, *table, *y, *r;
} emb_ctx;

/* B sequences of T tokens below V: sample n starts with n padding tokens (0), sample 0
 * with token V - 1; the rest are drawn from the lower half of the vocabulary, so that the
 * upper half but V - 1 is never seen. */
static void ctx_init(emb_ctx *k, int B, int T, int V, int D, uint64_t seed) {
    k->B = B, k->T = T, k->V = V, k->D = D;
    k->x = pst_alloc(sizeof(float) * (size_t)B * T);
    k->table = pst_alloc(sizeof(float) * (size_t)V * D);
    k->y = pst_alloc(sizeof(float) * (size_t)B * T * D);
    k->r = pst_alloc(sizeof(float) * (size_t)B * T * D);
    assert_true(k->x && k->table && k->y && k->r);
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    for (int n = 0; n < B; n++)
        for (int t = 0; t < T; t++)
            k->x[(size_t)n * T + t] = t < n ? 0.0f : (float)eng_rng_below(&rng, (uint64_t)V / 2);
    k->x[0] = (float)(V - 1);
    tu_fill_uniform(k->table, (size_t)V * D, -1.0f, 1.0f, &rng);
    tu_fill_uniform(k->r, (size_t)B * T * D, -1.0f, 1.0f, &rng);
}

static void ctx_deinit(emb_ctx *k) {
    pst_free(k->x);
    pst_free(k->table);
    pst_free(k->y);
    pst_free(k->r);
}

static double emb_loss(void *arg) {
    emb_ctx *k = arg;
    eng_embedding_forward(k->y, k->x, k->table, k->B, k->T, k->V, k->D);
    return tu_dot(k->y, k->r, (size_t)k->B * k->T * k->D);
}

/* Whether token v occurs in x. */
static int seen(const emb_ctx *k, int v) {
    for (size_t i = 0; i < (size_t)k->B * k->T; i++)
        if (k->x[i] == (float)v)
            return 1;
    return 0;
}

static void run_case(int B, int T, int V, int D) {
    printf("embedding: B=%d T=%d V=%d D=%d\n", B, T, V, D);
    emb_ctx k;
    ctx_init(&k, B, T, V, D, 0xE3Bu + (uint64_t)V);
    const size_t nt = (size_t)V * D;

    /* Forward: row i of y is the table's row x[i]. */
    eng_embedding_forward(k.y, k.x, k.table, B, T, V, D);
    for (size_t i = 0; i < (size_t)B * T; i++)
        assert_memory_equal(k.y + i * D, k.table + (size_t)k.x[i] * D, sizeof(float) * D);

    /* Backward without accumulate: the whole table written. */
    float *dt = malloc(sizeof(float) * nt), *acc = malloc(sizeof(float) * nt);
    assert_true(dt && acc);
    for (size_t i = 0; i < nt; i++)
        dt[i] = GARBAGE;
    eng_embedding_backward(dt, k.r, k.x, B, T, V, D, 0);
    tu_gradcheck gc = {.what = "dembeddings", .eps = 0.25, .rtol = 1e-5, .atol = 1e-5};
    tu_gradcheck_result res;
    if (tu_gradcheck_run(&gc, k.table, nt, dt, emb_loss, &k, &res))
        fail_msg("%zu gradient mismatches", res.failed);
    int unseen = 0;
    for (int v = 0; v < V; v++)
        if (!seen(&k, v)) {
            unseen++;
            for (int j = 0; j < D; j++)
                if (dt[(size_t)v * D + j] != 0.0f)
                    fail_msg("token %d not seen, its gradient [%d] is %g", v, j,
                             dt[(size_t)v * D + j]);
        }
    assert_true(unseen > 0);
    assert_true(seen(&k, V - 1) && (B == 1 || seen(&k, 0)));
    /* Negative control: the check rejects the gradient of token 0 (the padding) halved. */
    for (int j = 0; j < D; j++)
        dt[j] *= 0.5f;
    gc.what = "  with token 0's rows halved (must fail)";
    tu_gradcheck_run(&gc, k.table, nt, dt, emb_loss, &k, &res);
    assert_true(res.failed > 0);
    for (int j = 0; j < D; j++)
        dt[j] *= 2.0f;

    /* accumulate: the rows of tokens seen get the same gradient added; no other row is
     * touched, not even rewritten with its own value (it stays the bits put there). Sums in
     * float: the tolerance is float rounding of the running sum's magnitudes. */
    double *want = calloc(nt, sizeof *want), *mag = calloc(nt, sizeof *mag);
    assert_true(want && mag);
    for (size_t i = 0; i < nt; i++) {
        acc[i] = i % 3 ? GARBAGE : -0.5f * (float)(i % 11);
        want[i] = acc[i];
        mag[i] = fabs(want[i]);
    }
    for (size_t i = 0; i < (size_t)B * T; i++)
        for (int j = 0; j < D; j++) {
            const size_t at = (size_t)k.x[i] * D + j;
            want[at] += k.r[i * D + j];
            mag[at] += fabs(want[at]);
        }
    eng_embedding_backward(acc, k.r, k.x, B, T, V, D, 1);
    for (int v = 0; v < V; v++)
        for (int j = 0; j < D; j++) {
            const size_t i = (size_t)v * D + j;
            const float before = i % 3 ? GARBAGE : -0.5f * (float)(i % 11);
            if (!seen(&k, v) && memcmp(&acc[i], &before, sizeof before) != 0)
                fail_msg("accumulate: token %d not seen, [%d] changed to %g", v, j, acc[i]);
            if (seen(&k, v) && fabs(acc[i] - want[i]) > 1.2e-7 * mag[i])
                fail_msg("accumulate: token %d [%d] = %.9g, expected %.9g", v, j, acc[i], want[i]);
        }
    free(want);
    free(mag);
    free(dt);
    free(acc);
    ctx_deinit(&k);
}

static void small(void **state) {
    (void)state;
    run_case(3, 5, 12, 4);
}

static void one_token(void **state) {
    (void)state;
    run_case(2, 1, 3, 1);
}

static void imdb_width(void **state) {
    (void)state;
    run_case(4, 50, 300, 32);
}

/* Runs the forward on one id in a child process: returns whether it aborted (SIGABRT). */
static int aborts_on(float id) {
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the assert's message goes to stderr: keep the test's output readable */
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        const float x[3] = {1.0f, id, 2.0f}, table[8 * 2] = {0};
        float y[3 * 2];
        eng_embedding_forward(y, x, table, 1, 3, 8, 2);
        _exit(0);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    return WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT;
}

static void bad_ids_abort(void **state) {
    (void)state;
    assert_false(aborts_on(7.0f));
    assert_false(aborts_on(0.0f));
    assert_true(aborts_on(8.0f));
    assert_true(aborts_on(-1.0f));
    assert_true(aborts_on(2.5f));
    assert_true(aborts_on(NAN));
    assert_true(aborts_on(1e9f));
}

/* In a model: Keras's name, shapes and initialiser; refused anywhere but first. */
static void in_a_model(void **state) {
    (void)state;
    const eng_layer_spec spec[] = {
        {.kind = ENG_EMBEDDING, .input_dim = 1000, .units = 16, .input = {1, 7, 1}},
        {.kind = ENG_LSTM, .units = 3},
        {.kind = ENG_DENSE, .units = 1, .act = ENG_ACT_SIGMOID},
    };
    const eng_model_def def = {"emb", "none", "", 2, 3, spec, 0, NULL, 0, 0};
    eng_model m;
    char err[256] = "";
    if (eng_model_build(&m, &def, err, sizeof err) != PST_OK)
        fail_msg("eng_model_build: %s", err);
    assert_string_equal(m.layers[0].name, "embedding");
    assert_string_equal(m.layout.tensors[0].name, "embedding/embeddings");
    assert_int_equal(m.layout.tensors[0].shape[0], 1000);
    assert_int_equal(m.layout.tensors[0].shape[1], 16);
    assert_true(m.layers[0].out.h == 1 && m.layers[0].out.w == 7 && m.layers[0].out.c == 16);
    float *p = malloc(sizeof(float) * m.layout.total);
    assert_non_null(p);
    eng_model_init_params(&m, p, 3);
    const size_t n = m.layout.tensors[0].count;
    double sum = 0.0, sq = 0.0, mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(fabsf(p[i]) <= 0.05f))
            fail_msg("embeddings[%zu] = %g outside +-0.05", i, p[i]);
        sum += p[i];
        sq += (double)p[i] * p[i];
        mx = fmax(mx, fabs(p[i]));
    }
    /* U(-0.05, 0.05): mean 0 (sd 0.05 / sqrt(3n)), E[w^2] = 0.05^2 / 3 */
    printf("  embeddings: mean %.3g, E[w^2] / (0.05^2 / 3) = %.4f, max %.4g\n", sum / n,
           sq / n / (0.0025 / 3), mx);
    assert_true(fabs(sum / n) < 5 * 0.05 / sqrt(3.0 * n));
    assert_true(fabs(sq / n / (0.0025 / 3) - 1.0) < 0.02);
    assert_true(mx > 0.049);
    free(p);

    const eng_layer_spec second[] = {
        {.kind = ENG_DENSE, .units = 4, .input = {1, 1, 3}},
        {.kind = ENG_EMBEDDING, .input_dim = 10, .units = 2},
    };
    const eng_layer_spec images[] = {
        {.kind = ENG_EMBEDDING, .input_dim = 10, .units = 2, .input = {2, 7, 1}},
    };
    const eng_layer_spec no_vocabulary[] = {
        {.kind = ENG_EMBEDDING, .input_dim = 0, .units = 2, .input = {1, 7, 1}},
    };
    const eng_layer_spec *bad[] = {second, images, no_vocabulary};
    const int nbad[] = {2, 1, 1};
    for (int i = 0; i < 3; i++) {
        const eng_model_def d = {"bad", "none", "", 10, nbad[i], bad[i], 0, NULL, 0, 0};
        err[0] = '\0';
        assert_int_equal(eng_model_build(&m, &d, err, sizeof err), PST_EARG);
        printf("  %s\n", err);
        assert_non_null(strstr(err, "embedding"));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small),         cmocka_unit_test(one_token),  cmocka_unit_test(imdb_width),
        cmocka_unit_test(bad_ids_abort), cmocka_unit_test(in_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
