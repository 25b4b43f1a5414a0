/*
 * test_sampler.c — parameter checks, greedy, top-k, top-p, determinism and the empirical
 * distribution of engine/sampler.h, against softmax computed here independently.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

#define DRAWS 20000
/* Frequencies of DRAWS draws have a standard deviation of at most sqrt(0.25 / 20000) =
 * 0.0035; the seed is fixed, so this is a check of the mapping, not a flaky test. */
#define FREQ_TOL 0.015

/* Draws from a sampler with a scratch block of exactly the advertised size, so a sanitizer
 * build catches any overrun. */
typedef struct {
    hyper_rng rng;
    void *scratch;
} fixture;

static void fixture_init(fixture *f, int32_t n, uint64_t seed)
{
    hyper_rng_seed(&f->rng, seed);
    f->scratch = malloc(sampler_scratch_size(n));
    ck_assert_ptr_nonnull(f->scratch);
}

static void fixture_free(fixture *f) { free(f->scratch); }

/* softmax(l / t) in long double, the reference the sampler is checked against. */
static void softmax_ref(const real *l, int n, double t, double *p)
{
    long double max = l[0], sum = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > max)
            max = l[i];
    for (int i = 0; i < n; i++)
        sum += expl(((long double)l[i] - max) / t);
    for (int i = 0; i < n; i++)
        p[i] = (double)(expl(((long double)l[i] - max) / t) / sum);
}

/* Counts DRAWS samples into freq (n) as fractions; returns the largest |freq - want|. */
static double sample_freq(const real *l, int32_t n, const sampler_params *sp, uint64_t seed,
                          double *freq, const double *want)
{
    fixture f;
    fixture_init(&f, n, seed);
    for (int i = 0; i < n; i++)
        freq[i] = 0.0;
    for (int d = 0; d < DRAWS; d++) {
        int32_t y = sampler_sample(l, n, sp, &f.rng, f.scratch);
        ck_assert_msg(y >= 0 && y < n, "sample %d out of range", y);
        freq[y] += 1.0;    /* counts stay exact; divided once below */
    }
    for (int i = 0; i < n; i++)
        freq[i] /= DRAWS;
    fixture_free(&f);
    double worst = 0.0;
    for (int i = 0; i < n; i++)
        worst = fmax(worst, fabs(freq[i] - want[i]));
    return worst;
}

static const real logits5[5] = {(real)1.0, (real)2.0, (real)0.5, (real)-1.0, (real)3.0};

/* ---- parameters ----------------------------------------------------------------------- */

START_TEST(test_params_default_and_check)
{
    sampler_params sp;
    char err[HYPER_ERRMSG_MAX] = "";
    sampler_params_default(&sp);
    ck_assert(sp.temperature == 1.0 && sp.top_k == 0 && sp.top_p == 1.0);
    ck_assert_int_eq(sampler_params_check(&sp, err), HYPER_OK);

    static const struct {
        double t;
        int32_t k;
        double p;
        const char *field;
    } bad[] = {
        {-0.1, 0, 1.0, "temperature"}, {100.5, 0, 1.0, "temperature"},
        {NAN, 0, 1.0, "temperature"},  {INFINITY, 0, 1.0, "temperature"},
        {1.0, -1, 1.0, "top_k"},       {1.0, 0, 0.0, "top_p"},
        {1.0, 0, -0.5, "top_p"},       {1.0, 0, 1.01, "top_p"},
        {1.0, 0, NAN, "top_p"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sampler_params b = {bad[i].t, bad[i].k, bad[i].p};
        err[0] = '\0';
        ck_assert_msg(sampler_params_check(&b, err) == HYPER_ERR_ARG, "case %zu accepted", i);
        ck_assert_msg(strstr(err, bad[i].field) != NULL, "case %zu: message '%s' lacks %s", i,
                      err, bad[i].field);
        ck_assert_int_eq(sampler_params_check(&b, NULL), HYPER_ERR_ARG);
    }
    sampler_params edge = {0.0, 1000, 1e-9};
    ck_assert_int_eq(sampler_params_check(&edge, err), HYPER_OK);
    edge.temperature = 100.0;
    ck_assert_int_eq(sampler_params_check(&edge, err), HYPER_OK);
}
END_TEST

START_TEST(test_sample_rejects_bad_arguments)
{
    fixture f;
    fixture_init(&f, 5, 1);
    sampler_params sp;
    sampler_params_default(&sp);
    ck_assert_int_eq(sampler_sample(logits5, 0, &sp, &f.rng, f.scratch), -1);
    ck_assert_int_eq(sampler_sample(NULL, 5, &sp, &f.rng, f.scratch), -1);
    ck_assert_int_eq(sampler_sample(logits5, 5, &sp, &f.rng, NULL), -1);
    sp.top_p = 0.0;
    ck_assert_int_eq(sampler_sample(logits5, 5, &sp, &f.rng, f.scratch), -1);
    sp.top_p = 1.0;
    sp.temperature = -1.0;
    ck_assert_int_eq(sampler_sample(logits5, 5, &sp, &f.rng, f.scratch), -1);
    ck_assert_uint_eq(sampler_scratch_size(0), 0);
    ck_assert_uint_eq(sampler_scratch_size(7), 14 * sizeof(real) + 7 * sizeof(int32_t));
    fixture_free(&f);
}
END_TEST

/* ---- greedy and filters --------------------------------------------------------------- */

START_TEST(test_greedy_is_argmax)
{
    fixture f;
    fixture_init(&f, 5, 7);
    sampler_params sp = {0.0, 0, 1.0};
    for (int d = 0; d < 100; d++)
        ck_assert_int_eq(sampler_sample(logits5, 5, &sp, &f.rng, f.scratch), 4);
    /* Ties go to the lowest index, and -inf is just a very small logit. */
    const real tie[6] = {(real)-INFINITY, (real)0.5, (real)2.0, (real)-3.0, (real)2.0,
                         (real)2.0};
    ck_assert_int_eq(sampler_sample(tie, 6, &sp, &f.rng, f.scratch), 2);
    const real one[1] = {(real)-7.0};
    ck_assert_int_eq(sampler_sample(one, 1, &sp, &f.rng, f.scratch), 0);
    fixture_free(&f);
}
END_TEST

START_TEST(test_top_k1_and_tiny_top_p_are_greedy)
{
    enum { N = 97 };
    real l[N];
    hyper_rng gen;
    hyper_rng_seed(&gen, 2024);
    fixture f;
    fixture_init(&f, N, 99);
    sampler_params greedy = {0.0, 0, 1.0}, k1 = {1.0, 1, 1.0}, p0 = {1.5, 0, 1e-6},
                   hot_k1 = {50.0, 1, 1.0};
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < N; i++)
            l[i] = (real)(3.0 * hyper_rng_normal(&gen));
        int32_t want = sampler_sample(l, N, &greedy, &f.rng, f.scratch);
        ck_assert_int_eq(sampler_sample(l, N, &k1, &f.rng, f.scratch), want);
        ck_assert_int_eq(sampler_sample(l, N, &p0, &f.rng, f.scratch), want);
        ck_assert_int_eq(sampler_sample(l, N, &hot_k1, &f.rng, f.scratch), want);
    }
    fixture_free(&f);
}
END_TEST

START_TEST(test_top_k_keeps_k_most_likely)
{
    /* p = (0.5, 0.2, 0.3): top-2 keeps indices 0 and 2, renormalised to 5/8 and 3/8. */
    const real l[3] = {(real)log(0.5), (real)log(0.2), (real)log(0.3)};
    sampler_params sp = {1.0, 2, 1.0};
    double freq[3], want[3] = {0.625, 0.0, 0.375};
    double worst = sample_freq(l, 3, &sp, 11, freq, want);
    ck_assert_msg(freq[1] == 0.0, "index 1 drawn %g of the time", freq[1]);
    ck_assert_msg(worst < FREQ_TOL, "top-k frequencies off by %g", worst);
}
END_TEST

START_TEST(test_top_p_keeps_smallest_prefix)
{
    /* p = (0.2, 0.5, 0.3): mass 0.5 < 0.75 <= 0.8, so the nucleus is {1, 2}. */
    const real l[3] = {(real)log(0.2), (real)log(0.5), (real)log(0.3)};
    double freq[3], want[3] = {0.0, 0.625, 0.375};
    sampler_params sp = {1.0, 0, 0.75};
    double worst = sample_freq(l, 3, &sp, 12, freq, want);
    ck_assert_msg(freq[0] == 0.0, "index 0 drawn %g of the time", freq[0]);
    ck_assert_msg(worst < FREQ_TOL, "top-p frequencies off by %g", worst);
    /* p just below the top probability: only the top survives. */
    sp.top_p = 0.45;
    double only[3] = {0.0, 1.0, 0.0};
    ck_assert_double_eq(sample_freq(l, 3, &sp, 13, freq, only), 0.0);
    /* top-k then top-p: of (0.5, 0.3) renormalised to (0.625, 0.375), p = 0.6 keeps one. */
    sampler_params both = {1.0, 2, 0.6};
    ck_assert_double_eq(sample_freq(l, 3, &both, 14, freq, only), 0.0);
}
END_TEST

START_TEST(test_masked_logits_never_drawn)
{
    const real l[4] = {(real)-INFINITY, (real)0.0, (real)-INFINITY, (real)0.0};
    double freq[4], want[4] = {0.0, 0.5, 0.0, 0.5};
    sampler_params sp = {1.0, 0, 1.0};
    double worst = sample_freq(l, 4, &sp, 5, freq, want);
    ck_assert(freq[0] == 0.0 && freq[2] == 0.0);
    ck_assert_msg(worst < FREQ_TOL, "frequencies off by %g", worst);
    sp.top_k = 3;    /* the third kept has no mass */
    worst = sample_freq(l, 4, &sp, 6, freq, want);
    ck_assert(freq[0] == 0.0 && freq[2] == 0.0);
}
END_TEST

/* ---- determinism and distribution ----------------------------------------------------- */

START_TEST(test_same_seed_same_sequence)
{
    enum { N = 5, LEN = 500 };
    sampler_params sps[3] = {{1.0, 0, 1.0}, {0.7, 3, 1.0}, {1.3, 0, 0.9}};
    for (int s = 0; s < 3; s++) {
        fixture a, b, c;
        fixture_init(&a, N, 42);
        fixture_init(&b, N, 42);
        fixture_init(&c, N, 43);
        int differ = 0;
        for (int t = 0; t < LEN; t++) {
            int32_t ya = sampler_sample(logits5, N, &sps[s], &a.rng, a.scratch);
            int32_t yb = sampler_sample(logits5, N, &sps[s], &b.rng, b.scratch);
            int32_t yc = sampler_sample(logits5, N, &sps[s], &c.rng, c.scratch);
            ck_assert_int_eq(ya, yb);
            differ += ya != yc;
        }
        ck_assert_msg(differ > 0, "params %d: seeds 42 and 43 gave the same %d samples", s, LEN);
        fixture_free(&a);
        fixture_free(&b);
        fixture_free(&c);
    }
}
END_TEST

START_TEST(test_one_draw_per_sample)
{
    /* Whatever the parameters, a sample advances the RNG by exactly one uniform draw. */
    sampler_params sps[4] = {{0.0, 0, 1.0}, {1.0, 0, 1.0}, {0.5, 2, 1.0}, {2.0, 0, 0.3}};
    for (int s = 0; s < 4; s++) {
        fixture f;
        fixture_init(&f, 5, 77);
        hyper_rng shadow;
        hyper_rng_seed(&shadow, 77);
        for (int t = 0; t < 10; t++) {
            sampler_sample(logits5, 5, &sps[s], &f.rng, f.scratch);
            hyper_rng_uniform(&shadow);
        }
        ck_assert_msg(memcmp(&f.rng, &shadow, sizeof shadow) == 0,
                      "params %d: RNG state differs from ten draws", s);
        fixture_free(&f);
    }
}
END_TEST

START_TEST(test_frequencies_match_softmax)
{
    sampler_params sp = {1.0, 0, 1.0};
    double freq[5], want[5];
    softmax_ref(logits5, 5, 1.0, want);
    double worst = sample_freq(logits5, 5, &sp, 2718, freq, want);
    ck_assert_msg(worst < FREQ_TOL, "max |freq - softmax| = %g (freq of 4: %g, want %g)",
                  worst, freq[4], want[4]);

    /* A larger vocabulary with spread logits. */
    enum { N = 40 };
    real l[N];
    double f40[N], w40[N];
    for (int i = 0; i < N; i++)
        l[i] = (real)(0.15 * (i % 13) - 0.05 * i);
    softmax_ref(l, N, 1.0, w40);
    worst = sample_freq(l, N, &sp, 3141, f40, w40);
    ck_assert_msg(worst < FREQ_TOL, "N=40: max |freq - softmax| = %g", worst);
}
END_TEST

START_TEST(test_temperature_scales)
{
    double freq[5], want[5], cold_top, warm_top, hot_top;
    sampler_params sp = {0.5, 0, 1.0};
    softmax_ref(logits5, 5, 0.5, want);
    double worst = sample_freq(logits5, 5, &sp, 1, freq, want);
    ck_assert_msg(worst < FREQ_TOL, "T=0.5: max |freq - softmax(l/T)| = %g", worst);
    cold_top = freq[4];

    sp.temperature = 1.0;
    softmax_ref(logits5, 5, 1.0, want);
    sample_freq(logits5, 5, &sp, 2, freq, want);
    warm_top = freq[4];

    sp.temperature = 3.0;
    softmax_ref(logits5, 5, 3.0, want);
    worst = sample_freq(logits5, 5, &sp, 3, freq, want);
    ck_assert_msg(worst < FREQ_TOL, "T=3: max |freq - softmax(l/T)| = %g", worst);
    hot_top = freq[4];

    ck_assert_msg(cold_top > warm_top + 0.1 && warm_top > hot_top + 0.1,
                  "top index not sharpened by temperature: T=0.5 %g, T=1 %g, T=3 %g", cold_top,
                  warm_top, hot_top);
}
END_TEST

START_TEST(test_large_logits_stable)
{
    /* exp(1000) overflows a double: only the max-shifted softmax gets this right. */
    const real l[3] = {(real)1000.0, (real)999.0, (real)-1000.0};
    double freq[3], want[3];
    softmax_ref(l, 3, 1.0, want);
    sampler_params sp = {1.0, 0, 1.0};
    double worst = sample_freq(l, 3, &sp, 8, freq, want);
    ck_assert_msg(worst < FREQ_TOL, "large logits: max |freq - softmax| = %g", worst);
}
END_TEST

/* ---- log2 probability ----------------------------------------------------------------- */

START_TEST(test_log2_prob)
{
    /* (0, 0, ln 2) → p = (1/4, 1/4, 1/2) → log2 p = (-2, -2, -1). */
    const real a[3] = {(real)0.0, (real)0.0, (real)log(2.0)};
    const double tol = sizeof(real) == sizeof(float) ? 1e-6 : 1e-12;
    ck_assert_double_eq_tol(sampler_log2_prob(a, 3, 0), -2.0, tol);
    ck_assert_double_eq_tol(sampler_log2_prob(a, 3, 1), -2.0, tol);
    ck_assert_double_eq_tol(sampler_log2_prob(a, 3, 2), -1.0, tol);

    /* (1, 2, 3): p_1 = e^2 / (e + e^2 + e^3) = 1 / (1/e + 1 + e), log2 p_1 = -2.03075... */
    const real b[3] = {(real)1.0, (real)2.0, (real)3.0};
    double e = exp(1.0);
    double want = (2.0 - log(e + e * e + e * e * e)) / log(2.0);
    ck_assert_double_eq_tol(sampler_log2_prob(b, 3, 1), want, 1e-9);
    ck_assert_double_eq_tol(want, -2.0307461, 1e-6);

    /* Shift invariance at magnitudes where a naive exp overflows: (1000, 1000) → -1 each. */
    const real c[2] = {(real)1000.0, (real)1000.0};
    ck_assert_double_eq_tol(sampler_log2_prob(c, 2, 1), -1.0, 1e-12);
    const real d[2] = {(real)-1000.0, (real)0.0};
    ck_assert_double_eq_tol(sampler_log2_prob(d, 2, 0), -1000.0 / log(2.0), 1e-6);

    ck_assert(isnan(sampler_log2_prob(a, 3, 3)));
    ck_assert(isnan(sampler_log2_prob(a, 3, -1)));
    ck_assert(isnan(sampler_log2_prob(a, 0, 0)));
}
END_TEST

Suite *sampler_suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, test_params_default_and_check);
    tcase_add_test(tc, test_sample_rejects_bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("filters");
    tcase_add_test(tc, test_greedy_is_argmax);
    tcase_add_test(tc, test_top_k1_and_tiny_top_p_are_greedy);
    tcase_add_test(tc, test_top_k_keeps_k_most_likely);
    tcase_add_test(tc, test_top_p_keeps_smallest_prefix);
    tcase_add_test(tc, test_masked_logits_never_drawn);
    suite_add_tcase(s, tc);

    tc = tcase_create("distribution");
    tcase_add_test(tc, test_same_seed_same_sequence);
    tcase_add_test(tc, test_one_draw_per_sample);
    tcase_add_test(tc, test_frequencies_match_softmax);
    tcase_add_test(tc, test_temperature_scales);
    tcase_add_test(tc, test_large_logits_stable);
    suite_add_tcase(s, tc);

    tc = tcase_create("log2_prob");
    tcase_add_test(tc, test_log2_prob);
    suite_add_tcase(s, tc);
    return s;
}
