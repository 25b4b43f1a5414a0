/*
 * opts.c — the option parser of the `hyper` commands (opts.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

static int parse_value(const opt_spec *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case OPT_STR: *(const char **)o->dst = v; return 0;
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || *v == 0 || *end || x < INT32_MIN || x > INT32_MAX) break;
        *(int32_t *)o->dst = (int32_t)x;
        return 0;
    }
    case OPT_I64: {
        long long x = strtoll(v, &end, 10);
        if (errno || *v == 0 || *end) break;
        *(int64_t *)o->dst = x;
        return 0;
    }
    case OPT_U64: {
        if (*v == '-') break;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || *v == 0 || *end) break;
        *(uint64_t *)o->dst = x;
        return 0;
    }
    case OPT_DBL: {
        double x = strtod(v, &end);
        if (errno || *v == 0 || *end || !isfinite(x)) break;
        *(double *)o->dst = x;
        return 0;
    }
    case OPT_FLAG: return 0;
    }
    fprintf(stderr, "hyper: %s: '%s' is not a valid %s\n", o->name, v,
            o->kind == OPT_DBL ? "number" : "integer");
    return -1;
}

int parse_opts(int argc, char **argv, const opt_spec *opts, const char **pos, int npos,
               const char *usage)
{
    int got = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", usage);
            for (const opt_spec *o = opts; o->name; o++)
                printf("  %-16s %s\n", o->name, o->help);
            exit(0);
        }
        if (a[0] != '-' || a[1] == 0) {
            if (got >= npos) {
                fprintf(stderr, "hyper: unexpected argument '%s'\nusage: %s\n", a, usage);
                return -1;
            }
            pos[got++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const opt_spec *o = opts;
        for (; o->name; o++)
            if ((strlen(o->name) == nlen && strncmp(a, o->name, nlen) == 0) ||
                (o->alias && strlen(o->alias) == nlen && strncmp(a, o->alias, nlen) == 0))
                break;
        if (!o->name) {
            fprintf(stderr, "hyper: unknown option '%.*s'\nusage: %s\n", (int)nlen, a, usage);
            return -1;
        }
        if (o->kind == OPT_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "hyper: %s needs a value\n", o->name);
            return -1;
        }
        if (parse_value(o, v) != 0)
            return -1;
    }
    for (int k = got; k < npos; k++)
        pos[k] = NULL;
    return got;
}

void fmt_duration(double s, char *buf, size_t n)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}
