/* heartbeat.c: the heartbeat thread. */
#include "worker/heartbeat.h"

#include "engine/base/base.h"
#include "proto/secure.h"
#include "proto/wire.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct wk_heartbeat {
    void *ctx;
    void **socks; /* (n) DEALERs, used by the thread only */
    const char *const *endpoints, *const *names;
    int n, worker_id;
    double timeout, interval;
    _Atomic double *heard;      /* (n) when each last answered */
    const char *_Atomic *moved; /* (n) a new endpoint for the thread to connect to, or NULL */
    const char **at;            /* (n) where each is now */
    const struct pb_keys *keys;
    atomic_int quit;
    pthread_t thread;
    int started;
};

/* A DEALER to endpoint, or NULL with err. */
static void *connect_to(wk_heartbeat *hb, const char *endpoint, char *err, size_t errlen) {
    void *s = zmq_socket(hb->ctx, ZMQ_DEALER);
    int zero = 0, hwm = 64; /* pings to a silent server pile up no further */
    if (s) {
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    }
    if (s && hb->keys && pb_secure_client(s, hb->keys, err, errlen) != PST_OK) {
        zmq_close(s);
        return NULL;
    }
    if (!s || zmq_connect(s, endpoint) != 0) {
        pst_err(err, errlen, PST_ESOCKET, "worker %d: heartbeats to %s: %s", hb->worker_id,
                endpoint, zmq_strerror(zmq_errno()));
        if (s)
            zmq_close(s);
        return NULL;
    }
    return s;
}

static void *beat(void *arg) {
    wk_heartbeat *hb = arg;
    const pb_msg ping = {.kind = PB_PING, .ping = {(uint32_t)hb->worker_id}};
    zmq_pollitem_t *items = pst_calloc((size_t)hb->n, sizeof *items);
    for (int i = 0; i < hb->n; i++)
        items[i] = (zmq_pollitem_t){hb->socks[i], 0, ZMQ_POLLIN, 0};
    double next = 0.0;
    while (!atomic_load(&hb->quit)) {
        for (int i = 0; i < hb->n; i++) { /* endpoints moved to a shard's copy */
            const char *to = atomic_exchange(&hb->moved[i], NULL);
            void *s = to ? connect_to(hb, to, NULL, 0) : NULL;
            if (!s)
                continue;
            zmq_close(hb->socks[i]);
            items[i].socket = hb->socks[i] = s;
        }
        const double now = pst_now();
        if (now >= next) {
            char err[128];
            for (int i = 0; i < hb->n; i++) /* a full queue (a server long gone) drops it */
                pb_send(hb->socks[i], NULL, &ping, NULL, 0, err, sizeof err);
            next = now + hb->interval;
        }
        if (zmq_poll(items, hb->n, 100) <= 0)
            continue;
        for (int i = 0; i < hb->n; i++) {
            pb_msg m;
            char why[128];
            int rc;
            while ((rc = pb_recv(hb->socks[i], NULL, &m, ZMQ_DONTWAIT, why, sizeof why)) !=
                   PST_EAGAIN) {
                if (rc == PST_OK && m.kind == PB_PONG)
                    atomic_store(&hb->heard[i], pst_now());
                pb_msg_clear(&m);
            }
            pb_msg_clear(&m);
        }
    }
    pst_free(items);
    return NULL;
}

wk_heartbeat *wk_heartbeat_new(const char *const *endpoints, const char *const *names, int n,
                               int worker_id, double peer_timeout, const struct pb_keys *keys,
                               char *err, size_t errlen) {
    wk_heartbeat *hb = pst_calloc(1, sizeof *hb);
    hb->endpoints = endpoints;
    hb->names = names;
    hb->n = n;
    hb->worker_id = worker_id;
    hb->timeout = peer_timeout;
    hb->interval = peer_timeout / 4 < 1.0 ? peer_timeout / 4 : 1.0;
    hb->socks = pst_calloc((size_t)n, sizeof *hb->socks);
    hb->heard = pst_calloc((size_t)n, sizeof *hb->heard);
    hb->moved = pst_calloc((size_t)n, sizeof *hb->moved);
    hb->at = pst_calloc((size_t)n, sizeof *hb->at);
    hb->keys = keys;
    if (!(hb->ctx = zmq_ctx_new())) {
        pst_err(err, errlen, PST_ESOCKET, "worker %d: heartbeats: zmq: %s", worker_id,
                zmq_strerror(zmq_errno()));
        goto fail;
    }
    const double now = pst_now();
    for (int i = 0; i < n; i++) {
        atomic_store(&hb->heard[i], now);
        hb->at[i] = endpoints[i];
        if (!(hb->socks[i] = connect_to(hb, endpoints[i], err, errlen)))
            goto fail;
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
    pst_free(hb->socks);
    pst_free(hb->heard);
    pst_free(hb->moved);
    pst_free(hb->at);
    pst_free(hb);
    *p = NULL;
}

double wk_heartbeat_timeout(const wk_heartbeat *hb) { return hb->timeout; }

int wk_heartbeat_lost_one(const wk_heartbeat *hb, char *why, size_t whylen) {
    if (!hb)
        return -1;
    const double now = pst_now();
    for (int i = 0; i < hb->n; i++) {
        const double silent = now - atomic_load(&hb->heard[i]);
        if (silent > hb->timeout) {
            snprintf(why, whylen,
                     "%s at %s lost: no answer to heartbeats for %.1f s (--peer-timeout %g)",
                     hb->names[i], hb->at[i], silent, hb->timeout);
            return i;
        }
    }
    return -1;
}

int wk_heartbeat_lost(const wk_heartbeat *hb, char *why, size_t whylen) {
    return wk_heartbeat_lost_one(hb, why, whylen) >= 0;
}

void wk_heartbeat_move(wk_heartbeat *hb, int i, const char *endpoint) {
    hb->at[i] = endpoint; /* read by the caller's thread only, for its lines */
    atomic_store(&hb->heard[i], pst_now());
    atomic_store(&hb->moved[i], endpoint);
}
