/* engine/state_pass.c - Pass: the result is Result, or the effective input (asl.md 10.1). */
#include "engine/internal.h"

static void pass_run(struct frame *f)
{
    struct err err;
    err_init(&err);
    json_t *eff = frame_effective_input(f, &err);
    if (eff == NULL) {
        frame_state_failed(f, &err, true);
        return;
    }
    json_t *result = eff;
    if (f->st->result != NULL) {
        json_decref(eff);
        result = json_incref(f->st->result);
    }
    json_t *out;
    if (frame_finish_result(f, f->input, result, &out, &err) != 0) {
        frame_state_failed(f, &err, true);
        return;
    }
    frame_state_done(f, out);
}

const struct state_ops state_pass_ops = {
    .run = pass_run,
};
