/*
 * strbuf.c — the growing string of strbuf.h.
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRBUF_FIRST 4096

void strbuf_init(strbuf *b) { memset(b, 0, sizeof *b); }

void strbuf_printf(strbuf *b, const char *fmt, ...)
{
    while (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        int n = b->buf ? vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap) : 0;
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->buf && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 + (size_t)n : STRBUF_FIRST;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->failed = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
}

char *strbuf_take(strbuf *b)
{
    char *s = b->failed ? NULL : b->buf;
    if (b->failed)
        free(b->buf);
    else if (!s)
        s = calloc(1, 1);
    memset(b, 0, sizeof *b);
    return s;
}
