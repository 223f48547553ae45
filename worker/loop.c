/* loop.c: what the training loops share. */
#include "worker/loop.h"

#include "engine/base/base.h"
#include "engine/blas.h"
#include "worker/ckpt/record.h"
#include "worker/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

wk_position wk_resume_position(const eng_ckpt *resume, int world, int batch,
                               int64_t steps_per_epoch, int lead) {
    if (!resume)
        return (wk_position){0, 1, 0};
    const wk_run_record rec = wk_record_of(resume);
    wk_position p = {rec.step, rec.epoch, rec.epoch_step};
    if (rec.workers != world || rec.batch != batch)
        p.epoch_step = rec.epoch_step * rec.workers * rec.batch / (world * batch);
    if (p.epoch_step > steps_per_epoch)
        p.epoch_step = steps_per_epoch;
    if (lead)
        printf("resuming at step %lld: epoch %lld, step %lld of %lld\n", (long long)p.step,
               (long long)p.epoch, (long long)p.epoch_step, (long long)steps_per_epoch);
    return p;
}

uint64_t wk_needed_version(const wk_opts *o, uint64_t next) {
    if (strcmp(o->mode, "async") == 0)
        return 0;
    const uint64_t S = strcmp(o->mode, "ssp") == 0 ? (uint64_t)o->staleness : 0;
    return next > S ? next - S : 0;
}

int wk_refresh_weights(const wk_opts *o, wk_client *c, float *params, uint64_t *version,
                       uint64_t step, char *err, size_t errlen) {
    const uint64_t needed = wk_needed_version(o, step);
    const int wait = strcmp(o->mode, "async") == 0;
    if (wk_client_pull_pending(c) && wk_client_pull_recv(c, params, version, wait, err, errlen) < 0)
        return -1;
    /* Too old: wait for what is on its way, and ask again when even that is too old (no
     * pull was outstanding, or it asked for less: ssp may not run ahead of the bound). */
    while (*version < needed) {
        if (!wk_client_pull_pending(c) && wk_client_pull_send(c, needed, err, errlen) != 0)
            return -1;
        if (wk_client_pull_recv(c, params, version, 1, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int wk_final_weights(const wk_opts *o, const wk_job *job, wk_client *c, float *params,
                     uint64_t *version, int64_t steps, int64_t run_steps, char *err,
                     size_t errlen) {
    if (wk_client_pull_pending(c) && wk_client_pull_recv(c, params, version, 1, err, errlen) < 0)
        return -1;
    if (strcmp(o->mode, "async") == 0) {
        /* Every update counts, and how many there are depends on who took part: each server
         * answers once it has every step each worker still in the job says it pushed. */
        const int W = job->num_workers;
        double *v = calloc((size_t)W, sizeof *v);
        uint64_t *pushes = calloc((size_t)W, sizeof *pushes);
        int rc = v && pushes ? 0 : pst_err(err, errlen, PST_ENOMEM, "out of memory");
        if (rc == 0) {
            v[job->worker_id] = (double)run_steps;
            rc = wk_reduce(job, WK_REDUCE_SUM, v, W, err, errlen);
        }
        for (int w = 0; rc == 0 && w < W; w++)
            pushes[w] = (uint64_t)v[w];
        if (rc == 0 && (wk_client_pull_settled(c, pushes, err, errlen) != 0 ||
                        wk_client_pull_recv(c, params, version, 1, err, errlen) < 0))
            rc = -1;
        free(v);
        free(pushes);
        return rc;
    }
    if (*version >= (uint64_t)steps)
        return 0;
    if (wk_client_pull_send(c, (uint64_t)steps, err, errlen) != 0)
        return -1;
    return wk_client_pull_recv(c, params, version, 1, err, errlen) < 0 ? -1 : 0;
}

int wk_stop_agreed(const wk_job *job, wk_client *const *clients, int n,
                   volatile sig_atomic_t *stop) {
    const int local = stop && *stop;
    if (!job)
        return local;
    int stopping = 0;
    for (int i = 0; i < n; i++) {
        if (local)
            wk_client_want_stop(clients[i]);
        stopping |= wk_client_stopping(clients[i]);
    }
    return stopping;
}

int wk_reduce(const wk_job *job, int op, double *v, int n, char *err, size_t errlen) {
    return job ? wk_client_reduce(job->coord, op, v, n, err, errlen) : 0;
}

int wk_members(const wk_job *job, int *rank, int *world, char *err, size_t errlen) {
    const int *ids;
    const int n = wk_client_members(job->coord, &ids);
    if (n == *world)
        return 0;
    if (n == 0 || ids[0] != 0)
        return pst_err(err, errlen, PST_EIO,
                       "worker 0 (the lead: it writes checkpoints and reports) was lost; the job "
                       "stops: start it again with --resume auto");
    for (int i = 0; i < n; i++)
        if (ids[i] == job->worker_id)
            *rank = i;
    *world = n;
    return 1;
}

/* Every worker's position, gathered on the lead: when want, *steps (malloc'd) holds one
 * entry per worker still in the job, *n of them. Returns 0 or -1 with err. */
static int gather_steps(const wk_job *job, int64_t mine, int want, int64_t **steps, int *n,
                        char *err, size_t errlen) {
    const int W = job ? job->num_workers : 1;
    double *v = calloc((size_t)W, sizeof *v);
    *steps = want ? malloc(sizeof **steps * (size_t)W) : NULL;
    PST_ASSERT(v && (!want || *steps), "out of memory for %d positions", W);
    v[job ? job->worker_id : 0] = (double)mine;
    *n = 1;
    int rc = 0;
    if (job && (rc = wk_reduce(job, WK_REDUCE_SUM, v, W, err, errlen)) == 0) {
        const int *ids;
        *n = wk_client_members(job->coord, &ids);
        for (int i = 0; want && i < *n; i++)
            (*steps)[i] = (int64_t)v[ids[i]];
    } else if (rc == 0 && want) {
        (*steps)[0] = mine;
    }
    free(v);
    if (rc != 0) {
        free(*steps);
        *steps = NULL;
    }
    return rc;
}

int wk_ckpt_begin(wk_ckpt_writer *writer, const wk_opts *o, const wk_job *job, wk_position pos,
                  eng_ckpt **out, double *t0, char *err, size_t errlen) {
    int nsteps;
    int64_t *steps;
    *out = NULL;
    if (gather_steps(job, pos.step, writer != NULL, &steps, &nsteps, err, errlen) != 0)
        return -1;
    if (!writer)
        return 0;
    *t0 = pst_now();
    if (wk_ckpt_writer_wait(writer, stdout, err, errlen) != 0) {
        free(steps);
        return -1;
    }
    eng_ckpt *c = wk_ckpt_writer_next(writer);
    wk_run_record rec = {.step = pos.step,
                         .epoch = pos.epoch,
                         .epoch_step = pos.epoch_step,
                         .staleness = (int32_t)o->staleness,
                         .batch = (int32_t)o->batch,
                         .seed = o->seed,
                         .servers = job ? job->num_servers : 0,
                         .workers = nsteps, /* the workers still in the job */
                         .val_split = o->val_split,
                         .epochs = o->epochs,
                         .worker_steps = steps};
    snprintf(rec.mode, sizeof rec.mode, "%.7s", job ? o->mode : "local");
    wk_record_put(c, &rec);
    free(steps);
    *out = c;
    return 0;
}

int wk_ckpt_end(wk_ckpt_writer *writer, int64_t step, double t0, char *err, size_t errlen) {
    printf("checkpoint at step %lld: state gathered in %.1f ms (training paused for it)\n",
           (long long)step, (pst_now() - t0) * 1e3);
    fflush(stdout);
    return wk_ckpt_writer_start(writer, err, errlen);
}

int wk_exit_code(int rc) { return rc == PST_EARG || rc == PST_EFORMAT || rc == PST_EIO ? 2 : 1; }

void wk_banner_more(const wk_opts *o, const eng_ckpt *resume) {
    char blas[160];
    if (resume && o->optim_given)
        printf("--resume: the optimizer goes on as the checkpoint has it (above); the optimizer "
               "flags given were not used\n");
    printf("%s\n", eng_blas_describe(blas, sizeof blas));
}
