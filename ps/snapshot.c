/* snapshot.c: the shard's whole state for a checkpoint, and restoring it from one. */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <stdlib.h>
#include <string.h>

/* Part pt's whole shard for a checkpoint: weights, the optimizer's state arrays and each
 * chunk's update count, in one message. Rare, so the payload is simply assembled in a
 * buffer. */
int ps_send_snapshot(ps_server *s, const ps_part *pt, const pb_peer *to, char *err, size_t errlen) {
    const int nslots = eng_optim_nslots(pt->optim.kind);
    float *buf = pst_malloc(sizeof(float) * (size_t)(nslots + 1) * (pt->n ? pt->n : 1));
    pb_run *runs = pst_calloc((size_t)pt->C, sizeof *runs);
    memcpy(buf, pt->w, sizeof(float) * pt->n);
    for (int i = 0; i < nslots; i++)
        memcpy(buf + (size_t)(i + 1) * pt->n, eng_optim_slot(pt->opt, i), sizeof(float) * pt->n);
    size_t nruns = 0; /* chunks with equal counts in a row make one run */
    for (int k = 0; k < pt->C; k++) {
        const uint64_t lo = pt->chunks.start[k], n = pt->chunks.start[k + 1] - lo;
        if (nruns && runs[nruns - 1].iterations == pt->cver[k]) {
            runs[nruns - 1].count += n;
            continue;
        }
        runs[nruns++] = (pb_run){lo, n, pt->cver[k]};
    }
    const pb_msg r = {.kind = PB_SNAPSHOT_REPLY,
                      .snapshot_reply = {.part = (uint32_t)(pt - s->parts),
                                         .shard = {pt->lo, pt->n},
                                         .nslots = (uint32_t)nslots,
                                         .nruns = nruns,
                                         .runs = runs,
                                         .stopping = ps_stopping(pt, ps_shard_version(pt))}};
    s->st.bytes_out += sizeof(float) * (size_t)(nslots + 1) * pt->n;
    const int rc = pb_send(s->sock, to, &r, buf, (size_t)(nslots + 1) * pt->n, err, errlen);
    pst_free(buf);
    pst_free(runs);
    return rc;
}

int ps_on_snapshot(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const pb_snapshot *p = &m->snapshot;
    int rc;
    ps_part *pt = ps_request_part(s, from, p->worker_id, p->part, "snapshot", &rc);
    if (!pt)
        return rc;
    char why[256];
    if (p->min_version <= ps_range_version(pt, pt->lo, pt->n ? pt->n : 1))
        return ps_send_snapshot(s, pt, from, err, errlen);
    peer_part *pr = &pt->peers[p->worker_id];
    if (pr->snapshot_waiting) {
        snprintf(why, sizeof why, "snapshot: worker %u already waits for one of part %u",
                 p->worker_id, p->part);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    pr->snapshot_waiting = 1;
    s->pending[s->npending++] = (pending_pull){.from = *from,
                                               .part = (int)p->part,
                                               .min_version = p->min_version,
                                               .offset = pt->lo,
                                               .count = pt->n ? pt->n : 1,
                                               .worker_id = p->worker_id,
                                               .snapshot = 1};
    return PST_OK;
}

/* Part pt's share of a checkpoint's state of that part: weights (the part's floats: its
 * share [lo, lo + n) of them), the optimizer's arrays and the update counts (runs relative
 * to the part's first float). */
static void restore_part(ps_part *pt, const float *weights, const eng_ckpt_part *cp) {
    memcpy(pt->w, weights + pt->lo, sizeof(float) * pt->n);
    for (int i = 0; i < cp->nslots; i++)
        memcpy(eng_optim_slot(pt->opt, i), cp->slots[i] + pt->lo, sizeof(float) * pt->n);
    /* A chunk takes the count of the run its first float lies in (in sync mode every run has
     * the same count, the job's step). */
    for (int k = 0; k < pt->C; k++) {
        const uint64_t at = pt->chunks.start[k];
        for (int r = 0; r < cp->nruns; r++)
            if (at >= cp->runs[r].lo && at - cp->runs[r].lo < cp->runs[r].n)
                pt->cver[k] = (uint64_t)cp->runs[r].iterations;
    }
}

void ps_server_set_weights(ps_server *s, const float *weights) {
    for (int p = 0; p < s->nparts; p++) {
        ps_part *pt = &s->parts[p];
        memcpy(pt->w, weights + s->cfg.model->parts[p].offset + pt->lo, sizeof(float) * pt->n);
    }
}

int ps_server_restore(ps_server *s, const eng_ckpt *c, char *err, size_t errlen) {
    const eng_model *m = s->cfg.model;
    if (strcmp(c->model, m->def->name) != 0 || c->total != m->layout.total ||
        c->layout_checksum != eng_layout_checksum(&m->layout))
        return pst_err(err, errlen, PST_EFORMAT,
                       "server %d: checkpoint of %s (%llu parameters), this job trains %s",
                       s->cfg.server_id, c->model, (unsigned long long)c->total, m->def->name);
    for (int p = 0; p < s->nparts; p++) {
        ps_part *pt = &s->parts[p];
        const eng_optim_cfg *optim = &c->parts[p].optim;
        const int nslots = c->parts[p].nslots;
        if (optim->kind != pt->optim.kind || nslots != eng_optim_nslots(pt->optim.kind))
            return pst_err(err, errlen, PST_EFORMAT,
                           "server %d: checkpoint's optimizer of %s is %s, this job's %s",
                           s->cfg.server_id, m->parts[p].name, eng_optim_kind_name(optim->kind),
                           eng_optim_kind_name(pt->optim.kind));
    }
    for (int p = 0; p < s->nparts; p++)
        restore_part(&s->parts[p], c->weights + c->parts[p].offset, &c->parts[p]);
    return PST_OK;
}
