/*
 * scheduler.h — one thread per model that steps all of that model's active streams
 * together: every step asks each stream for its next input, gathers their states into one
 * batch, runs one batched model_step (matrix products over the batch), and hands each
 * stream its row of the output.  Streams join and leave between steps.
 *
 * The scheduler knows no model kind by name.  What a stream reads and what it makes of
 * its output is its kind's: a stream_ops table (textgen.h: characters of a language
 * model; pengen.h: points of a handwriting model).  Each stream samples with its own
 * generator and the step's arithmetic does not depend on the batch (kernels.h), so what a
 * stream produces never depends on who else is served.
 *
 * Threads and locks.  Only the scheduler's thread touches the batch and the active streams.
 * Its own lock guards the queue and the statistics and is never held while it admits,
 * steps or retires a stream.  A stream's mu guards its output and is held only to append
 * or read it; a reader's wake-up (sched_req_notify) is given with no lock held, so a
 * wake-up may take any lock of its own (the HTTP server's) without an order to keep.  No
 * lock is held across a model step, a wake-up or a disk write.
 */
#ifndef HYPER_SCHEDULER_H
#define HYPER_SCHEDULER_H

#include <pthread.h>
#include <stdatomic.h>

#include "common.h"
#include "model.h"

#define SCHED_MAX_BATCH 128

typedef enum {
    GEN_RUNNING = 0,
    GEN_LENGTH,     /* everything asked for was produced, or the whole input read */
    GEN_STOP,       /* a stop string was produced */
    GEN_CANCELLED,  /* the client went away or asked */
    GEN_SHUTDOWN,   /* the server is stopping */
} gen_finish;

const char *gen_finish_str(gen_finish f);

typedef struct sched_req sched_req;

/* What a kind of stream does at each step; every call is on the scheduler's thread. */
typedef struct {
    const char *name;
    /* The stream joins the batch (e.g. it computes the output of its state as it is). */
    void (*admit)(sched_req *r, const model *m);
    /* Its next input: *id for one-hot models (cfg.inputs == 0), else x (cfg.inputs reals).
     * 0 when it has nothing more to read, and it leaves.  It may set r->act to have this
     * step's hyper activity handed to output, and r->emitted when it produced something
     * (counted in the statistics).  scratch: sampler_scratch_size(outputs) bytes. */
    int (*input)(sched_req *r, const model *m, int32_t *id, real *x, void *scratch);
    /* After the step: its row of the output (cfg.outputs reals) and, when it asked, the
     * hyper activity of the step (4 reals, gates i g f o; NULL otherwise). */
    void (*output)(sched_req *r, const model *m, const real *out, const real *act);
    /* It leaves with finish f (never GEN_RUNNING): last words, under r->mu, just before
     * r->ended is set and its waiters are woken (may be NULL).  The scheduler does not
     * touch r afterwards. */
    void (*retire)(sched_req *r, gen_finish f);
} stream_ops;

/* The part of a stream the scheduler reads and writes; a kind's request embeds it first. */
struct sched_req {
    sched_req *next;            /* in the scheduler's queue */
    const stream_ops *ops;
    model_state *state;         /* stream 0 of it is the stream's state, owned by the submitter */
    gen_finish want;            /* GEN_RUNNING until the stream must end (its ops may set it) */
    atomic_int cancel;          /* set by anyone: end with GEN_CANCELLED at the next step */
    int act;                    /* this step's activity wanted (set by input) */
    int emitted;                /* this step produced an output (set by input or output) */
    int stepped;                /* took part in the current step */
    int64_t steps;
    double t_submit, t_admit, t_end; /* monotonic ms */
    /* the output side: a kind's output and retire write under mu and broadcast cv */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ended;                  /* under mu */
    gen_finish finish;          /* valid once ended */
    void (*notify)(void *arg);  /* a reader's one-shot wake-up, under mu (sched_req_notify) */
    void (*notify_drop)(void *arg); /* called instead when the wake-up is replaced, or NULL */
    void *notify_arg;
    int (*notify_more)(const sched_req *r); /* when it is due before the end (NULL: at the end) */
};

/* A stream of kind ops on stream 0 of state, and its end. */
void sched_req_init(sched_req *r, const stream_ops *ops, model_state *state);
void sched_req_destroy(sched_req *r);
/* Waits for the end; up to timeout_ms (1 when it has ended). */
void sched_req_wait(sched_req *r);
int sched_req_wait_ms(sched_req *r, int timeout_ms);
/* With r->mu held: waits up to timeout_ms (−1 forever, 0 not at all) until more(r) says
 * there is new output for a reader, or the stream has ended. */
void sched_req_wait_locked(sched_req *r, int (*more)(const sched_req *), int timeout_ms);
/* Asks for fn(arg) to be called once, from whichever thread makes it so, when more(r)
 * (more NULL: only the end counts) or at the end: at once (on this thread) when that is
 * already the case.  fn runs without r->mu held, possibly after r has been freed: arg must
 * stay valid until fn or drop has run (a reference that fn and drop give back).  A new
 * call replaces a wake-up not yet given, whose drop(arg) (may be NULL) is then called;
 * fn NULL takes it back the same way. */
void sched_req_notify(sched_req *r, int (*more)(const sched_req *), void (*fn)(void *arg), void (*drop)(void *arg),
                      void *arg);
/* For a kind's output and the end, with r->mu held: takes the wake-up out when it is due
 * (*fn NULL when none is), to be called once r->mu is released. */
void sched_req_take_notify(sched_req *r, void (**fn)(void *), void **arg);
/* Asks it to end with GEN_CANCELLED at the next step (a no-op once it has ended). */
void sched_req_cancel(sched_req *r);

typedef struct scheduler scheduler;

/* Starts the thread of model m, stepping at most max_batch streams at a time (clamped to
 * 1..SCHED_MAX_BATCH).  NULL when it cannot. */
scheduler *scheduler_start(const model *m, int max_batch);
/* Ends every running stream with GEN_SHUTDOWN after its current step, then the thread;
 * later submissions are refused.  Idempotent.  Only one thread may call it. */
void scheduler_stop(scheduler *s);
/* Stops (if needed) and frees. */
void scheduler_free(scheduler *s);
/* Queues r (its ops and state set; the rest zero); -1 when the scheduler is stopping. */
int scheduler_enqueue(scheduler *s, sched_req *r);

double sched_now_ms(void);

/* Statistics for /metrics. */
typedef struct {
    uint64_t steps, chars, batch_rows; /* chars: outputs produced (characters, points) */
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
