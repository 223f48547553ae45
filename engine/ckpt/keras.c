/* keras.c: Keras 2 full-model files written from a checkpoint, and the weights of Keras
 * files read into a model (keras.h). The JSON is keras_config.c's; the weights go through
 * write.c's own Keras writer, as our checkpoints' root. */
#include "engine/ckpt/keras.h"

#include "engine/base/base.h"
#include "engine/base/file.h"
#include "engine/ckpt/format.h"
#include "engine/ckpt/h5.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What a full-model file holds: the part's layers [l0, l0 + nl) of m, their weights and JSON. */
typedef struct keras_file {
    const eng_model *m;
    int l0, nl;
    const float *weights; /* tensor t at weights + (t->offset - lo) */
    size_t lo;
    const char *model_config, *training_config;
} keras_file;

/* save_model_to_hdf5: model_metadata's items at the root in its order (str values as h5py
 * writes a str, the JSON as bytes), then model_weights/. */
static void fill_keras(ckpt_writer *w, hid_t file, const void *arg) {
    const keras_file *k = arg;
    ckpt_w_vstr_attr(w, file, "keras_version", ENG_KERAS_VERSION);
    ckpt_w_vstr_attr(w, file, "backend", ENG_KERAS_BACKEND);
    ckpt_w_str_attr(w, file, "model_config", k->model_config);
    ckpt_w_str_attr(w, file, "training_config", k->training_config);
    hid_t g = ckpt_w_group(w, file, "model_weights");
    ckpt_write_keras_layers(w, g, k->m, k->l0, k->nl, k->weights, k->lo);
    /* save_weights_to_hdf5_group ends with the model's own weights: a Sequential has none */
    hid_t top = ckpt_w_group(w, g, "top_level_model_weights");
    ckpt_w_strs(w, top, "weight_names", NULL, 0, 0);
    ckpt_close_group(top);
    ckpt_close_group(g);
}

int eng_keras_save(const char *path, const eng_ckpt *c, const eng_model *m, int p, int ema,
                   char *err, size_t errlen) {
    PST_ASSERT(p >= 0 && p < m->nparts && c->nparts == m->nparts, "part %d of %d (file: %d)", p,
               m->nparts, c->nparts);
    const eng_ckpt_part *part = &c->parts[p];
    if (ema && !part->ema)
        return pst_err(err, errlen, PST_EARG, "%s: the checkpoint keeps no moving average of %s",
                       path, part->name);
    /* the part's layers: those whose tensors lie in its range (a GAN's parts are consecutive) */
    int l0 = 0;
    for (int q = 0; q < p; q++)
        l0 += m->nparts == 1 ? m->n : m->parts[q].def->nlayers;
    const int nl = m->nparts == 1 ? m->n : m->parts[p].def->nlayers;
    char name[32];
    if (p == 0)
        snprintf(name, sizeof name, "sequential");
    else /* a second Sequential in one Keras session: sequential_1 */
        snprintf(name, sizeof name, "sequential_%d", p);
    const int gan = m->nparts > 1;
    char *mc = eng_keras_model_config(m, l0, nl, name, gan, err, errlen);
    if (!mc)
        return PST_EARG;
    char *tc = eng_keras_training_config(m, l0, nl, &part->optim, gan);
    const keras_file k = {.m = m,
                          .l0 = l0,
                          .nl = nl,
                          .weights = ema ? part->ema : c->weights + part->offset,
                          .lo = part->offset,
                          .model_config = mc,
                          .training_config = tc};
    void *image = NULL;
    size_t len = 0;
    const size_t guess = sizeof(float) * part->total + strlen(mc) + ((size_t)1 << 20);
    int rc = ckpt_build_image(path, guess, fill_keras, &k, &image, &len, err, errlen);
    if (rc == PST_OK)
        rc = ckpt_write_bytes(path, image, len, 0, err, errlen);
    free(image);
    free(mc);
    free(tc);
    return rc;
}

int eng_keras_weighted_layers(const eng_model *m) {
    int n = 0;
    for (int i = 0; i < m->n; i++)
        n += m->layers[i].nparams > 0;
    return n;
}

const char *eng_keras_weighted_layer(const eng_model *m, int k) {
    for (int i = 0; i < m->n; i++)
        if (m->layers[i].nparams > 0 && k-- == 0)
            return m->layers[i].name;
    return NULL;
}

/* --- reading ------------------------------------------------------------------------------ */

#define NAME_LEN 256 /* the longest layer or weight name read */

/* A 1-D attribute of fixed-length strings (numpy 'S', as Keras writes them) name of loc, or a
 * missing one as none: into *names (n x NAME_LEN bytes, malloc'ed), *n of them. An empty
 * attribute of any type (Keras writes np.asarray([]) for a layer without weights) is none. */
static void read_names(ckpt_reader *r, hid_t loc, const char *name, char **names, int *n) {
    *names = NULL;
    *n = 0;
    char lab[CKPT_LABEL_LEN];
    hid_t a = ckpt_r_open_attr(r, loc, name, lab);
    if (a < 0)
        return;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a), mt = -1;
    const hssize_t count = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    const int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    if (t < 0 || count < 0 || rank > 1) {
        ckpt_r_fail(r, PST_EFORMAT, "%s: expected a list of names", lab);
    } else if (count > 0 && (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0 ||
                             H5Tget_size(t) >= NAME_LEN || count > ENG_MAX_LAYERS * 8)) {
        ckpt_r_fail(r, PST_EFORMAT,
                    "%s: expected at most %d fixed-length names (as Keras writes them) of under "
                    "%d bytes",
                    lab, ENG_MAX_LAYERS * 8, NAME_LEN);
    } else if (count > 0) {
        const size_t size = H5Tget_size(t);
        char *raw = pst_calloc((size_t)count, size + 1);
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, size) < 0 || H5Tset_strpad(mt, H5T_STR_NULLPAD) < 0 ||
            H5Aread(a, mt, raw) < 0) {
            ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
        } else {
            *names = pst_calloc((size_t)count, NAME_LEN);
            for (hssize_t i = 0; i < count; i++)
                memcpy(*names + i * NAME_LEN, raw + (size_t)i * size, size);
            *n = (int)count;
        }
        free(raw);
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    H5Aclose(a);
}

/* "(3, 3, 32, 64)" into out, as numpy writes a shape. */
static const char *shape_words(char *out, size_t len, int ndim, const hsize_t *dims) {
    size_t n = (size_t)snprintf(out, len, "(");
    for (int d = 0; d < ndim && n < len; d++)
        n += (size_t)snprintf(out + n, len - n, "%s%llu", d ? ", " : "",
                              (unsigned long long)dims[d]);
    if (n < len)
        snprintf(out + n, len - n, ndim == 1 ? ",)" : ")");
    return out;
}

/* The weights of the file's layer fname (group g) into m's layer `layer`'s tensors. */
static void read_layer(ckpt_reader *r, hid_t g, const char *fname, const eng_model *m,
                       const eng_layer *layer, float *params) {
    char *wn;
    int nw;
    read_names(r, g, "weight_names", &wn, &nw);
    if (r->rc != PST_OK)
        return;
    const int want = layer->nparams;
    const eng_tensor_info *ts = &m->layout.tensors[layer->tensor0];
    if (nw != want) {
        ckpt_r_fail(r, PST_EFORMAT, "layer %s: %d weights expected, found %d (file layer %s)",
                    layer->name, want, nw, fname);
        free(wn);
        return;
    }
    for (int j = 0; j < nw && r->rc == PST_OK; j++) {
        const eng_tensor_info *t = &ts[j];
        const char *what = t->name + strlen(layer->name) + 1; /* "kernel", "lstm_cell/bias" */
        const char *path = wn + (size_t)j * NAME_LEN;
        hsize_t want_dims[ENG_MAX_DIMS], got[H5S_MAX_RANK];
        ckpt_tensor_dims(t, want_dims);
        char wsh[96], gsh[96];
        if (!ckpt_path_exists(g, path)) {
            ckpt_r_fail(r, PST_EFORMAT, "layer %s: %s: dataset %s of file layer %s missing",
                        layer->name, what, path, fname);
            break;
        }
        hid_t d = H5Dopen2(g, path, H5P_DEFAULT);
        hid_t s = d >= 0 ? H5Dget_space(d) : -1, dt = d >= 0 ? H5Dget_type(d) : -1;
        const int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
        if (rank < 0 || dt < 0 || rank > H5S_MAX_RANK ||
            H5Sget_simple_extent_dims(s, got, NULL) < 0) {
            ckpt_r_fail(r, PST_EFORMAT, "layer %s: %s: dataset %s damaged (unreadable)",
                        layer->name, what, path);
        } else if (rank != t->ndim || memcmp(got, want_dims, sizeof(hsize_t) * (size_t)rank)) {
            ckpt_r_fail(r, PST_EFORMAT, "layer %s: %s shape %s expected, found %s", layer->name,
                        what, shape_words(wsh, sizeof wsh, t->ndim, want_dims),
                        shape_words(gsh, sizeof gsh, rank, got));
        } else if (H5Tget_class(dt) != H5T_FLOAT) {
            ckpt_r_fail(r, PST_EFORMAT, "layer %s: %s: expected floats in dataset %s", layer->name,
                        what, path);
        } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, params + t->offset) <
                   0) {
            ckpt_r_fail(r, PST_EFORMAT, "layer %s: %s: dataset %s damaged (unreadable)",
                        layer->name, what, path);
        } else {
            for (size_t i = 0; i < t->count; i++)
                if (!isfinite(params[t->offset + i])) {
                    ckpt_r_fail(r, PST_EFORMAT, "layer %s: %s element %zu is %g: expected finite",
                                layer->name, what, i, (double)params[t->offset + i]);
                    break;
                }
        }
        if (dt >= 0)
            H5Tclose(dt);
        if (s >= 0)
            H5Sclose(s);
        if (d >= 0)
            H5Dclose(d);
    }
    free(wn);
}

int eng_keras_load_weights(const char *path, const eng_model *m, int *next, float *params,
                           char *err, size_t errlen) {
    ckpt_h5_quiet();
    ckpt_reader r = {.path = path, .err = err, .errlen = errlen, .rc = PST_OK};
    /* Keras's own files have older superblocks than ours: no ckpt_check_head here. */
    struct stat st; /* a FIFO is refused before HDF5 could wait on it */
    int rc = pst_stat_regular(path, &st, err, errlen);
    if (rc != PST_OK)
        return rc;
    r.file_bytes = (uint64_t)st.st_size;
    hid_t fapl = ckpt_h5_fapl(0);
    hid_t file = fapl >= 0 ? H5Fopen(path, H5F_ACC_RDONLY, fapl) : -1;
    if (fapl >= 0)
        H5Pclose(fapl);
    if (file < 0)
        return pst_err(err, errlen, PST_EFORMAT, "%s: not an HDF5 file", path);
    /* a weights file has the layers at its root, a full-model file under model_weights/ */
    hid_t root = -1;
    if (H5Aexists(file, "layer_names") > 0)
        root = H5Gopen2(file, "/", H5P_DEFAULT);
    else if (ckpt_path_exists(file, "model_weights"))
        root = H5Gopen2(file, "model_weights", H5P_DEFAULT);
    if (root < 0 || H5Aexists(root, "layer_names") <= 0) {
        ckpt_r_fail(&r, PST_EFORMAT,
                    "not a Keras weights file (no root @layer_names) nor a full-model file (no "
                    "model_weights/@layer_names)");
    }
    char *names = NULL;
    int nnames = 0;
    read_names(&r, root, "layer_names", &names, &nnames);
    const int total = eng_keras_weighted_layers(m);
    for (int i = 0; i < nnames && r.rc == PST_OK; i++) {
        const char *fname = names + (size_t)i * NAME_LEN;
        if (!fname[0] || !ckpt_path_exists(root, fname)) {
            ckpt_r_fail(&r, PST_EFORMAT, "layer_names names %s, which is not in the file", fname);
            break;
        }
        hid_t g = H5Gopen2(root, fname, H5P_DEFAULT);
        char *wn = NULL;
        int nw = 0;
        read_names(&r, g, "weight_names", &wn, &nw);
        free(wn);
        /* load_weights_from_hdf5_group: layers without weights take no part */
        if (r.rc == PST_OK && nw > 0) {
            if (*next >= total) {
                ckpt_r_fail(&r, PST_EFORMAT,
                            "layer %s: more layers with weights than %s's %d (file layer %s)",
                            fname, m->def->name, total, fname);
            } else {
                const char *ours = eng_keras_weighted_layer(m, *next);
                const eng_layer *layer = NULL;
                for (int l = 0; l < m->n; l++)
                    if (strcmp(m->layers[l].name, ours) == 0)
                        layer = &m->layers[l];
                read_layer(&r, g, fname, m, layer, params);
                ++*next;
            }
        }
        if (g >= 0)
            H5Gclose(g);
    }
    free(names);
    if (root >= 0)
        H5Gclose(root);
    H5Fclose(file);
    return r.rc;
}
