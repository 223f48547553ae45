/* file.c: user-given files opened without blocking on what is not a regular file. */
#include "engine/base/file.h"

#include "engine/base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

const char *pst_file_kind(unsigned mode) {
    const mode_t m = (mode_t)mode;
    return S_ISREG(m)    ? "a regular file"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISDIR(m)  ? "a directory"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISLNK(m)  ? "a symbolic link"
                         : "an unknown kind of file";
}

static int not_regular(const char *path, const struct stat *st, char *err, size_t errlen) {
    return pst_err(err, errlen, PST_EIO, "%s: expected a regular file, found %s", path,
                   pst_file_kind((unsigned)st->st_mode));
}

int pst_open_regular(const char *path, int *fd, struct stat *st, char *err, size_t errlen) {
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO for reading waits for a writer otherwise */
    const int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat s;
    int rc = PST_OK;
    if (fstat(f, &s) != 0)
        rc = pst_err(err, errlen, PST_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(s.st_mode))
        rc = not_regular(path, &s, err, errlen);
    else {
        /* a regular file never blocks, but its readers expect blocking semantics */
        const int fl = fcntl(f, F_GETFL);
        if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0)
            rc = pst_err(err, errlen, PST_EIO, "%s: cannot set blocking reads: %s", path,
                         strerror(errno));
    }
    if (rc != PST_OK) {
        close(f);
        return rc;
    }
    if (st)
        *st = s;
    *fd = f;
    return PST_OK;
}

FILE *pst_fopen_regular(const char *path, int *rc, char *err, size_t errlen) {
    int fd;
    *rc = pst_open_regular(path, &fd, NULL, err, errlen);
    if (*rc != PST_OK)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        *rc = pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

int pst_stat_regular(const char *path, struct stat *st, char *err, size_t errlen) {
    if (stat(path, st) != 0)
        return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    return S_ISREG(st->st_mode) ? PST_OK : not_regular(path, st, err, errlen);
}
