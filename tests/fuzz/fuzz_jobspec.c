/*
 * fuzz_jobspec.c — the training job spec (engine/jobs.c job_spec_from_json), the body of
 * POST /v1/jobs after JSON parsing, and its round trip through job_spec_to_json: a spec
 * that is accepted must serialise and parse back to the same thing.
 */
#include "fuzz.h"

#include <jansson.h>

#include "jobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return 0;
    char err[HYPER_ERRMSG_MAX];
    job_spec spec;
    if (job_spec_from_json(j, &spec, err) == HYPER_OK) {
        json_t *back = job_spec_to_json(&spec);
        if (!back)
            abort();
        job_spec again;
        if (job_spec_from_json(back, &again, err) != HYPER_OK) {
            fprintf(stderr, "a spec job_spec_to_json wrote is refused: %s\n", err);
            abort();
        }
        json_t *back2 = job_spec_to_json(&again);
        if (!json_equal(back, back2)) {
            fprintf(stderr, "job_spec_to_json / job_spec_from_json do not round-trip\n");
            abort();
        }
        json_decref(back2);
        json_decref(back);
    }
    json_decref(j);
    return 0;
}
