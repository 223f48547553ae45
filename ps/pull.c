/* pull.c: pulls of the weights: answered at once, or queued until their version is reached. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The weights [offset, offset + count) to `to`, with their version. */
static int send_weights(ps_server *s, const ps_part *pt, const pb_peer *to, uint64_t offset,
                        uint64_t count, char *err, size_t errlen) {
    const uint64_t version = ps_range_version(pt, offset, count);
    const pb_msg r = {.kind = PB_PULL_REPLY,
                      .pull_reply = {.part = (uint32_t)(pt - s->parts),
                                     .version = version,
                                     .slice = {offset, count},
                                     .stopping = ps_stopping(pt, version)}};
    s->st.pulls++;
    s->st.bytes_out += count * sizeof(float);
    return pb_send(s->sock, to, &r, pt->w + (offset - pt->lo), (size_t)count, err, errlen);
}

/* True once every worker still counted has pushed need whole steps of pt. */
static int settled(const ps_server *s, const ps_part *pt) {
    for (int w = 0; w < s->W; w++)
        if (!s->peers[w].lost && pt->peers[w].chunks_pushed < pt->peers[w].need * (uint64_t)pt->C)
            return 0;
    return 1;
}

/* Whether a queued pull can be answered: its version is reached, or the job is stopping
 * (a worker ahead in ssp mode then learns it instead of waiting for steps nobody takes). */
static int pull_ready(const ps_server *s, const pending_pull *p) {
    const ps_part *pt = &s->parts[p->part];
    const uint64_t v = ps_range_version(pt, p->offset, p->count);
    return (p->min_version <= v || ps_stopping(pt, v)) && (!p->settle || settled(s, pt));
}

/* Answers every queued pull whose version has been reached. */
int ps_answer_pending(ps_server *s, char *err, size_t errlen) {
    int kept = 0;
    for (int i = 0; i < s->npending; i++) {
        pending_pull *p = &s->pending[i];
        ps_part *pt = &s->parts[p->part];
        if (pull_ready(s, p)) {
            if (p->snapshot)
                pt->peers[p->worker_id].snapshot_waiting = 0;
            else
                pt->peers[p->worker_id].waiting--;
            const int rc = p->snapshot
                               ? ps_send_snapshot(s, pt, &p->from, err, errlen)
                               : send_weights(s, pt, &p->from, p->offset, p->count, err, errlen);
            if (rc != PST_OK)
                return rc;
        } else {
            s->pending[kept++] = *p;
        }
    }
    s->npending = kept;
    return PST_OK;
}

int ps_on_pull(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const pb_pull *p = &m->pull;
    int rc;
    ps_part *pt = ps_request_part(s, from, p->worker_id, p->part, "pull", &rc);
    if (!pt)
        return rc;
    char why[256];
    const pb_slice *sl = &p->slice;
    if (sl->count == 0 || sl->offset < pt->lo || sl->count > pt->n ||
        sl->offset - pt->lo > pt->n - sl->count) {
        snprintf(why, sizeof why, "pull.slice: expected a range inside [%zu, %zu)", pt->lo,
                 pt->lo + pt->n);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    if (p->npushes != 0 && p->npushes != (size_t)s->W) {
        snprintf(why, sizeof why, "pull.pushes: expected none or %d (one per worker), got %zu",
                 s->W, p->npushes);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    for (size_t w = 0; w < p->npushes; w++)
        if (p->pushes[w] > pt->peers[w].need)
            pt->peers[w].need = p->pushes[w];
    pending_pull q0 = {.part = (int)p->part,
                       .min_version = p->min_version,
                       .offset = sl->offset,
                       .count = sl->count,
                       .settle = p->npushes != 0};
    if (pull_ready(s, &q0))
        return send_weights(s, pt, from, sl->offset, sl->count, err, errlen);
    /* A worker may wait on one pull per chunk of a part at most: the queue has room. */
    peer_part *pr = &pt->peers[p->worker_id];
    for (int i = 0; i < s->npending; i++)
        if (s->pending[i].worker_id == p->worker_id && s->pending[i].part == (int)p->part &&
            (s->pending[i].offset == sl->offset || pr->waiting >= pt->C)) {
            snprintf(why, sizeof why, "pull: worker %u already waits for a pull of that part",
                     p->worker_id);
            return ps_refuse(s, from, PB_ERR_STATE, why);
        }
    pr->waiting++;
    pending_pull *q = &s->pending[s->npending++];
    *q = q0;
    q->worker_id = p->worker_id;
    q->from = *from;
    return PST_OK;
}
