/*
 * strokes_load.c — strokes_load of strokes.h: a set of lines named by a spec string, handed
 * to the reader that makes it (Hershey synthesis, IAM-OnDB XML, JSON).  Apart from
 * strokes.c so that the line layout knows none of its sources.
 */
#include "strokes.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define HERSHEY_DIR "/usr/share/hershey-fonts"
/* The corpus of "synthetic:N": the one `make` builds in data/ (every fortunes file), else
 * the package's main file when run from elsewhere. */
#define FORTUNES_CORPUS "data/fortunes.txt"
#define FORTUNES_FALLBACK "/usr/share/games/fortunes/fortunes"

/* ---- sources ------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

hyper_status strokes_load(stroke_set *s, const char *spec, char *err)
{
    if (strncmp(spec, "synthetic:", 10) == 0) {
        /* synthetic:N or synthetic:N:SEED */
        char *end;
        errno = 0;
        long n = strtol(spec + 10, &end, 10);
        unsigned long long seed = 1;
        int ok = isdigit((unsigned char)spec[10]) && !errno && n >= 1 && n <= STROKES_MAX_LINES;
        if (ok && *end == ':') {
            const char *sd = end + 1;
            seed = strtoull(sd, &end, 10);
            ok = isdigit((unsigned char)*sd) && !errno;
        }
        if (!ok || *end)
            return hyper_fail(err, HYPER_ERR_ARG, "%s: synthetic:N[:SEED] needs N in 1..%d and a non-negative seed",
                              spec, STROKES_MAX_LINES);
        struct stat cs;
        const char *corpus = stat(FORTUNES_CORPUS, &cs) == 0 ? FORTUNES_CORPUS : FORTUNES_FALLBACK;
        return strokes_synthesize(s, (int32_t)n, corpus, HERSHEY_DIR, (uint64_t)seed, err);
    }
    struct stat st;
    if (stat(spec, &st) != 0)
        return hyper_fail(err, HYPER_ERR_IO, "%s: %s", spec, strerror(errno));
    if (S_ISDIR(st.st_mode) || ends_with(spec, ".xml"))
        return strokes_load_iam(s, spec, err);
    if (ends_with(spec, ".json"))
        return strokes_load_json(s, spec, err);
    return hyper_fail(err, HYPER_ERR_ARG,
                      "%s: not a directory, .xml or .json file (or synthetic:N) — cannot tell its format", spec);
}
