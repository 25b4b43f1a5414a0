/*
 * test_http_edges.c — HTTP edges of hyperd (issue 14) over raw sockets, as a hostile or
 * unusual client sends them: a request whose sender shuts its write side, %00 and control
 * characters in a path, bodies framed two ways, an unknown path with a large body, URLs and
 * headers past hyperd's limits (answered in its JSON error shape, not libmicrohttpd's HTML),
 * and a second daemon on a port already taken.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    return s;
}
