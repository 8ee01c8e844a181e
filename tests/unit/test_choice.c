/* tests/unit/test_choice.c - runs the files in tests/choice: blocks of
 *   rule JSON (one line) / input JSON / expected "true" or "false"
 * and, after a %%FAIL line, "COMPILE" (asl_rule_compile must reject the rule) or an error
 * name (compilation succeeds, evaluation fails with that name). The context object `$$`
 * of every case is {"Execution": {"Id": "exec-1"}}. */
#include <string.h>

#include "asl/asl.h"
#include "tests/unit/testlib.h"
#include "util/json.h"
#include "util/xalloc.h"

static json_t *on_context(void *arg)
{
    return arg;
}

static void run_case(const struct tl_block *b, void *arg)
{
    struct tl *t = arg;
    char where[4200];
    snprintf(where, sizeof(where), "%s:%d", b->file, b->line);
    if (b->n != 3) {
        tl_check(t, false, where, "expected 3 lines, got %zu", b->n);
        return;
    }
    const char *expect = b->lines[2];
    struct err err = ERR_INIT;
    json_t *rule = json_parse(b->lines[0], strlen(b->lines[0]), true, &err);
    if (rule == NULL) {
        tl_check(t, false, where, "bad rule JSON: %s", err.cause);
        err_clear(&err);
        return;
    }
    struct asl_rule *r = asl_rule_compile(rule, &err);
    json_decref(rule);
    if (b->fail && strcmp(expect, "COMPILE") == 0) {
        tl_check(t, r == NULL && err.set && err.name[0] == '\0' && err.cause != NULL, where,
                 "expected a compile error");
        asl_rule_free(r);
        err_clear(&err);
        return;
    }
    if (r == NULL) {
        tl_check(t, false, where, "compile failed: %s", err.cause);
        err_clear(&err);
        return;
    }
    json_t *input = json_parse(b->lines[1], strlen(b->lines[1]), true, &err);
    if (input == NULL) {
        tl_check(t, false, where, "bad input JSON: %s", err.cause);
        err_clear(&err);
        asl_rule_free(r);
        return;
    }
    json_t *ctx = json_pack("{s{ss}}", "Execution", "Id", "exec-1");
    struct asl_scope scope = {input, on_context, ctx, NULL, NULL};
    bool result = false;
    int rc = asl_rule_eval(r, &scope, &result, &err);
    if (b->fail) {
        tl_check(t, rc < 0 && strcmp(err.name, expect) == 0 && err.cause != NULL, where,
                 "expected error %s, got rc %d result %d (%s: %s)", expect, rc, result,
                 err.name, err.cause != NULL ? err.cause : "");
    } else if (rc < 0) {
        tl_check(t, false, where, "eval failed: %s: %s", err.name,
                 err.cause != NULL ? err.cause : "");
    } else {
        bool want = strcmp(expect, "true") == 0;
        if (!want && strcmp(expect, "false") != 0)
            tl_check(t, false, where, "expected line must be true or false: '%s'", expect);
        else
            tl_check(t, result == want, where, "expected %s, got %s", expect,
                     result ? "true" : "false");
    }
    err_clear(&err);
    json_decref(ctx);
    json_decref(input);
    asl_rule_free(r);
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
    if (tl_each_file("tests/choice", ".test", on_file, &t) < 0)
        tl_check(&t, false, "tests/choice", "cannot open directory (run from the repo root)");
    return tl_finish(&t);
}
