/* server/api_machine.c - the state machine operations of the API: CreateStateMachine (api.md
 * 5.1), DescribeStateMachine (5.2), UpdateStateMachine (5.3), DeleteStateMachine (5.4),
 * ListStateMachines (5.5), DescribeStateMachineForExecution (5.6),
 * ValidateStateMachineDefinition (5.7), and the cache of compiled machines StartExecution
 * runs. Creations and updates are committed by the store before it returns: their replies
 * can go out at once. A deletion waits for the engine's commit of the executions it stops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/xalloc.h"

#define DEFAULT_ROLE "arn:aws:iam::123456789012:role/sfn-local"
/* api.md 5.1 step 4: the stored defaults, as logging_text()/tracing_text() write them */
#define DEFAULT_LOGGING "{\"includeExecutionData\":false,\"level\":\"OFF\"}"
#define DEFAULT_TRACING "{\"enabled\":false}"

/* A copy of a store record, kept past the store's callback. */
struct machine_copy {
    bool found;
    char *name, *arn, *type, *role_arn;
    char *definition;
    size_t definition_len;
    int64_t revision_id;
    int64_t created_ms;
    char *status;
    char *logging, *tracing;    /* JSON text, never NULL (the defaults) */
    char *revision_uuid;        /* NULL for the first revision */
    int64_t updated_ms;
};

/* A DeleteStateMachine waiting for the engine's commit of the executions it stopped. */
struct api_deletion {
    struct api *api;
    char *arn;
    struct api_deletion *next, *prev;
};

static int on_machine(const struct sfn_store_machine_rec *m, void *arg)
{
    struct machine_copy *mc = arg;
    mc->found = true;
    mc->name = xstrdup(m->name);
    mc->arn = xstrdup(m->arn);
    mc->type = xstrdup(m->type);
    mc->role_arn = xstrdup(m->role_arn != NULL ? m->role_arn : DEFAULT_ROLE);
    mc->definition = xstrndup(m->definition, m->definition_len);
    mc->definition_len = m->definition_len;
    mc->revision_id = m->revision_id;
    mc->created_ms = m->created_ms;
    mc->status = xstrdup(m->status != NULL ? m->status : "ACTIVE");
    mc->logging = xstrdup(m->logging != NULL ? m->logging : DEFAULT_LOGGING);
    mc->tracing = xstrdup(m->tracing != NULL ? m->tracing : DEFAULT_TRACING);
    mc->revision_uuid = m->revision_uuid != NULL ? xstrdup(m->revision_uuid) : NULL;
    mc->updated_ms = m->updated_ms;
    return 0;
}

static void machine_copy_release(struct machine_copy *mc)
{
    free(mc->name);
    free(mc->arn);
    free(mc->type);
    free(mc->role_arn);
    free(mc->definition);
    free(mc->status);
    free(mc->logging);
    free(mc->tracing);
    free(mc->revision_uuid);
    memset(mc, 0, sizeof(*mc));
}

/* Reads machine `name_or_arn`: 0 (mc->found tells whether it exists) or -1 answered. */
static int machine_read(struct call *c, const char *name_or_arn, struct machine_copy *mc)
{
    struct err err = ERR_INIT;
    memset(mc, 0, sizeof(*mc));
    if (sfn_store_get_machine(c->api->st, name_or_arn, on_machine, mc, &err) < 0) {
        call_fail(c, &err);
        err_clear(&err);
        return -1;
    }
    return 0;
}

void api_machine_drop(const char *key, void *value, void *arg)
{
    struct api_machine *am = value;
    (void)key;
    (void)arg;
    sfn_machine_free(am->m);
    free(am->role_arn);
    free(am);
}

/* Caches `m` (our reference, stolen) as the current revision of its machine, with the Task
 * handlers its .waitForTaskToken resources need. */
static struct api_machine *cache_put(struct api *api, struct sfn_machine *m, int64_t revision_id,
                                     const char *role_arn)
{
    struct api_machine *old = smap_get(&api->machines, sfn_machine_name(m));
    if (old != NULL)
        api_machine_drop(NULL, old, NULL); /* running executions keep their own reference */
    size_t len = 0;
    const char *text = sfn_machine_definition(m, &len);
    api_task_register_callbacks(api, text, len);
    struct api_machine *am = xcalloc(1, sizeof(*am));
    am->m = m;
    am->revision_id = revision_id;
    am->role_arn = xstrdup(role_arn);
    smap_put(&api->machines, sfn_machine_name(m), am);
    return am;
}

int api_machine_get(struct call *c, const char *arn, struct api_machine **out)
{
    struct machine_copy mc;
    if (machine_read(c, arn, &mc) != 0)
        return -1;
    if (!mc.found || strcmp(mc.arn, arn) != 0) {
        machine_copy_release(&mc);
        return 1;
    }
    struct api_machine *am = smap_get(&c->api->machines, mc.name);
    if (am == NULL || am->revision_id != mc.revision_id) {
        struct err err = ERR_INIT;
        enum sfn_machine_type type = strcmp(mc.type, "EXPRESS") == 0 ? SFN_EXPRESS : SFN_STANDARD;
        struct sfn_machine *m = sfn_machine_compile(c->api->eng, mc.definition, mc.definition_len,
                                                    mc.name, type, &err);
        if (m == NULL) { /* recorded by an sfn whose validation differed */
            call_fail(c, &err);
            err_clear(&err);
            machine_copy_release(&mc);
            return -1;
        }
        sfn_machine_set_persist_id(m, mc.revision_id);
        am = cache_put(c->api, m, mc.revision_id, mc.role_arn);
    }
    am->deleting = strcmp(mc.status, "DELETING") == 0;
    machine_copy_release(&mc);
    *out = am;
    return 0;
}

/* loggingConfiguration (api.md 5.1 step 4) as recorded: level (default OFF),
 * includeExecutionData (default false) and the destinations, compact with sorted keys; *out
 * NULL when the request has none. 0, or -1 answered. */
static int logging_text(struct call *c, char **out)
{
    static const char *const levels[] = {"ALL", "ERROR", "FATAL", "OFF"};
    *out = NULL;
    json_t *lc = json_object_get(c->in, "loggingConfiguration");
    if (lc == NULL)
        return 0;
    json_t *level = json_object_get(lc, "level");
    json_t *inc = json_object_get(lc, "includeExecutionData");
    json_t *dest = json_object_get(lc, "destinations");
    bool ok = (level == NULL || json_is_string(level)) && (inc == NULL || json_is_boolean(inc)) &&
              (dest == NULL || json_is_array(dest));
    size_t i;
    json_t *d;
    json_array_foreach(dest, i, d) {
        json_t *group = json_object_get(d, "cloudWatchLogsLogGroup");
        json_t *arn = json_object_get(group, "logGroupArn");
        ok = ok && json_is_object(d) && (group == NULL || json_is_object(group)) &&
             (arn == NULL || json_is_string(arn));
    }
    if (!ok)
        return call_error(c, "SerializationException", "cannot deserialize member "
                          "'loggingConfiguration': a member has the wrong type");
    const char *lv = level != NULL ? json_string_value(level) : "OFF";
    bool known = false;
    for (i = 0; i < ARRAY_LEN(levels); i++)
        known = known || strcmp(lv, levels[i]) == 0;
    if (!known)
        return call_error(c, "ValidationException", "1 validation error detected: Value '%s' at "
                          "'loggingConfiguration.level' failed to satisfy constraint: Member must "
                          "satisfy enum value set: [ALL, ERROR, FATAL, OFF]", lv);
    size_t n = dest != NULL ? json_array_size(dest) : 0;
    if (n > 1 || (strcmp(lv, "OFF") != 0 && n != 1))
        return call_error(c, "InvalidLoggingConfiguration",
                          "Invalid Logging Configuration: Must specify exactly one Log "
                          "Destination.");
    json_t *norm = json_pack("{s:s,s:b}", "level", lv, "includeExecutionData",
                             inc != NULL && json_is_true(inc));
    if (n > 0)
        json_object_set(norm, "destinations", dest); /* a new reference to the request's */
    *out = api_json_sorted(norm);
    json_decref(norm);
    return 0;
}

/* tracingConfiguration as recorded ({"enabled": bool}); NULL when absent. 0 or -1 answered. */
static int tracing_text(struct call *c, char **out)
{
    *out = NULL;
    json_t *tc = json_object_get(c->in, "tracingConfiguration");
    if (tc == NULL)
        return 0;
    json_t *enabled = json_object_get(tc, "enabled");
    if (enabled != NULL && !json_is_boolean(enabled))
        return call_error(c, "SerializationException", "cannot deserialize member "
                          "'tracingConfiguration.enabled': expected a boolean");
    *out = xstrdup(json_is_true(enabled) ? "{\"enabled\":true}" : DEFAULT_TRACING);
    return 0;
}

/* The roleArn member, when given, must look like an ARN. 0 or -1 answered. */
static int check_role(struct call *c, const char *role)
{
    if (role != NULL && (strncmp(role, "arn:", 4) != 0 || strchr(role + 4, ':') == NULL))
        return call_error(c, "InvalidArn", "Invalid Arn: 'Invalid ARN prefix: %s'", role);
    return 0;
}

/* A stored JSON text as a value of the answer. New reference. */
static json_t *stored_json(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    return v != NULL ? v : json_object();
}

static json_t *created_reply(const char *arn, int64_t created_ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "stateMachineArn", json_string(arn));
    json_object_set_new(o, "creationDate", api_time(created_ms));
    return o;
}

void op_create_state_machine(struct call *c)
{
    const char *name = call_str(c, "name");
    const char *def = call_str(c, "definition");
    size_t def_len = json_string_length(json_object_get(c->in, "definition"));
    const char *role = call_str(c, "roleArn");
    const char *type_s = call_str(c, "type");
    enum sfn_machine_type type =
        type_s != NULL && strcmp(type_s, "EXPRESS") == 0 ? SFN_EXPRESS : SFN_STANDARD;
    bool publish = call_bool(c, "publish", false);
    if (call_str(c, "versionDescription") != NULL && !publish) {
        call_error(c, "ValidationException",
                   "Version description can only be set when publish is true");
        return;
    }
    if (api_name_check(c, name) != 0 || check_role(c, role) != 0)
        return;
    char *logging = NULL, *tracing = NULL;
    char *arn = xasprintf("arn:aws:states:%s:%s:stateMachine:%s", c->api->region,
                          c->api->account, name);
    json_t *tags = json_object_get(c->in, "tags");
    int rc = logging_text(c, &logging) != 0 || tracing_text(c, &tracing) != 0 ||
             api_tags_check(c, tags, arn) != 0 ? -1 : 0;
    free(arn);
    if (rc == 0 && publish)
        rc = call_error(c, "ValidationException",
                        "sfnd does not support state machine versions yet: 'publish' must be "
                        "false");
    struct machine_copy mc = {0};
    if (rc == 0)
        rc = machine_read(c, name, &mc);
    if (rc != 0) {
        free(logging);
        free(tracing);
        return;
    }
    if (mc.found && strcmp(mc.status, "DELETING") == 0) {
        call_error(c, "StateMachineDeleting", "State Machine Is Being Deleted: '%s'", mc.arn);
    } else if (mc.found) {
        /* api.md 5.1 step 5: idempotent for the exact same text, type and configuration */
        const char *want = type == SFN_EXPRESS ? "EXPRESS" : "STANDARD";
        if (mc.definition_len == def_len && memcmp(mc.definition, def, def_len) == 0 &&
            strcmp(mc.type, want) == 0 &&
            strcmp(mc.logging, logging != NULL ? logging : DEFAULT_LOGGING) == 0 &&
            strcmp(mc.tracing, tracing != NULL ? tracing : DEFAULT_TRACING) == 0) {
            call_ok(c, created_reply(mc.arn, mc.created_ms), false);
        } else {
            struct err err = ERR_INIT;
            struct sfn_machine *m =
                sfn_machine_compile(c->api->eng, def, def_len, name, type, &err);
            if (m == NULL)
                call_error(c, "InvalidDefinition", "%s", err.cause);
            else
                call_error(c, "StateMachineAlreadyExists", "State Machine Already Exists: '%s'",
                           mc.arn);
            sfn_machine_free(m);
            err_clear(&err);
        }
    }
    if (mc.found) {
        machine_copy_release(&mc);
        free(logging);
        free(tracing);
        return;
    }
    struct err err = ERR_INIT;
    struct sfn_store_machine_config cfg = {role, logging, tracing, tags};
    struct sfn_machine *m =
        sfn_store_create_machine(c->api->st, c->api->eng, name, def, def_len, type, &cfg, &err);
    free(logging);
    free(tracing);
    if (m == NULL) {
        if (strcmp(err.name, "InvalidDefinition") == 0)
            call_error(c, "InvalidDefinition", "%s", err.cause);
        else
            call_fail(c, &err);
        err_clear(&err);
        return;
    }
    /* committed by sfn_store_create_machine: the reply may leave now */
    if (machine_read(c, name, &mc) != 0) {
        sfn_machine_free(m);
        return;
    }
    cache_put(c->api, m, sfn_machine_persist_id(m), role);
    call_ok(c, created_reply(mc.arn, mc.created_ms), false);
    machine_copy_release(&mc);
}

void op_describe_state_machine(struct call *c)
{
    const char *arn = call_str(c, "stateMachineArn");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "stateMachine", &scratch, parts, &n) != 0)
        return;
    free(scratch);
    struct machine_copy mc;
    if (machine_read(c, arn, &mc) != 0)
        return;
    if (!mc.found || n != 7 || strcmp(mc.arn, arn) != 0) {
        /* versions and aliases (8 parts) do not exist yet */
        call_error(c, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn);
        machine_copy_release(&mc);
        return;
    }
    const char *included = call_str(c, "includedData");
    bool meta_only = included != NULL && strcmp(included, "METADATA_ONLY") == 0;
    json_t *o = json_object();
    json_object_set_new(o, "stateMachineArn", json_string(mc.arn));
    json_object_set_new(o, "name", json_string(mc.name));
    json_object_set_new(o, "status", json_string(mc.status));
    json_object_set_new(o, "definition", meta_only ? json_string("{}")
                                                   : json_stringn(mc.definition,
                                                                  mc.definition_len));
    json_object_set_new(o, "roleArn", json_string(mc.role_arn));
    json_object_set_new(o, "type", json_string(mc.type));
    json_object_set_new(o, "creationDate", api_time(mc.created_ms));
    json_object_set_new(o, "loggingConfiguration", stored_json(mc.logging));
    json_object_set_new(o, "tracingConfiguration", stored_json(mc.tracing));
    if (mc.revision_uuid != NULL) /* api.md 5.2: absent until the first update */
        json_object_set_new(o, "revisionId", json_string(mc.revision_uuid));
    machine_copy_release(&mc);
    call_ok(c, o, false);
}

/* api.md 5.3 */
void op_update_state_machine(struct call *c)
{
    const char *arn = call_str(c, "stateMachineArn");
    const char *def = call_str(c, "definition");
    size_t def_len = json_string_length(json_object_get(c->in, "definition"));
    const char *role = call_str(c, "roleArn");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "stateMachine", &scratch, parts, &n) != 0)
        return;
    free(scratch);
    bool publish = call_bool(c, "publish", false);
    if (def == NULL && role == NULL && json_object_get(c->in, "loggingConfiguration") == NULL &&
        json_object_get(c->in, "tracingConfiguration") == NULL &&
        json_object_get(c->in, "encryptionConfiguration") == NULL) {
        call_error(c, "MissingRequiredParameter", "Either the definition, the role ARN, the "
                   "LoggingConfiguration, or the TracingConfiguration must be specified");
        return;
    }
    if (call_str(c, "versionDescription") != NULL && !publish) {
        call_error(c, "ValidationException",
                   "Version description can only be set when publish is true");
        return;
    }
    if (publish) {
        call_error(c, "ValidationException",
                   "sfnd does not support state machine versions yet: 'publish' must be false");
        return;
    }
    char *logging = NULL, *tracing = NULL;
    struct machine_copy mc = {0};
    if (check_role(c, role) != 0 || logging_text(c, &logging) != 0 ||
        tracing_text(c, &tracing) != 0 || machine_read(c, arn, &mc) != 0)
        goto out;
    if (!mc.found || n != 7) {
        call_error(c, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn);
        goto out;
    }
    if (strcmp(mc.status, "DELETING") == 0) {
        call_error(c, "StateMachineDeleting", "State Machine Is Being Deleted: '%s'", arn);
        goto out;
    }
    if (def != NULL) {
        struct err err = ERR_INIT;
        enum sfn_machine_type type = strcmp(mc.type, "EXPRESS") == 0 ? SFN_EXPRESS : SFN_STANDARD;
        struct sfn_machine *m = sfn_machine_compile(c->api->eng, def, def_len, mc.name, type, &err);
        if (m == NULL) {
            call_error(c, "InvalidDefinition", "%s", err.cause);
            err_clear(&err);
            goto out;
        }
        sfn_machine_free(m); /* StartExecution compiles the new revision when it needs it */
    }
    /* equal to the current values: no change (a never-set configuration is the default) */
    if (logging != NULL && strcmp(logging, mc.logging) == 0) {
        free(logging);
        logging = NULL;
    }
    if (tracing != NULL && strcmp(tracing, mc.tracing) == 0) {
        free(tracing);
        tracing = NULL;
    }
    char uuid[37];
    api_uuid(c->api, uuid);
    struct sfn_store_machine_config cfg = {role, logging, tracing, NULL};
    struct machine_copy now = {0};
    struct err err = ERR_INIT;
    int rc = sfn_store_update_machine(c->api->st, arn, def, def_len, &cfg, uuid, on_machine,
                                      &now, &err);
    if (rc < 0) {
        call_fail(c, &err);
    } else if (rc == 1 || !now.found) {
        call_error(c, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn);
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "updateDate", api_time(now.updated_ms));
        if (now.revision_uuid != NULL)
            json_object_set_new(o, "revisionId", json_string(now.revision_uuid));
        call_ok(c, o, false); /* committed by the store */
    }
    err_clear(&err);
    machine_copy_release(&now);
out:
    machine_copy_release(&mc);
    free(logging);
    free(tracing);
}

/* ---- deletion (api.md 5.4) ---- */

struct running_of {
    const char *machine_arn;
    struct sfn_execution **v; /* the machine's running executions (the engine's) */
    size_t n, cap;
};

static void on_running(const char *key, void *value, void *arg)
{
    struct running_of *r = arg;
    struct sfn_execution *ex = value;
    (void)key;
    if (strcmp(sfn_machine_arn(sfn_execution_machine(ex)), r->machine_arn) != 0)
        return;
    if (r->n == r->cap) {
        r->cap = r->cap > 0 ? r->cap * 2 : 8;
        r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n++] = ex;
}

static void deletion_free(struct api_deletion *d)
{
    if (d->prev != NULL)
        d->prev->next = d->next;
    else
        d->api->deletions = d->next;
    if (d->next != NULL)
        d->next->prev = d->prev;
    free(d->arn);
    free(d);
}

/* The engine has committed the end of the machine's executions: its records can go. */
static void on_deletion_committed(void *arg)
{
    struct api_deletion *d = arg;
    struct err err = ERR_INIT;
    if (sfn_store_delete_machine(d->api->st, d->arn, &err) < 0) /* stays DELETING: retried */
        fprintf(stderr, "sfnd: cannot delete '%s': %s\n", d->arn,
                err.cause != NULL ? err.cause : err.name);
    err_clear(&err);
    deletion_free(d);
}

int api_machine_delete(struct api *api, const char *arn, struct err *err)
{
    if (sfn_store_machine_set_status(api->st, arn, "DELETING", err) < 0)
        return -1;
    const char *name = strrchr(arn, ':') + 1;
    struct api_machine *am = smap_del(&api->machines, name);
    if (am != NULL)
        api_machine_drop(NULL, am, NULL);
    /* AWS fails them at their next state transition: ExecutionFailed, States.Runtime, "State
     * machine <name> has been deleted." (AWS re:Post, a machine stuck in DELETING). Here at
     * once, with the same event and error; the failures are committed before the records
     * go (on_deletion_committed), and a worker's token of them is closed (TaskTimedOut). */
    struct running_of r = {arn, NULL, 0, 0};
    smap_each(&api->running, on_running, &r);
    char *cause = xasprintf("State machine %s has been deleted.", name);
    for (size_t i = 0; i < r.n; i++)
        sfn_execution_fail(r.v[i], "States.Runtime", cause);
    free(cause);
    free(r.v);
    struct api_deletion *d = xcalloc(1, sizeof(*d));
    d->api = api;
    d->arn = xstrdup(arn);
    d->next = api->deletions;
    if (api->deletions != NULL)
        api->deletions->prev = d;
    api->deletions = d;
    sfn_engine_after_commit(api->eng, on_deletion_committed, d);
    return 0;
}

void op_delete_state_machine(struct call *c)
{
    const char *arn = call_str(c, "stateMachineArn");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "stateMachine", &scratch, parts, &n) != 0)
        return;
    bool labelled = strchr(parts[6], '/') != NULL;
    free(scratch);
    if (labelled) {
        call_error(c, "ValidationException", "The state machine ARN must not be qualified by a "
                   "Map state label: '%s'", arn);
        return;
    }
    struct machine_copy mc;
    if (machine_read(c, arn, &mc) != 0)
        return;
    if (!mc.found || n != 7) { /* api.md 5.4: an unknown machine is not an error */
        machine_copy_release(&mc);
        call_ok(c, json_object(), false);
        return;
    }
    machine_copy_release(&mc);
    struct err err = ERR_INIT;
    if (api_machine_delete(c->api, arn, &err) != 0) {
        call_fail(c, &err);
        err_clear(&err);
        return;
    }
    call_ok(c, json_object(), true); /* after the removal (called back before this reply) */
}

struct deleting {
    char **arns;
    size_t n;
};

static int on_deleting(const struct sfn_store_machine_rec *m, void *arg)
{
    struct deleting *d = arg;
    if (m->status != NULL && strcmp(m->status, "DELETING") == 0) {
        d->arns = xrealloc(d->arns, (d->n + 1) * sizeof(*d->arns));
        d->arns[d->n++] = xstrdup(m->arn);
    }
    return 0;
}

int api_machine_finish_deletions(struct api *api, struct err *err)
{
    struct deleting d = {NULL, 0};
    int rc = sfn_store_list_machines(api->st, NULL, 0, on_deleting, &d, err) < 0 ? -1 : 0;
    for (size_t i = 0; i < d.n; i++) {
        if (rc == 0)
            rc = api_machine_delete(api, d.arns[i], err);
        free(d.arns[i]);
    }
    free(d.arns);
    return rc;
}

void api_machine_release(struct api *api)
{
    while (api->deletions != NULL) /* the engine stopped before committing */
        deletion_free(api->deletions);
}

/* api.md 5.6: the revision the execution runs */
void op_describe_state_machine_for_execution(struct call *c)
{
    const char *arn = call_str(c, "executionArn");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "execution", &scratch, parts, &n) != 0)
        return;
    free(scratch);
    struct machine_copy mc = {0};
    struct err err = ERR_INIT;
    int rc = sfn_store_execution_machine(c->api->st, arn, on_machine, &mc, &err);
    if (rc < 0) {
        call_fail(c, &err);
        err_clear(&err);
        return;
    }
    if (rc == 1) {
        call_error(c, "ExecutionDoesNotExist", "Execution Does Not Exist: '%s'", arn);
        return;
    }
    const char *included = call_str(c, "includedData");
    bool meta_only = included != NULL && strcmp(included, "METADATA_ONLY") == 0;
    json_t *o = json_object();
    json_object_set_new(o, "stateMachineArn", json_string(mc.arn));
    json_object_set_new(o, "name", json_string(mc.name));
    json_object_set_new(o, "definition", meta_only ? json_string("{}")
                                                   : json_stringn(mc.definition,
                                                                  mc.definition_len));
    json_object_set_new(o, "roleArn", json_string(mc.role_arn));
    json_object_set_new(o, "updateDate", api_time(mc.updated_ms));
    json_object_set_new(o, "loggingConfiguration", stored_json(mc.logging));
    json_object_set_new(o, "tracingConfiguration", stored_json(mc.tracing));
    if (mc.revision_uuid != NULL)
        json_object_set_new(o, "revisionId", json_string(mc.revision_uuid));
    machine_copy_release(&mc);
    call_ok(c, o, false);
}

struct machine_page {
    json_t *items; /* ListStateMachines items (owned) */
};

static int on_list_machine(const struct sfn_store_machine_rec *m, void *arg)
{
    struct machine_page *p = arg;
    json_t *o = json_object();
    json_object_set_new(o, "stateMachineArn", json_string(m->arn));
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "type", json_string(m->type));
    json_object_set_new(o, "creationDate", api_time(m->created_ms));
    json_array_append_new(p->items, o);
    return 0;
}

void op_list_state_machines(struct call *c)
{
    char *after = NULL;
    if (api_token_read(c, "machines", &after) != 0)
        return;
    size_t size = api_page_size(c);
    struct machine_page p = {json_array()};
    struct err err = ERR_INIT;
    /* one more than the page: whether a next page exists */
    long n = sfn_store_list_machines(c->api->st, after, size + 1, on_list_machine, &p, &err);
    free(after);
    if (n < 0) {
        call_fail(c, &err);
        err_clear(&err);
        json_decref(p.items);
        return;
    }
    json_t *o = json_object();
    if ((size_t)n > size) {
        json_array_remove(p.items, size);
        const char *last = json_string_value(
            json_object_get(json_array_get(p.items, size - 1), "name"));
        char *token = api_token_make(last, "machines");
        json_object_set_new(o, "nextToken", json_string(token));
        free(token);
    }
    json_object_set_new(o, "stateMachines", p.items);
    call_ok(c, o, false);
}

static void on_diag(const char *code, const char *message, const char *location, void *arg)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "severity", "ERROR", "code", code, "message", message);
    if (location != NULL)
        json_object_set_new(o, "location", json_string(location));
    json_array_append_new(arg, o);
}

void op_validate_definition(struct call *c)
{
    const char *def = call_str(c, "definition");
    size_t len = json_string_length(json_object_get(c->in, "definition"));
    const char *type_s = call_str(c, "type");
    enum sfn_machine_type type =
        type_s != NULL && strcmp(type_s, "EXPRESS") == 0 ? SFN_EXPRESS : SFN_STANDARD;
    size_t max = (size_t)call_int(c, "maxResults", 0);
    if (max == 0)
        max = 100; /* api.md 5.7 */
    json_t *diags = json_array();
    sfn_validate(def, len, type, on_diag, diags);
    bool truncated = json_array_size(diags) > max;
    bool failed = json_array_size(diags) > 0; /* every diagnostic of ours is an ERROR */
    while (json_array_size(diags) > max)
        json_array_remove(diags, json_array_size(diags) - 1);
    json_t *o = json_object();
    json_object_set_new(o, "result", json_string(failed ? "FAIL" : "OK"));
    json_object_set_new(o, "diagnostics", diags);
    json_object_set_new(o, "truncated", json_boolean(truncated));
    call_ok(c, o, false);
}
