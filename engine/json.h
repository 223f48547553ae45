/* json.h: what the engine's JSON readers (imdb.c) and the program's (worker/report/curves.c)
 * share with jansson: how a message names what it found. Not a JSON reader of its own. */
#ifndef PSTRAIN_ENGINE_JSON_H
#define PSTRAIN_ENGINE_JSON_H

struct json_t; /* jansson's */

/* What j is, for "expected ..., got %s": "an object", "an integer", "null", ... */
const char *eng_json_kind(const struct json_t *j);

#endif
