/* pstrain.c: the program every rank of a job runs, and the only place that exits.
 *
 * Alone (no MPI launcher in the environment, or --servers 0) it trains in one process.
 * Started by mpirun or srun with --servers P, each rank takes its role from its rank:
 * 0..P-1 are parameter servers (ps/), P..N-1 workers (worker/). MPI is the control plane
 * only: roles, gathering the servers' endpoints, the placement map, the workers'
 * reductions and the final barrier. Gradients and weights travel over ZeroMQ. */
#define _DEFAULT_SOURCE /* getifaddrs flags (IFF_UP) beyond POSIX */
#include "engine/base.h"
#include "engine/model.h"
#include "engine/pool.h"
#include "engine/shard.h"
#include "ps/server.h"
#include "worker/cli.h"
#include "worker/train.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <mpi.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENDPOINT_MAX 160

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

/* Starts server `rank` of P: initialises its shard and binds. NULL on failure (printed). */
static ps_server *start_server(const wk_opts *o, const eng_model *m, int rank, int P, int W) {
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
                     .optim =
                         eng_optim_defaults((eng_optim_kind)eng_optim_kind_parse(o->optimizer)),
                     .seed = (uint64_t)o->seed,
                     .bind_host = o->bind,
                     .advertise_host = advertise,
                     .log = stderr,
                     .threads = (int)o->server_threads,
                     .chunk = (size_t)o->chunk};
    if (o->lr > 0)
        cfg.optim.lr = (float)o->lr;
    cfg.optim.clipvalue = (float)o->clipvalue;
    cfg.optim.decay = (float)o->decay;
    if (o->port_range[0])
        sscanf(o->port_range, "%d-%d", &cfg.port_min, &cfg.port_max);
    ps_server *s = ps_server_new(&cfg, err, sizeof err);
    if (!s)
        fprintf(stderr, "pstrain: %s\n", err);
    return s;
}

static int serve(ps_server *s, int rank, int W) {
    char err[512];
    int rc = ps_server_run(s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "pstrain: %s\n", err);
    const ps_stats *st = ps_server_stats(s);
    printf("server %d: %llu updates, %llu pushes, %llu pulls, %.1f MB in, %.1f MB out, %llu "
           "refused, staleness mean %.2f max %llu\n",
           rank, (unsigned long long)st->updates, (unsigned long long)st->pushes,
           (unsigned long long)st->pulls, (double)st->bytes_in / 1e6, (double)st->bytes_out / 1e6,
           (unsigned long long)st->errors,
           st->staleness_n ? (double)st->staleness_sum / (double)st->staleness_n : 0.0,
           (unsigned long long)st->staleness_max);
    printf("server %d: pushes per worker:", rank);
    for (int w = 0; w < W; w++)
        printf(" %llu", (unsigned long long)ps_server_pushes_from(s, w));
    printf("\n");
    fflush(stdout);
    return rc == 0 ? 0 : 1;
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
    ENG_ASSERT(eng_model_build(&m, eng_model_find(o->model), err, sizeof err) == ENG_OK, "%s", err);
    ps_server *server = rank < P ? start_server(o, &m, rank, P, W) : NULL;

    /* Every rank learns every server's endpoint; an empty one means that server failed. */
    char mine[ENDPOINT_MAX] = "";
    if (server)
        snprintf(mine, sizeof mine, "%s", ps_server_endpoint(server));
    char *all = calloc((size_t)size, ENDPOINT_MAX);
    ENG_ASSERT(all, "out of memory");
    MPI_Allgather(mine, ENDPOINT_MAX, MPI_CHAR, all, ENDPOINT_MAX, MPI_CHAR, MPI_COMM_WORLD);
    const char **endpoints = calloc((size_t)P, sizeof *endpoints);
    ENG_ASSERT(endpoints, "out of memory");
    int status = 0;
    for (int r = 0; r < P; r++) {
        endpoints[r] = all + (size_t)r * ENDPOINT_MAX;
        if (endpoints[r][0] == '\0')
            status = 1;
    }
    MPI_Comm workers;
    MPI_Comm_split(MPI_COMM_WORLD, rank < P ? MPI_UNDEFINED : 1, rank, &workers);

    if (status == 0 && rank == P) {
        for (int r = 0; r < P; r++)
            printf("server %d at %s\n", r, endpoints[r]);
        eng_shard_print(&m.layout, P, stdout);
        fflush(stdout);
    }
    if (status == 0 && server) {
        status = serve(server, rank, W);
    } else if (status == 0) {
        wk_job job = {.worker_id = rank - P,
                      .num_workers = W,
                      .num_servers = P,
                      .endpoints = endpoints,
                      .workers = workers};
        status = wk_train(o, &job, err, sizeof err);
        if (status != 0)
            fprintf(stderr, "pstrain: worker %d: %s\n", rank - P, err);
    }
    if (status != 0) {
        fflush(stdout);
        MPI_Abort(MPI_COMM_WORLD, status); /* the others would wait for this rank forever */
    }
    ps_server_free(&server);
    if (workers != MPI_COMM_NULL)
        MPI_Comm_free(&workers);
    free(endpoints);
    free(all);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}

int main(int argc, char **argv) {
    static wk_opts o;
    char err[1024] = "";
    if (wk_cli_parse(&o, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "pstrain: %s\n", err);
        return 2;
    }
    if (o.help) {
        wk_cli_usage(stdout, (int)o.command < 0          ? NULL
                             : o.command == WK_CMD_TRAIN ? "train"
                                                         : "summary");
        return 0;
    }
    if (o.command == WK_CMD_SUMMARY) {
        eng_model m;
        if (eng_model_build(&m, eng_model_find(o.model), err, sizeof err) != ENG_OK) {
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
    int status = wk_train(&o, NULL, err, sizeof err);
    if (status != 0)
        fprintf(stderr, "pstrain: %s\n", err[0] ? err : "training failed");
    return status;
}
