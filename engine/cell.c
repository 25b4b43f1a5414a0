/*
 * cell.c — the shared LSTM core of cell.h and layer norm, forward and backward.
 */
#include "cell.h"

#include <math.h>
#include <string.h>

#include "linalg.h"

void ln_forward(const real *x, int n, const real *gamma, const real *beta, real *y,
                real *xhat, real *mu, real *rstd)
{
    /* sums in the working precision, vectorised: n ≤ 8192 keeps float error near 1e-6 */
    real m = 0, v = 0;
#pragma omp simd reduction(+ : m)
    for (int k = 0; k < n; k++)
        m += x[k];
    m /= (real)n;
#pragma omp simd reduction(+ : v)
    for (int k = 0; k < n; k++)
        v += (x[k] - m) * (x[k] - m);
    v /= (real)n;
    const real r = (real)(1.0 / sqrt((double)v + LN_EPS));
#pragma omp simd
    for (int k = 0; k < n; k++) {
        real xh = (x[k] - m) * r;
        xhat[k] = xh;
        y[k] = gamma[k] * xh + beta[k];
    }
    *mu = m;
    *rstd = r;
}

void ln_backward(const real *dy, const real *xhat, real rstd, int n, const real *gamma,
                 real *dx, real *dgamma, real *dbeta)
{
    /* dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂)), dx̂ = dy ⊙ γ */
    real s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
    for (int k = 0; k < n; k++) {
        real dxh = dy[k] * gamma[k];
        s1 += dxh;
        s2 += dxh * xhat[k];
        dgamma[k] += dy[k] * xhat[k];
        dbeta[k] += dy[k];
    }
    s1 /= (real)n;
    s2 /= (real)n;
#pragma omp simd
    for (int k = 0; k < n; k++)
        dx[k] = rstd * (dy[k] * gamma[k] - s1 - xhat[k] * s2);
}

void core_draw_mask(core_cache *cc, int t, double keep, hyper_rng *rng)
{
    if (!cc->mask)
        return;
    const size_t count = (size_t)cc->batch * (size_t)cc->n;
    real *m = cc->mask + (size_t)t * count;
    const real scale = (real)(1.0 / keep);
    for (size_t k = 0; k < count; k++)
        m[k] = hyper_rng_uniform(rng) < keep ? scale : 0;
}

void core_forward(core_cache *cc, int t, const core_params *p)
{
    const int n = cc->n, B = cc->batch;
    const size_t row4 = 4 * (size_t)n, tb = (size_t)t * B;
    for (int b = 0; b < B; b++) {
        const real *a = cc->a + (tb + b) * row4;
        real *gate = cc->gate + (tb + b) * row4;
        const real *c_prev = cc->c + (tb + b) * n;
        real *c = cc->c + (tb + B + b) * n;
        real *tc = cc->tc + (tb + b) * n;
        real *h = cc->h + (tb + B + b) * n;
        const real *mask = cc->mask ? cc->mask + (tb + b) * n : NULL;
        /* eq. 13: the gates are normalised per block before their nonlinearities */
        const real *act = a;
        if (cc->ln) {
            real *ahat = cc->ahat + (tb + b) * row4;
            for (int g = 0; g < 4; g++)
                ln_forward(a + g * n, n, p->g + g * n, p->b + g * n, gate + g * n,
                           ahat + g * n, &cc->amu[(tb + b) * 4 + g], &cc->arstd[(tb + b) * 4 + g]);
            act = gate;
        }
#pragma omp simd
        for (int k = 0; k < n; k++) {
            gate[k] = sigmoidr(act[k]);
            gate[n + k] = rtanh(act[n + k]);
            gate[2 * n + k] = sigmoidr(act[2 * n + k] + 1);
            gate[3 * n + k] = sigmoidr(act[3 * n + k]);
        }
        const real *gi = gate, *gg = gate + n, *gf = gate + 2 * n;
        if (mask) {
#pragma omp simd
            for (int k = 0; k < n; k++)
                c[k] = gf[k] * c_prev[k] + gi[k] * mask[k] * gg[k];
        } else {
#pragma omp simd
            for (int k = 0; k < n; k++)
                c[k] = gf[k] * c_prev[k] + gi[k] * gg[k];
        }
        if (cc->ln) {
            real *chat = cc->chat + (tb + b) * n;
            ln_forward(c, n, p->cg, p->cb, tc, chat, &cc->cmu[tb + b], &cc->crstd[tb + b]);
#pragma omp simd
            for (int k = 0; k < n; k++)
                tc[k] = rtanh(tc[k]);
        } else {
#pragma omp simd
            for (int k = 0; k < n; k++)
                tc[k] = rtanh(c[k]);
        }
        for (int k = 0; k < n; k++)
            h[k] = gate[3 * n + k] * tc[k];
    }
}

void core_backward(const core_cache *cc, int t, const core_params *p, core_grads *gr,
                   const real *dh_all, real *dc_all, real *da_all)
{
    const int n = cc->n, B = cc->batch;
    const size_t row4 = 4 * (size_t)n, tb = (size_t)t * B;
    for (int b = 0; b < B; b++) {
        const real *gate = cc->gate + (tb + b) * row4;
        const real *c_prev = cc->c + (tb + b) * n;
        const real *tc = cc->tc + (tb + b) * n;
        const real *mask = cc->mask ? cc->mask + (tb + b) * n : NULL;
        const real *dh = dh_all + (size_t)b * n;
        real *dc = dc_all + (size_t)b * n;
        real *da = da_all + (size_t)b * row4;
        /* h = o ⊙ tanh(LN_c(c)): da_o is filled here, dc gains the path through tanh */
        for (int k = 0; k < n; k++) {
            real o = gate[3 * n + k];
            da[3 * n + k] = dh[k] * tc[k] * o * (1 - o);          /* through σ(o) */
            da[k] = dh[k] * o * (1 - tc[k] * tc[k]);              /* dL/d(LN_c c), temp */
        }
        if (cc->ln) {
            real *dcn = da + n; /* borrow the g block as scratch until it is written below */
            ln_backward(da, cc->chat + (tb + b) * n, cc->crstd[tb + b], n, p->cg, dcn, gr->cg,
                        gr->cb);
            for (int k = 0; k < n; k++)
                dc[k] += dcn[k];
        } else {
            for (int k = 0; k < n; k++)
                dc[k] += da[k];
        }
        /* c = f ⊙ c_prev + i ⊙ mask ⊙ g */
        for (int k = 0; k < n; k++) {
            real i = gate[k], g = gate[n + k], f = gate[2 * n + k];
            real m = mask ? mask[k] : 1;
            real d = dc[k];
            da[k] = d * m * g * i * (1 - i);
            da[n + k] = d * i * m * (1 - g * g);
            da[2 * n + k] = d * c_prev[k] * f * (1 - f);
            dc[k] = d * f;
        }
        if (cc->ln) {
            /* da holds dL/d(LN output); take it back through the normalisation per block */
            const real *ahat = cc->ahat + (tb + b) * row4;
            for (int g = 0; g < 4; g++) {
                ln_backward(da + g * n, ahat + g * n, cc->arstd[(tb + b) * 4 + g], n,
                            p->g + g * n, da + g * n, gr->g + g * n, gr->b + g * n);
            }
        }
    }
}
