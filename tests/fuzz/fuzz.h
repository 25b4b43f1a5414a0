/*
 * fuzz.h — what the libFuzzer targets of tests/fuzz/ share: a private scratch directory and
 * writing the input to a file there, for the entry points that read files.
 *
 * Each fuzz_*.c defines LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize when it needs a
 * set-up); `make fuzz` builds them against an engine compiled with
 * -fsanitize=fuzzer-no-link,address,undefined.  A target must never leave state behind that
 * changes what the next input does, or a crash would not reproduce from its file alone.
 */
#ifndef HYPERD_FUZZ_H
#define HYPERD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void fuzz_remove_tree(const char *dir);

static char fuzz_scratch[256];

static inline void fuzz_scratch_remove(void) { fuzz_remove_tree(fuzz_scratch); }

/* A fresh directory under $TMPDIR (or /tmp), made once per process and removed at exit;
 * aborts when it cannot be made (a fuzzing harness may: nothing can be tested without it).
 * Borrowed, static. */
static inline const char *fuzz_scratch_dir(void)
{
    char *dir = fuzz_scratch;
    if (dir[0])
        return dir;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof fuzz_scratch, "%s/hyperd-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_scratch_remove);
    return dir;
}

/* Writes data to <scratch>/name (replacing it) and returns the path (static buffer). */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_scratch_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz: writing the input");
        abort();
    }
    return path;
}

/* A small fortunes file in the scratch directory, for the dataset store's built-in
 * "fortunes" dataset (path in a static buffer). */
static inline const char *fuzz_fortunes(void)
{
    static const char text[] = "A fool and his money are soon parted.\n%\nSilence is golden.\n%\n";
    return fuzz_write_file("fortunes", (const uint8_t *)text, sizeof text - 1);
}

/* Removes a directory tree (the scratch directory at exit); errors are ignored. */
static inline void fuzz_remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

#endif
