/* psfork.h: a real parameter server in a child process, for tests that talk to it over a
 * real socket (test_server, test_client).
 *
 * The child builds the model, creates a ps_server on 127.0.0.1 with an ephemeral port,
 * writes its endpoint to a pipe and serves until every worker has said goodbye, then exits
 * with ps_server_run's status (0, or 1 on a socket failure). The child dies with the test
 * process (PR_SET_PDEATHSIG on Linux), and tu_psfork_kill reaps it, so a failed test leaves
 * no orphan. Like testutil.h, nothing here asserts: the test decides. */
#ifndef PSTRAIN_TESTS_PSFORK_H
#define PSTRAIN_TESTS_PSFORK_H

#include "ps/server.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tu_psfork_cfg {
    const char *model; /* registry name, "mnist_cnn" */
    int server_id, num_servers, num_workers;
    ps_mode mode;
    int staleness; /* PS_SSP */
    uint64_t seed;
    eng_optim_cfg optim; /* every part's */
} tu_psfork_cfg;

typedef struct tu_psfork {
    pid_t pid;           /* 0: no child */
    char endpoint[160];  /* "tcp://127.0.0.1:PORT" */
    int reaped, wstatus; /* set once waitpid has returned the child */
} tu_psfork;

/* cfg's defaults: mnist_cnn, server 0 of 1, one worker, PS_SYNC, seed 1, Adam with Keras's
 * defaults. */
tu_psfork_cfg tu_psfork_defaults(void);

/* Forks the server and waits (10 s at most) for its endpoint. Returns 0, or -1 with a
 * message in err (the child's own error when it could not start); no child is left then. */
int tu_psfork_start(tu_psfork *f, const tu_psfork_cfg *cfg, char *err, size_t errlen);

/* 1 while the child runs, else 0 (it is reaped then, and tu_psfork_wait reports it). */
int tu_psfork_running(tu_psfork *f);

/* Waits up to timeout_s for the child to exit and reaps it. Returns its exit status (0..255),
 * or -1 with a message in err when it was killed by a signal or did not exit in time (it is
 * killed then). f->pid is 0 afterwards. */
int tu_psfork_wait(tu_psfork *f, double timeout_s, char *err, size_t errlen);

/* Kills and reaps the child, if any; safe to call twice. */
void tu_psfork_kill(tu_psfork *f);

#endif
