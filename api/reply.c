/*
 * reply.c — the one error helper, JSON replies, body parsing, field validation, and the
 * session a route names.
 */
#include <math.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <strings.h>

#include "api.h"

static const char *error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request";
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 415: return "unsupported_media_type";
    case 429: return "too_many_requests";
    case 503: return "unavailable";
    case 507: return "insufficient_storage";
    default: return status >= 500 ? "internal_error" : "error";
    }
}

int api_status_http(hyper_status st)
{
    switch (st) {
    case HYPER_OK: return 200;
    case HYPER_ERR_NOT_FOUND: return 404;
    case HYPER_ERR_CONFLICT: return 409;
    case HYPER_ERR_TOO_LARGE: return 413;
    case HYPER_ERR_NOSPACE: return 507;
    case HYPER_ERR_NOMEM:
    case HYPER_ERR_IO: return 500;
    default: return 400;
    }
}

void api_json(api_reply *rep, int status, json_t *body)
{
    json_decref(rep->json);
    rep->status = status;
    rep->json = body;
}

void api_error(api_reply *rep, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* messages quote client input: keep the reply valid JSON even if that was not UTF-8 */
    json_t *m = json_string(msg);
    if (!m)
        m = json_string("the request is invalid (its text is not valid UTF-8)");
    api_json(rep, status, json_pack("{s:{s:i, s:s, s:o}}", "error", "code", status, "type",
                                    error_type(status), "message", m));
}

json_t *api_body_object(const api_request *req, api_reply *rep)
{
    if (req->body_len == 0)
        return json_object();
    if (req->content_type) {
        size_t n = strcspn(req->content_type, "; ");
        if (!(n == 16 && strncasecmp(req->content_type, "application/json", 16) == 0)) {
            api_error(rep, 415, "the body must be application/json, not %.*s", (int)n,
                      req->content_type);
            return NULL;
        }
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        api_error(rep, 400, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                  jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_error(rep, 400, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

int api_check_fields(json_t *obj, const char *const *known, api_reply *rep)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int found = 0;
        for (int k = 0; known[k] && !found; k++)
            found = strcmp(key, known[k]) == 0;
        if (!found) {
            api_error(rep, 400, "unknown field '%s'", key);
            return -1;
        }
    }
    return 0;
}

int api_get_int(json_t *obj, const char *field, int64_t lo, int64_t hi, int64_t *out,
                api_reply *rep)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v)) {
        api_error(rep, 400, "%s must be an integer", field);
        return -1;
    }
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        api_error(rep, 400, "%s must be between %lld and %lld, not %lld", field, (long long)lo,
                  (long long)hi, (long long)x);
        return -1;
    }
    *out = x;
    return 1;
}

int api_get_u64(json_t *obj, const char *field, uint64_t *out, api_reply *rep)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        api_error(rep, 400, "%s must be a non-negative integer", field);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

int api_get_num(json_t *obj, const char *field, double lo, double hi, double *out,
                api_reply *rep)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        api_error(rep, 400, "%s must be a number", field);
        return -1;
    }
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) {
        api_error(rep, 400, "%s must be between %g and %g, not %g", field, lo, hi, x);
        return -1;
    }
    *out = x;
    return 1;
}

int api_get_bool(json_t *obj, const char *field, int *out, api_reply *rep)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        api_error(rep, 400, "%s must be true or false", field);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int api_get_str(json_t *obj, const char *field, size_t max_bytes, const char **out,
                api_reply *rep)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        api_error(rep, 400, "%s must be a string", field);
        return -1;
    }
    if (json_string_length(v) > max_bytes) {
        api_error(rep, 400, "%s is longer than %zu bytes", field, max_bytes);
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        api_error(rep, 400, "%s must not contain NUL characters", field);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

json_t *api_iso_time(int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

int api_query_int(const api_request *req, const char *key, int64_t lo, int64_t hi, int64_t def,
                  int64_t *out, api_reply *rep)
{
    const char *v = req->query ? req->query(req->conn, key) : NULL;
    *out = def;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*v == 0 || *end || errno || x < lo || x > hi) {
        api_error(rep, 400, "%s must be an integer between %lld and %lld", key, (long long)lo, (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* The session of the route's {} (used by the text and the handwriting endpoints alike). */
session *api_session_lookup(const api_request *req, api_reply *rep, int acquire)
{
    int busy = 0;
    session *s = session_get(req->app->sessions, req->params[0], acquire, &busy);
    if (!s) {
        if (busy)
            api_error(rep, 409, "session %s is busy with another request", req->params[0]);
        else
            api_error(rep, 404, "no session %s", req->params[0]);
    }
    return s;
}
