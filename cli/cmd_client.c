/* cli/cmd_client.c - the sfn commands that drive a running sfnd over its HTTP API (AWS JSON
 * 1.0, through cli/client.c): create, start (--wait), describe, history (--follow), ls, stop.
 * Names are resolved to ARNs here (ListStateMachines); text output is for people, --json
 * prints AWS's response shapes. The lite build/sfn hands every one of them to sfn-aws, so
 * plain `sfn run` never loads libcurl. Exit codes: cli/client.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#ifndef SFN_CLI_LITE /* main.c hands these commands to sfn-aws in the lite build */
#include <time.h>

#include "cli/client.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

#define DEFAULT_ROLE_ARN "arn:aws:iam::123456789012:role/sfn-local" /* sfnd checks no role */
#define LIST_PAGE 1000    /* maxResults of the listings (--page-size): the most AWS allows */
#define HISTORY_PAGE 100  /* maxResults while following: a poll re-reads less than a page */
#define POLL_MIN_MS 50    /* the first wait between polls, and after every new event */
#define POLL_MAX_MS 500   /* polls slow down to this while nothing happens */

/* Options every client command takes. */
struct common {
    const char *endpoint; /* --endpoint URL, or NULL */
    bool json;            /* --json */
};

static int usage(const char *cmd, const char *synopsis, const char *msg)
{
    fprintf(stderr, "sfn %s: %s\nusage: sfn %s %s [--endpoint URL] [--json]\n", cmd, msg, cmd,
            synopsis);
    return CLIENT_EXIT_USAGE;
}

static int bad_arg(const char *cmd, const char *synopsis, const char *arg)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "unknown or incomplete argument '%s'", arg);
    return usage(cmd, synopsis, msg);
}

/* --page-size N of a listing: 0, or an exit code after printing why. */
static int page_size(const char *cmd, const char *val, long *page)
{
    char *end = NULL;
    long n = strtol(val, &end, 10);
    if (end == val || *end != '\0' || n < 1 || n > LIST_PAGE) {
        fprintf(stderr, "sfn %s: --page-size must be a number from 1 to %d, not '%s'\n", cmd,
                LIST_PAGE, val);
        return CLIENT_EXIT_USAGE;
    }
    *page = n;
    return 0;
}

/* --endpoint / --json at argv[*i]: true when taken (and *i moved past a value). */
static bool common_opt(int argc, char **argv, int *i, struct common *o)
{
    if (strcmp(argv[*i], "--json") == 0) {
        o->json = true;
        return true;
    }
    if (strcmp(argv[*i], "--endpoint") == 0 && *i + 1 < argc) {
        o->endpoint = argv[++*i];
        return true;
    }
    return false;
}

static void print_json(json_t *v)
{
    struct buf b = BUF_INIT;
    json_compact_append(&b, v);
    buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, stdout);
    buf_release(&b);
    fflush(stdout);
}

static const char *str_member(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/* A timestamp member (seconds since the epoch) as ISO 8601, or "-" when absent. */
static void time_member(json_t *o, const char *key, char *out, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) {
        snprintf(out, n, "-");
        return;
    }
    cli_iso_time((int64_t)(json_number_value(v) * 1000.0 + 0.5), out, n);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- names and ARNs ---- */

/* Every page of a listing `op` (members `items`) of `page` items, with `req` (borrowed;
 * maxResults and nextToken are set on it). 0 and *all (new reference: the items of every
 * page), or an exit code. */
static int list_all(struct client *c, const char *op, json_t *req, const char *items,
                    long page, json_t **all)
{
    *all = json_array();
    json_object_set_new(req, "maxResults", json_integer(page));
    for (;;) {
        json_t *resp = NULL;
        int rc = client_call(c, op, req, &resp, NULL);
        if (rc != 0) {
            json_decref(*all);
            *all = NULL;
            return rc;
        }
        json_array_extend(*all, json_object_get(resp, items));
        json_t *token = json_object_get(resp, "nextToken");
        if (!json_is_string(token)) {
            json_decref(resp);
            return 0;
        }
        json_object_set(req, "nextToken", token);
        json_decref(resp);
    }
}

static int list_machines(struct client *c, long page, json_t **all)
{
    json_t *req = json_object();
    int rc = list_all(c, "ListStateMachines", req, "stateMachines", page, all);
    json_decref(req);
    return rc;
}

/* The ARN of a state machine given by ARN or by name. 0 and *arn (free() it), or an exit
 * code after printing why (an unknown name as AWS words StateMachineDoesNotExist). */
static int machine_arn(struct client *c, const char *which, char **arn)
{
    *arn = NULL;
    if (strncmp(which, "arn:", 4) == 0) {
        *arn = xstrdup(which);
        return 0;
    }
    json_t *all = NULL;
    int rc = list_machines(c, LIST_PAGE, &all);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m) {
        if (strcmp(str_member(m, "name"), which) == 0) {
            *arn = xstrdup(str_member(m, "stateMachineArn"));
            break;
        }
    }
    json_decref(all);
    if (*arn != NULL)
        return 0;
    fprintf(stderr, "sfn: StateMachineDoesNotExist: State Machine Does Not Exist: '%s'\n",
            which);
    return CLIENT_EXIT_AWS;
}

/* arn:...:stateMachine:M + NAME -> arn:...:execution:M:NAME, or NULL if not a machine ARN. */
static char *execution_arn_of(const char *machine, const char *name)
{
    const char *mark = strstr(machine, ":stateMachine:");
    if (mark == NULL)
        return NULL;
    return xasprintf("%.*s:execution:%s:%s", (int)(mark - machine), machine,
                     mark + strlen(":stateMachine:"), name);
}

/* The ARN of an execution given as an ARN, as MACHINE:NAME, or as a NAME alone (looked for
 * in every state machine; it must be in exactly one). 0 and *arn (free() it), or an exit
 * code after printing why. */
static int execution_arn(struct client *c, const char *which, char **arn)
{
    *arn = NULL;
    if (strncmp(which, "arn:", 4) == 0) {
        *arn = xstrdup(which);
        return 0;
    }
    const char *colon = strchr(which, ':');
    if (colon != NULL) {
        char *machine_name = xstrndup(which, (size_t)(colon - which));
        char *machine = NULL;
        int rc = machine_arn(c, machine_name, &machine);
        free(machine_name);
        if (rc != 0)
            return rc;
        *arn = execution_arn_of(machine, colon + 1);
        free(machine);
        if (*arn == NULL) {
            fprintf(stderr, "sfn: InvalidArn: '%s' is not a state machine ARN\n", which);
            return CLIENT_EXIT_AWS;
        }
        return 0;
    }
    json_t *all = NULL;
    int rc = list_machines(c, LIST_PAGE, &all);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *m;
    size_t found = 0;
    json_array_foreach(all, i, m) {
        char *cand = execution_arn_of(str_member(m, "stateMachineArn"), which);
        if (cand == NULL)
            continue;
        json_t *req = json_pack("{s:s}", "executionArn", cand);
        json_t *resp = NULL;
        struct client_error ae = {{0}, NULL};
        rc = client_call(c, "DescribeExecution", req, &resp, &ae);
        json_decref(req);
        json_decref(resp);
        client_error_release(&ae);
        if (rc == CLIENT_EXIT_USAGE) {
            free(cand);
            free(*arn);
            *arn = NULL;
            json_decref(all);
            return rc;
        }
        if (rc == 0 && found++ == 0) {
            *arn = cand;
            cand = NULL;
        }
        free(cand);
    }
    json_decref(all);
    if (found == 1)
        return 0;
    free(*arn);
    *arn = NULL;
    if (found == 0) {
        fprintf(stderr, "sfn: ExecutionDoesNotExist: Execution Does Not Exist: '%s'\n", which);
        return CLIENT_EXIT_AWS;
    }
    fprintf(stderr, "sfn: %zu state machines have an execution named '%s': give "
            "MACHINE:NAME or its ARN\n", found, which);
    return CLIENT_EXIT_USAGE;
}

/* ---- following a history ---- */

enum follow_mode {
    FOLLOW_STATES,     /* one line per state entered or exited, to stderr (start --wait) */
    FOLLOW_TEXT,       /* one line per event, as `sfn history` prints them */
    FOLLOW_JSON_LINES, /* one event per line in GetExecutionHistory's shape */
};

struct follow {
    struct client *c;
    const char *arn;       /* execution ARN */
    enum follow_mode mode;
    bool data;             /* includeExecutionData */
    double start;          /* seconds: the execution's startDate (FOLLOW_STATES) */
};

static bool is_end_event(const char *type)
{
    return strcmp(type, "ExecutionSucceeded") == 0 || strcmp(type, "ExecutionFailed") == 0 ||
           strcmp(type, "ExecutionTimedOut") == 0 || strcmp(type, "ExecutionAborted") == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void follow_show(const struct follow *f, json_t *e)
{
    const char *type = str_member(e, "type");
    if (f->mode == FOLLOW_JSON_LINES) {
        print_json(e);
        return;
    }
    if (f->mode == FOLLOW_TEXT) {
        cli_event_print(e);
        fflush(stdout);
        return;
    }
    bool entered = ends_with(type, "StateEntered");
    if (!entered && !ends_with(type, "StateExited"))
        return;
    json_t *d = json_object_get(e, entered ? "stateEnteredEventDetails"
                                           : "stateExitedEventDetails");
    double at = json_number_value(json_object_get(e, "timestamp")) - f->start;
    fprintf(stderr, "%9.3fs  %-8s %s\n", at < 0 ? 0.0 : at, entered ? "entered" : "exited",
            str_member(d, "name"));
}

/* Polls GetExecutionHistory and shows each new event until the execution's last one. Each
 * poll starts from the last nextToken received, so it re-reads less than a page. 0 when the
 * execution has ended, or an exit code after printing why. */
static int follow_history(const struct follow *f)
{
    json_t *token = NULL; /* owned: where the next poll starts, NULL = the beginning */
    json_int_t last_id = 0;
    unsigned delay = POLL_MIN_MS;
    bool ended = false;
    int rc = 0;
    while (!ended) {
        json_t *req = json_pack("{s:s,s:i,s:b}", "executionArn", f->arn, "maxResults",
                                HISTORY_PAGE, "includeExecutionData", f->data);
        if (token != NULL)
            json_object_set(req, "nextToken", token);
        json_t *resp = NULL;
        rc = client_call(f->c, "GetExecutionHistory", req, &resp, NULL);
        json_decref(req);
        if (rc != 0)
            break;
        bool news = false;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(resp, "events"), i, e) {
            json_int_t id = json_integer_value(json_object_get(e, "id"));
            if (id <= last_id)
                continue;
            last_id = id;
            news = true;
            follow_show(f, e);
            if (is_end_event(str_member(e, "type")))
                ended = true;
        }
        json_t *next = json_object_get(resp, "nextToken");
        bool more = json_is_string(next);
        if (more) {
            json_decref(token);
            token = json_incref(next);
        }
        json_decref(resp);
        if (ended || more)
            continue;
        delay = news ? POLL_MIN_MS : (delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2);
        sleep_ms(delay);
    }
    json_decref(token);
    return rc;
}

/* ---- sfn create ---- */

static const char create_syn[] =
    "NAME DEFINITION [--update] [--type STANDARD|EXPRESS] [--role-arn ARN]";

int cmd_create(int argc, char **argv)
{
    struct common o = {NULL, false};
    const char *name = NULL, *path = NULL, *type = NULL, *role = NULL;
    bool update = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (common_opt(argc, argv, &i, &o))
            continue;
        if (strcmp(a, "--update") == 0)
            update = true;
        else if (strcmp(a, "--type") == 0 && has_val)
            type = argv[++i];
        else if (strcmp(a, "--role-arn") == 0 && has_val)
            role = argv[++i];
        else if (a[0] != '-' && name == NULL)
            name = a;
        else if ((a[0] != '-' || strcmp(a, "-") == 0) && path == NULL)
            path = a;
        else
            return bad_arg("create", create_syn, a);
    }
    if (name == NULL || path == NULL)
        return usage("create", create_syn, "a NAME and a DEFINITION file are required");
    size_t len = 0;
    char *definition = cli_read_file(path, &len);
    if (definition == NULL)
        return CLIENT_EXIT_USAGE;
    struct client *c = client_new(o.endpoint);
    json_t *req = json_pack("{s:s,s:s,s:s}", "name", name, "definition", definition, "roleArn",
                            role != NULL ? role : DEFAULT_ROLE_ARN);
    if (type != NULL)
        json_object_set_new(req, "type", json_string(type));
    json_t *resp = NULL;
    struct client_error ae = {{0}, NULL};
    int rc = client_call(c, "CreateStateMachine", req, &resp, &ae);
    json_decref(req);
    char *arn = NULL;
    if (rc == CLIENT_EXIT_AWS && update && strcmp(ae.code, "StateMachineAlreadyExists") == 0) {
        rc = machine_arn(c, name, &arn);
        if (rc == 0) {
            req = json_pack("{s:s,s:s}", "stateMachineArn", arn, "definition", definition);
            if (role != NULL)
                json_object_set_new(req, "roleArn", json_string(role));
            rc = client_call(c, "UpdateStateMachine", req, &resp, NULL);
            json_decref(req);
        }
    } else if (rc == CLIENT_EXIT_AWS) {
        fprintf(stderr, "sfn: %s: %s\n", ae.code, ae.message);
    } else if (rc == 0) {
        arn = xstrdup(str_member(resp, "stateMachineArn"));
    }
    if (rc == 0) {
        if (o.json)
            print_json(resp);
        else
            printf("%s\n", arn);
    }
    client_error_release(&ae);
    json_decref(resp);
    free(arn);
    free(definition);
    client_free(c);
    return rc;
}

/* ---- sfn start ---- */

static const char start_syn[] =
    "MACHINE [--input JSON | --input-file FILE] [--name NAME] [--wait]";

/* The exit code of a final status (--wait). */
static int status_exit(const char *status)
{
    if (strcmp(status, "SUCCEEDED") == 0)
        return CLIENT_EXIT_OK;
    if (strcmp(status, "TIMED_OUT") == 0)
        return CLIENT_EXIT_TIMED_OUT;
    if (strcmp(status, "ABORTED") == 0)
        return CLIENT_EXIT_ABORTED;
    return CLIENT_EXIT_FAILED;
}

/* After --wait: the output on stdout, or "STATUS: Error: Cause" on stderr; with --json,
 * DescribeExecution's answer. Returns the exit code of the status. */
static int print_outcome(struct client *c, const char *arn, bool json)
{
    json_t *req = json_pack("{s:s}", "executionArn", arn);
    json_t *resp = NULL;
    int rc = client_call(c, "DescribeExecution", req, &resp, NULL);
    json_decref(req);
    if (rc != 0)
        return rc;
    const char *status = str_member(resp, "status");
    if (json) {
        print_json(resp);
    } else if (strcmp(status, "SUCCEEDED") == 0) {
        printf("%s\n", str_member(resp, "output"));
    } else {
        const char *error = json_string_value(json_object_get(resp, "error"));
        const char *cause = json_string_value(json_object_get(resp, "cause"));
        fprintf(stderr, "%s%s%s%s%s\n", status, error != NULL ? ": " : "",
                error != NULL ? error : "", cause != NULL ? ": " : "", cause != NULL ? cause : "");
    }
    rc = status_exit(status);
    json_decref(resp);
    return rc;
}

/* --wait follows the history, which only Standard executions have (AWS keeps none of an
 * Express execution): refuse an Express machine before anything is started. */
static int check_standard(struct client *c, const char *machine)
{
    json_t *req = json_pack("{s:s}", "stateMachineArn", machine);
    json_t *resp = NULL;
    int rc = client_call(c, "DescribeStateMachine", req, &resp, NULL);
    json_decref(req);
    if (rc == 0 && strcmp(str_member(resp, "type"), "EXPRESS") == 0) {
        fprintf(stderr, "sfn start: --wait follows an execution's history, and Express state "
                "machines keep none: start '%s' without --wait\n", machine);
        rc = CLIENT_EXIT_USAGE;
    }
    json_decref(resp);
    return rc;
}

int cmd_start(int argc, char **argv)
{
    struct common o = {NULL, false};
    const char *which = NULL, *input = NULL, *input_file = NULL, *name = NULL;
    bool wait = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (common_opt(argc, argv, &i, &o))
            continue;
        if (strcmp(a, "--input") == 0 && has_val)
            input = argv[++i];
        else if (strcmp(a, "--input-file") == 0 && has_val)
            input_file = argv[++i];
        else if (strcmp(a, "--name") == 0 && has_val)
            name = argv[++i];
        else if (strcmp(a, "--wait") == 0)
            wait = true;
        else if (a[0] != '-' && which == NULL)
            which = a;
        else
            return bad_arg("start", start_syn, a);
    }
    if (which == NULL)
        return usage("start", start_syn, "no state machine (name or ARN) given");
    if (input != NULL && input_file != NULL)
        return usage("start", start_syn, "give --input or --input-file, not both");
    char *text = NULL;
    if (input_file != NULL) {
        size_t len = 0;
        text = cli_read_file(input_file, &len);
        if (text == NULL)
            return CLIENT_EXIT_USAGE;
    } else {
        text = xstrdup(input != NULL ? input : "{}");
    }
    struct client *c = client_new(o.endpoint);
    char *machine = NULL;
    int rc = machine_arn(c, which, &machine);
    if (rc == 0 && wait)
        rc = check_standard(c, machine);
    json_t *resp = NULL;
    if (rc == 0) {
        json_t *req = json_pack("{s:s,s:s}", "stateMachineArn", machine, "input", text);
        if (name != NULL)
            json_object_set_new(req, "name", json_string(name));
        rc = client_call(c, "StartExecution", req, &resp, NULL);
        json_decref(req);
    }
    if (rc == 0 && !wait) {
        if (o.json)
            print_json(resp);
        else
            printf("%s\n", str_member(resp, "executionArn"));
    } else if (rc == 0) {
        struct follow f = {c, str_member(resp, "executionArn"), FOLLOW_STATES, false,
                           json_number_value(json_object_get(resp, "startDate"))};
        rc = follow_history(&f);
        if (rc == 0)
            rc = print_outcome(c, f.arn, o.json);
    }
    json_decref(resp);
    free(machine);
    free(text);
    client_free(c);
    return rc;
}

/* ---- sfn describe ---- */

static void print_field(const char *label, const char *value)
{
    if (value != NULL && value[0] != '\0')
        printf("%-15s %s\n", label, value);
}

int cmd_describe(int argc, char **argv)
{
    struct common o = {NULL, false};
    const char *which = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (common_opt(argc, argv, &i, &o))
            continue;
        if (a[0] != '-' && which == NULL)
            which = a;
        else
            return bad_arg("describe", "EXECUTION", a);
    }
    if (which == NULL)
        return usage("describe", "EXECUTION", "no execution (ARN or MACHINE:NAME) given");
    struct client *c = client_new(o.endpoint);
    char *arn = NULL;
    int rc = execution_arn(c, which, &arn);
    json_t *resp = NULL;
    if (rc == 0) {
        json_t *req = json_pack("{s:s}", "executionArn", arn);
        rc = client_call(c, "DescribeExecution", req, &resp, NULL);
        json_decref(req);
    }
    if (rc == 0 && o.json) {
        print_json(resp);
    } else if (rc == 0) {
        char start[40], stop[40];
        time_member(resp, "startDate", start, sizeof(start));
        time_member(resp, "stopDate", stop, sizeof(stop));
        print_field("execution", str_member(resp, "executionArn"));
        print_field("state machine", str_member(resp, "stateMachineArn"));
        print_field("name", str_member(resp, "name"));
        print_field("status", str_member(resp, "status"));
        print_field("started", start);
        print_field("stopped", stop);
        print_field("input", str_member(resp, "input"));
        print_field("output", str_member(resp, "output"));
        print_field("error", str_member(resp, "error"));
        print_field("cause", str_member(resp, "cause"));
    }
    json_decref(resp);
    free(arn);
    client_free(c);
    return rc;
}

/* ---- sfn history ---- */

static const char history_syn[] =
    "EXECUTION [--follow] [--reverse] [--no-data] [--page-size N]";

int cmd_client_history(int argc, char **argv)
{
    struct common o = {NULL, false};
    const char *which = NULL;
    bool follow = false, reverse = false, data = true;
    long page = LIST_PAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (common_opt(argc, argv, &i, &o))
            continue;
        if (strcmp(a, "--follow") == 0) {
            follow = true;
        } else if (strcmp(a, "--page-size") == 0 && i + 1 < argc) {
            if (page_size("history", argv[++i], &page) != 0)
                return CLIENT_EXIT_USAGE;
        } else if (strcmp(a, "--reverse") == 0) {
            reverse = true;
        } else if (strcmp(a, "--no-data") == 0) {
            data = false;
        } else if (a[0] != '-' && which == NULL) {
            which = a;
        } else {
            return bad_arg("history", history_syn, a);
        }
    }
    if (which == NULL)
        return usage("history", history_syn, "no execution (ARN or MACHINE:NAME) given");
    if (follow && reverse)
        return usage("history", history_syn, "--follow reads forward: drop --reverse");
    struct client *c = client_new(o.endpoint);
    char *arn = NULL;
    int rc = execution_arn(c, which, &arn);
    if (rc == 0 && follow) {
        struct follow f = {c, arn, o.json ? FOLLOW_JSON_LINES : FOLLOW_TEXT, data, 0.0};
        rc = follow_history(&f);
    } else if (rc == 0) {
        json_t *req = json_pack("{s:s,s:b,s:b}", "executionArn", arn, "reverseOrder", reverse,
                                "includeExecutionData", data);
        json_t *events = NULL;
        rc = list_all(c, "GetExecutionHistory", req, "events", page, &events);
        json_decref(req);
        if (rc == 0 && o.json) {
            json_t *doc = json_pack("{s:O}", "events", events);
            print_json(doc);
            json_decref(doc);
        } else if (rc == 0) {
            size_t i;
            json_t *e;
            json_array_foreach(events, i, e)
                cli_event_print(e);
        }
        json_decref(events);
    }
    free(arn);
    client_free(c);
    return rc;
}

/* ---- sfn ls ---- */

static const char ls_syn[] =
    "[machines | executions [MACHINE] [--status STATUS]] [--page-size N]";

static int ls_machines(struct client *c, long page, bool json)
{
    json_t *all = NULL;
    int rc = list_machines(c, page, &all);
    if (rc != 0)
        return rc;
    if (json) {
        json_t *doc = json_pack("{s:O}", "stateMachines", all);
        print_json(doc);
        json_decref(doc);
    } else {
        printf("%-9s %-24s %s\n", "TYPE", "CREATED", "NAME");
        size_t i;
        json_t *m;
        json_array_foreach(all, i, m) {
            char created[40];
            time_member(m, "creationDate", created, sizeof(created));
            printf("%-9s %-24s %s\n", str_member(m, "type"), created, str_member(m, "name"));
        }
    }
    json_decref(all);
    return 0;
}

/* The executions of one machine (ARN) into `all`. */
static int ls_one_machine(struct client *c, const char *machine, const char *status, long page,
                          json_t *all)
{
    json_t *req = json_pack("{s:s}", "stateMachineArn", machine);
    if (status != NULL)
        json_object_set_new(req, "statusFilter", json_string(status));
    json_t *items = NULL;
    int rc = list_all(c, "ListExecutions", req, "executions", page, &items);
    json_decref(req);
    if (rc == 0)
        json_array_extend(all, items);
    json_decref(items);
    return rc;
}

static int ls_executions(struct client *c, const char *which, const char *status, long page,
                         bool json)
{
    json_t *all = json_array();
    int rc = 0;
    if (which != NULL) {
        char *machine = NULL;
        rc = machine_arn(c, which, &machine);
        if (rc == 0)
            rc = ls_one_machine(c, machine, status, page, all);
        free(machine);
    } else {
        json_t *machines = NULL;
        rc = list_machines(c, page, &machines);
        size_t i;
        json_t *m;
        json_array_foreach(machines, i, m) {
            if (rc != 0)
                break;
            if (strcmp(str_member(m, "type"), "EXPRESS") == 0)
                continue; /* AWS lists no Express executions (StateMachineTypeNotSupported) */
            rc = ls_one_machine(c, str_member(m, "stateMachineArn"), status, page, all);
        }
        json_decref(machines);
    }
    if (rc == 0 && json) {
        json_t *doc = json_pack("{s:O}", "executions", all);
        print_json(doc);
        json_decref(doc);
    } else if (rc == 0) {
        printf("%-10s %-24s %-24s %-24s %s\n", "STATUS", "START", "STOP", "STATE MACHINE",
               "NAME");
        size_t i;
        json_t *e;
        json_array_foreach(all, i, e) {
            char start[40], stop[40];
            time_member(e, "startDate", start, sizeof(start));
            time_member(e, "stopDate", stop, sizeof(stop));
            const char *machine = strrchr(str_member(e, "stateMachineArn"), ':');
            printf("%-10s %-24s %-24s %-24s %s\n", str_member(e, "status"), start, stop,
                   machine != NULL ? machine + 1 : "", str_member(e, "name"));
        }
    }
    json_decref(all);
    return rc;
}

int cmd_ls(int argc, char **argv)
{
    struct common o = {NULL, false};
    const char *what = NULL, *which = NULL, *status = NULL;
    long page = LIST_PAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (common_opt(argc, argv, &i, &o))
            continue;
        if (strcmp(a, "--status") == 0 && i + 1 < argc) {
            status = argv[++i];
        } else if (strcmp(a, "--page-size") == 0 && i + 1 < argc) {
            if (page_size("ls", argv[++i], &page) != 0)
                return CLIENT_EXIT_USAGE;
        } else if (a[0] != '-' && what == NULL) {
            what = a;
        } else if (a[0] != '-' && which == NULL && strcmp(what, "executions") == 0) {
            which = a;
        } else {
            return bad_arg("ls", ls_syn, a);
        }
    }
    if (what == NULL)
        what = "machines";
    bool machines = strcmp(what, "machines") == 0;
    if (!machines && strcmp(what, "executions") != 0)
        return usage("ls", ls_syn, "list 'machines' or 'executions'");
    if (machines && status != NULL)
        return usage("ls", ls_syn, "--status filters executions");
    struct client *c = client_new(o.endpoint);
    int rc = machines ? ls_machines(c, page, o.json)
                      : ls_executions(c, which, status, page, o.json);
    client_free(c);
    return rc;
}

/* ---- sfn stop ---- */

static const char stop_syn[] = "EXECUTION [--error ERROR] [--cause CAUSE]";

int cmd_stop(int argc, char **argv)
{
    struct common o = {NULL, false};
    const char *which = NULL, *error = NULL, *cause = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (common_opt(argc, argv, &i, &o))
            continue;
        if (strcmp(a, "--error") == 0 && has_val)
            error = argv[++i];
        else if (strcmp(a, "--cause") == 0 && has_val)
            cause = argv[++i];
        else if (a[0] != '-' && which == NULL)
            which = a;
        else
            return bad_arg("stop", stop_syn, a);
    }
    if (which == NULL)
        return usage("stop", stop_syn, "no execution (ARN or MACHINE:NAME) given");
    struct client *c = client_new(o.endpoint);
    char *arn = NULL;
    int rc = execution_arn(c, which, &arn);
    json_t *resp = NULL;
    if (rc == 0) {
        json_t *req = json_pack("{s:s}", "executionArn", arn);
        if (error != NULL)
            json_object_set_new(req, "error", json_string(error));
        if (cause != NULL)
            json_object_set_new(req, "cause", json_string(cause));
        rc = client_call(c, "StopExecution", req, &resp, NULL);
        json_decref(req);
    }
    if (rc == 0 && o.json) {
        print_json(resp);
    } else if (rc == 0) {
        char stop[40];
        time_member(resp, "stopDate", stop, sizeof(stop));
        printf("stopped %s at %s\n", arn, stop);
    }
    json_decref(resp);
    free(arn);
    client_free(c);
    return rc;
}
#endif
