/*
 * fuzz_strokes_json.c — the JSON strokes parser (engine/strokes_io.c) as a strokes upload
 * with Content-Type application/json reaches it:
 * [{"text": "...", "strokes": [[[x, y], ...], ...]}, ...], then the statistics and outlier
 * removal a training job runs on the lines.
 */
#include "fuzz.h"

#include "strokes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[HYPER_ERRMSG_MAX];
    stroke_set s;
    strokes_init(&s);
    if (strokes_parse_json(&s, (const char *)data, size, "input.json", err) == HYPER_OK) {
        (void)strokes_stats(&s);
        (void)strokes_drop_outliers(&s, 100.0);
    }
    strokes_free(&s);
    return 0;
}
