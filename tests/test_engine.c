/*
 * test_engine.c — the paper's parameter counts, the BLAS path against the naive product,
 * the step-by-step inference path against the training forward, and sampling determinism.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "model.h"
#include "sampler.h"

/* ---- parameter counts (paper Table 2 / §4.3; exact with the structure of model.h) ---- */

static const struct {
    cell_kind cell;
    int32_t N, H, Z, inputs, outputs;
    size_t count;
} counts[] = {
    {CELL_LSTM, 1000, 128, 4, 0, 50, 4254050},
    {CELL_LNLSTM, 1000, 128, 4, 0, 50, 4264050},
    {CELL_HYPERLSTM, 1000, 128, 4, 0, 50, 4911874},
    {CELL_LNHYPERLSTM, 1000, 128, 4, 0, 50, 4923154},
    {CELL_LSTM, 1250, 128, 4, 0, 50, 6567550},
    {CELL_LSTM, 1800, 256, 64, 0, 205, 14812405},
    {CELL_HYPERLSTM, 1800, 256, 64, 0, 205, 18708213},
    {CELL_LSTM, 900, 128, 4, 3, 121, 3363421},
    {CELL_HYPERLSTM, 900, 128, 4, 3, 121, 3941181},
    {CELL_LNHYPERLSTM, 900, 128, 4, 3, 121, 3951461},
};

START_TEST(param_counts_match_the_paper)
{
    model_config c = {counts[_i].cell, 1, counts[_i].N, counts[_i].H, counts[_i].Z,
                      counts[_i].inputs, counts[_i].outputs};
    ck_assert_int_eq(model_config_check(&c, NULL), HYPER_OK);
    size_t got = model_param_count(&c);
    ck_assert_msg(got == counts[_i].count, "%s N=%d: %zu parameters, want %zu",
                  cell_kind_str(counts[_i].cell), counts[_i].N, got, counts[_i].count);
}
END_TEST

START_TEST(param_table_is_contiguous_and_named_uniquely)
{
    model_config c = {CELL_LNHYPERLSTM, 3, 16, 8, 2, 0, 11};
    param_info t[MODEL_MAX_PARAMS];
    size_t total = 0;
    int n = model_param_table(&c, t, &total);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_uint_eq(t[i].offset, at);
        at += t[i].size;
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(t[i].name, t[j].name);
    }
    ck_assert_uint_eq(at, total);
    /* a second layer reads N, not V */
    model_config one = c;
    one.layers = 1;
    size_t per_layer_above = model_param_count(&c) - model_param_count(&one);
    ck_assert_uint_eq(per_layer_above % 2, 0);
}
END_TEST

START_TEST(config_limits_are_checked)
{
    model_config ok = {CELL_HYPERLSTM, 1, 8, 4, 2, 0, 5};
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(model_config_check(&ok, err), HYPER_OK);
    model_config bad = ok;
    bad.units = 0;
    ck_assert_int_eq(model_config_check(&bad, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "units"));
    bad = ok;
    bad.embed = 0;
    ck_assert_int_eq(model_config_check(&bad, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "embed"));
    bad = ok;
    bad.layers = MODEL_MAX_LAYERS + 1;
    ck_assert_int_eq(model_config_check(&bad, err), HYPER_ERR_ARG);
    bad = ok;
    bad.cell = 9;
    ck_assert_int_eq(model_config_check(&bad, err), HYPER_ERR_ARG);
}
END_TEST

/* ---- the BLAS path against the reference ---------------------------------------------- */

START_TEST(blas_matches_naive)
{
    hyper_rng rng;
    hyper_rng_seed(&rng, 5);
    const int shapes[][3] = {{1, 37, 19}, {7, 33, 65}, {64, 96, 128}, {3, 1, 5}, {1, 200, 512}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int acc = 0; acc < 2; acc++) {
                    const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    real *A = malloc((size_t)M * K * sizeof(real));
                    real *B = malloc((size_t)K * N * sizeof(real));
                    real *C1 = malloc((size_t)M * N * sizeof(real));
                    real *C2 = malloc((size_t)M * N * sizeof(real));
                    for (int k = 0; k < M * K; k++) A[k] = (real)hyper_rng_normal(&rng);
                    for (int k = 0; k < K * N; k++) B[k] = (real)hyper_rng_normal(&rng);
                    for (int k = 0; k < M * N; k++) C1[k] = C2[k] = (real)hyper_rng_normal(&rng);
                    const int lda = ta ? M : K, ldb = tb ? K : N;
                    mm(ta, tb, M, N, K, A, lda, B, ldb, (real)acc, C1, N);
                    mm_naive(ta, tb, M, N, K, A, lda, B, ldb, (real)acc, C2, N);
                    double worst = 0;
                    for (int k = 0; k < M * N; k++)
                        worst = fmax(worst, fabs((double)C1[k] - C2[k]) / (1 + fabs((double)C2[k])));
                    ck_assert_msg(worst < 1e-4, "M=%d N=%d K=%d ta=%d tb=%d acc=%d: max diff %.3e",
                                  M, N, K, ta, tb, acc, worst);
                    free(A); free(B); free(C1); free(C2);
                }
}
END_TEST

/* ---- inference equals the training forward ------------------------------------------ */

START_TEST(step_matches_sequence_forward)
{
    const int B = 3, T = 7;
    model_config c = {(cell_kind)_i, 2, 12, 6, 3, 0, 9};
    model m;
    ck_assert_int_eq(model_create(&m, &c, NULL), HYPER_OK);
    model_init(&m, 3);
    /* perturb the hyper initialisation so every path carries signal */
    hyper_rng rng;
    hyper_rng_seed(&rng, 8);
    for (size_t k = 0; k < m.size; k++)
        m.block[k] += (real)(0.05 * hyper_rng_normal(&rng));
    int32_t ids[T * B], tg[T * B];
    for (int k = 0; k < T * B; k++) {
        ids[k] = (int32_t)(hyper_rng_next(&rng) % 9);
        tg[k] = (int32_t)(hyper_rng_next(&rng) % 9);
    }
    model_state s1, s2;
    model_state_init(&s1, &c, B, NULL);
    model_state_init(&s2, &c, B, NULL);
    model_train_ws *tw = model_train_ws_new(&c, B, T);
    double loss = model_forward_charlm(&m, &s1, tw, ids, tg, NULL);
    model_step_ws *sw = model_step_ws_new(&c, B);
    real logits[3 * 9];
    double nats = 0;
    for (int t = 0; t < T; t++) {
        model_step(&m, &s2, sw, B, ids + t * B, NULL, logits);
        for (int b = 0; b < B; b++)
            nats -= sampler_log2_prob(logits + b * 9, 9, tg[t * B + b]) * M_LN2;
    }
    ck_assert_msg(fabs(nats / (T * B) - loss) < 1e-5, "step loss %.8f vs forward %.8f",
                  nats / (T * B), loss);
    for (size_t k = 0; k < s1.size; k++)
        ck_assert_msg(fabs((double)s1.block[k] - s2.block[k]) < 1e-5, "state differs at %zu", k);
    model_step_ws_free(sw);
    model_train_ws_free(tw);
    model_state_free(&s1);
    model_state_free(&s2);
    model_free(&m);
}
END_TEST

/* ---- sampling determinism ------------------------------------------------------------ */

static void generate(const model *m, uint64_t seed, const sampler_params *sp, int32_t *out, int n)
{
    model_state s;
    model_state_init(&s, &m->cfg, 1, NULL);
    model_step_ws *ws = model_step_ws_new(&m->cfg, 1);
    real *logits = malloc((size_t)m->cfg.outputs * sizeof(real));
    void *scratch = malloc(sampler_scratch_size(m->cfg.outputs));
    hyper_rng rng;
    hyper_rng_seed(&rng, seed);
    int32_t id = 0;
    for (int k = 0; k < n; k++) {
        model_step(m, &s, ws, 1, &id, NULL, logits);
        id = sampler_sample(logits, m->cfg.outputs, sp, &rng, scratch);
        out[k] = id;
    }
    free(logits);
    free(scratch);
    model_step_ws_free(ws);
    model_state_free(&s);
}

START_TEST(sampling_is_deterministic)
{
    model_config c = {CELL_LNHYPERLSTM, 1, 32, 8, 4, 0, 20};
    model m;
    ck_assert_int_eq(model_create(&m, &c, NULL), HYPER_OK);
    model_init(&m, 11);
    sampler_params sp;
    sampler_params_default(&sp);
    sp.top_p = 0.95;
    int32_t a[200], b[200], d[200];
    generate(&m, 42, &sp, a, 200);
    generate(&m, 42, &sp, b, 200);
    generate(&m, 43, &sp, d, 200);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_msg(memcmp(a, d, sizeof a) != 0, "a different seed gave the same 200 characters");
    model_free(&m);
}
END_TEST

Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("model");
    tcase_add_loop_test(tc, param_counts_match_the_paper, 0, (int)(sizeof counts / sizeof counts[0]));
    tcase_add_test(tc, param_table_is_contiguous_and_named_uniquely);
    tcase_add_test(tc, config_limits_are_checked);
    tcase_add_test(tc, blas_matches_naive);
    tcase_add_loop_test(tc, step_matches_sequence_forward, 0, CELL_COUNT);
    tcase_add_test(tc, sampling_is_deterministic);
    suite_add_tcase(s, tc);
    return s;
}
