/* server.h: a parameter server. It serves every part of the model (a classifier has one, the
 * whole flat vector; a GAN two, generator and discriminator, each a vector of its own with
 * its own optimizer): of each part it owns one contiguous shard (engine/shard.h) with the
 * optimizer state for it. It binds one ZeroMQ ROUTER socket and serves the job's workers
 * until each has said goodbye; every message names its part, and within a part nothing
 * depends on the others (its own chunks, versions and clocks).
 *
 * State tensors (eng_tensor_info.state: BatchNormalization's moving statistics) are not
 * trained: workers push the change their forward made to them since their last pull, and
 * an update adds those changes (their mean over the workers, as for gradients) instead of
 * running the optimizer. In sync mode a step then moves the statistics as one process would
 * with the workers' mean batch statistics; in async mode each worker's moves count.
 *
 * Consistency (ps_mode):
 *   PS_SSP with staleness S: gradients are kept per clock (worker step) and per worker; when
 *     all workers' gradients for the next clock are in, they are summed in worker order,
 *     averaged and applied as one update, so arrival order never changes the result. A
 *     pull for min_version v is answered once v updates are applied: a worker that pushed
 *     step t asks for t + 1 - S, so none runs more than S steps ahead of the slowest.
 *     S = 0 is bulk-synchronous (PS_SYNC is PS_SSP with S = 0).
 *   PS_ASYNC (Downpour): each gradient is applied as it arrives; pulls are answered at once.
 * Membership: a worker is lost when nothing (its heartbeats included) has come from it for
 * --peer-timeout. The servers then count only the others: a sync or ssp clock completes
 * with their gradients, a waiting pull or reduce is answered, and the job goes on (or, with
 * abort_on_worker_loss, asks the workers to checkpoint and stop). Workers agree on
 * everything else through Reduce rounds on server 0, never through MPI collectives, which
 * a lost process would hang.
 * Stopping: a push may carry stop (the worker got SIGTERM), and the server's own signal
 * counts too: every answer of version >= stop_at then says stopping, so in sync mode every
 * worker learns it after the same step.
 * Bytes from the network are never trusted: every refused message gets an ErrorReply that
 * names the field and what was expected, and the server goes on. */
#ifndef PSTRAIN_PS_SERVER_H
#define PSTRAIN_PS_SERVER_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/optim.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum ps_mode { PS_SYNC, PS_ASYNC, PS_SSP } ps_mode;

/* One part of the model as the server trains it. */
typedef struct ps_part_cfg {
    const eng_model *model; /* the part's own (eng_model_part; borrowed): layout, initialisers */
    eng_optim_cfg optim;
    uint64_t seed; /* its initialisers' (eng_model_part_seed) */
} ps_part_cfg;

typedef struct ps_config {
    const eng_model *model; /* the whole model (borrowed): its name and layout, for hello */
    int nparts;             /* model->nparts */
    ps_part_cfg parts[ENG_MAX_PARTS];
    int server_id, num_servers, num_workers;
    ps_mode mode;
    int staleness;               /* PS_SSP */
    const char *bind_host;       /* address to bind, "0.0.0.0" for all */
    const char *advertise_host;  /* address workers connect to */
    int port_min, port_max;      /* 0, 0: an ephemeral port */
    FILE *log;                   /* one line per refused message; NULL: quiet */
    int verbose;                 /* also a line per update of the shard (--log-level debug) */
    int threads;                 /* for the optimizer update (results do not depend on it) */
    size_t chunk;                /* the most floats in one push or pull message (0: no limit);
                                    messages also break at every layer (eng_chunks_plan) */
    volatile sig_atomic_t *stop; /* set (by a signal handler) when this process must end: its
                                    answers then ask the workers to checkpoint and stop; NULL:
                                    never */
    double peer_timeout;         /* s: a worker not heard from for this long is lost (its
                                    heartbeats come every second); 0: 30 */
    double start_grace;          /* s: how long a worker may take to be heard from at all */
    const struct pb_keys *keys;  /* --secure: CURVE with the job's keys, and a guard that
                                    admits only the job's workers (NULL: plain TCP) */
    int abort_on_worker_loss;    /* a lost worker stops the job (a checkpoint, then PST_ESTOPPED)
                                    instead of the job going on without it */
    int standby;                 /* --replicas: this server is the backup of server_id's shard (see
                                    ps_server_set_backup), not its primary */
    int max_workers;             /* --max-workers: places for workers that join the running job
                                    (ids num_workers..max_workers-1; 0: none) */
} ps_config;

/* Counters over all parts: updates and pushes count once per part and step. */
typedef struct ps_stats {
    uint64_t updates, pushes, pulls, bytes_in, bytes_out, errors;
    uint64_t strangers; /* messages dropped for another job's token (or none) */
    /* over applied gradients: updates applied since the weights each was computed on */
    uint64_t staleness_max, staleness_sum, staleness_n;
    double barrier_wait_s; /* sync/ssp: per update of chunk 0, first gradient to last */
} ps_stats;

typedef struct ps_server ps_server;

/* Initialises each part's shard from its seed and binds. Returns NULL with a message in err
 * (a port range with no free port, an address that cannot be bound). */
ps_server *ps_server_new(const ps_config *cfg, char *err, size_t errlen);
void ps_server_free(ps_server **s);

/* --replicas 1: s passes every update it applies to its backup at endpoint (a server made
 * with standby), and answers pulls of a version only once the backup has it, so the backup
 * is never behind what any worker has seen; a backup that does not acknowledge for the peer
 * timeout is dropped and the shard goes on without a copy. The backup applies the same
 * updates with the same optimizer code (its weights and optimizer state are s's bit for
 * bit) and takes the shard over when workers come to it. Call before serving. Returns PST_OK,
 * or PST_ESOCKET with err. */
int ps_server_set_backup(ps_server *s, const char *endpoint, char *err, size_t errlen);

/* "tcp://ADDR:PORT" that workers connect to; owned by the server. */
const char *ps_server_endpoint(const ps_server *s);

/* Replaces every part's shard's weights, optimizer state and update counts with its share
 * of a checkpoint (re-sharded: c may come from any number of servers). Call before serving.
 * Returns PST_OK, or PST_EFORMAT with err when c is for another model or optimizer. */
int ps_server_restore(ps_server *s, const eng_ckpt *c, char *err, size_t errlen);

/* Replaces every part's shard's weights with its share of weights (the whole model's flat
 * vector: a fresh run's --init-from), leaving the fresh optimizer state as it is. Call
 * before serving. */
void ps_server_set_weights(ps_server *s, const float *weights);

/* Serves until every worker has sent Shutdown or is lost. Returns PST_OK, or with err
 * PST_ESOCKET on a socket failure, PST_EIO when every worker was lost or one ended on a
 * failure. */
int ps_server_run(ps_server *s, char *err, size_t errlen);

/* One turn of ps_server_run's loop: waits up to timeout_ms for a message and handles it
 * (a refused one gets its ErrorReply). Returns 1 when a message was handled, 0 when none
 * came, a negative PST code with err on a socket failure. */
int ps_server_poll(ps_server *s, int timeout_ms, char *err, size_t errlen);
/* True once every worker has said goodbye or is lost (ps_server_run returns then). */
int ps_server_done(const ps_server *s);
/* True when the job stopped on request (a signal, or a lost worker with
 * abort_on_worker_loss): it checkpointed and can be resumed (a part reached its stop). */
int ps_server_stopped(const ps_server *s);
/* The job's servers (ps_config.num_servers). */
int ps_server_num_servers(const ps_server *s);
/* Workers lost so far. */
int ps_server_lost(const ps_server *s);
/* A backup that has not taken over its shard (ps_config.standby); it is done once its
 * primary is (ps_server_done). */
int ps_server_standby(const ps_server *s);

const ps_stats *ps_server_stats(const ps_server *s);
/* Whole pushes received from worker w (one per part and step). */
uint64_t ps_server_pushes_from(const ps_server *s, int w);

/* Parses "sync", "async", "ssp"; -1 otherwise. */
int ps_mode_parse(const char *name);

#endif
