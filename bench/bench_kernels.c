/*
 * bench_kernels.c — the batch-invariant product (kernels.h) against OpenBLAS (mm() in
 * linalg.h, one thread), on the shapes of generation: the 4N × N gate matrix at N = 512
 * (K = 512, N = 2048) and at N = 1000 (K = 1000, N = 4000), for B = 1, 8, 32, 64.
 *
 * Each timing repeats one call on the same operands, the implementations taking turns for
 * --seconds in all (default 1) after a warm-up, and prints the best µs per call and its
 * GFLOP/s (2·B·K·N per call).  The weights
 * (4 MiB and 16 MiB) outlive L2, so both sides read them from L3 every call, as a model
 * step does.  With --all-isas the AVX2 and scalar kernels are timed too.
 *
 * usage: bench_kernels [--seconds S] [--all-isas]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "linalg.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    int B, K, N;
    const real *X, *W;
    real *Y;
    const packed_w *p; /* NULL: OpenBLAS */
} bench_case;

static void run_once(const bench_case *c)
{
    if (c->p)
        mm_packed(c->B, c->X, c->K, c->p, 0, c->Y, c->N);
    else
        mm(0, 0, c->B, c->N, c->K, c->X, c->K, c->W, c->N, 0, c->Y, c->N);
}

/* Seconds per call of each case: the best of ROUNDS rounds of at least `seconds` / ROUNDS
 * each, the cases taking turns round by round.  The best, because anything else running on
 * the machine only ever adds time; taking turns, so that a busy spell hits every case. */
#define ROUNDS 10
static void time_cases(const bench_case *c, int n, double seconds, double *best)
{
    for (int i = 0; i < n; i++) {
        best[i] = 1e30;
        for (int w = 0; w < 3; w++)
            run_once(&c[i]);
    }
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < n; i++) {
            long calls = 0;
            const double t0 = now_seconds();
            double t;
            do {
                run_once(&c[i]);
                calls++;
                t = now_seconds() - t0;
            } while (t < seconds / ROUNDS / n);
            if (t / calls < best[i])
                best[i] = t / calls;
        }
}

int main(int argc, char **argv)
{
    double seconds = 1;
    int all_isas = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--all-isas"))
            all_isas = 1;
        else {
            fprintf(stderr, "usage: %s [--seconds S] [--all-isas]\n", argv[0]);
            return 2;
        }
    }
    linalg_init();
    math_set_threads(1);
    printf("kernels=%s blas=%s threads=1\n", kernels_isa(), linalg_backend());
    printf("%-10s %5s %5s %3s %10s %8s\n", "impl", "K", "N", "B", "us/call", "GFLOP/s");

    static const int shapes[][2] = {{512, 2048}, {1000, 4000}};
    static const int batches[] = {1, 8, 32, 64};
    hyper_rng rng;
    hyper_rng_seed(&rng, 1);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int K = shapes[s][0], N = shapes[s][1], Bmax = 64;
        real *W = malloc((size_t)K * N * sizeof(real));
        real *X = malloc((size_t)Bmax * K * sizeof(real));
        real *Y = malloc((size_t)Bmax * N * sizeof(real));
        if (!W || !X || !Y) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < (size_t)K * N; i++)
            W[i] = (real)(2 * hyper_rng_uniform(&rng) - 1);
        for (size_t i = 0; i < (size_t)Bmax * K; i++)
            X[i] = (real)(2 * hyper_rng_uniform(&rng) - 1);

        packed_w packs[KERNEL_ISA_COUNT];
        memset(packs, 0, sizeof packs);
        char err[HYPER_ERRMSG_MAX];
        for (int isa = 0; isa < KERNEL_ISA_COUNT; isa++) {
            if (!all_isas && isa != (int)kernels_best_isa())
                continue;
            if (!kernels_isa_supported((kernel_isa)isa))
                continue;
            if (packed_w_init_isa(&packs[isa], W, K, N, N, (kernel_isa)isa, err) != HYPER_OK) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
        }
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            const int B = batches[b];
            bench_case cases[1 + KERNEL_ISA_COUNT];
            const char *names[1 + KERNEL_ISA_COUNT];
            int n = 0;
            cases[n] = (bench_case){B, K, N, X, W, Y, NULL};
            names[n++] = "openblas";
            for (int isa = KERNEL_ISA_COUNT - 1; isa >= 0; isa--)
                if (packs[isa].panels) {
                    cases[n] = (bench_case){B, K, N, X, W, Y, &packs[isa]};
                    names[n++] = kernel_isa_str((kernel_isa)isa);
                }
            double best[1 + KERNEL_ISA_COUNT];
            time_cases(cases, n, seconds, best);
            const double flops = 2.0 * B * K * N;
            for (int i = 0; i < n; i++)
                printf("%-10s %5d %5d %3d %10.1f %8.1f\n", names[i], K, N, B, best[i] * 1e6,
                       flops / best[i] * 1e-9);
        }
        for (int isa = 0; isa < KERNEL_ISA_COUNT; isa++)
            packed_w_free(&packs[isa]);
        free(W);
        free(X);
        free(Y);
    }
    return 0;
}
