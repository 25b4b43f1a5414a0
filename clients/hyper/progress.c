/*
 * progress.c — how hyper train reports and ends, whatever it trains (hyper.c's character
 * and handwriting models, classify.c's classifiers): the progress line, and the run to the
 * last step with the model written.
 */
#include "progress.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "opts.h"

hyper_status train_to_end(trainer *t, int32_t report_every, const char *out, const char *ckpt, char *err)
{
    report_ctx rc = {isatty(STDOUT_FILENO)};
    hyper_status st = trainer_run(t, report_every, report_progress, &rc, ckpt, err);
    if (st == HYPER_OK)
        st = trainer_save_model(t, out, err);
    if (st == HYPER_OK)
        printf("wrote %s (training state in %s)\n", out, ckpt);
    trainer_free(t);
    return st;
}

int report_progress(const train_progress *p, void *user)
{
    const report_ctx *rc = user;
    char eta[32], val[32];
    fmt_duration(p->eta, eta, sizeof eta);
    /* text in bits per character; strokes in nats per point, validated per line; images in
     * nats per image, validated by the test error */
    const char *unit = p->images ? "nats/image" : p->strokes ? "nats/point" : "bpc";
    const char *vunit = p->images ? "% test error" : p->strokes ? "nats/line" : "bpc";
    const char *items = p->images ? "images/s" : p->strokes ? "points/s" : "chars/s";
    if (isnan(p->val_loss))
        snprintf(val, sizeof val, "-");
    else if (p->images)
        snprintf(val, sizeof val, "%.2f", 100 * p->val_loss);
    else
        snprintf(val, sizeof val, p->strokes ? "%.1f" : "%.4f", p->val_loss);
    if (rc->tty) {
        const int width = 30;
        int filled = (int)((double)p->step / (double)p->steps * width);
        char bar[64];
        for (int k = 0; k < width; k++)
            bar[k] = k < filled ? '#' : '.';
        bar[width] = 0;
        printf("\r[%s] %" PRId64 "/%" PRId64 " loss %.4f %s  val %s %s  %.0f %s  ETA %s  ",
               bar, p->step, p->steps, p->train_loss, unit, val, vunit, p->items_per_sec, items, eta);
        if (p->step == p->steps)
            printf("\n");
    } else {
        printf("step %" PRId64 "/%" PRId64 "  loss %.4f %s  val %s %s  %.0f %s  ETA %s\n",
               p->step, p->steps, p->train_loss, unit, val, vunit, p->items_per_sec, items, eta);
    }
    fflush(stdout);
    return 0;
}
