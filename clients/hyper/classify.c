/*
 * classify.c — `hyper` for the static-hypernetwork classifiers (classify.h): training on
 * MNIST, parameter counts of an architecture beside its plain twin, information, test
 * error, and classifying PNG files.
 */
#include "classify.h"
#include "progress.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "fsutil.h"
#include "images.h"
#include "linalg.h"
#include "opts.h"

#define MAX_PNG_BYTES ((size_t)16 << 20)

static int fail(const char *what, hyper_status st, const char *err)
{
    fprintf(stderr, "hyper: %s: %s\n", what, err && *err ? err : hyper_status_str(st));
    return 1;
}

int classify_kind_wanted(int argc, char **argv, const char *option, const char *value)
{
    const size_t n = strlen(option);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], option) == 0 && i + 1 < argc && strcmp(argv[i + 1], value) == 0)
            return 1;
        if (strncmp(argv[i], option, n) == 0 && argv[i][n] == '=' && strcmp(argv[i] + n + 1, value) == 0)
            return 1;
    }
    return 0;
}

int classify_is_classifier(const char *path)
{
    checkpoint *ck = NULL;
    if (checkpoint_open_tensors(path, &ck, NULL) != HYPER_OK)
        return 0;
    const int yes = clf_is_classifier_file(ck);
    checkpoint_close(ck);
    return yes;
}

/* The architecture options every classifier command shares; -1 for "not given". */
typedef struct {
    const char *arch;
    clf_config cfg;
} arch_opts;

static void arch_opts_init(arch_opts *a)
{
    a->arch = "hyperconv";
    a->cfg = (clf_config){-1, -1, -1, -1, -1, -1, -1, -1, 0};
}

/* The config the options describe: the architecture's defaults, then what was given. */
static int arch_config(const arch_opts *a, clf_config *out, const char *cmd)
{
    clf_arch arch;
    if (clf_arch_parse(a->arch, &arch) != 0) {
        fprintf(stderr, "hyper %s: --arch: '%s' is not one of mlp, hypermlp, conv, hyperconv\n", cmd, a->arch);
        return -1;
    }
    clf_config_default(out, arch);
    const clf_config *g = &a->cfg;
    out->hidden = g->hidden >= 0 ? g->hidden : out->hidden;
    out->channels = g->channels >= 0 ? g->channels : out->channels;
    out->kernel = g->kernel >= 0 ? g->kernel : out->kernel;
    out->embed = g->embed >= 0 ? g->embed : out->embed;
    /* d follows Z unless given */
    out->gen_hidden = g->gen_hidden >= 0 ? g->gen_hidden : (g->embed >= 0 ? g->embed : out->gen_hidden);
    out->tile_rows = g->tile_rows >= 0 ? g->tile_rows : out->tile_rows;
    out->tile_cols = g->tile_cols >= 0 ? g->tile_cols : out->tile_cols;
    out->wnorm = g->wnorm;
    char err[HYPER_ERRMSG_MAX];
    if (clf_config_check(out, err) != HYPER_OK) {
        fprintf(stderr, "hyper %s: %s\n", cmd, err);
        return -1;
    }
    return 0;
}

#define ARCH_OPTS(a)                                                                                   \
    {"--arch", NULL, OPT_STR, &(a).arch, "mlp | hypermlp | conv | hyperconv (hyperconv)"},             \
    {"--hidden", NULL, OPT_INT, &(a).cfg.hidden, "mlp: hidden units (80)"},                           \
    {"--channels", NULL, OPT_INT, &(a).cfg.channels, "conv: channels of both convolutions (16)"},     \
    {"--kernel", NULL, OPT_INT, &(a).cfg.kernel, "conv: kernel side, odd (7)"},                       \
    {"--embed", NULL, OPT_INT, &(a).cfg.embed, "hyper: Z, the embedding size (conv 4, mlp 8)"},       \
    {"--gen-hidden", NULL, OPT_INT, &(a).cfg.gen_hidden, "hyper: d, the generator's width (= Z)"},   \
    {"--tile-rows", NULL, OPT_INT, &(a).cfg.tile_rows, "hypermlp: rows per generated tile (16)"},     \
    {"--tile-cols", NULL, OPT_INT, &(a).cfg.tile_cols, "hypermlp: columns per generated tile (10)"},  \
    {"--wnorm", NULL, OPT_FLAG, &(a).cfg.wnorm, "hyper: layer norm on the generated weights"}

/* ---- params --------------------------------------------------------------------------------- */

static clf_arch twin_of(clf_arch a)
{
    switch (a) {
    case CLF_MLP: return CLF_HYPERMLP;
    case CLF_HYPERMLP: return CLF_MLP;
    case CLF_CONV: return CLF_HYPERCONV;
    default: return CLF_CONV;
    }
}

int classify_params(int argc, char **argv)
{
    arch_opts a;
    arch_opts_init(&a);
    const opt_spec opts[] = {ARCH_OPTS(a), {NULL, NULL, 0, NULL, NULL}};
    if (parse_opts(argc, argv, opts, NULL, 0, "hyper params --arch mlp|hypermlp|conv|hyperconv [...]") < 0)
        return 2;
    clf_config cfg;
    if (arch_config(&a, &cfg, "params") < 0)
        return 2;
    char err[HYPER_ERRMSG_MAX];
    classifier c;
    hyper_status st = clf_create(&c, &cfg, err);
    if (st != HYPER_OK)
        return fail("params", st, err);
    for (int i = 0; i < c.nparams; i++) {
        char shape[64];
        int at = 0;
        for (int d = 0; d < c.table[i].ndim; d++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, d ? " x %" PRId64 : "%" PRId64, c.table[i].shape[d]);
        printf("%-28s %-20s %12zu\n", c.table[i].name, shape, c.table[i].size);
    }
    clf_free(&c);
    /* the twin: the same net with plain weights where these are generated, or the reverse */
    clf_config twin = cfg;
    twin.arch = twin_of((clf_arch)cfg.arch);
    twin.wnorm = 0;
    if (clf_arch_is_hyper((clf_arch)twin.arch)) {
        clf_config d;
        clf_config_default(&d, (clf_arch)twin.arch);
        twin.embed = d.embed;
        twin.gen_hidden = d.gen_hidden;
        twin.tile_rows = d.tile_rows;
        twin.tile_cols = d.tile_cols;
    }
    clf_counts mine, other;
    clf_param_counts(&cfg, &mine);
    const int twin_ok = clf_config_check(&twin, NULL) == HYPER_OK;
    if (twin_ok)
        clf_param_counts(&twin, &other);
    const clf_counts *hyper = clf_arch_is_hyper((clf_arch)cfg.arch) ? &mine : (twin_ok ? &other : NULL);
    const clf_counts *plain = clf_arch_is_hyper((clf_arch)cfg.arch) ? (twin_ok ? &other : NULL) : &mine;
    printf("%s: %zu parameters\n", clf_arch_str((clf_arch)cfg.arch), mine.total);
    if (twin_ok)
        printf("%s (its twin): %zu parameters\n", clf_arch_str((clf_arch)twin.arch), other.total);
    if (hyper == &mine)
        printf("generated weights: %zu values made by %zu generator parameters (embeddings and maps)\n",
               hyper->generated, hyper->generator);
    if (hyper && plain)
        printf("%s generates %zu weights from %zu parameters where %s has them plain (%.1f%%)\n",
               clf_arch_str((clf_arch)(hyper == &mine ? cfg.arch : twin.arch)), hyper->generated, hyper->generator,
               clf_arch_str((clf_arch)(hyper == &mine ? twin.arch : cfg.arch)),
               100.0 * (double)hyper->generator / (double)hyper->generated);
    printf("%zu\n", mine.total);
    return 0;
}

/* ---- info and eval ---------------------------------------------------------------------------- */

int classify_info(const char *path, const checkpoint *ck)
{
    char err[HYPER_ERRMSG_MAX];
    classifier c;
    hyper_status st = clf_load(ck, &c, err);
    if (st != HYPER_OK)
        return fail("info", st, err);
    const clf_config *k = &c.cfg;
    printf("file:        %s\n", path);
    printf("kind:        classifier\n");
    printf("arch:        %s\n", clf_arch_str((clf_arch)k->arch));
    if (k->hidden)
        printf("hidden:      %d\n", k->hidden);
    if (k->channels)
        printf("channels:    %d\nkernel:      %d\n", k->channels, k->kernel);
    if (clf_arch_is_hyper((clf_arch)k->arch))
        printf("embedding:   %d\ngen hidden:  %d\ntiles:       %d × %d%s\n", k->embed, k->gen_hidden, k->tile_rows,
               k->tile_cols, k->wnorm ? "\nwnorm:       yes" : "");
    clf_counts n;
    clf_param_counts(k, &n);
    printf("parameters:  %zu\n", n.total);
    if (n.generated)
        printf("generated:   %zu values from %zu parameters\n", n.generated, n.generator);
    const char *keys[] = {"train.steps", "train.val_error", NULL};
    for (int i = 0; keys[i]; i++) {
        const char *v = checkpoint_meta(ck, keys[i]);
        if (v)
            printf("%-12s %s\n", keys[i], v);
    }
    clf_free(&c);
    return 0;
}

static int load_classifier(const char *path, classifier *c)
{
    char err[HYPER_ERRMSG_MAX];
    checkpoint *ck = NULL;
    hyper_status st = checkpoint_open_tensors(path, &ck, err);
    if (st != HYPER_OK)
        return fail("model", st, err);
    if (!clf_is_classifier_file(ck)) {
        fprintf(stderr, "hyper: %s is not a classifier\n", path);
        checkpoint_close(ck);
        return 1;
    }
    st = clf_load(ck, c, err);
    checkpoint_close(ck);
    return st == HYPER_OK ? 0 : fail("model", st, err);
}

int classify_eval(const char *path, const char *data)
{
    classifier c;
    if (load_classifier(path, &c))
        return 1;
    char err[HYPER_ERRMSG_MAX];
    image_set im;
    hyper_status st = mnist_load(&im, data ? data : DEFAULT_MNIST_DIR, err);
    if (st != HYPER_OK) {
        clf_free(&c);
        return fail("eval", st, err);
    }
    clf_ws *ws = clf_ws_new_inference(&c, CLF_EVAL_BATCH);
    int rc = 0;
    if (!ws) {
        rc = fail("eval", HYPER_ERR_NOMEM, "out of memory");
    } else {
        double error = 0, loss = 0;
        const int32_t n = im.n - im.n_train;
        clf_evaluate(&c, ws, CLF_EVAL_BATCH, im.pixels + (size_t)im.n_train * IMG_PIXELS, im.labels + im.n_train, n,
                     &error, &loss);
        printf("test images: %d\ntest error: %.2f%% (%d wrong)\nlog-loss: %.4f nats per image\n", n, 100 * error,
               (int)lround(error * n), loss);
    }
    clf_ws_free(ws);
    image_set_free(&im);
    clf_free(&c);
    return rc;
}

/* ---- train ---------------------------------------------------------------------------------------- */

int classify_train(int argc, char **argv)
{
    const char *data = DEFAULT_MNIST_DIR, *out = NULL, *kind = "classifier";
    arch_opts a;
    arch_opts_init(&a);
    train_params tp;
    train_params_default_classifier(&tp);
    int32_t threads = 2, report_every = 50, resume = 0;
    const opt_spec opts[] = {
        {"--kind", NULL, OPT_STR, &kind, "classifier"},
        {"--data", NULL, OPT_STR, &data, "MNIST digits directory, {0..9}.json (" DEFAULT_MNIST_DIR ")"},
        {"--out", NULL, OPT_STR, &out, "model file to write (required); OUT.train holds the training state"},
        ARCH_OPTS(a),
        {"--batch", NULL, OPT_INT, &tp.batch, "images per step (64)"},
        {"--lr", NULL, OPT_DBL, &tp.lr, "Adam learning rate (0.001)"},
        {"--clip", NULL, OPT_DBL, &tp.clip, "global gradient-norm clip, 0 = off (0)"},
        {"--steps", NULL, OPT_I64, &tp.steps, "optimizer steps (2000)"},
        {"--seed", NULL, OPT_U64, &tp.seed, "seed of the weights and the batches (1)"},
        {"--threads", NULL, OPT_INT, &threads, "BLAS threads (2)"},
        {"--eval-every", NULL, OPT_INT, &tp.eval_every, "steps between test-error runs (250)"},
        {"--eval-images", NULL, OPT_I64, &tp.eval_limit, "test images per run, 0 = all (0)"},
        {"--checkpoint-every", NULL, OPT_INT, &tp.checkpoint_every, "steps between checkpoints (500)"},
        {"--report-every", NULL, OPT_INT, &report_every, "steps between progress lines (50)"},
        {"--resume", NULL, OPT_FLAG, &resume, "continue from OUT.train"},
        {NULL, NULL, 0, NULL, NULL}};
    const char *usage = "hyper train --kind classifier --out MODEL [--arch A --data DIR --batch B --lr LR --steps S "
                        "--seed X --threads K] [--resume]";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return 2;
    if (!out) {
        fprintf(stderr, "hyper train: --out is required\nusage: %s\n", usage);
        return 2;
    }
    clf_config cfg;
    if (arch_config(&a, &cfg, "train") < 0)
        return 2;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "hyper train: --threads: %d is outside 1..256\n", threads);
        return 2;
    }
    math_set_threads(threads);
    char err[HYPER_ERRMSG_MAX], ckpt[4096];
    if (snprintf(ckpt, sizeof ckpt, "%s.train", out) >= (int)sizeof ckpt) {
        fprintf(stderr, "hyper train: --out path too long\n");
        return 2;
    }
    image_set im;
    hyper_status st = mnist_load(&im, data, err);
    if (st != HYPER_OK)
        return fail("train", st, err);
    train_data td = {.images = &im};
    trainer *t = NULL;
    st = resume ? trainer_resume(&t, ckpt, &tp, &td, err) : trainer_new_classifier(&t, &cfg, &tp, &td, err);
    if (st != HYPER_OK) {
        image_set_free(&im);
        return fail("train", st, err);
    }
    const classifier *c = trainer_classifier(t);
    clf_counts n;
    clf_param_counts(&c->cfg, &n);
    printf("%s %s: %zu parameters", resume ? "resuming" : "training", clf_arch_str((clf_arch)c->cfg.arch), n.total);
    if (n.generated)
        printf(" (%zu generated weights from %zu)", n.generated, n.generator);
    printf("; %d training / %d test images; from step %" PRId64 "\n", im.n_train, im.n - im.n_train,
           trainer_steps_done(t));
    st = train_to_end(t, report_every, out, ckpt, err);
    image_set_free(&im);
    return st == HYPER_OK ? 0 : fail("train", st, err);
}

/* ---- classify --------------------------------------------------------------------------------------- */

int classify_images(int argc, char **argv)
{
    const char *path = NULL, *files[64] = {NULL};
    const opt_spec opts[] = {{"--model", NULL, OPT_STR, &path, "classifier file (required)"},
                             {NULL, NULL, 0, NULL, NULL}};
    const char *usage = "hyper classify --model MODEL IMAGE.png...";
    const int nfiles = parse_opts(argc, argv, opts, files, 64, usage);
    if (nfiles < 0)
        return 2;
    if (!path || nfiles == 0) {
        fprintf(stderr, "hyper classify: --model and at least one PNG file are required\nusage: %s\n", usage);
        return 2;
    }
    classifier c;
    if (load_classifier(path, &c))
        return 1;
    clf_ws *ws = clf_ws_new_inference(&c, 1);
    int rc = ws ? 0 : fail("classify", HYPER_ERR_NOMEM, "out of memory");
    for (int i = 0; ws && i < nfiles; i++) {
        char err[HYPER_ERRMSG_MAX];
        char *buf = NULL;
        size_t len = 0;
        float pixels[IMG_PIXELS];
        hyper_status st = fs_read_file(files[i], MAX_PNG_BYTES, 0, &buf, &len, err);
        if (st == HYPER_OK)
            st = png_to_mnist(buf, len, pixels, err);
        free(buf);
        if (st != HYPER_OK) {
            rc = fail(files[i], st, err);
            continue;
        }
        real p[CLF_CLASSES];
        const int best = clf_classify(&c, ws, pixels, p);
        printf("%s: %d (%.1f%%)\n", files[i], best, 100.0 * p[best]);
    }
    clf_ws_free(ws);
    clf_free(&c);
    return rc;
}
