/*
 * checkpoint.h — models on disk in the safetensors format, so PyTorch and Hugging Face
 * tools can open them:
 *
 *   [8 bytes]  N, the header length, unsigned little-endian
 *   [N bytes]  a JSON object, padded with spaces so the data starts 8-byte aligned:
 *                "__metadata__": {string: string, ...}    config, vocabulary, training state
 *                "<tensor name>": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}
 *   [...]      raw little-endian tensor data; offsets are relative to the end of the header
 *
 * Tensor names are those of model_param_table (layers.{l}.W_h, out.W, ...); a training
 * checkpoint adds optim.* and train.* tensors.  Every tensor name, shape and metadata key
 * is listed in docs/checkpoint-format.md.  Files are read with mmap and written atomically
 * (temporary file in the same directory, fsync, rename).
 */
#ifndef HYPER_CHECKPOINT_H
#define HYPER_CHECKPOINT_H

#include "common.h"
#include "model.h"
#include "vocab.h"

/* Largest header accepted when reading (a model's header is a few KiB). */
#define CHECKPOINT_MAX_HEADER (16u << 20)
#define CHECKPOINT_MAX_META 64
#define CHECKPOINT_MAX_EXTRA 16

/* One metadata entry (both strings borrowed). */
typedef struct {
    const char *key;
    const char *value;
} ckpt_kv;

/* A tensor saved beside the model's parameters (data borrowed; written as F32). */
typedef struct {
    const char *name;
    int32_t ndim;
    int64_t shape[PARAM_MAX_DIMS];
    const real *data;    /* (product of shape) */
} ckpt_tensor;

/* Writes m's config and weights, the vocabulary (v may be NULL for dense-input models),
 * extra metadata entries and extra tensors to path, atomically.  Metadata keys that the
 * checkpoint itself writes (format, config, vocab) may not be given again. */
hyper_status checkpoint_save(const char *path, const model *m, const vocab *v,
                             const ckpt_kv *meta, int nmeta,
                             const ckpt_tensor *extra, int nextra, char *err);

/* An open checkpoint: the mapped file and its parsed header. */
typedef struct checkpoint checkpoint;

/* Maps and validates a file: header length and JSON, every dtype F32, every shape and
 * offset range inside the file, no overlapping tensors, the model config in the metadata
 * valid and every parameter tensor present with the shape the config implies.  On failure
 * *out is NULL and err says what is wrong with which tensor or key. */
hyper_status checkpoint_open(const char *path, checkpoint **out, char *err);
void checkpoint_close(checkpoint *ck);

/* The config the file describes. */
const model_config *checkpoint_config(const checkpoint *ck);
/* The path it was opened from (borrowed, valid until close). */
const char *checkpoint_path(const checkpoint *ck);
/* A metadata value (borrowed, valid until close) or NULL. */
const char *checkpoint_meta(const checkpoint *ck, const char *key);

/* Creates *m from the file (config + weights; m is model_create'd here) and, when v is not
 * NULL and the file has a vocabulary, *v.  Errors leave nothing allocated. */
hyper_status checkpoint_load_model(const checkpoint *ck, model *m, vocab *v, char *err);

/* Copies an extra tensor into dst (size reals); HYPER_ERR_FORMAT when it is missing or its
 * size differs. */
hyper_status checkpoint_read_tensor(const checkpoint *ck, const char *name, real *dst,
                                    size_t size, char *err);
/* Every tensor of a parameter table is in the file with exactly its shape; else
 * HYPER_ERR_FORMAT naming the first that is missing or differs. */
hyper_status checkpoint_check_tensors(const checkpoint *ck, const param_info *table, int n, char *err);
/* 1 when the file holds a tensor of that name. */
int checkpoint_has_tensor(const checkpoint *ck, const char *name);

/* ---- files of other models (classifier.h) ------------------------------------------------
 * The same format without an LSTM config: the format keys, the caller's metadata and
 * tensors (at most CHECKPOINT_MAX_TENSORS).  Opening checks the file (header, offsets,
 * metadata strings, format) but no model config; checkpoint_meta and
 * checkpoint_read_tensor read it, and checkpoint_config gives an all-zero config. */
#define CHECKPOINT_MAX_TENSORS 64
hyper_status checkpoint_save_tensors(const char *path, const ckpt_kv *meta, int nmeta,
                                     const ckpt_tensor *tensors, int ntensors, char *err);
hyper_status checkpoint_open_tensors(const char *path, checkpoint **out, char *err);
/* What checkpoint_open checks beyond checkpoint_open_tensors, on a file opened that way: the
 * LSTM config, every parameter tensor and the vocabulary.  After HYPER_OK the checkpoint is
 * as checkpoint_open returns it, so one open serves a file of either kind. */
hyper_status checkpoint_check_model(checkpoint *ck, char *err);

/* Convenience: open, load model and vocab, close. */
hyper_status checkpoint_load(const char *path, model *m, vocab *v, char *err);

#endif
