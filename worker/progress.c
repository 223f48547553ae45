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
        fprintf(p->out, " - inception_score: %.3f - frechet: %.3f (%.1fs to score)", r->inception,
                r->frechet, r->score_seconds);
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
                "\"push_bytes_per_step\":%.6g}\n",
                (long long)r->epoch, r->loss, r->accuracy, r->val_loss, r->val_accuracy,
                r->samples_per_sec, r->push_bytes_per_step);
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
