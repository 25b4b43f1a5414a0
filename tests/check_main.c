/*
 * check_main.c — runs the engine's check suites.  Built twice: against libhyper.a (float)
 * it runs every suite but the gradient checks; against libhyper64.a (-DHYPER_F64) it runs
 * the gradient checks, which need double precision to mean something, and the kernel
 * suite again (the double build's own kernel path).
 */
#include <check.h>
#include <stdlib.h>

Suite *kernels_suite(void);
Suite *mdn_suite(void);
Suite *activity_suite(void);
#ifdef HYPER_F64
Suite *grad_suite(void);
Suite *classifier_grad_suite(void);
#else
Suite *vocab_suite(void);
Suite *sampler_suite(void);
Suite *checkpoint_suite(void);
Suite *engine_suite(void);
Suite *training_suite(void);
Suite *strokes_suite(void);
Suite *hershey_suite(void);
Suite *handwriting_suite(void);
Suite *datasets_suite(void);
Suite *images_suite(void);
Suite *classifier_suite(void);
Suite *records_suite(void);
#endif

int main(void)
{
#ifdef HYPER_F64
    SRunner *sr = srunner_create(grad_suite());
    srunner_add_suite(sr, classifier_grad_suite());
    srunner_add_suite(sr, kernels_suite());
    srunner_add_suite(sr, mdn_suite());
    srunner_add_suite(sr, activity_suite());
#else
    SRunner *sr = srunner_create(vocab_suite());
    srunner_add_suite(sr, sampler_suite());
    srunner_add_suite(sr, checkpoint_suite());
    srunner_add_suite(sr, engine_suite());
    srunner_add_suite(sr, training_suite());
    srunner_add_suite(sr, strokes_suite());
    srunner_add_suite(sr, hershey_suite());
    srunner_add_suite(sr, handwriting_suite());
    srunner_add_suite(sr, datasets_suite());
    srunner_add_suite(sr, images_suite());
    srunner_add_suite(sr, classifier_suite());
    srunner_add_suite(sr, records_suite());
    srunner_add_suite(sr, kernels_suite());
    srunner_add_suite(sr, mdn_suite());
    srunner_add_suite(sr, activity_suite());
#endif
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
