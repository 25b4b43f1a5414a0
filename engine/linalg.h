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

/* Elementwise functions in the working precision (float calls cost a third of double). */
#ifdef HYPER_F64
static inline real rexp(real x) { return exp(x); }
static inline real rtanh(real x) { return tanh(x); }
#else
static inline real rexp(real x) { return expf(x); }
static inline real rtanh(real x) { return tanhf(x); }
#endif
static inline real sigmoidr(real x) { return (real)1 / ((real)1 + rexp(-x)); }

#endif
