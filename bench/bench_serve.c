/*
 * bench_serve — concurrent streaming sessions against a running hyperd: aggregate
 * characters per second and the time per character (p50, p99) each client sees.
 *
 *   bench_serve URL SESSIONS CHARS     e.g. bench_serve http://127.0.0.1:18090 64 400
 *
 * Each client thread creates a session, then streams one generation of CHARS characters;
 * the gap between two arriving chunks is shared among the characters of the later chunk.
 * Prints one line: `serve sessions=S chars_per_s=... p50_ms=... p99_ms=... total_chars=...`.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CLIENTS 256

typedef struct {
    const char *url;
    int chars;
    char line[65536];
    size_t line_len;
    double last;
    double *gaps;      /* per character, ms */
    size_t ngaps, cap;
    long got;
    int failed;
} client;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static size_t collect(char *p, size_t sz, size_t n, void *user)
{
    json_t **out = user;
    json_error_t e;
    json_decref(*out);
    *out = json_loadb(p, sz * n, 0, &e);
    return sz * n;
}

/* One SSE line: a text event adds its characters with their share of the gap. */
static void on_line(client *c, const char *line)
{
    if (strncmp(line, "data: ", 6) != 0)
        return;
    json_t *j = json_loads(line + 6, 0, NULL);
    const char *text = json_string_value(json_object_get(j, "text"));
    if (text) {
        double t = now_ms();
        long k = 0;
        for (const char *q = text; *q; q++)
            k += ((unsigned char)*q & 0xC0) != 0x80;
        for (long i = 0; i < k; i++) {
            if (c->ngaps == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 1024;
                c->gaps = realloc(c->gaps, c->cap * sizeof *c->gaps);
            }
            c->gaps[c->ngaps++] = (t - c->last) / (double)k;
        }
        c->last = t;
        c->got += k;
    }
    json_decref(j);
}

static size_t on_stream(char *p, size_t sz, size_t n, void *user)
{
    client *c = user;
    for (size_t i = 0; i < sz * n; i++) {
        if (p[i] == '\n') {
            c->line[c->line_len] = 0;
            on_line(c, c->line);
            c->line_len = 0;
        } else if (c->line_len + 1 < sizeof c->line) {
            c->line[c->line_len++] = p[i];
        }
    }
    return sz * n;
}

static void *run_client(void *arg)
{
    client *c = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char url[512], body[256];
    json_t *created = NULL;
    snprintf(url, sizeof url, "%s/v1/sessions", c->url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &created);
    const char *id = NULL;
    if (curl_easy_perform(h) != CURLE_OK || !(id = json_string_value(json_object_get(created, "id")))) {
        c->failed = 1;
        goto out;
    }
    snprintf(url, sizeof url, "%s/v1/sessions/%s/generate", c->url, id);
    snprintf(body, sizeof body, "{\"prompt\": \"The \", \"max_chars\": %d, \"stream\": true}", c->chars);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    c->last = now_ms();
    if (curl_easy_perform(h) != CURLE_OK)
        c->failed = 1;
out:
    json_decref(created);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_serve URL SESSIONS CHARS\n");
        return 2;
    }
    int n = atoi(argv[2]), chars = atoi(argv[3]);
    if (n < 1 || n > MAX_CLIENTS || chars < 1) {
        fprintf(stderr, "bench_serve: SESSIONS must be 1..%d and CHARS positive\n", MAX_CLIENTS);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    client *cs = calloc((size_t)n, sizeof *cs);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        cs[i].url = argv[1];
        cs[i].chars = chars;
        pthread_create(&th[i], NULL, run_client, &cs[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    double wall = (now_ms() - t0) / 1e3;
    size_t total = 0, ng = 0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        total += (size_t)cs[i].got;
        ng += cs[i].ngaps;
        failed += cs[i].failed;
    }
    double *all = malloc((ng ? ng : 1) * sizeof *all);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + at, cs[i].gaps, cs[i].ngaps * sizeof *all);
        at += cs[i].ngaps;
        free(cs[i].gaps);
    }
    qsort(all, ng, sizeof *all, cmp);
    printf("serve sessions=%d chars_per_s=%.0f p50_ms=%.3f p99_ms=%.3f total_chars=%zu failed=%d\n", n,
           (double)total / wall, ng ? all[ng / 2] : 0.0, ng ? all[(size_t)(0.99 * (double)(ng - 1))] : 0.0,
           total, failed);
    free(all);
    free(cs);
    free(th);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
