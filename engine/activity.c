/*
 * activity.c — text and colours for pictures of the hyper activity (activity.h).
 */
#include "activity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "vocab.h"

#define FONT_PX 14
#define CHAR_PX 8.4                 /* advance of a monospace character at FONT_PX */
#define LINE_PX 20
#define MARGIN_PX 12
#define LEGEND_PX 44                /* room under the text for the legend */

double activity_total(const float *a)
{
    return (double)a[0] + a[1] + a[2] + a[3];
}

void activity_colour(double t, char out[8])
{
    if (!(t > 0))
        t = 0;
    if (t > 1)
        t = 1;
    /* blue (40, 70, 200) → purple (150, 50, 160) → red (215, 40, 30) */
    static const double stops[3][3] = {{40, 70, 200}, {150, 50, 160}, {215, 40, 30}};
    const int k = t < 0.5 ? 0 : 1;
    const double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    int rgb[3];
    for (int c = 0; c < 3; c++)
        rgb[c] = (int)lround(stops[k][c] + (stops[k + 1][c] - stops[k][c]) * u);
    static const char hex[] = "0123456789abcdef";
    out[0] = '#';
    for (int c = 0; c < 3; c++) {
        out[1 + 2 * c] = hex[rgb[c] >> 4];
        out[2 + 2 * c] = hex[rgb[c] & 15];
    }
    out[7] = 0;
}

/* The smallest and largest totals of n activities (both 0 when there are none). */
static void activity_range(const float *act, size_t n, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = activity_total(act + 4 * i);
        if (!isfinite(v))
            continue;
        *lo = fmin(*lo, v);
        *hi = fmax(*hi, v);
    }
    if (!isfinite(*lo))
        *lo = 0;
}

/* Where v lies between lo and hi, 0..1. */
static double scaled(double v, double lo, double hi)
{
    return hi > lo ? (v - lo) / (hi - lo) : 0;
}

void activity_colours(const float *act, size_t n, char (*colour)[8])
{
    double lo, hi;
    activity_range(act, n, &lo, &hi);
    for (size_t i = 0; i < n; i++)
        activity_colour(scaled(activity_total(act + 4 * i), lo, hi), colour[i]);
}

/* Appends code point cp as XML character data (escaped; characters XML 1.0 forbids and
 * other controls as U+FFFD, a tab as a space). */
static void put_char(strbuf *b, uint32_t cp)
{
    char u[8];
    int n;
    switch (cp) {
    case '&': strbuf_printf(b, "&amp;"); return;
    case '<': strbuf_printf(b, "&lt;"); return;
    case '>': strbuf_printf(b, "&gt;"); return;
    case '\t': strbuf_printf(b, " "); return;
    default: break;
    }
    if (cp < 0x20 || cp == 0x7f || (cp >= 0xfffe && cp <= 0xffff))
        cp = 0xfffd;
    n = utf8_encode(cp, u);
    u[n > 0 ? n : 0] = 0;
    strbuf_printf(b, "%s", u);
}

char *activity_text_svg(const char *text, size_t len, const float *act, size_t nact)
{
    /* first pass: the lines' count and the longest, to size the picture */
    size_t lines = 1, col = 0, widest = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        int n = utf8_decode(text + i, len - i, &cp);
        i += n > 0 ? (size_t)n : 1;
        col++;
        if (col > widest)
            widest = col;
        if (cp == '\n' || col >= ACTIVITY_SVG_COLUMNS) {
            lines++;
            col = 0;
        }
    }
    double lo, hi;
    activity_range(act, nact, &lo, &hi);
    const double w = 2 * MARGIN_PX + fmax((double)widest, 40) * CHAR_PX;
    const double h = 2 * MARGIN_PX + (double)lines * LINE_PX + LEGEND_PX;
    strbuf b;
    strbuf_init(&b);
    strbuf_printf(&b,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\">\n"
                  "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                  "<g font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" "
                  "font-size=\"%d\" xml:space=\"preserve\">\n",
                  w, h, w, h, FONT_PX);
    size_t line = 0, k = 0;
    col = 0;
    int open = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        int n = utf8_decode(text + i, len - i, &cp);
        if (n <= 0) {
            cp = 0xfffd;
            n = 1;
        }
        i += (size_t)n;
        if (!open) {
            strbuf_printf(&b, "<text x=\"%d\" y=\"%d\">", MARGIN_PX, MARGIN_PX + FONT_PX + (int)line * LINE_PX);
            open = 1;
        }
        char c[8] = "#999999";
        if (k < nact)
            activity_colour(scaled(activity_total(act + 4 * k), lo, hi), c);
        strbuf_printf(&b, "<tspan fill=\"%s\">", c);
        if (cp == '\n')
            strbuf_printf(&b, "\xe2\x86\xb5"); /* ↵ */
        else
            put_char(&b, cp);
        strbuf_printf(&b, "</tspan>");
        k++;
        col++;
        if (cp == '\n' || col >= ACTIVITY_SVG_COLUMNS) {
            strbuf_printf(&b, "</text>\n");
            open = 0;
            line++;
            col = 0;
        }
    }
    if (open)
        strbuf_printf(&b, "</text>\n");
    strbuf_printf(&b, "</g>\n");
    /* the legend: the colour ramp from the smallest activity in the picture to the largest */
    const double ly = 2 * MARGIN_PX + (double)lines * LINE_PX;
    strbuf_printf(&b, "<g font-family=\"sans-serif\" font-size=\"11\" fill=\"#333333\">\n");
    for (int s = 0; s < 20; s++) {
        char c[8];
        activity_colour(s / 19.0, c);
        strbuf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"10\" fill=\"%s\"/>\n",
                      MARGIN_PX + s * 8.0, ly, c);
    }
    strbuf_printf(&b,
                  "<text x=\"%.1f\" y=\"%.1f\">hyper activity \xce\xa3\xe2\x80\x96\xce\x94" "d_h\xe2\x80\x96"
                  " over gates i g f o: %.4g (blue) to %.4g (red)</text>\n</g>\n</svg>\n",
                  MARGIN_PX + 20 * 8.0 + 8, ly + 9, lo, hi);
    return strbuf_take(&b);
}
