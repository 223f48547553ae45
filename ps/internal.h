/* internal.h: the parameter server's state, shared by the files of ps/ and by nothing else.
 * Each file does one job: server.c (new, free, the loop), dispatch.c (message type to
 * handler, refusals, stats), apply.c (the shard, its chunks' clocks and the optimizer's
 * updates), pull.c (pulls, answered now or once a version is reached), members.c (hello,
 * heartbeats, goodbyes and lost workers), reduce.c (the workers' reduce rounds), snapshot.c
 * (the shard's state for a checkpoint, and restoring it). */
#ifndef PSTRAIN_PS_INTERNAL_H
#define PSTRAIN_PS_INTERNAL_H

#include "engine/pool.h"
#include "engine/shard.h"
#include "proto/secure.h"
#include "proto/wire.h"
#include "ps/server.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h> /* the socket and zmq_poll; messages go through proto/wire.h */

typedef struct pending_pull {
    pb_peer from; /* where to answer */
    int part;
    uint64_t min_version, offset, count; /* offset: of the part's vector */
    uint32_t worker_id;
    int snapshot;  /* a SnapshotRequest: the part's whole shard and its optimizer state */
    int settle;    /* also wait until every counted worker has pushed need[w] steps */
    uint32_t wire; /* the answer's coding (a pb_wire, and top-k's fraction; 0: dense) */
    double topk;
} pending_pull;

typedef struct peer {
    pb_peer from; /* where to answer */
    int said_hello, said_goodbye;
    double heard;     /* when anything last came from it (or its deadline to start) */
    int lost;         /* not counted: gone, or a place for a worker that joins (below) */
    int conns;        /* open connections it has sent on (ps_conn) */
    double closed_at; /* when the last of them closed (0: one is open, or none known) */
    /* --max-workers: a place no worker holds yet, or one a joining worker holds while it
     * waits for the next admission round (ps/join.c); both are lost and in nvacant */
    int vacant, waiting, asked; /* asked: its admission request is in, on server 0 */
} peer;

/* A connection of the server's socket, by descriptor, as the socket monitor reports it: a
 * worker's connections (its client's and its heartbeat thread's) are known by the messages
 * that come on them. */
typedef struct ps_conn {
    int open;   /* accepted and not yet closed */
    int worker; /* whose messages came on it (-1: none yet) */
    int early;  /* a worker heard on it before its opening was reported (-1: none) */
} ps_conn;

/* A worker whose connections have all closed and that is not heard again within this long
 * (s) is lost: ZeroMQ reconnects a live peer after 100 ms (ZMQ_RECONNECT_IVL), and its
 * heartbeat thread pings at once on a new connection. */
#define PS_RESET_GRACE 1.0

/* A peer's standing with one part. */
typedef struct peer_part {
    int waiting; /* pulls queued for this worker */
    int snapshot_waiting;
    uint64_t pushes;        /* whole steps pushed */
    uint64_t chunks_pushed; /* chunks received: a whole step is C of them */
    uint64_t need;          /* whole steps it must have pushed for a settled pull */
    /* Coded pulls (--wire bf16|fp16, --compress): what this worker has of the shard, as the
     * sum of what was sent it; a coded answer is the change since, and what it leaves out
     * stays in w - view for the next. */
    float *view;     /* (n), or NULL until the worker's first coded pull */
    uint8_t *viewed; /* (C): view holds chunk k (it was sent whole once) */
} peer_part;

/* One part of the model (a classifier's whole vector, a GAN's generator or discriminator):
 * this server's shard of the part's own vector, its optimizer, and its chunks' clocks. */
typedef struct ps_part {
    const eng_model *model; /* the part's own (borrowed) */
    eng_optim_cfg optim;
    size_t lo, n;   /* the shard: [lo, lo + n) of the part's vector */
    float *w;       /* (n) weights */
    float *scratch; /* (n) the gradient being applied */
    eng_optim *opt; /* its own iteration count stays 0: chunk k has had cver[k] updates */
    size_t *state;  /* (2 * nstate): shard-local [lo, hi) of state tensors, ascending */
    int nstate;
    eng_chunks chunks; /* the shard's messages: one chunk each */
    int C;             /* chunks.n */
    uint64_t *cver;    /* (C) updates applied to each chunk */
    uint64_t *rver;    /* (C) --replicas: updates of each chunk the backup acknowledged */
    /* PS_SYNC / PS_SSP: each chunk's gradients per clock slot and worker, until the chunk's
     * clock is complete. Index (slot, w, k) = (slot * W + w) * C + k. */
    float *grads;      /* (slots, W, n): copies of payloads that arrive unaligned */
    uint8_t *have;     /* (slots, W, C) */
    uint64_t *base;    /* (slots, W, C): the weights' version each gradient was computed on */
    pb_frame **held;   /* (slots, W, C): pushed payloads, kept uncopied until applied */
    const float **src; /* (slots, W, C): each chunk's gradient: held payload or copy */
    double *first_at;  /* (slots): when chunk 0's first gradient of the clock came */
    peer_part *peers;  /* (W) */
    uint64_t stop_at;  /* answers of at least this version say stopping (UINT64_MAX: none) */
    /* the job eng_pool_run hands apply_range: chunk k from apply_nsrc sources */
    const float *const *apply_src;
    size_t apply_stride; /* between consecutive workers' pointers in apply_src */
    int apply_nsrc, apply_k, apply_threads;
} ps_part;

/* The most values one Reduce round carries: positions and sums, not tensors. */
#define PS_REDUCE_MAX 4096
/* Seconds between two lines about strangers: a flood of them costs one line a second, each
 * saying how many were dropped unlogged since the one before. */
#define PS_STRANGER_QUIET_S 1.0

struct ps_server {
    ps_config cfg;
    void *ctx, *sock;
    pb_guard *guard; /* --secure: admits only the job's CURVE key */
    pb_monitor *mon; /* sock's connections opening and closing */
    ps_conn *conns;  /* (nconns) by descriptor */
    int nconns;
    char endpoint[160];
    int nparts;
    ps_part parts[ENG_MAX_PARTS];
    int W;
    peer *peers;
    int goodbyes;
    int slots;             /* PS_SYNC / PS_SSP: staleness + 1; 0 in PS_ASYNC */
    pending_pull *pending; /* (W, sum of parts' C + 1) at most: one per worker, part and
                              chunk, and a snapshot per part */
    int npending;
    eng_pool *pool; /* threads for the update: workers wait for it in sync mode */
    /* membership and stopping */
    int nlost, nfailed;
    int nvacant;        /* places of W no worker is counted in yet (--max-workers) */
    int stop_noted;     /* this process's stop signal has set the parts' stops */
    const float **live; /* (W): one clock's gradients from the workers still counted */
    /* the Reduce round in progress (one at a time: a worker sends the next only after the
     * answer to this one) */
    uint64_t red_round;
    uint32_t red_op;
    size_t red_n;
    int red_count;
    uint8_t *red_have; /* (W) */
    double *red_vals;  /* (W, PS_REDUCE_MAX) */
    double *red_acc;   /* (PS_REDUCE_MAX): the answer */
    uint32_t *red_ids; /* (W) */
    size_t largest;    /* floats in the largest part's shard */
    /* allocated at the first coded pull (an fp32 job needs neither): */
    float *acc;     /* (largest): a coded answer's change, then what it left out */
    uint8_t *coded; /* (8 bytes a float of largest: top-k of fp32): a coded payload */
    /* --replicas */
    void *rsock;          /* a primary's connection to its backup (NULL: none, or lost) */
    char backup[160];     /* its endpoint */
    double unacked_since; /* when the backup fell behind (0: it has every update) */
    int standby;          /* a backup that has not taken its shard over */
    int took_over;        /* a backup that has */
    int primary_done;     /* a backup's primary said it is done */
    ps_stats st;
    /* the stranger log, one line per PS_STRANGER_QUIET_S (ps_dispatch) */
    double stranger_logged;  /* pst_now() of the last line; 0: none yet */
    uint64_t stranger_quiet; /* strangers dropped since that line, not logged */
};

/* --- apply.c --- */
/* Updates applied to every chunk of [offset, offset + count) of part pt's vector. */
uint64_t ps_range_version(const ps_part *pt, uint64_t offset, uint64_t count);
uint64_t ps_shard_version(const ps_part *pt);
/* Whether an answer of this version of pt tells the workers to checkpoint and stop. */
int ps_stopping(const ps_part *pt, uint64_t version);
/* The job stops after the newest version any chunk of any part has reached. */
void ps_stop_after_newest(ps_server *s);
/* PS_SYNC / PS_SSP: applies every clock of pt's chunk k whose gradients are all in. */
void ps_apply_complete_clocks(ps_server *s, ps_part *pt, int k);
/* One update of chunk k from the gradient g (the chunk's floats), as a primary's replica. */
void ps_apply_replica(ps_server *s, ps_part *pt, int k, const float *g);
/* A gradient's cells: 1 holds one, 2 counts the worker in its clock without one (the
 * steps a worker pushed to a primary that was lost before they reached its backup). */
enum { PS_CELL_EMPTY, PS_CELL_FULL, PS_CELL_ABSENT };
int ps_on_push(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);

/* --- pull.c --- */
/* Answers every queued pull (and snapshot) whose version has been reached: PST_OK, or a
 * negative PST code with err when an answer could not be sent. */
int ps_answer_pending(ps_server *s, char *err, size_t errlen);
int ps_on_pull(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);

/* --- members.c --- */
/* Forgets worker w's queued pulls and what it was sent (a new connection, or gone). */
void ps_forget_pulls(ps_server *s, uint32_t w);
/* Forgets worker w's gradients of clocks not yet applied, and its pulls (ps_forget_pulls). */
void ps_forget_worker(ps_server *s, int w);
/* The answer to worker w's hello. */
int ps_send_hello_reply(ps_server *s, const pb_peer *to, uint32_t w, char *err, size_t errlen);
int ps_on_hello(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);
int ps_on_shutdown(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);
int ps_on_ping(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);
/* Something came from worker w on from's connection: it is alive, and the connection is its
 * own (so that the connection's closing is the worker's). */
void ps_heard(ps_server *s, int w, const pb_peer *from);
/* A connection of the socket opened or closed (the monitor's event). */
void ps_on_conn(ps_server *s, const pb_conn_event *ev);
/* Worker w is gone (why: for the log): the job goes on with the others. PST_OK, or a
 * negative PST code with err when an answer it allows could not be sent. */
int ps_drop_worker(ps_server *s, int w, const char *why, char *err, size_t errlen);
/* Between messages: workers silent for the peer timeout, or whose connections closed and
 * that were not heard again within PS_RESET_GRACE, are lost; this process's stop signal is
 * noted. */
int ps_watch(ps_server *s, char *err, size_t errlen);

/* --- reduce.c --- */
/* Answers the reduce round once every worker still counted is in. */
int ps_answer_reduce(ps_server *s, char *err, size_t errlen);
int ps_on_reduce(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);

/* --- snapshot.c --- */
/* Part pt's whole shard for a checkpoint, to `to`. */
int ps_send_snapshot(ps_server *s, const ps_part *pt, const pb_peer *to, char *err, size_t errlen);
int ps_on_snapshot(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);

/* --- join.c --- */
/* A hello with join set: a place for the worker, or its admission. */
int ps_on_join(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);
/* Server 0, a reduce of op PB_REDUCE_ADMIT from a waiting worker: it takes part in the next
 * admission round. */
int ps_join_ask(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);
/* Worker w, waiting, is counted from now on. */
void ps_join_admit(ps_server *s, int w);
/* Between messages: a waiting worker silent for --peer-timeout gives its place up. */
void ps_join_watch(ps_server *s);
#define PS_REDUCE_ADMIT 3

/* --- replica.c --- */
/* Connects to the backup (cfg.backup). PST_OK or a code with err. */
int ps_replica_connect(ps_server *s, char *err, size_t errlen);
void ps_replica_close(ps_server *s);
/* After an update of pt's chunk k with gradient g: the backup gets it (nothing without one). */
void ps_replicate(ps_server *s, ps_part *pt, int k, const float *g);
/* Whether pulls of [offset, offset + count) of pt may be answered: the backup has every
 * update applied there (always, without a backup). */
int ps_replicated(const ps_server *s, const ps_part *pt, uint64_t offset, uint64_t count);
/* The backup's acknowledgements that have come (the socket ps_server_poll watches). */
int ps_replica_recv(ps_server *s, char *err, size_t errlen);
/* A primary's update at a backup (a push with replica set). */
int ps_on_replica_push(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);
/* A worker's hello at a backup: it takes the shard over. pushed: the hello's. */
void ps_replica_take_over(ps_server *s, int w, const pb_hello *h);
/* Between messages: a backup that has not acknowledged for --peer-timeout is dropped. */
int ps_replica_watch(ps_server *s, char *err, size_t errlen);
/* The primary is done: its backup may end. */
void ps_replica_end(ps_server *s);

/* --- dispatch.c --- */
/* Counts a refused message, logs it and answers the peer with an ErrorReply. */
int ps_refuse(ps_server *s, const pb_peer *from, uint32_t code, const char *msg);
/* PST_OK when worker_id is a worker that said hello on from's connection and is not lost;
 * else PST_EPEER with why (what: the message's name). */
int ps_peer_of(ps_server *s, const pb_peer *from, uint32_t worker_id, const char *what, char *why,
               size_t whylen);
/* The part a worker's request names (what: the message's name), or NULL once the request is
 * refused: its worker may not send it (ps_peer_of) or the part does not exist. *rc: PST_OK,
 * or ps_refuse's code. */
ps_part *ps_request_part(ps_server *s, const pb_peer *from, uint32_t worker_id, uint32_t part,
                         const char *what, int *rc);
/* The counters so far, to `to`. */
int ps_send_stats(ps_server *s, const pb_peer *to, char *err, size_t errlen);
/* Receives and handles one message (or a receive failure): PST_OK, or PST_ESOCKET with err
 * when the socket failed. */
int ps_dispatch(ps_server *s, char *err, size_t errlen);
/* Logs the strangers dropped since the last line about them, if any (the server's end). */
void ps_strangers_flush(ps_server *s);

#endif
