/* dispatch.c: one received message to its handler, refusals, and the counters. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ps_refuse(ps_server *s, const pb_peer *from, uint32_t code, const char *msg) {
    s->st.errors++;
    if (s->cfg.log)
        fprintf(s->cfg.log, "server %d: refused a message: %s\n", s->cfg.server_id, msg);
    return from->len ? pb_send_error(s->sock, from, code, msg) : PST_OK;
}

int ps_peer_of(ps_server *s, const pb_peer *from, uint32_t worker_id, const char *what, char *why,
               size_t whylen) {
    if (worker_id >= (uint32_t)s->W) {
        snprintf(why, whylen, "%s.worker_id: expected 0..%d, got %u", what, s->W - 1, worker_id);
        return PST_EPEER;
    }
    peer *p = &s->peers[worker_id];
    if (p->vacant || p->waiting) {
        snprintf(why, whylen,
                 "%s: worker %u is a place for a worker that joins, and none is admitted there",
                 what, worker_id);
        return PST_EPEER;
    }
    if (p->lost) {
        snprintf(why, whylen,
                 "%s: worker %u was lost (its connection closed, or silent for over %g s, "
                 "--peer-timeout) and the job went on without it",
                 what, worker_id, s->cfg.peer_timeout);
        return PST_EPEER;
    }
    if (!p->said_hello || p->from.len != from->len ||
        memcmp(p->from.id, from->id, from->len) != 0) {
        snprintf(why, whylen, "%s: worker %u has not said hello on this connection", what,
                 worker_id);
        return PST_EPEER;
    }
    return PST_OK;
}

ps_part *ps_request_part(ps_server *s, const pb_peer *from, uint32_t worker_id, uint32_t part,
                         const char *what, int *rc) {
    char why[256];
    if (ps_peer_of(s, from, worker_id, what, why, sizeof why) != PST_OK) {
        *rc = ps_refuse(s, from, PB_ERR_STATE, why);
        return NULL;
    }
    if (part >= (uint32_t)s->nparts) {
        snprintf(why, sizeof why, "%s.part: expected 0..%d, got %u", what, s->nparts - 1, part);
        *rc = ps_refuse(s, from, PB_ERR_RANGE, why);
        return NULL;
    }
    *rc = PST_OK;
    return &s->parts[part];
}

/* The counters so far, to the peer that sent m. */
int ps_send_stats(ps_server *s, const pb_peer *to, char *err, size_t errlen) {
    uint64_t *per = pst_calloc((size_t)s->W, sizeof *per);
    for (int w = 0; w < s->W; w++)
        per[w] = ps_server_pushes_from(s, w);
    const ps_stats *st = &s->st;
    const pb_msg r = {
        .kind = PB_STATS,
        .stats = {.server_id = (uint32_t)s->cfg.server_id,
                  .updates = st->updates,
                  .pushes = st->pushes,
                  .pulls = st->pulls,
                  .bytes_in = st->bytes_in,
                  .bytes_out = st->bytes_out,
                  .errors = st->errors,
                  .max_staleness = st->staleness_max,
                  .mean_staleness =
                      st->staleness_n ? (double)st->staleness_sum / (double)st->staleness_n : 0.0,
                  .nworkers = (size_t)s->W,
                  .pushes_per_worker = per,
                  .barrier_wait_s = st->barrier_wait_s,
                  .strangers = st->strangers,
                  .lost_workers = (uint32_t)s->nlost,
                  .copies = s->rsock != NULL}};
    const int rc = pb_send(s->sock, to, &r, NULL, 0, err, errlen);
    pst_free(per);
    return rc;
}

static int on_stats_request(ps_server *s, const pb_peer *from, pb_msg *m, char *err,
                            size_t errlen) {
    char why[256];
    if (ps_peer_of(s, from, m->stats_request.worker_id, "stats_request", why, sizeof why) != PST_OK)
        return ps_refuse(s, from, PB_ERR_STATE, why);
    return ps_send_stats(s, from, err, errlen);
}

/* The worker a request names, where it counts as a sign of life. */
static const uint32_t *push_worker(const pb_msg *m) { return &m->push.worker_id; }
static const uint32_t *pull_worker(const pb_msg *m) { return &m->pull.worker_id; }
static const uint32_t *reduce_worker(const pb_msg *m) { return &m->reduce.worker_id; }
static const uint32_t *hello_worker(const pb_msg *m) { return &m->hello.worker_id; }

/* What a server answers: by message type, its handler (each checks what the peer sent
 * before using it) and where the request names its worker. */
typedef struct handler {
    int (*on)(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen);
    const uint32_t *(*worker)(const pb_msg *m);
} handler;

static const handler handlers[] = {
    [PB_HELLO] = {ps_on_hello, hello_worker}, [PB_PUSH] = {ps_on_push, push_worker},
    [PB_PULL] = {ps_on_pull, pull_worker},    [PB_SNAPSHOT] = {ps_on_snapshot, NULL},
    [PB_SHUTDOWN] = {ps_on_shutdown, NULL},   [PB_STATS_REQUEST] = {on_stats_request, NULL},
    [PB_PING] = {ps_on_ping, NULL},           [PB_REDUCE] = {ps_on_reduce, reduce_worker},
};

/* Counts a message dropped from outside the job, and logs it unless a line about strangers
 * was written within PS_STRANGER_QUIET_S: a flood costs a line a second, not one a message
 * (a million empty frames once wrote 117 MB). Each line says how many went unlogged since the
 * one before, so the lines' counts add up to st.strangers. */
static void stranger_log(ps_server *s, const char *why) {
    s->st.strangers++;
    if (!s->cfg.log)
        return;
    const double t = pst_now();
    if (s->stranger_logged > 0 && t - s->stranger_logged < PS_STRANGER_QUIET_S) {
        s->stranger_quiet++;
        return;
    }
    if (s->stranger_quiet)
        fprintf(s->cfg.log,
                "server %d: dropped a message from outside the job (and %llu more since the "
                "last line): %s\n",
                s->cfg.server_id, (unsigned long long)s->stranger_quiet, why);
    else
        fprintf(s->cfg.log, "server %d: dropped a message from outside the job: %s\n",
                s->cfg.server_id, why);
    fflush(s->cfg.log);
    s->stranger_logged = t;
    s->stranger_quiet = 0;
}

void ps_strangers_flush(ps_server *s) {
    if (!s->cfg.log || !s->stranger_quiet)
        return;
    fprintf(s->cfg.log,
            "server %d: dropped %llu more message%s from outside the job since the "
            "last line\n",
            s->cfg.server_id, (unsigned long long)s->stranger_quiet,
            s->stranger_quiet == 1 ? "" : "s");
    fflush(s->cfg.log);
    s->stranger_quiet = 0;
}

/* Handles one received message (or a receive failure): PST_OK, or PST_ESOCKET with err when
 * the socket failed. */
int ps_dispatch(ps_server *s, char *err, size_t errlen) {
    pb_msg m;
    pb_peer from;
    char why[256];
    int rc = pb_recv(s->sock, &from, &m, ZMQ_DONTWAIT, why, sizeof why);
    if (rc == PST_EAGAIN || (rc == PST_ESOCKET && errno == EINTR)) {
        pb_msg_clear(&m);
        return PST_OK;
    }
    if (rc == PST_ESOCKET) {
        pb_msg_clear(&m);
        return pst_err(err, errlen, PST_ESOCKET, "server %d: %s", s->cfg.server_id, why);
    }
    if (rc == PST_ESTRANGER) { /* not a word back to a stranger */
        stranger_log(s, why);
        rc = PST_OK;
    } else if (rc == PST_EMALFORMED || rc == PST_EVERSION)
        rc = ps_refuse(s, &from, rc == PST_EVERSION ? PB_ERR_VERSION : PB_ERR_MALFORMED, why);
    else if (rc == PST_OK) {
        const handler *h =
            (size_t)m.kind < sizeof handlers / sizeof handlers[0] ? &handlers[m.kind] : NULL;
        if (h && h->on) {
            /* whatever a worker sends on its connection shows it is alive */
            const uint32_t *wid = h->worker ? h->worker(&m) : NULL;
            if (wid && *wid < (uint32_t)s->W)
                ps_heard(s, (int)*wid, &from);
            rc = h->on(s, &from, &m, err, errlen);
        } else {
            snprintf(why, sizeof why, "%s: not a request a server answers", pb_kind_name(m.kind));
            rc = ps_refuse(s, &from, PB_ERR_MALFORMED, why);
        }
    }
    pb_msg_clear(&m);
    if (rc != PST_OK && rc != PST_EAGAIN)
        return pst_err(err, errlen, PST_ESOCKET, "server %d: send failed: %s", s->cfg.server_id,
                       zmq_strerror(errno));
    return PST_OK;
}
