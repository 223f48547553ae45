/* ckpt.c: checkpoints as HDF5 files (the layout is in ckpt.h), saved atomically into a
 * directory with a `latest` pointer, and printed for `pstrain inspect`.
 *
 * Writing and reading go through small helpers with a sticky error, as in sqlite: the first
 * failure is recorded with what failed, later calls do nothing, and the caller checks once. */
#include "engine/ckpt.h"

#include "engine/base/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KERAS_BACKEND "tensorflow"
#define KERAS_VERSION "2.13.1"
#define CHUNK_BYTES ((size_t)1 << 20) /* Fletcher32 covers one chunk: keep them modest */
#define TMP_PREFIX ".pstrain-tmp-"    /* in-progress files of eng_ckpt_save */
#define PATH_LEN 4096
#define REASON_LEN 160 /* why HDF5 failed, as h5_reason gives it */
#define LABEL_LEN 320  /* "attribute step of /pstrain", as label gives it */

/* --- the scalar fields of /pstrain, as a table both directions walk --- */

typedef enum field_type { F_I32, F_I64, F_U64, F_F32, F_F64, F_STR, F_U8 } field_type;

typedef struct field {
    const char *name;
    field_type type;
    size_t offset, size; /* in eng_ckpt; size matters for strings */
} field;

#define FIELD(name, type, member)                                                                  \
    { name, type, offsetof(eng_ckpt, member), sizeof(((eng_ckpt *)0)->member) }

static const field fields[] = {
    FIELD("layout_checksum", F_U64, layout_checksum),
    FIELD("total", F_U64, total),
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))

/* An optimizer's hyperparameters, float32 attributes of the group that holds it (/pstrain for
 * the first, /pstrain/optimizer_2 for a second): offsets are into eng_optim_cfg. Written after
 * fields, so that files of one optimizer keep their attributes' order and bytes. */
#define OPTIM_FIELD(name, member)                                                                  \
    { name, F_F32, offsetof(eng_optim_cfg, member), sizeof(float) }

static const field optim_fields[] = {
    OPTIM_FIELD("lr", lr),           OPTIM_FIELD("beta1", beta1),
    OPTIM_FIELD("beta2", beta2),     OPTIM_FIELD("rho", rho),
    OPTIM_FIELD("epsilon", epsilon), OPTIM_FIELD("clipvalue", clipvalue),
    OPTIM_FIELD("decay", decay),
};
#define NOPTIM_FIELDS ((int)(sizeof optim_fields / sizeof optim_fields[0]))

/* The type in the file (little-endian, whatever the host) and in memory. */
static hid_t file_type(field_type t) {
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

static hid_t mem_type(field_type t) {
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

static const char *type_name(field_type t) {
    static const char *const names[] = {"int32",   "int64",  "uint64", "float32",
                                        "float64", "string", "uint8"};
    return names[t];
}

static const char *slot_name(eng_optim_kind kind, int s) {
    return kind == ENG_OPT_ADAM ? (s == 0 ? "m" : "v") : "accumulator";
}

/* s[0, n) for a message, into buf (len bytes, cut to fit): bytes outside printable ASCII as
 * \xHH, so that what a file holds cannot break the one line it is quoted in (a name with a
 * newline, found by tests/fuzz/fuzz_ckpt) or send control codes to a terminal. Returns buf. */
static const char *quoted(char *buf, size_t len, const char *s, size_t n) {
    size_t used = 0;
    for (size_t i = 0; i < n && used + 5 <= len; i++) {
        const unsigned char b = (unsigned char)s[i];
        if (b >= 0x20 && b < 0x7f)
            buf[used++] = (char)b;
        else
            used += (size_t)snprintf(buf + used, len - used, "\\x%02x", b);
    }
    if (len)
        buf[used < len ? used : len - 1] = '\0';
    return buf;
}

/* m's parts (name, offset, total) into c->nparts and c->parts. */
static void set_parts(eng_ckpt *c, const eng_model *m) {
    c->nparts = m->nparts;
    for (int p = 0; p < m->nparts; p++) {
        snprintf(c->parts[p].name, sizeof c->parts[p].name, "%s", m->parts[p].name);
        c->parts[p].offset = m->parts[p].offset;
        c->parts[p].total = m->parts[p].total;
    }
}

void eng_ckpt_init(eng_ckpt *c, const eng_model *m) {
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "%s", m->def->name);
    c->layout_checksum = eng_layout_checksum(&m->layout);
    c->total = m->layout.total;
    set_parts(c, m);
}

/* --- checks shared by writing and reading: never write what reading would refuse --- */

/* An optimizer's hyperparameters: finite, lr > 0. which is "optimizer" or "optimizer_2", for
 * messages. Returns PST_OK or code with a message naming path. */
static int check_optim(const eng_optim_cfg *o, const char *which, const char *path, int code,
                       char *err, size_t errlen) {
    for (int i = 0; i < NOPTIM_FIELDS; i++) {
        float v;
        memcpy(&v, (const char *)o + optim_fields[i].offset, sizeof v);
        if (!isfinite(v))
            return pst_err(err, errlen, code, "%s: %s %s is %g, expected a finite number", path,
                           which, optim_fields[i].name, v);
    }
    if (!(o->lr > 0.0f))
        return pst_err(err, errlen, code, "%s: %s lr %g, expected > 0", path, which, o->lr);
    return PST_OK;
}

/* The update-count runs tile [0, total) in order, each non-empty with iterations >= 0. */
static int check_runs(const eng_ckpt_iters *runs, int nruns, uint64_t total, const char *path,
                      int code, char *err, size_t errlen) {
    if (nruns < 1 || !runs)
        return pst_err(err, errlen, code,
                       "%s: no update-count runs, expected runs that tile [0, %llu)", path,
                       (unsigned long long)total);
    uint64_t next = 0;
    for (int i = 0; i < nruns; i++) {
        const eng_ckpt_iters *r = &runs[i];
        if (r->lo != next)
            return pst_err(err, errlen, code,
                           "%s: update-count run %d starts at %llu, expected %llu (runs must tile "
                           "[0, %llu) in order)",
                           path, i, (unsigned long long)r->lo, (unsigned long long)next,
                           (unsigned long long)total);
        if (r->n == 0 || r->n > total - r->lo)
            return pst_err(err, errlen, code,
                           "%s: update-count run %d covers %llu elements from %llu, past the end "
                           "or none (runs must tile [0, %llu))",
                           path, i, (unsigned long long)r->n, (unsigned long long)r->lo,
                           (unsigned long long)total);
        if (r->iterations < 0)
            return pst_err(err, errlen, code,
                           "%s: update-count run %d has iterations %lld, expected >= 0", path, i,
                           (long long)r->iterations);
        next = r->lo + r->n;
    }
    if (next != total)
        return pst_err(err, errlen, code,
                       "%s: update-count runs end at %llu, expected %llu (runs must tile [0, "
                       "%llu))",
                       path, (unsigned long long)next, (unsigned long long)total,
                       (unsigned long long)total);
    return PST_OK;
}

/* The file's group of part p's optimizer: "optimizer" (in /pstrain), "optimizer_2", ... */
static const char *optim_group(int p, char *buf, size_t len) {
    if (p == 0)
        snprintf(buf, len, "optimizer");
    else
        snprintf(buf, len, "optimizer_%d", p + 1);
    return buf;
}

/* Whether name is one of /pstrain's own attributes, which the meta cannot hold. */
static int engine_attr(const char *name) {
    static const char *const own[] = {"format_version", "model", "split", "ema_decay", "optimizer"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strcmp(name, own[i]) == 0)
            return 1;
    for (int i = 0; i < NFIELDS; i++)
        if (strcmp(name, fields[i].name) == 0)
            return 1;
    for (int i = 0; i < NOPTIM_FIELDS; i++)
        if (strcmp(name, optim_fields[i].name) == 0)
            return 1;
    return 0;
}

/* Whether name is one of /pstrain's own groups: optimizer, optimizer_<n>, layout. */
static int engine_group(const char *name) {
    if (strcmp(name, "optimizer") == 0 || strcmp(name, "layout") == 0)
        return 1;
    if (strncmp(name, "optimizer_", 10) != 0 || !name[10])
        return 0;
    return strspn(name + 10, "0123456789") == strlen(name + 10);
}

/* A meta that can be written and read back as it is. */
static int check_meta(const eng_ckpt_meta *m, const char *path, char *err, size_t errlen) {
    for (int i = 0; i < m->nattrs; i++) {
        const eng_meta_attr *a = &m->attrs[i];
        if (!a->name[0] || !memchr(a->name, '\0', sizeof a->name) || engine_attr(a->name) ||
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
            strchr(slash + 1, '/') || !slash[1] || engine_group(group) ||
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
        optim_group(p, which, sizeof which);
        if (!memchr(part->name, '\0', sizeof part->name) || strcmp(part->name, want->name) != 0 ||
            part->offset != want->offset || part->total != want->total)
            return pst_err(err, errlen, PST_EARG,
                           "%s: part %d is '%.*s' at %llu with %llu floats, %s's is %s at %zu "
                           "with %zu",
                           path, p, (int)sizeof part->name, part->name,
                           (unsigned long long)part->offset, (unsigned long long)part->total,
                           m->def->name, want->name, want->offset, want->total);
        const eng_optim_cfg *o = &part->optim;
        if ((rc = check_optim(o, which, path, PST_EARG, err, errlen)) != PST_OK)
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
                               slot_name(o->kind, s));
        char where[96];
        snprintf(where, sizeof where, "%s part %s", path, want->name);
        if ((rc = check_runs(part->runs, part->nruns, part->total, where, PST_EARG, err, errlen)) !=
            PST_OK)
            return rc;
        /* The file keeps a moving average of the first of several parts only. */
        if (part->ema &&
            (p > 0 || c->nparts == 1 || !(part->ema_decay > 0.0 && part->ema_decay < 1.0)))
            return pst_err(err, errlen, PST_EARG, "%s: part %s: ema %s", path, want->name,
                           p > 0 || c->nparts == 1 ? "kept only for the first of several parts"
                                                   : "decay not in (0, 1)");
    }
    return check_meta(&c->meta, path, err, errlen);
}

/* --- HDF5 plumbing --- */
/* --- HDF5 plumbing --- */

/* HDF5 prints its error stack to stderr by default; we report one line instead. */
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* File access. Writing (image > 0) builds the file in memory, HDF5's core driver growing by
 * image bytes, with format bounds (1.8, latest) so that object headers carry checksums.
 * Both: objects close with the file, and no file locks (files are written under a temporary
 * name and never changed after the rename, and locks fail on some network file systems). */
static hid_t h5_fapl(size_t image) {
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
        snprintf(data, REASON_LEN, "%s", e->desc);
    return 0;
}

/* Why the last HDF5 call failed, into buf (REASON_LEN bytes): the system's message where HDF5
 * quotes one ("error message = '...'"), else the innermost entry of its error stack. Call it before
 * any other HDF5 call, which would clear the stack. */
static const char *h5_reason(char *buf) {
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
        snprintf(buf, REASON_LEN, "HDF5 error");
    return buf;
}

/* "attribute step of /pstrain", "dataset /pstrain/optimizer/m" or "group /conv2d" (kind is
 * the first word) into buf (LABEL_LEN bytes), for messages. */
static void label(char *buf, hid_t loc, const char *name, const char *kind) {
    char where[192];
    if (H5Iget_name(loc, where, sizeof where) <= 0)
        snprintf(where, sizeof where, "?");
    if (strcmp(kind, "attribute") == 0)
        snprintf(buf, LABEL_LEN, "attribute %.63s of %.191s", name, where);
    else
        snprintf(buf, LABEL_LEN, "%s %.191s%s%.63s", kind, where, strcmp(where, "/") ? "/" : "",
                 name);
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

/* Chunk dimensions of at most CHUNK_BYTES: halve the outer dimensions first, so that a chunk
 * stays a contiguous block of rows. */
static void chunk_dims(int rank, const hsize_t *dims, size_t elem, hsize_t *chunk) {
    size_t bytes = elem;
    for (int d = 0; d < rank; d++) {
        chunk[d] = dims[d] ? dims[d] : 1;
        bytes *= chunk[d];
    }
    for (int d = 0; d < rank; d++)
        while (bytes > CHUNK_BYTES && chunk[d] > 1) {
            bytes = bytes / chunk[d] * ((chunk[d] + 1) / 2);
            chunk[d] = (chunk[d] + 1) / 2;
        }
}

/* --- writing --- */

typedef struct writer {
    int failed;
    char what[512]; /* "dataset /pstrain/optimizer/m: No space left on device" */
} writer;

/* Records the first failure: what (kind and name of loc's object) and why (reason, or
 * HDF5's). */
static void w_fail(writer *w, hid_t loc, const char *name, const char *kind, const char *reason) {
    if (w->failed)
        return;
    char why[REASON_LEN], lab[LABEL_LEN];
    if (!reason)
        reason = h5_reason(why);
    label(lab, loc, name, kind);
    snprintf(w->what, sizeof w->what, "%s: %s", lab, reason);
    w->failed = 1;
}

/* A scalar (n < 0) or 1-D (n >= 0 elements) attribute name of loc. */
static void w_attr(writer *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, long n,
                   const void *v) {
    if (w->failed)
        return;
    const hsize_t dim = n < 0 ? 0 : (hsize_t)n;
    hid_t space = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    hid_t a = space < 0 ? -1 : H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, v) < 0)
        w_fail(w, loc, name, "attribute", NULL);
    if (a >= 0)
        H5Aclose(a);
    if (space >= 0)
        H5Sclose(space);
}

static void w_str_attr(writer *w, hid_t loc, const char *name, const char *s) {
    if (w->failed)
        return;
    hid_t t = str_type(strlen(s));
    if (t < 0) {
        w_fail(w, loc, name, "attribute", NULL);
        return;
    }
    w_attr(w, loc, name, t, t, -1, s);
    H5Tclose(t);
}

/* Objects carry no timestamps (h5py's default for datasets): the same checkpoint gives the
 * same bytes. Returns the group's id, or -1 with the failure recorded. */
static hid_t w_group(writer *w, hid_t loc, const char *name) {
    if (w->failed)
        return -1;
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), g = -1;
    if (gcpl >= 0 && H5Pset_obj_track_times(gcpl, 0) >= 0)
        g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0)
        w_fail(w, loc, name, "group", NULL);
    if (gcpl >= 0)
        H5Pclose(gcpl);
    return g;
}

static void close_group(hid_t g) {
    if (g >= 0)
        H5Gclose(g);
}

/* Dataset path of loc (its groups made already), chunked, with Fletcher32 checksums. */
static int path_exists(hid_t loc, const char *path);

static void w_dataset(writer *w, hid_t loc, const char *path, hid_t ftype, hid_t mtype, int rank,
                      const hsize_t *dims, const void *data) {
    if (w->failed)
        return;
    /* Groups on the way first ("lstm_cell/kernel:0" inside /lstm/lstm), made as w_group makes
     * them (no timestamps), unless an earlier dataset made them. */
    char parent[PATH_LEN];
    for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        if (!path_exists(loc, parent))
            close_group(w_group(w, loc, parent));
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
        w_fail(w, loc, path, "dataset", NULL);
    if (d >= 0)
        H5Dclose(d);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
}

/* s[0..n) as one 1-D array of fixed-length strings of the longest's size: an attribute, or
 * a dataset when dataset is set. */
static void w_strs(writer *w, hid_t loc, const char *name, const char *const *s, int n,
                   int dataset) {
    if (w->failed)
        return;
    size_t size = 1;
    for (int i = 0; i < n; i++)
        if (strlen(s[i]) > size)
            size = strlen(s[i]);
    char *buf = calloc(n > 0 ? (size_t)n : 1, size);
    hid_t t = buf ? str_type(size) : -1;
    if (t < 0) {
        w_fail(w, loc, name, dataset ? "dataset" : "attribute", buf ? NULL : "out of memory");
        free(buf);
        return;
    }
    for (int i = 0; i < n; i++)
        memcpy(buf + (size_t)i * size, s[i], strlen(s[i]));
    const hsize_t dim = (hsize_t)n;
    if (dataset)
        w_dataset(w, loc, name, t, t, 1, &dim, buf);
    else
        w_attr(w, loc, name, t, t, n, buf);
    H5Tclose(t);
    free(buf);
}

/* Indices of the layout's tensors that belong to layer (named "<layer>/..."), in layout
 * order (Keras's: kernel, then bias). Returns how many. */
static int layer_tensors(const eng_model *m, const char *layer, int *idx) {
    const size_t len = strlen(layer);
    int n = 0;
    for (int i = 0; i < m->layout.n; i++) {
        const char *name = m->layout.tensors[i].name;
        if (strncmp(name, layer, len) == 0 && name[len] == '/')
            idx[n++] = i;
    }
    return n;
}

static void tensor_dims(const eng_tensor_info *t, hsize_t *dims) {
    for (int d = 0; d < t->ndim; d++)
        dims[d] = (hsize_t)t->shape[d];
}

/* The root: what Keras's load_weights and h5py read. */
static void write_keras(writer *w, hid_t file, const eng_ckpt *c, const eng_model *m) {
    const char *layers[ENG_MAX_LAYERS];
    for (int i = 0; i < m->n; i++)
        layers[i] = m->layers[i].name;
    w_strs(w, file, "layer_names", layers, m->n, 0);
    w_str_attr(w, file, "backend", KERAS_BACKEND);
    w_str_attr(w, file, "keras_version", KERAS_VERSION);
    for (int i = 0; i < m->n && !w->failed; i++) {
        int idx[ENG_MAX_TENSORS];
        const int nt = layer_tensors(m, layers[i], idx);
        char names[ENG_MAX_TENSORS][ENG_NAME_MAX + 2];
        const char *wn[ENG_MAX_TENSORS];
        for (int j = 0; j < nt; j++) {
            snprintf(names[j], sizeof names[j], "%s:0", m->layout.tensors[idx[j]].name);
            wn[j] = names[j];
        }
        hid_t g = w_group(w, file, layers[i]);
        w_strs(w, g, "weight_names", wn, nt, 0);
        /* Keras's "conv2d/kernel:0" inside group /conv2d: dataset kernel:0 of /conv2d/conv2d. */
        hid_t sub = nt > 0 ? w_group(w, g, layers[i]) : -1;
        for (int j = 0; j < nt; j++) {
            const eng_tensor_info *t = &m->layout.tensors[idx[j]];
            hsize_t dims[ENG_MAX_DIMS];
            tensor_dims(t, dims);
            w_dataset(w, sub, names[j] + strlen(layers[i]) + 1, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                      t->ndim, dims, c->weights + t->offset);
        }
        close_group(sub);
        close_group(g);
    }
}

/* An optimizer as attributes of loc: its hyperparameters, then its kind. */
static void write_optim(writer *w, hid_t loc, const eng_optim_cfg *o) {
    for (int i = 0; i < NOPTIM_FIELDS; i++)
        w_attr(w, loc, optim_fields[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, -1,
               (const char *)o + optim_fields[i].offset);
    w_str_attr(w, loc, "optimizer", eng_optim_kind_name(o->kind));
}

/* /pstrain: everything else a job needs to continue. */
static void write_pstrain(writer *w, hid_t file, const eng_ckpt *c, const eng_model *m) {
    hid_t g = w_group(w, file, "pstrain");
    close_group(w_group(w, g, "optimizer"));
    /* the meta's groups, each once, in the order of its arrays */
    const eng_ckpt_meta *meta = &c->meta;
    for (int i = 0; i < meta->narrays; i++) {
        char group[sizeof meta->arrays[i].name];
        snprintf(group, sizeof group, "%s", meta->arrays[i].name);
        *strchr(group, '/') = '\0'; /* check_meta: there is one */
        if (!path_exists(g, group))
            close_group(w_group(w, g, group));
    }
    close_group(w_group(w, g, "layout"));
    const int32_t format = ENG_CKPT_FORMAT;
    w_attr(w, g, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, -1, &format);
    w_str_attr(w, g, "model", c->model);
    for (int i = 0; i < NFIELDS; i++)
        w_attr(w, g, fields[i].name, file_type(fields[i].type), mem_type(fields[i].type), -1,
               (const char *)c + fields[i].offset);
    for (int i = 0; i < meta->nattrs; i++) {
        const eng_meta_attr *a = &meta->attrs[i];
        if (a->type == ENG_META_I32)
            w_attr(w, g, a->name, H5T_STD_I32LE, H5T_NATIVE_INT32, -1, &a->i32);
        else if (a->type == ENG_META_I64)
            w_attr(w, g, a->name, H5T_STD_I64LE, H5T_NATIVE_INT64, -1, &a->i64);
        else if (a->type == ENG_META_F64)
            w_attr(w, g, a->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, -1, &a->f64);
        else
            w_str_attr(w, g, a->name, a->str);
    }
    const eng_ckpt_part *first = &c->parts[0];
    write_optim(w, g, &first->optim);
    /* Only models of several parts say where the second starts: files of one part stay as
     * they were. */
    if (c->nparts > 1)
        w_attr(w, g, "split", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &c->parts[1].offset);
    for (int p = 0; p < c->nparts; p++) {
        const eng_ckpt_part *part = &c->parts[p];
        const hsize_t n = part->total;
        char group[32];
        optim_group(p, group, sizeof group);
        hid_t og = p == 0 ? g : w_group(w, g, group);
        if (p > 0)
            write_optim(w, og, &part->optim);
        for (int s = 0; s < part->nslots; s++) {
            char path[64];
            snprintf(path, sizeof path, "%s%s", p == 0 ? "optimizer/" : "",
                     slot_name(part->optim.kind, s));
            w_dataset(w, og, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n, part->slots[s]);
        }
        if (p > 0)
            close_group(og);
    }
    if (c->nparts > 1 && first->ema) {
        const hsize_t n = first->total;
        w_attr(w, g, "ema_decay", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, -1, &first->ema_decay);
        w_dataset(w, g, "ema", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n, first->ema);
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
    w_dataset(w, g, "optimizer/iterations", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, rdims, rows);
    free(rows);
    for (int i = 0; i < meta->narrays; i++) {
        const hsize_t n = meta->arrays[i].n;
        w_dataset(w, g, meta->arrays[i].name, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &n,
                  meta->arrays[i].v);
    }
    if (c->vocab_bytes > 0) {
        const hsize_t nv = (hsize_t)c->vocab_bytes;
        w_dataset(w, g, "vocab", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, &nv, c->vocab);
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
    w_strs(w, g, "layout/names", names, lay->n, 1);
    w_dataset(w, g, "layout/offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &nt, offsets);
    w_dataset(w, g, "layout/counts", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &nt, counts);
    close_group(g);
}

#define ROT(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

/* Bob Jenkins's lookup3 hashlittle (public domain) with seed 0, byte by byte: HDF5's metadata
 * checksum. */
static uint32_t lookup3(const uint8_t *k, size_t len) {
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)len;
    if (len == 0)
        return c;
    for (;;) {
        /* The last block, 1 to 12 bytes, is zero-padded: absent bytes add nothing. */
        uint8_t t[12] = {0};
        memcpy(t, k, len < 12 ? len : 12);
        a += t[0] + ((uint32_t)t[1] << 8) + ((uint32_t)t[2] << 16) + ((uint32_t)t[3] << 24);
        b += t[4] + ((uint32_t)t[5] << 8) + ((uint32_t)t[6] << 16) + ((uint32_t)t[7] << 24);
        c += t[8] + ((uint32_t)t[9] << 8) + ((uint32_t)t[10] << 16) + ((uint32_t)t[11] << 24);
        if (len <= 12)
            break;
        a -= c, a ^= ROT(c, 4), c += b;
        b -= a, b ^= ROT(a, 6), a += c;
        c -= b, c ^= ROT(b, 8), b += a;
        a -= c, a ^= ROT(c, 16), c += b;
        b -= a, b ^= ROT(a, 19), a += c;
        c -= b, c ^= ROT(b, 4), b += a;
        k += 12, len -= 12;
    }
    c ^= b, c -= ROT(b, 14);
    a ^= c, a -= ROT(c, 11);
    b ^= a, b -= ROT(a, 25);
    c ^= b, c -= ROT(b, 16);
    a ^= c, a -= ROT(c, 4);
    b ^= a, b -= ROT(a, 14);
    c ^= b, c -= ROT(b, 24);
    return c;
}

/* HDF5 1.10's H5Fget_file_image clears the superblock's status flags in the image but leaves
 * the checksum computed over them (HDF5 issue 1915, fixed upstream in 2025), so the image would
 * not open: recompute it, as the fix does. Superblocks 2 and 3 end in a checksum of what comes
 * before: 12 bytes, then four addresses of img[9] bytes each. Returns 0, or -1 for an image
 * that does not start with a superblock. */
static int fix_superblock(uint8_t *img, size_t len) {
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (len < 12 || memcmp(img, sig, sizeof sig) != 0)
        return -1;
    if (img[8] < 2)
        return 0; /* versions 0 and 1 have no checksum */
    const size_t end = 12 + 4 * (size_t)img[9];
    if (end + 4 > len)
        return -1;
    const uint32_t sum = lookup3(img, end);
    for (int i = 0; i < 4; i++)
        img[end + (size_t)i] = (uint8_t)(sum >> (8 * i));
    return 0;
}

/* c as the bytes of an HDF5 file, built in memory, into *image (malloc'ed, *len bytes). */
static int build_image(const char *path, const eng_ckpt *c, const eng_model *m, void **image,
                       size_t *len, char *err, size_t errlen) {
    *image = NULL;
    h5_quiet();
    /* Room for the data and the metadata at once: the core driver then never reallocates. */
    uint64_t floats = c->total;
    for (int p = 0; p < c->nparts; p++)
        floats += c->parts[p].total * (uint64_t)(c->parts[p].nslots + !!c->parts[p].ema);
    const size_t guess = sizeof(float) * floats + ((size_t)1 << 20);
    hid_t fapl = h5_fapl(guess), fcpl = H5Pcreate(H5P_FILE_CREATE), file = -1;
    if (fapl >= 0 && fcpl >= 0 && H5Pset_obj_track_times(fcpl, 0) >= 0) /* the root group's */
        file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (file < 0) {
        char why[REASON_LEN];
        h5_reason(why);
        if (fapl >= 0)
            H5Pclose(fapl);
        return pst_err(err, errlen, PST_ENOMEM, "%s: cannot create in memory: %s", path, why);
    }
    writer w = {0};
    write_keras(&w, file, c, m);
    write_pstrain(&w, file, c, m);
    /* The flush puts everything HDF5 still caches into the image. */
    const ssize_t n =
        w.failed || H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(file, NULL, 0);
    if (!w.failed && (n <= 0 || !(*image = malloc((size_t)n)) ||
                      H5Fget_file_image(file, *image, (size_t)n) != n ||
                      fix_superblock(*image, (size_t)n) != 0)) {
        char why[REASON_LEN];
        snprintf(w.what, sizeof w.what, "file image: %s",
                 n > 0 && !*image ? "out of memory" : h5_reason(why));
        w.failed = 1;
    }
    H5Fclose(file);
    H5Pclose(fapl);
    if (w.failed) {
        free(*image);
        *image = NULL;
        return pst_err(err, errlen, PST_ENOMEM, "%s: cannot build %s", path, w.what);
    }
    *len = (size_t)n;
    return PST_OK;
}

/* Writes data[0..len) to path (created or truncated), fsynced when sync. On failure nothing
 * is left at path. */
static int write_bytes(const char *path, const void *data, size_t len, int sync, char *err,
                       size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    size_t done = 0;
    int e = 0;
    while (done < len && !e) {
        ssize_t n = write(fd, p + done, len - done);
        if (n > 0)
            done += (size_t)n;
        else if (n == 0 || errno != EINTR)
            e = n == 0 ? EIO : errno;
    }
    if (!e && sync && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (e) {
        unlink(path); /* not a checkpoint: leave nothing that looks like one */
        return pst_err(err, errlen, PST_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return PST_OK;
}

/* eng_ckpt_write, fsyncing the file when sync. HDF5 builds the file in memory and we write it:
 * a failed write (a full disk) is then one error we report, where HDF5 1.10 writing to disk
 * itself leaves a file it can neither close nor forget. It costs the file's size in memory,
 * twice at the peak. */
static int write_ckpt(const char *path, const eng_ckpt *c, const eng_model *m, int sync, char *err,
                      size_t errlen) {
    int rc = check_ckpt(c, m, path, err, errlen);
    if (rc != PST_OK)
        return rc;
    void *image;
    size_t len;
    if ((rc = build_image(path, c, m, &image, &len, err, errlen)) != PST_OK)
        return rc;
    rc = write_bytes(path, image, len, sync, err, errlen);
    free(image);
    return rc;
}

int eng_ckpt_write(const char *path, const eng_ckpt *c, const eng_model *m, char *err,
                   size_t errlen) {
    return write_ckpt(path, c, m, 0, err, errlen);
}

/* --- reading --- */

typedef struct reader {
    const char *path;
    char *err;
    size_t errlen;
    int rc;              /* the first failure's code (its message is in err), or PST_OK */
    uint64_t file_bytes; /* the file's length: what it says of sizes is checked against it */
    eng_ckpt_meta *meta; /* what the meta's iteration callbacks fill */
} reader;

/* Records the first failure as "path: message". Returns r->rc. */
static int r_fail(reader *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int r_fail(reader *r, int code, const char *fmt, ...) {
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
static int fits(const reader *r, uint64_t n, uint64_t size) {
    return size == 0 || n <= r->file_bytes / size;
}

/* Records that lab's n values of size bytes cannot be in the file. */
static void r_too_big(reader *r, const char *lab, uint64_t n, uint64_t size) {
    r_fail(r, PST_EFORMAT, "%s: %llu x %llu bytes, more than the whole file (%llu bytes)", lab,
           (unsigned long long)n, (unsigned long long)size, (unsigned long long)r->file_bytes);
}

/* Whether loc has a link at path, checked one component at a time: H5Lexists fails, rather
 * than says no, when a component in the middle is missing. */
static int path_exists(hid_t loc, const char *path) {
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

/* Opens attribute name of loc; lab (LABEL_LEN bytes) gets its label for messages. Returns the id or
 * -1 (with the failure recorded). */
static hid_t r_open_attr(reader *r, hid_t loc, const char *name, char *lab) {
    label(lab, loc, name, "attribute");
    if (r->rc != PST_OK)
        return -1;
    if (H5Aexists(loc, name) <= 0) {
        r_fail(r, PST_EFORMAT, "%s: missing", lab);
        return -1;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    return a;
}

/* The scalar attribute name of loc, stored exactly as type says (little-endian), into v. */
static void r_attr(reader *r, hid_t loc, const char *name, field_type type, void *v) {
    char lab[LABEL_LEN];
    hid_t a = r_open_attr(r, loc, name, lab);
    if (a < 0)
        return;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    if (t < 0 || s < 0)
        r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    else if (H5Tequal(t, file_type(type)) <= 0)
        r_fail(r, PST_EFORMAT, "%s: expected %s, found another type", lab, type_name(type));
    else if (H5Sget_simple_extent_type(s) != H5S_SCALAR)
        r_fail(r, PST_EFORMAT, "%s: expected a scalar", lab);
    else if (H5Aread(a, mem_type(type), v) < 0)
        r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    H5Aclose(a);
}

/* The scalar fixed-length string attribute name of loc into out (outlen bytes, with its NUL:
 * longer strings are refused). */
static void r_str_attr(reader *r, hid_t loc, const char *name, char *out, size_t outlen) {
    char lab[LABEL_LEN];
    hid_t a = r_open_attr(r, loc, name, lab);
    if (a < 0)
        return;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    const size_t size = t < 0 ? 0 : H5Tget_size(t);
    char *buf = NULL;
    if (t < 0 || s < 0)
        r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    else if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0 || size == 0)
        r_fail(r, PST_EFORMAT, "%s: expected a fixed-length string", lab);
    else if (H5Sget_simple_extent_type(s) != H5S_SCALAR)
        r_fail(r, PST_EFORMAT, "%s: expected a scalar", lab);
    else if (!fits(r, 1, size))
        r_too_big(r, lab, 1, size);
    else if (!(buf = calloc(1, size + 1)))
        r_fail(r, PST_ENOMEM, "%s: out of memory", lab);
    else if (H5Aread(a, t, buf) < 0)
        r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    else if (strlen(buf) >= outlen) {
        char q[200];
        r_fail(r, PST_EFORMAT, "%s: '%s' is longer than %zu characters", lab,
               quoted(q, sizeof q, buf, strnlen(buf, 40)), outlen - 1);
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

/* Opens the dataset at path of loc (lab, LABEL_LEN bytes, gets "dataset <path>") and checks its
 * shape against dims[0..rank). A NULL dims only checks the rank and returns the shape in got. */
static hid_t r_open_dataset(reader *r, hid_t loc, const char *path, int rank, const hsize_t *dims,
                            hsize_t *got, char *lab) {
    label(lab, loc, path, "dataset");
    if (r->rc != PST_OK)
        return -1;
    if (!path_exists(loc, path)) {
        r_fail(r, PST_EFORMAT, "%s: missing", lab);
        return -1;
    }
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    hsize_t shape[ENG_MAX_DIMS] = {0};
    const int n = s < 0 ? -1 : H5Sget_simple_extent_ndims(s);
    if (n < 0 || n > ENG_MAX_DIMS || H5Sget_simple_extent_dims(s, shape, NULL) < 0) {
        r_fail(r, PST_EFORMAT, "%s: damaged (unreadable)", lab);
    } else if (n != rank || (dims && memcmp(shape, dims, sizeof(hsize_t) * (size_t)rank) != 0)) {
        char want[96], have[96];
        if (dims)
            r_fail(r, PST_EFORMAT, "%s: expected shape %s, got %s", lab,
                   dims_str(want, sizeof want, rank, dims), dims_str(have, sizeof have, n, shape));
        else
            r_fail(r, PST_EFORMAT, "%s: expected %d dimensions, got shape %s", lab, rank,
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
static void r_dataset(reader *r, hid_t loc, const char *path, field_type type, int rank,
                      const hsize_t *dims, void *out) {
    char lab[LABEL_LEN];
    hid_t d = r_open_dataset(r, loc, path, rank, dims, NULL, lab);
    if (d < 0)
        return;
    hid_t t = H5Dget_type(d);
    if (t < 0 || H5Tequal(t, file_type(type)) <= 0)
        r_fail(r, PST_EFORMAT, "%s: expected %s, found another type", lab, type_name(type));
    else if (H5Dread(d, mem_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        r_fail(r, PST_EFORMAT, "%s: damaged (checksum mismatch or unreadable)", lab);
    if (t >= 0)
        H5Tclose(t);
    H5Dclose(d);
}

/* A 1-D array of fixed-length strings (an attribute, or a dataset when dataset is set)
 * must hold exactly expect[0..n). */
static void r_check_strs(reader *r, hid_t loc, const char *name, int dataset,
                         const char *const *expect, int n) {
    char lab[LABEL_LEN];
    const hsize_t want = (hsize_t)n;
    hid_t obj = dataset ? r_open_dataset(r, loc, name, 1, &want, NULL, lab)
                        : r_open_attr(r, loc, name, lab);
    if (obj < 0)
        return;
    hid_t t = dataset ? H5Dget_type(obj) : H5Aget_type(obj);
    hid_t s = dataset ? -1 : H5Aget_space(obj);
    const size_t size = t < 0 ? 0 : H5Tget_size(t);
    hsize_t got = 0;
    char *buf = NULL;
    if (t < 0 || (!dataset && (s < 0 || H5Sget_simple_extent_ndims(s) != 1 ||
                               H5Sget_simple_extent_dims(s, &got, NULL) < 0)))
        r_fail(r, PST_EFORMAT, "%s: expected a list of %d strings", lab, n);
    else if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0 || size == 0)
        r_fail(r, PST_EFORMAT, "%s: expected fixed-length strings", lab);
    else if (!dataset && got != want)
        r_fail(r, PST_EFORMAT, "%s: %llu entries, expected %d", lab, (unsigned long long)got, n);
    else if (!fits(r, (uint64_t)n, size))
        r_too_big(r, lab, (uint64_t)n, size);
    else if (!(buf = calloc(n > 0 ? (size_t)n : 1, size)))
        r_fail(r, PST_ENOMEM, "%s: out of memory", lab);
    else if (n > 0 && (dataset ? H5Dread(obj, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)
                               : H5Aread(obj, t, buf)) < 0)
        r_fail(r, PST_EFORMAT, "%s: damaged (checksum mismatch or unreadable)", lab);
    for (int i = 0; buf && r->rc == PST_OK && i < n; i++) {
        const char *e = buf + (size_t)i * size;
        const size_t len = strnlen(e, size);
        char q[200];
        if (len != strlen(expect[i]) || memcmp(e, expect[i], len) != 0)
            r_fail(r, PST_EFORMAT, "%s: entry %d is '%s', expected '%s'", lab, i,
                   quoted(q, sizeof q, e, len), expect[i]);
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

/* The Keras part: layer_names and weight_names as the model has them, then the weights. */
static void read_keras(reader *r, hid_t file, eng_ckpt *c, const eng_model *m) {
    const char *layers[ENG_MAX_LAYERS];
    for (int i = 0; i < m->n; i++)
        layers[i] = m->layers[i].name;
    r_check_strs(r, file, "layer_names", 0, layers, m->n);
    for (int i = 0; i < m->n && r->rc == PST_OK; i++) {
        int idx[ENG_MAX_TENSORS];
        const int nt = layer_tensors(m, layers[i], idx);
        char names[ENG_MAX_TENSORS][ENG_NAME_MAX + 2];
        const char *wn[ENG_MAX_TENSORS];
        for (int j = 0; j < nt; j++) {
            snprintf(names[j], sizeof names[j], "%s:0", m->layout.tensors[idx[j]].name);
            wn[j] = names[j];
        }
        if (!path_exists(file, layers[i])) {
            r_fail(r, PST_EFORMAT, "group /%s (a layer of %s): missing", layers[i], c->model);
            break;
        }
        hid_t g = H5Gopen2(file, layers[i], H5P_DEFAULT);
        if (g < 0) {
            r_fail(r, PST_EFORMAT, "group /%s: damaged (unreadable)", layers[i]);
            break;
        }
        r_check_strs(r, g, "weight_names", 0, wn, nt);
        for (int j = 0; j < nt; j++) {
            const eng_tensor_info *t = &m->layout.tensors[idx[j]];
            hsize_t dims[ENG_MAX_DIMS];
            tensor_dims(t, dims);
            r_dataset(r, g, names[j], F_F32, t->ndim, dims, c->weights + t->offset);
        }
        H5Gclose(g);
    }
}

/* /pstrain/layout describes the flat vector to h5py users: it must be the model's. */
static void read_layout(reader *r, hid_t g, const eng_model *m) {
    const eng_layout *lay = &m->layout;
    const char *names[ENG_MAX_TENSORS];
    for (int i = 0; i < lay->n; i++)
        names[i] = lay->tensors[i].name;
    r_check_strs(r, g, "layout/names", 1, names, lay->n);
    uint64_t offsets[ENG_MAX_TENSORS], counts[ENG_MAX_TENSORS];
    const hsize_t nt = (hsize_t)lay->n;
    r_dataset(r, g, "layout/offsets", F_U64, 1, &nt, offsets);
    r_dataset(r, g, "layout/counts", F_U64, 1, &nt, counts);
    for (int i = 0; i < lay->n && r->rc == PST_OK; i++)
        if (offsets[i] != lay->tensors[i].offset || counts[i] != lay->tensors[i].count)
            r_fail(r, PST_EFORMAT,
                   "/pstrain/layout: %s at offset %llu with %llu floats, %s has it at %zu with %zu",
                   lay->tensors[i].name, (unsigned long long)offsets[i],
                   (unsigned long long)counts[i], m->def->name, lay->tensors[i].offset,
                   lay->tensors[i].count);
}

/* The slots of optimizer kind in group name of /pstrain ("optimizer", which also holds
 * iterations, or "optimizer_2"), n floats each, into slots[] and *nslots. The group holds those
 * and nothing else: a file whose slots are another optimizer's is refused rather than half
 * read. */
static void read_slots(reader *r, hid_t g, const char *name, eng_optim_kind kind, uint64_t n,
                       float **slots, int *nslots) {
    if (r->rc != PST_OK)
        return;
    const char *kname = eng_optim_kind_name(kind);
    hid_t opt = path_exists(g, name) ? H5Gopen2(g, name, H5P_DEFAULT) : -1;
    H5G_info_t info;
    if (opt < 0 || H5Gget_info(opt, &info) < 0) {
        r_fail(r, PST_EFORMAT, "group /pstrain/%s: missing or damaged", name);
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
            known |= strcmp(link, slot_name(kind, s)) == 0;
        char q[200];
        if (!known)
            r_fail(r, PST_EFORMAT, "/pstrain/%s/%s is not a slot of %s (it keeps %s)", name,
                   quoted(q, sizeof q, link, strlen(link)), kname,
                   kind == ENG_OPT_ADAM ? "m and v" : "accumulator");
    }
    H5Gclose(opt);
    *nslots = eng_optim_nslots(kind);
    const hsize_t dim = n;
    for (int s = 0; s < *nslots && r->rc == PST_OK; s++) {
        char path[64];
        snprintf(path, sizeof path, "%s/%s", name, slot_name(kind, s));
        slots[s] = pst_alloc(sizeof(float) * n);
        r_dataset(r, g, path, F_F32, 1, &dim, slots[s]);
    }
}

/* An optimizer's hyperparameters (float32 attributes of loc) into o. */
static void read_optim_fields(reader *r, hid_t loc, eng_optim_cfg *o) {
    for (int i = 0; i < NOPTIM_FIELDS; i++)
        r_attr(r, loc, optim_fields[i].name, F_F32, (char *)o + optim_fields[i].offset);
}

/* The string attribute optimizer of loc, parsed into o->kind. where starts the message that
 * refuses an unknown kind: "" for /pstrain, "/pstrain/optimizer_2: " for the second. */
static void read_optim_kind(reader *r, hid_t loc, eng_optim_cfg *o, const char *where) {
    char kind[16] = "", q[80];
    r_str_attr(r, loc, "optimizer", kind, sizeof kind);
    if (r->rc != PST_OK)
        return;
    const int k = eng_optim_kind_parse(kind);
    if (k < 0)
        r_fail(r, PST_EFORMAT, "%soptimizer '%s' is not one pstrain knows (adam, rmsprop)", where,
               quoted(q, sizeof q, kind, strlen(kind)));
    o->kind = k < 0 ? ENG_OPT_ADAM : (eng_optim_kind)k;
}

/* Part p >= 1's optimizer, /pstrain/optimizer_<p + 1> (its slots are read by read_slots). A
 * group for a part the model does not have must not be there: a file that half says it has
 * more parts is refused. */
static void read_part_optims(reader *r, hid_t g, eng_ckpt *c, const eng_model *m) {
    char name[32], where[64];
    optim_group(c->nparts, name, sizeof name);
    if (r->rc == PST_OK && path_exists(g, name))
        r_fail(r, PST_EFORMAT, "group /pstrain/%s: present, but %s has %d optimizer%s", name,
               m->def->name, c->nparts, c->nparts == 1 ? " (no split)" : "s, one a part");
    for (int p = 1; p < c->nparts && r->rc == PST_OK; p++) {
        eng_ckpt_part *part = &c->parts[p];
        optim_group(p, name, sizeof name);
        const int present = path_exists(g, name);
        hid_t og = present ? H5Gopen2(g, name, H5P_DEFAULT) : -1;
        if (og < 0) {
            r_fail(r, PST_EFORMAT,
                   "group /pstrain/%s: %s (%s keeps an optimizer for its %s, elements "
                   "%llu..%llu)",
                   name, present ? "damaged (unreadable)" : "missing", m->def->name, part->name,
                   (unsigned long long)part->offset,
                   (unsigned long long)(part->offset + part->total));
            return;
        }
        snprintf(where, sizeof where, "/pstrain/%s: ", name);
        read_optim_fields(r, og, &part->optim);
        read_optim_kind(r, og, &part->optim, where);
        if (r->rc == PST_OK)
            r->rc = check_optim(&part->optim, name, r->path, PST_EFORMAT, r->err, r->errlen);
        H5Gclose(og);
    }
}

/* optimizer/iterations, (nruns, 3) rows of (lo, n, iterations) tiling [0, total), into each
 * part's runs, relative to the part (a run across a part's end is cut there). */
static void read_runs(reader *r, hid_t g, eng_ckpt *c) {
    char lab[LABEL_LEN];
    hsize_t dims[2];
    hid_t d = r_open_dataset(r, g, "optimizer/iterations", 2, NULL, dims, lab);
    if (d < 0)
        return;
    H5Dclose(d);
    if (dims[1] != 3 || dims[0] < 1 || dims[0] > c->total || dims[0] > INT_MAX)
        r_fail(r, PST_EFORMAT, "%s: shape (%llu, %llu), expected (n, 3) with 1 <= n <= %llu", lab,
               (unsigned long long)dims[0], (unsigned long long)dims[1],
               (unsigned long long)c->total);
    else if (!fits(r, dims[0], 3 * sizeof(int64_t)))
        r_too_big(r, lab, dims[0], 3 * sizeof(int64_t));
    if (r->rc != PST_OK)
        return;
    int64_t *rows = pst_malloc(sizeof(int64_t) * 3 * dims[0]);
    eng_ckpt_iters *all = pst_malloc(sizeof *all * dims[0]);
    r_dataset(r, g, "optimizer/iterations", F_I64, 2, dims, rows);
    const int nruns = (int)dims[0];
    for (int i = 0; i < nruns && r->rc == PST_OK; i++) {
        /* Negative lo or n become huge here, which check_runs refuses. */
        all[i].lo = (uint64_t)rows[3 * i];
        all[i].n = (uint64_t)rows[3 * i + 1];
        all[i].iterations = rows[3 * i + 2];
    }
    if (r->rc == PST_OK)
        r->rc = check_runs(all, nruns, c->total, r->path, PST_EFORMAT, r->err, r->errlen);
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
static void read_ema(reader *r, hid_t g, eng_ckpt *c) {
    if (r->rc != PST_OK)
        return;
    const htri_t has_decay = H5Aexists(g, "ema_decay");
    const int has_ema = path_exists(g, "ema");
    if (has_decay < 0 || (has_decay > 0) != has_ema) {
        r_fail(r, PST_EFORMAT, "/pstrain: ema and @ema_decay go together, found %s",
               has_ema ? "ema alone" : "@ema_decay alone");
        return;
    }
    if (!has_ema)
        return;
    if (c->nparts < 2) {
        r_fail(r, PST_EFORMAT, "/pstrain/ema: only models in two parts keep one, not %s", c->model);
        return;
    }
    eng_ckpt_part *first = &c->parts[0];
    r_attr(r, g, "ema_decay", F_F64, &first->ema_decay);
    if (r->rc == PST_OK && !(first->ema_decay > 0.0 && first->ema_decay < 1.0))
        r_fail(r, PST_EFORMAT, "/pstrain/@ema_decay is %g, expected in (0, 1)", first->ema_decay);
    const hsize_t n = first->total;
    if (r->rc == PST_OK)
        first->ema = pst_alloc(sizeof(float) * first->total);
    r_dataset(r, g, "ema", F_F32, 1, &n, first->ema);
}

/* /pstrain/vocab, when the model reads text: the tokenizer's words, one a line. */
static void read_vocab(reader *r, hid_t g, eng_ckpt *c) {
    if (r->rc != PST_OK || !path_exists(g, "vocab"))
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
        r_fail(r, PST_EFORMAT, "dataset /pstrain/vocab: expected a non-empty 1-D byte array");
        return;
    }
    if (!fits(r, n, 1)) {
        r_too_big(r, "dataset /pstrain/vocab", n, 1);
        return;
    }
    if (!(c->vocab = pst_alloc((size_t)n + 1))) {
        r_fail(r, PST_ENOMEM, "out of memory for a vocabulary of %llu bytes",
               (unsigned long long)n);
        return;
    }
    r_dataset(r, g, "vocab", F_U8, 1, &n, c->vocab);
    c->vocab[n] = '\0';
    c->vocab_bytes = n;
}

/* H5Aiterate2 callback: attribute name of /pstrain into the meta, unless it is the engine's.
 * Scalars of the meta's types keep their value; anything else is kept as ENG_META_OTHER. */
static herr_t meta_attr(hid_t g, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    reader *r = data;
    eng_ckpt_meta *m = r->meta;
    if (engine_attr(name))
        return 0;
    char q[200];
    if (strlen(name) >= ENG_CKPT_META_NAME || m->nattrs == ENG_CKPT_META_ATTRS) {
        r_fail(r, PST_EFORMAT, "attribute %s of /pstrain: %s", quoted(q, 80, name, strlen(name)),
               m->nattrs == ENG_CKPT_META_ATTRS ? "more attributes than pstrain keeps"
                                                : "name longer than pstrain keeps");
        return -1;
    }
    eng_meta_attr *a = &m->attrs[m->nattrs++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = ENG_META_OTHER;
    hid_t at = H5Aopen(g, name, H5P_DEFAULT);
    hid_t t = at < 0 ? -1 : H5Aget_type(at), s = at < 0 ? -1 : H5Aget_space(at);
    const int scalar = s >= 0 && H5Sget_simple_extent_type(s) == H5S_SCALAR;
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    if (at >= 0)
        H5Aclose(at);
    if (at < 0 || !scalar)
        return r->rc == PST_OK ? 0 : -1;
    static const struct {
        field_type ft;
        eng_meta_type mt;
        size_t off;
    } kinds[] = {{F_I32, ENG_META_I32, offsetof(eng_meta_attr, i32)},
                 {F_I64, ENG_META_I64, offsetof(eng_meta_attr, i64)},
                 {F_F64, ENG_META_F64, offsetof(eng_meta_attr, f64)}};
    at = H5Aopen(g, name, H5P_DEFAULT);
    t = H5Aget_type(at);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (H5Tequal(t, file_type(kinds[k].ft)) > 0) {
            r_attr(r, g, name, kinds[k].ft, (char *)a + kinds[k].off);
            a->type = kinds[k].mt;
        }
    const int str = H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0;
    H5Tclose(t);
    H5Aclose(at);
    if (str) {
        r_str_attr(r, g, name, a->str, sizeof a->str);
        a->type = ENG_META_STR;
    }
    return r->rc == PST_OK ? 0 : -1;
}

/* The attributes of /pstrain the engine does not know, in the order of their names. */
static void read_meta_attrs(reader *r, hid_t g, eng_ckpt_meta *m) {
    if (r->rc != PST_OK)
        return;
    r->meta = m;
    hsize_t idx = 0;
    if (H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, meta_attr, r) < 0)
        r_fail(r, PST_EFORMAT, "attributes of /pstrain: damaged (unreadable)");
}

/* H5Literate2 callback: every int64 array in a group of /pstrain the engine does not know
 * (name) into the meta, its length checked against the file's before it is allocated. */
static herr_t meta_group(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    reader *r = data;
    eng_ckpt_meta *m = r->meta;
    if (engine_group(name))
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
        char link[64] = "", path[2 * ENG_CKPT_META_NAME + 8], lab[LABEL_LEN], q[200];
        const ssize_t len = H5Lget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, link,
                                               sizeof link, H5P_DEFAULT);
        snprintf(path, sizeof path, "%s/%s", name, link);
        if (len < 0 || strlen(path) >= 2 * ENG_CKPT_META_NAME ||
            m->narrays == ENG_CKPT_META_ARRAYS) {
            r_fail(r, PST_EFORMAT, "/pstrain/%s: %s", quoted(q, 120, path, strlen(path)),
                   m->narrays == ENG_CKPT_META_ARRAYS ? "more arrays than pstrain keeps"
                                                      : "name longer than pstrain keeps");
            break;
        }
        hsize_t n = 0;
        hid_t d = r_open_dataset(r, g, path, 1, NULL, &n, lab);
        if (d >= 0)
            H5Dclose(d);
        if (r->rc == PST_OK && !fits(r, n, sizeof(int64_t)))
            r_too_big(r, lab, n, sizeof(int64_t));
        if (r->rc != PST_OK)
            break;
        eng_meta_array *a = &m->arrays[m->narrays++];
        snprintf(a->name, sizeof a->name, "%s", path);
        a->n = n;
        a->v = pst_alloc(sizeof(int64_t) * (n ? n : 1));
        r_dataset(r, g, path, F_I64, 1, &n, a->v);
    }
    H5Oclose(obj);
    return r->rc == PST_OK ? 0 : -1;
}

/* The int64 arrays in /pstrain's groups the engine does not know, in the order of names. */
static void read_meta_arrays(reader *r, hid_t g, eng_ckpt_meta *m) {
    if (r->rc != PST_OK)
        return;
    r->meta = m;
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, meta_group, r) < 0)
        r_fail(r, PST_EFORMAT, "groups of /pstrain: damaged (unreadable)");
}

/* Everything, into c (whose arrays the caller frees on failure) and m. */
static void read_ckpt(reader *r, hid_t file, eng_ckpt *c, eng_model *m) {
    if (!path_exists(file, "pstrain")) {
        r_fail(r, PST_EFORMAT, "not a pstrain checkpoint (no /pstrain group)");
        return;
    }
    hid_t g = H5Gopen2(file, "pstrain", H5P_DEFAULT);
    if (g < 0) {
        r_fail(r, PST_EFORMAT, "not a pstrain checkpoint (/pstrain is not a group)");
        return;
    }
    int32_t format = 0;
    r_attr(r, g, "format_version", F_I32, &format);
    if (r->rc == PST_OK && format != ENG_CKPT_FORMAT)
        r_fail(r, PST_EFORMAT, "format_version %d, this pstrain reads %d", format, ENG_CKPT_FORMAT);
    r_str_attr(r, g, "model", c->model, sizeof c->model);
    const eng_model_def *def = r->rc == PST_OK ? eng_model_find(c->model) : NULL;
    char q[300];
    if (r->rc == PST_OK && !def)
        r_fail(r, PST_EFORMAT, "model '%s' is not one pstrain knows",
               quoted(q, sizeof q, c->model, strlen(c->model)));
    char msg[256];
    if (r->rc == PST_OK && eng_model_build(m, def, msg, sizeof msg) != PST_OK)
        r_fail(r, PST_EFORMAT, "%s", msg);
    if (r->rc == PST_OK)
        set_parts(c, m);
    for (int i = 0; i < NFIELDS; i++)
        r_attr(r, g, fields[i].name, fields[i].type, (char *)c + fields[i].offset);
    read_meta_attrs(r, g, &c->meta);
    read_optim_fields(r, g, &c->parts[0].optim);
    const uint64_t sum = r->rc == PST_OK ? eng_layout_checksum(&m->layout) : 0;
    if (r->rc == PST_OK && c->layout_checksum != sum)
        r_fail(r, PST_EFORMAT, "layout checksum 0x%016llx does not match %s's 0x%016llx",
               (unsigned long long)c->layout_checksum, m->def->name, (unsigned long long)sum);
    if (r->rc == PST_OK && c->total != m->layout.total)
        r_fail(r, PST_EFORMAT, "total %llu does not match %s's %zu floats",
               (unsigned long long)c->total, m->def->name, m->layout.total);
    /* Where the second part starts; absent in files of one part: 0, which must then be the
     * model's too. */
    const htri_t has_split = H5Aexists(g, "split"); /* < 0: r_attr says what is wrong */
    uint64_t split = 0;
    const uint64_t want = r->rc == PST_OK && m->nparts > 1 ? m->parts[1].offset : 0;
    if (r->rc == PST_OK && has_split != 0)
        r_attr(r, g, "split", F_U64, &split);
    if (r->rc == PST_OK && split != want)
        r_fail(r, PST_EFORMAT, "/pstrain/@split is %llu%s, expected %llu for %s",
               (unsigned long long)split, has_split > 0 ? "" : " (absent)",
               (unsigned long long)want, m->def->name);
    read_optim_kind(r, g, &c->parts[0].optim, "");
    if (r->rc == PST_OK)
        r->rc =
            check_optim(&c->parts[0].optim, "optimizer", r->path, PST_EFORMAT, r->err, r->errlen);
    read_part_optims(r, g, c, m);
    if (r->rc != PST_OK)
        goto out;

    c->weights = pst_alloc(sizeof(float) * c->total); /* total is the model's: checked */
    read_keras(r, file, c, m);
    read_layout(r, g, m);
    for (int p = 0; p < c->nparts; p++) {
        char name[32];
        eng_ckpt_part *part = &c->parts[p];
        read_slots(r, g, optim_group(p, name, sizeof name), part->optim.kind, part->total,
                   part->slots, &part->nslots);
    }
    read_ema(r, g, c);
    read_runs(r, g, c);
    read_meta_arrays(r, g, &c->meta);
    read_vocab(r, g, c);
out:
    H5Gclose(g);
}

/* The file's first bytes, before HDF5 parses anything: the HDF5 signature at offset 0 (pstrain
 * writes no user block), then a superblock of version 2 or later, as the format bounds (1.8,
 * latest) of every checkpoint pstrain writes give. In those, HDF5 checks its metadata's
 * checksums before it uses them. Earlier versions carry none, and on damaged files of that
 * kind libhdf5 1.10 has read freed memory and asked for absurd allocations (tests/fuzz):
 * such files are refused here instead. Returns PST_OK, or PST_EIO / PST_EFORMAT with err. */
static int check_superblock(const char *path, char *err, size_t errlen) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[9];
    FILE *f = fopen(path, "rb");
    if (!f)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    const size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got == 0)
        return pst_err(err, errlen, PST_EFORMAT, "%s: empty file (truncated?)", path);
    if (got < sizeof head || memcmp(head, sig, sizeof sig) != 0)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: not an HDF5 file or truncated (no HDF5 signature at its start)", path);
    if (head[8] < 2)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: HDF5 superblock version %d: not a pstrain checkpoint (pstrain writes "
                       "version 2 or later, whose metadata HDF5 checks)",
                       path, head[8]);
    return PST_OK;
}

int eng_ckpt_read(const char *path, eng_ckpt *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    struct stat st;
    if (stat(path, &st) != 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return pst_err(err, errlen, PST_EARG,
                       "%s: is a directory, not a checkpoint file (its latest names one)", path);
    const int pre = check_superblock(path, err, errlen);
    if (pre != PST_OK)
        return pre;
    h5_quiet();
    hid_t fapl = h5_fapl(0);
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
    reader r = {path, err, errlen, PST_OK, (uint64_t)st.st_size, NULL};
    eng_ckpt t;
    eng_model m;
    memset(&t, 0, sizeof t);
    read_ckpt(&r, file, &t, &m);
    if (H5Fclose(file) < 0)
        r_fail(&r, PST_EIO, "cannot close");
    if (r.rc != PST_OK) {
        eng_ckpt_free(&t);
        return r.rc;
    }
    *c = t;
    return PST_OK;
}

void eng_ckpt_free(eng_ckpt *c) {
    pst_free(c->weights);
    for (int p = 0; p < ENG_MAX_PARTS; p++) {
        pst_free(c->parts[p].slots[0]);
        pst_free(c->parts[p].slots[1]);
        pst_free(c->parts[p].ema);
        pst_free(c->parts[p].runs);
    }
    eng_ckpt_meta_clear(&c->meta);
    pst_free(c->vocab);
    memset(c, 0, sizeof *c);
}

/* --- saving into a directory --- */

/* dir + "/" + name into out; -1 when it does not fit. */
static int join(char *out, size_t len, const char *dir, const char *name) {
    int n = snprintf(out, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* fsync of a directory: what makes a rename in it durable. */
static int fsync_dir(const char *dir, char *err, size_t errlen) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open to fsync: %s", dir, strerror(errno));
    int rc = fsync(fd);
    const int e = errno;
    close(fd);
    /* Some file systems cannot fsync a directory (EINVAL): nothing more can be done there. */
    if (rc != 0 && e != EINVAL)
        return pst_err(err, errlen, PST_EIO, "%s: fsync failed: %s", dir, strerror(e));
    return PST_OK;
}

/* tmp -> final, then the directory's fsync makes the new name durable. */
static int rename_durably(const char *tmp, const char *final, const char *dir, char *err,
                          size_t errlen) {
    if (rename(tmp, final) != 0) {
        const int e = errno;
        unlink(tmp);
        return pst_err(err, errlen, PST_EIO, "%s: cannot rename to %s: %s", tmp, final,
                       strerror(e));
    }
    return fsync_dir(dir, err, errlen);
}

/* The step of a file named exactly as eng_ckpt_save names them ("ckpt-<step>.h5"), into
 * *step; 0 for any other name, which pruning then leaves alone. */
static int ckpt_step(const char *name, int64_t *step) {
    if (strncmp(name, "ckpt-", 5) != 0 || name[5] < '0' || name[5] > '9')
        return 0;
    char *end;
    errno = 0;
    const long long s = strtoll(name + 5, &end, 10);
    char canon[64];
    snprintf(canon, sizeof canon, "ckpt-%lld.h5", s);
    if (errno != 0 || strcmp(end, ".h5") != 0 || strcmp(canon, name) != 0)
        return 0;
    *step = s;
    return 1;
}

static int by_step_desc(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Removes what killed writers left: files named TMP_PREFIX... (one writer per directory). */
static void remove_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_LEN];
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0 &&
            join(path, sizeof path, dir, e->d_name) == 0)
            unlink(path);
    closedir(d);
}

/* Deletes all but the keep checkpoints with the highest steps, never latest_name. Failures
 * are ignored: the checkpoint is already saved, and the next save tries again. */
static void prune(const char *dir, int keep, const char *latest_name) {
    if (keep <= 0)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    int64_t *steps = NULL, step;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!ckpt_step(e->d_name, &step))
            continue;
        if (n == cap) {
            int64_t *more = realloc(steps, sizeof *steps * (cap = cap ? 2 * cap : 16));
            if (!more)
                break;
            steps = more;
        }
        steps[n++] = step;
    }
    closedir(d);
    if (steps)
        qsort(steps, n, sizeof *steps, by_step_desc);
    for (size_t i = (size_t)keep; i < n; i++) {
        char name[64], path[PATH_LEN];
        snprintf(name, sizeof name, "ckpt-%lld.h5", (long long)steps[i]);
        if (strcmp(name, latest_name) != 0 && join(path, sizeof path, dir, name) == 0)
            unlink(path);
    }
    free(steps);
}

int eng_ckpt_save(const char *dir, int64_t step, const eng_ckpt *c, const eng_model *m, int keep,
                  char *path_out, size_t path_len, char *err, size_t errlen) {
    char name[64], tmp_name[96], final[PATH_LEN], tmp[PATH_LEN], latest[PATH_LEN],
        latest_tmp[PATH_LEN], line[80];
    snprintf(name, sizeof name, "ckpt-%lld.h5", (long long)step);
    snprintf(line, sizeof line, "%s\n", name);
    snprintf(tmp_name, sizeof tmp_name, TMP_PREFIX "%ld-%s", (long)getpid(), name);
    if (join(final, sizeof final, dir, name) || join(tmp, sizeof tmp, dir, tmp_name) ||
        join(latest, sizeof latest, dir, "latest") ||
        join(latest_tmp, sizeof latest_tmp, dir, TMP_PREFIX "latest") ||
        (path_out && strlen(final) >= path_len))
        return pst_err(err, errlen, PST_EARG, "%s: path too long", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pst_err(err, errlen, PST_EIO, "%s: cannot create directory: %s", dir,
                       strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pst_err(err, errlen, PST_EIO, "%s: not a directory", dir);
    remove_leftovers(dir);

    /* The checkpoint under a temporary name, durable before it gets its real one. */
    int rc = write_ckpt(tmp, c, m, 1, err, errlen);
    if (rc == PST_OK)
        rc = rename_durably(tmp, final, dir, err, errlen);
    /* Only then does latest name it, replaced the same way. */
    if (rc == PST_OK)
        rc = write_bytes(latest_tmp, line, strlen(line), 1, err, errlen);
    if (rc == PST_OK)
        rc = rename_durably(latest_tmp, latest, dir, err, errlen);
    if (rc != PST_OK) {
        unlink(tmp);
        unlink(latest_tmp);
        return rc;
    }
    prune(dir, keep, name);
    if (path_out)
        snprintf(path_out, path_len, "%s", final);
    return PST_OK;
}

int eng_ckpt_resolve(const char *file_or_dir, char *out, size_t outlen, char *err, size_t errlen) {
    struct stat st;
    if (stat(file_or_dir, &st) != 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", file_or_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if ((size_t)snprintf(out, outlen, "%s", file_or_dir) >= outlen)
            return pst_err(err, errlen, PST_EARG, "%s: path too long", file_or_dir);
        return PST_OK;
    }
    char latest[PATH_LEN];
    if (join(latest, sizeof latest, file_or_dir, "latest"))
        return pst_err(err, errlen, PST_EARG, "%s: path too long", file_or_dir);
    FILE *f = fopen(latest, "rb");
    if (!f && errno == ENOENT)
        return pst_err(err, errlen, PST_EIO, "%s: no checkpoint in it (no %s)", file_or_dir,
                       latest);
    if (!f)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", latest, strerror(errno));
    char name[300];
    size_t n = fread(name, 1, sizeof name - 1, f);
    fclose(f);
    name[n] = '\0';
    if (n > 0 && name[n - 1] == '\n')
        name[--n] = '\0';
    if (n == 0)
        return pst_err(err, errlen, PST_EFORMAT, "%s: empty, expected the name of a checkpoint",
                       latest);
    if (n > 255 || strlen(name) != n || strchr(name, '\n'))
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: expected one line naming a checkpoint file in %s", latest, file_or_dir);
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: names '%s', expected a file name in %s (no '/')", latest, name,
                       file_or_dir);
    if (join(out, outlen, file_or_dir, name))
        return pst_err(err, errlen, PST_EARG, "%s: path too long", file_or_dir);
    if (stat(out, &st) != 0 || !S_ISREG(st.st_mode))
        return pst_err(err, errlen, PST_EFORMAT, "%s: names %s, which does not exist as a file",
                       latest, out);
    return PST_OK;
}

/* --- inspect --- */

/* "<which>: adam (lr ..., ...)": the hyperparameters the optimizer uses. */
static void print_optim(FILE *out, const char *which, const eng_optim_cfg *o) {
    if (o->kind == ENG_OPT_ADAM)
        fprintf(out, "%s: adam (lr %g, beta1 %g, beta2 %g, epsilon %g)\n", which, o->lr, o->beta1,
                o->beta2, o->epsilon);
    else
        fprintf(out, "%s: rmsprop (lr %g, rho %g, epsilon %g, clipvalue %g, decay %g)\n", which,
                o->lr, o->rho, o->epsilon, o->clipvalue, o->decay);
}

void eng_ckpt_print(const eng_ckpt *c, const eng_model *m, FILE *out) {
    fprintf(out, "checkpoint format %d: model %s, %llu floats, layout checksum 0x%016llx\n",
            ENG_CKPT_FORMAT, c->model, (unsigned long long)c->total,
            (unsigned long long)c->layout_checksum);
    fprintf(out, "run:");
    for (int i = 0; i < c->meta.nattrs; i++) {
        const eng_meta_attr *a = &c->meta.attrs[i];
        fprintf(out, "%s %s ", i ? "," : "", a->name);
        if (a->type == ENG_META_I32)
            fprintf(out, "%d", a->i32);
        else if (a->type == ENG_META_I64)
            fprintf(out, "%lld", (long long)a->i64);
        else if (a->type == ENG_META_F64)
            fprintf(out, "%g", a->f64);
        else if (a->type == ENG_META_STR)
            fprintf(out, "%s", a->str);
        else
            fprintf(out, "(not a scalar pstrain reads)");
    }
    fprintf(out, "\n");
    if (c->nparts == 1) {
        print_optim(out, "optimizer", &c->parts[0].optim);
    } else {
        for (int p = 0; p < c->nparts; p++) {
            const eng_ckpt_part *part = &c->parts[p];
            char which[96];
            snprintf(which, sizeof which, "optimizer %d (elements %llu..%llu)", p + 1,
                     (unsigned long long)part->offset,
                     (unsigned long long)(part->offset + part->total));
            print_optim(out, which, &part->optim);
        }
        if (c->parts[0].ema)
            fprintf(out, "moving average of elements 0..%llu: decay %g\n",
                    (unsigned long long)c->parts[0].total, c->parts[0].ema_decay);
    }
    int nruns = 0;
    for (int p = 0; p < c->nparts; p++)
        nruns += c->parts[p].nruns;
    fprintf(out, "update counts: %d run%s\n", nruns, nruns == 1 ? "" : "s");
    for (int p = 0; p < c->nparts; p++)
        for (int i = 0; i < c->parts[p].nruns; i++) {
            const eng_ckpt_iters *run = &c->parts[p].runs[i];
            fprintf(out, "  [%llu, %llu): %lld\n",
                    (unsigned long long)(c->parts[p].offset + run->lo),
                    (unsigned long long)(c->parts[p].offset + run->lo + run->n),
                    (long long)run->iterations);
        }
    for (int i = 0; i < c->meta.narrays; i++) {
        fprintf(out, "%s:", c->meta.arrays[i].name);
        for (uint64_t j = 0; j < c->meta.arrays[i].n; j++)
            fprintf(out, " %lld", (long long)c->meta.arrays[i].v[j]);
        fprintf(out, "\n");
    }
    int width = 6; /* the name column fits the longest name */
    for (int i = 0; i < m->layout.n; i++)
        if ((int)strlen(m->layout.tensors[i].name) > width)
            width = (int)strlen(m->layout.tensors[i].name);
    fprintf(out, "%-*s %-16s %13s %13s %13s %13s\n", width, "tensor", "shape", "min", "max", "mean",
            "l2");
    for (int i = 0; i < m->layout.n; i++) {
        const eng_tensor_info *t = &m->layout.tensors[i];
        const float *w = c->weights + t->offset;
        float lo = w[0], hi = w[0];
        double sum = 0.0, sq = 0.0;
        for (size_t j = 0; j < t->count; j++) {
            lo = w[j] < lo ? w[j] : lo;
            hi = w[j] > hi ? w[j] : hi;
            sum += w[j];
            sq += (double)w[j] * w[j];
        }
        char shape[64];
        eng_shape_str(shape, sizeof shape, t->ndim, t->shape);
        fprintf(out, "%-*s %-16s %13.6g %13.6g %13.6g %13.6g\n", width, t->name, shape, lo, hi,
                sum / (double)t->count, sqrt(sq));
    }
}
