/* engine/exec.c - frames: the threads of control of an execution (the execution itself, a
 * Parallel branch, a Map iteration). A frame runs states one after another from the run
 * queue until it blocks (timer, task, children) or ends; this file holds what every state
 * type shares: entering and exiting, the JSONPath data flow (InputPath, Parameters,
 * ResultSelector, ResultPath, OutputPath), Retry and Catch, the context object, aborts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

#define FRAME_RUN_BUDGET 1024 /* transitions per turn of one frame, so others progress */

static const struct state_ops *const ops_table[] = {
    [ASL_PASS] = &state_pass_ops,         [ASL_TASK] = &state_task_ops,
    [ASL_CHOICE] = &state_choice_ops,     [ASL_WAIT] = &state_wait_ops,
    [ASL_SUCCEED] = &state_succeed_ops,   [ASL_FAIL] = &state_fail_ops,
    [ASL_PARALLEL] = &state_parallel_ops, [ASL_MAP] = &state_map_ops,
};

static const enum ev_type entered_ev[] = {
    [ASL_PASS] = EV_PassStateEntered,         [ASL_TASK] = EV_TaskStateEntered,
    [ASL_CHOICE] = EV_ChoiceStateEntered,     [ASL_WAIT] = EV_WaitStateEntered,
    [ASL_SUCCEED] = EV_SucceedStateEntered,   [ASL_FAIL] = EV_FailStateEntered,
    [ASL_PARALLEL] = EV_ParallelStateEntered, [ASL_MAP] = EV_MapStateEntered,
};

static const enum ev_type exited_ev[] = {
    [ASL_PASS] = EV_PassStateExited,         [ASL_TASK] = EV_TaskStateExited,
    [ASL_CHOICE] = EV_ChoiceStateExited,     [ASL_WAIT] = EV_WaitStateExited,
    [ASL_SUCCEED] = EV_SucceedStateExited,   [ASL_FAIL] = EV_COUNT,
    [ASL_PARALLEL] = EV_ParallelStateExited, [ASL_MAP] = EV_MapStateExited,
};

static void on_frame_timer(struct etimer *t);
static void on_frame_heartbeat(struct etimer *t);
static void frame_enqueue_done(struct frame *f);

struct frame *frame_new(struct sfn_execution *ex, struct frame *parent, enum frame_kind kind,
                        size_t index, const struct asl_states *states, json_t *input_new)
{
    struct frame *f = xcalloc(1, sizeof(*f));
    f->ex = ex;
    f->parent = parent;
    f->kind = kind;
    f->index = index;
    f->states = states;
    f->st = &states->v[states->start];
    f->input = input_new;
    f->phase = FR_READY;
    f->timer.slot = SIZE_MAX;
    f->timer.fire = on_frame_timer;
    f->hb_timer.slot = SIZE_MAX;
    f->hb_timer.fire = on_frame_heartbeat;
    f->tolerated_count = -1;
    f->tolerated_pct = -1;
    return f;
}

static void frame_kids_free(struct frame *f)
{
    for (size_t i = 0; i < f->n_kids; i++) {
        if (f->kids[i] != NULL)
            frame_free(f->kids[i]);
    }
    free(f->kids);
    f->kids = NULL;
    f->n_kids = 0;
    f->kids_started = 0;
    f->kids_running = 0;
    f->kids_done = 0;
    f->kids_failed = 0;
}

/* Releases what the current state visit holds (not the frame's input). */
static void frame_visit_release(struct frame *f)
{
    struct sfn_engine *eng = f->ex->eng;
    engine_timer_cancel(eng, &f->timer);
    engine_timer_cancel(eng, &f->hb_timer);
    if (f->task != NULL)
        task_abandon(f);
    frame_kids_free(f);
    json_decref(f->results);
    f->results = NULL;
    json_decref(f->eff_input);
    f->eff_input = NULL;
    json_decref(f->items);
    f->items = NULL;
    json_decref(f->ctx);
    f->ctx = NULL;
    json_decref(f->sized);
    f->sized = NULL;
    err_clear(&f->child_err);
    f->started_event = 0;
}

void frame_free(struct frame *f)
{
    if (f == NULL)
        return;
    engine_dequeue(f->ex->eng, f);
    frame_visit_release(f);
    json_decref(f->input);
    json_decref(f->output);
    json_decref(f->redo);
    err_clear(&f->err);
    free(f->retry_counts);
    free(f);
}

struct hevent *frame_event(struct frame *f, enum ev_type type)
{
    struct hevent *e = hist_add(f->ex, type, f->last_event);
    f->last_event = e->id;
    return e;
}

int64_t frame_emit(struct frame *f, enum ev_type type)
{
    return frame_event(f, type)->id;
}

/* ---- context object (asl.md 4.5) ---- */

json_t *frame_context(void *arg)
{
    struct frame *f = arg;
    if (f->ctx != NULL)
        return f->ctx;
    char ts[40];
    asl_time_format_ms(f->entered_ms, ts, sizeof(ts));
    json_t *state = json_object();
    json_object_set_new(state, "EnteredTime", json_string(ts));
    json_object_set_new(state, "Name", json_string(f->st->name));
    if (f->st->type == ASL_TASK || f->st->type == ASL_PARALLEL || f->st->type == ASL_MAP)
        json_object_set_new(state, "RetryCount", json_integer(f->retry_total));
    json_t *c = json_object();
    json_object_set(c, "Execution", exec_context(f->ex));
    json_object_set_new(c, "State", state);
    json_object_set(c, "StateMachine", f->ex->sm->ctx_machine);
    if (f->task != NULL && f->st->type == ASL_TASK &&
        (strstr(f->st->resource, ".waitForTaskToken") != NULL || task_job_run(f->st)))
        json_object_set_new(c, "Task", json_pack("{s:s}", "Token", f->task->token));
    f->ctx = c;
    return c;
}

void frame_scope(struct frame *f, struct asl_scope *s, json_t *input)
{
    s->input = input;
    s->context = frame_context;
    s->context_arg = f;
    s->rand64 = engine_rand_cb;
    s->rand_arg = f->ex->eng;
}

/* ---- data flow ---- */

static int frame_size_error(struct frame *f, struct err *err)
{
    return err_set(err, ASL_ERR_DATA_LIMIT,
                   "The state/task '%s' returned a result with a size exceeding the maximum "
                   "number of bytes service limit.",
                   f->st->name);
}

int frame_check_size(struct frame *f, json_t *v, struct err *err)
{
    if (json_sizer_size(&f->ex->eng->sizer, v, ASL_PAYLOAD_MAX) <= ASL_PAYLOAD_MAX)
        return 0;
    return frame_size_error(f, err);
}

/* Upper bounds of payload sizes (bytes of compact JSON) travel with the values through the
 * data flow below, SIZE_MAX meaning unknown: when the bound of a state's output is within
 * 256 KiB, frame_state_exit has nothing to measure. The bound of the value last returned by
 * frame_effective_input or frame_finish_result is kept with a reference to it (f->sized),
 * so the next step knows it when handed that value. */
static size_t frame_input_max(const struct frame *f)
{
    return f->input_size_max != 0 ? f->input_size_max : SIZE_MAX;
}

static void frame_sized_set(struct frame *f, json_t *v, size_t max)
{
    json_decref(f->sized);
    f->sized = max != SIZE_MAX ? json_incref(v) : NULL;
    f->sized_max = max;
}

/* The bound of v (borrowed), known if v is what frame_sized_set last recorded; forgets it. */
static size_t frame_sized_take(struct frame *f, const json_t *v)
{
    size_t max = f->sized != NULL && f->sized == v ? f->sized_max : SIZE_MAX;
    json_decref(f->sized);
    f->sized = NULL;
    return max;
}

/* frame_effective_input, also setting *size_max to a bound of the result's size. */
static json_t *effective_input(struct frame *f, size_t *size_max, struct err *err)
{
    const struct asl_state *st = f->st;
    json_t *eff;
    size_t max = frame_input_max(f);
    if (st->input_path.is_null) {
        eff = json_object();
        max = 2;
    } else if (st->input_path.path != NULL) {
        struct asl_scope s;
        frame_scope(f, &s, f->input);
        eff = asl_path_eval(st->input_path.path, &s, err);
        if (eff == NULL)
            return NULL;
        max = asl_path_value_size_max(st->input_path.path, eff, max);
    } else {
        eff = json_incref(f->input);
    }
    if (st->parameters != NULL) {
        struct asl_scope s;
        frame_scope(f, &s, eff);
        json_t *p = asl_tmpl_eval_sized(st->parameters, &s, max, &max, err);
        json_decref(eff);
        eff = p;
    }
    *size_max = max;
    return eff;
}

/* InputPath, then Parameters for the states that have them. New reference or NULL. */
json_t *frame_effective_input(struct frame *f, struct err *err)
{
    size_t max;
    json_t *eff = effective_input(f, &max, err);
    if (eff != NULL)
        frame_sized_set(f, eff, max);
    return eff;
}

/* ResultSelector (when `select`), ResultPath and OutputPath applied to `result_new` (stolen,
 * of size at most `result_max`) with `raw` (borrowed) the state's raw input, of size at most
 * `raw_max`. 0 with *out and *out_max set, or -1 with err set. */
static int apply_result(struct frame *f, json_t *raw, size_t raw_max, json_t *result_new,
                        size_t result_max, bool select, json_t **out, size_t *out_max,
                        struct err *err)
{
    const struct asl_state *st = f->st;
    json_t *r = result_new;
    size_t max = result_max;
    if (select && st->result_selector != NULL) {
        struct asl_scope s;
        frame_scope(f, &s, r);
        json_t *sel = asl_tmpl_eval_sized(st->result_selector, &s, max, &max, err);
        json_decref(r);
        if (sel == NULL)
            return -1;
        r = sel;
    }
    json_t *merged;
    if (st->result_path.is_null) {
        merged = json_incref(raw);
        json_decref(r);
        max = raw_max;
    } else if (st->result_path.path != NULL) {
        merged = asl_path_assign(st->result_path.path, raw, r, err);
        json_decref(r);
        if (merged == NULL)
            return -1;
        max = json_size_add(json_size_add(raw_max, max),
                            asl_path_assign_growth(st->result_path.path));
    } else {
        merged = r;
    }
    if (st->output_path.is_null) {
        json_decref(merged);
        *out = json_object();
        *out_max = 2;
        return 0;
    }
    if (st->output_path.path != NULL) {
        struct asl_scope s;
        frame_scope(f, &s, merged);
        json_t *o = asl_path_eval(st->output_path.path, &s, err);
        json_decref(merged);
        if (o == NULL)
            return -1;
        merged = o;
        max = asl_path_value_size_max(st->output_path.path, o, max);
    }
    *out = merged;
    *out_max = max;
    return 0;
}

int frame_finish_result(struct frame *f, json_t *raw, json_t *result_new, json_t **out,
                        struct err *err)
{
    size_t result_max = frame_sized_take(f, result_new);
    if (result_new == f->st->result && result_new != NULL)
        result_max = f->st->result_size;
    size_t raw_max = raw == f->input ? frame_input_max(f) : SIZE_MAX;
    size_t max;
    if (apply_result(f, raw, raw_max, result_new, result_max, true, out, &max, err) != 0)
        return -1;
    frame_sized_set(f, *out, max);
    return 0;
}

/* Parallel/Map: every child is done. Records `ev` (ParallelStateSucceeded/MapStateSucceeded)
 * and completes the state with `results_new` (stolen) through ResultSelector, ResultPath and
 * OutputPath; the frame is queued to go on. */
void frame_children_succeeded(struct frame *f, enum ev_type ev, json_t *results_new)
{
    f->phase = FR_READY;
    frame_emit(f, ev);
    json_t *out;
    struct err err = ERR_INIT;
    if (frame_finish_result(f, f->input, results_new, &out, &err) != 0)
        frame_state_failed(f, &err, true);
    else
        frame_state_done(f, out);
    engine_enqueue(f->ex->eng, f);
}

/* ---- transitions ---- */

/* `input_max`: an upper bound of input_new's size (SIZE_MAX when unknown). */
static void frame_goto(struct frame *f, int next, json_t *input_new, size_t input_max)
{
    frame_visit_release(f);
    json_decref(f->input);
    f->input = input_new;
    f->input_size_max = input_max != SIZE_MAX ? input_max : 0;
    f->st = &f->states->v[next];
    f->entered = false;
    f->phase = FR_READY;
}

static void frame_finish(struct frame *f, json_t *output_new, struct err *err)
{
    /* api.md 9.2: a failed Parallel/Map keeps which children a redrive must redo (failure
     * path only: nothing is taken on success) */
    if (err != NULL && f->kids != NULL && f->redo == NULL && exec_redrivable(f->ex))
        f->redo = frame_redo_json(f);
    frame_visit_release(f);
    f->phase = FR_DONE;
    if (err != NULL) {
        f->failed = true;
        err_move(&f->err, err);
        json_decref(output_new);
    } else {
        f->output = output_new;
    }
    frame_enqueue_done(f);
}

/* frame_state_exit with `output_max` an upper bound of output_new's size (SIZE_MAX when
 * unknown): the payload limit is measured only when the bound exceeds it. */
static void state_exit_sized(struct frame *f, json_t *output_new, size_t output_max, int next)
{
    if (output_new == f->input) {
        output_max = frame_input_max(f); /* checked when it was produced */
    } else if (output_max > ASL_PAYLOAD_MAX) {
        size_t n = json_sizer_size(&f->ex->eng->sizer, output_new, ASL_PAYLOAD_MAX);
        if (n > ASL_PAYLOAD_MAX) {
            struct err err = ERR_INIT;
            frame_size_error(f, &err);
            json_decref(output_new);
            frame_state_failed(f, &err, false);
            return;
        }
        output_max = n;
    }
    struct hevent *e = frame_event(f, exited_ev[f->st->type]);
    e->name = f->st->name;
    e->data = json_incref(output_new);
    if (next != ASL_NO_STATE)
        frame_goto(f, next, output_new, output_max);
    else
        frame_finish(f, output_new, NULL);
}

void frame_state_done(struct frame *f, json_t *output_new)
{
    frame_state_exit(f, output_new, f->st->next);
}

void frame_state_exit(struct frame *f, json_t *output_new, int next)
{
    state_exit_sized(f, output_new, frame_sized_take(f, output_new), next);
}

static int64_t retry_delay_ms(struct frame *f, const struct asl_retrier *r, int count)
{
    struct sfn_engine *eng = f->ex->eng;
    if (eng->retry_wait_ms >= 0)
        return eng->retry_wait_ms;
    /* asl.md 9.3: IntervalSeconds * BackoffRate^count, capped at MaxDelaySeconds */
    double d = (double)r->interval_s * 1000.0 * pow(r->backoff, count);
    if (r->max_delay_s > 0 && d > (double)r->max_delay_s * 1000.0)
        d = (double)r->max_delay_s * 1000.0;
    if (d > 1e15)
        d = 1e15;
    if (r->jitter_full)
        d = d * ((double)(engine_rand(eng) >> 11) / 9007199254740992.0);
    return (int64_t)d;
}

static void frame_failed_event(struct frame *f)
{
    if (f->started_event == 0)
        return; /* failed before ParallelStateStarted/MapStateStarted: no Failed event */
    if (f->st->type == ASL_PARALLEL)
        frame_emit(f, EV_ParallelStateFailed);
    else if (f->st->type == ASL_MAP)
        frame_emit(f, EV_MapStateFailed);
}

void frame_state_failed(struct frame *f, struct err *err, bool decorate)
{
    const struct asl_state *st = f->st;
    const char *name = err->name;
    if (decorate && strcmp(name, ASL_ERR_RUNTIME) == 0) {
        /* asl.md 9.5: runtime failures name the state and its Entered event */
        char *cause = xasprintf("An error occurred while executing the state '%s' (entered at "
                                "the event id #%lld). %s",
                                st->name, (long long)f->entered_event,
                                err->cause != NULL ? err->cause : "");
        free(err->cause);
        err->cause = cause;
    }
    for (size_t i = 0; i < st->n_retry; i++) {
        const struct asl_retrier *r = &st->retry[i];
        if (!asl_errmatch_test(&r->on, name))
            continue;
        if (f->retry_counts[i] >= r->max_attempts)
            break; /* asl.md 9.3 step 4: later retriers are not consulted */
        int64_t delay = retry_delay_ms(f, r, f->retry_counts[i]);
        f->retry_counts[i]++;
        f->retry_total++;
        json_decref(f->ctx);
        f->ctx = NULL;
        err_clear(err);
        frame_visit_release(f);
        f->phase = FR_BACKOFF;
        engine_timer_arm(f->ex->eng, &f->timer, engine_now(f->ex->eng) + delay);
        return;
    }
    /* Recorded on AWS (conformance scenarios test_parallel_state_retry): a retried Parallel
     * or Map records ParallelStateFailed/MapStateFailed only once retries are over */
    frame_failed_event(f);
    for (size_t i = 0; i < st->n_catch; i++) {
        const struct asl_catcher *c = &st->catch[i];
        if (!asl_errmatch_test(&c->on, name))
            continue;
        json_t *eo = json_object();
        json_object_set_new(eo, "Error", name[0] != '\0' ? json_string(name) : json_null());
        json_object_set_new(eo, "Cause", err->cause != NULL ? json_string(err->cause)
                                                            : json_null());
        json_t *out;
        if (c->result_path_null) {
            out = json_incref(f->input);
            json_decref(eo);
        } else if (c->result_path != NULL) {
            struct err e2 = ERR_INIT;
            out = asl_path_assign(c->result_path, f->input, eo, &e2);
            json_decref(eo);
            if (out == NULL) {
                err_move(err, &e2);
                frame_finish(f, NULL, err);
                return;
            }
        } else {
            out = eo;
        }
        err_clear(err);
        struct hevent *e = frame_event(f, exited_ev[st->type]);
        e->name = st->name;
        e->data = json_incref(out);
        frame_goto(f, c->next, out, SIZE_MAX);
        return;
    }
    frame_finish(f, NULL, err);
}

/* ---- the run loop of one frame ---- */

static void frame_enter(struct frame *f)
{
    const struct asl_state *st = f->st;
    f->entered = true;
    f->entered_ms = engine_now(f->ex->eng);
    f->retry_total = 0;
    if (st->n_retry > f->retry_cap) {
        f->retry_counts = xrealloc(f->retry_counts, st->n_retry * sizeof(int));
        f->retry_cap = st->n_retry;
    }
    if (st->n_retry > 0)
        memset(f->retry_counts, 0, st->n_retry * sizeof(int));
    struct hevent *e = frame_event(f, entered_ev[st->type]);
    e->name = st->name;
    e->data = json_incref(f->input);
    f->entered_event = e->id;
}

static void frame_enqueue_done(struct frame *f)
{
    engine_enqueue(f->ex->eng, f);
}

static void exec_complete(struct sfn_execution *ex, struct frame *root)
{
    if (ex->status != SFN_RUNNING)
        return;
    engine_timer_cancel(ex->eng, &ex->timeout);
    ex->stop_ms = engine_now(ex->eng);
    struct hevent *e;
    if (root->failed) {
        ex->status = SFN_FAILED;
        if (exec_redrivable(ex))
            ex->redo = frame_redo_json(root);
        err_copy(&ex->err, &root->err);
        e = hist_add(ex, EV_ExecutionFailed, root->last_event);
        e->has_error = true;
        e->error = root->err.name[0] != '\0' ? xstrdup(root->err.name) : NULL;
        e->cause = root->err.cause != NULL ? xstrdup(root->err.cause) : NULL;
    } else {
        ex->status = SFN_SUCCEEDED;
        ex->output = json_incref(root->output);
        e = hist_add(ex, EV_ExecutionSucceeded, root->last_event);
        e->data = json_incref(root->output);
    }
    engine_exec_done(ex);
}

void frame_run(struct frame *f)
{
    if (f->phase == FR_DONE) {
        if (f->parent != NULL)
            ops_table[f->parent->st->type]->on_child(f->parent, f);
        else
            exec_complete(f->ex, f);
        return;
    }
    if (f->phase == FR_TASK_DONE) {
        ops_table[f->st->type]->on_task(f);
    }
    for (int budget = FRAME_RUN_BUDGET; f->phase == FR_READY && budget > 0; budget--) {
        if (!f->entered)
            frame_enter(f);
        ops_table[f->st->type]->run(f);
    }
    if (f->phase == FR_READY || f->phase == FR_TASK_DONE)
        engine_enqueue(f->ex->eng, f);
}

static void on_frame_timer(struct etimer *t)
{
    struct frame *f = container_of(t, struct frame, timer);
    if (f->phase == FR_BACKOFF) {
        f->phase = FR_READY; /* run the state's work again (no new Entered event) */
        engine_enqueue(f->ex->eng, f);
        return;
    }
    ops_table[f->st->type]->on_timer(f);
}

static void on_frame_heartbeat(struct etimer *t)
{
    struct frame *f = container_of(t, struct frame, hb_timer);
    ops_table[f->st->type]->on_timer(f);
}

void frame_abort(struct frame *f, bool events)
{
    if (f == NULL)
        return;
    engine_dequeue(f->ex->eng, f);
    if (f->phase != FR_DONE) {
        f->aborted = true;
        /* the children's positions, for a redrive, before they are freed */
        if (f->kids != NULL && f->redo == NULL && f->ex->redo == NULL && exec_redrivable(f->ex))
            f->redo = frame_redo_json(f);
    }
    if (f->phase != FR_DONE && f->phase != FR_READY && ops_table[f->st->type]->abort != NULL)
        ops_table[f->st->type]->abort(f, events);
    frame_visit_release(f);
    f->phase = FR_DONE;
}
