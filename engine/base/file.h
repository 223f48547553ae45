/* file.h: opening a file a user named, refusing anything that is not a regular file before
 * it can block. A FIFO (or a terminal, a socket) given where a data or checkpoint file is
 * expected would make open() or the first read wait for a writer that never comes: every
 * reader of a user-given path opens it here (or, where a library opens it by name, checks it
 * here first). */
#ifndef PSTRAIN_BASE_FILE_H
#define PSTRAIN_BASE_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

/* What st_mode names, for messages: "a regular file", "a FIFO", "a directory", "a socket",
 * "a character device", "a block device", "a symbolic link" or "an unknown kind of file". */
const char *pst_file_kind(unsigned mode);

/* path opened read-only without blocking (O_NONBLOCK, O_CLOEXEC), checked with fstat to be a
 * regular file, then set back to blocking reads: the descriptor into *fd, its stat into *st
 * (NULL: not wanted). Returns PST_OK, or PST_EIO with one line in err: "PATH: cannot open:
 * REASON" or "PATH: expected a regular file, found a FIFO" (nothing left open). */
int pst_open_regular(const char *path, int *fd, struct stat *st, char *err, size_t errlen);

/* The same as a stdio stream ("rb"): NULL with *rc and err on failure. */
FILE *pst_fopen_regular(const char *path, int *rc, char *err, size_t errlen);

/* For a path a library opens by name (HDF5): stat (which never blocks) into *st and the same
 * refusal of anything but a regular file. Returns PST_OK or PST_EIO with err. */
int pst_stat_regular(const char *path, struct stat *st, char *err, size_t errlen);

#endif
