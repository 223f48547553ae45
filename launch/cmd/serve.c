/* serve.c: `pstrain serve CKPT|DIR`: a checkpoint over REST (launch/serve/): TF Serving's API
 * and KServe's v2, dynamic batching, hot reload of a directory's latest, /metrics, a bearer
 * token and TLS. Runs until SIGTERM or SIGINT, then stops accepting, lets the requests in
 * flight finish and exits 0. */
#include "engine/base/base.h"
#include "engine/base/file.h"
#include "engine/pool.h"
#include "launch/cmd/cmd.h"
#include "launch/serve/batch.h"
#include "launch/serve/http.h"
#include "launch/serve/metrics.h"
#include "launch/serve/models.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PSTRAIN_VERSION
#define PSTRAIN_VERSION "unknown"
#endif

#define GRACE_S 30.0 /* how long requests in flight may take to finish after a stop signal */

/* The file at path (a regular file of at most max bytes) into *out (malloc'ed, NUL-ended).
 * private: refused when group or others may read or write it (a secret, as the job file).
 * Returns PST_OK or PST_EARG/PST_EIO with one line in err naming flag and file. */
static int read_small(const char *flag, const char *path, size_t max, int private, char **out,
                      char *err, size_t errlen) {
    int fd;
    struct stat st;
    char why[1024];
    if (pst_open_regular(path, &fd, &st, why, sizeof why) != PST_OK)
        return pst_err(err, errlen, PST_EIO, "--%s: %s", flag, why);
    int rc = PST_OK;
    if (private && (st.st_mode & (S_IRWXG | S_IRWXO)))
        rc = pst_err(err, errlen, PST_EARG,
                     "--%s: %s: mode %04o lets others read it; expected 0600 (chmod 600 %s)", flag,
                     path, (unsigned)(st.st_mode & 07777), path);
    else if ((size_t)st.st_size > max)
        rc = pst_err(err, errlen, PST_EARG, "--%s: %s: %lld bytes, expected at most %zu", flag,
                     path, (long long)st.st_size, max);
    char *s = NULL;
    size_t len = 0;
    if (rc == PST_OK) {
        s = pst_malloc(max + 1);
        ssize_t n;
        while (len < max && ((n = read(fd, s + len, max - len)) > 0 || (n < 0 && errno == EINTR)))
            if (n > 0)
                len += (size_t)n;
        if (n < 0)
            rc = pst_err(err, errlen, PST_EIO, "--%s: %s: cannot read: %s", flag, path,
                         strerror(errno));
        s[len] = '\0';
    }
    close(fd);
    if (rc != PST_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return PST_OK;
}

/* --token-file: one line, the token (a final newline is not part of it). */
static int read_token(const char *path, char **token, char *err, size_t errlen) {
    int rc = read_small("token-file", path, 4096, 1, token, err, errlen);
    if (rc != PST_OK)
        return rc;
    char *t = *token;
    size_t n = strlen(t);
    if (n && t[n - 1] == '\n')
        t[--n] = '\0';
    if (n && t[n - 1] == '\r')
        t[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= ' ' || t[i] == 127)
            rc = pst_err(err, errlen, PST_EARG,
                         "--token-file: %s: expected one line, a token without spaces or control "
                         "characters; found one at byte %zu",
                         path, i);
    if (rc == PST_OK && n < 16)
        rc = pst_err(err, errlen, PST_EARG,
                     "--token-file: %s: a token of %zu characters; expected at least 16", path, n);
    if (rc != PST_OK) {
        free(*token);
        *token = NULL;
    }
    return rc;
}

int cmd_serve(const cmd_config *cfg) {
    const cmd_serve_cfg *v = &cfg->serve;
    const cmd_args *a = &cfg->args;
    const int max_batch = (int)a->max_batch;
    char err[2048] = "";
    char *token = NULL, *cert = NULL, *key = NULL;
    sv_metrics *metrics = NULL;
    sv_models *models = NULL;
    sv_batcher *batcher = NULL;
    sv_http *http = NULL;

    /* The stop signals are taken by sigwait below: blocked before any thread starts, so that
     * every thread inherits the mask and none of them is interrupted. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up is a failed write, not our end */

    int rc = PST_OK;
    if (v->token_file[0])
        rc = read_token(v->token_file, &token, err, sizeof err);
    if (rc == PST_OK && v->tls_cert[0])
        rc = read_small("tls-cert", v->tls_cert, 1 << 20, 0, &cert, err, sizeof err);
    if (rc == PST_OK && v->tls_key[0])
        rc = read_small("tls-key", v->tls_key, 1 << 20, 0, &key, err, sizeof err);
    /* GnuTLS says nothing we could pass on about a file that is not PEM: say it here */
    if (rc == PST_OK && cert && !strstr(cert, "-----BEGIN CERTIFICATE-----"))
        rc = pst_err(err, sizeof err, PST_EARG,
                     "--tls-cert: %s: expected a PEM certificate (-----BEGIN CERTIFICATE-----)",
                     v->tls_cert);
    if (rc == PST_OK && key && !strstr(key, "PRIVATE KEY-----"))
        rc = pst_err(err, sizeof err, PST_EARG,
                     "--tls-key: %s: expected a PEM private key (-----BEGIN ... PRIVATE KEY-----)",
                     v->tls_key);
    if (rc != PST_OK)
        goto done;
    metrics = sv_metrics_new(max_batch);
    /* --threads 0: one per CPU, as eval --inputs (whose bits serve's answers equal) */
    const int threads = cfg->worker.threads > 0 ? (int)cfg->worker.threads : eng_pool_cpus();
    models =
        sv_models_new(a->checkpoint, max_batch, threads, a->live, metrics, &rc, err, sizeof err);
    if (!models)
        goto done;
    sv_model *m = sv_models_acquire(models);
    const wk_infer_sig *sig = wk_infer_signature(m->infer);
    char model[64], name[128];
    snprintf(model, sizeof model, "%s", sig->model);
    snprintf(name, sizeof name, "%s", v->name[0] ? v->name : sig->model);
    const long long version = (long long)m->version;
    const size_t in_floats = sig->in_floats, out_floats = sig->out_floats;
    sv_models_release(models, &m);
    batcher = sv_batcher_new(max_batch, in_floats, out_floats, (long)v->batch_timeout_us, metrics,
                             err, sizeof err);
    if (!batcher) {
        rc = PST_EIO;
        goto done;
    }
    const sv_http_cfg hc = {.bind = v->bind,
                            .port = (int)v->port,
                            .name = name,
                            .version = PSTRAIN_VERSION,
                            .max_batch = max_batch,
                            .max_body = (size_t)v->max_body,
                            .timeout_s = (unsigned)v->request_timeout,
                            .max_connections = (unsigned)v->max_connections,
                            .token = token,
                            .tls_cert = cert,
                            .tls_key = key};
    http = sv_http_start(&hc, models, batcher, metrics, &rc, err, sizeof err);
    if (!http)
        goto done;
    const int v6 = strchr(v->bind, ':') != NULL;
    printf("pstrain serve: %s version %lld on %s://%s%s%s:%d (name %s)\n", model, version,
           cert ? "https" : "http", v6 ? "[" : "", v->bind, v6 ? "]" : "", sv_http_port(http),
           name);
    fflush(stdout);
    int signo = 0;
    sigwait(&stop, &signo);
    fprintf(stderr, "pstrain serve: %s: finishing the requests in flight, then stopping\n",
            signo == SIGTERM ? "SIGTERM" : "SIGINT");
done:
    sv_http_stop(&http, GRACE_S);
    sv_batcher_free(&batcher);
    sv_models_free(&models);
    sv_metrics_free(&metrics);
    free(token);
    free(cert);
    free(key);
    return cmd_said(rc, err);
}
