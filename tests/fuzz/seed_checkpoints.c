/*
 * seed_checkpoints.c — writes the checkpoint seeds of tests/fuzz/corpus/checkpoint/: tiny
 * models of each kind the loader takes, written by the engine (so they are valid files
 * the fuzzer mutates from).  Usage: seed_checkpoints DIR (tests/fuzz/seeds.sh says how to
 * build it).
 */
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "classifier.h"
#include "mdn.h"
#include "model.h"
#include "vocab.h"

static int write_model(const char *dir, const char *name, model_config cfg, int handwriting)
{
    static const char text[] = "abc de.";
    char err[HYPER_ERRMSG_MAX], path[512];
    const ckpt_kv meta[] = {{"kind", "handwriting"}, {"strokes.mean_x", "0.5"}, {"strokes.mean_y", "-1"},
                            {"strokes.std_x", "2"}, {"strokes.std_y", "3"}};
    vocab v;
    model m;
    int rc = 1;
    if (vocab_build(&v, text, sizeof text - 1, err) != HYPER_OK)
        goto out_msg;
    if (!handwriting)
        cfg.outputs = v.size;
    if (model_create(&m, &cfg, err) != HYPER_OK)
        goto out_vocab;
    model_init(&m, 1);
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    rc = checkpoint_save(path, &m, handwriting ? NULL : &v, handwriting ? meta : NULL, handwriting ? 5 : 0,
                         NULL, 0, err) != HYPER_OK;
    model_free(&m);
out_vocab:
    vocab_free(&v);
out_msg:
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err);
    return rc;
}

static int write_classifier(const char *dir, const char *name, clf_arch arch, int hidden)
{
    char err[HYPER_ERRMSG_MAX], path[512];
    clf_config cfg;
    clf_config_default(&cfg, arch);
    if (hidden)
        cfg.hidden = hidden;
    classifier c;
    if (clf_config_check(&cfg, err) != HYPER_OK || clf_create(&c, &cfg, err) != HYPER_OK) {
        fprintf(stderr, "%s: %s\n", name, err);
        return 1;
    }
    clf_init(&c, 1);
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    int rc = clf_save(path, &c, NULL, 0, NULL, 0, err) != HYPER_OK;
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err);
    clf_free(&c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seed_checkpoints DIR\n");
        return 2;
    }
    const char *d = argv[1];
    int rc = 0;
    rc |= write_model(d, "hyperlstm", (model_config){CELL_HYPERLSTM, 1, 4, 2, 2, 0, 0}, 0);
    rc |= write_model(d, "lnlstm2", (model_config){CELL_LNLSTM, 2, 3, 0, 0, 0, 0}, 0);
    rc |= write_model(d, "handwriting", (model_config){CELL_LSTM, 1, 3, 0, 0, 3, mdn_outputs(1)}, 1);
    rc |= write_classifier(d, "mlp", CLF_MLP, 2);
    return rc;
}
