/* cmd.h: the program's own layer, one file per job: main.c (dispatch, status lines, signals),
 * cli.c, flags.c and config.c (the flags), a file per subcommand (train, eval, inspect and summary,
 * sample, plot, check, train --dry-run's preflight), job.c (a parameter-server job's MPI
 * start-up and its worker ranks) and server_rank.c (its server ranks).
 *
 * Every function here returns a PST code (engine/base/base.h), a subcommand's with its
 * message already printed; only main maps a code to the process's exit status
 * (pst_exit_status). */
#ifndef PSTRAIN_CMD_H
#define PSTRAIN_CMD_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "launch/cmd/config.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

/* --- main.c: how a process ends, and the signals that stop a job ---------------------- */

/* Ends the whole job with MPI_Abort after saying this rank's status: code's exit status. */
_Noreturn void cmd_abort_job(int code);

/* Ends this process at once (no MPI_Finalize, no atexit) after saying this rank's status:
 * code's exit status. For a rank whose peers cannot be waited for, from any thread. */
_Noreturn void cmd_exit_now(int code);

/* Says this rank's status line from a signal handler (write(2) only); once, as always. */
void cmd_say_status_in_signal(int status);

/* This process's rank as its MPI launcher set it (before MPI_Init too), or -1 without one. */
int cmd_launcher_rank(void);

/* The flag SIGTERM and SIGINT set when the run checkpoints (--checkpoint-dir): it then saves
 * at the next step and stops. Without --checkpoint-dir the signals keep their default (the
 * process ends) and the flag stays 0. */
volatile sig_atomic_t *cmd_stop_signals(const wk_opts *o);

/* --- the subcommands ------------------------------------------------------------------ */

int cmd_train(const cmd_config *c);     /* train.c: one process, or a job's rank */
int cmd_preflight(const cmd_config *c); /* preflight.c: train --dry-run */
int cmd_job(const cmd_config *c);       /* job.c: a rank of a parameter-server job */
int cmd_join(const cmd_config *c);      /* join.c: a worker that joins a running job */
/* main's argc and argv (the job file keeps the job's flags; a joining worker adds its own). */
void cmd_argv(int *argc, char ***argv);
/* job.c: after main has said the rank's exit status, MPI_Finalize (or _exit at once when a
 * peer is gone: it would wait for the dead). Nothing when this process started no job. */
void cmd_job_end(int status);
int cmd_eval(const cmd_config *c); /* eval.c */
/* eval_inputs.c: eval --inputs FILE: a file of samples through the forward pass, as serve */
int cmd_eval_inputs(const cmd_config *c);
int cmd_inspect(const cmd_config *c); /* inspect.c */
int cmd_summary(const cmd_config *c); /* inspect.c */
int cmd_sample(const cmd_config *c);  /* sample.c */
int cmd_plot(const cmd_config *c);    /* plot.c */
int cmd_check(const cmd_config *c);   /* check.c */
int cmd_export(const cmd_config *c);  /* export.c: --keras */
int cmd_serve(const cmd_config *c);   /* serve.c: launch/serve/ over HTTP */
void cmd_version_print(FILE *out);    /* check.c: pstrain --version */

/* --- shared by the subcommands --------------------------------------------------------- */

/* Reads the checkpoint FILE (or DIR's latest) eval, inspect and sample name. Returns PST_OK
 * (c filled: release with eng_ckpt_free) or a code, its line printed. */
int cmd_read_checkpoint(const cmd_args *a, eng_ckpt *c);

/* Prints "pstrain: err" on stderr when rc is a failure and err says something; returns rc. */
int cmd_said(int rc, const char *err);

/* Opens def's data set under --data as training would (check.c; the dry run's first check).
 * Returns PST_OK or a code with err naming the file. */
int cmd_check_data(const wk_opts *o, const eng_model_def *def, char *err, size_t errlen);

#endif
