/* wire.c: framing, encoding and checking pstrain messages. */
#include "proto/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

int64_t pb_push_floats(const Pstrain__Push *p) {
    if (!p->slice)
        return -1;
    if (p->slice->count > (uint64_t)INT64_MAX)
        return -1;
    if (p->n_rows == 0)
        return (int64_t)p->slice->count;
    const uint64_t lo = p->slice->offset, hi = lo + p->slice->count, len = p->row_len;
    if (len == 0 || hi < lo)
        return -1;
    uint64_t n = 0; /* parts of distinct rows inside the slice: never more than its count */
    for (size_t i = 0; i < p->n_rows; i++) {
        if (i > 0 && p->rows[i] <= p->rows[i - 1])
            return -1;
        uint64_t a, b;
        if (!pb_row_part(p->rows_from, len, p->rows[i], lo, hi, &a, &b))
            return -1; /* a row that misses the slice */
        n += b - a;
        if (n > p->slice->count) /* rows whose offsets wrapped around */
            return -1;
    }
    return (int64_t)n;
}

/* The slice a body carries with a payload, or NULL when it carries none; the payload holds
 * *arrays of slice.count floats. */
static const Pstrain__Slice *payload_slice(const Pstrain__Envelope *env, int *wants,
                                           uint64_t *arrays) {
    *wants = 0;
    *arrays = 1;
    switch (env->body_case) {
    case PSTRAIN__ENVELOPE__BODY_SNAPSHOT_REPLY:
        *wants = 1;
        *arrays = (uint64_t)env->snapshot_reply->nslots + 1;
        return env->snapshot_reply->shard;
    case PSTRAIN__ENVELOPE__BODY_PUSH:
        *wants = 1;
        return env->push->slice;
    case PSTRAIN__ENVELOPE__BODY_PULL_REPLY:
        *wants = 1;
        return env->pull_reply->slice;
    default:
        return NULL;
    }
}

int pb_recv(void *sock, int router, pb_msg *m, int flags, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    zmq_msg_t part;
    if (router) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, flags) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            return e == EAGAIN ? PST_EAGAIN
                               : pst_err(err, errlen, PST_ESOCKET, "receive: %s", zmq_strerror(e));
        }
        m->identity_len = zmq_msg_size(&part) <= PB_MAX_IDENTITY ? zmq_msg_size(&part) : 0;
        memcpy(m->identity, zmq_msg_data(&part), m->identity_len);
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
    const size_t hlen = zmq_msg_size(&part);
    if (hlen > PB_MAX_HEADER) {
        zmq_msg_close(&part);
        drain(sock);
        return pst_err(err, errlen, PST_ESTRANGER, "header: %zu bytes, at most %d", hlen,
                      PB_MAX_HEADER);
    }
    m->env = pstrain__envelope__unpack(NULL, hlen, zmq_msg_data(&part));
    zmq_msg_close(&part);
    if (!m->env) {
        drain(sock);
        return pst_err(err, errlen, PST_ESTRANGER, "header: not a pstrain Envelope");
    }
    if (m->env->job != job_token) {
        drain(sock);
        return pst_err(err, errlen, PST_ESTRANGER,
                      "job: a %s from outside this job (token %016" PRIx64 ")",
                      pb_body_name(m->env), m->env->job);
    }
    if (m->env->protocol != PB_PROTOCOL_VERSION) {
        drain(sock);
        return pst_err(err, errlen, PST_EVERSION, "protocol: expected version %d, got %u",
                      PB_PROTOCOL_VERSION, m->env->protocol);
    }
    if (m->env->body_case == PSTRAIN__ENVELOPE__BODY__NOT_SET) {
        drain(sock);
        return pst_err(err, errlen, PST_EMALFORMED, "body: no message body set");
    }
    int wants;
    uint64_t arrays;
    const Pstrain__Slice *slice = payload_slice(m->env, &wants, &arrays);
    if (!wants) {
        if (has_more(sock)) {
            drain(sock);
            return pst_err(err, errlen, PST_EMALFORMED, "%s: unexpected payload frame",
                          pb_body_name(m->env));
        }
        return PST_OK;
    }
    if (!slice) {
        drain(sock);
        return pst_err(err, errlen, PST_EMALFORMED, "%s.slice: missing", pb_body_name(m->env));
    }
    if (!has_more(sock))
        return pst_err(err, errlen, PST_EMALFORMED, "%s: payload frame missing",
                      pb_body_name(m->env));
    zmq_msg_init(&m->payload);
    m->has_payload = 1;
    if (zmq_msg_recv(&m->payload, sock, 0) < 0)
        return pst_err(err, errlen, PST_ESOCKET, "receive: %s", zmq_strerror(errno));
    const size_t bytes = zmq_msg_size(&m->payload);
    if (has_more(sock)) {
        drain(sock);
        return pst_err(err, errlen, PST_EMALFORMED, "%s: more than two frames", pb_body_name(m->env));
    }
    if (m->env->body_case == PSTRAIN__ENVELOPE__BODY_PUSH && m->env->push->n_rows > 0) {
        const int64_t want = pb_push_floats(m->env->push);
        if (want < 0)
            return pst_err(err, errlen, PST_EMALFORMED,
                          "push.rows: expected ascending rows of row_len >= 1 that meet the slice");
        if (bytes != (uint64_t)want * sizeof(float))
            return pst_err(err, errlen, PST_EMALFORMED,
                          "push: payload is %lld bytes, its %zu rows hold %lld floats",
                          (long long)bytes, m->env->push->n_rows, (long long)want);
        return PST_OK;
    }
    if (arrays > 3 || slice->count > (uint64_t)(SIZE_MAX / sizeof(float) / 3) ||
        bytes != arrays * slice->count * sizeof(float))
        return arrays == 1
                   ? pst_err(err, errlen, PST_EMALFORMED,
                            "%s: payload is %lld bytes, slice.count says %lld floats",
                            pb_body_name(m->env), (long long)bytes, (long long)slice->count)
                   : pst_err(err, errlen, PST_EMALFORMED,
                            "%s: payload is %lld bytes, expected %lld arrays of shard.count %lld "
                            "floats",
                            pb_body_name(m->env), (long long)bytes, (long long)arrays,
                            (long long)slice->count);
    return PST_OK;
}

void pb_msg_clear(pb_msg *m) {
    if (m->env)
        pstrain__envelope__free_unpacked(m->env, NULL);
    m->env = NULL;
    if (m->has_payload)
        zmq_msg_close(&m->payload);
    m->has_payload = 0;
}

const void *pb_msg_payload(const pb_msg *m) {
    return m->has_payload ? zmq_msg_data((zmq_msg_t *)&m->payload) : NULL;
}

/* Packs env and sends it, preceded by identity (ROUTER) and followed by the payload frame
 * when payload is non-NULL. */
static int send_env(void *sock, const uint8_t *identity, size_t identity_len,
                    Pstrain__Envelope *env, zmq_msg_t *payload, char *err, size_t errlen) {
    uint8_t stack[512];
    env->protocol = PB_PROTOCOL_VERSION;
    env->job = job_token;
    const size_t len = pstrain__envelope__get_packed_size(env);
    uint8_t *buf = len <= sizeof stack ? stack : malloc(len);
    if (!buf) {
        if (payload)
            zmq_msg_close(payload);
        return pst_err(err, errlen, PST_ESOCKET, "send: out of memory");
    }
    pstrain__envelope__pack(env, buf);
    int rc = 0;
    if (identity && zmq_send(sock, identity, identity_len, ZMQ_SNDMORE) < 0)
        rc = -1;
    if (rc == 0 && zmq_send(sock, buf, len, payload ? ZMQ_SNDMORE : 0) < 0)
        rc = -1;
    if (payload && (rc != 0 || zmq_msg_send(payload, sock, 0) < 0)) {
        rc = -1;
        zmq_msg_close(payload); /* a sent message is ZeroMQ's; an unsent one is still ours */
    }
    if (buf != stack)
        free(buf);
    if (rc < 0)
        return pst_err(err, errlen, PST_ESOCKET, "send: %s", zmq_strerror(errno));
    return PST_OK;
}

int pb_send(void *sock, const uint8_t *identity, size_t identity_len, Pstrain__Envelope *env,
            const float *payload, size_t count, char *err, size_t errlen) {
    zmq_msg_t msg;
    if (payload) {
        if (zmq_msg_init_size(&msg, count * sizeof(float)) != 0)
            return pst_err(err, errlen, PST_ESOCKET, "send: %s", zmq_strerror(errno));
        memcpy(zmq_msg_data(&msg), payload, count * sizeof(float));
    }
    return send_env(sock, identity, identity_len, env, payload ? &msg : NULL, err, errlen);
}

int pb_send_borrowed(void *sock, Pstrain__Envelope *env, const float *payload, size_t count,
                     zmq_free_fn *done, void *hint, char *err, size_t errlen) {
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, (void *)payload, count * sizeof(float), done, hint) != 0) {
        done((void *)payload, hint);
        return pst_err(err, errlen, PST_ESOCKET, "send: %s", zmq_strerror(errno));
    }
    return send_env(sock, NULL, 0, env, &msg, err, errlen);
}

int pb_send_error(void *sock, const uint8_t *identity, size_t identity_len, uint32_t code,
                  const char *message) {
    Pstrain__ErrorReply e = PSTRAIN__ERROR_REPLY__INIT;
    e.code = code;
    e.message = (char *)message;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.body_case = PSTRAIN__ENVELOPE__BODY_ERROR;
    env.error = &e;
    return pb_send(sock, identity, identity_len, &env, NULL, 0, NULL, 0);
}

const char *pb_body_name(const Pstrain__Envelope *env) {
    switch (env->body_case) {
    case PSTRAIN__ENVELOPE__BODY_HELLO:
        return "hello";
    case PSTRAIN__ENVELOPE__BODY_HELLO_REPLY:
        return "hello_reply";
    case PSTRAIN__ENVELOPE__BODY_PUSH:
        return "push";
    case PSTRAIN__ENVELOPE__BODY_PULL:
        return "pull";
    case PSTRAIN__ENVELOPE__BODY_PULL_REPLY:
        return "pull_reply";
    case PSTRAIN__ENVELOPE__BODY_ERROR:
        return "error";
    case PSTRAIN__ENVELOPE__BODY_SHUTDOWN:
        return "shutdown";
    case PSTRAIN__ENVELOPE__BODY_STATS:
        return "stats";
    case PSTRAIN__ENVELOPE__BODY_SNAPSHOT:
        return "snapshot";
    case PSTRAIN__ENVELOPE__BODY_SNAPSHOT_REPLY:
        return "snapshot_reply";
    case PSTRAIN__ENVELOPE__BODY_STATS_REQUEST:
        return "stats_request";
    case PSTRAIN__ENVELOPE__BODY_PING:
        return "ping";
    case PSTRAIN__ENVELOPE__BODY_PONG:
        return "pong";
    case PSTRAIN__ENVELOPE__BODY_REDUCE:
        return "reduce";
    case PSTRAIN__ENVELOPE__BODY_REDUCE_REPLY:
        return "reduce_reply";
    default:
        return "unknown";
    }
}
