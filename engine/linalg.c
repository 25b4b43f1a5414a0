/*
 * linalg.c — matrix products through cblas (OpenBLAS), and the naive reference.
 */
#include "linalg.h"

#include <cblas.h>

#ifdef HYPER_F64
#define GEMM cblas_dgemm
#define GEMV cblas_dgemv
#else
#define GEMM cblas_sgemm
#define GEMV cblas_sgemv
#endif

/* OpenBLAS's own thread controls (declared in its cblas.h, repeated for clarity). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

void mm(int ta, int tb, int M, int N, int K, const real *A, int lda, const real *B, int ldb,
        real beta, real *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        if (beta == 0)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                    C[(size_t)i * ldc + j] = 0;
        return;
    }
    if (M == 1 && !ta) {
        /* y (N) = op(B)^T x: B (K, N) needs the transposed gemv, B (N, K) the plain one. */
        if (tb)
            GEMV(CblasRowMajor, CblasNoTrans, N, K, 1, B, ldb, A, 1, beta, C, 1);
        else
            GEMV(CblasRowMajor, CblasTrans, K, N, 1, B, ldb, A, 1, beta, C, 1);
        return;
    }
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
         K, 1, A, lda, B, ldb, beta, C, ldc);
}

void mm_naive(int ta, int tb, int M, int N, int K, const real *A, int lda, const real *B,
              int ldb, real beta, real *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += a * b;
            }
            real *c = &C[(size_t)i * ldc + j];
            *c = (real)(beta == 0 ? acc : (double)*c * beta + acc);
        }
}

void math_set_threads(int n)
{
    if (n < 1)
        n = 1;
    openblas_set_num_threads(n);
}

int math_get_threads(void) { return openblas_get_num_threads(); }
