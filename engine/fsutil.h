/*
 * fsutil.h — the few file-system moves the engine makes in more than one place: writing a
 * whole file atomically (temporary file, fsync, rename, directory fsync), writing all of a
 * buffer, making the parent directory's entry durable, and removing a directory tree.
 */
#ifndef HYPER_FSUTIL_H
#define HYPER_FSUTIL_H

#include "common.h"

/* The status of a failed write's errno: HYPER_ERR_NOSPACE for a full disk or quota
 * (ENOSPC, EDQUOT), HYPER_ERR_IO for the rest. */
hyper_status fs_errno_status(int e);

/* Writes n bytes to fd, retrying short writes and EINTR.  0, or -1 with errno set. */
int fs_write_all(int fd, const void *buf, size_t n);

/* fsync of the directory holding path, so that a rename into it is durable.  File systems
 * that cannot sync a directory count as success.  0, or -1 with errno set. */
int fs_sync_parent_dir(const char *path);

/* The name of the temporary file beside path that an atomic write goes through is path +
 * FS_TMP_INFIX + six characters of mkstemp's; fs_sweep_temporaries knows them by it. */
#define FS_TMP_INFIX ".tmp."

/* Replaces path with data (len bytes) so that a reader, or a crash, sees either the old
 * file or the new one: a temporary file beside it (mode 0644), fsync, rename, directory
 * fsync.  On failure the temporary file is removed, err names path and the cause, and the
 * status is HYPER_ERR_NOSPACE when the disk is full (else HYPER_ERR_IO). */
hyper_status fs_write_atomic(const char *path, const void *data, size_t len, char *err);

/* Reads a whole file of at most max bytes into *buf (newly allocated, NUL-terminated; *len
 * bytes without the NUL).  When missing_ok and the file does not exist, returns HYPER_OK
 * with *buf NULL.  Larger than max → HYPER_ERR_TOO_LARGE; a directory or an unreadable
 * file → HYPER_ERR_IO; every message names path. */
hyper_status fs_read_file(const char *path, size_t max, int missing_ok, char **buf, size_t *len,
                          char *err);

/* Whether a file name is that of an atomic write's temporary (NAME.tmp.XXXXXX). */
int fs_is_temporary(const char *name);

/* Removes, under dir and its subdirectories (links not followed), every file whose name is
 * an atomic write's temporary: what a crash in the middle of a write leaves.  Only for a
 * directory this process owns alone (a writer elsewhere may be half-way).  Returns the
 * count removed, or -1 with errno set when dir cannot be walked. */
long fs_sweep_temporaries(const char *dir);

/* Takes an exclusive lock (flock) on the file path, made if missing, and writes this
 * process's id into it.  Returns the open descriptor, which holds the lock until it is
 * closed or the process ends (a kill -9 too); -1 with errno set otherwise: EWOULDBLOCK when
 * another process holds it, whose id is then in *holder (0 when it cannot be read). */
int fs_lock_file(const char *path, long *holder);

/* Removes a directory and everything under it (symbolic links are removed, not followed).
 * 0, or -1 with errno set; a missing path is success. */
int fs_remove_tree(const char *path);

#endif
