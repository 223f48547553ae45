/* lab_plot.c: the scaling lab's picture (tests/scale/run-lab): efficiency against hosts, one
 * panel per link rate, one line per setting (wire format and compression; other modes than
 * sync are their own settings, usually a single point), the bound the link allows as a dashed
 * line in the same colour. Not a pstrain command: a benchmark's helper, drawn with cairo.
 *
 *   lab_plot LAB.TSV OUT.png
 *
 * LAB.TSV (run-lab writes it through lab.py): a header line, then
 *   LINK \t SETTING \t HOSTS \t EFFICIENCY \t BOUND
 * with "nan" for a figure that is missing. x is log2(hosts); y runs from 0 to at least 1.
 * Exit 0, or 1 with one line on stderr (the file and line, what was expected). */
#include "worker/report/chart.h"
#include "worker/report/panel.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LP_ROWS 1024
#define LP_NAMES 12 /* links, and settings */
#define LP_NAME 64
#define LP_PANEL_W 420
#define LP_PANEL_H 380
#define LP_BAND 40
#define LP_LEGEND_ROW 20
#define LP_LEGEND_W 260 /* one setting's entry */

typedef struct lp_row {
    int link, setting;
    double hosts, eff, bound;
} lp_row;

typedef struct lp_data {
    char links[LP_NAMES][LP_NAME];
    char settings[LP_NAMES][LP_NAME];
    int nlinks, nsettings, nrows;
    lp_row rows[LP_ROWS];
} lp_data;

/* The index of name in names (adding it when new), or -1 when the table is full or the name
 * longer than LP_NAME - 1 bytes. */
static int name_index(char names[][LP_NAME], int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    const size_t len = strlen(name);
    if (*n == LP_NAMES || len >= LP_NAME)
        return -1;
    memcpy(names[*n], name, len + 1);
    return (*n)++;
}

static double parse_num(const char *s, int *ok) {
    char *end;
    double v = strtod(s, &end);
    *ok = end != s && (*end == '\0' || *end == '\n');
    return v;
}

/* Reads path into d. Returns 0, or -1 with one line in err. */
static int read_tsv(const char *path, lp_data *d, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    char line[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1)
            continue; /* the header */
        char *fields[5];
        int nf = 0;
        line[strcspn(line, "\n")] = '\0';
        for (char *p = line; nf < 5; p++) { /* split at tabs, in place */
            fields[nf++] = p;
            if ((p = strchr(p, '\t')) == NULL)
                break;
            *p = '\0';
        }
        int ok1, ok2, ok3;
        lp_row r = {0};
        if (nf == 5) {
            r.hosts = parse_num(fields[2], &ok1);
            r.eff = parse_num(fields[3], &ok2);
            r.bound = parse_num(fields[4], &ok3);
        }
        if (nf != 5 || !ok1 || !ok2 || !ok3 || !(r.hosts >= 1)) {
            snprintf(err, errlen,
                     "%s:%d: expected LINK, SETTING, HOSTS >= 1, EFFICIENCY, BOUND "
                     "separated by tabs",
                     path, lineno);
            rc = -1;
            break;
        }
        r.link = name_index(d->links, &d->nlinks, fields[0]);
        r.setting = name_index(d->settings, &d->nsettings, fields[1]);
        if (r.link < 0 || r.setting < 0 || d->nrows == LP_ROWS) {
            snprintf(err, errlen,
                     "%s:%d: more than %d links, %d settings or %d rows, or a name over %d "
                     "bytes",
                     path, lineno, LP_NAMES, LP_NAMES, LP_ROWS, LP_NAME - 1);
            rc = -1;
            break;
        }
        d->rows[d->nrows++] = r;
    }
    fclose(f);
    if (rc == 0 && d->nrows == 0) {
        snprintf(err, errlen, "%s: no rows", path);
        rc = -1;
    }
    return rc;
}

static int by_hosts(const void *a, const void *b) {
    const lp_row *x = a, *y = b;
    return (x->hosts > y->hosts) - (x->hosts < y->hosts);
}

/* One panel: link l's rows, in the rectangle (px, py, w, h). */
static void draw_panel(cairo_t *cr, const lp_data *d, int l, int px, int py, int w, int h,
                       double xmax, double ymax) {
    const int left = 48, right = 16, top = 30, bottom = 40;
    const double fx = px + left, fy = py + top, fw = w - left - right, fh = h - top - bottom;
    char buf[96];
    snprintf(buf, sizeof buf, "link %s", d->links[l]);
    wk_text_font(cr, 15.0, 1);
    wk_text_draw(cr, px + left, py + 20, buf, 0x222222);

    wk_ticks yt;
    wk_ticks_make(0.0, ymax, 5, 0, &yt);
    const double lx = 0.0, hx = log2(xmax) > 0 ? log2(xmax) : 1.0;
#define XP(v) (fx + 8 + (log2(v) - lx) / (hx - lx) * (fw - 16))
#define YP(v) (fy + fh - 4 - (v) / yt.hi * (fh - 8))
    cairo_set_line_width(cr, 1.0);
    wk_text_font(cr, 12.0, 0);
    for (int i = 0; i < yt.n; i++) {
        const double y = floor(YP(yt.v[i])) + 0.5;
        wk_colour(cr, 0xe4e4e4);
        cairo_move_to(cr, fx, y);
        cairo_line_to(cr, fx + fw, y);
        cairo_stroke(cr);
        wk_ticks_label(&yt, i, buf, sizeof buf);
        wk_text_draw(cr, fx - 6 - wk_text_width(cr, buf), y + 4, buf, 0x222222);
    }
    for (double n = 1; n <= xmax; n *= 2) {
        const double x = floor(XP(n)) + 0.5;
        wk_colour(cr, 0xe4e4e4);
        cairo_move_to(cr, x, fy);
        cairo_line_to(cr, x, fy + fh);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%g", n);
        wk_text_draw(cr, x - wk_text_width(cr, buf) / 2, fy + fh + 16, buf, 0x222222);
    }
    wk_text_draw(cr, fx + fw / 2 - 20, fy + fh + 34, "hosts", 0x222222);
    wk_colour(cr, 0x444444);
    cairo_rectangle(cr, floor(fx) + 0.5, floor(fy) + 0.5, floor(fw), floor(fh));
    cairo_stroke(cr);

    lp_row pts[LP_ROWS];
    for (int s = 0; s < d->nsettings; s++) {
        int n = 0;
        for (int i = 0; i < d->nrows; i++)
            if (d->rows[i].link == l && d->rows[i].setting == s)
                pts[n++] = d->rows[i];
        if (n == 0)
            continue;
        qsort(pts, (size_t)n, sizeof pts[0], by_hosts);
        for (int pass = 0; pass < 2; pass++) { /* the bound dashed, then the figures */
            const double dash[] = {5.0, 4.0};
            cairo_set_dash(cr, dash, pass == 0 ? 2 : 0, 0.0);
            cairo_set_line_width(cr, pass == 0 ? 1.2 : 2.0);
            wk_colour(cr, wk_chart_colour(s));
            int pen = 0;
            for (int i = 0; i < n; i++) {
                const double v = pass == 0 ? pts[i].bound : pts[i].eff;
                if (!isfinite(v)) {
                    pen = 0;
                    continue;
                }
                if (pen)
                    cairo_line_to(cr, XP(pts[i].hosts), YP(v));
                else
                    cairo_move_to(cr, XP(pts[i].hosts), YP(v));
                pen = 1;
            }
            cairo_stroke(cr);
            cairo_set_dash(cr, dash, 0, 0.0);
            if (pass == 1)
                for (int i = 0; i < n; i++)
                    if (isfinite(pts[i].eff)) {
                        cairo_arc(cr, XP(pts[i].hosts), YP(pts[i].eff), 3.0, 0, 6.283185307179586);
                        cairo_fill(cr);
                    }
        }
    }
#undef XP
#undef YP
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: lab_plot LAB.TSV OUT.png\n");
        return 2;
    }
    static lp_data d;
    char err[256];
    if (read_tsv(argv[1], &d, err, sizeof err) != 0) {
        fprintf(stderr, "lab_plot: %s\n", err);
        return 1;
    }
    double xmax = 1, ymax = 1.0;
    for (int i = 0; i < d.nrows; i++) {
        while (xmax < d.rows[i].hosts)
            xmax *= 2;
        if (isfinite(d.rows[i].eff) && d.rows[i].eff > ymax)
            ymax = d.rows[i].eff;
    }
    const int width = LP_PANEL_W * (d.nlinks > 2 ? d.nlinks : 2); /* room for the title */
    const int per_row = width / LP_LEGEND_W;
    const int legend_rows = (d.nsettings + per_row - 1) / per_row + 1;
    const int height = LP_BAND + legend_rows * LP_LEGEND_ROW + LP_PANEL_H;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t *cr = cairo_create(surf);
    wk_colour(cr, 0xffffff);
    cairo_paint(cr);
    wk_text_font(cr, 17.0, 1);
    wk_text_draw(cr, 12, 26,
                 "pstrain scaling lab: efficiency against hosts (dashed: the link's bound)",
                 0x222222);
    wk_text_font(cr, 12.0, 0);
    for (int s = 0; s < d.nsettings; s++) {
        const double x = 12 + (s % per_row) * LP_LEGEND_W;
        const double y = LP_BAND + (s / per_row) * LP_LEGEND_ROW + 8;
        wk_colour(cr, wk_chart_colour(s));
        cairo_set_line_width(cr, 2.0);
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x + 24, y);
        cairo_stroke(cr);
        wk_text_draw(cr, x + 30, y + 4, d.settings[s], 0x222222);
    }
    for (int l = 0; l < d.nlinks; l++)
        draw_panel(cr, &d, l, l * LP_PANEL_W, LP_BAND + legend_rows * LP_LEGEND_ROW, LP_PANEL_W,
                   LP_PANEL_H, xmax, ymax * 1.05);
    cairo_destroy(cr);
    const cairo_status_t st = cairo_surface_write_to_png(surf, argv[2]);
    cairo_surface_destroy(surf);
    wk_chart_release();
    if (st != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "lab_plot: %s: %s\n", argv[2], cairo_status_to_string(st));
        return 1;
    }
    return 0;
}
