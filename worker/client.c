/* client.c: the worker's side of the protocol. */
#include "worker/client.h"

#include "engine/base.h"
#include "engine/shard.h"
#include "proto/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct server_conn {
    void *sock;
    const char *endpoint;
    size_t lo, n;
    size_t chunk;     /* floats per push and pull message, as the server said (0: all) */
    int C;            /* chunks in the shard */
    int waiting;      /* pull answers outstanding */
    uint64_t version; /* of the shard's weights last received in full */
    uint64_t round;   /* the smallest version among this pull's answers so far */
} server_conn;

struct wk_client {
    void *ctx;
    int P, worker_id, W;
    const eng_model *model;
    int timeout_ms;
    server_conn *srv;
};

/* Receives one message from server s within the timeout. An ErrorReply becomes an error
 * naming the server. */
static int recv_from(wk_client *c, int s, pb_msg *m, Pstrain__Envelope__BodyCase want, char *err,
                     size_t errlen) {
    server_conn *sc = &c->srv[s];
    memset(m, 0, sizeof *m); /* the caller clears m on every path */
    zmq_pollitem_t item = {sc->sock, 0, ZMQ_POLLIN, 0};
    int ready = zmq_poll(&item, 1, c->timeout_ms);
    if (ready < 0)
        return eng_err(err, errlen, ENG_EIO, "server %d at %s: %s", s, sc->endpoint,
                       zmq_strerror(errno));
    if (ready == 0)
        return eng_err(err, errlen, ENG_EIO, "server %d at %s: no answer in %g s", s, sc->endpoint,
                       c->timeout_ms / 1000.0);
    char why[256];
    int rc = pb_recv(sc->sock, 0, m, 0, why, sizeof why);
    if (rc != PB_OK)
        return eng_err(err, errlen, ENG_EIO, "server %d at %s: %s", s, sc->endpoint, why);
    if (m->env->body_case == PSTRAIN__ENVELOPE__BODY_ERROR)
        return eng_err(err, errlen, ENG_EFORMAT, "server %d at %s refused: %s", s, sc->endpoint,
                       m->env->error->message);
    if (m->env->body_case != want)
        return eng_err(err, errlen, ENG_EFORMAT, "server %d at %s: unexpected %s", s, sc->endpoint,
                       pb_body_name(m->env));
    return ENG_OK;
}

wk_client *wk_client_new(const char *const *endpoints, int P, int worker_id, int num_workers,
                         const eng_model *m, double timeout_s, char *err, size_t errlen) {
    wk_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->P = P;
    c->worker_id = worker_id;
    c->W = num_workers;
    c->model = m;
    c->timeout_ms = (int)(timeout_s * 1000.0);
    c->srv = calloc((size_t)P, sizeof *c->srv);
    c->ctx = zmq_ctx_new();
    if (!c->srv || !c->ctx) {
        eng_err(err, errlen, ENG_ENOMEM, "worker %d: out of memory", worker_id);
        goto fail;
    }
    for (int s = 0; s < P; s++) {
        server_conn *sc = &c->srv[s];
        sc->endpoint = endpoints[s];
        eng_shard_range(m->layout.total, P, s, &sc->lo, &sc->n);
        sc->sock = zmq_socket(c->ctx, ZMQ_DEALER);
        int zero = 0;
        if (sc->sock)
            zmq_setsockopt(sc->sock, ZMQ_LINGER, &zero, sizeof zero);
        if (!sc->sock || zmq_connect(sc->sock, sc->endpoint) != 0) {
            eng_err(err, errlen, ENG_EIO, "server %d at %s: cannot connect: %s", s, sc->endpoint,
                    zmq_strerror(errno));
            goto fail;
        }
    }
    /* Hello to all, then collect the answers: the servers check in parallel. */
    Pstrain__Hello h = PSTRAIN__HELLO__INIT;
    h.worker_id = (uint32_t)worker_id;
    h.num_workers = (uint32_t)num_workers;
    h.model = (char *)m->def->name;
    h.param_count = m->layout.total;
    h.layout_checksum = eng_layout_checksum(&m->layout);
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    for (int s = 0; s < P; s++)
        if (pb_send(c->srv[s].sock, NULL, 0, &env, NULL, 0, err, errlen) != PB_OK)
            goto fail;
    for (int s = 0; s < P; s++) {
        pb_msg r;
        int rc = recv_from(c, s, &r, PSTRAIN__ENVELOPE__BODY_HELLO_REPLY, err, errlen);
        if (rc == ENG_OK) {
            const Pstrain__Slice *sh = r.env->hello_reply->shard;
            if (!sh || sh->offset != c->srv[s].lo || sh->count != c->srv[s].n)
                rc = eng_err(err, errlen, ENG_EFORMAT,
                             "server %d at %s: owns another shard than [%zu, %zu)", s,
                             c->srv[s].endpoint, c->srv[s].lo, c->srv[s].lo + c->srv[s].n);
            c->srv[s].chunk = (size_t)r.env->hello_reply->chunk;
            c->srv[s].C = (int)eng_chunk_count(c->srv[s].n, c->srv[s].chunk);
        }
        pb_msg_clear(&r);
        if (rc != ENG_OK)
            goto fail;
    }
    return c;
fail:
    wk_client_free(&c);
    return NULL;
}

void wk_client_free(wk_client **pc) {
    if (!pc || !*pc)
        return;
    wk_client *c = *pc;
    for (int s = 0; c->srv && s < c->P; s++)
        if (c->srv[s].sock)
            zmq_close(c->srv[s].sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c->srv);
    free(c);
    *pc = NULL;
}

/* Sends server s chunk k of grads (a push), and when pull, a pull of that chunk. */
static int send_chunk(wk_client *c, server_conn *sc, int k, const float *grads, uint64_t step,
                      uint64_t base_version, int pull, uint64_t min_version, char *err,
                      size_t errlen) {
    size_t lo, n;
    eng_chunk_range(sc->n, sc->chunk, (size_t)k, &lo, &n);
    Pstrain__Slice slice = PSTRAIN__SLICE__INIT;
    slice.offset = sc->lo + lo;
    slice.count = n;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    if (grads) {
        Pstrain__Push p = PSTRAIN__PUSH__INIT;
        p.worker_id = (uint32_t)c->worker_id;
        p.step = step;
        p.base_version = base_version;
        p.slice = &slice;
        env.body_case = PSTRAIN__ENVELOPE__BODY_PUSH;
        env.push = &p;
        if (pb_send(sc->sock, NULL, 0, &env, grads + sc->lo + lo, n, err, errlen) != PB_OK)
            return -1;
    }
    if (pull) {
        Pstrain__PullRequest p = PSTRAIN__PULL_REQUEST__INIT;
        p.worker_id = (uint32_t)c->worker_id;
        p.min_version = min_version;
        p.slice = &slice;
        env.body_case = PSTRAIN__ENVELOPE__BODY_PULL;
        env.pull = &p;
        if (pb_send(sc->sock, NULL, 0, &env, NULL, 0, err, errlen) != PB_OK)
            return -1;
    }
    return 0;
}

/* Pushes grads (when non-NULL) and asks for weights (when pull), chunk by chunk: each
 * chunk's pull follows its push, so a server answers the first chunks while the later
 * ones are still arriving. */
static int exchange(wk_client *c, const float *grads, uint64_t step, uint64_t base_version,
                    int pull, uint64_t min_version, char *err, size_t errlen) {
    for (int s = 0; s < c->P; s++) {
        server_conn *sc = &c->srv[s];
        for (int k = 0; k < sc->C; k++)
            if (send_chunk(c, sc, k, grads, step, base_version, pull, min_version, err, errlen) !=
                0)
                return -1;
        if (pull) {
            sc->waiting = sc->C;
            sc->round = UINT64_MAX;
        }
    }
    return 0;
}

int wk_client_push(wk_client *c, const float *grads, uint64_t step, uint64_t base_version,
                   char *err, size_t errlen) {
    return exchange(c, grads, step, base_version, 0, 0, err, errlen);
}

int wk_client_pull_send(wk_client *c, uint64_t min_version, char *err, size_t errlen) {
    return exchange(c, NULL, 0, 0, 1, min_version, err, errlen);
}

int wk_client_push_pull(wk_client *c, const float *grads, uint64_t step, uint64_t base_version,
                        uint64_t min_version, char *err, size_t errlen) {
    return exchange(c, grads, step, base_version, 1, min_version, err, errlen);
}

/* Copies one of server s's pull answers (one chunk) into params. */
static int take_reply(wk_client *c, int s, float *params, char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    pb_msg r;
    int rc = recv_from(c, s, &r, PSTRAIN__ENVELOPE__BODY_PULL_REPLY, err, errlen);
    if (rc == ENG_OK) {
        const Pstrain__Slice *sl = r.env->pull_reply->slice;
        size_t lo = 0, n = 0;
        if (sl->offset >= sc->lo && sl->offset - sc->lo < sc->n) {
            size_t k = sc->C == 1 ? 0 : (size_t)(sl->offset - sc->lo) / sc->chunk;
            eng_chunk_range(sc->n, sc->chunk, k, &lo, &n);
        }
        if (sl->offset != sc->lo + lo || sl->count != n)
            rc = eng_err(err, errlen, ENG_EFORMAT, "server %d at %s: pull reply for another slice",
                         s, sc->endpoint);
        else
            memcpy(params + sl->offset, pb_msg_payload(&r), sizeof(float) * n);
        if (r.env->pull_reply->version < sc->round)
            sc->round = r.env->pull_reply->version;
        if (--sc->waiting == 0)
            sc->version = sc->round;
    }
    pb_msg_clear(&r);
    return rc == ENG_OK ? 0 : -1;
}

int wk_client_pull_recv(wk_client *c, float *params, uint64_t *version, int block, char *err,
                        size_t errlen) {
    int outstanding = 0;
    for (int s = 0; s < c->P; s++) {
        server_conn *sc = &c->srv[s];
        while (sc->waiting > 0) {
            if (!block) {
                zmq_pollitem_t item = {sc->sock, 0, ZMQ_POLLIN, 0};
                if (zmq_poll(&item, 1, 0) <= 0) {
                    outstanding++;
                    break;
                }
            }
            if (take_reply(c, s, params, err, errlen) != 0)
                return -1;
        }
    }
    uint64_t v = UINT64_MAX;
    for (int s = 0; s < c->P; s++)
        if (c->srv[s].version < v)
            v = c->srv[s].version;
    if (version)
        *version = v;
    return outstanding ? 0 : 1;
}

int wk_client_pull_wait(wk_client *c, float *params, uint64_t *version, char *err, size_t errlen) {
    return wk_client_pull_recv(c, params, version, 1, err, errlen) < 0 ? -1 : 0;
}

int wk_client_pull_pending(const wk_client *c) {
    for (int s = 0; s < c->P; s++)
        if (c->srv[s].waiting)
            return 1;
    return 0;
}

int wk_client_shutdown(wk_client *c, FILE *out, char *err, size_t errlen) {
    Pstrain__Shutdown d = PSTRAIN__SHUTDOWN__INIT;
    d.worker_id = (uint32_t)c->worker_id;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_SHUTDOWN;
    env.shutdown = &d;
    for (int s = 0; s < c->P; s++)
        if (pb_send(c->srv[s].sock, NULL, 0, &env, NULL, 0, err, errlen) != PB_OK)
            return -1;
    for (int s = 0; s < c->P; s++) {
        pb_msg r;
        int rc = recv_from(c, s, &r, PSTRAIN__ENVELOPE__BODY_STATS, err, errlen);
        if (rc == ENG_OK && out) {
            const Pstrain__ServerStats *st = r.env->stats;
            fprintf(out,
                    "server %u: %" PRIu64 " updates, %" PRIu64 " pushes, %" PRIu64
                    " pulls, %.1f MB in, %.1f MB out, %" PRIu64
                    " refused, staleness mean %.2f max %" PRIu64 "; pushes per worker:",
                    st->server_id, st->updates, st->pushes, st->pulls, st->bytes_in / 1e6,
                    st->bytes_out / 1e6, st->errors, st->mean_staleness, st->max_staleness);
            for (size_t w = 0; w < st->n_pushes_per_worker; w++)
                fprintf(out, " %" PRIu64, st->pushes_per_worker[w]);
            fputc('\n', out);
        }
        pb_msg_clear(&r);
        if (rc != ENG_OK)
            return -1;
    }
    return 0;
}
