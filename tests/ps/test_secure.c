/* test_secure.c: --secure's CURVE keys, sockets and guard (proto/secure.c), with real ZeroMQ
 * sockets over TCP on 127.0.0.1, ephemeral ports, in this process.
 *
 * A ROUTER made a CURVE server (pb_secure_server) and guarded (pb_guard_new, watching the
 * ROUTER) echoes what the job's own client (pb_secure_client) sends. Strangers get nothing
 * and deliver nothing, and each kind is logged with its reason: a plain-text client (no
 * CURVE keys), a client that knows the server's public key but has its own key pair, and a
 * client of another job (another server key). Retries of one stranger are counted in full
 * and logged once, the rest summed when the guard stops. Keys are fresh each time; the
 * guard stops in either order with zmq_ctx_term (run under the ASan build for leaks); a
 * second guard in one context and keys set after bind or connect are refused. Client sockets
 * live in a context of their own, as they would in another process. */
#include "proto/secure.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

enum { TIMEOUT_MS = 5000, QUIET_MS = 1000 };
#define WHO "test-server"

typedef struct fixture {
    pb_keys keys;
    void *ctx, *cctx; /* the server's context; the clients' */
    void *router;
    void *dealers[4];
    int ndealers;
    pb_guard *guard;
    FILE *log;
    char endpoint[128];
} fixture;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *new_socket(void *ctx, int type) {
    void *s = zmq_socket(ctx, type);
    assert_non_null(s);
    const int linger = 0, timeout = TIMEOUT_MS;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    return s;
}

/* The guarded CURVE ROUTER, bound to an ephemeral port. */
static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char err[256] = "";
    if (pb_keys_new(&f->keys, err, sizeof err) != 0)
        fail_msg("pb_keys_new: %s", err);
    f->ctx = zmq_ctx_new();
    f->cctx = zmq_ctx_new();
    assert_non_null(f->ctx);
    assert_non_null(f->cctx);
    f->log = tmpfile();
    assert_non_null(f->log);
    f->router = new_socket(f->ctx, ZMQ_ROUTER);
    if (pb_secure_server(f->router, &f->keys, err, sizeof err) != 0)
        fail_msg("pb_secure_server: %s", err);
    f->guard = pb_guard_new(f->ctx, &f->keys, f->router, f->log, WHO, err, sizeof err);
    if (!f->guard)
        fail_msg("pb_guard_new: %s", err);
    if (zmq_bind(f->router, "tcp://127.0.0.1:*") != 0)
        fail_msg("bind: %s", zmq_strerror(errno));
    size_t len = sizeof f->endpoint;
    assert_int_equal(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    for (int i = 0; i < f->ndealers; i++)
        zmq_close(f->dealers[i]);
    if (f->router)
        zmq_close(f->router); /* before the guard stops: see pb_guard_new */
    pb_guard_free(&f->guard);
    zmq_ctx_term(f->ctx);
    zmq_ctx_term(f->cctx);
    fclose(f->log);
    pb_keys_wipe(&f->keys);
    free(f);
    return 0;
}

/* A DEALER connected to the server: a CURVE client with keys, or plain text (NULL). */
static void *dealer(fixture *f, const pb_keys *keys) {
    assert_true(f->ndealers < (int)(sizeof f->dealers / sizeof f->dealers[0]));
    void *s = new_socket(f->cctx, ZMQ_DEALER);
    f->dealers[f->ndealers++] = s;
    char err[256] = "";
    if (keys && pb_secure_client(s, keys, err, sizeof err) != 0)
        fail_msg("pb_secure_client: %s", err);
    if (zmq_connect(s, f->endpoint) != 0)
        fail_msg("connect %s: %s", f->endpoint, zmq_strerror(errno));
    return s;
}

static void close_dealers(fixture *f) {
    while (f->ndealers > 0)
        zmq_close(f->dealers[--f->ndealers]);
}

static int readable_within(void *sock, int ms) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    const int r = zmq_poll(&item, 1, ms);
    assert_true(r >= 0);
    return r > 0;
}

/* Waits up to ms for at least n refusals; returns the count. */
static uint64_t wait_refused(const pb_guard *g, uint64_t n, int ms) {
    for (int waited = 0; pb_guard_refused(g) < n && waited < ms; waited += 10)
        sleep_ms(10);
    return pb_guard_refused(g);
}

/* The log so far (the guard flushes each line), in buf. */
static const char *read_log(fixture *f, char *buf, size_t len) {
    const ssize_t n = pread(fileno(f->log), buf, len - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    return buf;
}

static int count_lines(const char *log, const char *needle) {
    int n = 0;
    for (const char *line = log; *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        char one[512];
        snprintf(one, sizeof one, "%.*s", (int)len, line);
        n += strstr(one, needle) != NULL;
        line += len + (end != NULL);
    }
    return n;
}

/* The refusals a log accounts for: one a "refused a connection" line, plus its ", and N
 * more since the last line", plus N of each "refused N more connection(s)" line. */
static uint64_t log_total(const char *log) {
    uint64_t total = 0;
    for (const char *line = log; *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        char one[512];
        snprintf(one, sizeof one, "%.*s", (int)len, line);
        unsigned long long n = 0;
        const char *tail = strstr(one, ", and ");
        if (strstr(one, "refused a connection from"))
            total += 1 + (tail && sscanf(tail, ", and %llu more", &n) == 1 ? n : 0);
        else if (sscanf(one, WHO ": refused %llu more connection", &n) == 1)
            total += n;
        line += len + (end != NULL);
    }
    return total;
}

/* A stranger's message must not reach the server, nor anything come back. */
static void assert_nothing_through(fixture *f, void *d, const char *who) {
    zmq_send(d, who, strlen(who), ZMQ_DONTWAIT); /* queued until a handshake succeeds */
    if (readable_within(f->router, QUIET_MS))
        fail_msg("%s: the server received a message", who);
    if (readable_within(d, 10))
        fail_msg("%s: the client received a message", who);
}

/* --- tests --- */

static void job_client_gets_echo(void **state) {
    fixture *f = *state;
    void *d = dealer(f, &f->keys);
    assert_int_equal(zmq_send(d, "ping", 4, 0), 4);
    char id[256], body[16];
    const int idlen = zmq_recv(f->router, id, sizeof id, 0);
    if (idlen <= 0)
        fail_msg("the server got nothing from the job's client: %s", zmq_strerror(errno));
    assert_int_equal(zmq_recv(f->router, body, sizeof body, 0), 4);
    assert_memory_equal(body, "ping", 4);
    assert_int_equal(zmq_send(f->router, id, (size_t)idlen, ZMQ_SNDMORE), idlen);
    assert_int_equal(zmq_send(f->router, "pong", 4, 0), 4);
    assert_int_equal(zmq_recv(d, body, sizeof body, 0), 4);
    assert_memory_equal(body, "pong", 4);
    char log[4096];
    assert_int_equal(pb_guard_refused(f->guard), 0);
    assert_string_equal(read_log(f, log, sizeof log), "");
}

/* The log line of a refusal from 127.0.0.1 (or from an address the guard could not read in
 * time: the monitor's is best effort). */
static void assert_logged(fixture *f, const char *reason) {
    char log[8192], want[256], unknown[256];
    read_log(f, log, sizeof log);
    snprintf(want, sizeof want, WHO ": refused a connection from 127.0.0.1 (%s)", reason);
    snprintf(unknown, sizeof unknown, WHO ": refused a connection from an unknown address (%s)",
             reason);
    if (!strstr(log, want) && !strstr(log, unknown))
        fail_msg("no line \"%s\" in the log:\n%s", want, log);
    printf("log: %s", log);
}

/* Whichever side sees the mechanism mismatch first hangs up: when it is the client, the
 * server sees a connection closed during the handshake. The client retries every 100 ms, so
 * within a second the server has seen the mismatch itself too. */
static void plain_client_gets_nothing(void **state) {
    fixture *f = *state;
    void *d = dealer(f, NULL);
    assert_nothing_through(f, d, "plain text");
    if (wait_refused(f->guard, 1, TIMEOUT_MS) < 1)
        fail_msg("the plain-text client was not counted");
    char log[8192];
    if (!strstr(read_log(f, log, sizeof log), "(no CURVE keys)"))
        assert_logged(f, "closed during the handshake");
    else
        assert_logged(f, "no CURVE keys");
}

/* Knows the server's public key, but has a key pair of its own. */
static void stranger_key_gets_nothing(void **state) {
    fixture *f = *state;
    pb_keys other, k = f->keys;
    char err[256] = "";
    assert_int_equal(pb_keys_new(&other, err, sizeof err), 0);
    memcpy(k.client_public, other.client_public, sizeof k.client_public);
    memcpy(k.client_secret, other.client_secret, sizeof k.client_secret);
    void *d = dealer(f, &k);
    assert_nothing_through(f, d, "another client key");
    if (wait_refused(f->guard, 1, TIMEOUT_MS) < 1)
        fail_msg("the stranger was not counted");
    assert_logged(f, "not this job's key");
    char log[8192];
    assert_int_equal(count_lines(read_log(f, log, sizeof log), "refused"), 1);
    pb_keys_wipe(&other);
    pb_keys_wipe(&k);
}

/* A client of another job: another server key altogether. */
static void other_job_gets_nothing(void **state) {
    fixture *f = *state;
    pb_keys other;
    char err[256] = "";
    assert_int_equal(pb_keys_new(&other, err, sizeof err), 0);
    void *d = dealer(f, &other);
    assert_nothing_through(f, d, "another job");
    if (wait_refused(f->guard, 1, TIMEOUT_MS) < 1)
        fail_msg("the other job's client was not counted");
    assert_logged(f, "not this job's key");
    pb_keys_wipe(&other);
}

/* A stranger retrying is counted each time and logged once; the retries not logged are
 * summed in a line when the guard stops, so the log accounts for every refusal. (A client
 * with another server key retries every 100 ms, ZeroMQ's reconnect interval; libzmq 4.3
 * does not retry after a ZAP refusal.) */
static void retries_logged_once_and_summed(void **state) {
    fixture *f = *state;
    pb_keys other;
    char err[256] = "";
    assert_int_equal(pb_keys_new(&other, err, sizeof err), 0);
    void *d = dealer(f, &other);
    assert_nothing_through(f, d, "a stranger retrying");
    const uint64_t seen = wait_refused(f->guard, 6, TIMEOUT_MS);
    close_dealers(f);
    sleep_ms(200);
    zmq_close(f->router);
    f->router = NULL;
    const uint64_t n = pb_guard_refused(f->guard);
    pb_guard_free(&f->guard);
    assert_null(f->guard);
    char log[8192];
    read_log(f, log, sizeof log);
    printf("%llu refusals (%llu when waited for); log:\n%s", (unsigned long long)n,
           (unsigned long long)seen, log);
    /* At most one "refused a connection" line per address and reason: 127.0.0.1, or an
     * address the guard read too late; "not this job's key", or "closed during the
     * handshake" for the attempt cut short when the client closed. With 6 or more refusals
     * at least one of those four had a repeat, summed when the guard stopped. */
    assert_true(n >= 6);
    const char *addrs[] = {"127.0.0.1", "an unknown address"};
    const char *whys[] = {"not this job's key", "closed during the handshake"};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            char line[256];
            snprintf(line, sizeof line, "refused a connection from %s (%s)", addrs[i], whys[j]);
            assert_true(count_lines(log, line) <= 1);
        }
    assert_true(count_lines(log, " more connection") >= 1);
    assert_int_equal(log_total(log), n);
    pb_keys_wipe(&other);
}

/* Bytes that are not ZeroMQ at all (a stray HTTP request), from a ZMQ_STREAM socket: libzmq
 * drops the connection without a handshake event, so the guard cannot log it (see
 * pb_guard_new); the server gets nothing. */
static void garbage_gets_nothing(void **state) {
    fixture *f = *state;
    void *raw = new_socket(f->cctx, ZMQ_STREAM);
    f->dealers[f->ndealers++] = raw;
    assert_int_equal(zmq_connect(raw, f->endpoint), 0);
    /* A STREAM socket names its connection with the first (empty) message it receives. */
    assert_true(readable_within(raw, TIMEOUT_MS));
    uint8_t id[256];
    const int n = zmq_recv(raw, id, sizeof id, 0);
    assert_true(n > 0);
    char scratch[64];
    zmq_recv(raw, scratch, sizeof scratch, 0);
    const char *http = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(zmq_send(raw, id, (size_t)n, ZMQ_SNDMORE), n);
    assert_int_equal(zmq_send(raw, http, strlen(http), 0), (int)strlen(http));
    assert_false(readable_within(f->router, QUIET_MS));
}

static void keys_are_fresh(void **state) {
    (void)state;
    pb_keys a, b;
    char err[256] = "";
    assert_int_equal(pb_keys_new(&a, err, sizeof err), 0);
    assert_int_equal(pb_keys_new(&b, err, sizeof err), 0);
    const char *ka[] = {a.server_public, a.server_secret, a.client_public, a.client_secret};
    const char *kb[] = {b.server_public, b.server_secret, b.client_public, b.client_secret};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(strlen(ka[i]), 40);
        assert_int_equal(strlen(kb[i]), 40);
        assert_string_not_equal(ka[i], kb[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ka[i], ka[j]);
    }
    /* Each public key belongs to its secret key. */
    char pub[41];
    assert_int_equal(zmq_curve_public(pub, a.server_secret), 0);
    assert_string_equal(pub, a.server_public);
    assert_int_equal(zmq_curve_public(pub, a.client_secret), 0);
    assert_string_equal(pub, a.client_public);
    assert_true(a.token != 0 && b.token != 0);
    assert_true(a.token != b.token);
    pb_keys_wipe(&a);
    const pb_keys zero = {0};
    assert_memory_equal(&a, &zero, sizeof a);
    pb_keys_wipe(&b);
    pb_keys_wipe(NULL);
}

/* Either order, with a guard that has answered and refused; under ASan: no leak. A hang
 * would end the run by SIGALRM. */
static void free_orders(void **state) {
    (void)state;
    for (int order = 0; order < 2; order++) {
        fixture *f = NULL;
        void *st = NULL;
        setup(&st);
        f = st;
        void *good = dealer(f, &f->keys);
        assert_int_equal(zmq_send(good, "x", 1, 0), 1);
        assert_true(readable_within(f->router, TIMEOUT_MS));
        (void)dealer(f, NULL);
        wait_refused(f->guard, 1, TIMEOUT_MS);
        close_dealers(f);
        zmq_close(f->router);
        f->router = NULL;
        alarm(20);
        if (order == 0) {
            pb_guard_free(&f->guard); /* then zmq_ctx_term, in teardown */
        } else {
            zmq_ctx_term(f->ctx); /* the guard's thread leaves on ETERM */
            f->ctx = zmq_ctx_new();
            pb_guard_free(&f->guard);
        }
        teardown(&st);
        alarm(0);
    }
    pb_guard *none = NULL;
    pb_guard_free(&none);
    pb_guard_free(NULL);
}

static void one_guard_per_context(void **state) {
    fixture *f = *state;
    char err[256] = "";
    pb_guard *second = pb_guard_new(f->ctx, &f->keys, NULL, NULL, "second", err, sizeof err);
    assert_null(second);
    printf("second guard: %s\n", err);
    assert_non_null(strstr(err, "ZAP handler already"));
}

static void keys_after_bind_or_connect_refused(void **state) {
    fixture *f = *state;
    char err[256] = "";
    void *s = new_socket(f->ctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
    assert_int_not_equal(pb_secure_server(s, &f->keys, err, sizeof err), 0);
    printf("after bind: %s\n", err);
    assert_non_null(strstr(err, "already has an endpoint"));
    zmq_close(s);
    void *c = new_socket(f->cctx, ZMQ_DEALER);
    assert_int_equal(zmq_connect(c, f->endpoint), 0);
    err[0] = '\0';
    assert_int_not_equal(pb_secure_client(c, &f->keys, err, sizeof err), 0);
    printf("after connect: %s\n", err);
    zmq_close(c);
    pb_keys bad = f->keys;
    bad.server_secret[5] = '\0';
    s = new_socket(f->ctx, ZMQ_ROUTER);
    assert_int_not_equal(pb_secure_server(s, &bad, err, sizeof err), 0);
    printf("short key: %s\n", err);
    zmq_close(s);
    pb_keys_wipe(&bad);
}

/* Without the monitor or a log: ZAP alone still keeps a stranger out and counts it. */
static void zap_only_guard(void **state) {
    fixture *f = *state;
    char err[256] = "";
    void *ctx = zmq_ctx_new();
    void *r = new_socket(ctx, ZMQ_ROUTER);
    assert_int_equal(pb_secure_server(r, &f->keys, err, sizeof err), 0);
    pb_guard *g = pb_guard_new(ctx, &f->keys, NULL, NULL, "quiet", err, sizeof err);
    assert_non_null(g);
    assert_int_equal(zmq_bind(r, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t len = sizeof ep;
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, ep, &len);
    pb_keys other, k = f->keys;
    assert_int_equal(pb_keys_new(&other, err, sizeof err), 0);
    memcpy(k.client_public, other.client_public, sizeof k.client_public);
    memcpy(k.client_secret, other.client_secret, sizeof k.client_secret);
    void *d = new_socket(f->cctx, ZMQ_DEALER);
    assert_int_equal(pb_secure_client(d, &k, err, sizeof err), 0);
    assert_int_equal(zmq_connect(d, ep), 0);
    zmq_send(d, "x", 1, ZMQ_DONTWAIT);
    assert_false(readable_within(r, QUIET_MS));
    assert_true(wait_refused(g, 1, TIMEOUT_MS) >= 1);
    zmq_close(d);
    zmq_close(r);
    pb_guard_free(&g);
    zmq_ctx_term(ctx);
    pb_keys_wipe(&other);
    pb_keys_wipe(&k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(job_client_gets_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_client_gets_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(stranger_key_gets_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(other_job_gets_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(retries_logged_once_and_summed, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_gets_nothing, setup, teardown),
        cmocka_unit_test(keys_are_fresh),
        cmocka_unit_test(free_orders),
        cmocka_unit_test_setup_teardown(one_guard_per_context, setup, teardown),
        cmocka_unit_test_setup_teardown(keys_after_bind_or_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(zap_only_guard, setup, teardown),
    };
    return cmocka_run_group_tests_name("secure", tests, NULL, NULL);
}
