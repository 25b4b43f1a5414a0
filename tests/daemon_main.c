/*
 * daemon_main.c — runs the black-box suite of the daemon (test_daemon.c), a binary of its
 * own: it needs a built hyperd ($HYPERD, else build/hyperd) and libcurl, which the engine's
 * unit tests do not.
 */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

Suite *daemon_suite(void);
Suite *handwriting_api_suite(void);
Suite *jobs_api_suite(void);
Suite *faults_suite(void);
Suite *http_edges_suite(void);
/* Daemons of the shared fixtures that crashed or did not stop cleanly on SIGTERM. */
int daemon_unclean_exits(void);

int main(void)
{
    /* a daemon that closes a connection must not kill the runner */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "check_daemon: curl_global_init failed\n");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(daemon_suite());
    srunner_add_suite(sr, handwriting_api_suite());
    srunner_add_suite(sr, jobs_api_suite());
    srunner_add_suite(sr, faults_suite());
    srunner_add_suite(sr, http_edges_suite());
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists every test */
    int failed = srunner_ntests_failed(sr) + daemon_unclean_exits();
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
