/* plot.h: charts a person can open: an RGB canvas with lines, rectangles and text in a
 * built-in bitmap font (5x7, with two rows for descenders; no font library), a panel that
 * draws series against auto-scaled axes with "nice" ticks, and the canvas as a PNG
 * (libpng). It knows nothing of metrics files: worker/plot.c chooses what to draw. */
#ifndef PSTRAIN_ENGINE_PLOT_H
#define PSTRAIN_ENGINE_PLOT_H

#include <stddef.h>
#include <stdint.h>

/* Colours are 0xRRGGBB. */
#define ENG_RGB(r, g, b) ((uint32_t)(((r) << 16) | ((g) << 8) | (b)))

/* --- the canvas --- */

typedef struct eng_canvas eng_canvas;

/* A width x height canvas filled with background; NULL for a size outside [1, 16384] or
 * when out of memory. Release with eng_canvas_free. */
eng_canvas *eng_canvas_new(int width, int height, uint32_t background);
/* Accepts NULL; sets *c to NULL. */
void eng_canvas_free(eng_canvas **c);

int eng_canvas_width(const eng_canvas *c);
int eng_canvas_height(const eng_canvas *c);
/* The colour at (x, y); asserts that the point is on the canvas. */
uint32_t eng_canvas_pixel(const eng_canvas *c, int x, int y);

/* Drawing clips to the canvas: any coordinates are allowed. */
void eng_canvas_fill(eng_canvas *c, int x, int y, int w, int h, uint32_t colour);
/* A one-pixel outline of the rectangle [x, x + w) x [y, y + h). */
void eng_canvas_frame(eng_canvas *c, int x, int y, int w, int h, uint32_t colour);
/* A line from (x0, y0) to (x1, y1), both ends included, `thickness` pixels wide (>= 1). */
void eng_canvas_line(eng_canvas *c, int x0, int y0, int x1, int y1, int thickness, uint32_t colour);

/* --- text: 5x7 glyphs (capitals and digits 7 rows tall, descenders 2 more), advance 6,
 * each font pixel drawn as a scale x scale block. Printable ASCII; a character without a
 * glyph shows as '?'. --- */

#define ENG_FONT_ADVANCE 6 /* glyph 5 wide + 1 column between */
#define ENG_FONT_CAP 7     /* rows above the baseline */
#define ENG_FONT_ROWS 9    /* with the descenders */

/* Pixels the text spans across (no trailing gap) and down (descenders included). */
int eng_text_width(const char *s, int scale);
int eng_text_height(int scale);
/* Draws s with its top-left corner at (x, y). */
void eng_canvas_text(eng_canvas *c, int x, int y, const char *s, int scale, uint32_t colour);

/* Writes the canvas as an 8-bit RGB PNG. Returns PST_OK, or PST_EIO with one line in err
 * naming the path. */
int eng_canvas_write_png(const eng_canvas *c, const char *path, char *err, size_t errlen);

/* --- axes --- */

#define ENG_TICKS_MAX 24

/* An axis: the values [lo, hi] it spans, and its ticks: the multiples of a step of 1, 2 or 5
 * times a power of ten that lie in [lo, hi]. */
typedef struct eng_ticks {
    double lo, hi, step;
    int n; /* ticks, at most ENG_TICKS_MAX */
    double v[ENG_TICKS_MAX];
    int decimals; /* digits after the point a label needs to tell ticks apart */
} eng_ticks;

/* The axis of [lo, hi] with the smallest nice step that puts at most target + 1 ticks in it
 * (1 <= target <= ENG_TICKS_MAX - 1); integer: steps of at least 1 (epochs). An empty range
 * (lo == hi) is widened around its value; non-finite bounds (or span) give [0, 1]. Example: [0,
 * 0.93] with target 5 gives ticks 0, 0.2, 0.4, 0.6, 0.8. */
void eng_plot_ticks(double lo, double hi, int target, int integer, eng_ticks *t);

/* Tick i as text ("0.2", "10", "1.5e+06") into buf. */
void eng_ticks_label(const eng_ticks *t, int i, char *buf, size_t len);

/* --- panels --- */

/* One line with a marker at each point; points with a non-finite x or y are skipped and
 * break the line. The panel borrows x and y. */
typedef struct eng_series {
    const char *name; /* in the legend */
    const double *x, *y;
    int n;
    uint32_t colour;
    int right; /* 1: against a second y axis on the right (legend: "NAME (right)") */
} eng_series;

typedef struct eng_panel {
    const char *title;
    const eng_series *series;
    int nseries;
    int x_integer; /* x ticks on whole numbers (epochs) */
} eng_panel;

/* Where a panel put its data, for callers that draw on top and for tests. */
typedef struct eng_plot_axes {
    int x, y, w, h;   /* the frame around the data, canvas pixels */
    int inset;        /* the axes' ends lie this far inside the frame, so end points show */
    eng_ticks xt, yt; /* x and the left y axis */
    eng_ticks yt2;    /* the right y axis; n == 0 when no series uses it */
} eng_plot_axes;

/* Draws a panel into the rectangle (x, y, w, h) of c: the title, a legend of the series
 * with data (name and colour), a frame with grid lines, ticks and numeric labels, and the
 * series; "no data" when none has a point. axes (may be NULL) receives the geometry. */
void eng_plot_panel(eng_canvas *c, int x, int y, int w, int h, const eng_panel *p,
                    eng_plot_axes *axes);

/* The canvas pixel of the value (vx, vy) on a panel's axes (right: the right y axis). */
void eng_plot_to_pixel(const eng_plot_axes *a, int right, double vx, double vy, int *px, int *py);

#endif
