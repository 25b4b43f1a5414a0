/*
 * registry.h — the models a process serves: loaded once from safetensors files, read-only
 * afterwards, shared by every session and request.  Each has its own scheduler.
 */
#ifndef HYPER_REGISTRY_H
#define HYPER_REGISTRY_H

#include <pthread.h>

#include "classifier.h"
#include "common.h"
#include "model.h"
#include "strokes.h"
#include "vocab.h"

#define REGISTRY_MAX_MODELS 64
#define MODEL_NAME_MAX 64

struct scheduler;

typedef struct {
    char name[MODEL_NAME_MAX];   /* the file name without its extension */
    char path[1024];
    char kind[16];               /* "charlm", or what the file's "kind" metadata says */
    model m;                     /* weights (read-only once registered); empty for classifiers */
    classifier *clf;             /* owned: a classifier (kind "classifier"), else NULL */
    vocab voc;                   /* empty (size 0) for dense-input models */
    int handwriting;             /* 1: a handwriting model (handwriting.h) */
    stroke_stats strokes;        /* its normalisation (handwriting models) */
    size_t params;
    struct scheduler *sched;     /* owned; steps this model's generations (NULL for classifiers) */
    _Atomic unsigned long long classifications; /* images classified (classifiers) */
} model_entry;

typedef struct {
    pthread_rwlock_t lock;
    model_entry *items[REGISTRY_MAX_MODELS];
    int n;
    int max_batch;               /* streams a scheduler steps together (SCHED_MAX_BATCH) */
    int half_weights;            /* serve weights in half precision (model_pack) */
} registry;

/* max_batch: the most streams one scheduler step takes (1 = step sessions one by one). */
void registry_init(registry *r, int max_batch);
/* Stops every scheduler and frees every model. */
void registry_free(registry *r);

/* Loads a model file (or every *.safetensors file of a directory, in name order) and starts
 * a scheduler for each character or handwriting model (classifiers need none: a
 * classification is one forward pass).  A name already registered is an error. */
hyper_status registry_load(registry *r, const char *path, char *err);

/* The entry of that name (borrowed; entries live until registry_free), or NULL. */
model_entry *registry_find(registry *r, const char *name);
/* The model new sessions get when they name none: "charlm" if loaded, else the first
 * character model, else NULL. */
model_entry *registry_default(registry *r);
/* The handwriting model requests get when they name none: "handwriting" if loaded, else
 * the first handwriting model, else NULL. */
model_entry *registry_default_handwriting(registry *r);
/* Number of entries, and the i-th (borrowed). */
int registry_count(registry *r);
model_entry *registry_at(registry *r, int i);

/* 1 when name is a valid model name: 1-63 characters of [A-Za-z0-9._-], not starting
 * with a dot. */
int model_name_valid(const char *name);

#endif
