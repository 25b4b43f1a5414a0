/*
 * test_openapi.c — the API document against the router, both ways: every route hyperd
 * serves (hyperd --list-routes) is in GET /v1/openapi.json with its method, and every
 * path and method the document lists is a route.  Then each documented operation is
 * called on a real daemon on loopback: none may answer "no such route" (404 from the
 * router) or 405.  Also: the served document is the one in the repository, and it is a
 * well-formed OpenAPI 3 object whose $refs all resolve.
 */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ROUTES 128

static const char *hyperd(void)
{
    const char *h = getenv("HYPERD");
    return h && *h ? h : "build/hyperd";
}

typedef struct {
    char method[8];
    char pattern[128];            /* the router's form: {} for a parameter */
} route;

/* The router's table, from hyperd --list-routes. */
static int list_routes(route *out, int max)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --list-routes", hyperd());
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run %s", cmd);
    int n = 0;
    char line[256];
    while (n < max && fgets(line, sizeof line, p))
        if (sscanf(line, "%7s %127s", out[n].method, out[n].pattern) == 2)
            n++;
    ck_assert_int_eq(pclose(p), 0);
    return n;
}

/* "/v1/jobs/{id}/events" → "/v1/jobs/{}/events". */
static void to_pattern(const char *path, char *out, size_t n)
{
    size_t o = 0;
    for (const char *s = path; *s && o + 3 < n; s++) {
        if (*s == '{') {
            out[o++] = '{';
            out[o++] = '}';
            while (*s && *s != '}')
                s++;
            if (!*s)
                break;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = 0;
}

static void upper(const char *s, char *out)
{
    int k = 0;
    for (; s[k] && k < 7; k++)
        out[k] = (char)(s[k] >= 'a' && s[k] <= 'z' ? s[k] - 32 : s[k]);
    out[k] = 0;
}

static json_t *load_document(void)
{
    json_error_t e;
    json_t *doc = json_load_file("api/openapi.json", JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(doc != NULL, "api/openapi.json: %s (line %d)", e.text, e.line);
    return doc;
}

START_TEST(document_and_router_agree)
{
    route routes[MAX_ROUTES];
    int n = list_routes(routes, MAX_ROUTES);
    ck_assert_msg(n > 10, "hyperd --list-routes printed %d routes", n);
    json_t *doc = load_document();
    json_t *paths = json_object_get(doc, "paths");
    ck_assert(json_is_object(paths));
    int found[MAX_ROUTES] = {0};
    const char *path;
    json_t *ops;
    int documented = 0;
    json_object_foreach(paths, path, ops) {
        char pat[256];
        to_pattern(path, pat, sizeof pat);
        const char *m;
        json_t *op;
        json_object_foreach(ops, m, op) {
            char M[8];
            upper(m, M);
            int hit = -1;
            for (int k = 0; k < n && hit < 0; k++)
                if (!strcmp(routes[k].method, M) && !strcmp(routes[k].pattern, pat))
                    hit = k;
            ck_assert_msg(hit >= 0, "the document lists %s %s, which hyperd does not route", M, path);
            found[hit] = 1;
            documented++;
            ck_assert_msg(json_is_object(json_object_get(op, "responses")), "%s %s has no responses", M, path);
        }
    }
    for (int k = 0; k < n; k++)
        ck_assert_msg(found[k], "hyperd routes %s %s, which the document does not list", routes[k].method,
                      routes[k].pattern);
    ck_assert_int_eq(documented, n);
    json_decref(doc);
}
END_TEST

/* Every "$ref" names a schema or response that exists. */
static void check_refs(json_t *doc, json_t *node)
{
    if (json_is_object(node)) {
        const char *k;
        json_t *v;
        json_object_foreach(node, k, v) {
            if (!strcmp(k, "$ref") && json_is_string(v)) {
                const char *ref = json_string_value(v);
                ck_assert_msg(!strncmp(ref, "#/components/", 13), "$ref %s is not local", ref);
                char kind[64], name[128];
                ck_assert(sscanf(ref + 13, "%63[^/]/%127s", kind, name) == 2);
                json_t *target = json_object_get(json_object_get(json_object_get(doc, "components"), kind), name);
                ck_assert_msg(target != NULL, "$ref %s resolves to nothing", ref);
            } else {
                check_refs(doc, v);
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) check_refs(doc, v);
    }
}

START_TEST(document_is_openapi_3)
{
    json_t *doc = load_document();
    const char *v = json_string_value(json_object_get(doc, "openapi"));
    ck_assert_msg(v && !strncmp(v, "3.", 2), "openapi version %s", v ? v : "(none)");
    ck_assert(json_is_object(json_object_get(doc, "info")));
    ck_assert(json_is_object(json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Error")));
    check_refs(doc, doc);
    json_decref(doc);
}
END_TEST

/* ---- against a running daemon ------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
} buf;

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    buf *b = user;
    char *d = realloc(b->data, b->len + size * n + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, size * n);
    b->data = d;
    b->len += size * n;
    d[b->len] = 0;
    return size * n;
}

/* One request; returns the status and fills body (caller frees). */
static long call(const char *base, const char *method, const char *path, const char *json, buf *body)
{
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (json)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    if (!strcmp(method, "GET") && strstr(path, "/events"))
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 300L); /* a stream: the status is enough */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    long status = 0;
    curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

START_TEST(every_documented_operation_is_served)
{
    char dir[] = "/tmp/hyperd-openapi-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        char data[128], web[64] = "clients/web";
        snprintf(data, sizeof data, "%s/data", dir);
        execl(hyperd(), hyperd(), "--port", "0", "--models", "models", "--data-dir", data, "--web-dir", web,
              "--train-workers", "0", "--log-level", "error", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    unsigned port = 0;
    while (fgets(line, sizeof line, f) && sscanf(line, "hyperd listening on http://127.0.0.1:%u", &port) != 1)
        ;
    ck_assert_msg(port > 0, "hyperd did not start: %s", line);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", port);

    /* the served document is the repository's */
    buf served = {0};
    ck_assert_int_eq(call(base, "GET", "/v1/openapi.json", NULL, &served), 200);
    json_error_t e;
    json_t *live = json_loads(served.data, 0, &e), *doc = load_document();
    ck_assert_msg(live != NULL, "served document: %s", e.text);
    ck_assert_msg(json_equal(live, doc), "GET /v1/openapi.json differs from api/openapi.json");
    free(served.data);

    /* every operation, with made-up ids: the router must take it (a 404 then comes from the
     * handler, with a message that is not the router's "no such route") */
    const char *path;
    json_t *ops;
    json_object_foreach(json_object_get(doc, "paths"), path, ops) {
        char concrete[256];
        size_t o = 0;
        for (const char *s = path; *s && o < sizeof concrete - 20; s++) {
            if (*s == '{') {
                o += (size_t)snprintf(concrete + o, sizeof concrete - o, "x0");
                while (*s && *s != '}')
                    s++;
            } else {
                concrete[o++] = *s;
            }
        }
        concrete[o] = 0;
        const char *m;
        json_t *op;
        json_object_foreach(ops, m, op) {
            char M[8];
            upper(m, M);
            buf body = {0};
            long st = call(base, M, concrete, !strcmp(M, "POST") ? "{}" : NULL, &body);
            ck_assert_msg(st != 405 && st != 0, "%s %s → %ld", M, concrete, st);
            ck_assert_msg(!(st == 404 && body.data && strstr(body.data, "no such route")),
                          "%s %s is documented but not routed: %s", M, concrete, body.data);
            free(body.data);
        }
    }
    json_decref(live);
    json_decref(doc);
    kill(pid, SIGTERM);
    int ws = 0;
    waitpid(pid, &ws, 0);
    fclose(f);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "hyperd did not stop cleanly");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("openapi");
    TCase *tc = tcase_create("document");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, document_and_router_agree);
    tcase_add_test(tc, document_is_openapi_3);
    tcase_add_test(tc, every_documented_operation_is_served);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
