/* server.c: the parameter server's state and its message loop. */
#include "ps/server.h"

#include "engine/base.h"
#include "engine/pool.h"
#include "engine/shard.h"
#include "proto/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending_pull {
    uint8_t identity[PB_MAX_IDENTITY + 1];
    size_t identity_len;
    uint64_t min_version, offset, count;
    uint32_t worker_id;
} pending_pull;

typedef struct peer {
    uint8_t identity[PB_MAX_IDENTITY + 1];
    size_t identity_len;
    int said_hello, said_goodbye;
    uint64_t pushes;
} peer;

struct ps_server {
    ps_config cfg;
    void *ctx, *sock;
    char endpoint[160];
    size_t lo, n;   /* the shard */
    float *w;       /* (n) weights */
    float *scratch; /* (n) the gradient being applied */
    eng_optim *opt;
    uint64_t version; /* updates applied */
    int W;
    peer *peers;
    int goodbyes;
    /* PS_SYNC / PS_SSP: gradients per clock slot and worker, until the clock is complete. */
    int slots;      /* staleness + 1 */
    float *grads;   /* (slots, W, n) */
    uint8_t *have;  /* (slots, W) */
    uint64_t *base; /* (slots, W): the weights' version each gradient was computed on */
    pending_pull *pending;
    eng_pool *pool;    /* threads for the update: workers wait for it in sync mode */
    zmq_msg_t *held;   /* (slots, W): pushed payloads, kept uncopied until applied */
    const float **src; /* (slots, W): each gradient: its held payload, or a copy in grads */
    const float *const *apply_src; /* the job eng_pool_run hands apply_range */
    int apply_nsrc;
    int npending; /* at most one outstanding pull per worker */
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
    if (port < 0)
        return eng_err(err, errlen, ENG_EIO, "server %d: cannot bind %s ports %d-%d: %s",
                       c->server_id, c->bind_host, c->port_min, c->port_max, zmq_strerror(errno));
    snprintf(s->endpoint, sizeof s->endpoint, "tcp://%s:%d", c->advertise_host, port);
    return ENG_OK;
}

ps_server *ps_server_new(const ps_config *cfg, char *err, size_t errlen) {
    ENG_ASSERT(cfg->num_servers >= 1 && cfg->server_id >= 0 && cfg->server_id < cfg->num_servers &&
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
    float *full = eng_alloc(sizeof(float) * lay->total);
    s->w = eng_alloc(sizeof(float) * (s->n ? s->n : 1));
    s->scratch = eng_alloc(sizeof(float) * (s->n ? s->n : 1));
    s->peers = calloc((size_t)s->W, sizeof *s->peers);
    s->pending = calloc((size_t)s->W, sizeof *s->pending);
    s->opt = eng_optim_new(&cfg->optim, s->n);
    s->pool = eng_pool_new(cfg->threads > 0 ? cfg->threads : 1);
    if (s->slots) {
        s->grads = eng_alloc(sizeof(float) * (size_t)s->slots * (size_t)s->W * (s->n ? s->n : 1));
        s->have = calloc((size_t)s->slots * (size_t)s->W, 1);
        s->base = calloc((size_t)s->slots * (size_t)s->W, sizeof *s->base);
        s->held = calloc((size_t)s->slots * (size_t)s->W, sizeof *s->held);
        s->src = calloc((size_t)s->slots * (size_t)s->W, sizeof *s->src);
        for (size_t i = 0; s->held && i < (size_t)s->slots * (size_t)s->W; i++)
            zmq_msg_init(&s->held[i]);
    }
    if (!full || !s->w || !s->scratch || !s->peers || !s->pending || !s->opt || !s->pool ||
        (s->slots && (!s->grads || !s->have || !s->base || !s->held || !s->src))) {
        eng_free(full);
        eng_err(err, errlen, ENG_ENOMEM, "server %d: out of memory", cfg->server_id);
        ps_server_free(&s);
        return NULL;
    }
    /* Every process initialises the whole vector from the seed and keeps its part, so the
     * shards put together equal a one-process run's weights. */
    eng_model_init_params(cfg->model, full, cfg->seed);
    memcpy(s->w, full + s->lo, sizeof(float) * s->n);
    eng_free(full);

    s->ctx = zmq_ctx_new();
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (!s->sock) {
        eng_err(err, errlen, ENG_EIO, "server %d: zmq: %s", cfg->server_id, zmq_strerror(errno));
        ps_server_free(&s);
        return NULL;
    }
    int zero = 0, hwm = 0;
    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (bind_socket(s, err, errlen) != ENG_OK) {
        ps_server_free(&s);
        return NULL;
    }
    return s;
}

void ps_server_free(ps_server **ps) {
    if (!ps || !*ps)
        return;
    ps_server *s = *ps;
    if (s->sock)
        zmq_close(s->sock);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    eng_optim_free(&s->opt);
    eng_pool_free(&s->pool);
    eng_free(s->w);
    eng_free(s->scratch);
    eng_free(s->grads);
    free(s->have);
    free(s->base);
    for (size_t i = 0; s->held && i < (size_t)s->slots * (size_t)s->W; i++)
        zmq_msg_close(&s->held[i]);
    free(s->held);
    free(s->src);
    free(s->peers);
    free(s->pending);
    free(s);
    *ps = NULL;
}

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
                           : PB_OK;
}

static int send_weights(ps_server *s, const uint8_t *id, size_t idlen, uint64_t offset,
                        uint64_t count, char *err, size_t errlen) {
    Pstrain__Slice slice = PSTRAIN__SLICE__INIT;
    slice.offset = offset;
    slice.count = count;
    Pstrain__PullReply r = PSTRAIN__PULL_REPLY__INIT;
    r.version = s->version;
    r.slice = &slice;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_PULL_REPLY;
    env.pull_reply = &r;
    s->st.pulls++;
    s->st.bytes_out += count * sizeof(float);
    return pb_send(s->sock, id, idlen, &env, s->w + (offset - s->lo), (size_t)count, err, errlen);
}

/* Answers every queued pull whose version has been reached. */
static int answer_pending(ps_server *s, char *err, size_t errlen) {
    int kept = 0;
    for (int i = 0; i < s->npending; i++) {
        pending_pull *p = &s->pending[i];
        if (p->min_version <= s->version) {
            if (send_weights(s, p->identity, p->identity_len, p->offset, p->count, err, errlen) !=
                PB_OK)
                return -1;
        } else {
            s->pending[kept++] = *p;
        }
    }
    s->npending = kept;
    return 0;
}

/* Counts how many updates a gradient computed on base_version missed. */
static void note_staleness(ps_server *s, uint64_t base_version) {
    const uint64_t stale = s->version >= base_version ? s->version - base_version : 0;
    s->st.staleness_sum += stale;
    s->st.staleness_n++;
    if (stale > s->st.staleness_max)
        s->st.staleness_max = stale;
}

/* Thread t's part of one update: the mean of the apply_nsrc gradients (summed in worker
 * order) and the optimizer step, over its own range of the shard. */
static void apply_range(void *arg, int t) {
    ps_server *s = arg;
    const size_t T = (size_t)eng_pool_size(s->pool);
    const size_t lo = s->n * (size_t)t / T, hi = s->n * (size_t)(t + 1) / T;
    const float *g = s->apply_src[0];
    if (s->apply_nsrc > 1) {
        const float inv = 1.0f / (float)s->apply_nsrc;
        for (size_t j = lo; j < hi; j++) {
            float acc = g[j];
            for (int w = 1; w < s->apply_nsrc; w++)
                acc += s->apply_src[w][j];
            s->scratch[j] = acc * inv;
        }
        g = s->scratch;
    }
    eng_optim_step_range(s->opt, s->w, g, lo, hi - lo);
}

/* One update from the mean of the nsrc gradients src[0..nsrc). */
static void apply(ps_server *s, const float *const *src, int nsrc) {
    s->apply_src = src;
    s->apply_nsrc = nsrc;
    eng_pool_run(s->pool, apply_range, s);
    eng_optim_advance(s->opt);
    s->version++;
    s->st.updates++;
}

/* PS_SYNC / PS_SSP: applies every clock whose gradients are all in, in worker order. */
static void apply_complete_clocks(ps_server *s) {
    for (;;) {
        const int slot = (int)(s->version % (uint64_t)s->slots);
        uint8_t *have = s->have + (size_t)slot * s->W;
        for (int w = 0; w < s->W; w++)
            if (!have[w])
                return;
        memset(have, 0, (size_t)s->W);
        for (int w = 0; w < s->W; w++)
            note_staleness(s, s->base[(size_t)slot * s->W + w]);
        apply(s, s->src + (size_t)slot * s->W, s->W);
        for (int w = 0; w < s->W; w++) { /* release the payloads */
            zmq_msg_close(&s->held[(size_t)slot * s->W + w]);
            zmq_msg_init(&s->held[(size_t)slot * s->W + w]);
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
    Pstrain__Slice shard = PSTRAIN__SLICE__INIT;
    shard.offset = s->lo;
    shard.count = s->n;
    Pstrain__HelloReply r = PSTRAIN__HELLO_REPLY__INIT;
    r.server_id = (uint32_t)s->cfg.server_id;
    r.shard = &shard;
    r.version = s->version;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_HELLO_REPLY;
    env.hello_reply = &r;
    return pb_send(s->sock, m->identity, m->identity_len, &env, NULL, 0, err, errlen);
}

/* A payload's floats in place when aligned (zmq allocates large messages with malloc), else
 * copied into copy. */
static const float *payload_floats(const pb_msg *m, float *copy, size_t n) {
    const void *p = pb_msg_payload(m);
    if ((uintptr_t)p % _Alignof(float) == 0)
        return p;
    memcpy(copy, p, sizeof(float) * n);
    return copy;
}

static int on_push(ps_server *s, pb_msg *m) {
    const Pstrain__Push *p = m->env->push;
    char why[256];
    if (peer_of(s, m, p->worker_id, "push", why, sizeof why) != 0)
        return refuse(s, m, PB_ERR_STATE, why);
    if (p->slice->offset != s->lo || p->slice->count != s->n) {
        snprintf(why, sizeof why,
                 "push.slice: expected [%zu, %zu) (this server's shard), got [%" PRIu64
                 ", +%" PRIu64 ")",
                 s->lo, s->lo + s->n, p->slice->offset, p->slice->count);
        return refuse(s, m, PB_ERR_RANGE, why);
    }
    if (s->cfg.mode == PS_ASYNC) {
        const float *g = payload_floats(m, s->scratch, s->n);
        note_staleness(s, p->base_version);
        apply(s, &g, 1);
    } else {
        const uint64_t first = s->version, last = s->version + (uint64_t)s->slots - 1;
        if (p->step < first || p->step > last) {
            snprintf(why, sizeof why,
                     "push.step: expected %" PRIu64 "..%" PRIu64 " (staleness %d), got %" PRIu64,
                     first, last, s->slots - 1, p->step);
            return refuse(s, m, PB_ERR_STATE, why);
        }
        const int slot = (int)(p->step % (uint64_t)s->slots);
        uint8_t *have = &s->have[(size_t)slot * s->W + p->worker_id];
        if (*have) {
            snprintf(why, sizeof why, "push.step: worker %u already pushed step %" PRIu64,
                     p->worker_id, p->step);
            return refuse(s, m, PB_ERR_STATE, why);
        }
        /* Keep the payload itself until the clock is complete: no copy. */
        const size_t i = (size_t)slot * s->W + p->worker_id;
        s->src[i] = payload_floats(m, s->grads + i * s->n, s->n);
        if (s->src[i] != s->grads + i * s->n)
            zmq_msg_move(&s->held[i], &m->payload);
        *have = 1;
        s->base[(size_t)slot * s->W + p->worker_id] = p->base_version;
        apply_complete_clocks(s);
    }
    s->peers[p->worker_id].pushes++;
    s->st.pushes++;
    s->st.bytes_in += sizeof(float) * s->n;
    return PB_OK;
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
    if (p->min_version <= s->version)
        return send_weights(s, m->identity, m->identity_len, sl->offset, sl->count, err, errlen);
    /* At most one waiting pull per worker: the queue holds W at most. */
    for (int i = 0; i < s->npending; i++)
        if (s->pending[i].worker_id == p->worker_id) {
            snprintf(why, sizeof why, "pull: worker %u already waits for a pull", p->worker_id);
            return refuse(s, m, PB_ERR_STATE, why);
        }
    pending_pull *q = &s->pending[s->npending++];
    q->worker_id = p->worker_id;
    memcpy(q->identity, m->identity, m->identity_len);
    q->identity_len = m->identity_len;
    q->min_version = p->min_version;
    q->offset = sl->offset;
    q->count = sl->count;
    return PB_OK;
}

static int on_shutdown(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
    const Pstrain__Shutdown *d = m->env->shutdown;
    char why[256];
    if (peer_of(s, m, d->worker_id, "shutdown", why, sizeof why) != 0)
        return refuse(s, m, PB_ERR_STATE, why);
    peer *p = &s->peers[d->worker_id];
    if (!p->said_goodbye) {
        p->said_goodbye = 1;
        s->goodbyes++;
    }
    uint64_t *per = calloc((size_t)s->W, sizeof *per);
    if (!per)
        return eng_err(err, errlen, PB_EIO, "server %d: out of memory", s->cfg.server_id);
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
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_STATS;
    env.stats = &st;
    int rc = pb_send(s->sock, m->identity, m->identity_len, &env, NULL, 0, err, errlen);
    free(per);
    return rc;
}

int ps_server_run(ps_server *s, char *err, size_t errlen) {
    while (s->goodbyes < s->W) {
        pb_msg m;
        char why[256];
        int rc = pb_recv(s->sock, 1, &m, 0, why, sizeof why);
        if (rc == PB_EIO) {
            pb_msg_clear(&m);
            if (errno == EINTR)
                continue;
            return eng_err(err, errlen, ENG_EIO, "server %d: %s", s->cfg.server_id, why);
        }
        if (rc == PB_EMALFORMED || rc == PB_EVERSION)
            rc = refuse(s, &m, rc == PB_EVERSION ? PB_ERR_VERSION : PB_ERR_MALFORMED, why);
        else if (rc == PB_OK) {
            switch (m.env->body_case) {
            case PSTRAIN__ENVELOPE__BODY_HELLO:
                rc = on_hello(s, &m, err, errlen);
                break;
            case PSTRAIN__ENVELOPE__BODY_PUSH:
                rc = on_push(s, &m);
                if (rc == PB_OK)
                    rc = answer_pending(s, err, errlen);
                break;
            case PSTRAIN__ENVELOPE__BODY_PULL:
                rc = on_pull(s, &m, err, errlen);
                break;
            case PSTRAIN__ENVELOPE__BODY_SHUTDOWN:
                rc = on_shutdown(s, &m, err, errlen);
                break;
            default:
                snprintf(why, sizeof why, "%s: not a request a server answers",
                         pb_body_name(m.env));
                rc = refuse(s, &m, PB_ERR_MALFORMED, why);
            }
        }
        pb_msg_clear(&m);
        if (rc != PB_OK && rc != PB_EAGAIN)
            return eng_err(err, errlen, ENG_EIO, "server %d: send failed: %s", s->cfg.server_id,
                           zmq_strerror(errno));
    }
    return 0;
}
