/* tests/unit/test_validate.c - runs the definition cases of tests/validate (STYLE.md: tests
 * are data). valid/<case>/definition.json must validate with no diagnostic; invalid/<case>/
 * definition.json must render exactly invalid/<case>/error (asl_diags_render, one line). An
 * optional file `type` holding EXPRESS validates as an Express machine; an optional README
 * names the rule the case guards. Run from the repository root. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asl/asl.h"
#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define CASES_DIR "tests/validate"

/* Reads a whole file into `out`; returns -1 when it cannot be opened. */
static int read_file(const char *path, struct buf *out)
{
    size_t n;
    char *data = tl_read_file(path, &n);
    if (data == NULL)
        return -1;
    buf_add(out, data, n);
    free(data);
    return 0;
}

static void chomp(struct buf *b)
{
    while (b->len > 0 && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
        b->data[--b->len] = '\0';
}

static void run_case(struct tl *t, const char *dir, const char *name, bool valid)
{
    char path[4096];
    char where[4096];
    struct buf def = BUF_INIT;
    struct buf expect = BUF_INIT;
    struct buf type = BUF_INIT;
    snprintf(where, sizeof(where), "%s/%s", dir, name);

    snprintf(path, sizeof(path), "%s/%s/definition.json", dir, name);
    if (read_file(path, &def) != 0) {
        tl_check(t, false, where, "cannot read %s", path);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s/type", dir, name);
    enum asl_machine_type mt = ASL_STANDARD;
    if (read_file(path, &type) == 0 && strncmp(buf_cstr(&type), "EXPRESS", 7) == 0)
        mt = ASL_EXPRESS;
    if (!valid) {
        snprintf(path, sizeof(path), "%s/%s/error", dir, name);
        if (read_file(path, &expect) != 0) {
            tl_check(t, false, where, "cannot read %s", path);
            goto out;
        }
        chomp(&expect);
    }

    struct asl_diags d;
    asl_diags_init(&d);
    int rc = asl_validate(def.data != NULL ? def.data : "", def.len, mt, &d);
    char *got = asl_diags_render(&d);
    if (valid)
        tl_check(t, rc == 0 && d.n == 0, where, "expected valid, got %s", got);
    else
        tl_check(t, rc != 0 && strcmp(got, buf_cstr(&expect)) == 0, where,
                 "\n  expected: %s\n  got:      %s", buf_cstr(&expect), got);
    free(got);
    asl_diags_release(&d);
out:
    buf_release(&def);
    buf_release(&expect);
    buf_release(&type);
}

static void run_dir(struct tl *t, const char *sub, bool valid)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/%s", CASES_DIR, sub);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    tl_check(t, n > 2, dir, "no cases found (run from the repository root)");
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.')
            run_case(t, dir, names[i]->d_name, valid);
        free(names[i]);
    }
    if (n >= 0)
        free(names);
}

/* The C-level contract: rendering, the parsed-definition entry point, appending. */
static void test_api(struct tl *t)
{
    struct asl_diags d;
    asl_diags_init(&d);
    char *s = asl_diags_render(&d);
    tl_check(t, strcmp(s, "") == 0, "render empty", "got '%s'", s);
    free(s);

    asl_diags_add(&d, "A", "/x", "m%d", 1);
    asl_diags_add(&d, "B", NULL, "n");
    s = asl_diags_render(&d);
    tl_check(t, strcmp(s, "A: m1 at /x, B: n at null") == 0, "render two", "got '%s'", s);
    free(s);

    /* asl_validate appends after what is there and judges only its own diagnostics */
    const char *ok = "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Succeed\"}}}";
    tl_check(t, asl_validate(ok, strlen(ok), ASL_STANDARD, &d) == 0 && d.n == 2,
             "append valid", "n=%zu", d.n);
    asl_diags_release(&d);

    json_t *arr = json_array();
    tl_check(t, asl_validate_json(arr, ASL_STANDARD, &d) == -1 && d.n == 1 &&
                    d.v[0].location == NULL,
             "validate_json non-object", "n=%zu", d.n);
    json_decref(arr);
    asl_diags_release(&d);

    json_t *def = json_pack("{s:s, s:{s:{s:s, s:b}}}", "StartAt", "A", "States", "A", "Type",
                            "Pass", "End", 1);
    tl_check(t, asl_validate_json(def, ASL_EXPRESS, &d) == 0 && d.n == 0, "validate_json ok",
             "n=%zu", d.n);
    json_decref(def);
    asl_diags_release(&d);

    tl_check(t, asl_validate("", 0, ASL_STANDARD, &d) == -1 && d.n == 1, "empty text",
             "n=%zu", d.n);
    asl_diags_release(&d);
}

int main(void)
{
    xalloc_install_jansson();
    struct tl t = {0, 0};
    test_api(&t);
    run_dir(&t, "valid", true);
    run_dir(&t, "invalid", false);
    return tl_finish(&t);
}
