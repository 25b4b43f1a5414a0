/*
 * jobs.c — /v1/jobs: submit, list, inspect, follow (SSE with Last-Event-ID), metrics, the
 * loss curves as SVG, cancel and delete, over engine/jobs.h; and the job runner's host
 * (api_job_host): datasets from the dataset store, finished models into the registry.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "datasets.h"
#include "jobs.h"
#include "strbuf.h"

#define EVENTS_BATCH 64           /* history points copied per wake-up */
#define EVENTS_WAIT_MS 500        /* a stream quiet this long gets a heartbeat */
#define TEXT_MAX_BYTES ((size_t)1 << 30)

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* What a kind of job measures its progress in. */
typedef struct {
    const char *loss, *val, *rate, *axis;
} job_units;

static job_units units_of(job_kind k)
{
    switch (k) {
    case JOB_HANDWRITING:
        return (job_units){"nats/point", "nats/line", "points_per_second", "training nats/point, validation nats/line"};
    case JOB_CLASSIFIER:
        return (job_units){"nats/image", "test error (fraction)", "images_per_second",
                           "training nats/image, validation test error"};
    default:
        return (job_units){"bits/char", "bits/char", "chars_per_second", "bits per character"};
    }
}

static json_t *job_json(const job_info *j)
{
    const job_units u = units_of(j->spec.kind);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "state", json_string(job_state_str(j->state)));
    json_object_set_new(o, "kind", json_string(job_kind_str(j->spec.kind)));
    json_object_set_new(o, "dataset", json_string(j->spec.dataset));
    json_object_set_new(o, "model_name", json_string(j->spec.model_name));
    json_object_set_new(o, "step", json_integer(j->step));
    json_object_set_new(o, "steps", json_integer(j->steps));
    json_object_set_new(o, "fraction", json_real(j->steps > 0 ? (double)j->step / (double)j->steps : 0.0));
    json_object_set_new(o, "train_loss", real_or_null(j->train_loss));
    json_object_set_new(o, "val_loss", real_or_null(j->val_loss));
    json_object_set_new(o, "loss_unit", json_string(u.loss));
    json_object_set_new(o, "val_unit", json_string(u.val));
    json_object_set_new(o, u.rate, real_or_null(j->items_per_sec));
    json_object_set_new(o, "elapsed_seconds", real_or_null(j->elapsed));
    json_object_set_new(o, "eta_seconds", j->state == JOB_RUNNING ? real_or_null(j->eta) : json_null());
    json_object_set_new(o, "checkpoint_step", j->checkpoint_step >= 0 ? json_integer(j->checkpoint_step) : json_null());
    json_object_set_new(o, "resumes", json_integer(j->resumes));
    json_object_set_new(o, "error", j->error[0] ? json_string(j->error) : json_null());
    json_object_set_new(o, "created_at", api_iso_time(j->created_ms));
    json_object_set_new(o, "started_at", j->started_ms ? api_iso_time(j->started_ms) : json_null());
    json_object_set_new(o, "finished_at", j->finished_ms ? api_iso_time(j->finished_ms) : json_null());
    json_object_set_new(o, "spec", job_spec_to_json(&j->spec));
    return o;
}

/* ---- submit, list, get, cancel, delete ------------------------------------------------- */

void api_jobs_submit(const api_request *req, api_reply *rep)
{
    json_t *body = api_body_object(req, rep);
    if (!body)
        return;
    job_spec spec;
    job_info info;
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = job_spec_from_json(body, &spec, err);
    if (st == HYPER_OK)
        st = job_submit(req->app->jobs, &spec, &info, err);
    if (st != HYPER_OK)
        api_error(rep, api_status_http(st), "%s", err);
    else
        api_json(rep, 202, job_json(&info));
    json_decref(body);
}

void api_jobs_list(const api_request *req, api_reply *rep)
{
    int64_t limit, offset;
    if (api_query_int(req, "limit", 1, API_PAGE_MAX, 100, &limit, rep) < 0 ||
        api_query_int(req, "offset", 0, INT32_MAX, 0, &offset, rep) < 0)
        return;
    char (*ids)[JOB_ID_LEN + 1] = calloc((size_t)limit, sizeof *ids);
    if (!ids) {
        api_error(rep, 500, "out of memory");
        return;
    }
    size_t total = job_list(req->app->jobs, (size_t)offset, (size_t)limit, ids);
    json_t *arr = json_array();
    for (int64_t k = 0; k < limit && ids[k][0]; k++) {
        job_info info;
        if (job_get(req->app->jobs, ids[k], &info) == HYPER_OK)
            json_array_append_new(arr, job_json(&info));
    }
    free(ids);
    api_json(rep, 200, json_pack("{s:o, s:I, s:I, s:I}", "jobs", arr, "total", (json_int_t)total, "offset",
                                 (json_int_t)offset, "limit", (json_int_t)limit));
}

void api_jobs_get(const api_request *req, api_reply *rep)
{
    job_info info;
    if (job_get(req->app->jobs, req->params[0], &info) != HYPER_OK)
        api_error(rep, 404, "no job %s", req->params[0]);
    else
        api_json(rep, 200, job_json(&info));
}

void api_jobs_cancel(const api_request *req, api_reply *rep)
{
    job_info info;
    if (job_cancel(req->app->jobs, req->params[0], &info) != HYPER_OK)
        api_error(rep, 404, "no job %s", req->params[0]);
    else
        api_json(rep, 200, job_json(&info));
}

void api_jobs_delete(const api_request *req, api_reply *rep)
{
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = job_delete(req->app->jobs, req->params[0], err);
    if (st != HYPER_OK)
        api_error(rep, api_status_http(st), "%s", err);
    else
        rep->status = 204;
}

/* ---- history: metrics, events, loss.svg ------------------------------------------------ */

/* The whole history of a job (new array), or NULL when there is no such job. */
static json_t *history_json(job_runner *r, const char *id, size_t *count)
{
    job_point buf[EVENTS_BATCH];
    json_t *arr = json_array();
    size_t from = 0, total = 0;
    for (;;) {
        size_t got = job_history(r, id, from, buf, EVENTS_BATCH, &total, NULL);
        for (size_t k = 0; k < got; k++)
            json_array_append_new(arr, job_point_to_json(&buf[k]));
        from += got;
        if (got == 0 || from >= total)
            break;
    }
    *count = from;
    return arr;
}

void api_jobs_metrics(const api_request *req, api_reply *rep)
{
    job_info info;
    if (job_get(req->app->jobs, req->params[0], &info) != HYPER_OK) {
        api_error(rep, 404, "no job %s", req->params[0]);
        return;
    }
    size_t n = 0;
    json_t *h = history_json(req->app->jobs, req->params[0], &n);
    api_json(rep, 200, json_pack("{s:s, s:s, s:o, s:I}", "id", info.id, "state", job_state_str(info.state), "history", h,
                                 "count", (json_int_t)n));
}

typedef struct {
    api_app *app;
    job_runner *runner;
    int (*client_gone)(void *conn); /* NDJSON has no heartbeat: ask the server instead */
    void *conn;
    char id[JOB_ID_LEN + 1];
    size_t next;                  /* the next history index to send (event id = index + 1) */
    int done;
    double last_write;            /* now_ms() of the last event or heartbeat */
    api_outbuf out;
} events_stream;

static ssize_t events_next(void *ctx, char *buf, size_t max)
{
    events_stream *es = ctx;
    if (api_outbuf_empty(&es->out)) {
        if (es->done)
            return -1;
        job_point pts[EVENTS_BATCH];
        size_t total = 0;
        job_state state = JOB_QUEUED;
        size_t got = job_history(es->runner, es->id, es->next, pts, EVENTS_BATCH, &total, &state);
        for (size_t k = 0; k < got; k++) {
            char id[24];
            snprintf(id, sizeof id, "%zu", es->next + k + 1);
            json_t *o = job_point_to_json(&pts[k]);
            json_object_set_new(o, "state", json_string("running"));
            if (api_outbuf_event(&es->out, id, o) != 0)
                return -1;
        }
        es->next += got;
        if (got > 0)
            es->last_write = (double)now_ms();
        if (got == 0 && es->app->stopping) { /* the job goes on after the restart */
            if (api_outbuf_event(&es->out, NULL, json_pack("{s:b, s:s}", "done", 0, "finish_reason", "shutdown")) != 0)
                return -1;
            es->done = 1;
        } else if (got == 0) {
            job_info info;
            if (job_get(es->runner, es->id, &info) != HYPER_OK)
                return -1; /* deleted */
            if (job_state_finished(info.state) && es->next >= info.history) {
                json_t *o = job_json(&info);
                json_object_set_new(o, "done", json_true());
                if (api_outbuf_event(&es->out, NULL, o) != 0)
                    return -1;
                es->done = 1;
            } else if ((double)now_ms() - es->last_write >= EVENTS_WAIT_MS) {
                if (api_outbuf_heartbeat(&es->out) != 0) /* the client may have gone */
                    return -1;
                if (es->client_gone && es->client_gone(es->conn))
                    return -1;
                es->last_write = (double)now_ms();
            }
            if (api_outbuf_empty(&es->out))
                return 0;
        }
    }
    return (ssize_t)api_outbuf_take(&es->out, buf, max);
}

static void events_release(void *ctx)
{
    events_stream *es = ctx;
    api_outbuf_free(&es->out);
    free(es);
}

void api_jobs_events(const api_request *req, api_reply *rep)
{
    job_info info;
    if (job_get(req->app->jobs, req->params[0], &info) != HYPER_OK) {
        api_error(rep, 404, "no job %s", req->params[0]);
        return;
    }
    /* Last-Event-ID (or ?from=N) resumes after the event of that id */
    int64_t from = 0;
    if (req->last_event_id && *req->last_event_id) {
        char *end = NULL;
        long long v = strtoll(req->last_event_id, &end, 10);
        if (*end || v < 0) {
            api_error(rep, 400, "Last-Event-ID: '%.32s' is not an event id of this stream", req->last_event_id);
            return;
        }
        from = v;
    } else if (api_query_int(req, "from", 0, INT64_MAX / 2, 0, &from, rep) < 0) {
        return;
    }
    events_stream *es = calloc(1, sizeof *es);
    if (!es) {
        api_error(rep, 500, "out of memory");
        return;
    }
    es->app = req->app;
    es->runner = req->app->jobs;
    es->client_gone = req->client_gone;
    es->conn = req->conn;
    snprintf(es->id, sizeof es->id, "%s", info.id);
    es->next = (size_t)from;
    es->last_write = (double)now_ms();
    es->out.ndjson = req->accept && strstr(req->accept, "application/x-ndjson") != NULL;
    rep->status = 200;
    rep->streaming = 1;
    rep->stream = (api_stream){es, events_next, events_release,
                               es->out.ndjson ? "application/x-ndjson" : "text/event-stream",
                               NULL /* job events: looked at every tick */};
}

/* ---- the loss curves ------------------------------------------------------------------- */

#define PLOT_W 640.0
#define PLOT_H 400.0
#define PLOT_L 64.0               /* margins: left, right, top, bottom */
#define PLOT_R 16.0
#define PLOT_T 32.0
#define PLOT_B 48.0

/* A "nice" tick step near span / 5. */
static double tick_step(double span)
{
    double raw = span / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Training and validation loss against step, as an SVG document (newly allocated). */
static char *loss_svg(const job_info *info, const job_point *pts, size_t n)
{
    double x1 = (double)(info->steps > 0 ? info->steps : 1), y0 = INFINITY, y1 = -INFINITY;
    for (size_t k = 0; k < n; k++) {
        const double v[2] = {pts[k].train_loss, pts[k].val_loss};
        for (int q = 0; q < 2; q++)
            if (isfinite(v[q])) {
                y0 = fmin(y0, v[q]);
                y1 = fmax(y1, v[q]);
            }
        x1 = fmax(x1, (double)pts[k].step);
    }
    if (!isfinite(y0)) {
        y0 = 0;
        y1 = 1;
    }
    if (y1 - y0 < 1e-9) {
        y0 -= 0.5;
        y1 += 0.5;
    }
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad;
    y1 += pad;
    const double pw = PLOT_W - PLOT_L - PLOT_R, ph = PLOT_H - PLOT_T - PLOT_B;
#define PX(s) (PLOT_L + (double)(s) / x1 * pw)
#define PY(v) (PLOT_T + (y1 - (v)) / (y1 - y0) * ph)
    strbuf b;
    strbuf_init(&b);
    strbuf_printf(&b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
              "font-family=\"sans-serif\" font-size=\"12\">\n"
              "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
              "<text x=\"%.0f\" y=\"20\" font-size=\"14\">job %s · %s · %s</text>\n",
              PLOT_W, PLOT_H, PLOT_W, PLOT_H, PLOT_L, info->id, info->spec.model_name, job_state_str(info->state));
    const double ys = tick_step(y1 - y0), xs = tick_step(x1);
    /* ticks counted, not accumulated: at huge values v += ys could stand still */
    for (int k = 0; k < 64; k++) {
        const double v = (ceil(y0 / ys) + k) * ys;
        if (!(v <= y1))
            break;
        strbuf_printf(&b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                  PLOT_L, PLOT_L + pw, PY(v), PY(v), PLOT_L - 6, PY(v) + 4, fabs(v) < ys * 1e-6 ? 0.0 : v);
    }
    for (int k = 0; k < 64 && k * xs <= x1; k++)
        strbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(k * xs),
                      PLOT_T + ph + 16, k * xs);
    strbuf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n"
                  "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">loss (%s)</text>\n",
              PLOT_L, PLOT_T, pw, ph, PLOT_L + pw / 2, PLOT_H - 8, PLOT_T + ph / 2,
              units_of(info->spec.kind).axis);
    const char *color[2] = {"#1f77b4", "#d62728"}, *label[2] = {"training", "validation"};
    for (int q = 0; q < 2; q++) {
        int started = 0;
        strbuf_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color[q]);
        for (size_t k = 0; k < n; k++) {
            const double v = q == 0 ? pts[k].train_loss : pts[k].val_loss;
            if (!isfinite(v) || (q == 1 && !pts[k].evaluated))
                continue;
            strbuf_printf(&b, "%s%.1f,%.1f", started ? " " : "", PX(pts[k].step), PY(v));
            started = 1;
        }
        strbuf_printf(&b, "\"/>\n<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">%s</text>\n", PLOT_L + pw - 90,
                  PLOT_T + 16 + 16 * q, color[q], label[q]);
    }
    strbuf_printf(&b, "</svg>\n");
#undef PX
#undef PY
    return strbuf_take(&b);
}

void api_jobs_loss_svg(const api_request *req, api_reply *rep)
{
    job_info info;
    if (job_get(req->app->jobs, req->params[0], &info) != HYPER_OK) {
        api_error(rep, 404, "no job %s", req->params[0]);
        return;
    }
    size_t cap = info.history + 1, n = 0, total = 0;
    job_point *pts = malloc(cap * sizeof *pts);
    if (pts)
        n = job_history(req->app->jobs, info.id, 0, pts, cap, &total, NULL);
    char *svg = pts ? loss_svg(&info, pts, n) : NULL;
    free(pts);
    if (!svg) {
        api_error(rep, 500, "out of memory");
        return;
    }
    rep->status = 200;
    rep->body = svg;
    rep->body_len = strlen(svg);
    rep->content_type = "image/svg+xml";
}

/* ---- the runner's host ----------------------------------------------------------------- */

static hyper_status host_load_text(void *user, const char *dataset, const vocab *voc, double val_fraction,
                                   corpus *out, char *err)
{
    api_app *app = user;
    return dataset_load_text(app->datasets, dataset, TEXT_MAX_BYTES, voc, val_fraction, out, err);
}

static hyper_status host_load_strokes(void *user, const char *dataset, double val_fraction, stroke_corpus *out,
                                      char *err)
{
    api_app *app = user;
    return dataset_load_strokes(app->datasets, dataset, val_fraction, out, err);
}

static hyper_status host_load_images(void *user, const char *dataset, image_set *out, char *err)
{
    api_app *app = user;
    return dataset_load_images(app->datasets, dataset, out, err);
}

static hyper_status host_check_dataset(void *user, const char *dataset, job_kind kind, char *err)
{
    api_app *app = user;
    dataset_info info;
    if (dataset_get(app->datasets, dataset, &info, NULL) != HYPER_OK)
        return hyper_fail(err, HYPER_ERR_NOT_FOUND, "dataset: no dataset named '%s'", dataset);
    const dataset_kind want = kind == JOB_CLASSIFIER ? DATASET_IMAGES : kind == JOB_HANDWRITING ? DATASET_STROKES
                                                                                               : DATASET_TEXT;
    if (info.kind != want)
        return hyper_fail(err, HYPER_ERR_ARG, "dataset: '%s' holds %s, but a %s job trains on %s", dataset,
                          dataset_kind_str(info.kind), job_kind_str(kind), dataset_kind_str(want));
    return HYPER_OK;
}

static hyper_status host_acquire(void *user, const char *dataset, int acquire)
{
    api_app *app = user;
    if (acquire)
        return dataset_acquire(app->datasets, dataset, NULL, NULL);
    dataset_release(app->datasets, dataset);
    return HYPER_OK;
}

static int host_model_exists(void *user, const char *name)
{
    api_app *app = user;
    if (registry_find(app->models, name))
        return 1;
    char path[2048];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s.safetensors", app->models_dir, name);
    return stat(path, &sb) == 0;
}

static const char *host_model_path(void *user, const char *name, char *buf, size_t n)
{
    api_app *app = user;
    model_entry *e = registry_find(app->models, name);
    if (!e)
        return NULL;
    snprintf(buf, n, "%s", e->path);
    return buf;
}

static hyper_status host_publish(void *user, const char *path, char *err)
{
    api_app *app = user;
    hyper_status st = registry_load(app->models, path, err);
    /* a crash between saving the model and recording the job's success: the restart loaded
     * this very file already */
    for (int i = 0; st != HYPER_OK && i < registry_count(app->models); i++) {
        model_entry *e = registry_at(app->models, i);
        if (e && strcmp(e->path, path) == 0)
            st = HYPER_OK;
    }
    return st;
}

job_host api_job_host(api_app *app)
{
    return (job_host){host_load_text, host_load_strokes, host_load_images, host_check_dataset, host_acquire, host_model_exists,
                      host_model_path, host_publish, app};
}
