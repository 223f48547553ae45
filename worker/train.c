/* train.c: the training loop, in one process or as a worker of a parameter-server job. */

#include "worker/train.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "engine/pool.h"
#include "engine/text.h"
#include "worker/ckpt/writer.h"
#include "worker/ckpt/record.h"
#include "worker/client.h"
#include "worker/loop.h"
#include "worker/paths.h"
#include "worker/progress.h"
#include "worker/stream.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sums st over the job's workers (every worker gets the total). Returns 0 or -1 with err. */
static int reduce_stats(const wk_job *job, eng_batch_stats *st, char *err, size_t errlen) {
    double v[3] = {st->loss_sum, (double)st->correct, (double)st->count};
    if (wk_reduce(job, WK_REDUCE_SUM, v, 3, err, errlen) != 0)
        return -1;
    *st = (eng_batch_stats){v[0], (int64_t)v[1], (int64_t)v[2]};
    return 0;
}

/* Mean loss and accuracy over d: this worker's share, summed over the job's workers.
 * Returns 0 or -1 with err. */
static int evaluate(eng_net *net, const wk_job *job, const eng_dataset *d, int chunk, float *x,
                    uint8_t *labels, double *loss, double *accuracy, char *err, size_t errlen) {
    eng_batch_stats st = {0};
    for (int64_t first = 0; first < d->n; first += chunk) {
        int B = (int)(d->n - first < chunk ? d->n - first : chunk);
        eng_dataset_slice(d, first, B, x, labels);
        eng_net_eval(net, x, labels, B, &st);
    }
    if (reduce_stats(job, &st, err, errlen) != 0)
        return -1;
    *loss = st.count ? st.loss_sum / (double)st.count : 0.0;
    *accuracy = st.count ? (double)st.correct / (double)st.count : 0.0;
    return 0;
}

/* The net's gradients-ready calls, turned into early sends of the step's chunks. */
typedef struct early_send {
    wk_client *client;
    int rc;
    char *err;
    size_t errlen;
} early_send;

static void send_ready(void *ctx, size_t lo) {
    early_send *e = ctx;
    if (e->rc == 0)
        e->rc = wk_client_step_ready(e->client, lo, e->err, e->errlen);
}

/* --- text models: the tokenizer's vocabulary and the rows a batch touches --- */

/* The text side of model m's data: its embedding's vocabulary size and its sequence length.
 * Returns 0 for image models. */
static int text_of(const eng_model *m, wk_text *t) {
    if (strcmp(m->def->dataset, "imdb") != 0)
        return 0;
    const eng_layer *l = &m->layers[0];
    PST_ASSERT(l->spec.kind == ENG_EMBEDDING, "%s: a text model starts with an Embedding",
               m->def->name);
    *t = (wk_text){.num_words = l->spec.input_dim, .maxlen = m->input.w};
    return 1;
}

/* The words a checkpoint keeps, each followed by '\n': all of them, since the ones past
 * num_words still decide between oov_char (a known word) and nothing (an unknown one). NULL
 * when out of memory. */
static char *vocab_blob(const eng_vocab *v, uint64_t *bytes) {
    const int n = eng_vocab_size(v);
    size_t len = 0;
    for (int r = 0; r < n; r++)
        len += strlen(eng_vocab_word(v, r)) + 1;
    char *blob = malloc(len + 1), *p = blob;
    for (int r = 0; blob && r < n; r++) {
        const size_t l = strlen(eng_vocab_word(v, r));
        memcpy(p, eng_vocab_word(v, r), l);
        p[l] = '\n';
        p += l + 1;
    }
    if (blob)
        *p = '\0';
    *bytes = len;
    return blob;
}

/* The vocabulary a checkpoint kept (vocab_blob's form). NULL with err on a bad one. */
static eng_vocab *vocab_from_blob(const char *blob, uint64_t bytes, char *err, size_t errlen) {
    char *copy = malloc(bytes + 1);
    const char **words = malloc(sizeof *words * (bytes + 1));
    eng_vocab *v = NULL;
    int n = 0;
    if (copy && words) {
        memcpy(copy, blob, bytes);
        copy[bytes] = '\0';
        for (char *p = copy, *nl; *p; p = nl + 1) {
            if (!(nl = strchr(p, '\n')))
                break;
            *nl = '\0';
            words[n++] = p;
        }
        v = eng_vocab_from_words(words, n, err, errlen);
    } else {
        pst_err(err, errlen, PST_ENOMEM, "out of memory for a vocabulary");
    }
    free(words);
    free(copy);
    return v;
}

/* The rows of the embedding a batch uses, in ascending order: a step's pushes of the
 * embedding then carry only those (its gradient is zero elsewhere). */
typedef struct touched {
    wk_sparse_rows sp;
    uint32_t *rows;
    uint8_t *seen; /* (nrows) */
} touched;

static int touched_init(touched *t, const eng_model *m) {
    memset(t, 0, sizeof *t);
    const int e = eng_layout_find(&m->layout, "embedding/embeddings");
    if (e < 0)
        return 0;
    const eng_tensor_info *ti = &m->layout.tensors[e];
    t->sp = (wk_sparse_rows){
        .from = ti->offset, .row_len = (size_t)ti->shape[1], .nrows = (size_t)ti->shape[0]};
    t->rows = malloc(sizeof *t->rows * t->sp.nrows);
    t->seen = calloc(t->sp.nrows, 1);
    t->sp.rows = t->rows;
    return t->rows && t->seen ? 0 : -1;
}

static void touched_free(touched *t) {
    free(t->rows);
    free(t->seen);
}

/* x: B samples of `len` token ids (floats holding exact integers). */
static void touched_collect(touched *t, const float *x, size_t len) {
    for (size_t i = 0; i < len; i++)
        t->seen[(uint32_t)x[i]] = 1;
    t->sp.n = 0;
    for (size_t r = 0; r < t->sp.nrows; r++)
        if (t->seen[r]) {
            t->rows[t->sp.n++] = (uint32_t)r;
            t->seen[r] = 0;
        }
}

/* Puts the job's state together in the writer's next checkpoint and starts writing it (the
 * lead worker, or the one process); every worker takes part in gathering positions. In sync
 * mode the servers answer the snapshot at exactly version pos.step: the lead pushes no more
 * until it has the state, so no update can slip in. Returns 0 or -1 with err. */
static int checkpoint(const wk_opts *o, const wk_job *job, wk_ckpt_writer *writer,
                      wk_client *client, eng_net *net, eng_optim *opt, const eng_optim_cfg *cfg,
                      const eng_vocab *vocab, uint64_t *version, wk_position pos, char *err,
                      size_t errlen) {
    eng_ckpt *c;
    double t0;
    /* Take the answers already asked for: the positions' round goes through server 0 too. */
    if (job && wk_client_pull_pending(client) &&
        wk_client_pull_wait(client, eng_net_params(net), version, err, errlen) != 0)
        return -1;
    if (wk_ckpt_begin(writer, o, job, pos, &c, &t0, err, errlen) != 0)
        return -1;
    if (!c) /* not the lead: its part was its position */
        return 0;
    if (vocab && !c->vocab && !(c->vocab = vocab_blob(vocab, &c->vocab_bytes)))
        return pst_err(err, errlen, PST_ENOMEM, "checkpoint: out of memory");
    eng_ckpt_part *part = &c->parts[0];
    part->optim = *cfg;
    if (job) {
        /* then the servers' state */
        if (wk_client_snapshot(client, wk_needed_version(o, (uint64_t)pos.step), c->weights, part,
                               err, errlen) != 0)
            return -1;
    } else {
        memcpy(c->weights, eng_net_params(net), sizeof(float) * c->total);
        for (int i = 0; i < part->nslots; i++)
            memcpy(part->slots[i], eng_optim_slot(opt, i), sizeof(float) * c->total);
        eng_ckpt_iters *run = pst_realloc(part->runs, sizeof *run);
        *run = (eng_ckpt_iters){0, c->total, eng_optim_iterations(opt)};
        part->runs = run;
        part->nruns = 1;
    }
    return wk_ckpt_end(writer, pos.step, t0, err, errlen);
}

/* The data again after workers were lost: the survivors split it (rank of world now),
 * with the vocabulary already built. Returns PST_OK or a code with err. */
static int reshard(wk_stream *data, const wk_opts *o, const eng_model_def *def, const wk_text *text,
                   const eng_vocab *vocab, int rank, int world, char *err, size_t errlen) {
    wk_text t;
    if (text) {
        t = *text;
        t.vocab_in = vocab;
        t.vocab_out = NULL;
    }
    wk_stream_close(data);
    return wk_stream_open(data, o->data, def->dataset, text ? &t : NULL, o->val_split, rank, world,
                          (uint64_t)o->seed, (int)o->batch, err, errlen);
}

/* Workers' shares differ by at most one sample; all take the smallest's step count so that
 * they move in lockstep (a share's extra sample is reshuffled next epoch). */
static int agree_usable(const wk_job *job, wk_stream *data, char *err, size_t errlen) {
    double usable = (double)data->data.train.n;
    if (wk_reduce(job, WK_REDUCE_MIN, &usable, 1, err, errlen) != 0)
        return -1;
    wk_stream_limit(data, (int64_t)usable);
    return 0;
}

int wk_train(const wk_opts *o, const wk_job *job_in, const eng_ckpt *resume,
             volatile sig_atomic_t *stop, char *err, size_t errlen) {
    const double t_start = pst_now();
    const eng_model_def *def = eng_model_find(o->model);
    wk_job jb = job_in ? *job_in : (wk_job){0};
    wk_job *job = job_in ? &jb : NULL; /* its coord is the client, once connected */
    int rank = job ? job->worker_id : 0, world = job ? job->num_workers : 1;
    const int lead = rank == 0; /* reports for the job */
    eng_model model;
    wk_stream data = {0};
    eng_net *net = NULL;
    eng_optim *opt = NULL;
    wk_client *client = NULL;
    wk_progress prog = {0};
    wk_ckpt_writer *writer = NULL;
    float *x = NULL;
    uint8_t *labels = NULL;
    int rc, status = 1;

    eng_vocab *vocab = NULL, *vocab_in = NULL;
    touched rows = {0};
    if ((rc = eng_model_build(&model, def, err, errlen)) != PST_OK)
        return wk_exit_code(rc);
    wk_text text;
    const int is_text = text_of(&model, &text);
    if (is_text && resume && resume->vocab &&
        !(vocab_in = vocab_from_blob(resume->vocab, resume->vocab_bytes, err, errlen)))
        return 2;
    text.vocab_in = vocab_in;
    text.vocab_out = &vocab;
    rc = wk_stream_open(&data, o->data, def->dataset, is_text ? &text : NULL, o->val_split, rank,
                        world, (uint64_t)o->seed, (int)o->batch, err, errlen);
    eng_vocab_free(&vocab_in);
    if (rc != PST_OK)
        return wk_exit_code(rc);
    if (job && !o->dense_pushes && touched_init(&rows, &model) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    const int cpus = eng_pool_cpus();
    const int threads = o->threads > 0 ? (int)o->threads : cpus;
    if (threads > cpus)
        fprintf(stderr,
                "pstrain: worker %d: %d threads on %d CPU(s) it may use; with mpirun, add "
                "--bind-to none (launch/run-local does)\n",
                rank, threads, cpus);
    const int batch = (int)o->batch;
    const int chunk = batch > 128 ? batch : 128; /* evaluation batches */
    if (!(net = eng_net_new(&model, chunk, threads > 0 ? threads : 1, err, errlen)))
        goto out;
    if (resume)
        memcpy(eng_net_params(net), resume->weights, sizeof(float) * model.layout.total);
    else
        eng_model_init_params(&model, eng_net_params(net), (uint64_t)o->seed);
    /* Worker w's samples sit at w * batch in the job's combined batch, so its dropout masks
     * are the ones one process training on the combined batch would draw. */
    eng_net_set_sample_base(net, (int64_t)rank * batch);

    eng_optim_cfg cfg = eng_optim_defaults((eng_optim_kind)eng_optim_kind_parse(o->optimizer));
    if (o->lr > 0)
        cfg.lr = (float)o->lr;
    cfg.clipvalue = (float)o->clipvalue;
    cfg.decay = (float)o->decay;
    if (resume) /* the optimizer goes on as it was */
        cfg = resume->parts[0].optim;
    const size_t nparams = model.layout.total;
    x = pst_alloc(sizeof(float) * (size_t)chunk * eng_shape_size(model.input));
    labels = pst_alloc((size_t)chunk);
    if ((!job && !(opt = eng_optim_new(&cfg, nparams))) || !x || !labels) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (opt && resume) {
        for (int i = 0; i < resume->parts[0].nslots; i++)
            memcpy(eng_optim_slot(opt, i), resume->parts[0].slots[i], sizeof(float) * nparams);
        eng_optim_set_iterations(opt, resume->parts[0].runs[0].iterations);
    }
    if (o->checkpoint_dir[0] && lead &&
        !(writer =
              wk_ckpt_writer_new(&model, o->checkpoint_dir, (int)o->keep,
                                 (const int[]){eng_optim_nslots(cfg.kind)}, 0.0, err, errlen))) {
        status = 2; /* a directory that cannot be used: before any training */
        goto out;
    }
    uint64_t version = 0; /* of the weights in the net */
    early_send early = {.err = err, .errlen = errlen};
    if (job) {
        client = wk_client_new_keys(job->endpoints, job->num_servers, rank, world, &model,
                                    o->timeout, job->keys, err, errlen);
        if (!client || wk_client_pull_send(client, 0, err, errlen) != 0 ||
            wk_client_pull_wait(client, eng_net_params(net), &version, err, errlen) != 0)
            goto out;
        /* A layer's gradients go to the servers as soon as backward has finished them, while
         * the layers below are still computed. */
        early.client = client;
        eng_net_on_grads_ready(net, send_ready, &early);
        job->coord = client;
        wk_client_watch(client, job->heartbeat);
        if (job->joined)
            *job->joined = 1;
    }

    if (agree_usable(job, &data, err, errlen) != 0)
        goto out;
    int64_t steps_per_epoch = data.steps_per_epoch;
    if (wk_progress_init(&prog, stdout, lead ? o->metrics : "", lead ? (int)o->progress : 0,
                         o->epochs, steps_per_epoch, err, errlen) != 0) {
        status = 2;
        goto out;
    }
    char optim[160];
    eng_optim_format(&cfg, optim, sizeof optim); /* what runs: a checkpoint's wins over flags */
    if (lead && job)
        printf("%s: %d worker(s) x batch %d = global batch %d; mode %s; %d server(s); %zu "
               "parameters; %s; %d threads per worker\n",
               def->name, world, batch, world * batch, o->mode, job->num_servers, nparams, optim,
               threads);
    else if (lead)
        printf("%s: %lld train, %lld validation, %lld test samples; %zu parameters; batch %d; "
               "%s; %d threads\n",
               def->name, (long long)data.data.train.n, (long long)data.data.val.n,
               (long long)data.data.test.n, nparams, batch, optim, threads);
    if (lead)
        wk_banner_more(o, resume);

    const wk_position from = wk_resume_position(resume, world, batch, steps_per_epoch, lead);
    int64_t step = from.step, trained = 0, first_epoch = from.epoch, first_step = from.epoch_step;
    int64_t last_ckpt = resume ? step : -1;
    const int ckpt_on = o->checkpoint_dir[0] != '\0';
    int stopped = 0;
    double train_seconds = 0.0;
    wk_time_split times = {0}; /* this worker's, for the report */
    for (int64_t epoch = first_epoch;
         epoch <= o->epochs && (!o->max_steps || step < o->max_steps) && !stopped; epoch++) {
        if (lead)
            wk_progress_epoch_begin(&prog, epoch);
        wk_stream_epoch(&data, epoch);

        eng_batch_stats st = {0};
        const double t0 = pst_now();
        const uint64_t pushed0 = client ? wk_client_bytes_pushed(client) : 0;
        const int64_t step0 = step;
        int64_t s;
        for (s = epoch == first_epoch ? first_step : 0;
             s < steps_per_epoch && (!o->max_steps || step < o->max_steps); s++, step++) {
            /* Checkpoints come between steps: every --checkpoint-every steps, and when the
             * job must stop. */
            if (ckpt_on) {
                const int halt = wk_stop_agreed(job, &client, 1, stop);
                const int due = o->checkpoint_every && step > 0 && step % o->checkpoint_every == 0;
                if ((halt || due) && step != last_ckpt) {
                    if (checkpoint(o, job, writer, client, net, opt, &cfg, vocab, &version,
                                   (wk_position){step, epoch, s}, err, errlen) != 0)
                        goto out;
                    last_ckpt = step;
                }
                if (halt) {
                    stopped = 1;
                    break;
                }
            }
            const int B = wk_stream_batch(&data, s, x, labels);
            double t = pst_now();
            if (job && wk_refresh_weights(o, client, eng_net_params(net), &version, (uint64_t)step,
                                          err, errlen) != 0)
                goto out;
            times.pull_s += pst_now() - t;
            t = pst_now();
            /* Ask for the next weights with the push, unless the last answer is still on its
             * way (async, ssp). */
            if (job &&
                wk_client_step_begin(client, eng_net_grads(net), (uint64_t)step, version,
                                     !wk_client_pull_pending(client),
                                     wk_needed_version(o, (uint64_t)step + 1), err, errlen) != 0)
                goto out;
            times.push_s += pst_now() - t;
            t = pst_now();
            if (rows.rows) { /* pushes of the embedding carry only the rows this batch used */
                touched_collect(&rows, x, (size_t)B * eng_shape_size(model.input));
                wk_client_step_sparse(client, &rows.sp);
            }
            eng_net_train_step(net, x, labels, B, wk_step_key((uint64_t)o->seed, step), &st);
            if (!job)
                eng_net_apply(net, opt);
            times.compute_s += pst_now() - t;
            t = pst_now();
            if (job && (early.rc != 0 || wk_client_step_end(client, err, errlen) != 0))
                goto out;
            times.push_s += pst_now() - t;
            if (lead) {
                double dt = pst_now() - t0;
                wk_progress_step(&prog, s + 1, st.loss_sum / (double)st.count,
                                 (double)st.correct / (double)st.count,
                                 dt > 0 ? (double)st.count * world / dt : 0.0);
            }
        }
        times.total_s += pst_now() - t0;
        if (stopped)
            break;
        /* Evaluate on every update the job has made so far. */
        if (job && wk_final_weights(o, job, client, eng_net_params(net), &version, step,
                                    step - from.step, err, errlen) != 0)
            goto out;
        double dt = pst_now() - t0;
        /* the job's rate: all workers' samples over the slowest one's time */
        if (wk_reduce(job, WK_REDUCE_MAX, &dt, 1, err, errlen) != 0 ||
            reduce_stats(job, &st, err, errlen) != 0)
            goto out;
        train_seconds += dt;
        trained += st.count;
        wk_epoch_report r = {.epoch = epoch,
                             .loss = st.loss_sum / (double)st.count,
                             .accuracy = (double)st.correct / (double)st.count,
                             .samples_per_sec = (double)st.count / dt};
        if (client && step > step0)
            r.push_bytes_per_step =
                (double)(wk_client_bytes_pushed(client) - pushed0) / (double)(step - step0);
        if (evaluate(net, job, &data.data.val, chunk, x, labels, &r.val_loss, &r.val_accuracy, err,
                     errlen) != 0)
            goto out;
        if (lead) {
            r.seconds = pst_now() - prog.epoch_start;
            wk_progress_epoch_end(&prog, &r);
            const wk_server_stats *ss = NULL;
            if (client && o->metrics[0] && !(ss = wk_client_stats(client, err, errlen)))
                goto out;
            if (ss)
                wk_progress_servers(&prog, epoch, "model", ss, job->num_servers);
            if (wk_progress_check(&prog, err, errlen) != 0)
                goto out;
        }
        /* And one at every epoch's end (or where --max-steps cut it). */
        const wk_position end =
            s < steps_per_epoch ? (wk_position){step, epoch, s} : (wk_position){step, epoch + 1, 0};
        if (ckpt_on && step != last_ckpt) {
            if (checkpoint(o, job, writer, client, net, opt, &cfg, vocab, &version, end, err,
                           errlen) != 0)
                goto out;
            last_ckpt = step;
        }
        /* Workers lost this epoch: the others take over their data from the next (and their
         * share of the test set, which the last evaluation covers whole). */
        const int was = world;
        if (job && (rc = wk_members(job, &rank, &world, err, errlen)) != 0) {
            if (rc < 0)
                goto out;
            if ((rc = reshard(&data, o, def, is_text ? &text : NULL, vocab, rank, world, err,
                              errlen)) != PST_OK ||
                agree_usable(job, &data, err, errlen) != 0)
                goto out;
            steps_per_epoch = prog.steps_per_epoch = data.steps_per_epoch;
            if (job->lost)
                *job->lost = 1;
            eng_net_set_sample_base(net, (int64_t)rank * batch);
            if (lead && epoch < o->epochs)
                printf("%d of %d workers go on: from epoch %lld each takes 1/%d of the data, %lld "
                       "steps an epoch\n",
                       world, was, (long long)epoch + 1, world, (long long)steps_per_epoch);
            else if (lead)
                printf("%d of %d workers go on: each evaluates 1/%d of the test set\n", world, was,
                       world);
        }
    }
    if (writer && wk_ckpt_writer_wait(writer, stdout, err, errlen) != 0)
        goto out;
    if (stopped) {
        if (lead)
            printf("stopped at step %lld on request; resume with --resume %s\n", (long long)step,
                   o->checkpoint_dir);
        fflush(stdout);
        if (client && wk_client_pull_pending(client) &&
            wk_client_pull_wait(client, eng_net_params(net), &version, err, errlen) != 0)
            goto out;
        if (client && wk_client_shutdown(client, NULL, err, errlen) != 0)
            goto out;
        status = WK_STOPPED;
        goto out;
    }
    if (lead && o->dump_weights[0]) {
        const void *buf = eng_net_params(net);
        const size_t len = sizeof(float) * nparams;
        if (wk_write_whole("dump-weights", o->dump_weights, &buf, &len, 1, err, errlen) != 0) {
            status = 2;
            goto out;
        }
    }
    double test_loss, test_accuracy;
    if (evaluate(net, job, &data.data.test, chunk, x, labels, &test_loss, &test_accuracy, err,
                 errlen) != 0)
        goto out;
    const double rate = train_seconds > 0 ? (double)trained / train_seconds : 0.0;
    if (lead)
        wk_progress_final(&prog, test_loss, test_accuracy, rate, pst_now() - t_start);
    if (client && wk_client_shutdown(client, NULL, err, errlen) != 0)
        goto out;
    if (lead)
        wk_progress_report(&prog, pst_now() - t_start, rate, &times,
                           client ? wk_client_last_stats(client) : NULL,
                           job ? job->num_servers : 0);
    if (wk_progress_check(&prog, err, errlen) != 0)
        goto out;
    status = 0;
out:
    if (status != 0 && status != WK_STOPPED)
        wk_client_fail(client, err);
    wk_ckpt_writer_free(&writer);
    touched_free(&rows);
    eng_vocab_free(&vocab);
    wk_progress_deinit(&prog);
    pst_free(x);
    pst_free(labels);
    eng_optim_free(&opt);
    wk_client_free(&client);
    eng_net_free(&net);
    wk_stream_close(&data);
    return status;
}

int wk_eval(const wk_opts *o, const eng_ckpt *c, char *err, size_t errlen) {
    const eng_model_def *def = eng_model_find(c->model);
    PST_ASSERT(!def->parts, "%s: wk_eval of a GAN's checkpoint", o->checkpoint);
    if (o->judge[0]) {
        snprintf(err, errlen, "--judge: %s is a checkpoint of %s; a judge scores a GAN's digits",
                 o->checkpoint, c->model);
        return 2;
    }
    eng_model model;
    wk_stream data = {0};
    eng_net *net = NULL;
    float *x = NULL;
    uint8_t *labels = NULL;
    int rc, status = 1;
    if ((rc = eng_model_build(&model, def, err, errlen)) != PST_OK)
        return wk_exit_code(rc);
    const int chunk = 128;
    wk_text text;
    const int is_text = text_of(&model, &text);
    eng_vocab *vocab_in = NULL;
    if (is_text && c->vocab && !(vocab_in = vocab_from_blob(c->vocab, c->vocab_bytes, err, errlen)))
        return 2;
    text.vocab_in = vocab_in;
    text.vocab_out = NULL;
    rc = wk_stream_open(&data, o->data, def->dataset, is_text ? &text : NULL,
                        wk_record_of(c).val_split, 0, 1, (uint64_t)wk_record_of(c).seed, chunk, err,
                        errlen);
    eng_vocab_free(&vocab_in);
    if (rc != PST_OK)
        return wk_exit_code(rc);
    const int threads = o->threads > 0 ? (int)o->threads : eng_pool_cpus();
    x = pst_alloc(sizeof(float) * (size_t)chunk * eng_shape_size(model.input));
    labels = pst_alloc((size_t)chunk);
    if (!x || !labels) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (!(net = eng_net_new(&model, chunk, threads, err, errlen)))
        goto out;
    memcpy(eng_net_params(net), c->weights, sizeof(float) * model.layout.total);
    double loss = 0.0, accuracy = 0.0;
    evaluate(net, NULL, &data.data.test, chunk, x, labels, &loss, &accuracy, err, errlen);
    printf("%s at step %lld: test_loss: %.4f - test_accuracy: %.4f (%lld samples)\n", c->model,
           (long long)wk_record_of(c).step, loss, accuracy, (long long)data.data.test.n);
    status = 0;
out:
    pst_free(x);
    pst_free(labels);
    eng_net_free(&net);
    wk_stream_close(&data);
    return status;
}
