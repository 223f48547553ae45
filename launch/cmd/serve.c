/* serve.c: a server rank of a parameter-server job: its server made from the flags (the
 * servers' own, cmd_server_cfg, and those it shares with the workers), served until every
 * worker is done, and its counters said at the end.
 *
 * TODO(C3): until one ps_server serves every part of a model, a rank runs one ps_server per
 * part, the second on a thread of its own; cmd_rank_server hides how many. */
#define _DEFAULT_SOURCE /* getifaddrs flags (IFF_UP) beyond POSIX */
#include "launch/cmd/serve.h"

#include "engine/base/base.h"
#include "engine/layout.h"
#include "launch/cmd/cmd.h"
#include "worker/train.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cmd_rank_server {
    int rank, nparts;
    const eng_model *model; /* borrowed */
    eng_model part[ENG_MAX_PARTS];
    ps_server *s[ENG_MAX_PARTS];
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

/* Part p of c (a checkpoint of model m, of several parts) as a checkpoint of that part alone,
 * for a server of its vector: view borrows c's arrays except its runs (shifted to the part's
 * offsets; free(view->runs)). TODO(C1, C3): ps_server_restore takes the part itself. */
static void part_view(const eng_ckpt *c, const eng_model *m, int p, eng_ckpt *view) {
    eng_model pm;
    eng_model_part(m, p, &pm);
    const uint64_t lo = m->parts[p].offset, n = m->parts[p].total;
    *view = *c;
    snprintf(view->model, sizeof view->model, "%s", pm.def->name);
    view->layout_checksum = eng_layout_checksum(&pm.layout);
    view->total = n;
    view->weights = c->weights + lo;
    view->optim = p ? c->optim2 : c->optim;
    view->nslots = p ? c->nslots2 : c->nslots;
    for (int i = 0; i < 2; i++)
        view->slots[i] = p ? c->slots2[i] : c->slots[i];
    view->split = 0;
    view->nslots2 = 0;
    view->slots2[0] = view->slots2[1] = NULL;
    view->vocab = NULL;
    view->vocab_bytes = 0;
    view->ema = NULL; /* the lead worker's, not a server's */
    view->nruns = 0;
    view->runs = pst_malloc(sizeof *view->runs * (size_t)(c->nruns ? c->nruns : 1));
    for (int r = 0; r < c->nruns; r++) { /* the runs within the part, from its first float */
        const uint64_t a = c->runs[r].lo > lo ? c->runs[r].lo : lo;
        const uint64_t b =
            c->runs[r].lo + c->runs[r].n < lo + n ? c->runs[r].lo + c->runs[r].n : lo + n;
        if (a < b)
            view->runs[view->nruns++] = (eng_ckpt_iters){a - lo, b - a, c->runs[r].iterations};
    }
}

cmd_rank_server *cmd_rank_server_start(const cmd_config *c, const cmd_rank_job *job,
                                       const eng_ckpt *resume, volatile sig_atomic_t *stop) {
    const wk_opts *o = &c->worker;
    const cmd_server_cfg *sc = &c->server;
    cmd_rank_server *r = pst_calloc(1, sizeof *r);
    r->rank = job->rank;
    r->model = job->model;
    r->nparts = job->model->nparts;
    char advertise[64], err[512] = "";
    if (sc->advertise[0])
        snprintf(advertise, sizeof advertise, "%s", sc->advertise);
    else
        host_address(advertise, sizeof advertise);
    eng_optim_cfg optim[ENG_MAX_PARTS];
    wk_part_optims(o, job->model, resume, optim);
    ps_config cfg = {.server_id = job->rank,
                     .num_servers = job->servers,
                     .num_workers = job->workers,
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
    for (int p = 0; p < r->nparts; p++) {
        eng_model_part(job->model, p, &r->part[p]);
        cfg.model = &r->part[p];
        cfg.optim = optim[p];
        cfg.seed = eng_model_part_seed((uint64_t)o->seed, p);
        eng_ckpt view; /* the part's share of the checkpoint */
        const eng_ckpt *from = resume;
        if (resume && r->nparts > 1) {
            part_view(resume, job->model, p, &view);
            from = &view;
        }
        r->s[p] = ps_server_new(&cfg, err, sizeof err);
        if (r->s[p] && from && ps_server_restore(r->s[p], from, err, sizeof err) != PST_OK)
            ps_server_free(&r->s[p]);
        if (from == &view)
            free(view.runs);
        if (!r->s[p]) {
            fprintf(stderr, "pstrain: %s\n", err);
            cmd_rank_server_free(&r);
            return NULL;
        }
    }
    return r;
}

void cmd_rank_server_free(cmd_rank_server **r) {
    if (!*r)
        return;
    for (int p = 0; p < (*r)->nparts; p++)
        ps_server_free(&(*r)->s[p]);
    free(*r);
    *r = NULL;
}

int cmd_rank_server_endpoints(const eng_model *m) { return m->nparts; }

const char *cmd_rank_server_endpoint(const cmd_rank_server *r, int i) {
    return ps_server_endpoint(r->s[i]);
}

/* One ps_server of the rank until its workers are done; with info its counters after. */
typedef struct serving {
    ps_server *s;
    int rank, workers, quiet, rc;
    char what[40]; /* "" for a model's one server, " (generator)" for a part's */
} serving;

static void *serve_one(void *arg) {
    serving *v = arg;
    char err[512];
    v->rc = ps_server_run(v->s, err, sizeof err) == 0 ? PST_OK : PST_EPEER;
    if (v->rc != PST_OK)
        fprintf(stderr, "pstrain: %s\n", err);
    if (v->quiet)
        return NULL;
    const ps_stats *st = ps_server_stats(v->s);
    printf("server %d%s: %llu updates, %llu pushes, %llu pulls, %.1f MB in, %.1f MB out, %llu "
           "refused, staleness mean %.2f max %llu\n",
           v->rank, v->what, (unsigned long long)st->updates, (unsigned long long)st->pushes,
           (unsigned long long)st->pulls, (double)st->bytes_in / 1e6, (double)st->bytes_out / 1e6,
           (unsigned long long)st->errors,
           st->staleness_n ? (double)st->staleness_sum / (double)st->staleness_n : 0.0,
           (unsigned long long)st->staleness_max);
    printf("server %d%s: pushes per worker:", v->rank, v->what);
    for (int w = 0; w < v->workers; w++)
        printf(" %llu", (unsigned long long)ps_server_pushes_from(v->s, w));
    printf("\n");
    fflush(stdout);
    return NULL;
}

int cmd_rank_server_run(cmd_rank_server *r, int workers, int quiet, int *peer_gone) {
    serving v[ENG_MAX_PARTS];
    pthread_t th[ENG_MAX_PARTS];
    int started = 1, rc = PST_OK;
    for (int p = 0; p < r->nparts; p++) {
        v[p] = (serving){
            .s = r->s[p], .rank = r->rank, .workers = workers, .quiet = quiet, .rc = PST_EPEER};
        if (r->nparts > 1)
            snprintf(v[p].what, sizeof v[p].what, " (%s)", r->model->parts[p].name);
    }
    /* The first part's on this thread, the others' on threads of their own. */
    for (int p = 1; p < r->nparts; p++)
        if (pthread_create(&th[p], NULL, serve_one, &v[p]) != 0) {
            fprintf(stderr, "pstrain: server %d: cannot start a thread\n", r->rank);
            return PST_EPEER;
        } else {
            started = p + 1;
        }
    serve_one(&v[0]);
    for (int p = 1; p < started; p++)
        pthread_join(th[p], NULL);
    for (int p = 0; p < r->nparts; p++) {
        rc = rc != PST_OK ? rc : v[p].rc;
        *peer_gone |= ps_server_lost(r->s[p]) > 0;
    }
    for (int p = 0; rc == PST_OK && p < r->nparts; p++)
        if (ps_server_stopped(r->s[p]))
            rc = PST_ESTOPPED; /* the job checkpointed and stopped on request */
    return rc;
}
