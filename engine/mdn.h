/*
 * mdn.h — the mixture-density output of the handwriting model (Graves 2013, §4.1-4.2,
 * eqs. 15-26): M bivariate Gaussians for the pen move and a Bernoulli for the pen lift.
 *
 * A network output y has 1 + 6M values, laid out
 *   y[0]                  ê        end of stroke     e = σ(ê)
 *   y[1 .. M]             π̂_j      mixture weights   π = softmax(π̂)
 *   y[1+M .. 2M]          μ1_j     means of dx
 *   y[1+2M .. 3M]         μ2_j     means of dy
 *   y[1+3M .. 4M]         σ̂1_j     σ1 = exp(σ̂1)
 *   y[1+4M .. 5M]         σ̂2_j     σ2 = exp(σ̂2)
 *   y[1+5M .. 6M]         ρ̂_j      ρ = tanh(ρ̂)
 * For stability σ̂ is clamped to [MDN_SIGMA_HAT_MIN, MDN_SIGMA_HAT_MAX] (a σ floor) and ρ̂
 * to ±MDN_RHO_HAT_MAX (so |ρ| < 1); the gradient of a clamped value is zero.  Points are
 * (dx, dy, eos) in normalised units.
 */
#ifndef HYPER_MDN_H
#define HYPER_MDN_H

#include "common.h"

#define MDN_SIGMA_HAT_MIN (-7.0) /* σ ≥ 9.1e-4: a thousandth of the data's std */
#define MDN_SIGMA_HAT_MAX 7.0
#define MDN_RHO_HAT_MAX 5.0      /* |ρ| ≤ 0.99991 */
#define MDN_MAX_MIXTURES 256

/* Outputs of a head of M components (1 + 6M), and M from an output count (-1 if invalid). */
int32_t mdn_outputs(int32_t M);
int32_t mdn_mixtures(int32_t outputs);

/* The negative log-likelihood (nats) of the point p = (dx, dy, eos) under y, Graves eq. 26:
 *   −log Σ_j π_j N(dx, dy | μ_j, σ_j, ρ_j) − log(e if eos else 1 − e)
 * computed with log-sum-exp.  When dy is not NULL it receives scale · ∂NLL/∂y (1 + 6M). */
double mdn_loss(const real *y, int32_t M, const float *p, real *dy, real scale);

/* The mixture after sampling bias b (Graves §5.4: σ = exp(σ̂ − b), π = softmax(π̂ (1 + b)))
 * and temperature τ (π = softmax(π̂ (1 + b) / τ), σ scaled by √τ, e = σ(ê / τ); τ = 1 and
 * b = 0 give the trained distribution).  Arrays hold M values each. */
typedef struct {
    int32_t M;
    double e;
    double pi[MDN_MAX_MIXTURES], mu1[MDN_MAX_MIXTURES], mu2[MDN_MAX_MIXTURES];
    double s1[MDN_MAX_MIXTURES], s2[MDN_MAX_MIXTURES], rho[MDN_MAX_MIXTURES];
} mdn_mixture;

void mdn_mix(const real *y, int32_t M, double bias, double temperature, mdn_mixture *out);

/* Draws a point (dx, dy, eos) from a mixture. */
void mdn_draw(const mdn_mixture *mx, hyper_rng *rng, float *p);

#endif
