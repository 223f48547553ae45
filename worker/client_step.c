/* client_step.c: a step's exchange with the servers, one part at a time: pushes of the
 * gradient's chunks as backward finishes them (dense, or only an embedding's touched rows),
 * each followed by its pull; the pull answers; a part's snapshot for a checkpoint. */
#include "engine/base/base.h"
#include "engine/shard.h"
#include "proto/wire.h"
#include "worker/client.h"
#include "worker/client_impl.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>

int wk_client_pull_settled(wk_client *c, int part, const uint64_t *pushes, char *err,
                           size_t errlen) {
    part_step *ps = &c->parts[part];
    ps->settle = pushes;
    const int rc = wk_client_pull_send(c, part, 0, err, errlen);
    ps->settle = NULL;
    if (!ps->settle_kept) /* for a server's copy that takes over while it is outstanding */
        ps->settle_kept = pst_alloc(sizeof *ps->settle_kept * (size_t)c->W);
    memcpy(ps->settle_kept, pushes, sizeof *ps->settle_kept * (size_t)c->W);
    ps->settled_pull = 1;
    return rc;
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

/* c's buffer for a coded payload, grown to hold bytes. */
static uint8_t *coded_buf(wk_client *c, size_t bytes) {
    if (c->coded_cap < bytes) {
        c->coded = pst_realloc(c->coded, bytes);
        c->coded_cap = bytes;
    }
    return c->coded;
}

/* Whether c codes its pushes and pulls (wk_client_set_coding): not plain fp32. */
static int coded(const wk_client *c) { return c->wire != PB_WIRE_FP32 || c->topk > 0; }

/* The part's residual (error feedback), zeroed at its first use. */
static float *residual(part_step *ps) {
    if (!ps->resid)
        ps->resid = pst_calloc(ps->model.layout.total, sizeof(float));
    return ps->resid;
}

/* Pushes [lo, lo + n) of part's gradient coded as c says: the gradient plus what earlier
 * pushes left out, in bf16 or fp16 values, or its top-k; what this one leaves out stays in
 * the part's residual for the next step. */
static int push_coded(wk_client *c, server_conn *sc, int part, pb_msg *m, size_t lo, size_t n,
                      char *err, size_t errlen) {
    part_step *ps = &c->parts[part];
    float *acc = residual(ps) + lo;
    const float *g = ps->grads + lo;
    for (size_t i = 0; i < n; i++)
        acc[i] += g[i];
    size_t bytes;
    m->push.coding.wire = c->wire;
    if (c->topk > 0) {
        uint8_t *buf = coded_buf(c, pb_topk_bytes(c->wire, pb_topk_cap(n, c->topk)));
        const size_t nnz = pb_topk_encode(c->wire, c->topk, acc, n, buf);
        m->push.coding.topk = 1;
        m->push.coding.nnz = nnz;
        bytes = pb_topk_bytes(c->wire, nnz);
    } else {
        bytes = n * pb_wire_size(c->wire);
        pb_wire_encode_ef(c->wire, acc, n, coded_buf(c, bytes));
    }
    c->bytes_pushed += bytes;
    return pb_send_bytes(sc->sock, NULL, m, c->coded, bytes, err, errlen);
}

/* Codes the nrows gathered rows of a sparse push of [lo, hi) (c->row_vals, nvals values) into
 * out as bf16 or fp16 values, fed back per row: each row part gets what rounding left out of
 * it at its last push, and keeps what this one leaves out until the row is touched again (a
 * residual sent with untouched rows would make the push dense). */
static void code_rows(wk_client *c, part_step *ps, size_t nrows, size_t lo, size_t hi, size_t nvals,
                      void *out) {
    float *resid = residual(ps);
    const wk_sparse_rows *sp = ps->sparse;
    float *v = c->row_vals;
    for (size_t i = 0; i < nrows; i++) {
        uint64_t a, b;
        pb_row_part(sp->from, sp->row_len, c->row_ids[i], lo, hi, &a, &b);
        for (uint64_t j = a; j < b; j++)
            *v++ += resid[j];
    }
    pb_wire_encode_ef(c->wire, c->row_vals, nvals, out);
    v = c->row_vals;
    for (size_t i = 0; i < nrows; i++) {
        uint64_t a, b;
        pb_row_part(sp->from, sp->row_len, c->row_ids[i], lo, hi, &a, &b);
        memcpy(resid + a, v, sizeof(float) * (b - a));
        v += b - a;
    }
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
        size_t nvals = 0; /* top-k is sparse already: it needs no rows */
        const size_t nrows =
            c->topk > 0 ? 0 : gather_rows(c, ps->sparse, ps->grads, lo, lo + n, &nvals);
        int rc;
        if (nrows > 0 && nvals < n) { /* only the touched rows: the rest is 0 */
            m.push.rows_from = ps->sparse->from;
            m.push.row_len = (uint32_t)ps->sparse->row_len;
            m.push.nrows = nrows;
            m.push.rows = c->row_ids;
            m.push.coding.wire = c->wire;
            const size_t bytes = nvals * pb_wire_size(c->wire);
            const void *payload = c->row_vals; /* fp32: the rows as gathered */
            if (c->wire != PB_WIRE_FP32) {
                code_rows(c, ps, nrows, lo, lo + n, nvals, coded_buf(c, bytes));
                payload = c->coded;
            }
            rc = pb_send_bytes(sc->sock, NULL, &m, payload, bytes, err, errlen);
            c->bytes_pushed += bytes;
        } else if (coded(c)) {
            rc = push_coded(c, sc, part, &m, lo, n, err, errlen);
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
                               .pushes = ps->settle,
                               /* the job's final weights come whole */
                               .wire = ps->settle ? PB_WIRE_FP32 : c->wire,
                               .topk = ps->settle ? 0.0 : c->topk}};
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
    ps->settled_pull = 0;
    if (grads) {
        ps->last_grads = grads;
        ps->last_step = step;
        ps->last_base = base_version;
        ps->pushed++;
    }
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

/* A pull answer's weights into params: as sent, or the sent ones moved by its change (a coded
 * answer). */
static int take_weights(wk_client *c, int s, int part, const pb_msg *r, float *params, char *err,
                        size_t errlen) {
    part_step *ps = &c->parts[part];
    const pb_pull_reply *pr = &r->pull_reply;
    const size_t at = (size_t)pr->slice.offset, n = (size_t)pr->slice.count;
    const pb_wire wire = (pb_wire)pr->coding.wire;
    if (!pr->delta && !pr->coding.topk) {
        pb_wire_decode(wire, r->payload, n, params + at);
        if (!ps->sent && coded(c)) /* changes will follow */
            ps->sent = pst_alloc(sizeof(float) * ps->model.layout.total);
        if (ps->sent)
            memcpy(ps->sent + at, params + at, sizeof(float) * n);
        return PST_OK;
    }
    if (!pr->delta)
        return pst_err(err, errlen, PST_EPEER,
                       "server %d at %s: pull_reply.coding.topk of part %d: expected top-k only "
                       "in a change (pull_reply.delta)",
                       s, c->srv[s].endpoint, part);
    if (!ps->sent)
        return pst_err(err, errlen, PST_EPEER,
                       "server %d at %s: pull_reply.delta of part %d: a change before any weights",
                       s, c->srv[s].endpoint, part);
    char why[160];
    if (pr->coding.topk && pb_topk_decode(wire, r->payload, (size_t)pr->coding.nnz, n,
                                          ps->sent + at, 1, why, sizeof why) != PST_OK)
        return pst_err(err, errlen, PST_EPEER, "server %d at %s: pull answer: %s", s,
                       c->srv[s].endpoint, why);
    if (!pr->coding.topk)
        pb_wire_decode_add(wire, r->payload, n, ps->sent + at);
    memcpy(params + at, ps->sent + at, sizeof(float) * n);
    return PST_OK;
}

/* Copies one of server s's pull answers of part (a run of whole chunks) into params. wait 0:
 * PST_EAGAIN when none has arrived. */
static int take_reply(wk_client *c, int s, int part, float *params, int wait, char *err,
                      size_t errlen) {
    server_conn *sc = &c->srv[s];
    conn_part *cp = &sc->parts[part];
    pb_msg r;
    int rc = wk_client_recv(c, s, &r, PB_PULL_REPLY, part, wait, err, errlen);
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
            rc = take_weights(c, s, part, &r, params, err, errlen);
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

void wk_client_step_sparse(wk_client *c, int part, const wk_sparse_rows *sp) {
    c->parts[part].sparse = sp;
}
uint64_t wk_client_bytes_pushed(const wk_client *c) { return c->bytes_pushed; }
const float *wk_client_residual(const wk_client *c, int part) { return c->parts[part].resid; }

/* Takes server s's snapshot of part into weights and *out. */
static int take_snapshot(wk_client *c, int s, int part, float *weights, eng_ckpt_part *out,
                         char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    const conn_part *cp = &sc->parts[part];
    pb_msg r;
    int rc = wk_client_recv(c, s, &r, PB_SNAPSHOT_REPLY, part, 1, err, errlen);
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
        c->srv[s].ask_snapshot[part] = 1;
        c->srv[s].snapshot_min[part] = min_version;
    }
    out->nruns = 0;
    for (int s = 0; s < c->P; s++) {
        const int rc = take_snapshot(c, s, part, weights, out, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}
