/* test_record.c: the run record in a checkpoint's meta (worker/ckpt/record.h). The fixture
 * tests/fixtures/mnist_cnn-step20.h5, written by main before issue 17's redesign, reads with
 * its parts and record as written, and written again (as read, or through the record) gives
 * its bytes; a record that is missing, mistyped or out of range is refused with one line
 * naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "tests/support/testutil.h"
#include "worker/ckpt/record.h"

#define FIXTURE PSTRAIN_FIXTURES "/mnist_cnn-step20.h5"

static char dir[1024];

static int setup(void **state) {
    (void)state;
    return tu_mkdtemp(dir, sizeof dir, "record") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(dir);
    return 0;
}

static void fixture_reads(void **state) {
    (void)state;
    eng_ckpt c;
    wk_run_record r;
    char err[1024] = "";
    if (wk_record_read(FIXTURE, &c, &r, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    eng_model m;
    assert_int_equal(eng_model_build(&m, eng_model_find("mnist_cnn"), err, sizeof err), PST_OK);
    assert_string_equal(c.model, "mnist_cnn");
    assert_true(c.total == m.layout.total && c.layout_checksum == eng_layout_checksum(&m.layout));
    assert_int_equal(c.nparts, 1);
    const eng_ckpt_part *p = &c.parts[0];
    assert_string_equal(p->name, "model");
    assert_true(p->offset == 0 && p->total == c.total);
    assert_int_equal(p->optim.kind, ENG_OPT_RMSPROP);
    assert_int_equal(p->nslots, 1);
    assert_non_null(p->slots[0]);
    assert_null(p->slots[1]);
    assert_null(p->ema);
    assert_int_equal(p->nruns, 1);
    assert_true(p->runs[0].lo == 0 && p->runs[0].n == c.total && p->runs[0].iterations == 20);
    assert_null(c.vocab);
    /* the record as the old main wrote it */
    assert_true(r.step == 20 && r.epoch == 1 && r.epoch_step == 20);
    assert_string_equal(r.mode, "local");
    assert_int_equal(r.servers, 0);
    assert_int_equal(r.workers, 1);
    assert_true(r.worker_steps[0] == 20);
    /* written by `pstrain train --model mnist_cnn --optimizer rmsprop --max-steps 20
     * --epochs 1 --batch 32` with the defaults of a026ab0 (seed 1, val_split 0.1) */
    assert_int_equal(r.epochs, 1);
    assert_int_equal(r.batch, 32);
    assert_int_equal(r.seed, 1);
    assert_int_equal(r.staleness, 2);
    assert_true(r.val_split == 0.1);
    printf("  fixture: step %lld, epoch %lld, mode %s, batch %d, seed %lld, val_split %g, "
           "epochs %lld\n",
           (long long)r.step, (long long)r.epoch, r.mode, r.batch, (long long)r.seed, r.val_split,
           (long long)r.epochs);

    /* As read (its meta in the file's order again), written again: the fixture's bytes. */
    char direct[1200];
    snprintf(direct, sizeof direct, "%s/direct.h5", dir);
    if (eng_ckpt_write(direct, &c, &m, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    size_t nf, nd;
    char *bf = tu_read_file(FIXTURE, &nf), *bd = tu_read_file(direct, &nd);
    assert_true(bf && bd);
    assert_int_equal(nf, nd);
    assert_memory_equal(bf, bd, nf);
    free(bf);
    free(bd);

    /* Put back through the record (the file's order) and written again: the fixture's bytes. */
    eng_ckpt again = c;
    memset(&again.meta, 0, sizeof again.meta);
    wk_run_record copy = r;
    int64_t steps[1] = {r.worker_steps[0]};
    copy.worker_steps = steps;
    wk_record_put(&again, &copy);
    char path[1200];
    snprintf(path, sizeof path, "%s/again.h5", dir);
    if (eng_ckpt_write(path, &again, &m, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    size_t n1, n2;
    char *b1 = tu_read_file(FIXTURE, &n1), *b2 = tu_read_file(path, &n2);
    assert_true(b1 && b2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    eng_ckpt_meta_clear(&again.meta);
    eng_ckpt_free(&c);
}

/* A record of 3 workers in c's meta, valid. */
static void put_valid(eng_ckpt *c) {
    int64_t steps[3] = {40, 41, 42};
    wk_run_record r = {.step = 123,
                       .epoch = 2,
                       .epoch_step = 3,
                       .mode = "ssp",
                       .staleness = 2,
                       .batch = 32,
                       .seed = -5,
                       .servers = 2,
                       .workers = 3,
                       .val_split = 0.1,
                       .epochs = 4,
                       .worker_steps = steps};
    wk_record_put(c, &r);
}

static void expect_refused(const eng_ckpt *c, const char *word) {
    wk_run_record r;
    char err[512] = "";
    assert_int_equal(wk_record_get(c, &r, err, sizeof err), PST_EFORMAT);
    printf("  -> %s\n", err);
    if (!strstr(err, word))
        fail_msg("message '%s' does not say '%s'", err, word);
    assert_null(strchr(err, '\n'));
}

static void round_trip_and_refusals(void **state) {
    (void)state;
    eng_ckpt c = {0};
    put_valid(&c);
    /* in the file's order */
    static const char *const order[] = {"step",      "epoch",     "epoch_step", "mode",
                                        "staleness", "batch",     "seed",       "servers",
                                        "workers",   "val_split", "epochs"};
    assert_int_equal(c.meta.nattrs, 11);
    for (int i = 0; i < 11; i++)
        assert_string_equal(c.meta.attrs[i].name, order[i]);
    assert_int_equal(c.meta.narrays, 1);
    assert_string_equal(c.meta.arrays[0].name, "workers/steps");
    wk_run_record r;
    char err[512];
    assert_int_equal(wk_record_get(&c, &r, err, sizeof err), PST_OK);
    assert_true(r.step == 123 && r.epoch == 2 && r.epoch_step == 3 && r.staleness == 2 &&
                r.batch == 32 && r.seed == -5 && r.servers == 2 && r.workers == 3 &&
                r.val_split == 0.1 && r.epochs == 4);
    assert_string_equal(r.mode, "ssp");
    assert_true(r.worker_steps == c.meta.arrays[0].v && r.worker_steps[2] == 42);

    eng_ckpt_meta_put(&c.meta, "workers", ENG_META_I32)->i32 = 0;
    expect_refused(&c, "attribute workers of /pstrain is 0, expected 1 to 32768");
    eng_ckpt_meta_put(&c.meta, "workers", ENG_META_I64)->i64 = 3;
    expect_refused(&c, "attribute workers of /pstrain: expected int32, found another type");
    eng_ckpt_meta_put(&c.meta, "workers", ENG_META_I32)->i32 = 4;
    expect_refused(&c, "dataset /pstrain/workers/steps: expected shape (4,), got (3,)");
    put_valid(&c);
    snprintf(eng_ckpt_meta_put(&c.meta, "mode", ENG_META_STR)->str, ENG_CKPT_META_NAME, "bsp");
    expect_refused(&c, "mode 'bsp' is not sync, async, ssp or local");
    snprintf(eng_ckpt_meta_put(&c.meta, "mode", ENG_META_STR)->str, ENG_CKPT_META_NAME,
             "synchronous");
    expect_refused(&c, "attribute mode of /pstrain: 'synchronous' is longer than 7 characters");
    put_valid(&c);
    eng_ckpt_meta_put(&c.meta, "epoch", ENG_META_I64)->i64 = 0;
    expect_refused(&c, "attribute epoch of /pstrain is 0, expected 1 to 9007199254740992");
    put_valid(&c);
    eng_ckpt_meta_put(&c.meta, "val_split", ENG_META_F64)->f64 = 1.0;
    expect_refused(&c, "attribute val_split of /pstrain is 1, expected in [0, 1)");
    put_valid(&c);
    c.meta.arrays[0].v[1] = -1;
    expect_refused(
        &c, "dataset /pstrain/workers/steps, element 1 is -1, expected 0 to 9007199254740992");
    put_valid(&c);
    c.meta.attrs[0] = c.meta.attrs[--c.meta.nattrs]; /* step gone */
    expect_refused(&c, "attribute step of /pstrain: missing");
    put_valid(&c);
    eng_ckpt_meta_clear(&c.meta);
    expect_refused(&c, "attribute step of /pstrain: missing");
    put_valid(&c);
    pst_free(c.meta.arrays[0].v);
    c.meta.narrays = 0;
    expect_refused(&c, "dataset /pstrain/workers/steps: missing");
    eng_ckpt_free(&c);
}

/* wk_record_read names the file in front of the record's reason. */
static void read_names_the_file(void **state) {
    (void)state;
    eng_ckpt c;
    char err[1024] = "", path[1200];
    assert_int_equal(eng_ckpt_read(FIXTURE, &c, err, sizeof err), PST_OK);
    eng_model m;
    assert_int_equal(eng_model_build(&m, eng_model_find("mnist_cnn"), err, sizeof err), PST_OK);
    eng_ckpt_meta_put(&c.meta, "batch", ENG_META_I32)->i32 = 0;
    snprintf(path, sizeof path, "%s/batch0.h5", dir);
    assert_int_equal(eng_ckpt_write(path, &c, &m, err, sizeof err), PST_OK);
    eng_ckpt_free(&c);
    assert_int_equal(wk_record_read(path, &c, NULL, err, sizeof err), PST_EFORMAT);
    printf("  -> %s\n", err);
    char want[1300];
    snprintf(want, sizeof want, "%s: attribute batch of /pstrain is 0, expected 1 to 65536", path);
    assert_string_equal(err, want);
    static const eng_ckpt zero;
    assert_memory_equal(&c, &zero, sizeof zero);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixture_reads),
        cmocka_unit_test(round_trip_and_refusals),
        cmocka_unit_test(read_names_the_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
