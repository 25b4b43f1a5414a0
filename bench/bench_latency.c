/*
 * bench_latency — the time between successive characters of one streamed generation against
 * a running hyperd, optionally while a training job runs: p50, p90, p99 and max of the gap
 * per character, and the job's training speed over the same time.
 *
 *   bench_latency URL [--chars N] [--requests R] [--job JSON] [--label NAME]
 *
 * One session streams R generations of N characters each (defaults 4000 and 2).  Every SSE
 * text event is timestamped as it arrives; the gap since the previous event is shared among
 * the characters the event carries, so an event of k characters adds k gaps of gap/k.  The
 * first event of each request (session setup and the prompt: time to first character) is
 * left out of the gaps and reported on its own as ttfc_ms (the largest over the requests).
 *
 * With --job, JSON is a POST /v1/jobs body.  The job is submitted first and the generation
 * starts once the job has reported progress twice (so its set-up and first steps are over);
 * the job's training speed is measured from its progress reports around the generation
 * (steps × batch × seq / elapsed between the last report before and the first report after),
 * and also given as the report just before the generation (job_alone_chars_per_s: training
 * with nothing served).  At the end the job is cancelled and deleted, also after a failure.
 *
 * Prints one line:
 *   latency label=L chars=... events=... chars_per_event=... gen_chars_per_s=... p50_us=...
 *           p90_us=... p99_us=... max_us=... ttfc_ms=... job_chars_per_s=...
 *           job_alone_chars_per_s=... job_state=...
 * (the job_ fields are "-" without --job).  Exits 1 on any failure.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JOB_START_TIMEOUT_S 120.0     /* set-up and two progress reports */
#define JOB_REPORT_TIMEOUT_S 60.0     /* one more report after the generation */
#define JOB_STOP_TIMEOUT_S 60.0       /* cancel to a finished state */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- plain requests ------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t n;
} buf;

static size_t to_buf(char *p, size_t sz, size_t n, void *user)
{
    buf *b = user;
    char *q = realloc(b->p, b->n + sz * n + 1);
    if (!q)
        return 0;
    memcpy(q + b->n, p, sz * n);
    b->n += sz * n;
    q[b->n] = 0;
    b->p = q;
    return sz * n;
}

/* METHOD base+path with an optional JSON body; the parsed reply (NULL if none or not JSON)
 * and the status in *status (0 when the request itself failed). */
static json_t *request(const char *base, const char *method, const char *path, const char *body, long *status)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    buf b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    *status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    json_t *j = b.p ? json_loads(b.p, 0, NULL) : NULL;
    if (*status < 200 || *status >= 300)
        fprintf(stderr, "bench_latency: %s %s: %ld %s\n", method, path, *status, b.p ? b.p : "");
    free(b.p);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return j;
}

/* ---- the streamed generation --------------------------------------------------------- */

typedef struct {
    char line[65536];
    size_t line_len;
    double last;       /* µs: the previous event, or the request's start */
    int first;         /* no text event yet in this request */
    double ttfc;       /* µs, the largest time to first character */
    double *gaps;      /* µs per character */
    size_t ngaps, cap;
    long chars, events;
    long all_chars;    /* the first events' too */
    int done;          /* the final {"done": true} event arrived */
} stream;

static void on_line(stream *s, const char *line)
{
    if (strncmp(line, "data: ", 6) != 0)
        return;
    const double t = now_us();
    json_t *j = json_loads(line + 6, 0, NULL);
    const char *text = json_string_value(json_object_get(j, "text"));
    if (text && *text) {
        long k = 0;
        for (const char *q = text; *q; q++)
            k += ((unsigned char)*q & 0xC0) != 0x80;
        s->all_chars += k;
        if (s->first) {
            s->first = 0;
            if (t - s->last > s->ttfc)
                s->ttfc = t - s->last;
        } else {
            if (s->ngaps + (size_t)k > s->cap) {
                s->cap = (s->cap ? s->cap * 2 : 8192) + (size_t)k;
                s->gaps = realloc(s->gaps, s->cap * sizeof *s->gaps);
            }
            for (long i = 0; i < k; i++)
                s->gaps[s->ngaps++] = (t - s->last) / (double)k;
            s->chars += k;
            s->events++;
        }
        s->last = t;
    } else if (json_is_true(json_object_get(j, "done"))) {
        s->done = 1;
    }
    json_decref(j);
}

static size_t on_stream(char *p, size_t sz, size_t n, void *user)
{
    stream *s = user;
    for (size_t i = 0; i < sz * n; i++) {
        if (p[i] == '\n') {
            s->line[s->line_len] = 0;
            on_line(s, s->line);
            s->line_len = 0;
        } else if (s->line_len + 1 < sizeof s->line) {
            s->line[s->line_len++] = p[i];
        }
    }
    return sz * n;
}

static int generate(const char *base, const char *sid, int chars, stream *s)
{
    char url[1024], body[256];
    snprintf(url, sizeof url, "%s/v1/sessions/%s/generate", base, sid);
    snprintf(body, sizeof body, "{\"prompt\": \"The \", \"max_chars\": %d, \"stream\": true}", chars);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    s->first = 1;
    s->done = 0;
    s->line_len = 0;
    s->last = now_us();
    long status = 0;
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK || status != 200 || !s->done) {
        fprintf(stderr, "bench_latency: generate: %s, status %ld%s\n", curl_easy_strerror(rc), status,
                s->done ? "" : ", no final event");
        return -1;
    }
    return 0;
}

/* ---- the training job ---------------------------------------------------------------- */

typedef struct {
    char state[32];
    long step;
    double elapsed, rate;   /* NAN until the first report */
} job_snap;

static int job_poll(const char *base, const char *id, job_snap *out)
{
    char path[256];
    long status;
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    json_t *j = request(base, "GET", path, NULL, &status);
    if (!j || status != 200) {
        json_decref(j);
        return -1;
    }
    snprintf(out->state, sizeof out->state, "%s", json_string_value(json_object_get(j, "state")) ?: "?");
    out->step = (long)json_integer_value(json_object_get(j, "step"));
    json_t *e = json_object_get(j, "elapsed_seconds"), *r = json_object_get(j, "chars_per_second");
    out->elapsed = json_is_number(e) ? json_number_value(e) : NAN;
    out->rate = json_is_number(r) ? json_number_value(r) : NAN;
    json_decref(j);
    return 0;
}

static int job_running(const job_snap *s) { return !strcmp(s->state, "running") || !strcmp(s->state, "queued"); }

/* Wait for a report past `after_step`; 0 with *out, -1 on a timeout or a finished job. */
static int job_wait_report(const char *base, const char *id, long after_step, double timeout_s, job_snap *out)
{
    const double until = now_us() + timeout_s * 1e6;
    while (now_us() < until) {
        if (job_poll(base, id, out) != 0)
            return -1;
        if (out->step > after_step && isfinite(out->elapsed))
            return 0;
        if (!job_running(out)) {
            fprintf(stderr, "bench_latency: job %s is %s at step %ld\n", id, out->state, out->step);
            return -1;
        }
        sleep_ms(20);
    }
    fprintf(stderr, "bench_latency: job %s: no progress report within %.0f s\n", id, timeout_s);
    return -1;
}

static void job_remove(const char *base, const char *id)
{
    char path[256];
    long status;
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    json_decref(request(base, "POST", path, NULL, &status));
    job_snap s;
    const double until = now_us() + JOB_STOP_TIMEOUT_S * 1e6;
    while (now_us() < until && job_poll(base, id, &s) == 0 && job_running(&s))
        sleep_ms(50);
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    json_decref(request(base, "DELETE", path, NULL, &status));
}

/* ---- main ---------------------------------------------------------------------------- */

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return NAN;
    size_t i = (size_t)ceil(p * (double)n) - 1;     /* nearest rank */
    return v[i >= n ? n - 1 : i];
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_latency URL [--chars N] [--requests R] [--job JSON] [--label NAME]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *base = argv[1], *job_body = NULL, *label = "run";
    int chars = 4000, requests = 2;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--chars"))
            chars = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--requests"))
            requests = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--job"))
            job_body = argv[++i];
        else if (!strcmp(argv[i], "--label"))
            label = argv[++i];
        else
            usage();
    }
    if (chars < 2 || requests < 1)
        usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);

    int fail = 0;
    long status;
    char job_id[128] = "", sid[128] = "";
    json_t *j;
    job_snap before = {.rate = NAN}, after = {.rate = NAN};
    double job_rate = NAN, job_alone = NAN;
    long batch = 0, seq = 0;
    stream s = {0};

    if (job_body) {
        json_t *spec = json_loads(job_body, 0, NULL);
        json_t *train = json_object_get(spec, "train");
        batch = (long)json_integer_value(json_object_get(train, "batch"));
        seq = (long)json_integer_value(json_object_get(train, "seq"));
        json_decref(spec);
        if (batch < 1 || seq < 1) {
            fprintf(stderr, "bench_latency: --job needs train.batch and train.seq\n");
            return 2;
        }
        j = request(base, "POST", "/v1/jobs", job_body, &status);
        const char *id = json_string_value(json_object_get(j, "id"));
        if (status != 202 || !id) {
            json_decref(j);
            fail = 1;
            goto out;
        }
        snprintf(job_id, sizeof job_id, "%s", id);
        json_decref(j);
        job_snap first;   /* the first report's window holds the set-up: wait for a second */
        if (job_wait_report(base, job_id, 0, JOB_START_TIMEOUT_S, &first) != 0 ||
            job_wait_report(base, job_id, first.step, JOB_START_TIMEOUT_S, &before) != 0) {
            fail = 1;
            goto out;
        }
        job_alone = before.rate;
    }

    j = request(base, "POST", "/v1/sessions", "{\"seed\": 1}", &status);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (status != 201 || !id) {
        json_decref(j);
        fail = 1;
        goto out;
    }
    snprintf(sid, sizeof sid, "%s", id);
    json_decref(j);

    double gen_us = 0;
    for (int r = 0; r < requests && !fail; r++) {
        const double t0 = now_us();
        if (generate(base, sid, chars, &s) != 0)
            fail = 1;
        gen_us += now_us() - t0;
    }
    if (job_id[0] && !fail) {
        job_snap last;
        if (job_poll(base, job_id, &last) != 0 ||
            job_wait_report(base, job_id, last.step, JOB_REPORT_TIMEOUT_S, &after) != 0) {
            fail = 1;
        } else if (after.elapsed > before.elapsed) {
            job_rate = (double)(after.step - before.step) * (double)batch * (double)seq / (after.elapsed - before.elapsed);
        }
    }

out:
    if (sid[0]) {
        char path[256];
        snprintf(path, sizeof path, "/v1/sessions/%s", sid);
        json_decref(request(base, "DELETE", path, NULL, &status));
    }
    if (job_id[0]) {
        job_snap fin = {0};
        job_poll(base, job_id, &fin);
        snprintf(after.state, sizeof after.state, "%s", fin.state);
        job_remove(base, job_id);
    }
    if (!fail) {
        qsort(s.gaps, s.ngaps, sizeof *s.gaps, cmp);
        char jr[64] = "-", ja[64] = "-", js[64] = "-";
        if (job_id[0]) {
            snprintf(jr, sizeof jr, "%.0f", job_rate);
            snprintf(ja, sizeof ja, "%.0f", job_alone);
            snprintf(js, sizeof js, "%s", after.state);
        }
        printf("latency label=%s chars=%ld events=%ld chars_per_event=%.2f gen_chars_per_s=%.0f p50_us=%.0f "
               "p90_us=%.0f p99_us=%.0f max_us=%.0f ttfc_ms=%.1f job_chars_per_s=%s job_alone_chars_per_s=%s "
               "job_state=%s\n",
               label, s.chars, s.events, s.events ? (double)s.chars / (double)s.events : 0.0,
               gen_us > 0 ? (double)s.all_chars / (gen_us * 1e-6) : 0.0, pct(s.gaps, s.ngaps, 0.50),
               pct(s.gaps, s.ngaps, 0.90), pct(s.gaps, s.ngaps, 0.99), s.ngaps ? s.gaps[s.ngaps - 1] : NAN,
               s.ttfc * 1e-3, jr, ja, js);
    }
    free(s.gaps);
    curl_global_cleanup();
    return fail;
}
