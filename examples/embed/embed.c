/* examples/embed/embed.c - embedding libsfn in a program of your own (include/sfn.h).
 *
 * The engine runs on the caller's libuv loop. This program
 *   1. creates a loop and an engine on it,
 *   2. registers its own Task resource, arn:aws:states:::myapp:greet, which answers
 *      asynchronously from a uv_timer (as a real handler would from a socket),
 *   3. compiles an inline definition that calls it with a Retry,
 *   4. starts one execution, runs the loop until it ends, prints the output and the history,
 *   5. frees everything and checks that the loop closes cleanly.
 *
 * The greeter is busy on the first attempt (error MyApp.Busy), so the Retry is exercised.
 * Build: make (build/examples/embed). Run: build/examples/embed [NAME] */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sfn.h"
#include "util/err.h"

#define GREET_DELAY_MS 20 /* how long our pretend service takes to answer */

static const char definition[] =
    "{\n"
    "  \"Comment\": \"Greets someone through the application's own Task resource\",\n"
    "  \"StartAt\": \"Greet\",\n"
    "  \"States\": {\n"
    "    \"Greet\": {\n"
    "      \"Type\": \"Task\",\n"
    "      \"Resource\": \"arn:aws:states:::myapp:greet\",\n"
    "      \"Parameters\": {\"name.$\": \"$.who\"},\n"
    "      \"Retry\": [{\"ErrorEquals\": [\"MyApp.Busy\"], \"IntervalSeconds\": 1,\n"
    "                   \"MaxAttempts\": 2}],\n"
    "      \"ResultPath\": \"$.result\",\n"
    "      \"Next\": \"Done\"\n"
    "    },\n"
    "    \"Done\": {\n"
    "      \"Type\": \"Pass\",\n"
    "      \"Parameters\": {\"message.$\": \"$.result.greeting\"},\n"
    "      \"End\": true\n"
    "    }\n"
    "  }\n"
    "}\n";

/* ---- the application's Task resource ---- */

/* One attempt of the greet task: the timer that will answer it. */
struct greet_call {
    uv_timer_t timer;      /* fires when the "service" answers */
    struct sfn_task *task; /* the engine's attempt; NULL once answered or cancelled */
};

static void on_greet_close(uv_handle_t *h)
{
    free(h->data); /* memory is released in the close callback (STYLE.md) */
}

static void greet_call_end(struct greet_call *c)
{
    c->task = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_greet_close);
}

static void on_greet_timer(uv_timer_t *timer)
{
    struct greet_call *c = timer->data;
    struct sfn_task *t = c->task;
    greet_call_end(c);
    if (sfn_task_attempt(t) == 0) {
        /* a transient failure: the state's Retry catches MyApp.Busy and tries again */
        sfn_task_fail(t, "MyApp.Busy", "the greeter is busy, try again");
        return;
    }
    const char *name = json_string_value(json_object_get(sfn_task_input(t), "name"));
    char text[256];
    snprintf(text, sizeof(text), "Hello, %s!", name);
    json_t *result = json_pack("{s:s}", "greeting", text);
    sfn_task_succeed(t, result); /* borrows result; `t` is gone afterwards */
    json_decref(result);
}

/* Starts one attempt. Returning -1 fails it at once with err's name and cause; returning 0
 * promises a later sfn_task_succeed/sfn_task_fail (or a cancel from the engine). */
static int greet_start(struct sfn_task *t, void *arg, struct err *err)
{
    uv_loop_t *loop = arg;
    json_t *name = json_object_get(sfn_task_input(t), "name"); /* borrowed */
    if (!json_is_string(name))
        return err_set(err, "MyApp.InvalidInput", "'name' must be a string");
    struct greet_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->task = t;
    c->timer.data = c;
    uv_timer_init(loop, &c->timer);
    uv_timer_start(&c->timer, on_greet_timer, GREET_DELAY_MS, 0);
    sfn_task_set_data(t, c); /* so cancel can find the call */
    return 0;
}

/* The engine abandons the attempt (timeout, StopExecution, a failed sibling branch). */
static void greet_cancel(struct sfn_task *t, void *arg)
{
    (void)arg;
    struct greet_call *c = sfn_task_data(t);
    if (c != NULL)
        greet_call_end(c);
}

static const struct sfn_resource_ops greet_ops = {
    .start = greet_start,
    .cancel = greet_cancel,
};

/* ---- the program ---- */

static void on_done(struct sfn_execution *ex, void *arg)
{
    (void)arg;
    printf("execution %s ended: %s\n", sfn_execution_arn(ex),
           sfn_status_name(sfn_execution_status(ex)));
}

int main(int argc, char **argv)
{
    const char *who = argc > 1 ? argv[1] : "world";
    uv_loop_t loop;
    uv_loop_init(&loop);

    /* 1. the engine: real time (virtual_clock false), back-offs as the definition says */
    struct sfn_engine_options opt = {
        .virtual_clock = false,
        .retry_wait_ms = -1,
        .seed = 0,
        .region = NULL,
        .account = NULL,
    };
    struct sfn_engine *eng = sfn_engine_new(&loop, &opt);

    /* 2. our Task resource; `arg` is handed back to start and cancel */
    struct err err = ERR_INIT;
    if (sfn_engine_register_resource(eng, "arn:aws:states:::myapp:greet", &greet_ops, &loop,
                                     &err) != 0) {
        fprintf(stderr, "register: %s\n", err.cause);
        return 1;
    }

    /* 3. compile the definition (it is validated as AWS would) */
    struct sfn_machine *m =
        sfn_machine_compile(eng, definition, strlen(definition), "Greeter", SFN_STANDARD, &err);
    if (m == NULL) {
        fprintf(stderr, "%s: %s\n", err.name, err.cause);
        err_clear(&err);
        return 1;
    }

    /* 4. start an execution and run the loop until nothing is left to do */
    json_t *input = json_pack("{s:s}", "who", who);
    struct sfn_execution_options eo = {
        .name = "greet-1",
        .role_arn = NULL,
        .on_done = on_done,
        .on_event = NULL,
        .arg = NULL,
    };
    struct sfn_execution *ex = sfn_execution_start(eng, m, input, &eo, &err);
    json_decref(input); /* the engine keeps its own reference */
    if (ex == NULL) {
        fprintf(stderr, "%s: %s\n", err.name, err.cause);
        err_clear(&err);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);

    int rc = 0;
    if (sfn_execution_status(ex) == SFN_SUCCEEDED) {
        char *text = json_dumps(sfn_execution_output(ex), JSON_COMPACT); /* output: borrowed */
        printf("output: %s\n", text);
        free(text);
    } else {
        const struct err *e = sfn_execution_error(ex);
        printf("error: %s: %s\n", e->name, e->cause != NULL ? e->cause : "");
        rc = 1;
    }
    printf("history:\n");
    for (size_t i = 0; i < sfn_execution_history_size(ex); i++)
        printf("  %zu %s\n", i + 1, sfn_execution_event_type(ex, i));

    /* 5. free everything; the engine's handles close on the next run of the loop */
    sfn_execution_free(ex);
    sfn_machine_free(m);
    sfn_engine_free(eng);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "a handle was left open on the loop\n");
        rc = 1;
    }
    return rc;
}
