/* loop.c: what the training loops share. */
#include "worker/loop.h"

#include "engine/base.h"
#include "worker/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

wk_position wk_resume_position(const eng_ckpt *resume, int world, int batch,
                               int64_t steps_per_epoch, int lead) {
    if (!resume)
        return (wk_position){0, 1, 0};
    wk_position p = {resume->step, resume->epoch, resume->epoch_step};
    if (resume->workers != world || resume->batch != batch)
        p.epoch_step = resume->epoch_step * resume->workers * resume->batch / (world * batch);
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

int wk_refresh_weights(wk_client *c, float *params, uint64_t *version, uint64_t needed, char *err,
                       size_t errlen) {
    if (!wk_client_pull_pending(c))
        return 0;
    int rc = wk_client_pull_recv(c, params, version, 0, err, errlen);
    if (rc == 0 && *version < needed)
        rc = wk_client_pull_recv(c, params, version, 1, err, errlen);
    return rc < 0 ? -1 : 0;
}

int wk_final_weights(const wk_opts *o, wk_client *c, float *params, uint64_t *version,
                     int64_t steps, int world, char *err, size_t errlen) {
    const uint64_t all = (uint64_t)steps * (strcmp(o->mode, "async") == 0 ? (uint64_t)world : 1);
    if (wk_client_pull_pending(c) && wk_client_pull_recv(c, params, version, 1, err, errlen) < 0)
        return -1;
    if (*version >= all)
        return 0;
    if (wk_client_pull_send(c, all, err, errlen) != 0)
        return -1;
    return wk_client_pull_recv(c, params, version, 1, err, errlen) < 0 ? -1 : 0;
}

int wk_stop_agreed(wk_stop_vote *v, const wk_job *job, volatile sig_atomic_t *stop,
                   int server_stopping) {
    const int local = (stop && *stop) || server_stopping;
    if (!job)
        return local;
    int agreed = 0;
    if (v->started) {
        MPI_Wait(&v->req, MPI_STATUS_IGNORE);
        agreed = v->all;
    }
    v->mine = local;
    MPI_Iallreduce(&v->mine, &v->all, 1, MPI_INT, MPI_MAX, job->workers, &v->req);
    v->started = 1;
    return agreed;
}

void wk_stop_vote_end(wk_stop_vote *v) {
    if (v->started)
        MPI_Wait(&v->req, MPI_STATUS_IGNORE);
    v->started = 0;
}

/* Every worker's position, gathered on the lead: the array (workers entries) on the one
 * that wants it, NULL elsewhere. */
static int64_t *gather_steps(const wk_job *job, int64_t mine, int want) {
    const int world = job ? job->num_workers : 1;
    int64_t *steps = want ? malloc(sizeof *steps * (size_t)world) : NULL;
    ENG_ASSERT(!want || steps, "out of memory for %d positions", world);
    if (job)
        MPI_Gather(&mine, 1, MPI_INT64_T, steps, 1, MPI_INT64_T, 0, job->workers);
    else
        steps[0] = mine;
    return steps;
}

int wk_ckpt_begin(wk_ckpt_writer *writer, const wk_opts *o, const wk_job *job, wk_position pos,
                  eng_ckpt **out, double *t0, char *err, size_t errlen) {
    int64_t *steps = gather_steps(job, pos.step, writer != NULL);
    *out = NULL;
    if (!writer)
        return 0;
    *t0 = wk_now();
    if (wk_ckpt_writer_wait(writer, stdout, err, errlen) != 0) {
        free(steps);
        return -1;
    }
    eng_ckpt *c = wk_ckpt_writer_next(writer);
    free(c->worker_steps);
    c->worker_steps = steps;
    c->step = pos.step;
    c->epoch = pos.epoch;
    c->epoch_step = pos.epoch_step;
    snprintf(c->mode, sizeof c->mode, "%.7s", job ? o->mode : "local");
    c->staleness = (int32_t)o->staleness;
    c->batch = (int32_t)o->batch;
    c->seed = o->seed;
    c->servers = job ? job->num_servers : 0;
    c->workers = job ? job->num_workers : 1;
    c->val_split = o->val_split;
    c->epochs = o->epochs;
    *out = c;
    return 0;
}

int wk_ckpt_end(wk_ckpt_writer *writer, int64_t step, double t0, char *err, size_t errlen) {
    printf("checkpoint at step %lld: state gathered in %.1f ms (training paused for it)\n",
           (long long)step, (wk_now() - t0) * 1e3);
    fflush(stdout);
    return wk_ckpt_writer_start(writer, err, errlen);
}

void wk_reduce_sums(const wk_job *job, double *v, int n) {
    if (job)
        MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, job->workers);
}

int wk_exit_code(int rc) { return rc == ENG_EARG || rc == ENG_EFORMAT || rc == ENG_EIO ? 2 : 1; }
