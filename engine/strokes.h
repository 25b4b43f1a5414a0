/*
 * strokes.h — handwriting as data: lines of pen strokes, their sources (IAM-OnDB XML, JSON,
 * synthetic Hershey-font writing), and the preprocessing of Graves (2013) §4.
 *
 * A line is stored as pen offsets, one row per point:
 *   (dx, dy, eos)   dx, dy the move from the previous point (the first point of a line is
 *                   (0, 0)), eos = 1 on the last point of each stroke (the pen lifts after it)
 * in the source's own units, y growing downwards as on a screen and in IAM-OnDB.
 * A stroke_set owns its lines.  Everything that reads outside data checks it and fails
 * with HYPER_ERR_FORMAT naming the file (and line or element) and what is wrong; nothing
 * here exits or aborts.
 */
#ifndef HYPER_STROKES_H
#define HYPER_STROKES_H

#include "common.h"

/* Limits, checked before anything is allocated. */
#define STROKES_MAX_COORD 1e6        /* |x|, |y| of an absolute point */
#define STROKES_MAX_POINTS 100000    /* points in one line */
#define STROKES_MAX_LINES 1000000    /* lines in one set */
#define STROKES_MAX_TEXT 4096        /* bytes of one line's transcript */

typedef struct {
    char *text;          /* transcript (UTF-8, owned) or NULL */
    int32_t npoints;
    float *pts;          /* (npoints, 3) dx, dy, eos; owned */
} stroke_line;

typedef struct {
    stroke_line *lines;  /* (n) owned */
    int32_t n, cap;
} stroke_set;

void strokes_init(stroke_set *s);
void strokes_free(stroke_set *s);

/* Appends one line given as absolute points: xy (npoints, 2) grouped into nstrokes strokes
 * of stroke_len[k] points each (every stroke at least one point).  text may be NULL; it is
 * copied.  Non-finite or absurd coordinates (|v| > STROKES_MAX_COORD), an empty line or
 * stroke, or too many points → HYPER_ERR_FORMAT with err saying which (the caller prefixes
 * its file name). */
hyper_status strokes_add_line(stroke_set *s, const char *text, const double *xy,
                              const int32_t *stroke_len, int32_t nstrokes, char *err);

/* The inverse, for one line of offsets pts (n, 3): absolute points xy (n, 2) starting at
 * (x0, y0), and the stroke lengths (at most n; *nstrokes receives the count).  A final
 * stroke without eos still counts. */
void strokes_to_absolute(const float *pts, int32_t n, double x0, double y0, double *xy,
                         int32_t *stroke_len, int32_t *nstrokes);

/* ---- sources -------------------------------------------------------------------------- */

/* IAM-OnDB lineStrokes XML: a file, or a directory searched recursively for *.xml.
 * Root WhiteboardCaptureSession, StrokeSet → Stroke → Point (x, y, time attributes).  The
 * transcript is the first found of: the file's TextLine text attributes; a sibling
 * <stem>.txt; line N (from the -NN suffix) after "CSR:" in
 * ../../../ascii/<d1>/<d2>/<form>.txt (the IAM-OnDB layout).  On error the set is left as
 * it was before the call. */
hyper_status strokes_load_iam(stroke_set *s, const char *path, char *err);
/* One lineStrokes document held in memory (name used in messages). */
hyper_status strokes_parse_iam(stroke_set *s, const char *xml, size_t len, const char *name,
                               char *err);

/* JSON: [{"text": "optional", "strokes": [[[x, y], ...], ...]}, ...]. */
hyper_status strokes_load_json(stroke_set *s, const char *path, char *err);
hyper_status strokes_parse_json(stroke_set *s, const char *json, size_t len, const char *name,
                                char *err);
/* Messages name item / stroke / point by 0-based index; "text" may be missing, null or "";
 * unknown keys are refused; on error the set is unchanged. */

/* ---- reading a document in pieces ---- */

/* A document handed over in pieces of any size (an upload as it arrives, a file read in
 * chunks), so that memory is bounded by its largest line and not by its size.  JSON is cut
 * into its items, each parsed and checked alone, with the same rules and messages as
 * strokes_parse_json; an item's text is at most STROKES_JSON_ITEM_MAX bytes (a line of
 * STROKES_MAX_POINTS points written with indentation takes some 5 MB).  IAM XML goes
 * through expat as strokes_parse_iam does (one line per document).  Lines go into s; with
 * s NULL they are checked and counted only, and nothing of them is kept.  s must not be
 * changed by anyone else while the reader lives.  The first fault is returned by the call
 * that meets it and by every later one; a reader freed before a successful finish takes
 * its lines out of s again, so that a refused document leaves the set as it was. */
#define STROKES_JSON_ITEM_MAX ((size_t)16 << 20)
#define STROKES_READ_CHUNK ((size_t)1 << 20)   /* bytes read at a time by strokes_read_file */
typedef enum { STROKES_FORMAT_JSON, STROKES_FORMAT_IAM } strokes_format;
typedef struct strokes_reader strokes_reader;
/* name (NULL: "JSON" or "XML") starts every message; it is copied. */
hyper_status strokes_reader_new(strokes_reader **out, stroke_set *s, strokes_format fmt, const char *name,
                                char *err);
hyper_status strokes_reader_feed(strokes_reader *r, const void *buf, size_t len, char *err);
/* The whole file at path, in STROKES_READ_CHUNK pieces. */
hyper_status strokes_read_file(strokes_reader *r, const char *path, char *err);
/* The document is complete: checks that it ends where it may; *lines (may be NULL)
 * receives the number of lines it held. */
hyper_status strokes_reader_finish(strokes_reader *r, int64_t *lines, char *err);
void strokes_reader_free(strokes_reader *r);

/* Synthetic handwriting: nlines lines of text taken from the UTF-8 corpus at corpus_path,
 * written with the Hershey script fonts found in font_dir (Debian's hershey-fonts-data:
 * /usr/share/hershey-fonts) by simulated writers, each with its own slant, size, letter
 * spacing, baseline drift and smooth pen jitter, letters joined where cursive joins them.
 * Deterministic for a seed.  Characters the fonts lack are skipped. */
hyper_status strokes_synthesize(stroke_set *s, int32_t nlines, const char *corpus_path,
                                const char *font_dir, uint64_t seed, char *err);

/* Any of the above by a spec string: "synthetic:N[:SEED]" (Hershey fonts at their Debian
 * path, text from data/fortunes.txt when it exists, else Debian's fortunes file; seed 1 by
 * default), a directory or *.xml (IAM), or *.json.
 * Synthetic lines are printable ASCII of 10-60 characters (longer corpus lines split at
 * spaces), letters about 22 units high, some 14 points per character. */
hyper_status strokes_load(stroke_set *s, const char *spec, char *err);

/* ---- preprocessing ------------------------------------------------------------------- */

/* Normalisation statistics of a set's offsets: model inputs are (dx - mean_x) / std_x etc.
 * Stored in the model's checkpoint so sampling can undo them. */
typedef struct {
    double mean_x, mean_y, std_x, std_y;
} stroke_stats;

/* Drops the lines that hold an outlier: an offset farther than limit × the set's standard
 * deviation from its mean, in dx or dy (a glitch of the tablet, not writing).  Returns how
 * many lines were dropped. */
int32_t strokes_drop_outliers(stroke_set *s, double limit);
/* Mean and standard deviation of dx and dy over every point (std floored at 1e-6). */
stroke_stats strokes_stats(const stroke_set *s);

/* ---- drawing -------------------------------------------------------------------------- */

/* An SVG document of absolute points xy (n, 2) in nstrokes strokes: one path per stroke,
 * the viewBox fitted to the ink with a margin, black round-capped lines of the given width
 * (in ink units; 0 picks one from the ink's size).  Newly allocated, NUL-terminated; NULL
 * when out of memory. */
char *strokes_svg(const double *xy, const int32_t *stroke_len, int32_t nstrokes,
                  double line_width);
/* The same with a colour ("#rrggbb") per point, colour (n): each point is drawn as a
 * segment from the point before it in its stroke (a stroke's first as a dot), in its own
 * colour; colour NULL draws as strokes_svg does. */
char *strokes_svg_coloured(const double *xy, const int32_t *stroke_len, int32_t nstrokes,
                           double line_width, const char (*colour)[8]);

#endif
