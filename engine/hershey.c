/*
 * hershey.c — synthetic handwriting (strokes_synthesize of strokes.h): lines of a text
 * corpus written with the Hershey script fonts by simulated writers.
 *
 * Why: a handwriting model needs pen trajectories with their transcripts to train on, and
 * IAM-OnDB can be neither shipped nor fetched.  Debian's hershey-fonts-data has single-line
 * script fonts whose lowercase letters leave and enter at a common height, so a word can be
 * written as one pen-down path.  A font alone is typeset, though: every "e" the same.  What
 * makes the lines look written is the writer, drawn from the seed, who keeps a slant, size,
 * width, letter and word spacing, a wandering baseline and a shaky hand for several lines.
 *
 * One line goes through:
 *   text    a corpus line: trimmed, whitespace collapsed, printable ASCII, 10..60 characters
 *   layout  glyphs placed with the writer's size, width and spacing and a small random
 *           scale, rotation and lift of each letter; within a word a letter is chained to
 *           the next lowercase one where the end of the first is near the start of the
 *           second (cursive joins), and the strokes of one letter are chained where the
 *           font lifts the pen only to retrace; dots, bars and crossings are written when
 *           such a chain ends, as a writer dots the i's and crosses the t's of a word
 *   shape   slant (a shear about the baseline), then baseline drift (slow smooth noise plus
 *           a tilt of the whole line)
 *   curve   a centripetal Catmull-Rom spline through the glyph vertices, sampled densely
 *   jitter  a smooth offset along the arc length (value noise, not white noise)
 *   sample  a tablet's clock: points at equal time steps of a pen whose speed drops at
 *           corners and at the ends of a stroke, so points crowd where the pen turns
 * and is then handed to strokes_add_line with its text.
 *
 * The .jhf format, as checked against the Debian files: one glyph per record.  A record is
 * a 5-character glyph number, a 3-character count of character pairs, then that many
 * pairs.  Each character of a pair is a coordinate, (char - 'R'), y growing downwards; the
 * first pair is the glyph's left and right extent, and the pair " R" lifts the pen.  A
 * record may go on over the following physical lines (the original distribution wraps at
 * 72 columns; Debian's files do not): the count says how many characters to join.  The
 * files hold ASCII 32..126 in order (then DEL, which is ignored).  In the script fonts the
 * lowercase letters span y = 0..9 (baseline 9), enter and leave at y = 4, and each one's
 * exit lies on the next one's entry when their extents touch.  scriptc ("complex script")
 * draws thick parts as two or three parallel passes; the extra passes are removed here so
 * that every font is written with one pen line.
 */
#include "strokes.h"

#include "fsutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- limits and constants ------------------------------------------------------------ */

#define HERSHEY_FIRST_CHAR 32              /* records are ASCII 32..126, in file order */
#define HERSHEY_NCHARS 95
#define HERSHEY_NFONTS 3
#define HERSHEY_MAX_FILE_BYTES (1 << 20)   /* the Debian fonts are 2..16 KB */
#define HERSHEY_MAX_PAIRS 999              /* the count field has three digits */
#define HERSHEY_PATH_MAX 4096
#define CORPUS_MAX_BYTES (256 << 20)
#define TEXT_MIN_CHARS 10                  /* shorter pieces of the corpus are skipped */
#define TEXT_MAX_CHARS 60                  /* longer lines are broken at spaces */
#define WRITER_MAX_LINES 10                /* a writer writes 1..this many lines in a row */
#define LINE_MAX_INK 4000.0                /* x-heights of pen path in one line (a real line
                                              of 60 characters has 200..400): more means a
                                              damaged font, refused before sampling */

/* Glyph analysis, in font units (the script fonts' x-height is 9). */
#define THICKEN_DIST 1.6   /* a stroke this close to a longer one running the same way all
                              along is a second pass that thickens it */
#define DOT_SIZE 2.5       /* a stroke whose box is no larger is a dot */
#define BAR_FLATNESS 0.35  /* a straight 2..3-vertex stroke with |dy| <= this * |dx| is a bar */
#define EXIT_SLACK 2.5     /* a letter whose last stroke ends this near its right edge can join */

/* Sampling, in x-heights. */
#define DENSE_STEP 0.08    /* spacing of the spline samples before the tablet's clock */
#define CORNER_WINDOW 3    /* spline samples on each side when measuring how sharply a path turns */
#define RAMP_LEN 0.25      /* arc length over which the pen speeds up and slows down */
#define RAMP_FLOOR 0.35    /* speed at the very start and end of a stroke, of full speed */

static const char *const font_files[HERSHEY_NFONTS] = {"cursive.jhf", "scripts.jhf", "scriptc.jhf"};

/* ---- small helpers --------------------------------------------------------------------- */

/* Inline, not libm's hypot/fmin/fmax: calls into libm from the AVX2 build cost more than
 * the arithmetic in the per-point loops. */
static inline double len2(double dx, double dy) { return sqrt(dx * dx + dy * dy); }
static inline double dmin(double a, double b) { return a < b ? a : b; }
static inline double dmax(double a, double b) { return a > b ? a : b; }

/* ---- growable arrays (one cleanup each) ---------------------------------------------- */

typedef struct {
    double *v;
    size_t n, cap;
} dbuf;

typedef struct {
    int32_t *v;
    size_t n, cap;
} ibuf;

/* Makes room for extra more values; 0 when out of memory (the buffer is unchanged). */
static int dbuf_reserve(dbuf *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra)
        cap *= 2;
    double *v = realloc(b->v, cap * sizeof *v);
    if (!v)
        return 0;
    b->v = v;
    b->cap = cap;
    return 1;
}

static int ibuf_push(ibuf *b, int32_t x)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        int32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return 0;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return 1;
}

static int dbuf_push2(dbuf *b, double x, double y)
{
    if (!dbuf_reserve(b, 2))
        return 0;
    b->v[b->n++] = x;
    b->v[b->n++] = y;
    return 1;
}

/* ---- fonts --------------------------------------------------------------------------- */

typedef struct {
    int32_t left, right;   /* extents, font units */
    int32_t first, count;  /* strokes [first, first + count) of the font */
    int32_t nbody;         /* the first nbody strokes are the body, written in order; the
                              rest (dots, bars, crossings) wait for the end of the chain
                              of joined letters */
    int32_t has_exit;      /* the last body stroke leaves at the right edge */
} glyph;

typedef struct {
    glyph g[HERSHEY_NCHARS];
    double *xy;            /* (npts, 2) vertices, font units, y down */
    int32_t *start, *len;  /* (nstrokes) first vertex and vertex count of each stroke */
    int32_t npts, nstrokes, cap_pts, cap_strokes;
    double baseline, xheight; /* of 'x': the writing line and the height above it */
} font;

static void font_free(font *f)
{
    free(f->xy);
    free(f->start);
    free(f->len);
    memset(f, 0, sizeof *f);
}

/* Appends vertex (x, y) to the font's current (last) stroke.  0 when out of memory. */
static int font_add_vertex(font *f, double x, double y)
{
    if (f->npts == f->cap_pts) {
        int32_t cap = f->cap_pts ? 2 * f->cap_pts : 1024;
        double *xy = realloc(f->xy, (size_t)cap * 2 * sizeof *xy);
        if (!xy)
            return 0;
        f->xy = xy;
        f->cap_pts = cap;
    }
    f->xy[2 * f->npts] = x;
    f->xy[2 * f->npts + 1] = y;
    f->npts++;
    f->len[f->nstrokes - 1]++;
    return 1;
}

/* Opens a new, empty stroke at the end of the font.  0 when out of memory. */
static int font_add_stroke(font *f)
{
    if (f->nstrokes == f->cap_strokes) {
        int32_t cap = f->cap_strokes ? 2 * f->cap_strokes : 256;
        int32_t *st = realloc(f->start, (size_t)cap * sizeof *st);
        if (!st)
            return 0;
        f->start = st;
        int32_t *ln = realloc(f->len, (size_t)cap * sizeof *ln);
        if (!ln)
            return 0;
        f->len = ln;
        f->cap_strokes = cap;
    }
    f->start[f->nstrokes] = f->npts;
    f->len[f->nstrokes] = 0;
    f->nstrokes++;
    return 1;
}


/* Parses a fixed-width numeric field: optional leading spaces, then at least one digit,
 * nothing else.  -1 when it is not such a field. */
static int32_t parse_field(const char *s, int width)
{
    int i = 0;
    while (i < width && s[i] == ' ')
        i++;
    if (i == width)
        return -1;
    int32_t v = 0;
    for (; i < width; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int is_coord_char(char c) { return c > ' ' && c <= '~'; }

/* Decodes one record's pairs (2 * npairs characters in body) into a new glyph at the end
 * of f.  Fails with HYPER_ERR_FORMAT (where names the file and line). */
static hyper_status decode_glyph(font *f, glyph *g, const char *body, int32_t npairs,
                                 const char *where, char *err)
{
    if (!is_coord_char(body[0]) || !is_coord_char(body[1]))
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: the extents are not two of '!'..'~' (bytes 0x%02x 0x%02x)",
                          where, (unsigned char)body[0], (unsigned char)body[1]);
    g->left = body[0] - 'R';
    g->right = body[1] - 'R';
    if (g->left > g->right)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: left extent %d is right of right extent %d",
                          where, g->left, g->right);
    g->first = f->nstrokes;
    g->count = 0;
    int pen_down = 0;
    for (int32_t k = 1; k < npairs; k++) {
        const char a = body[2 * k], b = body[2 * k + 1];
        if (a == ' ' && b == 'R') {
            pen_down = 0;
            continue;
        }
        if (!is_coord_char(a) || !is_coord_char(b))
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: pair %d (bytes 0x%02x 0x%02x) is neither a coordinate (two of '!'..'~') nor \" R\"",
                              where, k, (unsigned char)a, (unsigned char)b);
        const double x = a - 'R', y = b - 'R';
        if (!pen_down) {
            if (!font_add_stroke(f))
                return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
            g->count++;
            pen_down = 1;
        } else {
            const double *last = f->xy + 2 * (f->npts - 1);
            if (last[0] == x && last[1] == y)
                continue;
        }
        if (!font_add_vertex(f, x, y))
            return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    }
    return HYPER_OK;
}

/* Parses a whole .jhf text (len bytes) into f, keeping the first HERSHEY_NCHARS glyphs.
 * Records may wrap onto continuation lines; blank lines between records are skipped.
 * Fails with HYPER_ERR_FORMAT naming path and the line. */
static hyper_status parse_jhf(font *f, const char *text, size_t len, const char *path, char *err)
{
    char body[2 * HERSHEY_MAX_PAIRS + 1];
    char where[HERSHEY_PATH_MAX + 64];
    int32_t nglyphs = 0, lineno = 0;
    const char *p = text, *end = text + len;
    if (memchr(text, '\0', len))
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: binary data (a NUL byte), not a Hershey font", path);
    while (p < end) {
        /* one physical line [p, eol), without its "\n" or "\r\n" */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (eol > p && eol[-1] == '\r')
            eol--;
        lineno++;
        const size_t n = (size_t)(eol - p);
        size_t blank = 0;
        while (blank < n && (p[blank] == ' ' || p[blank] == '\t'))
            blank++;
        if (blank == n) {
            p = next;
            continue;
        }
        snprintf(where, sizeof where, "%s: line %d", path, lineno);
        if (n < 8)
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: a glyph record needs at least 8 characters, this line has %zu",
                              where, n);
        const int32_t npairs = parse_field(p + 5, 3);
        if (parse_field(p, 5) < 0 || npairs < 1)
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: does not start with a 5-digit glyph number and a 3-digit count (\"%.8s\")",
                              where, p);
        size_t have = n - 8, need = 2 * (size_t)npairs;
        if (have > need)
            have = need; /* checked below: only blanks may follow */
        memcpy(body, p + 8, have);
        for (size_t k = 8 + have; k < n; k++)
            if (p[k] != ' ' && p[k] != '\t')
                return hyper_fail(err, HYPER_ERR_FORMAT, "%s: the record is longer than its count of %d pairs says",
                                  where, npairs);
        p = next;
        while (have < need) { /* continuation lines */
            if (p >= end)
                return hyper_fail(err, HYPER_ERR_FORMAT, "%s: the file ends inside the record (%zu of %zu coordinate characters)",
                                  where, have, need);
            nl = memchr(p, '\n', (size_t)(end - p));
            eol = nl ? nl : end;
            next = nl ? nl + 1 : end;
            if (eol > p && eol[-1] == '\r')
                eol--;
            lineno++;
            size_t m = (size_t)(eol - p);
            if (m > need - have) {
                for (size_t k = need - have; k < m; k++)
                    if (p[k] != ' ' && p[k] != '\t')
                        return hyper_fail(err, HYPER_ERR_FORMAT,
                                          "%s: line %d: the record is longer than its count of %d pairs says",
                                          path, lineno, npairs);
                m = need - have;
            }
            memcpy(body + have, p, m);
            have += m;
            p = next;
        }
        if (nglyphs < HERSHEY_NCHARS) {
            hyper_status rc = decode_glyph(f, &f->g[nglyphs], body, npairs, where, err);
            if (rc != HYPER_OK)
                return rc;
        }
        nglyphs++;
    }
    if (nglyphs < HERSHEY_NCHARS)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: %d glyphs, want at least %d (ASCII 32..126)", path,
                          nglyphs, HERSHEY_NCHARS);
    return HYPER_OK;
}

/* Whether the polyline of n vertices xy runs alongside point (px, py) in direction (tx, ty):
 * one of its segments passes within THICKEN_DIST and points the same way (a positive dot
 * product).  A segment running the other way is the pen retracing, not a second pass. */
static int runs_alongside(double px, double py, double tx, double ty, const double *xy, int32_t n)
{
    for (int32_t i = 0; i + 1 < n; i++) {
        const double ax = xy[2 * i], ay = xy[2 * i + 1];
        const double dx = xy[2 * i + 2] - ax, dy = xy[2 * i + 3] - ay;
        const double l2 = dx * dx + dy * dy;
        if (l2 == 0 || dx * tx + dy * ty <= 0)
            continue;
        double t = ((px - ax) * dx + (py - ay) * dy) / l2;
        t = t < 0 ? 0 : (t > 1 ? 1 : t);
        if (len2(px - ax - t * dx, py - ay - t * dy) <= THICKEN_DIST)
            return 1;
    }
    return 0;
}

static void stroke_box(const font *f, int32_t s, double *x0, double *y0, double *x1, double *y1)
{
    const double *xy = f->xy + 2 * f->start[s];
    *x0 = *x1 = xy[0];
    *y0 = *y1 = xy[1];
    for (int32_t i = 1; i < f->len[s]; i++) {
        *x0 = dmin(*x0, xy[2 * i]);
        *x1 = dmax(*x1, xy[2 * i]);
        *y0 = dmin(*y0, xy[2 * i + 1]);
        *y1 = dmax(*y1, xy[2 * i + 1]);
    }
}

static int stroke_is_small(const font *f, int32_t s)
{
    double x0, y0, x1, y1;
    stroke_box(f, s, &x0, &y0, &x1, &y1);
    return x1 - x0 <= DOT_SIZE && y1 - y0 <= DOT_SIZE;
}

/* A dot: a single point, or a ring of three or more vertices no larger than DOT_SIZE. */
static int stroke_is_dot(const font *f, int32_t s) { return f->len[s] != 2 && stroke_is_small(f, s); }

/* A crumb: a two-vertex tick no larger than a dot, a scrap of a thickened line. */
static int stroke_is_crumb(const font *f, int32_t s) { return f->len[s] == 2 && stroke_is_small(f, s); }

/* Whether vertex v of stroke s, and the midpoint of the segment leading to it, lie on
 * kept strokes running the same way (runs_alongside); keep[j] flags the glyph's strokes
 * from g->first. */
static int vertex_covered(const font *f, const glyph *g, const int32_t *keep, int32_t s, int32_t v)
{
    const double *xy = f->xy + 2 * f->start[s];
    const int32_t n = f->len[s], a = v > 0 ? v - 1 : v, b = v + 1 < n ? v + 1 : v;
    const double tx = xy[2 * b] - xy[2 * a], ty = xy[2 * b + 1] - xy[2 * a + 1];
    double probe[2][2] = {{xy[2 * v], xy[2 * v + 1]}, {xy[2 * v], xy[2 * v + 1]}};
    if (v > 0) {
        probe[1][0] = 0.5 * (xy[2 * v - 2] + xy[2 * v]);
        probe[1][1] = 0.5 * (xy[2 * v - 1] + xy[2 * v + 1]);
    }
    for (int k = 0; k < 2; k++) {
        int on = 0;
        for (int32_t j = 0; j < g->count && !on; j++)
            if (keep[j])
                on = runs_alongside(probe[k][0], probe[k][1], tx, ty, f->xy + 2 * f->start[g->first + j],
                                    f->len[g->first + j]);
        if (!on)
            return 0;
    }
    return 1;
}

/* Removes the extra passes a "complex" font draws to thicken a line (scriptc's letters,
 * the scripts digits).  Strokes are taken longest first; a vertex is covered when it lies
 * on a stroke already kept that runs the same way (vertex_covered).  A stroke covered all
 * along goes (dots stay), and so do crumbs.  A stroke whose first or last vertices are
 * covered loses that run but its last covered vertex, so it still starts (or ends) on the
 * line it was thickening and joins it there.  Compacts the glyph's strokes, keeping font
 * order. */
static void drop_second_passes(font *f, glyph *g)
{
    int32_t order[HERSHEY_MAX_PAIRS], keep[HERSHEY_MAX_PAIRS];
    unsigned char covered[HERSHEY_MAX_PAIRS];
    const int32_t n = g->count;
    for (int32_t i = 0; i < n; i++) {
        order[i] = g->first + i;
        keep[i] = 0;
    }
    for (int32_t i = 1; i < n; i++) /* insertion sort by vertex count, longest first, stable */
        for (int32_t j = i; j > 0 && f->len[order[j]] > f->len[order[j - 1]]; j--) {
            int32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int32_t i = 0; i < n; i++) {
        const int32_t s = order[i], len = f->len[s];
        int32_t ncovered = 0;
        for (int32_t v = 0; v < len; v++)
            ncovered += covered[v] = (unsigned char)vertex_covered(f, g, keep, s, v);
        if ((ncovered == len && !stroke_is_dot(f, s)) || stroke_is_crumb(f, s))
            continue;
        keep[s - g->first] = 1;
        if (ncovered == len)
            continue;
        int32_t head = 0, tail = 0;
        while (covered[head])
            head++;
        while (covered[len - 1 - tail])
            tail++;
        if (tail >= 2)
            f->len[s] -= tail - 1;
        if (head >= 2) {
            f->start[s] += head - 1;
            f->len[s] -= head - 1;
        }
    }
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (keep[i]) {
            f->start[g->first + m] = f->start[g->first + i];
            f->len[g->first + m] = f->len[g->first + i];
            m++;
        }
    g->count = m;
}

/* Sorts a glyph's strokes into body (written in order, chained to the neighbours) and
 * marks (written when the chain of joined letters ends): dots, short straight bars that are not the first stroke, and
 * whatever follows the exit stroke — the last stroke ending at the right edge within the
 * x-height band, which is where cursive leaves a letter for the next.  Sets nbody and
 * has_exit; reorders the strokes body first, each part in font order. */
static void classify_strokes(font *f, glyph *g)
{
    int32_t mark[HERSHEY_MAX_PAIRS], st[HERSHEY_MAX_PAIRS], ln[HERSHEY_MAX_PAIRS];
    const int32_t n = g->count;
    int32_t exit_stroke = -1;
    for (int32_t i = 0; i < n; i++) {
        const int32_t s = g->first + i;
        const double *a = f->xy + 2 * f->start[s], *b = f->xy + 2 * (f->start[s] + f->len[s] - 1);
        const double dx = fabs(b[0] - a[0]), dy = fabs(b[1] - a[1]);
        mark[i] = stroke_is_dot(f, s) || (i > 0 && f->len[s] <= 3 && dy <= BAR_FLATNESS * dx);
        if (!mark[i] && b[0] >= g->right - EXIT_SLACK && b[1] <= f->baseline + 1 &&
            b[1] >= f->baseline - f->xheight - 1)
            exit_stroke = i;
    }
    for (int32_t i = exit_stroke + 1; exit_stroke >= 0 && i < n; i++)
        mark[i] = 1;
    int32_t m = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int32_t i = 0; i < n; i++)
            if (mark[i] == pass) {
                st[m] = f->start[g->first + i];
                ln[m] = f->len[g->first + i];
                m++;
            }
    memcpy(f->start + g->first, st, (size_t)n * sizeof *st);
    memcpy(f->len + g->first, ln, (size_t)n * sizeof *ln);
    g->nbody = 0;
    for (int32_t i = 0; i < n; i++)
        g->nbody += !mark[i];
    g->has_exit = exit_stroke >= 0;
}

/* Loads dir/name into f: parse, drop second passes, measure 'x', classify strokes.
 * Fails with HYPER_ERR_IO or HYPER_ERR_FORMAT naming the file. */
static hyper_status font_load(font *f, const char *dir, const char *name, char *err)
{
    char path[HERSHEY_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return hyper_fail(err, HYPER_ERR_ARG, "%s: font directory name too long", dir);
    char *text = NULL;
    size_t len = 0;
    hyper_status rc = fs_read_file(path, HERSHEY_MAX_FILE_BYTES, 0, &text, &len, err);
    if (rc != HYPER_OK)
        return rc;
    rc = parse_jhf(f, text, len, path, err);
    free(text);
    if (rc != HYPER_OK)
        return rc;
    for (int32_t c = 0; c < HERSHEY_NCHARS; c++)
        drop_second_passes(f, &f->g[c]);
    const glyph *x = &f->g['x' - HERSHEY_FIRST_CHAR];
    double top = 0, bottom = 0;
    for (int32_t k = 0; k < x->count; k++) {
        double x0, y0, x1, y1;
        stroke_box(f, x->first + k, &x0, &y0, &x1, &y1);
        top = k ? dmin(top, y0) : y0;
        bottom = k ? dmax(bottom, y1) : y1;
    }
    if (bottom - top < 2)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: the glyph of 'x' is empty or flat; cannot tell the x-height", path);
    f->baseline = bottom;
    f->xheight = bottom - top;
    for (int32_t c = 0; c < HERSHEY_NCHARS; c++)
        classify_strokes(f, &f->g[c]);
    return HYPER_OK;
}

/* ---- the text to write: the corpus cut into lines ------------------------------------- */

typedef struct {
    char *text;       /* usable lines, each NUL-terminated */
    int32_t *offset;  /* (n) where each starts in text */
    int32_t n;
} line_source;

static void line_source_free(line_source *c)
{
    free(c->text);
    free(c->offset);
    memset(c, 0, sizeof *c);
}

/* Cleans one physical line src[0, n) into dst: whitespace runs become one space, leading
 * and trailing ones go, and every character that is not printable ASCII or that a font
 * lacks (have[] says) is dropped.  Returns the cleaned length (at most n). */
static size_t clean_line(const char *src, size_t n, const int *have, char *dst)
{
    size_t m = 0;
    int space = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char ch = (unsigned char)src[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f') {
            space = m > 0;
        } else if (ch > ' ' && ch <= '~' && have[ch - HERSHEY_FIRST_CHAR]) {
            if (space)
                dst[m++] = ' ';
            dst[m++] = (char)ch;
            space = 0;
        }
    }
    return m;
}

/* Splits the corpus file into usable lines: each physical line cleaned (clean_line), then
 * broken at spaces into pieces of at most TEXT_MAX_CHARS (a longer word is cut); pieces
 * shorter than TEXT_MIN_CHARS are skipped.  Fails with HYPER_ERR_IO or HYPER_ERR_FORMAT
 * naming path. */
static hyper_status line_source_load(line_source *c, const char *path, const int *have, char *err)
{
    char *raw = NULL, *clean = NULL;
    size_t len = 0, w = 0;
    ibuf offs = {0};
    hyper_status rc = fs_read_file(path, CORPUS_MAX_BYTES, 0, &raw, &len, err);
    if (rc != HYPER_OK)
        return rc;
    if (len == 0) {
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: the corpus is empty", path);
        goto out;
    }
    /* every kept piece has at least TEXT_MIN_CHARS characters and one NUL */
    c->text = malloc(len + len / TEXT_MIN_CHARS + 2);
    clean = malloc(len + 1);
    if (!c->text || !clean)
        goto nomem;
    for (size_t a = 0; a < len;) {
        const char *nl = memchr(raw + a, '\n', len - a);
        const size_t b = nl ? (size_t)(nl - raw) : len;
        const size_t n = clean_line(raw + a, b - a, have, clean);
        a = b + 1;
        for (size_t pos = 0; pos < n;) {
            size_t piece = n - pos, skip = 0;
            if (piece > TEXT_MAX_CHARS) {
                piece = TEXT_MAX_CHARS; /* cut a word longer than a line */
                for (size_t k = pos + TEXT_MAX_CHARS; k > pos; k--)
                    if (clean[k] == ' ') {
                        piece = k - pos;
                        skip = 1;
                        break;
                    }
            }
            if (piece >= TEXT_MIN_CHARS) {
                if (offs.n >= INT32_MAX / 2 || !ibuf_push(&offs, (int32_t)w))
                    goto nomem;
                memcpy(c->text + w, clean + pos, piece);
                c->text[w + piece] = '\0';
                w += piece + 1;
            }
            pos += piece + skip;
        }
    }
    if (offs.n == 0) {
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: no line with %d..%d printable characters",
                        path, TEXT_MIN_CHARS, TEXT_MAX_CHARS);
        goto out;
    }
    c->offset = offs.v;
    c->n = (int32_t)offs.n;
    offs.v = NULL;
    goto out;
nomem:
    rc = hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", path);
out:
    free(raw);
    free(clean);
    free(offs.v);
    return rc;
}

/* ---- writers ------------------------------------------------------------------------- */

/* One simulated writer: everything that stays the same over the lines they write.
 * Lengths are in x-heights unless said otherwise. */
typedef struct {
    int32_t font;           /* which of font_files */
    double xheight;         /* output units: the size of the writing */
    double width;           /* horizontal scale of the letters (narrow < 1 < wide) */
    double slant;           /* shear added to the font's own: x -= slant * y, y up < 0 */
    double letter_spacing;  /* multiplies each letter's advance */
    double word_spacing;    /* multiplies the font's space */
    double tilt;            /* radians: the writer's usual line angle (y down: > 0 falls) */
    double drift_amp, drift_wave;       /* baseline wander: amplitude, wavelength */
    double letter_scale_sd, letter_rot_sd, letter_lift_sd; /* per-letter variation */
    double jitter_amp, jitter_wave;     /* smooth pen jitter: amplitude, wavelength */
    double step;            /* distance between samples at full speed */
    double corner_slow;     /* how much the pen slows in a sharp turn */
    double join_reach;      /* farthest gap a join between letters bridges */
    double retrace_reach;   /* farthest gap bridged between strokes of one letter */
} writer;

static double clamp(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

static double uniform(hyper_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * hyper_rng_uniform(r);
}

/* A normal value with the given mean and deviation, clipped to [lo, hi]. */
static double normal(hyper_rng *r, double mean, double sd, double lo, double hi)
{
    return clamp(mean + sd * hyper_rng_normal(r), lo, hi);
}

/* Draws a writer.  The ranges were set by looking at the writing (and at IAM-OnDB's density):
 *   x-height 22 output units x e^N(0, 0.2), so 14..34; letter width x e^N(0, 0.1)
 *   slant: a shear of N(0, 0.14) in -0.3..0.35 on top of the fonts' own ~0.35, so from
 *     upright to about 35 degrees; line tilt N(0, 0.015) rad, each line N(tilt, 0.01)
 *   letter spacing N(1, 0.08) in 0.82..1.25; word spacing e^N(-0.2, 0.25) of the font's
 *     space (itself about 1.8 x-heights), each space varying by e^N(0, 0.15)
 *   baseline drift 0.1..0.4 x-heights over a wavelength of 6..14
 *   per letter: scale e^N(0, 0.03..0.08), rotation N(0, 0.01..0.05) rad, lift N(0,
 *     0.02..0.06) x-heights
 *   pen jitter 0.03..0.07 x-heights over a wavelength of 0.5..1.2
 *   tablet: 0.38..0.54 x-heights per sample at full speed, slowing by 1 + (3..6) at a cusp
 *   joins across gaps up to 1.3..1.7 x-heights between letters, 1.0..1.5 within one */
static writer writer_draw(hyper_rng *r)
{
    writer w;
    w.font = (int32_t)(hyper_rng_next(r) % HERSHEY_NFONTS);
    w.xheight = 22 * exp(normal(r, 0, 0.2, -0.45, 0.45));
    w.width = exp(normal(r, 0, 0.1, -0.2, 0.2));
    w.slant = normal(r, 0.0, 0.14, -0.3, 0.35);
    w.letter_spacing = normal(r, 1.0, 0.08, 0.82, 1.25);
    w.word_spacing = exp(normal(r, -0.2, 0.25, -0.7, 0.5));
    w.tilt = normal(r, 0, 0.015, -0.04, 0.04);
    w.drift_amp = uniform(r, 0.1, 0.4);
    w.drift_wave = uniform(r, 6, 14);
    w.letter_scale_sd = uniform(r, 0.03, 0.08);
    w.letter_rot_sd = uniform(r, 0.01, 0.05);
    w.letter_lift_sd = uniform(r, 0.02, 0.06);
    w.jitter_amp = uniform(r, 0.03, 0.07);
    w.jitter_wave = uniform(r, 0.5, 1.2);
    w.step = uniform(r, 0.38, 0.54);
    w.corner_slow = uniform(r, 3, 6);
    w.join_reach = uniform(r, 1.3, 1.7);
    w.retrace_reach = uniform(r, 1.0, 1.5);
    return w;
}

/* ---- smooth noise -------------------------------------------------------------------- */

/* Value noise: knots[k] at t = k, blended with smoothstep between neighbours, so the
 * result and its slope are continuous.  t outside [0, n - 1] is clamped. */
static double noise_at(const double *knots, size_t n, double t)
{
    if (n == 1 || t <= 0)
        return knots[0];
    if (t >= (double)(n - 1))
        return knots[n - 1];
    const size_t k = (size_t)t;
    const double f = t - (double)k, s = f * f * (3 - 2 * f);
    return knots[k] + (knots[k + 1] - knots[k]) * s;
}

/* Fills n knots with values of mean 0 and variance 1 (uniform: a normal's log would cost
 * more than the rest of the line).  0 when out of memory. */
static int noise_make(dbuf *b, size_t n, hyper_rng *r)
{
    b->n = 0;
    if (!dbuf_reserve(b, n))
        return 0;
    for (size_t k = 0; k < n; k++)
        b->v[b->n++] = uniform(r, -sqrt(3.0), sqrt(3.0));
    return 1;
}

/* ---- one line ------------------------------------------------------------------------ */

/* Scratch reused from line to line. */
typedef struct {
    dbuf ctrl;   ibuf ctrl_len;   /* pen-down paths of control points, line units */
    dbuf marks;  ibuf marks_len;  /* the current chain's dots and bars, waiting */
    dbuf dense;  ibuf dense_len;  /* the paths as dense spline samples */
    dbuf out;    ibuf out_len;    /* the tablet's samples */
    dbuf noise_x, noise_y, drift, speed;
} scratch;

static void scratch_free(scratch *sc)
{
    dbuf *d[] = {&sc->ctrl, &sc->marks, &sc->dense, &sc->out, &sc->noise_x, &sc->noise_y,
                 &sc->drift, &sc->speed};
    ibuf *i[] = {&sc->ctrl_len, &sc->marks_len, &sc->dense_len, &sc->out_len};
    for (size_t k = 0; k < sizeof d / sizeof *d; k++)
        free(d[k]->v);
    for (size_t k = 0; k < sizeof i / sizeof *i; k++)
        free(i[k]->v);
    memset(sc, 0, sizeof *sc);
}

/* Where one letter goes: font units (u, v) → line units, before slant and drift. */
typedef struct {
    double left, baseline; /* font's */
    double x0, y0;         /* line position of the letter's left edge on the baseline */
    double sx, sy;         /* scale (width and height) */
    double c, s;           /* rotation */
    double pu, pv;         /* rotation centre, font units relative to (left, baseline) */
} placement;

static void place(const placement *p, double gx, double gy, double *x, double *y)
{
    const double u = gx - p->left - p->pu, v = gy - p->baseline - p->pv;
    const double ru = p->c * u - p->s * v + p->pu, rv = p->s * u + p->c * v + p->pv;
    *x = p->x0 + p->sx * ru;
    *y = p->y0 + p->sy * rv;
}

/* Appends stroke s of font f, placed by p, to the path set (xy, len): onto the last path
 * when join is set, else as a new path.  Points equal to the previous one are skipped.
 * 0 when out of memory. */
static int append_stroke(dbuf *xy, ibuf *len, const font *f, int32_t s, const placement *p,
                         int join)
{
    if (!join && !ibuf_push(len, 0))
        return 0;
    const double *v = f->xy + 2 * f->start[s];
    for (int32_t i = 0; i < f->len[s]; i++) {
        double x, y;
        place(p, v[2 * i], v[2 * i + 1], &x, &y);
        if (len->v[len->n - 1] > 0 && x == xy->v[xy->n - 2] && y == xy->v[xy->n - 1])
            continue;
        if (!dbuf_push2(xy, x, y))
            return 0;
        len->v[len->n - 1]++;
    }
    return 1;
}

/* Moves the waiting marks of a chain of letters to the end of the path set.  0 when out of
 * memory. */
static int flush_marks(scratch *sc)
{
    if (sc->marks.n == 0)
        return 1;
    if (!dbuf_reserve(&sc->ctrl, sc->marks.n))
        return 0;
    memcpy(sc->ctrl.v + sc->ctrl.n, sc->marks.v, sc->marks.n * sizeof(double));
    sc->ctrl.n += sc->marks.n;
    for (size_t k = 0; k < sc->marks_len.n; k++)
        if (!ibuf_push(&sc->ctrl_len, sc->marks_len.v[k]))
            return 0;
    sc->marks.n = sc->marks_len.n = 0;
    return 1;
}

static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_letter(char c) { return is_lower(c) || (c >= 'A' && c <= 'Z'); }

/* Lays text out as pen-down paths of control points in sc->ctrl / ctrl_len (line units,
 * baseline at y = 0, x from 0, y down), with the writer's size, width, spacing and per-
 * letter variation, then slant.  Letters chain into one path where cursive joins them;
 * the marks of a chain follow it (so "minimum" is one stroke then three dots, and a long
 * web address is dotted as it goes).  0 when out of memory. */
static int layout(scratch *sc, const font *f, const writer *w, const char *text, hyper_rng *r)
{
    sc->ctrl.n = sc->ctrl_len.n = sc->marks.n = sc->marks_len.n = 0;
    const double k = w->xheight / f->xheight; /* font units → line units */
    double cursor = 0;
    int can_join = 0; /* the previous letter of this word has an exit */
    for (const char *t = text; *t; t++) {
        const glyph *g = &f->g[*t - HERSHEY_FIRST_CHAR];
        const double advance = (g->right - g->left) * k * w->width;
        if (*t == ' ') {
            cursor += advance * w->word_spacing * exp(normal(r, 0, 0.15, -0.4, 0.4));
            can_join = 0;
            if (!flush_marks(sc))
                return 0;
            continue;
        }
        const double scale = exp(normal(r, 0, w->letter_scale_sd, -0.25, 0.25));
        const double angle = normal(r, 0, w->letter_rot_sd, -0.15, 0.15);
        placement p = {
            .left = g->left, .baseline = f->baseline,
            .x0 = cursor, .y0 = normal(r, 0, w->letter_lift_sd, -0.15, 0.15) * w->xheight,
            .sx = k * w->width * scale, .sy = k * scale,
            .c = cos(angle), .s = sin(angle),
            .pu = 0.5 * (g->right - g->left), .pv = -0.5 * f->xheight,
        };
        for (int32_t i = 0; i < g->count; i++) {
            const int32_t s = g->first + i;
            int join = 0;
            if (i < g->nbody && sc->ctrl_len.n > 0) {
                double x, y;
                place(&p, f->xy[2 * f->start[s]], f->xy[2 * f->start[s] + 1], &x, &y);
                const double gap = len2(x - sc->ctrl.v[sc->ctrl.n - 2], y - sc->ctrl.v[sc->ctrl.n - 1]);
                if (i == 0)
                    join = can_join && is_lower(*t) && gap <= w->join_reach * w->xheight;
                else
                    join = gap <= w->retrace_reach * w->xheight;
            }
            if (i == 0 && i < g->nbody && !join && !flush_marks(sc))
                return 0; /* the chain before this letter is done: dot and cross it */
            if (i < g->nbody ? !append_stroke(&sc->ctrl, &sc->ctrl_len, f, s, &p, join)
                             : !append_stroke(&sc->marks, &sc->marks_len, f, s, &p, 0))
                return 0;
        }
        can_join = is_letter(*t) && g->has_exit && g->nbody > 0;
        cursor += advance * scale * w->letter_spacing;
    }
    if (!flush_marks(sc))
        return 0;
    for (size_t i = 0; i < sc->ctrl.n; i += 2) /* slant: a shear about the baseline */
        sc->ctrl.v[i] -= w->slant * sc->ctrl.v[i + 1];
    return 1;
}

/* Adds baseline drift to every control point: smooth noise of x with the writer's
 * wavelength and amplitude, plus the line's tilt.  0 when out of memory. */
static int drift(scratch *sc, const writer *w, double tilt, hyper_rng *r)
{
    double xmax = 0;
    for (size_t i = 0; i < sc->ctrl.n; i += 2)
        xmax = dmax(xmax, sc->ctrl.v[i]);
    const double wave = w->drift_wave * w->xheight, amp = w->drift_amp * w->xheight;
    const size_t nk = (size_t)(xmax / wave) + 2;
    if (!noise_make(&sc->drift, nk, r))
        return 0;
    const double t = tan(tilt);
    for (size_t i = 0; i < sc->ctrl.n; i += 2) {
        const double x = sc->ctrl.v[i];
        sc->ctrl.v[i + 1] += amp * noise_at(sc->drift.v, nk, dmax(x, 0) / wave) + t * x;
    }
    return 1;
}

/* Samples path P (n control points) as a centripetal Catmull-Rom spline, about step apart,
 * appending to out (the first point included, every segment's end included).  The ends
 * are extended by reflection.  Each segment is evaluated in Hermite form, its tangents
 * those of the centripetal parameterisation (knot gaps sqrt of the chord: no cusps or
 * loops within a segment).  0 when out of memory. */
static int spline(dbuf *out, const double *P, int32_t n, double step)
{
    if (!dbuf_push2(out, P[0], P[1]))
        return 0;
    for (int32_t i = 0; i + 1 < n; i++) {
        double q[4][2];
        for (int j = 0; j < 4; j++) {
            const int32_t m = i - 1 + j;
            if (m < 0) {
                q[j][0] = 2 * P[0] - P[2];
                q[j][1] = 2 * P[1] - P[3];
            } else if (m >= n) {
                q[j][0] = 2 * P[2 * n - 2] - P[2 * n - 4];
                q[j][1] = 2 * P[2 * n - 1] - P[2 * n - 3];
            } else {
                q[j][0] = P[2 * m];
                q[j][1] = P[2 * m + 1];
            }
        }
        double dt[3];
        for (int j = 0; j < 3; j++)
            dt[j] = dmax(sqrt(len2(q[j + 1][0] - q[j][0], q[j + 1][1] - q[j][1])), 1e-6);
        double m1[2], m2[2]; /* tangents at q1, q2 for a parameter running 0..1 */
        for (int d = 0; d < 2; d++) {
            m1[d] = dt[1] * ((q[1][d] - q[0][d]) / dt[0] - (q[2][d] - q[0][d]) / (dt[0] + dt[1]) +
                             (q[2][d] - q[1][d]) / dt[1]);
            m2[d] = dt[1] * ((q[2][d] - q[1][d]) / dt[1] - (q[3][d] - q[1][d]) / (dt[1] + dt[2]) +
                             (q[3][d] - q[2][d]) / dt[2]);
        }
        const double seg = len2(q[2][0] - q[1][0], q[2][1] - q[1][1]);
        const int32_t ns = (int32_t)dmin(ceil(seg / step), 1000);
        if (!dbuf_reserve(out, 2 * (size_t)(ns > 0 ? ns : 1)))
            return 0;
        for (int32_t k = 1; k <= ns; k++) {
            const double u = (double)k / ns, u2 = u * u, u3 = u2 * u;
            const double h00 = 2 * u3 - 3 * u2 + 1, h10 = u3 - 2 * u2 + u;
            const double h01 = 3 * u2 - 2 * u3, h11 = u3 - u2;
            for (int d = 0; d < 2; d++)
                out->v[out->n++] = h00 * q[1][d] + h10 * m1[d] + h01 * q[2][d] + h11 * m2[d];
        }
    }
    return 1;
}

/* Samples one dense path D (n points) the way a tablet samples a pen: at equal time steps,
 * the pen moving at full speed (one writer step per tick) on straight runs, slower in turns
 * (by the angle it turns through over a few samples) and near the ends of the stroke.
 * Appends the samples (first and last point included) to out; returns how many, 0 when
 * out of memory. */
static int32_t tablet_sample(dbuf *out, dbuf *speed, const double *D, int32_t n, const writer *w)
{
    speed->n = 0;
    if (!dbuf_reserve(speed, 2 * (size_t)n) || !dbuf_reserve(out, 2))
        return 0;
    double *arc = speed->v + n, *v = speed->v;
    arc[0] = 0;
    for (int32_t i = 1; i < n; i++)
        arc[i] = arc[i - 1] + len2(D[2 * i] - D[2 * i - 2], D[2 * i + 1] - D[2 * i - 1]);
    const double total = arc[n - 1], ramp = RAMP_LEN * w->xheight;
    for (int32_t i = 0; i < n; i++) {
        const int32_t a = i - CORNER_WINDOW < 0 ? 0 : i - CORNER_WINDOW;
        const int32_t b = i + CORNER_WINDOW >= n ? n - 1 : i + CORNER_WINDOW;
        const double ux = D[2 * i] - D[2 * a], uy = D[2 * i + 1] - D[2 * a + 1];
        const double wx = D[2 * b] - D[2 * i], wy = D[2 * b + 1] - D[2 * i + 1];
        const double norms = len2(ux, uy) * len2(wx, wy);
        /* (1 - cos) / 2 of the turning angle: 0 straight on, 1/2 a right angle, 1 a cusp */
        const double turn = norms > 0 ? 0.5 * (1 - (ux * wx + uy * wy) / norms) : 0;
        const double edge = dmin(dmin(arc[i], total - arc[i]) / ramp, 1);
        v[i] = (RAMP_FLOOR + (1 - RAMP_FLOOR) * edge) / (1 + w->corner_slow * turn);
    }
    /* time along the path, then ticks at equal times */
    double time = 0;
    for (int32_t i = 1; i < n; i++)
        time += (arc[i] - arc[i - 1]) * 2 / (v[i - 1] + v[i]);
    const double tick_len = w->step * w->xheight;
    const int32_t ticks = (int32_t)dmax(1, round(time / tick_len));
    const double tick = time / ticks;
    if (!dbuf_reserve(out, 2 * ((size_t)ticks + 1)))
        return 0;
    out->v[out->n++] = D[0];
    out->v[out->n++] = D[1];
    if (n == 1)
        return 1;
    int32_t count = 1, i = 1;
    double t0 = 0; /* time at D[i - 1] */
    for (int32_t k = 1; k < ticks; k++) {
        const double want = k * tick;
        double dt = (arc[i] - arc[i - 1]) * 2 / (v[i - 1] + v[i]);
        while (i < n - 1 && t0 + dt < want) {
            t0 += dt;
            i++;
            dt = (arc[i] - arc[i - 1]) * 2 / (v[i - 1] + v[i]);
        }
        const double f = dt > 0 ? clamp((want - t0) / dt, 0, 1) : 1;
        out->v[out->n++] = D[2 * i - 2] + f * (D[2 * i] - D[2 * i - 2]);
        out->v[out->n++] = D[2 * i - 1] + f * (D[2 * i + 1] - D[2 * i - 1]);
        count++;
    }
    out->v[out->n++] = D[2 * n - 2];
    out->v[out->n++] = D[2 * n - 1];
    return count + 1;
}

/* Writes one line of text by writer w with font f and appends it to s.  Fails only when
 * out of memory or when strokes_add_line refuses the result. */
static hyper_status write_line(stroke_set *s, scratch *sc, const font *f, const writer *w,
                               const char *text, hyper_rng *r, char *err)
{
    if (!layout(sc, f, w, text, r) || !drift(sc, w, normal(r, w->tilt, 0.01, -0.06, 0.06), r))
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    double ink = 0;
    for (size_t i = 2; i < sc->ctrl.n; i += 2)
        ink += len2(sc->ctrl.v[i] - sc->ctrl.v[i - 2], sc->ctrl.v[i + 1] - sc->ctrl.v[i - 1]);
    if (ink > LINE_MAX_INK * w->xheight) /* counts pen-up moves too: an upper bound */
        return hyper_fail(err, HYPER_ERR_FORMAT, "%.0f x-heights of pen path, more than %.0f: glyphs too large",
                          ink / w->xheight, LINE_MAX_INK);
    /* dense spline samples of every path */
    sc->dense.n = sc->dense_len.n = 0;
    const double *P = sc->ctrl.v;
    for (size_t k = 0; k < sc->ctrl_len.n; k++) {
        const size_t before = sc->dense.n;
        if (!spline(&sc->dense, P, sc->ctrl_len.v[k], DENSE_STEP * w->xheight) ||
            !ibuf_push(&sc->dense_len, (int32_t)((sc->dense.n - before) / 2)))
            return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
        P += 2 * sc->ctrl_len.v[k];
    }
    /* smooth jitter along the arc length of the whole line */
    const double *D = sc->dense.v;
    double total = 0;
    for (size_t i = 2; i < sc->dense.n; i += 2)
        total += len2(D[i] - D[i - 2], D[i + 1] - D[i - 1]);
    const double wave = w->jitter_wave * w->xheight, amp = w->jitter_amp * w->xheight;
    const size_t nk = (size_t)(total / wave) + 2;
    if (!noise_make(&sc->noise_x, nk, r) || !noise_make(&sc->noise_y, nk, r))
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    double arc = 0, px = D[0], py = D[1];
    for (size_t i = 0; i < sc->dense.n; i += 2) {
        arc += len2(sc->dense.v[i] - px, sc->dense.v[i + 1] - py);
        px = sc->dense.v[i];
        py = sc->dense.v[i + 1];
        sc->dense.v[i] += amp * noise_at(sc->noise_x.v, nk, arc / wave);
        sc->dense.v[i + 1] += amp * noise_at(sc->noise_y.v, nk, arc / wave);
    }
    /* the tablet's samples */
    sc->out.n = sc->out_len.n = 0;
    D = sc->dense.v;
    for (size_t k = 0; k < sc->dense_len.n; k++) {
        const int32_t m = tablet_sample(&sc->out, &sc->speed, D, sc->dense_len.v[k], w);
        if (m == 0 || !ibuf_push(&sc->out_len, m))
            return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
        D += 2 * sc->dense_len.v[k];
    }
    return strokes_add_line(s, text, sc->out.v, sc->out_len.v, (int32_t)sc->out_len.n, err);
}

/* ---- the entry point ----------------------------------------------------------------- */

hyper_status strokes_synthesize(stroke_set *s, int32_t nlines, const char *corpus_path,
                                const char *font_dir, uint64_t seed, char *err)
{
    if (nlines < 1 || nlines > STROKES_MAX_LINES)
        return hyper_fail(err, HYPER_ERR_ARG, "synthetic handwriting: %d lines asked for, want 1..%d",
                          nlines, STROKES_MAX_LINES);
    if (!corpus_path || !font_dir)
        return hyper_fail(err, HYPER_ERR_ARG, "synthetic handwriting: no corpus or font directory given");
    struct stat st;
    if (stat(font_dir, &st) != 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", font_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return hyper_fail(err, HYPER_ERR_IO, "%s: not a directory (want the Hershey fonts' directory)", font_dir);
    font fonts[HERSHEY_NFONTS];
    memset(fonts, 0, sizeof fonts);
    line_source cp = {0};
    scratch sc;
    memset(&sc, 0, sizeof sc);
    hyper_status rc = HYPER_OK;
    for (int k = 0; k < HERSHEY_NFONTS && rc == HYPER_OK; k++)
        rc = font_load(&fonts[k], font_dir, font_files[k], err);
    if (rc != HYPER_OK)
        goto out;
    int have[HERSHEY_NCHARS]; /* written by every font (space always is) */
    for (int c = 0; c < HERSHEY_NCHARS; c++) {
        have[c] = 1;
        for (int k = 0; k < HERSHEY_NFONTS; k++)
            have[c] &= c == 0 || fonts[k].g[c].count > 0;
    }
    rc = line_source_load(&cp, corpus_path, have, err);
    if (rc != HYPER_OK)
        goto out;
    hyper_rng r;
    hyper_rng_seed(&r, seed);
    int32_t line = (int32_t)(hyper_rng_next(&r) % (uint64_t)cp.n), writer_left = 0;
    writer w = {0};
    const int32_t n0 = s->n;
    for (int32_t k = 0; k < nlines; k++) {
        if (writer_left == 0) {
            w = writer_draw(&r);
            writer_left = 1 + (int32_t)(hyper_rng_next(&r) % WRITER_MAX_LINES);
        }
        writer_left--;
        rc = write_line(s, &sc, &fonts[w.font], &w, cp.text + cp.offset[line], &r, err);
        if (rc != HYPER_OK)
            break;
        line = (line + 1) % cp.n;
    }
    if (rc != HYPER_OK) { /* leave the set as it was */
        char msg[HYPER_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", err ? err : "");
        for (int32_t k = n0; k < s->n; k++) {
            free(s->lines[k].text);
            free(s->lines[k].pts);
        }
        s->n = n0;
        if (err)
            snprintf(err, HYPER_ERRMSG_MAX, "synthetic line \"%.40s\" in %s: %.400s", cp.text + cp.offset[line],
                     font_files[w.font], msg);
    }
out:
    for (int k = 0; k < HERSHEY_NFONTS; k++)
        font_free(&fonts[k]);
    line_source_free(&cp);
    scratch_free(&sc);
    return rc;
}
