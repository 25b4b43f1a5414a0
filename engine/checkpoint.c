/*
 * checkpoint.c — safetensors files of checkpoint.h: writing them atomically, and mapping,
 * validating and reading them.
 *
 * A file is never trusted: every length and offset in it is checked against the mapping
 * before it is used, so any byte pattern gives either a loaded model or an error message
 * naming the file and what is wrong with it.  docs/checkpoint-format.md lists every key.
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "jsonutil.h"

#define FORMAT_NAME "hyperd"
#define FORMAT_VERSION "1"

/* Dimensions accepted in a tensor entry of a file (the engine's own tensors have at most
 * PARAM_MAX_DIMS; a file may hold other tensors that are only carried along). */
#define CKPT_MAX_DIMS 8
/* Reals converted to float32 per write() when saving. */
#define WRITE_CHUNK 16384

/* The metadata keys the checkpoint writes itself; a caller's extra entries may not reuse
 * them. */
static const char *const reserved_keys[] = {
    "format", "format_version", "cell",    "layers",      "units", "hyper_units",
    "embed",  "inputs",         "outputs", "param_count", "vocab",
};
#define NRESERVED ((int)(sizeof reserved_keys / sizeof reserved_keys[0]))

/* The integer fields of model_config and their metadata keys (decimal strings). */
static const struct {
    const char *key;
    size_t offset;
} config_ints[] = {
    {"layers", offsetof(model_config, layers)},
    {"units", offsetof(model_config, units)},
    {"hyper_units", offsetof(model_config, hyper_units)},
    {"embed", offsetof(model_config, embed)},
    {"inputs", offsetof(model_config, inputs)},
    {"outputs", offsetof(model_config, outputs)},
};
#define NCONFIG_INTS ((int)(sizeof config_ints / sizeof config_ints[0]))

/* One tensor entry of a file's header, checked against the data it points into. */
typedef struct {
    const char *name;              /* borrowed from the parsed header */
    int32_t ndim;
    int64_t shape[CKPT_MAX_DIMS];
    size_t begin, end;             /* bytes, relative to the start of the data */
    size_t count;                  /* elements: the product of shape */
} ckpt_entry;

struct checkpoint {
    char *path;                    /* owned copy, for error messages */
    void *map;                     /* the whole file, read-only; (map_size) bytes */
    size_t map_size;
    const unsigned char *data;     /* map + 8 + header length; (data_size) bytes */
    size_t data_size;
    json_t *header;                /* owned */
    json_t *meta;                  /* borrowed from header: the __metadata__ object */
    model_config cfg;
    int32_t nentries;
    ckpt_entry *entries;           /* owned; (nentries), sorted by name */
};

/* ---- float32 little-endian -------------------------------------------------------------
 * Byte by byte, so neither the host's byte order nor the data's alignment in the file
 * matters (compilers turn these loops into plain loads and stores on x86). */

static void real_to_f32le(const real *src, unsigned char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float f = (float)src[i];
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        dst[4 * i + 0] = (unsigned char)u;
        dst[4 * i + 1] = (unsigned char)(u >> 8);
        dst[4 * i + 2] = (unsigned char)(u >> 16);
        dst[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

static void f32le_to_real(const unsigned char *src, real *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = src + 4 * i;
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &u, sizeof f);
        dst[i] = (real)f;
    }
}

/* "[4, 16]" into buf (truncated to n bytes); returns buf. */
static const char *shape_str(char *buf, size_t n, int32_t ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int32_t d = 0; d < ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", d ? ", " : "",
                                 (long long)shape[d]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

/* A decimal string of digits only, in [0, max], into *out; -1 for anything else. */
static int parse_decimal(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned digit = (unsigned)(*s - '0');
        if (v > (max - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

/* 1 when the NUL-terminated s is valid UTF-8 (jansson refuses other strings). */
static int valid_utf8(const char *s)
{
    size_t n = strlen(s);
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        int k = utf8_decode(s + i, n - i, &cp);
        if (k == 0)
            return 0;
        i += (size_t)k;
    }
    return 1;
}

static int is_reserved_key(const char *key)
{
    for (int i = 0; i < NRESERVED; i++)
        if (strcmp(key, reserved_keys[i]) == 0)
            return 1;
    return 0;
}

/* ======================================================================================
 * Saving
 * ====================================================================================== */

/* Writes n reals as float32, through a small buffer. */
static int write_reals(int fd, const real *x, size_t n, unsigned char *buf)
{
    while (n > 0) {
        size_t k = n < WRITE_CHUNK ? n : WRITE_CHUNK;
        real_to_f32le(x, buf, k);
        if (fs_write_all(fd, buf, 4 * k) != 0)
            return -1;
        x += k;
        n -= k;
    }
    return 0;
}

/* {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (new reference), or NULL
 * when out of memory. */
static json_t *tensor_json(int32_t ndim, const int64_t *shape, size_t begin, size_t end)
{
    json_t *t = json_object(), *shp = json_array(), *offs = json_array();
    int rc = !t || !shp || !offs;
    for (int32_t d = 0; !rc && d < ndim; d++)
        rc = json_array_append_new(shp, json_integer((json_int_t)shape[d]));
    rc = rc || json_array_append_new(offs, json_integer((json_int_t)begin)) ||
         json_array_append_new(offs, json_integer((json_int_t)end)) ||
         json_object_set_new(t, "dtype", json_string("F32")) ||
         json_object_set(t, "shape", shp) || json_object_set(t, "data_offsets", offs);
    json_decref(shp);
    json_decref(offs);
    if (rc) {
        json_decref(t);
        return NULL;
    }
    return t;
}

/* Reals in an extra tensor, or (size_t)-1 when a dimension is negative or the product
 * would not fit in memory. */
static size_t extra_count(const ckpt_tensor *t)
{
    size_t n = 1;
    for (int32_t d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0)
            return (size_t)-1;
        size_t dim = (size_t)t->shape[d];
        if (dim != 0 && n > (SIZE_MAX / 4 / sizeof(real)) / dim)
            return (size_t)-1;
        n *= dim;
    }
    return n;
}

/* Checks the caller's metadata and extra tensors before anything is written. */
static hyper_status check_save_args(const model *m, const ckpt_kv *meta, int nmeta,
                                    const ckpt_tensor *extra, int nextra, char *err)
{
    if (nmeta < 0 || nmeta > CHECKPOINT_MAX_META || (nmeta > 0 && !meta))
        return hyper_fail(err, HYPER_ERR_ARG, "%d metadata entries: at most %d are allowed",
                          nmeta, CHECKPOINT_MAX_META);
    const int max_extra = m ? CHECKPOINT_MAX_EXTRA : CHECKPOINT_MAX_TENSORS;
    if (nextra < 0 || nextra > max_extra || (nextra > 0 && !extra))
        return hyper_fail(err, HYPER_ERR_ARG, "%d extra tensors: at most %d are allowed",
                          nextra, max_extra);
    for (int i = 0; i < nmeta; i++) {
        const char *k = meta[i].key;
        if (!k || !*k || !meta[i].value)
            return hyper_fail(err, HYPER_ERR_ARG, "metadata entry %d has no key or value", i);
        if (!valid_utf8(k) || !valid_utf8(meta[i].value))
            return hyper_fail(err, HYPER_ERR_ARG, "metadata entry %d is not valid UTF-8", i);
        if (m ? is_reserved_key(k) : (strcmp(k, "format") == 0 || strcmp(k, "format_version") == 0))
            return hyper_fail(err, HYPER_ERR_ARG,
                              "metadata key \"%s\" is written by the checkpoint itself", k);
        for (int j = 0; j < i; j++)
            if (strcmp(k, meta[j].key) == 0)
                return hyper_fail(err, HYPER_ERR_ARG, "metadata key \"%s\" is given twice", k);
    }
    for (int i = 0; i < nextra; i++) {
        const ckpt_tensor *t = &extra[i];
        if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0)
            return hyper_fail(err, HYPER_ERR_ARG, "extra tensor %d has no usable name", i);
        if (!valid_utf8(t->name))
            return hyper_fail(err, HYPER_ERR_ARG, "extra tensor %d: name is not valid UTF-8", i);
        for (int p = 0; m && p < m->nparams; p++)
            if (strcmp(t->name, m->table[p].name) == 0)
                return hyper_fail(err, HYPER_ERR_ARG,
                                  "extra tensor \"%s\" has the name of a model parameter",
                                  t->name);
        for (int j = 0; j < i; j++)
            if (strcmp(t->name, extra[j].name) == 0)
                return hyper_fail(err, HYPER_ERR_ARG, "extra tensor \"%s\" is given twice",
                                  t->name);
        if (t->ndim < 0 || t->ndim > PARAM_MAX_DIMS)
            return hyper_fail(err, HYPER_ERR_ARG, "extra tensor \"%s\": %d dimensions, at most %d",
                              t->name, t->ndim, PARAM_MAX_DIMS);
        size_t n = extra_count(t);
        if (n == (size_t)-1)
            return hyper_fail(err, HYPER_ERR_ARG, "extra tensor \"%s\": invalid shape", t->name);
        if (n > 0 && !t->data)
            return hyper_fail(err, HYPER_ERR_ARG, "extra tensor \"%s\" has no data", t->name);
    }
    return HYPER_OK;
}

static int set_string(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, json_string(value));
}

static int set_int(json_t *obj, const char *key, long long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", value);
    return set_string(obj, key, buf);
}

/* Builds the header object of a checkpoint into *out (new reference).  Tensors get
 * consecutive data offsets in table order, then the extras in the caller's order.  The
 * arguments were checked by check_save_args, so the only failure is running out of memory. */
static hyper_status build_header(const model *m, const vocab *v, const ckpt_kv *meta, int nmeta,
                                 const ckpt_tensor *extra, int nextra, json_t **out, char *err)
{
    json_t *root = json_object(), *md = json_object();
    int rc = !root || !md || json_object_set(root, "__metadata__", md) ||
             set_string(md, "format", FORMAT_NAME) ||
             set_string(md, "format_version", FORMAT_VERSION);
    if (m) {
        const model_config *c = &m->cfg;
        rc = rc || set_string(md, "cell", cell_kind_str((cell_kind)c->cell));
        for (int i = 0; !rc && i < NCONFIG_INTS; i++)
            rc = set_int(md, config_ints[i].key,
                         *(const int32_t *)((const char *)c + config_ints[i].offset));
        rc = rc || set_int(md, "param_count", (long long)m->size);
    }
    if (!rc && v) {
        size_t len = 0;
        char *s = vocab_to_utf8(v, &len);
        rc = !s || json_object_set_new(md, "vocab", json_stringn(s, len));
        free(s);
    }
    for (int i = 0; !rc && i < nmeta; i++)
        rc = set_string(md, meta[i].key, meta[i].value);

    size_t off = 0;
    for (int p = 0; !rc && m && p < m->nparams; p++) {
        const param_info *pi = &m->table[p];
        rc = json_object_set_new(root, pi->name,
                                 tensor_json(pi->ndim, pi->shape, off, off + 4 * pi->size));
        off += 4 * pi->size;
    }
    for (int i = 0; !rc && i < nextra; i++) {
        size_t n = extra_count(&extra[i]);
        rc = json_object_set_new(root, extra[i].name,
                                 tensor_json(extra[i].ndim, extra[i].shape, off, off + 4 * n));
        off += 4 * n;
    }
    json_decref(md);
    if (rc) {
        json_decref(root);
        *out = NULL;
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory building the checkpoint header");
    }
    *out = root;
    return HYPER_OK;
}

/* Writes a file of m's parameters (m may be NULL) and the extra tensors, atomically. */
static hyper_status write_file(const char *path, const model *m, const vocab *v,
                               const ckpt_kv *meta, int nmeta,
                               const ckpt_tensor *extra, int nextra, char *err)
{
    hyper_status st = HYPER_OK;
    json_t *root = NULL;
    char *header = NULL, *tmp = NULL;
    unsigned char *buf = NULL;
    int fd = -1, created = 0;

    if ((st = check_save_args(m, meta, nmeta, extra, nextra, err)) != HYPER_OK)
        return st;
    if ((st = build_header(m, v, meta, nmeta, extra, nextra, &root, err)) != HYPER_OK)
        goto out;
    if (!(header = json_text(root, JSON_COMPACT))) {
        st = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory writing the checkpoint header");
        goto out;
    }
    /* pad with spaces (JSON whitespace) so the data starts 8-byte aligned */
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7;
    if (padded > CHECKPOINT_MAX_HEADER) {
        st = hyper_fail(err, HYPER_ERR_ARG, "%s: header of %zu bytes exceeds the limit of %u",
                        path, padded, CHECKPOINT_MAX_HEADER);
        goto out;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));

    size_t plen = strlen(path);
    if (!(tmp = malloc(plen + 16)) || !(buf = malloc(4 * WRITE_CHUNK))) {
        st = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory saving %s", path);
        goto out;
    }
    snprintf(tmp, plen + 16, "%s" FS_TMP_INFIX "XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        st = hyper_fail(err, fs_errno_status(errno), "%s: cannot create a temporary file: %s", path,
                        strerror(errno));
        goto out;
    }
    created = 1;
    /* mkstemp makes 0600; a checkpoint is an ordinary readable file */
    if (fchmod(fd, 0644) != 0)
        goto io_error;
    if (fs_write_all(fd, len8, 8) || fs_write_all(fd, header, hlen) ||
        fs_write_all(fd, "        ", padded - hlen))
        goto io_error;
    for (int p = 0; m && p < m->nparams; p++)
        if (write_reals(fd, m->block + m->table[p].offset, m->table[p].size, buf))
            goto io_error;
    for (int i = 0; i < nextra; i++)
        if (write_reals(fd, extra[i].data, extra_count(&extra[i]), buf))
            goto io_error;
    if (fsync(fd) != 0)
        goto io_error;
    int rc = close(fd);
    fd = -1;
    if (rc != 0)
        goto io_error;
    if (rename(tmp, path) != 0)
        goto io_error;
    created = 0;
    if (fs_sync_parent_dir(path) != 0)
        st = hyper_fail(err, fs_errno_status(errno), "%s: written, but syncing its directory failed: %s",
                        path, strerror(errno));
    goto out;

io_error:
    st = hyper_fail(err, fs_errno_status(errno), "%s: cannot write the checkpoint: %s", path,
                    strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(buf);
    free(tmp);
    free(header);
    json_decref(root);
    return st;
}

hyper_status checkpoint_save(const char *path, const model *m, const vocab *v,
                             const ckpt_kv *meta, int nmeta,
                             const ckpt_tensor *extra, int nextra, char *err)
{
    if (!path || !*path || !m || !m->block)
        return hyper_fail(err, HYPER_ERR_ARG, "checkpoint_save: no path or no model");
    hyper_status st = model_config_check(&m->cfg, err);
    if (st != HYPER_OK)
        return st;
    return write_file(path, m, v, meta, nmeta, extra, nextra, err);
}

hyper_status checkpoint_save_tensors(const char *path, const ckpt_kv *meta, int nmeta,
                                     const ckpt_tensor *tensors, int ntensors, char *err)
{
    if (!path || !*path)
        return hyper_fail(err, HYPER_ERR_ARG, "checkpoint_save_tensors: no path");
    return write_file(path, NULL, NULL, meta, nmeta, tensors, ntensors, err);
}

/* ======================================================================================
 * Opening and validating
 * ====================================================================================== */

static int entry_cmp_name(const void *a, const void *b)
{
    return strcmp(((const ckpt_entry *)a)->name, ((const ckpt_entry *)b)->name);
}

static int entry_cmp_offset(const void *a, const void *b)
{
    const ckpt_entry *x = *(const ckpt_entry *const *)a, *y = *(const ckpt_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static const ckpt_entry *find_entry(const checkpoint *ck, const char *name)
{
    ckpt_entry key = {.name = name};
    return bsearch(&key, ck->entries, (size_t)ck->nentries, sizeof key, entry_cmp_name);
}

/* A JSON integer in [0, max], or -1. */
static int64_t json_uint(const json_t *j, int64_t max)
{
    if (!json_is_integer(j))
        return -1;
    json_int_t v = json_integer_value(j);
    return v >= 0 && v <= max ? (int64_t)v : -1;
}

/* Parses and checks one tensor entry: dtype, shape, offsets inside the data, and that the
 * byte range holds exactly the shape's float32 values. */
static hyper_status parse_entry(const checkpoint *ck, const char *name, const json_t *j,
                                ckpt_entry *e, char *err)
{
    const char *path = ck->path;
    char sbuf[160];
    memset(e, 0, sizeof *e);
    e->name = name;
    if (!json_is_object(j))
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: tensor \"%s\": entry is not an object",
                          path, name);
    const json_t *dt = json_object_get(j, "dtype");
    if (!json_is_string(dt))
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: tensor \"%s\": no dtype", path, name);
    if (strcmp(json_string_value(dt), "F32") != 0)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: tensor \"%s\": dtype \"%s\" is not supported (only F32)", path,
                          name, json_string_value(dt));

    const json_t *shp = json_object_get(j, "shape");
    if (!json_is_array(shp) || json_array_size(shp) > CKPT_MAX_DIMS)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: tensor \"%s\": shape is not a list of at most %d integers", path,
                          name, CKPT_MAX_DIMS);
    e->ndim = (int32_t)json_array_size(shp);
    int zero = 0;
    for (int32_t d = 0; d < e->ndim; d++) {
        e->shape[d] = json_uint(json_array_get(shp, (size_t)d), INT64_MAX);
        if (e->shape[d] < 0)
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: tensor \"%s\": shape holds something other than a "
                              "non-negative integer", path, name);
        zero |= e->shape[d] == 0;
    }
    /* the product, bounded by what the data could hold so it cannot overflow */
    const size_t max_count = ck->data_size / 4;
    e->count = zero ? 0 : 1;
    for (int32_t d = 0; d < e->ndim && !zero; d++) {
        if ((uint64_t)e->shape[d] > max_count || e->count > max_count / (size_t)e->shape[d])
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: tensor \"%s\": shape %s needs more bytes than the file holds",
                              path, name, shape_str(sbuf, sizeof sbuf, e->ndim, e->shape));
        e->count *= (size_t)e->shape[d];
    }

    const json_t *offs = json_object_get(j, "data_offsets");
    int64_t b = -1, en = -1;
    if (json_is_array(offs) && json_array_size(offs) == 2) {
        b = json_uint(json_array_get(offs, 0), INT64_MAX);
        en = json_uint(json_array_get(offs, 1), INT64_MAX);
    }
    if (b < 0 || en < 0)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: tensor \"%s\": data_offsets is not a pair of non-negative "
                          "integers", path, name);
    if (b > en)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: tensor \"%s\": data_offsets [%lld, %lld] end before they begin",
                          path, name, (long long)b, (long long)en);
    if ((uint64_t)en > ck->data_size)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: tensor \"%s\": data_offsets [%lld, %lld] lie outside the %zu "
                          "bytes of data", path, name, (long long)b, (long long)en,
                          ck->data_size);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    if (e->end - e->begin != 4 * e->count)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: tensor \"%s\": data_offsets [%lld, %lld] hold %zu bytes but "
                          "shape %s needs %zu", path, name, (long long)b, (long long)en,
                          e->end - e->begin, shape_str(sbuf, sizeof sbuf, e->ndim, e->shape),
                          4 * e->count);
    return HYPER_OK;
}

/* Reads every tensor entry of the header into ck->entries and checks that no two share a
 * byte of data. */
static hyper_status parse_entries(checkpoint *ck, char *err)
{
    const char *name;
    json_t *val;
    hyper_status st = HYPER_OK;
    size_t n = json_object_size(ck->header);
    ckpt_entry **by_offset = NULL;

    ck->entries = calloc(n ? n : 1, sizeof *ck->entries);
    if (!ck->entries)
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory reading the header", ck->path);
    json_object_foreach(ck->header, name, val) {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        if ((st = parse_entry(ck, name, val, &ck->entries[ck->nentries], err)) != HYPER_OK)
            return st;
        ck->nentries++;
    }
    qsort(ck->entries, (size_t)ck->nentries, sizeof *ck->entries, entry_cmp_name);

    if (!(by_offset = malloc((size_t)(ck->nentries ? ck->nentries : 1) * sizeof *by_offset)))
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory reading the header", ck->path);
    for (int32_t i = 0; i < ck->nentries; i++)
        by_offset[i] = &ck->entries[i];
    qsort(by_offset, (size_t)ck->nentries, sizeof *by_offset, entry_cmp_offset);
    const ckpt_entry *prev = NULL; /* the last tensor that holds any bytes */
    for (int32_t i = 0; i < ck->nentries; i++) {
        const ckpt_entry *e = by_offset[i];
        if (e->begin == e->end)
            continue;
        if (prev && e->begin < prev->end) {
            st = hyper_fail(err, HYPER_ERR_FORMAT,
                            "%s: tensors \"%s\" [%zu, %zu] and \"%s\" [%zu, %zu] overlap",
                            ck->path, prev->name, prev->begin, prev->end, e->name, e->begin,
                            e->end);
            break;
        }
        prev = e;
    }
    free(by_offset);
    return st;
}

/* Checks __metadata__: all strings, a known format. */
static hyper_status parse_metadata(checkpoint *ck, char *err)
{
    const char *path = ck->path, *key;
    json_t *val;

    ck->meta = json_object_get(ck->header, "__metadata__");
    if (!ck->meta)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: no __metadata__ in the header (not a hyperd checkpoint)", path);
    if (!json_is_object(ck->meta))
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: __metadata__ is not an object", path);
    json_object_foreach(ck->meta, key, val) {
        if (!json_is_string(val))
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: metadata \"%s\" is not a string",
                              path, key);
    }
    const char *fmt = checkpoint_meta(ck, "format"), *ver = checkpoint_meta(ck, "format_version");
    if (fmt && strcmp(fmt, FORMAT_NAME) != 0)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: format \"%s\" is not \"%s\"", path, fmt,
                          FORMAT_NAME);
    if (ver && strcmp(ver, FORMAT_VERSION) != 0)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: format_version \"%s\" is not supported (this build reads \"%s\")",
                          path, ver, FORMAT_VERSION);
    return HYPER_OK;
}

/* Reads the model config from the metadata. */
static hyper_status parse_config(checkpoint *ck, char *err)
{
    const char *path = ck->path;
    char msg[HYPER_ERRMSG_MAX];
    model_config *c = &ck->cfg;
    const char *cell = checkpoint_meta(ck, "cell");
    cell_kind kind;
    if (!cell)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: metadata \"cell\" is missing", path);
    if (cell_kind_parse(cell, &kind) != 0)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: metadata \"cell\": unknown cell type \"%s\"",
                          path, cell);
    c->cell = kind;
    for (int i = 0; i < NCONFIG_INTS; i++) {
        const char *s = checkpoint_meta(ck, config_ints[i].key);
        uint64_t value;
        if (!s)
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: metadata \"%s\" is missing", path,
                              config_ints[i].key);
        if (parse_decimal(s, INT32_MAX, &value) != 0)
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: metadata \"%s\": \"%s\" is not a decimal integer in 0..%d",
                              path, config_ints[i].key, s, INT32_MAX);
        *(int32_t *)((char *)c + config_ints[i].offset) = (int32_t)value;
    }
    if (model_config_check(c, msg) != HYPER_OK)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: invalid model config: %s", path, msg);
    const char *pc = checkpoint_meta(ck, "param_count");
    uint64_t count = model_param_count(c), claimed;
    if (pc && (parse_decimal(pc, UINT64_MAX, &claimed) != 0 || claimed != count))
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: metadata \"param_count\" is \"%s\" but the config has %llu "
                          "parameters", path, pc, (unsigned long long)count);
    return HYPER_OK;
}

hyper_status checkpoint_check_tensors(const checkpoint *ck, const param_info *table, int n, char *err)
{
    char want[160], got[160];
    for (int i = 0; i < n; i++) {
        const param_info *p = &table[i];
        const ckpt_entry *e = find_entry(ck, p->name);
        if (!e)
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: tensor \"%s\" is missing (the config needs shape %s)",
                              ck->path, p->name, shape_str(want, sizeof want, p->ndim, p->shape));
        int same = e->ndim == p->ndim;
        for (int32_t d = 0; same && d < p->ndim; d++)
            same = e->shape[d] == p->shape[d];
        if (!same)
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: tensor \"%s\": shape %s does not match the config's %s",
                              ck->path, p->name, shape_str(got, sizeof got, e->ndim, e->shape),
                              shape_str(want, sizeof want, p->ndim, p->shape));
    }
    return HYPER_OK;
}

/* Every parameter the config implies is present with exactly its shape. */
static hyper_status check_params(const checkpoint *ck, char *err)
{
    param_info table[MODEL_MAX_PARAMS];
    const int n = model_param_table(&ck->cfg, table, NULL);
    return checkpoint_check_tensors(ck, table, n, err);
}

/* Parses the "vocab" metadata into *v (zeroed when there is none). */
static hyper_status read_vocab(const checkpoint *ck, vocab *v, char *err)
{
    char msg[HYPER_ERRMSG_MAX];
    const json_t *j = json_object_get(ck->meta, "vocab");
    memset(v, 0, sizeof *v);
    if (!j)
        return HYPER_OK;
    hyper_status st = vocab_from_utf8(v, json_string_value(j), json_string_length(j), msg);
    if (st != HYPER_OK)
        return hyper_fail(err, st == HYPER_ERR_NOMEM ? st : HYPER_ERR_FORMAT,
                          "%s: metadata \"vocab\": %s", ck->path, msg);
    if (ck->cfg.inputs == 0 && v->size != ck->cfg.outputs) {
        int32_t size = v->size;
        vocab_free(v);
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: the vocabulary has %d characters but the model has %d outputs",
                          ck->path, size, ck->cfg.outputs);
    }
    return HYPER_OK;
}

/* Maps and checks a file; with model, also its LSTM config, parameters and vocabulary. */
static hyper_status open_file(const char *path, checkpoint **out, int model, char *err)
{
    hyper_status st = HYPER_OK;
    checkpoint *ck = NULL;
    struct stat sb;
    int fd = -1;

    if (!out)
        return hyper_fail(err, HYPER_ERR_ARG, "checkpoint_open: no result pointer");
    *out = NULL;
    if (!path)
        return hyper_fail(err, HYPER_ERR_ARG, "checkpoint_open: no path");
    if (!(ck = calloc(1, sizeof *ck)) || !(ck->path = strdup(path))) {
        st = hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
        st = hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = hyper_fail(err, HYPER_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    if (sb.st_size < 8) {
        st = hyper_fail(err, HYPER_ERR_FORMAT,
                        "%s: %lld bytes is too short for a safetensors file (at least 8)", path,
                        (long long)sb.st_size);
        goto out;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: too large to map", path);
        goto out;
    }
    ck->map_size = (size_t)sb.st_size;
    ck->map = mmap(NULL, ck->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (ck->map == MAP_FAILED) {
        ck->map = NULL;
        st = hyper_fail(err, HYPER_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;

    const unsigned char *bytes = ck->map;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)bytes[i] << (8 * i);
    if (hlen > CHECKPOINT_MAX_HEADER) {
        st = hyper_fail(err, HYPER_ERR_FORMAT,
                        "%s: header length %llu exceeds the limit of %u bytes", path,
                        (unsigned long long)hlen, CHECKPOINT_MAX_HEADER);
        goto out;
    }
    if (hlen > ck->map_size - 8) {
        st = hyper_fail(err, HYPER_ERR_FORMAT,
                        "%s: header length %llu is larger than the %zu bytes after it "
                        "(truncated file?)", path, (unsigned long long)hlen, ck->map_size - 8);
        goto out;
    }
    ck->data = bytes + 8 + hlen;
    ck->data_size = ck->map_size - 8 - (size_t)hlen;

    json_error_t jerr;
    ck->header = json_loadb((const char *)bytes + 8, (size_t)hlen,
                            JSON_REJECT_DUPLICATES, &jerr);
    if (!ck->header) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: header is not valid JSON: %s (byte %d)",
                        path, jerr.text, jerr.position);
        goto out;
    }
    if (!json_is_object(ck->header)) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto out;
    }
    if ((st = parse_entries(ck, err)) != HYPER_OK || (st = parse_metadata(ck, err)) != HYPER_OK)
        goto out;
    if (model)
        st = checkpoint_check_model(ck, err);

out:
    if (fd >= 0)
        close(fd);
    if (st != HYPER_OK) {
        checkpoint_close(ck);
        return st;
    }
    *out = ck;
    return HYPER_OK;
}

hyper_status checkpoint_check_model(checkpoint *ck, char *err)
{
    vocab v;
    hyper_status st;
    if ((st = parse_config(ck, err)) != HYPER_OK || (st = check_params(ck, err)) != HYPER_OK ||
        (st = read_vocab(ck, &v, err)) != HYPER_OK)
        return st;
    vocab_free(&v);
    return HYPER_OK;
}

hyper_status checkpoint_open(const char *path, checkpoint **out, char *err)
{
    return open_file(path, out, 1, err);
}

hyper_status checkpoint_open_tensors(const char *path, checkpoint **out, char *err)
{
    return open_file(path, out, 0, err);
}

void checkpoint_close(checkpoint *ck)
{
    if (!ck)
        return;
    if (ck->map)
        munmap(ck->map, ck->map_size);
    json_decref(ck->header);
    free(ck->entries);
    free(ck->path);
    free(ck);
}

const model_config *checkpoint_config(const checkpoint *ck) { return &ck->cfg; }

const char *checkpoint_path(const checkpoint *ck) { return ck->path; }

const char *checkpoint_meta(const checkpoint *ck, const char *key)
{
    if (!ck || !ck->meta || !key)
        return NULL;
    return json_string_value(json_object_get(ck->meta, key));
}

/* ======================================================================================
 * Reading
 * ====================================================================================== */

hyper_status checkpoint_load_model(const checkpoint *ck, model *m, vocab *v, char *err)
{
    char msg[HYPER_ERRMSG_MAX];
    hyper_status st = model_create(m, &ck->cfg, msg);
    if (v)
        memset(v, 0, sizeof *v);
    if (st != HYPER_OK)
        return hyper_fail(err, st, "%s: %s", ck->path, msg);
    /* checkpoint_open checked that every parameter is present with its shape */
    for (int i = 0; i < m->nparams; i++) {
        const param_info *p = &m->table[i];
        const ckpt_entry *e = find_entry(ck, p->name);
        f32le_to_real(ck->data + e->begin, m->block + p->offset, p->size);
    }
    if (v && (st = read_vocab(ck, v, err)) != HYPER_OK) {
        model_free(m);
        return st;
    }
    return HYPER_OK;
}

hyper_status checkpoint_read_tensor(const checkpoint *ck, const char *name, real *dst,
                                    size_t size, char *err)
{
    const ckpt_entry *e = name ? find_entry(ck, name) : NULL;
    if (!e)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: no tensor \"%s\"", ck->path,
                          name ? name : "(null)");
    if (e->count != size)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: tensor \"%s\" holds %zu values, expected %zu", ck->path, name,
                          e->count, size);
    f32le_to_real(ck->data + e->begin, dst, size);
    return HYPER_OK;
}

int checkpoint_has_tensor(const checkpoint *ck, const char *name)
{
    return name && find_entry(ck, name) != NULL;
}

hyper_status checkpoint_load(const char *path, model *m, vocab *v, char *err)
{
    checkpoint *ck;
    hyper_status st = checkpoint_open(path, &ck, err);
    if (st != HYPER_OK)
        return st;
    st = checkpoint_load_model(ck, m, v, err);
    checkpoint_close(ck);
    return st;
}
