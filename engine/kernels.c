/*
 * kernels.c — the batch-invariant product of kernels.h: packing, and one kernel per
 * instruction set.
 *
 * Each kernel walks the column panels left to right and, inside a panel, the rows of X in
 * tiles: a tile of R rows × NV vectors keeps R·NV accumulators in registers, loads each W
 * vector once per k for all R rows and broadcasts each X[b][k] once for all NV vectors.
 * The k loop is the innermost and runs 0 … K-1 on every accumulator, so the tile shape
 * decides only how many chains run side by side, never the order inside one.  Rows are
 * cut into as few tiles as the tile height allows, as even as possible; the panel (K·P
 * floats, 96 KiB at K = 512 for AVX-512) stays in L2 while the row tiles after the first
 * read it, so W comes from memory once per product whatever B is.
 *
 *   AVX-512  P = 48 (3 zmm).  Tiles of up to 8 rows × 3 zmm: 24 accumulators, 3 W vectors
 *            and a broadcast, 28 of the 32 registers.  Up to 8 rows (a typical server
 *            batch) make one pass over W, its stream from memory overlapped with the
 *            FMAs; one row is bound by that stream alone, three chains being plenty.
 *   AVX2     P = 32 (4 ymm), only 16 registers: tiles of 3-6 rows × 2 ymm over each half
 *            of a panel (12 accumulators), while one or two rows take the whole panel at
 *            once (4 or 8 accumulators) so that a batch-1 product has four chains per k.
 *   scalar   P = 16, plain loops with fmaf/fma; the path of the double build.
 *
 * A last panel narrower than P runs fewer vectors, its last one read and written through
 * a lane mask.  All three paths give the same bits: an FMA rounds once whatever the
 * vector width, and the padding columns (zero) and masked lanes never reach an output.
 *
 * Threads: the panels are independent, so two threads could take panels [0, n/2) and
 * [n/2, n) of the same call with no change to any result (each core then streams half
 * of W, which is what bounds batch 1); nothing here does that yet.
 */
#include "kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef HYPER_F64
#include <immintrin.h>
#endif

/* Columns per full panel and the vector width the last panel is rounded up to. */
static const struct {
    int panel, vec;
    const char *name;
} layouts[KERNEL_ISA_COUNT] = {
    [KERNEL_ISA_SCALAR] = {16, 1, "scalar"},
    [KERNEL_ISA_AVX2] = {32, 8, "avx2"},
    [KERNEL_ISA_AVX512] = {48, 16, "avx512"},
};

#define PANEL_ALIGN 64

static int round_up(int n, int to) { return (n + to - 1) / to * to; }

/* ---- instruction sets -------------------------------------------------------------------- */

int kernels_isa_supported(kernel_isa isa)
{
    switch (isa) {
    case KERNEL_ISA_SCALAR:
        return 1;
#ifndef HYPER_F64
    case KERNEL_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KERNEL_ISA_AVX512:
        /* libgcc also checks that the OS saves the zmm state (XCR0), not only CPUID. */
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
    default:
        return 0;
    }
}

kernel_isa kernels_best_isa(void)
{
    if (kernels_isa_supported(KERNEL_ISA_AVX512))
        return KERNEL_ISA_AVX512;
    if (kernels_isa_supported(KERNEL_ISA_AVX2))
        return KERNEL_ISA_AVX2;
    return KERNEL_ISA_SCALAR;
}

const char *kernel_isa_str(kernel_isa isa)
{
    return (unsigned)isa < KERNEL_ISA_COUNT ? layouts[isa].name : "unknown";
}

const char *kernels_isa(void) { return kernel_isa_str(kernels_best_isa()); }

/* ---- packing ----------------------------------------------------------------------------- */

/* Lays W out in column panels for isa, as reals or (half) IEEE halves. */
static hyper_status pack(packed_w *p, const real *W, int K, int N, int ldw, kernel_isa isa,
                         int half, char *err)
{
    memset(p, 0, sizeof *p);
    if (!W || K < 1 || N < 1 || ldw < N)
        return hyper_fail(err, HYPER_ERR_ARG, "packed_w: W (%d, %d) with ldw %d", K, N, ldw);
    if (!kernels_isa_supported(isa))
        return hyper_fail(err, HYPER_ERR_ARG, "packed_w: %s kernels are not available here",
                          kernel_isa_str(isa));
    const int P = layouts[isa].panel, V = layouts[isa].vec;
    const size_t padded = (size_t)(N / P) * P + (size_t)round_up(N % P, V);
    const size_t es = half ? sizeof(uint16_t) : sizeof(real);
    size_t bytes = padded * (size_t)K * es;
    bytes = (bytes + PANEL_ALIGN - 1) / PANEL_ALIGN * PANEL_ALIGN;
    void *mem = NULL;
    if (posix_memalign(&mem, PANEL_ALIGN, bytes) != 0)
        return hyper_fail(err, HYPER_ERR_NOMEM, "packed_w: no memory for %zu bytes", bytes);
    size_t at = 0; /* in elements */
    for (int j0 = 0; j0 < N; j0 += P) {
        const int cols = N - j0 < P ? N - j0 : P, width = round_up(cols, V);
        for (int k = 0; k < K; k++, at += (size_t)width)
            for (int c = 0; c < width; c++) {
                const real w = c < cols ? W[(size_t)k * ldw + j0 + c] : 0;
#ifndef HYPER_F64
                if (half) {
                    ((uint16_t *)mem)[at + (size_t)c] = _cvtss_sh(w, _MM_FROUND_TO_NEAREST_INT);
                    continue;
                }
#endif
                ((real *)mem)[at + (size_t)c] = w;
            }
    }
    p->K = K;
    p->N = N;
    p->panel = P;
    p->isa = isa;
    p->half = half;
    p->panels = mem;
    return HYPER_OK;
}

hyper_status packed_w_init_isa(packed_w *p, const real *W, int K, int N, int ldw,
                               kernel_isa isa, char *err)
{
    return pack(p, W, K, N, ldw, isa, 0, err);
}

hyper_status packed_w_init_f16(packed_w *p, const real *W, int K, int N, int ldw, char *err)
{
#ifndef HYPER_F64
    if (kernels_best_isa() == KERNEL_ISA_AVX512)
        return pack(p, W, K, N, ldw, KERNEL_ISA_AVX512, 1, err);
#endif
    return pack(p, W, K, N, ldw, kernels_best_isa(), 0, err);
}

hyper_status packed_w_init(packed_w *p, const real *W, int K, int N, int ldw, char *err)
{
    return packed_w_init_isa(p, W, K, N, ldw, kernels_best_isa(), err);
}

void packed_w_free(packed_w *p)
{
    free(p->panels);
    memset(p, 0, sizeof *p);
}

/* ---- plain C ----------------------------------------------------------------------------- */

#ifdef HYPER_F64
#define fma_r fma
#else
#define fma_r fmaf
#endif

/* Where every chain starts: beta·Y, with Y not read when beta is 0 (it may be garbage). */
static inline real chain_start(real beta, const real *y)
{
    if (beta == 0)
        return 0;
    return beta == 1 ? *y : beta * *y;
}

/* acc[0, cols) continues its chains over W's rows [0, K) (a panel `cols` wide). */
static inline void chains_scalar(int K, int cols, const real *x, const real *w, real *acc)
{
    for (int k = 0; k < K; k++, w += cols) {
        const real xk = x[k];
        for (int c = 0; c < cols; c++)
            acc[c] = fma_r(xk, w[c], acc[c]);
    }
}

/* One row at a time: fast enough for the double build, whose products are for tests. */
static void mm_scalar(int B, const real *X, size_t ldx, const packed_w *W, real beta, real *Y,
                      size_t ldy, int j_lo, int j_hi)
{
    enum { P = 16 };
    const int K = W->K, N = j_hi;
    const real *panel = W->panels + (size_t)j_lo * K;
    for (int j0 = j_lo; j0 < N; j0 += P) {
        const int cols = N - j0 < P ? N - j0 : P;
        for (int b = 0; b < B; b++) {
            real *y = Y + (size_t)b * ldy + j0;
            real acc[P];
            for (int c = 0; c < cols; c++)
                acc[c] = chain_start(beta, y + c);
            if (cols == P) /* a constant width, which the compiler turns into vectors */
                chains_scalar(K, P, X + (size_t)b * ldx, panel, acc);
            else
                chains_scalar(K, cols, X + (size_t)b * ldx, panel, acc);
            memcpy(y, acc, (size_t)cols * sizeof(real));
        }
        panel += (size_t)cols * K;
    }
}

#ifndef HYPER_F64

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define TARGET_AVX2 __attribute__((target("avx2,fma")))

/* Rows are cut into as few tiles as the kernel's tile height allows, as even as possible
 * (9 rows are 5 + 4, not 8 + 1, so that no tile runs short of independent chains): tile t
 * of `tiles` has this many rows. */
static inline int tile_rows(int B, int tiles, int t) { return B / tiles + (t < B % tiles); }

/* Inputs per pass over a panel when several row tiles share it: the panel's rows k0 … k0+KC
 * (192 KiB at AVX-512's width) stay in L2 between the tiles even for a long K.  Cutting K
 * changes no result: a partial sum goes to Y and comes back as the same float, and the
 * chain goes on from it. */
#define KC 1024

/* ---- AVX-512 ----------------------------------------------------------------------------- */

enum { P512 = 48, ROWS512 = 8 };

/* Y rows [0, R) × vectors [0, NV) of one panel: w is the panel (K, 16·NV), y and x the
 * tile's first rows; the last vector's lanes are `last` (all set unless the panel ends
 * inside it).  R and NV are constants at every call, so acc lives in registers. */
ALWAYS_INLINE TARGET_AVX512 void tile512(const int R, const int NV, const int half, int K,
                                          const float *x, size_t ldx, const void *wp,
                                          float beta, float *y, size_t ldy, __mmask16 last)
{
    /* half: the panel holds IEEE half floats (packed_w_init_f16), widened as they load */
    const char *w = wp;
    const size_t row_bytes = (size_t)16 * NV * (half ? 2 : 4);
    __m512 acc[ROWS512][3];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            const __mmask16 m = v == NV - 1 ? last : (__mmask16)0xFFFF;
            if (beta == 0) {
                acc[r][v] = _mm512_setzero_ps();
            } else {
                acc[r][v] = _mm512_maskz_loadu_ps(m, y + r * ldy + 16 * v);
                if (beta != 1)
                    acc[r][v] = _mm512_mul_ps(acc[r][v], _mm512_set1_ps(beta));
            }
        }
#pragma GCC unroll 2
    for (int k = 0; k < K; k++, w += row_bytes) {
        __m512 wv[3];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            wv[v] = half ? _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(w + 32 * v)))
                         : _mm512_load_ps((const float *)w + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 xb = _mm512_set1_ps(x[r * ldx + k]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_fmadd_ps(xb, wv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            const __mmask16 m = v == NV - 1 ? last : (__mmask16)0xFFFF;
            _mm512_mask_storeu_ps(y + r * ldy + 16 * v, m, acc[r][v]);
        }
}

/* One instance of tile512 per (rows, vectors) pair. */
static TARGET_AVX512 void tile512_any(int R, int NV, int half, int K, const float *x,
                                      size_t ldx, const void *w, float beta, float *y,
                                      size_t ldy, __mmask16 last)
{
#define T512(r, nv, h)                                                                    \
    case (h) * 64 + (r) * 8 + (nv):                                                       \
        tile512(r, nv, h, K, x, ldx, w, beta, y, ldy, last);                              \
        return;
#define T512_ROW(r, h) T512(r, 1, h) T512(r, 2, h) T512(r, 3, h)
    switch ((half ? 64 : 0) + R * 8 + NV) {
        T512_ROW(1, 0) T512_ROW(2, 0) T512_ROW(3, 0) T512_ROW(4, 0) T512_ROW(5, 0)
        T512_ROW(6, 0) T512_ROW(7, 0) T512_ROW(8, 0)
        T512_ROW(1, 1) T512_ROW(2, 1) T512_ROW(3, 1) T512_ROW(4, 1) T512_ROW(5, 1)
        T512_ROW(6, 1) T512_ROW(7, 1) T512_ROW(8, 1)
    }
#undef T512_ROW
#undef T512
}

static TARGET_AVX512 void mm_avx512(int B, const float *X, size_t ldx, const packed_w *W,
                                    float beta, float *Y, size_t ldy, int j_lo, int j_hi)
{
    const int K = W->K, N = j_hi, tiles = (B + ROWS512 - 1) / ROWS512;
    /* With one tile, W is read once whatever the order: no need to cut K. */
    const int kc_max = tiles == 1 ? K : KC;
    for (int j0 = j_lo; j0 < N; j0 += P512) {
        const int cols = N - j0 < P512 ? N - j0 : P512, nv = (cols + 15) / 16;
        const __mmask16 last = (__mmask16)(0xFFFFu >> (16 * nv - cols));
        const size_t es = W->half ? 2 : 4; /* bytes per weight */
        const char *w = (const char *)W->panels + (size_t)j0 * K * es;
        for (int k0 = 0; k0 < K; k0 += kc_max) {
            const int kc = K - k0 < kc_max ? K - k0 : kc_max;
            for (int t = 0, b = 0; t < tiles; t++) {
                const int rows = tile_rows(B, tiles, t);
                tile512_any(rows, nv, W->half, kc, X + (size_t)b * ldx + k0, ldx,
                            w + (size_t)k0 * 16 * nv * es, k0 == 0 ? beta : 1,
                            Y + (size_t)b * ldy + j0, ldy, last);
                b += rows;
            }
        }
    }
}

/* ---- AVX2 -------------------------------------------------------------------------------- */

enum { P256 = 32, ROWS256 = 6 };

/* As tile512, for vectors [0, NV) of a panel `stride` floats wide (w and y already point at
 * the first of them); `last` holds the lanes of vector NV-1. */
ALWAYS_INLINE TARGET_AVX2 void tile256(const int R, const int NV, int K, const float *x,
                                        size_t ldx, const float *w, int stride, float beta,
                                        float *y, size_t ldy, __m256i last)
{
    const __m256i all = _mm256_set1_epi32(-1);
    __m256 acc[ROWS256][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            if (beta == 0) {
                acc[r][v] = _mm256_setzero_ps();
            } else {
                acc[r][v] = _mm256_maskload_ps(y + r * ldy + 8 * v, v == NV - 1 ? last : all);
                if (beta != 1)
                    acc[r][v] = _mm256_mul_ps(acc[r][v], _mm256_set1_ps(beta));
            }
        }
#pragma GCC unroll 2
    for (int k = 0; k < K; k++, w += stride) {
        __m256 wv[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            wv[v] = _mm256_load_ps(w + 8 * v);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m256 xb = _mm256_broadcast_ss(x + r * ldx + k);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm256_fmadd_ps(xb, wv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            _mm256_maskstore_ps(y + r * ldy + 8 * v, v == NV - 1 ? last : all, acc[r][v]);
}

/* The shapes mm_avx2 uses: 1-2 rows × 1-4 vectors, 3-6 rows × 1-2 vectors. */
static TARGET_AVX2 void tile256_any(int R, int NV, int K, const float *x, size_t ldx,
                                    const float *w, int stride, float beta, float *y,
                                    size_t ldy, __m256i last)
{
#define T256(r, nv)                                                                       \
    case (r) * 8 + (nv):                                                                  \
        tile256(r, nv, K, x, ldx, w, stride, beta, y, ldy, last);                         \
        return;
    switch (R * 8 + NV) {
        T256(1, 1) T256(1, 2) T256(1, 3) T256(1, 4) T256(2, 1) T256(2, 2) T256(2, 3)
        T256(2, 4) T256(3, 1) T256(3, 2) T256(4, 1) T256(4, 2) T256(5, 1) T256(5, 2)
        T256(6, 1) T256(6, 2)
    }
#undef T256
}

static TARGET_AVX2 void mm_avx2(int B, const float *X, size_t ldx, const packed_w *W,
                                float beta, float *Y, size_t ldy, int j_lo, int j_hi)
{
    const int K = W->K, N = j_hi, tiles = (B + ROWS256 - 1) / ROWS256;
    const int kc_max = tiles == 1 ? K : KC;
    const __m256i all = _mm256_set1_epi32(-1);
    for (int j0 = j_lo; j0 < N; j0 += P256) {
        const int cols = N - j0 < P256 ? N - j0 : P256, nv = (cols + 7) / 8, stride = 8 * nv;
        /* lane i of the last vector is live when i < cols - 8·(nv - 1) */
        const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8 * (nv - 1)),
                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const float *w = W->panels + (size_t)j0 * K;
        for (int k0 = 0; k0 < K; k0 += kc_max) {
            const int kc = K - k0 < kc_max ? K - k0 : kc_max;
            const float *wk = w + (size_t)k0 * stride;
            const float bk = k0 == 0 ? beta : 1;
            if (B <= 2) { /* the whole panel at once: 4 or 8 chains per k */
                tile256_any(B, nv, kc, X + k0, ldx, wk, stride, bk, Y + j0, ldy, last);
                continue;
            }
            /* 3-6 rows a tile: half a panel at a time */
            for (int t = 0, b = 0; t < tiles; t++) {
                const int rows = tile_rows(B, tiles, t);
                for (int v0 = 0; v0 < nv; v0 += 2) {
                    const int n = nv - v0 < 2 ? nv - v0 : 2;
                    tile256_any(rows, n, kc, X + (size_t)b * ldx + k0, ldx, wk + 8 * v0,
                                stride, bk, Y + (size_t)b * ldy + j0 + 8 * v0, ldy,
                                v0 + n == nv ? last : all);
                }
                b += rows;
            }
        }
    }
}

#endif /* !HYPER_F64 */

/* ---- entry point ------------------------------------------------------------------------- */

/* Columns [j_lo, j_hi) of the product (j_lo a multiple of the panel width). */
static void mm_range(int B, const real *X, size_t ldx, const packed_w *W, real beta, real *Y,
                     size_t ldy, int j_lo, int j_hi)
{
    switch (W->isa) {
#ifndef HYPER_F64
    case KERNEL_ISA_AVX512:
        mm_avx512(B, X, ldx, W, beta, Y, ldy, j_lo, j_hi);
        return;
    case KERNEL_ISA_AVX2:
        mm_avx2(B, X, ldx, W, beta, Y, ldy, j_lo, j_hi);
        return;
#endif
    default:
        mm_scalar(B, X, ldx, W, beta, Y, ldy, j_lo, j_hi);
        return;
    }
}

/* ---- a second core ------------------------------------------------------------------------
 * A product big enough to be worth it is cut between panels: the caller computes the left
 * half while one helper thread computes the right half.  Each element is still computed by
 * the same chain of operations, so the result is the same bits as on one thread.  One
 * caller at a time gets the helper; others (another model's scheduler) run alone. */

#define SPLIT_MIN_ELEMS (1 << 16)   /* K·N below this: the hand-off would cost more */

typedef struct {
    int B;
    const real *X;
    size_t ldx;
    const packed_w *W;
    real beta;
    real *Y;
    size_t ldy;
    int j_lo, j_hi;
} range_job;

static struct {
    pthread_mutex_t mu, owner;
    pthread_cond_t posted, finished;
    int threads, started, has_job, done;
    range_job job;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
          PTHREAD_COND_INITIALIZER, 1, 0, 0, 0, {0}};

static void *pool_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.has_job)
            pthread_cond_wait(&pool.posted, &pool.mu);
        range_job j = pool.job;
        pool.has_job = 0;
        pthread_mutex_unlock(&pool.mu);
        mm_range(j.B, j.X, j.ldx, j.W, j.beta, j.Y, j.ldy, j.j_lo, j.j_hi);
        pthread_mutex_lock(&pool.mu);
        pool.done = 1;
        pthread_cond_signal(&pool.finished);
    }
    return NULL;
}

void kernels_set_threads(int n)
{
    pthread_mutex_lock(&pool.mu);
    int want = n >= 2 ? 2 : 1;
    if (want == 2 && !pool.started) {
        pthread_t t;
        if (pthread_create(&t, NULL, pool_main, NULL) == 0) {
            pthread_detach(t);
            pool.started = 1;
        } else {
            want = 1;
        }
    }
    __atomic_store_n(&pool.threads, want, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&pool.mu);
}

int kernels_get_threads(void)
{
    return __atomic_load_n(&pool.threads, __ATOMIC_ACQUIRE);
}

void mm_packed(int B, const real *X, int ldx, const packed_w *W, real beta, real *Y, int ldy)
{
    if (B <= 0)
        return;
    const int N = W->N, panels = (N + W->panel - 1) / W->panel;
    if (panels >= 2 && (size_t)W->K * (size_t)N >= SPLIT_MIN_ELEMS &&
        __atomic_load_n(&pool.threads, __ATOMIC_ACQUIRE) > 1 &&
        pthread_mutex_trylock(&pool.owner) == 0) {
        const int mid = panels / 2 * W->panel;
        pthread_mutex_lock(&pool.mu);
        pool.job = (range_job){B, X, (size_t)ldx, W, beta, Y, (size_t)ldy, mid, N};
        pool.has_job = 1;
        pool.done = 0;
        pthread_cond_signal(&pool.posted);
        pthread_mutex_unlock(&pool.mu);
        mm_range(B, X, (size_t)ldx, W, beta, Y, (size_t)ldy, 0, mid);
        pthread_mutex_lock(&pool.mu);
        while (!pool.done)
            pthread_cond_wait(&pool.finished, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
        pthread_mutex_unlock(&pool.owner);
        return;
    }
    mm_range(B, X, (size_t)ldx, W, beta, Y, (size_t)ldy, 0, N);
}
