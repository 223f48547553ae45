/* fuzz_server.c: libFuzzer harness for the parameter server's message handling: decoding
 * (proto/wire.c pb_recv) and dispatch (ps/server.c), through ps_server_poll and a real
 * ZeroMQ connection on loopback.
 *
 * Three servers of mnist_cnn run in this process, one per mode: sync, async and ssp
 * (staleness 2); each has 1 of 1 servers' shard, 2 workers and messages of at most CHUNK
 * floats (16 chunks). A DEALER socket is connected to each and has said Hello as worker 0 and
 * as worker 1, so that pushes, pulls and snapshots from it pass the hello check and reach the
 * deep paths.
 *
 * Input format (one message a input):
 *   byte 0          b: frames = 1 + b % 3, server = (b / 3) % 3 (0 sync, 1 async, 2 ssp)
 *   then            for each frame but the last, its length: 2 bytes, little-endian
 *   then            the frames' bytes in order; the last frame takes what is left (lengths
 *                   past the end are cut to it)
 * The frames go out as one multipart message from that server's DEALER (the server's ROUTER
 * adds the identity frame); the harness then polls the server until it has handled the
 * message and discards the replies. A message the server never handles (5 s) is a finding.
 *
 * State: a server keeps what earlier inputs did (updates applied, pulls waiting, hellos), as
 * a real one does. All three are made afresh every RENEW inputs, and one whose workers have
 * all said Shutdown is made afresh at once, so that a long run keeps reaching the paths of
 * a young server. A crash that needs earlier inputs may therefore not reproduce from its
 * input alone: run the crash file with -runs=1 first, and if it passes, rerun the fuzzer
 * with the same -seed to see the sequence.
 *
 * Seeds: tests/fuzz/corpus/server (valid messages encoded by pb_msg_encode in make_corpus:
 * Hello, dense and sparse Push, PullRequest, SnapshotRequest, StatsRequest, Shutdown, and a
 * few refusals). fuzz_server.h holds the constants make_corpus shares. */
#include "tests/fuzz/fuzz_server.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "proto/wire.h"
#include "ps/server.h"
#include "tests/fuzz/fuzzutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

enum { RENEW = 2000, NSERVERS = 3 };

static eng_model model;
static void *ctx;
static ps_server *servers[NSERVERS];
static void *dealers[NSERVERS];
static long inputs;

/* Discards what has arrived on sock, waiting up to wait_ms for the first part. */
static void drain(void *sock, int wait_ms) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&item, 1, wait_ms) > 0) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            break;
        }
        zmq_msg_close(&part);
        wait_ms = 0;
    }
}

/* Polls server i until it has handled one message. */
static void serve_one(int i) {
    char err[512] = "";
    for (int tries = 0; tries < 50; tries++) {
        const int rc = ps_server_poll(servers[i], 100, err, sizeof err);
        fz_check(rc >= 0, "ps_server_poll: %s", err);
        if (rc == 1)
            return;
    }
    fz_check(0, "server %d handled nothing in 5 s", i);
}

static void send_frames(void *sock, const uint8_t *const *frame, const size_t *len, int n) {
    for (int f = 0; f < n; f++)
        fz_check(zmq_send(sock, frame[f], len[f], f + 1 < n ? ZMQ_SNDMORE : 0) >= 0, "zmq_send: %s",
                 zmq_strerror(zmq_errno()));
}

static void hello(int i, uint32_t worker) {
    const uint64_t sum = eng_layout_checksum(&model.layout);
    const pb_msg h = {.kind = PB_HELLO,
                      .hello = {.worker_id = worker,
                                .num_workers = FZ_SERVER_WORKERS,
                                .model = model.def->name,
                                .param_count = model.layout.total,
                                .layout_checksum = sum,
                                .nparts = 1,
                                .parts = {{"model", model.layout.total, sum}}}};
    char err[256];
    fz_check(pb_send(dealers[i], NULL, &h, NULL, 0, err, sizeof err) == PST_OK, "hello: %s", err);
    serve_one(i);
    drain(dealers[i], 1000);
}

static void start(int i) {
    static const ps_mode modes[NSERVERS] = {PS_SYNC, PS_ASYNC, PS_SSP};
    ps_config cfg = {
        .model = &model,
        .server_id = 0,
        .num_servers = 1,
        .num_workers = FZ_SERVER_WORKERS,
        .mode = modes[i],
        .staleness = modes[i] == PS_SSP ? FZ_SERVER_STALENESS : 0,
        .nparts = 1,
        .parts = {{&model, eng_optim_defaults(ENG_OPT_ADAM), 1}},
        .bind_host = "127.0.0.1",
        .advertise_host = "127.0.0.1",
        .log = NULL,
        .threads = 1,
        .chunk = FZ_SERVER_CHUNK,
    };
    char err[512] = "";
    servers[i] = ps_server_new(&cfg, err, sizeof err);
    fz_check(servers[i] != NULL, "ps_server_new: %s", err);
    dealers[i] = zmq_socket(ctx, ZMQ_DEALER);
    fz_check(dealers[i] != NULL, "zmq_socket: %s", zmq_strerror(zmq_errno()));
    int zero = 0;
    zmq_setsockopt(dealers[i], ZMQ_LINGER, &zero, sizeof zero);
    fz_check(zmq_connect(dealers[i], ps_server_endpoint(servers[i])) == 0, "connect %s: %s",
             ps_server_endpoint(servers[i]), zmq_strerror(zmq_errno()));
    for (uint32_t w = 0; w < FZ_SERVER_WORKERS; w++)
        hello(i, w);
}

static void stop(int i) {
    if (dealers[i])
        zmq_close(dealers[i]);
    dealers[i] = NULL;
    ps_server_free(&servers[i]);
}

static void stop_all(void) {
    for (int i = 0; i < NSERVERS; i++)
        stop(i);
    if (ctx)
        zmq_ctx_term(ctx);
    ctx = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[512];
    fz_check(eng_model_build(&model, eng_model_find(FZ_SERVER_MODEL), err, sizeof err) == PST_OK,
             "%s", err);
    ctx = zmq_ctx_new();
    fz_check(ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
    for (int i = 0; i < NSERVERS; i++)
        start(i);
    atexit(stop_all);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    if (++inputs % RENEW == 0)
        for (int i = 0; i < NSERVERS; i++) {
            stop(i);
            start(i);
        }
    const int nframes = 1 + data[0] % 3, i = (data[0] / 3) % NSERVERS;
    size_t pos = 1, len[3];
    const uint8_t *frame[3];
    for (int f = 0; f + 1 < nframes; f++) {
        len[f] = pos + 2 <= size ? (size_t)data[pos] | (size_t)data[pos + 1] << 8 : 0;
        pos = pos + 2 <= size ? pos + 2 : size;
    }
    for (int f = 0; f < nframes; f++) {
        if (f + 1 == nframes || len[f] > size - pos)
            len[f] = size - pos;
        frame[f] = data + pos;
        pos += len[f];
    }
    send_frames(dealers[i], frame, len, nframes);
    serve_one(i);
    drain(dealers[i], 0);
    if (ps_server_done(servers[i])) {
        stop(i);
        start(i);
    }
    return 0;
}
