/* tests/unit/test_engine.c - runs the execution cases of tests/engine through the public
 * embedding API (include/sfn.h; STYLE.md: tests are data). Each tests/engine/<case>/ holds
 *
 *   README           one line: the rule the case guards
 *   definition.json  the state machine
 *   input.json       the execution input (optional, default {})
 *   options.json     optional: {"virtual_clock": true, "name": "exec-name", "seed": 1,
 *                    "stop_after_ms": N, "stop_error": "...", "stop_cause": "...",
 *                    "stop_fails": true (sfn_execution_fail instead of _stop)}
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
 * attempt, unguessable (64 hex characters of random bits) and differ when the same
 * execution (same name) runs again; their stability across a restart is checked by
 * test_snapshot and the crash suite.
 *
 * With SFN_TEST_STORE=DIR every case runs again on a store (DIR/engine.db, durability off,
 * history also kept in memory): task starts wait for the commit of their turn, and the
 * store must then hold exactly the in-memory history (event by event, data included), the
 * status and the output.
 * Run from the repository root; the last line is "N passed, N failed". */
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
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
    RES_ACT_WORKER,
    RES_ACT_QUEUED,
    RES_ACT_DELETED,
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
    [RES_ACT_WORKER] = "act-worker", [RES_ACT_QUEUED] = "act-queued",
    [RES_ACT_DELETED] = "act-deleted",
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

/* activity:worker: a worker takes the attempt at once (sfn_task_started with input.worker,
 * which may be absent), then input.outcome: "fail" (input.error/cause), "hold" (never
 * answers), else the input as result. */
static int act_worker_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    started(arg, t);
    json_t *in = sfn_task_input(t);
    sfn_task_started(t, json_string_value(json_object_get(in, "worker")));
    sfn_task_started(t, "a-second-call-changes-nothing");
    const char *outcome = json_string_value(json_object_get(in, "outcome"));
    if (outcome != NULL && strcmp(outcome, "hold") == 0)
        return 0;
    if (outcome != NULL && strcmp(outcome, "fail") == 0)
        fail(arg, t, json_string_value(json_object_get(in, "error")),
             json_string_value(json_object_get(in, "cause")));
    else
        succeed(arg, t, in);
    return 0;
}

/* activity:deleted: the check refuses it as sfnd does for a deleted activity. */
static int act_deleted_check(struct sfn_task *t, void *arg, struct err *err)
{
    (void)arg;
    return err_set(err, "States.Runtime", "The activity %s does not exist.",
                   sfn_task_resource(t));
}

static void any_cancel(struct sfn_task *t, void *arg)
{
    struct binding *b = arg;
    b->h->calls[b->kind].cancelled++;
    struct pending *p = sfn_task_data(t);
    if (p != NULL)
        pending_end(p);
}

static const struct sfn_resource_ops ops_echo = {.start = echo_start, .cancel = any_cancel};
static const struct sfn_resource_ops ops_fail = {.start = fail_start, .cancel = any_cancel};
static const struct sfn_resource_ops ops_later = {.start = later_start, .cancel = any_cancel};
static const struct sfn_resource_ops ops_never = {.start = never_start, .cancel = any_cancel};
static const struct sfn_resource_ops ops_flaky = {.start = flaky_start, .cancel = any_cancel};
static const struct sfn_resource_ops ops_heartbeat = {.start = heartbeat_start,
                                                      .cancel = any_cancel};
static const struct sfn_resource_ops ops_token = {.start = token_start, .cancel = any_cancel};
static const struct sfn_resource_ops ops_act_worker = {.start = act_worker_start,
                                                       .cancel = any_cancel};
/* activity:queued: no worker ever takes it */
static const struct sfn_resource_ops ops_act_queued = {.start = never_start,
                                                       .cancel = any_cancel};
static const struct sfn_resource_ops ops_act_deleted = {
    .start = never_start, .cancel = any_cancel, .check = act_deleted_check};

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
    {"arn:aws:states:us-east-1:123456789012:activity:worker", RES_ACT_WORKER, &ops_act_worker},
    {"arn:aws:states:us-east-1:123456789012:activity:queued", RES_ACT_QUEUED, &ops_act_queued},
    {"arn:aws:states:us-east-1:123456789012:activity:deleted", RES_ACT_DELETED,
     &ops_act_deleted},
};

/* ---- one execution on its own loop ---- */

struct run_opts {
    bool virtual_clock;      /* default true */
    const char *name;        /* execution name, or NULL */
    uint64_t seed;           /* 0 = from the clock */
    int64_t stop_after_ms;   /* sfn_execution_stop after this much real time; -1 = never */
    const char *stop_error;  /* may be NULL */
    const char *stop_cause;  /* may be NULL */
    bool stop_fails;         /* sfn_execution_fail instead of sfn_execution_stop */
};

struct run {
    uv_loop_t loop;
    struct harness h;
    const struct run_opts *opt;
    struct sfn_engine *eng;
    struct sfn_machine *m;
    struct sfn_execution *ex;
    int64_t created_ms;      /* wall clock when the engine was created */
    uv_timer_t stop_timer;   /* options.stop_after_ms */
    uv_timer_t watchdog;     /* unreferenced: ends a hung case */
    bool done;               /* on_done was called */
    bool hung;               /* the watchdog fired */
    double real_ms;          /* real time the loop ran */
    struct sfn_store *store; /* SFN_TEST_STORE */
};

static const char *store_dir;
static int store_seq;

static void on_done(struct sfn_execution *ex, void *arg)
{
    struct run *r = arg;
    (void)ex;
    r->done = true;
    uv_timer_stop(&r->stop_timer);
    uv_timer_stop(&r->watchdog);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct run *r = container_of(t, struct run, stop_timer);
    if (r->opt->stop_fails)
        sfn_execution_fail(r->ex, r->opt->stop_error, r->opt->stop_cause);
    else
        sfn_execution_stop(r->ex, r->opt->stop_error, r->opt->stop_cause);
}

static void on_watchdog(uv_timer_t *t)
{
    struct run *r = container_of(t, struct run, watchdog);
    r->hung = true;
    uv_stop(&r->loop);
}

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Creates the loop and the engine and registers the test resources. */
static void run_init(struct run *r, const struct run_opts *opt)
{
    memset(r, 0, sizeof(*r));
    r->opt = opt;
    uv_loop_init(&r->loop);
    r->h.loop = &r->loop;
    uv_timer_init(&r->loop, &r->stop_timer);
    uv_timer_init(&r->loop, &r->watchdog);
    struct sfn_engine_options eo = {opt->virtual_clock, -1, opt->seed, NULL, NULL, 0};
    r->eng = sfn_engine_new(&r->loop, &eo);
    r->created_ms = wall_ms();
    if (store_dir != NULL) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/engine-%d.db", store_dir, store_seq++);
        remove(path);
        struct sfn_store_options so = {SFN_DURABILITY_OFF, 0, false, NULL, NULL};
        struct err err = ERR_INIT;
        r->store = sfn_store_open(path, &so, &err);
        if (r->store == NULL || sfn_store_attach(r->store, r->eng, &err) != 0) {
            fprintf(stderr, "cannot open a store in %s: %s\n", store_dir, err.cause);
            abort();
        }
        sfn_engine_keep_history(r->eng, true);
    }
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        struct binding *b = &r->h.bind[resources[i].kind];
        b->h = &r->h;
        b->kind = resources[i].kind;
        struct err err = ERR_INIT;
        int rc = sfn_engine_register_resource(r->eng, resources[i].arn, resources[i].ops, b,
                                              &err);
        if (rc != 0) {
            fprintf(stderr, "cannot register %s\n", resources[i].arn);
            abort();
        }
    }
}

/* Compiles `def`, starts it with `input` (borrowed) and runs the loop until nothing is left
 * to do. Returns -1 with err set when the machine or the execution cannot be created. */
static int run_exec(struct run *r, const char *def, json_t *input, struct err *err)
{
    r->m = sfn_machine_compile(r->eng, def, strlen(def), "Test", SFN_STANDARD, err);
    if (r->m == NULL)
        return -1;
    struct sfn_execution_options eo = {r->opt->name, NULL, on_done, NULL, r};
    r->ex = sfn_execution_start(r->eng, r->m, input, &eo, err);
    if (r->ex == NULL)
        return -1;
    uv_update_time(&r->loop); /* opening a store may have taken a while */
    if (r->opt->stop_after_ms >= 0)
        uv_timer_start(&r->stop_timer, on_stop_timer, (uint64_t)r->opt->stop_after_ms, 0);
    uv_timer_start(&r->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&r->watchdog);
    uint64_t t0 = uv_hrtime();
    uv_run(&r->loop, UV_RUN_DEFAULT);
    r->real_ms = (double)(uv_hrtime() - t0) / 1e6;
    return 0;
}

/* Frees everything as STYLE.md asks and checks that the loop closes and that no attempt was
 * left behind (every started attempt completed or was cancelled). */
static void run_end(struct tl *t, struct run *r, const char *where)
{
    sfn_execution_free(r->ex);
    sfn_machine_free(r->m);
    sfn_engine_free(r->eng);
    uv_close((uv_handle_t *)&r->stop_timer, NULL);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    sfn_store_close(r->store);
    r->store = NULL;
    int rc = uv_loop_close(&r->loop);
    tl_check(t, rc == 0, where, "uv_loop_close() = %d (%s): a handle was left open", rc,
             rc != 0 ? uv_err_name(rc) : "");
    for (int k = 0; k < RES_COUNT; k++) {
        const struct res_calls *c = &r->h.calls[k];
        int live = c->started - c->completed - c->cancelled;
        tl_check(t, live == 0, where,
                 "test:%s: %d attempt(s) neither completed nor cancelled (started %d, "
                 "completed %d, cancelled %d)",
                 res_short[k], live, c->started, c->completed, c->cancelled);
    }
    for (size_t i = 0; i < r->h.n_tokens; i++)
        free(r->h.tokens[i]);
    free(r->h.tokens);
    r->h.tokens = NULL;
    r->h.n_tokens = 0;
}

/* ---- files ---- */

/* Reads a whole file; NULL when it cannot be opened. free() the result. */
static char *read_text(const char *path)
{
    return tl_read_file(path, NULL);
}

/* Replaces each "${now+N}" by the ISO-8601 time base_ms + N. Returns a new string. */
static char *subst_now(const char *text, int64_t base_ms)
{
    static const char mark[] = "${now+";
    struct buf b = BUF_INIT;
    const char *p = text;
    for (;;) {
        const char *m = strstr(p, mark);
        if (m == NULL)
            break;
        buf_add(&b, p, (size_t)(m - p));
        char *end;
        long long n = strtoll(m + sizeof(mark) - 1, &end, 10);
        if (*end != '}') {
            buf_add(&b, m, sizeof(mark) - 1);
            p = m + sizeof(mark) - 1;
            continue;
        }
        char ts[40];
        asl_time_format_ms(base_ms + n, ts, sizeof(ts));
        buf_add(&b, ts, strlen(ts));
        p = end + 1;
    }
    buf_add(&b, p, strlen(p));
    char *s = xstrdup(buf_cstr(&b));
    buf_release(&b);
    return s;
}

/* Parses JSON text; NULL (and a message in `why`) when invalid. New reference. */
static json_t *parse(const char *text, char *why, size_t whylen)
{
    struct err err = ERR_INIT;
    json_t *v = json_parse(text, strlen(text), false, &err);
    if (v == NULL)
        snprintf(why, whylen, "%s", err.cause != NULL ? err.cause : "invalid JSON");
    err_clear(&err);
    return v;
}

/* ---- expectations ---- */

/* `want` (borrowed) matches `got` (borrowed): objects member by member, recursively (extra
 * members in `got` are fine; a null member in `want` means absent or null), anything else by
 * value. */
static bool partial_match(json_t *want, json_t *got)
{
    if (json_is_null(want))
        return got == NULL || json_is_null(got);
    if (got == NULL)
        return false;
    if (!json_is_object(want))
        return json_value_equal(want, got);
    if (!json_is_object(got))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        if (!partial_match(v, json_object_get(got, k)))
            return false;
    }
    return true;
}

static double event_ts_ms(struct sfn_execution *ex, size_t i)
{
    json_t *e = sfn_execution_event(ex, i, false);
    double ms = json_number(json_object_get(e, "timestamp")) * 1000.0;
    json_decref(e);
    return ms;
}

/* Checks that hold for every finished execution (api.md 7.2, 7.4 rule 1, asl.md 12): ids
 * 1..n, previousEventId before the event, timestamps non-decreasing, ExecutionStarted first
 * and an Execution* end event last. */
struct stored {
    struct sfn_execution *ex;
    json_t *events; /* what the store returned */
    char status[32];
    json_t *output;
};

static int stored_event(json_t *e, void *arg)
{
    json_array_append(((struct stored *)arg)->events, e);
    return 0;
}

static int stored_execution(const struct sfn_store_execution *e, void *arg)
{
    struct stored *s = arg;
    snprintf(s->status, sizeof(s->status), "%s", e->status);
    s->output = e->output != NULL ? json_loads(e->output, JSON_DECODE_ANY, NULL) : NULL;
    return 0;
}

/* SFN_TEST_STORE: the store holds what the engine has in memory. */
static void check_store(struct tl *t, struct run *r, const char *where)
{
    struct stored s = {r->ex, json_array(), "", NULL};
    struct err err = ERR_INIT;
    const char *arn = sfn_execution_arn(r->ex);
    int rc = sfn_store_get_execution(r->store, arn, stored_execution, &s, &err);
    tl_check(t, rc == 0, where, "store: the execution is not stored (%s)",
             err.cause != NULL ? err.cause : "not found");
    long n = sfn_store_history(r->store, arn, 0, false, 0, true, stored_event, &s, &err);
    size_t want = sfn_execution_history_size(r->ex);
    tl_check(t, n == (long)want, where, "store: %ld events stored, %zu in memory", n, want);
    for (size_t i = 0; i < want && i < json_array_size(s.events); i++) {
        json_t *mem = sfn_execution_event(r->ex, i, true);
        bool same = json_equal(mem, json_array_get(s.events, i));
        if (!same) {
            char *a = json_dumps(mem, JSON_COMPACT);
            char *b = json_dumps(json_array_get(s.events, i), JSON_COMPACT);
            tl_check(t, false, where, "store: event %zu differs:\n  memory %s\n  stored %s",
                     i + 1, a, b);
            free(a);
            free(b);
        }
        json_decref(mem);
        if (!same)
            break;
    }
    const char *status = sfn_status_name(sfn_execution_status(r->ex));
    tl_check(t, rc != 0 || strcmp(s.status, status) == 0, where,
             "store: status %s, in memory %s", s.status, status);
    json_t *out = sfn_execution_output(r->ex);
    tl_check(t, rc != 0 || (out == NULL && s.output == NULL) ||
                    (out != NULL && s.output != NULL && json_value_equal(out, s.output)),
             where, "store: the output differs from the one in memory");
    json_decref(s.output);
    json_decref(s.events);
    err_clear(&err);
}

static void check_invariants(struct tl *t, struct sfn_execution *ex, const char *where)
{
    size_t n = sfn_execution_history_size(ex);
    double last_ts = 0;
    bool ok = n >= 2;
    char why[256] = "fewer than two events";
    for (size_t i = 0; i < n && ok; i++) {
        json_t *e = sfn_execution_event(ex, i, false);
        json_int_t id = json_integer_value(json_object_get(e, "id"));
        json_int_t prev = json_integer_value(json_object_get(e, "previousEventId"));
        double ts = json_number(json_object_get(e, "timestamp"));
        const char *type = json_string_value(json_object_get(e, "type"));
        if (id != (json_int_t)i + 1) {
            ok = false;
            snprintf(why, sizeof(why), "event %zu has id %" JSON_INTEGER_FORMAT, i + 1, id);
        } else if (prev < 0 || prev >= id) {
            ok = false;
            snprintf(why, sizeof(why), "event %zu has previousEventId %" JSON_INTEGER_FORMAT,
                     i + 1, prev);
        } else if (ts < last_ts) {
            ok = false;
            snprintf(why, sizeof(why), "event %zu goes back in time", i + 1);
        } else if (i == 0 && (strcmp(type, "ExecutionStarted") != 0 || prev != 0)) {
            ok = false;
            snprintf(why, sizeof(why),
                     "first event is %s with previousEventId %" JSON_INTEGER_FORMAT, type, prev);
        } else if (i > 0 && i + 1 < n && strncmp(type, "Execution", 9) == 0) {
            ok = false;
            snprintf(why, sizeof(why), "%s in the middle (event %zu)", type, i + 1);
        } else if (i + 1 == n && strncmp(type, "Execution", 9) != 0) {
            ok = false;
            snprintf(why, sizeof(why), "last event is %s", type);
        }
        last_ts = ts;
        json_decref(e);
    }
    tl_check(t, ok, where, "history invariant: %s", why);
}

static char *event_types(struct sfn_execution *ex)
{
    json_t *a = json_array();
    for (size_t i = 0; i < sfn_execution_history_size(ex); i++)
        json_array_append_new(a, json_string(sfn_execution_event_type(ex, i)));
    char *s = json_compact(a);
    json_decref(a);
    return s;
}

static void check_events(struct tl *t, struct sfn_execution *ex, json_t *want, const char *where)
{
    size_t n = sfn_execution_history_size(ex);
    bool ok = json_array_size(want) == n;
    for (size_t i = 0; ok && i < n; i++) {
        const char *w = json_string_value(json_array_get(want, i));
        ok = w != NULL && strcmp(w, sfn_execution_event_type(ex, i)) == 0;
    }
    if (!ok) {
        char *w = json_compact(want);
        char *g = event_types(ex);
        tl_check(t, false, where, "events\n  expected: %s\n  got:      %s", w, g);
        free(w);
        free(g);
        return;
    }
    tl_check(t, true, where, "events");
}

static void check_event_counts(struct tl *t, struct sfn_execution *ex, json_t *want,
                               const char *where)
{
    const char *type;
    json_t *v;
    json_object_foreach(want, type, v)
    {
        json_int_t got = 0;
        for (size_t i = 0; i < sfn_execution_history_size(ex); i++)
            got += strcmp(sfn_execution_event_type(ex, i), type) == 0;
        tl_check(t, got == json_integer_value(v), where,
                 "%s events: expected %" JSON_INTEGER_FORMAT ", got %" JSON_INTEGER_FORMAT, type,
                 json_integer_value(v), got);
    }
}

/* Each entry of `want` is a partial event; with an "id" it is matched against that event,
 * otherwise against the first later event that matches (so entries stay in order). */
static void check_history(struct tl *t, struct sfn_execution *ex, json_t *want,
                          const char *where)
{
    size_t n = sfn_execution_history_size(ex);
    size_t pos = 0; /* next event to search from */
    size_t k;
    json_t *w;
    json_array_foreach(want, k, w)
    {
        json_t *id = json_object_get(w, "id");
        if (json_is_integer(id)) {
            json_int_t i = json_integer_value(id);
            json_t *e = i >= 1 && (size_t)i <= n ? sfn_execution_event(ex, (size_t)i - 1, true)
                                                 : NULL;
            bool ok = e != NULL && partial_match(w, e);
            if (!ok) {
                char *ws = json_compact(w);
                char *es = e != NULL ? json_compact(e) : xstrdup("(no such event)");
                tl_check(t, false, where, "history[%zu]\n  expected: %s\n  got:      %s", k, ws,
                         es);
                free(ws);
                free(es);
            } else {
                tl_check(t, true, where, "history");
            }
            json_decref(e);
            pos = (size_t)i;
            continue;
        }
        bool found = false;
        for (; pos < n && !found; pos++) {
            json_t *e = sfn_execution_event(ex, pos, true);
            found = partial_match(w, e);
            json_decref(e);
        }
        char *ws = json_compact(w);
        tl_check(t, found, where, "history[%zu]: no later event matches %s", k, ws);
        free(ws);
    }
}

static void check_calls(struct tl *t, const struct harness *h, json_t *want, const char *where)
{
    const char *name;
    json_t *v;
    json_object_foreach(want, name, v)
    {
        int k = 0;
        while (k < RES_COUNT && strcmp(res_short[k], name) != 0)
            k++;
        if (k == RES_COUNT) {
            tl_check(t, false, where, "resource_calls: no test resource '%s'", name);
            continue;
        }
        static const char *const fields[] = {"started", "completed", "cancelled"};
        const int got[] = {h->calls[k].started, h->calls[k].completed, h->calls[k].cancelled};
        if (store_dir != NULL) {
            /* on a store, starts wait for their turn's commit: an attempt abandoned in the
             * turn that scheduled it is never handed over, so it is neither started nor
             * cancelled; exactly as many of each are missing */
            json_int_t ws = json_integer_value(json_object_get(v, "started"));
            json_int_t wc = json_integer_value(json_object_get(v, "cancelled"));
            json_int_t missing = ws - got[0];
            tl_check(t, missing >= 0 && wc - got[2] == missing, where,
                     "test:%s: started %d (expected %" JSON_INTEGER_FORMAT "), cancelled %d "
                     "(expected %" JSON_INTEGER_FORMAT ")", name, got[0], ws, got[2], wc);
            json_t *n = json_object_get(v, "completed");
            tl_check(t, n == NULL || json_integer_value(n) == got[1], where,
                     "test:%s completed: expected %" JSON_INTEGER_FORMAT ", got %d", name,
                     json_integer_value(n), got[1]);
            continue;
        }
        for (int f = 0; f < 3; f++) {
            json_t *n = json_object_get(v, fields[f]);
            if (n == NULL)
                continue;
            tl_check(t, json_integer_value(n) == got[f], where,
                     "test:%s %s: expected %" JSON_INTEGER_FORMAT ", got %d", name, fields[f],
                     json_integer_value(n), got[f]);
        }
    }
}

/* elapsed_ms: a number (exact) or {"min": a, "max": b}; virtual ms from ExecutionStarted to
 * the last event. */
static void check_elapsed(struct tl *t, struct sfn_execution *ex, json_t *want,
                          const char *where)
{
    size_t n = sfn_execution_history_size(ex);
    long long got = n > 0 ? llround(event_ts_ms(ex, n - 1) - event_ts_ms(ex, 0)) : -1;
    long long lo;
    long long hi;
    if (json_is_number(want)) {
        lo = hi = (long long)json_number(want);
    } else {
        json_t *mn = json_object_get(want, "min");
        json_t *mx = json_object_get(want, "max");
        lo = mn != NULL ? (long long)json_number(mn) : 0;
        hi = mx != NULL ? (long long)json_number(mx) : LLONG_MAX;
    }
    tl_check(t, got >= lo && got <= hi, where, "elapsed %lld ms, expected [%lld, %lld]", got,
             lo, hi);
}

static void check_status(struct tl *t, struct sfn_execution *ex, json_t *expect,
                         const char *where)
{
    const char *status = sfn_status_name(sfn_execution_status(ex));
    const char *want = json_string_value(json_object_get(expect, "status"));
    const struct err *e = sfn_execution_error(ex);
    if (want != NULL)
        tl_check(t, strcmp(status, want) == 0, where, "status %s, expected %s (%s: %s)", status,
                 want, e->set ? e->name : "-", e->cause != NULL ? e->cause : "-");
    json_t *out = json_object_get(expect, "output");
    if (out != NULL) {
        json_t *got = sfn_execution_output(ex);
        bool ok = got != NULL && json_value_equal(out, got);
        char *ws = json_compact(out);
        char *gs = got != NULL ? json_compact(got) : xstrdup("(none)");
        tl_check(t, ok, where, "output\n  expected: %s\n  got:      %s", ws, gs);
        free(ws);
        free(gs);
    }
    json_t *error = json_object_get(expect, "error");
    if (error != NULL) {
        const char *w = json_string_value(error);
        const char *g = e->set && e->name[0] != '\0' ? e->name : NULL;
        bool ok = w == NULL ? g == NULL : g != NULL && strcmp(w, g) == 0;
        tl_check(t, ok, where, "error %s, expected %s", g != NULL ? g : "(none)",
                 w != NULL ? w : "(none)");
    }
    json_t *cause = json_object_get(expect, "cause");
    const char *gc = e->set ? e->cause : NULL;
    if (cause != NULL) {
        const char *w = json_string_value(cause);
        bool ok = w == NULL ? gc == NULL : gc != NULL && strcmp(w, gc) == 0;
        tl_check(t, ok, where, "cause\n  expected: %s\n  got:      %s", w != NULL ? w : "(none)",
                 gc != NULL ? gc : "(none)");
    }
    const char *contains = json_string_value(json_object_get(expect, "cause_contains"));
    if (contains != NULL)
        tl_check(t, gc != NULL && strstr(gc, contains) != NULL, where,
                 "cause %s does not contain %s", gc != NULL ? gc : "(none)", contains);
}

/* ---- one directory case ---- */

static void run_case(struct tl *t, const char *name)
{
    char where[512];
    char path[1024];
    char why[512] = "";
    snprintf(where, sizeof(where), "%s/%s", CASES_DIR, name);

    snprintf(path, sizeof(path), "%s/README", where);
    char *readme = read_text(path);
    tl_check(t, readme != NULL && readme[0] != '\0', where, "no README naming the rule");
    free(readme);

    snprintf(path, sizeof(path), "%s/expect.json", where);
    char *text = read_text(path);
    json_t *expect = text != NULL ? parse(text, why, sizeof(why)) : NULL;
    free(text);
    snprintf(path, sizeof(path), "%s/options.json", where);
    text = read_text(path);
    json_t *options = text != NULL ? parse(text, why, sizeof(why)) : json_object();
    free(text);
    snprintf(path, sizeof(path), "%s/definition.json", where);
    char *def_raw = read_text(path);
    if (expect == NULL || options == NULL || def_raw == NULL) {
        tl_check(t, false, where, "cannot read the case: %s", why[0] ? why : "missing file");
        json_decref(expect);
        json_decref(options);
        free(def_raw);
        return;
    }

    json_t *vc = json_object_get(options, "virtual_clock");
    json_t *stop = json_object_get(options, "stop_after_ms");
    struct run_opts opt = {
        .virtual_clock = vc == NULL || json_is_true(vc),
        .name = json_string_value(json_object_get(options, "name")),
        .seed = (uint64_t)json_integer_value(json_object_get(options, "seed")),
        .stop_after_ms = stop != NULL ? (int64_t)json_integer_value(stop) : -1,
        .stop_error = json_string_value(json_object_get(options, "stop_error")),
        .stop_cause = json_string_value(json_object_get(options, "stop_cause")),
        .stop_fails = json_is_true(json_object_get(options, "stop_fails")),
    };
    struct run r;
    run_init(&r, &opt);

    char *def = subst_now(def_raw, r.created_ms);
    free(def_raw);
    snprintf(path, sizeof(path), "%s/input.json", where);
    text = read_text(path);
    json_t *input = json_object();
    if (text != NULL) {
        char *in_text = subst_now(text, r.created_ms);
        json_decref(input);
        input = parse(in_text, why, sizeof(why));
        free(in_text);
        free(text);
    }

    struct err err = ERR_INIT;
    if (input == NULL) {
        tl_check(t, false, where, "input.json: %s", why);
    } else if (run_exec(&r, def, input, &err) != 0) {
        tl_check(t, false, where, "cannot run: %s: %s", err.name,
                 err.cause != NULL ? err.cause : "");
    } else {
        const char *want = json_string_value(json_object_get(expect, "status"));
        bool want_running = want != NULL && strcmp(want, "RUNNING") == 0;
        tl_check(t, !r.hung, where, "hung: still %s after %d ms",
                 sfn_status_name(sfn_execution_status(r.ex)), WATCHDOG_MS);
        tl_check(t, want_running || r.done, where, "on_done was not called");
        check_status(t, r.ex, expect, where);
        if (!want_running)
            check_invariants(t, r.ex, where);
        json_t *v = json_object_get(expect, "events");
        if (v != NULL)
            check_events(t, r.ex, v, where);
        v = json_object_get(expect, "event_counts");
        if (v != NULL)
            check_event_counts(t, r.ex, v, where);
        v = json_object_get(expect, "history");
        if (v != NULL)
            check_history(t, r.ex, v, where);
        v = json_object_get(expect, "resource_calls");
        if (v != NULL)
            check_calls(t, &r.h, v, where);
        v = json_object_get(expect, "elapsed_ms");
        if (v != NULL)
            check_elapsed(t, r.ex, v, where);
        if (r.store != NULL)
            check_store(t, &r, where);
        v = json_object_get(expect, "real_ms_max");
        double real_max = v != NULL ? json_number(v) : opt.virtual_clock ? REAL_MS_MAX_DEFAULT
                                                                         : 0;
        if (real_max > 0)
            tl_check(t, r.real_ms <= real_max, where, "took %.0f ms of real time (max %.0f)",
                     r.real_ms, real_max);
    }
    err_clear(&err);
    run_end(t, &r, where);
    json_decref(input);
    free(def);
    json_decref(expect);
    json_decref(options);
}

static void run_dir_cases(struct tl *t, int *count)
{
    struct dirent **names;
    int n = scandir(CASES_DIR, &names, NULL, alphasort);
    if (n < 0) {
        tl_check(t, false, CASES_DIR, "cannot read the directory (run from the repository root)");
        return;
    }
    for (int i = 0; i < n; i++) {
        char path[1024];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", CASES_DIR, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            run_case(t, names[i]->d_name);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
}

/* ---- task tokens (C: they are not predictable data) ---- */

/* A retried task (3 attempts), a Map of 3 token tasks and one more token task. */
static const char token_def[] =
    "{\"StartAt\":\"F\",\"States\":{"
    "\"F\":{\"Type\":\"Task\",\"Resource\":\"arn:aws:states:::test:flaky\","
    "\"Parameters\":{\"failures\":2},\"ResultPath\":null,\"Next\":\"M\","
    "\"Retry\":[{\"ErrorEquals\":[\"Custom.Transient\"],\"MaxAttempts\":3}]},"
    "\"M\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\",\"ResultPath\":\"$.tokens\","
    "\"Next\":\"T\",\"ItemProcessor\":{\"StartAt\":\"I\",\"States\":{\"I\":{\"Type\":\"Task\","
    "\"Resource\":\"arn:aws:states:::test:token\",\"End\":true}}}},"
    "\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:aws:states:::test:token\",\"End\":true}}}";

/* Runs token_def as execution `name`; returns its tokens in start order (caller frees). */
static char **token_run(struct tl *t, const char *name, size_t *n)
{
    struct run_opts opt = {true, name, 0, -1, NULL, NULL, false};
    struct run r;
    run_init(&r, &opt);
    json_t *input = json_pack("{s:[i,i,i]}", "items", 1, 2, 3);
    struct err err = ERR_INIT;
    int rc = run_exec(&r, token_def, input, &err);
    tl_check(t, rc == 0 && sfn_execution_status(r.ex) == SFN_SUCCEEDED, "tokens",
             "the token machine did not succeed: %s", rc != 0 ? err.name : "");
    if (rc == 0 && sfn_execution_status(r.ex) == SFN_SUCCEEDED) {
        json_t *out = sfn_execution_output(r.ex);
        json_t *last = json_object_get(out, "token");
        tl_check(t, json_is_string(last) && r.h.n_tokens == 7 &&
                        strcmp(json_string_value(last), r.h.tokens[6]) == 0,
                 "tokens", "the result's token is not the attempt's sfn_task_token");
        tl_check(t, json_integer_value(json_object_get(out, "attempt")) == 0, "tokens",
                 "a first attempt reports attempt %" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(out, "attempt")));
    }
    err_clear(&err);
    json_decref(input);
    char **tokens = r.h.tokens;
    *n = r.h.n_tokens;
    r.h.tokens = NULL;
    r.h.n_tokens = 0;
    run_end(t, &r, "tokens");
    return tokens;
}

static void tokens_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void check_tokens(struct tl *t)
{
    size_t na;
    size_t nb;
    size_t nc;
    char **a = token_run(t, "same-name", &na);
    char **b = token_run(t, "same-name", &nb);
    char **c = token_run(t, "other-name", &nc);
    tl_check(t, na == 7, "tokens", "expected 7 attempts, got %zu", na);
    /* unique per attempt: the three attempts of F, the three iterations, T */
    bool unique = true;
    for (size_t i = 0; i < na; i++)
        for (size_t j = i + 1; j < na; j++)
            unique = unique && strcmp(a[i], a[j]) != 0;
    tl_check(t, unique, "tokens", "two attempts of one execution share a token");
    /* api.md 8.3: unguessable, so nothing derived from the execution: the same execution
     * (same name) run again gets other tokens */
    bool differ = na == nb;
    for (size_t i = 0; differ && i < na; i++)
        for (size_t j = 0; j < nb; j++)
            differ = differ && strcmp(a[i], b[j]) != 0;
    tl_check(t, differ, "tokens", "running the same execution again repeated a token");
    bool shaped = true;
    for (size_t i = 0; i < na; i++)
        shaped = shaped && strlen(a[i]) == 64 && strspn(a[i], "0123456789abcdef") == 64;
    tl_check(t, shaped, "tokens", "a token is not 64 hex characters: %s", na > 0 ? a[0] : "");
    /* another execution gets other tokens */
    bool other = true;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nc; j++)
            other = other && strcmp(a[i], c[j]) != 0;
    tl_check(t, other, "tokens", "two executions share a token");
    tokens_free(a, na);
    tokens_free(b, nb);
    tokens_free(c, nc);
}

int main(void)
{
    struct tl t = {0, 0};
    store_dir = getenv("SFN_TEST_STORE");
    if (store_dir != NULL && store_dir[0] == '\0')
        store_dir = NULL;
    int count = 0;
    run_dir_cases(&t, &count);
    printf("%d engine cases\n", count);
    check_tokens(&t);
    return tl_finish(&t);
}
