/* include/sfn.h - libsfn, the public embedding API of sfnd's engine.
 *
 * An engine runs on the caller's libuv loop. Compile a definition into a machine, start
 * executions on it, be called back when they end, read their history. Task states are
 * served by resource handlers the caller registers (an ARN, or a prefix ending in '*').
 *
 * Ownership: json_t parameters are borrowed; json_t results are new references unless the
 * comment says borrowed. Errors are reported through struct err (util/err.h): a name that
 * Retry/Catch match and a cause for people. Functions that take a callback and return -1
 * never call that callback. */
#ifndef SFN_H
#define SFN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/err.h"

struct sfn_engine;
struct sfn_machine;
struct sfn_execution;
struct sfn_task;

/* ---- engine ------------------------------------------------------------------------- */

struct sfn_engine_options {
    bool virtual_clock;       /* waits, back-offs and timeouts complete at once while
                                 timestamps advance as if they had elapsed */
    int64_t retry_wait_ms;    /* >= 0: every Retry back-off lasts this long (benchmarks);
                                 -1: as the definition says */
    uint64_t seed;            /* randomness (jitter, States.UUID); 0 = from the clock */
    const char *region;       /* for ARNs; NULL = "us-east-1" */
    const char *account;      /* for ARNs; NULL = "123456789012" */
    int64_t clock_start_ms;   /* virtual clock: its start (epoch ms); 0 = the wall clock */
};

/* Creates an engine on `loop`. `opt` may be NULL for defaults. */
struct sfn_engine *sfn_engine_new(uv_loop_t *loop, const struct sfn_engine_options *opt);
/* Stops every running execution (ABORTED), frees every execution and closes the engine's
 * handles; memory is released in their close callbacks, so run the loop afterwards
 * (uv_run(loop, UV_RUN_DEFAULT)) before uv_loop_close(). With persistence on
 * (sfn_engine_set_persist, sfn_store_attach), running executions are released instead
 * (sfn_execution_release: committed, nothing recorded, tasks detached) so that a later
 * process continues them. */
void sfn_engine_free(struct sfn_engine *eng);

/* ---- task resources (the one seam for Task states) ----------------------------------- */

struct sfn_resource_ops {
    /* Starts one attempt of a Task. Returns 0 and later calls sfn_task_succeed() or
     * sfn_task_fail() (possibly before returning), or returns -1 with err set (the task
     * fails with err's name and cause; start will not be called back). */
    int (*start)(struct sfn_task *t, void *arg, struct err *err);
    /* The attempt is abandoned (execution stopped or timed out, a sibling branch failed,
     * TimeoutSeconds/HeartbeatSeconds expired). The handler must release what it holds for
     * `t`; after cancel returns, `t` is gone and must not be used. May be NULL. */
    void (*cancel)(struct sfn_task *t, void *arg);
    /* Takes back an attempt that was in flight when a previous process stopped (its token
     * and data are those of the original start). Same contract as start. May be NULL: the
     * task then fails with States.TaskFailed instead of being started again. */
    int (*resume)(struct sfn_task *t, void *arg, struct err *err);
    /* The engine lets go of the attempt without abandoning it (sfn_execution_release: the
     * process is shutting down and the execution will be restored later): release what
     * refers to `t`, but keep the job running. May be NULL. */
    void (*detach)(struct sfn_task *t, void *arg);
    /* Called when an attempt is about to be scheduled, before any event of it is recorded
     * (e.g. the activity exists). Returns 0, or -1 with err set: the state then fails with
     * err without a scheduling event (a States.Runtime cause is prefixed with the state's
     * name, as AWS does for a deleted activity). May be NULL. */
    int (*check)(struct sfn_task *t, void *arg, struct err *err);
};

/* Registers a handler for Task resources equal to `pattern`, or starting with it when it
 * ends in '*'. Later registrations win over earlier ones for the same ARN. Returns 0, or -1
 * with err set when the pattern is empty. */
int sfn_engine_register_resource(struct sfn_engine *eng, const char *pattern,
                                 const struct sfn_resource_ops *ops, void *arg,
                                 struct err *err);

const char *sfn_task_resource(const struct sfn_task *t);
const char *sfn_task_state_name(const struct sfn_task *t);
/* Whether the Task state declares Credentials (a role to assume for the task). */
bool sfn_task_has_credentials(const struct sfn_task *t);
const char *sfn_task_execution_arn(const struct sfn_task *t);
/* The effective input of the task (after InputPath and Parameters). Borrowed. */
json_t *sfn_task_input(const struct sfn_task *t);
/* The attempt's task token: 64 hex characters of 256 random bits (unguessable), unique per
 * attempt and the same after a restart (it is in the checkpoint committed before the start
 * is called). Use it as the .waitForTaskToken/activity token, or derive the idempotency
 * token of a service call from it. */
const char *sfn_task_token(const struct sfn_task *t);
/* 0 for the first attempt of a state visit, 1 for the first retry, ... */
int sfn_task_attempt(const struct sfn_task *t);
int64_t sfn_task_timeout_seconds(const struct sfn_task *t);   /* 0 = none declared */
int64_t sfn_task_heartbeat_seconds(const struct sfn_task *t); /* 0 = none declared */
/* Handler-private data (not owned by the engine). */
void sfn_task_set_data(struct sfn_task *t, void *data);
void *sfn_task_data(const struct sfn_task *t);
/* Completes the attempt with `output` (borrowed). `t` is gone afterwards. */
void sfn_task_succeed(struct sfn_task *t, json_t *output);
/* Fails the attempt; `error`/`cause` may be NULL. `t` is gone afterwards. */
void sfn_task_fail(struct sfn_task *t, const char *error, const char *cause);
/* An activity's worker has taken the attempt (GetActivityTask): records ActivityStarted
 * {workerName} (`worker_name` may be NULL), committed with the turn like any event, and
 * starts the HeartbeatSeconds clock; TimeoutSeconds keeps counting from the scheduling
 * (api.md 8.2, 8.4). The engine keeps the fact in the checkpoint: after a restart the
 * attempt is still started and both clocks continue. Once per attempt (later calls, and
 * calls for Task/Lambda resources, whose start is recorded at scheduling, do nothing). */
void sfn_task_started(struct sfn_task *t, const char *worker_name);
/* Whether the attempt has been started (sfn_task_started, or at scheduling for non-activity
 * resources). */
bool sfn_task_taken(const struct sfn_task *t);
/* Resets the HeartbeatSeconds clock. */
void sfn_task_heartbeat(struct sfn_task *t);
/* The running attempt of a job-run (.sync) Task whose token is `token`, or NULL. Such an
 * attempt has its token in the context object ($$.Task.Token) like a callback task, so the
 * job it started may report with SendTaskHeartbeat, or end the task early with
 * SendTaskSuccess / SendTaskFailure (after sfn_task_take_over). Linear in their number. */
struct sfn_task *sfn_engine_job_task(struct sfn_engine *eng, const char *token);
/* Takes a running attempt away from its handler, which lets go of it as on detach (stops
 * monitoring, cancels nothing); the caller then completes it with sfn_task_succeed or
 * sfn_task_fail. */
void sfn_task_take_over(struct sfn_task *t);
/* Records a TaskSubmitted event (for .sync/.waitForTaskToken: the service's first reply). */
void sfn_task_submitted(struct sfn_task *t, json_t *output);
/* The handler's resumable state of the attempt (job id, poll state...): `state` (borrowed,
 * NULL clears it) is persisted with the execution's checkpoint and is there again, through
 * sfn_task_state, when the attempt is handed back by `resume` after a restart. */
void sfn_task_set_state(struct sfn_task *t, json_t *state);
/* The state last set (borrowed), or NULL. */
json_t *sfn_task_state(const struct sfn_task *t);

/* Like sfn_engine_register_resource, but asked before every registration made without it,
 * whenever those were made (for a handler that wraps the others, such as the mocks). */
int sfn_engine_register_resource_first(struct sfn_engine *eng, const char *pattern,
                                       const struct sfn_resource_ops *ops, void *arg,
                                       struct err *err);
/* For a handler that wraps others (the mocks): the latest registration matching `arn` whose
 * ops are not `skip`. Returns 0 with *ops and *arg set, or -1 when there is none. */
int sfn_engine_resource_next(struct sfn_engine *eng, const char *arn,
                             const struct sfn_resource_ops *skip,
                             const struct sfn_resource_ops **ops, void **arg);

/* ---- machines ------------------------------------------------------------------------ */

enum sfn_machine_type { SFN_STANDARD, SFN_EXPRESS };

/* Called once per diagnostic: AWS code, message, location (may be NULL). */
typedef void (*sfn_diag_fn)(const char *code, const char *message, const char *location,
                            void *arg);

/* Validates definition text as AWS does. Returns the number of diagnostics (0 = valid). */
int sfn_validate(const char *text, size_t len, enum sfn_machine_type type, sfn_diag_fn fn,
                 void *arg);
/* Compiles a definition. `name` is the state machine's name (for its ARN and the context
 * object). Returns NULL with err set (name "InvalidDefinition", cause AWS's message
 * "Invalid State Machine Definition: '...'") when invalid. */
struct sfn_machine *sfn_machine_compile(struct sfn_engine *eng, const char *text, size_t len,
                                        const char *name, enum sfn_machine_type type,
                                        struct err *err);
/* Drops the caller's reference; executions keep the machine alive while they need it. */
void sfn_machine_free(struct sfn_machine *m);
const char *sfn_machine_arn(const struct sfn_machine *m);
const char *sfn_machine_name(const struct sfn_machine *m);
enum sfn_machine_type sfn_machine_type(const struct sfn_machine *m);
/* The definition text exactly as compiled (borrowed; not NUL-terminated: use *len). */
const char *sfn_machine_definition(const struct sfn_machine *m, size_t *len);

/* ---- executions ---------------------------------------------------------------------- */

enum sfn_status {
    SFN_RUNNING,
    SFN_SUCCEEDED,
    SFN_FAILED,
    SFN_TIMED_OUT,
    SFN_ABORTED,
};

/* "RUNNING", "SUCCEEDED", ... */
const char *sfn_status_name(enum sfn_status s);

typedef void (*sfn_done_fn)(struct sfn_execution *ex, void *arg);
/* Called for each history event as it is recorded; index into the execution's history. */
typedef void (*sfn_event_fn)(struct sfn_execution *ex, size_t index, void *arg);

struct sfn_execution_options {
    const char *name;     /* execution name; NULL = a UUID */
    const char *role_arn; /* for the context object and ExecutionStarted; NULL = a default */
    sfn_done_fn on_done;  /* called once when the execution ends (from the loop) */
    sfn_event_fn on_event;/* may be NULL */
    void *arg;            /* passed to both */
};

/* Starts an execution with `input` (borrowed; NULL = {}). Returns the execution (owned by
 * the engine until sfn_execution_free), or NULL with err set (States.DataLimitExceeded for
 * input over 256 KiB). on_done is never called from inside this function. */
struct sfn_execution *sfn_execution_start(struct sfn_engine *eng, struct sfn_machine *m,
                                          json_t *input, const struct sfn_execution_options *opt,
                                          struct err *err);
/* Aborts a running execution (StopExecution): every branch, iteration and in-flight task is
 * cancelled; status ABORTED. `error`/`cause` may be NULL. No-op once ended. */
void sfn_execution_stop(struct sfn_execution *ex, const char *error, const char *cause);
/* Ends a running execution as FAILED from outside (DeleteStateMachine, api.md 5.4): the same
 * cancellation as sfn_execution_stop, but the last event is ExecutionFailed{error, cause}.
 * No-op once ended. */
void sfn_execution_fail(struct sfn_execution *ex, const char *error, const char *cause);
/* Frees an execution (stopping it first if it is running). */
void sfn_execution_free(struct sfn_execution *ex);
/* Frees the in-memory execution WITHOUT stopping it: no event is recorded and in-flight
 * attempts are detached, not cancelled (a restart must never cancel work). Take a snapshot
 * first to continue it later with sfn_execution_restore. */
void sfn_execution_release(struct sfn_execution *ex);

enum sfn_status sfn_execution_status(const struct sfn_execution *ex);
const char *sfn_execution_arn(const struct sfn_execution *ex);
/* Output of a SUCCEEDED execution (borrowed), else NULL. */
json_t *sfn_execution_output(const struct sfn_execution *ex);
/* Error of a FAILED/TIMED_OUT/ABORTED execution (borrowed; `set` false when none). */
const struct err *sfn_execution_error(const struct sfn_execution *ex);
const char *sfn_execution_name(const struct sfn_execution *ex);
struct sfn_machine *sfn_execution_machine(const struct sfn_execution *ex); /* borrowed */
json_t *sfn_execution_input(const struct sfn_execution *ex);               /* borrowed */
int64_t sfn_execution_start_ms(const struct sfn_execution *ex);  /* epoch ms */
int64_t sfn_execution_stop_ms(const struct sfn_execution *ex);   /* 0 while running */
/* History: number of events, and event i in AWS's GetExecutionHistory shape (new ref).
 * With persistence on, events are dropped from memory once committed: event i is then
 * NULL for i < sfn_execution_history_first(ex) (read it from the store). */
size_t sfn_execution_history_size(const struct sfn_execution *ex);
size_t sfn_execution_history_first(const struct sfn_execution *ex);
/* Events already handed to the persistence layer's commit (see sfn_persist_ops). */
size_t sfn_execution_history_committed(const struct sfn_execution *ex);
json_t *sfn_execution_event(const struct sfn_execution *ex, size_t i, bool include_data);
/* Appends event i's compact JSON text (the same as sfn_execution_event's) to `out` without
 * building JSON values; *ts_ms gets its time. -1 when the event is not in memory. */
int sfn_execution_event_append(const struct sfn_execution *ex, size_t i, bool include_data,
                               struct buf *out, int64_t *ts_ms);
/* The type of event i ("PassStateEntered"). */
const char *sfn_execution_event_type(const struct sfn_execution *ex, size_t i);

/* ---- snapshots (durability) ------------------------------------------------------------ */

/* Writes the whole execution out as JSON (new reference): every frame (Parallel branches,
 * Map iterations) with its state, data, retry counters, timer deadlines and in-flight task
 * attempts (token, input), and the history so far. Take it between loop callbacks. */
json_t *sfn_execution_snapshot(const struct sfn_execution *ex);
/* The same without the history (the events' count only): what a store keeps next to the
 * events it has already written. sfn_execution_restore accepts both. */
json_t *sfn_execution_checkpoint(const struct sfn_execution *ex);
/* Reads a snapshot back into `eng` (on machine `m`, compiled from the same definition) and
 * continues exactly where it was: due timers fire at once, in-flight attempts go to their
 * handler's `resume` (or fail with States.TaskFailed when it has none); nothing is started
 * twice. Returns the execution, or NULL with err set when the snapshot does not fit `m`. */
struct sfn_execution *sfn_execution_restore(struct sfn_engine *eng, struct sfn_machine *m,
                                            json_t *snapshot,
                                            const struct sfn_execution_options *opt,
                                            struct err *err);

/* ---- redrive (RedriveExecution, api.md 9.2) -------------------------------------------- */

/* When a Standard execution ends FAILED, ABORTED or TIMED_OUT, its checkpoint
 * (sfn_execution_checkpoint) keeps where to resume it: the states that failed or were
 * stopped, with their inputs, and inside Parallel and inline Map the children that succeeded
 * with their outputs. This takes such a checkpoint (borrowed) and continues the execution on
 * machine `m` (the revision it ran): same ARN, ExecutionRedriven{redriveCount} appended to
 * its history, status RUNNING, each failed or aborted state entered again with its original
 * input; succeeded states, branches and iterations are not run again. The machine's
 * TimeoutSeconds counts from the redrive. Returns the execution, or NULL with err set (name
 * "ExecutionNotRedrivable" and AWS's message for another status or an Express machine). */
struct sfn_execution *sfn_execution_redrive(struct sfn_engine *eng, struct sfn_machine *m,
                                            json_t *checkpoint,
                                            const struct sfn_execution_options *opt,
                                            struct err *err);
/* Number of redrives ($$.Execution.RedriveCount), and the last one's time (epoch ms, 0 =
 * never; $$.Execution.RedriveTime). */
int64_t sfn_execution_redrive_count(const struct sfn_execution *ex);
int64_t sfn_execution_redrive_ms(const struct sfn_execution *ex);

/* ---- persistence (the seam a store plugs into) ------------------------------------------ */

struct sfn_persist_ops {
    /* Called once at the end of every loop turn in which executions changed, with those
     * executions (their new events are sfn_execution_history_committed .. _size; take
     * sfn_execution_checkpoint of the running ones). Must make all of it durable before it
     * returns 0. Until it has, nothing of the turn leaves the engine: task starts, on_event
     * and on_done calls wait for it. On -1 with err set, the engine stops for good: nothing
     * runs any more, nothing is delivered (sfn_engine_persist_error tells why). */
    int (*commit)(void *arg, struct sfn_execution *const *changed, size_t n, struct err *err);
};

/* With persistence on, committed events are dropped from memory (a waiting execution keeps
 * no history in RAM); `keep` true keeps them too (small embedded runs, tests). */
void sfn_engine_keep_history(struct sfn_engine *eng, bool keep);
/* Turns persistence on (before any execution starts) or off (ops NULL). */
void sfn_engine_set_persist(struct sfn_engine *eng, const struct sfn_persist_ops *ops,
                            void *arg);
/* Calls fn(arg) once, from the loop, after the commit of everything changed until now (at
 * the end of the current turn, or of the next one when called between turns): the moment an
 * acknowledgement of those changes may leave the process (an API reply). With persistence
 * off, at the end of the turn. Never called if the engine stops on a failed commit. */
void sfn_engine_after_commit(struct sfn_engine *eng, void (*fn)(void *arg), void *arg);
/* The error of the commit that stopped the engine, or NULL. */
const struct err *sfn_engine_persist_error(const struct sfn_engine *eng);
/* The store's ids, kept on the objects for it (0 = not stored yet). */
int64_t sfn_execution_persist_id(const struct sfn_execution *ex);
void sfn_execution_set_persist_id(struct sfn_execution *ex, int64_t id);
int64_t sfn_machine_persist_id(const struct sfn_machine *m);
void sfn_machine_set_persist_id(struct sfn_machine *m, int64_t id);

/* ---- the store: SQLite, every transition persisted (store/) ----------------------------- */

struct sfn_store;

enum sfn_durability {
    SFN_DURABILITY_FULL,   /* fsync at every commit (the default) */
    SFN_DURABILITY_NORMAL, /* WAL without fsync per commit: survives a crash of the process,
                              may lose the last commits on a power failure */
    SFN_DURABILITY_OFF,    /* no syncing at all: throw-away runs */
};

struct sfn_store_options {
    enum sfn_durability durability;
    int64_t max_bytes;     /* > 0: the database never grows past this (it reports a full
                              disk when it would) */
    bool read_only;        /* for listings and history only: no lock taken, nothing written
                              (the file must exist) */
    /* Called once when a commit fails (full disk, I/O error): the engine has stopped and
     * the file holds everything up to the previous commit. May be NULL. */
    void (*on_fatal)(const struct err *err, void *arg);
    void *arg;
};

/* Opens (creating it, mode 0600) the SQLite database at `path`: WAL, foreign keys, schema
 * migrations. Fails with a clear err for a missing or read-only directory, a file that is
 * not an sfn database or is corrupt, a schema newer than this build, or a database already
 * opened for writing by another process. */
struct sfn_store *sfn_store_open(const char *path, const struct sfn_store_options *opt,
                                 struct err *err);
/* Persists every execution of `eng` into the store from now on (one store per engine). */
int sfn_store_attach(struct sfn_store *st, struct sfn_engine *eng, struct err *err);
/* Compiles a definition and records it as state machine `name` (a new revision when the
 * text differs from the current one). Returns the machine (caller's reference), or NULL
 * with err set (InvalidDefinition...). */
struct sfn_machine *sfn_store_machine(struct sfn_store *st, struct sfn_engine *eng,
                                      const char *name, const char *text, size_t len,
                                      enum sfn_machine_type type, const char *role_arn,
                                      struct err *err);
/* Whether an execution with this ARN is stored. */
bool sfn_store_execution_exists(struct sfn_store *st, const char *arn);
/* Continues every RUNNING execution of the store on `eng` (which must be attached), each
 * from its checkpoint, with `opt` (name ignored). *count gets the number resumed. Returns 0,
 * or -1 with err set (nothing resumed). */
int sfn_store_recover(struct sfn_store *st, struct sfn_engine *eng,
                      const struct sfn_execution_options *opt, size_t *count, struct err *err);
/* RedriveExecution (api.md 9.2): continues the stored execution `arn` on `eng` (attached)
 * with sfn_execution_redrive from the checkpoint kept when it ended; the store records it
 * RUNNING again, with its redrive count and time, in the engine's next commit. Returns 0
 * with *out the execution (owned by the engine), 1 when there is no such execution, or -1
 * with err set: name "ExecutionNotRedrivable" with AWS's reason (not FAILED, ABORTED or
 * TIMED_OUT; ended more than SFN_REDRIVE_PERIOD_MS ago; an Express machine; the machine is
 * being deleted; ended before this build kept checkpoints; 24,999 history events), or a
 * store error. */
#define SFN_REDRIVE_PERIOD_MS (14LL * 24 * 3600 * 1000) /* api.md 9.2: within 14 days */
int sfn_store_redrive(struct sfn_store *st, struct sfn_engine *eng, const char *arn,
                      const struct sfn_execution_options *opt, struct sfn_execution **out,
                      struct err *err);
/* Closes the database (after the engine is freed or detached). */
void sfn_store_close(struct sfn_store *st);

/* Reading back (any process; readers do not block the writer). */
struct sfn_store_execution {
    const char *arn, *name, *machine_arn, *status, *error, *cause;
    const char *input, *output; /* JSON text or NULL */
    int64_t start_ms, stop_ms;  /* stop 0 while running */
    int64_t redrive_count;      /* RedriveExecution calls (api.md 9.2) */
    int64_t redrive_ms;         /* the last one's time, epoch ms; 0 = never redriven */
};
typedef int (*sfn_store_execution_fn)(const struct sfn_store_execution *e, void *arg);
/* Calls fn for each execution (newest first), optionally only of machine `machine_name` and
 * with `status`; fn returning non-zero stops the walk. Returns 0 or -1 with err. */
int sfn_store_list_executions(struct sfn_store *st, const char *machine_name,
                              const char *status, sfn_store_execution_fn fn, void *arg,
                              struct err *err);
/* Finds an execution by ARN or by name (the newest of that name). 0, 1 (not found) or -1. */
int sfn_store_get_execution(struct sfn_store *st, const char *arn_or_name,
                            sfn_store_execution_fn fn, void *arg, struct err *err);
/* Calls fn with history events of execution `arn` (AWS's shape, borrowed) with ids after
 * `after_id` (before it when `reverse`; 0 = from the start/end), at most `limit` (0 = all),
 * read a stored batch at a time (never the whole history in memory). Returns the number of
 * events, or -1. */
typedef int (*sfn_store_event_fn)(json_t *event, void *arg);
long sfn_store_history(struct sfn_store *st, const char *arn, int64_t after_id, bool reverse,
                       size_t limit, bool include_data, sfn_store_event_fn fn, void *arg,
                       struct err *err);

/* ---- store: reads for the API server ---------------------------------------------------- */

/* The functions of this block use statements prepared when the store is opened for writing;
 * on a read-only store they fail with err set. */

/* A state machine as the store holds it (all borrowed for the duration of the callback). */
struct sfn_store_machine_rec {
    const char *name, *arn, *type; /* type: "STANDARD" or "EXPRESS" */
    const char *role_arn;          /* may be NULL (machines recorded by `sfn run --db`) */
    const char *definition;        /* the current revision's text, exactly as recorded */
    size_t definition_len;
    int64_t revision_id;           /* pass to sfn_machine_set_persist_id on a compiled copy */
    int64_t created_ms;            /* epoch ms */
    const char *status;            /* "ACTIVE", or "DELETING" while DeleteStateMachine runs */
    const char *logging;           /* loggingConfiguration, JSON text; NULL = the default */
    const char *tracing;           /* tracingConfiguration, JSON text; NULL = the default */
    const char *revision_uuid;     /* revisionId; NULL for the first revision */
    int64_t updated_ms;            /* when the revision was recorded (epoch ms) */
};
typedef int (*sfn_store_machine_fn)(const struct sfn_store_machine_rec *m, void *arg);
/* Finds a state machine by exact name or ARN (a string that starts with "arn:") and calls fn
 * once. Returns 0, 1 (not found) or -1 with err set. */
int sfn_store_get_machine(struct sfn_store *st, const char *name_or_arn,
                          sfn_store_machine_fn fn, void *arg, struct err *err);
/* A number that changes whenever this store writes a state machine (created, new revision,
 * status, deleted): what was read with sfn_store_get_machine is still current while it has
 * not changed. */
uint64_t sfn_store_machines_gen(const struct sfn_store *st);
/* Calls fn for the state machines whose name sorts after `after_name` (NULL = from the first),
 * by name in byte order, at most `limit` (0 = all); fn returning non-zero stops the walk.
 * Returns the number of machines passed to fn, or -1 with err set. */
long sfn_store_list_machines(struct sfn_store *st, const char *after_name, size_t limit,
                             sfn_store_machine_fn fn, void *arg, struct err *err);
/* One page of the executions of the machine with ARN `machine_arn`, newest first (start time,
 * then recording order), optionally only with `status`, starting after the execution
 * `after_arn` (NULL = from the newest), at most `limit` (0 = all); `redrive` "REDRIVEN" or
 * "NOT_REDRIVEN" keeps only executions redriven at least once, or never (NULL = all). Returns
 * the number passed to fn, -1 with err set, or -2 when `after_arn` is not an execution of
 * that machine. */
long sfn_store_page_executions(struct sfn_store *st, const char *machine_arn, const char *status,
                               const char *redrive, const char *after_arn, size_t limit, sfn_store_execution_fn fn,
                               void *arg, struct err *err);
/* sfn_store_recover, and fn is called with each execution it continues (so that the caller
 * can find it again, e.g. to stop it). Returns 0, or -1 with err set. */
typedef void (*sfn_store_recovered_fn)(struct sfn_execution *ex, void *arg);
int sfn_store_recover_each(struct sfn_store *st, struct sfn_engine *eng,
                           const struct sfn_execution_options *opt, sfn_store_recovered_fn fn,
                           void *fn_arg, size_t *count, struct err *err);

/* Finds an execution by exact ARN (not by name) and calls fn once. 0, 1 (not found) or -1. */
int sfn_store_find_execution(struct sfn_store *st, const char *arn, sfn_store_execution_fn fn,
                             void *arg, struct err *err);
/* The state machine revision execution `exec_arn` runs (DescribeStateMachineForExecution):
 * fn gets the revision's definition, role, logging, tracing and revisionId. 0, 1, or -1. */
int sfn_store_execution_machine(struct sfn_store *st, const char *exec_arn,
                                sfn_store_machine_fn fn, void *arg, struct err *err);
/* Calls fn with the definition text of each revision a RUNNING execution uses (what a
 * recovery is about to compile). Returns 0, or -1 with err set. */
int sfn_store_running_definitions(struct sfn_store *st,
                                  void (*fn)(const char *text, size_t len, void *arg), void *arg,
                                  struct err *err);

/* What CreateStateMachine/UpdateStateMachine record beside the definition. */
struct sfn_store_machine_config {
    const char *role_arn;      /* NULL: none (create), unchanged (update) */
    const char *logging;       /* JSON text; NULL: the default (create), unchanged (update) */
    const char *tracing;       /* JSON text; likewise */
    json_t *tags;              /* create: [{"key": k, "value": v}, ...] (borrowed), or NULL */
};
/* Compiles a definition and records state machine `name`, which must not exist yet, with its
 * first revision, configuration and tags, in one transaction. Returns the machine (caller's
 * reference, persist id set), or NULL with err set ("InvalidDefinition", or a store error). */
struct sfn_machine *sfn_store_create_machine(struct sfn_store *st, struct sfn_engine *eng,
                                             const char *name, const char *text, size_t len,
                                             enum sfn_machine_type type,
                                             const struct sfn_store_machine_config *cfg,
                                             struct err *err);
/* UpdateStateMachine: records a new revision of machine `arn` (identified by `revision_uuid`)
 * from the current one with the members given (text NULL and cfg fields NULL = unchanged).
 * When nothing differs from the current revision nothing is written. Then calls fn with the
 * machine as it now is. Returns 0, 1 (no such machine) or -1 with err set. */
int sfn_store_update_machine(struct sfn_store *st, const char *arn, const char *text, size_t len,
                             const struct sfn_store_machine_config *cfg,
                             const char *revision_uuid, sfn_store_machine_fn fn, void *arg,
                             struct err *err);
/* Sets a machine's status ("DELETING"). 0, 1 (no such machine) or -1. */
int sfn_store_machine_set_status(struct sfn_store *st, const char *arn, const char *status,
                                 struct err *err);
/* Deletes machine `arn` with its revisions, executions (and their histories) and tags, in one
 * transaction. Its executions must not be running in an engine any more. 0, 1 or -1. */
int sfn_store_delete_machine(struct sfn_store *st, const char *arn, struct err *err);

/* An activity (all borrowed for the duration of the callback). */
struct sfn_store_activity_rec {
    int64_t id;                /* creation order */
    const char *name, *arn;
    const char *encryption;    /* encryptionConfiguration, JSON text, or NULL */
    int64_t created_ms;        /* epoch ms */
};
typedef int (*sfn_store_activity_fn)(const struct sfn_store_activity_rec *a, void *arg);
/* CreateActivity: records activity `name`/`arn` with its `tags` (borrowed array of {"key",
 * "value"}, or NULL) unless it exists, then calls fn with the stored activity (the existing
 * one when it existed: tags are then not applied). Returns 0 (created), 1 (existed) or -1
 * with err set. */
int sfn_store_create_activity(struct sfn_store *st, const char *name, const char *arn,
                              int64_t created_ms, const char *encryption, json_t *tags,
                              sfn_store_activity_fn fn, void *arg, struct err *err);
/* Finds an activity by ARN. 0, 1 (not found) or -1. */
int sfn_store_get_activity(struct sfn_store *st, const char *arn, sfn_store_activity_fn fn,
                           void *arg, struct err *err);
/* Deletes an activity and its tags. 0, 1 (not found) or -1. */
int sfn_store_delete_activity(struct sfn_store *st, const char *arn, struct err *err);
/* Activities in creation order after id `after_id` (0 = from the first), at most `limit`
 * (0 = all). Returns the number passed to fn, or -1. */
long sfn_store_list_activities(struct sfn_store *st, int64_t after_id, size_t limit,
                               sfn_store_activity_fn fn, void *arg, struct err *err);

/* Tags of a machine or activity ARN. Sets each {"key", "value"} of `tags` (borrowed array),
 * replacing a key's value; fails with err name "TooManyTags" (nothing written) when the
 * resource would have more than `max`. 0 or -1. */
int sfn_store_tag(struct sfn_store *st, const char *arn, json_t *tags, size_t max,
                  struct err *err);
/* Removes the keys of `keys` (borrowed array of strings). 0 or -1. */
int sfn_store_untag(struct sfn_store *st, const char *arn, json_t *keys, struct err *err);
/* Calls fn for each tag of `arn`, by key. Returns the number of tags or -1. */
long sfn_store_list_tags(struct sfn_store *st, const char *arn,
                         void (*fn)(const char *key, const char *value, void *arg), void *arg,
                         struct err *err);

/* ---- mocked service integrations (Step Functions Local's MockConfigFile; integrations/mock.c)
 *
 * A mock config names, per state machine, test cases that map Task state names to mocked
 * responses; each response answers the state's invocations (0-based, per execution, retries
 * and Map iterations included, in the order they start) with a Return value or a Throw
 * {Error, Cause}. Past the last invocation listed, the last response answers again. Needs no
 * AWS library. The mock must outlive the engine it is attached to. */

struct sfn_mock;

#define SFN_MOCK_ONLY 1u /* a Task the test case does not mock fails (States.Runtime) instead
                            of going to the real integration */

/* Reads and validates a MockConfigFile. Returns the mock, or NULL with err set (name
 * "MockConfigInvalid", the cause naming the file and the place: bad JSON, an unknown
 * response name, a bad range such as "2-1", both Return and Throw...). */
struct sfn_mock *sfn_mock_load(const char *path, struct err *err);
/* The same from text; `where` names it in messages ("mock config 'x.json'"). */
struct sfn_mock *sfn_mock_parse(const char *text, size_t len, const char *where,
                                struct err *err);
void sfn_mock_free(struct sfn_mock *mock);
bool sfn_mock_has_test_case(const struct sfn_mock *mock, const char *machine,
                            const char *test_case);
/* Whether test case `test_case` of `machine` mocks state `state`. */
bool sfn_mock_mocks_state(const struct sfn_mock *mock, const char *machine,
                          const char *test_case, const char *state);
/* Serves every Task of `eng` through the mock (registered first for "*": an unmocked Task
 * goes to the handler that would have served it, whenever that was registered). `machine` and
 * `test_case` (both or neither) bind every execution of that machine to the test case.
 * Returns 0, or -1 with err set (no such test case). */
int sfn_mock_attach(struct sfn_engine *eng, struct sfn_mock *mock, const char *machine,
                    const char *test_case, unsigned flags, struct err *err);
/* Binds all executions of `machine` / one execution (StartExecution on
 * "stateMachineArn#TestCase") to a test case. 0, or -1 with err set (no such test case). */
int sfn_mock_bind_machine(struct sfn_mock *mock, const char *machine, const char *test_case,
                          struct err *err);
int sfn_mock_bind_execution(struct sfn_mock *mock, const char *exec_arn, const char *machine,
                            const char *test_case, struct err *err);
/* Drops what the mock keeps for an execution that has ended (binding, invocation counts). */
void sfn_mock_forget(struct sfn_mock *mock, const char *exec_arn);

/* ---- TestState (engine/test_state.c; api.md 9.5) ---------------------------------------
 *
 * Runs one state in isolation, as AWS's TestState API does: with an input, optionally a
 * mocked Task result or error, and reports its output, error, cause, next state, status
 * (SUCCEEDED, FAILED, RETRIABLE, CAUGHT_ERROR) and, at DEBUG/TRACE, the inspection data
 * (input, afterInputPath, afterParameters, result, afterResultSelector, afterResultPath,
 * errorDetails). The state runs in `eng` (an unmocked Task goes to the registered resources);
 * it does not retry, and a Wait state does not wait. */

struct sfn_test_state_request {
    json_t *definition;           /* one state, or a whole machine with state_name */
    const char *state_name;       /* may be NULL */
    json_t *input;                /* NULL = {} */
    const char *inspection_level; /* "INFO" (NULL), "DEBUG" or "TRACE" */
    const char *role_arn;         /* may be NULL; an unmocked Task needs has_role */
    bool has_role;
    json_t *mock;                 /* {"result": JSON text} | {"errorOutput": {error, cause}} */
    int retrier_retry_count;      /* retries already made (stateConfiguration) */
};
/* Called once with the TestState response in AWS's shape (borrowed; `output` and the
 * inspection data members are JSON text). */
typedef void (*sfn_test_state_fn)(json_t *response, void *arg);
/* Starts the test. Returns 0 and later calls fn (never from inside this function), or -1
 * with err set to AWS's error (name "ValidationException" or "InvalidDefinition", cause
 * AWS's message). The request's values are borrowed. */
int sfn_test_state(struct sfn_engine *eng, const struct sfn_test_state_request *req,
                   sfn_test_state_fn fn, void *arg, struct err *err);
/* Abandons the tests in flight on `eng` (before sfn_engine_free, e.g. at shutdown): their
 * executions are stopped and freed, their fn is never called. */
void sfn_test_state_abandon(struct sfn_engine *eng);

#endif
