/*
 * store.h — where what users create is kept: named records in namespaces ("sessions", and
 * next jobs, datasets' catalog, models), each written whole and replaced atomically, so a
 * reader or a crash sees the old record or the new one, never a mix.  One small interface
 * with an implementation per place: the local data directory here (NS/KEY files, each
 * written through a synced temporary and a rename); the replicas issue adds Redis and a
 * shared directory behind the same calls.  The runtime holds no lock of its own across
 * these calls: they may wait for a disk or a network.
 *
 * Keys are 1..STORE_KEY_MAX bytes of [A-Za-z0-9_.-], not starting with '.', and never
 * holding ".tmp." (the temporaries' mark); namespaces follow the same rule.  Errors name
 * the record; a full disk is HYPER_ERR_NOSPACE, a missing record HYPER_ERR_NOT_FOUND.
 */
#ifndef HYPER_STORE_H
#define HYPER_STORE_H

#include "common.h"

#define STORE_KEY_MAX 128

typedef struct store store;

typedef struct {
    const char *name;           /* "local" */
    /* makes namespace ns ready to be written (local: its directory), at start */
    hyper_status (*prepare)(store *s, const char *ns, char *err);
    hyper_status (*put)(store *s, const char *ns, const char *key, const void *data, size_t len, char *err);
    /* *data newly allocated (NUL-terminated, *len bytes before it); at most max bytes */
    hyper_status (*get)(store *s, const char *ns, const char *key, size_t max, char **data, size_t *len,
                        char *err);
    hyper_status (*del)(store *s, const char *ns, const char *key, char *err);
    /* every key of ns (in no particular order): *keys newly allocated, store_keys_free */
    hyper_status (*list)(store *s, const char *ns, char ***keys, size_t *n, char *err);
    void (*close)(store *s);
} store_ops;

struct store {
    const store_ops *ops;
};

/* The local data directory dir (made when missing). */
hyper_status store_open_local(store **out, const char *dir, char *err);

int store_key_valid(const char *key);
void store_keys_free(char **keys, size_t n);

static inline hyper_status store_prepare(store *s, const char *ns, char *err)
{
    return s->ops->prepare(s, ns, err);
}
static inline hyper_status store_put(store *s, const char *ns, const char *key, const void *data, size_t len,
                                     char *err)
{
    return s->ops->put(s, ns, key, data, len, err);
}
static inline hyper_status store_get(store *s, const char *ns, const char *key, size_t max, char **data,
                                     size_t *len, char *err)
{
    return s->ops->get(s, ns, key, max, data, len, err);
}
static inline hyper_status store_del(store *s, const char *ns, const char *key, char *err)
{
    return s->ops->del(s, ns, key, err);
}
static inline hyper_status store_list(store *s, const char *ns, char ***keys, size_t *n, char *err)
{
    return s->ops->list(s, ns, keys, n, err);
}
static inline void store_close(store *s)
{
    if (s)
        s->ops->close(s);
}

#endif
