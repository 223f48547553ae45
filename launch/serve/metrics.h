/* metrics.h: what `pstrain serve` counts, and GET /metrics's text (Prometheus's exposition
 * format 0.0.4): requests by endpoint and status code, a latency histogram of the inference
 * endpoints, a histogram of the batcher's batch sizes, the model version served and the hot
 * reloads that succeeded or failed. Lock-free (C11 atomics): every HTTP thread, the batcher
 * and the reload watcher count into one sv_metrics at once. */
#ifndef PSTRAIN_SERVE_METRICS_H
#define PSTRAIN_SERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* The routes, as the "endpoint" label names them (sv_endpoint_name). */
typedef enum sv_endpoint {
    SV_EP_TFS_STATUS,     /* GET /v1/models/NAME */
    SV_EP_TFS_METADATA,   /* GET /v1/models/NAME/metadata */
    SV_EP_TFS_PREDICT,    /* POST /v1/models/NAME:predict */
    SV_EP_V2_SERVER,      /* GET /v2 */
    SV_EP_V2_LIVE,        /* GET /v2/health/live */
    SV_EP_V2_READY,       /* GET /v2/health/ready */
    SV_EP_V2_MODEL,       /* GET /v2/models/NAME */
    SV_EP_V2_MODEL_READY, /* GET /v2/models/NAME/ready */
    SV_EP_V2_INFER,       /* POST /v2/models/NAME/infer */
    SV_EP_METRICS,        /* GET /metrics */
    SV_EP_UNKNOWN,        /* any other path */
    SV_EP_COUNT
} sv_endpoint;

/* "tfs_predict", ... */
const char *sv_endpoint_name(sv_endpoint e);

typedef struct sv_metrics sv_metrics;

/* Counters at zero; batch sizes bucketed in powers of two up to max_batch. NULL never (the
 * pst_ allocators abort on out of memory). */
sv_metrics *sv_metrics_new(int max_batch);
void sv_metrics_free(sv_metrics **m);

/* One answered request: its endpoint, HTTP status and seconds from its first byte to its
 * answer (the latency histogram keeps the inference endpoints'). */
void sv_metrics_request(sv_metrics *m, sv_endpoint e, int status, double seconds);
/* One forward pass of B samples. */
void sv_metrics_batch(sv_metrics *m, int B);
/* The version now served (the gauge). */
void sv_metrics_version(sv_metrics *m, int64_t version);
/* A hot reload that swapped a new version in (ok) or was refused. */
void sv_metrics_reload(sv_metrics *m, int ok);

/* The exposition text, malloc'ed (the caller frees it), *len bytes. */
char *sv_metrics_text(sv_metrics *m, size_t *len);

#endif
