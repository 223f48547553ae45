/* meta.c: the checkpoint's meta, the attributes and int64 arrays of /pstrain the engine
 * does not know (a run's record): kept, checked, and read from a file by discovery. */
#include "engine/ckpt/format.h"

#include "engine/base/base.h"
#include "engine/ckpt/h5.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

/* A meta that can be written and read back as it is. */
int ckpt_check_meta(const eng_ckpt_meta *m, const char *path, char *err, size_t errlen) {
    for (int i = 0; i < m->nattrs; i++) {
        const eng_meta_attr *a = &m->attrs[i];
        if (!a->name[0] || !memchr(a->name, '\0', sizeof a->name) || ckpt_engine_attr(a->name) ||
            eng_ckpt_meta_get(m, a->name) != a)
            return pst_err(err, errlen, PST_EARG,
                           "%s: meta attribute %d: name '%.*s' not unique "
                           "or /pstrain's own",
                           path, i, (int)sizeof a->name, a->name);
        if (a->type == ENG_META_OTHER || (unsigned)a->type > ENG_META_OTHER ||
            (a->type == ENG_META_STR && !memchr(a->str, '\0', sizeof a->str)))
            return pst_err(err, errlen, PST_EARG, "%s: meta attribute %s: no value to write", path,
                           a->name);
    }
    for (int i = 0; i < m->narrays; i++) {
        const eng_meta_array *a = &m->arrays[i];
        const char *slash = memchr(a->name, '/', sizeof a->name);
        char group[sizeof a->name];
        snprintf(group, sizeof group, "%.*s", slash ? (int)(slash - a->name) : 0, a->name);
        if (!memchr(a->name, '\0', sizeof a->name) || !slash || slash == a->name ||
            strchr(slash + 1, '/') || !slash[1] || ckpt_engine_group(group) ||
            eng_ckpt_meta_get_array(m, a->name) != a || (a->n > 0 && !a->v))
            return pst_err(err, errlen, PST_EARG,
                           "%s: meta array %d: '%.*s' is not a unique <group>/<name> with values",
                           path, i, (int)sizeof a->name, a->name);
    }
    return PST_OK;
}

eng_meta_attr *eng_ckpt_meta_put(eng_ckpt_meta *m, const char *name, eng_meta_type type) {
    PST_ASSERT(strlen(name) < ENG_CKPT_META_NAME, "meta attribute name '%s' too long", name);
    eng_meta_attr *a = (eng_meta_attr *)eng_ckpt_meta_get(m, name);
    if (!a) {
        PST_ASSERT(m->nattrs < ENG_CKPT_META_ATTRS, "more than %d meta attributes",
                   ENG_CKPT_META_ATTRS);
        a = &m->attrs[m->nattrs++];
    }
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = type;
    return a;
}

void eng_ckpt_meta_put_array(eng_ckpt_meta *m, const char *name, const int64_t *v, uint64_t n) {
    PST_ASSERT(strlen(name) < 2 * ENG_CKPT_META_NAME, "meta array name '%s' too long", name);
    eng_meta_array *a = (eng_meta_array *)eng_ckpt_meta_get_array(m, name);
    if (!a) {
        PST_ASSERT(m->narrays < ENG_CKPT_META_ARRAYS, "more than %d meta arrays",
                   ENG_CKPT_META_ARRAYS);
        a = &m->arrays[m->narrays++];
    }
    pst_free(a->v);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->n = n;
    a->v = pst_alloc(sizeof(int64_t) * (n ? n : 1));
    if (n)
        memcpy(a->v, v, sizeof(int64_t) * n);
}

const eng_meta_attr *eng_ckpt_meta_get(const eng_ckpt_meta *m, const char *name) {
    for (int i = 0; i < m->nattrs; i++)
        if (strncmp(m->attrs[i].name, name, sizeof m->attrs[i].name) == 0)
            return &m->attrs[i];
    return NULL;
}

const eng_meta_array *eng_ckpt_meta_get_array(const eng_ckpt_meta *m, const char *name) {
    for (int i = 0; i < m->narrays; i++)
        if (strncmp(m->arrays[i].name, name, sizeof m->arrays[i].name) == 0)
            return &m->arrays[i];
    return NULL;
}

void eng_ckpt_meta_clear(eng_ckpt_meta *m) {
    for (int i = 0; i < m->narrays; i++)
        pst_free(m->arrays[i].v);
    memset(m, 0, sizeof *m);
}

/* H5Aiterate2 callback: attribute name of /pstrain into the meta, unless it is the engine's.
 * Scalars of the meta's types keep their value; anything else is kept as ENG_META_OTHER. */
static herr_t meta_attr(hid_t g, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    ckpt_reader *r = data;
    eng_ckpt_meta *m = r->meta;
    if (ckpt_engine_attr(name))
        return 0;
    char q[200];
    if (strlen(name) >= ENG_CKPT_META_NAME || m->nattrs == ENG_CKPT_META_ATTRS) {
        ckpt_r_fail(r, PST_EFORMAT, "attribute %s of /pstrain: %s",
                    eng_ckpt_quoted(q, 80, name, strlen(name)),
                    m->nattrs == ENG_CKPT_META_ATTRS ? "more attributes than pstrain keeps"
                                                     : "name longer than pstrain keeps");
        return -1;
    }
    eng_meta_attr *a = &m->attrs[m->nattrs++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = ENG_META_OTHER;
    /* The kind first (a scalar of one of the meta's types), then the value, read as the
     * engine's own attributes are: strings checked against the file's length. */
    static const struct {
        ckpt_type ft;
        eng_meta_type mt;
        size_t off;
    } kinds[] = {{F_I32, ENG_META_I32, offsetof(eng_meta_attr, i32)},
                 {F_I64, ENG_META_I64, offsetof(eng_meta_attr, i64)},
                 {F_F64, ENG_META_F64, offsetof(eng_meta_attr, f64)},
                 {F_STR, ENG_META_STR, offsetof(eng_meta_attr, str)}};
    int kind = -1;
    hid_t at = H5Aopen(g, name, H5P_DEFAULT);
    hid_t t = at < 0 ? -1 : H5Aget_type(at), s = at < 0 ? -1 : H5Aget_space(at);
    if (t >= 0 && s >= 0 && H5Sget_simple_extent_type(s) == H5S_SCALAR) {
        for (int k = 0; k < 3; k++)
            if (H5Tequal(t, ckpt_file_type(kinds[k].ft)) > 0)
                kind = k;
        if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0)
            kind = 3;
    }
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    if (at >= 0)
        H5Aclose(at);
    if (kind == 3)
        ckpt_r_str_attr(r, g, name, a->str, sizeof a->str);
    else if (kind >= 0)
        ckpt_r_attr(r, g, name, kinds[kind].ft, (char *)a + kinds[kind].off);
    if (kind >= 0)
        a->type = kinds[kind].mt;
    return r->rc == PST_OK ? 0 : -1;
}

/* The attributes of /pstrain the engine does not know, in the order of their names. */
void ckpt_read_meta_attrs(ckpt_reader *r, hid_t g, eng_ckpt_meta *m) {
    if (r->rc != PST_OK)
        return;
    r->meta = m;
    hsize_t idx = 0;
    if (H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, meta_attr, r) < 0)
        ckpt_r_fail(r, PST_EFORMAT, "attributes of /pstrain: damaged (unreadable)");
}

/* H5Literate callback: every int64 array in a group of /pstrain the engine does not know
 * (name) into the meta, its length checked against the file's before it is allocated. */
static herr_t meta_group(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    ckpt_reader *r = data;
    eng_ckpt_meta *m = r->meta;
    if (ckpt_engine_group(name))
        return 0;
    hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
    const int group = obj >= 0 && H5Iget_type(obj) == H5I_GROUP;
    H5G_info_t gi;
    if (!group || H5Gget_info(obj, &gi) < 0) {
        if (obj >= 0)
            H5Oclose(obj);
        return 0; /* a dataset (vocab, ema): the engine's */
    }
    for (hsize_t i = 0; i < gi.nlinks && r->rc == PST_OK; i++) {
        char link[64] = "", path[2 * ENG_CKPT_META_NAME + 8], lab[CKPT_LABEL_LEN], q[200];
        const ssize_t len = H5Lget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, link,
                                               sizeof link, H5P_DEFAULT);
        snprintf(path, sizeof path, "%s/%s", name, link);
        if (len < 0 || strlen(path) >= 2 * ENG_CKPT_META_NAME ||
            m->narrays == ENG_CKPT_META_ARRAYS) {
            ckpt_r_fail(r, PST_EFORMAT, "/pstrain/%s: %s",
                        eng_ckpt_quoted(q, 120, path, strlen(path)),
                        m->narrays == ENG_CKPT_META_ARRAYS ? "more arrays than pstrain keeps"
                                                           : "name longer than pstrain keeps");
            break;
        }
        hsize_t n = 0;
        hid_t d = ckpt_r_open_dataset(r, g, path, 1, NULL, &n, lab);
        if (d >= 0)
            H5Dclose(d);
        if (r->rc == PST_OK && !ckpt_fits(r, n, sizeof(int64_t)))
            ckpt_r_too_big(r, lab, n, sizeof(int64_t));
        if (r->rc != PST_OK)
            break;
        eng_meta_array *a = &m->arrays[m->narrays++];
        snprintf(a->name, sizeof a->name, "%.*s", (int)sizeof a->name - 1, path); /* fits */
        a->n = n;
        a->v = pst_alloc(sizeof(int64_t) * (n ? n : 1));
        ckpt_r_dataset(r, g, path, F_I64, 1, &n, a->v);
    }
    H5Oclose(obj);
    return r->rc == PST_OK ? 0 : -1;
}

/* The int64 arrays in /pstrain's groups the engine does not know, in the order of names. */
void ckpt_read_meta_arrays(ckpt_reader *r, hid_t g, eng_ckpt_meta *m) {
    if (r->rc != PST_OK)
        return;
    r->meta = m;
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, meta_group, r) < 0)
        ckpt_r_fail(r, PST_EFORMAT, "groups of /pstrain: damaged (unreadable)");
}
