/* tests/crash/crashd.c - the crash test's worker: an embedder of libsfn on a store. It
 * recovers every unfinished execution of --db, starts those of exec-0 .. exec-N-1 that the
 * store does not hold yet, and runs until all have ended. Its Task resource
 * (arn:aws:lambda:us-east-1:123456789012:function:crash-test) completes each attempt asynchronously 30-250 ms later and appends
 * one line "S <token>" to --log for every submission, so the test can count them; after a
 * restart, `resume` reconciles by token: an attempt already in the log is not submitted
 * again, one that is missing (the process died between the commit and the submission) is.
 * The attempt fails with Test.Flaky while its number is below the input's fail_attempts.
 *
 *   crashd --db FILE --log FILE --definition FILE --count N [--durability full|normal|off]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "sfn.h"
#include "tests/unit/testlib.h"

struct job {
    uv_timer_t timer;
    struct sfn_task *task; /* NULL once cancelled or detached */
};

static int log_fd = -1;
static char **seen;       /* tokens already submitted (from the log and this process) */
static size_t n_seen, cap_seen;
static size_t running;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static bool was_submitted(const char *token)
{
    for (size_t i = 0; i < n_seen; i++) {
        if (strcmp(seen[i], token) == 0)
            return true;
    }
    return false;
}

static void remember(const char *token)
{
    if (n_seen == cap_seen) {
        cap_seen = cap_seen ? cap_seen * 2 : 64;
        seen = realloc(seen, cap_seen * sizeof(*seen));
    }
    seen[n_seen++] = strdup(token);
}

static void submit(const char *token)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "S %s\n", token);
    if (write(log_fd, line, (size_t)n) != n) /* O_APPEND: one write per line */
        abort();
    remember(token);
}

static void on_job_closed(uv_handle_t *h)
{
    free(h->data);
}

static void job_end(struct job *j)
{
    uv_timer_stop(&j->timer);
    j->timer.data = j;
    uv_close((uv_handle_t *)&j->timer, on_job_closed);
}

static void on_job_due(uv_timer_t *h)
{
    struct job *j = h->data;
    struct sfn_task *t = j->task;
    json_t *in = sfn_task_input(t);
    json_int_t value = json_integer_value(json_object_get(in, "value"));
    json_int_t fail = json_integer_value(json_object_get(in, "fail_attempts"));
    sfn_task_set_data(t, NULL);
    job_end(j);
    if (sfn_task_attempt(t) < fail) {
        sfn_task_fail(t, "Test.Flaky", "this attempt fails by design");
        return;
    }
    json_t *out = json_pack("{s:I}", "doubled", value * 2);
    sfn_task_succeed(t, out);
    json_decref(out);
}

static void job_arm(struct sfn_task *t)
{
    struct job *j = calloc(1, sizeof(*j));
    j->task = t;
    uv_timer_init(uv_default_loop(), &j->timer);
    j->timer.data = j;
    uv_timer_start(&j->timer, on_job_due, 30 + hash(sfn_task_token(t)) % 220, 0);
    sfn_task_set_data(t, j);
}

static int res_start(struct sfn_task *t, void *arg, struct err *err)
{
    (void)arg;
    (void)err;
    submit(sfn_task_token(t));
    job_arm(t);
    return 0;
}

static int res_resume(struct sfn_task *t, void *arg, struct err *err)
{
    (void)arg;
    (void)err;
    if (!was_submitted(sfn_task_token(t)))
        submit(sfn_task_token(t)); /* the commit happened, the submission did not */
    job_arm(t);
    return 0;
}

static void res_drop(struct sfn_task *t, void *arg)
{
    (void)arg;
    struct job *j = sfn_task_data(t);
    if (j != NULL)
        job_end(j);
}

static const struct sfn_resource_ops res_ops = {
    .start = res_start, .cancel = res_drop, .resume = res_resume, .detach = res_drop};

static void on_done(struct sfn_execution *ex, void *arg)
{
    (void)arg;
    running--;
    sfn_execution_free(ex);
}

static void load_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == 'S' && line[1] == ' ')
            remember(line + 2);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *db = NULL, *logp = NULL, *defp = NULL;
    long count = 0;
    struct sfn_store_options so = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--db") == 0)
            db = argv[i + 1];
        else if (strcmp(argv[i], "--log") == 0)
            logp = argv[i + 1];
        else if (strcmp(argv[i], "--definition") == 0)
            defp = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            count = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--durability") == 0)
            so.durability = strcmp(argv[i + 1], "off") == 0      ? SFN_DURABILITY_OFF
                            : strcmp(argv[i + 1], "normal") == 0 ? SFN_DURABILITY_NORMAL
                                                                 : SFN_DURABILITY_FULL;
    }
    if (db == NULL || logp == NULL || defp == NULL) {
        fprintf(stderr, "usage: crashd --db FILE --log FILE --definition FILE --count N\n");
        return 2;
    }
    load_log(logp);
    log_fd = open(logp, O_WRONLY | O_APPEND | O_CREAT, 0600);
    size_t def_len = 0;
    char *def = tl_read_file(defp, &def_len);
    if (log_fd < 0 || def == NULL)
        return 2;

    uv_loop_t *loop = uv_default_loop();
    struct sfn_engine_options eo = {false, -1, 1, NULL, NULL, 0};
    struct sfn_engine *eng = sfn_engine_new(loop, &eo);
    sfn_engine_register_resource(eng, "arn:aws:lambda:us-east-1:123456789012:function:crash-test", &res_ops, NULL, NULL);
    struct err err = ERR_INIT;
    struct sfn_store *st = sfn_store_open(db, &so, &err);
    struct sfn_execution_options xo = {NULL, NULL, on_done, NULL, NULL};
    size_t resumed = 0;
    struct sfn_machine *m = NULL;
    if (st == NULL || sfn_store_attach(st, eng, &err) != 0 ||
        sfn_store_recover(st, eng, &xo, &resumed, &err) != 0 ||
        (m = sfn_store_machine(st, eng, "crash", def, def_len, SFN_STANDARD, NULL, &err)) ==
            NULL) {
        fprintf(stderr, "crashd: %s\n", err.cause);
        return 2;
    }
    running = resumed;
    for (long i = 0; i < count; i++) {
        char name[32];
        snprintf(name, sizeof(name), "exec-%ld", i);
        char arn[128];
        snprintf(arn, sizeof(arn), "arn:aws:states:us-east-1:123456789012:execution:crash:%s",
                 name);
        bool exists = sfn_store_execution_exists(st, arn);
        if (exists)
            continue;
        json_t *in = json_pack("{s:I,s:I}", "n", (json_int_t)i, "fail",
                               (json_int_t)(i % 3 == 0 ? 9 : 2));
        xo.name = name;
        if (sfn_execution_start(eng, m, in, &xo, &err) == NULL) {
            fprintf(stderr, "crashd: %s\n", err.cause);
            return 2;
        }
        json_decref(in);
        running++;
    }
    sfn_machine_free(m);
    uv_run(loop, UV_RUN_DEFAULT);
    int rc = sfn_engine_persist_error(eng) != NULL || running != 0 ? 1 : 0;
    sfn_engine_free(eng);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    sfn_store_close(st);
    close(log_fd);
    for (size_t i = 0; i < n_seen; i++)
        free(seen[i]);
    free(seen);
    free(def);
    return rc;
}
