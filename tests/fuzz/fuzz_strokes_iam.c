/*
 * fuzz_strokes_iam.c — the IAM-OnDB lineStrokes XML parser (engine/strokes_io.c, expat),
 * as a strokes upload with Content-Type application/xml reaches it, followed by what a
 * training job does with the parsed lines: the statistics, outlier removal and an SVG.
 */
#include "fuzz.h"

#include "strokes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[HYPER_ERRMSG_MAX];
    stroke_set s;
    strokes_init(&s);
    if (strokes_parse_iam(&s, (const char *)data, size, "input.xml", err) == HYPER_OK) {
        (void)strokes_stats(&s);
        (void)strokes_drop_outliers(&s, 100.0);
    }
    strokes_free(&s);
    return 0;
}
