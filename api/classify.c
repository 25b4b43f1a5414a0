/*
 * classify.c — the classifier endpoints: POST /v1/models/{name}/classify (a digit as 784
 * numbers in JSON, or a PNG of any size) and GET /v1/models/{name}/kernels.svg (the
 * kernels the net uses, generated or not).
 *
 * A classification is one forward pass on the request's own thread with its own small
 * workspace: classifiers are read-only once loaded (their generated weights made once, at
 * load), so requests need no lock and no queue.  PNG decoding is the one costly step (up to
 * IMG_MAX_PIXELS pixels, about 12 MB); at most PNG_DECODERS run at once, so many large
 * uploads together cannot take the daemon's memory.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "images.h"

#define PNG_DECODERS 4

static pthread_mutex_t png_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t png_cv = PTHREAD_COND_INITIALIZER;
static int png_busy;

/* png_to_mnist, at most PNG_DECODERS at a time. */
static hyper_status decode_png(const api_request *req, float *px, char *err)
{
    pthread_mutex_lock(&png_mu);
    while (png_busy >= PNG_DECODERS)
        pthread_cond_wait(&png_cv, &png_mu);
    png_busy++;
    pthread_mutex_unlock(&png_mu);
    hyper_status st = png_to_mnist(req->body, req->body_len, px, err);
    pthread_mutex_lock(&png_mu);
    png_busy--;
    pthread_cond_signal(&png_cv);
    pthread_mutex_unlock(&png_mu);
    return st;
}

/* The classifier a request names; NULL with rep filled (404 unknown, 400 not a classifier). */
static model_entry *find_classifier(const api_request *req, api_reply *rep)
{
    model_entry *e = registry_find(req->app->models, req->params[0]);
    if (!e)
        api_error(rep, 404, "no model named '%s'", req->params[0]);
    else if (!e->clf)
        api_error(rep, 400, "model '%s' is a %s model, not a classifier", e->name, e->kind);
    return e && e->clf ? e : NULL;
}

static int content_type_is(const api_request *req, const char *type)
{
    if (!req->content_type)
        return 0;
    const size_t n = strcspn(req->content_type, "; ");
    return n == strlen(type) && strncasecmp(req->content_type, type, n) == 0;
}

/* Reads {"image": [784 numbers in 0..1]} into px; -1 with rep filled. */
static int image_from_json(const api_request *req, float *px, api_reply *rep)
{
    json_t *body = api_body_object(req, rep);
    if (!body)
        return -1;
    static const char *const known[] = {"image", NULL};
    int rc = -1;
    if (api_check_fields(body, known, rep) < 0)
        goto out;
    json_t *img = json_object_get(body, "image");
    if (!img) {
        api_error(rep, 400, "image: missing (784 numbers in 0..1, row by row; or send a PNG as image/png)");
        goto out;
    }
    if (!json_is_array(img)) {
        api_error(rep, 400, "image: must be an array of %d numbers (28 rows of 28)", IMG_PIXELS);
        goto out;
    }
    if (json_array_size(img) != IMG_PIXELS) {
        api_error(rep, 400, "image: %zu numbers, but a digit is %d (28 rows of 28)", json_array_size(img),
                  IMG_PIXELS);
        goto out;
    }
    double ink = 0;
    for (size_t k = 0; k < IMG_PIXELS; k++) {
        json_t *v = json_array_get(img, k);
        const double x = json_is_number(v) ? json_number_value(v) : NAN;
        if (!(x >= 0 && x <= 1)) {
            api_error(rep, 400, "image[%zu] (row %zu, column %zu): must be a number in 0..1", k, k / IMG_SIDE,
                      k % IMG_SIDE);
            goto out;
        }
        px[k] = (float)x;
        ink += x;
    }
    /* as a PNG with no ink is refused: an empty image has no digit to read */
    if (ink == 0) {
        api_error(rep, 400, "image: the image has no ink (all %d values are 0)", IMG_PIXELS);
        goto out;
    }
    rc = 0;
out:
    json_decref(body);
    return rc;
}

void api_models_classify(const api_request *req, api_reply *rep)
{
    model_entry *e = find_classifier(req, rep);
    if (!e)
        return;
    float px[IMG_PIXELS];
    if (content_type_is(req, "image/png")) {
        char err[HYPER_ERRMSG_MAX];
        hyper_status st = decode_png(req, px, err);
        if (st != HYPER_OK) {
            api_error(rep, st == HYPER_ERR_TOO_LARGE ? 413 : st == HYPER_ERR_NOMEM ? 503 : 400, "image: %s", err);
            return;
        }
    } else if (image_from_json(req, px, rep) < 0) {
        return;
    }
    clf_ws *ws = clf_ws_new_inference(e->clf, 1);
    if (!ws) {
        api_error(rep, 503, "out of memory");
        return;
    }
    real p[CLF_CLASSES];
    const int best = clf_classify(e->clf, ws, px, p);
    clf_ws_free(ws);
    json_t *probs = json_array();
    for (int k = 0; k < CLF_CLASSES; k++) {
        if (!isfinite((double)p[k])) {   /* damaged weights: say so rather than answer */
            json_decref(probs);
            api_error(rep, 500, "model '%s' gave a non-finite probability; its weights are damaged", e->name);
            return;
        }
        json_array_append_new(probs, json_real(p[k]));
    }
    e->classifications++;
    json_t *reply = json_pack("{s:s, s:i, s:o}", "model", e->name, "label", best, "probabilities", probs);
    /* a PNG was normalised the way MNIST was: the client may want to see what the net saw */
    if (content_type_is(req, "image/png")) {
        json_t *seen = json_array();
        for (int k = 0; k < IMG_PIXELS; k++)
            json_array_append_new(seen, json_real(round(px[k] * 1000) / 1000));
        json_object_set_new(reply, "image", seen);
    }
    api_json(rep, 200, reply);
}

void api_models_kernels_svg(const api_request *req, api_reply *rep)
{
    model_entry *e = find_classifier(req, rep);
    if (!e)
        return;
    char err[HYPER_ERRMSG_MAX];
    strbuf sb;
    strbuf_init(&sb);
    if (clf_kernels_svg(e->clf, &sb, err) != HYPER_OK) {
        free(strbuf_take(&sb));
        api_error(rep, 500, "%s", err);
        return;
    }
    const size_t len = sb.len;
    char *svg = strbuf_take(&sb);
    if (!svg) {
        api_error(rep, 500, "out of memory");
        return;
    }
    rep->status = 200;
    rep->body = svg;
    rep->body_len = len;
    rep->content_type = "image/svg+xml";
}
