/* main.c: the program every rank of a job runs, and the only place that exits.
 *
 * It parses the flags (cli.c) and runs one subcommand. `train` alone (no MPI launcher in the
 * environment, or --servers 0) trains in one process; started by mpirun or srun with
 * --servers P, each rank takes its role from its rank (job.c). Every subcommand returns a
 * PST code; main alone turns it into the exit status (pst_exit_status: 0, 2 bad input, 75
 * stopped, 1). Here too: the status line a launcher reads and the stop signals. */
#include "engine/base/base.h"
#include "launch/cmd/cli.h"
#include "launch/cmd/cmd.h"

#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set by SIGTERM and SIGINT when the job checkpoints: it then saves and stops at the next
 * step (a preempted VM gets a last checkpoint before it goes). */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

volatile sig_atomic_t *cmd_stop_signals(const wk_opts *o) {
    if (o->checkpoint_dir[0]) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    return &stop_requested;
}

/* --- how a rank ends ------------------------------------------------------------------
 * mpirun --enable-recovery drops the ranks' statuses (it reports 0 or 1 at random), and may
 * wait forever for the daemon of a host that vanished: launch/lib.sh's run_job reads each
 * rank's "pstrain: rank R ends with status N" line instead. So every way out of a rank that
 * an MPI launcher started says it once: a return from main (bad flags and data included,
 * before MPI_Init), MPI_Abort, and a fatal signal (PST_ASSERT's abort: 128 + the signal). */

static char status_line[64]; /* "pstrain: rank R ends with status ", made before it is needed */
static volatile sig_atomic_t status_said;

/* This process's rank as its MPI launcher set it (Open MPI, PMIx, PMI, srun --mpi=...), or
 * -1 when no launcher started it. Known before MPI_Init, and when MPI_Init never comes. */
int cmd_launcher_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        if (v && *v) {
            const long r = strtol(v, &end, 10);
            if (*end == '\0' && r >= 0 && r < INT_MAX)
                return (int)r;
        }
    }
    return -1;
}

/* Says the rank's status once, on stderr, with write(2): a signal handler calls it
 * (in_signal: then stdio is left alone, as it may be what failed). */
static void say_status_from(int status, int in_signal) {
    if (!status_line[0] || status_said)
        return;
    status_said = 1;
    char buf[96], digits[12];
    size_t n = strlen(status_line), d = 0;
    memcpy(buf, status_line, n);
    unsigned u = (unsigned)status & 255u;
    do
        digits[d++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    while (d > 0)
        buf[n++] = digits[--d];
    buf[n++] = '\n';
    if (!in_signal) {
        fflush(stdout);
        fflush(stderr);
    }
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}

static void say_status(int status) { say_status_from(status, 0); }

void cmd_say_status_in_signal(int status) { say_status_from(status, 1); }

_Noreturn void cmd_exit_now(int code) {
    const int status = pst_exit_status(code);
    say_status(status);
    _exit(status);
}

static void on_fatal_signal(int sig) {
    say_status_from(128 + sig, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Under an MPI launcher: prepares the line and catches the signals that end a rank on a
 * programming error. Nothing for a process that runs alone (its status is its own). */
static void status_init(void) {
    const int rank = cmd_launcher_rank();
    if (rank < 0)
        return;
    snprintf(status_line, sizeof status_line, "pstrain: rank %d ends with status ", rank);
    static const int fatal[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], on_fatal_signal);
}

_Noreturn void cmd_abort_job(int code) {
    const int status = pst_exit_status(code);
    say_status(status);
    MPI_Abort(MPI_COMM_WORLD, status);
    _exit(status); /* MPI_Abort does not return; this tells the compiler so */
}

int cmd_said(int rc, const char *err) {
    if (rc != PST_OK && err[0])
        fprintf(stderr, "pstrain: %s\n", err);
    return rc;
}

static int main_argc;
static char **main_argv;

void cmd_argv(int *argc, char ***argv) {
    *argc = main_argc;
    *argv = main_argv;
}

/* The subcommand c names; PST_OK for --version and --help. */
static int run(int argc, char **argv) {
    main_argc = argc;
    main_argv = argv;
    static cmd_config c;
    char err[1024] = "";
    const int rc = cmd_cli_parse(&c, argc, argv, err, sizeof err);
    if (rc != PST_OK)
        return cmd_said(rc, err);
    if (c.args.version) {
        cmd_version_print(stdout);
        return PST_OK;
    }
    if (c.args.help) {
        cmd_cli_usage(stdout, cmd_cli_command_name(c.command));
        return PST_OK;
    }
    static int (*const run_command[])(const cmd_config *) = {
        [CMD_TRAIN] = cmd_train,     [CMD_SUMMARY] = cmd_summary, [CMD_EVAL] = cmd_eval,
        [CMD_INSPECT] = cmd_inspect, [CMD_SAMPLE] = cmd_sample,   [CMD_PLOT] = cmd_plot,
        [CMD_CHECK] = cmd_check,     [CMD_EXPORT] = cmd_export,   [CMD_SERVE] = cmd_serve};
    return run_command[c.command](&c);
}

int main(int argc, char **argv) {
    /* Under mpirun or srun stdout is a pipe or a pseudo-terminal a launcher reads: a line at
     * a time, so that a job's log keeps its order ("starting fresh" before "stopped at"). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    pst_flush_denormals(); /* before any thread starts: they inherit it */
    status_init();
    const int status = pst_exit_status(run(argc, argv));
    say_status(status);
    cmd_job_end(status);
    return status;
}
