/*
 * test_api_handwriting.c — black-box tests of hyperd's handwriting: /v1/handwriting/sample
 * (JSON, SVG, streamed points, priming, refusals, 64 drawings at once against one alone),
 * handwriting sessions (continuation, streams and formats, feed, fork, reset, restarts,
 * disconnects), and include_hyper on text and on strokes.  The daemons, models and
 * helpers are daemon_fixture's; drawings are checked against the engine drawing from the
 * same model file.
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

#include "daemon_fixture.h"

START_TEST(hw_sample_draws_strokes_and_svg)
{
    reply r = http_postf(&srv, HW_SAMPLE, "{s:i, s:i}", "max_points", 120, "seed", 1);
    expect_status(r, 200);
    ck_assert_msg(strncmp(r.content_type, "application/json", 16) == 0, "Content-Type %s",
                  r.content_type);
    ck_assert_str_eq(jstr(r, "model"), HW_MODEL);
    ck_assert_int_eq(jint(r, "seed"), 1);
    ck_assert_int_eq(jint(r, "points"), 120);
    ck_assert_str_eq(jstr(r, "finish_reason"), "length");
    hw_drawing d = hw_drawing_of(r);
    const char *svg = jstr(r, "svg");
    ck_assert_int_eq(svg_paths(svg, strlen(svg)), d.nstrokes);
    hw_drawing_free(&d);
    reply_free(&r);
    /* every field at its default: 700 points */
    r = http_post(&srv, HW_SAMPLE, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "points"), 700);
    d = hw_drawing_of(r);
    hw_drawing_free(&d);
    reply_free(&r);
    /* the extremes of every range */
    r = http_postf(&srv, HW_SAMPLE, "{s:i, s:f, s:f, s:s}", "max_points", 1, "bias", 10.0,
                   "temperature", 10.0, "model", HW_MODEL);
    expect_status(r, 200);
    d = hw_drawing_of(r);
    ck_assert_int_eq(d.n, 1);
    hw_drawing_free(&d);
    reply_free(&r);
    r = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:f}", "max_points", 20000, "bias", 0,
                   "temperature", 0.01);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "points"), 20000);
    reply_free(&r);
}
END_TEST

START_TEST(hw_sample_is_deterministic_for_a_seed)
{
    reply a = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:f}", "max_points", 80, "seed", 5, "bias", 0.5);
    reply b = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:f}", "max_points", 80, "seed", 5, "bias", 0.5);
    reply c = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:f}", "max_points", 80, "seed", 6, "bias", 0.5);
    expect_status(a, 200);
    expect_status(b, 200);
    expect_status(c, 200);
    ck_assert_msg(strcmp(a.body, b.body) == 0, "seed 5 twice:\n%.500s\n%.500s", a.body, b.body);
    hw_drawing da = hw_drawing_of(a), dc = hw_drawing_of(c);
    ck_assert_msg(!drawings_equal(&da, &dc), "seeds 5 and 6 drew the same");
    /* without a seed, one is drawn at random and told, so the drawing can be made again */
    reply r1 = http_postf(&srv, HW_SAMPLE, "{s:i}", "max_points", 80);
    reply r2 = http_postf(&srv, HW_SAMPLE, "{s:i}", "max_points", 80);
    expect_status(r1, 200);
    expect_status(r2, 200);
    json_int_t seed = jint(r1, "seed");
    ck_assert_msg(seed >= 0 && seed < ((json_int_t)1 << 53) && seed != jint(r2, "seed"),
                  "random seeds %lld and %lld", (long long)seed, (long long)jint(r2, "seed"));
    reply again = http_postf(&srv, HW_SAMPLE, "{s:i, s:I}", "max_points", 80, "seed", seed);
    expect_status(again, 200);
    ck_assert_msg(strcmp(again.body, r1.body) == 0,
                  "the seed returned did not draw the same:\n%.500s\n%.500s", again.body, r1.body);
    hw_drawing_free(&da);
    hw_drawing_free(&dc);
    reply_free(&a);
    reply_free(&b);
    reply_free(&c);
    reply_free(&r1);
    reply_free(&r2);
    reply_free(&again);
}
END_TEST

START_TEST(hw_sample_matches_the_engine)
{
    /* a prime of three strokes far from the origin: the drawing goes on from its end, in
     * its coordinates */
    static const double prime[] = {100, 50, 103, 52, 107, 51, 110, 55, 112, 60, 111, 58, 125, 50};
    static const int32_t lens[] = {3, 2, 2};
    const char *body = "{\"seed\": 7, \"max_points\": 90, \"bias\": 0.5, \"temperature\": 0.8, "
                       "\"prime\": [[[100, 50], [103, 52], [107, 51]], [[110, 55], [112, 60]], "
                       "[[111, 58], [125, 50]]]}";
    reply r = http_post(&srv, HW_SAMPLE, body);
    expect_status(r, 200);
    hw_drawing got = hw_drawing_of(r);
    hw_params p = {90, 0.5, 0.8, 7};
    hw_drawing want = {malloc(90 * 2 * sizeof(double)), 90, 0};
    hw_ref_draw(prime, lens, 3, &p, want.xy);
    expect_same_drawing(&got, &want, "the engine's drawing after the prime");
    hw_drawing_free(&want);
    /* and without the prime, from (0, 0) */
    reply u = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:f, s:f}", "seed", 7, "max_points", 90,
                         "bias", 0.5, "temperature", 0.8);
    expect_status(u, 200);
    hw_drawing unprimed = hw_drawing_of(u);
    want.xy = malloc(90 * 2 * sizeof(double));
    want.n = 90;
    hw_ref_draw(NULL, NULL, 0, &p, want.xy);
    expect_same_drawing(&unprimed, &want, "the engine's drawing without a prime");
    ck_assert_msg(!drawings_equal(&got, &unprimed), "the prime changed nothing");
    hw_drawing_free(&want);
    hw_drawing_free(&got);
    hw_drawing_free(&unprimed);
    reply_free(&r);
    reply_free(&u);
}
END_TEST

START_TEST(hw_sample_as_svg)
{
    reply j = http_postf(&srv, HW_SAMPLE, "{s:i, s:i}", "max_points", 150, "seed", 3);
    expect_status(j, 200);
    hw_drawing d = hw_drawing_of(j);
    reply s = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:s}", "max_points", 150, "seed", 3,
                         "format", "svg");
    expect_status(s, 200);
    ck_assert_msg(strncmp(s.content_type, "image/svg+xml", 13) == 0, "Content-Type %s",
                  s.content_type);
    ck_assert_int_eq(svg_paths(s.body, s.len), d.nstrokes);
    ck_assert_msg(strcmp(s.body, jstr(j, "svg")) == 0, "the SVG differs from the JSON reply's");
    req_opts o = {.accept = "image/svg+xml"};
    reply a = http_req(&srv, "POST", HW_SAMPLE, "{\"max_points\": 150, \"seed\": 3}", &o);
    expect_status(a, 200);
    ck_assert_msg(strncmp(a.content_type, "image/svg+xml", 13) == 0 && strcmp(a.body, s.body) == 0,
                  "Accept: image/svg+xml gave %s: %.300s", a.content_type, a.body);
    /* format says more than Accept */
    reply f = http_req(&srv, "POST", HW_SAMPLE,
                       "{\"max_points\": 150, \"seed\": 3, \"format\": \"json\"}", &o);
    expect_status(f, 200);
    ck_assert_msg(strncmp(f.content_type, "application/json", 16) == 0, "Content-Type %s",
                  f.content_type);
    hw_drawing_free(&d);
    reply_free(&j);
    reply_free(&s);
    reply_free(&a);
    reply_free(&f);
}
END_TEST

START_TEST(hw_sample_streams_points)
{
    /* a short prime, and a long one */
    json_t *primes[2] = {json_loads("[[[10, 10], [12, 11]], [[15, 9]]]", 0, NULL), json_array()};
    for (int k = 0; k < 3; k++) {
        json_t *stroke = json_array();
        for (int i = 0; i < 300; i++)
            json_array_append_new(stroke, json_pack("[f, f]", 10.0 + i * 0.7 + k * 5,
                                                    20.0 + 3 * sin(i * 0.3)));
        json_array_append_new(primes[1], stroke);
    }
    for (int p = 0; p < 2; p++) {
        reply r = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:O}", "max_points", 200, "seed", 9,
                             "prime", primes[p]);
        expect_status(r, 200);
        hw_drawing want = hw_drawing_of(r);
        for (int ndjson = 0; ndjson <= 1; ndjson++) {
            stream_call s;
            hw_stream_init(&s, &srv, HW_SAMPLE, ndjson, "{s:i, s:i, s:O}", "max_points", 200,
                           "seed", 9, "prime", primes[p]);
            stream_run(&s);
            hw_drawing got = hw_stream_drawing(&s, 200);
            expect_same_drawing(&got, &want, ndjson ? "NDJSON points" : "SSE points");
            ck_assert_int_eq(got.nstrokes, want.nstrokes);
            ck_assert_int_eq(json_integer_value(json_object_get(s.done, "seed")), 9);
            /* heartbeats (SSE comments) come only while no point does for 250 ms, and
             * never in NDJSON: a prime of 900 points is read in a few batched steps */
            ck_assert_msg(s.ncomments == 0 || (p == 1 && !ndjson),
                          "%d heartbeats while reading a prime of %s points (%s)", s.ncomments,
                          p ? "900" : "3", ndjson ? "NDJSON" : "SSE");
            hw_drawing_free(&got);
            stream_free(&s);
        }
        hw_drawing_free(&want);
        reply_free(&r);
    }
    json_decref(primes[0]);
    json_decref(primes[1]);
}
END_TEST

/* 64 drawings at once, four seeds: each draws what its seed draws alone, and the model's
 * scheduler stepped them together (more than 8 in some step). */
#define HW_TOGETHER 64

typedef struct {
    const char *body;
    pthread_barrier_t *go;
    reply r;
} hw_call;

static void *hw_call_run(void *arg)
{
    hw_call *c = arg;
    pthread_barrier_wait(c->go);
    c->r = http_post(&srv, HW_SAMPLE, c->body);
    return NULL;
}

START_TEST(hw_concurrent_drawings_draw_what_one_draws_alone)
{
    char bodies[4][96];
    reply solo[4];
    for (int k = 0; k < 4; k++) {
        snprintf(bodies[k], sizeof bodies[k], "{\"max_points\": 300, \"seed\": %d, \"bias\": %g}", 40 + k, 0.25 * k);
        solo[k] = http_post(&srv, HW_SAMPLE, bodies[k]);
        expect_status(solo[k], 200);
    }
    char key[160];
    snprintf(key, sizeof key, "hyperd_batch_size_bucket{model=\"%s\",le=\"8\"}", jstr(solo[0], "model"));
    reply m0 = http_get(&srv, "/metrics");
    const double small0 = metric(m0.body, key);
    reply_free(&m0);
    hw_call c[HW_TOGETHER];
    pthread_t th[HW_TOGETHER];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, HW_TOGETHER);
    for (int k = 0; k < HW_TOGETHER; k++) {
        c[k] = (hw_call){.body = bodies[k % 4], .go = &go};
        ck_assert_int_eq(pthread_create(&th[k], NULL, hw_call_run, &c[k]), 0);
    }
    for (int k = 0; k < HW_TOGETHER; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_destroy(&go);
    for (int k = 0; k < HW_TOGETHER; k++) {
        expect_status(c[k].r, 200);
        ck_assert_msg(strcmp(c[k].r.body, solo[k % 4].body) == 0,
                      "drawing %d of %d together (seed %d) differs from the one drawn alone:\n%.400s\n%.400s", k,
                      HW_TOGETHER, 40 + k % 4, c[k].r.body, solo[k % 4].body);
        reply_free(&c[k].r);
    }
    /* steps of more than 8 rows: the le="8" bucket grew by less than the count */
    reply m1 = http_get(&srv, "/metrics");
    char count_key[160];
    snprintf(count_key, sizeof count_key, "hyperd_batch_size_count{model=\"%s\"}", jstr(solo[0], "model"));
    const double steps = metric(m1.body, count_key), small = metric(m1.body, key);
    reply_free(&m1);
    ck_assert_msg(steps - small > 0, "no step drew more than 8 drawings together (%g of %g steps had 8 or fewer;"
                  " %g before): the test proved nothing", small, steps, small0);
    for (int k = 0; k < 4; k++)
        reply_free(&solo[k]);
}
END_TEST

START_TEST(hw_sample_rejects_bad_requests)
{
    static const struct {
        const char *body;
        int status;
        const char *part;
    } bad[] = {
        {"{\"max_points\": 0}", 400, "max_points"},
        {"{\"max_points\": 20001}", 400, "max_points"},
        {"{\"max_points\": 1.5}", 400, "max_points"},
        {"{\"max_points\": \"10\"}", 400, "max_points"},
        {"{\"bias\": -1}", 400, "bias"},
        {"{\"bias\": 10.5}", 400, "bias"},
        {"{\"bias\": \"neat\"}", 400, "bias"},
        {"{\"temperature\": 0}", 400, "temperature"},
        {"{\"temperature\": -1}", 400, "temperature"},
        {"{\"temperature\": 10.5}", 400, "temperature"},
        {"{\"temperature\": \"hot\"}", 400, "temperature"},
        {"{\"seed\": -1}", 400, "seed"},
        {"{\"seed\": 1.5}", 400, "seed"},
        {"{\"seed\": \"1\"}", 400, "seed"},
        {"{\"format\": \"png\"}", 400, "format"},
        {"{\"format\": 5}", 400, "format"},
        {"{\"stream\": \"yes\"}", 400, "stream"},
        {"{\"stream\": true, \"format\": \"svg\"}", 400, "format"},
        {"{\"model\": 5}", 400, "model"},
        {"{\"model\": \"charlm\"}", 400, "'charlm' is not a handwriting model"},
        {"{\"model\": \"nope\"}", 404, "nope"},
        {"{\"modle\": \"handwriting\"}", 400, "modle"},
        {"{\"prompt\": \"Hello\"}", 400, "prompt"},
        {"{\"prime\": 5}", 400, "prime"},
        {"{\"prime\": [5]}", 400, "prime: stroke 0"},
        {"{\"prime\": [[]]}", 400, "prime: stroke 0 has no points"},
        {"{\"prime\": [[[0, 0]], [[1, 1]], [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], \"x\"]]}", 400,
         "prime: stroke 2: point 5 is not [x, y]"},
        {"{\"prime\": [[[1, \"a\"]]]}", 400, "prime: stroke 0: point 0 is not [x, y]"},
        {"{\"prime\": [[[1, 2, 3]]]}", 400, "prime: stroke 0: point 0 is not [x, y]"},
        {"{\"prime\": [[[2e6, 0]]]}", 400, "prime: stroke 0: point 0"},
        {"{\"prime\": {\"strokes\": []}}", 400, "prime"},
        {"{\"max_points\": 5", 400, "JSON"},
        {"[1]", 400, "object"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        reply r = http_post(&srv, HW_SAMPLE, bad[k].body);
        expect_error(r, bad[k].status, bad[k].status == 404 ? "not_found" : "invalid_request",
                     bad[k].part);
        reply_free(&r);
    }
    /* a prime over the limit of points, refused before anything is allocated for it */
    size_t n = 20001;
    char *big = malloc(n * 8 + 64);
    size_t len = (size_t)sprintf(big, "{\"prime\": [[");
    for (size_t k = 0; k < n; k++)
        len += (size_t)sprintf(big + len, "%s[%zu, 1]", k ? "," : "", k % 100);
    strcpy(big + len, "]]}");
    reply r = http_post(&srv, HW_SAMPLE, big);
    expect_error(r, 400, "invalid_request", "prime: more than the limit of 20000 points");
    reply_free(&r);
    free(big);
    req_opts o = {.content_type = "text/plain"};
    r = http_req(&srv, "POST", HW_SAMPLE, "{}", &o);
    expect_error(r, 415, "unsupported_media_type", "text/plain");
    reply_free(&r);
    r = http_get(&srv, HW_SAMPLE);
    expect_error(r, 405, "method_not_allowed", "GET");
    reply_free(&r);
    r = http_get(&srv, "/v1/health"); /* none of it hurt the server */
    expect_status(r, 200);
    reply_free(&r);
}
END_TEST

START_TEST(hw_session_continues_the_drawing)
{
    char one[ID_LEN + 1], two[ID_LEN + 1];
    hw_session_new(&srv, 21, one);
    hw_session_new(&srv, 21, two);
    ck_assert_int_eq(hw_points_seen(&srv, one), 0);
    hw_drawing whole = hw_generate(&srv, one, "{s:i}", "max_points", 70);
    hw_drawing first = hw_generate(&srv, two, "{s:i}", "max_points", 40);
    hw_drawing second = hw_generate(&srv, two, "{s:i}", "max_points", 30);
    ck_assert_int_eq(hw_points_seen(&srv, two), 70);
    /* 40 + 30 points are the 70 of one call: state, pen and generator went on */
    hw_drawing joined = {malloc(70 * 2 * sizeof(double)), 70, 0};
    memcpy(joined.xy, first.xy, 40 * 2 * sizeof(double));
    memcpy(joined.xy + 80, second.xy, 30 * 2 * sizeof(double));
    expect_same_drawing(&joined, &whole, "40 + 30 points against 70");
    /* so the second call starts near where the first ended, not back at the origin */
    double step = hypot(second.xy[0] - first.xy[78], second.xy[1] - first.xy[79]);
    double biggest = 0;
    for (int i = 1; i < whole.n; i++)
        biggest = fmax(biggest, hypot(whole.xy[2 * i] - whole.xy[2 * i - 2],
                                      whole.xy[2 * i + 1] - whole.xy[2 * i - 1]));
    ck_assert_msg(step <= biggest, "the second call began %.2f from the first's end (steps are "
                  "at most %.2f)", step, biggest);
    /* a session seed makes a drawing as reproducible as a request seed: a fresh session
     * reseeded at its first generate draws what the sample endpoint does */
    char three[ID_LEN + 1];
    hw_session_new(&srv, -1, three);
    hw_drawing reseeded = hw_generate(&srv, three, "{s:i, s:i, s:f}", "max_points", 50, "seed", 8,
                                      "bias", 1.0);
    reply r = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:f}", "max_points", 50, "seed", 8, "bias", 1.0);
    expect_status(r, 200);
    hw_drawing sample = hw_drawing_of(r);
    expect_same_drawing(&reseeded, &sample, "a fresh session with seed 8 against a sample");
    char other[ID_LEN + 1];
    hw_session_new(&srv, 22, other);
    hw_drawing o = hw_generate(&srv, other, "{s:i}", "max_points", 70);
    ck_assert_msg(!drawings_equal(&o, &whole), "session seeds 21 and 22 drew the same");
    hw_drawing *all[] = {&whole, &first, &second, &joined, &reseeded, &sample, &o};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        hw_drawing_free(all[k]);
    reply_free(&r);
}
END_TEST

START_TEST(hw_session_streams_and_formats)
{
    char a[ID_LEN + 1], b[ID_LEN + 1];
    hw_session_new(&srv, 31, a);
    hw_session_new(&srv, 31, b);
    hw_drawing want = hw_generate(&srv, a, "{s:i}", "max_points", 100);
    stream_call s;
    hw_stream_init(&s, &srv, at(b, "/generate").s, 0, "{s:i}", "max_points", 60);
    stream_run(&s);
    hw_drawing got = hw_stream_drawing(&s, 60);
    ck_assert_msg(json_is_null(json_object_get(s.done, "seed")), "a session stream without a seed "
                  "tells one");
    stream_free(&s);
    /* the session is free as soon as the final event is read, and goes on from the stream */
    hw_drawing rest = hw_generate(&srv, b, "{s:i}", "max_points", 40);
    hw_drawing joined = {malloc(100 * 2 * sizeof(double)), 100, 0};
    memcpy(joined.xy, got.xy, 60 * 2 * sizeof(double));
    memcpy(joined.xy + 120, rest.xy, 40 * 2 * sizeof(double));
    expect_same_drawing(&joined, &want, "60 streamed + 40 plain against 100 plain");
    ck_assert_int_eq(hw_points_seen(&srv, b), 100);
    reply r = http_postf(&srv, at(b, "/generate").s, "{s:i, s:s}", "max_points", 30, "format", "svg");
    expect_status(r, 200);
    ck_assert_msg(strncmp(r.content_type, "image/svg+xml", 13) == 0, "Content-Type %s",
                  r.content_type);
    ck_assert_int_gt(svg_paths(r.body, r.len), 0);
    reply_free(&r);
    ck_assert_int_eq(hw_points_seen(&srv, b), 130);
    hw_drawing_free(&want);
    hw_drawing_free(&got);
    hw_drawing_free(&rest);
    hw_drawing_free(&joined);
}
END_TEST

START_TEST(hw_session_feed_fork_reset)
{
    char a[ID_LEN + 1], b[ID_LEN + 1];
    hw_session_new(&srv, 41, a);
    hw_session_new(&srv, 41, b);
    const char *strokes = "{\"strokes\": [[[100, 50], [103, 52], [107, 51]], [[110, 55], [112, 60]]]}";
    reply r = http_post(&srv, at(a, "/feed").s, strokes);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "points"), 5);
    double nats = jnum(r, "nats_per_point");
    ck_assert_msg(isfinite(nats), "nats_per_point %g", nats);
    reply_free(&r);
    ck_assert_int_eq(hw_points_seen(&srv, a), 5);
    /* feeding is priming: what follows is the sample endpoint's drawing after that prime */
    r = http_post(&srv, HW_SAMPLE, "{\"seed\": 41, \"max_points\": 50, \"prime\": "
                                   "[[[100, 50], [103, 52], [107, 51]], [[110, 55], [112, 60]]]}");
    expect_status(r, 200);
    hw_drawing primed = hw_drawing_of(r);
    reply_free(&r);
    r = http_post(&srv, at(a, "/fork").s, NULL);
    expect_status(r, 201);
    ck_assert_int_eq(jint(r, "points_seen"), 5);
    char f[ID_LEN + 1];
    snprintf(f, sizeof f, "%s", jstr(r, "id"));
    reply_free(&r);
    hw_drawing from_a = hw_generate(&srv, a, "{s:i}", "max_points", 50);
    expect_same_drawing(&from_a, &primed, "a session fed strokes against a primed sample");
    /* the fork has the state, the pen and the generator */
    hw_drawing from_f = hw_generate(&srv, f, "{s:i}", "max_points", 50);
    expect_same_drawing(&from_f, &from_a, "the fork against its source");
    /* strokes fed to a session that has drawn continue from its pen: the first point is
     * a move from where the pen is */
    r = http_post(&srv, at(f, "/feed").s, "{\"strokes\": [[[0, 0]]]}");
    expect_status(r, 200);
    reply_free(&r);
    ck_assert_int_eq(hw_points_seen(&srv, f), 56);
    r = http_post(&srv, at(f, "/feed").s, "{\"strokes\": []}");
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "points"), 0);
    ck_assert_msg(json_is_null(json_object_get(r.json, "nats_per_point")), "%s", r.body);
    reply_free(&r);
    /* reset: back to a fresh session's state, pen and count */
    r = http_post(&srv, at(a, "/reset").s, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r, "points_seen"), 0);
    reply_free(&r);
    hw_drawing ra = hw_generate(&srv, a, "{s:i, s:i}", "max_points", 40, "seed", 3);
    hw_drawing rb = hw_generate(&srv, b, "{s:i, s:i}", "max_points", 40, "seed", 3);
    expect_same_drawing(&ra, &rb, "a reset session against a fresh one");
    ck_assert_msg(fabs(rb.xy[0]) < 50 && fabs(rb.xy[1]) < 50, "a fresh pen began at (%.2f, %.2f)",
                  rb.xy[0], rb.xy[1]);
    /* the listing shows points, not characters */
    reply l = http_get(&srv, "/v1/sessions?limit=1000");
    expect_status(l, 200);
    size_t k;
    json_t *e;
    int found = 0;
    json_array_foreach(json_object_get(l.json, "sessions"), k, e)
        if (strcmp(json_string_value(json_object_get(e, "id")), f) == 0)
            found = json_integer_value(json_object_get(e, "points_seen")) == 56 &&
                    !json_object_get(e, "chars_seen");
    ck_assert_msg(found, "the fork is not listed with points_seen 56: %.1500s", l.body);
    reply_free(&l);
    hw_drawing *all[] = {&primed, &from_a, &from_f, &ra, &rb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hw_drawing_free(all[i]);
}
END_TEST

START_TEST(hw_session_rejects_bad_requests)
{
    char id[ID_LEN + 1];
    hw_session_new(&srv, 1, id);
    static const bad_body generate[] = {
        {"{\"prompt\": \"Hello\"}", "prompt"},
        {"{\"max_chars\": 5}", "max_chars"},
        {"{\"top_k\": 3}", "top_k"},
        {"{\"top_p\": 0.5}", "top_p"},
        {"{\"stop\": \"x\"}", "stop"},
        {"{\"max_points\": 0}", "max_points"},
        {"{\"max_points\": 20001}", "max_points"},
        {"{\"bias\": -1}", "bias"},
        {"{\"temperature\": 0}", "temperature"},
        {"{\"seed\": -1}", "seed"},
        {"{\"format\": \"gif\"}", "format"},
        {"{\"stream\": true, \"format\": \"svg\"}", "format"},
        {"{\"prime\": [[[1, 2]]]}", "prime"},
        {"{\"model\": \"handwriting\"}", "model"},
        {"{\"max_points\": 5", "JSON"},
    };
    static const bad_body feed[] = {
        {"{}", "strokes"},
        {"{\"text\": \"Hello\"}", "text"},
        {"{\"strokes\": 5}", "strokes"},
        {"{\"strokes\": [[[1]]]}", "strokes: stroke 0: point 0 is not [x, y]"},
        {"{\"strokes\": [[[1, 2]], []]}", "strokes: stroke 1 has no points"},
        {"{\"strokes\": [], \"pen\": 1}", "pen"},
    };
    const struct {
        const char *tail, *valid;
        const bad_body *bad;
        size_t n;
    } ends[] = {{"/generate", "{\"max_points\": 5}", generate, sizeof generate / sizeof generate[0]},
                {"/feed", "{\"strokes\": [[[1, 2]]]}", feed, sizeof feed / sizeof feed[0]}};
    for (size_t e = 0; e < 2; e++) {
        for (size_t k = 0; k < ends[e].n; k++) {
            reply r = http_post(&srv, at(id, ends[e].tail).s, ends[e].bad[k].body);
            expect_error(r, 400, "invalid_request", ends[e].bad[k].part);
            reply_free(&r);
        }
        req_opts o = {.content_type = "text/plain"};
        reply r = http_req(&srv, "POST", at(id, ends[e].tail).s, ends[e].valid, &o);
        expect_error(r, 415, "unsupported_media_type", "text/plain");
        reply_free(&r);
    }
    ck_assert_int_eq(hw_points_seen(&srv, id), 0);
    /* a session needs a model that can be driven: handwriting is one now */
    reply r = http_postf(&srv, "/v1/sessions", "{s:s}", "model", "nope");
    expect_error(r, 404, "not_found", "nope");
    reply_free(&r);
    /* and a text session takes none of the drawing fields */
    char text[ID_LEN + 1];
    session_new(&srv, 1, text);
    r = http_postf(&srv, at(text, "/generate").s, "{s:i}", "max_points", 5);
    expect_error(r, 400, "invalid_request", "max_points");
    reply_free(&r);
    r = http_post(&srv, at(text, "/feed").s, "{\"strokes\": [[[1, 2]]]}");
    expect_error(r, 400, "invalid_request", "strokes");
    reply_free(&r);
}
END_TEST

START_TEST(hw_disconnect_frees_the_session)
{
    char id[ID_LEN + 1];
    hw_session_new(&srv, 51, id);
    stream_call s;
    hw_stream_init(&s, &srv, at(id, "/generate").s, 0, "{s:i}", "max_points", 20000);
    s.abort_after = 1;
    stream_run(&s);
    ck_assert_msg(s.npoints >= 1 && !s.done, "the transfer was not cut after the first point "
                  "(curl: %s, %d points)", curl_easy_strerror(s.rc), s.npoints);
    stream_free(&s);
    ck_assert_msg(wait_not_busy(&srv, id, 2) >= 0, "still busy 2 s after the client went away");
    json_int_t seen = hw_points_seen(&srv, id);
    ck_assert_msg(seen >= 1 && seen <= 20000, "points_seen %lld", (long long)seen);
    hw_drawing d = hw_generate(&srv, id, "{s:i}", "max_points", 5);
    hw_drawing_free(&d);
    ck_assert_int_eq(hw_points_seen(&srv, id), seen + 5);
    /* a sample's stream has nothing to give back, and must not hurt the server either */
    hw_stream_init(&s, &srv, HW_SAMPLE, 1, "{s:i}", "max_points", 20000);
    s.abort_after = 1;
    stream_run(&s);
    stream_free(&s);
    reply r = http_get(&srv, "/v1/health");
    expect_status(r, 200);
    reply_free(&r);
}
END_TEST

START_TEST(hw_session_survives_a_restart)
{
    static const char *const flags[] = {"--models", hw_model_path, NULL};
    hyperd_proc d;
    hyperd_init(&d, "hw-restart", flags);
    hyperd_start_ok(&d);
    char s[ID_LEN + 1], f[ID_LEN + 1], t[ID_LEN + 1];
    hw_session_new(&d, 61, s);
    session_new(&d, 61, t); /* a text session beside it */
    reply r = http_post(&d, at(s, "/feed").s, "{\"strokes\": [[[5, 5], [9, 7]]]}");
    expect_status(r, 200);
    reply_free(&r);
    hw_drawing first = hw_generate(&d, s, "{s:i}", "max_points", 25);
    r = http_post(&d, at(s, "/fork").s, NULL);
    expect_status(r, 201);
    snprintf(f, sizeof f, "%s", jstr(r, "id"));
    reply_free(&r);
    hw_drawing next = hw_generate(&d, f, "{s:i}", "max_points", 30); /* what s draws next */
    char *text = generate(&d, t, 20, -1);
    hyperd_stop_ok(&d);
    hyperd_start_ok(&d);
    ck_assert_int_eq(hw_points_seen(&d, s), 2 + 25);
    ck_assert_int_eq(hw_points_seen(&d, f), 2 + 25 + 30);
    hw_drawing after = hw_generate(&d, s, "{s:i}", "max_points", 30);
    expect_same_drawing(&after, &next, "after the restart, without a seed");
    json_int_t seen;
    session_state(&d, t, &seen, NULL);
    ck_assert_int_eq(seen, 21);
    hyperd_stop_ok(&d);
    free(text);
    hw_drawing_free(&first);
    hw_drawing_free(&next);
    hw_drawing_free(&after);
}
END_TEST

/* Without a handwriting model loaded (the system test case's daemon), the endpoint says so. */
START_TEST(hw_sample_needs_a_handwriting_model)
{
    reply r = http_post(&srv, HW_SAMPLE, "{}");
    expect_error(r, 503, "unavailable", "no handwriting model");
    reply_free(&r);
    r = http_post(&srv, HW_SAMPLE, "{\"model\": \"charlm\"}");
    expect_error(r, 400, "invalid_request", "charlm");
    reply_free(&r);
}
END_TEST

/* ==== what the hypernetwork does: include_hyper ============================================ */

static char lstm_model_path[128];     /* root/plain.safetensors: a character lstm */
static char lstm_hw_model_path[128];  /* root/plainhw.safetensors: a handwriting lstm */

/* The daemon of the include_hyper tests: charlm and the handwriting model (hyper cells) and
 * an lstm of each kind, which have no hypernetwork. */
static void setup_hyper(void)
{
    root_make();
    char err[HYPER_ERRMSG_MAX];
    vocab v;
    ck_assert_msg(vocab_build(&v, CORPUS, strlen(CORPUS), err) == HYPER_OK, "vocab_build: %s", err);
    const model_config cfgs[2] = {{CELL_LSTM, 1, 16, 0, 0, 0, v.size},
                                  {CELL_LSTM, 1, 16, 0, 0, 3, mdn_outputs(3)}};
    snprintf(lstm_model_path, sizeof lstm_model_path, "%s/plain.safetensors", root);
    snprintf(lstm_hw_model_path, sizeof lstm_hw_model_path, "%s/plainhw.safetensors", root);
    const ckpt_kv meta[] = {{"kind", "handwriting"}, {"strokes.mean_x", "0"},
                            {"strokes.mean_y", "0"}, {"strokes.std_x", "1"}, {"strokes.std_y", "1"}};
    for (int k = 0; k < 2; k++) {
        model m;
        ck_assert_msg(model_create(&m, &cfgs[k], err) == HYPER_OK, "model_create: %s", err);
        model_init(&m, 1);
        ck_assert_msg(checkpoint_save(k ? lstm_hw_model_path : lstm_model_path, &m, k ? NULL : &v,
                                      k ? meta : NULL, k ? 5 : 0, NULL, 0, err) == HYPER_OK,
                      "checkpoint_save: %s", err);
        model_free(&m);
    }
    vocab_free(&v);
    static const char *flags[8];
    const char *f[] = {"--models", hw_model_path, "--models", lstm_model_path, "--models",
                       lstm_hw_model_path, NULL};
    memcpy(flags, f, sizeof f);
    hyperd_init(&srv, "data", flags);
    char why[4096];
    if (hyperd_start(&srv, why, sizeof why) != 0) {
        root_remove();
        ck_abort_msg("%s", why);
    }
}

/* The "hyper" of a reply: n activities (n, 4), each finite and ≥ 0 (new array). */
#define hyper_of(j, n) hyper_of_at(__LINE__, j, n)
static double *hyper_of_at(int line, json_t *h, size_t n)
{
    char *d = json_dumps(h, JSON_COMPACT);
    ck_assert_msg(hyper_valid(h, (int)n), "line %d: hyper is not %zu activities: %.800s", line, n,
                  d ? d : "(none)");
    free(d);
    double *a = malloc((n ? n : 1) * 4 * sizeof *a);
    for (size_t k = 0; k < n; k++)
        for (size_t g = 0; g < 4; g++)
            a[4 * k + g] = json_number_value(json_array_get(json_array_get(h, k), g));
    return a;
}

/* a and b (n, 4) agree to a relative tol. */
#define expect_same_hyper(a, b, n, tol, what) expect_same_hyper_at(__LINE__, a, b, n, tol, what)
static void expect_same_hyper_at(int line, const double *a, const double *b, size_t n, double tol,
                                 const char *what)
{
    for (size_t i = 0; i < 4 * n; i++)
        ck_assert_msg(fabs(a[i] - b[i]) <= tol * fmax(fabs(b[i]), 1e-6),
                      "line %d: %s: character/point %zu gate %zu: %.10g against %.10g", line, what,
                      i / 4, i % 4, a[i], b[i]);
}

/* Every streamed event's hyper, joined, in order (new array); *n receives the count. */
static double *stream_hyper(const stream_call *s, size_t *n)
{
    *n = 0;
    size_t k;
    json_t *e;
    json_array_foreach(s->events, k, e) {
        json_t *h = json_object_get(e, "hyper");
        *n += json_is_array(json_array_get(h, 0)) ? json_array_size(h) : h ? 1 : 0;
    }
    double *a = malloc((*n ? *n : 1) * 4 * sizeof *a), *at_ = a;
    json_array_foreach(s->events, k, e) {
        json_t *h = json_object_get(e, "hyper");
        if (!h)
            continue;
        const int many = json_is_array(json_array_get(h, 0));
        for (size_t i = 0; i < (many ? json_array_size(h) : 1); i++, at_ += 4)
            for (size_t g = 0; g < 4; g++)
                at_[g] = json_number_value(json_array_get(many ? json_array_get(h, i) : h, g));
    }
    return a;
}

START_TEST(hyper_text_activity_per_character)
{
    enum { CHARS = 300 };
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1];
    session_new(&srv, 7, a);
    session_new(&srv, 7, b);
    session_new(&srv, 7, c);
    reply r = http_postf(&srv, at(a, "/generate").s, "{s:i, s:b}", "max_chars", CHARS,
                         "include_hyper", 1);
    expect_status(r, 200);
    const char *text = jstr(r, "text");
    ck_assert_int_eq(strlen(text), CHARS); /* the corpus is ASCII: a byte a character */
    double *plain = hyper_of(json_object_get(r.json, "hyper"), CHARS);
    double total = 0;
    for (int i = 0; i < 4 * CHARS; i++)
        total += plain[i];
    ck_assert_msg(total > 0, "every activity is 0");

    /* a direct recomputation from the engine's cell: ĥ before and after each character */
    ref_model ref;
    ref_open(&ref);
    char err[HYPER_ERRMSG_MAX];
    ck_assert_msg(model_pack(&ref.m, 0, err) == HYPER_OK, "model_pack: %s", err); /* as served */
    ref_feed(&ref, "\n");
    const int H = ref.m.cfg.hyper_units;
    real *before = malloc((size_t)H * sizeof(real));
    double *want = malloc(4 * CHARS * sizeof *want);
    for (int i = 0; i < CHARS; i++) {
        int32_t id = vocab_id(&ref.v, (unsigned char)text[i]);
        memcpy(before, ref.st.hh[0], (size_t)H * sizeof(real));
        model_step(&ref.m, &ref.st, ref.ws, 1, &id, NULL, ref.logits);
        real act[4];
        ck_assert_int_eq(model_hyper_activity(&ref.m, 0, before, ref.st.hh[0], act), 0);
        for (int g = 0; g < 4; g++)
            want[4 * i + g] = act[g];
    }
    expect_same_hyper(plain, want, CHARS, 1e-6, "the reply against the engine's recomputation");
    free(before);
    free(want);
    ref_close(&ref);

    /* streamed (SSE and NDJSON), the same activities, one per character of each event */
    const char *ids[2] = {b, c};
    for (int nd = 0; nd < 2; nd++) {
        stream_call s;
        stream_init(&s, &srv, ids[nd], nd, "{s:i, s:b}", "max_chars", CHARS, "include_hyper", 1);
        stream_run(&s);
        expect_stream_done(&s, "length");
        expect_same_text(s.text, text, nd ? "NDJSON text" : "SSE text");
        size_t n = 0;
        double *got = stream_hyper(&s, &n);
        ck_assert_int_eq(n, CHARS);
        expect_same_hyper(got, plain, CHARS, 1e-8, nd ? "NDJSON against plain" : "SSE against plain");
        free(got);
        stream_free(&s);
    }
    free(plain);
    /* a stop string: an activity for each character of the text that is left */
    char stop[3] = {text[40], text[41], 0}; /* text lives in r */
    reply_free(&r);
    char d[ID_LEN + 1];
    session_new(&srv, 7, d);
    reply t = http_postf(&srv, at(d, "/generate").s, "{s:i, s:s, s:b}", "max_chars", CHARS,
                         "stop", stop, "include_hyper", 1);
    expect_status(t, 200);
    ck_assert_str_eq(jstr(t, "finish_reason"), "stop");
    free(hyper_of(json_object_get(t.json, "hyper"), strlen(jstr(t, "text"))));
    reply_free(&t);
    /* without include_hyper, no hyper */
    reply u = http_postf(&srv, at(d, "/generate").s, "{s:i}", "max_chars", 5);
    expect_status(u, 200);
    ck_assert_ptr_null(json_object_get(u.json, "hyper"));
    reply_free(&u);
}
END_TEST

START_TEST(hyper_text_as_svg)
{
    char a[ID_LEN + 1];
    session_new(&srv, 9, a);
    reply r = http_postf(&srv, at(a, "/generate").s, "{s:s, s:i, s:b, s:s}", "prompt", "Hello",
                         "max_chars", 250, "include_hyper", 1, "format", "svg");
    expect_status(r, 200);
    ck_assert_msg(strncmp(r.content_type, "image/svg+xml", 13) == 0, "Content-Type %s", r.content_type);
    svg_scan sc = svg_read(r.body, r.len);
    ck_assert_int_eq(sc.tspans, 250);
    reply_free(&r);
}
END_TEST

START_TEST(hyper_text_refusals)
{
    char a[ID_LEN + 1], p[ID_LEN + 1];
    session_new(&srv, 1, a);
    model_session_new(&srv, "plain", 1, p);
    static const bad_body bad[] = {
        {"{\"include_hyper\": \"yes\"}", "include_hyper"},
        {"{\"include_hyper\": 1}", "include_hyper"},
        {"{\"format\": \"png\", \"include_hyper\": true}", "format"},
        {"{\"format\": \"svg\"}", "include_hyper"},
        {"{\"format\": \"svg\", \"include_hyper\": true, \"stream\": true}", "stream"},
    };
    expect_refusals(a, "/generate", bad, sizeof bad / sizeof bad[0], "{}");
    reply r = http_post(&srv, at(p, "/generate").s, "{\"include_hyper\": true}");
    expect_error(r, 400, "invalid_request", "lstm");
    reply_free(&r);
    r = http_post(&srv, at(p, "/generate").s, "{\"include_hyper\": false, \"max_chars\": 3}");
    expect_status(r, 200);
    reply_free(&r);
}
END_TEST

START_TEST(hyper_handwriting_activity_per_point)
{
    enum { POINTS = 120 };
    reply r = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:b}", "max_points", POINTS, "seed", 4,
                         "include_hyper", 1);
    expect_status(r, 200);
    hw_drawing d = hw_drawing_of(r);
    double *plain = hyper_of(json_object_get(r.json, "hyper"), POINTS);
    /* the same drawing as without include_hyper, its SVG one segment per point */
    reply o = http_postf(&srv, HW_SAMPLE, "{s:i, s:i}", "max_points", POINTS, "seed", 4);
    hw_drawing od = hw_drawing_of(o);
    expect_same_drawing(&d, &od, "with include_hyper against without");
    const char *svg = jstr(r, "svg");
    ck_assert_int_eq(svg_paths(svg, strlen(svg)), POINTS);
    reply v = http_postf(&srv, HW_SAMPLE, "{s:i, s:i, s:b, s:s}", "max_points", POINTS, "seed", 4,
                         "include_hyper", 1, "format", "svg");
    expect_status(v, 200);
    ck_assert_msg(strcmp(v.body, svg) == 0, "format svg differs from the JSON reply's svg");
    /* streamed: each point event carries its activity, the same as the plain reply's */
    stream_call s;
    hw_stream_init(&s, &srv, HW_SAMPLE, 1, "{s:i, s:i, s:b}", "max_points", POINTS, "seed", 4,
                   "include_hyper", 1);
    stream_run(&s);
    hw_drawing sd = hw_stream_drawing(&s, POINTS);
    size_t n = 0;
    double *got = stream_hyper(&s, &n);
    ck_assert_int_eq(n, POINTS);
    expect_same_hyper(got, plain, POINTS, 1e-8, "streamed against plain");
    free(got);
    stream_free(&s);
    /* a session's generate, plain and streamed, continues with activities */
    char a[ID_LEN + 1], b[ID_LEN + 1];
    hw_session_new(&srv, 5, a);
    hw_session_new(&srv, 5, b);
    reply g = http_postf(&srv, at(a, "/generate").s, "{s:i, s:b}", "max_points", 40,
                         "include_hyper", 1);
    expect_status(g, 200);
    double *gh = hyper_of(json_object_get(g.json, "hyper"), 40);
    hw_stream_init(&s, &srv, at(b, "/generate").s, 0, "{s:i, s:b}", "max_points", 40,
                   "include_hyper", 1);
    stream_run(&s);
    hw_drawing_free(&sd);
    sd = hw_stream_drawing(&s, 40);
    got = stream_hyper(&s, &n);
    ck_assert_int_eq(n, 40);
    expect_same_hyper(got, gh, 40, 1e-8, "a session's streamed against plain");
    free(got);
    free(gh);
    stream_free(&s);
    /* refusals: no hypernetwork, not a boolean */
    char p[ID_LEN + 1];
    model_session_new(&srv, "plainhw", 1, p);
    reply e = http_post(&srv, at(p, "/generate").s, "{\"include_hyper\": true}");
    expect_error(e, 400, "invalid_request", "lstm");
    reply_free(&e);
    e = http_post(&srv, HW_SAMPLE, "{\"model\": \"plainhw\", \"include_hyper\": true}");
    expect_error(e, 400, "invalid_request", "lstm");
    reply_free(&e);
    e = http_post(&srv, HW_SAMPLE, "{\"include_hyper\": \"yes\"}");
    expect_error(e, 400, "invalid_request", "include_hyper");
    reply_free(&e);
    free(plain);
    hw_drawing_free(&d);
    hw_drawing_free(&od);
    hw_drawing_free(&sd);
    reply_free(&r);
    reply_free(&o);
    reply_free(&v);
    reply_free(&g);
}
END_TEST

/* ---- the suite ---------------------------------------------------------------------------- */

Suite *handwriting_api_suite(void);
Suite *handwriting_api_suite(void)
{
    Suite *s = suite_create("handwriting");
    TCase *tc = tcase(s, "no handwriting model", setup_plain, 20);
    tcase_add_test(tc, hw_sample_needs_a_handwriting_model);

    tc = tcase(s, "hyper activity", setup_hyper, 30);
    tcase_add_test(tc, hyper_text_activity_per_character);
    tcase_add_test(tc, hyper_text_as_svg);
    tcase_add_test(tc, hyper_text_refusals);
    tcase_add_test(tc, hyper_handwriting_activity_per_point);

    tc = tcase(s, "handwriting", setup_handwriting, 30);
    tcase_add_test(tc, hw_sample_draws_strokes_and_svg);
    tcase_add_test(tc, hw_sample_is_deterministic_for_a_seed);
    tcase_add_test(tc, hw_sample_matches_the_engine);
    tcase_add_test(tc, hw_sample_as_svg);
    tcase_add_test(tc, hw_sample_streams_points);
    tcase_add_test(tc, hw_concurrent_drawings_draw_what_one_draws_alone);
    tcase_add_test(tc, hw_sample_rejects_bad_requests);
    tcase_add_test(tc, hw_session_continues_the_drawing);
    tcase_add_test(tc, hw_session_streams_and_formats);
    tcase_add_test(tc, hw_session_feed_fork_reset);
    tcase_add_test(tc, hw_session_rejects_bad_requests);
    tcase_add_test(tc, hw_disconnect_frees_the_session);
    tcase_add_test(tc, hw_session_survives_a_restart);
    return s;
}
