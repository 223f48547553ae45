/* heartbeat.c: the heartbeat thread. */
#include "worker/heartbeat.h"

#include "engine/base/base.h"
#include "proto/secure.h"
#include "proto/wire.h"
#include "worker/report/progress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wk_heartbeat {
    void *ctx;
    void **socks; /* (n) DEALERs, used by the thread only */
    const char *const *endpoints, *const *names;
    int n, worker_id;
    double timeout, interval;
    _Atomic double *heard; /* (n) when each last answered */
    atomic_int quit;
    pthread_t thread;
    int started;
};

static void *beat(void *arg) {
    wk_heartbeat *hb = arg;
    Pstrain__Ping ping = PSTRAIN__PING__INIT;
    ping.worker_id = (uint32_t)hb->worker_id;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_PING;
    env.ping = &ping;
    zmq_pollitem_t *items = calloc((size_t)hb->n, sizeof *items);
    if (!items)
        return NULL;
    for (int i = 0; i < hb->n; i++)
        items[i] = (zmq_pollitem_t){hb->socks[i], 0, ZMQ_POLLIN, 0};
    double next = 0.0;
    while (!atomic_load(&hb->quit)) {
        const double now = pst_now();
        if (now >= next) {
            char err[128];
            for (int i = 0; i < hb->n; i++) /* a full queue (a server long gone) drops it */
                pb_send(hb->socks[i], NULL, 0, &env, NULL, 0, err, sizeof err);
            next = now + hb->interval;
        }
        if (zmq_poll(items, hb->n, 100) <= 0)
            continue;
        for (int i = 0; i < hb->n; i++) {
            pb_msg m;
            char why[128];
            while (pb_recv(hb->socks[i], 0, &m, ZMQ_DONTWAIT, why, sizeof why) != PST_EAGAIN) {
                if (m.env && m.env->body_case == PSTRAIN__ENVELOPE__BODY_PONG)
                    atomic_store(&hb->heard[i], pst_now());
                pb_msg_clear(&m);
            }
            pb_msg_clear(&m);
        }
    }
    free(items);
    return NULL;
}

wk_heartbeat *wk_heartbeat_new(const char *const *endpoints, const char *const *names, int n,
                               int worker_id, double peer_timeout, const struct pb_keys *keys,
                               char *err, size_t errlen) {
    wk_heartbeat *hb = calloc(1, sizeof *hb);
    if (!hb)
        return NULL;
    hb->endpoints = endpoints;
    hb->names = names;
    hb->n = n;
    hb->worker_id = worker_id;
    hb->timeout = peer_timeout;
    hb->interval = peer_timeout / 4 < 1.0 ? peer_timeout / 4 : 1.0;
    hb->socks = calloc((size_t)n, sizeof *hb->socks);
    hb->heard = calloc((size_t)n, sizeof *hb->heard);
    hb->ctx = zmq_ctx_new();
    if (!hb->socks || !hb->heard || !hb->ctx) {
        pst_err(err, errlen, PST_ENOMEM, "worker %d: heartbeats: out of memory", worker_id);
        goto fail;
    }
    const double now = pst_now();
    for (int i = 0; i < n; i++) {
        atomic_store(&hb->heard[i], now);
        void *s = hb->socks[i] = zmq_socket(hb->ctx, ZMQ_DEALER);
        int zero = 0, hwm = 64; /* pings to a silent server pile up no further */
        if (s) {
            zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
            zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
        }
        if (s && keys && pb_secure_client(s, keys, err, errlen) != PST_OK)
            goto fail;
        if (!s || zmq_connect(s, endpoints[i]) != 0) {
            pst_err(err, errlen, PST_EIO, "worker %d: heartbeats to %s: %s", worker_id,
                    endpoints[i], zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
    if (pthread_create(&hb->thread, NULL, beat, hb) != 0) {
        pst_err(err, errlen, PST_EIO, "worker %d: cannot start the heartbeat thread", worker_id);
        goto fail;
    }
    hb->started = 1;
    return hb;
fail:
    wk_heartbeat_free(&hb);
    return NULL;
}

void wk_heartbeat_free(wk_heartbeat **p) {
    if (!p || !*p)
        return;
    wk_heartbeat *hb = *p;
    if (hb->started) {
        atomic_store(&hb->quit, 1);
        pthread_join(hb->thread, NULL);
    }
    for (int i = 0; hb->socks && i < hb->n; i++)
        if (hb->socks[i])
            zmq_close(hb->socks[i]);
    if (hb->ctx)
        zmq_ctx_term(hb->ctx);
    free(hb->socks);
    free(hb->heard);
    free(hb);
    *p = NULL;
}

double wk_heartbeat_timeout(const wk_heartbeat *hb) { return hb->timeout; }

int wk_heartbeat_lost(const wk_heartbeat *hb, char *why, size_t whylen) {
    if (!hb)
        return 0;
    const double now = pst_now();
    for (int i = 0; i < hb->n; i++) {
        const double silent = now - atomic_load(&hb->heard[i]);
        if (silent > hb->timeout) {
            snprintf(why, whylen,
                     "%s at %s lost: no answer to heartbeats for %.1f s (--peer-timeout %g)",
                     hb->names[i], hb->endpoints[i], silent, hb->timeout);
            return 1;
        }
    }
    return 0;
}
