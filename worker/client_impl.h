/* client_impl.h: the client's state, private to client*.c: client.c connects, says hello and
 * runs the control plane (reduce, members, stats, stop, fail, shutdown); client_step.c sends a
 * step's pushes and pulls (dense or sparse rows) and takes pull answers and snapshots. */
#ifndef PSTRAIN_WORKER_CLIENT_IMPL_H
#define PSTRAIN_WORKER_CLIENT_IMPL_H

#include "engine/shard.h"
#include "proto/codec.h"
#include "proto/msg.h"
#include "worker/client.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* One part's shard on one server. */
typedef struct conn_part {
    size_t lo, n;      /* [lo, lo + n) of the part's vector */
    eng_chunks chunks; /* the shard's chunks, planned as the server plans them */
    int C;             /* chunks.n */
    int waiting;       /* pull answers outstanding */
    int unsent;        /* this step's chunks [0, unsent) are still to be sent */
    uint64_t version;  /* of the shard's weights last received in full */
    uint64_t round;    /* the smallest version among this pull's answers so far */
} conn_part;

typedef struct server_conn {
    void *sock;
    const char *endpoint;
    int moved; /* --replicas: the server was lost and this is its shard's copy */
    /* what it still owes an answer to, for a copy that takes over to answer instead */
    int ask_stats;                        /* a StatsRequest (or, shutting down, a Shutdown) */
    uint8_t ask_snapshot[ENG_MAX_PARTS];  /* a SnapshotRequest of the part */
    uint64_t snapshot_min[ENG_MAX_PARTS]; /* its min_version */
    size_t max; /* the most floats in one message, as the server said (0: no limit) */
    conn_part parts[ENG_MAX_PARTS];
    pb_msg *stash; /* pull answers that came while another message was awaited, in order */
    int nstash, stash_cap;
} server_conn;

/* One part's step being sent (wk_client_step_begin .. wk_client_step_end). */
typedef struct part_step {
    eng_model model; /* the part's own */
    const float *grads;
    uint64_t step, base_version, min_version;
    int pull;
    atomic_int lent;              /* pushes ZeroMQ is still sending straight from grads */
    const wk_sparse_rows *sparse; /* this step's touched rows, or NULL */
    const uint64_t *settle;       /* the next pulls' pushes (W), or NULL */
    /* coded pushes and pulls (wk_client_set_coding), allocated at first use: */
    float *resid; /* (total): what the part's pushes have left out so far (error feedback) */
    float *sent;  /* (total): what the servers have sent of the weights (coded answers are
                     changes to it) */
    /* --replicas: the last step pushed, for a server's copy that takes over (sent again) */
    const float *last_grads; /* NULL: none yet */
    uint64_t last_step, last_base;
    uint64_t pushed;       /* whole steps pushed so far */
    uint64_t *settle_kept; /* (W): the last pull's settle, while it is outstanding */
    int settled_pull;      /* the outstanding pull is a settled one */
} part_step;

struct wk_client {
    void *ctx;
    int P, worker_id, W, nparts;
    int timeout_ms;
    int timed_out; /* the last wk_client_recv ended at its deadline with nothing from its server */
    server_conn *srv;
    part_step parts[ENG_MAX_PARTS];
    float *row_vals;   /* a sparse push's payload: the rows' values */
    uint32_t *row_ids; /* and their ids */
    size_t row_cap;    /* floats row_vals holds */
    pb_wire wire;      /* pushes' and pull answers' values (wk_client_set_coding) */
    double topk;       /* > 0: top-k of that fraction, with error feedback */
    uint8_t *coded;    /* a coded push's payload */
    size_t coded_cap;  /* bytes */
    uint64_t bytes_pushed;
    int stopping;               /* a server said it is stopping */
    wk_server_stats *stats;     /* (P): the servers' counters as last asked for */
    uint64_t *per_worker;       /* (P, W): their pushes_per_worker */
    struct wk_heartbeat *hb;    /* says when a server is lost (NULL: only the timeout does) */
    const char *const *backups; /* --replicas: each server's shard's copy (NULL: none) */
    const struct pb_keys *keys; /* --secure (NULL: plain) */
    pb_hello hello;             /* what this worker says to every server */
    /* the reduce round outstanding at server 0 (sent again to a copy that takes over) */
    int reduce_out;
    uint32_t reduce_op;
    const double *reduce_vals;
    size_t reduce_n;
    int shutting_down; /* its Shutdowns are out: they are answered with counters */
    int want_stop;     /* pushes carry stop */
    uint64_t round;    /* reduce rounds done */
    int *members;      /* (W): the workers of the last reduce round, ascending */
    int nmembers;
};

/* Receives from server s the next message of kind want (for part, when it is a pull answer)
 * within the timeout: pull answers of other parts that come first are stashed for their
 * part. wait 0: PST_EAGAIN at once when nothing awaited has arrived. An ErrorReply becomes
 * an error naming the server. The caller clears m on every path. */
int wk_client_recv(wk_client *c, int s, pb_msg *m, pb_kind want, int part, int wait, char *err,
                   size_t errlen);

/* Server s's hello reply: each part's shard must be the one we computed (client.c). */
int wk_client_take_hello(wk_client *c, int s, char *err, size_t errlen);

/* --replicas: server s was lost (why: the heartbeats' line): the connection moves to its
 * shard's copy, which is told how many steps this worker pushed and gets again the last step
 * and everything s still owed an answer to (client_failover.c). PST_OK, or PST_EPEER with err
 * when there is no copy or it cannot take over. */
int wk_client_fail_over(wk_client *c, int s, const char *why, char *err, size_t errlen);

#endif
