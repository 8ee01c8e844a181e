/* server/internal.h - the Step Functions API of sfnd, shared by its files: api.c (dispatch
 * of AWS JSON 1.0 requests, member validation with AWS's messages, errors, ARNs, names,
 * paging tokens, the API's life cycle), api_machine.c (state machine operations),
 * api_exec.c (execution operations), api_activity.c (activities and GetActivityTask's long
 * poll), api_task.c (task tokens: SendTask*, the Task resource handlers), api_tags.c (tags),
 * map.c (a string-keyed table). */
#ifndef SFN_SERVER_INTERNAL_H
#define SFN_SERVER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/api.h"
#include "server/server.h"
#include "util/buf.h"
#include "sfn.h"

/* ---- map.c: string keys (copied) to pointers (not owned) ---- */

struct smap_entry;
struct smap {
    struct smap_entry **slots; /* chains */
    size_t n_slots;
    size_t n;
};
void smap_init(struct smap *m);
void smap_release(struct smap *m);
void *smap_get(const struct smap *m, const char *key);
/* Sets key to value (replacing any previous value). */
void smap_put(struct smap *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *smap_del(struct smap *m, const char *key);
/* Calls fn for every entry (the map must not change meanwhile). */
void smap_each(const struct smap *m, void (*fn)(const char *key, void *value, void *arg),
               void *arg);

/* ---- the API ---- */

/* A compiled state machine kept for StartExecution (its current revision). */
struct api_machine {
    struct sfn_machine *m;  /* our reference */
    int64_t revision_id;    /* the store's revision it was compiled from */
    char *role_arn;         /* owned */
    bool deleting;          /* DeleteStateMachine is under way: no new execution */
    char *arn;              /* owned: the ARN it was last found by (NULL: none yet) */
    uint64_t gen;           /* sfn_store_machines_gen when it was last read: still current
                               while that has not changed */
};

struct api_activity;
struct api_deletion;
struct api_exec_state;

/* One Task attempt the API serves, found by its token: an activity task (queued for a
 * worker, or handed to one) or a .waitForTaskToken task. Owned by api->tasks; the engine's
 * attempt points back at it (sfn_task_data). */
struct api_task {
    struct api *api;
    struct sfn_task *t;          /* the engine's attempt */
    char *token;                 /* sfn_task_token(t), copied: the key in api->tasks */
    struct api_activity *act;    /* the activity; NULL for .waitForTaskToken */
    bool queued;                 /* in act's queue: not handed to a worker yet */
    struct api_task *next, *prev;/* act's queue */
};

struct api {
    uv_loop_t *loop;
    struct sfn_engine *eng;
    struct sfn_store *st;
    struct server *srv;
    const char *region;     /* borrowed: the engine's options */
    const char *account;
    struct smap machines;   /* name -> struct api_machine (owned) */
    struct smap running;    /* execution ARN -> struct sfn_execution (the engine's), until
                               its on_done has freed it */
    struct smap activities; /* activity ARN -> struct api_activity (owned; kept once used) */
    struct smap tasks;      /* task token -> struct api_task (owned) */
    struct smap callbacks;  /* .waitForTaskToken resources registered (values unused) */
    struct api_deletion *deletions; /* DeleteStateMachine waiting for the engine's commit */
    int64_t poll_ms;        /* GetActivityTask's long poll */
    bool shutting_down;     /* api_shutdown: no more long polls */
    uint64_t rng;           /* revisionIds */
    struct sfn_mock *mock;  /* sfnd --mock-config, or NULL (borrowed) */
    struct api_exec_state *exec_state; /* api_sync.c: sync calls, redrive tokens; or NULL */
    struct auth *auth;      /* --auth sigv4: the verifier (borrowed); NULL: none */
    struct buf reply;       /* the text of a 200 answer being made (call_ok, call_reply) */
};

/* One request being answered. */
struct call {
    struct api *api;
    struct server_req *req;
    json_t *in;             /* the request object (owned) */
};

/* Answers with `out_new` (stolen) as the 200 body; with `after_commit` once the engine has
 * committed the change it reports. */
void call_ok(struct call *c, json_t *out_new, bool after_commit);
/* The reply buffer, emptied, for an operation to write its answer's JSON text into; then
 * call_reply() answers with it (as call_ok does). */
struct buf *call_reply_buf(struct call *c);
void call_reply(struct call *c, bool after_commit);
/* Answers an AWS error (HTTP 400) with its code and message. Returns -1. */
int call_error(struct call *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with the error shape's resourceName member (ResourceNotFound, TooManyTags). */
int call_error_resource(struct call *c, const char *code, const char *resource,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Answers an internal failure (HTTP 500) from err. Returns -1. */
int call_fail(struct call *c, const struct err *err);

/* Request members (borrowed; NULL when absent or JSON null). */
const char *call_str(struct call *c, const char *member);
/* The integer member, or `def` when absent. */
int64_t call_int(struct call *c, const char *member, int64_t def);
bool call_bool(struct call *c, const char *member, bool def);

/* ARNs: 0 when `arn` names a resource of type `type` ("stateMachine", "execution"; NULL =
 * any type); else answers InvalidArn and returns -1. parts[] gets the ':'-separated fields
 * (borrowed from a copy in `scratch`, which the caller frees). */
#define ARN_PARTS_MAX 10
int api_arn_parse(struct call *c, const char *arn, const char *type, char **scratch,
                  char *parts[ARN_PARTS_MAX], int *n_parts);
/* AWS's name rules (api.md 2.1): 0, or answers InvalidName and returns -1. */
int api_name_check(struct call *c, const char *name);

/* Paging (api.md 4): the page size asked for (maxResults, 0 = 100). */
size_t api_page_size(struct call *c);
/* A nextToken for position `key` of a listing with arguments `filter`. New string. */
char *api_token_make(const char *key, const char *filter);
/* Reads the request's nextToken: 0 with *key_out NULL (no token) or the position (free()
 * it); -1 after answering InvalidToken (undecodable, or issued for other arguments). */
int api_token_read(struct call *c, const char *filter, char **key_out);

/* Epoch ms as AWS's timestamp (seconds with a fraction). New reference. */
json_t *api_time(int64_t ms);
/* Compact JSON text with sorted keys of `v` (borrowed), to compare configurations. New
 * string (free()). */
char *api_json_sorted(const json_t *v);
/* The wall clock in epoch ms. */
int64_t api_now_ms(void);
/* A random UUID v4 (revisionIds). */
void api_uuid(struct api *api, char out[37]);
/* A name for an execution started without one: a UUID (version 7, time-ordered). */
void api_name_new(struct api *api, char out[37]);

/* api_machine.c */
void op_create_state_machine(struct call *c);
void op_describe_state_machine(struct call *c);
void op_list_state_machines(struct call *c);
void op_validate_definition(struct call *c);
/* The compiled current revision of machine `arn` for StartExecution: 0 with *out (cached,
 * borrowed until the next call); 1 when there is no such machine; -1 after answering an
 * error. */
int api_machine_get(struct call *c, const char *arn, struct api_machine **out);
/* Frees the cache entries (smap_each callback). */
void api_machine_drop(const char *key, void *value, void *arg);
void op_update_state_machine(struct call *c);
void op_delete_state_machine(struct call *c);
void op_describe_state_machine_for_execution(struct call *c);
/* Deletes machine `arn` (api.md 5.4): status DELETING, its running executions stopped, and
 * once the engine has committed that, the machine and its records are removed. Replies held
 * with after_commit after this call leave after the removal. 0, or -1 with err set. */
int api_machine_delete(struct api *api, const char *arn, struct err *err);
/* Finishes the deletions a previous process left half done (machines still DELETING). */
int api_machine_finish_deletions(struct api *api, struct err *err);
/* Frees what waits for a commit that never came. */
void api_machine_release(struct api *api);

/* api_test_state.c */
void op_test_state(struct call *c);
/* Answers the TestState calls in flight (sfnd is stopping) and frees their engines. */
void api_test_state_shutdown(struct api *api);

/* api_exec.c */
void op_start_execution(struct call *c);
void op_describe_execution(struct call *c);
void op_stop_execution(struct call *c);
void op_list_executions(struct call *c);
void op_get_execution_history(struct call *c);
/* StartExecution's `input` member parsed (api.md 6.1 step 3). New reference, or NULL
 * answered (InvalidExecutionInput). */
json_t *api_start_input(struct call *c);

/* api_sync.c */
void op_start_sync_execution(struct call *c);
/* RedriveExecution's client tokens: execution ARN -> struct redrive_tokens (owned, free()). */
struct smap *api_redrive_tokens(struct api *api);
/* Frees what the execution operations keep (after sfn_engine_free and the loop's last run):
 * StartSyncExecution calls whose execution was released, redrive tokens. */
void api_exec_release(struct api *api);

/* api_redrive.c */
void op_redrive_execution(struct call *c);

/* api_activity.c */
void op_create_activity(struct call *c);
void op_describe_activity(struct call *c);
void op_delete_activity(struct call *c);
void op_list_activities(struct call *c);
void op_get_activity_task(struct call *c);
/* The Task resource handler of activity ARNs (registered for the API's region/account). */
extern const struct sfn_resource_ops api_activity_ops;
/* Takes an activity task out of its queue (api_task_free). */
void api_activity_unqueue(struct api_task *at);
/* Answers every waiting GetActivityTask with no task (the daemon stops). */
void api_activity_shutdown(struct api *api);
/* Frees the activities (after sfn_engine_free and the loop's last run). */
void api_activity_release(struct api *api);

/* api_task.c */
void op_send_task_success(struct call *c);
void op_send_task_failure(struct call *c);
void op_send_task_heartbeat(struct call *c);
/* Tracks an attempt by its token (the handler's data of `t`). */
struct api_task *api_task_new(struct api *api, struct sfn_task *t, struct api_activity *act);
/* Forgets an attempt: out of api->tasks and of its activity's queue; freed. */
void api_task_free(struct api_task *at);
/* The handlers' cancel/detach: the engine lets go of `t` (sfn_resource_ops). */
void api_task_on_release(struct sfn_task *t, void *arg);
/* Registers the .waitForTaskToken handler for every such Resource of a definition (text). */
void api_task_register_callbacks(struct api *api, const char *text, size_t len);

/* api_tags.c */
void op_tag_resource(struct call *c);
void op_untag_resource(struct call *c);
void op_list_tags_for_resource(struct call *c);
/* Checks a request's tag list (member `tags`, borrowed, may be NULL): shapes, lengths, at
 * most 50. 0, or -1 answered (SerializationException, ValidationException, TooManyTags
 * naming `resource`). */
int api_tags_check(struct call *c, json_t *tags, const char *resource);
#define API_TAGS_MAX 50 /* api.md 5.1 step 9 */

#endif
