/*
 * linalg.h — the one matrix-product entry point of the engine, over cblas, and the plain-loop
 * reference it is tested against (llm.c's matmul_forward_naive, kept as the definition).
 */
#ifndef HYPER_LINALG_H
#define HYPER_LINALG_H

#include <math.h>

#include "common.h"

/* C (M, N) = beta·C + op(A) · op(B), all row-major with leading dimensions lda, ldb, ldc.
 * op(A) is (M, K): A itself (M, K) or, with ta, A (K, M) transposed; likewise op(B) (K, N)
 * is B (K, N) or, with tb, B (N, K) transposed.  beta is 0 (overwrite) or 1 (accumulate).
 * A single-row product goes to gemv, which OpenBLAS does faster than a one-row gemm. */
void mm(int ta, int tb, int M, int N, int K, const real *A, int lda, const real *B, int ldb,
        real beta, real *C, int ldc);

/* The same product by three plain loops, in double accumulation. */
void mm_naive(int ta, int tb, int M, int N, int K, const real *A, int lda, const real *B,
              int ldb, real beta, real *C, int ldc);

/* Loads OpenBLAS (choosing its kernel family, see linalg.c) if that has not happened yet.
 * Every function here does it on first use; calling it early in main keeps the one-time
 * setenv away from other threads. */
void linalg_init(void);
/* Which kernels the products run on, e.g. "SkylakeX", or "naive loops". */
const char *linalg_backend(void);

/* Sets the BLAS thread count of the calling process (OpenBLAS's pool is process-wide). */
void math_set_threads(int n);
int math_get_threads(void);

/* Elementwise functions.  The double build (gradient checks) uses libm.  The float build
 * uses a branch-free exp that the compiler vectorises, because libm's scalar expf/tanhf
 * cost as much as the matrix products in a batched step: range reduction x = n·ln2 + r
 * (ln 2 split in two, Cody & Waite) and Cephes' degree-6 polynomial for e^r, relative
 * error about 2e-7 over the clamped range. */
#ifdef HYPER_F64
static inline real rexp(real x) { return exp(x); }
static inline real rtanh(real x) { return tanh(x); }
#else
static inline float rexp(float x)
{
    x = x > 88.0f ? 88.0f : x; /* two plain selects, which become vector min/max */
    x = x < -87.0f ? -87.0f : x;
    const float n = floorf(x * 1.44269504088896341f + 0.5f);
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}
/* tanh x = 1 − 2 / (e^{2x} + 1): absolute error ~1e-7 (relative error grows only where
 * tanh x is itself below ~1e-4, which no activation cares about). */
static inline float rtanh(float x) { return 1.0f - 2.0f / (rexp(2.0f * x) + 1.0f); }
#endif
static inline real sigmoidr(real x) { return (real)1 / ((real)1 + rexp(-x)); }

#endif
