/*
 * pengen.h — the handwriting streams of the scheduler (scheduler.h): a pen on a
 * handwriting model (handwriting.h) that first reads a prime — points given by the caller,
 * optionally scored — and then draws up to max_points points, each from the mixture the
 * step before it predicted, with its own generator.  Streams of one model are stepped
 * together: sixteen drawings at once cost about one batched step each point, and what a
 * pen draws does not depend on the others (the same seed draws the same strokes alone or
 * beside 63 others).
 */
#ifndef HYPER_PENGEN_H
#define HYPER_PENGEN_H

#include "handwriting.h"
#include "scheduler.h"

typedef struct pen_request pen_request;

typedef struct {
    const float *prime;         /* (nprime, 3) raw dx, dy, eos, read before drawing (copied) */
    int32_t nprime;
    int score;                  /* add up the prime's negative log-likelihood (pen_request_nats) */
    int32_t max_points;         /* points to draw after the prime, 0..HW_MAX_POINTS */
    double bias, temperature;   /* as hw_params */
    int hyper;                  /* keep each drawn point's hyper activity (zeros for cells
                                 * without a hypernetwork) */
} pen_spec;

/* Submits a drawing with model m (normalisation st) on state (stream 0), pen and rng, which
 * the caller owns (or holds, through a session) until the request has ended.  NULL when out
 * of memory or the scheduler is stopping. */
pen_request *pengen_submit(scheduler *s, const model *m, const stroke_stats *st, model_state *state,
                           hw_pen *pen, hyper_rng *rng, const pen_spec *spec);

/* Waits up to timeout_ms (−1 forever) for points or the end; copies at most max new points:
 * pts (max, 3) raw dx, dy, eos, xy (max, 2) the pen's absolute position after each, act
 * (max, 4) their activity (may be NULL).  Returns how many; *finished is set once the
 * request has ended and every point has been read. */
size_t pen_request_read(pen_request *r, float *pts, double *xy, float *act, size_t max, int timeout_ms,
                        gen_finish *finished);
/* Calls fn(arg) once when there are points to read or the request has ended, as
 * gen_request_notify. */
void pen_request_notify(pen_request *r, void (*fn)(void *arg), void (*drop)(void *arg), void *arg);
/* The same, at the request's end only. */
void pen_request_notify_end(pen_request *r, void (*fn)(void *arg), void (*drop)(void *arg), void *arg);
int pen_request_wait_ms(pen_request *r, int timeout_ms);
void pen_request_cancel(pen_request *r);
/* Results, valid once ended. */
gen_finish pen_request_finish(pen_request *r);
int32_t pen_request_primed(pen_request *r);      /* prime points the state read */
int32_t pen_request_drawn(pen_request *r);       /* points drawn */
double pen_request_nats(pen_request *r);         /* Σ −log p of the prime (score), model units */
/* Cancels if still running, waits for the end, frees. */
void pen_request_free(pen_request *r);

#endif
