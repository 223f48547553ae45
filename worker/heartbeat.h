/* heartbeat.h: a worker's heartbeats. A thread of its own pings every server once a second
 * on connections of its own, so a worker busy computing (an evaluation, a judge, a long
 * step) is still heard, and it notes each server's Pong and its connection closing (ZeroMQ's
 * socket monitor): a server whose connection was reset and not made again within about a
 * second, or silent for the peer timeout, is lost, and the worker's waits
 * (worker/client.c) give up on it then instead of waiting out --timeout. */
#ifndef PSTRAIN_WORKER_HEARTBEAT_H
#define PSTRAIN_WORKER_HEARTBEAT_H

#include <stddef.h>

typedef struct wk_heartbeat wk_heartbeat;

/* Starts pinging the n endpoints as worker_id; names[i] says what endpoint i is ("server 1",
 * "server 1 (discriminator)"), borrowed like endpoints until wk_heartbeat_free. keys: the
 * job's CURVE keys (NULL: plain). Returns NULL with err when the thread or a socket cannot
 * be made. */
struct pb_keys;
wk_heartbeat *wk_heartbeat_new(const char *const *endpoints, const char *const *names, int n,
                               int worker_id, double peer_timeout, const struct pb_keys *keys,
                               char *err, size_t errlen);
void wk_heartbeat_free(wk_heartbeat **hb);

/* The peer timeout it was started with, in seconds. */
double wk_heartbeat_timeout(const wk_heartbeat *hb);

/* Whether server i (0..n-1) is lost: 1 with one line in why naming it, its endpoint and
 * why ("server 1 at tcp://10.0.0.2:5000 lost: ..."), 0 while it answers. Lost: its
 * connection closed (reset: a killed process's kernel closes its sockets) and could not be
 * made again within about a second, unless this worker has said goodbye; or silent for
 * longer than the peer timeout (a host gone without a reset). 0 for a NULL hb. Thread-safe. */
int wk_heartbeat_server_lost(const wk_heartbeat *hb, int i, char *why, size_t whylen);

/* Whether some server is lost (wk_heartbeat_server_lost of the first one that is); 0 for a
 * NULL hb. Thread-safe. */
int wk_heartbeat_lost(const wk_heartbeat *hb, char *why, size_t whylen);
/* wk_heartbeat_lost that says which: the first silent endpoint's index, or -1. */
int wk_heartbeat_lost_one(const wk_heartbeat *hb, char *why, size_t whylen);

/* Endpoint i is now at endpoint (borrowed until wk_heartbeat_free): --replicas, a server's
 * copy that took its shard over. Its silence counts from now. Thread-safe. */
void wk_heartbeat_move(wk_heartbeat *hb, int i, const char *endpoint);

/* The worker has said goodbye to the servers (its Shutdown was answered): from now on their
 * closing connections are their end, not a loss. Thread-safe; accepts NULL. */
void wk_heartbeat_leave(const wk_heartbeat *hb);

#endif
