/* client.c: the worker's side of the protocol. */
#include "worker/client.h"

#include "engine/base/base.h"
#include "engine/shard.h"
#include "proto/secure.h"
#include "proto/wire.h"
#include "worker/heartbeat.h"
#include "worker/progress.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct server_conn {
    void *sock;
    const char *endpoint;
    size_t lo, n;
    eng_chunks chunks; /* the shard's chunks, planned as the server plans them */
    size_t max;        /* the most floats in one message, as the server said (0: no limit) */
    int C;             /* chunks.n */
    int waiting;       /* pull answers outstanding */
    int unsent;        /* this step's chunks [0, unsent) are still to be sent */
    uint64_t version;  /* of the shard's weights last received in full */
    uint64_t round;    /* the smallest version among this pull's answers so far */
} server_conn;

/* How long the first hello may take: every server is listening before workers learn its
 * endpoint, so silence means a path that does not work. */
#define WK_HELLO_MS 10000

struct wk_client {
    void *ctx;
    int P, worker_id, W;
    const eng_model *model;
    int timeout_ms;
    server_conn *srv;
    /* the step being sent (wk_client_step_begin .. wk_client_step_end) */
    const float *grads;
    uint64_t step, base_version, min_version;
    int pull;
    atomic_int lent;              /* pushes ZeroMQ is still sending straight from grads */
    const wk_sparse_rows *sparse; /* this step's touched rows, or NULL */
    float *row_vals;              /* a sparse push's payload: the rows' values */
    uint32_t *row_ids;            /* and their ids */
    size_t row_cap;               /* floats row_vals holds */
    uint64_t bytes_pushed;
    int stopping;           /* a server said it is stopping */
    wk_server_stats *stats; /* (P): the servers' counters as last asked for */
    uint64_t *per_worker;   /* (P, W): their pushes_per_worker */
    const wk_heartbeat *hb; /* says when a server is lost (NULL: only the timeout does) */
    int want_stop;          /* pushes carry stop */
    const uint64_t *settle; /* the next pulls' pushes (W), or NULL */
    uint64_t round;         /* reduce rounds done */
    int *members;           /* (W): the workers of the last reduce round, ascending */
    int nmembers;
};

/* Receives one message from server s within the timeout. An ErrorReply becomes an error
 * naming the server. */
static int recv_from(wk_client *c, int s, pb_msg *m, Pstrain__Envelope__BodyCase want, char *err,
                     size_t errlen) {
    server_conn *sc = &c->srv[s];
    memset(m, 0, sizeof *m); /* the caller clears m on every path */
    zmq_pollitem_t item = {sc->sock, 0, ZMQ_POLLIN, 0};
    /* A signal (the SIGTERM that asks for a last checkpoint) interrupts the wait: go on
     * waiting for the rest of the timeout. */
    /* A server the heartbeats say is alive may wait a peer timeout for a lost worker before
     * it answers: that time comes on top of the timeout. */
    const double deadline =
        pst_now() + c->timeout_ms / 1000.0 + (c->hb ? wk_heartbeat_timeout(c->hb) : 0.0);
    int ready;
    char lost[384];
    do { /* in slices, so that a server the heartbeats say is lost ends the wait */
        const double left = deadline - pst_now();
        ready = left > 0 ? zmq_poll(&item, 1, (long)(left < 0.25 ? left * 1000.0 : 250.0)) : 0;
        if (ready == 0 && wk_heartbeat_lost(c->hb, lost, sizeof lost))
            return pst_err(err, errlen, PST_EIO, "%s", lost);
    } while ((ready < 0 && errno == EINTR) || (ready == 0 && pst_now() < deadline));
    if (ready < 0)
        return pst_err(err, errlen, PST_EIO, "server %d at %s: %s", s, sc->endpoint,
                       zmq_strerror(errno));
    if (ready == 0)
        return pst_err(err, errlen, PST_EIO, "server %d at %s: no answer in %g s", s, sc->endpoint,
                       c->timeout_ms / 1000.0);
    char why[256];
    int rc = pb_recv(sc->sock, 0, m, 0, why, sizeof why);
    if (rc != PST_OK)
        return pst_err(err, errlen, PST_EIO, "server %d at %s: %s", s, sc->endpoint, why);
    if (m->env->body_case == PSTRAIN__ENVELOPE__BODY_ERROR)
        return pst_err(err, errlen, PST_EFORMAT, "server %d at %s refused: %s", s, sc->endpoint,
                       m->env->error->message);
    if (m->env->body_case != want)
        return pst_err(err, errlen, PST_EFORMAT, "server %d at %s: unexpected %s", s, sc->endpoint,
                       pb_body_name(m->env));
    return PST_OK;
}

wk_client *wk_client_new(const char *const *endpoints, int P, int worker_id, int num_workers,
                         const eng_model *m, double timeout_s, char *err, size_t errlen) {
    return wk_client_new_keys(endpoints, P, worker_id, num_workers, m, timeout_s, NULL, err,
                              errlen);
}

wk_client *wk_client_new_keys(const char *const *endpoints, int P, int worker_id, int num_workers,
                              const eng_model *m, double timeout_s, const struct pb_keys *keys,
                              char *err, size_t errlen) {
    wk_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->P = P;
    c->worker_id = worker_id;
    c->W = num_workers;
    c->model = m;
    c->timeout_ms = (int)(timeout_s * 1000.0);
    c->srv = calloc((size_t)P, sizeof *c->srv);
    c->members = calloc((size_t)num_workers, sizeof *c->members);
    c->ctx = zmq_ctx_new();
    for (int w = 0; c->members && w < num_workers; w++)
        c->members[w] = w;
    c->nmembers = num_workers;
    if (!c->srv || !c->ctx || !c->members) {
        pst_err(err, errlen, PST_ENOMEM, "worker %d: out of memory", worker_id);
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
        if (sc->sock && keys && pb_secure_client(sc->sock, keys, err, errlen) != PST_OK)
            goto fail;
        if (!sc->sock || zmq_connect(sc->sock, sc->endpoint) != 0) {
            pst_err(err, errlen, PST_EIO, "server %d at %s: cannot connect: %s", s, sc->endpoint,
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
        if (pb_send(c->srv[s].sock, NULL, 0, &env, NULL, 0, err, errlen) != PST_OK)
            goto fail;
    /* A path that does not work shows as silence (ZeroMQ retries the connection quietly): say
     * which one, within seconds, and what to check, rather than wait the whole timeout. */
    c->timeout_ms = c->timeout_ms < WK_HELLO_MS ? c->timeout_ms : WK_HELLO_MS;
    for (int s = 0; s < P; s++) {
        pb_msg r;
        int rc = recv_from(c, s, &r, PSTRAIN__ENVELOPE__BODY_HELLO_REPLY, err, errlen);
        if (rc == PST_EIO) {
            char host[256] = "?", why[512];
            gethostname(host, sizeof host);
            host[sizeof host - 1] = '\0';
            snprintf(why, sizeof why, "%s", err);
            pst_err(err, errlen, PST_EIO,
                    "host %s: no hello from %s (%s): check that this host reaches that address "
                    "and port (firewall, routing), that the server advertises an address "
                    "workers can reach (--advertise), and --port-range",
                    host, c->srv[s].endpoint, why);
        }
        if (rc == PST_OK) {
            const Pstrain__Slice *sh = r.env->hello_reply->shard;
            if (!sh || sh->offset != c->srv[s].lo || sh->count != c->srv[s].n)
                rc = pst_err(err, errlen, PST_EFORMAT,
                             "server %d at %s: owns another shard than [%zu, %zu)", s,
                             c->srv[s].endpoint, c->srv[s].lo, c->srv[s].lo + c->srv[s].n);
            size_t cuts[ENG_MAX_LAYERS];
            const int ncuts = eng_model_cuts(m, cuts);
            if (rc == PST_OK && eng_chunks_plan(&c->srv[s].chunks, c->srv[s].lo, c->srv[s].n, cuts,
                                                ncuts, (size_t)r.env->hello_reply->chunk) != 0)
                rc = pst_err(err, errlen, PST_ENOMEM, "worker %d: out of memory", worker_id);
            c->srv[s].C = c->srv[s].chunks.n;
            c->srv[s].max = (size_t)r.env->hello_reply->chunk;
        }
        pb_msg_clear(&r);
        if (rc != PST_OK)
            goto fail;
    }
    c->timeout_ms = (int)(timeout_s * 1000.0);
    return c;
fail:
    wk_client_free(&c);
    return NULL;
}

void wk_client_free(wk_client **pc) {
    if (!pc || !*pc)
        return;
    wk_client *c = *pc;
    for (int s = 0; c->srv && s < c->P; s++) {
        if (c->srv[s].sock)
            zmq_close(c->srv[s].sock);
        eng_chunks_free(&c->srv[s].chunks);
    }
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c->srv);
    free(c->row_vals);
    free(c->row_ids);
    free(c->stats);
    free(c->per_worker);
    free(c->members);
    free(c);
    *pc = NULL;
}

void wk_client_watch(wk_client *c, const wk_heartbeat *hb) { c->hb = hb; }

void wk_client_want_stop(wk_client *c) { c->want_stop = 1; }

int wk_client_pull_settled(wk_client *c, const uint64_t *pushes, char *err, size_t errlen) {
    c->settle = pushes;
    const int rc = wk_client_pull_send(c, 0, err, errlen);
    c->settle = NULL;
    return rc;
}

int wk_client_reduce(wk_client *c, int op, double *v, int n, char *err, size_t errlen) {
    Pstrain__Reduce r = PSTRAIN__REDUCE__INIT;
    r.worker_id = (uint32_t)c->worker_id;
    r.round = ++c->round;
    r.op = (uint32_t)op;
    r.n_values = (size_t)n;
    r.values = v;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_REDUCE;
    env.reduce = &r;
    if (pb_send(c->srv[0].sock, NULL, 0, &env, NULL, 0, err, errlen) != PST_OK)
        return -1;
    pb_msg m;
    int rc = recv_from(c, 0, &m, PSTRAIN__ENVELOPE__BODY_REDUCE_REPLY, err, errlen);
    if (rc == PST_OK) {
        const Pstrain__ReduceReply *a = m.env->reduce_reply;
        if (a->round != c->round || a->n_values != (size_t)n || a->n_workers > (size_t)c->W)
            rc = pst_err(err, errlen, PST_EFORMAT,
                         "server 0 at %s: reduce reply for round %" PRIu64 " with %zu values, "
                         "expected round %" PRIu64 " with %d",
                         c->srv[0].endpoint, a->round, a->n_values, c->round, n);
        else {
            memcpy(v, a->values, sizeof(double) * (size_t)n);
            c->nmembers = 0;
            for (size_t i = 0; i < a->n_workers; i++)
                if (a->workers[i] < (uint32_t)c->W)
                    c->members[c->nmembers++] = (int)a->workers[i];
        }
    }
    pb_msg_clear(&m);
    return rc == PST_OK ? 0 : -1;
}

int wk_client_members(const wk_client *c, const int **ids) {
    *ids = c->members;
    return c->nmembers;
}

void wk_client_fail(wk_client *c, const char *reason) {
    if (!c)
        return;
    Pstrain__Shutdown d = PSTRAIN__SHUTDOWN__INIT;
    d.worker_id = (uint32_t)c->worker_id;
    d.failed = 1;
    d.reason = (char *)reason;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_SHUTDOWN;
    env.shutdown = &d;
    const int linger = 500; /* ms that closing may wait for it to go out */
    for (int s = 0; s < c->P; s++) {
        char err[64];
        zmq_setsockopt(c->srv[s].sock, ZMQ_LINGER, &linger, sizeof linger);
        pb_send(c->srv[s].sock, NULL, 0, &env, NULL, 0, err, sizeof err);
    }
}

/* ZeroMQ's I/O thread is done with a push's payload. */
static void returned(void *data, void *hint) {
    (void)data;
    wk_client *c = hint;
    atomic_fetch_sub_explicit(&c->lent, 1, memory_order_release);
}

/* The touched rows of c->sparse that meet [lo, hi), their parts inside it gathered from grads
 * into c's buffers; returns how many (0: none, or the range is not all inside the tensor),
 * and the floats gathered in *nvals. -1 when out of memory. */
static long gather_rows(wk_client *c, const float *grads, size_t lo, size_t hi, size_t *nvals) {
    const wk_sparse_rows *sp = c->sparse;
    *nvals = 0;
    if (!sp || lo < sp->from || hi > sp->from + sp->nrows * sp->row_len)
        return 0;
    if (c->row_cap < hi - lo) {
        float *v = realloc(c->row_vals, sizeof(float) * (hi - lo));
        if (v)
            c->row_vals = v;
        uint32_t *ids = realloc(c->row_ids, sizeof(uint32_t) * (hi - lo));
        if (ids)
            c->row_ids = ids;
        if (!v || !ids)
            return -1;
        c->row_cap = hi - lo;
    }
    long n = 0;
    for (size_t i = 0; i < sp->n; i++) {
        uint64_t a, b;
        if (!pb_row_part(sp->from, sp->row_len, sp->rows[i], lo, hi, &a, &b))
            continue;
        memcpy(c->row_vals + *nvals, grads + a, sizeof(float) * (b - a));
        *nvals += b - a;
        c->row_ids[n++] = sp->rows[i];
    }
    return n;
}

/* Sends server s chunks [k, end) of grads in one push, and when pull, one pull of them. */
static int send_run(wk_client *c, server_conn *sc, int k, int end, const float *grads,
                    uint64_t step, uint64_t base_version, int pull, uint64_t min_version, char *err,
                    size_t errlen) {
    const size_t lo = sc->chunks.start[k], n = sc->chunks.start[end] - lo;
    Pstrain__Slice slice = PSTRAIN__SLICE__INIT;
    slice.offset = lo;
    slice.count = n;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    if (grads) {
        Pstrain__Push p = PSTRAIN__PUSH__INIT;
        p.worker_id = (uint32_t)c->worker_id;
        p.step = step;
        p.base_version = base_version;
        p.slice = &slice;
        p.stop = c->want_stop;
        env.body_case = PSTRAIN__ENVELOPE__BODY_PUSH;
        env.push = &p;
        size_t nvals;
        const long nrows = gather_rows(c, grads, lo, lo + n, &nvals);
        if (nrows < 0)
            return pst_err(err, errlen, PST_ENOMEM, "worker %d: out of memory", c->worker_id);
        if (nrows > 0 && nvals < n) { /* only the touched rows: the rest is 0 */
            p.rows_from = c->sparse->from;
            p.row_len = (uint32_t)c->sparse->row_len;
            p.n_rows = (size_t)nrows;
            p.rows = c->row_ids;
            if (pb_send(sc->sock, NULL, 0, &env, c->row_vals, nvals, err, errlen) != PST_OK)
                return -1;
            c->bytes_pushed += sizeof(float) * nvals;
        } else {
            atomic_fetch_add_explicit(&c->lent, 1, memory_order_relaxed);
            if (pb_send_borrowed(sc->sock, &env, grads + lo, n, returned, c, err, errlen) != PST_OK)
                return -1;
            c->bytes_pushed += sizeof(float) * n;
        }
    }
    if (pull) {
        Pstrain__PullRequest p = PSTRAIN__PULL_REQUEST__INIT;
        p.worker_id = (uint32_t)c->worker_id;
        p.min_version = min_version;
        p.slice = &slice;
        if (c->settle) {
            p.n_pushes = (size_t)c->W;
            p.pushes = (uint64_t *)c->settle;
        }
        env.body_case = PSTRAIN__ENVELOPE__BODY_PULL;
        env.pull = &p;
        if (pb_send(sc->sock, NULL, 0, &env, NULL, 0, err, errlen) != PST_OK)
            return -1;
    }
    return 0;
}

int wk_client_step_begin(wk_client *c, const float *grads, uint64_t step, uint64_t base_version,
                         int pull, uint64_t min_version, char *err, size_t errlen) {
    /* The caller is about to overwrite the gradients the last pushes were sent from. */
    const double deadline = pst_now() + c->timeout_ms / 1000.0;
    for (int spin = 0; atomic_load_explicit(&c->lent, memory_order_acquire) > 0; spin++) {
        if (spin < 1000)
            continue;
        if (pst_now() > deadline)
            return pst_err(err, errlen, PST_EIO, "worker %d: pushes not sent in %g s", c->worker_id,
                           c->timeout_ms / 1000.0);
        sched_yield();
    }
    c->grads = grads;
    c->sparse = NULL;
    c->step = step;
    c->base_version = base_version;
    c->pull = pull;
    c->min_version = min_version;
    for (int s = 0; s < c->P; s++) {
        c->srv[s].unsent = c->srv[s].C;
        if (pull)
            c->srv[s].round = UINT64_MAX;
    }
    return 0;
}

/* True when off is where sp's tensor begins or ends: a message must not mix its rows with
 * other floats, or it could not go sparse. */
static int sparse_edge(const wk_sparse_rows *sp, size_t off) {
    return sp && (off == sp->from || off == sp->from + sp->nrows * sp->row_len);
}

/* Sends server s's unsent chunks that start at or after lo (their gradients are final),
 * joined into messages of at most the server's chunk limit, each push followed by its pull:
 * a server updates and answers them while the layers below are still computed. */
static int send_from(wk_client *c, server_conn *sc, size_t lo, char *err, size_t errlen) {
    const size_t *start = sc->chunks.start;
    while (sc->unsent > 0 && start[sc->unsent - 1] >= lo) {
        const int end = sc->unsent;
        int k = end - 1;
        while (k > 0 && start[k - 1] >= lo && (!sc->max || start[end] - start[k - 1] <= sc->max) &&
               !sparse_edge(c->sparse, start[k]))
            k--;
        if (send_run(c, sc, k, end, c->grads, c->step, c->base_version, c->pull, c->min_version,
                     err, errlen) != 0)
            return -1;
        sc->unsent = k;
        sc->waiting += c->pull;
    }
    return 0;
}

int wk_client_step_ready(wk_client *c, size_t lo, char *err, size_t errlen) {
    for (int s = 0; s < c->P; s++)
        if (c->srv[s].lo + c->srv[s].n > lo && send_from(c, &c->srv[s], lo, err, errlen) != 0)
            return -1;
    return 0;
}

int wk_client_step_end(wk_client *c, char *err, size_t errlen) {
    return wk_client_step_ready(c, 0, err, errlen);
}

int wk_client_push(wk_client *c, const float *grads, uint64_t step, uint64_t base_version,
                   char *err, size_t errlen) {
    if (wk_client_step_begin(c, grads, step, base_version, 0, 0, err, errlen) != 0)
        return -1;
    return wk_client_step_end(c, err, errlen);
}

int wk_client_pull_send(wk_client *c, uint64_t min_version, char *err, size_t errlen) {
    if (wk_client_step_begin(c, NULL, 0, 0, 1, min_version, err, errlen) != 0)
        return -1;
    return wk_client_step_end(c, err, errlen);
}

int wk_client_push_pull(wk_client *c, const float *grads, uint64_t step, uint64_t base_version,
                        uint64_t min_version, char *err, size_t errlen) {
    if (wk_client_step_begin(c, grads, step, base_version, 1, min_version, err, errlen) != 0)
        return -1;
    return wk_client_step_end(c, err, errlen);
}

/* Copies one of server s's pull answers (one chunk) into params. */
static int take_reply(wk_client *c, int s, float *params, char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    pb_msg r;
    int rc = recv_from(c, s, &r, PSTRAIN__ENVELOPE__BODY_PULL_REPLY, err, errlen);
    if (rc == PST_OK) {
        const Pstrain__Slice *sl = r.env->pull_reply->slice;
        /* an answer to one of our pulls: a run of whole chunks of this server's */
        const int k0 = sl->offset <= SIZE_MAX ? eng_chunks_find(&sc->chunks, sl->offset) : -1;
        const int k1 = k0 < 0 || sl->count == 0 || sl->count > sc->n
                           ? -1
                           : eng_chunks_find(&sc->chunks, sl->offset + sl->count - 1);
        const size_t n = (size_t)sl->count;
        if (k0 < 0 || k1 < 0 || sl->offset != sc->chunks.start[k0] ||
            sl->offset + n != sc->chunks.start[k1 + 1])
            rc = pst_err(err, errlen, PST_EFORMAT, "server %d at %s: pull reply for another slice",
                         s, sc->endpoint);
        else
            memcpy(params + sl->offset, pb_msg_payload(&r), sizeof(float) * n);
        c->stopping |= r.env->pull_reply->stopping;
        if (r.env->pull_reply->version < sc->round)
            sc->round = r.env->pull_reply->version;
        if (--sc->waiting == 0)
            sc->version = sc->round;
    }
    pb_msg_clear(&r);
    return rc == PST_OK ? 0 : -1;
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

int wk_client_stopping(const wk_client *c) { return c->stopping; }
void wk_client_step_sparse(wk_client *c, const wk_sparse_rows *sp) { c->sparse = sp; }
uint64_t wk_client_bytes_pushed(const wk_client *c) { return c->bytes_pushed; }

/* Takes server s's snapshot into weights and ck. */
static int take_snapshot(wk_client *c, int s, float *weights, eng_ckpt_part *ck, char *err,
                         size_t errlen) {
    server_conn *sc = &c->srv[s];
    pb_msg r;
    int rc = recv_from(c, s, &r, PSTRAIN__ENVELOPE__BODY_SNAPSHOT_REPLY, err, errlen);
    const Pstrain__SnapshotReply *sr = rc == PST_OK ? r.env->snapshot_reply : NULL;
    if (sr && (sr->shard->offset != sc->lo || sr->shard->count != sc->n))
        rc = pst_err(err, errlen, PST_EFORMAT, "server %d at %s: snapshot of another shard", s,
                     sc->endpoint);
    else if (sr && (int)sr->nslots != ck->nslots)
        rc = pst_err(err, errlen, PST_EFORMAT,
                     "server %d at %s: snapshot with %u optimizer arrays, expected %d", s,
                     sc->endpoint, sr->nslots, ck->nslots);
    uint64_t covered = 0;
    for (size_t i = 0; rc == PST_OK && i < sr->n_runs; i++) {
        const Pstrain__Run *run = sr->runs[i];
        if (run->offset != sc->lo + covered || run->count > sc->n - covered) {
            rc = pst_err(err, errlen, PST_EFORMAT,
                         "server %d at %s: snapshot runs do not tile its shard", s, sc->endpoint);
            break;
        }
        covered += run->count;
    }
    if (rc == PST_OK && covered != sc->n)
        rc = pst_err(err, errlen, PST_EFORMAT,
                     "server %d at %s: snapshot runs do not tile its shard", s, sc->endpoint);
    eng_ckpt_iters *runs =
        rc == PST_OK ? realloc(ck->runs, sizeof *runs * ((size_t)ck->nruns + sr->n_runs + 1))
                     : NULL;
    if (rc == PST_OK && !runs)
        rc = pst_err(err, errlen, PST_ENOMEM, "worker %d: out of memory", c->worker_id);
    if (rc == PST_OK) {
        ck->runs = runs;
        for (size_t i = 0; i < sr->n_runs; i++)
            ck->runs[ck->nruns++] = (eng_ckpt_iters){sr->runs[i]->offset, sr->runs[i]->count,
                                                     (int64_t)sr->runs[i]->iterations};
        const float *p = pb_msg_payload(&r);
        memcpy(weights + sc->lo, p, sizeof(float) * sc->n);
        for (int i = 0; i < ck->nslots; i++)
            memcpy(ck->slots[i] + sc->lo, p + (size_t)(i + 1) * sc->n, sizeof(float) * sc->n);
        c->stopping |= sr->stopping;
    }
    pb_msg_clear(&r);
    return rc == PST_OK ? 0 : -1;
}

int wk_client_snapshot(wk_client *c, uint64_t min_version, float *weights, eng_ckpt_part *ck,
                       char *err, size_t errlen) {
    PST_ASSERT(!wk_client_pull_pending(c), "snapshot with a pull outstanding");
    Pstrain__SnapshotRequest q = PSTRAIN__SNAPSHOT_REQUEST__INIT;
    q.worker_id = (uint32_t)c->worker_id;
    q.min_version = min_version;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_SNAPSHOT;
    env.snapshot = &q;
    for (int s = 0; s < c->P; s++)
        if (pb_send(c->srv[s].sock, NULL, 0, &env, NULL, 0, err, errlen) != PST_OK)
            return -1;
    ck->nruns = 0;
    for (int s = 0; s < c->P; s++)
        if (take_snapshot(c, s, weights, ck, err, errlen) != 0)
            return -1;
    return 0;
}

/* Receives the ServerStats of every server into c->stats. */
static int take_stats(wk_client *c, char *err, size_t errlen) {
    if (!c->stats) {
        c->stats = calloc((size_t)c->P, sizeof *c->stats);
        c->per_worker = calloc((size_t)c->P * (size_t)c->W, sizeof *c->per_worker);
        if (!c->stats || !c->per_worker)
            return pst_err(err, errlen, PST_ENOMEM, "worker %d: out of memory", c->worker_id);
    }
    for (int s = 0; s < c->P; s++) {
        pb_msg r;
        int rc = recv_from(c, s, &r, PSTRAIN__ENVELOPE__BODY_STATS, err, errlen);
        if (rc == PST_OK) {
            const Pstrain__ServerStats *st = r.env->stats;
            wk_server_stats *o = &c->stats[s];
            *o = (wk_server_stats){.server_id = st->server_id,
                                   .updates = st->updates,
                                   .pushes = st->pushes,
                                   .pulls = st->pulls,
                                   .bytes_in = st->bytes_in,
                                   .bytes_out = st->bytes_out,
                                   .errors = st->errors,
                                   .max_staleness = st->max_staleness,
                                   .mean_staleness = st->mean_staleness,
                                   .barrier_wait_s = st->barrier_wait_s,
                                   .pushes_per_worker = c->per_worker + (size_t)s * c->W,
                                   .workers = c->W};
            for (size_t w = 0; w < st->n_pushes_per_worker && w < (size_t)c->W; w++)
                c->per_worker[(size_t)s * c->W + w] = st->pushes_per_worker[w];
        }
        pb_msg_clear(&r);
        if (rc != PST_OK)
            return -1;
    }
    return 0;
}

const wk_server_stats *wk_client_stats(wk_client *c, char *err, size_t errlen) {
    PST_ASSERT(!wk_client_pull_pending(c), "stats with a pull outstanding");
    Pstrain__StatsRequest q = PSTRAIN__STATS_REQUEST__INIT;
    q.worker_id = (uint32_t)c->worker_id;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_STATS_REQUEST;
    env.stats_request = &q;
    for (int s = 0; s < c->P; s++)
        if (pb_send(c->srv[s].sock, NULL, 0, &env, NULL, 0, err, errlen) != PST_OK)
            return NULL;
    return take_stats(c, err, errlen) == 0 ? c->stats : NULL;
}

const wk_server_stats *wk_client_last_stats(const wk_client *c) { return c->stats; }
int wk_client_servers(const wk_client *c) { return c->P; }

int wk_client_shutdown(wk_client *c, FILE *out, char *err, size_t errlen) {
    Pstrain__Shutdown d = PSTRAIN__SHUTDOWN__INIT;
    d.worker_id = (uint32_t)c->worker_id;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_SHUTDOWN;
    env.shutdown = &d;
    for (int s = 0; s < c->P; s++)
        if (pb_send(c->srv[s].sock, NULL, 0, &env, NULL, 0, err, errlen) != PST_OK)
            return -1;
    if (take_stats(c, err, errlen) != 0)
        return -1;
    for (int s = 0; s < c->P && out; s++) {
        const wk_server_stats *st = &c->stats[s];
        fprintf(out,
                "server %u: %" PRIu64 " updates, %" PRIu64 " pushes, %" PRIu64
                " pulls, %.1f MB in, %.1f MB out, %" PRIu64
                " refused, staleness mean %.2f max %" PRIu64 "; pushes per worker:",
                st->server_id, st->updates, st->pushes, st->pulls, st->bytes_in / 1e6,
                st->bytes_out / 1e6, st->errors, st->mean_staleness, st->max_staleness);
        for (int w = 0; w < st->workers; w++)
            fprintf(out, " %" PRIu64, st->pushes_per_worker[w]);
        fputc('\n', out);
    }
    return 0;
}
