/*
 * api.h — the HTTP API as plain C: a request (method, path captures, body, a few headers)
 * goes to a handler, which fills a reply (status + JSON, a raw body, or a stream).  Nothing
 * here knows libmicrohttpd; server/ turns these into HTTP.
 */
#ifndef HYPERD_API_H
#define HYPERD_API_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "handwriting.h"
#include "datasets.h"
#include "jobs.h"
#include "jsonutil.h"
#include "registry.h"
#include "session.h"

/* Limits, named (the flags of the same names override the defaults). */
#define API_DEFAULT_MAX_BODY_BYTES (1u << 20)
#define API_DEFAULT_MAX_UPLOAD_BYTES (256L << 20)
#define API_DEFAULT_MAX_CHARS 10000
#define API_MAX_PROMPT_CHARS 100000
#define API_MAX_PARAMS 4
#define API_PARAM_MAX 128
#define API_PAGE_MAX 1000
#define API_MAX_PRIME_POINTS HW_MAX_POINTS /* points of a handwriting prime or feed */

typedef struct api_metrics api_metrics;

/* What every handler may reach: configuration and the shared, thread-safe stores. */
typedef struct {
    registry *models;
    session_store *sessions;
    dataset_store *datasets;
    job_runner *jobs;
    const char *models_dir;       /* where finished jobs write their models */
    const char *web_dir;          /* the demo page's files (clients/web), NULL = none */
    api_metrics *metrics;
    const char *api_key;          /* NULL = no authentication */
    size_t max_body_bytes;
    size_t max_upload_bytes;      /* streamed uploads (datasets) */
    int64_t max_chars;            /* per generate request */
    atomic_int ready;             /* models loaded */
    atomic_int stopping;          /* shutting down: new work gets 503 */
    double started;               /* unix seconds */
} api_app;

typedef struct {
    const char *method;
    const char *path;
    char params[API_MAX_PARAMS][API_PARAM_MAX]; /* the {} segments of the route, in order */
    int nparams;
    const char *body;             /* NUL-terminated copy, body_len bytes (may be NULL) */
    size_t body_len;
    const char *content_type;     /* may be NULL */
    const char *accept;           /* may be NULL */
    /* query-string lookup (NULL when absent) */
    const char *(*query)(void *conn, const char *key);
    const char *last_event_id;    /* Last-Event-ID header, may be NULL */
    /* 1 when the client has closed its connection (may be NULL) */
    int (*client_gone)(void *conn);
    void *conn;
    api_app *app;
} api_request;

/* A streamed body.  next() writes up to max bytes into buf and returns the count, 0 when
 * nothing is ready yet, or -1 at the end; it never waits (it runs on the server's event
 * thread).  After a 0 the server calls it again when notify's wake-up comes, or at its
 * next tick (a quarter of a second) when the stream has no notify or the wake-up is late:
 * a stream may use those calls for heartbeats.  notify(ctx, fn, drop, arg) (may be NULL)
 * asks for fn(arg) once, from any thread, when next() may have more; a wake-up that will
 * not come after all (replaced, or the stream released) gets drop(arg) instead.  release()
 * is called exactly once, when the response is over or the client has gone: it must not
 * wait (it runs on the event thread), and ends whatever still runs. */
typedef struct {
    void *ctx;
    ssize_t (*next)(void *ctx, char *buf, size_t max);
    void (*release)(void *ctx);
    const char *content_type;
    void (*notify)(void *ctx, void (*fn)(void *arg), void (*drop)(void *arg), void *arg);
} api_stream;

typedef struct api_reply api_reply;

/* A reply made later, once work handed to a model's scheduler has ended: the handler fills
 * this (api_defer) and returns at once, and no thread waits meanwhile.  notify(ctx, fn,
 * arg) asks for fn(arg) once, from any thread (at once when it has ended already);
 * complete(ctx, rep) then fills the reply and frees ctx; cancel(ctx), from any thread
 * before that, says the client has gone (the work should end early; complete still
 * follows). */
typedef struct {
    void *ctx;
    void (*notify)(void *ctx, void (*fn)(void *arg), void *arg);
    void (*complete)(void *ctx, api_reply *rep);
    void (*cancel)(void *ctx);
} api_later;

struct api_reply {
    int status;
    json_t *json;                 /* owned (stolen from the handler) */
    char *body;                   /* owned raw body, or NULL */
    size_t body_len;
    const char *content_type;     /* of body */
    int streaming;
    api_stream stream;
    char allow[64];               /* Allow header for 405 ("" = none) */
    api_later later;              /* later.complete != NULL: the reply comes later */
};

typedef void (*api_handler)(const api_request *req, api_reply *rep);

/* A request body taken as it arrives instead of whole (uploads up to max_upload_bytes):
 * write() gets each piece (0 = go on, -1 = stop taking data: the rest of the body is read
 * and dropped), finish() the end of the body and fills the reply, abort() is called
 * instead of finish() when the connection dies first.  Exactly one of the two is called. */
typedef struct {
    void *ctx;
    int (*write)(void *ctx, const char *data, size_t n);
    void (*finish)(void *ctx, api_reply *rep);
    void (*abort)(void *ctx);
} api_upload;

/* Starts an upload when the request's headers are in: fills up (and returns 0), or fills
 * rep with the error and returns -1 (the body is then not read). */
typedef int (*api_upload_handler)(const api_request *req, api_reply *rep, api_upload *up);

typedef struct {
    const char *method;
    const char *pattern;          /* "/v1/sessions/{}/generate" */
    api_handler handler;
    const char *name;             /* for metrics: "sessions.generate" */
    int public;                   /* 1: no API key needed */
    api_upload_handler upload;    /* non-NULL: the body is streamed to it (handler unused) */
    int quick;                    /* 1: answered on the event thread (no disk, no waiting);
                                   * every other handler runs on a worker thread */
} api_route;

extern const api_route api_routes[];
extern const size_t api_nroutes;

/* Finds the route for method + path, filling req->params (req may be NULL).  Returns it, or
 * NULL with *status 404 (no such path) or 405 (*allow lists the methods the path takes). */
const api_route *api_route_match(const char *method, const char *path, api_request *req,
                                 int *status, char *allow, size_t allow_len);

/* ---- replies ----------------------------------------------------------------------- */

/* The one error shape: {"error": {"code": status, "type": "...", "message": "..."}}. */
void api_error(api_reply *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The HTTP status of an engine status, the one mapping: not found 404, conflict 409, too
 * large 413, no space left 507, out of memory or an I/O failure 500, the rest 400. */
int api_status_http(hyper_status st);
/* A JSON reply (steals body). */
void api_json(api_reply *rep, int status, json_t *body);

/* Parses the request body as a JSON object (an empty body is {}); on failure fills rep with
 * 400/415 and returns NULL.  Returns a new reference. */
json_t *api_body_object(const api_request *req, api_reply *rep);

/* Field readers: on a wrong type or range they fill rep with a 400 naming the field and
 * return -1; a missing field leaves *out untouched and returns 0; present and valid: 1. */
int api_get_int(json_t *obj, const char *field, int64_t lo, int64_t hi, int64_t *out,
                api_reply *rep);
int api_get_u64(json_t *obj, const char *field, uint64_t *out, api_reply *rep);
int api_get_num(json_t *obj, const char *field, double lo, double hi, double *out,
                api_reply *rep);
int api_get_bool(json_t *obj, const char *field, int *out, api_reply *rep);
int api_get_str(json_t *obj, const char *field, size_t max_bytes, const char **out,
                api_reply *rep);
/* A query-string integer: absent → def (returns 0); malformed or outside lo..hi → a 400
 * naming key (returns -1). */
int api_query_int(const api_request *req, const char *key, int64_t lo, int64_t hi, int64_t def,
                  int64_t *out, api_reply *rep);
/* Milliseconds since the epoch as an ISO 8601 UTC string (new reference). */
json_t *api_iso_time(int64_t ms);
/* Rejects fields not in the NULL-terminated list (a typo should not pass silently). */
int api_check_fields(json_t *obj, const char *const *known, api_reply *rep);

/* ---- hyper activity (include_hyper) -------------------------------------------------- */

/* 0 when model e has a hypernetwork; else fills rep with a 400 naming its cell (the
 * request asked include_hyper) and returns -1. */
int api_check_hyper(const model_entry *e, api_reply *rep);
/* The activity of one character or point, act (4): [i, g, f, o] (new reference). */
json_t *api_hyper_json(const float *act);
/* n activities act (n, 4) as [[i, g, f, o], ...] (new reference). */
json_t *api_hyper_array(const float *act, size_t n);

/* ---- streamed events ---------------------------------------------------------------- */

#define API_REAL_DIGITS 10        /* significant digits of reals in streamed events */

/* The bytes of a stream not yet taken by the server.  Zero-initialise; ndjson selects the
 * framing (else SSE). */
typedef struct {
    char *buf;
    size_t len, off, cap;
    int ndjson;
} api_outbuf;

/* Queues raw bytes.  0, or -1 when out of memory. */
int api_outbuf_add(api_outbuf *o, const char *bytes, size_t n);
/* Queues one event of obj (stolen): SSE "id: <id>\ndata: {...}\n\n" (id may be NULL) or an
 * NDJSON line.  0, or -1 when out of memory (or obj is NULL). */
int api_outbuf_event(api_outbuf *o, const char *id, json_t *obj);
/* Queues an SSE comment (nothing for NDJSON): a write that shows whether the client is
 * still there while there is nothing to say. */
int api_outbuf_heartbeat(api_outbuf *o);
int api_outbuf_empty(const api_outbuf *o);
/* Moves up to max queued bytes into buf; returns how many. */
size_t api_outbuf_take(api_outbuf *o, char *buf, size_t max);
void api_outbuf_free(api_outbuf *o);

/* ---- metrics ---------------------------------------------------------------------- */

api_metrics *api_metrics_new(void);
void api_metrics_free(api_metrics *m);
/* Counts one finished request of route name (or "unmatched") with its status. */
void api_metrics_request(api_metrics *m, const char *route, int status);

/* Handlers (one file per family). */
void api_health(const api_request *req, api_reply *rep);
void api_ready(const api_request *req, api_reply *rep);
void api_metrics_get(const api_request *req, api_reply *rep);
void api_openapi(const api_request *req, api_reply *rep);
void api_models_list(const api_request *req, api_reply *rep);
void api_models_get(const api_request *req, api_reply *rep);
void api_models_classify(const api_request *req, api_reply *rep);
void api_models_kernels_svg(const api_request *req, api_reply *rep);
void api_sessions_create(const api_request *req, api_reply *rep);
void api_sessions_list(const api_request *req, api_reply *rep);
void api_sessions_get(const api_request *req, api_reply *rep);
void api_sessions_delete(const api_request *req, api_reply *rep);
void api_sessions_feed(const api_request *req, api_reply *rep);
void api_sessions_generate(const api_request *req, api_reply *rep);
void api_sessions_fork(const api_request *req, api_reply *rep);
void api_sessions_reset(const api_request *req, api_reply *rep);
int api_datasets_upload(const api_request *req, api_reply *rep, api_upload *up);
void api_datasets_list(const api_request *req, api_reply *rep);
void api_datasets_get(const api_request *req, api_reply *rep);
void api_datasets_delete(const api_request *req, api_reply *rep);
void api_jobs_submit(const api_request *req, api_reply *rep);
void api_jobs_list(const api_request *req, api_reply *rep);
void api_jobs_get(const api_request *req, api_reply *rep);
void api_jobs_cancel(const api_request *req, api_reply *rep);
void api_jobs_delete(const api_request *req, api_reply *rep);
void api_jobs_events(const api_request *req, api_reply *rep);
void api_jobs_metrics(const api_request *req, api_reply *rep);
void api_jobs_loss_svg(const api_request *req, api_reply *rep);
/* The demo page (static.c): GET / is index.html, GET /web/{file} a file of app->web_dir. */
void api_static_index(const api_request *req, api_reply *rep);
void api_static_file(const api_request *req, api_reply *rep);

/* The job runner's host: datasets from app->datasets, models into app->models. */
job_host api_job_host(api_app *app);
void api_handwriting_sample(const api_request *req, api_reply *rep);
/* Feed and generate of a session on a handwriting model (api_sessions_feed and
 * api_sessions_generate hand those over). */
void api_handwriting_session_feed(const api_request *req, api_reply *rep);
void api_handwriting_session_generate(const api_request *req, api_reply *rep);

/* The session of the path (a reference; held, busy, when acquire).  On failure fills rep
 * (404, or 409 when acquire and another request holds it) and returns NULL.  The caller
 * gives it back with session_release(..., acquire, ...). */
session *api_session_lookup(const api_request *req, api_reply *rep, int acquire);

#endif
