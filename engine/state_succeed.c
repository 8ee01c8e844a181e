/* engine/state_succeed.c - Succeed: ends the machine, branch or iteration (asl.md 10.5). */
#include "engine/internal.h"

static void succeed_run(struct frame *f)
{
    struct err err = ERR_INIT;
    json_t *eff = frame_effective_input(f, &err);
    json_t *out;
    if (eff == NULL || frame_finish_result(f, f->input, eff, &out, &err) != 0) {
        frame_state_failed(f, &err, true);
        return;
    }
    frame_state_done(f, out); /* Next is ASL_NO_STATE: the frame ends */
}

const struct state_ops state_succeed_ops = {
    .run = succeed_run,
};
