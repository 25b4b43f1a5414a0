/*
 * fuzz_strokes_json.c — the JSON strokes reader (engine/strokes_io.c) as a strokes upload
 * with Content-Type application/json reaches it:
 * [{"text": "...", "strokes": [[[x, y], ...], ...]}, ...], then the statistics and outlier
 * removal a training job runs on the lines.
 *
 * An upload arrives in pieces of any size, so the input is read twice: whole, and cut into
 * pieces whose sizes come from the input's first bytes.  Both readings must agree exactly —
 * the same status, the same message, the same lines, and counting only (no set) the same
 * number — or the target aborts: a difference is a bug of the item splitter.
 */
#include "fuzz.h"

#include "strokes.h"

static void must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_strokes_json: %s\n", what);
        abort();
    }
}

/* Reads doc in pieces of 1..16 bytes cut by the bytes of `cuts` (cycled); s NULL counts. */
static hyper_status in_pieces(stroke_set *s, const char *doc, size_t len, const uint8_t *cuts, size_t ncuts,
                              int64_t *lines, char *err)
{
    strokes_reader *r;
    hyper_status st = strokes_reader_new(&r, s, STROKES_FORMAT_JSON, "input.json", err);
    if (st != HYPER_OK)
        return st;
    for (size_t off = 0, c = 0; st == HYPER_OK && off < len; c++) {
        size_t n = ncuts ? (size_t)(1 + cuts[c % ncuts] % 16) : len;
        if (n > len - off)
            n = len - off;
        st = strokes_reader_feed(r, doc + off, n, err);
        off += n;
    }
    if (st == HYPER_OK)
        st = strokes_reader_finish(r, lines, err);
    strokes_reader_free(r);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t ncuts = size < 4 ? size : 4;
    char err[HYPER_ERRMSG_MAX], err2[HYPER_ERRMSG_MAX], err3[HYPER_ERRMSG_MAX];
    stroke_set whole, parts;
    strokes_init(&whole);
    strokes_init(&parts);
    hyper_status st = strokes_parse_json(&whole, (const char *)data, size, "input.json", err);
    int64_t n2 = -1, n3 = -1;
    hyper_status st2 = in_pieces(&parts, (const char *)data, size, data, ncuts, &n2, err2);
    hyper_status st3 = in_pieces(NULL, (const char *)data, size, data + ncuts / 2, ncuts - ncuts / 2, &n3, err3);
    must(st == st2 && st == st3, "whole and in pieces end differently");
    if (st != HYPER_OK) {
        must(!strcmp(err, err2) && !strcmp(err, err3), "whole and in pieces refuse with different messages");
        must(whole.n == 0 && parts.n == 0, "a refused document left lines");
    } else {
        must(n2 == whole.n && n3 == whole.n, "whole and in pieces count different lines");
        for (int32_t i = 0; i < whole.n; i++) {
            const stroke_line *a = &whole.lines[i], *b = &parts.lines[i];
            must(a->npoints == b->npoints &&
                     !memcmp(a->pts, b->pts, 3 * sizeof(float) * (size_t)a->npoints) &&
                     (a->text ? b->text && !strcmp(a->text, b->text) : !b->text),
                 "whole and in pieces read different lines");
        }
        (void)strokes_stats(&whole);
        (void)strokes_drop_outliers(&whole, 100.0);
    }
    strokes_free(&whole);
    strokes_free(&parts);
    return 0;
}
