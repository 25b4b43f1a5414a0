/*
 * fsutil.c — atomic whole-file writes and directory removal (fsutil.h).
 */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int fs_sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* some file systems cannot sync a directory; the data itself is already synced */
    if (rc != 0 && (errno == EINVAL || errno == ENOTSUP))
        rc = 0;
    close(fd);
    return rc;
}

hyper_status fs_write_atomic(const char *path, const void *data, size_t len, char *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hyper_status st = hyper_fail(err, HYPER_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        return st;
    }
    /* mkstemp makes 0600; these are ordinary readable files */
    int bad = fchmod(fd, 0644) != 0 || fs_write_all(fd, data, len) != 0 || fsync(fd) != 0;
    int saved = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        unlink(tmp);
        free(tmp);
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(saved));
    }
    free(tmp);
    if (fs_sync_parent_dir(path) != 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: cannot sync its directory: %s", path, strerror(errno));
    return HYPER_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int fs_remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    /* depth first, without following links: children before their directory */
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

hyper_status fs_read_file(const char *path, size_t max, int missing_ok, char **buf, size_t *len,
                          char *err)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (missing_ok && (errno == ENOENT || errno == ENOTDIR))
            return HYPER_OK;
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    }
    hyper_status st = HYPER_OK;
    struct stat sb;
    char *b = NULL;
    size_t n = 0;
    if (fstat(fd, &sb) != 0) {
        st = hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = hyper_fail(err, HYPER_ERR_IO, "%s: is a directory, not a file", path);
        goto out;
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max) {
        st = hyper_fail(err, HYPER_ERR_TOO_LARGE, "%s: larger than the limit of %zu bytes", path, max);
        goto out;
    }
    /* the size is a hint only: the file may change, or not be a regular file */
    size_t cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : 4096;
    if (!(b = malloc(cap))) {
        st = hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (n + 1 == cap) {
            if (n >= max + 1) {
                st = hyper_fail(err, HYPER_ERR_TOO_LARGE, "%s: larger than the limit of %zu bytes", path, max);
                goto out;
            }
            size_t ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;
            char *nb = realloc(b, ncap);
            if (!nb) {
                st = hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", path);
                goto out;
            }
            b = nb;
            cap = ncap;
        }
        ssize_t got = read(fd, b + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            st = hyper_fail(err, HYPER_ERR_IO, "%s: read error: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > max) {
        st = hyper_fail(err, HYPER_ERR_TOO_LARGE, "%s: larger than the limit of %zu bytes", path, max);
        goto out;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
out:
    free(b);
    close(fd);
    return st;
}
