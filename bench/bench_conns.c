/*
 * bench_conns — many connections against a running hyperd: IDLE keep-alive connections
 * (each has made one request and then stays open, silent), and STREAMS streaming
 * generates of CHARS characters at once, all from one thread (curl multi), while another
 * thread asks /v1/health every 50 ms.
 *
 *   bench_conns URL PID IDLE STREAMS CHARS     e.g. bench_conns http://127.0.0.1:18091 4242 10000 1000 100
 *
 * Prints one line: `conns idle=... streams=... done=... errors=... seconds=...
 * health_max_ms=... health_p99_ms=... rss_max_kb=... threads_max=...` (RSS and threads of
 * process PID, sampled by the health thread).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char line[8192];
    size_t len;
    int done_ok;                /* a final event with finish_reason "length" and CHARS chars */
    long chars;
    char id[64];
} stream;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static long status_field(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    const size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static size_t on_data(char *p, size_t sz, size_t n, void *user)
{
    stream *s = user;
    for (size_t i = 0; i < sz * n; i++) {
        if (p[i] != '\n') {
            if (s->len + 1 < sizeof s->line)
                s->line[s->len++] = p[i];
            continue;
        }
        s->line[s->len] = 0;
        s->len = 0;
        if (strncmp(s->line, "data: ", 6) != 0)
            continue;
        json_t *j = json_loads(s->line + 6, 0, NULL);
        if (json_is_true(json_object_get(j, "done"))) {
            const char *fr = json_string_value(json_object_get(j, "finish_reason"));
            s->chars = (long)json_integer_value(json_object_get(j, "chars"));
            s->done_ok = fr && !strcmp(fr, "length");
        }
        json_decref(j);
    }
    return sz * n;
}

static size_t keep(char *p, size_t sz, size_t n, void *user)
{
    char *buf = user;
    size_t have = strlen(buf), k = sz * n < 255 - have ? sz * n : 255 - have;
    memcpy(buf + have, p, k);
    buf[have + k] = 0;
    return sz * n;
}

typedef struct {
    const char *url;
    int pid;
    atomic_int stop;
    double max_ms;
    double *lat;
    size_t nlat, cap;
    long rss_max, threads_max;
} prober;

static void *probe(void *arg)
{
    prober *p = arg;
    CURL *h = curl_easy_init();
    char url[512], sink[256];
    snprintf(url, sizeof url, "%s/v1/health", p->url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L); /* a new connection each time, as a prober does */
    while (!atomic_load(&p->stop)) {
        sink[0] = 0;
        const double t = now_ms();
        curl_easy_perform(h);
        const double ms = now_ms() - t;
        if (p->nlat == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 1024;
            p->lat = realloc(p->lat, p->cap * sizeof *p->lat);
        }
        p->lat[p->nlat++] = ms;
        if (ms > p->max_ms)
            p->max_ms = ms;
        const long rss = status_field(p->pid, "VmRSS"), th = status_field(p->pid, "Threads");
        p->rss_max = rss > p->rss_max ? rss : p->rss_max;
        p->threads_max = th > p->threads_max ? th : p->threads_max;
        usleep(50000);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A keep-alive connection that has made one request (GET /v1/health) and now waits. */
static int idle_connection(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    const char *req = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[1024];
    if (send(fd, req, strlen(req), 0) < 0 || recv(fd, buf, sizeof buf, 0) <= 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_conns URL PID IDLE STREAMS CHARS\n");
        return 2;
    }
    const char *url = argv[1];
    const int pid = atoi(argv[2]), nidle = atoi(argv[3]), nstreams = atoi(argv[4]), chars = atoi(argv[5]);
    const char *colon = strrchr(url, ':');
    const int port = colon ? atoi(colon + 1) : 0;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    int *idle = malloc((size_t)(nidle > 0 ? nidle : 1) * sizeof *idle);
    int opened = 0;
    for (int i = 0; i < nidle; i++)
        if ((idle[opened] = idle_connection(port)) >= 0)
            opened++;

    /* the sessions, one request each */
    stream *st = calloc((size_t)nstreams, sizeof *st);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char u[512];
    int errors = 0;
    for (int k = 0; k < nstreams; k++) {
        char body[256] = "";
        snprintf(u, sizeof u, "%s/v1/sessions", url);
        curl_easy_setopt(h, CURLOPT_URL, u);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
        json_t *j = curl_easy_perform(h) == CURLE_OK ? json_loads(body, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(j, "id"));
        if (id)
            snprintf(st[k].id, sizeof st[k].id, "%s", id);
        else
            errors++;
        json_decref(j);
    }
    curl_easy_cleanup(h);

    prober pr = {.url = url, .pid = pid};
    pthread_t pt;
    pthread_create(&pt, NULL, probe, &pr);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)nstreams + 16);
    char body[128];
    snprintf(body, sizeof body, "{\"max_chars\": %d, \"stream\": true, \"prompt\": \"The \"}", chars);
    char (*urls)[256] = calloc((size_t)nstreams, sizeof *urls);
    for (int k = 0; k < nstreams; k++) {
        if (!st[k].id[0])
            continue;
        CURL *e = curl_easy_init();
        snprintf(urls[k], sizeof urls[k], "%s/v1/sessions/%s/generate", url, st[k].id);
        curl_easy_setopt(e, CURLOPT_URL, urls[k]);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &st[k]);
        curl_easy_setopt(e, CURLOPT_PRIVATE, &st[k]);
        curl_multi_add_handle(m, e);
    }
    const double t0 = now_ms();
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result != CURLE_OK || code != 200)
                errors++;
            curl_multi_remove_handle(m, msg->easy_handle);
            curl_easy_cleanup(msg->easy_handle);
        }
    }
    const double secs = (now_ms() - t0) / 1e3;
    atomic_store(&pr.stop, 1);
    pthread_join(pt, NULL);
    int done = 0;
    for (int k = 0; k < nstreams; k++) {
        if (st[k].done_ok && st[k].chars == chars)
            done++;
        else if (st[k].id[0])
            errors++;
    }
    /* the idle ones must all still be open */
    int still = 0;
    for (int i = 0; i < opened; i++) {
        char b;
        still += recv(idle[i], &b, 1, MSG_DONTWAIT) < 0;
        close(idle[i]);
    }
    qsort(pr.lat, pr.nlat, sizeof *pr.lat, cmp);
    printf("conns idle=%d idle_open=%d streams=%d done=%d errors=%d seconds=%.2f health_n=%zu health_p99_ms=%.1f "
           "health_max_ms=%.1f rss_max_kb=%ld threads_max=%ld\n",
           opened, still, nstreams, done, errors, secs, pr.nlat, pr.nlat ? pr.lat[(pr.nlat * 99) / 100] : 0.0,
           pr.max_ms, pr.rss_max, pr.threads_max);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    free(urls);
    free(st);
    free(idle);
    free(pr.lat);
    return errors ? 1 : 0;
}
