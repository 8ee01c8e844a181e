/* engine/state_choice.c - Choice: the first matching rule's Next, else Default, else
 * States.NoChoiceMatched (asl.md 7). Output is OutputPath(InputPath(input)). */
#include "engine/internal.h"

static void choice_run(struct frame *f)
{
    const struct asl_state *st = f->st;
    struct err err;
    err_init(&err);
    json_t *eff = frame_effective_input(f, &err);
    if (eff == NULL) {
        frame_state_failed(f, &err, true);
        return;
    }
    struct asl_scope s;
    frame_scope(f, &s, eff);
    int next = st->default_next;
    for (size_t i = 0; i < st->n_choices; i++) {
        bool match = false;
        if (asl_rule_eval(st->choices[i].rule, &s, &match, &err) != 0) {
            json_decref(eff);
            frame_state_failed(f, &err, true);
            return;
        }
        if (match) {
            next = st->choices[i].next;
            break;
        }
    }
    if (next == ASL_NO_STATE) {
        json_decref(eff);
        err_set(&err, ASL_ERR_NO_CHOICE,
                "No Choice Rule matched the input and the state '%s' has no Default",
                st->name);
        frame_state_failed(f, &err, false);
        return;
    }
    json_t *out;
    if (frame_finish_result(f, f->input, eff, &out, &err) != 0) {
        frame_state_failed(f, &err, true);
        return;
    }
    frame_state_exit(f, out, next);
}

const struct state_ops state_choice_ops = {
    .run = choice_run,
};
