/* cli/cli.h - the sfn command: shared helpers of its subcommands. */
#ifndef SFN_CLI_H
#define SFN_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads a whole file ("-" = stdin). Returns a NUL-terminated buffer (free() it) and its
 * length, or NULL after printing "sfn: cannot read ..." to stderr. */
char *cli_read_file(const char *path, size_t *len);

/* The sfn command comes in two builds: build/sfn-aws has the AWS service integrations (and
 * so loads libcurl and OpenSSL); build/sfn (SFN_CLI_LITE) does not, starts in a few ms, and
 * hands over to sfn-aws, next to it, when a definition uses an integration or on resume. */
bool cli_uses_integrations(const char *definition);
/* execv()s sfn-aws with this process's arguments; returns 2 after printing why if it can't. */
int cli_exec_full(void);

int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_executions(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_test_state(int argc, char **argv); /* cmd_test.c */
int cmd_test(int argc, char **argv);

/* The client commands (cmd_client.c): they talk to a running sfnd over its HTTP API.
 * The lite build hands them over to sfn-aws, which has libcurl. */
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_describe(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_client_history(int argc, char **argv); /* `sfn history` without --db */

/* "2026-11-22T10:00:00.123Z" for `ms` since the epoch, into out[n]. */
void cli_iso_time(int64_t ms, char *out, size_t n);
/* Prints one history event (GetExecutionHistory's shape, borrowed) as a line of text:
 * id, timestamp, type and state name. */
void cli_event_print(json_t *e);

struct sfn_store_options;
struct err;
/* --durability / --db-max-size into `so`. 0, or -1 after printing why. */
int cli_store_option(const char *opt, const char *val, struct sfn_store_options *so);
/* sfn_store_options.on_fatal: prints the error and stops the loop (`arg`). */
void cli_store_fatal(const struct err *err, void *arg);

#endif
