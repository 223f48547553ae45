/* wire.c: framing pstrain messages on ZeroMQ sockets, and the checks on what arrives. */
#include "proto/wire.h"

#include "proto/codec.h"
#include "proto/internal.h"
#include "proto/secure.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The job this process belongs to (one per process): sent on every message and checked on
 * every one received. */
static uint64_t job_token;

void pb_set_job_token(uint64_t token) { job_token = token; }

/* Discards the rest of a multipart message. */
static void drain(void *sock) {
    int more = 1;
    size_t len = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, sock, 0);
        zmq_msg_close(&part);
        len = sizeof more;
    }
}

static int has_more(void *sock) {
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
    return more;
}

/* The slice a received body's payload must match, and how many arrays of slice.count floats
 * it holds. */
static pb_slice payload_slice(const pb_msg *m, uint64_t *arrays) {
    *arrays = 1;
    switch (m->kind) {
    case PB_SNAPSHOT_REPLY:
        *arrays = (uint64_t)m->snapshot_reply.nslots + 1;
        return m->snapshot_reply.shard;
    case PB_PUSH:
        return m->push.slice;
    default:
        return m->pull_reply.slice;
    }
}

/* Checks a push's or a pull answer's payload against its coding: the values' type, and the
 * size of its top-k entries, sparse rows or dense slice (top-k indices are the decoder's to
 * check, pb_topk_decode). */
static int check_coded(const pb_msg *m, const pb_coding *cd, pb_slice slice, char *err,
                       size_t errlen) {
    const uint64_t bytes = m->payload_bytes;
    const char *name = pb_kind_name(m->kind);
    if (cd->wire >= PB_WIRE_END)
        return pst_err(err, errlen, PST_EMALFORMED,
                       "%s.coding.wire: expected 0 (fp32), 1 (bf16) or 2 (fp16), got %u", name,
                       cd->wire);
    const uint64_t size = pb_wire_size((pb_wire)cd->wire);
    const int rows = m->kind == PB_PUSH && m->push.nrows > 0;
    if (cd->topk) {
        if (rows)
            return pst_err(err, errlen, PST_EMALFORMED,
                           "push.coding.topk: expected no push.rows with top-k, got %zu",
                           m->push.nrows);
        if (cd->nnz > slice.count || cd->nnz > SIZE_MAX / 8) /* 8: the most bytes an entry takes */
            return pst_err(err, errlen, PST_EMALFORMED,
                           "%s.coding.nnz: %llu entries in a slice of %llu", name,
                           (unsigned long long)cd->nnz, (unsigned long long)slice.count);
        if (bytes != cd->nnz * (sizeof(uint32_t) + size))
            return pst_err(err, errlen, PST_EMALFORMED,
                           "%s: payload is %llu bytes, %llu top-k entries of %s take %llu", name,
                           (unsigned long long)bytes, (unsigned long long)cd->nnz,
                           pb_wire_name((pb_wire)cd->wire),
                           (unsigned long long)(cd->nnz * (sizeof(uint32_t) + size)));
        return PST_OK;
    }
    if (rows) {
        const int64_t want = pb_push_floats(&m->push);
        if (want < 0)
            return pst_err(
                err, errlen, PST_EMALFORMED,
                "push.rows: expected ascending rows of row_len >= 1 that meet the slice");
        if (bytes != (uint64_t)want * size)
            return pst_err(err, errlen, PST_EMALFORMED,
                           "push: payload is %llu bytes, its %zu rows hold %lld values of %s",
                           (unsigned long long)bytes, m->push.nrows, (long long)want,
                           pb_wire_name((pb_wire)cd->wire));
        return PST_OK;
    }
    if (slice.count > (uint64_t)(SIZE_MAX / sizeof(float)) || bytes != slice.count * size)
        return pst_err(err, errlen, PST_EMALFORMED,
                       "%s: payload is %llu bytes, slice.count says %llu values of %s", name,
                       (unsigned long long)bytes, (unsigned long long)slice.count,
                       pb_wire_name((pb_wire)cd->wire));
    return PST_OK;
}

/* Checks the payload frame m has just received against its body. */
static int check_payload(const pb_msg *m, char *err, size_t errlen) {
    const size_t bytes = m->payload_bytes;
    const char *name = pb_kind_name(m->kind);
    if (m->kind == PB_PUSH)
        return check_coded(m, &m->push.coding, m->push.slice, err, errlen);
    if (m->kind == PB_PULL_REPLY)
        return check_coded(m, &m->pull_reply.coding, m->pull_reply.slice, err, errlen);
    uint64_t arrays;
    const pb_slice slice = payload_slice(m, &arrays);
    if (arrays > 3 || slice.count > (uint64_t)(SIZE_MAX / sizeof(float) / 3) ||
        bytes != arrays * slice.count * sizeof(float))
        return arrays == 1
                   ? pst_err(err, errlen, PST_EMALFORMED,
                             "%s: payload is %lld bytes, slice.count says %lld floats", name,
                             (long long)bytes, (long long)slice.count)
                   : pst_err(err, errlen, PST_EMALFORMED,
                             "%s: payload is %lld bytes, expected %lld arrays of shard.count %lld "
                             "floats",
                             name, (long long)bytes, (long long)arrays, (long long)slice.count);
    return PST_OK;
}

/* The header frame (and the identity frame before it on a ROUTER). */
static int recv_header(void *sock, pb_peer *from, pb_msg *m, int flags, char *err, size_t errlen) {
    zmq_msg_t part;
    if (from) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, flags) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            return e == EAGAIN ? PST_EAGAIN
                               : pst_err(err, errlen, PST_ESOCKET, "receive: %s", zmq_strerror(e));
        }
        from->len = zmq_msg_size(&part) <= PB_MAX_IDENTITY ? zmq_msg_size(&part) : 0;
        memcpy(from->id, zmq_msg_data(&part), from->len);
        zmq_msg_close(&part);
        flags = 0; /* the rest of the message is already here */
        if (!has_more(sock))
            return pst_err(err, errlen, PST_EMALFORMED, "message: no header frame");
    }
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, sock, flags) < 0) {
        int e = errno;
        zmq_msg_close(&part);
        return e == EAGAIN ? PST_EAGAIN
                           : pst_err(err, errlen, PST_ESOCKET, "receive: %s", zmq_strerror(e));
    }
    if (from) /* deprecated in ZeroMQ but kept; a frame that came from a connection has it */
        from->fd = zmq_msg_get(&part, ZMQ_SRCFD);
    uint32_t protocol;
    uint64_t job;
    const int rc =
        pb_msg_decode(zmq_msg_data(&part), zmq_msg_size(&part), m, &protocol, &job, err, errlen);
    zmq_msg_close(&part);
    if (rc == PST_ESTRANGER)
        return rc;
    if (job != job_token)
        return pst_err(err, errlen, PST_ESTRANGER,
                       "job: a %s from outside this job (token %016" PRIx64 ")",
                       pb_kind_name(m->kind), job);
    if (protocol != PB_PROTOCOL_VERSION)
        return pst_err(err, errlen, PST_EVERSION, "protocol: expected version %d, got %u",
                       PB_PROTOCOL_VERSION, protocol);
    return rc;
}

int pb_recv(void *sock, pb_peer *from, pb_msg *m, int flags, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (from) {
        from->len = 0;
        from->fd = -1;
    }
    int rc = recv_header(sock, from, m, flags, err, errlen);
    if (rc == PST_EAGAIN || rc == PST_ESOCKET || (rc == PST_EMALFORMED && !m->owned))
        return rc; /* nothing of the message was read, or nothing is left of it */
    if (rc != PST_OK) {
        drain(sock);
        return rc;
    }
    if (!pb_kind_has_payload(m->kind)) {
        if (has_more(sock)) {
            drain(sock);
            return pst_err(err, errlen, PST_EMALFORMED, "%s: unexpected payload frame",
                           pb_kind_name(m->kind));
        }
        return PST_OK;
    }
    if (!has_more(sock))
        return pst_err(err, errlen, PST_EMALFORMED, "%s: payload frame missing",
                       pb_kind_name(m->kind));
    zmq_msg_init(&m->owned->payload);
    m->owned->has_payload = 1;
    if (zmq_msg_recv(&m->owned->payload, sock, 0) < 0)
        return pst_err(err, errlen, PST_ESOCKET, "receive: %s", zmq_strerror(errno));
    m->payload = zmq_msg_data(&m->owned->payload);
    m->payload_bytes = zmq_msg_size(&m->owned->payload);
    if (has_more(sock)) {
        drain(sock);
        return pst_err(err, errlen, PST_EMALFORMED, "%s: more than two frames",
                       pb_kind_name(m->kind));
    }
    return check_payload(m, err, errlen);
}

/* Encodes m and sends it, preceded by the peer's id (ROUTER) and followed by the payload
 * frame when payload is non-NULL (which this takes: sent or closed). */
static int send_msg(void *sock, const pb_peer *to, const pb_msg *m, zmq_msg_t *payload, char *err,
                    size_t errlen) {
    uint8_t small[PB_SMALL_HEADER], *heap = NULL, *buf = small;
    const size_t len = pb_msg_encode_to(m, PB_PROTOCOL_VERSION, job_token, small, sizeof small);
    if (len > sizeof small) { /* a header of many parts, rows or runs: the heap */
        buf = heap = pst_malloc(len);
        pb_msg_encode_to(m, PB_PROTOCOL_VERSION, job_token, heap, len);
    }
    int rc = 0;
    if (to && zmq_send(sock, to->id, to->len, ZMQ_SNDMORE) < 0)
        rc = -1;
    if (rc == 0 && zmq_send(sock, buf, len, payload ? ZMQ_SNDMORE : 0) < 0)
        rc = -1;
    if (payload && (rc != 0 || zmq_msg_send(payload, sock, 0) < 0)) {
        rc = -1;
        zmq_msg_close(payload); /* a sent message is ZeroMQ's; an unsent one is still ours */
    }
    pst_free(heap);
    if (rc < 0)
        return pst_err(err, errlen, PST_ESOCKET, "send: %s", zmq_strerror(errno));
    return PST_OK;
}

int pb_send_bytes(void *sock, const pb_peer *to, const pb_msg *m, const void *payload, size_t bytes,
                  char *err, size_t errlen) {
    zmq_msg_t msg;
    if (payload) {
        if (zmq_msg_init_size(&msg, bytes) != 0)
            return pst_err(err, errlen, PST_ESOCKET, "send: %s", zmq_strerror(errno));
        if (bytes)
            memcpy(zmq_msg_data(&msg), payload, bytes);
    }
    return send_msg(sock, to, m, payload ? &msg : NULL, err, errlen);
}

int pb_send(void *sock, const pb_peer *to, const pb_msg *m, const float *payload, size_t count,
            char *err, size_t errlen) {
    return pb_send_bytes(sock, to, m, payload, count * sizeof(float), err, errlen);
}

int pb_send_borrowed(void *sock, const pb_msg *m, const float *payload, size_t count,
                     pb_done_fn *done, void *hint, char *err, size_t errlen) {
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, (void *)payload, count * sizeof(float), done, hint) != 0) {
        done((void *)payload, hint);
        return pst_err(err, errlen, PST_ESOCKET, "send: %s", zmq_strerror(errno));
    }
    return send_msg(sock, NULL, m, &msg, err, errlen);
}

int pb_send_error(void *sock, const pb_peer *to, uint32_t code, const char *message) {
    const pb_msg m = {.kind = PB_ERROR, .error = {code, message}};
    return pb_send(sock, to, &m, NULL, 0, NULL, 0);
}

struct pb_frame {
    zmq_msg_t msg;
};

pb_frame *pb_frame_hold(const pb_msg *m) {
    PST_ASSERT(m->owned && m->owned->has_payload, "pb_frame_hold of a %s without a payload",
               pb_kind_name(m->kind));
    pb_frame *f = pst_malloc(sizeof *f);
    zmq_msg_init(&f->msg);
    zmq_msg_copy(&f->msg, &m->owned->payload);
    return f;
}

void pb_frame_free(pb_frame **f) {
    if (!f || !*f)
        return;
    zmq_msg_close(&(*f)->msg);
    pst_free(*f);
    *f = NULL;
}

struct pb_monitor {
    void *watched; /* the socket whose monitor this started (NULL: the guard's) */
    void *sock;    /* a PAIR receiving the events */
};

pb_monitor *pb_monitor_new(void *ctx, void *sock, const pb_guard *guard, char *err, size_t errlen) {
    pb_monitor *m = pst_calloc(1, sizeof *m);
    char addr[64];
    snprintf(addr, sizeof addr, "inproc://pb-monitor-%p", sock); /* one per socket */
    const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED;
    if (pb_guard_conns(guard))
        snprintf(addr, sizeof addr, "%s", pb_guard_conns(guard));
    else if (zmq_socket_monitor(sock, addr, events) != 0) {
        pst_err(err, errlen, PST_ESOCKET, "monitor: %s", zmq_strerror(errno));
        pst_free(m);
        return NULL;
    } else
        m->watched = sock;
    const int zero = 0;
    if (!(m->sock = zmq_socket(ctx, ZMQ_PAIR)) ||
        zmq_setsockopt(m->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(m->sock, addr) != 0) {
        pst_err(err, errlen, PST_ESOCKET, "monitor %s: %s", addr, zmq_strerror(errno));
        pb_monitor_free(&m);
        return NULL;
    }
    return m;
}

void pb_monitor_free(pb_monitor **p) {
    if (!p || !*p)
        return;
    pb_monitor *m = *p;
    if (m->watched)
        zmq_socket_monitor(m->watched, NULL, 0);
    if (m->sock)
        zmq_close(m->sock);
    pst_free(m);
    *p = NULL;
}

void *pb_monitor_socket(const pb_monitor *m) { return m->sock; }

int pb_monitor_next(pb_monitor *m, pb_conn_event *ev) {
    for (;;) {
        /* an event: 2 bytes of its kind and 4 of its value (here the descriptor), then a
         * frame with the endpoint */
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, m->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f);
            return PST_EAGAIN;
        }
        uint16_t kind = 0;
        uint32_t value = 0;
        const int whole = zmq_msg_size(&f) >= 6;
        if (whole) {
            memcpy(&kind, zmq_msg_data(&f), sizeof kind);
            memcpy(&value, (const uint8_t *)zmq_msg_data(&f) + 2, sizeof value);
        }
        zmq_msg_close(&f);
        drain(m->sock);
        if (whole && kind == ZMQ_EVENT_DISCONNECTED) {
            *ev = (pb_conn_event){PB_CONN_CLOSED, (int)value};
            return PST_OK;
        }
        if (whole && (kind == ZMQ_EVENT_ACCEPTED || kind == ZMQ_EVENT_CONNECTED)) {
            *ev = (pb_conn_event){PB_CONN_OPENED, (int)value};
            return PST_OK;
        }
    }
}
