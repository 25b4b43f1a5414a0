/*
 * test_records.c — what records are written with: the shortest round-trip printer of reals
 * (json_real_format, json_text), the job spec read back exactly as it was written (a
 * property test over random valid specs of every kind), and the file-system pieces of a
 * data directory (the temporaries' pattern, the sweep, the lock, the status of a full disk)
 * and the local store of named records.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fsutil.h"
#include "jobs.h"
#include "jsonutil.h"
#include "store.h"

/* ---- the printer ------------------------------------------------------------------------- */

START_TEST(reals_print_short_and_read_back_equal)
{
    const struct { double x; const char *want; } known[] = {
        {0.9, "0.9"}, {0.1, "0.1"}, {1.0 / 3000, "0.0003333333333333333"}, {1.0, "1.0"},
        {-2.0, "-2.0"}, {1e21, "1e+21"}, {2e-3, "0.002"}, {0.05, "0.05"}, {-0.0, "-0.0"},
        {5e-324, "4.94065645841247e-324"}, {1e16, "1e+16"}};
    char buf[40];
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        json_real_format(known[k].x, buf, sizeof buf);
        ck_assert_msg(strcmp(buf, known[k].want) == 0, "%.17g printed '%s', want '%s'", known[k].x, buf,
                      known[k].want);
    }
    json_real_format(NAN, buf, sizeof buf);
    ck_assert_str_eq(buf, "null");
    /* random doubles of every magnitude: read back bit for bit, never longer than %.17g */
    hyper_rng rng;
    hyper_rng_seed(&rng, 7);
    for (int k = 0; k < 200000; k++) {
        uint64_t bits = hyper_rng_next(&rng);
        double x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x))
            continue;
        int n = json_real_format(x, buf, sizeof buf);
        double back = strtod(buf, NULL);
        ck_assert_msg(memcmp(&back, &x, sizeof x) == 0 || (x == 0 && back == 0),
                      "%.17g printed '%s' reads back as %.17g", x, buf, back);
        ck_assert_msg(n > 0 && n <= 25 && strpbrk(buf, ".e"), "%.17g printed '%s'", x, buf);
    }
}
END_TEST

START_TEST(json_text_rewrites_reals_only)
{
    json_t *j = json_pack("{s:f, s:f, s:I, s:s, s:[f, f, i], s:f}", "keep", 0.9, "lr", 1.0 / 3000, "n",
                          (json_int_t)12345678901234, "s", "0.90000000000000002 \"1.5\" -3e5", "a", 2.5, 1e-7,
                          -4, "one", 1.0);
    char *t = json_text(j, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "{\"a\":[2.5,1e-07,-4],\"keep\":0.9,\"lr\":0.0003333333333333333,\"n\":12345678901234,"
                        "\"one\":1.0,\"s\":\"0.90000000000000002 \\\"1.5\\\" -3e5\"}");
    json_t *back = json_loads(t, 0, NULL);
    ck_assert_msg(json_equal(j, back), "%s does not read back equal", t);
    ck_assert(json_is_real(json_object_get(back, "one")));
    free(t);
    /* a fixed precision is kept as jansson writes it */
    t = json_text(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(4));
    ck_assert_ptr_nonnull(strstr(t, "\"lr\":0.0003333,"));
    free(t);
    json_decref(back);
    json_decref(j);
}
END_TEST

/* ---- the job spec round trip -------------------------------------------------------------- */

static double uniform(hyper_rng *r) { return (double)(hyper_rng_next(r) >> 11) * 0x1.0p-53; }
static int64_t between(hyper_rng *r, int64_t lo, int64_t hi)
{
    /* in uint64_t: hi - lo + 1 overflows int64_t for 0..INT64_MAX (clang's UBSan) */
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1, x = hyper_rng_next(r);
    return (int64_t)((uint64_t)lo + (span ? x % span : x));
}
/* A real in (0, hi] that needs all its 17 digits, or a short one half the time. */
static double any_real(hyper_rng *r, double hi)
{
    double x = uniform(r) * hi;
    if (hyper_rng_next(r) & 1)
        x = round(x * 1000) / 1000;
    return x > 0 ? x : hi / 3;
}

/* A random spec that job_spec_from_json accepts: every kind, every field given or left out. */
static json_t *random_spec(hyper_rng *r)
{
    static const char *const kinds[] = {"charlm", "handwriting", "classifier"};
    static const char *const cells[] = {"lstm", "lnlstm", "hyperlstm", "lnhyperlstm"};
    static const char *const archs[] = {"mlp", "hypermlp", "conv", "hyperconv"};
    const char *kind = kinds[between(r, 0, 2)];
    json_t *s = json_pack("{s:s, s:s, s:s}", "kind", kind, "dataset", "data.set-1", "model_name", "m_2");
    json_t *m = json_object(), *t = json_object();
    const int clf = strcmp(kind, "classifier") == 0;
    if (clf) {
        const char *arch = archs[between(r, 0, 3)];
        json_object_set_new(m, "arch", json_string(arch));
        if (strncmp(arch, "hyper", 5) == 0 && (hyper_rng_next(r) & 1)) /* only generated weights */
            json_object_set_new(m, "wnorm", json_boolean(hyper_rng_next(r) & 1));
    } else {
        if (hyper_rng_next(r) & 1)
            json_object_set_new(m, "cell", json_string(cells[between(r, 0, 3)]));
        if (hyper_rng_next(r) & 1)
            json_object_set_new(m, "layers", json_integer(between(r, 1, JOB_MAX_LAYERS)));
        if (hyper_rng_next(r) & 1)
            json_object_set_new(m, "units", json_integer(between(r, 1, 300)));
        if (hyper_rng_next(r) & 1)
            json_object_set_new(m, "hyper_units", json_integer(between(r, 1, 64)));
        if (hyper_rng_next(r) & 1)
            json_object_set_new(m, "embed", json_integer(between(r, 1, 16)));
        if (hyper_rng_next(r) & 1)
            json_object_set_new(m, "keep", json_real(any_real(r, 1)));
        if (hyper_rng_next(r) & 1)
            json_object_set_new(m, "mixtures", json_integer(between(r, 1, 20)));
        if (hyper_rng_next(r) & 1)
            json_object_set_new(t, "seq", json_integer(between(r, 1, JOB_MAX_SEQ)));
        if (hyper_rng_next(r) & 1)
            json_object_set_new(t, "val_fraction", json_real(any_real(r, 0.5)));
    }
    if (hyper_rng_next(r) & 1)
        json_object_set_new(t, "epochs", json_real(any_real(r, 50)));
    else if (hyper_rng_next(r) & 1)
        json_object_set_new(t, "steps", json_integer(between(r, 1, JOB_MAX_STEPS)));
    const struct { const char *key; int64_t lo, hi; } ints[] = {
        {"batch", 1, 64}, {"seed", 0, INT64_MAX}, {"eval_every", 0, 1000}, {"checkpoint_every", 0, 1000},
        {"eval_limit", 0, 1 << 20}};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
        if (hyper_rng_next(r) & 1)
            json_object_set_new(t, ints[k].key, json_integer(between(r, ints[k].lo, ints[k].hi)));
    if (hyper_rng_next(r) & 1)
        json_object_set_new(t, "lr", json_real(any_real(r, 0.999)));
    if (hyper_rng_next(r) & 1)
        json_object_set_new(t, "clip", json_real(any_real(r, 100)));
    json_object_set_new(s, "model", m);
    json_object_set_new(s, "train", t);
    return s;
}

START_TEST(job_specs_read_back_exactly_as_written)
{
    hyper_rng rng;
    hyper_rng_seed(&rng, 11);
    char err[HYPER_ERRMSG_MAX];
    for (int k = 0; k < 2000; k++) {
        json_t *given = random_spec(&rng);
        char *given_text = json_text(given, JSON_COMPACT);
        job_spec a, b;
        ck_assert_msg(job_spec_from_json(given, &a, err) == HYPER_OK, "spec %s refused: %s", given_text, err);
        /* what a record holds: the spec as JSON, printed, read back */
        json_t *rec = job_spec_to_json(&a);
        char *text = json_text(rec, JSON_INDENT(1));
        json_t *back = json_loads(text, 0, NULL);
        ck_assert_msg(back != NULL, "the record does not parse: %s", text);
        ck_assert_msg(job_spec_from_json(back, &b, err) == HYPER_OK, "spec %s written as %s is refused on reading: %s",
                      given_text, text, err);
        json_t *again = job_spec_to_json(&b);
        ck_assert_msg(json_equal(rec, again), "spec %s: written %s, read back differently", given_text, text);
        /* the fields that drive a run, compared as numbers, not as text */
        ck_assert_msg(a.kind == b.kind && a.train.lr == b.train.lr && a.train.clip == b.train.clip &&
                          a.train.keep == b.train.keep && a.epochs == b.epochs && a.val_fraction == b.val_fraction &&
                          a.train.steps == b.train.steps && a.train.seed == b.train.seed &&
                          a.train.batch == b.train.batch && a.train.seq == b.train.seq &&
                          a.train.eval_limit == b.train.eval_limit && a.model.cell == b.model.cell &&
                          a.model.units == b.model.units && a.mixtures == b.mixtures &&
                          memcmp(&a.classifier, &b.classifier, sizeof a.classifier) == 0,
                      "spec %s: written %s, read back with other values", given_text, text);
        free(given_text);
        free(text);
        json_decref(given);
        json_decref(rec);
        json_decref(back);
        json_decref(again);
    }
}
END_TEST

/* ---- the data directory's files ---------------------------------------------------------- */

START_TEST(temporaries_are_known_by_their_pattern)
{
    ck_assert(fs_is_temporary("job.json.tmp.Ab3xYz"));
    ck_assert(fs_is_temporary("model.safetensors.tmp.000000"));
    ck_assert(fs_is_temporary("a.tmp.b.tmp.QWERTY"));
    ck_assert(!fs_is_temporary(".tmp.Ab3xYz"));          /* no file it belongs to */
    ck_assert(!fs_is_temporary("job.json.tmp.Ab3xY"));   /* five characters */
    ck_assert(!fs_is_temporary("job.json.tmp.Ab3xYz7"));
    ck_assert(!fs_is_temporary("job.json.tmp.Ab3-Yz"));
    ck_assert(!fs_is_temporary("notes.tmp"));
    ck_assert(!fs_is_temporary("job.json"));
}
END_TEST

static void touch(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs("x", f);
    fclose(f);
}

static int exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

START_TEST(the_sweep_removes_only_temporaries)
{
    char dir[] = "/tmp/hyper-sweep-XXXXXX", sub[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/jobs", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    touch(dir, "a.json.tmp.abcdef");
    touch(sub, "job.json.tmp.ZZ9zz9");
    touch(sub, "job.json");
    touch(dir, "keep.tmp.abc");
    touch(dir, "a.json");
    ck_assert_int_eq(fs_sweep_temporaries(dir), 2);
    ck_assert(!exists(dir, "a.json.tmp.abcdef") && !exists(sub, "job.json.tmp.ZZ9zz9"));
    ck_assert(exists(sub, "job.json") && exists(dir, "keep.tmp.abc") && exists(dir, "a.json"));
    ck_assert_int_eq(fs_sweep_temporaries(dir), 0);
    fs_remove_tree(dir);
}
END_TEST

START_TEST(a_lock_is_held_by_one_process)
{
    char dir[] = "/tmp/hyper-lock-XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/hyperd.lock", dir);
    long holder = -1;
    int fd = fs_lock_file(path, &holder);
    ck_assert_int_ge(fd, 0);
    pid_t child = fork();
    if (child == 0) { /* another process: refused, told who holds it */
        long h = 0;
        int f = fs_lock_file(path, &h);
        _exit(f < 0 && errno == EWOULDBLOCK && h == (long)getppid() ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a second process took the lock");
    close(fd); /* released: the next one gets it */
    fd = fs_lock_file(path, &holder);
    ck_assert_int_ge(fd, 0);
    close(fd);
    fs_remove_tree(dir);
}
END_TEST

START_TEST(a_full_disk_is_its_own_status)
{
    ck_assert_int_eq(fs_errno_status(ENOSPC), HYPER_ERR_NOSPACE);
    ck_assert_int_eq(fs_errno_status(EDQUOT), HYPER_ERR_NOSPACE);
    ck_assert_int_eq(fs_errno_status(EACCES), HYPER_ERR_IO);
    ck_assert_str_eq(hyper_status_str(HYPER_ERR_NOSPACE), "no space left");
}
END_TEST

/* ---- the store ------------------------------------------------------------------------------ */

static int has_key(char **keys, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i], k))
            return 1;
    return 0;
}

START_TEST(the_local_store_keeps_named_records)
{
    char dir[] = "/tmp/hyper-store-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char root[600], err[HYPER_ERRMSG_MAX];
    snprintf(root, sizeof root, "%s/data", dir); /* made by the open */
    store *st = NULL;
    ck_assert_msg(store_open_local(&st, root, err) == HYPER_OK, "%s", err);
    /* a namespace that was never written lists nothing */
    char **keys = NULL;
    size_t n = 7;
    ck_assert_int_eq(store_list(st, "sessions", &keys, &n, err), HYPER_OK);
    ck_assert_uint_eq(n, 0);
    /* prepare makes a namespace ready before anything is written to it */
    char nsdir[700];
    snprintf(nsdir, sizeof nsdir, "%s/jobs", root);
    ck_assert_int_eq(store_prepare(st, "jobs", err), HYPER_OK);
    struct stat sb;
    ck_assert(stat(nsdir, &sb) == 0 && S_ISDIR(sb.st_mode));
    /* put, get, replace: the reader sees the whole record, old or new */
    ck_assert_msg(store_put(st, "sessions", "a.json", "{\"v\": 1}", 8, err) == HYPER_OK, "%s", err);
    char *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(store_get(st, "sessions", "a.json", 1024, &data, &len, err), HYPER_OK);
    ck_assert_uint_eq(len, 8);
    ck_assert_str_eq(data, "{\"v\": 1}");
    free(data);
    ck_assert_int_eq(store_put(st, "sessions", "a.json", "{\"v\": 22}", 9, err), HYPER_OK);
    ck_assert_int_eq(store_get(st, "sessions", "a.json", 1024, &data, &len, err), HYPER_OK);
    ck_assert_str_eq(data, "{\"v\": 22}");
    free(data);
    /* it is a file of the data directory, where earlier versions kept it */
    char path[700];
    snprintf(path, sizeof path, "%s/sessions/a.json", root);
    ck_assert_int_eq(access(path, R_OK), 0);
    /* bounded reads, missing records */
    ck_assert_int_eq(store_get(st, "sessions", "a.json", 4, &data, &len, err), HYPER_ERR_TOO_LARGE);
    ck_assert_int_eq(store_get(st, "sessions", "b.json", 1024, &data, &len, err), HYPER_ERR_NOT_FOUND);
    ck_assert_ptr_null(data);
    /* list: records only, not temporaries (a crash's) nor names the store never writes */
    ck_assert_int_eq(store_put(st, "sessions", "b.json", "{}", 2, err), HYPER_OK);
    snprintf(path, sizeof path, "%s/sessions", root);
    touch(path, "c.json.tmp.Ab3xYz");
    touch(path, ".hidden");
    ck_assert_int_eq(store_list(st, "sessions", &keys, &n, err), HYPER_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert(has_key(keys, n, "a.json") && has_key(keys, n, "b.json"));
    store_keys_free(keys, n);
    /* delete */
    ck_assert_int_eq(store_del(st, "sessions", "a.json", err), HYPER_OK);
    ck_assert_int_eq(store_del(st, "sessions", "a.json", err), HYPER_ERR_NOT_FOUND);
    ck_assert_int_eq(store_get(st, "sessions", "a.json", 1024, &data, &len, err), HYPER_ERR_NOT_FOUND);
    /* names that could leave the namespace, hide, or pass for a temporary are refused */
    static const char *const bad[] = {"", "../x", "a/b", ".hidden", "x.tmp.Ab3xYz", "a b", NULL};
    for (int k = 0; bad[k]; k++) {
        ck_assert_msg(store_put(st, "sessions", bad[k], "x", 1, err) == HYPER_ERR_ARG, "key '%s' accepted", bad[k]);
        ck_assert_msg(store_put(st, bad[k], "a.json", "x", 1, err) == HYPER_ERR_ARG, "namespace '%s' accepted",
                      bad[k]);
    }
    char longkey[STORE_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    ck_assert_int_eq(store_put(st, "sessions", longkey, "x", 1, err), HYPER_ERR_ARG);
    longkey[STORE_KEY_MAX] = 0;
    ck_assert_int_eq(store_put(st, "sessions", longkey, "x", 1, err), HYPER_OK);
    store_close(st);
    ck_assert_int_eq(fs_remove_tree(dir), 0);
}
END_TEST

Suite *records_suite(void)
{
    Suite *s = suite_create("records");
    TCase *tc = tcase_create("records");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reals_print_short_and_read_back_equal);
    tcase_add_test(tc, json_text_rewrites_reals_only);
    tcase_add_test(tc, job_specs_read_back_exactly_as_written);
    tcase_add_test(tc, temporaries_are_known_by_their_pattern);
    tcase_add_test(tc, the_sweep_removes_only_temporaries);
    tcase_add_test(tc, a_lock_is_held_by_one_process);
    tcase_add_test(tc, a_full_disk_is_its_own_status);
    tcase_add_test(tc, the_local_store_keeps_named_records);
    suite_add_tcase(s, tc);
    return s;
}
