/* msg.h: pstrain's messages as typed C structs (one per message of pstrain.proto), and one
 * encode and one decode for the header frame that carries them. Roles build and read these;
 * only proto/ knows that protobuf-c packs them. Payload frames (floats) are the transport's
 * (proto/wire.h).
 *
 * A decoded message's strings and arrays point into storage the pb_msg owns (release with
 * pb_msg_clear). A message being sent borrows them from the caller. */
#ifndef PSTRAIN_PROTO_MSG_H
#define PSTRAIN_PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#define PB_PROTOCOL_VERSION                                                                        \
    4                       /* 2: messages name their part; 3: payloads carry a coding;            \
                               4: replicas */
#define PB_MAX_HEADER 65536 /* bytes: a header is tens of bytes; more is hostile */
#define PB_SMALL_HEADER 512 /* bytes: a buffer on the stack holds nearly every header */

/* The message types (the values are pstrain.proto's Envelope body numbers). */
typedef enum pb_kind {
    PB_NONE = 0,
    PB_HELLO = 10,
    PB_HELLO_REPLY = 11,
    PB_PUSH = 12,
    PB_PULL = 13,
    PB_PULL_REPLY = 14,
    PB_ERROR = 15,
    PB_SHUTDOWN = 16,
    PB_STATS = 17,
    PB_SNAPSHOT = 18,
    PB_SNAPSHOT_REPLY = 19,
    PB_STATS_REQUEST = 20,
    PB_PING = 21,
    PB_PONG = 22,
    PB_REDUCE = 23,
    PB_REDUCE_REPLY = 24,
    PB_REPLICA_ACK = 25,
    PB_KIND_END /* one past the last */
} pb_kind;

/* Error codes carried in an ErrorReply. */
enum {
    PB_ERR_MALFORMED = 1, /* undecodable, wrong frames or sizes */
    PB_ERR_VERSION = 2,   /* another protocol version */
    PB_ERR_LAYOUT = 3,    /* another model or parameter layout */
    PB_ERR_RANGE = 4,     /* a slice outside the server's shard, a bad worker id or part */
    PB_ERR_STATE = 5      /* out of order: a push before hello, a step from the past */
};

/* A range [offset, offset + count) of a part's flat vector (a missing one decodes as 0, 0). */
typedef struct pb_slice {
    uint64_t offset, count;
} pb_slice;

/* How a payload holds its values (pstrain.proto's Coding): wire, a pb_wire (proto/codec.h):
 * the values' type; topk: nnz uint32 indices, then nnz values (else slice.count values, or a
 * sparse push's rows). Zeroed: fp32, dense. */
typedef struct pb_coding {
    uint32_t wire;
    int topk;
    uint64_t nnz;
} pb_coding;

/* What a worker says of one part of its model in its hello. */
typedef struct pb_part_desc {
    const char *name;
    uint64_t param_count, layout_checksum;
} pb_part_desc;

#define PB_MAX_PARTS 8 /* parts a hello or its reply may carry */

typedef struct pb_hello {
    uint32_t worker_id, num_workers;
    const char *model; /* registry name */
    uint64_t param_count, layout_checksum;
    size_t nparts; /* <= PB_MAX_PARTS (decode refuses more) */
    pb_part_desc parts[PB_MAX_PARTS];
    size_t npushed; /* 0, or nparts: a worker that comes to a backup (pstrain.proto) */
    uint64_t pushed[PB_MAX_PARTS];
    uint32_t join; /* PB_JOIN_*: a worker that joins a running job */
} pb_hello;

/* Hello.join: a worker of the job's start; one that asks for a place in a running job and
 * waits for the next admission round; one admitted by that round. */
enum { PB_JOIN_NONE, PB_JOIN_ASK, PB_JOIN_ADMITTED };
#define PB_ANY_WORKER 0xFFFFFFFFu /* Hello.worker_id of a joining worker without an id yet */

typedef struct pb_hello_reply {
    uint32_t server_id;
    size_t nparts;                 /* <= PB_MAX_PARTS */
    pb_slice shards[PB_MAX_PARTS]; /* the range of each part this server owns */
    uint64_t version;              /* of part 0 */
    uint64_t chunk;                /* the most floats in one message (0: no limit) */
    uint32_t worker_id;            /* the worker's id (a joining worker's, given here) */
} pb_hello_reply;

/* A gradient for a run of whole chunks of the server's shard of `part`; a payload follows
 * (sparse: rows non-empty, see pstrain.proto). */
typedef struct pb_push {
    uint32_t worker_id, part;
    uint64_t step, base_version;
    pb_slice slice;
    uint64_t rows_from;
    uint32_t row_len;
    size_t nrows;
    const uint32_t *rows;
    int stop;
    pb_coding coding;
    int replica;      /* from a primary to its backup: step is the update's number */
    uint64_t stop_at; /* replica: the primary's stop (0: none) */
    int resend;       /* a worker's last step again, to a backup that took over */
} pb_push;

typedef struct pb_pull {
    uint32_t worker_id, part;
    uint64_t min_version;
    pb_slice slice;
    size_t npushes; /* 0, or one per worker */
    const uint64_t *pushes;
    uint32_t wire; /* the answer's values (a pb_wire); with topk > 0 or another wire than fp32, */
    double topk;   /* a change since the server's last answer to this worker where the server
                      keeps one for the whole run (else the fp32 weights) */
} pb_pull;

typedef struct pb_pull_reply {
    uint32_t part;
    uint64_t version;
    pb_slice slice;
    int stopping;
    pb_coding coding;
    int delta; /* the payload is the change since this server's last answer to the worker */
} pb_pull_reply;

typedef struct pb_snapshot {
    uint32_t worker_id, part;
    uint64_t min_version;
} pb_snapshot;

typedef struct pb_run {
    uint64_t offset, count, iterations;
} pb_run;

typedef struct pb_snapshot_reply {
    uint32_t part;
    pb_slice shard;
    uint32_t nslots;
    size_t nruns;
    const pb_run *runs;
    int stopping;
} pb_snapshot_reply;

typedef struct pb_error {
    uint32_t code;
    const char *message;
} pb_error;

typedef struct pb_shutdown {
    uint32_t worker_id;
    int failed;
    const char *reason;
    int replica; /* from a primary to its backup: it is done */
} pb_shutdown;

typedef struct pb_replica_ack {
    uint32_t part;
    uint64_t offset, version;
} pb_replica_ack;

typedef struct pb_stats {
    uint32_t server_id;
    uint64_t updates, pushes, pulls, bytes_in, bytes_out, errors, max_staleness;
    double mean_staleness;
    size_t nworkers;
    const uint64_t *pushes_per_worker;
    double barrier_wait_s;
    uint64_t strangers;
    uint32_t lost_workers;
    uint32_t copies; /* --replicas: live copies of the shard elsewhere */
} pb_stats;

typedef struct pb_stats_request {
    uint32_t worker_id;
} pb_stats_request;

typedef struct pb_ping {
    uint32_t worker_id;
} pb_ping;

typedef struct pb_pong {
    uint32_t server_id;
} pb_pong;

typedef struct pb_reduce {
    uint32_t worker_id, op;
    uint64_t round;
    size_t nvalues;
    const double *values;
} pb_reduce;

typedef struct pb_reduce_reply {
    uint64_t round;
    size_t nvalues;
    const double *values;
    size_t nworkers;
    const uint32_t *workers;
} pb_reduce_reply;

/* One message: its kind and the body of that kind. Received ones also hold their payload
 * frame (proto/wire.h) and what the decoder allocated: release with pb_msg_clear. */
typedef struct pb_msg {
    pb_kind kind;
    union {
        pb_hello hello;
        pb_hello_reply hello_reply;
        pb_push push;
        pb_pull pull;
        pb_pull_reply pull_reply;
        pb_error error;
        pb_shutdown shutdown;
        pb_stats stats;
        pb_snapshot snapshot;
        pb_snapshot_reply snapshot_reply;
        pb_stats_request stats_request;
        pb_ping ping;
        pb_pong pong;
        pb_reduce reduce;
        pb_reduce_reply reduce_reply;
        pb_replica_ack replica_ack;
    };
    const void *payload;    /* received: the payload frame's bytes (maybe unaligned), or NULL */
    size_t payload_bytes;   /* received: its size */
    struct pb_owned *owned; /* received: the decoder's and the transport's storage */
} pb_msg;

/* Encodes m as the header frame, with the protocol version `protocol` and the job's token:
 * an owned buffer of *len bytes (pst_free). Never fails (allocation aborts). */
uint8_t *pb_msg_encode(const pb_msg *m, uint32_t protocol, uint64_t job, size_t *len);

/* Encodes m as pb_msg_encode does, into buf when it holds the encoding (cap bytes or more).
 * Returns the encoding's size in bytes: when that is over cap, buf is left untouched and the
 * caller encodes again into a buffer of that size. Never fails. */
size_t pb_msg_encode_to(const pb_msg *m, uint32_t protocol, uint64_t job, uint8_t *buf, size_t cap);

/* Decodes a header frame of len bytes into m (zeroed first), its protocol version and job
 * token. Returns PST_OK, or PST_ESTRANGER with why when the bytes are no pstrain header
 * (undecodable or over PB_MAX_HEADER), or PST_EMALFORMED with why when they decode but break
 * a rule of the format (no body, a message that needs a slice without one, more than
 * PB_MAX_PARTS parts). Nothing else is checked here: that is the transport's (job, protocol,
 * payload) and the handlers' (ranges) work. Call pb_msg_clear after any return. */
int pb_msg_decode(const void *bytes, size_t len, pb_msg *m, uint32_t *protocol, uint64_t *job,
                  char *why, size_t whylen);

/* Releases what a received message owns and zeroes it; accepts a zeroed m. */
void pb_msg_clear(pb_msg *m);

/* The kind's name, "push", for logs and refusals ("unknown" for others). */
const char *pb_kind_name(pb_kind kind);

/* Whether messages of this kind carry a payload frame after the header (its size: a
 * SnapshotReply holds weights and nslots optimizer arrays of floats; a push or pull answer
 * slice.count values of its coding, or its top-k entries or sparse rows). */
int pb_kind_has_payload(pb_kind kind);

/* The part [*a, *b) of row r of a sparse push's tensor (row_len floats a row from
 * rows_from) that lies inside the slice [lo, hi): what the payload carries of that row.
 * Returns 0 when the row misses the slice. Worker and server must agree on it exactly. */
static inline int pb_row_part(uint64_t rows_from, uint64_t row_len, uint64_t r, uint64_t lo,
                              uint64_t hi, uint64_t *a, uint64_t *b) {
    const uint64_t ra = rows_from + r * row_len, rb = ra + row_len;
    *a = ra > lo ? ra : lo;
    *b = rb < hi ? rb : hi;
    return *a < *b;
}

/* The floats a push's payload must hold: slice.count for a dense push; for a sparse one
 * the parts of its rows inside the slice. -1 when the rows are not ascending, a row lies
 * outside the slice or row_len is 0. */
int64_t pb_push_floats(const pb_push *p);

#endif
