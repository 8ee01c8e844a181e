/* engine/state_parallel.c - Parallel: every branch gets the effective input; the result is
 * the array of branch outputs in branch order; the first failing branch aborts the others
 * and its own error becomes the state's error (asl.md 10.7). */
#include <stdlib.h>

#include "engine/internal.h"
#include "util/xalloc.h"

static void parallel_run(struct frame *f)
{
    const struct asl_state *st = f->st;
    struct err err = ERR_INIT;
    json_t *eff = frame_effective_input(f, &err);
    if (eff == NULL) {
        frame_state_failed(f, &err, true);
        return;
    }
    f->eff_input = eff;
    f->started_event = frame_emit(f, EV_ParallelStateStarted);
    f->n_kids = st->n_branches;
    f->kids = xcalloc(f->n_kids, sizeof(*f->kids));
    for (size_t i = 0; i < f->n_kids; i++) {
        struct frame *kid =
            frame_new(f->ex, f, FRAME_BRANCH, i, &st->branches[i], json_incref(eff));
        kid->last_event = f->started_event;
        f->kids[i] = kid;
        engine_enqueue(f->ex->eng, kid);
    }
    f->kids_started = f->n_kids;
    f->kids_running = f->n_kids;
    f->phase = FR_CHILDREN;
}

static void abort_kids(struct frame *f, bool events)
{
    for (size_t i = 0; i < f->n_kids; i++) {
        if (f->kids[i] != NULL && f->kids[i]->phase != FR_DONE)
            frame_abort(f->kids[i], events);
    }
}

static void parallel_on_child(struct frame *f, struct frame *kid)
{
    f->kids_running--;
    /* api.md 7.4 rule 6: ParallelStateFailed/Succeeded follow the branch's last event */
    f->last_event = kid->last_event;
    if (kid->failed) {
        struct err err = ERR_INIT;
        err_copy(&err, &kid->err);
        abort_kids(f, true);
        f->phase = FR_READY;
        frame_state_failed(f, &err, false);
        engine_enqueue(f->ex->eng, f);
        return;
    }
    f->kids_done++;
    if (f->kids_done < f->n_kids)
        return;
    json_t *results = json_array();
    for (size_t i = 0; i < f->n_kids; i++)
        json_array_append(results, f->kids[i]->output);
    frame_children_succeeded(f, EV_ParallelStateSucceeded, results);
}

static void parallel_abort(struct frame *f, bool events)
{
    if (f->phase != FR_CHILDREN && f->phase != FR_BACKOFF)
        return;
    abort_kids(f, events);
    if (events)
        frame_emit(f, EV_ParallelStateAborted);
}

const struct state_ops state_parallel_ops = {
    .run = parallel_run,
    .on_child = parallel_on_child,
    .abort = parallel_abort,
};
