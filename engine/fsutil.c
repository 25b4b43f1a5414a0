/*
 * fsutil.c — atomic whole-file writes and directory removal (fsutil.h).
 */
#include "fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

hyper_status fs_errno_status(int e)
{
    return e == ENOSPC || e == EDQUOT ? HYPER_ERR_NOSPACE : HYPER_ERR_IO;
}

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
    snprintf(tmp, plen + 16, "%s" FS_TMP_INFIX "XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hyper_status st = hyper_fail(err, fs_errno_status(errno), "%s: cannot create a temporary file: %s", path,
                                     strerror(errno));
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
        return hyper_fail(err, fs_errno_status(saved), "%s: %s", path, strerror(saved));
    }
    free(tmp);
    if (fs_sync_parent_dir(path) != 0)
        return hyper_fail(err, fs_errno_status(errno), "%s: cannot sync its directory: %s", path, strerror(errno));
    return HYPER_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int fs_is_temporary(const char *name)
{
    const char *infix = strstr(name, FS_TMP_INFIX);
    if (!infix || infix == name)
        return 0;
    const char *tail;
    while ((tail = strstr(infix + 1, FS_TMP_INFIX)) != NULL) /* the last one */
        infix = tail;
    tail = infix + strlen(FS_TMP_INFIX);
    if (strlen(tail) != 6)
        return 0;
    for (int k = 0; k < 6; k++)
        if (!isalnum((unsigned char)tail[k]))
            return 0;
    return 1;
}

static long swept;

static int sweep_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    if (flag == FTW_F && fs_is_temporary(path + ftw->base) && unlink(path) == 0)
        swept++;
    return 0;
}

long fs_sweep_temporaries(const char *dir)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* nftw's callback has no user pointer */
    pthread_mutex_lock(&mu);
    swept = 0;
    int rc = nftw(dir, sweep_entry, 16, FTW_PHYS);
    long n = rc == 0 ? swept : -1;
    pthread_mutex_unlock(&mu);
    return n;
}

int fs_lock_file(const char *path, long *holder)
{
    *holder = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            *holder = strtol(buf, NULL, 10);
        }
        close(fd);
        errno = e;
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        const int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
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
