/* cli/cmd_run.c - `sfn run DEFINITION`: one execution in-process on a private libuv loop.
 * Prints the output (exit 0) or "Error: Cause" on stderr (exit 1); --result prints one JSON
 * object whatever the status; an invalid definition prints the diagnostics (exit 2). */
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "sfn.h"
#ifndef SFN_CLI_LITE
#include "sfn_integrations.h"
#endif
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

struct run {
    struct sfn_store *store; /* --db: the history is read back from there */
    bool history;   /* --history */
    bool result;    /* --result */
    bool events;    /* --events: add the event types to --result (conformance harness) */
    bool stats;     /* --stats: transitions and run time on stderr (benchmarks) */
    bool done;
};

static void on_event(struct sfn_execution *ex, size_t i, void *arg)
{
    struct run *r = arg;
    if (!r->history || r->result)
        return;
    json_t *e = sfn_execution_event(ex, i, true);
    char *s = json_compact(e);
    fprintf(stderr, "%s\n", s);
    free(s);
    json_decref(e);
}

static void on_done(struct sfn_execution *ex, void *arg)
{
    (void)ex;
    struct run *r = arg;
    r->done = true;
}

/* Final name of the machine: --state-machine-name, else the file name up to its first dot. */
static char *machine_name(const char *path, const char *given)
{
    if (given != NULL)
        return xstrdup(given);
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t n = strcspn(base, ".");
    return n > 0 ? xstrndup(base, n) : xstrdup("StateMachine");
}

struct collect {
    json_t *events; /* AWS shapes, or NULL */
    json_t *types;  /* type names, or NULL */
};

static int collect_event(json_t *e, void *arg)
{
    struct collect *c = arg;
    if (c->events != NULL)
        json_array_append(c->events, e);
    if (c->types != NULL)
        json_array_append(c->types, json_object_get(e, "type"));
    return 0;
}

/* The whole history (events and/or their types), from memory or from the store. */
static void history_of(struct sfn_execution *ex, struct run *r, json_t *events, json_t *types)
{
    struct collect c = {events, types};
    if (r->store != NULL) {
        struct err err = ERR_INIT;
        if (sfn_store_history(r->store, sfn_execution_arn(ex), 0, false, 0, true, collect_event,
                              &c, &err) < 0) {
            fprintf(stderr, "sfn run: %s\n", err.cause);
            err_clear(&err);
        }
        return;
    }
    size_t n = sfn_execution_history_size(ex);
    for (size_t i = 0; i < n; i++) {
        if (types != NULL)
            json_array_append_new(types, json_string(sfn_execution_event_type(ex, i)));
        if (events != NULL)
            json_array_append_new(events, sfn_execution_event(ex, i, true));
    }
}

static void print_result(struct sfn_execution *ex, struct run *r)
{
    enum sfn_status st = sfn_execution_status(ex);
    json_t *res = json_object();
    json_object_set_new(res, "status", json_string(sfn_status_name(st)));
    if (st == SFN_SUCCEEDED) {
        json_object_set(res, "output", sfn_execution_output(ex));
    } else {
        const struct err *e = sfn_execution_error(ex);
        if (e->set && e->name[0] != '\0')
            json_object_set_new(res, "error", json_string(e->name));
        if (e->set && e->cause != NULL)
            json_object_set_new(res, "cause", json_string(e->cause));
    }
    if (r->events || r->history) {
        json_t *types = r->events ? json_array() : NULL;
        json_t *h = r->history ? json_array() : NULL;
        history_of(ex, r, h, types);
        if (types != NULL)
            json_object_set_new(res, "events", types);
        if (h != NULL)
            json_object_set_new(res, "history", h);
    }
    struct buf b = BUF_INIT;
    json_compact_append(&b, res);
    buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, stdout);
    buf_release(&b);
    json_decref(res);
}

/* --stats: states entered (AWS's "state transitions") and the execution's run time. */
static void print_stats(struct sfn_execution *ex, struct run *r, uint64_t ns)
{
    size_t n = sfn_execution_history_size(ex);
    size_t transitions = 0;
    json_t *types = json_array();
    history_of(ex, r, NULL, types);
    for (size_t i = 0; i < json_array_size(types); i++) {
        const char *t = json_string_value(json_array_get(types, i));
        size_t l = strlen(t);
        if (l > 12 && strcmp(t + l - 12, "StateEntered") == 0)
            transitions++;
    }
    json_decref(types);
    /* VmHWM: this process image's peak resident set (getrusage would include the memory of
     * a parent that forked us before exec) */
    long hwm_kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f != NULL) {
        char line[256];
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, "VmHWM:", 6) == 0)
                hwm_kb = strtol(line + 6, NULL, 10);
        }
        fclose(f);
    }
    fprintf(stderr, "{\"transitions\":%zu,\"events\":%zu,\"run_ns\":%llu,\"peak_rss_kb\":%ld}\n",
            transitions, n, (unsigned long long)ns, hwm_kb);
}

#ifdef SFN_CLI_LITE
/* Whether a Task of `states` (and of the Parallel branches and Map processors inside) uses
 * an AWS integration that test case `tc` does not mock: then sfn-aws must run it. */
static bool states_need_aws(json_t *states, const struct sfn_mock *mock, const char *machine,
                            const char *tc)
{
    const char *name;
    json_t *st;
    json_object_foreach(states, name, st)
    {
        const char *res = json_string_value(json_object_get(st, "Resource"));
        if (res != NULL && cli_uses_integrations(res) &&
            !sfn_mock_mocks_state(mock, machine, tc, name))
            return true;
        json_t *branches = json_object_get(st, "Branches");
        for (size_t i = 0; i < json_array_size(branches); i++) {
            if (states_need_aws(json_object_get(json_array_get(branches, i), "States"), mock,
                                machine, tc))
                return true;
        }
        static const char *const inner[] = {"Iterator", "ItemProcessor"};
        for (size_t i = 0; i < 2; i++) {
            json_t *sub = json_object_get(json_object_get(st, inner[i]), "States");
            if (sub != NULL && states_need_aws(sub, mock, machine, tc))
                return true;
        }
    }
    return false;
}

static bool needs_aws(const char *def, size_t len, const struct sfn_mock *mock,
                      const char *machine, const char *tc)
{
    if (!cli_uses_integrations(def))
        return false;
    if (mock == NULL)
        return true;
    json_t *doc = json_loadb(def, len, 0, NULL);
    bool need = doc == NULL || states_need_aws(json_object_get(doc, "States"), mock, machine, tc);
    json_decref(doc);
    return need;
}
#endif

static int usage_error(const char *msg)
{
    fprintf(stderr,
            "sfn run: %s\nusage: sfn run DEFINITION [--input JSON | --input-file FILE] [--result] "
            "[--history] [--fast-time] [--name NAME] [--state-machine-name NAME] "
            "[--type STANDARD|EXPRESS] [--db FILE [--durability full|normal|off] "
            "[--db-max-size BYTES]] [--mock-config FILE --test-case NAME [--mock-only]]\n",
            msg);
    return 2;
}

int cmd_run(int argc, char **argv)
{
    const char *path = NULL;
    const char *input_text = NULL;
    const char *input_file = NULL;
    const char *exec_name = NULL;
    const char *sm_name = NULL;
    enum sfn_machine_type type = SFN_STANDARD;
    struct run r = {NULL, false, false, false, false, false};
    const char *db = NULL;
    const char *mock_path = NULL;
    const char *test_case = NULL;
    unsigned mock_flags = 0;
    struct sfn_store_options so = {0};
    struct sfn_engine_options opt = {false, -1, 0, NULL, NULL, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--input") == 0 && has_val) {
            input_text = argv[++i];
        } else if (strcmp(a, "--input-file") == 0 && has_val) {
            input_file = argv[++i];
        } else if (strcmp(a, "--name") == 0 && has_val) {
            exec_name = argv[++i];
        } else if (strcmp(a, "--state-machine-name") == 0 && has_val) {
            sm_name = argv[++i];
        } else if (strcmp(a, "--type") == 0 && has_val) {
            type = strcmp(argv[++i], "EXPRESS") == 0 ? SFN_EXPRESS : SFN_STANDARD;
        } else if (strcmp(a, "--result") == 0) {
            r.result = true;
        } else if (strcmp(a, "--history") == 0) {
            r.history = true;
        } else if (strcmp(a, "--events") == 0) {
            r.events = true;
        } else if (strcmp(a, "--stats") == 0) {
            r.stats = true;
        } else if (strcmp(a, "--fast-time") == 0) {
            opt.virtual_clock = true;
        } else if (strcmp(a, "--mock-config") == 0 && has_val) {
            mock_path = argv[++i];
        } else if (strcmp(a, "--test-case") == 0 && has_val) {
            test_case = argv[++i];
        } else if (strcmp(a, "--mock-only") == 0) {
            mock_flags |= SFN_MOCK_ONLY;
        } else if (strcmp(a, "--db") == 0 && has_val) {
            db = argv[++i];
        } else if ((strcmp(a, "--durability") == 0 || strcmp(a, "--db-max-size") == 0) &&
                   has_val) {
            if (cli_store_option(a, argv[++i], &so) != 0)
                return 2;
        } else if (a[0] == '-' && a[1] != '\0') {
            char msg[256];
            snprintf(msg, sizeof(msg), "unknown or incomplete option '%s'", a);
            return usage_error(msg);
        } else if (path == NULL) {
            path = a;
        } else {
            return usage_error("more than one definition given");
        }
    }
    if (path == NULL)
        return usage_error("no definition given");
    if (input_text != NULL && input_file != NULL)
        return usage_error("--input and --input-file are exclusive");
    if ((mock_path == NULL) != (test_case == NULL))
        return usage_error("--mock-config and --test-case go together");
    if (mock_path == NULL && mock_flags != 0)
        return usage_error("--mock-only needs --mock-config");
    const char *wait = getenv("ASL_RETRY_WAIT_MS");
    if (wait != NULL && wait[0] != '\0')
        opt.retry_wait_ms = strtoll(wait, NULL, 10);

    size_t def_len;
    char *def = cli_read_file(path, &def_len);
    if (def == NULL)
        return 2;
    char *name = machine_name(path, sm_name);
    struct sfn_mock *mock = NULL;
    if (mock_path != NULL) {
        struct err merr = ERR_INIT;
        mock = sfn_mock_load(mock_path, &merr);
        if (mock != NULL && !sfn_mock_has_test_case(mock, name, test_case))
            err_set(&merr, "MockConfigInvalid",
                    "mock config '%s' has no test case '%s' for state machine '%s' "
                    "(StateMachines.%s.TestCases.%s; the machine's name is --state-machine-name "
                    "or the definition file's name up to its first dot)",
                    mock_path, test_case, name, name, test_case);
        if (merr.set) {
            fprintf(stderr, "sfn run: %s\n", merr.cause);
            err_clear(&merr);
            sfn_mock_free(mock);
            free(name);
            free(def);
            return 2;
        }
    }
#ifdef SFN_CLI_LITE
    /* the AWS libraries load only when needed: not for integrations the test case mocks, nor
     * under --mock-only (an unmocked Task then fails) */
    if (!(mock_flags & SFN_MOCK_ONLY) && needs_aws(def, def_len, mock, name, test_case)) {
        sfn_mock_free(mock);
        free(name);
        free(def);
        return cli_exec_full();
    }
#endif
    char *in_buf = NULL;
    size_t in_len = 0;
    if (input_file != NULL) {
        in_buf = cli_read_file(input_file, &in_len);
        if (in_buf == NULL) {
            sfn_mock_free(mock);
            free(name);
            free(def);
            return 2;
        }
    } else if (input_text != NULL) {
        in_buf = xstrdup(input_text);
        in_len = strlen(in_buf);
    } else if (!isatty(STDIN_FILENO)) {
        in_buf = cli_read_file("-", &in_len);
        if (in_buf == NULL) {
            sfn_mock_free(mock);
            free(name);
            free(def);
            return 2;
        }
    }
    json_t *input = NULL;
    struct err err = ERR_INIT;
    size_t skip = 0;
    while (in_buf != NULL && skip < in_len && strchr(" \t\r\n", in_buf[skip]) != NULL)
        skip++;
    if (in_buf == NULL || skip == in_len) {
        input = json_object();
    } else {
        input = json_parse(in_buf, in_len, false, &err);
        if (input == NULL) {
            fprintf(stderr, "sfn run: the input is not valid JSON: %s\n", err.cause);
            err_clear(&err);
            free(in_buf);
            sfn_mock_free(mock);
            free(name);
            free(def);
            return 2;
        }
    }
    free(in_buf);

    /* one short-lived process: grow the heap in large steps and never give it back, so the
     * run is not spent in brk/mmap and page-table churn */
    mallopt(M_TOP_PAD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sfn_engine *eng = sfn_engine_new(&loop, &opt);
#ifndef SFN_CLI_LITE
    struct sfn_integrations *integ = sfn_integrations_register(eng, &loop, NULL, &err);
    if (integ == NULL) {
        fprintf(stderr, "sfn run: %s (the AWS integrations are off)\n", err.cause);
        err_clear(&err);
    }
#endif
    if (mock != NULL && sfn_mock_attach(eng, mock, name, test_case, mock_flags, &err) != 0) {
        fprintf(stderr, "sfn run: %s\n", err.cause); /* checked above: not reached */
        err_clear(&err);
    }
    struct sfn_machine *m = NULL;
    if (db != NULL) {
        so.on_fatal = cli_store_fatal;
        so.arg = &loop;
        r.store = sfn_store_open(db, &so, &err);
        if (r.store == NULL || sfn_store_attach(r.store, eng, &err) != 0) {
            fprintf(stderr, "sfn run: %s\n", err.cause);
            err_clear(&err);
            free(name);
            free(def);
            json_decref(input);
            sfn_engine_free(eng);
#ifndef SFN_CLI_LITE
            sfn_integrations_free(integ);
#endif
            uv_run(&loop, UV_RUN_DEFAULT);
            uv_loop_close(&loop);
            sfn_store_close(r.store);
            sfn_mock_free(mock);
            return 2;
        }
        m = sfn_store_machine(r.store, eng, name, def, def_len, type, NULL, &err);
    } else {
        m = sfn_machine_compile(eng, def, def_len, name, type, &err);
    }
    free(name);
    free(def);
    int rc;
    if (m != NULL && r.store != NULL && exec_name != NULL) {
        char *arn = xasprintf("%s", sfn_machine_arn(m));
        char *colon = strstr(arn, ":stateMachine:");
        char *full = colon != NULL ? xasprintf("%.*s:execution:%s:%s", (int)(colon - arn), arn,
                                               colon + 14, exec_name)
                                   : xstrdup(exec_name);
        if (sfn_store_execution_exists(r.store, full))
            err_set(&err, "ExecutionAlreadyExists", "Execution Already Exists: '%s'", full);
        free(full);
        free(arn);
    }
    if (err.set && m != NULL) {
        fprintf(stderr, "%s: %s\n", err.name, err.cause);
        err_clear(&err);
        rc = 2;
    } else if (m == NULL) {
        fprintf(stderr, "%s\n", err.cause != NULL ? err.cause : "invalid definition");
        err_clear(&err);
        rc = 2;
    } else {
        /* fault the heap in once (it is kept: M_TRIM_THRESHOLD), so the run does not pay a
         * page fault for each new page it allocates */
        size_t warm = 8u << 20;
        char *pre = malloc(warm);
        if (pre != NULL) {
            memset(pre, 0, warm);
            free(pre);
        }
        struct sfn_execution_options eo = {exec_name, NULL, on_done, on_event, &r};
        struct sfn_execution *ex = sfn_execution_start(eng, m, input, &eo, &err);
        if (ex == NULL) {
            fprintf(stderr, "%s: %s\n", err.name, err.cause != NULL ? err.cause : "");
            err_clear(&err);
            rc = 2;
        } else {
            uint64_t t0 = uv_hrtime();
            uv_run(&loop, UV_RUN_DEFAULT);
            uint64_t t1 = uv_hrtime();
            enum sfn_status st = sfn_execution_status(ex);
            const struct err *fatal = sfn_engine_persist_error(eng);
            if (fatal != NULL) {
                rc = 3; /* reported by cli_store_fatal */
            } else if (r.stats)
                print_stats(ex, &r, t1 - t0);
            if (fatal != NULL) {
            } else if (r.result) {
                print_result(ex, &r);
                rc = 0;
            } else if (st == SFN_SUCCEEDED) {
                struct buf b = BUF_INIT;
                json_compact_append(&b, sfn_execution_output(ex));
                buf_putc(&b, '\n');
                fwrite(b.data, 1, b.len, stdout);
                buf_release(&b);
                rc = 0;
            } else {
                const struct err *e = sfn_execution_error(ex);
                fprintf(stderr, "%s: %s\n", e->set && e->name[0] ? e->name : sfn_status_name(st),
                        e->set && e->cause != NULL ? e->cause : "");
                rc = 1;
            }
            if (fatal != NULL)
                sfn_execution_release(ex); /* the file has it as of the last commit */
            else
                sfn_execution_free(ex);
        }
    }
    sfn_machine_free(m);
    json_decref(input);
    sfn_engine_free(eng);
#ifndef SFN_CLI_LITE
    sfn_integrations_free(integ);
#endif
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "sfn: internal error: handles left open\n");
    sfn_store_close(r.store);
    sfn_mock_free(mock);
    return rc;
}
