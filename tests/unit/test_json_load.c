/* tests/unit/test_json_load.c - json_load_any (util/json.c), which reads request bodies and
 * execution inputs with its own fast path for small plain documents, gives exactly what
 * json_loadb(JSON_DECODE_ANY) gives: the same values, types, key order and duplicate
 * handling, and NULL with jansson's own error for what jansson refuses. Checked on a table
 * of edge cases and on 200,000 generated texts (valid documents and mutations of them). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/json.h"

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Whether json_load_any(text) is what json_loadb gives (a mismatch is printed). */
static bool same_load(const char *text, size_t len)
{
    json_error_t e1, e2;
    json_t *want = json_loadb(text, len, JSON_DECODE_ANY, &e1);
    json_t *got = json_load_any(text, len, &e2);
    bool ok;
    if (want == NULL || got == NULL) {
        ok = want == NULL && got == NULL && strcmp(e1.text, e2.text) == 0 &&
             e1.line == e2.line && e1.column == e2.column;
    } else {
        char *a = dump(want);
        char *b = dump(got);
        ok = strcmp(a, b) == 0 && json_equal(want, got);
        free(a);
        free(b);
    }
    if (!ok) {
        char *a = want != NULL ? dump(want) : NULL;
        char *b = got != NULL ? dump(got) : NULL;
        printf("text %.*s\n  jansson %s (%s)\n  fast    %s\n", (int)len, text,
               a != NULL ? a : "NULL", want == NULL ? e1.text : "", b != NULL ? b : "NULL");
        free(a);
        free(b);
    }
    json_decref(want);
    json_decref(got);
    return ok;
}

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void gen_string(struct buf *b, uint64_t *s)
{
    static const char *const pieces[] = {"a", "Z", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t",
                                         "\\b", "\\f", "\\r", "\\u0041", "\\u00e9", "é", "{",
                                         "}", ":", ",", "x y", "\x7f", "0"};
    buf_putc(b, '"');
    int n = (int)(next(s) % 6);
    for (int i = 0; i < n; i++)
        buf_puts(b, pieces[next(s) % (sizeof(pieces) / sizeof(pieces[0]))]);
    buf_putc(b, '"');
}

static void gen_value(struct buf *b, uint64_t *s, int depth)
{
    static const char *const ws[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    buf_puts(b, ws[next(s) % 7]);
    int kind = (int)(next(s) % (depth > 4 ? 6 : 8));
    switch (kind) {
    case 0:
        gen_string(b, s);
        break;
    case 1: {
        static const char *const nums[] = {"0", "-0", "1", "-17", "123456789012345",
                                           "1234567890123456", "99999999999999999999", "1.5",
                                           "1e3", "-2.5E-3", "01", "-", "0.0", "7"};
        buf_puts(b, nums[next(s) % (sizeof(nums) / sizeof(nums[0]))]);
        break;
    }
    case 2:
        buf_puts(b, "true");
        break;
    case 3:
        buf_puts(b, "false");
        break;
    case 4:
        buf_puts(b, "null");
        break;
    case 5:
        gen_string(b, s);
        break;
    case 6: {
        buf_putc(b, '{');
        int n = (int)(next(s) % 4);
        for (int i = 0; i < n; i++) {
            if (i > 0)
                buf_putc(b, ',');
            static const char *const keys[] = {"\"a\"", "\"b\"", "\"a\"", "\"input\"",
                                               "\"k\\\"q\"", " \"s\" "};
            buf_puts(b, keys[next(s) % 6]);
            buf_putc(b, ':');
            gen_value(b, s, depth + 1);
        }
        buf_putc(b, '}');
        break;
    }
    default: {
        buf_putc(b, '[');
        int n = (int)(next(s) % 4);
        for (int i = 0; i < n; i++) {
            if (i > 0)
                buf_putc(b, ',');
            gen_value(b, s, depth + 1);
        }
        buf_putc(b, ']');
        break;
    }
    }
    buf_puts(b, ws[next(s) % 7]);
}

int main(void)
{
    struct tl t = {0, 0};
    static const char *const table[] = {
        "{\"stateMachineArn\":\"arn:aws:states:us-east-1:123456789012:stateMachine:b\","
        "\"name\":\"r000000000001\",\"input\":\"{\\\"n\\\":1}\"}",
        "{\"n\":1}",
        "{}",
        "[]",
        " { } ",
        "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"b\":2,\"a\":3}",
        "\"x\"",
        "123",
        "-0",
        "1.0",
        "[1,2,[3,[4,{\"x\":null}]]]",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]",
        "{\"a\":}",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "[1,]",
        "{\"a\":1} x",
        "{\"a\":1}}",
        "tru",
        "truex",
        "nul",
        "",
        "   ",
        "\"unterminated",
        "\"bad \\x escape\"",
        "\"\\u0000\"",
        "{\"\\u0000\":1}",
        "\"tab\tinside\"",
        "\"caf\xc3\xa9\"",
        "\"bad utf8 \xff\"",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":9223372036854775808}",
        "{\"a\":1e400}",
        "{'a':1}",
        "{\"a\":1 \"b\":2}",
        "[1 2]",
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        char where[32];
        snprintf(where, sizeof(where), "table %zu", i);
        tl_check(&t, same_load(table[i], strlen(table[i])), where, "differs from jansson");
    }
    /* embedded NUL bytes */
    tl_check(&t, same_load("{\"a\":1}\0", 8), "trailing NUL", "differs from jansson");
    tl_check(&t, same_load("\"a\0b\"", 5), "NUL in a string", "differs from jansson");

    uint64_t s = 0x9E3779B97F4A7C15ULL;
    int bad = 0;
    struct buf b = BUF_INIT;
    for (int i = 0; i < 100000 && bad < 10; i++) {
        buf_reset(&b);
        gen_value(&b, &s, 0);
        bad += !same_load(b.data, b.len);
        /* a mutation: a byte replaced, dropped or cut off */
        size_t at = (size_t)(next(&s) % b.len);
        switch (next(&s) % 3) {
        case 0:
            b.data[at] = "{}[]\",:\\ a1-"[next(&s) % 12];
            break;
        case 1:
            memmove(b.data + at, b.data + at + 1, b.len - at - 1);
            b.len--;
            break;
        default:
            b.len = at;
            break;
        }
        bad += !same_load(b.data, b.len);
    }
    buf_release(&b);
    tl_check(&t, bad == 0, "generated", "%d of 200,000 generated texts read differently", bad);
    return tl_finish(&t);
}
