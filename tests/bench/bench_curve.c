/* bench_curve.c: what --secure costs on the wire: round trips of one float payload
 * DEALER -> ROUTER -> DEALER over TCP on loopback, plain text against CURVE (proto/secure.c,
 * with its guard), in MB/s of payload moved (both directions: 2 x payload per round trip,
 * MB = 10^6 bytes).
 *
 *   build/tests/bench/bench_curve [--floats 1048576] [--rounds 5] [--trips 20] [--warmup 3]
 *
 * Each side has a ZeroMQ context of its own (one I/O thread each, which is where CURVE
 * encrypts and decrypts), as two processes would; the ROUTER echoes on a thread of its own,
 * sending back the very message it received (no copy). Plain and CURVE pairs live at once
 * and the timed rounds alternate between them, so drift in the machine's load falls on both
 * alike. The median and the best round of each are printed (on a busy machine the best is
 * the nearer to the cost itself), with curve/plain ratios. Every reply is compared with what
 * was sent. The exit code is 0 only when every round trip came back whole. */
#include "proto/secure.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define TIMEOUT_MS 30000

typedef struct pair {
    const char *name;
    void *sctx, *cctx; /* server and client contexts */
    void *router, *dealer;
    pb_guard *guard;
    pthread_t echo;
    int echoing, echo_rc;
} pair;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Echoes [identity, payload] until an empty payload (or the context ends). */
static void *echo_main(void *arg) {
    pair *p = arg;
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, p->router, 0) < 0 || zmq_msg_recv(&body, p->router, 0) < 0) {
            p->echo_rc = zmq_errno() == ETERM ? 0 : -1;
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            return NULL;
        }
        const int stop = zmq_msg_size(&body) == 0;
        if (zmq_msg_send(&id, p->router, ZMQ_SNDMORE) < 0 ||
            zmq_msg_send(&body, p->router, 0) < 0) {
            p->echo_rc = -1;
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            return NULL;
        }
        if (stop)
            return NULL;
    }
}

static void *socket_of(void *ctx, int type) {
    void *s = zmq_socket(ctx, type);
    if (!s)
        return NULL;
    const int zero = 0, timeout = TIMEOUT_MS;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    return s;
}

/* Sets up a connected pair with its echo thread; keys NULL: plain text. */
static int pair_open(pair *p, const char *name, const pb_keys *keys) {
    memset(p, 0, sizeof *p);
    p->name = name;
    char err[256] = "", ep[128];
    p->sctx = zmq_ctx_new();
    p->cctx = zmq_ctx_new();
    p->router = socket_of(p->sctx, ZMQ_ROUTER);
    p->dealer = socket_of(p->cctx, ZMQ_DEALER);
    if (!p->router || !p->dealer) {
        fprintf(stderr, "bench_curve: %s: zmq_socket: %s\n", name, zmq_strerror(zmq_errno()));
        return -1;
    }
    if (keys &&
        (pb_secure_server(p->router, keys, err, sizeof err) != 0 ||
         !(p->guard = pb_guard_new(p->sctx, keys, p->router, stderr, name, err, sizeof err)) ||
         pb_secure_client(p->dealer, keys, err, sizeof err) != 0)) {
        fprintf(stderr, "bench_curve: %s\n", err);
        return -1;
    }
    size_t len = sizeof ep;
    if (zmq_bind(p->router, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(p->router, ZMQ_LAST_ENDPOINT, ep, &len) != 0 ||
        zmq_connect(p->dealer, ep) != 0) {
        fprintf(stderr, "bench_curve: %s: bind or connect: %s\n", name, zmq_strerror(zmq_errno()));
        return -1;
    }
    if (pthread_create(&p->echo, NULL, echo_main, p) != 0) {
        fprintf(stderr, "bench_curve: %s: pthread_create failed\n", name);
        return -1;
    }
    p->echoing = 1;
    return 0;
}

static void pair_close(pair *p) {
    if (p->echoing) {
        zmq_send(p->dealer, "", 0, 0); /* stops the echo; its answer is not waited for */
        pthread_join(p->echo, NULL);
    }
    if (p->dealer)
        zmq_close(p->dealer);
    if (p->router)
        zmq_close(p->router);
    pb_guard_free(&p->guard);
    if (p->sctx)
        zmq_ctx_term(p->sctx);
    if (p->cctx)
        zmq_ctx_term(p->cctx);
}

/* trips round trips of buf (bytes); returns the seconds they took, or -1. */
static double run_trips(pair *p, const void *buf, size_t bytes, int trips) {
    const double t0 = now_s();
    for (int i = 0; i < trips; i++) {
        if (zmq_send(p->dealer, buf, bytes, 0) != (int)bytes) {
            fprintf(stderr, "bench_curve: %s: send: %s\n", p->name, zmq_strerror(zmq_errno()));
            return -1;
        }
        zmq_msg_t r;
        zmq_msg_init(&r);
        const int n = zmq_msg_recv(&r, p->dealer, 0);
        const int same = n == (int)bytes && memcmp(zmq_msg_data(&r), buf, bytes) == 0;
        zmq_msg_close(&r);
        if (!same) {
            fprintf(stderr, "bench_curve: %s: trip %d: %s\n", p->name, i,
                    n < 0 ? zmq_strerror(zmq_errno()) : "the reply differs from what was sent");
            return -1;
        }
    }
    return now_s() - t0;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int arg_int(int argc, char **argv, int *i, const char *name, int *out) {
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc || (*out = atoi(argv[*i + 1])) <= 0) {
        fprintf(stderr, "bench_curve: %s: expected a positive integer\n", name);
        exit(2);
    }
    (*i)++;
    return 1;
}

int main(int argc, char **argv) {
    int floats = 1 << 20, rounds = 5, trips = 20, warmup = 3;
    for (int i = 1; i < argc; i++)
        if (!arg_int(argc, argv, &i, "--floats", &floats) &&
            !arg_int(argc, argv, &i, "--rounds", &rounds) &&
            !arg_int(argc, argv, &i, "--trips", &trips) &&
            !arg_int(argc, argv, &i, "--warmup", &warmup)) {
            fprintf(stderr, "usage: %s [--floats N] [--rounds R] [--trips T] [--warmup W]\n",
                    argv[0]);
            return 2;
        }
    const size_t bytes = sizeof(float) * (size_t)floats;
    float *buf = malloc(bytes);
    double *mbs[2] = {calloc((size_t)rounds, sizeof(double)),
                      calloc((size_t)rounds, sizeof(double))};
    if (!buf || !mbs[0] || !mbs[1]) {
        fprintf(stderr, "bench_curve: out of memory\n");
        return 1;
    }
    for (int i = 0; i < floats; i++)
        buf[i] = (float)i * 0.001f - 3.0f;

    pb_keys keys;
    char err[256] = "";
    if (pb_keys_new(&keys, err, sizeof err) != 0) {
        fprintf(stderr, "bench_curve: %s\n", err);
        return 1;
    }
    pair pp[2];
    memset(pp, 0, sizeof pp);
    int rc = 1;
    if (pair_open(&pp[0], "plain", NULL) != 0 || pair_open(&pp[1], "curve", &keys) != 0)
        goto done;
    for (int k = 0; k < 2; k++)
        if (run_trips(&pp[k], buf, bytes, warmup) < 0)
            goto done;
    printf("bench_curve: %zu-byte payload (%d floats), DEALER -> ROUTER -> DEALER over "
           "tcp://127.0.0.1, %d rounds of %d round trips after %d warm-up\n",
           bytes, floats, rounds, trips, warmup);
    printf("%-6s %12s %12s %12s %12s %8s\n", "round", "plain MB/s", "curve MB/s", "plain ms/rt",
           "curve ms/rt", "ratio");
    for (int r = 0; r < rounds; r++) {
        double s[2];
        for (int k = 0; k < 2; k++) { /* alternate which goes first */
            const int which = (r + k) % 2;
            s[which] = run_trips(&pp[which], buf, bytes, trips);
            if (s[which] < 0)
                goto done;
            mbs[which][r] = 2.0 * (double)bytes * trips / s[which] / 1e6;
        }
        printf("%-6d %12.1f %12.1f %12.2f %12.2f %8.3f\n", r + 1, mbs[0][r], mbs[1][r],
               1e3 * s[0] / trips, 1e3 * s[1] / trips, mbs[1][r] / mbs[0][r]);
    }
    qsort(mbs[0], (size_t)rounds, sizeof(double), cmp_double);
    qsort(mbs[1], (size_t)rounds, sizeof(double), cmp_double);
    const double m0 = mbs[0][rounds / 2], m1 = mbs[1][rounds / 2];
    printf("%-6s %12.1f %12.1f %12.2f %12.2f %8.3f\n", "median", m0, m1,
           2e3 * (double)bytes / 1e6 / m0, 2e3 * (double)bytes / 1e6 / m1, m1 / m0);
    /* Load from other processes only ever slows a round: the best is the closest to the
     * cost itself on a busy machine. */
    const double b0 = mbs[0][rounds - 1], b1 = mbs[1][rounds - 1];
    printf("%-6s %12.1f %12.1f %12.2f %12.2f %8.3f\n", "best", b0, b1,
           2e3 * (double)bytes / 1e6 / b0, 2e3 * (double)bytes / 1e6 / b1, b1 / b0);
    printf("CURVE refusals: %llu\n", (unsigned long long)pb_guard_refused(pp[1].guard));
    rc = 0;
done:
    pair_close(&pp[0]);
    pair_close(&pp[1]);
    if (pp[0].echo_rc || pp[1].echo_rc)
        rc = 1;
    pb_keys_wipe(&keys);
    free(buf);
    free(mbs[0]);
    free(mbs[1]);
    return rc;
}
