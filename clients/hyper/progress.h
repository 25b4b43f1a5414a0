/*
 * progress.h — the progress line of hyper train and the end every training run shares.
 */
#ifndef HYPER_CLI_PROGRESS_H
#define HYPER_CLI_PROGRESS_H

#include "trainer.h"

typedef struct {
    int tty;
} report_ctx;
/* The progress line of hyper train, shared by every kind of run (a trainer_run callback). */
int report_progress(const train_progress *p, void *user);
/* Runs t to its last step with progress lines, checkpoints in ckpt, writes the model to out
 * and frees t. */
hyper_status train_to_end(trainer *t, int32_t report_every, const char *out, const char *ckpt, char *err);

#endif
