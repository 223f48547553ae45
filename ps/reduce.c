/* reduce.c: the workers' reduce rounds (their control plane, through server 0). */
#include "ps/internal.h"

#include "engine/base/base.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Answers the reduce round once every worker still counted (not lost, not gone) is in:
 * the element-wise op over their values, in worker order. */
int ps_answer_reduce(ps_server *s, char *err, size_t errlen) {
    if (s->red_count == 0)
        return PST_OK;
    for (int w = 0; w < s->W; w++)
        if (!s->peers[w].lost && !s->peers[w].said_goodbye && !s->red_have[w])
            return PST_OK;
    double *acc = s->red_acc;
    uint32_t *ids = s->red_ids;
    size_t nids = 0;
    /* an admission round: the workers waiting to join take part from here (ids ascend) */
    for (int w = 0; w < s->W && s->red_op == PS_REDUCE_ADMIT; w++)
        if (s->peers[w].waiting && s->peers[w].asked) {
            ps_join_admit(s, w);
            s->red_have[w] = 2; /* answered, with no values of its own */
        }
    const uint32_t op = s->red_op == PS_REDUCE_ADMIT ? 1 : s->red_op; /* admission: max */
    for (size_t i = 0; i < s->red_n; i++)
        acc[i] = op == 1 ? -HUGE_VAL : op == 2 ? HUGE_VAL : 0.0;
    for (int w = 0; w < s->W; w++) {
        if (!s->red_have[w])
            continue;
        const double *v = s->red_vals + (size_t)w * PS_REDUCE_MAX;
        for (size_t i = 0; i < s->red_n && s->red_have[w] == 1; i++)
            acc[i] = op == 1   ? (v[i] > acc[i] ? v[i] : acc[i])
                     : op == 2 ? (v[i] < acc[i] ? v[i] : acc[i])
                               : acc[i] + v[i];
        ids[nids++] = (uint32_t)w;
    }
    const pb_msg r = {.kind = PB_REDUCE_REPLY,
                      .reduce_reply = {s->red_round, s->red_n, acc, nids, ids}};
    for (int w = 0; w < s->W; w++) {
        if (!s->red_have[w])
            continue;
        s->red_have[w] = 0;
        const peer *p = &s->peers[w];
        const int rc = p->lost ? PST_OK : pb_send(s->sock, &p->from, &r, NULL, 0, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    s->red_count = 0;
    return PST_OK;
}

int ps_on_reduce(ps_server *s, const pb_peer *from, pb_msg *m, char *err, size_t errlen) {
    const pb_reduce *r = &m->reduce;
    char why[256];
    if (r->op == PS_REDUCE_ADMIT && r->worker_id < (uint32_t)s->W && s->peers[r->worker_id].waiting)
        return ps_join_ask(s, from, m, err, errlen);
    if (ps_peer_of(s, from, r->worker_id, "reduce", why, sizeof why) != PST_OK)
        return ps_refuse(s, from, PB_ERR_STATE, why);
    if (r->op > PS_REDUCE_ADMIT || r->nvalues > PS_REDUCE_MAX) {
        snprintf(why, sizeof why, "reduce: expected op 0..3 and at most %d values, got op %u, %zu",
                 PS_REDUCE_MAX, r->op, r->nvalues);
        return ps_refuse(s, from, PB_ERR_RANGE, why);
    }
    if (s->red_count &&
        (r->round != s->red_round || r->op != s->red_op || r->nvalues != s->red_n)) {
        snprintf(why, sizeof why,
                 "reduce: round %" PRIu64 " (op %u, %zu values) is in progress, got round "
                 "%" PRIu64 " (op %u, %zu values)",
                 s->red_round, s->red_op, s->red_n, r->round, r->op, r->nvalues);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    if (s->red_have[r->worker_id]) {
        snprintf(why, sizeof why, "reduce: worker %u is already in round %" PRIu64, r->worker_id,
                 r->round);
        return ps_refuse(s, from, PB_ERR_STATE, why);
    }
    s->red_round = r->round;
    s->red_op = r->op;
    s->red_n = r->nvalues;
    if (r->nvalues) /* values is NULL when there are none */
        memcpy(s->red_vals + (size_t)r->worker_id * PS_REDUCE_MAX, r->values,
               sizeof(double) * r->nvalues);
    s->red_have[r->worker_id] = 1;
    s->red_count++;
    return ps_answer_reduce(s, err, errlen);
}
