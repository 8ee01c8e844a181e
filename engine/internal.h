/* engine/internal.h - the engine's private structures: the engine (clock, timers, run
 * queue, resource registry), executions, frames (one per thread of control: the execution
 * itself, a Parallel branch, a Map iteration), task attempts and history events. */
#ifndef SFN_ENGINE_INTERNAL_H
#define SFN_ENGINE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "asl/asl.h"
#include "asl/machine.h"
#include "sfn.h"
#include "util/err.h"
#include "util/json.h"
#include "util/list.h"

/* ---- timers: one heap for real and virtual time ---- */

struct etimer {
    int64_t deadline;                 /* engine clock, epoch ms */
    size_t slot;                      /* index in the heap; SIZE_MAX when not armed */
    void (*fire)(struct etimer *t);   /* called from the loop when due */
};

/* ---- history ---- */

enum ev_type {
#define EV(name) EV_##name,
#include "engine/events.def"
#undef EV
    EV_COUNT
};

struct hevent {
    int64_t id;            /* 1, 2, 3 ... */
    int64_t prev;          /* previousEventId */
    int64_t ts_ms;         /* epoch ms */
    enum ev_type type;
    const char *name;      /* state name (borrowed from the machine), or NULL */
    json_t *data;          /* input/output/parameters (owned reference), or NULL */
    json_t *details;       /* extra detail members (owned), or NULL */
    char *error;           /* owned, or NULL */
    char *cause;           /* owned, or NULL */
    bool has_error;        /* error/cause members are present (even if NULL) */
    int64_t index;         /* Map iteration index, or Map length, or -1 */
};

#define HIST_CHUNKS 40 /* chunk k holds 16 << k events: far more than any history */

/* ---- resources ---- */

struct resource {
    char *pattern;                     /* exact ARN, or prefix when prefix is true */
    bool prefix;                       /* pattern ended in '*' */
    bool first;                        /* asked before the others (a wrapper: the mocks) */
    const struct sfn_resource_ops *ops;
    void *arg;
};

struct frame;


/* One attempt of a Task state. */
struct sfn_task {
    struct frame *frame;        /* NULL once the attempt is abandoned */
    const struct resource *res; /* handler */
    json_t *input;              /* effective input (owned) */
    char *token;                /* random, drawn at scheduling; saved in checkpoints */
    int attempt;                /* retry count of this visit */
    void *data;                 /* handler's */
    bool started;               /* handed to the handler (counted in inflight) */
    bool deferred;              /* waiting for the turn's commit before start is called */
    struct dlink deferred_link; /* on the engine's deferred starts while `deferred` */
    struct dlink job_link;      /* on the engine's job-run (.sync) attempts while `job` */
    bool job;
    json_t *state;              /* handler's resumable state (owned), persisted, or NULL */
    bool done;                  /* succeed/fail called */
    bool taken;                 /* started by its worker (activities: sfn_task_started;
                                   other families at scheduling) */
    bool in_start;              /* inside ops->start */
    int64_t timeout_s;          /* resolved TimeoutSeconds (0 = none declared) */
    int64_t heartbeat_s;        /* resolved HeartbeatSeconds (0 = none) */
    /* result recorded by succeed/fail, consumed by the frame from the run queue */
    json_t *output;             /* owned */
    struct err err;
};

enum frame_kind { FRAME_ROOT, FRAME_BRANCH, FRAME_ITERATION };

enum frame_phase {
    FR_READY,      /* in the run queue: run the current state */
    FR_WAIT,       /* Wait state timer armed */
    FR_BACKOFF,    /* Retry back-off timer armed */
    FR_TASK,       /* a task attempt is in flight */
    FR_TASK_DONE,  /* the task completed; the frame is queued to consume it */
    FR_CHILDREN,   /* Parallel/Map children running */
    FR_DONE,       /* finished (output or err set) */
};

struct frame {
    struct sfn_execution *ex;
    struct frame *parent;       /* NULL for the root frame */
    enum frame_kind kind;
    size_t index;               /* branch or item index in the parent */
    const struct asl_states *states;
    const struct asl_state *st; /* current state */
    json_t *input;              /* raw input of the current state (owned) */
    size_t input_size_max;      /* upper bound of input's compact size, bytes; 0 = unknown
                                   (exec.c: spares the 256 KiB payload walk) */
    json_t *sized;              /* exec.c: the value last returned by frame_effective_input or
                                   frame_finish_result (owned reference), or NULL */
    size_t sized_max;           /* upper bound of sized's compact size, bytes */
    enum frame_phase phase;
    bool entered;               /* StateEntered emitted for this visit */
    int64_t last_event;         /* previousEventId chain of this thread */
    int64_t entered_event;      /* id of the current state's Entered event */
    int64_t entered_ms;         /* when the current state was entered */
    int retry_total;            /* $$.State.RetryCount for this visit */
    int *retry_counts;          /* per retrier of the current state */
    size_t retry_cap;
    json_t *ctx;                /* cached context object for the current visit, or NULL */
    struct etimer timer;        /* Wait, back-off, or task timeout */
    struct etimer hb_timer;     /* task heartbeat */
    struct sfn_task *task;      /* in-flight attempt, or NULL */
    bool task_timed_out;        /* the attempt ended by TimeoutSeconds/HeartbeatSeconds */
    /* Parallel / Map children */
    struct frame **kids;        /* owned array of owned frames (NULL entries: not started) */
    size_t n_kids;
    size_t kids_started;
    size_t kids_running;
    size_t kids_done;
    size_t kids_failed;
    int64_t max_conc;           /* Map MaxConcurrency (0 = unlimited) */
    int64_t tolerated_count;    /* -1 = not set */
    double tolerated_pct;       /* -1 = not set */
    json_t *results;            /* array being filled (owned) */
    json_t *eff_input;          /* effective input of the Parallel/Map state (owned) */
    json_t *items;              /* Map items (owned) */
    int64_t started_event;      /* id of ParallelStateStarted/MapStateStarted */
    struct err child_err;       /* first failure of a child */
    /* finished frame */
    json_t *output;             /* owned */
    struct err err;
    bool failed;
    bool aborted;               /* ended by frame_abort (not by its own states) */
    json_t *redo;               /* snapshot.c: how to redrive this Parallel/Map frame, taken
                                   before its children are freed on failure or abort (owned),
                                   or NULL */
    /* run queue */
    struct dlink rq_link;       /* on the engine's run queue while `queued` */
    bool queued;
};

enum exec_status_internal { EX_RUNNING = SFN_RUNNING };

struct sfn_machine {
    struct sfn_engine *eng;
    struct asl_machine *m;
    char *name;
    char *arn;
    int refs;                   /* the caller's + one per execution */
    char *text;                 /* the definition exactly as given */
    size_t text_len;
    enum sfn_machine_type type;
    int64_t persist_id;         /* the store's revision id, 0 = not yet stored */
    json_t *ctx_machine;        /* {"Id":..., "Name":...} shared by contexts */
};

struct sfn_execution {
    struct sfn_engine *eng;
    struct sfn_machine *sm;
    struct dlink link;          /* on the engine's list of executions */
    char *name;
    char *arn;
    char *role_arn;
    json_t *input;
    int64_t start_ms;
    int64_t stop_ms;
    enum sfn_status status;
    json_t *output;
    struct err err;
    struct frame *root;
    struct etimer timeout;      /* machine TimeoutSeconds */
    /* history kept in memory: events ev_base+1 .. ev_base+n_ev, in chunks of 16, 32, 64...
     * events (hist_at), so that growing never copies or re-faults what is there */
    struct hevent **ev_chunk;   /* HIST_CHUNKS chunk pointers, allocated with the first event */
    size_t n_ev;
    size_t ev_base;             /* events already persisted and dropped from memory */
    size_t ev_delivered;        /* events passed to on_event (absolute count) */
    size_t ev_committed;        /* events the persistence layer has (absolute count) */
    bool dirty;                 /* changed in this loop turn (in the engine's dirty list) */
    struct sfn_execution *dirty_next;
    int64_t persist_id;         /* the store's id, 0 = not yet stored */
    json_t *ctx_execution;      /* $$.Execution, or NULL until first used (exec_context) */
    uint64_t task_seq;          /* for task tokens */
    sfn_done_fn on_done;
    sfn_event_fn on_event;
    void *arg;
    bool releasing;             /* sfn_execution_release: detach tasks, do not cancel */
    bool done_pending;          /* ended; on_done not yet called */
    json_t *redo;               /* FAILED/ABORTED/TIMED_OUT Standard execution: the frames to
                                   resume on a redrive (snapshot.c's frame format), or NULL */
    int64_t redrive_count;      /* RedriveExecution calls so far */
    int64_t redrive_ms;         /* epoch ms of the last redrive, 0 = never */
    struct sfn_execution *done_next; /* engine's list of pending on_done calls */
};

struct after_commit {
    void (*fn)(void *arg);
    void *arg;
    struct after_commit *next;
};

struct sfn_engine {
    uv_loop_t *loop;
    uv_timer_t timer;           /* real clock: armed for the earliest deadline */
    uv_idle_t idle;             /* drains the run queue; advances virtual time */
    uv_prepare_t prepare;       /* end of a loop turn: commit, then deliver the turn's effects */
    int closing;                /* handles still to close */
    const struct sfn_persist_ops *persist; /* NULL: nothing is persisted */
    void *persist_arg;
    bool persist_failed;        /* a commit failed: the engine has stopped */
    bool keep_history;          /* keep committed events in memory too */
    struct err persist_err;
    struct sfn_execution *dirty_head; /* executions changed in this turn */
    struct dlist deferred;      /* task starts held until the commit */
    struct dlist jobs;          /* job-run (.sync) attempts, found by token (SendTask*) */
    struct after_commit *ac_head, *ac_tail; /* sfn_engine_after_commit callbacks */
    struct sfn_execution **commit_buf; /* scratch array for the commit */
    size_t commit_cap;
    bool virtual_clock;
    int64_t vnow;               /* virtual clock, epoch ms */
    int64_t retry_wait_ms;      /* -1 or the override */
    uint64_t rng;               /* xorshift state */
    char *region;
    char *account;
    struct etimer **heap;       /* min-heap of armed timers */
    size_t n_heap;
    size_t cap_heap;
    struct dlist rq;            /* run queue of frames */
    size_t inflight;            /* task attempts in flight (virtual time waits for them) */
    struct resource **res;      /* registrations, each its own allocation: tasks point at them
                                   while more are registered */
    size_t n_res;
    struct dlist execs;         /* all executions, newest first */
    struct sfn_execution *done_head; /* executions whose on_done is pending */
    struct json_sizer sizer;    /* memo of large payload sizes (256 KiB checks) */
};

/* engine.c */
int64_t engine_now(struct sfn_engine *eng);
void engine_timer_arm(struct sfn_engine *eng, struct etimer *t, int64_t deadline);
void engine_timer_cancel(struct sfn_engine *eng, struct etimer *t);
void engine_enqueue(struct sfn_engine *eng, struct frame *f);
void engine_dequeue(struct sfn_engine *eng, struct frame *f);
void engine_wake(struct sfn_engine *eng);
uint64_t engine_rand(struct sfn_engine *eng);
uint64_t engine_rand_cb(void *arg);
const struct resource *engine_resource_find(struct sfn_engine *eng, const char *arn);
void engine_exec_done(struct sfn_execution *ex);
/* $$.Execution of the execution (borrowed), built on first use. */
json_t *exec_context(struct sfn_execution *ex);
/* Marks an execution as changed in this turn (history, frames, timers, tasks). */
void engine_dirty(struct sfn_execution *ex);
/* Holds a task start until the turn's commit (persistence on). */
void engine_defer_start(struct sfn_engine *eng, struct sfn_task *t);
void engine_undefer_start(struct sfn_engine *eng, struct sfn_task *t);
/* Calls ops->start (or resume) for an attempt and folds a synchronous outcome in. */
void task_hand_over(struct sfn_task *t, bool resume);
/* Allocates an execution record (no event, no frame) and links it into the engine.
 * `input` is borrowed (NULL = {}). */
struct sfn_execution *exec_alloc(struct sfn_engine *eng, struct sfn_machine *m, const char *name,
                                 const char *role_arn, json_t *input, int64_t start_ms,
                                 const struct sfn_execution_options *opt);

/* history.c */
struct hevent *hist_add(struct sfn_execution *ex, enum ev_type type, int64_t prev);
/* The i-th event kept in memory (0 = event ev_base + 1); i < n_ev. */
struct hevent *hist_at(const struct sfn_execution *ex, size_t i);
const char *hist_type_name(enum ev_type t);
json_t *hist_event_json(const struct sfn_execution *ex, const struct hevent *e, bool data);
/* The compact text of hist_event_json, written without building it. */
void hist_event_append(const struct hevent *e, bool data, struct buf *b);
void hist_release(struct sfn_execution *ex);

/* exec.c: frames */
void frame_run(struct frame *f);
struct frame *frame_new(struct sfn_execution *ex, struct frame *parent, enum frame_kind kind,
                        size_t index, const struct asl_states *states, json_t *input_new);
void frame_free(struct frame *f);
void frame_abort(struct frame *f, bool events);
int64_t frame_emit(struct frame *f, enum ev_type type);
struct hevent *frame_event(struct frame *f, enum ev_type type);
void frame_state_done(struct frame *f, json_t *output_new);
void frame_state_exit(struct frame *f, json_t *output_new, int next);
void frame_state_failed(struct frame *f, struct err *err, bool decorate);
void frame_children_succeeded(struct frame *f, enum ev_type ev, json_t *results_new);
json_t *frame_context(void *arg);
void frame_scope(struct frame *f, struct asl_scope *s, json_t *input);
int frame_finish_result(struct frame *f, json_t *raw, json_t *result_new, json_t **out,
                        struct err *err);
int frame_check_size(struct frame *f, json_t *v, struct err *err);
json_t *frame_effective_input(struct frame *f, struct err *err);

/* One file per state type (engine/state_*.c), each exporting one const struct. */
struct state_ops {
    /* Runs the state's work for the frame (after StateEntered; again on each retry).
     * Completes through frame_state_done / frame_state_failed, or arms a timer / starts
     * a task / starts children and returns. */
    void (*run)(struct frame *f);
    /* A timer of the frame fired (Wait, task timeout). */
    void (*on_timer)(struct frame *f);
    /* A child frame finished (Parallel, Map). */
    void (*on_child)(struct frame *f, struct frame *kid);
    /* The task attempt completed; f->task holds the outcome. */
    void (*on_task)(struct frame *f);
    /* The state is being abandoned mid-flight: release timers, tasks and children. */
    void (*abort)(struct frame *f, bool events);
};

extern const struct state_ops state_pass_ops, state_task_ops, state_choice_ops, state_wait_ops,
    state_succeed_ops, state_fail_ops, state_parallel_ops, state_map_ops;

/* snapshot.c: redrive */
/* Whether failures and aborts of `ex` keep what a redrive needs (Standard executions). */
bool exec_redrivable(const struct sfn_execution *ex);
/* The frame `f` as a redrive resumes it, in the checkpoint's frame format (new reference):
 * a succeeded frame keeps its output; a failed, aborted or still running one re-enters its
 * current state with that state's input; a Parallel/Map keeps its succeeded children and
 * redoes the others. Call before the frame's children are freed. */
json_t *frame_redo_json(const struct frame *f);

/* state_task.c */
void task_abandon(struct frame *f);
/* Whether a Task state uses the job-run pattern (a .sync resource): its attempts have a task
 * token in the context object too, which SendTask* calls may use (integrations.md 1.5). */
bool task_job_run(const struct asl_state *st);
/* Rebuilds the frame's task attempt from a snapshot and hands it back to its handler
 * (resume), or records it as failed when the handler cannot resume. 0, or -1 with err. */
int task_restore(struct frame *f, json_t *snap, struct err *err);

#endif
