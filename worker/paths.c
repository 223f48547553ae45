/* paths.c: folders made with their parents, files replaced whole (worker/paths.h). */
#include "worker/paths.h"

#include "engine/base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_LEN 4096

/* The part of path before its last '/', "." when it has none, "/" for "/x". */
static void parent_of(const char *path, char *out, size_t len) {
    snprintf(out, len, "%s", path);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') /* "a/b/" is "a/b" */
        out[--n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, len, ".");
    else if (slash == out)
        out[1] = '\0';
    else
        *slash = '\0';
}

/* dir exists as a folder this process may write into: PST_OK, else a code with err. */
static int writable_dir(const char *flag, const char *given, const char *dir, char *err,
                        size_t errlen) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return pst_err(err, errlen, PST_EIO, "--%s %s: %s: %s", flag, given, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return pst_err(err, errlen, PST_EARG, "--%s %s: %s is not a folder", flag, given, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return pst_err(err, errlen, PST_EIO, "--%s %s: cannot write into %s: %s", flag, given, dir,
                       strerror(errno));
    return PST_OK;
}

int wk_mkdirs(const char *flag, const char *dir, char *err, size_t errlen) {
    char path[PATH_LEN];
    if (!dir[0] || strlen(dir) >= sizeof path)
        return pst_err(err, errlen, PST_EARG, "--%s: expected a folder's path of 1 to %zu bytes",
                       flag, sizeof path - 1);
    snprintf(path, sizeof path, "%s", dir);
    /* Each prefix that ends before a '/', then the whole path. */
    for (char *p = path + 1;; p++) {
        const char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return pst_err(err, errlen, PST_EIO, "--%s %s: cannot create %s: %s", flag, dir, path,
                           strerror(errno));
        struct stat st;
        if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
            return pst_err(err, errlen, PST_EARG, "--%s %s: %s exists and is not a folder", flag,
                           dir, path);
        *p = c;
        if (c == '\0')
            break;
    }
    return writable_dir(flag, dir, dir, err, errlen);
}

int wk_dir_usable(const char *flag, const char *dir, char *err, size_t errlen) {
    char path[PATH_LEN], up[PATH_LEN];
    if (!dir[0] || strlen(dir) >= sizeof path)
        return pst_err(err, errlen, PST_EARG, "--%s: expected a folder's path of 1 to %zu bytes",
                       flag, sizeof path - 1);
    snprintf(path, sizeof path, "%s", dir);
    struct stat st;
    while (stat(path, &st) != 0) {               /* the nearest part that exists */
        if (errno != ENOENT && errno != ENOTDIR) /* ENOTDIR: a file on the way, said below */
            return pst_err(err, errlen, PST_EIO, "--%s %s: %s: %s", flag, dir, path,
                           strerror(errno));
        parent_of(path, up, sizeof up);
        snprintf(path, sizeof path, "%s", up);
    }
    return writable_dir(flag, dir, path, err, errlen);
}

int wk_file_usable(const char *flag, const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return pst_err(err, errlen, PST_EARG, "--%s %s: is a folder, expected a file", flag,
                           path);
        if (access(path, W_OK) != 0)
            return pst_err(err, errlen, PST_EIO, "--%s %s: cannot write: %s", flag, path,
                           strerror(errno));
        return PST_OK;
    }
    if (errno != ENOENT)
        return pst_err(err, errlen, PST_EIO, "--%s %s: %s", flag, path, strerror(errno));
    char dir[PATH_LEN];
    parent_of(path, dir, sizeof dir);
    if (stat(dir, &st) != 0)
        return pst_err(err, errlen, PST_EIO, "--%s %s: its folder %s does not exist", flag, path,
                       dir);
    return writable_dir(flag, path, dir, err, errlen);
}

int wk_write_whole(const char *flag, const char *path, const void *const *bufs, const size_t *lens,
                   int n, char *err, size_t errlen) {
    char tmp[PATH_LEN + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return pst_err(err, errlen, PST_EIO, "--%s %s: cannot write %s: %s", flag, path, tmp,
                       strerror(errno));
    int ok = 1;
    for (int i = 0; ok && i < n; i++)
        ok = fwrite(bufs[i], 1, lens[i], f) == lens[i];
    ok = fflush(f) == 0 && ok;
    int why = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        why = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        why = errno;
    }
    if (!ok) {
        unlink(tmp);
        return pst_err(err, errlen, PST_EIO, "--%s %s: cannot write: %s (nothing written)", flag,
                       path, strerror(why));
    }
    return PST_OK;
}

/* The holder's line in the lock file at fd into buf, printable, "" when it has not written it
 * yet (it writes it just after it takes the lock). */
static void lock_holder(int fd, char *buf, size_t len) {
    ssize_t n = pread(fd, buf, len - 1, 0);
    n = n < 0 ? 0 : n;
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n') {
            buf[i] = '\0';
            break;
        } else if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f) {
            buf[i] = '?';
        }
}

int wk_dir_lock(const char *flag, const char *dir, int *fd, char *err, size_t errlen) {
    char path[PATH_LEN + 32];
    *fd = -1;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, WK_DIR_LOCK) >= sizeof path)
        return pst_err(err, errlen, PST_EARG, "--%s %s: path too long", flag, dir);
    const int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (f < 0)
        return pst_err(err, errlen, PST_EIO, "--%s %s: cannot open its lock %s: %s", flag, dir,
                       path, strerror(errno));
    int rc;
    while ((rc = flock(f, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        const int e = errno;
        char holder[256] = "";
        /* the holder names itself just after it locks: give it a moment (2 s at most) */
        for (int i = 0; i < 20 && e == EWOULDBLOCK; i++) {
            lock_holder(f, holder, sizeof holder);
            if (holder[0])
                break;
            nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
        }
        close(f);
        if (e != EWOULDBLOCK)
            return pst_err(err, errlen, PST_EIO, "--%s %s: cannot lock %s: %s", flag, dir, path,
                           strerror(e));
        return pst_err(err, errlen, PST_EARG,
                       "--%s %s: in use by another job (%s; it holds %s): one job per "
                       "checkpoint directory, give this one another --%s",
                       flag, dir, holder[0] ? holder : "its holder has not named itself", path,
                       flag);
    }
    char host[256] = "?", line[512], when[32] = "?";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    const time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const int n =
        snprintf(line, sizeof line, "host %s pid %ld started %s\n", host, (long)getpid(), when);
    if (ftruncate(f, 0) != 0 || pwrite(f, line, (size_t)n, 0) != n) {
        const int e = errno;
        close(f);
        return pst_err(err, errlen, PST_EIO, "--%s %s: cannot write its lock %s: %s", flag, dir,
                       path, strerror(e));
    }
    *fd = f;
    return PST_OK;
}

void wk_dir_unlock(int *fd) {
    if (*fd >= 0)
        close(*fd); /* drops the flock */
    *fd = -1;
}
