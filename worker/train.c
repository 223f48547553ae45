/* train.c: the one training loop, for every model, in one process or as a worker of a
 * parameter-server job: steps, the checkpoint schedule, the stop vote, evaluation and the
 * epoch report, and worker loss: the data split again among the survivors, and the lead's
 * duties handed to the next worker when the lead is lost. What is
 * model-specific is the task's (worker/task.h); where the weights live, the store's
 * (worker/store.h). */
#include "worker/train.h"

#include "engine/base/base.h"
#include "engine/blas.h"
#include "engine/conv2d.h"
#include "engine/pool.h"
#include "engine/text.h"
#include "worker/ckpt/writer.h"
#include "worker/guard.h"
#include "worker/paths.h"
#include "worker/save.h"
#include "worker/task.h"
#include "worker/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wk_part_optims(const wk_opts *o, const eng_model *m, const eng_ckpt *resume,
                    eng_optim_cfg cfg[ENG_MAX_PARTS]) {
    if (resume) { /* the optimizers go on as they were */
        for (int p = 0; p < m->nparts; p++)
            cfg[p] = resume->parts[p].optim;
        return;
    }
    if (m->nparts == 1) {
        cfg[0] = eng_optim_defaults((eng_optim_kind)eng_optim_kind_parse(o->optimizer));
        if (o->lr > 0)
            cfg[0].lr = (float)o->lr;
        cfg[0].clipvalue = (float)o->clipvalue;
        cfg[0].decay = (float)o->decay;
        return;
    }
    char why[300];
    /* the command line checked both (launch/cmd/config.c) */
    PST_ASSERT(eng_optim_parse(o->gen_optim, &cfg[0], why, sizeof why) == PST_OK, "%s", why);
    PST_ASSERT(eng_optim_parse(o->disc_optim, &cfg[1], why, sizeof why) == PST_OK, "%s", why);
}

/* The lead's lines after the task's banner: that the checkpoint's optimizer overrides the
 * optimizer flags given (a resumed run goes on as it was), and the OpenBLAS kernel. */
static void banner_more(const wk_opts *o, const eng_model *m, const eng_ckpt *resume) {
    char blas[160];
    if (resume && o->optim_given)
        printf("--resume: the optimizer goes on as the checkpoint has it (above); the optimizer "
               "flags given were not used\n");
    else if (!resume && o->init_from[0])
        printf("--init-from %s: the weights are the file's; the optimizer starts fresh\n",
               o->init_from);
    printf("%s\n", eng_blas_describe(blas, sizeof blas));
    /* what each convolution runs on (--conv), as one line */
    char line[512];
    int len = snprintf(line, sizeof line, "convolutions (--conv %s):", eng_conv_algo_name(m->conv));
    int n = 0;
    for (int i = 0; i < m->n && len > 0 && (size_t)len < sizeof line; i++)
        if (m->layers[i].spec.kind == ENG_CONV2D) {
            len += snprintf(line + len, sizeof line - (size_t)len, "%s %s %s", n++ ? "," : "",
                            m->layers[i].name, eng_conv2d_algo_name(&m->layers[i]));
        }
    if (n)
        printf("%s\n", line);
}

/* Opens the stream of rank of world, a text model's with vocab_in (NULL: build it, into
 * *vocab_out when non-NULL). */
static int open_data(wk_stream *data, const wk_opts *o, const eng_model *m,
                     const eng_vocab *vocab_in, eng_vocab **vocab_out, int rank, int world,
                     char *err, size_t errlen) {
    wk_text text;
    const int is_text = wk_text_of(m, &text);
    text.vocab_in = vocab_in;
    text.vocab_out = vocab_out;
    return wk_stream_open(data, o->data, m->def->dataset, is_text ? &text : NULL, o->val_split,
                          rank, world, (uint64_t)o->seed, (int)o->batch, err, errlen);
}

/* Workers' shares differ by at most one sample; all take the smallest's step count so that
 * they move in lockstep (a share's extra sample is reshuffled next epoch). */
static int agree_usable(wk_store *s, wk_stream *data, char *err, size_t errlen) {
    double usable = (double)data->data.train.n;
    const int rc = wk_store_reduce(s, WK_REDUCE_MIN, &usable, 1, err, errlen);
    if (rc == PST_OK)
        wk_stream_limit(data, (int64_t)usable);
    return rc;
}

/* The lead's checkpoint writer into *writer (with the moving average the task keeps). */
static int make_writer(const wk_run *r, wk_task *t, wk_ckpt_writer **writer, char *err,
                       size_t errlen) {
    double decay = 0.0; /* > 0: the run keeps a moving average (the lead's) */
    t->ops->average(t, 0, &decay);
    int nslots[ENG_MAX_PARTS];
    for (int p = 0; p < r->model->nparts; p++)
        nslots[p] = eng_optim_nslots(r->cfg[p].kind);
    *writer = wk_ckpt_writer_new(r->model, r->o->checkpoint_dir, (int)r->o->keep, nslots, decay,
                                 err, errlen);
    return *writer ? PST_OK : PST_EARG;
}

/* After a reduce round: the lead is the first worker still in the job. When the one that led
 * is gone, the next takes over its duties (checkpoints, reports, the GAN's grids and judge)
 * and says so; every worker learns it from the same round's answer, so all agree. Returns 1
 * when the lead changed, 0 when not, or a negative code with err when this worker could not
 * take over. */
static int follow_lead(wk_run *r, wk_task *t, wk_ckpt_writer **writer, char *err, size_t errlen) {
    const int *ids;
    const int n = wk_store_member_ids(r->store, &ids);
    if (n == 0 || ids[0] == r->lead_id)
        return 0;
    const int was = r->lead_id;
    r->lead_id = ids[0];
    if (ids[0] != r->worker_id)
        return 1;
    r->lead = 1;
    printf("worker %d leads from step %lld: worker %d, which led, was lost; checkpoints and "
           "reports come from here\n",
           r->worker_id, (long long)r->step, was);
    fflush(stdout);
    int rc = wk_progress_lead(r->prog, r->o->metrics, (int)r->o->progress, err, errlen);
    if (rc == PST_OK)
        rc = t->ops->lead(t, r, err, errlen);
    /* A lead that was cut off but lives (SIGSTOP, a partition) still holds the directory's
     * lock: the job goes on without checkpoints rather than lose its new lead too. */
    if (rc == PST_OK && r->o->checkpoint_dir[0] && !*writer &&
        make_writer(r, t, writer, err, errlen) != PST_OK) {
        fprintf(stderr, "pstrain: worker %d: leads without checkpoints: %s\n", r->worker_id, err);
        err[0] = '\0';
    }
    return rc == PST_OK ? 1 : rc;
}

/* A checkpoint at pos, by whoever leads. A lead lost before the round that gathers the
 * workers' positions writes nothing: the round names the new lead, and every worker then
 * takes part in the checkpoint again, now with a writer. */
static int checkpoint(wk_run *r, wk_task *t, wk_ckpt_writer **writer, wk_position pos, char *err,
                      size_t errlen) {
    int rc = wk_save(r, t, *writer, pos, err, errlen);
    if (rc == PST_OK && (rc = follow_lead(r, t, writer, err, errlen)) == 1)
        rc = wk_save(r, t, *writer, pos, err, errlen);
    return rc < 0 ? rc : PST_OK;
}

/* The job's workers are ids[0..n) now (the last reduce round's): this worker's rank among
 * them, and its share of the data (every worker agrees on the steps an epoch). */
static int regroup(wk_run *r, wk_task *t, const int *ids, int n, char *err, size_t errlen) {
    memcpy(r->members, ids, sizeof *ids * (size_t)n);
    r->nmembers = n;
    r->world = n;
    for (int i = 0; i < n; i++)
        if (ids[i] == r->worker_id)
            r->rank = i;
    wk_stream_close(r->data);
    int rc = open_data(r->data, r->o, r->model, r->vocab, NULL, r->rank, r->world, err, errlen);
    if (rc == PST_OK && (rc = agree_usable(r->store, r->data, err, errlen)) == PST_OK) {
        r->prog->steps_per_epoch = r->data->steps_per_epoch;
        t->ops->reshard(t, r);
    }
    return rc;
}

/* After an epoch: workers lost during it leave their data to the others from the next epoch
 * on (and their share of the test set, which the last evaluation covered whole), and with
 * places for more (--max-workers) the workers waiting to join are admitted in a round of
 * their own and take their share. Every worker learns the same ids from the same round. */
static int survivors(wk_run *r, wk_task *t, const wk_job *job, int64_t epoch, char *err,
                     size_t errlen) {
    int rc;
    if (job->num_workers > job->world) { /* the admission round: where the epoch ends */
        double at[2] = {(double)r->step, (double)epoch};
        if ((rc = wk_store_reduce(r->store, WK_REDUCE_ADMIT, at, 2, err, errlen)) != PST_OK)
            return rc;
    }
    const int *ids;
    const int n = wk_store_member_ids(r->store, &ids);
    if (n == r->nmembers && memcmp(ids, r->members, sizeof *ids * (size_t)n) == 0)
        return PST_OK;
    int joined = 0, left = 0;
    for (int i = 0, j = 0; i < n || j < r->nmembers;) { /* both ascend */
        if (j == r->nmembers || (i < n && ids[i] < r->members[j]))
            joined++, i++;
        else if (i == n || r->members[j] < ids[i])
            left++, j++;
        else
            i++, j++;
    }
    const int was = r->world;
    if ((rc = regroup(r, t, ids, n, err, errlen)) != PST_OK)
        return rc;
    if (left && job->lost)
        *job->lost = 1;
    char who[96]; /* "2 of 3 workers go on", or with any joined "3 workers (1 joined, 0 lost)" */
    if (joined)
        snprintf(who, sizeof who, "%d workers (%d joined, %d lost)", r->world, joined, left);
    else
        snprintf(who, sizeof who, "%d of %d workers go on", r->world, was);
    if (r->lead && epoch < r->o->epochs)
        printf("%s: from epoch %lld each takes 1/%d of the data, %lld steps an epoch\n", who,
               (long long)epoch + 1, r->world, (long long)r->data->steps_per_epoch);
    else if (r->lead)
        printf("%s: each evaluates 1/%d of the test set\n", who, r->world);
    return PST_OK;
}

/* A worker that joins a running job (pstrain train --join): it waits for the job's next
 * admission round, at an epoch's end, then takes the weights and its share of the data with
 * the others, and goes on from the step and epoch the round gave. */
static int join_job(wk_run *r, wk_task *t, wk_position *from, char *err, size_t errlen) {
    printf("worker %d: waiting to be admitted at the end of the job's epoch\n", r->worker_id);
    fflush(stdout);
    double at[2] = {0.0, 0.0};
    int rc = wk_store_reduce(r->store, WK_REDUCE_ADMIT, at, 2, err, errlen);
    const int *ids;
    const int n = rc == PST_OK ? wk_store_member_ids(r->store, &ids) : 0;
    if (rc != PST_OK ||
        (rc = wk_store_admitted(r->store, (uint64_t)at[0], err, errlen)) != PST_OK ||
        (rc = regroup(r, t, ids, n, err, errlen)) != PST_OK)
        return rc;
    r->lead_id = ids[0];
    r->step = (int64_t)at[0];
    *from = (wk_position){(int64_t)at[0], (int64_t)at[1] + 1, 0};
    printf("worker %d joins the job at step %lld: %d workers from epoch %lld, each 1/%d of the "
           "data\n",
           r->worker_id, (long long)at[0], n, (long long)at[1] + 1, n);
    fflush(stdout);
    return PST_OK;
}

/* The lead's dump of the final weights: every part's vector, in the model's order. */
static int dump_weights(const wk_run *r, wk_task *t, char *err, size_t errlen) {
    const void *bufs[ENG_MAX_PARTS];
    size_t lens[ENG_MAX_PARTS];
    for (int p = 0; p < r->model->nparts; p++) {
        bufs[p] = eng_net_params(t->ops->net(t, p));
        lens[p] = sizeof(float) * r->model->parts[p].total;
    }
    return wk_write_whole("dump-weights", r->o->dump_weights, bufs, lens, r->model->nparts, err,
                          errlen) == 0
               ? PST_OK
               : PST_EARG;
}

/* The epochs, from `from` on. Sets *stopped when the job stopped on request (after a last
 * checkpoint) and fills *times, *trained and *train_s. */
static int epochs(wk_run *r, wk_task *t, const wk_job *job, wk_ckpt_writer **writer,
                  volatile sig_atomic_t *stop, wk_position from, int *stopped, wk_time_split *times,
                  int64_t *trained, double *train_s, char *err, size_t errlen) {
    const wk_opts *o = r->o;
    const int ckpt_on = o->checkpoint_dir[0] != '\0';
    int64_t step = from.step, last_ckpt = r->resume ? step : -1;
    int rc;
    for (int64_t epoch = from.epoch; epoch <= o->epochs && (!o->max_steps || step < o->max_steps);
         epoch++) {
        if (r->lead)
            wk_progress_epoch_begin(r->prog, epoch);
        else /* a worker that takes over during the epoch reports its time */
            r->prog->epoch_start = pst_now();
        wk_stream_epoch(r->data, epoch);
        t->ops->epoch_begin(t);
        const double t0 = pst_now();
        const uint64_t pushed0 = wk_store_bytes_pushed(r->store);
        const int64_t step0 = step, steps_per_epoch = r->data->steps_per_epoch;
        int64_t s;
        for (s = epoch == from.epoch ? from.epoch_step : 0;
             s < steps_per_epoch && (!o->max_steps || step < o->max_steps); s++, step++) {
            /* Checkpoints come between steps: every --checkpoint-every steps, and when the
             * job must stop. */
            if (ckpt_on) {
                const int halt = wk_store_stop_agreed(r->store, stop);
                const int due = o->checkpoint_every && step > 0 && step % o->checkpoint_every == 0;
                if ((halt || due) && step != last_ckpt) {
                    if ((rc = checkpoint(r, t, writer, (wk_position){step, epoch, s}, err,
                                         errlen)) != PST_OK)
                        return rc;
                    last_ckpt = step;
                }
                if (halt) {
                    *stopped = 1;
                    r->step = step;
                    return PST_OK;
                }
            }
            r->step = step;
            const int B = wk_stream_batch(r->data, s, r->x, r->labels);
            if ((rc = wk_store_step_begin(r->store, (uint64_t)step, times, err, errlen)) != PST_OK)
                return rc;
            const double tc = pst_now();
            rc = t->ops->step(t, r, B, wk_step_key((uint64_t)o->seed, step), err, errlen);
            times->compute_s += pst_now() - tc;
            if (rc != PST_OK || (rc = wk_store_step_end(r->store, times, err, errlen)) != PST_OK)
                return rc;
            if (r->lead && r->prog->bar) /* the live bar: nothing to do without one */
                t->ops->progress(t, r, s + 1, pst_now() - t0);
        }
        times->total_s += pst_now() - t0;
        r->step = step;
        /* The epoch's figures on every update the job has made so far. */
        if ((rc = wk_store_final(r->store, step, step - from.step, err, errlen)) != PST_OK)
            return rc;
        double dt = pst_now() - t0; /* the job's rate: all samples over the slowest's time */
        if ((rc = wk_store_reduce(r->store, WK_REDUCE_MAX, &dt, 1, err, errlen)) != PST_OK ||
            (rc = follow_lead(r, t, writer, err, errlen)) < 0)
            return rc;
        const double bytes = step > step0 ? (double)(wk_store_bytes_pushed(r->store) - pushed0) /
                                                (double)(step - step0)
                                          : 0.0;
        int64_t count = 0;
        if ((rc = t->ops->epoch_end(t, r, epoch, dt, bytes, &count, err, errlen)) != PST_OK)
            return rc;
        *train_s += dt;
        *trained += count;
        if (r->lead) {
            const wk_server_stats *ss = NULL;
            if (wk_store_remote(r->store) && o->metrics[0] &&
                !(ss = wk_store_stats(r->store, err, errlen)))
                return PST_EPEER;
            if (ss)
                wk_progress_servers(r->prog, epoch, "model", ss, wk_store_servers(r->store));
            if (wk_progress_check(r->prog, err, errlen) != 0)
                return PST_EWRITE;
        }
        /* And a checkpoint at every epoch's end (or where --max-steps cut it). */
        const wk_position end =
            s < steps_per_epoch ? (wk_position){step, epoch, s} : (wk_position){step, epoch + 1, 0};
        if (ckpt_on && step != last_ckpt) {
            if ((rc = checkpoint(r, t, writer, end, err, errlen)) != PST_OK)
                return rc;
            last_ckpt = step;
        }
        if (job && (rc = survivors(r, t, job, epoch, err, errlen)) != PST_OK)
            return rc;
    }
    return PST_OK;
}

int wk_train(const wk_opts *o, const wk_job *job, const eng_ckpt *resume, const float *init,
             volatile sig_atomic_t *stop, char *err, size_t errlen) {
    const double t_start = pst_now();
    eng_model model;
    eng_optim_cfg cfg[ENG_MAX_PARTS];
    wk_stream data = {0};
    wk_progress prog = {0};
    eng_vocab *vocab = NULL;
    wk_task *task = NULL;
    wk_store *store = NULL;
    wk_ckpt_writer *writer = NULL;
    int rc = eng_model_build(&model, eng_model_find(o->model), err, errlen);
    if (rc == PST_OK)
        rc = wk_opts_conv(o, &model, err, errlen);
    if (rc != PST_OK)
        return rc;
    wk_run r = {.o = o,
                .model = &model,
                .resume = resume,
                .init = resume ? NULL : init,
                .cfg = cfg,
                .data = &data,
                .prog = &prog,
                /* a joining worker's share waits for its admission (join_job) */
                .rank = job && !job->join ? job->worker_id : 0,
                .world = job && !job->join ? job->world : 1,
                .worker_id = job ? job->worker_id : 0,
                .num_workers = job ? job->num_workers : 1,
                .batch = (int)o->batch};
    r.lead = r.rank == 0 && !(job && job->join); /* one that joins does not lead, yet */
    r.chunk = r.batch > 128 ? r.batch : 128;     /* evaluation batches */
    wk_part_optims(o, &model, resume, cfg);

    /* A text model tokenizes with the checkpoint's vocabulary when resuming. */
    eng_vocab *vocab_in = NULL;
    wk_text text;
    if (wk_text_of(&model, &text) && resume && resume->vocab &&
        !(vocab_in = wk_vocab_from_blob(resume->vocab, resume->vocab_bytes, err, errlen)))
        return PST_EFORMAT;
    rc = open_data(&data, o, &model, vocab_in, &vocab, r.rank, r.world, err, errlen);
    eng_vocab_free(&vocab_in);
    if (rc != PST_OK)
        return rc;
    r.vocab = vocab;
    const int cpus = eng_pool_cpus();
    r.threads = o->threads > 0 ? (int)o->threads : cpus;
    if (r.threads > cpus)
        fprintf(stderr,
                "pstrain: worker %d: %d threads on %d CPU(s) it may use; with mpirun, add "
                "--bind-to none (launch/run-local does)\n",
                r.rank, r.threads, cpus);
    r.x = pst_alloc(sizeof(float) * (size_t)r.chunk * eng_shape_size(data.data.train.shape));
    r.labels = pst_alloc((size_t)r.chunk);

    const wk_task_ops *ops = wk_task_of(&model);
    int stopped = 0;
    if ((rc = ops->open(&task, &r, err, errlen)) != PST_OK)
        goto out;
    eng_net *nets[ENG_MAX_PARTS];
    for (int p = 0; p < model.nparts; p++)
        nets[p] = ops->net(task, p);
    /* a directory that cannot be used fails before any training */
    if (o->checkpoint_dir[0] && r.lead &&
        (rc = make_writer(&r, task, &writer, err, errlen)) != PST_OK)
        goto out;
    if (job) {
        if (!(store = wk_store_remote_new(o, job, &model, nets, err, errlen))) {
            rc = PST_EPEER;
            goto out;
        }
        if (job->joined)
            *job->joined = 1;
    } else {
        store = wk_store_local_new(&model, nets, cfg, resume);
    }
    r.store = store;
    r.members = pst_calloc((size_t)r.num_workers, sizeof *r.members);
    for (int i = 0; i < r.world && !(job && job->join); i++)
        r.members[r.nmembers++] = i; /* a joining worker learns them when admitted */
    wk_position joined_at = {0, 1, 0};
    if (job && job->join)
        rc = join_job(&r, task, &joined_at, err, errlen);
    else
        rc = agree_usable(store, &data, err, errlen);
    if (rc != PST_OK || (rc = ops->start(task, &r, err, errlen)) != PST_OK)
        goto out;
    if (wk_progress_init(&prog, stdout, r.lead ? o->metrics : "", r.lead ? (int)o->progress : 0,
                         o->epochs, data.steps_per_epoch, err, errlen) != 0) {
        rc = PST_EARG;
        goto out;
    }
    if (r.lead) {
        ops->banner(task, &r);
        banner_more(o, r.model, resume);
    }

    const wk_position from = job && job->join ? joined_at
                                              : wk_resume_position(resume, r.world, r.batch,
                                                                   data.steps_per_epoch, r.lead);
    wk_time_split times = {0}; /* this worker's, for the report */
    int64_t trained = 0;
    double train_s = 0.0;
    if ((rc = epochs(&r, task, job, &writer, stop, from, &stopped, &times, &trained, &train_s, err,
                     errlen)) != PST_OK)
        goto out;
    if (writer && wk_ckpt_writer_wait(writer, stdout, err, errlen) != 0) {
        rc = PST_EWRITE;
        goto out;
    }
    if (stopped) {
        if (r.lead)
            printf("stopped at step %lld on request; resume with --resume %s\n", (long long)r.step,
                   o->checkpoint_dir);
        fflush(stdout);
        if ((rc = wk_store_settle(store, err, errlen)) == PST_OK &&
            (rc = wk_store_shutdown(store, err, errlen)) == PST_OK)
            rc = PST_ESTOPPED;
        goto out;
    }
    if (r.lead && o->dump_weights[0] && (rc = dump_weights(&r, task, err, errlen)) != PST_OK)
        goto out;
    const double rate = train_s > 0 ? (double)trained / train_s : 0.0;
    if ((rc = ops->finish(task, &r, rate, t_start, err, errlen)) != PST_OK ||
        (rc = wk_store_settle(store, err, errlen)) != PST_OK ||
        (rc = wk_store_shutdown(store, err, errlen)) != PST_OK)
        goto out;
    if (r.lead)
        wk_progress_report(&prog, pst_now() - t_start, rate, &times, wk_store_last_stats(store),
                           wk_store_servers(store));
    if (wk_progress_check(&prog, err, errlen) != 0)
        rc = PST_EWRITE;
out:
    if (rc == PST_EDIVERGED) /* the line names the checkpoint kept: its write has ended */
        wk_guard_kept(store, writer, err, errlen);
    if (rc != PST_OK && rc != PST_ESTOPPED)
        wk_store_fail(store, err);
    wk_ckpt_writer_free(&writer);
    wk_progress_deinit(&prog);
    wk_store_free(&store);
    if (task)
        task->ops->close(task);
    eng_vocab_free(&vocab);
    pst_free(r.x);
    pst_free(r.labels);
    pst_free(r.members);
    wk_stream_close(&data);
    return rc;
}
