/* fuzz_ckpt.c: libFuzzer harness for the checkpoint reader (engine/ckpt/ckpt.h).
 *
 * Two kinds of input:
 *   - the bytes of a checkpoint file (anything not starting with 'E'): written to a fixed
 *     per-process .h5 file and read. Damage the way a disk or a copy does it: pstrain's files
 *     carry checksums over data and metadata, so most such inputs stop at HDF5's checks.
 *   - an edit script: 'E', a template byte, then edits, each an op byte and its operands
 *     (bytes past the end read as 0). The template (t % 4: mnist_cnn with Adam, imdb_lstm
 *     with its vocabulary, mnist_gan with two optimizers, fashion_cnn with RMSprop; real
 *     checkpoints, hollow: see ckpt_example.h) is written out and changed through the HDF5
 *     API, so that the file stays well-formed HDF5 with valid checksums while what it says
 *     is hostile; up to MAX_EDITS of (op % 7):
 *       0 A V...      overwrite attribute A's value with bytes V (its type and shape kept)
 *       1 O N T S V.. (re)create attribute N of object O: type T, shape S, bytes V
 *       2 A           delete attribute A
 *       3 D V...      overwrite (the start of) dataset D's data with bytes V
 *       4 D T S V...  replace dataset D: type T, shape S (dimensions may be huge, and then
 *                     nothing is written: HDF5 stores no chunk and the file stays small)
 *       5 O           delete object O's link
 *       6 P K V...    add a group (K even) or a small byte dataset at path P
 *     (A, O, D, N, P index tables of the template's attributes, objects, datasets, attribute
 *     names and paths, modulo their size: FUZZ_CKPT_TABLES=1 in the environment prints
 *     them, and FUZZ_VERBOSE=1 what the reader said of each input.) This reaches the
 *     reader's own checks of types, shapes, sizes and values.
 * Either way eng_ckpt_read must fail with one line naming the file, or return a checkpoint
 * that holds what it promises: the model it names, its arrays in full (read back for ASan),
 * update-count runs that tile [0, total), worker positions; and it must leave no HDF5 object open.
 * A checkpoint that reads is then used as `pstrain inspect` and a resumed text model use it:
 * printed (to /dev/null), and its vocabulary rebuilt word by word.
 *
 * HDF5 itself is not instrumented: libFuzzer sees coverage of our code only, and a memory
 * error inside libhdf5 shows only when it crashes (ASan then names the frame). Its leaks on
 * damaged files are suppressed (tests/fuzz/lsan.supp).
 *
 * Seeds: tests/fuzz/corpus/ckpt (make_corpus): the hollow checkpoints and edit scripts. */
#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/text.h"
#include "tests/fuzz/ckpt_example.h"
#include "tests/fuzz/fuzzutil.h"
#include "worker/ckpt/record.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NTEMPLATES = 4, MAX_EDITS = 8, MAX_ITEMS = 160, MAX_BYTES = 1 << 20, PATH_MAX_ = 128 };

static char path[1100];
static FILE *devnull;

/* --- what a checkpoint that reads must hold --- */

static void check_ckpt(const eng_ckpt *c) {
    fz_check(memchr(c->model, '\0', sizeof c->model) != NULL, "model name not terminated");
    const eng_model_def *def = eng_model_find(c->model);
    fz_check(def != NULL, "model '%s' is not in the registry", c->model);
    eng_model m;
    char err[512];
    fz_check(eng_model_build(&m, def, err, sizeof err) == PST_OK, "%s: %s", c->model, err);
    fz_check(c->total == m.layout.total, "total %llu, %s has %zu", (unsigned long long)c->total,
             c->model, m.layout.total);
    fz_check(c->nparts == m.nparts, "%d parts, %s has %d", c->nparts, c->model, m.nparts);
    fz_touch(c->weights, sizeof(float) * c->total);
    for (int p = 0; p < c->nparts; p++) {
        const eng_ckpt_part *part = &c->parts[p];
        fz_check(part->offset == m.parts[p].offset && part->total == m.parts[p].total &&
                     strcmp(part->name, m.parts[p].name) == 0,
                 "part %d: %s at %llu, %s has %s at %zu", p, part->name,
                 (unsigned long long)part->offset, c->model, m.parts[p].name, m.parts[p].offset);
        fz_check(part->nslots == eng_optim_nslots(part->optim.kind), "part %d: %d slots for %s", p,
                 part->nslots, eng_optim_kind_name(part->optim.kind));
        for (int s = 0; s < part->nslots; s++)
            fz_touch(part->slots[s], sizeof(float) * part->total);
        if (part->ema)
            fz_touch(part->ema, sizeof(float) * part->total);
        uint64_t next = 0;
        for (int i = 0; i < part->nruns; i++) {
            const eng_ckpt_iters *r = &part->runs[i];
            fz_check(r->lo == next && r->n > 0 && r->iterations >= 0,
                     "part %d run %d: [%llu, +%llu) after %llu", p, i, (unsigned long long)r->lo,
                     (unsigned long long)r->n, (unsigned long long)next);
            next += r->n;
        }
        fz_check(part->nruns >= 1 && next == part->total, "part %d: %d runs end at %llu", p,
                 part->nruns, (unsigned long long)next);
    }
    for (int i = 0; i < c->meta.nattrs; i++) {
        const eng_meta_attr *a = &c->meta.attrs[i];
        fz_check(memchr(a->name, '\0', sizeof a->name) && memchr(a->str, '\0', sizeof a->str),
                 "meta attribute %d not terminated", i);
    }
    for (int i = 0; i < c->meta.narrays; i++)
        fz_touch(c->meta.arrays[i].v, sizeof(int64_t) * c->meta.arrays[i].n);
    /* the run's record, as a resumed job and eval take it */
    wk_run_record rec;
    char why[512] = "";
    if (wk_record_get(c, &rec, why, sizeof why) == PST_OK)
        fz_touch(rec.worker_steps, sizeof(int64_t) * (size_t)rec.workers);
    else
        fz_check(why[0] && !strchr(why, '\n'), "record refused with '%s'", why);
    /* The table's statistics walk every weight (mnist_gan: 2.5M, instrumented, most of an
     * input's time) along the model's layout, which no file changes: one tensor, the
     * smallest, is enough to print the rest, which the file decides. */
    int smallest = 0;
    for (int i = 1; i < m.layout.n; i++)
        if (m.layout.tensors[i].count < m.layout.tensors[smallest].count)
            smallest = i;
    m.layout.tensors[0] = m.layout.tensors[smallest];
    m.layout.n = 1;
    eng_ckpt_print(c, &m, devnull);

    if (!c->vocab)
        return;
    /* As worker/train.c rebuilds it: the words, each ended by '\n'. */
    fz_check(c->vocab[c->vocab_bytes] == '\0', "vocabulary of %llu bytes not terminated",
             (unsigned long long)c->vocab_bytes);
    char *copy = malloc(c->vocab_bytes + 1);
    const char **words = malloc(sizeof *words * (c->vocab_bytes + 1));
    fz_check(copy && words, "out of memory for %llu bytes", (unsigned long long)c->vocab_bytes);
    memcpy(copy, c->vocab, c->vocab_bytes + 1);
    int n = 0;
    for (char *p = copy, *nl; *p && (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        words[n++] = p;
    }
    eng_vocab *v = eng_vocab_from_words(words, n, err, sizeof err);
    if (v) {
        fz_check(eng_vocab_size(v) == n, "%d words rebuilt as %d", n, eng_vocab_size(v));
        eng_vocab_free(&v);
    } else {
        fz_check(err[0] != '\0' && strchr(err, '\n') == NULL, "vocabulary refused with '%s'", err);
    }
    free(words);
    free(copy);
}

/* Reads path and checks what came back. */
static void read_and_check(void) {
    eng_ckpt c;
    char err[512] = "";
    const int rc = eng_ckpt_read(path, &c, err, sizeof err);
    if (getenv("FUZZ_VERBOSE")) /* to see what an input does */
        fprintf(stderr, "eng_ckpt_read: %d %s\n", rc, rc == PST_OK ? "ok" : err);
    /* Nothing may stay open: HDF5 would hand a later open of the same file its stale state. */
    const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    fz_check(open == 0, "%zd HDF5 objects left open after a read that returned %d (%s)", open, rc,
             rc == PST_OK ? "ok" : err);
    /* The same bytes from memory (a checkpoint broadcast as its file) read the same way. */
    void *bytes;
    size_t len;
    eng_ckpt img;
    char err2[512] = "";
    fz_check(eng_ckpt_load_bytes(path, &bytes, &len, err2, sizeof err2) == PST_OK, "%s", err2);
    const int rc2 = eng_ckpt_read_image(bytes, len, path, &img, err2, sizeof err2);
    free(bytes);
    fz_check(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "objects left open by an image");
    fz_check((rc == PST_OK) == (rc2 == PST_OK), "the file read %d (%s), its image %d (%s)", rc,
             rc == PST_OK ? "ok" : err, rc2, rc2 == PST_OK ? "ok" : err2);
    if (rc != PST_OK) {
        fz_check_error(rc, err, path, "eng_ckpt_read");
        fz_check_error(rc2, err2, path, "eng_ckpt_read_image");
        fz_check(c.weights == NULL && c.parts[0].runs == NULL && c.vocab == NULL,
                 "a failed read left arrays");
        return;
    }
    fz_check(memcmp(c.weights, img.weights, sizeof(float) * c.total) == 0,
             "the image's weights differ from the file's");
    eng_ckpt_free(&img);
    check_ckpt(&c);
    eng_ckpt_free(&c);
}

/* --- templates and their tables --- */

typedef struct item {
    char obj[PATH_MAX_];  /* an object's path ("/" for the root) */
    char name[PATH_MAX_]; /* an attribute's name (attributes only) */
    int dataset;          /* objects: a dataset rather than a group */
} item;

typedef struct tmpl {
    uint8_t *bytes;
    size_t len;
    item objs[MAX_ITEMS], attrs[MAX_ITEMS];
    int nobjs, nattrs, ndatasets;
    int datasets[MAX_ITEMS]; /* indices into objs */
} tmpl;

static tmpl templates[NTEMPLATES];

/* Paths and attribute names an edit may add, besides the template's own. */
static const char *const extra_paths[] = {"pstrain/optimizer_2",          "pstrain/vocab",
                                          "pstrain/optimizer/extra",      "pstrain/workers/steps",
                                          "pstrain/optimizer/iterations", "pstrain/layout/names",
                                          "pstrain/optimizer_2/m",        "extra"};
static const char *const extra_names[] = {"split",       "format_version", "model",
                                          "workers",     "total",          "optimizer",
                                          "layer_names", "weight_names",   "bogus"};
#define NEXTRA_PATHS ((int)(sizeof extra_paths / sizeof extra_paths[0]))
#define NEXTRA_NAMES ((int)(sizeof extra_names / sizeof extra_names[0]))

static herr_t note_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op) {
    (void)loc;
    (void)info;
    tmpl *t = op;
    if (t->nattrs < MAX_ITEMS) {
        item *a = &t->attrs[t->nattrs++];
        snprintf(a->obj, sizeof a->obj, "%s", t->objs[t->nobjs - 1].obj);
        snprintf(a->name, sizeof a->name, "%s", name);
    }
    return 0;
}

/* Notes the object at path (already open as o) and what is below it. */
static void note_object(tmpl *t, hid_t o, const char *obj_path);

static herr_t note_link(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    tmpl *t = op;
    char parent[PATH_MAX_], sub[PATH_MAX_ * 2];
    ssize_t n = H5Iget_name(g, parent, sizeof parent);
    fz_check(n > 0, "H5Iget_name failed");
    snprintf(sub, sizeof sub, "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, name);
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    fz_check(o >= 0, "template: cannot open %s", sub);
    note_object(t, o, sub);
    H5Oclose(o);
    return 0;
}

static void note_object(tmpl *t, hid_t o, const char *obj_path) {
    if (t->nobjs >= MAX_ITEMS)
        return;
    item *it = &t->objs[t->nobjs++];
    snprintf(it->obj, sizeof it->obj, "%s", obj_path);
    it->dataset = H5Iget_type(o) == H5I_DATASET;
    if (it->dataset)
        t->datasets[t->ndatasets++] = t->nobjs - 1;
    hsize_t idx = 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, note_attr, t);
    if (!it->dataset) {
        idx = 0;
        H5Literate(o, H5_INDEX_NAME, H5_ITER_INC, &idx, note_link, t);
    }
}

/* Template k: a real checkpoint, its hollow copy in memory, and the copy's tables. */
static void make_template(int k, const char *dir) {
    static const struct {
        const char *model, *vocab;
        eng_optim_kind kind, kind2;
    } defs[NTEMPLATES] = {
        {"mnist_cnn", NULL, ENG_OPT_ADAM, ENG_OPT_ADAM},
        {"imdb_lstm", "the\nand\na\nof\nmovie\nit's\n", ENG_OPT_ADAM, ENG_OPT_ADAM},
        {"mnist_gan", NULL, ENG_OPT_ADAM, ENG_OPT_RMSPROP},
        {"fashion_cnn", NULL, ENG_OPT_RMSPROP, ENG_OPT_ADAM},
    };
    char full[1200], hollow[1200], err[512];
    snprintf(full, sizeof full, "%s/template-full.h5", dir);
    snprintf(hollow, sizeof hollow, "%s/template-%d.h5", dir, k);
    fz_check(fz_ckpt_write_example(full, defs[k].model, defs[k].kind, defs[k].kind2, defs[k].vocab,
                                   err, sizeof err) == 0,
             "template %d: %s", k, err);
    fz_check(fz_h5_hollow_copy(full, hollow, 1, err, sizeof err) == 0, "template %d: %s", k, err);
    remove(full);
    tmpl *t = &templates[k];
    FILE *f = fopen(hollow, "rb");
    fz_check(f != NULL, "cannot open %s", hollow);
    fseek(f, 0, SEEK_END);
    t->len = (size_t)ftell(f);
    rewind(f);
    t->bytes = malloc(t->len);
    fz_check(t->bytes && fread(t->bytes, 1, t->len, f) == t->len, "cannot read %s", hollow);
    fclose(f);
    hid_t file = H5Fopen(hollow, H5F_ACC_RDONLY, H5P_DEFAULT);
    fz_check(file >= 0, "cannot open %s", hollow);
    hid_t root = H5Oopen(file, "/", H5P_DEFAULT);
    note_object(t, root, "/");
    H5Oclose(root);
    H5Fclose(file);
    remove(hollow);
}

/* --- edit scripts --- */

typedef struct script {
    const uint8_t *p;
    size_t n, pos;
} script;

static unsigned next(script *s) { return s->pos < s->n ? s->p[s->pos++] : 0; }

/* len bytes of the script into buf (zeros past its end). */
static void take(script *s, void *buf, size_t len) {
    const size_t have = s->pos < s->n ? s->n - s->pos : 0;
    const size_t k = have < len ? have : len;
    memcpy(buf, s->p + s->pos, k);
    memset((char *)buf + k, 0, len - k);
    s->pos += k;
}

/* A type: (b % 9) int32, int64, uint64, float32, float64, uint8, a short fixed string, a long
 * one (up to about 1 MB), a variable-length string. Close with H5Tclose. */
static hid_t pick_type(script *s) {
    const unsigned b = next(s) % 9;
    const hid_t fixed[] = {H5T_STD_I32LE,  H5T_STD_I64LE,  H5T_STD_U64LE,
                           H5T_IEEE_F32LE, H5T_IEEE_F64LE, H5T_STD_U8LE}; /* not constants */
    if (b < 6)
        return H5Tcopy(fixed[b]);
    hid_t t = H5Tcopy(H5T_C_S1);
    if (b == 6)
        H5Tset_size(t, 1 + next(s) % 80);
    else if (b == 7)
        H5Tset_size(t, 1 + ((size_t)next(s) << 12 | (size_t)next(s) << 4));
    else
        H5Tset_size(t, H5T_VARIABLE);
    return t;
}

/* A shape: (b % 4) scalar, up to 7 elements, up to 255, or 2-D up to 4 x 4; with huge (a
 * dataset's), a dimension may instead be up to 2^49 (flagged by its top bit). */
static hid_t pick_space(script *s, int huge, int *is_huge) {
    const unsigned b = next(s) % 4;
    hsize_t dims[2] = {0, 0};
    *is_huge = 0;
    if (b == 0)
        return H5Screate(H5S_SCALAR);
    const int rank = b == 3 ? 2 : 1;
    for (int d = 0; d < rank; d++) {
        const unsigned v = next(s);
        if (huge && (v & 0x80)) {
            dims[d] = (hsize_t)1 << (20 + v % 30);
            *is_huge = 1;
        } else {
            dims[d] = b == 1 ? v % 8 : b == 2 ? v : v % 5;
        }
    }
    return H5Screate_simple(rank, dims, NULL);
}

/* Bytes for npoints values of type t from the script; for variable-length strings, pointers
 * to strings made of them. NULL when too large. Free with free_values. */
static void *values(script *s, hid_t t, hssize_t npoints, char ***strs) {
    *strs = NULL;
    if (npoints < 0 || npoints > 4096)
        return NULL;
    if (H5Tis_variable_str(t) > 0) {
        char **p = calloc((size_t)npoints + 1, sizeof *p);
        for (hssize_t i = 0; p && i < npoints; i++) {
            p[i] = calloc(1, 33);
            if (p[i])
                take(s, p[i], next(s) % 33);
        }
        *strs = p;
        return p;
    }
    const size_t bytes = (size_t)npoints * H5Tget_size(t);
    if (bytes > MAX_BYTES)
        return NULL;
    void *buf = malloc(bytes ? bytes : 1);
    if (buf)
        take(s, buf, bytes);
    return buf;
}

static void free_values(void *buf, char **strs) {
    for (size_t i = 0; strs && strs[i]; i++)
        free(strs[i]);
    free(buf);
}

static const item *pick(script *s, const item *items, int n) {
    return n ? &items[next(s) % (unsigned)n] : NULL;
}

/* Overwrites the value of attribute a (type and shape kept). */
static void edit_attr_bytes(hid_t file, const item *a, script *s) {
    hid_t o = H5Oopen(file, a->obj, H5P_DEFAULT);
    hid_t at = o < 0 ? -1 : H5Aopen(o, a->name, H5P_DEFAULT);
    if (at >= 0) {
        hid_t t = H5Aget_type(at), sp = H5Aget_space(at);
        char **strs;
        void *buf = values(s, t, H5Sget_simple_extent_npoints(sp), &strs);
        if (buf)
            H5Awrite(at, t, buf);
        free_values(buf, strs);
        H5Sclose(sp);
        H5Tclose(t);
        H5Aclose(at);
    }
    if (o >= 0)
        H5Oclose(o);
}

/* Attribute name of object obj, (re)made with a type and shape from the script. */
static void edit_attr_make(hid_t file, const char *obj, const char *name, script *s) {
    hid_t o = H5Oopen(file, obj, H5P_DEFAULT);
    if (o < 0)
        return;
    if (H5Aexists(o, name) > 0)
        H5Adelete(o, name);
    int huge;
    hid_t t = pick_type(s), sp = pick_space(s, 0, &huge);
    hid_t at = H5Acreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (at >= 0) {
        char **strs;
        void *buf = values(s, t, H5Sget_simple_extent_npoints(sp), &strs);
        if (buf)
            H5Awrite(at, t, buf);
        free_values(buf, strs);
        H5Aclose(at);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Oclose(o);
}

/* Overwrites dataset path's data, or its first rows when it is large. */
static void edit_dataset_bytes(hid_t file, const char *dpath, script *s) {
    hid_t d = H5Dopen2(file, dpath, H5P_DEFAULT);
    if (d < 0)
        return;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    hsize_t dims[8] = {0}, count[8], start[8] = {0};
    const int rank = H5Sget_simple_extent_ndims(sp);
    if (rank >= 0 && rank <= 8 && H5Sget_simple_extent_dims(sp, dims, NULL) >= 0 &&
        H5Tis_variable_str(t) == 0) {
        hsize_t row = 1; /* points in one index of dimension 0 */
        for (int i = 0; i < rank; i++) {
            count[i] = dims[i];
            row *= i ? dims[i] : 1;
        }
        if (rank > 0 && row > 0 && count[0] * row > 4096)
            count[0] = 4096 / row > 0 ? 4096 / row : 1;
        hid_t mem = rank > 0 ? H5Screate_simple(rank, count, NULL) : H5Screate(H5S_SCALAR);
        if (rank > 0)
            H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
        char **strs;
        void *buf = values(s, t, H5Sget_select_npoints(sp), &strs);
        if (buf)
            H5Dwrite(d, t, mem, sp, H5P_DEFAULT, buf);
        free_values(buf, strs);
        H5Sclose(mem);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
}

/* Dataset dpath (re)made with a type and shape from the script; huge ones stay unwritten. */
static void edit_dataset_make(hid_t file, const char *dpath, script *s, int bytes_only) {
    if (H5Lexists(file, dpath, H5P_DEFAULT) > 0)
        H5Ldelete(file, dpath, H5P_DEFAULT);
    int huge = 0;
    hid_t t = bytes_only ? H5Tcopy(H5T_STD_U8LE) : pick_type(s);
    hid_t sp = bytes_only ? -1 : pick_space(s, 1, &huge);
    if (bytes_only) {
        const hsize_t n = next(s) % 16;
        sp = H5Screate_simple(1, &n, NULL);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t dims[2] = {0, 0}, chunk[2];
    const int rank = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    int chunked = huge;
    for (int i = 0; i < rank; i++) {
        chunk[i] = dims[i] < 1024 ? dims[i] : 1024;
        chunked &= chunk[i] > 0;
    }
    if (chunked)
        H5Pset_chunk(dcpl, rank, chunk);
    hid_t d = huge && !chunked ? -1 : H5Dcreate2(file, dpath, t, sp, lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0 && !huge) {
        char **strs;
        void *buf = values(s, t, H5Sget_simple_extent_npoints(sp), &strs);
        if (buf)
            H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free_values(buf, strs);
    }
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(sp);
    H5Tclose(t);
}

/* The template's file at path, changed by the script's edits. */
static void write_edited(const tmpl *t, script *s) {
    fz_write(path, t->bytes, t->len);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    fz_check(file >= 0, "cannot open the template for writing");
    for (int e = 0; e < MAX_EDITS && s->pos < s->n; e++) {
        const unsigned op = next(s) % 7;
        const item *a = op <= 2 ? pick(s, t->attrs, t->nattrs) : NULL;
        const item *d = NULL;
        if (op == 3 || op == 4)
            d = t->ndatasets ? &t->objs[t->datasets[next(s) % (unsigned)t->ndatasets]] : NULL;
        switch (op) {
        case 0:
            if (a)
                edit_attr_bytes(file, a, s);
            break;
        case 1: {
            const item *o = pick(s, t->objs, t->nobjs);
            const unsigned k = next(s) % (unsigned)(t->nattrs + NEXTRA_NAMES);
            const char *name =
                k < (unsigned)t->nattrs ? t->attrs[k].name : extra_names[k - (unsigned)t->nattrs];
            if (o)
                edit_attr_make(file, o->obj, name, s);
            break;
        }
        case 2:
            if (a) {
                hid_t o = H5Oopen(file, a->obj, H5P_DEFAULT);
                if (o >= 0) {
                    H5Adelete(o, a->name);
                    H5Oclose(o);
                }
            }
            break;
        case 3:
            if (d)
                edit_dataset_bytes(file, d->obj, s);
            break;
        case 4:
            if (d)
                edit_dataset_make(file, d->obj, s, 0);
            break;
        case 5: {
            const item *o = pick(s, t->objs, t->nobjs);
            if (o && strcmp(o->obj, "/") != 0 && H5Lexists(file, o->obj, H5P_DEFAULT) > 0)
                H5Ldelete(file, o->obj, H5P_DEFAULT);
            break;
        }
        default: {
            const unsigned k = next(s) % (unsigned)(t->nobjs + NEXTRA_PATHS);
            const char *p =
                k < (unsigned)t->nobjs ? t->objs[k].obj : extra_paths[k - (unsigned)t->nobjs];
            if (strcmp(p, "/") == 0)
                break;
            if (next(s) % 2 == 0) {
                if (H5Lexists(file, p, H5P_DEFAULT) > 0)
                    H5Ldelete(file, p, H5P_DEFAULT);
                hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
                H5Pset_create_intermediate_group(lcpl, 1);
                hid_t g = H5Gcreate2(file, p, lcpl, H5P_DEFAULT, H5P_DEFAULT);
                if (g >= 0)
                    H5Gclose(g);
                H5Pclose(lcpl);
            } else {
                edit_dataset_make(file, p, s, 1);
            }
        }
        }
    }
    fz_check(H5Fget_obj_count(file, H5F_OBJ_ALL) == 1, "the harness left %zd objects open",
             H5Fget_obj_count(file, H5F_OBJ_ALL) - 1);
    fz_check(H5Fclose(file) >= 0, "cannot close the edited template");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the edits fail often; quietly */
    const char *dir = fz_dir("ckpt");
    snprintf(path, sizeof path, "%s/input.h5", dir);
    devnull = fopen("/dev/null", "w");
    fz_check(devnull != NULL, "cannot open /dev/null");
    for (int k = 0; k < NTEMPLATES; k++)
        make_template(k, dir);
    if (getenv("FUZZ_CKPT_TABLES")) /* for writing scripts by hand */
        for (int k = 0; k < NTEMPLATES; k++) {
            const tmpl *t = &templates[k];
            for (int i = 0; i < t->nobjs; i++)
                fprintf(stderr, "template %d object %d: %s%s\n", k, i, t->objs[i].obj,
                        t->objs[i].dataset ? " (dataset)" : "");
            for (int i = 0; i < t->ndatasets; i++)
                fprintf(stderr, "template %d dataset %d: %s\n", k, i, t->objs[t->datasets[i]].obj);
            for (int i = 0; i < t->nattrs; i++)
                fprintf(stderr, "template %d attribute %d: %s @%s\n", k, i, t->attrs[i].obj,
                        t->attrs[i].name);
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 2 && data[0] == 'E') {
        script s = {data, size, 2};
        write_edited(&templates[data[1] % NTEMPLATES], &s);
    } else {
        fz_write(path, data, size);
    }
    read_and_check();
    return 0;
}
