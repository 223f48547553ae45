/* test_server.c: the wire format, and a real parameter server (a child process, ZeroMQ on
 * loopback, an ephemeral port) driven by raw DEALER sockets from this process.
 *
 * The wire: every message type survives pb_send/pb_recv field for field and payload byte
 * for byte, over PAIR (inproc) and DEALER/ROUTER (tcp, with the peer's identity).
 * The server: every kind of hostile or out-of-order message (bad frames, another protocol,
 * another model or layout, a worker id out of range, a push before hello, wrong slices and
 * payload sizes, a step outside the window) is answered with an ErrorReply naming the field,
 * and the server goes on: afterwards its initial weights equal eng_model_init_params bit for
 * bit, one push moves them by exactly one Adam step, and Shutdown reports the refusals and
 * updates counted here. In sync mode with two workers a pull waits for both gradients and
 * the update is Adam on their mean. Coded pushes (bf16, fp16, top-k) are one Adam step on
 * what their payload decodes to, bit for bit; coded pulls are answered first with the
 * weights, then with the change since the worker's view, coded byte for byte as the codec
 * codes it, the view moved by exactly what the worker adds; malformed codings are refused
 * naming the field. A worker that says hello again from 64 new connections,
 * each leaving a pull waiting, must not make the server keep more pulls than it has room for
 * (it did: a heap overflow in on_pull). Every receive has a timeout and notices a dead
 * server, so a hang or a crash fails the test; every child is killed and reaped in the
 * teardowns, and dies with this process. */
#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "proto/codec.h"
#include "proto/pstrain.pb-c.h" /* to forge headers the typed API cannot say */
#include "proto/wire.h"
#include "tests/support/psfork.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zmq.h>

#include <cmocka.h>

enum { TIMEOUT_MS = 5000, QUIET_MS = 300, CNN_TOTAL = 225034 };

/* --- helpers --- */

/* The sockets open, so that a teardown after a failure can close them all (zmq_ctx_term
 * waits for every socket). */
static void *open_socks[80];
static int nopen;

static void *new_socket(void *ctx, int type) {
    assert_true(nopen < (int)(sizeof open_socks / sizeof open_socks[0]));
    void *s = zmq_socket(ctx, type);
    assert_non_null(s);
    open_socks[nopen++] = s;
    const int linger = 0, timeout = TIMEOUT_MS;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    return s;
}

static void *dealer(void *ctx, const char *endpoint) {
    void *s = new_socket(ctx, ZMQ_DEALER);
    if (zmq_connect(s, endpoint) != 0)
        fail_msg("connect %s: %s", endpoint, zmq_strerror(errno));
    return s;
}

static void close_socket(void **s) {
    if (*s) {
        for (int i = 0; i < nopen; i++)
            if (open_socks[i] == *s)
                open_socks[i] = open_socks[--nopen];
        zmq_close(*s);
    }
    *s = NULL;
}

static void close_all(void) {
    while (nopen > 0)
        zmq_close(open_socks[--nopen]);
}

/* Sends m as pb_send does (this process's job token is 0, as the server's). */
static void send_msg(void *sock, const pb_msg *m, const float *payload, size_t count) {
    char err[256] = "";
    if (pb_send(sock, NULL, m, payload, count, err, sizeof err) != PST_OK)
        fail_msg("pb_send: %s", err);
}

/* Sends nframes raw frames as one message. */
static void send_frames(void *sock, int nframes, const void *const *data, const size_t *len) {
    for (int i = 0; i < nframes; i++)
        if (zmq_send(sock, data[i], len[i], i + 1 < nframes ? ZMQ_SNDMORE : 0) < 0)
            fail_msg("zmq_send frame %d: %s", i, zmq_strerror(errno));
}

/* An Envelope packed as it is, protocol included (pb_send would set the protocol). */
static uint8_t *pack_env(const Pstrain__Envelope *env, size_t *len) {
    *len = pstrain__envelope__get_packed_size(env);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    pstrain__envelope__pack(env, buf);
    return buf;
}

/* Sends a forged header (and a payload frame when payload is non-NULL): what the typed API
 * cannot say (no body, no slice, a body only servers send). The protocol is set here. */
static void send_env(void *sock, Pstrain__Envelope *env, const float *payload, size_t count) {
    env->protocol = PB_PROTOCOL_VERSION;
    size_t len;
    uint8_t *buf = pack_env(env, &len);
    const void *f[] = {buf, payload};
    const size_t l[] = {len, count * sizeof(float)};
    send_frames(sock, payload ? 2 : 1, f, l);
    free(buf);
}

static tu_psfork srv; /* the server being talked to */

/* Receives one message within the socket's timeout, or fails naming what we waited for and,
 * when the server has died, how. */
static void recv_msg(void *sock, pb_msg *m, const char *after) {
    char err[256] = "";
    /* Wait in slices, so that a server that died is reported at once. */
    for (int waited = 0; waited < TIMEOUT_MS; waited += 100) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) != 0 || (srv.pid && !tu_psfork_running(&srv)))
            break;
    }
    const int rc = pb_recv(sock, NULL, m, ZMQ_DONTWAIT, err, sizeof err);
    if (rc == PST_EAGAIN && srv.pid && !tu_psfork_running(&srv)) {
        const int ws = srv.wstatus;
        if (WIFSIGNALED(ws))
            fail_msg("no reply after %s: the server was killed by signal %d (%s)", after,
                     WTERMSIG(ws), strsignal(WTERMSIG(ws)));
        fail_msg("no reply after %s: the server exited with status %d", after,
                 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    }
    if (rc == PST_EAGAIN)
        fail_msg("no reply within %d ms after %s", TIMEOUT_MS, after);
    if (rc != PST_OK)
        fail_msg("after %s: pb_recv returned %d: %s", after, rc, err);
}

/* 1 when a message is waiting within ms milliseconds. */
static int readable_within(void *sock, int ms) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    const int r = zmq_poll(&item, 1, ms);
    assert_true(r >= 0);
    return r > 0;
}

/* --- messages --- */

static void send_hello(void *sock, uint32_t worker, uint32_t nworkers, const char *model,
                       uint64_t count, uint64_t checksum) {
    const pb_msg m = {.kind = PB_HELLO,
                      .hello = {.worker_id = worker,
                                .num_workers = nworkers,
                                .model = model,
                                .param_count = count,
                                .layout_checksum = checksum,
                                .nparts = 1,
                                .parts = {{"model", count, checksum}}}};
    send_msg(sock, &m, NULL, 0);
}

/* A push of payload[0..nfloats) for slice [offset, offset + count). */
static void send_push(void *sock, uint32_t worker, uint64_t step, uint64_t base, uint64_t offset,
                      uint64_t count, const float *payload, size_t nfloats) {
    const pb_msg m = {
        .kind = PB_PUSH,
        .push = {
            .worker_id = worker, .step = step, .base_version = base, .slice = {offset, count}}};
    send_msg(sock, &m, payload, nfloats);
}

static void send_pull(void *sock, uint32_t worker, uint64_t min_version, uint64_t offset,
                      uint64_t count) {
    const pb_msg m = {
        .kind = PB_PULL,
        .pull = {.worker_id = worker, .min_version = min_version, .slice = {offset, count}}};
    send_msg(sock, &m, NULL, 0);
}

/* A push of step (its base version the same) for [offset, offset + count) whose payload is
 * len bytes coded as coding says; rows: a sparse push's, or NULL. */
static void send_coded_push(void *sock, uint64_t step, uint64_t offset, uint64_t count,
                            pb_coding coding, const uint32_t *rows, size_t nrows, const void *bytes,
                            size_t len) {
    const pb_msg m = {.kind = PB_PUSH,
                      .push = {.worker_id = 0,
                               .step = step,
                               .base_version = step,
                               .slice = {offset, count},
                               .rows_from = offset,
                               .row_len = rows ? 10 : 0,
                               .nrows = nrows,
                               .rows = rows,
                               .coding = coding}};
    char err[256] = "";
    if (pb_send_bytes(sock, NULL, &m, bytes, len, err, sizeof err) != PST_OK)
        fail_msg("pb_send_bytes: %s", err);
}

/* A pull whose answer is to come coded: values of wire, top-k of that fraction when > 0. */
static void send_coded_pull(void *sock, uint32_t worker, uint64_t min_version, uint64_t offset,
                            uint64_t count, uint32_t wire, double topk) {
    const pb_msg m = {.kind = PB_PULL,
                      .pull = {.worker_id = worker,
                               .min_version = min_version,
                               .slice = {offset, count},
                               .wire = wire,
                               .topk = topk}};
    send_msg(sock, &m, NULL, 0);
}

static void send_shutdown(void *sock, uint32_t worker) {
    const pb_msg m = {.kind = PB_SHUTDOWN, .shutdown = {.worker_id = worker}};
    send_msg(sock, &m, NULL, 0);
}

/* Receives an ErrorReply with code whose message contains needle (NULL: any). */
static void expect_refusal(void *sock, uint32_t code, const char *needle, const char *what) {
    pb_msg m;
    recv_msg(sock, &m, what);
    if (m.kind != PB_ERROR)
        fail_msg("%s: expected an ErrorReply, got %s", what, pb_kind_name(m.kind));
    const pb_error *e = &m.error;
    printf("  %s -> code %u: %s\n", what, e->code, e->message);
    if (e->code != code)
        fail_msg("%s: ErrorReply code %u, expected %u (message: %s)", what, e->code, code,
                 e->message);
    if (needle && !strstr(e->message, needle))
        fail_msg("%s: ErrorReply '%s' does not mention '%s'", what, e->message, needle);
    pb_msg_clear(&m);
}

/* Nothing comes back within 300 ms: what a server sends a message it cannot tie to the job
 * (an answer would carry the job's token). */
static void expect_silence(void *sock, const char *what) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 300) != 0)
        fail_msg("%s: expected no answer, got one", what);
    printf("  %s -> no answer\n", what);
}

/* Receives a PullReply for [offset, offset + count) at version into m (the caller clears
 * it), or fails naming what came instead. */
static void expect_reply(void *sock, uint64_t version, uint64_t offset, uint64_t count, pb_msg *m,
                         const char *what) {
    recv_msg(sock, m, what);
    if (m->kind != PB_PULL_REPLY)
        fail_msg("%s: expected a PullReply, got %s%s%s", what, pb_kind_name(m->kind),
                 m->kind == PB_ERROR ? ": " : "", m->kind == PB_ERROR ? m->error.message : "");
    const pb_pull_reply *r = &m->pull_reply;
    if (r->version != version || r->slice.offset != offset || r->slice.count != count)
        fail_msg("%s: PullReply version %llu [%llu, +%llu), expected %llu [%llu, +%llu)", what,
                 (unsigned long long)r->version, (unsigned long long)r->slice.offset,
                 (unsigned long long)r->slice.count, (unsigned long long)version,
                 (unsigned long long)offset, (unsigned long long)count);
}

/* A reply's coding and delta are what is expected, and its payload has their size. */
static void expect_coding(const pb_msg *m, int delta, pb_wire wire, int topk, const char *what) {
    const pb_pull_reply *r = &m->pull_reply;
    if (r->delta != delta || r->coding.wire != (uint32_t)wire || (r->coding.topk != 0) != topk)
        fail_msg("%s: PullReply delta %d, wire %u, topk %d; expected delta %d, wire %u, topk %d",
                 what, r->delta, r->coding.wire, r->coding.topk, delta, (unsigned)wire, topk);
    const size_t want = topk ? pb_topk_bytes(wire, (size_t)r->coding.nnz)
                             : (size_t)r->slice.count * pb_wire_size(wire);
    if (m->payload_bytes != want)
        fail_msg("%s: payload of %zu bytes, expected %zu", what, m->payload_bytes, want);
}

/* Receives a PullReply for [offset, offset + count) at version, the weights themselves in
 * fp32 (what an fp32 pull, or a worker's first coded one, is answered with), and copies its
 * payload. */
static void expect_weights(void *sock, uint64_t version, uint64_t offset, uint64_t count,
                           float *out, const char *what) {
    pb_msg m;
    expect_reply(sock, version, offset, count, &m, what);
    expect_coding(&m, 0, PB_WIRE_FP32, 0, what);
    memcpy(out, m.payload, sizeof(float) * (size_t)count);
    pb_msg_clear(&m);
}

/* Bit-for-bit equality of two float vectors; names the first difference. */
static void expect_bits(const float *got, const float *want, size_t n, const char *what) {
    if (memcmp(got, want, sizeof(float) * n) == 0)
        return;
    size_t i = 0;
    while (memcmp(&got[i], &want[i], sizeof(float)) == 0)
        i++;
    fail_msg("%s: element %zu is %.9g, expected %.9g (bit for bit)", what, i, (double)got[i],
             (double)want[i]);
}

static void build_cnn(eng_model *m) {
    char err[256] = "";
    const eng_model_def *def = eng_model_find("mnist_cnn");
    assert_non_null(def);
    if (eng_model_build(m, def, err, sizeof err) != PST_OK)
        fail_msg("eng_model_build: %s", err);
    assert_int_equal(m->layout.total, CNN_TOTAL);
}

/* The seed-1 initial weights and their image after one Adam step (t = 1) on g. */
static void adam_once(const eng_model *m, const float *g, float *w0, float *w1) {
    const size_t n = m->layout.total;
    eng_model_init_params(m, w0, 1);
    memcpy(w1, w0, sizeof(float) * n);
    float *mm = calloc(n, sizeof(float)), *vv = calloc(n, sizeof(float));
    assert_non_null(mm);
    assert_non_null(vv);
    const eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    eng_adam_update(w1, mm, vv, g, n, 1, &cfg);
    free(mm);
    free(vv);
}

static float *gradient(size_t n, uint64_t seed) {
    float *g = tu_random_floats(n, -1e-3f, 1e-3f, seed);
    assert_non_null(g);
    return g;
}

static void start_server(tu_psfork *f, int num_workers) {
    char err[640] = "";
    tu_psfork_cfg cfg = tu_psfork_defaults();
    cfg.num_workers = num_workers;
    if (tu_psfork_start(f, &cfg, err, sizeof err) != 0)
        fail_msg("%s", err);
    printf("  server pid %d at %s, %d worker(s)\n", (int)f->pid, f->endpoint, num_workers);
}

static void expect_exit_0(tu_psfork *f) {
    char err[256] = "";
    const int rc = tu_psfork_wait(f, 5.0, err, sizeof err);
    if (rc != 0)
        fail_msg("the server exited with %d %s", rc, err);
}

/* ===================== the wire, without a server ===================== */

static void *wctx;

static int wire_setup(void **state) {
    (void)state;
    wctx = zmq_ctx_new();
    return wctx ? 0 : -1;
}

static int wire_teardown(void **state) {
    (void)state;
    close_all();
    zmq_ctx_term(wctx);
    wctx = NULL;
    return 0;
}

#define NPAY 1000

/* Floats whose bits must survive: signed zero, infinities, a NaN with payload, denormals. */
static void payload_pattern(float *p) {
    for (int i = 0; i < NPAY; i++)
        p[i] = (float)i * 0.37f - 100.0f;
    const uint32_t nan_bits = 0x7fc12345u, denorm_bits = 0x00000003u;
    p[0] = -0.0f;
    p[1] = INFINITY;
    p[2] = -INFINITY;
    memcpy(&p[3], &nan_bits, 4);
    memcpy(&p[4], &denorm_bits, 4);
    p[NPAY - 1] = 3.4028235e38f;
}

/* One message of each kind, with values that use all 64 bits where the field has them. */
static const uint64_t per_worker[3] = {0, 1ull << 50, 3};
static const uint32_t sample_rows[2] = {0, 1};
static const uint64_t sample_pushes[3] = {7, 1ull << 40, 0};
static const pb_run sample_runs[2] = {{(1ull << 40) + 7, 400, 12},
                                      {(1ull << 40) + 407, 600, 1ull << 62}};
static const double sample_values[3] = {-0.0, 1e300, 2.5};
static const uint32_t sample_workers[2] = {0, 4000000000u};

static const pb_kind kinds[] = {
    PB_HELLO,         PB_HELLO_REPLY, PB_PUSH,  PB_PULL,     PB_PULL_REPLY,
    PB_ERROR,         PB_SHUTDOWN,    PB_STATS, PB_SNAPSHOT, PB_SNAPSHOT_REPLY,
    PB_STATS_REQUEST, PB_PING,        PB_PONG,  PB_REDUCE,   PB_REDUCE_REPLY,
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static pb_msg sample(pb_kind kind) {
    const pb_slice sl = {(1ull << 40) + 7, NPAY};
    pb_msg m = {.kind = kind};
    switch (kind) {
    case PB_HELLO:
        m.hello =
            (pb_hello){.worker_id = 4000000000u,
                       .num_workers = 4000000001u,
                       .model = "mnist_gan",
                       .param_count = 225034,
                       .layout_checksum = 0xfedcba9876543210ull,
                       .nparts = 2,
                       .parts = {{"generator", 1ull << 41, 1}, {"discriminator", 5, UINT64_MAX}},
                       .npushed = 2,
                       .pushed = {UINT64_MAX, 7},
                       .join = PB_JOIN_ADMITTED};
        break;
    case PB_HELLO_REPLY:
        m.hello_reply = (pb_hello_reply){.server_id = 3,
                                         .nparts = 2,
                                         .shards = {sl, {9, 1ull << 35}},
                                         .version = UINT64_MAX,
                                         .chunk = 16384,
                                         .worker_id = 4000000002u};
        break;
    case PB_PUSH: /* sparse: its payload is the two rows of 500 inside the slice */
        m.push = (pb_push){.worker_id = 2,
                           .part = 1,
                           .step = UINT64_MAX - 1,
                           .base_version = 0x8000000000000001ull,
                           .slice = sl,
                           .rows_from = sl.offset,
                           .row_len = 500,
                           .nrows = 2,
                           .rows = sample_rows,
                           .stop = 1,
                           .replica = 1,
                           .stop_at = 1ull << 62,
                           .resend = 1};
        break;
    case PB_PULL:
        m.pull = (pb_pull){.worker_id = 1,
                           .part = 4000000000u,
                           .min_version = 1ull << 63,
                           .slice = sl,
                           .npushes = 3,
                           .pushes = sample_pushes};
        break;
    case PB_PULL_REPLY:
        m.pull_reply =
            (pb_pull_reply){.part = 1, .version = 123456789012345ull, .slice = sl, .stopping = 1};
        break;
    case PB_ERROR:
        m.error =
            (pb_error){PB_ERR_RANGE, "pull.slice: expected a range inside [0, 112517) \xc3\xa9"};
        break;
    case PB_SHUTDOWN:
        m.shutdown = (pb_shutdown){9, 1, "out of \xc3\xa9nergy", 1};
        break;
    case PB_STATS:
        m.stats = (pb_stats){.server_id = 1,
                             .updates = 1ull << 33,
                             .pushes = 5,
                             .pulls = 6,
                             .bytes_in = UINT64_MAX,
                             .bytes_out = 8,
                             .errors = 9,
                             .max_staleness = 10,
                             .mean_staleness = 2.75,
                             .nworkers = 3,
                             .pushes_per_worker = per_worker,
                             .barrier_wait_s = 1.5,
                             .strangers = 11,
                             .lost_workers = 2,
                             .copies = 1};
        break;
    case PB_SNAPSHOT:
        m.snapshot = (pb_snapshot){7, 1, UINT64_MAX};
        break;
    case PB_SNAPSHOT_REPLY: /* weights and one optimizer array: 2 x NPAY / 2 floats */
        m.snapshot_reply = (pb_snapshot_reply){.part = 1,
                                               .shard = {sl.offset, NPAY / 2},
                                               .nslots = 1,
                                               .nruns = 2,
                                               .runs = sample_runs,
                                               .stopping = 1};
        break;
    case PB_STATS_REQUEST:
        m.stats_request = (pb_stats_request){5};
        break;
    case PB_PING:
        m.ping = (pb_ping){4000000000u};
        break;
    case PB_PONG:
        m.pong = (pb_pong){3};
        break;
    case PB_REDUCE:
        m.reduce = (pb_reduce){
            .worker_id = 1, .op = 2, .round = 1ull << 60, .nvalues = 3, .values = sample_values};
        break;
    case PB_REDUCE_REPLY:
        m.reduce_reply = (pb_reduce_reply){1ull << 60, 3, sample_values, 2, sample_workers};
        break;
    case PB_REPLICA_ACK:
        m.replica_ack = (pb_replica_ack){1, 1ull << 40, UINT64_MAX - 3};
        break;
    default:
        fail_msg("no sample for kind %d", (int)kind);
    }
    return m;
}

/* Fields of the message got, received, against the one sent, want: every field of every
 * kind, one by one (integers as integers, doubles bit for bit, strings and arrays by their
 * contents), so that a field the encoder or decoder drops shows here. */
#define SAME(f) assert_int_equal(got->f, want->f)
#define SAME_BITS(f) assert_memory_equal(&got->f, &want->f, sizeof want->f)
#define SAME_STR(f) assert_string_equal(got->f, want->f)
#define SAME_SLICE(f) (SAME(f.offset), SAME(f.count))
#define SAME_ARRAY(n, a)                                                                           \
    do {                                                                                           \
        SAME(n);                                                                                   \
        if (want->n)                                                                               \
            assert_memory_equal(got->a, want->a, want->n * sizeof *want->a);                       \
    } while (0)
static void expect_same(const pb_msg *got, const pb_msg *want) {
    const char *what = pb_kind_name(want->kind);
    if (got->kind != want->kind)
        fail_msg("%s: came back as %s", what, pb_kind_name(got->kind));
    switch (want->kind) {
    case PB_HELLO:
        SAME(hello.worker_id), SAME(hello.num_workers), SAME_STR(hello.model);
        SAME(hello.param_count), SAME(hello.layout_checksum), SAME(hello.nparts);
        for (size_t i = 0; i < want->hello.nparts; i++) {
            SAME_STR(hello.parts[i].name);
            SAME(hello.parts[i].param_count), SAME(hello.parts[i].layout_checksum);
        }
        SAME(hello.npushed), SAME(hello.join);
        for (size_t i = 0; i < want->hello.npushed; i++)
            SAME(hello.pushed[i]);
        break;
    case PB_HELLO_REPLY:
        SAME(hello_reply.server_id), SAME(hello_reply.nparts);
        for (size_t i = 0; i < want->hello_reply.nparts; i++)
            SAME_SLICE(hello_reply.shards[i]);
        SAME(hello_reply.version), SAME(hello_reply.chunk), SAME(hello_reply.worker_id);
        break;
    case PB_PUSH:
        SAME(push.worker_id), SAME(push.part), SAME(push.step), SAME(push.base_version);
        SAME_SLICE(push.slice), SAME(push.rows_from), SAME(push.row_len);
        SAME_ARRAY(push.nrows, push.rows);
        SAME(push.stop), SAME(push.replica), SAME(push.stop_at), SAME(push.resend);
        break;
    case PB_PULL:
        SAME(pull.worker_id), SAME(pull.part), SAME(pull.min_version), SAME_SLICE(pull.slice);
        SAME_ARRAY(pull.npushes, pull.pushes);
        break;
    case PB_PULL_REPLY:
        SAME(pull_reply.part), SAME(pull_reply.version), SAME_SLICE(pull_reply.slice);
        SAME(pull_reply.stopping);
        break;
    case PB_ERROR:
        SAME(error.code), SAME_STR(error.message);
        break;
    case PB_SHUTDOWN:
        SAME(shutdown.worker_id), SAME(shutdown.failed), SAME_STR(shutdown.reason);
        SAME(shutdown.replica);
        break;
    case PB_STATS:
        SAME(stats.server_id), SAME(stats.updates), SAME(stats.pushes), SAME(stats.pulls);
        SAME(stats.copies);
        SAME(stats.bytes_in), SAME(stats.bytes_out), SAME(stats.errors);
        SAME(stats.max_staleness), SAME_BITS(stats.mean_staleness);
        SAME_ARRAY(stats.nworkers, stats.pushes_per_worker);
        SAME_BITS(stats.barrier_wait_s), SAME(stats.strangers), SAME(stats.lost_workers);
        break;
    case PB_SNAPSHOT:
        SAME(snapshot.worker_id), SAME(snapshot.part), SAME(snapshot.min_version);
        break;
    case PB_SNAPSHOT_REPLY:
        SAME(snapshot_reply.part), SAME_SLICE(snapshot_reply.shard), SAME(snapshot_reply.nslots);
        SAME(snapshot_reply.nruns);
        for (size_t i = 0; i < want->snapshot_reply.nruns; i++) {
            SAME(snapshot_reply.runs[i].offset), SAME(snapshot_reply.runs[i].count);
            SAME(snapshot_reply.runs[i].iterations);
        }
        SAME(snapshot_reply.stopping);
        break;
    case PB_STATS_REQUEST:
        SAME(stats_request.worker_id);
        break;
    case PB_PING:
        SAME(ping.worker_id);
        break;
    case PB_PONG:
        SAME(pong.server_id);
        break;
    case PB_REDUCE:
        SAME(reduce.worker_id), SAME(reduce.op), SAME(reduce.round);
        SAME_ARRAY(reduce.nvalues, reduce.values); /* bit for bit: -0.0 stays -0.0 */
        break;
    case PB_REDUCE_REPLY:
        SAME(reduce_reply.round);
        SAME_ARRAY(reduce_reply.nvalues, reduce_reply.values);
        SAME_ARRAY(reduce_reply.nworkers, reduce_reply.workers);
        break;
    case PB_REPLICA_ACK:
        SAME(replica_ack.part), SAME(replica_ack.offset), SAME(replica_ack.version);
        break;
    default:
        fail_msg("%s: no field check for this kind", what);
    }
}
#undef SAME
#undef SAME_BITS
#undef SAME_STR
#undef SAME_SLICE
#undef SAME_ARRAY

/* Sends the sample of `kind` from `from` (to the peer `to` on a ROUTER) and receives it on
 * `at` (a ROUTER when want_from is non-NULL); checks fields, payload and the peer. */
static void round_trip(void *from, const pb_peer *to, void *at, const pb_peer *want_from,
                       pb_kind kind) {
    const pb_msg s = sample(kind);
    float pay[NPAY];
    payload_pattern(pay);
    const int with = pb_kind_has_payload(kind);
    char err[256] = "";
    if (pb_send(from, to, &s, with ? pay : NULL, with ? NPAY : 0, err, sizeof err) != PST_OK)
        fail_msg("pb_send %s: %s", pb_kind_name(kind), err);
    pb_msg m;
    pb_peer peer;
    const int rc = pb_recv(at, want_from ? &peer : NULL, &m, 0, err, sizeof err);
    if (rc != PST_OK)
        fail_msg("pb_recv %s: %d: %s", pb_kind_name(kind), rc, err);
    expect_same(&m, &s);
    if (with) {
        assert_int_equal(m.payload_bytes, sizeof pay);
        assert_memory_equal(m.payload, pay, sizeof pay);
    } else
        assert_null(m.payload);
    if (want_from) {
        assert_int_equal(peer.len, want_from->len);
        assert_memory_equal(peer.id, want_from->id, want_from->len);
    }
    pb_msg_clear(&m);
    pb_msg_clear(&m); /* idempotent */
}

static void wire_round_trip_pair(void **state) {
    (void)state;
    void *a = new_socket(wctx, ZMQ_PAIR), *b = new_socket(wctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(a, "inproc://pstrain-wire"), 0);
    assert_int_equal(zmq_connect(b, "inproc://pstrain-wire"), 0);
    for (size_t i = 0; i < NKINDS; i++) {
        round_trip(a, NULL, b, NULL, kinds[i]);
        round_trip(b, NULL, a, NULL, kinds[i]);
    }
    /* Nothing left over, and a non-blocking receive says so. */
    pb_msg m;
    char err[64];
    assert_int_equal(pb_recv(b, NULL, &m, ZMQ_DONTWAIT, err, sizeof err), PST_EAGAIN);
    pb_msg_clear(&m);
    close_socket(&a);
    close_socket(&b);
}

/* A DEALER with routing id `id` connected to a ROUTER on tcp loopback. */
static void dealer_router(void **d, void **r, const uint8_t *id, size_t idlen) {
    *r = new_socket(wctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(*r, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t len = sizeof ep;
    assert_int_equal(zmq_getsockopt(*r, ZMQ_LAST_ENDPOINT, ep, &len), 0);
    *d = new_socket(wctx, ZMQ_DEALER);
    assert_int_equal(zmq_setsockopt(*d, ZMQ_ROUTING_ID, id, idlen), 0);
    assert_int_equal(zmq_connect(*d, ep), 0);
}

static void wire_round_trip_dealer_router(void **state) {
    (void)state;
    static const uint8_t id[] = "worker-7";
    void *d, *r;
    dealer_router(&d, &r, id, sizeof id - 1);
    pb_peer peer = {.len = sizeof id - 1};
    memcpy(peer.id, id, sizeof id - 1);
    for (size_t i = 0; i < NKINDS; i++) {
        round_trip(d, NULL, r, &peer, kinds[i]);
        round_trip(r, &peer, d, NULL, kinds[i]);
    }
    close_socket(&d);
    close_socket(&r);
}

/* ZeroMQ allows routing ids of 1..255 bytes and pb_msg holds PB_MAX_IDENTITY (255) of them:
 * a peer with the longest id must still be answerable. */
static void wire_identity_of_255_bytes(void **state) {
    (void)state;
    uint8_t id[PB_MAX_IDENTITY];
    for (size_t i = 0; i < sizeof id; i++)
        id[i] = (uint8_t)('a' + i % 26);
    void *d, *r;
    dealer_router(&d, &r, id, sizeof id);
    const pb_msg s = sample(PB_SHUTDOWN);
    char err[256] = "";
    assert_int_equal(pb_send(d, NULL, &s, NULL, 0, err, sizeof err), PST_OK);
    pb_msg m;
    pb_peer from;
    assert_int_equal(pb_recv(r, &from, &m, 0, err, sizeof err), PST_OK);
    if (from.len != sizeof id) {
        const size_t kept = from.len;
        pb_msg_clear(&m);
        fail_msg("pb_recv kept %zu bytes of a %zu-byte routing id (PB_MAX_IDENTITY %d): "
                 "replies to this peer go nowhere",
                 kept, sizeof id, PB_MAX_IDENTITY);
    }
    assert_memory_equal(from.id, id, sizeof id);
    assert_int_equal(pb_send_error(r, &from, PB_ERR_STATE, "x"), PST_OK);
    pb_msg_clear(&m);
    pb_msg back;
    assert_int_equal(pb_recv(d, NULL, &back, 0, err, sizeof err), PST_OK);
    assert_int_equal(back.kind, PB_ERROR);
    pb_msg_clear(&back);
    close_socket(&d);
    close_socket(&r);
}

/* ============ one server, one worker: refusals, then real work ============ */

static void *ctx, *w0;
static eng_model model;
static uint64_t checksum;
static size_t N;     /* the shard: all of the vector */
static int refused;  /* ErrorReplies received from the server, counted here */
static int dropped;  /* messages the server dropped unanswered (not from the job) */
static int broken;   /* an earlier step failed: the rest of the sequence would mislead */
static float *grad0; /* the gradient pushed at step 0 */

static int server_setup(void **state) {
    (void)state;
    eng_model m;
    char err[640] = "";
    const eng_model_def *def = eng_model_find("mnist_cnn");
    if (!def || eng_model_build(&m, def, err, sizeof err) != PST_OK)
        return -1;
    model = m;
    checksum = eng_layout_checksum(&model.layout);
    N = model.layout.total;
    /* Fork before this process makes a ZeroMQ context. */
    tu_psfork_cfg cfg = tu_psfork_defaults();
    if (tu_psfork_start(&srv, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    printf("  server pid %d at %s\n", (int)srv.pid, srv.endpoint);
    ctx = zmq_ctx_new();
    if (!ctx)
        return -1;
    w0 = dealer(ctx, srv.endpoint);
    return 0;
}

static int server_teardown(void **state) {
    (void)state;
    close_all();
    w0 = NULL;
    if (ctx)
        zmq_ctx_term(ctx);
    ctx = NULL;
    tu_psfork_kill(&srv);
    free(grad0);
    grad0 = NULL;
    return 0;
}

/* Each step of the sequence starts here and ends with done(). */
static void begin(void) {
    if (broken)
        skip();
    broken = 1;
}
static void done(void) { broken = 0; }

static void refuse(uint32_t code, const char *needle, const char *what) {
    expect_refusal(w0, code, needle, what);
    refused++;
}

static void refuses_bad_frames(void **state) {
    (void)state;
    begin();
    static const char garbage[] = "\x07\x07\x07 not a protobuf \xff\xff";
    const void *f1[] = {garbage};
    const size_t l1[] = {sizeof garbage - 1};
    send_frames(w0, 1, f1, l1);
    expect_silence(w0, "a frame of garbage");
    dropped++;

    /* Larger than any Envelope may be. */
    const size_t big = PB_MAX_HEADER + 1;
    uint8_t *huge = calloc(big, 1);
    assert_non_null(huge);
    const void *f2[] = {huge};
    const size_t l2[] = {big};
    send_frames(w0, 1, f2, l2);
    free(huge);
    expect_silence(w0, "a header of PB_MAX_HEADER + 1 bytes");
    dropped++;

    /* A frame larger than any legal message (a push of the whole shard as top-k of fp32, 8
     * bytes an entry): ZeroMQ cuts the connection (ZMQ_MAXMSGSIZE), so the server never
     * sees it: it is not counted among the strangers (the count is checked at shutdown). */
    {
        void *x = dealer(ctx, srv.endpoint);
        const size_t over = 2 * sizeof(float) * N + 1;
        uint8_t *frame = calloc(over, 1);
        assert_non_null(frame);
        const void *f3[] = {frame};
        const size_t l3[] = {over};
        send_frames(x, 1, f3, l3);
        free(frame);
        expect_silence(x, "a frame one byte over the largest legal message");
        close_socket(&x);
    }

    /* A well-formed hello from another job (another token). */
    {
        Pstrain__Hello oh = PSTRAIN__HELLO__INIT;
        oh.num_workers = 1;
        oh.model = "mnist_cnn";
        oh.param_count = N;
        oh.layout_checksum = checksum;
        Pstrain__Envelope oe = PSTRAIN__ENVELOPE__INIT;
        oe.body_case = PSTRAIN__ENVELOPE__BODY_HELLO;
        oe.hello = &oh;
        oe.protocol = PB_PROTOCOL_VERSION;
        oe.job = 0x5eed;
        uint8_t buf[256];
        const size_t n = pstrain__envelope__pack(&oe, buf);
        const void *f3[] = {buf};
        const size_t l3[] = {n};
        send_frames(w0, 1, f3, l3);
        expect_silence(w0, "a hello from another job");
        dropped++;
    }

    /* No body. */
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    send_env(w0, &env, NULL, 0);
    refuse(PB_ERR_MALFORMED, "body", "an Envelope with no body");

    /* A body carrying no payload, with a payload frame. */
    Pstrain__Hello h = PSTRAIN__HELLO__INIT;
    h.num_workers = 1;
    h.model = "mnist_cnn";
    h.param_count = N;
    h.layout_checksum = checksum;
    env.body_case = PSTRAIN__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    const float one = 1.0f;
    send_env(w0, &env, &one, 1);
    refuse(PB_ERR_MALFORMED, "payload", "a hello with a payload frame");

    /* A body only servers send. */
    Pstrain__ServerStats st = PSTRAIN__SERVER_STATS__INIT;
    Pstrain__Envelope senv = PSTRAIN__ENVELOPE__INIT;
    senv.body_case = PSTRAIN__ENVELOPE__BODY_STATS;
    senv.stats = &st;
    send_env(w0, &senv, NULL, 0);
    refuse(PB_ERR_MALFORMED, "stats", "a stats message sent to a server");
    done();
}

/* wire.h: PB_ERR_VERSION is the code for "another protocol version". */
static void refuses_other_protocol(void **state) {
    (void)state;
    begin();
    Pstrain__Hello h = PSTRAIN__HELLO__INIT;
    h.num_workers = 1;
    h.model = "mnist_cnn";
    h.param_count = N;
    h.layout_checksum = checksum;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.protocol = 99;
    env.body_case = PSTRAIN__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    size_t len;
    uint8_t *buf = pack_env(&env, &len);
    const void *f[] = {buf};
    send_frames(w0, 1, f, &len);
    free(buf);
    pb_msg m;
    recv_msg(w0, &m, "an Envelope of protocol 99");
    if (m.kind != PB_ERROR)
        fail_msg("an Envelope of protocol 99: expected an ErrorReply, got %s",
                 pb_kind_name(m.kind));
    refused++;
    const uint32_t code = m.error.code;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", m.error.message);
    pb_msg_clear(&m);
    printf("  an Envelope of protocol 99 -> code %u: %s\n", code, msg);
    assert_non_null(strstr(msg, "protocol"));
    /* The exchange is complete: the sequence goes on whatever the code. */
    done();
    if (code != PB_ERR_VERSION)
        fail_msg("an Envelope of protocol 99: ErrorReply code %u, expected PB_ERR_VERSION (%d), "
                 "which wire.h reserves for 'another protocol version'",
                 code, PB_ERR_VERSION);
}

static void refuses_push_before_hello(void **state) {
    (void)state;
    begin();
    float *g = calloc(N, sizeof(float));
    assert_non_null(g);
    send_push(w0, 0, 0, 0, 0, N, g, N);
    free(g);
    refuse(PB_ERR_STATE, "hello", "a push before hello");
    send_pull(w0, 0, 0, 0, N);
    refuse(PB_ERR_STATE, "hello", "a pull before hello");
    done();
}

static void refuses_bad_hellos(void **state) {
    (void)state;
    begin();
    send_hello(w0, 0, 1, "mnist_cnn", N, checksum ^ 1);
    refuse(PB_ERR_LAYOUT, "layout", "a hello with another layout checksum");
    send_hello(w0, 0, 1, "mnist_cnn", N + 1, checksum);
    refuse(PB_ERR_LAYOUT, "layout", "a hello with another parameter count");
    send_hello(w0, 0, 1, "fashion_cnn", N, checksum);
    refuse(PB_ERR_LAYOUT, "hello.model", "a hello for another model");
    send_hello(w0, 1, 1, "mnist_cnn", N, checksum);
    refuse(PB_ERR_RANGE, "worker_id", "a hello from worker 1 of 1");
    send_hello(w0, 0, 2, "mnist_cnn", N, checksum);
    refuse(PB_ERR_RANGE, "workers", "a hello from worker 0 of 2 (the server has 1)");
    done();
}

static void hello(void **state) {
    (void)state;
    begin();
    send_hello(w0, 0, 1, "mnist_cnn", N, checksum);
    pb_msg m;
    recv_msg(w0, &m, "a valid hello");
    if (m.kind != PB_HELLO_REPLY)
        fail_msg("a valid hello: got %s%s%s", pb_kind_name(m.kind), m.kind == PB_ERROR ? ": " : "",
                 m.kind == PB_ERROR ? m.error.message : "");
    const pb_hello_reply *r = &m.hello_reply;
    assert_int_equal(r->server_id, 0);
    assert_int_equal(r->nparts, 1);
    assert_int_equal(r->shards[0].offset, 0);
    assert_int_equal(r->shards[0].count, CNN_TOTAL);
    assert_int_equal(r->version, 0);
    pb_msg_clear(&m);
    done();
}

static void refuses_bad_pushes(void **state) {
    (void)state;
    begin();
    float *g = calloc(N + 1, sizeof(float));
    assert_non_null(g);
    send_push(w0, 0, 0, 0, 0, N, g, 1);
    refuse(PB_ERR_MALFORMED, "payload", "a push of 4 bytes for the whole shard");
    send_push(w0, 0, 0, 0, 0, N, g, N + 1);
    refuse(PB_ERR_MALFORMED, "payload", "a push of one float too many");
    send_push(w0, 0, 0, 0, 0, 10, g, 10);
    refuse(PB_ERR_RANGE, "push.slice", "a push of [0, 10), not the shard");
    send_push(w0, 0, 0, 0, 1, N, g, N);
    refuse(PB_ERR_RANGE, "push.slice", "a push of [1, N + 1)");
    send_push(w0, 7, 0, 0, 0, N, g, N);
    refuse(PB_ERR_STATE, "worker_id", "a push from worker 7 of 1");

    /* Header, payload and one frame more. */
    Pstrain__Slice sl = PSTRAIN__SLICE__INIT;
    sl.count = N;
    Pstrain__Push p = PSTRAIN__PUSH__INIT;
    p.slice = &sl;
    Pstrain__Envelope env = PSTRAIN__ENVELOPE__INIT;
    env.protocol = PB_PROTOCOL_VERSION;
    env.body_case = PSTRAIN__ENVELOPE__BODY_PUSH;
    env.push = &p;
    size_t hlen;
    uint8_t *hdr = pack_env(&env, &hlen);
    const void *f3[] = {hdr, g, "x"};
    const size_t l3[] = {hlen, N * sizeof(float), 1};
    send_frames(w0, 3, f3, l3);
    refuse(PB_ERR_MALFORMED, "frames", "a push in three frames");
    /* The header alone. */
    const void *f1[] = {hdr};
    send_frames(w0, 1, f1, &hlen);
    refuse(PB_ERR_MALFORMED, "payload", "a push without its payload frame");
    /* Sparse pushes whose rows do not add up. */
    uint32_t rows[3] = {5, 3, 9};
    p.row_len = 10;
    p.rows = rows;
    p.n_rows = 3;
    send_env(w0, &env, g, 30);
    refuse(PB_ERR_MALFORMED, "push.rows", "a sparse push with rows out of order");
    rows[1] = 7;
    send_env(w0, &env, g, 29);
    refuse(PB_ERR_MALFORMED, "rows hold", "a sparse push one float short");
    p.row_len = 0;
    send_env(w0, &env, g, 30);
    refuse(PB_ERR_MALFORMED, "push.rows", "a sparse push of rows of 0 floats");
    p.row_len = 10;
    rows[2] = (uint32_t)(N / 10 + 1);
    send_env(w0, &env, g, 30);
    refuse(PB_ERR_MALFORMED, "push.rows", "a sparse push with a row past the slice");
    p.n_rows = 0;
    /* A push with no slice at all. */
    p.slice = NULL;
    send_env(w0, &env, g, N);
    refuse(PB_ERR_MALFORMED, "slice", "a push with no slice");
    free(hdr);
    free(g);
    done();
}

static void refuses_bad_pulls(void **state) {
    (void)state;
    begin();
    send_pull(w0, 0, 0, N - 10, 100);
    refuse(PB_ERR_RANGE, "pull.slice", "a pull of [N - 10, N + 90)");
    send_pull(w0, 0, 0, N, 1);
    refuse(PB_ERR_RANGE, "pull.slice", "a pull of [N, N + 1)");
    send_pull(w0, 0, 0, 0, 0);
    refuse(PB_ERR_RANGE, "pull.slice", "a pull of nothing");
    send_pull(w0, 0, 0, UINT64_MAX, 2);
    refuse(PB_ERR_RANGE, "pull.slice", "a pull at offset 2^64 - 1 (wraps around)");
    send_pull(w0, 0, 0, 0, UINT64_MAX);
    refuse(PB_ERR_RANGE, "pull.slice", "a pull of 2^64 - 1 floats");
    send_pull(w0, 1, 0, 0, N);
    refuse(PB_ERR_STATE, "worker_id", "a pull from worker 1 of 1");
    done();
}

/* Puts nnz top-k entries (the indices idx, every value 0.5 in bf16) at buf; returns the bytes. */
static size_t forge_topk(uint8_t *buf, const uint32_t *idx, size_t nnz) {
    for (size_t j = 0; j < nnz; j++) { /* little-endian, as the wire says */
        const uint32_t v = idx[j];
        const uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                               (uint8_t)(v >> 24)};
        memcpy(buf + 4 * j, le, 4);
    }
    const float half = 0.5f;
    for (size_t j = 0; j < nnz; j++)
        pb_wire_encode(PB_WIRE_BF16, &half, 1, buf + 4 * nnz + 2 * j);
    return pb_topk_bytes(PB_WIRE_BF16, nnz);
}

/* Coded pushes that do not add up: refused before anything changes (the pushes and pulls
 * that follow see the initial weights, then one Adam step). */
static void refuses_bad_coded_pushes(void **state) {
    (void)state;
    begin();
    uint8_t *buf = calloc(N + 1, 8);
    assert_non_null(buf);
    const pb_coding bf16 = {PB_WIRE_BF16, 0, 0};
    send_coded_push(w0, 0, 0, N, (pb_coding){7, 0, 0}, NULL, 0, buf, N * 4);
    refuse(PB_ERR_MALFORMED, "coding.wire", "a push of wire 7");
    send_coded_push(w0, 0, 0, N, (pb_coding){7, 1, 3}, NULL, 0, buf, 3 * 8);
    refuse(PB_ERR_MALFORMED, "coding.wire", "a top-k push of wire 7");
    send_coded_push(w0, 0, 0, N, bf16, NULL, 0, buf, N * 4);
    refuse(PB_ERR_MALFORMED, "values of bf16", "a bf16 push with an fp32 payload's size");
    send_coded_push(w0, 0, 0, N, (pb_coding){PB_WIRE_FP16, 0, 0}, NULL, 0, buf, N * 2 - 1);
    refuse(PB_ERR_MALFORMED, "values of fp16", "an fp16 push one byte short");

    const uint32_t up[3] = {5, 7, 9}, down[3] = {5, 3, 9}, dup[3] = {5, 5, 9};
    const uint32_t out[3] = {5, 7, (uint32_t)N}, rows[3] = {1, 2, 3};
    size_t len = forge_topk(buf, up, 3);
    send_coded_push(w0, 0, 0, N, (pb_coding){PB_WIRE_BF16, 1, 3}, NULL, 0, buf, len - 1);
    refuse(PB_ERR_MALFORMED, "top-k entries", "a top-k push one byte short of its 3 entries");
    send_coded_push(w0, 0, 0, N, (pb_coding){PB_WIRE_BF16, 1, 4}, NULL, 0, buf, len);
    refuse(PB_ERR_MALFORMED, "top-k entries", "a top-k push of 3 entries that says 4");
    send_coded_push(w0, 0, 0, N, (pb_coding){PB_WIRE_BF16, 1, 3}, rows, 3, buf, len);
    refuse(PB_ERR_MALFORMED, "push.coding.topk: expected no push.rows", "a top-k push with rows");
    len = forge_topk(buf, down, 3);
    send_coded_push(w0, 0, 0, N, (pb_coding){PB_WIRE_BF16, 1, 3}, NULL, 0, buf, len);
    refuse(PB_ERR_MALFORMED, "ascending", "a top-k push with indices 5, 3, 9");
    len = forge_topk(buf, dup, 3);
    send_coded_push(w0, 0, 0, N, (pb_coding){PB_WIRE_BF16, 1, 3}, NULL, 0, buf, len);
    refuse(PB_ERR_MALFORMED, "duplicate", "a top-k push with indices 5, 5, 9");
    len = forge_topk(buf, out, 3);
    send_coded_push(w0, 0, 0, N, (pb_coding){PB_WIRE_BF16, 1, 3}, NULL, 0, buf, len);
    refuse(PB_ERR_MALFORMED, "expected <", "a top-k push with index N (past the slice)");
    /* N + 1 entries: every index of the slice and one more (the size agrees with nnz). */
    uint32_t *all = malloc(sizeof(uint32_t) * (N + 1));
    assert_non_null(all);
    for (size_t i = 0; i <= N; i++)
        all[i] = (uint32_t)i;
    len = forge_topk(buf, all, N + 1);
    send_coded_push(w0, 0, 0, N, (pb_coding){PB_WIRE_BF16, 1, N + 1}, NULL, 0, buf, len);
    refuse(PB_ERR_MALFORMED, "coding.nnz", "a top-k push of N + 1 entries");
    free(all);
    /* A sparse bf16 push whose payload holds its rows' floats in fp32. */
    send_coded_push(w0, 0, 0, N, bf16, rows, 3, buf, 30 * 4);
    refuse(PB_ERR_MALFORMED, "rows hold", "a sparse bf16 push with fp32's size");
    free(buf);
    done();
}

static void refuses_bad_coded_pulls(void **state) {
    (void)state;
    begin();
    send_coded_pull(w0, 0, 0, 0, N, 9, 0.0);
    refuse(PB_ERR_RANGE, "pull.wire: expected 0, 1 or 2", "a pull asking wire 9");
    send_coded_pull(w0, 0, 0, 0, N, PB_WIRE_BF16, 2.0);
    refuse(PB_ERR_RANGE, "pull.topk: expected a fraction", "a pull asking top-k of 2.0");
    send_coded_pull(w0, 0, 0, 0, N, PB_WIRE_BF16, -0.5);
    refuse(PB_ERR_RANGE, "pull.topk: expected a fraction", "a pull asking top-k of -0.5");
    send_coded_pull(w0, 0, 0, 0, N, PB_WIRE_FP16, (double)NAN);
    refuse(PB_ERR_RANGE, "pull.topk: expected a fraction", "a pull asking top-k of NaN");
    done();
}

/* Before any update the shard is the seed-1 initialisation, bit for bit. */
static void pull_initial_weights(void **state) {
    (void)state;
    begin();
    float *want = malloc(sizeof(float) * N), *got = malloc(sizeof(float) * N);
    assert_non_null(want);
    assert_non_null(got);
    eng_model_init_params(&model, want, 1);
    send_pull(w0, 0, 0, 0, N);
    expect_weights(w0, 0, 0, N, got, "a pull of the whole shard at version 0");
    expect_bits(got, want, N, "initial weights");
    /* A part of the shard. */
    send_pull(w0, 0, 0, 100, 50);
    expect_weights(w0, 0, 100, 50, got, "a pull of [100, 150)");
    expect_bits(got, want + 100, 50, "initial weights [100, 150)");
    free(want);
    free(got);
    done();
}

/* One push from the only worker is one Adam step (t = 1) on that gradient, bit for bit. */
static void push_then_pull(void **state) {
    (void)state;
    begin();
    grad0 = gradient(N, 42);
    float *w0v = malloc(sizeof(float) * N), *w1v = malloc(sizeof(float) * N),
          *got = malloc(sizeof(float) * N);
    assert_non_null(w0v);
    assert_non_null(w1v);
    assert_non_null(got);
    adam_once(&model, grad0, w0v, w1v);
    send_push(w0, 0, 0, 0, 0, N, grad0, N);
    /* A push has no reply: the next message must be the pull's. */
    send_pull(w0, 0, 1, 0, N);
    expect_weights(w0, 1, 0, N, got, "a pull for version 1 after the push of step 0");
    expect_bits(got, w1v, N, "weights after one Adam step");
    free(w0v);
    free(w1v);
    free(got);
    done();
}

static void refuses_steps_outside_window(void **state) {
    (void)state;
    begin();
    float *g = calloc(N, sizeof(float));
    assert_non_null(g);
    send_push(w0, 0, 5, 1, 0, N, g, N);
    refuse(PB_ERR_STATE, "push.step", "a push of step 5 at version 1 (sync)");
    send_push(w0, 0, 0, 0, 0, N, g, N);
    refuse(PB_ERR_STATE, "push.step", "a second push of step 0");
    free(g);
    /* Still at version 1, with the same weights. */
    float *w0v = malloc(sizeof(float) * N), *w1v = malloc(sizeof(float) * N),
          *got = malloc(sizeof(float) * N);
    assert_non_null(w0v);
    assert_non_null(w1v);
    assert_non_null(got);
    adam_once(&model, grad0, w0v, w1v);
    send_pull(w0, 0, 0, 0, N);
    expect_weights(w0, 1, 0, N, got, "a pull after the refused pushes");
    expect_bits(got, w1v, N, "weights after refused pushes");
    free(w0v);
    free(w1v);
    free(got);
    done();
}

static void shutdown_reports_stats(void **state) {
    (void)state;
    begin();
    send_shutdown(w0, 0);
    pb_msg m;
    recv_msg(w0, &m, "Shutdown");
    if (m.kind != PB_STATS)
        fail_msg("Shutdown: expected ServerStats, got %s", pb_kind_name(m.kind));
    const pb_stats *st = &m.stats;
    printf("  stats: %llu updates, %llu pushes, %llu pulls, %llu B in, %llu B out, %llu errors\n",
           (unsigned long long)st->updates, (unsigned long long)st->pushes,
           (unsigned long long)st->pulls, (unsigned long long)st->bytes_in,
           (unsigned long long)st->bytes_out, (unsigned long long)st->errors);
    if (st->errors != (uint64_t)refused)
        fail_msg("stats.errors %llu, but %d messages were refused", (unsigned long long)st->errors,
                 refused);
    if (st->strangers != (uint64_t)dropped)
        fail_msg("stats.strangers %llu, but %d messages were dropped",
                 (unsigned long long)st->strangers, dropped);
    assert_int_equal(st->server_id, 0);
    assert_int_equal(st->updates, 1);
    assert_int_equal(st->pushes, 1);
    assert_int_equal(st->pulls, 4);
    assert_int_equal(st->bytes_in, N * sizeof(float));
    assert_int_equal(st->bytes_out, (3 * N + 50) * sizeof(float));
    assert_int_equal(st->max_staleness, 0);
    assert_int_equal(st->nworkers, 1);
    assert_int_equal(st->pushes_per_worker[0], 1);
    pb_msg_clear(&m);
    expect_exit_0(&srv);
    done();
}

/* ============ coded pushes and pulls (--wire, --compress), a fresh server each ============ */

/* A server of its own, worker 0's hello answered. */
static int coded_setup(void **state) {
    if (server_setup(state) != 0)
        return -1;
    send_hello(w0, 0, 1, "mnist_cnn", N, checksum);
    pb_msg m;
    char err[256] = "";
    const int rc = pb_recv(w0, NULL, &m, 0, err, sizeof err);
    const int ok = rc == PST_OK && m.kind == PB_HELLO_REPLY;
    if (rc == PST_OK)
        pb_msg_clear(&m);
    return ok ? 0 : -1;
}

/* The seed-1 initial weights w0, and in w their image after k Adam steps (t = 1..k) on g[0],
 * ..., g[k - 1] (what a one-worker sync server does with k pushes). */
static void adam_steps(const float *const *g, int k, float *w0v, float *w) {
    eng_model_init_params(&model, w0v, 1);
    memcpy(w, w0v, sizeof(float) * N);
    float *mm = calloc(N, sizeof(float)), *vv = calloc(N, sizeof(float));
    assert_non_null(mm);
    assert_non_null(vv);
    const eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    for (int t = 0; t < k; t++)
        eng_adam_update(w, mm, vv, g[t], N, t + 1, &cfg);
    free(mm);
    free(vv);
}

/* A coded push is one Adam step on the gradient its payload says (decoded, and for top-k
 * scattered into zeros), bit for bit: bf16 dense, fp16 dense, then top-k of bf16 values. */
static void coded_pushes(void **state) {
    (void)state;
    float *g[3], *dec[3];
    float *w0v = malloc(sizeof(float) * N), *want = malloc(sizeof(float) * N),
          *got = malloc(sizeof(float) * N);
    uint8_t *buf[3];
    size_t len[3];
    assert_non_null(w0v);
    assert_non_null(want);
    assert_non_null(got);
    for (int t = 0; t < 3; t++) {
        g[t] = gradient(N, 300 + (uint64_t)t);
        dec[t] = malloc(sizeof(float) * N);
        buf[t] = malloc(pb_topk_bytes(PB_WIRE_FP32, N)); /* the most any coding takes */
        assert_non_null(dec[t]);
        assert_non_null(buf[t]);
    }
    const pb_wire dense[2] = {PB_WIRE_BF16, PB_WIRE_FP16};
    for (int t = 0; t < 2; t++) {
        pb_wire_encode(dense[t], g[t], N, buf[t]);
        pb_wire_decode(dense[t], buf[t], N, dec[t]);
        len[t] = N * pb_wire_size(dense[t]);
    }
    float *acc = malloc(sizeof(float) * N);
    assert_non_null(acc);
    memcpy(acc, g[2], sizeof(float) * N);
    const size_t nnz = pb_topk_encode(PB_WIRE_BF16, 0.01, acc, N, buf[2]);
    free(acc);
    char why[160];
    assert_int_equal(pb_topk_decode(PB_WIRE_BF16, buf[2], nnz, N, dec[2], 0, why, sizeof why),
                     PST_OK);
    len[2] = pb_topk_bytes(PB_WIRE_BF16, nnz);
    assert_true(nnz > 0 && nnz <= pb_topk_cap(N, 0.01));
    printf("  top-k push: %zu of %zu entries\n", nnz, N);

    const pb_coding coding[3] = {
        {PB_WIRE_BF16, 0, 0}, {PB_WIRE_FP16, 0, 0}, {PB_WIRE_BF16, 1, nnz}};
    const char *what[3] = {"after a bf16 push", "after an fp16 push", "after a top-k push"};
    for (int t = 0; t < 3; t++) {
        send_coded_push(w0, (uint64_t)t, 0, N, coding[t], NULL, 0, buf[t], len[t]);
        send_pull(w0, 0, (uint64_t)t + 1, 0, N);
        expect_weights(w0, (uint64_t)t + 1, 0, N, got, what[t]);
        adam_steps((const float *const *)dec, t + 1, w0v, want);
        expect_bits(got, want, N, what[t]);
    }
    /* The server counts the bytes that came, not the floats they stand for. */
    send_shutdown(w0, 0);
    pb_msg m;
    recv_msg(w0, &m, "Shutdown");
    assert_int_equal(m.kind, PB_STATS);
    assert_int_equal(m.stats.updates, 3);
    assert_int_equal(m.stats.bytes_in, len[0] + len[1] + len[2]);
    pb_msg_clear(&m);
    expect_exit_0(&srv);
    for (int t = 0; t < 3; t++) {
        free(g[t]);
        free(dec[t]);
        free(buf[t]);
    }
    free(w0v);
    free(want);
    free(got);
}

/* Receives a coded answer (a change) at version, checks its coding, and adds its decoded
 * change to view: what the worker does with it. Returns its nnz (its count when dense). */
static size_t take_change(uint64_t version, pb_wire wire, int topk, float *view, uint8_t *bytes,
                          const char *what) {
    pb_msg m;
    expect_reply(w0, version, 0, N, &m, what);
    expect_coding(&m, 1, wire, topk, what);
    const size_t nnz = topk ? (size_t)m.pull_reply.coding.nnz : N;
    memcpy(bytes, m.payload, m.payload_bytes);
    char why[160];
    if (topk && pb_topk_decode(wire, m.payload, nnz, N, view, 1, why, sizeof why) != PST_OK)
        fail_msg("%s: %s", what, why);
    if (!topk)
        pb_wire_decode_add(wire, m.payload, N, view);
    pb_msg_clear(&m);
    return nnz;
}

/* What the server's answer to a coded pull must be: the change w - view coded, byte for
 * byte (the codec is deterministic); diff is scratch (N). Returns the payload's bytes. */
static size_t code_expected(pb_wire wire, double topk, const float *w, const float *view,
                            float *diff, uint8_t *out) {
    for (size_t i = 0; i < N; i++)
        diff[i] = w[i] - view[i];
    if (topk > 0)
        return pb_topk_bytes(wire, pb_topk_encode(wire, topk, diff, N, out));
    pb_wire_encode(wire, diff, N, out);
    return N * pb_wire_size(wire);
}

static void expect_bytes(const uint8_t *got, const uint8_t *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s: payload byte %zu of %zu is 0x%02x, expected 0x%02x", what, i, n, got[i],
                     want[i]);
}

/* A worker's coded pulls: its first is answered with the weights; later ones with the change
 * since what it was sent, which moves the server's view of it by exactly what the worker
 * adds (a second pull with no push between gets what the first left out); an fp32 pull gets
 * the weights and sets the view to them; a second hello starts over. */
static void coded_pulls(void **state) {
    (void)state;
    float *g[2] = {gradient(N, 500), gradient(N, 501)};
    float *init = malloc(sizeof(float) * N), *w1 = malloc(sizeof(float) * N),
          *w2 = malloc(sizeof(float) * N), *view = malloc(sizeof(float) * N),
          *diff = malloc(sizeof(float) * N), *two = malloc(sizeof(float) * N);
    uint8_t *got = malloc(pb_topk_bytes(PB_WIRE_FP32, N)),
            *want = malloc(pb_topk_bytes(PB_WIRE_FP32, N));
    assert_non_null(init);
    assert_non_null(w1);
    assert_non_null(w2);
    assert_non_null(view);
    assert_non_null(diff);
    assert_non_null(two);
    assert_non_null(got);
    assert_non_null(want);
    adam_steps((const float *const *)g, 1, init, w1);

    /* The first coded pull: the weights, fp32, not a change. */
    send_coded_pull(w0, 0, 0, 0, N, PB_WIRE_BF16, 0.0);
    expect_weights(w0, 0, 0, N, view, "a worker's first bf16 pull");
    expect_bits(view, init, N, "the first bf16 pull's weights");

    /* After a push: the change w1 - init in bf16. */
    send_push(w0, 0, 0, 0, 0, N, g[0], N);
    send_coded_pull(w0, 0, 1, 0, N, PB_WIRE_BF16, 0.0);
    size_t len = code_expected(PB_WIRE_BF16, 0.0, w1, view, diff, want);
    take_change(1, PB_WIRE_BF16, 0, view, got, "a bf16 pull after a push");
    expect_bytes(got, want, len, "the bf16 change w1 - w0");
    /* bf16 keeps 8 significant bits (7 stored): rounded to nearest, each element of the change
     * is off by at most half an ulp, 2^-8 of it (not 2^-9: seen 3.0e-3 of a change of 1e-3),
     * plus the rounding of the sum into the weight (2^-24 of it). */
    double worst = 0.0;
    for (size_t i = 0; i < N; i++) {
        const double change = (double)w1[i] - init[i], err = fabs((double)view[i] - w1[i]);
        if (err > ldexp(fabs(change), -8) + ldexp(fabs((double)w1[i]), -24))
            fail_msg("element %zu: w0 %.9g + bf16 change is %.9g, w1 is %.9g: off by more than "
                     "2^-8 of the change %.3g",
                     i, (double)init[i], (double)view[i], (double)w1[i], change);
        if (change != 0.0 && err / fabs(change) > worst)
            worst = err / fabs(change);
    }
    printf("  bf16 change: largest error %.3g of the change (bound 2^-8 = %.3g)\n", worst,
           ldexp(1.0, -8));

    /* No push between: the next answer is what the first left out (the server moved its view
     * by the decoded change, not by the exact one, nor not at all). */
    send_coded_pull(w0, 0, 1, 0, N, PB_WIRE_BF16, 0.0);
    len = code_expected(PB_WIRE_BF16, 0.0, w1, view, diff, want);
    take_change(1, PB_WIRE_BF16, 0, view, got, "a second bf16 pull, no push between");
    expect_bytes(got, want, len, "what the first bf16 answer left out");

    /* Top-k pulls of 1% (fp16 values) after another push: at most the cap of entries, each
     * exactly the top-k of w2 - view (w2: two Adam steps, which the fp32 pull confirms); the
     * second, with no push between, is the top-k of what the first left out. */
    send_push(w0, 0, 1, 1, 0, N, g[1], N);
    adam_steps((const float *const *)g, 2, init, two);
    for (int k = 0; k < 2; k++) {
        const char *what = k ? "a second top-k pull, no push between" : "a top-k pull";
        send_coded_pull(w0, 0, 2, 0, N, PB_WIRE_FP16, 0.01);
        len = code_expected(PB_WIRE_FP16, 0.01, two, view, diff, want);
        const size_t nnz = take_change(2, PB_WIRE_FP16, 1, view, got, what);
        printf("  %s: %zu of %zu entries (cap %zu)\n", what, nnz, N, pb_topk_cap(N, 0.01));
        assert_true(nnz > 0 && nnz <= pb_topk_cap(N, 0.01));
        assert_int_equal(len, pb_topk_bytes(PB_WIRE_FP16, nnz));
        expect_bytes(got, want, len, what);
    }
    send_pull(w0, 0, 2, 0, N);
    expect_weights(w0, 2, 0, N, w2, "an fp32 pull after the top-k ones");
    expect_bits(w2, two, N, "the fp32 pull's weights: two Adam steps");

    /* The fp32 answer set the view to w2: a coded pull now is a change of zeros. */
    send_coded_pull(w0, 0, 2, 0, N, PB_WIRE_BF16, 0.0);
    take_change(2, PB_WIRE_BF16, 0, w2, got, "a bf16 pull after an fp32 one");
    expect_bits(w2, two, N, "w2 after a change that should be zero");
    for (size_t i = 0; i < 2 * N; i++)
        if (got[i] != 0)
            fail_msg("a bf16 pull after an fp32 one: byte %zu is 0x%02x, expected a zero change", i,
                     got[i]);

    /* A second hello (a restarted worker): its next coded pull is the weights again. */
    send_hello(w0, 0, 1, "mnist_cnn", N, checksum);
    pb_msg m;
    recv_msg(w0, &m, "a second hello");
    assert_int_equal(m.kind, PB_HELLO_REPLY);
    pb_msg_clear(&m);
    send_coded_pull(w0, 0, 2, 0, N, PB_WIRE_BF16, 0.5);
    expect_weights(w0, 2, 0, N, w2, "a top-k bf16 pull after a second hello");
    expect_bits(w2, two, N, "the weights after a second hello");

    /* A NaN weight: its change is NaN, which a view and the worker's copy would keep for
     * good. Such a run is answered with the weights themselves, every time. */
    g[0][5] = NAN;
    send_push(w0, 0, 2, 2, 0, N, g[0], N);
    for (int t = 0; t < 2; t++) {
        send_coded_pull(w0, 0, 3, 0, N, PB_WIRE_FP16, 0.0);
        expect_weights(w0, 3, 0, N, w2, "an fp16 pull of weights with a NaN");
        assert_true(isnan(w2[5]));
    }

    for (int t = 0; t < 2; t++)
        free(g[t]);
    free(init);
    free(w1);
    free(w2);
    free(view);
    free(diff);
    free(two);
    free(got);
    free(want);
}

/* ============ sync mode, two workers: a pull waits for both gradients ============ */

static void sync_two_workers(void **state) {
    (void)state;
    eng_model m;
    build_cnn(&m);
    const size_t n = m.layout.total;
    const uint64_t sum = eng_layout_checksum(&m.layout);
    tu_psfork *f = &srv;
    start_server(f, 2);
    ctx = zmq_ctx_new();
    assert_non_null(ctx);
    void *a = dealer(ctx, f->endpoint), *b = dealer(ctx, f->endpoint);

    send_hello(a, 0, 2, "mnist_cnn", n, sum);
    send_hello(b, 1, 2, "mnist_cnn", n, sum);
    pb_msg r;
    recv_msg(a, &r, "worker 0's hello");
    assert_int_equal(r.kind, PB_HELLO_REPLY);
    pb_msg_clear(&r);
    recv_msg(b, &r, "worker 1's hello");
    assert_int_equal(r.kind, PB_HELLO_REPLY);
    pb_msg_clear(&r);

    float *g0 = gradient(n, 100), *g1 = gradient(n, 200);
    float *mean = malloc(sizeof(float) * n), *want0 = malloc(sizeof(float) * n),
          *want1 = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    assert_non_null(mean);
    assert_non_null(want0);
    assert_non_null(want1);
    assert_non_null(got);
    /* The server sums in worker order, then scales by 1/W. */
    for (size_t i = 0; i < n; i++)
        mean[i] = (g0[i] + g1[i]) * (1.0f / 2.0f);
    adam_once(&m, mean, want0, want1);

    send_push(a, 0, 0, 0, 0, n, g0, n);
    send_pull(a, 0, 1, 0, n);
    if (readable_within(a, QUIET_MS)) {
        pb_msg early;
        recv_msg(a, &early, "worker 0's pull");
        fail_msg("worker 0's pull for version 1 was answered (%s) before worker 1 pushed",
                 pb_kind_name(early.kind));
    }
    /* A second pull while one waits is refused. */
    send_pull(a, 0, 1, 0, n);
    expect_refusal(a, PB_ERR_STATE, "already waits", "a second pending pull from worker 0");

    send_push(b, 1, 0, 0, 0, n, g1, n);
    expect_weights(a, 1, 0, n, got, "worker 0's pull after worker 1's push");
    expect_bits(got, want1, n, "Adam on the mean of two gradients");
    send_pull(b, 1, 1, 0, n);
    expect_weights(b, 1, 0, n, got, "worker 1's pull for version 1");
    expect_bits(got, want1, n, "worker 1's view");

    /* The server stops after both goodbyes, not one. */
    send_shutdown(a, 0);
    recv_msg(a, &r, "worker 0's Shutdown");
    assert_int_equal(r.kind, PB_STATS);
    pb_msg_clear(&r);
    assert_true(tu_psfork_running(f));
    send_shutdown(b, 1);
    recv_msg(b, &r, "worker 1's Shutdown");
    assert_int_equal(r.kind, PB_STATS);
    const pb_stats *st = &r.stats;
    assert_int_equal(st->updates, 1);
    assert_int_equal(st->pushes, 2);
    assert_int_equal(st->errors, 1);
    assert_int_equal(st->nworkers, 2);
    assert_int_equal(st->pushes_per_worker[0], 1);
    assert_int_equal(st->pushes_per_worker[1], 1);
    pb_msg_clear(&r);
    expect_exit_0(f);

    free(g0);
    free(g1);
    free(mean);
    free(want0);
    free(want1);
    free(got);
    close_socket(&a);
    close_socket(&b);
    zmq_ctx_term(ctx);
    ctx = NULL;
}

/* ============ a worker that says hello again from new connections ============ */

/* A restarted worker reconnects and says hello again; its old connection's pull may still
 * wait. However the server resolves that (answer both, drop the old, or refuse the new pull
 * until the old one is answered), it keeps serving and the newest connection gets the
 * weights. The server keeps one pending pull per worker: many re-hellos must not make
 * more. */
enum { REHELLOS = 64 };

static void rehello_keeps_serving(void **state) {
    (void)state;
    eng_model m;
    build_cnn(&m);
    const size_t n = m.layout.total;
    const uint64_t sum = eng_layout_checksum(&m.layout);
    tu_psfork *f = &srv;
    start_server(f, 1);
    ctx = zmq_ctx_new();
    assert_non_null(ctx);
    void *d[REHELLOS];
    int pending_last = 0;
    for (int k = 0; k < REHELLOS; k++) {
        d[k] = dealer(ctx, f->endpoint);
        send_hello(d[k], 0, 1, "mnist_cnn", n, sum);
        pb_msg r;
        char what[80];
        snprintf(what, sizeof what, "hello number %d as worker 0, from a new connection", k + 1);
        recv_msg(d[k], &r, what);
        if (r.kind != PB_HELLO_REPLY)
            fail_msg("hello %d: got %s", k, pb_kind_name(r.kind));
        pb_msg_clear(&r);
        send_pull(d[k], 0, 1, 0, n);
        /* A message with no body is always refused, and a connection's messages are served
         * in order: its reply comes after the pull's, if the pull has one. */
        Pstrain__Envelope empty = PSTRAIN__ENVELOPE__INIT;
        send_env(d[k], &empty, NULL, 0);
        recv_msg(d[k], &r, "a pull from a new connection, then an empty message");
        if (r.kind != PB_ERROR)
            fail_msg("pull %d for version 1 at version 0: got %s", k + 1, pb_kind_name(r.kind));
        pending_last = strstr(r.error.message, "body") != NULL;
        pb_msg_clear(&r);
        if (!pending_last) { /* the pull was refused; now the empty message's reply */
            recv_msg(d[k], &r, "an empty message");
            assert_int_equal(r.kind, PB_ERROR);
            pb_msg_clear(&r);
        }
    }
    void *last = d[REHELLOS - 1];
    float *g = gradient(n, 7), *want0 = malloc(sizeof(float) * n),
          *want1 = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    assert_non_null(want0);
    assert_non_null(want1);
    assert_non_null(got);
    adam_once(&m, g, want0, want1);
    send_push(last, 0, 0, 0, 0, n, g, n);
    if (!pending_last)
        send_pull(last, 0, 1, 0, n);
    expect_weights(last, 1, 0, n, got, "the newest connection's pull after its push");
    expect_bits(got, want1, n, "weights after the push");
    send_shutdown(last, 0);
    pb_msg r;
    recv_msg(last, &r, "Shutdown");
    assert_int_equal(r.kind, PB_STATS);
    assert_int_equal(r.stats.updates, 1);
    pb_msg_clear(&r);
    expect_exit_0(f);
    for (int k = 0; k < REHELLOS; k++)
        close_socket(&d[k]);
    free(g);
    free(want0);
    free(want1);
    free(got);
    zmq_ctx_term(ctx);
    ctx = NULL;
}

static int solo_teardown(void **state) {
    (void)state;
    close_all();
    if (ctx)
        zmq_ctx_term(ctx);
    ctx = NULL;
    tu_psfork_kill(&srv);
    return 0;
}

int main(void) {
    const struct CMUnitTest wire[] = {
        cmocka_unit_test(wire_round_trip_pair),
        cmocka_unit_test(wire_round_trip_dealer_router),
        cmocka_unit_test(wire_identity_of_255_bytes),
    };
    /* In order: each step relies on the server state the earlier ones left. */
    const struct CMUnitTest one_worker[] = {
        cmocka_unit_test(refuses_bad_frames),
        cmocka_unit_test(refuses_other_protocol),
        cmocka_unit_test(refuses_push_before_hello),
        cmocka_unit_test(refuses_bad_hellos),
        cmocka_unit_test(hello),
        cmocka_unit_test(refuses_bad_pushes),
        cmocka_unit_test(refuses_bad_pulls),
        cmocka_unit_test(refuses_bad_coded_pushes),
        cmocka_unit_test(refuses_bad_coded_pulls),
        cmocka_unit_test(pull_initial_weights),
        cmocka_unit_test(push_then_pull),
        cmocka_unit_test(refuses_steps_outside_window),
        cmocka_unit_test(shutdown_reports_stats),
    };
    /* Each with a server of its own. */
    const struct CMUnitTest coded[] = {
        cmocka_unit_test_setup_teardown(coded_pushes, coded_setup, server_teardown),
        cmocka_unit_test_setup_teardown(coded_pulls, coded_setup, server_teardown),
    };
    const struct CMUnitTest others[] = {
        cmocka_unit_test_teardown(sync_two_workers, solo_teardown),
        cmocka_unit_test_teardown(rehello_keeps_serving, solo_teardown),
    };
    int failed = cmocka_run_group_tests_name("wire", wire, wire_setup, wire_teardown);
    failed += cmocka_run_group_tests_name("server", one_worker, server_setup, server_teardown);
    failed += cmocka_run_group_tests_name("coded", coded, NULL, NULL);
    failed += cmocka_run_group_tests_name("server_modes", others, NULL, NULL);
    return failed;
}
