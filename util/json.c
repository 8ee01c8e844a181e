/* util/json.c - compact JSON text as AWS renders it, sizes, equality, parsing. */
#include "util/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static const char hexdigits[] = "0123456789abcdef";

/* Bytes needed to escape byte c inside a JSON string. */
static size_t escaped_len(unsigned char c)
{
    switch (c) {
    case '"':
    case '\\':
    case '\b':
    case '\f':
    case '\n':
    case '\r':
    case '\t':
        return 2;
    default:
        return c < 0x20 ? 6 : 1;
    }
}

void json_string_append(struct buf *b, const char *s, size_t n)
{
    buf_grow(b, n + 2);
    buf_putc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_add(b, s + start, i - start);
        start = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hexdigits[c >> 4];
            esc[5] = hexdigits[c & 15];
            break;
        }
        buf_add(b, esc, strlen(esc));
    }
    buf_add(b, s + start, n - start);
    buf_putc(b, '"');
}

/* Formats d as AWS prints it into tmp (>= 32 bytes); returns the length. */
static size_t real_format(double d, char *tmp, size_t size)
{
    if (!isfinite(d)) {
        snprintf(tmp, size, "null");
        return 4;
    }
    if (d == 0) {
        snprintf(tmp, size, "0.0");
        return 3;
    }
    /* fast path for whole milliseconds (every timestamp: ms / 1000.0) from 0.001 to 1e11:
     * at most 14 significant digits, so %.15g prints exactly the decimal ms / 1000 (d is the
     * double nearest to it) and no exponent; the same text without printf */
    if (d >= 0.001 && d < 1e11 && size >= 24) {
        double scaled = d * 1000.0;
        long long ms = (long long)(scaled + 0.5);
        if ((double)ms / 1000.0 == d) {
            long long whole = ms / 1000;
            int frac = (int)(ms % 1000);
            char digits[24];
            size_t nd = 0;
            do {
                digits[nd++] = (char)('0' + whole % 10);
                whole /= 10;
            } while (whole > 0);
            size_t n = 0;
            while (nd > 0)
                tmp[n++] = digits[--nd];
            tmp[n++] = '.';
            tmp[n++] = (char)('0' + frac / 100);
            if (frac % 100 != 0) {
                tmp[n++] = (char)('0' + frac / 10 % 10);
                if (frac % 10 != 0)
                    tmp[n++] = (char)('0' + frac % 10);
            }
            tmp[n] = '\0';
            return n;
        }
    }
    /* %g drops trailing zeros, so 15 digits is already the shortest form of most
     * decimals; 16 or 17 only for values that need them */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, size, "%.*g", prec, d);
        if (prec == 17 || strtod(tmp, NULL) == d)
            break;
    }
    size_t n = strlen(tmp);
    /* keep a real looking like a real: 100.0, not 100 */
    if (strpbrk(tmp, ".eEn") == NULL && n + 3 <= size) {
        tmp[n++] = '.';
        tmp[n++] = '0';
        tmp[n] = '\0';
    }
    return n;
}

void json_integer_append(struct buf *b, json_int_t i)
{
    char tmp[24];
    size_t n = sizeof(tmp);
    uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    do {
        tmp[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (i < 0)
        tmp[--n] = '-';
    buf_add(b, tmp + n, sizeof(tmp) - n);
}

void json_real_append(struct buf *b, double d)
{
    char tmp[40];
    size_t n = real_format(d, tmp, sizeof(tmp));
    buf_add(b, tmp, n);
}

void json_compact_append(struct buf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        buf_putc(b, '{');
        int first = 1;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            if (!first)
                buf_putc(b, ',');
            first = 0;
            json_string_append(b, key, strlen(key));
            buf_putc(b, ':');
            json_compact_append(b, val);
        }
        buf_putc(b, '}');
        break;
    }
    case JSON_ARRAY: {
        buf_putc(b, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                buf_putc(b, ',');
            json_compact_append(b, json_array_get(v, i));
        }
        buf_putc(b, ']');
        break;
    }
    case JSON_STRING:
        json_string_append(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        json_integer_append(b, json_integer_value(v));
        break;
    case JSON_REAL:
        json_real_append(b, json_real_value(v));
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
    }
}

/* Appends s[0..n) escaped twice: as json_string_append escapes it, then that text escaped
 * again (a string inside compact text inside a string literal). */
static void string_escaped_twice(struct buf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_add(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"':
            buf_add(b, "\\\\\\\"", 4); /* \\\" */
            break;
        case '\\':
            buf_add(b, "\\\\\\\\", 4); /* \\\\ */
            break;
        case '\b':
            buf_add(b, "\\\\b", 3);
            break;
        case '\f':
            buf_add(b, "\\\\f", 3);
            break;
        case '\n':
            buf_add(b, "\\\\n", 3);
            break;
        case '\r':
            buf_add(b, "\\\\r", 3);
            break;
        case '\t':
            buf_add(b, "\\\\t", 3);
            break;
        default: {
            char esc[7] = {'\\', '\\', 'u', '0', '0', hexdigits[c >> 4], hexdigits[c & 15]};
            buf_add(b, esc, sizeof(esc));
            break;
        }
        }
    }
    buf_add(b, s + start, n - start);
}

/* The compact text of v with every character a string literal must escape escaped: what
 * json_string_append writes between its quotes for that text. */
static void compact_escaped(struct buf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        buf_putc(b, '{');
        int first = 1;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            buf_add(b, first ? "\\\"" : ",\\\"", first ? 2 : 3);
            first = 0;
            string_escaped_twice(b, key, strlen(key));
            buf_add(b, "\\\":", 3);
            compact_escaped(b, val);
        }
        buf_putc(b, '}');
        break;
    }
    case JSON_ARRAY: {
        buf_putc(b, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                buf_putc(b, ',');
            compact_escaped(b, json_array_get(v, i));
        }
        buf_putc(b, ']');
        break;
    }
    case JSON_STRING:
        buf_add(b, "\\\"", 2);
        string_escaped_twice(b, json_string_value(v), json_string_length(v));
        buf_add(b, "\\\"", 2);
        break;
    default: /* numbers, true, false, null: nothing to escape */
        json_compact_append(b, v);
        break;
    }
}

void json_compact_string_append(struct buf *b, const json_t *v)
{
    buf_putc(b, '"');
    compact_escaped(b, v);
    buf_putc(b, '"');
}

char *json_compact(const json_t *v)
{
    struct buf b = BUF_INIT;
    json_compact_append(&b, v);
    return buf_detach(&b);
}

static size_t string_size(const char *s, size_t n)
{
    size_t total = 2;
    for (size_t i = 0; i < n; i++)
        total += escaped_len((unsigned char)s[i]);
    return total;
}

size_t json_string_compact_size(const char *s, size_t n)
{
    return string_size(s, n);
}

size_t json_compact_size_max(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: {
        size_t n = json_string_length(v);
        return n > (SIZE_MAX - 2) / 6 ? SIZE_MAX : 2 + 6 * n; /* "\u0001": 6 bytes each */
    }
    case JSON_INTEGER:
        return 20; /* -9223372036854775808 */
    case JSON_REAL:
        return 32; /* real_format: at most 17 digits, sign, point, exponent: 24 */
    case JSON_TRUE:
    case JSON_NULL:
        return 4;
    case JSON_FALSE:
        return 5;
    case JSON_OBJECT:
        return json_object_size(v) == 0 ? 2 : SIZE_MAX;
    case JSON_ARRAY:
        return json_array_size(v) == 0 ? 2 : SIZE_MAX;
    }
    return SIZE_MAX;
}

static size_t sizer_lookup(struct json_sizer *z, const json_t *v);
static void sizer_store(struct json_sizer *z, const json_t *v, size_t size);

static size_t size_walk_z(struct json_sizer *z, const json_t *v, size_t acc, size_t limit);

/* Adds the size of a member: from the memo, or walked (and memoised when large). */
static size_t size_walk_child(struct json_sizer *z, const json_t *v, size_t acc, size_t limit)
{
    if (z == NULL || !(json_is_object(v) || json_is_array(v)))
        return size_walk_z(z, v, acc, limit);
    size_t known = sizer_lookup(z, v);
    if (known != SIZE_MAX)
        return acc + known;
    size_t own = size_walk_z(z, v, 0, limit);
    /* memoise what is likely to be measured again: large values, and values shared with
     * another document (the unchanged parts of a state's input carried to its output) */
    if (own <= limit && (own >= JSON_SIZER_MIN || v->refcount > 1))
        sizer_store(z, v, own);
    return acc + own;
}

static size_t size_walk(const json_t *v, size_t acc, size_t limit)
{
    return size_walk_z(NULL, v, acc, limit);
}

static size_t size_walk_z(struct json_sizer *z, const json_t *v, size_t acc, size_t limit)
{
    char tmp[40];
    if (acc > limit)
        return acc;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        acc += 2 + (n > 0 ? n - 1 : 0) + n; /* braces, commas, colons */
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            acc += string_size(key, strlen(key));
            acc = size_walk_child(z, val, acc, limit);
            if (acc > limit)
                return acc;
        }
        return acc;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        acc += 2 + (n > 0 ? n - 1 : 0);
        for (size_t i = 0; i < n && acc <= limit; i++)
            acc = size_walk_child(z, json_array_get(v, i), acc, limit);
        return acc;
    }
    case JSON_STRING:
        return acc + string_size(json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        size_t digits = 1;
        uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        while (u >= 10) {
            u /= 10;
            digits++;
        }
        return acc + digits + (i < 0 ? 1 : 0);
    }
    case JSON_REAL:
        return acc + real_format(json_real_value(v), tmp, sizeof(tmp));
    case JSON_TRUE:
        return acc + 4;
    case JSON_FALSE:
        return acc + 5;
    case JSON_NULL:
        return acc + 4;
    }
    return acc;
}

size_t json_compact_size(const json_t *v, size_t limit)
{
    return size_walk(v, 0, limit);
}

/* The first slot of v's set. */
static size_t sizer_set(const json_t *v)
{
    uintptr_t p = (uintptr_t)v;
    return (size_t)((p >> 4) ^ (p >> 12)) % (JSON_SIZER_SLOTS / JSON_SIZER_WAYS) *
           JSON_SIZER_WAYS;
}

static size_t sizer_lookup(struct json_sizer *z, const json_t *v)
{
    size_t set = sizer_set(v);
    for (size_t i = set; i < set + JSON_SIZER_WAYS; i++) {
        if (z->key[i] == v) {
            z->used[i] = ++z->clock;
            return z->size[i];
        }
    }
    return SIZE_MAX;
}

static void sizer_store(struct json_sizer *z, const json_t *v, size_t size)
{
    size_t set = sizer_set(v);
    size_t victim = set;
    for (size_t i = set; i < set + JSON_SIZER_WAYS; i++) {
        if (z->key[i] == NULL) {
            victim = i;
            break;
        }
        if (z->used[i] < z->used[victim])
            victim = i;
    }
    if (z->key[victim] != NULL)
        json_decref((json_t *)z->key[victim]);
    z->key[victim] = json_incref((json_t *)v);
    z->size[victim] = size;
    z->used[victim] = ++z->clock;
}

void json_sizer_init(struct json_sizer *z)
{
    memset(z, 0, sizeof(*z));
}

void json_sizer_release(struct json_sizer *z)
{
    for (size_t i = 0; i < JSON_SIZER_SLOTS; i++) {
        if (z->key[i] != NULL)
            json_decref((json_t *)z->key[i]);
        z->key[i] = NULL;
    }
}

size_t json_sizer_size(struct json_sizer *z, const json_t *v, size_t limit)
{
    return size_walk_child(z, v, 0, limit);
}

double json_number(const json_t *v)
{
    if (json_is_integer(v))
        return (double)json_integer_value(v);
    return json_real_value(v);
}

bool json_value_equal(const json_t *a, const json_t *b)
{
    if (a == b)
        return true;
    if (a == NULL || b == NULL)
        return false;
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number(a) == json_number(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)a, key, val) {
            if (!json_value_equal(val, json_object_get(b, key)))
                return false;
        }
        return true;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++) {
            if (!json_value_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        }
        return true;
    }
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    default:
        return true; /* true, false, null: same type means equal */
    }
}

json_t *json_parse(const char *text, size_t len, bool reject_duplicates, struct err *err)
{
    json_error_t jerr;
    size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    if (reject_duplicates)
        flags |= JSON_REJECT_DUPLICATES;
    json_t *v = json_loadb(text, len, flags, &jerr);
    if (v == NULL)
        err_set(err, NULL, "%s at line %d, column %d", jerr.text, jerr.line, jerr.column);
    return v;
}

json_t *json_shallow_copy(json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        json_object_update(o, v);
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        json_array_extend(a, v);
        return a;
    }
    return json_incref(v);
}
