/* engine/snapshot.c - an execution written out as JSON and read back to continue exactly
 * where it was: every frame (the execution, Parallel branches, Map iterations) with its state,
 * data, retry counters, timer deadlines and in-flight task attempt (token, input), plus the
 * history so far. The store (issue 3) persists this; restoring hands in-flight attempts back
 * to their handlers through `resume` instead of starting them again. */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

#define SNAPSHOT_VERSION 1

static const char *const phase_names[] = {
    [FR_READY] = "READY",       [FR_WAIT] = "WAIT",       [FR_BACKOFF] = "BACKOFF",
    [FR_TASK] = "TASK",         [FR_TASK_DONE] = "TASK_DONE", [FR_CHILDREN] = "CHILDREN",
    [FR_DONE] = "DONE",
};

static const char *const event_names[] = {
#define EV(name) #name,
#include "engine/events.def"
#undef EV
};

static json_t *opt_ref(json_t *v)
{
    return v != NULL ? json_incref(v) : json_null();
}

static json_t *err_json(const struct err *e)
{
    return json_pack("{s:s?,s:s?}", "error", e->name[0] != '\0' ? e->name : NULL, "cause",
                     e->cause);
}

/* A document the frame shares with the execution or its parent is written as a reference
 * ("execution", "parent_eff", "input"): a Map over a 200 KB input would otherwise write that
 * input three or four times into every checkpoint. */
static const char *shared_ref(const struct frame *f, const json_t *v, bool self_input)
{
    if (v == NULL)
        return NULL;
    if (v == f->ex->input)
        return "execution";
    if (f->parent != NULL && v == f->parent->eff_input)
        return "parent_eff";
    if (self_input && v == f->input)
        return "input";
    return NULL;
}

/* Whether a Map's items are what ItemsPath gives on its effective input (then they are
 * computed again on restore instead of being written). */
static bool items_derived(const struct frame *f)
{
    if (f->st->type != ASL_MAP || f->items == NULL || f->eff_input == NULL)
        return false;
    if (f->st->items_path == NULL)
        return f->items == f->eff_input;
    struct asl_scope s;
    struct err err = ERR_INIT;
    frame_scope((struct frame *)f, &s, f->eff_input);
    json_t *again = asl_path_eval(f->st->items_path, &s, &err);
    bool same = again == f->items;
    json_decref(again);
    err_clear(&err);
    return same;
}

static json_t *frame_json(const struct frame *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(f->st->name));
    json_object_set_new(o, "phase", json_string(phase_names[f->phase]));
    const char *ref = shared_ref(f, f->input, false);
    if (ref != NULL)
        json_object_set_new(o, "input_ref", json_string(ref));
    else
        json_object_set_new(o, "input", opt_ref(f->input));
    json_object_set_new(o, "entered", json_boolean(f->entered));
    json_object_set_new(o, "last_event", json_integer(f->last_event));
    json_object_set_new(o, "entered_event", json_integer(f->entered_event));
    json_object_set_new(o, "entered_ms", json_integer(f->entered_ms));
    json_object_set_new(o, "retry_total", json_integer(f->retry_total));
    json_t *rc = json_array();
    for (size_t i = 0; i < f->st->n_retry && f->retry_counts != NULL; i++)
        json_array_append_new(rc, json_integer(f->retry_counts[i]));
    json_object_set_new(o, "retry_counts", rc);
    if (f->timer.slot != SIZE_MAX)
        json_object_set_new(o, "deadline", json_integer(f->timer.deadline));
    if (f->hb_timer.slot != SIZE_MAX)
        json_object_set_new(o, "hb_deadline", json_integer(f->hb_timer.deadline));
    if (f->phase == FR_DONE) {
        /* a finished branch stays in its Parallel; it is queued until its parent is told */
        json_object_set_new(o, "report", json_boolean(f->queued));
        if (f->failed)
            json_object_set_new(o, "failed", err_json(&f->err));
        else
            json_object_set_new(o, "output", opt_ref(f->output));
    }
    if (f->eff_input != NULL) {
        ref = shared_ref(f, f->eff_input, true);
        if (ref != NULL)
            json_object_set_new(o, "eff_ref", json_string(ref));
        else
            json_object_set_new(o, "eff_input", json_incref(f->eff_input));
    }
    if (f->task != NULL) {
        const struct sfn_task *t = f->task;
        json_t *tj = json_pack("{s:s,s:i,s:O,s:I,s:I}", "token", t->token, "attempt", t->attempt,
                               "input", t->input != NULL ? t->input : json_null(), "timeout_s",
                               (json_int_t)t->timeout_s, "heartbeat_s",
                               (json_int_t)t->heartbeat_s);
        if (t->state != NULL)
            json_object_set_new(tj, "state", json_incref(t->state));
        if (t->taken)
            json_object_set_new(tj, "taken", json_true());
        if (t->done) {
            if (t->err.set)
                json_object_set_new(tj, "failed", err_json(&t->err));
            else
                json_object_set_new(tj, "output", opt_ref(t->output));
        }
        json_object_set_new(o, "task", tj);
    }
    if (f->phase == FR_CHILDREN) {
        json_t *k = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I}", "started",
                              (json_int_t)f->kids_started, "running", (json_int_t)f->kids_running,
                              "done", (json_int_t)f->kids_done, "failed",
                              (json_int_t)f->kids_failed, "max_conc", (json_int_t)f->max_conc,
                              "tolerated_count", (json_int_t)f->tolerated_count,
                              "tolerated_pct", f->tolerated_pct, "started_event",
                              (json_int_t)f->started_event);
        if (items_derived(f))
            json_object_set_new(k, "items_ref", json_string("items_path"));
        else
            json_object_set_new(k, "items", opt_ref(f->items));
        json_object_set_new(k, "results", opt_ref(f->results));
        json_t *arr = json_array();
        for (size_t i = 0; i < f->n_kids; i++)
            json_array_append_new(arr, f->kids[i] != NULL ? frame_json(f->kids[i]) : json_null());
        json_object_set_new(k, "frames", arr);
        json_object_set_new(o, "kids", k);
    }
    return o;
}

static json_t *event_json(const struct hevent *e)
{
    json_t *o = json_pack("{s:I,s:I,s:I,s:s}", "id", (json_int_t)e->id, "prev",
                          (json_int_t)e->prev, "ts", (json_int_t)e->ts_ms, "type",
                          event_names[e->type]);
    if (e->name != NULL)
        json_object_set_new(o, "name", json_string(e->name));
    if (e->data != NULL)
        json_object_set_new(o, "data", json_incref(e->data));
    if (e->details != NULL)
        json_object_set_new(o, "details", json_incref(e->details));
    if (e->has_error)
        json_object_set_new(o, "err", json_pack("{s:s?,s:s?}", "error", e->error, "cause",
                                                e->cause));
    if (e->index >= 0)
        json_object_set_new(o, "index", json_integer(e->index));
    return o;
}

static json_t *snapshot(const struct sfn_execution *ex, bool with_history)
{
    json_t *o = json_object();
    json_object_set_new(o, "version", json_integer(SNAPSHOT_VERSION));
    json_object_set_new(o, "arn", json_string(ex->arn));
    json_object_set_new(o, "name", json_string(ex->name));
    json_object_set_new(o, "role_arn", json_string(ex->role_arn));
    json_object_set_new(o, "machine", json_string(ex->sm->name));
    json_object_set_new(o, "input", json_incref(ex->input));
    json_object_set_new(o, "start_ms", json_integer(ex->start_ms));
    json_object_set_new(o, "stop_ms", json_integer(ex->stop_ms));
    json_object_set_new(o, "status", json_string(sfn_status_name(ex->status)));
    if (ex->status == SFN_SUCCEEDED)
        json_object_set_new(o, "output", opt_ref(ex->output));
    else if (ex->err.set)
        json_object_set_new(o, "failed", err_json(&ex->err));
    if (ex->timeout.slot != SIZE_MAX)
        json_object_set_new(o, "timeout_deadline", json_integer(ex->timeout.deadline));
    if (ex->root != NULL && ex->status == SFN_RUNNING)
        json_object_set_new(o, "root", frame_json(ex->root));
    json_object_set_new(o, "n_events", json_integer((json_int_t)(ex->ev_base + ex->n_ev)));
    json_object_set_new(o, "clock_ms", json_integer(engine_now(ex->eng)));
    if (with_history) {
        json_t *evs = json_array();
        for (size_t i = 0; i < ex->n_ev; i++)
            json_array_append_new(evs, event_json(hist_at(ex, i)));
        json_object_set_new(o, "events", evs);
    }
    return o;
}

json_t *sfn_execution_snapshot(const struct sfn_execution *ex)
{
    return snapshot(ex, true);
}

json_t *sfn_execution_checkpoint(const struct sfn_execution *ex)
{
    return snapshot(ex, false);
}

/* ---- restore ---- */

struct rs {
    struct sfn_execution *ex;
    json_t *names; /* state name -> [pointer as integer] for borrowing names */
    struct err *err;
};

static const struct asl_state *find_state(const struct asl_states *ss, const char *name)
{
    for (size_t i = 0; i < ss->n; i++) {
        if (strcmp(ss->v[i].name, name) == 0)
            return &ss->v[i];
    }
    return NULL;
}

/* Finds the state named `name` anywhere in the machine (names are unique machine-wide). */
static const struct asl_state *find_anywhere(const struct asl_states *ss, const char *name)
{
    const struct asl_state *s = find_state(ss, name);
    for (size_t i = 0; s == NULL && i < ss->n; i++) {
        const struct asl_state *st = &ss->v[i];
        for (size_t b = 0; s == NULL && b < st->n_branches; b++)
            s = find_anywhere(&st->branches[b], name);
        if (s == NULL && st->processor != NULL)
            s = find_anywhere(st->processor, name);
    }
    return s;
}

static int phase_of(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(phase_names); i++) {
        if (name != NULL && strcmp(phase_names[i], name) == 0)
            return (int)i;
    }
    return -1;
}

static void err_from_json(struct err *e, json_t *j)
{
    err_clear(e);
    err_set_raw(e, json_string_value(json_object_get(j, "error")),
                json_string_value(json_object_get(j, "cause")));
}

static json_t *take(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v != NULL && !json_is_null(v) ? json_incref(v) : NULL;
}

/* take() that shares `like` instead when the value is equal to it: a snapshot spells out
 * each occurrence of a document that the running execution held once (the execution input,
 * a state's input and its effective input), and a restored execution should not take more
 * memory than the one that was written out. */
static json_t *take_shared(json_t *o, const char *key, json_t *like, json_t *like2)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return NULL;
    if (like != NULL && json_equal(v, like))
        return json_incref(like);
    if (like2 != NULL && json_equal(v, like2))
        return json_incref(like2);
    return json_incref(v);
}

/* A document written as a reference by shared_ref, or NULL. */
static json_t *deref(const char *ref, struct sfn_execution *ex, struct frame *parent,
                     json_t *input)
{
    if (ref == NULL)
        return NULL;
    if (strcmp(ref, "execution") == 0)
        return json_incref(ex->input);
    if (strcmp(ref, "parent_eff") == 0 && parent != NULL && parent->eff_input != NULL)
        return json_incref(parent->eff_input);
    if (strcmp(ref, "input") == 0 && input != NULL)
        return json_incref(input);
    return NULL;
}

static struct frame *frame_restore(struct rs *r, struct frame *parent, enum frame_kind kind,
                                   size_t index, const struct asl_states *states, json_t *j)
{
    struct sfn_execution *ex = r->ex;
    const struct asl_state *st = find_state(states, json_string_value(json_object_get(j, "state")));
    int phase = phase_of(json_string_value(json_object_get(j, "phase")));
    if (st == NULL || phase < 0) {
        err_set(r->err, ASL_ERR_RUNTIME, "the snapshot does not match the state machine '%s'",
                ex->sm->name);
        return NULL;
    }
    json_t *in = deref(json_string_value(json_object_get(j, "input_ref")), ex, parent, NULL);
    if (in == NULL)
        in = take_shared(j, "input", ex->input, parent != NULL ? parent->eff_input : NULL);
    struct frame *f = frame_new(ex, parent, kind, index, states, in);
    f->st = st;
    f->phase = (enum frame_phase)phase;
    f->entered = json_is_true(json_object_get(j, "entered"));
    f->last_event = json_integer_value(json_object_get(j, "last_event"));
    f->entered_event = json_integer_value(json_object_get(j, "entered_event"));
    f->entered_ms = json_integer_value(json_object_get(j, "entered_ms"));
    f->retry_total = (int)json_integer_value(json_object_get(j, "retry_total"));
    if (st->n_retry > 0) {
        f->retry_counts = xcalloc(st->n_retry, sizeof(int));
        f->retry_cap = st->n_retry;
        json_t *rc = json_object_get(j, "retry_counts");
        for (size_t i = 0; i < st->n_retry && i < json_array_size(rc); i++)
            f->retry_counts[i] = (int)json_integer_value(json_array_get(rc, i));
    }
    f->eff_input = deref(json_string_value(json_object_get(j, "eff_ref")), ex, parent, f->input);
    if (f->eff_input == NULL)
        f->eff_input = take_shared(j, "eff_input", f->input, ex->input);
    if (f->phase == FR_DONE) {
        json_t *failed = json_object_get(j, "failed");
        if (failed != NULL) {
            f->failed = true;
            err_from_json(&f->err, failed);
        } else {
            f->output = take(j, "output");
            if (f->output == NULL)
                f->output = json_null();
        }
    }
    json_t *kids = json_object_get(j, "kids");
    if (kids != NULL) {
        f->kids_started = (size_t)json_integer_value(json_object_get(kids, "started"));
        f->kids_running = (size_t)json_integer_value(json_object_get(kids, "running"));
        f->kids_done = (size_t)json_integer_value(json_object_get(kids, "done"));
        f->kids_failed = (size_t)json_integer_value(json_object_get(kids, "failed"));
        f->max_conc = json_integer_value(json_object_get(kids, "max_conc"));
        f->tolerated_count = json_integer_value(json_object_get(kids, "tolerated_count"));
        f->tolerated_pct = json_number_value(json_object_get(kids, "tolerated_pct"));
        f->started_event = json_integer_value(json_object_get(kids, "started_event"));
        f->items = take(kids, "items");
        if (json_object_get(kids, "items_ref") != NULL && f->eff_input != NULL) {
            if (st->items_path == NULL) {
                f->items = json_incref(f->eff_input);
            } else {
                struct asl_scope s;
                frame_scope(f, &s, f->eff_input);
                f->items = asl_path_eval(st->items_path, &s, r->err);
            }
        }
        f->results = take(kids, "results");
        json_t *frames = json_object_get(kids, "frames");
        f->n_kids = json_array_size(frames);
        f->kids = xcalloc(f->n_kids, sizeof(*f->kids));
        for (size_t i = 0; i < f->n_kids; i++) {
            json_t *kj = json_array_get(frames, i);
            if (json_is_null(kj))
                continue;
            const struct asl_states *ks =
                st->type == ASL_PARALLEL ? &st->branches[i] : st->processor;
            f->kids[i] = frame_restore(r, f, st->type == ASL_PARALLEL ? FRAME_BRANCH
                                                                      : FRAME_ITERATION,
                                       i, ks, kj);
            if (f->kids[i] == NULL)
                return f; /* the caller frees the tree */
        }
    }
    struct sfn_engine *eng = ex->eng;
    json_t *dl = json_object_get(j, "deadline");
    json_t *task = json_object_get(j, "task");
    if (task != NULL) {
        if (task_restore(f, task, r->err) != 0)
            return f;
    }
    if (json_is_integer(dl))
        engine_timer_arm(eng, &f->timer, json_integer_value(dl));
    json_t *hb = json_object_get(j, "hb_deadline");
    if (json_is_integer(hb))
        engine_timer_arm(eng, &f->hb_timer, json_integer_value(hb));
    if (f->phase == FR_READY || f->phase == FR_TASK_DONE ||
        (f->phase == FR_DONE && !json_is_false(json_object_get(j, "report"))))
        engine_enqueue(eng, f);
    return f;
}

static int events_restore(struct rs *r, json_t *evs)
{
    struct sfn_execution *ex = r->ex;
    size_t n = json_array_size(evs);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(evs, i);
        struct hevent *e = hist_add(ex, EV_ExecutionStarted, 0); /* filled in below */
        ex->n_ev--; /* counted once complete */
        memset(e, 0, sizeof(*e));
        const char *type = json_string_value(json_object_get(j, "type"));
        int t = -1;
        for (size_t k = 0; type != NULL && k < ARRAY_LEN(event_names); k++) {
            if (strcmp(event_names[k], type) == 0)
                t = (int)k;
        }
        if (t < 0)
            return err_set(r->err, ASL_ERR_RUNTIME, "the snapshot holds an unknown event type");
        e->type = (enum ev_type)t;
        e->id = json_integer_value(json_object_get(j, "id"));
        e->prev = json_integer_value(json_object_get(j, "prev"));
        e->ts_ms = json_integer_value(json_object_get(j, "ts"));
        e->index = json_is_integer(json_object_get(j, "index"))
                       ? json_integer_value(json_object_get(j, "index"))
                       : -1;
        const char *name = json_string_value(json_object_get(j, "name"));
        if (name != NULL) {
            const struct asl_state *st = find_anywhere(&ex->sm->m->top, name);
            if (st == NULL)
                return err_set(r->err, ASL_ERR_RUNTIME,
                               "the snapshot does not match the state machine '%s'",
                               ex->sm->name);
            e->name = st->name; /* borrowed from the machine, as when recorded */
        }
        e->data = take(j, "data");
        e->details = take(j, "details");
        json_t *ej = json_object_get(j, "err");
        if (ej != NULL) {
            e->has_error = true;
            const char *s = json_string_value(json_object_get(ej, "error"));
            e->error = s != NULL ? xstrdup(s) : NULL;
            s = json_string_value(json_object_get(ej, "cause"));
            e->cause = s != NULL ? xstrdup(s) : NULL;
        }
        ex->n_ev++;
    }
    return 0;
}

struct sfn_execution *sfn_execution_restore(struct sfn_engine *eng, struct sfn_machine *m,
                                            json_t *snap, const struct sfn_execution_options *opt,
                                            struct err *err)
{
    if (json_integer_value(json_object_get(snap, "version")) != SNAPSHOT_VERSION ||
        !json_is_string(json_object_get(snap, "arn")))
        return err_set(err, ASL_ERR_RUNTIME, "not an execution snapshot of this version"), NULL;
    struct sfn_execution *ex = exec_alloc(eng, m, json_string_value(json_object_get(snap, "name")),
                                          json_string_value(json_object_get(snap, "role_arn")),
                                          json_object_get(snap, "input"),
                                          json_integer_value(json_object_get(snap, "start_ms")),
                                          opt);
    free(ex->arn);
    ex->arn = xstrdup(json_string_value(json_object_get(snap, "arn")));
    ex->stop_ms = json_integer_value(json_object_get(snap, "stop_ms"));
    struct rs r = {ex, NULL, err};
    json_t *evs = json_object_get(snap, "events");
    size_t n_events = json_is_integer(json_object_get(snap, "n_events"))
                          ? (size_t)json_integer_value(json_object_get(snap, "n_events"))
                          : json_array_size(evs);
    int rc = 0;
    if (n_events < json_array_size(evs))
        rc = err_set(err, ASL_ERR_RUNTIME, "not an execution snapshot of this version");
    else
        ex->ev_base = n_events - json_array_size(evs); /* the rest is in the store */
    if (rc == 0)
        rc = events_restore(&r, evs);
    ex->ev_delivered = ex->ev_base + ex->n_ev; /* on_event: only what happens from now on */
    ex->ev_committed = ex->ev_delivered;       /* a restored history is already stored */
    int64_t clock = json_integer_value(json_object_get(snap, "clock_ms"));
    if (rc == 0 && ex->n_ev > 0 && clock < hist_at(ex, ex->n_ev - 1)->ts_ms)
        clock = hist_at(ex, ex->n_ev - 1)->ts_ms;
    if (rc == 0 && eng->virtual_clock && eng->vnow < clock)
        eng->vnow = clock; /* a restored clock never runs backwards */
    if (rc != 0) {
        ex->on_done = NULL;
        sfn_execution_free(ex);
        return NULL;
    }
    const char *status = json_string_value(json_object_get(snap, "status"));
    json_t *root = json_object_get(snap, "root");
    if (status == NULL || strcmp(status, "RUNNING") != 0 || root == NULL) {
        /* an ended execution: its record only */
        for (int s = SFN_RUNNING; s <= SFN_ABORTED; s++) {
            if (status != NULL && strcmp(status, sfn_status_name((enum sfn_status)s)) == 0)
                ex->status = (enum sfn_status)s;
        }
        ex->output = take(snap, "output");
        json_t *failed = json_object_get(snap, "failed");
        if (failed != NULL)
            err_from_json(&ex->err, failed);
        if (ex->status == SFN_RUNNING)
            ex->status = SFN_FAILED;
        return ex;
    }
    ex->root = frame_restore(&r, NULL, FRAME_ROOT, 0, &m->m->top, root);
    if (err->set) {
        ex->on_done = NULL;
        sfn_execution_free(ex);
        return NULL;
    }
    json_t *td = json_object_get(snap, "timeout_deadline");
    if (json_is_integer(td))
        engine_timer_arm(eng, &ex->timeout, json_integer_value(td));
    return ex;
}
