/* engine/test_state.c - TestState (api.md 9.5): one state run in isolation.
 *
 * The state runs in the engine itself, as the only real state of a small machine:
 * {"StartAt": S, "States": {S: the state, one Succeed stub per transition target}}. Every
 * Next, Default, Choices[].Next and Catch[].Next of S is rewritten to its stub, so the stub
 * the execution enters names the original nextState (a state may name itself), and its
 * input is the state's output. Retry is taken out (TestState does not retry: a matching
 * retrier makes the status RETRIABLE); a mocked Task's Resource is rewritten to a resource
 * of this file that answers with the mock. The inspection data (InputPath, Parameters,
 * ResultSelector, ResultPath) is computed with the asl/ functions the engine uses, from the
 * input and from the Task's parameters and result as the history recorded them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

#define TS_MOCK_ARN "arn:aws:states:::sfn-test-state:mock"
#define TS_STUB "__sfn_test_state_next_"

struct ts_run {
    struct sfn_engine *eng;
    struct sfn_machine *m;
    struct sfn_execution *ex;
    json_t *state;       /* the original state (our reference) */
    json_t *input;       /* our reference */
    json_t *targets;     /* stub name -> original target name (new object) */
    json_t *caught;      /* stub name -> true when only a catcher leads there */
    json_t *mock;        /* the request's mock (our reference), or NULL */
    char *name;          /* the state's name */
    bool debug;          /* DEBUG or TRACE */
    int retry_count;     /* stateConfiguration.retrierRetryCount */
    sfn_test_state_fn fn;
    void *arg;
    struct ts_run *next; /* runs in flight (the mock resource finds its run here) */
};

static struct ts_run *runs;
static unsigned long run_seq;

/* ---- the mock resource ---- */

static int on_mock_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)arg;
    const char *exec = sfn_task_execution_arn(t);
    struct ts_run *r = runs;
    while (r != NULL && (r->ex == NULL || strcmp(sfn_execution_arn(r->ex), exec) != 0))
        r = r->next;
    if (r == NULL || r->mock == NULL)
        return err_set(err, ASL_ERR_RUNTIME, "TestState: no mock for this task");
    json_t *eo = json_object_get(r->mock, "errorOutput");
    if (eo != NULL) {
        sfn_task_fail(t, json_string_value(json_object_get(eo, "error")),
                      json_string_value(json_object_get(eo, "cause")));
        return 0;
    }
    const char *text = json_string_value(json_object_get(r->mock, "result"));
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL); /* checked by the validation */
    sfn_task_succeed(t, v);
    json_decref(v);
    return 0;
}

static const struct sfn_resource_ops ts_mock_ops = {on_mock_start, NULL, NULL, NULL, NULL};

static int ensure_mock_resource(struct sfn_engine *eng, struct err *err)
{
    for (size_t i = 0; i < eng->n_res; i++) {
        if (eng->res[i]->ops == &ts_mock_ops)
            return 0;
    }
    return sfn_engine_register_resource(eng, TS_MOCK_ARN, &ts_mock_ops, NULL, err);
}

/* ---- validation and the machine ---- */

static int invalid(struct err *err, const char *name, const char *msg)
{
    return err_set(err, name, "%s", msg);
}

/* Finds state `name` in `states` and the Parallel branches / Map processors inside.
 * Borrowed, or NULL. */
static json_t *find_state(json_t *states, const char *name)
{
    json_t *st = json_object_get(states, name);
    if (st != NULL)
        return st;
    const char *k;
    json_object_foreach(states, k, st)
    {
        json_t *branches = json_object_get(st, "Branches");
        for (size_t i = 0; i < json_array_size(branches); i++) {
            json_t *f = find_state(json_object_get(json_array_get(branches, i), "States"), name);
            if (f != NULL)
                return f;
        }
        static const char *const inner[] = {"Iterator", "ItemProcessor"};
        for (size_t i = 0; i < 2; i++) {
            json_t *sub = json_object_get(json_object_get(st, inner[i]), "States");
            json_t *f = sub != NULL ? find_state(sub, name) : NULL;
            if (f != NULL)
                return f;
        }
    }
    return NULL;
}

/* Rewrites the string member `key` of `o` (a transition) to a stub in `r->targets` and
 * `states`. */
static void retarget(struct ts_run *r, json_t *o, const char *key, json_t *states,
                     bool from_catch)
{
    const char *target = json_string_value(json_object_get(o, key));
    if (target == NULL)
        return;
    const char *stub;
    json_t *v;
    json_object_foreach(r->targets, stub, v)
    {
        if (strcmp(json_string_value(v), target) == 0) {
            if (!from_catch)
                json_object_del(r->caught, stub);
            json_object_set_new(o, key, json_string(stub));
            return;
        }
    }
    char name[64];
    snprintf(name, sizeof(name), TS_STUB "%zu", json_object_size(r->targets));
    json_object_set_new(r->targets, name, json_string(target));
    if (from_catch)
        json_object_set_new(r->caught, name, json_true());
    json_t *succeed = json_object();
    json_object_set_new(succeed, "Type", json_string("Succeed"));
    json_object_set_new(states, name, succeed);
    json_object_set_new(o, key, json_string(name));
}

/* The definition text of the one-state machine (new string). */
static char *machine_text(struct ts_run *r)
{
    json_t *st = json_deep_copy(r->state);
    json_t *states = json_object();
    const char *type = json_string_value(json_object_get(st, "Type"));
    json_object_del(st, "Retry");
    if (r->mock != NULL)
        json_object_set_new(st, "Resource", json_string(TS_MOCK_ARN));
    if (type != NULL && strcmp(type, "Wait") == 0) { /* TestState does not wait */
        static const char *const fields[] = {"Seconds", "SecondsPath", "Timestamp",
                                             "TimestampPath"};
        for (size_t i = 0; i < 4; i++)
            json_object_del(st, fields[i]);
        json_object_set_new(st, "Seconds", json_integer(0));
    }
    retarget(r, st, "Next", states, false);
    retarget(r, st, "Default", states, false);
    json_t *a;
    size_t i;
    json_array_foreach(json_object_get(st, "Choices"), i, a) retarget(r, a, "Next", states, false);
    json_array_foreach(json_object_get(st, "Catch"), i, a) retarget(r, a, "Next", states, true);
    json_object_set_new(states, r->name, st);
    json_t *def = json_object();
    json_object_set_new(def, "StartAt", json_string(r->name));
    json_object_set_new(def, "States", states);
    char *text = json_compact(def);
    json_decref(def);
    return text;
}

static int check_mock(json_t *mock, const char *type, struct err *err)
{
    if (!json_is_object(mock))
        return invalid(err, "ValidationException", "mock must be an object");
    if (strcmp(type, "Task") != 0 && strcmp(type, "Map") != 0 && strcmp(type, "Parallel") != 0) {
        return err_set(err, "ValidationException",
                       "State type '%s' is not supported when a mock is specified", type);
    }
    json_t *res = json_object_get(mock, "result");
    json_t *eo = json_object_get(mock, "errorOutput");
    if ((res == NULL) == (eo == NULL))
        return invalid(err, "ValidationException",
                       "A test mock should have only one of the following fields: "
                       "[result, errorOutput].");
    const char *mode = json_string_value(json_object_get(mock, "fieldValidationMode"));
    if (mode != NULL && strcmp(mode, "NONE") != 0)
        return err_set(err, "ValidationException",
                       "mock.fieldValidationMode '%s' is not supported by this engine (only "
                       "NONE: mocked results are not checked against the service's API)",
                       mode);
    if (res != NULL) {
        json_t *v = json_is_string(res) ? json_loads(json_string_value(res), JSON_DECODE_ANY,
                                                     NULL)
                                        : NULL;
        if (v == NULL)
            return invalid(err, "ValidationException", "Mocked result must be valid JSON");
        json_decref(v);
    } else if (!json_is_object(eo)) {
        return invalid(err, "ValidationException", "mock.errorOutput must be an object");
    }
    if (strcmp(type, "Task") != 0)
        return err_set(err, "ValidationException",
                       "TestState of a %s state with a mock is not supported by this engine "
                       "(supported: Task with a mock; Task, Wait, Pass, Succeed, Fail, Choice)",
                       type);
    return 0;
}

/* ---- inspection data ---- */

static void put_text(json_t *o, const char *key, json_t *v)
{
    if (v == NULL)
        return;
    char *s = json_compact(v);
    json_object_set_new(o, key, json_string(s));
    free(s);
}

/* Evaluates a path field of the state (absent = `$`, null = {}). New reference or NULL. */
static json_t *eval_path(json_t *state, const char *field, json_t *doc)
{
    json_t *f = json_object_get(state, field);
    if (f == NULL)
        return json_incref(doc);
    if (json_is_null(f))
        return json_object();
    struct err err = ERR_INIT;
    struct asl_path *p = asl_path_compile(json_string_value(f), 0, &err);
    json_t *v = NULL;
    if (p != NULL) {
        struct asl_scope s = {doc, NULL, NULL, NULL, NULL};
        v = asl_path_eval(p, &s, &err);
    }
    asl_path_free(p);
    err_clear(&err);
    return v;
}

static json_t *eval_tmpl(json_t *tmpl, json_t *doc)
{
    struct err err = ERR_INIT;
    struct asl_tmpl *t = asl_tmpl_compile(tmpl, &err);
    json_t *v = NULL;
    if (t != NULL) {
        struct asl_scope s = {doc, NULL, NULL, NULL, NULL};
        v = asl_tmpl_eval(t, &s, &err);
    }
    asl_tmpl_free(t);
    err_clear(&err);
    return v;
}

static json_t *parse_text(json_t *s)
{
    const char *text = json_string_value(s);
    return text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
}

/* inspectionData from the input, and for a Task the parameters and result the history has
 * (borrowed strings, or NULL). New reference. */
static json_t *inspection(struct ts_run *r, const char *type, json_t *params, json_t *result)
{
    json_t *o = json_object();
    put_text(o, "input", r->input);
    if (strcmp(type, "Fail") == 0)
        return o;
    json_t *after_ip = eval_path(r->state, "InputPath", r->input);
    put_text(o, "afterInputPath", after_ip);
    bool task = strcmp(type, "Task") == 0;
    if (strcmp(type, "Choice") == 0 || (!task && strcmp(type, "Pass") != 0)) {
        json_decref(after_ip);
        return o;
    }
    json_t *after_params = NULL;
    json_t *tmpl = json_object_get(r->state, "Parameters");
    if (task && params != NULL)
        after_params = parse_text(params);
    else if (tmpl != NULL && after_ip != NULL)
        after_params = eval_tmpl(tmpl, after_ip);
    else if (!task && after_ip != NULL)
        after_params = json_incref(after_ip);
    put_text(o, "afterParameters", after_params);
    json_t *res = NULL;
    if (task)
        res = parse_text(result);
    else if (json_object_get(r->state, "Result") != NULL)
        res = json_incref(json_object_get(r->state, "Result"));
    else if (after_params != NULL)
        res = json_incref(after_params);
    put_text(o, "result", res);
    json_t *after_rs = NULL;
    json_t *sel = json_object_get(r->state, "ResultSelector");
    if (res != NULL)
        after_rs = task && sel != NULL ? eval_tmpl(sel, res) : json_incref(res);
    if (task)
        put_text(o, "afterResultSelector", after_rs);
    json_t *rp = json_object_get(r->state, "ResultPath");
    json_t *after_rp = NULL;
    if (after_rs != NULL) {
        if (rp == NULL) {
            after_rp = json_incref(after_rs);
        } else if (json_is_null(rp)) {
            after_rp = json_incref(r->input);
        } else {
            struct err err = ERR_INIT;
            struct asl_path *p = asl_path_compile(json_string_value(rp), ASL_PATH_REFERENCE,
                                                  &err);
            if (p != NULL)
                after_rp = asl_path_assign(p, r->input, after_rs, &err);
            asl_path_free(p);
            err_clear(&err);
        }
    }
    put_text(o, "afterResultPath", after_rp);
    json_decref(after_rp);
    json_decref(after_rs);
    json_decref(res);
    json_decref(after_params);
    json_decref(after_ip);
    return o;
}

/* ---- the run ---- */

static bool error_matches(json_t *equals, const char *error)
{
    size_t i;
    json_t *e;
    json_array_foreach(equals, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL)
            continue;
        if (strcmp(s, error) == 0)
            return true;
        if (strcmp(s, ASL_ERR_ALL) == 0 && strcmp(error, ASL_ERR_RUNTIME) != 0 &&
            strcmp(error, ASL_ERR_DATA_LIMIT) != 0)
            return true;
    }
    return false;
}

/* The first retrier of the original state that would retry `error` after `count` retries,
 * or -1; *backoff gets its interval in seconds. */
static int retrier(json_t *state, const char *error, int count, double *backoff)
{
    size_t i;
    json_t *rt;
    json_array_foreach(json_object_get(state, "Retry"), i, rt)
    {
        if (!error_matches(json_object_get(rt, "ErrorEquals"), error))
            continue;
        json_t *max = json_object_get(rt, "MaxAttempts");
        json_int_t max_attempts = max != NULL ? json_integer_value(max) : 3;
        if (count >= max_attempts)
            return -1;
        json_t *iv = json_object_get(rt, "IntervalSeconds");
        json_t *br = json_object_get(rt, "BackoffRate");
        double interval = iv != NULL ? (double)json_integer_value(iv) : 1.0;
        double rate = br != NULL ? json_number_value(br) : 2.0;
        *backoff = interval * pow(rate, count);
        return (int)i;
    }
    return -1;
}

static int catcher(json_t *state, const char *error)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(state, "Catch"), i, c)
    {
        if (error_matches(json_object_get(c, "ErrorEquals"), error))
            return (int)i;
    }
    return -1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void run_free(struct ts_run *r)
{
    for (struct ts_run **p = &runs; *p != NULL; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    json_decref(r->state);
    json_decref(r->input);
    json_decref(r->targets);
    json_decref(r->caught);
    json_decref(r->mock);
    free(r->name);
    free(r);
}

static void on_done(struct sfn_execution *ex, void *arg)
{
    struct ts_run *r = arg;
    const char *type = json_string_value(json_object_get(r->state, "Type"));
    json_t *resp = json_object();
    json_t *params = NULL; /* borrowed from events */
    json_t *result = NULL;
    const char *error = NULL;
    const char *cause = NULL;
    const char *next = NULL;
    bool caught = false; /* the stub entered is reached only through a catcher */
    json_t *out_text = NULL;
    json_t *events = json_array();
    size_t n = sfn_execution_history_size(ex);
    for (size_t i = 0; i < n; i++) {
        json_t *e = sfn_execution_event(ex, i, true);
        json_array_append_new(events, e);
        const char *et = json_string_value(json_object_get(e, "type"));
        char member[128];
        if (ends_with(et, "StateEntered"))
            snprintf(member, sizeof(member), "stateEnteredEventDetails");
        else
            snprintf(member, sizeof(member), "%c%sEventDetails", et[0] + ('a' - 'A'), et + 1);
        json_t *d = json_object_get(e, member);
        if (strcmp(et, "TaskScheduled") == 0) {
            params = json_object_get(d, "parameters");
        } else if (strcmp(et, "ActivityScheduled") == 0) {
            params = json_object_get(d, "input");
        } else if (strcmp(et, "TaskSucceeded") == 0 || strcmp(et, "ActivitySucceeded") == 0) {
            result = json_object_get(d, "output");
        } else if (ends_with(et, "StateEntered")) {
            const char *name = json_string_value(json_object_get(d, "name"));
            const char *orig = json_string_value(json_object_get(r->targets, name));
            if (orig != NULL) {
                next = orig;
                caught = json_object_get(r->caught, name) != NULL;
                out_text = json_object_get(d, "input");
            }
        } else if ((ends_with(et, "Failed") || ends_with(et, "TimedOut")) &&
                   strcmp(et, "ExecutionFailed") != 0 && strcmp(et, "ExecutionTimedOut") != 0 &&
                   error == NULL) {
            error = json_string_value(json_object_get(d, "error"));
            cause = json_string_value(json_object_get(d, "cause"));
        }
    }
    enum sfn_status st = sfn_execution_status(ex);
    const struct err *xe = sfn_execution_error(ex);
    if (st != SFN_SUCCEEDED && xe->set) {
        error = xe->name;
        cause = xe->cause;
    }
    const char *status = "SUCCEEDED";
    json_t *details = NULL;
    double backoff = 0;
    int ri = error != NULL ? retrier(r->state, error, r->retry_count, &backoff) : -1;
    if (error != NULL && ri >= 0) {
        status = "RETRIABLE";
        next = NULL;
        out_text = NULL;
        details = json_object();
        json_object_set_new(details, "retryIndex", json_integer(ri));
        json_object_set_new(details, "retryBackoffIntervalSeconds",
                            json_integer((json_int_t)backoff));
    } else if (st != SFN_SUCCEEDED) {
        status = "FAILED";
        next = NULL;
    } else if (error != NULL || caught) {
        status = "CAUGHT_ERROR";
        details = json_object();
        if (error != NULL)
            json_object_set_new(details, "catchIndex",
                                json_integer(catcher(r->state, error)));
    } else {
        cause = NULL;
    }
    if (strcmp(status, "SUCCEEDED") == 0 || strcmp(status, "CAUGHT_ERROR") == 0) {
        if (out_text != NULL)
            json_object_set(resp, "output", out_text);
        else
            put_text(resp, "output", sfn_execution_output(ex));
    }
    if (strcmp(status, "SUCCEEDED") != 0) {
        if (error != NULL && error[0] != '\0')
            json_object_set_new(resp, "error", json_string(error));
        if (cause != NULL)
            json_object_set_new(resp, "cause", json_string(cause));
    }
    if (next != NULL)
        json_object_set_new(resp, "nextState", json_string(next));
    json_object_set_new(resp, "status", json_string(status));
    if (r->debug) {
        json_t *insp = inspection(r, type, params, strcmp(status, "RETRIABLE") != 0 &&
                                                       strcmp(status, "FAILED") != 0
                                                   ? result
                                                   : NULL);
        if (details != NULL)
            json_object_set(insp, "errorDetails", details);
        json_object_set_new(resp, "inspectionData", insp);
    }
    json_decref(details);
    r->fn(resp, r->arg);
    json_decref(resp);
    json_decref(events);
    sfn_execution_free(ex);
    sfn_machine_free(r->m);
    run_free(r);
}

int sfn_test_state(struct sfn_engine *eng, const struct sfn_test_state_request *req,
                   sfn_test_state_fn fn, void *arg, struct err *err)
{
    json_t *def = req->definition;
    if (!json_is_object(def))
        return invalid(err, "InvalidDefinition",
                       "Invalid State Machine Definition: 'the definition must be a JSON "
                       "object'");
    json_t *state = def;
    const char *name = "TestState";
    if (req->state_name != NULL) {
        state = find_state(json_object_get(def, "States"), req->state_name);
        if (state == NULL)
            return invalid(err, "ValidationException", "State not found in definition");
        name = req->state_name;
    } else if (json_object_get(def, "States") != NULL) {
        return invalid(err, "InvalidDefinition",
                       "Invalid State Machine Definition: 'a whole state machine was given: "
                       "name the state to test with stateName'");
    }
    const char *type = json_string_value(json_object_get(state, "Type"));
    if (type == NULL)
        return invalid(err, "InvalidDefinition",
                       "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: These "
                       "fields are required: [Type] at /'");
    if (req->mock != NULL && check_mock(req->mock, type, err) != 0)
        return -1;
    if (req->mock == NULL && (strcmp(type, "Map") == 0 || strcmp(type, "Parallel") == 0))
        return invalid(err, "InvalidDefinition",
                       "TestState API does not support Map or Parallel states. Supported state "
                       "types include: [Task, Wait, Pass, Succeed, Fail, Choice]");
    if (req->mock == NULL && strcmp(type, "Task") == 0 && !req->has_role)
        return invalid(err, "ValidationException",
                       "RoleArn must be specified when testing a Task state");
    if (req->mock != NULL && ensure_mock_resource(eng, err) != 0)
        return -1;

    struct ts_run *r = xcalloc(1, sizeof(*r));
    r->eng = eng;
    r->state = json_incref(state);
    r->input = req->input != NULL ? json_incref(req->input) : json_object();
    r->targets = json_object();
    r->caught = json_object();
    r->mock = json_incref(req->mock);
    r->name = xstrdup(name);
    r->debug = req->inspection_level != NULL && strcmp(req->inspection_level, "INFO") != 0;
    r->retry_count = req->retrier_retry_count;
    r->fn = fn;
    r->arg = arg;
    char *text = machine_text(r);
    r->m = sfn_machine_compile(eng, text, strlen(text), "TestState", SFN_STANDARD, err);
    free(text);
    if (r->m == NULL) {
        run_free(r);
        return -1;
    }
    char exec_name[64];
    snprintf(exec_name, sizeof(exec_name), "test-state-%lu", ++run_seq);
    r->next = runs;
    runs = r;
    struct sfn_execution_options eo = {exec_name, req->role_arn, on_done, NULL, r};
    r->ex = sfn_execution_start(eng, r->m, r->input, &eo, err);
    if (r->ex == NULL) {
        sfn_machine_free(r->m);
        run_free(r);
        return -1;
    }
    return 0;
}

void sfn_test_state_abandon(struct sfn_engine *eng)
{
    struct ts_run **p = &runs;
    while (*p != NULL) {
        struct ts_run *r = *p;
        if (r->eng != eng) {
            p = &r->next;
            continue;
        }
        r->ex->on_done = NULL; /* fn is not called */
        sfn_execution_free(r->ex);
        sfn_machine_free(r->m);
        run_free(r); /* unlinks r: *p is the next run now */
    }
}
