/*
 * handwriting.c — the handwriting endpoints: POST /v1/handwriting/sample, a drawing with a
 * pen of its own (JSON, an SVG document, or its points streamed as SSE / NDJSON), and feed
 * and generate on a session of a handwriting model, which continue that session's drawing.
 *
 * Drawing runs on the model's scheduler (pengen.h), batched with every other drawing of
 * the model; the request's thread only waits for points and formats them.  The state, pen
 * and generator are the request's own (a sample), or those of the session it holds.
 *
 * Coordinates are absolute, in the units of the model's training data, y downwards.  A
 * drawing goes on from where its prime, or the session's pen, ended; the prime itself is
 * not repeated.
 *
 * include_hyper (hyper cells): each drawn point also carries the hyper activity of the step
 * it was drawn from (hw_step), in the JSON reply as "hyper" parallel to the points, in each
 * streamed point event, and as the colour of its segment in the SVG.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "activity.h"
#include "api.h"
#include "pengen.h"

#define HW_STREAM_BATCH 16      /* points formatted per call of a stream's next(), at most */
#define HW_STREAM_WAIT_MS 250   /* a stream quiet this long gets a heartbeat */
#define HW_REAL_DIGITS API_REAL_DIGITS /* significant digits written: hundredths below 1e8 */
#define HW_SEED_MASK ((UINT64_C(1) << 53) - 1) /* a random seed stays exact in JavaScript */
#define HW_FORMAT_MAX 16        /* bytes of "format" */

/* What a request asks of a drawing. */
typedef struct {
    hw_params p;
    int has_seed;               /* p.seed was given (a sample always ends up with one) */
    int svg;                    /* reply with the SVG document alone */
    int stream, ndjson;         /* stream the points, as SSE or NDJSON */
    int hyper;                  /* include_hyper: each point's hyper activity, and colour by it */
} draw_opts;

/* One drawing and what it draws with: its own state, pen and generator (a sample), or
 * those of the session it holds. */
typedef struct {
    api_app *app;
    model_entry *m;             /* borrowed from the registry */
    session *s;                 /* held (busy) until give_back; NULL for a sample */
    model_state own_state;      /* a sample's (unused on a session) */
    hw_pen own_pen;
    hyper_rng own_rng;
    model_state *state;         /* &own_state or &s->state; likewise pen and rng */
    hw_pen *pen;
    hyper_rng *rng;
    draw_opts o;
    float *prime;               /* (nprime, 3) points read before drawing; owned */
    int32_t nprime;
    pen_request *g;             /* on the scheduler, once submitted */
    int32_t drawn;              /* points a stream has formatted */
    gen_finish finish;
    api_outbuf out;             /* a stream's bytes not yet handed to the server */
    double last_write;          /* now_ms() of a stream's last bytes formatted */
    int done;                   /* a stream's final event is formatted */
} drawing;

/* A line of strokes from a request, as the model reads it. */
typedef struct {
    float *pts;                 /* (n, 3) dx, dy, eos; the first (0, 0) until line_join_pen */
    int32_t n;
    double x0, y0;              /* its first point */
} line_in;

static double hundredths(double v)
{
    return round(v * 100) / 100;
}

static uint64_t random_seed(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x)
        x = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ULL;
    return x & HW_SEED_MASK;
}

/* A JSON reply (steals j) written with HW_REAL_DIGITS significant digits: the server's
 * own writer uses 17, which shows a coordinate rounded to hundredths as 7.8899999999999997. */
static void reply_json(api_reply *rep, json_t *j)
{
    char *text = j ? json_text(j, JSON_COMPACT | JSON_REAL_PRECISION(HW_REAL_DIGITS)) : NULL;
    json_decref(j);
    size_t n = text ? strlen(text) : 0;
    char *body = text ? realloc(text, n + 2) : NULL;
    if (!body) {
        free(text);
        api_error(rep, 500, "out of memory");
        return;
    }
    body[n] = '\n';
    body[n + 1] = 0;
    rep->status = 200;
    rep->body = body;
    rep->body_len = n + 1;
    rep->content_type = "application/json";
}

/* ---- requests --------------------------------------------------------------------------- */

/* Reads the drawing fields of body (max_points, bias, temperature, seed, format, stream)
 * over the defaults of hw_params_default, ranges as hw_params_check says, and how the
 * reply is wanted: "format", else an Accept of image/svg+xml for a plain reply, and
 * application/x-ndjson for a stream.  On a bad field fills rep (400) and returns -1. */
static int parse_opts(const api_request *req, json_t *body, draw_opts *o, api_reply *rep)
{
    memset(o, 0, sizeof *o);
    hw_params_default(&o->p);
    int64_t max_points = o->p.max_points;
    const char *format = NULL;
    if (api_get_int(body, "max_points", 1, HW_MAX_POINTS, &max_points, rep) < 0 ||
        api_get_num(body, "bias", -HUGE_VAL, HUGE_VAL, &o->p.bias, rep) < 0 ||
        api_get_num(body, "temperature", -HUGE_VAL, HUGE_VAL, &o->p.temperature, rep) < 0 ||
        (o->has_seed = api_get_u64(body, "seed", &o->p.seed, rep)) < 0 ||
        api_get_str(body, "format", HW_FORMAT_MAX, &format, rep) < 0 ||
        api_get_bool(body, "stream", &o->stream, rep) < 0 ||
        api_get_bool(body, "include_hyper", &o->hyper, rep) < 0)
        return -1;
    o->p.max_points = (int32_t)max_points;
    char err[HYPER_ERRMSG_MAX];
    if (hw_params_check(&o->p, err) != HYPER_OK) {
        api_error(rep, 400, "%s", err);
        return -1;
    }
    if (format && strcmp(format, "json") != 0 && strcmp(format, "svg") != 0) {
        api_error(rep, 400, "format must be \"json\" or \"svg\", not \"%s\"", format);
        return -1;
    }
    const char *accept = req->accept ? req->accept : "";
    o->svg = format ? strcmp(format, "svg") == 0 : !o->stream && strstr(accept, "image/svg+xml");
    if (o->svg && o->stream) {
        api_error(rep, 400, "format: an SVG document cannot be streamed; stream the points "
                            "(format json) or ask for svg without stream");
        return -1;
    }
    o->ndjson = o->stream && strstr(accept, "application/x-ndjson") != NULL;
    return 0;
}

/* Reads strokes [[[x, y], ...], ...], the value of field, into ln ([] is a line of no
 * points).  On a fault fills rep with a 400 naming the field, stroke and point (counted
 * from 0) and returns -1; ln then owns nothing. */
static int read_strokes(json_t *v, const char *field, line_in *ln, api_reply *rep)
{
    memset(ln, 0, sizeof *ln);
    if (!json_is_array(v)) {
        api_error(rep, 400, "%s must be an array of strokes [[[x, y], ...], ...]", field);
        return -1;
    }
    const size_t nstrokes = json_array_size(v);
    size_t n = 0;
    for (size_t j = 0; j < nstrokes; j++) {
        json_t *stroke = json_array_get(v, j);
        if (!json_is_array(stroke)) {
            api_error(rep, 400, "%s: stroke %zu is not an array of points [[x, y], ...]", field, j);
            return -1;
        }
        if (json_array_size(stroke) == 0) {
            api_error(rep, 400, "%s: stroke %zu has no points", field, j);
            return -1;
        }
        if ((n += json_array_size(stroke)) > API_MAX_PRIME_POINTS) {
            api_error(rep, 400, "%s: more than the limit of %d points", field,
                      API_MAX_PRIME_POINTS);
            return -1;
        }
    }
    if (n == 0)
        return 0;
    double *xy = malloc(n * 2 * sizeof *xy);
    int32_t *lens = malloc(nstrokes * sizeof *lens);
    stroke_set set;
    strokes_init(&set);
    int rc = -1;
    if (!xy || !lens) {
        api_error(rep, 500, "out of memory");
        goto out;
    }
    size_t at = 0;
    for (size_t j = 0; j < nstrokes; j++) {
        json_t *stroke = json_array_get(v, j);
        lens[j] = (int32_t)json_array_size(stroke);
        for (size_t k = 0; k < json_array_size(stroke); k++, at++) {
            json_t *p = json_array_get(stroke, k);
            json_t *x = json_array_get(p, 0), *y = json_array_get(p, 1);
            if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_number(x) ||
                !json_is_number(y)) {
                api_error(rep, 400, "%s: stroke %zu: point %zu is not [x, y]", field, j, k);
                goto out;
            }
            xy[2 * at] = json_number_value(x);
            xy[2 * at + 1] = json_number_value(y);
            if (fabs(xy[2 * at]) > STROKES_MAX_COORD || fabs(xy[2 * at + 1]) > STROKES_MAX_COORD) {
                api_error(rep, 400, "%s: stroke %zu: point %zu: |x| and |y| must be at most %g",
                          field, j, k, STROKES_MAX_COORD);
                goto out;
            }
        }
    }
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = strokes_add_line(&set, NULL, xy, lens, (int32_t)nstrokes, err);
    if (st != HYPER_OK) {
        api_error(rep, st == HYPER_ERR_NOMEM ? 500 : 400, "%s: %s", field, err);
        goto out;
    }
    if (!(ln->pts = malloc(n * 3 * sizeof *ln->pts))) {
        api_error(rep, 500, "out of memory");
        goto out;
    }
    memcpy(ln->pts, set.lines[0].pts, n * 3 * sizeof *ln->pts);
    ln->n = (int32_t)n;
    ln->x0 = xy[0];
    ln->y0 = xy[1];
    rc = 0;
out:
    strokes_free(&set);
    free(xy);
    free(lens);
    return rc;
}

/* Joins a line to the pen: a pen that has read nothing moves to the line's first point, so
 * the drawing stays in the caller's coordinates; any other takes the line's first point as
 * a move from where it is. */
static void line_join_pen(line_in *ln, hw_pen *pen, int fresh)
{
    if (ln->n == 0)
        return;
    if (fresh) {
        pen->x = ln->x0;
        pen->y = ln->y0;
    } else {
        ln->pts[0] = (float)(ln->x0 - pen->x);
        ln->pts[1] = (float)(ln->y0 - pen->y);
    }
}

/* The handwriting model a sample names, or the default one; NULL with rep filled when
 * there is none (404 for an unknown name, 503 when none is loaded) or it is a character
 * model (400). */
static model_entry *resolve_model(api_app *app, const char *name, api_reply *rep)
{
    model_entry *m = name ? registry_find(app->models, name)
                          : registry_default_handwriting(app->models);
    if (!m) {
        if (name)
            api_error(rep, 404, "no model named '%s'", name);
        else
            api_error(rep, 503, "no handwriting model is loaded");
    } else if (!m->handwriting) {
        api_error(rep, 400, "model: '%s' is not a handwriting model", m->name);
        m = NULL;
    }
    return m;
}

/* ---- drawings --------------------------------------------------------------------------- */

/* A drawing with model m on session s (held by the caller, who hands it over when this
 * succeeds) or, when s is NULL, with a state, pen and generator of its own; options o
 * (NULL: the defaults).  NULL when out of memory. */
static drawing *drawing_new(api_app *app, model_entry *m, session *s, const draw_opts *o)
{
    drawing *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->app = app;
    d->m = m;
    if (o)
        d->o = *o;
    else
        hw_params_default(&d->o.p);
    d->finish = GEN_RUNNING;
    if (!s && model_state_init(&d->own_state, &m->m.cfg, 1, NULL) != HYPER_OK) {
        free(d);
        return NULL;
    }
    if (s) {
        d->s = s;
        d->state = &s->state;
        d->pen = &s->pen;
        d->rng = &s->rng;
    } else {
        hw_pen_start(&d->own_pen);
        d->state = &d->own_state;
        d->pen = &d->own_pen;
        d->rng = &d->own_rng;
    }
    return d;
}

/* Hands the drawing to the model's scheduler: the prime (scored when score), then
 * max_points points (0: the prime only).  -1 when it cannot (out of memory, stopping). */
static int submit(drawing *d, int32_t max_points, int score)
{
    const pen_spec spec = {.prime = d->prime, .nprime = d->nprime, .score = score, .max_points = max_points,
                           .bias = d->o.p.bias, .temperature = d->o.p.temperature, .hyper = d->o.hyper};
    d->g = pengen_submit(d->m->sched, &d->m->m, &d->m->strokes, d->state, d->pen, d->rng, &spec);
    return d->g ? 0 : -1;
}

/* A reply in one piece is made once the drawing has ended (api_later). */
static void later_notify(void *ctx, void (*fn)(void *arg), void *arg)
{
    drawing *d = ctx;
    pen_request_notify_end(d->g, fn, NULL, arg);
}

static void later_cancel(void *ctx)
{
    drawing *d = ctx;
    pen_request_cancel(d->g);
}

/* Gives the held session back, counting the points its state read, once the scheduler is
 * done with it; the drawing must not touch state, pen or generator afterwards.  Idempotent. */
static void give_back(drawing *d)
{
    if (d->g) {
        pen_request_cancel(d->g); /* a no-op when it has ended */
        while (!pen_request_wait_ms(d->g, 1000))
            ;
    }
    if (d->s) {
        const uint64_t read = d->g ? (uint64_t)pen_request_primed(d->g) + (uint64_t)pen_request_drawn(d->g) : 0;
        session_release(d->app->sessions, d->s, 1, read);
        d->s = NULL;
    }
}

/* Gives the session back and frees everything (d may be NULL). */
static void drawing_free(drawing *d)
{
    if (!d)
        return;
    give_back(d);
    pen_request_free(d->g);
    model_state_free(&d->own_state);
    free(d->prime);
    api_outbuf_free(&d->out);
    free(d);
}

/* Splits n points into strokes at their pen lifts (a last stroke without one counts, as
 * in strokes_to_absolute); lens (at most n) receives the lengths.  Returns the count. */
static int32_t stroke_lengths(const float *pts, int32_t n, int32_t *lens)
{
    int32_t ns = 0, run = 0;
    for (int32_t i = 0; i < n; i++) {
        run++;
        if (pts[3 * i + 2] > 0.5f) {
            lens[ns++] = run;
            run = 0;
        }
    }
    if (run)
        lens[ns++] = run;
    return ns;
}

/* Fills rep with the n points drawn: pts (n, 3) the offsets, xy (n, 2) the pen after each
 * point.  An SVG document, or JSON with the strokes, the same document, and what drew it. */
static void reply_drawing(const drawing *d, const float *pts, const double *xy,
                          const float *act, int32_t n, api_reply *rep)
{
    int32_t *lens = malloc((size_t)(n > 0 ? n : 1) * sizeof *lens);
    char (*colour)[8] = act ? malloc((size_t)(n > 0 ? n : 1) * sizeof *colour) : NULL;
    char *svg = NULL;
    if (!lens || (act && !colour))
        goto oom;
    const int32_t ns = stroke_lengths(pts, n, lens);
    if (act)
        activity_colours(act, (size_t)n, colour);
    if (!(svg = strokes_svg_coloured(xy, lens, ns, 0, (const char (*)[8])colour)))
        goto oom;
    free(colour);
    colour = NULL;
    if (d->o.svg) {
        rep->status = 200;
        rep->body_len = strlen(svg);
        rep->body = svg;
        rep->content_type = "image/svg+xml";
        free(lens);
        return;
    }
    json_t *strokes = json_array();
    for (int32_t k = 0, i = 0; k < ns && strokes; k++) {
        json_t *stroke = json_array();
        for (int32_t j = 0; j < lens[k]; j++, i++)
            json_array_append_new(stroke, json_pack("[f, f]", hundredths(xy[2 * i]),
                                                    hundredths(xy[2 * i + 1])));
        json_array_append_new(strokes, stroke);
    }
    json_t *j = json_pack("{s:s, s:o, s:i, s:s, s:o, s:s}", "model", d->m->name, "seed",
                          d->o.has_seed ? json_integer((json_int_t)d->o.p.seed) : json_null(),
                          "points", n, "finish_reason", gen_finish_str(d->finish), "strokes",
                          strokes, "svg", svg);
    if (j && act) /* parallel to the points of the strokes, in drawing order */
        json_object_set_new(j, "hyper", api_hyper_array(act, (size_t)n));
    reply_json(rep, j);
    free(svg);
    free(lens);
    return;
oom:
    free(lens);
    free(colour);
    api_error(rep, 500, "out of memory");
}

/* The reply of a drawing in one piece, once it has ended: gives its session back, fills
 * rep, frees d. */
static void draw_complete(void *ctx, api_reply *rep)
{
    drawing *d = ctx;
    const size_t max = (size_t)d->o.p.max_points;
    float *pts = malloc(max * 3 * sizeof *pts);
    double *xy = malloc(max * 2 * sizeof *xy);
    float *act = d->o.hyper ? malloc(max * 4 * sizeof *act) : NULL;
    if (!pts || !xy || (d->o.hyper && !act)) {
        api_error(rep, 500, "out of memory");
    } else {
        gen_finish fin;
        const size_t n = pen_request_read(d->g, pts, xy, act, max, 0, &fin);
        d->finish = pen_request_finish(d->g);
        give_back(d);
        reply_drawing(d, pts, xy, act, (int32_t)n, rep);
    }
    free(pts);
    free(xy);
    free(act);
    drawing_free(d);
}

/* Primes and draws d in one piece on the scheduler: the reply comes when it has ended
 * (draw_complete, which frees d).  Returns 1 when d was handed over, 0 with rep filled. */
static int draw_plain(drawing *d, api_reply *rep)
{
    if (submit(d, d->o.p.max_points, 0) != 0) {
        api_error(rep, d->app->stopping ? 503 : 500, d->app->stopping ? "the server is shutting down" : "out of memory");
        return 0;
    }
    rep->later = (api_later){d, later_notify, draw_complete, later_cancel};
    return 1;
}

/* ---- streams ---------------------------------------------------------------------------- */

/* Makes a stream's next bytes (none is fine: stream_next calls again): the events of the
 * points drawn since the last call (up to HW_STREAM_BATCH), a heartbeat while none come
 * (SSE only: a long prime, so that a client gone is noticed at this write), or the final
 * event.  -1 when out of memory. */
static int stream_fill(drawing *d)
{
    float pts[3 * HW_STREAM_BATCH], act[4 * HW_STREAM_BATCH];
    double xy[2 * HW_STREAM_BATCH];
    gen_finish fin = GEN_RUNNING;
    const size_t n = pen_request_read(d->g, pts, xy, d->o.hyper ? act : NULL, HW_STREAM_BATCH, 0, &fin);
    for (size_t k = 0; k < n; k++) {
        const float *pt = pts + 3 * k;
        json_t *ev = json_pack("{s:f, s:f, s:f, s:f, s:b}", "x", hundredths(xy[2 * k]), "y", hundredths(xy[2 * k + 1]),
                               "dx", hundredths(pt[0]), "dy", hundredths(pt[1]), "eos", pt[2] > 0.5f);
        if (ev && d->o.hyper)
            json_object_set_new(ev, "hyper", api_hyper_json(act + 4 * k));
        if (api_outbuf_event(&d->out, NULL, ev) != 0)
            return -1;
        d->drawn++;
    }
    if (n > 0)
        return 0;
    if (fin == GEN_RUNNING) /* nothing yet (a long prime): now and then a heartbeat */
        return (double)now_ms() - d->last_write >= HW_STREAM_WAIT_MS ? api_outbuf_heartbeat(&d->out) : 0;
    d->finish = fin;
    give_back(d); /* before the final event: a client that has read it may use the session */
    d->done = 1;
    return api_outbuf_event(&d->out, NULL, json_pack("{s:b, s:i, s:o, s:s, s:s}", "done", 1, "points", d->drawn,
                                      "seed", d->o.has_seed ? json_integer((json_int_t)d->o.p.seed)
                                                            : json_null(),
                                      "model", d->m->name, "finish_reason",
                                      gen_finish_str(d->finish)));
}

static ssize_t stream_next(void *ctx, char *buf, size_t max)
{
    drawing *d = ctx;
    if (api_outbuf_empty(&d->out)) {
        if (d->done || stream_fill(d) != 0)
            return -1;
        if (api_outbuf_empty(&d->out))
            return 0;
    }
    d->last_write = (double)now_ms();
    return (ssize_t)api_outbuf_take(&d->out, buf, max);
}

static void stream_notify(void *ctx, void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
{
    drawing *d = ctx;
    pen_request_notify(d->g, fn, drop, arg);
}

static void stream_done(void *ctx) { drawing_free(ctx); } /* its drawing has ended: nothing waits */

static void stream_release(void *ctx)
{
    drawing *d = ctx;
    if (!d->g) {
        drawing_free(d);
        return;
    }
    pen_request_cancel(d->g); /* then freed when the scheduler lets it go (at once if it has) */
    pen_request_notify_end(d->g, stream_done, NULL, d);
}

/* Hands d (and the session it holds) to a streamed reply, its drawing submitted. */
static void start_stream(drawing *d, api_reply *rep)
{
    if (submit(d, d->o.p.max_points, 0) != 0) {
        api_error(rep, d->app->stopping ? 503 : 500, d->app->stopping ? "the server is shutting down" : "out of memory");
        drawing_free(d);
        return;
    }
    d->out.ndjson = d->o.ndjson;
    d->last_write = (double)now_ms();
    rep->status = 200;
    rep->streaming = 1;
    rep->stream = (api_stream){d, stream_next, stream_release,
                               d->o.ndjson ? "application/x-ndjson" : "text/event-stream", stream_notify};
}

/* ---- endpoints -------------------------------------------------------------------------- */

void api_handwriting_sample(const api_request *req, api_reply *rep)
{
    json_t *body = api_body_object(req, rep);
    if (!body)
        return;
    static const char *const known[] = {"model", "max_points", "bias", "temperature", "seed",
                                        "prime", "format", "stream", "include_hyper", NULL};
    draw_opts o;
    const char *name = NULL;
    line_in ln = {0};
    drawing *d = NULL;
    model_entry *m = NULL;
    json_t *prime = json_object_get(body, "prime");
    if (api_check_fields(body, known, rep) < 0 || parse_opts(req, body, &o, rep) < 0 ||
        api_get_str(body, "model", MODEL_NAME_MAX, &name, rep) < 0 ||
        (prime && !json_is_null(prime) && read_strokes(prime, "prime", &ln, rep) < 0) ||
        !(m = resolve_model(req->app, name, rep)) || (o.hyper && api_check_hyper(m, rep) < 0))
        goto out;
    if (!o.has_seed) {
        o.p.seed = random_seed();
        o.has_seed = 1;
    }
    if (!(d = drawing_new(req->app, m, NULL, &o))) {
        api_error(rep, 500, "out of memory");
        goto out;
    }
    hyper_rng_seed(d->rng, o.p.seed);
    line_join_pen(&ln, d->pen, 1);
    d->prime = ln.pts;
    d->nprime = ln.n;
    ln.pts = NULL;
    if (o.stream) {
        start_stream(d, rep);
        d = NULL;
        goto out;
    }
    if (draw_plain(d, rep))
        d = NULL;
out:
    drawing_free(d);
    free(ln.pts);
    json_decref(body);
}

/* Refuses the fields of a character session's generate, naming the first. */
static int refuse_text_fields(json_t *body, api_reply *rep)
{
    static const char *const text_only[] = {"prompt", "max_chars", "top_k", "top_p", "stop", NULL};
    for (int k = 0; text_only[k]; k++)
        if (json_object_get(body, text_only[k])) {
            api_error(rep, 400, "%s is for character models: a handwriting session's generate "
                                "takes max_points, bias, temperature, seed, format, stream and include_hyper",
                      text_only[k]);
            return -1;
        }
    return 0;
}

void api_handwriting_session_generate(const api_request *req, api_reply *rep)
{
    json_t *body = api_body_object(req, rep);
    if (!body)
        return;
    static const char *const known[] = {"max_points", "bias", "temperature", "seed", "format",
                                        "stream", "include_hyper", NULL};
    draw_opts o;
    session *s = NULL;
    drawing *d = NULL;
    if (refuse_text_fields(body, rep) < 0 || api_check_fields(body, known, rep) < 0 ||
        parse_opts(req, body, &o, rep) < 0 || !(s = api_session_lookup(req, rep, 1)) ||
        (o.hyper && api_check_hyper(s->model, rep) < 0))
        goto out;
    if (!(d = drawing_new(req->app, s->model, s, &o))) {
        api_error(rep, 500, "out of memory");
        goto out;
    }
    s = NULL; /* the drawing holds it now */
    if (o.has_seed) /* else the session's generator goes on */
        hyper_rng_seed(d->rng, o.p.seed);
    if (o.stream) {
        start_stream(d, rep);
        d = NULL;
        goto out;
    }
    if (draw_plain(d, rep))
        d = NULL;
out:
    if (s)
        session_release(req->app->sessions, s, 1, 0);
    drawing_free(d);
    json_decref(body);
}

static void feed_complete(void *ctx, api_reply *rep)
{
    drawing *d = ctx;
    d->finish = pen_request_finish(d->g);
    const int32_t fed = pen_request_primed(d->g);
    const double nats = pen_request_nats(d->g);
    give_back(d);
    if (d->finish == GEN_SHUTDOWN)
        api_error(rep, 503, "the server is shutting down (%d of %d points were fed)", fed, d->nprime);
    else
        reply_json(rep, json_pack("{s:i, s:o}", "points", fed, "nats_per_point",
                                  fed > 0 ? json_real(nats / fed) : json_null()));
    drawing_free(d);
}

void api_handwriting_session_feed(const api_request *req, api_reply *rep)
{
    json_t *body = api_body_object(req, rep);
    if (!body)
        return;
    static const char *const known[] = {"strokes", NULL};
    json_t *strokes = json_object_get(body, "strokes");
    line_in ln = {0};
    session *s = NULL;
    drawing *d = NULL;
    if (json_object_get(body, "text")) {
        api_error(rep, 400, "text: a handwriting session is fed strokes, "
                            "{\"strokes\": [[[x, y], ...], ...]}, not text");
        goto out;
    }
    if (api_check_fields(body, known, rep) < 0)
        goto out;
    if (!strokes || json_is_null(strokes)) {
        api_error(rep, 400, "strokes is required: {\"strokes\": [[[x, y], ...], ...]}");
        goto out;
    }
    if (read_strokes(strokes, "strokes", &ln, rep) < 0 || !(s = api_session_lookup(req, rep, 1)))
        goto out;
    if (!(d = drawing_new(req->app, s->model, s, NULL))) {
        api_error(rep, 500, "out of memory");
        goto out;
    }
    line_join_pen(&ln, d->pen, s->seen == 0);
    s = NULL; /* the drawing holds it now */
    d->prime = ln.pts;
    d->nprime = ln.n;
    ln.pts = NULL;
    if (submit(d, 0, 1) != 0) {
        api_error(rep, d->app->stopping ? 503 : 500, d->app->stopping ? "the server is shutting down" : "out of memory");
        goto out;
    }
    rep->later = (api_later){d, later_notify, feed_complete, later_cancel};
    d = NULL;
out:
    if (s)
        session_release(req->app->sessions, s, 1, 0);
    drawing_free(d);
    free(ln.pts);
    json_decref(body);
}
