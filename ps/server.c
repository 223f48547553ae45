/* server.c: the parameter server's state and its message loop. */
#include "ps/server.h"

#include "engine/base/base.h"
#include "engine/pool.h"
#include "engine/shard.h"
#include "proto/secure.h"
#include "proto/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct pending_pull {
    uint8_t identity[PB_MAX_IDENTITY + 1];
    size_t identity_len;
    uint64_t min_version, offset, count;
    uint32_t worker_id;
    int snapshot; /* a SnapshotRequest: the whole shard and the optimizer state */
    int settle;   /* also wait until every counted worker has pushed need[w] steps */
} pending_pull;

typedef struct peer {
    uint8_t identity[PB_MAX_IDENTITY + 1];
    size_t identity_len;
    int said_hello, said_goodbye;
    int waiting; /* pulls queued for this worker */
    int snapshot_waiting;
    uint64_t pushes;
    uint64_t chunks_pushed; /* chunks received: a whole step is C of them */
    double heard;           /* when anything last came from it (or its deadline to start) */
    int lost, failed;
} peer;

/* The most values one Reduce round carries: positions and sums, not tensors. */
#define PS_REDUCE_MAX 4096

struct ps_server {
    ps_config cfg;
    void *ctx, *sock;
    pb_guard *guard; /* --secure: admits only the job's CURVE key */
    char endpoint[160];
    size_t lo, n;   /* the shard */
    float *w;       /* (n) weights */
    float *scratch; /* (n) the gradient being applied */
    eng_optim *opt; /* its own iteration count stays 0: chunk k has had cver[k] updates */
    size_t *state;  /* (2 * nstate): shard-local [lo, hi) of state tensors, ascending */
    int nstate;
    eng_chunks chunks; /* the shard's messages: one chunk each */
    int C;             /* chunks.n */
    uint64_t *cver;    /* (C) updates applied to each chunk */
    int W;
    peer *peers;
    int goodbyes;
    /* PS_SYNC / PS_SSP: each chunk's gradients per clock slot and worker, until the chunk's
     * clock is complete. Index (slot, w, k) = (slot * W + w) * C + k. */
    int slots;             /* staleness + 1 */
    float *grads;          /* (slots, W, n): copies of payloads that arrive unaligned */
    uint8_t *have;         /* (slots, W, C) */
    uint64_t *base;        /* (slots, W, C): the weights' version each gradient was computed on */
    pending_pull *pending; /* (W, C + 1) at most: one per worker and chunk, and a snapshot */
    eng_pool *pool;        /* threads for the update: workers wait for it in sync mode */
    zmq_msg_t *held;       /* (slots, W, C): pushed payloads, kept uncopied until applied */
    const float **src;     /* (slots, W, C): each chunk's gradient: held payload or copy */
    /* the job eng_pool_run hands apply_range: chunk k from apply_nsrc sources */
    const float *const *apply_src;
    size_t apply_stride; /* between consecutive workers' pointers in apply_src */
    int apply_nsrc, apply_k;
    int npending;
    double *first_at; /* (slots): when chunk 0's first gradient of the clock came */
    /* membership and stopping */
    int nlost, nfailed;
    uint64_t stop_at;   /* answers of at least this version say stopping (UINT64_MAX: none) */
    uint64_t *need;     /* (W): whole steps each worker must have pushed for a settled pull */
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
    ps_stats st;
};

int ps_mode_parse(const char *name) {
    if (strcmp(name, "sync") == 0)
        return PS_SYNC;
    if (strcmp(name, "async") == 0)
        return PS_ASYNC;
    if (strcmp(name, "ssp") == 0)
        return PS_SSP;
    return -1;
}

const char *ps_mode_name(ps_mode mode) {
    return mode == PS_SYNC ? "sync" : mode == PS_ASYNC ? "async" : "ssp";
}

static int bind_socket(ps_server *s, char *err, size_t errlen) {
    const ps_config *c = &s->cfg;
    char addr[160];
    int port = -1;
    if (c->port_min == 0 && c->port_max == 0) {
        snprintf(addr, sizeof addr, "tcp://%s:*", c->bind_host);
        if (zmq_bind(s->sock, addr) == 0) {
            char last[160];
            size_t len = sizeof last;
            zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, last, &len);
            const char *colon = strrchr(last, ':');
            port = colon ? atoi(colon + 1) : -1;
        }
    } else {
        for (int p = c->port_min; p <= c->port_max && port < 0; p++) {
            snprintf(addr, sizeof addr, "tcp://%s:%d", c->bind_host, p);
            if (zmq_bind(s->sock, addr) == 0)
                port = p;
        }
    }
    if (port < 0 && c->port_min == 0 && c->port_max == 0)
        return pst_err(err, errlen, PST_EIO, "server %d: cannot bind %s (--bind): %s", c->server_id,
                       c->bind_host, zmq_strerror(errno));
    if (port < 0)
        return pst_err(err, errlen, PST_EIO,
                       "server %d: cannot bind %s (--bind) on any port of %d-%d (--port-range): %s",
                       c->server_id, c->bind_host, c->port_min, c->port_max, zmq_strerror(errno));
    snprintf(s->endpoint, sizeof s->endpoint, "tcp://%s:%d", c->advertise_host, port);
    return PST_OK;
}

/* The parts of the shard that hold state tensors (BatchNormalization's moving statistics):
 * workers push their change to them, which the update adds instead of running the
 * optimizer. Returns 0, or -1 when out of memory. */
static int find_state(ps_server *s) {
    const eng_layout *lay = &s->cfg.model->layout;
    for (int i = 0; i < lay->n; i++) {
        const eng_tensor_info *t = &lay->tensors[i];
        const size_t a = t->offset > s->lo ? t->offset : s->lo;
        const size_t b = t->offset + t->count < s->lo + s->n ? t->offset + t->count : s->lo + s->n;
        if (!t->state || a >= b)
            continue;
        size_t *grown = realloc(s->state, sizeof *grown * 2 * (size_t)(s->nstate + 1));
        if (!grown)
            return -1;
        s->state = grown;
        s->state[2 * s->nstate] = a - s->lo;
        s->state[2 * s->nstate + 1] = b - s->lo;
        s->nstate++;
    }
    return 0;
}

ps_server *ps_server_new(const ps_config *cfg, char *err, size_t errlen) {
    PST_ASSERT(cfg->num_servers >= 1 && cfg->server_id >= 0 && cfg->server_id < cfg->num_servers &&
                   cfg->num_workers >= 1,
               "server %d of %d, %d workers", cfg->server_id, cfg->num_servers, cfg->num_workers);
    ps_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->W = cfg->num_workers;
    const eng_layout *lay = &cfg->model->layout;
    eng_shard_range(lay->total, cfg->num_servers, cfg->server_id, &s->lo, &s->n);
    s->slots = cfg->mode == PS_ASYNC ? 0 : (cfg->mode == PS_SSP ? cfg->staleness : 0) + 1;
    size_t cuts[ENG_MAX_LAYERS];
    const int ncuts = eng_model_cuts(cfg->model, cuts);
    if (eng_chunks_plan(&s->chunks, s->lo, s->n, cuts, ncuts, cfg->chunk) != 0) {
        free(s);
        return NULL;
    }
    s->C = s->chunks.n;
    const size_t cells = (size_t)s->slots * (size_t)s->W * (size_t)s->C;
    float *full = pst_alloc(sizeof(float) * lay->total);
    s->w = pst_alloc(sizeof(float) * (s->n ? s->n : 1));
    s->scratch = pst_alloc(sizeof(float) * (s->n ? s->n : 1));
    s->peers = calloc((size_t)s->W, sizeof *s->peers);
    s->pending = calloc((size_t)s->W * (size_t)(s->C + 1), sizeof *s->pending);
    s->cver = calloc((size_t)s->C, sizeof *s->cver);
    s->opt = eng_optim_new(&cfg->optim, s->n);
    s->pool = eng_pool_new(cfg->threads > 0 ? cfg->threads : 1);
    s->need = calloc((size_t)s->W, sizeof *s->need);
    s->live = calloc((size_t)s->W, sizeof *s->live);
    s->red_have = calloc((size_t)s->W, 1);
    s->red_vals = calloc((size_t)s->W * PS_REDUCE_MAX, sizeof *s->red_vals);
    s->red_acc = calloc(PS_REDUCE_MAX, sizeof *s->red_acc);
    s->red_ids = calloc((size_t)s->W, sizeof *s->red_ids);
    s->stop_at = UINT64_MAX;
    if (s->cfg.peer_timeout <= 0)
        s->cfg.peer_timeout = 30.0;
    for (int w = 0; s->peers && w < s->W; w++)
        s->peers[w].heard = pst_now() + cfg->start_grace;
    if (s->slots) {
        s->grads = pst_alloc(sizeof(float) * (size_t)s->slots * (size_t)s->W * (s->n ? s->n : 1));
        s->have = calloc(cells, 1);
        s->base = calloc(cells, sizeof *s->base);
        s->held = calloc(cells, sizeof *s->held);
        s->src = calloc(cells, sizeof *s->src);
        s->first_at = calloc((size_t)s->slots, sizeof *s->first_at);
        for (size_t i = 0; s->held && i < cells; i++)
            zmq_msg_init(&s->held[i]);
    }
    if (!full || !s->w || !s->scratch || !s->peers || !s->pending || !s->cver || !s->opt ||
        !s->pool || !s->need || !s->live || !s->red_have || !s->red_vals || !s->red_acc ||
        !s->red_ids ||
        (s->slots && (!s->grads || !s->have || !s->base || !s->held || !s->src || !s->first_at))) {
        pst_free(full);
        pst_err(err, errlen, PST_ENOMEM, "server %d: out of memory", cfg->server_id);
        ps_server_free(&s);
        return NULL;
    }
    if (find_state(s) != 0) {
        pst_err(err, errlen, PST_ENOMEM, "server %d: out of memory", cfg->server_id);
        ps_server_free(&s);
        return NULL;
    }
    /* Every process initialises the whole vector from the seed and keeps its part, so the
     * shards put together equal a one-process run's weights. */
    eng_model_init_params(cfg->model, full, cfg->seed);
    memcpy(s->w, full + s->lo, sizeof(float) * s->n);
    pst_free(full);

    s->ctx = zmq_ctx_new();
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (!s->sock) {
        pst_err(err, errlen, PST_EIO, "server %d: zmq: %s", cfg->server_id, zmq_strerror(errno));
        ps_server_free(&s);
        return NULL;
    }
    int zero = 0, hwm = 0;
    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (cfg->keys) { /* before bind: keys set later would not apply */
        char who[32];
        snprintf(who, sizeof who, "server %d", cfg->server_id);
        if (!(s->guard = pb_guard_new(s->ctx, cfg->keys, s->sock, cfg->log ? cfg->log : stderr, who,
                                      err, errlen)) ||
            pb_secure_server(s->sock, cfg->keys, err, errlen) != PST_OK) {
            ps_server_free(&s);
            return NULL;
        }
    }
    if (bind_socket(s, err, errlen) != PST_OK) {
        ps_server_free(&s);
        return NULL;
    }
    return s;
}

void ps_server_free(ps_server **ps) {
    if (!ps || !*ps)
        return;
    ps_server *s = *ps;
    if (s->sock) /* before the guard: without it, any CURVE client would be let in */
        zmq_close(s->sock);
    pb_guard_free(&s->guard);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    eng_optim_free(&s->opt);
    eng_pool_free(&s->pool);
    pst_free(s->w);
    pst_free(s->scratch);
    pst_free(s->grads);
    free(s->have);
    free(s->base);
    for (size_t i = 0; s->held && i < (size_t)s->slots * (size_t)s->W * (size_t)s->C; i++)
        zmq_msg_close(&s->held[i]);
    free(s->cver);
    free(s->state);
    free(s->first_at);
    eng_chunks_free(&s->chunks);
    free(s->held);
    free(s->src);
    free(s->peers);
    free(s->pending);
    free(s->need);
    free(s->live);
    free(s->red_have);
    free(s->red_vals);
    free(s->red_acc);
    free(s->red_ids);
    free(s);
    *ps = NULL;
}

/* Updates applied to every chunk of [offset, offset + count) of the flat vector. */
static uint64_t range_version(const ps_server *s, uint64_t offset, uint64_t count) {
    if (s->n == 0) /* an empty shard (more servers than floats) is one empty chunk */
        return s->cver[0];
    const int k0 = eng_chunks_find(&s->chunks, offset);
    const int k1 = eng_chunks_find(&s->chunks, offset + count - 1);
    uint64_t v = UINT64_MAX;
    for (int k = k0; k <= k1; k++)
        if (s->cver[k] < v)
            v = s->cver[k];
    return v;
}

static uint64_t shard_version(const ps_server *s) { return range_version(s, s->lo, s->n); }

const char *ps_server_endpoint(const ps_server *s) { return s->endpoint; }
const ps_stats *ps_server_stats(const ps_server *s) { return &s->st; }
uint64_t ps_server_pushes_from(const ps_server *s, int w) {
    return w >= 0 && w < s->W ? s->peers[w].pushes : 0;
}
const float *ps_server_weights(const ps_server *s, size_t *lo, size_t *n) {
    *lo = s->lo;
    *n = s->n;
    return s->w;
}

/* --- replies --- */

static int refuse(ps_server *s, const pb_msg *m, uint32_t code, const char *msg) {
    s->st.errors++;
    if (s->cfg.log)
        fprintf(s->cfg.log, "server %d: refused a message: %s\n", s->cfg.server_id, msg);
    return m->identity_len ? pb_send_error(s->sock, m->identity, m->identity_len, code, msg)
                           : PST_OK;
}

/* The job stops after the newest version any chunk has reached (answered so far, perhaps):
 * every answer from the next version on says stopping, so workers that got that version
 * without the word all get the same one step later. */
static void stop_after_newest(ps_server *s) {
    uint64_t v = 0;
    for (int k = 0; k < s->C; k++)
        v = s->cver[k] > v ? s->cver[k] : v;
    if (v + 1 < s->stop_at)
        s->stop_at = v + 1;
}

/* Whether an answer of this version tells the workers to checkpoint and stop: the same for
 * every worker that gets that version, so in sync mode all stop after the same step. */
static int stopping(const ps_server *s, uint64_t version) { return version >= s->stop_at; }

/* The whole shard for a checkpoint: weights, the optimizer's state arrays and each chunk's
 * update count, in one message. Rare, so the payload is simply assembled in a buffer. */
static int send_snapshot(ps_server *s, const uint8_t *id, size_t idlen, char *err, size_t errlen) {
    const int nslots = eng_optim_nslots(s->cfg.optim.kind);
    float *buf = malloc(sizeof(float) * (size_t)(nslots + 1) * (s->n ? s->n : 1));
    Pstrain__Run *runs = calloc((size_t)s->C, sizeof *runs);
    Pstrain__Run **rp = calloc((size_t)s->C, sizeof *rp);
    if (!buf || !runs || !rp) {
        free(buf);
        free(runs);
        free(rp);
        return pst_err(err, errlen, PST_ESOCKET, "server %d: out of memory", s->cfg.server_id);
    }
    memcpy(buf, s->w, sizeof(float) * s->n);
    for (int i = 0; i < nslots; i++)
        memcpy(buf + (size_t)(i + 1) * s->n, eng_optim_slot(s->opt, i), sizeof(float) * s->n);
    size_t nruns = 0; /* chunks with equal counts in a row make one run */
    for (int k = 0; k < s->C; k++) {
        const uint64_t lo = s->chunks.start[k], n = s->chunks.start[k + 1] - lo;
        if (nruns && runs[nruns - 1].iterations == s->cver[k]) {
            runs[nruns - 1].count += n;
            continue;
        }
        pstrain__run__init(&runs[nruns]);
        runs[nruns].offset = lo;
        runs[nruns].count = n;
        runs[nruns].iterations = s->cver[k];
        rp[nruns] = &runs[nruns];
        nruns++;
    }
    Pstrain__Slice shard = PSTRAIN__SLICE__INIT;
    shard.offset = s->lo;
    shard.count = s->n;
    Pstrain__SnapshotReply r = PSTRAIN__SNAPSHOT_REPLY__INIT;
    r.shard = &shard;
    r.nslots = (uint32_t)nslots;
    r.n_runs = nruns;
    r.runs = rp;
    r.stopping = stopping(s, shard_version(s));
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_SNAPSHOT_REPLY;
    env.snapshot_reply = &r;
    s->st.bytes_out += sizeof(float) * (size_t)(nslots + 1) * s->n;
    const int rc = pb_send(s->sock, id, idlen, &env, buf, (size_t)(nslots + 1) * s->n, err, errlen);
    free(buf);
    free(runs);
    free(rp);
    return rc;
}

static int send_weights(ps_server *s, const uint8_t *id, size_t idlen, uint64_t offset,
                        uint64_t count, char *err, size_t errlen) {
    Pstrain__Slice slice = PSTRAIN__SLICE__INIT;
    slice.offset = offset;
    slice.count = count;
    Pstrain__PullReply r = PSTRAIN__PULL_REPLY__INIT;
    r.version = range_version(s, offset, count);
    r.slice = &slice;
    r.stopping = stopping(s, r.version);
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_PULL_REPLY;
    env.pull_reply = &r;
    s->st.pulls++;
    s->st.bytes_out += count * sizeof(float);
    return pb_send(s->sock, id, idlen, &env, s->w + (offset - s->lo), (size_t)count, err, errlen);
}

/* True once every worker still counted has pushed need[w] whole steps. */
static int settled(const ps_server *s) {
    for (int w = 0; w < s->W; w++)
        if (!s->peers[w].lost && s->peers[w].chunks_pushed < s->need[w] * (uint64_t)s->C)
            return 0;
    return 1;
}

/* Whether a queued pull can be answered: its version is reached, or the job is stopping
 * (a worker ahead in ssp mode then learns it instead of waiting for steps nobody takes). */
static int pull_ready(const ps_server *s, const pending_pull *p) {
    const uint64_t v = range_version(s, p->offset, p->count);
    return (p->min_version <= v || stopping(s, v)) && (!p->settle || settled(s));
}

/* Answers every queued pull whose version has been reached. */
static int answer_pending(ps_server *s, char *err, size_t errlen) {
    int kept = 0;
    for (int i = 0; i < s->npending; i++) {
        pending_pull *p = &s->pending[i];
        if (pull_ready(s, p)) {
            if (p->snapshot)
                s->peers[p->worker_id].snapshot_waiting = 0;
            else
                s->peers[p->worker_id].waiting--;
            if ((p->snapshot ? send_snapshot(s, p->identity, p->identity_len, err, errlen)
                             : send_weights(s, p->identity, p->identity_len, p->offset, p->count,
                                            err, errlen)) != PST_OK)
                return -1;
        } else {
            s->pending[kept++] = *p;
        }
    }
    s->npending = kept;
    return 0;
}

/* Counts how many updates of chunk k a gradient computed on base_version missed. */
static void note_staleness(ps_server *s, int k, uint64_t base_version) {
    const uint64_t now = s->cver[k];
    const uint64_t stale = now >= base_version ? now - base_version : 0;
    s->st.staleness_sum += stale;
    s->st.staleness_n++;
    if (stale > s->st.staleness_max)
        s->st.staleness_max = stale;
}

/* Updates shard elements [a, b) from the gradient g (g[0] is element a's) as update number
 * iterations + 1: the optimizer, except over state tensors, which move by the (mean) change
 * the workers pushed: in sync mode the step's moving statistics are then those of the
 * workers' mean batch statistics. */
static void update_span(ps_server *s, size_t a, size_t b, const float *g, int64_t iterations) {
    for (int r = 0; r < s->nstate && a < b; r++) {
        const size_t sa = s->state[2 * r], sb = s->state[2 * r + 1];
        if (sb <= a || sa >= b)
            continue;
        if (sa > a) {
            eng_optim_update(s->opt, s->w + a, g, a, sa - a, iterations);
            g += sa - a;
            a = sa;
        }
        const size_t e = sb < b ? sb : b;
        for (size_t i = a; i < e; i++)
            s->w[i] += g[i - a];
        g += e - a;
        a = e;
    }
    if (a < b)
        eng_optim_update(s->opt, s->w + a, g, a, b - a, iterations);
}

/* Thread t's part of one update of chunk apply_k: the mean of the apply_nsrc gradients
 * (summed in worker order) and the optimizer step, over its own range of the chunk. */
static void apply_range(void *arg, int t) {
    ps_server *s = arg;
    const size_t clo = s->chunks.start[s->apply_k] - s->lo;
    const size_t cn = s->chunks.start[s->apply_k + 1] - s->chunks.start[s->apply_k];
    const size_t T = (size_t)eng_pool_size(s->pool);
    const size_t lo = cn * (size_t)t / T, hi = cn * (size_t)(t + 1) / T;
    const float *g = s->apply_src[0];
    if (s->apply_nsrc > 1) {
        const float inv = 1.0f / (float)s->apply_nsrc;
        for (size_t j = lo; j < hi; j++) {
            float acc = g[j];
            for (int w = 1; w < s->apply_nsrc; w++)
                acc += s->apply_src[(size_t)w * s->apply_stride][j];
            s->scratch[clo + j] = acc * inv;
        }
        g = s->scratch + clo;
    }
    update_span(s, clo + lo, clo + hi, g + lo, (int64_t)s->cver[s->apply_k]);
}

/* One update of chunk k from the mean of nsrc gradients of it: src[w * stride]. */
static void apply(ps_server *s, int k, const float *const *src, size_t stride, int nsrc) {
    s->apply_src = src;
    s->apply_stride = stride;
    s->apply_nsrc = nsrc;
    s->apply_k = k;
    eng_pool_run(s->pool, apply_range, s);
    s->cver[k]++;
    if (k == 0) /* a shard's update counts once */
        s->st.updates++;
    if (k == 0 && s->cfg.verbose && s->cfg.log)
        fprintf(s->cfg.log, "server %d: update %" PRIu64 " from %d gradient(s)\n", s->cfg.server_id,
                s->cver[0], nsrc);
}

/* PS_SYNC / PS_SSP: applies every clock of chunk k whose gradients are all in. */
static void apply_complete_clocks(ps_server *s, int k) {
    const size_t C = (size_t)s->C;
    for (;;) {
        const size_t slot = (size_t)(s->cver[k] % (uint64_t)s->slots);
        const size_t first = slot * (size_t)s->W * C + (size_t)k; /* worker 0's cell */
        int n = 0;
        for (int w = 0; w < s->W; w++)
            if (!s->peers[w].lost && !s->have[first + (size_t)w * C])
                return;
        if (s->nlost == s->W)
            return;
        for (int w = 0; w < s->W; w++) { /* in worker order: the sum is the same every time */
            if (s->peers[w].lost)
                continue;
            s->have[first + (size_t)w * C] = 0;
            note_staleness(s, k, s->base[first + (size_t)w * C]);
            s->live[n++] = s->src[first + (size_t)w * C];
        }
        apply(s, k, s->live, 1, n);
        if (k == 0)
            s->st.barrier_wait_s += pst_now() - s->first_at[slot];
        for (int w = 0; w < s->W; w++) { /* release the payloads */
            zmq_msg_close(&s->held[first + (size_t)w * C]);
            zmq_msg_init(&s->held[first + (size_t)w * C]);
        }
    }
}

/* --- handlers: each checks what the peer sent before using it --- */

static int peer_of(ps_server *s, const pb_msg *m, uint32_t worker_id, const char *what, char *why,
                   size_t whylen) {
    if (worker_id >= (uint32_t)s->W) {
        snprintf(why, whylen, "%s.worker_id: expected 0..%d, got %u", what, s->W - 1, worker_id);
        return -1;
    }
    peer *p = &s->peers[worker_id];
    if (p->lost) {
        snprintf(why, whylen,
                 "%s: worker %u was lost (silent for over %g s, --peer-timeout) and "
                 "the job went on without it",
                 what, worker_id, s->cfg.peer_timeout);
        return -1;
    }
    if (!p->said_hello || p->identity_len != m->identity_len ||
        memcmp(p->identity, m->identity, m->identity_len) != 0) {
        snprintf(why, whylen, "%s: worker %u has not said hello on this connection", what,
                 worker_id);
        return -1;
    }
    return 0;
}

static int on_hello(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    const Pstrain__Hello *h = m->env->hello;
    const eng_layout *lay = &s->cfg.model->layout;
    const uint64_t sum = eng_layout_checksum(lay);
    char why[256];
    if (strcmp(h->model, s->cfg.model->def->name) != 0) {
        snprintf(why, sizeof why, "hello.model: expected '%s', got '%.64s'",
                 s->cfg.model->def->name, h->model);
        return refuse(s, m, PB_ERR_LAYOUT, why);
    }
    if (h->param_count != lay->total || h->layout_checksum != sum) {
        snprintf(why, sizeof why,
                 "hello.layout: expected %zu parameters with checksum 0x%016" PRIx64
                 ", got %" PRIu64 " with 0x%016" PRIx64,
                 lay->total, sum, h->param_count, h->layout_checksum);
        return refuse(s, m, PB_ERR_LAYOUT, why);
    }
    if (h->num_workers != (uint32_t)s->W || h->worker_id >= (uint32_t)s->W) {
        snprintf(why, sizeof why, "hello: expected worker_id 0..%d of %d workers, got %u of %u",
                 s->W - 1, s->W, h->worker_id, h->num_workers);
        return refuse(s, m, PB_ERR_RANGE, why);
    }
    peer *p = &s->peers[h->worker_id];
    memcpy(p->identity, m->identity, m->identity_len);
    p->identity_len = m->identity_len;
    p->said_hello = 1;
    /* A worker that says hello again has a new connection: a pull its old one left waiting
     * has nobody to answer to. */
    int kept = 0;
    for (int i = 0; i < s->npending; i++)
        if (s->pending[i].worker_id != h->worker_id)
            s->pending[kept++] = s->pending[i];
    s->npending = kept;
    p->waiting = 0;
    p->snapshot_waiting = 0;
    Pstrain__Slice shard = PSTRAIN__SLICE__INIT;
    shard.offset = s->lo;
    shard.count = s->n;
    Pstrain__HelloReply r = PSTRAIN__HELLO_REPLY__INIT;
    r.server_id = (uint32_t)s->cfg.server_id;
    r.shard = &shard;
    r.version = shard_version(s);
    r.chunk = s->cfg.chunk;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_HELLO_REPLY;
    env.hello_reply = &r;
    return pb_send(s->sock, m->identity, m->identity_len, &env, NULL, 0, err, errlen);
}

/* A payload's floats in place when aligned (zmq allocates large messages with malloc), else
 * copied into copy. */
static const float *payload_floats(const pb_msg *m, float *copy, size_t n) {
    const void *p = pb_msg_payload(m);
    /* ZeroMQ keeps a message of up to 33 bytes inside the zmq_msg_t itself, which moves when
     * held: those are copied too. */
    if ((uintptr_t)p % _Alignof(float) == 0 && sizeof(float) * n > 64)
        return p;
    memcpy(copy, p, sizeof(float) * n);
    return copy;
}

/* A sparse push's rows spread into the dense gradient of its slice at copy: zeros where no
 * row lies (pb_recv has checked the rows against the slice and the payload's size). */
static const float *sparse_floats(const pb_msg *m, float *copy) {
    const Pstrain__Push *p = m->env->push;
    const uint64_t lo = p->slice->offset, hi = lo + p->slice->count;
    const char *src = pb_msg_payload(m);
    memset(copy, 0, sizeof(float) * p->slice->count);
    for (size_t i = 0; i < p->n_rows; i++) {
        uint64_t a, b;
        pb_row_part(p->rows_from, p->row_len, p->rows[i], lo, hi, &a, &b);
        memcpy(copy + (a - lo), src, sizeof(float) * (b - a));
        src += sizeof(float) * (b - a);
    }
    return copy;
}

static int on_push(ps_server *s, pb_msg *m) {
    const Pstrain__Push *p = m->env->push;
    char why[256];
    if (peer_of(s, m, p->worker_id, "push", why, sizeof why) != 0)
        return refuse(s, m, PB_ERR_STATE, why);
    /* A push carries a run of whole chunks: one, several, or the whole shard. */
    const uint64_t off = p->slice->offset, cnt = p->slice->count;
    const int k0 = off <= SIZE_MAX ? eng_chunks_find(&s->chunks, (size_t)off) : -1;
    const int k1 =
        k0 < 0 || cnt == 0 || cnt > s->n ? -1 : eng_chunks_find(&s->chunks, off + cnt - 1);
    if (k0 < 0 || k1 < 0 || off != s->chunks.start[k0] || off + cnt != s->chunks.start[k1 + 1]) {
        if (s->C == 1)
            snprintf(why, sizeof why,
                     "push.slice: expected [%zu, %zu) (this server's shard), got [%" PRIu64
                     ", +%" PRIu64 ")",
                     s->lo, s->lo + s->n, off, cnt);
        else
            snprintf(why, sizeof why,
                     "push.slice: expected whole chunks of this server's %d in [%zu, %zu) (cut "
                     "at layers, at most %zu floats), got [%" PRIu64 ", +%" PRIu64 ")",
                     s->C, s->lo, s->lo + s->n, s->cfg.chunk, off, cnt);
        return refuse(s, m, PB_ERR_RANGE, why);
    }
    const size_t slot = s->slots ? (size_t)(p->step % (uint64_t)s->slots) : 0;
    for (int k = k0; k <= k1 && s->cfg.mode != PS_ASYNC; k++) { /* refuse before changing */
        const uint64_t first = s->cver[k], last = s->cver[k] + (uint64_t)s->slots - 1;
        if (p->step < first || p->step > last) {
            snprintf(why, sizeof why,
                     "push.step: expected %" PRIu64 "..%" PRIu64 " (staleness %d), got %" PRIu64,
                     first, last, s->slots - 1, p->step);
            return refuse(s, m, PB_ERR_STATE, why);
        }
        if (s->have[(slot * (size_t)s->W + p->worker_id) * (size_t)s->C + (size_t)k]) {
            snprintf(why, sizeof why, "push.step: worker %u already pushed step %" PRIu64,
                     p->worker_id, p->step);
            return refuse(s, m, PB_ERR_STATE, why);
        }
    }
    /* The payload is used in place when aligned (ZeroMQ's usual), else copied once. */
    const size_t plo = (size_t)off - s->lo;
    float *copy = s->cfg.mode == PS_ASYNC
                      ? s->scratch + plo
                      : s->grads + (slot * (size_t)s->W + p->worker_id) * s->n + plo;
    const float *g = p->n_rows ? sparse_floats(m, copy) : payload_floats(m, copy, (size_t)cnt);
    for (int k = k0; k <= k1; k++) {
        const float *gk = g + (s->chunks.start[k] - (size_t)off);
        if (s->cfg.mode == PS_ASYNC) {
            note_staleness(s, k, p->base_version);
            apply(s, k, &gk, 0, 1);
            continue;
        }
        /* Keep the payload until the chunk's clock is complete: each chunk holds a reference
         * to the one message, no copy. */
        const size_t i = (slot * (size_t)s->W + p->worker_id) * (size_t)s->C + (size_t)k;
        if (k == 0) { /* the clock's first gradient starts its wait */
            int any = 0;
            for (int w = 0; w < s->W; w++)
                any |= s->have[(slot * (size_t)s->W + (size_t)w) * (size_t)s->C];
            if (!any)
                s->first_at[slot] = pst_now();
        }
        s->src[i] = gk;
        if (g != copy)
            zmq_msg_copy(&s->held[i], &m->payload);
        s->have[i] = 1;
        s->base[i] = p->base_version;
        apply_complete_clocks(s, k);
    }
    s->st.bytes_in += sizeof(float) * (p->n_rows ? (uint64_t)pb_push_floats(p) : cnt);
    s->peers[p->worker_id].chunks_pushed += (uint64_t)(k1 - k0 + 1);
    if (p->stop && p->step + 1 < s->stop_at) /* answers after this step say stopping */
        s->stop_at = p->step + 1;
    if (k0 != 0) /* a step's push counts once, with its first chunk */
        return PST_OK;
    s->peers[p->worker_id].pushes++;
    s->st.pushes++;
    return PST_OK;
}

static int on_snapshot(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    const Pstrain__SnapshotRequest *p = m->env->snapshot;
    char why[256];
    if (peer_of(s, m, p->worker_id, "snapshot", why, sizeof why) != 0)
        return refuse(s, m, PB_ERR_STATE, why);
    if (p->min_version <= range_version(s, s->lo, s->n ? s->n : 1))
        return send_snapshot(s, m->identity, m->identity_len, err, errlen);
    peer *pr = &s->peers[p->worker_id];
    if (pr->snapshot_waiting) {
        snprintf(why, sizeof why, "snapshot: worker %u already waits for one", p->worker_id);
        return refuse(s, m, PB_ERR_STATE, why);
    }
    pr->snapshot_waiting = 1;
    pending_pull *q = &s->pending[s->npending++];
    memset(q, 0, sizeof *q);
    q->worker_id = p->worker_id;
    memcpy(q->identity, m->identity, m->identity_len);
    q->identity_len = m->identity_len;
    q->min_version = p->min_version;
    q->offset = s->lo;
    q->count = s->n ? s->n : 1;
    q->snapshot = 1;
    return PST_OK;
}

int ps_server_restore(ps_server *s, const eng_ckpt *ck, int part, char *err, size_t errlen) {
    const eng_layout *lay = &s->cfg.model->layout;
    const eng_ckpt_part *c = part < ck->nparts ? &ck->parts[part] : NULL;
    if (!c || c->total != lay->total)
        return pst_err(err, errlen, PST_EFORMAT,
                       "server %d: checkpoint of %s (%llu parameters), this job trains %s",
                       s->cfg.server_id, ck->model, (unsigned long long)(c ? c->total : 0),
                       s->cfg.model->def->name);
    if (c->optim.kind != s->cfg.optim.kind || c->nslots != eng_optim_nslots(s->cfg.optim.kind))
        return pst_err(err, errlen, PST_EFORMAT,
                       "server %d: checkpoint's optimizer is %s, this job's %s", s->cfg.server_id,
                       eng_optim_kind_name(c->optim.kind), eng_optim_kind_name(s->cfg.optim.kind));
    memcpy(s->w, ck->weights + c->offset + s->lo, sizeof(float) * s->n);
    for (int i = 0; i < c->nslots; i++)
        memcpy(eng_optim_slot(s->opt, i), c->slots[i] + s->lo, sizeof(float) * s->n);
    /* A chunk takes the count of the run its first float lies in (in sync mode every run has
     * the same count, the job's step). */
    for (int k = 0; k < s->C; k++)
        for (int r = 0; r < c->nruns; r++)
            if (s->chunks.start[k] >= c->runs[r].lo &&
                s->chunks.start[k] - c->runs[r].lo < c->runs[r].n)
                s->cver[k] = (uint64_t)c->runs[r].iterations;
    return PST_OK;
}

static int on_pull(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    const Pstrain__PullRequest *p = m->env->pull;
    char why[256];
    if (peer_of(s, m, p->worker_id, "pull", why, sizeof why) != 0)
        return refuse(s, m, PB_ERR_STATE, why);
    const Pstrain__Slice *sl = p->slice;
    if (!sl || sl->count == 0 || sl->offset < s->lo || sl->count > s->n ||
        sl->offset - s->lo > s->n - sl->count) {
        snprintf(why, sizeof why, "pull.slice: expected a range inside [%zu, %zu)", s->lo,
                 s->lo + s->n);
        return refuse(s, m, PB_ERR_RANGE, why);
    }
    if (p->n_pushes != 0 && p->n_pushes != (size_t)s->W) {
        snprintf(why, sizeof why, "pull.pushes: expected none or %d (one per worker), got %zu",
                 s->W, p->n_pushes);
        return refuse(s, m, PB_ERR_RANGE, why);
    }
    for (size_t w = 0; w < p->n_pushes; w++)
        if (p->pushes[w] > s->need[w])
            s->need[w] = p->pushes[w];
    pending_pull q0 = {.min_version = p->min_version,
                       .offset = sl->offset,
                       .count = sl->count,
                       .settle = p->n_pushes != 0};
    if (pull_ready(s, &q0))
        return send_weights(s, m->identity, m->identity_len, sl->offset, sl->count, err, errlen);
    /* A worker may wait on one pull per chunk at most: the queue holds W * C. */
    peer *pr = &s->peers[p->worker_id];
    for (int i = 0; i < s->npending; i++)
        if (s->pending[i].worker_id == p->worker_id &&
            (s->pending[i].offset == sl->offset || pr->waiting >= s->C)) {
            snprintf(why, sizeof why, "pull: worker %u already waits for a pull of that part",
                     p->worker_id);
            return refuse(s, m, PB_ERR_STATE, why);
        }
    pr->waiting++;
    pending_pull *q = &s->pending[s->npending++];
    *q = q0;
    q->worker_id = p->worker_id;
    memcpy(q->identity, m->identity, m->identity_len);
    q->identity_len = m->identity_len;
    return PST_OK;
}

/* The counters so far, to the peer that sent m. */
static int send_stats(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    uint64_t *per = calloc((size_t)s->W, sizeof *per);
    if (!per)
        return pst_err(err, errlen, PST_ESOCKET, "server %d: out of memory", s->cfg.server_id);
    for (int w = 0; w < s->W; w++)
        per[w] = s->peers[w].pushes;
    Pstrain__ServerStats st = PSTRAIN__SERVER_STATS__INIT;
    st.server_id = (uint32_t)s->cfg.server_id;
    st.updates = s->st.updates;
    st.pushes = s->st.pushes;
    st.pulls = s->st.pulls;
    st.bytes_in = s->st.bytes_in;
    st.bytes_out = s->st.bytes_out;
    st.errors = s->st.errors;
    st.max_staleness = s->st.staleness_max;
    st.mean_staleness =
        s->st.staleness_n ? (double)s->st.staleness_sum / (double)s->st.staleness_n : 0.0;
    st.n_pushes_per_worker = (size_t)s->W;
    st.pushes_per_worker = per;
    st.barrier_wait_s = s->st.barrier_wait_s;
    st.strangers = s->st.strangers;
    st.lost_workers = (uint32_t)s->nlost;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_STATS;
    env.stats = &st;
    int rc = pb_send(s->sock, m->identity, m->identity_len, &env, NULL, 0, err, errlen);
    free(per);
    return rc;
}

static int answer_reduce(ps_server *s, char *err, size_t errlen);
static int drop_worker(ps_server *s, int w, const char *why, char *err, size_t errlen);

static int on_shutdown(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    const Pstrain__Shutdown *d = m->env->shutdown;
    char why[256];
    if (peer_of(s, m, d->worker_id, "shutdown", why, sizeof why) != 0)
        return refuse(s, m, PB_ERR_STATE, why);
    peer *p = &s->peers[d->worker_id];
    if (d->failed) { /* the job goes on without it, as without a lost one */
        char reason[400];
        snprintf(reason, sizeof reason, "it ended on a failure: %.300s", d->reason);
        s->nfailed++;
        return drop_worker(s, (int)d->worker_id, reason, err, errlen) == 0 ? PST_OK : PST_ESOCKET;
    }
    if (!p->said_goodbye) {
        p->said_goodbye = 1;
        s->goodbyes++;
    }
    /* a worker that has left takes no more part in reduce rounds */
    return send_stats(s, m, err, errlen) != PST_OK ? PST_ESOCKET : answer_reduce(s, err, errlen);
}

/* --- membership: heartbeats, lost workers, reduce rounds --- */

static int on_ping(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    const uint32_t w = m->env->ping->worker_id;
    if (w >= (uint32_t)s->W) {
        char why[96];
        snprintf(why, sizeof why, "ping.worker_id: expected 0..%d, got %u", s->W - 1, w);
        return refuse(s, m, PB_ERR_RANGE, why);
    }
    if (!s->peers[w].lost)
        s->peers[w].heard = pst_now();
    Pstrain__Pong r = PSTRAIN__PONG__INIT;
    r.server_id = (uint32_t)s->cfg.server_id;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_PONG;
    env.pong = &r;
    return pb_send(s->sock, m->identity, m->identity_len, &env, NULL, 0, err, errlen);
}

/* Answers the reduce round once every worker still counted (not lost, not gone) is in:
 * the element-wise op over their values, in worker order. */
static int answer_reduce(ps_server *s, char *err, size_t errlen) {
    if (s->red_count == 0)
        return PST_OK;
    for (int w = 0; w < s->W; w++)
        if (!s->peers[w].lost && !s->peers[w].said_goodbye && !s->red_have[w])
            return PST_OK;
    double *acc = s->red_acc;
    uint32_t *ids = s->red_ids;
    size_t nids = 0;
    for (size_t i = 0; i < s->red_n; i++)
        acc[i] = s->red_op == 1 ? -HUGE_VAL : s->red_op == 2 ? HUGE_VAL : 0.0;
    for (int w = 0; w < s->W; w++) {
        if (!s->red_have[w])
            continue;
        const double *v = s->red_vals + (size_t)w * PS_REDUCE_MAX;
        for (size_t i = 0; i < s->red_n; i++)
            acc[i] = s->red_op == 1   ? (v[i] > acc[i] ? v[i] : acc[i])
                     : s->red_op == 2 ? (v[i] < acc[i] ? v[i] : acc[i])
                                      : acc[i] + v[i];
        ids[nids++] = (uint32_t)w;
    }
    Pstrain__ReduceReply r = PSTRAIN__REDUCE_REPLY__INIT;
    r.round = s->red_round;
    r.n_values = s->red_n;
    r.values = acc;
    r.n_workers = nids;
    r.workers = ids;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_REDUCE_REPLY;
    env.reduce_reply = &r;
    for (int w = 0; w < s->W; w++) {
        if (!s->red_have[w])
            continue;
        s->red_have[w] = 0;
        const peer *p = &s->peers[w];
        if (!p->lost &&
            pb_send(s->sock, p->identity, p->identity_len, &env, NULL, 0, err, errlen) != PST_OK)
            return PST_ESOCKET;
    }
    s->red_count = 0;
    return PST_OK;
}

static int on_reduce(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    const Pstrain__Reduce *r = m->env->reduce;
    char why[256];
    if (peer_of(s, m, r->worker_id, "reduce", why, sizeof why) != 0)
        return refuse(s, m, PB_ERR_STATE, why);
    if (r->op > 2 || r->n_values > PS_REDUCE_MAX) {
        snprintf(why, sizeof why, "reduce: expected op 0..2 and at most %d values, got op %u, %zu",
                 PS_REDUCE_MAX, r->op, r->n_values);
        return refuse(s, m, PB_ERR_RANGE, why);
    }
    if (s->red_count &&
        (r->round != s->red_round || r->op != s->red_op || r->n_values != s->red_n)) {
        snprintf(why, sizeof why,
                 "reduce: round %" PRIu64 " (op %u, %zu values) is in progress, got round "
                 "%" PRIu64 " (op %u, %zu values)",
                 s->red_round, s->red_op, s->red_n, r->round, r->op, r->n_values);
        return refuse(s, m, PB_ERR_STATE, why);
    }
    if (s->red_have[r->worker_id]) {
        snprintf(why, sizeof why, "reduce: worker %u is already in round %" PRIu64, r->worker_id,
                 r->round);
        return refuse(s, m, PB_ERR_STATE, why);
    }
    s->red_round = r->round;
    s->red_op = r->op;
    s->red_n = r->n_values;
    if (r->n_values) /* protobuf-c leaves values NULL when there are none */
        memcpy(s->red_vals + (size_t)r->worker_id * PS_REDUCE_MAX, r->values,
               sizeof(double) * r->n_values);
    s->red_have[r->worker_id] = 1;
    s->red_count++;
    return answer_reduce(s, err, errlen);
}

/* Worker w is gone: the job goes on with the others. Its gradients of clocks not yet
 * applied are dropped (a clock then completes with the others'), so are its queued pulls
 * and its part of a reduce round. */
static int drop_worker(ps_server *s, int w, const char *why, char *err, size_t errlen) {
    peer *p = &s->peers[w];
    p->lost = 1;
    s->nlost++;
    const int left = s->W - s->nlost;
    FILE *log = s->cfg.log ? s->cfg.log : stderr;
    fprintf(log, "server %d: worker %d lost: %s; ", s->cfg.server_id, w, why);
    if (left == 0)
        fprintf(log, "no workers left\n");
    else if (s->cfg.abort_on_worker_loss)
        fprintf(log, "stopping the job after a checkpoint (--on-worker-loss abort)\n");
    else
        fprintf(log, "going on with %d worker(s)\n", left);
    fflush(log);
    for (size_t slot = 0; slot < (size_t)s->slots; slot++)
        for (int k = 0; k < s->C; k++) {
            const size_t i = (slot * (size_t)s->W + (size_t)w) * (size_t)s->C + (size_t)k;
            s->have[i] = 0;
            zmq_msg_close(&s->held[i]);
            zmq_msg_init(&s->held[i]);
        }
    int kept = 0;
    for (int i = 0; i < s->npending; i++)
        if (s->pending[i].worker_id != (uint32_t)w)
            s->pending[kept++] = s->pending[i];
    s->npending = kept;
    p->waiting = 0;
    p->snapshot_waiting = 0;
    if (s->red_have[w]) {
        s->red_have[w] = 0;
        s->red_count--;
    }
    if (s->cfg.abort_on_worker_loss && s->stop_at == UINT64_MAX) {
        stop_after_newest(s);
    }
    for (int k = 0; k < s->C && s->slots; k++)
        apply_complete_clocks(s, k);
    if (answer_pending(s, err, errlen) != 0)
        return -1;
    return answer_reduce(s, err, errlen) == PST_OK ? 0 : -1;
}

/* Between messages: workers silent for too long are lost, and this process's own stop
 * signal is turned into a version from which answers say stopping. */
static int watch(ps_server *s, char *err, size_t errlen) {
    const double now = pst_now();
    for (int w = 0; w < s->W; w++) {
        const peer *p = &s->peers[w];
        if (p->lost || p->said_goodbye || now - p->heard <= s->cfg.peer_timeout)
            continue;
        char why[160];
        if (p->said_hello)
            snprintf(why, sizeof why, "nothing from it for %.1f s (--peer-timeout %g)",
                     now - p->heard, s->cfg.peer_timeout);
        else
            snprintf(why, sizeof why,
                     "not heard from within %g s of the start (--timeout) "
                     "and %g s more",
                     s->cfg.start_grace, s->cfg.peer_timeout);
        if (drop_worker(s, w, why, err, errlen) != 0)
            return -1;
    }
    if (s->cfg.stop && *s->cfg.stop && s->stop_at == UINT64_MAX) {
        stop_after_newest(s);
        return answer_pending(s, err, errlen);
    }
    return 0;
}

static int on_stats_request(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    char why[256];
    if (peer_of(s, m, m->env->stats_request->worker_id, "stats_request", why, sizeof why) != 0)
        return refuse(s, m, PB_ERR_STATE, why);
    return send_stats(s, m, err, errlen);
}

/* Handles one received message (or a receive failure): 0, or -1 with err when the socket
 * failed. */
static int dispatch(ps_server *s, char *err, size_t errlen) {
    pb_msg m;
    char why[256];
    int rc = pb_recv(s->sock, 1, &m, ZMQ_DONTWAIT, why, sizeof why);
    if (rc == PST_EAGAIN || (rc == PST_ESOCKET && errno == EINTR)) {
        pb_msg_clear(&m);
        return 0;
    }
    if (rc == PST_ESOCKET) {
        pb_msg_clear(&m);
        return pst_err(err, errlen, PST_EIO, "server %d: %s", s->cfg.server_id, why);
    }
    if (rc == PST_ESTRANGER) { /* not a word back to a stranger */
        s->st.strangers++;
        if (s->cfg.log)
            fprintf(s->cfg.log, "server %d: dropped a message from outside the job: %s\n",
                    s->cfg.server_id, why);
        rc = PST_OK;
    } else if (rc == PST_EMALFORMED || rc == PST_EVERSION)
        rc = refuse(s, &m, rc == PST_EVERSION ? PB_ERR_VERSION : PB_ERR_MALFORMED, why);
    else if (rc == PST_OK) {
        /* whatever a worker sends on its connection shows it is alive */
        const uint32_t *wid = NULL;
        switch (m.env->body_case) {
        case PSTRAIN__ENVELOPE__BODY_PUSH:
            wid = &m.env->push->worker_id;
            break;
        case PSTRAIN__ENVELOPE__BODY_PULL:
            wid = &m.env->pull->worker_id;
            break;
        case PSTRAIN__ENVELOPE__BODY_REDUCE:
            wid = &m.env->reduce->worker_id;
            break;
        case PSTRAIN__ENVELOPE__BODY_HELLO:
            wid = &m.env->hello->worker_id;
            break;
        default:
            break;
        }
        if (wid && *wid < (uint32_t)s->W && !s->peers[*wid].lost)
            s->peers[*wid].heard = pst_now();
        switch (m.env->body_case) {
        case PSTRAIN__ENVELOPE__BODY_HELLO:
            rc = on_hello(s, &m, err, errlen);
            break;
        case PSTRAIN__ENVELOPE__BODY_PUSH:
            rc = on_push(s, &m);
            if (rc == PST_OK)
                rc = answer_pending(s, err, errlen);
            break;
        case PSTRAIN__ENVELOPE__BODY_PULL:
            rc = on_pull(s, &m, err, errlen);
            break;
        case PSTRAIN__ENVELOPE__BODY_SNAPSHOT:
            rc = on_snapshot(s, &m, err, errlen);
            break;
        case PSTRAIN__ENVELOPE__BODY_SHUTDOWN:
            rc = on_shutdown(s, &m, err, errlen);
            break;
        case PSTRAIN__ENVELOPE__BODY_STATS_REQUEST:
            rc = on_stats_request(s, &m, err, errlen);
            break;
        case PSTRAIN__ENVELOPE__BODY_PING:
            rc = on_ping(s, &m, err, errlen);
            break;
        case PSTRAIN__ENVELOPE__BODY_REDUCE:
            rc = on_reduce(s, &m, err, errlen);
            break;
        default:
            snprintf(why, sizeof why, "%s: not a request a server answers", pb_body_name(m.env));
            rc = refuse(s, &m, PB_ERR_MALFORMED, why);
        }
    }
    pb_msg_clear(&m);
    if (rc != PST_OK && rc != PST_EAGAIN)
        return pst_err(err, errlen, PST_EIO, "server %d: send failed: %s", s->cfg.server_id,
                       zmq_strerror(errno));
    return 0;
}

int ps_server_poll(ps_server *s, int timeout_ms, char *err, size_t errlen) {
    zmq_pollitem_t item = {s->sock, 0, ZMQ_POLLIN, 0};
    const int ready = zmq_poll(&item, 1, timeout_ms);
    if (ready < 0 && errno != EINTR)
        return pst_err(err, errlen, PST_EIO, "server %d: %s", s->cfg.server_id,
                       zmq_strerror(errno));
    const int handled = ready > 0 ? (dispatch(s, err, errlen) == 0 ? 1 : -1) : 0;
    if (handled < 0 || watch(s, err, errlen) != 0)
        return -1;
    return handled;
}

int ps_server_done(const ps_server *s) { return s->goodbyes + s->nlost >= s->W; }
int ps_server_stopped(const ps_server *s) {
    return s->stop_at != UINT64_MAX && shard_version(s) >= s->stop_at;
}
int ps_server_lost(const ps_server *s) { return s->nlost; }

int ps_server_run(ps_server *s, char *err, size_t errlen) {
    while (!ps_server_done(s))
        if (ps_server_poll(s, 200, err, errlen) < 0)
            return -1;
    if (s->nlost == s->W)
        return pst_err(err, errlen, PST_EIO, "server %d: every worker was lost", s->cfg.server_id);
    if (s->nfailed)
        return pst_err(err, errlen, PST_EIO, "server %d: %d worker(s) ended on a failure",
                       s->cfg.server_id, s->nfailed);
    return 0;
}
