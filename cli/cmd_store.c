/* cli/cmd_store.c - the commands on a store file: `sfn resume --db FILE` continues every
 * unfinished execution; `sfn executions --db FILE` lists them; `sfn history --db FILE
 * EXECUTION` prints one's history. Shared store options of `sfn run --db` live here too. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cli/cli.h"
#include "sfn.h"
#ifndef SFN_CLI_LITE
#include "sfn_integrations.h"
#endif
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

int cli_store_option(const char *opt, const char *val, struct sfn_store_options *so)
{
    if (strcmp(opt, "--durability") == 0) {
        if (strcmp(val, "full") == 0)
            so->durability = SFN_DURABILITY_FULL;
        else if (strcmp(val, "normal") == 0)
            so->durability = SFN_DURABILITY_NORMAL;
        else if (strcmp(val, "off") == 0)
            so->durability = SFN_DURABILITY_OFF;
        else {
            fprintf(stderr, "sfn: --durability must be full, normal or off, not '%s'\n", val);
            return -1;
        }
        return 0;
    }
    char *end = NULL;
    long long n = strtoll(val, &end, 10);
    if (end == val || *end != '\0' || n <= 0) {
        fprintf(stderr, "sfn: --db-max-size must be a positive number of bytes, not '%s'\n",
                val);
        return -1;
    }
    so->max_bytes = n;
    return 0;
}

void cli_store_fatal(const struct err *err, void *arg)
{
    fprintf(stderr, "sfn: the store failed, stopping: %s\n",
            err->cause != NULL ? err->cause : err->name);
    uv_stop(arg);
}

void cli_iso_time(int64_t ms, char *out, size_t n)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03dZ", base, (int)(ms % 1000));
}

static void print_json(json_t *v)
{
    struct buf b = BUF_INIT;
    json_compact_append(&b, v);
    buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, stdout);
    buf_release(&b);
}

/* ---- sfn resume ---- */

#ifdef SFN_CLI_LITE
int cmd_resume(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_exec_full(); /* a store may hold executions of any integration */
}
#else

struct resume {
    bool result;
    size_t running;
    size_t failed;
};

static void resume_done(struct sfn_execution *ex, void *arg)
{
    struct resume *r = arg;
    enum sfn_status st = sfn_execution_status(ex);
    r->running--;
    if (st != SFN_SUCCEEDED)
        r->failed++;
    if (r->result) {
        json_t *o = json_pack("{s:s,s:s}", "executionArn", sfn_execution_arn(ex), "status",
                              sfn_status_name(st));
        if (st == SFN_SUCCEEDED) {
            json_object_set(o, "output", sfn_execution_output(ex));
        } else {
            const struct err *e = sfn_execution_error(ex);
            if (e->set && e->name[0] != '\0')
                json_object_set_new(o, "error", json_string(e->name));
            if (e->set && e->cause != NULL)
                json_object_set_new(o, "cause", json_string(e->cause));
        }
        print_json(o);
        json_decref(o);
    } else {
        printf("%s\t%s\n", sfn_status_name(st), sfn_execution_arn(ex));
    }
    fflush(stdout);
    sfn_execution_free(ex);
}

static int resume_usage(const char *msg)
{
    fprintf(stderr, "sfn resume: %s\nusage: sfn resume --db FILE [--result] [--fast-time] "
            "[--durability full|normal|off] [--db-max-size BYTES]\n", msg);
    return 2;
}

int cmd_resume(int argc, char **argv)
{
    const char *db = NULL;
    struct sfn_store_options so = {0};
    struct sfn_engine_options eo = {false, -1, 0, NULL, NULL, 0};
    struct resume r = {false, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--db") == 0 && has_val) {
            db = argv[++i];
        } else if ((strcmp(a, "--durability") == 0 || strcmp(a, "--db-max-size") == 0) &&
                   has_val) {
            if (cli_store_option(a, argv[++i], &so) != 0)
                return 2;
        } else if (strcmp(a, "--result") == 0) {
            r.result = true;
        } else if (strcmp(a, "--fast-time") == 0) {
            eo.virtual_clock = true;
        } else {
            char msg[256];
            snprintf(msg, sizeof(msg), "unknown or incomplete argument '%s'", a);
            return resume_usage(msg);
        }
    }
    if (db == NULL)
        return resume_usage("--db FILE is required");
    const char *wait = getenv("ASL_RETRY_WAIT_MS");
    if (wait != NULL && wait[0] != '\0')
        eo.retry_wait_ms = strtoll(wait, NULL, 10);
    uv_loop_t loop;
    uv_loop_init(&loop);
    so.on_fatal = cli_store_fatal;
    so.arg = &loop;
    struct err err = ERR_INIT;
    struct sfn_engine *eng = sfn_engine_new(&loop, &eo);
#ifndef SFN_CLI_LITE
    struct sfn_integrations *integ = sfn_integrations_register(eng, &loop, NULL, &err);
    if (integ == NULL) {
        fprintf(stderr, "sfn resume: %s (the AWS integrations are off)\n", err.cause);
        err_clear(&err);
    }
#endif
    struct sfn_store *st = sfn_store_open(db, &so, &err);
    int rc = 0;
    size_t n = 0;
    struct sfn_execution_options xo = {NULL, NULL, resume_done, NULL, &r};
    if (st == NULL || sfn_store_attach(st, eng, &err) != 0 ||
        sfn_store_recover(st, eng, &xo, &n, &err) != 0) {
        fprintf(stderr, "sfn resume: %s\n", err.cause != NULL ? err.cause : err.name);
        err_clear(&err);
        rc = 2;
    } else if (n == 0) {
        fprintf(stderr, "sfn resume: no unfinished execution in '%s'\n", db);
    } else {
        r.running = n;
        uv_run(&loop, UV_RUN_DEFAULT);
        if (sfn_engine_persist_error(eng) != NULL)
            rc = 3;
        else
            rc = r.failed > 0 || r.running > 0 ? 1 : 0;
    }
    sfn_engine_free(eng);
#ifndef SFN_CLI_LITE
    sfn_integrations_free(integ);
#endif
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    sfn_store_close(st);
    return rc;
}
#endif

/* ---- sfn executions ---- */

struct listing {
    bool json;
    json_t *arr;
};

static json_t *execution_json(const struct sfn_store_execution *e)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:f}", "executionArn", e->arn, "stateMachineArn",
                          e->machine_arn, "name", e->name, "status", e->status, "startDate",
                          (double)e->start_ms / 1000.0);
    if (e->stop_ms > 0)
        json_object_set_new(o, "stopDate", json_real((double)e->stop_ms / 1000.0));
    return o;
}

static int list_one(const struct sfn_store_execution *e, void *arg)
{
    struct listing *l = arg;
    if (l->json) {
        json_array_append_new(l->arr, execution_json(e));
        return 0;
    }
    char start[40], stop[40] = "-";
    cli_iso_time(e->start_ms, start, sizeof(start));
    if (e->stop_ms > 0)
        cli_iso_time(e->stop_ms, stop, sizeof(stop));
    const char *machine = strrchr(e->machine_arn, ':');
    printf("%-10s %-24s %-24s %-24s %s\n", e->status, start, stop,
           machine != NULL ? machine + 1 : e->machine_arn, e->name);
    return 0;
}

static int store_usage(const char *cmd, const char *msg)
{
    if (strcmp(cmd, "executions") == 0)
        fprintf(stderr, "sfn executions: %s\nusage: sfn executions --db FILE [--json] "
                "[--status STATUS] [--state-machine NAME]\n", msg);
    else
        fprintf(stderr, "sfn history: %s\nusage: sfn history --db FILE EXECUTION [--json] "
                "[--reverse] [--no-data]\n", msg);
    return 2;
}

static struct sfn_store *open_read(const char *cmd, const char *db)
{
    struct sfn_store_options so = {0};
    so.read_only = true;
    struct err err = ERR_INIT;
    struct sfn_store *st = sfn_store_open(db, &so, &err);
    if (st == NULL) {
        fprintf(stderr, "sfn %s: %s\n", cmd, err.cause);
        err_clear(&err);
    }
    return st;
}

int cmd_executions(int argc, char **argv)
{
    const char *db = NULL, *status = NULL, *machine = NULL;
    struct listing l = {false, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--db") == 0 && has_val)
            db = argv[++i];
        else if (strcmp(a, "--status") == 0 && has_val)
            status = argv[++i];
        else if (strcmp(a, "--state-machine") == 0 && has_val)
            machine = argv[++i];
        else if (strcmp(a, "--json") == 0)
            l.json = true;
        else {
            char msg[256];
            snprintf(msg, sizeof(msg), "unknown or incomplete argument '%s'", a);
            return store_usage("executions", msg);
        }
    }
    if (db == NULL)
        return store_usage("executions", "--db FILE is required (a running sfnd lists its "
                                         "executions with `sfn ls executions`)");
    struct sfn_store *st = open_read("executions", db);
    if (st == NULL)
        return 2;
    if (l.json)
        l.arr = json_array();
    else
        printf("%-10s %-24s %-24s %-24s %s\n", "STATUS", "START", "STOP", "STATE MACHINE",
               "NAME");
    struct err err = ERR_INIT;
    int rc = sfn_store_list_executions(st, machine, status, list_one, &l, &err);
    if (rc != 0) {
        fprintf(stderr, "sfn executions: %s\n", err.cause);
        err_clear(&err);
    } else if (l.json) {
        json_t *o = json_pack("{s:O}", "executions", l.arr);
        print_json(o);
        json_decref(o);
    }
    json_decref(l.arr);
    sfn_store_close(st);
    return rc != 0 ? 2 : 0;
}

/* ---- sfn history ---- */

struct hist {
    bool json;
    bool first;
};

static int found_arn(const struct sfn_store_execution *e, void *arg)
{
    *(char **)arg = xstrdup(e->arn);
    return 0;
}

void cli_event_print(json_t *e)
{
    char ts[40];
    cli_iso_time((int64_t)(json_number_value(json_object_get(e, "timestamp")) * 1000.0 + 0.5),
                 ts, sizeof(ts));
    const char *state = "";
    const char *key;
    json_t *v;
    json_object_foreach(e, key, v) {
        if (json_is_object(v) && json_is_string(json_object_get(v, "name"))) {
            state = json_string_value(json_object_get(v, "name"));
            break;
        }
    }
    printf("%5" PRId64 "  %s  %-28s %s\n", (int64_t)json_integer_value(json_object_get(e, "id")),
           ts, json_string_value(json_object_get(e, "type")), state);
}

static int hist_one(json_t *e, void *arg)
{
    struct hist *h = arg;
    if (h->json) {
        struct buf b = BUF_INIT;
        buf_puts(&b, h->first ? "" : ",");
        json_compact_append(&b, e);
        fwrite(b.data, 1, b.len, stdout);
        buf_release(&b);
        h->first = false;
        return 0;
    }
    cli_event_print(e);
    return 0;
}

int cmd_history(int argc, char **argv)
{
    const char *db = NULL, *which = NULL;
    bool reverse = false, data = true;
    struct hist h = {false, true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--db") == 0 && has_val)
            db = argv[++i];
        else if (strcmp(a, "--json") == 0)
            h.json = true;
        else if (strcmp(a, "--reverse") == 0)
            reverse = true;
        else if (strcmp(a, "--no-data") == 0)
            data = false;
        else if (a[0] != '-' && which == NULL)
            which = a;
        else {
            char msg[256];
            snprintf(msg, sizeof(msg), "unknown or incomplete argument '%s'", a);
            return store_usage("history", msg);
        }
    }
    if (db == NULL || which == NULL)
        return store_usage("history", db == NULL ? "--db FILE is required"
                                                 : "no execution (ARN or name) given");
    struct sfn_store *st = open_read("history", db);
    if (st == NULL)
        return 2;
    struct err err = ERR_INIT;
    char *arn = NULL;
    int rc = sfn_store_get_execution(st, which, found_arn, &arn, &err);
    if (rc == 1) {
        fprintf(stderr, "ExecutionDoesNotExist: Execution Does Not Exist: '%s'\n", which);
        sfn_store_close(st);
        return 2;
    }
    if (rc == 0) {
        if (h.json)
            fputs("{\"events\":[", stdout);
        if (sfn_store_history(st, arn, 0, reverse, 0, data, hist_one, &h, &err) < 0)
            rc = -1;
        if (h.json)
            fputs("]}\n", stdout);
    }
    if (rc != 0) {
        fprintf(stderr, "sfn history: %s\n", err.cause);
        err_clear(&err);
    }
    free(arn);
    sfn_store_close(st);
    return rc != 0 ? 2 : 0;
}
