/* test_e2e.c: `pstrain train` end to end on the real data (the path of pstrain comes as
 * argv[1], the data from $PSTRAIN_DATA or the build's data directory; missing data fails
 * the test and says how to get it). Short runs, so that the suite stays quick:
 *   - mnist_cnn, 300 steps of 32 on 2 threads: the test accuracy and the epoch's mean loss
 *     must show it learned (a random model scores 0.10 and ln 10 = 2.30);
 *   - the same run twice gives the same metrics, byte for byte, but for the timings;
 *   - fashion_cnn, 200 steps.
 * Bounds sit a little below what the runs reach today (noted by each), never near chance.
 * Nothing here looks at wall-clock times. */
#include "tests/support/testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *pstrain;
static char tmp[1024];

static int setup(void **state) {
    (void)state;
    return tu_mkdtemp(tmp, sizeof tmp, "e2e");
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

/* Trains model for max_steps steps into metrics file tmp/<name>; returns stdout (owned). */
static char *train(const char *model, const char *dataset, const char *max_steps, const char *name,
                   char *metrics, size_t len) {
    char msg[1024];
    if (tu_check_dataset(dataset, msg, sizeof msg) != 0)
        fail_msg("%s", msg);
    snprintf(metrics, len, "%s/%s", tmp, name);
    /* clang-format off */
    char *argv[] = {(char *)pstrain, "train", "--model", (char *)model, "--epochs", "1",
                    "--max-steps", (char *)max_steps, "--threads", "2", "--seed", "1",
                    "--progress", "0", "--metrics", metrics, "--data", (char *)tu_data_dir(),
                    NULL};
    /* clang-format on */
    printf("$");
    for (int i = 0; argv[i]; i++)
        printf(" %s", argv[i]);
    printf("\n");
    tu_proc p;
    if (tu_run(&p, argv, NULL) != 0)
        fail_msg("cannot run %s", pstrain);
    printf("%s", p.out);
    if (!p.exited || p.status != 0)
        fail_msg("exit status %d (signal %d); stderr: %s", p.status, p.signal, p.err);
    char *out = p.out;
    p.out = NULL;
    tu_proc_deinit(&p);
    return out;
}

/* The number after "key": in a JSON line; fails when it is absent. */
static double field(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(line, pat);
    if (!at)
        fail_msg("no %s in metrics line '%s'", key, line);
    char *end;
    double v = strtod(at + strlen(pat), &end);
    if (end == at + strlen(pat) || !isfinite(v))
        fail_msg("%s in '%s' is not a finite number", key, line);
    return v;
}

typedef struct metrics {
    char *text;         /* the whole file */
    char *epoch, *last; /* the "epoch" line and the "final" line, NUL-terminated */
    char *report;       /* the "report" line: timings only */
} metrics;

/* Splits the metrics file of a one-epoch run: exactly an epoch line, a final line and the
 * report. */
static metrics read_metrics(const char *path) {
    metrics m = {0};
    size_t len;
    m.text = tu_read_file(path, &len);
    if (!m.text)
        fail_msg("no metrics file %s", path);
    printf("%s", m.text);
    if (tu_count_lines(m.text) != 3 || len == 0 || m.text[len - 1] != '\n')
        fail_msg("%s: expected 3 JSON lines, got:\n%s", path, m.text);
    m.epoch = m.text;
    char *nl = strchr(m.text, '\n');
    *nl = '\0';
    m.last = nl + 1;
    nl = strchr(m.last, '\n');
    *nl = '\0';
    m.report = nl + 1;
    m.report[strlen(m.report) - 1] = '\0';
    if (!strstr(m.epoch, "\"event\":\"epoch\"") || !strstr(m.last, "\"event\":\"final\"") ||
        !strstr(m.report, "\"event\":\"report\""))
        fail_msg("%s: expected an epoch line, a final line, then a report", path);
    if (m.epoch[0] != '{' || m.epoch[strlen(m.epoch) - 1] != '}' || m.last[0] != '{' ||
        m.last[strlen(m.last) - 1] != '}')
        fail_msg("%s: lines are not JSON objects", path);
    return m;
}

/* The line without its timing fields, which are the only ones allowed to vary: both lines
 * have samples_per_sec, the epoch line seconds, the final one wall_s. */
static void strip_timings(char *line) {
    static const char *const keys[] = {",\"samples_per_sec\":", ",\"wall_s\":", ",\"seconds\":"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char *at = strstr(line, keys[k]);
        if (!at && (k == 0 || (k == 1) == (strstr(line, "\"event\":\"final\"") != NULL)))
            fail_msg("no %s in '%s'", keys[k] + 1, line);
        if (!at)
            continue;
        char *end = at + strlen(keys[k]);
        while (*end && *end != ',' && *end != '}')
            end++;
        memmove(at, end, strlen(end) + 1);
    }
}

static void mnist_cnn_learns_and_is_deterministic(void **state) {
    (void)state;
    char path1[1200], path2[1200];
    char *out = train("mnist_cnn", "mnist", "300", "mnist1.jsonl", path1, sizeof path1);
    if (!strstr(out, "54000 train, 6000 validation, 10000 test samples"))
        fail_msg("expected Keras's split of MNIST (54000/6000/10000) in:\n%s", out);
    free(out);
    metrics a = read_metrics(path1);
    assert_int_equal((int)field(a.epoch, "epoch"), 1);
    const double loss = field(a.epoch, "loss"), acc = field(a.last, "test_accuracy");
    const double test_loss = field(a.last, "test_loss");
    /* Today (seed 1, 2 threads): epoch loss 0.56, test accuracy 0.957, test loss 0.136. */
    if (!(acc >= 0.95))
        fail_msg("mnist_cnn test accuracy %.4f after 300 steps, expected >= 0.95", acc);
    if (!(loss < 0.6))
        fail_msg("mnist_cnn epoch loss %.4f, expected < 0.6 (ln 10 = 2.30 at the start)", loss);
    if (!(test_loss < 0.25))
        fail_msg("mnist_cnn test loss %.4f, expected < 0.25", test_loss);
    assert_true(field(a.epoch, "val_accuracy") >= 0.95);
    assert_true(field(a.epoch, "accuracy") > 0.5);

    out = train("mnist_cnn", "mnist", "300", "mnist2.jsonl", path2, sizeof path2);
    free(out);
    metrics b = read_metrics(path2);
    strip_timings(a.epoch);
    strip_timings(a.last);
    strip_timings(b.epoch);
    strip_timings(b.last);
    printf("compared without timings:\n%s\n%s\n", a.epoch, a.last);
    if (strcmp(a.epoch, b.epoch) != 0 || strcmp(a.last, b.last) != 0)
        fail_msg("two runs with the same seed and threads differ:\n%s\n%s\nvs\n%s\n%s", a.epoch,
                 a.last, b.epoch, b.last);
    free(a.text);
    free(b.text);
}

static void fashion_cnn_learns(void **state) {
    (void)state;
    char path[1200];
    char *out = train("fashion_cnn", "fashion-mnist", "200", "fashion.jsonl", path, sizeof path);
    free(out);
    metrics m = read_metrics(path);
    const double acc = field(m.last, "test_accuracy"), loss = field(m.epoch, "loss");
    /* Today (seed 1, 2 threads): test accuracy 0.77, epoch loss 1.05, test loss 0.63. */
    if (!(acc >= 0.72))
        fail_msg("fashion_cnn test accuracy %.4f after 200 steps, expected >= 0.72", acc);
    if (!(loss < 1.4))
        fail_msg("fashion_cnn epoch loss %.4f, expected < 1.4", loss);
    if (!(field(m.last, "test_loss") < 0.9))
        fail_msg("fashion_cnn test loss %.4f, expected < 0.9", field(m.last, "test_loss"));
    free(m.text);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-PSTRAIN\n", argv[0]);
        return 2;
    }
    pstrain = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mnist_cnn_learns_and_is_deterministic),
        cmocka_unit_test(fashion_cnn_learns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
