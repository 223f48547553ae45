/* msg.c: each message's encode (typed struct to protobuf-c) and decode (protobuf-c to typed
 * struct), one pair per message, in a table by kind. */
#include "proto/internal.h"

#include "engine/base/base.h"

#include <stdio.h>
#include <string.h>

/* --- one encode and one decode per message --- */

/* Room for what an encoder points the protobuf-c structs at (they are on its stack). */
typedef struct enc {
    Pstrain__Envelope env;
    union {
        Pstrain__Hello hello;
        Pstrain__HelloReply hello_reply;
        Pstrain__Push push;
        Pstrain__PullRequest pull;
        Pstrain__PullReply pull_reply;
        Pstrain__ErrorReply error;
        Pstrain__Shutdown shutdown;
        Pstrain__ServerStats stats;
        Pstrain__SnapshotRequest snapshot;
        Pstrain__SnapshotReply snapshot_reply;
        Pstrain__StatsRequest stats_request;
        Pstrain__Ping ping;
        Pstrain__Pong pong;
        Pstrain__Reduce reduce;
        Pstrain__ReduceReply reduce_reply;
        Pstrain__ReplicaAck replica_ack;
    };
    Pstrain__Slice slice;
    Pstrain__Coding coding;
    Pstrain__Slice slices[PB_MAX_PARTS];
    Pstrain__Slice *slicep[PB_MAX_PARTS];
    Pstrain__PartDesc parts[PB_MAX_PARTS];
    Pstrain__PartDesc *partp[PB_MAX_PARTS];
    Pstrain__Run *runs;  /* (nruns), allocated */
    Pstrain__Run **runp; /* (nruns), allocated */
} enc;

static Pstrain__Slice *slice_to(Pstrain__Slice *out, pb_slice s) {
    pstrain__slice__init(out);
    out->offset = s.offset;
    out->count = s.count;
    return out;
}

static pb_slice slice_from(const Pstrain__Slice *s) {
    return s ? (pb_slice){s->offset, s->count} : (pb_slice){0, 0};
}

/* A coding on the wire: none for fp32 dense, the default (the header stays as it was). */
static Pstrain__Coding *coding_to(Pstrain__Coding *out, const pb_coding *c) {
    if (!c->wire && !c->topk)
        return NULL;
    pstrain__coding__init(out);
    out->wire = c->wire;
    out->topk = c->topk != 0;
    out->nnz = c->nnz;
    return out;
}

static pb_coding coding_from(const Pstrain__Coding *c) {
    return c ? (pb_coding){c->wire, c->topk, c->nnz} : (pb_coding){0, 0, 0};
}

static void hello_encode(const pb_msg *m, enc *e) {
    const pb_hello *h = &m->hello;
    PST_ASSERT(h->nparts <= PB_MAX_PARTS, "hello with %zu parts", h->nparts);
    pstrain__hello__init(&e->hello);
    e->hello.worker_id = h->worker_id;
    e->hello.num_workers = h->num_workers;
    e->hello.model = (char *)(h->model ? h->model : "");
    e->hello.param_count = h->param_count;
    e->hello.layout_checksum = h->layout_checksum;
    for (size_t p = 0; p < h->nparts; p++) {
        pstrain__part_desc__init(&e->parts[p]);
        e->parts[p].name = (char *)(h->parts[p].name ? h->parts[p].name : "");
        e->parts[p].param_count = h->parts[p].param_count;
        e->parts[p].layout_checksum = h->parts[p].layout_checksum;
        e->partp[p] = &e->parts[p];
    }
    e->hello.n_parts = h->nparts;
    e->hello.parts = e->partp;
    e->hello.n_pushed = h->npushed;
    e->hello.pushed = (uint64_t *)h->pushed;
    e->hello.join = h->join;
    e->env.hello = &e->hello;
}

static int hello_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    const Pstrain__Hello *h = env->hello;
    if (h->n_parts > PB_MAX_PARTS)
        return pst_err(why, whylen, PST_EMALFORMED, "hello.parts: %zu, at most %d", h->n_parts,
                       PB_MAX_PARTS);
    if (h->n_pushed != 0 && h->n_pushed != h->n_parts)
        return pst_err(why, whylen, PST_EMALFORMED, "hello.pushed: %zu, expected 0 or %zu",
                       h->n_pushed, h->n_parts);
    m->hello = (pb_hello){.worker_id = h->worker_id,
                          .num_workers = h->num_workers,
                          .model = h->model,
                          .param_count = h->param_count,
                          .layout_checksum = h->layout_checksum,
                          .nparts = h->n_parts,
                          .npushed = h->n_pushed,
                          .join = h->join};
    for (size_t p = 0; p < h->n_pushed; p++)
        m->hello.pushed[p] = h->pushed[p];
    for (size_t p = 0; p < h->n_parts; p++)
        m->hello.parts[p] = (pb_part_desc){h->parts[p]->name, h->parts[p]->param_count,
                                           h->parts[p]->layout_checksum};
    return PST_OK;
}

static void hello_reply_encode(const pb_msg *m, enc *e) {
    const pb_hello_reply *r = &m->hello_reply;
    PST_ASSERT(r->nparts <= PB_MAX_PARTS, "hello reply with %zu parts", r->nparts);
    pstrain__hello_reply__init(&e->hello_reply);
    e->hello_reply.server_id = r->server_id;
    for (size_t p = 0; p < r->nparts; p++)
        e->slicep[p] = slice_to(&e->slices[p], r->shards[p]);
    e->hello_reply.n_shards = r->nparts;
    e->hello_reply.shards = e->slicep;
    e->hello_reply.version = r->version;
    e->hello_reply.chunk = r->chunk;
    e->hello_reply.worker_id = r->worker_id;
    e->env.hello_reply = &e->hello_reply;
}

static int hello_reply_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    const Pstrain__HelloReply *r = env->hello_reply;
    if (r->n_shards > PB_MAX_PARTS)
        return pst_err(why, whylen, PST_EMALFORMED, "hello_reply.shards: %zu, at most %d",
                       r->n_shards, PB_MAX_PARTS);
    m->hello_reply = (pb_hello_reply){.server_id = r->server_id,
                                      .nparts = r->n_shards,
                                      .version = r->version,
                                      .chunk = r->chunk,
                                      .worker_id = r->worker_id};
    for (size_t p = 0; p < r->n_shards; p++)
        m->hello_reply.shards[p] = slice_from(r->shards[p]);
    return PST_OK;
}

static void push_encode(const pb_msg *m, enc *e) {
    const pb_push *p = &m->push;
    pstrain__push__init(&e->push);
    e->push.worker_id = p->worker_id;
    e->push.part = p->part;
    e->push.step = p->step;
    e->push.base_version = p->base_version;
    e->push.slice = slice_to(&e->slice, p->slice);
    e->push.rows_from = p->rows_from;
    e->push.row_len = p->row_len;
    e->push.n_rows = p->nrows;
    e->push.rows = (uint32_t *)p->rows;
    e->push.stop = p->stop != 0;
    e->push.coding = coding_to(&e->coding, &p->coding);
    e->push.replica = p->replica != 0;
    e->push.stop_at = p->stop_at;
    e->push.resend = p->resend != 0;
    e->env.push = &e->push;
}

static int push_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    const Pstrain__Push *p = env->push;
    if (!p->slice)
        return pst_err(why, whylen, PST_EMALFORMED, "push.slice: missing");
    m->push = (pb_push){.worker_id = p->worker_id,
                        .part = p->part,
                        .step = p->step,
                        .base_version = p->base_version,
                        .slice = slice_from(p->slice),
                        .rows_from = p->rows_from,
                        .row_len = p->row_len,
                        .nrows = p->n_rows,
                        .rows = p->rows,
                        .stop = p->stop,
                        .coding = coding_from(p->coding),
                        .replica = p->replica,
                        .stop_at = p->stop_at,
                        .resend = p->resend};
    return PST_OK;
}

static void pull_encode(const pb_msg *m, enc *e) {
    const pb_pull *p = &m->pull;
    pstrain__pull_request__init(&e->pull);
    e->pull.worker_id = p->worker_id;
    e->pull.part = p->part;
    e->pull.min_version = p->min_version;
    e->pull.slice = slice_to(&e->slice, p->slice);
    e->pull.n_pushes = p->npushes;
    e->pull.pushes = (uint64_t *)p->pushes;
    e->pull.wire = p->wire;
    e->pull.topk = p->topk;
    e->env.pull = &e->pull;
}

static int pull_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    const Pstrain__PullRequest *p = env->pull;
    m->pull = (pb_pull){.worker_id = p->worker_id,
                        .part = p->part,
                        .min_version = p->min_version,
                        .slice = slice_from(p->slice),
                        .npushes = p->n_pushes,
                        .pushes = p->pushes,
                        .wire = p->wire,
                        .topk = p->topk};
    return PST_OK;
}

static void pull_reply_encode(const pb_msg *m, enc *e) {
    const pb_pull_reply *r = &m->pull_reply;
    pstrain__pull_reply__init(&e->pull_reply);
    e->pull_reply.part = r->part;
    e->pull_reply.version = r->version;
    e->pull_reply.slice = slice_to(&e->slice, r->slice);
    e->pull_reply.stopping = r->stopping != 0;
    e->pull_reply.coding = coding_to(&e->coding, &r->coding);
    e->pull_reply.delta = r->delta != 0;
    e->env.pull_reply = &e->pull_reply;
}

static int pull_reply_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    const Pstrain__PullReply *r = env->pull_reply;
    if (!r->slice)
        return pst_err(why, whylen, PST_EMALFORMED, "pull_reply.slice: missing");
    m->pull_reply = (pb_pull_reply){.part = r->part,
                                    .version = r->version,
                                    .slice = slice_from(r->slice),
                                    .stopping = r->stopping,
                                    .coding = coding_from(r->coding),
                                    .delta = r->delta};
    return PST_OK;
}

static void error_encode(const pb_msg *m, enc *e) {
    pstrain__error_reply__init(&e->error);
    e->error.code = m->error.code;
    e->error.message = (char *)(m->error.message ? m->error.message : "");
    e->env.error = &e->error;
}

static int error_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    m->error = (pb_error){env->error->code, env->error->message};
    return PST_OK;
}

static void shutdown_encode(const pb_msg *m, enc *e) {
    pstrain__shutdown__init(&e->shutdown);
    e->shutdown.worker_id = m->shutdown.worker_id;
    e->shutdown.failed = m->shutdown.failed != 0;
    e->shutdown.reason = (char *)(m->shutdown.reason ? m->shutdown.reason : "");
    e->shutdown.replica = m->shutdown.replica != 0;
    e->env.shutdown = &e->shutdown;
}

static int shutdown_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    const Pstrain__Shutdown *d = env->shutdown;
    m->shutdown = (pb_shutdown){d->worker_id, d->failed, d->reason, d->replica};
    return PST_OK;
}

static void stats_encode(const pb_msg *m, enc *e) {
    const pb_stats *s = &m->stats;
    pstrain__server_stats__init(&e->stats);
    e->stats.server_id = s->server_id;
    e->stats.updates = s->updates;
    e->stats.pushes = s->pushes;
    e->stats.pulls = s->pulls;
    e->stats.bytes_in = s->bytes_in;
    e->stats.bytes_out = s->bytes_out;
    e->stats.errors = s->errors;
    e->stats.max_staleness = s->max_staleness;
    e->stats.mean_staleness = s->mean_staleness;
    e->stats.n_pushes_per_worker = s->nworkers;
    e->stats.pushes_per_worker = (uint64_t *)s->pushes_per_worker;
    e->stats.barrier_wait_s = s->barrier_wait_s;
    e->stats.strangers = s->strangers;
    e->stats.lost_workers = s->lost_workers;
    e->stats.copies = s->copies;
    e->env.stats = &e->stats;
}

static int stats_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    const Pstrain__ServerStats *s = env->stats;
    m->stats = (pb_stats){.server_id = s->server_id,
                          .updates = s->updates,
                          .pushes = s->pushes,
                          .pulls = s->pulls,
                          .bytes_in = s->bytes_in,
                          .bytes_out = s->bytes_out,
                          .errors = s->errors,
                          .max_staleness = s->max_staleness,
                          .mean_staleness = s->mean_staleness,
                          .nworkers = s->n_pushes_per_worker,
                          .pushes_per_worker = s->pushes_per_worker,
                          .barrier_wait_s = s->barrier_wait_s,
                          .strangers = s->strangers,
                          .lost_workers = s->lost_workers,
                          .copies = s->copies};
    return PST_OK;
}

static void snapshot_encode(const pb_msg *m, enc *e) {
    pstrain__snapshot_request__init(&e->snapshot);
    e->snapshot.worker_id = m->snapshot.worker_id;
    e->snapshot.part = m->snapshot.part;
    e->snapshot.min_version = m->snapshot.min_version;
    e->env.snapshot = &e->snapshot;
}

static int snapshot_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    const Pstrain__SnapshotRequest *q = env->snapshot;
    m->snapshot = (pb_snapshot){q->worker_id, q->part, q->min_version};
    return PST_OK;
}

static void snapshot_reply_encode(const pb_msg *m, enc *e) {
    const pb_snapshot_reply *r = &m->snapshot_reply;
    pstrain__snapshot_reply__init(&e->snapshot_reply);
    e->snapshot_reply.part = r->part;
    e->snapshot_reply.shard = slice_to(&e->slice, r->shard);
    e->snapshot_reply.nslots = r->nslots;
    e->snapshot_reply.stopping = r->stopping != 0;
    e->runs = pst_calloc(r->nruns ? r->nruns : 1, sizeof *e->runs);
    e->runp = pst_calloc(r->nruns ? r->nruns : 1, sizeof *e->runp);
    for (size_t i = 0; i < r->nruns; i++) {
        pstrain__run__init(&e->runs[i]);
        e->runs[i].offset = r->runs[i].offset;
        e->runs[i].count = r->runs[i].count;
        e->runs[i].iterations = r->runs[i].iterations;
        e->runp[i] = &e->runs[i];
    }
    e->snapshot_reply.n_runs = r->nruns;
    e->snapshot_reply.runs = e->runp;
    e->env.snapshot_reply = &e->snapshot_reply;
}

static int snapshot_reply_decode(const Pstrain__Envelope *env, pb_msg *m, char *why,
                                 size_t whylen) {
    const Pstrain__SnapshotReply *r = env->snapshot_reply;
    if (!r->shard)
        return pst_err(why, whylen, PST_EMALFORMED, "snapshot_reply.shard: missing");
    pb_run *runs = m->owned->runs = pst_calloc(r->n_runs ? r->n_runs : 1, sizeof *runs);
    for (size_t i = 0; i < r->n_runs; i++)
        runs[i] = (pb_run){r->runs[i]->offset, r->runs[i]->count, r->runs[i]->iterations};
    m->snapshot_reply = (pb_snapshot_reply){.part = r->part,
                                            .shard = slice_from(r->shard),
                                            .nslots = r->nslots,
                                            .nruns = r->n_runs,
                                            .runs = runs,
                                            .stopping = r->stopping};
    return PST_OK;
}

static void stats_request_encode(const pb_msg *m, enc *e) {
    pstrain__stats_request__init(&e->stats_request);
    e->stats_request.worker_id = m->stats_request.worker_id;
    e->env.stats_request = &e->stats_request;
}

static int stats_request_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    m->stats_request = (pb_stats_request){env->stats_request->worker_id};
    return PST_OK;
}

static void ping_encode(const pb_msg *m, enc *e) {
    pstrain__ping__init(&e->ping);
    e->ping.worker_id = m->ping.worker_id;
    e->env.ping = &e->ping;
}

static int ping_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    m->ping = (pb_ping){env->ping->worker_id};
    return PST_OK;
}

static void pong_encode(const pb_msg *m, enc *e) {
    pstrain__pong__init(&e->pong);
    e->pong.server_id = m->pong.server_id;
    e->env.pong = &e->pong;
}

static int pong_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    m->pong = (pb_pong){env->pong->server_id};
    return PST_OK;
}

static void reduce_encode(const pb_msg *m, enc *e) {
    pstrain__reduce__init(&e->reduce);
    e->reduce.worker_id = m->reduce.worker_id;
    e->reduce.round = m->reduce.round;
    e->reduce.op = m->reduce.op;
    e->reduce.n_values = m->reduce.nvalues;
    e->reduce.values = (double *)m->reduce.values;
    e->env.reduce = &e->reduce;
}

static int reduce_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    const Pstrain__Reduce *r = env->reduce;
    m->reduce = (pb_reduce){.worker_id = r->worker_id,
                            .op = r->op,
                            .round = r->round,
                            .nvalues = r->n_values,
                            .values = r->values};
    return PST_OK;
}

static void reduce_reply_encode(const pb_msg *m, enc *e) {
    const pb_reduce_reply *r = &m->reduce_reply;
    pstrain__reduce_reply__init(&e->reduce_reply);
    e->reduce_reply.round = r->round;
    e->reduce_reply.n_values = r->nvalues;
    e->reduce_reply.values = (double *)r->values;
    e->reduce_reply.n_workers = r->nworkers;
    e->reduce_reply.workers = (uint32_t *)r->workers;
    e->env.reduce_reply = &e->reduce_reply;
}

static int reduce_reply_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    const Pstrain__ReduceReply *r = env->reduce_reply;
    m->reduce_reply = (pb_reduce_reply){r->round, r->n_values, r->values, r->n_workers, r->workers};
    return PST_OK;
}

static void replica_ack_encode(const pb_msg *m, enc *e) {
    pstrain__replica_ack__init(&e->replica_ack);
    e->replica_ack.part = m->replica_ack.part;
    e->replica_ack.offset = m->replica_ack.offset;
    e->replica_ack.version = m->replica_ack.version;
    e->env.replica_ack = &e->replica_ack;
}

static int replica_ack_decode(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    const Pstrain__ReplicaAck *a = env->replica_ack;
    m->replica_ack = (pb_replica_ack){a->part, a->offset, a->version};
    return PST_OK;
}

typedef struct codec {
    const char *name;
    int payload; /* carries a payload frame */
    void (*encode)(const pb_msg *m, enc *e);
    int (*decode)(const Pstrain__Envelope *env, pb_msg *m, char *why, size_t whylen);
} codec;

#define CODEC(kind, name, payload) [kind] = {#name, payload, name##_encode, name##_decode}
static const codec codecs[PB_KIND_END] = {
    CODEC(PB_HELLO, hello, 0),
    CODEC(PB_HELLO_REPLY, hello_reply, 0),
    CODEC(PB_PUSH, push, 1),
    CODEC(PB_PULL, pull, 0),
    CODEC(PB_PULL_REPLY, pull_reply, 1),
    CODEC(PB_ERROR, error, 0),
    CODEC(PB_SHUTDOWN, shutdown, 0),
    CODEC(PB_STATS, stats, 0),
    CODEC(PB_SNAPSHOT, snapshot, 0),
    CODEC(PB_SNAPSHOT_REPLY, snapshot_reply, 1),
    CODEC(PB_STATS_REQUEST, stats_request, 0),
    CODEC(PB_PING, ping, 0),
    CODEC(PB_PONG, pong, 0),
    CODEC(PB_REDUCE, reduce, 0),
    CODEC(PB_REDUCE_REPLY, reduce_reply, 0),
    CODEC(PB_REPLICA_ACK, replica_ack, 0),
};
#undef CODEC

/* The enum values are the Envelope's body numbers: one table serves both. */
#define SAME(kind, body) ((int)(kind) == (int)PSTRAIN__ENVELOPE__BODY_##body)
_Static_assert(SAME(PB_HELLO, HELLO) && SAME(PB_HELLO_REPLY, HELLO_REPLY) && SAME(PB_PUSH, PUSH) &&
                   SAME(PB_PULL, PULL) && SAME(PB_PULL_REPLY, PULL_REPLY) &&
                   SAME(PB_ERROR, ERROR) && SAME(PB_SHUTDOWN, SHUTDOWN) && SAME(PB_STATS, STATS) &&
                   SAME(PB_SNAPSHOT, SNAPSHOT) && SAME(PB_SNAPSHOT_REPLY, SNAPSHOT_REPLY) &&
                   SAME(PB_STATS_REQUEST, STATS_REQUEST) && SAME(PB_PING, PING) &&
                   SAME(PB_PONG, PONG) && SAME(PB_REDUCE, REDUCE) &&
                   SAME(PB_REDUCE_REPLY, REDUCE_REPLY) && SAME(PB_REPLICA_ACK, REPLICA_ACK),
               "pb_kind follows pstrain.proto's Envelope");
#undef SAME

static const codec *codec_of(pb_kind kind) {
    return kind > PB_NONE && kind < PB_KIND_END && codecs[kind].name ? &codecs[kind] : NULL;
}

const char *pb_kind_name(pb_kind kind) {
    const codec *c = codec_of(kind);
    return c ? c->name : "unknown";
}

int pb_kind_has_payload(pb_kind kind) {
    const codec *c = codec_of(kind);
    return c && c->payload;
}

size_t pb_msg_encode_to(const pb_msg *m, uint32_t protocol, uint64_t job, uint8_t *buf,
                        size_t cap) {
    const codec *c = codec_of(m->kind);
    PST_ASSERT(c, "encode of message kind %d", (int)m->kind);
    enc e = {.runs = NULL};
    pstrain__envelope__init(&e.env);
    e.env.protocol = protocol;
    e.env.job = job;
    e.env.body_case = (Pstrain__Envelope__BodyCase)m->kind;
    c->encode(m, &e);
    const size_t len = pstrain__envelope__get_packed_size(&e.env);
    if (len <= cap)
        pstrain__envelope__pack(&e.env, buf);
    pst_free(e.runs);
    pst_free(e.runp);
    return len;
}

uint8_t *pb_msg_encode(const pb_msg *m, uint32_t protocol, uint64_t job, size_t *len) {
    uint8_t small[PB_SMALL_HEADER];
    *len = pb_msg_encode_to(m, protocol, job, small, sizeof small);
    uint8_t *buf = pst_malloc(*len ? *len : 1);
    if (*len <= sizeof small)
        memcpy(buf, small, *len);
    else
        pb_msg_encode_to(m, protocol, job, buf, *len);
    return buf;
}

int pb_msg_decode(const void *bytes, size_t len, pb_msg *m, uint32_t *protocol, uint64_t *job,
                  char *why, size_t whylen) {
    pb_msg_clear(m);
    *protocol = 0;
    *job = 0;
    if (len > PB_MAX_HEADER)
        return pst_err(why, whylen, PST_ESTRANGER, "header: %zu bytes, at most %d", len,
                       PB_MAX_HEADER);
    Pstrain__Envelope *env = pstrain__envelope__unpack(NULL, len, bytes);
    if (!env)
        return pst_err(why, whylen, PST_ESTRANGER, "header: not a pstrain Envelope");
    m->owned = pst_calloc(1, sizeof *m->owned);
    m->owned->env = env;
    *protocol = env->protocol;
    *job = env->job;
    m->kind = (pb_kind)env->body_case;
    const codec *c = codec_of(m->kind);
    if (env->body_case == PSTRAIN__ENVELOPE__BODY__NOT_SET || !c) {
        m->kind = PB_NONE;
        return pst_err(why, whylen, PST_EMALFORMED, "body: no message body set");
    }
    return c->decode(env, m, why, whylen);
}

void pb_msg_clear(pb_msg *m) {
    if (m->owned) {
        if (m->owned->env)
            pstrain__envelope__free_unpacked(m->owned->env, NULL);
        pst_free(m->owned->runs);
        if (m->owned->has_payload)
            zmq_msg_close(&m->owned->payload);
        pst_free(m->owned);
    }
    memset(m, 0, sizeof *m);
}

int64_t pb_push_floats(const pb_push *p) {
    if (p->slice.count > (uint64_t)INT64_MAX)
        return -1;
    if (p->nrows == 0)
        return (int64_t)p->slice.count;
    const uint64_t lo = p->slice.offset, hi = lo + p->slice.count, len = p->row_len;
    if (len == 0 || hi < lo)
        return -1;
    uint64_t n = 0; /* parts of distinct rows inside the slice: never more than its count */
    for (size_t i = 0; i < p->nrows; i++) {
        if (i > 0 && p->rows[i] <= p->rows[i - 1])
            return -1;
        uint64_t a, b;
        if (!pb_row_part(p->rows_from, len, p->rows[i], lo, hi, &a, &b))
            return -1; /* a row that misses the slice */
        n += b - a;
        if (n > p->slice.count) /* rows whose offsets wrapped around */
            return -1;
    }
    return (int64_t)n;
}
