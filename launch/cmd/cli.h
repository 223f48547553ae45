/* cli.h: the command line of `pstrain`, parsed from one table of flags with bounds, so
 * that every bad value gets one line naming the flag, the allowed range and what was given.
 * Each flag belongs to some commands and lands in its role's struct (launch/cmd/config.h).
 * Later flags override earlier ones. */
#ifndef PSTRAIN_CMD_CLI_H
#define PSTRAIN_CMD_CLI_H

#include "launch/cmd/config.h"

#include <stddef.h>
#include <stdio.h>

/* Parses argv (argv[0] is the program) into c, from cmd_config_defaults, and checks it with
 * cmd_config_check. `pstrain --version` and `--help` (no command) leave c->command -1.
 * Returns PST_OK, or PST_EARG with one line in err (naming the flag or argument and what
 * was expected). */
int cmd_cli_parse(cmd_config *c, int argc, char **argv, char *err, size_t errlen);

/* "train", ...; NULL for a value that is not a command. */
const char *cmd_cli_command_name(cmd_command c);

/* Usage of the program (command NULL) or of one command. */
void cmd_cli_usage(FILE *out, const char *command);

#endif
