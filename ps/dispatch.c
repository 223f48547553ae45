/* dispatch.c: one received message to its handler, refusals, and the counters. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ps_refuse(ps_server *s, const pb_msg *m, uint32_t code, const char *msg) {
    s->st.errors++;
    if (s->cfg.log)
        fprintf(s->cfg.log, "server %d: refused a message: %s\n", s->cfg.server_id, msg);
    return m->identity_len ? pb_send_error(s->sock, m->identity, m->identity_len, code, msg)
                           : PST_OK;
}

int ps_peer_of(ps_server *s, const pb_msg *m, uint32_t worker_id, const char *what, char *why,
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

/* The counters so far, to the peer that sent m. */
int ps_send_stats(ps_server *s, const pb_msg *m, char *err, size_t errlen) {
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

static int on_stats_request(ps_server *s, pb_msg *m, char *err, size_t errlen) {
    char why[256];
    if (ps_peer_of(s, m, m->env->stats_request->worker_id, "stats_request", why, sizeof why) != 0)
        return ps_refuse(s, m, PB_ERR_STATE, why);
    return ps_send_stats(s, m, err, errlen);
}

/* The worker a request names, where it counts as a sign of life. */
static const uint32_t *push_worker(const pb_msg *m) { return &m->env->push->worker_id; }
static const uint32_t *pull_worker(const pb_msg *m) { return &m->env->pull->worker_id; }
static const uint32_t *reduce_worker(const pb_msg *m) { return &m->env->reduce->worker_id; }
static const uint32_t *hello_worker(const pb_msg *m) { return &m->env->hello->worker_id; }

/* What a server answers: by message type, its handler (each checks what the peer sent
 * before using it) and where the request names its worker. */
typedef struct handler {
    int (*on)(ps_server *s, pb_msg *m, char *err, size_t errlen);
    const uint32_t *(*worker)(const pb_msg *m);
} handler;

static const handler handlers[] = {
    [PSTRAIN__ENVELOPE__BODY_HELLO] = {ps_on_hello, hello_worker},
    [PSTRAIN__ENVELOPE__BODY_PUSH] = {ps_on_push, push_worker},
    [PSTRAIN__ENVELOPE__BODY_PULL] = {ps_on_pull, pull_worker},
    [PSTRAIN__ENVELOPE__BODY_SNAPSHOT] = {ps_on_snapshot, NULL},
    [PSTRAIN__ENVELOPE__BODY_SHUTDOWN] = {ps_on_shutdown, NULL},
    [PSTRAIN__ENVELOPE__BODY_STATS_REQUEST] = {on_stats_request, NULL},
    [PSTRAIN__ENVELOPE__BODY_PING] = {ps_on_ping, NULL},
    [PSTRAIN__ENVELOPE__BODY_REDUCE] = {ps_on_reduce, reduce_worker},
};

/* Handles one received message (or a receive failure): 0, or -1 with err when the socket
 * failed. */
int ps_dispatch(ps_server *s, char *err, size_t errlen) {
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
        rc = ps_refuse(s, &m, rc == PST_EVERSION ? PB_ERR_VERSION : PB_ERR_MALFORMED, why);
    else if (rc == PST_OK) {
        const handler *h = (size_t)m.env->body_case < sizeof handlers / sizeof handlers[0]
                               ? &handlers[m.env->body_case]
                               : NULL;
        if (h && h->on) {
            /* whatever a worker sends on its connection shows it is alive */
            const uint32_t *wid = h->worker ? h->worker(&m) : NULL;
            if (wid && *wid < (uint32_t)s->W && !s->peers[*wid].lost)
                s->peers[*wid].heard = pst_now();
            rc = h->on(s, &m, err, errlen);
        } else {
            snprintf(why, sizeof why, "%s: not a request a server answers", pb_body_name(m.env));
            rc = ps_refuse(s, &m, PB_ERR_MALFORMED, why);
        }
    }
    pb_msg_clear(&m);
    if (rc != PST_OK && rc != PST_EAGAIN)
        return pst_err(err, errlen, PST_EIO, "server %d: send failed: %s", s->cfg.server_id,
                       zmq_strerror(errno));
    return 0;
}
