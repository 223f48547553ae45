/* job.c: a rank of a parameter-server job (mpirun or srun with --servers P): MPI's start-up,
 * then the rank's role. Ranks 0..P-1 serve (server_rank.c), P..N-1 are workers (worker/).
 *
 * MPI is the control plane only: the job's keys and token, the checkpoint to resume from,
 * every server's endpoints, the placement map. From there on no MPI collective (a lost
 * process would hang it): the ranks agree through the servers, gradients and weights travel
 * over ZeroMQ, and each rank ends on its own (cmd_job_end). */
#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/shard.h"
#include "launch/cmd/cmd.h"
#include "launch/cmd/jobfile.h"
#include "launch/cmd/server_rank.h"
#include "proto/secure.h"
#include "proto/wire.h"
#include "worker/ckpt/writer.h"
#include "worker/heartbeat.h"
#include "worker/init_from.h"
#include "worker/paths.h"
#include "worker/train.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ENDPOINT_MAX 160
#define CHECK_IN_TAG 19 /* a rank's check-in with rank 0: its server's endpoint */

/* --- how a rank ends ------------------------------------------------------------------
 * MPI_Finalize waits for every rank, a dead one too (Open MPI 4.1 with --enable-recovery):
 * a rank that knows a peer is gone ends without it, and a rank that does not know gives the
 * others the peer timeout and this long to get there. */
#define FINALIZE_GRACE_S 10

static int started;    /* MPI_Init was called */
static int peer_gone;  /* this rank knows a peer is gone */
static double grace_s; /* --peer-timeout */
static volatile sig_atomic_t exit_status;

static void on_finalize_alarm(int sig) {
    (void)sig;
    _exit(exit_status);
}

void cmd_job_end(int status) {
    if (!started)
        return;
    if (peer_gone)
        _exit(status);
    exit_status = status;
    signal(SIGALRM, on_finalize_alarm);
    alarm((unsigned)grace_s + FINALIZE_GRACE_S);
    MPI_Finalize();
    alarm(0);
}

/* --- start-up's bound -----------------------------------------------------------------
 * From MPI_Init until every rank has every server's endpoint, a rank waits on the others:
 * in MPI_Init (Open MPI's exchange of addresses), then in the collectives below. One that
 * died there (a signal before any handler, a SIGKILL) would leave the others waiting for
 * ever, and mpirun --enable-recovery does not end them. So a watchdog thread gives each wait
 * --timeout seconds (the start grace the servers give the workers; at least STARTUP_MIN_S),
 * and then ends the rank with one line naming it and what it waited for (status 1). Every
 * surviving rank's own watchdog ends it, and mpirun ends with the last of them.
 * A rank's own work between the waits (rank 0 reading the --resume checkpoint) is not
 * bounded: only waits are. */
#define STARTUP_MIN_S 10.0 /* MPI_Init of a job on a loaded machine takes seconds */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int running;
    int rank;       /* the launcher's rank until MPI_Comm_rank */
    double bound_s; /* each wait's bound */
    int floored;    /* bound_s is STARTUP_MIN_S, more than --timeout */
    double until;   /* pst_now() when the current wait is given up */
    int waiting;    /* 0: this rank's own work, no bound */
    int over;
    char what[256]; /* what this rank waits for */
} boot = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *boot_watch(void *arg) {
    (void)arg;
    pthread_mutex_lock(&boot.lock);
    for (;;) {
        if (boot.over) {
            pthread_mutex_unlock(&boot.lock);
            return NULL;
        }
        const double now = pst_now(), wait_s = boot.waiting ? boot.until - now : 1.0;
        if (boot.waiting && wait_s <= 0)
            break;
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        const double s = (double)at.tv_sec + 1e-9 * (double)at.tv_nsec + wait_s;
        at.tv_sec = (time_t)s;
        at.tv_nsec = (long)((s - (double)at.tv_sec) * 1e9);
        pthread_cond_timedwait(&boot.wake, &boot.lock, &at);
    }
    char least[32] = "";
    if (boot.floored)
        snprintf(least, sizeof least, ", at least %g s", STARTUP_MIN_S);
    fprintf(stderr, "pstrain: rank %d: start-up did not finish within %g s (--timeout%s): %s\n",
            boot.rank, boot.bound_s, least, boot.what);
    cmd_exit_now(PST_EPEER); /* the lock stays held: nothing else may end this rank now */
}

/* A start-up signal (SIGTERM, SIGINT, SIGHUP before the job's own handlers): the rank ends
 * as it would have, but says so first, so that the job's log names the rank that went. */
static const int boot_signals[] = {SIGTERM, SIGINT, SIGHUP};
static const char *const boot_signal_names[] = {"SIGTERM", "SIGINT", "SIGHUP"};
static char boot_signal_line[3][112]; /* made before a signal can come */

static void on_boot_signal(int sig) {
    for (size_t i = 0; i < sizeof boot_signals / sizeof boot_signals[0]; i++)
        if (boot_signals[i] == sig) {
            ssize_t w = write(STDERR_FILENO, boot_signal_line[i], strlen(boot_signal_line[i]));
            (void)w;
        }
    cmd_say_status_in_signal(128 + sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Arms the watchdog (bound_s a wait) and the start-up signals' line; before MPI_Init. */
static void boot_start(double bound_s) {
    boot.rank = cmd_launcher_rank();
    boot.floored = bound_s < STARTUP_MIN_S;
    boot.bound_s = boot.floored ? STARTUP_MIN_S : bound_s;
    for (size_t i = 0; i < sizeof boot_signals / sizeof boot_signals[0]; i++) {
        snprintf(boot_signal_line[i], sizeof boot_signal_line[i],
                 "pstrain: rank %d: ended by %s during start-up: the job cannot start without "
                 "it\n",
                 boot.rank, boot_signal_names[i]);
        signal(boot_signals[i], on_boot_signal);
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&boot.wake, &ca);
    pthread_condattr_destroy(&ca);
    sigset_t all, old; /* the watchdog takes no signal: they stay the main thread's */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    boot.running = pthread_create(&boot.thread, NULL, boot_watch, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* This rank now waits on others for what (printf-style: "rank 0 never sent ..."), for at
 * most the bound from now; NULL: it works on its own, unbounded. */
static void boot_wait(const char *what, ...) __attribute__((format(printf, 1, 2)));
static void boot_wait(const char *what, ...) {
    pthread_mutex_lock(&boot.lock);
    boot.waiting = what != NULL;
    boot.until = pst_now() + boot.bound_s;
    if (what) {
        va_list ap;
        va_start(ap, what);
        vsnprintf(boot.what, sizeof boot.what, what, ap);
        va_end(ap);
    }
    pthread_cond_signal(&boot.wake);
    pthread_mutex_unlock(&boot.lock);
}

/* The same wait, its words changed (the ranks still missing) but not its deadline. */
static void boot_waiting_for(const char *what) {
    pthread_mutex_lock(&boot.lock);
    snprintf(boot.what, sizeof boot.what, "%s", what);
    pthread_mutex_unlock(&boot.lock);
}

/* Start-up is over: the watchdog goes, and the start-up signals get back their default
 * where the job has not set its own (cmd_stop_signals). */
static void boot_over(void) {
    pthread_mutex_lock(&boot.lock);
    boot.over = 1;
    pthread_cond_signal(&boot.wake);
    pthread_mutex_unlock(&boot.lock);
    if (boot.running)
        pthread_join(boot.thread, NULL);
    boot.running = 0;
    for (size_t i = 0; i < sizeof boot_signals / sizeof boot_signals[0]; i++) {
        struct sigaction cur;
        if (sigaction(boot_signals[i], NULL, &cur) == 0 && cur.sa_handler == on_boot_signal)
            signal(boot_signals[i], SIG_DFL);
    }
}

/* Rank 0 reads and checks the checkpoint; every other rank gets its file's bytes over MPI
 * (no shared file system needed) and parses them as rank 0 parsed the file. Returns PST_OK,
 * or a code with err on every rank. */
static int bcast_resume(const wk_opts *o, int rank, eng_ckpt *c, int *fresh, char *err,
                        size_t errlen) {
    void *bytes = NULL;
    size_t len = 0;
    char name[WK_PATH_MAX] = "";
    int rc = rank == 0 ? wk_resume_load_bytes(o, c, fresh, &bytes, &len, name, sizeof name, stdout,
                                              err, errlen)
                       : PST_OK;
    if (rank == 0)
        boot_wait("the --resume checkpoint did not reach every rank (one died after it checked "
                  "in)");
    else
        boot_wait("the --resume checkpoint did not come from rank 0 (it is still reading it, or "
                  "a rank died after it checked in)");
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc != PST_OK) {
        MPI_Bcast(err, (int)errlen, MPI_CHAR, 0, MPI_COMM_WORLD);
        return rc;
    }
    MPI_Bcast(fresh, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (*fresh)
        return PST_OK;
    uint64_t n = len;
    MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(name, (int)sizeof name, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank != 0)
        bytes = pst_malloc(n);
    /* MPI counts in int: a checkpoint of 2 GiB or more goes in pieces */
    for (uint64_t at = 0; at < n; at += INT_MAX)
        MPI_Bcast((char *)bytes + at, (int)(n - at < INT_MAX ? n - at : INT_MAX), MPI_BYTE, 0,
                  MPI_COMM_WORLD);
    if (rank != 0) {
        boot_wait(NULL);
        rc = wk_resume_parse(o, bytes, n, name, c, err, errlen);
        boot_wait("the ranks did not all say they read the --resume checkpoint (one died after "
                  "it checked in)");
    }
    free(bytes);
    /* every rank goes on, or none: a rank that could not parse what rank 0 could says why */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (worst != PST_OK && rc == PST_OK) {
        eng_ckpt_free(c);
        return pst_err(err, errlen, worst, "--resume: %s: another rank could not read its bytes",
                       name);
    }
    return rc;
}

/* --init-from: rank 0 reads the files, every rank gets the weights over MPI (the servers
 * start from them, the workers pull them). Returns PST_OK with *init (pst_alloc'ed) on every
 * rank, or a code with err on every rank. */
static int bcast_init(const wk_opts *o, const eng_model *m, int rank, float **init, char *err,
                      size_t errlen) {
    int rc = rank == 0 ? wk_init_from_load(o, m, init, err, errlen) : PST_OK;
    boot_wait("the --init-from weights did not reach every rank (one died after it checked in)");
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc != PST_OK) {
        MPI_Bcast(err, (int)errlen, MPI_CHAR, 0, MPI_COMM_WORLD);
        return rc;
    }
    if (rank != 0)
        *init = pst_alloc(sizeof(float) * m->layout.total);
    PST_ASSERT(m->layout.total < INT_MAX, "%zu floats", m->layout.total);
    MPI_Bcast(*init, (int)m->layout.total, MPI_FLOAT, 0, MPI_COMM_WORLD);
    boot_wait(NULL);
    return PST_OK;
}

/* --secure on|off|auto (auto: on when the job's ranks are on more than one host). */
static int wants_secure(const wk_opts *o, int rank) {
    if (strcmp(o->secure, "auto") != 0)
        return strcmp(o->secure, "on") == 0;
    char here[MPI_MAX_PROCESSOR_NAME] = "", first[MPI_MAX_PROCESSOR_NAME] = "";
    int len;
    MPI_Get_processor_name(here, &len);
    if (rank == 0)
        memcpy(first, here, sizeof first);
    MPI_Bcast(first, (int)sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
    int other = strcmp(here, first) != 0;
    MPI_Allreduce(MPI_IN_PLACE, &other, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return other;
}

/* The job's keys and token, fresh for each job and handed out here, over MPI: never on disk
 * or a command line. Every message carries the token, and one without it (a stranger's,
 * another job's) is dropped; with --secure every connection is CURVE too, and servers admit
 * only the job's key. Returns PST_OK on every rank, or a code with err on rank 0. */
static int hand_out_keys(const wk_opts *o, int rank, pb_keys *keys, int *secure, char *err,
                         size_t errlen) {
    boot_wait("the job's keys were not handed out to every rank (one died after it checked "
              "in)");
    *secure = wants_secure(o, rank);
    int rc = PST_OK;
    if (rank == 0) {
        if (*secure)
            rc = pb_keys_new(keys, err, errlen);
        else if (getrandom(&keys->token, sizeof keys->token, 0) != (ssize_t)sizeof keys->token)
            rc = pst_err(err, errlen, PST_EIO, "getrandom: cannot draw the job's token");
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc != PST_OK)
        return rc;
    MPI_Bcast(keys, (int)sizeof *keys, MPI_BYTE, 0, MPI_COMM_WORLD);
    pb_set_job_token(keys->token);
    if (rank == 0 && *secure)
        printf("secure: CURVE on every connection, with keys made for this job\n");
    return PST_OK;
}

/* The words for the ranks whose request is still active (req[r] for r >= 1), with did
 * ("arrived"): "rank 1 never arrived (it died or did not start)", "ranks 1, 4 and 5 never
 * arrived (they ...)". */
static void name_ranks(MPI_Request *req, int size, const char *did, char *out, size_t outlen) {
    int missing = 0, shown = 0;
    for (int r = 1; r < size; r++)
        missing += req[r] != MPI_REQUEST_NULL;
    size_t n = (size_t)snprintf(out, outlen, "rank%s ", missing > 1 ? "s" : "");
    for (int r = 1; r < size && n < outlen; r++) {
        if (req[r] == MPI_REQUEST_NULL)
            continue;
        if (shown == 8 && missing > 9) {
            n += (size_t)snprintf(out + n, outlen - n, " and %d more", missing - shown);
            break;
        }
        const char *sep = shown == 0 ? "" : shown == missing - 1 ? " and " : ", ";
        n += (size_t)snprintf(out + n, outlen - n, "%s%d", sep, r);
        shown++;
    }
    if (n < outlen)
        snprintf(out + n, outlen - n, " never %s (%s died%s)", did, missing > 1 ? "they" : "it",
                 strcmp(did, "arrived") == 0 ? " or did not start" : "");
}

/* Waits for every request in req[0..size) while the watchdog's line names the ranks whose
 * request is still active (see name_ranks). */
static void wait_naming(MPI_Request *req, int size, const char *did) {
    int *done = pst_calloc((size_t)size, sizeof *done);
    char missing[256];
    name_ranks(req, size, did, missing, sizeof missing);
    boot_wait("%s", missing);
    for (;;) {
        int n = 0;
        MPI_Testsome(size, req, &n, done, MPI_STATUSES_IGNORE);
        if (n == MPI_UNDEFINED)
            break;
        if (n > 0) {
            name_ranks(req, size, did, missing, sizeof missing);
            boot_waiting_for(missing);
        } else {
            nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
        }
    }
    free(done);
}

/* MPI_Allgather of len bytes a rank (own, into all: all + r * len is rank r's) as a
 * check-in: every rank sends rank 0 its bytes, and rank 0 sends every rank the lot. Point to
 * point only, no collective: a rank waits on rank 0 alone, and rank 0 names the ranks that
 * never came ("rank 3 never " did) or never took the answer. */
static void allgather_named(const void *own, void *all, int len, const char *did) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank != 0) {
        boot_wait("rank 0 never took this rank's check-in (it died)");
        MPI_Send(own, len, MPI_BYTE, 0, CHECK_IN_TAG, MPI_COMM_WORLD);
        boot_wait("rank 0 never answered this rank's check-in (it died, or waits for a rank "
                  "that did)");
        MPI_Recv(all, size * len, MPI_BYTE, 0, CHECK_IN_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        return;
    }
    MPI_Request *req = pst_calloc((size_t)size, sizeof *req);
    memcpy(all, own, (size_t)len);
    req[0] = MPI_REQUEST_NULL;
    for (int r = 1; r < size; r++)
        MPI_Irecv((char *)all + (size_t)len * (size_t)r, len, MPI_BYTE, r, CHECK_IN_TAG,
                  MPI_COMM_WORLD, &req[r]);
    wait_naming(req, size, did);
    for (int r = 1; r < size; r++)
        MPI_Isend(all, size * len, MPI_BYTE, r, CHECK_IN_TAG, MPI_COMM_WORLD, &req[r]);
    wait_naming(req, size, "took rank 0's answer to its check-in");
    free(req);
}

/* Every rank learns every server's endpoint: server r's at endpoints[r], and with
 * --replicas its backup's at backups[r] (on rank r + 1), in *all (free all three; *backups
 * NULL without replicas). mine: this rank's server (NULL on a worker, or a server that
 * failed). Returns PST_OK, or PST_EPEER when a server rank has none (it failed to start). */
static int gather_endpoints(const cmd_rank_server *mine, int P, int size, int replicas, char **all,
                            const char ***endpoints, const char ***backups) {
    char own[2 * ENDPOINT_MAX] = "";
    if (mine) {
        snprintf(own, ENDPOINT_MAX, "%s", cmd_rank_server_endpoint(mine));
        snprintf(own + ENDPOINT_MAX, ENDPOINT_MAX, "%s", cmd_rank_server_backup_endpoint(mine));
    }
    *all = pst_calloc((size_t)size, 2 * ENDPOINT_MAX);
    allgather_named(own, *all, 2 * ENDPOINT_MAX, "sent its endpoint");
    *endpoints = pst_calloc((size_t)P, sizeof **endpoints);
    *backups = replicas ? pst_calloc((size_t)P, sizeof **backups) : NULL;
    int rc = PST_OK;
    for (int r = 0; r < P; r++) {
        (*endpoints)[r] = *all + (size_t)2 * ENDPOINT_MAX * (size_t)r;
        if ((*endpoints)[r][0] == '\0')
            rc = PST_EPEER;
        if (replicas) /* shard r's copy is on the next rank */
            (*backups)[r] = *all + (size_t)2 * ENDPOINT_MAX * (size_t)((r + 1) % P) + ENDPOINT_MAX;
    }
    return rc;
}

/* --max-workers: rank 0 writes what a worker needs to join (jobfile.h) where --job-file
 * says, else into --checkpoint-dir. A job with neither says so: it takes no one. */
static void write_job_file(const wk_opts *o, int P, int W, const char *const *endpoints,
                           const char *const *backups, const pb_keys *keys, uint64_t token) {
    char path[WK_PATH_MAX + 16], err[512];
    if (o->job_file[0])
        snprintf(path, sizeof path, "%s", o->job_file);
    else if (o->checkpoint_dir[0]) {
        if (wk_mkdirs("checkpoint-dir", o->checkpoint_dir, err, sizeof err) != PST_OK) {
            fprintf(stderr, "pstrain: %s\n", err);
            return;
        }
        snprintf(path, sizeof path, "%s/job.json", o->checkpoint_dir);
    } else {
        fprintf(stderr,
                "pstrain: --max-workers %lld: no --job-file nor --checkpoint-dir to write "
                "the job file in: no worker can join\n",
                (long long)o->max_workers);
        return;
    }
    int argc;
    char **argv;
    cmd_argv(&argc, &argv);
    cmd_jobfile j = {.nargs = argc > 2 ? argc - 2 : 0,
                     .args = argv + 2,
                     .servers = P,
                     .endpoints = (char **)endpoints,
                     .backups = (char **)backups,
                     .secure = keys != NULL,
                     .workers = W,
                     .max_workers = (int)o->max_workers};
    if (keys)
        j.keys = *keys;
    j.keys.token = token;
    if (cmd_jobfile_write(path, &j, err, sizeof err) == PST_OK)
        printf("job file: %s (pstrain train --join %s adds a worker, up to %lld)\n", path, path,
               (long long)o->max_workers);
    else
        fprintf(stderr, "pstrain: %s\n", err);
    fflush(stdout);
    pb_keys_wipe(&j.keys);
}

/* The first worker says where the servers are, and which server holds what of each part. */
static void print_placement(const eng_model *m, const char *const *endpoints,
                            const char *const *backups, int P) {
    for (int r = 0; r < P; r++)
        printf("server %d at %s\n", r, endpoints[r]);
    for (int r = 0; backups && r < P; r++)
        printf("server %d's shard also on server %d, at %s\n", r, (r + 1) % P, backups[r]);
    for (int p = 0; p < m->nparts; p++) {
        eng_model part;
        eng_model_part(m, p, &part);
        if (m->nparts > 1)
            printf("%s:\n", m->parts[p].name);
        eng_shard_print(&part.layout, P, stdout);
    }
    fflush(stdout);
}

/* A worker rank: heartbeats to every server from a thread of its own, and training. A failure
 * before it has joined the job ends the whole job (the servers would wait for it). */
static int work(const cmd_config *c, const cmd_rank_job *rj, const char *const *endpoints,
                const char *const *backups, const eng_ckpt *resume, volatile sig_atomic_t *stop) {
    const int P = rj->servers, id = rj->rank - P;
    char(*name)[48] = pst_calloc((size_t)P, sizeof *name);
    const char **names = pst_calloc((size_t)P, sizeof *names);
    for (int i = 0; i < P; i++) {
        snprintf(name[i], sizeof name[i], "server %d", i);
        names[i] = name[i];
    }
    char err[1024] = "";
    int joined = 0, rc;
    wk_heartbeat *hb = wk_heartbeat_new(endpoints, names, P, id, c->worker.peer_timeout, rj->keys,
                                        err, sizeof err);
    const int most = c->worker.max_workers > rj->workers ? (int)c->worker.max_workers : rj->workers;
    wk_job job = {.worker_id = id,
                  .num_workers = most,
                  .world = rj->workers,
                  .num_servers = P,
                  .endpoints = endpoints,
                  .backups = backups,
                  .heartbeat = hb,
                  .joined = &joined,
                  .lost = &peer_gone,
                  .keys = rj->keys};
    rc = hb ? wk_train(&c->worker, &job, resume, rj->init, stop, err, sizeof err) : PST_EPEER;
    if (rc != PST_OK && rc != PST_ESTOPPED)
        fprintf(stderr, "pstrain: worker %d: %s\n", id, err);
    if (rc != PST_OK && rc != PST_ESTOPPED && !joined)
        cmd_abort_job(rc); /* nothing could start: the servers would wait for this worker */
    char why[8];
    peer_gone |= wk_heartbeat_lost(hb, why, sizeof why);
    wk_heartbeat_free(&hb);
    free(names);
    free(name);
    return rc;
}

int cmd_job(const cmd_config *c) {
    const wk_opts *o = &c->worker;
    int provided, rank, size;
    boot_start(o->timeout);
    boot_wait("MPI_Init still waits for the other ranks (one died or did not start)");
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    boot_wait(NULL);
    started = 1;
    grace_s = o->peer_timeout;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    pthread_mutex_lock(&boot.lock);
    boot.rank = rank;
    pthread_mutex_unlock(&boot.lock);
    /* every rank is there before any collective: rank 0 names one that is not */
    char here = 1, *all_here = pst_calloc((size_t)size, 1);
    allgather_named(&here, all_here, 1, "arrived");
    free(all_here);
    boot_wait(NULL);
    const int P = (int)o->servers, W = size - P;
    if (W < 1) {
        boot_over();
        if (rank == 0)
            fprintf(stderr,
                    "pstrain: --servers %d: needs at least %d ranks (servers and a worker), "
                    "mpirun started %d\n",
                    P, P + 1, size);
        return PST_EARG;
    }
    static eng_model m; /* the servers and the worker borrow it until the end */
    char err[1024] = "";
    PST_ASSERT(eng_model_build(&m, eng_model_find(o->model), err, sizeof err) == PST_OK, "%s", err);
    eng_ckpt resume = {0};
    int fresh = 1, rc;
    if (o->resume[0] && (rc = bcast_resume(o, rank, &resume, &fresh, err, sizeof err)) != PST_OK) {
        boot_over();
        return rank == 0 ? cmd_said(rc, err) : rc;
    }
    float *init = NULL;
    if (o->init_from[0] && fresh &&
        (rc = bcast_init(o, &m, rank, &init, err, sizeof err)) != PST_OK) {
        boot_over();
        return rank == 0 ? cmd_said(rc, err) : rc;
    }
    volatile sig_atomic_t *stop = cmd_stop_signals(o);
    static pb_keys keys;
    int secure;
    if ((rc = hand_out_keys(o, rank, &keys, &secure, err, sizeof err)) != PST_OK) {
        boot_over();
        if (rank == 0)
            fprintf(stderr, "pstrain: --secure: %s\n", err);
        return PST_EARG;
    }
    const eng_ckpt *from = o->resume[0] && !fresh ? &resume : NULL;
    const cmd_rank_job rj = {.rank = rank,
                             .servers = P,
                             .workers = W,
                             .model = &m,
                             .keys = secure ? &keys : NULL,
                             .init = init};
    boot_wait(NULL);
    cmd_rank_server *server = rank < P ? cmd_rank_server_start(c, &rj, from, stop) : NULL;
    char *all;
    const char **endpoints, **backups;
    rc = gather_endpoints(server, P, size, (int)o->replicas, &all, &endpoints, &backups);
    boot_over();
    if (rc == PST_OK && rank == P)
        print_placement(&m, endpoints, backups, P);
    if (rc == PST_OK && server && backups)
        rc = cmd_rank_server_set_backup(server, backups[rank]);
    if (rc != PST_OK || (rank < P && !server)) /* nothing has started: the workers would wait */
        cmd_abort_job(PST_EPEER);
    if (rank == 0 && o->max_workers > W)
        write_job_file(o, P, W, endpoints, backups, secure ? &keys : NULL, keys.token);
    if (server)
        rc = cmd_rank_server_run(server, o->max_workers > W ? (int)o->max_workers : W,
                                 strcmp(o->log_level, "quiet") == 0, &peer_gone);
    else
        rc = work(c, &rj, endpoints, backups, from, stop);
    cmd_rank_server_free(&server);
    pb_keys_wipe(&keys);
    free(endpoints);
    free(backups);
    free(all);
    eng_ckpt_free(&resume);
    pst_free(init);
    return rc;
}
