/*
 * test_handwriting.c — the handwriting model end to end: it learns a family of looping
 * strokes, a resumed run equals an uninterrupted one bit for bit (also in the middle of a
 * batch of lines), evaluation agrees with a point-by-point computation, the saved model
 * carries its normalisation, and drawing is deterministic for a seed and follows priming.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "handwriting.h"
#include "mdn.h"
#include "model.h"
#include "trainer.h"

/* A stroke corpus of n lines of loops ("eeee" written in one stroke, then a dot), each with
 * its own phase, size and length; the last quarter is validation. */
static void make_loops(stroke_corpus *c, int n, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    strokes_init(&c->set);
    hyper_rng rng;
    hyper_rng_seed(&rng, seed);
    double xy[2 * 200];
    for (int k = 0; k < n; k++) {
        const int len = 40 + (int)(hyper_rng_next(&rng) % 60);
        const double r = 8 + 4 * hyper_rng_uniform(&rng), ph = 6.28 * hyper_rng_uniform(&rng);
        for (int i = 0; i < len; i++) {
            double t = 0.45 * i + ph;
            xy[2 * i] = 3.0 * i + r * cos(t);
            xy[2 * i + 1] = r * sin(t);
        }
        xy[2 * len] = xy[2 * len - 2] + 15;
        xy[2 * len + 1] = -20;
        int32_t lens[2] = {len, 1};
        char err[HYPER_ERRMSG_MAX];
        ck_assert_int_eq(strokes_add_line(&c->set, "eeee.", xy, lens, 2, err), HYPER_OK);
    }
    c->n_train = n - n / 4;
    stroke_set train = c->set;
    train.n = c->n_train;
    c->stats = strokes_stats(&train);
}

static model_config hw_config(cell_kind cell, int N)
{
    model_config cfg = {cell, 1, N, 8, 2, 3, mdn_outputs(3)};
    return cfg;
}

START_TEST(stroke_model_learns_loops)
{
    stroke_corpus c;
    make_loops(&c, 64, 1);
    model_config cfg = hw_config(CELL_LNHYPERLSTM, 32);
    train_params tp;
    train_params_default(&tp);
    tp.batch = 8;
    tp.seq = 40;
    tp.lr = 0.01;
    tp.steps = 150;
    tp.eval_every = 0;
    char err[HYPER_ERRMSG_MAX];
    trainer *t = NULL;
    ck_assert_msg(trainer_new(&t, &cfg, &tp, &(train_data){.text = NULL, .strokes = &c}, err) == HYPER_OK, "%s", err);
    double before = trainer_eval(t);
    ck_assert_int_eq(trainer_run(t, 50, NULL, NULL, NULL, err), HYPER_OK);
    double after = trainer_eval(t);
    /* per line of ~70 points: a model that has learnt the loops predicts each move far
     * better than the untrained one */
    ck_assert_msg(isfinite(before) && after < before - 100, "log-loss per line %.1f → %.1f", before, after);
    trainer_free(t);
    stroke_corpus_free(&c);
}
END_TEST

static void run_steps(trainer *t, const char *ckpt)
{
    char err[HYPER_ERRMSG_MAX];
    ck_assert_msg(trainer_run(t, 1, NULL, NULL, ckpt, err) == HYPER_OK, "%s", err);
}

START_TEST(stroke_resume_equals_uninterrupted)
{
    char dir[] = "/tmp/hyper-hw-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    stroke_corpus c;
    make_loops(&c, 20, 2);
    model_config cfg = hw_config((cell_kind)_i, 12);
    train_params tp;
    train_params_default(&tp);
    tp.batch = 3;
    tp.seq = 16;       /* lines of 40..100 points: several segments per batch */
    tp.keep = 0.9;
    tp.eval_every = 4;
    tp.checkpoint_every = 0;
    char half[160], err[HYPER_ERRMSG_MAX];
    snprintf(half, sizeof half, "%s/half.train", dir);
    tp.steps = 5;      /* stops in the middle of the second batch of lines */
    trainer *a = NULL;
    ck_assert_int_eq(trainer_new(&a, &cfg, &tp, &(train_data){.text = NULL, .strokes = &c}, err), HYPER_OK);
    run_steps(a, half);
    trainer_free(a);
    tp.steps = 14;
    trainer *u = NULL, *r = NULL;
    ck_assert_int_eq(trainer_new(&u, &cfg, &tp, &(train_data){.text = NULL, .strokes = &c}, err), HYPER_OK);
    run_steps(u, NULL);
    ck_assert_msg(trainer_resume(&r, half, &tp, &(train_data){.text = NULL, .strokes = &c}, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(trainer_steps_done(r), 5);
    run_steps(r, NULL);
    const model *mu = trainer_model(u), *mr = trainer_model(r);
    ck_assert_msg(memcmp(mu->block, mr->block, mu->size * sizeof(real)) == 0,
                  "resumed weights differ from the uninterrupted run");
    /* other strokes are refused */
    stroke_corpus other;
    make_loops(&other, 20, 3);
    trainer *bad = NULL;
    ck_assert_int_eq(trainer_resume(&bad, half, &tp, &(train_data){.text = NULL, .strokes = &other}, err), HYPER_ERR_ARG);
    ck_assert_msg(strstr(err, "differs") != NULL, "%s", err);
    stroke_corpus_free(&other);
    trainer_free(u);
    trainer_free(r);
    stroke_corpus_free(&c);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* model_eval_strokes against model_step + mdn_loss one point at a time, line by line. */
START_TEST(stroke_eval_matches_step_by_step)
{
    stroke_corpus c;
    make_loops(&c, 5, 4);
    model_config cfg = hw_config(CELL_HYPERLSTM, 10);
    model m;
    ck_assert_int_eq(model_create(&m, &cfg, NULL), HYPER_OK);
    model_init(&m, 9);
    hyper_rng rng;
    hyper_rng_seed(&rng, 10);
    for (size_t k = 0; k < m.size; k++)
        m.block[k] += (real)(0.05 * hyper_rng_normal(&rng));
    double loss = 0;
    size_t points = 0;
    char err[HYPER_ERRMSG_MAX];
    /* 2 streams, 7 steps at a time: groups and segments both have ragged ends */
    ck_assert_int_eq(model_eval_strokes(&m, &c.stats, c.set.lines, 5, 2, 7, &loss, &points, err), HYPER_OK);
    model_state s;
    model_state_init(&s, &cfg, 1, NULL);
    model_step_ws *ws = model_step_ws_new(&cfg, 1);
    real y[19], x[3], tg[3];
    double want = 0;
    size_t count = 0;
    for (int k = 0; k < 5; k++) {
        const stroke_line *ln = &c.set.lines[k];
        model_state_zero(&s);
        for (int i = 0; i + 1 < ln->npoints; i++) {
            strokes_normalise(&c.stats, ln->pts + 3 * i, 1.0, x);
            model_step(&m, &s, ws, 1, NULL, x, y);
            strokes_normalise(&c.stats, ln->pts + 3 * (i + 1), 1.0, tg);
            float p[3] = {(float)tg[0], (float)tg[1], (float)tg[2]};
            want += mdn_loss(y, 3, p, NULL, 0);
            count++;
        }
    }
    want /= 5;
    ck_assert_uint_eq(points, count);
    ck_assert_msg(fabs(loss - want) < 1e-4 * fabs(want), "eval %.6f vs steps %.6f", loss, want);
    model_step_ws_free(ws);
    model_state_free(&s);
    model_free(&m);
    stroke_corpus_free(&c);
}
END_TEST

/* A saved model carries its normalisation; drawing from it is deterministic per seed,
 * seeds differ, and priming changes what follows. */
START_TEST(drawing_is_deterministic_and_primed)
{
    char dir[] = "/tmp/hyper-hw-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    stroke_corpus c;
    make_loops(&c, 16, 5);
    model_config cfg = hw_config(CELL_LNHYPERLSTM, 16);
    train_params tp;
    train_params_default(&tp);
    tp.batch = 4;
    tp.seq = 20;
    tp.steps = 5;
    tp.eval_every = 0;
    char err[HYPER_ERRMSG_MAX], path[160];
    snprintf(path, sizeof path, "%s/hw.safetensors", dir);
    trainer *t = NULL;
    ck_assert_int_eq(trainer_new(&t, &cfg, &tp, &(train_data){.text = NULL, .strokes = &c}, err), HYPER_OK);
    run_steps(t, NULL);
    ck_assert_int_eq(trainer_save_model(t, path, err), HYPER_OK);
    trainer_free(t);
    checkpoint *ck = NULL;
    ck_assert_int_eq(checkpoint_open(path, &ck, err), HYPER_OK);
    stroke_stats st;
    ck_assert_int_eq(strokes_stats_from_meta(ck, &st, err), HYPER_OK);
    ck_assert_double_eq_tol(st.std_x, c.stats.std_x, 1e-12);
    ck_assert_double_eq_tol(st.mean_y, c.stats.mean_y, 1e-12);
    ck_assert_str_eq(checkpoint_meta(ck, "kind"), "handwriting");
    model m;
    ck_assert_int_eq(checkpoint_load_model(ck, &m, NULL, err), HYPER_OK);
    checkpoint_close(ck);
    ck_assert(hw_model_ok(&m.cfg));
    hw_params hp;
    hw_params_default(&hp);
    hp.max_points = 60;
    float out[4][60 * 3];
    const uint64_t seeds[4] = {7, 7, 8, 7};
    for (int run = 0; run < 4; run++) {
        model_state s;
        model_state_init(&s, &m.cfg, 1, NULL);
        hw_pen pen;
        hw_pen_start(&pen);
        hyper_rng rng;
        hyper_rng_seed(&rng, seeds[run]);
        int32_t n = 0;
        const stroke_line *prime = run == 3 ? &c.set.lines[0] : NULL;
        ck_assert_int_eq(hw_draw(&m, &st, &s, &pen, prime ? prime->pts : NULL, prime ? prime->npoints : 0,
                                 &hp, &rng, out[run], &n, NULL, NULL, NULL, err), HYPER_OK);
        ck_assert_int_eq(n, 60);
        for (int k = 0; k < 60 * 3; k++)
            ck_assert(isfinite(out[run][k]));
        model_state_free(&s);
    }
    ck_assert_msg(memcmp(out[0], out[1], sizeof out[0]) == 0, "the same seed drew differently");
    ck_assert_msg(memcmp(out[0], out[2], sizeof out[0]) != 0, "two seeds drew the same");
    ck_assert_msg(memcmp(out[0], out[3], sizeof out[0]) != 0, "priming changed nothing");
    /* bad parameters are refused by name */
    hp.bias = -1;
    model_state s;
    model_state_init(&s, &m.cfg, 1, NULL);
    hw_pen pen;
    hw_pen_start(&pen);
    hyper_rng rng;
    hyper_rng_seed(&rng, 1);
    int32_t n = 0;
    ck_assert_int_eq(hw_draw(&m, &st, &s, &pen, NULL, 0, &hp, &rng, out[0], &n, NULL, NULL, NULL, err), HYPER_ERR_ARG);
    ck_assert_msg(strstr(err, "bias") != NULL, "%s", err);
    model_state_free(&s);
    model_free(&m);
    stroke_corpus_free(&c);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(stroke_trainer_refuses_a_text_model)
{
    stroke_corpus c;
    make_loops(&c, 8, 6);
    model_config cfg = {CELL_LSTM, 1, 8, 0, 0, 0, 10}; /* one-hot, 10 outputs */
    train_params tp;
    train_params_default(&tp);
    trainer *t = NULL;
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(trainer_new(&t, &cfg, &tp, &(train_data){.text = NULL, .strokes = &c}, err), HYPER_ERR_ARG);
    ck_assert_msg(strstr(err, "handwriting model") != NULL, "%s", err);
    ck_assert_int_eq(trainer_new(&t, &cfg, &tp, &(train_data){.text = NULL, .strokes = NULL}, err), HYPER_ERR_ARG);
    ck_assert_ptr_null(t);
    stroke_corpus_free(&c);
}
END_TEST

Suite *handwriting_suite(void)
{
    Suite *s = suite_create("handwriting");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stroke_model_learns_loops);
    tcase_add_loop_test(tc, stroke_resume_equals_uninterrupted, 0, CELL_COUNT);
    tcase_add_test(tc, stroke_eval_matches_step_by_step);
    tcase_add_test(tc, drawing_is_deterministic_and_primed);
    tcase_add_test(tc, stroke_trainer_refuses_a_text_model);
    suite_add_tcase(s, tc);
    return s;
}
