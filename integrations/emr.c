/* integrations/emr.c - Amazon EMR (arn:aws:states:::elasticmapreduce:*, integrations.md §2):
 * the customised action set Step Functions wraps around the EMR API (AWS JSON 1.1, PascalCase
 * on the wire), with its renames (ClusterId -> JobFlowIds: [ClusterId], Step -> Steps: [Step],
 * {"ClusterId": JobFlowId}, {"StepId": StepIds[0]}, ...) and the two *ByName actions, which
 * list the cluster's fleets or groups to find the id of a name.
 *
 * createCluster.sync waits for WAITING, terminateCluster.sync for TERMINATED (or
 * TERMINATED_WITH_ERRORS), addStep.sync for COMPLETED; their result is the call's with the last
 * DescribeCluster / DescribeStep answer ({"ClusterId", "Cluster"}, {"StepId", "Step"}), and a
 * failure state fails the task with States.TaskFailed and that same shape as the cause (the
 * cluster's state-change reason, the step's failure details and log file). Aborted,
 * addStep.sync cancels its step (CancelSteps); a cluster is never terminated (§2.4).
 *
 * Exactly once: RunJobFlow and AddJobFlowSteps have no idempotency token, so each call carries
 * the attempt's token as a marker (a cluster tag, a step property: MARKER_* below) and a
 * restart that does not know the job yet looks for it (ListClusters + DescribeCluster,
 * ListSteps) before calling again. */
#include <string.h>
#include <time.h>

#include "asl/asl.h"
#include "integrations/integrations.h"
#include "util/xalloc.h"

/* Where a call without an idempotency token carries the attempt's token. */
#define MARKER_TAG "sfnd:attempt"       /* RunJobFlow: Tags [{Key, Value}] */
#define MARKER_PROPERTY "sfnd.attempt"  /* AddJobFlowSteps: HadoopJarStep.Properties */
/* [UNVERIFIED] §2.4: parameters Step Functions refuses fail the task before EMR is called */
#define ERR_PARAMS ASL_ERR_RUNTIME
/* [UNVERIFIED] §2.4: no instance fleet / group has the name: EMR's own answer to a bad id */
#define ERR_NO_NAME "EMR.InvalidRequestException"
/* Reconciling createCluster lists clusters created from this long before the recorded
 * intent (clock skew between this host and EMR), or for this long without an intent. */
#define RECONCILE_SKEW_S 300
#define RECONCILE_WINDOW_S 86400

/* ---- request shapes ---- */

/* Moves member `from` of `wire` into a one-element list `to`. */
static void listify(json_t *wire, const char *from, const char *to)
{
    json_t *v = json_object_get(wire, from);
    if (v == NULL)
        return;
    json_object_set_new(wire, to, json_pack("[O]", v));
    json_object_del(wire, from);
}

static int shape_run_job_flow(json_t *wire, const char *token, struct err *err)
{
    /* §2.4: KeepJobFlowAliveWhenNoSteps must be true and Steps is not allowed */
    json_t *keep = json_object_get(json_object_get(wire, "Instances"),
                                   "KeepJobFlowAliveWhenNoSteps");
    if (!json_is_true(keep))
        return err_set(err, ERR_PARAMS,
                       "the parameters of EMR createCluster must set "
                       "Instances.KeepJobFlowAliveWhenNoSteps to true");
    if (json_object_get(wire, "Steps") != NULL)
        return err_set(err, ERR_PARAMS,
                       "the parameters of EMR createCluster must not have Steps (use addStep)");
    if (token == NULL)
        return 0;
    json_t *tags = json_object_get(wire, "Tags");
    if (!json_is_array(tags)) {
        tags = json_array();
        json_object_set_new(wire, "Tags", tags);
    }
    json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", MARKER_TAG, "Value", token));
    return 0;
}

static int shape_job_flow_ids(json_t *wire, const char *token, struct err *err)
{
    (void)token;
    (void)err;
    listify(wire, "ClusterId", "JobFlowIds");
    return 0;
}

static int shape_add_steps(json_t *wire, const char *token, struct err *err)
{
    (void)err;
    json_t *jar = json_object_get(json_object_get(wire, "Step"), "HadoopJarStep");
    if (token != NULL && json_is_object(jar)) {
        json_t *props = json_object_get(jar, "Properties");
        if (!json_is_array(props)) {
            props = json_array();
            json_object_set_new(jar, "Properties", props);
        }
        json_array_append_new(props,
                              json_pack("{s:s, s:s}", "Key", MARKER_PROPERTY, "Value", token));
    }
    json_t *id = json_object_get(wire, "ClusterId");
    if (id != NULL) {
        json_object_set(wire, "JobFlowId", id);
        json_object_del(wire, "ClusterId");
    }
    listify(wire, "Step", "Steps");
    return 0;
}

static int shape_cancel_steps(json_t *wire, const char *token, struct err *err)
{
    (void)token;
    (void)err;
    listify(wire, "StepId", "StepIds");
    return 0;
}

static const struct integ_op op_run_job_flow = {.name = "RunJobFlow",
                                                .shape = shape_run_job_flow};
static const struct integ_op op_describe_cluster = {.name = "DescribeCluster"};
static const struct integ_op op_terminate = {.name = "TerminateJobFlows",
                                             .shape = shape_job_flow_ids};
static const struct integ_op op_protect = {.name = "SetTerminationProtection",
                                           .shape = shape_job_flow_ids};
static const struct integ_op op_add_steps = {.name = "AddJobFlowSteps", .shape = shape_add_steps};
static const struct integ_op op_describe_step = {.name = "DescribeStep"};
static const struct integ_op op_cancel_steps = {.name = "CancelSteps",
                                                .shape = shape_cancel_steps};
static const struct integ_op op_list_steps = {.name = "ListSteps"};
static const struct integ_op op_list_clusters = {.name = "ListClusters"};
static const struct integ_op op_list_fleets = {.name = "ListInstanceFleets"};
static const struct integ_op op_modify_fleet = {.name = "ModifyInstanceFleet"};
static const struct integ_op op_list_groups = {.name = "ListInstanceGroups"};
static const struct integ_op op_modify_groups = {.name = "ModifyInstanceGroups"};

/* ---- results (§2.4) ---- */

/* {"<name>": member `from` of `reply`, or its first element when `first`}. */
static json_t *rename_member(json_t *reply, const char *name, const char *from, bool first)
{
    json_t *v = json_object_get(reply, from);
    if (first)
        v = json_array_get(v, 0);
    json_t *out = json_object();
    if (v != NULL)
        json_object_set(out, name, v);
    return out;
}

static json_t *result_create(json_t *reply)
{
    return rename_member(reply, "ClusterId", "JobFlowId", false);
}

static json_t *result_add_step(json_t *reply)
{
    return rename_member(reply, "StepId", "StepIds", true);
}

static json_t *result_cancel_step(json_t *reply)
{
    return rename_member(reply, "CancelStepsInfo", "CancelStepsInfoList", true);
}

static json_t *result_empty(json_t *reply)
{
    (void)reply;
    return json_object();
}

/* ---- lookups ---- */

static json_t *request_cluster(json_t *params, json_t *intent)
{
    (void)intent;
    json_t *out = json_object();
    json_t *id = json_object_get(params, "ClusterId");
    if (id != NULL)
        json_object_set(out, "ClusterId", id);
    return out;
}

/* The member of `list` (borrowed array) whose `key` member equals `value`, and how many do. */
static json_t *find_named(json_t *list, const char *key, const char *value, size_t *count)
{
    json_t *found = NULL;
    size_t i;
    json_t *e;
    *count = 0;
    json_array_foreach(list, i, e) {
        const char *name = json_string_value(json_object_get(e, key));
        if (name != NULL && value != NULL && strcmp(name, value) == 0) {
            if (found == NULL)
                found = e;
            (*count)++;
        }
    }
    return found;
}

/* A page of ListInstanceFleets / ListInstanceGroups for modify*ByName: the one entry named
 * params[name_key] gives the call's parameters: {ClusterId, <config>: {...params[config],
 * <id_key>: its Id}}, inside a list when `as_list` (ModifyInstanceGroups). */
static int page_by_name(json_t *params, json_t *page, bool last, json_t **out, const char *what,
                        const char *list_key, const char *name_key, const char *config,
                        const char *id_key, const char *call_config, bool as_list,
                        struct err *err)
{
    const char *name = json_string_value(json_object_get(params, name_key));
    const char *cluster = json_string_value(json_object_get(params, "ClusterId"));
    if (name == NULL)
        return err_set(err, ERR_PARAMS, "the parameters of EMR %s must have %s (a string)",
                       what, name_key);
    size_t count;
    json_t *e = find_named(json_object_get(page, list_key), "Name", name, &count);
    if (count > 1)
        return err_set(err, ERR_NO_NAME, "%zu %s of cluster '%s' are named '%s'", count,
                       list_key, cluster != NULL ? cluster : "", name);
    if (e == NULL) {
        if (!last)
            return 0;
        return err_set(err, ERR_NO_NAME, "cluster '%s' has no %s named '%s'",
                       cluster != NULL ? cluster : "", config, name);
    }
    json_t *cfg = json_object_get(params, config);
    json_t *c = json_is_object(cfg) ? json_deep_copy(cfg) : json_object();
    json_object_set(c, id_key, json_object_get(e, "Id"));
    *out = json_object();
    if (cluster != NULL)
        json_object_set_new(*out, "ClusterId", json_string(cluster));
    json_object_set_new(*out, call_config, as_list ? json_pack("[o]", c) : c);
    return 1;
}

static int page_fleet(json_t *params, const char *token, json_t *page, bool last, json_t **out,
                      json_t *check, struct err *err)
{
    (void)token;
    (void)check;
    return page_by_name(params, page, last, out, "modifyInstanceFleetByName", "InstanceFleets",
                        "InstanceFleetName", "InstanceFleet", "InstanceFleetId",
                        "InstanceFleet", false, err);
}

static int page_group(json_t *params, const char *token, json_t *page, bool last, json_t **out,
                      json_t *check, struct err *err)
{
    (void)token;
    (void)check;
    return page_by_name(params, page, last, out, "modifyInstanceGroupByName", "InstanceGroups",
                        "InstanceGroupName", "InstanceGroup", "InstanceGroupId",
                        "InstanceGroups", true, err);
}

static const struct integ_lookup resolve_fleet = {
    .op = &op_list_fleets,
    .request = request_cluster,
    .page = page_fleet,
};
static const struct integ_lookup resolve_group = {
    .op = &op_list_groups,
    .request = request_cluster,
    .page = page_group,
};

/* addStep after a restart: the step whose properties carry the attempt's token (ListSteps
 * answers HadoopStepConfig.Properties as a map). */
static int page_steps(json_t *params, const char *token, json_t *page, bool last, json_t **out,
                      json_t *check, struct err *err)
{
    (void)params;
    (void)last;
    (void)check;
    (void)err;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(page, "Steps"), i, s) {
        json_t *props = json_object_get(json_object_get(s, "Config"), "Properties");
        const char *v = json_string_value(json_object_get(props, MARKER_PROPERTY));
        if (v != NULL && strcmp(v, token) == 0) {
            *out = json_pack("{s:[O]}", "StepIds", json_object_get(s, "Id"));
            return 1;
        }
    }
    return 0;
}

static const struct integ_lookup reconcile_step = {
    .op = &op_list_steps,
    .request = request_cluster,
    .page = page_steps,
};

/* createCluster after a restart: clusters created since the intent (ListClusters answers no
 * tags), those with the cluster's name asked about one by one (DescribeCluster). */
static json_t *request_clusters(json_t *params, json_t *intent)
{
    (void)params;
    json_t *since = json_object_get(intent, "since");
    double after;
    if (json_is_integer(since))
        after = (double)(json_integer_value(since) / 1000 - RECONCILE_SKEW_S);
    else
        after = (double)(time(NULL) - RECONCILE_WINDOW_S);
    return json_pack("{s:f}", "CreatedAfter", after);
}

static int page_clusters(json_t *params, const char *token, json_t *page, bool last,
                         json_t **out, json_t *check, struct err *err)
{
    (void)token;
    (void)last;
    (void)out;
    (void)err;
    const char *name = json_string_value(json_object_get(params, "Name"));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(page, "Clusters"), i, c) {
        const char *n = json_string_value(json_object_get(c, "Name"));
        if (n != NULL && name != NULL && strcmp(n, name) == 0)
            json_array_append_new(check, json_pack("{s:O}", "ClusterId", json_object_get(c, "Id")));
    }
    return 0;
}

static int checked_cluster(json_t *params, const char *token, json_t *reply, json_t **out)
{
    (void)params;
    json_t *cluster = json_object_get(reply, "Cluster");
    size_t i;
    json_t *tag;
    json_array_foreach(json_object_get(cluster, "Tags"), i, tag) {
        const char *k = json_string_value(json_object_get(tag, "Key"));
        const char *v = json_string_value(json_object_get(tag, "Value"));
        if (k != NULL && v != NULL && strcmp(k, MARKER_TAG) == 0 && strcmp(v, token) == 0) {
            *out = json_pack("{s:O}", "JobFlowId", json_object_get(cluster, "Id"));
            return 1;
        }
    }
    return 0;
}

static const struct integ_lookup reconcile_cluster = {
    .op = &op_list_clusters,
    .request = request_clusters,
    .page = page_clusters,
    .check_op = &op_describe_cluster,
    .checked = checked_cluster,
};

/* addStep.sync: the waiting steps of one cluster are asked about with one ListSteps (its
 * StepIds filter takes a few ids; 10 is assumed [UNVERIFIED]) */
static const struct integ_batch batch_steps = {
    .op = &op_list_steps,
    .group = "ClusterId",
    .id = "StepId",
    .ids = "StepIds",
    .items = "Steps",
    .item_id = "Id",
    .wrap = "Step",
    .max = 10,
};

/* ---- the actions (§2.4, §9) ---- */

static const char *const cluster_job[] = {"ClusterId", NULL};
static const char *const step_job[] = {"ClusterId", "StepId", NULL};
static const char *const cluster_state[] = {"Cluster", "Status", "State", NULL};
static const char *const step_state[] = {"Step", "Status", "State", NULL};
static const char *const waiting[] = {"WAITING", NULL};
static const char *const cluster_gone[] = {"TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS",
                                           NULL};
/* [UNVERIFIED] §2.4: TERMINATED_WITH_ERRORS also ends terminateCluster.sync well (the cluster
 * is terminated, as asked); move it to terminate_failed to make it a failure */
static const char *const terminated[] = {"TERMINATED", "TERMINATED_WITH_ERRORS", NULL};
static const char *const terminate_failed[] = {NULL};
static const char *const completed[] = {"COMPLETED", NULL};
static const char *const step_failed[] = {"FAILED", "CANCELLED", "INTERRUPTED", NULL};

static const struct integ_action actions[] = {
    {
        .name = "createCluster",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_run_job_flow,
        .reshape = result_create,
        .poll = &op_describe_cluster,
        .job = cluster_job,
        .state_path = cluster_state,
        .succeeded = waiting,
        .failed = cluster_gone,
        .merge_final = true, /* {"ClusterId", "Cluster"} */
        .cancel = NULL,      /* §1.6: stopping an execution never terminates the cluster */
        .reconcile = &reconcile_cluster,
    },
    {
        .name = "terminateCluster",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_terminate,
        .reshape = result_empty,
        .poll = &op_describe_cluster,
        .job = cluster_job,
        .state_path = cluster_state,
        .succeeded = terminated,
        .failed = terminate_failed,
        .merge_final = true,
        .sync_echo = cluster_job, /* [UNVERIFIED] like createCluster.sync: ClusterId, Cluster */
    },
    {
        .name = "setClusterTerminationProtection",
        .patterns = INTEG_RR,
        .op = &op_protect,
        .reshape = result_empty,
    },
    {
        .name = "addStep",
        .patterns = INTEG_RR | INTEG_SYNC,
        .op = &op_add_steps,
        .reshape = result_add_step,
        .poll = &op_describe_step,
        .job = step_job,
        .state_path = step_state,
        .succeeded = completed,
        .failed = step_failed,
        .merge_final = true, /* [UNVERIFIED] {"StepId", "Step"} */
        .cancel = &op_cancel_steps,
        .reconcile = &reconcile_step,
        .batch = &batch_steps,
    },
    {
        .name = "cancelStep",
        .patterns = INTEG_RR,
        .op = &op_cancel_steps,
        .reshape = result_cancel_step,
    },
    {
        .name = "modifyInstanceFleetByName",
        .patterns = INTEG_RR,
        .op = &op_modify_fleet,
        .reshape = result_empty,
        .resolve = &resolve_fleet,
    },
    {
        .name = "modifyInstanceGroupByName",
        .patterns = INTEG_RR,
        .op = &op_modify_groups,
        .reshape = result_empty,
        .resolve = &resolve_group,
    },
};

/* The error shapes of the model (§2.2); throttling (ThrottlingException) is not one of them
 * and surfaces as EMR.AmazonElasticMapReduceException (§1.7). */
static const char *const errors[] = {
    "InternalServerError",
    "InternalServerException",
    "InvalidRequestException",
    NULL,
};

/* Timestamp members of the answers (ClusterTimeline, StepTimeline). */
static const char *const timestamps[] = {
    "CreationDateTime", "ReadyDateTime", "EndDateTime", "StartDateTime", NULL,
};

const struct integ_service integ_emr = {
    .name = "elasticmapreduce",
    .title = "EMR",
    .aws = &aws_service_emr,
    .env = "EMR",
    .error_prefix = "EMR",
    .base_exception = "AmazonElasticMapReduceException",
    .java_name = "AmazonElasticMapReduce",
    .errors = errors,
    .camel_case = false,
    .maps = NULL,
    .timestamps = timestamps,
    /* §1.5, documented: every 60 s for the first 10 minutes, then every 300 s */
    .cadence = {60000, 600000, 300000},
    .actions = actions,
    .n_actions = ARRAY_LEN(actions),
};
