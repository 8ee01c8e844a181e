/* engine/state_wait.c - Wait: Seconds, Timestamp, SecondsPath or TimestampPath, with AWS's
 * runtime error texts (asl.md 4.4, 10.4); a deadline in the past completes at once. */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

#define WAIT_MAX_MS (366LL * 24 * 3600 * 1000) /* a Standard execution lasts at most a year */

/* Computes the deadline (engine clock ms). 0, or -1 with err set (States.Runtime). */
static int wait_deadline(struct frame *f, json_t *eff, int64_t *deadline, struct err *err)
{
    const struct asl_state *st = f->st;
    int64_t now = engine_now(f->ex->eng);
    if (st->seconds >= 0) {
        *deadline = now + st->seconds * 1000;
        return 0;
    }
    struct asl_time t;
    if (st->timestamp != NULL) {
        if (asl_time_parse(st->timestamp, &t) != 0)
            return err_set(err, ASL_ERR_RUNTIME,
                           "The Timestamp field cannot be parsed as an ISO-8601 extended offset "
                           "date-time format string: %s",
                           st->timestamp);
    } else {
        const struct asl_path *p = st->seconds_path != NULL ? st->seconds_path
                                                             : st->timestamp_path;
        struct asl_scope s;
        frame_scope(f, &s, eff);
        struct err e2 = ERR_INIT;
        json_t *v = asl_path_eval(p, &s, &e2);
        const char *field = st->seconds_path != NULL ? "SecondsPath" : "TimestampPath";
        if (v == NULL) {
            err_clear(&e2);
            return err_set(err, ASL_ERR_RUNTIME,
                           "The %s parameter does not reference an input value: %s", field,
                           asl_path_text(p));
        }
        char *text = json_is_string(v) ? xstrdup(json_string_value(v)) : json_compact(v);
        int rc = 0;
        if (st->seconds_path != NULL) {
            if (!json_is_integer(v))
                rc = err_set(err, ASL_ERR_RUNTIME,
                             "The SecondsPath parameter cannot be parsed as a long value: %s == %s",
                             asl_path_text(p), text);
            else if (json_integer_value(v) < 0)
                rc = err_set(err, ASL_ERR_RUNTIME,
                             "The SecondsPath parameter references a negative value: %s == %s",
                             asl_path_text(p), text);
            else if (json_integer_value(v) > WAIT_MAX_MS / 1000)
                rc = err_set(err, ASL_ERR_RUNTIME, "Wait state delay is too long.");
            else
                *deadline = now + json_integer_value(v) * 1000;
        } else if (!json_is_string(v) || asl_time_parse(json_string_value(v), &t) != 0) {
            rc = err_set(err, ASL_ERR_RUNTIME,
                         "The TimestampPath parameter does not reference a valid ISO-8601 "
                         "extended offset date-time format string: %s == %s",
                         asl_path_text(p), text);
        }
        free(text);
        json_decref(v);
        if (rc != 0 || st->seconds_path != NULL)
            return rc;
    }
    int64_t ms = t.sec * 1000 + t.nsec / 1000000;
    if (ms - now > WAIT_MAX_MS)
        return err_set(err, ASL_ERR_RUNTIME, "Wait state delay is too long.");
    *deadline = ms;
    return 0;
}

static void wait_run(struct frame *f)
{
    struct err err = ERR_INIT;
    json_t *eff = frame_effective_input(f, &err);
    if (eff == NULL) {
        frame_state_failed(f, &err, true);
        return;
    }
    int64_t deadline = 0;
    if (wait_deadline(f, eff, &deadline, &err) != 0) {
        json_decref(eff);
        frame_state_failed(f, &err, true);
        return;
    }
    json_t *out;
    if (frame_finish_result(f, f->input, eff, &out, &err) != 0) {
        frame_state_failed(f, &err, true);
        return;
    }
    struct sfn_engine *eng = f->ex->eng;
    if (deadline <= engine_now(eng)) {
        frame_state_done(f, out);
        return;
    }
    f->eff_input = out; /* the output, held until the timer fires */
    f->phase = FR_WAIT;
    engine_timer_arm(eng, &f->timer, deadline);
}

static void wait_on_timer(struct frame *f)
{
    json_t *out = f->eff_input;
    f->eff_input = NULL;
    f->phase = FR_READY;
    frame_state_done(f, out);
    if (f->phase == FR_READY || f->phase == FR_DONE)
        engine_enqueue(f->ex->eng, f);
}

static void wait_abort(struct frame *f, bool events)
{
    if (events && f->phase == FR_WAIT)
        frame_emit(f, EV_WaitStateAborted);
}

const struct state_ops state_wait_ops = {
    .run = wait_run,
    .on_timer = wait_on_timer,
    .abort = wait_abort,
};
