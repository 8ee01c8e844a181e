/* server/api_machine.c - the state machine operations of the API: CreateStateMachine (api.md
 * 5.1), DescribeStateMachine (5.2), ListStateMachines (5.5), ValidateStateMachineDefinition
 * (5.7), and the cache of compiled machines StartExecution runs. A machine is recorded by
 * sfn_store_machine, which commits before it returns: its reply can go out at once. */
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/xalloc.h"

#define DEFAULT_ROLE "arn:aws:iam::123456789012:role/sfn-local"

/* A copy of a store record, kept past the store's callback. */
struct machine_copy {
    bool found;
    char *name, *arn, *type, *role_arn;
    char *definition;
    size_t definition_len;
    int64_t revision_id;
    int64_t created_ms;
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
    return 0;
}

static void machine_copy_release(struct machine_copy *mc)
{
    free(mc->name);
    free(mc->arn);
    free(mc->type);
    free(mc->role_arn);
    free(mc->definition);
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

/* Caches `m` (our reference, stolen) as the current revision of its machine. */
static struct api_machine *cache_put(struct api *api, struct sfn_machine *m, int64_t revision_id,
                                     const char *role_arn)
{
    struct api_machine *old = smap_get(&api->machines, sfn_machine_name(m));
    if (old != NULL)
        api_machine_drop(NULL, old, NULL); /* running executions keep their own reference */
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
    machine_copy_release(&mc);
    *out = am;
    return 0;
}

/* api.md 5.1 step 4 */
static int check_logging(struct call *c)
{
    json_t *lc = json_object_get(c->in, "loggingConfiguration");
    if (lc == NULL)
        return 0;
    const char *level = json_string_value(json_object_get(lc, "level"));
    json_t *dest = json_object_get(lc, "destinations");
    size_t n = json_is_array(dest) ? json_array_size(dest) : 0;
    if (n > 1 || (level != NULL && strcmp(level, "OFF") != 0 && n != 1))
        return call_error(c, "InvalidLoggingConfiguration",
                          "Invalid Logging Configuration: Must specify exactly one Log "
                          "Destination.");
    return 0;
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
    if (api_name_check(c, name) != 0)
        return;
    if (strncmp(role, "arn:", 4) != 0 || strchr(role + 4, ':') == NULL) {
        call_error(c, "InvalidArn", "Invalid Arn: 'Invalid ARN prefix: %s'", role);
        return;
    }
    if (check_logging(c) != 0)
        return;
    if (publish) {
        call_error(c, "ValidationException",
                   "sfnd does not support state machine versions yet: 'publish' must be false");
        return;
    }
    struct machine_copy mc;
    if (machine_read(c, name, &mc) != 0)
        return;
    if (mc.found && strcmp(mc.name, name) == 0) {
        /* api.md 5.1 step 5: idempotent for the exact same text and type */
        const char *want = type == SFN_EXPRESS ? "EXPRESS" : "STANDARD";
        if (mc.definition_len == def_len && memcmp(mc.definition, def, def_len) == 0 &&
            strcmp(mc.type, want) == 0) {
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
        machine_copy_release(&mc);
        return;
    }
    machine_copy_release(&mc);
    struct err err = ERR_INIT;
    struct sfn_machine *m =
        sfn_store_machine(c->api->st, c->api->eng, name, def, def_len, type, role, &err);
    if (m == NULL) {
        if (strcmp(err.name, "InvalidDefinition") == 0)
            call_error(c, "InvalidDefinition", "%s", err.cause);
        else
            call_fail(c, &err);
        err_clear(&err);
        return;
    }
    /* committed by sfn_store_machine: the reply may leave now */
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
    json_object_set_new(o, "status", json_string("ACTIVE"));
    json_object_set_new(o, "definition", meta_only ? json_string("{}")
                                                   : json_stringn(mc.definition,
                                                                  mc.definition_len));
    json_object_set_new(o, "roleArn", json_string(mc.role_arn));
    json_object_set_new(o, "type", json_string(mc.type));
    json_object_set_new(o, "creationDate", api_time(mc.created_ms));
    /* api.md 5.1: the stored defaults */
    json_object_set_new(o, "loggingConfiguration",
                        json_pack("{s:s,s:b}", "level", "OFF", "includeExecutionData", 0));
    json_object_set_new(o, "tracingConfiguration", json_pack("{s:b}", "enabled", 0));
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
