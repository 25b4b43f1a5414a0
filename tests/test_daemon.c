/*
 * test_daemon.c — black-box tests of hyperd's core endpoints (system, sessions, streaming,
 * batching, authentication, limits, restarts and shutdown); handwriting is in
 * test_api_handwriting.c, datasets, jobs and classifiers in test_api_jobs.c, faults in
 * test_faults.c, HTTP edges in test_http_edges.c, all on daemon_fixture.  Each test case
 * starts the real binary
 * ($HYPERD, else build/hyperd) on a free loopback port with a temporary data directory and
 * a tiny model written here with the engine, and talks HTTP to it with libcurl, as a
 * user's curl would.  Every endpoint's success and error paths, streaming (SSE and NDJSON),
 * continuation, fork, batching determinism, cancellation on disconnect, restarts,
 * graceful shutdown, authentication and every limit; handwriting (a second tiny model, of
 * pen strokes) through its own endpoint and through sessions; datasets and training jobs
 * (uploads, job events, cancel, a queue behind one worker, resume after kill -9 or SIGTERM);
 * digit classifiers (a net trained here on the repository's MNIST digits, and the paper's
 * hyperconv) through classify, as numbers and as PNGs, their kernels, and classifier jobs.
 *
 * Where a result can be computed independently, it is: the text a seed gives, the bits
 * per character of a text and a primed drawing are recomputed here from the model files
 * with the engine itself; a dataset's checksum by sha256sum; the model of a job that was
 * interrupted and resumed against the same job run without a stop; a classifier's
 * probabilities by the engine from its file, and its parameter counts by hand.
 *
 * The daemons of a test case are started by unchecked fixtures, in the runner's process;
 * the tests run in forked children and only talk to them.  Tests of restarts, idle expiry
 * and shutdown start their own.  Every daemon is started with PR_SET_PDEATHSIG, so none
 * outlives the process that started it, even when a test fails half-way.
 *
 * The model steps in some 20 µs, so "long" generations here are 10^4..10^6 characters.
 * Races are provoked rather than hoped for: several clients at once, many repetitions.
 */
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "classifier.h"
#include "handwriting.h"
#include "images.h"
#include "mdn.h"
#include "model.h"
#include "sampler.h"
#include "strokes.h"
#include "trainer.h"
#include "vocab.h"

#include "daemon_fixture.h"

/* ==== system: health, readiness, metrics, models, routing ================================= */
START_TEST(health_and_ready)
{
    reply r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    ck_assert_msg(strncmp(r.content_type, "application/json", 16) == 0, "Content-Type %s",
                  r.content_type);
    ck_assert_str_eq(jstr(r, "status"), "ok");
    reply_free(&r);
    r = http_get(&srv, "/v1/health/"); /* a trailing slash is the same route */
    expect_status(r, 200);
    reply_free(&r);
    r = http_get(&srv, "/v1/ready");
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "status"), "ready");
    ck_assert_int_eq(jint(r, "models"), 1);
    reply_free(&r);
}
END_TEST

START_TEST(metrics_count_requests)
{
    const char *series = "hyperd_requests_total{route=\"health\",status=\"200\"}";
    reply m = http_get(&srv, "/metrics");
    expect_status(m, 200);
    ck_assert_msg(strncmp(m.content_type, "text/plain", 10) == 0, "Content-Type %s", m.content_type);
    static const char *const families[] = {
        "# TYPE hyperd_requests_total counter", "# TYPE hyperd_sessions_active gauge",
        "# TYPE hyperd_chars_generated_total counter", "# TYPE hyperd_batch_size histogram",
        "# TYPE hyperd_step_seconds histogram", "process_resident_memory_bytes ",
        "hyperd_batch_size_bucket{model=\"charlm\",le=\"+Inf\"} ",
        "hyperd_chars_generated_total{model=\"charlm\"} "};
    for (size_t k = 0; k < sizeof families / sizeof families[0]; k++)
        ck_assert_msg(strstr(m.body, families[k]) != NULL, "/metrics lacks '%s':\n%s", families[k],
                      m.body);
    double before = metric(m.body, series);
    double sessions = metric(m.body, "hyperd_sessions_active");
    double chars = metric(m.body, "hyperd_chars_generated_total{model=\"charlm\"}");
    reply_free(&m);
    reply h = http_get(&srv, "/v1/health");
    reply_free(&h);
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    free(generate(&srv, id, 25, -1));
    /* a request is counted once it has completed, which may be just after its reply */
    double after = -1, sessions_after = -1, chars_after = -1;
    for (double t0 = now_s(); now_s() - t0 < 2;) {
        m = http_get(&srv, "/metrics");
        after = metric(m.body, series);
        sessions_after = metric(m.body, "hyperd_sessions_active");
        chars_after = metric(m.body, "hyperd_chars_generated_total{model=\"charlm\"}");
        reply_free(&m);
        if (after == (before < 0 ? 0 : before) + 1)
            break;
        sleep_ms(20);
    }
    ck_assert_msg(after == (before < 0 ? 0 : before) + 1, "%s went from %g to %g after one request",
                  series, before, after);
    ck_assert_msg(sessions_after == sessions + 1, "hyperd_sessions_active %g -> %g", sessions,
                  sessions_after);
    ck_assert_msg(chars_after == chars + 25, "hyperd_chars_generated_total %g -> %g after 25", chars,
                  chars_after);
}
END_TEST

START_TEST(unknown_routes_404_wrong_methods_405)
{
    /* (GET / is the demo page: api/static.c) */
    static const char *const paths[] = {"/nope", "/v1", "/v1/nope", "/v2/health", "/v1/healthz",
                                        "/v1/sessions/abc/nope", "/v1/sessions/abc/generate/x",
                                        "/v1/models/charlm/x"};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        reply r = http_get(&srv, paths[k]);
        expect_error(r, 404, "not_found", paths[k]);
        reply_free(&r);
    }
    static const struct {
        const char *method, *path, *allow;
    } wrong[] = {
        {"PUT", "/v1/health", "GET"},
        {"POST", "/v1/models", "GET"},
        {"DELETE", "/v1/sessions", "POST, GET"},
        {"GET", "/v1/sessions/0123456789abcdef0123456789abcdef/generate", "POST"},
        {"PATCH", "/v1/sessions/0123456789abcdef0123456789abcdef", "GET, DELETE"},
        {"GET", "/v1/sessions/0123456789abcdef0123456789abcdef/fork", "POST"},
    };
    for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++) {
        reply r = http_req(&srv, wrong[k].method, wrong[k].path, NULL, NULL);
        expect_error(r, 405, "method_not_allowed", wrong[k].method);
        ck_assert_msg(strcmp(r.allow, wrong[k].allow) == 0, "%s: Allow '%s', want '%s'", r.what,
                      r.allow, wrong[k].allow);
        reply_free(&r);
    }
}
END_TEST

START_TEST(models_list_and_get)
{
    char err[HYPER_ERRMSG_MAX];
    vocab v;
    ck_assert(vocab_build(&v, CORPUS, strlen(CORPUS), err) == HYPER_OK);
    size_t vlen = 0;
    char *chars = vocab_to_utf8(&v, &vlen);
    reply r = http_get(&srv, "/v1/models");
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "default"), "charlm");
    json_t *list = json_object_get(r.json, "models");
    ck_assert_msg(json_is_array(list) && json_array_size(list) == 1, "models: %s", r.body);
    reply one = http_get(&srv, "/v1/models/charlm");
    expect_status(one, 200);
    ck_assert_msg(json_equal(json_array_get(list, 0), one.json), "the list says %s, the model %s",
                  r.body, one.body);
    ck_assert_str_eq(jstr(one, "name"), "charlm");
    ck_assert_str_eq(jstr(one, "cell"), "lnhyperlstm");
    ck_assert_int_eq(jint(one, "layers"), 1);
    ck_assert_int_eq(jint(one, "units"), 32);
    ck_assert_int_eq(jint(one, "hyper_units"), 16);
    ck_assert_int_eq(jint(one, "embedding_size"), 4);
    ck_assert_int_eq(jint(one, "vocabulary_size"), v.size);
    ck_assert_str_eq(jstr(one, "vocabulary"), chars);
    model_config cfg = {CELL_LNHYPERLSTM, 1, 32, 16, 4, 0, v.size};
    ck_assert_int_eq(jint(one, "parameters"), (json_int_t)model_param_count(&cfg));
    reply_free(&one);
    reply_free(&r);
    r = http_get(&srv, "/v1/models/nope");
    expect_error(r, 404, "not_found", "nope");
    reply_free(&r);
    free(chars);
    vocab_free(&v);
}
END_TEST

START_TEST(no_api_key_needed_when_none_is_set)
{
    reply r = http_get(&srv, "/v1/models");
    expect_status(r, 200);
    reply_free(&r);
    req_opts o = {.auth = "Bearer anything"};
    r = http_req(&srv, "GET", "/v1/models", NULL, &o);
    expect_status(r, 200);
    reply_free(&r);
    r = http_req(&srv, "POST", "/v1/sessions", "{}", &o);
    expect_status(r, 201);
    reply_free(&r);
}
END_TEST

/* ==== sessions: create, get, list, delete, feed, generate, fork, reset ===================== */


START_TEST(session_create_get_delete)
{
    reply r = http_post(&srv, "/v1/sessions", NULL); /* no body at all: {} */
    expect_status(r, 201);
    reply_free(&r);
    r = http_post(&srv, "/v1/sessions", "{\"model\": \"charlm\", \"seed\": 3}");
    expect_status(r, 201);
    char id[ID_LEN + 1];
    snprintf(id, sizeof id, "%s", jstr(r, "id"));
    ck_assert_str_eq(jstr(r, "model"), "charlm");
    ck_assert_msg(iso_utc_ms(jstr(r, "created_at")), "created_at '%s'", jstr(r, "created_at"));
    reply_free(&r);

    r = http_get(&srv, at(id, "").s);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "id"), id);
    ck_assert_str_eq(jstr(r, "model"), "charlm");
    ck_assert_int_eq(jint(r, "chars_seen"), 0);
    ck_assert_msg(json_is_false(json_object_get(r.json, "busy")), "busy: %s", r.body);
    ck_assert_msg(iso_utc_ms(jstr(r, "last_used_at")), "last_used_at: %s", r.body);
    reply_free(&r);

    r = http_req(&srv, "DELETE", at(id, "").s, NULL, NULL);
    expect_status(r, 204);
    ck_assert_msg(r.len == 0, "204 with a body: %s", r.body);
    reply_free(&r);
    r = http_get(&srv, at(id, "").s);
    expect_error(r, 404, "not_found", id);
    reply_free(&r);
    r = http_req(&srv, "DELETE", at(id, "").s, NULL, NULL);
    expect_error(r, 404, "not_found", id);
    reply_free(&r);
    r = http_get(&srv, "/v1/sessions/not-a-session-id");
    expect_error(r, 404, "not_found", "not-a-session-id");
    reply_free(&r);
}
END_TEST

START_TEST(session_create_rejects_bad_requests)
{
    reply before = http_get(&srv, "/v1/sessions");
    expect_status(before, 200);
    static const struct {
        const char *body;
        int status;
        const char *type, *part;
    } bad[] = {
        {"{\"model\": \"nope\"}", 404, "not_found", "nope"},
        {"{\"model\": 5}", 400, "invalid_request", "model"},
        {"{\"seed\": -1}", 400, "invalid_request", "seed"},
        {"{\"seed\": \"1\"}", 400, "invalid_request", "seed"},
        {"{\"seed\": 1.5}", 400, "invalid_request", "seed"},
        {"{\"sead\": 1}", 400, "invalid_request", "sead"},
        {"{\"seed\": 1, \"seed\": 2}", 400, "invalid_request", "JSON"},
        {"{\"seed\": 1", 400, "invalid_request", "JSON"},
        {"not json", 400, "invalid_request", "JSON"},
        {"[]", 400, "invalid_request", "object"},
        {"\"a string\"", 400, "invalid_request", ""},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        reply r = http_post(&srv, "/v1/sessions", bad[k].body);
        expect_error(r, bad[k].status, bad[k].type, bad[k].part);
        reply_free(&r);
    }
    static const char *const types[] = {"text/plain", "application/x-www-form-urlencoded",
                                        "application/jsonx"};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        req_opts o = {.content_type = types[k]};
        reply r = http_req(&srv, "POST", "/v1/sessions", "{}", &o);
        expect_error(r, 415, "unsupported_media_type", "application/json");
        reply_free(&r);
    }
    req_opts o = {.content_type = "application/json; charset=utf-8"};
    reply r = http_req(&srv, "POST", "/v1/sessions", "{}", &o);
    expect_status(r, 201);
    reply_free(&r);
    reply after = http_get(&srv, "/v1/sessions");
    ck_assert_msg(jint(after, "total") == jint(before, "total") + 1,
                  "refused requests changed the session count: %lld -> %lld",
                  (long long)jint(before, "total"), (long long)jint(after, "total"));
    reply_free(&before);
    reply_free(&after);
}
END_TEST

START_TEST(sessions_list_pages)
{
    char ids[5][ID_LEN + 1];
    for (int k = 0; k < 5; k++)
        session_new(&srv, -1, ids[k]);
    /* walk every page of 2; our five appear once each, in creation order */
    json_int_t total = -1;
    int found = 0, pages = 0;
    for (int offset = 0;; offset += 2) {
        char path[80];
        snprintf(path, sizeof path, "/v1/sessions?limit=2&offset=%d", offset);
        reply r = http_get(&srv, path);
        expect_status(r, 200);
        json_t *list = json_object_get(r.json, "sessions");
        ck_assert_msg(json_is_array(list) && json_array_size(list) <= 2, "page: %s", r.body);
        ck_assert_int_eq(jint(r, "limit"), 2);
        ck_assert_int_eq(jint(r, "offset"), offset);
        if (total < 0)
            total = jint(r, "total");
        ck_assert_int_eq(jint(r, "total"), total);
        pages++;
        size_t k;
        json_t *s;
        json_array_foreach(list, k, s) {
            const char *id = json_string_value(json_object_get(s, "id"));
            ck_assert_msg(id && json_is_integer(json_object_get(s, "chars_seen")) &&
                              json_is_boolean(json_object_get(s, "busy")),
                          "listed session: %s", r.body);
            for (int m = 0; m < 5; m++)
                if (strcmp(id, ids[m]) == 0) {
                    ck_assert_msg(m == found, "%s listed out of order or twice", id);
                    found++;
                }
        }
        size_t n = json_array_size(list);
        reply_free(&r);
        if (n < 2) {
            ck_assert_int_eq(offset + (int)n, total);
            break;
        }
        ck_assert_msg(pages < 1000, "the pages never end");
    }
    ck_assert_int_eq(found, 5);
    reply r = http_get(&srv, "/v1/sessions?offset=100000");
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "sessions")), 0);
    reply_free(&r);
    static const char *const bad[][2] = {
        {"/v1/sessions?limit=0", "limit"},  {"/v1/sessions?limit=1001", "limit"},
        {"/v1/sessions?limit=x", "limit"},  {"/v1/sessions?limit=", "limit"},
        {"/v1/sessions?offset=-1", "offset"}, {"/v1/sessions?offset=1.5", "offset"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        r = http_get(&srv, bad[k][0]);
        expect_error(r, 400, "invalid_request", bad[k][1]);
        reply_free(&r);
    }
    for (int k = 0; k < 5; k++) {
        r = http_req(&srv, "DELETE", at(ids[k], "").s, NULL, NULL);
        expect_status(r, 204);
        reply_free(&r);
    }
}
END_TEST

START_TEST(feed_counts_and_scores)
{
    const char *text = "Hello, world! The lazy dog.";
    char a[ID_LEN + 1], b[ID_LEN + 1];
    session_new(&srv, 1, a);
    session_new(&srv, 2, b);
    reply r = http_postf(&srv, at(a, "/feed").s, "{s:s}", "text", text);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "chars"), (json_int_t)strlen(text));
    double bpc = jnum(r, "bits_per_char");
    reply_free(&r);
    ref_model ref;
    ref_open(&ref);
    double want = ref_feed(&ref, text) / (double)strlen(text);
    ref_close(&ref);
    ck_assert_msg(fabs(bpc - want) < 1e-6 * want, "bits_per_char %.9f, the engine says %.9f", bpc,
                  want);
    json_int_t seen;
    session_state(&srv, a, &seen, NULL);
    ck_assert_int_eq(seen, (json_int_t)strlen(text));

    /* fed in two parts, the state is the same: so is what follows */
    r = http_postf(&srv, at(b, "/feed").s, "{s:s}", "text", "Hello, world!");
    expect_status(r, 200);
    reply_free(&r);
    r = http_postf(&srv, at(b, "/feed").s, "{s:s}", "text", " The lazy dog.");
    expect_status(r, 200);
    reply_free(&r);
    session_state(&srv, b, &seen, NULL);
    ck_assert_int_eq(seen, (json_int_t)strlen(text));
    char *ta = generate(&srv, a, 40, 9), *tb = generate(&srv, b, 40, 9);
    expect_same_text(tb, ta, "after the same text fed in two parts");
    free(ta);
    free(tb);

    r = http_postf(&srv, at(a, "/feed").s, "{s:s}", "text", "");
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "chars"), 0);
    ck_assert_msg(json_is_null(json_object_get(r.json, "bits_per_char")), "empty feed: %s", r.body);
    reply_free(&r);
}
END_TEST



START_TEST(feed_rejects_bad_requests)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    static const bad_body bad[] = {
        {"{}", "text"},
        {"{\"text\": 5}", "text"},
        {"{\"text\": null}", "text"},
        {"{\"text\": \"caf\\u00e9\"}", "U+00E9"},
        {"{\"text\": \"tilde ~\"}", "U+007E"},
        {"{\"text\": \"a\", \"txt\": \"a\"}", "txt"},
        {"{\"text\": \"a\"", "JSON"},
    };
    expect_refusals(id, "/feed", bad, sizeof bad / sizeof bad[0], "{\"text\": \"a\"}");
}
END_TEST

START_TEST(generate_returns_text_and_timings)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    reply r = http_postf(&srv, at(id, "/generate").s, "{s:i}", "max_chars", 50);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "finish_reason"), "length");
    ck_assert_int_eq(jint(r, "chars"), 50);
    const char *text = jstr(r, "text");
    ck_assert_int_eq(strlen(text), 50);
    ck_assert_msg(strspn(text, CORPUS) == 50, "'%s' has characters outside the vocabulary", text);
    json_t *t = json_object_get(r.json, "timings");
    static const char *const keys[] = {"queued_ms", "prompt_ms", "generate_ms", "total_ms",
                                       "first_char_ms", "chars_per_second"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        json_t *v = json_object_get(t, keys[k]);
        ck_assert_msg(json_is_number(v) && json_number_value(v) >= 0, "timings.%s in %s", keys[k],
                      r.body);
    }
    /* a fresh session reads a newline first, then each of its 50 characters */
    ck_assert_msg(json_integer_value(json_object_get(t, "steps")) == 51, "timings.steps: %s", r.body);
    ck_assert_msg(json_number_value(json_object_get(t, "total_ms")) >=
                      json_number_value(json_object_get(t, "first_char_ms")),
                  "first_char_ms after total_ms: %s", r.body);
    reply_free(&r);
    json_int_t seen;
    session_state(&srv, id, &seen, NULL);
    ck_assert_int_eq(seen, 51);

    r = http_postf(&srv, at(id, "/generate").s, "{s:i}", "max_chars", 0);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "text"), "");
    ck_assert_int_eq(jint(r, "chars"), 0);
    reply_free(&r);
    r = http_postf(&srv, at(id, "/generate").s, "{s:s, s:i}", "prompt", "Hello", "max_chars", 7);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "chars"), 7);
    reply_free(&r);
    session_state(&srv, id, &seen, NULL);
    ck_assert_int_eq(seen, 51 + 5 + 7);

    r = http_post(&srv, at(id, "/generate").s, "{}"); /* the default length */
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "chars"), 200);
    reply_free(&r);
}
END_TEST

START_TEST(generation_matches_the_engine)
{
    char id[ID_LEN + 1];
    session_new(&srv, 42, id);
    reply r = http_postf(&srv, at(id, "/generate").s, "{s:s, s:i, s:f, s:i, s:f}", "prompt",
                         "Hello", "max_chars", 120, "temperature", 0.8, "top_k", 12, "top_p", 0.9);
    expect_status(r, 200);
    ref_model ref;
    ref_open(&ref);
    ref_feed(&ref, "Hello");
    sampler_params sp = {0.8, 12, 0.9};
    hyper_rng rng;
    hyper_rng_seed(&rng, 42);
    char *want = ref_generate(&ref, 120, &sp, &rng);
    expect_same_text(jstr(r, "text"), want, "the engine's text for seed 42 after 'Hello'");
    free(want);
    ref_close(&ref);
    reply_free(&r);
}
END_TEST

START_TEST(generate_rejects_bad_requests)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    static const bad_body bad[] = {
        {"{\"max_chars\": -1}", "max_chars"},
        {"{\"max_chars\": 100001}", "max_chars"},
        {"{\"max_chars\": 1.5}", "max_chars"},
        {"{\"max_chars\": \"10\"}", "max_chars"},
        {"{\"temperature\": -1}", "temperature"},
        {"{\"temperature\": 101}", "temperature"},
        {"{\"temperature\": \"hot\"}", "temperature"},
        {"{\"top_p\": 0}", "top_p"},
        {"{\"top_p\": -0.5}", "top_p"},
        {"{\"top_p\": 1.5}", "top_p"},
        {"{\"top_k\": -1}", "top_k"},
        {"{\"top_k\": 1000}", "top_k"},
        {"{\"top_k\": 2.5}", "top_k"},
        {"{\"seed\": -5}", "seed"},
        {"{\"seed\": 1.5}", "seed"},
        {"{\"stream\": \"yes\"}", "stream"},
        {"{\"stream\": 1}", "stream"},
        {"{\"prompt\": 5}", "prompt"},
        {"{\"prompt\": \"caf\\u00e9\"}", "U+00E9"},
        {"{\"prompt\": \"a\\u0000b\"}", ""},
        {"{\"prompt\": \"\xff\xfe\"}", "JSON"},
        {"{\"prompt\": \"\\ud800\"}", "JSON"},
        {"{\"stop\": 5}", "stop"},
        {"{\"stop\": [\"\"]}", "stop"},
        {"{\"stop\": [\"a\", 1]}", "stop[1]"},
        {"{\"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}", "stop"},
        {"{\"max_tokens\": 5}", "max_tokens"},
        {"{\"prompt\": \"Hi\"", "JSON"},
        {"{\"prompt\": \"a\", \"prompt\": \"b\"}", "JSON"},
        {"[1, 2]", "object"},
        {"null", ""},
    };
    expect_refusals(id, "/generate", bad, sizeof bad / sizeof bad[0], "{}");
    free(generate(&srv, id, 5, -1));
}
END_TEST

START_TEST(generate_stops_at_a_stop_string)
{
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1];
    session_new(&srv, 5, a);
    session_new(&srv, 5, b);
    session_new(&srv, 5, c);
    char *text = generate(&srv, a, 200, -1);
    char stop[3] = {text[60], text[61], 0};
    size_t cut = (size_t)(strstr(text, stop) - text);
    char *want = strndup(text, cut);
    reply r = http_postf(&srv, at(b, "/generate").s, "{s:i, s:[s, s]}", "max_chars", 200, "stop",
                         "@@", stop);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r, "finish_reason"), "stop");
    expect_same_text(jstr(r, "text"), want, "text before the stop string");
    ck_assert_int_eq(jint(r, "chars"), (json_int_t)cut + 2);
    reply_free(&r);
    /* streamed, the tail that might begin the stop string is held back, then dropped */
    stream_call s;
    stream_init(&s, &srv, c, 0, "{s:i, s:s}", "max_chars", 200, "stop", stop);
    stream_run(&s);
    expect_stream_done(&s, "stop");
    expect_same_text(s.text, want, "streamed text before the stop string");
    stream_free(&s);
    free(want);
    free(text);
}
END_TEST

START_TEST(greedy_generation_ignores_the_seed)
{
    char a[ID_LEN + 1], b[ID_LEN + 1];
    session_new(&srv, 1, a);
    session_new(&srv, 2, b);
    reply ra = http_postf(&srv, at(a, "/generate").s, "{s:i, s:i}", "max_chars", 60, "temperature", 0);
    reply rb = http_postf(&srv, at(b, "/generate").s, "{s:i, s:i, s:i}", "max_chars", 60,
                          "temperature", 0, "seed", 77);
    expect_status(ra, 200);
    expect_status(rb, 200);
    expect_same_text(jstr(rb, "text"), jstr(ra, "text"), "greedy text with another seed");
    reply_free(&ra);
    reply_free(&rb);
    /* and sampling does depend on it */
    session_new(&srv, 1, a);
    session_new(&srv, 2, b);
    char *ta = generate(&srv, a, 60, -1), *tb = generate(&srv, b, 60, -1);
    ck_assert_msg(strcmp(ta, tb) != 0, "seeds 1 and 2 gave the same text '%s'", ta);
    free(ta);
    free(tb);
}
END_TEST

START_TEST(generation_continues_across_calls)
{
    /* the sampler draws from the session's generator, which persists between calls:
     * 20 + 20 characters without reseeding in between are the 40 of one call */
    char one[ID_LEN + 1], two[ID_LEN + 1];
    session_new(&srv, -1, one);
    session_new(&srv, -1, two);
    char *whole = generate(&srv, one, 40, 7);
    char *first = generate(&srv, two, 20, 7);
    char *second = generate(&srv, two, 20, -1);
    char joined[41];
    snprintf(joined, sizeof joined, "%s%s", first, second);
    expect_same_text(joined, whole, "20 + 20 characters");
    json_int_t s1, s2;
    session_state(&srv, one, &s1, NULL);
    session_state(&srv, two, &s2, NULL);
    ck_assert_int_eq(s1, 41);
    ck_assert_int_eq(s2, 41);
    /* a seed given again restarts the generator but not the state: other text */
    char *again = generate(&srv, two, 20, 7);
    ck_assert_msg(strcmp(again, first) != 0, "reseeding a used session repeated '%s'", first);
    free(whole);
    free(first);
    free(second);
    free(again);
}
END_TEST

START_TEST(fork_copies_state_and_generator)
{
    char src[ID_LEN + 1];
    session_new(&srv, 3, src);
    reply r = http_postf(&srv, at(src, "/feed").s, "{s:s}", "text", "Hello");
    expect_status(r, 200);
    reply_free(&r);
    r = http_post(&srv, at(src, "/fork").s, NULL);
    expect_status(r, 201);
    char f1[ID_LEN + 1];
    snprintf(f1, sizeof f1, "%s", jstr(r, "id"));
    ck_assert_str_ne(f1, src);
    ck_assert_str_eq(jstr(r, "forked_from"), src);
    ck_assert_str_eq(jstr(r, "model"), "charlm");
    ck_assert_int_eq(jint(r, "chars_seen"), 5);
    reply_free(&r);
    r = http_post(&srv, at(src, "/fork").s, "{}");
    expect_status(r, 201);
    char f2[ID_LEN + 1];
    snprintf(f2, sizeof f2, "%s", jstr(r, "id"));
    reply_free(&r);
    /* the generator is copied too: without a seed, the fork says what the source would */
    char *t1 = generate(&srv, f1, 50, -1), *t0 = generate(&srv, src, 50, -1);
    expect_same_text(t1, t0, "a fork without a new seed");
    /* and with the same seed, the same text */
    char *t2 = generate(&srv, f2, 50, 11);
    r = http_post(&srv, at(src, "/fork").s, NULL);
    expect_status(r, 201);
    char f3[ID_LEN + 1];
    snprintf(f3, sizeof f3, "%s", jstr(r, "id"));
    reply_free(&r);
    char *t3 = generate(&srv, f3, 50, 11), *t4 = generate(&srv, src, 50, 11);
    expect_same_text(t3, t4, "a fork with the same seed");
    ck_assert_msg(strcmp(t2, t3) != 0, "the state did not move on: '%s'", t2);
    r = http_post(&srv, at("0123456789abcdef0123456789abcdef", "/fork").s, NULL);
    expect_error(r, 404, "not_found", "0123456789abcdef");
    reply_free(&r);
    free(t0);
    free(t1);
    free(t2);
    free(t3);
    free(t4);
}
END_TEST

START_TEST(reset_zeroes_the_state)
{
    char a[ID_LEN + 1], b[ID_LEN + 1];
    session_new(&srv, 1, a);
    session_new(&srv, 1, b);
    reply r = http_postf(&srv, at(a, "/feed").s, "{s:s}", "text", "The quick brown fox.");
    expect_status(r, 200);
    reply_free(&r);
    r = http_post(&srv, at(a, "/reset").s, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "chars_seen"), 0);
    ck_assert_str_eq(jstr(r, "id"), a);
    reply_free(&r);
    char *ta = generate(&srv, a, 40, 4), *tb = generate(&srv, b, 40, 4);
    expect_same_text(ta, tb, "a reset session against a fresh one");
    free(ta);
    free(tb);
    r = http_post(&srv, at("0123456789abcdef0123456789abcdef", "/reset").s, NULL);
    expect_error(r, 404, "not_found", "0123456789abcdef");
    reply_free(&r);
}
END_TEST

START_TEST(reading_a_session_does_not_touch_it)
{
    /* last_used_at is when a request last used the session; looking at it is not a use
     * (or every GET and every listing would reset the idle timer and the LRU order) */
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    free(generate(&srv, id, 5, -1));
    reply r1 = http_get(&srv, at(id, "").s);
    expect_status(r1, 200);
    sleep_ms(30);
    reply r2 = http_get(&srv, at(id, "").s);
    expect_status(r2, 200);
    ck_assert_msg(strcmp(jstr(r1, "last_used_at"), jstr(r2, "last_used_at")) == 0,
                  "GET moved last_used_at from %s to %s", jstr(r1, "last_used_at"),
                  jstr(r2, "last_used_at"));
    sleep_ms(30);
    reply l = http_get(&srv, "/v1/sessions?limit=1000");
    expect_status(l, 200);
    size_t k;
    json_t *e;
    const char *listed = NULL;
    json_array_foreach(json_object_get(l.json, "sessions"), k, e)
        if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0)
            listed = json_string_value(json_object_get(e, "last_used_at"));
    ck_assert_msg(listed && strcmp(listed, jstr(r1, "last_used_at")) == 0,
                  "listing shows last_used_at %s, it was %s", listed ? listed : "(not listed)",
                  jstr(r1, "last_used_at"));
    reply_free(&l);
    reply_free(&r1);
    reply_free(&r2);
}
END_TEST

START_TEST(text_longer_than_the_prompt_limit_is_refused)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    size_t n = 100001; /* API_MAX_PROMPT_CHARS + 1 */
    char *text = malloc(n + 1);
    for (size_t k = 0; k < n; k++)
        text[k] = "ab c"[k % 4];
    text[n] = 0;
    reply r = http_postf(&srv, at(id, "/feed").s, "{s:s}", "text", text);
    expect_error(r, 400, "invalid_request", "100000");
    reply_free(&r);
    r = http_postf(&srv, at(id, "/generate").s, "{s:s, s:i}", "prompt", text, "max_chars", 1);
    expect_error(r, 400, "invalid_request", "100000");
    reply_free(&r);
    json_int_t seen;
    int busy;
    session_state(&srv, id, &seen, &busy);
    ck_assert_msg(seen == 0 && !busy, "refused texts left chars_seen %lld busy %d", (long long)seen,
                  busy);
    free(text);
}
END_TEST

START_TEST(url_longer_than_the_limit_gets_414)
{
    char path[17000] = "/v1/sessions/"; /* beyond the limit of 16 KiB, within the connection's memory */
    size_t n = strlen(path);
    memset(path + n, 'a', sizeof path - n - 1);
    path[sizeof path - 1] = 0;
    reply r = http_get(&srv, path);
    expect_status(r, 414);
    json_t *e = json_object_get(r.json, "error");
    ck_assert_msg(json_integer_value(json_object_get(e, "code")) == 414 &&
                      json_is_string(json_object_get(e, "type")) &&
                      strstr(json_string_value(json_object_get(e, "message")), "16384"),
                  "414 reply: %s", r.body);
    reply_free(&r);
    r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    reply_free(&r);
}
END_TEST

START_TEST(busy_session_gets_409)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    stream_call s;
    stream_init(&s, &srv, id, 0, "{s:i}", "max_chars", 100000);
    stream_start(&s);
    stream_wait_text(&s, 5);
    reply r = http_postf(&srv, at(id, "/generate").s, "{s:i}", "max_chars", 5);
    expect_error(r, 409, "conflict", id);
    reply_free(&r);
    r = http_postf(&srv, at(id, "/generate").s, "{s:i, s:b}", "max_chars", 5, "stream", 1);
    expect_error(r, 409, "conflict", id);
    reply_free(&r);
    r = http_postf(&srv, at(id, "/feed").s, "{s:s}", "text", "Hello");
    expect_error(r, 409, "conflict", id);
    reply_free(&r);
    r = http_post(&srv, at(id, "/fork").s, NULL);
    expect_error(r, 409, "conflict", id);
    reply_free(&r);
    r = http_post(&srv, at(id, "/reset").s, NULL);
    expect_error(r, 409, "conflict", id);
    reply_free(&r);
    r = http_req(&srv, "DELETE", at(id, "").s, NULL, NULL);
    expect_error(r, 409, "conflict", id);
    reply_free(&r);
    int busy = 0;
    session_state(&srv, id, NULL, &busy);
    ck_assert_msg(busy, "GET says not busy during a generation");
    ck_assert_msg(!atomic_load(&s.finished), "the generation of 100000 characters already ended");
    atomic_store(&s.abort_now, 1);
    stream_join(&s);
    ck_assert_msg(wait_not_busy(&srv, id, 2) >= 0, "still busy 2 s after the client left");
    r = http_req(&srv, "DELETE", at(id, "").s, NULL, NULL);
    expect_status(r, 204);
    reply_free(&r);
    stream_free(&s);
}
END_TEST

/* ==== streaming ========================================================================== */

START_TEST(stream_sse_and_ndjson_match_the_plain_reply)
{
    static const struct {
        int ndjson;
        const char *accept, *what;
    } ways[] = {
        {0, NULL, "SSE (Accept: text/event-stream)"},
        {0, "", "SSE (no Accept header)"},
        {0, "*/*", "SSE (Accept: */*)"},
        {1, NULL, "NDJSON (Accept: application/x-ndjson)"},
    };
    char plain[ID_LEN + 1];
    session_new(&srv, 3, plain);
    char *want = generate(&srv, plain, 3000, -1);
    for (size_t k = 0; k < sizeof ways / sizeof ways[0]; k++) {
        char id[ID_LEN + 1];
        session_new(&srv, 3, id);
        stream_call s;
        stream_init(&s, &srv, id, ways[k].ndjson, "{s:i}", "max_chars", 3000);
        s.accept = ways[k].accept;
        stream_run(&s);
        expect_stream_done(&s, "length");
        expect_same_text(s.text, want, ways[k].what);
        ck_assert_int_eq(json_integer_value(json_object_get(s.done, "chars")), 3000);
        ck_assert_msg(s.ntext >= 3, "%s: 3000 characters in %d text event(s)", ways[k].what, s.ntext);
        stream_free(&s);
        /* (stream_end_frees_the_session checks that no wait is needed here) */
        ck_assert(wait_not_busy(&srv, id, 2) >= 0);
        json_int_t seen;
        session_state(&srv, id, &seen, NULL);
        ck_assert_int_eq(seen, 3001);
    }
    free(want);
}
END_TEST

START_TEST(stream_first_event_arrives_before_the_end)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    stream_call s;
    stream_init(&s, &srv, id, 0, "{s:i}", "max_chars", 20000);
    stream_run(&s);
    expect_stream_done(&s, "length");
    double first = s.t_first - s.t_start, done = s.t_done - s.t_start;
    ck_assert_msg(s.ntext >= 2 && first < done / 2,
                  "the first of %d text events came after %.1f ms, the end after %.1f ms", s.ntext,
                  first * 1e3, done * 1e3);
    json_t *t = json_object_get(s.done, "timings");
    double fc = json_number_value(json_object_get(t, "first_char_ms"));
    double total = json_number_value(json_object_get(t, "total_ms"));
    ck_assert_msg(fc < total / 2, "first_char_ms %.1f of total_ms %.1f", fc, total);
    stream_free(&s);
}
END_TEST

START_TEST(disconnect_cancels_the_generation)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    stream_call s;
    stream_init(&s, &srv, id, 0, "{s:i}", "max_chars", 100000);
    s.abort_after = 1;
    stream_run(&s);
    ck_assert_msg(s.rc == CURLE_WRITE_ERROR && s.ntext >= 1 && !s.done,
                  "the transfer was not cut after the first event (curl: %s, %d events)",
                  curl_easy_strerror(s.rc), s.ntext);
    double t = wait_not_busy(&srv, id, 1.0);
    ck_assert_msg(t >= 0, "the session is still busy 1 s after the client went away");
    json_int_t seen;
    session_state(&srv, id, &seen, NULL);
    ck_assert_msg(seen > 0 && seen < 20000,
                  "chars_seen %lld after a generation of 100000 was dropped at the first event",
                  (long long)seen);
    char *text = generate(&srv, id, 5, -1);
    free(text);
    json_int_t after;
    session_state(&srv, id, &after, NULL);
    ck_assert_int_eq(after, seen + 5);
    stream_free(&s);
}
END_TEST

/* A client that drops a request answered in one piece (a long feed) cancels it too: the
 * server notices the closed socket while it waits, and the session is free again. */
/* A curl socket option hook: SO_LINGER 0, so that closing the socket sends a reset. */
static int linger_zero(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg, (void)purpose;
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    return CURL_SOCKOPT_OK;
}

START_TEST(disconnect_cancels_a_plain_feed)
{
    char id[ID_LEN + 1];
    session_new(&srv, 1, id);
    const size_t n = 100000; /* API_MAX_PROMPT_CHARS */
    char *body = malloc(n + 32);
    size_t len = (size_t)sprintf(body, "{\"text\": \"");
    for (size_t k = 0; k < n; k++)
        body[len++] = "the cat "[k % 8];
    strcpy(body + len, "\"}");
    CURL *h = curl_easy_init();
    upload up;
    struct curl_slist *hd = http_setup(h, &srv, "POST", at(id, "/feed").s, body, NULL, &up);
    /* give up long before the feed ends: the earlier the client leaves, the more of the feed
     * is left for the server to skip (at 150 ms a loaded machine once finished it first) */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 50L);
    /* a client that leaves resets the connection (a FIN alone may be a half-close, after
     * which the client still waits for its reply) */
    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, linger_zero);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    reply sink;
    memset(&sink, 0, sizeof sink);
    sink.body = calloc(1, 1);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    free(sink.body);
    free(body);
    ck_assert_msg(rc == CURLE_OPERATION_TIMEDOUT, "the feed answered within 50 ms (curl: %s)",
                  curl_easy_strerror(rc));
    double t = wait_not_busy(&srv, id, 1.5);
    ck_assert_msg(t >= 0, "the session is still busy 1.5 s after the client went away");
    json_int_t seen;
    session_state(&srv, id, &seen, NULL);
    ck_assert_msg(seen < (json_int_t)n, "the whole feed ran (%lld characters) after the client left",
                  (long long)seen);
}
END_TEST

#define STREAM_WORKERS 8
#define STREAM_REPEATS 100

typedef struct {
    char id[ID_LEN + 1];
    int ndjson;
    char fault[600];               /* the first thing that went wrong, "" = none */
} stream_worker;

/* Streams 3 characters at a time and looks at the session as soon as each stream ended. */
static void *stream_worker_run(void *arg)
{
    stream_worker *w = arg;
    json_int_t want = 0;
    for (int k = 0; k < STREAM_REPEATS && !w->fault[0]; k++) {
        stream_call s;
        stream_init(&s, &srv, w->id, w->ndjson, "{s:i}", "max_chars", 3);
        stream_run(&s);
        want += (k == 0) + 3;
        if (s.rc != CURLE_OK || s.status != 200 || !s.done || s.nbad) {
            snprintf(w->fault, sizeof w->fault, "stream %d: HTTP %ld, curl %s, %s final event, %s",
                     k, s.status, curl_easy_strerror(s.rc), s.done ? "a" : "no", s.bad);
        } else {
            reply r = http_get(&srv, at(w->id, "").s);
            json_t *seen = json_object_get(r.json, "chars_seen");
            if (r.status != 200 || !json_is_integer(seen) || json_integer_value(seen) != want ||
                !json_is_false(json_object_get(r.json, "busy")))
                snprintf(w->fault, sizeof w->fault,
                         "right after stream %d ended: HTTP %ld %.400s (want chars_seen %lld, "
                         "busy false)", k, r.status, r.body, (long long)want);
            reply_free(&r);
        }
        stream_free(&s);
    }
    return NULL;
}

START_TEST(stream_end_frees_the_session)
{
    /* a client that has read the final event may go on with the session at once; several
     * clients at a time, so that the server's threads get interrupted at every point */
    stream_worker w[STREAM_WORKERS];
    pthread_t th[STREAM_WORKERS];
    memset(w, 0, sizeof w);
    for (int k = 0; k < STREAM_WORKERS; k++) {
        session_new(&srv, k, w[k].id);
        w[k].ndjson = k % 2;
        ck_assert_int_eq(pthread_create(&th[k], NULL, stream_worker_run, &w[k]), 0);
    }
    for (int k = 0; k < STREAM_WORKERS; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < STREAM_WORKERS; k++)
        ck_assert_msg(!w[k].fault[0], "client %d: %s", k, w[k].fault);
}
END_TEST

/* ==== batching ============================================================================ */





/* Steps that had more than one row, from /metrics. */
static double batched_steps(const hyperd_proc *p)
{
    reply m = http_get(p, "/metrics");
    double ones = metric(m.body, "hyperd_batch_size_bucket{model=\"charlm\",le=\"1\"}");
    double all = metric(m.body, "hyperd_batch_size_count{model=\"charlm\"}");
    reply_free(&m);
    return all - ones;
}

START_TEST(concurrent_sessions_generate_what_one_generates_alone)
{
    char solo[ID_LEN + 1];
    session_new(&srv, 11, solo);
    char *want = generate(&srv, solo, 1500, -1);
    double batched0 = batched_steps(&srv);
    call c[BATCH_SESSIONS];
    memset(c, 0, sizeof c);
    for (int k = 0; k < BATCH_SESSIONS; k++) {
        c[k].p = &srv;
        session_new(&srv, 1000 + k, c[k].id); /* another seed at creation; reseeded below */
        c[k].path_tail = "/generate";
        c[k].body = "{\"max_chars\": 1500, \"seed\": 11}";
    }
    calls_run(c, BATCH_SESSIONS);
    for (int k = 0; k < BATCH_SESSIONS; k++) {
        expect_status(c[k].r, 200);
        ck_assert_msg(strcmp(jstr(c[k].r, "text"), want) == 0,
                      "session %d of %d generating together:\n got  '%.300s'\n want '%.300s'", k,
                      BATCH_SESSIONS, jstr(c[k].r, "text"), want);
        reply_free(&c[k].r);
    }
    double batched = batched_steps(&srv) - batched0;
    ck_assert_msg(batched > 0, "no step ran more than one session: the test proved nothing");
    free(want);
}
END_TEST

START_TEST(concurrent_feeds_score_what_one_scores_alone)
{
    char text[4000];
    size_t len = 0;
    while (len + sizeof CORPUS < sizeof text)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s", CORPUS);
    char *body = NULL;
    {
        json_t *j = json_pack("{s:s}", "text", text);
        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    char solo[ID_LEN + 1];
    session_new(&srv, 1, solo);
    reply r = http_post(&srv, at(solo, "/feed").s, body);
    expect_status(r, 200);
    double want = jnum(r, "bits_per_char");
    reply_free(&r);
    double batched0 = batched_steps(&srv);
    enum { N = 16 };
    call c[N];
    memset(c, 0, sizeof c);
    for (int k = 0; k < N; k++) {
        c[k].p = &srv;
        session_new(&srv, k, c[k].id);
        c[k].path_tail = "/feed";
        c[k].body = body;
    }
    calls_run(c, N);
    for (int k = 0; k < N; k++) {
        expect_status(c[k].r, 200);
        ck_assert_int_eq(jint(c[k].r, "chars"), (json_int_t)len);
        double got = jnum(c[k].r, "bits_per_char");
        ck_assert_msg(got == want, "session %d of %d feeding together: %.17g bits/char, alone %.17g "
                      "(differs by %.3g)", k, N, got, want, got - want);
        reply_free(&c[k].r);
    }
    ck_assert_msg(batched_steps(&srv) - batched0 > 0, "no step ran more than one session");
    free(body);
}
END_TEST

/* ==== authentication ======================================================================= */

START_TEST(api_key_required_except_health)
{
    reply r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    reply_free(&r);
    static const char *const wrong[] = {NULL, "Bearer wrong", "Bearer " API_KEY "x",
                                        "Bearer s3cret-ke", "Bearer ", API_KEY, "Basic " API_KEY,
                                        "Bearer  " API_KEY};
    static const struct {
        const char *method, *path, *body;
    } routes[] = {
        {"GET", "/v1/models", NULL},
        {"GET", "/v1/models/charlm", NULL},
        {"GET", "/metrics", NULL},
        {"POST", "/v1/sessions", "{}"},
        {"GET", "/v1/sessions", NULL},
    };
    for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++)
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
            req_opts o = {.auth = wrong[k]};
            r = http_req(&srv, routes[i].method, routes[i].path, routes[i].body, &o);
            expect_error(r, 401, "unauthorized", "API key");
            ck_assert_msg(strcmp(r.www_auth, "Bearer") == 0, "%s with '%s': WWW-Authenticate '%s'",
                          r.what, wrong[k] ? wrong[k] : "(none)", r.www_auth);
            reply_free(&r);
        }
    req_opts key = {.auth = "Bearer " API_KEY};
    r = http_req(&srv, "GET", "/v1/sessions", NULL, &key);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "total"), 0); /* the refused creations made nothing */
    reply_free(&r);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        r = http_req(&srv, routes[i].method, routes[i].path, routes[i].body, &key);
        expect_status(r, strcmp(routes[i].method, "POST") == 0 ? 201 : 200);
        reply_free(&r);
    }
    r = http_req(&srv, "POST", "/v1/sessions", "{\"seed\": 1}", &key);
    expect_status(r, 201);
    char id[ID_LEN + 1];
    snprintf(id, sizeof id, "%s", jstr(r, "id"));
    reply_free(&r);
    r = http_req(&srv, "POST", at(id, "/generate").s, "{\"max_chars\": 5}", NULL);
    expect_error(r, 401, "unauthorized", "API key");
    reply_free(&r);
    r = http_req(&srv, "DELETE", at(id, "").s, NULL, NULL);
    expect_error(r, 401, "unauthorized", "API key");
    reply_free(&r);
    r = http_req(&srv, "POST", at(id, "/generate").s, "{\"max_chars\": 5}", &key);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "chars"), 5);
    reply_free(&r);
    stream_call s;
    stream_init(&s, &srv, id, 1, "{s:i}", "max_chars", 10);
    s.auth = "Bearer " API_KEY;
    stream_run(&s);
    expect_stream_done(&s, "length");
    stream_free(&s);
    for (double t0 = now_s();; sleep_ms(10)) { /* see stream_end_frees_the_session */
        r = http_req(&srv, "GET", at(id, "").s, NULL, &key);
        expect_status(r, 200);
        int busy = json_is_true(json_object_get(r.json, "busy"));
        reply_free(&r);
        if (!busy)
            break;
        ck_assert_msg(now_s() - t0 < 2, "still busy 2 s after the stream ended");
    }
    r = http_req(&srv, "DELETE", at(id, "").s, NULL, &key);
    expect_status(r, 204);
    reply_free(&r);
}
END_TEST

/* ==== limits ============================================================================== */

/* A JSON object of exactly n bytes: {"seed": 1} padded with spaces. */
static char *padded_body(size_t n)
{
    char *b = malloc(n + 1);
    memset(b, ' ', n);
    memcpy(b, "{\"seed\": 1", 10);
    b[n - 1] = '}';
    b[n] = 0;
    return b;
}

START_TEST(body_larger_than_the_limit_gets_413)
{
    char *small = padded_body(1024), *big = padded_body(1025), *huge = padded_body(200000);
    reply r = http_post(&srv, "/v1/sessions", small);
    expect_status(r, 201);
    reply_free(&r);
    r = http_post(&srv, "/v1/sessions", big);
    expect_error(r, 413, "payload_too_large", "1024");
    reply_free(&r);
    r = http_post(&srv, "/v1/sessions", huge);
    expect_error(r, 413, "payload_too_large", "1024");
    reply_free(&r);
    req_opts chunked = {.chunked = 1};
    r = http_req(&srv, "POST", "/v1/sessions", big, &chunked);
    expect_error(r, 413, "payload_too_large", "1024");
    reply_free(&r);
    r = http_req(&srv, "POST", "/v1/sessions", small, &chunked);
    expect_status(r, 201);
    char id[ID_LEN + 1];
    snprintf(id, sizeof id, "%s", jstr(r, "id"));
    reply_free(&r);
    char text[1500];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = 0;
    r = http_postf(&srv, at(id, "/feed").s, "{s:s}", "text", text);
    expect_error(r, 413, "payload_too_large", "1024");
    reply_free(&r);
    json_int_t seen;
    int busy;
    session_state(&srv, id, &seen, &busy);
    ck_assert_msg(seen == 0 && !busy, "a refused feed left chars_seen %lld busy %d", (long long)seen,
                  busy);
    /* the connection-level refusal must not have hurt the server */
    r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    reply_free(&r);
    free(small);
    free(big);
    free(huge);
}
END_TEST

static int session_exists(const hyperd_proc *p, const char *id)
{
    reply r = http_get(p, at(id, "").s);
    int status = (int)r.status;
    ck_assert_msg(status == 200 || status == 404, "%s: HTTP %d: %s", r.what, status, r.body);
    reply_free(&r);
    return status == 200;
}

START_TEST(least_recently_used_idle_session_is_evicted)
{
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1], d[ID_LEN + 1];
    session_new(&srv, 1, a);
    sleep_ms(10);
    session_new(&srv, 1, b);
    sleep_ms(10);
    session_new(&srv, 1, c); /* --max-sessions 2: a goes */
    ck_assert_msg(!session_exists(&srv, a), "the oldest session survived a third one");
    ck_assert_msg(session_exists(&srv, b) && session_exists(&srv, c), "the wrong session went");
    sleep_ms(10);
    free(generate(&srv, b, 5, -1)); /* b is now the more recently used */
    sleep_ms(10);
    session_new(&srv, 1, d);
    ck_assert_msg(!session_exists(&srv, c), "c, used least recently, survived");
    ck_assert_msg(session_exists(&srv, b) && session_exists(&srv, d), "b or d went instead of c");
    reply r = http_get(&srv, "/v1/sessions");
    ck_assert_int_eq(jint(r, "total"), 2);
    reply_free(&r);
}
END_TEST

START_TEST(listing_does_not_protect_from_eviction)
{
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1];
    session_new(&srv, 1, a);
    sleep_ms(10);
    session_new(&srv, 1, b);
    sleep_ms(10);
    free(generate(&srv, a, 5, -1)); /* a is the one used last */
    sleep_ms(10);
    reply r = http_get(&srv, "/v1/sessions"); /* looks at a, then b */
    expect_status(r, 200);
    reply_free(&r);
    sleep_ms(10);
    session_new(&srv, 1, c);
    ck_assert_msg(session_exists(&srv, a) && !session_exists(&srv, b),
                  "a listing counted as a use: the session used last (a) was evicted, not b");
}
END_TEST

START_TEST(all_sessions_busy_gets_429)
{
    char a[ID_LEN + 1], b[ID_LEN + 1];
    session_new(&srv, 1, a);
    session_new(&srv, 2, b);
    stream_call sa, sb;
    stream_init(&sa, &srv, a, 0, "{s:i}", "max_chars", 1000000);
    stream_init(&sb, &srv, b, 1, "{s:i}", "max_chars", 1000000);
    stream_start(&sa);
    stream_start(&sb);
    stream_wait_text(&sa, 5);
    stream_wait_text(&sb, 5);
    reply r = http_post(&srv, "/v1/sessions", "{}");
    expect_error(r, 429, "too_many_requests", "busy");
    reply_free(&r);
    r = http_post(&srv, at(a, "/fork").s, NULL);
    expect_error(r, 409, "conflict", a);
    reply_free(&r);
    ck_assert_msg(!atomic_load(&sa.finished) && !atomic_load(&sb.finished),
                  "a generation of 1000000 characters ended early");
    atomic_store(&sa.abort_now, 1);
    stream_join(&sa);
    ck_assert_msg(wait_not_busy(&srv, a, 2) >= 0, "a still busy 2 s after its client left");
    /* a fork needs room too: its source is held by the fork itself, b is busy */
    r = http_post(&srv, at(a, "/fork").s, NULL);
    expect_error(r, 429, "too_many_requests", "busy");
    reply_free(&r);
    atomic_store(&sb.abort_now, 1);
    stream_join(&sb);
    ck_assert_msg(wait_not_busy(&srv, b, 2) >= 0, "b still busy 2 s after its client left");
    char c[ID_LEN + 1];
    session_new(&srv, 3, c);
    stream_free(&sa);
    stream_free(&sb);
}
END_TEST

/* ==== restarts and shutdown ================================================================ */

START_TEST(sessions_survive_a_restart)
{
    hyperd_proc d;
    hyperd_init(&d, "restart", NULL);
    hyperd_start_ok(&d);
    char s[ID_LEN + 1], f1[ID_LEN + 1], f2[ID_LEN + 1];
    session_new(&d, 5, s);
    reply r = http_postf(&d, at(s, "/feed").s, "{s:s}", "text", "Hello, world!");
    expect_status(r, 200);
    reply_free(&r);
    free(generate(&d, s, 30, 5));
    r = http_post(&d, at(s, "/fork").s, NULL);
    expect_status(r, 201);
    snprintf(f1, sizeof f1, "%s", jstr(r, "id"));
    reply_free(&r);
    r = http_post(&d, at(s, "/fork").s, NULL);
    expect_status(r, 201);
    snprintf(f2, sizeof f2, "%s", jstr(r, "id"));
    reply_free(&r);
    char damaged[ID_LEN + 1];
    session_new(&d, 6, damaged);
    char *t_on = generate(&d, f1, 40, -1); /* what s says next, generator as it stands */
    char *t_seed = generate(&d, f2, 40, 9);
    reply before = http_get(&d, at(s, "").s);
    expect_status(before, 200);
    json_int_t f1_seen;
    session_state(&d, f1, &f1_seen, NULL);
    reply list_before = http_get(&d, "/v1/sessions");
    expect_status(list_before, 200);
    hyperd_stop_ok(&d);
    /* a damaged session file is skipped, not fatal (the layout: DIR/sessions/ID.json) */
    char file[300];
    snprintf(file, sizeof file, "%s/sessions/%s.json", d.dir, damaged);
    FILE *f = fopen(file, "w");
    ck_assert_msg(f != NULL, "%s: %s", file, strerror(errno));
    fputs("{\"id\": \"trunc", f);
    fclose(f);

    hyperd_start_ok(&d);
    r = http_get(&d, at(damaged, "").s);
    expect_error(r, 404, "not_found", damaged);
    reply_free(&r);
    reply list_after = http_get(&d, "/v1/sessions");
    expect_status(list_after, 200);
    json_t *lb = json_object_get(list_before.json, "sessions");
    json_t *la = json_object_get(list_after.json, "sessions");
    ck_assert_msg(json_array_size(la) == 3 && json_array_size(lb) == 4,
                  "sessions before: %s\nafter: %s", list_before.body, list_after.body);
    for (size_t k = 0; k < json_array_size(lb); k++) {
        const char *idb = json_string_value(json_object_get(json_array_get(lb, k), "id"));
        int found = strcmp(idb, damaged) == 0;
        for (size_t m = 0; m < json_array_size(la) && !found; m++)
            found = strcmp(idb, json_string_value(json_object_get(json_array_get(la, m), "id"))) == 0;
        ck_assert_msg(found, "%s was not restored: before %s\nafter %s", idb, list_before.body,
                      list_after.body);
    }
    reply_free(&list_before);
    reply_free(&list_after);
    reply after = http_get(&d, at(s, "").s);
    expect_status(after, 200);
    ck_assert_int_eq(jint(after, "chars_seen"), jint(before, "chars_seen"));
    ck_assert_int_eq(jint(after, "chars_seen"), 13 + 30); /* fed first: no newline */
    ck_assert_str_eq(jstr(after, "created_at"), jstr(before, "created_at"));
    ck_assert_str_eq(jstr(after, "model"), "charlm");
    json_int_t seen;
    session_state(&d, f1, &seen, NULL);
    ck_assert_int_eq(seen, f1_seen);
    r = http_post(&d, at(s, "/fork").s, NULL);
    expect_status(r, 201);
    char g[ID_LEN + 1];
    snprintf(g, sizeof g, "%s", jstr(r, "id"));
    reply_free(&r);
    char *t_on2 = generate(&d, s, 40, -1), *t_seed2 = generate(&d, g, 40, 9);
    expect_same_text(t_on2, t_on, "after the restart, without a seed");
    expect_same_text(t_seed2, t_seed, "after the restart, with seed 9");
    hyperd_stop_ok(&d);
    reply_free(&before);
    reply_free(&after);
    free(t_on);
    free(t_seed);
    free(t_on2);
    free(t_seed2);
}
END_TEST

#define ORDER_SESSIONS 30

/* The ids of the listing, joined (new string). */
static char *listed_ids(const hyperd_proc *p)
{
    reply r = http_get(p, "/v1/sessions?limit=1000");
    expect_status(r, 200);
    json_t *list = json_object_get(r.json, "sessions");
    char *ids = calloc(json_array_size(list) * (ID_LEN + 1) + 1, 1);
    size_t k;
    json_t *e;
    json_array_foreach(list, k, e) {
        strcat(ids, json_string_value(json_object_get(e, "id")));
        strcat(ids, " ");
    }
    reply_free(&r);
    return ids;
}

START_TEST(restart_keeps_the_listing_order)
{
    /* the list is in creation order, and offsets page through it: a restart must not
     * reorder it, not even sessions created within the same millisecond */
    hyperd_proc d;
    hyperd_init(&d, "order", NULL);
    hyperd_start_ok(&d);
    for (int k = 0; k < ORDER_SESSIONS; k++) {
        char id[ID_LEN + 1];
        session_new(&d, k, id);
    }
    char *before = listed_ids(&d);
    hyperd_stop_ok(&d);
    hyperd_start_ok(&d);
    char *after = listed_ids(&d);
    hyperd_stop_ok(&d);
    ck_assert_msg(strcmp(before, after) == 0, "the listing changed order:\nbefore %s\nafter  %s",
                  before, after);
    free(before);
    free(after);
}
END_TEST

START_TEST(idle_sessions_expire)
{
    static const char *const flags[] = {"--session-idle-timeout", "1", NULL};
    hyperd_proc d;
    hyperd_init(&d, "idle", flags);
    hyperd_start_ok(&d);
    char idle[ID_LEN + 1], used[ID_LEN + 1];
    session_new(&d, 1, idle);
    session_new(&d, 1, used);
    /* use one every 300 ms; leave the other alone (not even a GET) */
    for (double t0 = now_s(); now_s() - t0 < 2.6;) {
        reply r = http_postf(&d, at(used, "/feed").s, "{s:s}", "text", "a");
        expect_status(r, 200);
        reply_free(&r);
        sleep_ms(300);
    }
    ck_assert_msg(!session_exists(&d, idle), "a session idle for 2.6 s outlived a 1 s timeout");
    ck_assert_msg(session_exists(&d, used), "a session used every 300 ms expired");
    hyperd_stop_ok(&d);
}
END_TEST

#define SHUTDOWN_STREAMS 8

START_TEST(shutdown_ends_streams_with_reason_shutdown)
{
    /* several at once: each must get its remaining text and the final event before the
     * connections close, however the threads happen to be scheduled */
    static const char *const flags[] = {"--max-chars-per-request", "1000000", NULL};
    hyperd_proc d;
    hyperd_init(&d, "shutdown", flags);
    hyperd_start_ok(&d);
    char id[SHUTDOWN_STREAMS][ID_LEN + 1];
    stream_call s[SHUTDOWN_STREAMS];
    for (int k = 0; k < SHUTDOWN_STREAMS; k++) {
        session_new(&d, k, id[k]);
        stream_init(&s[k], &d, id[k], k % 2, "{s:i}", "max_chars", 1000000);
        stream_start(&s[k]);
    }
    for (int k = 0; k < SHUTDOWN_STREAMS; k++)
        stream_wait_text(&s[k], 5);
    double t0 = now_s();
    kill(d.pid, SIGTERM);
    for (int k = 0; k < SHUTDOWN_STREAMS; k++)
        stream_join(&s[k]);
    double ended = now_s() - t0;
    hyperd_stop_ok(&d);
    ck_assert_msg(ended < 5, "the streams took %.1f s to end after SIGTERM", ended);
    json_int_t chars[SHUTDOWN_STREAMS];
    for (int k = 0; k < SHUTDOWN_STREAMS; k++) {
        expect_stream_done(&s[k], "shutdown");
        chars[k] = json_integer_value(json_object_get(s[k].done, "chars"));
        ck_assert_msg(chars[k] > 0 && chars[k] < 1000000 && (size_t)chars[k] == s[k].text_len,
                      "stream %d: done says %lld characters, %zu streamed", k, (long long)chars[k],
                      s[k].text_len);
    }
    /* what was generated up to the end is in the saved state */
    hyperd_start_ok(&d);
    for (int k = 0; k < SHUTDOWN_STREAMS; k++) {
        json_int_t seen;
        session_state(&d, id[k], &seen, NULL);
        ck_assert_int_eq(seen, chars[k] + 1);
        stream_free(&s[k]);
    }
    hyperd_stop_ok(&d);
}
END_TEST

/* ---- the suite ---------------------------------------------------------------------------- */

Suite *daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase(s, "system", setup_plain, 20);
    tcase_add_test(tc, health_and_ready);
    tcase_add_test(tc, metrics_count_requests);
    tcase_add_test(tc, unknown_routes_404_wrong_methods_405);
    tcase_add_test(tc, models_list_and_get);
    tcase_add_test(tc, no_api_key_needed_when_none_is_set);

    tc = tcase(s, "sessions", setup_plain, 20);
    tcase_add_test(tc, session_create_get_delete);
    tcase_add_test(tc, session_create_rejects_bad_requests);
    tcase_add_test(tc, sessions_list_pages);
    tcase_add_test(tc, feed_counts_and_scores);
    tcase_add_test(tc, feed_rejects_bad_requests);
    tcase_add_test(tc, generate_returns_text_and_timings);
    tcase_add_test(tc, generation_matches_the_engine);
    tcase_add_test(tc, generate_rejects_bad_requests);
    tcase_add_test(tc, generate_stops_at_a_stop_string);
    tcase_add_test(tc, greedy_generation_ignores_the_seed);
    tcase_add_test(tc, generation_continues_across_calls);
    tcase_add_test(tc, fork_copies_state_and_generator);
    tcase_add_test(tc, reset_zeroes_the_state);
    tcase_add_test(tc, reading_a_session_does_not_touch_it);
    tcase_add_test(tc, text_longer_than_the_prompt_limit_is_refused);
    tcase_add_test(tc, url_longer_than_the_limit_gets_414);
    tcase_add_test(tc, busy_session_gets_409);

    tc = tcase(s, "streaming", setup_plain, 20);
    tcase_add_test(tc, stream_sse_and_ndjson_match_the_plain_reply);
    tcase_add_test(tc, stream_first_event_arrives_before_the_end);
    tcase_add_test(tc, disconnect_cancels_the_generation);
    tcase_add_test(tc, disconnect_cancels_a_plain_feed);
    tcase_add_test(tc, stream_end_frees_the_session);

    tc = tcase(s, "batching", setup_plain, 30);
    tcase_add_test(tc, concurrent_sessions_generate_what_one_generates_alone);
    tcase_add_test(tc, concurrent_feeds_score_what_one_scores_alone);

    tc = tcase(s, "auth", setup_auth, 20);
    tcase_add_test(tc, api_key_required_except_health);

    tc = tcase(s, "limits", setup_limits, 20);
    tcase_add_test(tc, body_larger_than_the_limit_gets_413);
    tcase_add_test(tc, least_recently_used_idle_session_is_evicted);
    tcase_add_test(tc, listing_does_not_protect_from_eviction);
    tcase_add_test(tc, all_sessions_busy_gets_429);

    tc = tcase(s, "lifecycle", setup_root, 40);
    tcase_add_test(tc, sessions_survive_a_restart);
    tcase_add_test(tc, restart_keeps_the_listing_order);
    tcase_add_test(tc, idle_sessions_expire);
    tcase_add_test(tc, shutdown_ends_streams_with_reason_shutdown);
    return s;
}
