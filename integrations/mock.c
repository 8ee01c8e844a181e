/* integrations/mock.c - mocked service integrations in Step Functions Local's MockConfigFile
 * format: StateMachines -> TestCases -> state name -> mocked response name; MockedResponses
 * -> invocation index or range ("0", "1-2") -> Return or Throw.
 *
 * A Task resource handler registered for every ARN ("*"), asked before the others. For an
 * execution bound to a test case that mocks the Task's state, the attempt completes at once
 * with the response of that invocation; otherwise it goes to the handler that would have
 * served the ARN without the mocks (sfn_engine_resource_next), or fails under SFN_MOCK_ONLY.
 * Needs neither libcurl nor the AWS integrations, so the lite sfn runs mocked workflows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfn.h"
#include "util/json.h"
#include "util/xalloc.h"

/* One invocation range of a mocked response. */
struct mock_step {
    long lo, hi;  /* invocation indexes, inclusive (0-based) */
    json_t *ret;  /* Return value (borrowed from the document), or NULL for Throw */
    const char *error, *cause; /* Throw: borrowed from the document, may be NULL */
};

/* One mocked response: its steps sorted by invocation, contiguous from 0. */
struct mock_response {
    char *name;
    struct mock_step *steps;
    size_t n;
};

struct sfn_mock {
    json_t *doc;              /* the whole file (owned); responses borrow from it */
    struct mock_response *res;
    size_t n_res;
    json_t *machine_cases;    /* machine name -> test case name (owned) */
    json_t *exec_cases;       /* execution ARN -> test case name (owned) */
    json_t *counts;           /* execution ARN -> state name -> invocations so far (owned) */
    unsigned flags;           /* SFN_MOCK_ONLY */
    struct sfn_engine *eng;   /* set by sfn_mock_attach */
};

/* ---- loading ---- */

static const struct mock_response *mock_response_find(const struct sfn_mock *m, const char *name)
{
    for (size_t i = 0; i < m->n_res; i++) {
        if (strcmp(m->res[i].name, name) == 0)
            return &m->res[i];
    }
    return NULL;
}

/* "N" or "N-M", decimal digits only. 0, or -1 when malformed. */
static int parse_range(const char *key, long *lo, long *hi)
{
    const char *p = key;
    char *end;
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    *lo = strtol(p, &end, 10);
    if (errno != 0 || end - p > 9)
        return -1;
    if (*end == '\0') {
        *hi = *lo;
        return 0;
    }
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return -1;
    p = end + 1;
    *hi = strtol(p, &end, 10);
    if (errno != 0 || *end != '\0' || end - p > 9)
        return -1;
    return 0;
}

static int step_cmp(const void *a, const void *b)
{
    const struct mock_step *x = a;
    const struct mock_step *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int load_step(const char *where, const char *rname, const char *key, json_t *v,
                     struct mock_step *s, struct err *err)
{
    if (parse_range(key, &s->lo, &s->hi) != 0)
        return err_set(err, "MockConfigInvalid",
                       "%s: MockedResponses.%s: '%s' is not an invocation index or range "
                       "(\"0\", \"1-2\")",
                       where, rname, key);
    if (s->hi < s->lo)
        return err_set(err, "MockConfigInvalid",
                       "%s: MockedResponses.%s: invocation range '%s' ends before it starts",
                       where, rname, key);
    if (!json_is_object(v))
        return err_set(err, "MockConfigInvalid",
                       "%s: MockedResponses.%s.%s: must be an object with Return or Throw",
                       where, rname, key);
    json_t *ret = json_object_get(v, "Return");
    json_t *thr = json_object_get(v, "Throw");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "Return") != 0 && strcmp(k, "Throw") != 0)
            return err_set(err, "MockConfigInvalid",
                           "%s: MockedResponses.%s.%s: unknown field '%s' (Return or Throw)",
                           where, rname, key, k);
    }
    if ((ret == NULL) == (thr == NULL))
        return err_set(err, "MockConfigInvalid",
                       "%s: MockedResponses.%s.%s: must have exactly one of Return and Throw",
                       where, rname, key);
    s->ret = ret;
    if (thr == NULL)
        return 0;
    if (!json_is_object(thr))
        return err_set(err, "MockConfigInvalid",
                       "%s: MockedResponses.%s.%s.Throw: must be an object with Error and Cause",
                       where, rname, key);
    json_object_foreach(thr, k, x)
    {
        if ((strcmp(k, "Error") != 0 && strcmp(k, "Cause") != 0) || !json_is_string(x))
            return err_set(err, "MockConfigInvalid",
                           "%s: MockedResponses.%s.%s.Throw: '%s' must be Error or Cause, a "
                           "string",
                           where, rname, key, k);
    }
    s->error = json_string_value(json_object_get(thr, "Error"));
    s->cause = json_string_value(json_object_get(thr, "Cause"));
    return 0;
}

static int load_response(struct sfn_mock *m, const char *where, const char *rname, json_t *v,
                         struct err *err)
{
    struct mock_response *r = &m->res[m->n_res++];
    r->name = xstrdup(rname);
    if (!json_is_object(v) || json_object_size(v) == 0)
        return err_set(err, "MockConfigInvalid",
                       "%s: MockedResponses.%s: must be a non-empty object of invocations",
                       where, rname);
    r->steps = xcalloc(json_object_size(v), sizeof(*r->steps));
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x)
    {
        if (load_step(where, rname, key, x, &r->steps[r->n], err) != 0)
            return -1;
        r->n++;
    }
    qsort(r->steps, r->n, sizeof(*r->steps), step_cmp);
    long next = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->steps[i].lo != next)
            return err_set(err, "MockConfigInvalid",
                           "%s: MockedResponses.%s: invocation %ld %s (the invocations must "
                           "follow each other from 0)",
                           where, rname, r->steps[i].lo < next ? r->steps[i].lo : next,
                           r->steps[i].lo < next ? "is listed twice" : "is missing");
        next = r->steps[i].hi + 1;
    }
    return 0;
}

static int load_machines(struct sfn_mock *m, const char *where, json_t *machines, struct err *err)
{
    if (!json_is_object(machines))
        return err_set(err, "MockConfigInvalid", "%s: StateMachines: must be an object", where);
    const char *mname;
    json_t *mv;
    json_object_foreach(machines, mname, mv)
    {
        json_t *cases = json_object_get(mv, "TestCases");
        if (!json_is_object(mv) || json_object_size(mv) != 1 || !json_is_object(cases))
            return err_set(err, "MockConfigInvalid",
                           "%s: StateMachines.%s: must be an object with only TestCases, an "
                           "object",
                           where, mname);
        const char *cname;
        json_t *cv;
        json_object_foreach(cases, cname, cv)
        {
            if (!json_is_object(cv))
                return err_set(err, "MockConfigInvalid",
                               "%s: StateMachines.%s.TestCases.%s: must be an object of state "
                               "names to mocked response names",
                               where, mname, cname);
            const char *sname;
            json_t *sv;
            json_object_foreach(cv, sname, sv)
            {
                if (!json_is_string(sv))
                    return err_set(err, "MockConfigInvalid",
                                   "%s: StateMachines.%s.TestCases.%s.%s: must be the name of "
                                   "a mocked response",
                                   where, mname, cname, sname);
                if (mock_response_find(m, json_string_value(sv)) == NULL)
                    return err_set(err, "MockConfigInvalid",
                                   "%s: StateMachines.%s.TestCases.%s.%s: unknown mocked "
                                   "response '%s' (not in MockedResponses)",
                                   where, mname, cname, sname, json_string_value(sv));
            }
        }
    }
    return 0;
}

struct sfn_mock *sfn_mock_parse(const char *text, size_t len, const char *where, struct err *err)
{
    struct sfn_mock *m = xcalloc(1, sizeof(*m));
    m->machine_cases = json_object();
    m->exec_cases = json_object();
    m->counts = json_object();
    struct err perr = ERR_INIT;
    m->doc = json_parse(text, len, true, &perr);
    if (m->doc == NULL) {
        err_set(err, "MockConfigInvalid", "%s: not valid JSON: %s", where,
                perr.cause != NULL ? perr.cause : "");
        err_clear(&perr);
        sfn_mock_free(m);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_t *responses = json_object_get(m->doc, "MockedResponses");
    json_t *machines = json_object_get(m->doc, "StateMachines");
    if (!json_is_object(m->doc)) {
        err_set(err, "MockConfigInvalid",
                "%s: must be an object with StateMachines and MockedResponses", where);
        goto fail;
    }
    json_object_foreach(m->doc, k, v)
    {
        if (strcmp(k, "StateMachines") != 0 && strcmp(k, "MockedResponses") != 0) {
            err_set(err, "MockConfigInvalid",
                    "%s: unknown field '%s' (StateMachines or MockedResponses)", where, k);
            goto fail;
        }
    }
    if (machines == NULL || responses == NULL) {
        err_set(err, "MockConfigInvalid", "%s: missing %s", where,
                machines == NULL ? "StateMachines" : "MockedResponses");
        goto fail;
    }
    if (!json_is_object(responses)) {
        err_set(err, "MockConfigInvalid", "%s: MockedResponses: must be an object", where);
        goto fail;
    }
    m->res = xcalloc(json_object_size(responses) + 1, sizeof(*m->res));
    json_object_foreach(responses, k, v)
    {
        if (load_response(m, where, k, v, err) != 0)
            goto fail;
    }
    if (load_machines(m, where, machines, err) != 0)
        goto fail;
    return m;
fail:
    sfn_mock_free(m);
    return NULL;
}

struct sfn_mock *sfn_mock_load(const char *path, struct err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        err_set(err, "MockConfigInvalid", "cannot read mock config '%s': %s", path,
                strerror(errno));
        return NULL;
    }
    struct buf b = BUF_INIT;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, got);
    bool failed = ferror(f) != 0;
    fclose(f);
    struct sfn_mock *m = NULL;
    if (failed) {
        err_set(err, "MockConfigInvalid", "cannot read mock config '%s'", path);
    } else {
        char *where = xasprintf("mock config '%s'", path);
        m = sfn_mock_parse(b.data != NULL ? b.data : "", b.len, where, err);
        free(where);
    }
    buf_release(&b);
    return m;
}

void sfn_mock_free(struct sfn_mock *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_res; i++) {
        free(m->res[i].name);
        free(m->res[i].steps);
    }
    free(m->res);
    json_decref(m->machine_cases);
    json_decref(m->exec_cases);
    json_decref(m->counts);
    json_decref(m->doc);
    free(m);
}

/* The test case object (borrowed), or NULL. */
static json_t *test_case(const struct sfn_mock *m, const char *machine, const char *name)
{
    json_t *mv = json_object_get(json_object_get(m->doc, "StateMachines"), machine);
    return json_object_get(json_object_get(mv, "TestCases"), name);
}

bool sfn_mock_has_test_case(const struct sfn_mock *m, const char *machine, const char *name)
{
    return test_case(m, machine, name) != NULL;
}

bool sfn_mock_mocks_state(const struct sfn_mock *m, const char *machine, const char *name,
                          const char *state)
{
    return json_object_get(test_case(m, machine, name), state) != NULL;
}

static int no_test_case(const char *machine, const char *name, struct err *err)
{
    return err_set(err, "MockConfigInvalid",
                   "the mock config has no test case '%s' for state machine '%s' "
                   "(StateMachines.%s.TestCases.%s)",
                   name, machine, machine, name);
}

int sfn_mock_bind_machine(struct sfn_mock *m, const char *machine, const char *name,
                          struct err *err)
{
    if (!sfn_mock_has_test_case(m, machine, name))
        return no_test_case(machine, name, err);
    json_object_set_new(m->machine_cases, machine, json_string(name));
    return 0;
}

int sfn_mock_bind_execution(struct sfn_mock *m, const char *exec_arn, const char *machine,
                            const char *name, struct err *err)
{
    if (!sfn_mock_has_test_case(m, machine, name))
        return no_test_case(machine, name, err);
    json_object_set_new(m->exec_cases, exec_arn, json_string(name));
    return 0;
}

void sfn_mock_forget(struct sfn_mock *m, const char *exec_arn)
{
    json_object_del(m->exec_cases, exec_arn);
    json_object_del(m->counts, exec_arn);
}

/* ---- the resource handler ---- */

/* The state machine's name from an execution ARN ("...:execution:NAME:..." or
 * "...:express:NAME:..."): a new string, or NULL. */
static char *machine_of(const char *arn)
{
    const char *p = strstr(arn, ":execution:");
    size_t skip = 11;
    if (p == NULL) {
        p = strstr(arn, ":express:");
        skip = 9;
    }
    if (p == NULL)
        return NULL;
    p += skip;
    const char *end = strchr(p, ':');
    return end != NULL ? xstrndup(p, (size_t)(end - p)) : NULL;
}

/* What the mock does with an attempt. */
enum mock_verdict { MOCK_DELEGATE, MOCK_RESPOND, MOCK_REFUSE };

/* Decides for `t`; MOCK_RESPOND sets *resp and the 0-based invocation *index (counted). */
static enum mock_verdict mock_decide(struct sfn_mock *m, struct sfn_task *t,
                                     const struct mock_response **resp, long *index,
                                     char **why)
{
    const char *arn = sfn_task_execution_arn(t);
    char *machine = machine_of(arn);
    const char *tc = json_string_value(json_object_get(m->exec_cases, arn));
    if (tc == NULL && machine != NULL)
        tc = json_string_value(json_object_get(m->machine_cases, machine));
    const char *state = sfn_task_state_name(t);
    json_t *rn = tc != NULL ? json_object_get(test_case(m, machine, tc), state) : NULL;
    enum mock_verdict v = MOCK_DELEGATE;
    if (rn != NULL) {
        *resp = mock_response_find(m, json_string_value(rn));
        json_t *per = json_object_get(m->counts, arn);
        if (per == NULL) {
            per = json_object();
            json_object_set_new(m->counts, arn, per);
        }
        json_t *c = json_object_get(per, state);
        *index = c != NULL ? (long)json_integer_value(c) : 0;
        json_object_set_new(per, state, json_integer(*index + 1));
        v = MOCK_RESPOND;
    } else if (m->flags & SFN_MOCK_ONLY) {
        *why = tc != NULL ? xasprintf("state '%s' is not mocked in test case '%s' of state "
                                      "machine '%s', and only mocks may run (--mock-only)",
                                      state, tc, machine)
                          : xasprintf("execution '%s' runs no test case of the mock config, "
                                      "and only mocks may run (--mock-only)",
                                      arn);
        v = MOCK_REFUSE;
    }
    free(machine);
    return v;
}

static bool is_callback_pattern(const char *resource)
{
    size_t n = strlen(resource);
    static const char *const tails[] = {".sync", ".sync:2", ".waitForTaskToken"};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        size_t l = strlen(tails[i]);
        if (n > l && strcmp(resource + n - l, tails[i]) == 0)
            return true;
    }
    return false;
}

static int mock_delegate(struct sfn_mock *m, struct sfn_task *t, bool resume, struct err *err);
static const struct sfn_resource_ops mock_ops;

static int mock_go(struct sfn_task *t, void *arg, bool resume, struct err *err)
{
    struct sfn_mock *m = arg;
    const struct mock_response *r = NULL;
    long idx = 0;
    char *why = NULL;
    switch (mock_decide(m, t, &r, &idx, &why)) {
    case MOCK_DELEGATE:
        return mock_delegate(m, t, resume, err);
    case MOCK_REFUSE:
        err_set(err, "States.Runtime", "%s", why);
        free(why);
        return -1;
    case MOCK_RESPOND:
        break;
    }
    /* past the last invocation listed, the last response answers again (our choice: the
     * Step Functions Local documentation does not say) */
    const struct mock_step *s = &r->steps[r->n - 1];
    for (size_t i = 0; i < r->n; i++) {
        if (idx >= r->steps[i].lo && idx <= r->steps[i].hi) {
            s = &r->steps[i];
            break;
        }
    }
    if (s->ret == NULL) {
        sfn_task_fail(t, s->error, s->cause);
        return 0;
    }
    /* .sync and .waitForTaskToken: the job is submitted (a token is already generated for
     * the attempt), then the mocked response completes it */
    if (is_callback_pattern(sfn_task_resource(t)))
        sfn_task_submitted(t, s->ret);
    sfn_task_succeed(t, s->ret);
    return 0;
}

static int mock_delegate(struct sfn_mock *m, struct sfn_task *t, bool resume, struct err *err)
{
    const struct sfn_resource_ops *ops;
    void *arg;
    if (sfn_engine_resource_next(m->eng, sfn_task_resource(t), &mock_ops, &ops, &arg) != 0)
        return err_set(err, "States.TaskFailed",
                       "The resource '%s' is not supported: no handler is registered for it, "
                       "and state '%s' is not mocked",
                       sfn_task_resource(t), sfn_task_state_name(t));
    if (!resume)
        return ops->start(t, arg, err);
    if (ops->resume == NULL)
        return err_set(err, "States.TaskFailed",
                       "The task of state '%s' on resource '%s' was in flight before a restart "
                       "and its handler cannot resume it; it is not started again",
                       sfn_task_state_name(t), sfn_task_resource(t));
    return ops->resume(t, arg, err);
}

static int on_mock_start(struct sfn_task *t, void *arg, struct err *err)
{
    return mock_go(t, arg, false, err);
}

/* A mocked attempt completes inside start: one in flight is always a delegated one. A
 * mocked attempt taken back after a restart (its start was never made) is answered again. */
static int on_mock_resume(struct sfn_task *t, void *arg, struct err *err)
{
    return mock_go(t, arg, true, err);
}

static void on_mock_cancel(struct sfn_task *t, void *arg)
{
    struct sfn_mock *m = arg;
    const struct sfn_resource_ops *ops;
    void *next;
    if (sfn_engine_resource_next(m->eng, sfn_task_resource(t), &mock_ops, &ops, &next) == 0 &&
        ops->cancel != NULL)
        ops->cancel(t, next);
}

static void on_mock_detach(struct sfn_task *t, void *arg)
{
    struct sfn_mock *m = arg;
    const struct sfn_resource_ops *ops;
    void *next;
    if (sfn_engine_resource_next(m->eng, sfn_task_resource(t), &mock_ops, &ops, &next) == 0 &&
        ops->detach != NULL)
        ops->detach(t, next);
}

static const struct sfn_resource_ops mock_ops = {
    .start = on_mock_start,
    .cancel = on_mock_cancel,
    .resume = on_mock_resume,
    .detach = on_mock_detach,
};

int sfn_mock_attach(struct sfn_engine *eng, struct sfn_mock *m, const char *machine,
                    const char *name, unsigned flags, struct err *err)
{
    if (m->eng != NULL && m->eng != eng)
        return err_set(err, "States.Runtime", "the mock config is attached to another engine");
    if (machine != NULL && name != NULL && sfn_mock_bind_machine(m, machine, name, err) != 0)
        return -1;
    m->flags = flags;
    if (m->eng == NULL && sfn_engine_register_resource_first(eng, "*", &mock_ops, m, err) != 0)
        return -1;
    m->eng = eng;
    return 0;
}
