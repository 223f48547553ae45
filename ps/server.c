/* server.c: a parameter server's life: new, free, and the loop that serves messages. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ps_mode_parse(const char *name) {
    if (strcmp(name, "sync") == 0)
        return PS_SYNC;
    if (strcmp(name, "async") == 0)
        return PS_ASYNC;
    if (strcmp(name, "ssp") == 0)
        return PS_SSP;
    return -1;
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

/* The parts of pt's shard that hold state tensors (BatchNormalization's moving statistics):
 * workers push their change to them, which the update adds instead of running the
 * optimizer. */
static void find_state(ps_part *pt) {
    const eng_layout *lay = &pt->model->layout;
    for (int i = 0; i < lay->n; i++) {
        const eng_tensor_info *t = &lay->tensors[i];
        const size_t a = t->offset > pt->lo ? t->offset : pt->lo;
        const size_t b =
            t->offset + t->count < pt->lo + pt->n ? t->offset + t->count : pt->lo + pt->n;
        if (!t->state || a >= b)
            continue;
        pt->state = pst_realloc(pt->state, sizeof *pt->state * 2 * (size_t)(pt->nstate + 1));
        pt->state[2 * pt->nstate] = a - pt->lo;
        pt->state[2 * pt->nstate + 1] = b - pt->lo;
        pt->nstate++;
    }
}

/* Part p's shard, chunks, optimizer and clocks, its weights initialised from its seed. */
static void part_init(ps_server *s, int p) {
    const ps_part_cfg *pc = &s->cfg.parts[p];
    ps_part *pt = &s->parts[p];
    const size_t W = (size_t)s->W;
    pt->model = pc->model;
    pt->optim = pc->optim;
    pt->stop_at = UINT64_MAX;
    const eng_layout *lay = &pc->model->layout;
    eng_shard_range(lay->total, s->cfg.num_servers, s->cfg.server_id, &pt->lo, &pt->n);
    size_t cuts[ENG_MAX_LAYERS];
    const int ncuts = eng_model_cuts(pc->model, cuts);
    eng_chunks_plan(&pt->chunks, pt->lo, pt->n, cuts, ncuts, s->cfg.chunk);
    pt->C = pt->chunks.n;
    const size_t cells = (size_t)s->slots * W * (size_t)pt->C, n1 = pt->n ? pt->n : 1;
    pt->w = pst_alloc(sizeof(float) * n1);
    pt->scratch = pst_alloc(sizeof(float) * n1);
    pt->cver = pst_calloc((size_t)pt->C, sizeof *pt->cver);
    pt->rver = pst_calloc((size_t)pt->C, sizeof *pt->rver);
    pt->peers = pst_calloc(W, sizeof *pt->peers);
    pt->apply_threads = eng_pool_size(s->pool);
    pt->opt = eng_optim_new(&pc->optim, pt->n);
    if (s->slots) {
        pt->grads = pst_alloc(sizeof(float) * (size_t)s->slots * W * n1);
        pt->have = pst_calloc(cells, 1);
        pt->base = pst_calloc(cells, sizeof *pt->base);
        pt->held = pst_calloc(cells, sizeof *pt->held);
        pt->src = pst_calloc(cells, sizeof *pt->src);
        pt->first_at = pst_calloc((size_t)s->slots, sizeof *pt->first_at);
    }
    find_state(pt);
    /* Every process initialises the part's whole vector from its seed and keeps its shard,
     * so the shards put together equal a one-process run's weights. */
    float *full = pst_alloc(sizeof(float) * lay->total);
    eng_model_init_params(pc->model, full, pc->seed);
    memcpy(pt->w, full + pt->lo, sizeof(float) * pt->n);
    pst_free(full);
}

static void part_free(ps_server *s, ps_part *pt) {
    eng_optim_free(&pt->opt);
    pst_free(pt->w);
    pst_free(pt->scratch);
    pst_free(pt->grads);
    pst_free(pt->have);
    pst_free(pt->base);
    for (size_t i = 0; pt->held && i < (size_t)s->slots * (size_t)s->W * (size_t)pt->C; i++)
        pb_frame_free(&pt->held[i]);
    pst_free(pt->held);
    pst_free(pt->src);
    pst_free(pt->cver);
    pst_free(pt->rver);
    pst_free(pt->state);
    pst_free(pt->first_at);
    for (int w = 0; pt->peers && w < s->W; w++) {
        pst_free(pt->peers[w].view);
        free(pt->peers[w].viewed); /* pst_calloc's */
    }
    pst_free(pt->peers);
    eng_chunks_free(&pt->chunks);
}

ps_server *ps_server_new(const ps_config *cfg, char *err, size_t errlen) {
    PST_ASSERT(cfg->num_servers >= 1 && cfg->server_id >= 0 && cfg->server_id < cfg->num_servers &&
                   cfg->num_workers >= 1 && cfg->nparts >= 1 && cfg->nparts <= ENG_MAX_PARTS &&
                   cfg->nparts <= PB_MAX_PARTS && cfg->nparts == cfg->model->nparts,
               "server %d of %d, %d workers, %d parts", cfg->server_id, cfg->num_servers,
               cfg->num_workers, cfg->nparts);
    ps_server *s = pst_calloc(1, sizeof *s);
    s->cfg = *cfg;
    s->W = cfg->max_workers > cfg->num_workers ? cfg->max_workers : cfg->num_workers;
    s->nparts = cfg->nparts;
    s->slots = cfg->mode == PS_ASYNC ? 0 : (cfg->mode == PS_SSP ? cfg->staleness : 0) + 1;
    if (s->cfg.peer_timeout <= 0)
        s->cfg.peer_timeout = 30.0;
    s->peers = pst_calloc((size_t)s->W, sizeof *s->peers);
    for (int w = 0; w < s->W; w++)
        s->peers[w].heard = pst_now() + cfg->start_grace;
    for (int w = cfg->num_workers; w < s->W; w++) { /* places for workers that join */
        s->peers[w].vacant = s->peers[w].lost = 1;
        s->nvacant++;
    }
    s->live = pst_calloc((size_t)s->W, sizeof *s->live);
    s->red_have = pst_calloc((size_t)s->W, 1);
    s->red_vals = pst_calloc((size_t)s->W * PS_REDUCE_MAX, sizeof *s->red_vals);
    s->red_acc = pst_calloc(PS_REDUCE_MAX, sizeof *s->red_acc);
    s->red_ids = pst_calloc((size_t)s->W, sizeof *s->red_ids);
    size_t queue = 0;
    /* first: each part splits its updates over the pool's threads */
    if (!(s->pool = eng_pool_new(cfg->threads > 0 ? cfg->threads : 1))) {
        pst_err(err, errlen, PST_EIO, "server %d: cannot start %d threads", cfg->server_id,
                cfg->threads);
        ps_server_free(&s);
        return NULL;
    }
    size_t largest = 1; /* floats of the largest shard */
    for (int p = 0; p < s->nparts; p++) {
        part_init(s, p);
        queue += (size_t)s->parts[p].C + 1;
        largest = s->parts[p].n > largest ? s->parts[p].n : largest;
    }
    s->largest = largest;
    s->pending = pst_calloc((size_t)s->W * queue, sizeof *s->pending);

    s->ctx = zmq_ctx_new();
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (!s->sock) {
        pst_err(err, errlen, PST_ESOCKET, "server %d: zmq: %s", cfg->server_id,
                zmq_strerror(errno));
        ps_server_free(&s);
        return NULL;
    }
    int zero = 0;
    /* The largest frame a worker may send: a push of the most floats one message carries (a
     * whole shard, or --chunk of them: workers join chunks up to that) as top-k of fp32 (8
     * bytes an entry, more than dense, bf16, fp16 or rows take), or a header. ZeroMQ drops
     * the connection of a peer that declares more, before reading it: a stranger cannot
     * make the server hold gigabytes. */
    const size_t run = cfg->chunk && cfg->chunk < largest ? cfg->chunk : largest;
    int64_t maxmsg = (int64_t)(2 * sizeof(float) * run);
    if (maxmsg < PB_MAX_HEADER)
        maxmsg = PB_MAX_HEADER;
    /* Messages queued per connection before ZeroMQ stops reading it (TCP then holds the
     * sender back; nothing is dropped, so a legal job only waits, never fails). A worker has
     * at most the pushes of each chunk for each clock it may be ahead, a pull of each chunk,
     * a snapshot of each part and a few control messages (hello, reduce, stats, ping,
     * shutdown) in flight. At most 1000 (ZeroMQ's default) for tiny chunks: a stranger's
     * connection can then hold 1000 x maxmsg, and maxmsg is small. Unbounded, a stranger's
     * million empty messages were all held at once. */
    size_t chunks = 0;
    for (int p = 0; p < s->nparts; p++)
        chunks += (size_t)s->parts[p].C;
    const size_t clocks = s->slots ? (size_t)s->slots : 1, control = 8;
    const size_t inflight = clocks * chunks + chunks + (size_t)s->nparts + control;
    const int rcvhwm = inflight < 1000 ? (int)inflight : 1000;
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &zero, sizeof zero); /* answers to the job's own */
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
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
    /* before bind: every accepted connection is seen */
    if (!(s->mon = pb_monitor_new(s->ctx, s->sock, s->guard, err, errlen)) ||
        bind_socket(s, err, errlen) != PST_OK) {
        ps_server_free(&s);
        return NULL;
    }
    s->standby = cfg->standby;
    return s;
}

void ps_server_free(ps_server **ps) {
    if (!ps || !*ps)
        return;
    ps_server *s = *ps;
    ps_strangers_flush(s);
    ps_replica_close(s);
    pb_monitor_free(&s->mon);
    if (s->sock) /* before the guard: without it, any CURVE client would be let in */
        zmq_close(s->sock);
    pb_guard_free(&s->guard);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    eng_pool_free(&s->pool);
    for (int p = 0; p < s->nparts; p++)
        part_free(s, &s->parts[p]);
    pst_free(s->peers);
    pst_free(s->pending);
    pst_free(s->live);
    pst_free(s->red_have);
    pst_free(s->red_vals);
    pst_free(s->red_acc);
    pst_free(s->red_ids);
    pst_free(s->acc);
    pst_free(s->coded);
    pst_free(s->conns);
    pst_free(s);
    *ps = NULL;
}

const char *ps_server_endpoint(const ps_server *s) { return s->endpoint; }

int ps_server_set_backup(ps_server *s, const char *endpoint, char *err, size_t errlen) {
    snprintf(s->backup, sizeof s->backup, "%s", endpoint);
    return ps_replica_connect(s, err, errlen);
}
const ps_stats *ps_server_stats(const ps_server *s) { return &s->st; }

uint64_t ps_server_pushes_from(const ps_server *s, int w) {
    uint64_t n = 0;
    for (int p = 0; w >= 0 && w < s->W && p < s->nparts; p++)
        n += s->parts[p].peers[w].pushes;
    return n;
}

/* The connections opened and closed since the last turn. A closing is taken only after
 * every message already received is handled: those that came on the connection before it
 * closed are the worker's, and anything on its descriptor afterwards is a new
 * connection's. */
static int take_conn_events(ps_server *s, char *err, size_t errlen) {
    pb_conn_event ev;
    while (pb_monitor_next(s->mon, &ev) == PST_OK) {
        zmq_pollitem_t item = {s->sock, 0, ZMQ_POLLIN, 0};
        while (ev.kind == PB_CONN_CLOSED && zmq_poll(&item, 1, 0) > 0) {
            const int rc = ps_dispatch(s, err, errlen);
            if (rc != PST_OK)
                return rc;
        }
        ps_on_conn(s, &ev);
    }
    return PST_OK;
}

int ps_server_poll(ps_server *s, int timeout_ms, char *err, size_t errlen) {
    zmq_pollitem_t items[3] = {{s->sock, 0, ZMQ_POLLIN, 0},
                               {pb_monitor_socket(s->mon), 0, ZMQ_POLLIN, 0},
                               {s->rsock, 0, ZMQ_POLLIN, 0}};
    const int ready = zmq_poll(items, s->rsock ? 3 : 2, timeout_ms);
    if (ready < 0 && errno != EINTR)
        return pst_err(err, errlen, PST_ESOCKET, "server %d: %s", s->cfg.server_id,
                       zmq_strerror(errno));
    const int message = ready > 0 && (items[0].revents & ZMQ_POLLIN);
    int rc = message ? ps_dispatch(s, err, errlen) : PST_OK;
    if (rc == PST_OK && ready > 0 && (items[1].revents & ZMQ_POLLIN))
        rc = take_conn_events(s, err, errlen);
    if (rc == PST_OK && ready > 0 && s->rsock && (items[2].revents & ZMQ_POLLIN))
        rc = ps_replica_recv(s, err, errlen);
    if (rc == PST_OK)
        rc = ps_watch(s, err, errlen);
    if (rc == PST_OK)
        rc = ps_replica_watch(s, err, errlen);
    return rc != PST_OK ? rc : message;
}

int ps_server_done(const ps_server *s) {
    return s->standby ? s->primary_done : s->goodbyes + s->nlost + s->nvacant >= s->W;
}
int ps_server_standby(const ps_server *s) { return s->standby; }
int ps_server_stopped(const ps_server *s) {
    for (int p = 0; p < s->nparts; p++) {
        const ps_part *pt = &s->parts[p];
        if (pt->stop_at != UINT64_MAX && ps_shard_version(pt) >= pt->stop_at)
            return 1;
    }
    return 0;
}
int ps_server_lost(const ps_server *s) { return s->nlost; }
int ps_server_num_servers(const ps_server *s) { return s->cfg.num_servers; }

int ps_server_run(ps_server *s, char *err, size_t errlen) {
    while (!ps_server_done(s)) {
        const int rc = ps_server_poll(s, 200, err, errlen);
        if (rc < 0)
            return rc;
    }
    ps_replica_end(s);
    if (s->standby)
        return PST_OK;
    if (s->nlost + s->nvacant == s->W)
        return pst_err(err, errlen, PST_EIO, "server %d: every worker was lost", s->cfg.server_id);
    if (s->nfailed)
        return pst_err(err, errlen, PST_EIO, "server %d: %d worker(s) ended on a failure",
                       s->cfg.server_id, s->nfailed);
    return PST_OK;
}