/* server/api_task.c - task tokens (api.md 8.3): SendTaskSuccess, SendTaskFailure and
 * SendTaskHeartbeat find the attempt by its token and complete it or reset its heartbeat
 * clock through the engine's Task seam; and the Task resource handler of .waitForTaskToken
 * resources, which holds the attempt until a token call arrives (the service the resource
 * names is not called: the token reaches the worker through $$.Task.Token, e.g. in the
 * TaskScheduled event's parameters).
 *
 * A token is the engine's per-attempt token (sfn_task_token: 256 random bits, so it cannot
 * be forged from what an execution shows), the same after a restart: the engine hands
 * in-flight attempts back through `resume`, which files them
 * under their token again. So a worker's token survives a crash of the daemon, and
 * nothing about tokens needs a table of its own. Replies that complete or heartbeat a task
 * leave after the engine has committed the change. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/xalloc.h"

/* ---- the attempts the API holds ---- */

struct api_task *api_task_new(struct api *api, struct sfn_task *t, struct api_activity *act)
{
    struct api_task *at = xcalloc(1, sizeof(*at));
    at->api = api;
    at->t = t;
    at->act = act;
    at->token = xstrdup(sfn_task_token(t));
    struct api_task *old = smap_get(&api->tasks, at->token);
    if (old != NULL) /* cannot happen: tokens are unique per attempt */
        api_task_free(old);
    smap_put(&api->tasks, at->token, at);
    sfn_task_set_data(t, at);
    return at;
}

void api_task_free(struct api_task *at)
{
    if (at->queued)
        api_activity_unqueue(at);
    smap_del(&at->api->tasks, at->token);
    if (at->t != NULL)
        sfn_task_set_data(at->t, NULL);
    free(at->token);
    free(at);
}

void api_task_on_release(struct sfn_task *t, void *arg)
{
    struct api_task *at = sfn_task_data(t);
    (void)arg;
    if (at != NULL) {
        at->t = NULL; /* gone once this returns */
        api_task_free(at);
    }
}

/* ---- .waitForTaskToken ---- */

static int on_callback_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    api_task_new(arg, t, NULL);
    return 0;
}

static const struct sfn_resource_ops callback_ops = {
    .start = on_callback_start,
    .cancel = api_task_on_release,
    .resume = on_callback_start, /* the same token, waiting again */
    .detach = api_task_on_release,
};

/* Registers every "Resource" string containing .waitForTaskToken under `v` (borrowed). */
static void scan_resources(struct api *api, json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            scan_resources(api, e);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e) {
        const char *res = json_string_value(e);
        /* the engine gives $$.Task.Token to these resources (engine/exec.c) */
        if (strcmp(key, "Resource") == 0 && res != NULL &&
            strstr(res, ".waitForTaskToken") != NULL && strstr(res, ":activity:") == NULL &&
            smap_get(&api->callbacks, res) == NULL) {
            struct err err = ERR_INIT;
            if (sfn_engine_register_resource(api->eng, res, &callback_ops, api, &err) == 0)
                smap_put(&api->callbacks, res, api);
            err_clear(&err);
        }
        scan_resources(api, e);
    }
}

void api_task_register_callbacks(struct api *api, const char *text, size_t len)
{
    json_t *def = json_loadb(text, len, 0, NULL);
    scan_resources(api, def);
    json_decref(def);
}

/* ---- SendTask* ---- */

#define TASK_TOKEN_LEN 64 /* sfn_task_token: 64 lowercase hex characters (include/sfn.h) */

/* Whether `token` has the shape of the engine's tokens. One that has it but is not held
 * was issued and has closed (or is a guess: 256 random bits make a hit hopeless). */
static bool token_shaped(const char *token)
{
    if (token == NULL || strlen(token) != TASK_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < TASK_TOKEN_LEN; i++) {
        if (!isdigit((unsigned char)token[i]) && !(token[i] >= 'a' && token[i] <= 'f'))
            return false;
    }
    return true;
}

/* The attempt of the request's taskToken, or NULL answered: InvalidToken (never issued) or
 * TaskTimedOut (completed, timed out, or its execution ended; api.md 8.3). The attempt is a
 * callback or activity one held here (*held set), or else a job-run (.sync) attempt whose
 * job was given $$.Task.Token (*held NULL). */
static struct sfn_task *task_find(struct call *c, struct api_task **held)
{
    const char *token = call_str(c, "taskToken");
    if (!token_shaped(token)) {
        call_error(c, "InvalidToken", "Invalid Token: 'Invalid token'");
        return NULL;
    }
    *held = smap_get(&c->api->tasks, token);
    struct sfn_task *t = *held != NULL ? (*held)->t : sfn_engine_job_task(c->api->eng, token);
    if (t == NULL)
        call_error(c, "TaskTimedOut", "Task Timed Out: 'Provided task does not exist anymore'");
    return t;
}

/* Takes the attempt away from whoever holds it (this file's table, or the integration that
 * monitors the job: it stops, cancelling nothing), for the request to complete it. */
static struct sfn_task *task_take(struct sfn_task *t, struct api_task *held)
{
    if (held == NULL) {
        sfn_task_take_over(t);
        return t;
    }
    held->t = NULL;
    sfn_task_set_data(t, NULL);
    api_task_free(held);
    return t;
}

void op_send_task_success(struct call *c)
{
    if (!token_shaped(call_str(c, "taskToken"))) {
        call_error(c, "InvalidToken", "Invalid Token: 'Invalid token'");
        return;
    }
    json_t *v = json_object_get(c->in, "output");
    json_error_t jerr;
    json_t *output = json_loadb(json_string_value(v), json_string_length(v), JSON_DECODE_ANY,
                                &jerr);
    if (output == NULL) {
        call_error(c, "InvalidOutput", "Invalid Output: '%s'", jerr.text);
        return;
    }
    struct api_task *held;
    struct sfn_task *t = task_find(c, &held);
    if (t != NULL) {
        sfn_task_succeed(task_take(t, held), output);
        call_ok(c, json_object(), true); /* after the commit of the task's result */
    }
    json_decref(output);
}

void op_send_task_failure(struct call *c)
{
    struct api_task *held;
    struct sfn_task *t = task_find(c, &held);
    if (t == NULL)
        return;
    sfn_task_fail(task_take(t, held), call_str(c, "error"), call_str(c, "cause"));
    call_ok(c, json_object(), true);
}

void op_send_task_heartbeat(struct call *c)
{
    struct api_task *held;
    struct sfn_task *t = task_find(c, &held);
    if (t == NULL)
        return;
    sfn_task_heartbeat(t); /* no history event (api.md 8.3); the new deadline is committed */
    call_ok(c, json_object(), true);
}
