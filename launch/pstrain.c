/* pstrain.c: the program every rank of a job runs, and the only place that exits.
 *
 * Alone (no MPI launcher in the environment, or --servers 0) it trains in one process.
 * Started by mpirun or srun with --servers P, each rank takes its role from its rank:
 * 0..P-1 are parameter servers (ps/), P..N-1 workers (worker/). MPI is the control plane
 * only: roles, gathering the servers' endpoints, the placement map, the workers'
 * reductions and the final barrier. Gradients and weights travel over ZeroMQ. */
#define _DEFAULT_SOURCE /* getifaddrs flags (IFF_UP) beyond POSIX */
#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/pool.h"
#include "engine/shard.h"
#include "proto/secure.h"
#include "proto/wire.h"
#include "ps/server.h"
#include "worker/check.h"
#include "worker/ckpt/writer.h"
#include "worker/ckpt/record.h"
#include "worker/cli.h"
#include "worker/gan.h"
#include "worker/heartbeat.h"
#include "worker/plot.h"
#include "worker/preflight.h"
#include "worker/train.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <limits.h>
#include <mpi.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define ENDPOINT_MAX 160

/* Set by SIGTERM and SIGINT when the job checkpoints: it then saves and stops at the next
 * step (a preempted VM gets a last checkpoint before it goes). */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* MPI_Finalize waits for every rank, a dead one too (Open MPI 4.1 with --enable-recovery):
 * a rank that knows a peer is gone ends without it, and a rank that does not know gives the
 * others the peer timeout and this long to get there. */
#define FINALIZE_GRACE_S 10
static volatile sig_atomic_t exit_status;

static void on_finalize_alarm(int sig) {
    (void)sig;
    _exit(exit_status);
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
static int launcher_rank(void) {
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

static void on_fatal_signal(int sig) {
    say_status_from(128 + sig, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Under an MPI launcher: prepares the line and catches the signals that end a rank on a
 * programming error. Nothing for a process that runs alone (its status is its own). */
static void status_init(void) {
    const int rank = launcher_rank();
    if (rank < 0)
        return;
    snprintf(status_line, sizeof status_line, "pstrain: rank %d ends with status ", rank);
    static const int fatal[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], on_fatal_signal);
}

/* MPI_Abort, after the rank has said why it ends. */
_Noreturn static void abort_job(int status) {
    say_status(status);
    MPI_Abort(MPI_COMM_WORLD, status);
    _exit(status); /* MPI_Abort does not return; this tells the compiler so */
}

static int finish(int status, int peer_gone, double peer_timeout) {
    say_status(status);
    if (peer_gone)
        _exit(status);
    exit_status = status;
    signal(SIGALRM, on_finalize_alarm);
    alarm((unsigned)peer_timeout + FINALIZE_GRACE_S);
    MPI_Finalize();
    alarm(0);
    return status;
}

static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* Rank 0 reads the checkpoint; every rank gets a copy over MPI (no shared file system
 * needed). Returns PST_OK, or a code with err on every rank. */
static int bcast_resume(const wk_opts *o, int rank, eng_ckpt *c, int *fresh, char *err,
                        size_t errlen) {
    int rc = rank == 0 ? wk_resume_load(o, c, fresh, stdout, err, errlen) : PST_OK;
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc != PST_OK) {
        MPI_Bcast(err, (int)errlen, MPI_CHAR, 0, MPI_COMM_WORLD);
        return rc;
    }
    MPI_Bcast(fresh, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (*fresh)
        return PST_OK;
    eng_ckpt head = *c; /* the scalars; the arrays follow */
    MPI_Bcast(&head, (int)sizeof head, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank != 0) {
        *c = head;
        c->weights = pst_alloc(sizeof(float) * c->total);
        for (int p = 0; p < c->nparts; p++) {
            eng_ckpt_part *part = &c->parts[p];
            part->slots[0] = part->slots[1] = NULL;
            for (int i = 0; i < part->nslots; i++)
                part->slots[i] = pst_alloc(sizeof(float) * part->total);
            part->runs = pst_alloc(sizeof *part->runs * (size_t)part->nruns);
            /* rank 0's says if any */
            part->ema = head.parts[p].ema ? pst_alloc(sizeof(float) * part->total) : NULL;
        }
        for (int i = 0; i < c->meta.narrays; i++)
            c->meta.arrays[i].v =
                pst_alloc(sizeof(int64_t) * (c->meta.arrays[i].n ? c->meta.arrays[i].n : 1));
        c->vocab = c->vocab_bytes ? pst_alloc(c->vocab_bytes + 1) : NULL;
    }
    MPI_Bcast(c->weights, (int)c->total, MPI_FLOAT, 0, MPI_COMM_WORLD);
    for (int p = 0; p < c->nparts; p++) {
        eng_ckpt_part *part = &c->parts[p];
        for (int i = 0; i < part->nslots; i++)
            MPI_Bcast(part->slots[i], (int)part->total, MPI_FLOAT, 0, MPI_COMM_WORLD);
        MPI_Bcast(part->runs, (int)(sizeof *part->runs * (size_t)part->nruns), MPI_BYTE, 0,
                  MPI_COMM_WORLD);
        if (part->ema)
            MPI_Bcast(part->ema, (int)part->total, MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
    for (int i = 0; i < c->meta.narrays; i++)
        MPI_Bcast(c->meta.arrays[i].v, (int)c->meta.arrays[i].n, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (c->vocab_bytes)
        MPI_Bcast(c->vocab, (int)c->vocab_bytes + 1, MPI_CHAR, 0, MPI_COMM_WORLD);
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

/* True when an MPI launcher started this process. */
static int under_mpi_launcher(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* This host's first up, non-loopback IPv4 address, else 127.0.0.1. */
static void host_address(char *buf, size_t len) {
    snprintf(buf, len, "127.0.0.1");
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
            !(i->ifa_flags & IFF_LOOPBACK)) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, (socklen_t)len);
            break;
        }
    freeifaddrs(ifs);
}

/* Starts server `rank` of P for the vector of model m (a whole model, or one part of a GAN
 * with its optimizer and seed): initialises its shard (from the checkpoint when resuming)
 * and binds. NULL on failure (printed). */
static ps_server *start_server(const wk_opts *o, const eng_model *m, const eng_optim_cfg *optim,
                               uint64_t seed, int rank, int P, int W, const eng_ckpt *resume,
                               int part, const pb_keys *keys) {
    char err[512] = "", advertise[64];
    if (o->advertise[0])
        snprintf(advertise, sizeof advertise, "%s", o->advertise);
    else
        host_address(advertise, sizeof advertise);
    ps_config cfg = {.model = m,
                     .server_id = rank,
                     .num_servers = P,
                     .num_workers = W,
                     .mode = (ps_mode)ps_mode_parse(o->mode),
                     .staleness = (int)o->staleness,
                     .optim = *optim,
                     .seed = seed,
                     .bind_host = o->bind,
                     .advertise_host = advertise,
                     .log = stderr,
                     .verbose = strcmp(o->log_level, "debug") == 0,
                     .threads = (int)o->server_threads,
                     .chunk = (size_t)o->chunk,
                     .stop = o->checkpoint_dir[0] ? &stop_requested : NULL,
                     .peer_timeout = o->peer_timeout,
                     .start_grace = o->timeout,
                     .abort_on_worker_loss = strcmp(o->on_worker_loss, "abort") == 0,
                     .keys = keys};
    if (o->port_range[0])
        sscanf(o->port_range, "%d-%d", &cfg.port_min, &cfg.port_max);
    ps_server *s = ps_server_new(&cfg, err, sizeof err);
    if (s && resume && ps_server_restore(s, resume, part, err, sizeof err) != PST_OK)
        ps_server_free(&s);
    if (!s)
        fprintf(stderr, "pstrain: %s\n", err);
    return s;
}

/* The optimizer --optimizer, --lr, --clipvalue and --decay describe, or the checkpoint's. */
static eng_optim_cfg flags_optim(const wk_opts *o, const eng_ckpt *resume) {
    if (resume)
        return resume->parts[0].optim;
    eng_optim_cfg c = eng_optim_defaults((eng_optim_kind)eng_optim_kind_parse(o->optimizer));
    if (o->lr > 0)
        c.lr = (float)o->lr;
    c.clipvalue = (float)o->clipvalue;
    c.decay = (float)o->decay;
    return c;
}

/* A server rank's tables: the model's vector, or a GAN's two (each its own ps_server). */
typedef struct tables {
    ps_server *s[2];
    int n;
} tables;

static int start_tables(tables *t, const wk_opts *o, const eng_model *m, int rank, int P, int W,
                        const eng_ckpt *resume, const pb_keys *keys) {
    memset(t, 0, sizeof *t);
    if (!m->split) {
        const eng_optim_cfg c = flags_optim(o, resume);
        t->s[0] = start_server(o, m, &c, (uint64_t)o->seed, rank, P, W, resume, 0, keys);
        t->n = 1;
        return t->s[0] ? 0 : -1;
    }
    static eng_model part[2]; /* the servers borrow them until the end */
    eng_optim_cfg cfg[2];
    wk_gan_optims(o, resume, cfg);
    for (int p = 0; p < 2; p++) {
        char err[256];
        PST_ASSERT(eng_model_build(&part[p], &m->def->parts[p], err, sizeof err) == PST_OK, "%s",
                   err);
        t->s[p] = start_server(o, &part[p], &cfg[p], eng_model_part_seed((uint64_t)o->seed, p),
                               rank, P, W, resume, p, keys);
        t->n = p + 1;
        if (!t->s[p])
            return -1;
    }
    return 0;
}

static int serve_one(ps_server *s, int rank, int W, const char *what, int quiet) {
    char err[512];
    int rc = ps_server_run(s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "pstrain: %s\n", err);
    if (quiet)
        return rc == 0 ? 0 : 1;
    const ps_stats *st = ps_server_stats(s);
    printf("server %d%s: %llu updates, %llu pushes, %llu pulls, %.1f MB in, %.1f MB out, %llu "
           "refused, staleness mean %.2f max %llu\n",
           rank, what, (unsigned long long)st->updates, (unsigned long long)st->pushes,
           (unsigned long long)st->pulls, (double)st->bytes_in / 1e6, (double)st->bytes_out / 1e6,
           (unsigned long long)st->errors,
           st->staleness_n ? (double)st->staleness_sum / (double)st->staleness_n : 0.0,
           (unsigned long long)st->staleness_max);
    printf("server %d%s: pushes per worker:", rank, what);
    for (int w = 0; w < W; w++)
        printf(" %llu", (unsigned long long)ps_server_pushes_from(s, w));
    printf("\n");
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}

/* A GAN's second table runs on a thread of its own. */
typedef struct table_thread {
    ps_server *s;
    int rank, W, quiet, status;
} table_thread;

static void *serve_main(void *arg) {
    table_thread *t = arg;
    t->status = serve_one(t->s, t->rank, t->W, " (discriminator)", t->quiet);
    return NULL;
}

static int serve(tables *t, int rank, int W, int quiet) {
    if (t->n == 1)
        return serve_one(t->s[0], rank, W, "", quiet);
    table_thread second = {t->s[1], rank, W, quiet, 1};
    pthread_t th;
    if (pthread_create(&th, NULL, serve_main, &second) != 0) {
        fprintf(stderr, "pstrain: server %d: cannot start a thread\n", rank);
        return 1;
    }
    const int status = serve_one(t->s[0], rank, W, " (generator)", quiet);
    pthread_join(th, NULL);
    return status ? status : second.status;
}

static int distributed(const wk_opts *o) {
    int provided, rank, size;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int P = (int)o->servers, W = size - P;
    if (W < 1) {
        if (rank == 0)
            fprintf(stderr,
                    "pstrain: --servers %d: needs at least %d ranks (servers and a worker), "
                    "mpirun started %d\n",
                    P, P + 1, size);
        MPI_Finalize();
        return 2;
    }
    eng_model m;
    char err[1024] = "";
    PST_ASSERT(eng_model_build(&m, eng_model_find(o->model), err, sizeof err) == PST_OK, "%s", err);
    eng_ckpt resume = {0};
    int fresh = 1;
    if (o->resume[0] && bcast_resume(o, rank, &resume, &fresh, err, sizeof err) != PST_OK) {
        if (rank == 0)
            fprintf(stderr, "pstrain: %s\n", err);
        MPI_Finalize();
        return 2;
    }
    if (o->checkpoint_dir[0])
        catch_stop_signals();
    /* The job's keys and token, fresh for each job and handed out here, over MPI: never on
     * disk or a command line. Every message carries the token, and one without it (a
     * stranger's, another job's) is dropped; with --secure every connection is CURVE too,
     * and servers admit only the job's key. */
    const int secure = wants_secure(o, rank);
    static pb_keys keys;
    int krc = 0;
    if (rank == 0) {
        if (secure)
            krc = pb_keys_new(&keys, err, sizeof err);
        else if (getrandom(&keys.token, sizeof keys.token, 0) != (ssize_t)sizeof keys.token)
            krc = pst_err(err, sizeof err, PST_EIO, "getrandom: cannot draw the job's token");
    }
    MPI_Bcast(&krc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (krc != 0) {
        if (rank == 0)
            fprintf(stderr, "pstrain: --secure: %s\n", err);
        MPI_Finalize();
        return 2;
    }
    MPI_Bcast(&keys, (int)sizeof keys, MPI_BYTE, 0, MPI_COMM_WORLD);
    pb_set_job_token(keys.token);
    if (rank == 0 && secure)
        printf("secure: CURVE on every connection, with keys made for this job\n");
    const eng_ckpt *from = o->resume[0] && !fresh ? &resume : NULL;
    tables server = {0};
    const int served =
        rank < P && start_tables(&server, o, &m, rank, P, W, from, secure ? &keys : NULL) == 0;

    /* Every rank learns every server's endpoints (one per table); an empty one means that
     * server failed. */
    const int T = m.split ? 2 : 1;
    char mine[2][ENDPOINT_MAX] = {"", ""};
    for (int t = 0; served && t < T; t++)
        snprintf(mine[t], ENDPOINT_MAX, "%s", ps_server_endpoint(server.s[t]));
    char *all = calloc((size_t)size, sizeof mine);
    PST_ASSERT(all, "out of memory");
    MPI_Allgather(mine, (int)sizeof mine, MPI_CHAR, all, (int)sizeof mine, MPI_CHAR,
                  MPI_COMM_WORLD);
    const char **endpoints = calloc((size_t)(2 * P), sizeof *endpoints);
    PST_ASSERT(endpoints, "out of memory");
    int status = 0;
    for (int r = 0; r < P; r++)
        for (int t = 0; t < T; t++) {
            endpoints[t * P + r] = all + sizeof mine * (size_t)r + (size_t)t * ENDPOINT_MAX;
            if (endpoints[t * P + r][0] == '\0')
                status = 1;
        }

    if (status == 0 && rank == P) {
        for (int r = 0; r < P; r++)
            if (T == 1)
                printf("server %d at %s\n", r, endpoints[r]);
            else
                printf("server %d at %s (generator) and %s (discriminator)\n", r, endpoints[r],
                       endpoints[P + r]);
        if (T == 1)
            eng_shard_print(&m.layout, P, stdout);
        fflush(stdout);
    }
    if (rank < P && !served)
        status = 1;
    if (status != 0) { /* nothing has started: the workers would wait for this rank */
        abort_job(status);
    }
    /* From here on no MPI collective: a lost process would hang it. The ranks agree through
     * the servers, and each ends on its own. */
    int gone = 0; /* this rank knows a peer is gone */
    if (served) {
        status = serve(&server, rank, W, strcmp(o->log_level, "quiet") == 0);
        for (int t = 0; status == 0 && t < server.n; t++)
            if (ps_server_stopped(server.s[t]))
                status = WK_STOPPED; /* the job checkpointed and stopped on request */
        for (int t = 0; t < server.n; t++)
            gone |= ps_server_lost(server.s[t]) > 0;
    } else {
        /* Heartbeats to every server, from a thread of this worker's own. */
        char(*name)[48] = calloc((size_t)(T * P), sizeof *name);
        const char **nm = calloc((size_t)(T * P), sizeof *nm);
        PST_ASSERT(name && nm, "out of memory");
        for (int i = 0; i < T * P; i++) {
            snprintf(name[i], sizeof name[i], "server %d%s", i % P,
                     T == 1  ? ""
                     : i < P ? " (generator)"
                             : " (discriminator)");
            nm[i] = name[i];
        }
        int joined = 0;
        wk_heartbeat *hb = wk_heartbeat_new(endpoints, nm, T * P, rank - P, o->peer_timeout,
                                            secure ? &keys : NULL, err, sizeof err);
        wk_job job = {.worker_id = rank - P,
                      .num_workers = W,
                      .num_servers = P,
                      .endpoints = endpoints,
                      .disc_endpoints = T == 2 ? endpoints + P : NULL,
                      .heartbeat = hb,
                      .joined = &joined,
                      .lost = &gone,
                      .keys = secure ? &keys : NULL};
        if (!hb)
            status = 1;
        else
            status = m.split ? wk_train_gan(o, &job, from, &stop_requested, err, sizeof err)
                             : wk_train(o, &job, from, &stop_requested, err, sizeof err);
        if (status != 0 && status != WK_STOPPED)
            fprintf(stderr, "pstrain: worker %d: %s\n", rank - P, err);
        if (status != 0 && status != WK_STOPPED && !joined) {
            abort_job(status); /* nothing could start: the servers would wait for this worker */
        }
        char why[8];
        gone |= wk_heartbeat_lost(hb, why, sizeof why);
        wk_heartbeat_free(&hb);
        free(nm);
        free(name);
    }
    for (int t = 0; t < server.n; t++)
        ps_server_free(&server.s[t]);
    pb_keys_wipe(&keys);
    free(endpoints);
    free(all);
    eng_ckpt_free(&resume);
    return finish(status, gone, o->peer_timeout);
}

/* eval and inspect: one checkpoint, one process. */
static int read_checkpoint(const wk_opts *o, eng_ckpt *c) {
    char path[WK_PATH_MAX], err[1024] = "";
    if (eng_ckpt_resolve(o->checkpoint, path, sizeof path, err, sizeof err) != PST_OK ||
        wk_record_read(path, c, NULL, err, sizeof err) != PST_OK) {
        fprintf(stderr, "pstrain: %s\n", err);
        return 2;
    }
    return 0;
}

static int run(int argc, char **argv) {
    static wk_opts o;
    char err[1024] = "";
    if (wk_cli_parse(&o, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "pstrain: %s\n", err);
        return 2;
    }
    if (o.version) {
        wk_version_print(stdout);
        return 0;
    }
    if (o.help) {
        wk_cli_usage(stdout, wk_cli_command_name(o.command));
        return 0;
    }
    if (o.dry_run) { /* before --servers asks for mpirun: a launcher runs this first */
        const int status = wk_preflight(&o, stdout, err, sizeof err);
        if (status != 0)
            fprintf(stderr, "pstrain: %s\n", err);
        return status;
    }
    if (o.command == WK_CMD_EVAL || o.command == WK_CMD_INSPECT || o.command == WK_CMD_SAMPLE) {
        eng_ckpt c = {0};
        int status = read_checkpoint(&o, &c);
        if (status == 0 && o.command == WK_CMD_INSPECT) {
            eng_model m;
            PST_ASSERT(eng_model_build(&m, eng_model_find(c.model), err, sizeof err) == PST_OK,
                       "%s", err);
            eng_ckpt_print(&c, &m, stdout);
        } else if (status == 0 && o.command == WK_CMD_SAMPLE) {
            if ((status = wk_sample(&o, &c, err, sizeof err)) != 0)
                fprintf(stderr, "pstrain: %s\n", err);
        } else if (status == 0) {
            status = eng_model_find(c.model)->parts ? wk_gan_eval(&o, &c, err, sizeof err)
                                                    : wk_eval(&o, &c, err, sizeof err);
            if (status != 0)
                fprintf(stderr, "pstrain: %s\n", err);
        }
        eng_ckpt_free(&c);
        return status;
    }
    if (o.command == WK_CMD_PLOT) {
        const int status = wk_plot(o.metrics, o.out, o.title, err, sizeof err);
        if (status != 0)
            fprintf(stderr, "pstrain: %s\n", err);
        else
            printf("%s: the curves of %s\n", o.out, o.metrics);
        return status;
    }
    if (o.command == WK_CMD_CHECK) {
        /* "data missing" is the stdout line's to say (a launcher reads that); only a line
         * that could not be printed goes to stderr. */
        const int status = wk_check(&o, stdout, err, sizeof err);
        if (status != 0 && err[0])
            fprintf(stderr, "pstrain: %s\n", err);
        return status;
    }
    if (o.command == WK_CMD_SUMMARY) {
        eng_model m;
        if (eng_model_build(&m, eng_model_find(o.model), err, sizeof err) != PST_OK) {
            fprintf(stderr, "pstrain: %s\n", err);
            return 2;
        }
        eng_model_summary(&m, stdout);
        return 0;
    }
    if (o.servers > 0) {
        if (!under_mpi_launcher()) {
            fprintf(stderr, "pstrain: --servers %lld: start the job with mpirun -np N (N > %lld)\n",
                    (long long)o.servers, (long long)o.servers);
            return 2;
        }
        return distributed(&o);
    }
    eng_ckpt resume = {0};
    int fresh = 1;
    if (o.resume[0] && wk_resume_load(&o, &resume, &fresh, stdout, err, sizeof err) != PST_OK) {
        fprintf(stderr, "pstrain: %s\n", err);
        return 2;
    }
    if (o.checkpoint_dir[0])
        catch_stop_signals();
    const eng_ckpt *from = o.resume[0] && !fresh ? &resume : NULL;
    int status = eng_model_find(o.model)->parts
                     ? wk_train_gan(&o, NULL, from, &stop_requested, err, sizeof err)
                     : wk_train(&o, NULL, from, &stop_requested, err, sizeof err);
    if (status != 0 && status != WK_STOPPED)
        fprintf(stderr, "pstrain: %s\n", err[0] ? err : "training failed");
    eng_ckpt_free(&resume);
    return status;
}

int main(int argc, char **argv) {
    /* Under mpirun or srun stdout is a pipe or a pseudo-terminal a launcher reads: a line at
     * a time, so that a job's log keeps its order ("starting fresh" before "stopped at"). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    status_init();
    const int status = run(argc, argv);
    say_status(status);
    return status;
}
