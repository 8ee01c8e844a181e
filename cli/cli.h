/* cli/cli.h - the sfn command: shared helpers of its subcommands. */
#ifndef SFN_CLI_H
#define SFN_CLI_H

#include <stddef.h>

/* Reads a whole file ("-" = stdin). Returns a NUL-terminated buffer (free() it) and its
 * length, or NULL after printing "sfn: cannot read ..." to stderr. */
char *cli_read_file(const char *path, size_t *len);

int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);

#endif
