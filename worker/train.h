/* train.h: the training loop, for every model, in one process or as one worker of a
 * parameter-server job.
 *
 * One process: each part's optimizer runs here over its vector. As a worker: the rank's
 * share of the data, gradients pushed to the servers and weights pulled back each step,
 * evaluation results reduced over the workers (through server 0) and reported by worker 0.
 * The per-worker batch is --batch; the global batch is workers x batch (see README). */
#ifndef PSTRAIN_WORKER_TRAIN_H
#define PSTRAIN_WORKER_TRAIN_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "worker/opts.h"

#include <signal.h>
#include <stddef.h>

/* The job around a worker. */
typedef struct wk_job {
    int worker_id, num_workers; /* num_workers: the most the job takes (--max-workers) */
    int world;                  /* the workers at the job's start: 0..world-1 */
    int join;                   /* this worker joins the running job (pstrain train --join) */
    int num_servers;
    const char *const *endpoints; /* server s at endpoints[s]: each serves every part */
    const char *const *backups; /* --replicas: server s's shard's copy at backups[s] (NULL: none) */
    struct wk_heartbeat *heartbeat; /* says when a server is lost (NULL: none) */
    int *joined; /* set to 1 once connected to every server: a failure before that is the
                    whole job's (nothing can start), after it only this worker's */
    const struct pb_keys *keys; /* --secure: the job's CURVE keys (NULL: plain TCP) */
    int *lost; /* set to 1 when the job lost workers (MPI_Finalize would wait for them) */
} wk_job;

/* Runs `pstrain train` as o describes, for every model; job is NULL for one process.
 * resume (NULL: a fresh start) is the checkpoint to continue from, validated for this model;
 * init (NULL: the initialisers') the whole model's weights a fresh start begins with
 * (--init-from: worker/init_from.h), its optimizers fresh.
 * stop (may be NULL) is set by a signal handler: with --checkpoint-dir, the job then writes a
 * checkpoint at the next step every worker reaches and returns PST_ESTOPPED. Returns PST_OK,
 * or a code with one line in err (bad input names the file or flag). */
int wk_train(const wk_opts *o, const wk_job *job, const eng_ckpt *resume, const float *init,
             volatile sig_atomic_t *stop, char *err, size_t errlen);

/* The optimizers of the model's parts: the checkpoint's when resuming, else the flags'
 * (--optimizer, --lr, --clipvalue, --decay; a GAN's --gen-optim and --disc-optim). */
void wk_part_optims(const wk_opts *o, const eng_model *m, const eng_ckpt *resume,
                    eng_optim_cfg cfg[ENG_MAX_PARTS]);

#endif
