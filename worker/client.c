/* client.c: the worker's side of the protocol: one connection per server rank, every part
 * of the model through it. */
#include "worker/client.h"

#include "engine/base/base.h"
#include "engine/shard.h"
#include "proto/secure.h"
#include "proto/wire.h"
#include "worker/heartbeat.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

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
} part_step;

/* How long the first hello may take: every server is listening before workers learn its
 * endpoint, so silence means a path that does not work. */
#define WK_HELLO_MS 10000

struct wk_client {
    void *ctx;
    int P, worker_id, W, nparts;
    const eng_model *model;
    int timeout_ms;
    server_conn *srv;
    part_step parts[ENG_MAX_PARTS];
    float *row_vals;   /* a sparse push's payload: the rows' values */
    uint32_t *row_ids; /* and their ids */
    size_t row_cap;    /* floats row_vals holds */
    uint64_t bytes_pushed;
    int stopping;           /* a server said it is stopping */
    wk_server_stats *stats; /* (P): the servers' counters as last asked for */
    uint64_t *per_worker;   /* (P, W): their pushes_per_worker */
    const wk_heartbeat *hb; /* says when a server is lost (NULL: only the timeout does) */
    int want_stop;          /* pushes carry stop */
    uint64_t round;         /* reduce rounds done */
    int *members;           /* (W): the workers of the last reduce round, ascending */
    int nmembers;
};

/* Whether m is what the caller awaits: a message of kind want, for part when it is a pull
 * answer. */
static int awaited(const pb_msg *m, pb_kind want, int part) {
    return m->kind == want && (want != PB_PULL_REPLY || m->pull_reply.part == (uint32_t)part);
}

/* Takes from server s's stash the first pull answer of part into m: 1, or 0 when none. */
static int unstash(server_conn *sc, int part, pb_msg *m) {
    for (int i = 0; i < sc->nstash; i++)
        if (sc->stash[i].pull_reply.part == (uint32_t)part) {
            *m = sc->stash[i];
            memmove(&sc->stash[i], &sc->stash[i + 1],
                    sizeof *sc->stash * (size_t)(sc->nstash - i - 1));
            sc->nstash--;
            return 1;
        }
    return 0;
}

/* Receives from server s the next message of kind want (for part, when it is a pull answer)
 * within the timeout: pull answers of other parts that come first are stashed for their
 * part. wait 0: PST_EAGAIN at once when nothing awaited has arrived. An ErrorReply becomes
 * an error naming the server. The caller clears m on every path. */
static int recv_from(wk_client *c, int s, pb_msg *m, pb_kind want, int part, int wait, char *err,
                     size_t errlen) {
    server_conn *sc = &c->srv[s];
    memset(m, 0, sizeof *m);
    if (want == PB_PULL_REPLY && unstash(sc, part, m))
        return PST_OK;
    zmq_pollitem_t item = {sc->sock, 0, ZMQ_POLLIN, 0};
    /* A server the heartbeats say is alive may wait a peer timeout for a lost worker before
     * it answers: that time comes on top of the timeout. */
    const double deadline =
        pst_now() + c->timeout_ms / 1000.0 + (c->hb ? wk_heartbeat_timeout(c->hb) : 0.0);
    for (;;) {
        int ready;
        char lost[384];
        /* In slices, so that a server the heartbeats say is lost ends the wait; a signal
         * (the SIGTERM that asks for a last checkpoint) interrupts a slice: go on waiting
         * for the rest of the timeout. */
        do {
            const double left = wait ? deadline - pst_now() : 0.0;
            ready = left > 0 || !wait
                        ? zmq_poll(&item, 1, (long)(left < 0.25 ? left * 1000.0 : 250.0))
                        : 0;
            if (ready == 0 && !wait)
                return PST_EAGAIN;
            if (ready == 0 && wk_heartbeat_lost(c->hb, lost, sizeof lost))
                return pst_err(err, errlen, PST_EPEER, "%s", lost);
        } while ((ready < 0 && errno == EINTR) || (ready == 0 && pst_now() < deadline));
        if (ready < 0)
            return pst_err(err, errlen, PST_ESOCKET, "server %d at %s: %s", s, sc->endpoint,
                           zmq_strerror(errno));
        if (ready == 0)
            return pst_err(err, errlen, PST_EPEER, "server %d at %s: no answer in %g s", s,
                           sc->endpoint, c->timeout_ms / 1000.0);
        char why[256];
        const int rc = pb_recv(sc->sock, NULL, m, 0, why, sizeof why);
        if (rc == PST_ESOCKET)
            return pst_err(err, errlen, PST_ESOCKET, "server %d at %s: %s", s, sc->endpoint, why);
        if (rc != PST_OK)
            return pst_err(err, errlen, PST_EPEER, "server %d at %s: %s", s, sc->endpoint, why);
        if (m->kind == PB_ERROR)
            return pst_err(err, errlen, PST_EPEER, "server %d at %s refused: %s", s, sc->endpoint,
                           m->error.message);
        if (awaited(m, want, part))
            return PST_OK;
        if (m->kind != PB_PULL_REPLY || m->pull_reply.part >= (uint32_t)c->nparts)
            return pst_err(err, errlen, PST_EPEER, "server %d at %s: unexpected %s", s,
                           sc->endpoint, pb_kind_name(m->kind));
        if (sc->nstash == sc->stash_cap) { /* another part's: kept for it */
            sc->stash_cap = sc->stash_cap ? 2 * sc->stash_cap : 8;
            sc->stash = pst_realloc(sc->stash, sizeof *sc->stash * (size_t)sc->stash_cap);
        }
        sc->stash[sc->nstash++] = *m;
        memset(m, 0, sizeof *m);
    }
}

/* Server s's hello reply: each part's shard must be the one we computed. */
static int take_hello(wk_client *c, int s, char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    pb_msg r;
    int rc = recv_from(c, s, &r, PB_HELLO_REPLY, 0, 1, err, errlen);
    if (rc == PST_EPEER && strstr(err, "no answer")) {
        char host[256] = "?", why[512];
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        snprintf(why, sizeof why, "%s", err);
        pst_err(err, errlen, PST_EPEER,
                "host %s: no hello from %s (%s): check that this host reaches that address "
                "and port (firewall, routing), that the server advertises an address "
                "workers can reach (--advertise), and --port-range",
                host, sc->endpoint, why);
    }
    if (rc == PST_OK && r.hello_reply.nparts != (size_t)c->nparts)
        rc = pst_err(err, errlen, PST_EPEER, "server %d at %s: serves %zu parts, expected %d", s,
                     sc->endpoint, r.hello_reply.nparts, c->nparts);
    sc->max = rc == PST_OK ? (size_t)r.hello_reply.chunk : 0;
    for (int p = 0; rc == PST_OK && p < c->nparts; p++) {
        conn_part *cp = &sc->parts[p];
        const pb_slice *sh = &r.hello_reply.shards[p];
        if (sh->offset != cp->lo || sh->count != cp->n) {
            rc = pst_err(err, errlen, PST_EPEER,
                         "server %d at %s: owns another shard of part %d than [%zu, %zu)", s,
                         sc->endpoint, p, cp->lo, cp->lo + cp->n);
            break;
        }
        size_t cuts[ENG_MAX_LAYERS];
        const int ncuts = eng_model_cuts(&c->parts[p].model, cuts);
        PST_ASSERT(eng_chunks_plan(&cp->chunks, cp->lo, cp->n, cuts, ncuts, sc->max) == 0,
                   "out of memory");
        cp->C = cp->chunks.n;
    }
    pb_msg_clear(&r);
    return rc;
}

wk_client *wk_client_new(const char *const *endpoints, int P, int worker_id, int num_workers,
                         const eng_model *m, double timeout_s, const struct pb_keys *keys,
                         char *err, size_t errlen) {
    PST_ASSERT(m->nparts >= 1 && m->nparts <= ENG_MAX_PARTS && m->nparts <= PB_MAX_PARTS,
               "%s: %d parts", m->def->name, m->nparts);
    wk_client *c = pst_calloc(1, sizeof *c);
    c->P = P;
    c->worker_id = worker_id;
    c->W = num_workers;
    c->nparts = m->nparts;
    c->model = m;
    c->timeout_ms = (int)(timeout_s * 1000.0);
    c->srv = pst_calloc((size_t)P, sizeof *c->srv);
    c->members = pst_calloc((size_t)num_workers, sizeof *c->members);
    for (int w = 0; w < num_workers; w++)
        c->members[w] = w;
    c->nmembers = num_workers;
    pb_msg h = {.kind = PB_HELLO,
                .hello = {.worker_id = (uint32_t)worker_id,
                          .num_workers = (uint32_t)num_workers,
                          .model = m->def->name,
                          .param_count = m->layout.total,
                          .layout_checksum = eng_layout_checksum(&m->layout),
                          .nparts = (size_t)m->nparts}};
    for (int p = 0; p < c->nparts; p++) {
        eng_model_part(m, p, &c->parts[p].model);
        const eng_layout *lay = &c->parts[p].model.layout;
        h.hello.parts[p] = (pb_part_desc){m->parts[p].name, lay->total, eng_layout_checksum(lay)};
        for (int s = 0; s < P; s++)
            eng_shard_range(lay->total, P, s, &c->srv[s].parts[p].lo, &c->srv[s].parts[p].n);
    }
    if (!(c->ctx = zmq_ctx_new())) {
        pst_err(err, errlen, PST_ESOCKET, "worker %d: zmq: %s", worker_id, zmq_strerror(errno));
        goto fail;
    }
    for (int s = 0; s < P; s++) {
        server_conn *sc = &c->srv[s];
        sc->endpoint = endpoints[s];
        sc->sock = zmq_socket(c->ctx, ZMQ_DEALER);
        int zero = 0;
        if (sc->sock)
            zmq_setsockopt(sc->sock, ZMQ_LINGER, &zero, sizeof zero);
        if (sc->sock && keys && pb_secure_client(sc->sock, keys, err, errlen) != PST_OK)
            goto fail;
        if (!sc->sock || zmq_connect(sc->sock, sc->endpoint) != 0) {
            pst_err(err, errlen, PST_ESOCKET, "server %d at %s: cannot connect: %s", s,
                    sc->endpoint, zmq_strerror(errno));
            goto fail;
        }
    }
    /* Hello to all, then collect the answers: the servers check in parallel. */
    for (int s = 0; s < P; s++)
        if (pb_send(c->srv[s].sock, NULL, &h, NULL, 0, err, errlen) != PST_OK)
            goto fail;
    /* A path that does not work shows as silence (ZeroMQ retries the connection quietly): say
     * which one, within seconds, and what to check, rather than wait the whole timeout. */
    c->timeout_ms = c->timeout_ms < WK_HELLO_MS ? c->timeout_ms : WK_HELLO_MS;
    for (int s = 0; s < P; s++)
        if (take_hello(c, s, err, errlen) != PST_OK)
            goto fail;
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
    for (int s = 0; s < c->P; s++) {
        server_conn *sc = &c->srv[s];
        if (sc->sock)
            zmq_close(sc->sock);
        for (int p = 0; p < c->nparts; p++)
            eng_chunks_free(&sc->parts[p].chunks);
        for (int i = 0; i < sc->nstash; i++)
            pb_msg_clear(&sc->stash[i]);
        pst_free(sc->stash);
    }
    if (c->ctx) /* waits for ZeroMQ to hand back the pushes it sends from the callers' grads */
        zmq_ctx_term(c->ctx);
    pst_free(c->srv);
    pst_free(c->row_vals);
    pst_free(c->row_ids);
    pst_free(c->stats);
    pst_free(c->per_worker);
    pst_free(c->members);
    pst_free(c);
    *pc = NULL;
}

void wk_client_watch(wk_client *c, const wk_heartbeat *hb) { c->hb = hb; }

void wk_client_want_stop(wk_client *c) { c->want_stop = 1; }

int wk_client_pull_settled(wk_client *c, int part, const uint64_t *pushes, char *err,
                           size_t errlen) {
    c->parts[part].settle = pushes;
    const int rc = wk_client_pull_send(c, part, 0, err, errlen);
    c->parts[part].settle = NULL;
    return rc;
}

int wk_client_reduce(wk_client *c, int op, double *v, int n, char *err, size_t errlen) {
    const pb_msg r = {.kind = PB_REDUCE,
                      .reduce = {.worker_id = (uint32_t)c->worker_id,
                                 .op = (uint32_t)op,
                                 .round = ++c->round,
                                 .nvalues = (size_t)n,
                                 .values = v}};
    int rc = pb_send(c->srv[0].sock, NULL, &r, NULL, 0, err, errlen);
    if (rc != PST_OK)
        return rc;
    pb_msg m;
    rc = recv_from(c, 0, &m, PB_REDUCE_REPLY, 0, 1, err, errlen);
    if (rc == PST_OK) {
        const pb_reduce_reply *a = &m.reduce_reply;
        if (a->round != c->round || a->nvalues != (size_t)n || a->nworkers > (size_t)c->W)
            rc = pst_err(err, errlen, PST_EPEER,
                         "server 0 at %s: reduce reply for round %" PRIu64 " with %zu values, "
                         "expected round %" PRIu64 " with %d",
                         c->srv[0].endpoint, a->round, a->nvalues, c->round, n);
        else {
            memcpy(v, a->values, sizeof(double) * (size_t)n);
            c->nmembers = 0;
            for (size_t i = 0; i < a->nworkers; i++)
                if (a->workers[i] < (uint32_t)c->W)
                    c->members[c->nmembers++] = (int)a->workers[i];
        }
    }
    pb_msg_clear(&m);
    return rc;
}

int wk_client_members(const wk_client *c, const int **ids) {
    *ids = c->members;
    return c->nmembers;
}

void wk_client_fail(wk_client *c, const char *reason) {
    if (!c)
        return;
    const pb_msg d = {.kind = PB_SHUTDOWN, .shutdown = {(uint32_t)c->worker_id, 1, reason}};
    const int linger = 500; /* ms that closing may wait for it to go out */
    for (int s = 0; s < c->P; s++) {
        char err[64];
        zmq_setsockopt(c->srv[s].sock, ZMQ_LINGER, &linger, sizeof linger);
        pb_send(c->srv[s].sock, NULL, &d, NULL, 0, err, sizeof err);
    }
}

/* ZeroMQ's I/O thread is done with a push's payload (hint: its part's lent count). */
static void returned(void *data, void *hint) {
    (void)data;
    atomic_fetch_sub_explicit((atomic_int *)hint, 1, memory_order_release);
}

/* The touched rows of sp that meet [lo, hi), their parts inside it gathered from grads into
 * c's buffers; returns how many (0: none, or the range is not all inside the tensor), and the
 * floats gathered in *nvals. */
static size_t gather_rows(wk_client *c, const wk_sparse_rows *sp, const float *grads, size_t lo,
                          size_t hi, size_t *nvals) {
    *nvals = 0;
    if (!sp || lo < sp->from || hi > sp->from + sp->nrows * sp->row_len)
        return 0;
    if (c->row_cap < hi - lo) {
        c->row_vals = pst_realloc(c->row_vals, sizeof(float) * (hi - lo));
        c->row_ids = pst_realloc(c->row_ids, sizeof(uint32_t) * (hi - lo));
        c->row_cap = hi - lo;
    }
    size_t n = 0;
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

/* Sends server s chunks [k, end) of part's step in one push, and when pulling, one pull of
 * them. */
static int send_run(wk_client *c, server_conn *sc, int part, int k, int end, char *err,
                    size_t errlen) {
    part_step *ps = &c->parts[part];
    const conn_part *cp = &sc->parts[part];
    const size_t lo = cp->chunks.start[k], n = cp->chunks.start[end] - lo;
    if (ps->grads) {
        pb_msg m = {.kind = PB_PUSH,
                    .push = {.worker_id = (uint32_t)c->worker_id,
                             .part = (uint32_t)part,
                             .step = ps->step,
                             .base_version = ps->base_version,
                             .slice = {lo, n},
                             .stop = c->want_stop}};
        size_t nvals;
        const size_t nrows = gather_rows(c, ps->sparse, ps->grads, lo, lo + n, &nvals);
        int rc;
        if (nrows > 0 && nvals < n) { /* only the touched rows: the rest is 0 */
            m.push.rows_from = ps->sparse->from;
            m.push.row_len = (uint32_t)ps->sparse->row_len;
            m.push.nrows = nrows;
            m.push.rows = c->row_ids;
            rc = pb_send(sc->sock, NULL, &m, c->row_vals, nvals, err, errlen);
            c->bytes_pushed += sizeof(float) * nvals;
        } else {
            atomic_fetch_add_explicit(&ps->lent, 1, memory_order_relaxed);
            rc =
                pb_send_borrowed(sc->sock, &m, ps->grads + lo, n, returned, &ps->lent, err, errlen);
            c->bytes_pushed += sizeof(float) * n;
        }
        if (rc != PST_OK)
            return rc;
    }
    if (!ps->pull)
        return PST_OK;
    const pb_msg m = {.kind = PB_PULL,
                      .pull = {.worker_id = (uint32_t)c->worker_id,
                               .part = (uint32_t)part,
                               .min_version = ps->min_version,
                               .slice = {lo, n},
                               .npushes = ps->settle ? (size_t)c->W : 0,
                               .pushes = ps->settle}};
    return pb_send(sc->sock, NULL, &m, NULL, 0, err, errlen);
}

int wk_client_step_begin(wk_client *c, int part, const float *grads, uint64_t step,
                         uint64_t base_version, int pull, uint64_t min_version, char *err,
                         size_t errlen) {
    part_step *ps = &c->parts[part];
    /* The caller is about to overwrite the gradients the part's last pushes were sent from. */
    const double deadline = pst_now() + c->timeout_ms / 1000.0;
    for (int spin = 0; atomic_load_explicit(&ps->lent, memory_order_acquire) > 0; spin++) {
        if (spin < 1000)
            continue;
        if (pst_now() > deadline)
            return pst_err(err, errlen, PST_ESOCKET, "worker %d: pushes not sent in %g s",
                           c->worker_id, c->timeout_ms / 1000.0);
        sched_yield();
    }
    ps->grads = grads;
    ps->sparse = NULL;
    ps->step = step;
    ps->base_version = base_version;
    ps->pull = pull;
    ps->min_version = min_version;
    for (int s = 0; s < c->P; s++) {
        conn_part *cp = &c->srv[s].parts[part];
        cp->unsent = cp->C;
        if (pull)
            cp->round = UINT64_MAX;
    }
    return PST_OK;
}

/* True when off is where sp's tensor begins or ends: a message must not mix its rows with
 * other floats, or it could not go sparse. */
static int sparse_edge(const wk_sparse_rows *sp, size_t off) {
    return sp && (off == sp->from || off == sp->from + sp->nrows * sp->row_len);
}

/* Sends server s's unsent chunks of part that start at or after lo (their gradients are
 * final), joined into messages of at most the server's chunk limit, each push followed by
 * its pull: a server updates and answers them while the layers below are still computed. */
static int send_from(wk_client *c, server_conn *sc, int part, size_t lo, char *err, size_t errlen) {
    conn_part *cp = &sc->parts[part];
    const size_t *start = cp->chunks.start;
    while (cp->unsent > 0 && start[cp->unsent - 1] >= lo) {
        const int end = cp->unsent;
        int k = end - 1;
        while (k > 0 && start[k - 1] >= lo && (!sc->max || start[end] - start[k - 1] <= sc->max) &&
               !sparse_edge(c->parts[part].sparse, start[k]))
            k--;
        const int rc = send_run(c, sc, part, k, end, err, errlen);
        if (rc != PST_OK)
            return rc;
        cp->unsent = k;
        cp->waiting += c->parts[part].pull;
    }
    return PST_OK;
}

int wk_client_step_ready(wk_client *c, int part, size_t lo, char *err, size_t errlen) {
    for (int s = 0; s < c->P; s++) {
        const conn_part *cp = &c->srv[s].parts[part];
        const int rc =
            cp->lo + cp->n > lo ? send_from(c, &c->srv[s], part, lo, err, errlen) : PST_OK;
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

int wk_client_step_end(wk_client *c, int part, char *err, size_t errlen) {
    return wk_client_step_ready(c, part, 0, err, errlen);
}

int wk_client_push(wk_client *c, int part, const float *grads, uint64_t step, uint64_t base_version,
                   char *err, size_t errlen) {
    const int rc = wk_client_step_begin(c, part, grads, step, base_version, 0, 0, err, errlen);
    return rc == PST_OK ? wk_client_step_end(c, part, err, errlen) : rc;
}

int wk_client_push_pull(wk_client *c, int part, const float *grads, uint64_t step,
                        uint64_t base_version, uint64_t min_version, char *err, size_t errlen) {
    const int rc =
        wk_client_step_begin(c, part, grads, step, base_version, 1, min_version, err, errlen);
    return rc == PST_OK ? wk_client_step_end(c, part, err, errlen) : rc;
}

int wk_client_pull_send(wk_client *c, int part, uint64_t min_version, char *err, size_t errlen) {
    const int rc = wk_client_step_begin(c, part, NULL, 0, 0, 1, min_version, err, errlen);
    return rc == PST_OK ? wk_client_step_end(c, part, err, errlen) : rc;
}

/* Copies one of server s's pull answers of part (a run of whole chunks) into params. wait 0:
 * PST_EAGAIN when none has arrived. */
static int take_reply(wk_client *c, int s, int part, float *params, int wait, char *err,
                      size_t errlen) {
    server_conn *sc = &c->srv[s];
    conn_part *cp = &sc->parts[part];
    pb_msg r;
    int rc = recv_from(c, s, &r, PB_PULL_REPLY, part, wait, err, errlen);
    if (rc == PST_OK) {
        const pb_slice *sl = &r.pull_reply.slice;
        /* an answer to one of our pulls: a run of whole chunks of this server's */
        const int k0 = sl->offset <= SIZE_MAX ? eng_chunks_find(&cp->chunks, sl->offset) : -1;
        const int k1 = k0 < 0 || sl->count == 0 || sl->count > cp->n
                           ? -1
                           : eng_chunks_find(&cp->chunks, sl->offset + sl->count - 1);
        const size_t n = (size_t)sl->count;
        if (k0 < 0 || k1 < 0 || sl->offset != cp->chunks.start[k0] ||
            sl->offset + n != cp->chunks.start[k1 + 1])
            rc = pst_err(err, errlen, PST_EPEER,
                         "server %d at %s: pull reply for another slice of part %d", s,
                         sc->endpoint, part);
        else
            memcpy(params + sl->offset, r.payload, sizeof(float) * n);
        c->stopping |= r.pull_reply.stopping;
        if (r.pull_reply.version < cp->round)
            cp->round = r.pull_reply.version;
        if (--cp->waiting == 0)
            cp->version = cp->round;
    }
    pb_msg_clear(&r);
    return rc;
}

int wk_client_pull_recv(wk_client *c, int part, float *params, uint64_t *version, int block,
                        char *err, size_t errlen) {
    int outstanding = 0;
    for (int s = 0; s < c->P; s++) {
        while (c->srv[s].parts[part].waiting > 0) {
            const int rc = take_reply(c, s, part, params, block, err, errlen);
            if (rc == PST_EAGAIN) {
                outstanding++;
                break;
            }
            if (rc != PST_OK)
                return rc;
        }
    }
    uint64_t v = UINT64_MAX;
    for (int s = 0; s < c->P; s++)
        if (c->srv[s].parts[part].version < v)
            v = c->srv[s].parts[part].version;
    if (version)
        *version = v;
    return outstanding ? 0 : 1;
}

int wk_client_pull_wait(wk_client *c, int part, float *params, uint64_t *version, char *err,
                        size_t errlen) {
    const int rc = wk_client_pull_recv(c, part, params, version, 1, err, errlen);
    return rc < 0 ? rc : PST_OK;
}

int wk_client_pull_pending(const wk_client *c, int part) {
    for (int s = 0; s < c->P; s++)
        if (c->srv[s].parts[part].waiting)
            return 1;
    return 0;
}

int wk_client_stopping(const wk_client *c) { return c->stopping; }
void wk_client_step_sparse(wk_client *c, int part, const wk_sparse_rows *sp) {
    c->parts[part].sparse = sp;
}
uint64_t wk_client_bytes_pushed(const wk_client *c) { return c->bytes_pushed; }

/* Takes server s's snapshot of part into weights and *out. */
static int take_snapshot(wk_client *c, int s, int part, float *weights, eng_ckpt_part *out,
                         char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    const conn_part *cp = &sc->parts[part];
    pb_msg r;
    int rc = recv_from(c, s, &r, PB_SNAPSHOT_REPLY, part, 1, err, errlen);
    const pb_snapshot_reply *sr = rc == PST_OK ? &r.snapshot_reply : NULL;
    if (sr &&
        (sr->part != (uint32_t)part || sr->shard.offset != cp->lo || sr->shard.count != cp->n))
        rc = pst_err(err, errlen, PST_EPEER, "server %d at %s: snapshot of another shard", s,
                     sc->endpoint);
    else if (sr && (int)sr->nslots != out->nslots)
        rc = pst_err(err, errlen, PST_EPEER,
                     "server %d at %s: snapshot with %u optimizer arrays, expected %d", s,
                     sc->endpoint, sr->nslots, out->nslots);
    uint64_t covered = 0;
    for (size_t i = 0; rc == PST_OK && i < sr->nruns; i++) {
        const pb_run *run = &sr->runs[i];
        if (run->offset != cp->lo + covered || run->count > cp->n - covered)
            break;
        covered += run->count;
    }
    if (rc == PST_OK && covered != cp->n)
        rc = pst_err(err, errlen, PST_EPEER, "server %d at %s: snapshot runs do not tile its shard",
                     s, sc->endpoint);
    if (rc == PST_OK) {
        out->runs =
            pst_realloc(out->runs, sizeof *out->runs * ((size_t)out->nruns + sr->nruns + 1));
        for (size_t i = 0; i < sr->nruns; i++)
            out->runs[out->nruns++] = (eng_ckpt_iters){sr->runs[i].offset, sr->runs[i].count,
                                                       (int64_t)sr->runs[i].iterations};
        const float *p = r.payload;
        memcpy(weights + cp->lo, p, sizeof(float) * cp->n);
        for (int i = 0; i < out->nslots; i++)
            memcpy(out->slots[i] + cp->lo, p + (size_t)(i + 1) * cp->n, sizeof(float) * cp->n);
        c->stopping |= sr->stopping;
    }
    pb_msg_clear(&r);
    return rc;
}

int wk_client_snapshot(wk_client *c, int part, uint64_t min_version, float *weights,
                       eng_ckpt_part *out, char *err, size_t errlen) {
    PST_ASSERT(!wk_client_pull_pending(c, part), "snapshot of part %d with a pull outstanding",
               part);
    const pb_msg q = {.kind = PB_SNAPSHOT,
                      .snapshot = {.worker_id = (uint32_t)c->worker_id,
                                   .part = (uint32_t)part,
                                   .min_version = min_version}};
    for (int s = 0; s < c->P; s++) {
        const int rc = pb_send(c->srv[s].sock, NULL, &q, NULL, 0, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    out->nruns = 0;
    for (int s = 0; s < c->P; s++) {
        const int rc = take_snapshot(c, s, part, weights, out, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

/* Receives the ServerStats of every server into c->stats. */
static int take_stats(wk_client *c, char *err, size_t errlen) {
    if (!c->stats) {
        c->stats = pst_calloc((size_t)c->P, sizeof *c->stats);
        c->per_worker = pst_calloc((size_t)c->P * (size_t)c->W, sizeof *c->per_worker);
    }
    for (int s = 0; s < c->P; s++) {
        pb_msg r;
        int rc = recv_from(c, s, &r, PB_STATS, 0, 1, err, errlen);
        if (rc == PST_OK) {
            const pb_stats *st = &r.stats;
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
            for (size_t w = 0; w < st->nworkers && w < (size_t)c->W; w++)
                c->per_worker[(size_t)s * c->W + w] = st->pushes_per_worker[w];
        }
        pb_msg_clear(&r);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

const wk_server_stats *wk_client_stats(wk_client *c, char *err, size_t errlen) {
    const pb_msg q = {.kind = PB_STATS_REQUEST, .stats_request = {(uint32_t)c->worker_id}};
    for (int s = 0; s < c->P; s++)
        if (pb_send(c->srv[s].sock, NULL, &q, NULL, 0, err, errlen) != PST_OK)
            return NULL;
    return take_stats(c, err, errlen) == PST_OK ? c->stats : NULL;
}

const wk_server_stats *wk_client_last_stats(const wk_client *c) { return c->stats; }
int wk_client_servers(const wk_client *c) { return c->P; }

int wk_client_shutdown(wk_client *c, FILE *out, char *err, size_t errlen) {
    const pb_msg d = {.kind = PB_SHUTDOWN, .shutdown = {.worker_id = (uint32_t)c->worker_id}};
    for (int s = 0; s < c->P; s++) {
        const int rc = pb_send(c->srv[s].sock, NULL, &d, NULL, 0, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    const int rc = take_stats(c, err, errlen);
    if (rc != PST_OK)
        return rc;
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
    return PST_OK;
}
