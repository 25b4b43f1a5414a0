/*
 * kernels.h — the inference matrix product: y = x · W with W repacked once, computed so that
 * every output row is bit-for-bit the same whatever the batch around it.
 *
 * Why not mm() (linalg.h): OpenBLAS picks its kernel by shape (a one-row product goes to
 * gemv, small batches to other gemm kernels) and each sums over k in its own order, so a
 * session's logits, and in time its sampled text, would depend on how many other sessions
 * the scheduler happened to step beside it.  Here the arithmetic for one output element is
 * fixed by definition:
 *
 *     acc = beta · Y[b][n]        (0 when beta is 0: Y is then not read)
 *     for k = 0, 1, …, K-1:  acc = fma(X[b][k], W[k][n], acc)     (one rounding per step)
 *     Y[b][n] = acc
 *
 * Every code path (the batched tiles, the leftover rows, the last partial column panel,
 * the AVX-512, AVX2 and plain-C versions) performs exactly that chain, so the result
 * depends on nothing but X[b], W and Y[b]: not on B, on the row's place in the batch, on
 * which rows share a tile, nor on the machine's vector width.  (Rows that hold NaN or Inf
 * stay in their own row.)  The price is one FMA chain per output, whose latency the kernels
 * hide by keeping several columns and rows in flight, never by splitting the sum over k.
 *
 * Legend: B batch rows, K inputs (rows of W), N outputs (columns of W), P panel width.
 */
#ifndef HYPER_KERNELS_H
#define HYPER_KERNELS_H

#include "common.h"

/* Which instruction set a packed matrix is laid out for, and so which kernel runs it. */
typedef enum {
    KERNEL_ISA_SCALAR = 0, /* plain C (fmaf/fma); the only path of the double build */
    KERNEL_ISA_AVX2,       /* 8-lane FMA, the x86-64-v3 floor the project builds for */
    KERNEL_ISA_AVX512,     /* 16-lane FMA, chosen at run time when the CPU has it */
    KERNEL_ISA_COUNT
} kernel_isa;

/* Weights W (K, N) (row-major, leading dimension ldw: y = x · W) repacked once into column
 * panels so that a product streams memory sequentially.
 *
 * Layout: panel j holds columns [j·P, j·P + P) as a (K, P) row-major block, the panels one
 * after the other.  The last panel is only as wide as its columns rounded up to the vector
 * width (16 floats AVX-512, 8 AVX2, 1 scalar) and its padding columns are zero, so it starts
 * at j·P·K like the others. */
typedef struct {
    int32_t K, N;      /* W is (K, N) */
    int32_t panel;     /* P: columns per full panel (48 AVX-512, 32 AVX2, 16 scalar) */
    int32_t isa;       /* the kernel_isa the panels are laid out for */
    int32_t half;      /* 1: panels hold IEEE half floats (uint16), see packed_w_init_f16 */
    real *panels;      /* owned, 64-byte aligned: K · (N rounded up to the vector width) */
} packed_w;

/* Packs W (K, N), read with leading dimension ldw ≥ N, for the best kernel this CPU runs
 * (kernels_isa()).  p owns a copy: W may be freed or changed afterwards, and a changed W
 * must be packed again.  On error (K < 1, N < 1, ldw < N, W NULL: HYPER_ERR_ARG; no
 * memory: HYPER_ERR_NOMEM) p is left empty (packed_w_free is safe) and err says why. */
hyper_status packed_w_init(packed_w *p, const real *W, int K, int N, int ldw, char *err);

/* The same for a named instruction set, for tests and benchmarks: HYPER_ERR_ARG if this
 * CPU (or the double build, which has only KERNEL_ISA_SCALAR) cannot run it. */
hyper_status packed_w_init_isa(packed_w *p, const real *W, int K, int N, int ldw,
                               kernel_isa isa, char *err);

/* The same with the weights rounded to IEEE half precision (11 significant bits), which
 * halves the bytes a product reads — what bounds batch-1 generation.  The products still
 * accumulate in float, and stay batch-invariant.  Only the AVX-512 kernel reads halves;
 * elsewhere (and in the double build) this packs float weights, as packed_w_init. */
hyper_status packed_w_init_f16(packed_w *p, const real *W, int K, int N, int ldw, char *err);

/* Frees the panels; p is left empty.  Safe on an empty or zeroed p. */
void packed_w_free(packed_w *p);

/* Y (B, N) = beta·Y + X (B, K) · W, beta 0 or 1.  Every row of Y is computed by the same
 * sequence of operations whatever B is and wherever the row sits in the batch (the chain at
 * the top of this file).  X has leading dimension ldx ≥ K, Y ldy ≥ N, and they do not
 * overlap; columns of Y past N are not touched, and with beta 0 Y is not read.  B ≤ 0 does
 * nothing.  Single-threaded; any number of threads may share one packed_w. */
void mm_packed(int B, const real *X, int ldx, const packed_w *W, real beta, real *Y, int ldy);

/* Threads mm_packed may use: 1 (the default) or 2, when a product is large enough to be
 * worth splitting between its column panels.  Results are the same bits either way. */
void kernels_set_threads(int n);
int kernels_get_threads(void);

/* "avx512" | "avx2" | "scalar" — what mm_packed runs for weights from packed_w_init. */
const char *kernels_isa(void);

/* The best kernel this CPU and build support, whether one is supported, and its name. */
kernel_isa kernels_best_isa(void);
int kernels_isa_supported(kernel_isa isa);
const char *kernel_isa_str(kernel_isa isa);

#endif
