/*
 * test_checkpoint.c — safetensors checkpoints of engine/checkpoint.h: bit-exact round trips
 * for every cell type, extra tensors and metadata, the atomic write, a file laid out by hand
 * the way Python's safetensors package writes one, and a long list of damaged files that
 * must each be refused with a message naming the file and the fault.
 *
 * The tests work in mkdtemp directories under /tmp, removed by the fixtures.
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"

/* é U+00E9, € U+20AC, 𝄞 U+1D11E as bytes; the text also holds characters that JSON must
 * escape (quote, backslash, newline, tab, a control character). */
#define TEXT "Hello, w\xC3\xA9rld! \"quoted\" \\ back\nslash\t\x01 \xE2\x82\xAC\xF0\x9D\x84\x9E"

/* One directory per test case, made and removed by an unchecked fixture (which runs in
 * the runner's own process, so the directory goes even when a test fails), and emptied
 * before every test by a checked one. */
static char tmpdir[64];

/* Removes everything in tmpdir (one level of subdirectories at most). */
static void dir_empty(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *de;
    char p[sizeof tmpdir + sizeof de->d_name + 1];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
}

static void dir_create(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hyperd-ckpt-XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp failed");
}

static void dir_remove(void)
{
    dir_empty();
    rmdir(tmpdir);
}

static const char *path_in(char *buf, const char *name)
{
    snprintf(buf, 256, "%s/%s", tmpdir, name);
    return buf;
}

/* Number of entries in tmpdir (without . and ..). */
static int dir_count(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *de;
    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static unsigned char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_whole(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes a safetensors file from a header text (padded with spaces to a multiple of 8 when
 * pad is set) and data bytes. */
static void write_st(const char *path, const char *header, int pad, const void *data,
                     size_t dlen)
{
    size_t hlen = strlen(header), padded = pad ? (hlen + 7) / 8 * 8 : hlen;
    unsigned char *buf = malloc(8 + padded + dlen + 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    if (dlen)
        memcpy(buf + 8 + padded, data, dlen);
    write_whole(path, buf, 8 + padded + dlen);
    free(buf);
}

/* A small model of the given cell, initialised, with every weight rounded to float so that
 * the round trip is bit-exact in the double build too. */
static void make_model(model *m, cell_kind cell, int32_t inputs, int32_t outputs, uint64_t seed)
{
    model_config cfg = {.cell = cell, .layers = 2, .units = 5, .inputs = inputs,
                        .outputs = outputs};
    if (cell_is_hyper(cell)) {
        cfg.hyper_units = 4;
        cfg.embed = 3;
    }
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_msg(model_create(m, &cfg, err) == HYPER_OK, "model_create: %s", err);
    model_init(m, seed);
    for (size_t i = 0; i < m->size; i++)
        m->block[i] = (real)(float)m->block[i];
}

static void assert_config_eq(const model_config *a, const model_config *b)
{
    ck_assert_int_eq(a->cell, b->cell);
    ck_assert_int_eq(a->layers, b->layers);
    ck_assert_int_eq(a->units, b->units);
    ck_assert_int_eq(a->hyper_units, b->hyper_units);
    ck_assert_int_eq(a->embed, b->embed);
    ck_assert_int_eq(a->inputs, b->inputs);
    ck_assert_int_eq(a->outputs, b->outputs);
}

static void assert_blocks_eq(const real *a, const real *b, size_t n)
{
    size_t bad = 0, first = n;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(real)) != 0) {
            bad++;
            first = first < n ? first : i;
        }
    ck_assert_msg(bad == 0, "%zu of %zu values differ, first at %zu: %.9g vs %.9g", bad, n,
                  first, first < n ? (double)a[first] : 0.0, first < n ? (double)b[first] : 0.0);
}

/* Checks the safetensors invariants a strict reader (the Python package) relies on: header
 * length a multiple of 8, header a JSON object, tensors contiguous from 0 to the file end. */
static void assert_strict_layout(const char *path)
{
    size_t len;
    unsigned char *buf = read_whole(path, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_le(8 + hlen, len);
    ck_assert_int_eq(buf[8], '{');
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, hlen, 0, &jerr);
    ck_assert_msg(root != NULL, "header: %s", jerr.text);
    const char *name;
    json_t *t;
    size_t covered = 0, n = 0;
    json_object_foreach(root, name, t) {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        json_t *o = json_object_get(t, "data_offsets");
        ck_assert_str_eq(json_string_value(json_object_get(t, "dtype")), "F32");
        covered += (size_t)(json_integer_value(json_array_get(o, 1)) -
                            json_integer_value(json_array_get(o, 0)));
        n++;
    }
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(8 + hlen + covered, len);
    json_decref(root);
    free(buf);
}

/* ---- round trips ------------------------------------------------------------------------ */

START_TEST(test_round_trip_cell)
{
    const cell_kind cell = (cell_kind)_i;
    char err[HYPER_ERRMSG_MAX] = "", path[256];
    vocab v, v2;
    model m, m2;
    ck_assert_int_eq(vocab_build(&v, TEXT, strlen(TEXT), err), HYPER_OK);
    make_model(&m, cell, 0, v.size, 7 + (uint64_t)_i);
    const ckpt_kv meta[] = {{"note", "a \"quoted\" note\nwith \xE2\x82\xAC"}, {"train.step", "42"}};
    path_in(path, "model.safetensors");
    ck_assert_msg(checkpoint_save(path, &m, &v, meta, 2, NULL, 0, err) == HYPER_OK, "save: %s",
                  err);
    assert_strict_layout(path);

    checkpoint *ck = NULL;
    ck_assert_msg(checkpoint_open(path, &ck, err) == HYPER_OK, "open: %s", err);
    assert_config_eq(checkpoint_config(ck), &m.cfg);
    ck_assert_str_eq(checkpoint_meta(ck, "note"), meta[0].value);
    ck_assert_str_eq(checkpoint_meta(ck, "train.step"), "42");
    ck_assert_str_eq(checkpoint_meta(ck, "format"), "hyperd");
    ck_assert_str_eq(checkpoint_meta(ck, "format_version"), "1");
    ck_assert_str_eq(checkpoint_meta(ck, "cell"), cell_kind_str(cell));
    char count[32];
    snprintf(count, sizeof count, "%zu", m.size);
    ck_assert_str_eq(checkpoint_meta(ck, "param_count"), count);
    ck_assert_ptr_null(checkpoint_meta(ck, "no such key"));
    for (int i = 0; i < m.nparams; i++)
        ck_assert_msg(checkpoint_has_tensor(ck, m.table[i].name), "%s", m.table[i].name);
    ck_assert(!checkpoint_has_tensor(ck, "__metadata__"));

    ck_assert_msg(checkpoint_load_model(ck, &m2, &v2, err) == HYPER_OK, "load: %s", err);
    checkpoint_close(ck);
    assert_config_eq(&m2.cfg, &m.cfg);
    ck_assert_uint_eq(m2.size, m.size);
    assert_blocks_eq(m2.block, m.block, m.size);
    ck_assert(m2.p.W == m2.block + m2.table[m2.nparams - 2].offset);
    ck_assert_int_eq(v2.size, v.size);
    ck_assert_mem_eq(v2.cp, v.cp, (size_t)v.size * sizeof *v.cp);

    model_free(&m2);
    vocab_free(&v2);
    model_free(&m);
    vocab_free(&v);
}
END_TEST

/* A dense-input model saved without a vocabulary, through checkpoint_load. */
START_TEST(test_round_trip_dense)
{
    const cell_kind cells[] = {CELL_LNLSTM, CELL_HYPERLSTM};
    char err[HYPER_ERRMSG_MAX] = "", path[256];
    for (int c = 0; c < 2; c++) {
        model m, m2;
        vocab v = {7, NULL};
        make_model(&m, cells[c], 6, 4, 99);
        path_in(path, "dense.safetensors");
        ck_assert_msg(checkpoint_save(path, &m, NULL, NULL, 0, NULL, 0, err) == HYPER_OK, "%s",
                      err);
        ck_assert_msg(checkpoint_load(path, &m2, &v, err) == HYPER_OK, "%s", err);
        ck_assert_int_eq(v.size, 0); /* no vocabulary in the file: *v is left empty */
        ck_assert_ptr_null(v.cp);
        assert_config_eq(&m2.cfg, &m.cfg);
        assert_blocks_eq(m2.block, m.block, m.size);
        model_free(&m2);
        model_free(&m);
    }
}
END_TEST

START_TEST(test_extra_tensors)
{
    char err[HYPER_ERRMSG_MAX] = "", path[256];
    model m;
    make_model(&m, CELL_LNHYPERLSTM, 0, 11, 3);
    const size_t P = m.size, S = model_state_size(&m.cfg);
    real *mom = malloc(P * sizeof(real)), *var = malloc(P * sizeof(real));
    real *state = malloc(3 * S * sizeof(real)), one = (real)0.25;
    ck_assert(mom && var && state);
    for (size_t i = 0; i < P; i++) {
        mom[i] = (real)(float)((double)i * 1e-3 - 0.5);
        var[i] = (real)(float)((double)i * 1e-6);
    }
    for (size_t i = 0; i < 3 * S; i++)
        state[i] = (real)(float)(-(double)i / 7.0);
    const ckpt_tensor extra[] = {
        {"optim.m", 1, {(int64_t)P}, mom},
        {"optim.v", 1, {(int64_t)P}, var},
        {"train.state", 2, {3, (int64_t)S}, state},
        {"train.scalar", 0, {0}, &one},
        {"train.empty", 1, {0}, NULL},
    };
    const ckpt_kv meta[] = {{"train.step", "1234"}, {"train.seed", "7"}};
    path_in(path, "train.safetensors");
    ck_assert_msg(checkpoint_save(path, &m, NULL, meta, 2, extra, 5, err) == HYPER_OK, "%s",
                  err);
    assert_strict_layout(path);

    checkpoint *ck;
    ck_assert_msg(checkpoint_open(path, &ck, err) == HYPER_OK, "%s", err);
    ck_assert_str_eq(checkpoint_meta(ck, "train.step"), "1234");
    ck_assert_str_eq(checkpoint_meta(ck, "train.seed"), "7");
    real *back = calloc(P > 3 * S ? P : 3 * S, sizeof(real));
    ck_assert_ptr_nonnull(back);
    ck_assert(checkpoint_has_tensor(ck, "optim.m"));
    ck_assert_int_eq(checkpoint_read_tensor(ck, "optim.m", back, P, err), HYPER_OK);
    assert_blocks_eq(back, mom, P);
    ck_assert_int_eq(checkpoint_read_tensor(ck, "optim.v", back, P, err), HYPER_OK);
    assert_blocks_eq(back, var, P);
    ck_assert_int_eq(checkpoint_read_tensor(ck, "train.state", back, 3 * S, err), HYPER_OK);
    assert_blocks_eq(back, state, 3 * S);
    ck_assert_int_eq(checkpoint_read_tensor(ck, "train.scalar", back, 1, err), HYPER_OK);
    ck_assert(back[0] == one);
    ck_assert_int_eq(checkpoint_read_tensor(ck, "train.empty", back, 0, err), HYPER_OK);
    /* a parameter can be read the same way */
    ck_assert_int_eq(checkpoint_read_tensor(ck, "out.b", back, 11, err), HYPER_OK);
    assert_blocks_eq(back, m.p.b, 11);

    ck_assert_int_eq(checkpoint_read_tensor(ck, "optim.m", back, P - 1, err), HYPER_ERR_FORMAT);
    ck_assert_msg(strstr(err, "optim.m") && strstr(err, path), "%s", err);
    ck_assert_int_eq(checkpoint_read_tensor(ck, "optim.x", back, P, err), HYPER_ERR_FORMAT);
    ck_assert_msg(strstr(err, "optim.x") && strstr(err, path), "%s", err);
    ck_assert(!checkpoint_has_tensor(ck, "optim.x"));

    model m2;
    ck_assert_int_eq(checkpoint_load_model(ck, &m2, NULL, err), HYPER_OK);
    assert_blocks_eq(m2.block, m.block, m.size);
    model_free(&m2);
    checkpoint_close(ck);
    free(back);
    free(mom);
    free(var);
    free(state);
    model_free(&m);
}
END_TEST

/* ---- saving: refusals and the atomic write --------------------------------------------- */

START_TEST(test_save_rejects)
{
    char err[HYPER_ERRMSG_MAX], path[256];
    model m;
    vocab v;
    real x[2] = {1, 2};
    ck_assert_int_eq(vocab_build(&v, "abc", 3, err), HYPER_OK);
    make_model(&m, CELL_LSTM, 0, 3, 1);
    path_in(path, "m.safetensors");

    static const char *const reserved[] = {"format", "format_version", "cell", "layers",
                                           "units", "hyper_units", "embed", "inputs",
                                           "outputs", "param_count", "vocab"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        ckpt_kv kv = {reserved[i], "1"};
        err[0] = '\0';
        ck_assert_int_eq(checkpoint_save(path, &m, &v, &kv, 1, NULL, 0, err), HYPER_ERR_ARG);
        ck_assert_msg(strstr(err, reserved[i]) != NULL, "%s", err);
    }
    ckpt_kv twice[] = {{"a", "1"}, {"a", "2"}};
    ck_assert_int_eq(checkpoint_save(path, &m, &v, twice, 2, NULL, 0, err), HYPER_ERR_ARG);
    ckpt_kv bad_utf8 = {"a", "\xFF"};
    ck_assert_int_eq(checkpoint_save(path, &m, &v, &bad_utf8, 1, NULL, 0, err), HYPER_ERR_ARG);

    ckpt_kv many[CHECKPOINT_MAX_META + 1];
    char keys[CHECKPOINT_MAX_META + 1][16];
    for (int i = 0; i <= CHECKPOINT_MAX_META; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i] = (ckpt_kv){keys[i], "v"};
    }
    ck_assert_int_eq(checkpoint_save(path, &m, &v, many, CHECKPOINT_MAX_META + 1, NULL, 0, err),
                     HYPER_ERR_ARG);

    ckpt_tensor t = {"out.W", 1, {2}, x};
    ck_assert_int_eq(checkpoint_save(path, &m, &v, NULL, 0, &t, 1, err), HYPER_ERR_ARG);
    ck_assert_msg(strstr(err, "out.W") != NULL, "%s", err);
    t.name = "__metadata__";
    ck_assert_int_eq(checkpoint_save(path, &m, &v, NULL, 0, &t, 1, err), HYPER_ERR_ARG);
    ckpt_tensor dup[2] = {{"x", 1, {2}, x}, {"x", 1, {2}, x}};
    ck_assert_int_eq(checkpoint_save(path, &m, &v, NULL, 0, dup, 2, err), HYPER_ERR_ARG);
    ckpt_tensor neg = {"x", 2, {2, -1}, x}, deep = {"x", 4, {1, 1, 1}, x};
    ck_assert_int_eq(checkpoint_save(path, &m, &v, NULL, 0, &neg, 1, err), HYPER_ERR_ARG);
    ck_assert_int_eq(checkpoint_save(path, &m, &v, NULL, 0, &deep, 1, err), HYPER_ERR_ARG);
    ckpt_tensor nodata = {"x", 1, {2}, NULL};
    ck_assert_int_eq(checkpoint_save(path, &m, &v, NULL, 0, &nodata, 1, err), HYPER_ERR_ARG);
    ckpt_tensor lots[CHECKPOINT_MAX_EXTRA + 1];
    char names[CHECKPOINT_MAX_EXTRA + 1][16];
    for (int i = 0; i <= CHECKPOINT_MAX_EXTRA; i++) {
        snprintf(names[i], sizeof names[i], "e%d", i);
        lots[i] = (ckpt_tensor){names[i], 1, {2}, x};
    }
    ck_assert_int_eq(checkpoint_save(path, &m, &v, NULL, 0, lots, CHECKPOINT_MAX_EXTRA + 1, err),
                     HYPER_ERR_ARG);
    /* the limits themselves are allowed */
    ck_assert_msg(checkpoint_save(path, &m, &v, many, CHECKPOINT_MAX_META, lots,
                                  CHECKPOINT_MAX_EXTRA, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(dir_count(), 1);
    model_free(&m);
    vocab_free(&v);
}
END_TEST

START_TEST(test_atomic_write)
{
    char err[HYPER_ERRMSG_MAX] = "", path[256], sub[256], bad[256];
    model a, b, back;
    make_model(&a, CELL_LSTM, 0, 3, 1);
    make_model(&b, CELL_LSTM, 0, 3, 2);
    path_in(path, "m.safetensors");

    ck_assert_msg(checkpoint_save(path, &a, NULL, NULL, 0, NULL, 0, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(dir_count(), 1);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0644);
    /* overwriting replaces the file whole and leaves no temporary behind */
    ck_assert_msg(checkpoint_save(path, &b, NULL, NULL, 0, NULL, 0, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(dir_count(), 1);
    ck_assert_int_eq(checkpoint_load(path, &back, NULL, err), HYPER_OK);
    assert_blocks_eq(back.block, b.block, b.size);
    model_free(&back);

    /* a missing directory: an i/o error naming the path, nothing created */
    path_in(bad, "missing/m.safetensors");
    ck_assert_int_eq(checkpoint_save(bad, &a, NULL, NULL, 0, NULL, 0, err), HYPER_ERR_IO);
    ck_assert_msg(strstr(err, bad) != NULL, "%s", err);
    ck_assert_int_eq(dir_count(), 1);

    /* the rename fails (the target is a non-empty directory) after everything was written:
     * the temporary file must be removed */
    path_in(sub, "dir.safetensors");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    char inner[300];
    snprintf(inner, sizeof inner, "%s/x", sub);
    write_whole(inner, "x", 1);
    hyper_status st = checkpoint_save(sub, &a, NULL, NULL, 0, NULL, 0, err);
    unlink(inner); /* first, so the fixture can remove the directory whatever happens */
    ck_assert_int_eq(st, HYPER_ERR_IO);
    ck_assert_msg(strstr(err, sub) != NULL, "%s", err);
    ck_assert_int_eq(dir_count(), 2);

    /* a relative path (temporary file and directory sync in the current directory) */
    char cwd[512];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    ck_assert_msg(checkpoint_save("rel.safetensors", &a, NULL, NULL, 0, NULL, 0, err) == HYPER_OK,
                  "%s", err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(dir_count(), 3);
    model_free(&a);
    model_free(&b);
}
END_TEST

/* ---- a file written by other tools ------------------------------------------------------ */

/* The layout of Python's safetensors.numpy.save_file: __metadata__ first (its own key order,
 * no "format" key here), tensors sorted by name with contiguous offsets in that order. */
static void python_file(const char *path, int pad)
{
    static const char header[] =
        "{\"__metadata__\":{\"outputs\":\"3\",\"units\":\"2\",\"cell\":\"lstm\",\"layers\":\"1\","
        "\"inputs\":\"0\",\"hyper_units\":\"0\",\"embed\":\"0\",\"vocab\":\"abc\"},"
        "\"layers.0.W_h\":{\"dtype\":\"F32\",\"shape\":[2,8],\"data_offsets\":[0,64]},"
        "\"layers.0.W_x\":{\"dtype\":\"F32\",\"shape\":[3,8],\"data_offsets\":[64,160]},"
        "\"layers.0.b\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[160,192]},"
        "\"out.W\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[192,216]},"
        "\"out.b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[216,228]}}";
    /* value of element k of the t-th tensor (in file order): t + 1 + k/64, exact in float */
    static const int sizes[5] = {16, 24, 8, 6, 3};
    unsigned char data[228];
    size_t at = 0;
    for (int t = 0; t < 5; t++)
        for (int k = 0; k < sizes[t]; k++) {
            float f = (float)(t + 1) + (float)k / 64.0f;
            uint32_t u;
            memcpy(&u, &f, 4);
            for (int i = 0; i < 4; i++)
                data[at++] = (unsigned char)(u >> (8 * i));
        }
    write_st(path, header, pad, data, sizeof data);
}

START_TEST(test_python_file)
{
    char err[HYPER_ERRMSG_MAX] = "", path[256];
    /* padded (as the package writes) and unpadded (data not 4-byte aligned in the file) */
    for (int pad = 1; pad >= 0; pad--) {
        model m;
        vocab v;
        path_in(path, pad ? "py.safetensors" : "py-unpadded.safetensors");
        python_file(path, pad);
        ck_assert_msg(checkpoint_load(path, &m, &v, err) == HYPER_OK, "%s", err);
        ck_assert_int_eq(m.cfg.cell, CELL_LSTM);
        ck_assert_int_eq(m.cfg.units, 2);
        ck_assert_int_eq(m.cfg.outputs, 3);
        ck_assert_int_eq(v.size, 3);
        ck_assert_uint_eq(v.cp[0], 'a');
        ck_assert_uint_eq(v.cp[2], 'c');
        const real *blocks[5] = {m.p.layer[0].W_h, m.p.layer[0].W_x, m.p.layer[0].b, m.p.W,
                                 m.p.b};
        static const int sizes[5] = {16, 24, 8, 6, 3};
        for (int t = 0; t < 5; t++)
            for (int k = 0; k < sizes[t]; k++)
                ck_assert_msg(blocks[t][k] == (real)(t + 1) + (real)k / 64,
                              "tensor %d element %d: %g", t, k, (double)blocks[t][k]);
        model_free(&m);
        vocab_free(&v);
    }
}
END_TEST

/* ---- damaged files ----------------------------------------------------------------------- */

/* The base file of the corruption tests: lstm, 1 layer of 2 units, vocabulary "abc".
 * Tensors in table order: layers.0.W_x (3, 8) [0, 96], layers.0.W_h (2, 8) [96, 160],
 * layers.0.b (8) [160, 192], out.W (2, 3) [192, 216], out.b (3) [216, 228]. */
static void base_file(const char *path)
{
    char err[HYPER_ERRMSG_MAX] = "";
    model_config cfg = {.cell = CELL_LSTM, .layers = 1, .units = 2, .outputs = 3};
    model m;
    vocab v;
    ck_assert_int_eq(vocab_build(&v, "cab", 3, err), HYPER_OK);
    ck_assert_int_eq(model_create(&m, &cfg, err), HYPER_OK);
    model_init(&m, 5);
    ckpt_kv note = {"note", "x"};
    ck_assert_msg(checkpoint_save(path, &m, &v, &note, 1, NULL, 0, err) == HYPER_OK, "%s", err);
    model_free(&m);
    vocab_free(&v);
}

/* Opening path must fail with status st and a message naming the file and holding needle. */
static void expect_refused(const char *path, hyper_status st, const char *needle)
{
    char err[HYPER_ERRMSG_MAX] = "";
    static char sentinel;
    checkpoint *ck = (checkpoint *)&sentinel; /* checkpoint_open must reset it to NULL */
    hyper_status got = checkpoint_open(path, &ck, err);
    ck_assert_msg(got == st, "%s: status %s, want %s (%s)", needle, hyper_status_str(got),
                  hyper_status_str(st), err);
    ck_assert_ptr_null(ck);
    ck_assert_msg(strstr(err, path) != NULL, "message does not name the file: %s", err);
    ck_assert_msg(strstr(err, needle) != NULL, "message lacks \"%s\": %s", needle, err);
    model m;
    ck_assert_int_eq(checkpoint_load(path, &m, NULL, err), st);
}

/* Rewrites the base file with its header changed by edit, keeping the data as it is. */
typedef void (*header_edit)(json_t *root);

static void rewrite(const char *src, const char *dst, header_edit edit)
{
    size_t len;
    unsigned char *buf = read_whole(src, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, hlen, 0, &jerr);
    ck_assert_ptr_nonnull(root);
    edit(root);
    char *text = json_dumps(root, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    write_st(dst, text, 1, buf + 8 + hlen, len - 8 - hlen);
    free(text);
    json_decref(root);
    free(buf);
}

static json_t *tensor(json_t *root, const char *name) { return json_object_get(root, name); }
static json_t *meta(json_t *root) { return json_object_get(root, "__metadata__"); }
static void set_meta(json_t *root, const char *k, const char *v)
{
    json_object_set_new(meta(root), k, json_string(v));
}
static void set_pair(json_t *t, const char *key, json_int_t a, json_int_t b)
{
    json_object_set_new(t, key, json_pack("[I, I]", a, b));
}

static void edit_f16(json_t *r) { json_object_set_new(tensor(r, "out.b"), "dtype", json_string("F16")); }
static void edit_no_dtype(json_t *r) { json_object_del(tensor(r, "out.b"), "dtype"); }
static void edit_shape(json_t *r) { set_pair(tensor(r, "layers.0.W_h"), "shape", 4, 4); }
static void edit_rank(json_t *r) { json_object_set_new(tensor(r, "layers.0.b"), "shape", json_pack("[i, i]", 8, 1)); }
static void edit_neg_dim(json_t *r) { set_pair(tensor(r, "layers.0.W_h"), "shape", -2, -8); }
static void edit_real_dim(json_t *r) { json_object_set_new(tensor(r, "out.b"), "shape", json_pack("[f]", 3.0)); }
static void edit_huge_dim(json_t *r) { set_pair(tensor(r, "out.b"), "shape", INT64_MAX, INT64_MAX); }
static void edit_deep(json_t *r) { json_object_set_new(tensor(r, "out.b"), "shape", json_pack("[i,i,i,i,i,i,i,i,i]", 1, 1, 1, 1, 1, 1, 1, 1, 3)); }
static void edit_out_of_range(json_t *r) { set_pair(tensor(r, "out.b"), "data_offsets", 216, 1000); }
static void edit_reversed(json_t *r) { set_pair(tensor(r, "layers.0.b"), "data_offsets", 192, 160); }
static void edit_size(json_t *r) { set_pair(tensor(r, "out.b"), "data_offsets", 216, 224); }
static void edit_offsets_type(json_t *r) { json_object_set_new(tensor(r, "out.b"), "data_offsets", json_pack("[I]", (json_int_t)216)); }
static void edit_overlap(json_t *r) { set_pair(tensor(r, "layers.0.b"), "data_offsets", 64, 96); }
static void edit_not_object(json_t *r) { json_object_set_new(r, "out.b", json_string("F32")); }
static void edit_missing(json_t *r) { json_object_del(r, "out.W"); }
static void edit_no_units(json_t *r) { json_object_del(meta(r), "units"); }
static void edit_units_word(json_t *r) { set_meta(r, "units", "two"); }
static void edit_units_sign(json_t *r) { set_meta(r, "units", "-2"); }
static void edit_units_big(json_t *r) { set_meta(r, "units", "99999999999"); }
static void edit_layers(json_t *r) { set_meta(r, "layers", "9"); }
static void edit_cell(json_t *r) { set_meta(r, "cell", "gru"); }
static void edit_no_cell(json_t *r) { json_object_del(meta(r), "cell"); }
static void edit_format(json_t *r) { set_meta(r, "format", "gguf"); }
static void edit_version(json_t *r) { set_meta(r, "format_version", "2"); }
static void edit_param_count(json_t *r) { set_meta(r, "param_count", "7"); }
static void edit_vocab_dup(json_t *r) { set_meta(r, "vocab", "abb"); }
static void edit_vocab_short(json_t *r) { set_meta(r, "vocab", "ab"); }
static void edit_vocab_order(json_t *r) { set_meta(r, "vocab", "bac"); }
static void edit_meta_int(json_t *r) { json_object_set_new(meta(r), "note", json_integer(5)); }
static void edit_meta_type(json_t *r) { json_object_set_new(r, "__metadata__", json_string("x")); }
static void edit_no_meta(json_t *r) { json_object_del(r, "__metadata__"); }
/* two tensors' data in the other order: allowed (offsets need not follow the header) */
static void edit_swap_ok(json_t *r)
{
    set_pair(tensor(r, "out.b"), "data_offsets", 192, 204);
    set_pair(tensor(r, "out.W"), "data_offsets", 204, 228);
}
/* an unknown extra tensor of another rank and no data: carried along */
static void edit_extra_ok(json_t *r) { json_object_set_new(r, "other.x", json_pack("{s:s, s:[i,i,i,i], s:[i,i]}", "dtype", "F32", "shape", 1, 0, 2, 3, "data_offsets", 10, 10)); }

START_TEST(test_corrupt_header)
{
    static const struct {
        header_edit edit;
        const char *needle;
    } cases[] = {
        {edit_f16, "dtype \"F16\""},
        {edit_no_dtype, "no dtype"},
        {edit_shape, "tensor \"layers.0.W_h\": shape [4, 4] does not match the config's [2, 8]"},
        {edit_rank, "shape [8, 1] does not match the config's [8]"},
        {edit_neg_dim, "non-negative"},
        {edit_real_dim, "non-negative integer"},
        {edit_huge_dim, "needs more bytes than the file holds"},
        {edit_deep, "at most 8"},
        {edit_out_of_range, "outside"},
        {edit_reversed, "end before they begin"},
        {edit_size, "hold 8 bytes but shape [3] needs 12"},
        {edit_offsets_type, "data_offsets"},
        {edit_overlap, "overlap"},
        {edit_not_object, "not an object"},
        {edit_missing, "tensor \"out.W\" is missing"},
        {edit_no_units, "\"units\" is missing"},
        {edit_units_word, "\"two\""},
        {edit_units_sign, "\"-2\""},
        {edit_units_big, "99999999999"},
        {edit_layers, "layers"},
        {edit_cell, "\"gru\""},
        {edit_no_cell, "\"cell\" is missing"},
        {edit_format, "\"gguf\""},
        {edit_version, "format_version"},
        {edit_param_count, "param_count"},
        {edit_vocab_dup, "vocab"},
        {edit_vocab_short, "2 characters but the model has 3 outputs"},
        {edit_vocab_order, "vocab"},
        {edit_meta_int, "\"note\" is not a string"},
        {edit_meta_type, "__metadata__ is not an object"},
        {edit_no_meta, "no __metadata__"},
    };
    char base[256], path[256];
    path_in(base, "base.safetensors");
    path_in(path, "bad.safetensors");
    base_file(base);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite(base, path, cases[i].edit);
        expect_refused(path, HYPER_ERR_FORMAT, cases[i].needle);
    }
    /* edits that keep the file valid */
    header_edit fine[] = {edit_swap_ok, edit_extra_ok};
    for (size_t i = 0; i < 2; i++) {
        char err[HYPER_ERRMSG_MAX] = "";
        checkpoint *ck;
        rewrite(base, path, fine[i]);
        ck_assert_msg(checkpoint_open(path, &ck, err) == HYPER_OK, "case %zu: %s", i, err);
        checkpoint_close(ck);
    }
}
END_TEST

START_TEST(test_corrupt_bytes)
{
    char base[256], path[256];
    path_in(base, "base.safetensors");
    path_in(path, "bad.safetensors");
    base_file(base);
    size_t len;
    unsigned char *buf = read_whole(base, &len);
    size_t hlen = buf[0] | (size_t)buf[1] << 8;

    /* truncated anywhere */
    const size_t cuts[] = {0, 1, 7, 8, 9, 8 + hlen / 2, 8 + hlen - 1, 8 + hlen, 8 + hlen + 1,
                           len - 4, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_whole(path, buf, cuts[i]);
        char err[HYPER_ERRMSG_MAX] = "";
        checkpoint *ck;
        ck_assert_msg(checkpoint_open(path, &ck, err) == HYPER_ERR_FORMAT,
                      "cut at %zu of %zu: %s", cuts[i], len, err);
        ck_assert_ptr_null(ck);
        ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    }
    write_whole(path, buf, 4);
    expect_refused(path, HYPER_ERR_FORMAT, "too short");
    write_whole(path, buf, len - 1);
    expect_refused(path, HYPER_ERR_FORMAT, "outside");

    /* header length larger than the file, and absurdly large */
    unsigned char *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, buf, len);
    for (int i = 0; i < 8; i++)
        copy[i] = (unsigned char)((uint64_t)(len - 7) >> (8 * i));
    write_whole(path, copy, len);
    expect_refused(path, HYPER_ERR_FORMAT, "larger than");
    memset(copy, 0xFF, 8);
    write_whole(path, copy, len);
    expect_refused(path, HYPER_ERR_FORMAT, "exceeds the limit");
    free(copy);
    free(buf);

    /* headers that are not a JSON object */
    write_st(path, "this is not json", 1, NULL, 0);
    expect_refused(path, HYPER_ERR_FORMAT, "not valid JSON");
    write_st(path, "", 0, NULL, 0);
    expect_refused(path, HYPER_ERR_FORMAT, "not valid JSON");
    write_st(path, "{} {}", 1, NULL, 0);
    expect_refused(path, HYPER_ERR_FORMAT, "not valid JSON");
    write_st(path, "[1, 2]", 1, NULL, 0);
    expect_refused(path, HYPER_ERR_FORMAT, "not a JSON object");
    write_st(path, "{\"a\\u0000b\": 1}", 1, NULL, 0);
    expect_refused(path, HYPER_ERR_FORMAT, "not valid JSON");
    write_st(path, "{\"__metadata__\": {}, \"__metadata__\": {}}", 1, NULL, 0);
    expect_refused(path, HYPER_ERR_FORMAT, "not valid JSON");
    write_st(path, "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 1,
             "\0\0\0\0", 4);
    expect_refused(path, HYPER_ERR_FORMAT, "no __metadata__");
    write_st(path, "{}", 1, NULL, 0);
    expect_refused(path, HYPER_ERR_FORMAT, "no __metadata__");
    write_whole(path, "\x02\0\0\0\0\0\0\0{}\xFF\xFF", 12); /* bytes after the header are data */
    expect_refused(path, HYPER_ERR_FORMAT, "no __metadata__");
    write_whole(path, "\x04\0\0\0\0\0\0\0{\"\xFF\"}", 12); /* not UTF-8 */
    expect_refused(path, HYPER_ERR_FORMAT, "not valid JSON");

    /* not a file at all */
    path_in(path, "does-not-exist");
    expect_refused(path, HYPER_ERR_IO, "No such file");
    expect_refused(tmpdir, HYPER_ERR_IO, "not a regular file");
}
END_TEST

/* Random damage to a valid file: every outcome is either a clean refusal or a model that
 * loads; AddressSanitizer (make sanitize) turns any read outside the mapping into a failure. */
START_TEST(test_corrupt_random)
{
    char base[256], path[256], err[HYPER_ERRMSG_MAX];
    path_in(base, "base.safetensors");
    path_in(path, "fuzz.safetensors");
    base_file(base);
    size_t len;
    unsigned char *buf = read_whole(base, &len), *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    hyper_rng rng;
    hyper_rng_seed(&rng, 2024);
    int refused = 0, loaded = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(copy, buf, len);
        int flips = 1 + (int)(hyper_rng_next(&rng) % 4);
        for (int f = 0; f < flips; f++) {
            /* mostly in the length and header, where the structure is */
            size_t span = hyper_rng_next(&rng) % 8 ? len - 228 : len;
            size_t at = (size_t)(hyper_rng_next(&rng) % span);
            copy[at] = (unsigned char)hyper_rng_next(&rng);
        }
        size_t n = hyper_rng_next(&rng) % 16 ? len : (size_t)(hyper_rng_next(&rng) % len);
        write_whole(path, copy, n);
        checkpoint *ck;
        err[0] = '\0';
        if (checkpoint_open(path, &ck, err) != HYPER_OK) {
            ck_assert_ptr_null(ck);
            ck_assert_msg(strstr(err, path) != NULL, "%s", err);
            refused++;
            continue;
        }
        model m;
        vocab v;
        ck_assert_msg(checkpoint_load_model(ck, &m, &v, err) == HYPER_OK, "%s", err);
        model_free(&m);
        vocab_free(&v);
        checkpoint_close(ck);
        loaded++;
    }
    ck_assert_int_gt(refused, 0);
    ck_assert_int_gt(loaded, 0); /* flips in the data or padding are harmless */
    free(copy);
    free(buf);
}
END_TEST

Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("round_trip");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_checked_fixture(tc, dir_empty, NULL);
    tcase_add_loop_test(tc, test_round_trip_cell, CELL_LSTM, CELL_COUNT);
    tcase_add_test(tc, test_round_trip_dense);
    tcase_add_test(tc, test_extra_tensors);
    tcase_add_test(tc, test_python_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("save");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_checked_fixture(tc, dir_empty, NULL);
    tcase_add_test(tc, test_save_rejects);
    tcase_add_test(tc, test_atomic_write);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_checked_fixture(tc, dir_empty, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_corrupt_header);
    tcase_add_test(tc, test_corrupt_bytes);
    tcase_add_test(tc, test_corrupt_random);
    suite_add_tcase(s, tc);
    return s;
}
