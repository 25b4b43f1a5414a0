/*
 * test_hershey.c — the synthetic handwriting of strokes_synthesize (engine/hershey.c):
 * determinism for a seed, every line holding its cleaned corpus text and sane points at a
 * tablet's density, writers that differ measurably from each other but stay the same over
 * their lines, cursive words written with fewer strokes than letters, and errors (missing
 * or damaged fonts and corpora, a bad line count) refused with the path named, never a
 * crash.  The font parser is also fed the real fonts re-wrapped onto continuation lines and
 * with CRLF endings (same writing as the originals) and a few hundred randomly damaged
 * copies (each one written or refused, the sanitizer build watching).
 *
 * The tests write their corpora (and font copies) in a mkdtemp directory under /tmp,
 * removed by the fixtures; the fonts come from Debian's hershey-fonts-data.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "strokes.h"

#define FONT_DIR "/usr/share/hershey-fonts"
static const char *const font_names[] = {"cursive.jhf", "scripts.jhf", "scriptc.jhf"};
#define NFONTS 3

/* ---- fixtures and helpers ------------------------------------------------------------ */

static char tmpdir[64];

/* Removes everything in tmpdir, one level of subdirectories deep. */
static void dir_empty_at(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (unlink(p) != 0 && depth > 0) {
            dir_empty_at(p, depth - 1);
            rmdir(p);
        }
    }
    closedir(d);
}

static void dir_empty(void) { dir_empty_at(tmpdir, 1); }

static void dir_create(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hyperd-hershey-XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp failed");
}

static void dir_remove(void)
{
    dir_empty();
    rmdir(tmpdir);
}

static const char *path_in(char *buf, const char *name)
{
    snprintf(buf, 512, "%s/%s", tmpdir, name);
    return buf;
}

/* Writes n bytes of data to tmpdir/name; returns the path (in buf). */
static const char *write_bytes(char *buf, const char *name, const char *data, size_t n)
{
    path_in(buf, name);
    FILE *f = fopen(buf, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", buf);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
    return buf;
}

static const char *write_text(char *buf, const char *name, const char *text)
{
    return write_bytes(buf, name, text, strlen(text));
}

/* The whole of a file, NUL-terminated (new). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Makes tmpdir/sub holding the three fonts, each transformed by edit (new text from the
 * original; NULL copies as is).  Returns the directory (in buf). */
typedef char *(*font_edit)(const char *text, size_t len, size_t *out_len, int which);

static const char *font_copy(char *buf, const char *sub, font_edit edit)
{
    char p[512];
    path_in(buf, sub);
    mkdir(buf, 0700);
    for (int k = 0; k < NFONTS; k++) {
        char src[512];
        snprintf(src, sizeof src, "%s/%s", FONT_DIR, font_names[k]);
        size_t len, out_len;
        char *text = slurp(src, &len);
        char *out = edit ? edit(text, len, &out_len, k) : NULL;
        snprintf(p, sizeof p, "%s/%s", buf, font_names[k]);
        FILE *f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        if (out)
            fwrite(out, 1, out_len, f);
        else
            fwrite(text, 1, len, f);
        fclose(f);
        free(out);
        free(text);
    }
    return buf;
}

/* Synthesizes n lines and checks it worked. */
static void synth_ok(stroke_set *s, int32_t n, const char *corpus, const char *fonts, uint64_t seed)
{
    char err[HYPER_ERRMSG_MAX] = "";
    strokes_init(s);
    hyper_status st = strokes_synthesize(s, n, corpus, fonts, seed, err);
    ck_assert_msg(st == HYPER_OK, "strokes_synthesize: %s (%s)", hyper_status_str(st), err);
    ck_assert_int_eq(s->n, n);
}

static int sets_equal(const stroke_set *a, const stroke_set *b)
{
    if (a->n != b->n)
        return 0;
    for (int32_t k = 0; k < a->n; k++) {
        const stroke_line *x = &a->lines[k], *y = &b->lines[k];
        if (strcmp(x->text, y->text) != 0 || x->npoints != y->npoints ||
            memcmp(x->pts, y->pts, (size_t)x->npoints * 3 * sizeof(float)) != 0)
            return 0;
    }
    return 1;
}

static int32_t count_strokes(const stroke_line *ln)
{
    int32_t n = 0;
    for (int32_t i = 0; i < ln->npoints; i++)
        n += ln->pts[3 * i + 2] > 0.5f;
    return n;
}

static const char CORPUS[] =
    "The quick brown fox jumps over the lazy dog.\n"
    "%\n"
    "\tPack my box with   five dozen liquor jugs!\r\n"
    "\n"
    "short\n"
    "A journey of a thousand miles begins with a single step, or so the proverb says.\n"
    "How vexingly quick daft zebras jump (said Tom, 1984).\n";

/* The corpus above as strokes_synthesize should clean and split it, in order. */
static const char *const CORPUS_LINES[] = {
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "A journey of a thousand miles begins with a single step, or",
    "so the proverb says.",
    "How vexingly quick daft zebras jump (said Tom, 1984).",
};
#define NCORPUS_LINES 5

static int corpus_index(const char *text)
{
    for (int k = 0; k < NCORPUS_LINES; k++)
        if (strcmp(text, CORPUS_LINES[k]) == 0)
            return k;
    return -1;
}

/* ---- determinism --------------------------------------------------------------------- */

START_TEST(same_seed_same_writing)
{
    char cp[512];
    write_text(cp, "corpus.txt", CORPUS);
    stroke_set a, b;
    synth_ok(&a, 25, cp, FONT_DIR, 42);
    synth_ok(&b, 25, cp, FONT_DIR, 42);
    ck_assert_msg(sets_equal(&a, &b), "two runs with seed 42 differ");
    strokes_free(&a);
    strokes_free(&b);
}
END_TEST

START_TEST(other_seed_other_writing)
{
    char cp[512];
    write_text(cp, "corpus.txt", CORPUS);
    stroke_set a, b;
    synth_ok(&a, 25, cp, FONT_DIR, 42);
    synth_ok(&b, 25, cp, FONT_DIR, 43);
    /* not one line may come out the same, even where both seeds write the same text */
    for (int32_t k = 0; k < a.n; k++)
        for (int32_t j = 0; j < b.n; j++) {
            const stroke_line *x = &a.lines[k], *y = &b.lines[j];
            ck_assert_msg(!(x->npoints == y->npoints &&
                            memcmp(x->pts, y->pts, (size_t)x->npoints * 3 * sizeof(float)) == 0),
                          "line %d of seed 42 and line %d of seed 43 are identical", k, j);
        }
    strokes_free(&a);
    strokes_free(&b);
}
END_TEST

/* ---- text and points ----------------------------------------------------------------- */

START_TEST(lines_keep_their_text_in_corpus_order)
{
    char cp[512];
    write_text(cp, "corpus.txt", CORPUS);
    stroke_set s;
    synth_ok(&s, 12, cp, FONT_DIR, 5);
    int prev = -1;
    for (int32_t k = 0; k < s.n; k++) {
        ck_assert_ptr_nonnull(s.lines[k].text);
        const int at = corpus_index(s.lines[k].text);
        ck_assert_msg(at >= 0, "line %d: \"%s\" is not a cleaned line of the corpus", k, s.lines[k].text);
        if (prev >= 0) /* the corpus is read in order, from a seed's offset, round and round */
            ck_assert_msg(at == (prev + 1) % NCORPUS_LINES, "line %d: \"%s\" does not follow \"%s\"", k,
                          s.lines[k].text, CORPUS_LINES[prev]);
        prev = at;
    }
    strokes_free(&s);
}
END_TEST

START_TEST(points_are_sane)
{
    char cp[512];
    write_text(cp, "corpus.txt", CORPUS);
    stroke_set s;
    synth_ok(&s, 40, cp, FONT_DIR, 11);
    for (int32_t k = 0; k < s.n; k++) {
        const stroke_line *ln = &s.lines[k];
        const int32_t nchar = (int32_t)strlen(ln->text);
        int32_t words = 1;
        for (const char *c = ln->text; *c; c++)
            words += *c == ' ';
        ck_assert_msg(ln->npoints >= 5 * nchar && ln->npoints <= 40 * nchar,
                      "line %d: %d points for %d characters", k, ln->npoints, nchar);
        ck_assert(ln->pts[0] == 0 && ln->pts[1] == 0);
        ck_assert_msg(ln->pts[3 * ln->npoints - 1] == 1.0f, "line %d does not end a stroke", k);
        double x = 0, y = 0, x0 = 0, x1 = 0, y0 = 0, y1 = 0, steps = 0;
        for (int32_t i = 0; i < ln->npoints; i++) {
            const float *p = ln->pts + 3 * i;
            ck_assert_msg(isfinite(p[0]) && isfinite(p[1]), "line %d point %d not finite", k, i);
            ck_assert(p[2] == 0.0f || p[2] == 1.0f);
            x += p[0];
            y += p[1];
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
            if (i > 0 && ln->pts[3 * i - 1] == 0.0f) /* a pen-down move */
                steps += hypot(p[0], p[1]);
        }
        const double w = x1 - x0, h = y1 - y0;
        ck_assert_msg(w > 2 * h && w < 5000, "line %d: ink %.0f wide, %.0f high", k, w, h);
        /* a pen-down move is a few units: not a jump across the line, not a standstill */
        const double mean = steps / (ln->npoints - count_strokes(ln));
        ck_assert_msg(mean > 1 && mean < 0.1 * w, "line %d: mean pen-down step %.2f", k, mean);
        ck_assert_msg(count_strokes(ln) >= words, "line %d: %d strokes for %d words — words must be lifted apart",
                      k, count_strokes(ln), words);
    }
    strokes_free(&s);
}
END_TEST

START_TEST(density_is_like_a_tablet)
{
    char cp[512];
    write_text(cp, "corpus.txt", CORPUS);
    stroke_set s;
    synth_ok(&s, 60, cp, FONT_DIR, 3);
    double pts = 0, chars = 0, slow = 0, fast = 0;
    int64_t nslow = 0, nfast = 0;
    for (int32_t k = 0; k < s.n; k++) {
        const stroke_line *ln = &s.lines[k];
        pts += ln->npoints;
        chars += (double)strlen(ln->text);
        /* the step into a point against how sharply the pen turns there */
        for (int32_t i = 1; i + 1 < ln->npoints; i++) {
            const float *a = ln->pts + 3 * i, *b = a + 3;
            if (a[-1] > 0.5f || a[2] > 0.5f) /* a pen-up lies on either side */
                continue;
            const double la = hypot(a[0], a[1]), lb = hypot(b[0], b[1]);
            if (la == 0 || lb == 0)
                continue;
            const double cosine = (a[0] * b[0] + a[1] * b[1]) / (la * lb);
            if (cosine < 0) { /* turning by more than a right angle */
                slow += la;
                nslow++;
            } else if (cosine > 0.97) {
                fast += la;
                nfast++;
            }
        }
    }
    const double per_char = pts / chars;
    /* IAM-OnDB: a few hundred to ~700 points for a line of 30-50 characters */
    ck_assert_msg(per_char > 8 && per_char < 25, "%.1f points per character", per_char);
    ck_assert(nslow > 100 && nfast > 100);
    ck_assert_msg(slow / nslow < 0.7 * (fast / nfast), "mean step %.2f in sharp turns, %.2f on straight runs: "
                  "the pen does not slow down at corners", slow / nslow, fast / nfast);
    strokes_free(&s);
}
END_TEST

START_TEST(text_is_printable_ascii_and_missing_glyphs_are_skipped)
{
    char cp[512], fd[512];
    /* UTF-8 (é, ü, an em dash, a curly quote) and control characters are dropped */
    write_text(cp, "corpus.txt", "caf\xC3\xA9 cr\xC3\xA8me \xE2\x80\x94 \x01quite \xE2\x80\x9Cnice\xE2\x80\x9D\n");
    stroke_set s;
    synth_ok(&s, 2, cp, FONT_DIR, 1);
    ck_assert_str_eq(s.lines[0].text, "caf crme quite nice");
    strokes_free(&s);

    /* a font without a 'q' (its record emptied): no line holds a q */
    write_text(cp, "corpus.txt", CORPUS);
    font_copy(fd, "noq", NULL);
    char p[600];
    snprintf(p, sizeof p, "%s/scriptc.jhf", fd);
    size_t len;
    char *text = slurp(p, &len);
    /* the record of 'q' is the 82nd (ASCII 113 - 32 + 1) line of the Debian files */
    char *line = text;
    for (int k = 0; k < 'q' - 32; k++)
        line = strchr(line, '\n') + 1;
    char *eol = strchr(line, '\n');
    FILE *f = fopen(p, "wb");
    fwrite(text, 1, (size_t)(line - text), f);
    fputs(" 9999  1JZ", f); /* extents only: no strokes */
    fwrite(eol, 1, len - (size_t)(eol - text), f);
    fclose(f);
    free(text);
    synth_ok(&s, 10, cp, fd, 1);
    int saw_pack = 0;
    for (int32_t k = 0; k < s.n; k++) {
        ck_assert_msg(strchr(s.lines[k].text, 'q') == NULL, "\"%s\" holds a q the fonts lack", s.lines[k].text);
        saw_pack |= strcmp(s.lines[k].text, "Pack my box with five dozen liuor jugs!") == 0;
    }
    ck_assert(saw_pack);
    strokes_free(&s);
}
END_TEST

/* ---- writers ------------------------------------------------------------------------- */

/* Slant of one line: the slope of dx against dy over its pen-down moves (a shear x -= a*y
 * shifts it by exactly -a), and its size: the standard deviation of y about the line's
 * regression line (so that a tilted line is not taken for a large hand). */
static void line_shape(const stroke_line *ln, double *slope, double *size)
{
    double sxy = 0, syy = 0, x = 0, y = 0, n = ln->npoints;
    double mx = 0, my = 0, cxx = 0, cxy = 0, cyy = 0;
    for (int32_t i = 0; i < ln->npoints; i++) {
        const float *p = ln->pts + 3 * i;
        x += p[0];
        y += p[1];
        mx += x / n;
        my += y / n;
        if (i > 0 && p[-1] == 0.0f) {
            sxy += (double)p[0] * p[1];
            syy += (double)p[1] * p[1];
        }
    }
    *slope = sxy / syy;
    x = y = 0;
    for (int32_t i = 0; i < ln->npoints; i++) {
        x += ln->pts[3 * i];
        y += ln->pts[3 * i + 1];
        cxx += (x - mx) * (x - mx);
        cxy += (x - mx) * (y - my);
        cyy += (y - my) * (y - my);
    }
    *size = sqrt(fmax(cyy - cxy * cxy / cxx, 0) / n);
}

START_TEST(writers_differ_and_keep_their_hand)
{
    char cp[512];
    /* one text only, so whatever differs between lines is the writer's doing */
    write_text(cp, "corpus.txt", "Handwriting varies from one writer to the next.\n");
    enum { N = 80 };
    stroke_set s;
    synth_ok(&s, N, cp, FONT_DIR, 9);
    double slope[N], size[N];
    for (int k = 0; k < N; k++)
        line_shape(&s.lines[k], &slope[k], &size[k]);
    double smin = slope[0], smax = slope[0], zmin = size[0], zmax = size[0];
    double next_slope = 0, next_size = 0, any_slope = 0, any_size = 0;
    for (int k = 0; k < N; k++) {
        smin = fmin(smin, slope[k]), smax = fmax(smax, slope[k]);
        zmin = fmin(zmin, size[k]), zmax = fmax(zmax, size[k]);
        if (k + 1 < N) {
            next_slope += fabs(slope[k + 1] - slope[k]) / (N - 1);
            next_size += fabs(log(size[k + 1] / size[k])) / (N - 1);
        }
        for (int j = 0; j < N; j++) {
            any_slope += fabs(slope[j] - slope[k]) / (N * N);
            any_size += fabs(log(size[j] / size[k])) / (N * N);
        }
    }
    /* writers differ: slants across 0.25 or more (14 degrees), sizes by 40 % or more */
    ck_assert_msg(smax - smin > 0.25, "slopes %.3f..%.3f: the writers' slant hardly varies", smin, smax);
    ck_assert_msg(zmax / zmin > 1.4, "sizes %.2f..%.2f: the writers' size hardly varies", zmin, zmax);
    /* ... but a writer keeps their hand from one line to the next */
    ck_assert_msg(next_slope < 0.6 * any_slope, "slope: %.3f between neighbours, %.3f between any two lines",
                  next_slope, any_slope);
    ck_assert_msg(next_size < 0.6 * any_size, "log size: %.3f between neighbours, %.3f between any two lines",
                  next_size, any_size);
    strokes_free(&s);
}
END_TEST

START_TEST(cursive_words_are_joined)
{
    char cp[512];
    /* lowercase words without dots or crossings: cursive writes each in one stroke */
    write_text(cp, "corpus.txt", "summer runners mow lawns\n");
    enum { LETTERS = 21, WORDS = 4 };
    stroke_set s;
    synth_ok(&s, 30, cp, FONT_DIR, 17);
    int32_t total = 0;
    for (int32_t k = 0; k < s.n; k++) {
        const int32_t n = count_strokes(&s.lines[k]);
        ck_assert_msg(n >= WORDS && n <= LETTERS / 2, "line %d: %d strokes for %d letters in %d words", k, n,
                      LETTERS, WORDS);
        total += n;
    }
    ck_assert_msg(total <= 30 * (WORDS + 2), "%d strokes in 30 lines of %d words", total, WORDS);
    strokes_free(&s);
}
END_TEST

/* ---- fonts: continuation lines, CRLF, damage ------------------------------------------- */

/* Every record wrapped at 72 columns, as the original Hershey distribution does. */
static char *wrap72(const char *text, size_t len, size_t *out_len, int which)
{
    (void)which;
    char *out = malloc(2 * len + 1);
    size_t w = 0, col = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            out[w++] = '\n';
            col = 0;
            continue;
        }
        if (col == 72) {
            out[w++] = '\n';
            col = 0;
        }
        out[w++] = text[i];
        col++;
    }
    *out_len = w;
    return out;
}

static char *crlf(const char *text, size_t len, size_t *out_len, int which)
{
    (void)which;
    char *out = malloc(2 * len + 1);
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n')
            out[w++] = '\r';
        out[w++] = text[i];
    }
    *out_len = w;
    return out;
}

START_TEST(fonts_wrapped_or_crlf_write_the_same)
{
    char cp[512], fd[512];
    write_text(cp, "corpus.txt", CORPUS);
    stroke_set ref, s;
    synth_ok(&ref, 15, cp, FONT_DIR, 21);
    font_copy(fd, "wrapped", wrap72);
    synth_ok(&s, 15, cp, fd, 21);
    ck_assert_msg(sets_equal(&ref, &s), "fonts wrapped at 72 columns write differently");
    strokes_free(&s);
    font_copy(fd, "crlf", crlf);
    synth_ok(&s, 15, cp, fd, 21);
    ck_assert_msg(sets_equal(&ref, &s), "fonts with CRLF line ends write differently");
    strokes_free(&s);
    strokes_free(&ref);
}
END_TEST

/* Damages that must each be refused: the font file's content replaced or cut. */
static int damage_kind;

static char *damage(const char *text, size_t len, size_t *out_len, int which)
{
    if (which != 1) /* scripts.jhf only */
        return NULL;
    char *out = malloc(len + 64);
    memcpy(out, text, len);
    *out_len = len;
    const char *second = strchr(text, '\n') + 1; /* the record of '!' */
    const size_t at = (size_t)(second - text);
    switch (damage_kind) {
    case 0: /* empty */
        *out_len = 0;
        break;
    case 1: /* cut inside the 10th record */
        *out_len = 0;
        for (int k = 0; k < 9; k++)
            *out_len = (size_t)(strchr(text + *out_len, '\n') - text) + 1;
        *out_len += 20;
        break;
    case 2: /* only the first 50 records */
        *out_len = 0;
        for (int k = 0; k < 50; k++)
            *out_len = (size_t)(strchr(text + *out_len, '\n') - text) + 1;
        break;
    case 3: /* a count that is not a number */
        memcpy(out + at + 5, " x7", 3);
        break;
    case 4: /* a count larger than the record: it swallows the following lines, then more */
        memcpy(out + at + 5, "999", 3);
        break;
    case 5: /* a count smaller than the record */
        memcpy(out + at + 5, "  3", 3);
        break;
    case 6: /* a control character as a coordinate */
        out[at + 12] = '\x07';
        break;
    case 7: /* a space that is not a pen-up */
        out[at + 10] = ' ';
        out[at + 11] = 'Q';
        break;
    case 8: /* left extent right of the right one */
        out[at + 8] = 'Z';
        out[at + 9] = 'J';
        break;
    case 9: /* binary */
        for (size_t i = 0; i < len; i++)
            out[i] = (char)(i * 37 % 256);
        break;
    }
    return out;
}

START_TEST(damaged_font_is_refused_with_its_path)
{
    char cp[512], fd[512], sub[32];
    write_text(cp, "corpus.txt", CORPUS);
    snprintf(sub, sizeof sub, "damage%d", _i);
    damage_kind = _i;
    font_copy(fd, sub, damage);
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX] = "";
    hyper_status st = strokes_synthesize(&s, 3, cp, fd, 1, err);
    ck_assert_msg(st == HYPER_ERR_FORMAT, "damage %d: %s (%s)", _i, hyper_status_str(st), err);
    ck_assert_msg(strstr(err, "scripts.jhf") != NULL, "damage %d: \"%s\" does not name the file", _i, err);
    ck_assert_int_eq(s.n, 0);
    strokes_free(&s);
}
END_TEST

/* Random damage: bytes overwritten, inserted or deleted at random places.  Each font is
 * written or refused as damaged; the sanitizer build checks nothing is read out of bounds. */
static uint64_t fuzz_state;

static uint64_t fuzz_next(void)
{
    fuzz_state = fuzz_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return fuzz_state >> 33;
}

/* Damages one of the three fonts (the round's) with 1..3 edits: mostly a coordinate
 * character swapped for another (a garbled but well-formed glyph, which must be written),
 * else a byte overwritten, inserted or deleted (which mostly breaks a record). */
static int fuzz_font;

static char *fuzz(const char *text, size_t len, size_t *out_len, int which)
{
    if (which != fuzz_font)
        return NULL;
    char *out = malloc(len + 16);
    memcpy(out, text, len);
    size_t n = len;
    const int edits = 1 + (int)(fuzz_next() % 3);
    static const char coords[] = "!+8AFKRW]bgo~";
    static const char bytes[] = " R\n\r09\t\x01\x7f\xff";
    for (int e = 0; e < edits && n > 1; e++) {
        const size_t at = fuzz_next() % n;
        const uint64_t kind = fuzz_next() % 10;
        if (kind < 6) { /* a coordinate for a coordinate: headers and pen-ups left alone */
            const char *nl = memrchr(out, '\n', at);
            const size_t line = nl ? (size_t)(nl - out) + 1 : 0;
            if (at - line >= 10 && out[at] > ' ' && out[at] != 'R')
                out[at] = coords[fuzz_next() % (sizeof coords - 1)];
        } else if (kind < 8) {
            out[at] = bytes[fuzz_next() % (sizeof bytes - 1)];
        } else if (kind < 9) {
            memmove(out + at + 1, out + at, n - at);
            out[at] = bytes[fuzz_next() % (sizeof bytes - 1)];
            n++;
        } else {
            memmove(out + at, out + at + 1, n - at - 1);
            n--;
        }
    }
    *out_len = n;
    return out;
}

START_TEST(randomly_damaged_fonts_never_crash)
{
    char cp[512], fd[512];
    write_text(cp, "corpus.txt", CORPUS);
    int refused = 0, written = 0;
    for (int round = 0; round < 150; round++) {
        fuzz_state = 1000 + (uint64_t)round;
        fuzz_font = round % 3;
        font_copy(fd, "fuzz", fuzz);
        stroke_set s;
        strokes_init(&s);
        char err[HYPER_ERRMSG_MAX] = "";
        hyper_status st = strokes_synthesize(&s, 2, cp, fd, (uint64_t)round, err);
        ck_assert_msg(st == HYPER_OK || st == HYPER_ERR_FORMAT, "round %d: %s (%s)", round, hyper_status_str(st), err);
        if (st == HYPER_OK) {
            written++;
            ck_assert_int_eq(s.n, 2);
            for (int32_t k = 0; k < s.n; k++)
                for (int32_t i = 0; i < 3 * s.lines[k].npoints; i++)
                    ck_assert(isfinite(s.lines[k].pts[i]));
        } else {
            refused++;
            ck_assert_msg(strstr(err, ".jhf") != NULL, "round %d: \"%s\" names no font file", round, err);
            ck_assert_int_eq(s.n, 0);
        }
        strokes_free(&s);
    }
    /* the damage is varied enough to exercise both outcomes */
    ck_assert_msg(refused > 10 && written > 10, "%d refused, %d written", refused, written);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------- */

/* strokes_synthesize must fail with want and a message holding needle, leaving s empty. */
static void expect_error(int32_t n, const char *corpus, const char *fonts, hyper_status want,
                         const char *needle)
{
    stroke_set s;
    strokes_init(&s);
    char err[HYPER_ERRMSG_MAX] = "";
    hyper_status st = strokes_synthesize(&s, n, corpus, fonts, 1, err);
    ck_assert_msg(st == want, "got %s (%s), want %s", hyper_status_str(st), err, hyper_status_str(want));
    ck_assert_msg(strstr(err, needle) != NULL, "\"%s\" does not mention \"%s\"", err, needle);
    ck_assert_int_eq(s.n, 0);
    strokes_free(&s);
}

START_TEST(errors_name_what_is_wrong)
{
    char cp[512], other[512], fd[512];
    write_text(cp, "corpus.txt", CORPUS);
    expect_error(0, cp, FONT_DIR, HYPER_ERR_ARG, "0 lines");
    expect_error(-3, cp, FONT_DIR, HYPER_ERR_ARG, "-3 lines");
    path_in(other, "no-such-fonts");
    expect_error(1, cp, other, HYPER_ERR_IO, other);
    expect_error(1, cp, path_in(fd, "corpus.txt"), HYPER_ERR_IO, "not a directory");
    /* a font directory without the script fonts */
    path_in(fd, "empty");
    mkdir(fd, 0700);
    expect_error(1, cp, fd, HYPER_ERR_IO, "cursive.jhf");
    path_in(other, "no-such-corpus.txt");
    expect_error(1, other, FONT_DIR, HYPER_ERR_IO, other);
    expect_error(1, write_text(other, "empty.txt", ""), FONT_DIR, HYPER_ERR_FORMAT, "empty");
    expect_error(1, write_text(other, "short.txt", "%\nhello\n\n  tiny   \n\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\n"),
                 FONT_DIR, HYPER_ERR_FORMAT, "short.txt");
}
END_TEST

START_TEST(synthesis_is_fast)
{
    char cp[512];
    write_text(cp, "corpus.txt", CORPUS);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    stroke_set s;
    synth_ok(&s, 300, cp, FONT_DIR, 2);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    /* 2000 lines must take well under 2 s, so 300 well under 0.3 s; the sanitizer build
     * runs several times slower */
#ifdef __SANITIZE_ADDRESS__
    const double allowed = 3.0;
#else
    const double allowed = 0.3;
#endif
    ck_assert_msg(sec < allowed, "300 lines took %.3f s", sec);
    strokes_free(&s);
}
END_TEST

Suite *hershey_suite(void);
Suite *hershey_suite(void)
{
    Suite *s = suite_create("hershey");
    TCase *tc = tcase_create("synthesis");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_checked_fixture(tc, dir_empty, NULL);
    tcase_add_test(tc, same_seed_same_writing);
    tcase_add_test(tc, other_seed_other_writing);
    tcase_add_test(tc, lines_keep_their_text_in_corpus_order);
    tcase_add_test(tc, points_are_sane);
    tcase_add_test(tc, density_is_like_a_tablet);
    tcase_add_test(tc, text_is_printable_ascii_and_missing_glyphs_are_skipped);
    tcase_add_test(tc, writers_differ_and_keep_their_hand);
    tcase_add_test(tc, cursive_words_are_joined);
    tcase_add_test(tc, synthesis_is_fast);
    suite_add_tcase(s, tc);

    tc = tcase_create("fonts and errors");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_checked_fixture(tc, dir_empty, NULL);
    tcase_add_test(tc, fonts_wrapped_or_crlf_write_the_same);
    tcase_add_loop_test(tc, damaged_font_is_refused_with_its_path, 0, 10);
    tcase_add_test(tc, randomly_damaged_fonts_never_crash);
    tcase_add_test(tc, errors_name_what_is_wrong);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
