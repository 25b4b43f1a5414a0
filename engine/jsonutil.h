/*
 * jsonutil.h — small helpers over jansson that the engine's JSON readers share.
 */
#ifndef HYPER_JSONUTIL_H
#define HYPER_JSONUTIL_H

#include <jansson.h>

/* What a value is, for messages: "an object", "an array", "a string", "a number", "true",
 * "false" or "null". */
const char *json_kind(const json_t *j);

/* Writes x in the shortest form that reads back (strtod) to the same double: the first of
 * %.15g, %.16g and %.17g that does, with ".0" added when it would otherwise read as an
 * integer; "null" when x is not finite.  Returns the length (snprintf's). */
int json_real_format(double x, char *buf, size_t n);

/* json_dumps with every real in the shortest form that reads back equal (json_real_format),
 * so that 0.9 is written 0.9 and 1/3000 keeps every digit it needs.  With a fixed
 * JSON_REAL_PRECISION(n) in flags, reals have at most n digits instead, as jansson writes
 * them.  New string (free()), or NULL when out of memory.  Every JSON text hyperd writes,
 * records and replies alike, goes through this one printer. */
char *json_text(const json_t *j, size_t flags);

#endif
