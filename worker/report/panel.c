/* panel.c: a panel's layout (the frame's height first, which sets how many y ticks fit, then
 * its sides, which hang on the labels' widths) and its drawing with cairo. One-pixel lines
 * lie on pixel centres (n + 0.5) so that they stay crisp in a PNG. */
#include "worker/report/panel.h"

#include "engine/base/base.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

cairo_status_t wk_bytes_append(void *closure, const unsigned char *data, unsigned int len) {
    wk_bytes *b = closure;
    if (b->len + len > b->cap) {
        b->cap = 2 * (b->len + len);
        b->data = pst_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return CAIRO_STATUS_SUCCESS;
}

#define PAD 10          /* pixels around a panel's contents */
#define INSET 8         /* the axes' ends lie this far inside the frame, so end points show */
#define TICK 4          /* tick marks' length, outside the frame */
#define SWATCH 28       /* a legend entry's line */
#define TITLE_SIZE 15.0 /* pixels */
#define LABEL_SIZE 12.0
#define LEGEND_ROW 20
#define INK 0x222222u  /* text */
#define AXIS 0x444444u /* frame and ticks */
#define GRID 0xe4e4e4u
#define TURN 6.283185307179586 /* a full circle, in radians */

/* --- text --- */

void wk_colour(cairo_t *cr, uint32_t rgb) {
    cairo_set_source_rgb(cr, (double)(rgb >> 16 & 0xff) / 255.0, (double)(rgb >> 8 & 0xff) / 255.0,
                         (double)(rgb & 0xff) / 255.0);
}

void wk_text_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double wk_text_width(cairo_t *cr, const char *s) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

void wk_text_draw(cairo_t *cr, double x, double baseline, const char *s, uint32_t colour) {
    wk_colour(cr, colour);
    cairo_move_to(cr, x, baseline);
    cairo_show_text(cr, s);
}

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0 (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF). */
static int utf8_seq(const unsigned char *s) {
    if (s[0] < 0x80)
        return 1;
    int n;
    unsigned lo = 0x80, hi = 0xbf;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

char *wk_text_utf8(const char *s, char *buf, size_t len) {
    PST_ASSERT(len >= 4, "a buffer of %zu bytes", len);
    static const char replacement[] = "\xef\xbf\xbd";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        const int n = utf8_seq(p);
        const char *from = n ? (const char *)p : replacement;
        const size_t k = n ? (size_t)n : 3;
        if (o + k >= len)
            break;
        memcpy(buf + o, from, k);
        o += k;
        p += n ? n : 1;
    }
    buf[o] = '\0';
    return buf;
}

char *wk_text_fit(cairo_t *cr, const char *s, double room, char *buf, size_t len) {
    snprintf(buf, len, "%s", s);
    const char *tail = s;
    while (*tail && wk_text_width(cr, buf) > room) {
        tail++;
        while ((*tail & 0xc0) == 0x80) /* a character's continuation bytes */
            tail++;
        snprintf(buf, len, "\xe2\x80\xa6%s", tail); /* "…" */
    }
    return buf;
}

/* --- axes --- */

void wk_ticks_make(double lo, double hi, int target, int integer, wk_ticks *t) {
    PST_ASSERT(target >= 1 && target < WK_TICKS_MAX, "target %d intervals, allowed [1, %d]", target,
               WK_TICKS_MAX - 1);
    if (!isfinite(lo) || !isfinite(hi) || !isfinite(hi - lo)) {
        lo = 0.0;
        hi = 1.0;
    }
    if (lo > hi) {
        const double s = lo;
        lo = hi;
        hi = s;
    }
    if (hi - lo <= 1e-9 * fmax(fabs(lo), fabs(hi))) { /* one value: a range around it */
        const double pad = integer ? 1.0 : (lo != 0.0 ? fabs(lo) * 0.1 : 1.0);
        lo -= pad;
        hi += pad;
    }
    /* From a tenth of the raw step upwards, the first 1, 2 or 5 x 10^k whose multiples in
     * [lo, hi] number at most target + 1. */
    const double base = pow(10.0, floor(log10((hi - lo) / target)) - 1.0);
    static const double mult[] = {1.0, 2.0, 5.0};
    double step = 0.0, first = 0.0, last = 0.0;
    for (int k = 0; k < 60; k++) {
        step = mult[k % 3] * base * pow(10.0, k / 3);
        if (integer && step < 1.0)
            continue;
        first = ceil(lo / step - 1e-9);
        last = floor(hi / step + 1e-9);
        if (last - first + 1 <= target + 1)
            break;
    }
    t->lo = lo;
    t->hi = hi;
    t->step = step;
    t->n = (int)(last - first) + 1;
    PST_ASSERT(t->n >= 0 && t->n <= WK_TICKS_MAX, "%d ticks for [%g, %g] step %g", t->n, lo, hi,
               step);
    for (int i = 0; i < t->n; i++) {
        const double v = (first + i) * step;
        t->v[i] = fabs(v) < step * 1e-6 ? 0.0 : v; /* no "-0.0" */
    }
    t->decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
}

void wk_ticks_label(const wk_ticks *t, int i, char *buf, size_t len) {
    const double v = t->v[i];
    double big = 0.0; /* one style for all of an axis's labels */
    for (int k = 0; k < t->n; k++)
        big = fmax(big, fabs(t->v[k]));
    if (big >= 1e6 || t->decimals > 6)
        snprintf(buf, len, "%.3g", v);
    else
        snprintf(buf, len, "%.*f", t->decimals, v);
}

/* --- panels --- */

void wk_panel_to_pixel(const wk_panel_axes *a, int right, double vx, double vy, double *px,
                       double *py) {
    const wk_ticks *yt = right ? &a->yt_right : &a->yt;
    const double fx = (vx - a->xt.lo) / (a->xt.hi - a->xt.lo);
    const double fy = (vy - yt->lo) / (yt->hi - yt->lo);
    *px = a->x + INSET + fx * (a->w - 2 * INSET);
    *py = a->y + a->h - INSET - fy * (a->h - 2 * INSET);
}

/* Curve k of run r: its y values. */
static const double *curve_y(const wk_panel *p, int r, int k) {
    return p->runs[r].c->v[p->curves[k].key];
}

/* Curve k has a point in some run. */
static int has_points(const wk_panel *p, int k) {
    for (int r = 0; r < p->nruns; r++)
        for (int i = 0; i < p->runs[r].c->n; i++)
            if (isfinite(p->runs[r].x[i]) && isfinite(curve_y(p, r, k)[i]))
                return 1;
    return 0;
}

/* The range of the finite points of the curves on one side (side -1: all) in x or y. */
static int data_range(const wk_panel *p, int side, int want_x, double *lo, double *hi) {
    int any = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int k = 0; k < p->ncurves; k++) {
        if (side >= 0 && (p->curves[k].right != 0) != side)
            continue;
        for (int r = 0; r < p->nruns; r++) {
            const double *x = p->runs[r].x, *y = curve_y(p, r, k);
            for (int i = 0; i < p->runs[r].c->n; i++) {
                if (!isfinite(x[i]) || !isfinite(y[i]))
                    continue;
                const double v = want_x ? x[i] : y[i];
                *lo = fmin(*lo, v);
                *hi = fmax(*hi, v);
                any = 1;
            }
        }
    }
    return any;
}

/* Curve k's dashes when the runs are told apart by colour: solid, dashed, dotted, dash-dot. */
static void set_dash(cairo_t *cr, const wk_panel *p, int k) {
    static const double dashes[WK_PANEL_CURVES][4] = {
        {0}, {7, 4, 0, 0}, {2, 3, 0, 0}, {8, 3, 2, 3}};
    static const int ndash[WK_PANEL_CURVES] = {0, 2, 2, 4};
    cairo_set_dash(cr, dashes[k], p->nruns > 1 ? ndash[k] : 0, 0);
}

/* The widest tick label of t, in pixels (the label font set). */
static double labels_width(cairo_t *cr, const wk_ticks *t) {
    double w = 0;
    for (int i = 0; i < t->n; i++) {
        char buf[32];
        wk_ticks_label(t, i, buf, sizeof buf);
        w = fmax(w, wk_text_width(cr, buf));
    }
    return w;
}

/* Draws (or only measures, draw 0) the legend from (x, top) within width w, wrapping entries
 * to new rows; returns the rows' total height. */
static int legend(cairo_t *cr, int x, int top, int w, const wk_panel *p, int draw) {
    wk_text_font(cr, LABEL_SIZE, 0);
    double cx = x;
    int cy = top, any = 0;
    for (int k = 0; k < p->ncurves; k++) {
        if (!has_points(p, k))
            continue;
        char name[96];
        snprintf(name, sizeof name, "%s%s", wk_curve_name(p->curves[k].key),
                 p->curves[k].right ? " (right)" : "");
        const double ew = SWATCH + 6 + wk_text_width(cr, name);
        if (any && cx + ew > x + w) {
            cx = x;
            cy += LEGEND_ROW;
        }
        any = 1;
        if (draw) {
            const uint32_t colour = p->nruns > 1 ? INK : p->curves[k].colour;
            const double mid = cy + LEGEND_ROW / 2;
            wk_colour(cr, colour);
            set_dash(cr, p, k);
            cairo_move_to(cr, cx, mid);
            cairo_line_to(cr, cx + SWATCH, mid);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            if (p->nruns == 1) {
                cairo_arc(cr, cx + SWATCH / 2, mid, 3.5, 0, TURN);
                cairo_fill(cr);
            }
            wk_text_draw(cr, cx + SWATCH + 6, mid + LABEL_SIZE * 0.36, name, INK);
        }
        cx += ew + 20;
    }
    return any ? cy + LEGEND_ROW - top : 0;
}

/* Grid lines, the frame, ticks and their labels. */
static void draw_axes(cairo_t *cr, const wk_panel_axes *a, int right) {
    char buf[32];
    const double lift = LABEL_SIZE * 0.36; /* from a label's middle to its baseline */
    cairo_set_line_width(cr, 1.0);
    wk_text_font(cr, LABEL_SIZE, 0);
    for (int i = 0; i < a->yt.n; i++) {
        double px, py;
        wk_panel_to_pixel(a, 0, a->xt.lo, a->yt.v[i], &px, &py);
        const double ly = floor(py) + 0.5;
        wk_colour(cr, GRID);
        cairo_move_to(cr, a->x + 1, ly);
        cairo_line_to(cr, a->x + a->w - 1, ly);
        cairo_stroke(cr);
        wk_colour(cr, AXIS);
        cairo_move_to(cr, a->x - TICK, ly);
        cairo_line_to(cr, a->x, ly);
        cairo_stroke(cr);
        wk_ticks_label(&a->yt, i, buf, sizeof buf);
        wk_text_draw(cr, a->x - TICK - 4 - wk_text_width(cr, buf), ly + lift, buf, INK);
    }
    for (int i = 0; right && i < a->yt_right.n; i++) {
        double px, py;
        wk_panel_to_pixel(a, 1, a->xt.lo, a->yt_right.v[i], &px, &py);
        const double ly = floor(py) + 0.5;
        wk_colour(cr, AXIS);
        cairo_move_to(cr, a->x + a->w, ly);
        cairo_line_to(cr, a->x + a->w + TICK, ly);
        cairo_stroke(cr);
        wk_ticks_label(&a->yt_right, i, buf, sizeof buf);
        wk_text_draw(cr, a->x + a->w + TICK + 4, ly + lift, buf, INK);
    }
    for (int i = 0; i < a->xt.n; i++) {
        double px, py;
        wk_panel_to_pixel(a, 0, a->xt.v[i], a->yt.lo, &px, &py);
        const double lx = floor(px) + 0.5;
        wk_colour(cr, GRID);
        cairo_move_to(cr, lx, a->y + 1);
        cairo_line_to(cr, lx, a->y + a->h - 1);
        cairo_stroke(cr);
        wk_colour(cr, AXIS);
        cairo_move_to(cr, lx, a->y + a->h);
        cairo_line_to(cr, lx, a->y + a->h + TICK);
        cairo_stroke(cr);
        wk_ticks_label(&a->xt, i, buf, sizeof buf);
        wk_text_draw(cr, lx - wk_text_width(cr, buf) / 2, a->y + a->h + TICK + 4 + LABEL_SIZE, buf,
                     INK);
    }
    wk_colour(cr, AXIS);
    cairo_rectangle(cr, a->x + 0.5, a->y + 0.5, a->w - 1, a->h - 1);
    cairo_stroke(cr);
}

/* Curve k of run r: a line through its points (broken where one is missing), then markers
 * on top (smaller, then none, when points crowd). */
static void draw_curve(cairo_t *cr, const wk_panel_axes *a, const wk_panel *p, int r, int k) {
    const wk_panel_run *run = &p->runs[r];
    const double *y = curve_y(p, r, k);
    const int n = run->c->n, right = p->curves[k].right;
    wk_colour(cr, p->nruns > 1 ? run->colour : p->curves[k].colour);
    cairo_set_line_width(cr, 2.0);
    set_dash(cr, p, k);
    int have = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(run->x[i]) || !isfinite(y[i])) {
            have = 0;
            continue;
        }
        double px, py;
        wk_panel_to_pixel(a, right, run->x[i], y[i], &px, &py);
        if (have)
            cairo_line_to(cr, px, py);
        else
            cairo_move_to(cr, px, py);
        have = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    const double radius = n > 200 ? 0.0 : (n > 40 ? 2.0 : (p->nruns > 1 ? 2.5 : 3.5));
    for (int i = 0; radius > 0 && i < n; i++)
        if (isfinite(run->x[i]) && isfinite(y[i])) {
            double px, py;
            wk_panel_to_pixel(a, right, run->x[i], y[i], &px, &py);
            cairo_new_sub_path(cr);
            cairo_arc(cr, px, py, radius, 0, TURN);
        }
    cairo_fill(cr);
}

void wk_panel_draw(cairo_t *cr, int x, int y, int w, int h, const wk_panel *p,
                   wk_panel_axes *axes) {
    PST_ASSERT(p->ncurves >= 1 && p->ncurves <= WK_PANEL_CURVES && p->nruns >= 1,
               "%d curves of %d runs", p->ncurves, p->nruns);
    cairo_save(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    wk_panel_axes a;
    memset(&a, 0, sizeof a);
    double xlo, xhi, ylo, yhi, rlo, rhi;
    const int any = data_range(p, -1, 1, &xlo, &xhi);
    data_range(p, 0, 0, &ylo, &yhi);
    const int right = data_range(p, 1, 0, &rlo, &rhi);

    const int legend_top = y + PAD + (int)TITLE_SIZE + 6;
    a.y = legend_top + legend(cr, x + PAD, legend_top, w - 2 * PAD, p, 0) + 6;
    a.h = y + h - PAD - (int)LABEL_SIZE - TICK - 6 - a.y; /* x labels below the frame */
    const int ytarget = a.h / 60 < 2 ? 2 : (a.h / 60 > 10 ? 10 : a.h / 60);
    wk_ticks_make(any ? ylo : 0.0, any ? yhi : 1.0, ytarget, 0, &a.yt);
    if (right)
        wk_ticks_make(rlo, rhi, ytarget, 0, &a.yt_right);
    wk_text_font(cr, LABEL_SIZE, 0);
    const int left_w = (int)ceil(labels_width(cr, &a.yt));
    const int right_w = right ? (int)ceil(labels_width(cr, &a.yt_right)) : 0;
    a.x = x + PAD + left_w + TICK + 4;
    a.w = x + w - PAD - (right ? right_w + TICK + 4 : 2 * (int)LABEL_SIZE) - a.x;
    const int xtarget = a.w / 90 < 2 ? 2 : (a.w / 90 > 12 ? 12 : a.w / 90);
    wk_ticks_make(any ? xlo : 0.0, any ? xhi : 1.0, xtarget, p->x_integer, &a.xt);

    wk_text_font(cr, TITLE_SIZE, 1);
    wk_text_draw(cr, x + PAD, y + PAD + TITLE_SIZE * 0.8, p->title, INK);
    legend(cr, x + PAD, legend_top, w - 2 * PAD, p, 1);
    draw_axes(cr, &a, right);
    if (!any) {
        const char *none = "no data";
        wk_text_font(cr, TITLE_SIZE, 0);
        wk_text_draw(cr, a.x + (a.w - wk_text_width(cr, none)) / 2, a.y + a.h / 2, none, INK);
    }
    cairo_rectangle(cr, a.x + 1, a.y + 1, a.w - 2, a.h - 2);
    cairo_clip(cr);
    for (int r = 0; r < p->nruns; r++)
        for (int k = 0; k < p->ncurves; k++)
            draw_curve(cr, &a, p, r, k);
    cairo_restore(cr);
    if (axes)
        *axes = a;
}
