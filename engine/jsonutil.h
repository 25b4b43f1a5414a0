/*
 * jsonutil.h — small helpers over jansson that the engine's JSON readers share.
 */
#ifndef HYPER_JSONUTIL_H
#define HYPER_JSONUTIL_H

#include <jansson.h>

/* What a value is, for messages: "an object", "an array", "a string", "a number", "true",
 * "false" or "null". */
const char *json_kind(const json_t *j);

#endif
