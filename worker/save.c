/* save.c: checkpoints from the loop's side. */
#include "worker/save.h"

#include "engine/base/base.h"
#include "worker/ckpt/record.h"
#include "worker/vocab.h"

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

/* Every worker's position, gathered through the store: on the lead (want), *steps holds
 * one entry per worker still in the job, *n of them (release with free). */
static int gather_steps(const wk_run *r, int64_t mine, int want, int64_t **steps, int *n, char *err,
                        size_t errlen) {
    const int W = r->num_workers;
    double *v = pst_calloc((size_t)W, sizeof *v);
    v[r->worker_id] = (double)mine;
    *steps = NULL;
    const int rc = wk_store_reduce(r->store, WK_REDUCE_SUM, v, W, err, errlen);
    if (rc == PST_OK) {
        const int *ids;
        *n = wk_store_member_ids(r->store, &ids);
        if (want) {
            *steps = pst_malloc(sizeof **steps * (size_t)W);
            for (int i = 0; i < *n; i++)
                (*steps)[i] = (int64_t)v[ids[i]];
        }
    }
    free(v);
    return rc;
}

int wk_save(const wk_run *r, wk_task *t, wk_ckpt_writer *writer, wk_position pos, char *err,
            size_t errlen) {
    const wk_opts *o = r->o;
    /* Take the answers already asked for: the positions' round goes through server 0 too. */
    int rc = wk_store_settle(r->store, err, errlen);
    int nsteps = 0;
    int64_t *steps = NULL;
    if (rc == PST_OK)
        rc = gather_steps(r, pos.step, writer != NULL, &steps, &nsteps, err, errlen);
    if (rc != PST_OK || !writer) /* not the lead: its part was its position */
        return rc;
    const double t0 = pst_now();
    if (wk_ckpt_writer_wait(writer, stdout, err, errlen) != 0) {
        free(steps);
        return PST_EWRITE;
    }
    eng_ckpt *c = wk_ckpt_writer_next(writer);
    const int remote = wk_store_remote(r->store);
    wk_run_record rec = {.step = pos.step,
                         .epoch = pos.epoch,
                         .epoch_step = pos.epoch_step,
                         .staleness = (int32_t)o->staleness,
                         .batch = (int32_t)o->batch,
                         .seed = o->seed,
                         .servers = remote ? wk_store_servers(r->store) : 0,
                         .workers = nsteps, /* the workers still in the job */
                         .val_split = o->val_split,
                         .epochs = o->epochs,
                         .worker_steps = steps};
    snprintf(rec.mode, sizeof rec.mode, "%.7s", remote ? o->mode : "local");
    wk_record_put(c, &rec);
    free(steps);
    if (r->vocab && !c->vocab)
        c->vocab = wk_vocab_blob(r->vocab, &c->vocab_bytes);
    for (int p = 0; p < c->nparts; p++) {
        c->parts[p].optim = r->cfg[p];
        double decay;
        const float *ema = t->ops->average(t, p, &decay);
        if (c->parts[p].ema && ema) /* the writer has room for one when the run keeps one */
            memcpy(c->parts[p].ema, ema, sizeof(float) * c->parts[p].total);
    }
    /* then every part's state (the servers' in sync mode at exactly version pos.step: the
     * lead pushes no more until it has it, so no update can slip in) */
    if ((rc = wk_store_snapshot(r->store, (uint64_t)pos.step, c, err, errlen)) != PST_OK)
        return rc;
    printf("checkpoint at step %lld: state gathered in %.1f ms (training paused for it)\n",
           (long long)pos.step, (pst_now() - t0) * 1e3);
    fflush(stdout);
    return wk_ckpt_writer_start(writer, err, errlen) == 0 ? PST_OK : PST_EWRITE;
}
