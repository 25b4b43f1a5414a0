/*
 * sampler.c — temperature, top-k and top-p (nucleus) sampling over logits.
 *
 * Every call consumes exactly one uniform draw from the RNG, greedy calls included, so a
 * session's RNG state after t characters does not depend on which parameters produced them
 * and a saved RNG state replays the same text.
 *
 * Scratch layout for V = n (sampler_scratch_size):
 *   real    prob[V]   unnormalised probabilities exp((l - max) / T), summed in double
 *   real    tmp[V]    reused as int32 (V): the merge buffer of the sort
 *   int32_t idx[V]    indices sorted by probability, descending (top-k / top-p only)
 * The caller's block must be aligned for real (any malloc'd block is).
 */
#include "sampler.h"

#include <math.h>

#define SAMPLER_MAX_TEMPERATURE 100.0

void sampler_params_default(sampler_params *sp)
{
    sp->temperature = 1.0;
    sp->top_k = 0;
    sp->top_p = 1.0;
}

hyper_status sampler_params_check(const sampler_params *sp, char *err)
{
    /* Written as !(in range) so that NaN fails too. */
    if (!(sp->temperature >= 0.0 && sp->temperature <= SAMPLER_MAX_TEMPERATURE))
        return hyper_fail(err, HYPER_ERR_ARG, "temperature: %g is outside 0..%g",
                          sp->temperature, SAMPLER_MAX_TEMPERATURE);
    if (sp->top_k < 0)
        return hyper_fail(err, HYPER_ERR_ARG, "top_k: %d is negative", sp->top_k);
    if (!(sp->top_p > 0.0 && sp->top_p <= 1.0))
        return hyper_fail(err, HYPER_ERR_ARG, "top_p: %g is outside (0, 1]", sp->top_p);
    return HYPER_OK;
}

size_t sampler_scratch_size(int32_t n)
{
    if (n < 1)
        return 0;
    return 2 * (size_t)n * sizeof(real) + (size_t)n * sizeof(int32_t);
}

/* Index of the largest logit, the lowest on ties; NaNs are ignored (0 when all are NaN). */
static int32_t argmax(const real *logits, int32_t n)
{
    int32_t best = -1;
    for (int32_t i = 0; i < n; i++) {
        if (isnan(logits[i]))
            continue;
        if (best < 0 || logits[i] > logits[best])
            best = i;
    }
    return best < 0 ? 0 : best;
}

/* Stable merge sort of idx (n) by p[idx] descending; equal probabilities keep index order,
 * so the result, and with it the sample, depends on nothing but the logits. */
static void sort_by_prob(const real *p, int32_t *idx, int32_t *tmp, int32_t n)
{
    int32_t *src = idx, *dst = tmp;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n;
            int64_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                dst[k++] = p[src[b]] > p[src[a]] ? src[b++] : src[a++];
            while (a < mid)
                dst[k++] = src[a++];
            while (b < hi)
                dst[k++] = src[b++];
        }
        int32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        for (int32_t i = 0; i < n; i++)
            idx[i] = src[i];
}

int32_t sampler_sample(const real *logits, int32_t n, const sampler_params *sp,
                       hyper_rng *rng, void *scratch)
{
    if (!logits || n < 1 || !sp || !rng || !scratch || sampler_params_check(sp, NULL))
        return -1;
    double u = hyper_rng_uniform(rng);    /* the one draw of this call */

    int32_t best = argmax(logits, n);
    double max = (double)logits[best];
    /* Greedy, and the degenerate cases where softmax has no finite answer: every logit
     * -inf or NaN (best is 0 then), or some +inf (the first +inf wins). */
    if (sp->temperature == 0.0 || !isfinite(max))
        return best;

    real *prob = scratch;                        /* (V) */
    int32_t *tmp = (int32_t *)(prob + n);        /* (V) */
    int32_t *idx = (int32_t *)(prob + 2 * (size_t)n); /* (V) */

    /* Softmax numerators, max-shifted so the largest is exactly 1. */
    double inv_t = 1.0 / sp->temperature;
    for (int32_t i = 0; i < n; i++) {
        double l = (double)logits[i];
        prob[i] = isnan(l) ? (real)0 : (real)exp((l - max) * inv_t);
    }

    int filter = (sp->top_k > 0 && sp->top_k < n) || sp->top_p < 1.0;
    int32_t kept = n;
    if (filter) {
        for (int32_t i = 0; i < n; i++)
            idx[i] = i;
        sort_by_prob(prob, idx, tmp, n);
        if (sp->top_k > 0 && sp->top_k < n)
            kept = sp->top_k;
        if (sp->top_p < 1.0) {
            /* Nucleus over what top-k left: the shortest prefix reaching top_p of its mass. */
            double mass = 0.0;
            for (int32_t j = 0; j < kept; j++)
                mass += (double)prob[idx[j]];
            double need = sp->top_p * mass, cum = 0.0;
            for (int32_t j = 0; j < kept; j++) {
                cum += (double)prob[idx[j]];
                if (cum >= need) {
                    kept = j + 1;
                    break;
                }
            }
        }
    }

    /* Inverse CDF over the kept set, summed in the same order it is walked. */
    double mass = 0.0;
    for (int32_t j = 0; j < kept; j++)
        mass += (double)prob[filter ? idx[j] : j];
    double target = u * mass, cum = 0.0;
    int32_t last = best;    /* the last index with mass: a safe answer if rounding runs out */
    for (int32_t j = 0; j < kept; j++) {
        int32_t i = filter ? idx[j] : j;
        if (prob[i] <= (real)0)
            continue;
        cum += (double)prob[i];
        last = i;
        if (target < cum)
            return i;
    }
    return last;
}

double sampler_log2_prob(const real *logits, int32_t n, int32_t y)
{
    if (!logits || n < 1 || y < 0 || y >= n)
        return NAN;
    double max = (double)logits[0];
    for (int32_t i = 1; i < n; i++)
        if ((double)logits[i] > max)
            max = (double)logits[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    /* log2 softmax(l)_y = (l_y - max) / ln 2 - log2 sum exp(l - max) */
    return ((double)logits[y] - max) / log(2.0) - log2(sum);
}
