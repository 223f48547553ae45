/* test_ckpt.c: checkpoints (engine/ckpt/ckpt.h) in a fresh temporary directory. Round trips are
 * bit for bit (Adam and RMSprop); the file seen through the HDF5 C API has Keras 2's
 * structure and our checksummed datasets; truncated, damaged, foreign, future-format,
 * unknown-model, wrong-layout and inconsistent files, files in HDF5's earliest format, and
 * files that claim sizes beyond their length are refused with a message that names the
 * file, and nothing is returned; eng_ckpt_write refuses what reading would, and a full disk
 * is one clean error; save keeps the newest files and `latest`; resolve explains what is
 * wrong with a directory; and a writer SIGKILLed at random moments always leaves latest
 * naming a complete checkpoint. A GAN's checkpoint keeps one optimizer per part (its split is
 * checked against the model's); other models' files have no trace of a split. */
#include "engine/ckpt/ckpt.h"

#include "engine/base/base.h"
#include "tests/support/testutil.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[1024];
static eng_model model; /* mnist_cnn */
static eng_model gan;   /* mnist_gan: generator [0, split), discriminator [split, total) */

static int setup(void **state) {
    (void)state;
    char err[256];
    if (eng_model_build(&model, eng_model_find("mnist_cnn"), err, sizeof err) != PST_OK) {
        fprintf(stderr, "mnist_cnn: %s\n", err);
        return -1;
    }
    if (eng_model_build(&gan, eng_model_find("mnist_gan"), err, sizeof err) != PST_OK) {
        fprintf(stderr, "mnist_gan: %s\n", err);
        return -1;
    }
    return tu_mkdtemp(dir, sizeof dir, "ckpt");
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(dir);
    return 0;
}

static void path_of(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", dir, name);
}

/* --- checkpoints to write --- */

/* A run's record as worker/ckpt/record.c puts it in the meta, but in the order of the names:
 * the order reading gives, so that writing what was read gives the same bytes. */
static void put_record(eng_ckpt *c, int64_t step, int64_t epoch, int64_t epoch_step,
                       const char *mode, int32_t staleness, int32_t batch, int64_t seed,
                       int32_t servers, int32_t workers, double val_split, int64_t epochs,
                       const int64_t *worker_steps) {
    eng_ckpt_meta *m = &c->meta;
    eng_ckpt_meta_put(m, "batch", ENG_META_I32)->i32 = batch;
    eng_ckpt_meta_put(m, "epoch", ENG_META_I64)->i64 = epoch;
    eng_ckpt_meta_put(m, "epoch_step", ENG_META_I64)->i64 = epoch_step;
    eng_ckpt_meta_put(m, "epochs", ENG_META_I64)->i64 = epochs;
    snprintf(eng_ckpt_meta_put(m, "mode", ENG_META_STR)->str, ENG_CKPT_META_NAME, "%s", mode);
    eng_ckpt_meta_put(m, "seed", ENG_META_I64)->i64 = seed;
    eng_ckpt_meta_put(m, "servers", ENG_META_I32)->i32 = servers;
    eng_ckpt_meta_put(m, "staleness", ENG_META_I32)->i32 = staleness;
    eng_ckpt_meta_put(m, "step", ENG_META_I64)->i64 = step;
    eng_ckpt_meta_put(m, "val_split", ENG_META_F64)->f64 = val_split;
    eng_ckpt_meta_put(m, "workers", ENG_META_I32)->i32 = workers;
    eng_ckpt_meta_put_array(m, "workers/steps", worker_steps, (uint64_t)workers);
}

/* The step a checkpoint's meta holds. */
static int64_t step_of(const eng_ckpt *c) {
    const eng_meta_attr *a = eng_ckpt_meta_get(&c->meta, "step");
    assert_non_null(a);
    assert_int_equal(a->type, ENG_META_I64);
    return a->i64;
}

/* A checkpoint of mnist_cnn with content drawn from seed: 3 update-count runs, 3 workers.
 * Its arrays are malloc'ed: eng_ckpt_free releases them. */
static void fill_random(eng_ckpt *c, eng_optim_kind kind, uint64_t seed) {
    eng_ckpt_init(c, &model);
    assert_int_equal(c->nparts, 1);
    assert_string_equal(c->parts[0].name, "model");
    c->weights = tu_random_floats(c->total, -1.0f, 1.0f, seed);
    assert_non_null(c->weights);
    eng_ckpt_part *p = &c->parts[0];
    p->optim = eng_optim_defaults(kind);
    p->optim.lr = 0.0025f;
    p->optim.clipvalue = kind == ENG_OPT_RMSPROP ? 0.5f : 0.0f;
    p->optim.decay = kind == ENG_OPT_RMSPROP ? 1e-4f : 0.0f;
    p->nslots = kind == ENG_OPT_ADAM ? 2 : 1;
    for (int s = 0; s < p->nslots; s++) {
        p->slots[s] = tu_random_floats(c->total, 0.0f, 0.01f, seed + 1 + (uint64_t)s);
        assert_non_null(p->slots[s]);
    }
    p->nruns = 3;
    p->runs = malloc(sizeof *p->runs * 3);
    assert_non_null(p->runs);
    p->runs[0] = (eng_ckpt_iters){0, 1000, 1200};
    p->runs[1] = (eng_ckpt_iters){1000, 99000, 1199};
    p->runs[2] = (eng_ckpt_iters){100000, c->total - 100000, 1201};
    static const int64_t steps[] = {400, 401, 402};
    put_record(c, 1200, 3, 200, "ssp", 4, 32, -1234567890123ll, 2, 3, 0.1, 12, steps);
}

static void write_ok(const char *path, const eng_ckpt *c) {
    char err[512] = "";
    if (eng_ckpt_write(path, c, &model, err, sizeof err) != PST_OK)
        fail_msg("eng_ckpt_write: %s", err);
}

static void read_ok(const char *path, eng_ckpt *c) {
    char err[512] = "";
    if (eng_ckpt_read(path, c, err, sizeof err) != PST_OK)
        fail_msg("eng_ckpt_read: %s", err);
}

/* Every field and array of a and b equal, bit for bit. */
static void expect_same(const eng_ckpt *a, const eng_ckpt *b) {
    assert_string_equal(a->model, b->model);
    assert_true(a->layout_checksum == b->layout_checksum);
    assert_true(a->total == b->total);
    assert_memory_equal(a->weights, b->weights, sizeof(float) * a->total);
    assert_int_equal(a->nparts, b->nparts);
    for (int p = 0; p < ENG_MAX_PARTS; p++) {
        const eng_ckpt_part *pa = &a->parts[p], *pb = &b->parts[p];
        if (p >= a->nparts) { /* nothing of a part the model lacks comes back */
            static const eng_ckpt_part zero;
            assert_memory_equal(pb, &zero, sizeof zero);
            continue;
        }
        assert_string_equal(pa->name, pb->name);
        assert_true(pa->offset == pb->offset && pa->total == pb->total);
        assert_int_equal(pa->optim.kind, pb->optim.kind);
        const float fa[] = {pa->optim.lr,      pa->optim.beta1,     pa->optim.beta2, pa->optim.rho,
                            pa->optim.epsilon, pa->optim.clipvalue, pa->optim.decay};
        const float fb[] = {pb->optim.lr,      pb->optim.beta1,     pb->optim.beta2, pb->optim.rho,
                            pb->optim.epsilon, pb->optim.clipvalue, pb->optim.decay};
        assert_memory_equal(fa, fb, sizeof fa);
        assert_int_equal(pa->nslots, pb->nslots);
        for (int s = 0; s < 2; s++) {
            if (s < pa->nslots)
                assert_memory_equal(pa->slots[s], pb->slots[s], sizeof(float) * pa->total);
            else
                assert_null(pb->slots[s]);
        }
        if (pa->ema) {
            assert_non_null(pb->ema);
            assert_memory_equal(pa->ema, pb->ema, sizeof(float) * pa->total);
            assert_memory_equal(&pa->ema_decay, &pb->ema_decay, sizeof pa->ema_decay);
        } else {
            assert_null(pb->ema);
        }
        assert_int_equal(pa->nruns, pb->nruns);
        for (int i = 0; i < pa->nruns; i++) {
            assert_true(pa->runs[i].lo == pb->runs[i].lo);
            assert_true(pa->runs[i].n == pb->runs[i].n);
            assert_true(pa->runs[i].iterations == pb->runs[i].iterations);
        }
    }
    assert_int_equal(a->meta.nattrs, b->meta.nattrs);
    for (int i = 0; i < a->meta.nattrs; i++) {
        const eng_meta_attr *x = &a->meta.attrs[i], *y = &b->meta.attrs[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->type, y->type);
        assert_true(x->i32 == y->i32 && x->i64 == y->i64);
        assert_memory_equal(&x->f64, &y->f64, sizeof x->f64);
        assert_string_equal(x->str, y->str);
    }
    assert_int_equal(a->meta.narrays, b->meta.narrays);
    for (int i = 0; i < a->meta.narrays; i++) {
        assert_string_equal(a->meta.arrays[i].name, b->meta.arrays[i].name);
        assert_true(a->meta.arrays[i].n == b->meta.arrays[i].n);
        assert_memory_equal(a->meta.arrays[i].v, b->meta.arrays[i].v,
                            sizeof(int64_t) * a->meta.arrays[i].n);
    }
    assert_true(a->vocab_bytes == b->vocab_bytes);
    if (a->vocab_bytes)
        assert_memory_equal(a->vocab, b->vocab, a->vocab_bytes);
    else
        assert_null(b->vocab);
}

static void round_trip(eng_optim_kind kind, const char *name) {
    eng_ckpt c, back;
    fill_random(&c, kind, 42 + (uint64_t)kind);
    if (kind == ENG_OPT_RMSPROP) { /* a text model's vocabulary travels too */
        static const char words[] = "the\nand\na\nof\ndon't\n";
        c.vocab = malloc(sizeof words);
        assert_non_null(c.vocab);
        memcpy(c.vocab, words, sizeof words);
        c.vocab_bytes = sizeof words - 1;
    }
    char path[1200];
    path_of(path, sizeof path, name);
    write_ok(path, &c);
    read_ok(path, &back);
    expect_same(&c, &back);
    /* Written again from what was read: the same bytes (no timestamps in the file). */
    char again[1300];
    snprintf(again, sizeof again, "%s.again", path);
    write_ok(again, &back);
    size_t n1, n2;
    char *b1 = tu_read_file(path, &n1), *b2 = tu_read_file(again, &n2);
    assert_true(b1 && b2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    eng_ckpt_free(&back);
    eng_ckpt_free(&c);
}

static void round_trip_adam(void **state) {
    (void)state;
    round_trip(ENG_OPT_ADAM, "adam.h5");
}

static void round_trip_rmsprop(void **state) {
    (void)state;
    round_trip(ENG_OPT_RMSPROP, "rmsprop.h5");
}

/* --- the file through the HDF5 C API --- */

/* A 1-D fixed-length string array (attribute name of loc, or a dataset) must be expect[]:
 * null-padded, of the longest entry's size. */
static void expect_strings(hid_t loc, const char *name, int dataset, const char *const *expect,
                           int n) {
    hid_t obj = dataset ? H5Dopen2(loc, name, H5P_DEFAULT) : H5Aopen(loc, name, H5P_DEFAULT);
    if (obj < 0)
        fail_msg("%s: cannot open", name);
    hid_t t = dataset ? H5Dget_type(obj) : H5Aget_type(obj);
    hid_t s = dataset ? H5Dget_space(obj) : H5Aget_space(obj);
    assert_int_equal(H5Tget_class(t), H5T_STRING);
    assert_int_equal(H5Tis_variable_str(t), 0);
    assert_int_equal(H5Tget_strpad(t), H5T_STR_NULLPAD);
    size_t longest = 1;
    for (int i = 0; i < n; i++)
        longest = strlen(expect[i]) > longest ? strlen(expect[i]) : longest;
    assert_int_equal(H5Tget_size(t), longest);
    assert_int_equal(H5Sget_simple_extent_type(s), H5S_SIMPLE);
    assert_int_equal(H5Sget_simple_extent_ndims(s), 1);
    hsize_t dim;
    H5Sget_simple_extent_dims(s, &dim, NULL);
    if (dim != (hsize_t)n)
        fail_msg("%s: %llu entries, expected %d", name, (unsigned long long)dim, n);
    char *buf = calloc((size_t)n + 1, longest);
    assert_non_null(buf);
    if (n > 0)
        assert_true((dataset ? H5Dread(obj, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)
                             : H5Aread(obj, t, buf)) >= 0);
    for (int i = 0; i < n; i++) {
        const char *e = buf + (size_t)i * longest;
        if (strnlen(e, longest) != strlen(expect[i]) || memcmp(e, expect[i], strlen(expect[i])))
            fail_msg("%s[%d] is '%.*s', expected '%s'", name, i, (int)longest, e, expect[i]);
    }
    free(buf);
    H5Sclose(s);
    H5Tclose(t);
    if (dataset)
        H5Dclose(obj);
    else
        H5Aclose(obj);
}

static void expect_scalar_string(hid_t loc, const char *name, const char *value) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    assert_int_equal(H5Tget_class(t), H5T_STRING);
    assert_int_equal(H5Tis_variable_str(t), 0);
    assert_int_equal(H5Sget_simple_extent_type(s), H5S_SCALAR);
    char buf[64] = "";
    assert_true(H5Tget_size(t) < sizeof buf);
    assert_true(H5Aread(a, t, buf) >= 0);
    assert_string_equal(buf, value);
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
}

/* Dataset path is float32 of shape dims, chunked with Fletcher32, and holds want[]. */
static void expect_float_dataset(hid_t file, const char *path, int rank, const hsize_t *dims,
                                 const float *want, size_t count) {
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0)
        fail_msg("%s: missing", path);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d), dcpl = H5Dget_create_plist(d);
    assert_true(H5Tequal(t, H5T_IEEE_F32LE) > 0);
    hsize_t got[4] = {0};
    assert_int_equal(H5Sget_simple_extent_ndims(s), rank);
    H5Sget_simple_extent_dims(s, got, NULL);
    for (int i = 0; i < rank; i++)
        if (got[i] != dims[i])
            fail_msg("%s: dimension %d is %llu, expected %llu", path, i, (unsigned long long)got[i],
                     (unsigned long long)dims[i]);
    assert_int_equal(H5Pget_layout(dcpl), H5D_CHUNKED);
    int fletcher = 0;
    for (int i = 0; i < H5Pget_nfilters(dcpl); i++) {
        unsigned flags, conf;
        size_t nvals = 0;
        char fname[32];
        fletcher |= H5Pget_filter2(dcpl, (unsigned)i, &flags, &nvals, NULL, sizeof fname, fname,
                                   &conf) == H5Z_FILTER_FLETCHER32;
    }
    if (!fletcher)
        fail_msg("%s: no Fletcher32 filter", path);
    float *buf = malloc(sizeof(float) * count);
    assert_non_null(buf);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    if (memcmp(buf, want, sizeof(float) * count) != 0)
        fail_msg("%s: values differ from the flat vector's slice", path);
    free(buf);
    H5Pclose(dcpl);
    H5Sclose(s);
    H5Tclose(t);
    H5Dclose(d);
}

static void keras_structure(void **state) {
    (void)state;
    eng_ckpt c;
    fill_random(&c, ENG_OPT_ADAM, 7);
    char path[1200];
    path_of(path, sizeof path, "keras.h5");
    write_ok(path, &c);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    /* Superblock 2 or later: the (1.8, latest) bounds, with checksummed metadata. */
    H5F_info2_t info;
    assert_true(H5Fget_info2(file, &info) >= 0);
    assert_true(info.super.version >= 2);

    static const char *const layers[] = {"conv2d",  "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                                         "flatten", "dense",         "dropout",  "dense_1"};
    expect_strings(file, "layer_names", 0, layers, 8);
    expect_scalar_string(file, "backend", "tensorflow");
    expect_scalar_string(file, "keras_version", "2.13.1");
    for (int i = 0; i < 8; i++) {
        hid_t g = H5Gopen2(file, layers[i], H5P_DEFAULT);
        if (g < 0)
            fail_msg("group /%s missing", layers[i]);
        char kernel[64], bias[64];
        snprintf(kernel, sizeof kernel, "%s/kernel:0", layers[i]);
        snprintf(bias, sizeof bias, "%s/bias:0", layers[i]);
        const char *const names[] = {kernel, bias};
        const int weighted =
            strncmp(layers[i], "conv2d", 6) == 0 || strncmp(layers[i], "dense", 5) == 0;
        expect_strings(g, "weight_names", 0, names, weighted ? 2 : 0);
        H5Gclose(g);
        if (!weighted)
            continue;
        for (int w = 0; w < 2; w++) {
            char tname[64];
            snprintf(tname, sizeof tname, "%s/%s", layers[i], w ? "bias" : "kernel");
            const int ti = eng_layout_find(&model.layout, tname);
            assert_true(ti >= 0);
            const eng_tensor_info *t = &model.layout.tensors[ti];
            hsize_t dims[4];
            for (int d = 0; d < t->ndim; d++)
                dims[d] = (hsize_t)t->shape[d];
            char dpath[128];
            snprintf(dpath, sizeof dpath, "/%s/%s:0", layers[i], tname);
            expect_float_dataset(file, dpath, t->ndim, dims, c.weights + t->offset, t->count);
        }
    }
    /* The Keras shapes themselves, spelled out. */
    const hsize_t k0[4] = {3, 3, 1, 32}, k1[4] = {3, 3, 32, 64}, d0[2] = {1600, 128},
                  d1[2] = {128, 10};
    const eng_tensor_info *tt = model.layout.tensors;
    expect_float_dataset(file, "/conv2d/conv2d/kernel:0", 4, k0, c.weights + tt[0].offset, 288);
    expect_float_dataset(file, "/conv2d_1/conv2d_1/kernel:0", 4, k1, c.weights + tt[2].offset,
                         18432);
    expect_float_dataset(file, "/dense/dense/kernel:0", 2, d0, c.weights + tt[4].offset, 204800);
    expect_float_dataset(file, "/dense_1/dense_1/kernel:0", 2, d1, c.weights + tt[6].offset, 1280);

    /* Ours: the flat optimizer slots, the layout for h5py users, a few attributes. */
    const hsize_t total = c.total;
    expect_float_dataset(file, "/pstrain/optimizer/m", 1, &total, c.parts[0].slots[0], c.total);
    expect_float_dataset(file, "/pstrain/optimizer/v", 1, &total, c.parts[0].slots[1], c.total);
    const char *tnames[ENG_MAX_TENSORS];
    for (int i = 0; i < model.layout.n; i++)
        tnames[i] = model.layout.tensors[i].name;
    expect_strings(file, "/pstrain/layout/names", 1, tnames, model.layout.n);
    hid_t g = H5Gopen2(file, "pstrain", H5P_DEFAULT);
    assert_true(g >= 0);
    int32_t format = 0;
    hid_t a = H5Aopen(g, "format_version", H5P_DEFAULT);
    assert_true(H5Aread(a, H5T_NATIVE_INT32, &format) >= 0);
    H5Aclose(a);
    assert_int_equal(format, ENG_CKPT_FORMAT);
    expect_scalar_string(g, "model", "mnist_cnn");
    expect_scalar_string(g, "optimizer", "adam");
    expect_scalar_string(g, "mode", "ssp");
    int64_t rows[9];
    hid_t d = H5Dopen2(g, "optimizer/iterations", H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    H5Dclose(d);
    assert_true(rows[0] == 0 && rows[1] == 1000 && rows[2] == 1200);
    assert_true(rows[6] == 100000 && rows[7] == (int64_t)c.total - 100000 && rows[8] == 1201);
    H5Gclose(g);
    H5Fclose(file);
    eng_ckpt_free(&c);
}

/* --- refusals --- */

static void expect_zeroed(const eng_ckpt *c) {
    static const eng_ckpt zero;
    if (memcmp(c, &zero, sizeof zero) != 0)
        fail_msg("a refused checkpoint left state behind");
}

/* Reading path must fail with code (0: any error) and a message naming path and saying
 * word, leaving the checkpoint zeroed. */
static void expect_refused(const char *path, int code, const char *word) {
    eng_ckpt c;
    memset(&c, 0x5A, sizeof c); /* garbage in: nothing of it may come back */
    char err[1024] = "";
    int rc = eng_ckpt_read(path, &c, err, sizeof err);
    printf("  -> rc %d: %s\n", rc, err);
    if (rc == PST_OK)
        fail_msg("%s was accepted, expected a refusal saying '%s'", path, word);
    if (code && rc != code)
        fail_msg("rc %d, expected %d; message: %s", rc, code, err);
    if (!strstr(err, path))
        fail_msg("message '%s' does not name the file %s", err, path);
    if (word && !strstr(err, word))
        fail_msg("message '%s' does not say '%s'", err, word);
    if (strchr(err, '\n'))
        fail_msg("message '%s' is more than one line", err);
    expect_zeroed(&c);
}

/* A valid checkpoint (Adam) at dir/name; its path into path. */
static void write_valid(char *path, size_t len, const char *name) {
    eng_ckpt c;
    fill_random(&c, ENG_OPT_ADAM, 99);
    path_of(path, len, name);
    write_ok(path, &c);
    eng_ckpt_free(&c);
}

static void refuses_truncated(void **state) {
    (void)state;
    char path[1200], cut[1200];
    write_valid(path, sizeof path, "whole.h5");
    size_t len;
    char *bytes = tu_read_file(path, &len);
    assert_non_null(bytes);
    const size_t lengths[] = {0, 100, 2048, len / 2, len - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        snprintf(cut, sizeof cut, "%s/cut-%zu.h5", dir, lengths[i]);
        assert_int_equal(tu_write_file(cut, bytes, lengths[i]), 0);
        expect_refused(cut, PST_EFORMAT, "truncated");
    }
    free(bytes);
}

/* The file offset of the middle of dataset dpath's first chunk. */
static size_t chunk_middle(const char *path, const char *dpath) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(file, dpath, H5P_DEFAULT), s = H5Dget_space(d);
    hsize_t offset[4], size = 0;
    unsigned mask = 0;
    haddr_t addr = 0;
    assert_true(H5Dget_chunk_info(d, s, 0, offset, &mask, &addr, &size) >= 0);
    assert_true(size > 16);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(file);
    return (size_t)addr + (size_t)size / 2;
}

static void refuses_flipped_byte(void **state) {
    (void)state;
    static const char *const targets[] = {"/pstrain/optimizer/m", "/dense/dense/kernel:0",
                                          "/conv2d/conv2d/bias:0"};
    for (int i = 0; i < 3; i++) {
        char path[1200], name[64];
        snprintf(name, sizeof name, "flip-%d.h5", i);
        write_valid(path, sizeof path, name);
        const size_t at = chunk_middle(path, targets[i]);
        size_t len;
        char *bytes = tu_read_file(path, &len);
        assert_non_null(bytes);
        assert_true(at < len);
        bytes[at] ^= 0x10;
        assert_int_equal(tu_write_file(path, bytes, len), 0);
        free(bytes);
        expect_refused(path, PST_EFORMAT, targets[i]);
        expect_refused(path, PST_EFORMAT, "damaged (checksum mismatch");
    }
}

/* A Keras-like weights file at path: valid HDF5, none of ours; in the format pstrain writes
 * (latest) or in HDF5's default, earliest one (as h5py and Keras write). */
static void write_foreign(const char *path, int latest) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (latest)
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    const hsize_t dim = 4;
    const float x[4] = {1, 2, 3, 4};
    hid_t s = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(file, "dense", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(file);
    H5Pclose(fapl);
}

static void refuses_foreign_files(void **state) {
    (void)state;
    char path[1200];
    path_of(path, sizeof path, "foreign.h5");
    write_foreign(path, 1);
    expect_refused(path, PST_EFORMAT, "not a pstrain checkpoint (no /pstrain group)");
    /* HDF5's earliest format has no metadata checksums, and libhdf5 1.10 crashed on damaged
     * files of it (tests/fuzz): refused before HDF5 parses it. */
    path_of(path, sizeof path, "foreign-v0.h5");
    write_foreign(path, 0);
    expect_refused(path, PST_EFORMAT, "HDF5 superblock version 0: not a pstrain checkpoint");
    /* Not HDF5 at all. */
    path_of(path, sizeof path, "text.h5");
    const char text[] = "step 1200\nweights 0.1 0.2 0.3\n";
    assert_int_equal(tu_write_file(path, text, sizeof text - 1), 0);
    expect_refused(path, PST_EFORMAT, "not an HDF5 file");
    /* Missing, and a directory. */
    path_of(path, sizeof path, "no-such.h5");
    expect_refused(path, PST_EIO, "No such file");
    expect_refused(dir, PST_EARG, "directory");
}

/* --- a valid file, then one thing changed through the HDF5 API --- */

static hid_t open_rw(const char *path) {
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0)
        fail_msg("%s: cannot open for writing", path);
    return file;
}

/* Through the object, not H5Aopen_by_name: HDF5 1.10 cannot write an attribute opened by
 * name from the file when the object keeps its attributes in dense storage. */
static void set_attr(const char *path, const char *obj, const char *name, hid_t mtype,
                     const void *v) {
    hid_t file = open_rw(path);
    hid_t g = H5Oopen(file, obj, H5P_DEFAULT);
    hid_t a = H5Aopen(g, name, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, mtype, v) >= 0);
    H5Aclose(a);
    H5Oclose(g);
    H5Fclose(file);
}

static void set_string_attr(const char *path, const char *obj, const char *name,
                            const char *value) {
    hid_t file = open_rw(path);
    hid_t g = H5Oopen(file, obj, H5P_DEFAULT);
    assert_true(g >= 0);
    assert_true(H5Adelete(g, name) >= 0);
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(value));
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t a = H5Acreate2(g, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, t, value) >= 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    H5Oclose(g);
    H5Fclose(file);
}

static void refuses_format_version(void **state) {
    (void)state;
    char path[1200];
    write_valid(path, sizeof path, "v2.h5");
    const int32_t two = 2;
    set_attr(path, "/pstrain", "format_version", H5T_NATIVE_INT32, &two);
    expect_refused(path, PST_EFORMAT, "format_version 2, this pstrain reads 1");
}

static void refuses_unknown_model(void **state) {
    (void)state;
    char path[1200];
    write_valid(path, sizeof path, "foo.h5");
    set_string_attr(path, "/pstrain", "model", "foo");
    expect_refused(path, PST_EFORMAT, "model 'foo' is not one pstrain knows");
    /* What a file holds is quoted escaped: a newline cannot break the one line (found by
     * tests/fuzz/fuzz_ckpt in a layer name). */
    write_valid(path, sizeof path, "newline.h5");
    set_string_attr(path, "/pstrain", "model", "mnist\ncnn\x1b");
    expect_refused(path, PST_EFORMAT, "model 'mnist\\x0acnn\\x1b' is not one pstrain knows");
}

static void refuses_layout_checksum(void **state) {
    (void)state;
    char path[1200];
    write_valid(path, sizeof path, "layout.h5");
    const uint64_t off = eng_layout_checksum(&model.layout) + 1;
    set_attr(path, "/pstrain", "layout_checksum", H5T_NATIVE_UINT64, &off);
    expect_refused(path, PST_EFORMAT, "layout checksum");
    expect_refused(path, PST_EFORMAT, "does not match mnist_cnn's");
}

/* Files that are whole but say impossible things. */
static void refuses_inconsistent_state(void **state) {
    (void)state;
    char path[1200];
    /* Update-count runs with a gap. */
    write_valid(path, sizeof path, "gap.h5");
    hid_t file = open_rw(path);
    hid_t d = H5Dopen2(file, "/pstrain/optimizer/iterations", H5P_DEFAULT);
    int64_t rows[9];
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    rows[3] += 1; /* run 1 starts one element late */
    assert_true(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    H5Dclose(d);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT, "tile");

    /* The run's record is the meta's: an int32 array in its group is refused. */
    write_valid(path, sizeof path, "steps-int32.h5");
    file = open_rw(path);
    assert_true(H5Ldelete(file, "/pstrain/workers/steps", H5P_DEFAULT) >= 0);
    const hsize_t three = 3;
    const int32_t steps32[3] = {1, 2, 3};
    hid_t s1 = H5Screate_simple(1, &three, NULL);
    d = H5Dcreate2(file, "/pstrain/workers/steps", H5T_STD_I32LE, s1, H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT);
    assert_true(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps32) >= 0);
    H5Dclose(d);
    H5Sclose(s1);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT, "dataset /pstrain/workers/steps: expected int64");

    write_valid(path, sizeof path, "sgd.h5");
    set_string_attr(path, "/pstrain", "optimizer", "sgd");
    expect_refused(path, PST_EFORMAT, "optimizer 'sgd'");

    /* Adam's file with RMSprop's slot added, and with one of its own removed. */
    write_valid(path, sizeof path, "extra-slot.h5");
    file = open_rw(path);
    const hsize_t dim = 4;
    const float x[4] = {0};
    hid_t s = H5Screate_simple(1, &dim, NULL);
    d = H5Dcreate2(file, "/pstrain/optimizer/accumulator", H5T_IEEE_F32LE, s, H5P_DEFAULT,
                   H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(d);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT, "accumulator is not a slot of adam");
    write_valid(path, sizeof path, "no-v.h5");
    file = open_rw(path);
    assert_true(H5Ldelete(file, "/pstrain/optimizer/v", H5P_DEFAULT) >= 0);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT, "dataset /pstrain/optimizer/v: missing");

    /* A Keras kernel of the wrong shape. */
    write_valid(path, sizeof path, "shape.h5");
    file = open_rw(path);
    assert_true(H5Ldelete(file, "/conv2d/conv2d/kernel:0", H5P_DEFAULT) >= 0);
    const hsize_t dims[3] = {3, 3, 32};
    float *w = calloc(288, sizeof(float));
    hid_t s3 = H5Screate_simple(3, dims, NULL);
    d = H5Dcreate2(file, "/conv2d/conv2d/kernel:0", H5T_IEEE_F32LE, s3, H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    free(w);
    H5Dclose(d);
    H5Sclose(s3);
    H5Sclose(s);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT,
                   "dataset /conv2d/conv2d/kernel:0: expected shape (3, 3, 1, 32), got (3, 3, 32)");
}

/* Replaces dataset dpath of path with a chunked one of n values of type t of which no chunk
 * is written: a few bytes in the file, whatever n says. */
static void make_hollow(const char *path, const char *dpath, hid_t t, hsize_t n) {
    hid_t file = open_rw(path);
    if (H5Lexists(file, dpath, H5P_DEFAULT) > 0)
        assert_true(H5Ldelete(file, dpath, H5P_DEFAULT) >= 0);
    hid_t s = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    const hsize_t chunk = 4096;
    assert_true(H5Pset_chunk(dcpl, 1, &chunk) >= 0);
    hid_t d = H5Dcreate2(file, dpath, t, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(s);
    H5Fclose(file);
}

/* Sizes a file gives (not its model) are checked against its length before memory is
 * allocated for them (found by tests/fuzz/fuzz_ckpt: a 32 KB file asked for 32 GB). */
static void refuses_huge_vocab(void **state) {
    (void)state;
    char path[1200];
    write_valid(path, sizeof path, "vocab-32GB.h5");
    make_hollow(path, "/pstrain/vocab", H5T_STD_U8LE, (hsize_t)1 << 35);
    expect_refused(path, PST_EFORMAT,
                   "dataset /pstrain/vocab: 34359738368 x 1 bytes, more than the whole file");
}

static void refuses_huge_workers(void **state) {
    (void)state;
    char path[1200];
    write_valid(path, sizeof path, "workers-4GB.h5");
    const int32_t workers = 1 << 29;
    set_attr(path, "/pstrain", "workers", H5T_NATIVE_INT32, &workers);
    make_hollow(path, "/pstrain/workers/steps", H5T_STD_I64LE, (hsize_t)workers);
    expect_refused(path, PST_EFORMAT,
                   "dataset /pstrain/workers/steps: 536870912 x 8 bytes, more than the whole file");
}

/* eng_ckpt_write refuses what eng_ckpt_read would, and leaves no file. */
static void write_refuses_bad_state(void **state) {
    (void)state;
    char path[1200], err[512];
    path_of(path, sizeof path, "never.h5");
    eng_ckpt c;
    fill_random(&c, ENG_OPT_ADAM, 5);
    c.parts[0].nslots = 1;
    assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "optimizer nslots 1, adam keeps 2"));
    c.parts[0].nslots = 2;
    c.parts[0].runs[1].lo += 1;
    assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "tile"));
    c.parts[0].runs[1].lo -= 1;
    snprintf(c.parts[0].name, sizeof c.parts[0].name, "generator");
    assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "part 0 is 'generator'"));
    snprintf(c.parts[0].name, sizeof c.parts[0].name, "model");
    c.layout_checksum ^= 1;
    assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "layout checksum"));
    c.layout_checksum ^= 1;
    /* a meta that names one of /pstrain's own attributes, or an array outside a group */
    eng_ckpt_meta_put(&c.meta, "model", ENG_META_I32);
    assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "/pstrain's own"));
    assert_non_null(strstr(err, path));
    c.meta.nattrs--;
    eng_ckpt_meta_put_array(&c.meta, "steps", NULL, 0);
    assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "meta array 1: 'steps'"));
    pst_free(c.meta.arrays[1].v);
    c.meta.narrays--;
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    /* A directory that does not exist: the system's reason. */
    path_of(path, sizeof path, "no-dir/x.h5");
    assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EIO);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file or directory"));
    eng_ckpt_free(&c);
}

/* Values no run could produce: refused before anything is written, and on reading, from a
 * file and from its bytes (what other ranks parse) alike (issue 19). */
static void refuses_bad_values(void **state) {
    (void)state;
    char path[1200], err[512];
    path_of(path, sizeof path, "never-values.h5");
    eng_ckpt c;
    fill_random(&c, ENG_OPT_ADAM, 9);
    static const struct {
        int what; /* 0 weight, 1 m, 2 v */
        size_t at;
        float v;
        const char *word;
    } bad[] = {
        {0, 3, NAN, "dataset /conv2d/conv2d/kernel:0, element 3 (row-major) is nan"},
        {0, 288, INFINITY, "dataset /conv2d/conv2d/bias:0, element 0 (row-major) is inf"},
        {0, 320, 1e30f, "dataset /conv2d_1/conv2d_1/kernel:0, element 0 (row-major) is 1e+30"},
        {1, 5, -2e19f, "dataset /pstrain/optimizer/m, element 5 (row-major) is -2e+19"},
        {2, 7, -1e-9f,
         "dataset /pstrain/optimizer/v, element 7 (row-major) is -1e-09, expected "
         "a second moment (>= 0)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float *x = bad[i].what == 0 ? c.weights : c.parts[0].slots[bad[i].what - 1];
        const float keep = x[bad[i].at];
        x[bad[i].at] = bad[i].v;
        assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EARG);
        printf("  -> %s\n", err);
        if (!strstr(err, bad[i].word) || !strstr(err, path))
            fail_msg("'%s' does not say '%s'", err, bad[i].word);
        x[bad[i].at] = keep;
    }
    /* the largest magnitude let through, and -0 as a second moment */
    c.weights[0] = 18446744073709551616.0f;
    c.parts[0].slots[1][0] = -0.0f;
    c.parts[0].runs[0].iterations = (int64_t)1 << 53;
    write_ok(path, &c);
    c.parts[0].runs[0].iterations = ((int64_t)1 << 53) + 1;
    assert_int_equal(eng_ckpt_write(path, &c, &model, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "iterations 9007199254740993, expected 0 to 9007199254740992"));
    c.parts[0].runs[0].iterations = 1;
    eng_ckpt_free(&c);
    /* a valid file whose lr is then set to 1e30 in place (HDF5 keeps its checksums) */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    const float lr = 1e30f;
    set_attr(path, "/pstrain", "lr", H5T_NATIVE_FLOAT, &lr);
    const char *word = "attribute lr of /pstrain is 1e+30, expected a number in [1e-12, 10]";
    expect_refused(path, PST_EFORMAT, word);
    void *bytes;
    size_t len;
    assert_int_equal(eng_ckpt_load_bytes(path, &bytes, &len, err, sizeof err), PST_OK);
    assert_int_equal(eng_ckpt_read_image(bytes, len, "image", &c, err, sizeof err), PST_EFORMAT);
    free(bytes);
    assert_non_null(strstr(err, word));
    expect_zeroed(&c);
}

/* --- save, latest, keep, resolve --- */

static int count_words(const char *s) {
    int n = 0;
    for (const char *p = s; *p; p++)
        n += *p != ' ' && (p == s || p[-1] == ' ');
    return n;
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

/* Names in d other than . and .., sorted, joined by spaces. */
static void list_dir(const char *d, char *out, size_t len) {
    char names[32][256];
    int n = 0;
    DIR *dd = opendir(d);
    assert_non_null(dd);
    struct dirent *e;
    while ((e = readdir(dd)) != NULL && n < 32)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(dd);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? " " : "", names[i]);
}

/* A full disk (here a file size limit): one error naming the file and the system's reason,
 * no file left, latest untouched, and a process that still exits cleanly (HDF5 1.10 writing
 * to disk itself crashes at exit after such a failure). In a child: the limit stays there. */
static void write_fails_cleanly(void **state) {
    (void)state;
    char path[1200], sdir[1200];
    path_of(path, sizeof path, "full.h5");
    path_of(sdir, sizeof sdir, "full");
    eng_ckpt c;
    fill_random(&c, ENG_OPT_ADAM, 12);
    char err[512] = "";
    assert_int_equal(eng_ckpt_save(sdir, 1200, &c, &model, 0, NULL, 0, err, sizeof err), PST_OK);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        const struct rlimit limit = {100000, 100000};
        setrlimit(RLIMIT_FSIZE, &limit);
        int bad = 0;
        struct stat st;
        int rc = eng_ckpt_write(path, &c, &model, err, sizeof err);
        printf("  -> rc %d: %s\n", rc, err);
        bad |= rc != PST_EIO || !strstr(err, path) || !strstr(err, "File too large");
        bad |= (stat(path, &st) == 0) << 1;
        rc = eng_ckpt_save(sdir, 1300, &c, &model, 0, NULL, 0, err, sizeof err);
        printf("  -> rc %d: %s\n", rc, err);
        char listing[2048];
        list_dir(sdir, listing, sizeof listing);
        bad |= (rc != PST_EIO || strcmp(listing, "ckpt-1200.h5 latest") != 0) << 2;
        eng_ckpt_free(&c);
        exit(bad); /* exit, not _exit: HDF5's cleanup at exit runs */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("the writer died of signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("failed checks (bits) %d: 1 message, 2 file left, 4 save", WEXITSTATUS(status));
    eng_ckpt_free(&c);
}

static void save_latest_keep(void **state) {
    (void)state;
    char sdir[1200], out[1400], want[1400], listing[2048], err[512] = "";
    path_of(sdir, sizeof sdir, "run");
    eng_ckpt c;
    fill_random(&c, ENG_OPT_RMSPROP, 11);
    for (int64_t step = 10; step <= 40; step += 10) {
        if (eng_ckpt_save(sdir, step, &c, &model, 2, out, sizeof out, err, sizeof err) != PST_OK)
            fail_msg("eng_ckpt_save step %lld: %s", (long long)step, err);
        snprintf(want, sizeof want, "%s/ckpt-%lld.h5", sdir, (long long)step);
        assert_string_equal(out, want);
    }
    list_dir(sdir, listing, sizeof listing);
    assert_string_equal(listing, "ckpt-30.h5 ckpt-40.h5 latest");
    char latest[1400];
    snprintf(latest, sizeof latest, "%s/latest", sdir);
    size_t len;
    char *text = tu_read_file(latest, &len);
    assert_non_null(text);
    assert_string_equal(text, "ckpt-40.h5\n");
    free(text);
    assert_int_equal(eng_ckpt_resolve(sdir, out, sizeof out, err, sizeof err), PST_OK);
    assert_string_equal(out, want);
    eng_ckpt back;
    read_ok(out, &back);
    expect_same(&c, &back);
    eng_ckpt_free(&back);

    /* An older step after newer ones (a resumed run): latest names it and it is kept beside
     * the two highest steps; a killed writer's temporary file is cleared away. */
    char junk[1400];
    snprintf(junk, sizeof junk, "%s/.pstrain-tmp-99999-ckpt-50.h5", sdir);
    assert_int_equal(tu_write_file(junk, "partial", 7), 0);
    assert_int_equal(eng_ckpt_save(sdir, 25, &c, &model, 2, out, sizeof out, err, sizeof err),
                     PST_OK);
    list_dir(sdir, listing, sizeof listing);
    assert_string_equal(listing, "ckpt-25.h5 ckpt-30.h5 ckpt-40.h5 latest");
    assert_int_equal(eng_ckpt_resolve(sdir, out, sizeof out, err, sizeof err), PST_OK);
    snprintf(want, sizeof want, "%s/ckpt-25.h5", sdir);
    assert_string_equal(out, want);
    /* keep 0 keeps everything; a file resolves to itself. */
    assert_int_equal(eng_ckpt_save(sdir, 50, &c, &model, 0, NULL, 0, err, sizeof err), PST_OK);
    list_dir(sdir, listing, sizeof listing);
    assert_string_equal(listing, "ckpt-25.h5 ckpt-30.h5 ckpt-40.h5 ckpt-50.h5 latest");
    assert_int_equal(eng_ckpt_resolve(want, out, sizeof out, err, sizeof err), PST_OK);
    assert_string_equal(out, want);
    eng_ckpt_free(&c);
}

static void expect_resolve_error(const char *what, int code, const char *named, const char *word) {
    char out[1400] = "", err[1024] = "";
    int rc = eng_ckpt_resolve(what, out, sizeof out, err, sizeof err);
    printf("  -> rc %d: %s\n", rc, err);
    if (rc != code)
        fail_msg("resolve(%s): rc %d, expected %d; message: %s", what, rc, code, err);
    if (!strstr(err, named) || !strstr(err, word))
        fail_msg("message '%s' does not name %s and say '%s'", err, named, word);
}

static void resolve_errors(void **state) {
    (void)state;
    char rdir[1200], latest[1400], missing[1200];
    path_of(missing, sizeof missing, "nowhere");
    expect_resolve_error(missing, PST_EIO, missing, "No such file");
    path_of(rdir, sizeof rdir, "resolve");
    assert_int_equal(mkdir(rdir, 0700), 0);
    snprintf(latest, sizeof latest, "%s/latest", rdir);
    expect_resolve_error(rdir, PST_EIO, latest, "no checkpoint");
    assert_int_equal(tu_write_file(latest, "", 0), 0);
    expect_resolve_error(rdir, PST_EFORMAT, latest, "empty");
    assert_int_equal(tu_write_file(latest, "../ckpt-10.h5\n", 14), 0);
    expect_resolve_error(rdir, PST_EFORMAT, latest, "no '/'");
    assert_int_equal(tu_write_file(latest, "ckpt-10.h5\nckpt-20.h5\n", 22), 0);
    expect_resolve_error(rdir, PST_EFORMAT, latest, "one line");
    assert_int_equal(tu_write_file(latest, "ckpt-10.h5\n", 11), 0);
    expect_resolve_error(rdir, PST_EFORMAT, latest, "does not exist");
    /* The output buffer too small for the answer. */
    char ckpt[1400], out[8], err[512];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt-10.h5", rdir);
    assert_int_equal(tu_write_file(ckpt, "x", 1), 0);
    assert_int_equal(eng_ckpt_resolve(rdir, out, sizeof out, err, sizeof err), PST_EARG);
}

/* --- atomicity under SIGKILL --- */

enum { KILLS = 30, KEEP = 2 };

/* The content a saver writes at step: every array derived from it, exactly representable. */
static void fill_step(eng_ckpt *c, int64_t step) {
    eng_ckpt_meta_put(&c->meta, "step", ENG_META_I64)->i64 = step;
    eng_ckpt_meta_put(&c->meta, "epoch", ENG_META_I64)->i64 = 1 + step / 50;
    eng_ckpt_meta_put(&c->meta, "epoch_step", ENG_META_I64)->i64 = step % 50;
    const float base = (float)(step % 4096);
    for (size_t i = 0; i < c->total; i++) {
        c->weights[i] = base + (float)(i % 1024) / 1024.0f;
        c->parts[0].slots[0][i] = -c->weights[i];
        c->parts[0].slots[1][i] = c->weights[i] * 0.5f;
    }
    for (int r = 0; r < c->parts[0].nruns; r++)
        c->parts[0].runs[r].iterations = step - r;
    const eng_meta_array *steps = eng_ckpt_meta_get_array(&c->meta, "workers/steps");
    for (uint64_t w = 0; w < steps->n; w++)
        steps->v[w] = 3 * step + (int64_t)w;
}

/* Saves steps first, first + 1, ... until killed; exits 1 on an error. */
static _Noreturn void saver(const char *sdir, int64_t first) {
    eng_ckpt c;
    fill_random(&c, ENG_OPT_ADAM, 3);
    char err[512];
    for (int64_t step = first;; step++) {
        fill_step(&c, step);
        if (eng_ckpt_save(sdir, step, &c, &model, KEEP, NULL, 0, err, sizeof err) != PST_OK) {
            fprintf(stderr, "saver: %s\n", err);
            _exit(1);
        }
    }
}

/* Starts a saver at step first and SIGKILLs it after delay_us, or (delay_us < 0) as soon as
 * sdir/latest exists. */
static void run_and_kill(const char *sdir, int64_t first, long delay_us) {
    char latest[1400];
    snprintf(latest, sizeof latest, "%s/latest", sdir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        saver(sdir, first);
    struct stat st;
    for (int waited = 0; delay_us < 0 && stat(latest, &st) != 0; waited++) {
        if (waited > 20000) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("no checkpoint after 20 s of saving");
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    struct timespec ts = {0, delay_us > 0 ? delay_us * 1000 : 0};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        fail_msg("saver ended by itself (status 0x%x) before it was killed", status);
}

/* What a kill interrupted, judged by what it left: a temporary file (writing a checkpoint or
 * latest), or a checkpoint newer than latest's (between the two renames). */
static void count_interrupted(const char *sdir, int64_t latest_step, int *writing, int *renamed) {
    char listing[2048], newer[64];
    list_dir(sdir, listing, sizeof listing);
    snprintf(newer, sizeof newer, "ckpt-%lld.h5", (long long)latest_step + 1);
    *writing += strstr(listing, ".pstrain-tmp-") != NULL;
    *renamed += strstr(listing, newer) != NULL;
}

static void atomic_under_kill(void **state) {
    (void)state;
    char sdir[1200], path[1400], err[1024];
    path_of(sdir, sizeof sdir, "atomic");
    eng_ckpt want, got;
    fill_random(&want, ENG_OPT_ADAM, 3);
    eng_rng rng;
    eng_rng_seed(&rng, 20240611);
    /* Before any checkpoint was completed there is no latest at all. */
    run_and_kill(sdir, 2, 0);
    int rc = eng_ckpt_resolve(sdir, path, sizeof path, err, sizeof err);
    if (rc != PST_OK && !strstr(err, "no checkpoint") && !strstr(err, "No such file"))
        fail_msg("after a kill before the first checkpoint: %s", err);
    /* A first checkpoint, so that every kill below has one to keep intact. */
    run_and_kill(sdir, 2, -1);
    int64_t last = -1;
    int writing = 0, renamed = 0;
    for (int k = 0; k <= KILLS; k++) {
        long delay_us = -1;
        if (k > 0) {
            delay_us = (long)eng_rng_below(&rng, 30001);
            run_and_kill(sdir, last + 1, delay_us);
        }
        if (eng_ckpt_resolve(sdir, path, sizeof path, err, sizeof err) != PST_OK)
            fail_msg("after kill %d (%ld us): %s", k, delay_us, err);
        if (eng_ckpt_read(path, &got, err, sizeof err) != PST_OK)
            fail_msg("after kill %d (%ld us), latest names a bad checkpoint: %s", k, delay_us, err);
        const int64_t step = step_of(&got);
        if (step < last)
            fail_msg("latest went back from step %lld to %lld", (long long)last, (long long)step);
        /* Complete: every array is the one written at its step. */
        fill_step(&want, step);
        expect_same(&want, &got);
        last = step;
        eng_ckpt_free(&got);
        if (k > 0)
            count_interrupted(sdir, last, &writing, &renamed);
    }
    printf("  %d kills: latest at step %lld; after %d a temporary file was there, after %d a "
           "checkpoint newer than latest's\n",
           KILLS, (long long)last, writing, renamed);

    /* One clean save: the leftovers of killed savers are gone; latest's checkpoint and the
     * new one remain (KEEP = 2). */
    fill_step(&want, last + 1);
    assert_int_equal(eng_ckpt_save(sdir, last + 1, &want, &model, KEEP, NULL, 0, err, sizeof err),
                     PST_OK);
    char listing[2048];
    list_dir(sdir, listing, sizeof listing);
    printf("  after a clean save: %s\n", listing);
    for (int64_t step = last; step <= last + 1; step++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/ckpt-%lld.h5", sdir, (long long)step);
        if (stat(path, &st) != 0)
            fail_msg("%s is missing after a clean save: %s", path, listing);
    }
    assert_int_equal(count_words(listing), 3);
    eng_ckpt_free(&want);
}

/* --- two optimizers: a GAN --- */

/* A checkpoint of mnist_gan with content drawn from seed: Adam (as DCGAN trains its
 * generator) for [0, split), kind2 for [split, total), update-count runs that change at the
 * split, 2 workers. Its arrays are malloc'ed: eng_ckpt_free releases them. */
static void fill_gan(eng_ckpt *c, eng_optim_kind kind2, uint64_t seed) {
    eng_ckpt_init(c, &gan);
    assert_int_equal(c->nparts, 2);
    assert_string_equal(c->parts[0].name, "generator");
    assert_string_equal(c->parts[1].name, "discriminator");
    eng_ckpt_part *g = &c->parts[0], *d = &c->parts[1];
    c->weights = tu_random_floats(c->total, -1.0f, 1.0f, seed);
    assert_non_null(c->weights);
    g->optim = eng_optim_defaults(ENG_OPT_ADAM);
    g->optim.lr = 0.0002f;
    g->optim.beta1 = 0.5f;
    g->nslots = 2;
    for (int s = 0; s < 2; s++) {
        g->slots[s] = tu_random_floats(g->total, 0.0f, 0.01f, seed + 1 + (uint64_t)s);
        assert_non_null(g->slots[s]);
    }
    d->optim = eng_optim_defaults(kind2);
    d->optim.lr = 0.0008f;
    d->optim.clipvalue = kind2 == ENG_OPT_RMSPROP ? 1.0f : 0.0f;
    d->optim.decay = kind2 == ENG_OPT_RMSPROP ? 1e-8f : 0.0f;
    d->nslots = kind2 == ENG_OPT_ADAM ? 2 : 1;
    for (int s = 0; s < d->nslots; s++) {
        d->slots[s] = tu_random_floats(d->total, 0.0f, 0.02f, seed + 3 + (uint64_t)s);
        assert_non_null(d->slots[s]);
    }
    g->nruns = d->nruns = 1;
    g->runs = malloc(sizeof *g->runs);
    d->runs = malloc(sizeof *d->runs);
    assert_true(g->runs && d->runs);
    g->runs[0] = (eng_ckpt_iters){0, g->total, 937};
    d->runs[0] = (eng_ckpt_iters){0, d->total, 1874}; /* the discriminator: two updates a step */
    static const int64_t steps[] = {937, 936};
    put_record(c, 937, 2, 0, "local", 0, 64, 7, 0, 2, 0.0, 50, steps);
}

static void write_gan_ok(const char *path, const eng_ckpt *c) {
    char err[512] = "";
    if (eng_ckpt_write(path, c, &gan, err, sizeof err) != PST_OK)
        fail_msg("eng_ckpt_write: %s", err);
}

/* A float32 scalar attribute name of loc. */
static float float_attr(hid_t loc, const char *name) {
    float v = NAN;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        fail_msg("attribute %s: missing", name);
    hid_t t = H5Aget_type(a);
    assert_true(H5Tequal(t, H5T_IEEE_F32LE) > 0);
    assert_true(H5Aread(a, H5T_NATIVE_FLOAT, &v) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    return v;
}

/* Generator with Adam, discriminator with RMSprop (clipvalue 1, decay 1e-8): every field comes
 * back bit for bit, the file has the layout ckpt.h describes, and writing what was read gives
 * the same bytes. */
static void round_trip_gan(void **state) {
    (void)state;
    assert_true(gan.parts[1].offset == 2330944 && gan.layout.total == 2543809);
    eng_ckpt c, back;
    fill_gan(&c, ENG_OPT_RMSPROP, 2024);
    char path[1200], again[1300];
    path_of(path, sizeof path, "gan.h5");
    write_gan_ok(path, &c);
    read_ok(path, &back);
    expect_same(&c, &back);
    assert_int_equal(back.parts[1].optim.kind, ENG_OPT_RMSPROP);
    assert_true(back.parts[1].optim.clipvalue == 1.0f && back.parts[1].optim.decay == 1e-8f);
    snprintf(again, sizeof again, "%s.again", path);
    write_gan_ok(again, &back);
    size_t n1, n2;
    char *b1 = tu_read_file(path, &n1), *b2 = tu_read_file(again, &n2);
    assert_true(b1 && b2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    eng_ckpt_free(&back);

    /* Through the HDF5 C API: @split, the first optimizer's slots of split floats, the second
     * optimizer in its own group. */
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t g = H5Gopen2(file, "pstrain", H5P_DEFAULT);
    uint64_t split = 0;
    hid_t a = H5Aopen(g, "split", H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    assert_true(H5Tequal(t, H5T_STD_U64LE) > 0);
    assert_true(H5Aread(a, H5T_NATIVE_UINT64, &split) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    assert_true(split == c.parts[1].offset);
    expect_scalar_string(g, "optimizer", "adam");
    const hsize_t first = c.parts[0].total, second = c.parts[1].total;
    expect_float_dataset(file, "/pstrain/optimizer/m", 1, &first, c.parts[0].slots[0], first);
    expect_float_dataset(file, "/pstrain/optimizer/v", 1, &first, c.parts[0].slots[1], first);
    /* the runs, at their offsets in the whole vector */
    int64_t rows[6];
    hid_t d = H5Dopen2(g, "optimizer/iterations", H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    H5Dclose(d);
    assert_true(rows[0] == 0 && rows[1] == (int64_t)first && rows[2] == 937);
    assert_true(rows[3] == (int64_t)first && rows[4] == (int64_t)second && rows[5] == 1874);
    hid_t g2 = H5Gopen2(g, "optimizer_2", H5P_DEFAULT);
    assert_true(g2 >= 0);
    expect_scalar_string(g2, "optimizer", "rmsprop");
    assert_true(float_attr(g2, "lr") == 0.0008f);
    assert_true(float_attr(g2, "rho") == c.parts[1].optim.rho);
    assert_true(float_attr(g2, "clipvalue") == 1.0f);
    assert_true(float_attr(g2, "decay") == 1e-8f);
    assert_true(float_attr(g2, "beta1") == c.parts[1].optim.beta1);
    assert_true(float_attr(g2, "beta2") == c.parts[1].optim.beta2);
    assert_true(float_attr(g2, "epsilon") == c.parts[1].optim.epsilon);
    expect_float_dataset(file, "/pstrain/optimizer_2/accumulator", 1, &second, c.parts[1].slots[0],
                         (size_t)second);
    assert_int_equal(H5Lexists(g2, "m", H5P_DEFAULT), 0);
    assert_int_equal(H5Lexists(g, "ema", H5P_DEFAULT), 0); /* no average kept: none written */
    assert_int_equal(H5Aexists(g, "ema_decay"), 0);
    H5Gclose(g2);
    H5Gclose(g);
    H5Fclose(file);
    eng_ckpt_free(&c);

    /* Either part may use either optimizer: Adam for both. */
    fill_gan(&c, ENG_OPT_ADAM, 77);
    path_of(path, sizeof path, "gan-adam.h5");
    write_gan_ok(path, &c);
    read_ok(path, &back);
    expect_same(&c, &back);
    assert_int_equal(back.parts[1].nslots, 2);
    eng_ckpt_free(&back);
    eng_ckpt_free(&c);
}
/* A GAN's moving average of its generator comes back bit for bit, as /pstrain/ema (split
 * floats) and @ema_decay; half of the pair, a decay out of (0, 1) or an average without a
 * split is refused. */
static void gan_ema(void **state) {
    (void)state;
    eng_ckpt c, back;
    fill_gan(&c, ENG_OPT_RMSPROP, 31);
    c.parts[0].ema = tu_random_floats(c.parts[0].total, -1.0f, 1.0f, 32);
    assert_non_null(c.parts[0].ema);
    c.parts[0].ema_decay = 0.9995;
    char path[1200];
    path_of(path, sizeof path, "gan-ema.h5");
    write_gan_ok(path, &c);
    read_ok(path, &back);
    expect_same(&c, &back);
    eng_ckpt_free(&back);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    const hsize_t first = c.parts[0].total;
    expect_float_dataset(file, "/pstrain/ema", 1, &first, c.parts[0].ema, first);
    H5Fclose(file);

    const double bad = 1.5;
    set_attr(path, "/pstrain", "ema_decay", H5T_NATIVE_DOUBLE, &bad);
    expect_refused(path, PST_EFORMAT, "/pstrain/@ema_decay is 1.5, expected in (0, 1)");
    write_gan_ok(path, &c);
    file = open_rw(path);
    assert_true(H5Ldelete(file, "/pstrain/ema", H5P_DEFAULT) >= 0);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT, "ema and @ema_decay go together, found @ema_decay alone");

    char err[512] = "";
    c.parts[0].ema_decay = 1.0;
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "ema decay not in (0, 1)"));
    /* The file keeps a moving average of the first part only. */
    c.parts[0].ema_decay = 0.9995;
    c.parts[1].ema = c.parts[0].ema;
    c.parts[1].ema_decay = 0.9995;
    c.parts[0].ema = NULL;
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "part discriminator: ema kept only for the first"));
    c.parts[0].ema = c.parts[1].ema;
    c.parts[1].ema = NULL;
    eng_ckpt_free(&c);
}

/* A GAN file whose @split is not mnist_gan's, or lacks it; and a one-optimizer model's file
 * that has one. */
static void refuses_gan_split(void **state) {
    (void)state;
    char path[1200];
    eng_ckpt c;
    fill_gan(&c, ENG_OPT_RMSPROP, 5);
    path_of(path, sizeof path, "gan-split.h5");
    write_gan_ok(path, &c);
    const uint64_t five = 5;
    set_attr(path, "/pstrain", "split", H5T_NATIVE_UINT64, &five);
    expect_refused(path, PST_EFORMAT, "split");
    expect_refused(path, PST_EFORMAT, "/pstrain/@split is 5, expected 2330944 for mnist_gan");

    path_of(path, sizeof path, "gan-no-split.h5");
    write_gan_ok(path, &c);
    hid_t file = open_rw(path);
    hid_t g = H5Gopen2(file, "pstrain", H5P_DEFAULT);
    assert_true(H5Adelete(g, "split") >= 0);
    H5Gclose(g);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT, "/pstrain/@split is 0 (absent), expected 2330944");
    eng_ckpt_free(&c);

    write_valid(path, sizeof path, "cnn-split.h5");
    file = open_rw(path);
    g = H5Gopen2(file, "pstrain", H5P_DEFAULT);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, "split", H5T_STD_U64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    const uint64_t some = 1000;
    assert_true(H5Awrite(a, H5T_NATIVE_UINT64, &some) >= 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Gclose(g);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT, "/pstrain/@split is 1000, expected 0 for mnist_cnn");
}

/* A GAN file without its second optimizer, with a misshapen or foreign slot there, or with an
 * unknown kind of optimizer there. */
static void refuses_gan_optimizer_2(void **state) {
    (void)state;
    char path[1200];
    eng_ckpt c;
    fill_gan(&c, ENG_OPT_RMSPROP, 6);
    path_of(path, sizeof path, "gan-no-opt2.h5");
    write_gan_ok(path, &c);
    hid_t file = open_rw(path);
    assert_true(H5Ldelete(file, "/pstrain/optimizer_2", H5P_DEFAULT) >= 0);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT, "group /pstrain/optimizer_2: missing");

    path_of(path, sizeof path, "gan-short-acc.h5");
    write_gan_ok(path, &c);
    file = open_rw(path);
    assert_true(H5Ldelete(file, "/pstrain/optimizer_2/accumulator", H5P_DEFAULT) >= 0);
    const hsize_t dim = c.parts[0].total; /* the first part's length, not the second's */
    float *zeros = calloc((size_t)dim, sizeof(float));
    assert_non_null(zeros);
    hid_t s = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(file, "/pstrain/optimizer_2/accumulator", H5T_IEEE_F32LE, s, H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros) >= 0);
    free(zeros);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT,
                   "dataset /pstrain/optimizer_2/accumulator: expected shape (212865,), got "
                   "(2330944,)");

    path_of(path, sizeof path, "gan-adam2.h5");
    write_gan_ok(path, &c);
    set_string_attr(path, "/pstrain/optimizer_2", "optimizer", "adam");
    expect_refused(path, PST_EFORMAT, "/pstrain/optimizer_2/accumulator is not a slot of adam");

    path_of(path, sizeof path, "gan-sgd2.h5");
    write_gan_ok(path, &c);
    set_string_attr(path, "/pstrain/optimizer_2", "optimizer", "sgd");
    expect_refused(path, PST_EFORMAT, "/pstrain/optimizer_2: optimizer 'sgd'");

    path_of(path, sizeof path, "gan-lr2.h5");
    write_gan_ok(path, &c);
    const float zero = 0.0f;
    set_attr(path, "/pstrain/optimizer_2", "lr", H5T_NATIVE_FLOAT, &zero);
    expect_refused(path, PST_EFORMAT,
                   "attribute lr of /pstrain/optimizer_2 is 0, expected a number in [1e-12, 10]");
    eng_ckpt_free(&c);

    /* A one-optimizer model's file that grew a second optimizer. */
    write_valid(path, sizeof path, "cnn-opt2.h5");
    file = open_rw(path);
    hid_t g = H5Gcreate2(file, "/pstrain/optimizer_2", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    H5Gclose(g);
    H5Fclose(file);
    expect_refused(path, PST_EFORMAT,
                   "optimizer_2: present, but mnist_cnn has 1 optimizer (no split)");
}

/* eng_ckpt_write refuses a GAN checkpoint reading would refuse, and leaves no file. */
static void write_refuses_bad_gan(void **state) {
    (void)state;
    char path[1200], err[512];
    path_of(path, sizeof path, "never-gan.h5");
    eng_ckpt c;
    fill_gan(&c, ENG_OPT_RMSPROP, 8);
    c.parts[1].offset = 5;
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "part 1 is 'discriminator' at 5 with 212865 floats, mnist_gan's "
                                "is discriminator at 2330944"));
    c.parts[1].offset = gan.parts[1].offset;
    c.nparts = 1;
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "1 parts, mnist_gan has 2"));
    c.nparts = 2;
    eng_ckpt_part *d = &c.parts[1];
    d->nslots = 2;
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "optimizer_2 nslots 2, rmsprop keeps 1"));
    d->nslots = 1;
    float *acc = d->slots[0];
    d->slots[0] = NULL;
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "optimizer_2 slot accumulator missing"));
    d->slots[0] = acc;
    d->optim.kind = ENG_OPT_ADAM; /* Adam keeps 2 */
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "optimizer_2 nslots 1, adam keeps 2"));
    d->optim.kind = ENG_OPT_RMSPROP;
    d->runs[0].n -= 1; /* the discriminator's runs stop one short of its end */
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "part discriminator: update-count runs end at 212864"));
    d->runs[0].n += 1;
    d->optim.lr = -1.0f;
    assert_int_equal(eng_ckpt_write(path, &c, &gan, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "attribute lr of /pstrain/optimizer_2 is -1"));
    assert_non_null(strstr(err, path));
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    /* A GAN's split on a one-optimizer model. */
    eng_ckpt cnn;
    fill_random(&cnn, ENG_OPT_ADAM, 9);
    cnn.nparts = 2;
    assert_int_equal(eng_ckpt_write(path, &cnn, &model, err, sizeof err), PST_EARG);
    assert_non_null(strstr(err, "2 parts, mnist_cnn has 1"));
    assert_int_equal(stat(path, &st), -1);
    eng_ckpt_free(&cnn);
    eng_ckpt_free(&c);
}

/* A one-optimizer model: split 0, and the file has neither @split nor optimizer_2. */
static void cnn_has_no_split(void **state) {
    (void)state;
    assert_true(model.nparts == 1);
    eng_ckpt c, back;
    fill_random(&c, ENG_OPT_RMSPROP, 31);
    char path[1200];
    path_of(path, sizeof path, "cnn-nosplit.h5");
    write_ok(path, &c);
    read_ok(path, &back);
    expect_same(&c, &back);
    assert_int_equal(back.nparts, 1);
    assert_int_equal(back.parts[1].nslots, 0);
    assert_null(back.parts[1].slots[0]);
    assert_null(back.parts[1].slots[1]);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t g = H5Gopen2(file, "pstrain", H5P_DEFAULT);
    assert_int_equal(H5Aexists(g, "split"), 0);
    assert_int_equal(H5Lexists(g, "optimizer_2", H5P_DEFAULT), 0);
    const hsize_t total = c.total;
    expect_float_dataset(file, "/pstrain/optimizer/accumulator", 1, &total, c.parts[0].slots[0],
                         c.total);
    H5Gclose(g);
    H5Fclose(file);
    eng_ckpt_free(&back);
    eng_ckpt_free(&c);
}

/* --- inspect --- */

static void print_summary(void **state) {
    (void)state;
    eng_ckpt c;
    fill_random(&c, ENG_OPT_ADAM, 8);
    const int b = eng_layout_find(&model.layout, "conv2d/bias");
    float *bias = c.weights + model.layout.tensors[b].offset;
    double sq = 0.0;
    for (int i = 0; i < 32; i++) {
        bias[i] = (float)i;
        sq += (double)i * i;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    eng_ckpt_print(&c, &model, out);
    fclose(out);
    printf("%s", text);
    static const char *const words[] = {
        "format 1",  "mnist_cnn", "step 1200", "epoch 3",     "mode ssp",       "adam",
        "lr 0.0025", "3 runs",    "[0, 1000)", "400 401 402", "dense_1/kernel", "(1600, 128)"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strstr(text, words[i]))
            fail_msg("inspect output lacks '%s'", words[i]);
    const char *row = strstr(text, "\nconv2d/bias ");
    assert_non_null(row);
    char name[64], shape[64];
    double lo, hi, mean, l2;
    assert_int_equal(
        sscanf(row + 1, "%63s %63s %lf %lf %lf %lf", name, shape, &lo, &hi, &mean, &l2), 6);
    assert_string_equal(shape, "(32,)");
    assert_true(lo == 0.0 && hi == 31.0 && mean == 15.5);
    assert_true(fabs(l2 - sqrt(sq)) < 1e-3);
    free(text);
    eng_ckpt_free(&c);
}

/* Each part's optimizer, with the range it updates. */
static void print_summary_gan(void **state) {
    (void)state;
    eng_ckpt c;
    fill_gan(&c, ENG_OPT_RMSPROP, 10);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    eng_ckpt_print(&c, &gan, out);
    fclose(out);
    printf("%s", text);
    static const char *const words[] = {
        "mnist_gan", "optimizer 1 (elements 0..2330944): adam (lr 0.0002, beta1 0.5",
        "optimizer 2 (elements 2330944..2543809): rmsprop (lr 0.0008, rho 0.9",
        "clipvalue 1, decay 1e-08)", "[2330944, 2543809): 1874"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strstr(text, words[i]))
            fail_msg("inspect output lacks '%s'", words[i]);
    assert_null(strstr(text, "optimizer: "));
    free(text);
    eng_ckpt_free(&c);
}

/* --- a file's bytes in memory --- */

/* Reading the image of a file (its bytes, as an MPI broadcast carries them) gives what reading
 * the file gives, for one part and for two with a moving average; a cut or foreign image is
 * refused with a line naming it. */
static void read_image_equals_read(void **state) {
    (void)state;
    char path[1200], err[1024] = "";
    for (int k = 0; k < 2; k++) {
        eng_ckpt c, from_file, from_image;
        if (k == 0) {
            fill_random(&c, ENG_OPT_ADAM, 61);
            path_of(path, sizeof path, "image.h5");
            write_ok(path, &c);
        } else {
            fill_gan(&c, ENG_OPT_RMSPROP, 62);
            c.parts[0].ema = tu_random_floats(c.parts[0].total, -1.0f, 1.0f, 63);
            c.parts[0].ema_decay = 0.999;
            path_of(path, sizeof path, "image-gan.h5");
            write_gan_ok(path, &c);
        }
        void *bytes;
        size_t len;
        assert_int_equal(eng_ckpt_load_bytes(path, &bytes, &len, err, sizeof err), PST_OK);
        read_ok(path, &from_file);
        if (eng_ckpt_read_image(bytes, len, path, &from_image, err, sizeof err) != PST_OK)
            fail_msg("eng_ckpt_read_image: %s", err);
        expect_same(&from_file, &from_image);
        expect_same(&c, &from_image);
        eng_ckpt_free(&from_image);
        /* cut short, and not HDF5 at all */
        assert_int_equal(eng_ckpt_read_image(bytes, len / 2, "half", &from_image, err, sizeof err),
                         PST_EFORMAT);
        printf("  -> %s\n", err);
        assert_non_null(strstr(err, "half: truncated or damaged"));
        expect_zeroed(&from_image);
        assert_int_equal(eng_ckpt_read_image("not hdf5", 8, "text", &from_image, err, sizeof err),
                         PST_EFORMAT);
        assert_non_null(strstr(err, "text: not an HDF5 file"));
        expect_zeroed(&from_image);
        free(bytes);
        eng_ckpt_free(&from_file);
        eng_ckpt_free(&c);
    }
    void *bytes;
    size_t len;
    assert_int_equal(eng_ckpt_load_bytes(dir, &bytes, &len, err, sizeof err), PST_EARG);
    path_of(path, sizeof path, "nothing-here.h5");
    assert_int_equal(eng_ckpt_load_bytes(path, &bytes, &len, err, sizeof err), PST_EIO);
    assert_non_null(strstr(err, path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_adam),         cmocka_unit_test(round_trip_rmsprop),
        cmocka_unit_test(keras_structure),         cmocka_unit_test(refuses_truncated),
        cmocka_unit_test(refuses_flipped_byte),    cmocka_unit_test(refuses_foreign_files),
        cmocka_unit_test(refuses_format_version),  cmocka_unit_test(refuses_unknown_model),
        cmocka_unit_test(refuses_layout_checksum), cmocka_unit_test(refuses_inconsistent_state),
        cmocka_unit_test(write_refuses_bad_state), cmocka_unit_test(write_fails_cleanly),
        cmocka_unit_test(save_latest_keep),        cmocka_unit_test(resolve_errors),
        cmocka_unit_test(atomic_under_kill),       cmocka_unit_test(print_summary),
        cmocka_unit_test(round_trip_gan),          cmocka_unit_test(gan_ema),
        cmocka_unit_test(refuses_gan_split),       cmocka_unit_test(refuses_gan_optimizer_2),
        cmocka_unit_test(write_refuses_bad_gan),   cmocka_unit_test(cnn_has_no_split),
        cmocka_unit_test(print_summary_gan),       cmocka_unit_test(refuses_huge_vocab),
        cmocka_unit_test(refuses_huge_workers),    cmocka_unit_test(read_image_equals_read),
        cmocka_unit_test(refuses_bad_values),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
