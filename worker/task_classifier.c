/* task_classifier.c: the loop's hooks for a classifier (mnist_cnn, fashion_cnn, imdb_lstm). */
#include "worker/task.h"

#include "engine/base/base.h"
#include "worker/guard.h"
#include "worker/simulate.h"
#include "worker/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct classifier {
    wk_task base;
    eng_net *net;
    eng_batch_stats st; /* this epoch's, this worker's */
    wk_touched rows;    /* a text model's: pushes carry the rows a batch used */
    /* the net's gradients-ready calls, turned into early sends of the step's chunks */
    wk_store *store;
    wk_sim *sim; /* --simulate-compute: steps played back, not computed; NULL: real steps */
    int early_rc;
    char *err;
    size_t errlen;
} classifier;

/* Sums st over the job's workers (every worker gets the total). */
static int reduce_stats(wk_store *s, eng_batch_stats *st, char *err, size_t errlen) {
    double v[3] = {st->loss_sum, (double)st->correct, (double)st->count};
    const int rc = s ? wk_store_reduce(s, WK_REDUCE_SUM, v, 3, err, errlen) : PST_OK;
    if (rc == PST_OK)
        *st = (eng_batch_stats){v[0], (int64_t)v[1], (int64_t)v[2]};
    return rc;
}

int wk_evaluate(eng_net *net, wk_store *s, const eng_dataset *d, int chunk, float *x,
                uint8_t *labels, double *loss, double *accuracy, char *err, size_t errlen) {
    eng_batch_stats st = {0};
    for (int64_t first = 0; first < d->n; first += chunk) {
        const int B = (int)(d->n - first < chunk ? d->n - first : chunk);
        eng_dataset_slice(d, first, B, x, labels);
        eng_net_eval(net, x, labels, B, &st);
    }
    const int rc = reduce_stats(s, &st, err, errlen);
    if (rc != PST_OK)
        return rc;
    *loss = st.count ? st.loss_sum / (double)st.count : 0.0;
    *accuracy = st.count ? (double)st.correct / (double)st.count : 0.0;
    return PST_OK;
}

static int classifier_open(wk_task **t, const wk_run *r, char *err, size_t errlen) {
    *t = NULL;
    classifier *c = pst_calloc(1, sizeof *c);
    c->base.ops = &wk_task_classifier;
    if (!(c->net = eng_net_new(r->model, r->chunk, r->threads, err, errlen))) {
        free(c);
        return PST_EARG;
    }
    if (r->resume)
        memcpy(eng_net_params(c->net), r->resume->weights, sizeof(float) * r->model->layout.total);
    else if (r->init)
        memcpy(eng_net_params(c->net), r->init, sizeof(float) * r->model->layout.total);
    else
        eng_model_init_params(r->model, eng_net_params(c->net), (uint64_t)r->o->seed);
    /* Worker w's samples sit at w * batch in the job's combined batch, so its dropout masks
     * are the ones one process training on the combined batch would draw. */
    eng_net_set_sample_base(c->net, (int64_t)r->rank * r->batch);
    *t = &c->base;
    return PST_OK;
}

static void classifier_close(wk_task *t) {
    classifier *c = (classifier *)t;
    wk_touched_free(&c->rows);
    free(c->sim);
    eng_net_free(&c->net);
    free(c);
}

static eng_net *classifier_net(wk_task *t, int part) {
    PST_ASSERT(part == 0, "a classifier has one part, not %d", part);
    return ((classifier *)t)->net;
}

static void send_ready(void *ctx, size_t lo) {
    classifier *c = ctx;
    if (c->sim && !wk_sim_playing(c->sim))
        wk_sim_note(c->sim, lo);
    if (c->store && c->early_rc == PST_OK)
        c->early_rc = wk_store_ready(c->store, 0, lo, c->err, c->errlen);
}

static int classifier_start(wk_task *t, const wk_run *r, char *err, size_t errlen) {
    (void)err, (void)errlen;
    classifier *c = (classifier *)t;
    if (r->o->simulate_ms > 0) {
        c->sim = pst_malloc(sizeof *c->sim);
        wk_sim_init(c->sim, r->o->simulate_ms);
        eng_net_on_grads_ready(c->net, send_ready, c);
    }
    if (!wk_store_remote(r->store))
        return PST_OK;
    /* A layer's gradients go to the servers as soon as backward has finished them, while the
     * layers below are still computed. */
    c->store = r->store;
    eng_net_on_grads_ready(c->net, send_ready, c);
    if (!r->o->dense_pushes)
        wk_touched_init(&c->rows, r->model);
    return PST_OK;
}

static void classifier_banner(wk_task *t, const wk_run *r) {
    (void)t;
    char optim[160];
    eng_optim_format(&r->cfg[0], optim, sizeof optim); /* what runs: a checkpoint's wins */
    const wk_opts *o = r->o;
    const size_t nparams = r->model->layout.total;
    if (wk_store_remote(r->store))
        printf("%s: %d worker(s) x batch %d = global batch %d; mode %s; %d server(s); %zu "
               "parameters; %s; %d threads per worker\n",
               r->model->def->name, r->world, r->batch, r->world * r->batch, o->mode,
               wk_store_servers(r->store), nparams, optim, r->threads);
    else
        printf("%s: %lld train, %lld validation, %lld test samples; %zu parameters; batch %d; "
               "%s; %d threads\n",
               r->model->def->name, (long long)r->data->data.train.n,
               (long long)r->data->data.val.n, (long long)r->data->data.test.n, nparams, r->batch,
               optim, r->threads);
}

static void classifier_reshard(wk_task *t, const wk_run *r) {
    eng_net_set_sample_base(((classifier *)t)->net, (int64_t)r->rank * r->batch);
}

static void classifier_epoch_begin(wk_task *t) { ((classifier *)t)->st = (eng_batch_stats){0}; }

static int classifier_step(wk_task *t, const wk_run *r, int B, uint64_t key, char *err,
                           size_t errlen) {
    classifier *c = (classifier *)t;
    if (c->rows.rows) { /* pushes of the embedding carry only the rows this batch used */
        wk_touched_collect(&c->rows, r->x, (size_t)B * eng_shape_size(r->model->input));
        wk_store_step_sparse(r->store, 0, &c->rows.sp);
    }
    c->err = err;
    c->errlen = errlen;
    if (c->sim && wk_sim_playing(c->sim)) { /* the lab: the last real gradient, sent in time */
        wk_sim_step(c->sim, send_ready, c);
        c->st.count += B;
        return c->early_rc;
    }
    if (c->sim)
        wk_sim_begin(c->sim);
    const double loss0 = c->st.loss_sum;
    eng_net_train_step(c->net, r->x, r->labels, B, key, &c->st);
    if (c->sim)
        wk_sim_end(c->sim);
    if (c->early_rc != PST_OK) /* a non-finite gradient stopped the early sends */
        return c->early_rc;
    return wk_guard_loss(r->store, "loss", (c->st.loss_sum - loss0) / B, err, errlen);
}

static void classifier_progress(wk_task *t, const wk_run *r, int64_t s, double elapsed) {
    const eng_batch_stats *st = &((classifier *)t)->st;
    char figures[96];
    snprintf(figures, sizeof figures, "loss: %.4f - accuracy: %.4f",
             st->loss_sum / (double)st->count, (double)st->correct / (double)st->count);
    wk_progress_step(r->prog, s, figures,
                     elapsed > 0 ? (double)st->count * r->world / elapsed : 0.0);
}

static int classifier_epoch_end(wk_task *t, const wk_run *r, int64_t epoch, double dt, double bytes,
                                int64_t *trained, char *err, size_t errlen) {
    classifier *c = (classifier *)t;
    int rc = reduce_stats(r->store, &c->st, err, errlen);
    if (rc != PST_OK)
        return rc;
    *trained = c->st.count;
    wk_epoch_report rep = {.epoch = epoch,
                           .loss = c->st.loss_sum / (double)c->st.count,
                           .accuracy = (double)c->st.correct / (double)c->st.count,
                           .samples_per_sec = (double)c->st.count / dt,
                           .push_bytes_per_step = bytes};
    if ((rc = wk_evaluate(c->net, r->store, &r->data->data.val, r->chunk, r->x, r->labels,
                          &rep.val_loss, &rep.val_accuracy, err, errlen)) != PST_OK)
        return rc;
    if (r->lead) {
        rep.seconds = pst_now() - r->prog->epoch_start;
        wk_progress_epoch_end(r->prog, &rep);
    }
    return PST_OK;
}

static const float *classifier_average(wk_task *t, int part, double *decay) {
    (void)t, (void)part;
    *decay = 0.0;
    return NULL;
}

static int classifier_finish(wk_task *t, const wk_run *r, double samples_per_sec, double t_start,
                             char *err, size_t errlen) {
    classifier *c = (classifier *)t;
    double loss, accuracy;
    const int rc = wk_evaluate(c->net, r->store, &r->data->data.test, r->chunk, r->x, r->labels,
                               &loss, &accuracy, err, errlen);
    if (rc == PST_OK && r->lead)
        wk_progress_final(r->prog, loss, accuracy, samples_per_sec, pst_now() - t_start);
    return rc;
}

static int classifier_lead(wk_task *t, const wk_run *r, char *err, size_t errlen) {
    (void)t, (void)r, (void)err, (void)errlen;
    return PST_OK; /* a classifier's lead keeps nothing of its own */
}

const wk_task_ops wk_task_classifier = {
    classifier_open,     classifier_close,     classifier_net,         classifier_start,
    classifier_banner,   classifier_reshard,   classifier_epoch_begin, classifier_step,
    classifier_progress, classifier_epoch_end, classifier_average,     classifier_finish,
    classifier_lead,
};

const wk_task_ops *wk_task_of(const eng_model *m) {
    return m->nparts > 1 ? &wk_task_gan : &wk_task_classifier;
}
