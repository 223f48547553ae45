/* flags.h: the table cli.c parses and prints (launch/cmd/flags.c): a flag is a name, the
 * commands that take it, where its value goes in cmd_config and its bounds. One name may have
 * several entries, one per group of commands (a help of its own, or another field). */
#ifndef PSTRAIN_CMD_FLAGS_H
#define PSTRAIN_CMD_FLAGS_H

#include "launch/cmd/config.h"

#include <stddef.h>

typedef enum { CMD_F_INT, CMD_F_REAL, CMD_F_STR, CMD_F_FLAG } cmd_flag_type;

typedef struct cmd_flag {
    const char *name;   /* without its "--" */
    cmd_flag_type type; /* int64_t, double, char[size], int set to 1 */
    size_t offset;      /* into cmd_config */
    size_t size;        /* CMD_F_STR: buffer size */
    double min, max;    /* CMD_F_INT, CMD_F_REAL: the bounds, inclusive */
    unsigned commands;  /* bit per cmd_command */
    const char *arg, *help;
} cmd_flag;

typedef struct cmd_command_info {
    const char *name;
    const char *about; /* one line for the usage */
} cmd_command_info;

#define CMD_NCOMMANDS ((size_t)CMD_SERVE + 1)

extern const cmd_flag cmd_flags[];
extern const size_t cmd_nflags;
extern const cmd_command_info cmd_commands[CMD_NCOMMANDS]; /* by cmd_command */

#endif
