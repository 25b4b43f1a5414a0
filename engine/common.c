/*
 * common.c — status strings, error messages and the random number generator.
 */
#include "common.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

const char *hyper_status_str(hyper_status st)
{
    switch (st) {
    case HYPER_OK: return "ok";
    case HYPER_ERR_ARG: return "invalid argument";
    case HYPER_ERR_NOMEM: return "out of memory";
    case HYPER_ERR_IO: return "i/o error";
    case HYPER_ERR_FORMAT: return "bad file format";
    case HYPER_ERR_VOCAB: return "character outside the vocabulary";
    case HYPER_ERR_ENCODING: return "invalid UTF-8";
    case HYPER_ERR_CANCELLED: return "cancelled";
    case HYPER_ERR_NOT_FOUND: return "not found";
    case HYPER_ERR_CONFLICT: return "conflict";
    case HYPER_ERR_TOO_LARGE: return "too large";
    case HYPER_ERR_NOSPACE: return "no space left";
    }
    return "unknown status";
}

hyper_status hyper_fail(char *err, hyper_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, HYPER_ERRMSG_MAX, fmt, ap);
        va_end(ap);
    }
    return st;
}

struct timespec hyper_deadline(int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* ---- xoshiro256** (Blackman & Vigna), seeded by splitmix64 ---------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void hyper_rng_seed(hyper_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t hyper_rng_next(hyper_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double hyper_rng_uniform(hyper_rng *rng)
{
    return (double)(hyper_rng_next(rng) >> 11) * 0x1.0p-53;
}

double hyper_rng_normal(hyper_rng *rng)
{
    double u1 = hyper_rng_uniform(rng), u2 = hyper_rng_uniform(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* ---- the library's log ---- */

static hyper_log_fn log_fn;
static void *log_user;

void hyper_set_log(hyper_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

void hyper_log(hyper_log_level level, const char *fmt, ...)
{
    char line[HYPER_ERRMSG_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_fn)
        log_fn(level, line, log_user);
    else
        fprintf(stderr, "hyper: %s\n", line);
}
