/* pull.c: pulls of the weights: answered at once, or queued until their version is reached;
 * as the weights in fp32, or coded (bf16, fp16, top-k) as the change since the last answer
 * to that worker. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include "proto/codec.h"
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Whether [offset, offset + count) is a run of whole chunks that worker w's view holds (a
 * coded answer can be made of it). */
static int viewed(const ps_part *pt, const peer_part *pr, uint64_t offset, uint64_t count) {
    const int k0 = eng_chunks_find(&pt->chunks, offset);
    const int k1 = eng_chunks_find(&pt->chunks, offset + count - 1);
    if (pt->chunks.start[k0] != offset || pt->chunks.start[k1 + 1] != offset + count)
        return 0;
    for (int k = k0; k <= k1; k++)
        if (!pr->viewed[k])
            return 0;
    return 1;
}

/* The worker is sent the weights of [offset, offset + count) as they are: its view of them,
 * and of the chunks that lie wholly inside. */
static void view_sent(ps_part *pt, peer_part *pr, uint64_t offset, uint64_t count) {
    const size_t at = (size_t)(offset - pt->lo);
    memcpy(pr->view + at, pt->w + at, sizeof(float) * count);
    for (int k = eng_chunks_find(&pt->chunks, offset); k < pt->C; k++) {
        if (pt->chunks.start[k + 1] > offset + count)
            break;
        if (pt->chunks.start[k] >= offset)
            pr->viewed[k] = 1;
    }
}

/* The coded change of [offset, offset + count) since worker w's view, into s->coded: its
 * bytes in *bytes, r's coding, and the view moved by exactly what the worker will add.
 * Returns 0, changing nothing, when the change is not finite or out of the wire type's
 * range (a NaN weight, an fp16 overflow): it would stay in the view and the worker's copy
 * for good, so the caller sends the weights themselves instead. */
static int code_change(ps_server *s, ps_part *pt, peer_part *pr, uint64_t offset, uint64_t count,
                       pb_wire wire, double topk, pb_pull_reply *r, size_t *bytes) {
    const size_t at = (size_t)(offset - pt->lo), n = (size_t)count;
    float *acc = s->acc, *view = pr->view + at;
    const float *w = pt->w + at;
    const float limit = wire == PB_WIRE_FP16 ? 65504.0f : FLT_MAX;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        acc[i] = w[i] - view[i];
        bad |= !(fabsf(acc[i]) <= limit); /* NaN too */
    }
    if (bad)
        return 0;
    r->delta = 1;
    r->coding.wire = wire;
    if (topk > 0) {
        const size_t nnz = pb_topk_encode(wire, topk, acc, n, s->coded);
        char why[160];
        PST_ASSERT(pb_topk_decode(wire, s->coded, nnz, n, view, 1, why, sizeof why) == PST_OK,
                   "server: own top-k refused: %s", why);
        r->coding.topk = 1;
        r->coding.nnz = nnz;
        *bytes = pb_topk_bytes(wire, nnz);
        return 1;
    }
    pb_wire_encode(wire, acc, n, s->coded);
    pb_wire_decode_add(wire, s->coded, n, view);
    *bytes = n * pb_wire_size(wire);
    return 1;
}

/* The weights [offset, offset + count) to worker w at `to`, with their version: as they are
 * (fp32 asked, or the worker's first answer of that run), or coded as the change since the
 * last answer to it. */
static int send_weights(ps_server *s, ps_part *pt, const pb_peer *to, uint32_t w, uint64_t offset,
                        uint64_t count, uint32_t wire, double topk, char *err, size_t errlen) {
    const uint64_t version = ps_range_version(pt, offset, count);
    pb_msg r = {.kind = PB_PULL_REPLY,
                .pull_reply = {.part = (uint32_t)(pt - s->parts),
                               .version = version,
                               .slice = {offset, count},
                               .stopping = ps_stopping(pt, version)}};
    s->st.pulls++;
    peer_part *pr = &pt->peers[w];
    const int coded = wire != PB_WIRE_FP32 || topk > 0;
    if (coded && !s->acc) {
        s->acc = pst_alloc(sizeof(float) * s->largest);
        s->coded = pst_alloc(2 * sizeof(float) * s->largest);
    }
    if (coded && !pr->view) {
        pr->view = pst_alloc(sizeof(float) * (pt->n ? pt->n : 1));
        pr->viewed = pst_calloc((size_t)pt->C, 1);
    }
    size_t bytes;
    if (coded && viewed(pt, pr, offset, count) &&
        code_change(s, pt, pr, offset, count, (pb_wire)wire, topk, &r.pull_reply, &bytes)) {
        s->st.bytes_out += bytes;
        return pb_send_bytes(s->sock, to, &r, s->coded, bytes, err, errlen);
    }
    if (pr->view) /* the worker has these weights now: later changes are from them */
        view_sent(pt, pr, offset, count);
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
    return (p->min_version <= v || ps_stopping(pt, v)) && (!p->settle || settled(s, pt)) &&
           ps_replicated(s, pt, p->offset, p->count);
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
            const int rc = p->snapshot ? ps_send_snapshot(s, pt, &p->from, err, errlen)
                                       : send_weights(s, pt, &p->from, p->worker_id, p->offset,
                                                      p->count, p->wire, p->topk, err, errlen);
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
    if (p->wire >= PB_WIRE_END) {
        snprintf(why, sizeof why, "pull.wire: expected 0, 1 or 2 (fp32, bf16, fp16), got %u",
                 p->wire);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    if (!(p->topk >= 0.0 && p->topk <= 1.0)) {
        snprintf(why, sizeof why, "pull.topk: expected a fraction in [0, 1], got %g", p->topk);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    for (size_t w = 0; w < p->npushes; w++)
        if (p->pushes[w] > pt->peers[w].need)
            pt->peers[w].need = p->pushes[w];
    pending_pull q0 = {.part = (int)p->part,
                       .min_version = p->min_version,
                       .offset = sl->offset,
                       .count = sl->count,
                       .settle = p->npushes != 0,
                       .wire = p->wire,
                       .topk = p->topk};
    if (pull_ready(s, &q0))
        return send_weights(s, pt, from, p->worker_id, sl->offset, sl->count, p->wire, p->topk, err,
                            errlen);
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
