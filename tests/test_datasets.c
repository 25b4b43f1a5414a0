/*
 * test_datasets.c — the dataset store of engine/datasets.h on real files in a mkdtemp
 * directory: names that could leave the store, streamed uploads checked against SHA-256
 * values known independently (FIPS 180-2's "abc" and 448-bit messages), refusals that
 * leave nothing behind, strokes parts appended in order, the store read back from disk
 * (damaged datasets skipped), deletion against built-ins and running jobs, concurrent
 * uploads, and the corpora the trainer gets.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datasets.h"
#include "fsutil.h"

/* ---- helpers ------------------------------------------------------------------------- */

#define PATH_BUF 512
#define LIST_MAX 64

/* FIPS 180-2, appendix B.1 and B.2 */
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define MSG448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define MSG448_SHA256 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"

/* Two lines of strokes (3 + 2 points, 2 points). */
static const char *JSON_TWO =
    "[{\"text\": \"hi\", \"strokes\": [[[0, 0], [10, 5], [20, 0]], [[30, 0], [40, 5]]]},\n"
    " {\"strokes\": [[[0, 0], [15, 15]]]}]\n";
/* One line of an IAM-OnDB lineStrokes document. */
static const char *XML_ONE =
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<WhiteboardCaptureSession>\n"
    "  <StrokeSet>\n    <Stroke colour=\"black\" start_time=\"1\" end_time=\"2\">\n"
    "      <Point x=\"1000\" y=\"1058\" time=\"1\"/>\n      <Point x=\"1004\" y=\"1062\" time=\"1.1\"/>\n"
    "      <Point x=\"1010\" y=\"1055\" time=\"1.2\"/>\n    </Stroke>\n  </StrokeSet>\n"
    "</WhiteboardCaptureSession>\n";

/* One directory per test case, made and removed by an unchecked fixture (in the runner's
 * process, so it goes even when a test fails); each test keeps to its own subdirectory. */
static char tmpdir[64];

static void dir_create(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hyperd-datasets-XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp failed: %s", strerror(errno));
}

static void dir_remove(void) { fs_remove_tree(tmpdir); }

static const char *tmp_path(char *buf, const char *rel)
{
    const int n = snprintf(buf, PATH_BUF, "%s/%s", tmpdir, rel);
    ck_assert(n > 0 && n < PATH_BUF);
    return buf;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    ck_assert_ptr_nonnull(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

/* Opens a store in tmpdir/sub whose built-in fortunes is tmpdir/fortunes-sub.txt holding
 * "abc" (so its checksum is known; written once, so that its time stays). */
static dataset_store *open_store(const char *sub)
{
    char dir[PATH_BUF], rel[PATH_BUF], fortunes[PATH_BUF], err[HYPER_ERRMSG_MAX];
    snprintf(rel, sizeof rel, "fortunes-%s.txt", sub);
    if (access(tmp_path(fortunes, rel), F_OK) != 0)
        write_file(fortunes, "abc", 3);
    dataset_store *st = NULL;
    hyper_status rc = dataset_store_open(&st, tmp_path(dir, sub), fortunes, err);
    ck_assert_msg(rc == HYPER_OK, "open %s: %s", dir, err);
    return st;
}

/* Names in tmpdir/sub, other than "." and ".."; returns how many, and how many start
 * with a dot (what an upload or delete in progress looks like). */
static int count_entries(const char *sub, int *dotted)
{
    char dir[PATH_BUF];
    DIR *d = opendir(tmp_path(dir, sub));
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    int n = 0;
    if (dotted)
        *dotted = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        n++;
        if (dotted && de->d_name[0] == '.')
            (*dotted)++;
    }
    closedir(d);
    return n;
}

/* begin, write data in chunks of `chunk` bytes (stopping at the first failure), commit. */
static hyper_status upload(dataset_store *st, const char *name, dataset_kind kind, const char *ctype,
                           const char *data, size_t len, size_t chunk, dataset_info *info, char *err)
{
    dataset_upload *up = NULL;
    hyper_status rc = dataset_upload_begin(st, name, kind, ctype, DATASET_DEFAULT_MAX_BYTES, &up, err);
    if (rc != HYPER_OK) {
        ck_assert_ptr_null(up);
        return rc;
    }
    for (size_t off = 0; off < len; off += chunk) {
        const size_t n = len - off < chunk ? len - off : chunk;
        if (dataset_upload_write(up, data + off, n, err) != HYPER_OK)
            break;
    }
    return dataset_upload_commit(up, info, err);
}

static void upload_ok(dataset_store *st, const char *name, dataset_kind kind, const char *ctype,
                      const char *data, dataset_info *info)
{
    char err[HYPER_ERRMSG_MAX];
    dataset_info tmp;
    hyper_status rc = upload(st, name, kind, ctype, data, strlen(data), 7, info ? info : &tmp, err);
    ck_assert_msg(rc == HYPER_OK, "upload %s: %s (%s)", name, hyper_status_str(rc), err);
}

/* Asserts a refusal: status want, and a message holding sub. */
static void expect_refusal(const char *what, hyper_status rc, hyper_status want, const char *err,
                           const char *sub)
{
    ck_assert_msg(rc == want, "%s: status %s, want %s (%s)", what, hyper_status_str(rc),
                  hyper_status_str(want), rc == HYPER_OK ? "" : err);
    ck_assert_msg(strstr(err, sub) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, sub);
}

static void sha_of(const char *data, size_t len, char hex[65])
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, len, (const uint8_t *)data);
    sha256_digest(&c, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* ---- names ------------------------------------------------------------------------------ */

START_TEST(test_names)
{
    char longest[DATASET_NAME_MAX + 1];
    memset(longest, 'a', DATASET_NAME_MAX);
    longest[DATASET_NAME_MAX - 1] = '\0';
    ck_assert_int_eq(dataset_name_valid(longest), 1); /* 63 characters */
    longest[DATASET_NAME_MAX - 1] = 'a';
    longest[DATASET_NAME_MAX] = '\0';
    ck_assert_int_eq(dataset_name_valid(longest), 0); /* 64 */

    const char *good[] = {"a", "fortunes", "IAM-OnDB_part.2", "x.y", "0", "a-", "a.b.c"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(dataset_name_valid(good[i]), "'%s' refused", good[i]);
    const char *bad[] = {"", ".", "..", "../x", "a/../b", "a..b", "x..", ".hidden", "a/b", "/abs",
                         "a\\b", "..\\x", "a b", "caf\xC3\xA9", "a\nb", "a:b", "*", "a%2fb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!dataset_name_valid(bad[i]), "'%s' accepted", bad[i]);
    ck_assert_int_eq(dataset_name_valid(NULL), 0);

    /* a refused name reaches no file: nothing appears in or beside the store */
    dataset_store *st = open_store("names");
    char err[HYPER_ERRMSG_MAX];
    dataset_upload *up = NULL;
    expect_refusal("../evil", dataset_upload_begin(st, "../evil", DATASET_TEXT, "text/plain", 100, &up, err),
                   HYPER_ERR_ARG, err, "invalid dataset name");
    ck_assert_ptr_null(up);
    dataset_info info;
    expect_refusal("get ..", dataset_get(st, "..", &info, err), HYPER_ERR_NOT_FOUND, err, "no dataset");
    expect_refusal("delete /etc", dataset_delete(st, "/etc", err), HYPER_ERR_NOT_FOUND, err, "no dataset");
    ck_assert_int_eq(count_entries("names", NULL), 0);
    struct stat sb;
    char path[PATH_BUF];
    ck_assert_int_ne(stat(tmp_path(path, "evil"), &sb), 0);
    dataset_store_free(st);

    dataset_kind k = DATASET_STROKES;
    ck_assert(dataset_kind_parse("text", &k) && k == DATASET_TEXT);
    ck_assert(dataset_kind_parse("strokes", &k) && k == DATASET_STROKES);
    ck_assert(!dataset_kind_parse("Text", &k) && !dataset_kind_parse(NULL, &k));
    ck_assert_str_eq(dataset_kind_str(DATASET_STROKES), "strokes");
}
END_TEST

/* ---- text uploads ------------------------------------------------------------------------- */

START_TEST(test_text_upload)
{
    dataset_store *st = open_store("text");
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    dataset_info info;

    /* one byte per write */
    ck_assert_int_eq(upload(st, "abc", DATASET_TEXT, "text/plain; charset=utf-8", "abc", 3, 1, &info, err), HYPER_OK);
    ck_assert_str_eq(info.name, "abc");
    ck_assert_int_eq(info.kind, DATASET_TEXT);
    ck_assert_int_eq(info.bytes, 3);
    ck_assert_int_eq(info.items, 3);
    ck_assert_int_eq(info.parts, 1);
    ck_assert_int_eq(info.builtin, 0);
    ck_assert_str_eq(info.sha256, ABC_SHA256);
    const int64_t now = (int64_t)time(NULL) * 1000;
    ck_assert_msg(info.created_ms > now - 60000 && info.created_ms <= now + 1000, "created_ms %lld",
                  (long long)info.created_ms);

    ck_assert_int_eq(upload(st, "m448", DATASET_TEXT, NULL, MSG448, strlen(MSG448), 5, &info, err), HYPER_OK);
    ck_assert_str_eq(info.sha256, MSG448_SHA256);
    ck_assert_int_eq(info.items, 56);

    /* characters, not bytes; sequences cut by every chunk boundary */
    const char *multi = "h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC 1 \xF0\x9F\x98\x80!\n";
    char want[65];
    sha_of(multi, strlen(multi), want);
    for (size_t chunk = 1; chunk <= 4; chunk++) {
        char name[16];
        snprintf(name, sizeof name, "multi%zu", chunk);
        ck_assert_int_eq(upload(st, name, DATASET_TEXT, "TEXT/PLAIN", multi, strlen(multi), chunk, &info, err), HYPER_OK);
        ck_assert_int_eq(info.bytes, (int64_t)strlen(multi));
        ck_assert_int_eq(info.items, 19);
        ck_assert_str_eq(info.sha256, want);
    }

    /* the files: data.txt is the body, meta.json says the same as info */
    size_t len;
    char *data = slurp(tmp_path(path, "text/multi1/data.txt"), &len);
    ck_assert_uint_eq(len, strlen(multi));
    ck_assert_int_eq(memcmp(data, multi, len), 0);
    free(data);
    json_error_t jerr;
    json_t *meta = json_load_file(tmp_path(path, "text/abc/meta.json"), 0, &jerr);
    ck_assert_msg(meta != NULL, "meta.json: %s", jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(meta, "sha256")), ABC_SHA256);
    ck_assert_str_eq(json_string_value(json_object_get(meta, "kind")), "text");
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "items")), 3);
    json_decref(meta);

    int dotted;
    ck_assert_int_eq(count_entries("text", &dotted), 6);
    ck_assert_int_eq(dotted, 0);
    ck_assert_int_eq(dataset_get(st, "multi3", &info, err), HYPER_OK);
    ck_assert_int_eq(info.items, 19);
    dataset_store_free(st);
}
END_TEST

START_TEST(test_too_large)
{
    dataset_store *st = open_store("large");
    char err[HYPER_ERRMSG_MAX];
    dataset_upload *up = NULL;
    ck_assert_int_eq(dataset_upload_begin(st, "big", DATASET_TEXT, "text/plain", 10, &up, err), HYPER_OK);
    ck_assert_int_eq(count_entries("large", NULL), 1);    /* the temporary file */
    ck_assert_int_eq(dataset_upload_write(up, "0123456", 7, err), HYPER_OK);
    expect_refusal("past 10", dataset_upload_write(up, "7890", 4, err), HYPER_ERR_TOO_LARGE, err, "limit of 10 bytes");
    ck_assert_int_eq(count_entries("large", NULL), 0);    /* gone at once, not at abort */
    expect_refusal("again", dataset_upload_write(up, "7", 1, err), HYPER_ERR_TOO_LARGE, err, "limit of 10");
    dataset_info info;
    expect_refusal("commit", dataset_upload_commit(up, &info, err), HYPER_ERR_TOO_LARGE, err, "limit");
    ck_assert_int_eq(count_entries("large", NULL), 0);
    expect_refusal("get", dataset_get(st, "big", &info, err), HYPER_ERR_NOT_FOUND, err, "no dataset 'big'");

    /* exactly the limit is fine, and the name was given back */
    ck_assert_int_eq(dataset_upload_begin(st, "big", DATASET_TEXT, "text/plain", 10, &up, err), HYPER_OK);
    ck_assert_int_eq(dataset_upload_write(up, "0123456789", 10, err), HYPER_OK);
    ck_assert_int_eq(dataset_upload_commit(up, &info, err), HYPER_OK);
    ck_assert_int_eq(info.bytes, 10);

    /* a strokes part of exactly the limit, larger than one read: read back whole */
    size_t cap = 200000, len = 0;
    char *json = malloc(cap);
    ck_assert_ptr_nonnull(json);
    len += (size_t)snprintf(json, cap, "[{\"strokes\": [[[0, 0]");
    for (int i = 1; i < 10000; i++)
        len += (size_t)snprintf(json + len, cap - len, ", [%d, %d]", i, i % 7);
    len += (size_t)snprintf(json + len, cap - len, "]]}]");
    ck_assert_uint_gt(len, 100000);
    ck_assert_int_eq(dataset_upload_begin(st, "long", DATASET_STROKES, "application/json", (int64_t)len, &up, err),
                     HYPER_OK);
    ck_assert_int_eq(dataset_upload_write(up, json, len, err), HYPER_OK);
    ck_assert_msg(dataset_upload_commit(up, &info, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(info.bytes, (int64_t)len);
    ck_assert_int_eq(info.items, 1);
    free(json);

    /* a strokes part is capped whatever the limit */
    ck_assert_int_eq(dataset_upload_begin(st, "hw", DATASET_STROKES, "application/json", DATASET_MAX_BYTES_CEILING, &up, err),
                     HYPER_OK);
    dataset_upload_abort(up);
    expect_refusal("limit 0", dataset_upload_begin(st, "x", DATASET_TEXT, "text/plain", 0, &up, err),
                   HYPER_ERR_ARG, err, "size limit");
    expect_refusal("limit too high", dataset_upload_begin(st, "x", DATASET_TEXT, "text/plain",
                                                          DATASET_MAX_BYTES_CEILING + 1, &up, err),
                   HYPER_ERR_ARG, err, "size limit");
    ck_assert_int_eq(count_entries("large", NULL), 2);
    dataset_store_free(st);
}
END_TEST

START_TEST(test_text_refused)
{
    dataset_store *st = open_store("badtext");
    char err[HYPER_ERRMSG_MAX];
    dataset_info info;
    static const struct {
        const char *what, *data;
        size_t len, chunk;
        hyper_status want;
        const char *sub;
    } cases[] = {
        {"lone continuation", "ab\x80", 3, 3, HYPER_ERR_ENCODING, "byte offset 2 (byte 0x80)"},
        {"broken across writes", "ab\xC3(cd", 6, 3, HYPER_ERR_ENCODING, "byte offset 2 (byte 0xC3)"},
        {"overlong", "x\xC0\xAF", 3, 1, HYPER_ERR_ENCODING, "byte offset 1"},
        {"surrogate", "\xED\xA0\x80", 3, 2, HYPER_ERR_ENCODING, "byte offset 0"},
        {"cut at the end", "ab\xE2\x82", 4, 4, HYPER_ERR_ENCODING, "ends inside a character"},
        {"broken at the end", "ab\xE2(", 4, 1, HYPER_ERR_ENCODING, "byte offset 2 (byte 0xE2)"},
        {"NUL", "ab\0cd", 5, 2, HYPER_ERR_ARG, "U+0000 at byte offset 2"},
        {"empty", "", 0, 1, HYPER_ERR_ARG, "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hyper_status rc = upload(st, "t", DATASET_TEXT, "text/plain", cases[i].data, cases[i].len,
                                 cases[i].chunk, &info, err);
        expect_refusal(cases[i].what, rc, cases[i].want, err, cases[i].sub);
        ck_assert_msg(count_entries("badtext", NULL) == 0, "%s: files left behind", cases[i].what);
    }
    ck_assert_uint_eq(dataset_list(st, NULL, 0), 2);
    dataset_store_free(st);
}
END_TEST

START_TEST(test_conflicts_and_types)
{
    dataset_store *st = open_store("conflict");
    char err[HYPER_ERRMSG_MAX];
    dataset_upload *up = NULL, *up2 = NULL;
    dataset_info info;
    upload_ok(st, "notes", DATASET_TEXT, "text/plain", "some text", NULL);
    expect_refusal("text again", upload(st, "notes", DATASET_TEXT, "text/plain", "x", 1, 1, &info, err),
                   HYPER_ERR_CONFLICT, err, "dataset 'notes' exists; delete it first");
    expect_refusal("strokes onto text",
                   dataset_upload_begin(st, "notes", DATASET_STROKES, "application/json", 100, &up, err),
                   HYPER_ERR_CONFLICT, err, "holds text");
    expect_refusal("built-in", dataset_upload_begin(st, "fortunes", DATASET_TEXT, "text/plain", 100, &up, err),
                   HYPER_ERR_CONFLICT, err, "built-in");
    expect_refusal("built-in strokes",
                   dataset_upload_begin(st, "hershey-synthetic", DATASET_STROKES, "application/json", 100, &up, err),
                   HYPER_ERR_CONFLICT, err, "built-in");

    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    expect_refusal("text onto strokes", upload(st, "hw", DATASET_TEXT, "text/plain", "x", 1, 1, &info, err),
                   HYPER_ERR_CONFLICT, err, "exists");

    /* two uploads to one new name: the second is refused while the first is open */
    ck_assert_int_eq(dataset_upload_begin(st, "new", DATASET_TEXT, "text/plain", 100, &up, err), HYPER_OK);
    expect_refusal("second", dataset_upload_begin(st, "new", DATASET_TEXT, "text/plain", 100, &up2, err),
                   HYPER_ERR_CONFLICT, err, "being uploaded");
    expect_refusal("second strokes",
                   dataset_upload_begin(st, "new", DATASET_STROKES, "application/xml", 100, &up2, err),
                   HYPER_ERR_CONFLICT, err, "being uploaded");
    expect_refusal("not listed yet", dataset_get(st, "new", &info, err), HYPER_ERR_NOT_FOUND, err, "no dataset");
    ck_assert_uint_eq(dataset_list(st, NULL, 0), 4);
    dataset_upload_abort(up);
    ck_assert_int_eq(dataset_upload_begin(st, "new", DATASET_TEXT, "text/plain", 100, &up2, err), HYPER_OK);
    dataset_upload_abort(up2);

    /* content types against kinds */
    static const struct {
        dataset_kind kind;
        const char *ctype, *sub;
    } refused[] = {
        {DATASET_STROKES, "text/plain", "kind=strokes takes application/json or application/xml, not text/plain"},
        {DATASET_STROKES, "text/plain; charset=utf-8", "not text/plain"},
        {DATASET_TEXT, "application/json", "kind=text takes text/plain, not application/json"},
        {DATASET_TEXT, "application/xml", "not application/xml"},
        {DATASET_TEXT, "image/png", "Content-Type 'image/png' is not accepted"},
        {DATASET_TEXT, "text/plainer", "is not accepted"},
        {DATASET_TEXT, "", "is not accepted"},
        {DATASET_STROKES, NULL, "needs Content-Type"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        up = NULL;
        expect_refusal(refused[i].ctype ? refused[i].ctype : "(none)",
                       dataset_upload_begin(st, "typed", refused[i].kind, refused[i].ctype, 100, &up, err),
                       HYPER_ERR_ARG, err, refused[i].sub);
        ck_assert_ptr_null(up);
    }
    const char *accepted[] = {"Application/JSON ; charset=utf-8", " application/xml", "text/xml"};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        ck_assert_msg(dataset_upload_begin(st, "typed", DATASET_STROKES, accepted[i], 100, &up, err) == HYPER_OK,
                      "%s: %s", accepted[i], err);
        dataset_upload_abort(up);
    }
    expect_refusal("bad kind", dataset_upload_begin(st, "typed", (dataset_kind)7, "text/plain", 100, &up, err),
                   HYPER_ERR_ARG, err, "kind");
    int dotted;
    ck_assert_int_eq(count_entries("conflict", &dotted), 2);
    ck_assert_int_eq(dotted, 0);
    dataset_store_free(st);
}
END_TEST

/* ---- strokes ------------------------------------------------------------------------------ */

START_TEST(test_strokes_append)
{
    dataset_store *st = open_store("strokes");
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    dataset_info info;
    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, &info);
    ck_assert_int_eq(info.kind, DATASET_STROKES);
    ck_assert_int_eq(info.items, 2);
    ck_assert_int_eq(info.parts, 1);
    ck_assert_int_eq(info.bytes, (int64_t)strlen(JSON_TWO));
    char want[65];
    sha_of(JSON_TWO, strlen(JSON_TWO), want);
    ck_assert_str_eq(info.sha256, want);

    upload_ok(st, "hw", DATASET_STROKES, "application/xml", XML_ONE, &info);
    ck_assert_int_eq(info.items, 3);
    ck_assert_int_eq(info.parts, 2);
    ck_assert_int_eq(info.bytes, (int64_t)(strlen(JSON_TWO) + strlen(XML_ONE)));
    char both[4096];
    snprintf(both, sizeof both, "%s%s", JSON_TWO, XML_ONE);
    sha_of(both, strlen(both), want);
    ck_assert_str_eq(info.sha256, want);

    /* the parts, in order, byte for byte */
    size_t len;
    char *p1 = slurp(tmp_path(path, "strokes/hw/part-000001.json"), &len);
    ck_assert_str_eq(p1, JSON_TWO);
    free(p1);
    char *p2 = slurp(tmp_path(path, "strokes/hw/part-000002.xml"), &len);
    ck_assert_str_eq(p2, XML_ONE);
    free(p2);

    stroke_corpus c;
    ck_assert_msg(dataset_load_strokes(st, "hw", 0.34, &c, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(c.set.n, 3);
    ck_assert_int_eq(c.n_train, 2);
    ck_assert_int_eq(c.set.lines[0].npoints, 5);    /* upload order: JSON lines, then XML */
    ck_assert_str_eq(c.set.lines[0].text, "hi");
    ck_assert_int_eq(c.set.lines[1].npoints, 2);
    ck_assert_int_eq(c.set.lines[2].npoints, 3);
    stroke_corpus_free(&c);
    int dotted;
    ck_assert_int_eq(count_entries("strokes", &dotted), 1);
    ck_assert_int_eq(dotted, 0);
    dataset_store_free(st);
}
END_TEST

START_TEST(test_strokes_refused)
{
    dataset_store *st = open_store("badstrokes");
    char err[HYPER_ERRMSG_MAX];
    dataset_info info;
    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    static const struct {
        const char *what, *ctype, *data, *sub1, *sub2;
    } cases[] = {
        {"not JSON", "application/json", "[{\"strokes\": ", "dataset 'hw' upload", "invalid JSON"},
        {"unknown key", "application/json", "[{\"strokes\": [[[0, 0]]], \"colour\": 1}]", "dataset 'hw' upload", "colour"},
        {"a point of one number", "application/json", "[{\"strokes\": [[[0, 0], [1]]]}]", "dataset 'hw' upload", "point 1"},
        {"no lines", "application/json", "[]", "dataset 'hw' upload", "no lines"},
        {"not XML", "application/xml", "<WhiteboardCaptureSession><StrokeSet>", "dataset 'hw' upload", ""},
        {"another root", "application/xml", "<svg/>", "dataset 'hw' upload", "<svg>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hyper_status rc = upload(st, "hw", DATASET_STROKES, cases[i].ctype, cases[i].data,
                                 strlen(cases[i].data), 4, &info, err);
        expect_refusal(cases[i].what, rc, HYPER_ERR_FORMAT, err, cases[i].sub1);
        expect_refusal(cases[i].what, rc, HYPER_ERR_FORMAT, err, cases[i].sub2);
        /* a refused first part makes no dataset either */
        rc = upload(st, "fresh", DATASET_STROKES, cases[i].ctype, cases[i].data, strlen(cases[i].data), 4,
                    &info, err);
        expect_refusal(cases[i].what, rc, HYPER_ERR_FORMAT, err, "dataset 'fresh' upload");
    }
    ck_assert_int_eq(dataset_get(st, "hw", &info, err), HYPER_OK);
    ck_assert_int_eq(info.parts, 1);
    ck_assert_int_eq(info.items, 2);
    expect_refusal("fresh", dataset_get(st, "fresh", &info, err), HYPER_ERR_NOT_FOUND, err, "no dataset");
    ck_assert_int_eq(count_entries("badstrokes", NULL), 1);
    char path[PATH_BUF];
    ck_assert_int_eq(access(tmp_path(path, "badstrokes/hw/part-000002.json"), F_OK), -1);
    dataset_store_free(st);
}
END_TEST

/* ---- the store on disk ------------------------------------------------------------------------ */

static void expect_same_info(const dataset_info *a, const dataset_info *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->kind, b->kind);
    ck_assert_int_eq(a->bytes, b->bytes);
    ck_assert_int_eq(a->items, b->items);
    ck_assert_str_eq(a->sha256, b->sha256);
    ck_assert_int_eq(a->created_ms, b->created_ms);
    ck_assert_int_eq(a->parts, b->parts);
    ck_assert_int_eq(a->builtin, b->builtin);
}

START_TEST(test_persistence)
{
    dataset_store *st = open_store("persist");
    char err[HYPER_ERRMSG_MAX];
    upload_ok(st, "corpus", DATASET_TEXT, "text/plain", "hello, world\n", NULL);
    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    upload_ok(st, "hw", DATASET_STROKES, "text/xml", XML_ONE, NULL);
    dataset_info before[LIST_MAX], after[LIST_MAX];
    const size_t n = dataset_list(st, before, LIST_MAX);
    ck_assert_uint_eq(n, 4);
    dataset_store_free(st);

    st = open_store("persist");
    ck_assert_uint_eq(dataset_list(st, after, LIST_MAX), n);
    for (size_t i = 0; i < n; i++)
        expect_same_info(&before[i], &after[i]);

    /* an append after the restart hashes the old parts again: the sum still matches */
    dataset_info info;
    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, &info);
    ck_assert_int_eq(info.parts, 3);
    ck_assert_int_eq(info.items, 5);
    char all[8192], want[65];
    snprintf(all, sizeof all, "%s%s%s", JSON_TWO, XML_ONE, JSON_TWO);
    sha_of(all, strlen(all), want);
    ck_assert_str_eq(info.sha256, want);
    ck_assert_int_eq(info.created_ms, after[3].created_ms);
    corpus c;
    ck_assert_msg(dataset_load_text(st, "corpus", 1 << 20, NULL, 0, &c, err) == HYPER_OK, "%s", err);
    ck_assert_uint_eq(c.n, 13);
    corpus_free(&c);
    dataset_store_free(st);
}
END_TEST

static void write_rel(const char *rel, const char *text)
{
    char path[PATH_BUF];
    write_file(tmp_path(path, rel), text, strlen(text));
}

START_TEST(test_damaged_skipped)
{
    dataset_store *st = open_store("damaged");
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    const char *names[] = {"garbled", "nodata", "wrongsize", "renamed", "good"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        upload_ok(st, names[i], DATASET_TEXT, "text/plain", "some words", NULL);
    upload_ok(st, "nopart", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    upload_ok(st, "hw", DATASET_STROKES, "application/xml", XML_ONE, NULL);
    dataset_store_free(st);

    write_rel("damaged/garbled/meta.json", "{\"format\": 1, \"name\": ");
    ck_assert_int_eq(unlink(tmp_path(path, "damaged/nodata/data.txt")), 0);
    write_rel("damaged/wrongsize/data.txt", "some words and more");
    ck_assert_int_eq(unlink(tmp_path(path, "damaged/nopart/part-000001.json")), 0);
    char from[PATH_BUF];
    ck_assert_int_eq(rename(tmp_path(from, "damaged/renamed"), tmp_path(path, "damaged/moved")), 0);
    /* what a crash leaves: an upload, a half-made dataset, a delete, an unfinished part */
    write_rel("damaged/.upload-abc123", "partial");
    ck_assert_int_eq(mkdir(tmp_path(path, "damaged/.new-abc123"), 0755), 0);
    write_rel("damaged/.new-abc123/data.txt", "x");
    ck_assert_int_eq(mkdir(tmp_path(path, "damaged/.trash-abc123"), 0755), 0);
    write_rel("damaged/hw/part-000003.json", "[]");
    write_rel("damaged/hw/meta.json.tmp.XYZ123", "{");
    /* and things that are not datasets */
    ck_assert_int_eq(mkdir(tmp_path(path, "damaged/bad name"), 0755), 0);
    ck_assert_int_eq(mkdir(tmp_path(path, "damaged/fortunes"), 0755), 0);
    write_rel("damaged/stray", "a file");

    st = open_store("damaged");
    dataset_info list[LIST_MAX];
    const size_t n = dataset_list(st, list, LIST_MAX);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(list[2].name, "good");
    ck_assert_str_eq(list[3].name, "hw");
    ck_assert_int_eq(list[3].parts, 2);
    ck_assert_int_eq(access(tmp_path(path, "damaged/.upload-abc123"), F_OK), -1);
    ck_assert_int_eq(access(tmp_path(path, "damaged/.new-abc123"), F_OK), -1);
    ck_assert_int_eq(access(tmp_path(path, "damaged/.trash-abc123"), F_OK), -1);
    ck_assert_int_eq(access(tmp_path(path, "damaged/hw/part-000003.json"), F_OK), -1);
    ck_assert_int_eq(access(tmp_path(path, "damaged/hw/meta.json.tmp.XYZ123"), F_OK), -1);
    ck_assert_int_eq(access(tmp_path(path, "damaged/garbled/meta.json"), F_OK), 0); /* left for the operator */

    /* a damaged directory blocks its name rather than being overwritten */
    dataset_info info;
    expect_refusal("in the way", upload(st, "garbled", DATASET_TEXT, "text/plain", "x", 1, 1, &info, err),
                   HYPER_ERR_CONFLICT, err, "damaged");
    expect_refusal("not listed", dataset_get(st, "garbled", &info, err), HYPER_ERR_NOT_FOUND, err, "no dataset");
    /* and the good one still appends and loads */
    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, &info);
    ck_assert_int_eq(info.parts, 3);
    ck_assert_int_eq(info.items, 5);
    dataset_store_free(st);
}
END_TEST

START_TEST(test_delete)
{
    dataset_store *st = open_store("delete");
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    dataset_info info;
    upload_ok(st, "gone", DATASET_TEXT, "text/plain", "soon gone", NULL);
    upload_ok(st, "used", DATASET_TEXT, "text/plain", "in use", NULL);
    ck_assert_int_eq(dataset_delete(st, "gone", err), HYPER_OK);
    ck_assert_int_eq(access(tmp_path(path, "delete/gone"), F_OK), -1);
    expect_refusal("get", dataset_get(st, "gone", &info, err), HYPER_ERR_NOT_FOUND, err, "no dataset 'gone'");
    expect_refusal("twice", dataset_delete(st, "gone", err), HYPER_ERR_NOT_FOUND, err, "no dataset 'gone'");
    expect_refusal("fortunes", dataset_delete(st, "fortunes", err), HYPER_ERR_CONFLICT, err, "built-in");
    expect_refusal("hershey", dataset_delete(st, "hershey-synthetic", err), HYPER_ERR_CONFLICT, err, "built-in");

    /* a job holds it: two acquisitions need two releases */
    ck_assert_int_eq(dataset_acquire(st, "used", &info, err), HYPER_OK);
    ck_assert_str_eq(info.name, "used");
    ck_assert_int_eq(dataset_acquire(st, "used", NULL, err), HYPER_OK);
    expect_refusal("acquired", dataset_delete(st, "used", err), HYPER_ERR_CONFLICT, err, "in use by 2 running jobs");
    dataset_release(st, "used");
    expect_refusal("acquired", dataset_delete(st, "used", err), HYPER_ERR_CONFLICT, err, "in use by 1 running job");
    dataset_release(st, "used");
    dataset_release(st, "used");    /* one too many is ignored */
    dataset_release(st, "nothing");
    expect_refusal("acquire", dataset_acquire(st, "nothing", &info, err), HYPER_ERR_NOT_FOUND, err, "no dataset");
    ck_assert_int_eq(dataset_delete(st, "used", err), HYPER_OK);

    /* the name can be used again; a strokes part uploaded across a delete is refused */
    upload_ok(st, "gone", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    dataset_upload *up;
    ck_assert_int_eq(dataset_upload_begin(st, "gone", DATASET_STROKES, "application/json", 1000, &up, err), HYPER_OK);
    ck_assert_int_eq(dataset_upload_write(up, JSON_TWO, strlen(JSON_TWO), err), HYPER_OK);
    ck_assert_int_eq(dataset_delete(st, "gone", err), HYPER_OK);
    expect_refusal("append after delete", dataset_upload_commit(up, &info, err), HYPER_ERR_NOT_FOUND, err,
                   "deleted while this part was uploaded");

    /* a strokes dataset a job holds takes no new part, neither begun after the job took it
     * nor finished after */
    upload_ok(st, "held", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    ck_assert_int_eq(dataset_upload_begin(st, "held", DATASET_STROKES, "application/json", 1000, &up, err), HYPER_OK);
    ck_assert_int_eq(dataset_upload_write(up, JSON_TWO, strlen(JSON_TWO), err), HYPER_OK);
    ck_assert_int_eq(dataset_acquire(st, "held", NULL, err), HYPER_OK);
    expect_refusal("append to a held dataset", dataset_upload_commit(up, &info, err), HYPER_ERR_CONFLICT, err,
                   "used by a training job");
    dataset_upload *up2 = NULL;
    expect_refusal("begin on a held dataset",
                   dataset_upload_begin(st, "held", DATASET_STROKES, "application/json", 1000, &up2, err),
                   HYPER_ERR_CONFLICT, err, "used by a training job");
    dataset_release(st, "held");
    upload_ok(st, "held", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    ck_assert_int_eq(dataset_get(st, "held", &info, err), HYPER_OK);
    ck_assert_int_eq(info.parts, 2);
    ck_assert_int_eq(dataset_delete(st, "held", err), HYPER_OK);
    ck_assert_int_eq(count_entries("delete", NULL), 0);
    ck_assert_uint_eq(dataset_list(st, NULL, 0), 2);
    dataset_store_free(st);
}
END_TEST

START_TEST(test_load)
{
    dataset_store *st = open_store("load");
    char err[HYPER_ERRMSG_MAX];
    upload_ok(st, "text", DATASET_TEXT, "text/plain", "abcdefghij\xC3\xA9", NULL);
    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    corpus c;
    ck_assert_msg(dataset_load_text(st, "text", 1 << 20, NULL, 0.1, &c, err) == HYPER_OK, "%s", err);
    ck_assert_uint_eq(c.n, 11);
    ck_assert_uint_eq(c.n_train, 10);
    ck_assert_int_eq(c.voc.size, 11);
    corpus_free(&c);
    ck_assert_msg(dataset_load_text(st, "fortunes", 1 << 20, NULL, 0, &c, err) == HYPER_OK, "%s", err);
    ck_assert_uint_eq(c.n, 3);    /* "abc", the test's fortunes */
    corpus_free(&c);
    expect_refusal("limit", dataset_load_text(st, "text", 4, NULL, 0, &c, err), HYPER_ERR_TOO_LARGE, err, "dataset 'text'");
    expect_refusal("strokes as text", dataset_load_text(st, "hw", 1 << 20, NULL, 0, &c, err), HYPER_ERR_ARG, err,
                   "dataset 'hw' holds strokes");
    stroke_corpus sc;
    expect_refusal("text as strokes", dataset_load_strokes(st, "text", 0, &sc, err), HYPER_ERR_ARG, err,
                   "holds text");
    expect_refusal("missing", dataset_load_strokes(st, "nothing", 0, &sc, err), HYPER_ERR_NOT_FOUND, err,
                   "no dataset 'nothing'");
    expect_refusal("missing", dataset_load_text(st, "nothing", 100, NULL, 0, &c, err), HYPER_ERR_NOT_FOUND, err,
                   "no dataset");
    expect_refusal("fraction", dataset_load_strokes(st, "hw", 1.0, &sc, err), HYPER_ERR_ARG, err, "fraction");

    /* hershey-synthetic is synthesised on demand: its 2000 lines */
    ck_assert_msg(dataset_load_strokes(st, "hershey-synthetic", 0.05, &sc, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(sc.set.n + sc.dropped, DATASET_HERSHEY_LINES);
    ck_assert_int_eq(sc.n_train, sc.set.n - (int32_t)(sc.set.n * 0.05));
    stroke_corpus_free(&sc);
    /* the loaded dataset can be deleted once loading is over */
    ck_assert_int_eq(dataset_delete(st, "hw", err), HYPER_OK);
    dataset_store_free(st);
}
END_TEST

START_TEST(test_list_and_builtins)
{
    dataset_store *st = open_store("list");
    const char *names[] = {"zeta", "alpha", "Mid", "beta", "alpha.2", "_x", "9"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        upload_ok(st, names[i], DATASET_TEXT, "text/plain", names[i], NULL);
    dataset_info list[LIST_MAX];
    const char *want[] = {"fortunes", "hershey-synthetic", "9", "Mid", "_x", "alpha", "alpha.2", "beta", "zeta"};
    const size_t n = sizeof want / sizeof want[0];
    ck_assert_uint_eq(dataset_list(st, list, LIST_MAX), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(list[i].name, want[i]);
    ck_assert_uint_eq(dataset_list(st, list, 3), n);    /* the total, though only 3 copied */
    ck_assert_str_eq(list[2].name, "9");

    /* fortunes: the file given at open, "abc" here */
    ck_assert_int_eq(list[0].kind, DATASET_TEXT);
    ck_assert_int_eq(list[0].builtin, 1);
    ck_assert_int_eq(list[0].bytes, 3);
    ck_assert_int_eq(list[0].items, 3);
    ck_assert_str_eq(list[0].sha256, ABC_SHA256);
    char hex[65];
    sha_of(DATASET_HERSHEY_SPEC, strlen(DATASET_HERSHEY_SPEC), hex);
    ck_assert_int_eq(list[1].kind, DATASET_STROKES);
    ck_assert_int_eq(list[1].builtin, 1);
    ck_assert_int_eq(list[1].bytes, 0);
    ck_assert_int_eq(list[1].items, DATASET_HERSHEY_LINES);
    ck_assert_str_eq(list[1].sha256, hex);
    dataset_store_free(st);

    /* a fortunes file that is missing falls back to Debian's, or goes */
    char dir[PATH_BUF], missing[PATH_BUF], err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(dataset_store_open(&st, tmp_path(dir, "list"), tmp_path(missing, "no-such.txt"), err), HYPER_OK);
    dataset_info info;
    const int debian = access(DATASET_FORTUNES_FALLBACK, R_OK) == 0;
    ck_assert_int_eq(dataset_get(st, "fortunes", &info, err), debian ? HYPER_OK : HYPER_ERR_NOT_FOUND);
    ck_assert_uint_eq(dataset_list(st, NULL, 0), n - !debian);
    dataset_store_free(st);

    /* a fortunes file that is not UTF-8 is no dataset */
    char bad[PATH_BUF];
    write_file(tmp_path(bad, "latin1.txt"), "caf\xE9\n", 5);
    ck_assert_int_eq(dataset_store_open(&st, dir, bad, err), HYPER_OK);
    ck_assert_int_eq(dataset_get(st, "fortunes", &info, err), HYPER_ERR_NOT_FOUND);
    ck_assert_uint_eq(dataset_list(st, NULL, 0), n - 1);
    dataset_store_free(st);

    /* the project's 2.5 MB corpus is checked and hashed at open, quickly */
    if (access(DATASET_FORTUNES_DEFAULT, R_OK) == 0) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ck_assert_int_eq(dataset_store_open(&st, dir, NULL, err), HYPER_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        const char *mult = getenv("CK_TIMEOUT_MULTIPLIER");
        ck_assert_msg(secs < 0.5 * (mult ? atof(mult) : 1), "open took %.3f s", secs);
        ck_assert_int_eq(dataset_get(st, "fortunes", &info, err), HYPER_OK);
        struct stat sb;
        ck_assert_int_eq(stat(DATASET_FORTUNES_DEFAULT, &sb), 0);
        ck_assert_int_eq(info.bytes, (int64_t)sb.st_size);
        ck_assert(info.items > 0 && info.items <= info.bytes);
        dataset_store_free(st);
    }
    /* a directory that cannot be made */
    write_rel("afile", "x");
    ck_assert_int_eq(dataset_store_open(&st, tmp_path(dir, "afile/sub"), NULL, err), HYPER_ERR_IO);
    ck_assert_ptr_null(st);
}
END_TEST

/* ---- threads -------------------------------------------------------------------------------- */

#define RACERS 6
#define APPENDS 4

typedef struct {
    dataset_store *st;
    const char *name;
    dataset_kind kind;
    const char *ctype, *data;
    int rounds;
    int ok, conflicts;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char err[HYPER_ERRMSG_MAX];
    dataset_info info;
    for (int i = 0; i < r->rounds; i++) {
        hyper_status rc = upload(r->st, r->name, r->kind, r->ctype, r->data, strlen(r->data), 3, &info, err);
        r->ok += rc == HYPER_OK;
        r->conflicts += rc == HYPER_ERR_CONFLICT;
    }
    return NULL;
}

START_TEST(test_concurrent)
{
    dataset_store *st = open_store("race");
    char err[HYPER_ERRMSG_MAX], path[PATH_BUF];
    pthread_t th[RACERS];
    racer r[RACERS];

    /* many uploads of one new text name: one wins, the rest are refused */
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){st, "one", DATASET_TEXT, "text/plain", "the same words", 1, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    int ok = 0, conflicts = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].ok;
        conflicts += r[i].conflicts;
    }
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(conflicts, RACERS - 1);

    /* appends to one strokes dataset from many threads: every part counted once, in order */
    upload_ok(st, "hw", DATASET_STROKES, "application/json", JSON_TWO, NULL);
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){st, "hw", DATASET_STROKES, i % 2 ? "application/xml" : "application/json",
                       i % 2 ? XML_ONE : JSON_TWO, APPENDS, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(r[i].ok, APPENDS);
    }
    dataset_info info;
    ck_assert_int_eq(dataset_get(st, "hw", &info, err), HYPER_OK);
    ck_assert_int_eq(info.parts, 1 + RACERS * APPENDS);
    ck_assert_int_eq(info.items, 2 + (RACERS / 2) * APPENDS * 2 + (RACERS / 2) * APPENDS);

    /* the checksum is that of the parts on disk, concatenated in part order */
    struct sha256_ctx c;
    sha256_init(&c);
    int64_t bytes = 0;
    for (int k = 1; k <= info.parts; k++) {
        char rel[64];
        size_t len;
        snprintf(rel, sizeof rel, "race/hw/part-%06d.json", k);
        if (access(tmp_path(path, rel), F_OK) != 0)
            snprintf(rel, sizeof rel, "race/hw/part-%06d.xml", k);
        char *data = slurp(tmp_path(path, rel), &len);
        sha256_update(&c, len, (const uint8_t *)data);
        bytes += (int64_t)len;
        free(data);
    }
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&c, sizeof d, d);
    char hex[65];
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    ck_assert_str_eq(info.sha256, hex);
    ck_assert_int_eq(info.bytes, bytes);
    int dotted;
    count_entries("race", &dotted);
    ck_assert_int_eq(dotted, 0);
    dataset_store_free(st);
}
END_TEST

Suite *datasets_suite(void);
Suite *datasets_suite(void)
{
    Suite *s = suite_create("datasets");
    TCase *tc = tcase_create("store");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_text_upload);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_text_refused);
    tcase_add_test(tc, test_conflicts_and_types);
    tcase_add_test(tc, test_strokes_append);
    tcase_add_test(tc, test_strokes_refused);
    tcase_add_test(tc, test_persistence);
    tcase_add_test(tc, test_damaged_skipped);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_load);
    tcase_add_test(tc, test_list_and_builtins);
    tcase_add_test(tc, test_concurrent);
    suite_add_tcase(s, tc);
    return s;
}
