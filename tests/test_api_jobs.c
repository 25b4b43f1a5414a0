/*
 * test_api_jobs.c — black-box tests of hyperd's datasets and training jobs (uploads of text
 * and strokes, job specs and their refusals, events with Last-Event-ID, cancel, a queue
 * behind one worker, resume after kill -9 and SIGTERM, fine-tuning) and of the digit
 * classifiers (classify as numbers and PNG, kernels, classifier jobs).  The daemons,
 * models and helpers are daemon_fixture's.
 */
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint.h"
#include "classifier.h"
#include "handwriting.h"
#include "images.h"
#include "mdn.h"
#include "model.h"
#include "sampler.h"
#include "strokes.h"
#include "trainer.h"
#include "vocab.h"
#include "daemon_fixture.h"

#include "daemon_fixture.h"

/* ==== datasets and training jobs ============================================================ */

#define JOB_ID_CHARS 16            /* a job id: lower-case hex */
#define TRAIN_TEXT_BYTES 10000     /* the training text of the jobs: some 10 KB of ASCII */
#define UPLOAD_LIMIT 16384         /* --max-upload-bytes of the jobs test case's daemon */
#define POLL_MS 5

/* Two lines of strokes (3 + 2 points, 2 points) and one IAM-OnDB lineStrokes line. */
static const char *const STROKES_JSON =
    "[{\"text\": \"hi\", \"strokes\": [[[0, 0], [10, 5], [20, 0]], [[30, 0], [40, 5]]]},\n"
    " {\"strokes\": [[[0, 0], [15, 15]]]}]\n";
static const char *const STROKES_XML =
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<WhiteboardCaptureSession>\n"
    "  <StrokeSet>\n    <Stroke colour=\"black\" start_time=\"1\" end_time=\"2\">\n"
    "      <Point x=\"1000\" y=\"1058\" time=\"1\"/>\n      <Point x=\"1004\" y=\"1062\" time=\"1.1\"/>\n"
    "      <Point x=\"1010\" y=\"1055\" time=\"1.2\"/>\n    </Stroke>\n  </StrokeSet>\n"
    "</WhiteboardCaptureSession>\n";

#define STR_(x) #x
#define STR(x) STR_(x)

/* The daemon of the jobs test case: two training workers of one BLAS thread each, and an
 * upload limit small enough to cross. */
static void setup_jobs(void)
{
    static const char *const flags[] = {"--train-workers", "2", "--train-threads", "1",
                                        "--max-upload-bytes", STR(UPLOAD_LIMIT), NULL};
    serve(flags);
}

/* Seconds of a deadline, stretched as check stretches its timeouts (sanitizer builds). */
static double scaled(double s)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    const double x = m && *m ? atof(m) : 1;
    return s * (x > 1 ? x : 1);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds since the epoch as the daemon writes times: 2026-01-02T03:04:05.678Z. */
static void iso_of_ms(int64_t ms, char *out, size_t n)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03dZ", (int)(ms % 1000));
}

/* Unicode code points of UTF-8 text: the bytes that do not continue a character. */
static int64_t utf8_chars(const char *s, size_t len)
{
    int64_t n = 0;
    for (size_t k = 0; k < len; k++)
        n += ((unsigned char)s[k] & 0xC0) != 0x80;
    return n;
}

/* A deterministic ASCII text of exactly n bytes (new string): lines of words from a small
 * list, so that a tiny model learns something in a few hundred steps.  extra (may be "")
 * is mixed in every few lines: characters the plain text never holds. */
static char *train_text(size_t n, const char *extra)
{
    static const char *const words[] = {"the", "quick", "brown", "fox", "jumps", "over",
                                        "a", "lazy", "dog", "and", "cat", "sleeps",
                                        "in", "warm", "sun", "today"};
    char *t = malloc(n + 64);
    ck_assert_ptr_nonnull(t);
    uint32_t x = 12345;
    size_t len = 0;
    for (int w = 1; len < n; w++) {
        x = x * 1664525u + 1013904223u;
        len += (size_t)sprintf(t + len, "%s%s", words[(x >> 16) % 16], w % 9 ? " " : ".\n");
        if (w % 40 == 0 && *extra)
            len += (size_t)sprintf(t + len, "%s\n", extra);
    }
    t[n - 1] = '\n';
    t[n] = 0;
    return t;
}

/* The SHA-256 of a file as sha256sum computes it: 64 lower-case hex digits into out. */
static void sha256_file(const char *path, char *out)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *f = popen(cmd, "r");
    ck_assert_msg(f != NULL, "popen %s: %s", cmd, strerror(errno));
    int got = fscanf(f, "%64s", out);
    int rc = pclose(f);
    ck_assert_msg(got == 1 && rc == 0 && strlen(out) == 64 && strspn(out, "0123456789abcdef") == 64,
                  "%s: exit status %d, output '%s'", cmd, rc, got == 1 ? out : "");
}

/* The SHA-256 of bytes, by sha256sum (not by anything the daemon links). */
static void sha256_hex(const void *data, size_t len, char *out)
{
    char path[128];
    snprintf(path, sizeof path, "%s/sha-XXXXXX", root);
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp %s: %s", path, strerror(errno));
    ck_assert_msg(write(fd, data, len) == (ssize_t)len, "write %s: %s", path, strerror(errno));
    close(fd);
    sha256_file(path, out);
    unlink(path);
}

/* ---- datasets --------------------------------------------------------------------------- */

/* POST /v1/datasets?query with a body of len bytes (0: strlen) of Content-Type ctype. */
static reply dataset_put(const hyperd_proc *p, const char *query, const char *ctype,
                         const char *data, size_t len, int chunked)
{
    char path[400];
    snprintf(path, sizeof path, "/v1/datasets?%s", query);
    req_opts o = {.content_type = ctype, .chunked = chunked, .body_len = len};
    return http_req(p, "POST", path, data, &o);
}

/* Uploads text as the text dataset name: 201. */
#define dataset_put_text(p, name, text) dataset_put_text_at(__LINE__, p, name, text)
static void dataset_put_text_at(int line, const hyperd_proc *p, const char *name, const char *text)
{
    char q[128];
    snprintf(q, sizeof q, "name=%s", name);
    reply r = dataset_put(p, q, "text/plain", text, 0, 0);
    ck_assert_msg(r.status == 201, "line %d: %s: HTTP %ld, want 201; body: %.1500s", line, r.what,
                  r.status, r.body);
    reply_free(&r);
}

/* A dataset as the API shows it: exactly these fields, with these values. */
#define expect_dataset(j, name, kind, bytes, items, sha, parts, builtin)                        \
    expect_dataset_at(__LINE__, j, name, kind, bytes, items, sha, parts, builtin)
static void expect_dataset_at(int line, json_t *j, const char *name, const char *kind,
                              int64_t bytes, int64_t items, const char *sha, int parts, int builtin)
{
    char *d = json_dumps(j, JSON_COMPACT);
    json_t *created = json_object_get(j, "created_at");
    ck_assert_msg(json_is_object(j) && json_object_size(j) == 8 &&
                      json_is_string(json_object_get(j, "name")) &&
                      strcmp(json_string_value(json_object_get(j, "name")), name) == 0 &&
                      json_is_string(json_object_get(j, "kind")) &&
                      strcmp(json_string_value(json_object_get(j, "kind")), kind) == 0 &&
                      json_is_integer(json_object_get(j, "bytes")) &&
                      json_integer_value(json_object_get(j, "bytes")) == bytes &&
                      json_is_integer(json_object_get(j, "items")) &&
                      json_integer_value(json_object_get(j, "items")) == items &&
                      json_is_string(json_object_get(j, "sha256")) &&
                      strcmp(json_string_value(json_object_get(j, "sha256")), sha) == 0 &&
                      json_is_integer(json_object_get(j, "parts")) &&
                      json_integer_value(json_object_get(j, "parts")) == parts &&
                      json_is_boolean(json_object_get(j, "builtin")) &&
                      json_is_true(json_object_get(j, "builtin")) == builtin &&
                      (json_is_null(created) ||
                       (json_is_string(created) && iso_utc_ms(json_string_value(created)))),
                  "line %d: dataset %s\nwant name %s, kind %s, bytes %lld, items %lld, sha256 %s, "
                  "parts %d, builtin %d, created_at an ISO time or null", line, d, name, kind,
                  (long long)bytes, (long long)items, sha, parts, builtin);
    free(d);
}

/* The listing's entry of name (borrowed from r), or NULL. */
static json_t *listed_dataset(const reply *r, const char *name)
{
    size_t k;
    json_t *e;
    json_array_foreach(json_object_get(r->json, "datasets"), k, e)
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return e;
    return NULL;
}

/* Entries of the store's directory that start with a dot: uploads or deletions in
 * progress, or left behind. */
static int store_leftovers(const hyperd_proc *p)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/datasets", p->dir);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- jobs ------------------------------------------------------------------------------- */

/* "/v1/jobs/ID" + tail. */
static path_buf job_at(const char *id, const char *tail)
{
    path_buf b;
    snprintf(b.s, sizeof b.s, "/v1/jobs/%s%s", id, tail);
    return b;
}

/* The spec of a tiny character job (new reference): a 1-layer LSTM of 32 units, batches of
 * 8 × 32 characters, validation every 100 steps on up to 1000 characters. */
static json_t *tiny_spec(const char *dataset, const char *model_name, json_int_t steps)
{
    json_t *s = json_pack("{s:s, s:s, s:s, s:{s:s, s:i}, s:{s:I, s:i, s:i, s:f, s:i, s:i}}",
                          "kind", "charlm", "dataset", dataset, "model_name", model_name,
                          "model", "cell", "lstm", "units", 32,
                          "train", "steps", steps, "batch", 8, "seq", 32, "lr", 0.01,
                          "eval_every", 100, "eval_limit", 1000);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* Sets spec.train.key (value stolen); returns spec. */
static json_t *train_set(json_t *spec, const char *key, json_t *value)
{
    json_object_set_new(json_object_get(spec, "train"), key, value);
    return spec;
}

/* POST /v1/jobs with spec (stolen). */
static reply job_post(const hyperd_proc *p, json_t *spec)
{
    char *body = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    reply r = http_post(p, "/v1/jobs", body);
    free(body);
    return r;
}

/* Submits spec (stolen): 202 with the record of a queued or running job, whose id goes to
 * id (JOB_ID_CHARS + 1 bytes). */
#define job_submit(p, spec, id) job_submit_at(__LINE__, p, spec, id)
static void job_submit_at(int line, const hyperd_proc *p, json_t *spec, char *id)
{
    reply r = job_post(p, spec);
    ck_assert_msg(r.status == 202, "line %d: %s: HTTP %ld, want 202; body: %.1500s", line, r.what,
                  r.status, r.body);
    const char *s = jstr_at(line, &r, "id"), *state = jstr_at(line, &r, "state");
    ck_assert_msg(strlen(s) == JOB_ID_CHARS && strspn(s, "0123456789abcdef") == JOB_ID_CHARS,
                  "line %d: job id '%s' is not %d lower-case hex digits", line, s, JOB_ID_CHARS);
    ck_assert_msg(strcmp(state, "queued") == 0 || strcmp(state, "running") == 0,
                  "line %d: a new job is %s: %.1500s", line, state, r.body);
    memcpy(id, s, JOB_ID_CHARS + 1);
    reply_free(&r);
}

/* What the tests look at in GET /v1/jobs/{id}. */
typedef struct {
    char state[16];
    json_int_t step, steps, checkpoint_step, resumes; /* checkpoint_step -1 when null */
    double train_loss, val_loss;                      /* NaN when null */
    char started_at[32], finished_at[32];             /* "" when null */
    char error[256];                                  /* "" when null */
} job_view;

static int finished_state(const char *s)
{
    return !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
}

static double num_or_nan(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

#define job_look(p, id) job_look_at(__LINE__, p, id)
static job_view job_look_at(int line, const hyperd_proc *p, const char *id)
{
    reply r = http_get(p, job_at(id, "").s);
    ck_assert_msg(r.status == 200, "line %d: %s: HTTP %ld; body: %.1500s", line, r.what, r.status,
                  r.body);
    job_view v;
    memset(&v, 0, sizeof v);
    ck_assert_str_eq(jstr_at(line, &r, "id"), id);
    snprintf(v.state, sizeof v.state, "%s", jstr_at(line, &r, "state"));
    v.step = jint_at(line, &r, "step");
    v.steps = jint_at(line, &r, "steps");
    v.resumes = jint_at(line, &r, "resumes");
    json_t *c = json_object_get(r.json, "checkpoint_step");
    ck_assert_msg(json_is_integer(c) || json_is_null(c), "line %d: checkpoint_step: %s", line, r.body);
    v.checkpoint_step = json_is_integer(c) ? json_integer_value(c) : -1;
    v.train_loss = num_or_nan(json_object_get(r.json, "train_loss"));
    v.val_loss = num_or_nan(json_object_get(r.json, "val_loss"));
    const char *times[2] = {"started_at", "finished_at"};
    char *dst[2] = {v.started_at, v.finished_at};
    for (int k = 0; k < 2; k++) {
        json_t *t = json_object_get(r.json, times[k]);
        ck_assert_msg(json_is_null(t) || (json_is_string(t) && iso_utc_ms(json_string_value(t))),
                      "line %d: %s: %s", line, times[k], r.body);
        snprintf(dst[k], 32, "%s", json_is_string(t) ? json_string_value(t) : "");
    }
    json_t *e = json_object_get(r.json, "error");
    ck_assert_msg(json_is_null(e) || json_is_string(e), "line %d: error: %s", line, r.body);
    snprintf(v.error, sizeof v.error, "%s", json_is_string(e) ? json_string_value(e) : "");
    ck_assert_msg(!strcmp(v.state, "queued") || !strcmp(v.state, "running") ||
                      finished_state(v.state), "line %d: state '%s'", line, v.state);
    reply_free(&r);
    return v;
}

/* Polls the job until it has finished; fails after timeout_s (scaled). */
#define job_wait_end(p, id, timeout_s) job_wait_end_at(__LINE__, p, id, timeout_s)
static job_view job_wait_end_at(int line, const hyperd_proc *p, const char *id, double timeout_s)
{
    const double deadline = now_s() + scaled(timeout_s);
    for (;;) {
        job_view v = job_look_at(line, p, id);
        if (finished_state(v.state))
            return v;
        ck_assert_msg(now_s() < deadline, "line %d: job %s is still %s at step %lld of %lld "
                      "after %.0f s; log: %s", line, id, v.state, (long long)v.step,
                      (long long)v.steps, scaled(timeout_s), hyperd_log_tail(p));
        sleep_ms(POLL_MS);
    }
}

/* Polls the job until it runs at step >= min_step with a checkpoint at >= min_ckpt (-1: any);
 * fails when it finishes first or after timeout_s (scaled). */
#define job_wait_running(p, id, min_step, min_ckpt, timeout_s)                                  \
    job_wait_running_at(__LINE__, p, id, min_step, min_ckpt, timeout_s)
static job_view job_wait_running_at(int line, const hyperd_proc *p, const char *id,
                                    json_int_t min_step, json_int_t min_ckpt, double timeout_s)
{
    const double deadline = now_s() + scaled(timeout_s);
    for (;;) {
        job_view v = job_look_at(line, p, id);
        if (!strcmp(v.state, "running") && v.step >= min_step && v.checkpoint_step >= min_ckpt)
            return v;
        ck_assert_msg(!finished_state(v.state), "line %d: job %s ended (%s, step %lld, error '%s') "
                      "before it was seen running at step %lld with a checkpoint at %lld: make it "
                      "longer", line, id, v.state, (long long)v.step, v.error, (long long)min_step,
                      (long long)min_ckpt);
        ck_assert_msg(now_s() < deadline, "line %d: job %s is %s at step %lld (checkpoint %lld) "
                      "after %.0f s", line, id, v.state, (long long)v.step,
                      (long long)v.checkpoint_step, scaled(timeout_s));
        sleep_ms(POLL_MS);
    }
}

/* ---- following a job: GET /v1/jobs/{id}/events ------------------------------------------ */

typedef struct {
    reply head;                    /* status, Content-Type; the body when it is not a stream */
    int ndjson;
    int stop_after;                /* close the connection after this many progress events */
    int is_stream;
    char *pending;                 /* bytes not yet split into events */
    size_t pending_len;
    json_t *events;                /* the progress events' data, in order */
    json_t *ids;                   /* their SSE ids (integers), in order */
    json_t *done;                  /* the final event, or NULL */
    int heartbeats, nbad;
    char bad[300];                 /* the first malformed event */
} job_stream;

static void job_stream_bad(job_stream *s, const char *why, const char *ev, size_t len)
{
    if (s->nbad++ == 0)
        snprintf(s->bad, sizeof s->bad, "%s: '%.*s'", why, (int)(len > 200 ? 200 : len), ev);
}

/* One SSE event ("id: N\ndata: {...}", "data: {...}" or a ": " comment) or NDJSON line. */
static void job_stream_event(job_stream *s, const char *ev, size_t len)
{
    json_int_t id = -1;
    const char *data = ev;
    size_t dlen = len;
    if (!s->ndjson) {
        if (len > 0 && ev[0] == ':') {
            s->heartbeats++;
            return;
        }
        if (len > 4 && memcmp(ev, "id: ", 4) == 0) {
            const char *nl = memchr(ev, '\n', len);
            char num[32], *end = NULL;
            if (!nl || nl - ev - 4 >= (ptrdiff_t)sizeof num) {
                job_stream_bad(s, "an id line without data", ev, len);
                return;
            }
            snprintf(num, sizeof num, "%.*s", (int)(nl - ev - 4), ev + 4);
            id = strtoll(num, &end, 10);
            if (*end || id < 1) {
                job_stream_bad(s, "an id that is not a positive integer", ev, len);
                return;
            }
            data = nl + 1;
            dlen = len - (size_t)(nl + 1 - ev);
        }
        if (dlen < 6 || memcmp(data, "data: ", 6) != 0 || memchr(data, '\n', dlen)) {
            job_stream_bad(s, "not an optional 'id: N' line and one 'data: ' line", ev, len);
            return;
        }
        data += 6;
        dlen -= 6;
    }
    json_t *j = json_loadb(data, dlen, 0, NULL);
    if (!json_is_object(j) || s->done) {
        job_stream_bad(s, s->done ? "an event after the final one" : "not a JSON object", ev, len);
        json_decref(j);
        return;
    }
    if (json_object_get(j, "done")) {
        if (id >= 0)
            job_stream_bad(s, "the final event has an id", ev, len);
        s->done = j;
        return;
    }
    if (!s->ndjson && id < 0)
        job_stream_bad(s, "a progress event without an id", ev, len);
    if (!json_is_integer(json_object_get(j, "step")) ||
        !json_is_string(json_object_get(j, "state")))
        job_stream_bad(s, "a progress event without step or state", ev, len);
    json_array_append_new(s->events, j);
    json_array_append_new(s->ids, json_integer(id));
}

static size_t job_stream_write(char *data, size_t size, size_t n, void *arg)
{
    job_stream *s = arg;
    const size_t len = size * n;
    if (!s->is_stream)
        return on_body(data, size, n, &s->head);
    s->pending = realloc(s->pending, s->pending_len + len + 1);
    memcpy(s->pending + s->pending_len, data, len);
    s->pending_len += len;
    const char *sep = s->ndjson ? "\n" : "\n\n";
    const size_t seplen = strlen(sep);
    char *end;
    while ((end = memmem(s->pending, s->pending_len, sep, seplen)) != NULL) {
        if (s->stop_after && json_array_size(s->events) >= (size_t)s->stop_after)
            break;
        const size_t elen = (size_t)(end - s->pending);
        job_stream_event(s, s->pending, elen);
        memmove(s->pending, end + seplen, s->pending_len - elen - seplen);
        s->pending_len -= elen + seplen;
    }
    if (s->stop_after && json_array_size(s->events) >= (size_t)s->stop_after)
        return 0; /* curl closes the connection */
    return len;
}

static size_t job_stream_header(char *line, size_t size, size_t n, void *arg)
{
    job_stream *s = arg;
    on_header(line, size, n, &s->head);
    s->is_stream = strncmp(s->head.content_type, "text/event-stream", 17) == 0 ||
                   strncmp(s->head.content_type, "application/x-ndjson", 20) == 0;
    return size * n;
}

/* Follows GET /v1/jobs/{id}/events + tail (a query string, or "") to its end, or until
 * stop_after (0: never) progress events have come; last_event_id (may be NULL) is sent as
 * Last-Event-ID. */
static void job_stream_run(job_stream *s, const hyperd_proc *p, const char *id, const char *tail,
                           const char *last_event_id, int ndjson, int stop_after)
{
    memset(s, 0, sizeof *s);
    s->ndjson = ndjson;
    s->stop_after = stop_after;
    s->events = json_array();
    s->ids = json_array();
    s->head.body = calloc(1, 1);
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/events%s", id, tail);
    snprintf(s->head.what, sizeof s->head.what, "GET %.150s (Last-Event-ID %.20s)", path,
             last_event_id ? last_event_id : "none");
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    req_opts o = {.accept = ndjson ? "application/x-ndjson" : "text/event-stream",
                  .last_event_id = last_event_id};
    upload up;
    struct curl_slist *hd = http_setup(h, p, "GET", path, NULL, &o, &up);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, job_stream_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, job_stream_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    s->head.rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &s->head.status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (s->is_stream && s->pending_len && !stop_after)
        job_stream_bad(s, "bytes after the last complete event", s->pending, s->pending_len);
    if (!s->is_stream && s->head.len)
        s->head.json = json_loadb(s->head.body, s->head.len, 0, NULL);
}

static void job_stream_free(job_stream *s)
{
    free(s->pending);
    json_decref(s->events);
    json_decref(s->ids);
    json_decref(s->done);
    reply_free(&s->head);
}

static json_int_t event_step(const job_stream *s, size_t k)
{
    return json_integer_value(json_object_get(json_array_get(s->events, k), "step"));
}

/* A job's stream that ran to its end: HTTP 200 of the type asked for, only well-formed
 * events, SSE ids first_id, first_id + 1, ... (none for NDJSON), steps increasing, every
 * progress event "running", and a final event {"done": true, "state": state, ...} that says
 * what GET /v1/jobs/{id} says. */
#define expect_job_stream(p, s, id, first_id, state)                                            \
    expect_job_stream_at(__LINE__, p, s, id, first_id, state)
static void expect_job_stream_at(int line, const hyperd_proc *p, const job_stream *s,
                                 const char *id, json_int_t first_id, const char *state)
{
    ck_assert_msg(s->head.rc == CURLE_OK && s->head.status == 200 && s->is_stream,
                  "line %d: %s: HTTP %ld, curl: %s, Content-Type '%s', %zu event(s); body: %.1500s",
                  line, s->head.what, s->head.status, curl_easy_strerror(s->head.rc),
                  s->head.content_type, json_array_size(s->events), s->head.body);
    const char *ct = s->ndjson ? "application/x-ndjson" : "text/event-stream";
    ck_assert_msg(strncmp(s->head.content_type, ct, strlen(ct)) == 0,
                  "line %d: Content-Type '%s', want %s", line, s->head.content_type, ct);
    ck_assert_msg(s->nbad == 0, "line %d: %d malformed event(s), the first %s", line, s->nbad, s->bad);
    for (size_t k = 0; k < json_array_size(s->events); k++) {
        const json_int_t got = json_integer_value(json_array_get(s->ids, k));
        ck_assert_msg(got == (s->ndjson ? -1 : first_id + (json_int_t)k),
                      "line %d: event %zu has id %lld, want %lld", line, k, (long long)got,
                      (long long)(s->ndjson ? -1 : first_id + (json_int_t)k));
        ck_assert_msg(k == 0 || event_step(s, k) > event_step(s, k - 1),
                      "line %d: event %zu is of step %lld, after step %lld", line, k,
                      (long long)event_step(s, k), (long long)event_step(s, k - 1));
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(s->events, k), "state")),
                         "running");
    }
    ck_assert_msg(s->done != NULL, "line %d: no final event after %zu event(s)", line,
                  json_array_size(s->events));
    char *d = json_dumps(s->done, JSON_COMPACT);
    ck_assert_msg(json_is_true(json_object_get(s->done, "done")) &&
                      json_is_string(json_object_get(s->done, "state")) &&
                      strcmp(json_string_value(json_object_get(s->done, "state")), state) == 0,
                  "line %d: final event %s, want done: true and state %s", line, d, state);
    reply r = http_get(p, job_at(id, "").s);
    expect_status(r, 200);
    json_t *tail = json_deep_copy(s->done);
    json_object_del(tail, "done");
    ck_assert_msg(json_object_size(tail) == json_object_size(r.json),
                  "line %d: final event %s\nGET says %s", line, d, r.body);
    const char *key;
    json_t *v;
    json_object_foreach(r.json, key, v) { /* reals: 10 digits in the stream */
        json_t *e = json_object_get(tail, key);
        const int same = json_is_real(v) ? json_is_number(e) &&
                                               fabs(json_number_value(e) - json_real_value(v)) <=
                                                   1e-9 * fabs(json_real_value(v))
                                         : json_equal(e, v);
        ck_assert_msg(same, "line %d: '%s' differs: final event %s\nGET says %s", line, key, d,
                      r.body);
    }
    json_decref(tail);
    reply_free(&r);
    free(d);
}

/* GET /v1/jobs/{id}/metrics: its history (a new reference), checked for its shape. */
#define job_history(p, id) job_history_at(__LINE__, p, id)
static json_t *job_history_at(int line, const hyperd_proc *p, const char *id)
{
    reply r = http_get(p, job_at(id, "/metrics").s);
    ck_assert_msg(r.status == 200, "line %d: %s: HTTP %ld; body: %.1500s", line, r.what, r.status,
                  r.body);
    json_t *h = json_object_get(r.json, "history");
    ck_assert_msg(json_is_array(h) && jint_at(line, &r, "count") == (json_int_t)json_array_size(h) &&
                      strcmp(jstr_at(line, &r, "id"), id) == 0,
                  "line %d: metrics %.1500s", line, r.body);
    json_incref(h);
    reply_free(&r);
    return h;
}

/* The history must be the stream's progress events, one for one. */
#define expect_history_is_stream(h, s) expect_history_is_stream_at(__LINE__, h, s)
static void expect_history_is_stream_at(int line, json_t *h, const job_stream *s)
{
    ck_assert_msg(json_array_size(h) == json_array_size(s->events),
                  "line %d: the history holds %zu point(s), the stream sent %zu", line,
                  json_array_size(h), json_array_size(s->events));
    for (size_t k = 0; k < json_array_size(h); k++) {
        json_t *a = json_array_get(h, k), *b = json_array_get(s->events, k);
        ck_assert_msg(json_equal(json_object_get(a, "step"), json_object_get(b, "step")) &&
                          json_equal(json_object_get(a, "time_ms"), json_object_get(b, "time_ms")) &&
                          json_equal(json_object_get(a, "evaluated"), json_object_get(b, "evaluated")),
                      "line %d: point %zu: step %lld at %lld in the history, step %lld at %lld in "
                      "the stream", line, k,
                      (long long)json_integer_value(json_object_get(a, "step")),
                      (long long)json_integer_value(json_object_get(a, "time_ms")),
                      (long long)json_integer_value(json_object_get(b, "step")),
                      (long long)json_integer_value(json_object_get(b, "time_ms")));
    }
}

/* A model as GET /v1/models/{name} shows it (the reply; its status checked). */
#define model_get(p, name) model_get_at(__LINE__, p, name)
static reply model_get_at(int line, const hyperd_proc *p, const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/models/%s", name);
    reply r = http_get(p, path);
    ck_assert_msg(r.status == 200, "line %d: %s: HTTP %ld; body: %.1500s", line, r.what, r.status,
                  r.body);
    return r;
}

/* kill -9: the daemon gets no chance to save anything. */
static void hyperd_kill9(hyperd_proc *p)
{
    kill(p->pid, SIGKILL);
    int status = 0;
    ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "hyperd ended with wait status %d before the SIGKILL", status);
    p->pid = 0;
}

/* ---- dataset tests ------------------------------------------------------------------------- */

START_TEST(datasets_list_the_builtins)
{
    /* fortunes is the file the daemon found, as it looks for it (it runs where we run) */
    const char *fpath = access("data/fortunes.txt", R_OK) == 0 ? "data/fortunes.txt"
                                                                : "/usr/share/games/fortunes/fortunes";
    ck_assert_msg(access(fpath, R_OK) == 0, "neither data/fortunes.txt nor %s exists", fpath);
    FILE *f = fopen(fpath, "rb");
    ck_assert_ptr_nonnull(f);
    struct stat sb;
    ck_assert_int_eq(fstat(fileno(f), &sb), 0);
    char *ftext = malloc((size_t)sb.st_size + 1);
    ck_assert_uint_eq(fread(ftext, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
    fclose(f);
    char fsha[65], hsha[65], fcreated[32];
    sha256_file(fpath, fsha);
    sha256_hex("synthetic:2000", 14, hsha);
    iso_of_ms((int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000, fcreated,
              sizeof fcreated);

    reply r = http_get(&srv, "/v1/datasets");
    expect_status(r, 200);
    json_t *list = json_object_get(r.json, "datasets");
    ck_assert_msg(json_is_array(list) && json_array_size(list) >= 2, "%s", r.body);
    /* built-ins first */
    json_t *fo = json_array_get(list, 0), *he = json_array_get(list, 1);
    expect_dataset(fo, "fortunes", "text", (int64_t)sb.st_size,
                   utf8_chars(ftext, (size_t)sb.st_size), fsha, 1, 1);
    ck_assert_str_eq(json_string_value(json_object_get(fo, "created_at")), fcreated);
    expect_dataset(he, "hershey-synthetic", "strokes", 0, 2000, hsha, 0, 1);
    ck_assert(json_is_null(json_object_get(he, "created_at")));
    /* each one's own page says the same */
    reply g = http_get(&srv, "/v1/datasets/fortunes");
    expect_status(g, 200);
    ck_assert_msg(json_equal(g.json, fo), "GET %s\nlisted %s", g.body, r.body);
    reply_free(&g);
    g = http_get(&srv, "/v1/datasets/hershey-synthetic");
    expect_status(g, 200);
    ck_assert_msg(json_equal(g.json, he), "GET %s\nlisted %s", g.body, r.body);
    reply_free(&g);
    /* neither can be replaced nor deleted */
    g = dataset_put(&srv, "name=fortunes", "text/plain", "abc", 0, 0);
    expect_error(g, 409, "conflict", "built-in");
    reply_free(&g);
    g = dataset_put(&srv, "name=hershey-synthetic", "application/json", STROKES_JSON, 0, 0);
    expect_error(g, 409, "conflict", "built-in");
    reply_free(&g);
    g = http_req(&srv, "DELETE", "/v1/datasets/fortunes", NULL, NULL);
    expect_error(g, 409, "conflict", "built-in");
    reply_free(&g);
    g = http_req(&srv, "DELETE", "/v1/datasets/hershey-synthetic", NULL, NULL);
    expect_error(g, 409, "conflict", "built-in");
    reply_free(&g);
    g = http_get(&srv, "/v1/datasets/fortunes");
    expect_status(g, 200);
    ck_assert_msg(json_equal(g.json, fo), "after the refusals: %s", g.body);
    reply_free(&g);
    reply_free(&r);
    free(ftext);
}
END_TEST

START_TEST(dataset_text_upload_get_delete)
{
    const char *text = "Grüße aus Köln — naïve café.\nSecond line: 42 €.\n";
    const size_t len = strlen(text);
    char sha[65];
    sha256_hex(text, len, sha);
    reply up = dataset_put(&srv, "name=greetings", "text/plain; charset=utf-8", text, 0, 0);
    expect_status(up, 201);
    expect_dataset(up.json, "greetings", "text", (int64_t)len, utf8_chars(text, len), sha, 1, 0);
    ck_assert_msg(utf8_chars(text, len) < (int64_t)len, "the text should hold multi-byte characters");
    ck_assert(json_is_string(json_object_get(up.json, "created_at")));
    reply r = http_get(&srv, "/v1/datasets/greetings");
    expect_status(r, 200);
    ck_assert_msg(json_equal(r.json, up.json), "GET %s\nupload said %s", r.body, up.body);
    reply_free(&r);
    r = http_get(&srv, "/v1/datasets");
    expect_status(r, 200);
    ck_assert_msg(json_equal(listed_dataset(&r, "greetings"), up.json), "listed: %s", r.body);
    reply_free(&r);
    /* a second upload to the name is refused and changes nothing, in either kind */
    r = dataset_put(&srv, "name=greetings", "text/plain", "other text", 0, 0);
    expect_error(r, 409, "conflict", "greetings");
    reply_free(&r);
    r = dataset_put(&srv, "name=greetings", "application/json", STROKES_JSON, 0, 0);
    expect_error(r, 409, "conflict", "greetings");
    reply_free(&r);
    r = http_get(&srv, "/v1/datasets/greetings");
    ck_assert_msg(r.status == 200 && json_equal(r.json, up.json), "after the refusals: %s", r.body);
    reply_free(&r);
    /* delete: 204, then it is gone, and a second delete finds nothing */
    r = http_req(&srv, "DELETE", "/v1/datasets/greetings", NULL, NULL);
    expect_status(r, 204);
    ck_assert_msg(r.len == 0, "204 with a body: %s", r.body);
    reply_free(&r);
    r = http_get(&srv, "/v1/datasets/greetings");
    expect_error(r, 404, "not_found", "greetings");
    reply_free(&r);
    r = http_req(&srv, "DELETE", "/v1/datasets/greetings", NULL, NULL);
    expect_error(r, 404, "not_found", "greetings");
    reply_free(&r);
    r = http_get(&srv, "/v1/datasets");
    ck_assert_msg(listed_dataset(&r, "greetings") == NULL, "still listed: %s", r.body);
    reply_free(&r);
    /* the name is free again; no Content-Type at all is text */
    req_opts none = {.content_type = ""};
    r = http_req(&srv, "POST", "/v1/datasets?name=greetings", "abc", &none);
    expect_status(r, 201);
    expect_dataset(r.json, "greetings", "text", 3, 3,
                   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 1, 0);
    reply_free(&r);
    r = http_req(&srv, "DELETE", "/v1/datasets/greetings", NULL, NULL);
    expect_status(r, 204);
    reply_free(&r);
    r = http_req(&srv, "DELETE", "/v1/datasets/no-such-set", NULL, NULL);
    expect_error(r, 404, "not_found", "no-such-set");
    reply_free(&r);
    reply_free(&up);
    ck_assert_int_eq(store_leftovers(&srv), 0);
}
END_TEST

START_TEST(dataset_strokes_parts_add_up)
{
    const size_t lj = strlen(STROKES_JSON), lx = strlen(STROKES_XML);
    char *both = malloc(lj + lx + 1);
    memcpy(both, STROKES_JSON, lj);
    memcpy(both + lj, STROKES_XML, lx + 1);
    char sha1[65], sha2[65];
    sha256_hex(STROKES_JSON, lj, sha1);
    sha256_hex(both, lj + lx, sha2);
    reply first = dataset_put(&srv, "name=pen&kind=strokes", "application/json; charset=utf-8",
                              STROKES_JSON, 0, 0);
    expect_status(first, 201);
    expect_dataset(first.json, "pen", "strokes", (int64_t)lj, 2, sha1, 1, 0);
    /* an IAM-OnDB document appended: one more line, one more part; the checksum is of both */
    reply second = dataset_put(&srv, "name=pen", "application/xml", STROKES_XML, 0, 0);
    expect_status(second, 201);
    expect_dataset(second.json, "pen", "strokes", (int64_t)(lj + lx), 3, sha2, 2, 0);
    ck_assert_str_eq(json_string_value(json_object_get(second.json, "created_at")),
                     json_string_value(json_object_get(first.json, "created_at")));
    /* broken parts are refused, naming the fault, and leave the dataset as it was */
    reply r = dataset_put(&srv, "name=pen", "application/json", "[{\"strokes\": [[[0, 0], [1, 1]]]",
                          0, 0);
    expect_error(r, 400, "invalid_request", "invalid JSON");
    reply_free(&r);
    r = dataset_put(&srv, "name=pen", "text/xml", "<WhiteboardCaptureSession><StrokeSet>", 0, 0);
    expect_error(r, 400, "invalid_request", "malformed XML");
    reply_free(&r);
    /* text cannot go into a strokes dataset */
    r = dataset_put(&srv, "name=pen", "text/plain", "abc", 0, 0);
    expect_error(r, 409, "conflict", "pen");
    reply_free(&r);
    r = http_get(&srv, "/v1/datasets/pen");
    ck_assert_msg(r.status == 200 && json_equal(r.json, second.json), "after the refusals: %s\n"
                  "want %s", r.body, second.body);
    reply_free(&r);
    ck_assert_int_eq(store_leftovers(&srv), 0);
    r = http_req(&srv, "DELETE", "/v1/datasets/pen", NULL, NULL);
    expect_status(r, 204);
    reply_free(&r);
    reply_free(&first);
    reply_free(&second);
    free(both);
}
END_TEST

typedef struct {
    const char *query, *ctype, *body;
    size_t len;                    /* 0: strlen(body) */
    const char *part;              /* the 400 message mentions it */
} bad_upload;

START_TEST(dataset_uploads_refused)
{
    char long_name[80];
    snprintf(long_name, sizeof long_name, "name=%064d", 0); /* 64 characters: one too many */
    static const char *const names[] = {
        "name=..", "name=.", "name=..%2F..%2Fetc", "name=a%2Fb", "name=%2Fetc", "name=.hidden",
        "name=a..b", "name=a%20b", "name=caf%C3%A9", "name=a%5Cb", "name=a%3Bb"};
    const bad_upload bad[] = {
        {"name=bad", "application/json", "[{\"strokes\": [[[0, 0], [10, 5]]]", 0, "invalid JSON"},
        {"name=bad", "application/json", "[{\"strokes\": [[[0, \"a\"], [10, 5]]]}]", 0, "point 0"},
        {"name=bad", "application/json", "[{\"strokes\": [[[0, 0], [1, 1]]], \"x\": 1}]", 0,
         "unknown key"},
        {"name=bad", "application/json", "[]", 0, "no lines"},
        {"name=bad", "application/json", "{\"strokes\": []}", 0, "array"},
        {"name=bad", "application/xml", "<WhiteboardCaptureSession><StrokeSet>", 0, "malformed XML"},
        {"name=bad", "application/xml", "<foo/>", 0, "WhiteboardCaptureSession"},
        {"name=bad", "text/plain", "", 0, "empty"},
        {"name=bad", "text/plain", "ab\xff" "cd", 0, "UTF-8"},
        {"name=bad", "text/plain", "ab\xc3", 0, "inside a character"},
        {"name=bad", "text/plain", "ab\0cd", 5, "U+0000"},
        {"name=bad", "text/csv", "abc", 0, "Content-Type"},
        {"name=bad&kind=strokes", "text/plain", "abc", 0, "kind=strokes"},
        {"name=bad&kind=text", "application/json", "[]", 0, "kind=text"},
        {"name=bad&kind=bogus", "text/plain", "abc", 0, "kind"},
        {"kind=text", "text/plain", "abc", 0, "name: required"},
        {"name=", "text/plain", "abc", 0, "name: required"},
        {long_name, "text/plain", "abc", 0, "not a valid dataset name"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        reply r = dataset_put(&srv, bad[k].query, bad[k].ctype, bad[k].body, bad[k].len, 0);
        expect_error(r, bad[k].ctype && !strcmp(bad[k].ctype, "text/csv") ? 415 : 400,
                     bad[k].ctype && !strcmp(bad[k].ctype, "text/csv") ? "unsupported_media_type" : "invalid_request",
                     bad[k].part);
        reply_free(&r);
    }
    {   /* a media type no upload takes */
        reply r = dataset_put(&srv, "name=bad", "image/png", "abc", 0, 0);
        expect_error(r, 415, "unsupported_media_type", "Content-Type");
        reply_free(&r);
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        for (int chunked = 0; chunked < 2; chunked++) {
            reply r = dataset_put(&srv, names[k], "text/plain", "abc", 0, chunked);
            expect_error(r, 400, "invalid_request", "not a valid dataset name");
            reply_free(&r);
        }
    }
    /* nothing was made, nothing is left behind */
    reply r = http_get(&srv, "/v1/datasets/bad");
    expect_error(r, 404, "not_found", "bad");
    reply_free(&r);
    r = http_get(&srv, "/v1/datasets");
    expect_status(r, 200);
    size_t k;
    json_t *e;
    json_array_foreach(json_object_get(r.json, "datasets"), k, e)
        ck_assert_msg(json_is_true(json_object_get(e, "builtin")), "a refused upload made %s",
                      json_string_value(json_object_get(e, "name")));
    reply_free(&r);
    ck_assert_int_eq(store_leftovers(&srv), 0);
    /* 63 characters is a valid name */
    char ok_name[80];
    snprintf(ok_name, sizeof ok_name, "name=%063d", 0);
    r = dataset_put(&srv, ok_name, "text/plain", "abc", 0, 0);
    expect_status(r, 201);
    char path[120];
    snprintf(path, sizeof path, "/v1/datasets/%063d", 0);
    reply_free(&r);
    r = http_req(&srv, "DELETE", path, NULL, NULL);
    expect_status(r, 204);
    reply_free(&r);
    /* a %00 must not cut the name short: "a\0b" is refused, not taken as "a" */
    r = dataset_put(&srv, "name=a%00b", "text/plain", "abc", 0, 0);
    reply gone = http_get(&srv, "/v1/datasets/a");
    reply del = http_req(&srv, "DELETE", "/v1/datasets/a", NULL, NULL); /* what it made, if any */
    reply_free(&del);
    expect_error(r, 400, "invalid_request", "name");
    expect_status(gone, 404);
    reply_free(&gone);
    reply_free(&r);
}
END_TEST

/* Names in a URL path that would leave the store: nothing is read or removed. */
START_TEST(dataset_paths_cannot_leave_the_store)
{
    dataset_put_text(&srv, "inside", "kept\n");
    static const char *const paths[] = {
        "/v1/datasets/..", "/v1/datasets/.", "/v1/datasets/%2E%2E", "/v1/datasets/..%2F..%2Fetc",
        "/v1/datasets/inside%2F..", "/v1/datasets/%2Fetc%2Fpasswd", "/v1/datasets/.hidden",
        "/v1/datasets/..%2Fdatasets%2Finside"};
    static const char *const methods[] = {"GET", "DELETE"};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        for (int m = 0; m < 2; m++) {
            req_opts o = {.path_as_is = 1};
            reply r = http_req(&srv, methods[m], paths[k], NULL, &o);
            ck_assert_msg(r.status == 400 || r.status == 404,
                          "%s: HTTP %ld, want 400 or 404; body: %.500s", r.what, r.status, r.body);
            expect_error(r, (int)r.status, r.status == 400 ? "invalid_request" : "not_found", "");
            reply_free(&r);
        }
    }
    reply r = http_get(&srv, "/v1/datasets/inside");
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "bytes"), 5);
    reply_free(&r);
    struct stat sb;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/datasets/inside", srv.dir);
    ck_assert_msg(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "%s is gone", dir);
    snprintf(dir, sizeof dir, "%s/sessions", srv.dir);
    ck_assert_msg(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "%s is gone", dir);
    r = http_req(&srv, "DELETE", "/v1/datasets/inside", NULL, NULL);
    expect_status(r, 204);
    reply_free(&r);
}
END_TEST

START_TEST(upload_over_the_limit_gets_413)
{
    char *body = malloc(4 * UPLOAD_LIMIT + 1);
    memset(body, 'x', 4 * UPLOAD_LIMIT);
    body[4 * UPLOAD_LIMIT] = 0;
    const char *limit = STR(UPLOAD_LIMIT);
    /* exactly the limit is fine, either way it is sent */
    for (int chunked = 0; chunked < 2; chunked++) {
        reply r = dataset_put(&srv, "name=at-limit", "text/plain", body, UPLOAD_LIMIT, chunked);
        expect_status(r, 201);
        ck_assert_int_eq(jint(r, "bytes"), UPLOAD_LIMIT);
        reply_free(&r);
        r = http_req(&srv, "DELETE", "/v1/datasets/at-limit", NULL, NULL);
        expect_status(r, 204);
        reply_free(&r);
    }
    /* one byte more is not: announced by Content-Length or found while streaming */
    const size_t over[] = {UPLOAD_LIMIT + 1, 4 * UPLOAD_LIMIT};
    for (int chunked = 0; chunked < 2; chunked++) {
        for (size_t k = 0; k < 2; k++) {
            reply r = dataset_put(&srv, "name=too-big", "text/plain", body, over[k], chunked);
            expect_error(r, 413, "payload_too_large", limit);
            reply_free(&r);
            body[over[k] - 1] = ']';
            const char *head = "[{\"strokes\": [[[0, 0], [1, 1]]]}"; /* a strokes part, too */
            memcpy(body, head, strlen(head));
            r = dataset_put(&srv, "name=too-big", "application/json", body, over[k], chunked);
            expect_error(r, 413, "payload_too_large", limit);
            reply_free(&r);
            memset(body, 'x', 4 * UPLOAD_LIMIT);
        }
    }
    reply r = http_get(&srv, "/v1/datasets/too-big");
    expect_error(r, 404, "not_found", "too-big");
    reply_free(&r);
    ck_assert_int_eq(store_leftovers(&srv), 0);
    r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    reply_free(&r);
    free(body);
}
END_TEST

/* ---- job tests ------------------------------------------------------------------------------ */

/* The whole path: upload a text, train on it while following the events, and the model it
 * makes is listed, serves sessions, and outlives the job's record. */
START_TEST(job_trains_a_model_that_sessions_use)
{
    char *text = train_text(TRAIN_TEXT_BYTES, "");
    dataset_put_text(&srv, "flow-text", text);
    char id[JOB_ID_CHARS + 1];
    job_submit(&srv, tiny_spec("flow-text", "flow-model", 300), id);
    job_stream s;
    job_stream_run(&s, &srv, id, "", NULL, 0, 0);
    expect_job_stream(&srv, &s, id, 1, "succeeded");
    const size_t n = json_array_size(s.events);
    ck_assert_msg(n >= 2 && event_step(&s, n - 1) == 300, "%zu events, the last of step %lld", n,
                  n ? (long long)event_step(&s, n - 1) : -1LL);
    json_t *first = json_array_get(s.events, 0), *last = json_array_get(s.events, n - 1);
    const double l0 = json_number_value(json_object_get(first, "train_loss"));
    const double l1 = json_number_value(json_object_get(last, "train_loss"));
    ck_assert_msg(l1 < l0 - 0.5, "the training loss went from %.3f to %.3f bits per character", l0, l1);
    ck_assert_int_eq(json_integer_value(json_object_get(last, "steps")), 300);
    ck_assert(json_is_true(json_object_get(last, "evaluated")));
    ck_assert(json_is_number(json_object_get(last, "val_loss")));

    /* the record */
    reply r = http_get(&srv, job_at(id, "").s);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "state"), "succeeded");
    ck_assert_str_eq(jstr(r, "kind"), "charlm");
    ck_assert_str_eq(jstr(r, "dataset"), "flow-text");
    ck_assert_str_eq(jstr(r, "model_name"), "flow-model");
    ck_assert_int_eq(jint(r, "step"), 300);
    ck_assert_int_eq(jint(r, "steps"), 300);
    ck_assert_int_eq(jint(r, "resumes"), 0);
    ck_assert_int_eq(jint(r, "checkpoint_step"), 300);
    ck_assert(jnum(r, "fraction") == 1.0);
    ck_assert(json_is_null(json_object_get(r.json, "error")));
    ck_assert(json_is_null(json_object_get(r.json, "eta_seconds")));
    ck_assert_str_eq(jstr(r, "loss_unit"), "bits/char");
    ck_assert(jnum(r, "chars_per_second") > 0);
    const char *created = jstr(r, "created_at"), *started = jstr(r, "started_at"),
               *finished = jstr(r, "finished_at");
    ck_assert_msg(iso_utc_ms(created) && iso_utc_ms(started) && iso_utc_ms(finished) &&
                      strcmp(created, started) <= 0 && strcmp(started, finished) <= 0,
                  "times: %s", r.body);
    json_t *spec = json_object_get(r.json, "spec");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(spec, "model"), "cell")), "lstm");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(spec, "model"), "units")), 32);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(spec, "train"), "batch")), 8);
    reply_free(&r);
    r = http_get(&srv, "/v1/jobs");
    expect_status(r, 200);
    size_t k;
    json_t *e;
    int listed = 0;
    json_array_foreach(json_object_get(r.json, "jobs"), k, e)
        listed += strcmp(json_string_value(json_object_get(e, "id")), id) == 0;
    ck_assert_msg(listed == 1, "job %s is listed %d times: %.1000s", id, listed, r.body);
    reply_free(&r);

    /* metrics: as many points as events; loss.svg: both curves, as many points */
    json_t *h = job_history(&srv, id);
    expect_history_is_stream(h, &s);
    int evaluated = 0;
    json_array_foreach(h, k, e)
        evaluated += json_is_true(json_object_get(e, "evaluated")) &&
                     json_is_number(json_object_get(e, "val_loss"));
    json_decref(h);
    r = http_get(&srv, job_at(id, "/loss.svg").s);
    expect_status(r, 200);
    ck_assert_msg(strncmp(r.content_type, "image/svg+xml", 13) == 0, "Content-Type %s", r.content_type);
    svg_scan svg = svg_read(r.body, r.len);
    ck_assert_msg(svg.polylines == 2 && svg.polyline_points[0] == (int)n &&
                      svg.polyline_points[1] == evaluated,
                  "loss.svg: %d polylines of %d and %d points; want 2 of %zu (training) and %d "
                  "(validation)", svg.polylines, svg.polyline_points[0], svg.polyline_points[1], n,
                  evaluated);
    reply_free(&r);

    /* the model: listed, of the spec's shape and the text's vocabulary */
    char err[HYPER_ERRMSG_MAX];
    vocab v;
    ck_assert(vocab_build(&v, text, strlen(text), err) == HYPER_OK);
    size_t vlen = 0;
    char *chars = vocab_to_utf8(&v, &vlen);
    r = model_get(&srv, "flow-model");
    ck_assert_str_eq(jstr(r, "kind"), "charlm");
    ck_assert_str_eq(jstr(r, "cell"), "lstm");
    ck_assert_int_eq(jint(r, "layers"), 1);
    ck_assert_int_eq(jint(r, "units"), 32);
    ck_assert_int_eq(jint(r, "vocabulary_size"), v.size);
    ck_assert_str_eq(jstr(r, "vocabulary"), chars);
    model_config cfg = {CELL_LSTM, 1, 32, 64, 4, 0, v.size};
    ck_assert_int_eq(jint(r, "parameters"), (json_int_t)model_param_count(&cfg));
    reply_free(&r);
    r = http_get(&srv, "/v1/models");
    expect_status(r, 200);
    ck_assert_msg(strstr(r.body, "\"name\":\"flow-model\""), "not listed: %.1500s", r.body);
    reply_free(&r);
    /* a session generates with it, in its vocabulary */
    char sid[ID_LEN + 1];
    model_session_new(&srv, "flow-model", 3, sid);
    char *gen = generate(&srv, sid, 80, 3);
    ck_assert_msg(strspn(gen, chars) == strlen(gen), "'%s' holds characters not in '%s'", gen, chars);
    free(gen);

    /* a finished job is deleted: 204, then 404 everywhere; its model stays, and its name */
    r = http_req(&srv, "DELETE", job_at(id, "").s, NULL, NULL);
    expect_status(r, 204);
    ck_assert_msg(r.len == 0, "204 with a body: %s", r.body);
    reply_free(&r);
    static const char *const tails[] = {"", "/events", "/metrics", "/loss.svg"};
    for (k = 0; k < 4; k++) {
        r = http_get(&srv, job_at(id, tails[k]).s);
        expect_error(r, 404, "not_found", id);
        reply_free(&r);
    }
    r = http_req(&srv, "DELETE", job_at(id, "").s, NULL, NULL);
    expect_error(r, 404, "not_found", id);
    reply_free(&r);
    r = http_post(&srv, job_at(id, "/cancel").s, NULL);
    expect_error(r, 404, "not_found", id);
    reply_free(&r);
    r = model_get(&srv, "flow-model");
    reply_free(&r);
    r = job_post(&srv, tiny_spec("flow-text", "flow-model", 10));
    expect_error(r, 409, "conflict", "model_name");
    reply_free(&r);
    free(chars);
    vocab_free(&v);
    job_stream_free(&s);
    free(text);
}
END_TEST

/* Last-Event-ID (and ?from=N) resume a stream after the event of that id, without repeats
 * or gaps, while the job runs and after it has ended. */
START_TEST(job_events_resume_after_last_event_id)
{
    char *text = train_text(TRAIN_TEXT_BYTES, "");
    dataset_put_text(&srv, "events-text", text);
    char id[JOB_ID_CHARS + 1];
    job_submit(&srv, tiny_spec("events-text", "events-model", 600), id);
    job_stream a, b;
    job_stream_run(&a, &srv, id, "", NULL, 0, 5); /* five events, then hang up */
    ck_assert_msg(a.head.status == 200 && a.nbad == 0 && json_array_size(a.events) == 5,
                  "%s: HTTP %ld, %zu events, %d bad (%s)", a.head.what, a.head.status,
                  json_array_size(a.events), a.nbad, a.bad);
    for (size_t k = 0; k < 5; k++)
        ck_assert_int_eq(json_integer_value(json_array_get(a.ids, k)), (json_int_t)k + 1);
    job_stream_run(&b, &srv, id, "", "5", 0, 0);
    expect_job_stream(&srv, &b, id, 6, "succeeded");
    ck_assert_msg(event_step(&b, 0) > event_step(&a, 4), "after step %lld came step %lld",
                  (long long)event_step(&a, 4), (long long)event_step(&b, 0));
    /* the two together are the history */
    json_t *h = job_history(&srv, id);
    const size_t n = json_array_size(h);
    ck_assert_uint_eq(n, 5 + json_array_size(b.events));
    for (size_t k = 0; k < n; k++) {
        const json_int_t want = json_integer_value(json_object_get(json_array_get(h, k), "step"));
        const json_int_t got = k < 5 ? event_step(&a, k) : event_step(&b, k - 5);
        ck_assert_msg(got == want, "event %zu: step %lld, the history says %lld", k + 1,
                      (long long)got, (long long)want);
    }
    job_stream_free(&a);
    job_stream_free(&b);
    /* after the end: what follows the id, then the final event */
    char last[24];
    snprintf(last, sizeof last, "%zu", n - 2);
    job_stream_run(&a, &srv, id, "", last, 0, 0);
    expect_job_stream(&srv, &a, id, (json_int_t)n - 1, "succeeded");
    ck_assert_uint_eq(json_array_size(a.events), 2);
    job_stream_free(&a);
    snprintf(last, sizeof last, "%zu", n);
    job_stream_run(&a, &srv, id, "", last, 0, 0);
    expect_job_stream(&srv, &a, id, (json_int_t)n + 1, "succeeded");
    ck_assert_uint_eq(json_array_size(a.events), 0);
    job_stream_free(&a);
    /* NDJSON has no ids: ?from=N does the same */
    char from[40];
    snprintf(from, sizeof from, "?from=%zu", n - 3);
    job_stream_run(&a, &srv, id, from, NULL, 1, 0);
    expect_job_stream(&srv, &a, id, -1, "succeeded");
    ck_assert_uint_eq(json_array_size(a.events), 3);
    for (size_t k = 0; k < 3; k++)
        ck_assert_int_eq(event_step(&a, k), json_integer_value(json_object_get(
                                                json_array_get(h, n - 3 + k), "step")));
    job_stream_free(&a);
    json_decref(h);
    /* ids that are not ids of the stream */
    static const char *const wrong[] = {"abc", "-1", "5x", "1.5"};
    for (size_t k = 0; k < 4; k++) {
        job_stream_run(&a, &srv, id, "", wrong[k], 0, 0);
        expect_error(a.head, 400, "invalid_request", "Last-Event-ID");
        job_stream_free(&a);
    }
    job_stream_run(&a, &srv, id, "?from=-1", NULL, 1, 0);
    expect_error(a.head, 400, "invalid_request", "from");
    job_stream_free(&a);
    job_stream_run(&a, &srv, "0123456789abcdef", "", NULL, 0, 0);
    expect_error(a.head, 404, "not_found", "0123456789abcdef");
    job_stream_free(&a);
    free(text);
}
END_TEST

typedef struct {
    const char *spec;              /* the body of POST /v1/jobs */
    int status;
    const char *part;              /* the message mentions it */
} bad_spec;

START_TEST(job_specs_refused)
{
    dataset_put_text(&srv, "spec-text", "some text to train on\n");
    reply r = dataset_put(&srv, "name=spec-pen", "application/json", STROKES_JSON, 0, 0);
    expect_status(r, 201);
    reply_free(&r);
    r = http_get(&srv, "/v1/jobs");
    expect_status(r, 200);
    const json_int_t before = jint(r, "total");
    reply_free(&r);
#define OK_ "\"kind\": \"charlm\", \"dataset\": \"spec-text\", \"model_name\": \"spec-x\""
#define HW_ "\"kind\": \"handwriting\", \"dataset\": \"spec-pen\", \"model_name\": \"spec-x\""
    static const bad_spec bad[] = {
        /* datasets: unknown, of the other kind */
        {"{\"kind\": \"charlm\", \"dataset\": \"no-such-set\", \"model_name\": \"spec-x\"}", 404, "dataset"},
        {"{\"kind\": \"charlm\", \"dataset\": \"hershey-synthetic\", \"model_name\": \"spec-x\"}", 400, "dataset"},
        {"{\"kind\": \"charlm\", \"dataset\": \"spec-pen\", \"model_name\": \"spec-x\"}", 400, "dataset"},
        {"{\"kind\": \"handwriting\", \"dataset\": \"spec-text\", \"model_name\": \"spec-x\"}", 400, "dataset"},
        {"{\"kind\": \"handwriting\", \"dataset\": \"fortunes\", \"model_name\": \"spec-x\"}", 400, "dataset"},
        {"{\"kind\": \"charlm\", \"dataset\": \"../spec-text\", \"model_name\": \"spec-x\"}", 400, "dataset"},
        {"{\"kind\": \"charlm\", \"dataset\": 7, \"model_name\": \"spec-x\"}", 400, "dataset"},
        {"{\"kind\": \"charlm\", \"model_name\": \"spec-x\"}", 400, "dataset"},
        /* model names: taken (the fixture's model), invalid, missing */
        {"{\"kind\": \"charlm\", \"dataset\": \"spec-text\", \"model_name\": \"charlm\"}", 409, "model_name"},
        {"{\"kind\": \"charlm\", \"dataset\": \"spec-text\", \"model_name\": \"../x\"}", 400, "model_name"},
        {"{\"kind\": \"charlm\", \"dataset\": \"spec-text\", \"model_name\": \"a/b\"}", 400, "model_name"},
        {"{\"kind\": \"charlm\", \"dataset\": \"spec-text\", \"model_name\": \".x\"}", 400, "model_name"},
        {"{\"kind\": \"charlm\", \"dataset\": \"spec-text\", \"model_name\": \"\"}", 400, "model_name"},
        {"{\"kind\": \"charlm\", \"dataset\": \"spec-text\", \"model_name\": 5}", 400, "model_name"},
        {"{\"kind\": \"charlm\", \"dataset\": \"spec-text\"}", 400, "model_name"},
        /* kind */
        {"{\"dataset\": \"spec-text\", \"model_name\": \"spec-x\"}", 400, "kind"},
        {"{\"kind\": \"gan\", \"dataset\": \"spec-text\", \"model_name\": \"spec-x\"}", 400, "kind"},
        {"{\"kind\": 1, \"dataset\": \"spec-text\", \"model_name\": \"spec-x\"}", 400, "kind"},
        /* model sizes and types */
        {"{" OK_ ", \"model\": \"lstm\"}", 400, "model"},
        {"{" OK_ ", \"model\": {\"units\": 0}}", 400, "model.units"},
        {"{" OK_ ", \"model\": {\"units\": 2049}}", 400, "model.units"},
        {"{" OK_ ", \"model\": {\"units\": \"32\"}}", 400, "model.units"},
        {"{" OK_ ", \"model\": {\"units\": 32.5}}", 400, "model.units"},
        {"{" OK_ ", \"model\": {\"layers\": 0}}", 400, "model.layers"},
        {"{" OK_ ", \"model\": {\"layers\": 5}}", 400, "model.layers"},
        {"{" OK_ ", \"model\": {\"hyper_units\": 513}}", 400, "model.hyper_units"},
        {"{" OK_ ", \"model\": {\"embed\": 0}}", 400, "model.embed"},
        {"{" OK_ ", \"model\": {\"embed\": 65}}", 400, "model.embed"},
        {"{" OK_ ", \"model\": {\"cell\": \"gru\"}}", 400, "model.cell"},
        {"{" OK_ ", \"model\": {\"cell\": null}}", 400, "model.cell"},
        {"{" OK_ ", \"model\": {\"keep\": 0}}", 400, "model.keep"},
        {"{" OK_ ", \"model\": {\"keep\": 1.5}}", 400, "model.keep"},
        {"{" OK_ ", \"model\": {\"keep\": \"all\"}}", 400, "model.keep"},
        {"{" HW_ ", \"model\": {\"mixtures\": 0}}", 400, "model.mixtures"},
        {"{" OK_ ", \"model\": {\"dropout\": 0.1}}", 400, "model.dropout"},
        /* training parameters */
        {"{" OK_ ", \"train\": []}", 400, "train"},
        {"{" OK_ ", \"train\": {\"steps\": 0}}", 400, "train.steps"},
        {"{" OK_ ", \"train\": {\"steps\": 10000001}}", 400, "train.steps"},
        {"{" OK_ ", \"train\": {\"steps\": 1.5}}", 400, "train.steps"},
        {"{" OK_ ", \"train\": {\"steps\": \"10\"}}", 400, "train.steps"},
        {"{" OK_ ", \"train\": {\"batch\": 0}}", 400, "train.batch"},
        {"{" OK_ ", \"train\": {\"batch\": 257}}", 400, "train.batch"},
        {"{" OK_ ", \"train\": {\"seq\": 0}}", 400, "train.seq"},
        {"{" OK_ ", \"train\": {\"seq\": 1001}}", 400, "train.seq"},
        {"{" OK_ ", \"train\": {\"lr\": 0}}", 400, "train.lr"},
        {"{" OK_ ", \"train\": {\"lr\": 1.5}}", 400, "train.lr"},
        {"{" OK_ ", \"train\": {\"lr\": \"fast\"}}", 400, "train.lr"},
        {"{" OK_ ", \"train\": {\"clip\": -1}}", 400, "train.clip"},
        {"{" OK_ ", \"train\": {\"seed\": -1}}", 400, "train.seed"},
        {"{" OK_ ", \"train\": {\"eval_every\": -1}}", 400, "train.eval_every"},
        {"{" OK_ ", \"train\": {\"checkpoint_every\": -1}}", 400, "train.checkpoint_every"},
        {"{" OK_ ", \"train\": {\"eval_limit\": -1}}", 400, "train.eval_limit"},
        {"{" OK_ ", \"train\": {\"val_fraction\": 0.6}}", 400, "train.val_fraction"},
        {"{" OK_ ", \"train\": {\"val_fraction\": -0.1}}", 400, "train.val_fraction"},
        {"{" OK_ ", \"train\": {\"epochs\": 0}}", 400, "train.epochs"},
        {"{" OK_ ", \"train\": {\"epochs\": -1}}", 400, "train.epochs"},
        {"{" OK_ ", \"train\": {\"epochs\": 10001}}", 400, "train.epochs"},
        {"{" OK_ ", \"train\": {\"epochs\": \"2\"}}", 400, "train.epochs"},
        {"{" OK_ ", \"train\": {\"steps\": 10, \"epochs\": 1}}", 400, "steps or epochs"},
        {"{" OK_ ", \"train\": {\"momentum\": 0.9}}", 400, "train.momentum"},
        /* unknown fields, starting points */
        {"{" OK_ ", \"priority\": 1}", 400, "priority"},
        {"{" OK_ ", \"init_from\": \"no-such-model\"}", 404, "init_from"},
        {"{" OK_ ", \"init_from\": \"../charlm\"}", 400, "init_from"},
        {"{" HW_ ", \"init_from\": \"charlm\"}", 400, "init_from"},
        /* not a spec at all */
        {"[1]", 400, "JSON object"},
        {"{\"kind\":", 400, "invalid JSON"},
    };
#undef OK_
#undef HW_
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        r = http_post(&srv, "/v1/jobs", bad[k].spec);
        expect_error(r, bad[k].status,
                     bad[k].status == 404 ? "not_found" : bad[k].status == 409 ? "conflict"
                                                                              : "invalid_request",
                     bad[k].part);
        reply_free(&r);
    }
    r = http_get(&srv, "/v1/jobs");
    expect_status(r, 200);
    ck_assert_msg(jint(r, "total") == before, "refused specs made jobs: %lld before, %.1500s",
                  (long long)before, r.body);
    reply_free(&r);
    /* the list's paging parameters are checked too */
    r = http_get(&srv, "/v1/jobs?limit=0");
    expect_error(r, 400, "invalid_request", "limit");
    reply_free(&r);
    r = http_get(&srv, "/v1/jobs?offset=-1");
    expect_error(r, 400, "invalid_request", "offset");
    reply_free(&r);
}
END_TEST

/* A running job: its name is taken, it and its dataset cannot be deleted; cancel stops it
 * (twice is fine), and then it can be. */
START_TEST(job_cancel_stops_a_running_job)
{
    char *text = train_text(TRAIN_TEXT_BYTES, "");
    dataset_put_text(&srv, "cancel-text", text);
    char id[JOB_ID_CHARS + 1];
    job_submit(&srv, tiny_spec("cancel-text", "cancel-model", 1000000), id);
    job_view v = job_wait_running(&srv, id, 1, -1, 10);
    reply r = job_post(&srv, tiny_spec("cancel-text", "cancel-model", 10));
    expect_error(r, 409, "conflict", "model_name");
    reply_free(&r);
    r = http_req(&srv, "DELETE", job_at(id, "").s, NULL, NULL);
    expect_error(r, 409, "conflict", "running");
    reply_free(&r);
    r = http_req(&srv, "DELETE", "/v1/datasets/cancel-text", NULL, NULL);
    expect_error(r, 409, "conflict", "cancel-text");
    reply_free(&r);
    /* cancel: 200 with the record; twice: 200 again, and cancelled */
    r = http_post(&srv, job_at(id, "/cancel").s, NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "id"), id);
    ck_assert_msg(!strcmp(jstr(r, "state"), "running") || !strcmp(jstr(r, "state"), "cancelled"),
                  "just cancelled: %s", r.body);
    reply_free(&r);
    v = job_wait_end(&srv, id, 10);
    ck_assert_str_eq(v.state, "cancelled");
    ck_assert_msg(v.step > 0 && v.step < 1000000 && v.steps == 1000000 && !v.error[0] &&
                      v.finished_at[0], "cancelled at step %lld of %lld, error '%s', finished '%s'",
                  (long long)v.step, (long long)v.steps, v.error, v.finished_at);
    r = http_post(&srv, job_at(id, "/cancel").s, NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "state"), "cancelled");
    ck_assert_str_eq(jstr(r, "finished_at"), v.finished_at);
    reply_free(&r);
    job_stream s;
    job_stream_run(&s, &srv, id, "", NULL, 0, 0);
    expect_job_stream(&srv, &s, id, 1, "cancelled");
    job_stream_free(&s);
    /* no model came of it; its name and its dataset are free again */
    r = http_get(&srv, "/v1/models/cancel-model");
    expect_error(r, 404, "not_found", "cancel-model");
    reply_free(&r);
    char id2[JOB_ID_CHARS + 1];
    job_submit(&srv, tiny_spec("cancel-text", "cancel-model", 20), id2);
    v = job_wait_end(&srv, id2, 10);
    ck_assert_str_eq(v.state, "succeeded");
    r = model_get(&srv, "cancel-model");
    reply_free(&r);
    r = http_req(&srv, "DELETE", job_at(id, "").s, NULL, NULL);
    expect_status(r, 204);
    reply_free(&r);
    r = http_get(&srv, job_at(id, "").s);
    expect_error(r, 404, "not_found", id);
    reply_free(&r);
    r = http_req(&srv, "DELETE", "/v1/datasets/cancel-text", NULL, NULL);
    expect_status(r, 204);
    reply_free(&r);
    free(text);
}
END_TEST

START_TEST(job_handwriting_on_hershey_synthetic)
{
    json_t *spec = json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:i}, s:{s:i, s:i, s:i, s:i, s:i}}",
                             "kind", "handwriting", "dataset", "hershey-synthetic",
                             "model_name", "hw-tiny", "model", "cell", "lstm", "units", 16,
                             "mixtures", 2, "train", "steps", 30, "batch", 4, "seq", 50,
                             "eval_every", 10, "eval_limit", 20);
    char id[JOB_ID_CHARS + 1];
    job_submit(&srv, spec, id);
    job_stream s;
    job_stream_run(&s, &srv, id, "", NULL, 0, 0);
    expect_job_stream(&srv, &s, id, 1, "succeeded");
    job_stream_free(&s);
    reply r = http_get(&srv, job_at(id, "").s);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "kind"), "handwriting");
    ck_assert_str_eq(jstr(r, "loss_unit"), "nats/point");
    ck_assert_str_eq(jstr(r, "val_unit"), "nats/line");
    ck_assert(jnum(r, "points_per_second") > 0);
    ck_assert(isfinite(jnum(r, "train_loss")) && isfinite(jnum(r, "val_loss")));
    ck_assert_int_eq(jint(r, "step"), 30);
    reply_free(&r);
    r = model_get(&srv, "hw-tiny");
    ck_assert_str_eq(jstr(r, "kind"), "handwriting");
    ck_assert_int_eq(jint(r, "units"), 16);
    model_config cfg = {CELL_LSTM, 1, 16, 64, 4, 3, mdn_outputs(2)};
    ck_assert_int_eq(jint(r, "parameters"), (json_int_t)model_param_count(&cfg));
    reply_free(&r);
    /* it draws */
    r = http_postf(&srv, HW_SAMPLE, "{s:s, s:i, s:i}", "model", "hw-tiny", "max_points", 40, "seed", 2);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "model"), "hw-tiny");
    hw_drawing d = hw_drawing_of(r);
    ck_assert_int_eq(d.n, 40);
    hw_drawing_free(&d);
    reply again = http_postf(&srv, HW_SAMPLE, "{s:s, s:i, s:i}", "model", "hw-tiny", "max_points",
                             40, "seed", 2);
    ck_assert_msg(again.status == 200 && strcmp(again.body, r.body) == 0,
                  "seed 2 twice:\n%.500s\n%.500s", r.body, again.body);
    reply_free(&again);
    reply_free(&r);
    /* and it is no character model */
    char sid[ID_LEN + 1];
    model_session_new(&srv, "hw-tiny", 1, sid);
    r = http_postf(&srv, at(sid, "/generate").s, "{s:i}", "max_points", 10);
    expect_status(r, 200);
    reply_free(&r);
}
END_TEST

/* With epochs instead of steps, the steps come from the data when the job starts:
 * ceil(epochs × training characters / (batch × seq)). */
START_TEST(job_epochs_set_the_steps)
{
    char *text = train_text(TRAIN_TEXT_BYTES, "");
    dataset_put_text(&srv, "epochs-text", text);
    json_t *spec = tiny_spec("epochs-text", "epochs-model", 1);
    json_object_del(json_object_get(spec, "train"), "steps");
    train_set(spec, "epochs", json_real(2.0));
    train_set(spec, "val_fraction", json_real(0.1));
    reply r = job_post(&srv, spec);
    expect_status(r, 202);
    ck_assert_int_eq(jint(r, "steps"), 0); /* not known before the data is read */
    json_t *train = json_object_get(json_object_get(r.json, "spec"), "train");
    ck_assert_msg(json_number_value(json_object_get(train, "epochs")) == 2.0, "spec: %s", r.body);
    char id[JOB_ID_CHARS + 1];
    snprintf(id, sizeof id, "%s", jstr(r, "id"));
    reply_free(&r);
    const int64_t chars = utf8_chars(text, strlen(text));
    const int64_t train_chars = chars - (int64_t)floor((double)chars * 0.1);
    const int64_t want = (2 * train_chars + 8 * 32 - 1) / (8 * 32);
    job_view v = job_wait_end(&srv, id, 10);
    ck_assert_str_eq(v.state, "succeeded");
    ck_assert_msg(v.steps == want && v.step == want,
                  "2 epochs of %lld training characters in batches of 8 x 32: %lld steps, want %lld",
                  (long long)train_chars, (long long)v.steps, (long long)want);
    free(text);
}
END_TEST

/* init_from starts a run from a finished job's model: its shape, its weights (the loss
 * starts where the first run ended), its vocabulary (a text with other characters fails). */
START_TEST(job_fine_tunes_a_finished_model)
{
    char *text = train_text(TRAIN_TEXT_BYTES, "");
    dataset_put_text(&srv, "tune-text", text);
    char base[JOB_ID_CHARS + 1], child[JOB_ID_CHARS + 1];
    job_submit(&srv, tiny_spec("tune-text", "tune-base", 300), base);
    ck_assert_str_eq(job_wait_end(&srv, base, 10).state, "succeeded");
    json_t *bh = job_history(&srv, base);
    const double base_first = json_number_value(json_object_get(json_array_get(bh, 0), "train_loss"));
    const double base_last = json_number_value(
        json_object_get(json_array_get(bh, json_array_size(bh) - 1), "train_loss"));
    json_decref(bh);
    json_t *spec = tiny_spec("tune-text", "tune-child", 50);
    json_object_set_new(spec, "init_from", json_string("tune-base"));
    json_object_set_new(json_object_get(spec, "model"), "units", json_integer(64)); /* unused */
    job_submit(&srv, spec, child);
    job_view v = job_wait_end(&srv, child, 10);
    ck_assert_msg(!strcmp(v.state, "succeeded"), "fine-tune: %s (%s)", v.state, v.error);
    json_t *ch = job_history(&srv, child);
    const double child_first = json_number_value(json_object_get(json_array_get(ch, 0), "train_loss"));
    json_decref(ch);
    ck_assert_msg(child_first < (base_first + base_last) / 2,
                  "the fine-tune started at %.3f bits per character; the base went from %.3f to %.3f",
                  child_first, base_first, base_last);
    reply a = model_get(&srv, "tune-base"), b = model_get(&srv, "tune-child");
    ck_assert_int_eq(jint(b, "units"), 32);
    ck_assert_int_eq(jint(b, "parameters"), jint(a, "parameters"));
    ck_assert_str_eq(jstr(b, "vocabulary"), jstr(a, "vocabulary"));
    reply_free(&a);
    reply_free(&b);
    /* a text with characters the base never saw cannot be learnt with its vocabulary */
    char *other = train_text(2000, "@#%&*");
    dataset_put_text(&srv, "tune-other", other);
    spec = tiny_spec("tune-other", "tune-other-model", 20);
    json_object_set_new(spec, "init_from", json_string("tune-base"));
    job_submit(&srv, spec, child);
    v = job_wait_end(&srv, child, 10);
    ck_assert_msg(!strcmp(v.state, "failed") && v.error[0], "a fine-tune on unknown characters: %s "
                  "(error '%s')", v.state, v.error);
    reply r = http_get(&srv, "/v1/models/tune-other-model");
    expect_error(r, 404, "not_found", "tune-other-model");
    reply_free(&r);
    job_stream s;
    job_stream_run(&s, &srv, child, "", NULL, 0, 0);
    expect_job_stream(&srv, &s, child, 1, "failed");
    ck_assert_str_eq(json_string_value(json_object_get(s.done, "error")), v.error);
    job_stream_free(&s);
    r = http_req(&srv, "DELETE", job_at(child, "").s, NULL, NULL);
    expect_status(r, 204);
    reply_free(&r);
    free(other);
    free(text);
}
END_TEST

/* One worker: the second job waits while the first runs, then runs; a queued job is
 * cancelled at once and never starts. */
START_TEST(jobs_queue_behind_one_worker)
{
    static const char *const flags[] = {"--train-workers", "1", "--train-threads", "1", NULL};
    hyperd_proc d;
    hyperd_init(&d, "queue", flags);
    hyperd_start_ok(&d);
    char *text = train_text(TRAIN_TEXT_BYTES, "");
    dataset_put_text(&d, "q-text", text);
    char a[JOB_ID_CHARS + 1], b[JOB_ID_CHARS + 1], c[JOB_ID_CHARS + 1];
    job_submit(&d, tiny_spec("q-text", "q-a", 1500), a);
    job_wait_running(&d, a, 1, -1, 10);
    job_submit(&d, tiny_spec("q-text", "q-b", 100), b);
    job_submit(&d, tiny_spec("q-text", "q-c", 100), c);
    /* a job pins its dataset from submission to its end: a queued job's cannot be deleted */
    dataset_put_text(&d, "q-gone", text);
    char g[JOB_ID_CHARS + 1];
    job_submit(&d, tiny_spec("q-gone", "q-g", 100), g);
    reply r = http_req(&d, "DELETE", "/v1/datasets/q-gone", NULL, NULL);
    expect_error(r, 409, "conflict", "q-gone");
    reply_free(&r);
    job_view vb = job_look(&d, b), va = job_look(&d, a);
    ck_assert_msg(!strcmp(va.state, "running"), "the first job ended (%s) before the others could "
                  "be seen waiting: make it longer", va.state);
    ck_assert_str_eq(vb.state, "queued");
    ck_assert_int_eq(vb.step, 0);
    ck_assert_msg(!vb.started_at[0], "a queued job has started_at %s", vb.started_at);
    /* a queued job has no history yet, and an empty plot */
    json_t *h = job_history(&d, b);
    ck_assert_uint_eq(json_array_size(h), 0);
    json_decref(h);
    r = http_get(&d, job_at(b, "/loss.svg").s);
    expect_status(r, 200);
    svg_scan svg = svg_read(r.body, r.len);
    ck_assert_msg(svg.polylines == 2 && svg.polyline_points[0] == 0 && svg.polyline_points[1] == 0,
                  "the plot of a queued job: %d polylines of %d and %d points", svg.polylines,
                  svg.polyline_points[0], svg.polyline_points[1]);
    reply_free(&r);
    /* the list is in submission order, and pages */
    r = http_get(&d, "/v1/jobs");
    expect_status(r, 200);
    json_t *list = json_object_get(r.json, "jobs");
    ck_assert_msg(jint(r, "total") == 4 && json_array_size(list) == 4 &&
                      !strcmp(json_string_value(json_object_get(json_array_get(list, 0), "id")), a) &&
                      !strcmp(json_string_value(json_object_get(json_array_get(list, 1), "id")), b) &&
                      !strcmp(json_string_value(json_object_get(json_array_get(list, 2), "id")), c) &&
                      !strcmp(json_string_value(json_object_get(json_array_get(list, 3), "id")), g),
                  "want %s %s %s %s: %.1500s", a, b, c, g, r.body);
    reply_free(&r);
    r = http_get(&d, "/v1/jobs?limit=1&offset=1");
    expect_status(r, 200);
    list = json_object_get(r.json, "jobs");
    ck_assert_msg(jint(r, "total") == 4 && json_array_size(list) == 1 &&
                      !strcmp(json_string_value(json_object_get(json_array_get(list, 0), "id")), b),
                  "page 2 of 1: %.1500s", r.body);
    reply_free(&r);
    /* a queued job cannot be deleted, but it can be cancelled, at once */
    r = http_req(&d, "DELETE", job_at(b, "").s, NULL, NULL);
    expect_error(r, 409, "conflict", "queued");
    reply_free(&r);
    r = http_post(&d, job_at(c, "/cancel").s, NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "state"), "cancelled");
    ck_assert(json_is_null(json_object_get(r.json, "started_at")));
    reply_free(&r);
    /* never both running: b waits while a runs */
    const double deadline = now_s() + scaled(20);
    int seen_waiting = 0;
    for (;;) {
        /* b first: if b runs at that moment, a had ended before it, so a read after shows
         * it ended (the other order races with a's last step) */
        vb = job_look(&d, b);
        va = job_look(&d, a);
        ck_assert_msg(strcmp(vb.state, "running") != 0 || finished_state(va.state),
                      "both jobs run with one worker (a at step %lld)", (long long)va.step);
        seen_waiting += !strcmp(va.state, "running") && !strcmp(vb.state, "queued");
        if (finished_state(vb.state))
            break;
        ck_assert_msg(now_s() < deadline, "a %s, b %s after %.0f s", va.state, vb.state, scaled(20));
        sleep_ms(POLL_MS);
    }
    ck_assert_int_gt(seen_waiting, 0);
    va = job_look(&d, a);
    ck_assert_str_eq(va.state, "succeeded");
    ck_assert_str_eq(vb.state, "succeeded");
    ck_assert_msg(strcmp(vb.started_at, va.finished_at) >= 0, "b started at %s, a finished at %s",
                  vb.started_at, va.finished_at);
    job_view vc = job_look(&d, c);
    ck_assert_msg(!strcmp(vc.state, "cancelled") && !vc.started_at[0] && vc.step == 0,
                  "the cancelled queued job: %s, started %s, step %lld", vc.state, vc.started_at,
                  (long long)vc.step);
    job_stream s;
    job_stream_run(&s, &d, c, "", NULL, 0, 0);
    expect_job_stream(&d, &s, c, 1, "cancelled");
    ck_assert_uint_eq(json_array_size(s.events), 0);
    job_stream_free(&s);
    job_view vg = job_wait_end(&d, g, 10);
    ck_assert_msg(!strcmp(vg.state, "succeeded"), "the job whose dataset was pinned: %s, error '%s'", vg.state,
                  vg.error);
    r = http_req(&d, "DELETE", "/v1/datasets/q-gone", NULL, NULL); /* free once the job has ended */
    expect_status(r, 204);
    reply_free(&r);
    r = model_get(&d, "q-a");
    reply_free(&r);
    r = model_get(&d, "q-b");
    reply_free(&r);
    static const char *const none[] = {"q-c"};
    for (int k = 0; k < 1; k++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/models/%s", none[k]);
        r = http_get(&d, path);
        expect_error(r, 404, "not_found", none[k]);
        reply_free(&r);
    }
    hyperd_stop_ok(&d);
    free(text);
}
END_TEST

/* ---- restarts ------------------------------------------------------------------------------ */

#define RESUME_STEPS 1000
#define RESUME_AT 300              /* the daemon is stopped once the job is this far */

typedef enum { STOP_KILL9, STOP_SIGTERM } stop_how;

/* Trains a job on a daemon of its own with checkpoints every checkpoint_every steps (0: at
 * the end only), stops the daemon mid-run (how), damages the checkpoint when asked, starts
 * the daemon again on the same data, and follows the job to its end.  The same job runs
 * uninterrupted on the test case's daemon beside it: the two must end with the same losses
 * and the same model.  Returns the step from which the run went on (the last one kept from
 * before the stop; 0 when it started over). */
static json_int_t resume_check(const char *name, stop_how how, int checkpoint_every, int damage)
{
    static const char *const flags[] = {"--train-workers", "1", "--train-threads", "1", NULL};
    hyperd_proc d;
    hyperd_init(&d, name, flags);
    hyperd_start_ok(&d);
    char *text = train_text(TRAIN_TEXT_BYTES, "");
    char ds[64], model[64], ref_model[64];
    snprintf(ds, sizeof ds, "%s-text", name);
    snprintf(model, sizeof model, "%s-model", name);
    snprintf(ref_model, sizeof ref_model, "%s-reference", name);
    dataset_put_text(&d, ds, text);
    dataset_put_text(&srv, ds, text);
    char id[JOB_ID_CHARS + 1], ref[JOB_ID_CHARS + 1];
    job_submit(&d, train_set(tiny_spec(ds, model, RESUME_STEPS), "checkpoint_every",
                             json_integer(checkpoint_every)), id);
    job_submit(&srv, train_set(tiny_spec(ds, ref_model, RESUME_STEPS), "checkpoint_every",
                               json_integer(checkpoint_every)), ref);
    /* stop it: kill -9 once a checkpoint is past RESUME_AT, or SIGTERM past that step */
    const int need_ckpt = how == STOP_KILL9 && checkpoint_every > 0;
    job_view before = job_wait_running(&d, id, RESUME_AT, need_ckpt ? RESUME_AT : -1, 20);
    if (how == STOP_KILL9)
        hyperd_kill9(&d);
    else
        hyperd_stop_ok(&d);
    const int64_t stop_ms = wall_ms(); /* the daemon is gone: every report is from before */
    /* the least the run may go on from: the last checkpoint seen, or (SIGTERM writes one
     * as it stops) the last step seen; with neither, it starts over */
    const json_int_t floor_step = damage              ? 0
                                  : how == STOP_SIGTERM ? before.step
                                  : need_ckpt           ? before.checkpoint_step
                                                        : 0;
    if (damage) {
        /* one byte flipped in the training checkpoint (DIR/jobs/ID/model.train), and in the
         * next one too when the kill came between recording it and renaming it into place */
        static const char *const files[2] = {"model.train", "model.train.next"};
        for (int k = 0; k < 2; k++) {
            char path[300];
            snprintf(path, sizeof path, "%s/jobs/%s/%s", d.dir, id, files[k]);
            int fd = open(path, O_RDWR);
            if (k == 1 && fd < 0 && errno == ENOENT)
                break;
            ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
            struct stat sb;
            ck_assert_int_eq(fstat(fd, &sb), 0);
            unsigned char b = 0;
            ck_assert_int_eq(pread(fd, &b, 1, sb.st_size / 2), 1);
            b ^= 0x55;
            ck_assert_int_eq(pwrite(fd, &b, 1, sb.st_size / 2), 1);
            close(fd);
        }
    }
    hyperd_start_ok(&d);
    reply r = http_get(&d, "/v1/jobs");
    expect_status(r, 200);
    json_t *list = json_object_get(r.json, "jobs");
    ck_assert_msg(jint(r, "total") == 1 && json_array_size(list) == 1 &&
                      !strcmp(json_string_value(json_object_get(json_array_get(list, 0), "id")), id),
                  "after the restart, want job %s listed: %.1500s", id, r.body);
    reply_free(&r);
    job_view v = job_look(&d, id);
    ck_assert_msg((!strcmp(v.state, "queued") || !strcmp(v.state, "running") ||
                   !strcmp(v.state, "succeeded")) && v.resumes == 1 && v.steps == RESUME_STEPS,
                  "after the restart: %s, resumes %lld, steps %lld", v.state, (long long)v.resumes,
                  (long long)v.steps);
    if (floor_step > 0)
        ck_assert_msg(v.checkpoint_step >= floor_step, "after the restart the checkpoint is at "
                      "%lld; before the stop it was seen at %lld, the step at %lld",
                      (long long)v.checkpoint_step, (long long)before.checkpoint_step,
                      (long long)before.step);
    /* it goes on, and never from before the checkpoint */
    const double deadline = now_s() + scaled(20);
    while (!finished_state(v.state)) {
        ck_assert_msg(v.step >= floor_step, "the resumed job is back at step %lld (below %lld)",
                      (long long)v.step, (long long)floor_step);
        ck_assert_msg(now_s() < deadline, "the resumed job is %s at step %lld", v.state,
                      (long long)v.step);
        sleep_ms(POLL_MS);
        v = job_look(&d, id);
    }
    ck_assert_msg(!strcmp(v.state, "succeeded") && v.step == RESUME_STEPS && v.resumes == 1,
                  "the resumed job: %s (%s) at step %lld, resumes %lld", v.state, v.error,
                  (long long)v.step, (long long)v.resumes);
    /* one history: ids 1, 2, ..., steps increasing; up to where it went on from, the points
     * from before the stop, then only new ones */
    job_stream s;
    job_stream_run(&s, &d, id, "", NULL, 0, 0);
    expect_job_stream(&d, &s, id, 1, "succeeded");
    json_t *h = job_history(&d, id);
    expect_history_is_stream(h, &s);
    json_int_t went_on = 0;
    size_t k;
    json_t *e;
    int after = 0;
    json_array_foreach(h, k, e) {
        const json_int_t t = json_integer_value(json_object_get(e, "time_ms"));
        const json_int_t step = json_integer_value(json_object_get(e, "step"));
        ck_assert_msg(!(after && t <= stop_ms), "point %zu (step %lld) is from before the stop, "
                      "after newer ones", k, (long long)step);
        if (t <= stop_ms)
            went_on = step;
        else
            after = 1;
    }
    ck_assert_msg(went_on >= floor_step, "the run went on from step %lld; %lld was reached "
                  "before the stop", (long long)went_on, (long long)floor_step);
    if (need_ckpt)
        ck_assert_msg(went_on % checkpoint_every == 0, "the run went on from step %lld, not a "
                      "checkpoint's (every %d)", (long long)went_on, checkpoint_every);
    json_decref(h);
    job_stream_free(&s);
    /* what an uninterrupted run makes */
    job_view rv = job_wait_end(&srv, ref, 20);
    ck_assert_str_eq(rv.state, "succeeded");
    ck_assert_msg(rv.train_loss == v.train_loss && rv.val_loss == v.val_loss,
                  "losses: %.17g and %.17g after the restart, %.17g and %.17g uninterrupted",
                  v.train_loss, v.val_loss, rv.train_loss, rv.val_loss);
    char s1[ID_LEN + 1], s2[ID_LEN + 1];
    model_session_new(&d, model, 11, s1);
    model_session_new(&srv, ref_model, 11, s2);
    char *t1 = generate(&d, s1, 60, 11), *t2 = generate(&srv, s2, 60, 11);
    expect_same_text(t1, t2, "the resumed model against the uninterrupted one");
    free(t1);
    free(t2);
    /* the model and the record stay after another restart */
    hyperd_stop_ok(&d);
    hyperd_start_ok(&d);
    r = model_get(&d, model);
    reply_free(&r);
    v = job_look(&d, id);
    ck_assert_msg(!strcmp(v.state, "succeeded") && v.resumes == 1, "after a second restart: %s, "
                  "resumes %lld", v.state, (long long)v.resumes);
    hyperd_stop_ok(&d);
    free(text);
    return went_on;
}

START_TEST(job_resumes_after_kill_9)
{
    json_int_t from = resume_check("kill9", STOP_KILL9, 50, 0);
    ck_assert_int_ge(from, RESUME_AT);
}
END_TEST

START_TEST(job_resumes_after_sigterm)
{
    /* no checkpoints but the one written on the way down */
    json_int_t from = resume_check("sigterm", STOP_SIGTERM, 0, 0);
    ck_assert_int_ge(from, RESUME_AT);
}
END_TEST

START_TEST(job_killed_before_its_first_checkpoint_starts_over)
{
    json_int_t from = resume_check("early-kill", STOP_KILL9, 0, 0);
    ck_assert_int_eq(from, 0);
}
END_TEST

START_TEST(job_with_a_damaged_checkpoint_starts_over)
{
    json_int_t from = resume_check("damaged", STOP_KILL9, 50, 1);
    ck_assert_int_eq(from, 0);
}
END_TEST

/* ==== classifiers: static hypernetworks on MNIST digits ===================================== */

#define CLF_TRAINED "digits"       /* a hypermlp trained at setup for CLF_TRAIN_STEPS steps */
#define CLF_PAPER "paper"          /* the paper's hyperconv, as initialised */
#define CLF_TRAIN_STEPS 1000
#define CLF_PNG_SCALE 3            /* the PNGs show a digit 3× as large as MNIST's 28 × 28 */
#define PROB_SUM_TOL 1e-4          /* how far the 10 probabilities may sum from 1 */
#define PNG_PROB_TOL 5e-3          /* how far a digit's PNG may move its probabilities */

static char mnist_dir[PATH_MAX];   /* the repository's data/mnist, absolute */
static char clf_dir[96];           /* root/clf: the two classifiers (a --models directory) */
static char clf_trained_path[160], clf_paper_path[160];

/* Trains CLF_TRAINED as `hyper train --kind classifier --arch hypermlp` would (defaults:
 * H 80, tiles 16 × 10, Z = d = 8), with a larger learning rate so that a thousand steps
 * (a second or two) make a net that reads clear digits (some 11% test error), and saves it. */
static void clf_trained_write(const char *path)
{
    char err[HYPER_ERRMSG_MAX];
    image_set im;
    ck_assert_msg(mnist_load(&im, mnist_dir, err) == HYPER_OK, "mnist_load: %s", err);
    clf_config cfg;
    clf_config_default(&cfg, CLF_HYPERMLP);
    train_params tp;
    train_params_default(&tp);
    tp.batch = 64;
    tp.lr = 3e-3;
    tp.clip = 0;
    tp.steps = CLF_TRAIN_STEPS;
    const train_data td = {.images = &im};
    trainer *t = NULL;
    ck_assert_msg(trainer_new_classifier(&t, &cfg, &tp, &td, err) == HYPER_OK,
                  "trainer_new_classifier: %s", err);
    for (int s = 0; s < CLF_TRAIN_STEPS; s++)
        trainer_step(t);
    ck_assert_msg(trainer_save_model(t, path, err) == HYPER_OK, "trainer_save_model: %s", err);
    trainer_free(t);
    image_set_free(&im);
}

/* Writes the paper's MNIST net with its second convolution generated (C 16, f 7, Z = d = 4),
 * as initialised: for its parameter counts and its kernels. */
static void clf_paper_write(const char *path)
{
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg;
    clf_config_default(&cfg, CLF_HYPERCONV);
    classifier c;
    ck_assert_msg(clf_create(&c, &cfg, err) == HYPER_OK, "clf_create: %s", err);
    clf_init(&c, 5);
    ck_assert_msg(clf_save(path, &c, NULL, 0, NULL, 0, err) == HYPER_OK, "clf_save: %s", err);
    clf_free(&c);
}

/* The daemon of the classifier tests: charlm and the two classifiers, the repository's
 * digits as its mnist dataset (an absolute path: the daemon must not depend on where it
 * runs), one training worker of one BLAS thread. */
static void setup_classifier(void)
{
    char probe[PATH_MAX + 16];
    if (!realpath("data/mnist", mnist_dir))
        ck_abort_msg("data/mnist: %s (run the tests from the repository's root; make "
                     "data/mnist/9.json fetches the digits)", strerror(errno));
    snprintf(probe, sizeof probe, "%s/9.json", mnist_dir);
    if (access(probe, R_OK) != 0)
        ck_abort_msg("%s: %s (make data/mnist/9.json fetches the digits)", probe, strerror(errno));
    root_make();
    snprintf(clf_dir, sizeof clf_dir, "%s/clf", root);
    ck_assert_msg(mkdir(clf_dir, 0755) == 0, "mkdir %s: %s", clf_dir, strerror(errno));
    snprintf(clf_trained_path, sizeof clf_trained_path, "%s/" CLF_TRAINED ".safetensors", clf_dir);
    snprintf(clf_paper_path, sizeof clf_paper_path, "%s/" CLF_PAPER ".safetensors", clf_dir);
    clf_trained_write(clf_trained_path);
    clf_paper_write(clf_paper_path);
    static const char *const flags[] = {"--models", clf_dir, "--mnist-dir", mnist_dir,
                                        "--train-workers", "1", "--train-threads", "1", NULL};
    serve_in_root(flags);
}

/* "/v1/models/NAME" + tail. */
static path_buf model_at(const char *name, const char *tail)
{
    path_buf b;
    snprintf(b.s, sizeof b.s, "/v1/models/%s%s", name, tail);
    return b;
}

/* Images [from, from + n) of data/mnist/d.json counted back from its end, where the test
 * images are (the last fifth of each digit's), into px (n, 784).  Read here with jansson,
 * not with the engine's loader. */
static void mnist_digits(int d, int from, int n, double *px)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%d.json", mnist_dir, d);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    ck_assert_msg(j != NULL, "%s: %s (line %d)", path, e.text, e.line);
    json_t *data = json_object_get(j, "data");
    const size_t len = json_array_size(data), count = len / CLF_PIXELS;
    ck_assert_msg(len % CLF_PIXELS == 0 && count >= (size_t)(from + n), "%s: %zu values", path, len);
    for (int i = 0; i < n; i++) {
        const size_t first = (count - 1 - (size_t)(from + i)) * CLF_PIXELS;
        for (size_t k = 0; k < CLF_PIXELS; k++) {
            json_t *v = json_array_get(data, first + k);
            ck_assert_msg(json_is_number(v), "%s: value %zu is not a number", path, first + k);
            px[(size_t)i * CLF_PIXELS + k] = json_number_value(v);
        }
    }
    json_decref(j);
}

/* POST /v1/models/{model}/classify with {"image": px}. */
static reply classify_json(const hyperd_proc *p, const char *model, const double *px)
{
    json_t *a = json_array();
    for (size_t k = 0; k < CLF_PIXELS; k++)
        json_array_append_new(a, json_real(px[k]));
    json_t *j = json_pack("{s:o}", "image", a);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    reply r = http_post(p, model_at(model, "/classify").s, body);
    free(body);
    return r;
}

/* POST /v1/models/{model}/classify with len bytes of Content-Type ctype. */
static reply classify_raw(const hyperd_proc *p, const char *model, const char *ctype,
                          const void *body, size_t len)
{
    req_opts o = {.content_type = ctype, .body_len = len};
    return http_req(p, "POST", model_at(model, "/classify").s, body, &o);
}

/* An 8-bit grey PNG of w × h pixels (row-major), by libpng's simplified writer: new,
 * *len bytes. */
static unsigned char *png_of_grey(const unsigned char *grey, int w, int h, size_t *len)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_GRAY;
    png_alloc_size_t n = 0;
    ck_assert_msg(png_image_write_to_memory(&im, NULL, &n, 0, grey, 0, NULL) && n > 0,
                  "png_image_write_to_memory (size): %s", im.message);
    unsigned char *png = malloc(n);
    ck_assert_ptr_nonnull(png);
    ck_assert_msg(png_image_write_to_memory(&im, png, &n, 0, grey, 0, NULL),
                  "png_image_write_to_memory: %s", im.message);
    png_image_free(&im);
    *len = n;
    return png;
}

/* A PNG of an MNIST digit drawn `scale` times as large (each pixel a scale × scale square),
 * as a person would draw it: black ink on white paper (grey = 255 · (1 − ink)); with
 * light_on_dark, as MNIST stores it instead (grey = 255 · ink).  New, *len bytes. */
static unsigned char *digit_png(const double *px, int scale, int light_on_dark, size_t *len)
{
    const int side = CLF_SIDE * scale;
    unsigned char *grey = malloc((size_t)side * side);
    ck_assert_ptr_nonnull(grey);
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            const double ink = px[(y / scale) * CLF_SIDE + x / scale];
            const long v = lround(255 * ink);
            grey[y * side + x] = (unsigned char)(light_on_dark ? v : 255 - v);
        }
    unsigned char *png = png_of_grey(grey, side, side, len);
    free(grey);
    return png;
}

/* A PNG of w × h pixels all of grey value v: new, *len bytes. */
static unsigned char *flat_png(int w, int h, unsigned char v, size_t *len)
{
    unsigned char *grey = malloc((size_t)w * h);
    ck_assert_ptr_nonnull(grey);
    memset(grey, v, (size_t)w * h);
    unsigned char *png = png_of_grey(grey, w, h, len);
    free(grey);
    return png;
}

/* Checks a classification reply: 200 JSON {"model", "label", "probabilities"} (and "image"
 * when `png`), the label in 0..9 and the most probable class, 10 probabilities in [0, 1]
 * summing to 1 within PROB_SUM_TOL.  Returns the label; probs (may be NULL) receives them. */
#define clf_label(r, model, png, probs) clf_label_at(__LINE__, &(r), model, png, probs)
static int clf_label_at(int line, const reply *r, const char *model, int png, double *probs)
{
    ck_assert_msg(r->status == 200, "line %d: %s: HTTP %ld; body: %.1500s", line, r->what,
                  r->status, r->body);
    ck_assert_msg(strncmp(r->content_type, "application/json", 16) == 0, "line %d: Content-Type %s",
                  line, r->content_type);
    ck_assert_msg(json_is_object(r->json) && json_object_size(r->json) == (png ? 4u : 3u),
                  "line %d: want model, label, probabilities%s: %.1500s", line, png ? ", image" : "",
                  r->body);
    ck_assert_str_eq(jstr_at(line, r, "model"), model);
    const json_int_t label = jint_at(line, r, "label");
    ck_assert_msg(label >= 0 && label < CLF_CLASSES, "line %d: label %lld", line, (long long)label);
    json_t *p = json_object_get(r->json, "probabilities");
    ck_assert_msg(json_is_array(p) && json_array_size(p) == CLF_CLASSES,
                  "line %d: probabilities: %.1500s", line, r->body);
    double sum = 0;
    int best = 0;
    for (int k = 0; k < CLF_CLASSES; k++) {
        json_t *v = json_array_get(p, (size_t)k);
        ck_assert_msg(json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 1,
                      "line %d: probability %d: %.1500s", line, k, r->body);
        const double x = json_number_value(v);
        sum += x;
        best = x > json_number_value(json_array_get(p, (size_t)best)) ? k : best;
        if (probs)
            probs[k] = x;
    }
    ck_assert_msg(fabs(sum - 1) <= PROB_SUM_TOL, "line %d: the probabilities sum to %.9f: %.1500s",
                  line, sum, r->body);
    ck_assert_msg(label == best, "line %d: label %lld, but class %d is the most probable: %.1500s",
                  line, (long long)label, best, r->body);
    return (int)label;
}

/* The probabilities of image px under a classifier file, computed here by the engine. */
static void clf_reference(const char *path, const double *px, double *probs)
{
    char err[HYPER_ERRMSG_MAX];
    checkpoint *ck = NULL;
    ck_assert_msg(checkpoint_open_tensors(path, &ck, err) == HYPER_OK, "%s: %s", path, err);
    classifier c;
    hyper_status st = clf_load(ck, &c, err);
    checkpoint_close(ck);
    ck_assert_msg(st == HYPER_OK, "clf_load %s: %s", path, err);
    clf_ws *ws = clf_ws_new(&c, 1);
    ck_assert_ptr_nonnull(ws);
    real x[CLF_PIXELS], p[CLF_CLASSES];
    for (int k = 0; k < CLF_PIXELS; k++)
        x[k] = (real)(float)px[k]; /* as the daemon reads a JSON number */
    clf_forward(&c, ws, 1, x, NULL, p);
    for (int k = 0; k < CLF_CLASSES; k++)
        probs[k] = p[k];
    clf_ws_free(ws);
    clf_free(&c);
}

/* The largest difference of two vectors of n. */
static double max_abs_diff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t k = 0; k < n; k++)
        m = fabs(a[k] - b[k]) > m ? fabs(a[k] - b[k]) : m;
    return m;
}

/* How much more probable the likeliest class is than the next. */
static double top_two_gap(const double *p)
{
    double first = 0, second = 0;
    for (int k = 0; k < CLF_CLASSES; k++) {
        if (p[k] > first) {
            second = first;
            first = p[k];
        } else if (p[k] > second) {
            second = p[k];
        }
    }
    return first - second;
}

/* hyperd_classifications_total of a model now (-1 when it has no series). */
static double classifications(const hyperd_proc *p, const char *model)
{
    reply m = http_get(p, "/metrics");
    expect_status(m, 200);
    char series[128];
    snprintf(series, sizeof series, "hyperd_classifications_total{model=\"%s\"}", model);
    const double v = metric(m.body, series);
    reply_free(&m);
    return v;
}

/* The listing's entry of a model (borrowed from r), or NULL. */
static json_t *listed_model(const reply *r, const char *name)
{
    size_t k;
    json_t *e;
    json_array_foreach(json_object_get(r->json, "models"), k, e)
        if (json_is_string(json_object_get(e, "name")) &&
            strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return e;
    return NULL;
}

/* A classifier as the API shows it: exactly these fields and values (gen_weights 0: a
 * plain net, which has no generated_weights, generator_parameters, embedding_size). */
#define expect_classifier(j, name, arch, params, gen_weights, generator, embed)                   \
    expect_classifier_at(__LINE__, j, name, arch, params, gen_weights, generator, embed)
static void expect_classifier_at(int line, json_t *j, const char *name, const char *arch,
                                 json_int_t params, json_int_t gen_weights, json_int_t generator,
                                 json_int_t embed)
{
    char *d = json_dumps(j, JSON_COMPACT);
    const char *file = json_string_value(json_object_get(j, "file"));
    char tail[80];
    snprintf(tail, sizeof tail, "/%s.safetensors", name);
    int ok = json_is_object(j) && json_object_size(j) == (gen_weights ? 10u : 7u) &&
             json_is_string(json_object_get(j, "name")) &&
             strcmp(json_string_value(json_object_get(j, "name")), name) == 0 &&
             json_is_string(json_object_get(j, "kind")) &&
             strcmp(json_string_value(json_object_get(j, "kind")), "classifier") == 0 &&
             json_is_string(json_object_get(j, "arch")) &&
             strcmp(json_string_value(json_object_get(j, "arch")), arch) == 0 &&
             json_is_integer(json_object_get(j, "parameters")) &&
             json_integer_value(json_object_get(j, "parameters")) == params &&
             json_is_integer(json_object_get(j, "inputs")) &&
             json_integer_value(json_object_get(j, "inputs")) == CLF_PIXELS &&
             json_is_integer(json_object_get(j, "classes")) &&
             json_integer_value(json_object_get(j, "classes")) == CLF_CLASSES && file &&
             strlen(file) > strlen(tail) && strcmp(file + strlen(file) - strlen(tail), tail) == 0;
    if (gen_weights)
        ok = ok && json_is_integer(json_object_get(j, "generated_weights")) &&
             json_integer_value(json_object_get(j, "generated_weights")) == gen_weights &&
             json_is_integer(json_object_get(j, "generator_parameters")) &&
             json_integer_value(json_object_get(j, "generator_parameters")) == generator &&
             json_is_integer(json_object_get(j, "embedding_size")) &&
             json_integer_value(json_object_get(j, "embedding_size")) == embed;
    ck_assert_msg(ok, "line %d: model %s\nwant name %s, kind classifier, arch %s, parameters %lld, "
                  "inputs 784, classes 10, file .../%s.safetensors%s (generated_weights %lld, "
                  "generator_parameters %lld, embedding_size %lld)", line, d, name, arch,
                  (long long)params, name, gen_weights ? "" : " and nothing else",
                  (long long)gen_weights, (long long)generator, (long long)embed);
    free(d);
}

/* The parameter counts, by hand from classifier.h's description of the nets.
 * hypermlp (H 80, tiles 16 × 10, Z = d = 8): fc1 784 × 80 is (784/16)·(80/10) = 392 tiles,
 * out 80 × 10 is 5; their embeddings 397 · 8, W_in 16·8·8, B_in 16·8, W_out 8·10, B_out 10;
 * plus the two biases 80 + 10. */
#define HYPERMLP_GENERATED (784 * 80 + 80 * 10)
#define HYPERMLP_GENERATOR (397 * 8 + 16 * 8 * 8 + 16 * 8 + 8 * 10 + 10)
#define HYPERMLP_PARAMS (HYPERMLP_GENERATOR + 80 + 10)
/* hyperconv (C 16, f 7, Z = d = 4): conv1 7·7·16 + 16, conv2's kernel generated (the
 * paper's 4,244 for 12,544) + 16, the dense layer 7·7·16·10 + 10. */
#define HYPERCONV_GENERATED (7 * 7 * 16 * 16)
#define HYPERCONV_GENERATOR 4244
#define HYPERCONV_PARAMS (7 * 7 * 16 + 16 + HYPERCONV_GENERATOR + 16 + 7 * 7 * 16 * 10 + 10)
/* mlp (H 80): 784 × 80 + 80, 80 × 10 + 10. */
#define MLP_PARAMS (784 * 80 + 80 + 80 * 10 + 10)

START_TEST(clf_models_are_listed)
{
    reply r = http_get(&srv, "/v1/models");
    expect_status(r, 200);
    ck_assert_msg(json_array_size(json_object_get(r.json, "models")) == 3, "%s", r.body);
    ck_assert_str_eq(jstr(r, "default"), "charlm"); /* a classifier is never the default */
    json_t *d = listed_model(&r, CLF_TRAINED), *p = listed_model(&r, CLF_PAPER),
           *c = listed_model(&r, "charlm");
    ck_assert_msg(d && p && c, "not all of digits, paper, charlm are listed: %s", r.body);
    expect_classifier(d, CLF_TRAINED, "hypermlp", HYPERMLP_PARAMS, HYPERMLP_GENERATED,
                      HYPERMLP_GENERATOR, 8);
    expect_classifier(p, CLF_PAPER, "hyperconv", HYPERCONV_PARAMS, HYPERCONV_GENERATED,
                      HYPERCONV_GENERATOR, 4);
    ck_assert_str_eq(json_string_value(json_object_get(c, "kind")), "charlm");
    /* each one's own page says what the list says */
    static const char *const names[] = {CLF_TRAINED, CLF_PAPER};
    for (int k = 0; k < 2; k++) {
        reply g = model_get(&srv, names[k]);
        ck_assert_msg(json_equal(g.json, listed_model(&r, names[k])), "GET %s\nlisted %s", g.body,
                      r.body);
        reply_free(&g);
    }
    reply_free(&r);
    r = http_get(&srv, "/v1/ready");
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "models"), 3);
    reply_free(&r);
}
END_TEST

/* Real test digits through the JSON path: a well-formed answer, the engine's own
 * probabilities, clear 0s and 1s read right, and each one counted in /metrics. */
START_TEST(clf_classify_json_digits)
{
    enum { N = 5 };
    const double before = classifications(&srv, CLF_TRAINED);
    const double paper_before = classifications(&srv, CLF_PAPER);
    ck_assert_msg(before >= 0 && paper_before >= 0, "no hyperd_classifications_total series");
    ck_assert_msg(classifications(&srv, "charlm") < 0, "a character model has a classifications series");
    /* The net errs on some 11% of the test digits, but 1s are its surest (every one of the
     * last 20 at p > 0.9) and 0s nearly so (one of the last 5 is an odd one): all five 1s
     * must be read right, and four of the five 0s. */
    static const int right_at_least[2] = {N - 1, N};
    double px[N * CLF_PIXELS], got[CLF_CLASSES], want[CLF_CLASSES];
    for (int d = 0; d < 2; d++) {
        mnist_digits(d, 0, N, px);
        int right = 0;
        char labels[N * 4 + 1] = "";
        for (int i = 0; i < N; i++) {
            reply r = classify_json(&srv, CLF_TRAINED, px + i * CLF_PIXELS);
            const int label = clf_label(r, CLF_TRAINED, 0, got);
            clf_reference(clf_trained_path, px + i * CLF_PIXELS, want);
            ck_assert_msg(max_abs_diff(got, want, CLF_CLASSES) < 1e-5,
                          "digit %d, test image %d: the daemon's probabilities differ from the "
                          "engine's by %g", d, i, max_abs_diff(got, want, CLF_CLASSES));
            right += label == d;
            snprintf(labels + strlen(labels), sizeof labels - strlen(labels), " %d", label);
            reply_free(&r);
        }
        ck_assert_msg(right >= right_at_least[d], "the last %d test %ds were read as%s", N, d, labels);
    }
    /* the untrained hyperconv answers too, with its generated kernel */
    reply r = classify_json(&srv, CLF_PAPER, px);
    clf_label(r, CLF_PAPER, 0, got);
    clf_reference(clf_paper_path, px, want);
    ck_assert_msg(max_abs_diff(got, want, CLF_CLASSES) < 1e-5, "paper: %g from the engine's",
                  max_abs_diff(got, want, CLF_CLASSES));
    reply_free(&r);
    /* a charset parameter is still JSON */
    json_t *a = json_array();
    for (size_t k = 0; k < CLF_PIXELS; k++)
        json_array_append_new(a, json_real(px[k]));
    json_t *j = json_pack("{s:o}", "image", a);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    r = classify_raw(&srv, CLF_TRAINED, "application/json; charset=utf-8", body, strlen(body));
    ck_assert_int_eq(clf_label(r, CLF_TRAINED, 0, NULL), 1);
    reply_free(&r);
    free(body);
    ck_assert_msg(classifications(&srv, CLF_TRAINED) == before + 2 * N + 1,
                  "hyperd_classifications_total{model=\"digits\"} went from %g to %g after %d",
                  before, classifications(&srv, CLF_TRAINED), 2 * N + 1);
    ck_assert_msg(classifications(&srv, CLF_PAPER) == paper_before + 1, "paper: %g -> %g",
                  paper_before, classifications(&srv, CLF_PAPER));
}
END_TEST

/* The same digits as PNGs, drawn 3× as large in black on white (and as MNIST stores them,
 * white on black): the daemon frames them back into the very digit, so "image" is the
 * digit and the probabilities are the JSON path's, but for what the PNG loses (pixels at or
 * below IMG_INK_THRESHOLD and 8-bit precision: some 1e-3 at most here); the label is the
 * JSON path's unless its two likeliest classes are closer than that could explain. */
START_TEST(clf_classify_png_digits)
{
    double px[CLF_PIXELS];
    for (int d = 0; d < CLF_CLASSES; d++) {
        mnist_digits(d, 0, 1, px);
        reply rj = classify_json(&srv, CLF_TRAINED, px);
        double pj[CLF_CLASSES];
        const int want = clf_label(rj, CLF_TRAINED, 0, pj);
        reply_free(&rj);
        for (int dark = 0; dark < 2; dark++) {
            size_t len = 0;
            unsigned char *png = digit_png(px, dark ? 1 : CLF_PNG_SCALE, dark, &len);
            reply r = classify_raw(&srv, CLF_TRAINED, "image/png", png, len);
            double pp[CLF_CLASSES];
            const int got = clf_label(r, CLF_TRAINED, 1, pp);
            ck_assert_msg(max_abs_diff(pp, pj, CLF_CLASSES) < PNG_PROB_TOL,
                          "digit %d as a %s PNG: probabilities %g from the JSON path's", d,
                          dark ? "white-on-black" : "black-on-white 3×",
                          max_abs_diff(pp, pj, CLF_CLASSES));
            ck_assert_msg(got == want || top_two_gap(pj) < 2 * PNG_PROB_TOL,
                          "digit %d as a %s PNG: label %d, as JSON %d", d,
                          dark ? "white-on-black" : "black-on-white 3×", got, want);
            json_t *seen = json_object_get(r.json, "image");
            ck_assert_msg(json_is_array(seen) && json_array_size(seen) == CLF_PIXELS,
                          "image: %.300s", r.body);
            double back[CLF_PIXELS];
            for (size_t k = 0; k < CLF_PIXELS; k++) {
                json_t *v = json_array_get(seen, k);
                ck_assert_msg(json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 1,
                              "image[%zu] is not a number in 0..1", k);
                back[k] = json_number_value(v);
            }
            /* what the net saw is the digit, but for its faintest pixels: at or below
             * IMG_INK_THRESHOLD they are paper; and within 8-bit grey's 1/255 */
            double inked[CLF_PIXELS];
            for (size_t k = 0; k < CLF_PIXELS; k++)
                inked[k] = px[k] > IMG_INK_THRESHOLD ? px[k] : 0;
            ck_assert_msg(max_abs_diff(back, inked, CLF_PIXELS) < 1.0 / 255,
                          "digit %d as a %s PNG came back %g away from itself", d,
                          dark ? "white-on-black" : "black-on-white 3×", max_abs_diff(back, px, CLF_PIXELS));
            reply_free(&r);
            free(png);
        }
    }
}
END_TEST

typedef struct {
    const char *ctype;             /* Content-Type of the body */
    const char *body;
    size_t len;                    /* 0: strlen(body) */
    int status;
    const char *type, *part;       /* the error's type; its message mentions part */
} bad_image;

/* A JSON body {"image": [...]} of n zeros but `value` at index at, then `extra` (new). */
static char *image_body(int n, int at, const char *value, const char *extra)
{
    const size_t cap = (size_t)n * 2 + strlen(value) + strlen(extra) + 32;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    size_t len = (size_t)snprintf(b, cap, "{\"image\": [");
    for (int k = 0; k < n; k++)
        len += (size_t)snprintf(b + len, cap - len, "%s%s", k ? "," : "", k == at ? value : "0");
    snprintf(b + len, cap - len, "]%s}", extra);
    return b;
}

START_TEST(clf_classify_refusals)
{
    const double before = classifications(&srv, CLF_TRAINED);
    double px[CLF_PIXELS];
    mnist_digits(1, 0, 1, px);
    size_t digit_len = 0, white_len = 0, black_len = 0, wide_len = 0;
    unsigned char *digit = digit_png(px, CLF_PNG_SCALE, 0, &digit_len);
    unsigned char *white = flat_png(84, 84, 255, &white_len);
    unsigned char *black = flat_png(84, 84, 0, &black_len);
    unsigned char *wide = flat_png(IMG_MAX_SIDE + 1, 1, 255, &wide_len);
    char *short_ = image_body(783, -1, "", ""), *long_ = image_body(785, -1, "", "");
    char *high = image_body(784, 100, "1.5", ""), *low = image_body(784, 783, "-0.01", "");
    char *text = image_body(784, 5, "\"x\"", ""), *null = image_body(784, 0, "null", "");
    char *nested = image_body(784, 1, "[0.5]", ""), *extra = image_body(784, -1, "", ", \"label\": 1");
    char *good = image_body(784, -1, "", "");
    char bad_sig[64];
    memcpy(bad_sig, digit, 8); /* the signature, then no chunks */
    memset(bad_sig + 8, 'x', sizeof bad_sig - 8);
    const bad_image bad[] = {
        {NULL, "{}", 0, 400, "invalid_request", "image: missing"},
        {NULL, "{\"image\": \"0, 0\"}", 0, 400, "invalid_request", "image: must be an array"},
        {NULL, "{\"image\": {\"0\": 1}}", 0, 400, "invalid_request", "image: must be an array"},
        {NULL, "{\"image\": []}", 0, 400, "invalid_request", "image: 0 numbers"},
        {NULL, short_, 0, 400, "invalid_request", "image: 783 numbers"},
        {NULL, long_, 0, 400, "invalid_request", "image: 785 numbers"},
        {NULL, high, 0, 400, "invalid_request", "image[100] (row 3, column 16)"},
        {NULL, low, 0, 400, "invalid_request", "image[783]"},
        {NULL, text, 0, 400, "invalid_request", "image[5]"},
        {NULL, null, 0, 400, "invalid_request", "image[0]"},
        {NULL, nested, 0, 400, "invalid_request", "image[1]"},
        {NULL, extra, 0, 400, "invalid_request", "unknown field 'label'"},
        {NULL, good, 0, 400, "invalid_request", "no ink"},
        {NULL, "{\"image\": [0, 0", 0, 400, "invalid_request", "invalid JSON"},
        {NULL, "{\"image\": [], \"image\": []}", 0, 400, "invalid_request", "invalid JSON"},
        {NULL, "[0, 0, 0]", 0, 400, "invalid_request", "JSON object"},
        {"text/plain", good, 0, 415, "unsupported_media_type", "application/json"},
        {"image/jpeg", good, 0, 415, "unsupported_media_type", "application/json"},
        {"image/png", good, 0, 400, "invalid_request", "not a PNG"},
        {"image/png", "GIF89a....", 0, 400, "invalid_request", "not a PNG"},
        {"image/png", "", 0, 400, "invalid_request", "empty"},
        {"image/png", bad_sig, sizeof bad_sig, 400, "invalid_request", "PNG"},
        {"image/png", (const char *)digit, digit_len / 2, 400, "invalid_request", "PNG"},
        {"image/png", (const char *)white, white_len, 400, "invalid_request", "no ink"},
        {"image/png", (const char *)black, black_len, 400, "invalid_request", "no ink"},
        {"image/png", (const char *)wide, wide_len, 413, "payload_too_large", "4096"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        reply r = classify_raw(&srv, CLF_TRAINED, bad[k].ctype ? bad[k].ctype : "application/json",
                               bad[k].body, bad[k].len ? bad[k].len : strlen(bad[k].body));
        expect_error(r, bad[k].status, bad[k].type, bad[k].part);
        reply_free(&r);
    }
    /* models that are not there, or not classifiers, whatever the body */
    reply r = classify_json(&srv, "no-such-model", px);
    expect_error(r, 404, "not_found", "no-such-model");
    reply_free(&r);
    r = classify_raw(&srv, "no-such-model", "image/png", digit, digit_len);
    expect_error(r, 404, "not_found", "no-such-model");
    reply_free(&r);
    r = classify_json(&srv, "charlm", px);
    expect_error(r, 400, "invalid_request", "not a classifier");
    reply_free(&r);
    r = classify_raw(&srv, "charlm", "image/png", digit, digit_len);
    expect_error(r, 400, "invalid_request", "not a classifier");
    reply_free(&r);
    /* the routes take one method each */
    r = http_get(&srv, model_at(CLF_TRAINED, "/classify").s);
    expect_error(r, 405, "method_not_allowed", "GET");
    ck_assert_str_eq(r.allow, "POST");
    reply_free(&r);
    /* none of it was counted, and the daemon still serves */
    ck_assert_msg(classifications(&srv, CLF_TRAINED) == before, "refusals were counted: %g -> %g",
                  before, classifications(&srv, CLF_TRAINED));
    r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    reply_free(&r);
    r = classify_raw(&srv, CLF_TRAINED, "image/png", digit, digit_len);
    clf_label(r, CLF_TRAINED, 1, NULL);
    reply_free(&r);
    free(digit), free(white), free(black), free(wide);
    free(short_), free(long_), free(high), free(low), free(text), free(null), free(nested);
    free(extra), free(good);
}
END_TEST

START_TEST(clf_kernels_are_an_svg)
{
    static const char *const names[] = {CLF_TRAINED, CLF_PAPER};
    char *svgs[2];
    for (int k = 0; k < 2; k++) {
        reply r = http_get(&srv, model_at(names[k], "/kernels.svg").s);
        expect_status(r, 200);
        ck_assert_msg(strncmp(r.content_type, "image/svg+xml", 13) == 0, "%s: Content-Type %s",
                      r.what, r.content_type);
        size_t n = r.len;
        while (n && (r.body[n - 1] == '\n' || r.body[n - 1] == ' '))
            n--;
        ck_assert_msg(strncmp(r.body, "<svg", 4) == 0 && n >= 6 && strncmp(r.body + n - 6, "</svg>", 6) == 0,
                      "%s: not <svg ...> ... </svg>: %.200s ... %.200s", r.what, r.body,
                      r.len > 200 ? r.body + r.len - 200 : r.body);
        svg_read(r.body, r.len);
        svgs[k] = strdup(r.body);
        reply_free(&r);
    }
    ck_assert_msg(strcmp(svgs[0], svgs[1]) != 0, "an mlp's and a conv net's kernels look the same");
    free(svgs[0]), free(svgs[1]);
    reply r = http_get(&srv, model_at("charlm", "/kernels.svg").s);
    expect_error(r, 400, "invalid_request", "not a classifier");
    reply_free(&r);
    r = http_get(&srv, model_at("no-such-model", "/kernels.svg").s);
    expect_error(r, 404, "not_found", "no-such-model");
    reply_free(&r);
    r = http_post(&srv, model_at(CLF_TRAINED, "/kernels.svg").s, "{}");
    expect_error(r, 405, "method_not_allowed", "POST");
    ck_assert_str_eq(r.allow, "GET");
    reply_free(&r);
}
END_TEST

/* A classifier has no sessions nor drawings; mnist is the built-in images dataset, which
 * no upload can make or replace. */
START_TEST(clf_sessions_refused_and_mnist_listed)
{
    reply r = http_postf(&srv, "/v1/sessions", "{s:s}", "model", CLF_TRAINED);
    expect_error(r, 400, "invalid_request", "classifier");
    reply_free(&r);
    r = http_post(&srv, "/v1/sessions", "{}"); /* the default is the character model */
    expect_status(r, 201);
    ck_assert_str_eq(jstr(r, "model"), "charlm");
    reply_free(&r);
    r = http_postf(&srv, HW_SAMPLE, "{s:s}", "model", CLF_PAPER);
    expect_error(r, 400, "invalid_request", "not a handwriting model");
    reply_free(&r);

    /* mnist: its files' bytes and checksum, 10,000 digits in 10 parts */
    char cmd[PATH_MAX * 2], sha[65] = "";
    int64_t bytes = 0;
    size_t off = (size_t)snprintf(cmd, sizeof cmd, "cat");
    for (int d = 0; d < CLF_CLASSES; d++) {
        char path[PATH_MAX + 16];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%d.json", mnist_dir, d);
        ck_assert_int_eq(stat(path, &sb), 0);
        bytes += sb.st_size;
        off += (size_t)snprintf(cmd + off, sizeof cmd - off, " '%s'", path);
    }
    snprintf(cmd + off, sizeof cmd - off, " | sha256sum");
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%64s", sha), 1);
    ck_assert_int_eq(pclose(f), 0);
    r = http_get(&srv, "/v1/datasets");
    expect_status(r, 200);
    json_t *m = listed_dataset(&r, "mnist");
    ck_assert_msg(m != NULL, "mnist is not listed: %.1500s", r.body);
    expect_dataset(m, "mnist", "images", bytes, 10000, sha, CLF_CLASSES, 1);
    reply g = http_get(&srv, "/v1/datasets/mnist");
    expect_status(g, 200);
    ck_assert_msg(json_equal(g.json, m), "GET %s\nlisted %s", g.body, r.body);
    reply_free(&g);
    reply_free(&r);
    r = dataset_put(&srv, "name=pictures&kind=images", "text/plain", "abc", 0, 0);
    expect_error(r, 400, "invalid_request", "images");
    reply_free(&r);
    r = dataset_put(&srv, "name=pictures&kind=images", "application/json", "[]", 0, 0);
    expect_error(r, 400, "invalid_request", "images");
    reply_free(&r);
    r = http_get(&srv, "/v1/datasets/pictures");
    expect_error(r, 404, "not_found", "pictures");
    reply_free(&r);
    r = dataset_put(&srv, "name=mnist", "text/plain", "abc", 0, 0);
    expect_error(r, 409, "conflict", "built-in");
    reply_free(&r);
    r = http_req(&srv, "DELETE", "/v1/datasets/mnist", NULL, NULL);
    expect_error(r, 409, "conflict", "built-in");
    reply_free(&r);
}
END_TEST

/* A classifier trained over HTTP: its units, a test error that shows it learnt, and the
 * model it makes is served and classifies as the engine does with its file. */
START_TEST(clf_job_trains_a_classifier)
{
    char id[JOB_ID_CHARS + 1];
    json_t *spec = json_pack("{s:s, s:s, s:s, s:{s:s}, s:{s:i, s:i}}", "kind", "classifier",
                             "dataset", "mnist", "model_name", "d1", "model", "arch", "mlp",
                             "train", "steps", 40, "eval_every", 20);
    job_submit(&srv, spec, id);
    job_view v = job_wait_end(&srv, id, 60);
    ck_assert_msg(!strcmp(v.state, "succeeded"), "job %s: %s (%s); log: %s", id, v.state, v.error,
                  hyperd_log_tail(&srv));
    reply r = http_get(&srv, job_at(id, "").s);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "kind"), "classifier");
    ck_assert_str_eq(jstr(r, "dataset"), "mnist");
    ck_assert_int_eq(jint(r, "step"), 40);
    ck_assert_int_eq(jint(r, "steps"), 40);
    ck_assert_str_eq(jstr(r, "loss_unit"), "nats/image");
    ck_assert_str_eq(jstr(r, "val_unit"), "test error (fraction)");
    ck_assert_msg(jnum(r, "images_per_second") > 0, "%s", r.body);
    ck_assert_msg(!json_object_get(r.json, "chars_per_second") &&
                      !json_object_get(r.json, "points_per_second"),
                  "a classifier job reports characters or points: %s", r.body);
    const double train = jnum(r, "train_loss"), err = jnum(r, "val_loss");
    ck_assert_msg(train > 0 && train < 2.3, "train_loss %g nats/image (chance is ln 10 = 2.30)", train);
    ck_assert_msg(err >= 0 && err < 0.6, "after 40 steps the test error is %g (chance is 0.9)", err);
    json_t *sm = json_object_get(json_object_get(r.json, "spec"), "model");
    json_t *st = json_object_get(json_object_get(r.json, "spec"), "train");
    ck_assert_msg(!strcmp(json_string_value(json_object_get(sm, "arch")), "mlp") &&
                      json_integer_value(json_object_get(sm, "hidden")) == 80 &&
                      !json_object_get(sm, "cell") &&
                      json_integer_value(json_object_get(st, "batch")) == 64 &&
                      json_number_value(json_object_get(st, "lr")) == 1e-3,
                  "spec: want model {arch mlp, hidden 80}, train {batch 64, lr 0.001}: %s", r.body);
    reply_free(&r);
    /* every validation is a fraction; the plot says what it shows */
    json_t *h = job_history(&srv, id);
    size_t k, evaluated = 0;
    json_t *e;
    json_array_foreach(h, k, e) {
        json_t *val = json_object_get(e, "val_loss");
        if (!json_is_true(json_object_get(e, "evaluated")))
            continue;
        evaluated++;
        ck_assert_msg(json_is_number(val) && json_number_value(val) >= 0 && json_number_value(val) <= 1,
                      "validation %zu is not a fraction", k);
    }
    ck_assert_msg(evaluated >= 2, "%zu validations for eval_every 20 of 40 steps", evaluated);
    json_decref(h);
    r = http_get(&srv, job_at(id, "/loss.svg").s);
    expect_status(r, 200);
    ck_assert_msg(strstr(r.body, "test error") != NULL, "loss.svg does not name its units");
    svg_read(r.body, r.len);
    reply_free(&r);

    /* the model: served, a plain mlp, and it classifies as its file does in the engine */
    r = model_get(&srv, "d1");
    expect_classifier(r.json, "d1", "mlp", MLP_PARAMS, 0, 0, 0);
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s", jstr(r, "file"));
    reply_free(&r);
    r = http_get(&srv, "/v1/models");
    ck_assert_msg(listed_model(&r, "d1") != NULL, "d1 is not listed: %.1500s", r.body);
    reply_free(&r);
    double px[CLF_PIXELS], got[CLF_CLASSES], want[CLF_CLASSES];
    mnist_digits(0, 0, 1, px);
    r = classify_json(&srv, "d1", px);
    clf_label(r, "d1", 0, got);
    clf_reference(file, px, want);
    ck_assert_msg(max_abs_diff(got, want, CLF_CLASSES) < 1e-5, "d1: %g from the engine's",
                  max_abs_diff(got, want, CLF_CLASSES));
    reply_free(&r);
    r = http_get(&srv, model_at("d1", "/kernels.svg").s);
    expect_status(r, 200);
    reply_free(&r);
    /* its name is taken now */
    r = job_post(&srv, json_pack("{s:s, s:s, s:s}", "kind", "classifier", "dataset", "mnist",
                                 "model_name", "d1"));
    expect_error(r, 409, "conflict", "model_name");
    reply_free(&r);
}
END_TEST

START_TEST(clf_job_specs_refused)
{
    reply r = http_get(&srv, "/v1/jobs");
    expect_status(r, 200);
    const json_int_t before = jint(r, "total");
    reply_free(&r);
#define CLF_ "\"kind\": \"classifier\", \"dataset\": \"mnist\", \"model_name\": \"spec-c\""
    static const bad_spec bad[] = {
        /* the data of the other kinds, and mnist for them */
        {"{\"kind\": \"classifier\", \"dataset\": \"fortunes\", \"model_name\": \"spec-c\"}", 400, "dataset"},
        {"{\"kind\": \"classifier\", \"dataset\": \"hershey-synthetic\", "
         "\"model_name\": \"spec-c\"}", 400, "dataset"},
        {"{\"kind\": \"charlm\", \"dataset\": \"mnist\", \"model_name\": \"spec-c\"}", 400, "dataset"},
        {"{\"kind\": \"handwriting\", \"dataset\": \"mnist\", \"model_name\": \"spec-c\"}", 400, "dataset"},
        /* the net */
        {"{" CLF_ ", \"model\": {\"arch\": \"resnet\"}}", 400, "model.arch"},
        {"{" CLF_ ", \"model\": {\"arch\": 3}}", 400, "model.arch"},
        {"{" CLF_ ", \"model\": {\"arch\": \"hypermlp\", \"tile_rows\": 3}}", 400, "model.tile_rows"},
        {"{" CLF_ ", \"model\": {\"arch\": \"hypermlp\", \"tile_cols\": 3}}", 400, "model.tile_cols"},
        {"{" CLF_ ", \"model\": {\"arch\": \"conv\", \"kernel\": 4}}", 400, "model.kernel"},
        {"{" CLF_ ", \"model\": {\"hidden\": -1}}", 400, "model.hidden"},
        {"{" CLF_ ", \"model\": {\"wnorm\": \"yes\"}}", 400, "model.wnorm"},
        {"{" CLF_ ", \"model\": {\"cell\": \"lstm\"}}", 400, "model.cell"},
        {"{" CLF_ ", \"model\": \"mlp\"}", 400, "model"},
        {"{" CLF_ ", \"model\": {\"arch\": \"hypermlp\", \"hidden\": 4000, \"tile_cols\": 1, "
         "\"tile_rows\": 16, \"gen_hidden\": 64}}", 400, "model.tile_cols"},
        /* what classifiers do not have */
        {"{" CLF_ ", \"train\": {\"seq\": 7}}", 400, "train.seq"},
        {"{" CLF_ ", \"train\": {\"val_fraction\": 0.1}}", 400, "train.val_fraction"},
        /* where it starts */
        {"{" CLF_ ", \"init_from\": \"charlm\"}", 400, "init_from"},
        {"{" CLF_ ", \"init_from\": \"" CLF_TRAINED "\"}", 400, "init_from"},
        {"{\"kind\": \"charlm\", \"dataset\": \"fortunes\", \"model_name\": \"spec-c\", "
         "\"init_from\": \"" CLF_TRAINED "\"}", 400, "init_from"},
        /* a name that is taken */
        {"{\"kind\": \"classifier\", \"dataset\": \"mnist\", \"model_name\": \"" CLF_PAPER "\"}", 409,
         "model_name"},
    };
#undef CLF_
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        r = http_post(&srv, "/v1/jobs", bad[k].spec);
        expect_error(r, bad[k].status, bad[k].status == 409 ? "conflict" : "invalid_request",
                     bad[k].part);
        reply_free(&r);
    }
    r = http_get(&srv, "/v1/jobs");
    expect_status(r, 200);
    ck_assert_msg(jint(r, "total") == before, "refused specs made jobs: %lld before, %.1500s",
                  (long long)before, r.body);
    reply_free(&r);
}
END_TEST

/* ---- the suite ---------------------------------------------------------------------------- */

Suite *jobs_api_suite(void);
Suite *jobs_api_suite(void)
{
    Suite *s = suite_create("jobs");
    TCase *tc = tcase(s, "jobs", setup_jobs, 30);
    tcase_add_test(tc, datasets_list_the_builtins);
    tcase_add_test(tc, dataset_text_upload_get_delete);
    tcase_add_test(tc, dataset_strokes_parts_add_up);
    tcase_add_test(tc, dataset_uploads_refused);
    tcase_add_test(tc, dataset_paths_cannot_leave_the_store);
    tcase_add_test(tc, upload_over_the_limit_gets_413);
    tcase_add_test(tc, job_trains_a_model_that_sessions_use);
    tcase_add_test(tc, job_events_resume_after_last_event_id);
    tcase_add_test(tc, job_specs_refused);
    tcase_add_test(tc, job_cancel_stops_a_running_job);
    tcase_add_test(tc, job_handwriting_on_hershey_synthetic);
    tcase_add_test(tc, job_epochs_set_the_steps);
    tcase_add_test(tc, job_fine_tunes_a_finished_model);
    tcase_add_test(tc, jobs_queue_behind_one_worker);
    tcase_add_test(tc, job_resumes_after_kill_9);
    tcase_add_test(tc, job_resumes_after_sigterm);
    tcase_add_test(tc, job_killed_before_its_first_checkpoint_starts_over);
    tcase_add_test(tc, job_with_a_damaged_checkpoint_starts_over);

    tc = tcase(s, "classifier", setup_classifier, 60);
    tcase_add_test(tc, clf_models_are_listed);
    tcase_add_test(tc, clf_classify_json_digits);
    tcase_add_test(tc, clf_classify_png_digits);
    tcase_add_test(tc, clf_classify_refusals);
    tcase_add_test(tc, clf_kernels_are_an_svg);
    tcase_add_test(tc, clf_sessions_refused_and_mnist_listed);
    tcase_add_test(tc, clf_job_trains_a_classifier);
    tcase_add_test(tc, clf_job_specs_refused);
    return s;
}
