/* h5write.c: HDF5 plumbing (quiet errors, file access, one-line reasons, labels) and the
 * typed writer helpers with a sticky error, as in sqlite: the first failure is recorded with
 * what failed, later calls do nothing, and the caller checks once. */
#include "engine/ckpt/h5.h"

#include "engine/base/base.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The type in the file (little-endian, whatever the host) and in memory. */
hid_t ckpt_file_type(ckpt_type t) {
    switch (t) {
    case F_I32:
        return H5T_STD_I32LE;
    case F_I64:
        return H5T_STD_I64LE;
    case F_U64:
        return H5T_STD_U64LE;
    case F_F32:
        return H5T_IEEE_F32LE;
    case F_U8:
        return H5T_STD_U8LE;
    default:
        return H5T_IEEE_F64LE;
    }
}

hid_t ckpt_mem_type(ckpt_type t) {
    switch (t) {
    case F_I32:
        return H5T_NATIVE_INT32;
    case F_I64:
        return H5T_NATIVE_INT64;
    case F_U64:
        return H5T_NATIVE_UINT64;
    case F_F32:
        return H5T_NATIVE_FLOAT;
    case F_U8:
        return H5T_NATIVE_UINT8;
    default:
        return H5T_NATIVE_DOUBLE;
    }
}

const char *ckpt_type_name(ckpt_type t) {
    static const char *const names[] = {"int32",   "int64",  "uint64", "float32",
                                        "float64", "string", "uint8"};
    return names[t];
}

/* --- HDF5 plumbing --- */
/* --- HDF5 plumbing --- */

/* HDF5 prints its error stack to stderr by default; we report one line instead. */
void ckpt_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* File access. Writing (image > 0) builds the file in memory, HDF5's core driver growing by
 * image bytes, with format bounds (1.8, latest) so that object headers carry checksums.
 * Both: objects close with the file, and no file locks (files are written under a temporary
 * name and never changed after the rename, and locks fail on some network file systems). */
hid_t ckpt_h5_fapl(size_t image) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
    if ((image && (H5Pset_fapl_core(fapl, image, 0) < 0 ||
                   H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0)) ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || H5Pset_file_locking(fapl, 0, 1) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* H5Ewalk2 callback: walking upward, entry 0 is where the error was detected. */
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0 && e->desc)
        snprintf(data, CKPT_REASON_LEN, "%s", e->desc);
    return 0;
}

/* Why the last HDF5 call failed, into buf (CKPT_REASON_LEN bytes): the system's message where HDF5
 * quotes one ("error message = '...'"), else the innermost entry of its error stack. Call it before
 * any other HDF5 call, which would clear the stack. */
const char *ckpt_h5_reason(char *buf) {
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, buf);
    const char *q = strstr(buf, "error message = '");
    if (q) {
        q += strlen("error message = '");
        size_t len = strcspn(q, "'");
        memmove(buf, q, len);
        buf[len] = '\0';
    }
    if (!buf[0])
        snprintf(buf, CKPT_REASON_LEN, "HDF5 error");
    return buf;
}

/* "attribute step of /pstrain", "dataset /pstrain/optimizer/m" or "group /conv2d" (kind is
 * the first word) into buf (CKPT_LABEL_LEN bytes), for messages. */
void ckpt_label(char *buf, hid_t loc, const char *name, const char *kind) {
    char where[192];
    if (H5Iget_name(loc, where, sizeof where) <= 0)
        snprintf(where, sizeof where, "?");
    if (strcmp(kind, "attribute") == 0)
        snprintf(buf, CKPT_LABEL_LEN, "attribute %.63s of %.191s", name, where);
    else
        snprintf(buf, CKPT_LABEL_LEN, "%s %.191s%s%.63s", kind, where,
                 strcmp(where, "/") ? "/" : "", name);
}

/* A fixed-length, null-padded string type of size bytes: numpy's 'S', what Keras writes. */
static hid_t str_type(size_t size) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, size ? size : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Chunk dimensions of at most CKPT_CHUNK_BYTES: halve the outer dimensions first, so that a chunk
 * stays a contiguous block of rows. */
static void chunk_dims(int rank, const hsize_t *dims, size_t elem, hsize_t *chunk) {
    size_t bytes = elem;
    for (int d = 0; d < rank; d++) {
        chunk[d] = dims[d] ? dims[d] : 1;
        bytes *= chunk[d];
    }
    for (int d = 0; d < rank; d++)
        while (bytes > CKPT_CHUNK_BYTES && chunk[d] > 1) {
            bytes = bytes / chunk[d] * ((chunk[d] + 1) / 2);
            chunk[d] = (chunk[d] + 1) / 2;
        }
}

/* Records the first failure: what (kind and name of loc's object) and why (reason, or
 * HDF5's). */
void ckpt_w_fail(ckpt_writer *w, hid_t loc, const char *name, const char *kind,
                 const char *reason) {
    if (w->failed)
        return;
    char why[CKPT_REASON_LEN], lab[CKPT_LABEL_LEN];
    if (!reason)
        reason = ckpt_h5_reason(why);
    ckpt_label(lab, loc, name, kind);
    snprintf(w->what, sizeof w->what, "%s: %s", lab, reason);
    w->failed = 1;
}

/* A scalar (n < 0) or 1-D (n >= 0 elements) attribute name of loc. */
void ckpt_w_attr(ckpt_writer *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, long n,
                 const void *v) {
    if (w->failed)
        return;
    const hsize_t dim = n < 0 ? 0 : (hsize_t)n;
    hid_t space = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    hid_t a = space < 0 ? -1 : H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, v) < 0)
        ckpt_w_fail(w, loc, name, "attribute", NULL);
    if (a >= 0)
        H5Aclose(a);
    if (space >= 0)
        H5Sclose(space);
}

void ckpt_w_str_attr(ckpt_writer *w, hid_t loc, const char *name, const char *s) {
    if (w->failed)
        return;
    hid_t t = str_type(strlen(s));
    if (t < 0) {
        ckpt_w_fail(w, loc, name, "attribute", NULL);
        return;
    }
    ckpt_w_attr(w, loc, name, t, t, -1, s);
    H5Tclose(t);
}

void ckpt_w_vstr_attr(ckpt_writer *w, hid_t loc, const char *name, const char *s) {
    if (w->failed)
        return;
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        ckpt_w_fail(w, loc, name, "attribute", NULL);
        if (t >= 0)
            H5Tclose(t);
        return;
    }
    const char *v[1] = {s};
    ckpt_w_attr(w, loc, name, t, t, -1, v);
    H5Tclose(t);
}

/* Objects carry no timestamps (h5py's default for datasets): the same checkpoint gives the
 * same bytes. Returns the group's id, or -1 with the failure recorded. */
hid_t ckpt_w_group(ckpt_writer *w, hid_t loc, const char *name) {
    if (w->failed)
        return -1;
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), g = -1;
    if (gcpl >= 0 && H5Pset_obj_track_times(gcpl, 0) >= 0)
        g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0)
        ckpt_w_fail(w, loc, name, "group", NULL);
    if (gcpl >= 0)
        H5Pclose(gcpl);
    return g;
}

void ckpt_close_group(hid_t g) {
    if (g >= 0)
        H5Gclose(g);
}

void ckpt_w_dataset(ckpt_writer *w, hid_t loc, const char *path, hid_t ftype, hid_t mtype, int rank,
                    const hsize_t *dims, const void *data) {
    if (w->failed)
        return;
    /* Groups on the way first ("lstm_cell/kernel:0" inside /lstm/lstm), made as w_group makes
     * them (no timestamps), unless an earlier dataset made them. */
    char parent[CKPT_PATH_LEN];
    for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        if (!ckpt_path_exists(loc, parent))
            ckpt_close_group(ckpt_w_group(w, loc, parent));
    }
    if (w->failed)
        return;
    hsize_t chunk[ENG_MAX_DIMS];
    PST_ASSERT(rank >= 1 && rank <= ENG_MAX_DIMS, "rank %d", rank);
    chunk_dims(rank, dims, H5Tget_size(ftype), chunk);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
        H5Pset_fletcher32(dcpl) >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0)
        d = H5Dcreate2(loc, path, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        ckpt_w_fail(w, loc, path, "dataset", NULL);
    if (d >= 0)
        H5Dclose(d);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
}

/* s[0..n) as one 1-D array of fixed-length strings of the longest's size: an attribute, or
 * a dataset when dataset is set. */
void ckpt_w_strs(ckpt_writer *w, hid_t loc, const char *name, const char *const *s, int n,
                 int dataset) {
    if (w->failed)
        return;
    size_t size = 1;
    for (int i = 0; i < n; i++)
        if (strlen(s[i]) > size)
            size = strlen(s[i]);
    hid_t t = str_type(size);
    if (t < 0) {
        ckpt_w_fail(w, loc, name, dataset ? "dataset" : "attribute", NULL);
        return;
    }
    char *buf = pst_calloc(n > 0 ? (size_t)n : 1, size);
    for (int i = 0; i < n; i++)
        memcpy(buf + (size_t)i * size, s[i], strlen(s[i]));
    const hsize_t dim = (hsize_t)n;
    if (dataset)
        ckpt_w_dataset(w, loc, name, t, t, 1, &dim, buf);
    else
        ckpt_w_attr(w, loc, name, t, t, n, buf);
    H5Tclose(t);
    free(buf);
}
