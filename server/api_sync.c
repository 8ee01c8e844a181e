/* server/api_sync.c - StartSyncExecution (api.md 6.2): an Express execution run to
 * completion and answered in one response, HTTP 200 whatever its outcome. The request is
 * parked (server_req_defer) while the execution runs on the loop with the others; its on_done,
 * called after the engine's commit of the end, writes the answer. Express executions last at
 * most 5 minutes (the engine times them out: TIMED_OUT). */
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

/* One StartSyncExecution waiting for its execution. */
struct sync_call {
    struct api *api;
    struct server_req *req;        /* NULL once the client has gone */
    bool metadata_only;            /* includedData METADATA_ONLY: no input or output */
    char *trace_header;            /* owned, or NULL */
    struct sync_call *next, *prev; /* api->exec_state's list */
};

/* What the execution operations keep between requests (created on first use). */
struct api_exec_state {
    struct sync_call *syncs;       /* StartSyncExecution calls still running */
    struct smap tokens;            /* RedriveExecution: execution ARN -> struct redrive_tokens */
};

static struct api_exec_state *exec_state_get(struct api *api)
{
    if (api->exec_state == NULL) {
        api->exec_state = xcalloc(1, sizeof(*api->exec_state));
        smap_init(&api->exec_state->tokens);
    }
    return api->exec_state;
}

struct smap *api_redrive_tokens(struct api *api)
{
    return &exec_state_get(api)->tokens;
}

static void sync_call_free(struct sync_call *sc)
{
    struct api_exec_state *es = sc->api->exec_state;
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        es->syncs = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    free(sc->trace_header);
    free(sc);
}

static void on_sync_gone(void *arg)
{
    struct sync_call *sc = arg;
    sc->req = NULL; /* the execution goes on; its answer has nowhere to go */
}

/* api.md 6.2: billed in 100 ms steps (at least one) and 64 MB */
static json_t *billing(int64_t ms)
{
    int64_t billed = ms <= 0 ? 100 : (ms + 99) / 100 * 100;
    return json_pack("{s:I,s:I}", "billedDurationInMilliseconds", (json_int_t)billed,
                     "billedMemoryUsedInMB", (json_int_t)64);
}

/* The reply of api.md 6.2 for the ended execution `ex`. New reference. */
static json_t *sync_reply(const struct sync_call *sc, struct sfn_execution *ex)
{
    struct sfn_machine *m = sfn_execution_machine(ex);
    enum sfn_status status = sfn_execution_status(ex);
    json_t *o = json_object();
    json_object_set_new(o, "executionArn", json_string(sfn_execution_arn(ex)));
    json_object_set_new(o, "stateMachineArn", json_string(sfn_machine_arn(m)));
    json_object_set_new(o, "name", json_string(sfn_execution_name(ex)));
    json_object_set_new(o, "startDate", api_time(sfn_execution_start_ms(ex)));
    json_object_set_new(o, "stopDate", api_time(sfn_execution_stop_ms(ex)));
    json_object_set_new(o, "status", json_string(sfn_status_name(status)));
    if (!sc->metadata_only) {
        char *in = json_compact(sfn_execution_input(ex));
        json_object_set_new(o, "input", json_string(in));
        free(in);
        json_object_set_new(o, "inputDetails", json_pack("{s:b}", "included", 1));
        if (status == SFN_SUCCEEDED) {
            char *out = json_compact(sfn_execution_output(ex));
            json_object_set_new(o, "output", json_string(out));
            free(out);
        }
        /* present even on failure (api.md 6.2) */
        json_object_set_new(o, "outputDetails", json_pack("{s:b}", "included", 1));
    }
    const struct err *e = sfn_execution_error(ex);
    if (status != SFN_SUCCEEDED && e->set) {
        if (e->name[0] != '\0')
            json_object_set_new(o, "error", json_string(e->name));
        if (e->cause != NULL && e->cause[0] != '\0')
            json_object_set_new(o, "cause", json_string(e->cause));
    }
    if (sc->trace_header != NULL)
        json_object_set_new(o, "traceHeader", json_string(sc->trace_header));
    json_object_set_new(o, "billingDetails",
                        billing(sfn_execution_stop_ms(ex) - sfn_execution_start_ms(ex)));
    return o;
}

/* After the commit of the execution's end. */
static void on_sync_done(struct sfn_execution *ex, void *arg)
{
    struct sync_call *sc = arg;
    if (sc->req != NULL) {
        json_t *o = sync_reply(sc, ex);
        char *text = json_compact(o);
        json_decref(o);
        server_reply(sc->req, 200, NULL, text, strlen(text), false);
        free(text);
    }
    smap_del(&sc->api->running, sfn_execution_arn(ex));
    sync_call_free(sc);
    sfn_execution_free(ex);
}

/* api.md 6.2 */
void op_start_sync_execution(struct call *c)
{
    const char *arn = call_str(c, "stateMachineArn");
    const char *name = call_str(c, "name");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "stateMachine", &scratch, parts, &n) != 0)
        return;
    free(scratch);
    if (name != NULL && api_name_check(c, name) != 0)
        return;
    struct api_machine *am = NULL;
    int rc = n == 7 ? api_machine_get(c, arn, &am) : 1; /* no versions or aliases yet */
    if (rc == 0 && am->deleting)
        rc = call_error(c, "StateMachineDeleting", "State Machine Is Being Deleted: '%s'", arn);
    if (rc == 0 && sfn_machine_type(am->m) != SFN_EXPRESS)
        rc = call_error(c, "StateMachineTypeNotSupported",
                        "This operation is not supported by this type of state machine");
    if (rc != 0) {
        if (rc == 1)
            call_error(c, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn);
        return;
    }
    json_t *input = api_start_input(c);
    if (input == NULL)
        return;
    struct api_exec_state *es = exec_state_get(c->api);
    struct sync_call *sc = xcalloc(1, sizeof(*sc));
    sc->api = c->api;
    sc->req = c->req;
    const char *included = call_str(c, "includedData");
    sc->metadata_only = included != NULL && strcmp(included, "METADATA_ONLY") == 0;
    const char *trace = call_str(c, "traceHeader");
    sc->trace_header = trace != NULL ? xstrdup(trace) : NULL;
    struct sfn_execution_options opt = {name, am->role_arn, on_sync_done, NULL, sc};
    struct err err = ERR_INIT;
    struct sfn_execution *ex = sfn_execution_start(c->api->eng, am->m, input, &opt, &err);
    json_decref(input);
    if (ex == NULL) {
        free(sc->trace_header);
        free(sc);
        call_error(c, "InvalidExecutionInput", "Invalid State Machine Execution Input: '%s'",
                   err.cause != NULL ? err.cause : err.name);
        err_clear(&err);
        return;
    }
    /* tracked like the others: DeleteStateMachine stops it before its records go */
    smap_put(&c->api->running, sfn_execution_arn(ex), ex);
    sc->next = es->syncs;
    if (es->syncs != NULL)
        es->syncs->prev = sc;
    es->syncs = sc;
    server_req_defer(c->req, on_sync_gone, sc); /* on_done answers, never from here */
}

static void drop_tokens(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

void api_exec_release(struct api *api)
{
    struct api_exec_state *es = api->exec_state;
    if (es == NULL)
        return;
    /* the engine has released the executions: their on_done will never come */
    while (es->syncs != NULL)
        sync_call_free(es->syncs);
    smap_each(&es->tokens, drop_tokens, NULL);
    smap_release(&es->tokens);
    free(es);
    api->exec_state = NULL;
}
