/* write.c: the checkpoint file's format, written: Keras's layout at the root, pstrain's own
 * state under /pstrain (ckpt.h), built in memory by HDF5 and written out as one image. */
#include "engine/ckpt/format.h"

#include "engine/base/base.h"
#include "engine/ckpt/h5.h"
#include "engine/ckpt/keras.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KERAS_BACKEND ENG_KERAS_BACKEND
#define KERAS_VERSION ENG_KERAS_VERSION

/* What eng_ckpt_write checks before it creates anything. */
static int check_ckpt(const eng_ckpt *c, const eng_model *m, const char *path, char *err,
                      size_t errlen) {
    if (!memchr(c->model, '\0', sizeof c->model) || strcmp(c->model, m->def->name) != 0)
        return pst_err(err, errlen, PST_EARG, "%s: checkpoint of model '%.*s' given model %s", path,
                       (int)sizeof c->model, c->model, m->def->name);
    const uint64_t sum = eng_layout_checksum(&m->layout);
    if (c->layout_checksum != sum)
        return pst_err(
            err, errlen, PST_EARG, "%s: layout checksum 0x%016llx does not match %s's 0x%016llx",
            path, (unsigned long long)c->layout_checksum, m->def->name, (unsigned long long)sum);
    if (c->total != m->layout.total)
        return pst_err(err, errlen, PST_EARG, "%s: total %llu does not match %s's %zu floats", path,
                       (unsigned long long)c->total, m->def->name, m->layout.total);
    if (c->nparts != m->nparts)
        return pst_err(err, errlen, PST_EARG, "%s: %d parts, %s has %d", path, c->nparts,
                       m->def->name, m->nparts);
    int rc = PST_OK;
    if (!c->weights)
        return pst_err(err, errlen, PST_EARG, "%s: no weights", path);
    for (int p = 0; p < c->nparts; p++) {
        const eng_ckpt_part *part = &c->parts[p];
        const eng_part_info *want = &m->parts[p];
        char which[32];
        ckpt_optim_group(p, which, sizeof which);
        if (!memchr(part->name, '\0', sizeof part->name) || strcmp(part->name, want->name) != 0 ||
            part->offset != want->offset || part->total != want->total)
            return pst_err(err, errlen, PST_EARG,
                           "%s: part %d is '%.*s' at %llu with %llu floats, %s's is %s at %zu "
                           "with %zu",
                           path, p, (int)sizeof part->name, part->name,
                           (unsigned long long)part->offset, (unsigned long long)part->total,
                           m->def->name, want->name, want->offset, want->total);
        const eng_optim_cfg *o = &part->optim;
        if ((rc = ckpt_check_optim(o, which, path, PST_EARG, err, errlen)) != PST_OK)
            return rc;
        if (o->kind != ENG_OPT_ADAM && o->kind != ENG_OPT_RMSPROP)
            return pst_err(err, errlen, PST_EARG, "%s: %s kind %d unknown", path, which,
                           (int)o->kind);
        const int nslots = eng_optim_nslots(o->kind);
        if (part->nslots != nslots)
            return pst_err(err, errlen, PST_EARG, "%s: %s nslots %d, %s keeps %d", path, which,
                           part->nslots, eng_optim_kind_name(o->kind), nslots);
        for (int s = 0; s < nslots; s++)
            if (!part->slots[s])
                return pst_err(err, errlen, PST_EARG, "%s: %s slot %s missing", path, which,
                               ckpt_slot_name(o->kind, s));
        char where[96];
        snprintf(where, sizeof where, "%s part %s", path, want->name);
        if ((rc = ckpt_check_runs(part->runs, part->nruns, part->total, where, PST_EARG, err,
                                  errlen)) != PST_OK)
            return rc;
        /* The file keeps a moving average of the first of several parts only. */
        if (part->ema &&
            (p > 0 || c->nparts == 1 || !(part->ema_decay > 0.0 && part->ema_decay < 1.0)))
            return pst_err(err, errlen, PST_EARG, "%s: part %s: ema %s", path, want->name,
                           p > 0 || c->nparts == 1 ? "kept only for the first of several parts"
                                                   : "decay not in (0, 1)");
    }
    if ((rc = ckpt_check_values(c, m, path, PST_EARG, err, errlen)) != PST_OK)
        return rc;
    return ckpt_check_meta(&c->meta, path, err, errlen);
}

/* Keras's save_weights_to_hdf5_group for m's layers [l0, l0 + nl) into loc: @layer_names,
 * @backend and @keras_version, and a group per layer with its @weight_names and datasets.
 * Tensor t's values are weights[t->offset - lo, + count): lo is where weights starts in the
 * flat vector (a part's vector, or a moving average of it). */
void ckpt_write_keras_layers(ckpt_writer *w, hid_t loc, const eng_model *m, int l0, int nl,
                             const float *weights, size_t lo) {
    const char *layers[ENG_MAX_LAYERS] = {0};
    for (int i = 0; i < nl; i++)
        layers[i] = m->layers[l0 + i].name;
    ckpt_w_strs(w, loc, "layer_names", layers, nl, 0);
    ckpt_w_str_attr(w, loc, "backend", KERAS_BACKEND);
    ckpt_w_str_attr(w, loc, "keras_version", KERAS_VERSION);
    for (int i = 0; i < nl && !w->failed; i++) {
        ckpt_keras_layer kl;
        ckpt_keras_layer_of(m, layers[i], &kl);
        hid_t g = ckpt_w_group(w, loc, layers[i]);
        ckpt_w_strs(w, g, "weight_names", kl.wn, kl.n, 0);
        /* Keras's "conv2d/kernel:0" inside group /conv2d: dataset kernel:0 of /conv2d/conv2d. */
        hid_t sub = kl.n > 0 ? ckpt_w_group(w, g, layers[i]) : -1;
        for (int j = 0; j < kl.n; j++) {
            const eng_tensor_info *t = &m->layout.tensors[kl.idx[j]];
            PST_ASSERT(t->offset >= lo, "%s at %zu, weights from %zu", t->name, t->offset, lo);
            hsize_t dims[ENG_MAX_DIMS];
            ckpt_tensor_dims(t, dims);
            ckpt_w_dataset(w, sub, kl.names[j] + strlen(layers[i]) + 1, H5T_IEEE_F32LE,
                           H5T_NATIVE_FLOAT, t->ndim, dims, weights + (t->offset - lo));
        }
        ckpt_close_group(sub);
        ckpt_close_group(g);
    }
}

/* An optimizer as attributes of loc: its hyperparameters, then its kind. */
static void write_optim(ckpt_writer *w, hid_t loc, const eng_optim_cfg *o) {
    for (int i = 0; i < CKPT_NOPTIM_FIELDS; i++)
        ckpt_w_attr(w, loc, ckpt_optim_fields[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, -1,
                    (const char *)o + ckpt_optim_fields[i].offset);
    ckpt_w_str_attr(w, loc, "optimizer", eng_optim_kind_name(o->kind));
}

/* /pstrain: everything else a job needs to continue. */
static void write_pstrain(ckpt_writer *w, hid_t file, const eng_ckpt *c, const eng_model *m) {
    hid_t g = ckpt_w_group(w, file, "pstrain");
    ckpt_close_group(ckpt_w_group(w, g, "optimizer"));
    /* the meta's groups, each once, in the order of its arrays */
    const eng_ckpt_meta *meta = &c->meta;
    for (int i = 0; i < meta->narrays; i++) {
        char group[sizeof meta->arrays[i].name];
        snprintf(group, sizeof group, "%s", meta->arrays[i].name);
        *strchr(group, '/') = '\0'; /* check_meta: there is one */
        if (!ckpt_path_exists(g, group))
            ckpt_close_group(ckpt_w_group(w, g, group));
    }
    ckpt_close_group(ckpt_w_group(w, g, "layout"));
    const int32_t format = ENG_CKPT_FORMAT;
    ckpt_w_attr(w, g, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, -1, &format);
    ckpt_w_str_attr(w, g, "model", c->model);
    for (int i = 0; i < CKPT_NFIELDS; i++)
        ckpt_w_attr(w, g, ckpt_fields[i].name, ckpt_file_type(ckpt_fields[i].type),
                    ckpt_mem_type(ckpt_fields[i].type), -1,
                    (const char *)c + ckpt_fields[i].offset);
    for (int i = 0; i < meta->nattrs; i++) {
        const eng_meta_attr *a = &meta->attrs[i];
        if (a->type == ENG_META_I32)
            ckpt_w_attr(w, g, a->name, H5T_STD_I32LE, H5T_NATIVE_INT32, -1, &a->i32);
        else if (a->type == ENG_META_I64)
            ckpt_w_attr(w, g, a->name, H5T_STD_I64LE, H5T_NATIVE_INT64, -1, &a->i64);
        else if (a->type == ENG_META_F64)
            ckpt_w_attr(w, g, a->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, -1, &a->f64);
        else
            ckpt_w_str_attr(w, g, a->name, a->str);
    }
    const eng_ckpt_part *first = &c->parts[0];
    write_optim(w, g, &first->optim);
    /* Only models of several parts say where the second starts: files of one part stay as
     * they were. */
    if (c->nparts > 1)
        ckpt_w_attr(w, g, "split", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &c->parts[1].offset);
    for (int p = 0; p < c->nparts; p++) {
        const eng_ckpt_part *part = &c->parts[p];
        const hsize_t n = part->total;
        char group[32];
        ckpt_optim_group(p, group, sizeof group);
        hid_t og = p == 0 ? g : ckpt_w_group(w, g, group);
        if (p > 0)
            write_optim(w, og, &part->optim);
        for (int s = 0; s < part->nslots; s++) {
            char path[64];
            snprintf(path, sizeof path, "%s%s", p == 0 ? "optimizer/" : "",
                     ckpt_slot_name(part->optim.kind, s));
            ckpt_w_dataset(w, og, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n, part->slots[s]);
        }
        if (p > 0)
            ckpt_close_group(og);
    }
    if (c->nparts > 1 && first->ema) {
        const hsize_t n = first->total;
        ckpt_w_attr(w, g, "ema_decay", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, -1, &first->ema_decay);
        ckpt_w_dataset(w, g, "ema", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n, first->ema);
    }
    /* Every part's runs in one table, at their offsets in the whole vector. */
    int nruns = 0;
    for (int p = 0; p < c->nparts; p++)
        nruns += c->parts[p].nruns;
    int64_t *rows = pst_malloc(sizeof(int64_t) * 3 * (size_t)nruns);
    for (int p = 0, i = 0; p < c->nparts; p++)
        for (int r = 0; r < c->parts[p].nruns; r++, i++) {
            const eng_ckpt_iters *run = &c->parts[p].runs[r];
            rows[3 * i] = (int64_t)(run->lo + c->parts[p].offset);
            rows[3 * i + 1] = (int64_t)run->n;
            rows[3 * i + 2] = run->iterations;
        }
    const hsize_t rdims[2] = {(hsize_t)nruns, 3};
    ckpt_w_dataset(w, g, "optimizer/iterations", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, rdims, rows);
    free(rows);
    for (int i = 0; i < meta->narrays; i++) {
        const hsize_t n = meta->arrays[i].n;
        ckpt_w_dataset(w, g, meta->arrays[i].name, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &n,
                       meta->arrays[i].v);
    }
    if (c->vocab_bytes > 0) {
        const hsize_t nv = (hsize_t)c->vocab_bytes;
        ckpt_w_dataset(w, g, "vocab", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, &nv, c->vocab);
    }

    const eng_layout *lay = &m->layout;
    const char *names[ENG_MAX_TENSORS];
    uint64_t offsets[ENG_MAX_TENSORS], counts[ENG_MAX_TENSORS];
    for (int i = 0; i < lay->n; i++) {
        names[i] = lay->tensors[i].name;
        offsets[i] = lay->tensors[i].offset;
        counts[i] = lay->tensors[i].count;
    }
    const hsize_t nt = (hsize_t)lay->n;
    ckpt_w_strs(w, g, "layout/names", names, lay->n, 1);
    ckpt_w_dataset(w, g, "layout/offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &nt, offsets);
    ckpt_w_dataset(w, g, "layout/counts", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &nt, counts);
    ckpt_close_group(g);
}

int ckpt_build_image(const char *path, size_t guess, ckpt_fill fill, const void *arg, void **image,
                     size_t *len, char *err, size_t errlen) {
    *image = NULL;
    ckpt_h5_quiet();
    hid_t fapl = ckpt_h5_fapl(guess), fcpl = H5Pcreate(H5P_FILE_CREATE), file = -1;
    if (fapl >= 0 && fcpl >= 0 && H5Pset_obj_track_times(fcpl, 0) >= 0) /* the root group's */
        file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (file < 0) {
        char why[CKPT_REASON_LEN];
        ckpt_h5_reason(why);
        if (fapl >= 0)
            H5Pclose(fapl);
        return pst_err(err, errlen, PST_EIO, "%s: cannot create in memory: %s", path, why);
    }
    ckpt_writer w = {0};
    fill(&w, file, arg);
    /* The flush puts everything HDF5 still caches into the image. */
    const ssize_t n =
        w.failed || H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(file, NULL, 0);
    if (!w.failed &&
        (n <= 0 || H5Fget_file_image(file, *image = pst_malloc((size_t)n), (size_t)n) != n ||
         ckpt_fix_superblock(*image, (size_t)n) != 0)) {
        char why[CKPT_REASON_LEN];
        snprintf(w.what, sizeof w.what, "file image: %s", ckpt_h5_reason(why));
        w.failed = 1;
    }
    H5Fclose(file);
    H5Pclose(fapl);
    if (w.failed) {
        free(*image);
        *image = NULL;
        return pst_err(err, errlen, PST_EIO, "%s: cannot build %s", path, w.what);
    }
    *len = (size_t)n;
    return PST_OK;
}

/* What ckpt_build_image puts in a checkpoint's file. */
typedef struct ckpt_args {
    const eng_ckpt *c;
    const eng_model *m;
} ckpt_args;

static void fill_ckpt(ckpt_writer *w, hid_t file, const void *arg) {
    const ckpt_args *a = arg;
    ckpt_write_keras_layers(w, file, a->m, 0, a->m->n, a->c->weights, 0);
    write_pstrain(w, file, a->c, a->m);
}

/* eng_ckpt_write, fsyncing the file when sync. HDF5 builds the file in memory and we write it:
 * a failed write (a full disk) is then one error we report, where HDF5 1.10 writing to disk
 * itself leaves a file it can neither close nor forget. It costs the file's size in memory,
 * twice at the peak. */
int ckpt_write_file(const char *path, const eng_ckpt *c, const eng_model *m, int sync, char *err,
                    size_t errlen) {
    int rc = check_ckpt(c, m, path, err, errlen);
    if (rc != PST_OK)
        return rc;
    void *image;
    size_t len;
    /* Room for the data and the metadata at once: the core driver then never reallocates. */
    uint64_t floats = c->total;
    for (int p = 0; p < c->nparts; p++)
        floats += c->parts[p].total * (uint64_t)(c->parts[p].nslots + !!c->parts[p].ema);
    const size_t guess = sizeof(float) * floats + ((size_t)1 << 20);
    const ckpt_args args = {c, m};
    if ((rc = ckpt_build_image(path, guess, fill_ckpt, &args, &image, &len, err, errlen)) != PST_OK)
        return rc;
    rc = ckpt_write_bytes(path, image, len, sync, err, errlen);
    free(image);
    return rc;
}

int eng_ckpt_write(const char *path, const eng_ckpt *c, const eng_model *m, char *err,
                   size_t errlen) {
    return ckpt_write_file(path, c, m, 0, err, errlen);
}
