/* tests/unit/test_path.c - runs the path cases of tests/path/ (asl/path.c).
 *
 * tests/path/NAME.test: blocks of three lines, blank-line separated:
 *     path            optionally prefixed by flags: "REF " (ASL_PATH_REFERENCE) and/or
 *                     "NOCTX " (ASL_PATH_NO_CONTEXT)
 *     input JSON      what `$` refers to
 *     expected JSON   the value asl_path_eval returns
 * `$$` paths read the fixed context object CONTEXT below.
 *
 * tests/path/assign/NAME.test: blocks of four lines: path / doc / value / expected JSON (the
 * result of asl_path_assign; the path is compiled with ASL_PATH_REFERENCE|NO_CONTEXT unless
 * it carries its own flags). The runner also checks that `doc` was left unmodified.
 *
 * A "%%FAIL" line before a block makes its last line "<error name> | <cause>", compared
 * exactly; a compilation failure (whose error has no name) is written "(compile) | <cause>".
 * Run from the repository root; the last line printed is "N passed, N failed". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asl/asl.h"
#include "tests/unit/testlib.h"
#include "util/json.h"
#include "util/xalloc.h"

static const char CONTEXT[] =
    "{\"Execution\":{\"Id\":\"arn:aws:states:us-east-1:123456789012:execution:sm:e1\","
    "\"Name\":\"e1\",\"Input\":{\"k\":1},\"StartTime\":\"2024-05-01T10:00:00.123Z\"},"
    "\"StateMachine\":{\"Id\":\"arn:aws:states:us-east-1:123456789012:stateMachine:sm\","
    "\"Name\":\"sm\"},\"State\":{\"Name\":\"S\",\"EnteredTime\":\"2024-05-01T10:00:00.456Z\"},"
    "\"Map\":{\"Item\":{\"Index\":2,\"Value\":\"v\"}}}";

struct run {
    struct tl t;      /* counts */
    json_t *context;  /* CONTEXT, parsed */
    bool assign;      /* the current file holds assign cases */
};

static json_t *on_context(void *arg)
{
    return ((struct run *)arg)->context;
}

static json_t *parse_line(const char *line)
{
    struct err err = ERR_INIT;
    json_t *v = json_parse(line, strlen(line), false, &err);
    err_clear(&err);
    return v;
}

/* Splits the flag prefixes off a path line. */
static const char *path_flags(const char *line, unsigned *flags)
{
    for (;;) {
        if (strncmp(line, "REF ", 4) == 0) {
            *flags |= ASL_PATH_REFERENCE;
            line += 4;
        } else if (strncmp(line, "NOCTX ", 6) == 0) {
            *flags |= ASL_PATH_NO_CONTEXT;
            line += 6;
        } else {
            return line;
        }
    }
}

/* Compares a result (value or error) with the expected last line. */
static void check_outcome(struct run *r, const struct tl_block *b, char *where, json_t *got,
                          const struct err *err, const char *kind)
{
    const char *want = b->lines[b->n - 1];
    if (b->fail) {
        char *text = NULL;
        if (got == NULL)
            text = xasprintf("%s | %s", err->name[0] != '\0' ? err->name : kind,
                             err->cause != NULL ? err->cause : "");
        tl_check(&r->t, text != NULL && strcmp(text, want) == 0, where,
                 "expected error\n  want: %s\n  got:  %s", want,
                 text != NULL ? text : "(a value)");
        free(text);
    } else {
        /* compact texts compare key order and integer/real too */
        json_t *exp = parse_line(want);
        char *e = exp != NULL ? json_compact(exp) : NULL;
        char *g = got != NULL ? json_compact(got) : NULL;
        tl_check(&r->t, e != NULL && g != NULL && strcmp(e, g) == 0, where,
                 "\n  want: %s\n  got:  %s", want,
                 g != NULL ? g : (err->cause != NULL ? err->cause : "(error)"));
        free(g);
        free(e);
        if (exp != NULL)
            json_decref(exp);
    }
}

static void on_block(const struct tl_block *b, void *arg)
{
    struct run *r = arg;
    char where[512];
    snprintf(where, sizeof(where), "%s:%d", b->file, b->line);
    size_t want_lines = r->assign ? 4 : 3;
    if (b->n != want_lines) {
        tl_check(&r->t, false, where, "block has %zu lines, expected %zu", b->n, want_lines);
        return;
    }
    unsigned flags = r->assign ? ASL_PATH_REFERENCE | ASL_PATH_NO_CONTEXT : 0;
    const char *text = path_flags(b->lines[0], &flags);
    struct err err = ERR_INIT;
    json_t *input = parse_line(b->lines[1]);
    json_t *value = r->assign ? parse_line(b->lines[2]) : NULL;
    if (input == NULL || (r->assign && value == NULL)) {
        tl_check(&r->t, false, where, "bad JSON in the block");
        goto out;
    }
    struct asl_path *p = asl_path_compile(text, flags, &err);
    json_t *got = NULL;
    if (p != NULL) {
        if (r->assign) {
            char *before = json_compact(input);
            got = asl_path_assign(p, input, value, &err);
            char *after = json_compact(input);
            tl_check(&r->t, strcmp(before, after) == 0, where, "assign modified its doc");
            free(before);
            free(after);
        } else {
            struct asl_scope s = {input, on_context, r, NULL, NULL};
            got = asl_path_eval(p, &s, &err);
        }
    }
    check_outcome(r, b, where, got, &err, "(compile)");
    if (got != NULL)
        json_decref(got);
    asl_path_free(p);
out:
    err_clear(&err);
    if (input != NULL)
        json_decref(input);
    if (value != NULL)
        json_decref(value);
}

static void on_file(const char *path, void *arg)
{
    if (tl_each_block(path, on_block, arg) < 0)
        tl_check(&((struct run *)arg)->t, false, path, "cannot read");
}

/* The API calls the data files cannot express. */
static void check_api(struct run *r)
{
    struct err err = ERR_INIT;
    struct asl_path *p = asl_path_compile("$.a['b'][0]", 0, &err);
    char *n = p != NULL ? asl_path_normalized(p) : NULL;
    tl_check(&r->t, n != NULL && strcmp(n, "$['a']['b'][0]") == 0, "api", "normalized: %s",
             n != NULL ? n : "(null)");
    tl_check(&r->t, p != NULL && asl_path_is_definite(p) && !asl_path_is_root(p) &&
                        asl_path_root(p) == ASL_ROOT_INPUT &&
                        strcmp(asl_path_text(p), "$.a['b'][0]") == 0,
             "api", "definite/root/text");
    free(n);
    asl_path_free(p);

    p = asl_path_compile("", 0, &err);
    tl_check(&r->t, p == NULL && err.cause != NULL &&
                        strcmp(err.cause, "cannot parse Path '': a path must start with '$'") == 0,
             "api", "the empty string is not a path");
    err_clear(&err);

    p = asl_path_compile("$..x", 0, &err);
    tl_check(&r->t, p != NULL && !asl_path_is_definite(p), "api", "'$..x' is indefinite");
    asl_path_free(p);

    p = asl_path_compile("$", 0, &err);
    tl_check(&r->t, p != NULL && asl_path_is_root(p) && asl_path_is_definite(p), "api",
             "'$' is the root");
    asl_path_free(p);

    p = asl_path_compile("$$", 0, &err);
    tl_check(&r->t, p != NULL && !asl_path_is_root(p) && asl_path_root(p) == ASL_ROOT_CONTEXT,
             "api", "'$$' is not the input root");
    asl_path_free(p);

    p = asl_path_compile("$item.a", 0, &err);
    tl_check(&r->t, p != NULL && asl_path_root(p) == ASL_ROOT_VAR, "api", "'$item' is a var");
    asl_path_free(p);

    /* `$$` without a context callback is {} */
    p = asl_path_compile("$$", 0, &err);
    json_t *in = json_object();
    struct asl_scope s = {in, NULL, NULL, NULL, NULL};
    json_t *got = asl_path_eval(p, &s, &err);
    tl_check(&r->t, got != NULL && json_is_object(got) && json_object_size(got) == 0, "api",
             "'$$' without a context is {}");
    tl_check(&r->t, asl_scope_context(&s) == got, "api", "asl_scope_context is that {}");
    if (got != NULL)
        json_decref(got);
    json_decref(in);
    asl_path_free(p);

    /* definite paths return the node itself, not a copy */
    p = asl_path_compile("$.a", 0, &err);
    in = json_pack("{s:{s:i}}", "a", "b", 1);
    s.input = in;
    got = asl_path_eval(p, &s, &err);
    tl_check(&r->t, got == json_object_get(in, "a"), "api", "definite result is shared");
    if (got != NULL)
        json_decref(got);
    json_decref(in);
    asl_path_free(p);
    err_clear(&err);
}

int main(void)
{
    xalloc_install_jansson();
    struct run r = {{0, 0}, parse_line(CONTEXT), false};
    check_api(&r);
    if (tl_each_file("tests/path", ".test", on_file, &r) < 0)
        tl_check(&r.t, false, "tests/path", "cannot read the directory");
    r.assign = true;
    if (tl_each_file("tests/path/assign", ".test", on_file, &r) < 0)
        tl_check(&r.t, false, "tests/path/assign", "cannot read the directory");
    json_decref(r.context);
    return tl_finish(&r.t);
}
