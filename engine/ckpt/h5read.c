/* h5read.c: the typed reader helpers, with a sticky error like the writer's; every size a
 * file gives is checked against the file's length before memory is allocated for it. */
#include "engine/ckpt/h5.h"

#include "engine/base/base.h"

#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ckpt_r_fail(ckpt_reader *r, int code, const char *fmt, ...) {
    if (r->rc != PST_OK)
        return r->rc;
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->rc = pst_err(r->err, r->errlen, code, "%s: %s", r->path, msg);
    return r->rc;
}

/* Whether n values of size bytes each, a count the file itself gives, can be in the file.
 * Checked before memory is allocated for them: a chunked dataset of which no chunk was
 * written claims any shape in a few bytes (and reads as zeros), while pstrain's files hold
 * every value, uncompressed. */
int ckpt_fits(const ckpt_reader *r, uint64_t n, uint64_t size) {
    return size == 0 || n <= r->file_bytes / size;
}

/* Records that lab's n values of size bytes cannot be in the file. */
void ckpt_r_too_big(ckpt_reader *r, const char *lab, uint64_t n, uint64_t size) {
    ckpt_r_fail(r, PST_EFORMAT, "%s: %llu x %llu bytes, more than the whole file (%llu bytes)", lab,
                (unsigned long long)n, (unsigned long long)size, (unsigned long long)r->file_bytes);
}

/* Whether loc has a link at path, checked one component at a time: H5Lexists fails, rather
 * than says no, when a component in the middle is missing. */
int ckpt_path_exists(hid_t loc, const char *path) {
    char prefix[256];
    const size_t len = strlen(path);
    if (len >= sizeof prefix)
        return 0;
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        if (H5Lexists(loc, prefix, H5P_DEFAULT) <= 0)
            return 0;
    }
    return 1;
}

/* Opens attribute name of loc; lab (CKPT_LABEL_LEN bytes) gets its label for messages. Returns the
 * id or -1 (with the failure recorded). */
hid_t ckpt_r_open_attr(ckpt_reader *r, hid_t loc, const char *name, char *lab) {
    ckpt_label(lab, loc, name, "attribute");
    if (r->rc != PST_OK)
        return -1;
    if (H5Aexists(loc, name) <= 0) {
        ckpt_r_fail(r, PST_EFORMAT, "%s: missing", lab);
        return -1;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    return a;
}

/* The scalar attribute name of loc, stored exactly as type says (little-endian), into v. */
void ckpt_r_attr(ckpt_reader *r, hid_t loc, const char *name, ckpt_type type, void *v) {
    char lab[CKPT_LABEL_LEN];
    hid_t a = ckpt_r_open_attr(r, loc, name, lab);
    if (a < 0)
        return;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    if (t < 0 || s < 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    else if (H5Tequal(t, ckpt_file_type(type)) <= 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: expected %s, found another type", lab,
                    ckpt_type_name(type));
    else if (H5Sget_simple_extent_type(s) != H5S_SCALAR)
        ckpt_r_fail(r, PST_EFORMAT, "%s: expected a scalar", lab);
    else if (H5Aread(a, ckpt_mem_type(type), v) < 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    H5Aclose(a);
}

/* The scalar fixed-length string attribute name of loc into out (outlen bytes, with its NUL:
 * longer strings are refused). */
void ckpt_r_str_attr(ckpt_reader *r, hid_t loc, const char *name, char *out, size_t outlen) {
    char lab[CKPT_LABEL_LEN];
    hid_t a = ckpt_r_open_attr(r, loc, name, lab);
    if (a < 0)
        return;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    const size_t size = t < 0 ? 0 : H5Tget_size(t);
    char *buf = NULL;
    if (t < 0 || s < 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    else if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0 || size == 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: expected a fixed-length string", lab);
    else if (H5Sget_simple_extent_type(s) != H5S_SCALAR)
        ckpt_r_fail(r, PST_EFORMAT, "%s: expected a scalar", lab);
    else if (!ckpt_fits(r, 1, size))
        ckpt_r_too_big(r, lab, 1, size);
    else if (H5Aread(a, t, buf = pst_calloc(1, size + 1)) < 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    else if (strlen(buf) >= outlen) {
        char q[200];
        ckpt_r_fail(r, PST_EFORMAT, "%s: '%s' is longer than %zu characters", lab,
                    eng_ckpt_quoted(q, sizeof q, buf, strnlen(buf, 40)), outlen - 1);
    } else
        memcpy(out, buf, strlen(buf) + 1);
    free(buf);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    H5Aclose(a);
}

/* "(3, 3, 1, 32)", or "(32,)" for one dimension, as numpy prints shapes. */
static char *dims_str(char *buf, size_t len, int rank, const hsize_t *dims) {
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ", %llu" : "%llu",
                                 (unsigned long long)dims[i]);
    if (used < len)
        snprintf(buf + used, len - used, "%s)", rank == 1 ? "," : "");
    return buf;
}

/* Opens the dataset at path of loc (lab, CKPT_LABEL_LEN bytes, gets "dataset <path>") and checks
 * its shape against dims[0..rank). A NULL dims only checks the rank and returns the shape in got.
 */
hid_t ckpt_r_open_dataset(ckpt_reader *r, hid_t loc, const char *path, int rank,
                          const hsize_t *dims, hsize_t *got, char *lab) {
    ckpt_label(lab, loc, path, "dataset");
    if (r->rc != PST_OK)
        return -1;
    if (!ckpt_path_exists(loc, path)) {
        ckpt_r_fail(r, PST_EFORMAT, "%s: missing", lab);
        return -1;
    }
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    hsize_t shape[ENG_MAX_DIMS] = {0};
    const int n = s < 0 ? -1 : H5Sget_simple_extent_ndims(s);
    if (n < 0 || n > ENG_MAX_DIMS || H5Sget_simple_extent_dims(s, shape, NULL) < 0) {
        ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    } else if (n != rank || (dims && memcmp(shape, dims, sizeof(hsize_t) * (size_t)rank) != 0)) {
        char want[96], have[96];
        if (dims)
            ckpt_r_fail(r, PST_EFORMAT, "%s: expected shape %s, got %s", lab,
                        dims_str(want, sizeof want, rank, dims),
                        dims_str(have, sizeof have, n, shape));
        else
            ckpt_r_fail(r, PST_EFORMAT, "%s: expected %d dimensions, got shape %s", lab, rank,
                        dims_str(have, sizeof have, n, shape));
    } else if (got) {
        memcpy(got, shape, sizeof(hsize_t) * (size_t)rank);
    }
    if (s >= 0)
        H5Sclose(s);
    if (r->rc != PST_OK && d >= 0) {
        H5Dclose(d);
        d = -1;
    }
    return d;
}

/* The dataset at path of loc, stored exactly as type says with shape dims[0..rank), into out.
 * A read that fails here has failed Fletcher32 or a metadata checksum. */
void ckpt_r_dataset(ckpt_reader *r, hid_t loc, const char *path, ckpt_type type, int rank,
                    const hsize_t *dims, void *out) {
    char lab[CKPT_LABEL_LEN];
    hid_t d = ckpt_r_open_dataset(r, loc, path, rank, dims, NULL, lab);
    if (d < 0)
        return;
    hid_t t = H5Dget_type(d);
    if (t < 0 || H5Tequal(t, ckpt_file_type(type)) <= 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: expected %s, found another type", lab,
                    ckpt_type_name(type));
    else if (H5Dread(d, ckpt_mem_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (checksum mismatch or unreadable)", lab);
    if (t >= 0)
        H5Tclose(t);
    H5Dclose(d);
}

/* A 1-D array of fixed-length strings (an attribute, or a dataset when dataset is set)
 * must hold exactly expect[0..n). */
void ckpt_r_check_strs(ckpt_reader *r, hid_t loc, const char *name, int dataset,
                       const char *const *expect, int n) {
    char lab[CKPT_LABEL_LEN];
    const hsize_t want = (hsize_t)n;
    hid_t obj = dataset ? ckpt_r_open_dataset(r, loc, name, 1, &want, NULL, lab)
                        : ckpt_r_open_attr(r, loc, name, lab);
    if (obj < 0)
        return;
    hid_t t = dataset ? H5Dget_type(obj) : H5Aget_type(obj);
    hid_t s = dataset ? -1 : H5Aget_space(obj);
    const size_t size = t < 0 ? 0 : H5Tget_size(t);
    hsize_t got = 0;
    char *buf = NULL;
    if (t < 0 || (!dataset && (s < 0 || H5Sget_simple_extent_ndims(s) != 1 ||
                               H5Sget_simple_extent_dims(s, &got, NULL) < 0)))
        ckpt_r_fail(r, PST_EFORMAT, "%s: expected a list of %d strings", lab, n);
    else if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0 || size == 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: expected fixed-length strings", lab);
    else if (!dataset && got != want)
        ckpt_r_fail(r, PST_EFORMAT, "%s: %llu entries, expected %d", lab, (unsigned long long)got,
                    n);
    else if (!ckpt_fits(r, (uint64_t)n, size))
        ckpt_r_too_big(r, lab, (uint64_t)n, size);
    else if ((buf = pst_calloc(n > 0 ? (size_t)n : 1, size)) && n > 0 &&
             (dataset ? H5Dread(obj, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)
                      : H5Aread(obj, t, buf)) < 0)
        ckpt_r_fail(r, PST_EFORMAT, "%s: damaged (checksum mismatch or unreadable)", lab);
    for (int i = 0; buf && r->rc == PST_OK && i < n; i++) {
        const char *e = buf + (size_t)i * size;
        const size_t len = strnlen(e, size);
        char q[200];
        if (len != strlen(expect[i]) || memcmp(e, expect[i], len) != 0)
            ckpt_r_fail(r, PST_EFORMAT, "%s: entry %d is '%s', expected '%s'", lab, i,
                        eng_ckpt_quoted(q, sizeof q, e, len), expect[i]);
    }
    free(buf);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    if (dataset)
        H5Dclose(obj);
    else
        H5Aclose(obj);
}
