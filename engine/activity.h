/*
 * activity.h — pictures of what the hypernetwork does (paper Figs. 4 and 7): text whose
 * characters, and strokes whose points, are coloured by the hyper activity of the step
 * that produced them (model_hyper_activity: ‖Δd_h‖ per gate i, g, f, o).
 *
 * One number per character or point, the sum over the four gates, is mapped linearly from
 * the smallest in the picture (blue) to the largest (red).
 */
#ifndef HYPER_ACTIVITY_H
#define HYPER_ACTIVITY_H

#include <stddef.h>
#include <stdint.h>

#define ACTIVITY_SVG_COLUMNS 80     /* characters per line before a text wraps */

/* The sum over the four gates of one activity (4). */
double activity_total(const float *a);
/* The colour "#rrggbb" (NUL-terminated) of t in [0, 1] (clamped): blue, purple, red. */
void activity_colour(double t, char out[8]);
/* Colours for n activities act (n, 4), each total placed between the smallest and the
 * largest: colour (n). */
void activity_colours(const float *act, size_t n, char (*colour)[8]);

/* An SVG document of UTF-8 text (len bytes) with one activity (4) per character, act
 * (nact, 4): a monospace text, one <tspan> per character filled with its colour, lines
 * broken at newlines (shown as ↵ in their own colour) and after ACTIVITY_SVG_COLUMNS
 * characters, and a legend.  Characters beyond nact are drawn grey.  Newly allocated,
 * NUL-terminated; NULL when out of memory. */
char *activity_text_svg(const char *text, size_t len, const float *act, size_t nact);

#endif
