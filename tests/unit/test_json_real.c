/* tests/unit/test_json_real.c - json_real_append (util/json.c) prints every double as the
 * reference rule does: the shortest of %.15g, %.16g, %.17g that reads back to the same
 * double, with ".0" added to a whole number. Its fast path for whole milliseconds (history
 * timestamps and API dates, ms / 1000.0) must give exactly that text: checked here on a
 * table of edge values and on 400,000 generated ones, timestamps and others. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/json.h"

/* The rule, written out plainly (the slow path's algorithm). */
static void reference(double d, char *out, size_t size)
{
    if (d == 0) {
        snprintf(out, size, "0.0");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, d);
        if (prec == 17 || strtod(out, NULL) == d)
            break;
    }
    if (strpbrk(out, ".eEn") == NULL)
        strcat(out, ".0");
}

/* Whether json_real_append prints d as the reference does (a mismatch is printed). */
static bool same_text(double d)
{
    char want[64];
    reference(d, want, sizeof(want));
    struct buf b = BUF_INIT;
    json_real_append(&b, d);
    bool ok = strcmp(buf_cstr(&b), want) == 0;
    if (!ok)
        printf("%.17g: got '%s', want '%s'\n", d, buf_cstr(&b), want);
    buf_release(&b);
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

int main(void)
{
    struct tl t = {0, 0};
    static const double table[] = {
        0.001, 0.01, 0.1, 0.5, 1, 1.5, 10, 100, 999.999, 1000, 1712345678.123, 1712345678.1,
        1712345678.0, 1712345678.12, 1712345678.999, 4102444800.001, 99999999999.999,
        1e11, 1e11 + 0.001, 123456789012.5, 0.0005, 0.0015, 1e-5, 0.1 + 0.2, 1.0 / 3,
        2.5e-3, 1e15, 1e20, -1712345678.123, -0.001, 3.14159, 1e-300, 4.9e-324,
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        char where[64];
        snprintf(where, sizeof(where), "%.17g", table[i]);
        tl_check(&t, same_text(table[i]), where, "printed differently");
    }
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    int bad = 0;
    for (int i = 0; i < 100000 && bad < 10; i++) {
        /* timestamps of the years 1970-2100 in ms, as the engine makes them */
        int64_t ms = (int64_t)(next(&s) % 4102444800000ULL);
        bad += !same_text((double)ms / 1000.0);
        /* small ms values, whole seconds, and doubles that are not whole ms */
        bad += !same_text((double)(next(&s) % 100000) / 1000.0);
        bad += !same_text((double)(next(&s) % 5000000000ULL));
        bad += !same_text((double)(next(&s) >> 11) / (double)(1ULL << 30));
    }
    tl_check(&t, bad == 0, "generated", "%d of 400,000 generated values printed differently",
             bad);
    return tl_finish(&t);
}
