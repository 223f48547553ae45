/* test_plot.c: the chart drawer: the canvas and its PNG (read back with libpng), lines,
 * text, nice ticks, and panels whose series land where their values say. */
#include "engine/plot.h"

#include "engine/base/base.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define WHITE 0xffffffu
#define BLUE 0x1f77b4u
#define RED 0xd62728u

/* Reads path as 8-bit RGB into a malloc'ed buffer. */
static uint8_t *read_png(const char *path, int *width, int *height) {
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&png, path))
        fail_msg("%s: %s", path, png.message);
    png.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(png));
    assert_non_null(buf);
    if (!png_image_finish_read(&png, NULL, buf, 0, NULL))
        fail_msg("%s: %s", path, png.message);
    *width = (int)png.width;
    *height = (int)png.height;
    return buf;
}

static void temp_path(char *path, size_t len) {
    snprintf(path, len, "/tmp/pstrain-test-plot-XXXXXX");
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* A canvas with a red block, written and read back: size and every pixel. */
static void canvas_png_round_trip(void **state) {
    (void)state;
    eng_canvas *c = eng_canvas_new(120, 80, WHITE);
    assert_non_null(c);
    assert_int_equal(eng_canvas_width(c), 120);
    assert_int_equal(eng_canvas_height(c), 80);
    eng_canvas_fill(c, 10, 20, 30, 15, RED);
    eng_canvas_fill(c, 110, 70, 50, 50, BLUE); /* clipped at the corner */
    char path[64], err[256] = "";
    temp_path(path, sizeof path);
    if (eng_canvas_write_png(c, path, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
    int w, h;
    uint8_t *px = read_png(path, &w, &h);
    assert_int_equal(w, 120);
    assert_int_equal(h, 80);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            const uint32_t got = ENG_RGB((uint32_t)p[0], (uint32_t)p[1], (uint32_t)p[2]);
            const uint32_t want = eng_canvas_pixel(c, x, y);
            if (got != want)
                fail_msg("(%d, %d): %06x, expected %06x", x, y, got, want);
        }
    assert_int_equal(eng_canvas_pixel(c, 10, 20), RED);
    assert_int_equal(eng_canvas_pixel(c, 39, 34), RED);
    assert_int_equal(eng_canvas_pixel(c, 40, 34), WHITE);
    assert_int_equal(eng_canvas_pixel(c, 119, 79), BLUE);
    free(px);
    unlink(path);
    eng_canvas_free(&c);
    assert_null(c);
    eng_canvas_free(&c); /* NULL is fine */
    assert_null(eng_canvas_new(0, 10, WHITE));
    assert_null(eng_canvas_new(10, 100000, WHITE));
}

static void unwritable_png(void **state) {
    (void)state;
    eng_canvas *c = eng_canvas_new(4, 4, WHITE);
    char err[256] = "";
    assert_int_equal(eng_canvas_write_png(c, "/nonexistent/dir/x.png", err, sizeof err), PST_EIO);
    assert_non_null(strstr(err, "/nonexistent/dir/x.png"));
    eng_canvas_free(&c);
}

/* Lines include both ends; a thick one covers its width; frames are one pixel. */
static void lines_and_frames(void **state) {
    (void)state;
    eng_canvas *c = eng_canvas_new(64, 64, WHITE);
    eng_canvas_line(c, 2, 3, 50, 3, 1, RED);
    for (int x = 2; x <= 50; x++)
        assert_int_equal(eng_canvas_pixel(c, x, 3), RED);
    assert_int_equal(eng_canvas_pixel(c, 1, 3), WHITE);
    assert_int_equal(eng_canvas_pixel(c, 51, 3), WHITE);
    assert_int_equal(eng_canvas_pixel(c, 20, 2), WHITE);
    eng_canvas_line(c, 10, 10, 40, 40, 1, BLUE); /* a diagonal: x == y all along */
    for (int i = 10; i <= 40; i++)
        assert_int_equal(eng_canvas_pixel(c, i, i), BLUE);
    eng_canvas_line(c, 5, 60, 5, 20, 2, RED); /* upwards, 2 wide */
    for (int y = 20; y <= 60; y++) {
        assert_int_equal(eng_canvas_pixel(c, 5, y), RED);
        assert_int_equal(eng_canvas_pixel(c, 6, y), RED);
    }
    eng_canvas_line(c, -100, -100, 1000, 1000, 3, RED); /* off the canvas: clipped, no crash */
    eng_canvas_frame(c, 20, 50, 10, 8, BLUE);
    assert_int_equal(eng_canvas_pixel(c, 20, 50), BLUE);
    assert_int_equal(eng_canvas_pixel(c, 29, 57), BLUE);
    assert_int_equal(eng_canvas_pixel(c, 25, 53), WHITE);
    eng_canvas_free(&c);
}

/* Dark pixels only inside the text's box, some in it; glyph shapes where they should be. */
static void text_in_its_box(void **state) {
    (void)state;
    assert_int_equal(eng_text_width("Ab1", 2), (3 * 6 - 1) * 2);
    assert_int_equal(eng_text_width("", 2), 0);
    assert_int_equal(eng_text_height(3), 27);
    eng_canvas *c = eng_canvas_new(200, 60, WHITE);
    const char *s = "val_loss vs epoch (s): 0.25";
    const int x0 = 7, y0 = 11, w = eng_text_width(s, 1), h = eng_text_height(1);
    eng_canvas_text(c, x0, y0, s, 1, 0x000000u);
    int inside = 0;
    for (int y = 0; y < 60; y++)
        for (int x = 0; x < 200; x++) {
            const int dark = eng_canvas_pixel(c, x, y) != WHITE;
            if (x >= x0 && x < x0 + w && y >= y0 && y < y0 + h)
                inside += dark;
            else if (dark)
                fail_msg("a dark pixel at (%d, %d), outside the text's box", x, y);
        }
    assert_true(inside > 50);
    /* '1' at scale 2: its stem is column 2, all 7 rows; column 0 of row 0 is empty. */
    eng_canvas *d = eng_canvas_new(40, 40, WHITE);
    eng_canvas_text(d, 4, 4, "1", 2, RED);
    for (int r = 0; r < 7; r++)
        assert_int_equal(eng_canvas_pixel(d, 4 + 2 * 2 + 1, 4 + 2 * r + 1), RED);
    assert_int_equal(eng_canvas_pixel(d, 4, 4), WHITE);
    /* A byte without a glyph is drawn as '?'. */
    eng_canvas *q = eng_canvas_new(40, 40, WHITE), *u = eng_canvas_new(40, 40, WHITE);
    eng_canvas_text(q, 4, 4, "?", 2, RED);
    eng_canvas_text(u, 4, 4, "\x01", 2, RED);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 40; x++)
            assert_int_equal(eng_canvas_pixel(q, x, y), eng_canvas_pixel(u, x, y));
    eng_canvas_free(&q);
    eng_canvas_free(&u);
    eng_canvas_free(&d);
    eng_canvas_free(&c);
}

/* Ticks lie in the range, at most target + 1 of them, on a 1-2-5 step. */
static void check_ticks(double lo, double hi, int target, int integer, const eng_ticks *t) {
    assert_true(t->n >= 1 && t->n <= target + 1);
    assert_true(t->lo <= lo && t->hi >= hi);
    for (int i = 0; i < t->n; i++)
        assert_true(t->v[i] >= t->lo - 1e-12 && t->v[i] <= t->hi + 1e-12);
    for (int i = 1; i < t->n; i++)
        assert_true(fabs(t->v[i] - t->v[i - 1] - t->step) < 1e-9 * fmax(1.0, t->step));
    const double mant = t->step / pow(10.0, floor(log10(t->step) + 1e-9));
    if (!(fabs(mant - 1) < 1e-9 || fabs(mant - 2) < 1e-9 || fabs(mant - 5) < 1e-9))
        fail_msg("step %g is not 1, 2 or 5 times a power of ten", t->step);
    if (integer)
        assert_true(t->step >= 1.0);
}

static void expect_labels(const eng_ticks *t, const char *const *want, int n) {
    char buf[32];
    assert_int_equal(t->n, n);
    for (int i = 0; i < n; i++) {
        eng_ticks_label(t, i, buf, sizeof buf);
        assert_string_equal(buf, want[i]);
    }
}

static void nice_ticks(void **state) {
    (void)state;
    eng_ticks t;
    /* The example of the header: the axis spans the data, ticks inside it. */
    eng_plot_ticks(0.0, 0.93, 5, 0, &t);
    check_ticks(0.0, 0.93, 5, 0, &t);
    assert_true(t.lo == 0.0 && t.hi == 0.93 && fabs(t.step - 0.2) < 1e-12);
    expect_labels(&t, (const char *const[]){"0.0", "0.2", "0.4", "0.6", "0.8"}, 5);
    /* Epochs 1..12 in at most 6 intervals: 2, 4, ..., 12. */
    eng_plot_ticks(1, 12, 6, 1, &t);
    check_ticks(1, 12, 6, 1, &t);
    expect_labels(&t, (const char *const[]){"2", "4", "6", "8", "10", "12"}, 6);
    /* Epochs 1..3: whole steps, never 0.5. */
    eng_plot_ticks(1, 3, 8, 1, &t);
    check_ticks(1, 3, 8, 1, &t);
    expect_labels(&t, (const char *const[]){"1", "2", "3"}, 3);
    /* Across zero: zero is a tick, and reads "0.0", not "-0.0". */
    eng_plot_ticks(-0.37, 0.12, 5, 0, &t);
    check_ticks(-0.37, 0.12, 5, 0, &t);
    expect_labels(&t, (const char *const[]){"-0.3", "-0.2", "-0.1", "0.0", "0.1"}, 5);
    /* Small and large ranges, labels with the digits the step needs. */
    eng_plot_ticks(0.0312, 0.0477, 5, 0, &t);
    check_ticks(0.0312, 0.0477, 5, 0, &t);
    expect_labels(&t, (const char *const[]){"0.035", "0.040", "0.045"}, 3);
    eng_plot_ticks(0, 1234, 5, 0, &t);
    check_ticks(0, 1234, 5, 0, &t);
    expect_labels(&t, (const char *const[]){"0", "500", "1000"}, 3);
    eng_plot_ticks(0.94, 0.99, 5, 0, &t); /* accuracy */
    check_ticks(0.94, 0.99, 5, 0, &t);
    expect_labels(&t, (const char *const[]){"0.94", "0.95", "0.96", "0.97", "0.98", "0.99"}, 6);
    /* One value: a range around it; non-finite bounds: [0, 1]. */
    eng_plot_ticks(0.5, 0.5, 5, 0, &t);
    check_ticks(0.5, 0.5, 5, 0, &t);
    assert_true(t.lo < 0.5 && t.hi > 0.5);
    eng_plot_ticks(7, 7, 5, 1, &t);
    check_ticks(7, 7, 5, 1, &t);
    expect_labels(&t, (const char *const[]){"6", "7", "8"}, 3);
    eng_plot_ticks(NAN, INFINITY, 5, 0, &t);
    assert_true(t.lo == 0.0 && t.hi == 1.0);
}

/* Pixels of colour within r pixels of (x, y). */
static int near(const eng_canvas *c, int x, int y, int r, uint32_t colour) {
    int n = 0;
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++)
            if (x + dx >= 0 && y + dy >= 0 && x + dx < eng_canvas_width(c) &&
                y + dy < eng_canvas_height(c) && eng_canvas_pixel(c, x + dx, y + dy) == colour)
                n++;
    return n;
}

/* A flat series at y = 0.5 is a horizontal blue line from its first point to its last; a
 * rising red one passes through its points; a right-axis series lives on its own axis. */
static void panel_series_land_where_their_values_say(void **state) {
    (void)state;
    const double x[5] = {1, 2, 3, 4, 5}, flat[5] = {0.5, 0.5, 0.5, 0.5, 0.5},
                 rise[5] = {0.0, 0.25, 0.5, 0.75, 1.0}, far[5] = {150, 150, NAN, 150, 100};
    const eng_series s[3] = {{"far", x, far, 5, 0x2ca02cu, 1},
                             {"flat", x, flat, 5, BLUE, 0},
                             {"rise", x, rise, 5, RED, 0}};
    const eng_panel p = {"accuracy vs epoch", s, 3, 1};
    eng_canvas *c = eng_canvas_new(700, 460, WHITE);
    eng_plot_axes a;
    eng_plot_panel(c, 50, 30, 600, 400, &p, &a);
    /* The frame is inside the panel's rectangle; the axes cover the data. */
    assert_true(a.x > 50 && a.y > 30 && a.x + a.w <= 650 && a.y + a.h <= 430);
    assert_true(a.xt.lo <= 1 && a.xt.hi >= 5 && a.xt.step >= 1);
    assert_true(a.yt.lo <= 0 && a.yt.hi >= 1);
    assert_true(a.yt2.n >= 2 && a.yt2.lo <= 100 && a.yt2.hi >= 150);
    int x1, x5, y05, py;
    eng_plot_to_pixel(&a, 0, 1, 0.5, &x1, &y05);
    eng_plot_to_pixel(&a, 0, 5, 0.5, &x5, &py);
    assert_int_equal(py, y05);
    assert_true(x1 > a.x && x5 < a.x + a.w - 1);
    /* Blue all along y = 0.5 but where red crosses it (x = 3, its marker on top). */
    int x3;
    eng_plot_to_pixel(&a, 0, 3, 0.5, &x3, &py);
    for (int px = x1; px <= x5; px++) {
        if (abs(px - x3) <= 12)
            continue;
        if (eng_canvas_pixel(c, px, y05) != BLUE)
            fail_msg("(%d, %d) on the line y = 0.5: %06x, expected blue", px, y05,
                     eng_canvas_pixel(c, px, y05));
    }
    assert_int_equal(near(c, x1 - 12, y05, 0, BLUE), 0); /* the line starts at the point */
    assert_int_equal(near(c, (x1 + x5) / 2, y05 - 30, 3, BLUE), 0);
    /* Red markers at red's points. */
    for (int i = 0; i < 5; i++) {
        int px;
        eng_plot_to_pixel(&a, 0, x[i], rise[i], &px, &py);
        assert_int_equal(eng_canvas_pixel(c, px, py), RED);
        assert_true(near(c, px, py, 2, RED) >= 25);
    }
    /* Green on the right axis; the NaN breaks its line between x = 2 and x = 4. */
    int g2, g4, gy2, gy4;
    eng_plot_to_pixel(&a, 1, 2, 150, &g2, &gy2);
    eng_plot_to_pixel(&a, 1, 4, 150, &g4, &gy4);
    assert_int_equal(eng_canvas_pixel(c, g2, gy2), 0x2ca02cu);
    assert_int_equal(eng_canvas_pixel(c, g4, gy4), 0x2ca02cu);
    assert_int_equal(near(c, (g2 + g4) / 2, (gy2 + gy4) / 2, 2, 0x2ca02cu), 0);
    /* Tick labels: dark text left of the frame, below it, and right of it. */
    int dark_left = 0, dark_below = 0, dark_right = 0;
    for (int yy = a.y; yy < a.y + a.h; yy++)
        for (int xx = 50; xx < a.x - 4; xx++)
            dark_left += eng_canvas_pixel(c, xx, yy) == 0x222222u;
    for (int yy = a.y + a.h + 4; yy < 430; yy++)
        for (int xx = a.x; xx < a.x + a.w; xx++)
            dark_below += eng_canvas_pixel(c, xx, yy) == 0x222222u;
    for (int yy = a.y; yy < a.y + a.h; yy++)
        for (int xx = a.x + a.w + 4; xx < 650; xx++)
            dark_right += eng_canvas_pixel(c, xx, yy) == 0x222222u;
    assert_true(dark_left > 50 && dark_below > 50 && dark_right > 50);
    /* Nothing outside the panel's rectangle. */
    for (int yy = 0; yy < 460; yy++)
        for (int xx = 0; xx < 700; xx++)
            if ((xx < 50 || xx >= 650 || yy < 30 || yy >= 430) &&
                eng_canvas_pixel(c, xx, yy) != WHITE)
                fail_msg("(%d, %d) outside the panel is %06x", xx, yy, eng_canvas_pixel(c, xx, yy));
    eng_canvas_free(&c);
}

/* A panel without points says so and still draws its frame. */
static void empty_panel(void **state) {
    (void)state;
    const double x[2] = {NAN, NAN}, y[2] = {1, 2};
    const eng_series s = {"none", x, y, 2, BLUE, 0};
    const eng_panel p = {"nothing", &s, 1, 0};
    eng_canvas *c = eng_canvas_new(300, 200, WHITE);
    eng_plot_axes a;
    eng_plot_panel(c, 0, 0, 300, 200, &p, &a);
    assert_int_equal(eng_canvas_pixel(c, a.x, a.y), 0x444444u);
    int dark = 0;
    for (int yy = a.y + 1; yy < a.y + a.h - 1; yy++)
        for (int xx = a.x + 1; xx < a.x + a.w - 1; xx++)
            dark += eng_canvas_pixel(c, xx, yy) == 0x222222u;
    assert_true(dark > 20); /* "no data" */
    assert_int_equal(near(c, a.x + a.w / 2, a.y + a.h / 2, 100, BLUE), 0);
    eng_canvas_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canvas_png_round_trip),
        cmocka_unit_test(unwritable_png),
        cmocka_unit_test(lines_and_frames),
        cmocka_unit_test(text_in_its_box),
        cmocka_unit_test(nice_ticks),
        cmocka_unit_test(panel_series_land_where_their_values_say),
        cmocka_unit_test(empty_panel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
