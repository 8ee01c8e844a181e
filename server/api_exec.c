/* server/api_exec.c - the execution operations of the API: StartExecution (api.md 6.1,
 * idempotent by name and input), DescribeExecution (6.3), StopExecution (6.4),
 * ListExecutions (6.5) and GetExecutionHistory (7.1). Replies that report a change
 * (a start, a stop) leave after the engine's commit of it; reads come from the store, so
 * they show only what is committed. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

/* A copy of a stored execution record. */
struct exec_copy {
    bool found;
    char *arn, *name, *machine_arn, *status, *error, *cause, *input, *output;
    int64_t start_ms, stop_ms;
    int64_t redrive_count, redrive_ms;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

static int on_exec(const struct sfn_store_execution *e, void *arg)
{
    struct exec_copy *x = arg;
    x->found = true;
    x->arn = dup_or_null(e->arn);
    x->name = dup_or_null(e->name);
    x->machine_arn = dup_or_null(e->machine_arn);
    x->status = dup_or_null(e->status);
    x->error = dup_or_null(e->error);
    x->cause = dup_or_null(e->cause);
    x->input = dup_or_null(e->input);
    x->output = dup_or_null(e->output);
    x->start_ms = e->start_ms;
    x->stop_ms = e->stop_ms;
    x->redrive_count = e->redrive_count;
    x->redrive_ms = e->redrive_ms;
    return 0;
}

static void exec_copy_release(struct exec_copy *x)
{
    free(x->arn);
    free(x->name);
    free(x->machine_arn);
    free(x->status);
    free(x->error);
    free(x->cause);
    free(x->input);
    free(x->output);
    memset(x, 0, sizeof(*x));
}

/* Reads execution `arn` from the store: 0 (x->found tells) or -1 answered. */
static int exec_read(struct call *c, const char *arn, struct exec_copy *x)
{
    struct err err = ERR_INIT;
    memset(x, 0, sizeof(*x));
    if (sfn_store_find_execution(c->api->st, arn, on_exec, x, &err) < 0) {
        call_fail(c, &err);
        err_clear(&err);
        return -1;
    }
    return 0;
}

/* Checks an execution ARN and reads it: 0 with x found, or -1 answered (InvalidArn,
 * ExecutionDoesNotExist). */
static int exec_find(struct call *c, const char *arn, struct exec_copy *x)
{
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "execution", &scratch, parts, &n) != 0)
        return -1;
    free(scratch);
    if (exec_read(c, arn, x) != 0)
        return -1;
    if (!x->found)
        return call_error(c, "ExecutionDoesNotExist", "Execution Does Not Exist: '%s'", arn);
    return 0;
}

/* Answers {"executionArn":arn,"startDate":api_time(start_ms)}, written without jansson. */
static void reply_started(struct call *c, const char *arn, int64_t start_ms, bool after_commit)
{
    struct buf *b = call_reply_buf(c);
    buf_puts(b, "{\"executionArn\":");
    json_string_append(b, arn, strlen(arn));
    buf_puts(b, ",\"startDate\":");
    json_real_append(b, (double)start_ms / 1000.0);
    buf_putc(b, '}');
    call_reply(c, after_commit);
}

json_t *api_start_input(struct call *c)
{
    json_t *v = json_object_get(c->in, "input");
    if (v == NULL)
        return json_object();
    if (json_string_length(v) == 0) {
        call_error(c, "InvalidExecutionInput",
                   "Invalid State Machine Execution Input: 'Invalid execution input.'");
        return NULL;
    }
    json_error_t jerr;
    json_t *input = json_loadb(json_string_value(v), json_string_length(v), JSON_DECODE_ANY,
                               &jerr);
    if (input == NULL)
        call_error(c, "InvalidExecutionInput", "Invalid State Machine Execution Input: '%s'",
                   jerr.text);
    return input;
}

/* api.md 6.1 step 5: a name already used. Returns 1 when it is free, else 0 (answered:
 * the original start when it runs with the same input, ExecutionAlreadyExists otherwise)
 * or -1 (answered). */
static int start_name_taken(struct call *c, const char *exec_arn, json_t *input)
{
    struct sfn_execution *ex = smap_get(&c->api->running, exec_arn);
    if (ex != NULL) {
        if (sfn_execution_status(ex) == SFN_RUNNING &&
            json_value_equal(input, sfn_execution_input(ex))) {
            /* its start may not be committed yet: answer after the commit too */
            reply_started(c, exec_arn, sfn_execution_start_ms(ex), true);
            return 0;
        }
        call_error(c, "ExecutionAlreadyExists", "Execution Already Exists: '%s'", exec_arn);
        return 0;
    }
    struct exec_copy x;
    if (exec_read(c, exec_arn, &x) != 0)
        return -1;
    if (!x.found)
        return 1;
    bool same = false;
    if (strcmp(x.status, "RUNNING") == 0 && x.input != NULL) {
        json_t *old = json_loads(x.input, JSON_DECODE_ANY, NULL);
        same = old != NULL && json_value_equal(input, old);
        json_decref(old);
    }
    if (same)
        reply_started(c, exec_arn, x.start_ms, false);
    else
        call_error(c, "ExecutionAlreadyExists", "Execution Already Exists: '%s'", exec_arn);
    exec_copy_release(&x);
    return 0;
}

void api_set_mock(struct api *api, struct sfn_mock *mock)
{
    api->mock = mock;
}

void op_start_execution(struct call *c)
{
    const char *arn = call_str(c, "stateMachineArn");
    const char *name = call_str(c, "name");
    /* Step Functions Local: "stateMachineArn#TestCaseName" runs a test case of the mocks */
    char test_case[256] = "";
    const char *hash = arn != NULL && c->api->mock != NULL ? strchr(arn, '#') : NULL;
    if (hash != NULL) {
        snprintf(test_case, sizeof(test_case), "%s", hash + 1);
        json_object_set_new(c->in, "stateMachineArn", json_stringn(arn, (size_t)(hash - arn)));
        arn = call_str(c, "stateMachineArn");
    }
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "stateMachine", &scratch, parts, &n) != 0)
        return;
    if (name != NULL && api_name_check(c, name) != 0) {
        free(scratch);
        return;
    }
    struct api_machine *am = NULL;
    int rc = n == 7 ? api_machine_get(c, arn, &am) : 1; /* no versions or aliases yet */
    if (rc == 0 && am->deleting)
        rc = call_error(c, "StateMachineDeleting", "State Machine Is Being Deleted: '%s'", arn);
    if (rc != 0) {
        if (rc == 1)
            call_error(c, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn);
        free(scratch);
        return;
    }
    json_t *input = api_start_input(c);
    if (input == NULL) {
        free(scratch);
        return;
    }
    if (name != NULL && sfn_machine_type(am->m) == SFN_STANDARD) {
        /* the engine's ARN for it (api.md 2.2) */
        char *exec_arn = xasprintf("arn:%s:states:%s:%s:execution:%s:%s", parts[1], parts[3],
                                   parts[4], parts[6], name);
        rc = start_name_taken(c, exec_arn, input);
        free(exec_arn);
        if (rc != 1) {
            json_decref(input);
            free(scratch);
            return;
        }
    }
    free(scratch);
    if (test_case[0] != '\0' &&
        !sfn_mock_has_test_case(c->api->mock, sfn_machine_name(am->m), test_case)) {
        call_error(c, "ValidationException", "the mock config has no test case '%s' for state "
                   "machine '%s'", test_case, sfn_machine_name(am->m));
        json_decref(input);
        return;
    }
    struct sfn_execution_options opt = api_execution_options(c->api);
    char made[37];
    if (name == NULL) /* AWS makes a UUID; ours are time-ordered (api_name_new) */
        api_name_new(c->api, made);
    opt.name = name != NULL ? name : made;
    opt.role_arn = am->role_arn;
    struct err err = ERR_INIT;
    struct sfn_execution *ex = sfn_execution_start(c->api->eng, am->m, input, &opt, &err);
    json_decref(input);
    if (ex == NULL) {
        call_error(c, "InvalidExecutionInput", "Invalid State Machine Execution Input: '%s'",
                   err.cause != NULL ? err.cause : err.name);
        err_clear(&err);
        return;
    }
    if (test_case[0] != '\0') /* before any Task starts: they start from the loop */
        sfn_mock_bind_execution(c->api->mock, sfn_execution_arn(ex), sfn_machine_name(am->m),
                                test_case, NULL);
    smap_put(&c->api->running, sfn_execution_arn(ex), ex);
    reply_started(c, sfn_execution_arn(ex), sfn_execution_start_ms(ex), true);
}

/* api.md 6.3 */
void op_describe_execution(struct call *c)
{
    const char *arn = call_str(c, "executionArn");
    struct exec_copy x;
    if (exec_find(c, arn, &x) != 0)
        return;
    const char *included = call_str(c, "includedData");
    bool meta_only = included != NULL && strcmp(included, "METADATA_ONLY") == 0;
    json_t *o = json_object();
    json_object_set_new(o, "executionArn", json_string(x.arn));
    json_object_set_new(o, "stateMachineArn", json_string(x.machine_arn));
    json_object_set_new(o, "name", json_string(x.name));
    json_object_set_new(o, "status", json_string(x.status));
    json_object_set_new(o, "startDate", api_time(x.start_ms));
    if (x.stop_ms > 0)
        json_object_set_new(o, "stopDate", api_time(x.stop_ms));
    if (!meta_only && x.input != NULL) {
        json_object_set_new(o, "input", json_string(x.input));
        json_object_set_new(o, "inputDetails", json_pack("{s:b}", "included", 1));
    }
    bool succeeded = strcmp(x.status, "SUCCEEDED") == 0;
    if (!meta_only && succeeded && x.output != NULL) {
        json_object_set_new(o, "output", json_string(x.output));
        json_object_set_new(o, "outputDetails", json_pack("{s:b}", "included", 1));
    }
    if (strcmp(x.status, "TIMED_OUT") != 0) { /* TIMED_OUT shows neither (api.md 6.3) */
        if (x.error != NULL)
            json_object_set_new(o, "error", json_string(x.error));
        if (x.cause != NULL)
            json_object_set_new(o, "cause", json_string(x.cause));
    }
    json_object_set_new(o, "redriveCount", json_integer(x.redrive_count));
    if (x.redrive_ms > 0)
        json_object_set_new(o, "redriveDate", api_time(x.redrive_ms));
    if (strcmp(x.status, "RUNNING") == 0 || succeeded) {
        json_object_set_new(o, "redriveStatus", json_string("NOT_REDRIVABLE"));
        char *why = xasprintf("Execution is %s and cannot be redriven", x.status);
        json_object_set_new(o, "redriveStatusReason", json_string(why));
        free(why);
    } else if (api_now_ms() - x.stop_ms > SFN_REDRIVE_PERIOD_MS) {
        json_object_set_new(o, "redriveStatus", json_string("NOT_REDRIVABLE"));
        json_object_set_new(o, "redriveStatusReason",
                            json_string("Execution redrivable period exceeded"));
    } else {
        json_object_set_new(o, "redriveStatus", json_string("REDRIVABLE"));
    }
    exec_copy_release(&x);
    call_ok(c, o, false);
}

/* api.md 6.4 */
void op_stop_execution(struct call *c)
{
    const char *arn = call_str(c, "executionArn");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "execution", &scratch, parts, &n) != 0)
        return;
    free(scratch);
    struct sfn_execution *ex = smap_get(&c->api->running, arn);
    if (ex != NULL) {
        bool changed = sfn_execution_status(ex) == SFN_RUNNING;
        sfn_execution_stop(ex, call_str(c, "error"), call_str(c, "cause"));
        json_t *o = json_object();
        json_object_set_new(o, "stopDate", api_time(sfn_execution_stop_ms(ex)));
        call_ok(c, o, changed); /* the ABORTED record is committed before the answer */
        return;
    }
    struct exec_copy x;
    if (exec_find(c, arn, &x) != 0)
        return;
    /* already closed: the original stop date, nothing changes (api.md 6.4) */
    json_t *o = json_object();
    json_object_set_new(o, "stopDate", api_time(x.stop_ms > 0 ? x.stop_ms : x.start_ms));
    exec_copy_release(&x);
    call_ok(c, o, false);
}

struct exec_page {
    json_t *items; /* ListExecutions items (owned) */
};

static int on_list_exec(const struct sfn_store_execution *e, void *arg)
{
    struct exec_page *p = arg;
    json_t *o = json_object();
    json_object_set_new(o, "executionArn", json_string(e->arn));
    json_object_set_new(o, "stateMachineArn", json_string(e->machine_arn));
    json_object_set_new(o, "name", json_string(e->name));
    json_object_set_new(o, "status", json_string(e->status));
    json_object_set_new(o, "startDate", api_time(e->start_ms));
    if (e->stop_ms > 0)
        json_object_set_new(o, "stopDate", api_time(e->stop_ms));
    json_object_set_new(o, "redriveCount", json_integer(e->redrive_count));
    if (e->redrive_ms > 0)
        json_object_set_new(o, "redriveDate", api_time(e->redrive_ms));
    json_array_append_new(p->items, o);
    return 0;
}

/* api.md 6.5 */
void op_list_executions(struct call *c)
{
    const char *arn = call_str(c, "stateMachineArn");
    const char *map_run = call_str(c, "mapRunArn");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (arn == NULL && map_run == NULL) {
        call_error(c, "ValidationException", "Must provide a StateMachine ARN or MapRun ARN");
        return;
    }
    if (arn == NULL) { /* no distributed Map yet: no map run exists */
        if (api_arn_parse(c, map_run, "mapRun", &scratch, parts, &n) == 0)
            call_error(c, "ResourceNotFound", "Resource not found: '%s'", map_run);
        free(scratch);
        return;
    }
    if (api_arn_parse(c, arn, "stateMachine", &scratch, parts, &n) != 0)
        return;
    free(scratch);
    const char *status = call_str(c, "statusFilter");
    if (status != NULL && strcmp(status, "PENDING_REDRIVE") == 0) {
        call_error(c, "ValidationException",
                   "The PENDING_REDRIVE status filter is only valid with a Map Run ARN");
        return;
    }
    struct api_machine *am = NULL;
    int rc = n == 7 ? api_machine_get(c, arn, &am) : 1;
    if (rc != 0) {
        if (rc == 1)
            call_error(c, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn);
        return;
    }
    if (sfn_machine_type(am->m) == SFN_EXPRESS) {
        call_error(c, "StateMachineTypeNotSupported",
                   "This operation is not supported by this type of state machine");
        return;
    }
    const char *redrive = call_str(c, "redriveFilter");
    char *filter = xasprintf("%s|%s|%s", arn, status != NULL ? status : "",
                             redrive != NULL ? redrive : "");
    char *after = NULL;
    if (api_token_read(c, filter, &after) != 0) {
        free(filter);
        return;
    }
    size_t size = api_page_size(c);
    struct exec_page p = {json_array()};
    long got = 0;
    struct err err = ERR_INIT;
    got = sfn_store_page_executions(c->api->st, arn, status, redrive, after, size + 1, on_list_exec,
                                        &p, &err);
    free(after);
    if (got == -2) {
        call_error(c, "InvalidToken", "Invalid Token: 'Invalid token'");
    } else if (got < 0) {
        call_fail(c, &err);
    } else {
        json_t *o = json_object();
        if ((size_t)got > size) {
            json_array_remove(p.items, size);
            const char *last = json_string_value(
                json_object_get(json_array_get(p.items, size - 1), "executionArn"));
            char *token = api_token_make(last, filter);
            json_object_set_new(o, "nextToken", json_string(token));
            free(token);
        }
        json_object_set_new(o, "executions", json_incref(p.items));
        call_ok(c, o, false);
    }
    err_clear(&err);
    json_decref(p.items);
    free(filter);
}

struct history_page {
    json_t *events; /* owned */
};

static int on_history_event(json_t *event, void *arg)
{
    struct history_page *p = arg;
    json_array_append(p->events, event); /* borrowed from the store: keep a reference */
    return 0;
}

/* api.md 7.1 */
void op_get_execution_history(struct call *c)
{
    const char *arn = call_str(c, "executionArn");
    struct exec_copy x;
    if (exec_find(c, arn, &x) != 0)
        return;
    exec_copy_release(&x);
    bool reverse = call_bool(c, "reverseOrder", false);
    bool data = call_bool(c, "includeExecutionData", true);
    char *filter = xasprintf("%s|%s", arn, reverse ? "reverse" : "forward");
    char *after = NULL;
    if (api_token_read(c, filter, &after) != 0) {
        free(filter);
        return;
    }
    int64_t after_id = 0;
    if (after != NULL) {
        char *end = NULL;
        after_id = strtoll(after, &end, 10);
        if (end == after || *end != '\0' || after_id <= 0) {
            free(after);
            free(filter);
            call_error(c, "InvalidToken", "Invalid Token: 'Invalid token'");
            return;
        }
        free(after);
    }
    size_t size = api_page_size(c);
    struct history_page p = {json_array()};
    struct err err = ERR_INIT;
    long got = sfn_store_history(c->api->st, arn, after_id, reverse, size + 1, data,
                                 on_history_event, &p, &err);
    if (got < 0) {
        call_fail(c, &err);
    } else {
        json_t *o = json_object();
        if ((size_t)got > size) {
            json_array_remove(p.events, size);
            json_int_t last = json_integer_value(
                json_object_get(json_array_get(p.events, size - 1), "id"));
            char key[32];
            snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, last);
            char *token = api_token_make(key, filter);
            json_object_set_new(o, "nextToken", json_string(token));
            free(token);
        }
        json_object_set_new(o, "events", json_incref(p.events));
        call_ok(c, o, false);
    }
    err_clear(&err);
    json_decref(p.events);
    free(filter);
}
