/* test_shard.c: the placement of the flat vector on P servers. For P = 1..9 and totals from
 * 0 to the seed CNN's 225,034 floats (P > total included): the ranges are contiguous, cover
 * [0, total) exactly and differ in size by at most one; eng_shard_owner agrees with them for
 * every element; on the seed CNN with 2 servers dense/kernel spans both, and the printed map
 * says so. */
#include "engine/shard.h"

#include "engine/base/base.h"
#include "engine/model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_P 9
#define CNN_TOTAL 225034

static const size_t totals[] = {0, 1, 2, 3, 5, 8, 10, 17, 1000, CNN_TOTAL};
#define NTOTALS (sizeof totals / sizeof totals[0])

static void build_cnn(eng_model *m) {
    char err[256] = "";
    const eng_model_def *def = eng_model_find("mnist_cnn");
    assert_non_null(def);
    if (eng_model_build(m, def, err, sizeof err) != PST_OK)
        fail_msg("eng_model_build(mnist_cnn): %s", err);
    assert_int_equal(m->layout.total, CNN_TOTAL);
}

static void ranges_partition(void **state) {
    (void)state;
    for (size_t k = 0; k < NTOTALS; k++) {
        const size_t total = totals[k];
        for (int P = 1; P <= MAX_P; P++) {
            size_t next = 0, smallest = (size_t)-1, largest = 0;
            for (int s = 0; s < P; s++) {
                size_t lo = 12345, n = 12345;
                eng_shard_range(total, P, s, &lo, &n);
                if (lo != next)
                    fail_msg("total %zu, P %d: server %d starts at %zu, expected %zu (contiguous)",
                             total, P, s, lo, next);
                next = lo + n;
                if (n < smallest)
                    smallest = n;
                if (n > largest)
                    largest = n;
            }
            if (next != total)
                fail_msg("total %zu, P %d: the ranges end at %zu", total, P, next);
            if (largest - smallest > 1)
                fail_msg("total %zu, P %d: sizes from %zu to %zu differ by more than one", total, P,
                         smallest, largest);
            /* Equal shares: every size is floor or ceil of total / P. */
            if (smallest != total / (size_t)P)
                fail_msg("total %zu, P %d: smallest range %zu, expected %zu", total, P, smallest,
                         total / (size_t)P);
        }
    }
}

/* owner(i) against the ranges, for every element of every total. */
static void owner_agrees_with_ranges(void **state) {
    (void)state;
    for (size_t k = 0; k < NTOTALS; k++) {
        const size_t total = totals[k];
        for (int P = 1; P <= MAX_P; P++) {
            for (int s = 0; s < P; s++) {
                size_t lo, n;
                eng_shard_range(total, P, s, &lo, &n);
                for (size_t i = lo; i < lo + n; i++) {
                    const int o = eng_shard_owner(total, P, i);
                    if (o != s)
                        fail_msg("total %zu, P %d: element %zu is in server %d's [%zu, %zu), "
                                 "eng_shard_owner says %d",
                                 total, P, i, s, lo, lo + n, o);
                }
            }
        }
    }
}

/* The elements on either side of each boundary of the seed CNN's vector, spelled out. */
static void owner_at_boundaries(void **state) {
    (void)state;
    for (int P = 1; P <= MAX_P; P++) {
        assert_int_equal(eng_shard_owner(CNN_TOTAL, P, 0), 0);
        assert_int_equal(eng_shard_owner(CNN_TOTAL, P, CNN_TOTAL - 1), P - 1);
        for (int s = 1; s < P; s++) {
            size_t lo, n;
            eng_shard_range(CNN_TOTAL, P, s, &lo, &n);
            assert_true(lo > 0 && n > 0);
            const int below = eng_shard_owner(CNN_TOTAL, P, lo - 1),
                      at = eng_shard_owner(CNN_TOTAL, P, lo);
            if (below != s - 1 || at != s)
                fail_msg("P %d: boundary %zu: owners %d | %d, expected %d | %d", P, lo, below, at,
                         s - 1, s);
        }
    }
    /* Two servers: 112517 floats each. */
    size_t lo, n;
    eng_shard_range(CNN_TOTAL, 2, 0, &lo, &n);
    assert_int_equal(lo, 0);
    assert_int_equal(n, 112517);
    eng_shard_range(CNN_TOTAL, 2, 1, &lo, &n);
    assert_int_equal(lo, 112517);
    assert_int_equal(n, 112517);
}

/* More servers than floats: the extra servers own nothing, and each float has one owner. */
static void more_servers_than_floats(void **state) {
    (void)state;
    const size_t total = 3;
    const int P = 8;
    int owned = 0;
    for (int s = 0; s < P; s++) {
        size_t lo, n;
        eng_shard_range(total, P, s, &lo, &n);
        assert_true(n <= 1);
        assert_true(lo <= total);
        owned += (int)n;
    }
    assert_int_equal(owned, 3);
    int seen[8] = {0};
    for (size_t i = 0; i < total; i++)
        seen[eng_shard_owner(total, P, i)]++;
    for (int s = 0; s < P; s++)
        assert_true(seen[s] <= 1);
}

/* dense/kernel (204,800 floats at 18,816) straddles the middle of the vector. */
static void cnn_dense_kernel_split(void **state) {
    (void)state;
    eng_model m;
    build_cnn(&m);
    const int t = eng_layout_find(&m.layout, "dense/kernel");
    assert_true(t >= 0);
    const eng_tensor_info *ti = &m.layout.tensors[t];
    assert_int_equal(ti->count, 204800);
    const size_t first = ti->offset, last = ti->offset + ti->count - 1;
    assert_int_equal(eng_shard_owner(CNN_TOTAL, 2, first), 0);
    assert_int_equal(eng_shard_owner(CNN_TOTAL, 2, last), 1);
    /* Every other tensor lies on one server. */
    for (int i = 0; i < m.layout.n; i++) {
        if (i == t)
            continue;
        const eng_tensor_info *o = &m.layout.tensors[i];
        const int a = eng_shard_owner(CNN_TOTAL, 2, o->offset),
                  b = eng_shard_owner(CNN_TOTAL, 2, o->offset + o->count - 1);
        if (a != b)
            fail_msg("%s is split across servers %d and %d", o->name, a, b);
    }
}

/* Counts non-overlapping occurrences of needle in s. */
static int count_of(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + strlen(needle), needle))
        n++;
    return n;
}

static void print_map(void **state) {
    (void)state;
    eng_model m;
    build_cnn(&m);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    eng_shard_print(&m.layout, 2, out);
    assert_int_equal(fclose(out), 0);
    assert_non_null(buf);
    printf("%s", buf);

    const char *s0 = strstr(buf, "server 0: [0, 112517) 112517 floats");
    const char *s1 = strstr(buf, "server 1: [112517, 225034) 112517 floats");
    if (!s0 || !s1 || s1 < s0)
        fail_msg("expected a line for server 0 then one for server 1:\n%s", buf);
    assert_non_null(strstr(s0, "50.0% of the bytes"));
    /* dense/kernel is the one split tensor, listed under both servers. */
    assert_int_equal(count_of(buf, "(split)"), 2);
    const char *k0 = strstr(s0, "dense/kernel");
    assert_true(k0 && k0 < s1);
    assert_non_null(strstr(k0, "[0, 93701) of 204800 (split)"));
    const char *k1 = strstr(s1, "dense/kernel");
    assert_non_null(k1);
    assert_non_null(strstr(k1, "[93701, 204800) of 204800 (split)"));
    /* The whole-tensor pieces: conv2d on server 0, dense_1 on server 1, not split. */
    const char *c0 = strstr(s0, "conv2d/kernel");
    assert_true(c0 && c0 < s1);
    assert_non_null(strstr(buf, "[0, 288) of 288\n"));
    assert_true(strstr(buf, "dense_1/bias") > s1);
    free(buf);
}

/* One server: everything on it, nothing split. */
static void print_map_one_server(void **state) {
    (void)state;
    eng_model m;
    build_cnn(&m);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    eng_shard_print(&m.layout, 1, out);
    assert_int_equal(fclose(out), 0);
    assert_non_null(strstr(buf, "server 0: [0, 225034) 225034 floats"));
    assert_non_null(strstr(buf, "100.0% of the bytes"));
    assert_null(strstr(buf, "(split)"));
    assert_null(strstr(buf, "server 1"));
    assert_int_equal(count_of(buf, "\n"), 1 + m.layout.n);
    free(buf);
}

/* Chunks tile the shard exactly, start at every cut inside it, respect the size limit, and
 * find() inverts the plan. */
static void chunk_plans(void **state) {
    (void)state;
    eng_model m;
    build_cnn(&m);
    size_t cuts[ENG_MAX_LAYERS];
    const int ncuts = eng_model_cuts(&m, cuts);
    assert_int_equal(ncuts, 4); /* conv2d, conv2d_1, dense, dense_1 */
    assert_int_equal(cuts[0], 0);
    assert_int_equal(cuts[1], 320);
    assert_int_equal(cuts[2], 18816);
    assert_int_equal(cuts[3], 223744);
    const size_t maxes[] = {0, 1000, 65536};
    for (int P = 1; P <= 4; P++)
        for (size_t mi = 0; mi < sizeof maxes / sizeof maxes[0]; mi++)
            for (int sv = 0; sv < P; sv++) {
                size_t lo, n;
                eng_shard_range(CNN_TOTAL, P, sv, &lo, &n);
                eng_chunks c;
                eng_chunks_plan(&c, lo, n, cuts, ncuts, maxes[mi]);
                assert_true(c.n >= 1);
                assert_int_equal(c.start[0], lo);
                assert_int_equal(c.start[c.n], lo + n);
                for (int k = 0; k < c.n; k++) {
                    assert_true(c.start[k] < c.start[k + 1]);
                    if (maxes[mi])
                        assert_true(c.start[k + 1] - c.start[k] <= maxes[mi]);
                    assert_int_equal(eng_chunks_find(&c, c.start[k]), k);
                    assert_int_equal(eng_chunks_find(&c, c.start[k + 1] - 1), k);
                }
                for (int i = 0; i < ncuts; i++) {
                    if (cuts[i] <= lo || cuts[i] >= lo + n)
                        continue;
                    int at = 0;
                    for (int k = 0; k < c.n; k++)
                        at |= c.start[k] == cuts[i];
                    assert_true(at);
                }
                if (maxes[mi] == 0) /* with no limit, only the cuts break a shard */
                    for (int k = 1; k < c.n; k++) {
                        int cut = 0;
                        for (int i = 0; i < ncuts; i++)
                            cut |= cuts[i] == c.start[k];
                        assert_true(cut);
                    }
                assert_int_equal(eng_chunks_find(&c, lo + n), -1);
                if (lo > 0)
                    assert_int_equal(eng_chunks_find(&c, lo - 1), -1);
                eng_chunks_free(&c);
            }
    /* An empty shard is one empty chunk that holds nothing. */
    eng_chunks c;
    eng_chunks_plan(&c, 5, 0, cuts, ncuts, 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(eng_chunks_find(&c, 5), -1);
    eng_chunks_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranges_partition),       cmocka_unit_test(owner_agrees_with_ranges),
        cmocka_unit_test(owner_at_boundaries),    cmocka_unit_test(more_servers_than_floats),
        cmocka_unit_test(cnn_dense_kernel_split), cmocka_unit_test(print_map),
        cmocka_unit_test(print_map_one_server),   cmocka_unit_test(chunk_plans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
