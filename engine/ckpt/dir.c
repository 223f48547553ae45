/* dir.c: a directory of checkpoints: files written atomically under a temporary name, a
 * `latest` pointer replaced the same way, the newest `keep` kept; and what a path means. */
#include "engine/ckpt/format.h"

#include "engine/base/base.h"
#include "engine/base/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_PREFIX ".pstrain-tmp-" /* in-progress files of eng_ckpt_save */

/* Writes data[0..len) to path (created or truncated), fsynced when sync. On failure nothing
 * is left at path. */
int ckpt_write_bytes(const char *path, const void *data, size_t len, int sync, char *err,
                     size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    size_t done = 0;
    int e = 0;
    while (done < len && !e) {
        ssize_t n = write(fd, p + done, len - done);
        if (n > 0)
            done += (size_t)n;
        else if (n == 0 || errno != EINTR)
            e = n == 0 ? EIO : errno;
    }
    if (!e && sync && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (e) {
        unlink(path); /* not a checkpoint: leave nothing that looks like one */
        return pst_err(err, errlen, PST_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return PST_OK;
}

/* --- saving into a directory --- */

/* dir + "/" + name into out; -1 when it does not fit. */
static int join(char *out, size_t len, const char *dir, const char *name) {
    int n = snprintf(out, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* fsync of a directory: what makes a rename in it durable. */
static int fsync_dir(const char *dir, char *err, size_t errlen) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open to fsync: %s", dir, strerror(errno));
    int rc = fsync(fd);
    const int e = errno;
    close(fd);
    /* Some file systems cannot fsync a directory (EINVAL): nothing more can be done there. */
    if (rc != 0 && e != EINVAL)
        return pst_err(err, errlen, PST_EIO, "%s: fsync failed: %s", dir, strerror(e));
    return PST_OK;
}

/* tmp -> final, then the directory's fsync makes the new name durable. */
static int rename_durably(const char *tmp, const char *final, const char *dir, char *err,
                          size_t errlen) {
    if (rename(tmp, final) != 0) {
        const int e = errno;
        unlink(tmp);
        return pst_err(err, errlen, PST_EIO, "%s: cannot rename to %s: %s", tmp, final,
                       strerror(e));
    }
    return fsync_dir(dir, err, errlen);
}

/* The step of a file named exactly as eng_ckpt_save names them ("ckpt-<step>.h5"), into
 * *step; 0 for any other name, which pruning then leaves alone. */
static int ckpt_step(const char *name, int64_t *step) {
    if (strncmp(name, "ckpt-", 5) != 0 || name[5] < '0' || name[5] > '9')
        return 0;
    char *end;
    errno = 0;
    const long long s = strtoll(name + 5, &end, 10);
    char canon[64];
    snprintf(canon, sizeof canon, "ckpt-%lld.h5", s);
    if (errno != 0 || strcmp(end, ".h5") != 0 || strcmp(canon, name) != 0)
        return 0;
    *step = s;
    return 1;
}

static int by_step_desc(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Removes what killed writers left: files named TMP_PREFIX... (one writer per directory: the
 * directory's lock, worker/paths.h wk_dir_lock, keeps a second job out). */
static void remove_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[CKPT_PATH_LEN];
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0 &&
            join(path, sizeof path, dir, e->d_name) == 0)
            unlink(path);
    closedir(d);
}

/* Deletes all but the keep checkpoints with the highest steps, never latest_name. Failures
 * are ignored: the checkpoint is already saved, and the next save tries again. */
static void prune(const char *dir, int keep, const char *latest_name) {
    if (keep <= 0)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    int64_t *steps = NULL, step;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!ckpt_step(e->d_name, &step))
            continue;
        if (n == cap)
            steps = pst_realloc(steps, sizeof *steps * (cap = cap ? 2 * cap : 16));
        steps[n++] = step;
    }
    closedir(d);
    if (steps)
        qsort(steps, n, sizeof *steps, by_step_desc);
    for (size_t i = (size_t)keep; i < n; i++) {
        char name[64], path[CKPT_PATH_LEN];
        snprintf(name, sizeof name, "ckpt-%lld.h5", (long long)steps[i]);
        if (strcmp(name, latest_name) != 0 && join(path, sizeof path, dir, name) == 0)
            unlink(path);
    }
    free(steps);
}

int eng_ckpt_save(const char *dir, int64_t step, const eng_ckpt *c, const eng_model *m, int keep,
                  char *path_out, size_t path_len, char *err, size_t errlen) {
    char name[64], tmp_name[96], final[CKPT_PATH_LEN], tmp[CKPT_PATH_LEN], latest[CKPT_PATH_LEN],
        latest_tmp[CKPT_PATH_LEN], line[80];
    snprintf(name, sizeof name, "ckpt-%lld.h5", (long long)step);
    snprintf(line, sizeof line, "%s\n", name);
    snprintf(tmp_name, sizeof tmp_name, TMP_PREFIX "%ld-%s", (long)getpid(), name);
    if (join(final, sizeof final, dir, name) || join(tmp, sizeof tmp, dir, tmp_name) ||
        join(latest, sizeof latest, dir, "latest") ||
        join(latest_tmp, sizeof latest_tmp, dir, TMP_PREFIX "latest") ||
        (path_out && strlen(final) >= path_len))
        return pst_err(err, errlen, PST_EARG, "%s: path too long", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pst_err(err, errlen, PST_EIO, "%s: cannot create directory: %s", dir,
                       strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pst_err(err, errlen, PST_EIO, "%s: not a directory", dir);
    remove_leftovers(dir);

    /* The checkpoint under a temporary name, durable before it gets its real one. */
    int rc = ckpt_write_file(tmp, c, m, 1, err, errlen);
    if (rc == PST_OK)
        rc = rename_durably(tmp, final, dir, err, errlen);
    /* Only then does latest name it, replaced the same way. */
    if (rc == PST_OK)
        rc = ckpt_write_bytes(latest_tmp, line, strlen(line), 1, err, errlen);
    if (rc == PST_OK)
        rc = rename_durably(latest_tmp, latest, dir, err, errlen);
    if (rc != PST_OK) {
        unlink(tmp);
        unlink(latest_tmp);
        return rc;
    }
    prune(dir, keep, name);
    if (path_out)
        snprintf(path_out, path_len, "%s", final);
    return PST_OK;
}

int eng_ckpt_resolve(const char *file_or_dir, char *out, size_t outlen, char *err, size_t errlen) {
    struct stat st;
    if (stat(file_or_dir, &st) != 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", file_or_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if (!S_ISREG(st.st_mode)) /* a FIFO would block its reader for ever */
            return pst_stat_regular(file_or_dir, &st, err, errlen);
        if ((size_t)snprintf(out, outlen, "%s", file_or_dir) >= outlen)
            return pst_err(err, errlen, PST_EARG, "%s: path too long", file_or_dir);
        return PST_OK;
    }
    char latest[CKPT_PATH_LEN];
    if (join(latest, sizeof latest, file_or_dir, "latest"))
        return pst_err(err, errlen, PST_EARG, "%s: path too long", file_or_dir);
    if (stat(latest, &st) != 0 && errno == ENOENT)
        return pst_err(err, errlen, PST_EIO, "%s: no checkpoint in it (no %s)", file_or_dir,
                       latest);
    int rc;
    FILE *f = pst_fopen_regular(latest, &rc, err, errlen);
    if (!f)
        return rc;
    char name[300];
    size_t n = fread(name, 1, sizeof name - 1, f);
    fclose(f);
    name[n] = '\0';
    if (n > 0 && name[n - 1] == '\n')
        name[--n] = '\0';
    if (n == 0)
        return pst_err(err, errlen, PST_EFORMAT, "%s: empty, expected the name of a checkpoint",
                       latest);
    if (n > 255 || strlen(name) != n || strchr(name, '\n'))
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: expected one line naming a checkpoint file in %s", latest, file_or_dir);
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: names '%s', expected a file name in %s (no '/')", latest, name,
                       file_or_dir);
    if (join(out, outlen, file_or_dir, name))
        return pst_err(err, errlen, PST_EARG, "%s: path too long", file_or_dir);
    if (stat(out, &st) != 0)
        return pst_err(err, errlen, PST_EFORMAT, "%s: names %s, which does not exist as a file",
                       latest, out);
    if (!S_ISREG(st.st_mode))
        return pst_err(err, errlen, PST_EFORMAT, "%s: names %s, expected a regular file, found %s",
                       latest, out, pst_file_kind((unsigned)st.st_mode));
    return PST_OK;
}
