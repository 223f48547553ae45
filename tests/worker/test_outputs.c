/* test_outputs.c: what a run writes besides its checkpoints, on real files: the metrics
 * lines (JSON that stays JSON when a loss diverges, and a write that fails is reported), the
 * folders made with their parents, and files replaced whole on a disk that fills up. A full
 * disk is made real with RLIMIT_FSIZE: the kernel refuses writes past the limit (EFBIG), as
 * it refuses them on a full file system (ENOSPC). */
#include "engine/base/base.h"
#include "tests/support/testutil.h"
#include "worker/paths.h"
#include "worker/report/progress.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char tmp[1024];

static int setup(void **state) {
    (void)state;
    return tu_mkdtemp(tmp, sizeof tmp, "outputs");
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

/* A loss that became NaN is null in the metrics file, and every line parses as JSON. */
static void metrics_nan_is_null(void **state) {
    (void)state;
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s/m.jsonl", tmp);
    wk_progress p;
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    assert_int_equal(wk_progress_init(&p, out, path, 0, 2, 10, err, sizeof err), PST_OK);
    wk_epoch_report r = {.epoch = 1,
                         .loss = NAN,
                         .accuracy = 0.1,
                         .val_loss = INFINITY,
                         .val_accuracy = 0.1,
                         .samples_per_sec = 100,
                         .seconds = 1.5};
    wk_progress_epoch_end(&p, &r);
    wk_progress_final(&p, NAN, 0.1, 100, 3.0);
    assert_int_equal(wk_progress_check(&p, err, sizeof err), PST_OK);
    wk_progress_deinit(&p);
    fclose(out);

    size_t len;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    printf("%s", text);
    assert_null(strstr(text, "nan"));
    assert_null(strstr(text, "inf"));
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        if (!j)
            fail_msg("not JSON: '%s': %s", line, jerr.text);
        const char *key = lines == 0 ? "loss" : "test_loss";
        assert_true(json_is_null(json_object_get(j, key)));
        if (lines == 0) {
            assert_true(json_is_null(json_object_get(j, "val_loss")));
            assert_true(fabs(json_real_value(json_object_get(j, "seconds")) - 1.5) < 1e-9);
            assert_int_equal(json_integer_value(json_object_get(j, "epoch")), 1);
        }
        json_decref(j);
    }
    assert_int_equal(lines, 2);
    free(text);
}

/* A metrics file that cannot be opened, and one on a full disk: the failure is reported,
 * naming the flag and file. */
static void metrics_full_disk_is_reported(void **state) {
    (void)state;
    char err[512];
    wk_progress p;
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    assert_int_equal(
        wk_progress_init(&p, out, "/nonexistent/dir/m.jsonl", 0, 1, 10, err, sizeof err), PST_EIO);
    printf("%s\n", err);
    assert_non_null(strstr(err, "--metrics: /nonexistent/dir/m.jsonl: "));
    assert_int_equal(wk_progress_init(&p, out, "/dev/full", 0, 1, 10, err, sizeof err), PST_OK);
    assert_int_equal(wk_progress_check(&p, err, sizeof err), PST_OK); /* nothing written yet */
    wk_epoch_report r = {.epoch = 1, .loss = 0.5, .accuracy = 0.9, .seconds = 1};
    wk_progress_epoch_end(&p, &r);
    assert_int_equal(wk_progress_check(&p, err, sizeof err), PST_EIO);
    printf("%s\n", err);
    assert_string_equal(err, "--metrics /dev/full: cannot write: No space left on device");
    wk_progress_deinit(&p);
    fclose(out);
}

/* Folders are made with their parents; a file in the way is bad input; a dry check makes
 * nothing. */
static void folders_with_parents(void **state) {
    (void)state;
    char dir[1200], file[1200], err[512];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/x/y/z/", tmp);
    assert_int_equal(wk_dir_usable("samples", dir, err, sizeof err), PST_OK);
    snprintf(file, sizeof file, "%s/x", tmp);
    assert_int_not_equal(stat(file, &st), 0); /* the check made nothing */
    assert_int_equal(wk_mkdirs("samples", dir, err, sizeof err), PST_OK);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(wk_mkdirs("samples", dir, err, sizeof err), PST_OK); /* already there */

    snprintf(file, sizeof file, "%s/plain", tmp);
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    snprintf(dir, sizeof dir, "%s/plain/sub", tmp);
    assert_int_equal(wk_mkdirs("checkpoint-dir", dir, err, sizeof err), PST_EARG);
    printf("%s\n", err);
    assert_non_null(strstr(err, "--checkpoint-dir "));
    assert_non_null(strstr(err, "is not a folder"));
    assert_int_equal(wk_dir_usable("checkpoint-dir", dir, err, sizeof err), PST_EARG);
    assert_int_equal(wk_dir_usable("checkpoint-dir", file, err, sizeof err), PST_EARG);
    assert_int_equal(wk_file_usable("metrics", file, err, sizeof err), PST_OK);
    assert_int_equal(wk_file_usable("metrics", dir, err, sizeof err), PST_EIO); /* no folder */
    snprintf(dir, sizeof dir, "%s/x", tmp);
    assert_int_equal(wk_file_usable("metrics", dir, err, sizeof err), PST_EARG); /* a folder */
}

/* wk_write_whole on a disk that fills up mid-file: the old file stays as it was, and no
 * temporary file is left beside it. */
static void whole_files_or_none(void **state) {
    (void)state;
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s/w.bin", tmp);
    static char big[64 * 1024];
    memset(big, 7, sizeof big);
    const void *bufs[2] = {"old", big};
    size_t lens[2] = {3, 0};
    assert_int_equal(wk_write_whole("dump-weights", path, bufs, lens, 1, err, sizeof err), PST_OK);

    struct rlimit was, full = {.rlim_cur = 16 * 1024};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    full.rlim_max = was.rlim_max;
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
    bufs[0] = "new";
    lens[1] = sizeof big;
    const int rc = wk_write_whole("dump-weights", path, bufs, lens, 2, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, old);
    assert_int_equal(rc, PST_EIO);
    printf("%s\n", err);
    assert_non_null(strstr(err, "--dump-weights "));
    assert_non_null(strstr(err, "nothing written"));

    size_t len;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    assert_int_equal(len, 3);
    assert_memory_equal(text, "old", 3); /* the old file, whole */
    free(text);
    char tmpfile[1300];
    snprintf(tmpfile, sizeof tmpfile, "%s.tmp-%ld", path, (long)getpid());
    assert_int_not_equal(access(tmpfile, F_OK), 0);

    /* and with room, the new one, whole */
    assert_int_equal(wk_write_whole("dump-weights", path, bufs, lens, 2, err, sizeof err), PST_OK);
    text = tu_read_file(path, &len);
    assert_non_null(text);
    assert_int_equal(len, 3 + sizeof big);
    assert_memory_equal(text, "new", 3);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_nan_is_null),
        cmocka_unit_test(metrics_full_disk_is_reported),
        cmocka_unit_test(folders_with_parents),
        cmocka_unit_test(whole_files_or_none),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
