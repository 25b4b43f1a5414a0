/*
 * mdn.c — loss, gradient and sampling of the mixture-density head (mdn.h).
 *
 * The gradient follows Graves (2013) eqs. 27-33 written for the log-density: with the
 * responsibilities γ_j = π_j N_j / Σ_k π_k N_k,
 *   ∂L/∂π̂_j = π_j − γ_j,   ∂L/∂ê = e − eos,   ∂L/∂θ_j = −γ_j ∂log N_j/∂θ_j  (θ = μ, σ̂, ρ̂)
 * where, with Δ1 = (x1 − μ1)/σ1, Δ2 = (x2 − μ2)/σ2, C = 1/(1 − ρ²),
 * Z = Δ1² + Δ2² − 2ρΔ1Δ2 and log N = −log 2π − σ̂1 − σ̂2 + ½ log C − CZ/2:
 *   ∂log N/∂μ1 = C (Δ1 − ρΔ2) / σ1        ∂log N/∂σ̂1 = C Δ1 (Δ1 − ρΔ2) − 1
 *   ∂log N/∂μ2 = C (Δ2 − ρΔ1) / σ2        ∂log N/∂σ̂2 = C Δ2 (Δ2 − ρΔ1) − 1
 *   ∂log N/∂ρ̂  = ρ + Δ1Δ2 − ρ C Z          (through ρ = tanh ρ̂)
 * Everything is computed in double whatever `real` is.
 */
#include "mdn.h"

#include <math.h>

#define LOG_2PI 1.8378770664093453

int32_t mdn_outputs(int32_t M) { return 1 + 6 * M; }

int32_t mdn_mixtures(int32_t outputs)
{
    if (outputs < 7 || (outputs - 1) % 6 != 0 || (outputs - 1) / 6 > MDN_MAX_MIXTURES)
        return -1;
    return (outputs - 1) / 6;
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* log σ(v) and log(1 − σ(v)) without overflow. */
static double log_sigmoid(double v) { return v >= 0 ? -log1p(exp(-v)) : v - log1p(exp(v)); }

double mdn_loss(const real *y, int32_t M, const float *p, real *dy, real scale)
{
    const real *eh = y, *pih = y + 1, *mu1 = y + 1 + M, *mu2 = y + 1 + 2 * M;
    const real *s1h = y + 1 + 3 * M, *s2h = y + 1 + 4 * M, *rh = y + 1 + 5 * M;
    const double x1 = p[0], x2 = p[1], eos = p[2] > 0.5f ? 1.0 : 0.0;
    double lp[MDN_MAX_MIXTURES]; /* log π_j + log N_j, then γ_j */
    double pmax = -INFINITY, pisum = 0, lmax = -INFINITY;
    for (int32_t j = 0; j < M; j++)
        pmax = fmax(pmax, (double)pih[j]);
    for (int32_t j = 0; j < M; j++)
        pisum += exp((double)pih[j] - pmax);
    const double logpisum = log(pisum) + pmax;
    for (int32_t j = 0; j < M; j++) {
        const double a = clampd(s1h[j], MDN_SIGMA_HAT_MIN, MDN_SIGMA_HAT_MAX);
        const double b = clampd(s2h[j], MDN_SIGMA_HAT_MIN, MDN_SIGMA_HAT_MAX);
        const double rho = tanh(clampd(rh[j], -MDN_RHO_HAT_MAX, MDN_RHO_HAT_MAX));
        const double d1 = (x1 - mu1[j]) * exp(-a), d2 = (x2 - mu2[j]) * exp(-b);
        const double omr = 1 - rho * rho;
        const double z = d1 * d1 + d2 * d2 - 2 * rho * d1 * d2;
        lp[j] = (double)pih[j] - logpisum - LOG_2PI - a - b - 0.5 * log(omr) - z / (2 * omr);
        lmax = fmax(lmax, lp[j]);
    }
    double sum = 0;
    for (int32_t j = 0; j < M; j++)
        sum += exp(lp[j] - lmax);
    const double log_mix = log(sum) + lmax;
    const double e_hat = eh[0];
    const double loss = -log_mix - (eos ? log_sigmoid(e_hat) : log_sigmoid(-e_hat));
    if (!dy)
        return loss;
    const double sc = scale;
    dy[0] = (real)(sc * (1 / (1 + exp(-e_hat)) - eos));
    for (int32_t j = 0; j < M; j++) {
        const double gamma = exp(lp[j] - log_mix);
        const double pi = exp((double)pih[j] - logpisum);
        const double a = clampd(s1h[j], MDN_SIGMA_HAT_MIN, MDN_SIGMA_HAT_MAX);
        const double b = clampd(s2h[j], MDN_SIGMA_HAT_MIN, MDN_SIGMA_HAT_MAX);
        const double rr = clampd(rh[j], -MDN_RHO_HAT_MAX, MDN_RHO_HAT_MAX);
        const double rho = tanh(rr);
        const double is1 = exp(-a), is2 = exp(-b);
        const double d1 = (x1 - mu1[j]) * is1, d2 = (x2 - mu2[j]) * is2;
        const double C = 1 / (1 - rho * rho);
        const double z = d1 * d1 + d2 * d2 - 2 * rho * d1 * d2;
        const int a_in = s1h[j] > MDN_SIGMA_HAT_MIN && s1h[j] < MDN_SIGMA_HAT_MAX;
        const int b_in = s2h[j] > MDN_SIGMA_HAT_MIN && s2h[j] < MDN_SIGMA_HAT_MAX;
        const int r_in = rh[j] > -MDN_RHO_HAT_MAX && rh[j] < MDN_RHO_HAT_MAX;
        dy[1 + j] = (real)(sc * (pi - gamma));
        dy[1 + M + j] = (real)(sc * -gamma * C * (d1 - rho * d2) * is1);
        dy[1 + 2 * M + j] = (real)(sc * -gamma * C * (d2 - rho * d1) * is2);
        dy[1 + 3 * M + j] = a_in ? (real)(sc * -gamma * (C * d1 * (d1 - rho * d2) - 1)) : 0;
        dy[1 + 4 * M + j] = b_in ? (real)(sc * -gamma * (C * d2 * (d2 - rho * d1) - 1)) : 0;
        dy[1 + 5 * M + j] = r_in ? (real)(sc * -gamma * (rho + d1 * d2 - rho * C * z)) : 0;
    }
    return loss;
}

void mdn_mix(const real *y, int32_t M, double bias, double temperature, mdn_mixture *out)
{
    const double tau = temperature > 1e-3 ? temperature : 1e-3;
    out->M = M;
    out->e = 1 / (1 + exp(-(double)y[0] / tau));
    double mx = -INFINITY, sum = 0;
    for (int32_t j = 0; j < M; j++) {
        out->pi[j] = (double)y[1 + j] * (1 + bias) / tau;
        mx = fmax(mx, out->pi[j]);
    }
    for (int32_t j = 0; j < M; j++) {
        out->pi[j] = exp(out->pi[j] - mx);
        sum += out->pi[j];
    }
    const double st = sqrt(tau);
    for (int32_t j = 0; j < M; j++) {
        out->pi[j] /= sum;
        out->mu1[j] = y[1 + M + j];
        out->mu2[j] = y[1 + 2 * M + j];
        out->s1[j] = exp(clampd(y[1 + 3 * M + j], MDN_SIGMA_HAT_MIN, MDN_SIGMA_HAT_MAX) - bias) * st;
        out->s2[j] = exp(clampd(y[1 + 4 * M + j], MDN_SIGMA_HAT_MIN, MDN_SIGMA_HAT_MAX) - bias) * st;
        out->rho[j] = tanh(clampd(y[1 + 5 * M + j], -MDN_RHO_HAT_MAX, MDN_RHO_HAT_MAX));
    }
}

void mdn_draw(const mdn_mixture *mx, hyper_rng *rng, float *p)
{
    double u = hyper_rng_uniform(rng), acc = 0;
    int32_t j = 0;
    for (; j < mx->M - 1; j++) {
        acc += mx->pi[j];
        if (u < acc)
            break;
    }
    const double n1 = hyper_rng_normal(rng), n2 = hyper_rng_normal(rng);
    const double r = mx->rho[j];
    p[0] = (float)(mx->mu1[j] + mx->s1[j] * n1);
    p[1] = (float)(mx->mu2[j] + mx->s2[j] * (r * n1 + sqrt(1 - r * r) * n2));
    p[2] = hyper_rng_uniform(rng) < mx->e ? 1.0f : 0.0f;
}
