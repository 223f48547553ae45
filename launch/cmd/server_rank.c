/* server_rank.c: a server rank of a parameter-server job: its server (every part of the model,
 * one socket) made from the flags (the servers' own, cmd_server_cfg, and those it shares
 * with the workers), served until every worker is done, and its counters said at the end. */
#define _DEFAULT_SOURCE /* getifaddrs flags (IFF_UP) beyond POSIX */
#include "launch/cmd/server_rank.h"

#include "engine/base/base.h"
#include "engine/layout.h"
#include "launch/cmd/cmd.h"
#include "worker/train.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cmd_rank_server {
    int rank;
    eng_model part[ENG_MAX_PARTS]; /* the server borrows them */
    ps_server *s;
    ps_server *b;        /* --replicas: the backup of the previous rank's shard; NULL: none */
    double peer_timeout; /* s */
    atomic_int served;   /* s is done: its workers have all said goodbye */
    int brc;             /* the backup thread's outcome */
};

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

cmd_rank_server *cmd_rank_server_start(const cmd_config *c, const cmd_rank_job *job,
                                       const eng_ckpt *resume, volatile sig_atomic_t *stop) {
    const wk_opts *o = &c->worker;
    const cmd_server_cfg *sc = &c->server;
    cmd_rank_server *r = pst_calloc(1, sizeof *r);
    r->rank = job->rank;
    char advertise[64], err[512] = "";
    if (sc->advertise[0])
        snprintf(advertise, sizeof advertise, "%s", sc->advertise);
    else
        host_address(advertise, sizeof advertise);
    eng_optim_cfg optim[ENG_MAX_PARTS];
    wk_part_optims(o, job->model, resume, optim);
    ps_config cfg = {.model = job->model,
                     .nparts = job->model->nparts,
                     .server_id = job->rank,
                     .num_servers = job->servers,
                     .num_workers = job->workers,
                     .max_workers = (int)o->max_workers,
                     .mode = (ps_mode)ps_mode_parse(o->mode),
                     .staleness = (int)o->staleness,
                     .bind_host = sc->bind,
                     .advertise_host = advertise,
                     .log = stderr,
                     .verbose = strcmp(o->log_level, "debug") == 0,
                     .threads = (int)sc->threads,
                     .chunk = (size_t)o->chunk,
                     .stop = o->checkpoint_dir[0] ? stop : NULL,
                     .peer_timeout = o->peer_timeout,
                     .start_grace = o->timeout,
                     .abort_on_worker_loss = strcmp(sc->on_worker_loss, "abort") == 0,
                     .keys = job->keys};
    if (sc->port_range[0])
        sscanf(sc->port_range, "%d-%d", &cfg.port_min, &cfg.port_max);
    for (int p = 0; p < job->model->nparts; p++) {
        eng_model_part(job->model, p, &r->part[p]);
        cfg.parts[p] =
            (ps_part_cfg){&r->part[p], optim[p], eng_model_part_seed((uint64_t)o->seed, p)};
    }
    r->peer_timeout = o->peer_timeout;
    r->s = ps_server_new(&cfg, err, sizeof err);
    if (r->s && resume && ps_server_restore(r->s, resume, err, sizeof err) != PST_OK)
        ps_server_free(&r->s);
    if (r->s && !resume && job->init)
        ps_server_set_weights(r->s, job->init);
    if (r->s && o->replicas > 0) { /* the copy of the previous rank's shard */
        cfg.server_id = (job->rank + job->servers - 1) % job->servers;
        cfg.standby = 1;
        cfg.stop = NULL; /* its primary's stop reaches it with the updates */
        if (!(r->b = ps_server_new(&cfg, err, sizeof err)) ||
            (resume && ps_server_restore(r->b, resume, err, sizeof err) != PST_OK))
            ps_server_free(&r->s);
        else if (!resume && job->init)
            ps_server_set_weights(r->b, job->init);
    }
    if (!r->s) {
        fprintf(stderr, "pstrain: %s\n", err);
        cmd_rank_server_free(&r);
    }
    return r;
}

void cmd_rank_server_free(cmd_rank_server **r) {
    if (!*r)
        return;
    ps_server_free(&(*r)->s);
    ps_server_free(&(*r)->b);
    free(*r);
    *r = NULL;
}

const char *cmd_rank_server_endpoint(const cmd_rank_server *r) { return ps_server_endpoint(r->s); }

const char *cmd_rank_server_backup_endpoint(const cmd_rank_server *r) {
    return r->b ? ps_server_endpoint(r->b) : "";
}

int cmd_rank_server_set_backup(cmd_rank_server *r, const char *endpoint) {
    char err[512];
    if (ps_server_set_backup(r->s, endpoint, err, sizeof err) == PST_OK)
        return PST_OK;
    fprintf(stderr, "pstrain: %s\n", err);
    return PST_ESOCKET;
}

/* The backup's thread: it serves until its primary is done, or, once it took the shard
 * over, until the workers are. A primary lost at the very end (its workers gone, its word
 * that it is done with it) leaves a backup with nothing to wait for: it ends a peer timeout
 * after this rank's own workers have all said goodbye. */
static void *run_backup(void *arg) {
    cmd_rank_server *r = arg;
    char err[512];
    double idle_from = 0.0;
    r->brc = PST_OK;
    while (!ps_server_done(r->b)) {
        if (ps_server_poll(r->b, 200, err, sizeof err) < 0) {
            fprintf(stderr, "pstrain: %s\n", err);
            r->brc = PST_EPEER;
            break;
        }
        if (!atomic_load(&r->served) || !ps_server_standby(r->b))
            continue;
        if (idle_from == 0.0)
            idle_from = pst_now();
        else if (pst_now() - idle_from > r->peer_timeout)
            break;
    }
    return NULL;
}

/* The counters of server s (what: "server 1", "server 1 (backup that took over)"). */
static void print_counters(const ps_server *s, const char *what, int workers) {
    const ps_stats *st = ps_server_stats(s);
    printf("%s: %llu updates, %llu pushes, %llu pulls, %.1f MB in, %.1f MB out, %llu "
           "refused, staleness mean %.2f max %llu\n",
           what, (unsigned long long)st->updates, (unsigned long long)st->pushes,
           (unsigned long long)st->pulls, (double)st->bytes_in / 1e6, (double)st->bytes_out / 1e6,
           (unsigned long long)st->errors,
           st->staleness_n ? (double)st->staleness_sum / (double)st->staleness_n : 0.0,
           (unsigned long long)st->staleness_max);
    printf("%s: pushes per worker:", what);
    for (int w = 0; w < workers; w++)
        printf(" %llu", (unsigned long long)ps_server_pushes_from(s, w));
    printf("\n");
}

int cmd_rank_server_run(cmd_rank_server *r, int workers, int quiet, int *peer_gone) {
    char err[512];
    pthread_t backup;
    const int threaded = r->b && pthread_create(&backup, NULL, run_backup, r) == 0;
    if (r->b && !threaded) {
        fprintf(stderr, "pstrain: server %d: cannot start its backup's thread\n", r->rank);
        return PST_EPEER;
    }
    int rc = ps_server_run(r->s, err, sizeof err) == 0 ? PST_OK : PST_EPEER;
    if (rc != PST_OK)
        fprintf(stderr, "pstrain: %s\n", err);
    atomic_store(&r->served, 1);
    if (threaded)
        pthread_join(backup, NULL);
    const int took_over = r->b && !ps_server_standby(r->b);
    *peer_gone |= ps_server_lost(r->s) > 0 || (took_over && ps_server_lost(r->b) > 0);
    if (rc == PST_OK && r->b && r->brc != PST_OK)
        rc = r->brc;
    if (rc == PST_OK && (ps_server_stopped(r->s) || (took_over && ps_server_stopped(r->b))))
        rc = PST_ESTOPPED; /* the job checkpointed and stopped on request */
    if (quiet)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "server %d", r->rank);
    print_counters(r->s, what, workers);
    if (took_over) {
        snprintf(what, sizeof what, "server %d (the backup that took over)",
                 (r->rank + ps_server_num_servers(r->s) - 1) % ps_server_num_servers(r->s));
        print_counters(r->b, what, workers);
    }
    fflush(stdout);
    return rc;
}
