/*
 * common.h — what every part of the engine shares: the scalar type, status codes, the
 * error-message buffer, and the deterministic random number generator.
 *
 * The engine is built twice from the same sources: libhyper.a computes in float (the
 * build everything ships), libhyper64.a in double (-DHYPER_F64), which exists so the
 * gradient checks can compare against finite differences to 1e-5 and catch a single
 * wrong term.  Checkpoints are float32 on disk in both builds.
 */
#ifndef HYPER_COMMON_H
#define HYPER_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef HYPER_F64
typedef double real;
#else
typedef float real;
#endif

/* Status of every fallible engine call.  0 is success; hyper_status_str names the rest. */
typedef enum {
    HYPER_OK = 0,
    HYPER_ERR_ARG,       /* an argument or configuration value is out of range */
    HYPER_ERR_NOMEM,     /* an allocation failed */
    HYPER_ERR_IO,        /* a file could not be opened, read, written or renamed */
    HYPER_ERR_FORMAT,    /* a file is truncated, corrupt or inconsistent */
    HYPER_ERR_VOCAB,     /* text holds characters outside the model's vocabulary */
    HYPER_ERR_ENCODING,  /* text is not valid UTF-8 */
    HYPER_ERR_CANCELLED, /* a long call was stopped by its caller */
    HYPER_ERR_NOT_FOUND, /* a named thing (dataset, job, model) does not exist */
    HYPER_ERR_CONFLICT,  /* a named thing exists already, or is in a state that forbids it */
    HYPER_ERR_TOO_LARGE, /* data beyond a size limit */
    HYPER_ERR_NOSPACE,   /* a write failed for want of space: the disk or a quota is full */
} hyper_status;

const char *hyper_status_str(hyper_status st);

/* Size of the buffers callers hand in for error messages. */
#define HYPER_ERRMSG_MAX 512

/* Writes a formatted message into err (which may be NULL) and returns st, so that a
 * failing function can end with `return hyper_fail(err, HYPER_ERR_ARG, "...", ...);`. */
/* What the library has to say that is no caller's error (a damaged record skipped at
 * start, a file it could not remove): one line, through the function set with
 * hyper_set_log (the daemon's log), by default "hyper: <line>" on stderr.  Set it once,
 * before other threads start. */
typedef enum { HYPER_LOG_ERROR = 0, HYPER_LOG_WARN, HYPER_LOG_INFO } hyper_log_level;
typedef void (*hyper_log_fn)(hyper_log_level level, const char *line, void *user);
void hyper_set_log(hyper_log_fn fn, void *user);
void hyper_log(hyper_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

hyper_status hyper_fail(char *err, hyper_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The CLOCK_REALTIME time ms milliseconds from now, as pthread_cond_timedwait wants it. */
struct timespec hyper_deadline(int64_t ms);

/* ---- random numbers ------------------------------------------------------------------ */

/* xoshiro256** seeded through splitmix64: small, fast, and the same sequence on every
 * machine for the same seed.  The state is four words so it can be saved in a checkpoint. */
typedef struct {
    uint64_t s[4];
} hyper_rng;

void hyper_rng_seed(hyper_rng *rng, uint64_t seed);
uint64_t hyper_rng_next(hyper_rng *rng);
/* Uniform in [0, 1) with 53 bits (double) of resolution. */
double hyper_rng_uniform(hyper_rng *rng);
/* Standard normal (Box-Muller, one value per call). */
double hyper_rng_normal(hyper_rng *rng);

#endif
