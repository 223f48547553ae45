/* curves.h: a run's training curves, read back from the JSON lines of its --metrics
 * (progress.h writes them): what `pstrain plot` draws (chart.h).
 *
 * What it reads: lines {"event":"epoch", ...} in order, with "epoch" and the values below,
 * and the "final" line's test_loss, test_accuracy and wall_s. Other events and keys are
 * ignored, as are blank lines. A value that is null (a loss that diverged) is no point.
 *   classification: loss, val_loss, accuracy, val_accuracy
 *   GAN (d_loss present): d_loss, g_loss, d_accuracy, inception_score, frechet and, with a
 *                         moving average, live_inception_score, live_frechet
 *   every model: seconds (that epoch's wall time) */
#ifndef PSTRAIN_WORKER_REPORT_CURVES_H
#define PSTRAIN_WORKER_REPORT_CURVES_H

#include <stddef.h>

/* The keys of an epoch line that are read. */
typedef enum wk_curve {
    WK_CURVE_EPOCH,
    WK_CURVE_SECONDS,
    WK_CURVE_LOSS,
    WK_CURVE_VAL_LOSS,
    WK_CURVE_ACCURACY,
    WK_CURVE_VAL_ACCURACY,
    WK_CURVE_D_LOSS,
    WK_CURVE_G_LOSS,
    WK_CURVE_D_ACCURACY,
    WK_CURVE_INCEPTION,
    WK_CURVE_FRECHET,
    WK_CURVE_LIVE_INCEPTION,
    WK_CURVE_LIVE_FRECHET,
    WK_CURVES
} wk_curve;

typedef struct wk_curves {
    int n;                /* epoch lines */
    int cap;              /* lines v has room for */
    double *v[WK_CURVES]; /* (n) per key, in file order; NAN where a line lacks the key; an
                           * epoch line without "epoch" counts as its position (1, 2, ...) */
    int seen[WK_CURVES];  /* epoch lines with a finite value of the key */
    int final;            /* a "final" line was read */
    double test_loss, test_accuracy, wall_s; /* the final line's; NAN when absent */
} wk_curves;

/* The key as the metrics file spells it: "val_loss". */
const char *wk_curve_name(wk_curve k);

/* Reads the metrics file at path into c (zeroed here; release with wk_curves_deinit, also
 * after a failure). Returns PST_OK; PST_EIO when the file cannot be opened or read; or
 * PST_EFORMAT for a line that is not a JSON object, a known key that is not a number, or a
 * file without epoch lines; err is one line naming the file (and the line, counted as an
 * editor counts them). */
int wk_curves_read(wk_curves *c, const char *path, char *err, size_t errlen);
void wk_curves_deinit(wk_curves *c);

#endif
