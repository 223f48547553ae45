/* plot.h: `pstrain plot`: the training curves of a run, read from its --metrics JSON-lines
 * file, as a PNG a person can open (engine/plot.h draws).
 *
 * What it reads: lines {"event":"epoch", ...} in order, with "epoch" and the values below;
 * "seconds" (that epoch's wall time) on every epoch line gives the bottom row. Other events
 * and keys are ignored, as are blank lines.
 *   classification: loss, val_loss | accuracy, val_accuracy
 *   GAN (d_loss present): d_loss, g_loss | inception_score, frechet (right axis) when
 *                         judged, else d_accuracy
 * The picture: a band with the title (and the "final" line's test numbers), then a 2x2
 * grid, 1200x800: losses left, accuracy (scores) right; against epochs on top, against
 * cumulative wall seconds below. Without "seconds" only the top row: 1200x420. */
#ifndef PSTRAIN_WORKER_PLOT_H
#define PSTRAIN_WORKER_PLOT_H

#include <stddef.h>

#define WK_PLOT_WIDTH 1200
#define WK_PLOT_HEIGHT 800        /* with wall times */
#define WK_PLOT_HEIGHT_EPOCHS 420 /* without: the top row */

/* Draws metrics_path into out_path; title NULL or "": the metrics path. Returns 0, 2 on bad
 * input (a file that cannot be read, a line that is not a JSON object, a known key that is
 * not a number, no epoch lines, an --out that cannot be written) or 1 when out of memory,
 * with one line in err naming the file (and line). */
int wk_plot(const char *metrics_path, const char *out_path, const char *title, char *err,
            size_t errlen);

#endif
