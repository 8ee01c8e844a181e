/* util/json.h - JSON helpers shared by every layer: compact serialisation as AWS renders it
 * (shortest round-trip numbers, key order kept), serialised size without building the text,
 * deep equality by value, and parsing with our flags. */
#ifndef SFN_UTIL_JSON_H
#define SFN_UTIL_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

/* Appends the compact text of `v` (borrowed) to `b`: {"a":1,"b":[1,2]}. */
void json_compact_append(struct buf *b, const json_t *v);
/* Appends `s` (n bytes) as a JSON string literal, escaped as json_compact_append does. */
void json_string_append(struct buf *b, const char *s, size_t n);
/* Appends the compact text of `v` (borrowed) as a JSON string literal: the same bytes as
 * json_string_append() of json_compact(v), without the intermediate text. */
void json_compact_string_append(struct buf *b, const json_t *v);
/* Returns the compact text of `v` (borrowed) as a new string (free() it). */
char *json_compact(const json_t *v);
/* Returns the byte size of json_compact(v), or a value > limit as soon as it exceeds limit
 * (so a 200 KB document is not walked twice past the limit). */
size_t json_compact_size(const json_t *v, size_t limit);
/* Returns the byte size of the JSON string literal of s[0..n) as json_compact() writes it
 * (quotes and escapes included). */
size_t json_string_compact_size(const char *s, size_t n);
/* Returns an upper bound of json_compact_size(v) found without walking `v` (borrowed):
 * exact for null, booleans and empty containers, a bound for numbers and strings (6 bytes a
 * byte: every byte could need a \u escape), SIZE_MAX (unknown) for non-empty arrays and
 * objects. */
size_t json_compact_size_max(const json_t *v);
/* a + b, or SIZE_MAX when the sum does not fit (upper bounds of sizes add this way). */
static inline size_t json_size_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}
/* A memo of serialised sizes of large containers, so a 200 KB document carried from state
 * to state is measured once, not at every state. Each entry holds a reference to its value:
 * the pointer stays valid and, values being immutable once shared, so does the size.
 * Entries are found by pointer in sets of JSON_SIZER_WAYS; a full set drops its least
 * recently used entry, so a document measured at every state stays while the outputs of
 * past states, never looked up again, make way. */
#define JSON_SIZER_SLOTS 256
#define JSON_SIZER_WAYS 4
#define JSON_SIZER_MIN 4096 /* memoise containers at least this large (or shared) */
struct json_sizer {
    const json_t *key[JSON_SIZER_SLOTS]; /* referenced values (owned references), or NULL */
    size_t size[JSON_SIZER_SLOTS];       /* their compact sizes */
    uint64_t used[JSON_SIZER_SLOTS];     /* value of `clock` when last stored or found */
    uint64_t clock;                      /* lookups and stores so far */
};
void json_sizer_init(struct json_sizer *z);
void json_sizer_release(struct json_sizer *z);
/* json_compact_size() using and filling the memo. `v` is borrowed. */
size_t json_sizer_size(struct json_sizer *z, const json_t *v, size_t limit);

/* Appends a JSON number the way AWS prints it: integers as written, reals in the shortest
 * form that reads back to the same double (1.1, not 1.1000000000000001). */
void json_real_append(struct buf *b, double d);
/* Appends a JSON integer in decimal (no printf: it is on hot paths). */
void json_integer_append(struct buf *b, json_int_t i);
/* Deep equality by value: numbers compare numerically (1 == 1.0), objects ignore key order. */
bool json_value_equal(const json_t *a, const json_t *b);
/* Numeric value of an integer or real. */
double json_number(const json_t *v);
/* Parses any JSON value (not only objects). Returns a new reference, or NULL with err set
 * (name NULL, cause the parser's message). Duplicate object keys are rejected when
 * `reject_duplicates`. */
json_t *json_parse(const char *text, size_t len, bool reject_duplicates, struct err *err);
/* Returns a shallow copy of object or array `v` (borrowed): a new container whose members
 * are shared. Other values are returned incref'd. New reference. */
json_t *json_shallow_copy(json_t *v);

#endif
