/* progress.c: the bar, the epoch lines and the metrics file (jansson). */
#include "worker/report/progress.h"

#include "engine/base/base.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Opens the metrics file with mode ("w": a new run's, "a": a lead's that takes over). */
static int open_metrics(wk_progress *p, const char *metrics_path, const char *mode, char *err,
                        size_t errlen) {
    if (!metrics_path || !metrics_path[0])
        return PST_OK;
    snprintf(p->metrics_path, sizeof p->metrics_path, "%s", metrics_path);
    p->metrics = fopen(metrics_path, mode);
    if (!p->metrics)
        return pst_err(err, errlen, PST_EIO, "--metrics: %s: cannot open for writing: %s",
                       metrics_path, strerror(errno));
    return PST_OK;
}

int wk_progress_init(wk_progress *p, FILE *out, const char *metrics_path, int bar, int64_t epochs,
                     int64_t steps_per_epoch, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->bar = bar < 0 ? isatty(fileno(out)) : bar;
    p->epochs = epochs;
    p->steps_per_epoch = steps_per_epoch;
    return open_metrics(p, metrics_path, "w", err, errlen);
}

int wk_progress_lead(wk_progress *p, const char *metrics_path, int bar, char *err, size_t errlen) {
    p->bar = bar < 0 ? isatty(fileno(p->out)) : bar;
    return p->metrics ? PST_OK : open_metrics(p, metrics_path, "a", err, errlen);
}

/* A number for a metrics line: JSON has no NaN or infinity (a loss that diverged), so those
 * are null, as Python's json.dumps(allow_nan=False) callers write them. */
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* j, a JSON value just built. jansson answers NULL only when out of memory (or for a format
 * string of ours that is wrong): neither is recoverable here, as with the pst_ allocators. */
static json_t *built(json_t *j) {
    PST_ASSERT(j != NULL, "a metrics line could not be built (out of memory)");
    return j;
}

/* Writes obj (taken) as one line of the metrics file. A failed write (a full disk) is kept in
 * p->metrics_errno, for wk_progress_check to report: metrics must not go missing quietly. */
static void put_line(wk_progress *p, json_t *obj) {
    built(obj);
    if (p->metrics && !p->metrics_errno) {
        errno = 0;
        if (json_dumpf(obj, p->metrics, JSON_COMPACT | JSON_REAL_PRECISION(6)) != 0 ||
            fputc('\n', p->metrics) == EOF || fflush(p->metrics) != 0)
            p->metrics_errno = errno ? errno : EIO;
    }
    json_decref(obj);
}

int wk_progress_check(const wk_progress *p, char *err, size_t errlen) {
    if (!p->metrics_errno)
        return PST_OK;
    return pst_err(err, errlen, PST_EIO, "--metrics %s: cannot write: %s", p->metrics_path,
                   strerror(p->metrics_errno));
}

void wk_progress_deinit(wk_progress *p) {
    if (p->metrics)
        fclose(p->metrics);
    p->metrics = NULL;
}

void wk_progress_epoch_begin(wk_progress *p, int64_t epoch) {
    p->epoch_start = pst_now();
    p->last_draw = 0.0;
    fprintf(p->out, "Epoch %lld/%lld\n", (long long)epoch, (long long)p->epochs);
    fflush(p->out);
}

/* Redraws the bar with `what` after the ETA, at most ten times a second. */
static void draw_bar(wk_progress *p, int64_t step, const char *what) {
    double now = pst_now();
    if (step < p->steps_per_epoch && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    char bar[31];
    int width = 30, done = (int)(width * step / (p->steps_per_epoch ? p->steps_per_epoch : 1));
    for (int i = 0; i < width; i++)
        bar[i] = i < done ? '=' : (i == done ? '>' : '.');
    bar[width] = '\0';
    double elapsed = now - p->epoch_start;
    double eta = step > 0 ? elapsed * (double)(p->steps_per_epoch - step) / (double)step : 0.0;
    fprintf(p->out, "\r%lld/%lld [%s] - ETA: %3.0fs - %s ", (long long)step,
            (long long)p->steps_per_epoch, bar, eta, what);
    fflush(p->out);
}

void wk_progress_step(wk_progress *p, int64_t step, const char *figures, double samples_per_sec) {
    if (!p->bar)
        return;
    char what[160];
    snprintf(what, sizeof what, "%s - %.0f samples/s", figures, samples_per_sec);
    draw_bar(p, step, what);
}

void wk_progress_gan_epoch_end(wk_progress *p, const wk_gan_report *r) {
    if (p->bar)
        fputc('\n', p->out);
    fprintf(p->out, "%.1fs - d_loss: %.4f - g_loss: %.4f - d_accuracy: %.4f - %.0f samples/s",
            r->seconds, r->d_loss, r->g_loss, r->d_accuracy, r->samples_per_sec);
    if (r->push_bytes_per_step > 0)
        fprintf(p->out, " - %.1f KB pushed/step", r->push_bytes_per_step / 1e3);
    if (r->inception > 0)
        fprintf(p->out, " - inception_score: %.3f - frechet: %.3f", r->inception, r->frechet);
    if (r->live_inception > 0)
        fprintf(p->out, " - live_inception_score: %.3f - live_frechet: %.3f", r->live_inception,
                r->live_frechet);
    if (r->inception > 0)
        fprintf(p->out, " (%.1fs to score)", r->score_seconds);
    fputc('\n', p->out);
    fflush(p->out);
    if (p->metrics) {
        json_t *j = built(json_pack(
            "{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "event", "epoch", "epoch",
            (json_int_t)r->epoch, "d_loss", num(r->d_loss), "g_loss", num(r->g_loss), "d_accuracy",
            num(r->d_accuracy), "samples_per_sec", num(r->samples_per_sec), "push_bytes_per_step",
            num(r->push_bytes_per_step), "seconds", num(r->seconds)));
        if (r->inception > 0) {
            json_object_set_new(j, "inception_score", num(r->inception));
            json_object_set_new(j, "frechet", num(r->frechet));
        }
        if (r->live_inception > 0) {
            json_object_set_new(j, "live_inception_score", num(r->live_inception));
            json_object_set_new(j, "live_frechet", num(r->live_frechet));
        }
        put_line(p, j);
    }
}

void wk_progress_epoch_end(wk_progress *p, const wk_epoch_report *r) {
    if (p->bar)
        fputc('\n', p->out);
    fprintf(p->out,
            "%.1fs - loss: %.4f - accuracy: %.4f - val_loss: %.4f - val_accuracy: %.4f - "
            "%.0f samples/s",
            r->seconds, r->loss, r->accuracy, r->val_loss, r->val_accuracy, r->samples_per_sec);
    if (r->push_bytes_per_step > 0)
        fprintf(p->out, " - %.1f KB pushed/step", r->push_bytes_per_step / 1e3);
    fputc('\n', p->out);
    fflush(p->out);
    if (p->metrics)
        put_line(p, json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "event", "epoch",
                              "epoch", (json_int_t)r->epoch, "loss", num(r->loss), "accuracy",
                              num(r->accuracy), "val_loss", num(r->val_loss), "val_accuracy",
                              num(r->val_accuracy), "samples_per_sec", num(r->samples_per_sec),
                              "push_bytes_per_step", num(r->push_bytes_per_step), "seconds",
                              num(r->seconds)));
}

void wk_progress_final(wk_progress *p, double test_loss, double test_accuracy,
                       double samples_per_sec, double wall_s) {
    fprintf(p->out, "test_loss: %.4f - test_accuracy: %.4f - %.0f samples/s - %.1fs\n", test_loss,
            test_accuracy, samples_per_sec, wall_s);
    fflush(p->out);
    if (p->metrics)
        put_line(p, json_pack("{s:s, s:o, s:o, s:o, s:o}", "event", "final", "test_loss",
                              num(test_loss), "test_accuracy", num(test_accuracy),
                              "samples_per_sec", num(samples_per_sec), "wall_s", num(wall_s)));
}

void wk_progress_servers(wk_progress *p, int64_t epoch, const char *vector,
                         const wk_server_stats *st, int P) {
    if (!p->metrics || !st)
        return;
    json_t *servers = built(json_array());
    for (int s = 0; s < P; s++) {
        json_t *per = built(json_array());
        for (int w = 0; w < st[s].workers; w++)
            json_array_append_new(per, json_integer((json_int_t)st[s].pushes_per_worker[w]));
        json_array_append_new(
            servers,
            built(json_pack(
                "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:o, s:o, s:i}", "server",
                (json_int_t)st[s].server_id, "updates", (json_int_t)st[s].updates, "bytes_in",
                (json_int_t)st[s].bytes_in, "bytes_out", (json_int_t)st[s].bytes_out, "pushes",
                (json_int_t)st[s].pushes, "pulls", (json_int_t)st[s].pulls, "refused",
                (json_int_t)st[s].errors, "staleness_mean", num(st[s].mean_staleness),
                "staleness_max", (json_int_t)st[s].max_staleness, "barrier_wait_s",
                num(st[s].barrier_wait_s), "pushes_per_worker", per, "copies", st[s].copies)));
    }
    put_line(p, json_pack("{s:s, s:I, s:s, s:o}", "event", "servers", "epoch", (json_int_t)epoch,
                          "vector", vector, "servers", servers));
}

void wk_progress_report(wk_progress *p, double wall_s, double samples_per_sec,
                        const wk_time_split *t, const wk_server_stats *st, int P) {
    const double total = t->total_s > 0 ? t->total_s : 1.0;
    const double other = t->total_s - t->compute_s - t->push_s - t->pull_s;
    fprintf(p->out, "report: %.1f s wall, %.0f samples/s\n", wall_s, samples_per_sec);
    fprintf(p->out,
            "  worker 0's training time %.1f s: compute %.1f s (%.0f%%), pushing %.1f s (%.0f%%), "
            "waiting for weights %.1f s (%.0f%%), other %.1f s (%.0f%%)\n",
            t->total_s, t->compute_s, 100 * t->compute_s / total, t->push_s,
            100 * t->push_s / total, t->pull_s, 100 * t->pull_s / total, other,
            100 * other / total);
    double bytes = 0;
    for (int s = 0; st && s < P; s++)
        bytes += (double)(st[s].bytes_in + st[s].bytes_out);
    for (int s = 0; st && s < P; s++)
        fprintf(p->out,
                "  server %u: %llu updates, %.1f MB in, %.1f MB out (%.0f%% of all servers' "
                "bytes), barrier wait %.1f s, staleness mean %.2f max %llu\n",
                st[s].server_id, (unsigned long long)st[s].updates, (double)st[s].bytes_in / 1e6,
                (double)st[s].bytes_out / 1e6,
                bytes > 0 ? 100 * (double)(st[s].bytes_in + st[s].bytes_out) / bytes : 0.0,
                st[s].barrier_wait_s, st[s].mean_staleness,
                (unsigned long long)st[s].max_staleness);
    fflush(p->out);
    if (p->metrics)
        put_line(p, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "event", "report", "wall_s",
                              num(wall_s), "samples_per_sec", num(samples_per_sec), "compute_s",
                              num(t->compute_s), "push_s", num(t->push_s), "pull_wait_s",
                              num(t->pull_s), "train_s", num(t->total_s)));
}
