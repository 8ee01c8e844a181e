/* server/api.h - the Step Functions HTTP API (AWS JSON 1.0) over an engine and its store:
 * the request handler the HTTP server calls, and the executions it tracks. */
#ifndef SFN_SERVER_API_H
#define SFN_SERVER_API_H

#include "server/server.h"
#include "sfn.h"

struct api;

/* An API over `eng` on `loop`, attached to store `st` (all borrowed; they outlive the api).
 * `region` and `account` are those of the engine's ARNs. */
struct api *api_new(uv_loop_t *loop, struct sfn_engine *eng, struct sfn_store *st,
                    const char *region, const char *account);
#define API_POLL_MS 60000 /* GetActivityTask holds a request up to 60 s (api.md 8.2) */

/* Before the store's recovery: registers the Task resource handlers the API serves (activity
 * ARNs, and the .waitForTaskToken resources of the executions about to be recovered). 0, or
 * -1 with err set. */
int api_start(struct api *api, struct err *err);
/* After the recovery: finishes what a previous process left half done (DeleteStateMachine).
 * 0, or -1 with err set. */
int api_recovered(struct api *api, struct err *err);
/* The daemon stops: every waiting GetActivityTask is answered with no task. */
void api_shutdown(struct api *api);
/* The server whose replies the API sends (for commit failures). */
void api_set_server(struct api *api, struct server *srv);
/* Execution options for executions the store recovers (their on_done frees them). */
struct sfn_execution_options api_execution_options(struct api *api);
/* Tracks an execution the store recovered (sfn_store_recover_each's callback). */
void api_track(struct sfn_execution *ex, void *api);
/* The handler for server_new. */
void api_handle(struct server_req *req, void *api);
/* Frees the API. Call after sfn_engine_free (which frees or releases every execution). */
void api_free(struct api *api);
/* sfnd --mock-config: StartExecution on "stateMachineArn#TestCase" runs that test case of
 * the mock (borrowed; attached to the engine by the caller). */
struct sfn_mock;
void api_set_mock(struct api *api, struct sfn_mock *mock);

#endif
