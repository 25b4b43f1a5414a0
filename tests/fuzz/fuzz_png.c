/*
 * fuzz_png.c — the PNG decoder of the classify endpoint (engine/images.c): png_decode_ink,
 * then image_to_mnist on what it decoded, as POST /v1/models/{}/classify does with an
 * image/png body.
 */
#include "fuzz.h"

#include "images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[HYPER_ERRMSG_MAX];
    float *ink = NULL;
    int w = 0, h = 0;
    if (png_decode_ink(data, size, &ink, &w, &h, err) == HYPER_OK) {
        float out[IMG_PIXELS];
        (void)image_to_mnist(ink, w, h, out, err);
    } else if (ink || w || h) {
        fprintf(stderr, "png_decode_ink failed but left *out/*w/*h set\n");
        abort();
    }
    free(ink);
    return 0;
}
