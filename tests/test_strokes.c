/*
 * test_strokes.c — handwriting data of engine/strokes.h: the (dx, dy, eos) layout of a
 * line and its inverse, statistics and outlier removal against hand-computed values, the
 * SVG writer (parsed back with expat), the "synthetic:N | dir | .xml | .json" dispatch,
 * and the IAM-OnDB and JSON readers of strokes_io.c.
 *
 * IAM files are written in the real lineStrokes format, and in the dataset's own layout
 * (lineStrokes/a01/a01-000/a01-000u-01.xml beside ascii/a01/a01-000/a01-000u.txt), into a
 * mkdtemp directory that an unchecked fixture makes and removes.  Every damaged input must
 * be refused with a message naming the file (and XML line, or JSON item, stroke and
 * point) and the fault, and must leave the set as it was before the call.
 */
#include <check.h>
#include <errno.h>
#include <expat.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "strokes.h"

/* ---- helpers ------------------------------------------------------------------------- */

#define PATH_BUF 512

/* One directory per test case, made and removed by an unchecked fixture (run in the
 * runner's own process, so it goes even when a test fails); each test uses its own
 * subdirectory of it. */
static char tmpdir[64];

static void dir_create(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hyperd-strokes-XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp failed: %s", strerror(errno));
}

static void dir_remove(void) { fs_remove_tree(tmpdir); }

static const char *tmp_path(char *buf, const char *rel)
{
    snprintf(buf, PATH_BUF, "%s/%s", tmpdir, rel);
    return buf;
}

/* Writes len bytes to tmpdir/rel, making the directories on the way. */
static void write_bytes(const char *rel, const char *data, size_t len)
{
    char path[PATH_BUF];
    tmp_path(path, rel);
    for (char *p = path + strlen(tmpdir) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        ck_assert_msg(mkdir(path, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_text(const char *rel, const char *text) { write_bytes(rel, text, strlen(text)); }

/* Asserts a refusal: status want and a message holding sub1 and (when not NULL) sub2. */
static void expect_refusal(const char *what, hyper_status st, hyper_status want, const char *err,
                           const char *sub1, const char *sub2)
{
    ck_assert_msg(st == want, "%s: status %s, want %s (message: %s)", what, hyper_status_str(st),
                  hyper_status_str(want), st == HYPER_OK ? "none" : err);
    ck_assert_msg(strstr(err, sub1) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, sub1);
    ck_assert_msg(!sub2 || strstr(err, sub2) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, sub2);
}

/* A line added before a call that must fail, to see that the failure leaves it alone. */
static void add_sentinel(stroke_set *s)
{
    const double xy[] = {1, 2, 3, 4};
    const int32_t len[] = {2};
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(strokes_add_line(s, "sentinel", xy, len, 1, err), HYPER_OK);
}

static void expect_only_sentinel(const stroke_set *s, const char *what)
{
    ck_assert_msg(s->n == 1, "%s: the set holds %d lines after the failed call, want the 1 from before",
                  what, s->n);
    ck_assert_pstr_eq(s->lines[0].text, "sentinel");
    ck_assert_int_eq(s->lines[0].npoints, 2);
}

static void expect_pts(const stroke_line *ln, const float *want, int32_t n, const char *what)
{
    ck_assert_msg(ln->npoints == n, "%s: %d points, want %d", what, ln->npoints, n);
    for (int32_t i = 0; i < 3 * n; i++)
        ck_assert_msg(fabsf(ln->pts[i] - want[i]) < 1e-4f, "%s: point %d %s = %g, want %g", what, i / 3,
                      i % 3 == 0 ? "dx" : i % 3 == 1 ? "dy" : "eos", ln->pts[i], want[i]);
}

/* ---- the line layout ----------------------------------------------------------------- */

START_TEST(test_add_line_layout)
{
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], text[] = "hello";
    const double xy[] = {10, 20, 13, 24, 12, 30, 40, 5, 41, 6};
    const int32_t len[] = {3, 2};
    ck_assert_int_eq(strokes_add_line(&s, text, xy, len, 2, err), HYPER_OK);
    ck_assert_int_eq(strokes_add_line(&s, NULL, xy, len, 1, err), HYPER_OK);
    ck_assert_int_eq(s.n, 2);
    /* first point (0, 0); then moves; eos on the last point of every stroke */
    const float want[] = {0, 0, 0, 3, 4, 0, -1, 6, 1, 28, -25, 0, 1, 1, 1};
    expect_pts(&s.lines[0], want, 5, "two strokes");
    const float want1[] = {0, 0, 0, 3, 4, 0, -1, 6, 1};
    expect_pts(&s.lines[1], want1, 3, "first stroke alone");
    ck_assert_pstr_eq(s.lines[0].text, "hello");
    ck_assert_ptr_ne(s.lines[0].text, text); /* copied */
    ck_assert_ptr_null(s.lines[1].text);
    strokes_free(&s);
    ck_assert_int_eq(s.n, 0);
    ck_assert_ptr_null(s.lines);
}
END_TEST

START_TEST(test_absolute_round_trip)
{
    /* integer coordinates survive float offsets exactly; 0.1 steps to float precision */
    double xy[2 * 12];
    for (int i = 0; i < 12; i++) {
        xy[2 * i] = 100 + 7 * i - (i % 3) * 11;
        xy[2 * i + 1] = -50 + (i * i) % 13;
    }
    const int32_t len[] = {4, 1, 5, 2};
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(strokes_add_line(&s, NULL, xy, len, 4, err), HYPER_OK);
    double back[2 * 12];
    int32_t blen[12], nb = -1;
    strokes_to_absolute(s.lines[0].pts, s.lines[0].npoints, xy[0], xy[1], back, blen, &nb);
    ck_assert_int_eq(nb, 4);
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(blen[k], len[k]);
    for (int i = 0; i < 24; i++)
        ck_assert_msg(back[i] == xy[i], "coordinate %d: %g, want %g", i, back[i], xy[i]);

    for (int i = 0; i < 24; i++)
        xy[i] = 0.1 * i - 1.05;
    ck_assert_int_eq(strokes_add_line(&s, NULL, xy, len, 4, err), HYPER_OK);
    strokes_to_absolute(s.lines[1].pts, s.lines[1].npoints, xy[0], xy[1], back, blen, &nb);
    ck_assert_int_eq(nb, 4);
    for (int i = 0; i < 24; i++)
        ck_assert_double_eq_tol(back[i], xy[i], 1e-5);
    strokes_free(&s);

    /* a final stroke without eos still counts; the start point is where the caller says */
    const float pts[] = {0, 0, 0, 1, 1, 1, 2, 2, 0, 3, 3, 0};
    strokes_to_absolute(pts, 4, 5, -5, back, blen, &nb);
    ck_assert_int_eq(nb, 2);
    ck_assert_int_eq(blen[0], 2);
    ck_assert_int_eq(blen[1], 2);
    const double want[] = {5, -5, 6, -4, 8, -2, 11, 1};
    for (int i = 0; i < 8; i++)
        ck_assert_double_eq_tol(back[i], want[i], 1e-12);
}
END_TEST

START_TEST(test_add_line_rejects)
{
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX];
    double xy[] = {1, 2, 3, 4, 5, 6};
    int32_t len[] = {2, 1};
    add_sentinel(&s);
    expect_refusal("no strokes", strokes_add_line(&s, NULL, xy, len, 0, err), HYPER_ERR_FORMAT, err,
                   "no strokes", NULL);
    int32_t empty[] = {2, 0};
    expect_refusal("empty stroke", strokes_add_line(&s, NULL, xy, empty, 2, err), HYPER_ERR_FORMAT, err,
                   "stroke 1 has no points", NULL);
    const double bad[] = {NAN, INFINITY, -INFINITY, 1e6 + 1, -1e6 - 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xy[3] = bad[i];
        expect_refusal("bad coordinate", strokes_add_line(&s, NULL, xy, len, 2, err), HYPER_ERR_FORMAT, err,
                       "point 1", "absurd");
    }
    xy[3] = -1e6; /* the limit itself is fine */
    ck_assert_int_eq(strokes_add_line(&s, NULL, xy, len, 2, err), HYPER_OK);
    ck_assert_int_eq(s.n, 2);

    char *text = malloc(STROKES_MAX_TEXT + 2);
    memset(text, 'a', STROKES_MAX_TEXT + 1);
    text[STROKES_MAX_TEXT + 1] = '\0';
    expect_refusal("long text", strokes_add_line(&s, text, xy, len, 2, err), HYPER_ERR_FORMAT, err,
                   "longer than 4096", NULL);
    text[STROKES_MAX_TEXT] = '\0';
    ck_assert_int_eq(strokes_add_line(&s, text, xy, len, 2, err), HYPER_OK);
    free(text);

    double *many = calloc(2 * (size_t)(STROKES_MAX_POINTS + 1), sizeof *many);
    int32_t big[] = {STROKES_MAX_POINTS, 1};
    expect_refusal("too many points", strokes_add_line(&s, NULL, many, big, 2, err), HYPER_ERR_FORMAT, err,
                   "more than 100000 points", NULL);
    ck_assert_int_eq(strokes_add_line(&s, NULL, many, big, 1, err), HYPER_OK);
    free(many);
    ck_assert_int_eq(s.n, 4);
    strokes_free(&s);
}
END_TEST

/* ---- statistics and outliers ---------------------------------------------------------- */

START_TEST(test_stats_hand_computed)
{
    stroke_set s;
    strokes_init(&s);
    stroke_stats st = strokes_stats(&s);
    ck_assert(st.mean_x == 0 && st.mean_y == 0 && st.std_x == 1 && st.std_y == 1);

    /* offsets dx = 0, 3, -1, 0, 2 and dy = 0, 4, 2, 0, 0:
     *   mean_x = 4/5 = 0.8, E[dx²] = 14/5 = 2.8, var_x = 2.8 - 0.64 = 2.16
     *   mean_y = 6/5 = 1.2, E[dy²] = 20/5 = 4,   var_y = 4 - 1.44 = 2.56, std_y = 1.6 */
    char err[HYPER_ERRMSG_MAX];
    const double a[] = {0, 0, 3, 4, 2, 6}, b[] = {5, 5, 7, 5};
    const int32_t la[] = {3}, lb[] = {2};
    ck_assert_int_eq(strokes_add_line(&s, NULL, a, la, 1, err), HYPER_OK);
    ck_assert_int_eq(strokes_add_line(&s, NULL, b, lb, 1, err), HYPER_OK);
    st = strokes_stats(&s);
    ck_assert_double_eq_tol(st.mean_x, 0.8, 1e-12);
    ck_assert_double_eq_tol(st.mean_y, 1.2, 1e-12);
    ck_assert_double_eq_tol(st.std_x, sqrt(2.16), 1e-12);
    ck_assert_double_eq_tol(st.std_y, 1.6, 1e-12);
    strokes_free(&s);

    /* no movement at all: the deviations are floored, not zero */
    const double still[] = {3, 3, 3, 3};
    ck_assert_int_eq(strokes_add_line(&s, NULL, still, lb, 1, err), HYPER_OK);
    st = strokes_stats(&s);
    ck_assert_double_eq_tol(st.std_x, 1e-6, 1e-15);
    ck_assert_double_eq_tol(st.std_y, 1e-6, 1e-15);
    strokes_free(&s);
}
END_TEST

START_TEST(test_drop_outliers)
{
    /* 21 lines of three points, dx = 0, 1, 1; line 7 jumps 1000 instead.  Over the 63
     * offsets mean_x = 1041/63 = 16.52, E[dx²] = 1000041/63, std_x = 124.9: the jump is
     * 983.5 from the mean, 7.9 deviations — out at limit 5, in at limit 10.  dy is always
     * 0, so its floored deviation must not flag anything. */
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], text[32];
    const int32_t len[] = {3};
    for (int i = 0; i < 21; i++) {
        const double xy[] = {0, 0, i == 7 ? 1000 : 1, 0, i == 7 ? 1001 : 2, 0};
        snprintf(text, sizeof text, "line %d", i);
        ck_assert_int_eq(strokes_add_line(&s, text, xy, len, 1, err), HYPER_OK);
    }
    ck_assert_int_eq(strokes_drop_outliers(&s, 10), 0);
    ck_assert_int_eq(s.n, 21);
    ck_assert_int_eq(strokes_drop_outliers(&s, 5), 1);
    ck_assert_int_eq(s.n, 20);
    for (int i = 0, k = 0; i < 21; i++) {
        if (i == 7)
            continue;
        snprintf(text, sizeof text, "line %d", i);
        ck_assert_pstr_eq(s.lines[k].text, text);
        ck_assert_float_eq(s.lines[k].pts[3], 1.0f);
        k++;
    }
    strokes_free(&s);
}
END_TEST

/* ---- SVG ------------------------------------------------------------------------------- */

#define SVG_MAX_PATHS 8

typedef struct {
    int root_svg, npaths;
    double view[4];
    int has_view;
    char stroke_width[32];
    double first[SVG_MAX_PATHS][2]; /* first point of each path */
    int npairs[SVG_MAX_PATHS];      /* coordinate pairs before any relative "l" */
    double pairs[SVG_MAX_PATHS][8][2];
} svg_seen;

static void XMLCALL svg_start(void *ud, const XML_Char *el, const XML_Char **atts)
{
    svg_seen *v = ud;
    if (strcmp(el, "svg") == 0) {
        v->root_svg = 1;
        for (int i = 0; atts[i]; i += 2)
            if (strcmp(atts[i], "viewBox") == 0)
                v->has_view = sscanf(atts[i + 1], "%lf %lf %lf %lf", &v->view[0], &v->view[1], &v->view[2],
                                     &v->view[3]) == 4;
    } else if (strcmp(el, "g") == 0) {
        for (int i = 0; atts[i]; i += 2)
            if (strcmp(atts[i], "stroke-width") == 0)
                snprintf(v->stroke_width, sizeof v->stroke_width, "%s", atts[i + 1]);
    } else if (strcmp(el, "path") == 0 && v->npaths < SVG_MAX_PATHS) {
        const int k = v->npaths++;
        for (int i = 0; atts[i]; i += 2) {
            if (strcmp(atts[i], "d") != 0)
                continue;
            /* "M x y L x y x y ..." with " l0 0" after a lone point */
            const char *p = atts[i + 1];
            double num[16];
            int n = 0;
            while (*p && *p != 'l' && n < 16) {
                if (*p == 'M' || *p == 'L' || *p == ' ') {
                    p++;
                    continue;
                }
                char *end;
                num[n++] = strtod(p, &end);
                ck_assert_msg(end != p, "path %d: unexpected \"%s\"", k, p);
                p = end;
            }
            v->npairs[k] = n / 2;
            for (int j = 0; j < n / 2 && j < 8; j++) {
                v->pairs[k][j][0] = num[2 * j];
                v->pairs[k][j][1] = num[2 * j + 1];
            }
        }
    }
}

static void XMLCALL svg_end(void *ud, const XML_Char *el) { (void)ud, (void)el; }

START_TEST(test_svg_well_formed)
{
    const double xy[] = {10, 20, 30, 25, 50, 60, -5, 100, 70, -10, 80, 0};
    const int32_t len[] = {3, 1, 2};
    for (int pass = 0; pass < 2; pass++) {
        char *svg = strokes_svg(xy, len, 3, pass ? 2.0 : 0);
        ck_assert_ptr_nonnull(svg);
        svg_seen v;
        memset(&v, 0, sizeof v);
        XML_Parser p = XML_ParserCreate(NULL);
        XML_SetUserData(p, &v);
        XML_SetElementHandler(p, svg_start, svg_end);
        ck_assert_msg(XML_Parse(p, svg, (int)strlen(svg), 1) == XML_STATUS_OK,
                      "SVG is not well-formed XML: %s at %lu:%lu\n%s",
                      XML_ErrorString(XML_GetErrorCode(p)), (unsigned long)XML_GetCurrentLineNumber(p),
                      (unsigned long)XML_GetCurrentColumnNumber(p), svg);
        XML_ParserFree(p);
        ck_assert(v.root_svg);
        ck_assert_msg(v.has_view, "no viewBox of four numbers");
        ck_assert_int_eq(v.npaths, 3);
        ck_assert(v.view[2] > 0 && v.view[3] > 0);
        for (int i = 0; i < 6; i++) {
            const double x = xy[2 * i], y = xy[2 * i + 1];
            ck_assert_msg(x > v.view[0] && x < v.view[0] + v.view[2] && y > v.view[1] && y < v.view[1] + v.view[3],
                          "point (%g, %g) outside viewBox %g %g %g %g", x, y, v.view[0], v.view[1], v.view[2],
                          v.view[3]);
        }
        for (int k = 0, at = 0; k < 3; at += len[k], k++) {
            ck_assert_int_eq(v.npairs[k], len[k]);
            for (int j = 0; j < len[k]; j++) {
                ck_assert_double_eq_tol(v.pairs[k][j][0], xy[2 * (at + j)], 0.01);
                ck_assert_double_eq_tol(v.pairs[k][j][1], xy[2 * (at + j) + 1], 0.01);
            }
        }
        if (pass)
            ck_assert_str_eq(v.stroke_width, "2.000");
        free(svg);
    }
}
END_TEST

/* ---- IAM-OnDB ------------------------------------------------------------------------- */

/* The head of a real lineStrokes file: 8 lines, so <StrokeSet> opens on line 9. */
#define IAM_HEAD                                                                              \
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"                                       \
    "<WhiteboardCaptureSession>\n"                                                            \
    "  <WhiteboardDescription>\n"                                                             \
    "    <SensorLocation corner=\"top_left\"/>\n"                                             \
    "    <DiagonallyOppositeCoords x=\"6512\" y=\"1376\"/>\n"                                 \
    "    <VerticallyOppositeCoords x=\"966\" y=\"1376\"/>\n"                                  \
    "    <HorizontallyOppositeCoords x=\"6512\" y=\"787\"/>\n"                                \
    "  </WhiteboardDescription>\n"
#define IAM_TAIL "</WhiteboardCaptureSession>\n"
/* A document whose StrokeSet holds body, which starts on line 10. */
#define IAM_DOC(body) IAM_HEAD "  <StrokeSet>\n" body "  </StrokeSet>\n" IAM_TAIL
#define POINT(x, y) "      <Point x=\"" x "\" y=\"" y "\" time=\"769.05\"/>\n"
#define STROKE(points)                                                                        \
    "    <Stroke colour=\"black\" start_time=\"769.05\" end_time=\"769.64\">\n" points           \
    "    </Stroke>\n"

#define IAM_BUF 4096

/* Line number k: two strokes, 3 + 2 points, the second point k to the right of the first,
 * so the line read back tells which file it came from.  extra goes before the StrokeSet. */
static void line_xml(char *out, int k, const char *extra)
{
    int n = snprintf(out, IAM_BUF,
                     IAM_HEAD "%s  <StrokeSet>\n"
                     "    <Stroke colour=\"black\" start_time=\"769.05\" end_time=\"769.64\">\n"
                     "      <Point x=\"1000\" y=\"1058\" time=\"769.05\"/>\n"
                     "      <Point x=\"%d\" y=\"1062\" time=\"769.07\"/>\n"
                     "      <Point x=\"1010\" y=\"1055\" time=\"769.08\"/>\n"
                     "    </Stroke>\n"
                     "    <Stroke colour=\"black\" start_time=\"770.00\" end_time=\"770.10\">\n"
                     "      <Point x=\"1020\" y=\"1040\" time=\"770.00\"/>\n"
                     "      <Point x=\"1022\" y=\"1045\" time=\"770.05\"/>\n"
                     "    </Stroke>\n"
                     "  </StrokeSet>\n" IAM_TAIL,
                     extra, 1000 + k);
    ck_assert(n > 0 && n < IAM_BUF);
}

static void write_line_xml(const char *rel, int k, const char *extra)
{
    char xml[IAM_BUF];
    line_xml(xml, k, extra);
    write_text(rel, xml);
}

/* Checks that ln is line_xml's line k with transcript text (NULL: none). */
static void expect_line(const stroke_line *ln, int k, const char *text, const char *what)
{
    const float want[] = {0, 0, 0, (float)k, 4, 0, (float)(10 - k), -7, 1, 10, -15, 0, 2, 5, 1};
    expect_pts(ln, want, 5, what);
    ck_assert_msg((text == NULL) == (ln->text == NULL) && (!text || strcmp(text, ln->text) == 0),
                  "%s: transcript \"%s\", want \"%s\"", what, ln->text ? ln->text : "(none)", text ? text : "(none)");
}

START_TEST(test_iam_parse_memory)
{
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], xml[IAM_BUF];
    line_xml(xml, 3, "");
    ck_assert_int_eq(strokes_parse_iam(&s, xml, strlen(xml), "mem.xml", err), HYPER_OK);
    expect_line(&s.lines[0], 3, NULL, "plain");

    /* a transcript in the document; ISO-8859-1 é (0xE9) arrives as UTF-8; entities decoded */
    line_xml(xml, 4, "  <Transcription>\n    <Text>caf\xE9 &amp; more</Text>\n"
                     "    <TextLine text=\"caf\xE9 &amp; &quot;tea&quot;\" corner=\"x\">\n"
                     "      <Word text=\"caf\xE9\"/>\n    </TextLine>\n  </Transcription>\n");
    ck_assert_int_eq(strokes_parse_iam(&s, xml, strlen(xml), "mem.xml", err), HYPER_OK);
    expect_line(&s.lines[1], 4, "caf\xC3\xA9 & \"tea\"", "TextLine");

    /* several TextLines are joined by a space; UTF-8 documents work too */
    const char *utf8 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<WhiteboardCaptureSession>\n"
                       "<Transcription><TextLine text=\"na\xC3\xAFve\"/>"
                       "<TextLine text=\"second part\"/></Transcription>\n"
                       "<StrokeSet><Stroke><Point x=\"1.5\" y=\" -2 \" time=\"0\"/></Stroke></StrokeSet>\n"
                       "</WhiteboardCaptureSession>";
    ck_assert_int_eq(strokes_parse_iam(&s, utf8, strlen(utf8), "u.xml", err), HYPER_OK);
    ck_assert_int_eq(s.n, 3);
    ck_assert_pstr_eq(s.lines[2].text, "na\xC3\xAFve second part");
    const float dot[] = {0, 0, 1};
    expect_pts(&s.lines[2], dot, 1, "one dot");
    strokes_free(&s);
}
END_TEST

/* A damaged document and what its refusal must say. */
typedef struct {
    const char *what, *xml, *sub1, *sub2;
} bad_doc;

START_TEST(test_iam_rejects)
{
    static const bad_doc bad[] = {
        {"mismatched tag", IAM_DOC("    <Stroke>\n" POINT("1", "2") "    </Strok>\n"), "bad.xml:12:",
         "malformed XML: mismatched tag"},
        {"empty document", "", "bad.xml:1:", "malformed XML: no element found"},
        {"not XML", "hello, world\n", "bad.xml:1:1: malformed XML", "syntax error"},
        {"truncated", IAM_HEAD "  <StrokeSet>\n" STROKE(POINT("1", "2")), "bad.xml:",
         "malformed XML: no element found"},
        {"wrong root", "<?xml version=\"1.0\"?>\n<svg>\n<StrokeSet/>\n</svg>\n", "bad.xml:2:",
         "the root element is <svg>, not <WhiteboardCaptureSession>"},
        {"point outside a stroke", IAM_DOC(POINT("1", "2")), "bad.xml:10:", "<Point> outside a <Stroke>"},
        {"point in the description", IAM_HEAD "<Point x=\"1\" y=\"2\"/>" IAM_TAIL, "bad.xml:9:",
         "<Point> outside a <Stroke>"},
        {"stroke outside a set", IAM_HEAD "  <Stroke>\n" POINT("1", "2") "  </Stroke>\n" IAM_TAIL, "bad.xml:9:",
         "<Stroke> outside a <StrokeSet>"},
        {"stroke in a stroke", IAM_DOC("    <Stroke>\n" STROKE(POINT("1", "2")) "    </Stroke>\n"), "bad.xml:11:",
         "<Stroke> inside another <Stroke>"},
        {"set in a set", IAM_DOC("<StrokeSet/>\n"), "bad.xml:10:", "<StrokeSet> inside another <StrokeSet>"},
        {"no x", IAM_DOC(STROKE(POINT("1", "2") "      <Point y=\"2\" time=\"1\"/>\n")), "bad.xml:12:",
         "<Point> has no x attribute"},
        {"no y", IAM_DOC(STROKE("      <Point x=\"2\"/>\n")), "bad.xml:11:", "<Point> has no y attribute"},
        {"x not a number", IAM_DOC(STROKE(POINT("abc", "2"))), "bad.xml:11:", "<Point> x=\"abc\" is not a number"},
        {"y with a unit", IAM_DOC(STROKE(POINT("1", "12px"))), "bad.xml:11:", "<Point> y=\"12px\" is not a number"},
        {"x empty", IAM_DOC(STROKE(POINT("", "2"))), "bad.xml:11:", "<Point> x=\"\" is not a number"},
        {"x nan", IAM_DOC(STROKE(POINT("nan", "2"))), "bad.xml:11:", "x=\"nan\" is not a finite number"},
        {"y inf", IAM_DOC(STROKE(POINT("1", "-inf"))), "bad.xml:11:", "y=\"-inf\" is not a finite number"},
        {"y overflows", IAM_DOC(STROKE(POINT("1", "1e400"))), "bad.xml:11:", "y=\"1e400\" is not a finite number"},
        {"x absurd", IAM_DOC(STROKE(POINT("1", "2") POINT("-2e6", "2"))), "bad.xml:12:",
         "<Point> x=\"-2e6\" is absurd: |x| must be at most 1e+06"},
        {"no stroke set", IAM_HEAD IAM_TAIL, "bad.xml: no strokes", NULL},
        {"empty stroke set", IAM_DOC(""), "bad.xml: no strokes", NULL},
        {"empty stroke", IAM_DOC(STROKE(POINT("1", "2")) "    <Stroke colour=\"black\">\n    </Stroke>\n"),
         "bad.xml:13:", "a <Stroke> with no points"},
        {"entity declaration",
         "<?xml version=\"1.0\"?>\n<!DOCTYPE WhiteboardCaptureSession [\n<!ENTITY boom \"aaaaaaaa\">\n]>\n"
         "<WhiteboardCaptureSession/>\n",
         "bad.xml:3:", "entity declaration (boom) refused"},
    };
    stroke_set s;
    strokes_init(&s);
    add_sentinel(&s);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[HYPER_ERRMSG_MAX] = "";
        hyper_status st = strokes_parse_iam(&s, bad[i].xml, strlen(bad[i].xml), "bad.xml", err);
        expect_refusal(bad[i].what, st, HYPER_ERR_FORMAT, err, bad[i].sub1, bad[i].sub2);
        expect_only_sentinel(&s, bad[i].what);
    }
    strokes_free(&s);
}
END_TEST

START_TEST(test_iam_file_and_sibling_txt)
{
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    write_line_xml("single/pen-07.xml", 2, "");
    write_text("single/pen-07.txt", "  Hello there,\r\n   world \r\n");
    write_line_xml("single/plain.xml", 5, "");
    ck_assert_int_eq(strokes_load_iam(&s, tmp_path(path, "single/pen-07.xml"), err), HYPER_OK);
    ck_assert_int_eq(strokes_load_iam(&s, tmp_path(path, "single/plain.xml"), err), HYPER_OK);
    ck_assert_int_eq(s.n, 2);
    expect_line(&s.lines[0], 2, "Hello there, world", "sibling .txt");
    expect_line(&s.lines[1], 5, NULL, "no transcript anywhere");

    /* a transcript file that is not text is an error naming it; the set is unchanged */
    write_line_xml("single/nul-01.xml", 1, "");
    write_bytes("single/nul-01.txt", "ab\0cd", 5);
    expect_refusal("NUL in .txt", strokes_load_iam(&s, tmp_path(path, "single/nul-01.xml"), err),
                   HYPER_ERR_FORMAT, err, "single/nul-01.txt: ", "NUL byte");
    ck_assert_int_eq(s.n, 2);
    strokes_free(&s);
}
END_TEST

/* The real dataset: lineStrokes/<a01>/<a01-000>/<a01-000u>-NN.xml and the CSR section of
 * ascii/<a01>/<a01-000>/<a01-000u>.txt. */
START_TEST(test_iam_dataset_layout)
{
    /* written out of order; the reader must sort */
    write_line_xml("ds/lineStrokes/b02/b02-000/b02-000-01.xml", 5, ""); /* no ascii file */
    write_text("ds/lineStrokes/a01/a01-000/notes.txt", "not a line");
    write_text("ds/lineStrokes/a01/a01-000/.hidden.xml", "<not><xml");
    write_line_xml("ds/lineStrokes/a01/a01-001/a01-001w-01.xml", 4, "");
    write_line_xml("ds/lineStrokes/a01/a01-000/a01-000u-03.xml", 3, ""); /* beyond the CSR lines */
    write_line_xml("ds/lineStrokes/a01/a01-000/a01-000u-02.xml", 2, "");
    write_line_xml("ds/lineStrokes/a01/a01-000/a01-000u-01.xml", 1, "");
    write_text("ds/ascii/a01/a01-000/a01-000u.txt",
               "OCR:\n\nA MOVE to stop Mr. Gaitskell frum\nnominating any more Labour\n\n"
               "CSR:\n\nA MOVE to stop Mr. Gaitskell from\n\n  nominating any more Labour life  \n\n");
    write_text("ds/ascii/a01/a01-001/a01-001w.txt", "OCR:\r\n\r\ncafe\r\n\r\nCSR:\r\n\r\ncaf\xE9 au lait\r\n");

    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    ck_assert_msg(strokes_load_iam(&s, tmp_path(path, "ds/lineStrokes"), err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(s.n, 5);
    expect_line(&s.lines[0], 1, "A MOVE to stop Mr. Gaitskell from", "a01-000u-01");
    expect_line(&s.lines[1], 2, "nominating any more Labour life", "a01-000u-02");
    expect_line(&s.lines[2], 3, NULL, "a01-000u-03");
    expect_line(&s.lines[3], 4, "caf\xC3\xA9 au lait", "a01-001w-01 (Latin-1, CRLF)");
    expect_line(&s.lines[4], 5, NULL, "b02-000-01");
    strokes_free(&s);

    /* a trailing slash, and strokes_load's dispatch of a directory */
    ck_assert_msg(strokes_load(&s, tmp_path(path, "ds/lineStrokes/"), err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(s.n, 5);
    expect_line(&s.lines[1], 2, "nominating any more Labour life", "trailing slash");
    strokes_free(&s);

    /* one file, by its full path and by relative paths from its own directory */
    ck_assert_int_eq(strokes_load(&s, tmp_path(path, "ds/lineStrokes/a01/a01-000/a01-000u-02.xml"), err), HYPER_OK);
    char cwd[PATH_BUF];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmp_path(path, "ds/lineStrokes/a01/a01-000")), 0);
    hyper_status st1 = strokes_load_iam(&s, "a01-000u-01.xml", err);
    hyper_status st2 = strokes_load_iam(&s, "./../a01-000/a01-000u-02.xml", err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(st1, HYPER_OK);
    ck_assert_int_eq(st2, HYPER_OK);
    ck_assert_int_eq(s.n, 3);
    expect_line(&s.lines[0], 2, "nominating any more Labour life", "full path");
    expect_line(&s.lines[1], 1, "A MOVE to stop Mr. Gaitskell from", "relative path");
    expect_line(&s.lines[2], 2, "nominating any more Labour life", "relative path with ..");
    strokes_free(&s);
}
END_TEST

START_TEST(test_iam_transcript_precedence)
{
    const char *dir = "prec/lineStrokes/c03/c03-000/";
    char rel[PATH_BUF];
#define REL(name) (snprintf(rel, sizeof rel, "%s%s", dir, name), rel)
    /* 1: TextLine beats the .txt and the ascii file */
    write_line_xml(REL("c03-000a-01.xml"), 1, "<Transcription><TextLine text=\"from xml\"/></Transcription>\n");
    write_text(REL("c03-000a-01.txt"), "from txt");
    /* 2: the .txt beats the ascii file; its line breaks become spaces */
    write_line_xml(REL("c03-000a-02.xml"), 2, "");
    write_text(REL("c03-000a-02.txt"), "from  \r\n\n  txt file\n");
    /* 3: a blank TextLine passes to the next source (no .txt: the ascii file) */
    write_line_xml(REL("c03-000a-03.xml"), 3, "<Transcription><TextLine text=\"   \"/></Transcription>\n");
    /* 4: an empty .txt passes too */
    write_line_xml(REL("c03-000a-04.xml"), 4, "");
    write_text(REL("c03-000a-04.txt"), "");
#undef REL
    write_text("prec/ascii/c03/c03-000/c03-000a.txt", "CSR:\n\nfirst\nsecond\nfrom ascii\nfourth\n");
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    ck_assert_msg(strokes_load_iam(&s, tmp_path(path, "prec"), err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(s.n, 4);
    expect_line(&s.lines[0], 1, "from xml", "TextLine first");
    expect_line(&s.lines[1], 2, "from txt file", ".txt second");
    expect_line(&s.lines[2], 3, "from ascii", "blank TextLine");
    expect_line(&s.lines[3], 4, "fourth", "empty .txt");
    strokes_free(&s);
}
END_TEST

START_TEST(test_iam_directory_errors)
{
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    add_sentinel(&s);

    /* a bad file after good ones: the error names it, and the good ones are rolled back */
    write_line_xml("rb/a-01.xml", 1, "");
    write_line_xml("rb/b/b-01.xml", 2, "");
    write_text("rb/c-01.xml", IAM_DOC(STROKE(POINT("1", "2") "      <Point x=\"2\"/>\n")));
    write_line_xml("rb/d-01.xml", 4, "");
    expect_refusal("bad file in a directory", strokes_load_iam(&s, tmp_path(path, "rb"), err), HYPER_ERR_FORMAT,
                   err, "rb/c-01.xml:12: ", "<Point> has no y attribute");
    expect_only_sentinel(&s, "bad file in a directory");

    /* a file cut short: its end must be handed to expat as the end of the document */
    write_text("trunc/t-01.xml", IAM_HEAD "  <StrokeSet>\n" STROKE(POINT("1", "2")));
    expect_refusal("truncated file", strokes_load_iam(&s, tmp_path(path, "trunc/t-01.xml"), err), HYPER_ERR_FORMAT,
                   err, "trunc/t-01.xml:", "malformed XML: no element found");
    expect_only_sentinel(&s, "truncated file");

    /* no XML at all */
    write_text("none/readme.txt", "nothing here");
    write_text("none/sub/.x.xml", "hidden");
    expect_refusal("no .xml files", strokes_load_iam(&s, tmp_path(path, "none"), err), HYPER_ERR_FORMAT, err,
                   "none: no .xml files", NULL);
    expect_only_sentinel(&s, "no .xml files");

    /* missing paths and dangling links are I/O errors naming the path */
    expect_refusal("missing", strokes_load_iam(&s, tmp_path(path, "nowhere"), err), HYPER_ERR_IO, err,
                   "nowhere: No such file", NULL);
    write_line_xml("link/a-01.xml", 1, "");
    ck_assert_int_eq(symlink("nowhere.xml", tmp_path(path, "link/b-01.xml")), 0);
    expect_refusal("dangling link", strokes_load_iam(&s, tmp_path(path, "link"), err), HYPER_ERR_IO, err,
                   "link/b-01.xml: No such file", NULL);
    expect_only_sentinel(&s, "dangling link");
    strokes_free(&s);
}
END_TEST

/* A one-stroke document of n points, (i, i % 7), with a TextLine of textlen bytes. */
static char *big_xml(int32_t n, size_t textlen, size_t *len)
{
    const size_t cap = 512 + textlen + (size_t)n * 48;
    char *xml = malloc(cap), *text = malloc(textlen + 1);
    ck_assert(xml && text);
    memset(text, 'w', textlen);
    text[textlen] = '\0';
    size_t at = (size_t)snprintf(xml, cap, IAM_HEAD "<Transcription><TextLine text=\"%s\"/></Transcription>\n"
                                             "  <StrokeSet>\n    <Stroke>\n", text);
    for (int32_t i = 0; i < n; i++)
        at += (size_t)snprintf(xml + at, cap - at, "      <Point x=\"%d\" y=\"%d\" time=\"1.5\"/>\n", i, i % 7);
    at += (size_t)snprintf(xml + at, cap - at, "    </Stroke>\n  </StrokeSet>\n" IAM_TAIL);
    ck_assert(at < cap);
    free(text);
    *len = at;
    return xml;
}

START_TEST(test_iam_large_streamed)
{
    /* ~1 MB, many read chunks, split anywhere inside tags */
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    size_t len;
    const int32_t n = 25000;
    char *xml = big_xml(n, 40, &len);
    ck_assert(len > 1000000);
    write_bytes("big/big-01.xml", xml, len);
    ck_assert_msg(strokes_load_iam(&s, tmp_path(path, "big/big-01.xml"), err) == HYPER_OK, "%s", err);
    ck_assert_msg(strokes_parse_iam(&s, xml, len, "big", err) == HYPER_OK, "%s", err);
    free(xml);
    for (int k = 0; k < 2; k++) {
        const stroke_line *ln = &s.lines[k];
        ck_assert_int_eq(ln->npoints, n);
        ck_assert_int_eq(strlen(ln->text), 40);
        for (int32_t i = 1; i < n; i++) {
            const float *p = ln->pts + 3 * i;
            const float dy = (float)(i % 7 - (i - 1) % 7);
            ck_assert_msg(p[0] == 1 && p[1] == dy && p[2] == (i == n - 1),
                          "line %d point %d: (%g, %g, %g), want (1, %g, %d)", k, i, p[0], p[1], p[2], dy, i == n - 1);
        }
    }

    /* the point limit is checked as the points arrive; a transcript too long is refused */
    xml = big_xml(STROKES_MAX_POINTS + 1, 1, &len);
    expect_refusal("too many points", strokes_parse_iam(&s, xml, len, "huge.xml", err), HYPER_ERR_FORMAT, err,
                   "huge.xml:", "more than 100000 points in one line");
    free(xml);
    xml = big_xml(3, STROKES_MAX_TEXT + 1, &len);
    expect_refusal("long TextLine", strokes_parse_iam(&s, xml, len, "long.xml", err), HYPER_ERR_FORMAT, err,
                   "long.xml:9:", "longer than 4096 bytes");
    free(xml);
    ck_assert_int_eq(s.n, 2);
    strokes_free(&s);
}
END_TEST

/* ---- JSON ------------------------------------------------------------------------------ */

START_TEST(test_json_good)
{
    const char *json = "[{\"text\": \"hi\", \"strokes\": [[[0, 0], [1.5, 2]], [[3, -1]]]},\n"
                       " {\"strokes\": [[[10, 10]]]},\n"
                       " {\"text\": null, \"strokes\": [[[-1e6, 1000000], [0, 0.0]]]},\n"
                       " {\"strokes\": [[[1, 1]]], \"text\": \"\"},\n"
                       " {\"text\": \"caf\\u00e9 \xE2\x82\xAC\", \"strokes\": [[[2, 2], [2, 2]]]}]";
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX];
    add_sentinel(&s);
    ck_assert_msg(strokes_parse_json(&s, json, strlen(json), "good.json", err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(s.n, 6);
    const float l0[] = {0, 0, 0, 1.5f, 2, 1, 1.5f, -3, 1};
    expect_pts(&s.lines[1], l0, 3, "item 0");
    ck_assert_pstr_eq(s.lines[1].text, "hi");
    const float l1[] = {0, 0, 1};
    expect_pts(&s.lines[2], l1, 1, "item 1");
    ck_assert_ptr_null(s.lines[2].text);
    const float l2[] = {0, 0, 0, 1e6f, -1e6f, 1};
    expect_pts(&s.lines[3], l2, 2, "item 2");
    ck_assert_ptr_null(s.lines[3].text);
    ck_assert_ptr_null(s.lines[4].text); /* "" is no transcript */
    ck_assert_pstr_eq(s.lines[5].text, "caf\xC3\xA9 \xE2\x82\xAC");
    strokes_free(&s);
}
END_TEST

START_TEST(test_json_rejects)
{
#define ONE(strokes) "[{\"strokes\": " strokes "}]"
    static const bad_doc bad[] = {
        {"syntax", "[{\"strokes\": [[[1, 2]]]", "s.json: invalid JSON at line 1", NULL},
        {"trailing garbage", ONE("[[[1, 2]]]") " x", "s.json: invalid JSON", NULL},
        {"NaN literal", ONE("[[[NaN, 2]]]"), "s.json: invalid JSON", NULL},
        {"duplicate key", "[{\"strokes\": [[[1, 2]]], \"strokes\": [[[1, 2]]]}]", "s.json: invalid JSON", "duplicate"},
        {"not an array", "{\"strokes\": [[[1, 2]]]}", "s.json: expected an array of lines", "got an object"},
        {"empty array", "[]", "s.json: the array is empty", NULL},
        {"item not an object", "[[[[1, 2]]]]", "s.json: item 0 is an array, not an object", NULL},
        {"no strokes", "[{\"text\": \"a\"}]", "s.json: item 0 has no \"strokes\"", NULL},
        {"unknown key", "[{\"strokes\": [[[1, 2]]], \"txt\": \"a\"}]", "s.json: item 0: unknown key \"txt\"", NULL},
        {"text a number", "[{\"text\": 5, \"strokes\": [[[1, 2]]]}]",
         "s.json: item 0: \"text\" is a number, not a string", NULL},
        {"strokes an object", ONE("{}"), "s.json: item 0: \"strokes\" is an object, not an array", NULL},
        {"strokes empty", ONE("[]"), "s.json: item 0: \"strokes\" is empty", NULL},
        {"stroke a number", ONE("[[[1, 2]], 3]"), "s.json: item 0: stroke 1 is a number, not an array of points", NULL},
        {"stroke empty", ONE("[[[1, 2]], []]"), "s.json: item 0: stroke 1 has no points", NULL},
        {"point a number", ONE("[[[1, 2], 5]]"),
         "s.json: item 0: stroke 0: point 1 is not [x, y]: it is a number", NULL},
        {"point short", ONE("[[[1]]]"),
         "s.json: item 0: stroke 0: point 0 is not [x, y]: its length is 1, not 2", NULL},
        {"point long", ONE("[[[1, 2, 3]]]"), "point 0 is not [x, y]: its length is 3, not 2", NULL},
        {"y a string", ONE("[[[1, \"2\"]]]"), "point 0 is not [x, y]: its y is a string, not a number", NULL},
        {"x null", ONE("[[[null, 2]]]"), "point 0 is not [x, y]: its x is null, not a number", NULL},
        {"x absurd", ONE("[[[0, 0]], [[1, 1], [1e7, 0]]]"),
         "s.json: item 0: stroke 1: point 1: x = 10000000 is absurd: |x|, |y| must be at most 1e+06", NULL},
        {"y absurd integer", ONE("[[[0, -1000001]]]"), "point 0: y = -1000001 is absurd", NULL},
        /* the reader's own scanning of the top level */
{"error on line 3", "[{\"strokes\": [[[0, 0]]]},\n {\"strokes\": [[[0, 0]]]},\n   {\"strokes\": [[[0 0]]]}]",
         "s.json: invalid JSON at line 3, column ", NULL},
        {"trailing comma", "[{\"strokes\": [[[0, 0]]]},]", "invalid JSON at line 1, column 26", "after ','"},
        {"missing comma", "[{\"strokes\": [[[0, 0]]]} {\"strokes\": [[[0, 0]]]}]", "invalid JSON at line 1, column 26",
         "',' or ']' expected"},
        {"second array", "[{\"strokes\": [[[0, 0]]]}] []", "invalid JSON at line 1, column 27", "end of file expected"},
        {"scalar item", "[5]", "s.json: item 0 is a number, not an object", NULL},
        {"string item", "[{\"strokes\": [[[0, 0]]]}, \"x]\"]", "s.json: item 1 is a string, not an object", NULL},
        {"bad scalar", "[tru]", "s.json: invalid JSON at line 1, column 4", "tru"},
        {"unclosed", "[{\"strokes\": [[[0, 0]]]}", "invalid JSON", "ends before the array's closing ']'"},
        {"unclosed item", "[{\"strokes\": [[[0, 0]]", "invalid JSON", "ends inside item 0"},
        {"unclosed scalar", "[5", "s.json: item 0 is a number", NULL},
        {"empty document", " \n", "invalid JSON at line 2, column 1", "empty"},
        {"not JSON", "strokes", "invalid JSON at line 1, column 1", "'[' expected"},
        {"mismatched brackets", "[{\"strokes\": [[[0, 0]]}]", "invalid JSON at line 1", NULL},
        {"control character in a string", "[{\"text\": \"a\nb\", \"strokes\": [[[0, 0]]]}]", "invalid JSON", NULL},
    };
#undef ONE
    stroke_set s;
    strokes_init(&s);
    add_sentinel(&s);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[HYPER_ERRMSG_MAX] = "";
        hyper_status st = strokes_parse_json(&s, bad[i].xml, strlen(bad[i].xml), "s.json", err);
        expect_refusal(bad[i].what, st, HYPER_ERR_FORMAT, err, bad[i].sub1, bad[i].sub2);
        expect_only_sentinel(&s, bad[i].what);
        /* and the same refusal, fed a byte at a time */
        char err1[HYPER_ERRMSG_MAX] = "";
        strokes_reader *r;
        ck_assert_int_eq(strokes_reader_new(&r, &s, STROKES_FORMAT_JSON, "s.json", err1), HYPER_OK);
        st = HYPER_OK;
        for (size_t k = 0; bad[i].xml[k] && st == HYPER_OK; k++)
            st = strokes_reader_feed(r, bad[i].xml + k, 1, err1);
        if (st == HYPER_OK)
            st = strokes_reader_finish(r, NULL, err1);
        strokes_reader_free(r);
        ck_assert_msg(st == HYPER_ERR_FORMAT && !strcmp(err1, err), "%s byte by byte: \"%s\", whole: \"%s\"",
                      bad[i].what, err1, err);
        expect_only_sentinel(&s, bad[i].what);
    }

    /* three good items then a bad one: the message locates it, the good ones go again */
    const char *deep = "[{\"strokes\": [[[0, 0]]]}, {\"text\": \"b\", \"strokes\": [[[1, 1]]]},\n"
                       " {\"strokes\": [[[2, 2]]]},\n"
                       " {\"strokes\": [[[0, 0]], [[1, 1]], [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], \"5\"]]}]";
    char err[HYPER_ERRMSG_MAX];
    expect_refusal("deep", strokes_parse_json(&s, deep, strlen(deep), "strokes.json", err), HYPER_ERR_FORMAT, err,
                   "strokes.json: item 3: stroke 2: point 5 is not [x, y]: it is a string", NULL);
    expect_only_sentinel(&s, "deep");

    /* a transcript longer than the limit */
    char *longtext = malloc(STROKES_MAX_TEXT + 64);
    int n = snprintf(longtext, 32, "[{\"text\": \"");
    memset(longtext + n, 'a', STROKES_MAX_TEXT + 1);
    strcpy(longtext + n + STROKES_MAX_TEXT + 1, "\", \"strokes\": [[[1, 2]]]}]");
    expect_refusal("long text", strokes_parse_json(&s, longtext, strlen(longtext), "s.json", err), HYPER_ERR_FORMAT,
                   err, "s.json: item 0: \"text\" is longer than 4096 bytes", NULL);
    expect_only_sentinel(&s, "long text");
    free(longtext);
    strokes_free(&s);
}
END_TEST

START_TEST(test_json_files_and_dispatch)
{
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    write_text("j/lines.json", "[{\"text\": \"x\", \"strokes\": [[[0, 0], [3, 4]]]}]\n");
    ck_assert_msg(strokes_load_json(&s, tmp_path(path, "j/lines.json"), err) == HYPER_OK, "%s", err);
    ck_assert_msg(strokes_load(&s, tmp_path(path, "j/lines.json"), err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(s.n, 2);
    const float want[] = {0, 0, 0, 3, 4, 1};
    expect_pts(&s.lines[1], want, 2, "dispatched .json");
    strokes_free(&s);

    add_sentinel(&s);
    write_text("j/bad.json", "[{\"strokes\": [[[0, 0]]]}, {\"strokes\": [[[0, \"a\"]]]}]");
    expect_refusal("bad file", strokes_load_json(&s, tmp_path(path, "j/bad.json"), err), HYPER_ERR_FORMAT, err,
                   "j/bad.json: item 1: stroke 0: point 0 is not [x, y]", NULL);
    expect_only_sentinel(&s, "bad file");
    expect_refusal("missing file", strokes_load_json(&s, tmp_path(path, "j/none.json"), err), HYPER_ERR_IO, err,
                   "j/none.json: No such file", NULL);

    /* the dispatch of strokes_load */
    write_text("j/x.csv", "1,2\n");
    expect_refusal("unknown extension", strokes_load(&s, tmp_path(path, "j/x.csv"), err), HYPER_ERR_ARG, err,
                   "j/x.csv: ", "cannot tell its format");
    expect_refusal("missing path", strokes_load(&s, tmp_path(path, "j/gone.xml"), err), HYPER_ERR_IO, err,
                   "j/gone.xml: No such file", NULL);
    static const char *const bad_specs[] = {"synthetic:abc", "synthetic:", "synthetic:0", "synthetic:-3",
                                            "synthetic:5x", "synthetic:99999999999", "synthetic: 5",
                                            "synthetic:5:", "synthetic:5:-1", "synthetic:5:x", "synthetic:5:1:2"};
    for (size_t i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++)
        expect_refusal(bad_specs[i], strokes_load(&s, bad_specs[i], err), HYPER_ERR_ARG, err, bad_specs[i],
                       "synthetic:N[:SEED] needs N in 1..");
    write_line_xml("j/upper.XML", 6, "");
    ck_assert_msg(strokes_load(&s, tmp_path(path, "j/upper.XML"), err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(s.n, 2);
    expect_line(&s.lines[1], 6, NULL, "dispatched .XML");
    strokes_free(&s);
}
END_TEST

/* ---- the reader: pieces of any size ------------------------------------------------------ */

/* Feeds doc to a fresh reader in pieces cut at the positions a seeded generator picks (sizes
 * 1..max_piece), then finishes. */
static hyper_status feed_in_pieces(stroke_set *s, strokes_format fmt, const char *doc, size_t len,
                                   size_t max_piece, uint64_t seed, int64_t *lines, char *err)
{
    strokes_reader *r;
    hyper_status st = strokes_reader_new(&r, s, fmt, "p.json", err);
    ck_assert_int_eq(st, HYPER_OK);
    for (size_t off = 0; st == HYPER_OK && off < len;) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = 1 + (size_t)(seed >> 33) % max_piece;
        if (n > len - off)
            n = len - off;
        st = strokes_reader_feed(r, doc + off, n, err);
        off += n;
    }
    if (st == HYPER_OK)
        st = strokes_reader_finish(r, lines, err);
    strokes_reader_free(r);
    return st;
}

static void expect_same_sets(const stroke_set *a, const stroke_set *b, const char *what)
{
    ck_assert_msg(a->n == b->n, "%s: %d lines, want %d", what, a->n, b->n);
    for (int32_t i = 0; i < a->n; i++) {
        ck_assert_msg(a->lines[i].npoints == b->lines[i].npoints, "%s: line %d", what, i);
        ck_assert_msg(!memcmp(a->lines[i].pts, b->lines[i].pts, 3 * sizeof(float) * (size_t)a->lines[i].npoints),
                      "%s: line %d differs", what, i);
        ck_assert_msg((!a->lines[i].text && !b->lines[i].text) ||
                          (a->lines[i].text && b->lines[i].text && !strcmp(a->lines[i].text, b->lines[i].text)),
                      "%s: line %d text", what, i);
    }
}

START_TEST(test_reader_pieces)
{
    /* strings with brackets, braces, commas, escaped quotes and backslashes inside, white
     * space and line breaks between everything, multi-byte UTF-8 cut anywhere */
    const char *doc = " \r\n[ {\"text\": \"a [b] {c}, \\\"d\\\" \\\\\", \"strokes\": [[[0, 0], [1.5, 2]], [[3, -1]]]} ,\n"
                      "\t{\"strokes\" : [ [ [10,10] ] ] , \"text\":\"caf\xC3\xA9 \xE2\x82\xAC ]\"},\n"
                      "{\"text\": null, \"strokes\": [[[-1e6, 1000000], [0, 0.0]]]}\n ]\n\n";
    char err[HYPER_ERRMSG_MAX];
    stroke_set whole, part;
    strokes_init(&whole);
    ck_assert_msg(strokes_parse_json(&whole, doc, strlen(doc), "w.json", err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(whole.n, 3);
    ck_assert_pstr_eq(whole.lines[0].text, "a [b] {c}, \"d\" \\");
    ck_assert_pstr_eq(whole.lines[1].text, "caf\xC3\xA9 \xE2\x82\xAC ]");
    for (size_t max_piece = 1; max_piece <= 64; max_piece *= 4)
        for (uint64_t seed = 1; seed <= 8; seed++) {
            strokes_init(&part);
            int64_t lines = -1;
            ck_assert_msg(feed_in_pieces(&part, STROKES_FORMAT_JSON, doc, strlen(doc), max_piece, seed, &lines, err) ==
                              HYPER_OK,
                          "pieces of up to %zu (seed %llu): %s", max_piece, (unsigned long long)seed, err);
            ck_assert_int_eq(lines, 3);
            expect_same_sets(&part, &whole, "pieces");
            strokes_free(&part);
        }
    /* counting only: the same number, nothing kept */
    int64_t lines = -1;
    ck_assert_msg(feed_in_pieces(NULL, STROKES_FORMAT_JSON, doc, strlen(doc), 7, 3, &lines, err) == HYPER_OK, "%s",
                  err);
    ck_assert_int_eq(lines, 3);

    /* IAM XML through the same reader, cut into pieces */
    char xml[4096];
    line_xml(xml, 4, "");
    stroke_set x1, x2;
    strokes_init(&x1);
    strokes_init(&x2);
    ck_assert_msg(strokes_parse_iam(&x1, xml, strlen(xml), "x.xml", err) == HYPER_OK, "%s", err);
    ck_assert_msg(feed_in_pieces(&x2, STROKES_FORMAT_IAM, xml, strlen(xml), 5, 9, &lines, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(lines, 1);
    expect_same_sets(&x2, &x1, "IAM pieces");
    strokes_free(&x1);
    strokes_free(&x2);

    /* a fault in a later piece takes the earlier pieces' lines out again */
    const char *bad = "[{\"strokes\": [[[0, 0]]]}, {\"strokes\": [[[1, 1]]]}, {\"strokes\": [[[2]]]}]";
    add_sentinel(&whole);
    strokes_free(&whole);
    strokes_init(&whole);
    add_sentinel(&whole);
    expect_refusal("late fault", feed_in_pieces(&whole, STROKES_FORMAT_JSON, bad, strlen(bad), 3, 1, NULL, err),
                   HYPER_ERR_FORMAT, err, "p.json: item 2: stroke 0: point 0 is not [x, y]", NULL);
    expect_only_sentinel(&whole, "late fault");
    strokes_free(&whole);
}
END_TEST

START_TEST(test_reader_limits)
{
    stroke_set s;
    strokes_init(&s);
    add_sentinel(&s);
    /* an item past the size limit, refused when it passes the limit, not at its end */
    char err[HYPER_ERRMSG_MAX];
    const size_t big = STROKES_JSON_ITEM_MAX + 16;
    char *doc = malloc(big);
    ck_assert_ptr_nonnull(doc);
    memset(doc, ' ', big);
    memcpy(doc, "[{\"strokes\": [[[0, 0]]], \"text\": \"", 35);
    memset(doc + 35, 'a', big - 35);
    expect_refusal("large item", strokes_parse_json(&s, doc, big, "s.json", err), HYPER_ERR_FORMAT, err,
                   "s.json: item 0 (from line 1) is larger than 16777216 bytes", NULL);
    expect_only_sentinel(&s, "large item");
    /* an item of more values than a line can hold, refused before jansson sees it */
    size_t n = (size_t)snprintf(doc, big, "[{\"strokes\": [[[0, 0]");
    for (int k = 0; k < 4 * STROKES_MAX_POINTS + 2; k++)
        memcpy(doc + n, ",[0,0]", 6), n += 6;
    n += (size_t)snprintf(doc + n, big - n, "]]}]");
    expect_refusal("many values", strokes_parse_json(&s, doc, n, "s.json", err), HYPER_ERR_FORMAT, err,
                   "s.json: item 0 (from line 1) holds more than 400000 values", NULL);
    expect_only_sentinel(&s, "many values");
    free(doc);
    strokes_free(&s);
}
END_TEST

Suite *strokes_suite(void);
Suite *strokes_suite(void)
{
    Suite *s = suite_create("strokes");
    TCase *tc = tcase_create("lines");
    tcase_add_test(tc, test_add_line_layout);
    tcase_add_test(tc, test_absolute_round_trip);
    tcase_add_test(tc, test_add_line_rejects);
    tcase_add_test(tc, test_stats_hand_computed);
    tcase_add_test(tc, test_drop_outliers);
    tcase_add_test(tc, test_svg_well_formed);
    suite_add_tcase(s, tc);

    tc = tcase_create("iam");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_test(tc, test_iam_parse_memory);
    tcase_add_test(tc, test_iam_rejects);
    tcase_add_test(tc, test_iam_file_and_sibling_txt);
    tcase_add_test(tc, test_iam_dataset_layout);
    tcase_add_test(tc, test_iam_transcript_precedence);
    tcase_add_test(tc, test_iam_directory_errors);
    tcase_add_test(tc, test_iam_large_streamed);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_test(tc, test_json_good);
    tcase_add_test(tc, test_json_rejects);
    tcase_add_test(tc, test_json_files_and_dispatch);
    tcase_add_test(tc, test_reader_pieces);
    tcase_add_test(tc, test_reader_limits);
    suite_add_tcase(s, tc);
    return s;
}
