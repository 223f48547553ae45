/* wire.h: pstrain messages (proto/msg.h) on ZeroMQ sockets: one header frame, then for
 * Push, PullReply and SnapshotReply one frame of raw little-endian floats. Roles pass typed
 * messages and float arrays; ZeroMQ's message frames and protobuf-c stay inside proto/.
 *
 * Receiving checks everything a peer controls before it is used: the frame count, the
 * header's size and encoding, the job's token, the protocol version, that a body is set, and that a
 * payload frame is present exactly when the body carries a slice and holds slice.count floats. A
 * message that fails is consumed and reported as PST_EMALFORMED with a reason; the caller
 * answers with an ErrorReply and goes on. A message that cannot be shown to come from the
 * job (undecodable, oversized, another token) is PST_ESTRANGER: the caller logs it and sends
 * nothing back (an answer would carry the job's token). */
#ifndef PSTRAIN_PROTO_WIRE_H
#define PSTRAIN_PROTO_WIRE_H

#include "engine/base/base.h"
#include "proto/msg.h"

#include <stddef.h>
#include <stdint.h>

#define PB_MAX_IDENTITY 255 /* ZeroMQ routing ids are 1..255 bytes */

/* A peer of a ROUTER socket: its routing id, and the connection its message came on. */
typedef struct pb_peer {
    uint8_t id[PB_MAX_IDENTITY + 1];
    size_t len; /* 0: unknown (no answer can reach it) */
    int fd;     /* the connection's descriptor, as pb_monitor names it (-1: unknown) */
} pb_peer;

/* Sets the job's token (random, handed out at start; 0 by default): pb_send puts it on every
 * message and pb_recv drops, as PST_ESTRANGER, every message that does not carry it. One
 * job per process; call before any socket is used. */
void pb_set_job_token(uint64_t token);

/* Receives one message into m (from non-NULL: the socket is a ROUTER, and *from is the
 * peer). flags: 0 or ZMQ_DONTWAIT. Returns PST_OK, PST_EAGAIN, PST_ESOCKET, PST_EMALFORMED,
 * PST_EVERSION or PST_ESTRANGER (*from is then still valid for the reply). On PST_OK a body
 * with a payload has m->payload (m->payload_bytes, possibly unaligned: copy with memcpy or
 * check) of exactly the floats its slice says. Release with pb_msg_clear after any return. */
int pb_recv(void *sock, pb_peer *from, pb_msg *m, int flags, char *err, size_t errlen);

/* Sends m (its protocol and the job's token are added here), to `to` on a ROUTER (NULL on a
 * DEALER), followed by count floats from payload when payload is non-NULL. Returns PST_OK or
 * PST_ESOCKET with err. */
int pb_send(void *sock, const pb_peer *to, const pb_msg *m, const float *payload, size_t count,
            char *err, size_t errlen);

/* pb_send with a payload of any bytes (a coded one: proto/codec.h), copied. */
int pb_send_bytes(void *sock, const pb_peer *to, const pb_msg *m, const void *payload, size_t bytes,
                  char *err, size_t errlen);

/* pb_send (on a DEALER) without the payload's copy: ZeroMQ sends from payload itself, which
 * must stay unchanged until done(payload, hint) is called from ZeroMQ's I/O thread (on
 * failure too). */
typedef void pb_done_fn(void *data, void *hint);
int pb_send_borrowed(void *sock, const pb_msg *m, const float *payload, size_t count,
                     pb_done_fn *done, void *hint, char *err, size_t errlen);

/* Sends an ErrorReply to `to`. */
int pb_send_error(void *sock, const pb_peer *to, uint32_t code, const char *message);

/* A received payload frame kept beyond its message, without a copy (a server holds pushed
 * gradients until their clock is complete). pb_frame_hold: a new reference to m's payload
 * (m must have one); its bytes stay where m->payload points while the frame is held, except
 * for payloads of at most 64 bytes, which ZeroMQ keeps inside the message itself (copy those).
 * pb_frame_free accepts NULL and *f == NULL. */
typedef struct pb_frame pb_frame;
pb_frame *pb_frame_hold(const pb_msg *m);
void pb_frame_free(pb_frame **f);

/* A socket's connections opening and closing (ZeroMQ's socket monitor), so that a peer whose
 * connection was reset (a killed process: its kernel closes its sockets) is known at once,
 * not only after a peer timeout of silence. Events name a connection by its descriptor, as
 * pb_recv's from->fd does. */
typedef enum pb_conn_kind {
    PB_CONN_OPENED = 1, /* accepted (a bound socket) or connected (a connecting one) */
    PB_CONN_CLOSED,     /* closed by the peer or reset; a connecting socket retries on its own */
} pb_conn_kind;
typedef struct pb_conn_event {
    pb_conn_kind kind;
    int fd;
} pb_conn_event;
typedef struct pb_monitor pb_monitor;

/* Starts watching sock's connections (call before its bind or connect, to see them all),
 * with a socket of ctx that the caller polls (pb_monitor_socket) from the thread that reads
 * it. guard: the socket's pb_guard (proto/secure.h), which watches it already, or NULL:
 * ZeroMQ allows one monitor a socket, so the guard's events are taken then. Returns NULL
 * with err when ZeroMQ refuses. */
struct pb_guard;
pb_monitor *pb_monitor_new(void *ctx, void *sock, const struct pb_guard *guard, char *err,
                           size_t errlen);
/* Stops watching (before sock is closed) and closes the monitor's socket; accepts NULL. */
void pb_monitor_free(pb_monitor **m);
/* The socket to poll for ZMQ_POLLIN (borrowed). */
void *pb_monitor_socket(const pb_monitor *m);
/* The next event, without waiting: PST_OK with *ev, or PST_EAGAIN when there is none. */
int pb_monitor_next(pb_monitor *m, pb_conn_event *ev);

#endif
