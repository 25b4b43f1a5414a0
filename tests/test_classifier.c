/*
 * test_classifier.c — static hypernetworks (classifier.h).
 *
 * Built twice.  Against the double-precision engine it checks every gradient of the four
 * architectures (conv, im2col, max-pool, ReLU, dense, softmax cross-entropy and the weight
 * generator, with and without the norm on generated weights) against central differences.
 * Against the float engine it checks the parameter counts of the paper, the forward pass
 * against direct loops, and the configuration errors.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier.h"
#include "images.h"
#include "trainer.h"

#define NB 3   /* images per check */

static void random_images(real *x, int n, hyper_rng *rng)
{
    for (int k = 0; k < n * CLF_PIXELS; k++)
        x[k] = (real)hyper_rng_uniform(rng);
}

static void randomize(classifier *c, hyper_rng *rng, double scale)
{
    for (size_t k = 0; k < c->size; k++)
        c->block[k] = (real)(scale * hyper_rng_normal(rng));
}

/* Small versions of the four nets, so that every parameter can be checked. */
static clf_config small_config(int which)
{
    clf_config cfg;
    switch (which) {
    case 0:
        clf_config_default(&cfg, CLF_CONV);
        cfg.channels = 3;
        cfg.kernel = 3;
        break;
    case 1:
        clf_config_default(&cfg, CLF_HYPERCONV);
        cfg.channels = 3;
        cfg.kernel = 3;
        cfg.embed = 2;
        cfg.gen_hidden = 3;
        break;
    case 2:
        clf_config_default(&cfg, CLF_HYPERCONV);
        cfg.channels = 3;
        cfg.kernel = 5;
        cfg.embed = 3;
        cfg.gen_hidden = 2;
        cfg.wnorm = 1;
        break;
    case 3:
        clf_config_default(&cfg, CLF_MLP);
        cfg.hidden = 6;
        break;
    case 4:
        clf_config_default(&cfg, CLF_HYPERMLP);
        cfg.hidden = 10;
        cfg.tile_rows = 2;
        cfg.tile_cols = 5;
        cfg.embed = 3;
        cfg.gen_hidden = 2;
        break;
    default:
        clf_config_default(&cfg, CLF_HYPERMLP);
        cfg.hidden = 10;
        cfg.tile_rows = 2;
        cfg.tile_cols = 5;
        cfg.embed = 2;
        cfg.gen_hidden = 3;
        cfg.wnorm = 1;
        break;
    }
    return cfg;
}
#define NSMALL 6

#ifdef HYPER_F64

static double loss_at(const classifier *c, clf_ws *ws, const real *x, const uint8_t *labels)
{
    return clf_forward(c, ws, NB, x, labels, NULL);
}

/* Checks up to `per_tensor` entries of every tensor (all of the small ones) and returns the
 * worst relative error. */
static double grad_check(int which, int per_tensor, char *worst_name, double backward_scale)
{
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg = small_config(which);
    classifier c;
    ck_assert_msg(clf_create(&c, &cfg, err) == HYPER_OK, "%s", err);
    hyper_rng rng;
    hyper_rng_seed(&rng, 77 + (uint64_t)which);
    /* moderate pre-activations: a saturated softmax leaves gradients at the level of the
     * differences' own truncation error (the mlp layers sum 784 inputs) */
    randomize(&c, &rng, cfg.hidden ? 0.05 : 0.3);
    real x[NB * CLF_PIXELS];
    uint8_t labels[NB] = {3, 7, 0};
    random_images(x, NB, &rng);
    clf_ws *ws = clf_ws_new(&c, NB);
    ck_assert_ptr_nonnull(ws);
    real *grad = calloc(c.size, sizeof *grad);
    clf_forward(&c, ws, NB, x, labels, NULL);
    clf_backward(&c, ws, grad, (real)backward_scale);
    double worst = 0;
    const double eps = 1e-5;
    for (int p = 0; p < c.nparams; p++) {
        const param_info *pi = &c.table[p];
        /* every tensor takes part: an all-zero gradient would agree with any difference */
        double mass = 0;
        for (size_t k = 0; k < pi->size; k++)
            mass += fabs(grad[pi->offset + k]);
        ck_assert_msg(mass > 0, "%s has no gradient at all", pi->name);
        const size_t n = pi->size, step = n > (size_t)per_tensor ? n / (size_t)per_tensor : 1;
        for (size_t k = 0; k < n; k += step) {
            real *w = c.block + pi->offset + k;
            const real keep = *w;
            *w = keep + eps;
            const double up = loss_at(&c, ws, x, labels);
            *w = keep - eps;
            const double down = loss_at(&c, ws, x, labels);
            *w = keep;
            const double fd = (up - down) / (2 * eps), an = grad[pi->offset + k];
            /* below 1e-4 the differences own round-off (~1e-11) would dominate */
            const double rel = fabs(fd - an) / fmax(1e-4, fabs(fd) + fabs(an));
            if (rel > worst) {
                worst = rel;
                snprintf(worst_name, PARAM_NAME_MAX + 24, "%s[%zu] (%g vs %g)", pi->name, k, an, fd);
            }
        }
    }
    free(grad);
    clf_ws_free(ws);
    clf_free(&c);
    return worst;
}

START_TEST(grad_classifier)
{
    char name[PARAM_NAME_MAX + 24] = "";
    const double worst = grad_check(_i, 64, name, 1);
    clf_config cfg = small_config(_i);
    printf("classifier gradients (%s%s): worst relative error %.2e\n", clf_arch_str((clf_arch)cfg.arch),
           cfg.wnorm ? "+wnorm" : "", worst);
    ck_assert_msg(worst < 1e-5, "%s%s: worst relative error %g at %s", clf_arch_str((clf_arch)cfg.arch),
                  cfg.wnorm ? "+wnorm" : "", worst, name);
}
END_TEST

/* The check itself must be able to fail: a backward pass 0.1% off is caught. */
START_TEST(grad_check_catches_a_wrong_scale)
{
    char name[PARAM_NAME_MAX + 24] = "";
    ck_assert_double_gt(grad_check(1, 16, name, 1.001), 1e-4);
}
END_TEST

/* A batch larger than one im2col block (16 images) gives the mean of its images' own
 * gradients: the block loop adds up every block, and each image counts once. */
START_TEST(batch_gradient_is_the_mean_over_images)
{
    enum { NBIG = 20 };
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg = small_config(2);   /* hyperconv with the norm: every path */
    classifier c;
    ck_assert_int_eq(clf_create(&c, &cfg, err), HYPER_OK);
    hyper_rng rng;
    hyper_rng_seed(&rng, 21);
    randomize(&c, &rng, 0.3);
    real *x = malloc(sizeof(real) * NBIG * CLF_PIXELS);
    uint8_t labels[NBIG];
    random_images(x, NBIG, &rng);
    for (int b = 0; b < NBIG; b++)
        labels[b] = (uint8_t)(b % CLF_CLASSES);
    clf_ws *big = clf_ws_new(&c, NBIG), *one = clf_ws_new(&c, 1);
    real *g = calloc(c.size, sizeof *g), *sum = calloc(c.size, sizeof *sum);
    real probs[NBIG * CLF_CLASSES], p1[CLF_CLASSES];
    clf_forward(&c, big, NBIG, x, labels, probs);
    clf_backward(&c, big, g, 1);
    double worst = 0, largest = 0;
    for (int b = 0; b < NBIG; b++) {
        clf_forward(&c, one, 1, x + (size_t)b * CLF_PIXELS, labels + b, p1);
        clf_backward(&c, one, sum, (real)(1.0 / NBIG));
        for (int k = 0; k < CLF_CLASSES; k++)
            worst = fmax(worst, fabs(p1[k] - probs[b * CLF_CLASSES + k]));
    }
    ck_assert_double_lt(worst, 1e-12);
    worst = 0;
    for (size_t k = 0; k < c.size; k++) {
        worst = fmax(worst, fabs(g[k] - sum[k]));
        largest = fmax(largest, fabs(g[k]));
    }
    ck_assert_double_gt(largest, 1e-3);
    ck_assert_double_lt(worst, 1e-12 * fmax(1, largest));
    free(g);
    free(sum);
    free(x);
    clf_ws_free(big);
    clf_ws_free(one);
    clf_free(&c);
}
END_TEST

Suite *classifier_grad_suite(void)
{
    Suite *s = suite_create("classifier gradients");
    TCase *tc = tcase_create("grad");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, grad_classifier, 0, NSMALL);
    tcase_add_test(tc, grad_check_catches_a_wrong_scale);
    tcase_add_test(tc, batch_gradient_is_the_mean_over_images);
    suite_add_tcase(s, tc);
    return s;
}

#else /* float build */

START_TEST(param_counts_of_the_paper)
{
    clf_config cfg;
    clf_counts hyper, plain;
    clf_config_default(&cfg, CLF_HYPERCONV);
    ck_assert_int_eq(clf_config_check(&cfg, NULL), HYPER_OK);
    clf_param_counts(&cfg, &hyper);
    clf_config_default(&cfg, CLF_CONV);
    ck_assert_int_eq(clf_config_check(&cfg, NULL), HYPER_OK);
    clf_param_counts(&cfg, &plain);
    /* paper §3.1 / Table 1: the generated 7×7×16×16 kernel from Z = 4 */
    ck_assert_uint_eq(hyper.generator, 4244);
    ck_assert_uint_eq(hyper.generated, 12544);
    ck_assert_uint_eq(plain.generator, 0);
    /* the rest of the net is the same: conv1 7·7·16 + 16, conv2's bias 16, out 784·10 + 10 */
    const size_t rest = 7 * 7 * 16 + 16 + 16 + 784 * 10 + 10;
    ck_assert_uint_eq(plain.total, rest + 12544);
    ck_assert_uint_eq(hyper.total, rest + 4244);

    clf_config_default(&cfg, CLF_HYPERMLP);
    ck_assert_int_eq(clf_config_check(&cfg, NULL), HYPER_OK);
    clf_param_counts(&cfg, &hyper);
    /* tiles of 16 × 10: (784/16)·(80/10) + (80/16)·(10/10) = 397 embeddings of 8, and the
     * maps W_in 16·8·8, B_in 16·8, W_out 8·10, B_out 10 */
    ck_assert_uint_eq(hyper.generator, 397 * 8 + 16 * 8 * 8 + 16 * 8 + 8 * 10 + 10);
    ck_assert_uint_eq(hyper.generated, 784 * 80 + 80 * 10);
    ck_assert_uint_eq(hyper.total, hyper.generator + 80 + 10);
}
END_TEST

START_TEST(config_errors_name_the_field)
{
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg;
    clf_config_default(&cfg, CLF_HYPERMLP);
    cfg.tile_rows = 3;
    ck_assert_int_eq(clf_config_check(&cfg, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "tile_rows"));
    clf_config_default(&cfg, CLF_HYPERMLP);
    cfg.tile_cols = 3;
    ck_assert_int_eq(clf_config_check(&cfg, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "tile_cols"));
    clf_config_default(&cfg, CLF_CONV);
    cfg.kernel = 4;
    ck_assert_int_eq(clf_config_check(&cfg, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "kernel"));
    clf_config_default(&cfg, CLF_CONV);
    cfg.wnorm = 1;
    ck_assert_int_eq(clf_config_check(&cfg, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "wnorm"));
    clf_config_default(&cfg, CLF_MLP);
    cfg.hidden = 0;
    ck_assert_int_eq(clf_config_check(&cfg, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "hidden"));
    cfg.arch = 9;
    ck_assert_int_eq(clf_config_check(&cfg, err), HYPER_ERR_ARG);
    clf_arch a;
    ck_assert_int_eq(clf_arch_parse("hyperconv", &a), 0);
    ck_assert_int_eq(a, CLF_HYPERCONV);
    ck_assert_int_eq(clf_arch_parse("resnet", &a), -1);
}
END_TEST

/* The conv layer against the definition (direct loops, zero padding), the pool against a
 * direct max, and the probabilities against their sum. */
START_TEST(forward_matches_direct_loops)
{
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg = small_config(_i == 0 ? 0 : 1);
    classifier c;
    ck_assert_int_eq(clf_create(&c, &cfg, err), HYPER_OK);
    hyper_rng rng;
    hyper_rng_seed(&rng, 11);
    randomize(&c, &rng, 0.5);
    real x[NB * CLF_PIXELS];
    random_images(x, NB, &rng);
    clf_ws *ws = clf_ws_new(&c, NB);
    real probs[NB * CLF_CLASSES];
    clf_forward(&c, ws, NB, x, NULL, probs);
    /* layer 3: conv2 over the pooled 14×14×C map */
    const clf_layer *l = &c.layers[3];
    const real *in = clf_activation(ws, 2), *out = clf_activation(ws, 3);
    const real *W = clf_weight_values(&c, ws, 1), *bias = c.block + c.table[c.weights[1].bias].offset;
    const int C = l->in_c, f = l->size, S = l->in_h, pad = f / 2;
    double worst = 0;
    for (int b = 0; b < NB; b++)
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++)
                for (int o = 0; o < C; o++) {
                    double acc = bias[o];
                    for (int ci = 0; ci < C; ci++)
                        for (int ky = 0; ky < f; ky++)
                            for (int kx = 0; kx < f; kx++) {
                                const int iy = y + ky - pad, ix = xx + kx - pad;
                                if (iy < 0 || iy >= S || ix < 0 || ix >= S)
                                    continue;
                                acc += (double)in[((b * S + iy) * S + ix) * C + ci] *
                                       W[((ci * f + ky) * f + kx) * C + o];
                            }
                    const double got = out[((b * S + y) * S + xx) * C + o];
                    worst = fmax(worst, fabs(got - acc));
                }
    ck_assert_double_lt(worst, 1e-4);
    /* layer 2: max-pool 2 of the 28×28×C ReLU output */
    const real *r = clf_activation(ws, 1), *p = clf_activation(ws, 2);
    for (int b = 0; b < NB; b++)
        for (int y = 0; y < 14; y++)
            for (int xx = 0; xx < 14; xx++)
                for (int ci = 0; ci < C; ci++) {
                    real m = -1;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            m = fmaxf(m, r[((b * 28 + 2 * y + dy) * 28 + 2 * xx + dx) * C + ci]);
                    ck_assert_float_eq(p[((b * 14 + y) * 14 + xx) * C + ci], m);
                }
    for (int b = 0; b < NB; b++) {
        double sum = 0;
        for (int k = 0; k < CLF_CLASSES; k++)
            sum += probs[b * CLF_CLASSES + k];
        ck_assert_double_eq_tol(sum, 1.0, 1e-5);
    }
    clf_ws_free(ws);
    clf_free(&c);
}
END_TEST

/* The generated kernel is the paper's construction written out: row i of the kernel is
 * (z · W_in[i] + B_in[i]) · W_out + B_out. */
START_TEST(generated_kernel_is_the_papers_formula)
{
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg = small_config(1);
    classifier c;
    ck_assert_int_eq(clf_create(&c, &cfg, err), HYPER_OK);
    hyper_rng rng;
    hyper_rng_seed(&rng, 3);
    randomize(&c, &rng, 0.5);
    clf_ws *ws = clf_ws_new(&c, 1);
    real x[CLF_PIXELS] = {0};
    clf_forward(&c, ws, 1, x, NULL, NULL);
    const real *K = clf_weight_values(&c, ws, 1);
    const real *z = c.block + c.table[clf_param_index(&c, "hyper.z.0")].offset;
    const real *W_in = c.block + c.table[c.w_in].offset, *B_in = c.block + c.table[c.b_in].offset;
    const real *W_out = c.block + c.table[c.w_out].offset, *B_out = c.block + c.table[c.b_out].offset;
    const int N = cfg.channels, Z = cfg.embed, d = cfg.gen_hidden, s = cfg.kernel * cfg.kernel * cfg.channels;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < s; j++) {
            double k = B_out[j];
            for (int e = 0; e < d; e++) {
                double a = B_in[i * d + e];
                for (int q = 0; q < Z; q++)
                    a += (double)z[q] * W_in[(i * Z + q) * d + e];
                k += a * W_out[e * s + j];
            }
            ck_assert_double_eq_tol(K[i * s + j], k, 1e-5);
        }
    clf_ws_free(ws);
    clf_free(&c);
}
END_TEST

/* The initialisation gives generated weights the spread plain ones get. */
START_TEST(generated_weights_start_like_plain_ones)
{
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg;
    clf_config_default(&cfg, CLF_HYPERCONV);
    classifier c;
    ck_assert_int_eq(clf_create(&c, &cfg, err), HYPER_OK);
    double total = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        clf_init(&c, seed);
        clf_ws *ws = clf_ws_new(&c, 1);
        real x[CLF_PIXELS] = {0};
        clf_forward(&c, ws, 1, x, NULL, NULL);
        const real *K = clf_weight_values(&c, ws, 1);
        double ss = 0;
        for (int k = 0; k < 12544; k++)
            ss += (double)K[k] * K[k];
        total += sqrt(ss / 12544);
        clf_ws_free(ws);
    }
    /* He: sqrt(2 / 784) = 0.0505; the product of three random maps varies from seed to seed */
    ck_assert_double_gt(total / 20, 0.025);
    ck_assert_double_lt(total / 20, 0.1);
    clf_free(&c);
}
END_TEST

START_TEST(kernels_svg_draws_every_kernel)
{
    char err[HYPER_ERRMSG_MAX];
    for (int a = 0; a < CLF_ARCH_COUNT; a++) {
        clf_config cfg;
        clf_config_default(&cfg, (clf_arch)a);
        classifier c;
        ck_assert_int_eq(clf_create(&c, &cfg, err), HYPER_OK);
        clf_init(&c, 1);
        strbuf sb;
        strbuf_init(&sb);
        ck_assert_int_eq(clf_kernels_svg(&c, &sb, err), HYPER_OK);
        char *svg = strbuf_take(&sb);
        ck_assert_ptr_nonnull(svg);
        ck_assert_int_eq(strncmp(svg, "<svg", 4), 0);
        size_t images = 0;
        for (const char *p = svg; (p = strstr(p, "<image")); p++)
            images++;
        /* conv: 16 kernels of conv1 and 16×16 of conv2; mlp: the first 16 hidden units */
        ck_assert_uint_eq(images, a >= CLF_CONV ? 16 + 256 : 16);
        ck_assert_ptr_nonnull(strstr(svg, "data:image/png;base64,iVBOR"));   /* a PNG signature */
        ck_assert_uint_lt(strlen(svg), 200000);
        ck_assert_int_eq(strcmp(svg + strlen(svg) - 7, "</svg>\n"), 0);
        free(svg);
        clf_free(&c);
    }
}
END_TEST

/* A served classifier makes its generated weights once (clf_freeze) and answers as before,
 * with a workspace that has no gradient buffers. */
START_TEST(frozen_classifier_answers_the_same)
{
    char err[HYPER_ERRMSG_MAX];
    for (int which = 0; which < NSMALL; which++) {
        clf_config cfg = small_config(which);
        classifier c;
        ck_assert_int_eq(clf_create(&c, &cfg, err), HYPER_OK);
        hyper_rng rng;
        hyper_rng_seed(&rng, 40 + (uint64_t)which);
        randomize(&c, &rng, 0.1);
        float px[CLF_PIXELS];
        for (int k = 0; k < CLF_PIXELS; k++)
            px[k] = (float)hyper_rng_uniform(&rng);
        clf_ws *train = clf_ws_new(&c, 1);
        real before[CLF_CLASSES], after[CLF_CLASSES];
        const int label = clf_classify(&c, train, px, before);
        ck_assert_int_eq(clf_freeze(&c, err), HYPER_OK);
        ck_assert(clf_arch_is_hyper((clf_arch)cfg.arch) ? c.frozen != NULL : c.frozen == NULL);
        clf_ws *serve = clf_ws_new_inference(&c, 1);
        ck_assert_ptr_nonnull(serve);
        ck_assert_int_eq(clf_classify(&c, serve, px, after), label);
        for (int k = 0; k < CLF_CLASSES; k++)
            ck_assert_float_eq(after[k], before[k]);
        clf_ws_free(train);
        clf_ws_free(serve);
        clf_free(&c);
    }
}
END_TEST

/* A file whose tensors have the right sizes but other shapes is refused, naming the tensor. */
START_TEST(load_checks_every_shape)
{
    char dir[] = "/tmp/hyper-clfshape-XXXXXX", path[256], err[HYPER_ERRMSG_MAX];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    clf_config cfg;
    clf_config_default(&cfg, CLF_HYPERCONV);
    classifier c;
    ck_assert_int_eq(clf_create(&c, &cfg, err), HYPER_OK);
    clf_init(&c, 1);
    param_info *w_in = &c.table[c.w_in];
    const int64_t z = w_in->shape[1];
    w_in->shape[1] = w_in->shape[2];    /* (N, Z, d) saved as (N, d, Z): same size, Z = d here */
    w_in->shape[2] = z;
    w_in->shape[0] *= 2;                /* ... and (2N, Z, d/2): same size, another shape */
    w_in->shape[2] /= 2;
    ck_assert_int_eq(clf_save(path, &c, NULL, 0, NULL, 0, err), HYPER_OK);
    checkpoint *ck = NULL;
    ck_assert_int_eq(checkpoint_open_tensors(path, &ck, err), HYPER_OK);
    classifier back;
    ck_assert_int_eq(clf_load(ck, &back, err), HYPER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "hyper.W_in"));
    ck_assert_ptr_nonnull(strstr(err, "shape"));
    checkpoint_close(ck);
    clf_free(&c);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(shift_moves_the_image)
{
    float src[CLF_PIXELS] = {0};
    real dst[CLF_PIXELS];
    src[10 * 28 + 12] = 1;
    clf_shift_image(src, 0, 4, 2, dst);   /* pad 2: dx 0 → right by 2, dy 4 → up by 2 */
    for (int k = 0; k < CLF_PIXELS; k++)
        ck_assert_float_eq(dst[k], k == 8 * 28 + 14 ? 1 : 0);
}
END_TEST

/* ---- training on the real digits (data/mnist, fetched by make) ---- */

static image_set digits;

static void load_digits(void)
{
    char err[HYPER_ERRMSG_MAX];
    ck_assert_msg(mnist_load(&digits, "data/mnist", err) == HYPER_OK, "%s", err);
}

static void free_digits(void) { image_set_free(&digits); }

static double run(clf_arch arch, int64_t steps, const char *ckpt, int resume, trainer **keep)
{
    char err[HYPER_ERRMSG_MAX];
    clf_config cfg;
    clf_config_default(&cfg, arch);
    train_params tp;
    train_params_default(&tp);
    tp.batch = 32;
    tp.lr = 2e-3;
    tp.clip = 0;
    tp.steps = steps;
    tp.eval_every = 0;
    tp.checkpoint_every = 20;
    tp.eval_limit = 1000;
    train_data td = {.images = &digits};
    trainer *t = NULL;
    hyper_status st = resume ? trainer_resume(&t, ckpt, &tp, &td, err)
                             : trainer_new_classifier(&t, &cfg, &tp, &td, err);
    ck_assert_msg(st == HYPER_OK, "%s", err);
    ck_assert_msg(trainer_run(t, 10, NULL, NULL, ckpt, err) == HYPER_OK, "%s", err);
    const double error = trainer_eval(t);
    if (keep)
        *keep = t;
    else
        trainer_free(t);
    return error;
}

/* Chance is 90% error; a few hundred steps on MNIST reach well under 30%. */
START_TEST(a_small_run_learns)
{
    const clf_arch arch[] = {CLF_MLP, CLF_HYPERCONV};
    const double error = run(arch[_i], _i == 0 ? 150 : 120, NULL, 0, NULL);
    ck_assert_msg(error < 0.3, "%s: test error %.3f after a short run", clf_arch_str(arch[_i]), error);
}
END_TEST

/* A run stopped at a checkpoint and resumed ends with exactly the weights of one that was
 * not stopped; the model file reads back into the same classifier. */
START_TEST(resume_is_exact_and_files_round_trip)
{
    char dir[] = "/tmp/hyper-clf-XXXXXX", ckpt[256], ckpt2[256], model_path[256], err[HYPER_ERRMSG_MAX];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ckpt, sizeof ckpt, "%s/a.train", dir);
    snprintf(ckpt2, sizeof ckpt2, "%s/b.train", dir);
    snprintf(model_path, sizeof model_path, "%s/m.safetensors", dir);
    trainer *whole = NULL, *resumed = NULL;
    run(CLF_HYPERMLP, 40, ckpt, 0, &whole);
    run(CLF_HYPERMLP, 20, ckpt2, 0, NULL);
    run(CLF_HYPERMLP, 40, ckpt2, 1, &resumed);
    const classifier *a = trainer_classifier(whole), *b = trainer_classifier(resumed);
    ck_assert_uint_eq(a->size, b->size);
    ck_assert_int_eq(memcmp(a->block, b->block, a->size * sizeof(real)), 0);
    ck_assert_int_eq(trainer_save_model(whole, model_path, err), HYPER_OK);
    checkpoint *ck = NULL;
    ck_assert_msg(checkpoint_open_tensors(model_path, &ck, err) == HYPER_OK, "%s", err);
    ck_assert(clf_is_classifier_file(ck));
    classifier back;
    ck_assert_msg(clf_load(ck, &back, err) == HYPER_OK, "%s", err);
    ck_assert_int_eq(memcmp(&back.cfg, &a->cfg, sizeof back.cfg), 0);
    ck_assert_int_eq(memcmp(back.block, a->block, a->size * sizeof(real)), 0);
    ck_assert_ptr_nonnull(checkpoint_meta(ck, "train.val_error"));
    clf_free(&back);
    checkpoint_close(ck);
    /* a character model's checkpoint is not a classifier, and the reverse */
    ck_assert_int_eq(checkpoint_open(model_path, &ck, err), HYPER_ERR_FORMAT);
    train_params tp;
    train_params_default(&tp);
    corpus text = {0};
    train_data td = {.text = &text};
    trainer *t = NULL;
    ck_assert_int_eq(trainer_resume(&t, ckpt, &tp, &td, err), HYPER_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "classifier"));
    trainer_free(whole);
    trainer_free(resumed);
    unlink(ckpt);
    unlink(ckpt2);
    unlink(model_path);
    rmdir(dir);
}
END_TEST

Suite *classifier_suite(void)
{
    Suite *s = suite_create("classifier");
    TCase *tc = tcase_create("structure");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, param_counts_of_the_paper);
    tcase_add_test(tc, config_errors_name_the_field);
    tcase_add_loop_test(tc, forward_matches_direct_loops, 0, 2);
    tcase_add_test(tc, generated_kernel_is_the_papers_formula);
    tcase_add_test(tc, generated_weights_start_like_plain_ones);
    tcase_add_test(tc, kernels_svg_draws_every_kernel);
    tcase_add_test(tc, shift_moves_the_image);
    tcase_add_test(tc, frozen_classifier_answers_the_same);
    tcase_add_test(tc, load_checks_every_shape);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("training");
    tcase_set_timeout(tr, 240);
    tcase_add_unchecked_fixture(tr, load_digits, free_digits);
    tcase_add_loop_test(tr, a_small_run_learns, 0, 2);
    tcase_add_test(tr, resume_is_exact_and_files_round_trip);
    suite_add_tcase(s, tr);
    return s;
}

#endif
