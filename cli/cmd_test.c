/* cli/cmd_test.c - `sfn test-state` (TestState: one state in isolation) and `sfn test SUITE`
 * (a state-machine test runner: cases run against the mocks, concurrently, on the virtual
 * clock; a progress line per case, a summary, JUnit XML with --junit).
 *
 * Exit codes: test-state 0 (the state ran: SUCCEEDED or CAUGHT_ERROR), 1 (FAILED or
 * RETRIABLE), 2 (bad request or usage); test 0 (every case passed), 1 (a case failed),
 * 2 (a bad suite or usage). */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/cli.h"
#include "sfn.h"
#ifndef SFN_CLI_LITE
#include "sfn_integrations.h"
#endif
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

/* Parses JSON text given on the command line or read from a file. New reference or NULL
 * after printing why. */
static json_t *parse_json(const char *what, const char *text, size_t len)
{
    struct err err = ERR_INIT;
    json_t *v = json_parse(text, len, false, &err);
    if (v == NULL) {
        fprintf(stderr, "sfn: %s is not valid JSON: %s\n", what, err.cause);
        err_clear(&err);
    }
    return v;
}

static json_t *load_json_file(const char *what, const char *path)
{
    size_t len;
    char *text = cli_read_file(path, &len);
    if (text == NULL)
        return NULL;
    json_t *v = parse_json(what, text, len);
    free(text);
    return v;
}

/* ---- sfn test-state ---- */

struct ts_out {
    json_t *resp; /* our reference */
};

static void on_test_state(json_t *resp, void *arg)
{
    struct ts_out *o = arg;
    o->resp = json_incref(resp);
}

static int ts_usage(const char *msg)
{
    fprintf(stderr,
            "sfn test-state: %s\nusage: sfn test-state DEFINITION [--state-name NAME] "
            "[--input JSON | --input-file FILE] [--inspection-level INFO|DEBUG|TRACE] "
            "[--role-arn ARN] [--mock JSON | --mock-result JSON | --mock-error ERROR "
            "[--mock-cause CAUSE]] [--retrier-retry-count N]\n",
            msg);
    return 2;
}

int cmd_test_state(int argc, char **argv)
{
    const char *path = NULL;
    struct sfn_test_state_request req = {0};
    const char *input_text = NULL;
    const char *input_file = NULL;
    const char *mock_text = NULL;
    const char *mock_result = NULL;
    const char *mock_error = NULL;
    const char *mock_cause = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--state-name") == 0 && has_val) {
            req.state_name = argv[++i];
        } else if (strcmp(a, "--input") == 0 && has_val) {
            input_text = argv[++i];
        } else if (strcmp(a, "--input-file") == 0 && has_val) {
            input_file = argv[++i];
        } else if (strcmp(a, "--inspection-level") == 0 && has_val) {
            req.inspection_level = argv[++i];
        } else if (strcmp(a, "--role-arn") == 0 && has_val) {
            req.role_arn = argv[++i];
            req.has_role = true;
        } else if (strcmp(a, "--mock") == 0 && has_val) {
            mock_text = argv[++i];
        } else if (strcmp(a, "--mock-result") == 0 && has_val) {
            mock_result = argv[++i];
        } else if (strcmp(a, "--mock-error") == 0 && has_val) {
            mock_error = argv[++i];
        } else if (strcmp(a, "--mock-cause") == 0 && has_val) {
            mock_cause = argv[++i];
        } else if (strcmp(a, "--retrier-retry-count") == 0 && has_val) {
            req.retrier_retry_count = atoi(argv[++i]);
        } else if (a[0] == '-' && a[1] != '\0') {
            char msg[256];
            snprintf(msg, sizeof(msg), "unknown or incomplete option '%s'", a);
            return ts_usage(msg);
        } else if (path == NULL) {
            path = a;
        } else {
            return ts_usage("more than one definition given");
        }
    }
    if (path == NULL)
        return ts_usage("no definition given");
    if (input_text != NULL && input_file != NULL)
        return ts_usage("--input and --input-file are exclusive");
    if ((mock_text != NULL) + (mock_result != NULL) + (mock_error != NULL) > 1)
        return ts_usage("--mock, --mock-result and --mock-error are exclusive");
    if (mock_cause != NULL && mock_error == NULL)
        return ts_usage("--mock-cause needs --mock-error");
    if (req.inspection_level != NULL && strcmp(req.inspection_level, "INFO") != 0 &&
        strcmp(req.inspection_level, "DEBUG") != 0 && strcmp(req.inspection_level, "TRACE") != 0)
        return ts_usage("--inspection-level is INFO, DEBUG or TRACE");

    int rc = 2;
    json_t *def = load_json_file("the definition", path);
    json_t *input = NULL;
    json_t *mock = NULL;
    if (def == NULL)
        goto out;
    if (input_file != NULL)
        input = load_json_file("the input", input_file);
    else if (input_text != NULL)
        input = parse_json("the input", input_text, strlen(input_text));
    else
        input = json_object();
    if (input == NULL)
        goto out;
    if (mock_text != NULL) {
        mock = parse_json("--mock", mock_text, strlen(mock_text));
        if (mock == NULL)
            goto out;
    } else if (mock_result != NULL) {
        mock = json_pack("{s:s}", "result", mock_result);
    } else if (mock_error != NULL) {
        json_t *eo = json_pack("{s:s}", "error", mock_error);
        if (mock_cause != NULL)
            json_object_set_new(eo, "cause", json_string(mock_cause));
        mock = json_pack("{s:o}", "errorOutput", eo);
    }
    req.definition = def;
    req.input = input;
    req.mock = mock;
#ifdef SFN_CLI_LITE
    /* an unmocked AWS integration needs sfn-aws */
    if (mock == NULL) {
        char *text = json_compact(def);
        bool aws = cli_uses_integrations(text);
        free(text);
        if (aws) {
            json_decref(def);
            json_decref(input);
            return cli_exec_full();
        }
    }
#endif
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sfn_engine_options opt = {true, -1, 0, NULL, NULL, 0};
    struct sfn_engine *eng = sfn_engine_new(&loop, &opt);
    struct err err = ERR_INIT;
#ifndef SFN_CLI_LITE
    struct sfn_integrations *integ = sfn_integrations_register(eng, &loop, NULL, &err);
    if (integ == NULL) {
        fprintf(stderr, "sfn test-state: %s (the AWS integrations are off)\n", err.cause);
        err_clear(&err);
    }
#endif
    struct ts_out o = {NULL};
    if (sfn_test_state(eng, &req, on_test_state, &o, &err) != 0) {
        fprintf(stderr, "%s: %s\n", err.name, err.cause != NULL ? err.cause : "");
        err_clear(&err);
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (o.resp != NULL) {
        json_dumpf(o.resp, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        const char *st = json_string_value(json_object_get(o.resp, "status"));
        rc = strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "CAUGHT_ERROR") == 0 ? 0 : 1;
        json_decref(o.resp);
    }
    sfn_engine_free(eng);
#ifndef SFN_CLI_LITE
    sfn_integrations_free(integ);
#endif
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
out:
    json_decref(def);
    json_decref(input);
    json_decref(mock);
    return rc;
}

/* ---- sfn test ---- */

struct tcase {
    struct suite *s;
    const char *name;     /* borrowed from the suite document */
    const char *test_case;
    json_t *input;        /* borrowed */
    json_t *expect;       /* borrowed */
    struct sfn_execution *ex;
    uint64_t t0, ns;
    bool done, passed;
    struct buf why;       /* the failure's readable diff */
};

struct suite {
    const char *path;
    json_t *doc;          /* the suite (our reference) */
    char *machine_name;
    struct tcase *cases;
    size_t n;
    size_t passed;
    bool verbose;
};

static char *compact(const json_t *v)
{
    return v != NULL ? json_compact(v) : xstrdup("(nothing)");
}

/* Appends "  at PATH: expected X, got Y" lines for each difference between `want` and `got`;
 * `partial`: objects of `want` need only be contained in `got`. Returns the number of lines. */
static int json_diff(const json_t *want, const json_t *got, const char *path, bool partial,
                     struct buf *b)
{
    if (json_is_object(want) && json_is_object(got)) {
        int n = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            char *sub = xasprintf("%s.%s", path, k);
            json_t *g = json_object_get(got, k);
            if (g == NULL) {
                char *w = compact(v);
                buf_printf(b, "      %s: expected %s, got nothing (no such member)\n", sub, w);
                free(w);
                n++;
            } else {
                n += json_diff(v, g, sub, partial, b);
            }
            free(sub);
        }
        if (!partial) {
            json_object_foreach((json_t *)got, k, v)
            {
                if (json_object_get(want, k) == NULL) {
                    char *g = compact(v);
                    buf_printf(b, "      %s.%s: unexpected member (value %s)\n", path, k, g);
                    free(g);
                    n++;
                }
            }
        }
        return n;
    }
    if (json_is_array(want) && json_is_array(got) &&
        json_array_size(want) == json_array_size(got)) {
        int n = 0;
        for (size_t i = 0; i < json_array_size(want); i++) {
            char *sub = xasprintf("%s[%zu]", path, i);
            n += json_diff(json_array_get(want, i), json_array_get(got, i), sub, partial, b);
            free(sub);
        }
        return n;
    }
    if (json_equal((json_t *)want, (json_t *)got))
        return 0;
    char *w = compact(want);
    char *g = compact(got);
    buf_printf(b, "      %s: expected %s, got %s\n", path, w, g);
    free(w);
    free(g);
    return 1;
}

static void expect_string(struct tcase *c, const char *what, const char *want, const char *got)
{
    if (want == NULL)
        return;
    if (got != NULL && strcmp(want, got) == 0)
        return;
    if (got != NULL)
        buf_printf(&c->why, "      %s: expected \"%s\", got \"%s\"\n", what, want, got);
    else
        buf_printf(&c->why, "      %s: expected \"%s\", got none\n", what, want);
}

/* Every state entered, in history order (new array). */
static json_t *path_of(struct sfn_execution *ex)
{
    json_t *p = json_array();
    size_t n = sfn_execution_history_size(ex);
    for (size_t i = 0; i < n; i++) {
        const char *t = sfn_execution_event_type(ex, i);
        size_t l = strlen(t);
        if (l <= 12 || strcmp(t + l - 12, "StateEntered") != 0)
            continue;
        json_t *e = sfn_execution_event(ex, i, false);
        json_t *d = json_object_get(e, "stateEnteredEventDetails");
        json_array_append(p, json_object_get(d, "name"));
        json_decref(e);
    }
    return p;
}

static void check_path(struct tcase *c, json_t *want, json_t *got)
{
    if (want == NULL || json_equal(want, got))
        return;
    char *w = compact(want);
    char *g = compact(got);
    buf_printf(&c->why, "      path: expected %s\n            got      %s\n", w, g);
    free(w);
    free(g);
    size_t i = 0;
    while (i < json_array_size(want) && i < json_array_size(got) &&
           json_equal(json_array_get(want, i), json_array_get(got, i)))
        i++;
    if (i < json_array_size(want) && i < json_array_size(got))
        buf_printf(&c->why, "            first difference at state %zu: expected \"%s\", got \"%s\"\n",
                   i + 1, json_string_value(json_array_get(want, i)),
                   json_string_value(json_array_get(got, i)));
    else if (i < json_array_size(want))
        buf_printf(&c->why, "            the execution stopped after state %zu (\"%s\" was not entered)\n",
                   i, json_string_value(json_array_get(want, i)));
    else
        buf_printf(&c->why, "            states entered after the expected path: from \"%s\"\n",
                   json_string_value(json_array_get(got, i)));
}

static void on_case_done(struct sfn_execution *ex, void *arg)
{
    struct tcase *c = arg;
    c->ns = uv_hrtime() - c->t0;
    c->done = true;
    json_t *x = c->expect;
    enum sfn_status st = sfn_execution_status(ex);
    const char *want_status = json_string_value(json_object_get(x, "status"));
    expect_string(c, "status", want_status != NULL ? want_status : "SUCCEEDED",
                  sfn_status_name(st));
    const struct err *e = sfn_execution_error(ex);
    expect_string(c, "error", json_string_value(json_object_get(x, "error")),
                  e->set ? e->name : NULL);
    expect_string(c, "cause", json_string_value(json_object_get(x, "cause")),
                  e->set ? e->cause : NULL);
    json_t *out = sfn_execution_output(ex);
    json_t *want_out = json_object_get(x, "output");
    if (want_out != NULL && !json_equal(want_out, out)) {
        char *w = compact(want_out);
        char *g = compact(out);
        buf_printf(&c->why, "      output: expected %s\n              got      %s\n", w, g);
        free(w);
        free(g);
        if (out != NULL)
            json_diff(want_out, out, "  output$", false, &c->why);
    }
    json_t *contains = json_object_get(x, "outputContains");
    if (contains != NULL) {
        if (out == NULL)
            buf_printf(&c->why, "      outputContains: the execution has no output (%s)\n",
                       sfn_status_name(st));
        else
            json_diff(contains, out, "outputContains $", true, &c->why);
    }
    json_t *want_path = json_object_get(x, "path");
    if (want_path != NULL) {
        json_t *p = path_of(ex);
        check_path(c, want_path, p);
        json_decref(p);
    }
    c->passed = c->why.len == 0;
    if (c->passed)
        c->s->passed++;
    printf("%s  %s (test case %s, %.1f ms)\n", c->passed ? "PASS" : "FAIL", c->name,
           c->test_case != NULL ? c->test_case : "none", (double)c->ns / 1e6);
    if (!c->passed)
        fwrite(c->why.data, 1, c->why.len, stdout);
    fflush(stdout);
}

static int suite_error(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int suite_error(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sfn test: suite '%s': ", path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* A path of the suite, relative to the suite file's directory (new string). */
static char *suite_relative(const char *suite_path, const char *p)
{
    if (p[0] == '/')
        return xstrdup(p);
    char *copy = xstrdup(suite_path);
    char *dir = dirname(copy);
    char *full = xasprintf("%s/%s", dir, p);
    free(copy);
    return full;
}

static const char *const suite_keys[] = {"definition", "mockConfig", "stateMachineName",
                                         "type", "cases", "comment", NULL};
static const char *const case_keys[] = {"name", "testCase", "input", "expect", "comment", NULL};
static const char *const expect_keys[] = {"status", "output", "outputContains", "error",
                                          "cause", "path", NULL};

static const char *unknown_key(json_t *o, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i = 0;
        while (keys[i] != NULL && strcmp(keys[i], k) != 0)
            i++;
        if (keys[i] == NULL)
            return k;
    }
    return NULL;
}

/* Reads and checks a suite. 0, or -1 after printing why. */
static int suite_load(struct suite *s, const char *path)
{
    s->path = path;
    s->doc = load_json_file("the suite", path);
    if (s->doc == NULL)
        return -1;
    if (!json_is_object(s->doc))
        return suite_error(path, "not a JSON object");
    const char *bad = unknown_key(s->doc, suite_keys);
    if (bad != NULL)
        return suite_error(path, "unknown member '%s' (members: definition, mockConfig, "
                                 "stateMachineName, type, cases, comment)", bad);
    if (!json_is_string(json_object_get(s->doc, "definition")))
        return suite_error(path, "'definition' (the path of the state machine) is required");
    json_t *cases = json_object_get(s->doc, "cases");
    if (!json_is_array(cases) || json_array_size(cases) == 0)
        return suite_error(path, "'cases' must be a non-empty array");
    s->n = json_array_size(cases);
    s->cases = xcalloc(s->n, sizeof(*s->cases));
    for (size_t i = 0; i < s->n; i++) {
        json_t *c = json_array_get(cases, i);
        struct tcase *tc = &s->cases[i];
        tc->s = s;
        if (!json_is_object(c))
            return suite_error(path, "cases[%zu] is not an object", i);
        bad = unknown_key(c, case_keys);
        if (bad != NULL)
            return suite_error(path, "cases[%zu]: unknown member '%s' (members: name, testCase, "
                                     "input, expect, comment)", i, bad);
        tc->name = json_string_value(json_object_get(c, "name"));
        if (tc->name == NULL)
            return suite_error(path, "cases[%zu]: 'name' (a string) is required", i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->cases[j].name, tc->name) == 0)
                return suite_error(path, "two cases are named '%s'", tc->name);
        }
        json_t *t = json_object_get(c, "testCase");
        if (t != NULL && !json_is_string(t))
            return suite_error(path, "case '%s': 'testCase' must be a string", tc->name);
        tc->test_case = json_string_value(t);
        tc->input = json_object_get(c, "input");
        tc->expect = json_object_get(c, "expect");
        if (!json_is_object(tc->expect))
            return suite_error(path, "case '%s': 'expect' (an object) is required", tc->name);
        bad = unknown_key(tc->expect, expect_keys);
        if (bad != NULL)
            return suite_error(path, "case '%s': unknown expectation '%s' (expectations: "
                                     "status, output, outputContains, error, cause, path)",
                               tc->name, bad);
        json_t *p = json_object_get(tc->expect, "path");
        if (p != NULL && !json_is_array(p))
            return suite_error(path, "case '%s': 'path' must be an array of state names",
                               tc->name);
        if (tc->test_case != NULL && json_object_get(s->doc, "mockConfig") == NULL)
            return suite_error(path, "case '%s' names test case '%s' but the suite has no "
                                     "'mockConfig'", tc->name, tc->test_case);
    }
    return 0;
}

static void xml_escape(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static int write_junit(const char *file, struct suite *suites, size_t n)
{
    FILE *f = fopen(file, "w");
    if (f == NULL) {
        fprintf(stderr, "sfn test: cannot write '%s': %s\n", file, strerror(errno));
        return -1;
    }
    size_t tests = 0;
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        tests += suites[i].n;
        failures += suites[i].n - suites[i].passed;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n", tests, failures);
    for (size_t i = 0; i < n; i++) {
        struct suite *s = &suites[i];
        double total = 0;
        for (size_t j = 0; j < s->n; j++)
            total += (double)s->cases[j].ns / 1e9;
        fprintf(f, "  <testsuite name=\"");
        xml_escape(f, s->path);
        fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\" time=\"%.6f\">\n",
                s->n, s->n - s->passed, total);
        for (size_t j = 0; j < s->n; j++) {
            struct tcase *c = &s->cases[j];
            fprintf(f, "    <testcase classname=\"");
            xml_escape(f, s->machine_name);
            fprintf(f, "\" name=\"");
            xml_escape(f, c->name);
            fprintf(f, "\" time=\"%.6f\"", (double)c->ns / 1e9);
            if (c->passed) {
                fprintf(f, "/>\n");
                continue;
            }
            buf_putc(&c->why, '\0');
            /* the message: the first difference, on one line */
            const char *first = c->why.data + strspn(c->why.data, " ");
            char *msg = xstrndup(first, strcspn(first, "\n"));
            fprintf(f, ">\n      <failure message=\"");
            xml_escape(f, msg);
            free(msg);
            fprintf(f, "\" type=\"AssertionError\">");
            xml_escape(f, c->why.data);
            fprintf(f, "</failure>\n    </testcase>\n");
        }
        fprintf(f, "  </testsuite>\n");
    }
    fprintf(f, "</testsuites>\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* Runs the cases of one suite concurrently in one engine. 0 when it ran, -1 on a bad suite
 * (after printing why). */
static int suite_run(struct suite *s)
{
    const char *def_rel = json_string_value(json_object_get(s->doc, "definition"));
    char *def_path = suite_relative(s->path, def_rel);
    size_t def_len;
    char *def = cli_read_file(def_path, &def_len);
    if (def == NULL) {
        free(def_path);
        return suite_error(s->path, "cannot read its definition");
    }
    const char *given = json_string_value(json_object_get(s->doc, "stateMachineName"));
    if (given != NULL) {
        s->machine_name = xstrdup(given);
    } else {
        const char *base = strrchr(def_path, '/');
        base = base != NULL ? base + 1 : def_path;
        size_t n = strcspn(base, ".");
        s->machine_name = n > 0 ? xstrndup(base, n) : xstrdup("StateMachine");
    }
    free(def_path);
    struct sfn_mock *mock = NULL;
    struct err err = ERR_INIT;
    const char *mock_rel = json_string_value(json_object_get(s->doc, "mockConfig"));
    if (mock_rel != NULL) {
        char *mp = suite_relative(s->path, mock_rel);
        mock = sfn_mock_load(mp, &err);
        free(mp);
        if (mock == NULL) {
            suite_error(s->path, "%s", err.cause);
            err_clear(&err);
            free(def);
            return -1;
        }
        for (size_t i = 0; i < s->n; i++) {
            const char *tc = s->cases[i].test_case;
            if (tc != NULL && !sfn_mock_has_test_case(mock, s->machine_name, tc)) {
                suite_error(s->path,
                            "case '%s': the mock config has no test case '%s' for state "
                            "machine '%s' (StateMachines.%s.TestCases.%s)",
                            s->cases[i].name, tc, s->machine_name, s->machine_name, tc);
                sfn_mock_free(mock);
                free(def);
                return -1;
            }
        }
    }
    const char *type_s = json_string_value(json_object_get(s->doc, "type"));
    enum sfn_machine_type type =
        type_s != NULL && strcmp(type_s, "EXPRESS") == 0 ? SFN_EXPRESS : SFN_STANDARD;

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sfn_engine_options opt = {true, -1, 1, NULL, NULL, 0};
    struct sfn_engine *eng = sfn_engine_new(&loop, &opt);
    int rc = 0;
    /* hermetic: a Task the case's test case does not mock fails instead of calling AWS */
    struct sfn_mock *empty = NULL;
    if (mock == NULL) {
        empty = sfn_mock_parse("{\"StateMachines\":{},\"MockedResponses\":{}}", 38,
                               "no mock config", &err);
    }
    if (sfn_mock_attach(eng, mock != NULL ? mock : empty, NULL, NULL, SFN_MOCK_ONLY, &err) != 0) {
        suite_error(s->path, "%s", err.cause);
        err_clear(&err);
        rc = -1;
    }
    struct sfn_machine *m =
        rc == 0 ? sfn_machine_compile(eng, def, def_len, s->machine_name, type, &err) : NULL;
    if (rc == 0 && m == NULL) {
        suite_error(s->path, "its definition is invalid: %s", err.cause);
        err_clear(&err);
        rc = -1;
    }
    printf("suite %s: %zu cases, state machine %s\n", s->path, s->n, s->machine_name);
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        struct tcase *c = &s->cases[i];
        char ex_name[96];
        snprintf(ex_name, sizeof(ex_name), "case-%zu", i + 1);
        if (c->test_case != NULL) {
            const char *marn = sfn_machine_arn(m);
            const char *colon = strstr(marn, ":stateMachine:");
            char *arn = xasprintf("%.*s:execution:%s:%s", (int)(colon - marn), marn, colon + 14,
                                  ex_name);
            int b = sfn_mock_bind_execution(mock, arn, s->machine_name, c->test_case, &err);
            free(arn);
            if (b != 0) {
                suite_error(s->path, "%s", err.cause);
                err_clear(&err);
                rc = -1;
                break;
            }
        }
        struct sfn_execution_options eo = {ex_name, NULL, on_case_done, NULL, c};
        c->t0 = uv_hrtime();
        c->ex = sfn_execution_start(eng, m, c->input, &eo, &err);
        if (c->ex == NULL) {
            buf_printf(&c->why, "      the execution did not start: %s: %s\n", err.name,
                       err.cause != NULL ? err.cause : "");
            err_clear(&err);
            c->done = true;
            printf("FAIL  %s\n", c->name);
            fwrite(c->why.data, 1, c->why.len, stdout);
        }
    }
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < s->n; i++) {
        if (s->cases[i].ex != NULL)
            sfn_execution_free(s->cases[i].ex);
    }
    sfn_machine_free(m);
    sfn_engine_free(eng);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    sfn_mock_free(mock);
    sfn_mock_free(empty);
    free(def);
    return rc;
}

static int test_usage(const char *msg)
{
    fprintf(stderr, "sfn test: %s\nusage: sfn test SUITE.json... [--junit FILE]\n", msg);
    return 2;
}

int cmd_test(int argc, char **argv)
{
    const char *junit = NULL;
    size_t n = 0;
    struct suite *suites = xcalloc((size_t)argc, sizeof(*suites));
    const char **paths = xcalloc((size_t)argc, sizeof(*paths));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--junit") == 0 && i + 1 < argc) {
            junit = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            free(suites);
            free(paths);
            char msg[256];
            snprintf(msg, sizeof(msg), "unknown or incomplete option '%s'", argv[i]);
            return test_usage(msg);
        } else {
            paths[n++] = argv[i];
        }
    }
    if (n == 0) {
        free(suites);
        free(paths);
        return test_usage("no suite given");
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (suite_load(&suites[i], paths[i]) != 0)
            rc = 2;
    }
    uint64_t t0 = uv_hrtime();
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (suite_run(&suites[i]) != 0)
            rc = 2;
    }
    size_t total = 0;
    size_t passed = 0;
    for (size_t i = 0; i < n; i++) {
        total += suites[i].n;
        passed += suites[i].passed;
    }
    if (rc == 0) {
        printf("%zu cases, %zu passed, %zu failed (%zu suite%s, %.1f ms)\n", total, passed,
               total - passed, n, n == 1 ? "" : "s", (double)(uv_hrtime() - t0) / 1e6);
        if (junit != NULL && write_junit(junit, suites, n) != 0)
            rc = 2;
        else if (passed != total)
            rc = 1;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < suites[i].n; j++)
            buf_release(&suites[i].cases[j].why);
        free(suites[i].cases);
        free(suites[i].machine_name);
        json_decref(suites[i].doc);
    }
    free(suites);
    free(paths);
    return rc;
}
