/* asl/machine.h - a compiled state machine: states in arrays with resolved transitions,
 * every path, template, intrinsic and choice rule compiled once. Immutable after
 * asl_machine_compile(); the engine evaluates it many times. */
#ifndef SFN_ASL_MACHINE_H
#define SFN_ASL_MACHINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "asl/asl.h"

enum asl_state_type {
    ASL_PASS,
    ASL_TASK,
    ASL_CHOICE,
    ASL_WAIT,
    ASL_SUCCEED,
    ASL_FAIL,
    ASL_PARALLEL,
    ASL_MAP,
};

#define ASL_NO_STATE (-1) /* a transition index meaning "none" (End, no Default) */

/* "Pass", "Task", ... */
const char *asl_state_type_name(enum asl_state_type t);

/* An ErrorEquals list. */
struct asl_errmatch {
    char **names; /* owned */
    size_t n;     /* number of names */
    bool all;     /* the list is ["States.ALL"] */
};

/* True when `name` (may be "" for a nameless error) matches `m` as AWS does: States.ALL
 * matches everything except States.Runtime and States.DataLimitExceeded, which match
 * nothing (asl.md 9.4). */
bool asl_errmatch_test(const struct asl_errmatch *m, const char *name);

struct asl_retrier {
    struct asl_errmatch on;
    int64_t interval_s;   /* IntervalSeconds, default 1 */
    int64_t max_attempts; /* MaxAttempts, default 3 */
    double backoff;       /* BackoffRate, default 2.0 */
    int64_t max_delay_s;  /* MaxDelaySeconds, 0 = none */
    bool jitter_full;     /* JitterStrategy FULL */
};

struct asl_catcher {
    struct asl_errmatch on;
    int next;                     /* state index */
    struct asl_path *result_path; /* NULL: default "$" (or null, see below) */
    bool result_path_null;        /* "ResultPath": null (output = raw input) */
};

struct asl_choice {
    struct asl_rule *rule;
    int next;
};

/* An optional path field: absent (default "$"), null, or a path. */
struct asl_opath {
    struct asl_path *path; /* NULL when absent or null */
    bool is_null;          /* the field is JSON null */
};

/* A string field that may come from a reference path or an intrinsic (Fail ErrorPath). */
struct asl_strsrc {
    char *literal;              /* Error / Cause, or NULL */
    struct asl_path *path;      /* ErrorPath as a path, or NULL */
    struct asl_intrinsic *call; /* ErrorPath as an intrinsic call, or NULL */
    const char *field;          /* "ErrorPath" / "CausePath", for messages */
};

struct asl_states;

struct asl_state {
    char *name;               /* the key in States */
    enum asl_state_type type;
    int index;                /* position in its asl_states */
    int next;                 /* Next, or ASL_NO_STATE for End and terminal states */
    const struct asl_states *owner; /* the States object holding this state */

    struct asl_opath input_path;
    struct asl_opath output_path;
    struct asl_opath result_path;
    struct asl_tmpl *parameters;      /* Parameters (Pass/Task/Parallel); NULL if absent */
    struct asl_tmpl *result_selector; /* ResultSelector; NULL if absent */
    json_t *result;                   /* Pass Result (owned reference) or NULL */
    size_t result_size;               /* compact bytes of result (0 when NULL) */

    struct asl_retrier *retry; /* owned array */
    size_t n_retry;
    struct asl_catcher *catch; /* owned array */
    size_t n_catch;

    /* Task */
    char *resource;
    int64_t timeout_s;   /* TimeoutSeconds, 0 = AWS default (99,999,999) */
    struct asl_path *timeout_path;
    int64_t heartbeat_s; /* HeartbeatSeconds, 0 = none */
    struct asl_path *heartbeat_path;
    struct asl_tmpl *credentials;
    bool has_timeout;    /* TimeoutSeconds or TimeoutSecondsPath declared */
    bool has_heartbeat;  /* HeartbeatSeconds or HeartbeatSecondsPath declared */

    /* Choice */
    struct asl_choice *choices; /* owned array */
    size_t n_choices;
    int default_next; /* Default, or ASL_NO_STATE */

    /* Wait: exactly one of these is set */
    int64_t seconds;                 /* Seconds, or -1 */
    char *timestamp;                 /* Timestamp literal, or NULL */
    struct asl_path *seconds_path;   /* SecondsPath, or NULL */
    struct asl_path *timestamp_path; /* TimestampPath, or NULL */

    /* Fail */
    struct asl_strsrc error;
    struct asl_strsrc cause;

    /* Parallel */
    struct asl_states *branches; /* owned array */
    size_t n_branches;

    /* Map */
    struct asl_states *processor; /* ItemProcessor / Iterator (owned, one) */
    struct asl_path *items_path;  /* NULL: "$" */
    struct asl_tmpl *item_selector; /* ItemSelector or Map Parameters */
    int64_t max_concurrency;      /* 0 = unlimited */
    struct asl_path *max_concurrency_path;
    double tolerated_pct;         /* -1 when not set */
    struct asl_path *tolerated_pct_path;
    int64_t tolerated_count;      /* -1 when not set */
    struct asl_path *tolerated_count_path;
};

/* A States object with its StartAt: the machine itself, a branch or an item processor. */
struct asl_states {
    struct asl_state *v; /* owned array */
    size_t n;
    int start;           /* StartAt index */
    const struct asl_state *parent; /* the Parallel/Map state owning it; NULL at top */
    json_t *index;       /* state name -> index (owned), for lookups by name */
};

struct asl_machine {
    struct asl_states top;
    int64_t timeout_s;        /* TimeoutSeconds, 0 = none */
    enum asl_machine_type type;
    size_t n_states;          /* all states, nested ones included */
    json_t *definition;       /* the parsed definition (owned) */
};

/* Validates then compiles definition text. Returns the machine, or NULL with every
 * diagnostic appended to `d`. */
struct asl_machine *asl_machine_compile(const char *text, size_t len, enum asl_machine_type type,
                                        struct asl_diags *d);
void asl_machine_free(struct asl_machine *m);

#endif
