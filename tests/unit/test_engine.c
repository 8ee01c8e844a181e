/* tests/unit/test_engine.c - runs the execution cases of tests/engine through the public
 * embedding API (include/sfn.h; STYLE.md: tests are data). Each tests/engine/<case>/ holds
 *
 *   README           one line: the rule the case guards
 *   definition.json  the state machine
 *   input.json       the execution input (optional, default {})
 *   options.json     optional: {"virtual_clock": true, "name": "exec-name", "seed": 1,
 *                    "stop_after_ms": N, "stop_error": "...", "stop_cause": "..."}
 *   expect.json      {"status", "output" | "error"/"cause"/"cause_contains", "events",
 *                    "event_counts", "history", "resource_calls", "elapsed_ms", "real_ms_max"}
 *
 * Every case runs on its own uv_loop_t with a fresh engine (virtual clock unless options say
 * otherwise) and ends with sfn_execution_free, sfn_machine_free, sfn_engine_free, a last run
 * of the loop and uv_loop_close() == 0. The text "${now+N}" in definition.json or input.json
 * becomes the ISO-8601 time N ms after the engine was created (for Wait Timestamp cases).
 *
 * The Task resources the cases use are registered here (see `resources` below). After the
 * directory cases, C checks cover what data cannot express: task tokens are unique per
 * attempt and identical when the same execution (same name) runs again.
 * Run from the repository root; the last line is "N passed, N failed". */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "asl/asl.h"
#include "sfn.h"
#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

#define CASES_DIR "tests/engine"
#define WATCHDOG_MS 5000       /* a case that has not ended by then has hung */
#define REAL_MS_MAX_DEFAULT 1000 /* virtual-clock cases must not take real time */

/* ---- test resources ---- */

enum res_kind {
    RES_ECHO,
    RES_FAIL,
    RES_LATER,
    RES_NEVER,
    RES_FLAKY,
    RES_HEARTBEAT,
    RES_TOKEN,
    RES_WAIT_TOKEN,
    RES_COUNT
};

struct res_calls {
    int started;   /* start called */
    int completed; /* sfn_task_succeed/sfn_task_fail called */
    int cancelled; /* cancel called */
};

struct harness;

/* The `arg` of one registered resource. */
struct binding {
    struct harness *h;
    enum res_kind kind;
};

struct harness {
    uv_loop_t *loop;
    struct binding bind[RES_COUNT];
    struct res_calls calls[RES_COUNT];
    char **tokens;   /* every sfn_task_token seen by a start, in order (owned) */
    size_t n_tokens;
};

/* An attempt completing later in real time (test:later, test:heartbeat). */
struct pending {
    uv_timer_t timer;
    struct sfn_task *t;   /* NULL once completed or cancelled */
    struct binding *b;
    int64_t heartbeats;   /* heartbeats still to send */
};

static const char *const res_short[RES_COUNT] = {
    [RES_ECHO] = "echo",           [RES_FAIL] = "fail",   [RES_LATER] = "later",
    [RES_NEVER] = "never",         [RES_FLAKY] = "flaky", [RES_HEARTBEAT] = "heartbeat",
    [RES_TOKEN] = "token",         [RES_WAIT_TOKEN] = "echo.waitForTaskToken",
};

/* An integer member of the task input, or `dflt`. */
static int64_t input_int(struct sfn_task *t, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(sfn_task_input(t), key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static void started(struct binding *b, struct sfn_task *t)
{
    struct harness *h = b->h;
    h->calls[b->kind].started++;
    h->tokens = xrealloc(h->tokens, (h->n_tokens + 1) * sizeof(*h->tokens));
    h->tokens[h->n_tokens++] = xstrdup(sfn_task_token(t));
}

static void succeed(struct binding *b, struct sfn_task *t, json_t *output)
{
    b->h->calls[b->kind].completed++;
    sfn_task_succeed(t, output);
}

static void fail(struct binding *b, struct sfn_task *t, const char *error, const char *cause)
{
    b->h->calls[b->kind].completed++;
    sfn_task_fail(t, error, cause);
}

/* test:echo (and test:echo.waitForTaskToken): the result is the input. */
static int echo_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    started(arg, t);
    succeed(arg, t, sfn_task_input(t));
    return 0;
}

/* test:fail: fails with the input's "error" and "cause" (either may be absent). */
static int fail_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    started(arg, t);
    json_t *in = sfn_task_input(t);
    fail(arg, t, json_string_value(json_object_get(in, "error")),
         json_string_value(json_object_get(in, "cause")));
    return 0;
}

/* test:never: never answers; only cancel ends it. */
static int never_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    started(arg, t);
    return 0;
}

/* test:flaky: fails with Custom.Transient for the first input.failures attempts of a visit. */
static int flaky_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    started(arg, t);
    int64_t failures = input_int(t, "failures", 1);
    if (sfn_task_attempt(t) < failures) {
        char cause[64];
        snprintf(cause, sizeof(cause), "attempt %d failed", sfn_task_attempt(t));
        fail(arg, t, "Custom.Transient", cause);
    } else {
        succeed(arg, t, sfn_task_input(t));
    }
    return 0;
}

/* test:token: {"token": the attempt's token, "attempt": its number}. */
static int token_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    started(arg, t);
    json_t *out = json_pack("{s:s,s:i}", "token", sfn_task_token(t), "attempt",
                            sfn_task_attempt(t));
    succeed(arg, t, out);
    json_decref(out);
    return 0;
}

static void on_pending_close(uv_handle_t *h)
{
    free(container_of((uv_timer_t *)h, struct pending, timer));
}

static void pending_end(struct pending *p)
{
    p->t = NULL;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_pending_close);
}

static struct pending *pending_new(struct sfn_task *t, struct binding *b)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    uv_timer_init(b->h->loop, &p->timer);
    p->t = t;
    p->b = b;
    sfn_task_set_data(t, p);
    return p;
}

static void on_later(uv_timer_t *timer)
{
    struct pending *p = container_of(timer, struct pending, timer);
    struct sfn_task *t = p->t;
    struct binding *b = p->b;
    pending_end(p);
    succeed(b, t, sfn_task_input(t));
}

/* test:later: completes with its input after input.delay_ms of real time. */
static int later_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    started(arg, t);
    struct pending *p = pending_new(t, arg);
    uv_timer_start(&p->timer, on_later, (uint64_t)input_int(t, "delay_ms", 0), 0);
    return 0;
}

static void on_heartbeat(uv_timer_t *timer)
{
    struct pending *p = container_of(timer, struct pending, timer);
    if (p->heartbeats > 0) {
        p->heartbeats--;
        sfn_task_heartbeat(p->t);
        return;
    }
    struct sfn_task *t = p->t;
    struct binding *b = p->b;
    pending_end(p);
    succeed(b, t, sfn_task_input(t));
}

/* test:heartbeat: a heartbeat every input.every_ms real ms, input.count times, then the
 * input as result one period after the last heartbeat. */
static int heartbeat_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    started(arg, t);
    struct pending *p = pending_new(t, arg);
    p->heartbeats = input_int(t, "count", 1);
    uint64_t every = (uint64_t)input_int(t, "every_ms", 1);
    uv_timer_start(&p->timer, on_heartbeat, every, every);
    return 0;
}

static void any_cancel(struct sfn_task *t, void *arg)
{
    struct binding *b = arg;
    b->h->calls[b->kind].cancelled++;
    struct pending *p = sfn_task_data(t);
    if (p != NULL)
        pending_end(p);
}

static const struct sfn_resource_ops ops_echo = {echo_start, any_cancel, NULL};
static const struct sfn_resource_ops ops_fail = {fail_start, any_cancel, NULL};
static const struct sfn_resource_ops ops_later = {later_start, any_cancel, NULL};
static const struct sfn_resource_ops ops_never = {never_start, any_cancel, NULL};
static const struct sfn_resource_ops ops_flaky = {flaky_start, any_cancel, NULL};
static const struct sfn_resource_ops ops_heartbeat = {heartbeat_start, any_cancel, NULL};
static const struct sfn_resource_ops ops_token = {token_start, any_cancel, NULL};

static const struct {
    const char *arn;
    enum res_kind kind;
    const struct sfn_resource_ops *ops;
} resources[] = {
    {"arn:aws:states:::test:echo", RES_ECHO, &ops_echo},
    {"arn:aws:states:::test:fail", RES_FAIL, &ops_fail},
    {"arn:aws:states:::test:later", RES_LATER, &ops_later},
    {"arn:aws:states:::test:never", RES_NEVER, &ops_never},
    {"arn:aws:states:::test:flaky", RES_FLAKY, &ops_flaky},
    {"arn:aws:states:::test:heartbeat", RES_HEARTBEAT, &ops_heartbeat},
    {"arn:aws:states:::test:token", RES_TOKEN, &ops_token},
    {"arn:aws:states:::test:echo.waitForTaskToken", RES_WAIT_TOKEN, &ops_echo},
};
