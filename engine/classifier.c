/*
 * classifier.c — static hypernetworks (classifier.h): the layer list of each architecture,
 * the weight generator, and the forward and backward passes of conv, max-pool, ReLU, dense
 * and softmax cross-entropy layers.
 */
#include "classifier.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images.h"
#include "linalg.h"

/* Images per im2col block: bounds the column buffer (conv2 of the paper's net: 16 images ×
 * 196 pixels × 784 values = 9.8 MB in float) while keeping the products large. */
#define IM2COL_IMAGES 16
/* Epsilon of the layer norm on generated weights. */
#define WNORM_EPS 1e-5

static const char *const arch_names[CLF_ARCH_COUNT] = {"mlp", "hypermlp", "conv", "hyperconv"};

const char *clf_arch_str(clf_arch a) { return a >= 0 && a < CLF_ARCH_COUNT ? arch_names[a] : "?"; }

int clf_arch_parse(const char *s, clf_arch *out)
{
    for (int a = 0; s && a < CLF_ARCH_COUNT; a++)
        if (strcmp(s, arch_names[a]) == 0) {
            *out = (clf_arch)a;
            return 0;
        }
    return -1;
}

int clf_arch_is_hyper(clf_arch a) { return a == CLF_HYPERMLP || a == CLF_HYPERCONV; }
static int arch_is_conv(clf_arch a) { return a == CLF_CONV || a == CLF_HYPERCONV; }

void clf_config_default(clf_config *c, clf_arch arch)
{
    memset(c, 0, sizeof *c);
    c->arch = arch;
    if (arch_is_conv(arch)) {
        c->channels = 16;
        c->kernel = 7;
        c->embed = c->gen_hidden = 4;
    } else {
        c->hidden = 80;
        c->embed = c->gen_hidden = 8;
        c->tile_rows = 16;
        c->tile_cols = 10;
    }
    if (!clf_arch_is_hyper(arch))
        c->embed = c->gen_hidden = c->tile_rows = c->tile_cols = 0;
}

static hyper_status check_range(const char *field, int32_t v, int32_t lo, int32_t hi, char *err)
{
    if (v < lo || v > hi)
        return hyper_fail(err, HYPER_ERR_ARG, "%s: %d is outside %d..%d", field, v, lo, hi);
    return HYPER_OK;
}

hyper_status clf_config_check(clf_config *c, char *err)
{
    hyper_status st;
    if (c->arch < 0 || c->arch >= CLF_ARCH_COUNT)
        return hyper_fail(err, HYPER_ERR_ARG, "arch: unknown architecture %d", c->arch);
    const clf_arch a = (clf_arch)c->arch;
    const int hyper = clf_arch_is_hyper(a);
    if (c->wnorm != 0 && c->wnorm != 1)
        return hyper_fail(err, HYPER_ERR_ARG, "wnorm: %d is not 0 or 1", c->wnorm);
    if (!hyper && c->wnorm)
        return hyper_fail(err, HYPER_ERR_ARG, "wnorm: a %s net generates no weights to normalise",
                          clf_arch_str(a));
    if (arch_is_conv(a)) {
        c->hidden = 0;
        if ((st = check_range("channels", c->channels, 1, CLF_MAX_CHANNELS, err)) != HYPER_OK ||
            (st = check_range("kernel", c->kernel, 1, CLF_MAX_KERNEL, err)) != HYPER_OK)
            return st;
        if (c->kernel % 2 == 0)
            return hyper_fail(err, HYPER_ERR_ARG, "kernel: %d is even (a \"same\" convolution needs an odd side)",
                              c->kernel);
        if (hyper) {
            c->tile_rows = c->channels;
            c->tile_cols = c->kernel * c->kernel * c->channels;
        }
    } else {
        c->channels = c->kernel = 0;
        if ((st = check_range("hidden", c->hidden, 1, CLF_MAX_HIDDEN, err)) != HYPER_OK)
            return st;
    }
    if (!hyper) {
        c->embed = c->gen_hidden = c->tile_rows = c->tile_cols = 0;
        return HYPER_OK;
    }
    if ((st = check_range("embed", c->embed, 1, CLF_MAX_EMBED, err)) != HYPER_OK ||
        (st = check_range("gen_hidden", c->gen_hidden, 1, CLF_MAX_EMBED, err)) != HYPER_OK)
        return st;
    if (a == CLF_HYPERMLP) {
        const int32_t H = c->hidden;
        if ((st = check_range("tile_rows", c->tile_rows, 1, CLF_PIXELS, err)) != HYPER_OK ||
            (st = check_range("tile_cols", c->tile_cols, 1, CLF_CLASSES, err)) != HYPER_OK)
            return st;
        if (CLF_PIXELS % c->tile_rows || H % c->tile_rows)
            return hyper_fail(err, HYPER_ERR_ARG,
                              "tile_rows: %d must divide both generated matrices' rows (784 and hidden %d)",
                              c->tile_rows, H);
        if (H % c->tile_cols || CLF_CLASSES % c->tile_cols)
            return hyper_fail(err, HYPER_ERR_ARG,
                              "tile_cols: %d must divide both generated matrices' columns (hidden %d and 10)",
                              c->tile_cols, H);
        /* the generator's inner values a (one d-vector per generated row slice) */
        const double inner = (double)CLF_PIXELS * H / c->tile_cols * c->gen_hidden;
        if (inner > CLF_MAX_GEN_VALUES)
            return hyper_fail(err, HYPER_ERR_ARG,
                              "tile_cols: hidden %d in tiles %d wide with gen_hidden %d makes %.0f inner values "
                              "in the generator, at most %d (wider tiles or a smaller gen_hidden)",
                              H, c->tile_cols, c->gen_hidden, inner, CLF_MAX_GEN_VALUES);
    }
    return HYPER_OK;
}

/* ---- the layer list and the parameter table --------------------------------------------- */

typedef struct {
    classifier *c;       /* NULL while only counting */
    param_info *t;
    int n;
    size_t total;
} builder;

static int add_param(builder *b, const char *name, init_kind init, double value, int ndim,
                     int64_t d0, int64_t d1, int64_t d2)
{
    param_info *p = &b->t[b->n];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->shape[2] = d2;
    p->size = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * (size_t)(ndim > 2 ? d2 : 1);
    p->offset = b->total;
    p->init = init;
    p->init_value = value;
    b->total += p->size;
    return b->n++;
}

/* The spread a matrix should start with: He for the layers a ReLU follows, 1/fan-in for the
 * output layer. */
static double weight_std(int32_t fan_in, int relu) { return sqrt((relu ? 2.0 : 1.0) / fan_in); }

/* Adds a weight (rows × cols) with its bias: a plain parameter, or a generated matrix with
 * its own embeddings. */
static void add_weight(builder *b, classifier *c, const char *name, int32_t rows, int32_t cols,
                       int32_t gen_rows, int relu, int generated)
{
    clf_weight *w = &c->weights[c->nweights++];
    char pname[PARAM_NAME_MAX];
    const double std = weight_std(rows, relu);
    w->rows = rows;
    w->cols = cols;
    w->gen_rows = gen_rows;
    w->gen_cols = (int32_t)((int64_t)rows * cols / gen_rows);
    w->name = name;
    w->param = w->gen = w->z = -1;
    if (!generated) {
        snprintf(pname, sizeof pname, "%s.W", name);
        w->param = add_param(b, pname, INIT_NORMAL, std, 2, rows, cols, 0);
    } else {
        const clf_config *cfg = &c->cfg;
        w->gen = c->ngen++;
        const int64_t tiles = (int64_t)(w->gen_rows / cfg->tile_rows) * (w->gen_cols / cfg->tile_cols);
        snprintf(pname, sizeof pname, "hyper.z.%d", w->gen);
        /* W_in ~ N(0, 1/Z) and W_out ~ N(0, 1/d) keep the spread of z through both maps, so
         * z ~ N(0, std²) starts the generated weights at std; with wnorm the gain does */
        w->z = add_param(b, pname, INIT_NORMAL, cfg->wnorm ? 1.0 : std, 2, tiles, cfg->embed, 0);
    }
    snprintf(pname, sizeof pname, "%s.b", name);
    w->bias = add_param(b, pname, INIT_ZERO, 0, 1, cols, 0, 0);
}

static void add_layer(classifier *c, clf_layer_kind kind, int32_t in_h, int32_t in_w, int32_t in_c,
                      int32_t out_c, int32_t size, int32_t weight)
{
    clf_layer *l = &c->layers[c->nlayers++];
    l->kind = kind;
    l->in_h = in_h;
    l->in_w = in_w;
    l->in_c = in_c;
    l->size = size;
    l->weight = weight;
    l->out_h = kind == CLF_L_POOL ? in_h / size : kind == CLF_L_DENSE ? 1 : in_h;
    l->out_w = kind == CLF_L_POOL ? in_w / size : kind == CLF_L_DENSE ? 1 : in_w;
    l->out_c = out_c;
}

/* Lays out the layers, weights and parameter table of c->cfg (already checked). */
static void build(classifier *c)
{
    const clf_config *cfg = &c->cfg;
    const clf_arch a = (clf_arch)cfg->arch;
    const int hyper = clf_arch_is_hyper(a);
    builder b = {c, c->table, 0, 0};
    c->nlayers = c->nweights = c->ngen = 0;
    c->w_in = c->b_in = c->w_out = c->b_out = c->gain = -1;
    if (arch_is_conv(a)) {
        const int32_t C = cfg->channels, f = cfg->kernel, S = CLF_SIDE;
        add_weight(&b, c, "conv1", f * f, C, 1, 1, 0);
        add_layer(c, CLF_L_CONV, S, S, 1, C, f, 0);
        add_layer(c, CLF_L_RELU, S, S, C, C, 0, -1);
        add_layer(c, CLF_L_POOL, S, S, C, C, 2, -1);
        add_weight(&b, c, "conv2", f * f * C, C, C, 1, hyper);
        add_layer(c, CLF_L_CONV, S / 2, S / 2, C, C, f, 1);
        add_layer(c, CLF_L_RELU, S / 2, S / 2, C, C, 0, -1);
        add_layer(c, CLF_L_POOL, S / 2, S / 2, C, C, 2, -1);
        const int32_t flat = (S / 4) * (S / 4) * C;
        add_weight(&b, c, "out", flat, CLF_CLASSES, flat, 0, 0);
        add_layer(c, CLF_L_DENSE, 1, 1, flat, CLF_CLASSES, 0, 2);
    } else {
        const int32_t H = cfg->hidden;
        add_weight(&b, c, "fc1", CLF_PIXELS, H, CLF_PIXELS, 1, hyper);
        add_layer(c, CLF_L_DENSE, 1, 1, CLF_PIXELS, H, 0, 0);
        add_layer(c, CLF_L_RELU, 1, 1, H, H, 0, -1);
        add_weight(&b, c, "out", H, CLF_CLASSES, H, 0, hyper);
        add_layer(c, CLF_L_DENSE, 1, 1, H, CLF_CLASSES, 0, 1);
    }
    if (hyper) {
        const int64_t N = cfg->tile_rows, Z = cfg->embed, d = cfg->gen_hidden, s = cfg->tile_cols;
        c->w_in = add_param(&b, "hyper.W_in", INIT_NORMAL, 1.0 / sqrt((double)Z), 3, N, Z, d);
        c->b_in = add_param(&b, "hyper.B_in", INIT_ZERO, 0, 2, N, d, 0);
        c->w_out = add_param(&b, "hyper.W_out", INIT_NORMAL, 1.0 / sqrt((double)d), 2, d, s, 0);
        c->b_out = add_param(&b, "hyper.B_out", INIT_ZERO, 0, 1, s, 0, 0);
        if (cfg->wnorm) {
            /* one gain per generated matrix, starting at that matrix's spread */
            c->gain = b.n;
            for (int w = 0; w < c->nweights; w++)
                if (c->weights[w].gen >= 0) {
                    char name[PARAM_NAME_MAX];
                    snprintf(name, sizeof name, "hyper.gain.%d", c->weights[w].gen);
                    add_param(&b, name, INIT_CONST,
                              weight_std(c->weights[w].rows, w + 1 < c->nweights), 1, 1, 0, 0);
                }
        }
    }
    c->nparams = b.n;
    c->size = b.total;
}

void clf_param_counts(const clf_config *cfg, clf_counts *out)
{
    classifier c;
    memset(&c, 0, sizeof c);
    c.cfg = *cfg;
    build(&c);
    memset(out, 0, sizeof *out);
    out->total = c.size;
    for (int w = 0; w < c.nweights; w++)
        if (c.weights[w].gen >= 0) {
            out->generated += (size_t)c.weights[w].rows * (size_t)c.weights[w].cols;
            out->generator += c.table[c.weights[w].z].size;
        }
    for (int i = 0; i < c.nparams; i++)
        if (strncmp(c.table[i].name, "hyper.", 6) == 0 && strncmp(c.table[i].name, "hyper.z.", 8) != 0)
            out->generator += c.table[i].size;
}

hyper_status clf_create(classifier *c, const clf_config *cfg, char *err)
{
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    hyper_status st = clf_config_check(&c->cfg, err);
    if (st != HYPER_OK)
        return st;
    build(c);
    if (!(c->block = calloc(c->size, sizeof *c->block)))
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory for %zu classifier parameters", c->size);
    return HYPER_OK;
}

void clf_free(classifier *c)
{
    if (!c)
        return;
    free(c->frozen);
    free(c->block);
    memset(c, 0, sizeof *c);
}

void clf_init(classifier *c, uint64_t seed) { param_table_init(c->table, c->nparams, c->block, seed); }

int clf_param_index(const classifier *c, const char *name)
{
    for (int i = 0; name && i < c->nparams; i++)
        if (strcmp(c->table[i].name, name) == 0)
            return i;
    return -1;
}

static const real *param(const classifier *c, int i) { return c->block + c->table[i].offset; }

/* ---- files -------------------------------------------------------------------------------- */

static const struct {
    const char *key;
    size_t offset;
} config_keys[] = {
    {"hidden", offsetof(clf_config, hidden)},       {"channels", offsetof(clf_config, channels)},
    {"kernel", offsetof(clf_config, kernel)},       {"embed", offsetof(clf_config, embed)},
    {"gen_hidden", offsetof(clf_config, gen_hidden)}, {"tile_rows", offsetof(clf_config, tile_rows)},
    {"tile_cols", offsetof(clf_config, tile_cols)}, {"wnorm", offsetof(clf_config, wnorm)},
};
#define NCONFIG_KEYS ((int)(sizeof config_keys / sizeof config_keys[0]))

static int32_t *config_field(clf_config *c, int i) { return (int32_t *)(void *)((char *)c + config_keys[i].offset); }

static int own_key(const char *key)
{
    if (strcmp(key, "kind") == 0 || strcmp(key, "arch") == 0 || strcmp(key, "param_count") == 0)
        return 1;
    for (int i = 0; i < NCONFIG_KEYS; i++)
        if (strcmp(key, config_keys[i].key) == 0)
            return 1;
    return 0;
}

hyper_status clf_save(const char *path, const classifier *c, const ckpt_kv *meta, int nmeta,
                      const ckpt_tensor *extra, int nextra, char *err)
{
    enum { OWN = NCONFIG_KEYS + 3 };
    if (nmeta < 0 || nmeta > CHECKPOINT_MAX_META - OWN || nextra < 0 ||
        nextra > CHECKPOINT_MAX_TENSORS - c->nparams)
        return hyper_fail(err, HYPER_ERR_ARG, "clf_save: too many metadata entries or tensors");
    ckpt_kv kv[CHECKPOINT_MAX_META];
    char num[OWN][24];
    int n = 0;
    clf_config cfg = c->cfg;
    kv[n++] = (ckpt_kv){"kind", CLF_KIND};
    kv[n++] = (ckpt_kv){"arch", clf_arch_str((clf_arch)cfg.arch)};
    for (int i = 0; i < NCONFIG_KEYS; i++) {
        snprintf(num[i], sizeof num[i], "%d", *config_field(&cfg, i));
        kv[n++] = (ckpt_kv){config_keys[i].key, num[i]};
    }
    snprintf(num[NCONFIG_KEYS], sizeof num[0], "%zu", c->size);
    kv[n++] = (ckpt_kv){"param_count", num[NCONFIG_KEYS]};
    for (int i = 0; i < nmeta; i++) {
        if (meta[i].key && own_key(meta[i].key))
            return hyper_fail(err, HYPER_ERR_ARG, "metadata key \"%s\" is written by the classifier itself",
                              meta[i].key);
        kv[n++] = meta[i];
    }
    ckpt_tensor t[CHECKPOINT_MAX_TENSORS];
    int nt = 0;
    for (int p = 0; p < c->nparams; p++) {
        const param_info *pi = &c->table[p];
        t[nt++] = (ckpt_tensor){pi->name, pi->ndim, {pi->shape[0], pi->shape[1], pi->shape[2]}, param(c, p)};
    }
    for (int i = 0; i < nextra; i++)
        t[nt++] = extra[i];
    return checkpoint_save_tensors(path, kv, n, t, nt, err);
}

int clf_is_classifier_file(const checkpoint *ck)
{
    const char *kind = checkpoint_meta(ck, "kind");
    return kind && strcmp(kind, CLF_KIND) == 0;
}

hyper_status clf_load(const checkpoint *ck, classifier *c, char *err)
{
    const char *path = checkpoint_path(ck);
    char msg[HYPER_ERRMSG_MAX];
    clf_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(c, 0, sizeof *c);
    if (!clf_is_classifier_file(ck))
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: metadata \"kind\" is not \"%s\"", path, CLF_KIND);
    clf_arch arch;
    const char *a = checkpoint_meta(ck, "arch");
    if (!a || clf_arch_parse(a, &arch) != 0)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: metadata \"arch\": \"%s\" is not mlp, hypermlp, conv or hyperconv",
                          path, a ? a : "(missing)");
    cfg.arch = arch;
    for (int i = 0; i < NCONFIG_KEYS; i++) {
        const char *v = checkpoint_meta(ck, config_keys[i].key);
        char *end = NULL;
        long x = v ? strtol(v, &end, 10) : -1;
        if (!v || !*v || *end || x < 0 || x > INT32_MAX)
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: metadata \"%s\" is missing or not a decimal integer", path,
                              config_keys[i].key);
        *config_field(&cfg, i) = (int32_t)x;
    }
    if (clf_create(c, &cfg, msg) != HYPER_OK)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: invalid classifier config: %s", path, msg);
    /* every tensor with exactly the shape the config gives it, then the values */
    hyper_status st = checkpoint_check_tensors(ck, c->table, c->nparams, err);
    for (int p = 0; st == HYPER_OK && p < c->nparams; p++)
        st = checkpoint_read_tensor(ck, c->table[p].name, c->block + c->table[p].offset, c->table[p].size, err);
    const char *pc = checkpoint_meta(ck, "param_count");
    if (st == HYPER_OK && pc && strtoull(pc, NULL, 10) != c->size)
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: metadata \"param_count\" is \"%s\" but the config has %zu parameters",
                        path, pc, c->size);
    if (st != HYPER_OK) {
        clf_free(c);
        return HYPER_ERR_FORMAT;
    }
    return HYPER_OK;
}

/* ---- workspace ---------------------------------------------------------------------------- */

struct clf_ws {
    int32_t batch, B;           /* capacity; images in the last forward */
    int train;                  /* 1: has the backward pass's buffers */
    const uint8_t *labels;      /* of the last forward (borrowed until the backward) */
    real *act[CLF_MAX_LAYERS + 1];  /* act[0] the input, act[l + 1] layer l's output (B, size) */
    int32_t *argmax[CLF_MAX_LAYERS]; /* pool layers: input index of each output's maximum */
    real *dbuf[2];              /* gradients flowing back, ping-pong (B, largest size) */
    real *cols, *dcols;         /* im2col blocks (IM2COL_IMAGES · pixels, f·f·C) */
    real *probs;                /* (B, 10) */
    real *x;                    /* (B, 784): clf_evaluate's input */
    /* per generated matrix */
    real *gen_w[CLF_MAX_WEIGHTS];   /* the weights the layer uses (rows, cols) */
    real *gen_k[CLF_MAX_WEIGHTS];   /* K before the norm (wnorm) */
    real *gen_a[CLF_MAX_WEIGHTS];   /* a (tiles · N_in, d) */
    real gen_rstd[CLF_MAX_WEIGHTS]; /* 1 / std K (wnorm) */
    real *kt, *dkt, *da;        /* scratch: tile-ordered K and its gradient, da */
    real *dw;                   /* scratch: a generated matrix's gradient */
    void *mem;                  /* one allocation for all of the above */
};

static int32_t layer_in_size(const clf_layer *l) { return l->in_h * l->in_w * l->in_c; }
static int32_t layer_out_size(const clf_layer *l) { return l->out_h * l->out_w * l->out_c; }

/* Walks the workspace layout: with base NULL it only adds up the bytes.  Without train, the
 * backward pass's buffers are left out, and so are the generator's when c is frozen. */
static size_t ws_layout(const classifier *c, int32_t B, int train, clf_ws *ws, char *base)
{
    clf_ws scratch;
    if (!ws)
        ws = &scratch;
    size_t off = 0;
#define TAKE(ptr, count, type)                                                     \
    do {                                                                           \
        size_t bytes_ = (((size_t)(count) * sizeof(type)) + 63) & ~(size_t)63;     \
        if (base)                                                                  \
            (ptr) = (type *)(void *)(base + off);                                  \
        off += bytes_;                                                             \
    } while (0)
    size_t largest = CLF_PIXELS, cols = 0;
    TAKE(ws->act[0], (size_t)B * CLF_PIXELS, real);
    for (int l = 0; l < c->nlayers; l++) {
        const clf_layer *ly = &c->layers[l];
        const size_t out = (size_t)layer_out_size(ly);
        if (out > largest)
            largest = out;
        TAKE(ws->act[l + 1], (size_t)B * out, real);
        if (ly->kind == CLF_L_POOL)
            TAKE(ws->argmax[l], (size_t)B * out, int32_t);
        if (ly->kind == CLF_L_CONV) {
            size_t n = (size_t)ly->out_h * ly->out_w * ly->in_c * ly->size * ly->size;
            if (n > cols)
                cols = n;
        }
    }
    const size_t blk = (size_t)(B < IM2COL_IMAGES ? B : IM2COL_IMAGES);
    TAKE(ws->cols, blk * cols, real);
    TAKE(ws->probs, (size_t)B * CLF_CLASSES, real);
    TAKE(ws->x, (size_t)B * CLF_PIXELS, real);
    if (train) {
        TAKE(ws->dbuf[0], (size_t)B * largest, real);
        TAKE(ws->dbuf[1], (size_t)B * largest, real);
        TAKE(ws->dcols, blk * cols, real);
    }
    size_t gen_largest = 0, a_largest = 0;
    for (int w = 0; w < c->nweights && (train || !c->frozen); w++) {
        const clf_weight *cw = &c->weights[w];
        if (cw->gen < 0)
            continue;
        const size_t n = (size_t)cw->rows * cw->cols;
        const size_t na = n / (size_t)c->cfg.tile_cols * (size_t)c->cfg.gen_hidden;
        gen_largest = n > gen_largest ? n : gen_largest;
        a_largest = na > a_largest ? na : a_largest;
        TAKE(ws->gen_w[cw->gen], n, real);
        TAKE(ws->gen_k[cw->gen], n, real);
        TAKE(ws->gen_a[cw->gen], na, real);
    }
    TAKE(ws->kt, gen_largest, real);
    if (train) {
        TAKE(ws->dkt, gen_largest, real);
        TAKE(ws->dw, gen_largest, real);
        TAKE(ws->da, a_largest, real);
    }
#undef TAKE
    return off;
}

size_t clf_ws_bytes(const clf_config *cfg, int32_t batch)
{
    classifier c;
    memset(&c, 0, sizeof c);
    c.cfg = *cfg;
    if (batch < 1 || batch > CLF_MAX_BATCH || clf_config_check(&c.cfg, NULL) != HYPER_OK)
        return 0;
    build(&c);
    return sizeof(clf_ws) + ws_layout(&c, batch, 1, NULL, NULL);
}

static clf_ws *ws_new(const classifier *c, int32_t batch, int train)
{
    if (batch < 1 || batch > CLF_MAX_BATCH)
        return NULL;
    clf_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    const size_t bytes = ws_layout(c, batch, train, NULL, NULL);
    if (!(ws->mem = aligned_alloc(64, bytes))) {
        free(ws);
        return NULL;
    }
    memset(ws->mem, 0, bytes);
    ws_layout(c, batch, train, ws, ws->mem);
    ws->batch = batch;
    ws->train = train;
    return ws;
}

clf_ws *clf_ws_new(const classifier *c, int32_t batch) { return ws_new(c, batch, 1); }
clf_ws *clf_ws_new_inference(const classifier *c, int32_t batch) { return ws_new(c, batch, 0); }

void clf_ws_free(clf_ws *ws)
{
    if (!ws)
        return;
    free(ws->mem);
    free(ws);
}

/* ---- the weight generator ------------------------------------------------------------------ */

/* Where row i of tile t lands in the matrix: tiles run along each row band first. */
static size_t tile_row_offset(const classifier *c, const clf_weight *w, int64_t t, int32_t i)
{
    const int32_t per_band = w->gen_cols / c->cfg.tile_cols;
    const int64_t band = t / per_band, col = t % per_band;
    return (size_t)(band * c->cfg.tile_rows + i) * (size_t)w->gen_cols + (size_t)(col * c->cfg.tile_cols);
}

static void generate(const classifier *c, clf_ws *ws, const clf_weight *w)
{
    const clf_config *cfg = &c->cfg;
    const int32_t N = cfg->tile_rows, Z = cfg->embed, d = cfg->gen_hidden, s = cfg->tile_cols;
    const int64_t tiles = c->table[w->z].shape[0];
    const real *z = param(c, w->z), *W_in = param(c, c->w_in), *B_in = param(c, c->b_in);
    real *A = ws->gen_a[w->gen], *K = cfg->wnorm ? ws->gen_k[w->gen] : ws->gen_w[w->gen];
    /* a_i = z_t · W_in[i] + B_in[i] for every tile t and row i */
    for (int64_t t = 0; t < tiles; t++)
        for (int32_t i = 0; i < N; i++) {
            real *a = A + ((size_t)t * N + i) * d;
            memcpy(a, B_in + (size_t)i * d, (size_t)d * sizeof *a);
            for (int32_t k = 0; k < Z; k++) {
                const real zk = z[t * Z + k], *row = W_in + ((size_t)i * Z + k) * d;
                for (int32_t e = 0; e < d; e++)
                    a[e] += zk * row[e];
            }
        }
    /* K_i = a_i · W_out + B_out, all rows of all tiles in one product */
    const int32_t rows = (int32_t)(tiles * N);
    const real *B_out = param(c, c->b_out);
    for (int32_t r = 0; r < rows; r++)
        memcpy(ws->kt + (size_t)r * s, B_out, (size_t)s * sizeof(real));
    mm(0, 0, rows, s, d, A, d, param(c, c->w_out), s, 1, ws->kt, s);
    for (int64_t t = 0; t < tiles; t++)
        for (int32_t i = 0; i < N; i++)
            memcpy(K + tile_row_offset(c, w, t, i), ws->kt + ((size_t)t * N + i) * s, (size_t)s * sizeof(real));
    if (!cfg->wnorm)
        return;
    const size_t n = (size_t)w->rows * w->cols;
    double mean = 0, var = 0;
    for (size_t k = 0; k < n; k++)
        mean += K[k];
    mean /= (double)n;
    for (size_t k = 0; k < n; k++)
        var += (K[k] - mean) * (K[k] - mean);
    var /= (double)n;
    const real rstd = (real)(1.0 / sqrt(var + WNORM_EPS)), g = param(c, c->gain + w->gen)[0];
    ws->gen_rstd[w->gen] = rstd;
    for (size_t k = 0; k < n; k++) {
        K[k] = (real)((K[k] - mean) * rstd);   /* K now holds the normalised values */
        ws->gen_w[w->gen][k] = g * K[k];
    }
}

/* Backward through the generator: dW (rows, cols) is the gradient of the generated matrix. */
static void generate_backward(const classifier *c, clf_ws *ws, const clf_weight *w, const real *dW,
                              real *grad)
{
    const clf_config *cfg = &c->cfg;
    const int32_t N = cfg->tile_rows, Z = cfg->embed, d = cfg->gen_hidden, s = cfg->tile_cols;
    const int64_t tiles = c->table[w->z].shape[0];
    const size_t n = (size_t)w->rows * w->cols;
    const real *dK = dW;
    if (cfg->wnorm) {
        /* W = g · K̂ with K̂ = (K − μ)·rstd: dg = Σ dW·K̂, dK = rstd·(dK̂ − mean dK̂ − K̂·mean(dK̂·K̂)) */
        const real *Kh = ws->gen_k[w->gen], g = param(c, c->gain + w->gen)[0];
        double dg = 0, m1 = 0, m2 = 0;
        for (size_t k = 0; k < n; k++) {
            dg += (double)dW[k] * Kh[k];
            m1 += (double)dW[k] * g;
            m2 += (double)dW[k] * g * Kh[k];
        }
        grad[c->table[c->gain + w->gen].offset] += (real)dg;
        m1 /= (double)n;
        m2 /= (double)n;
        const real rstd = ws->gen_rstd[w->gen];
        for (size_t k = 0; k < n; k++)
            ws->dw[k] = (real)(rstd * (dW[k] * g - m1 - Kh[k] * m2));
        dK = ws->dw;
    }
    for (int64_t t = 0; t < tiles; t++)
        for (int32_t i = 0; i < N; i++)
            memcpy(ws->dkt + ((size_t)t * N + i) * s, dK + tile_row_offset(c, w, t, i), (size_t)s * sizeof(real));
    const int32_t rows = (int32_t)(tiles * N);
    const real *A = ws->gen_a[w->gen];
    real *dB_out = grad + c->table[c->b_out].offset;
    for (int32_t r = 0; r < rows; r++)
        for (int32_t j = 0; j < s; j++)
            dB_out[j] += ws->dkt[(size_t)r * s + j];
    mm(1, 0, d, s, rows, A, d, ws->dkt, s, 1, grad + c->table[c->w_out].offset, s);
    mm(0, 1, rows, d, s, ws->dkt, s, param(c, c->w_out), s, 0, ws->da, d);
    const real *z = param(c, w->z), *W_in = param(c, c->w_in);
    real *dz = grad + c->table[w->z].offset, *dW_in = grad + c->table[c->w_in].offset,
         *dB_in = grad + c->table[c->b_in].offset;
    for (int64_t t = 0; t < tiles; t++)
        for (int32_t i = 0; i < N; i++) {
            const real *da = ws->da + ((size_t)t * N + i) * d;
            for (int32_t e = 0; e < d; e++)
                dB_in[(size_t)i * d + e] += da[e];
            for (int32_t k = 0; k < Z; k++) {
                const real zk = z[t * Z + k], *row = W_in + ((size_t)i * Z + k) * d;
                real *drow = dW_in + ((size_t)i * Z + k) * d, acc = 0;
                for (int32_t e = 0; e < d; e++) {
                    drow[e] += zk * da[e];
                    acc += row[e] * da[e];
                }
                dz[t * Z + k] += acc;
            }
        }
}

const real *clf_weight_values(const classifier *c, const clf_ws *ws, int weight)
{
    const clf_weight *w = &c->weights[weight];
    if (w->gen < 0)
        return param(c, w->param);
    return c->frozen ? c->frozen_w[w->gen] : ws->gen_w[w->gen];
}

hyper_status clf_freeze(classifier *c, char *err)
{
    if (c->frozen || !c->ngen)
        return HYPER_OK;
    size_t total = 0;
    for (int w = 0; w < c->nweights; w++)
        if (c->weights[w].gen >= 0)
            total += (size_t)c->weights[w].rows * c->weights[w].cols;
    clf_ws *ws = clf_ws_new(c, 1);
    real *block = ws ? malloc(total * sizeof *block) : NULL;
    if (!block) {
        clf_ws_free(ws);
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory for %zu generated weights", total);
    }
    size_t at = 0;
    for (int w = 0; w < c->nweights; w++) {
        const clf_weight *cw = &c->weights[w];
        if (cw->gen < 0)
            continue;
        generate(c, ws, cw);
        const size_t n = (size_t)cw->rows * cw->cols;
        memcpy(block + at, ws->gen_w[cw->gen], n * sizeof *block);
        c->frozen_w[cw->gen] = block + at;
        at += n;
    }
    clf_ws_free(ws);
    c->frozen = block;
    return HYPER_OK;
}

/* ---- layers --------------------------------------------------------------------------------- */

/* The im2col rows of images [0, n) of in: one row per output pixel, its f·f·C_in values in
 * the order (channel, ky, kx), zero outside the image. */
static void im2col(const clf_layer *l, const real *in, int32_t n, real *cols)
{
    const int32_t H = l->in_h, W = l->in_w, C = l->in_c, f = l->size, pad = f / 2;
    const size_t kk = (size_t)C * f * f;
    for (int32_t b = 0; b < n; b++) {
        const real *img = in + (size_t)b * H * W * C;
        for (int32_t y = 0; y < H; y++)
            for (int32_t x = 0; x < W; x++) {
                real *row = cols + ((size_t)(b * H + y) * W + x) * kk;
                for (int32_t ch = 0; ch < C; ch++)
                    for (int32_t ky = 0; ky < f; ky++) {
                        const int32_t iy = y + ky - pad;
                        for (int32_t kx = 0; kx < f; kx++) {
                            const int32_t ix = x + kx - pad;
                            *row++ = (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                         ? img[((size_t)iy * W + ix) * C + ch] : 0;
                        }
                    }
            }
    }
}

/* The adjoint of im2col: adds each column value back to the input pixel it came from. */
static void col2im(const clf_layer *l, const real *cols, int32_t n, real *din)
{
    const int32_t H = l->in_h, W = l->in_w, C = l->in_c, f = l->size, pad = f / 2;
    const size_t kk = (size_t)C * f * f;
    for (int32_t b = 0; b < n; b++) {
        real *img = din + (size_t)b * H * W * C;
        for (int32_t y = 0; y < H; y++)
            for (int32_t x = 0; x < W; x++) {
                const real *row = cols + ((size_t)(b * H + y) * W + x) * kk;
                for (int32_t ch = 0; ch < C; ch++)
                    for (int32_t ky = 0; ky < f; ky++) {
                        const int32_t iy = y + ky - pad;
                        for (int32_t kx = 0; kx < f; kx++, row++) {
                            const int32_t ix = x + kx - pad;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                img[((size_t)iy * W + ix) * C + ch] += *row;
                        }
                    }
            }
    }
}

static void add_bias(real *out, int64_t rows, int32_t cols, const real *b)
{
    for (int64_t r = 0; r < rows; r++)
        for (int32_t j = 0; j < cols; j++)
            out[r * cols + j] += b[j];
}

static void conv_forward(const clf_layer *l, clf_ws *ws, int32_t B, const real *in, const real *W,
                         const real *bias, real *out)
{
    const int32_t pix = l->out_h * l->out_w, kk = l->in_c * l->size * l->size;
    for (int32_t b0 = 0; b0 < B; b0 += IM2COL_IMAGES) {
        const int32_t n = B - b0 < IM2COL_IMAGES ? B - b0 : IM2COL_IMAGES;
        im2col(l, in + (size_t)b0 * layer_in_size(l), n, ws->cols);
        mm(0, 0, n * pix, l->out_c, kk, ws->cols, kk, W, l->out_c, 0,
           out + (size_t)b0 * pix * l->out_c, l->out_c);
    }
    add_bias(out, (int64_t)B * pix, l->out_c, bias);
}

/* din may be NULL (the first layer needs no input gradient). */
static void conv_backward(const clf_layer *l, clf_ws *ws, int32_t B, const real *in, const real *W,
                          const real *dout, real *dW, real *db, real *din)
{
    const int32_t pix = l->out_h * l->out_w, kk = l->in_c * l->size * l->size, C = l->out_c;
    for (int64_t r = 0; r < (int64_t)B * pix; r++)
        for (int32_t j = 0; j < C; j++)
            db[j] += dout[r * C + j];
    if (din)
        memset(din, 0, (size_t)B * layer_in_size(l) * sizeof *din);
    for (int32_t b0 = 0; b0 < B; b0 += IM2COL_IMAGES) {
        const int32_t n = B - b0 < IM2COL_IMAGES ? B - b0 : IM2COL_IMAGES;
        const real *dblk = dout + (size_t)b0 * pix * C;
        im2col(l, in + (size_t)b0 * layer_in_size(l), n, ws->cols);
        mm(1, 0, kk, C, n * pix, ws->cols, kk, dblk, C, 1, dW, C);
        if (din) {
            mm(0, 1, n * pix, kk, C, dblk, C, W, C, 0, ws->dcols, kk);
            col2im(l, ws->dcols, n, din + (size_t)b0 * layer_in_size(l));
        }
    }
}

static void pool_forward(const clf_layer *l, int32_t B, const real *in, real *out, int32_t *arg)
{
    const int32_t H = l->in_h, W = l->in_w, C = l->in_c, k = l->size;
    for (int32_t b = 0; b < B; b++)
        for (int32_t y = 0; y < l->out_h; y++)
            for (int32_t x = 0; x < l->out_w; x++)
                for (int32_t ch = 0; ch < C; ch++) {
                    int32_t best = -1;
                    for (int32_t dy = 0; dy < k; dy++)
                        for (int32_t dx = 0; dx < k; dx++) {
                            const int32_t i = ((b * H + y * k + dy) * W + x * k + dx) * C + ch;
                            if (best < 0 || in[i] > in[best])
                                best = i;
                        }
                    const size_t o = (((size_t)b * l->out_h + y) * l->out_w + x) * C + ch;
                    out[o] = in[best];
                    arg[o] = best;
                }
}

static void dense_forward(const clf_layer *l, int32_t B, const real *in, const real *W,
                          const real *bias, real *out)
{
    mm(0, 0, B, l->out_c, l->in_c, in, l->in_c, W, l->out_c, 0, out, l->out_c);
    add_bias(out, B, l->out_c, bias);
}

/* ---- the net ---------------------------------------------------------------------------------- */

double clf_forward(const classifier *c, clf_ws *ws, int32_t B, const real *x, const uint8_t *labels,
                   real *probs)
{
    if (B > ws->batch)
        B = ws->batch;
    ws->B = B;
    ws->labels = labels;
    for (int w = 0; w < c->nweights && !c->frozen; w++)
        if (c->weights[w].gen >= 0)
            generate(c, ws, &c->weights[w]);
    memcpy(ws->act[0], x, (size_t)B * CLF_PIXELS * sizeof *x);
    for (int li = 0; li < c->nlayers; li++) {
        const clf_layer *l = &c->layers[li];
        const real *in = ws->act[li];
        real *out = ws->act[li + 1];
        const real *W = l->weight >= 0 ? clf_weight_values(c, ws, l->weight) : NULL;
        const real *bias = l->weight >= 0 ? param(c, c->weights[l->weight].bias) : NULL;
        switch (l->kind) {
        case CLF_L_CONV:
            conv_forward(l, ws, B, in, W, bias, out);
            break;
        case CLF_L_DENSE:
            dense_forward(l, B, in, W, bias, out);
            break;
        case CLF_L_RELU:
            for (size_t k = 0; k < (size_t)B * layer_out_size(l); k++)
                out[k] = in[k] > 0 ? in[k] : 0;
            break;
        case CLF_L_POOL:
            pool_forward(l, B, in, out, ws->argmax[li]);
            break;
        }
    }
    /* softmax and cross-entropy, in double for the sums */
    const real *logits = ws->act[c->nlayers];
    double loss = 0;
    for (int32_t b = 0; b < B; b++) {
        const real *z = logits + (size_t)b * CLF_CLASSES;
        real *p = ws->probs + (size_t)b * CLF_CLASSES;
        real zmax = z[0];
        for (int k = 1; k < CLF_CLASSES; k++)
            zmax = z[k] > zmax ? z[k] : zmax;
        double sum = 0;
        for (int k = 0; k < CLF_CLASSES; k++)
            sum += exp((double)(z[k] - zmax));
        for (int k = 0; k < CLF_CLASSES; k++)
            p[k] = (real)(exp((double)(z[k] - zmax)) / sum);
        if (labels)
            loss += log(sum) - (double)(z[labels[b]] - zmax);
    }
    if (probs)
        memcpy(probs, ws->probs, (size_t)B * CLF_CLASSES * sizeof *probs);
    return labels ? loss / B : 0;
}

void clf_backward(const classifier *c, clf_ws *ws, real *grad, real scale)
{
    if (!ws->train || c->frozen || !ws->labels)
        return;   /* nothing to go back through (see classifier.h) */
    const int32_t B = ws->B;
    real *d = ws->dbuf[0], *dnext = ws->dbuf[1];
    /* d(mean loss)/d logits = (p − onehot) / B */
    for (int32_t b = 0; b < B; b++)
        for (int k = 0; k < CLF_CLASSES; k++) {
            const size_t i = (size_t)b * CLF_CLASSES + k;
            d[i] = (ws->probs[i] - (ws->labels[b] == k ? 1 : 0)) * scale / (real)B;
        }
    for (int li = c->nlayers - 1; li >= 0; li--) {
        const clf_layer *l = &c->layers[li];
        const real *in = ws->act[li], *out = ws->act[li + 1];
        real *din = li > 0 ? dnext : NULL;
        const clf_weight *w = l->weight >= 0 ? &c->weights[l->weight] : NULL;
        real *dW = NULL, *db = w ? grad + c->table[w->bias].offset : NULL, *dW_gen = NULL;
        if (w && w->gen >= 0) {
            /* the generated matrix's own gradient (in kt, free once the weights are made),
             * then through the generator */
            dW_gen = ws->kt;
            memset(dW_gen, 0, (size_t)w->rows * w->cols * sizeof *dW_gen);
            dW = dW_gen;
        } else if (w) {
            dW = grad + c->table[w->param].offset;
        }
        const real *W = w ? clf_weight_values(c, ws, l->weight) : NULL;
        switch (l->kind) {
        case CLF_L_CONV:
            conv_backward(l, ws, B, in, W, d, dW, db, din);
            break;
        case CLF_L_DENSE:
            for (int32_t b = 0; b < B; b++)
                for (int32_t j = 0; j < l->out_c; j++)
                    db[j] += d[(size_t)b * l->out_c + j];
            mm(1, 0, l->in_c, l->out_c, B, in, l->in_c, d, l->out_c, 1, dW, l->out_c);
            if (din)
                mm(0, 1, B, l->in_c, l->out_c, d, l->out_c, W, l->out_c, 0, din, l->in_c);
            break;
        case CLF_L_RELU:
            if (din)
                for (size_t k = 0; k < (size_t)B * layer_out_size(l); k++)
                    din[k] = out[k] > 0 ? d[k] : 0;
            break;
        case CLF_L_POOL:
            if (din) {
                memset(din, 0, (size_t)B * layer_in_size(l) * sizeof *din);
                for (size_t k = 0; k < (size_t)B * layer_out_size(l); k++)
                    din[ws->argmax[li][k]] += d[k];
            }
            break;
        }
        if (dW_gen)
            generate_backward(c, ws, w, dW_gen, grad);
        real *t = d;
        d = dnext;
        dnext = t;
    }
}

const real *clf_activation(const clf_ws *ws, int l) { return ws->act[l + 1]; }

/* ---- data helpers ------------------------------------------------------------------------------- */

void clf_shift_image(const float *src, int dx, int dy, int pad, real *dst)
{
    for (int y = 0; y < CLF_SIDE; y++)
        for (int x = 0; x < CLF_SIDE; x++) {
            const int sy = y + dy - pad, sx = x + dx - pad;
            dst[y * CLF_SIDE + x] = (sy >= 0 && sy < CLF_SIDE && sx >= 0 && sx < CLF_SIDE)
                                        ? (real)src[sy * CLF_SIDE + sx] : 0;
        }
}

void clf_evaluate(const classifier *c, clf_ws *ws, int32_t ws_batch, const float *pixels,
                  const uint8_t *labels, int32_t n, double *error, double *loss)
{
    int64_t wrong = 0;
    double total = 0;
    for (int32_t b0 = 0; b0 < n; b0 += ws_batch) {
        const int32_t B = n - b0 < ws_batch ? n - b0 : ws_batch;
        for (size_t k = 0; k < (size_t)B * CLF_PIXELS; k++)
            ws->x[k] = (real)pixels[(size_t)b0 * CLF_PIXELS + k];
        total += clf_forward(c, ws, B, ws->x, labels + b0, NULL) * B;
        for (int32_t b = 0; b < B; b++) {
            const real *p = ws->probs + (size_t)b * CLF_CLASSES;
            int best = 0;
            for (int k = 1; k < CLF_CLASSES; k++)
                best = p[k] > p[best] ? k : best;
            wrong += best != labels[b0 + b];
        }
    }
    if (error)
        *error = n > 0 ? (double)wrong / n : NAN;
    if (loss)
        *loss = n > 0 ? total / n : NAN;
}

/* ---- pictures ------------------------------------------------------------------------------------- */

static real largest_magnitude(const real *v, size_t n)
{
    real m = 0;
    for (size_t k = 0; k < n; k++)
        m = fabs((double)v[k]) > m ? (real)fabs((double)v[k]) : m;
    return m;
}

/* One kernel of side × side values, value (r, c) at W[r · rs + c · cs], as a small PNG
 * (blue negative, white zero, red positive, relative to scale) drawn at (x, y) with `cell`
 * pixels per value.  A PNG per kernel keeps the picture small: a rectangle per weight made
 * the paper's net a megabyte. */
static hyper_status svg_kernel(strbuf *out, double x, double y, double cell, const real *W, int side, size_t rs,
                               size_t cs, real scale, char *err)
{
    uint8_t rgb[CLF_SIDE * CLF_SIDE * 3];
    for (int r = 0; r < side; r++)
        for (int c = 0; c < side; c++) {
            const double t = scale > 0 ? fmax(-1.0, fmin(1.0, W[(size_t)r * rs + (size_t)c * cs] / scale)) : 0;
            const uint8_t fade = (uint8_t)lround(255 * (1 - fabs(t)));
            uint8_t *px = rgb + ((size_t)r * side + c) * 3;
            px[0] = t >= 0 ? 255 : fade;
            px[1] = fade;
            px[2] = t >= 0 ? fade : 255;
        }
    char *b64 = NULL;
    hyper_status st = png_encode_rgb_base64(rgb, side, side, &b64, err);
    if (st != HYPER_OK)
        return st;
    strbuf_printf(out, "<image x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                  "style=\"image-rendering:pixelated\" href=\"data:image/png;base64,%s\"/>\n",
                  x, y, side * cell, side * cell, b64);
    free(b64);
    return HYPER_OK;
}

static void svg_title(strbuf *out, double top, const char *title, real scale)
{
    strbuf_printf(out, "<text x=\"4\" y=\"%.1f\" font-family=\"sans-serif\" font-size=\"13\">%s (max |w| %.3g)</text>\n",
                  top + 14, title, (double)scale);
}

int clf_classify(const classifier *c, clf_ws *ws, const float *pixels, real *probs)
{
    for (int k = 0; k < CLF_PIXELS; k++)
        ws->x[k] = (real)pixels[k];
    clf_forward(c, ws, 1, ws->x, NULL, probs);
    int best = 0;
    for (int k = 1; k < CLF_CLASSES; k++)
        best = ws->probs[k] > ws->probs[best] ? k : best;
    return best;
}

hyper_status clf_kernels_svg(const classifier *c, strbuf *out, char *err)
{
    clf_ws *ws = clf_ws_new_inference(c, 1);
    if (!ws)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory drawing the kernels");
    real blank[CLF_PIXELS] = {0};
    clf_forward(c, ws, 1, blank, NULL, NULL);   /* generates the hyper weights */
    const clf_arch a = (clf_arch)c->cfg.arch;
    const int hyper = clf_arch_is_hyper(a);
    const char *made = hyper ? ", generated by the hypernetwork" : "";
    strbuf body;
    strbuf_init(&body);
    char title[192];
    double top = 0, width = 420;
    hyper_status st = HYPER_OK;
    if (arch_is_conv(a)) {
        const int C = c->cfg.channels, f = c->cfg.kernel;
        const real *W1 = clf_weight_values(c, ws, 0), *W2 = clf_weight_values(c, ws, 1);
        /* conv1 (f·f, C): kernel o is column o */
        const double cell1 = 6, box1 = f * cell1 + 8;
        const real s1 = largest_magnitude(W1, (size_t)f * f * C);
        snprintf(title, sizeof title, "conv1: one %d×%d kernel per output channel", f, f);
        svg_title(&body, top, title, s1);
        top += 22;
        for (int o = 0; o < C && st == HYPER_OK; o++)
            st = svg_kernel(&body, 4 + o * box1, top, cell1, W1 + o, f, (size_t)f * C, (size_t)C, s1, err);
        top += box1 + 8;
        /* conv2 (C·f·f, C): the kernel from input ci to output o starts at row ci·f·f, column o;
         * inputs down, outputs across */
        const double cell2 = 4, box2 = f * cell2 + 6;
        const real s2 = largest_magnitude(W2, (size_t)f * f * C * C);
        snprintf(title, sizeof title, "conv2: %d×%d kernels (rows: input channel, columns: output)%s", C, C, made);
        svg_title(&body, top, title, s2);
        top += 22;
        for (int ci = 0; ci < C && st == HYPER_OK; ci++)
            for (int o = 0; o < C && st == HYPER_OK; o++)
                st = svg_kernel(&body, 4 + o * box2, top + ci * box2, cell2, W2 + (size_t)ci * f * f * C + o, f,
                                (size_t)f * C, (size_t)C, s2, err);
        top += C * box2 + 8;
        width = fmax(width, 8 + C * fmax(box1, box2));
    } else {
        /* fc1 (784, H): unit u's input weights are column u, drawn as a 28×28 image */
        const int H = c->weights[0].cols, show = H < 16 ? H : 16;
        const real *W1 = clf_weight_values(c, ws, 0);
        const double cell = 2, box = CLF_SIDE * cell + 6;
        const real s1 = largest_magnitude(W1, (size_t)CLF_PIXELS * H);
        snprintf(title, sizeof title, "fc1: the first %d of %d hidden units' input weights%s", show, H, made);
        svg_title(&body, top, title, s1);
        top += 22;
        for (int u = 0; u < show && st == HYPER_OK; u++)
            st = svg_kernel(&body, 4 + (u % 8) * box, top + (u / 8) * box, cell, W1 + u, CLF_SIDE,
                            (size_t)CLF_SIDE * H, (size_t)H, s1, err);
        top += ((show + 7) / 8) * box + 8;
        width = fmax(width, 8 + 8 * box);
    }
    clf_ws_free(ws);
    char *inner = strbuf_take(&body);
    if (st != HYPER_OK) {
        free(inner);
        return st;
    }
    if (!inner)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory drawing the kernels");
    strbuf_printf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n%s</svg>\n",
                  width, top, width, top, inner);
    free(inner);
    return HYPER_OK;
}
