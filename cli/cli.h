/* cli/cli.h - the sfn command: shared helpers of its subcommands. */
#ifndef SFN_CLI_H
#define SFN_CLI_H

#include <stddef.h>

/* Reads a whole file ("-" = stdin). Returns a NUL-terminated buffer (free() it) and its
 * length, or NULL after printing "sfn: cannot read ..." to stderr. */
char *cli_read_file(const char *path, size_t *len);

int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_executions(int argc, char **argv);
int cmd_history(int argc, char **argv);

struct sfn_store_options;
struct err;
/* --durability / --db-max-size into `so`. 0, or -1 after printing why. */
int cli_store_option(const char *opt, const char *val, struct sfn_store_options *so);
/* sfn_store_options.on_fatal: prints the error and stops the loop (`arg`). */
void cli_store_fatal(const struct err *err, void *arg);

#endif
