/* store.h: where a model's parameter parts live and how a step's gradients reach them. The
 * training loop sees one interface with two implementations:
 *
 *   local   one process: each part's optimizer runs in place on the part's network;
 *   remote  a worker of a parameter-server job: gradients go to the servers and weights come
 *           back (worker/client.h), and the workers agree on everything else through
 *           reduce rounds on server 0, never MPI collectives, which a lost worker would hang.
 *
 * A part is one network's flat vector (eng_net_params, eng_net_grads of nets[p]) with its
 * optimizer. State tensors (BatchNormalization's moving statistics) are not trained: the
 * remote store pushes the change the step's forward made to them (ps/server.h); the local
 * optimizer leaves them alone.
 *
 * A step is wk_store_step_begin, the network's forward and backward (during which
 * wk_store_ready may send the gradients already final), then wk_store_step_end. */
#ifndef PSTRAIN_WORKER_STORE_H
#define PSTRAIN_WORKER_STORE_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "worker/client.h"
#include "worker/opts.h"
#include "worker/report/progress.h"
#include "worker/train.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wk_store wk_store;

/* The local store of model m's parts, trained by nets[p] (borrowed) with optimizers cfg[p],
 * their state from resume when non-NULL (slots and update counts; the weights are the
 * caller's to load). */
wk_store *wk_store_local_new(const eng_model *m, eng_net *const *nets, const eng_optim_cfg *cfg,
                             const eng_ckpt *resume);

/* The remote store: connects to job's servers as worker job->worker_id and brings every
 * part's weights into its net. Returns NULL with err when a server cannot be reached or
 * refuses us. */
wk_store *wk_store_remote_new(const wk_opts *o, const wk_job *job, const eng_model *m,
                              eng_net *const *nets, char *err, size_t errlen);

/* Accepts NULL; sets *s to NULL. */
void wk_store_free(wk_store **s);

/* A remote store of a worker that joined (wk_job.join), once the admission round has
 * admitted it: every server counts it from now on, and the weights step `step` needs are in
 * its nets. */
int wk_store_admitted(wk_store *s, uint64_t step, char *err, size_t errlen);

/* True for the remote store. */
int wk_store_remote(const wk_store *s);

/* Before step `step` (global, 0-based): every part's weights as the mode needs them
 * (wk_needed_version), then the push of this step's gradients announced, asking for the
 * next weights with it. The time spent waiting for weights and handing over the push goes
 * to t. Local: nothing. */
int wk_store_step_begin(wk_store *s, uint64_t step, wk_time_split *t, char *err, size_t errlen);

/* The rows of part p's embedding this step's gradient touches (borrowed until step_end;
 * NULL: dense). */
void wk_store_step_sparse(wk_store *s, int p, const wk_sparse_rows *sp);

/* Part p's gradients in [lo, end of the part) are final: send them now. */
int wk_store_ready(wk_store *s, int p, size_t lo, char *err, size_t errlen);

/* After the step's backward: the rest of every part's gradients go out (remote: the time
 * goes to t's push_s), or each part's optimizer updates it in place (local: to compute_s). */
int wk_store_step_end(wk_store *s, wk_time_split *t, char *err, size_t errlen);

/* Takes the pull answers already asked for (before a reduce, a checkpoint or the end). */
int wk_store_settle(wk_store *s, char *err, size_t errlen);

/* Every part's weights with all the job's updates so far: steps (the job's) in sync and
 * ssp, every worker's run_steps (its steps since it connected) in async. */
int wk_store_final(wk_store *s, int64_t steps, int64_t run_steps, char *err, size_t errlen);

/* The element-wise op (WK_REDUCE_*) of v over the job's workers; local: v stays. */
int wk_store_reduce(wk_store *s, int op, double *v, int n, char *err, size_t errlen);

/* The ids of the workers in the last reduce round (all of them before the first), *ids
 * owned by s; returns their count. Local: one, id 0. */
int wk_store_member_ids(const wk_store *s, const int **ids);

/* Whether every worker should stop now (a signal here or at any process of the job: every
 * worker learns it after the same step in sync mode). A signal here (stop) marks this
 * worker's next pushes. Local: the signal itself. */
int wk_store_stop_agreed(wk_store *s, volatile sig_atomic_t *stop);

/* Every part's state at the weights step `step` needs, for a checkpoint: weights into
 * c->weights (the whole vector), optimizer slots and update counts into c's part fields.
 * The remote store asks the servers (the caller has settled its pulls); the local store
 * copies its nets and optimizers. */
int wk_store_snapshot(wk_store *s, uint64_t step, eng_ckpt *c, char *err, size_t errlen);

/* Gradient bytes pushed so far (0 local). */
uint64_t wk_store_bytes_pushed(const wk_store *s);

/* The servers' counters so far (NULL with err; NULL without err when local), and after
 * wk_store_shutdown their final ones; wk_store_servers of them. */
const wk_server_stats *wk_store_stats(wk_store *s, char *err, size_t errlen);
const wk_server_stats *wk_store_last_stats(const wk_store *s);
int wk_store_servers(const wk_store *s);

/* Goodbye to the servers (their counters stay available). Local: nothing. */
int wk_store_shutdown(wk_store *s, char *err, size_t errlen);

/* This worker ends on a failure (reason: one line): the servers are told without waiting.
 * Accepts NULL. */
void wk_store_fail(wk_store *s, const char *reason);

/* The weights' version a worker needs before computing step `next`: every update (sync),
 * all but the last S (ssp), whatever is there (async). */
uint64_t wk_needed_version(const wk_opts *o, uint64_t next);

#endif
