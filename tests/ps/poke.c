/* poke.c: a stranger's bytes for a running server. Sends ENDPOINT a series of malformed or
 * refused messages on a fresh connection and prints each reply, one line each:
 *
 *   build/tests/pstrain-poke tcp://127.0.0.1:PORT
 *
 * Exit status 0 when every message got an ErrorReply, 1 otherwise. The server must answer
 * each and go on serving its job. */
#include "proto/wire.h"

#include <stdio.h>
#include <string.h>

static int ask(void *sock, const char *what, const void *frame1, size_t len1, const void *frame2,
               size_t len2) {
    zmq_send(sock, frame1, len1, frame2 ? ZMQ_SNDMORE : 0);
    if (frame2)
        zmq_send(sock, frame2, len2, 0);
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 5000) <= 0) {
        printf("%-28s no answer in 5 s\n", what);
        return 1;
    }
    pb_msg m;
    char why[256];
    int rc = pb_recv(sock, 0, &m, 0, why, sizeof why);
    int ok = rc == PB_OK && m.env->body_case == PSTRAIN__ENVELOPE__BODY_ERROR;
    printf("%-28s %s\n", what,
           ok ? m.env->error->message : (rc == PB_OK ? pb_body_name(m.env) : why));
    pb_msg_clear(&m);
    return !ok;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s tcp://HOST:PORT\n", argv[0]);
        return 2;
    }
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
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
    bad += ask(sock, "hello, foreign layout:", buf, n, NULL, 0);

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
    bad += ask(sock, "push without hello:", buf, n, four, sizeof four);
    bad += ask(sock, "push, short payload:", buf, n, four, 3);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return bad ? 1 : 0;
}
