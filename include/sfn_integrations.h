/* include/sfn_integrations.h - the optimized AWS service integrations of libsfn: Task states
 * whose Resource is arn:aws:states:::athena:..., ...:elasticmapreduce:..., ...:emr-containers:...,
 * ...:emr-serverless:..., run as
 * AWS Step Functions runs them (request-response and .sync), on the engine's libuv loop
 * (man/sfn-integrations.7).
 *
 * Credentials, region and endpoints are found as the AWS CLI finds them (man/sfn-aws.7), the
 * first time a task needs them: registering costs nothing and needs no AWS configuration.
 * Ownership and errors follow include/sfn.h. */
#ifndef SFN_INTEGRATIONS_H
#define SFN_INTEGRATIONS_H

#include <stdbool.h>
#include <uv.h>

#include "sfn.h"

struct sfn_integrations;

/* How often a .sync task asks whether its job has ended: every `first_ms` during the first
 * `first_for_ms` of the wait, then every `then_ms`. A zero field takes the value of the
 * environment variable SFN_POLL_<SERVICE> ("MS" or "FIRST_MS,FIRST_FOR_MS,THEN_MS", SERVICE as
 * in AWS_ENDPOINT_URL_<SERVICE>: ATHENA, EMR, EMR_CONTAINERS, EMR_SERVERLESS), else the
 * service's default (Athena 2 s for 5 min then 10 s; EMR and EMR on EKS 60 s for 10 min then
 * 300 s, as AWS documents; EMR Serverless 10 s for 10 min then 60 s). */
struct sfn_poll_cadence {
    unsigned first_ms;     /* interval at first, in ms */
    unsigned first_for_ms; /* how long the first interval applies, in ms */
    unsigned then_ms;      /* interval afterwards, in ms */
};

struct sfn_integrations_options {
    const char *profile;      /* NULL: AWS_PROFILE, AWS_DEFAULT_PROFILE, "default" */
    const char *region;       /* NULL: AWS_REGION, AWS_DEFAULT_REGION, the profile's */
    const char *endpoint_url; /* one endpoint for every service (beats the environment);
                                 NULL: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, ... */
    struct sfn_poll_cadence athena;         /* athena:startQueryExecution.sync */
    struct sfn_poll_cadence emr_serverless; /* emr-serverless:*.sync */
    unsigned max_poll_delay_ms; /* a throttled or failing poll doubles the next interval, up to
                                   this; 0: 300000 (5 min) */
    unsigned max_poll_failures; /* consecutive polls failing with a server or network error
                                   (not throttling, which never fails a task) before the task
                                   fails with that error; 0: 10 */
    struct sfn_poll_cadence emr;            /* elasticmapreduce:*.sync */
    struct sfn_poll_cadence emr_containers; /* emr-containers:*.sync */
};

/* Registers every supported resource of every service on `eng` (prefix handlers
 * arn:<partition>:states:::athena:*, ...:elasticmapreduce:*, ...:emr-containers:* and
 * ...:emr-serverless:*, for the aws, aws-cn and
 * aws-us-gov partitions; an action or suffix the service has not fails its task with
 * States.Runtime). `opts` is copied (NULL: defaults). The engine's tasks run on `loop`. Free
 * with sfn_integrations_free after sfn_engine_free, then run the loop. Returns the registry,
 * or NULL with err set (an invalid SFN_POLL_<SERVICE> value). */
struct sfn_integrations *sfn_integrations_register(struct sfn_engine *eng, uv_loop_t *loop,
                                                   const struct sfn_integrations_options *opts,
                                                   struct err *err);
/* Call after sfn_engine_free (every task has then been cancelled or detached). Calls still
 * in flight (the fire-and-forget cancel of an aborted job) are abandoned; handles close and
 * memory is freed on the next run of the loop. NULL is a no-op. */
void sfn_integrations_free(struct sfn_integrations *in);

#endif
