/* tests/unit/test_timestamp.c - runs the files in tests/timestamp. Two kinds of block:
 *   text / "<epoch seconds> <nanoseconds>" or "INVALID"      (asl_time_parse)
 *   "format <epoch ms>" / expected text                       (asl_time_format_ms)
 * Every formatted text must also parse back to the same instant. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "asl/asl.h"
#include "tests/unit/testlib.h"
#include "util/xalloc.h"

/* Reads a decimal integer that must span the whole of [s, end or NUL/space). */
static int read_int(const char *s, char **end, long long *out)
{
    errno = 0;
    *out = strtoll(s, end, 10);
    return errno != 0 || *end == s ? -1 : 0;
}

static void run_format(struct tl *t, const char *where, const struct tl_block *b)
{
    long long ms;
    char *end;
    if (read_int(b->lines[0] + 7, &end, &ms) < 0 || *end != '\0') {
        tl_check(t, false, where, "bad format line '%s'", b->lines[0]);
        return;
    }
    char buf[64];
    asl_time_format_ms(ms, buf, sizeof(buf));
    tl_check(t, strcmp(buf, b->lines[1]) == 0, where, "expected %s, got %s", b->lines[1], buf);
    struct asl_time back;
    bool ok = asl_time_parse(buf, &back) == 0;
    long long floor_sec = ms / 1000 - (ms % 1000 < 0);
    long long rem = ms - floor_sec * 1000;
    tl_check(t, ok && back.sec == floor_sec && back.nsec == rem * 1000000, where,
             "%s does not parse back to %lld ms", buf, ms);
}

static void run_case(const struct tl_block *b, void *arg)
{
    struct tl *t = arg;
    char where[4200];
    snprintf(where, sizeof(where), "%s:%d", b->file, b->line);
    if (b->n != 2) {
        tl_check(t, false, where, "expected 2 lines, got %zu", b->n);
        return;
    }
    if (strncmp(b->lines[0], "format ", 7) == 0) {
        run_format(t, where, b);
        return;
    }
    struct asl_time got = {0, 0};
    int rc = asl_time_parse(b->lines[0], &got);
    if (strcmp(b->lines[1], "INVALID") == 0) {
        tl_check(t, rc < 0, where, "'%s' parsed as %lld %d, expected INVALID", b->lines[0],
                 (long long)got.sec, got.nsec);
        return;
    }
    long long sec, nsec;
    char *end;
    if (read_int(b->lines[1], &end, &sec) < 0 || *end != ' ' ||
        read_int(end + 1, &end, &nsec) < 0 || *end != '\0') {
        tl_check(t, false, where, "bad expected line '%s'", b->lines[1]);
        return;
    }
    tl_check(t, rc == 0 && got.sec == sec && got.nsec == nsec, where,
             "'%s': expected %lld %lld, got rc %d %lld %d", b->lines[0], sec, nsec, rc,
             (long long)got.sec, got.nsec);
}

static void on_file(const char *path, void *arg)
{
    if (tl_each_block(path, run_case, arg) < 0) {
        struct tl *t = arg;
        tl_check(t, false, path, "cannot read");
    }
}

int main(void)
{
    xalloc_install_jansson();
    struct tl t = {0, 0};
    if (tl_each_file("tests/timestamp", ".test", on_file, &t) < 0)
        tl_check(&t, false, "tests/timestamp", "cannot open directory (run from the repo root)");

    /* asl_time_cmp orders by seconds, then nanoseconds */
    struct asl_time a = {10, 5}, b = {10, 6}, c = {11, 0};
    tl_check(&t, asl_time_cmp(&a, &b) < 0 && asl_time_cmp(&b, &a) > 0 &&
                     asl_time_cmp(&b, &c) < 0 && asl_time_cmp(&a, &a) == 0,
             "asl_time_cmp", "wrong order");
    return tl_finish(&t);
}
