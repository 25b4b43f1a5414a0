/*
 * sampler.h — picks the next character from a model's logits.
 */
#ifndef HYPER_SAMPLER_H
#define HYPER_SAMPLER_H

#include "common.h"

typedef struct {
    double temperature; /* 0 = greedy (argmax); > 0 divides the logits */
    int32_t top_k;      /* keep the k most likely (0 = all) */
    double top_p;       /* keep the smallest set whose mass reaches p (1 = all) */
} sampler_params;

/* Sets the defaults: temperature 1, top_k 0, top_p 1. */
void sampler_params_default(sampler_params *sp);
/* HYPER_ERR_ARG with err filled when a value is out of range (temperature < 0 or > 100,
 * top_k < 0, top_p outside (0, 1]). */
hyper_status sampler_params_check(const sampler_params *sp, char *err);

/* Draws an index in [0, n) from logits (n) with the given parameters and RNG.  scratch
 * must hold 2n reals + n int32 worth of space (sampler_scratch_size(n) bytes).  The same
 * logits, parameters and RNG state always give the same index.  Ties under greedy go to
 * the lowest index; greedy still consumes one draw, so the RNG advances once per character
 * whatever the parameters.  top_k applies first, then top_p to the mass that remains.
 * Returns -1 for NULL pointers, n < 1 or parameters that fail sampler_params_check. */
size_t sampler_scratch_size(int32_t n);
int32_t sampler_sample(const real *logits, int32_t n, const sampler_params *sp,
                       hyper_rng *rng, void *scratch);

/* log2 probability of index y under softmax(logits) — for bits-per-character. */
double sampler_log2_prob(const real *logits, int32_t n, int32_t y);

#endif
