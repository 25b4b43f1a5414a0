/*
 * fuzz_text.c — text and UTF-8: the vocabulary (engine/vocab.c: vocab_build, vocab_encode,
 * vocab_decode, the checkpoint's vocabulary string) and a text dataset upload
 * (engine/datasets.c: the streaming UTF-8 / U+0000 / vocabulary-size checks, the commit,
 * then loading it as a training corpus).
 *
 * Input: byte 0 picks the chunk size the upload is written in (a body arrives in pieces
 * that may split a character); the rest is the text.  Round trips are checked: text that
 * builds a vocabulary must encode with it and decode back to the same bytes.
 */
#include "fuzz.h"

#include "datasets.h"
#include "trainer.h"
#include "vocab.h"

static dataset_store *store;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[512], err[HYPER_ERRMSG_MAX];
    snprintf(dir, sizeof dir, "%s/datasets", fuzz_scratch_dir());
    /* a tiny fortunes file, so the built-in dataset exists as in the daemon */
    if (dataset_store_open(&store, dir, fuzz_fortunes(), err) != HYPER_OK) {
        fprintf(stderr, "fuzz_text: %s\n", err);
        abort();
    }
    return 0;
}

static void check_vocab(const char *text, size_t len)
{
    char err[HYPER_ERRMSG_MAX];
    vocab v;
    if (vocab_build(&v, text, len, err) != HYPER_OK)
        return;
    int32_t *ids = NULL;
    size_t n = 0;
    if (vocab_encode(&v, text, len, 0, &ids, &n, NULL, err) != HYPER_OK) {
        fprintf(stderr, "text that built a vocabulary does not encode with it: %s\n", err);
        abort();
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[8];
        int k = vocab_decode(&v, ids[i], buf);
        if (k <= 0 || at + (size_t)k > len || memcmp(text + at, buf, (size_t)k) != 0) {
            fprintf(stderr, "id %zu does not decode back to the text\n", i);
            abort();
        }
        at += (size_t)k;
    }
    if (at != len) {
        fprintf(stderr, "decoded %zu of %zu bytes\n", at, len);
        abort();
    }
    free(ids);
    size_t slen = 0;
    char *s = vocab_to_utf8(&v, &slen);
    vocab back;
    if (s && vocab_from_utf8(&back, s, slen, err) == HYPER_OK) {
        if (back.size != v.size) {
            fprintf(stderr, "the vocabulary string does not round-trip\n");
            abort();
        }
        vocab_free(&back);
    } else if (s && memchr(text, 0, len) == NULL) {
        fprintf(stderr, "vocab_from_utf8 refuses what vocab_to_utf8 wrote: %s\n", err);
        abort();
    }
    free(s);
    vocab_free(&v);
}

static void upload(const char *text, size_t len, size_t chunk)
{
    char err[HYPER_ERRMSG_MAX];
    dataset_upload *up = NULL;
    if (dataset_upload_begin(store, "fuzz", DATASET_TEXT, "text/plain; charset=utf-8", 1 << 20, &up, err) !=
        HYPER_OK) {
        fprintf(stderr, "fuzz_text: upload_begin: %s\n", err);
        abort();
    }
    for (size_t at = 0; at < len; at += chunk) {
        size_t n = len - at < chunk ? len - at : chunk;
        if (dataset_upload_write(up, text + at, n, err) != HYPER_OK)
            break;
    }
    if (dataset_upload_commit(up, NULL, err) != HYPER_OK)
        return;
    corpus c;
    if (dataset_load_text(store, "fuzz", 1 << 20, NULL, 0.1, &c, err) == HYPER_OK)
        corpus_free(&c);
    if (dataset_delete(store, "fuzz", err) != HYPER_OK) {
        fprintf(stderr, "fuzz_text: delete: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)(data[0] % 16) + 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        int k = utf8_decode(text + i, len - i, &cp);
        i += k > 0 ? (size_t)k : 1;
    }
    check_vocab(text, len);
    upload(text, len, chunk);
    return 0;
}
