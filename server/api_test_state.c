/* server/api_test_state.c - TestState (api.md 9.5): one state run in isolation.
 *
 * Each call runs on an engine of its own (on sfnd's loop, with no store and the virtual
 * clock), so that nothing of it is recorded and no execution or machine of the account
 * changes. A Task without a mock goes to the resources sfnd's engine serves (activities,
 * .waitForTaskToken callbacks) through a forwarding handler. The engine is freed from the
 * loop once the answer has left. Like StartSyncExecution, TestState is sent by botocore to
 * a `sync-` host (api.md 1.2): sfnd never looks at the Host header. */
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/xalloc.h"

struct test_call {
    struct api *api;
    struct server_req *req;  /* NULL once the connection went away */
    struct sfn_engine *eng;  /* the call's own engine */
    uv_timer_t reaper;       /* frees the engine from the loop */
    json_t *def, *input, *mock; /* the request's parsed values (ours) */
    bool answered;           /* the engine has given its response */
    const struct sfn_resource_ops *fwd; /* the handler an unmocked Task went to */
    void *fwd_arg;
    struct test_call *next, *prev; /* calls in flight (api_test_state_shutdown) */
};

static struct test_call *calls;

static void call_unlink(struct test_call *tc)
{
    if (tc->prev != NULL)
        tc->prev->next = tc->next;
    else if (calls == tc)
        calls = tc->next;
    if (tc->next != NULL)
        tc->next->prev = tc->prev;
    tc->next = tc->prev = NULL;
}

/* ---- unmocked Tasks: forwarded to sfnd's engine's handlers ---- */

static int on_forward_start(struct sfn_task *t, void *arg, struct err *err)
{
    struct test_call *tc = arg;
    const struct sfn_resource_ops *ops;
    void *oarg;
    if (sfn_engine_resource_next(tc->api->eng, sfn_task_resource(t), NULL, &ops, &oarg) != 0)
        return err_set(err, "States.Runtime",
                       "TestState: no integration serves resource '%s' in sfnd (give a mock)",
                       sfn_task_resource(t));
    tc->fwd = ops;
    tc->fwd_arg = oarg;
    return ops->start(t, oarg, err);
}

/* The task's resource is not readable any more when it is cancelled: the handler that
 * started it is remembered (one task at a time: the state runs once). */
static void on_forward_cancel(struct sfn_task *t, void *arg)
{
    struct test_call *tc = arg;
    if (tc->fwd != NULL && tc->fwd->cancel != NULL)
        tc->fwd->cancel(t, tc->fwd_arg);
}

static int on_forward_check(struct sfn_task *t, void *arg, struct err *err)
{
    struct test_call *tc = arg;
    const struct sfn_resource_ops *ops;
    void *oarg;
    if (sfn_engine_resource_next(tc->api->eng, sfn_task_resource(t), NULL, &ops, &oarg) == 0 &&
        ops->check != NULL)
        return ops->check(t, oarg, err);
    return 0;
}

static const struct sfn_resource_ops forward_ops = {on_forward_start, on_forward_cancel, NULL,
                                                    NULL, on_forward_check};

/* ---- the call ---- */

static void on_reaper_closed(uv_handle_t *h)
{
    struct test_call *tc = h->data;
    call_unlink(tc);
    json_decref(tc->def);
    json_decref(tc->input);
    json_decref(tc->mock);
    free(tc);
}

static void on_reap(uv_timer_t *timer)
{
    struct test_call *tc = timer->data;
    sfn_engine_free(tc->eng);
    uv_close((uv_handle_t *)&tc->reaper, on_reaper_closed);
}

static void on_gone(void *arg)
{
    struct test_call *tc = arg;
    tc->req = NULL;
}

static void on_response(json_t *resp, void *arg)
{
    struct test_call *tc = arg;
    tc->answered = true;
    if (tc->req != NULL) {
        struct call c = {tc->api, tc->req, NULL};
        call_ok(&c, json_incref(resp), false);
        tc->req = NULL;
    }
    uv_timer_start(&tc->reaper, on_reap, 0, 0);
}

/* A member holding JSON text: 0 with *out (new reference, NULL when absent), or -1 after
 * answering. */
static int json_member(struct call *c, const char *member, json_t **out)
{
    *out = NULL;
    const char *text = call_str(c, member);
    if (text == NULL)
        return 0;
    *out = json_loads(text, JSON_DECODE_ANY, NULL);
    if (*out == NULL)
        return call_error(c, member[0] == 'd' ? "InvalidDefinition" : "InvalidExecutionInput",
                          member[0] == 'd' ? "Invalid State Machine Definition: '%s is not "
                                             "valid JSON'"
                                           : "Invalid %s: not valid JSON",
                          member);
    return 0;
}

/* The member checks of the model (api.md Appendix A, TestState). 0, or -1 after answering. */
static int check_request(struct call *c)
{
    static const struct {
        const char *name;
        json_type type;
        size_t max;
    } members[] = {
        {"definition", JSON_STRING, 1048576}, {"roleArn", JSON_STRING, 256},
        {"input", JSON_STRING, 262144},       {"inspectionLevel", JSON_STRING, 5},
        {"revealSecrets", JSON_TRUE, 0},      {"variables", JSON_STRING, 262144},
        {"stateName", JSON_STRING, 80},       {"mock", JSON_OBJECT, 0},
        {"context", JSON_STRING, 262144},     {"stateConfiguration", JSON_OBJECT, 0},
    };
    const char *key;
    json_t *v;
    json_object_foreach(c->in, key, v)
    {
        size_t i = 0;
        while (i < sizeof(members) / sizeof(members[0]) && strcmp(members[i].name, key) != 0)
            i++;
        if (i == sizeof(members) / sizeof(members[0]))
            continue; /* unknown members are ignored, as AWS does */
        bool ok = members[i].type == JSON_TRUE ? json_is_boolean(v)
                                               : json_typeof(v) == members[i].type;
        if (!ok)
            return call_error(c, "SerializationException",
                              "the member '%s' has the wrong type", key);
        if (json_is_string(v) && members[i].max > 0 && json_string_length(v) > members[i].max)
            return call_error(c, "ValidationException",
                              "1 validation error detected: Value at '%s' failed to satisfy "
                              "constraint: Member must have length less than or equal to %zu",
                              key, members[i].max);
    }
    if (call_str(c, "definition") == NULL)
        return call_error(c, "ValidationException",
                          "1 validation error detected: Value null at 'definition' failed to "
                          "satisfy constraint: Member must not be null");
    const char *level = call_str(c, "inspectionLevel");
    if (level != NULL && strcmp(level, "INFO") != 0 && strcmp(level, "DEBUG") != 0 &&
        strcmp(level, "TRACE") != 0)
        return call_error(c, "ValidationException",
                          "1 validation error detected: Value '%s' at 'inspectionLevel' failed "
                          "to satisfy constraint: Member must satisfy enum value set: [INFO, "
                          "DEBUG, TRACE]",
                          level);
    static const char *const unsupported[] = {"variables", "context"};
    for (size_t i = 0; i < 2; i++) {
        if (json_object_get(c->in, unsupported[i]) != NULL)
            return call_error(c, "ValidationException",
                              "TestState's '%s' member is not supported by sfnd", unsupported[i]);
    }
    json_t *cfg = json_object_get(c->in, "stateConfiguration");
    json_object_foreach(cfg, key, v)
    {
        if (strcmp(key, "retrierRetryCount") != 0)
            return call_error(c, "ValidationException",
                              "TestState's stateConfiguration.%s is not supported by sfnd "
                              "(only retrierRetryCount)",
                              key);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return call_error(c, "ValidationException",
                              "stateConfiguration.retrierRetryCount must be a non-negative "
                              "integer");
    }
    return 0;
}

void op_test_state(struct call *c)
{
    if (check_request(c) != 0)
        return;
    struct test_call *tc = xcalloc(1, sizeof(*tc));
    tc->api = c->api;
    if (json_member(c, "definition", &tc->def) != 0 || json_member(c, "input", &tc->input) != 0) {
        json_decref(tc->def);
        free(tc);
        return;
    }
    tc->mock = json_incref(json_object_get(c->in, "mock"));
    struct sfn_test_state_request req = {0};
    req.definition = tc->def;
    req.state_name = call_str(c, "stateName");
    req.input = tc->input;
    req.inspection_level = call_str(c, "inspectionLevel");
    req.role_arn = call_str(c, "roleArn");
    req.has_role = req.role_arn != NULL;
    req.mock = tc->mock;
    req.retrier_retry_count = (int)json_integer_value(
        json_object_get(json_object_get(c->in, "stateConfiguration"), "retrierRetryCount"));
    struct sfn_engine_options opt = {true, -1, 0, c->api->region, c->api->account, 0};
    tc->eng = sfn_engine_new(c->api->loop, &opt);
    struct err err = ERR_INIT;
    if (sfn_engine_register_resource(tc->eng, "*", &forward_ops, tc, &err) != 0 ||
        sfn_test_state(tc->eng, &req, on_response, tc, &err) != 0) {
        call_error(c, err.name, "%s", err.cause != NULL ? err.cause : "");
        err_clear(&err);
        sfn_engine_free(tc->eng);
        json_decref(tc->def);
        json_decref(tc->input);
        json_decref(tc->mock);
        free(tc);
        return;
    }
    tc->req = c->req;
    uv_timer_init(c->api->loop, &tc->reaper);
    tc->reaper.data = tc;
    server_req_defer(c->req, on_gone, tc);
    tc->next = calls;
    if (calls != NULL)
        calls->prev = tc;
    calls = tc;
}

void api_test_state_shutdown(struct api *api)
{
    struct test_call *tc = calls;
    while (tc != NULL) {
        struct test_call *next = tc->next;
        if (tc->api == api && !tc->answered) {
            tc->answered = true;
            if (tc->req != NULL) {
                struct call c = {api, tc->req, NULL};
                struct err err = ERR_INIT;
                err_set(&err, "InternalFailure", "sfnd is stopping: the TestState was abandoned");
                call_fail(&c, &err);
                err_clear(&err);
                tc->req = NULL;
            }
            sfn_test_state_abandon(tc->eng);
            uv_timer_start(&tc->reaper, on_reap, 0, 0); /* frees the engine, then tc */
        }
        tc = next;
    }
}
