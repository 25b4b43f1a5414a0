/*
 * sessions.c — the session endpoints: create, list, get, delete, feed, generate (plain or
 * streamed as SSE / NDJSON), fork, reset.  The math runs on the model's scheduler; these
 * handlers validate, submit, and turn results into JSON.  Feed and generate on a session
 * of a handwriting model are handwriting.c's.
 *
 * include_hyper on generate (hyper cells): each generated character's hyper activity
 * (textgen.h gen_request_hyper) as "hyper" in the reply or in each text event, one per
 * character; with "format": "svg" the reply is the text coloured by it (activity.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "activity.h"
#include "api.h"
#include "textgen.h"

#define GENERATE_DEFAULT_CHARS 200
#define STREAM_WAIT_MS 250      /* a stream quiet this long gets a heartbeat */
#define LIST_DEFAULT 100
#define GENERATE_FORMAT_MAX 16  /* bytes of "format" */

/* ISO 8601 UTC with milliseconds, e.g. 2026-11-26T19:03:04.123Z. */
/* A handwriting session counts points where a character session counts characters. */
static const char *seen_key(int handwriting)
{
    return handwriting ? "points_seen" : "chars_seen";
}

static json_t *meta_json(const session_meta *m)
{
    return json_pack("{s:s, s:s, s:I, s:o, s:o, s:b}", "id", m->id, "model", m->model,
                     seen_key(m->handwriting), (json_int_t)m->seen, "created_at",
                     api_iso_time(m->created_ms), "last_used_at", api_iso_time(m->used_ms), "busy",
                     m->busy);
}

static json_t *session_json(session_store *st, const session *s)
{
    session_meta m;
    session_info(st, s, &m);
    return meta_json(&m);
}

/* A request answered in one piece, once it has ended on the scheduler (api_later): the
 * session it holds and what its reply needs. */
typedef struct {
    gen_request *g;
    session *s;
    session_store *store;
    size_t n_input;             /* a feed's characters */
    int hyper, svg;             /* a generate's reply */
} plain_call;

static void plain_notify(void *ctx, void (*fn)(void *arg), void *arg)
{
    plain_call *pc = ctx;
    gen_request_notify_end(pc->g, fn, NULL, arg);
}

static void plain_cancel(void *ctx)
{
    plain_call *pc = ctx;
    gen_request_cancel(pc->g);
}

/* Gives the session back (counting what its state read) and frees the call. */
static void plain_free(plain_call *pc)
{
    session_release(pc->store, pc->s, 1, (uint64_t)gen_request_consumed(pc->g));
    gen_request_free(pc->g);
    free(pc);
}

/* Defers the reply to complete: the call takes over g and the held session s. */
static void defer_call(api_reply *rep, const api_request *req, gen_request *g, session *s, plain_call tmpl,
                       void (*complete)(void *ctx, api_reply *rep))
{
    plain_call *pc = malloc(sizeof *pc);
    if (!pc) {
        gen_request_free(g);
        session_release(req->app->sessions, s, 1, 0);
        api_error(rep, 500, "out of memory");
        return;
    }
    *pc = tmpl;
    pc->g = g;
    pc->s = s;
    pc->store = req->app->sessions;
    rep->later = (api_later){pc, plain_notify, complete, plain_cancel};
}

/* Encodes text with the session's vocabulary; 400 naming the characters it lacks. */
static int32_t *encode(const session *s, const char *field, const char *text, size_t *n,
                       api_reply *rep)
{
    int32_t *ids = NULL;
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = vocab_encode(&s->model->voc, text, strlen(text), 0, &ids, n, NULL, err);
    if (st != HYPER_OK) {
        api_error(rep, st == HYPER_ERR_NOMEM ? 500 : 400, "%s: %s (model '%s')", field, err,
                  s->model->name);
        return NULL;
    }
    if (*n > API_MAX_PROMPT_CHARS) {
        free(ids);
        api_error(rep, 400, "%s: %zu characters is more than the limit of %d", field, *n,
                  API_MAX_PROMPT_CHARS);
        return NULL;
    }
    return ids;
}

/* ---- create, list, get, delete, fork, reset ------------------------------------------- */

/* Writes a new session (held by the caller) to disk before it is acknowledged; when that
 * fails the session is deleted and rep holds the error (507 for a full disk).  0 when
 * written. */
static int persist_or_refuse(const api_request *req, session *s, api_reply *rep)
{
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = session_persist(req->app->sessions, s, err);
    if (st == HYPER_OK)
        return 0;
    char id[SESSION_ID_LEN + 1];
    memcpy(id, s->id, sizeof id);
    session_release(req->app->sessions, s, 1, 0);
    session_delete(req->app->sessions, id);
    api_error(rep, api_status_http(st), "cannot persist the new session: %s", err);
    return -1;
}

void api_sessions_create(const api_request *req, api_reply *rep)
{
    json_t *body = api_body_object(req, rep);
    if (!body)
        return;
    static const char *const known[] = {"model", "seed", NULL};
    const char *name = NULL;
    uint64_t seed = 0;
    int has_seed = 0;
    if (api_check_fields(body, known, rep) < 0 || api_get_str(body, "model", 256, &name, rep) < 0 ||
        (has_seed = api_get_u64(body, "seed", &seed, rep)) < 0)
        goto out;
    model_entry *m = name ? registry_find(req->app->models, name) : registry_default(req->app->models);
    if (!m) {
        if (name)
            api_error(rep, 404, "no model named '%s'", name);
        else
            api_error(rep, 503, "no character model is loaded");
        goto out;
    }
    if (m->clf) {
        api_error(rep, 400, "model: '%s' is a classifier, which has no sessions (POST /v1/models/%s/classify)",
                  m->name, m->name);
        goto out;
    }
    if (m->voc.size == 0 && !m->handwriting) {
        api_error(rep, 400, "model: '%s' is neither a character nor a handwriting model", m->name);
        goto out;
    }
    session *s = NULL;
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = session_create(req->app->sessions, m, has_seed, seed, &s, err);
    if (st != HYPER_OK) {
        api_error(rep, st == HYPER_ERR_ARG ? 429 : 500, "%s", err);
        goto out;
    }
    if (persist_or_refuse(req, s, rep) != 0)
        goto out;
    api_json(rep, 201, json_pack("{s:s, s:s, s:o}", "id", s->id, "model", m->name, "created_at",
                                 api_iso_time(s->created_ms)));
    session_release(req->app->sessions, s, 1, 0);
out:
    json_decref(body);
}

void api_sessions_list(const api_request *req, api_reply *rep)
{
    int64_t limit, offset;
    if (api_query_int(req, "limit", 1, API_PAGE_MAX, LIST_DEFAULT, &limit, rep) < 0 ||
        api_query_int(req, "offset", 0, INT32_MAX, 0, &offset, rep) < 0)
        return;
    char (*ids)[SESSION_ID_LEN + 1] = calloc((size_t)limit, sizeof *ids);
    if (!ids) {
        api_error(rep, 500, "out of memory");
        return;
    }
    size_t total = session_list(req->app->sessions, (size_t)offset, (size_t)limit, ids);
    json_t *arr = json_array();
    for (int64_t k = 0; k < limit && ids[k][0]; k++) {
        session *s = session_get(req->app->sessions, ids[k], 0, NULL);
        if (s) { /* it may have gone since the listing */
            json_array_append_new(arr, session_json(req->app->sessions, s));
            session_release(req->app->sessions, s, 0, 0);
        }
    }
    free(ids);
    api_json(rep, 200, json_pack("{s:o, s:I, s:I, s:I}", "sessions", arr, "total", (json_int_t)total,
                                 "offset", (json_int_t)offset, "limit", (json_int_t)limit));
}

void api_sessions_get(const api_request *req, api_reply *rep)
{
    session *s = api_session_lookup(req, rep, 0);
    if (!s)
        return;
    api_json(rep, 200, session_json(req->app->sessions, s));
    session_release(req->app->sessions, s, 0, 0);
}

void api_sessions_delete(const api_request *req, api_reply *rep)
{
    int rc = session_delete(req->app->sessions, req->params[0]);
    if (rc == -1)
        api_error(rep, 404, "no session %s", req->params[0]);
    else if (rc == -2)
        api_error(rep, 409, "session %s is busy with another request", req->params[0]);
    else
        rep->status = 204;
}

void api_sessions_fork(const api_request *req, api_reply *rep)
{
    session *src = api_session_lookup(req, rep, 1);
    if (!src)
        return;
    session *s = NULL;
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = session_fork(req->app->sessions, src, &s, err);
    session_release(req->app->sessions, src, 1, 0);
    if (st != HYPER_OK) {
        api_error(rep, st == HYPER_ERR_ARG ? 429 : 500, "%s", err);
        return;
    }
    if (persist_or_refuse(req, s, rep) != 0)
        return;
    api_json(rep, 201, json_pack("{s:s, s:s, s:o, s:s, s:I}", "id", s->id, "model", s->model->name,
                                 "created_at", api_iso_time(s->created_ms), "forked_from", req->params[0],
                                 seen_key(s->model->handwriting), (json_int_t)s->seen));
    session_release(req->app->sessions, s, 1, 0);
}

void api_sessions_reset(const api_request *req, api_reply *rep)
{
    session *s = api_session_lookup(req, rep, 1);
    if (!s)
        return;
    session_reset(req->app->sessions, s);
    session_meta m;
    session_info(req->app->sessions, s, &m);
    m.busy = 0; /* as it is once this request lets go of it, below */
    session_release(req->app->sessions, s, 1, 0);
    api_json(rep, 200, meta_json(&m));
}

/* 1 when the session of the path exists and is on a handwriting model (a session's model
 * never changes, so a look without holding it is enough to choose the handler). */
static int is_handwriting(const api_request *req)
{
    session *s = session_get(req->app->sessions, req->params[0], 0, NULL);
    int hw = s && s->model->handwriting;
    if (s)
        session_release(req->app->sessions, s, 0, 0);
    return hw;
}

/* ---- feed ----------------------------------------------------------------------------- */

static void feed_complete(void *ctx, api_reply *rep)
{
    plain_call *pc = ctx;
    gen_request *g = pc->g;
    const int64_t fed = gen_request_fed(g);
    const double bits = gen_request_bits(g);
    if (gen_request_finish(g) == GEN_SHUTDOWN)
        api_error(rep, 503, "the server is shutting down (%lld of %zu characters were fed)", (long long)fed,
                  pc->n_input);
    else
        api_json(rep, 200, json_pack("{s:I, s:o}", "chars", (json_int_t)fed, "bits_per_char",
                                     fed > 0 ? json_real(bits / (double)fed) : json_null()));
    plain_free(pc);
}

void api_sessions_feed(const api_request *req, api_reply *rep)
{
    if (is_handwriting(req)) {
        api_handwriting_session_feed(req, rep);
        return;
    }
    json_t *body = api_body_object(req, rep);
    if (!body)
        return;
    static const char *const known[] = {"text", NULL};
    const char *text = NULL;
    session *s = NULL;
    int32_t *ids = NULL;
    if (api_check_fields(body, known, rep) < 0 || api_get_str(body, "text", SIZE_MAX, &text, rep) < 0)
        goto out;
    if (!text) {
        api_error(rep, 400, "text is required");
        goto out;
    }
    if (!(s = api_session_lookup(req, rep, 1)))
        goto out;
    size_t n = 0;
    if (!(ids = encode(s, "text", text, &n, rep)))
        goto out;
    gen_spec spec = {.generate = 0, .input = ids, .n_input = n};
    sampler_params_default(&spec.sp);
    gen_request *g = textgen_submit(s->model->sched, s, &spec);
    if (!g) {
        api_error(rep, 503, "the server is shutting down");
        goto out;
    }
    defer_call(rep, req, g, s, (plain_call){.n_input = n}, feed_complete);
    s = NULL;
out:
    if (s)
        session_release(req->app->sessions, s, 1, 0);
    free(ids);
    json_decref(body);
}

/* ---- generate -------------------------------------------------------------------------- */

static json_t *timings_json(gen_request *g)
{
    gen_timings t = gen_request_timings(g);
    int64_t chars = gen_request_chars(g);
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:I, s:f}", "queued_ms", t.queued_ms, "prompt_ms",
                     t.prompt_ms, "generate_ms", t.generate_ms, "total_ms", t.total_ms,
                     "first_char_ms", t.first_char_ms, "steps", (json_int_t)t.steps,
                     "chars_per_second", t.generate_ms > 0 ? chars / (t.generate_ms / 1e3) : 0.0);
}

typedef struct {
    gen_request *g;
    session *s;                /* NULL once given back */
    session_store *store;
    int done;                  /* the final event was written */
    int hyper;                 /* each text event carries its characters' activity */
    size_t chars_read;         /* characters of text sent so far */
    double last_write;         /* now_ms() of the last bytes formatted */
    api_outbuf out;            /* formatted bytes not yet handed to the server */
} gen_stream;

/* Gives the session back once the request has ended (the scheduler no longer touches it),
 * so a client that read the final event can use the session at once. */
static void stream_give_back(gen_stream *gs)
{
    if (gs->s) {
        session_release(gs->store, gs->s, 1, (uint64_t)gen_request_consumed(gs->g));
        gs->s = NULL;
    }
}

static ssize_t stream_next(void *ctx, char *buf, size_t max)
{
    gen_stream *gs = ctx;
    if (api_outbuf_empty(&gs->out)) {
        if (gs->done)
            return -1;
        char text[1024];
        gen_finish fin = GEN_RUNNING;
        size_t n = gen_request_read(gs->g, text, sizeof text, 0, &fin);
        if (n > 0) {
            json_t *t = json_stringn(text, n);
            json_t *ev = t ? json_pack("{s:o}", "text", t) : NULL;
            if (ev && gs->hyper) {
                /* one activity per character of this event's text (at most sizeof text) */
                float act[4 * sizeof text];
                size_t chars = 0;
                for (size_t i = 0; i < n; i++)
                    chars += ((unsigned char)text[i] & 0xC0) != 0x80;
                size_t got = gen_request_hyper(gs->g, gs->chars_read, chars, act);
                gs->chars_read += chars;
                json_object_set_new(ev, "hyper", api_hyper_array(act, got));
            }
            if (!ev || api_outbuf_event(&gs->out, NULL, ev) != 0)
                return -1;
        } else if (fin != GEN_RUNNING) {
            stream_give_back(gs);
            if (api_outbuf_event(&gs->out, NULL,
                                 json_pack("{s:b, s:s, s:I, s:o}", "done", 1, "finish_reason", gen_finish_str(fin),
                                           "chars", (json_int_t)gen_request_chars(gs->g), "timings",
                                           timings_json(gs->g))) != 0)
                return -1;
            gs->done = 1;
        } else {
            /* nothing yet (a long prompt): after a while an SSE comment, so a client that
             * went away is noticed at this write and its generation cancelled */
            if ((double)now_ms() - gs->last_write >= STREAM_WAIT_MS && api_outbuf_heartbeat(&gs->out) != 0)
                return -1;
            if (api_outbuf_empty(&gs->out))
                return 0;
        }
    }
    gs->last_write = (double)now_ms();
    return (ssize_t)api_outbuf_take(&gs->out, buf, max);
}

static void stream_notify(void *ctx, void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
{
    gen_stream *gs = ctx;
    gen_request_notify(gs->g, fn, drop, arg);
}

/* The stream's end, once the scheduler is done with its request (on whichever thread
 * that is): the session back, everything freed. */
static void stream_done(void *ctx)
{
    gen_stream *gs = ctx;
    stream_give_back(gs);
    gen_request_free(gs->g); /* it has ended: nothing to wait for */
    api_outbuf_free(&gs->out);
    free(gs);
}

static void stream_release(void *ctx)
{
    gen_stream *gs = ctx;
    gen_request_cancel(gs->g); /* a no-op when it already ended */
    gen_request_notify_end(gs->g, stream_done, NULL, gs); /* at once when it has ended */
}

static void generate_complete(void *ctx, api_reply *rep)
{
    plain_call *pc = ctx;
    gen_request *g = pc->g;
    const int hyper = pc->hyper, svg = pc->svg;
    size_t len = 0;
    const char *text = gen_request_text(g, &len);
    gen_finish fin = gen_request_finish(g);
    size_t nact = 0;
    float *act = NULL;
    if (hyper) {
        const int64_t chars = gen_request_chars(g); /* at least the characters of text */
        act = malloc((size_t)(chars > 0 ? chars : 1) * 4 * sizeof *act);
        if (act)
            nact = gen_request_hyper(g, 0, (size_t)chars, act);
    }
    if (hyper && !act) {
        api_error(rep, 500, "out of memory");
    } else if (svg) {
        char *doc = activity_text_svg(text, len, act, nact);
        if (!doc) {
            api_error(rep, 500, "out of memory");
        } else {
            rep->status = 200;
            rep->body = doc;
            rep->body_len = strlen(doc);
            rep->content_type = "image/svg+xml";
        }
    } else {
        json_t *j = json_pack("{s:s%, s:s, s:I, s:o}", "text", text, len, "finish_reason",
                              gen_finish_str(fin), "chars", (json_int_t)gen_request_chars(g),
                              "timings", timings_json(g));
        if (j && hyper)
            json_object_set_new(j, "hyper", api_hyper_array(act, nact));
        api_json(rep, 200, j);
    }
    free(act);
    plain_free(pc);
}

static int wants_ndjson(const char *accept)
{
    return accept && strstr(accept, "application/x-ndjson") != NULL;
}

void api_sessions_generate(const api_request *req, api_reply *rep)
{
    if (is_handwriting(req)) {
        api_handwriting_session_generate(req, rep);
        return;
    }
    json_t *body = api_body_object(req, rep);
    if (!body)
        return;
    static const char *const known[] = {"prompt", "max_chars", "temperature", "top_k", "top_p",
                                        "seed", "stop", "stream", "include_hyper", "format", NULL};
    const char *prompt = NULL;
    int64_t max_chars = GENERATE_DEFAULT_CHARS, top_k = 0;
    double temperature = 1.0, top_p = 1.0;
    uint64_t seed = 0;
    int has_seed = 0, stream = 0, hyper = 0;
    const char *format = NULL;
    session *s = NULL;
    int32_t *ids = NULL;
    gen_spec spec = {.generate = 1};
    if (max_chars > req->app->max_chars)
        max_chars = req->app->max_chars;
    if (api_check_fields(body, known, rep) < 0 ||
        api_get_str(body, "prompt", SIZE_MAX, &prompt, rep) < 0 ||
        api_get_int(body, "max_chars", 0, req->app->max_chars, &max_chars, rep) < 0 ||
        api_get_num(body, "temperature", 0, 100, &temperature, rep) < 0 ||
        api_get_int(body, "top_k", 0, MODEL_MAX_VOCAB, &top_k, rep) < 0 ||
        api_get_num(body, "top_p", 1e-9, 1, &top_p, rep) < 0 ||
        (has_seed = api_get_u64(body, "seed", &seed, rep)) < 0 ||
        api_get_bool(body, "stream", &stream, rep) < 0 ||
        api_get_bool(body, "include_hyper", &hyper, rep) < 0 ||
        api_get_str(body, "format", GENERATE_FORMAT_MAX, &format, rep) < 0)
        goto out;
    const int svg = format && strcmp(format, "svg") == 0;
    if (format && !svg && strcmp(format, "json") != 0) {
        api_error(rep, 400, "format must be \"json\" or \"svg\", not \"%s\"", format);
        goto out;
    }
    if (svg && (!hyper || stream)) {
        api_error(rep, 400, "format: \"svg\" is the text coloured by hyper activity: it needs "
                            "\"include_hyper\": true and cannot be streamed");
        goto out;
    }
    json_t *stop = json_object_get(body, "stop");
    if (stop && !json_is_null(stop)) {
        if (json_is_string(stop)) {
            spec.stop[spec.nstop++] = json_string_value(stop);
        } else if (json_is_array(stop) && json_array_size(stop) <= GEN_MAX_STOPS) {
            size_t k;
            json_t *v;
            json_array_foreach(stop, k, v) {
                if (!json_is_string(v)) {
                    api_error(rep, 400, "stop[%zu] must be a string", k);
                    goto out;
                }
                spec.stop[spec.nstop++] = json_string_value(v);
            }
        } else {
            api_error(rep, 400, "stop must be a string or an array of at most %d strings", GEN_MAX_STOPS);
            goto out;
        }
        for (int k = 0; k < spec.nstop; k++) {
            size_t len = strlen(spec.stop[k]);
            if (len == 0 || len > GEN_MAX_STOP_BYTES) {
                api_error(rep, 400, "stop[%d] must be 1 to %d bytes long", k, GEN_MAX_STOP_BYTES);
                goto out;
            }
        }
    }
    if (!(s = api_session_lookup(req, rep, 1)) || (hyper && api_check_hyper(s->model, rep) < 0))
        goto out;
    if (top_k > s->model->voc.size) {
        api_error(rep, 400, "top_k must be between 0 and %d (the vocabulary size), not %lld",
                  s->model->voc.size, (long long)top_k);
        goto out;
    }
    /* a session that has read nothing starts as a text does, after a newline */
    const char *start = prompt && *prompt ? prompt : (s->seen == 0 ? "\n" : "");
    size_t n = 0;
    if (vocab_id(&s->model->voc, '\n') < 0 && !(prompt && *prompt))
        start = "";
    if (!(ids = encode(s, "prompt", start, &n, rep)))
        goto out;
    spec.input = ids;
    spec.n_input = n;
    spec.max_chars = max_chars;
    spec.sp.temperature = temperature;
    spec.sp.top_k = (int32_t)top_k;
    spec.sp.top_p = top_p;
    spec.has_seed = has_seed;
    spec.seed = seed;
    spec.hyper = hyper;
    gen_request *g = textgen_submit(s->model->sched, s, &spec);
    if (!g) {
        api_error(rep, 503, "the server is shutting down");
        goto out;
    }
    if (stream) {
        gen_stream *gs = calloc(1, sizeof *gs);
        if (!gs) {
            gen_request_free(g);
            api_error(rep, 500, "out of memory");
            goto out;
        }
        gs->g = g;
        gs->s = s;
        gs->store = req->app->sessions;
        gs->hyper = hyper;
        gs->out.ndjson = wants_ndjson(req->accept);
        gs->last_write = (double)now_ms();
        s = NULL; /* the stream holds the session now */
        rep->status = 200;
        rep->streaming = 1;
        rep->stream = (api_stream){gs, stream_next, stream_release,
                                   gs->out.ndjson ? "application/x-ndjson" : "text/event-stream", stream_notify};
        goto out;
    }
    defer_call(rep, req, g, s, (plain_call){.hyper = hyper, .svg = svg}, generate_complete);
    s = NULL;
out:
    if (s)
        session_release(req->app->sessions, s, 1, 0);
    free(ids);
    json_decref(body);
}
