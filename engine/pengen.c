/*
 * pengen.c — the handwriting streams of pengen.h, as a stream_ops table for the scheduler.
 *
 * At each step a pen's input is its last point (hw_input); the step's output is the
 * mixture of the next point, from which hw_advance takes the prime's next point or draws
 * one.  Drawn points go to a buffer readers take from.
 */
#include "pengen.h"

#include <stdlib.h>
#include <string.h>

#include "trainer.h" /* strokes_normalise */

struct pen_request {
    sched_req base;             /* first: the scheduler's part */
    const stroke_stats *st;
    hw_pen *pen;
    hyper_rng *rng;
    hw_params p;
    float *prime;               /* (nprime, 3) owned copy */
    int32_t nprime, primed;
    int score;
    double nats;
    int hyper;
    /* output, under base.mu */
    float *pts;                 /* (max_points, 3) */
    double *xy;                 /* (max_points, 2) */
    float *act;                 /* (max_points, 4) or NULL */
    int32_t drawn, read;
};

static void pen_admit(sched_req *b, const model *m)
{
    (void)b;
    (void)m;
}

static int pen_input(sched_req *b, const model *m, int32_t *id, real *x, void *scratch)
{
    (void)m;
    (void)id;
    (void)scratch;
    pen_request *r = (pen_request *)b;
    if (r->primed >= r->nprime && r->drawn >= r->p.max_points)
        return 0;
    hw_input(r->st, r->pen, x);
    b->act = r->hyper && r->primed >= r->nprime && cell_is_hyper((cell_kind)m->cfg.cell);
    return 1;
}

static void pen_output(sched_req *b, const model *m, const real *y, const real *act)
{
    pen_request *r = (pen_request *)b;
    if (r->primed < r->nprime) {
        const float *q = r->prime + 3 * (size_t)r->primed;
        if (r->score) { /* y is the mixture the model predicted q with */
            real x[3];
            strokes_normalise(r->st, q, 1.0, x);
            const float t[3] = {(float)x[0], (float)x[1], (float)x[2]};
            r->nats += mdn_loss(y, mdn_mixtures(m->cfg.outputs), t, NULL, 0);
        }
        hw_advance(m, r->st, y, r->pen, q, &r->p, r->rng, NULL);
        r->primed++;
        return;
    }
    float pt[3];
    hw_advance(m, r->st, y, r->pen, NULL, &r->p, r->rng, pt);
    pthread_mutex_lock(&b->mu);
    const int32_t k = r->drawn;
    memcpy(r->pts + 3 * (size_t)k, pt, sizeof pt);
    r->xy[2 * (size_t)k] = r->pen->x;
    r->xy[2 * (size_t)k + 1] = r->pen->y;
    if (r->act)
        for (int g = 0; g < 4; g++)
            r->act[4 * (size_t)k + g] = act ? (float)act[g] : 0.0f;
    r->drawn = k + 1;
    void (*fn)(void *);
    void *arg;
    sched_req_take_notify(b, &fn, &arg);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (fn)
        fn(arg);
    b->emitted = 1;
}

static const stream_ops pen_ops = {"pen", pen_admit, pen_input, pen_output, NULL};

static void request_destroy(pen_request *r)
{
    free(r->prime);
    free(r->pts);
    free(r->xy);
    free(r->act);
    sched_req_destroy(&r->base);
    free(r);
}

pen_request *pengen_submit(scheduler *s, const model *m, const stroke_stats *st, model_state *state,
                           hw_pen *pen, hyper_rng *rng, const pen_spec *spec)
{
    (void)m;
    if (spec->max_points < 0 || spec->max_points > HW_MAX_POINTS || spec->nprime < 0)
        return NULL;
    pen_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    sched_req_init(&r->base, &pen_ops, state);
    r->st = st;
    r->pen = pen;
    r->rng = rng;
    hw_params_default(&r->p);
    r->p.max_points = spec->max_points;
    r->p.bias = spec->bias;
    r->p.temperature = spec->temperature;
    r->nprime = spec->nprime;
    r->score = spec->score;
    r->hyper = spec->hyper;
    const size_t np = (size_t)(spec->nprime > 0 ? spec->nprime : 1), nd = (size_t)(spec->max_points > 0 ? spec->max_points : 1);
    r->prime = malloc(np * 3 * sizeof *r->prime);
    r->pts = malloc(nd * 3 * sizeof *r->pts);
    r->xy = malloc(nd * 2 * sizeof *r->xy);
    r->act = spec->hyper ? malloc(nd * 4 * sizeof *r->act) : NULL;
    if (!r->prime || !r->pts || !r->xy || (spec->hyper && !r->act)) {
        request_destroy(r);
        return NULL;
    }
    if (spec->nprime > 0)
        memcpy(r->prime, spec->prime, (size_t)spec->nprime * 3 * sizeof *r->prime);
    if (scheduler_enqueue(s, &r->base) != 0) {
        request_destroy(r);
        return NULL;
    }
    return r;
}

static int pen_unread(const sched_req *b)
{
    const pen_request *r = (const pen_request *)b;
    return r->read < r->drawn;
}

size_t pen_request_read(pen_request *r, float *pts, double *xy, float *act, size_t max, int timeout_ms,
                        gen_finish *finished)
{
    *finished = GEN_RUNNING;
    sched_req *b = &r->base;
    pthread_mutex_lock(&b->mu);
    sched_req_wait_locked(b, pen_unread, timeout_ms);
    size_t n = (size_t)(r->drawn - r->read);
    if (n > max)
        n = max;
    const size_t at = (size_t)r->read;
    memcpy(pts, r->pts + 3 * at, n * 3 * sizeof *pts);
    memcpy(xy, r->xy + 2 * at, n * 2 * sizeof *xy);
    if (act) {
        if (r->act)
            memcpy(act, r->act + 4 * at, n * 4 * sizeof *act);
        else
            memset(act, 0, n * 4 * sizeof *act);
    }
    r->read += (int32_t)n;
    if (b->ended && r->read == r->drawn)
        *finished = b->finish;
    pthread_mutex_unlock(&b->mu);
    return n;
}

void pen_request_notify(pen_request *r, void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
{
    sched_req_notify(&r->base, pen_unread, fn, drop, arg);
}

void pen_request_notify_end(pen_request *r, void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
{
    sched_req_notify(&r->base, NULL, fn, drop, arg);
}

int pen_request_wait_ms(pen_request *r, int timeout_ms) { return sched_req_wait_ms(&r->base, timeout_ms); }
void pen_request_cancel(pen_request *r) { sched_req_cancel(&r->base); }
gen_finish pen_request_finish(pen_request *r) { return r->base.finish; }
int32_t pen_request_primed(pen_request *r) { return r->primed; }
int32_t pen_request_drawn(pen_request *r) { return r->drawn; }
double pen_request_nats(pen_request *r) { return r->nats; }

void pen_request_free(pen_request *r)
{
    if (!r)
        return;
    pen_request_cancel(r);
    sched_req_wait(&r->base);
    request_destroy(r);
}
