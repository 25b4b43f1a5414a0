/*
 * jsonutil.c — see jsonutil.h.
 */
#include "jsonutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

int json_real_format(double x, char *buf, size_t n)
{
    if (!isfinite(x))
        return snprintf(buf, n, "null");
    int len = 0;
    for (int digits = 15; digits <= 17; digits++) {
        len = snprintf(buf, n, "%.*g", digits, x);
        if (len > 0 && (size_t)len < n && strtod(buf, NULL) == x)
            break;
    }
    /* it must read back as a real, not an integer: "1" would come back as 1, an integer */
    if (len > 0 && (size_t)len + 2 < n && !strpbrk(buf, ".eEn")) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    return len;
}

/* jansson writes reals with %.17g (or the precision asked for); this rewrites each real of
 * its text in the shortest form that reads back equal.  A real is a number token, outside
 * a string, holding '.', 'e' or 'E'. */
char *json_text(const json_t *j, size_t flags)
{
    const size_t precision_bits = (size_t)0x1F << 11; /* where JSON_REAL_PRECISION(n) lives */
    if (flags & precision_bits)  /* a fixed precision: %.Ng is already the shortest within it */
        return json_dumps(j, flags);
    char *text = json_dumps(j, flags | JSON_REAL_PRECISION(17));
    if (!text)
        return NULL;
    size_t len = strlen(text);
    /* the shortest form is never longer than %.17g's (".0" is added only where %.17g
     * already had to add it), so the rewrite happens in place */
    size_t r = 0, w = 0;
    int in_string = 0;
    while (r < len) {
        char c = text[r];
        if (in_string) {
            text[w++] = text[r++];
            if (c == '\\' && r < len)
                text[w++] = text[r++];
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
            text[w++] = text[r++];
            continue;
        }
        if (c != '-' && !(c >= '0' && c <= '9')) {
            text[w++] = text[r++];
            continue;
        }
        size_t end = r + 1;
        while (end < len && strchr("0123456789+-.eE", text[end]))
            end++;
        if (!memchr(text + r, '.', end - r) && !memchr(text + r, 'e', end - r) &&
            !memchr(text + r, 'E', end - r)) { /* an integer: as it is */
            memmove(text + w, text + r, end - r);
            w += end - r;
            r = end;
            continue;
        }
        char tok[40], out[40];
        size_t tl = end - r < sizeof tok - 1 ? end - r : sizeof tok - 1;
        memcpy(tok, text + r, tl);
        tok[tl] = '\0';
        int ol = json_real_format(strtod(tok, NULL), out, sizeof out);
        if (ol <= 0 || (size_t)ol > end - r) { /* cannot happen; keep jansson's */
            memmove(text + w, text + r, end - r);
            w += end - r;
        } else {
            memcpy(text + w, out, (size_t)ol);
            w += (size_t)ol;
        }
        r = end;
    }
    text[w] = '\0';
    return text;
}
