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
#include "fsutil.h"
#include "mdn.h"

#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8
#define EVAL_STREAMS 16
#define BATCH_WINDOW 8   /* a stroke batch is drawn among 8 B lines of similar length */
/* Image augmentation (paper §3.1's MNIST runs): each training image is padded by this many
 * zero pixels and cropped back to 28×28 at a random offset, a shift of up to ±2 pixels. */
#define CLF_PAD 2

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
    tp->eval_limit = 0;
}

void train_params_default_classifier(train_params *tp)
{
    train_params_default(tp);
    tp->batch = 64;
    tp->lr = 1e-3;
    tp->clip = 0;
    tp->steps = 2000;
    tp->eval_every = 250;
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
    if (tp->eval_every < 0 || tp->checkpoint_every < 0 || tp->eval_limit < 0)
        return hyper_fail(err, HYPER_ERR_ARG, "eval_every, checkpoint_every and eval_limit must not be negative");
    return HYPER_OK;
}

/* ---- corpus ---------------------------------------------------------------------------- */

hyper_status corpus_load(corpus *c, const char *path, size_t max_bytes, const vocab *voc_in,
                         double val_fraction, char *err)
{
    memset(c, 0, sizeof *c);
    if (!(val_fraction >= 0 && val_fraction < 1))
        return hyper_fail(err, HYPER_ERR_ARG, "validation fraction %g must be in [0, 1)", val_fraction);
    char *text = NULL;
    size_t len = 0;
    hyper_status st = fs_read_file(path, max_bytes, 0, &text, &len, err);
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

/* ---- strokes ---------------------------------------------------------------------------- */

hyper_status stroke_corpus_prepare(stroke_corpus *c, stroke_set *lines, double val_fraction,
                                   const char *name, char *err)
{
    memset(c, 0, sizeof *c);
    c->set = *lines;
    strokes_init(lines);
    if (!(val_fraction >= 0 && val_fraction < 1)) {
        stroke_corpus_free(c);
        return hyper_fail(err, HYPER_ERR_ARG, "validation fraction %g must be in [0, 1)", val_fraction);
    }
    /* a line of one point predicts nothing */
    int32_t kept = 0;
    for (int32_t k = 0; k < c->set.n; k++) {
        stroke_line *ln = &c->set.lines[k];
        if (ln->npoints >= 2) {
            c->set.lines[kept++] = *ln;
        } else {
            free(ln->text);
            free(ln->pts);
        }
    }
    c->dropped = c->set.n - kept;
    c->set.n = kept;
    c->dropped += strokes_drop_outliers(&c->set, STROKES_OUTLIER_LIMIT);
    if (c->set.n < 1) {
        stroke_corpus_free(c);
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: no line with at least two points", name);
    }
    c->n_train = c->set.n - (int32_t)((double)c->set.n * val_fraction);
    if (c->n_train < 1)
        c->n_train = 1;
    stroke_set train = c->set;
    train.n = c->n_train;
    c->stats = strokes_stats(&train);
    return HYPER_OK;
}

hyper_status stroke_corpus_load(stroke_corpus *c, const char *spec, double val_fraction, char *err)
{
    memset(c, 0, sizeof *c);
    if (!(val_fraction >= 0 && val_fraction < 1))
        return hyper_fail(err, HYPER_ERR_ARG, "validation fraction %g must be in [0, 1)", val_fraction);
    stroke_set lines;
    strokes_init(&lines);
    hyper_status st = strokes_load(&lines, spec, err);
    if (st != HYPER_OK) {
        strokes_free(&lines);
        return st;
    }
    return stroke_corpus_prepare(c, &lines, val_fraction, spec, err);
}

void stroke_corpus_free(stroke_corpus *c)
{
    strokes_free(&c->set);
    memset(c, 0, sizeof *c);
}

void strokes_normalise(const stroke_stats *st, const float *raw, double scale, real *x)
{
    x[0] = (real)((raw[0] * scale - st->mean_x) / st->std_x);
    x[1] = (real)((raw[1] * scale - st->mean_y) / st->std_y);
    x[2] = raw[2];
}

hyper_status strokes_stats_from_meta(const checkpoint *ck, stroke_stats *st, char *err)
{
    const char *keys[4] = {"strokes.mean_x", "strokes.mean_y", "strokes.std_x", "strokes.std_y"};
    double v[4];
    for (int k = 0; k < 4; k++) {
        const char *s = checkpoint_meta(ck, keys[k]);
        char *end = NULL;
        v[k] = s ? strtod(s, &end) : NAN;
        if (!s || *end || !isfinite(v[k]) || (k >= 2 && !(v[k] > 0)))
            return hyper_fail(err, HYPER_ERR_FORMAT, "the model has no valid %s: it is not a handwriting model", keys[k]);
    }
    *st = (stroke_stats){v[0], v[1], v[2], v[3]};
    return HYPER_OK;
}

/* The indices of lines[0..n) ordered by length (ties by index), so that lines of similar
 * length can be run side by side and little of a batch is padding.  Newly allocated. */
static int32_t *sort_by_length(const stroke_line *lines, int32_t n)
{
    int32_t *idx = malloc((size_t)n * sizeof *idx), *tmp = malloc((size_t)n * sizeof *tmp);
    if (!idx || !tmp) {
        free(idx);
        free(tmp);
        return NULL;
    }
    for (int32_t k = 0; k < n; k++)
        idx[k] = k;
    /* bottom-up merge sort: stable, and needs no global state for its comparison */
    for (int32_t w = 1; w < n; w *= 2) {
        for (int32_t lo = 0; lo < n; lo += 2 * w) {
            int32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int32_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = lines[idx[b]].npoints < lines[idx[a]].npoints ? idx[b++] : idx[a++];
            while (a < mid)
                tmp[o++] = idx[a++];
            while (b < hi)
                tmp[o++] = idx[b++];
        }
        int32_t *sw = idx;
        idx = tmp;
        tmp = sw;
    }
    free(tmp);
    return idx;
}

/* The inputs, targets and mask of steps [t0, t0 + T) of the lines lines[k] (k < B; NULL
 * for an empty stream), each scaled by scale[k]: the input at step t is point t of the
 * line, the target point t + 1. */
static void strokes_window(const stroke_stats *st, const stroke_line *const *lines,
                           const float *scale, int32_t B, int32_t T, int32_t t0, real *x,
                           float *tgt, float *mask)
{
    for (int32_t t = 0; t < T; t++)
        for (int32_t b = 0; b < B; b++) {
            const size_t r = (size_t)t * B + b;
            const stroke_line *ln = lines[b];
            const int32_t i = t0 + t;
            if (ln && i + 1 < ln->npoints) {
                const float sc = scale ? scale[b] : 1.0f;
                strokes_normalise(st, ln->pts + 3 * i, sc, x + 3 * r);
                real y[3];
                strokes_normalise(st, ln->pts + 3 * (i + 1), sc, y);
                tgt[3 * r] = (float)y[0];
                tgt[3 * r + 1] = (float)y[1];
                tgt[3 * r + 2] = (float)y[2];
                mask[r] = 1;
            } else {
                x[3 * r] = x[3 * r + 1] = x[3 * r + 2] = 0;
                tgt[3 * r] = tgt[3 * r + 1] = tgt[3 * r + 2] = 0;
                mask[r] = 0;
            }
        }
}

hyper_status model_eval_strokes(const model *m, const stroke_stats *st, const stroke_line *lines,
                                int32_t n, int32_t streams, int32_t seq, double *loss,
                                size_t *points, char *err)
{
    if (m->cfg.inputs != 3 || mdn_mixtures(m->cfg.outputs) < 1)
        return hyper_fail(err, HYPER_ERR_ARG, "the model is not a handwriting model");
    if (n < 1 || streams < 1 || seq < 1)
        return hyper_fail(err, HYPER_ERR_ARG, "evaluation needs lines, streams and seq");
    const int32_t S = streams < n ? streams : n;
    model_state state;
    hyper_status rc = model_state_init(&state, &m->cfg, S, err);
    if (rc != HYPER_OK)
        return rc;
    model_train_ws *ws = model_train_ws_new(&m->cfg, S, seq);
    real *x = malloc((size_t)S * seq * 3 * sizeof *x);
    float *tgt = malloc((size_t)S * seq * 4 * sizeof *tgt);
    const stroke_line **group = calloc((size_t)S, sizeof *group);
    int32_t *order = sort_by_length(lines, n);
    if (!ws || !x || !tgt || !group || !order) {
        rc = hyper_fail(err, HYPER_ERR_NOMEM, "cannot allocate the evaluation workspace");
        goto out;
    }
    double total = 0;
    size_t count = 0;
    for (int32_t g = 0; g < n; g += S) {
        int32_t len = 0;
        for (int32_t b = 0; b < S; b++) {
            group[b] = g + b < n ? &lines[order[g + b]] : NULL;
            if (group[b] && group[b]->npoints - 1 > len)
                len = group[b]->npoints - 1;
            if (group[b])
                count += group[b]->npoints > 0 ? (size_t)group[b]->npoints - 1 : 0;
        }
        model_state_zero(&state);
        for (int32_t t0 = 0; t0 < len; t0 += seq) {
            strokes_window(st, group, NULL, S, seq, t0, x, tgt, tgt + (size_t)S * seq * 3);
            total += model_forward_strokes(m, &state, ws, x, tgt, tgt + (size_t)S * seq * 3, NULL, NULL);
        }
    }
    *loss = total / n;
    if (points)
        *points = count;
out:
    free(x);
    free(tgt);
    free(group);
    free(order);
    model_train_ws_free(ws);
    model_state_free(&state);
    return rc;
}

/* ---- the training run -------------------------------------------------------------- */

struct trainer {
    model m;                /* character and handwriting runs */
    classifier net;         /* image runs (data.images) */
    real *w;                /* the weights being trained: m.block or net.block */
    size_t P;               /* how many */
    train_params tp;
    train_data data;
    real *grad, *am, *av;   /* (P) gradient and Adam moments */
    model_state state;      /* (B) carried across segments */
    model_train_ws *ws;
    hyper_rng rng;          /* dropout masks */
    int64_t step;
    size_t pos;             /* text: where each stream's next segment starts in its slice;
                             * strokes: the step within the current batch of lines */
    double val_loss;
    uint64_t data_hash;
    /* text */
    size_t slice;           /* characters per stream */
    int32_t *in, *tg;       /* (T, B) */
    /* strokes */
    hyper_rng data_rng;     /* draws the lines of each batch and their scale */
    hyper_rng batch_rng;    /* data_rng as it was before the current batch was drawn */
    int32_t *by_length;     /* (n_train) training line indices, shortest first */
    const stroke_line **lines; /* (B) the current batch */
    float *scale;           /* (B) its ±10% augmentation */
    int32_t batch_len;      /* predictions in its longest line */
    real *x;                /* (T, B, 3) */
    float *tgt, *mask;      /* (T, B, 3), (T, B) */
    /* images */
    clf_ws *cws;
    real *xb;               /* (B, 784) the current batch, shifted */
    uint8_t *yb;            /* (B) its labels */
    int64_t items;          /* characters, points or images predicted, over the run */
    const atomic_int *stop; /* trainer_set_stop_flag */
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t k = 0; k < n; k++)
        h = (h ^ p[k]) * 1099511628211ULL;
    return h;
}

#define FNV_OFFSET 1469598103934665603ULL

/* Identifies the training data, so that a resume on different data is refused. */
static uint64_t data_hash(const train_data *d)
{
    if (d->images) {
        const image_set *im = d->images;
        uint64_t h = fnv1a(FNV_OFFSET, &im->n_train, sizeof im->n_train);
        h = fnv1a(h, im->labels, (size_t)im->n);
        return fnv1a(h, im->pixels, (size_t)im->n * IMG_PIXELS * sizeof *im->pixels);
    }
    if (d->text)
        return fnv1a(FNV_OFFSET, d->text->ids, d->text->n * sizeof *d->text->ids);
    uint64_t h = FNV_OFFSET;
    for (int32_t k = 0; k < d->strokes->set.n; k++) {
        const stroke_line *ln = &d->strokes->set.lines[k];
        h = fnv1a(h, &ln->npoints, sizeof ln->npoints);
        h = fnv1a(h, ln->pts, (size_t)ln->npoints * 3 * sizeof *ln->pts);
    }
    return h;
}

/* What every run has: the weights it trains, the gradient, Adam's moments, the generators. */
static int trainer_common(trainer *t, real *w, size_t P, const train_params *tp, const train_data *data)
{
    t->w = w;
    t->P = P;
    t->tp = *tp;
    t->data = *data;
    t->val_loss = NAN;
    t->data_hash = data_hash(data);
    t->grad = calloc(P, sizeof(real));
    t->am = calloc(P, sizeof(real));
    t->av = calloc(P, sizeof(real));
    hyper_rng_seed(&t->rng, tp->seed ^ 0xd1e5u);
    hyper_rng_seed(&t->data_rng, tp->seed ^ 0x11e5u);
    return t->grad && t->am && t->av;
}

static hyper_status trainer_alloc(trainer **out, const model_config *cfg, const train_params *tp,
                                  const train_data *data, char *err)
{
    *out = NULL;
    hyper_status st = train_params_check(tp, err);
    if (st != HYPER_OK)
        return st;
    if (!data->text == !data->strokes || data->images)
        return hyper_fail(err, HYPER_ERR_ARG, "a model run trains on either a text or a stroke set");
    size_t slice = 0;
    if (data->text) {
        if (cfg->inputs != 0 || cfg->outputs != data->text->voc.size)
            return hyper_fail(err, HYPER_ERR_ARG, "the model's vocabulary (%d) does not match the corpus (%d)",
                              cfg->outputs, data->text->voc.size);
        slice = data->text->n_train / (size_t)tp->batch;
        if (slice <= (size_t)tp->seq + 1)
            return hyper_fail(err, HYPER_ERR_ARG,
                              "the training text (%zu characters) is too short for batch %d × seq %d",
                              data->text->n_train, tp->batch, tp->seq);
    } else if (cfg->inputs != 3 || mdn_mixtures(cfg->outputs) < 1) {
        return hyper_fail(err, HYPER_ERR_ARG,
                          "a handwriting model reads 3 inputs and has 1 + 6M outputs (got %d and %d)",
                          cfg->inputs, cfg->outputs);
    }
    trainer *t = calloc(1, sizeof *t);
    if (!t)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    st = model_create(&t->m, cfg, err);
    if (st != HYPER_OK) {
        free(t);
        return st;
    }
    const size_t BT = (size_t)tp->batch * tp->seq;
    t->slice = slice;
    int ok = trainer_common(t, t->m.block, t->m.size, tp, data);
    t->ws = model_train_ws_new(cfg, tp->batch, tp->seq);
    ok = ok && t->ws;
    if (data->text) {
        t->in = malloc(2 * BT * sizeof(int32_t));
        ok = ok && t->in;
        if (t->in)
            t->tg = t->in + BT;
    } else {
        t->lines = calloc((size_t)tp->batch, sizeof *t->lines);
        t->by_length = sort_by_length(data->strokes->set.lines, data->strokes->n_train);
        ok = ok && t->by_length;
        t->scale = calloc((size_t)tp->batch, sizeof *t->scale);
        t->x = malloc(BT * 3 * sizeof *t->x);
        t->tgt = malloc(BT * 4 * sizeof *t->tgt);
        ok = ok && t->lines && t->scale && t->x && t->tgt;
        if (t->tgt)
            t->mask = t->tgt + BT * 3;
    }
    st = model_state_init(&t->state, cfg, tp->batch, err);
    if (st == HYPER_OK && !ok)
        st = hyper_fail(err, HYPER_ERR_NOMEM, "cannot allocate the training workspace");
    if (st != HYPER_OK) {
        trainer_free(t);
        return st;
    }
    *out = t;
    return HYPER_OK;
}

hyper_status trainer_new(trainer **out, const model_config *cfg, const train_params *tp,
                         const train_data *data, char *err)
{
    hyper_status st = trainer_alloc(out, cfg, tp, data, err);
    if (st == HYPER_OK)
        model_init(&(*out)->m, tp->seed);
    return st;
}

static hyper_status trainer_alloc_classifier(trainer **out, const clf_config *cfg,
                                             const train_params *tp, const train_data *data, char *err)
{
    *out = NULL;
    hyper_status st = train_params_check(tp, err);
    if (st != HYPER_OK)
        return st;
    if (!data->images || data->text || data->strokes)
        return hyper_fail(err, HYPER_ERR_ARG, "a classifier run trains on a set of images");
    if (tp->keep != 1)
        return hyper_fail(err, HYPER_ERR_ARG, "keep: %g, but the classifiers have no dropout (use 1)", tp->keep);
    if (tp->batch > CLF_MAX_BATCH)
        return hyper_fail(err, HYPER_ERR_ARG, "batch: %d is above the classifiers' limit of %d", tp->batch,
                          CLF_MAX_BATCH);
    if (data->images->n_train < 1)
        return hyper_fail(err, HYPER_ERR_ARG, "the image set has no training images");
    trainer *t = calloc(1, sizeof *t);
    if (!t)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    if ((st = clf_create(&t->net, cfg, err)) != HYPER_OK) {
        free(t);
        return st;
    }
    int ok = trainer_common(t, t->net.block, t->net.size, tp, data);
    const int32_t eval_b = tp->batch > CLF_EVAL_BATCH ? tp->batch : CLF_EVAL_BATCH;
    t->cws = clf_ws_new(&t->net, eval_b);
    t->xb = malloc((size_t)tp->batch * IMG_PIXELS * sizeof *t->xb);
    t->yb = malloc((size_t)tp->batch);
    if (!ok || !t->cws || !t->xb || !t->yb) {
        trainer_free(t);
        return hyper_fail(err, HYPER_ERR_NOMEM, "cannot allocate the training workspace");
    }
    *out = t;
    return HYPER_OK;
}

hyper_status trainer_new_classifier(trainer **out, const clf_config *cfg, const train_params *tp,
                                    const train_data *data, char *err)
{
    hyper_status st = trainer_alloc_classifier(out, cfg, tp, data, err);
    if (st == HYPER_OK)
        clf_init(&(*out)->net, tp->seed);
    return st;
}

void trainer_free(trainer *t)
{
    if (!t)
        return;
    model_free(&t->m);
    clf_free(&t->net);
    clf_ws_free(t->cws);
    free(t->xb);
    free(t->yb);
    model_state_free(&t->state);
    model_train_ws_free(t->ws);
    free(t->grad);
    free(t->am);
    free(t->av);
    free(t->in);
    free(t->lines);
    free(t->by_length);
    free(t->scale);
    free(t->x);
    free(t->tgt);
    free(t);
}

int64_t trainer_steps_done(const trainer *t) { return t->step; }
const model *trainer_model(const trainer *t) { return t->data.images ? NULL : &t->m; }
const classifier *trainer_classifier(const trainer *t) { return t->data.images ? &t->net : NULL; }

/* Draws the next batch of training lines and their ±10% scale from data_rng, remembering
 * the generator as it was so that a checkpoint can redraw the same batch. */
static void strokes_draw_batch(trainer *t)
{
    const stroke_corpus *sc = t->data.strokes;
    t->batch_rng = t->data_rng;
    t->batch_len = 0;
    /* the batch comes from a window of BATCH_WINDOW × B lines of similar length placed at
     * random in the length order: every line can be drawn, and the padding stays small */
    const int32_t n = sc->n_train;
    const int64_t want = (int64_t)BATCH_WINDOW * t->tp.batch;
    const int32_t w = want < n ? (int32_t)want : n;
    int64_t from = (int64_t)(hyper_rng_next(&t->data_rng) % (uint64_t)n) - w / 2;
    from = from < 0 ? 0 : (from > n - w ? n - w : from);
    for (int32_t b = 0; b < t->tp.batch; b++) {
        const int32_t pick = t->by_length[from + (int64_t)(hyper_rng_next(&t->data_rng) % (uint64_t)w)];
        const stroke_line *ln = &sc->set.lines[pick];
        t->lines[b] = ln;
        t->scale[b] = (float)(0.9 + 0.2 * hyper_rng_uniform(&t->data_rng));
        if (ln->npoints - 1 > t->batch_len)
            t->batch_len = ln->npoints - 1;
    }
}

/* The gradient of one segment: text or strokes.  Returns the segment's mean loss (nats per
 * character or per point). */
static double segment_gradient(trainer *t)
{
    const int32_t B = t->tp.batch, T = t->tp.seq;
    dropout_spec drop = {t->tp.keep, &t->rng};
    if (t->data.images) {
        /* B training images drawn with replacement, each shifted at random */
        const image_set *im = t->data.images;
        for (int32_t b = 0; b < B; b++) {
            const int32_t k = (int32_t)(hyper_rng_next(&t->data_rng) % (uint64_t)im->n_train);
            const int dx = (int)(hyper_rng_next(&t->data_rng) % (2 * CLF_PAD + 1));
            const int dy = (int)(hyper_rng_next(&t->data_rng) % (2 * CLF_PAD + 1));
            clf_shift_image(im->pixels + (size_t)k * IMG_PIXELS, dx, dy, CLF_PAD, t->xb + (size_t)b * IMG_PIXELS);
            t->yb[b] = im->labels[k];
        }
        const double loss = clf_forward(&t->net, t->cws, B, t->xb, t->yb, NULL);
        clf_backward(&t->net, t->cws, t->grad, 1);
        t->items += B;
        return loss;
    }
    if (t->data.text) {
        const int32_t *ids = t->data.text->ids;
        for (int32_t s = 0; s < T; s++)
            for (int32_t b = 0; b < B; b++) {
                size_t at = (size_t)b * t->slice + t->pos + (size_t)s;
                t->in[s * B + b] = ids[at];
                t->tg[s * B + b] = ids[at + 1];
            }
        double loss = model_forward_charlm(&t->m, &t->state, t->ws, t->in, t->tg, &drop);
        model_backward_charlm(&t->m, t->ws, t->grad);
        t->items += (int64_t)B * T;
        /* the next segment continues each stream; at the end of the slices all start over */
        t->pos += (size_t)T;
        if (t->pos + (size_t)T >= t->slice) {
            t->pos = 0;
            model_state_zero(&t->state);
        }
        return loss;
    }
    if (t->pos == 0) {
        strokes_draw_batch(t);
        model_state_zero(&t->state);
    }
    strokes_window(&t->data.strokes->stats, t->lines, t->scale, B, T, (int32_t)t->pos, t->x,
                   t->tgt, t->mask);
    double count = 0;
    for (size_t r = 0; r < (size_t)B * T; r++)
        count += t->mask[r];
    double loss = model_forward_strokes(&t->m, &t->state, t->ws, t->x, t->tgt, t->mask, &drop, NULL);
    model_backward_strokes(&t->m, t->ws, t->grad, (real)(1.0 / count));
    t->items += (int64_t)count;
    t->pos += (size_t)T;
    if (t->pos >= (size_t)t->batch_len)
        t->pos = 0;
    return loss / count;
}

double trainer_step(trainer *t)
{
    memset(t->grad, 0, t->P * sizeof(real));
    double loss = segment_gradient(t);
    /* clip by global norm, then Adam with bias correction */
    double norm = 0;
    for (size_t k = 0; k < t->P; k++)
        norm += (double)t->grad[k] * t->grad[k];
    norm = sqrt(norm);
    const double scale = (t->tp.clip > 0 && norm > t->tp.clip) ? t->tp.clip / norm : 1.0;
    t->step++;
    const double lr_t = t->tp.lr * sqrt(1 - pow(ADAM_B2, (double)t->step)) /
                        (1 - pow(ADAM_B1, (double)t->step));
    for (size_t k = 0; k < t->P; k++) {
        double g = t->grad[k] * scale;
        double m1 = ADAM_B1 * t->am[k] + (1 - ADAM_B1) * g;
        double v1 = ADAM_B2 * t->av[k] + (1 - ADAM_B2) * g * g;
        t->am[k] = (real)m1;
        t->av[k] = (real)v1;
        t->w[k] -= (real)(lr_t * m1 / (sqrt(v1) + ADAM_EPS));
    }
    return loss;
}

/* 1 when the data has a validation part to evaluate. */
static int has_validation(const trainer *t)
{
    if (t->data.images)
        return t->data.images->n > t->data.images->n_train;
    if (t->data.text)
        return t->data.text->n - t->data.text->n_train >= 2;
    return t->data.strokes->set.n > t->data.strokes->n_train;
}

double trainer_eval(trainer *t)
{
    double v = NAN;
    if (t->data.images) {
        const image_set *im = t->data.images;
        int32_t n = im->n - im->n_train;
        if (t->tp.eval_limit > 0 && t->tp.eval_limit < n)
            n = (int32_t)t->tp.eval_limit;
        const int32_t eval_b = t->tp.batch > CLF_EVAL_BATCH ? t->tp.batch : CLF_EVAL_BATCH;
        if (n > 0)
            clf_evaluate(&t->net, t->cws, eval_b, im->pixels + (size_t)im->n_train * IMG_PIXELS,
                         im->labels + im->n_train, n, &v, NULL);
    } else if (t->data.text) {
        const corpus *d = t->data.text;
        size_t n = d->n - d->n_train;
        if (t->tp.eval_limit > 0 && (size_t)t->tp.eval_limit < n)
            n = (size_t)t->tp.eval_limit;
        if (model_eval_bpc(&t->m, d->ids + d->n_train, n, EVAL_STREAMS, t->tp.seq, &v, NULL, NULL) != HYPER_OK)
            v = NAN;
    } else {
        const stroke_corpus *sc = t->data.strokes;
        int32_t n = sc->set.n - sc->n_train;
        if (t->tp.eval_limit > 0 && t->tp.eval_limit < n)
            n = (int32_t)t->tp.eval_limit;
        if (n < 1 || model_eval_strokes(&t->m, &sc->stats, sc->set.lines + sc->n_train, n, EVAL_STREAMS,
                                         t->tp.seq, &v, NULL, NULL) != HYPER_OK)
            v = NAN;
    }
    t->val_loss = v;
    return v;
}

/* ---- checkpoints --------------------------------------------------------------------- */

#define META_NUM 24

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

static void rng_meta(meta_list *ml, const char *key, const hyper_rng *r)
{
    meta_add(ml, key, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->s[0], r->s[1],
             r->s[2], r->s[3]);
}

static hyper_status rng_from_meta(const checkpoint *ck, const char *key, hyper_rng *r, char *err)
{
    const char *v = checkpoint_meta(ck, key);
    if (!v || strlen(v) != 64)
        return hyper_fail(err, HYPER_ERR_FORMAT, "training metadata %s is missing or malformed", key);
    for (int k = 0; k < 4; k++) {
        char word[17];
        memcpy(word, v + 16 * k, 16);
        word[16] = 0;
        r->s[k] = strtoull(word, NULL, 16);
    }
    return HYPER_OK;
}

static void summary_meta(const trainer *t, meta_list *ml)
{
    meta_add(ml, "train.steps", "%" PRId64, t->step);
    if (t->data.images) {     /* clf_save writes the kind */
        meta_add(ml, "train.val_error", "%.6f", t->val_loss);
        return;
    }
    if (t->data.text) {
        meta_add(ml, "kind", "charlm");
        meta_add(ml, "train.val_bpc", "%.6f", t->val_loss);
        return;
    }
    const stroke_stats *st = &t->data.strokes->stats;
    meta_add(ml, "kind", "handwriting");
    meta_add(ml, "train.val_loss", "%.6f", t->val_loss);
    meta_add(ml, "strokes.mean_x", "%.17g", st->mean_x);
    meta_add(ml, "strokes.mean_y", "%.17g", st->mean_y);
    meta_add(ml, "strokes.std_x", "%.17g", st->std_x);
    meta_add(ml, "strokes.std_y", "%.17g", st->std_y);
}

static const vocab *data_vocab(const trainer *t) { return t->data.text ? &t->data.text->voc : NULL; }

hyper_status trainer_save_model(const trainer *t, const char *path, char *err)
{
    meta_list ml = {.n = 0};
    summary_meta(t, &ml);
    if (t->data.images)
        return clf_save(path, &t->net, ml.kv, ml.n, NULL, 0, err);
    return checkpoint_save(path, &t->m, data_vocab(t), ml.kv, ml.n, NULL, 0, err);
}

hyper_status trainer_save_checkpoint(const trainer *t, const char *path, char *err)
{
    meta_list ml = {.n = 0};
    summary_meta(t, &ml);
    meta_add(&ml, "train.pos", "%zu", t->pos);
    rng_meta(&ml, "train.rng", &t->rng);
    if (t->data.strokes)
        rng_meta(&ml, "train.data_rng", t->pos ? &t->batch_rng : &t->data_rng);
    if (t->data.images)
        rng_meta(&ml, "train.data_rng", &t->data_rng);
    meta_add(&ml, "train.batch", "%d", t->tp.batch);
    if (!t->data.images)   /* classifiers have no sequences */
        meta_add(&ml, "train.seq", "%d", t->tp.seq);
    meta_add(&ml, "train.lr", "%.17g", t->tp.lr);
    meta_add(&ml, "train.clip", "%.17g", t->tp.clip);
    meta_add(&ml, "train.keep", "%.17g", t->tp.keep);
    meta_add(&ml, "train.seed", "%" PRIu64, t->tp.seed);
    if (t->data.images)
        meta_add(&ml, "train.data_images", "%d", t->data.images->n);
    else if (t->data.text)
        meta_add(&ml, "train.data_chars", "%zu", t->data.text->n);
    else
        meta_add(&ml, "train.data_lines", "%d", t->data.strokes->set.n);
    meta_add(&ml, "train.data_hash", "%016" PRIx64, t->data_hash);
    const int64_t P = (int64_t)t->P;
    ckpt_tensor extra[3] = {
        {"optim.m", 1, {P, 0, 0}, t->am},
        {"optim.v", 1, {P, 0, 0}, t->av},
    };
    if (t->data.images)   /* a classifier carries no state from step to step */
        return clf_save(path, &t->net, ml.kv, ml.n, extra, 2, err);
    extra[2] = (ckpt_tensor){"train.state", 2, {t->state.batch, (int64_t)(t->state.size / (size_t)t->state.batch), 0},
                             t->state.block};
    return checkpoint_save(path, &t->m, data_vocab(t), ml.kv, ml.n, extra, 3, err);
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
                            const train_data *data, char *err)
{
    *out = NULL;
    checkpoint *ck = NULL;
    trainer *t = NULL;
    hyper_status st = checkpoint_open_tensors(path, &ck, err);
    if (st != HYPER_OK)
        return st;
    const int images = clf_is_classifier_file(ck);
    if (!images != !data->images) {
        st = hyper_fail(err, HYPER_ERR_ARG, images ? "%s holds a classifier: resume it on images"
                                                   : "%s holds a character or handwriting model, not a classifier",
                        path);
        goto fail;
    }
    if (images) {
        classifier loaded;
        if ((st = clf_load(ck, &loaded, err)) != HYPER_OK)
            goto fail;
        st = trainer_alloc_classifier(&t, &loaded.cfg, tp, data, err);
        if (st == HYPER_OK)
            memcpy(t->w, loaded.block, t->P * sizeof(real));
        clf_free(&loaded);
    } else if ((st = checkpoint_check_model(ck, err)) == HYPER_OK) {
        st = trainer_alloc(&t, checkpoint_config(ck), tp, data, err);
    }
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
    if (!images && (st = resume_match(ck, "train.seq", want, err)) != HYPER_OK) goto fail;
    snprintf(want, sizeof want, "%" PRIu64, tp->seed);
    if ((st = resume_match(ck, "train.seed", want, err)) != HYPER_OK) goto fail;
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        snprintf(want, sizeof want, nums[k].fmt, nums[k].v);
        if ((st = resume_match(ck, nums[k].key, want, err)) != HYPER_OK) goto fail;
    }
    snprintf(want, sizeof want, "%016" PRIx64, t->data_hash);
    if ((st = resume_match(ck, "train.data_hash", want, err)) != HYPER_OK) {
        if (st == HYPER_ERR_ARG)
            hyper_fail(err, st, "the training data differs from the data the checkpoint was trained on");
        goto fail;
    }
    const char *step = checkpoint_meta(ck, "train.steps"), *pos = checkpoint_meta(ck, "train.pos");
    const char *val = checkpoint_meta(ck, images ? "train.val_error" : data->text ? "train.val_bpc" : "train.val_loss");
    if (!step || !pos) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: training metadata is incomplete", path);
        goto fail;
    }
    if ((st = rng_from_meta(ck, "train.rng", &t->rng, err)) != HYPER_OK)
        goto fail;
    t->step = strtoll(step, NULL, 10);
    t->pos = strtoull(pos, NULL, 10);
    t->val_loss = val ? strtod(val, NULL) : NAN;
    if (images && (st = rng_from_meta(ck, "train.data_rng", &t->data_rng, err)) != HYPER_OK)
        goto fail;
    if (data->strokes) {
        /* redraw the batch the run was in the middle of */
        if ((st = rng_from_meta(ck, "train.data_rng", &t->data_rng, err)) != HYPER_OK)
            goto fail;
        if (t->pos > 0)
            strokes_draw_batch(t);
    }
    const int pos_bad = images      ? t->pos != 0
                        : data->text ? t->pos + (size_t)tp->seq >= t->slice
                                     : (t->pos > 0 && t->pos >= (size_t)t->batch_len);
    if (pos_bad || t->step < 0) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: training position out of range", path);
        goto fail;
    }
    if (!images) {
        model loaded;
        if ((st = checkpoint_load_model(ck, &loaded, NULL, err)) != HYPER_OK)
            goto fail;
        memcpy(t->m.block, loaded.block, t->m.size * sizeof(real));
        model_free(&loaded);
        if ((st = checkpoint_read_tensor(ck, "train.state", t->state.block, t->state.size, err)) != HYPER_OK)
            goto fail;
    }
    if ((st = checkpoint_read_tensor(ck, "optim.m", t->am, t->P, err)) != HYPER_OK ||
        (st = checkpoint_read_tensor(ck, "optim.v", t->av, t->P, err)) != HYPER_OK)
        goto fail;
    checkpoint_close(ck);
    *out = t;
    return HYPER_OK;
fail:
    trainer_free(t);
    checkpoint_close(ck);
    return st;
}

void trainer_set_stop_flag(trainer *t, const atomic_int *flag) { t->stop = flag; }

hyper_status trainer_set_weights(trainer *t, const model *src, char *err)
{
    if (t->data.images)
        return hyper_fail(err, HYPER_ERR_ARG, "a classifier run cannot start from a character or handwriting model");
    if (memcmp(&src->cfg, &t->m.cfg, sizeof src->cfg) != 0 || src->size != t->m.size)
        return hyper_fail(err, HYPER_ERR_ARG,
                          "the starting model (%s %d×%d, %d inputs, %d outputs) differs from the run's (%s %d×%d, %d inputs, %d outputs)",
                          cell_kind_str((cell_kind)src->cfg.cell), src->cfg.layers, src->cfg.units, src->cfg.inputs,
                          src->cfg.outputs, cell_kind_str((cell_kind)t->m.cfg.cell), t->m.cfg.layers, t->m.cfg.units,
                          t->m.cfg.inputs, t->m.cfg.outputs);
    memcpy(t->m.block, src->block, t->m.size * sizeof(real));
    return HYPER_OK;
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
    /* aside: seconds of the window spent validating and checkpointing, which the training
     * rate leaves out (a classifier's test pass can take longer than its steps) */
    double window_start = start, window_loss = 0, aside = 0;
    int64_t window_steps = 0, window_items = t->items;
    const int64_t first = t->step;
    if (report_every < 1)
        report_every = 1;
    while (t->step < t->tp.steps) {
        if (t->stop && atomic_load(t->stop))
            return hyper_fail(err, HYPER_ERR_CANCELLED, "training stopped at step %" PRId64, t->step);
        window_loss += trainer_step(t);
        window_steps++;
        const int64_t s = t->step;
        const int last = s == t->tp.steps;
        const int eval = last || (t->tp.eval_every > 0 && s % t->tp.eval_every == 0);
        const double before = now_seconds();
        if (eval && has_validation(t))
            trainer_eval(t);
        const int ckpt = ckpt_path && (last || (t->tp.checkpoint_every > 0 && s % t->tp.checkpoint_every == 0));
        if (ckpt) {
            hyper_status st = trainer_save_checkpoint(t, ckpt_path, err);
            if (st != HYPER_OK)
                return st;
        }
        aside += now_seconds() - before;
        if (report && (eval || ckpt || s % report_every == 0)) {
            const double now = now_seconds();
            train_progress p = {
                .step = s,
                .steps = t->tp.steps,
                .strokes = t->data.strokes != NULL,
                .images = t->data.images != NULL,
                .train_loss = window_loss / (double)window_steps / (t->data.text ? M_LN2 : 1.0),
                .val_loss = t->val_loss,
                .items_per_sec = (double)(t->items - window_items) / fmax(now - window_start - aside, 1e-9),
                .elapsed = now - start,
                .evaluated = eval,
                .checkpointed = ckpt,
            };
            p.eta = (now - start) / (double)(s - first) * (double)(t->tp.steps - s);
            window_loss = 0;
            window_steps = 0;
            window_items = t->items;
            window_start = now;
            aside = 0;
            if (report(&p, user))
                return hyper_fail(err, HYPER_ERR_CANCELLED, "training stopped at step %" PRId64, s);
        }
    }
    return HYPER_OK;
}
