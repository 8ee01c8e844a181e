/* tests/unit/test_redrive.c - RedriveExecution in the engine (api.md 9.2), as data: each
 * tests/redrive/<case>/ holds definition.json, input.json and expect.json. The execution runs
 * on a virtual clock (stopped after `stop_after_turns` loop turns when given) until it ends
 * with expect's "first" status and error; its checkpoint goes through text (as a store keeps
 * it) into sfn_execution_redrive, on a new engine every other case; the redriven execution
 * must end with "after" (status, error, output), record ExecutionRedriven as event
 * n_events + 1 followed by "after_events" (when given), and the Task handler must have seen
 * "starts" starts per task id: a succeeded state, branch or iteration is never run again.
 * "redrive_error" instead expects sfn_execution_redrive to refuse with that error name.
 *
 * The Task resource "arn:aws:states:::test:job" completes at once: it fails with Job.Failed
 * when its input's "redrive" (set from $$.Execution.RedriveCount) is in its "fail_on" list,
 * else it succeeds with its "value" (or null), counting starts per input "id"; when "redrive"
 * is in its "hold_on" list it stays in flight (to be stopped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sfn.h"
#include "tests/unit/testlib.h"
#include "util/json.h"
#include "util/xalloc.h"

struct world {
    uv_loop_t loop;
    struct sfn_engine *eng;
    struct sfn_machine *m;
    json_t *starts; /* id -> count (owned) */
    bool done;
};

static int job_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    struct world *w = arg;
    json_t *in = sfn_task_input(t);
    const char *id = json_string_value(json_object_get(in, "id"));
    if (id != NULL) {
        json_int_t n = json_integer_value(json_object_get(w->starts, id));
        json_object_set_new(w->starts, id, json_integer(n + 1));
    }
    json_t *redrive = json_object_get(in, "redrive");
    json_t *fail_on = json_object_get(in, "fail_on");
    size_t i;
    json_t *v;
    json_array_foreach(fail_on, i, v) {
        if (json_equal(v, redrive)) {
            sfn_task_fail(t, "Job.Failed", "the job failed");
            return 0;
        }
    }
    json_array_foreach(json_object_get(in, "hold_on"), i, v) {
        if (json_equal(v, redrive))
            return 0; /* stays in flight */
    }
    json_t *value = json_object_get(in, "value");
    sfn_task_succeed(t, value != NULL ? value : json_null());
    return 0;
}

static const struct sfn_resource_ops job_ops = {.start = job_start};

static void on_done(struct sfn_execution *ex, void *arg)
{
    (void)ex;
    ((struct world *)arg)->done = true;
}

static void world_open(struct world *w, const char *def, size_t len)
{
    struct sfn_engine_options o = {true, -1, 7, NULL, NULL, 1700000000000};
    struct err err = ERR_INIT;
    w->eng = sfn_engine_new(&w->loop, &o);
    sfn_engine_keep_history(w->eng, true);
    sfn_engine_register_resource(w->eng, "arn:aws:states:::test:job", &job_ops, w, &err);
    w->m = sfn_machine_compile(w->eng, def, len, "Redrive", SFN_STANDARD, &err);
    if (w->m == NULL) {
        fprintf(stdout, "compile: %s\n", err.cause);
        exit(2);
    }
}

static void world_close(struct world *w)
{
    sfn_machine_free(w->m);
    sfn_engine_free(w->eng);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    w->m = NULL;
    w->eng = NULL;
}

static void run(struct world *w, struct sfn_execution *ex, int stop_after)
{
    w->done = false;
    for (int turn = 0; !w->done && turn < 100000; turn++) {
        if (stop_after > 0 && turn == stop_after && sfn_execution_status(ex) == SFN_RUNNING)
            sfn_execution_stop(ex, "Test.Stop", NULL);
        uv_run(&w->loop, UV_RUN_ONCE);
    }
}

/* Checks status, error and output of `ex` against `want` ({"status", "error"?, "output"?}). */
static void check_end(struct tl *t, const char *where, struct sfn_execution *ex, json_t *want)
{
    const char *status = json_string_value(json_object_get(want, "status"));
    const char *got = sfn_status_name(sfn_execution_status(ex));
    tl_check(t, status != NULL && strcmp(status, got) == 0, where, "status %s, want %s", got,
             status);
    const char *error = json_string_value(json_object_get(want, "error"));
    const struct err *e = sfn_execution_error(ex);
    if (error != NULL)
        tl_check(t, e->set && strcmp(e->name, error) == 0, where, "error '%s', want '%s'",
                 e->set ? e->name : "", error);
    json_t *output = json_object_get(want, "output");
    if (output != NULL) {
        json_t *out = sfn_execution_output(ex);
        char *a = out != NULL ? json_compact(out) : xstrdup("(none)");
        char *b = json_compact(output);
        tl_check(t, out != NULL && json_equal(out, output), where, "output %s, want %s", a, b);
        free(a);
        free(b);
    }
}

static void one_case(const char *dir, struct tl *t, bool new_engine)
{
    char path[512];
    size_t def_len = 0;
    snprintf(path, sizeof(path), "%s/definition.json", dir);
    char *def = tl_read_file(path, &def_len);
    snprintf(path, sizeof(path), "%s/input.json", dir);
    char *in_text = tl_read_file(path, NULL);
    snprintf(path, sizeof(path), "%s/expect.json", dir);
    char *exp_text = tl_read_file(path, NULL);
    struct err err = ERR_INIT;
    json_t *input = in_text != NULL ? json_parse(in_text, strlen(in_text), false, &err) : NULL;
    json_t *expect = exp_text != NULL ? json_parse(exp_text, strlen(exp_text), false, &err)
                                      : NULL;
    if (def == NULL || expect == NULL) {
        tl_check(t, false, dir, "cannot read the case");
        goto out;
    }
    struct world w = {0};
    uv_loop_init(&w.loop);
    w.starts = json_object();
    world_open(&w, def, def_len);
    struct sfn_execution_options eo = {"run-1", NULL, on_done, NULL, &w};
    struct sfn_execution *ex = sfn_execution_start(w.eng, w.m, input, &eo, &err);
    run(&w, ex, (int)json_integer_value(json_object_get(expect, "stop_after_turns")));
    check_end(t, dir, ex, json_object_get(expect, "first"));
    json_t *cp = sfn_execution_checkpoint(ex);
    char *text = json_compact(cp);
    json_decref(cp);
    size_t n_events = sfn_execution_history_size(ex);
    sfn_execution_free(ex);
    if (new_engine) {
        world_close(&w);
        world_open(&w, def, def_len);
    }
    cp = json_parse(text, strlen(text), false, &err);
    free(text);
    ex = sfn_execution_redrive(w.eng, w.m, cp, &eo, &err);
    json_decref(cp);
    const char *refuse = json_string_value(json_object_get(expect, "redrive_error"));
    if (refuse != NULL) {
        tl_check(t, ex == NULL && strcmp(err.name, refuse) == 0, dir,
                 "redrive refused with '%s', want '%s'", err.name, refuse);
        sfn_execution_free(ex);
        goto close;
    }
    if (ex == NULL) {
        tl_check(t, false, dir, "redrive failed: %s", err.cause != NULL ? err.cause : err.name);
        goto close;
    }
    tl_check(t, sfn_execution_status(ex) == SFN_RUNNING && sfn_execution_redrive_count(ex) == 1,
             dir, "RUNNING with redrive count 1 after the redrive");
    run(&w, ex, 0);
    check_end(t, dir, ex, json_object_get(expect, "after"));
    /* the history goes on from the same ids: ExecutionRedriven is event n_events + 1 */
    size_t first = sfn_execution_history_first(ex);
    json_t *ev = sfn_execution_event(ex, first, false);
    tl_check(t, first == n_events && ev != NULL &&
                 json_integer_value(json_object_get(ev, "id")) == (json_int_t)n_events + 1 &&
                 strcmp(sfn_execution_event_type(ex, first), "ExecutionRedriven") == 0,
             dir, "ExecutionRedriven is event %zu", n_events + 1);
    json_decref(ev);
    json_t *after_events = json_object_get(expect, "after_events");
    if (after_events != NULL) {
        json_t *types = json_array();
        for (size_t i = first; i < sfn_execution_history_size(ex); i++)
            json_array_append_new(types, json_string(sfn_execution_event_type(ex, i)));
        char *a = json_compact(types);
        tl_check(t, json_equal(types, after_events), dir, "events after the redrive %s", a);
        free(a);
        json_decref(types);
    }
    sfn_execution_free(ex);
close : {
    json_t *starts = json_object_get(expect, "starts");
    if (starts != NULL) {
        char *a = json_compact(w.starts);
        tl_check(t, json_equal(w.starts, starts), dir, "task starts %s", a);
        free(a);
    }
}
    world_close(&w);
    json_decref(w.starts);
    tl_check(t, uv_loop_close(&w.loop) == 0, dir, "loop closed");
out:
    err_clear(&err);
    json_decref(input);
    json_decref(expect);
    free(def);
    free(in_text);
    free(exp_text);
}

int main(void)
{
    struct tl t = {0, 0};
    struct dirent **names = NULL;
    int n = scandir("tests/redrive", &names, NULL, alphasort);
    int cases = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char dir[300];
            snprintf(dir, sizeof(dir), "tests/redrive/%s", names[i]->d_name);
            one_case(dir, &t, cases % 2 == 1);
            cases++;
        }
        free(names[i]);
    }
    free(names);
    tl_check(&t, cases > 2, "tests/redrive", "no cases found");
    return tl_finish(&t);
}
