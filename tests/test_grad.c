/*
 * test_grad.c — every gradient of every cell type against central finite differences.
 *
 * Built against the double-precision engine (libhyper64.a), where a correct backward
 * agrees with the differences to about 1e-9 and a single wrong term shows up far above
 * the 1e-5 tolerance.  Weights are drawn at random (not the paper's initialisation, whose
 * zeros would hide whole paths) and the initial state is non-zero.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define B 2
#define T 3

typedef struct {
    model m;
    model_state s0;      /* the state every evaluation starts from */
    model_state s;
    model_train_ws *ws;
    int32_t ids[T * B], targets[T * B];
    real *x;             /* (T, B, I) dense inputs, when cfg.inputs > 0 */
    real *proj;          /* (T, B, N) random projection for the dense loss */
    int strokes;         /* 1: the handwriting head (inputs 3, M = 2 mixtures) */
    float pts[T * B * 3], mask[T * B];
    double keep;
    uint64_t drop_seed;
} gc_case;

static void randomize(real *p, size_t n, hyper_rng *rng, double scale)
{
    for (size_t k = 0; k < n; k++)
        p[k] = (real)(scale * hyper_rng_normal(rng));
}

static void gc_setup(gc_case *gc, cell_kind cell, int layers, int inputs, double keep)
{
    memset(gc, 0, sizeof *gc);
    model_config cfg = {cell, layers, 5, 3, 2, inputs, inputs == 3 ? 13 : 6};
    gc->strokes = inputs == 3;
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(model_create(&gc->m, &cfg, err), HYPER_OK);
    hyper_rng rng;
    hyper_rng_seed(&rng, 1234 + (uint64_t)cell * 7 + (uint64_t)layers);
    randomize(gc->m.block, gc->m.size, &rng, 0.4);
    ck_assert_int_eq(model_state_init(&gc->s0, &cfg, B, err), HYPER_OK);
    ck_assert_int_eq(model_state_init(&gc->s, &cfg, B, err), HYPER_OK);
    randomize(gc->s0.block, gc->s0.size, &rng, 0.5);
    gc->ws = model_train_ws_new(&cfg, B, T);
    ck_assert_ptr_nonnull(gc->ws);
    for (int k = 0; k < T * B; k++) {
        gc->ids[k] = (int32_t)(hyper_rng_next(&rng) % (uint64_t)cfg.outputs);
        gc->targets[k] = (int32_t)(hyper_rng_next(&rng) % (uint64_t)cfg.outputs);
    }
    if (inputs > 0) {
        gc->x = malloc((size_t)T * B * inputs * sizeof(real));
        gc->proj = malloc((size_t)T * B * cfg.units * sizeof(real));
        randomize(gc->x, (size_t)T * B * inputs, &rng, 1.0);
        randomize(gc->proj, (size_t)T * B * cfg.units, &rng, 1.0);
    }
    for (int k = 0; k < T * B; k++) {
        gc->pts[3 * k] = (float)hyper_rng_normal(&rng);
        gc->pts[3 * k + 1] = (float)hyper_rng_normal(&rng);
        gc->pts[3 * k + 2] = (float)(k % 3 == 0);
        gc->mask[k] = k == T * B - 1 ? 0.0f : 1.0f; /* the last row is padding */
    }
    gc->keep = keep;
    gc->drop_seed = 99;
}

static void gc_teardown(gc_case *gc)
{
    model_train_ws_free(gc->ws);
    model_state_free(&gc->s0);
    model_state_free(&gc->s);
    model_free(&gc->m);
    free(gc->x);
    free(gc->proj);
}

/* The loss, and with grad != NULL its gradient.  The same dropout masks every call. */
static double gc_loss(gc_case *gc, real *grad)
{
    memcpy(gc->s.block, gc->s0.block, gc->s0.size * sizeof(real));
    hyper_rng rng;
    hyper_rng_seed(&rng, gc->drop_seed);
    dropout_spec drop = {gc->keep, &rng};
    const int N = gc->m.cfg.units;
    if (gc->m.cfg.inputs == 0) {
        double loss = model_forward_charlm(&gc->m, &gc->s, gc->ws, gc->ids, gc->targets, &drop);
        if (grad)
            model_backward_charlm(&gc->m, gc->ws, grad);
        return loss;
    }
    if (gc->strokes) {
        double loss = model_forward_strokes(&gc->m, &gc->s, gc->ws, gc->x, gc->pts, gc->mask, &drop, NULL);
        if (grad)
            model_backward_strokes(&gc->m, gc->ws, grad, 1);
        return loss;
    }
    /* dense input: loss = Σ proj ⊙ h_top (exercises dh_top and the dense input path) */
    const real *h = model_forward_stack(&gc->m, &gc->s, gc->ws, NULL, gc->x, &drop);
    double loss = 0;
    for (size_t k = 0; k < (size_t)T * B * N; k++)
        loss += (double)gc->proj[k] * h[k];
    if (grad)
        model_backward_stack(&gc->m, gc->ws, gc->proj, grad);
    return loss;
}

static void gradcheck(cell_kind cell, int layers, int inputs, double keep)
{
    gc_case gc;
    gc_setup(&gc, cell, layers, inputs, keep);
    real *grad = calloc(gc.m.size, sizeof(real));
    gc_loss(&gc, grad);
    const double eps = 1e-5;
    double worst = 0;
    int worst_t = -1;
    size_t worst_k = 0;
    for (int i = 0; i < gc.m.nparams; i++) {
        const param_info *p = &gc.m.table[i];
        for (size_t k = 0; k < p->size; k++) {
            real *w = gc.m.block + p->offset + k;
            real saved = *w;
            *w = saved + (real)eps;
            double lp = gc_loss(&gc, NULL);
            *w = saved - (real)eps;
            double lm = gc_loss(&gc, NULL);
            *w = saved;
            double num = (lp - lm) / (2 * eps), ana = grad[p->offset + k];
            double rel = fabs(num - ana) / fmax(fabs(num) + fabs(ana), 1e-4);
            if (rel > worst) {
                worst = rel;
                worst_t = i;
                worst_k = k;
            }
        }
    }
    if (worst >= 1e-5)
        fprintf(stderr, "%s L=%d inputs=%d keep=%.2f: worst relative error %.3e at %s[%zu]\n",
                cell_kind_str(cell), layers, inputs, keep, worst, gc.m.table[worst_t].name,
                worst_k);
    ck_assert_msg(worst < 1e-5, "%s: max relative error %.3e at %s[%zu]", cell_kind_str(cell),
                  worst, gc.m.table[worst_t].name, worst_k);
    free(grad);
    gc_teardown(&gc);
}

START_TEST(grad_charlm_two_layers)
{
    gradcheck((cell_kind)_i, 2, 0, 1.0);
}
END_TEST

START_TEST(grad_charlm_dropout)
{
    gradcheck((cell_kind)_i, 1, 0, 0.7);
}
END_TEST

START_TEST(grad_dense_input)
{
    gradcheck((cell_kind)_i, 2, 3, 1.0);
}
END_TEST

/* The handwriting model: dense (dx, dy, eos) input, mixture-density head, a padded row. */
START_TEST(grad_strokes)
{
    gradcheck((cell_kind)_i, 2, 3, 0.8);
}
END_TEST

/* The check the gradient test relies on: a deliberately broken gradient must fail it. */
START_TEST(grad_check_catches_a_wrong_term)
{
    gc_case gc;
    gc_setup(&gc, CELL_LNHYPERLSTM, 1, 0, 1.0);
    real *grad = calloc(gc.m.size, sizeof(real));
    gc_loss(&gc, grad);
    model_params G;
    model_params_point(&gc.m.cfg, grad, &G);
    G.layer[0].Wd_x[3] *= 1.001; /* a 0.1% error in one entry */
    real saved = gc.m.p.layer[0].Wd_x[3];
    const double eps = 1e-6;
    gc.m.p.layer[0].Wd_x[3] = saved + (real)eps;
    double lp = gc_loss(&gc, NULL);
    gc.m.p.layer[0].Wd_x[3] = saved - (real)eps;
    double lm = gc_loss(&gc, NULL);
    gc.m.p.layer[0].Wd_x[3] = saved;
    double num = (lp - lm) / (2 * eps), ana = G.layer[0].Wd_x[3];
    ck_assert_msg(fabs(num - ana) / (fabs(num) + fabs(ana)) > 1e-5,
                  "a 0.1%% error went unseen (num %.9g, ana %.9g)", num, ana);
    free(grad);
    gc_teardown(&gc);
}
END_TEST

Suite *grad_suite(void)
{
    Suite *s = suite_create("gradients");
    TCase *tc = tcase_create("finite differences");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, grad_charlm_two_layers, 0, CELL_COUNT);
    tcase_add_loop_test(tc, grad_charlm_dropout, 0, CELL_COUNT);
    tcase_add_loop_test(tc, grad_dense_input, 0, CELL_COUNT);
    tcase_add_loop_test(tc, grad_strokes, 0, CELL_COUNT);
    tcase_add_test(tc, grad_check_catches_a_wrong_term);
    suite_add_tcase(s, tc);
    return s;
}
