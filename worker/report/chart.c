/* chart.c: `pstrain plot`: the runs read (curves.h), the picture laid out (the band, the
 * runs' legend, rows of two panels: panel.h) on a cairo surface, and the file written: PNG
 * from an image surface, SVG from an SVG surface, the same drawing code for both. */
#include "worker/report/chart.h"

#include "engine/base/base.h"
#include "worker/paths.h"
#include "worker/report/curves.h"
#include "worker/report/panel.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define W WK_CHART_WIDTH
#define BLUE 0x1f77b4u
#define ORANGE 0xff7f0eu
#define GREEN 0x2ca02cu
#define RED 0xd62728u
#define LIGHT_GREEN 0x98df8au /* a GAN's live generator beside its moving average */
#define LIGHT_RED 0xff9896u
#define TITLE_SIZE 22.0 /* pixels */
#define TEXT_SIZE 14.0

uint32_t wk_chart_colour(int run) {
    static const uint32_t tab10[WK_CHART_RUNS] = {0x1f77b4u, 0xff7f0eu, 0x2ca02cu, 0xd62728u,
                                                  0x9467bdu, 0x8c564bu, 0xe377c2u, 0x7f7f7fu,
                                                  0xbcbd22u, 0x17becfu};
    PST_ASSERT(run >= 0 && run < WK_CHART_RUNS, "run %d of at most %d", run, WK_CHART_RUNS);
    return tab10[run];
}

void wk_chart_release(void) {
    cairo_debug_reset_static_data(); /* cairo's font caches first: they hold fontconfig's */
    FcFini();
}

typedef struct run {
    const char *path;
    char name[512]; /* the path as valid UTF-8, for the picture */
    wk_curves c;
    double *wall; /* (c.n) cumulative seconds at each epoch's end; NULL: some epoch lacks them */
} run;

/* --- what is drawn --- */

/* "test_loss 0.0400  test_accuracy 0.9870  130 s", or "3 epochs  130 s". */
static void summary(const run *r, char *buf, size_t len) {
    const wk_curves *c = &r->c;
    if (c->final && isfinite(c->test_loss) && isfinite(c->test_accuracy))
        snprintf(buf, len, "test_loss %.4f  test_accuracy %.4f", c->test_loss, c->test_accuracy);
    else
        snprintf(buf, len, "%d epoch%s", c->n, c->n == 1 ? "" : "s");
    const double wall = c->final && isfinite(c->wall_s) /* the whole run's, evaluation too */
                            ? c->wall_s
                            : (r->wall ? r->wall[c->n - 1] : NAN);
    if (isfinite(wall))
        snprintf(buf + strlen(buf), len - strlen(buf), "  %.0f s", wall);
}

/* One run: the title at the left (its head cut when long), the summary at the right. Several:
 * the title, then their legend in rows below. Returns the band's height. */
static int draw_band(cairo_t *cr, const run *runs, int n, const char *title) {
    char shown[1024], line[1024];
    double right = W - 16;
    if (n == 1) {
        summary(&runs[0], line, sizeof line);
        wk_text_font(cr, TEXT_SIZE, 0);
        right -= wk_text_width(cr, line);
        wk_text_draw(cr, right, 26, line, 0x444444u);
        right -= 32;
    }
    wk_text_font(cr, TITLE_SIZE, 1);
    wk_text_draw(cr, 16, 28, wk_text_fit(cr, title, right - 16, shown, sizeof shown), 0x111111u);
    int band = WK_CHART_BAND;
    if (n > 1) {
        wk_text_font(cr, TEXT_SIZE, 0);
        double x = 16;
        int top = WK_CHART_BAND;
        for (int i = 0; i < n; i++) {
            char sum[160];
            summary(&runs[i], sum, sizeof sum);
            const double sw = wk_text_width(cr, sum), room = W - 32 - 18 - 12 - sw;
            wk_text_fit(cr, runs[i].name, room, shown, sizeof shown);
            const double ew = 18 + wk_text_width(cr, shown) + 12 + sw;
            if (x > 16 && x + ew > W - 16) {
                x = 16;
                top += WK_CHART_LEGEND_ROW;
            }
            wk_colour(cr, wk_chart_colour(i));
            cairo_rectangle(cr, x, top + 6, 12, 12);
            cairo_fill(cr);
            wk_text_draw(cr, x + 18, top + 17, shown, 0x111111u);
            wk_text_draw(cr, x + ew - sw, top + 17, sum, 0x444444u);
            x = ceil(x + ew + 28); /* swatches on whole pixels */
        }
        band = top + WK_CHART_LEGEND_ROW + 4;
    }
    wk_colour(cr, 0xccccccu);
    cairo_rectangle(cr, 16, band - 4, W - 32, 1);
    cairo_fill(cr);
    return band;
}

/* One row of two panels against x (wall: wall seconds, else epochs): losses on the left,
 * accuracy (a GAN's scores) on the right. */
static void draw_row(cairo_t *cr, int y, int h, const run *runs, int n, int wall) {
    const int gan = runs[0].c.seen[WK_CURVE_D_LOSS] > 0; /* all or none: one_kind */
    int judged = 0, live = 0;
    for (int i = 0; i < n; i++) {
        judged |= runs[i].c.seen[WK_CURVE_INCEPTION] > 0;
        live |= runs[i].c.seen[WK_CURVE_LIVE_INCEPTION] > 0;
    }
    wk_panel_run pr[WK_CHART_RUNS];
    for (int i = 0; i < n; i++)
        pr[i] = (wk_panel_run){&runs[i].c, wall ? runs[i].wall : runs[i].c.v[WK_CURVE_EPOCH],
                               wk_chart_colour(i)};
    wk_panel left = {.runs = pr, .nruns = n, .x_integer = !wall};
    wk_panel right = left;
    const char *what = "accuracy";
    if (gan) {
        left.curves[left.ncurves++] = (wk_panel_curve){WK_CURVE_D_LOSS, 0, BLUE};
        left.curves[left.ncurves++] = (wk_panel_curve){WK_CURVE_G_LOSS, 0, ORANGE};
        if (judged) {
            right.curves[right.ncurves++] = (wk_panel_curve){WK_CURVE_INCEPTION, 0, GREEN};
            right.curves[right.ncurves++] = (wk_panel_curve){WK_CURVE_FRECHET, 1, RED};
            if (live) {
                right.curves[right.ncurves++] =
                    (wk_panel_curve){WK_CURVE_LIVE_INCEPTION, 0, LIGHT_GREEN};
                right.curves[right.ncurves++] =
                    (wk_panel_curve){WK_CURVE_LIVE_FRECHET, 1, LIGHT_RED};
            }
            what = "scores";
        } else {
            right.curves[right.ncurves++] = (wk_panel_curve){WK_CURVE_D_ACCURACY, 0, BLUE};
            what = "d_accuracy";
        }
    } else {
        left.curves[left.ncurves++] = (wk_panel_curve){WK_CURVE_LOSS, 0, BLUE};
        left.curves[left.ncurves++] = (wk_panel_curve){WK_CURVE_VAL_LOSS, 0, ORANGE};
        right.curves[right.ncurves++] = (wk_panel_curve){WK_CURVE_ACCURACY, 0, BLUE};
        right.curves[right.ncurves++] = (wk_panel_curve){WK_CURVE_VAL_ACCURACY, 0, ORANGE};
    }
    char title[2][96];
    const char *against = wall ? "wall time (s)" : "epoch";
    snprintf(title[0], sizeof title[0], "loss vs %s", against);
    snprintf(title[1], sizeof title[1], "%s vs %s", what, against);
    left.title = title[0];
    right.title = title[1];
    wk_panel_draw(cr, 0, y, W / 2, h, &left, NULL);
    wk_panel_draw(cr, W / 2, y, W / 2, h, &right, NULL);
}

/* The whole picture on cr; height: the surface's. */
static void draw(cairo_t *cr, const run *runs, int n, const char *title, int timed, int height) {
    wk_colour(cr, 0xffffffu);
    cairo_paint(cr);
    const int band = draw_band(cr, runs, n, title);
    const int rows = timed ? 2 : 1, row_h = (height - band) / rows;
    draw_row(cr, band, row_h, runs, n, 0);
    if (timed)
        draw_row(cr, band + row_h, row_h, runs, n, 1);
    PST_ASSERT(cairo_status(cr) == CAIRO_STATUS_SUCCESS, "drawing the chart: %s",
               cairo_status_to_string(cairo_status(cr)));
}

/* --- the file --- */

/* s as XML character data: valid UTF-8, markup escaped, control characters dropped. */
static void xml_text(const char *s, wk_bytes *b) {
    char clean[1024];
    wk_text_utf8(s, clean, sizeof clean);
    for (const char *p = clean; *p; p++) {
        const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
        if (e)
            wk_bytes_append(b, (const unsigned char *)e, (unsigned)strlen(e));
        else if ((unsigned char)*p >= 0x20 || *p == '\n' || *p == '\t')
            wk_bytes_append(b, (const unsigned char *)p, 1);
    }
}

/* The SVG's <title> and <desc> (one line a run), the text that readers and searches see:
 * cairo draws text as glyph outlines. */
static void svg_head(const run *runs, int n, const char *title, wk_bytes *b) {
    static const char t0[] = "\n<title>", t1[] = "</title>\n<desc>", t2[] = "</desc>";
    wk_bytes_append(b, (const unsigned char *)t0, sizeof t0 - 1);
    xml_text(title, b);
    wk_bytes_append(b, (const unsigned char *)t1, sizeof t1 - 1);
    for (int i = 0; i < n; i++) {
        char line[1200], sum[160];
        summary(&runs[i], sum, sizeof sum);
        snprintf(line, sizeof line, "%s%s: %s", i ? "\n" : "", runs[i].path, sum);
        xml_text(line, b);
    }
    wk_bytes_append(b, (const unsigned char *)t2, sizeof t2 - 1);
}

/* Draws and writes out (svg or PNG); title: valid UTF-8. */
static int render(const run *runs, int n, const char *title, int timed, int svg, const char *out,
                  char *err, size_t errlen) {
    const int height = timed ? WK_CHART_HEIGHT : WK_CHART_HEIGHT_EPOCHS;
    wk_bytes b = {0}, head = {0};
    cairo_surface_t *s;
    if (svg) {
        s = cairo_svg_surface_create_for_stream(wk_bytes_append, &b, W, height);
        cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
    } else {
        s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, height);
    }
    cairo_t *cr = cairo_create(s);
    draw(cr, runs, n, title, timed, height);
    cairo_destroy(cr);
    cairo_status_t st = CAIRO_STATUS_SUCCESS;
    if (svg)
        cairo_surface_finish(s); /* the rest of the document into b */
    else
        st = cairo_surface_write_to_png_stream(s, wk_bytes_append, &b);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(s);
    PST_ASSERT(st == CAIRO_STATUS_SUCCESS, "%s: %s", out, cairo_status_to_string(st));
    cairo_surface_destroy(s);
    int rc;
    if (svg) { /* the head goes right after the <svg ...> tag */
        wk_bytes_append(&b, (const unsigned char *)"", 1); /* a C string, for strstr */
        b.len--;
        const char *tag = strstr((const char *)b.data, "<svg");
        const char *end = tag ? strchr(tag, '>') : NULL;
        PST_ASSERT(end != NULL, "%s: cairo's SVG has no <svg> tag", out);
        const size_t at = (size_t)(end + 1 - (const char *)b.data);
        svg_head(runs, n, title, &head);
        const void *bufs[3] = {b.data, head.data, b.data + at};
        const size_t lens[3] = {at, head.len, b.len - at};
        rc = wk_write_whole("out", out, bufs, lens, 3, err, errlen);
    } else {
        const void *buf = b.data;
        rc = wk_write_whole("out", out, &buf, &b.len, 1, err, errlen);
    }
    free(b.data);
    free(head.data);
    return rc;
}

/* --- the runs --- */

/* Is out one of the metrics files (same file, whatever the path)? */
static int is_input(const char *out, const char *path) {
    struct stat in, o;
    return stat(path, &in) == 0 && stat(out, &o) == 0 && in.st_dev == o.st_dev &&
           in.st_ino == o.st_ino;
}

/* The files' kinds agree: all a GAN's, or all a classifier's. */
static int one_kind(const run *runs, int n, char *err, size_t errlen) {
    const int gan = runs[0].c.seen[WK_CURVE_D_LOSS] > 0;
    for (int i = 1; i < n; i++)
        if ((runs[i].c.seen[WK_CURVE_D_LOSS] > 0) != gan)
            return pst_err(err, errlen, PST_EARG,
                           "%s: the metrics of a %s, %s those of a %s: expected runs of one kind",
                           runs[i].path, gan ? "classifier" : "GAN", runs[0].path,
                           gan ? "GAN" : "classifier");
    return PST_OK;
}

int wk_chart(const char *const *metrics, int n, const char *out, const char *title, char *err,
             size_t errlen) {
    const char *dot = strrchr(out, '.');
    const int svg = dot && strcasecmp(dot, ".svg") == 0;
    if (!svg && !(dot && strcasecmp(dot, ".png") == 0))
        return pst_err(err, errlen, PST_EARG,
                       "--out %s: expected a file name ending in .png or .svg", out);
    if (n < 1 || n > WK_CHART_RUNS)
        return pst_err(err, errlen, PST_EARG, "plot: %d metrics files: expected 1 to %d", n,
                       WK_CHART_RUNS);
    for (int i = 0; i < n; i++)
        if (is_input(out, metrics[i]))
            return pst_err(err, errlen, PST_EARG,
                           "--out %s: is the metrics file %s; expected a new %s", out, metrics[i],
                           svg ? ".svg" : ".png");
    run *runs = pst_calloc((size_t)n, sizeof *runs);
    int rc = PST_OK, timed = 1;
    for (int i = 0; i < n && rc == PST_OK; i++) {
        run *r = &runs[i];
        r->path = metrics[i];
        wk_text_utf8(metrics[i], r->name, sizeof r->name);
        rc = wk_curves_read(&r->c, metrics[i], err, errlen);
        if (rc == PST_OK && r->c.seen[WK_CURVE_SECONDS] == r->c.n) {
            r->wall = pst_malloc(sizeof *r->wall * (size_t)r->c.n);
            double sum = 0.0;
            for (int k = 0; k < r->c.n; k++)
                r->wall[k] = sum += r->c.v[WK_CURVE_SECONDS][k];
        }
        timed &= r->wall != NULL; /* wall time only when every epoch says how long it took */
    }
    if (rc == PST_OK)
        rc = one_kind(runs, n, err, errlen);
    if (rc == PST_OK) {
        char fallback[64], clean[1024];
        snprintf(fallback, sizeof fallback, "%d runs", n);
        const char *t = title && *title ? title : (n == 1 ? metrics[0] : fallback);
        rc = render(runs, n, wk_text_utf8(t, clean, sizeof clean), timed, svg, out, err, errlen);
    }
    for (int i = 0; i < n; i++) {
        wk_curves_deinit(&runs[i].c);
        free(runs[i].wall);
    }
    free(runs);
    return rc;
}
