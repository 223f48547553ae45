/* psfork.c: a parameter server in a child process (see psfork.h). */
#include "tests/support/psfork.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/optim.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

tu_psfork_cfg tu_psfork_defaults(void) {
    tu_psfork_cfg c;
    memset(&c, 0, sizeof c);
    c.model = "mnist_cnn";
    c.server_id = 0;
    c.num_servers = 1;
    c.num_workers = 1;
    c.mode = PS_SYNC;
    c.seed = 1;
    c.optim = eng_optim_defaults(ENG_OPT_ADAM);
    return c;
}

/* Writes all of s to fd; errors are the parent's to notice (it reads EOF). */
static void write_all(int fd, const char *s) {
    size_t len = strlen(s);
    while (len) {
        ssize_t k = write(fd, s, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        s += k;
        len -= (size_t)k;
    }
}

/* The child: never returns into the test framework. Exit codes: 0 served and said goodbye,
 * 1 ps_server_run failed, 2 could not start (the reason went to the pipe). */
static _Noreturn void child_main(const tu_psfork_cfg *cfg, int fd, pid_t parent) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the test died before prctl took effect */
        _exit(2);
#else
    (void)parent;
#endif
    /* The test framework's crash handlers would longjmp back into the parent's tests. */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    /* Drop the parent's sockets (a ZeroMQ context is not the child's to touch). */
    long maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 4096)
        maxfd = 4096;
    for (int i = 3; i < (int)maxfd; i++)
        if (i != fd)
            close(i);

    char err[512], line[600];
    const eng_model_def *def = eng_model_find(cfg->model);
    eng_model m;
    if (!def) {
        snprintf(line, sizeof line, "!model '%s' is not registered\n", cfg->model);
        write_all(fd, line);
        _exit(2);
    }
    if (eng_model_build(&m, def, err, sizeof err) != PST_OK) {
        snprintf(line, sizeof line, "!eng_model_build: %s\n", err);
        write_all(fd, line);
        _exit(2);
    }
    ps_config pc;
    memset(&pc, 0, sizeof pc);
    pc.model = &m;
    pc.server_id = cfg->server_id;
    pc.num_servers = cfg->num_servers;
    pc.num_workers = cfg->num_workers;
    pc.mode = cfg->mode;
    pc.staleness = cfg->staleness;
    static eng_model part[ENG_MAX_PARTS]; /* the server borrows them */
    pc.nparts = m.nparts;
    for (int p = 0; p < m.nparts; p++) {
        eng_model_part(&m, p, &part[p]);
        pc.parts[p] = (ps_part_cfg){&part[p], cfg->optim, eng_model_part_seed(cfg->seed, p)};
    }
    pc.bind_host = "127.0.0.1";
    pc.advertise_host = "127.0.0.1";
    pc.log = stderr;
    ps_server *s = ps_server_new(&pc, err, sizeof err);
    if (!s) {
        snprintf(line, sizeof line, "!ps_server_new: %s\n", err);
        write_all(fd, line);
        _exit(2);
    }
    snprintf(line, sizeof line, "%s\n", ps_server_endpoint(s));
    write_all(fd, line);
    close(fd);
    const int rc = ps_server_run(s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "psfork: ps_server_run: %s\n", err);
    ps_server_free(&s);
    fflush(stderr);
    _exit(rc == 0 ? 0 : 1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int tu_psfork_start(tu_psfork *f, const tu_psfork_cfg *cfg, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(err, errlen, "psfork: pipe: %s", strerror(errno));
        return -1;
    }
    const pid_t parent = getpid();
    fflush(NULL); /* or the child's exit would flush the parent's buffers twice */
    const pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "psfork: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(cfg, fds[1], parent);
    }
    close(fds[1]);
    f->pid = pid;

    /* One line: the endpoint, or "!" and the reason. */
    char line[600];
    size_t len = 0;
    const double deadline = now_s() + 10.0;
    while (len + 1 < sizeof line && (len == 0 || line[len - 1] != '\n')) {
        const double left = deadline - now_s();
        struct pollfd p = {fds[0], POLLIN, 0};
        const int ready = left > 0 ? poll(&p, 1, (int)(left * 1000.0) + 1) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            break;
        const ssize_t k = read(fds[0], line + len, sizeof line - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(fds[0]);
    line[len] = '\0';
    if (len && line[len - 1] == '\n')
        line[--len] = '\0';
    if (len == 0 || line[0] == '!' || len >= sizeof f->endpoint) {
        snprintf(err, errlen, "psfork: the server did not start: %s",
                 len == 0 ? "no endpoint within 10 s" : line + (line[0] == '!'));
        tu_psfork_kill(f);
        return -1;
    }
    memcpy(f->endpoint, line, len + 1);
    return 0;
}

int tu_psfork_running(tu_psfork *f) {
    if (f->pid <= 0 || f->reaped)
        return 0;
    int ws;
    pid_t r;
    while ((r = waitpid(f->pid, &ws, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r == f->pid) {
        f->reaped = 1;
        f->wstatus = ws;
        return 0;
    }
    return r == 0;
}

int tu_psfork_wait(tu_psfork *f, double timeout_s, char *err, size_t errlen) {
    if (f->pid <= 0) {
        snprintf(err, errlen, "psfork: no server process");
        return -1;
    }
    const double deadline = now_s() + timeout_s;
    while (tu_psfork_running(f)) {
        if (now_s() > deadline) {
            snprintf(err, errlen, "psfork: server pid %d did not exit within %.1f s; killed",
                     (int)f->pid, timeout_s);
            tu_psfork_kill(f);
            return -1;
        }
        const struct timespec ms10 = {0, 10 * 1000 * 1000};
        nanosleep(&ms10, NULL);
    }
    const int ws = f->wstatus;
    const pid_t pid = f->pid;
    memset(f, 0, sizeof *f);
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    snprintf(err, errlen, "psfork: server pid %d was killed by signal %d", (int)pid,
             WIFSIGNALED(ws) ? WTERMSIG(ws) : -1);
    return -1;
}

void tu_psfork_kill(tu_psfork *f) {
    if (f->pid > 0 && !f->reaped) {
        kill(f->pid, SIGKILL);
        int ws;
        while (waitpid(f->pid, &ws, 0) < 0 && errno == EINTR)
            ;
    }
    memset(f, 0, sizeof *f);
}
