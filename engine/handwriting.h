/*
 * handwriting.h — drawing with a handwriting model (trainer.h: inputs 3, a mixture-density
 * head, mdn.h): one pen, point by point, with Graves' sampling bias, a temperature, a seed,
 * and priming with strokes given by the caller.
 *
 * The pen's state is the model state plus two things the model does not hold: the last
 * point drawn (the model reads it at the next step) and the pen's absolute position, so a
 * drawing can be continued across calls (sessions) and returned in absolute coordinates.
 */
#ifndef HYPER_HANDWRITING_H
#define HYPER_HANDWRITING_H

#include "common.h"
#include "mdn.h"
#include "model.h"
#include "strokes.h"

#define HW_MAX_POINTS 20000     /* points in one request */
#define HW_MAX_BIAS 10.0

typedef struct {
    int32_t max_points;  /* points to draw, 1..HW_MAX_POINTS (700) */
    double bias;         /* Graves §5.4, 0..HW_MAX_BIAS; higher is neater (0) */
    double temperature;  /* (0, 10]; below 1 sharper, above wilder (1) */
    uint64_t seed;       /* (1) */
} hw_params;

void hw_params_default(hw_params *p);
hyper_status hw_params_check(const hw_params *p, char *err);

/* Where a pen is, beyond the model state. */
typedef struct {
    float last[3];       /* the last point (raw dx, dy, eos), not yet read by the model */
    double x, y;         /* absolute position after it */
} hw_pen;

/* A pen at the start of a line: nothing drawn, at (0, 0). */
void hw_pen_start(hw_pen *pen);

/* 1 when m can draw (3 inputs, a mixture-density head). */
int hw_model_ok(const model_config *cfg);

/* The two halves of a step, for callers that run the model step themselves (the
 * scheduler, batched): the model's input for the pen's last point (x: 3 reals,
 * normalised), and, given the step's output y, the caller's point (given != NULL:
 * priming) or a point drawn from y with params p and rng made the pen's new last point,
 * the pen moved; pt (may be NULL) receives it. */
void hw_input(const stroke_stats *st, const hw_pen *pen, real *x);
void hw_advance(const model *m, const stroke_stats *st, const real *y, hw_pen *pen, const float *given,
                const hw_params *p, hyper_rng *rng, float *pt);

/* One step of drawing: the model reads pen->last (advancing state s, batch 1, through ws)
 * and its output is written to y (outputs of the model).  Then either the caller's point
 * (given != NULL: priming) or a point drawn from y with params p and rng becomes the new
 * pen->last, and the pen moves.  pt (may be NULL) receives the new point; act (may be
 * NULL) the hyper activity of the step, the point's (model_hyper_activity on layer 0: 4
 * values, gates i g f o; zeros for cells without a hypernetwork). */
void hw_step(const model *m, const stroke_stats *st, model_state *s, model_step_ws *ws,
             real *y, hw_pen *pen, const float *given, const hw_params *p, hyper_rng *rng,
             float *pt, float *act);

/* Called with each point drawn (raw dx, dy, eos) and the pen's absolute position after
 * it; a non-zero return stops the drawing. */
typedef int (*hw_point_fn)(const float *pt, double x, double y, void *user);

/* Primes the pen with nprime points (may be 0) and then draws p->max_points points into out
 * (p->max_points, 3), calling cb (may be NULL) after each.  *n receives how many were drawn
 * (fewer when cb stopped it: HYPER_ERR_CANCELLED).  rng is seeded by the caller.  act (may
 * be NULL) receives each drawn point's hyper activity (p->max_points, 4), as hw_step. */
hyper_status hw_draw(const model *m, const stroke_stats *st, model_state *s, hw_pen *pen,
                     const float *prime, int32_t nprime, const hw_params *p, hyper_rng *rng,
                     float *out, int32_t *n, hw_point_fn cb, void *user, float *act, char *err);

#endif
