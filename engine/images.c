/*
 * images.c — the MNIST reader, the PNG decoder and the MNIST-style normalisation of
 * images.h.
 *
 * MNIST was made (LeCun et al.) by scaling each NIST digit, aspect ratio kept, to fit a
 * 20×20 box with anti-aliasing, then placing it in a 28×28 field so that its centre of
 * mass sits at the centre.  image_to_mnist repeats those two steps on whatever a user
 * drew or uploaded, because a classifier trained on MNIST sees a digit drawn large in a
 * corner of a 400×300 canvas as nothing it knows; after the same normalisation it is just
 * another MNIST digit.
 */
#include "images.h"

#include "fsutil.h"
#include "jsonutil.h"

#include <jansson.h>
#include <math.h>
#include <nettle/base64.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MNIST_PATH_MAX 4096 /* bytes of "dir/d.json" */

/* ---- MNIST --------------------------------------------------------------------------- */

void image_set_free(image_set *s)
{
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}


/* The images of one digit file, in file order. */
typedef struct {
    float *pixels; /* (count, IMG_PIXELS) */
    int32_t count;
} digit_images;

/* Checks the "data" array of the file at path and copies it into *d. */
static hyper_status digit_from_json(digit_images *d, const json_t *root, const char *path,
                                    char *err)
{
    if (!json_is_object(root))
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: expected an object {\"data\": [784 numbers per image]}, got %s",
                          path, json_kind(root));
    const json_t *data = json_object_get(root, "data");
    if (!data)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: the object has no \"data\" member", path);
    if (!json_is_array(data))
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: \"data\" is %s, not an array of numbers",
                          path, json_kind(data));
    const size_t nvalues = json_array_size(data);
    if (nvalues == 0)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: \"data\" is empty: no images", path);
    if (nvalues % IMG_PIXELS != 0)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "%s: \"data\" holds %zu values, not a multiple of %d (%d × %d per"
                          " image; %zu values are left over)",
                          path, nvalues, IMG_PIXELS, IMG_SIDE, IMG_SIDE, nvalues % IMG_PIXELS);
    /* MNIST_MAX_FILE_BYTES bounds nvalues (every value takes two bytes or more), so the
     * count fits an int32_t and the buffer size cannot overflow */
    float *px = malloc(nvalues * sizeof *px);
    if (!px)
        return hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory for %zu values", path, nvalues);
    for (size_t i = 0; i < nvalues; i++) {
        const json_t *v = json_array_get(data, i);
        if (!json_is_number(v)) {
            free(px);
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: data[%zu] (image %zu, pixel %zu) is %s, not a number", path, i,
                              i / IMG_PIXELS, i % IMG_PIXELS, json_kind(v));
        }
        const double x = json_number_value(v);
        if (!(x >= 0.0 && x <= 1.0)) { /* written so that a NaN fails too */
            free(px);
            return hyper_fail(err, HYPER_ERR_FORMAT,
                              "%s: data[%zu] (image %zu, pixel %zu) is %g, outside [0, 1]", path,
                              i, i / IMG_PIXELS, i % IMG_PIXELS, x);
        }
        px[i] = (float)x;
    }
    d->pixels = px;
    d->count = (int32_t)(nvalues / IMG_PIXELS);
    return HYPER_OK;
}

/* Reads dir/<digit>.json into *d. */
static hyper_status digit_load(digit_images *d, const char *dir, int digit, char *err)
{
    char path[MNIST_PATH_MAX];
    const int k = snprintf(path, sizeof path, "%s/%d.json", dir, digit);
    if (k < 0 || (size_t)k >= sizeof path)
        return hyper_fail(err, HYPER_ERR_ARG, "the MNIST directory's name is too long (%zu bytes)",
                          strlen(dir));
    char *buf;
    size_t len;
    hyper_status st = fs_read_file(path, MNIST_MAX_FILE_BYTES, 0, &buf, &len, err);
    if (st != HYPER_OK)
        return st;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, 0, &jerr);
    free(buf);
    if (!root)
        return hyper_fail(err, HYPER_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s",
                          path, jerr.line, jerr.column, jerr.text);
    st = digit_from_json(d, root, path, err);
    json_decref(root);
    return st;
}

/* Appends to s, from position at, the images [first[d], first[d] + count[d]) of every
 * digit d, round-robin: image first[d] + r of each digit in turn for r = 0, 1, ….
 * Returns the position after the last one. */
static int32_t interleave(image_set *s, const digit_images *digits, const int32_t *first,
                          const int32_t *count, int32_t at)
{
    for (int32_t r = 0;; r++) {
        int any = 0;
        for (int d = 0; d < IMG_CLASSES; d++) {
            if (r >= count[d])
                continue;
            memcpy(s->pixels + (size_t)at * IMG_PIXELS,
                   digits[d].pixels + (size_t)(first[d] + r) * IMG_PIXELS,
                   IMG_PIXELS * sizeof *s->pixels);
            s->labels[at++] = (uint8_t)d;
            any = 1;
        }
        if (!any)
            return at;
    }
}

hyper_status mnist_load(image_set *s, const char *dir, char *err)
{
    memset(s, 0, sizeof *s);
    if (!dir || !*dir)
        return hyper_fail(err, HYPER_ERR_ARG, "no MNIST directory given");
    digit_images digits[IMG_CLASSES] = {{0}};
    int32_t first_train[IMG_CLASSES], n_train[IMG_CLASSES];
    int32_t first_test[IMG_CLASSES], n_test[IMG_CLASSES];
    hyper_status st = HYPER_OK;
    int64_t n = 0;
    for (int d = 0; d < IMG_CLASSES; d++) {
        if ((st = digit_load(&digits[d], dir, d, err)) != HYPER_OK)
            goto out;
        const int32_t c = digits[d].count;
        n_test[d] = (c + 4) / 5; /* the last fifth, rounded up */
        n_train[d] = c - n_test[d];
        first_train[d] = 0;
        first_test[d] = n_train[d];
        n += c;
    }
    /* each file holds at most MNIST_MAX_FILE_BYTES / 2 / IMG_PIXELS images, so n is small */
    s->pixels = malloc((size_t)n * IMG_PIXELS * sizeof *s->pixels);
    s->labels = malloc((size_t)n);
    if (!s->pixels || !s->labels) {
        st = hyper_fail(err, HYPER_ERR_NOMEM, "%s: out of memory for %lld images", dir,
                        (long long)n);
        goto out;
    }
    s->n = (int32_t)n;
    s->n_train = interleave(s, digits, first_train, n_train, 0);
    interleave(s, digits, first_test, n_test, s->n_train);
out:
    for (int d = 0; d < IMG_CLASSES; d++)
        free(digits[d].pixels);
    if (st != HYPER_OK)
        image_set_free(s);
    return st;
}

/* ---- PNG ----------------------------------------------------------------------------- */

/* Whether more than half of the outermost ring of the w × h luminance image l is dark:
 * then the picture is light ink on a dark ground already (a screenshot of an MNIST digit,
 * chalk on a blackboard).  The ring of a one-pixel-wide image is the whole image. */
static int border_is_dark(const float *l, int w, int h)
{
    int64_t ring = 0, dark = 0;
    for (int y = 0; y < h; y++) {
        const float *row = l + (size_t)y * w;
        if (y == 0 || y == h - 1) {
            for (int x = 0; x < w; x++)
                dark += row[x] < 0.5f;
            ring += w;
        } else {
            dark += (row[0] < 0.5f) + (w > 1 && row[w - 1] < 0.5f);
            ring += w > 1 ? 2 : 1;
        }
    }
    return 2 * dark > ring;
}

hyper_status png_decode_ink(const void *buf, size_t len, float **out, int *w, int *h, char *err)
{
    static const unsigned char signature[8] = {137, 'P', 'N', 'G', '\r', '\n', 26, '\n'};
    *out = NULL;
    *w = *h = 0;
    if (!buf || len == 0)
        return hyper_fail(err, HYPER_ERR_FORMAT, "the image is empty (0 bytes), not a PNG");
    /* said here rather than left to libpng, whose words for it are less plain */
    if (len < sizeof signature || memcmp(buf, signature, sizeof signature) != 0)
        return hyper_fail(err, HYPER_ERR_FORMAT,
                          "not a PNG image: the %zu bytes do not start with the PNG signature", len);

    /* The simplified API catches libpng's errors (its longjmp) inside libpng and reports
     * them through its return value and image.message, so none crosses our frames. */
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    uint8_t *ga = NULL; /* (h, w, 2) sRGB-encoded grey and alpha, not premultiplied */
    float *ink = NULL;
    hyper_status st = HYPER_OK;
    if (!png_image_begin_read_from_memory(&image, buf, len)) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "not a readable PNG image: %s", image.message);
        goto out;
    }
    if (image.width > IMG_MAX_SIDE || image.height > IMG_MAX_SIDE) {
        st = hyper_fail(err, HYPER_ERR_TOO_LARGE,
                        "the image is %u × %u pixels, more than %d on a side", image.width,
                        image.height, IMG_MAX_SIDE);
        goto out;
    }
    /* a few kilobytes of PNG can claim millions of pixels: bound what decoding allocates */
    if ((uint64_t)image.width * image.height > IMG_MAX_PIXELS) {
        st = hyper_fail(err, HYPER_ERR_TOO_LARGE, "the image is %u × %u pixels, more than %d in all",
                        image.width, image.height, IMG_MAX_PIXELS);
        goto out;
    }
    const int iw = (int)image.width, ih = (int)image.height;
    const size_t npix = (size_t)iw * (size_t)ih;
    image.format = PNG_FORMAT_GA;
    image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB; /* may only be set after begin_read */
    ga = malloc(PNG_IMAGE_SIZE(image));
    ink = malloc(npix * sizeof *ink);
    if (!ga || !ink) {
        st = hyper_fail(err, HYPER_ERR_NOMEM, "out of memory for a %d × %d image", iw, ih);
        goto out;
    }
    if (!png_image_finish_read(&image, NULL, ga, 0, NULL)) {
        st = hyper_fail(err, HYPER_ERR_FORMAT, "a damaged PNG image (%d × %d): %s", iw, ih,
                        image.message);
        goto out;
    }
    /* Composited over white in the encoded values, as browsers blend a canvas, so that
     * alpha (coverage) maps linearly to ink: l = a·g + (1 - a)·1. */
    for (size_t i = 0; i < npix; i++) {
        const float g = ga[2 * i], a = ga[2 * i + 1];
        ink[i] = (a * g + (255.0f - a) * 255.0f) / (255.0f * 255.0f);
    }
    if (!border_is_dark(ink, iw, ih))
        for (size_t i = 0; i < npix; i++)
            ink[i] = 1.0f - ink[i];
    *out = ink;
    *w = iw;
    *h = ih;
    ink = NULL;
out:
    png_image_free(&image); /* a no-op after finish_read, which frees it itself */
    free(ga);
    free(ink);
    return st;
}

/* ---- MNIST-style normalisation ------------------------------------------------------- */

/* Resamples a line of n_in values (in[i · in_step]) to n_out values (out[k · out_step]) by
 * area averaging: output k is the mean over its footprint [k, k + 1) · n_in / n_out of
 * the input, read as constant over each pixel.  Lengths are counted in units of
 * 1 / n_out input pixels, where both grids' edges fall on whole numbers (input pixel i
 * is [i · n_out, (i + 1) · n_out), output pixel k is [k · n_in, (k + 1) · n_in)), so the
 * overlaps are exact. */
static void resample_line(const float *in, ptrdiff_t in_step, int n_in, float *out,
                          ptrdiff_t out_step, int n_out)
{
    for (int k = 0; k < n_out; k++) {
        const int64_t lo = (int64_t)k * n_in, hi = lo + n_in;
        double sum = 0.0;
        for (int64_t i = lo / n_out; i * n_out < hi; i++) {
            const int64_t a = i * n_out > lo ? i * n_out : lo;
            const int64_t b = (i + 1) * n_out < hi ? (i + 1) * n_out : hi;
            sum += (double)(b - a) * in[i * in_step];
        }
        out[k * out_step] = (float)(sum / n_in);
    }
}

hyper_status image_to_mnist(const float *ink, int w, int h, float *out784, char *err)
{
    memset(out784, 0, IMG_PIXELS * sizeof *out784);
    if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE)
        return hyper_fail(err, HYPER_ERR_ARG, "an image of %d × %d pixels: each side must be 1 to %d",
                          w, h, IMG_MAX_SIDE);
    /* the bounding box [x0, x1) × [y0, y1) of the ink */
    int x0 = w, x1 = 0, y0 = h, y1 = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float v = ink[(size_t)y * w + x];
            if (!(v >= 0.0f && v <= 1.0f))
                return hyper_fail(err, HYPER_ERR_ARG,
                                  "pixel (x %d, y %d) of the image is %g, outside [0, 1]", x, y,
                                  (double)v);
            if (v > IMG_INK_THRESHOLD) {
                x0 = x < x0 ? x : x0;
                x1 = x + 1 > x1 ? x + 1 : x1;
                y0 = y < y0 ? y : y0;
                y1 = y + 1 > y1 ? y + 1 : y1;
            }
        }
    if (x1 == 0)
        return hyper_fail(err, HYPER_ERR_ARG,
                          "the image has no ink (no pixel above %.2f): nothing to recognise",
                          (double)IMG_INK_THRESHOLD);
    const int bw = x1 - x0, bh = y1 - y0, longer = bw > bh ? bw : bh;
    /* the patch: the longer side IMG_BOX, the other scaled and rounded half up */
    int pw = (2 * bw * IMG_BOX + longer) / (2 * longer);
    int ph = (2 * bh * IMG_BOX + longer) / (2 * longer);
    pw = pw < 1 ? 1 : pw;
    ph = ph < 1 ? 1 : ph;

    /* rows first (bh × pw, paper zeroed on the way), then columns (ph × pw) */
    float *rows = malloc((size_t)bh * pw * sizeof *rows);
    float *line = malloc((size_t)bw * sizeof *line);
    if (!rows || !line) {
        free(rows);
        free(line);
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory for a %d × %d image", w, h);
    }
    for (int y = 0; y < bh; y++) {
        const float *src = ink + (size_t)(y0 + y) * w + x0;
        for (int x = 0; x < bw; x++)
            line[x] = src[x] > IMG_INK_THRESHOLD ? src[x] : 0.0f;
        resample_line(line, 1, bw, rows + (size_t)y * pw, 1, pw);
    }
    float patch[IMG_BOX * IMG_BOX];
    for (int x = 0; x < pw; x++)
        resample_line(rows + x, pw, bh, patch + x, pw, ph);
    free(rows);
    free(line);

    /* the patch's centre of mass, in its own pixel-centre coordinates */
    double mass = 0.0, mx = 0.0, my = 0.0;
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++) {
            const double v = patch[y * pw + x];
            mass += v;
            mx += v * x;
            my += v * y;
        }
    /* mass > 0: every input pixel of the box overlaps some output pixel with a positive
     * length, and the box holds at least one pixel of ink */
    int dx = (int)floor(IMG_CENTRE - mx / mass + 0.5);
    int dy = (int)floor(IMG_CENTRE - my / mass + 0.5);
    dx = dx < 0 ? 0 : dx > IMG_SIDE - pw ? IMG_SIDE - pw : dx;
    dy = dy < 0 ? 0 : dy > IMG_SIDE - ph ? IMG_SIDE - ph : dy;
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++) {
            const float v = patch[y * pw + x];
            out784[(dy + y) * IMG_SIDE + dx + x] = v > 1.0f ? 1.0f : v; /* rounding only */
        }
    return HYPER_OK;
}

hyper_status png_to_mnist(const void *buf, size_t len, float *out784, char *err)
{
    memset(out784, 0, IMG_PIXELS * sizeof *out784);
    float *ink;
    int w, h;
    hyper_status st = png_decode_ink(buf, len, &ink, &w, &h, err);
    if (st != HYPER_OK)
        return st;
    st = image_to_mnist(ink, w, h, out784, err);
    free(ink);
    return st;
}

hyper_status png_encode_rgb_base64(const uint8_t *rgb, int w, int h, char **out, char *err)
{
    *out = NULL;
    if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE)
        return hyper_fail(err, HYPER_ERR_ARG, "a %d×%d image cannot be encoded", w, h);
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)w;
    image.height = (png_uint_32)h;
    image.format = PNG_FORMAT_RGB;
    /* ask for the size first, then write into a buffer of that size */
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, NULL, &size, 0, rgb, 0, NULL))
        return hyper_fail(err, HYPER_ERR_FORMAT, "PNG encoding failed: %s", image.message);
    uint8_t *png = malloc(size);
    char *b64 = png ? malloc(BASE64_ENCODE_RAW_LENGTH(size) + 1) : NULL;
    if (!b64) {
        free(png);
        png_image_free(&image);
        return hyper_fail(err, HYPER_ERR_NOMEM, "out of memory encoding a PNG");
    }
    if (!png_image_write_to_memory(&image, png, &size, 0, rgb, 0, NULL)) {
        free(png);
        free(b64);
        return hyper_fail(err, HYPER_ERR_FORMAT, "PNG encoding failed: %s", image.message);
    }
    base64_encode_raw(b64, size, png);
    b64[BASE64_ENCODE_RAW_LENGTH(size)] = 0;
    free(png);
    *out = b64;
    return HYPER_OK;
}
