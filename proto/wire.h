/* wire.h: pstrain messages on ZeroMQ sockets: one protobuf Envelope frame, then for Push
 * and PullReply one frame of raw little-endian floats. Only proto/ touches protobuf-c.
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
#include "proto/pstrain.pb-c.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define PB_PROTOCOL_VERSION 1
#define PB_MAX_HEADER 65536 /* bytes: an Envelope is tens of bytes; more is hostile */
#define PB_MAX_IDENTITY 255 /* ZeroMQ routing ids are 1..255 bytes */

/* Error codes carried in ErrorReply.code. */
enum {
    PB_ERR_MALFORMED = 1, /* undecodable, wrong frames or sizes */
    PB_ERR_VERSION = 2,   /* another protocol version */
    PB_ERR_LAYOUT = 3,    /* another model or parameter layout */
    PB_ERR_RANGE = 4,     /* a slice outside the server's shard, a bad worker id */
    PB_ERR_STATE = 5      /* out of order: a push before hello, a step from the past */
};

typedef struct pb_msg {
    uint8_t identity[PB_MAX_IDENTITY + 1]; /* the peer, on a ROUTER socket */
    size_t identity_len;
    Pstrain__Envelope *env; /* decoded header, owned */
    zmq_msg_t payload;      /* the float frame, when has_payload */
    int has_payload;
} pb_msg;

/* Sets the job's token (random, handed out at start; 0 by default): pb_send puts it on every
 * message and pb_recv drops, as PST_ESTRANGER, every message that does not carry it. One
 * job per process; call before any socket is used. */
void pb_set_job_token(uint64_t token);

/* Receives one message into m (router: the socket is a ROUTER and the first frame is the
 * peer's identity). flags: 0 or ZMQ_DONTWAIT. Returns PST_OK, PST_EAGAIN, PST_ESOCKET,
 * PST_EMALFORMED, PST_EVERSION or PST_ESTRANGER (m->identity is then still valid for the reply).
 * Release with pb_msg_clear after any return. */
int pb_recv(void *sock, int router, pb_msg *m, int flags, char *err, size_t errlen);
void pb_msg_clear(pb_msg *m);

/* The part [*a, *b) of row r of a sparse push's tensor (row_len floats a row from
 * rows_from) that lies inside the slice [lo, hi): what the payload carries of that row.
 * Returns 0 when the row misses the slice. Worker and server must agree on it exactly. */
static inline int pb_row_part(uint64_t rows_from, uint64_t row_len, uint64_t r, uint64_t lo,
                              uint64_t hi, uint64_t *a, uint64_t *b) {
    const uint64_t ra = rows_from + r * row_len, rb = ra + row_len;
    *a = ra > lo ? ra : lo;
    *b = rb < hi ? rb : hi;
    return *a < *b;
}

/* The floats a push's payload must hold: slice.count for a dense push; for a sparse one
 * the parts of its rows inside the slice. -1 when the rows are not ascending, a row lies
 * outside the slice or row_len is 0. */
int64_t pb_push_floats(const Pstrain__Push *p);

/* The payload frame's bytes (count floats, possibly unaligned: copy with memcpy). */
const void *pb_msg_payload(const pb_msg *m);

/* Sends env (its protocol field is set here), preceded by identity when non-NULL (ROUTER)
 * and followed by count floats from payload when payload is non-NULL. Returns PST_OK or
 * PST_ESOCKET with err. */
int pb_send(void *sock, const uint8_t *identity, size_t identity_len, Pstrain__Envelope *env,
            const float *payload, size_t count, char *err, size_t errlen);

/* pb_send without the payload's copy: ZeroMQ sends from payload itself, which must stay
 * unchanged until ZeroMQ calls done(payload, hint) from its I/O thread (on failure too). */
int pb_send_borrowed(void *sock, Pstrain__Envelope *env, const float *payload, size_t count,
                     zmq_free_fn *done, void *hint, char *err, size_t errlen);

/* Sends an ErrorReply to identity. */
int pb_send_error(void *sock, const uint8_t *identity, size_t identity_len, uint32_t code,
                  const char *message);

/* The body's name, "push", for logs. */
const char *pb_body_name(const Pstrain__Envelope *env);

#endif
