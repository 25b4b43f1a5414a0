/*
 * trainer.c — corpus loading, bits-per-character evaluation, and the training loop of
 * trainer.h: truncated BPTT, global-norm clipping, Adam, checkpoints and exact resume.
 */
#include "trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"

#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8
#define EVAL_STREAMS 16

void train_params_default(train_params *tp)
{
    tp->batch = 32;
    tp->seq = 100;
    tp->lr = 2e-3;
    tp->clip = 1.0;
    tp->keep = 1.0;
    tp->steps = 1000;
    tp->seed = 1;
    tp->eval_every = 100;
    tp->checkpoint_every = 500;
    tp->eval_chars = 0;
}

hyper_status train_params_check(const train_params *tp, char *err)
{
    if (tp->batch < 1 || tp->batch > TRAIN_MAX_BATCH)
        return hyper_fail(err, HYPER_ERR_ARG, "batch: %d is outside 1..%d", tp->batch, TRAIN_MAX_BATCH);
    if (tp->seq < 1 || tp->seq > TRAIN_MAX_SEQ)
        return hyper_fail(err, HYPER_ERR_ARG, "seq: %d is outside 1..%d", tp->seq, TRAIN_MAX_SEQ);
    if (!(tp->lr > 0 && tp->lr < 1))
        return hyper_fail(err, HYPER_ERR_ARG, "lr: %g must be in (0, 1)", tp->lr);
    if (!(tp->clip >= 0 && tp->clip < 1e6))
        return hyper_fail(err, HYPER_ERR_ARG, "clip: %g must be in [0, 1e6)", tp->clip);
    if (!(tp->keep > 0 && tp->keep <= 1))
        return hyper_fail(err, HYPER_ERR_ARG, "keep: %g must be in (0, 1]", tp->keep);
    if (tp->steps < 1 || tp->steps > INT64_C(1000000000))
        return hyper_fail(err, HYPER_ERR_ARG, "steps: %" PRId64 " is outside 1..1e9", tp->steps);
    if (tp->eval_every < 0 || tp->checkpoint_every < 0 || tp->eval_chars < 0)
        return hyper_fail(err, HYPER_ERR_ARG, "eval_every, checkpoint_every and eval_chars must not be negative");
    return HYPER_OK;
}

/* ---- corpus ---------------------------------------------------------------------------- */

hyper_status read_file(const char *path, size_t max_bytes, char **out, size_t *len, char *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    hyper_status st = HYPER_OK;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap >= max_bytes) {
                st = hyper_fail(err, HYPER_ERR_ARG, "%s: larger than the limit of %zu bytes", path, max_bytes);
                break;
            }
            cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                st = hyper_fail(err, HYPER_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!buf)
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", path);
    if (st != HYPER_OK || n > max_bytes) {
        free(buf);
        return st != HYPER_OK ? st : hyper_fail(err, HYPER_ERR_ARG, "%s: larger than the limit of %zu bytes", path, max_bytes);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return HYPER_OK;
}

hyper_status corpus_load(corpus *c, const char *path, size_t max_bytes, const vocab *voc_in,
                         double val_fraction, char *err)
{
    memset(c, 0, sizeof *c);
    if (!(val_fraction >= 0 && val_fraction < 1))
        return hyper_fail(err, HYPER_ERR_ARG, "validation fraction %g must be in [0, 1)", val_fraction);
    char *text = NULL;
    size_t len = 0;
    hyper_status st = read_file(path, max_bytes, &text, &len, err);
    if (st != HYPER_OK)
        return st;
    char sub[HYPER_ERRMSG_MAX];
    if (voc_in)
        st = vocab_from_codepoints(&c->voc, voc_in->cp, voc_in->size, sub);
    else
        st = vocab_build(&c->voc, text, len, sub);
    if (st == HYPER_OK)
        st = vocab_encode(&c->voc, text, len, 0, &c->ids, &c->n, NULL, sub);
    free(text);
    if (st != HYPER_OK) {
        corpus_free(c);
        return hyper_fail(err, st, "%s: %s", path, sub);
    }
    c->n_train = c->n - (size_t)((double)c->n * val_fraction);
    return HYPER_OK;
}

void corpus_free(corpus *c)
{
    vocab_free(&c->voc);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

/* ---- evaluation ---------------------------------------------------------------------- */

hyper_status model_eval_bpc(const model *m, const int32_t *ids, size_t n, int32_t streams,
                            int32_t seq, double *bpc, size_t *count, char *err)
{
    if (n < 2)
        return hyper_fail(err, HYPER_ERR_ARG, "evaluation text must hold at least 2 characters");
    if (m->cfg.inputs != 0)
        return hyper_fail(err, HYPER_ERR_ARG, "bits per character needs a character model");
    if (streams < 1 || seq < 1)
        return hyper_fail(err, HYPER_ERR_ARG, "streams and seq must be positive");
    if ((size_t)streams > n / 2)
        streams = (int32_t)(n / 2);
    const size_t slice = n / (size_t)streams, preds = slice - 1;
    const int32_t T = (int32_t)(preds < (size_t)seq ? preds : (size_t)seq), S = streams;
    const int32_t rem = (int32_t)(preds % (size_t)T);
    model_state st;
    hyper_status rc = model_state_init(&st, &m->cfg, S, err);
    if (rc != HYPER_OK)
        return rc;
    model_train_ws *ws = model_train_ws_new(&m->cfg, S, T);
    model_train_ws *ws_rem = rem ? model_train_ws_new(&m->cfg, S, rem) : NULL;
    int32_t *in = malloc(2 * (size_t)S * T * sizeof *in);
    if (!ws || (rem && !ws_rem) || !in) {
        rc = hyper_fail(err, HYPER_ERR_NOMEM, "cannot allocate the evaluation workspace");
        goto out;
    }
    int32_t *tg = in + (size_t)S * T;
    double nats = 0;
    for (size_t p = 0; p < preds;) {
        const int32_t len = (int32_t)(preds - p < (size_t)T ? preds - p : (size_t)T);
        for (int32_t t = 0; t < len; t++)
            for (int32_t b = 0; b < S; b++) {
                in[t * S + b] = ids[b * slice + p + t];
                tg[t * S + b] = ids[b * slice + p + t + 1];
            }
        nats += model_forward_charlm(m, &st, len == T ? ws : ws_rem, in, tg, NULL) * len * S;
        p += (size_t)len;
    }
    *bpc = nats / ((double)preds * S) / M_LN2;
    if (count)
        *count = preds * (size_t)S;
out:
    free(in);
    model_train_ws_free(ws);
    model_train_ws_free(ws_rem);
    model_state_free(&st);
    return rc;
}

/* ---- the training run -------------------------------------------------------------- */

struct trainer {
    model m;
    train_params tp;
    const corpus *data;
    real *grad, *am, *av;   /* (P) gradient and Adam moments */
    model_state state;      /* (B) carried across segments */
    model_train_ws *ws;
    hyper_rng rng;          /* dropout masks */
    int64_t step;
    size_t slice;           /* characters per stream */
    size_t pos;             /* where each stream's next segment starts in its slice */
    int32_t *in, *tg;       /* (T, B) */
    double val_bpc;
    uint64_t data_hash;
};

static uint64_t ids_hash(const int32_t *ids, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the id bytes */
    const unsigned char *p = (const unsigned char *)ids;
    for (size_t k = 0; k < n * sizeof *ids; k++)
        h = (h ^ p[k]) * 1099511628211ULL;
    return h;
}

static hyper_status trainer_alloc(trainer **out, const model_config *cfg, const train_params *tp,
                                  const corpus *data, char *err)
{
    *out = NULL;
    hyper_status st = train_params_check(tp, err);
    if (st != HYPER_OK)
        return st;
    if (cfg->inputs != 0 || cfg->outputs != data->voc.size)
        return hyper_fail(err, HYPER_ERR_ARG, "the model's vocabulary (%d) does not match the corpus (%d)",
                          cfg->outputs, data->voc.size);
    const size_t slice = data->n_train / (size_t)tp->batch;
    if (slice <= (size_t)tp->seq + 1)
        return hyper_fail(err, HYPER_ERR_ARG,
                          "the training text (%zu characters) is too short for batch %d × seq %d",
                          data->n_train, tp->batch, tp->seq);
    trainer *t = calloc(1, sizeof *t);
    if (!t)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    st = model_create(&t->m, cfg, err);
    if (st != HYPER_OK) {
        free(t);
        return st;
    }
    t->tp = *tp;
    t->data = data;
    t->slice = slice;
    t->val_bpc = NAN;
    t->data_hash = ids_hash(data->ids, data->n);
    t->grad = calloc(t->m.size, sizeof(real));
    t->am = calloc(t->m.size, sizeof(real));
    t->av = calloc(t->m.size, sizeof(real));
    t->in = malloc(2 * (size_t)tp->batch * tp->seq * sizeof(int32_t));
    t->ws = model_train_ws_new(cfg, tp->batch, tp->seq);
    st = model_state_init(&t->state, cfg, tp->batch, err);
    if (st == HYPER_OK && (!t->grad || !t->am || !t->av || !t->in || !t->ws))
        st = hyper_fail(err, HYPER_ERR_NOMEM, "cannot allocate the training workspace");
    if (st != HYPER_OK) {
        trainer_free(t);
        return st;
    }
    t->tg = t->in + (size_t)tp->batch * tp->seq;
    hyper_rng_seed(&t->rng, tp->seed ^ 0xd1e5u);
    *out = t;
    return HYPER_OK;
}

hyper_status trainer_new(trainer **out, const model_config *cfg, const train_params *tp,
                         const corpus *data, char *err)
{
    hyper_status st = trainer_alloc(out, cfg, tp, data, err);
    if (st == HYPER_OK)
        model_init(&(*out)->m, tp->seed);
    return st;
}

void trainer_free(trainer *t)
{
    if (!t)
        return;
    model_free(&t->m);
    model_state_free(&t->state);
    model_train_ws_free(t->ws);
    free(t->grad);
    free(t->am);
    free(t->av);
    free(t->in);
    free(t);
}

int64_t trainer_steps_done(const trainer *t) { return t->step; }
const model *trainer_model(const trainer *t) { return &t->m; }

double trainer_step(trainer *t)
{
    const int32_t B = t->tp.batch, T = t->tp.seq;
    const int32_t *ids = t->data->ids;
    for (int32_t s = 0; s < T; s++)
        for (int32_t b = 0; b < B; b++) {
            size_t at = (size_t)b * t->slice + t->pos + (size_t)s;
            t->in[s * B + b] = ids[at];
            t->tg[s * B + b] = ids[at + 1];
        }
    memset(t->grad, 0, t->m.size * sizeof(real));
    dropout_spec drop = {t->tp.keep, &t->rng};
    double loss = model_forward_charlm(&t->m, &t->state, t->ws, t->in, t->tg, &drop);
    model_backward_charlm(&t->m, t->ws, t->grad);
    /* clip by global norm, then Adam with bias correction */
    double norm = 0;
    for (size_t k = 0; k < t->m.size; k++)
        norm += (double)t->grad[k] * t->grad[k];
    norm = sqrt(norm);
    const double scale = (t->tp.clip > 0 && norm > t->tp.clip) ? t->tp.clip / norm : 1.0;
    t->step++;
    const double lr_t = t->tp.lr * sqrt(1 - pow(ADAM_B2, (double)t->step)) /
                        (1 - pow(ADAM_B1, (double)t->step));
    for (size_t k = 0; k < t->m.size; k++) {
        double g = t->grad[k] * scale;
        double m1 = ADAM_B1 * t->am[k] + (1 - ADAM_B1) * g;
        double v1 = ADAM_B2 * t->av[k] + (1 - ADAM_B2) * g * g;
        t->am[k] = (real)m1;
        t->av[k] = (real)v1;
        t->m.block[k] -= (real)(lr_t * m1 / (sqrt(v1) + ADAM_EPS));
    }
    /* the next segment continues each stream; at the end of the slices all start over */
    t->pos += (size_t)T;
    if (t->pos + (size_t)T >= t->slice) {
        t->pos = 0;
        model_state_zero(&t->state);
    }
    return loss;
}

double trainer_eval(trainer *t)
{
    const corpus *d = t->data;
    size_t n = d->n - d->n_train;
    if (t->tp.eval_chars > 0 && (size_t)t->tp.eval_chars < n)
        n = (size_t)t->tp.eval_chars;
    double bpc = NAN;
    if (model_eval_bpc(&t->m, d->ids + d->n_train, n, EVAL_STREAMS, t->tp.seq, &bpc, NULL, NULL) != HYPER_OK)
        bpc = NAN;
    t->val_bpc = bpc;
    return bpc;
}

/* ---- checkpoints --------------------------------------------------------------------- */

#define META_NUM 16

typedef struct {
    char buf[META_NUM][80];
    ckpt_kv kv[META_NUM];
    int n;
} meta_list;

static void meta_add(meta_list *ml, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void meta_add(meta_list *ml, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ml->buf[ml->n], sizeof ml->buf[0], fmt, ap);
    va_end(ap);
    ml->kv[ml->n].key = key;
    ml->kv[ml->n].value = ml->buf[ml->n];
    ml->n++;
}

static void summary_meta(const trainer *t, meta_list *ml)
{
    meta_add(ml, "kind", "charlm");
    meta_add(ml, "train.steps", "%" PRId64, t->step);
    meta_add(ml, "train.val_bpc", "%.6f", t->val_bpc);
}

hyper_status trainer_save_model(const trainer *t, const char *path, char *err)
{
    meta_list ml = {.n = 0};
    summary_meta(t, &ml);
    return checkpoint_save(path, &t->m, &t->data->voc, ml.kv, ml.n, NULL, 0, err);
}

hyper_status trainer_save_checkpoint(const trainer *t, const char *path, char *err)
{
    meta_list ml = {.n = 0};
    summary_meta(t, &ml);
    meta_add(&ml, "train.pos", "%zu", t->pos);
    meta_add(&ml, "train.rng", "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
             t->rng.s[0], t->rng.s[1], t->rng.s[2], t->rng.s[3]);
    meta_add(&ml, "train.batch", "%d", t->tp.batch);
    meta_add(&ml, "train.seq", "%d", t->tp.seq);
    meta_add(&ml, "train.lr", "%.17g", t->tp.lr);
    meta_add(&ml, "train.clip", "%.17g", t->tp.clip);
    meta_add(&ml, "train.keep", "%.17g", t->tp.keep);
    meta_add(&ml, "train.seed", "%" PRIu64, t->tp.seed);
    meta_add(&ml, "train.data_chars", "%zu", t->data->n);
    meta_add(&ml, "train.data_hash", "%016" PRIx64, t->data_hash);
    const int64_t P = (int64_t)t->m.size;
    ckpt_tensor extra[3] = {
        {"optim.m", 1, {P, 0, 0}, t->am},
        {"optim.v", 1, {P, 0, 0}, t->av},
        {"train.state", 2, {t->state.batch, (int64_t)(t->state.size / (size_t)t->state.batch), 0}, t->state.block},
    };
    return checkpoint_save(path, &t->m, &t->data->voc, ml.kv, ml.n, extra, 3, err);
}

/* Compares one recorded training parameter with the one asked for now. */
static hyper_status resume_match(const checkpoint *ck, const char *key, const char *want,
                                 char *err)
{
    const char *have = checkpoint_meta(ck, key);
    if (!have)
        return hyper_fail(err, HYPER_ERR_FORMAT, "the checkpoint has no %s: it is not a training checkpoint", key);
    if (strcmp(have, want) != 0)
        return hyper_fail(err, HYPER_ERR_ARG, "%s is %s in the checkpoint but %s now; resume with the same value",
                          key + 6, have, want);
    return HYPER_OK;
}

hyper_status trainer_resume(trainer **out, const char *path, const train_params *tp,
                            const corpus *data, char *err)
{
    *out = NULL;
    checkpoint *ck = NULL;
    hyper_status st = checkpoint_open(path, &ck, err);
    if (st != HYPER_OK)
        return st;
    trainer *t = NULL;
    st = trainer_alloc(&t, checkpoint_config(ck), tp, data, err);
    if (st != HYPER_OK)
        goto fail;
    /* every recorded parameter but the step count must be the same */
    char want[64];
    struct { const char *key, *fmt; double v; } nums[] = {
        {"train.lr", "%.17g", tp->lr}, {"train.clip", "%.17g", tp->clip}, {"train.keep", "%.17g", tp->keep},
    };
    snprintf(want, sizeof want, "%d", tp->batch);
    if ((st = resume_match(ck, "train.batch", want, err)) != HYPER_OK) goto fail;
    snprintf(want, sizeof want, "%d", tp->seq);
    if ((st = resume_match(ck, "train.seq", want, err)) != HYPER_OK) goto fail;
    snprintf(want, sizeof want, "%" PRIu64, tp->seed);
    if ((st = resume_match(ck, "train.seed", want, err)) != HYPER_OK) goto fail;
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        snprintf(want, sizeof want, nums[k].fmt, nums[k].v);
        if ((st = resume_match(ck, nums[k].key, want, err)) != HYPER_OK) goto fail;
    }
    snprintf(want, sizeof want, "%016" PRIx64, t->data_hash);
    if ((st = resume_match(ck, "train.data_hash", want, err)) != HYPER_OK) {
        if (st == HYPER_ERR_ARG)
            hyper_fail(err, st, "the training text differs from the one the checkpoint was trained on");
        goto fail;
    }
    const char *step = checkpoint_meta(ck, "train.steps"), *pos = checkpoint_meta(ck, "train.pos");
    const char *rng = checkpoint_meta(ck, "train.rng"), *val = checkpoint_meta(ck, "train.val_bpc");
    if (!step || !pos || !rng || strlen(rng) != 64) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: training metadata is incomplete", path);
        goto fail;
    }
    t->step = strtoll(step, NULL, 10);
    t->pos = strtoull(pos, NULL, 10);
    for (int k = 0; k < 4; k++) {
        char word[17];
        memcpy(word, rng + 16 * k, 16);
        word[16] = 0;
        t->rng.s[k] = strtoull(word, NULL, 16);
    }
    t->val_bpc = val ? strtod(val, NULL) : NAN;
    if (t->pos + (size_t)tp->seq >= t->slice || t->step < 0) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: training position out of range", path);
        goto fail;
    }
    model loaded;
    if ((st = checkpoint_load_model(ck, &loaded, NULL, err)) != HYPER_OK)
        goto fail;
    memcpy(t->m.block, loaded.block, t->m.size * sizeof(real));
    model_free(&loaded);
    if ((st = checkpoint_read_tensor(ck, "optim.m", t->am, t->m.size, err)) != HYPER_OK ||
        (st = checkpoint_read_tensor(ck, "optim.v", t->av, t->m.size, err)) != HYPER_OK ||
        (st = checkpoint_read_tensor(ck, "train.state", t->state.block, t->state.size, err)) != HYPER_OK)
        goto fail;
    checkpoint_close(ck);
    *out = t;
    return HYPER_OK;
fail:
    trainer_free(t);
    checkpoint_close(ck);
    return st;
}

/* ---- the loop ------------------------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

hyper_status trainer_run(trainer *t, int32_t report_every, train_report_fn report, void *user,
                         const char *ckpt_path, char *err)
{
    const double start = now_seconds();
    double window_start = start, window_loss = 0;
    int64_t window_steps = 0;
    const int64_t first = t->step;
    if (report_every < 1)
        report_every = 1;
    while (t->step < t->tp.steps) {
        window_loss += trainer_step(t);
        window_steps++;
        const int64_t s = t->step;
        const int last = s == t->tp.steps;
        const int eval = last || (t->tp.eval_every > 0 && s % t->tp.eval_every == 0);
        if (eval && t->data->n - t->data->n_train >= 2)
            trainer_eval(t);
        if (ckpt_path && (last || (t->tp.checkpoint_every > 0 && s % t->tp.checkpoint_every == 0))) {
            hyper_status st = trainer_save_checkpoint(t, ckpt_path, err);
            if (st != HYPER_OK)
                return st;
        }
        if (report && (eval || s % report_every == 0)) {
            const double now = now_seconds();
            train_progress p = {
                .step = s,
                .steps = t->tp.steps,
                .train_bpc = window_loss / (double)window_steps / M_LN2,
                .val_bpc = t->val_bpc,
                .chars_per_sec = (double)window_steps * t->tp.batch * t->tp.seq / fmax(now - window_start, 1e-9),
                .elapsed = now - start,
                .evaluated = eval,
            };
            p.eta = (now - start) / (double)(s - first) * (double)(t->tp.steps - s);
            window_loss = 0;
            window_steps = 0;
            window_start = now;
            if (report(&p, user))
                return hyper_fail(err, HYPER_ERR_CANCELLED, "training stopped at step %" PRId64, s);
        }
    }
    return HYPER_OK;
}
