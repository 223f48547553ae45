/* testutil.c: the shared test helpers (see testutil.h). */
#include "tests/support/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PSTRAIN_TEST_DATA_DIR
#error "PSTRAIN_TEST_DATA_DIR must be defined by the build (tests/CMakeLists.txt)"
#endif

/* --- random inputs --- */

void tu_fill_uniform(float *p, size_t n, float lo, float hi, eng_rng *r) {
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * eng_rng_uniform(r);
}

float *tu_random_floats(size_t n, float lo, float hi, uint64_t seed) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (p) {
        eng_rng r;
        eng_rng_seed(&r, seed);
        tu_fill_uniform(p, n, lo, hi, &r);
    }
    return p;
}

void tu_fill_distinct(float *p, size_t n, float lo, float step, eng_rng *r) {
    uint32_t *perm = malloc(sizeof *perm * (n ? n : 1));
    if (!perm)
        abort();
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    eng_rng_shuffle(r, perm, n);
    for (size_t i = 0; i < n; i++)
        p[i] = lo + step * (float)perm[i];
    free(perm);
}

/* --- the gradient checker --- */

double tu_dot(const float *y, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)y[i] * (double)r[i];
    return s;
}

size_t tu_gradcheck_run(const tu_gradcheck *gc, float *p, size_t n, const float *analytic,
                        tu_loss_fn f, void *ctx, tu_gradcheck_result *res) {
    memset(res, 0, sizeof *res);
    size_t m = gc->max_checks && gc->max_checks < n ? gc->max_checks : n;
    uint32_t *which = malloc(sizeof *which * (n ? n : 1));
    if (!which)
        abort();
    for (size_t i = 0; i < n; i++)
        which[i] = (uint32_t)i;
    if (m < n) { /* a partial Fisher-Yates: the first m of a seeded permutation */
        eng_rng r;
        eng_rng_seed(&r, 0x47524144ull ^ n);
        for (size_t i = 0; i < m; i++) {
            size_t j = i + (size_t)eng_rng_below(&r, n - i);
            uint32_t t = which[i];
            which[i] = which[j];
            which[j] = t;
        }
    }
    const double f0 = gc->kink_tol > 0 ? f(ctx) : 0.0;
    int printed = 0;
    for (size_t k = 0; k < m; k++) {
        const size_t i = which[k];
        const float v = p[i];
        /* The steps actually taken in float, so that rounding of v + eps does not bias
         * the quotient. */
        const float vp = (float)((double)v + gc->eps), vm = (float)((double)v - gc->eps);
        p[i] = vp;
        const double fp = f(ctx);
        p[i] = vm;
        const double fm = f(ctx);
        p[i] = v;
        const double h2 = ((double)vp - (double)v) + ((double)v - (double)vm);
        /* A kink between the probes shows as curvature, and bends the quotient by about as
         * much: skip the element above kink_tol, and allow that much more error below. */
        const double curv = gc->kink_tol > 0 ? fabs(fp + fm - 2.0 * f0) / h2 : 0.0;
        if (curv > gc->kink_tol && gc->kink_tol > 0) {
            res->skipped++;
            continue;
        }
        const double num = (fp - fm) / h2, ana = analytic[i];
        const double abs_err = fabs(num - ana);
        const double scale = fmax(fabs(num), fabs(ana));
        const double rel_err = scale > 0 ? abs_err / scale : 0.0;
        res->checked++;
        if (abs_err > res->max_abs_err)
            res->max_abs_err = abs_err;
        if (abs_err > gc->atol && rel_err > res->max_rel_err)
            res->max_rel_err = rel_err;
        const double tol = gc->atol + gc->rtol * scale + curv;
        if (abs_err > tol) {
            res->failed++;
            if (printed++ < 5)
                printf("  %s[%zu]: analytic %.7g, numeric %.7g (|diff| %.3g > %.3g)\n", gc->what, i,
                       ana, num, abs_err, tol);
        }
    }
    printf("  %s: %zu of %zu elements checked, %zu skipped at kinks, %zu failed; "
           "max |diff| %.3g, max rel (above atol) %.3g\n",
           gc->what, res->checked, n, res->skipped, res->failed, res->max_abs_err,
           res->max_rel_err);
    free(which);
    return res->failed;
}

/* --- files and directories --- */

const char *tu_data_dir(void) {
    const char *env = getenv("PSTRAIN_DATA");
    return env && *env ? env : PSTRAIN_TEST_DATA_DIR;
}

int tu_check_dataset(const char *name, char *msg, size_t msglen) {
    static const char *const files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    const char *dir = tu_data_dir();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096], gz[4200];
        snprintf(path, sizeof path, "%s/%s/%s", dir, name, files[i]);
        snprintf(gz, sizeof gz, "%s.gz", path);
        if (access(path, R_OK) != 0 && access(gz, R_OK) != 0) {
            snprintf(msg, msglen,
                     "data missing: %s (nor .gz) is not readable; this test needs the real %s "
                     "data: run launch/fetch-data, or set PSTRAIN_DATA to the data directory "
                     "(now '%s')",
                     path, name, dir);
            return -1;
        }
    }
    return 0;
}

int tu_mkdtemp(char *buf, size_t len, const char *tag) {
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/pstrain-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    return mkdtemp(buf) ? 0 : -1;
}

static void rmtree_depth(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && depth > 0)
                rmtree_depth(path, depth - 1);
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

void tu_rmtree(const char *dir) { rmtree_depth(dir, 2); }

int tu_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

size_t tu_idx_header(uint8_t *out, int ndim, const uint32_t *dims) {
    out[0] = 0;
    out[1] = 0;
    out[2] = 0x08;
    out[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) {
        out[4 + 4 * d] = (uint8_t)(dims[d] >> 24);
        out[5 + 4 * d] = (uint8_t)(dims[d] >> 16);
        out[6 + 4 * d] = (uint8_t)(dims[d] >> 8);
        out[7 + 4 * d] = (uint8_t)dims[d];
    }
    return 4 + 4 * (size_t)ndim;
}

/* --- running programs --- */

extern char **environ;

int tu_run(tu_proc *p, char *const argv[], const char *const *extra_env) {
    memset(p, 0, sizeof *p);
    char dir[4096], out_path[4200], err_path[4200];
    if (tu_mkdtemp(dir, sizeof dir, "run") != 0)
        return -1;
    snprintf(out_path, sizeof out_path, "%s/stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        tu_rmtree(dir);
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0 || err < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        close(in);
        close(out);
        close(err);
        for (const char *const *e = extra_env; e && *e; e++) {
            char name[256];
            const char *eq = strchr(*e, '=');
            size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
            if (len >= sizeof name)
                _exit(126);
            memcpy(name, *e, len);
            name[len] = '\0';
            if (eq)
                setenv(name, eq + 1, 1);
            else
                unsetenv(name);
        }
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) {
            tu_rmtree(dir);
            return -1;
        }
    p->exited = WIFEXITED(ws);
    p->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    p->signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
#ifdef WCOREDUMP
    p->core_dumped = WIFSIGNALED(ws) && WCOREDUMP(ws);
#endif
    p->out = tu_read_file(out_path, &p->out_len);
    p->err = tu_read_file(err_path, &p->err_len);
    tu_rmtree(dir);
    if (!p->out || !p->err) {
        tu_proc_deinit(p);
        return -1;
    }
    return 0;
}

void tu_proc_deinit(tu_proc *p) {
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

int tu_count_lines(const char *s) {
    int n = 0;
    const char *last = s;
    for (const char *c = s; *c; c++)
        if (*c == '\n') {
            n++;
            last = c + 1;
        }
    return n + (*last != '\0');
}
