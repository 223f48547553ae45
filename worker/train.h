/* train.h: the training loop, in one process or as one worker of a parameter-server job.
 *
 * One process: the optimizer runs here over the whole flat vector. As a worker: the rank's
 * share of the data, gradients pushed to the servers and weights pulled back each step,
 * evaluation results reduced over the workers (through server 0) and reported by worker 0.
 * The per-worker batch is --batch; the global batch is workers x batch (see README). */
#ifndef PSTRAIN_WORKER_TRAIN_H
#define PSTRAIN_WORKER_TRAIN_H

#include "engine/ckpt/ckpt.h"
#include "worker/cli.h"

#include <signal.h>
#include <stddef.h>

/* The job around a worker. */
typedef struct wk_job {
    int worker_id, num_workers;
    int num_servers;
    const char *const *endpoints; /* server s at endpoints[s] */
    /* a GAN: the servers of the discriminator's vector (endpoints: the generator's) */
    const char *const *disc_endpoints;
    struct wk_client *coord; /* the client of server 0, through which workers agree (set by
                                the training loop) */
    const struct wk_heartbeat *heartbeat; /* says when a server is lost (NULL: none) */
    int *joined; /* set to 1 once connected to every server: a failure before that is the
                    whole job's (nothing can start), after it only this worker's */
    const struct pb_keys *keys; /* --secure: the job's CURVE keys (NULL: plain TCP) */
    int *lost; /* set to 1 when the job lost workers (MPI_Finalize would wait for them) */
} wk_job;

/* wk_train's status when it stopped early on request (stop), after a last checkpoint: the
 * job can be resumed (EX_TEMPFAIL). */
#define WK_STOPPED 75

/* Runs `pstrain train` as o describes; job is NULL for one process. resume (NULL: a fresh
 * start) is the checkpoint to continue from, validated for this model. stop (may be NULL)
 * is set by a signal handler: with --checkpoint-dir, the job then writes a checkpoint at the
 * next step every worker reaches and returns WK_STOPPED. Returns 0 on success, 2 on bad
 * input (the message in err names the file or flag), 1 on other failures. */
int wk_train(const wk_opts *o, const wk_job *job, const eng_ckpt *resume,
             volatile sig_atomic_t *stop, char *err, size_t errlen);

/* `pstrain eval` of a classifier (a GAN's is wk_gan_eval): c's weights on the test set
 * (the split c was trained with), one line to stdout. Returns 0, 2 on bad input, 1 on other
 * failures. */
int wk_eval(const wk_opts *o, const eng_ckpt *c, char *err, size_t errlen);

#endif
