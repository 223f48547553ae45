/* join.c: workers that join a running job (--max-workers; pstrain train --join). Ids
 * num_workers..W-1 are places, lost and not counted until a worker holds one. A joining
 * worker asks each server for its place (server 0 gives the id), then asks server 0 to take
 * part in the workers' next admission round (a Reduce of op PS_REDUCE_ADMIT, at every
 * epoch's end, when no push is on its way: every clock of the epoch is complete). Server 0
 * counts it from that round on and names it in the answer, so that every worker splits the
 * data again with it; the new worker then says so to the other servers (hello.join
 * ADMITTED) before its first push, which every worker's next step waits for (the round that
 * follows needs it too). No server can complete a clock it should have counted it in. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static FILE *log_of(const ps_server *s) { return s->cfg.log ? s->cfg.log : stderr; }

void ps_join_admit(ps_server *s, int w) {
    peer *p = &s->peers[w];
    if (!p->waiting)
        return;
    p->waiting = p->asked = 0;
    p->lost = 0;
    p->heard = pst_now();
    s->nvacant--;
    /* nothing of it is held: a worker waiting to join may not push or pull (it is lost) */
    fprintf(log_of(s), "server %d: worker %d joins the job: %d worker(s) now\n", s->cfg.server_id,
            w, s->W - s->nlost - s->nvacant);
    fflush(log_of(s));
}

int ps_on_join(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const pb_hello *h = &m->hello;
    char why[256];
    if (h->num_workers != (uint32_t)s->W || h->join > PB_JOIN_ADMITTED) {
        snprintf(why, sizeof why, "hello: expected join 1 or 2 of %d workers, got join %u of %u",
                 s->W, h->join, h->num_workers);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    uint32_t w = h->worker_id;
    if (w == PB_ANY_WORKER && h->join == PB_JOIN_ASK) /* the first free place */
        for (w = 0; w < (uint32_t)s->W && !s->peers[w].vacant; w++)
            ;
    if (w >= (uint32_t)s->W) {
        snprintf(why, sizeof why,
                 "hello.join: no place for another worker: the job takes %d (--max-workers)", s->W);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    peer *p = &s->peers[w];
    if (h->join == PB_JOIN_ASK) {
        if (!p->vacant && !p->waiting) {
            snprintf(why, sizeof why, "hello.join: worker %u's place is taken", w);
            return ps_refuse(s, from, PB_ERR_STATE, why);
        }
        if (p->vacant)
            fprintf(log_of(s), "server %d: worker %u asks to join; it waits for the next epoch\n",
                    s->cfg.server_id, w);
        p->vacant = 0;
        p->waiting = 1;
    } else if (p->waiting) { /* admitted by server 0's round: counted from now on */
        ps_join_admit(s, (int)w);
    } else if (p->lost || p->vacant) {
        snprintf(why, sizeof why, "hello.join: worker %u was not admitted (or was lost)", w);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    p->from = *from;
    p->said_hello = 1;
    p->heard = pst_now();
    return ps_send_hello_reply(s, from, w, err, errlen);
}

int ps_join_ask(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const uint32_t w = m->reduce.worker_id;
    peer *p = &s->peers[w];
    if (p->from.len != from->len || memcmp(p->from.id, from->id, from->len) != 0) {
        char why[128];
        snprintf(why, sizeof why, "reduce: worker %u has not said hello on this connection", w);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    p->asked = 1;
    p->heard = pst_now();
    (void)err, (void)errlen; /* answered with the next admission round */
    return PST_OK;
}

void ps_join_watch(ps_server *s) {
    const double now = pst_now();
    for (int w = 0; w < s->W; w++) {
        peer *p = &s->peers[w];
        if (!p->waiting || now - p->heard <= s->cfg.peer_timeout)
            continue;
        fprintf(log_of(s),
                "server %d: worker %d, waiting to join, went silent for %.1f s: its place is "
                "free again\n",
                s->cfg.server_id, w, now - p->heard);
        p->waiting = p->asked = p->said_hello = 0;
        p->vacant = 1;
    }
}
