/*
 * session.h — sessions: the recurrent state of one conversation with a model, kept between
 * requests, persisted under the data directory, evicted when idle.
 *
 * A session's state is always "everything it has read": the prompt and fed text and every
 * character it generated, or, on a handwriting model (handwriting.h), every point fed and
 * drawn, with the pen that continues the drawing.  Its random generator is part of it, so
 * the same state and seed give the same text or drawing.
 */
#ifndef HYPER_SESSION_H
#define HYPER_SESSION_H

#include <pthread.h>

#include "common.h"
#include "handwriting.h"
#include "model.h"
#include "registry.h"
#include "store.h"

#define SESSION_ID_LEN 32       /* hex characters */
#define SESSIONS_MAX_LIMIT 100000

typedef struct session {
    char id[SESSION_ID_LEN + 1];
    model_entry *model;         /* borrowed from the registry */
    model_state state;          /* batch 1; touched only by the request holding the session */
    hyper_rng rng;
    hw_pen pen;                 /* handwriting models: the last point and where the pen is */
    uint64_t seen;              /* steps the state has read: characters, or points */
    int64_t created_ms, used_ms;
    uint64_t seq;               /* creation order, kept across restarts */
    int busy;                   /* a request holds it (under the store's lock) */
    int dirty;                  /* changed since last saved */
    uint64_t version;           /* bumped at every change, so a save knows what it wrote */
    int refs;                   /* holders: the store, and each request */
    int deleted;                /* removed from the store; freed when refs reaches 0 */
} session;

typedef struct {
    pthread_mutex_t mu;
    session **items;
    size_t n, cap;
    uint64_t next_seq;          /* the seq of the next session created */
    size_t max_sessions;        /* beyond it the least recently used idle session goes */
    int64_t idle_timeout_ms;    /* 0 = never */
    store *backing;             /* where sessions are kept (borrowed), NULL = not persisted */
} session_store;

/* Sessions are records "ID.json" of the namespace SESSION_NS of backing (NULL: nothing is
 * persisted). */
#define SESSION_NS "sessions"
hyper_status session_store_init(session_store *st, store *backing, size_t max_sessions,
                                int64_t idle_timeout_ms, char *err);
void session_store_free(session_store *st);

/* Reads every session record back; records of models not loaded, or damaged, are skipped
 * with a line on stderr.  Returns how many were restored. */
size_t session_store_restore(session_store *st, registry *reg);
/* Writes every dirty session (all = 1: every session) that no request holds; the files are
 * written outside the store's lock.  Returns how many failed. */
int session_store_save(session_store *st, int all);

/* Creates a session on model m (seeded by seed, or at random when has_seed is 0), held
 * (busy) by the caller, who gives it back with session_release(..., 1, 0).
 * HYPER_ERR_ARG ("at capacity") when the store is full of busy sessions. */
hyper_status session_create(session_store *st, model_entry *m, int has_seed, uint64_t seed,
                            session **out, char *err);

/* Writes the record of a session the caller holds (busy) now, not at the next periodic
 * save: a new session is acknowledged only once it is on disk.  On failure (err names the
 * cause; HYPER_ERR_NOSPACE for a full disk) nothing is left half-written. */
hyper_status session_persist(session_store *st, session *s, char *err);

/* Looks a session up and takes a reference (session_release gives it back); NULL when
 * missing.  With acquire = 1 it also marks it busy, failing (*busy = 1, NULL) when another
 * request holds it. */
session *session_get(session_store *st, const char *id, int acquire, int *busy);
/* Gives back a reference taken by session_get/session_create; clears busy when held.
 * steps_read is how many characters (or points) the holder's request added to the state
 * (counted in seen; non-zero marks the session for saving). */
void session_release(session_store *st, session *s, int was_acquired, uint64_t steps_read);
/* Removes a session (its file too).  -1 when missing, -2 when busy. */
int session_delete(session_store *st, const char *id);
/* Zeroes the state of a session the caller holds (busy), its count, and puts its pen back
 * at the start (hw_pen_start). */
void session_reset(session_store *st, session *s);
/* A new session with a copy of src's state, RNG, count and pen (src must be held by the
 * caller); the new one is held too, as from session_create. */
hyper_status session_fork(session_store *st, session *src, session **out, char *err);

/* Copies of the store's view for listing: fills up to max ids in creation order starting
 * at offset; returns the total count. */
size_t session_list(session_store *st, size_t offset, size_t max,
                    char (*ids)[SESSION_ID_LEN + 1]);
/* A consistent copy of what a listing shows of a session the caller has a reference to. */
typedef struct {
    char id[SESSION_ID_LEN + 1];
    char model[MODEL_NAME_MAX];
    int handwriting;            /* its model is a handwriting model: seen counts points */
    uint64_t seen;
    int64_t created_ms, used_ms;
    int busy;
} session_meta;
void session_info(session_store *st, const session *s, session_meta *out);
size_t session_count(session_store *st);
/* Deletes sessions idle longer than the timeout; returns how many. */
size_t session_expire(session_store *st, int64_t now_ms);

int64_t now_ms(void);

#endif
