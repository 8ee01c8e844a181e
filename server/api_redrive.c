/* server/api_redrive.c - RedriveExecution (api.md 9.2): a Standard execution that ended
 * FAILED, ABORTED or TIMED_OUT continues under the same ARN from the states that did not
 * succeed (sfn_store_redrive, on the engine's checkpoint kept at its end). The answer leaves
 * after the engine's commit of the redrive. A clientToken seen again within 15 minutes
 * (among the execution's last 10) answers the first call's redriveDate without redriving. */
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/xalloc.h"

#define TOKENS_KEPT 10               /* api.md 9.2: the last 10 client tokens... */
#define TOKEN_TTL_MS (15 * 60 * 1000) /* ...are idempotent for 15 minutes */
#define TOKEN_MAX 64

/* The client tokens of one execution's redrives, newest last. */
struct redrive_tokens {
    size_t n;
    struct {
        char token[TOKEN_MAX + 1];
        int64_t at_ms;       /* when it was used (wall clock) */
        int64_t redrive_ms;  /* the redriveDate it answered */
    } v[TOKENS_KEPT];
};

/* The redriveDate of an earlier call with `token`, or 0. */
static int64_t token_seen(struct api *api, const char *arn, const char *token, int64_t now)
{
    struct redrive_tokens *t = smap_get(api_redrive_tokens(api), arn);
    for (size_t i = 0; t != NULL && token != NULL && i < t->n; i++) {
        if (strcmp(t->v[i].token, token) == 0 && now - t->v[i].at_ms < TOKEN_TTL_MS)
            return t->v[i].redrive_ms;
    }
    return 0;
}

static void token_keep(struct api *api, const char *arn, const char *token, int64_t now,
                       int64_t redrive_ms)
{
    if (token == NULL)
        return;
    struct smap *m = api_redrive_tokens(api);
    struct redrive_tokens *t = smap_get(m, arn);
    if (t == NULL) {
        t = xcalloc(1, sizeof(*t));
        smap_put(m, arn, t);
    }
    if (t->n == TOKENS_KEPT) {
        memmove(&t->v[0], &t->v[1], (TOKENS_KEPT - 1) * sizeof(t->v[0]));
        t->n--;
    }
    snprintf(t->v[t->n].token, sizeof(t->v[t->n].token), "%s", token);
    t->v[t->n].at_ms = now;
    t->v[t->n].redrive_ms = redrive_ms;
    t->n++;
}

static json_t *redriven_reply(int64_t redrive_ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "redriveDate", api_time(redrive_ms));
    return o;
}

/* api.md 9.2 */
void op_redrive_execution(struct call *c)
{
    struct api *api = c->api;
    const char *arn = call_str(c, "executionArn");
    const char *token = call_str(c, "clientToken");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "execution", &scratch, parts, &n) != 0)
        return;
    free(scratch);
    int64_t now = api_now_ms();
    int64_t earlier = token_seen(api, arn, token, now);
    if (earlier != 0) {
        call_ok(c, redriven_reply(earlier), true); /* the redrive may not be committed yet */
        return;
    }
    if (smap_get(&api->running, arn) != NULL) {
        call_error(c, "ExecutionNotRedrivable", "Execution is RUNNING and cannot be redriven");
        return;
    }
    struct sfn_execution_options opt = api_execution_options(api);
    struct sfn_execution *ex = NULL;
    struct err err = ERR_INIT;
    int rc = sfn_store_redrive(api->st, api->eng, arn, &opt, &ex, &err);
    if (rc == 1) {
        call_error(c, "ExecutionDoesNotExist", "Execution Does Not Exist: '%s'", arn);
        return;
    }
    if (rc != 0) {
        if (strcmp(err.name, "ExecutionNotRedrivable") == 0)
            call_error(c, err.name, "%s", err.cause != NULL ? err.cause : err.name);
        else
            call_fail(c, &err);
        err_clear(&err);
        return;
    }
    size_t len = 0;
    const char *text = sfn_machine_definition(sfn_execution_machine(ex), &len);
    api_task_register_callbacks(api, text, len); /* its .waitForTaskToken resources */
    smap_put(&api->running, sfn_execution_arn(ex), ex);
    int64_t redrive_ms = sfn_execution_redrive_ms(ex);
    token_keep(api, arn, token, now, redrive_ms);
    call_ok(c, redriven_reply(redrive_ms), true);
}
