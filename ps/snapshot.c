/* snapshot.c: the shard's whole state for a checkpoint, and restoring it from one. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <stdlib.h>
#include <string.h>

/* The whole shard for a checkpoint: weights, the optimizer's state arrays and each chunk's
 * update count, in one message. Rare, so the payload is simply assembled in a buffer. */
int ps_send_snapshot(ps_server *s, const pb_peer *to, char *err, size_t errlen) {
    const int nslots = eng_optim_nslots(s->cfg.optim.kind);
    float *buf = pst_malloc(sizeof(float) * (size_t)(nslots + 1) * (s->n ? s->n : 1));
    pb_run *runs = pst_calloc((size_t)s->C, sizeof *runs);
    memcpy(buf, s->w, sizeof(float) * s->n);
    for (int i = 0; i < nslots; i++)
        memcpy(buf + (size_t)(i + 1) * s->n, eng_optim_slot(s->opt, i), sizeof(float) * s->n);
    size_t nruns = 0; /* chunks with equal counts in a row make one run */
    for (int k = 0; k < s->C; k++) {
        const uint64_t lo = s->chunks.start[k], n = s->chunks.start[k + 1] - lo;
        if (nruns && runs[nruns - 1].iterations == s->cver[k]) {
            runs[nruns - 1].count += n;
            continue;
        }
        runs[nruns++] = (pb_run){lo, n, s->cver[k]};
    }
    const pb_msg r = {.kind = PB_SNAPSHOT_REPLY,
                      .snapshot_reply = {.shard = {s->lo, s->n},
                                         .nslots = (uint32_t)nslots,
                                         .nruns = nruns,
                                         .runs = runs,
                                         .stopping = ps_stopping(s, ps_shard_version(s))}};
    s->st.bytes_out += sizeof(float) * (size_t)(nslots + 1) * s->n;
    const int rc = pb_send(s->sock, to, &r, buf, (size_t)(nslots + 1) * s->n, err, errlen);
    pst_free(buf);
    pst_free(runs);
    return rc;
}

int ps_on_snapshot(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const pb_snapshot *p = &m->snapshot;
    char why[256];
    if (ps_peer_of(s, from, p->worker_id, "snapshot", why, sizeof why) != 0)
        return ps_refuse(s, from, PB_ERR_STATE, why);
    if (p->min_version <= ps_range_version(s, s->lo, s->n ? s->n : 1))
        return ps_send_snapshot(s, from, err, errlen);
    peer *pr = &s->peers[p->worker_id];
    if (pr->snapshot_waiting) {
        snprintf(why, sizeof why, "snapshot: worker %u already waits for one", p->worker_id);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    pr->snapshot_waiting = 1;
    pending_pull *q = &s->pending[s->npending++];
    memset(q, 0, sizeof *q);
    q->worker_id = p->worker_id;
    q->from = *from;
    q->min_version = p->min_version;
    q->offset = s->lo;
    q->count = s->n ? s->n : 1;
    q->snapshot = 1;
    return PST_OK;
}

int ps_server_restore(ps_server *s, const eng_ckpt *c, char *err, size_t errlen) {
    const eng_layout *lay = &s->cfg.model->layout;
    if (strcmp(c->model, s->cfg.model->def->name) != 0 || c->total != lay->total ||
        c->layout_checksum != eng_layout_checksum(lay))
        return pst_err(err, errlen, PST_EFORMAT,
                       "server %d: checkpoint of %s (%llu parameters), this job trains %s",
                       s->cfg.server_id, c->model, (unsigned long long)c->total,
                       s->cfg.model->def->name);
    if (c->optim.kind != s->cfg.optim.kind || c->nslots != eng_optim_nslots(s->cfg.optim.kind))
        return pst_err(err, errlen, PST_EFORMAT,
                       "server %d: checkpoint's optimizer is %s, this job's %s", s->cfg.server_id,
                       eng_optim_kind_name(c->optim.kind), eng_optim_kind_name(s->cfg.optim.kind));
    memcpy(s->w, c->weights + s->lo, sizeof(float) * s->n);
    for (int i = 0; i < c->nslots; i++)
        memcpy(eng_optim_slot(s->opt, i), c->slots[i] + s->lo, sizeof(float) * s->n);
    /* A chunk takes the count of the run its first float lies in (in sync mode every run has
     * the same count, the job's step). */
    for (int k = 0; k < s->C; k++)
        for (int r = 0; r < c->nruns; r++)
            if (s->chunks.start[k] >= c->runs[r].lo &&
                s->chunks.start[k] - c->runs[r].lo < c->runs[r].n)
                s->cver[k] = (uint64_t)c->runs[r].iterations;
    return PST_OK;
}
