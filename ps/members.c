/* members.c: who is in the job: hello, heartbeats, goodbyes, and workers lost or failed. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Whether a hello's parts are the server's: PST_OK, or PST_EPEER with why. */
static int same_parts(const ps_server *s, const pb_hello *h, char *why, size_t whylen) {
    if (h->nparts != (size_t)s->nparts) {
        snprintf(why, whylen, "hello.parts: expected %d, got %zu", s->nparts, h->nparts);
        return PST_EPEER;
    }
    for (int p = 0; p < s->nparts; p++) {
        const pb_part_desc *d = &h->parts[p];
        const eng_layout *lay = &s->parts[p].model->layout;
        const uint64_t sum = eng_layout_checksum(lay);
        const char *name = s->cfg.model->parts[p].name;
        if (strcmp(d->name, name) != 0 || d->param_count != lay->total ||
            d->layout_checksum != sum) {
            snprintf(why, whylen,
                     "hello.parts[%d]: expected '%s' of %zu parameters with checksum "
                     "0x%016" PRIx64 ", got '%.32s' of %" PRIu64 " with 0x%016" PRIx64,
                     p, name, lay->total, sum, d->name, d->param_count, d->layout_checksum);
            return PST_EPEER;
        }
    }
    return PST_OK;
}

/* Forgets the pulls worker w has queued: its pending ones and their counts in every part
 * (its connection is new, or it is gone: nobody is left to answer), and what it was sent:
 * its next coded pulls start from the weights. */
void ps_forget_pulls(ps_server *s, uint32_t w) {
    int kept = 0;
    for (int i = 0; i < s->npending; i++)
        if (s->pending[i].worker_id != w)
            s->pending[kept++] = s->pending[i];
    s->npending = kept;
    for (int q = 0; q < s->nparts; q++) {
        peer_part *pr = &s->parts[q].peers[w];
        pr->waiting = 0;
        pr->snapshot_waiting = 0;
        if (pr->viewed)
            memset(pr->viewed, 0, (size_t)s->parts[q].C);
    }
}

int ps_on_hello(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const pb_hello *h = &m->hello;
    const eng_layout *lay = &s->cfg.model->layout;
    const uint64_t sum = eng_layout_checksum(lay);
    char why[256];
    if (strcmp(h->model, s->cfg.model->def->name) != 0) {
        snprintf(why, sizeof why, "hello.model: expected '%s', got '%.64s'",
                 s->cfg.model->def->name, h->model);
        return ps_refuse(s, from, PB_ERR_LAYOUT, why);
    }
    if (h->param_count != lay->total || h->layout_checksum != sum) {
        snprintf(why, sizeof why,
                 "hello.layout: expected %zu parameters with checksum 0x%016" PRIx64
                 ", got %" PRIu64 " with 0x%016" PRIx64,
                 lay->total, sum, h->param_count, h->layout_checksum);
        return ps_refuse(s, from, PB_ERR_LAYOUT, why);
    }
    if (same_parts(s, h, why, sizeof why) != PST_OK)
        return ps_refuse(s, from, PB_ERR_LAYOUT, why);
    if (h->join)
        return ps_on_join(s, from, m, err, errlen);
    if (h->num_workers != (uint32_t)s->W || h->worker_id >= (uint32_t)s->W) {
        snprintf(why, sizeof why, "hello: expected worker_id 0..%d of %d workers, got %u of %u",
                 s->W - 1, s->W, h->worker_id, h->num_workers);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    peer *p = &s->peers[h->worker_id];
    if (p->vacant || p->waiting) {
        snprintf(why, sizeof why,
                 "hello: worker %u is a place for a worker that joins (hello.join), not one "
                 "of the job's start",
                 h->worker_id);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    if (s->standby || h->npushed)
        ps_replica_take_over(s, (int)h->worker_id, h);
    p->from = *from;
    p->said_hello = 1;
    /* A worker that says hello again has a new connection: a pull its old one left waiting
     * has nobody to answer to. */
    ps_forget_pulls(s, h->worker_id);
    return ps_send_hello_reply(s, from, h->worker_id, err, errlen);
}

int ps_send_hello_reply(ps_server *s, const pb_peer *to, uint32_t w, char *err, size_t errlen) {
    pb_msg r = {.kind = PB_HELLO_REPLY,
                .hello_reply = {.server_id = (uint32_t)s->cfg.server_id,
                                .nparts = (size_t)s->nparts,
                                .version = ps_shard_version(&s->parts[0]),
                                .chunk = s->cfg.chunk,
                                .worker_id = w}};
    for (int q = 0; q < s->nparts; q++) {
        ps_part *pt = &s->parts[q];
        r.hello_reply.shards[q] = (pb_slice){pt->lo, pt->n};
    }
    return pb_send(s->sock, to, &r, NULL, 0, err, errlen);
}

int ps_on_shutdown(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const pb_shutdown *d = &m->shutdown;
    char why[256];
    if (d->replica) { /* the primary is done; a backup that took over ignores it */
        s->primary_done = 1;
        return PST_OK;
    }
    if (ps_peer_of(s, from, d->worker_id, "shutdown", why, sizeof why) != PST_OK)
        return ps_refuse(s, from, PB_ERR_STATE, why);
    peer *p = &s->peers[d->worker_id];
    if (d->failed) { /* the job goes on without it, as without a lost one */
        char reason[400];
        snprintf(reason, sizeof reason, "it ended on a failure: %.300s", d->reason);
        s->nfailed++;
        return ps_drop_worker(s, (int)d->worker_id, reason, err, errlen);
    }
    if (!p->said_goodbye) {
        p->said_goodbye = 1;
        s->goodbyes++;
    }
    /* a worker that has left takes no more part in reduce rounds */
    const int rc = ps_send_stats(s, from, err, errlen);
    return rc == PST_OK ? ps_answer_reduce(s, err, errlen) : rc;
}

int ps_on_ping(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const uint32_t w = m->ping.worker_id;
    if (w >= (uint32_t)s->W) {
        char why[96];
        snprintf(why, sizeof why, "ping.worker_id: expected 0..%d, got %u", s->W - 1, w);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    ps_heard(s, (int)w, from);
    const pb_msg r = {.kind = PB_PONG, .pong = {(uint32_t)s->cfg.server_id}};
    return pb_send(s->sock, from, &r, NULL, 0, err, errlen);
}

/* Worker w has one connection fewer: when it was the last, its closing is noted. */
static void release(ps_server *s, int w) {
    peer *p = &s->peers[w];
    if (--p->conns == 0)
        p->closed_at = pst_now();
}

/* Connection c is now worker w's (-1: nobody's). */
static void own(ps_server *s, ps_conn *c, int w) {
    if (c->worker == w)
        return;
    if (c->worker >= 0)
        release(s, c->worker);
    c->worker = w;
    if (w >= 0) {
        s->peers[w].conns++;
        s->peers[w].closed_at = 0.0;
    }
}

/* The connection on descriptor fd (>= 0), the table grown to hold it. */
static ps_conn *conn_at(ps_server *s, int fd) {
    if (fd >= s->nconns) {
        int n = s->nconns ? s->nconns : 64;
        while (n <= fd)
            n *= 2;
        s->conns = pst_realloc(s->conns, sizeof *s->conns * (size_t)n);
        for (int i = s->nconns; i < n; i++)
            s->conns[i] = (ps_conn){.open = 0, .worker = -1, .early = -1};
        s->nconns = n;
    }
    return &s->conns[fd];
}

void ps_heard(ps_server *s, int w, const pb_peer *from) {
    peer *p = &s->peers[w];
    if (p->lost && !p->waiting) /* one waiting to join is heard too (ps_join_watch) */
        return;
    p->heard = pst_now();
    if (from->fd < 0)
        return;
    ps_conn *c = conn_at(s, from->fd);
    if (c->open)
        own(s, c, w);
    else /* a new connection whose opening the monitor has not yet reported */
        c->early = w;
}

void ps_on_conn(ps_server *s, const pb_conn_event *ev) {
    if (ev->fd < 0)
        return;
    ps_conn *c = conn_at(s, ev->fd);
    own(s, c, -1); /* an opening too: the descriptor's previous connection is gone */
    c->open = ev->kind == PB_CONN_OPENED;
    if (c->open)
        own(s, c, c->early);
    c->early = -1;
}

void ps_forget_worker(ps_server *s, int w) {
    for (int q = 0; q < s->nparts; q++) {
        ps_part *pt = &s->parts[q];
        for (size_t slot = 0; slot < (size_t)s->slots; slot++)
            for (int k = 0; k < pt->C; k++) {
                const size_t i = (slot * (size_t)s->W + (size_t)w) * (size_t)pt->C + (size_t)k;
                pt->have[i] = PS_CELL_EMPTY;
                pb_frame_free(&pt->held[i]);
            }
    }
    ps_forget_pulls(s, (uint32_t)w);
}

/* Worker w is gone: the job goes on with the others. Its gradients of clocks not yet
 * applied are dropped (a clock then completes with the others'), so are its queued pulls
 * and its part of a reduce round. */
int ps_drop_worker(ps_server *s, int w, const char *why, char *err, size_t errlen) {
    peer *p = &s->peers[w];
    p->lost = 1;
    s->nlost++;
    const int left = s->W - s->nlost - s->nvacant;
    FILE *log = s->cfg.log ? s->cfg.log : stderr;
    fprintf(log, "server %d: worker %d lost: %s; ", s->cfg.server_id, w, why);
    if (left == 0)
        fprintf(log, "no workers left\n");
    else if (s->cfg.abort_on_worker_loss)
        fprintf(log, "stopping the job after a checkpoint (--on-worker-loss abort)\n");
    else
        fprintf(log, "going on with %d worker(s)\n", left);
    fflush(log);
    ps_forget_worker(s, w);
    if (s->red_have[w]) {
        s->red_have[w] = 0;
        s->red_count--;
    }
    if (s->cfg.abort_on_worker_loss) /* lowers no part's stop already set */
        ps_stop_after_newest(s);
    for (int q = 0; q < s->nparts; q++)
        for (int k = 0; k < s->parts[q].C && s->slots; k++)
            ps_apply_complete_clocks(s, &s->parts[q], k);
    const int rc = ps_answer_pending(s, err, errlen);
    return rc == PST_OK ? ps_answer_reduce(s, err, errlen) : rc;
}

/* Between messages: workers silent for too long are lost, and this process's own stop
 * signal is turned into a version from which answers say stopping. */
int ps_watch(ps_server *s, char *err, size_t errlen) {
    const double now = pst_now();
    for (int w = 0; w < s->W && !s->standby; w++) { /* a backup expects no worker yet */
        const peer *p = &s->peers[w];
        /* a reset: its connections closed (a killed process's kernel closes them at once)
         * and it has not come back on a new one */
        const int reset = p->conns == 0 && p->closed_at > 0.0 && p->heard <= p->closed_at &&
                          now - p->closed_at >= PS_RESET_GRACE;
        if (p->lost || p->said_goodbye || (!reset && now - p->heard <= s->cfg.peer_timeout))
            continue;
        char why[160];
        if (reset)
            snprintf(why, sizeof why, "its connection closed %.1f s ago (reset)",
                     now - p->closed_at);
        else if (p->said_hello)
            snprintf(why, sizeof why, "nothing from it for %.1f s (--peer-timeout %g)",
                     now - p->heard, s->cfg.peer_timeout);
        else if (s->took_over)
            snprintf(why, sizeof why,
                     "it did not come to this copy within %g s of its taking over (2 x "
                     "--peer-timeout): it went with the primary",
                     2 * s->cfg.peer_timeout);
        else
            snprintf(why, sizeof why,
                     "not heard from within %g s of the start (--timeout) "
                     "and %g s more",
                     s->cfg.start_grace, s->cfg.peer_timeout);
        const int rc = ps_drop_worker(s, w, why, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    ps_join_watch(s);
    if (s->cfg.stop && *s->cfg.stop && !s->stop_noted) {
        s->stop_noted = 1;
        ps_stop_after_newest(s);
        return ps_answer_pending(s, err, errlen);
    }
    return PST_OK;
}
