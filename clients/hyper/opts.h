/*
 * opts.h — the option parser every `hyper` command shares: a command declares its options
 * as one table (name, kind, destination), so each option is checked the same way and a
 * bad value always names the option.
 */
#ifndef HYPER_CLI_OPTS_H
#define HYPER_CLI_OPTS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OPT_STR, OPT_INT, OPT_I64, OPT_U64, OPT_DBL, OPT_FLAG } opt_kind;

/* One option.  dst points at a const char * (OPT_STR), int32_t (OPT_INT), int64_t
 * (OPT_I64), uint64_t (OPT_U64), double (OPT_DBL) or int (OPT_FLAG, set to 1).  A table
 * ends with an entry whose name is NULL. */
typedef struct {
    const char *name;   /* "--units" */
    const char *alias;  /* "-n" or NULL */
    opt_kind kind;
    void *dst;
    const char *help;
} opt_spec;

/* Parses argv (the command's arguments, without the command) against opts: "--name
 * value" and "--name=value" both work; string values are borrowed from argv.  Positional
 * arguments go to pos, up to npos of them, and the rest of pos is set to NULL.  Returns
 * how many positional arguments there were, or -1 after printing what was wrong (an
 * unknown option, a missing or malformed value, too many arguments).  --help and -h print
 * the usage line and the options' help, and exit with status 0. */
int parse_opts(int argc, char **argv, const opt_spec *opts, const char **pos, int npos,
               const char *usage);

/* A duration for progress lines: "3m07s", "1h02m"; "?" when unknown (NaN, negative). */
void fmt_duration(double seconds, char *buf, size_t n);

#endif
