/*
 * vocab.c — UTF-8 decoding and encoding, and the character vocabulary of vocab.h.
 *
 * A vocabulary is built through a presence bitmap over the whole code space (0x110000 bits,
 * 136 KiB): one pass marks every character, one scan reads them out already sorted and
 * unique.  Lookups are a binary search over the sorted code points.
 *
 * U+0000 is never part of a vocabulary: the checkpoint stores the vocabulary as a
 * NUL-terminated metadata string, where a NUL would silently cut it short.
 */
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTF8_CP_LIMIT 0x110000u    /* one past the last code point, U+10FFFF */
#define BITMAP_WORDS (UTF8_CP_LIMIT / 64)

/* How many distinct unknown characters an error message names. */
#define VOCAB_ERR_NAMED 5

/* ---- UTF-8 ---------------------------------------------------------------------------- */

static int cp_is_scalar(uint32_t cp)
{
    return cp < UTF8_CP_LIMIT && !(cp >= 0xD800 && cp <= 0xDFFF);
}

int utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    if (!s || n == 0)
        return 0;
    const unsigned char *b = (const unsigned char *)s;
    uint32_t c;
    int len;
    uint32_t min;    /* smallest code point that needs len bytes: anything below is overlong */
    if (b[0] < 0x80) {
        *cp = b[0];
        return 1;
    } else if ((b[0] & 0xE0) == 0xC0) {
        len = 2, c = b[0] & 0x1F, min = 0x80;
    } else if ((b[0] & 0xF0) == 0xE0) {
        len = 3, c = b[0] & 0x0F, min = 0x800;
    } else if ((b[0] & 0xF8) == 0xF0) {
        len = 4, c = b[0] & 0x07, min = 0x10000;
    } else {
        return 0;    /* a continuation byte, or 0xF8..0xFF which UTF-8 never uses */
    }
    if (n < (size_t)len)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((b[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (b[i] & 0x3F);
    }
    if (c < min || !cp_is_scalar(c))
        return 0;
    *cp = c;
    return len;
}

int utf8_encode(uint32_t cp, char *buf)
{
    unsigned char *b = (unsigned char *)buf;
    if (!cp_is_scalar(cp))
        return 0;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- building ------------------------------------------------------------------------- */

static void bitmap_set(uint64_t *bits, uint32_t cp) { bits[cp >> 6] |= 1ull << (cp & 63); }

/* Fills v from a presence bitmap (borrowed).  v is left empty on error. */
static hyper_status vocab_from_bitmap(vocab *v, const uint64_t *bits, char *err)
{
    int64_t count = 0;
    for (uint32_t w = 0; w < BITMAP_WORDS; w++)
        count += __builtin_popcountll(bits[w]);
    if (count == 0)
        return hyper_fail(err, HYPER_ERR_ARG, "vocabulary: no characters");
    if (count > VOCAB_MAX)
        return hyper_fail(err, HYPER_ERR_ARG,
                          "vocabulary: %lld distinct characters, more than the %d allowed",
                          (long long)count, VOCAB_MAX);
    uint32_t *cp = malloc((size_t)count * sizeof *cp);
    if (!cp)
        return hyper_fail(err, HYPER_ERR_NOMEM, "vocabulary: out of memory for %lld characters",
                          (long long)count);
    int32_t k = 0;
    for (uint32_t w = 0; w < BITMAP_WORDS; w++)
        for (uint64_t m = bits[w]; m; m &= m - 1)
            cp[k++] = w * 64 + (uint32_t)__builtin_ctzll(m);
    v->size = k;
    v->cp = cp;
    return HYPER_OK;
}

hyper_status vocab_build(vocab *v, const char *text, size_t len, char *err)
{
    v->size = 0;
    v->cp = NULL;
    if (!text && len > 0)
        return hyper_fail(err, HYPER_ERR_ARG, "vocab_build: NULL text");
    uint64_t *bits = calloc(BITMAP_WORDS, sizeof *bits);
    if (!bits)
        return hyper_fail(err, HYPER_ERR_NOMEM, "vocab_build: out of memory");
    hyper_status rc = HYPER_OK;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = utf8_decode(text + i, len - i, &c);
        if (k == 0) {
            rc = hyper_fail(err, HYPER_ERR_ENCODING,
                            "invalid UTF-8 at byte offset %zu (byte 0x%02X)", i,
                            (unsigned)(unsigned char)text[i]);
            goto out;
        }
        if (c == 0) {
            rc = hyper_fail(err, HYPER_ERR_ARG,
                            "text holds U+0000 at byte offset %zu; NUL cannot be in a vocabulary",
                            i);
            goto out;
        }
        bitmap_set(bits, c);
        i += (size_t)k;
    }
    rc = vocab_from_bitmap(v, bits, err);
out:
    free(bits);
    return rc;
}

hyper_status vocab_from_codepoints(vocab *v, const uint32_t *cps, int32_t n, char *err)
{
    v->size = 0;
    v->cp = NULL;
    if (n < 1 || !cps)
        return hyper_fail(err, HYPER_ERR_ARG, "vocab_from_codepoints: %d code points", n);
    for (int32_t i = 0; i < n; i++)
        if (cps[i] == 0 || !cp_is_scalar(cps[i]))
            return hyper_fail(err, HYPER_ERR_ARG,
                              "vocab_from_codepoints: 0x%X at index %d is not a usable character",
                              (unsigned)cps[i], i);
    uint64_t *bits = calloc(BITMAP_WORDS, sizeof *bits);
    if (!bits)
        return hyper_fail(err, HYPER_ERR_NOMEM, "vocab_from_codepoints: out of memory");
    for (int32_t i = 0; i < n; i++)
        bitmap_set(bits, cps[i]);
    hyper_status rc = vocab_from_bitmap(v, bits, err);
    free(bits);
    return rc;
}

void vocab_free(vocab *v)
{
    if (!v)
        return;
    free(v->cp);
    v->cp = NULL;
    v->size = 0;
}

/* ---- lookups -------------------------------------------------------------------------- */

int32_t vocab_id(const vocab *v, uint32_t cp)
{
    int32_t lo = 0, hi = v->size - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (v->cp[mid] == cp)
            return mid;
        if (v->cp[mid] < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int vocab_decode(const vocab *v, int32_t id, char *buf)
{
    buf[0] = '\0';
    if (id < 0 || id >= v->size)
        return 0;
    int k = utf8_encode(v->cp[id], buf);
    buf[k] = '\0';
    return k;
}

/* ---- encoding text -------------------------------------------------------------------- */

/* Appends "U+XXXX 'c'" for an unknown character to the message being built in msg. */
static void name_char(char *msg, size_t cap, uint32_t cp)
{
    size_t used = strlen(msg);
    if (used >= cap)
        return;
    char ch[5] = {0};
    /* The character itself only when it prints: a raw newline or escape code in an error
     * message helps nobody. */
    int printable = cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp < 0xA0);
    if (printable && utf8_encode(cp, ch) > 0)
        snprintf(msg + used, cap - used, "%sU+%04X '%s'", used ? ", " : "", (unsigned)cp, ch);
    else
        snprintf(msg + used, cap - used, "%sU+%04X", used ? ", " : "", (unsigned)cp);
}

hyper_status vocab_encode(const vocab *v, const char *text, size_t len, int skip_unknown,
                          int32_t **out, size_t *n, size_t *skipped, char *err)
{
    *out = NULL;
    *n = 0;
    if (skipped)
        *skipped = 0;
    if (!text && len > 0)
        return hyper_fail(err, HYPER_ERR_ARG, "vocab_encode: NULL text");

    /* Pass 1: validate, count, and remember the first few distinct unknown characters. */
    size_t known = 0, unknown = 0;
    uint32_t named[VOCAB_ERR_NAMED];
    int n_named = 0, more_named = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = utf8_decode(text + i, len - i, &c);
        if (k == 0)
            return hyper_fail(err, HYPER_ERR_ENCODING,
                              "invalid UTF-8 at byte offset %zu (byte 0x%02X)", i,
                              (unsigned)(unsigned char)text[i]);
        if (vocab_id(v, c) >= 0) {
            known++;
        } else {
            unknown++;
            int seen = 0;
            for (int j = 0; j < n_named; j++)
                seen |= named[j] == c;
            if (!seen && n_named < VOCAB_ERR_NAMED)
                named[n_named++] = c;
            else if (!seen)
                more_named = 1;
        }
        i += (size_t)k;
    }
    if (unknown > 0 && !skip_unknown) {
        char list[HYPER_ERRMSG_MAX] = "";
        for (int j = 0; j < n_named; j++)
            name_char(list, sizeof list, named[j]);
        return hyper_fail(err, HYPER_ERR_VOCAB,
                          "%zu character%s outside the vocabulary: %s%s", unknown,
                          unknown == 1 ? "" : "s", list, more_named ? ", ..." : "");
    }

    /* Pass 2: the ids.  At least one element so that success always gives a pointer. */
    if (known > SIZE_MAX / sizeof **out)
        return hyper_fail(err, HYPER_ERR_NOMEM, "vocab_encode: text too long");
    int32_t *ids = malloc((known ? known : 1) * sizeof *ids);
    if (!ids)
        return hyper_fail(err, HYPER_ERR_NOMEM, "vocab_encode: out of memory for %zu ids",
                          known);
    size_t m = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = utf8_decode(text + i, len - i, &c);
        int32_t id = vocab_id(v, c);
        if (id >= 0)
            ids[m++] = id;
        i += (size_t)k;
    }
    *out = ids;
    *n = m;
    if (skipped)
        *skipped = unknown;
    return HYPER_OK;
}

/* ---- serialisation -------------------------------------------------------------------- */

char *vocab_to_utf8(const vocab *v, size_t *len)
{
    char tmp[4];
    size_t total = 0;
    if (len)
        *len = 0;
    for (int32_t i = 0; i < v->size; i++) {
        int k = utf8_encode(v->cp[i], tmp);
        if (k == 0)
            return NULL;    /* not a vocabulary this file built */
        total += (size_t)k;
    }
    char *s = malloc(total + 1);
    if (!s)
        return NULL;
    size_t at = 0;
    for (int32_t i = 0; i < v->size; i++)
        at += (size_t)utf8_encode(v->cp[i], s + at);
    s[at] = '\0';
    if (len)
        *len = at;
    return s;
}

hyper_status vocab_from_utf8(vocab *v, const char *s, size_t len, char *err)
{
    v->size = 0;
    v->cp = NULL;
    if (!s || len == 0)
        return hyper_fail(err, HYPER_ERR_FORMAT, "vocabulary: empty");
    /* Every character takes at least one byte, so len bounds the count. */
    size_t cap = len < VOCAB_MAX ? len : VOCAB_MAX;
    uint32_t *cp = malloc(cap * sizeof *cp);
    if (!cp)
        return hyper_fail(err, HYPER_ERR_NOMEM, "vocabulary: out of memory");
    hyper_status rc = HYPER_OK;
    size_t count = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = utf8_decode(s + i, len - i, &c);
        if (k == 0) {
            rc = hyper_fail(err, HYPER_ERR_FORMAT,
                            "vocabulary: invalid UTF-8 at byte offset %zu", i);
            goto fail;
        }
        if (c == 0) {
            rc = hyper_fail(err, HYPER_ERR_FORMAT, "vocabulary: U+0000 at byte offset %zu", i);
            goto fail;
        }
        /* Ids are positions, so the stored order must already be the sorted order: sorting
         * here would silently give every character a different id than the weights expect. */
        if (count > 0 && c <= cp[count - 1]) {
            vocab sofar = {(int32_t)count, cp};
            if (vocab_id(&sofar, c) >= 0)
                rc = hyper_fail(err, HYPER_ERR_FORMAT,
                                "vocabulary: U+%04X appears twice (byte offset %zu)",
                                (unsigned)c, i);
            else
                rc = hyper_fail(err, HYPER_ERR_FORMAT,
                                "vocabulary: U+%04X at byte offset %zu is out of order "
                                "(characters must be in ascending code point order)",
                                (unsigned)c, i);
            goto fail;
        }
        if (count == VOCAB_MAX) {
            rc = hyper_fail(err, HYPER_ERR_FORMAT, "vocabulary: more than %d characters",
                            VOCAB_MAX);
            goto fail;
        }
        cp[count++] = c;
        i += (size_t)k;
    }
    v->size = (int32_t)count;
    v->cp = cp;
    return HYPER_OK;
fail:
    free(cp);
    return rc;
}
