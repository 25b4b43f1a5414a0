/*
 * jobs.h — background training jobs: a spec checked before it is queued, a FIFO queue,
 * worker threads that run the trainer (trainer.h, the same code path as `hyper train`),
 * a progress history per job that watchers can wait on, cancellation, and records on disk
 * so that every job survives a restart — graceful or kill -9 — and a job that was running
 * resumes from its last checkpoint.
 *
 * On disk, under the jobs directory, one directory per job:
 *   ID/job.json        spec, state, times, error, checkpoint step and CRC-32 (atomic writes)
 *   ID/history.jsonl   one progress report per line, appended as they happen
 *   ID/model.train     the training checkpoint (trainer_save_checkpoint, atomic)
 * and a finished job's model goes to MODELS_DIR/NAME.safetensors, where the daemon loads
 * models from at start, so it stays served after a restart.
 */
#ifndef HYPER_JOBS_H
#define HYPER_JOBS_H

#include <jansson.h>
#include <pthread.h>

#include "common.h"
#include "model.h"
#include "trainer.h"

#define JOB_ID_LEN 16            /* hex characters */
#define JOB_NAME_MAX 64          /* dataset and model names (as registry.h's) */
#define JOBS_MAX 10000           /* records kept; beyond it submissions are refused */
#define JOBS_MAX_WORKERS 16
#define JOB_MAX_STEPS 10000000
#define JOB_MAX_UNITS 2048       /* sizes a job may ask for (the engine allows more) */
#define JOB_MAX_HYPER_UNITS 512
#define JOB_MAX_EMBED 64
#define JOB_MAX_LAYERS 4
#define JOB_MAX_BATCH 256
#define JOB_MAX_SEQ 1000
#define JOB_MAX_TRAIN_BYTES ((size_t)4 << 30) /* memory a run may take: workspace + 4 × weights */
#define JOB_VOCAB_ESTIMATE 256   /* a character model's outputs, for that check at submission */

typedef enum { JOB_QUEUED = 0, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED } job_state;
const char *job_state_str(job_state s);
int job_state_finished(job_state s);

typedef enum { JOB_CHARLM = 0, JOB_HANDWRITING, JOB_CLASSIFIER } job_kind;
const char *job_kind_str(job_kind k);

/* What to train.  model.inputs/outputs are derived (vocabulary or 1 + 6 mixtures). */
typedef struct {
    job_kind kind;
    char dataset[JOB_NAME_MAX];
    char model_name[JOB_NAME_MAX];
    model_config model;          /* cell, layers, units, hyper_units, embed */
    int32_t mixtures;            /* handwriting: M (20) */
    clf_config classifier;       /* classifier: the net (classifier.h; default hyperconv) */
    train_params train;          /* steps (or 0 with epochs), batch, seq, lr, clip, keep, seed,
                                  * eval_every, checkpoint_every, eval_limit */
    double epochs;               /* > 0: steps are computed from the data when the job starts */
    double val_fraction;         /* (0.05) */
    char init_from[JOB_NAME_MAX];/* "" or a served model whose weights start the run */
} job_spec;

/* A spec with the defaults filled in: charlm, lnhyperlstm 1 × 256 (H 64, Z 4), 20
 * mixtures, train_params_default with 1000 steps, validation 5%. */
void job_spec_default(job_spec *s);

/* One progress report. */
typedef struct {
    int64_t step, steps;
    double train_loss;           /* bits per char, or nats per point */
    double val_loss;             /* bits per char, or nats per line; NaN = none yet */
    double items_per_sec;
    double elapsed, eta;         /* seconds */
    int evaluated;               /* carries a new validation figure */
    int64_t time_ms;             /* wall clock */
} job_point;

/* A consistent copy of a job's record (no history). */
typedef struct {
    char id[JOB_ID_LEN + 1];
    job_spec spec;
    job_state state;
    int64_t created_ms, started_ms, finished_ms; /* 0 = not yet */
    int64_t seq;                 /* submission order */
    int64_t step, steps;         /* done / total (steps 0 until it starts when epochs set) */
    double train_loss, val_loss, items_per_sec, elapsed, eta;
    int64_t checkpoint_step;     /* -1 = none */
    int resumes;                 /* times it was resumed after a restart */
    int cancel_requested;
    char error[HYPER_ERRMSG_MAX];
    size_t history;              /* progress reports so far */
} job_info;

/* The spec as JSON, as the API takes it and job records store it:
 *   {"kind": "charlm"|"handwriting"|"classifier", "dataset", "model_name", "init_from" (optional),
 *    "model": {"cell", "layers", "units", "hyper_units", "embed", "keep", "mixtures"},
 *             or for a classifier {"arch", "hidden", "channels", "kernel", "embed",
 *             "gen_hidden", "tile_rows", "tile_cols", "wnorm"},
 *    "train": {"steps" | "epochs", "batch", "seq", "lr", "clip", "seed", "eval_every",
 *              "checkpoint_every", "eval_limit", "val_fraction"}}
 * Missing fields take job_spec_default's values; unknown fields, wrong types and values out
 * of range are refused with HYPER_ERR_ARG and err naming the field ("train.batch: ...").
 * A fine-tune (init_from) takes the starting model's shape; "model" sizes are then unused.
 * A classifier job trains on an images dataset (mnist) with batch 64, lr 0.001, no clip
 * unless told otherwise; seq is not used, init_from is refused, and its progress reports
 * nats per image (train_loss) and the test error as a fraction (val_loss). */
hyper_status job_spec_from_json(const json_t *j, job_spec *out, char *err);
json_t *job_spec_to_json(const job_spec *s);        /* new reference */
json_t *job_point_to_json(const job_point *p);      /* new reference */

/* What the runner needs from its host (the daemon). */
typedef struct {
    /* Loads the data of a dataset (text or strokes by kind); see datasets.h. */
    hyper_status (*load_text)(void *user, const char *dataset, const vocab *voc, double val_fraction,
                              corpus *out, char *err);
    hyper_status (*load_strokes)(void *user, const char *dataset, double val_fraction,
                                 stroke_corpus *out, char *err);
    hyper_status (*load_images)(void *user, const char *dataset, image_set *out, char *err);
    /* Checks at submission that the dataset exists and holds kind's data (text for charlm,
     * strokes for handwriting); HYPER_ERR_NOT_FOUND / HYPER_ERR_ARG with err. */
    hyper_status (*check_dataset)(void *user, const char *dataset, job_kind kind, char *err);
    /* Pins a dataset (acquire = 1; delete and appends refuse it) from a job's submission to
     * its end, and unpins it (acquire = 0).  Pinning a dataset that is gone fails. */
    hyper_status (*acquire_dataset)(void *user, const char *dataset, int acquire);
    /* 1 when a model of that name is served or being made. */
    int (*model_exists)(void *user, const char *name);
    /* The file of a served model (for init_from), or NULL. */
    const char *(*model_path)(void *user, const char *name, char *buf, size_t n);
    /* Serves a finished model from its file; HYPER_OK or an error the job records. */
    hyper_status (*publish_model)(void *user, const char *path, char *err);
    void *user;
} job_host;

typedef struct job_runner job_runner;

/* Opens the jobs directory (created if missing), reads every record back (running and
 * queued jobs are queued again, in submission order; a running one resumes from its
 * checkpoint), and starts `workers` threads.  train_threads is the BLAS thread budget of
 * training (math_set_threads).  Finished models go to models_dir. */
hyper_status job_runner_open(job_runner **out, const char *dir, const char *models_dir,
                             int workers, int train_threads, const job_host *host, char *err);
/* Stops the workers: running jobs stop before their next step, write a checkpoint and stay
 * "running" on disk (they resume at the next open).  Frees everything. */
void job_runner_free(job_runner *r);

/* Checks a spec (sizes, names, dataset, model name not taken, init_from compatible) and
 * queues it; *info receives its record.  HYPER_ERR_ARG / NOT_FOUND / CONFLICT with err. */
hyper_status job_submit(job_runner *r, const job_spec *spec, job_info *info, char *err);

/* The record of a job; HYPER_ERR_NOT_FOUND when there is none. */
hyper_status job_get(job_runner *r, const char *id, job_info *out);
/* Ids in submission order from offset (up to max); returns the total. */
size_t job_list(job_runner *r, size_t offset, size_t max, char (*ids)[JOB_ID_LEN + 1]);
/* Copies history points [from, from + max) into out; returns how many were copied; *total
 * (may be NULL) receives the history's length and *state the job's state. */
size_t job_history(job_runner *r, const char *id, size_t from, job_point *out, size_t max,
                   size_t *total, job_state *state);
/* Waits up to timeout_ms for the job's history to grow beyond known points or the job to
 * finish.  Returns 1 when there is something new, 0 on timeout, -1 when there is no job. */
int job_wait(job_runner *r, const char *id, size_t known, int64_t timeout_ms);
/* Cancels a queued or running job (idempotent; a finished job is left as it is). */
hyper_status job_cancel(job_runner *r, const char *id, job_info *out);
/* Removes a finished job and its files; HYPER_ERR_CONFLICT while it is queued or running. */
hyper_status job_delete(job_runner *r, const char *id, char *err);
/* Queued and running counts (for metrics and health). */
void job_counts(job_runner *r, int *queued, int *running);

#endif
