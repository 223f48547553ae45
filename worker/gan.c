/* gan.c: the GAN training loop, its checkpoints and its pictures. */
#include "worker/gan.h"

#include "engine/base/base.h"
#include "engine/gan.h"
#include "engine/image.h"
#include "engine/judge.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "engine/pool.h"
#include "engine/rng.h"
#include "engine/score.h"
#include "worker/ckpt/writer.h"
#include "worker/ckpt/record.h"
#include "worker/client.h"
#include "worker/loop.h"
#include "worker/paths.h"
#include "worker/progress.h"
#include "worker/stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GRID_N 64                  /* digits in a --samples grid */
#define KEY_GRID 0x53414D504C45ull /* noise of the grids and of `pstrain sample` */
#define KEY_JUDGE 0x4A55444745ull  /* noise of the judged images */

void wk_gan_optims(const wk_opts *o, const eng_ckpt *resume, eng_optim_cfg cfg[2]) {
    if (resume) { /* the optimizers go on as they were */
        cfg[0] = resume->parts[0].optim;
        cfg[1] = resume->parts[1].optim;
        return;
    }
    char why[300];
    /* wk_cli_parse checked both */
    PST_ASSERT(eng_optim_parse(o->gen_optim, &cfg[0], why, sizeof why) == PST_OK, "%s", why);
    PST_ASSERT(eng_optim_parse(o->disc_optim, &cfg[1], why, sizeof why) == PST_OK, "%s", why);
}

/* The generator's state tensors (BatchNormalization's moving statistics): a worker pushes
 * the change its forward made to them since the weights came from the servers. */
typedef struct state_delta {
    size_t off[ENG_MAX_TENSORS], count[ENG_MAX_TENSORS];
    int n;
    float *base; /* their values as pulled, one after another */
} state_delta;

static int state_init(state_delta *d, const eng_model *m) {
    size_t total = 0;
    d->n = 0;
    for (int i = 0; i < m->layout.n; i++)
        if (m->layout.tensors[i].state) {
            d->off[d->n] = m->layout.tensors[i].offset;
            d->count[d->n++] = m->layout.tensors[i].count;
            total += m->layout.tensors[i].count;
        }
    d->base = malloc(sizeof(float) * (total ? total : 1));
    return d->base ? 0 : -1;
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

/* Both parts' state in the writer's next checkpoint, then the write on its thread (the lead
 * worker, or the one process; every worker takes part in gathering positions). */
static int checkpoint(const wk_opts *o, const wk_job *job, wk_ckpt_writer *writer,
                      wk_client *const client[2], eng_net *const net[2], eng_optim *const opt[2],
                      const eng_optim_cfg cfg[2], uint64_t version[2], const float *ema,
                      wk_position pos, char *err, size_t errlen) {
    eng_ckpt *c;
    double t0;
    /* Take the answers already asked for: the positions' round goes through server 0 too. */
    for (int p = 0; job && p < 2; p++)
        if (wk_client_pull_pending(client[p]) &&
            wk_client_pull_wait(client[p], eng_net_params(net[p]), &version[p], err, errlen) != 0)
            return -1;
    if (wk_ckpt_begin(writer, o, job, pos, &c, &t0, err, errlen) != 0)
        return -1;
    if (!c) /* not the lead: its part was its position */
        return 0;
    for (int p = 0; p < 2; p++) {
        eng_ckpt_part *part = &c->parts[p];
        part->optim = cfg[p];
        float *weights = c->weights + part->offset;
        if (p == 0 && part->ema) /* the writer has room for one when the run keeps one */
            memcpy(part->ema, ema, sizeof(float) * part->total);
        if (job) {
            if (wk_client_pull_pending(client[p]) &&
                wk_client_pull_wait(client[p], eng_net_params(net[p]), &version[p], err, errlen) !=
                    0)
                return -1;
            part->nruns = 0;
            if (wk_client_snapshot(client[p], wk_needed_version(o, (uint64_t)pos.step), weights,
                                   part, err, errlen) != 0)
                return -1;
        } else {
            memcpy(weights, eng_net_params(net[p]), sizeof(float) * part->total);
            for (int i = 0; i < part->nslots; i++)
                memcpy(part->slots[i], eng_optim_slot(opt[p], i), sizeof(float) * part->total);
            part->runs = pst_realloc(part->runs, sizeof *part->runs);
            part->runs[0] = (eng_ckpt_iters){0, part->total, eng_optim_iterations(opt[p])};
            part->nruns = 1;
        }
    }
    return wk_ckpt_end(writer, pos.step, t0, err, errlen);
}

/* The lead's epoch-end outputs: a grid from fixed noise, and the judge's scores. */
typedef struct outputs {
    const char *samples_dir; /* empty: no grids */
    float *grid_z, *grid;    /* (GRID_N, noise), (GRID_N, 784) */
    eng_judge *judge;        /* NULL: no scores */
    size_t judge_n;
    float *judge_z, *judged; /* (judge_n, noise), (judge_n, 784) */
    float *real_feats;       /* (real_n, ENG_JUDGE_FEATURES) of the MNIST test images */
    size_t real_n;
    float *live; /* with a moving average: the generator's own weights while it draws */
} outputs;

static void outputs_free(outputs *out) {
    eng_judge_free(&out->judge);
    free(out->grid_z);
    free(out->grid);
    free(out->judge_z);
    free(out->judged);
    free(out->real_feats);
    free(out->live);
}

/* Prepares the outputs o asks for (on the lead): the directory, the noise, and the judge
 * with its features of the real test images, whose own Inception Score it prints for scale.
 * Returns PST_OK or a code with err naming the flag. */
static int outputs_init(outputs *out, const wk_opts *o, int threads, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->samples_dir = o->samples;
    if (o->samples[0]) {
        int rc = wk_mkdirs("samples", o->samples, err, errlen);
        if (rc != PST_OK)
            return rc;
        out->grid_z = malloc(sizeof(float) * GRID_N * ENG_GAN_NOISE);
        out->grid = malloc(sizeof(float) * GRID_N * 28 * 28);
        if (!out->grid_z || !out->grid)
            return pst_err(err, errlen, PST_ENOMEM, "--samples: out of memory");
        eng_gan_noise(out->grid_z, GRID_N, 0, eng_hash3((uint64_t)o->seed, KEY_GRID, 0));
    }
    if (!o->judge[0])
        return PST_OK;
    char why[1024];
    if (!(out->judge = eng_judge_new(o->judge, 256, threads, why, sizeof why)))
        return pst_err(err, errlen, PST_EFORMAT, "--judge: %s", why);
    eng_split real;
    int rc = eng_split_load_idx(&real, o->data, "mnist", 0.0, 0, 1, why, sizeof why);
    if (rc != PST_OK)
        return pst_err(err, errlen, rc, "--judge: the real test images: %s", why);
    const eng_dataset *test = &real.test;
    out->real_n = (size_t)test->n;
    out->judge_n = (size_t)o->judge_n;
    float *images = malloc(sizeof(float) * out->real_n * 28 * 28);
    float *probs = malloc(sizeof(float) * out->real_n * 10);
    out->real_feats = malloc(sizeof(float) * out->real_n * ENG_JUDGE_FEATURES);
    out->judge_z = malloc(sizeof(float) * out->judge_n * ENG_GAN_NOISE);
    out->judged = malloc(sizeof(float) * out->judge_n * 28 * 28);
    uint8_t *labels = malloc(out->real_n);
    if (!images || !probs || !out->real_feats || !out->judge_z || !out->judged || !labels) {
        rc = pst_err(err, errlen, PST_ENOMEM, "--judge: out of memory");
    } else {
        eng_dataset_slice(test, 0, (int)test->n, images, labels);
        eng_judge_run(out->judge, images, out->real_n, 0.0f, 1.0f, probs, out->real_feats);
        printf("judge %s: the %zu MNIST test images score inception_score %.3f\n", o->judge,
               out->real_n, eng_score_inception(probs, out->real_n, 10));
        eng_gan_noise(out->judge_z, (int)out->judge_n, 0,
                      eng_hash3((uint64_t)o->seed, KEY_JUDGE, 0));
    }
    free(labels);
    free(probs);
    free(images);
    eng_split_deinit(&real);
    return rc;
}

/* The judge's scores of gan's generator as it stands. */
static int outputs_score(outputs *out, eng_gan *gan, double *inception, double *frechet, char *err,
                         size_t errlen) {
    eng_gan_generate(gan, out->judge_z, out->judge_n, out->judged);
    return eng_judge_scores(out->judge, out->judged, out->judge_n, -1.0f, 1.0f, out->real_feats,
                            out->real_n, inception, frechet, err, errlen);
}

/* The epoch's grid and scores into r: of the moving average ema of the generator (split
 * floats) when the run keeps one, the live generator then scored too. Returns PST_OK or a
 * code with err. */
static int outputs_epoch(outputs *out, eng_gan *gan, const float *ema, size_t split, int64_t epoch,
                         wk_gan_report *r, char *err, size_t errlen) {
    const double t0 = pst_now();
    float *params = eng_net_params(eng_gan_generator(gan));
    int rc = PST_OK;
    if (ema && out->judge)
        rc = outputs_score(out, gan, &r->live_inception, &r->live_frechet, err, errlen);
    const int swap = ema && rc == PST_OK;
    if (swap) {
        if (!out->live && !(out->live = malloc(sizeof(float) * split)))
            return pst_err(err, errlen, PST_ENOMEM, "out of memory");
        memcpy(out->live, params, sizeof(float) * split);
        memcpy(params, ema, sizeof(float) * split);
    }
    if (rc == PST_OK && out->samples_dir[0]) {
        char path[WK_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/epoch-%lld.png", out->samples_dir, (long long)epoch);
        eng_gan_generate(gan, out->grid_z, GRID_N, out->grid);
        rc = eng_image_grid_png(path, out->grid, GRID_N, 28, 28, 0, -1.0f, 1.0f, err, errlen);
    }
    if (rc == PST_OK && out->judge)
        rc = outputs_score(out, gan, &r->inception, &r->frechet, err, errlen);
    if (swap)
        memcpy(params, out->live, sizeof(float) * split);
    r->score_seconds = pst_now() - t0;
    return rc;
}

int wk_train_gan(const wk_opts *o, const wk_job *job_in, const eng_ckpt *resume,
                 volatile sig_atomic_t *stop, char *err, size_t errlen) {
    const double t_start = pst_now();
    wk_job jb = job_in ? *job_in : (wk_job){0};
    wk_job *job = job_in ? &jb : NULL; /* its coord is the generator's client, once connected */
    const eng_model_def *def = eng_model_find(o->model);
    const int rank = job ? job->worker_id : 0, world = job ? job->num_workers : 1;
    const int lead = rank == 0;
    eng_model model, part[2];
    wk_stream data = {0};
    eng_gan *gan = NULL;
    eng_optim *opt[2] = {NULL, NULL};
    wk_client *client[2] = {NULL, NULL};
    wk_progress prog = {0};
    wk_ckpt_writer *writer = NULL;
    state_delta state = {0};
    outputs out = {.samples_dir = ""};
    float *x = NULL, *ema = NULL; /* ema: the lead's moving average of the generator */
    uint8_t *labels = NULL;
    int rc, status = 1;

    if ((rc = eng_model_build(&model, def, err, errlen)) != PST_OK ||
        (rc = eng_model_build(&part[0], &def->parts[0], err, errlen)) != PST_OK ||
        (rc = eng_model_build(&part[1], &def->parts[1], err, errlen)) != PST_OK)
        return wk_exit_code(rc);
    rc = wk_stream_open(&data, o->data, def->dataset, NULL, o->val_split, rank, world,
                        (uint64_t)o->seed, (int)o->batch, err, errlen);
    if (rc != PST_OK)
        return wk_exit_code(rc);
    const int cpus = eng_pool_cpus();
    const int threads = o->threads > 0 ? (int)o->threads : cpus;
    const int batch = (int)o->batch;
    if (!(gan = eng_gan_new(&part[0], &part[1], batch, threads, err, errlen)))
        goto out;
    eng_net *net[2] = {eng_gan_generator(gan), eng_gan_discriminator(gan)};
    for (int p = 0; p < 2; p++) {
        if (resume)
            memcpy(eng_net_params(net[p]), resume->weights + resume->parts[p].offset,
                   sizeof(float) * part[p].layout.total);
        else
            eng_model_init_params(&part[p], eng_net_params(net[p]),
                                  eng_model_part_seed((uint64_t)o->seed, p));
    }
    /* Worker w's samples sit at w * batch in the job's combined batch: its noise and dropout
     * masks are those one process training on the combined batch would draw. */
    eng_gan_set_sample_base(gan, (int64_t)rank * batch);
    eng_optim_cfg cfg[2];
    wk_gan_optims(o, resume, cfg);
    /* A resumed run goes on with the average it kept, as with its optimizers. */
    const double ema_decay =
        resume && resume->parts[0].ema ? resume->parts[0].ema_decay : o->ema_decay;
    const size_t split = part[0].layout.total;
    x = pst_alloc(sizeof(float) * (size_t)batch * eng_shape_size(part[1].input));
    labels = pst_alloc((size_t)batch);
    if (!x || !labels || state_init(&state, &part[0]) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int p = 0; !job && p < 2; p++) {
        if (!(opt[p] = eng_optim_new(&cfg[p], part[p].layout.total))) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (resume) {
            for (int i = 0; i < eng_optim_nslots(cfg[p].kind); i++)
                memcpy(eng_optim_slot(opt[p], i), resume->parts[p].slots[i],
                       sizeof(float) * part[p].layout.total);
            eng_optim_set_iterations(opt[p], resume->parts[p].runs[0].iterations);
        }
    }
    if (o->checkpoint_dir[0] && lead &&
        !(writer = wk_ckpt_writer_new(
              &model, o->checkpoint_dir, (int)o->keep,
              (const int[]){eng_optim_nslots(cfg[0].kind), eng_optim_nslots(cfg[1].kind)},
              ema_decay, err, errlen))) {
        status = 2; /* a directory that cannot be used: before any training */
        goto out;
    }
    if (lead && (rc = outputs_init(&out, o, threads, err, errlen)) != PST_OK) {
        status = wk_exit_code(rc);
        goto out;
    }
    uint64_t version[2] = {0, 0}; /* of each part's weights in its net */
    for (int p = 0; job && p < 2; p++) {
        const char *const *endpoints = p ? job->disc_endpoints : job->endpoints;
        client[p] = wk_client_new_keys(endpoints, job->num_servers, rank, world, &part[p],
                                       o->timeout, job->keys, err, errlen);
        if (!client[p] || wk_client_pull_send(client[p], 0, err, errlen) != 0 ||
            wk_client_pull_wait(client[p], eng_net_params(net[p]), &version[p], err, errlen) != 0)
            goto out;
        wk_client_watch(client[p], job->heartbeat);
    }
    if (job) {
        job->coord = client[0];
        if (job->joined)
            *job->joined = 1;
    }
    /* The average starts from the weights the first step trains with. */
    if (lead && ema_decay > 0.0) {
        if (!(ema = malloc(sizeof(float) * split))) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        memcpy(ema, resume && resume->parts[0].ema ? resume->parts[0].ema : eng_net_params(net[0]),
               sizeof(float) * split);
        if (resume && !resume->parts[0].ema)
            printf("the checkpoint keeps no moving average of the generator: it starts here, "
                   "decay %g\n",
                   ema_decay);
    }

    /* Workers' shares differ by at most one sample; all take the smallest's step count. */
    double usable = (double)data.data.train.n;
    if (wk_reduce(job, WK_REDUCE_MIN, &usable, 1, err, errlen) != 0)
        goto out;
    wk_stream_limit(&data, (int64_t)usable);
    const int64_t steps_per_epoch = data.steps_per_epoch;
    if (wk_progress_init(&prog, stdout, lead ? o->metrics : "", lead ? (int)o->progress : 0,
                         o->epochs, steps_per_epoch, err, errlen) != 0) {
        status = 2;
        goto out;
    }
    if (lead) {
        char gs[160], ds[160];
        eng_optim_format(&cfg[0], gs, sizeof gs);
        eng_optim_format(&cfg[1], ds, sizeof ds);
        char how[96] = "one process";
        if (job)
            snprintf(how, sizeof how, "mode %s, %d server(s)", o->mode, job->num_servers);
        printf("%s: %lld images; generator %zu + discriminator %zu parameters; %d worker(s) x "
               "batch %d; %s; generator %s; discriminator %s; %d threads\n",
               def->name, (long long)data.data.train.n * world, part[0].layout.total,
               part[1].layout.total, world, batch, how, gs, ds, threads);
        if (ema)
            printf("grids and scores: a moving average of the generator, decay %g\n", ema_decay);
        wk_banner_more(o, resume);
    }

    const wk_position from = wk_resume_position(resume, world, batch, steps_per_epoch, lead);
    int64_t step = from.step, first_epoch = from.epoch, first_step = from.epoch_step;
    int64_t last_ckpt = resume ? step : -1;
    const int ckpt_on = o->checkpoint_dir[0] != '\0';
    int stopped = 0;
    double train_seconds = 0.0;
    int64_t trained = 0;
    wk_time_split times = {0}; /* this worker's, for the report */
    for (int64_t epoch = first_epoch;
         epoch <= o->epochs && (!o->max_steps || step < o->max_steps) && !stopped; epoch++) {
        if (lead)
            wk_progress_epoch_begin(&prog, epoch);
        wk_stream_epoch(&data, epoch);
        eng_gan_stats st = {0};
        const double t0 = pst_now();
        const uint64_t pushed0 =
            job ? wk_client_bytes_pushed(client[0]) + wk_client_bytes_pushed(client[1]) : 0;
        const int64_t step0 = step;
        int64_t s;
        for (s = epoch == first_epoch ? first_step : 0;
             s < steps_per_epoch && (!o->max_steps || step < o->max_steps); s++, step++) {
            if (ckpt_on) {
                const int halt = wk_stop_agreed(job, client, 2, stop);
                const int due = o->checkpoint_every && step > 0 && step % o->checkpoint_every == 0;
                if ((halt || due) && step != last_ckpt) {
                    if (checkpoint(o, job, writer, client, net, opt, cfg, version, ema,
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
            for (size_t i = 0; i < (size_t)B * eng_shape_size(part[1].input); i++)
                x[i] = 2.0f * x[i] - 1.0f; /* the generator's tanh range */
            for (int p = 0; job && p < 2; p++) {
                double t = pst_now();
                if (wk_refresh_weights(o, client[p], eng_net_params(net[p]), &version[p],
                                       (uint64_t)step, err, errlen) != 0)
                    goto out;
                times.pull_s += pst_now() - t;
                t = pst_now();
                if (wk_client_step_begin(client[p], eng_net_grads(net[p]), (uint64_t)step,
                                         version[p], !wk_client_pull_pending(client[p]),
                                         wk_needed_version(o, (uint64_t)step + 1), err,
                                         errlen) != 0)
                    goto out;
                times.push_s += pst_now() - t;
            }
            if (job)
                state_keep(&state, eng_net_params(net[0]));
            double t = pst_now();
            if (ema) /* the weights this step trains with, state included */
                eng_ema_update(ema, eng_net_params(net[0]), split, ema_decay, step);
            eng_gan_step(gan, x, B, wk_step_key((uint64_t)o->seed, step), &st);
            if (!job) {
                eng_net_apply(net[1], opt[1]);
                eng_net_apply(net[0], opt[0]);
            } else {
                state_to_grads(&state, eng_net_params(net[0]), eng_net_grads(net[0]));
            }
            times.compute_s += pst_now() - t;
            t = pst_now();
            for (int p = 1; job && p >= 0; p--)
                if (wk_client_step_end(client[p], err, errlen) != 0)
                    goto out;
            times.push_s += pst_now() - t;
            if (lead) {
                const double dt = pst_now() - t0;
                wk_progress_gan_step(&prog, s + 1, st.d_loss_sum / (double)st.count,
                                     st.g_loss_sum / (double)st.count,
                                     dt > 0 ? (double)st.count * world / dt : 0.0);
            }
        }
        times.total_s += pst_now() - t0;
        if (stopped)
            break;
        /* Report on every update the job has made so far. */
        for (int p = 0; job && p < 2; p++)
            if (wk_final_weights(o, job, client[p], eng_net_params(net[p]), &version[p], step,
                                 step - from.step, err, errlen) != 0)
                goto out;
        double dt = pst_now() - t0;
        double sums[4] = {st.d_loss_sum, st.g_loss_sum, (double)st.d_correct, (double)st.count};
        if (wk_reduce(job, WK_REDUCE_MAX, &dt, 1, err, errlen) != 0 ||
            wk_reduce(job, WK_REDUCE_SUM, sums, 4, err, errlen) != 0)
            goto out;
        if (job && job->lost) { /* the survivors go on with their own shares of the data */
            const int *ids;
            if (wk_client_members(job->coord, &ids) < job->num_workers)
                *job->lost = 1;
        }
        train_seconds += dt;
        trained += (int64_t)sums[3];
        wk_gan_report r = {.epoch = epoch,
                           .d_loss = sums[0] / sums[3],
                           .g_loss = sums[1] / sums[3],
                           .d_accuracy = sums[2] / (2.0 * sums[3]),
                           .samples_per_sec = sums[3] / dt};
        if (job && step > step0)
            r.push_bytes_per_step = (double)(wk_client_bytes_pushed(client[0]) +
                                             wk_client_bytes_pushed(client[1]) - pushed0) /
                                    (double)(step - step0);
        if (lead) {
            if ((rc = outputs_epoch(&out, gan, ema, split, epoch, &r, err, errlen)) != PST_OK) {
                status = wk_exit_code(rc);
                goto out;
            }
            r.seconds = pst_now() - prog.epoch_start;
            wk_progress_gan_epoch_end(&prog, &r);
            for (int p = 0; job && o->metrics[0] && p < 2; p++) {
                const wk_server_stats *ss = wk_client_stats(client[p], err, errlen);
                if (!ss)
                    goto out;
                wk_progress_servers(&prog, epoch, p ? "discriminator" : "generator", ss,
                                    job->num_servers);
            }
            if (wk_progress_check(&prog, err, errlen) != 0)
                goto out;
        }
        const wk_position end =
            s < steps_per_epoch ? (wk_position){step, epoch, s} : (wk_position){step, epoch + 1, 0};
        if (ckpt_on && step != last_ckpt) {
            if (checkpoint(o, job, writer, client, net, opt, cfg, version, ema, end, err, errlen) !=
                0)
                goto out;
            last_ckpt = step;
        }
    }
    if (writer && wk_ckpt_writer_wait(writer, stdout, err, errlen) != 0)
        goto out;
    for (int p = 0; job && p < 2; p++) {
        if (wk_client_pull_pending(client[p]) &&
            wk_client_pull_wait(client[p], eng_net_params(net[p]), &version[p], err, errlen) != 0)
            goto out;
        if (wk_client_shutdown(client[p], NULL, err, errlen) != 0)
            goto out;
    }
    if (stopped) {
        if (lead)
            printf("stopped at step %lld on request; resume with --resume %s\n", (long long)step,
                   o->checkpoint_dir);
        fflush(stdout);
        status = WK_STOPPED;
        goto out;
    }
    if (lead && o->dump_weights[0]) { /* the checkpoint's flat vector: generator first */
        const void *bufs[2] = {eng_net_params(net[0]), eng_net_params(net[1])};
        const size_t lens[2] = {sizeof(float) * part[0].layout.total,
                                sizeof(float) * part[1].layout.total};
        if (wk_write_whole("dump-weights", o->dump_weights, bufs, lens, 2, err, errlen) != 0) {
            status = 2;
            goto out;
        }
    }
    if (lead) {
        printf("trained %lld steps\n", (long long)step);
        wk_progress_report(
            &prog, pst_now() - t_start, train_seconds > 0 ? (double)trained / train_seconds : 0.0,
            &times, job ? wk_client_last_stats(client[0]) : NULL, job ? job->num_servers : 0);
    }
    if (wk_progress_check(&prog, err, errlen) != 0)
        goto out;
    status = 0;
out:
    for (int p = 0; status != 0 && status != WK_STOPPED && p < 2; p++)
        wk_client_fail(client[p], err);
    wk_ckpt_writer_free(&writer);
    outputs_free(&out);
    wk_progress_deinit(&prog);
    free(state.base);
    free(ema);
    pst_free(x);
    pst_free(labels);
    for (int p = 0; p < 2; p++) {
        eng_optim_free(&opt[p]);
        wk_client_free(&client[p]);
    }
    eng_gan_free(&gan);
    wk_stream_close(&data);
    return status;
}

/* Which of checkpoint c's generators o asks for: the moving average, when c keeps one and o
 * does not say --live, or the generator's own weights; *what says which, for a person. */
static const float *generator_of(const wk_opts *o, const eng_ckpt *c, char *what, size_t len) {
    if (c->parts[0].ema && !o->live) {
        snprintf(what, len, "the moving average of the generator (decay %g)",
                 c->parts[0].ema_decay);
        return c->parts[0].ema;
    }
    snprintf(what, len, "the generator's own weights%s",
             c->parts[0].ema ? "" : " (the checkpoint keeps no moving average)");
    return c->weights;
}

/* The GAN of checkpoint c (a GAN's) with the generator o asks for (*what says which), for up
 * to max_batch images a call on `threads` threads; part receives the two networks' models and
 * must outlive it. NULL with err and *status (wk_exit_code's) when it cannot be built. */
static eng_gan *gan_of(const wk_opts *o, const eng_ckpt *c, eng_model part[2], int max_batch,
                       int threads, char *what, size_t whatlen, int *status, char *err,
                       size_t errlen) {
    const eng_model_def *def = eng_model_find(c->model);
    int rc;
    if ((rc = eng_model_build(&part[0], &def->parts[0], err, errlen)) != PST_OK ||
        (rc = eng_model_build(&part[1], &def->parts[1], err, errlen)) != PST_OK) {
        *status = wk_exit_code(rc);
        return NULL;
    }
    eng_gan *gan = eng_gan_new(&part[0], &part[1], max_batch, threads, err, errlen);
    if (!gan) {
        *status = 1;
        return NULL;
    }
    memcpy(eng_net_params(eng_gan_generator(gan)), generator_of(o, c, what, whatlen),
           sizeof(float) * part[0].layout.total);
    return gan;
}

int wk_sample(const wk_opts *o, const eng_ckpt *c, char *err, size_t errlen) {
    const eng_model_def *def = eng_model_find(c->model);
    if (!def->parts) {
        pst_err(err, errlen, PST_EARG, "%s: a checkpoint of %s; sample needs a GAN's",
                o->checkpoint, c->model);
        return 2;
    }
    eng_model part[2];
    const int n = (int)o->n;
    int status = 1;
    char what[96];
    eng_gan *gan = gan_of(o, c, part, n < 64 ? n : 64, eng_pool_cpus(), what, sizeof what, &status,
                          err, errlen);
    if (!gan)
        return status;
    float *z = malloc(sizeof(float) * (size_t)n * ENG_GAN_NOISE);
    float *images = malloc(sizeof(float) * (size_t)n * eng_shape_size(part[0].output));
    if (z && images) {
        eng_gan_noise(z, n, 0, eng_hash3((uint64_t)o->seed, KEY_GRID, 0));
        eng_gan_generate(gan, z, (size_t)n, images);
        const int rc = eng_image_grid_png(o->out, images, n, part[0].output.h, part[0].output.w, 0,
                                          -1.0f, 1.0f, err, errlen);
        status = rc == PST_OK ? 0 : wk_exit_code(rc);
        if (status == 0)
            printf("%s: %d digits from %s at step %lld (noise seed %lld), %s\n", o->out, n,
                   c->model, (long long)wk_record_of(c).step, (long long)o->seed, what);
    } else {
        snprintf(err, errlen, "out of memory");
    }
    free(z);
    free(images);
    eng_gan_free(&gan);
    return status;
}

/* What makes up an Inception Score of probs (n, 10): the entropy of p(y) (ln 10 when the
 * digits are spread evenly) less the mean entropy of p(y|x) (0 when the judge is sure of
 * every digit), and the share of each class among the judge's answers, so that a low score
 * says whether digits are missing or unclear. */
static void print_classes(const float *probs, size_t n) {
    double py[ENG_JUDGE_CLASSES] = {0}, share[ENG_JUDGE_CLASSES] = {0}, h_cond = 0.0, h_marg = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * ENG_JUDGE_CLASSES;
        int best = 0;
        for (int c = 0; c < ENG_JUDGE_CLASSES; c++) {
            py[c] += p[c];
            if (p[c] > 0.0f)
                h_cond -= p[c] * log(p[c]);
            if (p[c] > p[best])
                best = c;
        }
        share[best] += 1.0;
    }
    for (int c = 0; c < ENG_JUDGE_CLASSES; c++)
        if (py[c] > 0.0)
            h_marg -= py[c] / (double)n * log(py[c] / (double)n);
    printf("  entropy of p(y) %.4f nats (ln 10 = 2.3026), mean entropy of p(y|x) %.4f\n  "
           "the judge's answers:",
           h_marg, h_cond / (double)n);
    for (int c = 0; c < ENG_JUDGE_CLASSES; c++)
        printf(" %d: %.1f%%", c, 100.0 * share[c] / (double)n);
    printf("\n");
}

int wk_gan_eval(const wk_opts *o, const eng_ckpt *c, char *err, size_t errlen) {
    if (!o->judge[0]) {
        snprintf(err, errlen,
                 "%s: a checkpoint of %s, which has no test accuracy: score it with --judge "
                 "FILE|DIR (an mnist_cnn checkpoint), or draw it with pstrain sample",
                 o->checkpoint, c->model);
        return 2;
    }
    const int threads = o->threads > 0 ? (int)o->threads : eng_pool_cpus();
    eng_model part[2];
    outputs out;
    float *probs = NULL, *feats = NULL;
    int rc, status = 1;
    char what[96];
    eng_gan *gan = gan_of(o, c, part, 256, threads, what, sizeof what, &status, err, errlen);
    if (!gan)
        return status;
    if ((rc = outputs_init(&out, o, threads, err, errlen)) != PST_OK) {
        status = wk_exit_code(rc);
        goto done;
    }
    probs = malloc(sizeof(float) * out.judge_n * ENG_JUDGE_CLASSES);
    feats = malloc(sizeof(float) * out.judge_n * ENG_JUDGE_FEATURES);
    if (!probs || !feats) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    eng_gan_generate(gan, out.judge_z, out.judge_n, out.judged);
    eng_judge_run(out.judge, out.judged, out.judge_n, -1.0f, 1.0f, probs, feats);
    double frechet;
    if ((rc = eng_score_frechet(feats, out.judge_n, out.real_feats, out.real_n, ENG_JUDGE_FEATURES,
                                &frechet, err, errlen)) != PST_OK) {
        status = wk_exit_code(rc);
        goto done;
    }
    printf("%s at step %lld, %s\n", c->model, (long long)wk_record_of(c).step, what);
    printf("%zu digits (noise seed %lld): inception_score %.3f, frechet %.3f\n", out.judge_n,
           (long long)o->seed, eng_score_inception(probs, out.judge_n, ENG_JUDGE_CLASSES), frechet);
    print_classes(probs, out.judge_n);
    status = 0;
done:
    free(probs);
    free(feats);
    eng_gan_free(&gan);
    outputs_free(&out);
    return status;
}
