/* http.h: `pstrain serve`'s HTTP server on libmicrohttpd: the routes of TF Serving's REST API
 * and KServe's v2 protocol, GET /metrics, the limits (body size, slow clients, connections),
 * the bearer token and TLS. One thread per connection (keep-alive on); each predict or infer
 * request is decoded on its connection's thread against the model served at that moment
 * (launch/serve/models.h) and waits there for the batcher (launch/serve/batch.h).
 *
 * Routes (NAME: the served name; /versions/V forms too, where V must be the served version):
 *   GET  /v1/models/NAME, /v1/models/NAME/metadata, POST /v1/models/NAME:predict
 *   GET  /v2, /v2/health/live, /v2/health/ready, /v2/models/NAME, /v2/models/NAME/ready
 *   POST /v2/models/NAME/infer
 *   GET  /metrics
 * HEAD is answered wherever GET is. Errors are {"error": "..."} as application/json: 404 for
 * an unknown path, model or version, 405 with Allow for a wrong method, 401 with
 * WWW-Authenticate: Bearer without the token, 413 for a body over the limit (answered from
 * its Content-Length, before it is read; a chunked body is cut where it passes the limit) or
 * for more samples than max_batch, 400 for a body the decoder refuses.
 *
 * The token guards every route but /v2/health/live and /v2/health/ready, which load balancers
 * and orchestrators probe without secrets and which say nothing about the model. */
#ifndef PSTRAIN_SERVE_HTTP_H
#define PSTRAIN_SERVE_HTTP_H

#include "launch/serve/batch.h"
#include "launch/serve/metrics.h"
#include "launch/serve/models.h"

#include <stddef.h>

typedef struct sv_http_cfg {
    const char *bind;         /* an IPv4 or IPv6 address */
    int port;                 /* 0: any free port (sv_http_port says which) */
    const char *name;         /* the model's name in URLs */
    const char *version;      /* pstrain's, for GET /v2 */
    int max_batch;            /* samples one request may carry */
    size_t max_body;          /* bytes */
    unsigned timeout_s;       /* a connection idle (or stalled mid-request) this long is closed */
    unsigned max_connections; /* at once */
    const char *token;        /* "": no token needed */
    const char *tls_cert;     /* PEM text, or NULL for plain HTTP */
    const char *tls_key;      /* PEM text (with tls_cert) */
} sv_http_cfg;

typedef struct sv_http sv_http;

/* Starts listening (cfg's strings are copied where kept). models, batcher and metrics are
 * borrowed and must outlive the server. Returns an owned server, or NULL with PST_EARG (a bad
 * address, TLS without GnuTLS) or PST_ESOCKET (cannot listen: the port is taken) in *rc and
 * one line in err. */
sv_http *sv_http_start(const sv_http_cfg *cfg, sv_models *models, sv_batcher *batcher,
                       sv_metrics *metrics, int *rc, char *err, size_t errlen);

/* The port it listens on. */
int sv_http_port(const sv_http *h);

/* Stops accepting connections, lets the requests in flight finish (up to grace_s seconds),
 * then closes every connection and frees. NULL is fine; *h becomes NULL. */
void sv_http_stop(sv_http **h, double grace_s);

#endif
