/*
 * test_training.c — the trainer end to end on real files: a small model learns a repeated
 * text, a resumed run equals an uninterrupted one bit for bit, mismatched resumes are
 * refused, and evaluation agrees with a step-by-step computation.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "model.h"
#include "sampler.h"
#include "trainer.h"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/hyper-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes `reps` copies of line into dir/name and returns the path (static buffer). */
static const char *write_text(const char *name, const char *line, int reps)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int k = 0; k < reps; k++)
        fputs(line, f);
    fclose(f);
    return path;
}

static const char *PANGRAM = "the quick brown fox jumps over the lazy dog. ";

START_TEST(small_model_overfits_repeated_text)
{
    make_dir();
    corpus c;
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(corpus_load(&c, write_text("fox.txt", PANGRAM, 300), 1 << 20, NULL, 0.25, err), HYPER_OK);
    model_config cfg = {CELL_LNHYPERLSTM, 1, 48, 16, 4, 0, c.voc.size};
    train_params tp;
    train_params_default(&tp);
    tp.batch = 8;
    tp.seq = 32;
    tp.lr = 0.01;
    tp.steps = 300;
    tp.eval_every = 0;
    trainer *t = NULL;
    ck_assert_int_eq(trainer_new(&t, &cfg, &tp, &(train_data){.text = &c, .strokes = NULL}, err), HYPER_OK);
    ck_assert_int_eq(trainer_run(t, 50, NULL, NULL, NULL, err), HYPER_OK);
    double bpc = trainer_eval(t);
    ck_assert_msg(bpc < 0.1, "held-out bpc %.4f after %d steps, want < 0.1", bpc, (int)tp.steps);
    trainer_free(t);
    corpus_free(&c);
    remove_dir();
}
END_TEST

static void run_to(trainer *t, const char *ckpt)
{
    char err[HYPER_ERRMSG_MAX];
    ck_assert_msg(trainer_run(t, 1, NULL, NULL, ckpt, err) == HYPER_OK, "%s", err);
}

START_TEST(resume_equals_uninterrupted)
{
    make_dir();
    corpus c;
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(corpus_load(&c, write_text("t.txt", "Abracadabra, said the wizard; ", 80), 1 << 20, NULL, 0.1, err), HYPER_OK);
    model_config cfg = {(cell_kind)_i, 2, 16, 8, 2, 0, c.voc.size};
    train_params tp;
    train_params_default(&tp);
    tp.batch = 4;
    tp.seq = 10;
    tp.keep = 0.9;          /* the dropout RNG must be restored too */
    tp.eval_every = 3;
    tp.checkpoint_every = 0;
    char half[160], full[160];
    snprintf(half, sizeof half, "%s/half.train", dir);
    snprintf(full, sizeof full, "%s/full.train", dir);
    /* stop after 7 steps (state carried mid-slice) */
    tp.steps = 7;
    trainer *a = NULL;
    ck_assert_int_eq(trainer_new(&a, &cfg, &tp, &(train_data){.text = &c, .strokes = NULL}, err), HYPER_OK);
    run_to(a, half);
    trainer_free(a);
    /* uninterrupted 15 steps */
    tp.steps = 15;
    trainer *u = NULL;
    ck_assert_int_eq(trainer_new(&u, &cfg, &tp, &(train_data){.text = &c, .strokes = NULL}, err), HYPER_OK);
    run_to(u, full);
    /* resumed from step 7 to 15 */
    trainer *r = NULL;
    ck_assert_msg(trainer_resume(&r, half, &tp, &(train_data){.text = &c, .strokes = NULL}, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(trainer_steps_done(r), 7);
    run_to(r, NULL);
    const model *mu = trainer_model(u), *mr = trainer_model(r);
    ck_assert_uint_eq(mu->size, mr->size);
    ck_assert_msg(memcmp(mu->block, mr->block, mu->size * sizeof(real)) == 0,
                  "resumed weights differ from the uninterrupted run");
    /* a resume that changes a recorded parameter is refused with its name */
    trainer *bad = NULL;
    train_params tp2 = tp;
    tp2.lr = 0.5;
    ck_assert_int_eq(trainer_resume(&bad, half, &tp2, &(train_data){.text = &c, .strokes = NULL}, err), HYPER_ERR_ARG);
    ck_assert_msg(strstr(err, "lr") != NULL, "message does not name lr: %s", err);
    ck_assert_ptr_null(bad);
    /* a plain model file is not a training checkpoint */
    char plain[160];
    snprintf(plain, sizeof plain, "%s/plain.safetensors", dir);
    ck_assert_int_eq(trainer_save_model(u, plain, err), HYPER_OK);
    ck_assert_int_ne(trainer_resume(&bad, plain, &tp, &(train_data){.text = &c, .strokes = NULL}, err), HYPER_OK);
    trainer_free(u);
    trainer_free(r);
    corpus_free(&c);
    remove_dir();
}
END_TEST

START_TEST(unknown_characters_are_named)
{
    make_dir();
    corpus base, other;
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(corpus_load(&base, write_text("a.txt", "abc abc ", 10), 1 << 20, NULL, 0.1, err), HYPER_OK);
    ck_assert_int_eq(corpus_load(&other, write_text("b.txt", "abcé", 1), 1 << 20, &base.voc, 0.1, err), HYPER_ERR_VOCAB);
    ck_assert_msg(strstr(err, "U+00E9") != NULL, "message does not name é: %s", err);
    ck_assert_int_eq(corpus_load(&other, "/nonexistent/file.txt", 1 << 20, NULL, 0.1, err), HYPER_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/file.txt"));
    corpus_free(&base);
    remove_dir();
}
END_TEST

START_TEST(too_short_text_is_refused)
{
    make_dir();
    corpus c;
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(corpus_load(&c, write_text("s.txt", "tiny", 1), 1 << 20, NULL, 0.0, err), HYPER_OK);
    model_config cfg = {CELL_LSTM, 1, 8, 0, 0, 0, c.voc.size};
    train_params tp;
    train_params_default(&tp);
    trainer *t = NULL;
    ck_assert_int_eq(trainer_new(&t, &cfg, &tp, &(train_data){.text = &c, .strokes = NULL}, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "too short"));
    corpus_free(&c);
    remove_dir();
}
END_TEST

START_TEST(eval_matches_step_by_step)
{
    model_config cfg = {CELL_HYPERLSTM, 1, 16, 8, 2, 0, 7};
    model m;
    ck_assert_int_eq(model_create(&m, &cfg, NULL), HYPER_OK);
    model_init(&m, 4);
    hyper_rng rng;
    hyper_rng_seed(&rng, 2);
    for (size_t k = 0; k < m.size; k++)
        m.block[k] += (real)(0.1 * hyper_rng_normal(&rng));
    int32_t ids[53];
    for (int k = 0; k < 53; k++)
        ids[k] = (int32_t)(hyper_rng_next(&rng) % 7);
    double bpc = 0;
    size_t count = 0;
    ck_assert_int_eq(model_eval_bpc(&m, ids, 53, 1, 10, &bpc, &count, NULL), HYPER_OK);
    ck_assert_uint_eq(count, 52);
    model_state s;
    model_state_init(&s, &cfg, 1, NULL);
    model_step_ws *ws = model_step_ws_new(&cfg, 1);
    real logits[7];
    double bits = 0;
    for (int k = 0; k < 52; k++) {
        model_step(&m, &s, ws, 1, &ids[k], NULL, logits);
        bits -= sampler_log2_prob(logits, 7, ids[k + 1]);
    }
    ck_assert_msg(fabs(bits / 52 - bpc) < 1e-5, "eval %.7f vs steps %.7f", bpc, bits / 52);
    model_step_ws_free(ws);
    model_state_free(&s);
    model_free(&m);
}
END_TEST

Suite *training_suite(void)
{
    Suite *s = suite_create("training");
    TCase *tc = tcase_create("trainer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, small_model_overfits_repeated_text);
    tcase_add_loop_test(tc, resume_equals_uninterrupted, 0, CELL_COUNT);
    tcase_add_test(tc, unknown_characters_are_named);
    tcase_add_test(tc, too_short_text_is_refused);
    tcase_add_test(tc, eval_matches_step_by_step);
    suite_add_tcase(s, tc);
    return s;
}
