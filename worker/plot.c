/* plot.c: `pstrain plot`: reads a run's metrics (jansson, line by line) and lays out its
 * curves with engine/plot.h. */
#include "worker/plot.h"

#include "engine/base/base.h"
#include "engine/plot.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define BAND 40   /* the title band's height */
#define ROW_H 380 /* a row of panels: BAND + 2 * ROW_H = WK_PLOT_HEIGHT */
#define BLUE 0x1f77b4u
#define ORANGE 0xff7f0eu
#define GREEN 0x2ca02cu
#define RED 0xd62728u
#define LIGHT_GREEN 0x98df8au /* a GAN's live generator beside its moving average */
#define LIGHT_RED 0xff9896u

/* The keys of an epoch line we draw or lay out by. */
enum {
    K_EPOCH,
    K_SECONDS,
    K_LOSS,
    K_VAL_LOSS,
    K_ACC,
    K_VAL_ACC,
    K_D_LOSS,
    K_G_LOSS,
    K_D_ACC,
    K_IS,
    K_FID,
    K_LIVE_IS,
    K_LIVE_FID,
    NKEYS
};
static const char *const key_name[NKEYS] = {
    "epoch",       "seconds", "loss",       "val_loss",        "accuracy", "val_accuracy",
    "d_loss",      "g_loss",  "d_accuracy", "inception_score", "frechet",  "live_inception_score",
    "live_frechet"};

typedef struct run {
    int n, cap;
    double *v[NKEYS]; /* (n) per key, in file order; NAN where a line lacks the key */
    int seen[NKEYS];  /* epoch lines that have the key */
    double test[2];   /* "final": test_loss, test_accuracy; NAN when absent */
    double wall_s;    /* "final": wall_s; NAN when absent */
    int final;
} run;

static void run_deinit(run *r) {
    for (int k = 0; k < NKEYS; k++)
        free(r->v[k]);
    memset(r, 0, sizeof *r);
}

static int run_grow(run *r) {
    if (r->n < r->cap)
        return 0;
    const int cap = r->cap ? 2 * r->cap : 64;
    for (int k = 0; k < NKEYS; k++) {
        double *p = realloc(r->v[k], sizeof *p * (size_t)cap);
        if (!p)
            return -1;
        r->v[k] = p;
    }
    r->cap = cap;
    return 0;
}

static const char *json_kind(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "a number";
    }
}

/* *out <- obj[key] as a number; NAN when absent or null (a writer's "no value"). Returns 0, or
 * 2 with err naming the line when it is something else. */
static int number(const json_t *obj, const char *key, double *out, const char *path, long line,
                  char *err, size_t errlen) {
    const json_t *j = json_object_get(obj, key);
    *out = NAN;
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_number(j)) {
        snprintf(err, errlen, "%s: line %ld: \"%s\": expected a number, got %s", path, line, key,
                 json_kind(j));
        return 2;
    }
    *out = json_number_value(j);
    return 0;
}

/* One line of the file into r. Returns 0, 1 (out of memory) or 2 with err. */
static int read_line(run *r, const char *text, size_t len, const char *path, long line, char *err,
                     size_t errlen) {
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j) {
        snprintf(err, errlen,
                 "%s: line %ld: expected a JSON object, got text that is not JSON (%s)", path, line,
                 je.text);
        return 2;
    }
    if (!json_is_object(j)) {
        snprintf(err, errlen, "%s: line %ld: expected a JSON object, got %s", path, line,
                 json_kind(j));
        json_decref(j);
        return 2;
    }
    const char *event = json_string_value(json_object_get(j, "event"));
    int rc = 0;
    if (event && strcmp(event, "epoch") == 0) {
        if (run_grow(r) != 0) {
            json_decref(j);
            snprintf(err, errlen, "%s: out of memory at line %ld", path, line);
            return 1;
        }
        for (int k = 0; k < NKEYS && rc == 0; k++) {
            rc = number(j, key_name[k], &r->v[k][r->n], path, line, err, errlen);
            r->seen[k] += isfinite(r->v[k][r->n]) ? 1 : 0;
        }
        if (isnan(r->v[K_EPOCH][r->n])) /* an epoch line without its number: its position */
            r->v[K_EPOCH][r->n] = r->n + 1;
        r->n++;
    } else if (event && strcmp(event, "final") == 0) {
        r->final = 1;
        rc = number(j, "test_loss", &r->test[0], path, line, err, errlen);
        if (rc == 0)
            rc = number(j, "test_accuracy", &r->test[1], path, line, err, errlen);
        if (rc == 0)
            rc = number(j, "wall_s", &r->wall_s, path, line, err, errlen);
    } /* other events: not ours to draw */
    json_decref(j);
    return rc;
}

static int read_run(run *r, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the metrics file: %s", path, strerror(errno));
        return 2;
    }
    char *text = NULL;
    size_t cap = 0;
    ssize_t len;
    long line = 0;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (len = getline(&text, &cap, f)) >= 0) {
        line++;
        if (strspn(text, " \t\r\n") == (size_t)len)
            continue; /* blank */
        rc = read_line(r, text, (size_t)len, path, line, err, errlen);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: cannot read the metrics file: %s", path, strerror(errno));
        rc = 2;
    }
    free(text);
    fclose(f);
    if (rc == 0 && r->n == 0) {
        snprintf(err, errlen,
                 "%s: no \"epoch\" lines: expected the JSON lines of pstrain train --metrics",
                 path);
        rc = 2;
    }
    return rc;
}

/* The series of one key, against x. */
static eng_series series(const run *r, const double *x, int key, uint32_t colour, int right) {
    return (eng_series){key_name[key], x, r->v[key], r->n, colour, right};
}

/* One row of two panels: losses on the left, accuracy (a GAN's scores) on the right. */
static void draw_row(eng_canvas *c, int y, const run *r, const double *x, const char *against,
                     int x_integer) {
    const int gan = r->seen[K_D_LOSS] > 0, judged = r->seen[K_IS] > 0;
    eng_series left[2], right[4];
    int nl = 0, nr = 0;
    const char *what;
    if (gan) {
        left[nl++] = series(r, x, K_D_LOSS, BLUE, 0);
        left[nl++] = series(r, x, K_G_LOSS, ORANGE, 0);
        if (judged) {
            right[nr++] = series(r, x, K_IS, GREEN, 0);
            right[nr++] = series(r, x, K_FID, RED, 1);
            if (r->seen[K_LIVE_IS] > 0) {
                right[nr++] = series(r, x, K_LIVE_IS, LIGHT_GREEN, 0);
                right[nr++] = series(r, x, K_LIVE_FID, LIGHT_RED, 1);
            }
            what = "scores";
        } else {
            right[nr++] = series(r, x, K_D_ACC, BLUE, 0);
            what = "d_accuracy";
        }
    } else {
        left[nl++] = series(r, x, K_LOSS, BLUE, 0);
        left[nl++] = series(r, x, K_VAL_LOSS, ORANGE, 0);
        right[nr++] = series(r, x, K_ACC, BLUE, 0);
        right[nr++] = series(r, x, K_VAL_ACC, ORANGE, 0);
        what = "accuracy";
    }
    char title[2][96];
    snprintf(title[0], sizeof title[0], "loss vs %s", against);
    snprintf(title[1], sizeof title[1], "%s vs %s", what, against);
    const eng_panel lp = {title[0], left, nl, x_integer}, rp = {title[1], right, nr, x_integer};
    eng_plot_panel(c, 0, y, WK_PLOT_WIDTH / 2, ROW_H, &lp, NULL);
    eng_plot_panel(c, WK_PLOT_WIDTH / 2, y, WK_PLOT_WIDTH / 2, ROW_H, &rp, NULL);
}

/* The band: the title on the left (its head cut when long), a summary on the right. */
static void draw_band(eng_canvas *c, const run *r, const char *title, double wall) {
    char summary[160];
    if (r->final && isfinite(r->test[0]) && isfinite(r->test[1]))
        snprintf(summary, sizeof summary, "test_loss %.4f  test_accuracy %.4f", r->test[0],
                 r->test[1]);
    else
        snprintf(summary, sizeof summary, "%d epoch%s", r->n, r->n == 1 ? "" : "s");
    if (r->final && isfinite(r->wall_s))
        wall = r->wall_s; /* the whole run's, evaluation included */
    if (isfinite(wall))
        snprintf(summary + strlen(summary), sizeof summary - strlen(summary), "  %.0f s", wall);
    const int sw = eng_text_width(summary, 2);
    eng_canvas_text(c, WK_PLOT_WIDTH - 16 - sw, 14, summary, 2, 0x444444u);
    const int room = (WK_PLOT_WIDTH - 16 - sw - 32 - 16) / (ENG_FONT_ADVANCE * 3);
    char shown[256];
    const size_t len = strlen(title);
    if (room > 3 && len > (size_t)room)
        snprintf(shown, sizeof shown, "...%s", title + len - (size_t)(room - 3));
    else
        snprintf(shown, sizeof shown, "%s", title);
    eng_canvas_text(c, 16, 8, shown, 3, 0x111111u);
    eng_canvas_fill(c, 16, BAND - 4, WK_PLOT_WIDTH - 32, 1, 0xccccccu);
}

int wk_plot(const char *metrics_path, const char *out_path, const char *title, char *err,
            size_t errlen) {
    struct stat in, out;
    if (stat(metrics_path, &in) == 0 && stat(out_path, &out) == 0 && in.st_dev == out.st_dev &&
        in.st_ino == out.st_ino) {
        snprintf(err, errlen, "--out: %s is the metrics file; expected a new .png", out_path);
        return 2;
    }
    run r;
    memset(&r, 0, sizeof r);
    int rc = read_run(&r, metrics_path, err, errlen);
    if (rc != 0) {
        run_deinit(&r);
        return rc;
    }
    /* Wall time only when every epoch says how long it took. */
    const int timed = r.seen[K_SECONDS] == r.n;
    double *wall = timed ? malloc(sizeof *wall * (size_t)r.n) : NULL;
    eng_canvas *c =
        eng_canvas_new(WK_PLOT_WIDTH, timed ? WK_PLOT_HEIGHT : WK_PLOT_HEIGHT_EPOCHS, 0xffffffu);
    if (!c || (timed && !wall)) {
        snprintf(err, errlen, "%s: out of memory for the picture", out_path);
        rc = 1;
        goto done;
    }
    double sum = 0.0;
    for (int i = 0; timed && i < r.n; i++)
        wall[i] = sum += r.v[K_SECONDS][i];
    draw_band(c, &r, title && *title ? title : metrics_path, timed ? sum : NAN);
    draw_row(c, BAND, &r, r.v[K_EPOCH], "epoch", 1);
    if (timed)
        draw_row(c, BAND + ROW_H, &r, wall, "wall time (s)", 0);
    char why[1024];
    if (eng_canvas_write_png(c, out_path, why, sizeof why) != PST_OK) {
        snprintf(err, errlen, "--out: %s", why);
        rc = 2;
    }
done:
    eng_canvas_free(&c);
    free(wall);
    run_deinit(&r);
    return rc;
}
