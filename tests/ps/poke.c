/* poke.c: a stranger at a running job's server. On a fresh connection from outside the job
 * it sends malformed messages and well-formed ones that do not carry the job's token (none,
 * or another job's, as a message replayed from that job would), one line each:
 *
 *   build/tests/pstrain-poke tcp://127.0.0.1:PORT
 *
 * Exit status 0 when no message got any answer (an answer would carry the job's token), 1
 * otherwise. The server must drop each, log it, and go on serving its job. */
#include "proto/wire.h"

#include <stdio.h>
#include <string.h>

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

    uint8_t buf[512];
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    Pstrain__Hello h = PSTRAIN__HELLO__INIT;
    h.model = "mnist_cnn";
    h.num_workers = 1;
    h.param_count = 225034;
    h.layout_checksum = 0x1234;
    env.body_case = PSTRAIN__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    env.protocol = 99;
    size_t n = pstrain__envelope__pack(&env, buf);
    bad += ask(sock, "protocol version 99:", buf, n, NULL, 0);

    env.protocol = PB_PROTOCOL_VERSION;
    n = pstrain__envelope__pack(&env, buf);
    bad += ask(sock, "hello, no token:", buf, n, NULL, 0);
    env.job = 0x6a6f62206f746865ull; /* another job's */
    n = pstrain__envelope__pack(&env, buf);
    bad += ask(sock, "hello from another job:", buf, n, NULL, 0);

    Pstrain__Slice slice = PSTRAIN__SLICE__INIT;
    slice.count = 4;
    Pstrain__Push p = PSTRAIN__PUSH__INIT;
    p.slice = &slice;
    Pstrain__Envelope push = PSTRAIN__ENVELOPE__INIT;
    push.protocol = PB_PROTOCOL_VERSION;
    push.body_case = PSTRAIN__ENVELOPE__BODY_PUSH;
    push.push = &p;
    n = pstrain__envelope__pack(&push, buf);
    const float four[4] = {1e30f, -1e30f, 1e30f, -1e30f};
    bad += ask(sock, "push, no token:", buf, n, four, sizeof four);
    push.job = 0x6a6f62206f746865ull;
    n = pstrain__envelope__pack(&push, buf);
    bad += ask(sock, "push from another job:", buf, n, four, sizeof four);
    Pstrain__Ping ping = PSTRAIN__PING__INIT; /* would keep a lost worker counted */
    Pstrain__Envelope pe = PSTRAIN__ENVELOPE__INIT;
    pe.protocol = PB_PROTOCOL_VERSION;
    pe.job = 0x6a6f62206f746865ull;
    pe.body_case = PSTRAIN__ENVELOPE__BODY_PING;
    pe.ping = &ping;
    n = pstrain__envelope__pack(&pe, buf);
    bad += ask(sock, "ping from another job:", buf, n, NULL, 0);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return bad ? 1 : 0;
}
