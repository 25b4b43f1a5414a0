/*
 * test_http_edges.c — HTTP edges of hyperd (issue 14) over raw sockets, as a hostile or
 * unusual client sends them: a request whose sender shuts its write side, %00 and control
 * characters in a path, bodies framed two ways, an unknown path with a large body, URLs and
 * headers past hyperd's limits (answered in its JSON error shape, not libmicrohttpd's HTML),
 * a second daemon on a port already taken; deadlines: a thousand half-sent requests answered
 * 408 while everyone else is served, slow bodies 408, idle connections closed quietly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon_fixture.h"

static int connect_to(const hyperd_proc *p)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, data, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* the server may close first: what it answered is checked */
        data += k;
        n -= (size_t)k;
    }
}

/* Reads until the server closes or timeout_s passes; returns what came (new string). */
static char *read_all(int fd, double timeout_s)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    const double end = now_s() + timeout_s;
    for (;;) {
        int left = (int)((end - now_s()) * 1000);
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            break;
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = 0;
    return buf;
}

/* Sends raw bytes on a new connection (shutting the write side after when half_close) and
 * returns the whole answer (new string). */
static char *exchange(const hyperd_proc *p, const char *req, size_t n, int half_close)
{
    int fd = connect_to(p);
    send_all(fd, req, n);
    if (half_close)
        shutdown(fd, SHUT_WR);
    char *got = read_all(fd, 20);
    close(fd);
    return got;
}

/* An answer's status and body: "HTTP/1.1 NNN" and the JSON error shape with that code. */
static void expect_json_error(const char *got, int status, const char *part)
{
    int st = 0;
    ck_assert_msg(sscanf(got, "HTTP/1.%*d %d", &st) == 1 && st == status, "want HTTP %d, got: %.600s", status,
                  got);
    const char *body = strstr(got, "\r\n\r\n");
    ck_assert_msg(body != NULL, "no body: %.600s", got);
    json_t *j = json_loads(body + 4, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *e = json_object_get(j, "error");
    ck_assert_msg(json_integer_value(json_object_get(e, "code")) == status &&
                      json_is_string(json_object_get(e, "type")) &&
                      strstr(json_string_value(json_object_get(e, "message")), part),
                  "not hyperd's JSON error %d mentioning '%s': %.600s", status, part, got);
    json_decref(j);
}

START_TEST(a_half_closed_request_gets_its_whole_reply)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    /* a plain feed long enough to be running when the FIN arrives, and a plain generate */
    const size_t n = 100000;
    char *body = malloc(n + 32);
    size_t len = (size_t)sprintf(body, "{\"text\": \"");
    for (size_t k = 0; k < n; k++)
        body[len++] = "the cat "[k % 8];
    len += (size_t)sprintf(body + len, "\"}");
    char *req = malloc(len + 512);
    int hl = sprintf(req, "POST /v1/sessions/%s/feed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n", id, len);
    memcpy(req + hl, body, len);
    char *got = exchange(&srv, req, (size_t)hl + len, 1);
    ck_assert_msg(strncmp(got, "HTTP/1.1 200", 12) == 0 && strstr(got, "\"chars\":100000"),
                  "a feed whose client shut its write side: %.600s", got);
    free(got);
    const char *gen = "{\"max_chars\": 5000, \"seed\": 3}";
    hl = sprintf(req, "POST /v1/sessions/%s/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", id, strlen(gen), gen);
    got = exchange(&srv, req, (size_t)hl, 1);
    ck_assert_msg(strncmp(got, "HTTP/1.1 200", 12) == 0 && strstr(got, "\"chars\":5000"),
                  "a generate whose client shut its write side: %.600s", got);
    free(got);
    free(req);
    free(body);
}
END_TEST

START_TEST(nul_and_control_characters_in_a_path_get_400)
{
    static const char *const paths[] = {"/index.html%00.png", "/v1/health%00", "/v1/models%0a", "/v1/%7f",
                                        "/v1/sessions?x=a%00b"};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        char req[256];
        int n = sprintf(req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths[k]);
        char *got = exchange(&srv, req, (size_t)n, 0);
        expect_json_error(got, 400, "control character");
        free(got);
    }
}
END_TEST

START_TEST(a_body_framed_two_ways_gets_400)
{
    static const char *const reqs[] = {
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        "Content-Length: 3\r\nConnection: close\r\n\r\n{} ",
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n"};
    for (size_t k = 0; k < 2; k++) {
        char *got = exchange(&srv, reqs[k], strlen(reqs[k]), 0);
        ck_assert_msg(strncmp(got, "HTTP/1.1 400", 12) == 0 && strstr(got, "\"code\":400"),
                      "a body framed two ways: %.600s", got);
        free(got);
    }
    /* no session was made by either */
    reply r = http_get(&srv, "/v1/sessions");
    ck_assert_msg(jint(r, "total") == 0, "%s", r.body);
    reply_free(&r);
}
END_TEST

START_TEST(an_unknown_path_is_answered_before_its_body)
{
    /* 1 MiB announced, none sent: the 404 comes at once */
    const char *req = "POST /v1/no-such-thing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: 1048576\r\n\r\n";
    int fd = connect_to(&srv);
    send_all(fd, req, strlen(req));
    const double t0 = now_s();
    char *got = read_all(fd, 5);
    close(fd);
    expect_json_error(got, 404, "no such route");
    ck_assert_msg(now_s() - t0 < 4, "the 404 waited for the body");
    free(got);
}
END_TEST

START_TEST(urls_and_headers_past_the_limits_get_json_errors)
{
    const size_t url_len = 20000, header_len = 40000;
    char *req = malloc(url_len + header_len + 256);
    int n = sprintf(req, "GET /v1/");
    memset(req + n, 'a', url_len);
    n += (int)url_len;
    n += sprintf(req + n, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char *got = exchange(&srv, req, (size_t)n, 0);
    expect_json_error(got, 414, "16384");
    free(got);
    n = sprintf(req, "GET /v1/health HTTP/1.1\r\nHost: x\r\n");
    for (int k = 0; k < 10; k++) {
        n += sprintf(req + n, "X-Filler-%d: ", k);
        memset(req + n, 'b', header_len / 10);
        n += (int)(header_len / 10);
        n += sprintf(req + n, "\r\n");
    }
    n += sprintf(req + n, "Connection: close\r\n\r\n");
    got = exchange(&srv, req, (size_t)n, 0);
    expect_json_error(got, 431, "32768");
    free(got);
    free(req);
    reply r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    reply_free(&r);
}
END_TEST

START_TEST(a_second_daemon_on_a_taken_port_exits)
{
    char port[16];
    snprintf(port, sizeof port, "%d", srv.port);
    const char *const flags[] = {"--port", port, NULL};
    hyperd_proc b;
    hyperd_init(&b, "second", flags);
    char why[4096];
    ck_assert_msg(hyperd_start(&b, why, sizeof why) != 0, "a second hyperd started on port %s", port);
    char want[64];
    snprintf(want, sizeof want, "port %s: the port is in use", port);
    /* the whole log: under the sanitizers a leak report at exit follows the message */
    FILE *f = fopen(b.log, "r");
    ck_assert_ptr_nonnull(f);
    char *log = calloc(1, 1 << 20);
    size_t got = fread(log, 1, (1 << 20) - 1, f);
    fclose(f);
    log[got] = 0;
    ck_assert_msg(strstr(log, want), "the refusal does not say '%s': %s", want, why);
    free(log);
    /* the first one still has every connection */
    for (int k = 0; k < 20; k++) {
        reply r = http_get(&srv, "/v1/health");
        expect_status(r, 200);
        reply_free(&r);
    }
}
END_TEST

/* ---- deadlines ---------------------------------------------------------------------------- */

#define HALF_SENT 1000
#define SLOW_BODIES 10
#define IDLE_CONNS 10
#define HEADER_TIMEOUT_S 2
#define IDLE_TIMEOUT_S 5

typedef struct {
    int fd;
    char got[1024];
    size_t len;
    int closed;
    double closed_at;
} watched_conn;

/* Reads what has come on every open connection, until each is closed or `until` (now_s). */
static void drain(watched_conn *c, int n, double until)
{
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    for (;;) {
        int open = 0;
        for (int i = 0; i < n; i++) {
            pf[i].fd = c[i].closed ? -1 : c[i].fd;
            pf[i].events = POLLIN;
            open += !c[i].closed;
        }
        const int left = (int)((until - now_s()) * 1000);
        if (!open || left <= 0 || poll(pf, (nfds_t)n, left) <= 0)
            break;
        for (int i = 0; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t k = recv(c[i].fd, c[i].got + c[i].len, sizeof c[i].got - 1 - c[i].len, 0);
            if (k > 0) {
                c[i].len += (size_t)k;
                c[i].got[c[i].len] = 0;
            }
            if (k <= 0 || c[i].len == sizeof c[i].got - 1) {
                c[i].closed = 1;
                c[i].closed_at = now_s();
            }
        }
    }
    free(pf);
}

START_TEST(half_sent_requests_get_408_and_idle_connections_close_quietly)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ck_assert_msg(rl.rlim_cur > HALF_SENT + 200, "RLIMIT_NOFILE is %llu: too few for this test",
                  (unsigned long long)rl.rlim_cur);
    char ht[16], it[16];
    snprintf(ht, sizeof ht, "%d", HEADER_TIMEOUT_S);
    snprintf(it, sizeof it, "%d", IDLE_TIMEOUT_S);
    const char *const flags[] = {"--header-timeout", ht, "--idle-timeout", it, "--body-min-rate", "1024", NULL};
    serve(flags);

    const int n = HALF_SENT + SLOW_BODIES + IDLE_CONNS;
    watched_conn *c = calloc((size_t)n, sizeof *c);
    const char *half = "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic";
    const char *slow = "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       "Content-Length: 100000\r\n\r\n{\"seed\": ";
    const double t0 = now_s();
    for (int i = 0; i < n; i++) {
        c[i].fd = connect_to(&srv);
        if (i < HALF_SENT)
            send_all(c[i].fd, half, strlen(half));
        else if (i < HALF_SENT + SLOW_BODIES)
            send_all(c[i].fd, slow, strlen(slow));
    }
    const double sent = now_s();
    /* everyone else is still served at once */
    double worst = 0;
    for (int k = 0; k < 10; k++) {
        const double t = now_s();
        reply r = http_get(&srv, "/v1/health");
        expect_status(r, 200);
        reply_free(&r);
        if (now_s() - t > worst)
            worst = now_s() - t;
    }
    /* a request whose headers take half the deadline is served */
    int ok_fd = connect_to(&srv);
    const char *head1 = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n", *head2 = "Connection: close\r\n\r\n";
    send_all(ok_fd, head1, strlen(head1));
    usleep(HEADER_TIMEOUT_S * 500000);
    send_all(ok_fd, head2, strlen(head2));
    char *ok = read_all(ok_fd, 10);
    close(ok_fd);
    ck_assert_msg(!strncmp(ok, "HTTP/1.1 200", 12), "headers within the deadline: %.300s", ok);
    free(ok);
    fprintf(stderr, "%d connections opened in %.2f s (%d with half their headers, %d with a slow body, %d idle);"
                    " /v1/health took at most %.1f ms meanwhile\n",
            n, sent - t0, HALF_SENT, SLOW_BODIES, IDLE_CONNS, worst * 1e3);
    ck_assert_msg(worst < 1.0, "/v1/health took %.2f s with %d half-sent requests open", worst, HALF_SENT);

    /* the half-sent and the slow ones: hyperd's JSON 408 after the header deadline, then
     * the connection closed; the idle ones are left alone */
    drain(c, HALF_SENT + SLOW_BODIES, sent + HEADER_TIMEOUT_S + 8);
    double first = 1e9, last = 0;
    for (int i = 0; i < HALF_SENT + SLOW_BODIES; i++) {
        ck_assert_msg(c[i].closed, "connection %d (%s) is still open %.1f s after its request began", i,
                      i < HALF_SENT ? "half its headers" : "a slow body", now_s() - sent);
        expect_json_error(c[i].got, 408, i < HALF_SENT ? "headers did not arrive within 2 s" : "slower than");
        first = c[i].closed_at < first ? c[i].closed_at : first;
        last = c[i].closed_at > last ? c[i].closed_at : last;
    }
    fprintf(stderr, "408s: the first %.2f s, the last %.2f s after the requests were sent\n", first - sent,
            last - sent);
    ck_assert_msg(first - t0 >= HEADER_TIMEOUT_S - 0.05, "a 408 came %.2f s after the first byte, before the %d s"
                  " deadline", first - t0, HEADER_TIMEOUT_S);
    watched_conn *idle = c + HALF_SENT + SLOW_BODIES;
    drain(idle, IDLE_CONNS, sent + IDLE_TIMEOUT_S - 1.5);
    for (int i = 0; i < IDLE_CONNS; i++)
        ck_assert_msg(!idle[i].closed, "an idle connection was closed %.2f s after it opened, before the %d s"
                      " idle timeout", idle[i].closed_at - t0, IDLE_TIMEOUT_S);
    drain(idle, IDLE_CONNS, sent + IDLE_TIMEOUT_S + 5);
    for (int i = 0; i < IDLE_CONNS; i++) {
        ck_assert_msg(idle[i].closed, "an idle connection is still open %.1f s after it opened", now_s() - t0);
        ck_assert_msg(idle[i].len == 0, "an idle connection was sent bytes before it was closed: %.300s",
                      idle[i].got);
    }
    for (int i = 0; i < n; i++)
        close(c[i].fd);
    free(c);
    reply r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    reply_free(&r);
}
END_TEST

/* ---- many connections on one event thread ---------------------------------------------------- */

#define IDLE_MANY 2000
#define STREAMS_MANY 200
#define STREAM_CHARS 100

START_TEST(thousands_of_connections_need_no_threads)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    ck_assert_msg(rl.rlim_cur > IDLE_MANY + 3 * STREAMS_MANY + 100, "RLIMIT_NOFILE is %llu: too few for this test",
                  (unsigned long long)rl.rlim_cur);
    const char *const flags[] = {"--max-sessions", "1000", NULL};
    serve(flags);
    const long threads0 = proc_status(srv.pid, "Threads");
    int *idle = malloc(IDLE_MANY * sizeof *idle);
    for (int i = 0; i < IDLE_MANY; i++)
        idle[i] = connect_to(&srv);
    stream_call *st = calloc(STREAMS_MANY, sizeof *st);
    for (int k = 0; k < STREAMS_MANY; k++) {
        char id[ID_LEN + 1];
        session_new(&srv, k, id);
        stream_init(&st[k], &srv, id, k % 2, "{s:i}", "max_chars", STREAM_CHARS);
    }
    const double t0 = now_s();
    for (int k = 0; k < STREAMS_MANY; k++)
        stream_start(&st[k]);
    /* /v1/health all along, and the daemon's threads and memory */
    double worst = 0;
    long threads = 0, rss = 0;
    int running = 1, probes = 0;
    while (running) {
        const double t = now_s();
        reply r = http_get(&srv, "/v1/health");
        expect_status(r, 200);
        reply_free(&r);
        worst = now_s() - t > worst ? now_s() - t : worst;
        probes++;
        const long th = proc_status(srv.pid, "Threads"), kb = proc_status(srv.pid, "VmRSS");
        threads = th > threads ? th : threads;
        rss = kb > rss ? kb : rss;
        running = 0;
        for (int k = 0; k < STREAMS_MANY; k++)
            running |= !atomic_load(&st[k].finished);
        usleep(20000);
    }
    const double took = now_s() - t0;
    int ok = 0;
    for (int k = 0; k < STREAMS_MANY; k++) {
        stream_join(&st[k]);
        expect_stream_done(&st[k], "length");
        ck_assert_int_eq(json_integer_value(json_object_get(st[k].done, "chars")), STREAM_CHARS);
        ok++;
        stream_free(&st[k]);
    }
    /* the idle connections are all still there, and were never answered */
    int still = 0;
    for (int i = 0; i < IDLE_MANY; i++) {
        struct pollfd pf = {idle[i], POLLIN, 0};
        still += poll(&pf, 1, 0) == 0;
        close(idle[i]);
    }
    fprintf(stderr, "%d idle connections and %d streams of %d characters: all %d streams done in %.2f s, %d idle"
                    " still open; /v1/health %d times, the slowest %.1f ms; daemon threads %ld before, at most %ld;"
                    " RSS at most %ld kB\n",
            IDLE_MANY, STREAMS_MANY, STREAM_CHARS, ok, took, still, probes, worst * 1e3, threads0, threads, rss);
    ck_assert_int_eq(still, IDLE_MANY);
    ck_assert_msg(threads <= threads0 + 4, "the daemon went from %ld to %ld threads for %d connections", threads0,
                  threads, IDLE_MANY + STREAMS_MANY);
    ck_assert_msg(rss < (1L << 20), "the daemon's RSS reached %ld kB", rss);
    ck_assert_msg(worst < 1.0, "/v1/health took %.2f s", worst); /* the figure is in make bench */
    free(idle);
    free(st);
}
END_TEST

Suite *http_edges_suite(void)
{
    Suite *s = suite_create("http_edges");
    TCase *tc = tcase_create("http_edges");
    tcase_add_checked_fixture(tc, setup_plain, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_half_closed_request_gets_its_whole_reply);
    tcase_add_test(tc, nul_and_control_characters_in_a_path_get_400);
    tcase_add_test(tc, a_body_framed_two_ways_gets_400);
    tcase_add_test(tc, an_unknown_path_is_answered_before_its_body);
    tcase_add_test(tc, urls_and_headers_past_the_limits_get_json_errors);
    tcase_add_test(tc, a_second_daemon_on_a_taken_port_exits);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlines");
    tcase_add_checked_fixture(tc, setup_root, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, half_sent_requests_get_408_and_idle_connections_close_quietly);
    tcase_add_test(tc, thousands_of_connections_need_no_threads);
    suite_add_tcase(s, tc);
    return s;
}
