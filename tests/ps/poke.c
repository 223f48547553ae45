/* poke.c: a stranger at a running job's server. On a fresh connection from outside the job
 * it sends malformed messages and well-formed ones that do not carry the job's token (none,
 * or another job's, as a message replayed from that job would), one line each:
 *
 *   build/tests/pstrain-poke tcp://127.0.0.1:PORT
 *
 * Exit status 0 when no message got any answer (an answer would carry the job's token), 1
 * otherwise. The server must drop each, log it, and go on serving its job. */
#include "proto/wire.h"

#include "engine/base/base.h"

#include <stdio.h>
#include <string.h>
#include <zmq.h>

static int ask(void *sock, const char *what, const void *frame1, size_t len1, const void *frame2,
               size_t len2) {
    zmq_send(sock, frame1, len1, frame2 ? ZMQ_SNDMORE : 0);
    if (frame2)
        zmq_send(sock, frame2, len2, 0);
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 500) <= 0) {
        printf("%-34s no answer in 0.5 s\n", what);
        return 0;
    }
    zmq_msg_t part;
    zmq_msg_init(&part);
    zmq_msg_recv(&part, sock, 0);
    printf("%-34s answered (%zu bytes)\n", what, zmq_msg_size(&part));
    zmq_msg_close(&part);
    return 1;
}

/* m encoded with that protocol version and job token, and four floats after it when
 * payload. */
static int ask_msg(void *sock, const char *what, const pb_msg *m, uint32_t protocol, uint64_t job,
                   int payload) {
    const float four[4] = {1e30f, -1e30f, 1e30f, -1e30f};
    size_t n;
    uint8_t *buf = pb_msg_encode(m, protocol, job, &n);
    const int answered = ask(sock, what, buf, n, payload ? four : NULL, sizeof four);
    pst_free(buf);
    return answered;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s tcp://HOST:PORT\n", argv[0]);
        return 2;
    }
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, half = 500; /* ms: against --secure no connection ever comes up, and a
                                 DEALER's send would wait for one forever */
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &half, sizeof half);
    if (zmq_connect(sock, argv[1]) != 0) {
        fprintf(stderr, "pstrain-poke: %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 2;
    }
    int bad = 0;
    bad += ask(sock, "garbage bytes:", "\xff\x01garbage", 9, NULL, 0);

    const uint64_t other = 0x6a6f62206f746865ull; /* another job's token */
    const pb_msg h = {.kind = PB_HELLO,
                      .hello = {.model = "mnist_cnn",
                                .num_workers = 1,
                                .param_count = 225034,
                                .layout_checksum = 0x1234}};
    bad += ask_msg(sock, "protocol version 99:", &h, 99, 0, 0);
    bad += ask_msg(sock, "hello, no token:", &h, PB_PROTOCOL_VERSION, 0, 0);
    bad += ask_msg(sock, "hello from another job:", &h, PB_PROTOCOL_VERSION, other, 0);
    const pb_msg push = {.kind = PB_PUSH, .push = {.slice = {0, 4}}};
    bad += ask_msg(sock, "push, no token:", &push, PB_PROTOCOL_VERSION, 0, 1);
    bad += ask_msg(sock, "push from another job:", &push, PB_PROTOCOL_VERSION, other, 1);
    const pb_msg ping = {.kind = PB_PING}; /* would keep a lost worker counted */
    bad += ask_msg(sock, "ping from another job:", &ping, PB_PROTOCOL_VERSION, other, 0);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return bad ? 1 : 0;
}
