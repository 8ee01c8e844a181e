/* tests/unit/test_intrinsic.c - runs the intrinsic function cases (tests/intrinsic, files
 * ending in .test) against asl/intrinsic.c (asl.md 5).
 *
 * Each case is three lines (STYLE.md "Tests are data"):
 *   expression   the call; a line starting with '"' is a JSON string and is decoded first,
 *                exactly as the call would be written in a definition ("\\{" is \{, "\n"
 *                a real newline)
 *   input        the JSON value `$` refers to
 *   expected     the JSON result, compared with json_value_equal, or one of the shapes
 *                "<uuid>" (a lowercase version 4 UUID string) and "<int:A:B>" (an integer
 *                between A and B inclusive) for random results
 * A "%%FAIL" line before a case makes the third line the expected failure: "PARSE" for a
 * parse error (no error name, a cause), or an error name such as "States.Runtime" for an
 * evaluation error. An optional fourth line is text the cause must contain.
 *
 * `$$` is the fixed context object CONTEXT below. Randomness comes from a SplitMix64
 * counter reset for each case, so UUIDs and unseeded MathRandom draw different values
 * within one case. Every successful case is evaluated twice from one parse, which must
 * give equal results unless the expected value is a random shape. */
#include <inttypes.h>

#include "asl/asl.h"
#include "tests/unit/testlib.h"
#include "util/json.h"
#include "util/xalloc.h"

#define CONTEXT                                                                                \
    "{\"Execution\": {\"Id\": \"arn:aws:states:us-east-1:111111111111:execution:my-machine:"    \
    "exec-1\", \"Name\": \"exec-1\", \"Input\": {\"input_field\": {\"k\": \"v\"}}}, "           \
    "\"StateMachine\": {\"Id\": \"arn:aws:states:us-east-1:111111111111:stateMachine:"          \
    "my-machine\", \"Name\": \"my-machine\"}, \"State\": {\"Name\": \"S\"}}"

struct run {
    struct tl t;
    json_t *context;   /* the `$$` object */
    uint64_t rand_ctr; /* SplitMix64 state of the current case */
};

static json_t *on_context(void *arg)
{
    return ((struct run *)arg)->context;
}

static uint64_t on_rand64(void *arg)
{
    struct run *r = arg;
    uint64_t z = (r->rand_ctr += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static bool is_uuid_v4(const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) != 36)
        return false;
    const char *s = json_string_value(v);
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* Returns 1 when `got` matches `expected`, 0 when not, -1 when expected is no shape. */
static int shape_match(const json_t *expected, const json_t *got)
{
    if (!json_is_string(expected))
        return -1;
    const char *e = json_string_value(expected);
    if (strcmp(e, "<uuid>") == 0)
        return is_uuid_v4(got);
    long long lo;
    long long hi;
    char *end;
    if (strncmp(e, "<int:", 5) == 0) {
        lo = strtoll(e + 5, &end, 10);
        if (*end == ':') {
            hi = strtoll(end + 1, &end, 10);
            if (strcmp(end, ">") == 0)
                return json_is_integer(got) && json_integer_value(got) >= lo &&
                       json_integer_value(got) <= hi;
        }
    }
    return -1;
}

static void run_case(const struct tl_block *b, void *arg)
{
    struct run *r = arg;
    char where[512];
    snprintf(where, sizeof(where), "%s:%d", b->file, b->line);
    if (b->n < 3 || b->n > (b->fail ? 4u : 3u)) {
        tl_check(&r->t, false, where, "malformed case (%zu lines)", b->n);
        return;
    }
    struct err err = ERR_INIT;
    char *expr = NULL;
    if (b->lines[0][0] == '"') {
        json_t *s = json_parse(b->lines[0], strlen(b->lines[0]), false, &err);
        if (s == NULL || !json_is_string(s)) {
            tl_check(&r->t, false, where, "expression is not a JSON string");
            json_decref(s);
            err_clear(&err);
            return;
        }
        expr = xstrdup(json_string_value(s));
        json_decref(s);
    } else {
        expr = xstrdup(b->lines[0]);
    }
    json_t *input = json_parse(b->lines[1], strlen(b->lines[1]), false, &err);
    json_t *expected = NULL;
    if (!b->fail)
        expected = json_parse(b->lines[2], strlen(b->lines[2]), false, &err);
    if (input == NULL || (!b->fail && expected == NULL)) {
        tl_check(&r->t, false, where, "bad JSON in case: %s", err.cause);
        goto out;
    }
    const char *want_fail = b->fail ? b->lines[2] : NULL;
    const char *want_cause = b->n == 4 ? b->lines[3] : NULL;

    struct asl_intrinsic *f = asl_intrinsic_parse(expr, &err);
    if (f == NULL) {
        bool ok = want_fail != NULL && strcmp(want_fail, "PARSE") == 0 && err.set &&
                  err.name[0] == '\0' && err.cause != NULL &&
                  (want_cause == NULL || strstr(err.cause, want_cause) != NULL);
        tl_check(&r->t, ok, where, "%s: parse error '%s' (name '%s'), expected %s%s%s", expr,
                 err.cause ? err.cause : "(null)", err.name, want_fail ? want_fail : "success",
                 want_cause ? " with " : "", want_cause ? want_cause : "");
        goto out;
    }
    if (err.set) {
        tl_check(&r->t, false, where, "%s: parse succeeded but set err", expr);
        goto out_f;
    }
    struct asl_scope scope = {input, on_context, r, on_rand64, r};
    r->rand_ctr = 0;
    json_t *got = asl_intrinsic_eval(f, &scope, &err);
    if (want_fail != NULL) {
        bool ok = got == NULL && err.set && strcmp(want_fail, err.name) == 0 &&
                  err.cause != NULL && (want_cause == NULL || strstr(err.cause, want_cause));
        char *text = got ? json_compact(got) : NULL;
        tl_check(&r->t, ok, where, "%s: got %s / err '%s' '%s', expected %s%s%s", expr,
                 text ? text : "NULL", err.name, err.cause ? err.cause : "(null)", want_fail,
                 want_cause ? " with " : "", want_cause ? want_cause : "");
        free(text);
        json_decref(got);
        goto out_f;
    }
    if (got == NULL) {
        tl_check(&r->t, false, where, "%s: error '%s': %s", expr, err.name,
                 err.cause ? err.cause : "(null)");
        goto out_f;
    }
    int shape = shape_match(expected, got);
    bool ok = shape >= 0 ? shape == 1 : json_value_equal(expected, got);
    char *text = json_compact(got);
    tl_check(&r->t, ok, where, "%s: got %s, expected %s", expr, text, b->lines[2]);
    free(text);
    if (shape < 0) { /* parse once, evaluate many: a second run gives the same value */
        json_t *again = asl_intrinsic_eval(f, &scope, &err);
        tl_check(&r->t, again != NULL && json_value_equal(got, again), where,
                 "%s: second evaluation differs", expr);
        json_decref(again);
    }
    json_decref(got);
out_f:
    asl_intrinsic_free(f);
out:
    err_clear(&err);
    json_decref(input);
    json_decref(expected);
    free(expr);
}

static void run_file(const char *path, void *arg)
{
    if (tl_each_block(path, run_case, arg) < 0) {
        struct run *r = arg;
        tl_check(&r->t, false, path, "cannot read");
    }
}

/* asl_intrinsic_is_call: which strings a template treats as a call. */
static void test_is_call(struct tl *t)
{
    static const struct {
        const char *text;
        bool want;
    } cases[] = {
        {"States.Format('x')", true},
        {"States.UUID()", true},
        {"States.NoSuchFunction()", true}, /* looks like a call; parse rejects it */
        {"States.Array", false},
        {"States.Array ()", false},
        {"$.a", false},
        {"states.Array()", false},
        {" States.Array()", false},
        {"", false},
        {"States.", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        tl_check(t, asl_intrinsic_is_call(cases[i].text) == cases[i].want, "is_call",
                 "'%s' should %sbe a call", cases[i].text, cases[i].want ? "" : "not ");
}

int main(void)
{
    xalloc_install_jansson();
    struct run r = {{0, 0}, NULL, 0};
    struct err err = ERR_INIT;
    r.context = json_parse(CONTEXT, strlen(CONTEXT), false, &err);
    if (r.context == NULL) {
        printf("bad CONTEXT: %s\n", err.cause);
        return 1;
    }
    test_is_call(&r.t);
    if (tl_each_file("tests/intrinsic", ".test", run_file, &r) < 0)
        tl_check(&r.t, false, "tests/intrinsic", "cannot list (run from the repo root)");
    json_decref(r.context);
    return tl_finish(&r.t);
}
