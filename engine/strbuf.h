/*
 * strbuf.h — a growing string for documents built piece by piece (SVG, reports): printf
 * appends, the first failed allocation makes it stick at "failed" so callers check once.
 */
#ifndef HYPER_STRBUF_H
#define HYPER_STRBUF_H

#include <stddef.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} strbuf;

/* An empty string (nothing allocated yet). */
void strbuf_init(strbuf *b);
/* Appends formatted text; on a failed allocation the buffer is marked failed and stays so. */
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string (the caller frees it), or NULL when any append failed (then freed here). */
char *strbuf_take(strbuf *b);

#endif
