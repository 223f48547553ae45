/* loop.h: what the training loops share (train.c's for one network, gan.c's for a GAN's
 * two): the weights' version each step needs, taking pull answers, the stop vote, and the
 * bookkeeping of a checkpoint. Internal to worker/. */
#ifndef PSTRAIN_WORKER_LOOP_H
#define PSTRAIN_WORKER_LOOP_H

#include "engine/ckpt/ckpt.h"
#include "worker/ckpt/writer.h"
#include "worker/cli.h"
#include "worker/client.h"
#include "worker/train.h"

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

/* Brings params to what step `step` needs (wk_needed_version): takes the pull answers that
 * have arrived, and waits for the rest only when the weights are older than that; in async
 * mode it also waits for the answer to the last step's pull when that has not come yet. So
 * in ssp the round trip overlaps the next step's compute and sync always waits; in async a
 * worker never computes a second step on weights it has already computed on, whose age
 * would otherwise grow without bound whenever answers come late (a server or worker that
 * shares its core: mean staleness 21-26 updates and diverging jobs with 3 workers on 2 cores,
 * against 7 when the answers keep up). */
int wk_refresh_weights(const wk_opts *o, wk_client *c, float *params, uint64_t *version,
                       uint64_t step, char *err, size_t errlen);

/* Waits for the weights with every update of the job so far: sync and ssp make one update
 * per step (steps: the job's), async one per worker per step (run_steps: this worker's
 * since it connected; the servers wait for every worker still in the job). */
int wk_final_weights(const wk_opts *o, const wk_job *job, wk_client *c, float *params,
                     uint64_t *version, int64_t steps, int64_t run_steps, char *err, size_t errlen);

/* Whether every worker should stop now: a server said it is stopping (a worker got a signal
 * and its pushes said so, or a server got one). Every worker learns it after the same step
 * in sync mode. A signal here (stop) marks this worker's next pushes. One process: stop. */
int wk_stop_agreed(const wk_job *job, wk_client *const *clients, int n,
                   volatile sig_atomic_t *stop);

/* The element-wise op (WK_REDUCE_*) of v over the job's workers, through server 0. One
 * process: v stays. Returns 0 or -1 with err. */
int wk_reduce(const wk_job *job, int op, double *v, int n, char *err, size_t errlen);

/* After a reduce: whether the job has lost workers since *world was set. Returns 0 when
 * not, 1 with this worker's new rank and the new world when it has (the survivors share
 * the data from then on), -1 with err when the lead is among the lost. */
int wk_members(const wk_job *job, int *rank, int *world, char *err, size_t errlen);

/* A checkpoint in two halves around filling its state. wk_ckpt_begin: every worker calls it
 * (they gather their positions on the lead); on the one with a writer it waits for the last
 * write and returns in *c the next checkpoint, its progress and run configuration filled,
 * and the time it started in *t0; elsewhere *c is NULL. wk_ckpt_end says how long training
 * paused and hands the checkpoint to the writer's thread. Both return 0 or -1 with err. */
int wk_ckpt_begin(wk_ckpt_writer *writer, const wk_opts *o, const wk_job *job, wk_position pos,
                  eng_ckpt **c, double *t0, char *err, size_t errlen);
int wk_ckpt_end(wk_ckpt_writer *writer, int64_t step, double t0, char *err, size_t errlen);

/* The exit status for an engine error code: 2 for bad input, 1 otherwise. */
int wk_exit_code(int rc);

/* The lead's lines after its start banner: that the checkpoint's optimizer overrides the
 * optimizer flags given (a resumed run goes on as it was), and the OpenBLAS kernel. */
void wk_banner_more(const wk_opts *o, const eng_ckpt *resume);

#endif
