/*
 * textgen.h — the character streams of the scheduler (scheduler.h): a request on a session
 * of a character model is either a generation (optional prompt, then up to max_chars
 * characters) or a feed (advance over a text, scoring it in bits per character).  Each
 * sampled character is drawn from its session's own generator and consumed in the same
 * step, so when a request ends the session's state holds everything it read and produced,
 * even when cancelled.
 */
#ifndef HYPER_TEXTGEN_H
#define HYPER_TEXTGEN_H

#include "registry.h"
#include "sampler.h"
#include "scheduler.h"
#include "session.h"

#define GEN_MAX_STOPS 8
#define GEN_MAX_STOP_BYTES 256

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

/* Submits a request on session se (of a character model), which the caller holds (busy)
 * until the request ends, to the scheduler of its model.  Returns a new request (the caller
 * must gen_request_free it) or NULL when out of memory or stopping. */
gen_request *textgen_submit(scheduler *s, session *se, const gen_spec *spec);

/* Waits up to timeout_ms (−1 forever) for text or the end; copies at most max bytes of
 * new text (whole UTF-8 characters) into buf and returns the byte count; *finished is set
 * to the finish reason once the request has ended and all its text has been read. */
size_t gen_request_read(gen_request *r, char *buf, size_t max, int timeout_ms,
                        gen_finish *finished);
/* Calls fn(arg) once when there is text to read or the request has ended (at once when
 * there already is), from whichever thread makes it so; fn NULL takes a wake-up back. */
void gen_request_notify(gen_request *r, void (*fn)(void *arg), void (*drop)(void *arg), void *arg);
/* The same, at the request's end only. */
void gen_request_notify_end(gen_request *r, void (*fn)(void *arg), void (*drop)(void *arg), void *arg);
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

#endif
