/* secure.c: the job's CURVE keys, secure sockets, and the guard that answers ZAP requests
 * and logs strangers. */
#define _DEFAULT_SOURCE /* explicit_bzero */

#include "proto/secure.h"

#include "engine/base/base.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01" /* RFC 27: fixed by ZeroMQ */
#define KEY_Z85 40                            /* characters of a Z85 CURVE key */
#define ADDR_MAX 64                           /* an IPv6 address and then some */
#define ZAP_MAX_FRAMES 8                      /* a ZAP request has 6 + credentials */
enum { QUIET_SLOTS = 16 };

/* --- keys --- */

int pb_keys_new(pb_keys *k, char *err, size_t errlen) {
    memset(k, 0, sizeof *k);
    if (!zmq_has("curve"))
        return pst_err(err, errlen, PST_ESOCKET,
                       "--secure: this libzmq was built without CURVE (zmq_has(\"curve\") is 0): "
                       "install a libzmq with libsodium (Debian: libzmq5)");
    if (zmq_curve_keypair(k->server_public, k->server_secret) != 0 ||
        zmq_curve_keypair(k->client_public, k->client_secret) != 0) {
        const int e = zmq_errno();
        pb_keys_wipe(k);
        return pst_err(err, errlen, PST_ESOCKET, "--secure: zmq_curve_keypair: %s",
                       zmq_strerror(e));
    }
    while (k->token == 0) {
        const ssize_t n = getrandom(&k->token, sizeof k->token, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof k->token) {
            const int e = n < 0 ? errno : EIO;
            pb_keys_wipe(k);
            return pst_err(err, errlen, PST_ESOCKET, "--secure: getrandom: %s", strerror(e));
        }
    }
    return PST_OK;
}

void pb_keys_wipe(pb_keys *k) {
    if (k)
        explicit_bzero(k, sizeof *k);
}

/* --- sockets --- */

/* 0 when sock has no endpoint yet (neither bound nor connected). */
static int check_fresh(void *sock, const char *side, char *err, size_t errlen) {
    char last[256] = "";
    size_t len = sizeof last;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, last, &len) != 0)
        return pst_err(err, errlen, PST_ESOCKET, "CURVE %s: zmq_getsockopt: %s", side,
                       zmq_strerror(zmq_errno()));
    if (last[0])
        return pst_err(err, errlen, PST_ESOCKET,
                       "CURVE %s: the socket already has an endpoint (%s): set keys before bind "
                       "or connect, or that endpoint stays plain text",
                       side, last);
    return PST_OK;
}

static int check_key(const char *key, const char *side, const char *what, char *err,
                     size_t errlen) {
    if (strnlen(key, KEY_Z85 + 1) != KEY_Z85)
        return pst_err(err, errlen, PST_ESOCKET,
                       "CURVE %s: %s: expected %d Z85 characters, got %zu", side, what, KEY_Z85,
                       strnlen(key, KEY_Z85 + 1));
    return PST_OK;
}

/* Sets a Z85 key option (41 bytes: the NUL-terminated form). */
static int set_key(void *sock, int option, const char *key, const char *side, const char *what,
                   char *err, size_t errlen) {
    if (check_key(key, side, what, err, errlen) != PST_OK)
        return PST_ESOCKET;
    if (zmq_setsockopt(sock, option, key, KEY_Z85 + 1) != 0)
        return pst_err(err, errlen, PST_ESOCKET, "CURVE %s: %s: %s", side, what,
                       zmq_strerror(zmq_errno()));
    return PST_OK;
}

int pb_secure_server(void *sock, const pb_keys *k, char *err, size_t errlen) {
    if (check_fresh(sock, "server", err, errlen) != PST_OK)
        return PST_ESOCKET;
    const int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0)
        return pst_err(err, errlen, PST_ESOCKET, "CURVE server: ZMQ_CURVE_SERVER: %s",
                       zmq_strerror(zmq_errno()));
    if (set_key(sock, ZMQ_CURVE_SECRETKEY, k->server_secret, "server", "server secret key", err,
                errlen) != PST_OK)
        return PST_ESOCKET;
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, PB_ZAP_DOMAIN, strlen(PB_ZAP_DOMAIN)) != 0)
        return pst_err(err, errlen, PST_ESOCKET, "CURVE server: ZMQ_ZAP_DOMAIN: %s",
                       zmq_strerror(zmq_errno()));
    return PST_OK;
}

void *pb_dealer_new(void *ctx, const char *endpoint, int sndhwm, const pb_keys *k, char *err,
                    size_t errlen) {
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (!s) {
        pst_err(err, errlen, PST_ESOCKET, "%s: zmq: %s", endpoint, zmq_strerror(errno));
        return NULL;
    }
    const int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (sndhwm >= 0)
        zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    if (k && pb_secure_client(s, k, err, errlen) != PST_OK) {
        zmq_close(s);
        return NULL;
    }
    if (zmq_connect(s, endpoint) != 0) {
        pst_err(err, errlen, PST_ESOCKET, "%s: cannot connect: %s", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

int pb_secure_client(void *sock, const pb_keys *k, char *err, size_t errlen) {
    if (check_fresh(sock, "client", err, errlen) != PST_OK)
        return PST_ESOCKET;
    if (set_key(sock, ZMQ_CURVE_SERVERKEY, k->server_public, "client", "server public key", err,
                errlen) != PST_OK ||
        set_key(sock, ZMQ_CURVE_PUBLICKEY, k->client_public, "client", "client public key", err,
                errlen) != PST_OK ||
        set_key(sock, ZMQ_CURVE_SECRETKEY, k->client_secret, "client", "client secret key", err,
                errlen) != PST_OK)
        return PST_ESOCKET;
    return PST_OK;
}

/* --- the guard --- */

enum { WHY_NONE = 0, WHY_NO_CURVE, WHY_OTHER_KEY, WHY_CLOSED, WHY_MALFORMED };

static const char *why_text(int why) {
    switch (why) {
    case WHY_NO_CURVE:
        return "no CURVE keys";
    case WHY_OTHER_KEY:
        return "not this job's key";
    case WHY_CLOSED:
        return "closed during the handshake";
    default:
        return "a malformed handshake";
    }
}

/* A connection the monitor saw accepted, by file descriptor, until it is disconnected. */
typedef struct guard_conn {
    int fd;
    char addr[ADDR_MAX];
} guard_conn;

/* An address and reason recently logged: repeats within PB_GUARD_QUIET_S are counted. */
typedef struct guard_quiet {
    char addr[ADDR_MAX];
    int why; /* WHY_NONE: unused */
    double last;
    uint64_t more;
} guard_quiet;

struct pb_guard {
    pthread_t thread;
    int wake[2]; /* pb_guard_free writes a byte to wake[1] */
    atomic_uint_fast64_t refused;
    uint8_t client_key[32];
    FILE *log;
    char who[64];
    /* Owned by the thread while it runs (created here before it starts). */
    void *zap, *mon;
    void *tee; /* the server's openings and closings, passed on to pb_monitor (ZeroMQ allows
                  one monitor a socket) */
    char tee_ep[64];
    guard_conn *conns;
    size_t nconns, capconns;
    int pending; /* a handshake failure whose disconnect (and fd) comes next */
    guard_quiet quiet[QUIET_SLOTS];
};

static void write_line(pb_guard *g, const char *addr, int why, uint64_t more) {
    if (more)
        fprintf(g->log,
                "%s: refused a connection from %s (%s), and %llu more since the last line\n",
                g->who, addr, why_text(why), (unsigned long long)more);
    else
        fprintf(g->log, "%s: refused a connection from %s (%s)\n", g->who, addr, why_text(why));
    fflush(g->log);
}

static void write_rest(pb_guard *g, const guard_quiet *q) {
    fprintf(g->log, "%s: refused %llu more connection%s from %s (%s) since the last line\n", g->who,
            (unsigned long long)q->more, q->more == 1 ? "" : "s", q->addr, why_text(q->why));
    fflush(g->log);
}

/* Counts a refusal and logs it, one line per address and reason per PB_GUARD_QUIET_S. */
static void refuse(pb_guard *g, const char *addr, int why) {
    atomic_fetch_add(&g->refused, 1);
    if (!g->log)
        return;
    const double t = pst_now();
    guard_quiet *q = NULL, *victim = NULL; /* victim: a free slot, else the oldest */
    for (int i = 0; i < QUIET_SLOTS && !q; i++) {
        guard_quiet *s = &g->quiet[i];
        if (s->why == why && strcmp(s->addr, addr) == 0)
            q = s;
        else if (!victim ||
                 (victim->why != WHY_NONE && (s->why == WHY_NONE || s->last < victim->last)))
            victim = s;
    }
    if (q && t - q->last < PB_GUARD_QUIET_S) {
        q->more++;
        return;
    }
    if (!q) {
        q = victim;
        if (q->why != WHY_NONE && q->more)
            write_rest(g, q);
        snprintf(q->addr, sizeof q->addr, "%s", addr);
        q->why = why;
        q->more = 0;
    }
    write_line(g, addr, why, q->more);
    q->last = t;
    q->more = 0;
}

/* Copies a frame into a printable C string. */
static void frame_text(zmq_msg_t *m, char *out, size_t outlen) {
    size_t n = zmq_msg_size(m);
    if (n > outlen - 1)
        n = outlen - 1;
    const unsigned char *p = zmq_msg_data(m);
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    out[n] = '\0';
}

/* Answers one ZAP request. Returns -1 when the context is terminating. */
static int answer_zap(pb_guard *g) {
    zmq_msg_t f[ZAP_MAX_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t extra, *part = n < ZAP_MAX_FRAMES ? &f[n] : &extra;
        zmq_msg_init(part);
        if (zmq_msg_recv(part, g->zap, 0) < 0) {
            const int e = zmq_errno();
            zmq_msg_close(part);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&f[i]);
            return e == ETERM ? -1 : 0;
        }
        more = zmq_msg_more(part);
        if (part == &extra)
            zmq_msg_close(part); /* more frames than a request has: ignored */
        else
            n++;
    }
    /* version, request id, domain, address, routing id, mechanism, credentials... */
    char addr[ADDR_MAX] = "an unknown address", mech[16] = "";
    const char *status = "500", *text = "malformed ZAP request";
    if (n >= 6 && zmq_msg_size(&f[0]) == 3 && memcmp(zmq_msg_data(&f[0]), "1.0", 3) == 0) {
        if (zmq_msg_size(&f[3]) > 0)
            frame_text(&f[3], addr, sizeof addr);
        frame_text(&f[5], mech, sizeof mech);
        int why = WHY_NO_CURVE;
        if (strcmp(mech, "CURVE") == 0) {
            why = WHY_OTHER_KEY;
            if (n == 7 && zmq_msg_size(&f[6]) == sizeof g->client_key &&
                memcmp(zmq_msg_data(&f[6]), g->client_key, sizeof g->client_key) == 0)
                why = WHY_NONE;
        }
        status = why == WHY_NONE ? "200" : "400";
        text = why == WHY_NONE ? "OK" : why_text(why);
        if (why != WHY_NONE)
            refuse(g, addr, why);
    }
    const char *rid = n >= 2 ? zmq_msg_data(&f[1]) : "";
    const size_t rid_len = n >= 2 ? zmq_msg_size(&f[1]) : 0;
    int rc = zmq_send(g->zap, "1.0", 3, ZMQ_SNDMORE);
    rc = rc < 0 ? rc : zmq_send(g->zap, rid, rid_len, ZMQ_SNDMORE);
    rc = rc < 0 ? rc : zmq_send(g->zap, status, 3, ZMQ_SNDMORE);
    rc = rc < 0 ? rc : zmq_send(g->zap, text, strlen(text), ZMQ_SNDMORE);
    rc = rc < 0 ? rc : zmq_send(g->zap, "", 0, ZMQ_SNDMORE); /* user id */
    rc = rc < 0 ? rc : zmq_send(g->zap, "", 0, 0);           /* metadata */
    const int e = zmq_errno();
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return rc < 0 && e == ETERM ? -1 : 0;
}

/* The peer's IP address of an accepted socket, or "an unknown address". */
static void peer_addr(int fd, char *out, size_t outlen) {
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    snprintf(out, outlen, "an unknown address");
    if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0)
        return;
    if (sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, out, (socklen_t)outlen);
    else if (sa.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, out, (socklen_t)outlen);
}

static guard_conn *find_conn(pb_guard *g, int fd) {
    for (size_t i = 0; i < g->nconns; i++)
        if (g->conns[i].fd == fd)
            return &g->conns[i];
    return NULL;
}

static void on_accepted(pb_guard *g, int fd) {
    guard_conn *c = find_conn(g, fd);
    if (!c && g->nconns == g->capconns) {
        const size_t cap = g->capconns ? 2 * g->capconns : 16;
        g->conns = pst_realloc(g->conns, cap * sizeof *g->conns);
        g->capconns = cap;
    }
    if (!c)
        c = &g->conns[g->nconns++];
    c->fd = fd;
    peer_addr(fd, c->addr, sizeof c->addr);
}

static void on_disconnected(pb_guard *g, int fd) {
    guard_conn *c = find_conn(g, fd);
    if (g->pending)
        refuse(g, c ? c->addr : "an unknown address", g->pending);
    g->pending = WHY_NONE;
    if (c)
        *c = g->conns[--g->nconns];
}

/* Reads one monitor event. A handshake that fails before ZAP is asked shows as
 * HANDSHAKE_FAILED_PROTOCOL (or _NO_DETAIL when the peer hung up first: a plain-text client
 * often sees the mismatch before we do), then DISCONNECTED with the connection's fd, both
 * from the same I/O thread at once: the line is written at the disconnect, with the address
 * noted when that fd was accepted. Returns -1 when the context is terminating. */
static int read_event(pb_guard *g) {
    zmq_msg_t ev, ep;
    zmq_msg_init(&ev);
    zmq_msg_init(&ep);
    int rc = zmq_msg_recv(&ev, g->mon, 0);
    if (rc >= 0 && zmq_msg_more(&ev))
        rc = zmq_msg_recv(&ep, g->mon, 0);
    const int e = zmq_errno();
    uint16_t event = 0;
    uint32_t value = 0;
    if (rc >= 0 && zmq_msg_size(&ev) >= 6) {
        memcpy(&event, zmq_msg_data(&ev), sizeof event);
        memcpy(&value, (const char *)zmq_msg_data(&ev) + 2, sizeof value);
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&ep);
    if (rc < 0)
        return e == ETERM ? -1 : 0;
    if (g->tee && (event == ZMQ_EVENT_ACCEPTED || event == ZMQ_EVENT_DISCONNECTED)) {
        uint8_t fwd[6]; /* as ZeroMQ frames it: the event, then the descriptor */
        memcpy(fwd, &event, sizeof event);
        memcpy(fwd + 2, &value, sizeof value);
        zmq_send(g->tee, fwd, sizeof fwd, ZMQ_DONTWAIT); /* nobody listening: dropped */
    }
    switch (event) {
    case ZMQ_EVENT_ACCEPTED:
        on_accepted(g, (int)value);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        if (g->pending) /* two failures before a disconnect: not one connection's */
            refuse(g, "an unknown address", g->pending);
        g->pending = event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL         ? WHY_CLOSED
                     : value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? WHY_NO_CURVE
                     : value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC      ? WHY_OTHER_KEY
                                                                           : WHY_MALFORMED;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        on_disconnected(g, (int)value);
        break;
    case ZMQ_EVENT_MONITOR_STOPPED: /* the server socket closed: nothing more comes */
        if (g->pending)
            refuse(g, "an unknown address", g->pending);
        g->pending = WHY_NONE;
        zmq_close(g->mon);
        g->mon = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static void *guard_main(void *arg) {
    pb_guard *g = arg;
    for (;;) {
        zmq_pollitem_t items[3] = {
            {g->zap, 0, ZMQ_POLLIN, 0},
            {NULL, g->wake[0], ZMQ_POLLIN, 0},
            {g->mon, 0, ZMQ_POLLIN, 0},
        };
        const int rc = zmq_poll(items, g->mon ? 3 : 2, -1);
        if (rc < 0 && zmq_errno() == EINTR)
            continue;
        if (rc < 0 || items[1].revents) /* ETERM, or pb_guard_free */
            break;
        if ((items[0].revents & ZMQ_POLLIN) && answer_zap(g) < 0)
            break;
        if (g->mon && (items[2].revents & ZMQ_POLLIN) && read_event(g) < 0)
            break;
    }
    /* Closing our sockets is what lets a zmq_ctx_term in progress finish. */
    zmq_close(g->zap);
    g->zap = NULL;
    if (g->mon)
        zmq_close(g->mon);
    g->mon = NULL;
    if (g->tee)
        zmq_close(g->tee);
    g->tee = NULL;
    return NULL;
}

static void close_fds(pb_guard *g) {
    for (int i = 0; i < 2; i++)
        if (g->wake[i] >= 0)
            close(g->wake[i]);
    g->wake[0] = g->wake[1] = -1;
}

pb_guard *pb_guard_new(void *ctx, const pb_keys *k, void *server, FILE *log, const char *who,
                       char *err, size_t errlen) {
    who = who ? who : "pstrain";
    pb_guard *g = pst_calloc(1, sizeof *g);
    g->wake[0] = g->wake[1] = -1;
    g->log = log;
    atomic_init(&g->refused, 0);
    snprintf(g->who, sizeof g->who, "%s", who);
    int monitoring = 0;
    if (check_key(k->client_public, "server", "client public key", err, errlen) != PST_OK ||
        !zmq_z85_decode(g->client_key, k->client_public)) {
        pst_err(err, errlen, PST_ESOCKET, "%s: guard: client public key: not a Z85 key", who);
        goto fail;
    }
    if (pipe(g->wake) != 0) {
        pst_err(err, errlen, PST_ESOCKET, "%s: guard: pipe: %s", who, strerror(errno));
        goto fail;
    }
    fcntl(g->wake[0], F_SETFD, FD_CLOEXEC);
    fcntl(g->wake[1], F_SETFD, FD_CLOEXEC);
    const int zero = 0;
    g->zap = zmq_socket(ctx, ZMQ_REP);
    if (g->zap)
        zmq_setsockopt(g->zap, ZMQ_LINGER, &zero, sizeof zero);
    if (!g->zap || zmq_bind(g->zap, ZAP_ENDPOINT) != 0) {
        const int e = zmq_errno();
        pst_err(err, errlen, PST_ESOCKET, "%s: guard: %s: %s%s", who, ZAP_ENDPOINT, zmq_strerror(e),
                e == EADDRINUSE ? " (this context has a ZAP handler already)" : "");
        goto fail;
    }
    if (server) {
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://pstrain-guard-%p", (void *)g);
        const int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_MONITOR_STOPPED;
        if (zmq_socket_monitor(server, ep, events) != 0) {
            pst_err(err, errlen, PST_ESOCKET, "%s: guard: zmq_socket_monitor: %s", who,
                    zmq_strerror(zmq_errno()));
            goto fail;
        }
        monitoring = 1;
        g->mon = zmq_socket(ctx, ZMQ_PAIR);
        if (g->mon)
            zmq_setsockopt(g->mon, ZMQ_LINGER, &zero, sizeof zero);
        if (!g->mon || zmq_connect(g->mon, ep) != 0) {
            pst_err(err, errlen, PST_ESOCKET, "%s: guard: monitor %s: %s", who, ep,
                    zmq_strerror(zmq_errno()));
            goto fail;
        }
        snprintf(g->tee_ep, sizeof g->tee_ep, "inproc://pstrain-guard-%p-conns", (void *)g);
        g->tee = zmq_socket(ctx, ZMQ_PAIR);
        if (g->tee)
            zmq_setsockopt(g->tee, ZMQ_LINGER, &zero, sizeof zero);
        if (!g->tee || zmq_bind(g->tee, g->tee_ep) != 0) {
            pst_err(err, errlen, PST_ESOCKET, "%s: guard: %s: %s", who, g->tee_ep,
                    zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
    const int e = pthread_create(&g->thread, NULL, guard_main, g);
    if (e != 0) {
        pst_err(err, errlen, PST_ESOCKET, "%s: guard: pthread_create: %s", who, strerror(e));
        goto fail;
    }
    return g;
fail:
    if (g->tee)
        zmq_close(g->tee);
    if (g->mon)
        zmq_close(g->mon);
    if (monitoring)
        zmq_socket_monitor(server, NULL, 0);
    if (g->zap)
        zmq_close(g->zap);
    close_fds(g);
    pst_free(g);
    return NULL;
}

uint64_t pb_guard_refused(const pb_guard *g) { return atomic_load(&g->refused); }

const char *pb_guard_conns(const pb_guard *g) { return g && g->tee ? g->tee_ep : NULL; }

void pb_guard_free(pb_guard **pg) {
    if (!pg || !*pg)
        return;
    pb_guard *g = *pg;
    /* The thread may have left already (zmq_ctx_term): then the byte is never read. */
    while (write(g->wake[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(g->thread, NULL);
    for (int i = 0; g->log && i < QUIET_SLOTS; i++)
        if (g->quiet[i].why != WHY_NONE && g->quiet[i].more)
            write_rest(g, &g->quiet[i]);
    close_fds(g);
    pst_free(g->conns);
    pst_free(g);
    *pg = NULL;
}
