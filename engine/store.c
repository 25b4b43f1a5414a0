/*
 * store.c — the local implementation of store.h: record NS/KEY under the data directory,
 * written with fs_write_atomic (temporary beside it, fsync, rename, directory fsync).
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

typedef struct {
    store base;                 /* first */
    char dir[PATH_MAX];
} local_store;

int store_key_valid(const char *key)
{
    const size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > STORE_KEY_MAX || key[0] == '.' || strstr(key, FS_TMP_INFIX))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return 0;
    }
    return 1;
}

void store_keys_free(char **keys, size_t n)
{
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
}

/* DIR/NS (key NULL) or DIR/NS/KEY into buf; HYPER_ERR_ARG for a bad name. */
static hyper_status record_path(const local_store *ls, const char *ns, const char *key, char *buf, char *err)
{
    if (!store_key_valid(ns))
        return hyper_fail(err, HYPER_ERR_ARG, "'%.*s' is not a namespace of the store", STORE_KEY_MAX, ns ? ns : "");
    if (key && !store_key_valid(key))
        return hyper_fail(err, HYPER_ERR_ARG, "'%.*s' is not a key of the store", STORE_KEY_MAX, key);
    const int n = key ? snprintf(buf, PATH_MAX, "%s/%s/%s", ls->dir, ns, key) : snprintf(buf, PATH_MAX, "%s/%s", ls->dir, ns);
    if (n < 0 || n >= PATH_MAX)
        return hyper_fail(err, HYPER_ERR_ARG, "%s/%s: the path is too long", ls->dir, ns);
    return HYPER_OK;
}

static hyper_status local_prepare(store *s, const char *ns, char *err)
{
    local_store *ls = (local_store *)s;
    char path[PATH_MAX];
    hyper_status rc = record_path(ls, ns, NULL, path, err);
    if (rc == HYPER_OK && mkdir(path, 0755) != 0 && errno != EEXIST)
        rc = hyper_fail(err, fs_errno_status(errno), "%s: %s", path, strerror(errno));
    return rc;
}

static hyper_status local_put(store *s, const char *ns, const char *key, const void *data, size_t len, char *err)
{
    local_store *ls = (local_store *)s;
    char path[PATH_MAX];
    hyper_status rc = local_prepare(s, ns, err); /* a namespace nobody prepared */
    if (rc == HYPER_OK)
        rc = record_path(ls, ns, key, path, err);
    return rc == HYPER_OK ? fs_write_atomic(path, data, len, err) : rc;
}

static hyper_status local_get(store *s, const char *ns, const char *key, size_t max, char **data, size_t *len,
                              char *err)
{
    local_store *ls = (local_store *)s;
    char path[PATH_MAX];
    *data = NULL;
    *len = 0;
    hyper_status rc = record_path(ls, ns, key, path, err);
    if (rc == HYPER_OK && (rc = fs_read_file(path, max, 1, data, len, err)) == HYPER_OK && !*data)
        rc = hyper_fail(err, HYPER_ERR_NOT_FOUND, "%s: no such record", path);
    return rc;
}

static hyper_status local_del(store *s, const char *ns, const char *key, char *err)
{
    local_store *ls = (local_store *)s;
    char path[PATH_MAX];
    hyper_status rc = record_path(ls, ns, key, path, err);
    if (rc != HYPER_OK)
        return rc;
    if (unlink(path) != 0)
        return hyper_fail(err, errno == ENOENT ? HYPER_ERR_NOT_FOUND : HYPER_ERR_IO, "%s: %s", path,
                          strerror(errno));
    return HYPER_OK;
}

static hyper_status local_list(store *s, const char *ns, char ***keys, size_t *n, char *err)
{
    local_store *ls = (local_store *)s;
    char path[PATH_MAX];
    *keys = NULL;
    *n = 0;
    hyper_status rc = record_path(ls, ns, NULL, path, err);
    if (rc != HYPER_OK)
        return rc;
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? HYPER_OK : hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 0;
    struct dirent *de;
    while (rc == HYPER_OK && (de = readdir(d))) {
        if (!store_key_valid(de->d_name)) /* ".", "..", temporaries, names the store never writes */
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **k = realloc(*keys, cap * sizeof *k);
            if (!k) {
                rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
                break;
            }
            *keys = k;
        }
        if (!((*keys)[*n] = strdup(de->d_name)))
            rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
        else
            (*n)++;
    }
    closedir(d);
    if (rc != HYPER_OK) {
        store_keys_free(*keys, *n);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

static void local_close(store *s) { free(s); }

static const store_ops local_ops = {"local", local_prepare, local_put, local_get, local_del, local_list, local_close};

hyper_status store_open_local(store **out, const char *dir, char *err)
{
    *out = NULL;
    local_store *ls = calloc(1, sizeof *ls);
    if (!ls)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    if (snprintf(ls->dir, sizeof ls->dir, "%s", dir) >= (int)sizeof ls->dir) {
        free(ls);
        return hyper_fail(err, HYPER_ERR_ARG, "%s: path too long", dir);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        free(ls);
        return hyper_fail(err, fs_errno_status(errno), "%s: %s", dir, strerror(errno));
    }
    ls->base.ops = &local_ops;
    *out = &ls->base;
    return HYPER_OK;
}
