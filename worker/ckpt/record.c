/* record.c: the run record in a checkpoint's meta, as one table both directions walk. */
#include "worker/ckpt/record.h"

#include "engine/base/base.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define STEPS "workers/steps" /* the meta's array of worker positions */

typedef struct field {
    const char *name;
    eng_meta_type type;
    size_t offset, size; /* in wk_run_record */
} field;

#define FIELD(name, type, member)                                                                  \
    { name, type, offsetof(wk_run_record, member), sizeof(((wk_run_record *)0)->member) }

/* The file's order: files written from a record keep main's bytes. */
static const field fields[] = {
    FIELD("step", ENG_META_I64, step),
    FIELD("epoch", ENG_META_I64, epoch),
    FIELD("epoch_step", ENG_META_I64, epoch_step),
    FIELD("mode", ENG_META_STR, mode),
    FIELD("staleness", ENG_META_I32, staleness),
    FIELD("batch", ENG_META_I32, batch),
    FIELD("seed", ENG_META_I64, seed),
    FIELD("servers", ENG_META_I32, servers),
    FIELD("workers", ENG_META_I32, workers),
    FIELD("val_split", ENG_META_F64, val_split),
    FIELD("epochs", ENG_META_I64, epochs),
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))

static const char *const type_names[] = {"int32", "int64", "float64", "string"};

/* Whether name is a field of the record. */
static int is_field(const char *name) {
    for (int i = 0; i < NFIELDS; i++)
        if (strcmp(name, fields[i].name) == 0)
            return 1;
    return 0;
}
static const char *const modes[] = {"sync", "async", "ssp", "local"};

/* Bounds that keep the record's arithmetic in int64: a resumed run counts on from step and
 * epoch (ENG_CKPT_COUNT_MAX: see ckpt.h), and rescales epoch_step by workers * batch to
 * another job's shape (worker/save.c), which stays below 2^63 with an epoch of fewer than
 * 2^32 steps (a data set's count is 32-bit: IDX, IMDB), at most 2^15 workers and batches of at
 * most 65536 (--batch's bound). */
#define MAX_EPOCH_STEP INT64_C(4294967295)
#define MAX_WORKERS 32768
#define MAX_BATCH 65536

/* lo <= v <= hi, or PST_EFORMAT naming the attribute. */
static int in_range(const char *name, int64_t v, int64_t lo, int64_t hi, char *err, size_t errlen) {
    if (v >= lo && v <= hi)
        return PST_OK;
    return pst_err(err, errlen, PST_EFORMAT,
                   "attribute %s of /pstrain is %lld, expected %lld to %lld", name, (long long)v,
                   (long long)lo, (long long)hi);
}

int wk_record_check(const wk_run_record *r, char *err, size_t errlen) {
    int rc;
    if ((rc = in_range("step", r->step, 0, ENG_CKPT_COUNT_MAX, err, errlen)) ||
        (rc = in_range("epoch", r->epoch, 1, ENG_CKPT_COUNT_MAX, err, errlen)) ||
        (rc = in_range("epoch_step", r->epoch_step, 0, MAX_EPOCH_STEP, err, errlen)))
        return rc;
    int known = 0;
    if (memchr(r->mode, '\0', sizeof r->mode))
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
            known |= strcmp(r->mode, modes[i]) == 0;
    if (!known) {
        char q[64];
        return pst_err(err, errlen, PST_EFORMAT, "mode '%s' is not sync, async, ssp or local",
                       eng_ckpt_quoted(q, sizeof q, r->mode, strnlen(r->mode, sizeof r->mode)));
    }
    /* staleness and servers as their flags bound them (launch/cmd/flags.c) */
    if ((rc = in_range("staleness", r->staleness, 0, 1000, err, errlen)) ||
        (rc = in_range("batch", r->batch, 1, MAX_BATCH, err, errlen)) ||
        (rc = in_range("servers", r->servers, 0, 4096, err, errlen)) ||
        (rc = in_range("workers", r->workers, 1, MAX_WORKERS, err, errlen)))
        return rc;
    if (!(r->val_split >= 0.0 && r->val_split < 1.0))
        return pst_err(err, errlen, PST_EFORMAT,
                       "attribute val_split of /pstrain is %g, expected in [0, 1)", r->val_split);
    if ((rc = in_range("epochs", r->epochs, 1, ENG_CKPT_COUNT_MAX, err, errlen)))
        return rc;
    for (int i = 0; i < r->workers; i++)
        if (r->worker_steps[i] < 0 || r->worker_steps[i] > ENG_CKPT_COUNT_MAX)
            return pst_err(err, errlen, PST_EFORMAT,
                           "dataset /pstrain/" STEPS ", element %d is %lld, expected 0 to %lld", i,
                           (long long)r->worker_steps[i], (long long)ENG_CKPT_COUNT_MAX);
    return PST_OK;
}

/* Where a numeric attribute of type t keeps its value. */
static size_t value_at(eng_meta_type t) {
    return t == ENG_META_I32   ? offsetof(eng_meta_attr, i32)
           : t == ENG_META_I64 ? offsetof(eng_meta_attr, i64)
                               : offsetof(eng_meta_attr, f64);
}

int wk_record_get(const eng_ckpt *c, wk_run_record *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        const eng_meta_attr *a = eng_ckpt_meta_get(&c->meta, f->name);
        if (!a)
            return pst_err(err, errlen, PST_EFORMAT, "attribute %s of /pstrain: missing", f->name);
        if (a->type != f->type)
            return pst_err(err, errlen, PST_EFORMAT,
                           "attribute %s of /pstrain: expected %s, found another type", f->name,
                           type_names[f->type]);
        char *p = (char *)r + f->offset;
        char q[64];
        if (f->type == ENG_META_STR && strlen(a->str) >= f->size)
            return pst_err(err, errlen, PST_EFORMAT,
                           "attribute %s of /pstrain: '%s' is longer than %zu characters", f->name,
                           eng_ckpt_quoted(q, 44, a->str, strlen(a->str)), f->size - 1);
        if (f->type == ENG_META_STR)
            memcpy(p, a->str, strlen(a->str) + 1);
        else
            memcpy(p, (const char *)a + value_at(a->type), f->size);
    }
    const eng_meta_array *steps = eng_ckpt_meta_get_array(&c->meta, STEPS);
    if (!steps)
        return pst_err(err, errlen, PST_EFORMAT, "dataset /pstrain/" STEPS ": missing");
    if (r->workers >= 1 && steps->n != (uint64_t)r->workers)
        return pst_err(err, errlen, PST_EFORMAT,
                       "dataset /pstrain/" STEPS ": expected shape (%d,), got (%llu,)", r->workers,
                       (unsigned long long)steps->n);
    r->worker_steps = steps->v;
    return wk_record_check(r, err, errlen);
}

void wk_record_put(eng_ckpt *c, const wk_run_record *r) {
    char err[256];
    PST_ASSERT(wk_record_check(r, err, sizeof err) == PST_OK, "%s", err);
    eng_ckpt_meta_clear(&c->meta);
    for (int i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        eng_meta_attr *a = eng_ckpt_meta_put(&c->meta, f->name, f->type);
        const char *p = (const char *)r + f->offset;
        if (f->type == ENG_META_STR)
            snprintf(a->str, sizeof a->str, "%s", p);
        else
            memcpy((char *)a + value_at(a->type), p, f->size);
    }
    eng_ckpt_meta_put_array(&c->meta, STEPS, r->worker_steps, (uint64_t)r->workers);
}

wk_run_record wk_record_of(const eng_ckpt *c) {
    wk_run_record r;
    char err[256];
    PST_ASSERT(wk_record_get(c, &r, err, sizeof err) == PST_OK, "%s", err);
    return r;
}

/* c's meta in the record's order (the file's: main's), anything else after it as it was: the
 * engine reads the meta in the order of its names. Written again, the file's bytes. */
static void file_order(eng_ckpt *c) {
    eng_ckpt_meta *m = &c->meta;
    eng_meta_attr attrs[ENG_CKPT_META_ATTRS];
    int n = 0;
    for (int i = 0; i < NFIELDS; i++)
        for (int j = 0; j < m->nattrs; j++)
            if (strcmp(m->attrs[j].name, fields[i].name) == 0)
                attrs[n++] = m->attrs[j];
    for (int j = 0; j < m->nattrs; j++)
        if (!is_field(m->attrs[j].name))
            attrs[n++] = m->attrs[j];
    memcpy(m->attrs, attrs, sizeof attrs[0] * (size_t)n);
    for (int j = 1; j < m->narrays; j++)
        if (strcmp(m->arrays[j].name, STEPS) == 0) {
            const eng_meta_array steps = m->arrays[j];
            memmove(&m->arrays[1], &m->arrays[0], sizeof steps * (size_t)j);
            m->arrays[0] = steps;
        }
}

/* c as read (rc) from `name`, its record checked into *r: the common end of the readers. */
static int checked(int rc, const char *name, eng_ckpt *c, wk_run_record *r, char *err,
                   size_t errlen) {
    if (rc != PST_OK)
        return rc;
    wk_run_record rec;
    char why[512];
    if ((rc = wk_record_get(c, &rec, why, sizeof why)) != PST_OK) {
        eng_ckpt_free(c);
        return pst_err(err, errlen, rc, "%s: %s", name, why);
    }
    file_order(c);
    if (r)
        *r = rec;
    return PST_OK;
}

int wk_record_read(const char *path, eng_ckpt *c, wk_run_record *r, char *err, size_t errlen) {
    return checked(eng_ckpt_read(path, c, err, errlen), path, c, r, err, errlen);
}

int wk_record_read_image(const void *bytes, size_t len, const char *name, eng_ckpt *c,
                         wk_run_record *r, char *err, size_t errlen) {
    return checked(eng_ckpt_read_image(bytes, len, name, c, err, errlen), name, c, r, err, errlen);
}

void wk_record_print_run(const wk_run_record *r, FILE *out) {
    fprintf(out, "progress: step %lld, epoch %lld (%lld steps into it)\n", (long long)r->step,
            (long long)r->epoch, (long long)r->epoch_step);
    fprintf(out,
            "run: mode %s, staleness %d, batch %d per worker, seed %lld, servers %d, workers %d, "
            "val_split %g, epochs %lld\n",
            r->mode, r->staleness, r->batch, (long long)r->seed, r->servers, r->workers,
            r->val_split, (long long)r->epochs);
}

void wk_record_print_steps(const wk_run_record *r, FILE *out) {
    fprintf(out, "worker steps:");
    for (int i = 0; i < r->workers; i++)
        fprintf(out, " %lld", (long long)r->worker_steps[i]);
    fprintf(out, "\n");
}
