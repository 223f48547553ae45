/* bench_pushpull.c: the parameter-server round trip a sync worker makes every step (push its
 * gradient, pull the new weights) against 1, 2 and 4 servers on loopback, beside raw ZeroMQ
 * moving the same bytes between the same number of processes in the same run.
 *
 *   build/tests/bench/bench_pushpull [--model mnist_cnn] [--servers 1,2,4] [--rounds 300]
 *                                    [--warmup 30] [--json]
 *
 * pstrain: P forked ps_server processes (PS_SYNC, one worker, Adam) and, in this process, one
 *   wk_client doing wk_client_push, wk_client_pull_send, wk_client_pull_wait per round. Each
 *   server applies Adam to its shard between the push and the pull reply: that is part of
 *   the round trip, as it is in training.
 * raw ZeroMQ: P forked echo processes (a ROUTER each) and one DEALER per echo here; a round
 *   sends each its shard straight from the gradient (zmq_msg_init_data, no copy) and receives
 *   each reply into the destination (zmq_recv, one copy), as the client does. No header, no
 *   optimizer, one message per shard.
 * Both sets of processes live at once and the timed rounds alternate between them in blocks,
 *   so drift in the machine's load falls on both alike. Nothing is pinned: 4 servers and the
 *   client oversubscribe a 2-core machine.
 * Adam: eng_adam_update over one server's shard in this process, best of 20, to show how
 *   much of the round the optimizer accounts for.
 *
 * Every child is killed and reaped on any failure; the exit code is 0 only when every round
 * came back whole and every child exited 0. */
#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "engine/shard.h"
#include "ps/server.h"
#include "worker/client.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define MAX_SERVERS 16
#define BLOCK_ROUNDS 10  /* timed rounds per turn before switching implementation */
#define TIMEOUT_MS 10000 /* any wait for a child or a reply */
#define ENDPOINT_LEN 160

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --- children: forked servers and echoes, always reaped --- */

typedef struct children {
    pid_t pid[2 * MAX_SERVERS];
    int n;
} children;

typedef enum child_kind { CHILD_SERVER, CHILD_ECHO } child_kind;

/* Kills and reaps every child still listed. */
static void children_kill(children *ch) {
    for (int i = 0; i < ch->n; i++)
        if (ch->pid[i] > 0) {
            kill(ch->pid[i], SIGKILL);
            waitpid(ch->pid[i], NULL, 0);
            ch->pid[i] = 0;
        }
    ch->n = 0;
}

/* Waits up to TIMEOUT_MS for every child to exit by itself. Returns 0 when all exited 0;
 * otherwise kills the rest and returns -1 with err naming the first that did not. */
static int children_reap(children *ch, char *err, size_t errlen) {
    int rc = 0;
    const double deadline = now() + TIMEOUT_MS / 1000.0;
    for (int i = 0; i < ch->n; i++) {
        int status = 0;
        pid_t got;
        while ((got = waitpid(ch->pid[i], &status, WNOHANG)) == 0 && now() < deadline) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        if (got == ch->pid[i]) {
            ch->pid[i] = 0;
            if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                rc = pst_err(err, errlen, PST_EIO, "child %d (pid %d): %s %d", i, (int)got,
                             WIFEXITED(status) ? "exit status" : "killed by signal",
                             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        } else if (rc == 0) {
            rc = pst_err(err, errlen, PST_EIO, "child %d (pid %d): still running after %d s", i,
                         (int)ch->pid[i], TIMEOUT_MS / 1000);
        }
    }
    children_kill(ch);
    return rc;
}

/* Writes all of msg (with its NUL) to fd. */
static void write_all(int fd, const char *msg) {
    size_t left = strlen(msg) + 1;
    while (left > 0) {
        ssize_t w = write(fd, msg, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        msg += w;
        left -= (size_t)w;
    }
}

/* The most floats per push/pull message (--chunk; 0, no limit, is pstrain's default). */
static size_t chunk_floats = 0;
/* Threads for each server's update (--server-threads; pstrain's default is 1). */
static int server_threads = 1;

/* The child's side of CHILD_SERVER: "E<endpoint>" or "X<error>" down fd, then serve. */
static int child_server(const eng_model *m, int P, int s, int fd) {
    char err[256];
    ps_config cfg = {.model = m,
                     .server_id = s,
                     .num_servers = P,
                     .num_workers = 1,
                     .mode = PS_SYNC,
                     .nparts = 1, /* the bench's models are classifiers: one part */
                     .parts = {{m, eng_optim_defaults(ENG_OPT_ADAM), 1}},
                     .bind_host = "127.0.0.1",
                     .advertise_host = "127.0.0.1",
                     .chunk = chunk_floats,
                     .threads = server_threads};
    ps_server *srv = ps_server_new(&cfg, err, sizeof err);
    char line[ENDPOINT_LEN + 256];
    snprintf(line, sizeof line, "%c%s", srv ? 'E' : 'X', srv ? ps_server_endpoint(srv) : err);
    write_all(fd, line);
    close(fd);
    if (!srv)
        return 1;
    int rc = ps_server_run(srv, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "bench_pushpull: %s\n", err);
    ps_server_free(&srv);
    return rc != 0;
}

/* The child's side of CHILD_ECHO: a ROUTER that answers each [identity, payload of bytes]
 * with bytes of its own (one copy out, as a server's pull reply), and an empty payload with
 * an empty one before it exits. */
static int child_echo(size_t bytes, int fd) {
    char line[ENDPOINT_LEN + 64] = "Xzmq: cannot create a socket";
    void *ctx = zmq_ctx_new(), *sock = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    char *buf = pst_alloc(bytes ? bytes : 1);
    int rc = 1;
    if (sock && buf) {
        int zero = 0;
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt(sock, ZMQ_RCVHWM, &zero, sizeof zero);
        char last[ENDPOINT_LEN];
        size_t len = sizeof last;
        if (zmq_bind(sock, "tcp://127.0.0.1:*") == 0 &&
            zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, last, &len) == 0)
            snprintf(line, sizeof line, "E%s", last);
        else
            snprintf(line, sizeof line, "Xzmq: bind tcp://127.0.0.1:*: %s", zmq_strerror(errno));
    }
    write_all(fd, line);
    close(fd);
    if (line[0] == 'E') {
        for (;;) {
            zmq_msg_t id, payload;
            zmq_msg_init(&id);
            zmq_msg_init(&payload);
            if (zmq_msg_recv(&id, sock, 0) < 0 || zmq_msg_recv(&payload, sock, 0) < 0 ||
                zmq_msg_more(&payload)) {
                zmq_msg_close(&id);
                zmq_msg_close(&payload);
                fprintf(stderr, "bench_pushpull: echo: receive failed or extra frames\n");
                break;
            }
            const size_t got = zmq_msg_size(&payload), out = got ? bytes : 0;
            int sent = zmq_msg_send(&id, sock, ZMQ_SNDMORE) >= 0 &&
                       zmq_send(sock, buf, out, 0) == (int)out;
            zmq_msg_close(&id);
            zmq_msg_close(&payload);
            if (!sent || (got != 0 && got != bytes)) {
                fprintf(stderr, "bench_pushpull: echo: expected %zu bytes, got %zu\n", bytes, got);
                break;
            }
            if (got == 0) {
                rc = 0;
                break;
            }
        }
    }
    pst_free(buf);
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

/* Forks a child of kind (server s of P, or an echo of the shard's bytes), adds it to ch, and
 * copies the endpoint it bound into endpoint. Returns 0, or -1 with err (the child's own
 * message when it could not bind). */
static int child_start(children *ch, child_kind kind, const eng_model *m, int P, int s,
                       char *endpoint, char *err, size_t errlen) {
    int fds[2];
    if (pipe(fds) != 0)
        return pst_err(err, errlen, PST_EIO, "pipe: %s", strerror(errno));
    fflush(NULL);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return pst_err(err, errlen, PST_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphans if the parent dies */
#endif
        if (getppid() != parent)
            _exit(1);
        size_t lo, n;
        eng_shard_range(m->layout.total, P, s, &lo, &n);
        _exit(kind == CHILD_SERVER ? child_server(m, P, s, fds[1])
                                   : child_echo(n * sizeof(float), fds[1]));
    }
    ch->pid[ch->n++] = pid;
    close(fds[1]);
    char line[ENDPOINT_LEN + 256];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fds[0], line + got, sizeof line - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    line[got] = '\0';
    const char *who = kind == CHILD_SERVER ? "server" : "echo";
    if (got == 0)
        return pst_err(err, errlen, PST_EIO, "%s %d: exited before it bound", who, s);
    if (line[0] != 'E' || strlen(line + 1) >= ENDPOINT_LEN)
        return pst_err(err, errlen, PST_EIO, "%s %d: %s", who, s, line + 1);
    memcpy(endpoint, line + 1, strlen(line + 1) + 1);
    return 0;
}

/* --- raw ZeroMQ: one DEALER per echo --- */

typedef struct raw_client {
    void *ctx;
    void *sock[MAX_SERVERS];
    size_t lo[MAX_SERVERS], n[MAX_SERVERS];
    int P;
} raw_client;

static void raw_close(raw_client *r) {
    for (int s = 0; s < r->P; s++)
        if (r->sock[s])
            zmq_close(r->sock[s]);
    if (r->ctx)
        zmq_ctx_term(r->ctx);
    memset(r, 0, sizeof *r);
}

static int raw_open(raw_client *r, char (*endpoints)[ENDPOINT_LEN], int P, size_t total, char *err,
                    size_t errlen) {
    memset(r, 0, sizeof *r);
    r->P = P;
    r->ctx = zmq_ctx_new();
    if (!r->ctx)
        return pst_err(err, errlen, PST_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
    for (int s = 0; s < P; s++) {
        eng_shard_range(total, P, s, &r->lo[s], &r->n[s]);
        r->sock[s] = zmq_socket(r->ctx, ZMQ_DEALER);
        int zero = 0, timeout = TIMEOUT_MS;
        if (r->sock[s]) {
            zmq_setsockopt(r->sock[s], ZMQ_LINGER, &zero, sizeof zero);
            zmq_setsockopt(r->sock[s], ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        }
        if (!r->sock[s] || zmq_connect(r->sock[s], endpoints[s]) != 0)
            return pst_err(err, errlen, PST_EIO, "echo %d at %s: cannot connect: %s", s,
                           endpoints[s], zmq_strerror(errno));
    }
    return 0;
}

static void keep(void *data, void *hint) {
    (void)data;
    (void)hint;
}

/* One round: each echo gets its shard of grads, sent from grads itself (no copy, as the
 * client pushes), and params gets each reply (one copy, as the client pulls). */
static int raw_round(raw_client *r, const float *grads, float *params, char *err, size_t errlen) {
    for (int s = 0; s < r->P; s++) {
        zmq_msg_t m;
        zmq_msg_init_data(&m, (void *)(grads + r->lo[s]), sizeof(float) * r->n[s], keep, NULL);
        if (zmq_msg_send(&m, r->sock[s], 0) < 0) {
            zmq_msg_close(&m);
            return pst_err(err, errlen, PST_EIO, "echo %d: send: %s", s, zmq_strerror(errno));
        }
    }
    for (int s = 0; s < r->P; s++) {
        const size_t bytes = sizeof(float) * r->n[s];
        const int got = zmq_recv(r->sock[s], params + r->lo[s], bytes, 0);
        if (got != (int)bytes)
            return pst_err(err, errlen, PST_EIO, "echo %d: expected %zu bytes, got %d (%s)", s,
                           bytes, got, got < 0 ? zmq_strerror(errno) : "wrong size");
    }
    return 0;
}

/* Tells every echo to exit. */
static int raw_goodbye(raw_client *r, char *err, size_t errlen) {
    for (int s = 0; s < r->P; s++) {
        char none;
        if (zmq_send(r->sock[s], "", 0, 0) != 0 || zmq_recv(r->sock[s], &none, 1, 0) != 0)
            return pst_err(err, errlen, PST_EIO, "echo %d: goodbye: %s", s, zmq_strerror(errno));
    }
    return 0;
}

/* --- pstrain: what a sync worker does per step --- */

/* Pushes step `step` computed on weights of version step, then pulls version step + 1. */
static int ps_round(wk_client *c, const float *grads, float *params, uint64_t step, char *err,
                    size_t errlen) {
    uint64_t version = 0;
    if (wk_client_push_pull(c, 0, grads, step, step, step + 1, err, errlen) != 0 ||
        wk_client_pull_wait(c, 0, params, &version, err, errlen) != 0)
        return -1;
    if (version != step + 1)
        return pst_err(
            err, errlen, PST_EFORMAT, "pull after step %llu: version %llu, expected %llu",
            (unsigned long long)step, (unsigned long long)version, (unsigned long long)(step + 1));
    return 0;
}

/* Microseconds for eng_adam_update over n floats, best of 20. */
static double adam_us(size_t n) {
    float *w = pst_alloc(sizeof(float) * n), *m = pst_alloc(sizeof(float) * n),
          *v = pst_alloc(sizeof(float) * n), *g = pst_alloc(sizeof(float) * n);
    PST_ASSERT(w && m && v && g, "out of memory for %zu floats", n);
    eng_rng r;
    eng_rng_seed(&r, 5);
    for (size_t i = 0; i < n; i++)
        g[i] = 1e-3f * (eng_rng_uniform(&r) - 0.5f);
    const eng_optim_cfg cfg = eng_optim_defaults(ENG_OPT_ADAM);
    double best = 1e30;
    for (int t = 1; t <= 20; t++) {
        const double t0 = now();
        eng_adam_update(w, m, v, g, n, t, &cfg);
        const double dt = now() - t0;
        if (dt < best)
            best = dt;
    }
    pst_free(w);
    pst_free(m);
    pst_free(v);
    pst_free(g);
    return best * 1e6;
}

typedef struct result {
    double ps_secs, raw_secs;
} result;

/* Starts P servers and P echoes, times `rounds` rounds of each after `warmup`, and shuts
 * everything down. Returns 0, or -1 with err; no child outlives the call. */
static int measure(const eng_model *m, int P, int warmup, int rounds, const float *grads,
                   float *params, result *res, char *err, size_t errlen) {
    children ch = {0};
    char endpoints[2 * MAX_SERVERS][ENDPOINT_LEN];
    const char *ps_eps[MAX_SERVERS];
    wk_client *c = NULL;
    raw_client raw = {0};
    uint64_t step = 0;
    /* Fork before this process has a ZeroMQ context: children must not inherit one. */
    for (int s = 0; s < P; s++) {
        if (child_start(&ch, CHILD_SERVER, m, P, s, endpoints[s], err, errlen) != 0 ||
            child_start(&ch, CHILD_ECHO, m, P, s, endpoints[P + s], err, errlen) != 0)
            goto fail;
        ps_eps[s] = endpoints[s];
    }
    c = wk_client_new(ps_eps, P, 0, 1, m, TIMEOUT_MS / 1000.0, NULL, err, errlen);
    if (!c || raw_open(&raw, endpoints + P, P, m->layout.total, err, errlen) != 0)
        goto fail;
    for (int i = 0; i < warmup; i++, step++)
        if (ps_round(c, grads, params, step, err, errlen) != 0 ||
            raw_round(&raw, grads, params, err, errlen) != 0)
            goto fail;
    res->ps_secs = res->raw_secs = 0.0;
    for (int done = 0, turn = 0; done < rounds; turn++) {
        const int b = rounds - done < BLOCK_ROUNDS ? rounds - done : BLOCK_ROUNDS;
        for (int half = 0; half < 2; half++) {
            const int ps_now = (half + turn) % 2 == 0; /* alternate which goes first */
            const double t0 = now();
            for (int i = 0; i < b; i++)
                if (ps_now ? ps_round(c, grads, params, step + (uint64_t)i, err, errlen) != 0
                           : raw_round(&raw, grads, params, err, errlen) != 0)
                    goto fail;
            *(ps_now ? &res->ps_secs : &res->raw_secs) += now() - t0;
            if (ps_now)
                step += (uint64_t)b;
        }
        done += b;
    }
    if (wk_client_shutdown(c, NULL, err, errlen) != 0 || raw_goodbye(&raw, err, errlen) != 0)
        goto fail;
    wk_client_free(&c);
    raw_close(&raw);
    return children_reap(&ch, err, errlen);
fail:
    children_kill(&ch);
    wk_client_free(&c);
    raw_close(&raw);
    return -1;
}

int main(int argc, char **argv) {
    pst_flush_denormals(); /* as pstrain runs */
    const char *model = "mnist_cnn", *servers_list = "1,2,4";
    int rounds = 300, warmup = 30, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_pushpull: %s: unknown flag or missing value\n", a);
            return 2;
        }
        if (strcmp(a, "--model") == 0)
            model = v;
        else if (strcmp(a, "--servers") == 0)
            servers_list = v;
        else if (strcmp(a, "--rounds") == 0)
            rounds = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atoi(v);
        else if (strcmp(a, "--chunk") == 0)
            chunk_floats = (size_t)atoll(v);
        else if (strcmp(a, "--server-threads") == 0)
            server_threads = atoi(v);
        else {
            fprintf(stderr, "bench_pushpull: %s: unknown flag\n", a);
            return 2;
        }
        i++;
    }
    const eng_model_def *def = eng_model_find(model);
    if (!def || rounds < 1 || warmup < 0) {
        fprintf(stderr, "bench_pushpull: bad --model, --rounds or --warmup\n");
        return 2;
    }
    eng_model m;
    char err[512];
    if (eng_model_build(&m, def, err, sizeof err) != PST_OK) {
        fprintf(stderr, "bench_pushpull: %s\n", err);
        return 2;
    }
    const size_t total = m.layout.total;
    const double bytes = 2.0 * (double)total * sizeof(float); /* per round: push + pull */
    int Ps[MAX_SERVERS], nP = 0;
    char list[64];
    snprintf(list, sizeof list, "%s", servers_list);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *end;
        const long P = strtol(tok, &end, 10);
        if (*end != '\0' || P < 1 || P > MAX_SERVERS || nP == MAX_SERVERS) {
            fprintf(stderr,
                    "bench_pushpull: --servers %s: expected a list like 1,2,4, each 1..%d\n",
                    servers_list, MAX_SERVERS);
            return 2;
        }
        Ps[nP++] = (int)P;
    }
    if (nP == 0) {
        fprintf(stderr, "bench_pushpull: --servers: expected a list like 1,2,4\n");
        return 2;
    }
    float *grads = pst_alloc(sizeof(float) * total), *params = pst_alloc(sizeof(float) * total);
    PST_ASSERT(grads && params, "out of memory for %zu floats", total);
    eng_rng r;
    eng_rng_seed(&r, 3);
    for (size_t i = 0; i < total; i++)
        grads[i] = 1e-3f * (eng_rng_uniform(&r) - 0.5f);

    int status = 0;
    for (int k = 0; k < nP; k++) {
        const int P = Ps[k];
        result res;
        if (measure(&m, P, warmup, rounds, grads, params, &res, err, sizeof err) != 0) {
            fprintf(stderr, "bench_pushpull: %d servers: %s\n", P, err);
            status = 1;
            break;
        }
        size_t lo, n;
        eng_shard_range(total, P, 0, &lo, &n);
        const double adam = adam_us(n);
        const double ps_mbs = bytes * rounds / res.ps_secs * 1e-6,
                     raw_mbs = bytes * rounds / res.raw_secs * 1e-6;
        const double ps_us = res.ps_secs / rounds * 1e6, raw_us = res.raw_secs / rounds * 1e6;
        const double ratio = ps_mbs / raw_mbs;
        if (json) {
            printf("{\"impl\":\"pstrain\",\"model\":\"%s\",\"servers\":%d,\"rounds\":%d,"
                   "\"bytes_per_round\":%.0f,\"mb_per_sec\":%.1f,\"us_per_round\":%.1f}\n",
                   model, P, rounds, bytes, ps_mbs, ps_us);
            printf("{\"impl\":\"raw_zmq\",\"model\":\"%s\",\"servers\":%d,\"rounds\":%d,"
                   "\"bytes_per_round\":%.0f,\"mb_per_sec\":%.1f,\"us_per_round\":%.1f}\n",
                   model, P, rounds, bytes, raw_mbs, raw_us);
            printf("{\"impl\":\"ratio\",\"model\":\"%s\",\"servers\":%d,\"pstrain_over_raw\":%.3f,"
                   "\"target\":0.8,\"met\":%s,\"adam_floats\":%zu,\"adam_us\":%.1f}\n",
                   model, P, ratio, ratio >= 0.8 ? "true" : "false", n, adam);
        } else {
            char who[32];
            snprintf(who, sizeof who, "%d server%s", P, P == 1 ? "" : "s");
            printf("pushpull %s, %-9s: pstrain  %7.1f MB/s, %7.1f us/round\n", model, who, ps_mbs,
                   ps_us);
            printf("pushpull %s, %-9s: raw zmq  %7.1f MB/s, %7.1f us/round\n", model, who, raw_mbs,
                   raw_us);
            printf("pushpull %s, %-9s: pstrain/raw %.2f (target 0.80: %s); Adam on one shard of "
                   "%zu floats %.1f us (%.0f%% of a pstrain round)\n",
                   model, who, ratio, ratio >= 0.8 ? "met" : "not met", n, adam,
                   100.0 * adam / ps_us);
        }
        fflush(stdout);
    }
    pst_free(grads);
    pst_free(params);
    return status;
}
