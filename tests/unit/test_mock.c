/* tests/unit/test_mock.c - the mocks through the public API (include/sfn.h), as an embedder
 * uses them: the mock is asked before a handler registered after it, an unmocked state goes
 * to that handler, invocations count per execution, a binding per execution or per machine,
 * SFN_MOCK_ONLY, parse errors; the loop closes clean. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "sfn.h"
#include "tests/unit/testlib.h"

static const char mock_text[] =
    "{\"StateMachines\": {\"M\": {\"TestCases\": {\"T\": {\"A\": \"R\"}}}},"
    " \"MockedResponses\": {\"R\": {\"0\": {\"Return\": 1}, \"1\": {\"Throw\": {\"Error\": \"E\"}}}}}";

static const char def[] =
    "{\"StartAt\": \"A\", \"States\": {"
    " \"A\": {\"Type\": \"Task\", \"Resource\": \"arn:aws:states:::lambda:invoke\","
    "        \"ResultPath\": \"$.a\", \"Next\": \"B\"},"
    " \"B\": {\"Type\": \"Task\", \"Resource\": \"arn:aws:states:::lambda:invoke\","
    "        \"ResultPath\": \"$.b\", \"End\": true}}}";

static int real_calls;

static int on_real_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)arg;
    (void)err;
    real_calls++;
    json_t *out = json_pack("{s:b}", "real", 1);
    sfn_task_succeed(t, out);
    json_decref(out);
    return 0;
}

static const struct sfn_resource_ops real_ops = {.start = on_real_start};

static int cancelled;

static int on_hold_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)t;
    (void)arg;
    (void)err;
    return 0; /* never completes: stays in flight */
}

static void on_hold_cancel(struct sfn_task *t, void *arg)
{
    (void)t;
    (void)arg;
    cancelled++;
}

static const struct sfn_resource_ops hold_ops = {.start = on_hold_start, .cancel = on_hold_cancel};

/* sfnd registers resources while tasks are in flight (callback resources as machines are
 * created, and the mocks wrap them): the attempt's handler must survive those registrations
 * (it was a pointer into an array that registering reallocated). */
static void registrations_while_in_flight(struct tl *t)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct err err = ERR_INIT;
    struct sfn_engine *eng = sfn_engine_new(&loop, NULL);
    sfn_engine_register_resource(eng, "arn:aws:states:::lambda:invoke.waitForTaskToken", &hold_ops, NULL, &err);
    static const char d[] = "{\"StartAt\": \"H\", \"States\": {\"H\": {\"Type\": \"Task\", "
                            "\"Resource\": \"arn:aws:states:::lambda:invoke.waitForTaskToken\", \"End\": true}}}";
    struct sfn_machine *m = sfn_machine_compile(eng, d, strlen(d), "H", SFN_STANDARD, &err);
    if (m == NULL) {
        tl_check(t, false, "registrations while in flight", "%s", err.cause);
        err_clear(&err);
        sfn_engine_free(eng);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return;
    }
    struct sfn_execution *ex = sfn_execution_start(eng, m, NULL, NULL, &err);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 100; i++) {
        char pat[64];
        snprintf(pat, sizeof(pat), "arn:aws:states:::sqs:other%d", i);
        sfn_engine_register_resource(eng, pat, &hold_ops, NULL, &err);
    }
    sfn_execution_stop(ex, NULL, NULL);
    tl_check(t, cancelled == 1, "registrations while in flight", "cancel called %d times",
             cancelled);
    sfn_execution_free(ex);
    sfn_machine_free(m);
    sfn_engine_free(eng);
    uv_run(&loop, UV_RUN_DEFAULT);
    tl_check(t, uv_loop_close(&loop) == 0, "registrations while in flight", "handles left");
}

static void on_done(struct sfn_execution *ex, void *arg)
{
    (void)ex;
    (void)arg;
}

/* Runs one execution; bound to test case T when `bind`. Returns its compact output or
 * "ERROR:cause" (caller frees). */
static char *run(uv_loop_t *loop, struct sfn_engine *eng, struct sfn_machine *m,
                 struct sfn_mock *mock, bool bind)
{
    struct err err = ERR_INIT;
    struct sfn_execution_options eo = {NULL, NULL, on_done, NULL, NULL};
    struct sfn_execution *ex = sfn_execution_start(eng, m, NULL, &eo, &err);
    if (bind)
        sfn_mock_bind_execution(mock, sfn_execution_arn(ex), "M", "T", &err);
    uv_run(loop, UV_RUN_DEFAULT);
    char *s;
    if (sfn_execution_status(ex) == SFN_SUCCEEDED) {
        s = json_dumps(sfn_execution_output(ex), JSON_COMPACT | JSON_SORT_KEYS);
    } else {
        const struct err *e = sfn_execution_error(ex);
        size_t n = strlen(e->name) + (e->cause ? strlen(e->cause) : 0) + 8;
        s = malloc(n);
        snprintf(s, n, "%s:%s", e->name, e->cause ? e->cause : "");
    }
    sfn_execution_free(ex);
    return s;
}

static void expect(struct tl *t, const char *what, char *got, const char *want)
{
    tl_check(t, strncmp(got, want, strlen(want)) == 0, what, "got '%s', want '%s'", got, want);
    free(got);
}

int main(void)
{
    struct tl t = {0, 0};
    struct err err = ERR_INIT;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sfn_engine_options opt = {true, -1, 1, NULL, NULL, 0};
    struct sfn_engine *eng = sfn_engine_new(&loop, &opt);
    struct sfn_mock *mock = sfn_mock_parse(mock_text, strlen(mock_text), "test", &err);
    tl_check(&t, mock != NULL, "parse", "%s", err.cause ? err.cause : "");
    tl_check(&t, sfn_mock_attach(eng, mock, NULL, NULL, 0, &err) == 0, "attach", "failed");
    /* registered after the mock: the mock is still asked first */
    sfn_engine_register_resource(eng, "arn:aws:states:::lambda:invoke", &real_ops, NULL, &err);
    struct sfn_machine *m = sfn_machine_compile(eng, def, strlen(def), "M", SFN_STANDARD, &err);

    expect(&t, "bound execution: A mocked, B real", run(&loop, eng, m, mock, true),
           "{\"a\":1,\"b\":{\"real\":true}}");
    tl_check(&t, real_calls == 1, "real handler calls", "%d, want 1", real_calls);
    expect(&t, "counts are per execution: invocation 0 again", run(&loop, eng, m, mock, true),
           "{\"a\":1,\"b\":{\"real\":true}}");
    expect(&t, "unbound execution: not mocked", run(&loop, eng, m, mock, false),
           "{\"a\":{\"real\":true},\"b\":{\"real\":true}}");
    tl_check(&t, sfn_mock_attach(eng, mock, "M", "T", SFN_MOCK_ONLY, &err) == 0, "bind machine",
             "failed");
    expect(&t, "machine binding + SFN_MOCK_ONLY: B refused", run(&loop, eng, m, mock, false),
           "States.Runtime:state 'B' is not mocked in test case 'T' of state machine 'M'");
    tl_check(&t, sfn_mock_attach(eng, mock, "M", "Nope", 0, &err) == -1 &&
                     strstr(err.cause, "no test case 'Nope' for state machine 'M'") != NULL,
             "unknown test case", "%s", err.cause ? err.cause : "(none)");
    err_clear(&err);

    static const char *const bad[][2] = {
        {"[]", "test: must be an object with StateMachines and MockedResponses"},
        {"{\"StateMachines\": {}}", "test: missing MockedResponses"},
        {"{\"StateMachines\": {\"M\": {}}, \"MockedResponses\": {}}",
         "test: StateMachines.M: must be an object with only TestCases"},
        {"{\"StateMachines\": {}, \"MockedResponses\": {\"R\": {}}}",
         "test: MockedResponses.R: must be a non-empty object of invocations"},
        {"{\"StateMachines\": {}, \"MockedResponses\": {\"R\": {\"0\": {}}}}",
         "test: MockedResponses.R.0: must have exactly one of Return and Throw"},
        {"{\"StateMachines\": {}, \"MockedResponses\": {\"R\": {\"1\": {\"Return\": 1}}}}",
         "test: MockedResponses.R: invocation 0 is missing"},
        {"{\"StateMachines\": {}, \"MockedResponses\": {\"R\": {\"0-\": {\"Return\": 1}}}}",
         "test: MockedResponses.R: '0-' is not an invocation index or range"},
        {"{\"StateMachines\": {}, \"MockedResponses\": {\"R\": {\"0\": {\"Return\": 1, "
         "\"Wait\": 1}}}}",
         "test: MockedResponses.R.0: unknown field 'Wait' (Return or Throw)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sfn_mock *b = sfn_mock_parse(bad[i][0], strlen(bad[i][0]), "test", &err);
        tl_check(&t, b == NULL && strcmp(err.name, "MockConfigInvalid") == 0 &&
                         err.cause != NULL && strncmp(err.cause, bad[i][1], strlen(bad[i][1])) == 0,
                 bad[i][0], "got '%s'", err.cause ? err.cause : "(none)");
        sfn_mock_free(b);
        err_clear(&err);
    }

    sfn_machine_free(m);
    sfn_engine_free(eng);
    uv_run(&loop, UV_RUN_DEFAULT);
    tl_check(&t, uv_loop_close(&loop) == 0, "loop", "handles left open");
    sfn_mock_free(mock);
    registrations_while_in_flight(&t);
    return tl_finish(&t);
}
