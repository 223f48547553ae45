/* store_local.c: the store of one process: each part's optimizer updates its network's
 * vector in place after the step. */
#include "worker/store_impl.h"

#include "engine/base/base.h"
#include "worker/ckpt/record.h"

#include <stdlib.h>
#include <string.h>

typedef struct local_store {
    wk_store base;
    eng_optim *opt[ENG_MAX_PARTS];
} local_store;

static void local_free(wk_store *s) {
    local_store *l = (local_store *)s;
    for (int p = 0; p < s->model->nparts; p++)
        eng_optim_free(&l->opt[p]);
    free(l);
}

static int local_step_begin(wk_store *s, uint64_t step, wk_time_split *t, char *err,
                            size_t errlen) {
    (void)t, (void)err, (void)errlen;
    s->guard.step = step;
    return PST_OK;
}

static void local_step_sparse(wk_store *s, int p, const wk_sparse_rows *sp) {
    (void)s, (void)p, (void)sp;
}

static int local_ready(wk_store *s, int p, size_t lo, char *err, size_t errlen) {
    (void)s, (void)p, (void)lo, (void)err, (void)errlen;
    return PST_OK;
}

/* Every part's gradients are checked before any is applied: a non-finite one ends the step
 * with the weights as they were. Then the last part first: the order of a GAN's updates does
 * not matter (the parts share nothing), and this is the one earlier releases used. */
static int local_step_end(wk_store *s, wk_time_split *t, char *err, size_t errlen) {
    local_store *l = (local_store *)s;
    const double t0 = pst_now();
    for (int p = 0; p < s->model->nparts; p++) {
        const int rc = wk_guard_grads(&s->guard, s->model, p, eng_net_grads(s->nets[p]), 0,
                                      s->model->parts[p].total, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    for (int p = s->model->nparts - 1; p >= 0; p--)
        eng_net_apply(s->nets[p], l->opt[p]);
    t->compute_s += pst_now() - t0;
    return PST_OK;
}

static int local_settle(wk_store *s, char *err, size_t errlen) {
    (void)s, (void)err, (void)errlen;
    return PST_OK;
}

static int local_final(wk_store *s, int64_t steps, int64_t run_steps, char *err, size_t errlen) {
    (void)s, (void)steps, (void)run_steps, (void)err, (void)errlen;
    return PST_OK;
}

static int local_reduce(wk_store *s, int op, double *v, int n, char *err, size_t errlen) {
    (void)s, (void)op, (void)v, (void)n, (void)err, (void)errlen;
    return PST_OK;
}

static int local_member_ids(const wk_store *s, const int **ids) {
    (void)s;
    static const int self[1] = {0};
    *ids = self;
    return 1;
}

static int local_stop_agreed(wk_store *s, volatile sig_atomic_t *stop) {
    (void)s;
    return stop && *stop;
}

static int local_snapshot(wk_store *s, uint64_t step, eng_ckpt *c, char *err, size_t errlen) {
    (void)err, (void)errlen;
    local_store *l = (local_store *)s;
    wk_guard_snapshot(&s->guard, step);
    for (int p = 0; p < s->model->nparts; p++) {
        eng_ckpt_part *part = &c->parts[p];
        memcpy(c->weights + part->offset, eng_net_params(s->nets[p]), sizeof(float) * part->total);
        for (int i = 0; i < part->nslots; i++)
            memcpy(part->slots[i], eng_optim_slot(l->opt[p], i), sizeof(float) * part->total);
        part->runs = pst_realloc(part->runs, sizeof *part->runs);
        part->runs[0] = (eng_ckpt_iters){0, part->total, eng_optim_iterations(l->opt[p])};
        part->nruns = 1;
    }
    return PST_OK;
}

static uint64_t local_bytes_pushed(const wk_store *s) {
    (void)s;
    return 0;
}

static const wk_server_stats *local_stats(wk_store *s, char *err, size_t errlen) {
    (void)s, (void)err, (void)errlen;
    return NULL;
}

static const wk_server_stats *local_last_stats(const wk_store *s) {
    (void)s;
    return NULL;
}

static int local_servers(const wk_store *s) {
    (void)s;
    return 0;
}

static int local_shutdown(wk_store *s, char *err, size_t errlen) {
    (void)s, (void)err, (void)errlen;
    return PST_OK;
}

static void local_fail(wk_store *s, const char *reason) { (void)s, (void)reason; }

static const wk_store_ops local_ops = {
    local_free,     local_step_begin,   local_step_sparse, local_ready,      local_step_end,
    local_settle,   local_final,        local_reduce,      local_member_ids, local_stop_agreed,
    local_snapshot, local_bytes_pushed, local_stats,       local_last_stats, local_servers,
    local_shutdown, local_fail,
};

wk_store *wk_store_local_new(const eng_model *m, eng_net *const *nets, const eng_optim_cfg *cfg,
                             const eng_ckpt *resume) {
    local_store *l = pst_calloc(1, sizeof *l);
    l->base =
        (wk_store){.ops = &local_ops,
                   .model = m,
                   .worker_id = 0,
                   .num_workers = 1,
                   .guard = {.checkpoint = resume ? wk_record_of(resume).step : -1, .pending = -1}};
    for (int p = 0; p < m->nparts; p++) {
        l->base.nets[p] = nets[p];
        l->opt[p] = eng_optim_new(&cfg[p], m->parts[p].total);
        if (!resume)
            continue;
        /* one process keeps one update count a part: the one of the part's first element */
        const eng_ckpt_part *part = &resume->parts[p];
        for (int i = 0; i < part->nslots; i++)
            memcpy(eng_optim_slot(l->opt[p], i), part->slots[i], sizeof(float) * part->total);
        eng_optim_set_iterations(l->opt[p], part->runs[0].iterations);
    }
    return &l->base;
}
