/* asl/intrinsic.c - the eighteen States.* intrinsic functions of JSONPath mode (asl.md 5).
 *
 * A call such as "States.Format('{}-{}', $.a, States.UUID())" is parsed once into a tree:
 * each node points at an entry of one function table (name, argument counts, the type each
 * argument must have, the evaluator) and holds its arguments, which are literals (JSON
 * values made at parse time), compiled Paths (asl/path.c) or nested calls. Evaluation
 * walks the tree against an asl_scope: arguments are evaluated into a small array on the
 * stack, checked against the table's types, and handed to the function's evaluator, so a
 * hot call such as States.MathAdd($.i, 1) allocates only its result.
 *
 * Payload templates (template.c) and Fail ErrorPath/CausePath call in here. Parse errors
 * have no error name (the validator turns them into a definition diagnostic); evaluation
 * errors are States.Runtime with a cause naming the function (asl.md 4.3 [U]). */
#include "asl/asl.h"
#include "asl/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

#define CALL_DEPTH_MAX 10     /* asl.md 5.1: intrinsics nest up to 10 levels (outer = 1) */
#define ARGS_INLINE 8         /* arguments evaluated without a heap array */
#define ARGS_TYPED 4          /* argument types listed per function; the last one repeats */
#define STRING_INPUT_MAX 10000 /* asl.md 5.2: Base64Encode/Decode and Hash input, in chars */
#define ARRAY_RANGE_MAX 1000  /* asl.md 5.2: ArrayRange returns at most 1000 items */
#define NUMBER_TEXT_MAX 64    /* longest numeric literal accepted */

/* Argument types, as a mask: which JSON types an argument position accepts. */
#define T_STR 0x01u
#define T_NUM 0x02u
#define T_BOOL 0x04u
#define T_NULL 0x08u
#define T_ARR 0x10u
#define T_OBJ 0x20u
#define T_ANY 0x3fu

struct asl_intrinsic;

struct fn {
    const char *name;           /* "States.Format" */
    size_t min_args;            /* fewest arguments accepted */
    size_t max_args;            /* most arguments accepted; SIZE_MAX: variadic */
    unsigned types[ARGS_TYPED]; /* T_* mask per position; later positions use the last */
    /* Parse-time checks beyond count and literal types (may be NULL): 0, or -1 with err. */
    int (*check)(const struct asl_intrinsic *f, struct err *err);
    /* Evaluates the call on argument values v[0..f->nargs) (borrowed, type-checked).
     * Returns a new reference, or NULL with err set to States.Runtime. */
    json_t *(*eval)(const struct asl_intrinsic *f, json_t **v, const struct asl_scope *s,
                    struct err *err);
};

enum arg_kind {
    ARG_LITERAL, /* a string, number, boolean or null written in the call */
    ARG_PATH,    /* $..., $$..., $var... */
    ARG_CALL,    /* a nested States.* call */
};

struct arg {
    enum arg_kind kind;
    json_t *value;              /* ARG_LITERAL: the value (owned reference) */
    size_t *holes;              /* ARG_LITERAL string: byte offsets in value of each
                                   unescaped "{}" (owned; NULL when none) */
    size_t nholes;              /* entries in holes */
    struct asl_path *path;      /* ARG_PATH (owned) */
    struct asl_intrinsic *call; /* ARG_CALL (owned) */
};

struct asl_intrinsic {
    const struct fn *fn; /* entry of the function table */
    size_t nargs;        /* entries in args */
    struct arg args[];   /* the arguments in call order */
};

/* ---------------------------------------------------------------------------------------
 * Helpers shared by the evaluators.
 */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

static unsigned type_bit(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return T_OBJ;
    case JSON_ARRAY:
        return T_ARR;
    case JSON_STRING:
        return T_STR;
    case JSON_INTEGER:
    case JSON_REAL:
        return T_NUM;
    case JSON_TRUE:
    case JSON_FALSE:
        return T_BOOL;
    case JSON_NULL:
        return T_NULL;
    }
    return 0;
}

/* Describes a mask of one type ("a string"); masks of several types never fail a check. */
static const char *mask_name(unsigned mask)
{
    switch (mask) {
    case T_STR:
        return "a string";
    case T_NUM:
        return "a number";
    case T_BOOL:
        return "a boolean";
    case T_ARR:
        return "an array";
    case T_OBJ:
        return "an object";
    default:
        return "a value";
    }
}

static unsigned arg_mask(const struct fn *fn, size_t i)
{
    return fn->types[i < ARGS_TYPED ? i : ARGS_TYPED - 1];
}

static json_t *fail(const struct asl_intrinsic *f, struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets err to States.Runtime with "The function 'States.X' <message>". Returns NULL. */
static json_t *fail(const struct asl_intrinsic *f, struct err *err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_set(err, ASL_ERR_RUNTIME, "The function '%s' %s", f->fn->name, msg);
    return NULL;
}

/* Stores the integer value of number `v` in *out when it has no fractional part. */
static bool number_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    double d = json_real_value(v);
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
        return false;
    *out = (int64_t)d;
    return true;
}

/* Rounds number `v` as Java's Math.round does (half-up toward +inf: 2.5 -> 3, -2.5 -> -2).
 * Returns false when the result does not fit in 64 bits. */
static bool number_round(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    double d = json_real_value(v);
    double r = floor(d);
    if (d - r >= 0.5) /* exact: d - floor(d) loses nothing for doubles */
        r += 1.0;
    if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0))
        return false;
    *out = (int64_t)r;
    return true;
}

/* Writes the text of number `v` as AWS prints it (1, 1.1) into b. */
static void number_append(struct buf *b, const json_t *v)
{
    if (json_is_integer(v))
        json_integer_append(b, json_integer_value(v));
    else
        json_real_append(b, json_real_value(v));
}

/* Length of s in Java chars (UTF-16 units): what AWS's character limits count. */
static size_t utf16_length(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xc0) != 0x80)
            units += c >= 0xf0 ? 2 : 1;
    }
    return units;
}

/* Bytes of the UTF-8 character starting with lead byte c (1 for stray bytes). */
static size_t utf8_char_len(unsigned char c)
{
    if (c >= 0xf0)
        return 4;
    if (c >= 0xe0)
        return 3;
    if (c >= 0xc0)
        return 2;
    return 1;
}

/* Appends s to b with every invalid UTF-8 sequence replaced by U+FFFD, as Java's
 * new String(bytes, UTF_8) does. */
static void utf8_sanitize_append(struct buf *b, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len = 0;
        uint32_t cp = 0;
        if (c < 0x80) {
            len = 1;
            cp = c;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07u;
        }
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                ok = false;
            else
                cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (ok && len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
            ok = false;
        if (ok && len == 4 && (cp < 0x10000 || cp > 0x10ffff))
            ok = false;
        if (!ok) {
            buf_add(b, "\xef\xbf\xbd", 3);
            i++;
            continue;
        }
        buf_add(b, s + i, len);
        i += len;
    }
}

/* Returns a new string value holding b's bytes (valid UTF-8) and releases b. */
static json_t *string_from_buf(struct buf *b)
{
    json_t *out = json_stringn_nocheck(b->len > 0 ? b->data : "", b->len);
    buf_release(b);
    return out;
}

/* SplitMix64 (Steele, Lea, Flood 2014): the generator behind seeded States.MathRandom and
 * the fixed-seed fallback when the scope has no rand64. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

struct rng {
    const struct asl_scope *s; /* rand64 source when s->rand64 is set */
    uint64_t state;            /* SplitMix64 state otherwise */
};

/* Without s->rand64 every evaluation draws from a generator freshly seeded with a fixed
 * constant: results are deterministic (tests), and no global state is kept. */
static void rng_init(struct rng *r, const struct asl_scope *s)
{
    r->s = s;
    r->state = 0x73666e64u; /* "sfnd" */
}

static uint64_t rng_next(struct rng *r)
{
    if (r->s != NULL && r->s->rand64 != NULL)
        return r->s->rand64(r->s->rand_arg);
    return splitmix64(&r->state);
}

/* ---------------------------------------------------------------------------------------
 * States.Format, States.StringToJson, States.JsonToString
 */

/* Appends v as States.Format renders it [O]: strings bare, numbers as written, objects
 * like Java's Map.toString ({Arg1=1, Arg2=[]}), arrays like List.toString ([1, a]). */
static void format_value(struct buf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        buf_add(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        number_append(b, v);
        break;
    case JSON_TRUE:
        buf_puts(b, "true");
        break;
    case JSON_FALSE:
        buf_puts(b, "false");
        break;
    case JSON_NULL:
        buf_puts(b, "null");
        break;
    case JSON_ARRAY: {
        buf_putc(b, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                buf_puts(b, ", ");
            format_value(b, json_array_get(v, i));
        }
        buf_putc(b, ']');
        break;
    }
    case JSON_OBJECT: {
        buf_putc(b, '{');
        bool first = true;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            if (!first)
                buf_puts(b, ", ");
            first = false;
            buf_puts(b, key);
            buf_putc(b, '=');
            format_value(b, val);
        }
        buf_putc(b, '}');
        break;
    }
    }
}

/* Counts the "{}" placeholders of a template that was not written as a literal. */
static size_t format_count_holes(const char *t, size_t n)
{
    size_t holes = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (t[i] == '{' && t[i + 1] == '}') {
            holes++;
            i++;
        }
    }
    return holes;
}

static int check_format(const struct asl_intrinsic *f, struct err *err)
{
    const struct arg *t = &f->args[0];
    if (t->kind != ARG_LITERAL)
        return 0;
    if (t->nholes != f->nargs - 1)
        return err_set(err, NULL, "'%s' has %zu placeholder%s but %zu value%s", f->fn->name,
                       t->nholes, t->nholes == 1 ? "" : "s", f->nargs - 1,
                       f->nargs - 1 == 1 ? "" : "s");
    return 0;
}

static json_t *eval_format(const struct asl_intrinsic *f, json_t **v,
                           const struct asl_scope *s, struct err *err)
{
    (void)s;
    const char *t = json_string_value(v[0]);
    size_t tlen = json_string_length(v[0]);
    const struct arg *ta = &f->args[0];
    bool literal = ta->kind == ARG_LITERAL;
    size_t holes = literal ? ta->nholes : format_count_holes(t, tlen);
    if (holes != f->nargs - 1)
        return fail(f, err, "was given %zu value%s for %zu placeholder%s", f->nargs - 1,
                    f->nargs - 1 == 1 ? "" : "s", holes, holes == 1 ? "" : "s");
    struct buf b = BUF_INIT;
    buf_grow(&b, tlen + 16 * holes);
    size_t at = 0;
    size_t k = 0;
    while (k < holes) {
        size_t pos;
        if (literal) {
            pos = ta->holes[k];
        } else {
            pos = at;
            while (!(t[pos] == '{' && t[pos + 1] == '}'))
                pos++;
        }
        buf_add(&b, t + at, pos - at);
        format_value(&b, v[k + 1]);
        at = pos + 2;
        k++;
    }
    buf_add(&b, t + at, tlen - at);
    return string_from_buf(&b);
}

static json_t *eval_string_to_json(const struct asl_intrinsic *f, json_t **v,
                                   const struct asl_scope *s, struct err *err)
{
    (void)s;
    const char *t = json_string_value(v[0]);
    size_t n = json_string_length(v[0]);
    size_t i = 0;
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    if (i == n) /* asl.md 5.2: "" and " " give null [O] */
        return json_null();
    struct err perr = ERR_INIT;
    json_t *out = json_parse(t, n, false, &perr);
    if (out == NULL) {
        fail(f, err, "was given a string that is not valid JSON (%s)",
             perr.cause != NULL ? perr.cause : "parse error");
        err_clear(&perr);
    }
    return out;
}

static json_t *eval_json_to_string(const struct asl_intrinsic *f, json_t **v,
                                   const struct asl_scope *s, struct err *err)
{
    (void)f;
    (void)s;
    (void)err;
    struct buf b = BUF_INIT;
    json_compact_append(&b, v[0]);
    return string_from_buf(&b);
}

/* ---------------------------------------------------------------------------------------
 * Arrays
 */

static json_t *eval_array(const struct asl_intrinsic *f, json_t **v, const struct asl_scope *s,
                          struct err *err)
{
    (void)s;
    (void)err;
    json_t *out = json_array();
    for (size_t i = 0; i < f->nargs; i++)
        json_array_append(out, v[i]);
    return out;
}

static json_t *eval_array_partition(const struct asl_intrinsic *f, json_t **v,
                                    const struct asl_scope *s, struct err *err)
{
    (void)s;
    int64_t size;
    if (!number_int(v[1], &size) || size <= 0) {
        struct buf b = BUF_INIT;
        number_append(&b, v[1]);
        fail(f, err, "was given a chunk size that is not a positive integer: %s", buf_cstr(&b));
        buf_release(&b);
        return NULL;
    }
    size_t n = json_array_size(v[0]);
    json_t *out = json_array();
    for (size_t i = 0; i < n;) {
        json_t *chunk = json_array();
        for (size_t k = 0; k < (uint64_t)size && i < n; k++, i++)
            json_array_append(chunk, json_array_get(v[0], i));
        json_array_append_new(out, chunk);
    }
    return out;
}

static json_t *eval_array_contains(const struct asl_intrinsic *f, json_t **v,
                                   const struct asl_scope *s, struct err *err)
{
    (void)f;
    (void)s;
    (void)err;
    size_t n = json_array_size(v[0]);
    for (size_t i = 0; i < n; i++) {
        if (json_value_equal(json_array_get(v[0], i), v[1]))
            return json_true();
    }
    return json_false();
}

static json_t *eval_array_range(const struct asl_intrinsic *f, json_t **v,
                                const struct asl_scope *s, struct err *err)
{
    (void)s;
    static const char *const what[3] = {"start", "end", "step"};
    int64_t x[3];
    for (int i = 0; i < 3; i++) {
        if (!number_int(v[i], &x[i])) {
            struct buf b = BUF_INIT;
            number_append(&b, v[i]);
            fail(f, err, "was given a %s that is not an integer: %s", what[i], buf_cstr(&b));
            buf_release(&b);
            return NULL;
        }
    }
    int64_t first = x[0];
    int64_t last = x[1];
    int64_t step = x[2];
    if (step == 0)
        return fail(f, err, "was given a step of 0");
    uint64_t count = 0;
    if (step > 0 && last >= first)
        count = ((uint64_t)last - (uint64_t)first) / (uint64_t)step + 1;
    else if (step < 0 && last <= first)
        count = ((uint64_t)first - (uint64_t)last) / (0 - (uint64_t)step) + 1;
    if (count > ARRAY_RANGE_MAX)
        return fail(f, err, "would return more than %d items", ARRAY_RANGE_MAX);
    json_t *out = json_array();
    uint64_t cur = (uint64_t)first;
    for (uint64_t i = 0; i < count; i++) {
        json_array_append_new(out, json_integer((json_int_t)cur));
        cur += (uint64_t)step; /* wraps only past the last item */
    }
    return out;
}

static json_t *eval_array_get_item(const struct asl_intrinsic *f, json_t **v,
                                   const struct asl_scope *s, struct err *err)
{
    (void)s;
    int64_t idx;
    struct buf b = BUF_INIT;
    if (!number_int(v[1], &idx)) {
        number_append(&b, v[1]);
        fail(f, err, "was given an index that is not an integer: %s", buf_cstr(&b));
        buf_release(&b);
        return NULL;
    }
    if (idx < 0 || (uint64_t)idx >= json_array_size(v[0]))
        return fail(f, err, "was given an index out of range: %" PRId64, idx);
    return json_incref(json_array_get(v[0], (size_t)idx));
}

static json_t *eval_array_length(const struct asl_intrinsic *f, json_t **v,
                                 const struct asl_scope *s, struct err *err)
{
    (void)f;
    (void)s;
    (void)err;
    return json_integer((json_int_t)json_array_size(v[0]));
}

static uint64_t hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 33);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

/* A hash consistent with json_value_equal: numbers hash by value (1 and 1.0 alike),
 * objects ignore key order. */
static uint64_t value_hash(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        uint64_t h = 0x6f626a;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            h += hash_mix(hash_bytes(key, strlen(key)) ^ (value_hash(val) * 31));
        }
        return hash_mix(h);
    }
    case JSON_ARRAY: {
        uint64_t h = 0x617272;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++)
            h = hash_mix(h * 31 + value_hash(json_array_get(v, i)));
        return h;
    }
    case JSON_STRING:
        return hash_bytes(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = json_number(v);
        if (d == 0)
            d = 0; /* -0.0 == 0.0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        return hash_mix(bits);
    }
    case JSON_TRUE:
        return 1;
    case JSON_FALSE:
        return 2;
    case JSON_NULL:
        return 3;
    }
    return 0;
}

static json_t *eval_array_unique(const struct asl_intrinsic *f, json_t **v,
                                 const struct asl_scope *s, struct err *err)
{
    (void)f;
    (void)s;
    (void)err;
    size_t n = json_array_size(v[0]);
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    /* open addressing: slot -> index into v[0] of a kept item, SIZE_MAX when empty */
    size_t *slot = xmalloc(cap * sizeof(*slot));
    uint64_t *hash = xmalloc((n > 0 ? n : 1) * sizeof(*hash));
    for (size_t i = 0; i < cap; i++)
        slot[i] = SIZE_MAX;
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(v[0], i);
        uint64_t h = value_hash(item);
        hash[i] = h;
        size_t at = (size_t)h & (cap - 1);
        bool dup = false;
        while (slot[at] != SIZE_MAX) {
            size_t j = slot[at];
            if (hash[j] == h && json_value_equal(json_array_get(v[0], j), item)) {
                dup = true;
                break;
            }
            at = (at + 1) & (cap - 1);
        }
        if (dup)
            continue;
        slot[at] = i;
        json_array_append(out, item);
    }
    free(slot);
    free(hash);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * Base64 and hashing
 */

static json_t *eval_base64_encode(const struct asl_intrinsic *f, json_t **v,
                                  const struct asl_scope *s, struct err *err)
{
    (void)s;
    const char *t = json_string_value(v[0]);
    size_t n = json_string_length(v[0]);
    if (utf16_length(t, n) > STRING_INPUT_MAX)
        return fail(f, err, "was given a string longer than %d characters", STRING_INPUT_MAX);
    size_t outlen = 4 * ((n + 2) / 3);
    unsigned char *o = xmalloc(outlen + 1);
    int w = EVP_EncodeBlock(o, (const unsigned char *)t, (int)n);
    json_t *out = json_stringn_nocheck((const char *)o, (size_t)(w > 0 ? w : 0));
    free(o);
    return out;
}

/* Value of base64 digit c, or -1. */
static int b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 text (line breaks and spaces ignored, padding optional, as Java's MIME
 * decoder reads it) into b. Returns false on a character outside the alphabet, data after
 * the padding, or a dangling final digit. */
static bool b64_decode(struct buf *b, const char *t, size_t n)
{
    uint32_t acc = 0;
    int have = 0;
    int pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int d = b64_digit(c);
        if (d < 0 || pad > 0)
            return false;
        acc = (acc << 6) | (uint32_t)d;
        if (++have == 4) {
            char out[3] = {(char)(acc >> 16), (char)(acc >> 8), (char)acc};
            buf_add(b, out, 3);
            acc = 0;
            have = 0;
        }
    }
    if (have == 1 || (pad > 0 && have == 0) || pad > 2)
        return false;
    if (have == 2) {
        char out = (char)(acc >> 4);
        buf_add(b, &out, 1);
    } else if (have == 3) {
        char out[2] = {(char)(acc >> 10), (char)(acc >> 2)};
        buf_add(b, out, 2);
    }
    return true;
}

static json_t *eval_base64_decode(const struct asl_intrinsic *f, json_t **v,
                                  const struct asl_scope *s, struct err *err)
{
    (void)s;
    const char *t = json_string_value(v[0]);
    size_t n = json_string_length(v[0]);
    if (utf16_length(t, n) > STRING_INPUT_MAX)
        return fail(f, err, "was given a string longer than %d characters", STRING_INPUT_MAX);
    struct buf raw = BUF_INIT;
    if (!b64_decode(&raw, t, n)) {
        buf_release(&raw);
        return fail(f, err, "was given a string that is not valid base64");
    }
    struct buf b = BUF_INIT;
    utf8_sanitize_append(&b, (const unsigned char *)raw.data, raw.len);
    buf_release(&raw);
    return string_from_buf(&b);
}

/* asl.md 5.2: the algorithm names States.Hash accepts, spelled exactly. */
static const EVP_MD *hash_md(const char *name)
{
    if (strcmp(name, "MD5") == 0)
        return EVP_md5();
    if (strcmp(name, "SHA-1") == 0)
        return EVP_sha1();
    if (strcmp(name, "SHA-256") == 0)
        return EVP_sha256();
    if (strcmp(name, "SHA-384") == 0)
        return EVP_sha384();
    if (strcmp(name, "SHA-512") == 0)
        return EVP_sha512();
    return NULL;
}

static bool hash_name_ok(const json_t *v)
{
    return strlen(json_string_value(v)) == json_string_length(v) &&
           hash_md(json_string_value(v)) != NULL;
}

static int check_hash(const struct asl_intrinsic *f, struct err *err)
{
    const struct arg *a = &f->args[1];
    if (a->kind == ARG_LITERAL && !hash_name_ok(a->value))
        return err_set(err, NULL,
                       "'%s' does not support the algorithm '%s' (use MD5, SHA-1, SHA-256, "
                       "SHA-384 or SHA-512)",
                       f->fn->name, json_string_value(a->value));
    return 0;
}

static json_t *eval_hash(const struct asl_intrinsic *f, json_t **v, const struct asl_scope *s,
                         struct err *err)
{
    (void)s;
    const char *t = json_string_value(v[0]);
    size_t n = json_string_length(v[0]);
    if (!hash_name_ok(v[1]))
        return fail(f, err, "was given an unsupported algorithm: %s", json_string_value(v[1]));
    if (utf16_length(t, n) > STRING_INPUT_MAX)
        return fail(f, err, "was given a string longer than %d characters", STRING_INPUT_MAX);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(t, n, md, &mdlen, hash_md(json_string_value(v[1])), NULL) != 1)
        return fail(f, err, "could not compute %s", json_string_value(v[1]));
    static const char hex[] = "0123456789abcdef";
    char out[2 * EVP_MAX_MD_SIZE];
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    return json_stringn_nocheck(out, 2 * (size_t)mdlen);
}

/* ---------------------------------------------------------------------------------------
 * JsonMerge, math, strings, UUID
 */

static int check_json_merge(const struct asl_intrinsic *f, struct err *err)
{
    const struct arg *a = &f->args[2];
    if (a->kind == ARG_LITERAL && !json_is_false(a->value))
        return err_set(err, NULL, "the third argument of '%s' must be false (deep merge is "
                                  "not supported)", f->fn->name);
    return 0;
}

static json_t *eval_json_merge(const struct asl_intrinsic *f, json_t **v,
                               const struct asl_scope *s, struct err *err)
{
    (void)s;
    if (!json_is_false(v[2])) /* asl.md 5.2: deep merge is not supported */
        return fail(f, err, "supports only a shallow merge: its third argument must be false");
    json_t *out = json_shallow_copy(v[0]);
    json_object_update(out, v[1]);
    return out;
}

/* asl.md 5.2: an integer in [start, end], bounds rounded as MathAdd rounds them. With a
 * seed the draw is the first SplitMix64 output for state = seed (two's complement), reduced
 * modulo (end - start + 1) and added to start, so a seed always gives the same number.
 * Without one the draw comes from s->rand64 (or the fixed-seed fallback of rng_init). */
static json_t *eval_math_random(const struct asl_intrinsic *f, json_t **v,
                                const struct asl_scope *s, struct err *err)
{
    int64_t start;
    int64_t end;
    if (!number_round(v[0], &start) || !number_round(v[1], &end))
        return fail(f, err, "was given a bound outside the 64-bit integer range");
    if (start > end)
        return fail(f, err, "was given a start (%" PRId64 ") greater than its end (%" PRId64 ")",
                    start, end);
    uint64_t r;
    if (f->nargs == 3) {
        int64_t seed;
        if (!number_round(v[2], &seed))
            return fail(f, err, "was given a seed outside the 64-bit integer range");
        uint64_t state = (uint64_t)seed;
        r = splitmix64(&state);
    } else {
        struct rng g;
        rng_init(&g, s);
        r = rng_next(&g);
    }
    uint64_t span = (uint64_t)end - (uint64_t)start + 1; /* 0: the whole 64-bit range */
    uint64_t off = span == 0 ? r : r % span;
    return json_integer((json_int_t)((uint64_t)start + off));
}

static json_t *eval_math_add(const struct asl_intrinsic *f, json_t **v,
                             const struct asl_scope *s, struct err *err)
{
    (void)s;
    int64_t a;
    int64_t b;
    if (json_is_integer(v[0]) && json_is_integer(v[1])) { /* the hot path */
        a = json_integer_value(v[0]);
        b = json_integer_value(v[1]);
    } else if (!number_round(v[0], &a) || !number_round(v[1], &b)) {
        return fail(f, err, "was given a number outside the 64-bit integer range");
    }
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
        return fail(f, err, "overflowed adding %" PRId64 " and %" PRId64, a, b);
    return json_integer((json_int_t)(a + b));
}

/* True when the UTF-8 character c (len bytes) is one of the characters of set. */
static bool char_in(const char *c, size_t len, const char *set, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = utf8_char_len((unsigned char)set[i]);
        if (i + l > n)
            l = n - i;
        if (l == len && memcmp(set + i, c, len) == 0)
            return true;
        i += l;
    }
    return false;
}

static json_t *eval_string_split(const struct asl_intrinsic *f, json_t **v,
                                 const struct asl_scope *s, struct err *err)
{
    (void)f;
    (void)s;
    (void)err;
    const char *t = json_string_value(v[0]);
    size_t n = json_string_length(v[0]);
    const char *sep = json_string_value(v[1]);
    size_t sn = json_string_length(v[1]);
    json_t *out = json_array();
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_char_len((unsigned char)t[i]);
        if (i + l > n)
            l = n - i;
        if (char_in(t + i, l, sep, sn)) {
            if (i > start) /* asl.md 5.2: empty tokens are dropped [O] */
                json_array_append_new(out, json_stringn_nocheck(t + start, i - start));
            start = i + l;
        }
        i += l;
    }
    if (n > start)
        json_array_append_new(out, json_stringn_nocheck(t + start, n - start));
    return out;
}

/* asl.md 5.2: a version 4 UUID from two 64-bit draws of s->rand64 (RFC 4122 bits set). */
static json_t *eval_uuid(const struct asl_intrinsic *f, json_t **v, const struct asl_scope *s,
                         struct err *err)
{
    (void)f;
    (void)v;
    (void)err;
    struct rng g;
    rng_init(&g, s);
    uint64_t hi = rng_next(&g);
    uint64_t lo = rng_next(&g);
    unsigned char u[16];
    for (int i = 0; i < 8; i++) {
        u[i] = (unsigned char)(hi >> (56 - 8 * i));
        u[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* RFC 4122: version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122: variant 10 */
    static const char hex[] = "0123456789abcdef";
    char out[36];
    size_t k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[k++] = '-';
        out[k++] = hex[u[i] >> 4];
        out[k++] = hex[u[i] & 15];
    }
    return json_stringn_nocheck(out, sizeof(out));
}

/* ---------------------------------------------------------------------------------------
 * The function table (asl.md 5.2).
 */

static const struct fn functions[] = {
    {"States.Format", 1, SIZE_MAX, {T_STR, T_ANY, T_ANY, T_ANY}, check_format, eval_format},
    {"States.StringToJson", 1, 1, {T_STR}, NULL, eval_string_to_json},
    {"States.JsonToString", 1, 1, {T_ANY}, NULL, eval_json_to_string},
    {"States.Array", 0, SIZE_MAX, {T_ANY, T_ANY, T_ANY, T_ANY}, NULL, eval_array},
    {"States.ArrayPartition", 2, 2, {T_ARR, T_NUM}, NULL, eval_array_partition},
    {"States.ArrayContains", 2, 2, {T_ARR, T_ANY}, NULL, eval_array_contains},
    {"States.ArrayRange", 3, 3, {T_NUM, T_NUM, T_NUM}, NULL, eval_array_range},
    {"States.ArrayGetItem", 2, 2, {T_ARR, T_NUM}, NULL, eval_array_get_item},
    {"States.ArrayLength", 1, 1, {T_ARR}, NULL, eval_array_length},
    {"States.ArrayUnique", 1, 1, {T_ARR}, NULL, eval_array_unique},
    {"States.Base64Encode", 1, 1, {T_STR}, NULL, eval_base64_encode},
    {"States.Base64Decode", 1, 1, {T_STR}, NULL, eval_base64_decode},
    {"States.Hash", 2, 2, {T_STR, T_STR}, check_hash, eval_hash},
    {"States.JsonMerge", 3, 3, {T_OBJ, T_OBJ, T_BOOL}, check_json_merge, eval_json_merge},
    {"States.MathRandom", 2, 3, {T_NUM, T_NUM, T_NUM}, NULL, eval_math_random},
    {"States.MathAdd", 2, 2, {T_NUM, T_NUM}, NULL, eval_math_add},
    {"States.StringSplit", 2, 2, {T_STR, T_STR}, NULL, eval_string_split},
    {"States.UUID", 0, 0, {T_ANY}, NULL, eval_uuid},
};

static const struct fn *fn_find(const char *name, size_t n)
{
    for (size_t i = 0; i < ARRAY_LEN(functions); i++) {
        if (strlen(functions[i].name) == n && memcmp(functions[i].name, name, n) == 0)
            return &functions[i];
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Parsing
 */

struct parser {
    const char *text; /* the whole call, for messages */
    const char *p;    /* cursor */
    struct err *err;  /* where the first error goes */
};

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_space(struct parser *ps)
{
    while (is_space(*ps->p))
        ps->p++;
}

/* Column (1-based) of the cursor, for messages. */
static size_t parser_col(const struct parser *ps)
{
    return (size_t)(ps->p - ps->text) + 1;
}

static void arg_release(struct arg *a)
{
    json_decref(a->value);
    free(a->holes);
    asl_path_free(a->path);
    asl_intrinsic_free(a->call);
}

/* String literal at the cursor (on the opening quote). asl.md 5.1: \' \{ \} \\ are the only
 * escapes; unescaped braces are kept as text, and each unescaped "{}" is recorded as a
 * States.Format placeholder. */
static int parse_string(struct parser *ps, struct arg *a)
{
    struct buf b = BUF_INIT;
    size_t *holes = NULL;
    size_t nholes = 0;
    bool open_brace = false; /* the last char added was an unescaped '{' */
    ps->p++;
    for (;;) {
        char c = *ps->p;
        if (c == '\0') {
            buf_release(&b);
            free(holes);
            return err_set(ps->err, NULL, "unterminated string literal in '%s'", ps->text);
        }
        if (c == '\'') {
            ps->p++;
            break;
        }
        if (c == '\\') {
            char e = ps->p[1];
            if (e != '\'' && e != '{' && e != '}' && e != '\\') {
                buf_release(&b);
                free(holes);
                return err_set(ps->err, NULL,
                               "invalid escape in string literal at column %zu of '%s' "
                               "(only \\', \\{, \\} and \\\\ are allowed)",
                               parser_col(ps), ps->text);
            }
            buf_putc(&b, e);
            ps->p += 2;
            open_brace = false;
            continue;
        }
        if (c == '}' && open_brace) {
            holes = xrealloc(holes, (nholes + 1) * sizeof(*holes));
            holes[nholes++] = b.len - 1;
        }
        open_brace = c == '{';
        buf_putc(&b, c);
        ps->p++;
    }
    json_t *v = json_stringn(b.len > 0 ? b.data : "", b.len);
    buf_release(&b);
    if (v == NULL) {
        free(holes);
        return err_set(ps->err, NULL, "string literal is not valid UTF-8 in '%s'", ps->text);
    }
    a->kind = ARG_LITERAL;
    a->value = v;
    a->holes = holes;
    a->nholes = nholes;
    return 0;
}

/* Number literal at the cursor: -?digits(.digits)?([eE][+-]?digits)?. Integers stay
 * integers; others (and integers too large for 64 bits) are reals. */
static int parse_number(struct parser *ps, struct arg *a)
{
    const char *s = ps->p;
    const char *q = s;
    bool real = false;
    if (*q == '-')
        q++;
    const char *digits = q;
    while (*q >= '0' && *q <= '9')
        q++;
    bool ok = q > digits;
    if (ok && *q == '.') {
        real = true;
        q++;
        const char *frac = q;
        while (*q >= '0' && *q <= '9')
            q++;
        ok = q > frac;
    }
    if (ok && (*q == 'e' || *q == 'E')) {
        real = true;
        q++;
        if (*q == '+' || *q == '-')
            q++;
        const char *exp = q;
        while (*q >= '0' && *q <= '9')
            q++;
        ok = q > exp;
    }
    size_t n = (size_t)(q - s);
    if (!ok || n >= NUMBER_TEXT_MAX || is_name_char(*q))
        return err_set(ps->err, NULL, "invalid number at column %zu of '%s'", parser_col(ps),
                       ps->text);
    char tmp[NUMBER_TEXT_MAX];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    json_t *v = NULL;
    if (!real) {
        errno = 0;
        long long ll = strtoll(tmp, NULL, 10);
        if (errno == 0)
            v = json_integer((json_int_t)ll);
    }
    if (v == NULL) {
        double d = strtod(tmp, NULL);
        if (!isfinite(d))
            return err_set(ps->err, NULL, "number out of range at column %zu of '%s'",
                           parser_col(ps), ps->text);
        v = json_real(d);
    }
    ps->p = q;
    a->kind = ARG_LITERAL;
    a->value = v;
    return 0;
}

/* Path at the cursor (on '$'), read by the one path lexer (asl/path.c), which stops
 * before the ',' or ')' that ends the argument. */
static int parse_path(struct parser *ps, struct arg *a)
{
    size_t len = 0;
    struct asl_path *p = asl__path_compile_prefix(ps->p, &len, 0, ps->err);
    if (p == NULL)
        return -1;
    ps->p += len;
    a->kind = ARG_PATH;
    a->path = p;
    return 0;
}

static struct asl_intrinsic *parse_call(struct parser *ps, int depth);

static int parse_arg(struct parser *ps, struct arg *a, int depth)
{
    char c = *ps->p;
    if (c == '\'')
        return parse_string(ps, a);
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(ps, a);
    if (c == '$')
        return parse_path(ps, a);
    const char *s = ps->p;
    const char *q = s;
    while (is_name_char(*q))
        q++;
    size_t n = (size_t)(q - s);
    static const struct {
        const char *word;
        json_type type;
    } words[] = {{"null", JSON_NULL}, {"true", JSON_TRUE}, {"false", JSON_FALSE}};
    for (size_t i = 0; i < ARRAY_LEN(words); i++) {
        if (strlen(words[i].word) == n && memcmp(words[i].word, s, n) == 0) {
            a->kind = ARG_LITERAL;
            a->value = words[i].type == JSON_NULL   ? json_null()
                       : words[i].type == JSON_TRUE ? json_true()
                                                    : json_false();
            ps->p = q;
            return 0;
        }
    }
    if (n > 7 && memcmp(s, "States.", 7) == 0 && *q == '(') {
        if (depth + 1 > CALL_DEPTH_MAX)
            return err_set(ps->err, NULL, "intrinsic functions nested more than %d levels in '%s'",
                           CALL_DEPTH_MAX, ps->text);
        struct asl_intrinsic *call = parse_call(ps, depth + 1);
        if (call == NULL)
            return -1;
        a->kind = ARG_CALL;
        a->call = call;
        return 0;
    }
    if (c == '\0')
        return err_set(ps->err, NULL, "unexpected end of '%s'", ps->text);
    return err_set(ps->err, NULL, "unexpected '%.*s' at column %zu of '%s'",
                   n > 0 ? (int)n : 1, s, parser_col(ps), ps->text);
}

/* Checks each literal argument of f against the table's types. */
static int check_literals(const struct asl_intrinsic *f, struct err *err)
{
    for (size_t i = 0; i < f->nargs; i++) {
        const struct arg *a = &f->args[i];
        unsigned mask = arg_mask(f->fn, i);
        if (a->kind == ARG_LITERAL && (type_bit(a->value) & mask) == 0)
            return err_set(err, NULL, "argument %zu of '%s' must be %s, not %s literal", i + 1,
                           f->fn->name, mask_name(mask), type_name(a->value));
    }
    return 0;
}

/* Call at the cursor ("States.Name(...)"), nested `depth` levels (the outermost is 1). */
static struct asl_intrinsic *parse_call(struct parser *ps, int depth)
{
    const char *name = ps->p;
    while (is_name_char(*ps->p))
        ps->p++;
    size_t namelen = (size_t)(ps->p - name);
    const struct fn *fn = fn_find(name, namelen);
    if (fn == NULL) {
        err_set(ps->err, NULL, "unknown intrinsic function '%.*s'", (int)namelen, name);
        return NULL;
    }
    if (*ps->p != '(') {
        err_set(ps->err, NULL, "expected '(' after '%s' in '%s'", fn->name, ps->text);
        return NULL;
    }
    ps->p++;
    struct arg *args = NULL;
    size_t n = 0;
    skip_space(ps);
    if (*ps->p == ')') {
        ps->p++;
    } else {
        for (;;) {
            args = xrealloc(args, (n + 1) * sizeof(*args));
            memset(&args[n], 0, sizeof(args[n]));
            n++;
            skip_space(ps);
            if (parse_arg(ps, &args[n - 1], depth) < 0)
                goto fail;
            skip_space(ps);
            if (*ps->p == ')') {
                ps->p++;
                break;
            }
            if (*ps->p != ',') {
                if (*ps->p == '\0')
                    err_set(ps->err, NULL, "missing ')' in '%s'", ps->text);
                else
                    err_set(ps->err, NULL, "expected ',' or ')' at column %zu of '%s'",
                            parser_col(ps), ps->text);
                goto fail;
            }
            ps->p++;
        }
    }
    if (n < fn->min_args || n > fn->max_args) {
        if (fn->min_args == fn->max_args)
            err_set(ps->err, NULL, "'%s' takes %zu argument%s, not %zu", fn->name, fn->min_args,
                    fn->min_args == 1 ? "" : "s", n);
        else if (fn->max_args == SIZE_MAX)
            err_set(ps->err, NULL, "'%s' takes at least %zu argument%s, not %zu", fn->name,
                    fn->min_args, fn->min_args == 1 ? "" : "s", n);
        else
            err_set(ps->err, NULL, "'%s' takes %zu to %zu arguments, not %zu", fn->name,
                    fn->min_args, fn->max_args, n);
        goto fail;
    }
    struct asl_intrinsic *f = xmalloc(sizeof(*f) + n * sizeof(struct arg));
    f->fn = fn;
    f->nargs = n;
    if (n > 0)
        memcpy(f->args, args, n * sizeof(struct arg));
    free(args);
    if (check_literals(f, ps->err) < 0 || (fn->check != NULL && fn->check(f, ps->err) < 0)) {
        asl_intrinsic_free(f);
        return NULL;
    }
    return f;
fail:
    for (size_t i = 0; i < n; i++)
        arg_release(&args[i]);
    free(args);
    return NULL;
}

/* True for "States." + name characters + "(" (asl.h); the parser decides the rest. */
bool asl_intrinsic_is_call(const char *text)
{
    if (strncmp(text, "States.", 7) != 0)
        return false;
    const char *p = text + 7;
    while (is_name_char(*p))
        p++;
    return *p == '(';
}

/* Returns the call tree (free with asl_intrinsic_free), or NULL with err set: name NULL and a
 * lowercase cause for unknown names, argument counts, malformed or mistyped literals, bad
 * Paths and nesting deeper than CALL_DEPTH_MAX. `text` is not kept. */
struct asl_intrinsic *asl_intrinsic_parse(const char *text, struct err *err)
{
    struct parser ps = {text, text, err};
    if (!asl_intrinsic_is_call(text)) {
        err_set(err, NULL, "'%s' is not an intrinsic function call", text);
        return NULL;
    }
    struct asl_intrinsic *f = parse_call(&ps, 1);
    if (f == NULL)
        return NULL;
    skip_space(&ps);
    if (*ps.p != '\0') {
        err_set(err, NULL, "unexpected text after the call at column %zu of '%s'",
                parser_col(&ps), text);
        asl_intrinsic_free(f);
        return NULL;
    }
    return f;
}

/* Frees the tree, its literals, Paths and nested calls. NULL is allowed. */
void asl_intrinsic_free(struct asl_intrinsic *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nargs; i++)
        arg_release(&f->args[i]);
    free(f);
}

/* ---------------------------------------------------------------------------------------
 * Evaluation
 */

/* Returns the value of argument a: borrowed for a literal (no refcount traffic on the hot
 * path), a new reference otherwise; NULL with err set on failure. */
static json_t *arg_eval(const struct arg *a, const struct asl_scope *s, struct err *err)
{
    switch (a->kind) {
    case ARG_LITERAL:
        return a->value;
    case ARG_PATH:
        return asl_path_eval(a->path, s, err);
    case ARG_CALL:
        return asl_intrinsic_eval(a->call, s, err);
    }
    return NULL;
}

/* Returns a new reference, or NULL with err set: a Path's own error, or States.Runtime with
 * "The function 'States.X' ..." for a mistyped value or a function's failure. The tree is
 * not modified, so one tree may be evaluated by many executions. */
json_t *asl_intrinsic_eval(const struct asl_intrinsic *f, const struct asl_scope *s,
                           struct err *err)
{
    json_t *inline_v[ARGS_INLINE];
    json_t **v = f->nargs <= ARGS_INLINE ? inline_v : xmalloc(f->nargs * sizeof(*v));
    json_t *out = NULL;
    size_t got = 0;
    for (; got < f->nargs; got++) {
        json_t *x = arg_eval(&f->args[got], s, err);
        if (x == NULL)
            goto done;
        v[got] = x;
        unsigned mask = arg_mask(f->fn, got);
        if ((type_bit(x) & mask) == 0) {
            got++;
            fail(f, err, "expects argument %zu to be %s, but was given %s", got,
                 mask_name(mask), type_name(x));
            goto done;
        }
    }
    out = f->fn->eval(f, v, s, err);
done:
    for (size_t i = 0; i < got; i++) {
        if (f->args[i].kind != ARG_LITERAL)
            json_decref(v[i]);
    }
    if (v != inline_v)
        free(v);
    return out;
}
