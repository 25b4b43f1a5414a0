/*
 * events.c — the outgoing bytes of a streamed reply (api.h api_outbuf): events formatted
 * as SSE ("id: N\ndata: {...}\n\n") or NDJSON lines, queued until the server takes them.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"

int api_outbuf_add(api_outbuf *o, const char *bytes, size_t n)
{
    if (o->off == o->len) /* all taken: start over at the front */
        o->off = o->len = 0;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n)
            cap *= 2;
        char *p = realloc(o->buf, cap);
        if (!p)
            return -1;
        o->buf = p;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, bytes, n);
    o->len += n;
    return 0;
}

int api_outbuf_event(api_outbuf *o, const char *id, json_t *obj)
{
    char *text = obj ? json_text(obj, JSON_COMPACT | JSON_REAL_PRECISION(API_REAL_DIGITS)) : NULL;
    json_decref(obj);
    if (!text)
        return -1;
    int rc = 0;
    if (!o->ndjson && id)
        rc |= api_outbuf_add(o, "id: ", 4) | api_outbuf_add(o, id, strlen(id)) | api_outbuf_add(o, "\n", 1);
    rc |= (o->ndjson ? 0 : api_outbuf_add(o, "data: ", 6)) | api_outbuf_add(o, text, strlen(text)) |
          api_outbuf_add(o, o->ndjson ? "\n" : "\n\n", o->ndjson ? 1 : 2);
    free(text);
    return rc ? -1 : 0;
}

int api_outbuf_heartbeat(api_outbuf *o) { return o->ndjson ? 0 : api_outbuf_add(o, ": \n\n", 4); }

int api_outbuf_empty(const api_outbuf *o) { return o->off == o->len; }

size_t api_outbuf_take(api_outbuf *o, char *buf, size_t max)
{
    size_t n = o->len - o->off;
    if (n > max)
        n = max;
    memcpy(buf, o->buf + o->off, n);
    o->off += n;
    return n;
}

void api_outbuf_free(api_outbuf *o)
{
    free(o->buf);
    memset(o, 0, sizeof *o);
}
