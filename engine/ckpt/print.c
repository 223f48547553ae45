/* print.c: a checkpoint for `pstrain inspect`: its metadata, then a row per tensor. */
#include "engine/ckpt/ckpt.h"

#include "engine/layout.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

void eng_ckpt_print_head(const eng_ckpt *c, FILE *out) {
    fprintf(out, "checkpoint format %d: model %s, %llu floats, layout checksum 0x%016llx\n",
            ENG_CKPT_FORMAT, c->model, (unsigned long long)c->total,
            (unsigned long long)c->layout_checksum);
}

/* The meta's attributes on one line, its arrays a line each. */
static void print_meta_attrs(const eng_ckpt *c, FILE *out) {
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
}

static void print_meta_arrays(const eng_ckpt *c, FILE *out) {
    for (int i = 0; i < c->meta.narrays; i++) {
        fprintf(out, "%s:", c->meta.arrays[i].name);
        for (uint64_t j = 0; j < c->meta.arrays[i].n; j++)
            fprintf(out, " %lld", (long long)c->meta.arrays[i].v[j]);
        fprintf(out, "\n");
    }
}

void eng_ckpt_print_parts(const eng_ckpt *c, FILE *out) {
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
}

void eng_ckpt_print_tensors(const eng_ckpt *c, const eng_model *m, FILE *out) {
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

void eng_ckpt_print(const eng_ckpt *c, const eng_model *m, FILE *out) {
    eng_ckpt_print_head(c, out);
    print_meta_attrs(c, out);
    eng_ckpt_print_parts(c, out);
    print_meta_arrays(c, out);
    eng_ckpt_print_tensors(c, m, out);
}
