/* integrations/emr_containers.c - Amazon EMR on EKS (arn:aws:states:::emr-containers:*,
 * integrations.md §3): createVirtualCluster, deleteVirtualCluster(.sync) and
 * startJobRun(.sync), "the same as" the EMR on EKS API (§3.4). REST-JSON with camelCase members
 * on the wire (signing name emr-containers), PascalCase in ASL Parameters and results (§1.2);
 * timestamps are ISO-8601 on the wire and epoch milliseconds in results (§1.3).
 *
 * startJobRun.sync polls DescribeJobRun until COMPLETED; its result is the final job run,
 * flattened ({"Id", "Name", "Arn", "VirtualClusterId", "State", ...}), and FAILED or CANCELLED
 * fail the task with States.TaskFailed and that object as the cause. Aborted, it cancels the
 * job run (CancelJobRun, §1.6). deleteVirtualCluster.sync polls DescribeVirtualCluster until
 * TERMINATED. Both calls that create carry clientToken, filled with the attempt's token: after
 * a restart the same call returns the first virtual cluster or job run (§1.9). */
#include "integrations/integrations.h"

#include "util/xalloc.h"

static const struct integ_op op_create_vc = {
    .name = "CreateVirtualCluster",
    .method = "POST",
    .uri = "/virtualclusters",
    .token = "clientToken", /* 1..64 characters */
};
static const struct integ_op op_describe_vc = {
    .name = "DescribeVirtualCluster",
    .method = "GET",
    .uri = "/virtualclusters/{id}", /* the member id is the label virtualClusterId */
};
static const struct integ_op op_delete_vc = {
    .name = "DeleteVirtualCluster",
    .method = "DELETE",
    .uri = "/virtualclusters/{id}",
};
static const struct integ_op op_start_run = {
    .name = "StartJobRun",
    .method = "POST",
    .uri = "/virtualclusters/{virtualClusterId}/jobruns",
    .token = "clientToken",
};
static const struct integ_op op_describe_run = {
    .name = "DescribeJobRun",
    .method = "GET",
    .uri = "/virtualclusters/{virtualClusterId}/jobruns/{id}", /* id is the label jobRunId */
};
static const struct integ_op op_cancel_run = {
    .name = "CancelJobRun",
    .method = "DELETE",
    .uri = "/virtualclusters/{virtualClusterId}/jobruns/{id}",
};

static const char *const vc_job[] = {"Id", NULL};
static const char *const run_job[] = {"VirtualClusterId", "Id", NULL};
static const char *const vc_state[] = {"VirtualCluster", "State", NULL};
static const char *const run_state[] = {"JobRun", "State", NULL};
static const char *const run_final[] = {"JobRun", NULL};
static const char *const vc_terminated[] = {"TERMINATED", NULL};
static const char *const vc_arrested[] = {"ARRESTED", NULL}; /* [UNVERIFIED] §3.4 */
static const char *const completed[] = {"COMPLETED", NULL};
static const char *const run_failed[] = {"FAILED", "CANCELLED", NULL};

static const struct integ_action actions[] = {
    {.name = "createVirtualCluster", .patterns = INTEG_RR, .op = &op_create_vc},
    {
        .name = "deleteVirtualCluster",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_delete_vc,
        .poll = &op_describe_vc,
        .job = vc_job,
        .state_path = vc_state,
        .succeeded = vc_terminated,
        .failed = vc_arrested,
        .gone_code = "ResourceNotFoundException", /* deleted and gone: the end awaited */
    },
    {
        .name = "startJobRun",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_start_run,
        .poll = &op_describe_run,
        .job = run_job,
        .state_path = run_state,
        .succeeded = completed,
        .failed = run_failed,
        .final_path = run_final, /* §3.4: flat, with a top-level VirtualClusterId */
        .cancel = &op_cancel_run,
    },
};

/* The error shapes of the model (§3.2). */
static const char *const errors[] = {
    "EKSRequestThrottledException", "InternalServerException", "RequestThrottledException",
    "ResourceNotFoundException",    "ValidationException",     NULL,
};

/* Map members of the model (wire names): their keys are user data (§1.2). */
static const char *const maps[] = {"tags", "properties", "jobTemplateParameters", NULL};

static const char *const timestamps[] = {"createdAt", "finishedAt", NULL};

const struct integ_service integ_emr_containers = {
    .name = "emr-containers",
    .title = "EMR on EKS",
    .aws = &aws_service_emr_containers,
    .env = "EMR_CONTAINERS",
    .error_prefix = "EMRContainers",                   /* [UNVERIFIED] §1.7 */
    .base_exception = "AmazonEMRContainersException", /* the SDK for Java v1 class [UNVERIFIED] */
    .java_name = "AmazonEMRContainers",
    .errors = errors,
    .camel_case = true,
    .maps = maps,
    .timestamps = timestamps,
    /* §1.5, documented: every 60 s for the first 10 minutes, then every 300 s */
    .cadence = {60000, 600000, 300000},
    .actions = actions,
    .n_actions = ARRAY_LEN(actions),
};
