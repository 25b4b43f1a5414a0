/*
 * vocab.h — the character vocabulary of a model: the distinct Unicode code points of its
 * training corpus (UTF-8 decoded), sorted ascending, one id each.  Stored in the checkpoint.
 */
#ifndef HYPER_VOCAB_H
#define HYPER_VOCAB_H

#include "common.h"

#define VOCAB_MAX 65536 /* = MODEL_MAX_VOCAB */

typedef struct {
    int32_t size;        /* V */
    uint32_t *cp;        /* (V) code points, ascending; owned */
} vocab;

/* Builds the vocabulary of a UTF-8 text of len bytes.  Invalid UTF-8 → HYPER_ERR_ENCODING
 * with the byte offset in err; empty text, U+0000 (the checkpoint stores the vocabulary as
 * a NUL-terminated string) or more than VOCAB_MAX distinct characters → HYPER_ERR_ARG. */
hyper_status vocab_build(vocab *v, const char *text, size_t len, char *err);
/* Builds a vocabulary from code points (need not be sorted or unique). */
hyper_status vocab_from_codepoints(vocab *v, const uint32_t *cps, int32_t n, char *err);
void vocab_free(vocab *v);

/* Id of a code point, or -1 when it is not in the vocabulary. */
int32_t vocab_id(const vocab *v, uint32_t cp);

/* Encodes UTF-8 text into ids (*out newly allocated, caller frees, even when *n is 0; on
 * failure *out is NULL and nothing is allocated).  Invalid UTF-8 always fails.
 * Characters outside the vocabulary: when skip_unknown is 0 the call fails with
 * HYPER_ERR_VOCAB and err names them (up to a handful, as U+XXXX and the character itself);
 * when 1 they are dropped and *skipped (may be NULL) counts them. */
hyper_status vocab_encode(const vocab *v, const char *text, size_t len, int skip_unknown,
                          int32_t **out, size_t *n, size_t *skipped, char *err);

/* Writes the UTF-8 bytes of id into buf (at least 5 bytes, NUL-terminated); returns the
 * byte count (0 for an id out of range). */
int vocab_decode(const vocab *v, int32_t id, char *buf);

/* ---- UTF-8 -------------------------------------------------------------------------- */
/* Decodes one code point at s (n bytes available). Returns its byte length and sets *cp,
 * or 0 for an invalid or truncated sequence (overlongs and surrogates are invalid). */
int utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp into buf (4 bytes room); returns the byte length, 0 for an invalid cp. */
int utf8_encode(uint32_t cp, char *buf);

/* Serialises the vocabulary as a UTF-8 JSON-free string: the characters themselves, in id
 * order, UTF-8 encoded (newly allocated, NUL-terminated; *len its byte length without the
 * NUL). This is how the checkpoint metadata stores it. */
char *vocab_to_utf8(const vocab *v, size_t *len);
/* Parses that string back; HYPER_ERR_FORMAT when it is invalid, empty, holds U+0000, or is
 * not strictly ascending (ids are positions in it, so it is never re-sorted). */
hyper_status vocab_from_utf8(vocab *v, const char *s, size_t len, char *err);

#endif
