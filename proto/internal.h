/* internal.h: what msg.c and wire.c share, and nothing outside proto/ sees: the storage a
 * received message owns (its decoded protobuf-c Envelope and its ZeroMQ payload frame). */
#ifndef PSTRAIN_PROTO_INTERNAL_H
#define PSTRAIN_PROTO_INTERNAL_H

#include "proto/msg.h"
#include "proto/pstrain.pb-c.h"

#include <zmq.h>

struct pb_owned {
    Pstrain__Envelope *env; /* decoded header */
    pb_run *runs;           /* a SnapshotReply's runs, converted */
    zmq_msg_t payload;      /* the payload frame, when has_payload */
    int has_payload;
};

#endif
