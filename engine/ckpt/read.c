/* read.c: the checkpoint file's format, read and validated against the model it names:
 * all or nothing, one line naming the file and the problem. */
#include "engine/ckpt/format.h"

#include "engine/base/base.h"
#include "engine/base/file.h"
#include "engine/ckpt/h5.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The Keras part: layer_names and weight_names as the model has them, then the weights. */
static void read_keras(ckpt_reader *r, hid_t file, eng_ckpt *c, const eng_model *m) {
    const char *layers[ENG_MAX_LAYERS];
    for (int i = 0; i < m->n; i++)
        layers[i] = m->layers[i].name;
    ckpt_r_check_strs(r, file, "layer_names", 0, layers, m->n);
    for (int i = 0; i < m->n && r->rc == PST_OK; i++) {
        ckpt_keras_layer kl;
        ckpt_keras_layer_of(m, layers[i], &kl);
        if (!ckpt_path_exists(file, layers[i])) {
            ckpt_r_fail(r, PST_EFORMAT, "group /%s (a layer of %s): missing", layers[i], c->model);
            break;
        }
        hid_t g = H5Gopen2(file, layers[i], H5P_DEFAULT);
        if (g < 0) {
            ckpt_r_fail(r, PST_EFORMAT, "group /%s: damaged (unreadable)", layers[i]);
            break;
        }
        ckpt_r_check_strs(r, g, "weight_names", 0, kl.wn, kl.n);
        for (int j = 0; j < kl.n; j++) {
            const eng_tensor_info *t = &m->layout.tensors[kl.idx[j]];
            hsize_t dims[ENG_MAX_DIMS];
            ckpt_tensor_dims(t, dims);
            ckpt_r_dataset(r, g, kl.names[j], F_F32, t->ndim, dims, c->weights + t->offset);
        }
        H5Gclose(g);
    }
}

/* /pstrain/layout describes the flat vector to h5py users: it must be the model's. */
static void read_layout(ckpt_reader *r, hid_t g, const eng_model *m) {
    const eng_layout *lay = &m->layout;
    const char *names[ENG_MAX_TENSORS];
    for (int i = 0; i < lay->n; i++)
        names[i] = lay->tensors[i].name;
    ckpt_r_check_strs(r, g, "layout/names", 1, names, lay->n);
    uint64_t offsets[ENG_MAX_TENSORS], counts[ENG_MAX_TENSORS];
    const hsize_t nt = (hsize_t)lay->n;
    ckpt_r_dataset(r, g, "layout/offsets", F_U64, 1, &nt, offsets);
    ckpt_r_dataset(r, g, "layout/counts", F_U64, 1, &nt, counts);
    for (int i = 0; i < lay->n && r->rc == PST_OK; i++)
        if (offsets[i] != lay->tensors[i].offset || counts[i] != lay->tensors[i].count)
            ckpt_r_fail(
                r, PST_EFORMAT,
                "/pstrain/layout: %s at offset %llu with %llu floats, %s has it at %zu with %zu",
                lay->tensors[i].name, (unsigned long long)offsets[i], (unsigned long long)counts[i],
                m->def->name, lay->tensors[i].offset, lay->tensors[i].count);
}

/* The slots of optimizer kind in group name of /pstrain ("optimizer", which also holds
 * iterations, or "optimizer_2"), n floats each, into slots[] and *nslots. The group holds those
 * and nothing else: a file whose slots are another optimizer's is refused rather than half
 * read. */
static void read_slots(ckpt_reader *r, hid_t g, const char *name, eng_optim_kind kind, uint64_t n,
                       float **slots, int *nslots) {
    if (r->rc != PST_OK)
        return;
    const char *kname = eng_optim_kind_name(kind);
    hid_t opt = ckpt_path_exists(g, name) ? H5Gopen2(g, name, H5P_DEFAULT) : -1;
    H5G_info_t info;
    if (opt < 0 || H5Gget_info(opt, &info) < 0) {
        ckpt_r_fail(r, PST_EFORMAT, "group /pstrain/%s: missing or damaged", name);
        if (opt >= 0)
            H5Gclose(opt);
        return;
    }
    const int iterations = strcmp(name, "optimizer") == 0;
    for (hsize_t i = 0; i < info.nlinks && r->rc == PST_OK; i++) {
        char link[64] = "";
        H5Lget_name_by_idx(opt, ".", H5_INDEX_NAME, H5_ITER_INC, i, link, sizeof link, H5P_DEFAULT);
        int known = iterations && strcmp(link, "iterations") == 0;
        for (int s = 0; s < eng_optim_nslots(kind); s++)
            known |= strcmp(link, ckpt_slot_name(kind, s)) == 0;
        char q[200];
        if (!known)
            ckpt_r_fail(r, PST_EFORMAT, "/pstrain/%s/%s is not a slot of %s (it keeps %s)", name,
                        eng_ckpt_quoted(q, sizeof q, link, strlen(link)), kname,
                        kind == ENG_OPT_ADAM ? "m and v" : "accumulator");
    }
    H5Gclose(opt);
    *nslots = eng_optim_nslots(kind);
    const hsize_t dim = n;
    for (int s = 0; s < *nslots && r->rc == PST_OK; s++) {
        char path[64];
        snprintf(path, sizeof path, "%s/%s", name, ckpt_slot_name(kind, s));
        slots[s] = pst_alloc(sizeof(float) * n);
        ckpt_r_dataset(r, g, path, F_F32, 1, &dim, slots[s]);
    }
}

/* An optimizer's hyperparameters (float32 attributes of loc) into o. */
static void read_optim_fields(ckpt_reader *r, hid_t loc, eng_optim_cfg *o) {
    for (int i = 0; i < CKPT_NOPTIM_FIELDS; i++)
        ckpt_r_attr(r, loc, ckpt_optim_fields[i].name, F_F32,
                    (char *)o + ckpt_optim_fields[i].offset);
}

/* The string attribute optimizer of loc, parsed into o->kind. where starts the message that
 * refuses an unknown kind: "" for /pstrain, "/pstrain/optimizer_2: " for the second. */
static void read_optim_kind(ckpt_reader *r, hid_t loc, eng_optim_cfg *o, const char *where) {
    char kind[16] = "", q[80];
    ckpt_r_str_attr(r, loc, "optimizer", kind, sizeof kind);
    if (r->rc != PST_OK)
        return;
    const int k = eng_optim_kind_parse(kind);
    if (k < 0)
        ckpt_r_fail(r, PST_EFORMAT, "%soptimizer '%s' is not one pstrain knows (adam, rmsprop)",
                    where, eng_ckpt_quoted(q, sizeof q, kind, strlen(kind)));
    o->kind = k < 0 ? ENG_OPT_ADAM : (eng_optim_kind)k;
}

/* Part p >= 1's optimizer, /pstrain/optimizer_<p + 1> (its slots are read by read_slots). A
 * group for a part the model does not have must not be there: a file that half says it has
 * more parts is refused. */
static void read_part_optims(ckpt_reader *r, hid_t g, eng_ckpt *c, const eng_model *m) {
    char name[32], where[64];
    ckpt_optim_group(c->nparts, name, sizeof name);
    if (r->rc == PST_OK && ckpt_path_exists(g, name))
        ckpt_r_fail(r, PST_EFORMAT, "group /pstrain/%s: present, but %s has %d optimizer%s", name,
                    m->def->name, c->nparts, c->nparts == 1 ? " (no split)" : "s, one a part");
    for (int p = 1; p < c->nparts && r->rc == PST_OK; p++) {
        eng_ckpt_part *part = &c->parts[p];
        ckpt_optim_group(p, name, sizeof name);
        const int present = ckpt_path_exists(g, name);
        hid_t og = present ? H5Gopen2(g, name, H5P_DEFAULT) : -1;
        if (og < 0) {
            ckpt_r_fail(r, PST_EFORMAT,
                        "group /pstrain/%s: %s (%s keeps an optimizer for its %s, elements "
                        "%llu..%llu)",
                        name, present ? "damaged (unreadable)" : "missing", m->def->name,
                        part->name, (unsigned long long)part->offset,
                        (unsigned long long)(part->offset + part->total));
            return;
        }
        snprintf(where, sizeof where, "/pstrain/%s: ", name);
        read_optim_fields(r, og, &part->optim);
        read_optim_kind(r, og, &part->optim, where);
        if (r->rc == PST_OK)
            r->rc = ckpt_check_optim(&part->optim, name, r->path, PST_EFORMAT, r->err, r->errlen);
        H5Gclose(og);
    }
}

/* optimizer/iterations, (nruns, 3) rows of (lo, n, iterations) tiling [0, total), into each
 * part's runs, relative to the part (a run across a part's end is cut there). */
static void read_runs(ckpt_reader *r, hid_t g, eng_ckpt *c) {
    char lab[CKPT_LABEL_LEN];
    hsize_t dims[2];
    hid_t d = ckpt_r_open_dataset(r, g, "optimizer/iterations", 2, NULL, dims, lab);
    if (d < 0)
        return;
    H5Dclose(d);
    if (dims[1] != 3 || dims[0] < 1 || dims[0] > c->total || dims[0] > INT_MAX)
        ckpt_r_fail(r, PST_EFORMAT, "%s: shape (%llu, %llu), expected (n, 3) with 1 <= n <= %llu",
                    lab, (unsigned long long)dims[0], (unsigned long long)dims[1],
                    (unsigned long long)c->total);
    else if (!ckpt_fits(r, dims[0], 3 * sizeof(int64_t)))
        ckpt_r_too_big(r, lab, dims[0], 3 * sizeof(int64_t));
    if (r->rc != PST_OK)
        return;
    int64_t *rows = pst_malloc(sizeof(int64_t) * 3 * dims[0]);
    eng_ckpt_iters *all = pst_malloc(sizeof *all * dims[0]);
    ckpt_r_dataset(r, g, "optimizer/iterations", F_I64, 2, dims, rows);
    const int nruns = (int)dims[0];
    for (int i = 0; i < nruns && r->rc == PST_OK; i++) {
        /* Negative lo or n become huge here, which check_runs refuses. */
        all[i].lo = (uint64_t)rows[3 * i];
        all[i].n = (uint64_t)rows[3 * i + 1];
        all[i].iterations = rows[3 * i + 2];
    }
    if (r->rc == PST_OK)
        r->rc = ckpt_check_runs(all, nruns, c->total, r->path, PST_EFORMAT, r->err, r->errlen);
    for (int p = 0; p < c->nparts && r->rc == PST_OK; p++) {
        eng_ckpt_part *part = &c->parts[p];
        const uint64_t lo = part->offset, hi = part->offset + part->total;
        part->runs = pst_alloc(sizeof *part->runs * (size_t)nruns);
        for (int i = 0; i < nruns; i++) {
            const uint64_t a = all[i].lo > lo ? all[i].lo : lo;
            const uint64_t b = all[i].lo + all[i].n < hi ? all[i].lo + all[i].n : hi;
            if (a < b)
                part->runs[part->nruns++] = (eng_ckpt_iters){a - lo, b - a, all[i].iterations};
        }
    }
    free(all);
    free(rows);
}

/* /pstrain/ema and @ema_decay, both or neither, and only in a model of several parts: a
 * moving average of the first. */
static void read_ema(ckpt_reader *r, hid_t g, eng_ckpt *c) {
    if (r->rc != PST_OK)
        return;
    const htri_t has_decay = H5Aexists(g, "ema_decay");
    const int has_ema = ckpt_path_exists(g, "ema");
    if (has_decay < 0 || (has_decay > 0) != has_ema) {
        ckpt_r_fail(r, PST_EFORMAT, "/pstrain: ema and @ema_decay go together, found %s",
                    has_ema ? "ema alone" : "@ema_decay alone");
        return;
    }
    if (!has_ema)
        return;
    if (c->nparts < 2) {
        ckpt_r_fail(r, PST_EFORMAT, "/pstrain/ema: only models in two parts keep one, not %s",
                    c->model);
        return;
    }
    eng_ckpt_part *first = &c->parts[0];
    ckpt_r_attr(r, g, "ema_decay", F_F64, &first->ema_decay);
    if (r->rc == PST_OK && !(first->ema_decay > 0.0 && first->ema_decay < 1.0))
        ckpt_r_fail(r, PST_EFORMAT, "/pstrain/@ema_decay is %g, expected in (0, 1)",
                    first->ema_decay);
    const hsize_t n = first->total;
    if (r->rc == PST_OK)
        first->ema = pst_alloc(sizeof(float) * first->total);
    ckpt_r_dataset(r, g, "ema", F_F32, 1, &n, first->ema);
}

/* /pstrain/vocab, when the model reads text: the tokenizer's words, one a line. */
static void read_vocab(ckpt_reader *r, hid_t g, eng_ckpt *c) {
    if (r->rc != PST_OK || !ckpt_path_exists(g, "vocab"))
        return;
    hid_t d = H5Dopen2(g, "vocab", H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t n = 0;
    const int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
                   H5Sget_simple_extent_dims(sp, &n, NULL) == 1 && n > 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    if (!ok) {
        ckpt_r_fail(r, PST_EFORMAT, "dataset /pstrain/vocab: expected a non-empty 1-D byte array");
        return;
    }
    if (!ckpt_fits(r, n, 1)) {
        ckpt_r_too_big(r, "dataset /pstrain/vocab", n, 1);
        return;
    }
    c->vocab = pst_alloc((size_t)n + 1);
    ckpt_r_dataset(r, g, "vocab", F_U8, 1, &n, c->vocab);
    c->vocab[n] = '\0';
    c->vocab_bytes = n;
}

/* Everything, into c (whose arrays the caller frees on failure) and m. */
static void read_ckpt(ckpt_reader *r, hid_t file, eng_ckpt *c, eng_model *m) {
    if (!ckpt_path_exists(file, "pstrain")) {
        ckpt_r_fail(r, PST_EFORMAT, "not a pstrain checkpoint (no /pstrain group)");
        return;
    }
    hid_t g = H5Gopen2(file, "pstrain", H5P_DEFAULT);
    if (g < 0) {
        ckpt_r_fail(r, PST_EFORMAT, "not a pstrain checkpoint (/pstrain is not a group)");
        return;
    }
    int32_t format = 0;
    ckpt_r_attr(r, g, "format_version", F_I32, &format);
    if (r->rc == PST_OK && format != ENG_CKPT_FORMAT)
        ckpt_r_fail(r, PST_EFORMAT, "format_version %d, this pstrain reads %d", format,
                    ENG_CKPT_FORMAT);
    ckpt_r_str_attr(r, g, "model", c->model, sizeof c->model);
    const eng_model_def *def = r->rc == PST_OK ? eng_model_find(c->model) : NULL;
    char q[300];
    if (r->rc == PST_OK && !def)
        ckpt_r_fail(r, PST_EFORMAT, "model '%s' is not one pstrain knows",
                    eng_ckpt_quoted(q, sizeof q, c->model, strlen(c->model)));
    char msg[256];
    if (r->rc == PST_OK && eng_model_build(m, def, msg, sizeof msg) != PST_OK)
        ckpt_r_fail(r, PST_EFORMAT, "%s", msg);
    if (r->rc == PST_OK)
        ckpt_set_parts(c, m);
    for (int i = 0; i < CKPT_NFIELDS; i++)
        ckpt_r_attr(r, g, ckpt_fields[i].name, ckpt_fields[i].type,
                    (char *)c + ckpt_fields[i].offset);
    ckpt_read_meta_attrs(r, g, &c->meta);
    read_optim_fields(r, g, &c->parts[0].optim);
    const uint64_t sum = r->rc == PST_OK ? eng_layout_checksum(&m->layout) : 0;
    if (r->rc == PST_OK && c->layout_checksum != sum)
        ckpt_r_fail(r, PST_EFORMAT, "layout checksum 0x%016llx does not match %s's 0x%016llx",
                    (unsigned long long)c->layout_checksum, m->def->name, (unsigned long long)sum);
    if (r->rc == PST_OK && c->total != m->layout.total)
        ckpt_r_fail(r, PST_EFORMAT, "total %llu does not match %s's %zu floats",
                    (unsigned long long)c->total, m->def->name, m->layout.total);
    /* Where the second part starts; absent in files of one part: 0, which must then be the
     * model's too. */
    const htri_t has_split = H5Aexists(g, "split"); /* < 0: r_attr says what is wrong */
    uint64_t split = 0;
    const uint64_t want = r->rc == PST_OK && m->nparts > 1 ? m->parts[1].offset : 0;
    if (r->rc == PST_OK && has_split != 0)
        ckpt_r_attr(r, g, "split", F_U64, &split);
    if (r->rc == PST_OK && split != want)
        ckpt_r_fail(r, PST_EFORMAT, "/pstrain/@split is %llu%s, expected %llu for %s",
                    (unsigned long long)split, has_split > 0 ? "" : " (absent)",
                    (unsigned long long)want, m->def->name);
    read_optim_kind(r, g, &c->parts[0].optim, "");
    if (r->rc == PST_OK)
        r->rc = ckpt_check_optim(&c->parts[0].optim, "optimizer", r->path, PST_EFORMAT, r->err,
                                 r->errlen);
    read_part_optims(r, g, c, m);
    if (r->rc != PST_OK)
        goto out;

    c->weights = pst_alloc(sizeof(float) * c->total); /* total is the model's: checked */
    read_keras(r, file, c, m);
    read_layout(r, g, m);
    for (int p = 0; p < c->nparts; p++) {
        char name[32];
        eng_ckpt_part *part = &c->parts[p];
        read_slots(r, g, ckpt_optim_group(p, name, sizeof name), part->optim.kind, part->total,
                   part->slots, &part->nslots);
    }
    read_ema(r, g, c);
    read_runs(r, g, c);
    ckpt_read_meta_arrays(r, g, &c->meta);
    read_vocab(r, g, c);
    /* shapes and sums say the file is whole; the values must also be ones training could
     * have produced, or the run goes on from garbage */
    if (r->rc == PST_OK)
        r->rc = ckpt_check_values(c, m, r->path, PST_EFORMAT, r->err, r->errlen);
out:
    H5Gclose(g);
}

/* Reads open file (name for messages, bytes long) into c and closes it: all or nothing. */
static int read_file(hid_t file, const char *name, uint64_t bytes, eng_ckpt *c, char *err,
                     size_t errlen) {
    ckpt_reader r = {name, err, errlen, PST_OK, bytes, NULL};
    eng_ckpt t;
    eng_model m;
    memset(&t, 0, sizeof t);
    read_ckpt(&r, file, &t, &m);
    if (H5Fclose(file) < 0)
        ckpt_r_fail(&r, PST_EIO, "cannot close");
    if (r.rc != PST_OK) {
        eng_ckpt_free(&t);
        return r.rc;
    }
    *c = t;
    return PST_OK;
}

/* path's stat into *st: PST_EIO when it cannot be read or is not a regular file (a FIFO would
 * block HDF5's open for ever), PST_EARG when it is a directory (a checkpoint directory is
 * resolved first, by its latest). */
static int stat_file(const char *path, struct stat *st, char *err, size_t errlen) {
    if (stat(path, st) != 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st->st_mode))
        return pst_err(err, errlen, PST_EARG,
                       "%s: is a directory, not a checkpoint file (its latest names one)", path);
    return pst_stat_regular(path, st, err, errlen);
}

int eng_ckpt_read(const char *path, eng_ckpt *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    struct stat st;
    const int found = stat_file(path, &st, err, errlen);
    if (found != PST_OK)
        return found;
    const int pre = ckpt_check_head(path, err, errlen);
    if (pre != PST_OK)
        return pre;
    ckpt_h5_quiet();
    hid_t fapl = ckpt_h5_fapl(0);
    hid_t file = fapl < 0 ? -1 : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (file < 0) {
        /* HDF5 finds its signature in a truncated file, then refuses it (end of file before
         * the end of its allocated space). */
        if (H5Fis_hdf5(path) > 0)
            return pst_err(err, errlen, PST_EFORMAT,
                           "%s: truncated or damaged HDF5 file (cannot open it)", path);
        return pst_err(err, errlen, PST_EFORMAT, "%s: not an HDF5 file or truncated", path);
    }
    return read_file(file, path, (uint64_t)st.st_size, c, err, errlen);
}

int eng_ckpt_read_image(const void *bytes, size_t len, const char *name, eng_ckpt *c, char *err,
                        size_t errlen) {
    memset(c, 0, sizeof *c);
    const int pre = ckpt_check_head_bytes(bytes, len, name, err, errlen);
    if (pre != PST_OK)
        return pre;
    ckpt_h5_quiet();
    /* The core driver reads the image from memory (HDF5 takes a copy of the bytes) under a
     * name no file can have: HDF5 1.10 refuses to open an image whose name exists as a file. */
    hid_t fapl = ckpt_h5_fapl(0), file = -1;
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 &&
        H5Pset_file_image(fapl, (void *)bytes, len) >= 0)
        file = H5Fopen("/dev/null/pstrain-checkpoint-image", H5F_ACC_RDONLY, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (file < 0)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: truncated or damaged HDF5 file (cannot open it)", name);
    return read_file(file, name, (uint64_t)len, c, err, errlen);
}

int eng_ckpt_load_bytes(const char *path, void **bytes, size_t *len, char *err, size_t errlen) {
    *bytes = NULL;
    *len = 0;
    struct stat st;
    const int found = stat_file(path, &st, err, errlen);
    if (found != PST_OK)
        return found;
    int rc;
    FILE *f = pst_fopen_regular(path, &rc, err, errlen);
    if (!f)
        return rc;
    char *buf = pst_malloc((size_t)st.st_size ? (size_t)st.st_size : 1);
    const size_t got = fread(buf, 1, (size_t)st.st_size, f);
    const int bad = ferror(f) || got != (size_t)st.st_size;
    fclose(f);
    if (bad) {
        free(buf);
        return pst_err(err, errlen, PST_EIO, "%s: cannot read %lld bytes", path,
                       (long long)st.st_size);
    }
    *bytes = buf;
    *len = got;
    return PST_OK;
}
