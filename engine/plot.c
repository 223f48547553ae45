/* plot.c: a tiny chart drawer: an RGB canvas, Bresenham lines, a bitmap font of our own,
 * panels with nice ticks, and the PNG through libpng's simplified API (as image.c). */
#include "engine/plot.h"

#include "engine/base/base.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_canvas {
    int w, h;
    uint8_t *rgb; /* (h, w, 3) */
};

eng_canvas *eng_canvas_new(int width, int height, uint32_t background) {
    if (width < 1 || height < 1 || width > 16384 || height > 16384)
        return NULL;
    eng_canvas *c = malloc(sizeof *c);
    uint8_t *rgb = malloc((size_t)width * (size_t)height * 3);
    if (!c || !rgb) {
        free(c);
        free(rgb);
        return NULL;
    }
    c->w = width;
    c->h = height;
    c->rgb = rgb;
    eng_canvas_fill(c, 0, 0, width, height, background);
    return c;
}

void eng_canvas_free(eng_canvas **c) {
    if (!c || !*c)
        return;
    free((*c)->rgb);
    free(*c);
    *c = NULL;
}

int eng_canvas_width(const eng_canvas *c) { return c->w; }
int eng_canvas_height(const eng_canvas *c) { return c->h; }

uint32_t eng_canvas_pixel(const eng_canvas *c, int x, int y) {
    PST_ASSERT(x >= 0 && x < c->w && y >= 0 && y < c->h, "pixel (%d, %d) of a %dx%d canvas", x, y,
               c->w, c->h);
    const uint8_t *p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    return ENG_RGB((uint32_t)p[0], (uint32_t)p[1], (uint32_t)p[2]);
}

void eng_canvas_fill(eng_canvas *c, int x, int y, int w, int h, uint32_t colour) {
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > c->w ? c->w : x + w, y1 = y + h > c->h ? c->h : y + h;
    const uint8_t r = (uint8_t)(colour >> 16), g = (uint8_t)(colour >> 8), b = (uint8_t)colour;
    for (int j = y0; j < y1; j++) {
        uint8_t *p = c->rgb + ((size_t)j * (size_t)c->w + (size_t)x0) * 3;
        for (int i = x0; i < x1; i++, p += 3) {
            p[0] = r;
            p[1] = g;
            p[2] = b;
        }
    }
}

void eng_canvas_frame(eng_canvas *c, int x, int y, int w, int h, uint32_t colour) {
    eng_canvas_fill(c, x, y, w, 1, colour);
    eng_canvas_fill(c, x, y + h - 1, w, 1, colour);
    eng_canvas_fill(c, x, y, 1, h, colour);
    eng_canvas_fill(c, x + w - 1, y, 1, h, colour);
}

void eng_canvas_line(eng_canvas *c, int x0, int y0, int x1, int y1, int thickness,
                     uint32_t colour) {
    const int t = thickness < 1 ? 1 : thickness, off = (t - 1) / 2;
    const int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) { /* Bresenham; each point stamps a t x t square */
        eng_canvas_fill(c, x0 - off, y0 - off, t, t, colour);
        if (x0 == x1 && y0 == y1)
            break;
        const int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

/* --- the font: each glyph as rows of '#', top to bottom; rows left out are empty. Rows
 * 0..6 stand on the baseline, 7 and 8 hang below it. --- */

typedef struct glyph {
    char ch;
    const char *rows[ENG_FONT_ROWS];
} glyph;

static const glyph font[] = {
    {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
    {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {'3', {".###.", "#...#", "....#", "..##.", "....#", "#...#", ".###."}},
    {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
    {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
    {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
    {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
    {'D', {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."}},
    {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
    {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
    {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
    {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
    {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
    {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
    {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
    {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
    {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
    {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
    {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
    {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
    {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
    {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
    {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
    {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
    {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
    {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
    {'b', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."}},
    {'c', {".....", ".....", ".###.", "#....", "#....", "#...#", ".###."}},
    {'d', {"....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"}},
    {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
    {'f', {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."}},
    {'g', {".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", ".###."}},
    {'h', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
    {'i', {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}},
    {'j', {"...#.", ".....", "..##.", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
    {'k', {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."}},
    {'l', {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'m', {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"}},
    {'n', {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
    {'o', {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}},
    {'p', {".....", ".....", "####.", "#...#", "#...#", "#...#", "####.", "#....", "#...."}},
    {'q', {".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", "....#"}},
    {'r', {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}},
    {'s', {".....", ".....", ".###.", "#....", ".###.", "....#", "####."}},
    {'t', {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."}},
    {'u', {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}},
    {'v', {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'w', {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."}},
    {'x', {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}},
    {'y', {".....", ".....", "#...#", "#...#", "#...#", "#...#", ".####", "....#", ".###."}},
    {'z', {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"}},
    {' ', {"....."}},
    {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
    {',', {".....", ".....", ".....", ".....", ".....", ".##..", ".##..", "..#..", ".#..."}},
    {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
    {';', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "..#..", ".#..."}},
    {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
    {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
    {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
    {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
    {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
    {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
    {'[', {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."}},
    {']', {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."}},
    {'_', {".....", ".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
    {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
    {'\'', {"..#..", "..#..", ".#..."}},
    {'"', {".#.#.", ".#.#.", "#.#.."}},
    {'#', {".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."}},
    {'*', {".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."}},
    {'<', {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}},
    {'>', {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}},
    {'!', {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."}},
    {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
};

static const glyph *glyph_of(char ch) {
    const glyph *unknown = NULL;
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++) {
        if (font[i].ch == ch)
            return &font[i];
        if (font[i].ch == '?')
            unknown = &font[i];
    }
    return unknown;
}

int eng_text_width(const char *s, int scale) {
    const int n = (int)strlen(s);
    return n ? (n * ENG_FONT_ADVANCE - 1) * scale : 0;
}

int eng_text_height(int scale) { return ENG_FONT_ROWS * scale; }

void eng_canvas_text(eng_canvas *c, int x, int y, const char *s, int scale, uint32_t colour) {
    for (; *s; s++, x += ENG_FONT_ADVANCE * scale) {
        const glyph *g = glyph_of(*s);
        for (int r = 0; r < ENG_FONT_ROWS && g->rows[r]; r++)
            for (int k = 0; k < 5 && g->rows[r][k]; k++)
                if (g->rows[r][k] == '#')
                    eng_canvas_fill(c, x + k * scale, y + r * scale, scale, scale, colour);
    }
}

int eng_canvas_write_png(const eng_canvas *c, const char *path, char *err, size_t errlen) {
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    png.width = (png_uint_32)c->w;
    png.height = (png_uint_32)c->h;
    png.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&png, path, 0, c->rgb, 0, NULL))
        return pst_err(err, errlen, PST_EIO, "%s: cannot write the PNG: %s", path, png.message);
    return PST_OK;
}

/* --- axes --- */

void eng_plot_ticks(double lo, double hi, int target, int integer, eng_ticks *t) {
    PST_ASSERT(target >= 1 && target < ENG_TICKS_MAX, "target %d intervals, allowed [1, %d]",
               target, ENG_TICKS_MAX - 1);
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
    PST_ASSERT(t->n >= 0 && t->n <= ENG_TICKS_MAX, "%d ticks for [%g, %g] step %g", t->n, lo, hi,
               step);
    for (int i = 0; i < t->n; i++) {
        const double v = (first + i) * step;
        t->v[i] = fabs(v) < step * 1e-6 ? 0.0 : v; /* no "-0.0" */
    }
    t->decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
}

void eng_ticks_label(const eng_ticks *t, int i, char *buf, size_t len) {
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

#define TEXT_SCALE 2
#define PAD 8          /* pixels around a panel's contents */
#define INSET 8        /* the axes' ends inside the frame */
#define TICK 4         /* tick marks' length, outside the frame */
#define SWATCH 24      /* a legend entry's line */
#define INK 0x222222u  /* text */
#define AXIS 0x444444u /* frame and ticks */
#define GRID 0xe4e4e4u

void eng_plot_to_pixel(const eng_plot_axes *a, int right, double vx, double vy, int *px, int *py) {
    const eng_ticks *yt = right ? &a->yt2 : &a->yt;
    const double fx = (vx - a->xt.lo) / (a->xt.hi - a->xt.lo);
    const double fy = (vy - yt->lo) / (yt->hi - yt->lo);
    *px = a->x + a->inset + (int)lround(fx * (a->w - 1 - 2 * a->inset));
    *py = a->y + a->h - 1 - a->inset - (int)lround(fy * (a->h - 1 - 2 * a->inset));
}

static int has_points(const eng_series *s) {
    for (int i = 0; i < s->n; i++)
        if (isfinite(s->x[i]) && isfinite(s->y[i]))
            return 1;
    return 0;
}

/* The widest tick label of t, in pixels. */
static int labels_width(const eng_ticks *t) {
    int w = 0;
    for (int i = 0; i < t->n; i++) {
        char buf[32];
        eng_ticks_label(t, i, buf, sizeof buf);
        const int lw = eng_text_width(buf, TEXT_SCALE);
        w = lw > w ? lw : w;
    }
    return w;
}

static void legend_name(const eng_series *s, char *buf, size_t len) {
    snprintf(buf, len, "%s%s", s->name, s->right ? " (right)" : "");
}

/* Draws (or only measures, when c is NULL) the legend from (x, y) within width w, wrapping
 * entries to new rows; returns the rows' total height. */
static int legend(eng_canvas *c, int x, int y, int w, const eng_panel *p) {
    const int row = eng_text_height(TEXT_SCALE) + 4, gap = 20;
    int cx = x, cy = y, any = 0;
    for (int i = 0; i < p->nseries; i++) {
        const eng_series *s = &p->series[i];
        if (!has_points(s))
            continue;
        char name[128];
        legend_name(s, name, sizeof name);
        const int ew = SWATCH + 6 + eng_text_width(name, TEXT_SCALE);
        if (any && cx + ew > x + w) {
            cx = x;
            cy += row;
        }
        any = 1;
        if (c) {
            const int mid = cy + ENG_FONT_CAP * TEXT_SCALE / 2;
            eng_canvas_line(c, cx, mid, cx + SWATCH - 1, mid, 2, s->colour);
            eng_canvas_fill(c, cx + SWATCH / 2 - 3, mid - 3, 7, 7, s->colour);
            eng_canvas_text(c, cx + SWATCH + 6, cy, name, TEXT_SCALE, INK);
        }
        cx += ew + gap;
    }
    return any ? cy + row - y : 0;
}

/* The range of the finite values of the series on one side (x: side -1 for all). */
static int data_range(const eng_panel *p, int side, int want_x, double *lo, double *hi) {
    int any = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < p->nseries; i++) {
        const eng_series *s = &p->series[i];
        if (side >= 0 && (s->right != 0) != side)
            continue;
        for (int k = 0; k < s->n; k++) {
            if (!isfinite(s->x[k]) || !isfinite(s->y[k]))
                continue;
            const double v = want_x ? s->x[k] : s->y[k];
            *lo = fmin(*lo, v);
            *hi = fmax(*hi, v);
            any = 1;
        }
    }
    return any;
}

void eng_plot_panel(eng_canvas *c, int x, int y, int w, int h, const eng_panel *p,
                    eng_plot_axes *axes) {
    eng_plot_axes a;
    memset(&a, 0, sizeof a);
    a.inset = INSET;
    const int th = eng_text_height(TEXT_SCALE);

    double xlo, xhi, ylo, yhi, rlo, rhi;
    const int any = data_range(p, -1, 1, &xlo, &xhi);
    data_range(p, 0, 0, &ylo, &yhi);
    const int right = data_range(p, 1, 0, &rlo, &rhi);

    /* The frame's height first (it sets how many y ticks fit), then its sides (they hang on
     * the labels' widths). */
    const int title_h = p->title ? th + 6 : 0;
    const int top_guess = y + PAD + title_h;
    const int bottom = y + h - PAD - th - TICK - 4; /* x labels below the frame */
    const int legend_h = legend(NULL, x + PAD, top_guess, w - 2 * PAD, p);
    a.y = top_guess + legend_h + 6;
    a.h = bottom - a.y;
    const int ytarget = a.h / 60 < 2 ? 2 : (a.h / 60 > 10 ? 10 : a.h / 60);
    eng_plot_ticks(any ? ylo : 0.0, any ? yhi : 1.0, ytarget, 0, &a.yt);
    if (right)
        eng_plot_ticks(rlo, rhi, ytarget, 0, &a.yt2);
    const int left_w = labels_width(&a.yt), right_w = right ? labels_width(&a.yt2) : 0;
    a.x = x + PAD + left_w + TICK + 4;
    const int xr =
        x + w - PAD - (right ? right_w + TICK + 4 : 3 * ENG_FONT_ADVANCE * TEXT_SCALE / 2);
    a.w = xr - a.x;
    const int xtarget = a.w / 90 < 2 ? 2 : (a.w / 90 > 12 ? 12 : a.w / 90);
    eng_plot_ticks(any ? xlo : 0.0, any ? xhi : 1.0, xtarget, p->x_integer, &a.xt);

    if (p->title)
        eng_canvas_text(c, x + PAD, y + PAD, p->title, TEXT_SCALE, INK);
    legend(c, x + PAD, top_guess, w - 2 * PAD, p);

    /* Grid, frame, ticks and labels. */
    char buf[32];
    for (int i = 0; i < a.yt.n; i++) {
        int px, py;
        eng_plot_to_pixel(&a, 0, a.xt.lo, a.yt.v[i], &px, &py);
        eng_canvas_fill(c, a.x + 1, py, a.w - 2, 1, GRID);
        eng_canvas_fill(c, a.x - TICK, py, TICK, 1, AXIS);
        eng_ticks_label(&a.yt, i, buf, sizeof buf);
        eng_canvas_text(c, a.x - TICK - 4 - eng_text_width(buf, TEXT_SCALE),
                        py - ENG_FONT_CAP * TEXT_SCALE / 2, buf, TEXT_SCALE, INK);
    }
    for (int i = 0; right && i < a.yt2.n; i++) {
        int px, py;
        eng_plot_to_pixel(&a, 1, a.xt.lo, a.yt2.v[i], &px, &py);
        eng_canvas_fill(c, a.x + a.w, py, TICK, 1, AXIS);
        eng_ticks_label(&a.yt2, i, buf, sizeof buf);
        eng_canvas_text(c, a.x + a.w + TICK + 4, py - ENG_FONT_CAP * TEXT_SCALE / 2, buf,
                        TEXT_SCALE, INK);
    }
    for (int i = 0; i < a.xt.n; i++) {
        int px, py;
        eng_plot_to_pixel(&a, 0, a.xt.v[i], a.yt.lo, &px, &py);
        eng_canvas_fill(c, px, a.y + 1, 1, a.h - 2, GRID);
        eng_canvas_fill(c, px, a.y + a.h, 1, TICK, AXIS);
        eng_ticks_label(&a.xt, i, buf, sizeof buf);
        eng_canvas_text(c, px - eng_text_width(buf, TEXT_SCALE) / 2, a.y + a.h + TICK + 4, buf,
                        TEXT_SCALE, INK);
    }
    eng_canvas_frame(c, a.x, a.y, a.w, a.h, AXIS);

    if (!any) {
        const char *none = "no data";
        eng_canvas_text(c, a.x + (a.w - eng_text_width(none, TEXT_SCALE)) / 2, a.y + (a.h - th) / 2,
                        none, TEXT_SCALE, INK);
    }
    /* The series: lines, then markers on top (fewer and smaller when points crowd). */
    for (int i = 0; i < p->nseries; i++) {
        const eng_series *s = &p->series[i];
        const int marker = s->n > 200 ? 0 : (s->n > 40 ? 1 : 2);
        int have = 0, lx = 0, ly = 0;
        for (int k = 0; k < s->n; k++) {
            if (!isfinite(s->x[k]) || !isfinite(s->y[k])) {
                have = 0;
                continue;
            }
            int px, py;
            eng_plot_to_pixel(&a, s->right, s->x[k], s->y[k], &px, &py);
            if (have)
                eng_canvas_line(c, lx, ly, px, py, 2, s->colour);
            lx = px;
            ly = py;
            have = 1;
        }
        for (int k = 0; marker && k < s->n; k++)
            if (isfinite(s->x[k]) && isfinite(s->y[k])) {
                int px, py;
                eng_plot_to_pixel(&a, s->right, s->x[k], s->y[k], &px, &py);
                eng_canvas_fill(c, px - marker - 1, py - marker - 1, 2 * marker + 3, 2 * marker + 3,
                                s->colour);
            }
    }
    if (axes)
        *axes = a;
}
