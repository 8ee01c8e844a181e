/* integrations/integrations.h - the optimized service integrations (integrations.md §1-5): one
 * file per service, each a const table of the actions AWS Step Functions offers for it, and
 * the framework that runs them (integrations.c: registration and the life of a task,
 * request-response or .sync; wire.c: requests, naming, timestamps and errors).
 *
 * A service file describes, never acts: which API operation an action calls and how its
 * parameters go on the wire, what the result is, and for .sync which operation polls the job,
 * where the reply holds its state, which states end it and which call cancels it. */
#ifndef SFN_INTEGRATIONS_INTEGRATIONS_H
#define SFN_INTEGRATIONS_INTEGRATIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "integrations/aws/aws.h"
#include "sfn_integrations.h"
#include "util/err.h"

/* One API operation as it goes on the wire. */
struct integ_op {
    const char *name;         /* "StartJobRun": the X-Amz-Target suffix (AWS JSON) and the name
                                 in messages */
    const char *method;       /* REST-JSON: "GET", "POST", "DELETE"; NULL for AWS JSON */
    const char *uri;          /* REST-JSON: "/applications/{applicationId}/jobruns"; each
                                 {label} is taken out of the parameters */
    const char *const *query; /* REST-JSON: wire members sent in the query string (NULL-ended);
                                 NULL: none */
    const char *token;        /* the idempotency-token member, filled with the attempt's token
                                 when the parameters lack it ("clientToken"); NULL: none */
    /* Reshapes the wire parameters of this call in place (EMR: ClusterId -> JobFlowIds:
     * [ClusterId]) and, for an API without an idempotency token, puts `token` (the attempt's)
     * where a restart can find it again. `wire` is borrowed and was built for this call.
     * Returns 0, or -1 with err set (parameters Step Functions refuses). NULL: as they are. */
    int (*shape)(json_t *wire, const char *token, struct err *err);
};

/* A listing that finds something before the call (EMR's modify*ByName: an instance fleet by
 * its name) or, after a restart, finds what an API without an idempotency token may already
 * have made (EMR's addStep: the step carrying the attempt's token). Pages follow "Marker". */
struct integ_lookup {
    const struct integ_op *op; /* the listing call */
    /* Its first request (PascalCase) for the task's parameters and the intent recorded before
     * the call (borrowed, may be NULL). New reference. */
    json_t *(*request)(json_t *params, json_t *intent);
    /* Looks at one page (results' naming; all borrowed). Returns 1 with *out set (a new
     * reference: the call's parameters, or the call's answer when reconciling), 0 when it is
     * not on this page, after appending to `check` the requests of `check_op` to make about
     * candidates (may be NULL), or -1 with err set (`last`: no page follows, the thing does
     * not exist). */
    int (*page)(json_t *params, const char *token, json_t *page, bool last, json_t **out,
                json_t *check, struct err *err);
    const struct integ_op *check_op; /* asked about each candidate in turn; NULL: none */
    /* Looks at the answer about one candidate (borrowed). Returns 1 with *out set as page's,
     * else 0. */
    int (*checked)(json_t *params, const char *token, json_t *reply, json_t **out);
};

enum integ_pattern {
    INTEG_RR = 1,   /* request-response: the call's answer is the result */
    INTEG_SYNC = 2, /* .sync: call, then poll until the job reaches a terminal state */
};

/* Several .sync jobs of one group asked about with one call, where the API lists them (EMR:
 * the steps of one cluster with one ListSteps instead of a DescribeStep each). An item of the
 * answer stands for a poll's answer; a job found in a terminal state is asked about alone
 * once more, so that its result and cause are the poll's own answer. */
struct integ_batch {
    const struct integ_op *op; /* the listing call: "ListSteps" */
    const char *group;         /* the job member the jobs share: "ClusterId" */
    const char *id;            /* the job member telling them apart: "StepId" */
    const char *ids;           /* the request member listing the ids: "StepIds" */
    const char *items;         /* the answer's list: "Steps" */
    const char *item_id;       /* an item's id member: "Id" */
    const char *wrap;          /* an item stands for the poll's answer under this name: "Step" */
    size_t max;                /* ids per call */
};

/* One action of a service: arn:aws:states:::<service>:<name>[.sync]. Member lists are
 * PascalCase (as in ASL Parameters and in results) and NULL-ended. */
struct integ_action {
    const char *name;               /* "startJobRun" */
    unsigned patterns;              /* INTEG_RR | INTEG_SYNC */
    const struct integ_op *op;      /* the call */
    const char *const *result;      /* the result: these members of the answer; NULL: all */
    const char *const *echo;        /* members of the parameters copied into the result
                                       (startApplication answers nothing: {"ApplicationId"}) */
    /* .sync only */
    const struct integ_op *poll;    /* asks for the job's state, with the job's members */
    const char *const *job;         /* the members naming the job, from the result, else the
                                       parameters: what is kept to resume after a restart */
    const char *const *state_path;  /* where the poll's answer holds the state:
                                       {"QueryExecution", "Status", "State", NULL} */
    const char *const *succeeded;   /* terminal states that succeed the task */
    const char *const *failed;      /* terminal states that fail it (States.TaskFailed, the
                                       last answer as the cause) */
    bool final_result;              /* the .sync result is the last poll's answer (Athena),
                                       not the call's result */
    const char *gone_code;          /* a poll failing with this error code means the job
                                       reached its end (deleteApplication: the application is
                                       gone); NULL: none */
    const struct integ_op *cancel;  /* called with the job's members when the task is aborted
                                       or timed out; NULL: nothing to cancel */
    /* Added for EMR and EMR on EKS; zero in the actions above keeps their behaviour. */
    /* The result from the call's answer (results' naming, borrowed): EMR's {"ClusterId":
     * JobFlowId}. New reference. NULL: `result` and `echo` decide. */
    json_t *(*reshape)(json_t *reply);
    bool merge_final;               /* .sync: the result (and a failure's cause) is the call's
                                       result with the last answer's members (EMR:
                                       {"ClusterId", "Cluster"}) */
    const char *const *sync_echo;   /* merge_final: members of the job copied into the result
                                       (terminateCluster.sync: {"ClusterId"}) */
    const char *const *final_path;  /* .sync: the result (and a failure's cause) is this member
                                       of the last answer (EMR on EKS: the JobRun, flattened);
                                       NULL: see final_result */
    const struct integ_lookup *resolve;   /* before the call: finds its parameters */
    const struct integ_batch *batch;      /* .sync: polls coalesced per group; NULL: none */
    const struct integ_lookup *reconcile; /* restarted before the job was known, and the API
                                             has no idempotency token: finds the job the first
                                             call made, else the call is made again */
};

/* One service (integrations.md §2.1-5.1 and §1.7). */
struct integ_service {
    const char *name;               /* the ARN's integration name: "athena" */
    const char *title;              /* for messages: "Athena" */
    const struct aws_service *aws;  /* the transport's description */
    const char *env;                /* SFN_POLL_<env>: "ATHENA" */
    const char *error_prefix;       /* error names are <prefix>.<code>: "Athena" */
    const char *base_exception;     /* the name of codes the model does not declare (AWS SDK
                                       for Java v1 base class): "AmazonAthenaException" */
    const char *java_name;          /* "Service: ..." in causes: "AmazonAthena" */
    const char *const *errors;      /* error codes the model declares (keep their name) */
    bool camel_case;                /* wire members are camelCase (REST-JSON services):
                                       PascalCase in ASL and results, first letter flipped */
    const char *const *maps;        /* wire names of map members: their keys are user data */
    const char *const *timestamps;  /* wire names of timestamp members: epoch seconds on the
                                       wire, epoch milliseconds in results (§1.3) */
    struct sfn_poll_cadence cadence; /* default polling of .sync tasks */
    const struct integ_action *actions;
    size_t n_actions;
};

extern const struct integ_service integ_athena;
extern const struct integ_service integ_emr;
extern const struct integ_service integ_emr_containers;
extern const struct integ_service integ_emr_serverless;

/* ---- wire.c ---- */

/* The parameters as the service's wire wants them: member names PascalCase -> camelCase for
 * camelCase services (map keys untouched). New reference; `params` is borrowed. */
json_t *integ_params_to_wire(const struct integ_service *s, json_t *params);
/* An answer as results show it: member names camelCase -> PascalCase for camelCase services
 * (map keys untouched), timestamps as integer epoch milliseconds. New reference; `reply` is
 * borrowed. */
json_t *integ_reply_from_wire(const struct integ_service *s, json_t *reply);
/* The wire parameters of a call of `op` (new reference, or NULL with err set by op's shape):
 * `params` (borrowed) converted, the idempotency token filled with `token` when the API has
 * one and the parameters lack it, then reshaped by the op. */
json_t *integ_op_wire(const struct integ_service *s, const struct integ_op *op, json_t *params,
                      const char *token, struct err *err);
/* Builds the request of `op` for `host` from wire parameters (borrowed; REST labels and query
 * members are taken from them, the rest is the body). Returns 0, or -1 with err set
 * (<prefix>.ValidationException: a missing or non-string URI member). `r` is initialised
 * only on success. */
int integ_request_build(const struct integ_service *s, const struct integ_op *op, json_t *wire,
                        const char *host, struct aws_request *r, struct err *err);
/* The error a failed call gives the state machine: <prefix>.<code> for a code the model
 * declares, <prefix>.<base exception> for any other, <prefix>.SdkClientException for a call
 * that got no answer; the cause in the AWS SDK for Java's words (§1.7). */
void integ_error_from_result(const struct integ_service *s, const struct aws_http_result *res,
                             struct err *err);
/* The idempotency token of an attempt: 64 lower-case hex characters (the SHA-256 of the
 * execution ARN and the engine's attempt token), the same after a restart, fitting Athena's
 * 32..128 and EMR Serverless' 1..64 [A-Za-z0-9._-]. */
void integ_token(const char *execution_arn, const char *task_token, char out[65]);
/* Member `name` (PascalCase) of `obj` following `path` (NULL-ended). Borrowed, or NULL. */
json_t *integ_path_get(json_t *obj, const char *const *path);
/* Whether `s` is one of the NULL-ended `list` (NULL: never). */
bool integ_list_has(const char *const *list, const char *s);

#endif
