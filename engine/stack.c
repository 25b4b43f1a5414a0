/*
 * stack.c — the forward and backward passes of a stack of cells over T steps of B streams
 * (model.h), and the character-model head on top.
 *
 * A layer is processed over all T steps before the next one reads its outputs, so the
 * input projections of all steps are one GEMM (or one row gather for one-hot input) and
 * the weight gradients of all steps are one GEMM each after the backward loop; only the
 * recurrent products run step by step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cell.h"
#include "linalg.h"
#include "mdn.h"
#include "model.h"

/* The cached activations of one layer over T steps. */
typedef struct {
    core_cache main;     /* main cell, n = N */
    core_cache hyp;      /* hyper cell, n = H (hyper cells only) */
    real *U, *V;         /* (T, B, 4N) x·W_x and h_{t-1}·W_h, before scaling (hyper) */
    real *Dx, *Dh;       /* (T, B, 4N) d_x, d_h of eq. 11 (hyper) */
    real *Zx, *Zh, *Zb;  /* (T, B, 4Z) embeddings of eq. 10 (hyper) */
} layer_cache;

struct model_train_ws {
    model_config cfg;
    int32_t B, T;
    layer_cache lc[MODEL_MAX_LAYERS];
    real *mask_main[MODEL_MAX_LAYERS], *mask_hyp[MODEL_MAX_LAYERS]; /* dropout buffers */
    const int32_t *ids;  /* (T, B) borrowed inputs of the last forward, or NULL */
    const real *x;       /* (T, B, I) borrowed dense inputs, or NULL */
    /* backward scratch */
    real *dA;            /* (T, B, 4N) dL/d(main pre-activation) */
    real *dU, *dV;       /* (T, B, 4N) (hyper) */
    real *dHA;           /* (T, B, 4H) dL/d(hyper pre-activation) (hyper) */
    real *dX[2];         /* (T, B, N) gradient into a layer's inputs, ping-pong */
    real *dh, *dc;       /* (B, N) recurrent gradients of the main cell */
    real *dhh, *dhc;     /* (B, H) of the hyper cell */
    real *dZ;            /* (B, 4Z) */
    real *dD;            /* (B, 4N) */
    /* character-model head */
    real *probs;         /* (T, B, O) softmax of the logits */
    const int32_t *targets;
    /* handwriting head: borrowed targets (T, B, 3) and mask (T, B) of the last forward */
    const float *ptargets, *pmask;
    real *block;
    size_t size;
};

/* Lays the workspace out in one block: with base NULL only counts. */
static size_t ws_layout(model_train_ws *ws, real *base)
{
    const model_config *c = &ws->cfg;
    const size_t B = (size_t)ws->B, T = (size_t)ws->T, N = (size_t)c->units;
    const size_t H = (size_t)c->hyper_units, Z = (size_t)c->embed, O = (size_t)c->outputs;
    const int hyper = cell_is_hyper((cell_kind)c->cell), ln = cell_has_ln((cell_kind)c->cell);
    size_t used = 0;
#define TAKE(ptr, count)                                  \
    do {                                                  \
        size_t n_ = (count);                              \
        (ptr) = base ? base + used : NULL;                \
        used += (n_ + 15) & ~(size_t)15; /* 64B aligned */ \
    } while (0)
    for (int l = 0; l < c->layers; l++) {
        layer_cache *lc = &ws->lc[l];
        core_cache *cores[2] = {&lc->main, &lc->hyp};
        for (int k = 0; k < (hyper ? 2 : 1); k++) {
            core_cache *cc = cores[k];
            const size_t n = k == 0 ? N : H;
            cc->n = (int32_t)n;
            cc->batch = ws->B;
            cc->ln = ln;
            TAKE(cc->a, T * B * 4 * n);
            TAKE(cc->gate, T * B * 4 * n);
            TAKE(cc->c, (T + 1) * B * n);
            TAKE(cc->tc, T * B * n);
            TAKE(cc->h, (T + 1) * B * n);
            if (ln) {
                TAKE(cc->ahat, T * B * 4 * n);
                TAKE(cc->amu, T * B * 4);
                TAKE(cc->arstd, T * B * 4);
                TAKE(cc->chat, T * B * n);
                TAKE(cc->cmu, T * B);
                TAKE(cc->crstd, T * B);
            }
            TAKE(*(k == 0 ? &ws->mask_main[l] : &ws->mask_hyp[l]), T * B * n);
        }
        if (hyper) {
            TAKE(lc->U, T * B * 4 * N);
            TAKE(lc->V, T * B * 4 * N);
            TAKE(lc->Dx, T * B * 4 * N);
            TAKE(lc->Dh, T * B * 4 * N);
            TAKE(lc->Zx, T * B * 4 * Z);
            TAKE(lc->Zh, T * B * 4 * Z);
            TAKE(lc->Zb, T * B * 4 * Z);
        }
    }
    TAKE(ws->dA, T * B * 4 * N);
    if (hyper) {
        TAKE(ws->dU, T * B * 4 * N);
        TAKE(ws->dV, T * B * 4 * N);
        TAKE(ws->dHA, T * B * 4 * H);
        TAKE(ws->dhh, B * H);
        TAKE(ws->dhc, B * H);
        TAKE(ws->dZ, B * 4 * Z);
        TAKE(ws->dD, B * 4 * N);
    }
    TAKE(ws->dX[0], T * B * N);
    TAKE(ws->dX[1], T * B * N);
    TAKE(ws->dh, B * N);
    TAKE(ws->dc, B * N);
    TAKE(ws->probs, T * B * O);
#undef TAKE
    return used;
}

size_t model_train_ws_bytes(const model_config *cfg, int32_t batch, int32_t steps)
{
    if (model_config_check(cfg, NULL) != HYPER_OK || batch < 1 || steps < 1)
        return 0;
    model_train_ws ws;
    memset(&ws, 0, sizeof ws);
    ws.cfg = *cfg;
    ws.B = batch;
    ws.T = steps;
    return ws_layout(&ws, NULL) * sizeof(real);
}

model_train_ws *model_train_ws_new(const model_config *cfg, int32_t batch, int32_t steps)
{
    if (model_config_check(cfg, NULL) != HYPER_OK || batch < 1 || steps < 1)
        return NULL;
    model_train_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->cfg = *cfg;
    ws->B = batch;
    ws->T = steps;
    ws->size = ws_layout(ws, NULL);
    ws->block = aligned_alloc(64, ws->size * sizeof(real));
    if (!ws->block) {
        free(ws);
        return NULL;
    }
    memset(ws->block, 0, ws->size * sizeof(real));
    ws_layout(ws, ws->block);
    return ws;
}

void model_train_ws_free(model_train_ws *ws)
{
    if (!ws)
        return;
    free(ws->block);
    free(ws);
}

/* ---- forward ------------------------------------------------------------------------ */

/* Y (B, cols) = beta·Y + X (B, K) · W for a weight W (K, cols) of m: through its packed
 * copy when the model is packed for serving, else through BLAS. */
static void mmw(const model *m, const real *W, int B, int cols, int K, const real *X, int ldx,
                real beta, real *Y, int ldy)
{
    for (int i = 0; i < m->npacks; i++)
        if (m->packs[i].W == W) {
            mm_packed(B, X, ldx, &m->packs[i].pw, beta, Y, ldy);
            return;
        }
    mm(0, 0, B, cols, K, X, ldx, W, cols, beta, Y, ldy);
}

/* out (T·B, width) = input · W for every step at once: a row gather for one-hot ids
 * (an id outside [0, D) reads as a zero input), a GEMM for dense inputs. */
static void input_project(const model *m, const int32_t *ids, const real *x, size_t rows,
                          int D, const real *W, int width, real *out)
{
    if (ids) {
        for (size_t r = 0; r < rows; r++) {
            if (ids[r] >= 0 && ids[r] < D)
                memcpy(out + r * width, W + (size_t)ids[r] * width, width * sizeof(real));
            else
                memset(out + r * width, 0, width * sizeof(real));
        }
    } else {
        mmw(m, W, (int)rows, width, D, x, D, 0, out, width);
    }
}

static void add_bias(real *out, size_t rows, int width, const real *b)
{
    for (size_t r = 0; r < rows; r++)
        for (int k = 0; k < width; k++)
            out[r * width + k] += b[k];
}

static core_params main_core_params(const layer_params *P)
{
    return (core_params){P->ln_g, P->ln_b, P->lnc_g, P->lnc_b};
}

static core_params hyper_core_params(const layer_params *P)
{
    return (core_params){P->hln_g, P->hln_b, P->hlnc_g, P->hlnc_b};
}

/* The hyper cell's step t and the main pre-activation it shapes (eqs. 10-12):
 * ĥ_t from [x_t ; h_{t-1}], then z, then d and b_y, then
 * a_t = d_x ⊙ U_t + d_h ⊙ (h_{t-1}·W_h) + b_y. */
static void hyper_step_forward(const model *m, const layer_params *P, layer_cache *lc, int t)
{
    const model_config *c = &m->cfg;
    const int B = lc->main.batch, N = c->units, H = c->hyper_units, Z = c->embed;
    const size_t tb = (size_t)t * B, N4 = 4 * (size_t)N, Z4 = 4 * (size_t)Z;
    const real *h_prev = lc->main.h + tb * N;
    real *ha = lc->hyp.a + tb * 4 * H;
    /* eq. 10: the hyper LSTM reads x_t (already in ha) and h_{t-1} */
    mmw(m, P->hW_m, B, 4 * H, N, h_prev, N, 1, ha, 4 * H);
    mmw(m, P->hW_h, B, 4 * H, H, lc->hyp.h + tb * H, H, 1, ha, 4 * H);
    core_params hp = hyper_core_params(P);
    core_forward(&lc->hyp, t, &hp);
    const real *hh = lc->hyp.h + (tb + B) * H;
    /* eq. 10: z_x = W ĥ + b, z_h = W ĥ + b, z_b = W ĥ */
    real *zx = lc->Zx + tb * Z4, *zh = lc->Zh + tb * Z4, *zb = lc->Zb + tb * Z4;
    for (int b = 0; b < B; b++) {
        memcpy(zx + b * Z4, P->bz_x, Z4 * sizeof(real));
        memcpy(zh + b * Z4, P->bz_h, Z4 * sizeof(real));
    }
    mmw(m, P->Wz_x, B, (int)Z4, H, hh, H, 1, zx, (int)Z4);
    mmw(m, P->Wz_h, B, (int)Z4, H, hh, H, 1, zh, (int)Z4);
    mmw(m, P->Wz_b, B, (int)Z4, H, hh, H, 0, zb, (int)Z4);
    /* eqs. 11-12: d_x, d_h and the bias b_y = W_bz z_b + b_0, gate by gate */
    real *dx = lc->Dx + tb * N4, *dh = lc->Dh + tb * N4, *a = lc->main.a + tb * N4;
    for (int b = 0; b < B; b++)
        memcpy(a + b * N4, P->b, N4 * sizeof(real));
    for (int g = 0; g < 4; g++) {
        const size_t wo = (size_t)g * Z * N;
        mmw(m, P->Wd_x + wo, B, N, Z, zx + g * Z, (int)Z4, 0, dx + g * N, (int)N4);
        mmw(m, P->Wd_h + wo, B, N, Z, zh + g * Z, (int)Z4, 0, dh + g * N, (int)N4);
        mmw(m, P->Wd_b + wo, B, N, Z, zb + g * Z, (int)Z4, 1, a + g * N, (int)N4);
    }
    /* eq. 12 in its memory-efficient form: scale the rows of W h, never build W(z) */
    real *u = lc->U + tb * N4, *v = lc->V + tb * N4;
    mmw(m, P->W_h, B, (int)N4, N, h_prev, N, 0, v, (int)N4);
    for (size_t k = 0; k < (size_t)B * N4; k++)
        a[k] += dx[k] * u[k] + dh[k] * v[k];
}

const real *model_forward_stack(const model *m, model_state *s, model_train_ws *ws,
                                const int32_t *ids, const real *x, const dropout_spec *drop)
{
    const model_config *c = &m->cfg;
    const int B = ws->B, T = ws->T, N = c->units, H = c->hyper_units;
    const size_t rows = (size_t)T * B, N4 = 4 * (size_t)N;
    const int hyper = cell_is_hyper((cell_kind)c->cell);
    const int dropping = drop && drop->keep < 1.0 && drop->rng;
    ws->ids = ids;
    ws->x = x;
    for (int l = 0; l < c->layers; l++) {
        const layer_params *P = &m->p.layer[l];
        layer_cache *lc = &ws->lc[l];
        lc->main.mask = dropping ? ws->mask_main[l] : NULL;
        lc->hyp.mask = dropping && hyper ? ws->mask_hyp[l] : NULL;
        memcpy(lc->main.h, s->h[l], (size_t)B * N * sizeof(real));
        memcpy(lc->main.c, s->c[l], (size_t)B * N * sizeof(real));
        const int32_t *in_ids = l == 0 ? ids : NULL;
        const real *in_x = l == 0 ? x : ws->lc[l - 1].main.h + (size_t)B * N;
        const int D = l == 0 ? (c->inputs > 0 ? c->inputs : c->outputs) : N;
        if (hyper) {
            memcpy(lc->hyp.h, s->hh[l], (size_t)B * H * sizeof(real));
            memcpy(lc->hyp.c, s->hc[l], (size_t)B * H * sizeof(real));
            input_project(m, in_ids, in_x, rows, D, P->W_x, (int)N4, lc->U);
            input_project(m, in_ids, in_x, rows, D, P->hW_x, 4 * H, lc->hyp.a);
            add_bias(lc->hyp.a, rows, 4 * H, P->hb);
        } else {
            input_project(m, in_ids, in_x, rows, D, P->W_x, (int)N4, lc->main.a);
            add_bias(lc->main.a, rows, (int)N4, P->b);
        }
        core_params mp = main_core_params(P);
        for (int t = 0; t < T; t++) {
            if (dropping) {
                core_draw_mask(&lc->hyp, t, drop->keep, drop->rng);
                core_draw_mask(&lc->main, t, drop->keep, drop->rng);
            }
            if (hyper)
                hyper_step_forward(m, P, lc, t);
            else
                mmw(m, P->W_h, B, (int)N4, N, lc->main.h + (size_t)t * B * N, N, 1,
                    lc->main.a + (size_t)t * B * N4, (int)N4);
            core_forward(&lc->main, t, &mp);
        }
        memcpy(s->h[l], lc->main.h + rows * N, (size_t)B * N * sizeof(real));
        memcpy(s->c[l], lc->main.c + rows * N, (size_t)B * N * sizeof(real));
        if (hyper) {
            memcpy(s->hh[l], lc->hyp.h + rows * H, (size_t)B * H * sizeof(real));
            memcpy(s->hc[l], lc->hyp.c + rows * H, (size_t)B * H * sizeof(real));
        }
    }
    return ws->lc[c->layers - 1].main.h + (size_t)B * N;
}

/* ---- backward ----------------------------------------------------------------------- */

static void col_sum_add(const real *x, size_t rows, int width, real *out)
{
    for (size_t r = 0; r < rows; r++)
        for (int k = 0; k < width; k++)
            out[k] += x[r * width + k];
}

/* G_W (D, width) += inputᵀ · d (T·B, width): a row scatter for one-hot inputs. */
static void input_weight_grad(const int32_t *ids, const real *x, size_t rows, int D,
                              const real *d, int width, real *GW)
{
    if (ids) {
        for (size_t r = 0; r < rows; r++)
            if (ids[r] >= 0 && ids[r] < D) {
                real *g = GW + (size_t)ids[r] * width;
                for (int k = 0; k < width; k++)
                    g[k] += d[r * width + k];
            }
    } else {
        mm(1, 0, D, width, (int)rows, x, D, d, width, 1, GW, width);
    }
}

/* Backward of the hyper step t given dA[t] (main pre-activation gradient): fills dU[t],
 * dV[t], dHA[t], adds into the z, d and hyper-cell gradients, and leaves in ws->dhh the
 * gradient flowing to ĥ_{t-1} and in ws->dh the part of dh_{t-1} that passes through the
 * hyper cell and W_h. */
static void hyper_step_backward(const model_config *c, const layer_params *P,
                                layer_params *G, layer_cache *lc, model_train_ws *ws, int t)
{
    const int B = ws->B, N = c->units, H = c->hyper_units, Z = c->embed;
    const size_t tb = (size_t)t * B, N4 = 4 * (size_t)N, Z4 = 4 * (size_t)Z;
    const real *da = ws->dA + tb * N4;
    const real *u = lc->U + tb * N4, *v = lc->V + tb * N4;
    const real *dxs = lc->Dx + tb * N4, *dhs = lc->Dh + tb * N4;
    real *dU = ws->dU + tb * N4, *dV = ws->dV + tb * N4, *dD = ws->dD, *dZ = ws->dZ;
    const real *hh = lc->hyp.h + (tb + B) * H;
    /* a = d_x ⊙ u + d_h ⊙ v + b_y */
    for (size_t k = 0; k < (size_t)B * N4; k++) {
        dU[k] = da[k] * dxs[k];
        dV[k] = da[k] * dhs[k];
    }
    /* three embeddings, each: d = z·W_d per gate, z = ĥ·W_z (+ b_z) */
    const real *zs[3] = {lc->Zx + tb * Z4, lc->Zh + tb * Z4, lc->Zb + tb * Z4};
    const real *Wd[3] = {P->Wd_x, P->Wd_h, P->Wd_b}, *Wz[3] = {P->Wz_x, P->Wz_h, P->Wz_b};
    real *GWd[3] = {G->Wd_x, G->Wd_h, G->Wd_b}, *GWz[3] = {G->Wz_x, G->Wz_h, G->Wz_b};
    real *Gbz[3] = {G->bz_x, G->bz_h, NULL};
    for (int e = 0; e < 3; e++) {
        const real *dd = da; /* dL/d b_y = da */
        if (e < 2) {
            const real *other = e == 0 ? u : v;
            for (size_t k = 0; k < (size_t)B * N4; k++)
                dD[k] = da[k] * other[k];
            dd = dD;
        }
        for (int g = 0; g < 4; g++) {
            const size_t wo = (size_t)g * Z * N;
            mm(1, 0, Z, N, B, zs[e] + g * Z, (int)Z4, dd + g * N, (int)N4, 1, GWd[e] + wo, N);
            mm(0, 1, B, Z, N, dd + g * N, (int)N4, Wd[e] + wo, N, 0, dZ + g * Z, (int)Z4);
        }
        mm(1, 0, H, (int)Z4, B, hh, H, dZ, (int)Z4, 1, GWz[e], (int)Z4);
        if (Gbz[e])
            col_sum_add(dZ, (size_t)B, (int)Z4, Gbz[e]);
        mm(0, 1, B, H, (int)Z4, dZ, (int)Z4, Wz[e], (int)Z4, 1, ws->dhh, H);
    }
    core_params hp = hyper_core_params(P);
    core_grads hg = {G->hln_g, G->hln_b, G->hlnc_g, G->hlnc_b};
    real *dha = ws->dHA + tb * 4 * H;
    core_backward(&lc->hyp, t, &hp, &hg, ws->dhh, ws->dhc, dha);
    mm(0, 1, B, H, 4 * H, dha, 4 * H, P->hW_h, 4 * H, 0, ws->dhh, H);
    mm(0, 1, B, N, (int)N4, dV, (int)N4, P->W_h, (int)N4, 0, ws->dh, N);
    mm(0, 1, B, N, 4 * H, dha, 4 * H, P->hW_m, 4 * H, 1, ws->dh, N);
}

void model_backward_stack(const model *m, model_train_ws *ws, const real *dh_top, real *grad)
{
    const model_config *c = &m->cfg;
    const int B = ws->B, T = ws->T, N = c->units, H = c->hyper_units;
    const size_t rows = (size_t)T * B, N4 = 4 * (size_t)N;
    const int hyper = cell_is_hyper((cell_kind)c->cell);
    model_params Gp;
    model_params_point(c, grad, &Gp);
    const real *dout = dh_top;
    for (int l = c->layers - 1; l >= 0; l--) {
        const layer_params *P = &m->p.layer[l];
        layer_params *G = &Gp.layer[l];
        layer_cache *lc = &ws->lc[l];
        core_params mp = main_core_params(P);
        core_grads mg = {G->ln_g, G->ln_b, G->lnc_g, G->lnc_b};
        memset(ws->dh, 0, (size_t)B * N * sizeof(real));
        memset(ws->dc, 0, (size_t)B * N * sizeof(real));
        if (hyper) {
            memset(ws->dhh, 0, (size_t)B * H * sizeof(real));
            memset(ws->dhc, 0, (size_t)B * H * sizeof(real));
        }
        for (int t = T - 1; t >= 0; t--) {
            const size_t tb = (size_t)t * B;
            for (size_t k = 0; k < (size_t)B * N; k++)
                ws->dh[k] += dout[tb * N + k];
            real *da = ws->dA + tb * N4;
            core_backward(&lc->main, t, &mp, &mg, ws->dh, ws->dc, da);
            if (hyper)
                hyper_step_backward(c, P, G, lc, ws, t);
            else
                mm(0, 1, B, N, (int)N4, da, (int)N4, P->W_h, (int)N4, 0, ws->dh, N);
        }
        /* the weight gradients of all T steps at once */
        const real *h_prev = lc->main.h; /* rows 0..T-1 are h_{t-1} */
        const int32_t *in_ids = l == 0 ? ws->ids : NULL;
        const real *in_x = l == 0 ? ws->x : ws->lc[l - 1].main.h + (size_t)B * N;
        const int D = l == 0 ? (c->inputs > 0 ? c->inputs : c->outputs) : N;
        real *dX = l > 0 ? ws->dX[l & 1] : NULL;
        col_sum_add(ws->dA, rows, (int)N4, G->b);
        if (hyper) {
            mm(1, 0, N, (int)N4, (int)rows, h_prev, N, ws->dV, (int)N4, 1, G->W_h, (int)N4);
            input_weight_grad(in_ids, in_x, rows, D, ws->dU, (int)N4, G->W_x);
            mm(1, 0, H, 4 * H, (int)rows, lc->hyp.h, H, ws->dHA, 4 * H, 1, G->hW_h, 4 * H);
            mm(1, 0, N, 4 * H, (int)rows, h_prev, N, ws->dHA, 4 * H, 1, G->hW_m, 4 * H);
            col_sum_add(ws->dHA, rows, 4 * H, G->hb);
            input_weight_grad(in_ids, in_x, rows, D, ws->dHA, 4 * H, G->hW_x);
            if (dX) {
                mm(0, 1, (int)rows, N, (int)N4, ws->dU, (int)N4, P->W_x, (int)N4, 0, dX, N);
                mm(0, 1, (int)rows, N, 4 * H, ws->dHA, 4 * H, P->hW_x, 4 * H, 1, dX, N);
            }
        } else {
            mm(1, 0, N, (int)N4, (int)rows, h_prev, N, ws->dA, (int)N4, 1, G->W_h, (int)N4);
            input_weight_grad(in_ids, in_x, rows, D, ws->dA, (int)N4, G->W_x);
            if (dX)
                mm(0, 1, (int)rows, N, (int)N4, ws->dA, (int)N4, P->W_x, (int)N4, 0, dX, N);
        }
        dout = dX;
    }
}

/* The output layer's backward, shared by the heads: dz (T·B, O) = dL/d(outputs) gives the
 * gradients of out.W and out.b, and dL/dh_top flows into the stack. */
static void head_backward(const model *m, model_train_ws *ws, const real *dz, real *grad)
{
    const int O = m->cfg.outputs, N = m->cfg.units, L = m->cfg.layers;
    const size_t rows = (size_t)ws->T * ws->B;
    model_params G;
    model_params_point(&m->cfg, grad, &G);
    const real *htop = ws->lc[L - 1].main.h + (size_t)ws->B * N;
    mm(1, 0, N, O, (int)rows, htop, N, dz, O, 1, G.W, O);
    col_sum_add(dz, rows, O, G.b);
    /* dX[L & 1] is never the buffer the top layer writes (it writes dX[(L-1) & 1]) */
    real *dtop = ws->dX[L & 1];
    mm(0, 1, (int)rows, N, O, dz, O, m->p.W, O, 0, dtop, N);
    model_backward_stack(m, ws, dtop, grad);
}

/* ---- the character-model head: linear + softmax cross-entropy ------------------------- */

double model_forward_charlm(const model *m, model_state *s, model_train_ws *ws,
                            const int32_t *ids, const int32_t *targets,
                            const dropout_spec *drop)
{
    const int O = m->cfg.outputs;
    const size_t rows = (size_t)ws->T * ws->B;
    const real *htop = model_forward_stack(m, s, ws, ids, NULL, drop);
    real *p = ws->probs;
    model_logits(m, htop, (int32_t)rows, p);
    ws->targets = targets;
    double loss = 0;
    for (size_t r = 0; r < rows; r++) {
        real *z = p + r * O;
        real mx = z[0];
        double sum = 0;
        for (int k = 1; k < O; k++)
            mx = z[k] > mx ? z[k] : mx;
        for (int k = 0; k < O; k++) {
            z[k] = rexp(z[k] - mx);
            sum += z[k];
        }
        int32_t y = targets[r];
        if (y >= 0 && y < O)
            loss -= log((double)z[y] / sum);
        for (int k = 0; k < O; k++)
            z[k] = (real)(z[k] / sum);
    }
    return loss / (double)rows;
}

void model_backward_charlm(const model *m, model_train_ws *ws, real *grad)
{
    const int O = m->cfg.outputs;
    const size_t rows = (size_t)ws->T * ws->B;
    const real inv = (real)(1.0 / (double)rows);
    real *dz = ws->probs; /* becomes dL/dlogits in place */
    for (size_t r = 0; r < rows; r++) {
        int32_t y = ws->targets[r];
        for (int k = 0; k < O; k++)
            dz[r * O + k] *= inv;
        if (y >= 0 && y < O)
            dz[r * O + y] -= inv;
        else
            memset(dz + r * O, 0, (size_t)O * sizeof(real));
    }
    head_backward(m, ws, dz, grad);
}

/* ---- the handwriting head: linear + mixture density (mdn.h) ------------------------- */

double model_forward_strokes(const model *m, model_state *s, model_train_ws *ws, const real *x,
                             const float *targets, const float *mask, const dropout_spec *drop,
                             double *stream_loss)
{
    const int O = m->cfg.outputs, B = ws->B, M = mdn_mixtures(O);
    const size_t rows = (size_t)ws->T * B;
    const real *htop = model_forward_stack(m, s, ws, NULL, x, drop);
    real *y = ws->probs;
    model_logits(m, htop, (int32_t)rows, y);
    ws->ptargets = targets;
    ws->pmask = mask;
    double loss = 0;
    for (size_t r = 0; r < rows; r++)
        if (mask[r] > 0) {
            const double l = mdn_loss(y + r * O, M, targets + 3 * r, NULL, 0);
            loss += l;
            if (stream_loss)
                stream_loss[r % (size_t)B] += l;
        }
    return loss;
}

void model_backward_strokes(const model *m, model_train_ws *ws, real *grad, real scale)
{
    const int O = m->cfg.outputs, M = mdn_mixtures(O);
    const size_t rows = (size_t)ws->T * ws->B;
    real *y = ws->probs; /* becomes dL/dy in place */
    for (size_t r = 0; r < rows; r++) {
        if (ws->pmask[r] > 0)
            mdn_loss(y + r * O, M, ws->ptargets + 3 * r, y + r * O, scale);
        else
            memset(y + r * O, 0, (size_t)O * sizeof(real));
    }
    head_backward(m, ws, y, grad);
}

/* ---- inference: one step ------------------------------------------------------------- */

struct model_step_ws {
    model_train_ws *tw;
    int32_t capacity;
};

model_step_ws *model_step_ws_new(const model_config *cfg, int32_t batch)
{
    model_step_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->tw = model_train_ws_new(cfg, batch, 1);
    if (!ws->tw) {
        free(ws);
        return NULL;
    }
    ws->capacity = batch;
    return ws;
}

void model_step_ws_free(model_step_ws *ws)
{
    if (!ws)
        return;
    model_train_ws_free(ws->tw);
    free(ws);
}

/* With T = 1 every buffer's rows start at 0 whatever B is, so a workspace laid out for
 * `capacity` streams serves any smaller batch once B is set consistently everywhere. */
static void ws_set_batch(model_train_ws *ws, int32_t B)
{
    ws->B = B;
    for (int l = 0; l < ws->cfg.layers; l++) {
        ws->lc[l].main.batch = B;
        ws->lc[l].hyp.batch = B;
    }
}

void model_logits(const model *m, const real *h_top, int32_t batch, real *out)
{
    const int O = m->cfg.outputs, N = m->cfg.units;
    for (int b = 0; b < batch; b++)
        memcpy(out + (size_t)b * O, m->p.b, (size_t)O * sizeof(real));
    mmw(m, m->p.W, batch, O, N, h_top, N, 1, out, O);
}

void model_step(const model *m, model_state *s, model_step_ws *ws, int32_t batch,
                const int32_t *ids, const real *x, real *out)
{
    if (batch < 1 || batch > ws->capacity || batch > s->batch)
        return;
    ws_set_batch(ws->tw, batch);
    const real *htop = model_forward_stack(m, s, ws->tw, ids, x, NULL);
    model_logits(m, htop, batch, out);
}

/* ---- what the hypernetwork does (paper Fig. 4) ---------------------------------------- */

int model_hyper_activity(const model *m, int layer, const real *hh_before, const real *hh_after,
                         real out[4])
{
    const model_config *c = &m->cfg;
    if (!cell_is_hyper((cell_kind)c->cell) || layer < 0 || layer >= c->layers)
        return -1;
    const layer_params *P = &m->p.layer[layer];
    const int H = c->hyper_units, Z = c->embed, N = c->units, Z4 = 4 * Z;
    /* z_h = ĥ·Wz_h + bz_h is affine in ĥ, so the change of z_h is (ĥ' − ĥ)·Wz_h: the bias
     * cancels.  Sums in double: the changes can be small beside the values. */
    double dz[4 * MODEL_MAX_EMBED];
    for (int j = 0; j < Z4; j++)
        dz[j] = 0;
    for (int k = 0; k < H; k++) {
        const double dhk = (double)hh_after[k] - (double)hh_before[k];
        if (dhk == 0)
            continue;
        const real *w = P->Wz_h + (size_t)k * Z4;
        for (int j = 0; j < Z4; j++)
            dz[j] += dhk * w[j];
    }
    /* Δd_h of gate g = Δz_h[g] · Wd_h[g] (Z, N); its Euclidean norm over the N units */
    for (int g = 0; g < 4; g++) {
        const real *W = P->Wd_h + (size_t)g * Z * N;
        double sq = 0;
        for (int n = 0; n < N; n++) {
            double d = 0;
            for (int z = 0; z < Z; z++)
                d += dz[g * Z + z] * W[(size_t)z * N + n];
            sq += d * d;
        }
        out[g] = (real)sqrt(sq);
    }
    return 0;
}

const real *model_train_ws_dh(const model_train_ws *ws, int layer)
{
    if (!cell_is_hyper((cell_kind)ws->cfg.cell) || layer < 0 || layer >= ws->cfg.layers)
        return NULL;
    return ws->lc[layer].Dh;
}
