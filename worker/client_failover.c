/* client_failover.c: --replicas on the worker's side. When the heartbeats say a server is
 * lost, its connection moves to its shard's copy (the next server's backup): a hello that
 * says how many steps of each part this worker has pushed, then everything the lost server
 * had not answered yet, sent again: the last step's push (the copy skips the chunks it has
 * updated past that step), its pulls, and a reduce, snapshot or counters request. The copy
 * has every update any worker has seen (ps/replica.c), so the job goes on where it was. */
#include "engine/base/base.h"
#include "proto/secure.h"
#include "proto/wire.h"
#include "worker/client_impl.h"
#include "worker/heartbeat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

/* A new connection for server s, to endpoint. */
static int reconnect(wk_client *c, int s, const char *endpoint, char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    /* what the lost server's queue held is dropped, and the pushes lent to it come back */
    zmq_close(sc->sock);
    for (int i = 0; i < sc->nstash; i++)
        pb_msg_clear(&sc->stash[i]);
    sc->nstash = 0;
    sc->endpoint = endpoint;
    sc->moved = 1;
    sc->sock = pb_dealer_new(c->ctx, endpoint, -1, c->keys, err, errlen);
    return sc->sock ? PST_OK : PST_ESOCKET;
}

/* Part p's last step to server s again, chunk by chunk (fp32, dense: the copy never saw the
 * coded or sparse form), and its pulls again when some were outstanding. */
static int resend_part(wk_client *c, int s, int p, char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    conn_part *cp = &sc->parts[p];
    part_step *ps = &c->parts[p];
    const int pulls = cp->waiting > 0;
    cp->waiting = 0;
    for (int k = cp->unsent; k < cp->C; k++) {
        const size_t lo = cp->chunks.start[k], n = cp->chunks.start[k + 1] - lo;
        int rc = PST_OK;
        if (ps->last_grads) {
            const pb_msg m = {.kind = PB_PUSH,
                              .push = {.worker_id = (uint32_t)c->worker_id,
                                       .part = (uint32_t)p,
                                       .step = ps->last_step,
                                       .base_version = ps->last_base,
                                       .slice = {lo, n},
                                       .stop = c->want_stop,
                                       .resend = 1}};
            rc = pb_send(sc->sock, NULL, &m, ps->last_grads + lo, n, err, errlen);
        }
        if (rc == PST_OK && pulls) {
            const pb_msg q = {.kind = PB_PULL,
                              .pull = {.worker_id = (uint32_t)c->worker_id,
                                       .part = (uint32_t)p,
                                       .min_version = ps->min_version,
                                       .slice = {lo, n},
                                       .npushes = ps->settled_pull ? (size_t)c->W : 0,
                                       .pushes = ps->settle_kept,
                                       .wire = ps->settled_pull ? PB_WIRE_FP32 : c->wire,
                                       .topk = ps->settled_pull ? 0.0 : c->topk}};
            rc = pb_send(sc->sock, NULL, &q, NULL, 0, err, errlen);
            cp->waiting++;
        }
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

/* What server s still owed an answer to, asked again of its copy. */
static int ask_again(wk_client *c, int s, char *err, size_t errlen) {
    server_conn *sc = &c->srv[s];
    int rc = PST_OK;
    for (int p = 0; p < c->nparts && rc == PST_OK; p++)
        rc = resend_part(c, s, p, err, errlen);
    if (rc == PST_OK && s == 0 && c->reduce_out) {
        const pb_msg r = {.kind = PB_REDUCE,
                          .reduce = {.worker_id = (uint32_t)c->worker_id,
                                     .op = c->reduce_op,
                                     .round = c->round,
                                     .nvalues = c->reduce_n,
                                     .values = c->reduce_vals}};
        rc = pb_send(sc->sock, NULL, &r, NULL, 0, err, errlen);
    }
    for (int p = 0; p < c->nparts && rc == PST_OK; p++)
        if (sc->ask_snapshot[p]) {
            const pb_msg q = {.kind = PB_SNAPSHOT,
                              .snapshot = {.worker_id = (uint32_t)c->worker_id,
                                           .part = (uint32_t)p,
                                           .min_version = sc->snapshot_min[p]}};
            rc = pb_send(sc->sock, NULL, &q, NULL, 0, err, errlen);
        }
    if (rc == PST_OK && sc->ask_stats) {
        const pb_msg q =
            c->shutting_down
                ? (pb_msg){.kind = PB_SHUTDOWN, .shutdown = {.worker_id = (uint32_t)c->worker_id}}
                : (pb_msg){.kind = PB_STATS_REQUEST, .stats_request = {(uint32_t)c->worker_id}};
        rc = pb_send(sc->sock, NULL, &q, NULL, 0, err, errlen);
    }
    return rc;
}

int wk_client_fail_over(wk_client *c, int s, const char *why, char *err, size_t errlen) {
    if (!c->backups || c->srv[s].moved)
        return pst_err(err, errlen, PST_EPEER, "%s", why);
    const char *to = c->backups[s];
    /* stdout: a line the job goes on after (launch/lib.sh ends a job at a lost server's) */
    printf("worker %d: %s: going on with its shard's copy at %s\n", c->worker_id, why, to);
    fflush(stdout);
    int rc = reconnect(c, s, to, err, errlen);
    pb_msg h = {.kind = PB_HELLO, .hello = c->hello};
    h.hello.npushed = (size_t)c->nparts;
    for (int p = 0; p < c->nparts; p++)
        h.hello.pushed[p] = c->parts[p].pushed;
    if (rc == PST_OK)
        rc = pb_send(c->srv[s].sock, NULL, &h, NULL, 0, err, errlen);
    if (c->hb) /* its heartbeats go there too, and its silence counts from now */
        wk_heartbeat_move(c->hb, s, to);
    if (rc == PST_OK)
        rc = wk_client_take_hello(c, s, err, errlen);
    if (rc == PST_OK)
        rc = ask_again(c, s, err, errlen);
    if (rc != PST_OK)
        return pst_err(err, errlen, PST_EPEER, "%s; its shard's copy at %s could not take over: %s",
                       why, to, err);
    return PST_OK;
}
