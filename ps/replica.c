/* replica.c: --replicas. A primary passes every update it applies (the chunk, the update's
 * number, the gradient the optimizer stepped with) to its backup, which applies the same
 * update with the same optimizer code: in every mode the backup's weights and optimizer
 * state are the primary's, bit for bit, version by version. The primary answers a pull only
 * once the backup has acknowledged every update it applied there, so no worker ever sees a
 * version its backup lacks. When the primary is lost its workers come to the backup (a
 * hello that says how many steps each part has pushed) and send their last step again: the
 * backup takes the shard over and the job goes on with one fewer copy. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static FILE *log_of(const ps_server *s) { return s->cfg.log ? s->cfg.log : stderr; }

int ps_replica_connect(ps_server *s, char *err, size_t errlen) {
    /* SNDHWM 0: updates are never dropped */
    s->rsock = pb_dealer_new(s->ctx, s->backup, 0, s->cfg.keys, err, errlen);
    return s->rsock ? PST_OK : PST_ESOCKET;
}

void ps_replica_close(ps_server *s) {
    if (s->rsock)
        zmq_close(s->rsock);
    s->rsock = NULL;
}

void ps_replicate(ps_server *s, ps_part *pt, int k, const float *g) {
    if (!s->rsock)
        return;
    const size_t a = pt->chunks.start[k], n = pt->chunks.start[k + 1] - a;
    const pb_msg m = {.kind = PB_PUSH,
                      .push = {.worker_id = UINT32_MAX, /* from no worker */
                               .part = (uint32_t)(pt - s->parts),
                               .step = pt->cver[k],
                               .slice = {a, n},
                               .replica = 1,
                               .stop_at = pt->stop_at == UINT64_MAX ? 0 : pt->stop_at}};
    char err[256];
    if (pb_send(s->rsock, NULL, &m, g, n, err, sizeof err) != PST_OK) {
        fprintf(log_of(s), "server %d: cannot pass an update to its backup (%s): %s\n",
                s->cfg.server_id, s->backup, err);
        return; /* unacknowledged: the watch drops the backup */
    }
    if (s->unacked_since == 0.0)
        s->unacked_since = pst_now();
}

int ps_replicated(const ps_server *s, const ps_part *pt, uint64_t offset, uint64_t count) {
    if (!s->rsock || pt->n == 0)
        return 1;
    const int k0 = eng_chunks_find(&pt->chunks, offset);
    const int k1 = eng_chunks_find(&pt->chunks, offset + count - 1);
    for (int k = k0; k <= k1; k++)
        if (pt->rver[k] < pt->cver[k])
            return 0;
    return 1;
}

/* Whether the backup has every update of every part. */
static int all_acked(const ps_server *s) {
    for (int p = 0; p < s->nparts; p++)
        for (int k = 0; k < s->parts[p].C; k++)
            if (s->parts[p].rver[k] < s->parts[p].cver[k])
                return 0;
    return 1;
}

/* The backup is gone (why): the shard goes on without a copy, and what waited for it is
 * answered. */
static int lose_backup(ps_server *s, const char *why, char *err, size_t errlen) {
    fprintf(log_of(s), "server %d: its backup at %s is lost: %s; its shard goes on with no copy\n",
            s->cfg.server_id, s->backup, why);
    fflush(log_of(s));
    ps_replica_close(s);
    s->unacked_since = 0.0;
    return ps_answer_pending(s, err, errlen);
}

int ps_replica_recv(ps_server *s, char *err, size_t errlen) {
    for (;;) {
        pb_msg m;
        char why[256];
        int rc = pb_recv(s->rsock, NULL, &m, ZMQ_DONTWAIT, why, sizeof why);
        if (rc == PST_EAGAIN || (rc == PST_ESOCKET && errno == EINTR)) {
            pb_msg_clear(&m);
            break;
        }
        if (rc == PST_OK && m.kind == PB_REPLICA_ACK && m.replica_ack.part < (uint32_t)s->nparts) {
            ps_part *pt = &s->parts[m.replica_ack.part];
            const int k = pt->n ? eng_chunks_find(&pt->chunks, m.replica_ack.offset) : 0;
            if (k >= 0 && m.replica_ack.version <= pt->cver[k] &&
                m.replica_ack.version > pt->rver[k])
                pt->rver[k] = m.replica_ack.version;
            pb_msg_clear(&m);
            continue;
        }
        char what[320];
        snprintf(what, sizeof what, "%s",
                 rc != PST_OK         ? why
                 : m.kind == PB_ERROR ? m.error.message
                                      : pb_kind_name(m.kind));
        pb_msg_clear(&m);
        return lose_backup(s, what, err, errlen);
    }
    if (all_acked(s))
        s->unacked_since = 0.0;
    else
        s->unacked_since = pst_now(); /* it keeps up: the wait starts again */
    return ps_answer_pending(s, err, errlen);
}

int ps_on_replica_push(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const pb_push *p = &m->push;
    char why[256];
    if (!s->standby) {
        snprintf(why, sizeof why, "push.replica: server %d is not a backup that waits",
                 s->cfg.server_id);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    if (p->part >= (uint32_t)s->nparts) {
        snprintf(why, sizeof why, "push.part: expected 0..%d, got %u", s->nparts - 1, p->part);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    ps_part *pt = &s->parts[p->part];
    const int k = p->slice.offset <= SIZE_MAX && pt->n
                      ? eng_chunks_find(&pt->chunks, (size_t)p->slice.offset)
                      : (pt->n ? -1 : 0);
    if (k < 0 || p->slice.offset != pt->chunks.start[k] ||
        p->slice.count != pt->chunks.start[k + 1] - pt->chunks.start[k] || p->nrows ||
        p->coding.wire || p->coding.topk) {
        snprintf(why, sizeof why,
                 "push.slice: a replica is one whole chunk of [%zu, %zu) in fp32, got [%" PRIu64
                 ", +%" PRIu64 ")",
                 pt->lo, pt->lo + pt->n, p->slice.offset, p->slice.count);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    if (p->step > pt->cver[k]) { /* an update went missing: this copy is not the primary's */
        snprintf(why, sizeof why,
                 "push.step: the backup has %" PRIu64 " updates of that chunk, got update %" PRIu64,
                 pt->cver[k], p->step);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    if (p->step == pt->cver[k]) {
        float *g = pt->scratch + (pt->chunks.start[k] - pt->lo);
        memcpy(g, m->payload, sizeof(float) * (size_t)p->slice.count);
        ps_apply_replica(s, pt, k, g);
        s->st.bytes_in += (uint64_t)m->payload_bytes;
    }
    if (p->stop_at && p->stop_at < pt->stop_at)
        pt->stop_at = p->stop_at;
    const pb_msg a = {.kind = PB_REPLICA_ACK,
                      .replica_ack = {p->part, p->slice.offset, pt->cver[k]}};
    return pb_send(s->sock, from, &a, NULL, 0, err, errlen);
}

void ps_replica_take_over(ps_server *s, int w, const pb_hello *h) {
    if (s->standby) {
        s->standby = 0;
        s->took_over = 1;
        fprintf(log_of(s),
                "server %d: a backup takes its shard over (version %" PRIu64
                "): its primary was lost; the shard goes on with no copy\n",
                s->cfg.server_id, ps_shard_version(&s->parts[0]));
        fflush(log_of(s));
        /* the others have two peer timeouts from now to come: each learns of the primary's
         * loss within one of the others (its heartbeats), and moves at its next wait; one
         * that does not come was lost with the primary (a host that went whole) */
        for (int v = 0; v < s->W; v++)
            if (!s->peers[v].said_hello)
                s->peers[v].heard = pst_now() + s->cfg.peer_timeout;
    }
    for (size_t p = 0; p < h->npushed && p < (size_t)s->nparts; p++) {
        ps_part *pt = &s->parts[p];
        peer_part *pr = &pt->peers[w];
        pr->pushes = h->pushed[p];
        pr->chunks_pushed = h->pushed[p] * (uint64_t)pt->C;
        /* ssp: the steps before its last that went with the primary count it in without a
         * gradient (its last comes again); in sync there are none */
        for (int k = 0; k < pt->C && s->slots && h->pushed[p] > 0; k++)
            for (uint64_t t = pt->cver[k];
                 t + 1 < h->pushed[p] && t < pt->cver[k] + (uint64_t)s->slots; t++) {
                const size_t slot = (size_t)(t % (uint64_t)s->slots);
                uint8_t *cell =
                    &pt->have[(slot * (size_t)s->W + (size_t)w) * (size_t)pt->C + (size_t)k];
                if (*cell == PS_CELL_EMPTY)
                    *cell = PS_CELL_ABSENT;
            }
    }
}

int ps_replica_watch(ps_server *s, char *err, size_t errlen) {
    if (!s->rsock || s->unacked_since == 0.0)
        return PST_OK;
    const double silent = pst_now() - s->unacked_since;
    if (silent <= s->cfg.peer_timeout)
        return PST_OK;
    char why[128];
    snprintf(why, sizeof why, "no acknowledgement for %.1f s (--peer-timeout %g)", silent,
             s->cfg.peer_timeout);
    return lose_backup(s, why, err, errlen);
}

void ps_replica_end(ps_server *s) {
    if (!s->rsock)
        return;
    const pb_msg d = {.kind = PB_SHUTDOWN, .shutdown = {.worker_id = UINT32_MAX, .replica = 1}};
    const int linger = 1000; /* ms that closing may wait for it to go out */
    char err[128];
    zmq_setsockopt(s->rsock, ZMQ_LINGER, &linger, sizeof linger);
    pb_send(s->rsock, NULL, &d, NULL, 0, err, sizeof err);
}
