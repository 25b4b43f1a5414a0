/*
 * session.c — the session store: lookup, busy marking, LRU eviction, idle expiry, and
 * persistence (one JSON file per session under the data directory, written atomically).
 */
#include "session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "jsonutil.h"

static ssize_t find_index(session_store *st, const char *id);
static void remove_at(session_store *st, size_t i);

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t random_u64(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x) {
        /* no entropy source: time and address still make ids unique enough locally */
        x = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&x;
    }
    return x;
}

hyper_status session_store_init(session_store *st, store *backing, size_t max_sessions,
                                int64_t idle_timeout_ms, char *err)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    st->max_sessions = max_sessions;
    st->idle_timeout_ms = idle_timeout_ms;
    st->backing = backing;
    return backing ? store_prepare(backing, SESSION_NS, err) : HYPER_OK;
}

static void session_destroy(session *s)
{
    model_state_free(&s->state);
    free(s);
}

void session_store_free(session_store *st)
{
    for (size_t i = 0; i < st->n; i++)
        session_destroy(st->items[i]);
    free(st->items);
    pthread_mutex_destroy(&st->mu);
    memset(st, 0, sizeof *st);
}

/* ---- persistence --------------------------------------------------------------------- */

#define SESSION_KEY_MAX (SESSION_ID_LEN + 6)
#define SESSION_RECORD_MAX ((size_t)256 << 20) /* a record read back (a state is < 1 MB) */

static void session_key(const char *id, char *buf, size_t n) { snprintf(buf, n, "%s.json", id); }

/* A session record, SESSION_NS/ID.json:
 *   {"id", "model", "seq", "created_ms", "used_ms",
 *    "chars_seen" (character models) or "points_seen" (handwriting models),
 *    "rng": [4 hex strings], "state": [the model state's numbers],
 *    "pen": {"last": [dx, dy, eos], "x", "y"} (handwriting models only)}
 * Files written before handwriting models existed are character sessions, read as ever.
 * Numbers are written with 17 significant digits, so floats and doubles come back exact. */

/* Builds the JSON of a session (caller holds it or the store's lock). */
static json_t *session_to_json(const session *s)
{
    json_t *state = json_array();
    for (size_t k = 0; k < s->state.size; k++)
        json_array_append_new(state, json_real((double)s->state.block[k]));
    json_t *rng = json_array();
    for (int k = 0; k < 4; k++) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, s->rng.s[k]);
        json_array_append_new(rng, json_string(hex));
    }
    const int hw = s->model->handwriting;
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "id", s->id, "model",
                          s->model->name, "seq", (json_int_t)s->seq, "created_ms",
                          (json_int_t)s->created_ms, "used_ms", (json_int_t)s->used_ms,
                          hw ? "points_seen" : "chars_seen", (json_int_t)s->seen, "rng", rng,
                          "state", state);
    if (j && hw &&
        json_object_set_new(j, "pen", json_pack("{s:[f, f, f], s:f, s:f}", "last",
                                                (double)s->pen.last[0], (double)s->pen.last[1],
                                                (double)s->pen.last[2], "x", s->pen.x, "y",
                                                s->pen.y)) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}


int session_store_save(session_store *st, int all)
{
    /* the JSON is made under the lock (a snapshot); the slow part, writing and fsync, is
     * not, so requests never wait behind the disk */
    typedef struct { char id[SESSION_ID_LEN + 1]; char *text; uint64_t version; } pending;
    pending *todo = NULL;
    size_t n = 0;
    int failed = 0;
    if (!st->backing)
        return 0;
    pthread_mutex_lock(&st->mu);
    todo = calloc(st->n ? st->n : 1, sizeof *todo);
    for (size_t i = 0; todo && i < st->n; i++) {
        session *s = st->items[i];
        /* a busy session's state is being stepped; it is saved after its release */
        if ((all || s->dirty) && !s->busy) {
            json_t *j = session_to_json(s);
            char *text = j ? json_text(j, JSON_COMPACT) : NULL;
            json_decref(j);
            if (!text) {
                failed++;
                continue;
            }
            memcpy(todo[n].id, s->id, sizeof todo[n].id);
            todo[n].text = text;
            todo[n].version = s->version;
            n++;
        }
    }
    pthread_mutex_unlock(&st->mu);
    for (size_t k = 0; k < n; k++) {
        char key[SESSION_KEY_MAX];
        session_key(todo[k].id, key, sizeof key);
        int rc = store_put(st->backing, SESSION_NS, key, todo[k].text, strlen(todo[k].text), NULL) == HYPER_OK ? 0 : -1;
        free(todo[k].text);
        pthread_mutex_lock(&st->mu);
        ssize_t i = -1;
        for (size_t j = 0; j < st->n && i < 0; j++)
            if (strcmp(st->items[j]->id, todo[k].id) == 0)
                i = (ssize_t)j;
        if (i < 0) {
            store_del(st->backing, SESSION_NS, key, NULL); /* deleted while we wrote it */
        } else if (rc != 0) {
            failed++;
        } else if (st->items[i]->version == todo[k].version) {
            st->items[i]->dirty = 0; /* unchanged since the snapshot */
        }
        pthread_mutex_unlock(&st->mu);
    }
    free(todo);
    return failed;
}

hyper_status session_persist(session_store *st, session *s, char *err)
{
    if (!st->backing)
        return HYPER_OK;
    /* the caller holds s: no request steps it, and the store's lock is not needed to read
     * it (nor held across the write) */
    json_t *j = session_to_json(s);
    char *text = j ? json_text(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    char key[SESSION_KEY_MAX];
    session_key(s->id, key, sizeof key);
    const uint64_t version = s->version;
    hyper_status rc = store_put(st->backing, SESSION_NS, key, text, strlen(text), err);
    free(text);
    if (rc == HYPER_OK) {
        pthread_mutex_lock(&st->mu);
        if (s->version == version)
            s->dirty = 0;
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

static int valid_id(const char *id)
{
    if (!id || strlen(id) != SESSION_ID_LEN)
        return 0;
    for (int k = 0; k < SESSION_ID_LEN; k++)
        if (!((id[k] >= '0' && id[k] <= '9') || (id[k] >= 'a' && id[k] <= 'f')))
            return 0;
    return 1;
}

static session *session_alloc(model_entry *m)
{
    session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (model_state_init(&s->state, &m->m.cfg, 1, NULL) != HYPER_OK) {
        free(s);
        return NULL;
    }
    s->model = m;
    s->refs = 1;
    hw_pen_start(&s->pen);
    return s;
}

static int store_push(session_store *st, session *s)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        session **items = realloc(st->items, cap * sizeof *items);
        if (!items)
            return -1;
        st->items = items;
        st->cap = cap;
    }
    st->items[st->n++] = s;
    return 0;
}

/* Reads the "pen" of a handwriting session's file; 0 when it is missing or malformed. */
static int pen_from_json(const json_t *j, hw_pen *pen)
{
    json_t *last = NULL;
    double x = 0, y = 0;
    if (json_unpack((json_t *)j, "{s:o, s:F, s:F}", "last", &last, "x", &x, "y", &y) != 0 ||
        !json_is_array(last) || json_array_size(last) != 3)
        return 0;
    for (size_t k = 0; k < 3; k++) {
        json_t *v = json_array_get(last, k);
        if (!json_is_number(v))
            return 0;
        pen->last[k] = (float)json_number_value(v);
    }
    pen->x = x;
    pen->y = y;
    return 1;
}

static session *session_from_json(json_t *j, registry *reg, const char *file)
{
    const char *id = NULL, *model_name = NULL;
    json_int_t created = 0, used = 0;
    json_t *rng = NULL, *state = NULL;
    if (json_unpack(j, "{s:s, s:s, s:I, s:I, s:o, s:o}", "id", &id, "model", &model_name,
                    "created_ms", &created, "used_ms", &used, "rng", &rng, "state", &state) != 0 ||
        !valid_id(id)) {
        hyper_log(HYPER_LOG_WARN, "%s: not a session file, skipped", file);
        return NULL;
    }
    model_entry *m = registry_find(reg, model_name);
    if (!m || m->clf) {
        hyper_log(HYPER_LOG_WARN, "%s: model '%s' is %s, session skipped", file, model_name,
                          m ? "a classifier (it has no sessions)" : "not loaded");
        return NULL;
    }
    json_t *seen = json_object_get(j, m->handwriting ? "points_seen" : "chars_seen");
    if (!json_is_integer(seen) || json_integer_value(seen) < 0) {
        hyper_log(HYPER_LOG_WARN, "%s: no %s for model '%s', skipped", file,
                          m->handwriting ? "points_seen" : "chars_seen", model_name);
        return NULL;
    }
    session *s = session_alloc(m);
    if (!s)
        return NULL;
    if (!json_is_array(rng) || json_array_size(rng) != 4 || !json_is_array(state) ||
        json_array_size(state) != s->state.size ||
        (m->handwriting && !pen_from_json(json_object_get(j, "pen"), &s->pen))) {
        hyper_log(HYPER_LOG_WARN, "%s: state does not fit model '%s', skipped", file, model_name);
        session_destroy(s);
        return NULL;
    }
    for (int k = 0; k < 4; k++) {
        const char *hex = json_string_value(json_array_get(rng, (size_t)k));
        s->rng.s[k] = hex ? strtoull(hex, NULL, 16) : 0;
    }
    for (size_t k = 0; k < s->state.size; k++)
        s->state.block[k] = (real)json_number_value(json_array_get(state, k));
    memcpy(s->id, id, SESSION_ID_LEN + 1);
    json_int_t seq = json_integer_value(json_object_get(j, "seq")); /* 0 in older files */
    s->seq = seq > 0 ? (uint64_t)seq : 0;
    s->created_ms = created;
    s->used_ms = used;
    s->seen = (uint64_t)json_integer_value(seen);
    return s;
}

/* Creation order: seq, then (files without one) time, then id so that ties never depend on
 * the order readdir happened to return. */
static int created_cmp(const void *a, const void *b)
{
    const session *x = *(session *const *)a, *y = *(session *const *)b;
    if (x->seq != y->seq)
        return (x->seq > y->seq) - (x->seq < y->seq);
    if (x->created_ms != y->created_ms)
        return (x->created_ms > y->created_ms) - (x->created_ms < y->created_ms);
    return strcmp(x->id, y->id);
}

size_t session_store_restore(session_store *st, registry *reg)
{
    if (!st->backing)
        return 0;
    char **keys = NULL, err[HYPER_ERRMSG_MAX];
    size_t nkeys = 0;
    if (store_list(st->backing, SESSION_NS, &keys, &nkeys, err) != HYPER_OK) {
        hyper_log(HYPER_LOG_WARN, "%s: sessions not restored", err);
        return 0;
    }
    size_t restored = 0;
    pthread_mutex_lock(&st->mu);
    for (size_t k = 0; k < nkeys; k++) {
        const char *key = keys[k];
        if (strlen(key) != SESSION_ID_LEN + 5 || strcmp(key + SESSION_ID_LEN, ".json") != 0)
            continue;
        char *text = NULL;
        size_t len = 0;
        if (store_get(st->backing, SESSION_NS, key, SESSION_RECORD_MAX, &text, &len, err) != HYPER_OK) {
            hyper_log(HYPER_LOG_WARN, "%s, skipped", err);
            continue;
        }
        json_error_t jerr;
        json_t *j = json_loadb(text, len, 0, &jerr);
        free(text);
        if (!j) {
            hyper_log(HYPER_LOG_WARN, "%s/%s: %s, skipped", SESSION_NS, key, jerr.text);
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "%s/%s", SESSION_NS, key);
        session *s = session_from_json(j, reg, name);
        json_decref(j);
        if (s && (strncmp(s->id, key, SESSION_ID_LEN) != 0 || find_index(st, s->id) >= 0)) {
            hyper_log(HYPER_LOG_WARN, "%s: its id does not match its name, skipped", name);
            session_destroy(s);
            s = NULL;
        }
        if (s && store_push(st, s) == 0)
            restored++;
        else if (s)
            session_destroy(s);
    }
    store_keys_free(keys, nkeys);
    if (st->n > 1)
        qsort(st->items, st->n, sizeof *st->items, created_cmp);
    for (size_t i = 0; i < st->n; i++)
        if (st->items[i]->seq >= st->next_seq)
            st->next_seq = st->items[i]->seq + 1;
    /* a restart with a lower --max-sessions keeps the most recently used */
    while (st->n > st->max_sessions) {
        size_t lru = 0;
        for (size_t i = 1; i < st->n; i++)
            if (st->items[i]->used_ms < st->items[lru]->used_ms)
                lru = i;
        remove_at(st, lru);
        restored--;
    }
    pthread_mutex_unlock(&st->mu);
    return restored;
}

/* ---- lookup and lifetime ------------------------------------------------------------ */

static ssize_t find_index(session_store *st, const char *id)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->items[i]->id, id) == 0)
            return (ssize_t)i;
    return -1;
}

/* Takes item i out of the store (lock held); frees it unless a request still holds it. */
static void remove_at(session_store *st, size_t i)
{
    session *s = st->items[i];
    memmove(st->items + i, st->items + i + 1, (st->n - i - 1) * sizeof *st->items);
    st->n--;
    if (st->backing) {
        char key[SESSION_KEY_MAX];
        session_key(s->id, key, sizeof key);
        store_del(st->backing, SESSION_NS, key, NULL);
    }
    s->deleted = 1;
    if (--s->refs == 0)
        session_destroy(s);
}

hyper_status session_create(session_store *st, model_entry *m, int has_seed, uint64_t seed,
                            session **out, char *err)
{
    *out = NULL;
    session *s = session_alloc(m);
    if (!s)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    hyper_rng_seed(&s->rng, has_seed ? seed : random_u64());
    snprintf(s->id, sizeof s->id, "%016" PRIx64 "%016" PRIx64, random_u64(), random_u64());
    s->created_ms = s->used_ms = now_ms();
    s->dirty = 1;
    pthread_mutex_lock(&st->mu);
    if (st->n >= st->max_sessions) {
        /* evict the least recently used session that no request holds */
        ssize_t lru = -1;
        for (size_t i = 0; i < st->n; i++)
            if (!st->items[i]->busy && (lru < 0 || st->items[i]->used_ms < st->items[lru]->used_ms))
                lru = (ssize_t)i;
        if (lru < 0) {
            pthread_mutex_unlock(&st->mu);
            session_destroy(s);
            return hyper_fail(err, HYPER_ERR_ARG, "at capacity: all %zu sessions are busy", st->max_sessions);
        }
        remove_at(st, (size_t)lru);
    }
    if (store_push(st, s) != 0) {
        pthread_mutex_unlock(&st->mu);
        session_destroy(s);
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    }
    s->seq = st->next_seq++;
    s->refs++;   /* the caller's reference */
    s->busy = 1; /* held until the caller releases it, so eviction cannot take it first */
    pthread_mutex_unlock(&st->mu);
    *out = s;
    return HYPER_OK;
}

session *session_get(session_store *st, const char *id, int acquire, int *busy)
{
    if (busy)
        *busy = 0;
    if (!valid_id(id))
        return NULL;
    pthread_mutex_lock(&st->mu);
    ssize_t i = find_index(st, id);
    session *s = i >= 0 ? st->items[i] : NULL;
    if (s && acquire) {
        if (s->busy) {
            if (busy)
                *busy = 1;
            s = NULL;
        } else {
            s->busy = 1;
        }
    }
    if (s) {
        s->refs++;
        if (acquire)
            s->used_ms = now_ms();
    }
    pthread_mutex_unlock(&st->mu);
    return s;
}

void session_release(session_store *st, session *s, int was_acquired, uint64_t steps_read)
{
    pthread_mutex_lock(&st->mu);
    if (steps_read)
        s->seen += steps_read;
    if (was_acquired) { /* its holder may have changed the state or the generator */
        s->dirty = 1;
        s->version++;
        s->busy = 0;
        s->used_ms = now_ms();
    }
    if (--s->refs == 0)
        session_destroy(s);
    pthread_mutex_unlock(&st->mu);
}

int session_delete(session_store *st, const char *id)
{
    if (!valid_id(id))
        return -1;
    pthread_mutex_lock(&st->mu);
    ssize_t i = find_index(st, id);
    int rc = i < 0 ? -1 : st->items[i]->busy ? -2 : 0;
    if (rc == 0)
        remove_at(st, (size_t)i);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void session_reset(session_store *st, session *s)
{
    pthread_mutex_lock(&st->mu);
    model_state_zero(&s->state);
    hw_pen_start(&s->pen);
    s->seen = 0;
    s->dirty = 1;
    s->version++;
    pthread_mutex_unlock(&st->mu);
}

hyper_status session_fork(session_store *st, session *src, session **out, char *err)
{
    hyper_status rc = session_create(st, src->model, 1, 0, out, err);
    if (rc != HYPER_OK)
        return rc;
    session *s = *out;
    /* under the lock, so a periodic save cannot write the zero state and clear dirty */
    pthread_mutex_lock(&st->mu);
    memcpy(s->state.block, src->state.block, src->state.size * sizeof(real));
    s->rng = src->rng;
    s->pen = src->pen;
    s->seen = src->seen;
    s->dirty = 1;
    s->version++;
    pthread_mutex_unlock(&st->mu);
    return HYPER_OK;
}

size_t session_list(session_store *st, size_t offset, size_t max,
                    char (*ids)[SESSION_ID_LEN + 1])
{
    pthread_mutex_lock(&st->mu);
    size_t total = st->n;
    for (size_t k = 0; k < max && offset + k < st->n; k++)
        memcpy(ids[k], st->items[offset + k]->id, SESSION_ID_LEN + 1);
    pthread_mutex_unlock(&st->mu);
    return total;
}

void session_info(session_store *st, const session *s, session_meta *out)
{
    pthread_mutex_lock(&st->mu);
    memcpy(out->id, s->id, sizeof out->id);
    snprintf(out->model, sizeof out->model, "%s", s->model->name);
    out->handwriting = s->model->handwriting;
    out->seen = s->seen;
    out->created_ms = s->created_ms;
    out->used_ms = s->used_ms;
    out->busy = s->busy;
    pthread_mutex_unlock(&st->mu);
}

size_t session_count(session_store *st)
{
    pthread_mutex_lock(&st->mu);
    size_t n = st->n;
    pthread_mutex_unlock(&st->mu);
    return n;
}

size_t session_expire(session_store *st, int64_t now)
{
    if (st->idle_timeout_ms <= 0)
        return 0;
    size_t gone = 0;
    pthread_mutex_lock(&st->mu);
    for (size_t i = st->n; i-- > 0;)
        if (!st->items[i]->busy && now - st->items[i]->used_ms > st->idle_timeout_ms) {
            remove_at(st, i);
            gone++;
        }
    pthread_mutex_unlock(&st->mu);
    return gone;
}
