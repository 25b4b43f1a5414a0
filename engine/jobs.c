/*
 * jobs.c — the training-job runner of jobs.h: records, the queue and its workers, progress,
 * persistence and resume.
 *
 * One mutex guards every record; workers sleep on `work` until a job is queued, watchers
 * on `progress` until a report arrives.  The trainer runs outside the lock; its report
 * callback takes the lock only to append a point.  Records are written (atomically) at
 * every change of state and after every checkpoint, so after a kill -9 a job restarts
 * from its last checkpoint, whose CRC-32 is checked before it is trusted.
 */
#include "jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "linalg.h"
#include "mdn.h"
#include "registry.h"
#include "strbuf.h"

#define JOB_DIR_MAX 512             /* the jobs and models directories */
#define JOB_PATH_MAX 1024           /* any file under them */
#define JOB_REPORTS 200             /* progress reports over a run (at least one per step) */

typedef struct {
    job_info info;
    job_point *hist;                /* (nhist) */
    size_t nhist, cap;
    uint32_t ckpt_crc;
    int stop;                       /* the runner is stopping: leave it resumable */
    atomic_int halt;                /* stop or cancel: the trainer checks it before each step */
    int pinned;                     /* holds its dataset (from submission to its end) */
} job;

struct job_runner {
    pthread_mutex_t mu;
    pthread_cond_t work, progress;
    job **jobs;                     /* (n) in submission order */
    size_t n, cap;
    int64_t next_seq;
    char dir[JOB_DIR_MAX], models_dir[JOB_DIR_MAX];
    job_host host;
    pthread_t threads[JOBS_MAX_WORKERS];
    int nthreads;
    int stopping;
};

const char *job_state_str(job_state s)
{
    static const char *const names[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    return (unsigned)s < 5 ? names[s] : "unknown";
}

int job_state_finished(job_state s) { return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED; }

const char *job_kind_str(job_kind k)
{
    return k == JOB_CLASSIFIER ? "classifier" : k == JOB_HANDWRITING ? "handwriting" : "charlm";
}

void job_spec_default(job_spec *s)
{
    memset(s, 0, sizeof *s);
    s->kind = JOB_CHARLM;
    s->model = (model_config){CELL_LNHYPERLSTM, 1, 256, 64, 4, 0, 0};
    s->mixtures = 20;
    clf_config_default(&s->classifier, CLF_HYPERCONV);
    train_params_default(&s->train);
    s->val_fraction = 0.05;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- records on disk ----------------------------------------------------------------- */

static void job_path(const job_runner *r, const char *id, const char *file, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s%s%s", r->dir, id, file ? "/" : "", file ? file : "");
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static double num_of(const json_t *j, double dflt)
{
    return json_is_number(j) ? json_number_value(j) : (json_is_null(j) ? NAN : dflt);
}

/* The whole record as JSON (new reference). */
static json_t *record_json(const job *j)
{
    const job_info *i = &j->info;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(i->id));
    json_object_set_new(o, "seq", json_integer(i->seq));
    json_object_set_new(o, "spec", job_spec_to_json(&i->spec));
    json_object_set_new(o, "state", json_string(job_state_str(i->state)));
    json_object_set_new(o, "created_ms", json_integer(i->created_ms));
    json_object_set_new(o, "started_ms", json_integer(i->started_ms));
    json_object_set_new(o, "finished_ms", json_integer(i->finished_ms));
    json_object_set_new(o, "step", json_integer(i->step));
    json_object_set_new(o, "steps", json_integer(i->steps));
    json_object_set_new(o, "train_loss", num_or_null(i->train_loss));
    json_object_set_new(o, "val_loss", num_or_null(i->val_loss));
    json_object_set_new(o, "items_per_sec", num_or_null(i->items_per_sec));
    json_object_set_new(o, "elapsed", num_or_null(i->elapsed));
    json_object_set_new(o, "checkpoint_step", json_integer(i->checkpoint_step));
    json_object_set_new(o, "checkpoint_crc32", json_integer(j->ckpt_crc));
    json_object_set_new(o, "resumes", json_integer(i->resumes));
    json_object_set_new(o, "cancel_requested", json_boolean(i->cancel_requested));
    json_object_set_new(o, "error", json_string(i->error));
    return o;
}

/* Writes a job's record; called with the lock held (records are small).  0 when written;
 * else -1, with the cause in err (may be NULL) and *why (may be NULL) its status, and the
 * failure logged. */
static int record_save_why(const job_runner *r, const job *j, hyper_status *why, char *err)
{
    char path[JOB_PATH_MAX];
    job_path(r, j->info.id, "job.json", path, sizeof path);
    json_t *o = record_json(j);
    char *text = o ? json_text(o, JSON_INDENT(1)) : NULL;
    char msg[HYPER_ERRMSG_MAX];
    hyper_status st = text ? fs_write_atomic(path, text, strlen(text), msg)
                           : hyper_fail(msg, HYPER_ERR_NOMEM, "out of memory");
    if (st != HYPER_OK)
        hyper_log(HYPER_LOG_WARN, "job %s: cannot save its record: %s", j->info.id, msg);
    if (why)
        *why = st;
    if (err && st != HYPER_OK)
        snprintf(err, HYPER_ERRMSG_MAX, "%s", msg);
    free(text);
    json_decref(o);
    return st == HYPER_OK ? 0 : -1;
}

static int record_save(const job_runner *r, const job *j) { return record_save_why(r, j, NULL, NULL); }

static json_t *point_json(const job_point *p)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:b, s:I}", "step", (json_int_t)p->step,
                     "steps", (json_int_t)p->steps, "train_loss", num_or_null(p->train_loss), "val_loss",
                     num_or_null(p->val_loss), "items_per_sec", num_or_null(p->items_per_sec), "elapsed",
                     num_or_null(p->elapsed), "eta", num_or_null(p->eta), "evaluated", p->evaluated,
                     "time_ms", (json_int_t)p->time_ms);
}

json_t *job_point_to_json(const job_point *p) { return point_json(p); }

static int history_push(job *j, const job_point *p)
{
    if (j->nhist == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 64;
        job_point *h = realloc(j->hist, cap * sizeof *h);
        if (!h)
            return -1;
        j->hist = h;
        j->cap = cap;
    }
    j->hist[j->nhist++] = *p;
    j->info.history = j->nhist;
    return 0;
}

/* One report as a line of ID/history.jsonl (new; NULL when out of memory). */
static char *point_line(const job_point *p)
{
    json_t *o = point_json(p);
    char *line = o ? json_text(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return line;
}

/* Appends one report to ID/history.jsonl (a line per report; a torn last line from a crash
 * is skipped when it is read back). */
static void history_append(const job_runner *r, const job *j, const job_point *p)
{
    char path[JOB_PATH_MAX];
    job_path(r, j->info.id, "history.jsonl", path, sizeof path);
    char *line = point_line(p);
    FILE *f = line ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    free(line);
}

/* Rewrites the history file with the points kept (after a resume drops those past the
 * checkpoint). */
static void history_rewrite(const job_runner *r, const job *j)
{
    char path[JOB_PATH_MAX];
    job_path(r, j->info.id, "history.jsonl", path, sizeof path);
    strbuf b;
    strbuf_init(&b);
    for (size_t k = 0; k < j->nhist; k++) {
        char *line = point_line(&j->hist[k]);
        if (line)
            strbuf_printf(&b, "%s\n", line);
        else
            b.failed = 1;
        free(line);
    }
    char *text = strbuf_take(&b);
    if (text)
        fs_write_atomic(path, text, strlen(text), NULL);
    free(text);
}

static int point_from_json(const json_t *o, job_point *p)
{
    if (!json_is_object(o) || !json_is_integer(json_object_get(o, "step")))
        return -1;
    p->step = json_integer_value(json_object_get(o, "step"));
    p->steps = json_integer_value(json_object_get(o, "steps"));
    p->train_loss = num_of(json_object_get(o, "train_loss"), NAN);
    p->val_loss = num_of(json_object_get(o, "val_loss"), NAN);
    p->items_per_sec = num_of(json_object_get(o, "items_per_sec"), NAN);
    p->elapsed = num_of(json_object_get(o, "elapsed"), NAN);
    p->eta = num_of(json_object_get(o, "eta"), NAN);
    p->evaluated = json_is_true(json_object_get(o, "evaluated"));
    p->time_ms = json_integer_value(json_object_get(o, "time_ms"));
    return 0;
}

static job_state state_parse(const char *s)
{
    for (int k = 0; k < 5; k++)
        if (s && strcmp(s, job_state_str((job_state)k)) == 0)
            return (job_state)k;
    return JOB_FAILED;
}

static int id_valid(const char *id)
{
    if (strlen(id) != JOB_ID_LEN)
        return 0;
    for (int k = 0; k < JOB_ID_LEN; k++)
        if (!((id[k] >= '0' && id[k] <= '9') || (id[k] >= 'a' && id[k] <= 'f')))
            return 0;
    return 1;
}

/* Reads ID/job.json and ID/history.jsonl back; NULL (with a line on stderr) when damaged. */
static job *record_load(const job_runner *r, const char *id)
{
    char path[JOB_PATH_MAX], err[HYPER_ERRMSG_MAX];
    job_path(r, id, "job.json", path, sizeof path);
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    job *j = calloc(1, sizeof *j);
    if (!o || !j) {
        hyper_log(HYPER_LOG_WARN, "job %s: cannot read its record: %s", id, o ? "out of memory" : je.text);
        json_decref(o);
        free(j);
        return NULL;
    }
    job_info *i = &j->info;
    snprintf(i->id, sizeof i->id, "%s", id);
    if (job_spec_from_json(json_object_get(o, "spec"), &i->spec, err) != HYPER_OK) {
        hyper_log(HYPER_LOG_WARN, "job %s: its spec is damaged: %s", id, err);
        json_decref(o);
        free(j);
        return NULL;
    }
    i->seq = json_integer_value(json_object_get(o, "seq"));
    i->state = state_parse(json_string_value(json_object_get(o, "state")));
    i->created_ms = json_integer_value(json_object_get(o, "created_ms"));
    i->started_ms = json_integer_value(json_object_get(o, "started_ms"));
    i->finished_ms = json_integer_value(json_object_get(o, "finished_ms"));
    i->step = json_integer_value(json_object_get(o, "step"));
    i->steps = json_integer_value(json_object_get(o, "steps"));
    i->train_loss = num_of(json_object_get(o, "train_loss"), NAN);
    i->val_loss = num_of(json_object_get(o, "val_loss"), NAN);
    i->items_per_sec = num_of(json_object_get(o, "items_per_sec"), NAN);
    i->elapsed = num_of(json_object_get(o, "elapsed"), NAN);
    i->eta = NAN;
    json_t *cs = json_object_get(o, "checkpoint_step");
    i->checkpoint_step = json_is_integer(cs) ? json_integer_value(cs) : -1;
    j->ckpt_crc = (uint32_t)json_integer_value(json_object_get(o, "checkpoint_crc32"));
    i->resumes = (int)json_integer_value(json_object_get(o, "resumes"));
    i->cancel_requested = json_is_true(json_object_get(o, "cancel_requested"));
    const char *e = json_string_value(json_object_get(o, "error"));
    snprintf(i->error, sizeof i->error, "%s", e ? e : "");
    json_decref(o);
    job_path(r, id, "history.jsonl", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[2048];
        while (fgets(line, sizeof line, f)) {
            json_t *p = json_loads(line, 0, NULL);
            job_point pt;
            if (p && point_from_json(p, &pt) == 0)
                history_push(j, &pt);
            json_decref(p);
        }
        fclose(f);
    }
    i->history = j->nhist;
    return j;
}

/* ---- the spec as JSON ---------------------------------------------------------------- */

/* A classifier spec's "model" object (new reference). */
static json_t *classifier_model_json(const clf_config *c)
{
    json_t *m = json_pack("{s:s, s:b}", "arch", clf_arch_str((clf_arch)c->arch), "wnorm", c->wnorm);
    const struct { const char *key; int32_t v; } f[] = {
        {"hidden", c->hidden}, {"channels", c->channels}, {"kernel", c->kernel}, {"embed", c->embed},
        {"gen_hidden", c->gen_hidden}, {"tile_rows", c->tile_rows}, {"tile_cols", c->tile_cols}};
    for (size_t k = 0; m && k < sizeof f / sizeof f[0]; k++)
        if (f[k].v > 0)   /* what the architecture does not use is 0 and left out */
            json_object_set_new(m, f[k].key, json_integer(f[k].v));
    return m;
}

json_t *job_spec_to_json(const job_spec *s)
{
    json_t *model = s->kind == JOB_CLASSIFIER ? classifier_model_json(&s->classifier) : json_pack("{s:s, s:i, s:i, s:i, s:i, s:f, s:i}", "cell", cell_kind_str((cell_kind)s->model.cell),
                              "layers", s->model.layers, "units", s->model.units, "hyper_units", s->model.hyper_units,
                              "embed", s->model.embed, "keep", s->train.keep, "mixtures", s->mixtures);
    json_t *train = json_pack("{s:I, s:i, s:i, s:f, s:f, s:I, s:i, s:i, s:I, s:f}", "steps", (json_int_t)s->train.steps,
                              "batch", s->train.batch, "seq", s->train.seq, "lr", s->train.lr, "clip", s->train.clip,
                              "seed", (json_int_t)s->train.seed, "eval_every", s->train.eval_every, "checkpoint_every",
                              s->train.checkpoint_every, "eval_limit", (json_int_t)s->train.eval_limit, "val_fraction",
                              s->val_fraction);
    if (s->epochs > 0) { /* the steps follow from the epochs when the data is read */
        json_object_del(train, "steps");
        json_object_set_new(train, "epochs", json_real(s->epochs));
    }
    if (s->kind == JOB_CLASSIFIER) {   /* a classifier has no sequences, and a fixed test split */
        json_object_del(train, "seq");
        json_object_del(train, "val_fraction");
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "kind", job_kind_str(s->kind), "dataset", s->dataset,
                          "model_name", s->model_name, "model", model, "train", train);
    if (s->init_from[0])
        json_object_set_new(o, "init_from", json_string(s->init_from));
    return o;
}

/* Field readers of job_spec_from_json: a missing field keeps the default; a present one
 * must have the right type and range, or err names it ("train.batch: ..."). */
static hyper_status get_int(const json_t *obj, const char *where, const char *key, int64_t lo, int64_t hi,
                            int64_t *out, char *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return HYPER_OK;
    if (!json_is_integer(v))
        return hyper_fail(err, HYPER_ERR_ARG, "%s%s: must be an integer", where, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return hyper_fail(err, HYPER_ERR_ARG, "%s%s: %lld is outside %lld..%lld", where, key, (long long)x,
                          (long long)lo, (long long)hi);
    *out = x;
    return HYPER_OK;
}

static hyper_status get_num(const json_t *obj, const char *where, const char *key, double lo, double hi,
                            int lo_open, double *out, char *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return HYPER_OK;
    if (!json_is_number(v))
        return hyper_fail(err, HYPER_ERR_ARG, "%s%s: must be a number", where, key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi) || (lo_open && x == lo))
        return hyper_fail(err, HYPER_ERR_ARG, "%s%s: %g is outside %s%g, %g]", where, key, x, lo_open ? "(" : "[",
                          lo, hi);
    *out = x;
    return HYPER_OK;
}

static hyper_status get_name(const json_t *obj, const char *key, char *out, int required, char *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return hyper_fail(err, HYPER_ERR_ARG, "%s: required", key);
        return HYPER_OK;
    }
    if (!json_is_string(v))
        return hyper_fail(err, HYPER_ERR_ARG, "%s: must be a string", key);
    const char *s = json_string_value(v);
    if (!model_name_valid(s))
        return hyper_fail(err, HYPER_ERR_ARG,
                          "%s: '%.64s' is not a valid name (1-63 of A-Z a-z 0-9 . _ -, not starting with a dot)", key, s);
    snprintf(out, JOB_NAME_MAX, "%s", s);
    return HYPER_OK;
}

static hyper_status only_fields(const json_t *obj, const char *where, const char *const *known, char *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++)
            ok = strcmp(key, known[k]) == 0;
        if (!ok)
            return hyper_fail(err, HYPER_ERR_ARG, "%s%s: unknown field", where, key);
    }
    return HYPER_OK;
}

/* The "model" object of a classifier job (m may be NULL: the defaults). */
static hyper_status classifier_from_json(const json_t *m, clf_config *c, char *err)
{
    static const char *const ck[] = {"arch",       "hidden",    "channels",  "kernel", "embed",
                                     "gen_hidden", "tile_rows", "tile_cols", "wnorm",  NULL};
    hyper_status st;
    if (m && (st = only_fields(m, "model.", ck, err)) != HYPER_OK)
        return st;
    const json_t *arch = m ? json_object_get(m, "arch") : NULL;
    clf_arch a = CLF_HYPERCONV;
    if (arch && (!json_is_string(arch) || clf_arch_parse(json_string_value(arch), &a) != 0))
        return hyper_fail(err, HYPER_ERR_ARG, "model.arch: must be one of mlp, hypermlp, conv, hyperconv");
    clf_config_default(c, a);
    const int given_embed = m && json_object_get(m, "embed") != NULL;
    struct { const char *key; int32_t *dst; } ints[] = {
        {"hidden", &c->hidden}, {"channels", &c->channels}, {"kernel", &c->kernel}, {"embed", &c->embed},
        {"gen_hidden", &c->gen_hidden}, {"tile_rows", &c->tile_rows}, {"tile_cols", &c->tile_cols}};
    for (size_t k = 0; m && k < sizeof ints / sizeof ints[0]; k++) {
        int64_t v = *ints[k].dst;
        if ((st = get_int(m, "model.", ints[k].key, 0, CLF_MAX_HIDDEN, &v, err)) != HYPER_OK)
            return st;
        *ints[k].dst = (int32_t)v;
    }
    if (given_embed && !json_object_get(m, "gen_hidden"))
        c->gen_hidden = c->embed;   /* d follows Z unless given */
    const json_t *wn = m ? json_object_get(m, "wnorm") : NULL;
    if (wn && !json_is_boolean(wn))
        return hyper_fail(err, HYPER_ERR_ARG, "model.wnorm: must be true or false");
    c->wnorm = wn && json_is_true(wn);
    char sub[HYPER_ERRMSG_MAX];
    if ((st = clf_config_check(c, sub)) != HYPER_OK)
        return hyper_fail(err, st, "model.%s", sub);
    return HYPER_OK;
}

hyper_status job_spec_from_json(const json_t *j, job_spec *s, char *err)
{
    job_spec_default(s);
    if (!json_is_object(j))
        return hyper_fail(err, HYPER_ERR_ARG, "the job spec must be a JSON object");
    static const char *const top[] = {"kind", "dataset", "model_name", "model", "train", "init_from", NULL};
    static const char *const mk[] = {"cell", "layers", "units", "hyper_units", "embed", "keep", "mixtures", NULL};
    static const char *const tk[] = {"steps", "epochs", "batch", "seq", "lr", "clip", "seed", "eval_every",
                                     "checkpoint_every", "eval_limit", "val_fraction", NULL};
    hyper_status st = only_fields(j, "", top, err);
    if (st != HYPER_OK)
        return st;
    const json_t *kind = json_object_get(j, "kind");
    const char *ks = json_is_string(kind) ? json_string_value(kind) : "";
    if (strcmp(ks, "charlm") != 0 && strcmp(ks, "handwriting") != 0 && strcmp(ks, "classifier") != 0)
        return hyper_fail(err, HYPER_ERR_ARG, "kind: must be \"charlm\", \"handwriting\" or \"classifier\"");
    s->kind = strcmp(ks, "classifier") == 0 ? JOB_CLASSIFIER : strcmp(ks, "handwriting") == 0 ? JOB_HANDWRITING : JOB_CHARLM;
    if (s->kind == JOB_CLASSIFIER) {   /* what suits a classifier, but the job's step count */
        const int64_t steps = s->train.steps;
        train_params_default_classifier(&s->train);
        s->train.steps = steps;
    }
    if ((st = get_name(j, "dataset", s->dataset, 1, err)) != HYPER_OK ||
        (st = get_name(j, "model_name", s->model_name, 1, err)) != HYPER_OK ||
        (st = get_name(j, "init_from", s->init_from, 0, err)) != HYPER_OK)
        return st;
    const json_t *m = json_object_get(j, "model"), *t = json_object_get(j, "train");
    if (m && !json_is_object(m))
        return hyper_fail(err, HYPER_ERR_ARG, "model: must be an object");
    if (t && !json_is_object(t))
        return hyper_fail(err, HYPER_ERR_ARG, "train: must be an object");
    int64_t v;
    if (s->kind == JOB_CLASSIFIER) {
        if ((st = classifier_from_json(m, &s->classifier, err)) != HYPER_OK)
            return st;
    } else if (m) {
        if ((st = only_fields(m, "model.", mk, err)) != HYPER_OK)
            return st;
        const json_t *cell = json_object_get(m, "cell");
        if (cell) {
            cell_kind ck;
            if (!json_is_string(cell) || cell_kind_parse(json_string_value(cell), &ck) != 0)
                return hyper_fail(err, HYPER_ERR_ARG, "model.cell: must be one of lstm, lnlstm, hyperlstm, lnhyperlstm");
            s->model.cell = ck;
        }
        struct { const char *key; int64_t lo, hi; int32_t *dst; } ints[] = {
            {"layers", 1, JOB_MAX_LAYERS, &s->model.layers}, {"units", 1, JOB_MAX_UNITS, &s->model.units},
            {"hyper_units", 1, JOB_MAX_HYPER_UNITS, &s->model.hyper_units}, {"embed", 1, JOB_MAX_EMBED, &s->model.embed},
            {"mixtures", 1, MDN_MAX_MIXTURES, &s->mixtures}};
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
            v = *ints[k].dst;
            if ((st = get_int(m, "model.", ints[k].key, ints[k].lo, ints[k].hi, &v, err)) != HYPER_OK)
                return st;
            *ints[k].dst = (int32_t)v;
        }
        if ((st = get_num(m, "model.", "keep", 0, 1, 1, &s->train.keep, err)) != HYPER_OK)
            return st;
    }
    if (t) {
        if ((st = only_fields(t, "train.", tk, err)) != HYPER_OK)
            return st;
        if (json_object_get(t, "steps") && json_object_get(t, "epochs"))
            return hyper_fail(err, HYPER_ERR_ARG, "train: give steps or epochs, not both");
        for (const char *const *k = (const char *const[]){"seq", "val_fraction", NULL}; *k; k++)
            if (s->kind == JOB_CLASSIFIER && json_object_get(t, *k))
                return hyper_fail(err, HYPER_ERR_ARG, "train.%s: classifier jobs have %s", *k,
                                  strcmp(*k, "seq") == 0 ? "no sequences" : "a fixed test split");
        struct { const char *key; int64_t lo, hi; } ints[] = {
            {"steps", 1, JOB_MAX_STEPS}, {"batch", 1, JOB_MAX_BATCH}, {"seq", 1, JOB_MAX_SEQ},
            {"seed", 0, INT64_MAX}, {"eval_every", 0, JOB_MAX_STEPS}, {"checkpoint_every", 0, JOB_MAX_STEPS},
            {"eval_limit", 0, INT64_C(1) << 40}};
        int64_t vals[7] = {s->train.steps, s->train.batch, s->train.seq, (int64_t)s->train.seed,
                           s->train.eval_every, s->train.checkpoint_every, s->train.eval_limit};
        for (size_t k = 0; k < 7; k++)
            if ((st = get_int(t, "train.", ints[k].key, ints[k].lo, ints[k].hi, &vals[k], err)) != HYPER_OK)
                return st;
        s->train.steps = vals[0];
        s->train.batch = (int32_t)vals[1];
        s->train.seq = (int32_t)vals[2];
        s->train.seed = (uint64_t)vals[3];
        s->train.eval_every = (int32_t)vals[4];
        s->train.checkpoint_every = (int32_t)vals[5];
        s->train.eval_limit = vals[6];
        if ((st = get_num(t, "train.", "lr", 0, 1, 1, &s->train.lr, err)) != HYPER_OK ||
            (st = get_num(t, "train.", "clip", 0, 1e6, 0, &s->train.clip, err)) != HYPER_OK ||
            (st = get_num(t, "train.", "epochs", 0, 1e4, 1, &s->epochs, err)) != HYPER_OK ||
            (st = get_num(t, "train.", "val_fraction", 0, 0.5, 0, &s->val_fraction, err)) != HYPER_OK)
            return st;
    }
    if (s->kind == JOB_HANDWRITING) {
        s->model.inputs = 3;
        s->model.outputs = mdn_outputs(s->mixtures);
    }
    return HYPER_OK;
}

/* ---- the runner ---------------------------------------------------------------------- */

static job *find_job(job_runner *r, const char *id)
{
    for (size_t k = 0; k < r->n; k++)
        if (strcmp(r->jobs[k]->info.id, id) == 0)
            return r->jobs[k];
    return NULL;
}

static ssize_t find_index(job_runner *r, const char *id)
{
    for (size_t k = 0; k < r->n; k++)
        if (strcmp(r->jobs[k]->info.id, id) == 0)
            return (ssize_t)k;
    return -1;
}

static int add_job(job_runner *r, job *j)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        job **nj = realloc(r->jobs, cap * sizeof *nj);
        if (!nj)
            return -1;
        r->jobs = nj;
        r->cap = cap;
    }
    r->jobs[r->n++] = j;
    return 0;
}

static void job_destroy(job *j)
{
    if (j) {
        free(j->hist);
        free(j);
    }
}

static uint32_t file_crc32(const char *path, int *ok)
{
    *ok = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uLong crc = crc32(0L, Z_NULL, 0);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crc = crc32(crc, buf, (uInt)n);
    *ok = !ferror(f);
    fclose(f);
    return (uint32_t)crc;
}

/* Pins or unpins the job's dataset (called with the lock held; idempotent). */
static void pin_dataset(job_runner *r, job *j, int pin)
{
    if (pin == j->pinned)
        return;
    if (pin && r->host.acquire_dataset(r->host.user, j->info.spec.dataset, 1) != HYPER_OK)
        return; /* gone: the job fails when it loads it, naming the dataset */
    if (!pin)
        r->host.acquire_dataset(r->host.user, j->info.spec.dataset, 0);
    j->pinned = pin;
}

/* Makes a checkpoint written to `next` the job's checkpoint: its CRC-32 goes into the record
 * first and only then is it renamed over `ckpt`.  A crash in between leaves a record that
 * names the new file by its checksum, and resume finds it under `next`.  Without the lock. */
static void checkpoint_commit(job_runner *r, job *j, const char *next, const char *ckpt, int64_t step)
{
    int ok = 0;
    uint32_t crc = file_crc32(next, &ok);
    if (!ok)
        return;
    pthread_mutex_lock(&r->mu);
    const int64_t old_step = j->info.checkpoint_step;
    const uint32_t old_crc = j->ckpt_crc;
    const int64_t old_done = j->info.step;
    j->info.checkpoint_step = step;
    j->info.step = step > old_done ? step : old_done;
    j->ckpt_crc = crc;
    int saved = record_save(r, j) == 0;
    if (!saved) {
        j->info.checkpoint_step = old_step;
        j->info.step = old_done;
        j->ckpt_crc = old_crc;
    }
    pthread_mutex_unlock(&r->mu);
    if (saved && rename(next, ckpt) == 0)
        fs_sync_parent_dir(ckpt);
}

/* What the trainer's report callback needs. */
typedef struct {
    job_runner *r;
    job *j;
    const char *next, *ckpt;        /* where the trainer writes, and where it then goes */
} run_ctx;

static int on_report(const train_progress *p, void *user)
{
    run_ctx *c = user;
    job *j = c->j;
    job_point pt = {p->step, p->steps, p->train_loss, p->val_loss, p->items_per_sec, p->elapsed, p->eta,
                    p->evaluated, wall_ms()};
    pthread_mutex_lock(&c->r->mu);
    history_push(j, &pt);
    history_append(c->r, j, &pt);
    job_info *i = &j->info;
    i->step = p->step;
    i->train_loss = p->train_loss;
    i->val_loss = p->val_loss;
    i->items_per_sec = p->items_per_sec;
    i->elapsed = p->elapsed;
    i->eta = p->eta;
    const int stop = i->cancel_requested || j->stop;
    pthread_cond_broadcast(&c->r->progress);
    pthread_mutex_unlock(&c->r->mu);
    /* after the report is in the history: a resume from this checkpoint keeps the points up
     * to it, so the report of its own step must be there first (outside the lock: it reads
     * the whole file) */
    if (p->checkpointed)
        checkpoint_commit(c->r, j, c->next, c->ckpt, p->step);
    return stop;
}

/* Training data of a job, loaded through the host. */
typedef struct {
    corpus text;
    stroke_corpus strokes;
    image_set images;
    train_data td;
} job_data;

static void job_data_free(job_data *d)
{
    corpus_free(&d->text);
    stroke_corpus_free(&d->strokes);
    image_set_free(&d->images);
}

/* Steps of an epochs-based spec: passes over the training characters or points. */
static int64_t epoch_steps(const job_spec *s, const job_data *d)
{
    double items = 0, per_step = (double)s->train.batch * s->train.seq;
    if (d->td.images) {
        items = d->images.n_train;
        per_step = s->train.batch;     /* images, not time steps */
    } else if (d->td.text) {
        items = (double)d->text.n_train;
    } else {
        for (int32_t k = 0; k < d->strokes.n_train; k++)
            items += d->strokes.set.lines[k].npoints - 1;
    }
    double steps = ceil(s->epochs * items / per_step);
    return steps < 1 ? 1 : (steps > JOB_MAX_STEPS ? JOB_MAX_STEPS : (int64_t)steps);
}

/* Refuses a run whose memory (the training workspace, weights, gradient and Adam moments)
 * exceeds JOB_MAX_TRAIN_BYTES, before anything is allocated. */
static hyper_status check_train_memory(const job_spec *s, const model_config *cfg, const train_params *tp,
                                       char *err)
{
    double ws, weights;
    if (s->kind == JOB_CLASSIFIER) {
        clf_counts n;
        clf_param_counts(&s->classifier, &n);
        ws = (double)clf_ws_bytes(&s->classifier, tp->batch > CLF_EVAL_BATCH ? tp->batch : CLF_EVAL_BATCH);
        weights = 4.0 * (double)n.total * sizeof(real);
    } else {
        ws = (double)model_train_ws_bytes(cfg, tp->batch, tp->seq);
        weights = 4.0 * (double)model_param_count(cfg) * sizeof(real);
    }
    if (ws + weights > (double)JOB_MAX_TRAIN_BYTES)
        return hyper_fail(err, HYPER_ERR_ARG,
                          "model and train: this size, batch and seq need %.1f GiB to train; at most %.1f GiB "
                          "(lower units, batch or seq)", (ws + weights) / (1 << 30),
                          (double)JOB_MAX_TRAIN_BYTES / (1 << 30));
    return HYPER_OK;
}

/* Runs one job to its end (or to a stop); called by a worker without the lock. */
static void run_job(job_runner *r, job *j)
{
    char err[HYPER_ERRMSG_MAX] = "", ckpt[JOB_PATH_MAX], next[JOB_PATH_MAX], out[JOB_PATH_MAX];
    char init[JOB_PATH_MAX];
    job_spec spec = j->info.spec; /* the spec never changes after submission */
    job_path(r, j->info.id, "model.train", ckpt, sizeof ckpt);
    job_path(r, j->info.id, "model.train.next", next, sizeof next);
    snprintf(out, sizeof out, "%s/%s.safetensors", r->models_dir, spec.model_name);
    job_data d;
    memset(&d, 0, sizeof d);
    trainer *t = NULL;
    hyper_status st = HYPER_OK;
    int resume = j->info.checkpoint_step >= 0;
    /* the vocabulary a character run must keep: its checkpoint's, or the starting model's */
    vocab voc = {0, NULL};
    model init_m;
    int have_init = 0;
    if (resume) {
        int ok = 0;
        uint32_t crc = file_crc32(ckpt, &ok);
        if (!ok || crc != j->ckpt_crc) {
            /* a crash between recording a new checkpoint and renaming it into place */
            int ok2 = 0;
            if (file_crc32(next, &ok2) == j->ckpt_crc && ok2 && rename(next, ckpt) == 0) {
                ok = 1;
                crc = j->ckpt_crc;
            }
        }
        if (!ok || crc != j->ckpt_crc) {
            hyper_log(HYPER_LOG_WARN, "job %s: its checkpoint is %s; starting over", j->info.id,
                              ok ? "damaged (CRC-32 differs)" : "missing");
            resume = 0;
        } else if (spec.kind == JOB_CHARLM) {
            model tmp;
            if ((st = checkpoint_load(ckpt, &tmp, &voc, err)) == HYPER_OK)
                model_free(&tmp);
        }
    }
    if (st == HYPER_OK && !resume && spec.init_from[0]) {
        if (!r->host.model_path(r->host.user, spec.init_from, init, sizeof init))
            st = hyper_fail(err, HYPER_ERR_NOT_FOUND, "init_from: no model named '%s' is served", spec.init_from);
        else if ((st = checkpoint_load(init, &init_m, spec.kind == JOB_CHARLM ? &voc : NULL, err)) == HYPER_OK)
            have_init = 1;
    }
    if (st == HYPER_OK) {
        if (spec.kind == JOB_CLASSIFIER) {
            st = r->host.load_images(r->host.user, spec.dataset, &d.images, err);
            d.td.images = &d.images;
        } else if (spec.kind == JOB_CHARLM) {
            st = r->host.load_text(r->host.user, spec.dataset, voc.size ? &voc : NULL, spec.val_fraction, &d.text, err);
            d.td.text = &d.text;
        } else {
            st = r->host.load_strokes(r->host.user, spec.dataset, spec.val_fraction, &d.strokes, err);
            d.td.strokes = &d.strokes;
        }
    }
    train_params tp = spec.train;
    model_config cfg = spec.model;
    if (st == HYPER_OK) {
        if (spec.epochs > 0)
            tp.steps = epoch_steps(&spec, &d);
        if (spec.kind == JOB_CHARLM)
            cfg.outputs = d.text.voc.size;
        if (have_init)
            cfg = init_m.cfg; /* a fine-tune keeps the starting model's shape */
        pthread_mutex_lock(&r->mu);
        j->info.steps = tp.steps;
        record_save(r, j);
        pthread_mutex_unlock(&r->mu);
        st = check_train_memory(&spec, &cfg, &tp, err);
    }
    if (st == HYPER_OK) {
        if (resume) {
            st = trainer_resume(&t, ckpt, &tp, &d.td, err);
        } else {
            st = spec.kind == JOB_CLASSIFIER ? trainer_new_classifier(&t, &spec.classifier, &tp, &d.td, err)
                                             : trainer_new(&t, &cfg, &tp, &d.td, err);
            if (st == HYPER_OK && have_init)
                st = trainer_set_weights(t, &init_m, err);
        }
    }
    if (have_init)
        model_free(&init_m);
    vocab_free(&voc);
    if (st == HYPER_OK) {
        /* reports past the checkpoint will come again; a run that starts over (no usable
         * checkpoint after a restart) keeps none of the earlier ones */
        pthread_mutex_lock(&r->mu);
        const int64_t done = resume ? trainer_steps_done(t) : 0;
        size_t keep = 0;
        while (keep < j->nhist && j->hist[keep].step <= done)
            keep++;
        if (keep != j->nhist) {
            j->nhist = keep;
            j->info.history = keep;
            history_rewrite(r, j);
        }
        if (!resume && (j->info.step != 0 || j->info.checkpoint_step >= 0)) {
            j->info.step = 0;
            j->info.checkpoint_step = -1;
            record_save(r, j);
        }
        pthread_mutex_unlock(&r->mu);
        run_ctx c = {r, j, next, ckpt};
        int64_t every = tp.steps / JOB_REPORTS;
        trainer_set_stop_flag(t, &j->halt);
        st = trainer_run(t, (int32_t)(every < 1 ? 1 : (every > 1000 ? 1000 : every)), on_report, &c, next, err);
    }
    pthread_mutex_lock(&r->mu);
    const int stopping = j->stop, cancelled = j->info.cancel_requested;
    pthread_mutex_unlock(&r->mu);
    if (st == HYPER_ERR_CANCELLED && stopping && !cancelled) {
        /* a shutdown: keep the progress and leave the job resumable */
        char sub[HYPER_ERRMSG_MAX];
        if (trainer_save_checkpoint(t, next, sub) == HYPER_OK)
            checkpoint_commit(r, j, next, ckpt, trainer_steps_done(t));
        trainer_free(t);
        job_data_free(&d);
        return;
    }
    job_state end = JOB_FAILED;
    if (st == HYPER_OK) {
        st = trainer_save_model(t, out, err);
        if (st == HYPER_OK && (st = r->host.publish_model(r->host.user, out, err)) != HYPER_OK)
            unlink(out); /* not served: it must neither block the name nor load at the next start */
        end = st == HYPER_OK ? JOB_SUCCEEDED : JOB_FAILED;
    } else if (st == HYPER_ERR_CANCELLED) {
        end = JOB_CANCELLED;
        err[0] = 0;
    }
    trainer_free(t);
    job_data_free(&d);
    pthread_mutex_lock(&r->mu);
    pin_dataset(r, j, 0);
    j->info.state = end;
    j->info.finished_ms = wall_ms();
    j->info.eta = 0;
    snprintf(j->info.error, sizeof j->info.error, "%s", end == JOB_FAILED ? err : "");
    record_save(r, j);
    pthread_cond_broadcast(&r->progress);
    pthread_mutex_unlock(&r->mu);
    /* the checkpoint is only for resuming; a finished job does not need it */
    unlink(next);
    if (end != JOB_FAILED)
        unlink(ckpt);
}

static void *worker_main(void *arg)
{
    job_runner *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        job *next = NULL;
        for (size_t k = 0; k < r->n && !next; k++)
            if (r->jobs[k]->info.state == JOB_QUEUED)
                next = r->jobs[k];
        if (!next) {
            pthread_cond_wait(&r->work, &r->mu);
            continue;
        }
        next->info.state = JOB_RUNNING;
        if (!next->info.started_ms)
            next->info.started_ms = wall_ms();
        record_save(r, next);
        pthread_cond_broadcast(&r->progress);
        pthread_mutex_unlock(&r->mu);
        run_job(r, next);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int cmp_seq(const void *a, const void *b)
{
    const job *x = *(job *const *)a, *y = *(job *const *)b;
    return (x->info.seq > y->info.seq) - (x->info.seq < y->info.seq);
}

hyper_status job_runner_open(job_runner **out, const char *dir, const char *models_dir, int workers,
                             int train_threads, const job_host *host, char *err)
{
    *out = NULL;
    if (workers < 0 || workers > JOBS_MAX_WORKERS)
        return hyper_fail(err, HYPER_ERR_ARG, "train workers: %d is outside 0..%d", workers, JOBS_MAX_WORKERS);
    job_runner *r = calloc(1, sizeof *r);
    if (!r)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    if (snprintf(r->dir, sizeof r->dir, "%s", dir) >= (int)sizeof r->dir ||
        snprintf(r->models_dir, sizeof r->models_dir, "%s", models_dir) >= (int)sizeof r->models_dir) {
        free(r);
        return hyper_fail(err, HYPER_ERR_ARG, "%s: path too long", dir);
    }
    for (const char *d = dir; d; d = d == dir ? models_dir : NULL)
        if (mkdir(d, 0755) != 0 && errno != EEXIST) {
            hyper_status st = hyper_fail(err, HYPER_ERR_IO, "%s: %s", d, strerror(errno));
            free(r);
            return st;
        }
    r->host = *host;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->progress, NULL);
    DIR *dp = opendir(dir);
    struct dirent *de;
    while (dp && (de = readdir(dp))) {
        if (!id_valid(de->d_name))
            continue;
        job *j = record_load(r, de->d_name);
        if (!j)
            continue;
        if (j->info.state == JOB_RUNNING || j->info.state == JOB_QUEUED) {
            if (j->info.state == JOB_RUNNING)
                j->info.resumes++;
            j->info.state = j->info.cancel_requested ? JOB_CANCELLED : JOB_QUEUED;
            if (j->info.state == JOB_CANCELLED)
                j->info.finished_ms = wall_ms();
            record_save(r, j);
        }
        if (!job_state_finished(j->info.state))
            pin_dataset(r, j, 1);
        if (add_job(r, j) != 0) {
            pin_dataset(r, j, 0);
            job_destroy(j);
        }
        else if (j->info.seq >= r->next_seq)
            r->next_seq = j->info.seq + 1;
    }
    if (dp)
        closedir(dp);
    if (r->n > 1) /* r->jobs is NULL when there are none */
        qsort(r->jobs, r->n, sizeof *r->jobs, cmp_seq);
    math_set_threads(train_threads < 1 ? 1 : train_threads);
    for (int k = 0; k < workers; k++) {
        if (pthread_create(&r->threads[k], NULL, worker_main, r) != 0)
            break;
        r->nthreads++;
    }
    *out = r;
    return HYPER_OK;
}

void job_runner_free(job_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = 1;
    for (size_t k = 0; k < r->n; k++) {
        r->jobs[k]->stop = 1;
        atomic_store(&r->jobs[k]->halt, 1);
    }
    pthread_cond_broadcast(&r->work);
    pthread_cond_broadcast(&r->progress);
    pthread_mutex_unlock(&r->mu);
    for (int k = 0; k < r->nthreads; k++)
        pthread_join(r->threads[k], NULL);
    for (size_t k = 0; k < r->n; k++) {
        pin_dataset(r, r->jobs[k], 0); /* pinned again when they are read back */
        job_destroy(r->jobs[k]);
    }
    free(r->jobs);
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->progress);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void new_id(char *id)
{
    unsigned char b[JOB_ID_LEN / 2];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t x = (uint64_t)wall_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)id;
        memcpy(b, &x, sizeof b);
    }
    for (size_t k = 0; k < sizeof b; k++)
        sprintf(id + 2 * k, "%02x", b[k]);
}

hyper_status job_submit(job_runner *r, const job_spec *spec, job_info *info, char *err)
{
    job_spec s = *spec;
    if (!s.dataset[0] || !s.model_name[0])
        return hyper_fail(err, HYPER_ERR_ARG, "dataset and model_name are required");
    if (s.epochs <= 0 && (s.train.steps < 1 || s.train.steps > JOB_MAX_STEPS))
        return hyper_fail(err, HYPER_ERR_ARG, "train.steps: %" PRId64 " is outside 1..%d", s.train.steps, JOB_MAX_STEPS);
    train_params tp = s.train;
    if (s.epochs > 0)
        tp.steps = 1;
    hyper_status st = train_params_check(&tp, err);
    if (st != HYPER_OK)
        return st;
    model_config cfg = s.model;
    if (s.kind == JOB_CHARLM)
        cfg.outputs = 2; /* the vocabulary is known when the data is read */
    char sub[HYPER_ERRMSG_MAX];
    if (s.kind == JOB_CLASSIFIER) {
        if ((st = clf_config_check(&s.classifier, sub)) != HYPER_OK)
            return hyper_fail(err, st, "model.%s", sub);
        if (s.init_from[0])
            return hyper_fail(err, HYPER_ERR_ARG, "init_from: classifier jobs start from fresh weights");
        if (s.train.batch > CLF_MAX_BATCH)
            return hyper_fail(err, HYPER_ERR_ARG, "train.batch: %d is above the classifiers' limit of %d",
                              s.train.batch, CLF_MAX_BATCH);
    } else if ((st = model_config_check(&cfg, sub)) != HYPER_OK)
        return hyper_fail(err, st, "model: %s", sub);
    if (s.kind == JOB_CHARLM)
        cfg.outputs = JOB_VOCAB_ESTIMATE;
    if ((st = check_train_memory(&s, &cfg, &tp, err)) != HYPER_OK)
        return st;
    if ((st = r->host.check_dataset(r->host.user, s.dataset, s.kind, err)) != HYPER_OK)
        return st;
    if (s.init_from[0]) {
        char path[JOB_PATH_MAX];
        checkpoint *ck = NULL;
        if (!r->host.model_path(r->host.user, s.init_from, path, sizeof path))
            return hyper_fail(err, HYPER_ERR_NOT_FOUND, "init_from: no model named '%s' is served", s.init_from);
        if ((st = checkpoint_open_tensors(path, &ck, sub)) != HYPER_OK)
            return hyper_fail(err, HYPER_ERR_ARG, "init_from: %s", sub);
        if (clf_is_classifier_file(ck)) {
            checkpoint_close(ck);
            return hyper_fail(err, HYPER_ERR_ARG, "init_from: '%s' is a classifier, not a %s model", s.init_from,
                              s.kind == JOB_HANDWRITING ? "handwriting" : "character");
        }
        if ((st = checkpoint_check_model(ck, sub)) != HYPER_OK) {
            checkpoint_close(ck);
            return hyper_fail(err, HYPER_ERR_ARG, "init_from: %s", sub);
        }
        const model_config *ic = checkpoint_config(ck);
        int hw = ic->inputs == 3 && mdn_mixtures(ic->outputs) > 0, text = ic->inputs == 0;
        checkpoint_close(ck);
        if ((s.kind == JOB_HANDWRITING && !hw) || (s.kind == JOB_CHARLM && !text))
            return hyper_fail(err, HYPER_ERR_ARG, "init_from: '%s' is not a %s model", s.init_from,
                              s.kind == JOB_HANDWRITING ? "handwriting" : "character");
    }
    pthread_mutex_lock(&r->mu);
    if (r->stopping) {
        pthread_mutex_unlock(&r->mu);
        return hyper_fail(err, HYPER_ERR_CONFLICT, "the server is shutting down");
    }
    int taken = r->host.model_exists(r->host.user, s.model_name);
    for (size_t k = 0; k < r->n && !taken; k++)
        taken = !job_state_finished(r->jobs[k]->info.state) && strcmp(r->jobs[k]->info.spec.model_name, s.model_name) == 0;
    if (taken || r->n >= JOBS_MAX) {
        pthread_mutex_unlock(&r->mu);
        return taken ? hyper_fail(err, HYPER_ERR_CONFLICT, "model_name: a model named '%s' exists or is being trained", s.model_name)
                     : hyper_fail(err, HYPER_ERR_CONFLICT, "%d jobs are kept; delete finished ones first", JOBS_MAX);
    }
    job *j = calloc(1, sizeof *j);
    if (!j || add_job(r, j) != 0) {
        pthread_mutex_unlock(&r->mu);
        free(j);
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    }
    job_info *i = &j->info;
    do
        new_id(i->id);
    while (find_index(r, i->id) != (ssize_t)r->n - 1);
    i->spec = s;
    i->state = JOB_QUEUED;
    i->created_ms = wall_ms();
    i->seq = r->next_seq++;
    i->steps = s.epochs > 0 ? 0 : s.train.steps;
    i->train_loss = i->val_loss = i->items_per_sec = i->elapsed = i->eta = NAN;
    i->checkpoint_step = -1;
    char path[JOB_PATH_MAX];
    job_path(r, i->id, NULL, path, sizeof path);
    if (mkdir(path, 0755) != 0) {
        const int e = errno;
        r->n--;
        pthread_mutex_unlock(&r->mu);
        free(j);
        return hyper_fail(err, fs_errno_status(e), "cannot record the job: %s: %s", path, strerror(e));
    }
    /* acknowledged only once recorded: a job that cannot be written is refused, and leaves
     * nothing behind */
    hyper_status why;
    char cause[HYPER_ERRMSG_MAX];
    if (record_save_why(r, j, &why, cause) != 0) {
        r->n--;
        rmdir(path);
        pthread_mutex_unlock(&r->mu);
        free(j);
        return hyper_fail(err, why, "cannot record the job: %s", cause);
    }
    pin_dataset(r, j, 1);
    *info = *i;
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->mu);
    return HYPER_OK;
}

hyper_status job_get(job_runner *r, const char *id, job_info *out)
{
    pthread_mutex_lock(&r->mu);
    job *j = find_job(r, id);
    if (j)
        *out = j->info;
    pthread_mutex_unlock(&r->mu);
    return j ? HYPER_OK : HYPER_ERR_NOT_FOUND;
}

size_t job_list(job_runner *r, size_t offset, size_t max, char (*ids)[JOB_ID_LEN + 1])
{
    pthread_mutex_lock(&r->mu);
    size_t total = r->n;
    for (size_t k = 0; k < max && offset + k < r->n; k++)
        memcpy(ids[k], r->jobs[offset + k]->info.id, JOB_ID_LEN + 1);
    pthread_mutex_unlock(&r->mu);
    return total;
}

size_t job_history(job_runner *r, const char *id, size_t from, job_point *out, size_t max, size_t *total,
                   job_state *state)
{
    size_t got = 0;
    pthread_mutex_lock(&r->mu);
    job *j = find_job(r, id);
    if (j) {
        for (; got < max && from + got < j->nhist; got++)
            out[got] = j->hist[from + got];
        if (total)
            *total = j->nhist;
        if (state)
            *state = j->info.state;
    }
    pthread_mutex_unlock(&r->mu);
    return got;
}

int job_wait(job_runner *r, const char *id, size_t known, int64_t timeout_ms)
{
    struct timespec until = hyper_deadline(timeout_ms);
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    for (;;) {
        job *j = find_job(r, id);
        if (!j) {
            rc = -1;
            break;
        }
        if (j->nhist > known || job_state_finished(j->info.state) || r->stopping) {
            rc = 1;
            break;
        }
        if (pthread_cond_timedwait(&r->progress, &r->mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

hyper_status job_cancel(job_runner *r, const char *id, job_info *out)
{
    pthread_mutex_lock(&r->mu);
    job *j = find_job(r, id);
    if (j && !job_state_finished(j->info.state)) {
        j->info.cancel_requested = 1;
        atomic_store(&j->halt, 1);
        if (j->info.state == JOB_QUEUED) {
            j->info.state = JOB_CANCELLED;
            j->info.finished_ms = wall_ms();
            pin_dataset(r, j, 0);
        }
        record_save(r, j);
        pthread_cond_broadcast(&r->progress);
    }
    if (j && out)
        *out = j->info;
    pthread_mutex_unlock(&r->mu);
    return j ? HYPER_OK : HYPER_ERR_NOT_FOUND;
}

hyper_status job_delete(job_runner *r, const char *id, char *err)
{
    pthread_mutex_lock(&r->mu);
    ssize_t k = find_index(r, id);
    if (k < 0) {
        pthread_mutex_unlock(&r->mu);
        return hyper_fail(err, HYPER_ERR_NOT_FOUND, "no job %s", id);
    }
    job *j = r->jobs[k];
    if (!job_state_finished(j->info.state)) {
        pthread_mutex_unlock(&r->mu);
        return hyper_fail(err, HYPER_ERR_CONFLICT, "job %s is %s; cancel it first", id, job_state_str(j->info.state));
    }
    memmove(r->jobs + k, r->jobs + k + 1, (r->n - (size_t)k - 1) * sizeof *r->jobs);
    r->n--;
    char path[JOB_PATH_MAX];
    job_path(r, id, NULL, path, sizeof path);
    pthread_cond_broadcast(&r->progress);
    pthread_mutex_unlock(&r->mu);
    job_destroy(j);
    if (fs_remove_tree(path) != 0)
        hyper_log(HYPER_LOG_WARN, "job %s: cannot remove %s: %s", id, path, strerror(errno));
    return HYPER_OK;
}

void job_counts(job_runner *r, int *queued, int *running)
{
    int q = 0, run = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t k = 0; k < r->n; k++) {
        q += r->jobs[k]->info.state == JOB_QUEUED;
        run += r->jobs[k]->info.state == JOB_RUNNING;
    }
    pthread_mutex_unlock(&r->mu);
    *queued = q;
    *running = run;
}
