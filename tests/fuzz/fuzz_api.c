/*
 * fuzz_api.c — the request bodies of every endpoint family that takes one, through the api
 * layer as server/http.c calls it but with no socket: api_route_match, then the route's
 * handler (or its upload handler, fed the body in pieces), then the reply drained (a stream
 * read to its end) and freed.
 *
 * The app is real: a registry with a tiny character model, a tiny handwriting model (both
 * hyperlstm) and a tiny classifier written by the engine at start-up, a session store,
 * a dataset store and a job runner with no workers (jobs queue but never train), all in a
 * scratch directory.  Two sessions (one per recurrent model) are made at start-up and reset
 * before every input, so one input's result does not depend on the ones before it.
 *
 * Input: byte 0 picks the endpoint, byte 1 the Content-Type and the upload's piece size,
 * the rest is the body.
 */
#include "fuzz.h"

#include <pthread.h>

#include <jansson.h>
#include <sys/stat.h>

#include "api.h"
#include "checkpoint.h"
#include "classifier.h"
#include "kernels.h"
#include "linalg.h"
#include "mdn.h"
#include "model.h"
#include "vocab.h"

#define FUZZ_MAX_CHARS 64       /* per generate request: keeps one input fast */
#define FUZZ_STREAM_CALLS 20000 /* next() calls before a stream is given up on */

static registry models;
static session_store sessions;
static api_app app;
static char char_session[64], hw_session[64];

static const char *no_query(void *conn, const char *key)
{
    (void)conn;
    (void)key;
    return NULL;
}

/* The query of a dataset upload: a fixed name (deleted after each input). */
static const char *upload_query(void *conn, const char *key)
{
    (void)conn;
    return strcmp(key, "name") == 0 ? "fuzz" : NULL;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_api: %s: %s\n", what, err);
    abort();
}

static void write_recurrent(const char *path, int handwriting)
{
    static const char corpus[] = "the quick brown fox jumps over the lazy dog. THE END!\n";
    char err[HYPER_ERRMSG_MAX];
    vocab v;
    if (vocab_build(&v, corpus, sizeof corpus - 1, err) != HYPER_OK)
        die("vocab_build", err);
    model_config cfg = {CELL_HYPERLSTM, 1, 16, 8, 4, handwriting ? 3 : 0,
                        handwriting ? mdn_outputs(3) : v.size};
    const ckpt_kv meta[] = {{"kind", "handwriting"}, {"strokes.mean_x", "0"}, {"strokes.mean_y", "0"},
                            {"strokes.std_x", "1"}, {"strokes.std_y", "1"}};
    model m;
    if (model_create(&m, &cfg, err) != HYPER_OK)
        die("model_create", err);
    model_init(&m, 1);
    if (checkpoint_save(path, &m, handwriting ? NULL : &v, handwriting ? meta : NULL, handwriting ? 5 : 0, NULL, 0,
                        err) != HYPER_OK)
        die("checkpoint_save", err);
    model_free(&m);
    vocab_free(&v);
}

static void write_classifier(const char *path)
{
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg;
    clf_config_default(&cfg, CLF_HYPERMLP);
    classifier c;
    if (clf_config_check(&cfg, err) != HYPER_OK || clf_create(&c, &cfg, err) != HYPER_OK)
        die("clf_create", err);
    clf_init(&c, 1);
    if (clf_save(path, &c, NULL, 0, NULL, 0, err) != HYPER_OK)
        die("clf_save", err);
    clf_free(&c);
}

/* Runs one request and returns its reply's JSON (a new reference, or NULL). */
/* A reply the handler deferred (api_later): waits for the scheduler's notice, as the
 * server's workers do, then has it made. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;
} later_wait;

static void later_ready(void *arg)
{
    later_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->ready = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void complete_later(api_reply *rep)
{
    later_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    const api_later later = rep->later;
    memset(&rep->later, 0, sizeof rep->later);
    later.notify(later.ctx, later_ready, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.ready)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    later.complete(later.ctx, rep);
}

static json_t *run(const char *method, const char *path, const char *content_type, const char *body,
                   size_t body_len, size_t piece)
{
    api_request req;
    memset(&req, 0, sizeof req);
    api_reply rep;
    memset(&rep, 0, sizeof rep);
    int status = 0;
    char allow[64];
    const api_route *route = api_route_match(method, path, &req, &status, allow, sizeof allow);
    if (!route)
        abort(); /* every path below is one of the table's */
    req.method = method;
    req.path = path;
    req.body = body;
    req.body_len = body_len;
    req.content_type = content_type;
    req.query = route->upload ? upload_query : no_query;
    req.app = &app;
    if (route->upload) {
        api_upload up;
        if (route->upload(&req, &rep, &up) == 0) {
            int stopped = 0;
            for (size_t at = 0; at < body_len && !stopped; at += piece)
                stopped = up.write(up.ctx, body + at, body_len - at < piece ? body_len - at : piece) != 0;
            up.finish(up.ctx, &rep);
        }
    } else {
        route->handler(&req, &rep);
    }
    if (rep.later.complete)
        complete_later(&rep);
    if (rep.streaming) {
        char buf[4096];
        for (int k = 0; k < FUZZ_STREAM_CALLS && rep.stream.next(rep.stream.ctx, buf, sizeof buf) >= 0; k++)
            ;
        rep.stream.release(rep.stream.ctx);
    }
    if (rep.status < 100 || rep.status > 599) {
        fprintf(stderr, "fuzz_api: %s %s replied with status %d\n", method, path, rep.status);
        abort();
    }
    free(rep.body);
    return rep.json;
}

/* Creates a session on model name and copies its id into id. */
static void make_session(const char *name, char *id, size_t n)
{
    char body[128];
    snprintf(body, sizeof body, "{\"model\": \"%s\", \"seed\": 1}", name);
    json_t *j = run("POST", "/v1/sessions", "application/json", body, strlen(body), 1);
    const char *s = j ? json_string_value(json_object_get(j, "id")) : NULL;
    if (!s)
        die("creating a session", name);
    snprintf(id, n, "%s", s);
    json_decref(j);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *root = fuzz_scratch_dir();
    char dir[512], ddir[512], jdir[512], jmodels[512], path[600], err[HYPER_ERRMSG_MAX];
    linalg_init();
    math_set_threads(1);
    kernels_set_threads(1);
    snprintf(dir, sizeof dir, "%s/models", root);
    snprintf(ddir, sizeof ddir, "%s/datasets", root);
    snprintf(jdir, sizeof jdir, "%s/jobs", root);
    snprintf(jmodels, sizeof jmodels, "%s/job-models", root);
    if (mkdir(dir, 0755) != 0)
        die("mkdir", dir);
    snprintf(path, sizeof path, "%s/charlm.safetensors", dir);
    write_recurrent(path, 0);
    snprintf(path, sizeof path, "%s/handwriting.safetensors", dir);
    write_recurrent(path, 1);
    snprintf(path, sizeof path, "%s/digits.safetensors", dir);
    write_classifier(path);

    registry_init(&models, 8);
    if (registry_load(&models, dir, err) != HYPER_OK)
        die("registry_load", err);
    store *records = NULL;
    if (store_open_local(&records, root, err) != HYPER_OK)
        die("store_open_local", err);
    if (session_store_init(&sessions, records, 64, 3600 * 1000, err) != HYPER_OK)
        die("session_store_init", err);
    dataset_store *datasets = NULL;
    if (dataset_store_open(&datasets, ddir, fuzz_fortunes(), err) != HYPER_OK)
        die("dataset_store_open", err);
    app = (api_app){.models = &models, .sessions = &sessions, .datasets = datasets, .models_dir = jmodels,
                    .metrics = api_metrics_new(), .max_body_bytes = API_DEFAULT_MAX_BODY_BYTES,
                    .max_upload_bytes = 1 << 20, .max_chars = FUZZ_MAX_CHARS, .ready = 1};
    job_host host = api_job_host(&app);
    if (job_runner_open(&app.jobs, jdir, jmodels, 0, 1, &host, err) != HYPER_OK)
        die("job_runner_open", err);
    make_session("charlm", char_session, sizeof char_session);
    make_session("handwriting", hw_session, sizeof hw_session);
    return 0;
}

static void reset_session(const char *id)
{
    int busy = 0;
    session *s = session_get(&sessions, id, 1, &busy);
    if (!s)
        die("a start-up session is gone", id);
    session_reset(&sessions, s);
    session_release(&sessions, s, 1, 0);
}

/* What an input created, removed so the next input starts from the same app. */
static void clean_up(json_t *reply, int kind)
{
    const char *id = reply ? json_string_value(json_object_get(reply, "id")) : NULL;
    char err[HYPER_ERRMSG_MAX];
    if (kind == 's' && id && strcmp(id, char_session) && strcmp(id, hw_session))
        session_delete(&sessions, id);
    if (kind == 'j' && id) {
        job_info info;
        job_cancel(app.jobs, id, &info);
        job_delete(app.jobs, id, err);
    }
    if (kind == 'd')
        dataset_delete(app.datasets, "fuzz", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {"application/json", "text/plain; charset=utf-8", "application/xml",
                                        "image/png", NULL, "application/json; charset=utf-8", "text/xml",
                                        "application/x-www-form-urlencoded"};
    if (size < 2)
        return 0;
    const char *content_type = types[data[1] % (sizeof types / sizeof types[0])];
    size_t piece = (size_t)(data[1] >> 3) * 7 + 1;
    size_t len = size - 2;
    char *body = malloc(len + 1);
    if (!body)
        abort();
    memcpy(body, data + 2, len);
    body[len] = 0;
    reset_session(char_session);
    reset_session(hw_session);

    char path[256];
    const char *method = "POST";
    int kind = 0;
    switch (data[0] % 12) {
    case 0: snprintf(path, sizeof path, "/v1/sessions"); kind = 's'; break;
    case 1: snprintf(path, sizeof path, "/v1/sessions/%s/feed", char_session); break;
    case 2: snprintf(path, sizeof path, "/v1/sessions/%s/generate", char_session); break;
    case 3: snprintf(path, sizeof path, "/v1/sessions/%s/feed", hw_session); break;
    case 4: snprintf(path, sizeof path, "/v1/sessions/%s/generate", hw_session); break;
    case 5: snprintf(path, sizeof path, "/v1/sessions/%s/fork", data[0] & 0x80 ? hw_session : char_session);
            kind = 's'; break;
    case 6: snprintf(path, sizeof path, "/v1/sessions/%s/reset", char_session); break;
    case 7: snprintf(path, sizeof path, "/v1/handwriting/sample"); break;
    case 8: snprintf(path, sizeof path, "/v1/models/digits/classify"); break;
    case 9: snprintf(path, sizeof path, "/v1/jobs"); kind = 'j'; break;
    case 10: snprintf(path, sizeof path, "/v1/datasets"); kind = 'd'; break;
    default: snprintf(path, sizeof path, "/v1/models/%s/classify", data[0] & 0x80 ? "charlm" : "digits"); break;
    }
    json_t *reply = run(method, path, content_type, body, len, piece);
    clean_up(reply, kind);
    json_decref(reply);
    free(body);
    return 0;
}
