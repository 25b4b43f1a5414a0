/*
 * fuzz_checkpoint.c — the safetensors loader (engine/checkpoint.c) the way the registry
 * uses it on a models directory or a job's published model: open the file, take it as a
 * classifier or check and load it as a recurrent model, read its strokes statistics.  The
 * loader maps a path, so each input is written to a scratch file first.
 */
#include "fuzz.h"

#include "checkpoint.h"
#include "classifier.h"
#include "handwriting.h"
#include "images.h"
#include "trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("input.safetensors", data, size);
    char err[HYPER_ERRMSG_MAX];
    checkpoint *ck = NULL;
    if (checkpoint_open_tensors(path, &ck, err) != HYPER_OK)
        return 0;
    if (clf_is_classifier_file(ck)) {
        classifier c;
        if (clf_load(ck, &c, err) == HYPER_OK) {
            if (clf_freeze(&c, err) == HYPER_OK) {
                /* one classification, so a loaded net is also run */
                clf_ws *ws = clf_ws_new_inference(&c, 1);
                if (ws) {
                    float pixels[IMG_PIXELS] = {0};
                    real probs[CLF_CLASSES];
                    clf_classify(&c, ws, pixels, probs);
                    clf_ws_free(ws);
                }
            }
            clf_free(&c);
        }
        checkpoint_close(ck);
        return 0;
    }
    if (checkpoint_check_model(ck, err) == HYPER_OK) {
        model m;
        vocab v;
        if (checkpoint_load_model(ck, &m, &v, err) == HYPER_OK) {
            if (hw_model_ok(&m.cfg)) {
                stroke_stats st;
                strokes_stats_from_meta(ck, &st, err);
            }
            (void)checkpoint_meta(ck, "kind");
            model_free(&m);
            vocab_free(&v);
        }
    }
    checkpoint_close(ck);
    return 0;
}
