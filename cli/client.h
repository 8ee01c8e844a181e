/* cli/client.h - the sfn client commands' connection to a running sfnd: AWS JSON 1.0
 * requests (POST /, X-Amz-Target: AWSStepFunctions.<Op>) over libcurl. Only build/sfn-aws
 * has it; the lite build/sfn hands the client commands over to sfn-aws. */
#ifndef SFN_CLI_CLIENT_H
#define SFN_CLI_CLIENT_H

#include <jansson.h>

#define CLIENT_DEFAULT_ENDPOINT "http://127.0.0.1:8083"

/* Exit codes of the client commands (sfn(1), EXIT STATUS). */
#define CLIENT_EXIT_OK 0
#define CLIENT_EXIT_AWS 1       /* the daemon answered with an AWS error */
#define CLIENT_EXIT_USAGE 2     /* bad arguments, or the daemon cannot be reached */
#define CLIENT_EXIT_FAILED 3    /* --wait: the execution FAILED */
#define CLIENT_EXIT_TIMED_OUT 4 /* --wait: the execution TIMED_OUT */
#define CLIENT_EXIT_ABORTED 5   /* --wait: the execution was ABORTED (stopped) */

struct client;

/* A client of the daemon at `endpoint` (copied); NULL = $SFN_ENDPOINT, else the local
 * default. Never NULL. */
struct client *client_new(const char *endpoint);
void client_free(struct client *c);
const char *client_endpoint(const struct client *c);

/* An AWS error the daemon answered, for callers that handle it themselves. */
struct client_error {
    char code[128]; /* "StateMachineDoesNotExist": __type after its '#' */
    char *message;  /* owned, never NULL once filled; free with client_error_release() */
};
void client_error_release(struct client_error *e);

/* Calls AWSStepFunctions.<op> with the request body `req` (borrowed). Returns 0 with *resp a
 * new reference (the answer's object). When the daemon refuses the request, returns
 * CLIENT_EXIT_AWS: with `ae` NULL after printing "sfn: Code: message" to stderr, else filling
 * *ae (release it) without printing. When the daemon cannot be reached or its answer is not
 * AWS JSON, prints why (naming the endpoint) and returns CLIENT_EXIT_USAGE. *resp is NULL
 * unless 0 is returned. */
int client_call(struct client *c, const char *op, json_t *req, json_t **resp,
                struct client_error *ae);

#endif
