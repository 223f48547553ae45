/* client.h: a worker's connections to the parameter servers: one ZeroMQ DEALER per server
 * rank for every part of the model, a hello that checks both sides agree on the model, its
 * parts and their layouts, then pushes of gradient shards and pulls of weight shards, each
 * naming its part. Every wait is bounded by the timeout, and a failure names the server's
 * endpoint. */
#ifndef PSTRAIN_WORKER_CLIENT_H
#define PSTRAIN_WORKER_CLIENT_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct wk_client wk_client;

/* Connects to the P endpoints (server s at endpoints[s], one per server rank, serving every
 * part of m) and says hello to each as worker_id of num_workers: the whole model's name and
 * layout and each part's (m->parts). keys: the job's CURVE keys (--secure; NULL: plain TCP).
 * Returns NULL with a message in err when a server does not answer within timeout_s,
 * refuses us, or reports a shard other than ours. m stays borrowed. */
struct pb_keys;
wk_client *wk_client_new(const char *const *endpoints, int P, int worker_id, int num_workers,
                         const eng_model *m, double timeout_s, const struct pb_keys *keys,
                         char *err, size_t errlen);
void wk_client_free(wk_client **c);

/* --max-workers: a worker that joins a running job (pstrain train --join). First
 * wk_client_ask_place asks server 0 at endpoint for a place: *worker_id. Then wk_client_join
 * connects as wk_client_new does but waits, known to every server, to be admitted: by the
 * workers' next admission round (wk_client_reduce of WK_REDUCE_ADMIT, at an epoch's end),
 * after which wk_client_admitted tells every server it counts from now on. */
int wk_client_ask_place(const char *endpoint, const eng_model *m, int num_workers, double timeout_s,
                        const struct pb_keys *keys, int *worker_id, char *err, size_t errlen);
wk_client *wk_client_join(const char *const *endpoints, int P, int worker_id, int num_workers,
                          const eng_model *m, double timeout_s, const struct pb_keys *keys,
                          char *err, size_t errlen);
int wk_client_admitted(wk_client *c, char *err, size_t errlen);
/* The workers of the job's start are 0..world-1 (num_workers: the most it takes). */
void wk_client_set_world(wk_client *c, int world);

/* How pushes and pull answers carry their values from now on: wire, a pb_wire
 * (proto/codec.h); topk > 0: only that fraction of each push (the largest), the rest kept
 * and added to the next (error feedback), and likewise of each pull's change. Coded pushes
 * also keep what rounding to bf16 or fp16 left out; coded pulls are changes since the
 * server's last answer (the servers keep what they left out). Settled pulls (the job's
 * final weights) always come in fp32, whole. Default: fp32, dense, as before. */
void wk_client_set_coding(wk_client *c, int wire, double topk);

/* Every function below that names a part works on that part alone (its own vector, indexed
 * from 0, its own chunks and versions); parts' exchanges may overlap. All return PST_OK or,
 * with err, PST_ESOCKET (a socket failed) or PST_EPEER (a server refused, did not answer in
 * time, was lost, or answered what was not asked). */

/* A step's exchange of one part, so that it can start while backward still runs:
 * step_begin says what the step sends: grads (the part's gradient vector, computed at `step`
 * on weights of base_version) stays borrowed until the next step_begin of the part or
 * wk_client_free (ZeroMQ sends straight from it): the caller must not change it before
 * step_end. Each step_ready(lo) sends the chunks lying in [lo, total) of the part that have
 * not gone yet (their gradients are final), and step_end sends the rest. With pull, every
 * chunk's push is followed by its pull for min_version. */
int wk_client_step_begin(wk_client *c, int part, const float *grads, uint64_t step,
                         uint64_t base_version, int pull, uint64_t min_version, char *err,
                         size_t errlen);
int wk_client_step_ready(wk_client *c, int part, size_t lo, char *err, size_t errlen);
int wk_client_step_end(wk_client *c, int part, char *err, size_t errlen);

/* step_begin and step_end at once: a whole push, with or without its pulls. */
int wk_client_push(wk_client *c, int part, const float *grads, uint64_t step, uint64_t base_version,
                   char *err, size_t errlen);
int wk_client_push_pull(wk_client *c, int part, const float *grads, uint64_t step,
                        uint64_t base_version, uint64_t min_version, char *err, size_t errlen);

/* The rows a step's gradient touches in a row-major tensor of the part's vector (an
 * embedding): [from, from + nrows * row_len), row_len floats a row; rows ascend. Pushes of
 * chunks inside the tensor then carry only those rows (the rest of their gradient is 0).
 * Call after wk_client_step_begin; rows stay borrowed until wk_client_step_end. NULL: dense
 * pushes (the default at each step_begin). */
typedef struct wk_sparse_rows {
    size_t from, row_len, nrows;
    const uint32_t *rows;
    size_t n;
} wk_sparse_rows;
void wk_client_step_sparse(wk_client *c, int part, const wk_sparse_rows *sp);

/* Gradient bytes pushed so far, all parts (payloads only, dense or sparse). */
uint64_t wk_client_bytes_pushed(const wk_client *c);

/* For tests: the part's residual (its layout's total floats, owned by c), what its coded
 * pushes have left out so far and the next will carry; NULL before its first coded push. */
const float *wk_client_residual(const wk_client *c, int part);

/* Asks every server for its shard of the part once min_version updates are applied. */
int wk_client_pull_send(wk_client *c, int part, uint64_t min_version, char *err, size_t errlen);

/* Waits for the answers to the part's pulls and copies each shard into params (the part's
 * vector); *version is the smallest version among them. */
int wk_client_pull_wait(wk_client *c, int part, float *params, uint64_t *version, char *err,
                        size_t errlen);

/* Takes the answers to the part's pulls that have arrived; with block, waits for the rest
 * (up to the timeout). Shards are copied into params as they come, so between calls params
 * may mix versions across servers, never within one. *version is the smallest version
 * received so far. Returns 1 when no answer is outstanding, 0 when some are, a negative PST
 * code with err on failure. */
int wk_client_pull_recv(wk_client *c, int part, float *params, uint64_t *version, int block,
                        char *err, size_t errlen);

/* True while an answer to the part's pulls is outstanding. */
int wk_client_pull_pending(const wk_client *c, int part);

/* wk_client_pull_send for the job's final weights in async mode: each server answers once
 * every worker it still counts has pushed pushes[w] whole steps of the part (pushes: one per
 * worker, the steps each took since it connected). */
int wk_client_pull_settled(wk_client *c, int part, const uint64_t *pushes, char *err,
                           size_t errlen);

/* Asks every server for its state of the part once min_version updates are applied and puts
 * it together: the part's weights in weights (its total floats), and in *out the optimizer
 * arrays (out->nslots of the part's total floats each, the caller's) and the update-count
 * runs relative to the part's first float (grown here with pst_realloc; freed with the
 * checkpoint). No pull of the part may be outstanding. */
int wk_client_snapshot(wk_client *c, int part, uint64_t min_version, float *weights,
                       eng_ckpt_part *out, char *err, size_t errlen);

/* True once a server has said it is stopping (it got SIGTERM or SIGINT). */
int wk_client_stopping(const wk_client *c);

/* A server's counters over all parts (its ServerStats). */
typedef struct wk_server_stats {
    uint32_t server_id;
    uint64_t updates, pushes, pulls, bytes_in, bytes_out, errors, max_staleness;
    double mean_staleness;
    double barrier_wait_s;             /* sync/ssp: summed over updates, first gradient to last */
    const uint64_t *pushes_per_worker; /* (workers) */
    int workers;
    int copies; /* --replicas: live copies of its shard on other servers */
} wk_server_stats;

/* Asks every server for its counters so far: an array of wk_client_servers(c) entries owned
 * by c, valid until the next call, or NULL with err. */
const wk_server_stats *wk_client_stats(wk_client *c, char *err, size_t errlen);
/* The counters last received (by wk_client_stats or wk_client_shutdown), or NULL. */
const wk_server_stats *wk_client_last_stats(const wk_client *c);
int wk_client_servers(const wk_client *c);

/* The heartbeats that tell when a server is lost: waits then end at once with the
 * heartbeats' reason instead of at the timeout. Borrowed; NULL: none. */
struct wk_heartbeat;
void wk_client_watch(wk_client *c, struct wk_heartbeat *hb);

/* --replicas: server s's shard is also kept at backups[s] (borrowed): when the heartbeats
 * say s is lost, its connection moves there and the job goes on (NULL: none). */
void wk_client_set_backups(wk_client *c, const char *const *backups);

/* From now on pushes carry stop: this worker got a signal, and the job must checkpoint and
 * end (every server then answers "stopping" from the next step's version on). */
void wk_client_want_stop(wk_client *c);

/* The workers' control plane (never MPI collectives, which a lost worker would hang): every
 * worker still in the job calls it in the same order; v (n values, n <= 4096) becomes the
 * element-wise op over theirs: WK_REDUCE_SUM, _MAX or _MIN. Goes through server 0. */
enum { WK_REDUCE_SUM = 0, WK_REDUCE_MAX = 1, WK_REDUCE_MIN = 2 };
/* The admission round (--max-workers), at each epoch's end: the max, and the workers waiting
 * to join take part (their values do not count) and are counted from then on. A joining
 * worker's round is the job's: it learns the round's number from the answer. */
enum { WK_REDUCE_ADMIT = 3 };
int wk_client_reduce(wk_client *c, int op, double *v, int n, char *err, size_t errlen);

/* The workers that took part in the last reduce round (all of them before the first):
 * their ids, ascending, in *ids (owned by c); returns their count. */
int wk_client_members(const wk_client *c, const int **ids);

/* This worker ends on a failure (reason: one line): tells every server, without waiting,
 * so that the servers end too instead of waiting for it. */
void wk_client_fail(wk_client *c, const char *reason);

/* Says goodbye to every server and prints each server's counters to out (NULL: none); they
 * stay available from wk_client_last_stats. */
int wk_client_shutdown(wk_client *c, FILE *out, char *err, size_t errlen);

#endif
