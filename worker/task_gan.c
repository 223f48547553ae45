/* task_gan.c: the loop's hooks for a GAN (mnist_gan): generator and discriminator, each a
 * part of its own, trained in one step (engine/gan.h). */
#include "worker/task.h"

#include "engine/base/base.h"
#include "engine/gan.h"
#include "worker/gan_outputs.h"
#include "worker/guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gan_task {
    wk_task base;
    eng_model part[2]; /* generator, discriminator: the gan borrows them */
    eng_gan *gan;
    eng_gan_stats st;   /* this epoch's, this worker's */
    wk_gan_outputs out; /* the lead's grids and scores */
    float *ema;         /* the lead's moving average of the generator; NULL: none */
    double ema_decay;
} gan_task;

static void gan_close(wk_task *t);

static int gan_open(wk_task **t, const wk_run *r, char *err, size_t errlen) {
    *t = NULL;
    gan_task *g = pst_calloc(1, sizeof *g);
    g->base.ops = &wk_task_gan;
    PST_ASSERT(r->model->nparts == 2, "%s: a GAN has 2 parts, not %d", r->model->def->name,
               r->model->nparts);
    for (int p = 0; p < 2; p++)
        eng_model_part(r->model, p, &g->part[p]);
    if (!(g->gan = eng_gan_new(&g->part[0], &g->part[1], r->batch, r->threads, err, errlen))) {
        free(g);
        return PST_EARG;
    }
    eng_net *net[2] = {eng_gan_generator(g->gan), eng_gan_discriminator(g->gan)};
    for (int p = 0; p < 2; p++) {
        if (r->resume)
            memcpy(eng_net_params(net[p]), r->resume->weights + r->model->parts[p].offset,
                   sizeof(float) * r->model->parts[p].total);
        else if (r->init)
            memcpy(eng_net_params(net[p]), r->init + r->model->parts[p].offset,
                   sizeof(float) * r->model->parts[p].total);
        else
            eng_model_init_params(&g->part[p], eng_net_params(net[p]),
                                  eng_model_part_seed((uint64_t)r->o->seed, p));
    }
    /* Worker w's samples sit at w * batch in the job's combined batch: its noise and dropout
     * masks are those one process training on the combined batch would draw. */
    eng_gan_set_sample_base(g->gan, (int64_t)r->rank * r->batch);
    /* A resumed run goes on with the average it kept, as with its optimizers. */
    const eng_ckpt_part *gen = r->resume ? &r->resume->parts[0] : NULL;
    g->ema_decay = gen && gen->ema ? gen->ema_decay : r->o->ema_decay;
    const int rc = r->lead ? wk_gan_outputs_init(&g->out, r->o, r->threads, err, errlen) : PST_OK;
    if (rc != PST_OK) {
        gan_close(&g->base);
        return rc;
    }
    *t = &g->base;
    return PST_OK;
}

static void gan_close(wk_task *t) {
    gan_task *g = (gan_task *)t;
    wk_gan_outputs_free(&g->out);
    free(g->ema);
    eng_gan_free(&g->gan);
    free(g);
}

static eng_net *gan_net(wk_task *t, int part) {
    gan_task *g = (gan_task *)t;
    PST_ASSERT(part == 0 || part == 1, "a GAN has 2 parts, not part %d", part);
    return part ? eng_gan_discriminator(g->gan) : eng_gan_generator(g->gan);
}

/* The lead's moving average of the generator, from `from` (NULL: the generator's weights
 * now), when the run keeps one: returns whether it does. */
static int start_average(gan_task *g, const float *from) {
    if (g->ema_decay <= 0.0)
        return 0;
    const size_t n = g->part[0].layout.total;
    if (!g->ema)
        g->ema = pst_malloc(sizeof(float) * n);
    memcpy(g->ema, from ? from : eng_net_params(eng_gan_generator(g->gan)), sizeof(float) * n);
    return 1;
}

static int gan_start(wk_task *t, const wk_run *r, char *err, size_t errlen) {
    gan_task *g = (gan_task *)t;
    (void)err, (void)errlen;
    if (!r->lead)
        return PST_OK;
    /* The average starts from the weights the first step trains with. */
    const float *from = r->resume ? r->resume->parts[0].ema : NULL;
    if (start_average(g, from) && r->resume && !from)
        printf("the checkpoint keeps no moving average of the generator: it starts here, "
               "decay %g\n",
               g->ema_decay);
    return PST_OK;
}

static void gan_banner(wk_task *t, const wk_run *r) {
    gan_task *g = (gan_task *)t;
    char gs[160], ds[160], how[96] = "one process";
    eng_optim_format(&r->cfg[0], gs, sizeof gs);
    eng_optim_format(&r->cfg[1], ds, sizeof ds);
    if (wk_store_remote(r->store))
        snprintf(how, sizeof how, "mode %s, %d server(s)", r->o->mode, wk_store_servers(r->store));
    printf("%s: %lld images; generator %zu + discriminator %zu parameters; %d worker(s) x "
           "batch %d; %s; generator %s; discriminator %s; %d threads\n",
           r->model->def->name, (long long)r->data->data.train.n * r->world,
           g->part[0].layout.total, g->part[1].layout.total, r->world, r->batch, how, gs, ds,
           r->threads);
    if (g->ema)
        printf("grids and scores: a moving average of the generator, decay %g\n", g->ema_decay);
}

static void gan_reshard(wk_task *t, const wk_run *r) {
    eng_gan_set_sample_base(((gan_task *)t)->gan, (int64_t)r->rank * r->batch);
}

static void gan_epoch_begin(wk_task *t) { ((gan_task *)t)->st = (eng_gan_stats){0}; }

static int gan_step(wk_task *t, const wk_run *r, int B, uint64_t key, char *err, size_t errlen) {
    gan_task *g = (gan_task *)t;
    for (size_t i = 0; i < (size_t)B * eng_shape_size(g->part[1].input); i++)
        r->x[i] = 2.0f * r->x[i] - 1.0f; /* the generator's tanh range */
    if (g->ema)                          /* the weights this step trains with, state included */
        eng_ema_update(g->ema, eng_net_params(gan_net(t, 0)), g->part[0].layout.total, g->ema_decay,
                       r->step);
    const double d0 = g->st.d_loss_sum, g0 = g->st.g_loss_sum;
    eng_gan_step(g->gan, r->x, B, key, &g->st);
    const int rc =
        wk_guard_loss(r->store, "discriminator loss", (g->st.d_loss_sum - d0) / B, err, errlen);
    return rc == PST_OK
               ? wk_guard_loss(r->store, "generator loss", (g->st.g_loss_sum - g0) / B, err, errlen)
               : rc;
}

static void gan_progress(wk_task *t, const wk_run *r, int64_t s, double elapsed) {
    const eng_gan_stats *st = &((gan_task *)t)->st;
    char figures[96];
    snprintf(figures, sizeof figures, "d_loss: %.4f - g_loss: %.4f",
             st->d_loss_sum / (double)st->count, st->g_loss_sum / (double)st->count);
    wk_progress_step(r->prog, s, figures,
                     elapsed > 0 ? (double)st->count * r->world / elapsed : 0.0);
}

static int gan_epoch_end(wk_task *t, const wk_run *r, int64_t epoch, double dt, double bytes,
                         int64_t *trained, char *err, size_t errlen) {
    gan_task *g = (gan_task *)t;
    double sums[4] = {g->st.d_loss_sum, g->st.g_loss_sum, (double)g->st.d_correct,
                      (double)g->st.count};
    int rc = wk_store_reduce(r->store, WK_REDUCE_SUM, sums, 4, err, errlen);
    if (rc != PST_OK)
        return rc;
    *trained = (int64_t)sums[3];
    wk_gan_report rep = {.epoch = epoch,
                         .d_loss = sums[0] / sums[3],
                         .g_loss = sums[1] / sums[3],
                         .d_accuracy = sums[2] / (2.0 * sums[3]),
                         .samples_per_sec = sums[3] / dt,
                         .push_bytes_per_step = bytes};
    if (!r->lead)
        return PST_OK;
    if ((rc = wk_gan_outputs_epoch(&g->out, g->gan, g->ema, g->part[0].layout.total, epoch, &rep,
                                   err, errlen)) != PST_OK)
        return rc;
    rep.seconds = pst_now() - r->prog->epoch_start;
    wk_progress_gan_epoch_end(r->prog, &rep);
    return PST_OK;
}

static const float *gan_average(wk_task *t, int part, double *decay) {
    gan_task *g = (gan_task *)t;
    *decay = g->ema_decay;
    return part == 0 ? g->ema : NULL;
}

static int gan_finish(wk_task *t, const wk_run *r, double samples_per_sec, double t_start,
                      char *err, size_t errlen) {
    (void)t, (void)samples_per_sec, (void)t_start, (void)err, (void)errlen;
    if (r->lead)
        printf("trained %lld steps\n", (long long)r->step);
    return PST_OK;
}

/* A worker that takes over: the lead's grids and scores from here, and its moving average,
 * which went with the lead that kept it, starts again from the generator as it is. */
static int gan_lead(wk_task *t, const wk_run *r, char *err, size_t errlen) {
    gan_task *g = (gan_task *)t;
    const int rc = wk_gan_outputs_init(&g->out, r->o, r->threads, err, errlen);
    if (rc == PST_OK && start_average(g, NULL))
        printf("the moving average of the generator went with the lead that kept it: it starts "
               "again here, decay %g\n",
               g->ema_decay);
    return rc;
}

const wk_task_ops wk_task_gan = {
    gan_open, gan_close,    gan_net,       gan_start,   gan_banner, gan_reshard, gan_epoch_begin,
    gan_step, gan_progress, gan_epoch_end, gan_average, gan_finish, gan_lead,
};
