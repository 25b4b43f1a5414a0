/*
 * scheduler.h — one thread per model that steps all of that model's active requests
 * together: every step gathers their states into one batch, runs one batched step (matrix
 * products over the batch), samples each request's next character with its session's own
 * random generator, and hands the text to whoever waits on the request.  Requests join
 * and leave between steps.
 *
 * A request is either a generation (optional prompt, then up to max_chars characters) or a
 * feed (advance over a text, scoring it in bits per character).  When it ends the session's
 * state holds everything it read and produced: a sampled character is always consumed
 * before the request finishes, even when cancelled.
 */
#ifndef HYPER_SCHEDULER_H
#define HYPER_SCHEDULER_H

#include <pthread.h>
#include <stdatomic.h>

#include "common.h"
#include "registry.h"
#include "sampler.h"
#include "session.h"

#define SCHED_MAX_BATCH 128
#define GEN_MAX_STOPS 8
#define GEN_MAX_STOP_BYTES 256

typedef enum {
    GEN_RUNNING = 0,
    GEN_LENGTH,     /* max_chars produced, or the whole text fed */
    GEN_STOP,       /* a stop string was produced */
    GEN_CANCELLED,  /* the client went away or asked */
    GEN_SHUTDOWN,   /* the server is stopping */
} gen_finish;

const char *gen_finish_str(gen_finish f);

typedef struct gen_request gen_request;

typedef struct {
    int generate;               /* 1 generate, 0 feed */
    const int32_t *input;       /* ids to read first (copied) */
    size_t n_input;
    int64_t max_chars;          /* generate only */
    sampler_params sp;
    int has_seed;
    uint64_t seed;              /* reseeds the session's generator when has_seed */
    const char *stop[GEN_MAX_STOPS]; /* copied */
    int nstop;
    int hyper;                  /* generate only: record each generated character's hyper
                                 * activity (model_hyper_activity, layer 0); hyper cells only */
} gen_spec;

typedef struct {
    double queued_ms, prompt_ms, generate_ms, total_ms;
    double first_char_ms;       /* from submission to the first character */
    int64_t steps;
} gen_timings;

typedef struct scheduler scheduler;

/* Starts the thread of model e, stepping at most max_batch requests together (clamped to
 * 1..SCHED_MAX_BATCH).  NULL when it cannot. */
scheduler *scheduler_start(model_entry *e, int max_batch);
/* Ends every running request with GEN_SHUTDOWN after its current step, then the thread;
 * later submissions return NULL.  Idempotent.  Only one thread may call it. */
void scheduler_stop(scheduler *s);
/* Stops (if needed) and frees. */
void scheduler_free(scheduler *s);

/* Submits a request on session se, which the caller holds (busy) until the request ends.
 * Returns a new request (the caller must gen_request_free it) or NULL when out of memory
 * or stopping. */
gen_request *scheduler_submit(scheduler *s, session *se, const gen_spec *spec);

/* Waits up to timeout_ms (−1 forever) for text or the end; copies at most max bytes of
 * new text (whole UTF-8 characters) into buf and returns the byte count; *finished is set
 * to the finish reason once the request has ended and all its text has been read. */
size_t gen_request_read(gen_request *r, char *buf, size_t max, int timeout_ms,
                        gen_finish *finished);
/* Waits for the end. */
void gen_request_wait(gen_request *r);
/* Waits up to timeout_ms; 1 when the request has ended. */
int gen_request_wait_ms(gen_request *r, int timeout_ms);
/* Asks the request to end with GEN_CANCELLED at the next step. */
void gen_request_cancel(gen_request *r);
/* Results, valid once ended. */
gen_finish gen_request_finish(gen_request *r);
int64_t gen_request_chars(gen_request *r);       /* characters generated */
int64_t gen_request_fed(gen_request *r);         /* characters read from the input */
double gen_request_bits(gen_request *r);         /* Σ −log2 p over the characters fed */
int64_t gen_request_consumed(gen_request *r);    /* characters the session's state read */
gen_timings gen_request_timings(gen_request *r);
/* The whole text produced (borrowed, NUL-terminated, valid until free). */
const char *gen_request_text(gen_request *r, size_t *len);
/* The hyper activity (4 per character: gates i, g, f, o) of generated characters first ..
 * first + n − 1 (counted from 0 in the request's text), for a request submitted with
 * spec.hyper: copied into out (n, 4); returns how many characters were copied (fewer when
 * they are not there yet, 0 for a request without activity).  Every character a reader
 * has seen through gen_request_read or gen_request_text has its activity. */
size_t gen_request_hyper(gen_request *r, size_t first, size_t n, float *out);
/* Cancels if still running, waits for the end, frees. */
void gen_request_free(gen_request *r);

/* Statistics for /metrics. */
typedef struct {
    uint64_t steps, chars, batch_rows;
    uint64_t batch_hist[8];     /* batch sizes ≤ 1, 2, 4, 8, 16, 32, 64, 128 */
    uint64_t step_us_hist[10];  /* step time ≤ 100, 250, 500 µs, 1, 2.5, 5, 10, 25, 50 ms, +Inf */
    double step_us_sum;
    int active;
} sched_stats;

#define SCHED_BATCH_BUCKETS 8
#define SCHED_STEP_BUCKETS 10
extern const double sched_step_bounds_us[SCHED_STEP_BUCKETS - 1];

void scheduler_stats(scheduler *s, sched_stats *out);

#endif
