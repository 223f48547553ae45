/* metrics.c: `pstrain serve`'s counters and their Prometheus text (launch/serve/metrics.h).
 * Every number is an atomic that threads add to; a scrape reads them one at a time, so a
 * histogram's buckets may be a request apart from its count, as with any lock-free client. */
#include "launch/serve/metrics.h"

#include "engine/base/base.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The statuses counted by name; any other lands in "other". */
static const int codes[] = {200, 400, 401, 404, 405, 413, 500, 503};
#define NCODES (sizeof codes / sizeof codes[0] + 1)

/* Latency bucket bounds in seconds: single requests take about a millisecond; a full batch
 * under load tens of them. */
static const double lat_bounds[] = {0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                    0.05,    0.1,    0.25,  0.5,   1,     2.5};
#define NLAT (sizeof lat_bounds / sizeof lat_bounds[0])
#define NBATCH 24 /* 1, 2, 4, ... 2^22, at most; sv_metrics_new stops at max_batch */

struct sv_metrics {
    atomic_uint_fast64_t requests[SV_EP_COUNT][NCODES];
    atomic_uint_fast64_t lat[2][NLAT + 1]; /* tfs_predict, v2_infer; the last is +Inf */
    atomic_uint_fast64_t lat_sum_ns[2];
    int nbatch; /* bucket bounds 1, 2, 4, ... up to the first >= max_batch */
    atomic_uint_fast64_t batch[NBATCH + 1];
    atomic_uint_fast64_t batch_sum;
    atomic_int_fast64_t version;
    atomic_uint_fast64_t reloads[2]; /* failed, ok */
};

static const char *const ep_names[SV_EP_COUNT] = {
    [SV_EP_TFS_STATUS] = "tfs_status",   [SV_EP_TFS_METADATA] = "tfs_metadata",
    [SV_EP_TFS_PREDICT] = "tfs_predict", [SV_EP_V2_SERVER] = "v2_server",
    [SV_EP_V2_LIVE] = "v2_live",         [SV_EP_V2_READY] = "v2_ready",
    [SV_EP_V2_MODEL] = "v2_model",       [SV_EP_V2_MODEL_READY] = "v2_model_ready",
    [SV_EP_V2_INFER] = "v2_infer",       [SV_EP_METRICS] = "metrics",
    [SV_EP_UNKNOWN] = "unknown"};

const char *sv_endpoint_name(sv_endpoint e) {
    return e >= 0 && e < SV_EP_COUNT ? ep_names[e] : "unknown";
}

sv_metrics *sv_metrics_new(int max_batch) {
    sv_metrics *m = pst_calloc(1, sizeof *m);
    m->nbatch = 1;
    while (m->nbatch < NBATCH && (1L << (m->nbatch - 1)) < max_batch)
        m->nbatch++;
    return m;
}

void sv_metrics_free(sv_metrics **m) {
    if (!m || !*m)
        return;
    free(*m);
    *m = NULL;
}

void sv_metrics_request(sv_metrics *m, sv_endpoint e, int status, double seconds) {
    if (e < 0 || e >= SV_EP_COUNT)
        e = SV_EP_UNKNOWN;
    size_t c = 0;
    while (c < NCODES - 1 && codes[c] != status)
        c++;
    atomic_fetch_add_explicit(&m->requests[e][c], 1, memory_order_relaxed);
    const int h = e == SV_EP_TFS_PREDICT ? 0 : (e == SV_EP_V2_INFER ? 1 : -1);
    if (h < 0)
        return;
    size_t b = 0;
    while (b < NLAT && seconds > lat_bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->lat[h][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_sum_ns[h], (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

void sv_metrics_batch(sv_metrics *m, int B) {
    int b = 0;
    while (b < m->nbatch && B > (1 << b))
        b++;
    atomic_fetch_add_explicit(&m->batch[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->batch_sum, (uint64_t)B, memory_order_relaxed);
}

void sv_metrics_version(sv_metrics *m, int64_t version) {
    atomic_store_explicit(&m->version, version, memory_order_relaxed);
}

void sv_metrics_reload(sv_metrics *m, int ok) {
    atomic_fetch_add_explicit(&m->reloads[ok ? 1 : 0], 1, memory_order_relaxed);
}

/* A growing text buffer: out of memory aborts (pst_realloc). */
typedef struct text {
    char *s;
    size_t len, cap;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        const int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        PST_ASSERT(n >= 0, "vsnprintf failed: %d", n);
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = 2 * t->cap + (size_t)n;
        t->s = pst_realloc(t->s, t->cap);
    }
}

static uint64_t get(atomic_uint_fast64_t *a) {
    return atomic_load_explicit(a, memory_order_relaxed);
}

char *sv_metrics_text(sv_metrics *m, size_t *len) {
    text t = {pst_malloc(8192), 0, 8192};
    put(&t, "# HELP pstrain_serve_requests_total Requests answered, by endpoint and HTTP status.\n"
            "# TYPE pstrain_serve_requests_total counter\n");
    for (int e = 0; e < SV_EP_COUNT; e++)
        for (size_t c = 0; c < NCODES; c++) {
            const uint64_t n = get(&m->requests[e][c]);
            if (!n)
                continue;
            char code[16];
            if (c < NCODES - 1)
                snprintf(code, sizeof code, "%d", codes[c]);
            else
                snprintf(code, sizeof code, "other");
            put(&t, "pstrain_serve_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n", ep_names[e],
                code, (unsigned long long)n);
        }
    put(&t, "# HELP pstrain_serve_request_duration_seconds Time from a predict or infer "
            "request's first byte to its answer.\n"
            "# TYPE pstrain_serve_request_duration_seconds histogram\n");
    for (int h = 0; h < 2; h++) {
        const char *ep = ep_names[h ? SV_EP_V2_INFER : SV_EP_TFS_PREDICT];
        uint64_t cum = 0;
        for (size_t b = 0; b <= NLAT; b++) {
            cum += get(&m->lat[h][b]);
            if (b < NLAT)
                put(&t,
                    "pstrain_serve_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} "
                    "%llu\n",
                    ep, lat_bounds[b], (unsigned long long)cum);
            else
                put(&t,
                    "pstrain_serve_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} "
                    "%llu\n",
                    ep, (unsigned long long)cum);
        }
        put(&t, "pstrain_serve_request_duration_seconds_sum{endpoint=\"%s\"} %.9g\n", ep,
            (double)get(&m->lat_sum_ns[h]) * 1e-9);
        put(&t, "pstrain_serve_request_duration_seconds_count{endpoint=\"%s\"} %llu\n", ep,
            (unsigned long long)cum);
    }
    put(&t, "# HELP pstrain_serve_batch_size Samples per forward pass of the batcher.\n"
            "# TYPE pstrain_serve_batch_size histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b <= m->nbatch; b++) {
        cum += get(&m->batch[b]);
        if (b < m->nbatch)
            put(&t, "pstrain_serve_batch_size_bucket{le=\"%d\"} %llu\n", 1 << b,
                (unsigned long long)cum);
        else
            put(&t, "pstrain_serve_batch_size_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    put(&t, "pstrain_serve_batch_size_sum %llu\npstrain_serve_batch_size_count %llu\n",
        (unsigned long long)get(&m->batch_sum), (unsigned long long)cum);
    put(&t,
        "# HELP pstrain_serve_model_version The version (checkpoint step) being served.\n"
        "# TYPE pstrain_serve_model_version gauge\npstrain_serve_model_version %lld\n",
        (long long)atomic_load_explicit(&m->version, memory_order_relaxed));
    put(&t,
        "# HELP pstrain_serve_reloads_total New checkpoints swapped in (ok) or refused (failed).\n"
        "# TYPE pstrain_serve_reloads_total counter\n"
        "pstrain_serve_reloads_total{result=\"ok\"} %llu\n"
        "pstrain_serve_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)get(&m->reloads[1]), (unsigned long long)get(&m->reloads[0]));
    *len = t.len;
    return t.s;
}
