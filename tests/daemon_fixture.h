/*
 * daemon_fixture.h — what every black-box test file of hyperd shares: a tiny model written
 * with the engine, a temporary root, the real daemon started on a free loopback port and
 * stopped (hyperd_proc), HTTP calls with libcurl (reply, http_req), checks that print the
 * reply (expect_error, jint, ...), session helpers, streamed calls (stream_call) and the
 * setup/teardown fixtures.  The suites that use it: test_daemon.c and the files beside it;
 * daemon_main.c runs them all.
 */
#ifndef HYPERD_TEST_DAEMON_FIXTURE_H
#define HYPERD_TEST_DAEMON_FIXTURE_H

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "checkpoint.h"
#include "handwriting.h"
#include "mdn.h"
#include "model.h"
#include "sampler.h"
#include "strokes.h"
#include "vocab.h"

#define CORPUS                                                                                  \
    "The quick brown fox jumps over the lazy dog.\n"                                            \
    "Hello, world! Is it 42? Yes: (maybe) - 'quoted' \"text\"; ok.\n"

#define API_KEY "s3cret-key"

#define START_TIMEOUT_S 10.0

#define STOP_TIMEOUT_S 10.0

#define HTTP_TIMEOUT_S 30L

#define ID_LEN 32

/* The engine's own answers, from the model file the daemon serves: one stream, batch 1. */
typedef struct {
    model m;
    vocab v;
    model_state st;
    model_step_ws *ws;
    real *logits;                  /* (V) of the current state */
    void *scratch;
} ref_model;

typedef struct {
    pid_t pid;                     /* 0 when not running */
    int port;
    char dir[128];                 /* its --data-dir */
    char log[128];                 /* its stderr, appended to across restarts */
    const char *flags[16];         /* extra flags, NULL-terminated */
} hyperd_proc;

#define hyperd_start_ok(p)                                                                     \
    do {                                                                                       \
        char why_[4096];                                                                       \
        ck_assert_msg(hyperd_start((p), why_, sizeof why_) == 0, "%s", why_);                  \
    } while (0)

#define hyperd_stop_ok(p)                                                                      \
    do {                                                                                       \
        int st_ = hyperd_stop(p);                                                              \
        ck_assert_msg(st_ != -1 && WIFEXITED(st_) && WEXITSTATUS(st_) == 0,                    \
                      "hyperd did not exit cleanly on SIGTERM (wait status %d); log: %s", st_, \
                      hyperd_log_tail(p));                                                     \
    } while (0)

typedef struct {
    const char *auth;              /* the Authorization header, or NULL */
    const char *content_type;      /* of the body: NULL = application/json, "" = none sent */
    const char *accept;            /* NULL = none sent */
    int chunked;                   /* send the body with chunked transfer encoding */
    size_t body_len;               /* bytes of the body; 0 = strlen(body) */
    const char *last_event_id;     /* the Last-Event-ID header, or NULL */
    int path_as_is;                /* send "/.." segments as they are (curl squashes them) */
} req_opts;

typedef struct {
    char what[200];                /* "METHOD path", for messages */
    CURLcode rc;
    long status;
    char *body;                    /* NUL-terminated (never NULL after a request) */
    size_t len;
    json_t *json;                  /* the body parsed, or NULL */
    char content_type[128], allow[128], www_auth[128];
} reply;

typedef struct {
    const char *data;
    size_t len, off;
} upload;

/* "/v1/sessions/ID" + tail, as a value whose .s lives to the end of the full expression. */
typedef struct {
    char s[200];
} path_buf;

#define expect_status(r, want)                                                                 \
    ck_assert_msg((r).status == (want), "%s: HTTP %ld, want %d (curl: %s); body: %.1500s",    \
                  (r).what, (r).status, (int)(want), curl_easy_strerror((r).rc), (r).body)

#define expect_error(r, st, type, part) expect_error_at(__LINE__, &(r), st, type, part)

#define jint(r, key) jint_at(__LINE__, &(r), key)

#define jstr(r, key) jstr_at(__LINE__, &(r), key)

#define jnum(r, key) jnum_at(__LINE__, &(r), key)

#define session_new(p, seed, id) session_new_at(__LINE__, p, seed, id)

#define session_state(p, id, seen, busy) session_state_at(__LINE__, p, id, seen, busy)

#define generate(p, id, max_chars, seed) generate_at(__LINE__, p, id, max_chars, seed)

#define expect_same_text(got, want, what)                                                      \
    ck_assert_msg(strcmp(got, want) == 0, "%s:\n got  '%s'\n want '%s'", what, got, want)

typedef struct {
    /* in */
    const hyperd_proc *p;
    char path[200];
    char *body;                    /* owned */
    int ndjson;                    /* ask for NDJSON instead of SSE */
    const char *auth;
    const char *accept;            /* NULL: the type asked for by ndjson; "": no Accept header */
    int hw;                        /* a handwriting stream: point events, not text */
    int abort_after;               /* close the connection after this many text events (0 never) */
    atomic_int abort_now;          /* another thread sets it to close the connection */
    /* out */
    CURL *h;
    CURLcode rc;
    long status;
    reply head;                    /* Content-Type; the body when it is not a stream */
    int is_stream;
    char *pending;                 /* bytes not yet split into events */
    size_t pending_len;
    json_t *events;                /* every event, in order */
    json_t *done;                  /* the final event (borrowed from events) */
    char *text;                    /* the text events, joined */
    size_t text_len;
    int ntext, nbad;
    int npoints;                   /* point events of a handwriting stream */
    int ncomments;                 /* SSE comments (heartbeats) */
    char bad[300];                 /* the first malformed event */
    atomic_int seen;               /* text events so far, for other threads */
    atomic_int finished;           /* the transfer is over */
    double t_start, t_first, t_done;
    pthread_t thread;
} stream_call;

#define expect_stream_done(s, reason) expect_stream_done_at(__LINE__, s, reason)

extern char root[64];
extern char model_path[128];
extern char hw_model_path[128];
extern const stroke_stats hw_stats;
extern hyperd_proc srv;

double now_s(void);

void sleep_ms(int ms);

/* Writes a tiny lnhyperlstm (1 layer, N 32, H 16, Z 4) over the vocabulary of CORPUS,
 * initialised as the trainer would and then perturbed, so that its text varies. */
void model_write(const char *path);

/* Writes a tiny handwriting model (lnhyperlstm, 1 layer, N 16, H 8, Z 2, inputs (dx, dy,
 * eos), a head of 3 mixtures), initialised as the trainer would and slightly perturbed. */
void hw_model_write(const char *path);

void ref_open(ref_model *r);

void ref_close(ref_model *r);

/* Reads text; returns Σ −log2 p of its characters. */
double ref_feed(ref_model *r, const char *text);

/* Samples n characters (each read back into the state); returns them (new string). */
char *ref_generate(ref_model *r, int n, const sampler_params *sp, hyper_rng *rng);

void root_make(void);

void root_remove(void);

/* A daemon that will keep its data in root/name, with the extra flags given. */
void hyperd_init(hyperd_proc *p, const char *name, const char *const *flags);

/* The last bytes of the daemon's log, for failure messages (static buffer). */
const char *hyperd_log_tail(const hyperd_proc *p);

/* A number field of /proc/PID/status ("Threads"; "VmRSS", "VmHWM" in kB); fails the test
 * when it is not there. */
long proc_status(pid_t pid, const char *field);

/* Starts the daemon and waits for its one stdout line "hyperd listening on
 * http://127.0.0.1:PORT".  Returns 0, or -1 with the reason in why (the daemon is gone). */
int hyperd_start(hyperd_proc *p, char *why, size_t whylen);

/* Sends SIGTERM and waits (STOP_TIMEOUT_S, then SIGKILL).  Returns the wait status, or -1
 * when it had to be killed. */
int hyperd_stop(hyperd_proc *p);

size_t on_body(char *data, size_t size, size_t n, void *arg);

/* Copies the value of header "name: value" into out when line is that header. */
void header_value(const char *line, size_t len, const char *name, char *out, size_t cap);

/* Sets up handle h for method path (body may be NULL); the header list is returned for
 * the caller to free after the transfer. */
struct curl_slist *http_setup(CURL *h, const hyperd_proc *p, const char *method,
                                     const char *path, const char *body, const req_opts *o,
                                     upload *up);

reply http_req(const hyperd_proc *p, const char *method, const char *path,
                      const char *body, const req_opts *o);

void reply_free(reply *r);

reply http_get(const hyperd_proc *p, const char *path);

reply http_post(const hyperd_proc *p, const char *path, const char *body);

/* Posts the json_pack of fmt and its arguments. */
reply http_postf(const hyperd_proc *p, const char *path, const char *fmt, ...);

path_buf at(const char *id, const char *tail);

/* The one error shape: {"error": {"code": status, "type": type, "message": "...part..."}}. */
void expect_error_at(int line, const reply *r, int status, const char *type,
                            const char *part);

/* Fields of a JSON reply, checked for their type. */
json_int_t jint_at(int line, const reply *r, const char *key);

const char *jstr_at(int line, const reply *r, const char *key);

double jnum_at(int line, const reply *r, const char *key);

/* Creates a session (with seed when seed >= 0) and copies its id into id. */
void session_new_at(int line, const hyperd_proc *p, int64_t seed, char *id);

/* GET /v1/sessions/{id}: the session's chars_seen and busy. */
void session_state_at(int line, const hyperd_proc *p, const char *id, json_int_t *seen,
                             int *busy);

/* Waits up to timeout_s for the session to be free; returns the seconds it took, or -1. */
double wait_not_busy(const hyperd_proc *p, const char *id, double timeout_s);

/* Generates max_chars characters at temperature 1 (reseeding when seed >= 0); checks the
 * reply and returns the text (new string). */
char *generate_at(int line, const hyperd_proc *p, const char *id, int max_chars,
                         int64_t seed);

/* Prepares a streamed generate on session id with the json_pack of fmt ("stream": true is
 * added). */
void stream_init(stream_call *s, const hyperd_proc *p, const char *id, int ndjson,
                        const char *fmt, ...);

/* Prepares a streamed drawing: POST path (the sample endpoint, or a handwriting session's
 * generate) with the json_pack of fmt ("stream": true is added). */
void hw_stream_init(stream_call *s, const hyperd_proc *p, const char *path, int ndjson,
                           const char *fmt, ...);

void *stream_run(void *arg);

void stream_start(stream_call *s);

void stream_join(stream_call *s);

/* Waits up to timeout_s for the first text event; fails with what arrived otherwise. */
void stream_wait_text(stream_call *s, double timeout_s);

void stream_free(stream_call *s);

/* A stream that ran to its end: HTTP 200, the content type asked for, only well-formed
 * events, and a final done event with this finish_reason. */
void expect_stream_done_at(int line, const stream_call *s, const char *reason);

/* Starts srv in the root made already, with the flags given. */
void serve_in_root(const char *const *flags);

/* Starts srv in a fresh root with the flags given. */
void serve(const char *const *flags);

void setup_plain(void);

void setup_auth(void);

void setup_limits(void);

/* Tests that start their own daemons get a root only. */
void setup_root(void);

/* Stops srv; it must still be alive and exit cleanly (a test may have crashed it).  A
 * failed check here would end the runner without a report, so it is counted instead. */
void teardown(void);

/* The value of the sample "series value" in Prometheus text, or -1 when absent. */
double metric(const char *text, const char *series);

/* Copies Content-Type, Allow and WWW-Authenticate of a header line into the reply (a curl
 * header callback). */
size_t on_header(char *line, size_t size, size_t n, void *arg);

/* An event's "hyper" (include_hyper): an array of n activities [i, g, f, o] (n < 0: one
 * activity, not in an array), each a finite number >= 0. */
int hyper_valid(const json_t *h, int n);

/* ---- helpers the endpoint files share (defined in daemon_fixture.c) ------------------------ */

/* A test case of the suite s whose daemon setup starts before its tests (teardown after). */
TCase *tcase(Suite *s, const char *name, void (*setup)(void), double timeout);

int iso_utc_ms(const char *s);

typedef struct {
    const char *body, *part; /* a refused body, and what the 400's message must name */
} bad_body;

/* POSTs each bad body to the session's endpoint `tail` (400 naming the field), the valid
 * body with the wrong content type (415), and to an unknown session (404); none of it may
 * touch the session. */
void expect_refusals(const char *id, const char *tail, const bad_body *bad, size_t n,
                     const char *valid);

#define BATCH_SESSIONS 32

typedef struct {
    const hyperd_proc *p;
    char id[ID_LEN + 1];
    const char *path_tail;
    const char *body;
    pthread_barrier_t *go;
    reply r;
} call;

void *call_run(void *arg);

/* Runs n calls at once; each gets its reply. */
void calls_run(call *c, int n);

#define HW_SAMPLE "/v1/handwriting/sample"

#define HW_MODEL "handwriting"

/* The daemon of the handwriting tests: charlm and the handwriting model. */
void setup_handwriting(void);

/* A drawing as a reply or a stream gives it: its points in order, and how many strokes. */
typedef struct {
    double *xy;                    /* (n, 2) */
    int n, nstrokes;
} hw_drawing;

void hw_drawing_free(hw_drawing *d);

/* The "strokes" of a JSON reply: non-empty strokes of [x, y] with finite numbers, as many
 * points in all as the reply's "points". */
#define hw_drawing_of(r) hw_drawing_at(__LINE__, &(r))

hw_drawing hw_drawing_at(int line, const reply *r);

/* The point events of a stream that ran to its end: HTTP 200, only well-formed events,
 * want points, and a final {"done": true, "points": want, "finish_reason": "length"}. */
#define hw_stream_drawing(s, want) hw_stream_drawing_at(__LINE__, s, want)

hw_drawing hw_stream_drawing_at(int line, const stream_call *s, int want);

#define expect_same_drawing(a, b, what) expect_same_drawing_at(__LINE__, a, b, what)

void expect_same_drawing_at(int line, const hw_drawing *a, const hw_drawing *b,
                            const char *what);

int drawings_equal(const hw_drawing *a, const hw_drawing *b);

#define SVG_POLYLINES 4

typedef struct {
    int depth, svg_root, paths, tspans;
    int polylines;
    int polyline_points[SVG_POLYLINES]; /* "x,y" pairs of the first polylines' points */
} svg_scan;

/* Parses an SVG document with expat: it must be well-formed XML with an <svg> root.
 * Returns what it holds. */
#define svg_read(doc, len) svg_read_at(__LINE__, doc, len)

svg_scan svg_read_at(int line, const char *doc, size_t len);

/* The number of <path> elements of a well-formed SVG document. */
#define svg_paths(doc, len) svg_read_at(__LINE__, doc, len).paths

/* Creates a session on the model of that name (with seed when seed >= 0). */
#define model_session_new(p, model, seed, id) model_session_new_at(__LINE__, p, model, seed, id)

void model_session_new_at(int line, const hyperd_proc *p, const char *model, int64_t seed,
                          char *id);

/* Creates a session on the handwriting model (with seed when seed >= 0). */
#define hw_session_new(p, seed, id) model_session_new_at(__LINE__, p, HW_MODEL, seed, id)

/* GET /v1/sessions/{id} of a handwriting session: points_seen (and no chars_seen). */
#define hw_points_seen(p, id) hw_points_seen_at(__LINE__, p, id)

json_int_t hw_points_seen_at(int line, const hyperd_proc *p, const char *id);

/* Draws on a session: POST generate with the json_pack of fmt; 200 with as many points as
 * asked for.  Returns the drawing. */
#define hw_generate(p, id, ...) hw_generate_at(__LINE__, p, id, __VA_ARGS__)

hw_drawing hw_generate_at(int line, const hyperd_proc *p, const char *id, const char *fmt,
                          ...);

/* The pen after each point the engine draws from the model file: the prime (absolute
 * points xy (n, 2) in nstrokes strokes of lens; none when nstrokes is 0) read from a
 * fresh state with the pen at its first point, then p->max_points points from p->seed.
 * out (max_points, 2) receives them rounded to hundredths, as the daemon writes them. */
typedef struct {
    double *out;
    int n;
} ref_pen;

int ref_pen_point(const float *pt, double x, double y, void *user);

void hw_ref_draw(const double *prime, const int32_t *lens, int32_t nstrokes,
                 const hw_params *p, double *out);


#endif
