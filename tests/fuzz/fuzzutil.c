/* fuzzutil.c: the harnesses' scratch directory and checks (fuzzutil.h). */
#include "tests/fuzz/fuzzutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static char scratch[1024];

/* Removes dir, its files and the files of its subdirectories. */
static void remove_tree(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (d) {
        const struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            struct stat st;
            if (depth > 0 && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(path, depth - 1);
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void remove_scratch(void) {
    if (scratch[0])
        remove_tree(scratch, 1);
}

/* pstrain-fuzz-<tag>-<pid> directories in parent whose process is gone. */
static void remove_leftovers(const char *parent, const char *tag) {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "pstrain-fuzz-%s-", tag);
    DIR *d = opendir(parent);
    if (!d)
        return;
    const struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char *end;
        const long pid = strtol(de->d_name + strlen(prefix), &end, 10);
        if (*end != '\0' || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (or not ours to judge) */
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", parent, de->d_name);
        remove_tree(path, 1);
    }
    closedir(d);
}

const char *fz_dir(const char *tag) {
    if (scratch[0])
        return scratch;
    struct stat st;
    const char *parent = getenv("TMPDIR");
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        parent = "/dev/shm";
    else if (!parent || !*parent)
        parent = "/tmp";
    remove_leftovers(parent, tag);
    snprintf(scratch, sizeof scratch, "%s/pstrain-fuzz-%s-%ld", parent, tag, (long)getpid());
    remove_tree(scratch, 1);
    if (mkdir(scratch, 0700) != 0) {
        fprintf(stderr, "fuzz: cannot make %s: %s\n", scratch, strerror(errno));
        abort();
    }
    atexit(remove_scratch);
    return scratch;
}

void fz_write(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: harness check failed: %s: ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void fz_check_error(int rc, const char *err, const char *name, const char *what) {
    fz_check(rc < 0, "%s returned %d, expected a negative code", what, rc);
    fz_check(err[0] != '\0', "%s failed (%d) with an empty message", what, rc);
    fz_check(strchr(err, '\n') == NULL, "%s: message is more than one line: '%s'", what, err);
    fz_check(strstr(err, name) != NULL, "%s: message does not name %s: '%s'", what, name, err);
}

unsigned fz_touch(const void *p, size_t n) {
    /* Every 8th byte and the last: ASan's redzones are at least 16 bytes, so an allocation
     * shorter than n shows, at an eighth of the cost of reading it all. */
    const volatile unsigned char *b = p;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i += 8)
        sum += b[i];
    return n ? sum + b[n - 1] : sum;
}
