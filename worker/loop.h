/* loop.h: what the training loops share (train.c's for one network, gan.c's for a GAN's
 * two): the weights' version each step needs, taking pull answers, the stop vote, and the
 * bookkeeping of a checkpoint. Internal to worker/. */
#ifndef PSTRAIN_WORKER_LOOP_H
#define PSTRAIN_WORKER_LOOP_H

#include "engine/ckpt.h"
#include "worker/checkpoint.h"
#include "worker/cli.h"
#include "worker/client.h"
#include "worker/train.h"

#include <mpi.h>
#include <signal.h>
#include <stdint.h>

/* Where a run is, for checkpoints. */
typedef struct wk_position {
    int64_t step;       /* steps done by every worker: the next step's index */
    int64_t epoch;      /* in progress, 1-based */
    int64_t epoch_step; /* steps of it done */
} wk_position;

/* Where a run starts: the checkpoint's step and epoch when resuming (NULL: step 0 of epoch
 * 1). Other counts of workers or another batch make other steps: the epoch goes on from the
 * same share of its samples. The lead says where. */
wk_position wk_resume_position(const eng_ckpt *resume, int world, int batch,
                               int64_t steps_per_epoch, int lead);

/* The weights' version a worker needs before computing step `next`: every update (sync),
 * all but the last S (ssp), whatever is there (async). */
uint64_t wk_needed_version(const wk_opts *o, uint64_t next);

/* Brings params to at least version `needed`: takes the pull answers that have arrived,
 * and waits for the rest only when the weights are older than that. So in async and ssp
 * modes the round trip overlaps the next step's compute; sync always waits. */
int wk_refresh_weights(wk_client *c, float *params, uint64_t *version, uint64_t needed, char *err,
                       size_t errlen);

/* Waits for the weights with every update of the job's first `steps` steps: sync and ssp
 * make one update per step, async one per worker per step. */
int wk_final_weights(const wk_opts *o, wk_client *c, float *params, uint64_t *version,
                     int64_t steps, int world, char *err, size_t errlen);

/* Whether every worker should stop now: someone got a signal or a server said it is
 * stopping. The vote is an MPI_Iallreduce started one step earlier, so that waiting for it
 * costs nothing; every worker sees the same result at the same step. */
typedef struct wk_stop_vote {
    MPI_Request req;
    int mine, all, started;
} wk_stop_vote;
int wk_stop_agreed(wk_stop_vote *v, const wk_job *job, volatile sig_atomic_t *stop,
                   int server_stopping);
void wk_stop_vote_end(wk_stop_vote *v);

/* A checkpoint in two halves around filling its state. wk_ckpt_begin: every worker calls it
 * (they gather their positions on the lead); on the one with a writer it waits for the last
 * write and returns in *c the next checkpoint, its progress and run configuration filled,
 * and the time it started in *t0; elsewhere *c is NULL. wk_ckpt_end says how long training
 * paused and hands the checkpoint to the writer's thread. Both return 0 or -1 with err. */
int wk_ckpt_begin(wk_ckpt_writer *writer, const wk_opts *o, const wk_job *job, wk_position pos,
                  eng_ckpt **c, double *t0, char *err, size_t errlen);
int wk_ckpt_end(wk_ckpt_writer *writer, int64_t step, double t0, char *err, size_t errlen);

/* Sums st's doubles over the job's workers (every worker gets the totals). */
void wk_reduce_sums(const wk_job *job, double *v, int n);

/* The exit status for an engine error code: 2 for bad input, 1 otherwise. */
int wk_exit_code(int rc);

#endif
