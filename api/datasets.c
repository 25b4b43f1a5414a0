/*
 * datasets.c — /v1/datasets: streamed uploads (the body goes to disk as it arrives, never
 * whole into memory), listing, details and removal, over engine/datasets.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "datasets.h"

static json_t *dataset_json(const dataset_info *d)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:s, s:o, s:i, s:b}", "name", d->name, "kind", dataset_kind_str(d->kind),
                     "bytes", (json_int_t)d->bytes, "items", (json_int_t)d->items, "sha256", d->sha256, "created_at",
                     d->created_ms ? api_iso_time(d->created_ms) : json_null(), "parts", d->parts, "builtin",
                     d->builtin);
}

/* ---- upload -------------------------------------------------------------------------- */

typedef struct {
    dataset_upload *up;
    hyper_status failed;          /* a write refused the body: its status and message */
    char err[HYPER_ERRMSG_MAX];
} upload_ctx;

static int upload_write(void *ctx, const char *data, size_t n)
{
    upload_ctx *u = ctx;
    hyper_status st = dataset_upload_write(u->up, data, n, u->err);
    if (st != HYPER_OK) {
        u->failed = st;
        return -1;
    }
    return 0;
}

static void upload_finish(void *ctx, api_reply *rep)
{
    upload_ctx *u = ctx;
    dataset_info info;
    hyper_status st = dataset_upload_commit(u->up, &info, u->err); /* repeats an earlier failure */
    if (st == HYPER_OK)
        api_json(rep, 201, dataset_json(&info));
    else
        api_error(rep, api_status_http(st), "%s", u->err);
    free(u);
}

static void upload_abort(void *ctx)
{
    upload_ctx *u = ctx;
    dataset_upload_abort(u->up);
    free(u);
}

int api_datasets_upload(const api_request *req, api_reply *rep, api_upload *out)
{
    const char *name = req->query ? req->query(req->conn, "name") : NULL;
    const char *kind_s = req->query ? req->query(req->conn, "kind") : NULL;
    dataset_kind kind = DATASET_TEXT;
    if (!name || !*name) {
        api_error(rep, 400, "name: required, as a query parameter: /v1/datasets?name=NAME&kind=text|strokes");
        return -1;
    }
    if (!dataset_name_valid(name)) {
        api_error(rep, 400, "name: '%.64s' is not a valid dataset name (1-63 of A-Z a-z 0-9 . _ -, not starting "
                            "with a dot, no '..')", name);
        return -1;
    }
    if (kind_s && !dataset_kind_parse(kind_s, &kind)) {
        api_error(rep, 400, "kind: '%.32s' is not text or strokes", kind_s);
        return -1;
    }
    /* the media types an upload may have (parameters such as charset aside) */
    static const char *const media[] = {"text/plain", "application/json", "application/xml", "text/xml", NULL};
    int known = !req->content_type;
    for (int k = 0; media[k] && !known; k++) {
        size_t n = strlen(media[k]);
        known = strncasecmp(req->content_type, media[k], n) == 0 &&
                (req->content_type[n] == 0 || req->content_type[n] == ';' || req->content_type[n] == ' ');
    }
    if (!known) {
        api_error(rep, 415, "Content-Type: '%.64s' is not text/plain (text), application/json or application/xml "
                            "(strokes)", req->content_type);
        return -1;
    }
    if (!kind_s && req->content_type && strncmp(req->content_type, "text/plain", 10) != 0)
        kind = DATASET_STROKES; /* JSON or XML bodies are strokes */
    upload_ctx *u = calloc(1, sizeof *u);
    if (!u) {
        api_error(rep, 500, "out of memory");
        return -1;
    }
    hyper_status st = dataset_upload_begin(req->app->datasets, name, kind, req->content_type,
                                           (int64_t)req->app->max_upload_bytes, &u->up, u->err);
    if (st != HYPER_OK) {
        int status = api_status_http(st);
        api_error(rep, status == 400 && !req->content_type ? 415 : status, "%s", u->err);
        free(u);
        return -1;
    }
    *out = (api_upload){u, upload_write, upload_finish, upload_abort};
    return 0;
}

/* ---- queries ------------------------------------------------------------------------- */

void api_datasets_list(const api_request *req, api_reply *rep)
{
    size_t total = dataset_list(req->app->datasets, NULL, 0);
    dataset_info *all = calloc(total + 1, sizeof *all);
    if (!all) {
        api_error(rep, 500, "out of memory");
        return;
    }
    size_t n = dataset_list(req->app->datasets, all, total);
    json_t *arr = json_array();
    for (size_t k = 0; k < n && k < total; k++)
        json_array_append_new(arr, dataset_json(&all[k]));
    free(all);
    api_json(rep, 200, json_pack("{s:o}", "datasets", arr));
}

void api_datasets_get(const api_request *req, api_reply *rep)
{
    dataset_info info;
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = dataset_get(req->app->datasets, req->params[0], &info, err);
    if (st != HYPER_OK)
        api_error(rep, api_status_http(st), "no dataset named '%s'", req->params[0]);
    else
        api_json(rep, 200, dataset_json(&info));
}

void api_datasets_delete(const api_request *req, api_reply *rep)
{
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = dataset_delete(req->app->datasets, req->params[0], err);
    if (st != HYPER_OK) {
        api_error(rep, api_status_http(st), "%s", err);
        return;
    }
    rep->status = 204;
}
