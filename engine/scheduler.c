/*
 * scheduler.c — the batching scheduler of scheduler.h.
 *
 * Per iteration: admit queued requests, give every active request its next input (a prompt
 * or fed character, or a character it samples now from the logits of its state), gather
 * the states of all requests with an input into one batch, run one model_step over it,
 * scatter states and logits back, and retire requests that have nothing more to read.
 * A sampled character is consumed in the same step it is drawn, so a session's state always
 * covers every character it produced.
 */
#include "scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

struct gen_request {
    struct gen_request *next;   /* in the scheduler's queue */
    session *se;                /* held by the submitter */
    int generate;
    int32_t *input;             /* (n_input) owned copy */
    size_t n_input, pos;
    int64_t max_chars;
    sampler_params sp;
    char *stop[GEN_MAX_STOPS];
    size_t stop_len[GEN_MAX_STOPS];
    int nstop;
    real *logits;               /* (V) of the session's current state */
    int hyper;                  /* record the hyper activity of each generated character */
    int32_t pending;            /* a hyper request's character sampled this step, emitted
                                 * with its activity after the step; -1 when none */
    gen_finish want;            /* set once the request must end */
    atomic_int cancel;
    /* counters (scheduler thread; read by others after `ended`) */
    int64_t chars, fed, consumed, steps;
    int stepped;                /* took part in the current iteration's step */
    double bits;
    double t_submit, t_admit, t_prompt, t_first, t_end;
    /* output, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *text;
    size_t len, cap;
    float *act;                 /* (nact, 4) hyper activity per character of text */
    size_t nact, act_cap;
    size_t visible;             /* bytes that may be read (a possible stop prefix is held) */
    size_t read;
    int ended;
    gen_finish finish;
};

struct scheduler {
    model_entry *e;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gen_request *queue_head, *queue_tail;
    int stopping;
    gen_request *active[SCHED_MAX_BATCH];
    int nactive;
    int max_batch;
    /* step buffers, used only by the scheduler thread */
    model_state batch;          /* SCHED_MAX_BATCH rows */
    model_step_ws *ws;
    real *logits;               /* (SCHED_MAX_BATCH, V) */
    int32_t ids[SCHED_MAX_BATCH];
    gen_request *rows[SCHED_MAX_BATCH];
    uint64_t emitted;           /* characters sampled in the current iteration */
    real *hh_before;            /* (SCHED_MAX_BATCH, H) layer 0's ĥ before the step (hyper) */
    void *scratch;
    /* statistics, under mu */
    sched_stats stats;
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ---- output text --------------------------------------------------------------------- */

static int text_append(gen_request *r, const char *bytes, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t)
            return -1;
        r->text = t;
        r->cap = cap;
    }
    memcpy(r->text + r->len, bytes, n);
    r->len += n;
    r->text[r->len] = 0;
    return 0;
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* Appends one character's activity (4 values); under mu. */
static int act_append(gen_request *r, const real *a)
{
    if (r->nact + 1 > r->act_cap) {
        size_t cap = r->act_cap ? r->act_cap * 2 : 64;
        float *t = realloc(r->act, cap * 4 * sizeof *t);
        if (!t)
            return -1;
        r->act = t;
        r->act_cap = cap;
    }
    for (int g = 0; g < 4; g++)
        r->act[4 * r->nact + g] = (float)a[g];
    r->nact++;
    return 0;
}

/* Appends one generated character (under mu) and applies the stop strings: a completed
 * stop string is cut from the text and ends the request; a tail that could still become
 * one is held back from readers.  a: the character's hyper activity (4), kept beside the
 * text (cut with it), or NULL for requests without. */
static void emit_with(gen_request *r, int32_t id, const real *a)
{
    char buf[8];
    int n = vocab_decode(&r->se->model->voc, id, buf);
    pthread_mutex_lock(&r->mu);
    if ((a && act_append(r, a) != 0) || text_append(r, buf, (size_t)n) != 0) {
        r->want = GEN_CANCELLED; /* out of memory: end the request rather than lose text */
        pthread_mutex_unlock(&r->mu);
        return;
    }
    size_t held = 0;
    for (int k = 0; k < r->nstop; k++) {
        const size_t sl = r->stop_len[k];
        if (r->len >= sl && memcmp(r->text + r->len - sl, r->stop[k], sl) == 0) {
            if (r->hyper) {
                const size_t cut = utf8_chars(r->stop[k], sl);
                r->nact = r->nact > cut ? r->nact - cut : 0;
            }
            r->len -= sl;
            r->text[r->len] = 0;
            r->want = GEN_STOP;
            held = 0;
            break;
        }
        for (size_t p = sl - 1; p > held; p--)
            if (r->len >= p && memcmp(r->text + r->len - p, r->stop[k], p) == 0) {
                held = p;
                break;
            }
    }
    r->visible = r->len - held;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void emit(gen_request *r, int32_t id) { emit_with(r, id, NULL); }

/* ---- the loop ---------------------------------------------------------------------- */

static void admit(scheduler *s, gen_request *r)
{
    const model *m = &s->e->m;
    r->t_admit = mono_ms();
    /* the logits of the session's current state: the output layer on its top h */
    model_logits(m, r->se->state.h[m->cfg.layers - 1], 1, r->logits);
    s->active[s->nactive++] = r;
}

static void retire(gen_request *r)
{
    pthread_mutex_lock(&r->mu);
    r->finish = r->want != GEN_RUNNING ? r->want : GEN_LENGTH;
    r->visible = r->len; /* a held-back tail that never became a stop string is text */
    r->t_end = mono_ms();
    if (r->t_prompt == 0)
        r->t_prompt = r->t_end;
    r->ended = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu); /* from here on the scheduler never touches r */
}

/* Chooses request r's input for this step; -1 when it has nothing more to read. */
static int32_t next_input(scheduler *s, gen_request *r)
{
    if (r->want != GEN_RUNNING)
        return -1;
    const int V = s->e->m.cfg.outputs;
    if (r->pos < r->n_input) {
        int32_t id = r->input[r->pos++];
        if (!r->generate) {
            r->bits -= sampler_log2_prob(r->logits, V, id);
            r->fed++;
        }
        return id;
    }
    if (r->t_prompt == 0)
        r->t_prompt = mono_ms();
    if (!r->generate || r->chars >= r->max_chars)
        return -1;
    int32_t id = sampler_sample(r->logits, V, &r->sp, &r->se->rng, s->scratch);
    if (id < 0)
        return -1;
    if (r->chars == 0)
        r->t_first = mono_ms();
    r->chars++;
    s->emitted++;
    if (r->hyper)
        r->pending = id; /* emitted after the step, with the change the step makes */
    else
        emit(r, id);
    if (r->want == GEN_RUNNING && r->chars >= r->max_chars)
        r->want = GEN_LENGTH;
    return id; /* consumed in this very step, even when it ends the request */
}

static void *scheduler_main(void *arg)
{
    scheduler *s = arg;
    const model *m = &s->e->m;
    const int V = m->cfg.outputs;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && s->nactive == 0 && !s->queue_head)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping && s->nactive == 0 && !s->queue_head)
            break;
        while (s->queue_head && s->nactive < SCHED_MAX_BATCH) {
            gen_request *r = s->queue_head;
            s->queue_head = r->next;
            if (!s->queue_head)
                s->queue_tail = NULL;
            admit(s, r);
        }
        const int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);

        int rows = 0;
        s->emitted = 0;
        for (int i = 0; i < s->nactive; i++) {
            gen_request *r = s->active[i];
            r->stepped = 0;
            r->pending = -1;
            if (r->want == GEN_RUNNING && (stopping || atomic_load(&r->cancel)))
                r->want = stopping ? GEN_SHUTDOWN : GEN_CANCELLED;
            int32_t id = next_input(s, r);
            if (id < 0)
                continue;
            r->stepped = 1;
            s->rows[rows] = r;
            s->ids[rows] = id;
            rows++;
        }
        /* one batched step over all of them (in chunks of max_batch when that is smaller) */
        double t0 = mono_ms(), step_us = 0;
        for (int off = 0; off < rows; off += s->max_batch) {
            const int n = rows - off < s->max_batch ? rows - off : s->max_batch;
            const size_t H = (size_t)m->cfg.hyper_units;
            for (int k = 0; k < n; k++) {
                gen_request *r = s->rows[off + k];
                model_state_copy_stream(&m->cfg, &s->batch, k, &r->se->state, 0);
                if (r->pending >= 0) /* only requests that asked pay for the activity */
                    memcpy(s->hh_before + k * H, s->batch.hh[0] + k * H, H * sizeof(real));
            }
            model_step(m, &s->batch, s->ws, n, s->ids + off, NULL, s->logits);
            for (int k = 0; k < n; k++) {
                gen_request *r = s->rows[off + k];
                if (r->pending >= 0) {
                    real a[4];
                    model_hyper_activity(m, 0, s->hh_before + k * H, s->batch.hh[0] + k * H, a);
                    emit_with(r, r->pending, a);
                }
                model_state_copy_stream(&m->cfg, &r->se->state, 0, &s->batch, k);
                memcpy(r->logits, s->logits + (size_t)k * V, (size_t)V * sizeof(real));
                r->consumed++;
                r->steps++;
            }
        }
        if (rows > 0)
            step_us = (mono_ms() - t0) * 1e3;

        pthread_mutex_lock(&s->mu);
        int kept = 0;
        for (int i = 0; i < s->nactive; i++) {
            gen_request *r = s->active[i];
            if (r->stepped)
                s->active[kept++] = r;
            else
                retire(r);
        }
        s->nactive = kept;
        if (rows > 0) {
            s->stats.steps++;
            s->stats.chars += s->emitted;
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
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- lifetime ------------------------------------------------------------------------ */

scheduler *scheduler_start(model_entry *e, int max_batch)
{
    scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->e = e;
    s->max_batch = max_batch < 1 ? 1 : max_batch > SCHED_MAX_BATCH ? SCHED_MAX_BATCH : max_batch;
    const model_config *c = &e->m.cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int ok = model_state_init(&s->batch, c, SCHED_MAX_BATCH, NULL) == HYPER_OK;
    s->ws = model_step_ws_new(c, SCHED_MAX_BATCH);
    s->logits = malloc((size_t)SCHED_MAX_BATCH * c->outputs * sizeof(real));
    s->scratch = malloc(sampler_scratch_size(c->outputs));
    const int hyper = cell_is_hyper((cell_kind)c->cell);
    if (hyper)
        s->hh_before = malloc((size_t)SCHED_MAX_BATCH * c->hyper_units * sizeof(real));
    if (!ok || !s->ws || !s->logits || !s->scratch || (hyper && !s->hh_before) ||
        pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        model_state_free(&s->batch);
        model_step_ws_free(s->ws);
        free(s->logits);
        free(s->scratch);
        free(s->hh_before);
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
    model_state_free(&s->batch);
    model_step_ws_free(s->ws);
    free(s->logits);
    free(s->scratch);
    free(s->hh_before);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void scheduler_stats(scheduler *s, sched_stats *out)
{
    if (!s) {   /* a classifier: nothing is stepped */
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    out->active = s->nactive;
    pthread_mutex_unlock(&s->mu);
}

/* ---- requests ------------------------------------------------------------------------ */

static void request_destroy(gen_request *r)
{
    free(r->input);
    for (int k = 0; k < r->nstop; k++)
        free(r->stop[k]);
    free(r->logits);
    free(r->text);
    free(r->act);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

gen_request *scheduler_submit(scheduler *s, session *se, const gen_spec *spec)
{
    gen_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->se = se;
    r->generate = spec->generate;
    r->max_chars = spec->max_chars;
    r->sp = spec->sp;
    r->hyper = spec->generate && spec->hyper && cell_is_hyper((cell_kind)s->e->m.cfg.cell);
    r->pending = -1;
    r->logits = malloc((size_t)s->e->m.cfg.outputs * sizeof(real));
    r->input = malloc((spec->n_input ? spec->n_input : 1) * sizeof(int32_t));
    int ok = r->logits && r->input;
    if (ok && spec->n_input)
        memcpy(r->input, spec->input, spec->n_input * sizeof(int32_t));
    r->n_input = spec->n_input;
    for (int k = 0; ok && k < spec->nstop && k < GEN_MAX_STOPS; k++) {
        r->stop[k] = strdup(spec->stop[k]);
        r->stop_len[k] = r->stop[k] ? strlen(r->stop[k]) : 0;
        ok = r->stop[k] != NULL && r->stop_len[k] > 0;
        r->nstop = k + 1;
    }
    if (!ok) {
        request_destroy(r);
        return NULL;
    }
    if (spec->has_seed) /* the generator is part of the session: saved like its state */
        hyper_rng_seed(&se->rng, spec->seed);
    r->t_submit = mono_ms();
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        request_destroy(r);
        return NULL;
    }
    if (s->queue_tail)
        s->queue_tail->next = r;
    else
        s->queue_head = r;
    s->queue_tail = r;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return r;
}

size_t gen_request_read(gen_request *r, char *buf, size_t max, int timeout_ms,
                        gen_finish *finished)
{
    *finished = GEN_RUNNING;
    pthread_mutex_lock(&r->mu);
    if (r->read == r->visible && !r->ended && timeout_ms != 0) {
        if (timeout_ms < 0) {
            while (r->read == r->visible && !r->ended)
                pthread_cond_wait(&r->cv, &r->mu);
        } else {
            const struct timespec until = hyper_deadline(timeout_ms);
            while (r->read == r->visible && !r->ended)
                if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0)
                    break;
        }
    }
    size_t n = r->visible - r->read;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)r->text[r->read + n] & 0xC0) == 0x80)
            n--; /* never split a character */
    }
    if (n)
        memcpy(buf, r->text + r->read, n);
    r->read += n;
    if (r->ended && r->read == r->visible)
        *finished = r->finish;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int gen_request_wait_ms(gen_request *r, int timeout_ms)
{
    const struct timespec until = hyper_deadline(timeout_ms);
    pthread_mutex_lock(&r->mu);
    while (!r->ended)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0)
            break;
    int ended = r->ended;
    pthread_mutex_unlock(&r->mu);
    return ended;
}

void gen_request_wait(gen_request *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->ended)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

void gen_request_cancel(gen_request *r) { atomic_store(&r->cancel, 1); }

gen_finish gen_request_finish(gen_request *r) { return r->finish; }
int64_t gen_request_chars(gen_request *r) { return r->chars; }
int64_t gen_request_fed(gen_request *r) { return r->fed; }
double gen_request_bits(gen_request *r) { return r->bits; }
int64_t gen_request_consumed(gen_request *r) { return r->consumed; }

gen_timings gen_request_timings(gen_request *r)
{
    gen_timings t;
    t.queued_ms = r->t_admit - r->t_submit;
    t.prompt_ms = r->t_prompt - r->t_admit;
    t.generate_ms = r->t_end - r->t_prompt;
    t.total_ms = r->t_end - r->t_submit;
    t.first_char_ms = r->chars > 0 ? r->t_first - r->t_submit : 0;
    t.steps = r->steps;
    return t;
}

const char *gen_request_text(gen_request *r, size_t *len)
{
    if (len)
        *len = r->len;
    return r->text ? r->text : "";
}

size_t gen_request_hyper(gen_request *r, size_t first, size_t n, float *out)
{
    pthread_mutex_lock(&r->mu);
    size_t got = first < r->nact ? r->nact - first : 0;
    if (got > n)
        got = n;
    if (got)
        memcpy(out, r->act + 4 * first, got * 4 * sizeof *out);
    pthread_mutex_unlock(&r->mu);
    return got;
}

void gen_request_free(gen_request *r)
{
    if (!r)
        return;
    gen_request_cancel(r);
    gen_request_wait(r);
    request_destroy(r);
}
