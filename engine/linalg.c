/*
 * linalg.c — matrix products through cblas (OpenBLAS), and the naive reference.
 *
 * OpenBLAS is loaded with dlopen on first use rather than linked, so that its kernel can be
 * chosen before it initialises: Debian 12's OpenBLAS 0.3.21 does not recognise recent Xeons
 * (Sapphire/Emerald Rapids) and falls back to its SSE3 "Prescott" kernels, 2-3x slower
 * than the AVX-512 ones the CPU runs.  Unless the user set OPENBLAS_CORETYPE, we name the
 * best kernel family the CPU supports; on a CPU OpenBLAS knows, that is what it would have
 * picked.  If the library cannot be loaded at all, the plain loops below stand in.
 */
#include "linalg.h"

#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef HYPER_F64
#define GEMM_NAME "cblas_dgemm"
#define GEMV_NAME "cblas_dgemv"
#else
#define GEMM_NAME "cblas_sgemm"
#define GEMV_NAME "cblas_sgemv"
#endif

typedef void (*gemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                        blasint, blasint, real, const real *, blasint, const real *, blasint,
                        real, real *, blasint);
typedef void (*gemv_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, blasint, blasint, real,
                        const real *, blasint, const real *, blasint, real, real *, blasint);

static struct {
    gemm_fn gemm;
    gemv_fn gemv;
    void (*set_threads)(int);
    int (*get_threads)(void);
    char *(*corename)(void);
} blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_load(void)
{
    if (!getenv("OPENBLAS_CORETYPE")) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl"))
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            setenv("OPENBLAS_CORETYPE", "Haswell", 0);
    }
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        h = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    if (h) {
        blas.gemm = (gemm_fn)dlsym(h, GEMM_NAME);
        blas.gemv = (gemv_fn)dlsym(h, GEMV_NAME);
        blas.set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
        blas.get_threads = (int (*)(void))dlsym(h, "openblas_get_num_threads");
        blas.corename = (char *(*)(void))dlsym(h, "openblas_get_corename");
    }
    if (!blas.gemm || !blas.gemv) {
        blas.gemm = NULL;
        blas.gemv = NULL;
        hyper_log(HYPER_LOG_WARN, "OpenBLAS could not be loaded (%s); using plain loops",
                          h ? "symbols missing" : dlerror());
    }
}

static void blas_ready(void) { pthread_once(&blas_once, blas_load); }

void linalg_init(void) { blas_ready(); }

const char *linalg_backend(void)
{
    blas_ready();
    if (!blas.gemm)
        return "naive loops";
    return blas.corename ? blas.corename() : "OpenBLAS";
}

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
    blas_ready();
    if (!blas.gemm) {
        mm_naive(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M == 1 && !ta) {
        /* y (N) = op(B)^T x: B (K, N) needs the transposed gemv, B (N, K) the plain one. */
        if (tb)
            blas.gemv(CblasRowMajor, CblasNoTrans, N, K, 1, B, ldb, A, 1, beta, C, 1);
        else
            blas.gemv(CblasRowMajor, CblasTrans, K, N, 1, B, ldb, A, 1, beta, C, 1);
        return;
    }
    blas.gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
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
    blas_ready();
    if (blas.set_threads)
        blas.set_threads(n);
}

int math_get_threads(void)
{
    blas_ready();
    return blas.get_threads ? blas.get_threads() : 1;
}
