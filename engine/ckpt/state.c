/* state.c: the checkpoint in memory: the fields of /pstrain as tables both directions walk,
 * a model's identity and parts, and the checks writing and reading share (never write what
 * reading would refuse). */
#include "engine/ckpt/format.h"

#include "engine/base/base.h"
#include "engine/ckpt/h5.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const ckpt_field ckpt_fields[CKPT_NFIELDS] = {
    {"layout_checksum", F_U64, offsetof(eng_ckpt, layout_checksum), sizeof(uint64_t)},
    {"total", F_U64, offsetof(eng_ckpt, total), sizeof(uint64_t)},
};

#define OPTIM_FIELD(name, member)                                                                  \
    { name, F_F32, offsetof(eng_optim_cfg, member), sizeof(float) }

const ckpt_field ckpt_optim_fields[CKPT_NOPTIM_FIELDS] = {
    OPTIM_FIELD("lr", lr),           OPTIM_FIELD("beta1", beta1),
    OPTIM_FIELD("beta2", beta2),     OPTIM_FIELD("rho", rho),
    OPTIM_FIELD("epsilon", epsilon), OPTIM_FIELD("clipvalue", clipvalue),
    OPTIM_FIELD("decay", decay),
};

const char *ckpt_slot_name(eng_optim_kind kind, int s) {
    return kind == ENG_OPT_ADAM ? (s == 0 ? "m" : "v") : "accumulator";
}

/* s[0, n) for a message, into buf (len bytes, cut to fit): bytes outside printable ASCII as
 * \xHH, so that what a file holds cannot break the one line it is quoted in (a name with a
 * newline, found by tests/fuzz/fuzz_ckpt) or send control codes to a terminal. Returns buf. */
const char *eng_ckpt_quoted(char *buf, size_t len, const char *s, size_t n) {
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
void ckpt_set_parts(eng_ckpt *c, const eng_model *m) {
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
    ckpt_set_parts(c, m);
}

/* --- checks shared by writing and reading: never write what reading would refuse --- */

/* The ranges a run can be given its optimizer in, in ckpt_optim_fields' order: those of
 * eng_optim_parse's keys (engine/optim.c: --gen-optim, --disc-optim) and of --lr, --clipvalue
 * and --decay (launch/cmd/flags.c), so that a file holds nothing a run could not have been
 * started with. beta1, beta2 and rho below 1 keep 1 - beta from vanishing (beta1 = 1 divides
 * by 1 - beta1^t = 0; beta2 = 1 freezes the second moment); epsilon >= 1e-12 keeps the
 * division by sqrt(v) + epsilon finite while v is 0. A kind's unused fields are written as 0,
 * which every range holds. */
static const float optim_min[CKPT_NOPTIM_FIELDS] = {1e-12f, 0.0f, 0.0f, 0.0f, 1e-12f, 0.0f, 0.0f};
static const float optim_max[CKPT_NOPTIM_FIELDS] = {10.0f, 0.999999f, 0.999999f, 0.999999f,
                                                    1.0f,  1e6f,      1.0f};

/* An optimizer's hyperparameters, each within the range a run can be given it. which is
 * "optimizer" or "optimizer_2", for messages. Returns PST_OK or code with a message naming
 * path and the attribute. */
int ckpt_check_optim(const eng_optim_cfg *o, const char *which, const char *path, int code,
                     char *err, size_t errlen) {
    /* part 0's hyperparameters are attributes of /pstrain itself, the others' of their group */
    const int own = strcmp(which, "optimizer") != 0;
    for (int i = 0; i < CKPT_NOPTIM_FIELDS; i++) {
        float v;
        memcpy(&v, (const char *)o + ckpt_optim_fields[i].offset, sizeof v);
        if (!(v >= optim_min[i] && v <= optim_max[i])) /* NaN fails both */
            return pst_err(err, errlen, code,
                           "%s: attribute %s of /pstrain%s%s is %g, expected a number in [%g, %g]",
                           path, ckpt_optim_fields[i].name, own ? "/" : "", own ? which : "",
                           (double)v, (double)optim_min[i], (double)optim_max[i]);
    }
    return PST_OK;
}

/* Weights, moving averages and first moments above 2^64 (about 1.8e19, the square root of
 * float32's largest value) are refused: their square overflows to Inf (a second moment g*g,
 * the L2 norm inspect prints), and a network with such a weight produces Inf within a layer or
 * two, so no run of ours that was still finite ever saved one (training stops on a non-finite
 * loss or gradient). Below it nothing is refused: a real model's weights are far smaller (ours
 * start under 1 and move by at most lr <= 10 a step, times a bounded ratio), and a bound so
 * wide cannot refuse an unusual run's honest values. Second moments must be >= 0 and finite. */
#define CKPT_VALUE_MAX 18446744073709551616.0f /* 2^64 */

/* x[0, n) of the dataset named lab, each finite and within [lo, hi]; what a value is, for the
 * message ("a weight"). */
static int check_floats(const float *x, uint64_t n, float lo, float hi, const char *lab,
                        const char *what, const char *path, int code, char *err, size_t errlen) {
    for (uint64_t i = 0; i < n; i++)
        if (!(x[i] >= lo && x[i] <= hi)) /* NaN fails both */
            return pst_err(err, errlen, code,
                           "%s: dataset %s, element %llu (row-major) is %g, expected %s: finite, "
                           "in [%g, %g]",
                           path, lab, (unsigned long long)i, (double)x[i], what, (double)lo,
                           (double)hi);
    return PST_OK;
}

int ckpt_check_values(const eng_ckpt *c, const eng_model *m, const char *path, int code, char *err,
                      size_t errlen) {
    char lab[ENG_NAME_MAX * 2 + 64];
    int rc = PST_OK;
    for (int i = 0; i < m->layout.n && rc == PST_OK; i++) {
        const eng_tensor_info *t = &m->layout.tensors[i];
        const char *slash = strchr(t->name, '/');
        /* Keras's dataset: /<layer>/<tensor>:0, the layer the part of the name before '/' */
        snprintf(lab, sizeof lab, "/%.*s/%s:0", slash ? (int)(slash - t->name) : 0, t->name,
                 t->name);
        rc = check_floats(c->weights + t->offset, t->count, -CKPT_VALUE_MAX, CKPT_VALUE_MAX, lab,
                          "a weight", path, code, err, errlen);
    }
    for (int p = 0; p < c->nparts && rc == PST_OK; p++) {
        const eng_ckpt_part *part = &c->parts[p];
        char group[32];
        ckpt_optim_group(p, group, sizeof group);
        for (int s = 0; s < part->nslots && rc == PST_OK; s++) {
            /* Adam's v and RMSprop's accumulator are averages of squares */
            const int second = part->optim.kind == ENG_OPT_ADAM ? s == 1 : 1;
            snprintf(lab, sizeof lab, "/pstrain/%s/%s", group, ckpt_slot_name(part->optim.kind, s));
            rc = check_floats(part->slots[s], part->total, second ? 0.0f : -CKPT_VALUE_MAX,
                              second ? FLT_MAX : CKPT_VALUE_MAX, lab,
                              second ? "a second moment (>= 0)" : "a first moment", path, code, err,
                              errlen);
        }
        if (part->ema && rc == PST_OK)
            rc = check_floats(part->ema, part->total, -CKPT_VALUE_MAX, CKPT_VALUE_MAX,
                              "/pstrain/ema", "a weight's moving average", path, code, err, errlen);
    }
    return rc;
}

/* The update-count runs tile [0, total) in order, each non-empty with iterations >= 0. */
int ckpt_check_runs(const eng_ckpt_iters *runs, int nruns, uint64_t total, const char *path,
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
        if (r->iterations < 0 || r->iterations > ENG_CKPT_COUNT_MAX)
            return pst_err(err, errlen, code,
                           "%s: dataset /pstrain/optimizer/iterations, run %d: iterations %lld, "
                           "expected 0 to %lld",
                           path, i, (long long)r->iterations, (long long)ENG_CKPT_COUNT_MAX);
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
const char *ckpt_optim_group(int p, char *buf, size_t len) {
    if (p == 0)
        snprintf(buf, len, "optimizer");
    else
        snprintf(buf, len, "optimizer_%d", p + 1);
    return buf;
}

/* Whether name is one of /pstrain's own attributes, which the meta cannot hold. */
int ckpt_engine_attr(const char *name) {
    static const char *const own[] = {"format_version", "model", "split", "ema_decay", "optimizer"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strcmp(name, own[i]) == 0)
            return 1;
    for (int i = 0; i < CKPT_NFIELDS; i++)
        if (strcmp(name, ckpt_fields[i].name) == 0)
            return 1;
    for (int i = 0; i < CKPT_NOPTIM_FIELDS; i++)
        if (strcmp(name, ckpt_optim_fields[i].name) == 0)
            return 1;
    return 0;
}

/* Whether name is one of /pstrain's own groups: optimizer, optimizer_<n>, layout. */
int ckpt_engine_group(const char *name) {
    if (strcmp(name, "optimizer") == 0 || strcmp(name, "layout") == 0)
        return 1;
    if (strncmp(name, "optimizer_", 10) != 0 || !name[10])
        return 0;
    return strspn(name + 10, "0123456789") == strlen(name + 10);
}

void ckpt_keras_layer_of(const eng_model *m, const char *layer, ckpt_keras_layer *kl) {
    const size_t len = strlen(layer);
    kl->n = 0;
    for (int i = 0; i < m->layout.n; i++) {
        const char *name = m->layout.tensors[i].name;
        if (strncmp(name, layer, len) != 0 || name[len] != '/')
            continue;
        kl->idx[kl->n] = i;
        snprintf(kl->names[kl->n], sizeof kl->names[kl->n], "%s:0", name);
        kl->wn[kl->n] = kl->names[kl->n];
        kl->n++;
    }
}

void ckpt_tensor_dims(const eng_tensor_info *t, hsize_t *dims) {
    for (int d = 0; d < t->ndim; d++)
        dims[d] = (hsize_t)t->shape[d];
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
