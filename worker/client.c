/* client.c: the worker's side of the protocol: one connection per server rank, every part
 * of the model through it; the hello and the control plane (reduce, stats, stop, fail,
 * shutdown). A step's pushes, pulls and snapshots are in client_step.c. */
#include "worker/client.h"

#include "engine/base/base.h"
#include "engine/shard.h"
#include "proto/secure.h"
#include "proto/wire.h"
#include "worker/client_impl.h"
#include "worker/heartbeat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

/* How long the first hello may take: every server is listening before workers learn its
 * endpoint, so silence means a path that does not work. */
#define WK_HELLO_MS 10000

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

/* See client_impl.h. */
int wk_client_recv(wk_client *c, int s, pb_msg *m, pb_kind want, int part, int wait, char *err,
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
        int ready, gone = -1;
        char lost[384];
        /* In slices of 0.1 s, so that a server the heartbeats say is lost ends the wait soon
         * (a reset is known within about a second: heartbeat.h); a signal
         * (the SIGTERM that asks for a last checkpoint) interrupts a slice: go on waiting
         * for the rest of the timeout. */
        do {
            const double left = wait ? deadline - pst_now() : 0.0;
            ready = left > 0 || !wait
                        ? zmq_poll(&item, 1, (long)(left < 0.1 ? left * 1000.0 : 100.0))
                        : 0;
            if (ready == 0 && !wait)
                return PST_EAGAIN;
            if (ready == 0 && (gone = wk_heartbeat_lost_one(c->hb, lost, sizeof lost)) >= 0) {
                /* --replicas: its shard's copy takes over, and the wait goes on there */
                if (!c->backups || c->srv[gone].moved)
                    return pst_err(err, errlen, PST_EPEER, "%s", lost);
                const int rc = wk_client_fail_over(c, gone, lost, err, errlen);
                if (rc != PST_OK)
                    return rc;
                item.socket = sc->sock;
                if (want == PB_PULL_REPLY && unstash(sc, part, m))
                    return PST_OK;
            }
        } while ((ready < 0 && errno == EINTR) || (ready == 0 && pst_now() < deadline));
        if (ready < 0)
            return pst_err(err, errlen, PST_ESOCKET, "server %d at %s: %s", s, sc->endpoint,
                           zmq_strerror(errno));
        if (ready == 0) {
            c->timed_out = 1;
            return pst_err(err, errlen, PST_EPEER, "server %d at %s: no answer in %g s", s,
                           sc->endpoint, c->timeout_ms / 1000.0);
        }
        char why[256];
        const int rc = pb_recv(sc->sock, NULL, m, 0, why, sizeof why);
        if (rc == PST_ESOCKET)
            return pst_err(err, errlen, PST_ESOCKET, "server %d at %s: %s", s, sc->endpoint, why);
        if (rc != PST_OK)
            return pst_err(err, errlen, PST_EPEER, "server %d at %s: %s", s, sc->endpoint, why);
        if (m->kind == PB_ERROR)
            return pst_err(err, errlen, PST_EPEER, "server %d at %s refused: %s", s, sc->endpoint,
                           m->error.message);
        if (m->kind == PB_STATS)
            sc->ask_stats = 0;
        if (m->kind == PB_SNAPSHOT_REPLY && m->snapshot_reply.part < ENG_MAX_PARTS)
            sc->ask_snapshot[m->snapshot_reply.part] = 0;
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

/* See client_impl.h. */
int wk_client_take_hello(wk_client *c, int s, char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    pb_msg r;
    c->timed_out = 0;
    int rc = wk_client_recv(c, s, &r, PB_HELLO_REPLY, 0, 1, err, errlen);
    if (rc == PST_EPEER && c->timed_out) { /* not a refusal nor a lost heartbeat: silence */
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
        eng_chunks_free(&cp->chunks); /* a shard's copy plans them again, the same */
        eng_chunks_plan(&cp->chunks, cp->lo, cp->n, cuts, ncuts, sc->max);
        cp->C = cp->chunks.n;
    }
    pb_msg_clear(&r);
    return rc;
}

/* The hello of worker_id of num_workers for model m (join: PB_JOIN_*), into *h; each part's
 * own model into parts (NULL: not wanted). */
static void hello_of(const eng_model *m, uint32_t worker_id, int num_workers, uint32_t join,
                     pb_msg *h, eng_model *parts) {
    *h = (pb_msg){.kind = PB_HELLO,
                  .hello = {.worker_id = worker_id,
                            .num_workers = (uint32_t)num_workers,
                            .model = m->def->name,
                            .param_count = m->layout.total,
                            .layout_checksum = eng_layout_checksum(&m->layout),
                            .nparts = (size_t)m->nparts,
                            .join = join}};
    for (int p = 0; p < m->nparts; p++) {
        eng_model part;
        eng_model_part(m, p, parts ? &parts[p] : &part);
        const eng_layout *lay = parts ? &parts[p].layout : &part.layout;
        h->hello.parts[p] = (pb_part_desc){m->parts[p].name, lay->total, eng_layout_checksum(lay)};
    }
}

/* wk_client_new, or with join a worker that asks for its place in a running job. */
static wk_client *client_new(const char *const *endpoints, int P, int worker_id, int num_workers,
                             const eng_model *m, double timeout_s, const struct pb_keys *keys,
                             uint32_t join, char *err, size_t errlen) {
    PST_ASSERT(m->nparts >= 1 && m->nparts <= ENG_MAX_PARTS && m->nparts <= PB_MAX_PARTS,
               "%s: %d parts", m->def->name, m->nparts);
    wk_client *c = pst_calloc(1, sizeof *c);
    c->P = P;
    c->worker_id = worker_id;
    c->W = num_workers;
    c->nparts = m->nparts;
    c->timeout_ms = (int)(timeout_s * 1000.0);
    c->srv = pst_calloc((size_t)P, sizeof *c->srv);
    c->members = pst_calloc((size_t)num_workers, sizeof *c->members);
    for (int w = 0; w < num_workers; w++)
        c->members[w] = w;
    c->nmembers = join ? 0 : num_workers; /* a joining worker learns them when admitted */
    c->keys = keys;
    eng_model parts[ENG_MAX_PARTS];
    pb_msg h;
    hello_of(m, (uint32_t)worker_id, num_workers, join, &h, parts);
    for (int p = 0; p < c->nparts; p++) {
        c->parts[p].model = parts[p];
        const eng_layout *lay = &c->parts[p].model.layout;
        for (int s = 0; s < P; s++)
            eng_shard_range(lay->total, P, s, &c->srv[s].parts[p].lo, &c->srv[s].parts[p].n);
    }
    c->hello = h.hello;
    if (!(c->ctx = zmq_ctx_new())) {
        pst_err(err, errlen, PST_ESOCKET, "worker %d: zmq: %s", worker_id, zmq_strerror(errno));
        goto fail;
    }
    for (int s = 0; s < P; s++) {
        server_conn *sc = &c->srv[s];
        sc->endpoint = endpoints[s];
        if (!(sc->sock = pb_dealer_new(c->ctx, sc->endpoint, -1, keys, err, errlen)))
            goto fail;
    }
    /* Hello to all, then collect the answers: the servers check in parallel. */
    for (int s = 0; s < P; s++)
        if (pb_send(c->srv[s].sock, NULL, &h, NULL, 0, err, errlen) != PST_OK)
            goto fail;
    /* A path that does not work shows as silence (ZeroMQ retries the connection quietly): say
     * which one, within seconds, and what to check, rather than wait the whole timeout. */
    c->timeout_ms = c->timeout_ms < WK_HELLO_MS ? c->timeout_ms : WK_HELLO_MS;
    for (int s = 0; s < P; s++)
        if (wk_client_take_hello(c, s, err, errlen) != PST_OK)
            goto fail;
    c->timeout_ms = (int)(timeout_s * 1000.0);
    return c;
fail:
    wk_client_free(&c);
    return NULL;
}

wk_client *wk_client_new(const char *const *endpoints, int P, int worker_id, int num_workers,
                         const eng_model *m, double timeout_s, const struct pb_keys *keys,
                         char *err, size_t errlen) {
    return client_new(endpoints, P, worker_id, num_workers, m, timeout_s, keys, PB_JOIN_NONE, err,
                      errlen);
}

wk_client *wk_client_join(const char *const *endpoints, int P, int worker_id, int num_workers,
                          const eng_model *m, double timeout_s, const struct pb_keys *keys,
                          char *err, size_t errlen) {
    return client_new(endpoints, P, worker_id, num_workers, m, timeout_s, keys, PB_JOIN_ASK, err,
                      errlen);
}

void wk_client_set_world(wk_client *c, int world) { c->nmembers = world < c->W ? world : c->W; }

int wk_client_admitted(wk_client *c, char *err, size_t errlen) {
    pb_msg h = {.kind = PB_HELLO, .hello = c->hello};
    h.hello.join = PB_JOIN_ADMITTED;
    for (int s = 0; s < c->P; s++) {
        const int rc = pb_send(c->srv[s].sock, NULL, &h, NULL, 0, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    for (int s = 0; s < c->P; s++) {
        const int rc = wk_client_take_hello(c, s, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    c->hello.join = PB_JOIN_NONE; /* a copy that takes a shard over knows it as any worker */
    return PST_OK;
}

int wk_client_ask_place(const char *endpoint, const eng_model *m, int num_workers, double timeout_s,
                        const struct pb_keys *keys, int *worker_id, char *err, size_t errlen) {
    void *ctx = zmq_ctx_new(),
         *sock = ctx ? pb_dealer_new(ctx, endpoint, -1, keys, err, errlen) : NULL;
    int rc = sock ? PST_OK : PST_ESOCKET;
    if (!ctx)
        pst_err(err, errlen, PST_ESOCKET, "zmq: %s", zmq_strerror(errno));
    pb_msg h;
    hello_of(m, PB_ANY_WORKER, num_workers, PB_JOIN_ASK, &h, NULL);
    if (rc == PST_OK)
        rc = pb_send(sock, NULL, &h, NULL, 0, err, errlen);
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (rc == PST_OK && zmq_poll(&item, 1, (long)(timeout_s * 1000.0)) <= 0)
        rc = pst_err(err, errlen, PST_EPEER, "server 0 at %s: no answer in %g s", endpoint,
                     timeout_s);
    pb_msg r = {0};
    char why[256];
    if (rc == PST_OK && (rc = pb_recv(sock, NULL, &r, 0, why, sizeof why)) != PST_OK)
        rc = pst_err(err, errlen, PST_EPEER, "server 0 at %s: %s", endpoint, why);
    else if (rc == PST_OK && r.kind == PB_ERROR)
        rc = pst_err(err, errlen, PST_EPEER, "server 0 at %s refused: %s", endpoint,
                     r.error.message);
    else if (rc == PST_OK &&
             (r.kind != PB_HELLO_REPLY || r.hello_reply.worker_id >= (uint32_t)num_workers))
        rc = pst_err(err, errlen, PST_EPEER, "server 0 at %s: no place in its answer", endpoint);
    if (rc == PST_OK)
        *worker_id = (int)r.hello_reply.worker_id;
    pb_msg_clear(&r);
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

void wk_client_set_coding(wk_client *c, int wire, double topk) {
    PST_ASSERT(wire >= 0 && wire < PB_WIRE_END && topk >= 0.0 && topk <= 1.0, "wire %d, topk %g",
               wire, topk);
    c->wire = (pb_wire)wire;
    c->topk = topk;
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
    for (int p = 0; p < c->nparts; p++) {
        free(c->parts[p].resid); /* pst_calloc's */
        pst_free(c->parts[p].sent);
        pst_free(c->parts[p].settle_kept);
    }
    free(c->coded); /* pst_realloc's */
    pst_free(c->row_vals);
    pst_free(c->row_ids);
    pst_free(c->stats);
    pst_free(c->per_worker);
    pst_free(c->members);
    pst_free(c);
    *pc = NULL;
}

void wk_client_watch(wk_client *c, wk_heartbeat *hb) { c->hb = hb; }

void wk_client_set_backups(wk_client *c, const char *const *backups) { c->backups = backups; }

void wk_client_want_stop(wk_client *c) { c->want_stop = 1; }

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
    c->reduce_out = 1; /* for a copy of server 0 that takes over */
    c->reduce_op = (uint32_t)op;
    c->reduce_vals = v;
    c->reduce_n = (size_t)n;
    pb_msg m;
    rc = wk_client_recv(c, 0, &m, PB_REDUCE_REPLY, 0, 1, err, errlen);
    c->reduce_out = 0;
    if (rc == PST_OK && op == WK_REDUCE_ADMIT && c->nmembers == 0)
        c->round = m.reduce_reply.round; /* a joining worker's first round: the job's */
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
    const pb_msg d = {
        .kind = PB_SHUTDOWN,
        .shutdown = {.worker_id = (uint32_t)c->worker_id, .failed = 1, .reason = reason}};
    const int linger = 500; /* ms that closing may wait for it to go out */
    for (int s = 0; s < c->P; s++) {
        char err[64], why[8];
        if (wk_heartbeat_server_lost(c->hb, s, why, sizeof why))
            continue; /* nobody to tell: closing would wait the linger out */
        zmq_setsockopt(c->srv[s].sock, ZMQ_LINGER, &linger, sizeof linger);
        pb_send(c->srv[s].sock, NULL, &d, NULL, 0, err, sizeof err);
    }
}
int wk_client_stopping(const wk_client *c) { return c->stopping; }

/* Receives the ServerStats of every server into c->stats. */
static int take_stats(wk_client *c, char *err, size_t errlen) {
    if (!c->stats) {
        c->stats = pst_calloc((size_t)c->P, sizeof *c->stats);
        c->per_worker = pst_calloc((size_t)c->P * (size_t)c->W, sizeof *c->per_worker);
    }
    for (int s = 0; s < c->P; s++) {
        pb_msg r;
        int rc = wk_client_recv(c, s, &r, PB_STATS, 0, 1, err, errlen);
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
                                   .workers = c->W,
                                   .copies = (int)st->copies};
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
    for (int s = 0; s < c->P; s++) {
        if (pb_send(c->srv[s].sock, NULL, &q, NULL, 0, err, errlen) != PST_OK)
            return NULL;
        c->srv[s].ask_stats = 1;
    }
    return take_stats(c, err, errlen) == PST_OK ? c->stats : NULL;
}

const wk_server_stats *wk_client_last_stats(const wk_client *c) { return c->stats; }
int wk_client_servers(const wk_client *c) { return c->P; }

int wk_client_shutdown(wk_client *c, FILE *out, char *err, size_t errlen) {
    const pb_msg d = {.kind = PB_SHUTDOWN, .shutdown = {.worker_id = (uint32_t)c->worker_id}};
    c->shutting_down = 1;
    for (int s = 0; s < c->P; s++) {
        const int rc = pb_send(c->srv[s].sock, NULL, &d, NULL, 0, err, errlen);
        if (rc != PST_OK)
            return rc;
        c->srv[s].ask_stats = 1;
    }
    const int rc = take_stats(c, err, errlen);
    if (rc != PST_OK)
        return rc;
    wk_heartbeat_leave(c->hb); /* every server has answered: they may end now */
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
