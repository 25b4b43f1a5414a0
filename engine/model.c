/*
 * model.c — the parameter table, weights, initialisation and recurrent state
 * of model.h.  The forward and backward passes live in stack.c, the LSTM core in cell.c.
 */
#include "model.h"

#include "linalg.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *const cell_names[CELL_COUNT] = {"lstm", "lnlstm", "hyperlstm", "lnhyperlstm"};

const char *cell_kind_str(cell_kind k)
{
    return (k >= 0 && k < CELL_COUNT) ? cell_names[k] : "unknown";
}

int cell_kind_parse(const char *s, cell_kind *out)
{
    for (int k = 0; k < CELL_COUNT; k++)
        if (s && strcmp(s, cell_names[k]) == 0) {
            *out = (cell_kind)k;
            return 0;
        }
    return -1;
}

int cell_is_hyper(cell_kind k) { return k == CELL_HYPERLSTM || k == CELL_LNHYPERLSTM; }
int cell_has_ln(cell_kind k) { return k == CELL_LNLSTM || k == CELL_LNHYPERLSTM; }

hyper_status model_config_check(const model_config *c, char *err)
{
    if (c->cell < 0 || c->cell >= CELL_COUNT)
        return hyper_fail(err, HYPER_ERR_ARG, "cell: unknown cell type %d", c->cell);
    if (c->layers < 1 || c->layers > MODEL_MAX_LAYERS)
        return hyper_fail(err, HYPER_ERR_ARG, "layers: %d is outside 1..%d", c->layers,
                          MODEL_MAX_LAYERS);
    if (c->units < 1 || c->units > MODEL_MAX_UNITS)
        return hyper_fail(err, HYPER_ERR_ARG, "units: %d is outside 1..%d", c->units,
                          MODEL_MAX_UNITS);
    if (c->outputs < 1 || c->outputs > MODEL_MAX_VOCAB)
        return hyper_fail(err, HYPER_ERR_ARG, "outputs: %d is outside 1..%d", c->outputs,
                          MODEL_MAX_VOCAB);
    if (c->inputs < 0 || c->inputs > MODEL_MAX_INPUTS)
        return hyper_fail(err, HYPER_ERR_ARG, "inputs: %d is outside 0..%d", c->inputs,
                          MODEL_MAX_INPUTS);
    if (cell_is_hyper((cell_kind)c->cell)) {
        if (c->hyper_units < 1 || c->hyper_units > MODEL_MAX_HYPER_UNITS)
            return hyper_fail(err, HYPER_ERR_ARG, "hyper_units: %d is outside 1..%d",
                              c->hyper_units, MODEL_MAX_HYPER_UNITS);
        if (c->embed < 1 || c->embed > MODEL_MAX_EMBED)
            return hyper_fail(err, HYPER_ERR_ARG, "embed: %d is outside 1..%d", c->embed,
                              MODEL_MAX_EMBED);
    }
    return HYPER_OK;
}

/* ---- the parameter table -------------------------------------------------------------- */

typedef struct {
    param_info *t;
    int n;
    size_t total;
} table_builder;

static void add(table_builder *tb, size_t slot, init_kind init, double value, int ndim,
                int64_t d0, int64_t d1, int64_t d2, const char *fmt, int layer)
{
    param_info *p = &tb->t[tb->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, fmt, layer);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->shape[2] = d2;
    p->size = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * (size_t)(ndim > 2 ? d2 : 1);
    p->offset = tb->total;
    p->init = init;
    p->init_value = value;
    p->slot = slot;
    tb->total += p->size;
}

/* Byte offset of a pointer member inside model_params, for the table's slot field: SLOT for
 * the top-level members, LAYER_SLOT for a member of layer[l] (l is not a constant, so the
 * offset is built from the array's offset and stride rather than offsetof(..., layer[l])). */
#define SLOT(member) offsetof(model_params, member)
#define LAYER_SLOT(l, member) \
    (offsetof(model_params, layer) + (size_t)(l) * sizeof(layer_params) + offsetof(layer_params, member))

static double glorot(int64_t fan_in, int64_t fan_out) { return sqrt(6.0 / (double)(fan_in + fan_out)); }

int model_param_table(const model_config *c, param_info *table, size_t *total)
{
    table_builder tb = {table, 0, 0};
    const int64_t N = c->units, H = c->hyper_units, Z = c->embed;
    const int hyper = cell_is_hyper((cell_kind)c->cell), ln = cell_has_ln((cell_kind)c->cell);
    for (int l = 0; l < c->layers; l++) {
        const int64_t D = l > 0 ? N : (c->inputs > 0 ? c->inputs : c->outputs);
        /* the hyper cell's input weights act on [x ; h], so Glorot counts both widths */
        add(&tb, LAYER_SLOT(l, W_x), INIT_GLOROT, glorot(D, 4 * N), 2, D, 4 * N, 0, "layers.%d.W_x", l);
        add(&tb, LAYER_SLOT(l, W_h), INIT_ORTHO, 0, 2, N, 4 * N, 0, "layers.%d.W_h", l);
        add(&tb, LAYER_SLOT(l, b), INIT_ZERO, 0, 1, 4 * N, 0, 0, "layers.%d.b", l);
        if (ln) {
            add(&tb, LAYER_SLOT(l, ln_g), INIT_ONE, 0, 1, 4 * N, 0, 0, "layers.%d.ln.gamma", l);
            add(&tb, LAYER_SLOT(l, ln_b), INIT_ZERO, 0, 1, 4 * N, 0, 0, "layers.%d.ln.beta", l);
            add(&tb, LAYER_SLOT(l, lnc_g), INIT_ONE, 0, 1, N, 0, 0, "layers.%d.ln_c.gamma", l);
            add(&tb, LAYER_SLOT(l, lnc_b), INIT_ZERO, 0, 1, N, 0, 0, "layers.%d.ln_c.beta", l);
        }
        if (!hyper)
            continue;
        add(&tb, LAYER_SLOT(l, hW_x), INIT_GLOROT, glorot(D + N, 4 * H), 2, D, 4 * H, 0, "layers.%d.hyper.W_x", l);
        add(&tb, LAYER_SLOT(l, hW_m), INIT_GLOROT, glorot(D + N, 4 * H), 2, N, 4 * H, 0, "layers.%d.hyper.W_m", l);
        add(&tb, LAYER_SLOT(l, hW_h), INIT_ORTHO, 0, 2, H, 4 * H, 0, "layers.%d.hyper.W_h", l);
        add(&tb, LAYER_SLOT(l, hb), INIT_ZERO, 0, 1, 4 * H, 0, 0, "layers.%d.hyper.b", l);
        if (ln) {
            add(&tb, LAYER_SLOT(l, hln_g), INIT_ONE, 0, 1, 4 * H, 0, 0, "layers.%d.hyper.ln.gamma", l);
            add(&tb, LAYER_SLOT(l, hln_b), INIT_ZERO, 0, 1, 4 * H, 0, 0, "layers.%d.hyper.ln.beta", l);
            add(&tb, LAYER_SLOT(l, hlnc_g), INIT_ONE, 0, 1, H, 0, 0, "layers.%d.hyper.ln_c.gamma", l);
            add(&tb, LAYER_SLOT(l, hlnc_b), INIT_ZERO, 0, 1, H, 0, 0, "layers.%d.hyper.ln_c.beta", l);
        }
        add(&tb, LAYER_SLOT(l, Wz_x), INIT_ZERO, 0, 2, H, 4 * Z, 0, "layers.%d.z_x.W", l);
        add(&tb, LAYER_SLOT(l, bz_x), INIT_ONE, 0, 1, 4 * Z, 0, 0, "layers.%d.z_x.b", l);
        add(&tb, LAYER_SLOT(l, Wz_h), INIT_ZERO, 0, 2, H, 4 * Z, 0, "layers.%d.z_h.W", l);
        add(&tb, LAYER_SLOT(l, bz_h), INIT_ONE, 0, 1, 4 * Z, 0, 0, "layers.%d.z_h.b", l);
        add(&tb, LAYER_SLOT(l, Wz_b), INIT_NORMAL, 0.01, 2, H, 4 * Z, 0, "layers.%d.z_b.W", l);
        add(&tb, LAYER_SLOT(l, Wd_x), INIT_CONST, 0.1 / (double)Z, 3, 4, Z, N, "layers.%d.d_x.W", l);
        add(&tb, LAYER_SLOT(l, Wd_h), INIT_CONST, 0.1 / (double)Z, 3, 4, Z, N, "layers.%d.d_h.W", l);
        add(&tb, LAYER_SLOT(l, Wd_b), INIT_ZERO, 0, 3, 4, Z, N, "layers.%d.d_b.W", l);
    }
    add(&tb, SLOT(W), INIT_GLOROT, glorot(N, c->outputs), 2, N, c->outputs, 0, "out.W", 0);
    add(&tb, SLOT(b), INIT_ZERO, 0, 1, c->outputs, 0, 0, "out.b", 0);
    if (total)
        *total = tb.total;
    return tb.n;
}

size_t model_param_count(const model_config *cfg)
{
    param_info table[MODEL_MAX_PARAMS];
    size_t total = 0;
    model_param_table(cfg, table, &total);
    return total;
}

void model_params_point(const model_config *cfg, real *block, model_params *p)
{
    param_info table[MODEL_MAX_PARAMS];
    int n = model_param_table(cfg, table, NULL);
    memset(p, 0, sizeof *p);
    for (int i = 0; i < n; i++)
        *(real **)((char *)p + table[i].slot) = block + table[i].offset;
}

hyper_status model_create(model *m, const model_config *cfg, char *err)
{
    memset(m, 0, sizeof *m);
    hyper_status st = model_config_check(cfg, err);
    if (st != HYPER_OK)
        return st;
    m->cfg = *cfg;
    m->nparams = model_param_table(cfg, m->table, &m->size);
    m->block = calloc(m->size, sizeof(real));
    if (!m->block)
        return hyper_fail(err, HYPER_ERR_NOMEM, "cannot allocate %zu parameters", m->size);
    model_params_point(cfg, m->block, &m->p);
    return HYPER_OK;
}

static void packs_free(model *m)
{
    for (int i = 0; i < m->npacks; i++)
        packed_w_free(&m->packs[i].pw);
    free(m->packs);
    m->packs = NULL;
    m->npacks = 0;
}

typedef struct {
    const real *W;
    int K, cols;
} pack_item;

hyper_status model_pack(model *m, int half, char *err)
{
    const model_config *c = &m->cfg;
    const int N = c->units, H = c->hyper_units, Z = c->embed;
    const int hyper = cell_is_hyper((cell_kind)c->cell);
    packs_free(m);
    /* (W, K, cols) of every product x · W in stack.c's forward */
    pack_item list[MODEL_MAX_LAYERS * 20 + 1];
    int n = 0;
    for (int l = 0; l < c->layers; l++) {
        const layer_params *P = &m->p.layer[l];
        const int D = l > 0 ? N : c->inputs; /* one-hot inputs are gathered, not multiplied */
        if (D > 0)
            list[n++] = (pack_item){P->W_x, D, 4 * N};
        list[n++] = (pack_item){P->W_h, N, 4 * N};
        if (!hyper)
            continue;
        if (D > 0)
            list[n++] = (pack_item){P->hW_x, D, 4 * H};
        list[n++] = (pack_item){P->hW_m, N, 4 * H};
        list[n++] = (pack_item){P->hW_h, H, 4 * H};
        list[n++] = (pack_item){P->Wz_x, H, 4 * Z};
        list[n++] = (pack_item){P->Wz_h, H, 4 * Z};
        list[n++] = (pack_item){P->Wz_b, H, 4 * Z};
        for (int g = 0; g < 4; g++) {
            const size_t wo = (size_t)g * Z * N;
            list[n++] = (pack_item){P->Wd_x + wo, Z, N};
            list[n++] = (pack_item){P->Wd_h + wo, Z, N};
            list[n++] = (pack_item){P->Wd_b + wo, Z, N};
        }
    }
    list[n++] = (pack_item){m->p.W, N, c->outputs};
    m->packs = calloc((size_t)n, sizeof *m->packs);
    if (!m->packs)
        return hyper_fail(err, HYPER_ERR_NOMEM, "cannot allocate packed weights");
    for (int i = 0; i < n; i++) {
        hyper_status st = (half ? packed_w_init_f16 : packed_w_init)(
            &m->packs[i].pw, list[i].W, list[i].K, list[i].cols, list[i].cols, err);
        if (st != HYPER_OK) {
            m->npacks = i;
            packs_free(m);
            return st;
        }
        m->packs[i].W = list[i].W;
        m->npacks = i + 1;
    }
    return HYPER_OK;
}

void model_free(model *m)
{
    packs_free(m);
    free(m->block);
    memset(m, 0, sizeof *m);
}

/* Fills the (n, stride) block starting at w with an n×n orthogonal matrix: Gram-Schmidt,
 * each row projected out twice ("twice is enough"), on the rows of a Gaussian matrix.  The
 * projections are matrix products so that n = 2000 takes a second, not a minute. */
static void orthogonal_block(real *w, int64_t n, int64_t stride, hyper_rng *rng)
{
    real *q = malloc((size_t)(n * n) * sizeof *q), *dots = malloc((size_t)n * sizeof *dots);
    if (!q || !dots)
        goto identity; /* keep the fallback deterministic: the identity is orthogonal too */
    for (int64_t i = 0; i < n * n; i++)
        q[i] = (real)hyper_rng_normal(rng);
    for (int64_t i = 0; i < n; i++) {
        real *qi = q + i * n;
        for (int pass = 0; pass < 2 && i > 0; pass++) {
            /* dots (1, i) = q_i · Q[0:i]ᵀ, then q_i −= dots · Q[0:i] */
            mm(0, 1, 1, (int)i, (int)n, qi, (int)n, q, (int)n, 0, dots, (int)i);
            for (int64_t j = 0; j < i; j++)
                dots[j] = -dots[j];
            mm(0, 0, 1, (int)n, (int)i, dots, (int)i, q, (int)n, 1, qi, (int)n);
        }
        double norm = 0;
        for (int64_t k = 0; k < n; k++)
            norm += (double)qi[k] * qi[k];
        norm = sqrt(norm);
        if (norm < 1e-6) /* a degenerate draw */
            goto identity;
        for (int64_t k = 0; k < n; k++)
            qi[k] = (real)(qi[k] / norm);
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(w + i * stride, q + i * n, (size_t)n * sizeof *w);
    free(q);
    free(dots);
    return;
identity:
    free(q);
    free(dots);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < n; k++)
            w[i * stride + k] = i == k;
}

void param_table_init(const param_info *table, int n, real *block, uint64_t seed)
{
    hyper_rng rng;
    hyper_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        const param_info *p = &table[i];
        real *w = block + p->offset;
        switch (p->init) {
        case INIT_ZERO:
            memset(w, 0, p->size * sizeof *w);
            break;
        case INIT_ONE:
        case INIT_CONST:
            for (size_t k = 0; k < p->size; k++)
                w[k] = (real)(p->init == INIT_ONE ? 1.0 : p->init_value);
            break;
        case INIT_NORMAL:
            for (size_t k = 0; k < p->size; k++)
                w[k] = (real)(p->init_value * hyper_rng_normal(&rng));
            break;
        case INIT_GLOROT:
            for (size_t k = 0; k < p->size; k++)
                w[k] = (real)(p->init_value * (2.0 * hyper_rng_uniform(&rng) - 1.0));
            break;
        case INIT_ORTHO: /* (n, 4n): one orthogonal n×n matrix per gate block */
            for (int g = 0; g < 4; g++)
                orthogonal_block(w + g * p->shape[0], p->shape[0], p->shape[1], &rng);
            break;
        }
    }
}

void model_init(model *m, uint64_t seed) { param_table_init(m->table, m->nparams, m->block, seed); }

/* ---- state ----------------------------------------------------------------------------- */

size_t model_state_size(const model_config *cfg)
{
    size_t per = 2 * (size_t)cfg->units;
    if (cell_is_hyper((cell_kind)cfg->cell))
        per += 2 * (size_t)cfg->hyper_units;
    return per * (size_t)cfg->layers;
}

/* Layout: for each layer h (B,N), c (B,N), then ĥ (B,H), ĉ (B,H) for hyper cells. */
static void state_point(model_state *s, const model_config *cfg)
{
    real *p = s->block;
    const size_t B = (size_t)s->batch, N = (size_t)cfg->units, H = (size_t)cfg->hyper_units;
    const int hyper = cell_is_hyper((cell_kind)cfg->cell);
    for (int l = 0; l < cfg->layers; l++) {
        s->h[l] = p; p += B * N;
        s->c[l] = p; p += B * N;
        s->hh[l] = hyper ? p : NULL; p += hyper ? B * H : 0;
        s->hc[l] = hyper ? p : NULL; p += hyper ? B * H : 0;
    }
}

hyper_status model_state_init(model_state *s, const model_config *cfg, int32_t batch, char *err)
{
    memset(s, 0, sizeof *s);
    if (batch < 1)
        return hyper_fail(err, HYPER_ERR_ARG, "batch: %d must be at least 1", batch);
    s->batch = batch;
    s->size = model_state_size(cfg) * (size_t)batch;
    s->block = calloc(s->size, sizeof(real));
    if (!s->block)
        return hyper_fail(err, HYPER_ERR_NOMEM, "cannot allocate state for %d streams", batch);
    state_point(s, cfg);
    return HYPER_OK;
}

void model_state_free(model_state *s)
{
    free(s->block);
    memset(s, 0, sizeof *s);
}

void model_state_zero(model_state *s) { memset(s->block, 0, s->size * sizeof(real)); }

void model_state_copy_stream(const model_config *cfg, model_state *dst, int32_t dst_b,
                             const model_state *src, int32_t src_b)
{
    const size_t N = (size_t)cfg->units, H = (size_t)cfg->hyper_units;
    for (int l = 0; l < cfg->layers; l++) {
        memcpy(dst->h[l] + dst_b * N, src->h[l] + src_b * N, N * sizeof(real));
        memcpy(dst->c[l] + dst_b * N, src->c[l] + src_b * N, N * sizeof(real));
        if (src->hh[l]) {
            memcpy(dst->hh[l] + dst_b * H, src->hh[l] + src_b * H, H * sizeof(real));
            memcpy(dst->hc[l] + dst_b * H, src->hc[l] + src_b * H, H * sizeof(real));
        }
    }
}
