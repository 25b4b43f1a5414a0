/*
 * system.c — health, readiness and the Prometheus metrics of the process.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "strbuf.h"
#include "scheduler.h"

#define METRICS_MAX_SERIES 256

struct api_metrics {
    pthread_mutex_t mu;
    struct {
        const char *route;        /* a route name (static string) */
        int status;
        uint64_t count;
    } series[METRICS_MAX_SERIES];
    int n;
};

api_metrics *api_metrics_new(void)
{
    api_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void api_metrics_free(api_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void api_metrics_request(api_metrics *m, const char *route, int status)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n && !(m->series[i].status == status && strcmp(m->series[i].route, route) == 0))
        i++;
    if (i == m->n && m->n < METRICS_MAX_SERIES) {
        m->series[i].route = route;
        m->series[i].status = status;
        m->series[i].count = 0;
        m->n++;
    }
    if (i < m->n)
        m->series[i].count++;
    pthread_mutex_unlock(&m->mu);
}

void api_health(const api_request *req, api_reply *rep)
{
    (void)req;
    api_json(rep, 200, json_pack("{s:s}", "status", "ok"));
}

void api_ready(const api_request *req, api_reply *rep)
{
    if (req->app->ready && !req->app->stopping)
        api_json(rep, 200, json_pack("{s:s, s:i}", "status", "ready", "models",
                                     registry_count(req->app->models)));
    else
        api_error(rep, 503, req->app->stopping ? "shutting down" : "models are still loading");
}

/* ---- /metrics: Prometheus text format ------------------------------------------------ */

static long resident_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

void api_metrics_get(const api_request *req, api_reply *rep)
{
    api_app *app = req->app;
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "# HELP hyperd_requests_total HTTP requests by route and status.\n"
                   "# TYPE hyperd_requests_total counter\n");
    api_metrics *m = app->metrics;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n; i++)
        strbuf_printf(&sb, "hyperd_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                  m->series[i].route, m->series[i].status, (unsigned long long)m->series[i].count);
    pthread_mutex_unlock(&m->mu);

    strbuf_printf(&sb, "# HELP hyperd_sessions_active Sessions held by the server.\n"
                   "# TYPE hyperd_sessions_active gauge\nhyperd_sessions_active %zu\n",
              session_count(app->sessions));
    strbuf_printf(&sb, "# HELP hyperd_chars_generated_total Characters generated.\n"
                   "# TYPE hyperd_chars_generated_total counter\n");
    int nm = registry_count(app->models);
    sched_stats *st = calloc((size_t)(nm ? nm : 1), sizeof *st);
    for (int i = 0; i < nm && st; i++)
        scheduler_stats(registry_at(app->models, i)->sched, &st[i]);
    for (int i = 0; i < nm && st; i++)
        if (registry_at(app->models, i)->sched)
            strbuf_printf(&sb, "hyperd_chars_generated_total{model=\"%s\"} %llu\n",
                  registry_at(app->models, i)->name, (unsigned long long)st[i].chars);
    strbuf_printf(&sb, "# HELP hyperd_classifications_total Images classified.\n"
                       "# TYPE hyperd_classifications_total counter\n");
    for (int i = 0; i < nm; i++) {
        model_entry *e = registry_at(app->models, i);
        if (e->clf)
            strbuf_printf(&sb, "hyperd_classifications_total{model=\"%s\"} %llu\n", e->name,
                          (unsigned long long)e->classifications);
    }
    strbuf_printf(&sb, "# HELP hyperd_generations_active Requests being stepped.\n"
                   "# TYPE hyperd_generations_active gauge\n");
    for (int i = 0; i < nm && st; i++)
        if (registry_at(app->models, i)->sched)
            strbuf_printf(&sb, "hyperd_generations_active{model=\"%s\"} %d\n",
                  registry_at(app->models, i)->name, st[i].active);
    strbuf_printf(&sb, "# HELP hyperd_batch_size Streams stepped together per scheduler step.\n"
                   "# TYPE hyperd_batch_size histogram\n");
    for (int i = 0; i < nm && st; i++) {
        if (!registry_at(app->models, i)->sched)
            continue;   /* a classifier: nothing is stepped */
        const char *name = registry_at(app->models, i)->name;
        uint64_t cum = 0;
        for (int b = 0; b < SCHED_BATCH_BUCKETS; b++) {
            cum += st[i].batch_hist[b];
            strbuf_printf(&sb, "hyperd_batch_size_bucket{model=\"%s\",le=\"%d\"} %llu\n", name, 1 << b,
                      (unsigned long long)cum);
        }
        strbuf_printf(&sb, "hyperd_batch_size_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", name,
                  (unsigned long long)cum);
        strbuf_printf(&sb, "hyperd_batch_size_sum{model=\"%s\"} %llu\nhyperd_batch_size_count{model=\"%s\"} %llu\n",
                  name, (unsigned long long)st[i].batch_rows, name, (unsigned long long)st[i].steps);
    }
    strbuf_printf(&sb, "# HELP hyperd_step_seconds Time of one batched step.\n"
                   "# TYPE hyperd_step_seconds histogram\n");
    for (int i = 0; i < nm && st; i++) {
        if (!registry_at(app->models, i)->sched)
            continue;   /* a classifier: nothing is stepped */
        const char *name = registry_at(app->models, i)->name;
        uint64_t cum = 0;
        for (int b = 0; b < SCHED_STEP_BUCKETS; b++) {
            cum += st[i].step_us_hist[b];
            if (b < SCHED_STEP_BUCKETS - 1)
                strbuf_printf(&sb, "hyperd_step_seconds_bucket{model=\"%s\",le=\"%g\"} %llu\n", name,
                          sched_step_bounds_us[b] * 1e-6, (unsigned long long)cum);
            else
                strbuf_printf(&sb, "hyperd_step_seconds_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", name,
                          (unsigned long long)cum);
        }
        strbuf_printf(&sb, "hyperd_step_seconds_sum{model=\"%s\"} %.6f\nhyperd_step_seconds_count{model=\"%s\"} %llu\n",
                  name, st[i].step_us_sum * 1e-6, name, (unsigned long long)st[i].steps);
    }
    free(st);
    strbuf_printf(&sb, "# HELP process_resident_memory_bytes Resident memory size.\n"
                   "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
              resident_bytes());
    const size_t len = sb.len;
    char *text = strbuf_take(&sb);
    if (!text) {
        api_error(rep, 500, "out of memory");
        return;
    }
    rep->status = 200;
    rep->body = text;
    rep->body_len = len;
    rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* The OpenAPI document (api/openapi.json), linked into the binary by the Makefile. */
extern const char _binary_api_openapi_json_start[], _binary_api_openapi_json_end[];

void api_openapi(const api_request *req, api_reply *rep)
{
    (void)req;
    const size_t n = (size_t)(_binary_api_openapi_json_end - _binary_api_openapi_json_start);
    char *copy = malloc(n);
    if (!copy) {
        api_error(rep, 500, "out of memory");
        return;
    }
    memcpy(copy, _binary_api_openapi_json_start, n);
    rep->status = 200;
    rep->body = copy;
    rep->body_len = n;
    rep->content_type = "application/json";
}
