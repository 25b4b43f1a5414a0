/*
 * cell.h — the LSTM core that the main cell and the hyper cell share: from gate
 * pre-activations to the new c and h, with optional layer norm and recurrent dropout,
 * forward and backward over a cache of T steps.
 *
 *   â = LN_gate(a)  (per gate block of n, when ln)     else â = a
 *   i = σ(â_i), g = tanh(â_g), f = σ(â_f + 1), o = σ(â_o)          (forget bias +1, supercell)
 *   c_t = f ⊙ c_{t-1} + i ⊙ (mask ⊙ g)                              (recurrent dropout on g)
 *   h_t = o ⊙ tanh(LN_c(c_t))  (LN_c when ln)
 * LN(x) = γ ⊙ (x − μ) / sqrt(var + 1e-3) + β   (paper eq. 13, epsilon of supercell).
 */
#ifndef HYPER_CELL_H
#define HYPER_CELL_H

#include "common.h"

#define LN_EPS 1e-3

/* Every activation of T steps of one core, for B streams of n units (all owned by the
 * caller's workspace; LN-only arrays are NULL without layer norm, mask without dropout). */
typedef struct {
    int32_t n, batch, ln;
    real *a;             /* (T, B, 4n) pre-activations as the caller computed them */
    real *ahat;          /* (T, B, 4n) after normalisation, before gain (ln) */
    real *amu, *arstd;   /* (T, B, 4) per gate block statistics (ln) */
    real *gate;          /* (T, B, 4n) i, g (before dropout), f, o after nonlinearities */
    real *mask;          /* (T, B, n) 0 or 1/keep, or NULL */
    real *c;             /* (T+1, B, n) c[0] is the state carried in */
    real *chat;          /* (T, B, n) normalised c (ln) */
    real *cmu, *crstd;   /* (T, B) (ln) */
    real *tc;            /* (T, B, n) tanh(LN_c(c_t)) */
    real *h;             /* (T+1, B, n) h[0] is the state carried in */
} core_cache;

/* Layer-norm parameters (NULL without layer norm). */
typedef struct {
    const real *g, *b;   /* (4n) gate gains and biases */
    const real *cg, *cb; /* (n) gain and bias of c */
} core_params;

typedef struct {
    real *g, *b, *cg, *cb;
} core_grads;

/* Draws step t's dropout mask (keep probability keep) when cc->mask is set. */
void core_draw_mask(core_cache *cc, int t, double keep, hyper_rng *rng);

/* Step t: reads a[t], c[t] (and mask[t]); writes gate[t], c[t+1], tc[t], h[t+1]. */
void core_forward(core_cache *cc, int t, const core_params *p);

/* Backward of step t.  dh (B, n) is dL/dh[t+1]; dc (B, n) holds dL/dc[t+1] from later
 * steps on entry and dL/dc[t] on return; da (B, 4n) receives dL/da[t].  LN parameter
 * gradients are added into g.  dh is not modified. */
void core_backward(const core_cache *cc, int t, const core_params *p, core_grads *g,
                   const real *dh, real *dc, real *da);

/* Layer norm of one row x (n) → y, keeping x̂ and the statistics for the backward. */
void ln_forward(const real *x, int n, const real *gamma, const real *beta, real *y,
                real *xhat, real *mu, real *rstd);
/* dx (n) = gradient through the normalisation given dy (n); adds into dgamma, dbeta. */
void ln_backward(const real *dy, const real *xhat, real rstd, int n, const real *gamma,
                 real *dx, real *dgamma, real *dbeta);

#endif
