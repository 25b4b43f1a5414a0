/*
 * test_mdn.c — the mixture-density head (engine/mdn.h): its loss against values computed
 * here from the density formula of Graves (2013) eqs. 23-26, its gradient against central
 * finite differences (double build), and what sampling bias and temperature do.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mdn.h"

/* The bivariate normal density written out directly, as eq. 24-25 state it. */
static double binormal(double x1, double x2, double m1, double m2, double s1, double s2, double r)
{
    double z = (x1 - m1) * (x1 - m1) / (s1 * s1) + (x2 - m2) * (x2 - m2) / (s2 * s2) -
               2 * r * (x1 - m1) * (x2 - m2) / (s1 * s2);
    return exp(-z / (2 * (1 - r * r))) / (2 * M_PI * s1 * s2 * sqrt(1 - r * r));
}

START_TEST(mdn_loss_one_standard_component)
{
    /* ê = 0, π̂ = 0, μ = 0, σ = 1, ρ = 0; point (1, 0) ending a stroke:
     * −log N = log 2π + ½, −log e = log 2 */
    real y[7] = {0, 0, 0, 0, 0, 0, 0};
    float p[3] = {1, 0, 1};
    double want = log(2 * M_PI) + 0.5 + log(2.0);
    ck_assert_double_eq_tol(mdn_loss(y, 1, p, NULL, 0), want, 1e-6);
}
END_TEST

START_TEST(mdn_loss_two_correlated_components)
{
    const int M = 2;
    real y[13];
    double e_hat = 0.8, pi[2] = {0.3, 0.7}, mu1[2] = {0.5, -1}, mu2[2] = {0, 2};
    double s1[2] = {2, 0.5}, s2[2] = {1, 1.5}, rho[2] = {0.5, -0.3};
    y[0] = (real)e_hat;
    for (int j = 0; j < M; j++) {
        y[1 + j] = (real)log(pi[j]) + 3; /* softmax is shift-invariant */
        y[1 + M + j] = (real)mu1[j];
        y[1 + 2 * M + j] = (real)mu2[j];
        y[1 + 3 * M + j] = (real)log(s1[j]);
        y[1 + 4 * M + j] = (real)log(s2[j]);
        y[1 + 5 * M + j] = (real)atanh(rho[j]);
    }
    float p[3] = {2.5f, 1.0f, 0.0f};
    double dens = 0;
    for (int j = 0; j < M; j++)
        dens += pi[j] * binormal(2.5, 1.0, mu1[j], mu2[j], s1[j], s2[j], rho[j]);
    double e = 1 / (1 + exp(-e_hat));
    double want = -log(dens) - log(1 - e);
    /* float inputs: the parameters themselves are rounded to 24 bits */
    ck_assert_double_eq_tol(mdn_loss(y, M, p, NULL, 0), want, 1e-5);
}
END_TEST

/* A point far in the tail must give a finite, large loss (log-sum-exp, not exp then log). */
START_TEST(mdn_loss_is_finite_far_out)
{
    real y[7] = {0, 0, 0, 0, (real)MDN_SIGMA_HAT_MIN - 3, (real)MDN_SIGMA_HAT_MIN, 30};
    float p[3] = {500, -500, 0};
    double l = mdn_loss(y, 1, p, NULL, 0);
    ck_assert_msg(isfinite(l) && l > 1e6, "loss %g", l);
    real dy[7];
    mdn_loss(y, 1, p, dy, 1);
    for (int k = 0; k < 7; k++)
        ck_assert_msg(isfinite(dy[k]), "dy[%d] = %g", k, (double)dy[k]);
    ck_assert(dy[4] == 0 && dy[6] == 0); /* clamped σ̂1 and ρ̂ pass no gradient */
}
END_TEST

#ifdef HYPER_F64
static void check_head_gradient(int M, uint64_t seed, float eos)
{
    const int O = 1 + 6 * M;
    real y[1 + 6 * 8], dy[1 + 6 * 8];
    hyper_rng rng;
    hyper_rng_seed(&rng, seed);
    for (int k = 0; k < O; k++)
        y[k] = (real)(0.8 * hyper_rng_normal(&rng));
    float p[3] = {(float)hyper_rng_normal(&rng), (float)hyper_rng_normal(&rng), eos};
    mdn_loss(y, M, p, dy, 0.5);
    const double eps = 1e-5;
    double worst = 0;
    int worst_k = 0;
    for (int k = 0; k < O; k++) {
        real saved = y[k];
        y[k] = saved + eps;
        double lp = mdn_loss(y, M, p, NULL, 0);
        y[k] = saved - eps;
        double lm = mdn_loss(y, M, p, NULL, 0);
        y[k] = saved;
        double num = 0.5 * (lp - lm) / (2 * eps);
        double rel = fabs(num - dy[k]) / fmax(fabs(num) + fabs(dy[k]), 1e-4);
        if (rel > worst) {
            worst = rel;
            worst_k = k;
        }
    }
    ck_assert_msg(worst < 1e-6, "M=%d: max relative error %.3e at output %d", M, worst, worst_k);
}

START_TEST(mdn_head_gradient)
{
    check_head_gradient(1, 5, 1.0f);
    check_head_gradient(3, 6, 0.0f);
    check_head_gradient(8, 7, 1.0f);
}
END_TEST
#endif

static double mean_sigma(const mdn_mixture *mx)
{
    double s = 0;
    for (int j = 0; j < mx->M; j++)
        s += mx->pi[j] * (mx->s1[j] + mx->s2[j]) / 2;
    return s;
}

START_TEST(mdn_bias_sharpens)
{
    const int M = 4;
    real y[25];
    hyper_rng rng;
    hyper_rng_seed(&rng, 11);
    for (int k = 0; k < 25; k++)
        y[k] = (real)hyper_rng_normal(&rng);
    mdn_mixture a, b, c;
    mdn_mix(y, M, 0.0, 1.0, &a);
    mdn_mix(y, M, 1.0, 1.0, &b);
    mdn_mix(y, M, 3.0, 1.0, &c);
    ck_assert_msg(mean_sigma(&b) < mean_sigma(&a) && mean_sigma(&c) < mean_sigma(&b),
                  "mean σ %g, %g, %g", mean_sigma(&a), mean_sigma(&b), mean_sigma(&c));
    /* σ = exp(σ̂ − b) exactly, and π sharpens toward the largest component */
    ck_assert_double_eq_tol(b.s1[0], exp((double)y[1 + 3 * M] - 1.0), 1e-12);
    double maxa = 0, maxc = 0;
    for (int j = 0; j < M; j++) {
        maxa = fmax(maxa, a.pi[j]);
        maxc = fmax(maxc, c.pi[j]);
    }
    ck_assert(maxc > maxa);
    /* b = 0, τ = 1 reproduces the trained distribution */
    double s = 0;
    for (int j = 0; j < M; j++)
        s += a.pi[j];
    ck_assert_double_eq_tol(s, 1.0, 1e-12);
    ck_assert_double_eq_tol(a.e, 1 / (1 + exp(-(double)y[0])), 1e-12);
}
END_TEST

/* Draws from one component follow its mean, spread and correlation. */
START_TEST(mdn_draw_moments)
{
    real y[7] = {-1.0, 0, 0.5, -2.0, (real)log(2.0), (real)log(0.5), (real)atanh(0.6)};
    mdn_mixture mx;
    mdn_mix(y, 1, 0.0, 1.0, &mx);
    hyper_rng rng;
    hyper_rng_seed(&rng, 3);
    const int n = 40000;
    double s1 = 0, s2 = 0, s11 = 0, s22 = 0, s12 = 0, eos = 0;
    for (int k = 0; k < n; k++) {
        float p[3];
        mdn_draw(&mx, &rng, p);
        s1 += p[0];
        s2 += p[1];
        s11 += (double)p[0] * p[0];
        s22 += (double)p[1] * p[1];
        s12 += (double)p[0] * p[1];
        eos += p[2];
    }
    double m1 = s1 / n, m2 = s2 / n;
    double v1 = s11 / n - m1 * m1, v2 = s22 / n - m2 * m2, c = s12 / n - m1 * m2;
    ck_assert_double_eq_tol(m1, 0.5, 0.03);
    ck_assert_double_eq_tol(m2, -2.0, 0.01);
    ck_assert_double_eq_tol(sqrt(v1), 2.0, 0.03);
    ck_assert_double_eq_tol(sqrt(v2), 0.5, 0.01);
    ck_assert_double_eq_tol(c / sqrt(v1 * v2), 0.6, 0.02);
    ck_assert_double_eq_tol(eos / n, 1 / (1 + exp(1.0)), 0.01);
}
END_TEST

Suite *mdn_suite(void)
{
    Suite *s = suite_create("mdn");
    TCase *tc = tcase_create("head");
    tcase_add_test(tc, mdn_loss_one_standard_component);
    tcase_add_test(tc, mdn_loss_two_correlated_components);
    tcase_add_test(tc, mdn_loss_is_finite_far_out);
#ifdef HYPER_F64
    tcase_add_test(tc, mdn_head_gradient);
#endif
    tcase_add_test(tc, mdn_bias_sharpens);
    tcase_add_test(tc, mdn_draw_moments);
    suite_add_tcase(s, tc);
    return s;
}
