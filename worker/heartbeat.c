/* heartbeat.c: the heartbeat thread, and what it knows of each server: when it last
 * answered, and whether its connection closed and has not come back. */
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

/* A server whose connection closed and that is not connected again within this long (s) is
 * lost: ZeroMQ reconnects to a live one after 100 ms (ZMQ_RECONNECT_IVL), while a killed
 * one's host refuses at once. */
#define RESET_GRACE 1.0

struct wk_heartbeat {
    void *ctx;
    void **socks;      /* (n) DEALERs, used by the thread only */
    pb_monitor **mons; /* (n) their connections opening and closing, read by the thread */
    const char *const *endpoints, *const *names;
    int n, worker_id;
    double timeout, interval;
    _Atomic double *heard;      /* (n) when each last answered */
    _Atomic double *closed;     /* (n) when each one's connection closed, not yet back (0: open) */
    atomic_int *left;           /* the worker has said goodbye: servers may close now */
    const char *_Atomic *moved; /* (n) --replicas: a new endpoint to connect to, or NULL */
    const char **at;            /* (n) where each is now (the caller's thread reads it) */
    const struct pb_keys *keys;
    atomic_int quit;
    pthread_t thread;
    int started;
};

/* Server i's DEALER to endpoint and its monitor, into socks[i] and mons[i]: PST_OK, or a code
 * with err (what is made is freed by wk_heartbeat_free). */
static int connect_to(wk_heartbeat *hb, int i, const char *endpoint, char *err, size_t errlen) {
    void *s = hb->socks[i] = zmq_socket(hb->ctx, ZMQ_DEALER);
    int zero = 0, hwm = 64; /* pings to a silent server pile up no further */
    if (s) {
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    }
    if (s && hb->keys && pb_secure_client(s, hb->keys, err, errlen) != PST_OK)
        return PST_ESOCKET;
    if (s && !(hb->mons[i] = pb_monitor_new(hb->ctx, s, NULL, err, errlen)))
        return PST_ESOCKET;
    if (!s || zmq_connect(s, endpoint) != 0)
        return pst_err(err, errlen, PST_ESOCKET, "worker %d: heartbeats to %s: %s", hb->worker_id,
                       endpoint, zmq_strerror(zmq_errno()));
    return PST_OK;
}

/* Notes server i's connection opening and closing. A new connection gets a ping at once: the
 * server knows the worker by what comes on its connections, and one that closed must be
 * followed soon by news on another (ps_watch). */
static void take_conn_events(wk_heartbeat *hb, int i, const pb_msg *ping) {
    pb_conn_event ev;
    while (pb_monitor_next(hb->mons[i], &ev) == PST_OK) {
        if (ev.kind == PB_CONN_CLOSED && atomic_load(&hb->closed[i]) == 0.0)
            atomic_store(&hb->closed[i], pst_now());
        if (ev.kind == PB_CONN_OPENED) {
            char err[128];
            atomic_store(&hb->closed[i], 0.0);
            pb_send(hb->socks[i], NULL, ping, NULL, 0, err, sizeof err);
        }
    }
}

static void *beat(void *arg) {
    wk_heartbeat *hb = arg;
    const pb_msg ping = {.kind = PB_PING, .ping = {(uint32_t)hb->worker_id}};
    const int n = hb->n;
    zmq_pollitem_t *items = pst_calloc(2 * (size_t)n, sizeof *items); /* sockets, monitors */
    for (int i = 0; i < n; i++) {
        items[i] = (zmq_pollitem_t){hb->socks[i], 0, ZMQ_POLLIN, 0};
        items[n + i] = (zmq_pollitem_t){pb_monitor_socket(hb->mons[i]), 0, ZMQ_POLLIN, 0};
    }
    double next = 0.0;
    while (!atomic_load(&hb->quit)) {
        for (int i = 0; i < n; i++) { /* --replicas: server i moved to its shard's copy */
            const char *to = atomic_exchange(&hb->moved[i], NULL);
            if (!to)
                continue;
            pb_monitor_free(&hb->mons[i]); /* before its socket */
            zmq_close(hb->socks[i]);
            hb->socks[i] = NULL;
            char err[256];
            if (connect_to(hb, i, to, err, sizeof err) != PST_OK) /* its silence will say */
                fprintf(stderr, "pstrain: %s\n", err);
            items[i].socket = hb->socks[i];
            items[n + i].socket = hb->mons[i] ? pb_monitor_socket(hb->mons[i]) : NULL;
            atomic_store(&hb->closed[i], 0.0); /* the old connection's news is not this one's */
        }
        const double now = pst_now();
        if (now >= next) {
            char err[128];
            for (int i = 0; i < hb->n; i++) /* a full queue (a server long gone) drops it */
                if (hb->socks[i])
                    pb_send(hb->socks[i], NULL, &ping, NULL, 0, err, sizeof err);
            next = now + hb->interval;
        }
        if (zmq_poll(items, 2 * n, 100) <= 0)
            continue;
        for (int i = 0; i < n; i++)
            if (items[n + i].revents & ZMQ_POLLIN)
                take_conn_events(hb, i, &ping);
        for (int i = 0; i < n; i++) {
            if (!hb->socks[i])
                continue;
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
    hb->closed = pst_calloc((size_t)n, sizeof *hb->closed);
    hb->mons = pst_calloc((size_t)n, sizeof *hb->mons);
    hb->left = pst_calloc(1, sizeof *hb->left);
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
        if (connect_to(hb, i, endpoints[i], err, errlen) != PST_OK)
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
    for (int i = 0; hb->socks && i < hb->n; i++) {
        pb_monitor_free(&hb->mons[i]); /* before its socket */
        if (hb->socks[i])
            zmq_close(hb->socks[i]);
    }
    if (hb->ctx)
        zmq_ctx_term(hb->ctx);
    pst_free(hb->socks);
    pst_free(hb->heard);
    pst_free(hb->closed);
    pst_free(hb->mons);
    pst_free((void *)hb->left);
    pst_free(hb->moved);
    pst_free(hb->at);
    pst_free(hb);
    *p = NULL;
}

double wk_heartbeat_timeout(const wk_heartbeat *hb) { return hb->timeout; }

void wk_heartbeat_leave(const wk_heartbeat *hb) {
    if (hb)
        atomic_store(hb->left, 1);
}

int wk_heartbeat_server_lost(const wk_heartbeat *hb, int i, char *why, size_t whylen) {
    if (!hb)
        return 0;
    PST_ASSERT(i >= 0 && i < hb->n, "server %d of %d", i, hb->n);
    const double now = pst_now(), closed = atomic_load(&hb->closed[i]);
    if (closed > 0.0 && !atomic_load(hb->left) && now - closed >= RESET_GRACE) {
        snprintf(why, whylen,
                 "%s at %s lost: its connection closed %.1f s ago (reset) and could not be "
                 "made again",
                 hb->names[i], hb->at[i], now - closed);
        return 1;
    }
    const double silent = now - atomic_load(&hb->heard[i]);
    if (silent > hb->timeout) {
        snprintf(why, whylen,
                 "%s at %s lost: no answer to heartbeats for %.1f s (--peer-timeout %g)",
                 hb->names[i], hb->at[i], silent, hb->timeout);
        return 1;
    }
    return 0;
}

int wk_heartbeat_lost_one(const wk_heartbeat *hb, char *why, size_t whylen) {
    for (int i = 0; hb && i < hb->n; i++)
        if (wk_heartbeat_server_lost(hb, i, why, whylen))
            return i;
    return -1;
}

int wk_heartbeat_lost(const wk_heartbeat *hb, char *why, size_t whylen) {
    return wk_heartbeat_lost_one(hb, why, whylen) >= 0;
}

void wk_heartbeat_move(wk_heartbeat *hb, int i, const char *endpoint) {
    hb->at[i] = endpoint;
    atomic_store(&hb->heard[i], pst_now());
    atomic_store(&hb->closed[i], 0.0);
    atomic_store(&hb->moved[i], endpoint);
}
