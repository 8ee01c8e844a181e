/* cli/main.c - `sfn`: dispatches to the subcommands (run, validate, resume, executions,
 * history; and create, start, describe, history, ls, stop on a running sfnd). The CLI uses
 * only the public API in include/sfn.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/xalloc.h"

static const char usage[] =
    "usage: sfn <command> [options]\n"
    "\n"
    "commands:\n"
    "  run DEFINITION [--input JSON | --input-file FILE] [--result] [--history]\n"
    "      [--fast-time] [--name NAME] [--state-machine-name NAME] [--type STANDARD|EXPRESS]\n"
    "      [--db FILE [--durability full|normal|off] [--db-max-size BYTES]]\n"
    "      [--mock-config FILE --test-case NAME [--mock-only]]\n"
    "                       run one execution in-process and print its output\n"
    "  resume --db FILE [--result] [--fast-time]\n"
    "                       continue every unfinished execution of a store\n"
    "  executions --db FILE [--json] [--status STATUS] [--state-machine NAME]\n"
    "                       list the executions of a store\n"
    "  history --db FILE EXECUTION [--json] [--reverse] [--no-data]\n"
    "                       print the history of an execution (ARN or name)\n"
    "  validate DEFINITION [--json] [--type STANDARD|EXPRESS]\n"
    "                       check a definition as AWS does; print OK or the diagnostics\n"
    "  test-state DEFINITION [--state-name NAME] [--input JSON] [--inspection-level LEVEL]\n"
    "      [--role-arn ARN] [--mock JSON | --mock-result JSON | --mock-error ERROR]\n"
    "                       run one state in isolation (TestState) and print the response\n"
    "  test SUITE.json... [--junit FILE]\n"
    "                       run state-machine test suites against their mocks\n"
    "\n"
    "commands on a running sfnd (--endpoint URL, else $SFN_ENDPOINT, else\n"
    "http://127.0.0.1:8083; --json prints AWS's response shapes):\n"
    "  create NAME DEFINITION [--update] [--type STANDARD|EXPRESS] [--role-arn ARN]\n"
    "                       create a state machine (or, with --update, update it)\n"
    "  start MACHINE [--input JSON | --input-file FILE] [--name NAME] [--wait]\n"
    "                       start an execution; --wait shows its states, then its result\n"
    "  describe EXECUTION   an execution's status, input, output (ARN or MACHINE:NAME)\n"
    "  history EXECUTION [--follow] [--reverse] [--no-data] [--page-size N]\n"
    "                       an execution's history events; --follow until it ends\n"
    "  ls [machines | executions [MACHINE] [--status STATUS]] [--page-size N]\n"
    "                       list state machines or executions\n"
    "  stop EXECUTION [--error ERROR] [--cause CAUSE]\n"
    "                       stop a running execution\n"
    "\n"
    "See sfn(1).\n";

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "sfn: cannot read '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536;
    size_t n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f) != 0;
    if (f != stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "sfn: cannot read '%s': %s\n", path, strerror(errno));
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static char **main_argv;

bool cli_uses_integrations(const char *definition)
{
    static const char *const services[] = {":states:::athena:", ":states:::emr-serverless:",
                                           ":states:::elasticmapreduce:",
                                           ":states:::emr-containers:"};
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
        if (strstr(definition, services[i]) != NULL)
            return true;
    }
    return false;
}

int cli_exec_full(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 16);
    if (n <= 0) {
        fprintf(stderr, "sfn: cannot find this program's path: %s\n", strerror(errno));
        return 2;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    strcpy(slash != NULL ? slash + 1 : self, "sfn-aws");
    fflush(NULL);
    execv(self, main_argv);
    fprintf(stderr, "sfn: this needs the AWS service integrations, but '%s' cannot be run: %s\n",
            self, strerror(errno));
    return 2;
}

/* `sfn history --db FILE` reads a store; without --db it asks the daemon. */
static bool has_db(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0)
            return true;
    }
    return false;
}

/* The commands that talk to a running sfnd (cmd_client.c); the lite build has no HTTP client
 * and hands them to sfn-aws. */
#ifdef SFN_CLI_LITE
#define CLIENT(fn) NULL
#else
#define CLIENT(fn) fn
#endif
static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} client_commands[] = {
    {"history", CLIENT(cmd_client_history)}, /* without --db */
    {"create", CLIENT(cmd_create)},
    {"start", CLIENT(cmd_start)},
    {"describe", CLIENT(cmd_describe)},
    {"ls", CLIENT(cmd_ls)},
    {"stop", CLIENT(cmd_stop)},
};

int main(int argc, char **argv)
{
    main_argv = argv;
    xalloc_install_jansson();
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    if (strcmp(argv[1], "resume") == 0)
        return cmd_resume(argc - 1, argv + 1);
    if (strcmp(argv[1], "executions") == 0)
        return cmd_executions(argc - 1, argv + 1);
    if (strcmp(argv[1], "history") == 0 && has_db(argc, argv))
        return cmd_history(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(client_commands) / sizeof(client_commands[0]); i++) {
        if (strcmp(argv[1], client_commands[i].name) == 0)
            return client_commands[i].fn != NULL ? client_commands[i].fn(argc - 1, argv + 1)
                                                 : cli_exec_full();
    }
    if (strcmp(argv[1], "test-state") == 0)
        return cmd_test_state(argc - 1, argv + 1);
    if (strcmp(argv[1], "test") == 0)
        return cmd_test(argc - 1, argv + 1);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        puts("sfn 0.1.0");
        return 0;
    }
    fprintf(stderr, "sfn: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
