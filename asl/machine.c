/* asl/machine.c - compiles a validated definition into struct asl_machine: states in arrays,
 * transitions as indexes, paths/templates/rules/intrinsics compiled once. Validation
 * (asl/validate.c) runs first, so compilation only reports what it cannot build. */
#include "asl/machine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/xalloc.h"

static const char *const type_names[] = {
    [ASL_PASS] = "Pass",         [ASL_TASK] = "Task",         [ASL_CHOICE] = "Choice",
    [ASL_WAIT] = "Wait",         [ASL_SUCCEED] = "Succeed",   [ASL_FAIL] = "Fail",
    [ASL_PARALLEL] = "Parallel", [ASL_MAP] = "Map",
};

const char *asl_state_type_name(enum asl_state_type t)
{
    return type_names[t];
}

bool asl_errmatch_test(const struct asl_errmatch *m, const char *name)
{
    /* asl.md 9.4: neither is caught by States.ALL, nor by an explicit States.Runtime */
    if (strcmp(name, ASL_ERR_RUNTIME) == 0)
        return false;
    bool all_excluded = strcmp(name, ASL_ERR_DATA_LIMIT) == 0;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->names[i], ASL_ERR_ALL) == 0) {
            if (!all_excluded)
                return true;
        } else if (strcmp(m->names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Compile context: where diagnostics go and the location prefix of the current scope. */
struct cc {
    struct asl_diags *d;
    struct asl_machine *m;
};

static int states_compile(struct cc *c, struct asl_states *ss, json_t *obj, const char *loc,
                          const struct asl_state *parent);

/* The index of state `name` in ss (hashed through the States object, whose keys are in
 * the same order as ss->v), or ASL_NO_STATE. */
static int state_index(const struct asl_states *ss, const char *name)
{
    json_t *idx = json_object_get(ss->index, name);
    return idx != NULL ? (int)json_integer_value(idx) : ASL_NO_STATE;
}

static int64_t int_field(json_t *st, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(st, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return dflt;
}

static void diag_err(struct cc *c, const char *loc, const char *field, struct err *err)
{
    asl_diags_add(c->d, "SCHEMA_VALIDATION_FAILED", loc, "%s: %s",
                  field, err->cause != NULL ? err->cause : "invalid");
    err_clear(err);
}

static struct asl_path *path_field(struct cc *c, json_t *st, const char *key, unsigned flags,
                                   const char *loc)
{
    json_t *v = json_object_get(st, key);
    if (!json_is_string(v))
        return NULL;
    struct err err = ERR_INIT;
    struct asl_path *p = asl_path_compile(json_string_value(v), flags, &err);
    if (p == NULL)
        diag_err(c, loc, key, &err);
    return p;
}

static void opath_field(struct cc *c, json_t *st, const char *key, unsigned flags,
                        const char *loc, struct asl_opath *out)
{
    json_t *v = json_object_get(st, key);
    out->path = NULL;
    out->is_null = json_is_null(v);
    if (json_is_string(v)) {
        out->path = path_field(c, st, key, flags, loc);
        if (out->path != NULL && asl_path_is_root(out->path)) {
            asl_path_free(out->path); /* "$" is the default: no work at run time */
            out->path = NULL;
        }
    }
}

static struct asl_tmpl *tmpl_field(struct cc *c, json_t *st, const char *key, const char *loc)
{
    json_t *v = json_object_get(st, key);
    if (v == NULL)
        return NULL;
    struct err err = ERR_INIT;
    struct asl_tmpl *t = asl_tmpl_compile(v, &err);
    if (t == NULL)
        diag_err(c, loc, key, &err);
    return t;
}

static void errmatch_compile(json_t *arr, struct asl_errmatch *m)
{
    size_t n = json_array_size(arr);
    m->names = xcalloc(n, sizeof(char *));
    m->n = 0;
    m->all = false;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s == NULL)
            continue;
        m->names[m->n++] = xstrdup(s);
        if (strcmp(s, ASL_ERR_ALL) == 0)
            m->all = true;
    }
}

static void errmatch_release(struct asl_errmatch *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->names[i]);
    free(m->names);
}

static void strsrc_compile(struct cc *c, json_t *st, const char *lit, const char *pathkey,
                           const char *loc, struct asl_strsrc *out)
{
    memset(out, 0, sizeof(*out));
    out->field = pathkey;
    json_t *v = json_object_get(st, lit);
    if (json_is_string(v))
        out->literal = xstrdup(json_string_value(v));
    v = json_object_get(st, pathkey);
    if (!json_is_string(v))
        return;
    const char *text = json_string_value(v);
    struct err err = ERR_INIT;
    if (asl_intrinsic_is_call(text)) {
        out->call = asl_intrinsic_parse(text, &err);
    } else {
        out->path = asl_path_compile(text, ASL_PATH_REFERENCE, &err);
    }
    if (err.set)
        diag_err(c, loc, pathkey, &err);
}

static void strsrc_release(struct asl_strsrc *s)
{
    free(s->literal);
    asl_path_free(s->path);
    asl_intrinsic_free(s->call);
}

static int state_compile(struct cc *c, struct asl_states *ss, struct asl_state *s, json_t *st,
                         const char *loc)
{
    const char *type = json_string_value(json_object_get(st, "Type"));
    s->type = ASL_PASS;
    for (size_t i = 0; i < ARRAY_LEN(type_names); i++) {
        if (type != NULL && strcmp(type, type_names[i]) == 0)
            s->type = (enum asl_state_type)i;
    }
    s->next = ASL_NO_STATE;
    s->default_next = ASL_NO_STATE;
    s->seconds = -1;
    s->tolerated_pct = -1;
    s->tolerated_count = -1;
    json_t *next = json_object_get(st, "Next");
    if (json_is_string(next))
        s->next = state_index(ss, json_string_value(next));

    opath_field(c, st, "InputPath", 0, loc, &s->input_path);
    opath_field(c, st, "OutputPath", 0, loc, &s->output_path);
    opath_field(c, st, "ResultPath", ASL_PATH_REFERENCE | ASL_PATH_NO_CONTEXT, loc,
                &s->result_path);
    if (s->type != ASL_MAP)
        s->parameters = tmpl_field(c, st, "Parameters", loc);
    s->result_selector = tmpl_field(c, st, "ResultSelector", loc);
    json_t *result = json_object_get(st, "Result");
    if (result != NULL) {
        s->result = json_incref(result);
        s->result_size = json_compact_size(result, SIZE_MAX);
    }

    json_t *retry = json_object_get(st, "Retry");
    if (json_is_array(retry)) {
        s->n_retry = json_array_size(retry);
        s->retry = xcalloc(s->n_retry, sizeof(*s->retry));
        for (size_t i = 0; i < s->n_retry; i++) {
            json_t *r = json_array_get(retry, i);
            struct asl_retrier *rt = &s->retry[i];
            errmatch_compile(json_object_get(r, "ErrorEquals"), &rt->on);
            rt->interval_s = int_field(r, "IntervalSeconds", 1);
            rt->max_attempts = int_field(r, "MaxAttempts", 3);
            json_t *br = json_object_get(r, "BackoffRate");
            rt->backoff = json_is_number(br) ? json_number_value(br) : 2.0;
            rt->max_delay_s = int_field(r, "MaxDelaySeconds", 0);
            const char *js = json_string_value(json_object_get(r, "JitterStrategy"));
            rt->jitter_full = js != NULL && strcmp(js, "FULL") == 0;
        }
    }
    json_t *catch = json_object_get(st, "Catch");
    if (json_is_array(catch)) {
        s->n_catch = json_array_size(catch);
        s->catch = xcalloc(s->n_catch, sizeof(*s->catch));
        for (size_t i = 0; i < s->n_catch; i++) {
            json_t *r = json_array_get(catch, i);
            struct asl_catcher *ct = &s->catch[i];
            errmatch_compile(json_object_get(r, "ErrorEquals"), &ct->on);
            const char *n = json_string_value(json_object_get(r, "Next"));
            ct->next = n != NULL ? state_index(ss, n) : ASL_NO_STATE;
            struct asl_opath op;
            opath_field(c, r, "ResultPath", ASL_PATH_REFERENCE | ASL_PATH_NO_CONTEXT, loc, &op);
            ct->result_path = op.path;
            ct->result_path_null = op.is_null;
        }
    }

    switch (s->type) {
    case ASL_TASK: {
        s->resource = xstrdup(json_string_value(json_object_get(st, "Resource")) != NULL
                                  ? json_string_value(json_object_get(st, "Resource"))
                                  : "");
        s->has_timeout = json_object_get(st, "TimeoutSeconds") != NULL ||
                         json_object_get(st, "TimeoutSecondsPath") != NULL;
        s->has_heartbeat = json_object_get(st, "HeartbeatSeconds") != NULL ||
                           json_object_get(st, "HeartbeatSecondsPath") != NULL;
        s->timeout_s = int_field(st, "TimeoutSeconds", 0);
        s->heartbeat_s = int_field(st, "HeartbeatSeconds", 0);
        s->timeout_path = path_field(c, st, "TimeoutSecondsPath", ASL_PATH_REFERENCE, loc);
        s->heartbeat_path = path_field(c, st, "HeartbeatSecondsPath", ASL_PATH_REFERENCE, loc);
        s->credentials = tmpl_field(c, st, "Credentials", loc);
        break;
    }
    case ASL_CHOICE: {
        json_t *choices = json_object_get(st, "Choices");
        s->n_choices = json_array_size(choices);
        s->choices = xcalloc(s->n_choices, sizeof(*s->choices));
        for (size_t i = 0; i < s->n_choices; i++) {
            json_t *r = json_array_get(choices, i);
            struct err err = ERR_INIT;
            s->choices[i].rule = asl_rule_compile(r, &err);
            if (s->choices[i].rule == NULL)
                diag_err(c, loc, "Choices", &err);
            const char *n = json_string_value(json_object_get(r, "Next"));
            s->choices[i].next = n != NULL ? state_index(ss, n) : ASL_NO_STATE;
        }
        const char *dflt = json_string_value(json_object_get(st, "Default"));
        if (dflt != NULL)
            s->default_next = state_index(ss, dflt);
        break;
    }
    case ASL_WAIT: {
        s->seconds = int_field(st, "Seconds", -1);
        const char *ts = json_string_value(json_object_get(st, "Timestamp"));
        if (ts != NULL)
            s->timestamp = xstrdup(ts);
        s->seconds_path = path_field(c, st, "SecondsPath", ASL_PATH_REFERENCE, loc);
        s->timestamp_path = path_field(c, st, "TimestampPath", ASL_PATH_REFERENCE, loc);
        break;
    }
    case ASL_FAIL:
        strsrc_compile(c, st, "Error", "ErrorPath", loc, &s->error);
        strsrc_compile(c, st, "Cause", "CausePath", loc, &s->cause);
        break;
    case ASL_PARALLEL: {
        json_t *branches = json_object_get(st, "Branches");
        s->n_branches = json_array_size(branches);
        s->branches = xcalloc(s->n_branches, sizeof(*s->branches));
        for (size_t i = 0; i < s->n_branches; i++) {
            char *bl = xasprintf("%s/Branches[%zu]", loc, i);
            states_compile(c, &s->branches[i], json_array_get(branches, i), bl, s);
            free(bl);
        }
        break;
    }
    case ASL_MAP: {
        json_t *proc = json_object_get(st, "ItemProcessor");
        const char *pkey = "ItemProcessor";
        if (proc == NULL) {
            proc = json_object_get(st, "Iterator");
            pkey = "Iterator";
        }
        s->processor = xcalloc(1, sizeof(*s->processor));
        char *pl = xasprintf("%s/%s", loc, pkey);
        states_compile(c, s->processor, proc, pl, s);
        free(pl);
        s->items_path = path_field(c, st, "ItemsPath", ASL_PATH_REFERENCE, loc);
        if (s->items_path != NULL && asl_path_is_root(s->items_path)) {
            asl_path_free(s->items_path);
            s->items_path = NULL;
        }
        s->item_selector = tmpl_field(c, st, "ItemSelector", loc);
        if (s->item_selector == NULL)
            s->item_selector = tmpl_field(c, st, "Parameters", loc);
        s->max_concurrency = int_field(st, "MaxConcurrency", 0);
        s->max_concurrency_path = path_field(c, st, "MaxConcurrencyPath", ASL_PATH_REFERENCE, loc);
        json_t *tp = json_object_get(st, "ToleratedFailurePercentage");
        if (json_is_number(tp))
            s->tolerated_pct = json_number_value(tp);
        s->tolerated_pct_path =
            path_field(c, st, "ToleratedFailurePercentagePath", ASL_PATH_REFERENCE, loc);
        s->tolerated_count = int_field(st, "ToleratedFailureCount", -1);
        s->tolerated_count_path =
            path_field(c, st, "ToleratedFailureCountPath", ASL_PATH_REFERENCE, loc);
        break;
    }
    default:
        break;
    }
    return 0;
}

static int states_compile(struct cc *c, struct asl_states *ss, json_t *obj, const char *loc,
                          const struct asl_state *parent)
{
    json_t *states = json_object_get(obj, "States");
    ss->n = json_object_size(states);
    ss->v = xcalloc(ss->n, sizeof(*ss->v));
    ss->parent = parent;
    size_t i = 0;
    const char *name;
    json_t *st;
    ss->index = json_object();
    json_object_foreach(states, name, st) {
        ss->v[i].name = xstrdup(name);
        ss->v[i].index = (int)i;
        ss->v[i].owner = ss;
        json_object_set_new(ss->index, name, json_integer((json_int_t)i));
        i++;
    }
    const char *start = json_string_value(json_object_get(obj, "StartAt"));
    ss->start = start != NULL ? state_index(ss, start) : ASL_NO_STATE;
    i = 0;
    json_object_foreach(states, name, st) {
        char *sl = xasprintf("%s/States/%s", loc, name);
        state_compile(c, ss, &ss->v[i], st, sl);
        free(sl);
        i++;
    }
    c->m->n_states += ss->n;
    return 0;
}

static void states_release(struct asl_states *ss);

static void state_release(struct asl_state *s)
{
    free(s->name);
    asl_path_free(s->input_path.path);
    asl_path_free(s->output_path.path);
    asl_path_free(s->result_path.path);
    asl_tmpl_free(s->parameters);
    asl_tmpl_free(s->result_selector);
    json_decref(s->result);
    for (size_t i = 0; i < s->n_retry; i++)
        errmatch_release(&s->retry[i].on);
    free(s->retry);
    for (size_t i = 0; i < s->n_catch; i++) {
        errmatch_release(&s->catch[i].on);
        asl_path_free(s->catch[i].result_path);
    }
    free(s->catch);
    free(s->resource);
    asl_path_free(s->timeout_path);
    asl_path_free(s->heartbeat_path);
    asl_tmpl_free(s->credentials);
    for (size_t i = 0; i < s->n_choices; i++)
        asl_rule_free(s->choices[i].rule);
    free(s->choices);
    free(s->timestamp);
    asl_path_free(s->seconds_path);
    asl_path_free(s->timestamp_path);
    strsrc_release(&s->error);
    strsrc_release(&s->cause);
    for (size_t i = 0; i < s->n_branches; i++)
        states_release(&s->branches[i]);
    free(s->branches);
    if (s->processor != NULL) {
        states_release(s->processor);
        free(s->processor);
    }
    asl_path_free(s->items_path);
    asl_tmpl_free(s->item_selector);
    asl_path_free(s->max_concurrency_path);
    asl_path_free(s->tolerated_pct_path);
    asl_path_free(s->tolerated_count_path);
}

static void states_release(struct asl_states *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        state_release(&ss->v[i]);
    free(ss->v);
    json_decref(ss->index);
}

struct asl_machine *asl_machine_compile(const char *text, size_t len, enum asl_machine_type type,
                                        struct asl_diags *d)
{
    size_t before = d->n;
    if (asl_validate(text, len, type, d) != 0 || d->n > before)
        return NULL;
    struct err err = ERR_INIT;
    json_t *def = json_parse(text, len, true, &err);
    if (def == NULL) {
        asl_diags_add(d, "INVALID_JSON_DESCRIPTION", NULL, "%s", err.cause);
        err_clear(&err);
        return NULL;
    }
    struct asl_machine *m = xcalloc(1, sizeof(*m));
    m->definition = def;
    m->type = type;
    m->timeout_s = int_field(def, "TimeoutSeconds", 0);
    struct cc c = {d, m};
    states_compile(&c, &m->top, def, "", NULL);
    if (d->n > before) {
        asl_machine_free(m);
        return NULL;
    }
    return m;
}

void asl_machine_free(struct asl_machine *m)
{
    if (m == NULL)
        return;
    states_release(&m->top);
    json_decref(m->definition);
    free(m);
}
