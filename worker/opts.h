/* opts.h: what the worker reads of a run's flags (training in one process, or one worker of
 * a parameter-server job). The program (launch/cmd/) parses the command line into it; the
 * servers' own flags and the commands' own live in launch/cmd/config.h, not here. */
#ifndef PSTRAIN_WORKER_OPTS_H
#define PSTRAIN_WORKER_OPTS_H

#include "engine/base/base.h"
#include "engine/model.h"

#include <stdint.h>

#define WK_PATH_MAX 4096

typedef struct wk_opts {
    char model[64];
    char data[WK_PATH_MAX];    /* --data, else $PSTRAIN_DATA, else the build's default */
    char metrics[WK_PATH_MAX]; /* the JSON lines to write, empty: none */
    char optimizer[16];        /* adam | rmsprop */
    int64_t epochs;
    int64_t batch;
    int64_t threads; /* 0: one per online CPU */
    char conv[16];   /* --conv: auto, im2col, winograd, winograd2, 4 or 5; empty: auto */
    int64_t seed;
    int64_t max_steps; /* 0: no limit */
    double lr;         /* < 0: the optimizer's Keras default */
    double clipvalue;  /* rmsprop; 0 = off */
    double decay;      /* rmsprop legacy decay; 0 = off */
    double val_split;
    int64_t progress; /* -1 auto (a bar on a terminal), 0 lines only, 1 bar */
    int optim_given;  /* --optimizer, --lr, --clipvalue, --decay, --gen-optim or --disc-optim */
    /* a parameter-server job (mpirun) */
    int64_t servers;                /* ranks 0..servers-1 serve; 0: one-process training */
    int64_t replicas;               /* copies of each shard on other servers (0 or 1) */
    int64_t max_workers;            /* places for workers that join (0: the job's own) */
    char job_file[WK_PATH_MAX];     /* where rank 0 writes the job file (empty: see jobfile.h) */
    char join[WK_PATH_MAX];         /* pstrain train --join FILE: a worker that joins */
    char mode[16];                  /* sync | async | ssp */
    int64_t staleness;              /* ssp */
    double timeout;                 /* seconds to wait for a server before giving up */
    double peer_timeout;            /* seconds of silence after which a peer is lost */
    char secure[8];                 /* auto | on | off */
    int64_t chunk;                  /* floats per push/pull message (0: a whole shard) */
    char dump_weights[WK_PATH_MAX]; /* raw float32 flat vector at the end; empty: none */
    /* checkpoints */
    char checkpoint_dir[WK_PATH_MAX]; /* empty: no checkpoints */
    int64_t checkpoint_every;         /* steps; 0: only at epoch ends and on SIGTERM/SIGINT */
    int64_t keep;                     /* newest checkpoints kept; 0: all */
    char resume[WK_PATH_MAX];         /* FILE, DIR (its latest) or "auto"; empty: fresh */
    char init_from[WK_PATH_MAX];      /* Keras files a fresh run takes its weights from */
    char log_level[8];                /* quiet | info | debug */
    int dense_pushes;                 /* push an embedding's whole gradient, not its rows */
    char wire[8];                     /* fp32 | bf16 | fp16: pushes' and pull answers' values */
    char compress[32];                /* none | topk:F */
    double topk;                      /* --compress topk:F's F; 0: none */
    double simulate_ms; /* > 0: each step waits this long instead of computing (the lab) */
    /* GANs (a model with parts) */
    char gen_optim[128], disc_optim[128]; /* eng_optim_parse specs of each network's optimizer */
    char samples[WK_PATH_MAX];            /* a grid of generated digits per epoch; empty: none */
    char judge[WK_PATH_MAX]; /* an mnist_cnn checkpoint that scores each epoch; empty: none */
    int64_t judge_n;         /* images generated for the scores */
    double ema_decay;        /* the generator's moving average (eng_ema_update); 0: none */
} wk_opts;

/* --conv into *out (empty: auto): PST_OK, or PST_EARG naming the flag. */
static inline int wk_opts_conv_of(const wk_opts *o, eng_conv_algo *out, char *err, size_t errlen) {
    *out = ENG_CONV_AUTO;
    if (o->conv[0] && eng_conv_algo_parse(o->conv, out) != PST_OK)
        return pst_err(
            err, errlen, PST_EARG,
            "--conv: expected auto, im2col, winograd, winograd2, winograd4 or winograd5, got '%s'",
            o->conv);
    return PST_OK;
}

/* --conv onto m (before a net is made of it): PST_OK, or PST_EARG naming the flag. */
static inline int wk_opts_conv(const wk_opts *o, eng_model *m, char *err, size_t errlen) {
    eng_conv_algo conv;
    const int rc = wk_opts_conv_of(o, &conv, err, errlen);
    if (rc == PST_OK)
        eng_model_set_conv(m, conv);
    return rc;
}

#endif
