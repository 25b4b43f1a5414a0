/*
 * strokes.c — the stroke_set container, absolute ↔ offset conversion, the "synthetic:N |
 * dir | .xml | .json" dispatch, outlier removal, statistics and the SVG writer of
 * strokes.h.  The readers themselves are in strokes_io.c (IAM XML, JSON) and hershey.c.
 */
#include "strokes.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "strbuf.h"

void strokes_init(stroke_set *s) { memset(s, 0, sizeof *s); }

void strokes_free(stroke_set *s)
{
    for (int32_t k = 0; k < s->n; k++) {
        free(s->lines[k].text);
        free(s->lines[k].pts);
    }
    free(s->lines);
    memset(s, 0, sizeof *s);
}

hyper_status strokes_add_line(stroke_set *s, const char *text, const double *xy,
                              const int32_t *stroke_len, int32_t nstrokes, char *err)
{
    if (nstrokes < 1)
        return hyper_fail(err, HYPER_ERR_FORMAT, "a line has no strokes");
    int64_t n = 0;
    for (int32_t k = 0; k < nstrokes; k++) {
        if (stroke_len[k] < 1)
            return hyper_fail(err, HYPER_ERR_FORMAT, "stroke %d has no points", k);
        n += stroke_len[k];
        if (n > STROKES_MAX_POINTS)
            return hyper_fail(err, HYPER_ERR_FORMAT, "a line has more than %d points", STROKES_MAX_POINTS);
    }
    for (int64_t i = 0; i < 2 * n; i++)
        if (!isfinite(xy[i]) || fabs(xy[i]) > STROKES_MAX_COORD)
            return hyper_fail(err, HYPER_ERR_FORMAT, "point %" PRId64 " has an absurd coordinate (%.10g); |x|, |y| must be at most %g",
                              i / 2, xy[i], STROKES_MAX_COORD);
    if (text && strlen(text) > STROKES_MAX_TEXT)
        return hyper_fail(err, HYPER_ERR_FORMAT, "a transcript is longer than %d bytes", STROKES_MAX_TEXT);
    if (s->n >= STROKES_MAX_LINES)
        return hyper_fail(err, HYPER_ERR_FORMAT, "more than %d lines", STROKES_MAX_LINES);
    if (s->n == s->cap) {
        int32_t cap = s->cap ? s->cap * 2 : 64;
        stroke_line *nl = realloc(s->lines, (size_t)cap * sizeof *nl);
        if (!nl)
            return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
        s->lines = nl;
        s->cap = cap;
    }
    stroke_line *ln = &s->lines[s->n];
    ln->npoints = (int32_t)n;
    ln->pts = malloc((size_t)n * 3 * sizeof(float));
    ln->text = text ? strdup(text) : NULL;
    if (!ln->pts || (text && !ln->text)) {
        free(ln->pts);
        free(ln->text);
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    }
    int64_t i = 0;
    for (int32_t k = 0; k < nstrokes; k++)
        for (int32_t j = 0; j < stroke_len[k]; j++, i++) {
            float *p = ln->pts + 3 * i;
            p[0] = i ? (float)(xy[2 * i] - xy[2 * i - 2]) : 0.0f;
            p[1] = i ? (float)(xy[2 * i + 1] - xy[2 * i - 1]) : 0.0f;
            p[2] = j == stroke_len[k] - 1 ? 1.0f : 0.0f;
        }
    s->n++;
    return HYPER_OK;
}

void strokes_to_absolute(const float *pts, int32_t n, double x0, double y0, double *xy,
                         int32_t *stroke_len, int32_t *nstrokes)
{
    double x = x0, y = y0;
    int32_t ns = 0, run = 0;
    for (int32_t i = 0; i < n; i++) {
        x += pts[3 * i];
        y += pts[3 * i + 1];
        xy[2 * i] = x;
        xy[2 * i + 1] = y;
        run++;
        if (pts[3 * i + 2] > 0.5f) {
            stroke_len[ns++] = run;
            run = 0;
        }
    }
    if (run)
        stroke_len[ns++] = run;
    *nstrokes = ns;
}

/* ---- preprocessing ------------------------------------------------------------------- */

stroke_stats strokes_stats(const stroke_set *s)
{
    double n = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
    for (int32_t k = 0; k < s->n; k++)
        for (int32_t i = 0; i < s->lines[k].npoints; i++) {
            const float *p = s->lines[k].pts + 3 * i;
            sx += p[0];
            sy += p[1];
            sxx += (double)p[0] * p[0];
            syy += (double)p[1] * p[1];
            n++;
        }
    stroke_stats st = {0, 0, 1, 1};
    if (n > 0) {
        st.mean_x = sx / n;
        st.mean_y = sy / n;
        st.std_x = fmax(sqrt(fmax(sxx / n - st.mean_x * st.mean_x, 0)), 1e-6);
        st.std_y = fmax(sqrt(fmax(syy / n - st.mean_y * st.mean_y, 0)), 1e-6);
    }
    return st;
}

int32_t strokes_drop_outliers(stroke_set *s, double limit)
{
    const stroke_stats st = strokes_stats(s);
    const double lx = limit * st.std_x, ly = limit * st.std_y;
    int32_t kept = 0, dropped = 0;
    for (int32_t k = 0; k < s->n; k++) {
        stroke_line *ln = &s->lines[k];
        int bad = 0;
        for (int32_t i = 0; i < ln->npoints && !bad; i++)
            bad = fabs(ln->pts[3 * i] - st.mean_x) > lx || fabs(ln->pts[3 * i + 1] - st.mean_y) > ly;
        if (bad) {
            free(ln->text);
            free(ln->pts);
            dropped++;
        } else {
            s->lines[kept++] = *ln;
        }
    }
    s->n = kept;
    return dropped;
}

/* ---- drawing ------------------------------------------------------------------------- */

char *strokes_svg(const double *xy, const int32_t *stroke_len, int32_t nstrokes,
                  double line_width)
{
    return strokes_svg_coloured(xy, stroke_len, nstrokes, line_width, NULL);
}

char *strokes_svg_coloured(const double *xy, const int32_t *stroke_len, int32_t nstrokes,
                           double line_width, const char (*colour)[8])
{
    int64_t n = 0;
    for (int32_t k = 0; k < nstrokes; k++)
        n += stroke_len[k];
    double x0 = 0, y0 = 0, x1 = 1, y1 = 1;
    for (int64_t i = 0; i < n; i++) {
        const double x = xy[2 * i], y = xy[2 * i + 1];
        if (i == 0 || x < x0) x0 = x;
        if (i == 0 || x > x1) x1 = x;
        if (i == 0 || y < y0) y0 = y;
        if (i == 0 || y > y1) y1 = y;
    }
    const double w = fmax(x1 - x0, 1e-3), h = fmax(y1 - y0, 1e-3);
    if (!(line_width > 0))
        line_width = fmax(fmax(w, h) / 300, 1e-3);
    const double margin = fmax(w, h) * 0.03 + line_width;
    /* 1000 pixels across, the height in proportion (within reason for a single dot) */
    const double px_w = 1000, px_h = fmin(fmax(px_w * (h + 2 * margin) / (w + 2 * margin), 20), 4000);
    strbuf b;
    strbuf_init(&b);
    strbuf_printf(&b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"%.3f %.3f %.3f %.3f\" "
              "width=\"%.0f\" height=\"%.0f\">\n"
              "<g fill=\"none\" stroke=\"black\" stroke-width=\"%.3f\" stroke-linecap=\"round\" "
              "stroke-linejoin=\"round\">\n",
              x0 - margin, y0 - margin, w + 2 * margin, h + 2 * margin, px_w, px_h,
              line_width);
    int64_t i = 0;
    for (int32_t k = 0; colour && k < nstrokes; k++) {
        /* one segment per point, from the one before it, in the point's colour */
        for (int32_t j = 0; j < stroke_len[k]; j++, i++) {
            const int64_t from = j == 0 ? i : i - 1;
            strbuf_printf(&b, "<path stroke=\"%s\" d=\"M%.2f %.2f L%.2f %.2f\"/>\n", colour[i],
                          xy[2 * from], xy[2 * from + 1], xy[2 * i], xy[2 * i + 1]);
        }
    }
    for (int32_t k = 0; !colour && k < nstrokes; k++) {
        strbuf_printf(&b, "<path d=\"");
        for (int32_t j = 0; j < stroke_len[k]; j++, i++)
            strbuf_printf(&b, "%s%.2f %.2f", j == 0 ? "M" : (j == 1 ? " L" : " "), xy[2 * i], xy[2 * i + 1]);
        if (stroke_len[k] == 1) /* a dot: a zero-length segment so the round cap draws it */
            strbuf_printf(&b, " l0 0");
        strbuf_printf(&b, "\"/>\n");
    }
    strbuf_printf(&b, "</g>\n</svg>\n");
    return strbuf_take(&b);
}
