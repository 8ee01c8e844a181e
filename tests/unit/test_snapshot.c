/* tests/unit/test_snapshot.c - every execution can be written out and read back to continue
 * exactly where it was (issue 2, "design the frames for durability"). For each case in
 * tests/snapshot/<case>/ (definition.json, input.json) the execution runs once straight
 * through, then again with, after EVERY loop turn, a snapshot, the in-memory execution
 * released (tasks detached, never cancelled) and restored from the snapshot (every third
 * time into a brand-new engine and machine). Both runs must end with the same status,
 * output, error and history event types, and every task attempt must have been submitted
 * to the fake job service exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sfn.h"
#include "tests/unit/testlib.h"
#include "util/json.h"
#include "util/xalloc.h"

/* ---- a fake asynchronous job service: jobs outlive executions and engines ---- */

struct job {
    char *token;           /* the attempt's token (the idempotency key) */
    int submissions;       /* start calls seen for this token */
    int turns;             /* ticks left before it ends */
    char *fail;            /* error to end with, or NULL */
    json_t *result;        /* output when it succeeds */
    struct sfn_task *task; /* attached attempt, or NULL while detached */
    bool finished;
    bool cancelled;
};

struct jobs {
    struct job *v;
    size_t n;
    uv_timer_t tick;
};

static struct job *job_find(struct jobs *js, const char *token)
{
    for (size_t i = 0; i < js->n; i++) {
        if (strcmp(js->v[i].token, token) == 0)
            return &js->v[i];
    }
    return NULL;
}

static void job_deliver(struct job *j)
{
    struct sfn_task *t = j->task;
    j->task = NULL;
    if (j->fail != NULL)
        sfn_task_fail(t, j->fail, "the job failed");
    else
        sfn_task_succeed(t, j->result);
}

static void on_tick(uv_timer_t *h)
{
    struct jobs *js = h->data;
    for (size_t i = 0; i < js->n; i++) {
        struct job *j = &js->v[i];
        if (j->finished || j->cancelled)
            continue;
        if (--j->turns <= 0) {
            j->finished = true;
            if (j->task != NULL)
                job_deliver(j);
        }
    }
}

static int job_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)err;
    struct jobs *js = arg;
    struct job *j = job_find(js, sfn_task_token(t));
    if (j == NULL) {
        js->v = xrealloc(js->v, (js->n + 1) * sizeof(*js->v));
        j = &js->v[js->n++];
        memset(j, 0, sizeof(*j));
        j->token = xstrdup(sfn_task_token(t));
        json_t *in = sfn_task_input(t);
        json_t *turns = json_object_get(in, "turns");
        j->turns = json_is_integer(turns) ? (int)json_integer_value(turns) : 2;
        json_t *ff = json_object_get(in, "fail_first");
        const char *fail = json_string_value(json_object_get(in, "fail"));
        if (json_is_integer(ff) && sfn_task_attempt(t) < json_integer_value(ff))
            fail = "Job.Transient";
        j->fail = fail != NULL ? xstrdup(fail) : NULL;
        j->result = json_pack("{s:O,s:i}", "input", in, "attempt", sfn_task_attempt(t));
    }
    j->submissions++;
    j->task = t;
    json_t *state = json_pack("{s:s}", "job", j->token); /* what a real handler keeps */
    sfn_task_set_state(t, state);
    json_decref(state);
    return 0;
}

static int job_resume(struct sfn_task *t, void *arg, struct err *err)
{
    struct jobs *js = arg;
    struct job *j = job_find(js, sfn_task_token(t));
    if (j == NULL)
        return err_set(err, "Job.Lost", "no job for token %s", sfn_task_token(t));
    const char *kept = json_string_value(json_object_get(sfn_task_state(t), "job"));
    if (kept == NULL || strcmp(kept, j->token) != 0) /* sfn_task_set_state survives restores */
        return err_set(err, "Job.StateLost", "the handler's state of %s was not restored",
                       sfn_task_token(t));
    j->task = t;
    if (j->finished)
        job_deliver(j);
    return 0;
}

static void job_detach(struct sfn_task *t, void *arg)
{
    struct job *j = job_find(arg, sfn_task_token(t));
    if (j != NULL)
        j->task = NULL;
}

static void job_cancel(struct sfn_task *t, void *arg)
{
    struct job *j = job_find(arg, sfn_task_token(t));
    if (j != NULL) {
        j->task = NULL;
        j->cancelled = true;
    }
}

static const struct sfn_resource_ops job_ops = {
    .start = job_start, .cancel = job_cancel, .resume = job_resume, .detach = job_detach};

static void jobs_release(struct jobs *js)
{
    for (size_t i = 0; i < js->n; i++) {
        free(js->v[i].token);
        free(js->v[i].fail);
        json_decref(js->v[i].result);
    }
    free(js->v);
    js->v = NULL;
    js->n = 0;
}

/* ---- running a case ---- */

struct outcome {
    enum sfn_status status;
    json_t *output;    /* owned */
    char *error;       /* owned */
    char *cause;       /* owned */
    json_t *types;     /* owned array of event type names */
    int restores;
};

struct world {
    uv_loop_t *loop;
    struct jobs *jobs;
    struct sfn_engine *eng;
    struct sfn_machine *m;
    const char *def;
    size_t def_len;
};

static void world_open(struct world *w)
{
    /* a fixed virtual start: both runs see the same timestamps ($$.State.EnteredTime) */
    struct sfn_engine_options o = {true, -1, 7, NULL, NULL, 1700000000000};
    struct err err = ERR_INIT;
    w->eng = sfn_engine_new(w->loop, &o);
    sfn_engine_register_resource(w->eng, "arn:aws:states:::test:job", &job_ops, w->jobs, &err);
    w->m = sfn_machine_compile(w->eng, w->def, w->def_len, "Snap", SFN_STANDARD, &err);
    if (w->m == NULL) {
        fprintf(stderr, "compile: %s\n", err.cause);
        exit(2);
    }
}

static void world_close(struct world *w)
{
    sfn_machine_free(w->m);
    sfn_engine_free(w->eng);
    w->m = NULL;
    w->eng = NULL;
}

static void outcome_take(struct outcome *o, struct sfn_execution *ex)
{
    o->status = sfn_execution_status(ex);
    json_t *out = sfn_execution_output(ex);
    o->output = out != NULL ? json_incref(out) : NULL;
    const struct err *e = sfn_execution_error(ex);
    o->error = e->set && e->name[0] != '\0' ? xstrdup(e->name) : NULL;
    o->cause = e->set && e->cause != NULL ? xstrdup(e->cause) : NULL;
    o->types = json_array();
    for (size_t i = 0; i < sfn_execution_history_size(ex); i++)
        json_array_append_new(o->types, json_string(sfn_execution_event_type(ex, i)));
}

static void outcome_release(struct outcome *o)
{
    json_decref(o->output);
    json_decref(o->types);
    free(o->error);
    free(o->cause);
}

/* Runs the case; with `restart`, snapshots and restores after every loop turn. */
static void run_case(struct world *w, json_t *input, bool restart, struct outcome *o)
{
    struct err err = ERR_INIT;
    struct sfn_execution_options eo = {"run-1", NULL, NULL, NULL, NULL};
    world_open(w);
    struct sfn_execution *ex = sfn_execution_start(w->eng, w->m, input, &eo, &err);
    o->restores = 0;
    for (int turn = 0; sfn_execution_status(ex) == SFN_RUNNING && turn < 100000; turn++) {
        uv_run(w->loop, UV_RUN_ONCE);
        if (!restart || sfn_execution_status(ex) != SFN_RUNNING)
            continue;
        json_t *snap = sfn_execution_snapshot(ex);
        /* through text, as a store would keep it */
        char *text = json_compact(snap);
        json_decref(snap);
        sfn_execution_release(ex);
        if (turn % 3 == 2) {
            world_close(w);
            uv_run(w->loop, UV_RUN_NOWAIT); /* let the old engine's handles close */
            world_open(w);
        }
        snap = json_parse(text, strlen(text), false, &err);
        free(text);
        ex = sfn_execution_restore(w->eng, w->m, snap, &eo, &err);
        json_decref(snap);
        if (ex == NULL) {
            fprintf(stdout, "restore failed: %s\n", err.cause);
            exit(2);
        }
        o->restores++;
    }
    outcome_take(o, ex);
    sfn_execution_free(ex);
    world_close(w);
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool same_multiset(json_t *a, json_t *b)
{
    size_t n = json_array_size(a);
    if (n != json_array_size(b))
        return false;
    const char **x = xcalloc(n + 1, sizeof(char *));
    const char **y = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        x[i] = json_string_value(json_array_get(a, i));
        y[i] = json_string_value(json_array_get(b, i));
    }
    qsort(x, n, sizeof(char *), cmp_str);
    qsort(y, n, sizeof(char *), cmp_str);
    bool same = true;
    for (size_t i = 0; i < n && same; i++)
        same = strcmp(x[i], y[i]) == 0;
    free(x);
    free(y);
    return same;
}

struct ctx {
    struct tl *t;
    uv_loop_t *loop;
};

static void one_case(const char *dir, struct ctx *c)
{
    char path[4200];
    size_t def_len = 0;
    snprintf(path, sizeof(path), "%s/definition.json", dir);
    char *def = tl_read_file(path, &def_len);
    if (def == NULL) {
        tl_check(c->t, false, dir, "no definition.json");
        return;
    }
    snprintf(path, sizeof(path), "%s/input.json", dir);
    json_error_t je;
    json_t *input = json_load_file(path, 0, &je);

    struct jobs js = {NULL, 0, {0}};
    uv_timer_init(c->loop, &js.tick);
    js.tick.data = &js;
    uv_timer_start(&js.tick, on_tick, 1, 1);
    struct world w = {c->loop, &js, NULL, NULL, def, def_len};

    struct outcome ref, snap;
    run_case(&w, input, false, &ref);
    size_t ref_jobs = js.n;
    jobs_release(&js);
    run_case(&w, input, true, &snap);

    tl_check(c->t, snap.restores > 0, dir, "never restored");
    tl_check(c->t, ref.status == snap.status, dir, "status %s, straight run %s",
             sfn_status_name(snap.status), sfn_status_name(ref.status));
    tl_check(c->t, json_value_equal(ref.output, snap.output), dir, "outputs differ");
    tl_check(c->t, same_str(ref.error, snap.error) && same_str(ref.cause, snap.cause), dir,
             "error differs: %s / %s", snap.error ? snap.error : "-", ref.error ? ref.error : "-");
    /* concurrent branches and iterations may interleave differently: compare as multisets */
    tl_check(c->t, same_multiset(ref.types, snap.types), dir, "history event types differ");
    tl_check(c->t, ref_jobs == js.n, dir, "%zu task attempts, straight run %zu", js.n, ref_jobs);
    int twice = 0;
    for (size_t i = 0; i < js.n; i++)
        twice += js.v[i].submissions != 1;
    tl_check(c->t, twice == 0, dir, "%d task attempts were submitted more than once", twice);
    printf("%s: %s after %d restores, %zu jobs\n", dir, sfn_status_name(snap.status),
           snap.restores, js.n);
    outcome_release(&ref);
    outcome_release(&snap);
    jobs_release(&js);
    uv_close((uv_handle_t *)&js.tick, NULL);
    uv_run(c->loop, UV_RUN_DEFAULT);
    json_decref(input);
    free(def);
}

int main(void)
{
    xalloc_install_jansson();
    struct tl t = {0, 0};
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct ctx c = {&t, &loop};
    struct dirent **names;
    int n = scandir("tests/snapshot", &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char dir[4096];
            snprintf(dir, sizeof(dir), "tests/snapshot/%s", names[i]->d_name);
            one_case(dir, &c);
        }
        free(names[i]);
    }
    free(names);
    tl_check(&t, n > 2, "tests/snapshot", "no cases found");
    tl_check(&t, uv_loop_close(&loop) == 0, "loop", "handles left open");
    return tl_finish(&t);
}
