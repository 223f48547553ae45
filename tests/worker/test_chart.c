/* test_chart.c: `pstrain plot`'s charts on real files: valid PNGs (read back with cairo) and
 * SVGs of the expected size, UTF-8 text that comes out as written, one legend entry per run
 * in an overlay, and the refusals (a bad metrics line named by file and line, an --out that
 * is neither .png nor .svg), with nothing written. Also the axes' nice ticks. */
#include "worker/report/chart.h"

#include "engine/base/base.h"
#include "tests/support/testutil.h"
#include "worker/report/panel.h"

#include <cairo.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char tmp[1024];

static int setup(void **state) {
    (void)state;
    return tu_mkdtemp(tmp, sizeof tmp, "chart");
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

static const char classifier[] = /* three epochs, timed, and the final line */
    "{\"event\":\"servers\",\"n\":2}\n"
    "{\"event\":\"epoch\",\"epoch\":1,\"loss\":0.2,\"accuracy\":0.94,\"val_loss\":0.08,"
    "\"val_accuracy\":0.97,\"seconds\":41.5}\n"
    "\n"
    "{\"event\":\"epoch\",\"epoch\":2,\"loss\":0.1,\"accuracy\":0.97,\"val_loss\":0.06,"
    "\"val_accuracy\":0.98,\"seconds\":40.2}\n"
    "{\"event\":\"epoch\",\"epoch\":3,\"loss\":0.07,\"accuracy\":0.98,\"val_loss\":null,"
    "\"val_accuracy\":0.985,\"seconds\":40.9}\n"
    "{\"event\":\"final\",\"test_loss\":0.04,\"test_accuracy\":0.987,\"wall_s\":130}\n";

static const char untimed[] =
    "{\"event\":\"epoch\",\"epoch\":1,\"loss\":0.3,\"accuracy\":0.9,\"val_loss\":0.1,"
    "\"val_accuracy\":0.95}\n"
    "{\"event\":\"epoch\",\"epoch\":2,\"loss\":0.2,\"accuracy\":0.93,\"val_loss\":0.09,"
    "\"val_accuracy\":0.96}\n";

static const char gan[] =
    "{\"event\":\"epoch\",\"epoch\":1,\"d_loss\":0.29,\"g_loss\":4.4,\"d_accuracy\":0.95,"
    "\"seconds\":177,\"inception_score\":4.0,\"frechet\":111,\"live_inception_score\":3.9,"
    "\"live_frechet\":115}\n"
    "{\"event\":\"epoch\",\"epoch\":2,\"d_loss\":0.72,\"g_loss\":2.4,\"d_accuracy\":0.84,"
    "\"seconds\":178,\"inception_score\":5.0,\"frechet\":76,\"live_inception_score\":4.8,"
    "\"live_frechet\":80}\n";

/* tmp/name <- text; returns the path (one of 16 static buffers, reused in turn). */
static const char *file(const char *name, const char *text) {
    static char paths[16][1200];
    static int next;
    char *path = paths[next++ % 16];
    snprintf(path, 1200, "%s/%s", tmp, name);
    if (text)
        assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
    return path;
}

/* The chart of files into out; fails the test with err when refused. */
static void chart(const char *const *files, int n, const char *out, const char *title) {
    char err[1024] = "";
    if (wk_chart(files, n, out, title, err, sizeof err) != PST_OK)
        fail_msg("%s", err);
}

/* out is a PNG of width x height that cairo reads back; returns it. */
static cairo_surface_t *expect_png(const char *out, int width, int height) {
    size_t len = 0;
    unsigned char *b = (unsigned char *)tu_read_file(out, &len);
    if (!b)
        fail_msg("%s: not written", out);
    assert_true(len > 24);
    assert_memory_equal(b, "\x89PNG\r\n\x1a\n", 8);
    free(b);
    cairo_surface_t *s = cairo_image_surface_create_from_png(out);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
        fail_msg("%s: %s", out, cairo_status_to_string(cairo_surface_status(s)));
    if (cairo_image_surface_get_width(s) != width || cairo_image_surface_get_height(s) != height)
        fail_msg("%s: %dx%d, expected %dx%d", out, cairo_image_surface_get_width(s),
                 cairo_image_surface_get_height(s), width, height);
    return s;
}

/* Pixels of exactly colour (0xRRGGBB) in the rows [y0, y1) of s. */
static int count(cairo_surface_t *s, int y0, int y1, uint32_t colour) {
    const int w = cairo_image_surface_get_width(s), stride = cairo_image_surface_get_stride(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < w; x++) {
            uint32_t px;
            memcpy(&px, data + (size_t)y * (size_t)stride + 4 * (size_t)x, 4);
            n += (px & 0xffffffu) == colour;
        }
    return n;
}

/* out's text (NUL-terminated); the caller frees it. */
static char *slurp(const char *out) {
    size_t len = 0;
    char *t = tu_read_file(out, &len);
    if (!t)
        fail_msg("%s: not written", out);
    return t;
}

/* One run: a PNG of the documented sizes (both rows with "seconds", the top row without, a
 * GAN's), with its curves drawn in their colours. */
static void png_of_one_run(void **state) {
    (void)state;
    const struct {
        const char *name, *text;
        int height;
    } cases[] = {{"timed.jsonl", classifier, WK_CHART_HEIGHT},
                 {"untimed.jsonl", untimed, WK_CHART_HEIGHT_EPOCHS},
                 {"gan.jsonl", gan, WK_CHART_HEIGHT}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *m = file(cases[i].name, cases[i].text), *out = file("one.png", NULL);
        chart(&m, 1, out, NULL);
        cairo_surface_t *s = expect_png(out, WK_CHART_WIDTH, cases[i].height);
        const int blue = count(s, WK_CHART_BAND, cases[i].height, 0x1f77b4u);
        const int orange = count(s, WK_CHART_BAND, cases[i].height, 0xff7f0eu);
        printf("%s: %d blue, %d orange pixels\n", cases[i].name, blue, orange);
        assert_true(blue > 200 && orange > 200); /* loss, val_loss (d_loss, g_loss): lines */
        cairo_surface_destroy(s);
        unlink(out);
    }
}

/* An SVG of the same picture: XML, 1200x800 pixels, and its title as written, in UTF-8;
 * a title that is not UTF-8 still draws, with U+FFFD for the bad byte. */
static void svg_with_utf8_title(void **state) {
    (void)state;
    const char *m = file("m.jsonl", classifier), *out = file("c.svg", NULL);
    const char *title = "Fr\xc3\xa9"
                        "chet distance \xe2\x80\x94 run \xce\xb1 & <b>";
    chart(&m, 1, out, title);
    char *t = slurp(out);
    assert_memory_equal(t, "<?xml", 5);
    assert_non_null(strstr(t, "<svg"));
    assert_non_null(strstr(t, "width=\"1200px\" height=\"800px\""));
    assert_non_null(strstr(t, "<title>Fr\xc3\xa9"
                              "chet distance \xe2\x80\x94 run \xce\xb1 &amp; "
                              "&lt;b&gt;</title>"));
    assert_non_null(strstr(t, "<desc>"));
    assert_non_null(strstr(t, "<use")); /* glyphs drawn */
    assert_non_null(strstr(t, "</svg>"));
    free(t);
    const char *bad = "bad \xff title";
    chart(&m, 1, out, bad);
    t = slurp(out);
    assert_non_null(strstr(t, "<title>bad \xef\xbf\xbd title</title>"));
    free(t);
    unlink(out);
    /* The extension's case does not matter. */
    out = file("C.SVG", NULL);
    chart(&m, 1, out, NULL);
    t = slurp(out);
    assert_memory_equal(t, "<?xml", 5);
    free(t);
    unlink(out);
}

/* "é" is drawn as one glyph of its own, not as the "??" of a font without it. */
static void png_title_in_utf8(void **state) {
    (void)state;
    const char *m = file("m.jsonl", untimed), *out = file("t.png", NULL);
    cairo_surface_t *s[3];
    const char *titles[3] = {"Fr\xc3\xa9"
                             "chet",
                             "Fr??chet", "Frechet"};
    for (int i = 0; i < 3; i++) {
        chart(&m, 1, out, titles[i]);
        s[i] = expect_png(out, WK_CHART_WIDTH, WK_CHART_HEIGHT_EPOCHS);
    }
    const int stride = cairo_image_surface_get_stride(s[0]);
    const unsigned char *d[3] = {cairo_image_surface_get_data(s[0]),
                                 cairo_image_surface_get_data(s[1]),
                                 cairo_image_surface_get_data(s[2])};
    /* The band differs from "Fr??chet"'s and from "Frechet"'s (the accent), and the panels
     * below it are the same. */
    const size_t band = (size_t)stride * WK_CHART_BAND;
    assert_memory_not_equal(d[0], d[1], band);
    assert_memory_not_equal(d[0], d[2], band);
    assert_memory_equal(d[0] + band, d[1] + band,
                        (size_t)stride * (WK_CHART_HEIGHT_EPOCHS - WK_CHART_BAND));
    for (int i = 0; i < 3; i++)
        cairo_surface_destroy(s[i]);
    unlink(out);
}

/* Three runs overlaid: one legend entry per file, a swatch of its colour under the title, and
 * its curves in that colour; the SVG's description names each file. */
static void overlay_one_entry_per_file(void **state) {
    (void)state;
    char was[1024];
    assert_non_null(getcwd(was, sizeof was));
    assert_int_equal(chdir(tmp), 0); /* short names: one row of legend */
    file("a.jsonl", classifier);
    file("b.jsonl", untimed);
    file("c.jsonl", /* c: a's, a little worse (a's lines would hide under c's) */
         "{\"event\":\"epoch\",\"epoch\":1,\"loss\":0.25,\"accuracy\":0.92,\"val_loss\":0.1,"
         "\"val_accuracy\":0.96,\"seconds\":30}\n"
         "{\"event\":\"epoch\",\"epoch\":2,\"loss\":0.15,\"accuracy\":0.95,\"val_loss\":0.08,"
         "\"val_accuracy\":0.97,\"seconds\":31}\n"
         "{\"event\":\"epoch\",\"epoch\":3,\"loss\":0.11,\"accuracy\":0.96,\"val_loss\":0.07,"
         "\"val_accuracy\":0.975,\"seconds\":30}\n");
    const char *files[3] = {"a.jsonl", "b.jsonl", "c.jsonl"};
    chart(files, 3, "o.png", "three runs");
    /* b has no "seconds": the top row only */
    cairo_surface_t *s = expect_png("o.png", WK_CHART_WIDTH, WK_CHART_HEIGHT_EPOCHS);
    const int legend0 = WK_CHART_BAND, legend1 = WK_CHART_BAND + WK_CHART_LEGEND_ROW;
    for (int i = 0; i < 4; i++) {
        const int in_legend = count(s, legend0, legend1, wk_chart_colour(i));
        const int in_panels = count(s, legend1, WK_CHART_HEIGHT_EPOCHS, wk_chart_colour(i));
        printf("run %d: %d pixels of its colour in the legend, %d in the panels\n", i, in_legend,
               in_panels);
        if (i < 3) {
            assert_true(in_legend >= 12 * 12);
            assert_true(in_panels > 100);
        } else {
            assert_int_equal(in_legend + in_panels, 0); /* no fourth run */
        }
    }
    assert_int_equal(count(s, 0, legend0, wk_chart_colour(0)), 0); /* the title's row */
    cairo_surface_destroy(s);
    chart(files, 3, "o.svg", NULL);
    char *t = slurp("o.svg");
    char *desc = strstr(t, "<desc>"), *end = strstr(t, "</desc>");
    assert_non_null(desc);
    assert_non_null(end);
    *end = '\0';
    assert_non_null(strstr(t, "<title>3 runs</title>"));
    assert_int_equal(tu_count_lines(desc), 3);
    assert_non_null(strstr(desc, "<desc>a.jsonl: test_loss 0.0400  test_accuracy 0.9870  130 s"));
    assert_non_null(strstr(desc, "\nb.jsonl: 2 epochs\n"));
    assert_non_null(strstr(desc, "\nc.jsonl: 3 epochs  91 s"));
    free(t);
    assert_int_equal(chdir(was), 0);
}

/* A refusal: code, one line naming each of want, and no new file at out. */
static void expect_refusal(const char *const *files, int n, const char *out, int code,
                           const char *const *want) {
    char err[1024] = "";
    const int rc = wk_chart(files, n, out, NULL, err, sizeof err);
    printf("%s\n", err);
    if (rc != code)
        fail_msg("%s, expected %s: %s", pst_code_name(rc), pst_code_name(code), err);
    assert_null(strchr(err, '\n'));
    for (; *want; want++)
        if (!strstr(err, *want))
            fail_msg("'%s' does not name '%s'", err, *want);
    for (int i = 0; i < n; i++)
        if (strcmp(files[i], out) == 0)
            return; /* the metrics file is there, as it was */
    assert_int_equal(access(out, F_OK), -1);
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void refusals(void **state) {
    (void)state;
    const char *good = file("good.jsonl", classifier), *g = file("g.jsonl", gan);
    const char *out = file("r.png", NULL);
    /* Line 3 is not JSON (line 2 is blank: lines count as an editor counts them); in an
     * overlay, the file that is bad is the one named. */
    const char *bad = file("bad.jsonl", "{\"event\":\"epoch\",\"epoch\":1,\"loss\":0.2}\n"
                                        "\n"
                                        "{\"event\":\"epoch\",\"epoch\":2,\"loss\":0.1\n");
    expect_refusal(&bad, 1, out, PST_EFORMAT, NAMES(bad, "line 3"));
    const char *two[2] = {good, bad};
    expect_refusal(two, 2, out, PST_EFORMAT, NAMES(bad, "line 3"));
    const char *str = file("str.jsonl", "{\"event\":\"epoch\",\"epoch\":1,\"loss\":\"low\"}\n");
    expect_refusal(&str, 1, out, PST_EFORMAT, NAMES(str, "line 1", "\"loss\"", "number"));
    const char *arr = file("arr.jsonl", "[1, 2]\n");
    expect_refusal(&arr, 1, out, PST_EFORMAT, NAMES(arr, "line 1", "JSON object"));
    const char *none = file("none.jsonl", "{\"event\":\"final\",\"test_loss\":0.04}\n");
    expect_refusal(&none, 1, out, PST_EFORMAT, NAMES(none, "epoch"));
    const char *missing = file("missing.jsonl", NULL);
    expect_refusal(&missing, 1, out, PST_EIO, NAMES(missing));
    expect_refusal((const char *const[]){tmp}, 1, out, PST_EIO, NAMES(tmp)); /* a folder */
    /* --out: neither .png nor .svg, one of the inputs, or a folder that does not exist. */
    expect_refusal(&good, 1, file("c.txt", NULL), PST_EARG,
                   NAMES("--out", "c.txt", ".png or .svg"));
    expect_refusal(&good, 1, file("curves", NULL), PST_EARG, NAMES("--out", ".png or .svg"));
    expect_refusal(&good, 1, file("c.svg.gz", NULL), PST_EARG, NAMES("--out", ".png or .svg"));
    const char *in_png = file("in.png", classifier);
    expect_refusal(&in_png, 1, in_png, PST_EARG, NAMES("--out", "in.png", "metrics file"));
    expect_refusal(&good, 1, "/nonexistent/dir/c.svg", PST_EIO,
                   NAMES("--out", "/nonexistent/dir/c.svg"));
    /* Runs of two kinds, and too many runs. */
    const char *mixed[2] = {good, g};
    expect_refusal(mixed, 2, out, PST_EARG, NAMES(good, g, "one kind"));
    const char *many[WK_CHART_RUNS + 1];
    for (int i = 0; i <= WK_CHART_RUNS; i++)
        many[i] = good;
    expect_refusal(many, WK_CHART_RUNS + 1, out, PST_EARG, NAMES("11 metrics files", "1 to 10"));
}

/* Ticks lie in the range, at most target + 1 of them, on a 1-2-5 step. */
static void check_ticks(double lo, double hi, int target, int integer, const wk_ticks *t) {
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

static void expect_labels(const wk_ticks *t, const char *const *want, int n) {
    char buf[32];
    assert_int_equal(t->n, n);
    for (int i = 0; i < n; i++) {
        wk_ticks_label(t, i, buf, sizeof buf);
        assert_string_equal(buf, want[i]);
    }
}

static void nice_ticks(void **state) {
    (void)state;
    wk_ticks t;
    /* The example of the header: the axis spans the data, ticks inside it. */
    wk_ticks_make(0.0, 0.93, 5, 0, &t);
    check_ticks(0.0, 0.93, 5, 0, &t);
    assert_true(t.lo == 0.0 && t.hi == 0.93 && fabs(t.step - 0.2) < 1e-12);
    expect_labels(&t, (const char *const[]){"0.0", "0.2", "0.4", "0.6", "0.8"}, 5);
    /* Epochs 1..12 in at most 6 intervals: 2, 4, ..., 12. */
    wk_ticks_make(1, 12, 6, 1, &t);
    check_ticks(1, 12, 6, 1, &t);
    expect_labels(&t, (const char *const[]){"2", "4", "6", "8", "10", "12"}, 6);
    /* Epochs 1..3: whole steps, never 0.5. */
    wk_ticks_make(1, 3, 8, 1, &t);
    check_ticks(1, 3, 8, 1, &t);
    expect_labels(&t, (const char *const[]){"1", "2", "3"}, 3);
    /* Across zero: zero is a tick, and reads "0.0", not "-0.0". */
    wk_ticks_make(-0.37, 0.12, 5, 0, &t);
    check_ticks(-0.37, 0.12, 5, 0, &t);
    expect_labels(&t, (const char *const[]){"-0.3", "-0.2", "-0.1", "0.0", "0.1"}, 5);
    /* Small and large ranges, labels with the digits the step needs. */
    wk_ticks_make(0.0312, 0.0477, 5, 0, &t);
    check_ticks(0.0312, 0.0477, 5, 0, &t);
    expect_labels(&t, (const char *const[]){"0.035", "0.040", "0.045"}, 3);
    wk_ticks_make(0, 1234, 5, 0, &t);
    check_ticks(0, 1234, 5, 0, &t);
    expect_labels(&t, (const char *const[]){"0", "500", "1000"}, 3);
    wk_ticks_make(0.94, 0.99, 5, 0, &t); /* accuracy */
    check_ticks(0.94, 0.99, 5, 0, &t);
    expect_labels(&t, (const char *const[]){"0.94", "0.95", "0.96", "0.97", "0.98", "0.99"}, 6);
    /* One value: a range around it; non-finite bounds: [0, 1]. */
    wk_ticks_make(0.5, 0.5, 5, 0, &t);
    check_ticks(0.5, 0.5, 5, 0, &t);
    assert_true(t.lo < 0.5 && t.hi > 0.5);
    wk_ticks_make(7, 7, 5, 1, &t);
    check_ticks(7, 7, 5, 1, &t);
    expect_labels(&t, (const char *const[]){"6", "7", "8"}, 3);
    wk_ticks_make(NAN, INFINITY, 5, 0, &t);
    assert_true(t.lo == 0.0 && t.hi == 1.0);
}

/* Text that is not UTF-8 is made so (cairo draws nothing more after invalid text); long
 * text is cut from its head at a character's boundary. */
static void text_helpers(void **state) {
    (void)state;
    char buf[64];
    assert_string_equal(wk_text_utf8("Fr\xc3\xa9"
                                     "chet",
                                     buf, sizeof buf),
                        "Fr\xc3\xa9"
                        "chet");
    assert_string_equal(wk_text_utf8("a\xff"
                                     "b",
                                     buf, sizeof buf),
                        "a\xef\xbf\xbd"
                        "b");
    assert_string_equal(wk_text_utf8("\xc0\xaf", buf, sizeof buf), /* an overlong '/' */
                        "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(wk_text_utf8("\xed\xa0\x80", buf, sizeof buf), /* a surrogate */
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(wk_text_utf8("ab\xc3\xa9", buf, 4), "ab"); /* no half character */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 10, 10);
    cairo_t *cr = cairo_create(s);
    wk_text_font(cr, 12, 0);
    const char *path = "runs/\xc3\xa9t\xc3\xa9/metrics.jsonl";
    assert_string_equal(wk_text_fit(cr, path, 1e6, buf, sizeof buf), path);
    wk_text_fit(cr, path, wk_text_width(cr, "metrics.jsonl") * 1.3, buf, sizeof buf);
    printf("cut: %s\n", buf);
    assert_memory_equal(buf, "\xe2\x80\xa6", 3);
    assert_non_null(strstr(buf, "metrics.jsonl"));
    assert_true(wk_text_width(cr, buf) <= wk_text_width(cr, "metrics.jsonl") * 1.3);
    assert_string_equal(wk_text_utf8(buf, buf + 32, 32), buf); /* still UTF-8 */
    assert_int_equal(cairo_status(cr), CAIRO_STATUS_SUCCESS);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_of_one_run),    cmocka_unit_test(svg_with_utf8_title),
        cmocka_unit_test(png_title_in_utf8), cmocka_unit_test(overlay_one_entry_per_file),
        cmocka_unit_test(refusals),          cmocka_unit_test(nice_ticks),
        cmocka_unit_test(text_helpers),
    };
    const int failed = cmocka_run_group_tests(tests, setup, teardown);
    wk_chart_release();
    return failed;
}
