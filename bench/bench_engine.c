/*
 * bench_engine.c — the engine's side of `make bench`: how fast one LN-HyperLSTM layer
 * generates text one character at a time and how fast it trains, at 1 and 2 BLAS threads.
 *
 *   generation  batch 1: per character one model_step and one sampler_sample (temperature 1),
 *               the sampled id fed back as the next input, after a warm-up.
 *   training    the real trainer over a random text of V distinct characters, B = 32, T = 100:
 *               forward + backward + clipping + Adam per trainer_step, after a warm-up step;
 *               chars/s = B·T·steps / seconds.
 *
 * Every result is one line of `key=value` fields that bench/run.sh joins with PyTorch's:
 *   info impl=hyperd backend=SkylakeX
 *   gen impl=hyperd N=512 H=128 Z=4 V=96 threads=1 chars=… seconds=… chars_per_s=… us_per_char=…
 *   gen impl=hyperd16 …   (the same with weights rounded to half precision)
 *   train impl=hyperd N=512 H=128 Z=4 V=96 threads=1 B=32 T=100 steps=… seconds=… chars_per_s=… loss=…
 *
 * usage: bench_engine [--gen-seconds S] [--train-seconds S] [--min-train-steps K]
 *                     [--threads 1,2] [--configs 512:96,1000:50]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "linalg.h"
#include "model.h"
#include "sampler.h"
#include "trainer.h"

#define BENCH_H 128          /* hyper units */
#define BENCH_Z 4            /* embedding size */
#define BENCH_B 32           /* training batch */
#define BENCH_T 100          /* training sequence length */
#define BENCH_MAX_LIST 8     /* thread counts or configurations on the command line */
#define GEN_WARMUP_CHARS 200
#define GEN_CHECK_EVERY 32   /* characters between clock reads */
#define TRAIN_CAP 3          /* a slow step stops the timed loop at 3x the time asked */
#define CORPUS_CHARS 200000  /* random training text: 6250 characters per stream */

/* 96 distinct one-byte characters: newline and printable ASCII; a vocabulary of V takes
 * the first V of them. */
#define ALPHABET_MAX 96

typedef struct {
    int32_t units, vocab;
} bench_config;

typedef struct {
    double gen_seconds, train_seconds;
    int min_train_steps;
    int threads[BENCH_MAX_LIST], nthreads;
    bench_config configs[BENCH_MAX_LIST];
    int nconfigs;
} bench_options;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void alphabet(char *out)
{
    out[0] = '\n';
    for (int k = 1; k < ALPHABET_MAX; k++)
        out[k] = (char)(' ' + k - 1); /* ' ' .. '~' */
}

static model_config bench_model_config(const bench_config *bc)
{
    return (model_config){
        .cell = CELL_LNHYPERLSTM,
        .layers = 1,
        .units = bc->units,
        .hyper_units = BENCH_H,
        .embed = BENCH_Z,
        .inputs = 0,
        .outputs = bc->vocab,
    };
}

/* ---- generation ------------------------------------------------------------------------ */

/* Generates for at least `seconds` after a warm-up at the current thread count and prints
 * one `gen` line.  Returns 0, or -1 when something could not be allocated. */
static int bench_generation(const model *m, const char *impl, const bench_config *bc, int threads,
                            double seconds)
{
    const int32_t V = m->cfg.outputs;
    char err[HYPER_ERRMSG_MAX];
    model_state s;
    if (model_state_init(&s, &m->cfg, 1, err) != HYPER_OK) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return -1;
    }
    model_step_ws *ws = model_step_ws_new(&m->cfg, 1);
    real *logits = malloc((size_t)V * sizeof *logits);
    void *scratch = malloc(sampler_scratch_size(V));
    int rc = -1;
    if (!ws || !logits || !scratch) {
        fprintf(stderr, "bench_engine: out of memory\n");
        goto out;
    }
    sampler_params sp;
    sampler_params_default(&sp); /* temperature 1, no top-k or top-p */
    hyper_rng rng;
    hyper_rng_seed(&rng, 7);
    int32_t id = 0;
    for (int k = 0; k < GEN_WARMUP_CHARS; k++) {
        model_step(m, &s, ws, 1, &id, NULL, logits);
        id = sampler_sample(logits, V, &sp, &rng, scratch);
    }
    long chars = 0;
    const double start = now_seconds();
    double elapsed = 0;
    do {
        for (int k = 0; k < GEN_CHECK_EVERY; k++) {
            model_step(m, &s, ws, 1, &id, NULL, logits);
            id = sampler_sample(logits, V, &sp, &rng, scratch);
        }
        chars += GEN_CHECK_EVERY;
        elapsed = now_seconds() - start;
    } while (elapsed < seconds);
    printf("gen impl=%s N=%d H=%d Z=%d V=%d threads=%d chars=%ld seconds=%.3f "
           "chars_per_s=%.1f us_per_char=%.2f\n",
           impl, bc->units, BENCH_H, BENCH_Z, bc->vocab, threads, chars, elapsed,
           (double)chars / elapsed, elapsed * 1e6 / (double)chars);
    fflush(stdout);
    rc = 0;
out:
    free(scratch);
    free(logits);
    model_step_ws_free(ws);
    model_state_free(&s);
    return rc;
}

/* ---- training -------------------------------------------------------------------------- */

/* Writes CORPUS_CHARS random characters of the first V of the alphabet (every one of them
 * at least once, so the corpus has exactly V) to a new temporary file; its path goes into
 * path (which must end in XXXXXX).  Returns 0 or -1 with a message printed. */
static int write_corpus(char *path, int32_t V)
{
    char chars[ALPHABET_MAX];
    alphabet(chars);
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "bench_engine: %s: %s\n", path, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "bench_engine: %s: %s\n", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    hyper_rng rng;
    hyper_rng_seed(&rng, 11);
    fwrite(chars, 1, (size_t)V, f);
    for (long k = V; k < CORPUS_CHARS; k++)
        fputc(chars[hyper_rng_next(&rng) % (uint64_t)V], f);
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_engine: %s: write failed\n", path);
        unlink(path);
        return -1;
    }
    return 0;
}

/* Trains on at the current thread count for at least `seconds` and min_steps steps (but
 * no longer than TRAIN_CAP·seconds) after one warm-up step and prints one `train` line. */
static void bench_training(trainer *t, const bench_config *bc, int threads, double seconds,
                           int min_steps)
{
    trainer_step(t);
    long steps = 0;
    double loss = 0, elapsed = 0;
    const double start = now_seconds();
    do {
        loss = trainer_step(t);
        steps++;
        elapsed = now_seconds() - start;
    } while ((elapsed < seconds || steps < min_steps) && elapsed < TRAIN_CAP * seconds);
    const double chars = (double)steps * BENCH_B * BENCH_T;
    printf("train impl=hyperd N=%d H=%d Z=%d V=%d threads=%d B=%d T=%d steps=%ld seconds=%.3f "
           "chars_per_s=%.1f loss=%.4f\n",
           bc->units, BENCH_H, BENCH_Z, bc->vocab, threads, BENCH_B, BENCH_T, steps, elapsed,
           chars / elapsed, loss);
    fflush(stdout);
}

/* ---- one configuration ------------------------------------------------------------------ */

/* One trainer serves both measurements: generation runs on its freshly initialised model
 * (model_init is the slow part of setting up, seconds at N = 1000), then training goes on
 * from there at each thread count in turn. */
static int bench_config_run(const bench_config *bc, const bench_options *o)
{
    char err[HYPER_ERRMSG_MAX];
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/hyperd-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (write_corpus(path, bc->vocab) != 0)
        return -1;
    corpus text;
    hyper_status st = corpus_load(&text, path, (size_t)CORPUS_CHARS + 1, NULL, 0.0, err);
    unlink(path);
    if (st != HYPER_OK) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return -1;
    }
    if (text.voc.size != bc->vocab) {
        fprintf(stderr, "bench_engine: the corpus has %d characters, not %d\n", text.voc.size,
                bc->vocab);
        corpus_free(&text);
        return -1;
    }
    const model_config cfg = bench_model_config(bc);
    train_params tp;
    train_params_default(&tp); /* B 32, T 100, lr 2e-3, clip 1, no dropout */
    tp.batch = BENCH_B;
    tp.seq = BENCH_T;
    tp.steps = 1000000000;
    trainer *t = NULL;
    if (trainer_new(&t, &cfg, &tp, &(train_data){.text = &text}, err) != HYPER_OK) {
        fprintf(stderr, "bench_engine: %s\n", err);
        corpus_free(&text);
        return -1;
    }
    /* generation runs as hyperd and `hyper sample` run it: on a packed copy of the weights,
     * in float ("hyperd") and rounded to half precision ("hyperd16", --half-weights 1) */
    const model *tm = trainer_model(t);
    int rc = 0;
    for (int half = 0; half < 2 && rc == 0; half++) {
        model served;
        rc = model_create(&served, &tm->cfg, err) == HYPER_OK ? 0 : -1;
        if (rc == 0) {
            memcpy(served.block, tm->block, tm->size * sizeof(real));
            rc = model_pack(&served, half, err) == HYPER_OK ? 0 : -1;
        }
        if (rc != 0)
            fprintf(stderr, "bench_engine: %s\n", err);
        for (int k = 0; k < o->nthreads && rc == 0; k++) {
            math_set_threads(o->threads[k]);
            kernels_set_threads(o->threads[k]);
            rc = bench_generation(&served, half ? "hyperd16" : "hyperd", bc, o->threads[k],
                                  o->gen_seconds);
        }
        kernels_set_threads(1);
        model_free(&served);
    }
    for (int k = 0; k < o->nthreads && rc == 0 && o->train_seconds > 0; k++) {
        math_set_threads(o->threads[k]);
        bench_training(t, bc, o->threads[k], o->train_seconds, o->min_train_steps);
    }
    trainer_free(t);
    corpus_free(&text);
    return rc;
}

/* ---- command line ------------------------------------------------------------------------ */

/* Parses "a,b,c" into up to BENCH_MAX_LIST ints in [lo, hi]; returns the count or -1. */
static int parse_int_list(const char *s, int *out, int lo, int hi)
{
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < lo || v > hi || n == BENCH_MAX_LIST)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

/* Parses "N:V,N:V" into configurations; returns the count or -1. */
static int parse_configs(const char *s, bench_config *out)
{
    int n = 0;
    while (*s) {
        int units, vocab, used = 0;
        if (n == BENCH_MAX_LIST || sscanf(s, "%d:%d%n", &units, &vocab, &used) != 2)
            return -1;
        if (units < 1 || units > MODEL_MAX_UNITS || vocab < 2 || vocab > ALPHABET_MAX)
            return -1;
        out[n++] = (bench_config){units, vocab};
        s += used;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_engine [--gen-seconds S] [--train-seconds S] "
                    "[--min-train-steps K] [--threads 1,2] [--configs 512:96,1000:50]\n"
                    "  --train-seconds 0 skips training; V is at most %d\n",
            ALPHABET_MAX);
    return 2;
}

int main(int argc, char **argv)
{
    bench_options o = {
        .gen_seconds = 5,
        .train_seconds = 15,
        .min_train_steps = 3,
        .threads = {1, 2},
        .nthreads = 2,
        .configs = {{512, 96}, {1000, 50}},
        .nconfigs = 2,
    };
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
        if (!v)
            return usage();
        k++;
        if (strcmp(a, "--gen-seconds") == 0)
            o.gen_seconds = strtod(v, NULL);
        else if (strcmp(a, "--train-seconds") == 0)
            o.train_seconds = strtod(v, NULL);
        else if (strcmp(a, "--min-train-steps") == 0)
            o.min_train_steps = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            o.nthreads = parse_int_list(v, o.threads, 1, 256);
        else if (strcmp(a, "--configs") == 0)
            o.nconfigs = parse_configs(v, o.configs);
        else
            return usage();
    }
    if (o.nthreads < 1 || o.nconfigs < 1 || !(o.gen_seconds > 0) || !(o.train_seconds >= 0) ||
        o.min_train_steps < 1)
        return usage();

    linalg_init();
    printf("info impl=hyperd backend=%s\n", linalg_backend());
    fflush(stdout);
    for (int k = 0; k < o.nconfigs; k++)
        if (bench_config_run(&o.configs[k], &o) != 0)
            return 1;
    return 0;
}
