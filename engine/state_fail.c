/* engine/state_fail.c - Fail: Error/Cause, or ErrorPath/CausePath (a reference path or an
 * intrinsic) evaluated against the raw input (asl.md 10.6). No Exited event. */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

/* Resolves one of Error/Cause. 0 with *out (owned string or NULL), or -1 with err set. */
static int strsrc_eval(struct frame *f, const struct asl_strsrc *s, char **out, struct err *err)
{
    *out = NULL;
    if (s->literal != NULL) {
        *out = xstrdup(s->literal);
        return 0;
    }
    if (s->path == NULL && s->call == NULL)
        return 0;
    struct asl_scope sc;
    frame_scope(f, &sc, f->input);
    struct err e2 = ERR_INIT;
    json_t *v = s->path != NULL ? asl_path_eval(s->path, &sc, &e2)
                                : asl_intrinsic_eval(s->call, &sc, &e2);
    if (v == NULL) {
        if (s->path != NULL) {
            err_clear(&e2);
            char *in = json_compact(f->input);
            err_set(err, ASL_ERR_RUNTIME,
                    "The JSONPath '%s' specified for the field '%s' could not be found in the "
                    "input '%s'",
                    asl_path_text(s->path), s->field, in);
            free(in);
            return -1;
        }
        err_move(err, &e2);
        return -1;
    }
    if (json_is_string(v)) {
        *out = xstrdup(json_string_value(v));
    } else {
        *out = json_compact(v); /* AWS requires a string; render other values as JSON */
    }
    json_decref(v);
    return 0;
}

static void fail_run(struct frame *f)
{
    struct err err = ERR_INIT;
    char *error = NULL;
    char *cause = NULL;
    if (strsrc_eval(f, &f->st->error, &error, &err) != 0 ||
        strsrc_eval(f, &f->st->cause, &cause, &err) != 0) {
        free(error);
        frame_state_failed(f, &err, true);
        return;
    }
    err.set = true;
    err_clear(&err);
    err_set_raw(&err, error, cause);
    free(error);
    free(cause);
    frame_state_failed(f, &err, false); /* no Retry/Catch on Fail: the frame fails */
}

const struct state_ops state_fail_ops = {
    .run = fail_run,
};
