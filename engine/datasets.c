/*
 * datasets.c — the dataset store of datasets.h: names, streaming uploads (temporary file,
 * incremental SHA-256, UTF-8 checked on the fly), atomic publication, the in-memory table
 * and its read-back at open, deletion, and loading for the trainer.
 *
 * Locking: st->mu guards the table (entries, their counts and running hashes).  Slow work —
 * writing, hashing, parsing, fsync — happens outside it.  An entry cannot disappear while
 * its pins (loads, append commits) or acquisitions (jobs) are non-zero, which is what lets
 * that work run unlocked; appends to one dataset take turns through `committing` and
 * st->cv.  A new name is reserved by a RESERVED entry from upload_begin to commit/abort.
 */
#include "datasets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "jsonutil.h"
#include "strokes.h"
#include "vocab.h"

#define META_FORMAT 1                      /* meta.json "format" this code writes and reads */
#define META_FILE "meta.json"
#define TEXT_FILE "data.txt"
#define UPLOAD_PREFIX ".upload-"
#define NEW_PREFIX ".new-"
#define TRASH_PREFIX ".trash-"
#define IO_CHUNK ((size_t)64 << 10)        /* bytes read at a time when hashing a file */
#define UNICODE_END 0x110000               /* code points are below this */
#define DIR_MAX (PATH_MAX - 128)           /* leaves room for NAME/part-NNNNNN.json */
#define NAME_SHOWN 80                      /* bytes of a refused name quoted in a message */

/* ---- names and kinds --------------------------------------------------------------------- */

const char *dataset_kind_str(dataset_kind k)
{
    return k == DATASET_IMAGES ? "images" : k == DATASET_STROKES ? "strokes" : "text";
}

int dataset_kind_parse(const char *s, dataset_kind *out)
{
    if (s && strcmp(s, "text") == 0)
        *out = DATASET_TEXT;
    else if (s && strcmp(s, "strokes") == 0)
        *out = DATASET_STROKES;
    else if (s && strcmp(s, "images") == 0)
        *out = DATASET_IMAGES;
    else
        return 0;
    return 1;
}

int dataset_name_valid(const char *name)
{
    if (!name || name[0] == '\0' || name[0] == '.')
        return 0;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        const char c = *p;
        const int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
        if (!ok || n + 1 >= DATASET_NAME_MAX)
            return 0;
    }
    return strstr(name, "..") == NULL;
}

/* Copies a name that passed dataset_name_valid (so it fits) into a name buffer. */
static void name_copy(char dst[DATASET_NAME_MAX], const char *name)
{
    const size_t n = strnlen(name, DATASET_NAME_MAX - 1);
    memcpy(dst, name, n);
    dst[n] = '\0';
}

static int is_builtin_name(const char *name)
{
    return strcmp(name, DATASET_FORTUNES_NAME) == 0 || strcmp(name, DATASET_HERSHEY_NAME) == 0 ||
           strcmp(name, DATASET_MNIST_NAME) == 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sha_hex(const struct sha256_ctx *ctx, char hex[65])
{
    struct sha256_ctx c = *ctx;    /* sha256_digest resets its context: keep the running one */
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&c, sizeof d, d);
    for (size_t i = 0; i < sizeof d; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int sha_hex_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == 2 * SHA256_DIGEST_SIZE;
}

/* ---- UTF-8 checked as it streams ----------------------------------------------------------- */

/* What vocab_build would refuse, found chunk by chunk: a sequence may straddle two chunks,
 * so up to three bytes of an unfinished one wait in pend. */
typedef struct {
    uint64_t *seen;        /* (UNICODE_END / 64) bitmap of the code points met; owned */
    int32_t distinct;
    int64_t chars;
    int64_t offset;        /* bytes consumed, pend excluded: where pend starts */
    unsigned char pend[4];
    int npend, need;
} text_check;

static hyper_status text_check_init(text_check *tc)
{
    memset(tc, 0, sizeof *tc);
    tc->seen = calloc(UNICODE_END / 64, sizeof *tc->seen);
    return tc->seen ? HYPER_OK : HYPER_ERR_NOMEM;
}

static void text_check_free(text_check *tc)
{
    free(tc->seen);
    tc->seen = NULL;
}

/* Bytes of the sequence a lead byte starts (as utf8_decode reads it), 0 for a byte that
 * cannot start one. */
static int utf8_lead_len(unsigned char b)
{
    if (b < 0x80)
        return 1;
    if ((b & 0xE0) == 0xC0)
        return 2;
    if ((b & 0xF0) == 0xE0)
        return 3;
    if ((b & 0xF8) == 0xF0)
        return 4;
    return 0;
}

static hyper_status text_char(text_check *tc, const unsigned char *s, int len, char *err)
{
    uint32_t cp = 0;
    if (len == 0 || utf8_decode((const char *)s, (size_t)len, &cp) != len)
        return hyper_fail(err, HYPER_ERR_ENCODING, "invalid UTF-8 at byte offset %" PRId64 " (byte 0x%02X)",
                          tc->offset, (unsigned)s[0]);
    if (cp == 0)
        return hyper_fail(err, HYPER_ERR_ARG,
                          "the text holds U+0000 at byte offset %" PRId64 "; a corpus cannot hold NUL",
                          tc->offset);
    uint64_t *w = &tc->seen[cp >> 6], bit = (uint64_t)1 << (cp & 63);
    if (!(*w & bit)) {
        *w |= bit;
        if (++tc->distinct > VOCAB_MAX)
            return hyper_fail(err, HYPER_ERR_ARG, "the text holds more than %d distinct characters",
                              VOCAB_MAX);
    }
    tc->chars++;
    tc->offset += len;
    return HYPER_OK;
}

static hyper_status text_feed(text_check *tc, const unsigned char *p, size_t n, char *err)
{
    size_t i = 0;
    hyper_status rc;
    if (tc->npend > 0) {
        while (tc->npend < tc->need && i < n)
            tc->pend[tc->npend++] = p[i++];
        if (tc->npend < tc->need)
            return HYPER_OK;
        tc->npend = 0;
        if ((rc = text_char(tc, tc->pend, tc->need, err)) != HYPER_OK)
            return rc;
    }
    while (i < n) {
        if (p[i] != 0 && p[i] < 0x80) {
            /* ASCII, the common case, without the decoder */
            uint64_t *w = &tc->seen[p[i] >> 6], bit = (uint64_t)1 << (p[i] & 63);
            if (!(*w & bit)) {
                *w |= bit;
                tc->distinct++;
            }
            tc->chars++;
            tc->offset++;
            i++;
            continue;
        }
        const int len = utf8_lead_len(p[i]);
        if (len > 0 && n - i < (size_t)len) {
            memcpy(tc->pend, p + i, n - i);
            tc->npend = (int)(n - i);
            tc->need = len;
            return HYPER_OK;
        }
        if ((rc = text_char(tc, p + i, len, err)) != HYPER_OK)
            return rc;
        i += (size_t)len;
    }
    return HYPER_OK;
}

/* The end of the text: nothing may be left half-decoded, and there must be something. */
static hyper_status text_finish(text_check *tc, char *err)
{
    int cut = tc->npend > 0;    /* a sequence cut short by the end, or broken before it */
    for (int k = 1; k < tc->npend; k++)
        cut &= (tc->pend[k] & 0xC0) == 0x80;
    if (tc->npend > 0 && !cut)
        return text_char(tc, tc->pend, tc->npend, err);
    if (cut)
        return hyper_fail(err, HYPER_ERR_ENCODING,
                          "invalid UTF-8 at byte offset %" PRId64 " (byte 0x%02X): the text ends inside a character",
                          tc->offset, (unsigned)tc->pend[0]);
    if (tc->chars == 0)
        return hyper_fail(err, HYPER_ERR_ARG, "the text is empty");
    return HYPER_OK;
}

/* ---- the table ----------------------------------------------------------------------------- */

typedef enum { ENTRY_LIVE = 0, ENTRY_RESERVED } entry_state;

typedef struct {
    dataset_info info;
    entry_state state;
    int32_t acquired;          /* dataset_acquire count: running jobs */
    int32_t pins;              /* loads and append commits in progress */
    int committing;            /* an append is being published; the next one waits */
    char *formats;             /* strokes: 'j' (JSON) or 'x' (XML) per part, in order; owned */
    int32_t formats_cap;
    int run_valid;             /* run holds the hash state after every part */
    struct sha256_ctx run;
} entry;

struct dataset_store {
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* an append commit finished */
    char dir[PATH_MAX];
    char fortunes[PATH_MAX];   /* the built-in fortunes file, "" when there is none */
    char mnist[PATH_MAX];      /* the built-in digits' directory, "" when there is none */
    entry **v;                 /* built-ins first, then by name; owned */
    size_t n, cap;
};

static entry *find_any(dataset_store *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->v[i]->info.name, name) == 0)
            return st->v[i];
    return NULL;
}

static entry *find_live(dataset_store *st, const char *name)
{
    entry *e = find_any(st, name);
    return e && e->state == ENTRY_LIVE ? e : NULL;
}

static int entry_cmp(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->info.builtin != y->info.builtin)
        return x->info.builtin ? -1 : 1;
    return strcmp(x->info.name, y->info.name);    /* built-ins too: fortunes, hershey-... */
}

/* Datasets that are not built in, live or reserved. */
static size_t user_count(const dataset_store *st)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n && st->v[i]->info.builtin; i++)
        n++;
    return st->n - n;
}

/* Takes e (owned) into the table: at its place in the order when sorted, else at the end
 * (open sorts once after reading the directory).  0, or -1 when out of memory (e not
 * taken). */
static int table_insert(dataset_store *st, entry *e, int sorted)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 16;
        entry **v = realloc(st->v, cap * sizeof *v);
        if (!v)
            return -1;
        st->v = v;
        st->cap = cap;
    }
    size_t i = st->n;
    if (sorted) {
        size_t lo = 0, hi = st->n;    /* first entry that sorts after e */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (entry_cmp(&st->v[mid], &e) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        i = lo;
    }
    memmove(st->v + i + 1, st->v + i, (st->n - i) * sizeof *st->v);
    st->v[i] = e;
    st->n++;
    return 0;
}

static void entry_free(entry *e)
{
    if (e) {
        free(e->formats);
        free(e);
    }
}

static void table_remove(dataset_store *st, entry *e)
{
    for (size_t i = 0; i < st->n; i++)
        if (st->v[i] == e) {
            memmove(st->v + i, st->v + i + 1, (st->n - i - 1) * sizeof *st->v);
            st->n--;
            entry_free(e);
            return;
        }
}

/* Room for `want` part formats plus a NUL.  0, or -1 when out of memory. */
static int formats_reserve(entry *e, int32_t want)
{
    if (want + 1 <= e->formats_cap)
        return 0;
    int32_t cap = e->formats_cap ? e->formats_cap : 8;
    while (cap < want + 1)
        cap *= 2;
    char *f = realloc(e->formats, (size_t)cap);
    if (!f)
        return -1;
    e->formats = f;
    e->formats_cap = cap;
    return 0;
}

static void unpin(dataset_store *st, entry *e)
{
    pthread_mutex_lock(&st->mu);
    e->pins--;
    pthread_mutex_unlock(&st->mu);
}

/* ---- paths and files ----------------------------------------------------------------------- */

/* Every path of the store is made here.  They fit by construction (dir at most DIR_MAX
 * bytes, names at most 63, file names short); one that would not becomes "", which every
 * file call refuses, rather than a cut-off path that names something else. */
static const char *path_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *path_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        buf[0] = '\0';
    return buf;
}

/* DIR/NAME/FILE into buf (PATH_MAX); file may be NULL for the directory itself.  name has
 * passed dataset_name_valid and dir is at most DIR_MAX bytes, so it always fits. */
static const char *ds_path(char *buf, const dataset_store *st, const char *name, const char *file)
{
    if (file)
        path_fmt(buf, PATH_MAX, "%s/%s/%s", st->dir, name, file);
    else
        path_fmt(buf, PATH_MAX, "%s/%s", st->dir, name);
    return buf;
}

/* The file name of strokes part k (1-based) of format f ('j' or 'x'). */
static const char *part_file(char *buf, size_t size, int32_t k, char f)
{
    snprintf(buf, size, "part-%06d.%s", (int)k, f == 'x' ? "xml" : "json");
    return buf;
}

/* Feeds the whole file at path into ctx and, when they are not NULL, the UTF-8 check tc and
 * the strokes reader rd; *bytes (may be NULL) receives its size.  Messages start with path,
 * except the reader's, which name what it was given. */
static hyper_status scan_file(const char *path, struct sha256_ctx *ctx, text_check *tc, strokes_reader *rd,
                              int64_t *bytes, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    uint8_t *buf = malloc(IO_CHUNK);
    hyper_status rc = buf ? HYPER_OK : hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    char sub[HYPER_ERRMSG_MAX];
    int64_t total = 0;
    while (rc == HYPER_OK) {
        ssize_t k = read(fd, buf, IO_CHUNK);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            rc = hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
        if (k <= 0)
            break;
        sha256_update(ctx, (size_t)k, buf);
        total += k;
        if (tc && (rc = text_feed(tc, buf, (size_t)k, sub)) != HYPER_OK)
            hyper_fail(err, rc, "%s: %s", path, sub);
        if (rd && rc == HYPER_OK)
            rc = strokes_reader_feed(rd, buf, (size_t)k, err);
    }
    if (rc == HYPER_OK && tc && (rc = text_finish(tc, sub)) != HYPER_OK)
        hyper_fail(err, rc, "%s: %s", path, sub);
    free(buf);
    close(fd);
    if (bytes)
        *bytes = total;
    return rc;
}

/* Writes DIR/NAME/meta.json (dir_path is DIR/NAME) atomically. */
static hyper_status meta_write(const char *dir_path, const dataset_info *info, char *err)
{
    json_t *j = json_pack("{s:i, s:s, s:s, s:I, s:I, s:s, s:I, s:i}", "format", META_FORMAT,
                          "name", info->name, "kind", dataset_kind_str(info->kind),
                          "bytes", (json_int_t)info->bytes, "items", (json_int_t)info->items,
                          "sha256", info->sha256, "created_ms", (json_int_t)info->created_ms,
                          "parts", (int)info->parts);
    char *text = j ? json_text(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!text)
        return hyper_fail(err, HYPER_ERR_NOMEM, "dataset '%s': cannot make meta.json", info->name);
    char path[PATH_MAX];
    path_fmt(path, sizeof path, "%s/%s", dir_path, META_FILE);
    hyper_status rc = fs_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* Reads DIR/NAME/meta.json into *info, checking every field. */
static hyper_status meta_read(const dataset_store *st, const char *name, dataset_info *info, char *err)
{
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    char sub[HYPER_ERRMSG_MAX];
    if (fs_read_file(ds_path(path, st, name, META_FILE), DATASET_META_MAX_BYTES, 0, &text, &len, sub) != HYPER_OK)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s", sub);
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!j)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: %s (line %d)", path, jerr.text, jerr.line);
    int format = 0;
    const char *jname = NULL, *kind = NULL, *sha = NULL;
    json_int_t bytes = -1, items = -1, created = -1, parts = -1;
    hyper_status rc = HYPER_OK;
    if (json_unpack_ex(j, &jerr, 0, "{s:i, s:s, s:s, s:I, s:I, s:s, s:I, s:I}", "format", &format,
                       "name", &jname, "kind", &kind, "bytes", &bytes, "items", &items,
                       "sha256", &sha, "created_ms", &created, "parts", &parts) != 0)
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: %s", path, jerr.text);
    else if (format != META_FORMAT)
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: format %d, this server reads %d", path, format, META_FORMAT);
    else if (strcmp(jname, name) != 0)
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: it names another dataset", path);
    else if (!dataset_kind_parse(kind, &info->kind))
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: unknown kind", path);
    else if (!sha_hex_valid(sha))
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: sha256 is not 64 lower-case hex digits", path);
    else if (bytes < 1 || items < 1 || created < 0 ||
             (info->kind == DATASET_TEXT ? parts != 1 : parts < 1 || parts > DATASET_MAX_PARTS))
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: bytes, items, created_ms or parts out of range", path);
    if (rc == HYPER_OK) {
        name_copy(info->name, name);
        snprintf(info->sha256, sizeof info->sha256, "%s", sha);
        info->bytes = bytes;
        info->items = items;
        info->created_ms = created;
        info->parts = (int32_t)parts;
        info->builtin = 0;
    }
    json_decref(j);
    return rc;
}

/* Size of a regular file, -1 when it is missing or not a regular file. */
static int64_t file_size(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return -1;
    return (int64_t)sb.st_size;
}

/* Removes what an interrupted write may have left in a dataset directory: meta.json
 * temporaries, and parts beyond the count meta.json gives (an append cut off before its
 * meta.json was renamed). */
static void clean_dataset_dir(const dataset_store *st, const dataset_info *info)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    DIR *d = opendir(ds_path(dir, st, info->name, NULL));
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int k = 0, used = 0;
        char ext[8];
        int stray = strncmp(de->d_name, META_FILE ".tmp.", strlen(META_FILE ".tmp.")) == 0;
        if (sscanf(de->d_name, "part-%6d.%4s%n", &k, ext, &used) == 2 && de->d_name[used] == '\0')
            stray |= info->kind == DATASET_TEXT || k > info->parts;
        if (stray) {
            path_fmt(path, sizeof path, "%s/%s", dir, de->d_name);
            if (unlink(path) == 0)
                hyper_log(HYPER_LOG_WARN, "%s: left by an interrupted write, removed", path);
        }
    }
    closedir(d);
}

/* Reads one dataset directory back into a new entry. */
static hyper_status entry_load(const dataset_store *st, const char *name, entry **out, char *err)
{
    *out = NULL;
    char path[PATH_MAX], file[32];
    struct stat sb;
    if (stat(ds_path(path, st, name, NULL), &sb) != 0 || !S_ISDIR(sb.st_mode))
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: not a directory", path);
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    hyper_status rc = meta_read(st, name, &e->info, err);
    if (rc != HYPER_OK)
        goto fail;
    clean_dataset_dir(st, &e->info);
    int64_t total = 0;
    if (e->info.kind == DATASET_TEXT) {
        total = file_size(ds_path(path, st, name, TEXT_FILE));
        if (total < 0) {
            rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: missing", path);
            goto fail;
        }
    } else {
        if (formats_reserve(e, e->info.parts) != 0) {
            rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int32_t k = 1; k <= e->info.parts; k++) {
            const int64_t js = file_size(ds_path(path, st, name, part_file(file, sizeof file, k, 'j')));
            const int64_t xs = file_size(ds_path(path, st, name, part_file(file, sizeof file, k, 'x')));
            if ((js < 0) == (xs < 0)) {
                rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s/%s: part %d is %s", st->dir, name, (int)k,
                                js < 0 ? "missing" : "there as both .json and .xml");
                goto fail;
            }
            e->formats[k - 1] = js >= 0 ? 'j' : 'x';
            total += js >= 0 ? js : xs;
        }
        e->formats[e->info.parts] = '\0';
    }
    if (total != e->info.bytes) {
        rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s/%s: its parts hold %" PRId64 " bytes, meta.json says %" PRId64,
                        st->dir, name, total, e->info.bytes);
        goto fail;
    }
    *out = e;
    return HYPER_OK;
fail:
    entry_free(e);
    return rc;
}

/* Makes dir and its missing parents. */
static int mkdir_parents(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- open and free ------------------------------------------------------------------------- */

/* The built-in fortunes: the text file checked and hashed as an upload would be. */
static hyper_status builtin_fortunes(dataset_store *st, const char *path, entry **out, char *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", path, strerror(errno));
    entry *e = calloc(1, sizeof *e);
    text_check tc;
    if (!e || text_check_init(&tc) != HYPER_OK) {
        free(e);
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    }
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    int64_t total = 0;
    hyper_status rc = scan_file(path, &ctx, &tc, NULL, &total, err);
    if (rc == HYPER_OK) {
        name_copy(e->info.name, DATASET_FORTUNES_NAME);
        e->info.kind = DATASET_TEXT;
        e->info.bytes = total;
        e->info.items = tc.chars;
        sha_hex(&ctx, e->info.sha256);
        e->info.created_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        e->info.parts = 1;
        e->info.builtin = 1;
        snprintf(st->fortunes, sizeof st->fortunes, "%s", path);
        *out = e;
    } else {
        free(e);
    }
    text_check_free(&tc);
    return rc;
}

static entry *builtin_hershey(void)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    name_copy(e->info.name, DATASET_HERSHEY_NAME);
    e->info.kind = DATASET_STROKES;
    e->info.items = DATASET_HERSHEY_LINES;
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, strlen(DATASET_HERSHEY_SPEC), (const uint8_t *)DATASET_HERSHEY_SPEC);
    sha_hex(&ctx, e->info.sha256);
    e->info.builtin = 1;
    return e;
}

hyper_status dataset_store_add_mnist(dataset_store *st, const char *dir, char *err)
{
    /* hashed in order as one stream and counted, not parsed: parsing 22 MB of JSON would
     * hold up every start; dataset_load_images checks every value when a job reads them */
    char path[PATH_MAX];
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    int64_t total = 0, items = 0;
    struct stat sb;
    if (strlen(dir) > DIR_MAX)
        return hyper_fail(err, HYPER_ERR_ARG, "%.80s...: path too long", dir);
    if (stat(dir, &sb) != 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", dir, strerror(errno));
    for (int d = 0; d < IMG_CLASSES; d++) {
        char *body = NULL;
        size_t len = 0;
        hyper_status rc = fs_read_file(path_fmt(path, sizeof path, "%s/%d.json", dir, d), MNIST_MAX_FILE_BYTES, 0,
                                       &body, &len, err);
        if (rc != HYPER_OK)
            return rc;
        sha256_update(&ctx, len, (const uint8_t *)body);
        int64_t values = 1;    /* a flat array of numbers: one more value than commas */
        for (size_t k = 0; k < len; k++)
            values += body[k] == ',';
        free(body);
        if (values % IMG_PIXELS != 0)
            return hyper_fail(err, HYPER_ERR_FORMAT, "%s: %" PRId64 " values are not whole 28×28 images", path,
                              values);
        total += (int64_t)len;
        items += values / IMG_PIXELS;
    }
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    name_copy(e->info.name, DATASET_MNIST_NAME);
    e->info.kind = DATASET_IMAGES;
    e->info.bytes = total;
    e->info.items = items;
    sha_hex(&ctx, e->info.sha256);
    e->info.created_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    e->info.parts = IMG_CLASSES;
    e->info.builtin = 1;
    pthread_mutex_lock(&st->mu);
    const int taken = find_any(st, DATASET_MNIST_NAME) != NULL, failed = !taken && table_insert(st, e, 1) != 0;
    if (!taken && !failed)
        snprintf(st->mnist, sizeof st->mnist, "%s", dir);
    pthread_mutex_unlock(&st->mu);
    if (taken || failed) {
        entry_free(e);
        return taken ? hyper_fail(err, HYPER_ERR_CONFLICT, "the mnist dataset is there already")
                     : hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    }
    return HYPER_OK;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

hyper_status dataset_store_open(dataset_store **out, const char *dir, const char *fortunes_path,
                                char *err)
{
    *out = NULL;
    if (!dir || !*dir)
        return hyper_fail(err, HYPER_ERR_ARG, "the dataset directory is not given");
    if (strlen(dir) > DIR_MAX)
        return hyper_fail(err, HYPER_ERR_ARG, "%.80s...: path too long (at most %d bytes)", dir, DIR_MAX);
    if (mkdir_parents(dir) != 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", dir, strerror(errno));
    dataset_store *st = calloc(1, sizeof *st);
    if (!st)
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    hyper_status rc = HYPER_OK;
    char sub[HYPER_ERRMSG_MAX];

    /* built-ins */
    const char *fp = fortunes_path ? fortunes_path : DATASET_FORTUNES_DEFAULT;
    struct stat sb;
    if (stat(fp, &sb) != 0) {
        hyper_log(HYPER_LOG_WARN, "%s: %s; the built-in fortunes dataset reads %s", fp, strerror(errno),
                          DATASET_FORTUNES_FALLBACK);
        fp = DATASET_FORTUNES_FALLBACK;
    }
    entry *e = NULL;
    if (builtin_fortunes(st, fp, &e, sub) != HYPER_OK)
        hyper_log(HYPER_LOG_WARN, "no built-in fortunes dataset: %s", sub);
    else if (table_insert(st, e, 0) != 0)
        entry_free(e), rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    e = builtin_hershey();
    if (rc == HYPER_OK && (!e || table_insert(st, e, 0) != 0))
        entry_free(e), rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    if (rc != HYPER_OK) {
        dataset_store_free(st);
        return rc;
    }

    /* what earlier runs left */
    DIR *d = opendir(dir);
    if (!d) {
        rc = hyper_fail(err, HYPER_ERR_IO, "%s: %s", dir, strerror(errno));
        dataset_store_free(st);
        return rc;
    }
    struct dirent *de;
    char path[PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (!*path_fmt(path, sizeof path, "%s/%s", dir, name))
            continue;    /* longer than any name this store makes */
        if (has_prefix(name, UPLOAD_PREFIX) || has_prefix(name, NEW_PREFIX) || has_prefix(name, TRASH_PREFIX)) {
            if (fs_remove_tree(path) == 0)
                hyper_log(HYPER_LOG_WARN, "%s: left by an interrupted upload or delete, removed", path);
            continue;
        }
        if (!dataset_name_valid(name)) {
            hyper_log(HYPER_LOG_WARN, "%s: not a dataset name, skipped", path);
            continue;
        }
        if (is_builtin_name(name)) {
            hyper_log(HYPER_LOG_WARN, "%s: the name of a built-in dataset, skipped", path);
            continue;
        }
        if (user_count(st) >= DATASET_MAX_COUNT) {
            hyper_log(HYPER_LOG_WARN, "%s: beyond the limit of %d datasets, skipped", path, DATASET_MAX_COUNT);
            continue;
        }
        if (entry_load(st, name, &e, sub) != HYPER_OK) {
            hyper_log(HYPER_LOG_WARN, "dataset '%s' skipped: %s", name, sub);
            continue;
        }
        if (table_insert(st, e, 0) != 0) {
            entry_free(e);
            rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    qsort(st->v, st->n, sizeof *st->v, entry_cmp);
    if (rc != HYPER_OK) {
        dataset_store_free(st);
        return rc;
    }
    *out = st;
    return HYPER_OK;
}

void dataset_store_free(dataset_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        entry_free(st->v[i]);
    free(st->v);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* ---- uploads ------------------------------------------------------------------------------- */

typedef enum { BODY_TEXT = 0, BODY_JSON, BODY_XML } body_format;

struct dataset_upload {
    dataset_store *st;
    char name[DATASET_NAME_MAX];
    dataset_kind kind;
    body_format fmt;
    int create;                /* 1: makes the dataset; 0: appends a part to it */
    int reserved;              /* the name's RESERVED entry is still ours to remove */
    int fd;                    /* the temporary file, -1 once closed */
    char tmp[PATH_MAX];        /* its path, "" once removed or renamed into place */
    int64_t bytes, max;
    struct sha256_ctx sha;     /* of the body so far */
    text_check tc;             /* text bodies */
    hyper_status failed;       /* a write failed: every later call repeats it */
    char failmsg[HYPER_ERRMSG_MAX];
};

/* The media type of a Content-Type value (parameters and blanks dropped, any case). */
static int parse_content_type(const char *ct, body_format *fmt, const char **type, int *type_len)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    *type = ct;
    *type_len = n > NAME_SHOWN ? NAME_SHOWN : (int)n;
    static const struct { const char *type; body_format fmt; } known[] = {
        {"text/plain", BODY_TEXT}, {"application/json", BODY_JSON},
        {"application/xml", BODY_XML}, {"text/xml", BODY_XML},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].type) == n && strncasecmp(ct, known[i].type, n) == 0) {
            *fmt = known[i].fmt;
            return 1;
        }
    return 0;
}

/* Gives the name back (when this upload reserved it) and the temporary file up. */
static void upload_discard(dataset_upload *up)
{
    if (up->fd >= 0) {
        close(up->fd);
        up->fd = -1;
    }
    if (up->tmp[0]) {
        unlink(up->tmp);
        up->tmp[0] = '\0';
    }
    if (up->reserved) {
        dataset_store *st = up->st;
        pthread_mutex_lock(&st->mu);
        entry *e = find_any(st, up->name);
        if (e && e->state == ENTRY_RESERVED)
            table_remove(st, e);
        pthread_mutex_unlock(&st->mu);
        up->reserved = 0;
    }
}

/* Records a failure whose message is in up->failmsg, drops everything on disk, and returns
 * the failure to the caller too. */
static hyper_status upload_fail(dataset_upload *up, hyper_status rc, char *err)
{
    up->failed = rc;
    upload_discard(up);
    return hyper_fail(err, rc, "%s", up->failmsg);
}

static void upload_free(dataset_upload *up)
{
    upload_discard(up);
    text_check_free(&up->tc);
    free(up);
}

hyper_status dataset_upload_begin(dataset_store *st, const char *name, dataset_kind kind,
                                  const char *content_type, int64_t max_bytes,
                                  dataset_upload **out, char *err)
{
    *out = NULL;
    if (!dataset_name_valid(name))
        return hyper_fail(err, HYPER_ERR_ARG,
                          "invalid dataset name '%.*s': use 1-%d characters of A-Z a-z 0-9 . _ -, "
                          "not starting with '.' and without \"..\"",
                          NAME_SHOWN, name ? name : "", DATASET_NAME_MAX - 1);
    if (kind == DATASET_IMAGES)
        return hyper_fail(err, HYPER_ERR_ARG, "kind images cannot be uploaded: the built-in mnist is the image dataset");
    if (kind != DATASET_TEXT && kind != DATASET_STROKES)
        return hyper_fail(err, HYPER_ERR_ARG, "kind must be text or strokes");
    if (max_bytes < 1 || max_bytes > DATASET_MAX_BYTES_CEILING)
        return hyper_fail(err, HYPER_ERR_ARG, "the size limit %" PRId64 " is outside 1..%" PRId64,
                          max_bytes, DATASET_MAX_BYTES_CEILING);
    body_format fmt = BODY_TEXT;
    const char *type = "";
    int type_len = 0;
    if (!content_type && kind == DATASET_STROKES)
        return hyper_fail(err, HYPER_ERR_ARG,
                          "a strokes upload needs Content-Type application/json or application/xml");
    if (content_type && !parse_content_type(content_type, &fmt, &type, &type_len))
        return hyper_fail(err, HYPER_ERR_ARG,
                          "Content-Type '%.*s' is not accepted: text/plain (kind=text), "
                          "application/json or application/xml (kind=strokes)", type_len, type);
    if (kind == DATASET_TEXT && fmt != BODY_TEXT)
        return hyper_fail(err, HYPER_ERR_ARG, "kind=text takes text/plain, not %.*s", type_len, type);
    if (kind == DATASET_STROKES && fmt == BODY_TEXT)
        return hyper_fail(err, HYPER_ERR_ARG,
                          "kind=strokes takes application/json or application/xml, not %.*s", type_len, type);

    dataset_upload *up = calloc(1, sizeof *up);
    if (!up || (kind == DATASET_TEXT && text_check_init(&up->tc) != HYPER_OK)) {
        free(up);
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    }
    up->st = st;
    name_copy(up->name, name);
    up->kind = kind;
    up->fmt = fmt;
    up->fd = -1;
    up->max = kind == DATASET_STROKES && max_bytes > DATASET_STROKES_PART_MAX ? DATASET_STROKES_PART_MAX
                                                                              : max_bytes;
    sha256_init(&up->sha);

    /* create or append, decided now; a new name is held until commit or abort */
    hyper_status rc = HYPER_OK;
    char path[PATH_MAX];
    struct stat sb;
    pthread_mutex_lock(&st->mu);
    entry *e = find_any(st, name);
    if (is_builtin_name(name))
        rc = hyper_fail(err, HYPER_ERR_CONFLICT, "'%s' is a built-in dataset; choose another name", name);
    else if (e && e->state == ENTRY_RESERVED)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT, "dataset '%s' is being uploaded by another request", name);
    else if (e && kind == DATASET_TEXT)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT, "dataset '%s' exists; delete it first", name);
    else if (e && e->info.kind == DATASET_TEXT)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT,
                        "dataset '%s' holds text; strokes cannot be added to it", name);
    else if (e && e->acquired > 0)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT,
                        "dataset '%s' is used by a training job; add parts when the job has finished", name);
    else if (e && e->info.parts >= DATASET_MAX_PARTS)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT, "dataset '%s' has the maximum of %d parts", name,
                        DATASET_MAX_PARTS);
    else if (!e && user_count(st) >= DATASET_MAX_COUNT)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT, "the store holds the maximum of %d datasets",
                        DATASET_MAX_COUNT);
    else if (!e && lstat(ds_path(path, st, name, NULL), &sb) == 0)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT,
                        "a damaged dataset directory '%s' is in the way (skipped at start-up; "
                        "see the server log): it must be removed by hand", name);
    if (rc == HYPER_OK && !e) {
        entry *r = calloc(1, sizeof *r);
        if (r)
            name_copy(r->info.name, name);
        if (!r || (kind == DATASET_STROKES && formats_reserve(r, 1) != 0) || table_insert(st, r, 1) != 0) {
            entry_free(r);
            rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
        } else {
            r->info.kind = kind;
            r->state = ENTRY_RESERVED;
            up->create = up->reserved = 1;
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (rc == HYPER_OK) {
        path_fmt(up->tmp, sizeof up->tmp, "%s/" UPLOAD_PREFIX "XXXXXX", st->dir);
        up->fd = mkostemp(up->tmp, O_CLOEXEC);
        if (up->fd < 0) {
            rc = hyper_fail(err, fs_errno_status(errno), "cannot make a temporary file in the dataset directory: %s",
                            strerror(errno));
            up->tmp[0] = '\0';
        } else if (fchmod(up->fd, 0644) != 0) {
            rc = hyper_fail(err, HYPER_ERR_IO, "cannot set the mode of an upload: %s", strerror(errno));
        }
    }
    if (rc != HYPER_OK) {
        upload_free(up);
        return rc;
    }
    *out = up;
    return HYPER_OK;
}

hyper_status dataset_upload_write(dataset_upload *up, const void *data, size_t n, char *err)
{
    if (up->failed)
        return hyper_fail(err, up->failed, "%s", up->failmsg);
    if (n == 0)
        return HYPER_OK;
    if ((uint64_t)n > (uint64_t)(up->max - up->bytes)) {
        hyper_fail(up->failmsg, HYPER_ERR_TOO_LARGE, "the upload is larger than the limit of %" PRId64 " bytes%s",
                   up->max, up->kind == DATASET_STROKES && up->max == DATASET_STROKES_PART_MAX
                                ? " for one strokes part" : "");
        return upload_fail(up, HYPER_ERR_TOO_LARGE, err);
    }
    hyper_status rc;
    if (up->kind == DATASET_TEXT && (rc = text_feed(&up->tc, data, n, up->failmsg)) != HYPER_OK)
        return upload_fail(up, rc, err);
    if (fs_write_all(up->fd, data, n) != 0) {
        const hyper_status why = fs_errno_status(errno);
        hyper_fail(up->failmsg, why, "cannot store the upload: %s", strerror(errno));
        return upload_fail(up, why, err);
    }
    sha256_update(&up->sha, n, data);
    up->bytes += (int64_t)n;
    return HYPER_OK;
}

void dataset_upload_abort(dataset_upload *up)
{
    if (up)
        upload_free(up);
}

/* A new dataset: assembled in DIR/.new-XXXXXX, then renamed to DIR/NAME in one step. */
static hyper_status publish_new(dataset_upload *up, int64_t items, dataset_info *info, char *err)
{
    dataset_store *st = up->st;
    memset(info, 0, sizeof *info);
    name_copy(info->name, up->name);
    info->kind = up->kind;
    info->bytes = up->bytes;
    info->items = items;
    sha_hex(&up->sha, info->sha256);
    info->created_ms = wall_ms();
    info->parts = 1;
    const char f = up->fmt == BODY_XML ? 'x' : 'j';

    char stage[PATH_MAX], path[PATH_MAX + 32], file[32];
    path_fmt(stage, sizeof stage, "%s/" NEW_PREFIX "XXXXXX", st->dir);
    if (!mkdtemp(stage))
        return hyper_fail(err, fs_errno_status(errno), "cannot make a directory in the dataset directory: %s",
                          strerror(errno));
    hyper_status rc = HYPER_OK;
    path_fmt(path, sizeof path, "%s/%s", stage,
             up->kind == DATASET_TEXT ? TEXT_FILE : part_file(file, sizeof file, 1, f));
    if (chmod(stage, 0755) != 0 || rename(up->tmp, path) != 0)
        rc = hyper_fail(err, HYPER_ERR_IO, "cannot move the upload into place: %s", strerror(errno));
    else
        up->tmp[0] = '\0';
    if (rc == HYPER_OK)
        rc = meta_write(stage, info, err);    /* syncs stage, which holds the part too */
    if (rc == HYPER_OK && rename(stage, ds_path(path, st, up->name, NULL)) != 0)
        rc = errno == EEXIST || errno == ENOTEMPTY
                 ? hyper_fail(err, HYPER_ERR_CONFLICT, "a directory '%s' appeared in the dataset directory",
                              up->name)
                 : hyper_fail(err, HYPER_ERR_IO, "cannot publish dataset '%s': %s", up->name, strerror(errno));
    if (rc != HYPER_OK) {
        fs_remove_tree(stage);
        return rc;
    }
    if (fs_sync_parent_dir(path) != 0)
        hyper_log(HYPER_LOG_WARN, "%s: cannot sync the dataset directory: %s", path, strerror(errno));

    pthread_mutex_lock(&st->mu);
    entry *e = find_any(st, up->name);    /* our RESERVED entry: nobody else removes it */
    if (up->kind == DATASET_STROKES) {    /* room made at begin */
        e->formats[0] = f;
        e->formats[1] = '\0';
    }
    e->info = *info;
    e->run = up->sha;
    e->run_valid = 1;
    e->state = ENTRY_LIVE;
    up->reserved = 0;
    pthread_mutex_unlock(&st->mu);
    return HYPER_OK;
}

/* The hash state after every part of a dataset, read back from its files (after a restart
 * the running state is not known), and checked against the sha256 of its meta.json. */
static hyper_status rehash(const dataset_store *st, const dataset_info *info, const char *formats,
                           struct sha256_ctx *run, char *err)
{
    char path[PATH_MAX], file[32], hex[65];
    sha256_init(run);
    for (int32_t k = 1; k <= info->parts; k++) {
        hyper_status rc = scan_file(ds_path(path, st, info->name, part_file(file, sizeof file, k, formats[k - 1])),
                                    run, NULL, NULL, NULL, err);
        if (rc != HYPER_OK)
            return rc;
    }
    sha_hex(run, hex);
    if (strcmp(hex, info->sha256) != 0)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "dataset '%s' is damaged: its parts no longer match the sha256 in its meta.json",
                          info->name);
    return HYPER_OK;
}

/* One more part of an existing strokes dataset, the upload's temporary file. */
static hyper_status publish_append(dataset_upload *up, int64_t items, dataset_info *info, char *err)
{
    dataset_store *st = up->st;
    hyper_status rc = HYPER_OK;
    char *formats = NULL;
    struct sha256_ctx run;
    int have_run = 0;
    const char f = up->fmt == BODY_XML ? 'x' : 'j';

    pthread_mutex_lock(&st->mu);
    entry *e = find_live(st, up->name);
    if (!e) {
        pthread_mutex_unlock(&st->mu);
        return hyper_fail(err, HYPER_ERR_NOT_FOUND, "dataset '%s' was deleted while this part was uploaded",
                          up->name);
    }
    if (e->info.kind != DATASET_STROKES) {
        pthread_mutex_unlock(&st->mu);
        return hyper_fail(err, HYPER_ERR_CONFLICT,
                          "dataset '%s' was replaced by a text dataset while this part was uploaded", up->name);
    }
    if (e->acquired > 0) { /* a job pinned it while this part was on its way */
        pthread_mutex_unlock(&st->mu);
        return hyper_fail(err, HYPER_ERR_CONFLICT,
                          "dataset '%s' is used by a training job; add parts when the job has finished", up->name);
    }
    e->pins++;    /* e stays while we wait and work unlocked */
    while (e->committing)
        pthread_cond_wait(&st->cv, &st->mu);
    if (e->info.parts >= DATASET_MAX_PARTS)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT, "dataset '%s' has the maximum of %d parts", up->name,
                        DATASET_MAX_PARTS);
    else if (formats_reserve(e, e->info.parts + 1) != 0 ||
             (!e->run_valid && !(formats = strndup(e->formats, (size_t)e->info.parts))))
        rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    if (rc == HYPER_OK) {
        e->committing = 1;
        *info = e->info;
        run = e->run;
        have_run = e->run_valid;
    }
    pthread_mutex_unlock(&st->mu);
    if (rc != HYPER_OK) {
        unpin(st, e);
        return rc;
    }

    if (!have_run && (rc = rehash(st, info, formats, &run, err)) == HYPER_OK)
        have_run = 2;    /* worth keeping even if the rest fails */
    free(formats);
    const struct sha256_ctx before = run;
    const dataset_info old = *info;
    char dir[PATH_MAX], path[PATH_MAX], file[32];
    ds_path(dir, st, up->name, NULL);
    ds_path(path, st, up->name, part_file(file, sizeof file, info->parts + 1, f));
    char sub[HYPER_ERRMSG_MAX];
    if (rc == HYPER_OK && (rc = scan_file(up->tmp, &run, NULL, NULL, NULL, sub)) != HYPER_OK)
        hyper_fail(err, rc, "cannot read the upload back: %s", sub);
    if (rc == HYPER_OK) {
        if (rename(up->tmp, path) != 0)
            rc = hyper_fail(err, HYPER_ERR_IO, "cannot move the upload into dataset '%s': %s", up->name,
                            strerror(errno));
        else
            up->tmp[0] = '\0';
    }
    if (rc == HYPER_OK) {
        info->bytes += up->bytes;
        info->items += items;
        info->parts++;
        sha_hex(&run, info->sha256);
        /* the part counts once meta.json says so; until then it is a stray file.  meta_write
         * can fail after its rename (the directory sync): then put the old one back. */
        if ((rc = meta_write(dir, info, err)) != HYPER_OK) {
            unlink(path);
            meta_write(dir, &old, NULL);
        }
    }

    pthread_mutex_lock(&st->mu);
    if (rc == HYPER_OK) {
        e->formats[e->info.parts] = f;
        e->formats[e->info.parts + 1] = '\0';
        e->info = *info;
        e->run = run;
        e->run_valid = 1;
    } else if (have_run == 2) {
        e->run = before;
        e->run_valid = 1;
    }
    e->committing = 0;
    e->pins--;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

hyper_status dataset_upload_commit(dataset_upload *up, dataset_info *out, char *err)
{
    hyper_status rc = HYPER_OK;
    int64_t items = 0;
    dataset_info info;
    char label[DATASET_NAME_MAX + 32];
    if (up->failed) {
        rc = hyper_fail(err, up->failed, "%s", up->failmsg);
        goto out;
    }
    int bad = fsync(up->fd) != 0;
    bad |= close(up->fd) != 0;
    up->fd = -1;
    if (bad) {
        rc = hyper_fail(err, fs_errno_status(errno), "cannot store the upload: %s", strerror(errno));
        goto out;
    }
    if (up->kind == DATASET_TEXT) {
        rc = text_finish(&up->tc, err);
        items = up->tc.chars;
    } else {
        /* the part is read back from the disk in chunks, its lines checked and counted one
         * at a time and let go: memory stays bounded by the largest line, not the part */
        snprintf(label, sizeof label, "dataset '%s' upload", up->name);
        strokes_reader *rd = NULL;
        struct sha256_ctx back;
        sha256_init(&back);
        int64_t got = 0;
        char sub[HYPER_ERRMSG_MAX], have[65], sent[65];
        rc = strokes_reader_new(&rd, NULL, up->fmt == BODY_XML ? STROKES_FORMAT_IAM : STROKES_FORMAT_JSON, label,
                                err);
        if (rc == HYPER_OK && (rc = scan_file(up->tmp, &back, NULL, rd, &got, sub)) != HYPER_OK)
            hyper_fail(err, rc, rc == HYPER_ERR_IO ? "cannot read the upload back: %s" : "%s", sub);
        if (rc == HYPER_OK) {
            sha_hex(&back, have);
            sha_hex(&up->sha, sent);
            if (got != up->bytes || strcmp(have, sent) != 0)
                rc = hyper_fail(err, HYPER_ERR_IO, "the upload changed on disk while it was stored");
        }
        if (rc == HYPER_OK)
            rc = strokes_reader_finish(rd, &items, err);
        strokes_reader_free(rd);
        if (rc == HYPER_OK && items == 0)
            rc = hyper_fail(err, HYPER_ERR_FORMAT, "%s: holds no lines of strokes", label);
    }
    if (rc == HYPER_OK)
        rc = up->create ? publish_new(up, items, &info, err) : publish_append(up, items, &info, err);
    if (rc == HYPER_OK && out)
        *out = info;
out:
    upload_free(up);
    return rc;
}

/* ---- queries and removal ----------------------------------------------------------------- */

size_t dataset_list(dataset_store *st, dataset_info *out, size_t max)
{
    size_t total = 0;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++)
        if (st->v[i]->state == ENTRY_LIVE) {
            if (total < max)
                out[total] = st->v[i]->info;
            total++;
        }
    pthread_mutex_unlock(&st->mu);
    return total;
}

static hyper_status not_found(const char *name, char *err)
{
    return hyper_fail(err, HYPER_ERR_NOT_FOUND, "no dataset '%.*s'", NAME_SHOWN, name ? name : "");
}

hyper_status dataset_get(dataset_store *st, const char *name, dataset_info *out, char *err)
{
    if (!dataset_name_valid(name))
        return not_found(name, err);
    pthread_mutex_lock(&st->mu);
    entry *e = find_live(st, name);
    if (e)
        *out = e->info;
    pthread_mutex_unlock(&st->mu);
    return e ? HYPER_OK : not_found(name, err);
}

hyper_status dataset_delete(dataset_store *st, const char *name, char *err)
{
    if (!dataset_name_valid(name))
        return not_found(name, err);
    hyper_status rc = HYPER_OK;
    char path[PATH_MAX], trash[PATH_MAX];
    pthread_mutex_lock(&st->mu);
    entry *e = find_live(st, name);
    if (!e)
        rc = not_found(name, err);
    else if (e->info.builtin)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT, "'%s' is a built-in dataset and cannot be deleted", name);
    else if (e->acquired > 0)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT, "dataset '%s' is in use by %d running job%s", name,
                        (int)e->acquired, e->acquired == 1 ? "" : "s");
    else if (e->pins > 0)
        rc = hyper_fail(err, HYPER_ERR_CONFLICT,
                        "dataset '%s' is being loaded or added to; try again in a moment", name);
    if (rc == HYPER_OK) {
        /* out of sight in one rename (onto an empty directory, which rename replaces), then
         * removed at leisure; a crash in between leaves a .trash- directory open removes */
        path_fmt(trash, sizeof trash, "%s/" TRASH_PREFIX "XXXXXX", st->dir);
        if (!mkdtemp(trash)) {
            rc = hyper_fail(err, HYPER_ERR_IO, "cannot delete dataset '%s': %s", name, strerror(errno));
        } else if (rename(ds_path(path, st, name, NULL), trash) != 0) {
            rc = hyper_fail(err, HYPER_ERR_IO, "cannot delete dataset '%s': %s", name, strerror(errno));
            rmdir(trash);
        } else {
            table_remove(st, e);
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (rc != HYPER_OK)
        return rc;
    if (fs_sync_parent_dir(trash) != 0 || fs_remove_tree(trash) != 0)
        hyper_log(HYPER_LOG_WARN, "%s: cannot remove a deleted dataset: %s", trash, strerror(errno));
    return HYPER_OK;
}

hyper_status dataset_acquire(dataset_store *st, const char *name, dataset_info *out, char *err)
{
    if (!dataset_name_valid(name))
        return not_found(name, err);
    pthread_mutex_lock(&st->mu);
    entry *e = find_live(st, name);
    if (e) {
        e->acquired++;
        if (out)
            *out = e->info;
    }
    pthread_mutex_unlock(&st->mu);
    return e ? HYPER_OK : not_found(name, err);
}

void dataset_release(dataset_store *st, const char *name)
{
    if (!dataset_name_valid(name))
        return;
    pthread_mutex_lock(&st->mu);
    entry *e = find_live(st, name);
    if (e && e->acquired > 0)
        e->acquired--;
    pthread_mutex_unlock(&st->mu);
}

/* ---- loading for training ---------------------------------------------------------------- */

/* Finds a live dataset of the wanted kind and pins it (unpin when done). */
static hyper_status pin_kind(dataset_store *st, const char *name, dataset_kind want, entry **out, char *err)
{
    *out = NULL;
    if (!dataset_name_valid(name))
        return not_found(name, err);
    hyper_status rc = HYPER_OK;
    pthread_mutex_lock(&st->mu);
    entry *e = find_live(st, name);
    if (!e)
        rc = not_found(name, err);
    else if (e->info.kind != want)
        rc = hyper_fail(err, HYPER_ERR_ARG, "dataset '%s' holds %s; this needs a %s dataset", name,
                        dataset_kind_str(e->info.kind), dataset_kind_str(want));
    else
        e->pins++, *out = e;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

hyper_status dataset_load_text(dataset_store *st, const char *name, size_t max_bytes, const vocab *voc,
                               double val_fraction, corpus *out, char *err)
{
    memset(out, 0, sizeof *out);
    entry *e;
    hyper_status rc = pin_kind(st, name, DATASET_TEXT, &e, err);
    if (rc != HYPER_OK)
        return rc;
    char path[PATH_MAX], sub[HYPER_ERRMSG_MAX];
    if (e->info.builtin)
        snprintf(path, sizeof path, "%s", st->fortunes);
    else
        ds_path(path, st, name, TEXT_FILE);
    rc = corpus_load(out, path, max_bytes, voc, val_fraction, sub);
    unpin(st, e);
    return rc == HYPER_OK ? rc : hyper_fail(err, rc, "dataset '%s': %s", name, sub);
}

hyper_status dataset_load_strokes(dataset_store *st, const char *name, double val_fraction,
                                  stroke_corpus *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (!(val_fraction >= 0 && val_fraction < 1))
        return hyper_fail(err, HYPER_ERR_ARG, "validation fraction %g must be in [0, 1)", val_fraction);
    entry *e;
    hyper_status rc = pin_kind(st, name, DATASET_STROKES, &e, err);
    if (rc != HYPER_OK)
        return rc;
    if (e->info.builtin) {
        unpin(st, e);
        return stroke_corpus_load(out, DATASET_HERSHEY_SPEC, val_fraction, err);
    }
    /* parts are never changed once written: a snapshot of the list is all the lock guards */
    pthread_mutex_lock(&st->mu);
    const int32_t nparts = e->info.parts;
    char *formats = strndup(e->formats, (size_t)nparts);
    pthread_mutex_unlock(&st->mu);
    stroke_set lines;
    strokes_init(&lines);
    char path[PATH_MAX], file[32], label[DATASET_NAME_MAX + 48];
    if (!formats)
        rc = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory");
    for (int32_t k = 1; rc == HYPER_OK && k <= nparts; k++) {
        part_file(file, sizeof file, k, formats[k - 1]);
        snprintf(label, sizeof label, "dataset '%s' %s", name, file);
        strokes_reader *rd;
        rc = strokes_reader_new(&rd, &lines, formats[k - 1] == 'x' ? STROKES_FORMAT_IAM : STROKES_FORMAT_JSON, label,
                                err);
        if (rc == HYPER_OK && (rc = strokes_read_file(rd, ds_path(path, st, name, file), err)) == HYPER_OK)
            rc = strokes_reader_finish(rd, NULL, err);
        strokes_reader_free(rd);
    }
    free(formats);
    unpin(st, e);
    if (rc != HYPER_OK) {
        strokes_free(&lines);
        return rc;
    }
    snprintf(label, sizeof label, "dataset '%s'", name);
    return stroke_corpus_prepare(out, &lines, val_fraction, label, err);
}

hyper_status dataset_load_images(dataset_store *st, const char *name, image_set *out, char *err)
{
    memset(out, 0, sizeof *out);
    entry *e;
    hyper_status rc = pin_kind(st, name, DATASET_IMAGES, &e, err);
    if (rc != HYPER_OK)
        return rc;
    rc = mnist_load(out, st->mnist, err);   /* the only images dataset is the built-in */
    unpin(st, e);
    return rc;
}
