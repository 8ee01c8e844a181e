/* tests/unit/test_template.c - runs the payload template cases of tests/template/
 * (asl/template.c).
 *
 * tests/template/NAME.test: blocks of three lines, blank-line separated: template JSON /
 * input JSON / expected JSON (compared as compact text, so key order counts). A "%%FAIL" line
 * before a block makes its last line "<error name> | <cause>"; a compilation failure (whose
 * error has no name) is written "(compile) | <cause>". `$$` paths read the context below.
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
    "\"Name\":\"e1\"},\"State\":{\"Name\":\"S\"},\"Task\":{\"Token\":\"tok\"},"
    "\"Map\":{\"Item\":{\"Index\":2,\"Value\":\"v\"}}}";

struct run {
    struct tl t;     /* counts */
    json_t *context; /* CONTEXT, parsed */
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

static void on_block(const struct tl_block *b, void *arg)
{
    struct run *r = arg;
    char where[512];
    snprintf(where, sizeof(where), "%s:%d", b->file, b->line);
    if (b->n != 3) {
        tl_check(&r->t, false, where, "block has %zu lines, expected 3", b->n);
        return;
    }
    struct err err = ERR_INIT;
    json_t *tmpl = parse_line(b->lines[0]);
    json_t *input = parse_line(b->lines[1]);
    json_t *got = NULL;
    struct asl_tmpl *t = NULL;
    if (tmpl == NULL || input == NULL) {
        tl_check(&r->t, false, where, "bad JSON in the block");
        goto out;
    }
    char *before = json_compact(tmpl);
    t = asl_tmpl_compile(tmpl, &err);
    if (t != NULL) {
        struct asl_scope s = {input, on_context, r, NULL, NULL};
        got = asl_tmpl_eval(t, &s, &err);
    }
    char *after = json_compact(tmpl);
    tl_check(&r->t, strcmp(before, after) == 0, where, "the template was modified");
    free(before);
    free(after);
    const char *want = b->lines[2];
    if (b->fail) {
        char *text = NULL;
        if (got == NULL)
            text = xasprintf("%s | %s", err.name[0] != '\0' ? err.name : "(compile)",
                             err.cause != NULL ? err.cause : "");
        tl_check(&r->t, text != NULL && strcmp(text, want) == 0, where,
                 "expected error\n  want: %s\n  got:  %s", want,
                 text != NULL ? text : "(a value)");
        free(text);
    } else {
        json_t *exp = parse_line(want);
        char *e = exp != NULL ? json_compact(exp) : NULL;
        char *g = got != NULL ? json_compact(got) : NULL;
        tl_check(&r->t, e != NULL && g != NULL && strcmp(e, g) == 0, where,
                 "\n  want: %s\n  got:  %s", want,
                 g != NULL ? g : (err.cause != NULL ? err.cause : "(error)"));
        free(e);
        free(g);
        if (exp != NULL)
            json_decref(exp);
    }
out:
    if (got != NULL)
        json_decref(got);
    asl_tmpl_free(t);
    err_clear(&err);
    if (tmpl != NULL)
        json_decref(tmpl);
    if (input != NULL)
        json_decref(input);
}

static void on_file(const char *path, void *arg)
{
    if (tl_each_block(path, on_block, arg) < 0)
        tl_check(&((struct run *)arg)->t, false, path, "cannot read");
}

/* What the data files cannot express: constant subtrees are shared, not copied. */
static void check_sharing(struct run *r)
{
    struct err err = ERR_INIT;
    json_t *tmpl = json_pack("{s:{s:i},s:s}", "const", "x", 1, "v.$", "$.a");
    json_t *input = json_pack("{s:[i]}", "a", 1);
    struct asl_tmpl *t = asl_tmpl_compile(tmpl, &err);
    struct asl_scope s = {input, NULL, NULL, NULL, NULL};
    json_t *got = t != NULL ? asl_tmpl_eval(t, &s, &err) : NULL;
    tl_check(&r->t, got != NULL && json_object_get(got, "const") == json_object_get(tmpl, "const"),
             "api", "a constant subtree is shared");
    tl_check(&r->t, got != NULL && json_object_get(got, "v") == json_object_get(input, "a"),
             "api", "a definite path's value is shared");
    if (got != NULL)
        json_decref(got);
    asl_tmpl_free(t);
    json_decref(tmpl);
    json_decref(input);
    err_clear(&err);
}

int main(void)
{
    xalloc_install_jansson();
    struct run r = {{0, 0}, parse_line(CONTEXT)};
    check_sharing(&r);
    if (tl_each_file("tests/template", ".test", on_file, &r) < 0)
        tl_check(&r.t, false, "tests/template", "cannot read the directory");
    json_decref(r.context);
    return tl_finish(&r.t);
}
