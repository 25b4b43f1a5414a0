/*
 * textgen.c — the character streams of textgen.h, as a stream_ops table for the scheduler.
 *
 * A request's input at each step is the next character of its prompt (or of the text it
 * is fed, scored against the logits of its state), else a character it samples now from
 * those logits — consumed in this very step, so the session's state always covers every
 * character it produced.  The output of the step is the logits of the next character.
 * Generated text goes to a buffer readers take from; a tail that could still become a
 * stop string is held back from them.
 */
#include "textgen.h"

#include <stdlib.h>
#include <string.h>

struct gen_request {
    sched_req base;             /* first: the scheduler's part */
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
    /* counters (scheduler thread; read by others after the end) */
    int64_t chars, fed, consumed;
    double bits;
    double t_prompt, t_first;
    /* output, under base.mu */
    char *text;
    size_t len, cap;
    float *act;                 /* (nact, 4) hyper activity per character of text */
    size_t nact, act_cap;
    size_t visible;             /* bytes that may be read (a possible stop prefix is held) */
    size_t read;
};

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

/* Appends one generated character and applies the stop strings: a completed stop string
 * is cut from the text and ends the request; a tail that could still become one is held
 * back from readers.  a: the character's hyper activity (4), kept beside the text (cut
 * with it), or NULL for requests without. */
static void emit(gen_request *r, int32_t id, const real *a)
{
    char buf[8];
    int n = vocab_decode(&r->se->model->voc, id, buf);
    pthread_mutex_lock(&r->base.mu);
    if ((a && act_append(r, a) != 0) || text_append(r, buf, (size_t)n) != 0) {
        r->base.want = GEN_CANCELLED; /* out of memory: end the request rather than lose text */
        pthread_mutex_unlock(&r->base.mu);
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
            r->base.want = GEN_STOP;
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
    void (*fn)(void *);
    void *arg;
    sched_req_take_notify(&r->base, &fn, &arg);
    pthread_cond_broadcast(&r->base.cv);
    pthread_mutex_unlock(&r->base.mu);
    if (fn)
        fn(arg);
}

/* ---- the stream's ops -------------------------------------------------------------------- */

static void text_admit(sched_req *b, const model *m)
{
    gen_request *r = (gen_request *)b;
    /* the logits of the session's current state: the output layer on its top h */
    model_logits(m, r->se->state.h[m->cfg.layers - 1], 1, r->logits);
}

static int text_input(sched_req *b, const model *m, int32_t *id_out, real *x, void *scratch)
{
    (void)x;
    gen_request *r = (gen_request *)b;
    const int V = m->cfg.outputs;
    r->pending = -1;
    if (r->pos < r->n_input) {
        const int32_t id = r->input[r->pos++];
        if (!r->generate) {
            r->bits -= sampler_log2_prob(r->logits, V, id);
            r->fed++;
        }
        *id_out = id;
        return 1;
    }
    if (r->t_prompt == 0)
        r->t_prompt = sched_now_ms();
    if (!r->generate || r->chars >= r->max_chars)
        return 0;
    const int32_t id = sampler_sample(r->logits, V, &r->sp, &r->se->rng, scratch);
    if (id < 0)
        return 0;
    if (r->chars == 0)
        r->t_first = sched_now_ms();
    r->chars++;
    b->emitted = 1;
    if (r->hyper) { /* emitted after the step, with the change the step makes */
        r->pending = id;
        b->act = 1;
    } else {
        emit(r, id, NULL);
    }
    if (b->want == GEN_RUNNING && r->chars >= r->max_chars)
        b->want = GEN_LENGTH;
    *id_out = id;
    return 1; /* consumed in this very step, even when it ends the request */
}

static void text_output(sched_req *b, const model *m, const real *out, const real *act)
{
    gen_request *r = (gen_request *)b;
    if (r->pending >= 0)
        emit(r, r->pending, act);
    memcpy(r->logits, out, (size_t)m->cfg.outputs * sizeof(real));
    r->consumed++;
}

static void text_retire(sched_req *b, gen_finish f)
{
    (void)f;
    gen_request *r = (gen_request *)b;
    r->visible = r->len; /* a held-back tail that never became a stop string is text */
    if (r->t_prompt == 0)
        r->t_prompt = sched_now_ms();
}

static const stream_ops text_ops = {"text", text_admit, text_input, text_output, text_retire};

/* ---- requests ------------------------------------------------------------------------ */

static void request_destroy(gen_request *r)
{
    free(r->input);
    for (int k = 0; k < r->nstop; k++)
        free(r->stop[k]);
    free(r->logits);
    free(r->text);
    free(r->act);
    sched_req_destroy(&r->base);
    free(r);
}

gen_request *textgen_submit(scheduler *s, session *se, const gen_spec *spec)
{
    gen_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    const model *m = &se->model->m;
    sched_req_init(&r->base, &text_ops, &se->state);
    r->se = se;
    r->generate = spec->generate;
    r->max_chars = spec->max_chars;
    r->sp = spec->sp;
    r->hyper = spec->generate && spec->hyper && cell_is_hyper((cell_kind)m->cfg.cell);
    r->pending = -1;
    r->logits = malloc((size_t)m->cfg.outputs * sizeof(real));
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
    if (scheduler_enqueue(s, &r->base) != 0) {
        request_destroy(r);
        return NULL;
    }
    return r;
}

static int text_unread(const sched_req *b)
{
    const gen_request *r = (const gen_request *)b;
    return r->read < r->visible;
}

size_t gen_request_read(gen_request *r, char *buf, size_t max, int timeout_ms,
                        gen_finish *finished)
{
    *finished = GEN_RUNNING;
    sched_req *b = &r->base;
    pthread_mutex_lock(&b->mu);
    sched_req_wait_locked(b, text_unread, timeout_ms);
    size_t n = r->visible - r->read;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)r->text[r->read + n] & 0xC0) == 0x80)
            n--; /* never split a character */
    }
    if (n)
        memcpy(buf, r->text + r->read, n);
    r->read += n;
    if (b->ended && r->read == r->visible)
        *finished = b->finish;
    pthread_mutex_unlock(&b->mu);
    return n;
}

void gen_request_notify(gen_request *r, void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
{
    sched_req_notify(&r->base, text_unread, fn, drop, arg);
}

void gen_request_notify_end(gen_request *r, void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
{
    sched_req_notify(&r->base, NULL, fn, drop, arg);
}

int gen_request_wait_ms(gen_request *r, int timeout_ms) { return sched_req_wait_ms(&r->base, timeout_ms); }
void gen_request_wait(gen_request *r) { sched_req_wait(&r->base); }
void gen_request_cancel(gen_request *r) { sched_req_cancel(&r->base); }

gen_finish gen_request_finish(gen_request *r) { return r->base.finish; }
int64_t gen_request_chars(gen_request *r) { return r->chars; }
int64_t gen_request_fed(gen_request *r) { return r->fed; }
double gen_request_bits(gen_request *r) { return r->bits; }
int64_t gen_request_consumed(gen_request *r) { return r->consumed; }

gen_timings gen_request_timings(gen_request *r)
{
    const sched_req *b = &r->base;
    gen_timings t;
    t.queued_ms = b->t_admit - b->t_submit;
    t.prompt_ms = r->t_prompt - b->t_admit;
    t.generate_ms = b->t_end - r->t_prompt;
    t.total_ms = b->t_end - b->t_submit;
    t.first_char_ms = r->chars > 0 ? r->t_first - b->t_submit : 0;
    t.steps = b->steps;
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
    pthread_mutex_lock(&r->base.mu);
    size_t got = first < r->nact ? r->nact - first : 0;
    if (got > n)
        got = n;
    if (got)
        memcpy(out, r->act + 4 * first, got * 4 * sizeof *out);
    pthread_mutex_unlock(&r->base.mu);
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
