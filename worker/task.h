/* task.h: what the one training loop (worker/train.c) asks of a model, the part that is not
 * the same for every model: its networks, its step, and what it reports.
 *
 *   classifier (task_classifier.c): one network on labelled batches; loss and accuracy,
 *     validation at each epoch's end and the test set at the end; a text model's pushes
 *     carry only the embedding rows a batch used.
 *   GAN (task_gan.c): generator and discriminator trained in one step (engine/gan.h); both
 *     losses, and at each epoch's end a grid of samples and the judge's scores.
 *
 * Everything else (data, steps, the store, checkpoints, the stop vote, worker loss, the
 * report) is the loop's. Internal to worker/. */
#ifndef PSTRAIN_WORKER_TASK_H
#define PSTRAIN_WORKER_TASK_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "worker/opts.h"
#include "worker/report/progress.h"
#include "worker/store.h"
#include "worker/stream.h"

#include <stddef.h>
#include <stdint.h>

/* The loop's state a task sees. */
typedef struct wk_run {
    const wk_opts *o;
    const eng_model *model;
    const eng_ckpt *resume;   /* NULL: a fresh start */
    const float *init;        /* a fresh start's weights (--init-from); NULL: the initialisers' */
    const eng_optim_cfg *cfg; /* per part: what runs (the checkpoint's when resuming) */
    wk_store *store;
    wk_stream *data;
    wk_progress *prog;
    int lead, rank, world;      /* the lead (the first worker left, or the one process) reports */
    int lead_id;                /* the worker that leads: 0 until it is lost */
    int *members, nmembers;     /* the job's workers' ids, ascending, as this epoch began */
    int worker_id, num_workers; /* in the job as it started (0 of 1 in one process) */
    int threads, batch;
    int chunk;              /* samples x and labels hold (>= batch) */
    float *x;               /* (chunk, the data's sample shape) */
    uint8_t *labels;        /* (chunk) */
    int64_t step;           /* the global step in progress */
    const eng_vocab *vocab; /* a text model's tokenizer; NULL otherwise */
} wk_run;

typedef struct wk_task wk_task;

typedef struct wk_task_ops {
    /* The model's networks for r (nets[p] trains part p, its weights from the checkpoint or
     * the initialisers, its sample base rank * batch) and the lead's outputs, into *t.
     * Returns PST_OK, or a code with err (*t then NULL). */
    int (*open)(wk_task **t, const wk_run *r, char *err, size_t errlen);
    void (*close)(wk_task *t);
    eng_net *(*net)(wk_task *t, int part);
    /* After the store exists (the weights are the job's): what needs them (early sends, a
     * moving average's start). Returns PST_OK or a code with err. */
    int (*start)(wk_task *t, const wk_run *r, char *err, size_t errlen);
    /* The lead's first line: what trains, on what, how. */
    void (*banner)(wk_task *t, const wk_run *r);
    /* The data is shared by r->world workers now; this one is r->rank. */
    void (*reshard)(wk_task *t, const wk_run *r);
    void (*epoch_begin)(wk_task *t);
    /* Forward and backward of one step over r->x (B samples), gradients into the nets'
     * (some of them already on their way through the store). Returns PST_OK or a code. */
    int (*step)(wk_task *t, const wk_run *r, int B, uint64_t key, char *err, size_t errlen);
    /* The lead's live line after step s of the epoch, elapsed seconds into it. */
    void (*progress)(wk_task *t, const wk_run *r, int64_t s, double elapsed);
    /* Every worker at an epoch's end, on the job's weights: the epoch's figures over the
     * job (through the store's reduce rounds) and the lead's report and outputs; dt is the
     * slowest worker's time and bytes the gradient bytes a step. *trained: the job's
     * samples this epoch. */
    int (*epoch_end)(wk_task *t, const wk_run *r, int64_t epoch, double dt, double bytes,
                     int64_t *trained, char *err, size_t errlen);
    /* A moving average of part p's weights that the run keeps (the lead's), or NULL; *decay
     * its decay, 0 when the run keeps none. */
    const float *(*average)(wk_task *t, int part, double *decay);
    /* At the end, every worker: the test set (a classifier's), the lead's last lines (wall
     * time from t_start). */
    int (*finish)(wk_task *t, const wk_run *r, double samples_per_sec, double t_start, char *err,
                  size_t errlen);
    /* This worker leads from now on (the one that led was lost): the lead's outputs, and a
     * moving average that starts here. Returns PST_OK, or a code with err. */
    int (*lead)(wk_task *t, const wk_run *r, char *err, size_t errlen);
} wk_task_ops;

/* Every task starts with this. */
struct wk_task {
    const wk_task_ops *ops;
};

extern const wk_task_ops wk_task_classifier;
extern const wk_task_ops wk_task_gan;

/* The task of model m: a GAN's for a model in parts, a classifier's otherwise. */
const wk_task_ops *wk_task_of(const eng_model *m);

/* Mean loss and accuracy of net over d: this worker's share, summed over the job's workers
 * through s (NULL: this process alone). x and labels hold chunk samples. */
int wk_evaluate(eng_net *net, wk_store *s, const eng_dataset *d, int chunk, float *x,
                uint8_t *labels, double *loss, double *accuracy, char *err, size_t errlen);

#endif
