/*
 * test_activity.c — what the hypernetwork does (paper Fig. 4): model_hyper_activity from
 * the hyper states of a step-by-step run (on a packed model, as hyperd serves it) against
 * a direct recomputation from the d_h the training forward keeps for every step.  Built in
 * both precisions; the float build allows for float rounding of the cached d_h.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activity.h"
#include "model.h"
#include "strokes.h"

#include <expat.h>

#ifdef HYPER_F64
#define ACTIVITY_TOL 1e-9
#else
#define ACTIVITY_TOL 1e-4
#endif

/* d_h (4N) of ĥ = 0: bz_h[g] · Wd_h[g], what the zero state before the first step gives. */
static void dh_of_zero(const model *m, int l, double *out)
{
    const int N = m->cfg.units, Z = m->cfg.embed;
    const layer_params *P = &m->p.layer[l];
    for (int g = 0; g < 4; g++)
        for (int n = 0; n < N; n++) {
            double d = 0;
            for (int z = 0; z < Z; z++)
                d += (double)P->bz_h[g * Z + z] * P->Wd_h[((size_t)g * Z + z) * N + n];
            out[g * N + n] = d;
        }
}

START_TEST(activity_equals_change_of_dh)
{
    enum { B = 2, T = 9, L = 2, V = 7 };
    const cell_kind cells[] = {CELL_HYPERLSTM, CELL_LNHYPERLSTM};
    model_config c = {cells[_i], L, 12, 6, 3, 0, V};
    const int N = c.units, H = c.hyper_units;
    model m;
    char err[HYPER_ERRMSG_MAX];
    ck_assert_int_eq(model_create(&m, &c, NULL), HYPER_OK);
    model_init(&m, 5);
    /* W_z starts at 0 (d_h would never change): give every weight some signal */
    hyper_rng rng;
    hyper_rng_seed(&rng, 9);
    for (size_t k = 0; k < m.size; k++)
        m.block[k] += (real)(0.2 * hyper_rng_normal(&rng));
    int32_t ids[T * B];
    for (int k = 0; k < T * B; k++)
        ids[k] = (int32_t)(hyper_rng_next(&rng) % V);

    /* the training path: d_h of every step, cached */
    model_state s;
    ck_assert_int_eq(model_state_init(&s, &c, B, NULL), HYPER_OK);
    model_train_ws *tw = model_train_ws_new(&c, B, T);
    ck_assert_ptr_nonnull(tw);
    model_forward_stack(&m, &s, tw, ids, NULL, NULL);

    /* the serving path: step by step on the packed model, ĥ before and after each step */
    ck_assert_int_eq(model_pack(&m, 0, err), HYPER_OK);
    model_state_zero(&s);
    model_step_ws *ws = model_step_ws_new(&c, B);
    real *logits = malloc((size_t)B * V * sizeof(real));
    real *before = malloc((size_t)L * B * H * sizeof(real));
    double *prev = malloc((size_t)L * 4 * N * sizeof(double));
    double worst = 0, smallest = INFINITY;
    for (int l = 0; l < L; l++)
        dh_of_zero(&m, l, prev + (size_t)l * 4 * N);
    for (int t = 0; t < T; t++) {
        for (int l = 0; l < L; l++)
            memcpy(before + (size_t)l * B * H, s.hh[l], (size_t)B * H * sizeof(real));
        model_step(&m, &s, ws, B, ids + t * B, NULL, logits);
        for (int l = 0; l < L; l++) {
            const real *dh = model_train_ws_dh(tw, l);
            ck_assert_ptr_nonnull(dh);
            for (int b = 0; b < B; b++) {
                real got[4];
                ck_assert_int_eq(model_hyper_activity(&m, l, before + ((size_t)l * B + b) * H,
                                                      s.hh[l] + (size_t)b * H, got), 0);
                const real *now = dh + ((size_t)t * B + b) * 4 * N;
                const double *was = t == 0 ? prev + (size_t)l * 4 * N
                                           : NULL;
                for (int g = 0; g < 4; g++) {
                    double sq = 0;
                    for (int n = 0; n < N; n++) {
                        const double p = was ? was[g * N + n]
                                             : (double)dh[((size_t)(t - 1) * B + b) * 4 * N + g * N + n];
                        const double d = (double)now[g * N + n] - p;
                        sq += d * d;
                    }
                    const double want = sqrt(sq);
                    const double rel = fabs((double)got[g] - want) / (want + 1e-6);
                    worst = fmax(worst, rel);
                    smallest = fmin(smallest, want);
                    ck_assert_msg(rel < ACTIVITY_TOL,
                                  "%s layer %d step %d stream %d gate %d: activity %.9g, "
                                  "from d_h %.9g (relative difference %.3e)",
                                  cell_kind_str(c.cell), l, t, b, g, (double)got[g], want, rel);
                }
            }
        }
    }
    ck_assert_msg(smallest > 1e-4, "d_h hardly changes (%.3g): the test would prove little", smallest);
    fprintf(stderr, "activity (%s, %s): max relative difference %.3e over %d steps\n",
            cell_kind_str(c.cell), sizeof(real) == 8 ? "double" : "float", worst, T);
    /* cells without a hypernetwork have no activity; layers out of range neither */
    real out[4];
    ck_assert_int_eq(model_hyper_activity(&m, L, before, before, out), -1);
    model_config plain = {CELL_LSTM, 1, 4, 0, 0, 0, 3};
    model pm;
    ck_assert_int_eq(model_create(&pm, &plain, NULL), HYPER_OK);
    ck_assert_int_eq(model_hyper_activity(&pm, 0, before, before, out), -1);
    model_free(&pm);
    free(logits);
    free(before);
    free(prev);
    model_step_ws_free(ws);
    model_train_ws_free(tw);
    model_state_free(&s);
    model_free(&m);
}
END_TEST

/* Counts the elements named `name` of a document that must be well-formed XML. */
typedef struct {
    const char *name;
    int count;
} xml_count;

static void XMLCALL count_open(void *user, const XML_Char *el, const XML_Char **attrs)
{
    (void)attrs;
    xml_count *c = user;
    c->count += strcmp(el, c->name) == 0;
}

static int xml_elements(const char *doc, const char *name)
{
    XML_Parser x = XML_ParserCreate("UTF-8");
    xml_count c = {name, 0};
    XML_SetUserData(x, &c);
    XML_SetStartElementHandler(x, count_open);
    int ok = XML_Parse(x, doc, (int)strlen(doc), 1) == XML_STATUS_OK;
    ck_assert_msg(ok, "not well-formed (%s): %.600s", XML_ErrorString(XML_GetErrorCode(x)), doc);
    XML_ParserFree(x);
    return c.count;
}

START_TEST(activity_pictures_are_well_formed)
{
    /* markup characters, a control character, a tab, a newline and a two-byte character */
    const char text[] = "a<&>\"'\x01\t\n\xc3\xa9z";
    const size_t chars = 11;
    float act[4 * 11];
    for (size_t k = 0; k < 4 * chars; k++)
        act[k] = (float)(k % 7) * 0.25f;
    char *doc = activity_text_svg(text, strlen(text), act, chars);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(xml_elements(doc, "tspan"), (int)chars);
    ck_assert_int_eq(xml_elements(doc, "text") >= 3, 1); /* two lines and the legend */
    free(doc);
    /* long lines wrap: 200 characters are at least 3 lines */
    char many[201];
    memset(many, 'x', 200);
    many[200] = 0;
    doc = activity_text_svg(many, 200, NULL, 0); /* no activity: grey, still a document */
    ck_assert_int_eq(xml_elements(doc, "text"), 3 + 1);
    free(doc);
    /* strokes, one segment per point, coloured */
    const double xy[] = {0, 0, 1, 1, 2, 0, 5, 5};
    const int32_t lens[] = {3, 1};
    char colour[4][8];
    activity_colours(act, 4, colour);
    doc = strokes_svg_coloured(xy, lens, 2, 0, (const char (*)[8])colour);
    ck_assert_int_eq(xml_elements(doc, "path"), 4);
    ck_assert_ptr_nonnull(strstr(doc, colour[3]));
    free(doc);
    char c0[8], c1[8];
    activity_colour(0, c0);
    activity_colour(1, c1);
    ck_assert_str_eq(c0, "#2846c8");
    ck_assert_str_eq(c1, "#d7281e");
}
END_TEST

Suite *activity_suite(void)
{
    Suite *s = suite_create("activity");
    TCase *tc = tcase_create("hyper activity");
    tcase_add_loop_test(tc, activity_equals_change_of_dh, 0, 2);
    tcase_add_test(tc, activity_pictures_are_well_formed);
    suite_add_tcase(s, tc);
    return s;
}
