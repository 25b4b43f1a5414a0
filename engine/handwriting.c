/*
 * handwriting.c — one step of a drawing pen (handwriting.h).
 */
#include "handwriting.h"

#include <stdlib.h>
#include <string.h>

#include "trainer.h"

void hw_params_default(hw_params *p)
{
    p->max_points = 700;
    p->bias = 0;
    p->temperature = 1;
    p->seed = 1;
}

hyper_status hw_params_check(const hw_params *p, char *err)
{
    if (p->max_points < 1 || p->max_points > HW_MAX_POINTS)
        return hyper_fail(err, HYPER_ERR_ARG, "max_points: %d is outside 1..%d", p->max_points, HW_MAX_POINTS);
    if (!(p->bias >= 0 && p->bias <= HW_MAX_BIAS))
        return hyper_fail(err, HYPER_ERR_ARG, "bias: %g is outside 0..%g", p->bias, HW_MAX_BIAS);
    if (!(p->temperature > 0 && p->temperature <= 10))
        return hyper_fail(err, HYPER_ERR_ARG, "temperature: %g must be in (0, 10]", p->temperature);
    return HYPER_OK;
}

void hw_pen_start(hw_pen *pen)
{
    pen->last[0] = pen->last[1] = pen->last[2] = 0;
    pen->x = pen->y = 0;
}

int hw_model_ok(const model_config *cfg) { return cfg->inputs == 3 && mdn_mixtures(cfg->outputs) > 0; }

void hw_input(const stroke_stats *st, const hw_pen *pen, real *x) { strokes_normalise(st, pen->last, 1.0, x); }

void hw_advance(const model *m, const stroke_stats *st, const real *y, hw_pen *pen, const float *given,
                const hw_params *p, hyper_rng *rng, float *pt)
{
    float q[3];
    if (given) {
        q[0] = given[0];
        q[1] = given[1];
        q[2] = given[2];
    } else {
        mdn_mixture mx;
        mdn_mix(y, mdn_mixtures(m->cfg.outputs), p->bias, p->temperature, &mx);
        float z[3];
        mdn_draw(&mx, rng, z);
        /* back from normalised units */
        q[0] = (float)(z[0] * st->std_x + st->mean_x);
        q[1] = (float)(z[1] * st->std_y + st->mean_y);
        q[2] = z[2];
    }
    pen->last[0] = q[0];
    pen->last[1] = q[1];
    pen->last[2] = q[2];
    pen->x += q[0];
    pen->y += q[1];
    if (pt) {
        pt[0] = q[0];
        pt[1] = q[1];
        pt[2] = q[2];
    }
}

void hw_step(const model *m, const stroke_stats *st, model_state *s, model_step_ws *ws,
             real *y, hw_pen *pen, const float *given, const hw_params *p, hyper_rng *rng,
             float *pt, float *act)
{
    real x[3];
    hw_input(st, pen, x);
    const int hyper = act && cell_is_hyper((cell_kind)m->cfg.cell);
    real before[MODEL_MAX_HYPER_UNITS];
    if (hyper)
        memcpy(before, s->hh[0], (size_t)m->cfg.hyper_units * sizeof(real));
    model_step(m, s, ws, 1, NULL, x, y);
    if (act) {
        real a[4] = {0, 0, 0, 0};
        if (hyper)
            model_hyper_activity(m, 0, before, s->hh[0], a);
        for (int g = 0; g < 4; g++)
            act[g] = (float)a[g];
    }
    hw_advance(m, st, y, pen, given, p, rng, pt);
}

hyper_status hw_draw(const model *m, const stroke_stats *st, model_state *s, hw_pen *pen,
                     const float *prime, int32_t nprime, const hw_params *p, hyper_rng *rng,
                     float *out, int32_t *n, hw_point_fn cb, void *user, float *act, char *err)
{
    *n = 0;
    hyper_status rc = hw_params_check(p, err);
    if (rc != HYPER_OK)
        return rc;
    if (!hw_model_ok(&m->cfg))
        return hyper_fail(err, HYPER_ERR_ARG, "the model is not a handwriting model");
    model_step_ws *ws = model_step_ws_new(&m->cfg, 1);
    real *y = malloc((size_t)m->cfg.outputs * sizeof *y);
    if (!ws || !y) {
        rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int32_t k = 0; k < nprime; k++)
        hw_step(m, st, s, ws, y, pen, prime + 3 * k, p, rng, NULL, NULL);
    for (int32_t k = 0; k < p->max_points; k++) {
        hw_step(m, st, s, ws, y, pen, NULL, p, rng, out + 3 * k, act ? act + 4 * k : NULL);
        *n = k + 1;
        if (cb && cb(out + 3 * k, pen->x, pen->y, user)) {
            rc = hyper_fail(err, HYPER_ERR_CANCELLED, "drawing stopped after %d points", k + 1);
            break;
        }
    }
out:
    free(y);
    model_step_ws_free(ws);
    return rc;
}
