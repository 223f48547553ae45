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
        pb_frame_free(&s->held[i]);
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

int ps_server_poll(ps_server *s, int timeout_ms, char *err, size_t errlen) {
    zmq_pollitem_t item = {s->sock, 0, ZMQ_POLLIN, 0};
    const int ready = zmq_poll(&item, 1, timeout_ms);
    if (ready < 0 && errno != EINTR)
        return pst_err(err, errlen, PST_EIO, "server %d: %s", s->cfg.server_id,
                       zmq_strerror(errno));
    const int handled = ready > 0 ? (ps_dispatch(s, err, errlen) == 0 ? 1 : -1) : 0;
    if (handled < 0 || ps_watch(s, err, errlen) != 0)
        return -1;
    return handled;
}

int ps_server_done(const ps_server *s) { return s->goodbyes + s->nlost >= s->W; }
int ps_server_stopped(const ps_server *s) {
    return s->stop_at != UINT64_MAX && ps_shard_version(s) >= s->stop_at;
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