/*
 * test_kernels.c — the packed product (kernels.h) against the naive one, and the property it
 * exists for: one row of X gives the same bits in a batch of any size at any position, on
 * every instruction set this CPU runs, and the instruction sets agree with each other.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HYPER_F64
#include <immintrin.h>
#endif

#include "kernels.h"
#include "linalg.h"

/* A quiet NaN with a payload no arithmetic produces: padding that must stay untouched. */
static real sentinel(void)
{
    real s;
#ifdef HYPER_F64
    const uint64_t bits = 0x7ff80000deadbeefull;
#else
    const uint32_t bits = 0x7fc0beefu;
#endif
    memcpy(&s, &bits, sizeof s);
    return s;
}

static int is_sentinel(real v)
{
    const real s = sentinel();
    return memcmp(&v, &s, sizeof v) == 0;
}

static real *alloc_reals(size_t n)
{
    real *a = malloc((n ? n : 1) * sizeof(real));
    ck_assert_ptr_nonnull(a);
    return a;
}

/* A (rows, cols) matrix with leading dimension ld: values uniform in [-1, 1), the padding
 * sentinels. */
static real *random_matrix(int rows, int cols, int ld, hyper_rng *rng)
{
    real *a = alloc_reals((size_t)rows * ld);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ld; j++)
            a[(size_t)i * ld + j] = j < cols ? (real)(2 * hyper_rng_uniform(rng) - 1) : sentinel();
    return a;
}

static void pack(packed_w *p, const real *W, int K, int N, int ldw, kernel_isa isa)
{
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = packed_w_init_isa(p, W, K, N, ldw, isa, err);
    ck_assert_msg(st == HYPER_OK, "packing (%d, %d) for %s: %s", K, N, kernel_isa_str(isa), err);
}

/* ---- against the naive product ------------------------------------------------------------ */

/* Runs one shape on one instruction set and returns the largest error of an element
 * relative to the size of its terms, Σ_k |x_k w_kn| + |beta·y_n| (the quantity a rounding
 * error scales with, so that cancellation in a small result does not look like a bug).
 * Checks on the way that Y's padding columns were not touched. */
static double error_vs_naive(kernel_isa isa, int B, int K, int N, int ldx, int ldy, real beta,
                             hyper_rng *rng)
{
    real *X = random_matrix(B, K, ldx, rng);
    real *W = random_matrix(K, N, N + 1, rng);
    real *Y = random_matrix(B, N, ldy, rng);
    real *ref = alloc_reals((size_t)B * ldy), *y0 = alloc_reals((size_t)B * ldy);
    memcpy(ref, Y, (size_t)B * ldy * sizeof(real));
    memcpy(y0, Y, (size_t)B * ldy * sizeof(real));
    if (beta == 0) /* Y must not be read: make it poison */
        for (int i = 0; i < B; i++)
            for (int j = 0; j < N; j++)
                Y[(size_t)i * ldy + j] = (real)NAN;
    packed_w p;
    pack(&p, W, K, N, N + 1, isa);
    mm_packed(B, X, ldx, &p, beta, Y, ldy);
    mm_naive(0, 0, B, N, K, X, ldx, W, N + 1, beta, ref, ldy);

    double worst = 0;
    for (int i = 0; i < B; i++) {
        for (int j = 0; j < N; j++) {
            double scale = beta == 0 ? 0 : fabs((double)beta * y0[(size_t)i * ldy + j]);
            for (int k = 0; k < K; k++)
                scale += fabs((double)X[(size_t)i * ldx + k] * W[(size_t)k * (N + 1) + j]);
            const double got = Y[(size_t)i * ldy + j], want = ref[(size_t)i * ldy + j];
            const double e = scale > 0 ? fabs(got - want) / scale : fabs(got - want);
            worst = isnan(e) ? INFINITY : fmax(worst, e);
        }
        for (int j = N; j < ldy; j++)
            ck_assert_msg(is_sentinel(Y[(size_t)i * ldy + j]),
                          "%s B=%d K=%d N=%d: padding Y[%d][%d] written", kernel_isa_str(isa), B,
                          K, N, i, j);
    }
    packed_w_free(&p);
    free(X);
    free(W);
    free(Y);
    free(ref);
    free(y0);
    return worst;
}

static const int test_K[] = {1, 2, 3, 4, 5, 16, 17, 64, 128, 513};
static const int test_N[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,  11,  12,  13,  14,  15,
                             16, 17, 31, 32, 33, 48, 50, 63, 64, 65, 96, 113, 128, 129, 200};
static const int test_B[] = {1, 2, 3, 5, 6, 7, 8, 13, 33, 64};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

START_TEST(matches_naive)
{
    const kernel_isa isa = (kernel_isa)_i;
    if (!kernels_isa_supported(isa))
        return;
    hyper_rng rng;
    hyper_rng_seed(&rng, 17 + (uint64_t)_i);
    double worst = 0;
    for (int a = 0; a < COUNT(test_K); a++)
        for (int c = 0; c < COUNT(test_N); c++) {
            /* every K meets every N; batch size, beta and padding rotate through theirs */
            const int K = test_K[a], N = test_N[c], B = test_B[(a + c) % COUNT(test_B)];
            const int ldx = K + (c % 3) * 5, ldy = N + (a % 2) * 7;
            const real beta = (real)((a + c) % 2);
            const double e = error_vs_naive(isa, B, K, N, ldx, ldy, beta, &rng);
            ck_assert_msg(e < 1e-5, "%s B=%d K=%d N=%d ldx=%d ldy=%d beta=%g: max rel err %.3e",
                          kernel_isa_str(isa), B, K, N, ldx, ldy, (double)beta, e);
            worst = fmax(worst, e);
        }
    /* the model's shapes: 4N × N gates, the hyper and output layers, a long K */
    static const int big[][3] = {{1, 512, 2048}, {64, 512, 160}, {2, 1000, 4000},
                                 {32, 512, 96},  {7, 128, 512},  {64, 4, 512},
                                 {7, 1500, 65},  {13, 2100, 40}};
    for (int s = 0; s < COUNT(big); s++)
        for (int beta = 0; beta < 2; beta++) {
            const int B = big[s][0], K = big[s][1], N = big[s][2];
            const double e = error_vs_naive(isa, B, K, N, K, N + 3 * beta, (real)beta, &rng);
            ck_assert_msg(e < 1e-5, "%s B=%d K=%d N=%d beta=%d: max rel err %.3e",
                          kernel_isa_str(isa), B, K, N, beta, e);
            worst = fmax(worst, e);
        }
    if (getenv("TEST_VERBOSE"))
        printf("kernels %s: worst relative error %.3e\n", kernel_isa_str(isa), worst);
}
END_TEST

/* ---- batch invariance --------------------------------------------------------------------- */

#define POOL 64 /* distinct rows of X that batches are cut from */

static const int batch_sizes[] = {1, 2, 3, 5, 8, 33, 64};

/* For one shape: each of POOL rows alone (B = 1) gives the reference row; then for every
 * batch size, batches made of consecutive pool rows (mod POOL) starting at each offset put
 * every row at every position, and each output row must equal its reference bit for bit.
 * With beta 1 each row brings its own initial Y; with beta 0 Y starts as NaN. */
static void check_invariance(kernel_isa isa, int K, int N, int offset_step, real beta,
                             hyper_rng *rng)
{
    const int ldx = K + 1, ldy = N + 2;
    real *W = random_matrix(K, N, N, rng);
    real *Xp = random_matrix(POOL, K, ldx, rng);
    real *Y0 = random_matrix(POOL, N, ldy, rng);
    real *ref = alloc_reals((size_t)POOL * ldy);
    real *Xb = alloc_reals((size_t)POOL * ldx);
    real *Yb = alloc_reals((size_t)POOL * ldy);
    packed_w p;
    pack(&p, W, K, N, N, isa);

    for (int r = 0; r < POOL; r++) {
        memcpy(ref + (size_t)r * ldy, Y0 + (size_t)r * ldy, (size_t)ldy * sizeof(real));
        mm_packed(1, Xp + (size_t)r * ldx, ldx, &p, beta, ref + (size_t)r * ldy, ldy);
    }
    for (int s = 0; s < COUNT(batch_sizes); s++) {
        const int bs = batch_sizes[s];
        for (int o = 0; o < POOL; o += offset_step) {
            for (int i = 0; i < bs; i++) {
                const int r = (o + i) % POOL;
                memcpy(Xb + (size_t)i * ldx, Xp + (size_t)r * ldx, (size_t)ldx * sizeof(real));
                memcpy(Yb + (size_t)i * ldy, Y0 + (size_t)r * ldy, (size_t)ldy * sizeof(real));
                if (beta == 0)
                    for (int j = 0; j < N; j++)
                        Yb[(size_t)i * ldy + j] = (real)NAN;
            }
            mm_packed(bs, Xb, ldx, &p, beta, Yb, ldy);
            for (int i = 0; i < bs; i++) {
                const int r = (o + i) % POOL;
                const real *got = Yb + (size_t)i * ldy, *want = ref + (size_t)r * ldy;
                if (memcmp(got, want, (size_t)N * sizeof(real)) != 0) {
                    int j = 0;
                    while (got[j] == want[j])
                        j++;
                    ck_abort_msg("%s K=%d N=%d beta=%g: row %d at position %d of %d differs "
                                 "from B=1 at column %d (%.9g vs %.9g)",
                                 kernel_isa_str(isa), K, N, (double)beta, r, i, bs, j,
                                 (double)got[j], (double)want[j]);
                }
                for (int j = N; j < ldy; j++)
                    ck_assert(is_sentinel(got[j]));
            }
        }
    }
    packed_w_free(&p);
    free(W);
    free(Xp);
    free(Y0);
    free(ref);
    free(Xb);
    free(Yb);
}

START_TEST(batch_invariant)
{
    const kernel_isa isa = (kernel_isa)_i;
    if (!kernels_isa_supported(isa))
        return;
    hyper_rng rng;
    hyper_rng_seed(&rng, 29 + (uint64_t)_i);
    /* every offset for small shapes (odd widths, K = 1, 4·Z, vocabularies) */
    static const int small[][2] = {{37, 113}, {4, 16}, {128, 50}, {16, 96}, {1, 17},
                                   {9, 1},    {33, 65}, {5, 7},   {64, 130}};
    for (int s = 0; s < COUNT(small); s++)
        for (int beta = 0; beta < 2; beta++)
            check_invariance(isa, small[s][0], small[s][1], 1, (real)beta, &rng);
    /* the 4N × N gate matrix at N = 512, and a K long enough for the kernels to cut it
     * into passes when B > 1: a few offsets (still every position at B = 64) */
    check_invariance(isa, 512, 2048, 32, 1, &rng);
    check_invariance(isa, 1100, 40, 7, 0, &rng);
    check_invariance(isa, 2100, 33, 13, 1, &rng);
}
END_TEST

/* A NaN or Inf in one row of X stays in that row of Y. */
START_TEST(non_finite_rows_stay_put)
{
    const kernel_isa isa = (kernel_isa)_i;
    if (!kernels_isa_supported(isa))
        return;
    hyper_rng rng;
    hyper_rng_seed(&rng, 41);
    const int B = 13, K = 70, N = 77;
    real *W = random_matrix(K, N, N, &rng);
    real *X = random_matrix(B, K, K, &rng);
    real *Y = alloc_reals((size_t)B * N), *one = alloc_reals(N);
    X[5 * K + 3] = (real)NAN;
    X[6 * K + 69] = (real)INFINITY;
    packed_w p;
    pack(&p, W, K, N, N, isa);
    mm_packed(B, X, K, &p, 0, Y, N);
    for (int i = 0; i < B; i++) {
        mm_packed(1, X + (size_t)i * K, K, &p, 0, one, N);
        ck_assert_msg(memcmp(one, Y + (size_t)i * N, (size_t)N * sizeof(real)) == 0,
                      "%s: row %d", kernel_isa_str(isa), i);
        for (int j = 0; j < N; j++)
            ck_assert(i == 5 || i == 6 ? !isfinite(one[j]) : isfinite(one[j]));
    }
    packed_w_free(&p);
    free(W);
    free(X);
    free(Y);
    free(one);
}
END_TEST

/* ---- the instruction sets agree ----------------------------------------------------------- */

/* Not required by mm_packed's contract (which is per process), but true by construction:
 * every path runs the same chain of single-rounding FMAs. */
START_TEST(isas_agree_bit_for_bit)
{
    hyper_rng rng;
    hyper_rng_seed(&rng, 53);
    static const int shapes[][3] = {{1, 512, 2048}, {7, 37, 113}, {64, 128, 96},
                                    {3, 1, 17},     {33, 4, 16},  {6, 100, 65}};
    for (int s = 0; s < COUNT(shapes); s++) {
        const int B = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        real *W = random_matrix(K, N, N, &rng);
        real *X = random_matrix(B, K, K, &rng);
        real *Y0 = random_matrix(B, N, N, &rng);
        real *want = alloc_reals((size_t)B * N), *got = alloc_reals((size_t)B * N);
        packed_w p;
        pack(&p, W, K, N, N, KERNEL_ISA_SCALAR);
        memcpy(want, Y0, (size_t)B * N * sizeof(real));
        mm_packed(B, X, K, &p, 1, want, N);
        packed_w_free(&p);
        for (int isa = KERNEL_ISA_SCALAR + 1; isa < KERNEL_ISA_COUNT; isa++) {
            if (!kernels_isa_supported((kernel_isa)isa))
                continue;
            pack(&p, W, K, N, N, (kernel_isa)isa);
            memcpy(got, Y0, (size_t)B * N * sizeof(real));
            mm_packed(B, X, K, &p, 1, got, N);
            ck_assert_msg(memcmp(got, want, (size_t)B * N * sizeof(real)) == 0,
                          "%s differs from scalar at B=%d K=%d N=%d",
                          kernel_isa_str((kernel_isa)isa), B, K, N);
            packed_w_free(&p);
        }
        free(W);
        free(X);
        free(Y0);
        free(want);
        free(got);
    }
}
END_TEST

/* ---- interface ---------------------------------------------------------------------------- */

START_TEST(isa_is_named)
{
    const char *isa = kernels_isa();
    ck_assert_msg(!strcmp(isa, "avx512") || !strcmp(isa, "avx2") || !strcmp(isa, "scalar"),
                  "kernels_isa() = %s", isa);
    ck_assert_str_eq(isa, kernel_isa_str(kernels_best_isa()));
    ck_assert(kernels_isa_supported(kernels_best_isa()));
    ck_assert(kernels_isa_supported(KERNEL_ISA_SCALAR));
    ck_assert(!kernels_isa_supported(KERNEL_ISA_COUNT));
#ifdef HYPER_F64
    ck_assert_str_eq(isa, "scalar");
#endif
    real W[6] = {1, 2, 3, 4, 5, 6};
    packed_w p;
    ck_assert_int_eq(packed_w_init(&p, W, 2, 3, 3, NULL), HYPER_OK);
    ck_assert_str_eq(kernel_isa_str((kernel_isa)p.isa), isa);
    packed_w_free(&p);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    real W[12] = {0};
    char err[HYPER_ERRMSG_MAX];
    packed_w p;
    ck_assert_int_eq(packed_w_init(&p, W, 0, 3, 3, err), HYPER_ERR_ARG);
    ck_assert_ptr_null(p.panels);
    ck_assert_ptr_nonnull(strstr(err, "packed_w"));
    ck_assert_int_eq(packed_w_init(&p, W, 3, 0, 3, err), HYPER_ERR_ARG);
    ck_assert_int_eq(packed_w_init(&p, W, 3, 4, 3, err), HYPER_ERR_ARG);
    ck_assert_int_eq(packed_w_init(&p, NULL, 3, 4, 4, NULL), HYPER_ERR_ARG);
    ck_assert_int_eq(packed_w_init_isa(&p, W, 3, 4, 4, KERNEL_ISA_COUNT, err), HYPER_ERR_ARG);
    packed_w_free(&p);
    packed_w_free(&p);
}
END_TEST

/* The panels are a copy, and a product by hand: y = x · W for a 2 × 3 W. */
START_TEST(small_case_by_hand)
{
    real W[6] = {1, 2, 3, 4, 5, 6}; /* (2, 3) */
    packed_w p;
    ck_assert_int_eq(packed_w_init(&p, W, 2, 3, 3, NULL), HYPER_OK);
    W[0] = 100;
    const real x[2] = {1, -2};
    real y[3] = {10, 20, 30};
    mm_packed(1, x, 2, &p, 1, y, 3);
    ck_assert(y[0] == 10 + 1 - 8 && y[1] == 20 + 2 - 10 && y[2] == 30 + 3 - 12);
    mm_packed(1, x, 2, &p, 0, y, 3);
    ck_assert(y[0] == -7 && y[1] == -8 && y[2] == -9);
    mm_packed(0, x, 2, &p, 0, y, 3);
    ck_assert(y[0] == -7);
    packed_w_free(&p);
}
END_TEST

/* Two threads split a large product between column panels: the same bits as one. */
START_TEST(two_threads_give_the_same_bits)
{
    const int K = 300, N = 1000, Bs[] = {1, 3, 17};
    hyper_rng rng;
    hyper_rng_seed(&rng, 77);
    real *W = malloc((size_t)K * N * sizeof(real));
    for (int k = 0; k < K * N; k++)
        W[k] = (real)hyper_rng_normal(&rng);
    packed_w pw;
    ck_assert_int_eq(packed_w_init(&pw, W, K, N, N, NULL), HYPER_OK);
    for (size_t t = 0; t < sizeof Bs / sizeof Bs[0]; t++) {
        const int B = Bs[t];
        real *X = malloc((size_t)B * K * sizeof(real));
        real *Y1 = malloc((size_t)B * N * sizeof(real)), *Y2 = malloc((size_t)B * N * sizeof(real));
        for (int k = 0; k < B * K; k++)
            X[k] = (real)hyper_rng_normal(&rng);
        for (int k = 0; k < B * N; k++)
            Y1[k] = Y2[k] = (real)hyper_rng_normal(&rng);
        kernels_set_threads(1);
        mm_packed(B, X, K, &pw, 1, Y1, N);
        kernels_set_threads(2);
        ck_assert_int_eq(kernels_get_threads(), 2);
        mm_packed(B, X, K, &pw, 1, Y2, N);
        kernels_set_threads(1);
        ck_assert_msg(memcmp(Y1, Y2, (size_t)B * N * sizeof(real)) == 0,
                      "B=%d: two threads changed the result", B);
        free(X);
        free(Y1);
        free(Y2);
    }
    packed_w_free(&pw);
    free(W);
}
END_TEST

/* Half-precision panels: the product of the rounded weights, and still batch-invariant. */
START_TEST(half_weights_multiply_their_rounded_values)
{
    const int K = 200, N = 113, B = 7;
    hyper_rng rng;
    hyper_rng_seed(&rng, 31);
    real *W = malloc((size_t)K * N * sizeof(real)), *Wr = malloc((size_t)K * N * sizeof(real));
    real *X = malloc((size_t)B * K * sizeof(real));
    real *Y = malloc((size_t)B * N * sizeof(real)), *R = malloc((size_t)B * N * sizeof(real));
    real *Y1 = malloc((size_t)N * sizeof(real));
    for (int k = 0; k < K * N; k++)
        W[k] = (real)(0.3 * hyper_rng_normal(&rng));
    for (int k = 0; k < B * K; k++)
        X[k] = (real)hyper_rng_normal(&rng);
    packed_w pw;
    ck_assert_int_eq(packed_w_init_f16(&pw, W, K, N, N, NULL), HYPER_OK);
    for (int k = 0; k < K * N; k++) {
#ifndef HYPER_F64
        Wr[k] = pw.half ? _cvtsh_ss(_cvtss_sh(W[k], _MM_FROUND_TO_NEAREST_INT)) : W[k];
#else
        ck_assert_int_eq(pw.half, 0); /* the double build keeps its weights */
        Wr[k] = W[k];
#endif
    }
    mm_packed(B, X, K, &pw, 0, Y, N);
    mm_naive(0, 0, B, N, K, X, K, Wr, N, 0, R, N);
    double worst = 0;
    for (int k = 0; k < B * N; k++)
        worst = fmax(worst, fabs((double)Y[k] - R[k]) / (1 + fabs((double)R[k])));
    ck_assert_msg(worst < 1e-5, "half panels: max difference %.3e from the rounded product", worst);
    for (int b = 0; b < B; b++) { /* each row alone gives the bits it got in the batch */
        mm_packed(1, X + (size_t)b * K, K, &pw, 0, Y1, N);
        ck_assert_msg(memcmp(Y1, Y + (size_t)b * N, (size_t)N * sizeof(real)) == 0,
                      "row %d differs alone", b);
    }
    packed_w_free(&pw);
    free(W); free(Wr); free(X); free(Y); free(R); free(Y1);
}
END_TEST

Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("packed product");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, isa_is_named);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, small_case_by_hand);
    tcase_add_loop_test(tc, matches_naive, 0, KERNEL_ISA_COUNT);
    tcase_add_loop_test(tc, batch_invariant, 0, KERNEL_ISA_COUNT);
    tcase_add_loop_test(tc, non_finite_rows_stay_put, 0, KERNEL_ISA_COUNT);
    tcase_add_test(tc, isas_agree_bit_for_bit);
    tcase_add_test(tc, two_threads_give_the_same_bits);
    tcase_add_test(tc, half_weights_multiply_their_rounded_values);
    suite_add_tcase(s, tc);
    return s;
}
