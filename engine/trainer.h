/*
 * trainer.h — truncated BPTT with Adam and global-norm clipping over B parallel streams,
 * each a contiguous slice of the training text; evaluation in bits per character.
 *
 * One code path serves the `hyper train` command and (later) the daemon's training jobs:
 * the caller owns the loop's rhythm through trainer_step and the progress callback.
 */
#ifndef HYPER_TRAINER_H
#define HYPER_TRAINER_H

#include "common.h"
#include "model.h"
#include "vocab.h"

#define TRAIN_MAX_BATCH 4096
#define TRAIN_MAX_SEQ 4096

typedef struct {
    int32_t batch;        /* B streams */
    int32_t seq;          /* T steps per segment */
    double lr;            /* Adam learning rate */
    double clip;          /* global gradient-norm clip (0 = off) */
    double keep;          /* recurrent dropout keep probability (1 = off) */
    int64_t steps;        /* total optimizer steps */
    uint64_t seed;        /* weights, dropout masks */
    int32_t eval_every;   /* steps between validation runs (0 = only at the end) */
    int32_t checkpoint_every; /* steps between checkpoints (0 = only at the end) */
    int64_t eval_chars;   /* validation characters used per run (0 = all) */
} train_params;

/* Defaults: B 32, T 100, lr 2e-3, clip 1, keep 1, 1000 steps, seed 1, eval every 100,
 * checkpoint every 500, all validation characters. */
void train_params_default(train_params *tp);
hyper_status train_params_check(const train_params *tp, char *err);

/* A text corpus split into training and validation ids (the last val_fraction of the text,
 * cut at a character boundary). */
typedef struct {
    vocab voc;
    int32_t *ids;         /* (n) owned */
    size_t n;
    size_t n_train;       /* ids[0 .. n_train) train, the rest validation */
} corpus;

/* Reads a UTF-8 text file (at most max_bytes), builds its vocabulary when voc_in is NULL
 * (else encodes with voc_in, failing on unknown characters), and splits it. */
hyper_status corpus_load(corpus *c, const char *path, size_t max_bytes, const vocab *voc_in,
                         double val_fraction, char *err);
void corpus_free(corpus *c);

/* Reads a whole file into a NUL-terminated buffer (caller frees). */
hyper_status read_file(const char *path, size_t max_bytes, char **out, size_t *len, char *err);

/* Bits per character of ids[0..n) under m: the text is cut into `streams` contiguous slices
 * run side by side from a zero state, T = seq steps at a time; every character after the
 * first of its slice is predicted once.  *count (may be NULL) receives how many were. */
hyper_status model_eval_bpc(const model *m, const int32_t *ids, size_t n, int32_t streams,
                            int32_t seq, double *bpc, size_t *count, char *err);

typedef struct {
    int64_t step, steps;  /* done, total */
    double train_bpc;     /* mean training loss since the last report, in bits per char */
    double val_bpc;       /* the latest validation bpc, NaN before the first */
    double chars_per_sec; /* training throughput since the last report */
    double elapsed;       /* seconds since this run started */
    double eta;           /* seconds to the end at the current rate */
    int evaluated;        /* 1 when this report carries a new validation figure */
} train_progress;

/* A training run: model, optimizer state, data cursor and carried recurrent state. */
typedef struct trainer trainer;

/* Starts a fresh run of cfg on the corpus (borrowed; must outlive the trainer). */
hyper_status trainer_new(trainer **out, const model_config *cfg, const train_params *tp,
                         const corpus *data, char *err);
/* Resumes the run saved in a training checkpoint (trainer_save_checkpoint): weights, Adam
 * moments, step, RNG, data cursor and recurrent state, so that it continues exactly as if
 * it had not stopped.  tp->steps may be larger than before; every other parameter and
 * the corpus must match what the checkpoint recorded, or HYPER_ERR_ARG says which. */
hyper_status trainer_resume(trainer **out, const char *path, const train_params *tp,
                            const corpus *data, char *err);
void trainer_free(trainer *t);

/* One optimizer step; returns the segment's mean loss in nats. */
double trainer_step(trainer *t);
/* Validation bpc now. */
double trainer_eval(trainer *t);
int64_t trainer_steps_done(const trainer *t);
const model *trainer_model(const trainer *t);

/* Writes the full training state (model + optim.* + train.*) to path, atomically. */
hyper_status trainer_save_checkpoint(const trainer *t, const char *path, char *err);
/* Writes the model alone (with training summary metadata) to path, atomically. */
hyper_status trainer_save_model(const trainer *t, const char *path, char *err);

/* Called at each report; a non-zero return stops the run with HYPER_ERR_CANCELLED. */
typedef int (*train_report_fn)(const train_progress *p, void *user);

/* Runs to tp->steps: reports every report_every steps (and after every validation),
 * validates every eval_every steps and at the end, writes ckpt_path (may be NULL) every
 * checkpoint_every steps and at the end. */
hyper_status trainer_run(trainer *t, int32_t report_every, train_report_fn report,
                         void *user, const char *ckpt_path, char *err);

#endif
