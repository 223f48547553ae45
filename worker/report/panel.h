/* panel.h: one panel of a chart, drawn on a cairo context: a title, a legend, a frame with
 * grid lines and "nice" ticks, and the curves of one or more runs against one x; and the
 * text helpers the chart's band shares (UTF-8 checked, cut to fit). chart.c lays panels out. */
#ifndef PSTRAIN_WORKER_REPORT_PANEL_H
#define PSTRAIN_WORKER_REPORT_PANEL_H

#include "worker/report/curves.h"

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

/* --- axes --- */

#define WK_TICKS_MAX 24

/* An axis: the values [lo, hi] it spans, and its ticks: the multiples of a step of 1, 2 or 5
 * times a power of ten that lie in [lo, hi]. */
typedef struct wk_ticks {
    double lo, hi, step;
    int n; /* ticks, at most WK_TICKS_MAX */
    double v[WK_TICKS_MAX];
    int decimals; /* digits after the point a label needs to tell ticks apart */
} wk_ticks;

/* The axis of [lo, hi] with the smallest nice step that puts at most target + 1 ticks in it
 * (1 <= target <= WK_TICKS_MAX - 1); integer: steps of at least 1 (epochs). An empty range
 * (lo == hi) is widened around its value; non-finite bounds (or span) give [0, 1]. Example:
 * [0, 0.93] with target 5 gives ticks 0, 0.2, 0.4, 0.6, 0.8. */
void wk_ticks_make(double lo, double hi, int target, int integer, wk_ticks *t);

/* Tick i as text ("0.2", "10", "1.5e+06") into buf. */
void wk_ticks_label(const wk_ticks *t, int i, char *buf, size_t len);

/* --- panels --- */

#define WK_PANEL_CURVES 4 /* per run */

/* A curve the panel draws from every run: a key of the metrics, on the left or right axis
 * (legend: "NAME (right)"), in colour when the panel shows one run. */
typedef struct wk_panel_curve {
    wk_curve key;
    int right;
    uint32_t colour; /* 0xRRGGBB */
} wk_panel_curve;

/* A run as a panel sees it: its curves (borrowed), the x of each epoch line (n of them;
 * the epochs, or cumulative wall seconds), and its colour when the panel shows several. */
typedef struct wk_panel_run {
    const wk_curves *c;
    const double *x;
    uint32_t colour;
} wk_panel_run;

typedef struct wk_panel {
    const char *title;
    wk_panel_curve curves[WK_PANEL_CURVES];
    int ncurves;
    const wk_panel_run *runs;
    int nruns;     /* 1: curves in their colours; more: runs in theirs, curves by their dashes */
    int x_integer; /* x ticks on whole numbers (epochs) */
} wk_panel;

/* Where a panel put its data, for tests. */
typedef struct wk_panel_axes {
    int x, y, w, h;    /* the frame around the data, in the context's units (pixels) */
    wk_ticks xt, yt;   /* x and the left y axis */
    wk_ticks yt_right; /* the right y axis; n == 0 when no curve uses it */
} wk_panel_axes;

/* Draws p into the rectangle (x, y, w, h); points with a non-finite x or y are skipped and
 * break their line; a panel without points says "no data". axes (may be NULL) receives the
 * geometry. */
void wk_panel_draw(cairo_t *cr, int x, int y, int w, int h, const wk_panel *p, wk_panel_axes *axes);

/* The pixel of the value (vx, vy) on a panel's axes (right: the right y axis). */
void wk_panel_to_pixel(const wk_panel_axes *a, int right, double vx, double vy, double *px,
                       double *py);

/* --- bytes --- */

/* What cairo writes (a PNG or an SVG stream), kept in memory until it is whole, so that the
 * file is written whole or not at all. The caller frees data. */
typedef struct wk_bytes {
    unsigned char *data;
    size_t len, cap;
} wk_bytes;

/* A cairo_write_func_t: appends len bytes to the wk_bytes at closure. Never fails
 * (allocation aborts). */
cairo_status_t wk_bytes_append(void *closure, const unsigned char *data, unsigned int len);

/* --- text --- */

/* Sets the font: the system's sans-serif (fontconfig), size in pixels, bold or not. */
void wk_text_font(cairo_t *cr, double size, int bold);

/* s (UTF-8) in the current font: its advance in pixels. */
double wk_text_width(cairo_t *cr, const char *s);

/* s copied into buf (of len bytes, len >= 4) as valid UTF-8: a byte that does not start a
 * valid sequence becomes U+FFFD; cut at a character boundary when buf is full. Returns buf.
 * cairo refuses invalid UTF-8 (and then draws nothing more), and titles and paths come from
 * the user. */
char *wk_text_utf8(const char *s, char *buf, size_t len);

/* s (valid UTF-8) cut from the head, "…" first, to fit room pixels in the current font;
 * into buf. Returns buf. */
char *wk_text_fit(cairo_t *cr, const char *s, double room, char *buf, size_t len);

/* Draws s (valid UTF-8) with its baseline's left end at (x, baseline). */
void wk_text_draw(cairo_t *cr, double x, double baseline, const char *s, uint32_t colour);

/* The source colour 0xRRGGBB. */
void wk_colour(cairo_t *cr, uint32_t rgb);

#endif
