/* engine/state_map.c - inline Map: one iteration frame per item (ItemsPath, ItemSelector with
 * $$.Map.Item.*), at most MaxConcurrency running, results in item order; a failing item
 * aborts the others unless ToleratedFailure* allows it (asl.md 11.1-11.2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

/* Context of one item's ItemSelector: the state's context plus Map.Item. */
struct item_ctx {
    struct frame *f;
    size_t index;
    json_t *item;  /* borrowed */
    json_t *built; /* owned, or NULL until asked for */
};

static json_t *item_context(void *arg)
{
    struct item_ctx *c = arg;
    if (c->built == NULL) {
        c->built = json_shallow_copy(frame_context(c->f));
        json_object_set_new(c->built, "Map",
                            json_pack("{s:{s:I,s:O}}", "Item", "Index", (json_int_t)c->index,
                                      "Value", c->item));
    }
    return c->built;
}

/* Resolves one of the *Path numeric fields; AWS's texts (asl.md 4.4). */
static int int_path(struct frame *f, const struct asl_path *p, json_t *eff, const char *field,
                    bool as_float, double *out, struct err *err)
{
    struct asl_scope s;
    frame_scope(f, &s, eff);
    json_t *v = asl_path_eval(p, &s, err);
    if (v == NULL)
        return -1;
    int rc = 0;
    if (as_float ? !json_is_number(v) : !json_is_integer(v)) {
        char *text = json_compact(v);
        rc = err_set(err, ASL_ERR_RUNTIME,
                     "The %s field refers to value %s which is not a valid %s: %s", field, text,
                     as_float ? "float" : "integer", asl_path_text(p));
        free(text);
    } else {
        *out = json_number_value(v);
    }
    json_decref(v);
    return rc;
}

static int map_settings(struct frame *f, json_t *eff, struct err *err)
{
    const struct asl_state *st = f->st;
    double v;
    f->max_conc = st->max_concurrency;
    f->tolerated_count = st->tolerated_count;
    f->tolerated_pct = st->tolerated_pct;
    if (st->max_concurrency_path != NULL) {
        if (int_path(f, st->max_concurrency_path, eff, "MaxConcurrencyPath", false, &v, err) != 0)
            return -1;
        f->max_conc = (int64_t)v;
    }
    if (st->tolerated_count_path != NULL) {
        if (int_path(f, st->tolerated_count_path, eff, "ToleratedFailureCountPath", false, &v,
                     err) != 0)
            return -1;
        f->tolerated_count = (int64_t)v;
        if (f->tolerated_count < 0)
            return err_set(err, ASL_ERR_RUNTIME, "ToleratedFailureCount cannot be negative.");
    }
    if (st->tolerated_pct_path != NULL) {
        if (int_path(f, st->tolerated_pct_path, eff, "ToleratedFailurePercentagePath", true, &v,
                     err) != 0)
            return -1;
        if (v < 0 || v > 100)
            return err_set(err, ASL_ERR_RUNTIME,
                           "ToleratedFailurePercentage must be between 0 and 100.");
        f->tolerated_pct = v;
    }
    if (f->max_conc < 0)
        f->max_conc = 0;
    return 0;
}

static void map_finish(struct frame *f);

static int start_iteration(struct frame *f, int64_t prev, struct err *err)
{
    const struct asl_state *st = f->st;
    size_t i = f->kids_started;
    json_t *item = json_array_get(f->items, i);
    json_t *input;
    if (st->item_selector != NULL) {
        struct item_ctx c = {f, i, item, NULL};
        struct asl_scope s;
        frame_scope(f, &s, f->eff_input);
        s.context = item_context;
        s.context_arg = &c;
        input = asl_tmpl_eval(st->item_selector, &s, err);
        json_decref(c.built);
        if (input == NULL)
            return -1;
    } else {
        input = json_incref(item);
    }
    struct hevent *e = hist_add(f->ex, EV_MapIterationStarted, prev);
    e->name = st->name;
    e->index = (int64_t)i;
    struct frame *kid = frame_new(f->ex, f, FRAME_ITERATION, i, st->processor, input);
    kid->last_event = e->id;
    f->kids[i] = kid;
    f->kids_started++;
    f->kids_running++;
    engine_enqueue(f->ex->eng, kid);
    return 0;
}

/* Starts iterations while the concurrency limit allows. */
static int fill(struct frame *f, int64_t prev, struct err *err)
{
    while (f->kids_started < f->n_kids &&
           (f->max_conc == 0 || (int64_t)f->kids_running < f->max_conc)) {
        if (start_iteration(f, prev, err) != 0)
            return -1;
    }
    return 0;
}

static void abort_kids(struct frame *f, bool events)
{
    for (size_t i = 0; i < f->kids_started; i++) {
        struct frame *kid = f->kids[i];
        if (kid == NULL || kid->phase == FR_DONE)
            continue;
        frame_abort(kid, events);
        if (events) {
            struct hevent *e = hist_add(f->ex, EV_MapIterationAborted, kid->last_event);
            e->name = f->st->name;
            e->index = (int64_t)i;
        }
    }
}

static void map_fail(struct frame *f, struct err *err, bool decorate)
{
    abort_kids(f, true);
    f->phase = FR_READY;
    frame_state_failed(f, err, decorate);
}

static void map_run(struct frame *f)
{
    const struct asl_state *st = f->st;
    struct err err = ERR_INIT;
    json_t *eff = frame_effective_input(f, &err);
    if (eff == NULL) {
        frame_state_failed(f, &err, true);
        return;
    }
    f->eff_input = eff;
    json_t *items;
    if (st->items_path != NULL) {
        struct asl_scope s;
        frame_scope(f, &s, eff);
        items = asl_path_eval(st->items_path, &s, &err);
        if (items == NULL) {
            frame_state_failed(f, &err, true);
            return;
        }
    } else {
        items = json_incref(eff);
    }
    f->items = items;
    if (!json_is_array(items)) {
        char *text = json_compact(items);
        err_set(&err, ASL_ERR_RUNTIME, "Map state input must be an array but was: %s", text);
        free(text);
        frame_state_failed(f, &err, true);
        return;
    }
    if (map_settings(f, eff, &err) != 0) {
        frame_state_failed(f, &err, true);
        return;
    }
    f->n_kids = json_array_size(items);
    struct hevent *e = frame_event(f, EV_MapStateStarted);
    e->index = (int64_t)f->n_kids;
    f->started_event = e->id;
    f->kids = xcalloc(f->n_kids, sizeof(*f->kids));
    f->results = json_array();
    for (size_t i = 0; i < f->n_kids; i++)
        json_array_append_new(f->results, json_null());
    f->phase = FR_CHILDREN;
    if (f->n_kids == 0) {
        map_finish(f);
        return;
    }
    if (fill(f, f->started_event, &err) != 0)
        map_fail(f, &err, true);
}

static void map_finish(struct frame *f)
{
    frame_children_succeeded(f, EV_MapStateSucceeded, json_incref(f->results));
}

static bool over_tolerance(const struct frame *f)
{
    if (f->tolerated_count < 0 && f->tolerated_pct < 0)
        return true; /* no tolerance declared: any failure fails the Map */
    /* asl.md 11.3: with both declared, exceeding either threshold fails the Map */
    if (f->tolerated_count >= 0 && (int64_t)f->kids_failed > f->tolerated_count)
        return true;
    if (f->tolerated_pct >= 0 &&
        (double)f->kids_failed * 100.0 / (double)f->n_kids > f->tolerated_pct)
        return true;
    return false;
}

static void map_on_child(struct frame *f, struct frame *kid)
{
    size_t i = kid->index;
    f->kids_running--;
    int64_t kid_last = kid->last_event;
    struct hevent *e = hist_add(f->ex, kid->failed ? EV_MapIterationFailed
                                                   : EV_MapIterationSucceeded, kid_last);
    e->name = f->st->name;
    e->index = (int64_t)i;
    f->last_event = e->id;
    struct err err = ERR_INIT;
    if (kid->failed) {
        f->kids_failed++;
        if (over_tolerance(f)) {
            if (f->tolerated_count >= 0 || f->tolerated_pct >= 0)
                err_set(&err, ASL_ERR_TOLERATED,
                        "The specified tolerated failure threshold was exceeded");
            else
                err_copy(&err, &kid->err);
            map_fail(f, &err, false);
            engine_enqueue(f->ex->eng, f);
            return;
        }
        json_t *eo = json_pack("{s:s?,s:s?}", "Error",
                               kid->err.name[0] != '\0' ? kid->err.name : NULL, "Cause",
                               kid->err.cause);
        json_array_set_new(f->results, i, eo);
    } else {
        f->kids_done++;
        json_array_set(f->results, i, kid->output);
    }
    if (!kid->failed || !exec_redrivable(f->ex)) {
        f->kids[i] = NULL;
        frame_free(kid);
    } /* else kept (done) until the Map ends: a redrive runs the iteration again */
    /* MaxConcurrency 1: the next iteration chains from this one's last state event */
    int64_t prev = f->max_conc == 1 ? kid_last : f->started_event;
    if (fill(f, prev, &err) != 0) {
        map_fail(f, &err, true);
        engine_enqueue(f->ex->eng, f);
        return;
    }
    if (f->kids_done + f->kids_failed == f->n_kids)
        map_finish(f);
}

static void map_abort(struct frame *f, bool events)
{
    if (f->phase != FR_CHILDREN && f->phase != FR_BACKOFF)
        return;
    abort_kids(f, events);
    if (events)
        frame_emit(f, EV_MapStateAborted);
}

const struct state_ops state_map_ops = {
    .run = map_run,
    .on_child = map_on_child,
    .abort = map_abort,
};
