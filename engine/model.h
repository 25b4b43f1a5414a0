/*
 * model.h — a stack of (hyper-)LSTM layers with a linear output head: Config, Weights,
 * State, and the forward/backward passes over a batch of B independent streams.
 *
 * Legend for shapes: B batch, T time, L layers, N units, H hyper units, Z embedding size,
 * D input width of a layer (V for a one-hot first layer, I for a dense first layer, N above),
 * V vocabulary, O outputs.  Activations are row-major (rows = batch items); weights are
 * stored (in, out) so that y = x · W.  Gate blocks are ordered i, g, f, o.
 *
 * The cells (paper §3.2, eqs. 10-13; conventions of hardmaru/supercell):
 *   lstm         a = x·W_x + h·W_h + b
 *   lnlstm       a = LN_gate(x·W_x + h·W_h + b)                        per gate over N
 *   hyperlstm    hyper cell (an lstm of H units) reads [x ; h_{t-1}] → ĥ_t
 *                z_x = ĥ·Wz_x + bz_x, z_h = ĥ·Wz_h + bz_h, z_b = ĥ·Wz_b   (Z per gate)
 *                d_x = z_x·Wd_x, d_h = z_h·Wd_h, b_y = z_b·Wd_b + b      (N per gate)
 *                a = d_x ⊙ (x·W_x) + d_h ⊙ (h·W_h) + b_y                 (eq. 11-12)
 *   lnhyperlstm  the same with LN on the main and hyper cells.
 * then for every cell:
 *   c_t = σ(f + 1) ⊙ c_{t-1} + σ(i) ⊙ drop(tanh g);  h_t = σ(o) ⊙ tanh(LN_c(c_t))
 * (LN_c only with layer norm; LN epsilon 1e-3 with gain and bias.)
 */
#ifndef HYPER_MODEL_H
#define HYPER_MODEL_H

#include "common.h"
#include "kernels.h"

typedef enum {
    CELL_LSTM = 0,
    CELL_LNLSTM,
    CELL_HYPERLSTM,
    CELL_LNHYPERLSTM,
    CELL_COUNT
} cell_kind;

const char *cell_kind_str(cell_kind k);
/* Returns 0 and sets *out for "lstm", "lnlstm", "hyperlstm", "lnhyperlstm"; else -1. */
int cell_kind_parse(const char *s, cell_kind *out);
int cell_is_hyper(cell_kind k);
int cell_has_ln(cell_kind k);

/* Hard limits, checked before anything is allocated. */
#define MODEL_MAX_LAYERS 8
#define MODEL_MAX_UNITS 8192
#define MODEL_MAX_HYPER_UNITS 4096
#define MODEL_MAX_EMBED 512
#define MODEL_MAX_VOCAB 65536
#define MODEL_MAX_INPUTS 4096

/* The blueprint of a model.  inputs == 0 means the first layer reads one-hot characters
 * (width = outputs = vocabulary size); inputs > 0 means a dense input of that width. */
typedef struct {
    int32_t cell;        /* cell_kind */
    int32_t layers;      /* L */
    int32_t units;       /* N */
    int32_t hyper_units; /* H (hyper cells only) */
    int32_t embed;       /* Z (hyper cells only) */
    int32_t inputs;      /* 0 = one-hot over outputs, else dense width I */
    int32_t outputs;     /* V (character models) or O */
} model_config;

/* Checks every field against the limits above; fills err on failure. */
hyper_status model_config_check(const model_config *cfg, char *err);

/* ---- the parameter table ---------------------------------------------------------------
 * Every parameter tensor has a name, a shape, and an offset into one flat block of reals.
 * Weights, gradients and Adam moments are all laid out by this one table. */
#define PARAM_MAX_DIMS 3
#define PARAM_NAME_MAX 48

typedef enum { INIT_ZERO, INIT_ONE, INIT_CONST, INIT_NORMAL, INIT_GLOROT, INIT_ORTHO } init_kind;

typedef struct {
    char name[PARAM_NAME_MAX];  /* e.g. "layers.0.W_h" — the safetensors tensor name */
    int32_t ndim;
    int64_t shape[PARAM_MAX_DIMS];
    size_t offset;              /* in reals, into the flat block */
    size_t size;                /* product of shape */
    init_kind init;             /* how model_init fills it */
    double init_value;          /* INIT_CONST value, INIT_NORMAL stddev, INIT_GLOROT limit */
    size_t slot;                /* byte offset of its real* within model_params */
} param_info;

#define MODEL_MAX_PARAMS (MODEL_MAX_LAYERS * 32 + 4)

/* Pointers carved out of one flat block for one layer (shapes in the comments). */
typedef struct {
    real *W_x;          /* (D, 4N)  input weights W_x^y of eq. 11, gate blocks i g f o */
    real *W_h;          /* (N, 4N)  recurrent weights W_h^y, orthogonal per gate block */
    real *b;            /* (4N)     bias (b_0 of eq. 12 in hyper cells) */
    real *ln_g, *ln_b;  /* (4N)     LN gain and bias of the gate pre-activations */
    real *lnc_g, *lnc_b;/* (N)      LN gain and bias of c before the output tanh */
    /* hyper cell (eq. 10): an LSTM of H units reading [x ; h_{t-1}] */
    real *hW_x;         /* (D, 4H)  reads the layer input x_t */
    real *hW_m;         /* (N, 4H)  reads the main cell's h_{t-1} */
    real *hW_h;         /* (H, 4H)  recurrent, orthogonal per gate block */
    real *hb;           /* (4H) */
    real *hln_g, *hln_b;  /* (4H) */
    real *hlnc_g, *hlnc_b;/* (H) */
    /* embeddings (eq. 10): Z values per gate from ĥ_t */
    real *Wz_x, *bz_x;  /* (H, 4Z), (4Z)  init W 0, b 1 */
    real *Wz_h, *bz_h;  /* (H, 4Z), (4Z)  init W 0, b 1 */
    real *Wz_b;         /* (H, 4Z)        init N(0, 0.01), no bias */
    /* weight scaling vectors and bias (eq. 11-12): per gate a (Z, N) map */
    real *Wd_x;         /* (4, Z, N)  W_xz, init 0.1/Z */
    real *Wd_h;         /* (4, Z, N)  W_hz, init 0.1/Z */
    real *Wd_b;         /* (4, Z, N)  W_bz, init 0 */
} layer_params;

typedef struct {
    real *W;            /* (N, O)  output layer */
    real *b;            /* (O) */
    layer_params layer[MODEL_MAX_LAYERS];
} model_params;

/* The table for a configuration; the total size in reals is returned in *total.
 * cfg must have passed model_config_check. Returns the number of tensors. */
int model_param_table(const model_config *cfg, param_info *table, size_t *total);

/* Total number of parameters (the paper's counts). */
size_t model_param_count(const model_config *cfg);

/* Carves typed pointers out of a flat block laid out by model_param_table. */
void model_params_point(const model_config *cfg, real *block, model_params *p);

/* A weight matrix repacked for inference (kernels.h), found by the pointer it copies. */
typedef struct {
    const real *W;
    packed_w pw;
} weight_pack;

/* A model: config, its parameter table, and one flat block of weights it owns. */
typedef struct {
    model_config cfg;
    int32_t nparams;               /* tensors in table */
    param_info table[MODEL_MAX_PARAMS];
    size_t size;                   /* reals in block */
    real *block;                   /* owned; (size) */
    model_params p;                /* pointers into block */
    weight_pack *packs;            /* owned; NULL until model_pack */
    int32_t npacks;
} model;

/* Allocates a model (weights zeroed).  Returns HYPER_OK or an error with err filled. */
hyper_status model_create(model *m, const model_config *cfg, char *err);
void model_free(model *m);
/* Repacks every weight the forward pass multiplies by (x · W) for the batch-invariant
 * kernel of kernels.h: from then on each row's result is bit-identical whatever the batch
 * (what serving needs), and batch-1 steps stream memory.  The weights must not change
 * afterwards (repack after an update).  Training models stay unpacked and use BLAS.
 * half = 1 stores the packed copies in IEEE half precision where the AVX-512 kernel runs
 * (packed_w_init_f16): half the memory traffic of batch-1 steps, for a rounding of every
 * weight to 11 significant bits. */
hyper_status model_pack(model *m, int half, char *err);
/* Initialises every weight as Appendix A.2.3 / supercell say, from the given seed. */
void model_init(model *m, uint64_t seed);
/* Fills a flat block laid out by any parameter table as each entry's init says (what
 * model_init does for a model's own table; the classifiers use it for theirs). */
void param_table_init(const param_info *table, int n, real *block, uint64_t seed);

/* ---- state ------------------------------------------------------------------------------
 * The recurrent state of B streams: per layer h, c (B, N) and for hyper cells ĥ, ĉ (B, H).
 * Stored as one flat block so sessions can save, copy and batch it cheaply. */
typedef struct {
    int32_t batch;
    size_t size;         /* reals in block */
    real *block;         /* owned */
    real *h[MODEL_MAX_LAYERS], *c[MODEL_MAX_LAYERS];   /* (B, N) */
    real *hh[MODEL_MAX_LAYERS], *hc[MODEL_MAX_LAYERS]; /* (B, H) hyper cell, or NULL */
} model_state;

/* Reals per stream in a state: what a session saves. */
size_t model_state_size(const model_config *cfg);
hyper_status model_state_init(model_state *s, const model_config *cfg, int32_t batch, char *err);
void model_state_free(model_state *s);
void model_state_zero(model_state *s);
/* Copies stream src_b of src into stream dst_b of dst (same config). */
void model_state_copy_stream(const model_config *cfg, model_state *dst, int32_t dst_b,
                             const model_state *src, int32_t src_b);

/* ---- inference ---------------------------------------------------------------------------
 * One step for the first `batch` streams of s: reads input (one-hot ids (batch) or dense
 * (batch, I)), advances their state in place and writes the output layer's values
 * (batch, O) — logits for character models.  batch may be anything up to the capacity the
 * workspace was made for (and s->batch); a larger one is ignored. */
typedef struct model_step_ws model_step_ws;   /* scratch for up to `batch` streams */

model_step_ws *model_step_ws_new(const model_config *cfg, int32_t batch);
void model_step_ws_free(model_step_ws *ws);
void model_step(const model *m, model_state *s, model_step_ws *ws, int32_t batch,
                const int32_t *ids, const real *x, real *out);
/* The output layer alone: out (batch, O) = h_top (batch, N) · W + b.  Applied to the top
 * layer's h of a state, it gives the logits of the next character. */
void model_logits(const model *m, const real *h_top, int32_t batch, real *out);

/* ---- what the hypernetwork does (paper Fig. 4) -------------------------------------------
 * How much the hyper cell changed the main cell's effective recurrent weights in one step:
 * for each gate g (i, g, f, o) the Euclidean norm over the N units of d_h^g(ĥ_after) −
 * d_h^g(ĥ_before), where d_h^g(ĥ) = (ĥ·Wz_h + bz_h)[g] · Wd_h[g] (eqs. 10-11) and ĥ_before,
 * ĥ_after (H) are one stream's hyper state (model_state.hh[layer]) before and after the
 * step.  d_h is a function of ĥ alone, so no other state is needed; a zero state before a
 * stream's first step gives the change from d_h(ĥ = 0).  Reads the unpacked weights (m->p),
 * valid on packed models too (half-precision packing makes the step itself round them).
 * Returns 0 and fills out, or -1 when the cell has no hypernetwork or layer is out of range. */
int model_hyper_activity(const model *m, int layer, const real *hh_before, const real *hh_after,
                         real out[4]);

/* ---- training ----------------------------------------------------------------------------
 * Forward over T steps for B streams with every activation cached, then backward.
 * The forward starts from `s` and leaves the final state in it (truncated BPTT carries
 * it to the next segment; no gradient flows across segments). */
typedef struct model_train_ws model_train_ws;

model_train_ws *model_train_ws_new(const model_config *cfg, int32_t batch, int32_t steps);
/* Bytes such a workspace takes (0 for an invalid config), to refuse what cannot fit. */
size_t model_train_ws_bytes(const model_config *cfg, int32_t batch, int32_t steps);
void model_train_ws_free(model_train_ws *ws);

/* Recurrent dropout keep probability (1 = off) and the RNG that draws the masks. */
typedef struct {
    double keep;
    hyper_rng *rng;
} dropout_spec;

/* Forward pass of a character model over ids (T, B) predicting targets (T, B); returns the
 * mean cross-entropy in nats over the T·B predictions.  drop may be NULL (no dropout). */
double model_forward_charlm(const model *m, model_state *s, model_train_ws *ws,
                            const int32_t *ids, const int32_t *targets,
                            const dropout_spec *drop);
/* Backward pass after model_forward_charlm: adds d(mean loss)/dθ into grad (a flat block
 * laid out like m->block, which the caller zeroes). */
void model_backward_charlm(const model *m, model_train_ws *ws, real *grad);

/* Forward pass of a handwriting model (outputs = 1 + 6M, mdn.h) over normalised inputs x
 * (T, B, I) predicting targets (T, B, 3) = (dx, dy, eos); only rows with mask (T, B) > 0
 * count (padding after a line's end has mask 0).  Returns the summed negative
 * log-likelihood (nats) of the masked points and, when stream_loss is not NULL, adds each
 * stream's share into stream_loss (B).  Inputs, targets and mask are borrowed until the
 * backward pass. */
double model_forward_strokes(const model *m, model_state *s, model_train_ws *ws, const real *x,
                             const float *targets, const float *mask, const dropout_spec *drop,
                             double *stream_loss);
/* Backward after model_forward_strokes: adds scale · d(summed loss)/dθ into grad. */
void model_backward_strokes(const model *m, model_train_ws *ws, real *grad, real scale);

/* The d_h of every step of the last forward (T, B, 4N), gate blocks i g f o, for tests
 * that check model_hyper_activity against the training path.  Borrowed; NULL for cells
 * without a hypernetwork or a layer out of range. */
const real *model_train_ws_dh(const model_train_ws *ws, int layer);

/* Lower-level pair for other heads (handwriting): forward writes the top layer's h for all
 * steps (T, B, N) and backward takes its gradient dh_top (T, B, N). Inputs are ids (T, B) for
 * one-hot models or x (T, B, I) for dense ones. */
const real *model_forward_stack(const model *m, model_state *s, model_train_ws *ws,
                                const int32_t *ids, const real *x, const dropout_spec *drop);
void model_backward_stack(const model *m, model_train_ws *ws, const real *dh_top, real *grad);

#endif
