/* chart.h: `pstrain plot`: the training curves of a run, or of several runs overlaid, read
 * from their --metrics files (curves.h) and drawn with cairo as a PNG or an SVG a person can
 * open: real fonts, UTF-8 text ("Fréchet"), anti-aliased lines, no X server.
 *
 * The picture, WK_CHART_WIDTH wide: a band with the title and the final numbers, then a 2x2
 * grid: losses on the left, accuracy on the right (a GAN: d_loss and g_loss | the inception
 * score and the Fréchet distance on a right axis when judged, else d_accuracy); against
 * epochs on top, against cumulative wall seconds below. WK_CHART_HEIGHT tall; when some run
 * lacks "seconds" on an epoch line, only the top row: WK_CHART_HEIGHT_EPOCHS.
 *   One run: each curve in its own colour; the test numbers and the wall time at the band's
 *   right.
 *   Several runs: each run in its own colour (wk_chart_colour), its curves told apart by
 *   their dashes (the panels' legends say which); under the title, a legend of the runs
 *   (each named by its path as given, with its test numbers), in rows of
 *   WK_CHART_LEGEND_ROW pixels that the panels make room for. */
#ifndef PSTRAIN_WORKER_REPORT_CHART_H
#define PSTRAIN_WORKER_REPORT_CHART_H

#include <stddef.h>
#include <stdint.h>

#define WK_CHART_WIDTH 1200
#define WK_CHART_HEIGHT 800        /* with wall times */
#define WK_CHART_HEIGHT_EPOCHS 420 /* without: the top row */
#define WK_CHART_BAND 40           /* the title's band; several runs: their legend below it */
#define WK_CHART_LEGEND_ROW 26
#define WK_CHART_RUNS 10 /* at most, one colour each */

/* Draws the metrics files metrics[0 .. n) into out: a PNG for a name ending in .png, an SVG
 * (1.1, fonts as outlines, the title and the runs' names also as <title> and <desc> text)
 * for .svg, either case. title NULL or "": the metrics path (several: "N runs").
 * Returns PST_OK, or with one line in err, nothing written:
 *   PST_EARG   --out without .png or .svg, --out naming one of the metrics files, n outside
 *              [1, WK_CHART_RUNS], or runs of different kinds (a GAN's and a classifier's);
 *   PST_EIO, PST_EFORMAT   a metrics file that cannot be read, or a bad line (wk_curves_read:
 *              the file and line named), or an out that cannot be written ("--out PATH: ...",
 *              written whole or not at all). */
int wk_chart(const char *const *metrics, int n, const char *out, const char *title, char *err,
             size_t errlen);

/* Run i's colour in an overlay, 0xRRGGBB (matplotlib's tab10, in order). */
uint32_t wk_chart_colour(int run);

/* Releases what cairo and fontconfig keep for the whole process once text was drawn (fonts,
 * caches, the configuration), so that a leak checker (ASan) reports none. Call once, at the
 * end (the program's main, a test's), when no chart is being drawn. */
void wk_chart_release(void);

#endif
