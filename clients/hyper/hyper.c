/*
 * hyper — the command-line face of the engine: train, sample, eval, params, info, handwrite;
 * and, through a running hyperd, the commands of remote.c (generate, repl, models, ...).
 *
 * Every command parses its options from one table (opts.h), so each option is checked the
 * same way and a bad value always names the option.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activity.h"
#include "checkpoint.h"
#include "classify.h"
#include "progress.h"
#include "fsutil.h"
#include "handwriting.h"
#include "linalg.h"
#include "mdn.h"
#include "model.h"
#include "opts.h"
#include "remote.h"
#include "sampler.h"
#include "trainer.h"
#include "vocab.h"

#define MAX_TEXT_BYTES ((size_t)1 << 30)   /* corpora and evaluation files */
#define MAX_SAMPLE_CHARS 100000000L

static int fail(const char *what, hyper_status st, const char *err)
{
    fprintf(stderr, "hyper: %s: %s\n", what, err && *err ? err : hyper_status_str(st));
    return 1;
}

static int cell_from_opt(const char *s, model_config *cfg)
{
    cell_kind k;
    if (cell_kind_parse(s, &k) != 0) {
        fprintf(stderr, "hyper: --cell: '%s' is not one of lstm, lnlstm, hyperlstm, lnhyperlstm\n",
                s ? s : "");
        return -1;
    }
    cfg->cell = k;
    return 0;
}

/* ---- hyper params --------------------------------------------------------------------- */

static int cmd_params(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--arch") == 0 || strncmp(argv[i], "--arch=", 7) == 0)
            return classify_params(argc, argv);
    const char *cell = "lnhyperlstm";
    model_config cfg = {0, 1, 1000, 128, 4, 0, 50};
    int32_t vocab_size = -1;
    const opt_spec opts[] = {
        {"--cell", NULL, OPT_STR, &cell, "lstm | lnlstm | hyperlstm | lnhyperlstm"},
        {"--layers", NULL, OPT_INT, &cfg.layers, "L (1)"},
        {"--units", NULL, OPT_INT, &cfg.units, "N (1000)"},
        {"--hyper-units", NULL, OPT_INT, &cfg.hyper_units, "H (128)"},
        {"--embed", NULL, OPT_INT, &cfg.embed, "Z (4)"},
        {"--vocab", NULL, OPT_INT, &vocab_size, "V: one-hot input and softmax output (50)"},
        {"--inputs", NULL, OPT_INT, &cfg.inputs, "dense input width instead of one-hot"},
        {"--outputs", NULL, OPT_INT, &cfg.outputs, "output width (default: V)"},
        {NULL, NULL, 0, NULL, NULL}};
    if (parse_opts(argc, argv, opts, NULL, 0, "hyper params --cell C --units N --hyper-units H --embed Z --vocab V [--layers L]") < 0)
        return 2;
    if (cell_from_opt(cell, &cfg) < 0)
        return 2;
    if (vocab_size >= 0)
        cfg.outputs = vocab_size;
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = model_config_check(&cfg, err);
    if (st != HYPER_OK)
        return fail("params", st, err);
    param_info table[MODEL_MAX_PARAMS];
    size_t total = 0;
    int n = model_param_table(&cfg, table, &total);
    for (int i = 0; i < n; i++) {
        char shape[64];
        int at = 0;
        for (int d = 0; d < table[i].ndim; d++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, d ? " x %" PRId64 : "%" PRId64,
                           table[i].shape[d]);
        printf("%-28s %-20s %12zu\n", table[i].name, shape, table[i].size);
    }
    printf("%zu\n", total);
    return 0;
}

/* ---- hyper info ---------------------------------------------------------------------- */

static int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    const opt_spec opts[] = {{NULL, NULL, 0, NULL, NULL}};
    if (parse_opts(argc, argv, opts, &path, 1, "hyper info MODEL") < 0)
        return 2;
    if (!path) {
        fprintf(stderr, "usage: hyper info MODEL\n");
        return 2;
    }
    char err[HYPER_ERRMSG_MAX];
    checkpoint *ck = NULL;
    hyper_status st = checkpoint_open_tensors(path, &ck, err);
    if (st == HYPER_OK && clf_is_classifier_file(ck)) {
        int rc = classify_info(path, ck);
        checkpoint_close(ck);
        return rc;
    }
    if (st == HYPER_OK && (st = checkpoint_check_model(ck, err)) != HYPER_OK)
        checkpoint_close(ck);
    if (st != HYPER_OK)
        return fail("info", st, err);
    const model_config *c = checkpoint_config(ck);
    printf("file:        %s\n", path);
    printf("cell:        %s\n", cell_kind_str((cell_kind)c->cell));
    printf("layers:      %d\n", c->layers);
    printf("units:       %d\n", c->units);
    if (cell_is_hyper((cell_kind)c->cell)) {
        printf("hyper units: %d\n", c->hyper_units);
        printf("embedding:   %d\n", c->embed);
    }
    if (hw_model_ok(c))
        printf("inputs:      %d\nmixtures:    %d (%d outputs)\n", c->inputs, mdn_mixtures(c->outputs), c->outputs);
    else if (c->inputs)
        printf("inputs:      %d\noutputs:     %d\n", c->inputs, c->outputs);
    else
        printf("vocabulary:  %d\n", c->outputs);
    printf("parameters:  %zu\n", model_param_count(c));
    const char *keys[] = {"kind", "train.steps", "train.val_bpc", "train.val_loss", NULL};
    for (int k = 0; keys[k]; k++) {
        const char *v = checkpoint_meta(ck, keys[k]);
        if (v)
            printf("%-12s %s\n", keys[k], v);
    }
    checkpoint_close(ck);
    return 0;
}

/* ---- hyper train --------------------------------------------------------------------- */

static int cmd_train(int argc, char **argv)
{
    if (classify_kind_wanted(argc, argv, "--kind", "classifier"))
        return classify_train(argc, argv);
    const char *data = NULL, *out = NULL, *cell = "lnhyperlstm", *kind = "charlm";
    model_config cfg = {0, 1, 256, 64, 4, 0, 0};
    train_params tp;
    train_params_default(&tp);
    int32_t threads = 2, report_every = 10, resume = 0, mixtures = 20;
    double val_fraction = 0.05;
    const opt_spec opts[] = {
        {"--kind", NULL, OPT_STR, &kind, "charlm | handwriting | classifier (charlm; hyper train --kind classifier --help for its options)"},
        {"--data", NULL, OPT_STR, &data, "charlm: UTF-8 text; handwriting: synthetic:N, an IAM-OnDB lineStrokes dir or .xml, or a .json (required)"},
        {"--mixtures", NULL, OPT_INT, &mixtures, "handwriting: M Gaussians of the output (20)"},
        {"--out", NULL, OPT_STR, &out, "model file to write (required); OUT.train holds the training state"},
        {"--cell", NULL, OPT_STR, &cell, "lstm | lnlstm | hyperlstm | lnhyperlstm (lnhyperlstm)"},
        {"--layers", NULL, OPT_INT, &cfg.layers, "L (1)"},
        {"--units", NULL, OPT_INT, &cfg.units, "N (256)"},
        {"--hyper-units", NULL, OPT_INT, &cfg.hyper_units, "H (64)"},
        {"--embed", NULL, OPT_INT, &cfg.embed, "Z (4)"},
        {"--batch", NULL, OPT_INT, &tp.batch, "B parallel streams (32)"},
        {"--seq", NULL, OPT_INT, &tp.seq, "T steps of truncated BPTT (100)"},
        {"--lr", NULL, OPT_DBL, &tp.lr, "Adam learning rate (0.002)"},
        {"--clip", NULL, OPT_DBL, &tp.clip, "global gradient-norm clip, 0 = off (1.0)"},
        {"--keep", NULL, OPT_DBL, &tp.keep, "recurrent dropout keep probability (1.0)"},
        {"--steps", NULL, OPT_I64, &tp.steps, "optimizer steps (1000)"},
        {"--seed", NULL, OPT_U64, &tp.seed, "seed of weights and dropout (1)"},
        {"--threads", NULL, OPT_INT, &threads, "BLAS threads (2)"},
        {"--eval-every", NULL, OPT_INT, &tp.eval_every, "steps between validations (100)"},
        {"--eval-chars", NULL, OPT_I64, &tp.eval_limit, "charlm: validation characters per run, 0 = all (0)"},
        {"--eval-lines", NULL, OPT_I64, &tp.eval_limit, "handwriting: validation lines per run, 0 = all (0)"},
        {"--checkpoint-every", NULL, OPT_INT, &tp.checkpoint_every, "steps between checkpoints (500)"},
        {"--val-fraction", NULL, OPT_DBL, &val_fraction, "share of the text (or lines) held out at its end (0.05)"},
        {"--report-every", NULL, OPT_INT, &report_every, "steps between progress lines (10)"},
        {"--resume", NULL, OPT_FLAG, &resume, "continue from OUT.train"},
        {NULL, NULL, 0, NULL, NULL}};
    const char *usage = "hyper train [--kind charlm|handwriting] --data FILE|SPEC --out MODEL [--cell C --layers L --units N "
                        "--hyper-units H --embed Z --batch B --seq T --lr LR --clip G --keep P "
                        "--steps S --seed X --threads K] [--resume]";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return 2;
    if (!data || !out) {
        fprintf(stderr, "hyper train: --data and --out are required\nusage: %s\n", usage);
        return 2;
    }
    if (cell_from_opt(cell, &cfg) < 0)
        return 2;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "hyper train: --threads: %d is outside 1..256\n", threads);
        return 2;
    }
    math_set_threads(threads);
    char err[HYPER_ERRMSG_MAX];
    char ckpt[4096];
    if (snprintf(ckpt, sizeof ckpt, "%s.train", out) >= (int)sizeof ckpt) {
        fprintf(stderr, "hyper train: --out path too long\n");
        return 2;
    }
    const int strokes = strcmp(kind, "handwriting") == 0;
    if (!strokes && strcmp(kind, "charlm") != 0) {
        fprintf(stderr, "hyper train: --kind: '%s' is not charlm, handwriting or classifier\n", kind);
        return 2;
    }
    if (strokes && (mixtures < 1 || mixtures > MDN_MAX_MIXTURES)) {
        fprintf(stderr, "hyper train: --mixtures: %d is outside 1..%d\n", mixtures, MDN_MAX_MIXTURES);
        return 2;
    }
    corpus c = {0};
    stroke_corpus sc = {0};
    train_data td = {NULL, NULL, NULL};
    hyper_status st;
    if (strokes) {
        st = stroke_corpus_load(&sc, data, val_fraction, err);
        cfg.inputs = 3;
        cfg.outputs = mdn_outputs(mixtures);
        td.strokes = &sc;
    } else {
        /* a resumed run encodes the text with the checkpoint's own vocabulary */
        vocab resume_voc = {0, NULL};
        if (resume) {
            model tmp;
            st = checkpoint_load(ckpt, &tmp, &resume_voc, err);
            if (st != HYPER_OK)
                return fail("resume", st, err);
            model_free(&tmp);
        }
        st = corpus_load(&c, data, MAX_TEXT_BYTES, resume ? &resume_voc : NULL, val_fraction, err);
        vocab_free(&resume_voc);
        cfg.outputs = c.voc.size;
        td.text = &c;
    }
    if (st != HYPER_OK)
        return fail("train", st, err);
    trainer *t = NULL;
    st = resume ? trainer_resume(&t, ckpt, &tp, &td, err) : trainer_new(&t, &cfg, &tp, &td, err);
    if (st != HYPER_OK) {
        corpus_free(&c);
        stroke_corpus_free(&sc);
        return fail("train", st, err);
    }
    const model_config *mc = &trainer_model(t)->cfg;
    printf("%s %s: %d layer(s) × %d units", resume ? "resuming" : "training",
           cell_kind_str((cell_kind)mc->cell), mc->layers, mc->units);
    if (cell_is_hyper((cell_kind)mc->cell))
        printf(", H %d, Z %d", mc->hyper_units, mc->embed);
    if (strokes)
        printf(", %d mixtures, %zu parameters; %d training / %d validation lines (%d dropped); from step %" PRId64 "\n",
               mdn_mixtures(mc->outputs), model_param_count(mc), sc.n_train, sc.set.n - sc.n_train,
               sc.dropped, trainer_steps_done(t));
    else
        printf(", vocabulary %d, %zu parameters; %zu training / %zu validation characters; from step %" PRId64 "\n",
               mc->outputs, model_param_count(mc), c.n_train, c.n - c.n_train, trainer_steps_done(t));
    st = train_to_end(t, report_every, out, ckpt, err);
    corpus_free(&c);
    stroke_corpus_free(&sc);
    return st == HYPER_OK ? 0 : fail("train", st, err);
}

/* ---- model loading for sample / eval ---------------------------------------------------- */

static int load_charlm(const char *path, model *m, vocab *v)
{
    char err[HYPER_ERRMSG_MAX];
    memset(v, 0, sizeof *v);
    hyper_status st = checkpoint_load(path, m, v, err);
    if (st != HYPER_OK)
        return fail("model", st, err);
    if (m->cfg.inputs != 0 || v->size != m->cfg.outputs) {
        fprintf(stderr, "hyper: %s is not a character model (it has no vocabulary)\n", path);
        model_free(m);
        vocab_free(v);
        return 1;
    }
    return 0;
}

/* A handwriting model and its normalisation; 0 on success, else the exit code. */
static int load_handwriting(const char *path, model *m, stroke_stats *stats)
{
    char err[HYPER_ERRMSG_MAX];
    checkpoint *ck = NULL;
    hyper_status st = checkpoint_open(path, &ck, err);
    if (st != HYPER_OK)
        return fail("model", st, err);
    if (!hw_model_ok(checkpoint_config(ck))) {
        fprintf(stderr, "hyper: %s is not a handwriting model (it needs 3 inputs and a mixture-density output)\n", path);
        checkpoint_close(ck);
        return 1;
    }
    st = strokes_stats_from_meta(ck, stats, err);
    if (st == HYPER_OK)
        st = checkpoint_load_model(ck, m, NULL, err);
    checkpoint_close(ck);
    return st == HYPER_OK ? 0 : fail(path, st, err);
}

/* 1 when the file at path holds a handwriting model (errors are left to the loaders). */
static int is_handwriting_model(const char *path)
{
    checkpoint *ck = NULL;
    if (checkpoint_open(path, &ck, NULL) != HYPER_OK)
        return 0;
    int hw = hw_model_ok(checkpoint_config(ck));
    checkpoint_close(ck);
    return hw;
}

/* ---- hyper handwrite ------------------------------------------------------------------ */

static int cmd_handwrite(int argc, char **argv)
{
    if (remote_handwrite_wanted(argc, argv)) /* --server URL: the server's model draws */
        return remote_handwrite(argc, argv);
    const char *path = NULL, *out = NULL, *prime = NULL;
    hw_params hp;
    hw_params_default(&hp);
    int32_t threads = 1;
    const opt_spec opts[] = {
        {"--model", NULL, OPT_STR, &path, "handwriting model file (required)"},
        {"--out", NULL, OPT_STR, &out, "FILE.svg, or FILE.json for the strokes (default: SVG on stdout)"},
        {"-n", "--points", OPT_INT, &hp.max_points, "points to draw (700)"},
        {"--bias", NULL, OPT_DBL, &hp.bias, "sampling bias, 0 = as trained, higher = neater (0)"},
        {"--temperature", NULL, OPT_DBL, &hp.temperature, "(1.0)"},
        {"--seed", NULL, OPT_U64, &hp.seed, "sampling seed (1)"},
        {"--prime", NULL, OPT_STR, &prime, "JSON strokes file whose first line the pen continues"},
        {"--threads", NULL, OPT_INT, &threads, "BLAS threads (1)"},
        {NULL, NULL, 0, NULL, NULL}};
    const char *usage = "hyper handwrite --model MODEL [--bias B] [--seed S] [-n POINTS] [--prime FILE.json] [--out FILE.svg]\n"
                        "       (with --server URL a hyperd draws: hyper handwrite --server URL --help)";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return 2;
    if (!path) {
        fprintf(stderr, "hyper handwrite: --model is required\nusage: %s\n", usage);
        return 2;
    }
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = hw_params_check(&hp, err);
    if (st != HYPER_OK)
        return fail("handwrite", st, err);
    math_set_threads(threads < 1 ? 1 : threads);
    model m;
    stroke_stats stats;
    if (load_handwriting(path, &m, &stats))
        return 1;
    stroke_set ps;
    strokes_init(&ps);
    int rc = 0;
    model_state s = {0};
    float *pts = malloc((size_t)hp.max_points * 3 * sizeof *pts);
    double *xy = malloc((size_t)hp.max_points * 2 * sizeof *xy);
    int32_t *lens = malloc((size_t)hp.max_points * sizeof *lens);
    char *doc = NULL;
    if (prime && (st = strokes_load_json(&ps, prime, err)) != HYPER_OK) {
        rc = fail("--prime", st, err);
        goto out;
    }
    if ((st = model_pack(&m, 0, err)) != HYPER_OK || (st = model_state_init(&s, &m.cfg, 1, err)) != HYPER_OK) {
        rc = fail("handwrite", st, err);
        goto out;
    }
    if (!pts || !xy || !lens) {
        rc = fail("handwrite", HYPER_ERR_NOMEM, "out of memory");
        goto out;
    }
    hw_pen pen;
    hw_pen_start(&pen);
    hyper_rng rng;
    hyper_rng_seed(&rng, hp.seed);
    int32_t n = 0, ns = 0;
    const stroke_line *pl = ps.n ? &ps.lines[0] : NULL;
    st = hw_draw(&m, &stats, &s, &pen, pl ? pl->pts : NULL, pl ? pl->npoints : 0, &hp, &rng, pts, &n, NULL, NULL, NULL, err);
    if (st != HYPER_OK) {
        rc = fail("handwrite", st, err);
        goto out;
    }
    /* the drawing starts where the prime ended */
    double x0 = 0, y0 = 0;
    for (int32_t k = 0; pl && k < pl->npoints; k++) {
        x0 += pl->pts[3 * k];
        y0 += pl->pts[3 * k + 1];
    }
    strokes_to_absolute(pts, n, x0, y0, xy, lens, &ns);
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        rc = fail("--out", HYPER_ERR_IO, strerror(errno));
        goto out;
    }
    size_t olen = out ? strlen(out) : 0;
    if (olen > 5 && strcmp(out + olen - 5, ".json") == 0) {
        fprintf(f, "{\"strokes\": [");
        for (int32_t k = 0, i = 0; k < ns; k++) {
            fprintf(f, "%s[", k ? ", " : "");
            for (int32_t j = 0; j < lens[k]; j++, i++)
                fprintf(f, "%s[%.2f, %.2f]", j ? ", " : "", xy[2 * i], xy[2 * i + 1]);
            fprintf(f, "]");
        }
        fprintf(f, "], \"points\": %d}\n", n);
    } else {
        doc = strokes_svg(xy, lens, ns, 0);
        if (doc)
            fputs(doc, f);
    }
    if (out && fclose(f) != 0)
        rc = fail("--out", HYPER_ERR_IO, strerror(errno));
    if (out && rc == 0)
        fprintf(stderr, "wrote %s: %d points in %d strokes\n", out, n, ns);
out:
    free(doc);
    free(pts);
    free(xy);
    free(lens);
    strokes_free(&ps);
    model_state_free(&s);
    model_free(&m);
    return rc;
}

/* ---- hyper sample -------------------------------------------------------------------- */

static int cmd_sample(int argc, char **argv)
{
    const char *path = NULL, *prime = NULL, *hyper_svg = NULL;
    int64_t n = 500;
    sampler_params sp;
    sampler_params_default(&sp);
    uint64_t seed = 1;
    int32_t threads = 1;
    int skip_unknown = 0, half = 0;
    const opt_spec opts[] = {
        {"--model", NULL, OPT_STR, &path, "model file (required)"},
        {"--prime", NULL, OPT_STR, &prime, "text fed to the model first (not repeated)"},
        {"--half", NULL, OPT_FLAG, &half, "weights rounded to half precision: faster, slightly different text"},
        {"-n", "--chars", OPT_I64, &n, "characters to generate (500)"},
        {"--temperature", NULL, OPT_DBL, &sp.temperature, "0 = greedy (1.0)"},
        {"--top-k", NULL, OPT_INT, &sp.top_k, "keep the k most likely, 0 = all (0)"},
        {"--top-p", NULL, OPT_DBL, &sp.top_p, "nucleus mass (1.0)"},
        {"--seed", NULL, OPT_U64, &seed, "sampling seed (1)"},
        {"--threads", NULL, OPT_INT, &threads, "BLAS threads (1)"},
        {"--skip-unknown", NULL, OPT_FLAG, &skip_unknown, "drop prime characters outside the vocabulary"},
        {"--hyper-svg", NULL, OPT_STR, &hyper_svg, "also write FILE: an SVG of the text coloured by hyper activity (hyper cells)"},
        {NULL, NULL, 0, NULL, NULL}};
    const char *usage = "hyper sample --model MODEL [--prime TEXT] [-n CHARS] [--temperature T] "
                        "[--top-k K] [--top-p P] [--seed X] [--hyper-svg FILE]";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return 2;
    if (!path) {
        fprintf(stderr, "hyper sample: --model is required\nusage: %s\n", usage);
        return 2;
    }
    char err[HYPER_ERRMSG_MAX];
    hyper_status st = sampler_params_check(&sp, err);
    if (st != HYPER_OK)
        return fail("sample", st, err);
    if (n < 0 || n > MAX_SAMPLE_CHARS) {
        fprintf(stderr, "hyper sample: -n: %" PRId64 " is outside 0..%ld\n", n, MAX_SAMPLE_CHARS);
        return 2;
    }
    math_set_threads(threads < 1 ? 1 : threads);
    kernels_set_threads(threads);
    model m;
    vocab v;
    if (load_charlm(path, &m, &v))
        return 1;
    if (hyper_svg && !cell_is_hyper((cell_kind)m.cfg.cell)) {
        fprintf(stderr, "hyper sample: --hyper-svg: the model is an %s, which has no hypernetwork "
                        "(hyperlstm and lnhyperlstm cells have one)\n",
                cell_kind_str((cell_kind)m.cfg.cell));
        model_free(&m);
        vocab_free(&v);
        return 2;
    }
    /* the serving kernel, so the CLI writes the same text as hyperd for the same seed */
    if ((st = model_pack(&m, half, err)) != HYPER_OK) {
        model_free(&m);
        vocab_free(&v);
        return fail("sample", st, err);
    }
    /* without a prime the model starts from a newline, as a text starts after one */
    int32_t *ids = NULL;
    size_t nids = 0;
    const char *start = prime ? prime : "\n";
    st = vocab_encode(&v, start, strlen(start), skip_unknown, &ids, &nids, NULL, err);
    int rc = 0;
    model_state s = {0};
    model_step_ws *ws = NULL;
    real *logits = NULL, *before = NULL;
    void *scratch = NULL;
    float *act = NULL;          /* (n, 4) the activity of each character, for --hyper-svg */
    char *text = NULL;          /* the text, for --hyper-svg */
    size_t tlen = 0;
    if (st != HYPER_OK) {
        rc = fail(prime ? "--prime" : "sample", st, err);
        goto out;
    }
    if (nids == 0 && vocab_encode(&v, " ", 1, 1, &ids, &nids, NULL, err) == HYPER_OK && nids == 0) {
        free(ids);
        ids = calloc(1, sizeof *ids); /* nothing usable: start from id 0 */
        nids = 1;
    }
    st = model_state_init(&s, &m.cfg, 1, err);
    ws = model_step_ws_new(&m.cfg, 1);
    logits = malloc((size_t)m.cfg.outputs * sizeof *logits);
    scratch = malloc(sampler_scratch_size(m.cfg.outputs));
    if (hyper_svg) {
        before = malloc((size_t)m.cfg.hyper_units * sizeof *before);
        act = malloc((size_t)(n > 0 ? n : 1) * 4 * sizeof *act);
        text = malloc((size_t)(n > 0 ? n : 1) * 4 + 1);
    }
    if (st != HYPER_OK || !ws || !logits || !scratch || !ids ||
        (hyper_svg && (!before || !act || !text))) {
        rc = fail("sample", HYPER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < nids; k++)
        model_step(&m, &s, ws, 1, &ids[k], NULL, logits);
    hyper_rng rng;
    hyper_rng_seed(&rng, seed);
    for (int64_t k = 0; k < n; k++) {
        int32_t id = sampler_sample(logits, m.cfg.outputs, &sp, &rng, scratch);
        char buf[8];
        int len = vocab_decode(&v, id, buf);
        fwrite(buf, 1, (size_t)len, stdout);
        fflush(stdout);
        if (hyper_svg)
            memcpy(before, s.hh[0], (size_t)m.cfg.hyper_units * sizeof *before);
        model_step(&m, &s, ws, 1, &id, NULL, logits);
        if (hyper_svg) { /* the change of layer 0's d_h as the model reads the character */
            real a[4];
            model_hyper_activity(&m, 0, before, s.hh[0], a);
            for (int g = 0; g < 4; g++)
                act[4 * k + g] = (float)a[g];
            memcpy(text + tlen, buf, (size_t)len);
            tlen += (size_t)len;
        }
    }
    if (isatty(STDOUT_FILENO))
        printf("\n");
    if (hyper_svg) {
        char *doc = activity_text_svg(text, tlen, act, (size_t)n);
        st = doc ? fs_write_atomic(hyper_svg, doc, strlen(doc), err) : HYPER_ERR_NOMEM;
        if (st != HYPER_OK)
            rc = fail("--hyper-svg", st, doc ? err : "out of memory");
        else
            fprintf(stderr, "wrote %s: %" PRId64 " characters coloured by hyper activity\n", hyper_svg, n);
        free(doc);
    }
out:
    free(before);
    free(act);
    free(text);
    free(ids);
    free(logits);
    free(scratch);
    model_step_ws_free(ws);
    model_state_free(&s);
    model_free(&m);
    vocab_free(&v);
    return rc;
}

/* ---- hyper eval ---------------------------------------------------------------------- */

/* Mean log-loss per line of a handwriting model on a stroke data spec (its held-out tail). */
static int eval_handwriting(const char *path, const char *data, double held_out, int32_t streams,
                            int32_t seq)
{
    model m;
    stroke_stats stats;
    if (load_handwriting(path, &m, &stats))
        return 1;
    char err[HYPER_ERRMSG_MAX];
    stroke_corpus sc;
    hyper_status st = stroke_corpus_load(&sc, data, held_out, err);
    int rc = 0;
    if (st != HYPER_OK) {
        rc = fail("eval", st, err);
    } else {
        /* the same split as training's: with --held-out the tail, else every line */
        const int32_t from = held_out > 0 ? sc.n_train : 0, n = sc.set.n - from;
        double loss = 0;
        size_t points = 0;
        st = n > 0 ? model_eval_strokes(&m, &stats, sc.set.lines + from, n, streams, seq, &loss, &points, err)
                   : hyper_fail(err, HYPER_ERR_ARG, "no line to evaluate");
        if (st != HYPER_OK)
            rc = fail("eval", st, err);
        else
            printf("lines: %d (%zu points predicted)\nlog-loss: %.2f nats per line (%.4f per point)\n", n,
                   points, loss, loss * n / (double)(points ? points : 1));
        stroke_corpus_free(&sc);
    }
    model_free(&m);
    return rc;
}

static int cmd_eval(int argc, char **argv)
{
    const char *path = NULL, *data = NULL;
    int32_t threads = 2, streams = 16, seq = 100;
    int skip_unknown = 0;
    double held_out = 0;
    const opt_spec opts[] = {
        {"--model", NULL, OPT_STR, &path, "model file (required)"},
        {"--data", NULL, OPT_STR, &data, "UTF-8 text, or strokes (as hyper train --data) for a handwriting model (required)"},
        {"--held-out", NULL, OPT_DBL, &held_out, "evaluate only the last FRACTION of the text, the part `hyper train --val-fraction` held out (0 = all)"},
        {"--threads", NULL, OPT_INT, &threads, "BLAS threads (2)"},
        {"--streams", NULL, OPT_INT, &streams, "slices of the text run side by side (16)"},
        {"--seq", NULL, OPT_INT, &seq, "steps per forward pass (100)"},
        {"--skip-unknown", NULL, OPT_FLAG, &skip_unknown, "drop characters outside the vocabulary"},
        {NULL, NULL, 0, NULL, NULL}};
    const char *usage = "hyper eval --model MODEL --data FILE";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return 2;
    if (!path || !data) {
        fprintf(stderr, "hyper eval: --model and --data are required\nusage: %s\n", usage);
        return 2;
    }
    if (streams < 1 || streams > TRAIN_MAX_BATCH || seq < 1 || seq > TRAIN_MAX_SEQ) {
        fprintf(stderr, "hyper eval: --streams or --seq out of range\n");
        return 2;
    }
    if (!(held_out >= 0 && held_out < 1)) {
        fprintf(stderr, "hyper eval: --held-out: %g must be in [0, 1)\n", held_out);
        return 2;
    }
    math_set_threads(threads < 1 ? 1 : threads);
    if (classify_is_classifier(path))
        return classify_eval(path, data);
    if (is_handwriting_model(path))
        return eval_handwriting(path, data, held_out, streams, seq);
    model m;
    vocab v;
    if (load_charlm(path, &m, &v))
        return 1;
    char err[2 * HYPER_ERRMSG_MAX], sub[HYPER_ERRMSG_MAX];
    char *text = NULL;
    size_t len = 0, n = 0, skipped = 0;
    int32_t *ids = NULL;
    int rc = 0;
    hyper_status st = fs_read_file(data, MAX_TEXT_BYTES, 0, &text, &len, err);
    if (st == HYPER_OK) {
        st = vocab_encode(&v, text, len, skip_unknown, &ids, &n, &skipped, sub);
        if (st != HYPER_OK)
            snprintf(err, sizeof err, "%s: %s", data, sub);
    }
    double bpc = 0;
    size_t count = 0, from = 0;
    if (held_out > 0) /* the same cut as corpus_load's */
        from = n - (size_t)((double)n * held_out);
    if (st == HYPER_OK)
        st = model_eval_bpc(&m, ids + from, n - from, streams, seq, &bpc, &count, err);
    if (st != HYPER_OK) {
        rc = fail("eval", st, err);
    } else {
        printf("characters: %zu predicted", count);
        if (skipped)
            printf(" (%zu outside the vocabulary skipped)", skipped);
        printf("\nbpc: %.4f\n", bpc);
    }
    free(text);
    free(ids);
    model_free(&m);
    vocab_free(&v);
    return rc;
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hyper COMMAND [options]   (hyper COMMAND --help for its options)\n"
            "  train    train a character model on text, a handwriting model on strokes, or a\n"
            "           digit classifier (--kind classifier: static hypernetworks) on MNIST\n"
            "  sample   generate text from a model\n"
            "  eval     bits per character (text) or log-loss per line (handwriting) of a model\n"
            "  handwrite draw handwriting with a handwriting model, as SVG or JSON strokes\n"
            "  params   exact parameter count of a configuration (--arch: a classifier and its twin)\n"
            "  classify the digit in PNG images, with a classifier model\n"
            "  info     configuration and size of a model file\n"
            "through a running hyperd (--url URL or HYPERD_URL, --api-key KEY or HYPERD_API_KEY):\n"
            "  generate stream a session's text as it is generated\n"
            "  repl     talk to a session: each line you type is fed, the model goes on\n"
            "  handwrite --server URL   draw with the server's handwriting model\n"
            "  models   the loaded models\n"
            "  sessions the sessions (sessions delete ID)\n"
            "  datasets upload NAME FILE | list | delete NAME\n"
            "  jobs     submit | list | get ID | watch ID | cancel ID | delete ID\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"train", cmd_train}, {"sample", cmd_sample}, {"eval", cmd_eval},
        {"params", cmd_params}, {"info", cmd_info}, {"handwrite", cmd_handwrite},
        {"classify", classify_images},
        {"generate", remote_generate}, {"repl", remote_repl}, {"models", remote_models},
        {"sessions", remote_sessions}, {"datasets", remote_datasets}, {"jobs", remote_jobs},
    };
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++)
        if (strcmp(cmd, cmds[k].name) == 0)
            return cmds[k].fn(argc - 2, argv + 2);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "hyper: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
