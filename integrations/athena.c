/* integrations/athena.c - Amazon Athena (arn:aws:states:::athena:*, integrations.md §5): the
 * four optimized actions, whose parameters and results are the Athena API's unchanged (AWS
 * JSON 1.1, PascalCase on the wire). startQueryExecution.sync polls GetQueryExecution until
 * SUCCEEDED (the result is that last answer), FAILED or CANCELLED (States.TaskFailed, the
 * answer as the cause), and stops the query with StopQueryExecution when aborted. */
#include "integrations/integrations.h"

#include "util/xalloc.h"

static const struct integ_op op_start = {
    .name = "StartQueryExecution",
    .token = "ClientRequestToken", /* §5.2: 32..128 characters; non-SDK clients must send it */
};
static const struct integ_op op_get = {.name = "GetQueryExecution"};
static const struct integ_op op_stop = {.name = "StopQueryExecution"};
static const struct integ_op op_results = {.name = "GetQueryResults"};

static const char *const job[] = {"QueryExecutionId", NULL};
static const char *const state_path[] = {"QueryExecution", "Status", "State", NULL};
static const char *const succeeded[] = {"SUCCEEDED", NULL};
static const char *const failed[] = {"FAILED", "CANCELLED", NULL};

static const struct integ_action actions[] = {
    {
        .name = "startQueryExecution",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_start,
        .poll = &op_get,
        .job = job,
        .state_path = state_path,
        .succeeded = succeeded,
        .failed = failed,
        .final_result = true, /* §5.4: {"QueryExecution": {...}} */
        .cancel = &op_stop,   /* §1.6: the .sync policy's stopQueryExecution */
    },
    {.name = "stopQueryExecution", .patterns = INTEG_RR, .op = &op_stop},
    {.name = "getQueryExecution", .patterns = INTEG_RR, .op = &op_get},
    {.name = "getQueryResults", .patterns = INTEG_RR, .op = &op_results},
};

/* Every error shape of the model (the SDK for Java has a class for each). */
static const char *const errors[] = {
    "InternalServerException",   "InvalidRequestException",      "MetadataException",
    "ResourceNotFoundException", "SessionAlreadyExistsException", "TooManyRequestsException",
    NULL,
};

/* Timestamp members of the actions' answers (QueryExecution.Status). */
static const char *const timestamps[] = {"SubmissionDateTime", "CompletionDateTime", NULL};

const struct integ_service integ_athena = {
    .name = "athena",
    .title = "Athena",
    .aws = &aws_service_athena,
    .env = "ATHENA",
    .error_prefix = "Athena",
    .base_exception = "AmazonAthenaException",
    .java_name = "AmazonAthena",
    .errors = errors,
    .camel_case = false,
    .maps = NULL,
    .timestamps = timestamps,
    /* undocumented by AWS (§1.5); queries often end within seconds */
    .cadence = {2000, 300000, 10000},
    .actions = actions,
    .n_actions = ARRAY_LEN(actions),
};
