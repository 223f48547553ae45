/* progress.h: what a training run tells people and programs: a Keras-like live bar on a
 * terminal (one line per epoch otherwise), and JSON lines for --metrics (what `pstrain plot`
 * reads back: curves.h). */
#ifndef PSTRAIN_WORKER_REPORT_PROGRESS_H
#define PSTRAIN_WORKER_REPORT_PROGRESS_H

#include "worker/client.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct wk_progress {
    FILE *out;     /* human output, borrowed */
    FILE *metrics; /* JSON lines, owned; NULL: none */
    char metrics_path[4096];
    int metrics_errno; /* the first failed write's errno; 0: none */
    int bar;           /* redraw a live bar */
    int64_t epochs, steps_per_epoch;
    double epoch_start, last_draw;
} wk_progress;

typedef struct wk_epoch_report {
    int64_t epoch;
    double loss, accuracy, val_loss, val_accuracy, samples_per_sec, seconds;
    double push_bytes_per_step; /* a worker's gradient bytes a step; 0: one process */
} wk_epoch_report;

/* Where the first worker's time went, for the end-of-job report. */
typedef struct wk_time_split {
    double compute_s; /* forward, backward (and one process's optimizer) */
    double push_s;    /* handing gradients to ZeroMQ, waiting for it to release them */
    double pull_s;    /* waiting for weights from the servers */
    double total_s;   /* the training loops, end to end */
} wk_time_split;

/* Opens metrics_path (may be empty) for writing; bar: -1 auto, 0 off, 1 on.
 * Returns PST_OK, or PST_EIO with one line in err naming --metrics and the file. */
int wk_progress_init(wk_progress *p, FILE *out, const char *metrics_path, int bar, int64_t epochs,
                     int64_t steps_per_epoch, char *err, size_t errlen);
void wk_progress_deinit(wk_progress *p);
/* This worker reports from now on (the lead was lost): metrics_path (may be empty) is opened
 * for appending, after the lines the lead wrote; bar as for wk_progress_init. Returns PST_OK,
 * or PST_EIO with one line in err naming --metrics. */
int wk_progress_lead(wk_progress *p, const char *metrics_path, int bar, char *err, size_t errlen);

/* Returns PST_OK while every metrics line so far reached the file, else PST_EIO with one line in
 * err naming --metrics and the reason (No space left on device). The loops call it after each
 * epoch's lines and at the end, so a run whose metrics are lost does not end with status 0. */
int wk_progress_check(const wk_progress *p, char *err, size_t errlen);

void wk_progress_epoch_begin(wk_progress *p, int64_t epoch);
/* After each step: redraws the bar at most ten times a second with figures (the model's
 * running figures, "loss: 0.1234 - accuracy: 0.9876") and the throughput. */
void wk_progress_step(wk_progress *p, int64_t step, const char *figures, double samples_per_sec);
void wk_progress_epoch_end(wk_progress *p, const wk_epoch_report *r);

/* A GAN's epoch: both losses, the discriminator's accuracy over real and generated
 * images, and the judge's scores when measured (inception > 0). */
typedef struct wk_gan_report {
    int64_t epoch;
    double d_loss, g_loss, d_accuracy, samples_per_sec, seconds, push_bytes_per_step;
    double inception, frechet, score_seconds;
    double live_inception, live_frechet; /* with a moving average: the live generator's */
} wk_gan_report;
void wk_progress_gan_epoch_end(wk_progress *p, const wk_gan_report *r);
void wk_progress_final(wk_progress *p, double test_loss, double test_accuracy,
                       double samples_per_sec, double wall_s);

/* The servers' counters at an epoch's end, as one JSON line (metrics only): vector names
 * the parameter vector ("model", or a GAN's "generator" / "discriminator"). */
void wk_progress_servers(wk_progress *p, int64_t epoch, const char *vector,
                         const wk_server_stats *st, int P);

/* The end-of-job report: wall time, rate, where the first worker's time went and, for a
 * job with servers, each server's share of the load (st: their final counters, P of them,
 * NULL for one process). */
void wk_progress_report(wk_progress *p, double wall_s, double samples_per_sec,
                        const wk_time_split *t, const wk_server_stats *st, int P);

#endif
