/* progress.c: the bar, the epoch lines and the metrics file. */
#include "worker/progress.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double wk_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int wk_progress_init(wk_progress *p, FILE *out, const char *metrics_path, int bar, int64_t epochs,
                     int64_t steps_per_epoch, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->bar = bar < 0 ? isatty(fileno(out)) : bar;
    p->epochs = epochs;
    p->steps_per_epoch = steps_per_epoch;
    if (metrics_path && metrics_path[0]) {
        p->metrics = fopen(metrics_path, "w");
        if (!p->metrics) {
            snprintf(err, errlen, "--metrics: %s: cannot open for writing: %s", metrics_path,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

void wk_progress_deinit(wk_progress *p) {
    if (p->metrics)
        fclose(p->metrics);
    p->metrics = NULL;
}

void wk_progress_epoch_begin(wk_progress *p, int64_t epoch) {
    p->epoch_start = wk_now();
    p->last_draw = 0.0;
    fprintf(p->out, "Epoch %lld/%lld\n", (long long)epoch, (long long)p->epochs);
    fflush(p->out);
}

/* Redraws the bar with `what` after the ETA, at most ten times a second. */
static void draw_bar(wk_progress *p, int64_t step, const char *what) {
    double now = wk_now();
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

void wk_progress_step(wk_progress *p, int64_t step, double loss, double accuracy,
                      double samples_per_sec) {
    if (!p->bar)
        return;
    char what[128];
    snprintf(what, sizeof what, "loss: %.4f - accuracy: %.4f - %.0f samples/s", loss, accuracy,
             samples_per_sec);
    draw_bar(p, step, what);
}

void wk_progress_gan_step(wk_progress *p, int64_t step, double d_loss, double g_loss,
                          double samples_per_sec) {
    if (!p->bar)
        return;
    char what[128];
    snprintf(what, sizeof what, "d_loss: %.4f - g_loss: %.4f - %.0f samples/s", d_loss, g_loss,
             samples_per_sec);
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
        fprintf(p->metrics,
                "{\"event\":\"epoch\",\"epoch\":%lld,\"d_loss\":%.6g,\"g_loss\":%.6g,"
                "\"d_accuracy\":%.6g,\"samples_per_sec\":%.6g,\"push_bytes_per_step\":%.6g,"
                "\"seconds\":%.6g",
                (long long)r->epoch, r->d_loss, r->g_loss, r->d_accuracy, r->samples_per_sec,
                r->push_bytes_per_step, r->seconds);
        if (r->inception > 0)
            fprintf(p->metrics, ",\"inception_score\":%.6g,\"frechet\":%.6g", r->inception,
                    r->frechet);
        if (r->live_inception > 0)
            fprintf(p->metrics, ",\"live_inception_score\":%.6g,\"live_frechet\":%.6g",
                    r->live_inception, r->live_frechet);
        fprintf(p->metrics, "}\n");
        fflush(p->metrics);
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
    if (p->metrics) {
        fprintf(p->metrics,
                "{\"event\":\"epoch\",\"epoch\":%lld,\"loss\":%.6g,\"accuracy\":%.6g,"
                "\"val_loss\":%.6g,\"val_accuracy\":%.6g,\"samples_per_sec\":%.6g,"
                "\"push_bytes_per_step\":%.6g,\"seconds\":%.6g}\n",
                (long long)r->epoch, r->loss, r->accuracy, r->val_loss, r->val_accuracy,
                r->samples_per_sec, r->push_bytes_per_step, r->seconds);
        fflush(p->metrics);
    }
}

void wk_progress_final(wk_progress *p, double test_loss, double test_accuracy,
                       double samples_per_sec, double wall_s) {
    fprintf(p->out, "test_loss: %.4f - test_accuracy: %.4f - %.0f samples/s - %.1fs\n", test_loss,
            test_accuracy, samples_per_sec, wall_s);
    fflush(p->out);
    if (p->metrics) {
        fprintf(p->metrics,
                "{\"event\":\"final\",\"test_loss\":%.6g,\"test_accuracy\":%.6g,"
                "\"samples_per_sec\":%.6g,\"wall_s\":%.6g}\n",
                test_loss, test_accuracy, samples_per_sec, wall_s);
        fflush(p->metrics);
    }
}

void wk_progress_servers(wk_progress *p, int64_t epoch, const char *vector,
                         const wk_server_stats *st, int P) {
    if (!p->metrics || !st)
        return;
    fprintf(p->metrics, "{\"event\":\"servers\",\"epoch\":%lld,\"vector\":\"%s\",\"servers\":[",
            (long long)epoch, vector);
    for (int s = 0; s < P; s++) {
        fprintf(p->metrics,
                "%s{\"server\":%u,\"updates\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                "\"pushes\":%llu,\"pulls\":%llu,\"refused\":%llu,\"staleness_mean\":%.6g,"
                "\"staleness_max\":%llu,\"barrier_wait_s\":%.6g,\"pushes_per_worker\":[",
                s ? "," : "", st[s].server_id, (unsigned long long)st[s].updates,
                (unsigned long long)st[s].bytes_in, (unsigned long long)st[s].bytes_out,
                (unsigned long long)st[s].pushes, (unsigned long long)st[s].pulls,
                (unsigned long long)st[s].errors, st[s].mean_staleness,
                (unsigned long long)st[s].max_staleness, st[s].barrier_wait_s);
        for (int w = 0; w < st[s].workers; w++)
            fprintf(p->metrics, "%s%llu", w ? "," : "",
                    (unsigned long long)st[s].pushes_per_worker[w]);
        fprintf(p->metrics, "]}");
    }
    fprintf(p->metrics, "]}\n");
    fflush(p->metrics);
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
    if (p->metrics) {
        fprintf(p->metrics,
                "{\"event\":\"report\",\"wall_s\":%.6g,\"samples_per_sec\":%.6g,"
                "\"compute_s\":%.6g,\"push_s\":%.6g,\"pull_wait_s\":%.6g,\"train_s\":%.6g}\n",
                wall_s, samples_per_sec, t->compute_s, t->push_s, t->pull_s, t->total_s);
        fflush(p->metrics);
    }
}
