/* integrations/emr_serverless.c - Amazon EMR Serverless (arn:aws:states:::emr-serverless:*,
 * integrations.md §4): six actions, each request-response and .sync. REST-JSON with camelCase
 * members on the wire, PascalCase in ASL Parameters and results (§1.2).
 *
 * Results are the API's answers (createApplication, startJobRun, cancelJobRun) or
 * {"ApplicationId"} for the actions whose API answers nothing (§4.4); .sync returns the same
 * shape once GetApplication / GetJobRun shows the awaited state, and fails with
 * States.TaskFailed and the last Get answer as the cause on a failure state. Aborted,
 * createApplication.sync deletes the application, startApplication.sync stops it and
 * startJobRun.sync cancels the job run (§1.6). */
#include "integrations/integrations.h"

#include "util/xalloc.h"

static const struct integ_op op_create_app = {
    .name = "CreateApplication",
    .method = "POST",
    .uri = "/applications",
    .token = "clientToken", /* 1..64 [A-Za-z0-9._-] */
};
static const struct integ_op op_get_app = {
    .name = "GetApplication",
    .method = "GET",
    .uri = "/applications/{applicationId}",
};
static const struct integ_op op_start_app = {
    .name = "StartApplication",
    .method = "POST",
    .uri = "/applications/{applicationId}/start",
};
static const struct integ_op op_stop_app = {
    .name = "StopApplication",
    .method = "POST",
    .uri = "/applications/{applicationId}/stop",
};
static const struct integ_op op_delete_app = {
    .name = "DeleteApplication",
    .method = "DELETE",
    .uri = "/applications/{applicationId}",
};
static const struct integ_op op_start_run = {
    .name = "StartJobRun",
    .method = "POST",
    .uri = "/applications/{applicationId}/jobruns",
    .token = "clientToken",
};
static const char *const get_run_query[] = {"attempt", NULL};
static const struct integ_op op_get_run = {
    .name = "GetJobRun",
    .method = "GET",
    .uri = "/applications/{applicationId}/jobruns/{jobRunId}",
    .query = get_run_query,
};
static const char *const cancel_run_query[] = {"shutdownGracePeriodInSeconds", NULL};
static const struct integ_op op_cancel_run = {
    .name = "CancelJobRun",
    .method = "DELETE",
    .uri = "/applications/{applicationId}/jobruns/{jobRunId}",
    .query = cancel_run_query,
};

static const char *const app_id[] = {"ApplicationId", NULL};
static const char *const run_id[] = {"ApplicationId", "JobRunId", NULL};
static const char *const app_state[] = {"Application", "State", NULL};
static const char *const run_state[] = {"JobRun", "State", NULL};
static const char *const created[] = {"CREATED", NULL};
static const char *const started[] = {"STARTED", NULL};
static const char *const stopped[] = {"STOPPED", NULL};
static const char *const terminated[] = {"TERMINATED", NULL};
static const char *const stopped_or_terminated[] = {"STOPPED", "TERMINATED", NULL};
static const char *const success[] = {"SUCCESS", NULL};
static const char *const failed_or_cancelled[] = {"FAILED", "CANCELLED", NULL};
static const char *const cancelled[] = {"CANCELLED", NULL};
static const char *const success_or_failed[] = {"SUCCESS", "FAILED", NULL};

static const struct integ_action actions[] = {
    {
        .name = "createApplication",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_create_app,
        .poll = &op_get_app,
        .job = app_id,
        .state_path = app_state,
        .succeeded = created,
        .failed = terminated,
        .cancel = &op_delete_app,
    },
    {
        .name = "startApplication",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_start_app,
        .echo = app_id,
        .poll = &op_get_app,
        .job = app_id,
        .state_path = app_state,
        .succeeded = started,
        .failed = stopped_or_terminated,
        .cancel = &op_stop_app,
    },
    {
        .name = "stopApplication",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_stop_app,
        .echo = app_id,
        .poll = &op_get_app,
        .job = app_id,
        .state_path = app_state,
        .succeeded = stopped,
        .failed = terminated,
    },
    {
        .name = "deleteApplication",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_delete_app,
        .echo = app_id,
        .poll = &op_get_app,
        .job = app_id,
        .state_path = app_state,
        .succeeded = terminated,
        .gone_code = "ResourceNotFoundException", /* §4.4: deleted and gone */
    },
    {
        .name = "startJobRun",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_start_run,
        .poll = &op_get_run,
        .job = run_id,
        .state_path = run_state,
        .succeeded = success,
        .failed = failed_or_cancelled,
        .cancel = &op_cancel_run,
    },
    {
        .name = "cancelJobRun",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_cancel_run,
        .poll = &op_get_run,
        .job = run_id,
        .state_path = run_state,
        .succeeded = cancelled,
        .failed = success_or_failed, /* [UNVERIFIED]: the run ended before it was cancelled */
    },
};

static const char *const errors[] = {
    "ConflictException",         "InternalServerException", "ResourceNotFoundException",
    "ServiceQuotaExceededException", "ValidationException",  NULL,
};

/* Map members of the model (wire names): their keys are user data (§1.2). */
static const char *const maps[] = {
    "tags", "properties", "initialCapacity", "workerTypeSpecifications", "logTypes",
    "encryptionContext", NULL,
};

static const char *const timestamps[] = {
    "createdAt", "updatedAt", "startedAt", "endedAt", "attemptCreatedAt", "attemptUpdatedAt",
    NULL,
};

const struct integ_service integ_emr_serverless = {
    .name = "emr-serverless",
    .title = "EMR Serverless",
    .aws = &aws_service_emr_serverless,
    .env = "EMR_SERVERLESS",
    .error_prefix = "EMRServerless",                /* [UNVERIFIED] §1.7 */
    .base_exception = "AWSEMRServerlessException", /* the SDK for Java v1 class [UNVERIFIED] */
    .java_name = "AWSEMRServerless",
    .errors = errors,
    .camel_case = true,
    .maps = maps,
    .timestamps = timestamps,
    /* undocumented by AWS (§1.5); job runs and applications take minutes */
    .cadence = {10000, 600000, 60000},
    .actions = actions,
    .n_actions = ARRAY_LEN(actions),
};
