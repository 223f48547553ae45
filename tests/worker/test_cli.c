/* test_cli.c: `pstrain` on bad input, run as a real process (the path comes as argv[1]).
 * Every bad flag, value, model, data directory or data file must end the program with
 * exit status 2 and exactly one line on stderr that names the flag or file, without a
 * signal or a core dump; --help and summary exit 0.
 *
 * The data-file cases build a temporary data directory of symlinks to the real MNIST files
 * ($PSTRAIN_DATA, else the build's data directory) with one file replaced by a corrupt
 * copy; without the real files they fail and say so.
 *
 * `plot` and `check` run end to end too: plot on small metrics files written here (the PNG's
 * size read from its header), check on the real MNIST files and on a missing directory. */
#define _XOPEN_SOURCE 700 /* realpath */

#include "tests/support/testutil.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static const char *pstrain;

/* Runs pstrain with args (NULL-terminated) and no PSTRAIN_DATA; returns the result. */
static tu_proc run_args(const char *const *args) {
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)pstrain;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    static const char *const env[] = {"PSTRAIN_DATA", NULL};
    tu_proc p;
    if (tu_run(&p, argv, env) != 0)
        fail_msg("cannot run %s", pstrain);
    return p;
}

static void print_cmd(const char *const *args) {
    printf("$ pstrain");
    for (int i = 0; args[i]; i++)
        printf(" %s", args[i]);
    printf("\n");
}

/* Exit status 2, one stderr line containing every needle (NULL-terminated list). */
static void expect_bad_input(const char *const *args, const char *const *needles) {
    print_cmd(args);
    tu_proc p = run_args(args);
    printf("  status %d, stderr: %s", p.status, p.err);
    if (!p.exited)
        fail_msg("killed by signal %d%s", p.signal, p.core_dumped ? " (core dumped)" : "");
    if (p.status != 2)
        fail_msg("exit status %d, expected 2; stderr: %s", p.status, p.err);
    const int lines = tu_count_lines(p.err);
    if (lines != 1 || p.err[p.err_len - 1] != '\n')
        fail_msg("%d lines on stderr, expected exactly one ending in a newline: '%s'", lines,
                 p.err);
    for (int i = 0; needles[i]; i++)
        if (!strstr(p.err, needles[i]))
            fail_msg("stderr '%s' does not name '%s'", p.err, needles[i]);
    tu_proc_deinit(&p);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void unknown_model(void **state) {
    (void)state;
    expect_bad_input(ARGS("train", "--model", "nope"), ARGS("--model", "nope", "mnist_cnn"));
    expect_bad_input(ARGS("summary", "--model", "nope"), ARGS("--model", "nope"));
}

static void missing_model(void **state) {
    (void)state;
    expect_bad_input(ARGS("train", "--epochs", "1"), ARGS("--model"));
    expect_bad_input(ARGS("summary"), ARGS("--model"));
}

static void bad_values(void **state) {
    (void)state;
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--epochs", "0"),
                     ARGS("--epochs", "'0'"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--epochs=0"), ARGS("--epochs", "'0'"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--lr", "abc"), ARGS("--lr", "abc"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--batch", "1.5"),
                     ARGS("--batch", "1.5"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--batch", "-3"), ARGS("--batch", "-3"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--threads", "99999"),
                     ARGS("--threads", "99999"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--val-split", "1"),
                     ARGS("--val-split"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--lr", "nan"), ARGS("--lr", "nan"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--optimizer", "sgd"),
                     ARGS("--optimizer", "sgd"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--clipvalue", "1"),
                     ARGS("--clipvalue"));
    /* denormals compute as 0 (pst_flush_denormals): such a clip would mean none */
    expect_bad_input(
        ARGS("train", "--model", "mnist_cnn", "--optimizer", "rmsprop", "--clipvalue", "1e-45"),
        ARGS("--clipvalue", "smallest normal float32"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--conv", "fft"),
                     ARGS("--conv", "auto, im2col, winograd", "'fft'"));
    expect_bad_input(ARGS("eval", "ck.h5", "--conv", "winograd3"), ARGS("--conv", "'winograd3'"));
    /* A flag without its value. */
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--epochs"), ARGS("--epochs"));
}

/* A GAN's flags: each network's optimizer, and the flags that only a GAN takes. */
static void gan_flags(void **state) {
    (void)state;
    expect_bad_input(ARGS("train", "--model", "mnist_gan", "--gen-optim", "sgd"),
                     ARGS("--gen-optim", "sgd", "adam or rmsprop"));
    expect_bad_input(ARGS("train", "--model", "mnist_gan", "--disc-optim", "rmsprop:lr=0"),
                     ARGS("--disc-optim", "lr=0", "[1e-12, 10]"));
    expect_bad_input(ARGS("train", "--model", "mnist_gan", "--disc-optim", "rmsprop:beta1=0.5"),
                     ARGS("--disc-optim", "beta1"));
    expect_bad_input(
        ARGS("train", "--model", "mnist_gan", "--disc-optim", "rmsprop:clipvalue=1e-40"),
        ARGS("--disc-optim", "clipvalue 0 or at least"));
    expect_bad_input(ARGS("train", "--model", "mnist_gan", "--gen-optim", "adam:lr"),
                     ARGS("--gen-optim", "KEY=VALUE"));
    expect_bad_input(ARGS("train", "--model", "mnist_gan", "--gen-optim", "adam:momentum=0.9"),
                     ARGS("--gen-optim", "momentum"));
    expect_bad_input(ARGS("train", "--model", "mnist_gan", "--lr", "0.1"),
                     ARGS("--lr", "--gen-optim", "--disc-optim"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--samples", "dir"),
                     ARGS("--samples", "mnist_gan"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--judge", "ck.h5"),
                     ARGS("--judge", "mnist_gan"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--ema-decay", "0.999"),
                     ARGS("--ema-decay", "mnist_gan"));
    expect_bad_input(ARGS("train", "--model", "mnist_gan", "--ema-decay", "1"),
                     ARGS("--ema-decay", "'1'"));
    expect_bad_input(ARGS("train", "--model", "mnist_gan", "--ema-decay", "-0.5"),
                     ARGS("--ema-decay"));
    expect_bad_input(ARGS("sample", "--out", "x.png"), ARGS("--checkpoint"));
    expect_bad_input(ARGS("sample", "/nonexistent/ck.h5", "--out", "x.png"),
                     ARGS("/nonexistent/ck.h5"));
    expect_bad_input(ARGS("sample", "ck.h5", "--out", "x.png", "--n", "0"), ARGS("--n", "'0'"));
}

static void unknown_flags_and_commands(void **state) {
    (void)state;
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--bogus", "1"), ARGS("--bogus"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "-x"), ARGS("-x"));
    /* A train-only flag given to summary. */
    expect_bad_input(ARGS("summary", "--model", "mnist_cnn", "--epochs", "3"), ARGS("--epochs"));
    expect_bad_input(ARGS("frobnicate"), ARGS("frobnicate"));
    const char *const none[] = {NULL};
    print_cmd(none);
    tu_proc p = run_args(none);
    assert_true(p.exited);
    assert_int_equal(p.status, 2);
    assert_int_equal(tu_count_lines(p.err), 1);
    tu_proc_deinit(&p);
}

static void help_exits_zero(void **state) {
    (void)state;
    const char *const *cases[] = {ARGS("--help"),
                                  ARGS("-h"),
                                  ARGS("train", "--help"),
                                  ARGS("summary", "--help"),
                                  ARGS("train", "--model", "mnist_cnn", "--help"),
                                  ARGS("plot", "--help"),
                                  ARGS("check", "--help")};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_cmd(cases[i]);
        tu_proc p = run_args(cases[i]);
        if (!p.exited || p.status != 0)
            fail_msg("exit status %d (signal %d), expected 0; stderr: %s", p.status, p.signal,
                     p.err);
        assert_int_equal(p.err_len, 0);
        assert_non_null(strstr(p.out, "usage: pstrain"));
        if (i != 5) /* plot's help has no models */
            assert_non_null(strstr(p.out, "mnist_cnn"));
        if (i < 2) { /* the program's help lists every command */
            assert_non_null(strstr(p.out, "\n  plot "));
            assert_non_null(strstr(p.out, "\n  check "));
        }
        tu_proc_deinit(&p);
    }
}

/* Every line of out at most 100 columns (the help is wrapped to the code's width). */
static void expect_narrow(const char *what, const char *out) {
    for (const char *line = out; *line;) {
        const size_t len = strcspn(line, "\n");
        if (len > 100)
            fail_msg("%s: a line of %zu columns: '%.*s'", what, len, (int)len, line);
        line += len + (line[len] == '\n');
    }
}

static void version_and_help_command(void **state) {
    (void)state;
    tu_proc p = run_args(ARGS("--version"));
    printf("$ pstrain --version\n%s", p.out);
    assert_true(p.exited);
    assert_int_equal(p.status, 0);
    char want[64];
    snprintf(want, sizeof want, "pstrain %s (build ", PSTRAIN_VERSION);
    assert_memory_equal(p.out, want, strlen(want));
    assert_non_null(strstr(p.out, "\nOpenBLAS ")); /* the kernel it runs on */
    tu_proc_deinit(&p);

    /* help COMMAND is COMMAND --help: only that command's flags, wrapped, with the statuses */
    const char *const cmds[] = {"train", "eval", "inspect", "sample", "plot", "check", "summary"};
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        tu_proc h = run_args(ARGS("help", cmds[c]));
        tu_proc f = run_args(ARGS(cmds[c], "--help"));
        assert_true(h.exited && f.exited);
        assert_int_equal(h.status, 0);
        assert_int_equal(f.status, 0);
        assert_string_equal(h.out, f.out);
        expect_narrow(cmds[c], h.out);
        assert_non_null(strstr(h.out, "\n  2 "));
        if (strcmp(cmds[c], "train") == 0) {
            assert_non_null(strstr(h.out, "\n  75 "));
            assert_non_null(strstr(h.out, "--dry-run"));
        } else { /* train's flags and its models are train's */
            assert_null(strstr(h.out, "--epochs"));
            assert_null(strstr(h.out, "--dry-run"));
        }
        if (strcmp(cmds[c], "eval") == 0) {
            assert_null(strstr(h.out, "mnist_gan")); /* eval takes no --model */
            assert_non_null(strstr(h.out, "--judge"));
            assert_null(strstr(h.out, "every epoch")); /* train's sense of --judge */
        }
        tu_proc_deinit(&h);
        tu_proc_deinit(&f);
    }
    p = run_args(ARGS("help"));
    assert_int_equal(p.status, 0);
    expect_narrow("help", p.out);
    assert_non_null(strstr(p.out, "pstrain help COMMAND"));
    tu_proc_deinit(&p);
    expect_bad_input(ARGS("help", "trian"), ARGS("'trian'", "did you mean 'train'?"));
}

static void did_you_mean(void **state) {
    (void)state;
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--epoch", "3"),
                     ARGS("--epoch:", "did you mean --epochs?"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--batch-size", "64"),
                     ARGS("--batch-size:", "did you mean --batch?"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--chekpoint-dir", "ck"),
                     ARGS("--chekpoint-dir:", "did you mean --checkpoint-dir?"));
    expect_bad_input(ARGS("trian", "--model", "mnist_cnn"),
                     ARGS("'trian'", "did you mean 'train'?"));
    /* no guess when nothing is close */
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--frobnicate", "1"),
                     ARGS("--frobnicate: unknown flag for 'train' (pstrain help train"));
    /* a flag of other commands says whose it is */
    expect_bad_input(ARGS("inspect", "ck.h5", "--judge", "j.h5"),
                     ARGS("--judge: not a flag of 'inspect'", "train, eval"));
    /* a value that is the next flag: the value is missing */
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--batch", "--epochs", "3"),
                     ARGS("--batch: expected a value"));
}

/* Each flag lands in its role's config (launch/cmd/config.h) and keeps its checks there: the
 * servers' own flags, and the commands' own, which train does not take. */
static void flags_of_each_role(void **state) {
    (void)state;
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--server-threads", "0"),
                     ARGS("--server-threads", "[1, 64]", "'0'"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--port-range", "9-3"),
                     ARGS("--port-range", "A <= B", "'9-3'"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--on-worker-loss", "wait"),
                     ARGS("--on-worker-loss", "continue or abort", "'wait'"));
    expect_bad_input(ARGS("eval", "ck.h5", "--bind", "127.0.0.1"),
                     ARGS("--bind: not a flag of 'eval'", "train"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--live"),
                     ARGS("--live: not a flag of 'train'", "eval, sample"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--out", "x.png"),
                     ARGS("--out: not a flag of 'train'", "sample, plot"));
}

/* train --dry-run checks what a run would refuse and makes nothing. */
static void dry_run(void **state) {
    (void)state;
    char tmp[1024], ck[1200], msg[1024];
    if (tu_check_dataset("mnist", msg, sizeof msg) != 0)
        fail_msg("%s", msg);
    assert_int_equal(tu_mkdtemp(tmp, sizeof tmp, "dry"), 0);
    snprintf(ck, sizeof ck, "%s/a/b", tmp);
    tu_proc p = run_args(ARGS("train", "--model", "mnist_cnn", "--data", tu_data_dir(), "--servers",
                              "2", "--checkpoint-dir", ck, "--dry-run"));
    printf("$ pstrain train ... --servers 2 --checkpoint-dir %s --dry-run\n%s", ck, p.out);
    assert_true(p.exited);
    assert_int_equal(p.status, 0); /* --servers without mpirun: a dry run need not start it */
    assert_non_null(strstr(p.out, "nothing was run"));
    struct stat st;
    snprintf(ck, sizeof ck, "%s/a", tmp);
    assert_int_not_equal(stat(ck, &st), 0); /* not made */
    tu_proc_deinit(&p);
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--data", tu_data_dir(), "--metrics",
                          "/nonexistent/dir/m.jsonl", "--dry-run"),
                     ARGS("--metrics /nonexistent/dir/m.jsonl", "/nonexistent/dir"));
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--data", "/nonexistent", "--dry-run"),
                     ARGS("/nonexistent/mnist/"));
    /* a run makes --checkpoint-dir with its parents, as Keras's callbacks do */
    snprintf(ck, sizeof ck, "%s/a/b/c", tmp);
    p = run_args(ARGS("train", "--model", "mnist_cnn", "--data", tu_data_dir(), "--epochs", "1",
                      "--max-steps", "2", "--progress", "0", "--threads", "1", "--checkpoint-dir",
                      ck));
    assert_true(p.exited);
    if (p.status != 0)
        fail_msg("status %d: %s", p.status, p.err);
    snprintf(ck, sizeof ck, "%s/a/b/c/latest", tmp);
    assert_int_equal(stat(ck, &st), 0);
    tu_proc_deinit(&p);
    tu_rmtree(tmp);
}

/* A metrics file that cannot be written (a full disk) fails the run, named. */
static void metrics_on_a_full_disk(void **state) {
    (void)state;
    char msg[1024];
    if (tu_check_dataset("mnist", msg, sizeof msg) != 0)
        fail_msg("%s", msg);
    tu_proc p = run_args(ARGS("train", "--model", "mnist_cnn", "--data", tu_data_dir(), "--epochs",
                              "1", "--max-steps", "2", "--progress", "0", "--threads", "1",
                              "--metrics", "/dev/full"));
    printf("$ pstrain train ... --metrics /dev/full\n  status %d, stderr: %s", p.status, p.err);
    assert_true(p.exited);
    assert_int_equal(p.status, 1); /* not the input's fault: the disk's */
    assert_non_null(strstr(p.err, "--metrics /dev/full: cannot write: No space left on device"));
    tu_proc_deinit(&p);
}

static void summary_prints_the_model(void **state) {
    (void)state;
    tu_proc p = run_args(ARGS("summary", "--model", "mnist_cnn"));
    assert_true(p.exited);
    assert_int_equal(p.status, 0);
    assert_int_equal(p.err_len, 0);
    assert_non_null(strstr(p.out, "Total params: 225,034"));
    tu_proc_deinit(&p);
}

/* --- data directories and files --- */

static const char *const mnist_files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

/* tmp/mnist/ with symlinks to the real files, except `replace` (an index into mnist_files),
 * which the caller writes. Fails the test when the real data is missing. */
static void make_data_dir(char *tmp, size_t len, int replace) {
    char msg[1024];
    if (tu_check_dataset("mnist", msg, sizeof msg) != 0)
        fail_msg("%s", msg);
    assert_int_equal(tu_mkdtemp(tmp, len, "cli"), 0);
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/mnist", tmp);
    assert_int_equal(mkdir(sub, 0700), 0);
    for (int i = 0; i < 4; i++) {
        if (i == replace)
            continue;
        char rel[4200], real[PATH_MAX], link[4300];
        snprintf(rel, sizeof rel, "%s/mnist/%s", tu_data_dir(), mnist_files[i]);
        const char *ext = access(rel, R_OK) == 0 ? "" : ".gz";
        snprintf(rel, sizeof rel, "%s/mnist/%s%s", tu_data_dir(), mnist_files[i], ext);
        if (!realpath(rel, real)) /* links must not depend on the working directory */
            fail_msg("realpath %s failed", rel);
        snprintf(link, sizeof link, "%s/%s%s", sub, mnist_files[i], ext);
        if (symlink(real, link) != 0)
            fail_msg("symlink %s -> %s failed", link, real);
    }
}

static void missing_data_dir(void **state) {
    (void)state;
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--max-steps", "1", "--data",
                          "/nonexistent/pstrain-data"),
                     ARGS("/nonexistent/pstrain-data/mnist/train-images-idx3-ubyte"));
}

/* The training labels say 60000 items; 30000 are there. */
static void truncated_data_file(void **state) {
    (void)state;
    char tmp[1024], path[4200];
    make_data_dir(tmp, sizeof tmp, 1);
    snprintf(path, sizeof path, "%s/mnist/train-labels-idx1-ubyte", tmp);
    const uint32_t dims[1] = {60000};
    uint8_t *buf = calloc(1, 8 + 30000);
    assert_non_null(buf);
    tu_idx_header(buf, 1, dims);
    assert_int_equal(tu_write_file(path, buf, 8 + 30000), 0);
    free(buf);
    expect_bad_input(
        ARGS("train", "--model", "mnist_cnn", "--epochs", "1", "--max-steps", "1", "--data", tmp),
        ARGS(path, "truncated"));
    tu_rmtree(tmp);
}

/* A test-images file whose type byte says signed bytes. */
static void wrong_magic_data_file(void **state) {
    (void)state;
    char tmp[1024], path[4200];
    make_data_dir(tmp, sizeof tmp, 2);
    snprintf(path, sizeof path, "%s/mnist/t10k-images-idx3-ubyte", tmp);
    const uint32_t dims[3] = {10000, 28, 28};
    uint8_t head[16];
    tu_idx_header(head, 3, dims);
    head[2] = 0x09;
    assert_int_equal(tu_write_file(path, head, sizeof head), 0);
    expect_bad_input(
        ARGS("train", "--model", "mnist_cnn", "--epochs", "1", "--max-steps", "1", "--data", tmp),
        ARGS(path, "magic"));
    tu_rmtree(tmp);
}

/* Training images of 28x27. */
static void wrong_dimensions_data_file(void **state) {
    (void)state;
    char tmp[1024], path[4200];
    make_data_dir(tmp, sizeof tmp, 0);
    snprintf(path, sizeof path, "%s/mnist/train-images-idx3-ubyte", tmp);
    const uint32_t dims[3] = {60000, 28, 27};
    uint8_t head[16];
    tu_idx_header(head, 3, dims);
    assert_int_equal(tu_write_file(path, head, sizeof head), 0);
    expect_bad_input(
        ARGS("train", "--model", "mnist_cnn", "--epochs", "1", "--max-steps", "1", "--data", tmp),
        ARGS(path, "dimension"));
    tu_rmtree(tmp);
}

static void unwritable_metrics_file(void **state) {
    (void)state;
    char tmp[1024];
    make_data_dir(tmp, sizeof tmp, -1);
    expect_bad_input(ARGS("train", "--model", "mnist_cnn", "--epochs", "1", "--max-steps", "1",
                          "--data", tmp, "--metrics", "/nonexistent/dir/m.jsonl"),
                     ARGS("--metrics", "/nonexistent/dir/m.jsonl"));
    tu_rmtree(tmp);
}

/* --- plot --- */

static const char epoch_lines[] =
    "{\"event\":\"servers\",\"n\":2}\n"
    "{\"event\":\"epoch\",\"epoch\":1,\"loss\":0.2,\"accuracy\":0.94,\"val_loss\":0.08,"
    "\"val_accuracy\":0.97,\"samples_per_sec\":900,\"push_bytes_per_step\":0,\"new\":[1]}\n"
    "\n"
    "{\"event\":\"epoch\",\"epoch\":2,\"loss\":0.1,\"accuracy\":0.97,\"val_loss\":0.06,"
    "\"val_accuracy\":0.98,\"samples_per_sec\":950,\"push_bytes_per_step\":0}\n"
    "{\"event\":\"epoch\",\"epoch\":3,\"loss\":0.07,\"accuracy\":0.98,\"val_loss\":0.05,"
    "\"val_accuracy\":0.985,\"samples_per_sec\":980,\"push_bytes_per_step\":0}\n"
    "{\"event\":\"final\",\"test_loss\":0.04,\"test_accuracy\":0.987,\"samples_per_sec\":970,"
    "\"wall_s\":130}\n";

static const char timed_lines[] =
    "{\"event\":\"epoch\",\"epoch\":1,\"loss\":0.2,\"accuracy\":0.94,\"val_loss\":0.08,"
    "\"val_accuracy\":0.97,\"seconds\":41.5}\n"
    "{\"event\":\"epoch\",\"epoch\":2,\"loss\":0.1,\"accuracy\":0.97,\"val_loss\":0.06,"
    "\"val_accuracy\":0.98,\"seconds\":40.2}\n";

static const char gan_lines[] =
    "{\"event\":\"epoch\",\"epoch\":1,\"d_loss\":0.29,\"g_loss\":4.4,\"d_accuracy\":0.95,"
    "\"samples_per_sec\":329,\"push_bytes_per_step\":1.0e7,\"seconds\":177,"
    "\"inception_score\":4.0,\"frechet\":111}\n"
    "{\"event\":\"epoch\",\"epoch\":2,\"d_loss\":0.72,\"g_loss\":2.4,\"d_accuracy\":0.84,"
    "\"samples_per_sec\":303,\"push_bytes_per_step\":1.0e7,\"seconds\":178,"
    "\"inception_score\":5.0,\"frechet\":76}\n";

/* dir/name <- text; returns the path (one of 16 static buffers, reused in turn). */
static const char *write_metrics(const char *dir, const char *name, const char *text) {
    static char paths[16][4200];
    static int next;
    char *path = paths[next++ % 16];
    snprintf(path, 4200, "%s/%s", dir, name);
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
    return path;
}

/* path is a PNG of width x height (its IHDR chunk says so). */
static void expect_png(const char *path, unsigned width, unsigned height) {
    size_t len = 0;
    unsigned char *b = (unsigned char *)tu_read_file(path, &len);
    if (!b)
        fail_msg("%s: not written", path);
    assert_true(len > 24);
    assert_memory_equal(b, "\x89PNG\r\n\x1a\n", 8);
    assert_memory_equal(b + 12, "IHDR", 4);
    const unsigned w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
    const unsigned h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
    if (w != width || h != height)
        fail_msg("%s: %ux%u, expected %ux%u", path, w, h, width, height);
    free(b);
}

static void plot_bad_input(void **state) {
    (void)state;
    char tmp[1024], out[1100];
    assert_int_equal(tu_mkdtemp(tmp, sizeof tmp, "plot"), 0);
    snprintf(out, sizeof out, "%s/curves.png", tmp);
    expect_bad_input(ARGS("plot", "/nonexistent/m.jsonl", "--out", out),
                     ARGS("/nonexistent/m.jsonl"));
    const char *good = write_metrics(tmp, "good.jsonl", epoch_lines);
    expect_bad_input(ARGS("plot", good), ARGS("--out"));
    expect_bad_input(ARGS("plot", "--out", out), ARGS("metrics"));
    expect_bad_input(ARGS("plot", good, "--out", out, "--epochs", "3"), ARGS("--epochs"));
    /* Line 3 is not JSON (line 2 is blank: lines count as an editor counts them). */
    const char *bad = write_metrics(tmp, "bad.jsonl",
                                    "{\"event\":\"epoch\",\"epoch\":1,\"loss\":0.2}\n"
                                    "\n"
                                    "{\"event\":\"epoch\",\"epoch\":2,\"loss\":0.1\n");
    expect_bad_input(ARGS("plot", bad, "--out", out), ARGS(bad, "line 3"));
    const char *array = write_metrics(tmp, "array.jsonl", "[1, 2]\n");
    expect_bad_input(ARGS("plot", array, "--out", out), ARGS(array, "line 1", "JSON object"));
    const char *str =
        write_metrics(tmp, "str.jsonl", "{\"event\":\"epoch\",\"epoch\":1,\"loss\":\"low\"}\n");
    expect_bad_input(ARGS("plot", str, "--out", out), ARGS(str, "line 1", "\"loss\"", "number"));
    const char *none = write_metrics(
        tmp, "none.jsonl",
        "{\"event\":\"final\",\"test_loss\":0.04,\"test_accuracy\":0.98,\"wall_s\":1}\n");
    expect_bad_input(ARGS("plot", none, "--out", out), ARGS(none, "epoch"));
    const char *empty = write_metrics(tmp, "empty.jsonl", "");
    expect_bad_input(ARGS("plot", empty, "--out", out), ARGS(empty, "epoch"));
    expect_bad_input(ARGS("plot", tmp, "--out", out), ARGS(tmp)); /* a directory */
    expect_bad_input(ARGS("plot", good, "--out", "/nonexistent/dir/c.png"),
                     ARGS("--out", "/nonexistent/dir/c.png"));
    expect_bad_input(ARGS("plot", good, "--out", good), ARGS("--out", good)); /* not over it */
    assert_int_equal(access(out, F_OK), -1); /* nothing written on bad input */
    tu_rmtree(tmp);
}

/* Real files, real PNGs: epochs only without "seconds", both rows with them, a GAN's. */
static void plot_writes_the_png(void **state) {
    (void)state;
    char tmp[1024], out[1100];
    assert_int_equal(tu_mkdtemp(tmp, sizeof tmp, "plot"), 0);
    snprintf(out, sizeof out, "%s/curves.png", tmp);
    const struct {
        const char *name, *text;
        unsigned height;
    } cases[] = {{"epochs.jsonl", epoch_lines, 420},
                 {"timed.jsonl", timed_lines, 800},
                 {"gan.jsonl", gan_lines, 800}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *m = write_metrics(tmp, cases[i].name, cases[i].text);
        const char *const args[] = {"plot", m, "--out", out, "--title", "a run", NULL};
        print_cmd(args);
        tu_proc p = run_args(args);
        if (!p.exited || p.status != 0)
            fail_msg("exit status %d (signal %d), expected 0; stderr: %s", p.status, p.signal,
                     p.err);
        assert_int_equal(p.err_len, 0);
        assert_non_null(strstr(p.out, out));
        expect_png(out, 1200, cases[i].height);
        unlink(out);
        tu_proc_deinit(&p);
    }
    tu_rmtree(tmp);
}

/* --- check --- */

/* The line of `check` that launchers compare, and the OpenBLAS line after it: the first's
 * parts, or a failure naming what is off. */
static void parse_check_line(const char *out, char *layout, char *data, size_t len) {
    char version[32], build[128], model[64], rest[1024];
    if (tu_count_lines(out) != 2 || out[strlen(out) - 1] != '\n')
        fail_msg("expected two lines on stdout, got '%s'", out);
    const char *second = strchr(out, '\n') + 1;
    if (strncmp(second, "OpenBLAS ", 9) != 0 || !strstr(second, " kernel "))
        fail_msg("second line '%s': expected 'OpenBLAS VERSION kernel NAME (WHY)'", second);
    int used = 0;
    if (sscanf(out, "pstrain %31s build %127s model %63s layout %18s %n", version, build, model,
               layout, &used) != 4 ||
        used == 0)
        fail_msg("'%s' is not 'pstrain VERSION build BUILD model NAME layout 0x... data ...'", out);
    assert_string_equal(version, PSTRAIN_VERSION);
    assert_string_equal(model, "mnist_cnn");
    assert_int_equal(strlen(layout), 18);
    assert_memory_equal(layout, "0x", 2);
    assert_int_equal(strspn(layout + 2, "0123456789abcdef"), 16);
    snprintf(rest, sizeof rest, "%s", out + used);
    rest[strcspn(rest, "\n")] = '\0';
    snprintf(data, len, "%s", rest);
}

static void check_prints_its_line(void **state) {
    (void)state;
    char msg[1024];
    if (tu_check_dataset("mnist", msg, sizeof msg) != 0)
        fail_msg("%s", msg);
    const char *const args[] = {"check", "--model", "mnist_cnn", "--data", tu_data_dir(), NULL};
    char first[2048] = "", layout[32], data[1024];
    for (int run = 0; run < 2; run++) {
        print_cmd(args);
        tu_proc p = run_args(args);
        printf("  status %d, stdout: %s", p.status, p.out);
        if (!p.exited || p.status != 0)
            fail_msg("exit status %d (signal %d), expected 0; stderr: %s", p.status, p.signal,
                     p.err);
        assert_int_equal(p.err_len, 0);
        parse_check_line(p.out, layout, data, sizeof data);
        assert_string_equal(data, "data ok");
        if (run == 0)
            snprintf(first, sizeof first, "%s", p.out);
        else
            assert_string_equal(p.out, first); /* the same host, build and data: the same line */
        tu_proc_deinit(&p);
    }
    /* Missing data: still the line, the same layout, and the reason naming a path; exit 2. */
    const char *const missing[] = {
        "check", "--model", "mnist_cnn", "--data", "/nonexistent/pstrain-data", NULL};
    print_cmd(missing);
    tu_proc p = run_args(missing);
    printf("  status %d, stdout: %s", p.status, p.out);
    assert_true(p.exited);
    assert_int_equal(p.status, 2);
    assert_int_equal(p.err_len, 0);
    char layout2[32];
    parse_check_line(p.out, layout2, data, sizeof data);
    assert_string_equal(layout2, layout);
    if (strncmp(data, "data missing: ", 14) != 0 ||
        !strstr(data, "/nonexistent/pstrain-data/mnist/"))
        fail_msg("'%s': expected 'data missing: ' naming /nonexistent/pstrain-data/mnist/...",
                 data);
    tu_proc_deinit(&p);
}

static void check_bad_input(void **state) {
    (void)state;
    expect_bad_input(ARGS("check", "--model", "nope"), ARGS("--model", "nope", "mnist_cnn"));
    expect_bad_input(ARGS("check"), ARGS("--model"));
    expect_bad_input(ARGS("check", "--model", "mnist_cnn", "--epochs", "1"), ARGS("--epochs"));
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-PSTRAIN\n", argv[0]);
        return 2;
    }
    pstrain = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_model),
        cmocka_unit_test(missing_model),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(unknown_flags_and_commands),
        cmocka_unit_test(help_exits_zero),
        cmocka_unit_test(version_and_help_command),
        cmocka_unit_test(did_you_mean),
        cmocka_unit_test(flags_of_each_role),
        cmocka_unit_test(dry_run),
        cmocka_unit_test(metrics_on_a_full_disk),
        cmocka_unit_test(summary_prints_the_model),
        cmocka_unit_test(missing_data_dir),
        cmocka_unit_test(truncated_data_file),
        cmocka_unit_test(wrong_magic_data_file),
        cmocka_unit_test(wrong_dimensions_data_file),
        cmocka_unit_test(unwritable_metrics_file),
        cmocka_unit_test(gan_flags),
        cmocka_unit_test(plot_bad_input),
        cmocka_unit_test(plot_writes_the_png),
        cmocka_unit_test(check_prints_its_line),
        cmocka_unit_test(check_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
