/* apply.c: each part's shard: its chunks' versions and clocks, and the optimizer's updates from
 * the workers' gradients (in sync and ssp mode their mean, summed in worker order). */
#include "ps/internal.h"

#include "engine/base/base.h"
#include "proto/codec.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

uint64_t ps_range_version(const ps_part *pt, uint64_t offset, uint64_t count) {
    if (pt->n == 0) /* an empty shard (more servers than floats) is one empty chunk */
        return pt->cver[0];
    const int k0 = eng_chunks_find(&pt->chunks, offset);
    const int k1 = eng_chunks_find(&pt->chunks, offset + count - 1);
    uint64_t v = UINT64_MAX;
    for (int k = k0; k <= k1; k++)
        if (pt->cver[k] < v)
            v = pt->cver[k];
    return v;
}

uint64_t ps_shard_version(const ps_part *pt) { return ps_range_version(pt, pt->lo, pt->n); }

/* The job stops after the newest version any chunk has reached (answered so far, perhaps):
 * every answer from the next version on says stopping, so workers that got that version
 * without the word all get the same one step later. */
void ps_stop_after_newest(ps_server *s) {
    for (int p = 0; p < s->nparts; p++) {
        ps_part *pt = &s->parts[p];
        uint64_t v = 0;
        for (int k = 0; k < pt->C; k++)
            v = pt->cver[k] > v ? pt->cver[k] : v;
        if (v + 1 < pt->stop_at)
            pt->stop_at = v + 1;
    }
}

/* Whether an answer of this version tells the workers to checkpoint and stop: the same for
 * every worker that gets that version, so in sync mode all stop after the same step. */
int ps_stopping(const ps_part *pt, uint64_t version) { return version >= pt->stop_at; }

/* Counts how many updates of chunk k a gradient computed on base_version missed. */
static void note_staleness(ps_server *s, const ps_part *pt, int k, uint64_t base_version) {
    const uint64_t now = pt->cver[k];
    const uint64_t stale = now >= base_version ? now - base_version : 0;
    s->st.staleness_sum += stale;
    s->st.staleness_n++;
    if (stale > s->st.staleness_max)
        s->st.staleness_max = stale;
}

/* Updates shard elements [a, b) from the gradient g (g[0] is element a's) as update number
 * iterations + 1: the optimizer, except over state tensors, which move by the (mean) change
 * the workers pushed: in sync mode the step's moving statistics are then those of the
 * workers' mean batch statistics. */
static void update_span(ps_part *pt, size_t a, size_t b, const float *g, int64_t iterations) {
    for (int r = 0; r < pt->nstate && a < b; r++) {
        const size_t sa = pt->state[2 * r], sb = pt->state[2 * r + 1];
        if (sb <= a || sa >= b)
            continue;
        if (sa > a) {
            eng_optim_update(pt->opt, pt->w + a, g, a, sa - a, iterations);
            g += sa - a;
            a = sa;
        }
        const size_t e = sb < b ? sb : b;
        for (size_t i = a; i < e; i++)
            pt->w[i] += g[i - a];
        g += e - a;
        a = e;
    }
    if (a < b)
        eng_optim_update(pt->opt, pt->w + a, g, a, b - a, iterations);
}

/* Chunk apply_k's elements [lo, hi) of the mean of the apply_nsrc gradients (summed in
 * worker order), into scratch. */
static void mean_span(ps_part *pt, size_t clo, size_t lo, size_t hi) {
    const float inv = 1.0f / (float)pt->apply_nsrc;
    for (size_t j = lo; j < hi; j++) {
        float acc = pt->apply_src[0][j];
        for (int w = 1; w < pt->apply_nsrc; w++)
            acc += pt->apply_src[(size_t)w * pt->apply_stride][j];
        pt->scratch[clo + j] = acc * inv;
    }
}

/* Thread t's range [*lo, *hi) of chunk apply_k (its start in the shard: *clo). */
static void thread_span(const ps_part *pt, int t, size_t *clo, size_t *lo, size_t *hi) {
    *clo = pt->chunks.start[pt->apply_k] - pt->lo;
    const size_t cn = pt->chunks.start[pt->apply_k + 1] - pt->chunks.start[pt->apply_k];
    const size_t T = (size_t)pt->apply_threads;
    *lo = cn * (size_t)t / T;
    *hi = cn * (size_t)(t + 1) / T;
}

/* Thread t's part of one update of chunk apply_k: the mean of the apply_nsrc gradients and
 * the optimizer step, over its own range of the chunk. */
static void apply_range(void *arg, int t) {
    ps_part *pt = arg;
    size_t clo, lo, hi;
    thread_span(pt, t, &clo, &lo, &hi);
    const float *g = pt->apply_src[0];
    if (pt->apply_nsrc > 1) {
        mean_span(pt, clo, lo, hi);
        g = pt->scratch + clo;
    }
    update_span(pt, clo + lo, clo + hi, g + lo, (int64_t)pt->cver[pt->apply_k]);
}

/* Thread t's part of the mean alone (a backup gets it before the update). */
static void mean_range(void *arg, int t) {
    ps_part *pt = arg;
    size_t clo, lo, hi;
    thread_span(pt, t, &clo, &lo, &hi);
    mean_span(pt, clo, lo, hi);
}

/* One update of chunk k from the mean of nsrc gradients of it: src[w * stride]. nsrc 0: the
 * update's number goes by without a step (every gradient of that clock went with a lost
 * primary). With a backup the mean goes to it first, and both apply it at once: the same
 * arithmetic as the one pass without (update_span from the same mean). */
static void apply(ps_server *s, ps_part *pt, int k, const float *const *src, size_t stride,
                  int nsrc) {
    pt->apply_k = k;
    const float *g = nsrc > 0 ? src[0] : NULL;
    if (nsrc > 0 && s->rsock) {
        if (nsrc > 1) {
            pt->apply_src = src;
            pt->apply_stride = stride;
            pt->apply_nsrc = nsrc;
            eng_pool_run(s->pool, mean_range, pt);
            g = pt->scratch + (pt->chunks.start[k] - pt->lo);
        }
        ps_replicate(s, pt, k, g);
        src = &g;
        stride = 0;
        nsrc = 1;
    }
    if (nsrc > 0) {
        pt->apply_src = src;
        pt->apply_stride = stride;
        pt->apply_nsrc = nsrc;
        eng_pool_run(s->pool, apply_range, pt);
    }
    pt->cver[k]++;
    if (k == 0) /* a shard's update counts once (per part) */
        s->st.updates++;
    if (k == 0 && s->cfg.verbose && s->cfg.log)
        fprintf(s->cfg.log, "server %d: update %" PRIu64 " of part %d from %d gradient(s)\n",
                s->cfg.server_id, pt->cver[0], (int)(pt - s->parts), nsrc);
}

void ps_apply_replica(ps_server *s, ps_part *pt, int k, const float *g) {
    apply(s, pt, k, &g, 0, 1);
}

/* PS_SYNC / PS_SSP: applies every clock of chunk k whose gradients are all in. */
void ps_apply_complete_clocks(ps_server *s, ps_part *pt, int k) {
    const size_t C = (size_t)pt->C;
    for (;;) {
        const size_t slot = (size_t)(pt->cver[k] % (uint64_t)s->slots);
        const size_t first = slot * (size_t)s->W * C + (size_t)k; /* worker 0's cell */
        int n = 0;
        for (int w = 0; w < s->W; w++)
            if (!s->peers[w].lost && !pt->have[first + (size_t)w * C])
                return;
        if (s->nlost + s->nvacant == s->W)
            return;
        for (int w = 0; w < s->W; w++) { /* in worker order: the sum is the same every time */
            const size_t i = first + (size_t)w * C;
            if (s->peers[w].lost)
                continue;
            const int full = pt->have[i] == PS_CELL_FULL;
            pt->have[i] = PS_CELL_EMPTY;
            if (!full)
                continue;
            note_staleness(s, pt, k, pt->base[i]);
            s->live[n++] = pt->src[i];
        }
        apply(s, pt, k, s->live, 1, n);
        if (k == 0)
            s->st.barrier_wait_s += pst_now() - pt->first_at[slot];
        for (int w = 0; w < s->W; w++) { /* release the payloads */
            pb_frame_free(&pt->held[first + (size_t)w * C]);
        }
    }
}

/* A payload's floats in place when aligned (zmq allocates large messages with malloc), else
 * copied into copy. */
static const float *payload_floats(const pb_msg *m, float *copy, size_t n) {
    const void *p = m->payload;
    /* ZeroMQ keeps a message of up to 33 bytes inside its own handle, which moves when held:
     * those are copied too. */
    if ((uintptr_t)p % _Alignof(float) == 0 && sizeof(float) * n > 64)
        return p;
    memcpy(copy, p, sizeof(float) * n);
    return copy;
}

/* A sparse push's rows spread into the dense gradient of its slice at copy: zeros where no
 * row lies (pb_recv has checked the rows against the slice and the payload's size). */
static const float *sparse_floats(const pb_msg *m, float *copy) {
    const pb_push *p = &m->push;
    const uint64_t lo = p->slice.offset, hi = lo + p->slice.count;
    const pb_wire wire = (pb_wire)p->coding.wire;
    const char *src = m->payload;
    memset(copy, 0, sizeof(float) * p->slice.count);
    for (size_t i = 0; i < p->nrows; i++) {
        uint64_t a, b;
        pb_row_part(p->rows_from, p->row_len, p->rows[i], lo, hi, &a, &b);
        pb_wire_decode(wire, src, (size_t)(b - a), copy + (a - lo));
        src += pb_wire_size(wire) * (b - a);
    }
    return copy;
}

/* A push's gradient as floats: its payload in place (fp32, dense and aligned), or decoded
 * into copy (rows, bf16, fp16, top-k). NULL with why when a top-k payload's indices are bad. */
static const float *push_floats(const pb_msg *m, float *copy, char *why, size_t whylen) {
    const pb_push *p = &m->push;
    const size_t n = (size_t)p->slice.count;
    if (p->coding.topk)
        return pb_topk_decode((pb_wire)p->coding.wire, m->payload, (size_t)p->coding.nnz, n, copy,
                              0, why, whylen) == PST_OK
                   ? copy
                   : NULL;
    if (p->nrows)
        return sparse_floats(m, copy);
    if (p->coding.wire != PB_WIRE_FP32) {
        pb_wire_decode((pb_wire)p->coding.wire, m->payload, n, copy);
        return copy;
    }
    return payload_floats(m, copy, n);
}

/* A worker's step sent again to a backup that took over (push.resend): chunk k is skipped
 * when the backup has already updated it past that step, or holds that gradient. */
static int resent(const ps_server *s, const ps_part *pt, const pb_push *p, size_t slot, int k) {
    return p->resend &&
           (pt->cver[k] > p->step ||
            pt->have[(slot * (size_t)s->W + p->worker_id) * (size_t)pt->C + (size_t)k]);
}

static int take_push(ps_server *s, const pb_peer *from, pb_msg *m) {
    const pb_push *p = &m->push;
    int rc;
    if (s->standby) { /* a backup serves no worker until it takes over (their hello) */
        char why[128];
        snprintf(why, sizeof why, "push: server %d is a backup that has not taken over",
                 s->cfg.server_id);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    ps_part *pt = ps_request_part(s, from, p->worker_id, p->part, "push", &rc);
    if (!pt)
        return rc;
    char why[256];
    if (p->resend && s->cfg.mode == PS_ASYNC) /* async lets in-flight gradients go */
        return PST_OK;
    /* A push carries a run of whole chunks: one, several, or the whole shard. */
    const uint64_t off = p->slice.offset, cnt = p->slice.count;
    const int k0 = off <= SIZE_MAX ? eng_chunks_find(&pt->chunks, (size_t)off) : -1;
    const int k1 =
        k0 < 0 || cnt == 0 || cnt > pt->n ? -1 : eng_chunks_find(&pt->chunks, off + cnt - 1);
    if (k0 < 0 || k1 < 0 || off != pt->chunks.start[k0] || off + cnt != pt->chunks.start[k1 + 1]) {
        if (pt->C == 1)
            snprintf(
                why, sizeof why,
                "push.slice: expected [%zu, %zu) (this server's shard of part %u), got [%" PRIu64
                ", +%" PRIu64 ")",
                pt->lo, pt->lo + pt->n, p->part, off, cnt);
        else
            snprintf(why, sizeof why,
                     "push.slice: expected whole chunks of this server's %d in [%zu, %zu) (cut "
                     "at layers, at most %zu floats), got [%" PRIu64 ", +%" PRIu64 ")",
                     pt->C, pt->lo, pt->lo + pt->n, s->cfg.chunk, off, cnt);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    const size_t slot = s->slots ? (size_t)(p->step % (uint64_t)s->slots) : 0;
    for (int k = k0; k <= k1 && s->cfg.mode != PS_ASYNC; k++) { /* refuse before changing */
        if (resent(s, pt, p, slot, k))
            continue;
        const uint64_t first = pt->cver[k], last = pt->cver[k] + (uint64_t)s->slots - 1;
        if (p->step < first || p->step > last) {
            snprintf(why, sizeof why,
                     "push.step: expected %" PRIu64 "..%" PRIu64 " (staleness %d), got %" PRIu64,
                     first, last, s->slots - 1, p->step);
            return ps_refuse(s, from, PB_ERR_STATE, why);
        }
        if (pt->have[(slot * (size_t)s->W + p->worker_id) * (size_t)pt->C + (size_t)k]) {
            snprintf(why, sizeof why, "push.step: worker %u already pushed step %" PRIu64,
                     p->worker_id, p->step);
            return ps_refuse(s, from, PB_ERR_STATE, why);
        }
    }
    /* The payload is used in place when aligned (ZeroMQ's usual), else copied once. */
    const size_t plo = (size_t)off - pt->lo;
    float *copy = s->cfg.mode == PS_ASYNC
                      ? pt->scratch + plo
                      : pt->grads + (slot * (size_t)s->W + p->worker_id) * pt->n + plo;
    const float *g = push_floats(m, copy, why, sizeof why);
    if (!g)
        return ps_refuse(s, from, PB_ERR_MALFORMED, why);
    for (int k = k0; k <= k1; k++) {
        const float *gk = g + (pt->chunks.start[k] - (size_t)off);
        if (s->cfg.mode != PS_ASYNC && resent(s, pt, p, slot, k))
            continue;
        if (s->cfg.mode == PS_ASYNC) {
            note_staleness(s, pt, k, p->base_version);
            apply(s, pt, k, &gk, 0, 1);
            continue;
        }
        /* Keep the payload until the chunk's clock is complete: each chunk holds a reference
         * to the one message, no copy. */
        const size_t i = (slot * (size_t)s->W + p->worker_id) * (size_t)pt->C + (size_t)k;
        if (k == 0) { /* the clock's first gradient starts its wait */
            int any = 0;
            for (int w = 0; w < s->W; w++)
                any |= pt->have[(slot * (size_t)s->W + (size_t)w) * (size_t)pt->C];
            if (!any)
                pt->first_at[slot] = pst_now();
        }
        pt->src[i] = gk;
        pb_frame_free(&pt->held[i]);
        if (g != copy)
            pt->held[i] = pb_frame_hold(m);
        pt->have[i] = PS_CELL_FULL;
        pt->base[i] = p->base_version;
        ps_apply_complete_clocks(s, pt, k);
    }
    /* pb_recv has checked the payload's size against the push's rows or coding */
    s->st.bytes_in += (uint64_t)m->payload_bytes;
    if (p->resend) /* counted when the worker said how many steps it had pushed */
        return PST_OK;
    pt->peers[p->worker_id].chunks_pushed += (uint64_t)(k1 - k0 + 1);
    if (p->stop && p->step + 1 < pt->stop_at) /* answers after this step say stopping */
        pt->stop_at = p->step + 1;
    if (k0 != 0) /* a step's push counts once, with its first chunk */
        return PST_OK;
    pt->peers[p->worker_id].pushes++;
    s->st.pushes++;
    return PST_OK;
}

int ps_on_push(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    if (m->push.replica)
        return ps_on_replica_push(s, from, m, err, errlen);
    const int rc = take_push(s, from, m);
    return rc == PST_OK ? ps_answer_pending(s, err, errlen) : rc;
}
