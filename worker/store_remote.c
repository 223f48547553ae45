/* store_remote.c: the store of a worker in a parameter-server job: each part's gradients
 * pushed to the servers and its weights pulled back, through one client for all parts. */
#include "worker/store_impl.h"

#include "engine/base/base.h"
#include "proto/codec.h"

#include <stdlib.h>
#include <string.h>

/* A part's state tensors (BatchNormalization's moving statistics): the worker pushes the
 * change its forward made to them since the weights came from the servers. */
typedef struct state_delta {
    size_t off[ENG_MAX_TENSORS], count[ENG_MAX_TENSORS];
    int n;
    float *base; /* their values as pulled, one after another */
} state_delta;

typedef struct remote_store {
    wk_store base;
    const wk_opts *o;
    wk_client *client;
    uint64_t version[ENG_MAX_PARTS]; /* of each part's weights in its net */
    state_delta state[ENG_MAX_PARTS];
    size_t checked[ENG_MAX_PARTS]; /* this step's gradients in [checked, total) are finite */
    int nparts;
} remote_store;

static void state_init(state_delta *d, const eng_model *part) {
    size_t total = 0;
    d->n = 0;
    for (int i = 0; i < part->layout.n; i++)
        if (part->layout.tensors[i].state) {
            d->off[d->n] = part->layout.tensors[i].offset;
            d->count[d->n++] = part->layout.tensors[i].count;
            total += part->layout.tensors[i].count;
        }
    d->base = d->n ? pst_malloc(sizeof(float) * total) : NULL;
}

static void state_keep(state_delta *d, const float *params) {
    float *p = d->base;
    for (int i = 0; i < d->n; p += d->count[i], i++)
        memcpy(p, params + d->off[i], sizeof(float) * d->count[i]);
}

/* grads[state] = params[state] - as pulled (the net wrote 0 there) */
static void state_to_grads(const state_delta *d, const float *params, float *grads) {
    const float *p = d->base;
    for (int i = 0; i < d->n; p += d->count[i], i++)
        for (size_t j = 0; j < d->count[i]; j++)
            grads[d->off[i] + j] = params[d->off[i] + j] - p[j];
}

static void remote_free(wk_store *s) {
    remote_store *r = (remote_store *)s;
    wk_client_free(&r->client);
    for (int p = 0; p < r->nparts; p++)
        free(r->state[p].base);
    free(r);
}

/* Brings part p's weights to what step `step` needs: takes the pull answers that have
 * arrived, and waits for the rest only when the weights are older than that; in async mode
 * it also waits for the answer to the last step's pull when that has not come yet. So in
 * ssp the round trip overlaps the next step's compute and sync always waits; in async a
 * worker never computes a second step on weights it has already computed on, whose age
 * would otherwise grow without bound whenever answers come late (a server or worker that
 * shares its core: mean staleness 21-26 updates and diverging jobs with 3 workers on 2
 * cores, against 7 when the answers keep up). */
static int refresh(remote_store *r, int p, uint64_t step, char *err, size_t errlen) {
    wk_client *c = r->client;
    float *params = eng_net_params(r->base.nets[p]);
    const uint64_t needed = wk_needed_version(r->o, step);
    const int wait = strcmp(r->o->mode, "async") == 0;
    int rc;
    if (wk_client_pull_pending(c, p) &&
        (rc = wk_client_pull_recv(c, p, params, &r->version[p], wait, err, errlen)) < 0)
        return rc;
    /* Too old: wait for what is on its way, and ask again when even that is too old (no
     * pull was outstanding, or it asked for less: ssp may not run ahead of the bound). */
    while (r->version[p] < needed) {
        if (!wk_client_pull_pending(c, p) &&
            (rc = wk_client_pull_send(c, p, needed, err, errlen)) != PST_OK)
            return rc;
        if ((rc = wk_client_pull_recv(c, p, params, &r->version[p], 1, err, errlen)) < 0)
            return rc;
    }
    return PST_OK;
}

static int remote_step_begin(wk_store *s, uint64_t step, wk_time_split *t, char *err,
                             size_t errlen) {
    remote_store *r = (remote_store *)s;
    s->guard.step = step;
    for (int p = 0; p < r->nparts; p++)
        r->checked[p] = s->model->parts[p].total;
    for (int p = 0; p < r->nparts; p++) {
        double t0 = pst_now();
        int rc = refresh(r, p, step, err, errlen);
        t->pull_s += pst_now() - t0;
        if (rc != PST_OK)
            return rc;
        /* Ask for the next weights with the push, unless the last answer is still on its way
         * (async, ssp). */
        t0 = pst_now();
        rc = wk_client_step_begin(r->client, p, eng_net_grads(s->nets[p]), step, r->version[p],
                                  !wk_client_pull_pending(r->client, p),
                                  wk_needed_version(r->o, step + 1), err, errlen);
        t->push_s += pst_now() - t0;
        if (rc != PST_OK)
            return rc;
    }
    for (int p = 0; p < r->nparts; p++)
        if (r->state[p].n)
            state_keep(&r->state[p], eng_net_params(s->nets[p]));
    return PST_OK;
}

static void remote_step_sparse(wk_store *s, int p, const wk_sparse_rows *sp) {
    wk_client_step_sparse(((remote_store *)s)->client, p, sp);
}

/* Checks part p's gradients in [lo, what was checked before): a non-finite value must never
 * leave, and what was checked has been sent or is final. */
static int check_from(remote_store *r, int p, size_t lo, char *err, size_t errlen) {
    if (lo >= r->checked[p])
        return PST_OK;
    const int rc = wk_guard_grads(&r->base.guard, r->base.model, p, eng_net_grads(r->base.nets[p]),
                                  lo, r->checked[p], err, errlen);
    if (rc == PST_OK)
        r->checked[p] = lo;
    return rc;
}

static int remote_ready(wk_store *s, int p, size_t lo, char *err, size_t errlen) {
    remote_store *r = (remote_store *)s;
    const int rc = check_from(r, p, lo, err, errlen);
    return rc == PST_OK ? wk_client_step_ready(r->client, p, lo, err, errlen) : rc;
}

static int remote_step_end(wk_store *s, wk_time_split *t, char *err, size_t errlen) {
    remote_store *r = (remote_store *)s;
    const double t0 = pst_now();
    for (int p = 0; p < r->nparts; p++)
        if (r->state[p].n)
            state_to_grads(&r->state[p], eng_net_params(s->nets[p]), eng_net_grads(s->nets[p]));
    /* Every part checked before any of the rest goes: the state tensors' changes again (they
     * were written just now), then what no early send has checked. */
    int rc = PST_OK;
    for (int p = 0; p < r->nparts && rc == PST_OK; p++) {
        const state_delta *d = &r->state[p];
        for (int i = 0; i < d->n && rc == PST_OK; i++)
            rc = wk_guard_grads(&s->guard, s->model, p, eng_net_grads(s->nets[p]), d->off[i],
                                d->off[i] + d->count[i], err, errlen);
        if (rc == PST_OK)
            rc = check_from(r, p, 0, err, errlen);
    }
    if (rc != PST_OK) {
        t->push_s += pst_now() - t0;
        return rc;
    }
    for (int p = r->nparts - 1; p >= 0 && rc == PST_OK; p--)
        rc = wk_client_step_end(r->client, p, err, errlen);
    t->push_s += pst_now() - t0;
    return rc;
}

static int remote_settle(wk_store *s, char *err, size_t errlen) {
    remote_store *r = (remote_store *)s;
    for (int p = 0; p < r->nparts; p++) {
        int rc;
        if (wk_client_pull_pending(r->client, p) &&
            (rc = wk_client_pull_wait(r->client, p, eng_net_params(s->nets[p]), &r->version[p], err,
                                      errlen)) != PST_OK)
            return rc;
    }
    return PST_OK;
}

static int remote_reduce(wk_store *s, int op, double *v, int n, char *err, size_t errlen) {
    return wk_client_reduce(((remote_store *)s)->client, op, v, n, err, errlen);
}

static int remote_final(wk_store *s, int64_t steps, int64_t run_steps, char *err, size_t errlen) {
    remote_store *r = (remote_store *)s;
    wk_client *c = r->client;
    int rc;
    for (int p = 0; p < r->nparts; p++)
        if (wk_client_pull_pending(c, p) &&
            (rc = wk_client_pull_recv(c, p, eng_net_params(s->nets[p]), &r->version[p], 1, err,
                                      errlen)) < 0)
            return rc;
    if (strcmp(r->o->mode, "async") != 0) { /* sync and ssp: one update a step */
        for (int p = 0; p < r->nparts; p++)
            if (r->version[p] < (uint64_t)steps &&
                ((rc = wk_client_pull_send(c, p, (uint64_t)steps, err, errlen)) != PST_OK ||
                 (rc = wk_client_pull_recv(c, p, eng_net_params(s->nets[p]), &r->version[p], 1, err,
                                           errlen)) < 0))
                return rc;
        return PST_OK;
    }
    /* async: every update counts, and how many there are depends on who took part: each
     * server answers once it has every step each worker still in the job says it pushed
     * (one round tells every part's servers). */
    const int W = s->num_workers;
    double *v = pst_calloc((size_t)W, sizeof *v);
    uint64_t *pushes = pst_calloc((size_t)W, sizeof *pushes);
    v[s->worker_id] = (double)run_steps;
    rc = remote_reduce(s, WK_REDUCE_SUM, v, W, err, errlen);
    for (int w = 0; rc == PST_OK && w < W; w++)
        pushes[w] = (uint64_t)v[w];
    for (int p = 0; rc == PST_OK && p < r->nparts; p++)
        if ((rc = wk_client_pull_settled(c, p, pushes, err, errlen)) == PST_OK) {
            rc = wk_client_pull_recv(c, p, eng_net_params(s->nets[p]), &r->version[p], 1, err,
                                     errlen);
            rc = rc < 0 ? rc : PST_OK;
        }
    free(v);
    free(pushes);
    return rc;
}

static int remote_member_ids(const wk_store *s, const int **ids) {
    return wk_client_members(((const remote_store *)s)->client, ids);
}

static int remote_stop_agreed(wk_store *s, volatile sig_atomic_t *stop) {
    remote_store *r = (remote_store *)s;
    const int local = stop && *stop;
    if (local)
        wk_client_want_stop(r->client);
    return wk_client_stopping(r->client);
}

static int remote_snapshot(wk_store *s, uint64_t step, eng_ckpt *c, char *err, size_t errlen) {
    remote_store *r = (remote_store *)s;
    for (int p = 0; p < s->model->nparts; p++) {
        eng_ckpt_part *part = &c->parts[p];
        const int rc = wk_client_snapshot(r->client, p, wk_needed_version(r->o, step),
                                          c->weights + part->offset, part, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    wk_guard_snapshot(&s->guard, step);
    return PST_OK;
}

static uint64_t remote_bytes_pushed(const wk_store *s) {
    return wk_client_bytes_pushed(((const remote_store *)s)->client);
}

static const wk_server_stats *remote_stats(wk_store *s, char *err, size_t errlen) {
    return wk_client_stats(((remote_store *)s)->client, err, errlen);
}

static const wk_server_stats *remote_last_stats(const wk_store *s) {
    return wk_client_last_stats(((const remote_store *)s)->client);
}

static int remote_servers(const wk_store *s) {
    return wk_client_servers(((const remote_store *)s)->client);
}

static int remote_shutdown(wk_store *s, char *err, size_t errlen) {
    return wk_client_shutdown(((remote_store *)s)->client, NULL, err, errlen);
}

static void remote_fail(wk_store *s, const char *reason) {
    wk_client_fail(((remote_store *)s)->client, reason);
}

static const wk_store_ops remote_ops = {
    remote_free,     remote_step_begin,   remote_step_sparse, remote_ready,      remote_step_end,
    remote_settle,   remote_final,        remote_reduce,      remote_member_ids, remote_stop_agreed,
    remote_snapshot, remote_bytes_pushed, remote_stats,       remote_last_stats, remote_servers,
    remote_shutdown, remote_fail,
};

int wk_store_admitted(wk_store *s, uint64_t step, char *err, size_t errlen) {
    remote_store *r = (remote_store *)s;
    int rc = wk_client_admitted(r->client, err, errlen);
    for (int p = 0; rc == PST_OK && p < r->nparts; p++)
        if ((rc = wk_client_pull_send(r->client, p, wk_needed_version(r->o, step), err, errlen)) ==
            PST_OK)
            rc = wk_client_pull_wait(r->client, p, eng_net_params(s->nets[p]), &r->version[p], err,
                                     errlen);
    return rc;
}

wk_store *wk_store_remote_new(const wk_opts *o, const wk_job *job, const eng_model *m,
                              eng_net *const *nets, char *err, size_t errlen) {
    remote_store *r = pst_calloc(1, sizeof *r);
    r->base = (wk_store){.ops = &remote_ops,
                         .model = m,
                         .worker_id = job->worker_id,
                         .num_workers = job->num_workers,
                         .guard = {.checkpoint = -1, .pending = -1, .remote = 1}};
    r->o = o;
    r->nparts = m->nparts;
    for (int p = 0; p < m->nparts; p++) {
        eng_model part;
        eng_model_part(m, p, &part);
        r->base.nets[p] = nets[p];
        state_init(&r->state[p], &part);
    }
    int rc = PST_EPEER;
    r->client = job->join ? wk_client_join(job->endpoints, job->num_servers, job->worker_id,
                                           job->num_workers, m, o->timeout, job->keys, err, errlen)
                          : wk_client_new(job->endpoints, job->num_servers, job->worker_id,
                                          job->num_workers, m, o->timeout, job->keys, err, errlen);
    pb_wire wire = PB_WIRE_FP32;
    pb_wire_parse(o->wire, &wire); /* the command line checked it */
    if (r->client && !job->join)
        wk_client_set_world(r->client, job->world);
    if (r->client)
        wk_client_set_coding(r->client, wire, o->topk);
    /* a joining worker takes the weights once admitted (wk_store_admitted) */
    for (int p = 0; r->client && p < m->nparts && !job->join; p++)
        if ((rc = wk_client_pull_send(r->client, p, 0, err, errlen)) != PST_OK ||
            (rc = wk_client_pull_wait(r->client, p, eng_net_params(nets[p]), &r->version[p], err,
                                      errlen)) != PST_OK)
            break;
    if (r->client && job->join)
        rc = PST_OK;
    if (!r->client || rc != PST_OK) {
        remote_fail(&r->base, err);
        remote_free(&r->base);
        return NULL;
    }
    wk_client_watch(r->client, job->heartbeat);
    wk_client_set_backups(r->client, job->backups);
    return &r->base;
}
