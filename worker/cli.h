/* cli.h: the command line of `pstrain`, parsed from one table of flags with bounds, so
 * that every bad value gets one line naming the flag, the allowed range and what was given.
 * Later flags override earlier ones. */
#ifndef PSTRAIN_WORKER_CLI_H
#define PSTRAIN_WORKER_CLI_H

#include "worker/report/chart.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WK_PATH_MAX 4096

typedef enum wk_command {
    WK_CMD_TRAIN,
    WK_CMD_SUMMARY,
    WK_CMD_EVAL,
    WK_CMD_INSPECT,
    WK_CMD_SAMPLE,
    WK_CMD_PLOT, /* runs' --metrics files as a PNG or SVG of their curves */
    WK_CMD_CHECK /* one line: version, build, layout checksum, whether the data is there */
} wk_command;

typedef struct wk_opts {
    wk_command command;
    char model[64];
    char data[WK_PATH_MAX];    /* --data, else $PSTRAIN_DATA, else the build's default */
    char metrics[WK_PATH_MAX]; /* train: the JSON lines to write, empty: none */
    char optimizer[16];        /* adam | rmsprop */
    int64_t epochs;
    int64_t batch;
    int64_t threads; /* 0: one per online CPU */
    int64_t seed;
    int64_t max_steps; /* 0: no limit */
    double lr;         /* < 0: the optimizer's Keras default */
    double clipvalue;  /* rmsprop; 0 = off */
    double decay;      /* rmsprop legacy decay; 0 = off */
    double val_split;
    int64_t progress; /* -1 auto (a bar on a terminal), 0 lines only, 1 bar */
    int help;         /* --help was given: print usage, run nothing */
    int version;      /* --version was given: print the version, run nothing */
    int dry_run;      /* train --dry-run: check everything a run would, run nothing */
    int optim_given;  /* --optimizer, --lr, --clipvalue, --decay, --gen-optim or --disc-optim */
    /* a parameter-server job (mpirun) */
    int64_t servers;                /* ranks 0..servers-1 serve; 0: one-process training */
    char mode[16];                  /* sync | async | ssp */
    int64_t staleness;              /* ssp */
    double timeout;                 /* seconds to wait for a server before giving up */
    double peer_timeout;            /* seconds of silence after which a peer is lost */
    char on_worker_loss[16];        /* continue | abort */
    char secure[8];                 /* auto | on | off */
    char bind[64];                  /* address servers bind */
    char advertise[64];             /* address servers tell workers; empty: this host's first */
    char port_range[32];            /* "A-B", empty: any free port */
    int64_t server_threads;         /* threads for a server's optimizer update */
    int64_t chunk;                  /* floats per push/pull message (0: a whole shard) */
    char dump_weights[WK_PATH_MAX]; /* raw float32 flat vector at the end; empty: none */
    /* checkpoints */
    char checkpoint_dir[WK_PATH_MAX]; /* empty: no checkpoints */
    int64_t checkpoint_every;         /* steps; 0: only at epoch ends and on SIGTERM/SIGINT */
    int64_t keep;                     /* newest checkpoints kept; 0: all */
    char resume[WK_PATH_MAX];         /* FILE, DIR (its latest) or "auto"; empty: fresh */
    char log_level[8];                /* quiet | info | debug */
    char checkpoint[WK_PATH_MAX];     /* eval, inspect: the file (or DIR) to read */
    int dense_pushes;                 /* push an embedding's whole gradient, not its rows */
    /* GANs (a model with parts) */
    char gen_optim[128], disc_optim[128]; /* eng_optim_parse specs of each network's optimizer */
    char samples[WK_PATH_MAX];            /* a grid of generated digits per epoch; empty: none */
    char judge[WK_PATH_MAX]; /* an mnist_cnn checkpoint that scores each epoch; empty: none */
    int64_t judge_n;         /* images generated for the scores */
    double ema_decay;        /* the generator's moving average (eng_ema_update); 0: none */
    int live;                /* sample, eval: the generator's own weights, not their average */
    char out[WK_PATH_MAX];   /* sample: the PNG to write; plot: the PNG or SVG */
    char title[256];         /* plot: the picture's title; empty: the metrics path */
    int64_t n;               /* sample: images in the grid */
    const char *plot_metrics[WK_CHART_RUNS]; /* plot: the metrics files to read (argv's) */
    int plot_n;
} wk_opts;

/* A GAN's moving average of its generator by default (TF's usual figure): TF's warm-up,
 * min(decay, (1 + t) / (10 + t)), stays below it for the first 90,000 steps, an average whose
 * mean age is a tenth of the steps so far. */
#define WK_EMA_DEFAULT 0.9999

/* Parses argv (argv[0] is the program). Returns 0, or -1 with one line in err (naming the
 * flag or argument and what was expected). */
int wk_cli_parse(wk_opts *o, int argc, char **argv, char *err, size_t errlen);

/* "train", ...; NULL for a value that is not a command. */
const char *wk_cli_command_name(wk_command c);

/* Usage of the program (command NULL) or of one command. */
void wk_cli_usage(FILE *out, const char *command);

#endif
