/*
 * scheduler.c — the batching loop of scheduler.h.
 *
 * Per iteration: admit queued streams, ask every active stream for its next input (its
 * kind decides: a prompt character, one it samples now, the pen's last point), gather the
 * states of all streams with an input into one batch, run one model_step over it, scatter
 * the states back and hand each stream its output row, and retire the streams that had
 * nothing more to read.
 */
#include "scheduler.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sampler.h"

const double sched_step_bounds_us[SCHED_STEP_BUCKETS - 1] = {100, 250, 500, 1000, 2500,
                                                             5000, 10000, 25000, 50000};

const char *gen_finish_str(gen_finish f)
{
    switch (f) {
    case GEN_RUNNING: return "running";
    case GEN_LENGTH: return "length";
    case GEN_STOP: return "stop";
    case GEN_CANCELLED: return "cancelled";
    case GEN_SHUTDOWN: return "shutdown";
    }
    return "unknown";
}

struct scheduler {
    const model *m;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sched_req *queue_head, *queue_tail;
    int stopping;
    sched_req *active[SCHED_MAX_BATCH];
    int nactive;
    int max_batch;
    /* step buffers, used only by the scheduler thread */
    model_state batch;          /* SCHED_MAX_BATCH rows */
    model_step_ws *ws;
    real *out;                  /* (SCHED_MAX_BATCH, outputs) */
    int32_t ids[SCHED_MAX_BATCH];
    real *x;                    /* (SCHED_MAX_BATCH, inputs) dense models */
    sched_req *rows[SCHED_MAX_BATCH];
    real *hh_before;            /* (SCHED_MAX_BATCH, H) layer 0's ĥ before the step (hyper) */
    void *scratch;
    /* statistics, under mu */
    sched_stats stats;
};

double sched_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ---- the loop ---------------------------------------------------------------------- */

static void admit(scheduler *s, sched_req *r)
{
    r->t_admit = sched_now_ms();
    r->ops->admit(r, s->m);
    s->active[s->nactive++] = r;
}

static void retire(sched_req *r, gen_finish f)
{
    pthread_mutex_lock(&r->mu);
    if (r->ops->retire)
        r->ops->retire(r, f);
    r->finish = f;
    r->t_end = sched_now_ms();
    r->ended = 1;
    void (*fn)(void *);
    void *arg;
    sched_req_take_notify(r, &fn, &arg);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu); /* from here on the scheduler never touches r */
    if (fn) /* r may be freed by now; fn's argument is the reader's own (it keeps it alive) */
        fn(arg);
}

/* One batched step over rows n streams from s->rows + off. */
static void step_rows(scheduler *s, int off, int n)
{
    const model *m = s->m;
    const size_t H = (size_t)m->cfg.hyper_units, I = (size_t)m->cfg.inputs, O = (size_t)m->cfg.outputs;
    for (int k = 0; k < n; k++) {
        sched_req *r = s->rows[off + k];
        model_state_copy_stream(&m->cfg, &s->batch, k, r->state, 0);
        if (r->act) /* only streams that asked pay for the activity */
            memcpy(s->hh_before + k * H, s->batch.hh[0] + k * H, H * sizeof(real));
    }
    model_step(m, &s->batch, s->ws, n, I ? NULL : s->ids + off, I ? s->x + (size_t)off * I : NULL, s->out);
    for (int k = 0; k < n; k++) {
        sched_req *r = s->rows[off + k];
        real a[4];
        if (r->act)
            model_hyper_activity(m, 0, s->hh_before + k * H, s->batch.hh[0] + k * H, a);
        model_state_copy_stream(&m->cfg, r->state, 0, &s->batch, k);
        r->ops->output(r, m, s->out + (size_t)k * O, r->act ? a : NULL);
        r->steps++;
    }
}

static void count_step(scheduler *s, int rows, uint64_t emitted, double step_us)
{
    s->stats.steps++;
    s->stats.chars += emitted;
    s->stats.batch_rows += (uint64_t)rows;
    int bb = 0;
    while (bb < SCHED_BATCH_BUCKETS - 1 && rows > (1 << bb))
        bb++;
    s->stats.batch_hist[bb]++;
    int sb = 0;
    while (sb < SCHED_STEP_BUCKETS - 1 && step_us > sched_step_bounds_us[sb])
        sb++;
    s->stats.step_us_hist[sb]++;
    s->stats.step_us_sum += step_us;
}

static void *scheduler_main(void *arg)
{
    scheduler *s = arg;
    const model *m = s->m;
    const size_t I = (size_t)m->cfg.inputs;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && s->nactive == 0 && !s->queue_head)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping && s->nactive == 0 && !s->queue_head)
            break;
        /* new streams join below, outside the lock (admitting one computes its output) */
        sched_req *incoming[SCHED_MAX_BATCH];
        int nin = 0;
        while (s->queue_head && s->nactive + nin < SCHED_MAX_BATCH) {
            sched_req *r = s->queue_head;
            s->queue_head = r->next;
            if (!s->queue_head)
                s->queue_tail = NULL;
            incoming[nin++] = r;
        }
        /* a cancelled request still waiting for a place leaves now, not after its turn */
        sched_req *gone = NULL;
        for (sched_req **p = &s->queue_head, *prev = NULL; *p;) {
            sched_req *r = *p;
            if (atomic_load(&r->cancel) || s->stopping) {
                *p = r->next;
                if (s->queue_tail == r)
                    s->queue_tail = prev;
                r->next = gone;
                gone = r;
            } else {
                prev = r;
                p = &r->next;
            }
        }
        const int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        for (int k = 0; k < nin; k++)
            admit(s, incoming[k]);
        while (gone) {
            sched_req *r = gone;
            gone = r->next;
            retire(r, stopping ? GEN_SHUTDOWN : GEN_CANCELLED);
        }

        int rows = 0;
        uint64_t emitted = 0;
        for (int i = 0; i < s->nactive; i++) {
            sched_req *r = s->active[i];
            r->stepped = r->act = r->emitted = 0;
            if (r->want == GEN_RUNNING && (stopping || atomic_load(&r->cancel)))
                r->want = stopping ? GEN_SHUTDOWN : GEN_CANCELLED;
            if (r->want != GEN_RUNNING ||
                !r->ops->input(r, m, s->ids + rows, I ? s->x + (size_t)rows * I : NULL, s->scratch)) {
                emitted += (uint64_t)r->emitted;
                continue;
            }
            r->stepped = 1;
            s->rows[rows++] = r;
        }
        /* one batched step over all of them (in chunks of max_batch when that is smaller) */
        const double t0 = sched_now_ms();
        for (int off = 0; off < rows; off += s->max_batch)
            step_rows(s, off, rows - off < s->max_batch ? rows - off : s->max_batch);
        const double step_us = rows > 0 ? (sched_now_ms() - t0) * 1e3 : 0;
        for (int k = 0; k < rows; k++)
            emitted += (uint64_t)s->rows[k]->emitted;

        /* the ones that read nothing leave, told outside the scheduler's lock (their
         * wake-ups may resume connections or queue work) */
        int kept = 0, left = 0;
        sched_req *leaving[SCHED_MAX_BATCH];
        for (int i = 0; i < s->nactive; i++) {
            sched_req *r = s->active[i];
            if (r->stepped)
                s->active[kept++] = r;
            else
                leaving[left++] = r;
        }
        for (int k = 0; k < left; k++)
            retire(leaving[k], leaving[k]->want != GEN_RUNNING ? leaving[k]->want : GEN_LENGTH);
        s->nactive = kept;
        pthread_mutex_lock(&s->mu);
        s->stats.active = kept;
        if (rows > 0)
            count_step(s, rows, emitted, step_us);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- lifetime ------------------------------------------------------------------------ */

static void buffers_free(scheduler *s)
{
    model_state_free(&s->batch);
    model_step_ws_free(s->ws);
    free(s->out);
    free(s->x);
    free(s->scratch);
    free(s->hh_before);
}

scheduler *scheduler_start(const model *m, int max_batch)
{
    scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->m = m;
    s->max_batch = max_batch < 1 ? 1 : max_batch > SCHED_MAX_BATCH ? SCHED_MAX_BATCH : max_batch;
    const model_config *c = &m->cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int ok = model_state_init(&s->batch, c, SCHED_MAX_BATCH, NULL) == HYPER_OK;
    s->ws = model_step_ws_new(c, SCHED_MAX_BATCH);
    s->out = malloc((size_t)SCHED_MAX_BATCH * c->outputs * sizeof(real));
    s->x = c->inputs ? malloc((size_t)SCHED_MAX_BATCH * c->inputs * sizeof(real)) : NULL;
    s->scratch = malloc(sampler_scratch_size(c->outputs));
    const int hyper = cell_is_hyper((cell_kind)c->cell);
    if (hyper)
        s->hh_before = malloc((size_t)SCHED_MAX_BATCH * c->hyper_units * sizeof(real));
    if (!ok || !s->ws || !s->out || (c->inputs && !s->x) || !s->scratch || (hyper && !s->hh_before) ||
        pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        buffers_free(s);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
    }
    return s;
}

void scheduler_stop(scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    int was = s->stopping;
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!was)
        pthread_join(s->thread, NULL);
}

void scheduler_free(scheduler *s)
{
    if (!s)
        return;
    scheduler_stop(s);
    buffers_free(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int scheduler_enqueue(scheduler *s, sched_req *r)
{
    r->t_submit = sched_now_ms();
    r->want = GEN_RUNNING;
    r->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (s->queue_tail)
        s->queue_tail->next = r;
    else
        s->queue_head = r;
    s->queue_tail = r;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void scheduler_stats(scheduler *s, sched_stats *out)
{
    if (!s) {   /* a classifier: nothing is stepped */
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

/* ---- streams ------------------------------------------------------------------------- */

void sched_req_init(sched_req *r, const stream_ops *ops, model_state *state)
{
    memset(r, 0, sizeof *r);
    r->ops = ops;
    r->state = state;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

void sched_req_destroy(sched_req *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

void sched_req_wait(sched_req *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->ended)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

int sched_req_wait_ms(sched_req *r, int timeout_ms)
{
    const struct timespec until = hyper_deadline(timeout_ms);
    pthread_mutex_lock(&r->mu);
    while (!r->ended)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0)
            break;
    const int ended = r->ended;
    pthread_mutex_unlock(&r->mu);
    return ended;
}

void sched_req_wait_locked(sched_req *r, int (*more)(const sched_req *), int timeout_ms)
{
    if (timeout_ms < 0) {
        while (!more(r) && !r->ended)
            pthread_cond_wait(&r->cv, &r->mu);
    } else if (timeout_ms > 0) {
        const struct timespec until = hyper_deadline(timeout_ms);
        while (!more(r) && !r->ended)
            if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0)
                break;
    }
}

void sched_req_take_notify(sched_req *r, void (**fn)(void *), void **arg)
{
    *fn = NULL;
    *arg = NULL;
    if (!r->notify || !(r->ended || (r->notify_more && r->notify_more(r))))
        return;
    *fn = r->notify;
    *arg = r->notify_arg;
    r->notify = NULL;
    r->notify_drop = NULL;
    r->notify_arg = NULL;
}

void sched_req_notify(sched_req *r, int (*more)(const sched_req *), void (*fn)(void *arg), void (*drop)(void *arg),
                      void *arg)
{
    pthread_mutex_lock(&r->mu);
    void (*old_drop)(void *) = r->notify ? r->notify_drop : NULL;
    void *old_arg = r->notify_arg;
    const int now = fn && (r->ended || (more && more(r)));
    r->notify = now ? NULL : fn;
    r->notify_drop = now ? NULL : drop;
    r->notify_arg = now ? NULL : arg;
    r->notify_more = more;
    pthread_mutex_unlock(&r->mu);
    if (old_drop) /* the wake-up it replaces will never be given */
        old_drop(old_arg);
    if (now)
        fn(arg);
}

void sched_req_cancel(sched_req *r) { atomic_store(&r->cancel, 1); }
