/* http.c: the routes, limits, token and TLS of `pstrain serve` on libmicrohttpd
 * (launch/serve/http.h). MHD calls on_request several times per request: first with the
 * headers (routing, the token, the method and the body's declared size are settled there,
 * before any body is read), then once per piece of body, then once more to answer. */
#include "launch/serve/http.h"

#include "engine/base/base.h"
#include "launch/serve/codec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define JSON "application/json"
#define PROM "text/plain; version=0.0.4; charset=utf-8"
#define GET_ALLOW "GET, HEAD"

struct sv_http {
    struct MHD_Daemon *d;
    sv_models *models;
    sv_batcher *batcher;
    sv_metrics *metrics;
    char name[256];
    char version[64];
    char *token; /* NULL: none needed */
    size_t token_len;
    char *cert, *key; /* PEM, kept while the daemon runs */
    int max_batch;
    size_t max_body;
    int port;
    atomic_int inflight; /* requests between their first byte and their end */
};

/* A request's state, from its first call to MHD's notice that it ended. */
typedef struct req {
    double t0;
    sv_endpoint ep;
    int64_t version; /* /versions/V, or -1 */
    int post;        /* a predict or infer request (the others are GETs) */
    int arriving;    /* counted in the batcher's sv_batcher_arriving */
    int refused;     /* a status decided while the body came (413), answered at its end */
    char *body;      /* (len) bytes, NUL after them; cap allocated */
    size_t len, cap;
    size_t json_len; /* v2's Inference-Header-Content-Length; 0 none */
    size_t json_out; /* v2's answer with raw tensor bytes: its JSON's length; 0 all JSON */
    int status;      /* a GET's error, said at its second call (so that keep-alive holds) */
    char msg[512];
} req;

/* --- routes ---------------------------------------------------------------------------- */

typedef struct route {
    sv_endpoint ep;
    int post;         /* the route takes POST (else GET and HEAD) */
    const char *name; /* the model's name in the path (into url), NULL for none */
    size_t name_len;
    int64_t version; /* -1: none given */
} route;

/* "/versions/V" at *p: V into r->version, *p past it. 0 when absent, -1 when V is not a
 * decimal number. */
static int parse_version(const char **p, route *r) {
    static const char pre[] = "/versions/";
    if (strncmp(*p, pre, sizeof pre - 1) != 0)
        return 0;
    const char *s = *p + sizeof pre - 1;
    int64_t v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 18) {
        v = 10 * v + (*s++ - '0');
        digits++;
    }
    if (!digits)
        return -1;
    r->version = v;
    *p = s;
    return 1;
}

/* What url names; SV_EP_UNKNOWN for none. */
static route parse_route(const char *url) {
    route r = {.ep = SV_EP_UNKNOWN, .version = -1};
    static const char v1[] = "/v1/models/", v2[] = "/v2/models/";
    if (strcmp(url, "/metrics") == 0)
        r.ep = SV_EP_METRICS;
    else if (strcmp(url, "/v2") == 0 || strcmp(url, "/v2/") == 0)
        r.ep = SV_EP_V2_SERVER;
    else if (strcmp(url, "/v2/health/live") == 0)
        r.ep = SV_EP_V2_LIVE;
    else if (strcmp(url, "/v2/health/ready") == 0)
        r.ep = SV_EP_V2_READY;
    else if (strncmp(url, v1, sizeof v1 - 1) == 0 || strncmp(url, v2, sizeof v2 - 1) == 0) {
        const int is_v1 = url[2] == '1';
        const char *p = url + sizeof v1 - 1;
        r.name = p;
        r.name_len = strcspn(p, is_v1 ? "/:" : "/");
        p += r.name_len;
        if (parse_version(&p, &r) < 0)
            return (route){.ep = SV_EP_UNKNOWN, .version = -1};
        if (is_v1) {
            if (!*p)
                r.ep = SV_EP_TFS_STATUS;
            else if (strcmp(p, "/metadata") == 0)
                r.ep = SV_EP_TFS_METADATA;
            else if (strcmp(p, ":predict") == 0)
                r.ep = SV_EP_TFS_PREDICT, r.post = 1;
        } else {
            if (!*p)
                r.ep = SV_EP_V2_MODEL;
            else if (strcmp(p, "/ready") == 0)
                r.ep = SV_EP_V2_MODEL_READY;
            else if (strcmp(p, "/infer") == 0)
                r.ep = SV_EP_V2_INFER, r.post = 1;
        }
    }
    return r;
}

/* --- answers --------------------------------------------------------------------------- */

/* Queues body (malloc'ed, taken) with status, and counts the request. allow: an Allow header
 * (405); bearer: a WWW-Authenticate challenge (401). */
static enum MHD_Result answer(sv_http *h, struct MHD_Connection *c, req *q, int status, char *body,
                              size_t len, const char *type, const char *allow, int bearer) {
    if (!body)
        return MHD_NO; /* out of memory in the codec: drop the connection */
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            q->json_out && status == 200 ? "application/octet-stream" : type);
    if (q->json_out && status == 200) {
        char n[32];
        snprintf(n, sizeof n, "%zu", q->json_out);
        MHD_add_response_header(r, "Inference-Header-Content-Length", n);
    }
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (bearer)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"pstrain\"");
    const enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    sv_metrics_request(h->metrics, q->ep, status, pst_now() - q->t0);
    return ret;
}

/* An error answer: {"error": "<the message>"}. */
__attribute__((format(printf, 5, 6))) static enum MHD_Result
fail(sv_http *h, struct MHD_Connection *c, req *q, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *body = sv_error_body(msg, &len);
    return answer(h, c, q, status, body, len, JSON,
                  status == 405
                      ? (q->ep == SV_EP_TFS_PREDICT || q->ep == SV_EP_V2_INFER ? "POST" : GET_ALLOW)
                      : NULL,
                  status == 401);
}

/* A small JSON body made from a format. */
__attribute__((format(printf, 2, 3))) static char *json(size_t *len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = pst_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *len = (size_t)n;
    return s;
}

static void stop_arriving(sv_http *h, req *q) {
    if (q->arriving)
        sv_batcher_arriving(h->batcher, -1);
    q->arriving = 0;
}

/* 404 unless the path's version (if any) is m's. */
static int version_known(const req *q, const sv_model *m) {
    return q->version < 0 || q->version == m->version;
}

static enum MHD_Result answer_get(sv_http *h, struct MHD_Connection *c, req *q) {
    size_t len = 0;
    switch (q->ep) {
    case SV_EP_METRICS: {
        char *body = sv_metrics_text(h->metrics, &len);
        return answer(h, c, q, 200, body, len, PROM, NULL, 0);
    }
        char *body;
    case SV_EP_V2_SERVER:
        body = json(&len,
                    "{\"name\": \"pstrain\", \"version\": \"%s\", \"extensions\": "
                    "[\"binary_tensor_data\"]}",
                    h->version);
        return answer(h, c, q, 200, body, len, JSON, NULL, 0);
    case SV_EP_V2_LIVE:
        body = json(&len, "{\"live\": true}");
        return answer(h, c, q, 200, body, len, JSON, NULL, 0);
    case SV_EP_V2_READY: /* a model is loaded before the port opens */
        body = json(&len, "{\"ready\": true}");
        return answer(h, c, q, 200, body, len, JSON, NULL, 0);
    default:
        break;
    }
    sv_model *m = sv_models_acquire(h->models);
    enum MHD_Result ret;
    if (!version_known(q, m)) {
        ret = fail(h, c, q, 404, "model %s version %lld not found (serving version %lld)", h->name,
                   (long long)q->version, (long long)m->version);
    } else {
        char *body = q->ep == SV_EP_TFS_STATUS     ? sv_tfs_status(m->version, &len)
                     : q->ep == SV_EP_TFS_METADATA ? sv_tfs_metadata(m->infer, h->name, &len)
                     : q->ep == SV_EP_V2_MODEL     ? sv_v2_metadata(m->infer, h->name, &len)
                                               : json(&len, "{\"name\": \"%s\", \"ready\": true}",
                                                      h->name); /* SV_EP_V2_MODEL_READY */
        ret = answer(h, c, q, 200, body, len, JSON, NULL, 0);
    }
    sv_models_release(h->models, &m);
    return ret;
}

/* A predict or infer body, complete: decoded against the model served now, run in a batch,
 * answered from that same model (a reload meanwhile does not touch it). */
static enum MHD_Result answer_post(sv_http *h, struct MHD_Connection *c, req *q) {
    sv_model *m = sv_models_acquire(h->models);
    enum MHD_Result ret;
    char err[1024] = "";
    sv_request r;
    memset(&r, 0, sizeof r);
    int status;
    if (!version_known(q, m)) {
        stop_arriving(h, q);
        ret = fail(h, c, q, 404, "model %s version %lld not found (serving version %lld)", h->name,
                   (long long)q->version, (long long)m->version);
    } else if ((status = sv_request_decode(&r, q->ep == SV_EP_V2_INFER ? SV_V2 : SV_TFS,
                                           q->body ? q->body : "", q->len, q->json_len, m->infer,
                                           h->max_batch, err, sizeof err)) != 0) {
        stop_arriving(h, q);
        ret = status == 413 ? fail(h, c, q, 413, "%s (--max-batch %d)", err, h->max_batch)
                            : fail(h, c, q, status, "%s", err);
    } else {
        const size_t out = wk_infer_signature(m->infer)->out_floats;
        float *y = pst_malloc((size_t)r.n * out * sizeof(float));
        sv_batcher_run(h->batcher, m->infer, r.x, r.n, y, q->arriving);
        q->arriving = 0;
        char *body = NULL;
        size_t len = 0;
        status =
            sv_response_encode(&r, m->infer, h->name, m->version, y, &body, &len, err, sizeof err);
        free(y);
        const size_t raw = status == 0 ? sv_response_binary_len(&r, m->infer) : 0;
        if (raw)
            q->json_out = len - raw;
        ret = status == 0 ? answer(h, c, q, 200, body, len, JSON, NULL, 0)
                          : fail(h, c, q, status, "%s", err);
    }
    sv_request_free(&r);
    sv_models_release(h->models, &m);
    return ret;
}

/* --- the token ------------------------------------------------------------------------- */

/* The Authorization header carries "Bearer <token>": compared in time that depends on the
 * given token's length only, not on where it first differs. */
static int token_ok(const sv_http *h, struct MHD_Connection *c) {
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a || strncasecmp(a, "Bearer ", 7) != 0)
        return 0;
    a += 7;
    while (*a == ' ')
        a++;
    const size_t n = strlen(a);
    unsigned diff = n != h->token_len;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)h->token[i < h->token_len ? i : 0];
    return diff == 0;
}

/* --- MHD's callbacks ------------------------------------------------------------------- */

/* A decimal header value; 0 when absent, -1 when not a number. */
static long long header_number(struct MHD_Connection *c, const char *name) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    const long long n = strtoll(v, &end, 10);
    return errno || end == v || *end || n < 0 ? -1 : n;
}

/* The first call: the headers are in, no body read yet. A request that may carry a body is
 * answered now when refused (MHD then closes the connection rather than read the body); a
 * GET is answered at its next call, once MHD knows the request is whole (keep-alive holds). */
static enum MHD_Result on_headers(sv_http *h, struct MHD_Connection *c, const char *url,
                                  const char *method, req *q) {
    const route r = parse_route(url);
    q->ep = r.ep;
    q->version = r.version;
    q->post = r.post;
    const int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                    strcmp(method, MHD_HTTP_METHOD_HEAD) == 0,
              post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (r.ep == SV_EP_UNKNOWN)
        q->status = 404, snprintf(q->msg, sizeof q->msg, "no such path: %s", url);
    else if (h->token && r.ep != SV_EP_V2_LIVE && r.ep != SV_EP_V2_READY && !token_ok(h, c))
        q->status = 401, snprintf(q->msg, sizeof q->msg,
                                  "missing or wrong bearer token (Authorization: Bearer ...)");
    else if (r.post ? !post : !get)
        q->status = 405,
        snprintf(q->msg, sizeof q->msg, "method %s not allowed on %s (allowed: %s)", method, url,
                 r.post ? "POST" : GET_ALLOW);
    else if (r.name && (r.name_len != strlen(h->name) || strncmp(r.name, h->name, r.name_len) != 0))
        q->status = 404,
        snprintf(q->msg, sizeof q->msg, "model %.*s not found", (int)r.name_len, r.name);
    const long long declared = header_number(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (declared > 0 && (unsigned long long)declared > h->max_body) /* whatever the route */
        return fail(h, c, q, 413, "body of %lld bytes: more than --max-body %zu", declared,
                    h->max_body);
    if (q->status && !get)
        return fail(h, c, q, q->status, "%s", q->msg);
    if (!r.post)
        return MHD_YES; /* answered at the next call */
    if (declared < 0)
        return fail(h, c, q, 400, "Content-Length: expected a number of bytes");
    if (r.ep == SV_EP_V2_INFER) {
        const long long j = header_number(c, "Inference-Header-Content-Length");
        if (j < 0 || (declared && j > declared))
            return fail(h, c, q, 400,
                        "Inference-Header-Content-Length: expected a number of bytes up to the "
                        "body's");
        q->json_len = (size_t)j;
    }
    q->cap = declared ? (size_t)declared : 0;
    if (q->cap)
        q->body = pst_malloc(q->cap + 1);
    q->arriving = 1;
    sv_batcher_arriving(h->batcher, +1);
    return MHD_YES;
}

/* A piece of body: kept while it fits --max-body. */
static enum MHD_Result on_body(sv_http *h, req *q, const char *data, size_t n) {
    if (q->len + n > h->max_body) {
        /* A chunked body (or one longer than it said) passes the limit: cut it. MHD takes no
         * answer mid-body, so the connection is closed without one. */
        stop_arriving(h, q);
        sv_metrics_request(h->metrics, q->ep, 413, pst_now() - q->t0);
        return MHD_NO;
    }
    if (q->len + n > q->cap) {
        q->cap = q->cap * 2 > q->len + n ? q->cap * 2 : q->len + n + 65536;
        if (q->cap > h->max_body)
            q->cap = h->max_body;
        q->body = pst_realloc(q->body, q->cap + 1);
    }
    memcpy(q->body + q->len, data, n);
    q->len += n;
    q->body[q->len] = '\0';
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state) {
    (void)version;
    sv_http *h = cls;
    req *q = *state;
    if (!q) {
        q = pst_calloc(1, sizeof *q);
        q->t0 = pst_now();
        *state = q;
        atomic_fetch_add(&h->inflight, 1);
        return on_headers(h, c, url, method, q);
    }
    if (*size) {
        const size_t n = *size;
        *size = 0;
        if (q->status || !q->post) { /* a GET's body: ignored, up to the limit */
            q->len += n;
            return q->len <= h->max_body ? MHD_YES : MHD_NO;
        }
        return on_body(h, q, data, n);
    }
    if (q->status)
        return fail(h, c, q, q->status, "%s", q->msg);
    return q->post ? answer_post(h, c, q) : answer_get(h, c, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why) {
    (void)c;
    (void)why;
    sv_http *h = cls;
    req *q = *state;
    if (!q)
        return;
    stop_arriving(h, q);
    free(q->body);
    free(q);
    *state = NULL;
    atomic_fetch_sub(&h->inflight, 1);
}

/* --- the daemon ------------------------------------------------------------------------ */

sv_http *sv_http_start(const sv_http_cfg *cfg, sv_models *models, sv_batcher *batcher,
                       sv_metrics *metrics, int *rc, char *err, size_t errlen) {
    sv_http *h = pst_calloc(1, sizeof *h);
    h->models = models;
    h->batcher = batcher;
    h->metrics = metrics;
    snprintf(h->name, sizeof h->name, "%s", cfg->name);
    snprintf(h->version, sizeof h->version, "%s", cfg->version);
    h->max_batch = cfg->max_batch;
    h->max_body = cfg->max_body;
    if (cfg->token && cfg->token[0]) {
        h->token = pst_strdup(cfg->token);
        h->token_len = strlen(h->token);
    }
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC;
    const struct sockaddr *addr;
    if (inet_pton(AF_INET, cfg->bind, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg->port);
        addr = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, cfg->bind, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg->port);
        addr = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        *rc = pst_err(err, errlen, PST_EARG, "--bind: expected an IPv4 or IPv6 address, got '%s'",
                      cfg->bind);
        goto fail;
    }
    struct MHD_OptionItem ops[16];
    int n = 0;
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)addr};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->timeout_s, NULL};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h};
    if (cfg->tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            *rc = pst_err(err, errlen, PST_EARG,
                          "--tls-cert: this libmicrohttpd was built without TLS (GnuTLS)");
            goto fail;
        }
        h->cert = pst_strdup(cfg->tls_cert);
        h->key = pst_strdup(cfg->tls_key);
        flags |= MHD_USE_TLS;
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->key};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    errno = 0;
    h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, h, MHD_OPTION_ARRAY,
                            ops, MHD_OPTION_END);
    if (!h->d) {
        const int e = errno; /* 0: MHD refused without a system error (GnuTLS, the key) */
        if (cfg->tls_cert && !e)
            *rc = pst_err(err, errlen, PST_EARG,
                          "--tls-cert/--tls-key: refused by GnuTLS (is --tls-key the key of "
                          "--tls-cert?)");
        else
            *rc = pst_err(err, errlen, PST_ESOCKET, "cannot listen on %s port %d: %s", cfg->bind,
                          cfg->port, e ? strerror(e) : "libmicrohttpd refused to start");
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->port;
    return h;
fail:
    sv_http_stop(&h, 0);
    return NULL;
}

int sv_http_port(const sv_http *h) { return h->port; }

void sv_http_stop(sv_http **hp, double grace_s) {
    if (!hp || !*hp)
        return;
    sv_http *h = *hp;
    if (h->d) {
        const MHD_socket s = MHD_quiesce_daemon(h->d); /* no new connections */
        if (s != MHD_INVALID_SOCKET)
            close(s);
        const double until = pst_now() + grace_s;
        while (atomic_load(&h->inflight) > 0 && pst_now() < until) {
            const struct timespec ms = {0, 10000000L};
            nanosleep(&ms, NULL);
        }
        MHD_stop_daemon(h->d);
    }
    free(h->token);
    free(h->cert);
    free(h->key);
    free(h);
    *hp = NULL;
}
