/*
 * fsutil.h — the few file-system moves the engine makes in more than one place: writing a
 * whole file atomically (temporary file, fsync, rename, directory fsync), writing all of a
 * buffer, making the parent directory's entry durable, and removing a directory tree.
 */
#ifndef HYPER_FSUTIL_H
#define HYPER_FSUTIL_H

#include "common.h"

/* Writes n bytes to fd, retrying short writes and EINTR.  0, or -1 with errno set. */
int fs_write_all(int fd, const void *buf, size_t n);

/* fsync of the directory holding path, so that a rename into it is durable.  File systems
 * that cannot sync a directory count as success.  0, or -1 with errno set. */
int fs_sync_parent_dir(const char *path);

/* Replaces path with data (len bytes) so that a reader, or a crash, sees either the old
 * file or the new one: a temporary file beside it (mode 0644), fsync, rename, directory
 * fsync.  On failure the temporary file is removed and err names path. */
hyper_status fs_write_atomic(const char *path, const void *data, size_t len, char *err);

/* Reads a whole file of at most max bytes into *buf (newly allocated, NUL-terminated; *len
 * bytes without the NUL).  When missing_ok and the file does not exist, returns HYPER_OK
 * with *buf NULL.  Larger than max → HYPER_ERR_TOO_LARGE; a directory or an unreadable
 * file → HYPER_ERR_IO; every message names path. */
hyper_status fs_read_file(const char *path, size_t max, int missing_ok, char **buf, size_t *len,
                          char *err);

/* Removes a directory and everything under it (symbolic links are removed, not followed).
 * 0, or -1 with errno set; a missing path is success. */
int fs_remove_tree(const char *path);

#endif
