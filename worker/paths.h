/* paths.h: the paths a run writes to, checked and made the way people expect: folders with
 * their parents (as Keras's callbacks make theirs), files replaced whole or not at all.
 * Every error names the flag, the path and what is wrong with it. */
#ifndef PSTRAIN_WORKER_PATHS_H
#define PSTRAIN_WORKER_PATHS_H

#include <stddef.h>

/* Makes dir and any missing parents (mode 0777 less the umask). Returns PST_OK, PST_EARG when
 * dir or one of its parents exists but is not a folder, or PST_EIO with the syscall's reason
 * (permission, a read-only file system); err starts with "--FLAG DIR: ". */
int wk_mkdirs(const char *flag, const char *dir, char *err, size_t errlen);

/* What wk_mkdirs would do, without making anything (a dry run): PST_OK when dir is a folder
 * this process can write into, or when its nearest existing parent is one; else as
 * wk_mkdirs. */
int wk_dir_usable(const char *flag, const char *dir, char *err, size_t errlen);

/* path can be opened for writing: it is a writable file that is not a folder, or it does not
 * exist and its folder does and is writable. PST_OK, or PST_EARG/PST_EIO with err. */
int wk_file_usable(const char *flag, const char *path, char *err, size_t errlen);

/* Writes n buffers, one after another, to path as one file: first under a temporary name
 * beside it, renamed over path only once everything is written and closed, so a full disk
 * leaves the old file (or none), never a partial one. Returns PST_OK, or PST_EIO with the
 * reason (the folder cannot be written, No space left on device). */
int wk_write_whole(const char *flag, const char *path, const void *const *bufs, const size_t *lens,
                   int n, char *err, size_t errlen);

/* The lock file of a folder that one job at a time may write into (a checkpoint directory). */
#define WK_DIR_LOCK ".pstrain-lock"

/* Takes dir's lock for this process: an exclusive flock on dir/WK_DIR_LOCK (created when
 * missing), which then names its holder ("host H pid P started 2026-12-07T07:30:00Z"), so
 * that a second job is told whose the folder is. The lock goes with the descriptor: at
 * wk_dir_unlock, at exit, and when the process dies however it dies (the kernel drops it), so
 * a killed job never leaves the folder locked. *fd gets the descriptor (close-on-exec).
 * Returns PST_OK, PST_EARG when another process holds the lock (err names the holder:
 * "--FLAG DIR: in use by another job (host H pid P started T), ..."), or PST_EIO. */
int wk_dir_lock(const char *flag, const char *dir, int *fd, char *err, size_t errlen);

/* Releases a lock wk_dir_lock took and sets *fd to -1 (accepts -1). The file stays: removing
 * it would let a third job lock a new file while a second waits on the old one. */
void wk_dir_unlock(int *fd);

#endif
