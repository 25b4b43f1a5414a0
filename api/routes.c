/*
 * routes.c — the routing table: every endpoint the daemon serves, and the matcher.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"

const api_route api_routes[] = {
    {"GET", "/v1/health", api_health, "health", 1, NULL, 1},
    {"GET", "/v1/ready", api_ready, "ready", 1, NULL, 1},
    {"GET", "/v1/openapi.json", api_openapi, "openapi", 1, NULL, 0},
    {"GET", "/", api_static_index, "web.index", 1, NULL, 0},
    {"GET", "/web/{}", api_static_file, "web.file", 1, NULL, 0},
    {"GET", "/metrics", api_metrics_get, "metrics", 0, NULL, 1},
    {"GET", "/v1/models", api_models_list, "models.list", 0, NULL, 0},
    {"GET", "/v1/models/{}", api_models_get, "models.get", 0, NULL, 0},
    {"POST", "/v1/models/{}/classify", api_models_classify, "models.classify", 0, NULL, 0},
    {"GET", "/v1/models/{}/kernels.svg", api_models_kernels_svg, "models.kernels_svg", 0, NULL, 0},
    {"POST", "/v1/sessions", api_sessions_create, "sessions.create", 0, NULL, 0},
    {"GET", "/v1/sessions", api_sessions_list, "sessions.list", 0, NULL, 0},
    {"GET", "/v1/sessions/{}", api_sessions_get, "sessions.get", 0, NULL, 0},
    {"DELETE", "/v1/sessions/{}", api_sessions_delete, "sessions.delete", 0, NULL, 0},
    {"POST", "/v1/sessions/{}/feed", api_sessions_feed, "sessions.feed", 0, NULL, 0},
    {"POST", "/v1/sessions/{}/generate", api_sessions_generate, "sessions.generate", 0, NULL, 0},
    {"POST", "/v1/sessions/{}/fork", api_sessions_fork, "sessions.fork", 0, NULL, 0},
    {"POST", "/v1/sessions/{}/reset", api_sessions_reset, "sessions.reset", 0, NULL, 0},
    {"POST", "/v1/handwriting/sample", api_handwriting_sample, "handwriting.sample", 0, NULL, 0},
    {"POST", "/v1/datasets", NULL, "datasets.upload", 0, api_datasets_upload, 0},
    {"GET", "/v1/datasets", api_datasets_list, "datasets.list", 0, NULL, 0},
    {"GET", "/v1/datasets/{}", api_datasets_get, "datasets.get", 0, NULL, 0},
    {"DELETE", "/v1/datasets/{}", api_datasets_delete, "datasets.delete", 0, NULL, 0},
    {"POST", "/v1/jobs", api_jobs_submit, "jobs.submit", 0, NULL, 0},
    {"GET", "/v1/jobs", api_jobs_list, "jobs.list", 0, NULL, 0},
    {"GET", "/v1/jobs/{}", api_jobs_get, "jobs.get", 0, NULL, 0},
    {"DELETE", "/v1/jobs/{}", api_jobs_delete, "jobs.delete", 0, NULL, 0},
    {"GET", "/v1/jobs/{}/events", api_jobs_events, "jobs.events", 0, NULL, 0},
    {"GET", "/v1/jobs/{}/metrics", api_jobs_metrics, "jobs.metrics", 0, NULL, 0},
    {"GET", "/v1/jobs/{}/loss.svg", api_jobs_loss_svg, "jobs.loss_svg", 0, NULL, 0},
    {"POST", "/v1/jobs/{}/cancel", api_jobs_cancel, "jobs.cancel", 0, NULL, 0},
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];

/* Matches path against pattern segment by segment; {} takes one non-empty segment. */
static int path_match(const char *pattern, const char *path, api_request *req)
{
    int np = 0;
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= API_PARAM_MAX || np >= API_MAX_PARAMS)
                return 0;
            if (req) {
                memcpy(req->params[np], path, n);
                req->params[np][n] = 0;
            }
            np++;
            path += n;
            pattern += 2;
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    if (*pattern || (*path && strcmp(path, "/") != 0))
        return 0;
    if (req)
        req->nparams = np;
    return 1;
}

const api_route *api_route_match(const char *method, const char *path, api_request *req,
                                 int *status, char *allow, size_t allow_len)
{
    size_t used = 0;
    if (allow_len)
        allow[0] = 0;
    for (size_t i = 0; i < api_nroutes; i++) {
        if (!path_match(api_routes[i].pattern, path, NULL))
            continue;
        if (strcmp(api_routes[i].method, method) == 0) {
            if (req)
                path_match(api_routes[i].pattern, path, req);
            return &api_routes[i];
        }
        if (used < allow_len)
            used += (size_t)snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
                                     api_routes[i].method);
    }
    *status = used ? 405 : 404;
    return NULL;
}
