/*
 * strokes_io.c — the readers of strokes.h for outside data: IAM-OnDB lineStrokes XML
 * (expat, streamed in chunks) with each line's transcript, and the JSON stroke format
 * (jansson), which is also what the HTTP API parses for uploaded and priming strokes.
 *
 * IAM-OnDB lineStrokes, one file per line of handwriting:
 *   <WhiteboardCaptureSession>
 *     <WhiteboardDescription> ... </WhiteboardDescription>       (ignored)
 *     <StrokeSet>
 *       <Stroke ...> <Point x="1073" y="1058" time="769.05"/> ... </Stroke> ...
 *     </StrokeSet>
 *   </WhiteboardCaptureSession>
 * Elements other than StrokeSet, Stroke, Point and TextLine are ignored wherever they are;
 * a Point must be a child of a Stroke, a Stroke a child of a StrokeSet.  Entity
 * declarations are refused (no lineStrokes file has them, and they are how XML documents
 * blow up in memory).
 *
 * A line's transcript — the first of these sources that yields text wins; a source that
 * is absent or empty passes to the next one, and when none has text the line has none:
 *   1. the text attributes of the document's TextLine elements (several are joined by a
 *      space), as in IAM-OnDB versions with <Transcription><TextLine text="..."/>;
 *   2. a file beside the XML with the same stem and the extension .txt;
 *   3. the dataset's own layout: for R/lineStrokes/a01/a01-000/a01-000u-01.xml, the 1st
 *      (the number after the last '-') non-blank line after the "CSR:" marker line of
 *      R/ascii/a01/a01-000/a01-000u.txt.  R and the directory names are taken from the
 *      path as given, then from its real path (so a relative path works from anywhere).
 * A transcript file that exists but cannot be read is an error.  Transcripts keep their
 * text with the surrounding white space cut and each line break made one space; a text
 * file that is not valid UTF-8 is read as Latin-1.
 *
 * Every error message starts with the file (or the name given for in-memory data) and,
 * in XML, its line: "a01-000u-01.xml:12: <Point> has no y attribute".  JSON messages
 * count items, strokes and points from 0, like JSON array indices.  A call that fails
 * leaves the set exactly as it found it: the lines it had added are removed again.
 */
#include "strokes.h"

#include "fsutil.h"
#include "jsonutil.h"
#include "vocab.h" /* utf8_decode */

#include <dirent.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Limits on outside data, checked before anything is allocated for it. */
#define IAM_MAX_FILE_BYTES ((size_t)64 << 20) /* one XML document (real ones are < 200 KB) */
#define IAM_READ_CHUNK ((size_t)64 << 10)     /* bytes handed to XML_Parse at a time */
#define IAM_MAX_DEPTH 32                      /* directory levels searched below the given one */
#define IAM_MAX_PATH 4096                     /* bytes of a path built while searching */
#define TEXT_FILE_MAX ((size_t)1 << 20)       /* a .txt transcript or an ascii/ file */
#define JSON_MAX_BYTES ((size_t)256 << 20)    /* one JSON document (a file or a request) */
#define VALUE_SHOWN 40                        /* bytes of a bad value quoted in a message */

#define IAM_ROOT "WhiteboardCaptureSession"
#define CSR_MARKER "CSR:"

/* ---- shared helpers ------------------------------------------------------------------ */

/* Removes the lines a failing call added, so the set is as the call found it. */
static void rollback(stroke_set *s, int32_t n0)
{
    for (int32_t k = n0; k < s->n; k++) {
        free(s->lines[k].text);
        free(s->lines[k].pts);
    }
    s->n = n0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int valid_utf8(const char *s, size_t len)
{
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        int k = utf8_decode(s + i, len - i, &cp);
        if (k == 0)
            return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Appends the line xy / stroke_len to s, the message of a refusal prefixed with name. */
static hyper_status add_line_named(stroke_set *s, const char *name, const char *text,
                                   const double *xy, const int32_t *stroke_len,
                                   int32_t nstrokes, char *err)
{
    char msg[HYPER_ERRMSG_MAX];
    hyper_status st = strokes_add_line(s, text, xy, stroke_len, nstrokes, msg);
    if (st != HYPER_OK)
        return hyper_fail(err, st, "%s: %s", name, msg);
    return HYPER_OK;
}

/* Makes a transcript of len bytes of raw text: surrounding white space cut, every line
 * break (with the blanks around it) made one space, Latin-1 turned into UTF-8 when the
 * bytes are not valid UTF-8.  *out: newly allocated, or NULL when no text is left.  A NUL
 * byte or a result longer than STROKES_MAX_TEXT → HYPER_ERR_FORMAT naming `name`. */
static hyper_status make_transcript(const char *src, size_t len, const char *name,
                                    char **out, char *err)
{
    *out = NULL;
    if (memchr(src, '\0', len))
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: the transcript holds a NUL byte (not a text file?)", name);
    const int utf8 = valid_utf8(src, len);
    char *t = malloc(2 * len + 1); /* Latin-1 at most doubles */
    if (!t)
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", name);
    size_t n = 0;
    int line_break = 0;
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)src[i];
        if (c == '\n' || c == '\r') {
            while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
                n--;
            line_break = 1;
            continue;
        }
        if (line_break && (c == ' ' || c == '\t'))
            continue;
        if (line_break && n > 0)
            t[n++] = ' ';
        line_break = 0;
        if (!utf8 && c >= 0x80) {
            t[n++] = (char)(0xC0 | (c >> 6));
            t[n++] = (char)(0x80 | (c & 0x3F));
        } else {
            t[n++] = (char)c;
        }
    }
    while (n > 0 && is_space(t[n - 1]))
        n--;
    size_t lead = 0;
    while (lead < n && is_space(t[lead]))
        lead++;
    n -= lead;
    memmove(t, t + lead, n);
    t[n] = '\0';
    if (n == 0) {
        free(t);
        return HYPER_OK;
    }
    if (n > STROKES_MAX_TEXT) {
        free(t);
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: the transcript is longer than %d bytes",
                          name, STROKES_MAX_TEXT);
    }
    *out = t;
    return HYPER_OK;
}


/* ---- IAM-OnDB XML -------------------------------------------------------------------- */

/* The state of one lineStrokes document while expat walks it. */
typedef struct {
    XML_Parser parser;
    const char *name;           /* the file or given name, for messages; borrowed */
    char *err;
    hyper_status st;            /* HYPER_OK until a handler finds a fault */
    int32_t depth;              /* elements open */
    int32_t set_depth;          /* depth of the open StrokeSet, -1 when none */
    int32_t stroke_depth;       /* depth of the open Stroke, -1 when none */
    unsigned long long stroke_line; /* XML line where the open Stroke starts */
    int32_t stroke_start;       /* npoints when the open Stroke started */
    double *xy;                 /* (cap_points, 2) absolute points */
    int32_t npoints, cap_points;
    int32_t *stroke_len;        /* (cap_strokes) */
    int32_t nstrokes, cap_strokes;
    char *text;                 /* TextLine texts joined by spaces (text_len bytes), or NULL */
    size_t text_len;
} iam_doc;

/* Records the document's first fault, at XML line `line`, and stops the parser. */
static void iam_fail(iam_doc *d, unsigned long long line, hyper_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void iam_fail(iam_doc *d, unsigned long long line, hyper_status st, const char *fmt, ...)
{
    if (d->st != HYPER_OK)
        return;
    char msg[HYPER_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->st = hyper_fail(d->err, st, "%s:%llu: %s", d->name, line, msg);
    XML_StopParser(d->parser, XML_FALSE);
}

static unsigned long long iam_line(const iam_doc *d)
{
    return (unsigned long long)XML_GetCurrentLineNumber(d->parser);
}

static const char *attr_get(const XML_Char **atts, const char *key)
{
    for (int i = 0; atts[i]; i += 2)
        if (strcmp(atts[i], key) == 0)
            return atts[i + 1];
    return NULL;
}

/* Parses attribute `key` (value v) of a Point as a coordinate; 0 after reporting a fault. */
static int iam_coord(iam_doc *d, const char *key, const char *v, double *out)
{
    char *end;
    const double x = strtod(v, &end);
    const char *num_end = end;
    while (is_space(*end))
        end++;
    if (num_end == v || *end) {
        iam_fail(d, iam_line(d), HYPER_ERR_FORMAT, "<Point> %s=\"%.*s\" is not a number", key,
                 VALUE_SHOWN, v);
        return 0;
    }
    if (!isfinite(x)) {
        iam_fail(d, iam_line(d), HYPER_ERR_FORMAT, "<Point> %s=\"%.*s\" is not a finite number",
                 key, VALUE_SHOWN, v);
        return 0;
    }
    if (fabs(x) > STROKES_MAX_COORD) {
        iam_fail(d, iam_line(d), HYPER_ERR_FORMAT,
                 "<Point> %s=\"%.*s\" is absurd: |%s| must be at most %g", key, VALUE_SHOWN, v,
                 key, STROKES_MAX_COORD);
        return 0;
    }
    *out = x;
    return 1;
}

static void iam_point(iam_doc *d, const XML_Char **atts)
{
    const char *vx = attr_get(atts, "x"), *vy = attr_get(atts, "y");
    if (!vx || !vy) {
        iam_fail(d, iam_line(d), HYPER_ERR_FORMAT, "<Point> has no %s attribute", vx ? "y" : "x");
        return;
    }
    double x, y;
    if (!iam_coord(d, "x", vx, &x) || !iam_coord(d, "y", vy, &y))
        return;
    if (d->npoints == STROKES_MAX_POINTS) {
        iam_fail(d, iam_line(d), HYPER_ERR_FORMAT, "more than %d points in one line",
                 STROKES_MAX_POINTS);
        return;
    }
    if (d->npoints == d->cap_points) {
        int32_t cap = d->cap_points ? 2 * d->cap_points : 1024;
        if (cap > STROKES_MAX_POINTS)
            cap = STROKES_MAX_POINTS;
        double *nxy = realloc(d->xy, (size_t)cap * 2 * sizeof *nxy);
        if (!nxy) {
            iam_fail(d, iam_line(d), HYPER_ERR_NOMEM, "out of memory");
            return;
        }
        d->xy = nxy;
        d->cap_points = cap;
    }
    d->xy[2 * d->npoints] = x;
    d->xy[2 * d->npoints + 1] = y;
    d->npoints++;
}

/* Appends a TextLine's text attribute to the document's transcript. */
static void iam_text_line(iam_doc *d, const XML_Char **atts)
{
    const char *v = attr_get(atts, "text");
    if (!v || !*v)
        return;
    const size_t n = strlen(v), sep = d->text_len ? 1 : 0;
    if (d->text_len + sep + n > STROKES_MAX_TEXT) {
        iam_fail(d, iam_line(d), HYPER_ERR_FORMAT,
                 "the transcript (<TextLine> text) is longer than %d bytes", STROKES_MAX_TEXT);
        return;
    }
    char *t = realloc(d->text, d->text_len + sep + n + 1);
    if (!t) {
        iam_fail(d, iam_line(d), HYPER_ERR_NOMEM, "out of memory");
        return;
    }
    if (sep)
        t[d->text_len] = ' ';
    memcpy(t + d->text_len + sep, v, n + 1);
    d->text = t;
    d->text_len += sep + n;
}

static void XMLCALL iam_start(void *ud, const XML_Char *el, const XML_Char **atts)
{
    iam_doc *d = ud;
    if (d->st != HYPER_OK)
        return;
    const int32_t depth = d->depth++;
    if (depth == 0) {
        if (strcmp(el, IAM_ROOT) != 0)
            iam_fail(d, iam_line(d), HYPER_ERR_FORMAT,
                     "the root element is <%.*s>, not <" IAM_ROOT ">"
                     " (not an IAM-OnDB lineStrokes file)", VALUE_SHOWN, el);
        return;
    }
    if (strcmp(el, "StrokeSet") == 0) {
        if (d->set_depth >= 0)
            iam_fail(d, iam_line(d), HYPER_ERR_FORMAT, "<StrokeSet> inside another <StrokeSet>");
        d->set_depth = depth;
    } else if (strcmp(el, "Stroke") == 0) {
        if (d->stroke_depth >= 0)
            iam_fail(d, iam_line(d), HYPER_ERR_FORMAT, "<Stroke> inside another <Stroke>");
        else if (d->set_depth < 0 || depth != d->set_depth + 1)
            iam_fail(d, iam_line(d), HYPER_ERR_FORMAT, "<Stroke> outside a <StrokeSet>");
        d->stroke_depth = depth;
        d->stroke_line = iam_line(d);
        d->stroke_start = d->npoints;
    } else if (strcmp(el, "Point") == 0) {
        if (d->stroke_depth < 0 || depth != d->stroke_depth + 1)
            iam_fail(d, iam_line(d), HYPER_ERR_FORMAT, "<Point> outside a <Stroke>");
        else
            iam_point(d, atts);
    } else if (strcmp(el, "TextLine") == 0) {
        iam_text_line(d, atts);
    }
}

static void XMLCALL iam_end(void *ud, const XML_Char *el)
{
    (void)el;
    iam_doc *d = ud;
    if (d->st != HYPER_OK)
        return;
    const int32_t depth = --d->depth;
    if (depth == d->stroke_depth) {
        d->stroke_depth = -1;
        const int32_t n = d->npoints - d->stroke_start;
        if (n == 0) {
            iam_fail(d, d->stroke_line, HYPER_ERR_FORMAT, "a <Stroke> with no points");
            return;
        }
        if (d->nstrokes == d->cap_strokes) {
            /* every stroke has a point, so npoints bounds the count */
            int32_t cap = d->cap_strokes ? 2 * d->cap_strokes : 64;
            int32_t *nl = realloc(d->stroke_len, (size_t)cap * sizeof *nl);
            if (!nl) {
                iam_fail(d, iam_line(d), HYPER_ERR_NOMEM, "out of memory");
                return;
            }
            d->stroke_len = nl;
            d->cap_strokes = cap;
        }
        d->stroke_len[d->nstrokes++] = n;
    } else if (depth == d->set_depth) {
        d->set_depth = -1;
    }
}

/* lineStrokes files never declare entities; a document that does is refused rather than
 * expanded. */
static void XMLCALL iam_entity_decl(void *ud, const XML_Char *entity, int is_parameter,
                                    const XML_Char *value, int value_length,
                                    const XML_Char *base, const XML_Char *system_id,
                                    const XML_Char *public_id, const XML_Char *notation)
{
    (void)is_parameter, (void)value, (void)value_length, (void)base, (void)system_id;
    (void)public_id, (void)notation;
    iam_fail(ud, iam_line(ud), HYPER_ERR_FORMAT,
             "entity declaration (%.*s) refused: lineStrokes files have none", VALUE_SHOWN, entity);
}

/* Starts a document named `name` (borrowed until iam_doc_free). */
static hyper_status iam_doc_init(iam_doc *d, const char *name, char *err)
{
    memset(d, 0, sizeof *d);
    d->name = name;
    d->err = err;
    d->set_depth = d->stroke_depth = -1;
    if (!(d->parser = XML_ParserCreate(NULL)))
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", name);
    XML_SetUserData(d->parser, d);
    XML_SetElementHandler(d->parser, iam_start, iam_end);
    XML_SetEntityDeclHandler(d->parser, iam_entity_decl);
    return HYPER_OK;
}

static void iam_doc_free(iam_doc *d)
{
    if (d->parser)
        XML_ParserFree(d->parser);
    free(d->xy);
    free(d->stroke_len);
    free(d->text);
    memset(d, 0, sizeof *d);
}

/* Hands len (≤ IAM_READ_CHUNK) more bytes to the parser; final marks the document's end. */
static hyper_status iam_feed(iam_doc *d, const char *buf, size_t len, int final)
{
    if (XML_Parse(d->parser, buf, (int)len, final) == XML_STATUS_OK)
        return HYPER_OK;
    if (d->st != HYPER_OK) /* a handler's fault, already reported */
        return d->st;
    return hyper_fail(d->err, HYPER_ERR_FORMAT, "%s:%llu:%llu: malformed XML: %s", d->name,
                      (unsigned long long)XML_GetCurrentLineNumber(d->parser),
                      (unsigned long long)XML_GetCurrentColumnNumber(d->parser) + 1,
                      XML_ErrorString(XML_GetErrorCode(d->parser)));
}

/* Appends the parsed document as a line with the given transcript (may be NULL). */
static hyper_status iam_commit(stroke_set *s, const iam_doc *d, const char *text, char *err)
{
    if (d->nstrokes == 0)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: no strokes: the file has no <Stroke> with <Point>s inside a <StrokeSet>",
                          d->name);
    return add_line_named(s, d->name, text, d->xy, d->stroke_len, d->nstrokes, err);
}

/* ---- transcripts beside the XML ---- */

/* Source 2: path with its extension replaced by .txt (appended when it has none). */
static hyper_status sibling_transcript(const char *path, char **text, char *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - path) : strlen(path);
    if (has_suffix(path, ".txt") || stem + 5 > IAM_MAX_PATH)
        return HYPER_OK;
    char txt[IAM_MAX_PATH];
    memcpy(txt, path, stem);
    memcpy(txt + stem, ".txt", 5);
    char *buf;
    size_t len;
    hyper_status st = fs_read_file(txt, TEXT_FILE_MAX, 1, &buf, &len, err);
    if (st == HYPER_OK && buf)
        st = make_transcript(buf, len, txt, text, err);
    free(buf);
    return st;
}

static int is_dot_name(const char *c, size_t n)
{
    return (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.');
}

/* For a directory R/X/d1/d2 (X is lineStrokes in the dataset) writes R/ascii/d1/d2/<form>.txt
 * into out (IAM_MAX_PATH bytes).  0 when dir does not end in three plain components. */
static int ascii_candidate(const char *dir, const char *form, size_t form_len, char *out)
{
    const char *comp[3];
    size_t comp_len[3], end = strlen(dir), root_len = 0;
    for (int k = 0; k < 3; k++) {
        while (end > 0 && dir[end - 1] == '/')
            end--;
        size_t b = end;
        while (b > 0 && dir[b - 1] != '/')
            b--;
        comp[k] = dir + b;
        comp_len[k] = end - b;
        if (comp_len[k] == 0 || is_dot_name(comp[k], comp_len[k]))
            return 0;
        root_len = b;
        end = b;
    }
    int n = snprintf(out, IAM_MAX_PATH, "%.*sascii/%.*s/%.*s/%.*s.txt", (int)root_len, dir,
                     (int)comp_len[1], comp[1], (int)comp_len[0], comp[0], (int)form_len, form);
    return n > 0 && n < IAM_MAX_PATH;
}

/* The n-th (1-based) non-blank line after the "CSR:" line of an ascii/ file, as
 * [*line, *line + *len); 0 when there is none. */
static int csr_line(const char *buf, size_t len, long n, const char **line, size_t *line_len)
{
    int after_marker = 0;
    long count = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - buf) : len, b = i;
        i = nl ? e + 1 : len;
        while (b < e && is_space(buf[b]))
            b++;
        while (e > b && is_space(buf[e - 1]))
            e--;
        if (!after_marker) {
            after_marker = e - b == strlen(CSR_MARKER) && memcmp(buf + b, CSR_MARKER, e - b) == 0;
        } else if (e > b && ++count == n) {
            *line = buf + b;
            *line_len = e - b;
            return 1;
        }
    }
    return 0;
}

/* Source 3: the IAM-OnDB layout, lineStrokes/a01/a01-000/a01-000u-01.xml ↔ line 1 of the
 * CSR section of ascii/a01/a01-000/a01-000u.txt. */
static hyper_status ascii_transcript(const char *path, char **text, char *err)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    const size_t stem_len = dot ? (size_t)(dot - base) : strlen(base);
    const char *dash = memrchr(base, '-', stem_len);
    if (!dash || dash == base)
        return HYPER_OK;
    const char *digits = dash + 1;
    const size_t ndigits = stem_len - (size_t)(digits - base);
    if (ndigits == 0 || ndigits > 6)
        return HYPER_OK;
    long lineno = 0;
    for (size_t i = 0; i < ndigits; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return HYPER_OK;
        lineno = lineno * 10 + (digits[i] - '0');
    }
    if (lineno < 1)
        return HYPER_OK;
    const size_t form_len = (size_t)(dash - base);

    char dir[IAM_MAX_PATH], ascii[IAM_MAX_PATH], tried[IAM_MAX_PATH] = "";
    const size_t dir_len = slash ? (size_t)(slash - path) : 0;
    if (dir_len + 2 > sizeof dir)
        return HYPER_OK;
    memcpy(dir, path, dir_len);
    strcpy(dir + dir_len, !slash ? "." : dir_len == 0 ? "/" : "");
    char *buf = NULL;
    size_t len = 0;
    hyper_status st = HYPER_OK;
    /* the path as given first, then its real path (relative paths, symbolic links) */
    if (ascii_candidate(dir, base, form_len, ascii)) {
        st = fs_read_file(ascii, TEXT_FILE_MAX, 1, &buf, &len, err);
        strcpy(tried, ascii);
    }
    if (st == HYPER_OK && !buf) {
        char *real = realpath(dir, NULL);
        if (real && ascii_candidate(real, base, form_len, ascii) && strcmp(ascii, tried) != 0)
            st = fs_read_file(ascii, TEXT_FILE_MAX, 1, &buf, &len, err);
        free(real);
    }
    const char *line;
    size_t line_len;
    if (st == HYPER_OK && buf && csr_line(buf, len, lineno, &line, &line_len))
        st = make_transcript(line, line_len, ascii, text, err);
    free(buf);
    return st;
}

/* The transcript of the file at path whose document d has been parsed: its TextLines,
 * the sibling .txt, the ascii/ file, in that order (see the top of the file). */
static hyper_status iam_transcript(const char *path, const iam_doc *d, char **text, char *err)
{
    *text = NULL;
    hyper_status st = HYPER_OK;
    if (d->text)
        st = make_transcript(d->text, d->text_len, path, text, err);
    if (st == HYPER_OK && !*text)
        st = sibling_transcript(path, text, err);
    if (st == HYPER_OK && !*text)
        st = ascii_transcript(path, text, err);
    return st;
}

/* ---- files and directories ---- */

/* Streams one file through expat in chunks and appends its line.  chunk: IAM_READ_CHUNK
 * bytes of scratch. */
static hyper_status iam_load_file(stroke_set *s, const char *path, char *chunk, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    iam_doc d;
    char *text = NULL;
    hyper_status st = iam_doc_init(&d, path, err);
    struct stat sb;
    if (st == HYPER_OK && fstat(fd, &sb) != 0)
        st = hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    if (st == HYPER_OK && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > IAM_MAX_FILE_BYTES)
        st = hyper_fail(err, HYPER_ERR_FORMAT,
                        "%s: larger than %zu bytes; a lineStrokes file holds one line", path,
                        IAM_MAX_FILE_BYTES);
    size_t total = 0;
    while (st == HYPER_OK) {
        ssize_t got = read(fd, chunk, IAM_READ_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            st = hyper_fail(err, HYPER_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        total += (size_t)got;
        if (total > IAM_MAX_FILE_BYTES) {
            st = hyper_fail(err, HYPER_ERR_FORMAT,
                            "%s: larger than %zu bytes; a lineStrokes file holds one line", path,
                            IAM_MAX_FILE_BYTES);
            break;
        }
        st = iam_feed(&d, chunk, (size_t)got, got == 0);
        if (got == 0)
            break;
    }
    close(fd);
    if (st == HYPER_OK && d.nstrokes > 0) /* no transcript is looked up for a refused file */
        st = iam_transcript(path, &d, &text, err);
    if (st == HYPER_OK)
        st = iam_commit(s, &d, text, err);
    free(text);
    iam_doc_free(&d);
    return st;
}

static int visible_entry(const struct dirent *e) { return e->d_name[0] != '.'; }

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Loads the *.xml files under dir, depth levels below the directory the user gave, in
 * byte order of their names (subdirectories where their names sort), skipping names that
 * start with '.'.  *nfiles counts the XML files met. */
static hyper_status iam_walk(stroke_set *s, const char *dir, int depth, char *chunk,
                             int64_t *nfiles, char *err)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, visible_entry, by_name);
    if (n < 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: cannot read the directory: %s", dir, strerror(errno));
    const char *sep = has_suffix(dir, "/") ? "" : "/";
    hyper_status st = HYPER_OK;
    for (int i = 0; i < n && st == HYPER_OK; i++) {
        char path[IAM_MAX_PATH];
        int len = snprintf(path, sizeof path, "%s%s%s", dir, sep, ents[i]->d_name);
        if (len < 0 || (size_t)len >= sizeof path) {
            st = hyper_fail(err, HYPER_ERR_IO, "%s: a path below it is longer than %d bytes", dir,
                            IAM_MAX_PATH - 1);
            break;
        }
        struct stat sb;
        if (stat(path, &sb) != 0) {
            st = hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            if (depth + 1 > IAM_MAX_DEPTH)
                st = hyper_fail(err, HYPER_ERR_FORMAT,
                                "%s: more than %d directory levels deep (a symbolic link loop?)",
                                path, IAM_MAX_DEPTH);
            else
                st = iam_walk(s, path, depth + 1, chunk, nfiles, err);
        } else if (S_ISREG(sb.st_mode) && has_suffix(ents[i]->d_name, ".xml")) {
            (*nfiles)++;
            st = iam_load_file(s, path, chunk, err);
        }
    }
    for (int i = 0; i < n; i++)
        free(ents[i]);
    free(ents);
    return st;
}

/* A file, or every *.xml below a directory (symbolic links followed, IAM_MAX_DEPTH levels
 * at most, names starting with '.' skipped), one line per file in byte order of the
 * paths.  Unreadable paths → HYPER_ERR_IO, bad content → HYPER_ERR_FORMAT; either way the
 * lines this call added are removed again. */
hyper_status strokes_load_iam(stroke_set *s, const char *path, char *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    char *chunk = malloc(IAM_READ_CHUNK);
    if (!chunk)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    const int32_t n0 = s->n;
    hyper_status st;
    if (S_ISDIR(sb.st_mode)) {
        int64_t nfiles = 0;
        st = iam_walk(s, path, 0, chunk, &nfiles, err);
        if (st == HYPER_OK && nfiles == 0)
            st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: no .xml files in this directory or below it",
                            path);
    } else {
        st = iam_load_file(s, path, chunk, err);
    }
    if (st != HYPER_OK)
        rollback(s, n0);
    free(chunk);
    return st;
}

/* One document of len bytes (borrowed; no NUL needed); its transcript can only come from
 * its TextLine elements.  name (NULL: "XML") starts every message.  On error the set is
 * unchanged. */
static hyper_status parse_whole(stroke_set *s, strokes_format fmt, const char *doc, size_t len, const char *name,
                                char *err);
hyper_status strokes_parse_iam(stroke_set *s, const char *xml, size_t len, const char *name, char *err)
{
    return parse_whole(s, STROKES_FORMAT_IAM, xml, len, name, err);
}

/* ---- JSON ---------------------------------------------------------------------------- */


/* Reads point p of a stroke into xy[0..1]; on a fault writes its reason (after "is not
 * [x, y]" or after "point k: ") into why and returns 0. */
static int json_point(const json_t *p, double *xy, char *why, size_t why_size)
{
    if (!json_is_array(p)) {
        snprintf(why, why_size, " is not [x, y]: it is %s", json_kind(p));
        return 0;
    }
    if (json_array_size(p) != 2) {
        snprintf(why, why_size, " is not [x, y]: its length is %zu, not 2", json_array_size(p));
        return 0;
    }
    for (size_t c = 0; c < 2; c++) {
        const json_t *v = json_array_get(p, c);
        if (!json_is_number(v)) {
            snprintf(why, why_size, " is not [x, y]: its %s is %s, not a number", c ? "y" : "x",
                     json_kind(v));
            return 0;
        }
        const double x = json_number_value(v);
        if (!isfinite(x) || fabs(x) > STROKES_MAX_COORD) {
            snprintf(why, why_size, ": %s = %.10g is absurd: |x|, |y| must be at most %g",
                     c ? "y" : "x", x, STROKES_MAX_COORD);
            return 0;
        }
        xy[c] = x;
    }
    return 1;
}

/* Scratch buffers of the JSON item reader, grown to the largest line so far. */
typedef struct {
    double *xy;
    int32_t *lens;
    size_t cap_points, cap_strokes;
} json_scratch;

/* Appends item i (parsed) of a JSON stroke document as a line of s. */
static hyper_status json_add_item(stroke_set *s, const json_t *item, size_t i, const char *name,
                                  json_scratch *sc, char *err)
{
    if (!json_is_object(item))
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: item %zu is %s, not an object {\"text\": ..., \"strokes\": [...]}", name, i,
                          json_kind(item));
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)item, key, value) {
        if (strcmp(key, "text") != 0 && strcmp(key, "strokes") != 0)
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: item %zu: unknown key \"%.*s\""
                              " (an item has \"strokes\" and optionally \"text\")",
                              name, i, VALUE_SHOWN, key);
    }
    const json_t *jtext = json_object_get(item, "text");
    const char *text = NULL;
    if (jtext && !json_is_null(jtext)) {
        if (!json_is_string(jtext))
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: item %zu: \"text\" is %s, not a string", name, i,
                              json_kind(jtext));
        if (json_string_length(jtext) > STROKES_MAX_TEXT)
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: item %zu: \"text\" is longer than %d bytes", name, i,
                              STROKES_MAX_TEXT);
        if (json_string_length(jtext) > 0)
            text = json_string_value(jtext);
    }
    const json_t *strokes = json_object_get(item, "strokes");
    if (!strokes)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: item %zu has no \"strokes\"", name, i);
    if (!json_is_array(strokes))
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: item %zu: \"strokes\" is %s, not an array of strokes [[[x, y], ...], ...]", name,
                          i, json_kind(strokes));
    const size_t nstrokes = json_array_size(strokes);
    if (nstrokes == 0)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: item %zu: \"strokes\" is empty", name, i);
    /* count first, so the limits are checked before anything is allocated */
    size_t npoints = 0;
    for (size_t j = 0; j < nstrokes; j++) {
        const json_t *stroke = json_array_get(strokes, j);
        if (!json_is_array(stroke))
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: item %zu: stroke %zu is %s, not an array of points [[x, y], ...]", name, i,
                              j, json_kind(stroke));
        if (json_array_size(stroke) == 0)
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: item %zu: stroke %zu has no points", name, i, j);
        if ((npoints += json_array_size(stroke)) > STROKES_MAX_POINTS)
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: item %zu: more than %d points in one line", name, i,
                              STROKES_MAX_POINTS);
    }
    if (npoints > sc->cap_points) {
        double *nxy = realloc(sc->xy, npoints * 2 * sizeof *nxy);
        if (!nxy)
            return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", name);
        sc->xy = nxy;
        sc->cap_points = npoints;
    }
    if (nstrokes > sc->cap_strokes) {
        int32_t *nl = realloc(sc->lens, nstrokes * sizeof *nl);
        if (!nl)
            return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", name);
        sc->lens = nl;
        sc->cap_strokes = nstrokes;
    }
    size_t at = 0;
    for (size_t j = 0; j < nstrokes; j++) {
        const json_t *stroke = json_array_get(strokes, j);
        const size_t len = json_array_size(stroke);
        sc->lens[j] = (int32_t)len;
        for (size_t k = 0; k < len; k++, at++) {
            char why[128];
            if (!json_point(json_array_get(stroke, k), sc->xy + 2 * at, why, sizeof why))
                return hyper_fail(err, HYPER_ERR_FORMAT, "%s: item %zu: stroke %zu: point %zu%s", name, i, j, k,
                                  why);
        }
    }
    char item_name[HYPER_ERRMSG_MAX];
    snprintf(item_name, sizeof item_name, "%s: item %zu", name, i);
    return add_line_named(s, item_name, text, sc->xy, sc->lens, (int32_t)nstrokes, err);
}

/* ---- the streaming reader ------------------------------------------------------------ */

/*
 * A JSON stroke document is read item by item: a small scanner follows the top level
 * ('[', items, ',', ']') and, inside an item, only its nesting and strings, so that it can
 * cut the item's text out; jansson parses that text alone and json_add_item checks it.
 * Memory is thus bounded by the largest item, whatever the document's size.  An item's
 * text is at most STROKES_JSON_ITEM_MAX bytes and holds at most JSON_ITEM_MAX_COMMAS
 * commas outside strings (a line of STROKES_MAX_POINTS points needs half of that), which
 * bounds what jansson allocates for it to some tens of megabytes.  Positions in messages
 * are the document's: line from 1, column in characters from 1, as jansson counts them.
 */
#define JSON_ITEM_MAX_COMMAS ((size_t)4 * STROKES_MAX_POINTS)
#define JSON_ITEM_FIRST_CAP ((size_t)64 << 10)

typedef enum {
    J_ROOT,       /* before the document's '[' */
    J_FIRST,      /* after '[': an item or ']' */
    J_NEXT,       /* after ',': an item */
    J_ITEM,       /* inside an item */
    J_AFTER,      /* after an item: ',' or ']' */
    J_END,        /* after the closing ']': white space only */
} json_state;

typedef enum { ITEM_NESTED, ITEM_STRING, ITEM_SCALAR } item_shape;

struct strokes_reader {
    stroke_set *s;              /* where lines go: the caller's set or own */
    stroke_set own;             /* lines checked and dropped when only counting */
    int counting;
    int32_t n0;                 /* s->n when the reader started */
    int64_t lines;              /* lines taken so far */
    strokes_format fmt;
    char *name;
    hyper_status st;            /* the first fault, HYPER_OK until one */
    char msg[HYPER_ERRMSG_MAX]; /* its message */
    int finished;
    uint64_t total;             /* bytes fed */
    /* JSON */
    json_state js;
    item_shape shape;
    char *item;                 /* the current item's text */
    size_t item_len, item_cap;
    size_t depth, commas;
    int in_string, escaped;
    uint64_t line, col;         /* of the next byte */
    uint64_t item_line, item_col;
    size_t nitems;
    json_scratch sc;
    /* IAM */
    iam_doc iam;
};

static hyper_status reader_fail(strokes_reader *r, hyper_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hyper_status reader_fail(strokes_reader *r, hyper_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->st = st;
    return st;
}

static hyper_status json_syntax(strokes_reader *r, const char *what)
{
    return reader_fail(r, HYPER_ERR_FORMAT, "%s: invalid JSON at line %llu, column %llu: %s", r->name,
                       (unsigned long long)r->line, (unsigned long long)r->col, what);
}

/* A line is taken: kept, or checked and let go when only counting. */
static void reader_took(strokes_reader *r, int32_t before)
{
    r->lines += r->s->n - before;
    if (r->counting)
        rollback(r->s, before);
}

/* The current item's text is complete: parse it and add its line. */
static hyper_status json_item_done(strokes_reader *r)
{
    const size_t i = r->nitems++;
    if (r->s->n >= STROKES_MAX_LINES)
        return reader_fail(r, HYPER_ERR_FORMAT, "%s: more than %d lines, more than a set holds", r->name,
                           STROKES_MAX_LINES);
    json_error_t jerr;
    json_t *item = json_loadb(r->item, r->item_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    r->item_len = 0;
    if (!item) {
        const uint64_t line = r->item_line + (uint64_t)(jerr.line > 0 ? jerr.line - 1 : 0);
        const uint64_t col = jerr.line <= 1 ? r->item_col + (uint64_t)(jerr.column > 0 ? jerr.column - 1 : 0)
                                            : (uint64_t)jerr.column;
        return reader_fail(r, HYPER_ERR_FORMAT, "%s: invalid JSON at line %llu, column %llu: %s", r->name,
                           (unsigned long long)line, (unsigned long long)col, jerr.text);
    }
    const int32_t before = r->s->n;
    hyper_status st = json_add_item(r->s, item, i, r->name, &r->sc, r->msg);
    json_decref(item);
    if (st != HYPER_OK)
        return r->st = st;
    reader_took(r, before);
    return HYPER_OK;
}

static hyper_status item_push(strokes_reader *r, char c)
{
    if (r->item_len == r->item_cap) {
        if (r->item_cap >= STROKES_JSON_ITEM_MAX)
            return reader_fail(r, HYPER_ERR_FORMAT,
                               "%s: item %zu (from line %llu) is larger than %zu bytes, the limit of one line",
                               r->name, r->nitems, (unsigned long long)r->item_line, STROKES_JSON_ITEM_MAX);
        size_t cap = r->item_cap ? 2 * r->item_cap : JSON_ITEM_FIRST_CAP;
        if (cap > STROKES_JSON_ITEM_MAX)
            cap = STROKES_JSON_ITEM_MAX;
        char *p = realloc(r->item, cap);
        if (!p)
            return reader_fail(r, HYPER_ERR_NOMEM, "%s: out of memory", r->name);
        r->item = p;
        r->item_cap = cap;
    }
    r->item[r->item_len++] = c;
    return HYPER_OK;
}

static int json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* One byte inside an item.  *again: the byte ended a scalar item and belongs to what
 * follows it. */
static hyper_status json_item_byte(strokes_reader *r, unsigned char c, int *again)
{
    switch (r->shape) {
    case ITEM_SCALAR:
        if (json_space(c) || c == ',' || c == ']' || c == '[' || c == '{' || c == '}' || c == '"') {
            *again = 1;
            r->js = J_AFTER;
            return json_item_done(r);
        }
        return item_push(r, (char)c);
    case ITEM_STRING:
    case ITEM_NESTED:
        if (item_push(r, (char)c) != HYPER_OK)
            return r->st;
        if (r->in_string) {
            if (r->escaped)
                r->escaped = 0;
            else if (c == '\\')
                r->escaped = 1;
            else if (c == '"') {
                r->in_string = 0;
                if (r->shape == ITEM_STRING) {
                    r->js = J_AFTER;
                    return json_item_done(r);
                }
            }
            return HYPER_OK;
        }
        if (c == '"')
            r->in_string = 1;
        else if (c == '[' || c == '{')
            r->depth++;
        else if (c == ']' || c == '}') {
            if (--r->depth == 0) {
                r->js = J_AFTER;
                return json_item_done(r);
            }
        } else if (c == ',' && ++r->commas > JSON_ITEM_MAX_COMMAS)
            return reader_fail(r, HYPER_ERR_FORMAT,
                               "%s: item %zu (from line %llu) holds more than %zu values; a line has at most %d"
                               " points",
                               r->name, r->nitems, (unsigned long long)r->item_line, JSON_ITEM_MAX_COMMAS,
                               STROKES_MAX_POINTS);
        return HYPER_OK;
    }
    return HYPER_OK;
}

/* The first byte of an item. */
static hyper_status json_item_start(strokes_reader *r, unsigned char c)
{
    r->js = J_ITEM;
    r->item_len = 0;
    r->depth = r->commas = 0;
    r->in_string = r->escaped = 0;
    r->item_line = r->line;
    r->item_col = r->col;
    if (c == '{' || c == '[') {
        r->shape = ITEM_NESTED;
        r->depth = 1;
    } else if (c == '"') {
        r->shape = ITEM_STRING;
        r->in_string = 1;
    } else {
        r->shape = ITEM_SCALAR;
    }
    return item_push(r, (char)c);
}

static hyper_status json_byte(strokes_reader *r, unsigned char c)
{
    int again;
    do {
        again = 0;
        switch (r->js) {
        case J_ITEM:
            if (json_item_byte(r, c, &again) != HYPER_OK)
                return r->st;
            break;
        case J_ROOT:
            if (json_space(c))
                break;
            if (c == '[') {
                r->js = J_FIRST;
                break;
            }
            if (c == '{')
                return reader_fail(r, HYPER_ERR_FORMAT,
                                   "%s: expected an array of lines"
                                   " [{\"text\": \"...\", \"strokes\": [[[x, y], ...], ...]}, ...], got an object",
                                   r->name);
            return json_syntax(r, "'[' expected: a document of strokes is an array of lines");
        case J_FIRST:
        case J_NEXT:
            if (json_space(c))
                break;
            if (c == ']' && r->js == J_FIRST)
                return reader_fail(r, HYPER_ERR_FORMAT, "%s: the array is empty: no lines", r->name);
            if (c == ']' || c == ',' || c == '}' || c == ':')
                return json_syntax(r, r->js == J_NEXT ? "an item expected after ','" : "an item expected");
            if (json_item_start(r, c) != HYPER_OK)
                return r->st;
            break;
        case J_AFTER:
            if (json_space(c))
                break;
            if (c == ',')
                r->js = J_NEXT;
            else if (c == ']')
                r->js = J_END;
            else
                return json_syntax(r, "',' or ']' expected after an item");
            break;
        case J_END:
            if (!json_space(c))
                return json_syntax(r, "end of file expected after the array of lines");
            break;
        }
    } while (again);
    if (c == '\n') {
        r->line++;
        r->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        r->col++;
    }
    return HYPER_OK;
}

static hyper_status json_finish(strokes_reader *r)
{
    if (r->js == J_ITEM && r->shape == ITEM_SCALAR) { /* "[5" ends with its scalar: parse it first */
        r->js = J_AFTER;
        if (json_item_done(r) != HYPER_OK)
            return r->st;
    }
    switch (r->js) {
    case J_END: return HYPER_OK;
    case J_ROOT: return json_syntax(r, "the document is empty: expected an array of lines");
    case J_ITEM: {
        char what[96];
        snprintf(what, sizeof what, "the document ends inside item %zu", r->nitems);
        return json_syntax(r, what);
    }
    default: return json_syntax(r, "the document ends before the array's closing ']'");
    }
}

hyper_status strokes_reader_new(strokes_reader **out, stroke_set *s, strokes_format fmt, const char *name,
                                char *err)
{
    *out = NULL;
    if (!name)
        name = fmt == STROKES_FORMAT_IAM ? "XML" : "JSON";
    strokes_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", name);
    }
    strokes_init(&r->own);
    r->counting = s == NULL;
    r->s = s ? s : &r->own;
    r->n0 = r->s->n;
    r->fmt = fmt;
    r->js = J_ROOT;
    r->line = r->col = 1;
    if (fmt == STROKES_FORMAT_IAM && iam_doc_init(&r->iam, r->name, r->msg) != HYPER_OK) {
        hyper_fail(err, HYPER_ERR_NOMEM, "%s", r->msg);
        strokes_reader_free(r);
        return HYPER_ERR_NOMEM;
    }
    *out = r;
    return HYPER_OK;
}

static hyper_status reader_result(const strokes_reader *r, char *err)
{
    return r->st == HYPER_OK ? HYPER_OK : hyper_fail(err, r->st, "%s", r->msg);
}

hyper_status strokes_reader_feed(strokes_reader *r, const void *buf, size_t len, char *err)
{
    if (r->st != HYPER_OK || r->finished)
        return r->finished && r->st == HYPER_OK ? hyper_fail(err, HYPER_ERR_ARG, "%s: fed after its end", r->name)
                                                : reader_result(r, err);
    const size_t limit = r->fmt == STROKES_FORMAT_IAM ? IAM_MAX_FILE_BYTES : JSON_MAX_BYTES;
    if ((r->total += len) > limit) {
        if (r->fmt == STROKES_FORMAT_IAM)
            reader_fail(r, HYPER_ERR_FORMAT, "%s: larger than %zu bytes; a lineStrokes document holds one line",
                        r->name, limit);
        else
            reader_fail(r, HYPER_ERR_FORMAT, "%s: larger than %zu bytes", r->name, limit);
        return reader_result(r, err);
    }
    const unsigned char *p = buf;
    if (r->fmt == STROKES_FORMAT_IAM) {
        for (size_t off = 0; off < len && r->st == HYPER_OK; off += IAM_READ_CHUNK)
            r->st = iam_feed(&r->iam, (const char *)p + off, len - off < IAM_READ_CHUNK ? len - off : IAM_READ_CHUNK,
                             0);
        return reader_result(r, err);
    }
    for (size_t k = 0; k < len && json_byte(r, p[k]) == HYPER_OK; k++)
        ;
    return reader_result(r, err);
}

hyper_status strokes_reader_finish(strokes_reader *r, int64_t *lines, char *err)
{
    if (r->st == HYPER_OK && r->finished)
        return hyper_fail(err, HYPER_ERR_ARG, "%s: finished twice", r->name);
    if (r->st == HYPER_OK && r->fmt == STROKES_FORMAT_JSON)
        json_finish(r);
    if (r->st == HYPER_OK && r->fmt == STROKES_FORMAT_IAM) {
        char *text = NULL;
        r->st = iam_feed(&r->iam, "", 0, 1);
        if (r->st == HYPER_OK && r->iam.text)
            r->st = make_transcript(r->iam.text, r->iam.text_len, r->name, &text, r->msg);
        const int32_t before = r->s->n;
        if (r->st == HYPER_OK && (r->st = iam_commit(r->s, &r->iam, text, r->msg)) == HYPER_OK)
            reader_took(r, before);
        free(text);
    }
    if (r->st != HYPER_OK)
        return reader_result(r, err);
    r->finished = 1;
    if (lines)
        *lines = r->lines;
    return HYPER_OK;
}

void strokes_reader_free(strokes_reader *r)
{
    if (!r)
        return;
    if (!r->finished || r->st != HYPER_OK)
        rollback(r->s, r->n0);
    if (r->fmt == STROKES_FORMAT_IAM)
        iam_doc_free(&r->iam);
    strokes_free(&r->own);
    free(r->item);
    free(r->sc.xy);
    free(r->sc.lens);
    free(r->name);
    free(r);
}

/* A whole document held in memory through a reader. */
static hyper_status parse_whole(stroke_set *s, strokes_format fmt, const char *doc, size_t len, const char *name,
                                char *err)
{
    strokes_reader *r;
    hyper_status st = strokes_reader_new(&r, s, fmt, name, err);
    if (st != HYPER_OK)
        return st;
    if ((st = strokes_reader_feed(r, doc, len, err)) == HYPER_OK)
        st = strokes_reader_finish(r, NULL, err);
    strokes_reader_free(r);
    return st;
}

/* len bytes of JSON (borrowed), one line per item; "text" may be missing, null or "" (no
 * transcript).  Unknown keys are refused so that a misspelt one does not pass silently.
 * name (NULL: "JSON") starts every message, which an API caller can be shown as it is.
 * On error the set is unchanged. */
hyper_status strokes_parse_json(stroke_set *s, const char *json, size_t len, const char *name, char *err)
{
    return parse_whole(s, STROKES_FORMAT_JSON, json, len, name, err);
}

hyper_status strokes_read_file(strokes_reader *r, const char *path, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    char *chunk = malloc(STROKES_READ_CHUNK);
    hyper_status st = chunk ? HYPER_OK : hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", path);
    while (st == HYPER_OK) {
        ssize_t got = read(fd, chunk, STROKES_READ_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            st = hyper_fail(err, HYPER_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (got <= 0)
            break;
        st = strokes_reader_feed(r, chunk, (size_t)got, err);
    }
    free(chunk);
    close(fd);
    return st;
}

/* The file at path (at most JSON_MAX_BYTES), read in chunks through a reader. */
hyper_status strokes_load_json(stroke_set *s, const char *path, char *err)
{
    strokes_reader *r;
    hyper_status st = strokes_reader_new(&r, s, STROKES_FORMAT_JSON, path, err);
    if (st != HYPER_OK)
        return st;
    if ((st = strokes_read_file(r, path, err)) == HYPER_OK)
        st = strokes_reader_finish(r, NULL, err);
    strokes_reader_free(r);
    return st;
}
