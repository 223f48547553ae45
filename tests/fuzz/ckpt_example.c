/* ckpt_example.c: example checkpoints and their hollow copies (ckpt_example.h). */
#include "tests/fuzz/ckpt_example.h"

#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fz_ckpt_write_example(const char *path, const char *model, eng_optim_kind kind,
                          eng_optim_kind kind2, const char *vocab, char *err, size_t errlen) {
    eng_model m;
    const eng_model_def *def = eng_model_find(model);
    if (!def) {
        snprintf(err, errlen, "no model %s", model);
        return -1;
    }
    if (eng_model_build(&m, def, err, errlen) != PST_OK)
        return -1;
    eng_ckpt c;
    eng_ckpt_init(&c, &m);
    c.weights = pst_alloc(sizeof(float) * c.total);
    for (uint64_t i = 0; i < c.total; i++)
        c.weights[i] = 0.001f * (float)(i % 17);
    for (int p = 0; p < c.nparts; p++) {
        eng_ckpt_part *part = &c.parts[p];
        part->optim = eng_optim_defaults(p ? kind2 : kind);
        part->nslots = eng_optim_nslots(part->optim.kind);
        for (int s = 0; s < part->nslots; s++)
            part->slots[s] = pst_alloc(sizeof(float) * part->total);
        part->nruns = 2; /* two update counts in each part */
        part->runs = pst_alloc(2 * sizeof *part->runs);
        part->runs[0] = (eng_ckpt_iters){0, part->total / 2, 7};
        part->runs[1] = (eng_ckpt_iters){part->total / 2, part->total - part->total / 2, 6};
    }
    if (vocab) {
        c.vocab = pst_strdup(vocab);
        c.vocab_bytes = strlen(vocab);
    }
    /* a run's record, as worker/ckpt/record.c writes it (in its order) */
    eng_ckpt_meta *meta = &c.meta;
    eng_ckpt_meta_put(meta, "step", ENG_META_I64)->i64 = 7;
    eng_ckpt_meta_put(meta, "epoch", ENG_META_I64)->i64 = 1;
    eng_ckpt_meta_put(meta, "epoch_step", ENG_META_I64)->i64 = 7;
    snprintf(eng_ckpt_meta_put(meta, "mode", ENG_META_STR)->str, ENG_CKPT_META_NAME, "sync");
    eng_ckpt_meta_put(meta, "staleness", ENG_META_I32)->i32 = 0;
    eng_ckpt_meta_put(meta, "batch", ENG_META_I32)->i32 = 16;
    eng_ckpt_meta_put(meta, "seed", ENG_META_I64)->i64 = 42;
    eng_ckpt_meta_put(meta, "servers", ENG_META_I32)->i32 = 1;
    eng_ckpt_meta_put(meta, "workers", ENG_META_I32)->i32 = 2;
    eng_ckpt_meta_put(meta, "val_split", ENG_META_F64)->f64 = 0.1;
    eng_ckpt_meta_put(meta, "epochs", ENG_META_I64)->i64 = 2;
    const int64_t steps[2] = {7, 7};
    eng_ckpt_meta_put_array(meta, "workers/steps", steps, 2);
    const int rc = eng_ckpt_write(path, &c, &m, err, errlen) == PST_OK ? 0 : -1;
    eng_ckpt_free(&c);
    return rc;
}

/* --- the hollow copy --- */

static herr_t copy_attr(hid_t src, const char *name, const H5A_info_t *info, void *op) {
    (void)info;
    const hid_t dst = *(const hid_t *)op;
    hid_t a = H5Aopen(src, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a), s = a < 0 ? -1 : H5Aget_space(a);
    const hsize_t n = a < 0 ? 0 : H5Aget_storage_size(a);
    void *buf = calloc(1, n ? n : 1);
    hid_t b = t < 0 || s < 0 ? -1 : H5Acreate2(dst, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    const int ok = buf && b >= 0 && H5Aread(a, t, buf) >= 0 && H5Awrite(b, t, buf) >= 0;
    free(buf);
    if (b >= 0)
        H5Aclose(b);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    return ok ? 0 : -1;
}

/* In creation order where the file tracks it (pstrain's files do), else by name. */
static int copy_attrs(hid_t src, hid_t dst) {
    hsize_t idx = 0;
    if (H5Aiterate2(src, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, copy_attr, &dst) >= 0)
        return 0;
    if (idx != 0)
        return -1;
    return H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr, &dst) < 0 ? -1 : 0;
}

/* A dataset with its type, shape and creation properties; its data only when small. */
static int copy_dataset(hid_t src, const char *name, hid_t dst) {
    hid_t d = H5Dopen2(src, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d), dcpl = H5Dget_create_plist(d);
    hid_t e = t < 0 || s < 0 || dcpl < 0
                  ? -1
                  : H5Dcreate2(dst, name, t, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    const hssize_t n = s < 0 ? -1 : H5Sget_simple_extent_npoints(s);
    const size_t bytes = n < 0 || t < 0 ? 0 : (size_t)n * H5Tget_size(t);
    int ok = e >= 0 && n >= 0;
    if (ok && bytes > 0 && bytes <= FZ_HOLLOW) {
        void *buf = malloc(bytes);
        ok = buf && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0 &&
             H5Dwrite(e, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
        free(buf);
    }
    ok = ok && copy_attrs(d, e) == 0;
    if (e >= 0)
        H5Dclose(e);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    H5Dclose(d);
    return ok ? 0 : -1;
}

static herr_t copy_link(hid_t src, const char *name, const H5L_info_t *info, void *op);

static int copy_group(hid_t src, hid_t dst) {
    if (copy_attrs(src, dst) != 0)
        return -1;
    hsize_t idx = 0;
    return H5Literate(src, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_link, &dst) < 0 ? -1 : 0;
}

static herr_t copy_link(hid_t src, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    const hid_t dst = *(const hid_t *)op;
    hid_t o = H5Oopen(src, name, H5P_DEFAULT);
    const H5I_type_t type = o < 0 ? H5I_BADID : H5Iget_type(o);
    if (o >= 0)
        H5Oclose(o);
    if (type == H5I_DATASET)
        return copy_dataset(src, name, dst);
    if (type != H5I_GROUP)
        return -1;
    hid_t gs = H5Gopen2(src, name, H5P_DEFAULT);
    hid_t gd = H5Gcreate2(dst, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const int rc = gs >= 0 && gd >= 0 ? copy_group(gs, gd) : -1;
    if (gd >= 0)
        H5Gclose(gd);
    if (gs >= 0)
        H5Gclose(gs);
    return rc;
}

int fz_h5_hollow_copy(const char *from, const char *to, int latest, char *err, size_t errlen) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (latest) {
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
        H5Pset_attr_creation_order(fcpl, H5P_CRT_ORDER_TRACKED);
    }
    hid_t src = H5Fopen(from, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dst = src < 0 ? -1 : H5Fcreate(to, H5F_ACC_TRUNC, fcpl, fapl);
    const int rc = dst >= 0 ? copy_group(src, dst) : -1;
    if (dst >= 0 && H5Fclose(dst) < 0)
        snprintf(err, errlen, "%s: cannot close", to);
    if (src >= 0)
        H5Fclose(src);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (rc != 0)
        snprintf(err, errlen, "%s: cannot copy %s", to, from);
    return rc;
}
