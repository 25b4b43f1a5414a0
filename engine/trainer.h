/*
 * trainer.h — truncated BPTT with Adam and global-norm clipping over B parallel streams,
 * for character models (each stream a contiguous slice of the training text; evaluated in
 * bits per character) and handwriting models (each stream one line of strokes at a time;
 * evaluated in mean negative log-likelihood per line, nats, the paper's measure).
 *
 * One code path serves the `hyper train` command and (later) the daemon's training jobs:
 * the caller owns the loop's rhythm through trainer_step and the progress callback.
 */
#ifndef HYPER_TRAINER_H
#define HYPER_TRAINER_H

#include <stdatomic.h>

#include "common.h"
#include "checkpoint.h"
#include "classifier.h"
#include "images.h"
#include "model.h"
#include "strokes.h"
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
    int64_t eval_limit;   /* validation characters (text) or lines (strokes) per run, 0 = all */
} train_params;

/* Defaults: B 32, T 100, lr 2e-3, clip 1, keep 1, 1000 steps, seed 1, eval every 100,
 * checkpoint every 500, all validation characters. */
void train_params_default(train_params *tp);
/* What suits the classifiers (trainer_new_classifier): B 64, lr 1e-3, no clip, 2000 steps,
 * a test run every 250 steps; the rest as train_params_default. */
void train_params_default_classifier(train_params *tp);
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


/* A stroke dataset ready for training: its lines (with fewer than two points and outlier
 * lines removed), a fixed split, and the normalisation statistics of the training lines. */
typedef struct {
    stroke_set set;       /* owned */
    int32_t n_train;      /* lines [0, n_train) train, the rest validation */
    stroke_stats stats;
    int32_t dropped;      /* lines removed as too short or outliers */
} stroke_corpus;

/* A move beyond this many standard deviations marks a line as an outlier (strokes.h). */
#define STROKES_OUTLIER_LIMIT 40.0

/* Loads a spec of strokes_load ("synthetic:N", an IAM directory or file, a .json file),
 * cleans it and splits off the last val_fraction of its lines. */
hyper_status stroke_corpus_load(stroke_corpus *c, const char *spec, double val_fraction, char *err);
/* The same from lines already loaded (taken: *lines is left empty, also on failure); name
 * is used in messages. */
hyper_status stroke_corpus_prepare(stroke_corpus *c, stroke_set *lines, double val_fraction,
                                   const char *name, char *err);
void stroke_corpus_free(stroke_corpus *c);

/* Normalises one raw offset point (dx, dy, eos), scaled by `scale` first, into model input. */
void strokes_normalise(const stroke_stats *st, const float *raw, double scale, real *x);
/* Reads a handwriting model's normalisation back from its checkpoint metadata. */
hyper_status strokes_stats_from_meta(const checkpoint *ck, stroke_stats *st, char *err);

/* Mean negative log-likelihood per line (nats; lower is better) of lines[0..n) under a
 * handwriting model, each line from a zero state, `streams` lines side by side, `seq`
 * steps per forward pass.  *points (may be NULL) receives how many points were predicted. */
hyper_status model_eval_strokes(const model *m, const stroke_stats *st, const stroke_line *lines,
                                int32_t n, int32_t streams, int32_t seq, double *loss,
                                size_t *points, char *err);

/* What a run trains on: exactly one of the three is set. */
typedef struct {
    const corpus *text;             /* character model */
    const stroke_corpus *strokes;   /* handwriting model */
    const image_set *images;        /* classifier (classifier.h): trains on [0, n_train), tests
                                     * on the rest */
} train_data;

/* Bits per character of ids[0..n) under m: the text is cut into `streams` contiguous slices
 * run side by side from a zero state, T = seq steps at a time; every character after the
 * first of its slice is predicted once.  *count (may be NULL) receives how many were. */
hyper_status model_eval_bpc(const model *m, const int32_t *ids, size_t n, int32_t streams,
                            int32_t seq, double *bpc, size_t *count, char *err);

typedef struct {
    int64_t step, steps;  /* done, total */
    int strokes;          /* 1 for a handwriting run: the units below change */
    int images;           /* 1 for a classifier run: train_loss is nats per image and
                           * val_loss the test error (a fraction) */
    double train_loss;    /* mean training loss since the last report: bits per character,
                           * or nats per point */
    double val_loss;      /* the latest validation: bits per character, or mean nats per
                           * line; NaN before the first */
    double items_per_sec; /* training characters or points per second since the last report */
    double elapsed;       /* seconds since this run started */
    double eta;           /* seconds to the end at the current rate */
    int evaluated;        /* 1 when this report carries a new validation figure */
    int checkpointed;     /* 1 when a checkpoint was written at this step */
} train_progress;

/* A training run: model, optimizer state, data cursor and carried recurrent state. */
typedef struct trainer trainer;

/* Starts a fresh run of cfg on the data (borrowed; must outlive the trainer).  A character
 * model needs inputs 0 and outputs = the corpus vocabulary; a handwriting model inputs 3
 * and outputs 1 + 6M (mdn.h). */
hyper_status trainer_new(trainer **out, const model_config *cfg, const train_params *tp,
                         const train_data *data, char *err);
/* Starts a fresh classifier run (data->images) of cfg: weights from clf_init, B images per
 * step drawn at random with a random shift of up to ±2 pixels (the paper's crop of a padded
 * image), no dropout (tp->keep must be 1; tp->seq is not used).  Validation is the error on
 * the test images. */
hyper_status trainer_new_classifier(trainer **out, const clf_config *cfg, const train_params *tp,
                                    const train_data *data, char *err);
/* Resumes the run saved in a training checkpoint (trainer_save_checkpoint): weights, Adam
 * moments, step, RNG, data cursor and recurrent state, so that it continues exactly as if
 * it had not stopped.  tp->steps may be larger than before; every other parameter and
 * the corpus must match what the checkpoint recorded, or HYPER_ERR_ARG says which.  A
 * classifier checkpoint resumes a classifier run (data->images); the architecture comes
 * from the checkpoint. */
hyper_status trainer_resume(trainer **out, const char *path, const train_params *tp,
                            const train_data *data, char *err);
void trainer_free(trainer *t);

/* One optimizer step; returns the segment's mean loss in nats. */
double trainer_step(trainer *t);
/* Validation bpc (text), mean log-loss per line (strokes) or test error (images) now. */
double trainer_eval(trainer *t);
int64_t trainer_steps_done(const trainer *t);
const model *trainer_model(const trainer *t);          /* NULL for classifier runs */
const classifier *trainer_classifier(const trainer *t); /* NULL for other runs */

/* Writes the full training state (model + optim.* + train.*) to path, atomically. */
hyper_status trainer_save_checkpoint(const trainer *t, const char *path, char *err);
/* Writes the model alone (with training summary metadata) to path, atomically. */
hyper_status trainer_save_model(const trainer *t, const char *path, char *err);

/* Called at each report; a non-zero return stops the run with HYPER_ERR_CANCELLED. */
typedef int (*train_report_fn)(const train_progress *p, void *user);

/* trainer_run checks *flag before every step and stops with HYPER_ERR_CANCELLED once it is
 * non-zero (NULL = never): another thread's way to stop a run at once. */
void trainer_set_stop_flag(trainer *t, const atomic_int *flag);

/* Starts the run from another model's weights (fine-tuning): src must have the same config
 * as the run's model.  HYPER_ERR_ARG names what differs. */
hyper_status trainer_set_weights(trainer *t, const model *src, char *err);

/* Runs to tp->steps: reports every report_every steps (and after every validation and
 * every checkpoint),
 * validates every eval_every steps and at the end, writes ckpt_path (may be NULL) every
 * checkpoint_every steps and at the end. */
hyper_status trainer_run(trainer *t, int32_t report_every, train_report_fn report,
                         void *user, const char *ckpt_path, char *err);

#endif
