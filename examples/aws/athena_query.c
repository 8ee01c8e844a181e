/* examples/aws/athena_query.c - the AWS transport on its own: run one Athena query and wait
 * for it, the way the Athena integration will (StartQueryExecution, then GetQueryExecution
 * until the query ends), on a plain libuv loop.
 *
 * Everything comes from the environment, resolved as the AWS CLI does: credentials
 * (AWS_ACCESS_KEY_ID..., AWS_PROFILE with ~/.aws/credentials and ~/.aws/config,
 * credential_process), the region (AWS_REGION), the endpoint (AWS_ENDPOINT_URL_ATHENA,
 * AWS_ENDPOINT_URL), the CA bundle (AWS_CA_BUNDLE), the retry mode (AWS_RETRY_MODE,
 * AWS_MAX_ATTEMPTS). examples/aws/run.sh runs it against the fake AWS over HTTPS.
 *
 *     athena_query 'SELECT 1' [WORKGROUP]
 *
 * Prints each state the query goes through and exits 0 when it SUCCEEDED. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "integrations/aws/aws.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define POLL_MS 200 /* between two GetQueryExecution calls */

struct query {
    uv_loop_t *loop;
    struct aws_http *http;
    struct aws_endpoint ep;
    char region[64];
    char id[128];         /* QueryExecutionId */
    char state[32];       /* the last state printed */
    uv_timer_t poll;
    int status;           /* exit status */
};

static void poll_send(struct query *q);

/* Sends an Athena call; `body` is JSON text. */
static void athena_send(struct query *q, const char *op, const char *body, aws_http_done_fn done)
{
    char target[96];
    snprintf(target, sizeof(target), "AmazonAthena.%s", op);
    struct aws_request r;
    aws_request_init_json11(&r, q->ep.host, target, body, strlen(body));
    struct err err = ERR_INIT;
    if (aws_http_send(q->http, &aws_service_athena, q->region, &q->ep, &r, done, q, &err) ==
        NULL) {
        fprintf(stderr, "athena_query: %s: %s\n", err.name, err.cause);
        err_clear(&err);
        q->status = 1;
    }
}

/* Prints a failed call and ends the program's work. */
static bool call_failed(struct query *q, const struct aws_http_result *res)
{
    if (!res->err->set)
        return false;
    fprintf(stderr, "athena_query: %s: %s\n", res->err->name,
            res->err->cause != NULL ? res->err->cause : "");
    q->status = 1;
    return true;
}

static void on_poll_timer(uv_timer_t *t)
{
    struct query *q = container_of(t, struct query, poll);
    poll_send(q);
}

static void on_get(struct aws_http_call *call, const struct aws_http_result *res, void *arg)
{
    struct query *q = arg;
    (void)call;
    if (call_failed(q, res))
        return;
    json_t *doc = json_loadb(res->body, res->body_len, 0, NULL); /* new reference */
    const char *state = json_string_value(json_object_get(
        json_object_get(json_object_get(doc, "QueryExecution"), "Status"), "State"));
    if (state == NULL) {
        fprintf(stderr, "athena_query: GetQueryExecution answered without a state\n");
        q->status = 1;
    } else {
        if (strcmp(state, q->state) != 0) {
            printf("state: %s\n", state);
            fflush(stdout);
            snprintf(q->state, sizeof(q->state), "%s", state);
        }
        if (strcmp(state, "SUCCEEDED") == 0)
            q->status = 0;
        else if (strcmp(state, "FAILED") == 0 || strcmp(state, "CANCELLED") == 0)
            q->status = 1;
        else
            uv_timer_start(&q->poll, on_poll_timer, POLL_MS, 0);
    }
    json_decref(doc);
}

static void poll_send(struct query *q)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"QueryExecutionId\": \"%s\"}", q->id);
    athena_send(q, "GetQueryExecution", body, on_get);
}

static void on_start(struct aws_http_call *call, const struct aws_http_result *res, void *arg)
{
    struct query *q = arg;
    (void)call;
    if (call_failed(q, res))
        return;
    json_t *doc = json_loadb(res->body, res->body_len, 0, NULL); /* new reference */
    const char *id = json_string_value(json_object_get(doc, "QueryExecutionId"));
    if (id == NULL) {
        fprintf(stderr, "athena_query: StartQueryExecution answered without an id\n");
        q->status = 1;
    } else {
        snprintf(q->id, sizeof(q->id), "%s", id);
        printf("query: %s (%u attempt%s)\n", q->id, res->attempts, res->attempts > 1 ? "s" : "");
        poll_send(q);
    }
    json_decref(doc);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: athena_query SQL [WORKGROUP]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct query q;
    memset(&q, 0, sizeof(q));
    q.status = 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    q.loop = &loop;

    struct err err = ERR_INIT;
    struct aws_env env = {aws_env_getenv, NULL, getenv("HOME")};
    struct aws_config *cfg = aws_config_new(&env, NULL, &err);
    if (cfg == NULL || aws_config_region(cfg) == NULL ||
        aws_config_endpoint(cfg, &aws_service_athena, aws_config_region(cfg), &q.ep, &err) != 0) {
        fprintf(stderr, "athena_query: %s\n",
                err.cause != NULL ? err.cause : "no region (set AWS_REGION)");
        err_clear(&err);
        aws_config_free(cfg);
        uv_loop_close(&loop);
        curl_global_cleanup();
        return 1;
    }
    snprintf(q.region, sizeof(q.region), "%s", aws_config_region(cfg));
    printf("endpoint: %s (region %s)\n", q.ep.url, q.region);

    /* credentials, retry mode and CA bundle all come from the config */
    struct aws_http_opts opts = {.config = cfg};
    q.http = aws_http_new(&loop, &opts, &err);
    if (q.http == NULL) {
        fprintf(stderr, "athena_query: %s\n", err.cause);
        err_clear(&err);
        aws_endpoint_release(&q.ep);
        aws_config_free(cfg);
        uv_loop_close(&loop);
        curl_global_cleanup();
        return 1;
    }
    uv_timer_init(&loop, &q.poll);

    /* the idempotency token Step Functions fills in (32 to 128 characters) */
    char token[64];
    snprintf(token, sizeof(token), "athena-query-example-%lld-%ld", (long long)time(NULL),
             (long)uv_hrtime() % 1000000);
    json_t *body = json_pack("{s:s, s:s}", "QueryString", argv[1], "ClientRequestToken",
                             token); /* new reference */
    if (argc == 3)
        json_object_set_new(body, "WorkGroup", json_string(argv[2]));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    athena_send(&q, "StartQueryExecution", text, on_start);
    free(text);

    uv_run(&loop, UV_RUN_DEFAULT); /* until the last call and timer are done */
    aws_http_close(q.http);
    uv_close((uv_handle_t *)&q.poll, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&loop);
    aws_endpoint_release(&q.ep);
    aws_config_free(cfg);
    curl_global_cleanup();
    if (closed != 0) {
        fprintf(stderr, "athena_query: handles left on the loop\n");
        return 1;
    }
    return q.status;
}
