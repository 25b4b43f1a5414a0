/*
 * registry.c — loading and finding the models a process serves.
 */
#include "registry.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "handwriting.h"
#include "trainer.h"
#include "scheduler.h"

void registry_init(registry *r, int max_batch)
{
    memset(r, 0, sizeof *r);
    r->max_batch = max_batch;
    pthread_rwlock_init(&r->lock, NULL);
}

static void entry_free(model_entry *e)
{
    if (e->sched)
        scheduler_free(e->sched);
    if (e->clf) {
        clf_free(e->clf);
        free(e->clf);
    }
    model_free(&e->m);
    vocab_free(&e->voc);
    free(e);
}

void registry_free(registry *r)
{
    for (int i = 0; i < r->n; i++)
        entry_free(r->items[i]);
    r->n = 0;
    pthread_rwlock_destroy(&r->lock);
}

int model_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= MODEL_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t k = 0; k < n; k++) {
        char c = name[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static hyper_status publish(registry *r, model_entry *e, const char *path, char *err);

/* A classifier file (already open; closed here): its weights, no scheduler. */
static hyper_status load_classifier(registry *r, model_entry *e, checkpoint *ck, const char *name,
                                    const char *path, char *err)
{
    hyper_status st = (e->clf = calloc(1, sizeof *e->clf)) ? clf_load(ck, e->clf, err)
                                                           : hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", path);
    checkpoint_close(ck);
    /* served weights never change: generate the hypernetwork's once, not per request */
    if (st == HYPER_OK && (st = clf_freeze(e->clf, err)) != HYPER_OK)
        clf_free(e->clf);
    if (st != HYPER_OK) {
        free(e->clf);
        free(e);
        return st;
    }
    snprintf(e->kind, sizeof e->kind, "%s", CLF_KIND);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->params = e->clf->size;
    return publish(r, e, path, err);
}

static hyper_status load_file(registry *r, const char *path, char *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char name[MODEL_NAME_MAX];
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        len = (size_t)(dot - base);
    if (len >= sizeof name)
        return hyper_fail(err, HYPER_ERR_ARG, "%s: the file name is too long for a model name", path);
    memcpy(name, base, len);
    name[len] = 0;
    if (!model_name_valid(name))
        return hyper_fail(err, HYPER_ERR_ARG, "%s: '%s' is not a valid model name", path, name);
    if (registry_find(r, name))
        return hyper_fail(err, HYPER_ERR_ARG, "%s: a model named '%s' is already loaded", path, name);
    if (registry_count(r) >= REGISTRY_MAX_MODELS)
        return hyper_fail(err, HYPER_ERR_ARG, "%s: at most %d models can be loaded", path, REGISTRY_MAX_MODELS);
    model_entry *e = calloc(1, sizeof *e);
    if (!e)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    checkpoint *ck = NULL;
    hyper_status st = checkpoint_open_tensors(path, &ck, err);
    if (st == HYPER_OK && clf_is_classifier_file(ck))
        return load_classifier(r, e, ck, name, path, err);
    if (st == HYPER_OK && (st = checkpoint_check_model(ck, err)) != HYPER_OK)
        checkpoint_close(ck);
    if (st == HYPER_OK) {
        const char *kind = checkpoint_meta(ck, "kind");
        snprintf(e->kind, sizeof e->kind, "%s", kind ? kind : "charlm");
        st = checkpoint_load_model(ck, &e->m, &e->voc, err);
        e->handwriting = st == HYPER_OK && hw_model_ok(&e->m.cfg);
        if (e->handwriting) {
            char sub[HYPER_ERRMSG_MAX];
            if ((st = strokes_stats_from_meta(ck, &e->strokes, sub)) != HYPER_OK)
                hyper_fail(err, st, "%s: %s", path, sub);
        }
        checkpoint_close(ck);
    }
    if (st == HYPER_OK && e->m.cfg.inputs == 0 && e->voc.size != e->m.cfg.outputs)
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: a character model without a vocabulary", path);
    /* served weights go through the batch-invariant kernel: batching never changes text */
    if (st == HYPER_OK)
        st = model_pack(&e->m, r->half_weights, err);
    if (st != HYPER_OK) {
        model_free(&e->m);
        vocab_free(&e->voc);
        free(e);
        return st;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->params = model_param_count(&e->m.cfg);
    e->sched = scheduler_start(&e->m, r->max_batch);
    if (!e->sched) {
        entry_free(e);
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: cannot start its scheduler", path);
    }
    return publish(r, e, path, err);
}

/* Adds a loaded entry (taken: freed on failure). */
static hyper_status publish(registry *r, model_entry *e, const char *path, char *err)
{
    /* checked again under the lock: two jobs may publish at the same moment */
    pthread_rwlock_wrlock(&r->lock);
    int clash = r->n >= REGISTRY_MAX_MODELS;
    for (int i = 0; i < r->n && !clash; i++)
        clash = strcmp(r->items[i]->name, e->name) == 0;
    if (!clash)
        r->items[r->n++] = e;
    pthread_rwlock_unlock(&r->lock);
    if (clash) {
        hyper_fail(err, HYPER_ERR_CONFLICT, "%s: '%s' is loaded already, or %d models are", path, e->name,
                   REGISTRY_MAX_MODELS);
        entry_free(e);
        return HYPER_ERR_CONFLICT;
    }
    return HYPER_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

hyper_status registry_load(registry *r, const char *path, char *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: no such file or directory", path);
    if (!S_ISDIR(sb.st_mode))
        return load_file(r, path, err);
    DIR *d = opendir(path);
    if (!d)
        return hyper_fail(err, HYPER_ERR_IO, "%s: cannot read the directory", path);
    char *names[REGISTRY_MAX_MODELS + 1];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n <= REGISTRY_MAX_MODELS) {
        size_t len = strlen(de->d_name);
        if (len > 12 && strcmp(de->d_name + len - 12, ".safetensors") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], name_cmp);
    /* every file is tried; the first failure is the one reported */
    hyper_status st = HYPER_OK;
    for (int i = 0; i < n; i++) {
        char full[2048], sub[HYPER_ERRMSG_MAX];
        if (names[i]) {
            snprintf(full, sizeof full, "%s/%s", path, names[i]);
            hyper_status s1 = load_file(r, full, sub);
            if (s1 != HYPER_OK && st == HYPER_OK) {
                st = s1;
                hyper_fail(err, s1, "%s", sub);
            }
        }
        free(names[i]);
    }
    return st;
}

model_entry *registry_find(registry *r, const char *name)
{
    model_entry *found = NULL;
    pthread_rwlock_rdlock(&r->lock);
    for (int i = 0; i < r->n && !found; i++)
        if (strcmp(r->items[i]->name, name) == 0)
            found = r->items[i];
    pthread_rwlock_unlock(&r->lock);
    return found;
}

model_entry *registry_default(registry *r)
{
    model_entry *e = registry_find(r, "charlm");
    if (e)
        return e;
    pthread_rwlock_rdlock(&r->lock);
    for (int i = 0; i < r->n && !e; i++)
        if (r->items[i]->voc.size > 0)
            e = r->items[i];
    pthread_rwlock_unlock(&r->lock);
    return e;
}

model_entry *registry_default_handwriting(registry *r)
{
    model_entry *e = registry_find(r, "handwriting");
    if (e && e->handwriting)
        return e;
    e = NULL;
    pthread_rwlock_rdlock(&r->lock);
    for (int i = 0; i < r->n && !e; i++)
        if (r->items[i]->handwriting)
            e = r->items[i];
    pthread_rwlock_unlock(&r->lock);
    return e;
}

int registry_count(registry *r)
{
    pthread_rwlock_rdlock(&r->lock);
    int n = r->n;
    pthread_rwlock_unlock(&r->lock);
    return n;
}

model_entry *registry_at(registry *r, int i)
{
    pthread_rwlock_rdlock(&r->lock);
    model_entry *e = i >= 0 && i < r->n ? r->items[i] : NULL;
    pthread_rwlock_unlock(&r->lock);
    return e;
}
